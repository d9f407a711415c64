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

static void queues_rate(const cJSON *q, const char *key, char *out, size_t n)
{
	if (!taskcli_has_num(q, key)) {
		snprintf(out, n, "-");
		return;
	}
	double r = taskcli_num(q, key, 0);
	snprintf(out, n, r >= 100 || r == 0 ? "%.0f" : "%.1f", r);
}

static void queues_row(taskcli_table *tb, const cJSON *q)
{
	static const char *const keys[] = {NULL, "depth", "leased", "consumers", "submitted", "succeeded", "failed", "dead",
	    "revoked"};
	char c[11][32];
	const char *name = taskcli_str(q, "name");
	snprintf(c[0], sizeof c[0], "%.31s", name ? name : "?");
	for (int i = 1; i < 9; i++)
		taskcli_fmt_int(q, keys[i], c[i], sizeof c[i]);
	queues_rate(q, "rate_in", c[9], sizeof c[9]);
	queues_rate(q, "rate_out", c[10], sizeof c[10]);
	const char *row[11];
	for (int i = 0; i < 11; i++)
		row[i] = c[i];
	if (name && strlen(name) > 31) /* a long name whole, not cut to the buffer */
		row[0] = name;
	taskcli_table_row(tb, row);
}

static void queues_table(const cJSON *qs)
{
	static const char *const heads[] = {"QUEUE", "DEPTH", "LEASED", "CONSUMERS", "SUBMITTED", "SUCCEEDED",
	    "FAILED", "DEAD", "REVOKED", "IN/S", "OUT/S"};
	taskcli_table_items(qs, 11, "lrrrrrrrrrr", heads, queues_row);
	/* Say it when tasks wait where nobody consumes. */
	const cJSON *q;
	cJSON_ArrayForEach(q, qs) {
		double depth = taskcli_num(q, "depth", 0), consumers = taskcli_num(q, "consumers", 0);
		if (depth > 0 && consumers == 0)
			printf("queue %s: %.0f task%s waiting, no worker consumes it\n", taskcli_str(q, "name"), depth,
			    depth == 1 ? "" : "s");
	}
}

static int queues_main(node_ctx *ctx, const node_args *a)
{
	return taskcli_list_main(ctx, a, "queues", "no queues yet (a queue appears with its first task or worker)", queues_table);
}

const node_cmd node_cmd_queues = {
	.name = "queues",
	.summary = "list queues: depth, leased, consumers, counts, rates",
	.synopsis = "[--json] [--broker URL]",
	.description =
	    "DEPTH: tasks waiting; LEASED: handed to a worker and not finished; CONSUMERS:\n"
	    "workers online for the queue; SUBMITTED, SUCCEEDED, FAILED, DEAD, REVOKED: counts since\n"
	    "the log began; IN/S, OUT/S: tasks per second over the last 10 s. A queue with\n"
	    "waiting tasks and no consumer is named below the table. --json prints one\n"
	    "object per queue per line.",
	.opts = queues_opts,
	.main = queues_main,
	.min_pos = 0,
	.max_pos = 0,
};
