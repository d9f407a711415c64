/* node help [COMMAND]: the list of commands with their one-line summaries,
 * or one command's usage. The same text serves --help and the man pages. */
#include <stdio.h>

#include "commands.h"

static int help_main(node_ctx *ctx, const node_args *a)
{
	(void)ctx;
	if (a->npos == 1) {
		const node_cmd *cmd = node_cmd_find(a->pos[0]);
		if (cmd == NULL) {
			fprintf(stderr, "node help: unknown command \"%s\"\n", a->pos[0]);
			return NODE_EXIT_USAGE;
		}
		node_cmd_usage(cmd, stdout);
		return 0;
	}
	printf("node %s: one executable that is every part of a small compute cluster\n\n"
	       "usage: node [global options] COMMAND [options] [args]\n\ncommands:\n", NODE_VERSION);
	for (int i = 0; node_cmds[i]; i++)
		printf("  %-12s %s\n", node_cmds[i]->name, node_cmds[i]->summary);
	printf("\n`node COMMAND --help` shows a command's options; node(1) has the details.\n");
	return 0;
}

const node_cmd node_cmd_help = {
	.name = "help",
	.summary = "list commands, or show one command's usage",
	.synopsis = "[COMMAND]",
	.description = "Without COMMAND, lists every command with a one-line summary.",
	.main = help_main,
	.min_pos = 0,
	.max_pos = 1,
	.own_config = 1,
};
