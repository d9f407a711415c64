/* node token: the bearer token HTTP endpoints of a cluster with a secret
 * ask for. It is derived from the secret (node_auth_http_token), so any
 * machine with the cluster file prints the same one. */
#include <stdio.h>

#include "commands.h"

static int token_main(node_ctx *ctx, const node_args *a)
{
	(void)a;
	if (ctx->wire.auth == NULL) {
		fprintf(stderr, "node token: the cluster in %s has no secret, so HTTP endpoints need no token\n",
		    ctx->conf.source ? ctx->conf.source : "the configuration");
		return NODE_EXIT_FAIL;
	}
	char tok[65];
	node_err err = {0};
	if (node_auth_http_token(ctx->wire.auth, tok, sizeof tok, &err) != 0)
		return node_cmd_fail(ctx->cmd, &err);
	printf("%s\n", tok);
	return 0;
}

const node_cmd node_cmd_token = {
	.name = "token",
	.summary = "print the token HTTP clients send (Authorization: Bearer TOKEN)",
	.synopsis = "",
	.description = "When the cluster has a secret, HTTP endpoints (JSON-RPC over HTTP of node rpc)\n"
	               "refuse requests without the header \"Authorization: Bearer TOKEN\". TOKEN is\n"
	               "an HMAC-SHA256 of a fixed label under the secret: every machine that has the\n"
	               "cluster file prints the same one, and it reveals nothing of the secret.\n"
	               "Exit status 1 when the cluster has no secret.",
	.main = token_main,
	.max_pos = 0,
};
