/* node up: every role of this node in one process, each in its own thread,
 * talking over the same URLs it would use across machines. With no cluster
 * file, the embedded default runs every role on 127.0.0.1. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "core/log.h"

typedef struct up_role {
	const node_cmd *cmd;
	node_ctx ctx;       /* the process's, with this role's own stop */
	node_stop stop;
	pthread_t thread;
	node_stop *parent;  /* the process's stop: a failing role stops everything */
	int started;
	int status;
} up_role;

static void *up_role_thread(void *arg)
{
	up_role *r = arg;
	node_log_set_role(r->cmd->name);
	node_args none;
	memset(&none, 0, sizeof none);
	r->status = r->cmd->main(&r->ctx, &none);
	if (r->status != 0) {
		node_error("role %s stopped with status %d; stopping the others", r->cmd->name, r->status);
		node_stop_request(r->parent);
	}
	return NULL;
}

static int up_wanted(const node_ctx *ctx, const node_cmd *cmd)
{
	char path[128];
	snprintf(path, sizeof path, "roles.%s", cmd->name);
	return node_conf_mine(&ctx->conf, path) != NULL;
}

static int up_main(node_ctx *ctx, const node_args *a)
{
	(void)a;
	up_role roles[32];
	int n = 0, status = 0;
	for (int i = 0; node_cmds[i] && n < 32; i++) {
		if (!node_cmds[i]->role || !up_wanted(ctx, node_cmds[i]))
			continue;
		roles[n] = (up_role){.cmd = node_cmds[i], .ctx = *ctx, .parent = ctx->stop};
		node_stop_init(&roles[n].stop);
		roles[n].ctx.stop = &roles[n].stop;
		if (pthread_create(&roles[n].thread, NULL, up_role_thread, &roles[n]) == 0)
			roles[n++].started = 1;
	}
	node_info("node %s of cluster %s from %s: %d role%s running; SIGINT or SIGTERM stops", ctx->conf.node,
	    node_conf_str(&ctx->conf, "cluster", "local"), ctx->conf.source, n, n == 1 ? "" : "s");
	if (n == 0)
		node_warn("none of the roles under nodes.%s.roles in %s is built into this node", ctx->conf.node, ctx->conf.source);
	node_stop_wait(ctx->stop, -1);
	/* Stop in reverse order of the table: workers drain into a broker that is still there. */
	for (int i = n - 1; i >= 0; i--) {
		node_stop_request(&roles[i].stop);
		pthread_join(roles[i].thread, NULL);
		if (roles[i].status != 0 && status == 0)
			status = roles[i].status;
	}
	node_info("stopped");
	return status;
}

const node_cmd node_cmd_up = {
	.name = "up",
	.summary = "run every role of this node in one process",
	.synopsis = "",
	.description = "Starts each role listed under nodes.NAME.roles in its own thread. Without a\n"
	               "cluster file, the embedded default runs every role on 127.0.0.1.\n"
	               "SIGINT or SIGTERM stops every role cleanly.",
	.main = up_main,
	.max_pos = 0,
	.role = 1,
};
