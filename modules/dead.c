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

static int dead_list(taskcli *t, const cJSON *reply)
{
	const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(reply, "tasks");
	const cJSON *d;
	if (t->json) {
		cJSON_ArrayForEach(d, tasks)
			taskcli_print_json(stdout, d);
		return 0;
	}
	if (cJSON_GetArraySize(tasks) == 0) {
		printf("no dead tasks\n");
		return 0;
	}
	static const char *const heads[] = {"ID", "NAME", "QUEUE", "DELIVERIES", "ERROR"};
	taskcli_table tb;
	taskcli_table_init(&tb, 5, "lllrl", heads);
	cJSON_ArrayForEach(d, tasks) {
		char deliv[32] = "-";
		if (taskcli_has_num(d, "deliveries"))
			snprintf(deliv, sizeof deliv, "%.0f", taskcli_num(d, "deliveries", 0));
		const char *row[5] = {taskcli_str(d, "id"), taskcli_str(d, "name"), taskcli_str(d, "queue"), deliv, taskcli_str(d, "error")};
		taskcli_table_row(&tb, row);
	}
	taskcli_table_print(&tb, stdout);
	taskcli_table_free(&tb);
	return 0;
}

static int dead_main(node_ctx *ctx, const node_args *a)
{
	taskcli t;
	memset(&t, 0, sizeof t);
	t.ctx = ctx;
	const char *action = a->pos[0];
	int all = node_args_has(a, "all");
	int nids = a->npos - 1;
	if (strcmp(action, "list") == 0 || strcmp(action, "purge") == 0) {
		if (nids > 0 || all)
			return taskcli_usage(&t, "dead %s takes no ids and no --all", action);
	} else if (strcmp(action, "requeue") == 0) {
		if (nids == 0 && !all)
			return taskcli_usage(&t, "dead requeue needs task ids or --all");
		if (nids > 0 && all)
			return taskcli_usage(&t, "dead requeue takes task ids or --all, not both");
		if (nids > 10000)
			return taskcli_usage(&t, "dead requeue takes at most 10000 ids at once");
	} else {
		return taskcli_usage(&t, "unknown action \"%s\" (expected list, requeue or purge)", action);
	}
	int rc = taskcli_open(&t, ctx, a);
	if (rc != 0)
		return rc;
	cJSON *req = taskcli_req("dead");
	cJSON_AddStringToObject(req, "action", action);
	if (strcmp(action, "requeue") == 0) {
		if (all) {
			cJSON_AddTrueToObject(req, "all");
		} else {
			cJSON *ids = cJSON_AddArrayToObject(req, "ids");
			for (int i = 1; i < a->npos; i++)
				cJSON_AddItemToArray(ids, cJSON_CreateString(a->pos[i]));
		}
	}
	cJSON *reply = NULL;
	rc = taskcli_call(&t, req, &reply);
	cJSON_Delete(req);
	if (rc != 0) {
		taskcli_close(&t);
		return rc;
	}
	if (strcmp(action, "list") == 0) {
		rc = dead_list(&t, reply);
	} else {
		const char *key = strcmp(action, "purge") == 0 ? "purged" : "requeued";
		double n = taskcli_num(reply, key, 0);
		if (t.json) {
			printf("{\"%s\":%.0f}\n", key, n);
		} else if (strcmp(action, "purge") == 0) {
			printf("purged %.0f dead task%s\n", n, n == 1 ? "" : "s");
		} else if (all || n >= nids) {
			printf("requeued %.0f task%s\n", n, n == 1 ? "" : "s");
		} else {
			printf("requeued %.0f of %d tasks; the others are not in the dead-letter state\n", n, nids);
		}
		if (!all && strcmp(action, "requeue") == 0 && n < nids)
			rc = NODE_EXIT_FAIL;
	}
	cJSON_Delete(reply);
	taskcli_close(&t);
	return rc;
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
