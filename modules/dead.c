/* node dead: the dead-letter state, where tasks that exhausted their
 * deliveries wait for a person: list them, put them back on their queues, or
 * drop them. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "taskcli.h"

static const node_opt dead_opts[] = {
	{"all", 'a', NULL, "requeue: every dead task"},
	TASKCLI_OPTS,
	{NULL, 0, NULL, NULL},
};

static void dead_row(taskcli_table *tb, const cJSON *d)
{
	char deliv[32];
	taskcli_fmt_int(d, "deliveries", deliv, sizeof deliv);
	const char *row[5] = {taskcli_str(d, "id"), taskcli_str(d, "name"), taskcli_str(d, "queue"), deliv, taskcli_str(d, "error")};
	taskcli_table_row(tb, row);
}

static void dead_list(const taskcli *t, const cJSON *reply)
{
	static const char *const heads[] = {"ID", "NAME", "QUEUE", "DELIVERIES", "ERROR"};
	const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(reply, "tasks");
	if (taskcli_list(t, tasks, "no dead tasks"))
		taskcli_table_items(tasks, 5, "lllrl", heads, dead_row);
}

/* Usage errors, before anything is sent; 0 when the command line is fine. */
static int dead_check(const taskcli *t, const char *action, int nids, int all)
{
	if (strcmp(action, "list") == 0 || strcmp(action, "purge") == 0) {
		if (nids > 0 || all)
			return taskcli_usage(t, "dead %s takes no ids and no --all", action);
	} else if (strcmp(action, "requeue") == 0) {
		if (nids == 0 && !all)
			return taskcli_usage(t, "dead requeue needs task ids or --all");
		if (nids > 0 && all)
			return taskcli_usage(t, "dead requeue takes task ids or --all, not both");
		if (nids > 10000)
			return taskcli_usage(t, "dead requeue takes at most 10000 ids at once");
	} else {
		return taskcli_usage(t, "unknown action \"%s\" (expected list, requeue or purge)", action);
	}
	return 0;
}

static cJSON *dead_req(const node_args *a, const char *action, int all)
{
	cJSON *req = taskcli_req("dead");
	cJSON_AddStringToObject(req, "action", action);
	if (strcmp(action, "requeue") != 0)
		return req;
	if (all) {
		cJSON_AddTrueToObject(req, "all");
	} else {
		cJSON *ids = cJSON_AddArrayToObject(req, "ids");
		for (int i = 1; i < a->npos; i++)
			cJSON_AddItemToArray(ids, cJSON_CreateString(a->pos[i]));
	}
	return req;
}

/* What requeue or purge did; exit 1 when some ids given were not dead. */
static int dead_count(const taskcli *t, const cJSON *reply, const char *action, int nids, int all)
{
	int purge = strcmp(action, "purge") == 0;
	const char *key = purge ? "purged" : "requeued";
	double n = taskcli_num(reply, key, 0);
	if (t->json)
		printf("{\"%s\":%.0f}\n", key, n);
	else if (purge)
		printf("purged %.0f dead task%s\n", n, n == 1 ? "" : "s");
	else if (all || n >= nids)
		printf("requeued %.0f task%s\n", n, n == 1 ? "" : "s");
	else
		printf("requeued %.0f of %d tasks; the others are not in the dead-letter state\n", n, nids);
	return !all && !purge && n < nids ? NODE_EXIT_FAIL : 0;
}

static int dead_main(node_ctx *ctx, const node_args *a)
{
	taskcli t;
	taskcli_init(&t, ctx, a);
	const char *action = a->pos[0];
	int all = node_args_has(a, "all");
	int nids = a->npos - 1;
	int rc = dead_check(&t, action, nids, all);
	if (rc != 0)
		return rc;
	cJSON *reply = NULL;
	if ((rc = taskcli_query(&t, ctx, a, dead_req(a, action, all), &reply)) != 0)
		return rc;
	if (strcmp(action, "list") == 0)
		dead_list(&t, reply);
	else
		rc = dead_count(&t, reply, action, nids, all);
	return taskcli_finish(&t, reply, rc);
}

const node_cmd node_cmd_dead = {
	.name = "dead",
	.summary = "list, requeue or purge dead-letter tasks",
	.synopsis = "list | requeue ID... | requeue --all | purge  [--json] [--broker URL]",
	.description =
	    "A task goes to the dead-letter state when its deliveries reach its queue's\n"
	    "max_deliveries (a task that keeps killing workers). list shows them; requeue\n"
	    "puts them back on their queues (exit 1 when some ids were not dead); purge\n"
	    "drops them all. --json prints one object per task per line,\n"
	    "or {\"requeued\": N} / {\"purged\": N}.",
	.opts = dead_opts,
	.main = dead_main,
	.min_pos = 1,
	.max_pos = -1,
};
