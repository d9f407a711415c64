/* Running one task: call the built-in task with its context (sub.c), check
 * its value against the message limits and print it once, into the result
 * object that travels to the broker in a report. */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "mapreduce/mrtask.h"
#include "worker/tasks.h"
#include "worker/worker.h"

/* 1 when text (printed JSON) holds a number of 16 digits or more, which a
 * reader that parses numbers into doubles (cJSON) cannot keep exactly. */
static int worker_run_has_long_number(const char *text)
{
	int in_string = 0, digits = 0;
	for (const char *p = text; *p; p++) {
		if (in_string) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '"')
				in_string = 0;
		} else if (*p == '"') {
			in_string = 1;
			digits = 0;
		} else if (*p >= '0' && *p <= '9') {
			if (++digits >= 16)
				return 1;
		} else {
			digits = 0;
		}
	}
	return 0;
}

/* The task gets its context: its id, delivery and queue, and sub-tasks. */
static int worker_run_call(worker_thread *t, const cJSON *task, cJSON **value, char *err)
{
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(task, "name");
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(task, "args");
	const cJSON *kwargs = cJSON_GetObjectItemCaseSensitive(task, "kwargs");
	if (cJSON_IsNull(args))
		args = NULL;
	if (cJSON_IsNull(kwargs))
		kwargs = NULL;
	if (!cJSON_IsString(name)) {
		snprintf(err, WORKER_ERR_MAX, "the task has no name");
		return -1;
	}
	worker_task_ctx ctx;
	worker_ctx_state st;
	worker_sub_ctx(t, task, &ctx, &st);
	ctx.mr = t->w->mr ? &t->w->mr->env : NULL;
	return worker_task_run(&ctx, name->valuestring, args, kwargs, value, err, WORKER_ERR_MAX);
}

/* Print value (and free it) into *text; -1 with err when it cannot go in a
 * report. */
static int worker_run_print(worker *w, cJSON *value, char **text, char *err)
{
	/* the value sits 3 levels deep in a report: message, results, result */
	node_limits lim = w->ctx->wire.limits;
	lim.max_depth = lim.max_depth > 4 ? lim.max_depth - 3 : 1;
	node_err lerr = {0};
	int rc = -1;
	if (node_msg_check_limits(&lim, value, &lerr) != 0)
		snprintf(err, WORKER_ERR_MAX, "the result exceeds the message limits: %s", lerr.msg);
	else if ((*text = cJSON_PrintUnformatted(value)) == NULL)
		snprintf(err, WORKER_ERR_MAX, "out of memory printing the result");
	else if (strlen(*text) > w->result_max) {
		snprintf(err, WORKER_ERR_MAX, "the result is too large: %zu bytes (at most %zu)", strlen(*text), w->result_max);
		cJSON_free(*text);
		*text = NULL;
	} else
		rc = 0;
	cJSON_Delete(value);
	return rc;
}

/* The value goes as raw JSON text (raw holds it), printed once. */
static size_t worker_run_value(cJSON *r, cJSON *raw, char *text, const char *id)
{
	cJSON_AddTrueToObject(r, "ok");
	cJSON_free(raw->valuestring);
	raw->valuestring = text; /* both from cJSON's allocator */
	cJSON_AddItemToObject(r, "value", raw);
	size_t bytes = strlen(text) + strlen(id) + 48;
	/* Exact big numbers (fibo) would reach a cJSON reader as doubles (or
	 * null past 1e308): carry the exact text too. */
	if (worker_run_has_long_number(text)) {
		cJSON_AddStringToObject(r, "value_json", text);
		bytes += strlen(text);
	}
	return bytes;
}

static size_t worker_run_error(cJSON *r, const cJSON *task, const char *err, const char *id)
{
	cJSON_AddFalseToObject(r, "ok");
	cJSON_AddStringToObject(r, "error", err);
	if (node_log_enabled(NODE_LOG_DEBUG)) {
		const cJSON *name = cJSON_GetObjectItemCaseSensitive(task, "name");
		node_debug("task %s (%s) failed: %s", id, cJSON_IsString(name) ? name->valuestring : "?", err);
	}
	return strlen(err) * 2 + strlen(id) + 48;
}

cJSON *worker_run_task(worker_thread *t, const cJSON *task, size_t *bytes)
{
	worker *w = t->w;
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task, "id"));
	char err[WORKER_ERR_MAX];
	cJSON *value = NULL;
	char *text = NULL;
	int64_t t0 = node_clock_mono_ms();
	int rc = worker_run_call(t, task, &value, err);
	int64_t run_ms = node_clock_mono_ms() - t0;
	if (rc == 0)
		rc = worker_run_print(w, value, &text, err);
	cJSON *r = cJSON_CreateObject();
	cJSON *raw = rc == 0 ? cJSON_CreateRaw("") : NULL;
	if (r == NULL || (rc == 0 && raw == NULL)) {
		cJSON_Delete(r);
		cJSON_Delete(raw);
		cJSON_free(text);
		return NULL;
	}
	cJSON_AddStringToObject(r, "id", id);
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(task, "delivery");
	if (cJSON_IsNumber(d))
		cJSON_AddNumberToObject(r, "delivery", d->valuedouble);
	/* How long it ran, not how long it waited here after its fetch: the
	 * broker's start time becomes its finish time minus this. */
	cJSON_AddNumberToObject(r, "run_ms", (double)run_ms);
	*bytes = rc == 0 ? worker_run_value(r, raw, text, id) : worker_run_error(r, task, err, id);
	return r;
}
