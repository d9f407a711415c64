/* node: one executable that is every part of a small compute cluster.
 * This file holds the command table and the one place where the command line
 * is parsed: global options, then the command's own, then dispatch. */
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "modules/commands.h"
#include "modules/core/config.h"
#include "modules/core/log.h"
#include "modules/core/transport.h"

const node_cmd *const node_cmds[] = {
	&node_cmd_help,
	&node_cmd_version,
	&node_cmd_up,
	&node_cmd_broker,
	&node_cmd_worker,
	&node_cmd_submit,
	&node_cmd_result,
	&node_cmd_status,
	&node_cmd_revoke,
	&node_cmd_queues,
	&node_cmd_workers,
	&node_cmd_dead,
	&node_cmd_map,
	&node_cmd_nameserver,
	&node_cmd_ns,
	&node_cmd_rpc,
	&node_cmd_exec,
	&node_cmd_call,
	&node_cmd_token,
	&node_cmd_chan,
	&node_cmd_pub,
	&node_cmd_sub,
	&node_cmd_chanhost,
	&node_cmd_mapreduce,
	&node_cmd_job,
	&node_cmd_ping,
	&node_cmd_config,
	NULL,
};

/* Global options every command shares (node(1)). */
static const node_opt global_opts[] = {
	{"config", 'c', "FILE", "cluster file (default: $NODE_CONFIG, ./node.json, embedded default)"},
	{"name", 'n', "NODE", "which node of the cluster file this process is"},
	{"data-dir", 0, "DIR", "where durable state lives"},
	{"log-level", 0, "LEVEL", "debug, info, warn or error"},
	{"log-format", 0, "FMT", "text or json"},
	{"timeout", 0, "MS", "time limit for each call to another node"},
	{"help", 'h', NULL, "show usage"},
	{NULL, 0, NULL, NULL},
};

const node_cmd *node_cmd_find(const char *name)
{
	for (int i = 0; node_cmds[i]; i++)
		if (strcmp(node_cmds[i]->name, name) == 0)
			return node_cmds[i];
	return NULL;
}

static const node_opt *opt_find(const node_opt *table, const char *name, char letter)
{
	for (const node_opt *o = table; o && o->name; o++)
		if ((name && strcmp(o->name, name) == 0) || (!name && letter && o->letter == letter))
			return o;
	return NULL;
}

static int usage_error(const node_cmd *cmd, const char *fmt, const char *what)
{
	fprintf(stderr, "node: ");
	fprintf(stderr, fmt, what);
	fprintf(stderr, "\n");
	if (cmd)
		node_cmd_usage(cmd, stderr);
	else
		fprintf(stderr, "usage: node [global options] COMMAND [options] [args]; `node help` lists commands\n");
	return NODE_EXIT_USAGE;
}

static int args_add(node_args *a, const char *name, const char *value)
{
	if (a->nopts == NODE_ARGS_MAX)
		return -1;
	a->opt_name[a->nopts] = name;
	a->opt_value[a->nopts++] = value ? value : "";
	return 0;
}

/* Parse one option at argv[*i]; global options first, then the command's. */
static int parse_opt(const node_cmd *cmd, int argc, char **argv, int *i, node_args *a)
{
	char *arg = argv[*i], *eq = NULL, letter = 0;
	const char *name = NULL;
	if (arg[1] == '-') {
		name = arg + 2;
		if ((eq = strchr(arg, '=')) != NULL)
			*eq = '\0';
	} else {
		letter = arg[1];
		if (arg[2] != '\0')
			return usage_error(cmd, "unknown option %s (short options take no attached value)", arg);
	}
	const node_opt *o = opt_find(global_opts, name, letter);
	if (o == NULL && cmd)
		o = opt_find(cmd->opts, name, letter);
	if (o == NULL)
		return usage_error(cmd, "unknown option %s", arg);
	const char *value = NULL;
	if (o->arg && eq)
		value = eq + 1;
	else if (o->arg && *i + 1 < argc)
		value = argv[++*i];
	else if (o->arg)
		return usage_error(cmd, "option --%s needs a value", o->name);
	else if (eq)
		return usage_error(cmd, "option --%s takes no value", o->name);
	if (args_add(a, o->name, value) != 0)
		return usage_error(cmd, "too many options%s", "");
	return 0;
}

