/* node ping URL: ask any node role at any address who it is, and how long
 * the round trip took. The first thing to try when a cluster misbehaves. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "commands.h"
#include "core/transport.h"

static const node_opt ping_opts[] = {
	{"count", 'C', "N", "send N pings (default 1)"},
	{"json", 0, NULL, "print each reply as JSON"},
	{NULL, 0, NULL, NULL},
};

static double ping_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void ping_print(const cJSON *r, const char *url, double us, int json)
{
	if (json) {
		cJSON *o = cJSON_Duplicate(r, 1);
		cJSON_AddStringToObject(o, "url", url);
		cJSON_AddNumberToObject(o, "rtt_us", us);
		char *s = cJSON_PrintUnformatted(o);
		printf("%s\n", s);
		cJSON_free(s);
		cJSON_Delete(o);
		return;
	}
	const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "role"));
	const char *node = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "node"));
	const char *ver = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "version"));
	printf("%s: role %s, node %s, version %s, time %.0f us\n", url, role && *role ? role : "?",
	    node && *node ? node : "?", ver ? ver : "?", us);
}

static int ping_main(node_ctx *ctx, const node_args *a)
{
	node_err err = {0};
	long long count;
	if (node_args_int(a, "count", 1, 1000000, 1, &count, &err) != 0)
		return node_cmd_fail(ctx->cmd, &err);
	const char *url = a->pos[0];
	node_client *cl;
	if (node_client_open(&cl, url, "node", &ctx->wire, &err) != 0)
		return node_cmd_fail(ctx->cmd, &err);
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", "ping");
	int rc = 0;
	for (long long i = 0; i < count && rc == 0 && !node_stop_requested(ctx->stop); i++) {
		cJSON *reply = NULL;
		double t0 = ping_now_us();
		rc = node_client_call(cl, req, ctx->timeout_ms, &reply, &err);
		double us = ping_now_us() - t0;
		if (rc == 0)
			ping_print(reply, url, us, node_args_has(a, "json"));
		cJSON_Delete(reply);
	}
	cJSON_Delete(req);
	node_client_close(cl);
	return rc == 0 ? 0 : node_cmd_fail(ctx->cmd, &err);
}

const node_cmd node_cmd_ping = {
	.name = "ping",
	.summary = "ask a node role at URL for its role, node name and version",
	.synopsis = "[--count N] [--json] URL",
	.description = "URL is any address a role listens on, e.g. tcp://127.0.0.1:7100.\n"
	               "Prints the round-trip time; exits 5 when nothing answers within --timeout.",
	.opts = ping_opts,
	.main = ping_main,
	.min_pos = 1,
	.max_pos = 1,
};
