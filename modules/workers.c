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

static int workers_main(node_ctx *ctx, const node_args *a)
{
	taskcli t;
	int rc = taskcli_open(&t, ctx, a);
	if (rc != 0)
		return rc;
	cJSON *req = taskcli_req("workers");
	cJSON *reply = NULL;
	rc = taskcli_call(&t, req, &reply);
	cJSON_Delete(req);
	if (rc != 0) {
		taskcli_close(&t);
		return rc;
	}
	const cJSON *ws = cJSON_GetObjectItemCaseSensitive(reply, "workers");
	const cJSON *w;
	if (t.json) {
		cJSON_ArrayForEach(w, ws)
			taskcli_print_json(stdout, w);
	} else if (cJSON_GetArraySize(ws) == 0) {
		printf("no workers have registered\n");
	} else {
		static const char *const heads[] = {"NAME", "QUEUES", "CONCURRENCY", "RUNNING", "HEARTBEAT", "ONLINE", "HOST", "PID"};
		taskcli_table tb;
		taskcli_table_init(&tb, 8, "llrrllll", heads);
		cJSON_ArrayForEach(w, ws) {
			char queues[1024] = "", conc[32] = "-", running[32] = "-", hb[64] = "-", pid[32] = "-";
			const cJSON *q, *qs = cJSON_GetObjectItemCaseSensitive(w, "queues");
			const cJSON *qarr = cJSON_IsArray(qs) ? qs : NULL;
			size_t n = 0;
			if (cJSON_IsString(qs)) /* "a,b,c" */
				n = (size_t)snprintf(queues, sizeof queues, "%s", qs->valuestring) % sizeof queues;
			cJSON_ArrayForEach(q, qarr) {
				if (cJSON_IsString(q) && n < sizeof queues - 1) {
					int k = snprintf(queues + n, sizeof queues - n, "%s%s", n ? "," : "", q->valuestring);
					n = k > 0 ? n + (size_t)k : n;
					if (n >= sizeof queues)
						n = sizeof queues - 1;
				}
			}
			if (taskcli_has_num(w, "concurrency"))
				snprintf(conc, sizeof conc, "%.0f", taskcli_num(w, "concurrency", 0));
			if (taskcli_has_num(w, "running"))
				snprintf(running, sizeof running, "%.0f", taskcli_num(w, "running", 0));
			else if (cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(w, "running")))
				snprintf(running, sizeof running, "%d", cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(w, "running")));
			if (taskcli_has_num(w, "heartbeat_ago_ms")) {
				double ago = taskcli_num(w, "heartbeat_ago_ms", 0);
				if (ago < 60000)
					snprintf(hb, sizeof hb, "%.1f s ago", ago / 1000);
				else {
					char d[48];
					taskcli_duration(ago, d, sizeof d);
					snprintf(hb, sizeof hb, "%s ago", d);
				}
			}
			if (taskcli_has_num(w, "pid") && taskcli_num(w, "pid", 0) > 0)
				snprintf(pid, sizeof pid, "%.0f", taskcli_num(w, "pid", 0));
			const cJSON *on = cJSON_GetObjectItemCaseSensitive(w, "online");
			const char *host = taskcli_str(w, "host");
			const char *row[8] = {taskcli_str(w, "name"), n ? queues : "-", conc, running, hb,
			    cJSON_IsBool(on) ? (cJSON_IsTrue(on) ? "yes" : "no") : "-", host && *host ? host : "-", pid};
			taskcli_table_row(&tb, row);
		}
		taskcli_table_print(&tb, stdout);
		taskcli_table_free(&tb);
	}
	cJSON_Delete(reply);
	taskcli_close(&t);
	return 0;
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