/* Split argv into the command, its options and positional arguments. */
static int parse_argv(int argc, char **argv, const node_cmd **cmd, node_args *a, char **pos)
{
	int only_pos = 0;
	for (int i = 1; i < argc; i++) {
		char *arg = argv[i];
		if (!only_pos && strcmp(arg, "--") == 0) {
			only_pos = 1;
		} else if (!only_pos && arg[0] == '-' && arg[1] != '\0') {
			if (strcmp(arg, "--version") == 0 || strcmp(arg, "-V") == 0) {
				*cmd = &node_cmd_version;
				continue;
			}
			int rc = parse_opt(*cmd, argc, argv, &i, a);
			if (rc != 0)
				return rc;
		} else if (*cmd == NULL) {
			if ((*cmd = node_cmd_find(arg)) == NULL)
				return usage_error(NULL, "unknown command \"%s\"", arg);
		} else {
			pos[a->npos++] = arg;
		}
	}
	return 0;
}

/* Signals go to one thread: SIGINT/SIGTERM ask every role to stop, SIGHUP
 * reopens the log. Roles never see a signal handler's restrictions. */
static void *signal_thread(void *arg)
{
	node_stop *stop = arg;
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	for (;;) {
		int sig;
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			node_log_reopen();
			node_info("SIGHUP: log reopened");
			continue;
		}
		node_info("%s: stopping", sig == SIGINT ? "SIGINT" : "SIGTERM");
		node_stop_request(stop);
	}
	return NULL;
}

static void start_signal_thread(node_stop *stop)
{
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_t t;
	if (pthread_create(&t, NULL, signal_thread, stop) == 0)
		pthread_detach(t);
}

/* Busybox style: `ln -s node broker; ./broker` is `node broker`. */
static const node_cmd *cmd_from_argv0(const char *argv0)
{
	char buf[256];
	snprintf(buf, sizeof buf, "%s", argv0);
	const char *base = basename(buf);
	if (strcmp(base, "node") == 0)
		return NULL;
	return node_cmd_find(base);
}

int main(int argc, char **argv)
{
	static node_stop stop;
	node_stop_init(&stop);
	node_ctx ctx;
	memset(&ctx, 0, sizeof ctx);
	node_wire_init(&ctx.wire);
	ctx.stop = &stop;
	node_args args;
	memset(&args, 0, sizeof args);
	char **pos = calloc((size_t)argc + 1, sizeof *pos);
	if (pos == NULL)
		return NODE_EXIT_FAIL;
	args.pos = pos;
	node_log_reopen(); /* NODE_LOG_FILE */
	const node_cmd *cmd = cmd_from_argv0(argv[0]);
	int rc = parse_argv(argc, argv, &cmd, &args, pos);
	if (rc == 0 && cmd == NULL)
		cmd = &node_cmd_help;
	if (rc == 0 && node_args_has(&args, "help")) {
		if (cmd == &node_cmd_help)
			return node_cmd_help.main(&ctx, &args);
		node_cmd_usage(cmd, stdout);
		free(pos);
		return 0;
	}
	ctx.cmd = cmd;
	if (rc == 0 && (args.npos < cmd->min_pos || (cmd->max_pos >= 0 && args.npos > cmd->max_pos)))
		rc = usage_error(cmd, "wrong number of arguments%s", "");
	if (rc == 0 && cmd->own_config)
		rc = node_cmd_setup_logging(&ctx, &args);
	else if (rc == 0)
		rc = node_cmd_setup(&ctx, &args);
	if (rc == 0) {
		node_log_set_role(cmd->name);
		if (cmd != &node_cmd_up) /* in `node up` nng threads serve every role */
			node_log_set_default_role(cmd->name);
		start_signal_thread(&stop);
		rc = cmd->main(&ctx, &args);
	}
	node_wire_fini(&ctx.wire);
	node_conf_free(&ctx.conf);
	free(pos);
	return rc;
}
