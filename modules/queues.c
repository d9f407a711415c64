/* node queues: every queue the broker has, with its depth, leases,
 * consumers, counters and rates. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "taskcli.h"

static const node_opt queues_opts[] = {
	TASKCLI_OPTS,
	{NULL, 0, NULL, NULL},
};

static void queues_int(const cJSON *q, const char *key, char *out, size_t n)
{
	if (taskcli_has_num(q, key))
		snprintf(out, n, "%.0f", taskcli_num(q, key, 0));
	else
		snprintf(out, n, "-");
}

static void queues_rate(const cJSON *q, const char *key, char *out, size_t n)
{
	if (!taskcli_has_num(q, key)) {
		snprintf(out, n, "-");
		return;
	}
	double r = taskcli_num(q, key, 0);
	snprintf(out, n, r >= 100 || r == 0 ? "%.0f" : "%.1f", r);
}

static int queues_main(node_ctx *ctx, const node_args *a)
{
	taskcli t;
	int rc = taskcli_open(&t, ctx, a);
	if (rc != 0)
		return rc;
	cJSON *req = taskcli_req("queues");
	cJSON *reply = NULL;
	rc = taskcli_call(&t, req, &reply);
	cJSON_Delete(req);
	if (rc != 0) {
		taskcli_close(&t);
		return rc;
	}
	const cJSON *qs = cJSON_GetObjectItemCaseSensitive(reply, "queues");
	const cJSON *q;
	if (t.json) {
		cJSON_ArrayForEach(q, qs)
			taskcli_print_json(stdout, q);
	} else if (cJSON_GetArraySize(qs) == 0) {
		printf("no queues yet (a queue appears with its first task or worker)\n");
	} else {
		static const char *const heads[] = {"QUEUE", "DEPTH", "LEASED", "CONSUMERS", "SUBMITTED", "SUCCEEDED",
		    "FAILED", "DEAD", "IN/S", "OUT/S"};
		taskcli_table tb;
		taskcli_table_init(&tb, 10, "lrrrrrrrrr", heads);
		cJSON_ArrayForEach(q, qs) {
			char c[10][32];
			static const char *const keys[] = {NULL, "depth", "leased", "consumers", "submitted", "succeeded", "failed", "dead"};
			const char *name = taskcli_str(q, "name");
			snprintf(c[0], sizeof c[0], "%.31s", name ? name : "?");
			for (int i = 1; i < 8; i++)
				queues_int(q, keys[i], c[i], sizeof c[i]);
			queues_rate(q, "rate_in", c[8], sizeof c[8]);
			queues_rate(q, "rate_out", c[9], sizeof c[9]);
			const char *row[10];
			for (int i = 0; i < 10; i++)
				row[i] = c[i];
			if (name && strlen(name) > 31)
				row[0] = name;
			taskcli_table_row(&tb, row);
		}
		taskcli_table_print(&tb, stdout);
		taskcli_table_free(&tb);
		/* Say it when tasks wait where nobody consumes. */
		cJSON_ArrayForEach(q, qs) {
			double depth = taskcli_num(q, "depth", 0), consumers = taskcli_num(q, "consumers", 0);
			if (depth > 0 && consumers == 0)
				printf("queue %s: %.0f task%s waiting, no worker consumes it\n", taskcli_str(q, "name"), depth,
				    depth == 1 ? "" : "s");
		}
	}
	cJSON_Delete(reply);
	taskcli_close(&t);
	return 0;
}

const node_cmd node_cmd_queues = {
	.name = "queues",
	.summary = "list queues: depth, leased, consumers, counts, rates",
	.synopsis = "[--json] [--broker URL]",
	.description =
	    "DEPTH: tasks waiting; LEASED: handed to a worker and not finished; CONSUMERS:\n"
	    "workers online for the queue; SUBMITTED, SUCCEEDED, FAILED, DEAD: counts since\n"
	    "the log began; IN/S, OUT/S: tasks per second over the last 10 s. A queue with\n"
	    "waiting tasks and no consumer is named below the table. --json prints one\n"
	    "object per queue per line.",
	.opts = queues_opts,
	.main = queues_main,
	.min_pos = 0,
	.max_pos = 0,
};
