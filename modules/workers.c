/* node workers: the workers the broker knows, what they consume and run,
 * and when it last heard from each. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "taskcli.h"

static const node_opt workers_opts[] = {
	TASKCLI_OPTS,
	{NULL, 0, NULL, NULL},
};

/* QUEUES: a worker's queues joined by commas (an array, or already "a,b,c"). */
static void workers_queues(const cJSON *w, char *out, size_t size)
{
	const cJSON *q, *qs = cJSON_GetObjectItemCaseSensitive(w, "queues");
	const cJSON *qarr = cJSON_IsArray(qs) ? qs : NULL;
	size_t n = 0;
	out[0] = '\0';
	if (cJSON_IsString(qs))
		n = (size_t)snprintf(out, size, "%s", qs->valuestring) % size;
	cJSON_ArrayForEach(q, qarr) {
		if (cJSON_IsString(q) && n < size - 1) {
			int k = snprintf(out + n, size - n, "%s%s", n ? "," : "", q->valuestring);
			n = k > 0 ? n + (size_t)k : n;
			if (n >= size)
				n = size - 1;
		}
	}
	if (n == 0)
		snprintf(out, size, "-");
}

/* RUNNING: a count, or the array of the tasks it runs. */
static void workers_running(const cJSON *w, char *out, size_t n)
{
	const cJSON *running = cJSON_GetObjectItemCaseSensitive(w, "running");
	if (cJSON_IsArray(running))
		snprintf(out, n, "%d", cJSON_GetArraySize(running));
	else
		taskcli_fmt_int(w, "running", out, n);
}

/* HEARTBEAT: tenths of a second for the first minute, then coarser. */
static void workers_heartbeat(const cJSON *w, char *out, size_t n)
{
	if (!taskcli_has_num(w, "heartbeat_ago_ms")) {
		snprintf(out, n, "-");
		return;
	}
	double ago = taskcli_num(w, "heartbeat_ago_ms", 0);
	char d[48];
	if (ago < 60000)
		snprintf(d, sizeof d, "%.1f s", ago / 1000);
	else
		taskcli_duration(ago, d, sizeof d);
	snprintf(out, n, "%s ago", d);
}

static void workers_row(taskcli_table *tb, const cJSON *w)
{
	char queues[1024], conc[32], running[32], hb[64], pid[32] = "-";
	workers_queues(w, queues, sizeof queues);
	taskcli_fmt_int(w, "concurrency", conc, sizeof conc);
	workers_running(w, running, sizeof running);
	workers_heartbeat(w, hb, sizeof hb);
	if (taskcli_has_num(w, "pid") && taskcli_num(w, "pid", 0) > 0)
		snprintf(pid, sizeof pid, "%.0f", taskcli_num(w, "pid", 0));
	const cJSON *on = cJSON_GetObjectItemCaseSensitive(w, "online");
	const char *host = taskcli_str(w, "host");
	const char *row[8] = {taskcli_str(w, "name"), queues, conc, running, hb,
	    cJSON_IsBool(on) ? (cJSON_IsTrue(on) ? "yes" : "no") : "-", host && *host ? host : "-", pid};
	taskcli_table_row(tb, row);
}

static void workers_table(const cJSON *ws)
{
	static const char *const heads[] = {"NAME", "QUEUES", "CONCURRENCY", "RUNNING", "HEARTBEAT", "ONLINE", "HOST", "PID"};
	taskcli_table_items(ws, 8, "llrrllll", heads, workers_row);
}

static int workers_main(node_ctx *ctx, const node_args *a)
{
	return taskcli_list_main(ctx, a, "workers", "no workers have registered", workers_table);
}

const node_cmd node_cmd_workers = {
	.name = "workers",
	.summary = "list workers: queues, concurrency, running tasks, last heartbeat",
	.synopsis = "[--json] [--broker URL]",
	.description =
	    "ONLINE is no for a worker that said goodbye or went silent longer than its lease.\n"
	    "--json prints one object per worker per line, with the task names it runs.",
	.opts = workers_opts,
	.main = workers_main,
	.min_pos = 0,
	.max_pos = 0,
};
