/* node result ID: a task's result. Without --wait a check that never
 * blocks; with --wait a libnodeclient future for the task (parked gets on
 * the broker, woken when the result arrives), bounded by --timeout seconds;
 * then one get reads the broker's entry to print. */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "commands.h"
#include "taskcli.h"

static const node_opt result_opts[] = {
	{"wait", 'w', NULL, "wait until the task finishes (with --timeout S: at most S seconds)"},
	TASKCLI_OPTS,
	{NULL, 0, NULL, NULL},
};

/* One get that does not wait; *entry is the result of the id (owned by
 * *reply). */
static int result_get(taskcli *t, const char *id, cJSON **reply, const cJSON **entry)
{
	cJSON *ids;
	cJSON *req = taskcli_get_req(0, &ids);
	cJSON_AddItemToArray(ids, cJSON_CreateString(id));
	int rc = taskcli_call(t, req, reply);
	cJSON_Delete(req);
	if (rc != 0)
		return rc;
	node_err err = {0};
	const cJSON *results = cJSON_GetObjectItemCaseSensitive(*reply, "results");
	*entry = cJSON_GetArrayItem(results, 0);
	if (!cJSON_IsObject(*entry) || taskcli_str(*entry, "state") == NULL) {
		node_err_set(&err, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "the broker's get reply has no result for %s", id);
		cJSON_Delete(*reply);
		*reply = NULL;
		return taskcli_fail(t, &err);
	}
	return 0;
}

/* Wait until the task finishes, the deadline (0: none) or a stop request;
 * what happened is read afterwards. Returns an exit status. */
static int result_wait(taskcli *t, const char *id, int64_t deadline)
{
	ncl_future *f = NULL;
	ncl_err e = {0};
	if (ncl_future_for(t->conn, id, &f, &e) != 0) {
		node_err err;
		taskcli_from_ncl(&err, &e);
		return taskcli_fail(t, &err);
	}
	/* Short waits: a stop request has no way to wake the future. */
	while (!ncl_future_ready(f) && !node_stop_requested(t->ctx->stop) &&
	       !(deadline && node_clock_mono_ms() >= deadline))
		ncl_future_wait(f, 100, NULL);
	int closed = ncl_future_state(f) == NCL_CLOSED;
	ncl_future_free(f);
	if (closed) {
		node_err err;
		node_err_set(&err, NODE_ECLOSED, NODE_ERR_SHUTDOWN, "the connection to broker %s closed while waiting", t->url);
		return taskcli_fail(t, &err);
	}
	return 0;
}

/* Why there is no result to print, on stderr. */
static void result_not_ready(const taskcli *t, const char *id, const char *state, int wait, long long wait_s)
{
	if (wait && wait_s >= 0)
		fprintf(stderr, "%s: not ready after %lld s\n", id, wait_s);
	else if (wait)
		fprintf(stderr, "%s: not ready (state %s); interrupted\n", id, state);
	else
		fprintf(stderr, "%s: not ready (state %s%s%s)\n", id, taskcli_color_on(t->ecolor, state), state, taskcli_color_off(t->ecolor));
}

static int result_main(node_ctx *ctx, const node_args *a)
{
	taskcli t;
	const char *id = a->pos[0];
	int wait = node_args_has(a, "wait");
	long long wait_s = taskcli_wait_s(a);
	int rc = taskcli_open(&t, ctx, a);
	if (rc != 0)
		return rc;
	if (wait)
		taskcli_wait_calls(&t);
	int64_t deadline = taskcli_deadline(wait_s);
	if (wait && (rc = result_wait(&t, id, deadline)) != 0) {
		taskcli_close(&t);
		return rc;
	}
	cJSON *reply = NULL;
	const cJSON *e = NULL;
	if ((rc = result_get(&t, id, &reply, &e)) != 0) {
		taskcli_close(&t);
		return rc;
	}
	const char *state = taskcli_str(e, "state");
	int finished = taskcli_state_finished(state);
	int ok = finished && strcmp(state, "succeeded") == 0;
	if (t.json || finished)
		taskcli_print_result(&t, id, e, 0);
	else
		result_not_ready(&t, id, state, wait, wait_s);
	taskcli_finish(&t, reply, 0);
	if (ok)
		return 0;
	if (finished || !wait || !deadline)
		return NODE_EXIT_FAIL;
	return NODE_EXIT_TIMEOUT;
}

const node_cmd node_cmd_result = {
	.name = "result",
	.summary = "print a task's result, now or when it finishes (--wait)",
	.synopsis = "[--wait [--timeout S]] [--json] [--broker URL] ID",
	.description =
	    "Prints the task's value (a string as is, other values as JSON). A failed task\n"
	    "prints `ID: failed: MESSAGE` on stderr and exits 1. Without --wait this never\n"
	    "blocks: a task not finished yet prints `ID: not ready (state STATE)` on stderr\n"
	    "and exits 1 (an id the broker does not know is state pending). --wait waits\n"
	    "for the result, parked on the broker; with --timeout S at most S seconds, then\n"
	    "`ID: not ready after S s` and exit status 5. --json prints the broker's entry\n"
	    "{\"id\", \"state\", \"value\" or \"error\"}.",
	.opts = result_opts,
	.main = result_main,
	.min_pos = 1,
	.max_pos = 1,
};
