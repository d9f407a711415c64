/* node config check FILE | show | keys: validate a cluster file with every
 * error's JSON path, print the effective configuration, list known keys. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static int config_check(const char *path)
{
	node_conf c;
	memset(&c, 0, sizeof c);
	cJSON *errors = NULL;
	node_err err = {0};
	int rc = node_conf_load(&c, path, &errors, &err);
	if (rc != 0) {
		int n = cJSON_GetArraySize(errors);
		const cJSON *e;
		cJSON_ArrayForEach(e, errors)
			fprintf(stderr, "%s: %s\n", path, cJSON_GetStringValue(e));
		if (n == 0)
			fprintf(stderr, "%s\n", err.msg);
		fprintf(stderr, "%s: %d error%s\n", path, n ? n : 1, n == 1 || n == 0 ? "" : "s");
	} else {
		int nodes = cJSON_GetArraySize(node_conf_get(&c, "nodes"));
		printf("%s: valid (%d node%s)\n", path, nodes, nodes == 1 ? "" : "s");
	}
	cJSON_Delete(errors);
	node_conf_free(&c);
	return rc == 0 ? 0 : NODE_EXIT_CONFIG;
}

static int config_show(node_ctx *ctx, const node_args *a)
{
	int rc = node_cmd_setup_conf(ctx, a);
	if (rc == 0)
		rc = node_cmd_setup_logging(ctx, a);
	if (rc != 0)
		return rc;
	cJSON *shown = cJSON_Duplicate(ctx->conf.root, 1);
	if (cJSON_HasObjectItem(shown, "secret")) /* show that one is set, never the secret */
		cJSON_ReplaceItemInObjectCaseSensitive(shown, "secret", cJSON_CreateString("(hidden)"));
	char *s = cJSON_Print(shown);
	cJSON_Delete(shown);
	printf("%s\n", s);
	cJSON_free(s);
	return 0;
}

/* In the order of node_conf_type. */
static const char *const type_names[] = {"object", "map", "string", "integer", "number", "boolean", "url", "enum", "string list", "http url", "any"};
_Static_assert(sizeof type_names / sizeof type_names[0] == NODE_CT_ANY + 1, "a name for every node_conf_type");

static int config_keys(void)
{
	for (const node_conf_key *k = node_conf_keys; k->path; k++)
		printf("%-44s %-11s %-14s %s\n", k->path, type_names[k->type], k->def ? k->def : "-", k->doc ? k->doc : "");
	return 0;
}

static int config_main(node_ctx *ctx, const node_args *a)
{
	const char *sub = a->pos[0];
	if (strcmp(sub, "check") == 0 && a->npos == 2)
		return config_check(a->pos[1]);
	if (strcmp(sub, "check") == 0 && a->npos == 1 && node_args_get(a, "config"))
		return config_check(node_args_get(a, "config"));
	if (strcmp(sub, "show") == 0 && a->npos == 1)
		return config_show(ctx, a);
	if (strcmp(sub, "keys") == 0 && a->npos == 1)
		return config_keys();
	fprintf(stderr, "node config: expected check FILE, show or keys\n");
	node_cmd_usage(ctx->cmd, stderr);
	return NODE_EXIT_USAGE;
}

const node_cmd node_cmd_config = {
	.name = "config",
	.summary = "check a cluster file, show the effective configuration, list keys",
	.synopsis = "check FILE | show | keys",
	.description = "check FILE   validate FILE; each error is printed with its JSON path; exit 0 when valid, 3 when not\n"
	               "show         print the effective configuration (file + flags + defaults) as JSON\n"
	               "keys         list every key of the cluster file with its type and default",
	.main = config_main,
	.min_pos = 1,
	.max_pos = 2,
	.own_config = 1,
};
