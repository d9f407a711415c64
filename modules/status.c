/* node status ID: everything the broker knows about one task: state,
 * where it ran, when, how long it waited and ran, its arguments and result. */
#include <stdio.h>
#include <string.h>

#include "core/clock.h"
#include "commands.h"
#include "taskcli.h"

static const node_opt status_opts[] = {
	TASKCLI_OPTS,
	{NULL, 0, NULL, NULL},
};

static void status_line(const char *key, const char *value)
{
	printf("%-11s %s\n", key, value ? value : "-");
}

static void status_json_line(const char *key, const cJSON *v)
{
	if (v == NULL)
		return;
	printf("%-11s ", key);
	taskcli_put_value(stdout, v);
	fputc('\n', stdout);
}

/* "2024-05-01T12:00:00.123Z (3.2 s ago)" style time lines. */
static void status_time(const char *key, const cJSON *task, const char *field, const char *since_field,
    const char *since_word, int64_t now)
{
	if (!taskcli_has_num(task, field))
		return;
	double ms = taskcli_num(task, field, 0);
	char iso[64], d[64], line[200];
	taskcli_iso_ms((int64_t)ms, iso, sizeof iso);
	if (since_field && taskcli_has_num(task, since_field)) {
		taskcli_duration(ms - taskcli_num(task, since_field, 0), d, sizeof d);
		snprintf(line, sizeof line, "%s  (%s %s)", iso, since_word, d);
	} else {
		taskcli_duration((double)now - ms, d, sizeof d);
		snprintf(line, sizeof line, "%s  (%s ago)", iso, d);
	}
	status_line(key, line);
}

/* An object member only when it says something: absent or {} is left out. */
static void status_object_line(const char *key, const cJSON *task)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(task, key);
	if (v && !(cJSON_IsObject(v) && v->child == NULL))
		status_json_line(key, v);
}

/* submitted, started, and finished or how long it has run so far. */
static void status_times(const cJSON *task, const char *state)
{
	int64_t now = node_clock_wall_ms();
	int started = taskcli_has_num(task, "started_ms");
	status_time("submitted", task, "submitted_ms", NULL, NULL, now);
	status_time("started", task, "started_ms", "submitted_ms", "queued for", now);
	if (taskcli_has_num(task, "finished_ms")) {
		status_time("finished", task, "finished_ms", started ? "started_ms" : "submitted_ms", started ? "ran" : "after", now);
	} else if (started && state && strcmp(state, "started") == 0) {
		char d[128], line[160];
		taskcli_duration((double)now - taskcli_num(task, "started_ms", 0), d, sizeof d);
		snprintf(line, sizeof line, "running for %s", d);
		status_line("finished", line);
	}
}

static void status_print(const taskcli *t, const cJSON *task)
{
	const char *state = taskcli_str(task, "state");
	char buf[128];
	status_line("id", taskcli_str(task, "id"));
	snprintf(buf, sizeof buf, "%s%s%s", taskcli_color_on(t->color, state), state ? state : "?", taskcli_color_off(t->color));
	status_line("state", buf);
	status_line("name", taskcli_str(task, "name"));
	status_line("queue", taskcli_str(task, "queue"));
	status_json_line("priority", cJSON_GetObjectItemCaseSensitive(task, "priority"));
	if (taskcli_str(task, "worker"))
		status_line("worker", taskcli_str(task, "worker"));
	status_json_line("deliveries", cJSON_GetObjectItemCaseSensitive(task, "deliveries"));
	status_times(task, state);
	status_json_line("args", cJSON_GetObjectItemCaseSensitive(task, "args"));
	status_object_line("kwargs", task);
	status_object_line("options", task);
	const cJSON *value = cJSON_GetObjectItemCaseSensitive(task, "value");
	if (value && state && strcmp(state, "succeeded") == 0) {
		/* The value as JSON here: a string shows its quotes. */
		const char *exact = taskcli_str(task, "value_json");
		char *s = exact ? NULL : cJSON_PrintUnformatted(value);
		status_line("result", exact ? exact : s);
		cJSON_free(s);
	}
	if (taskcli_str(task, "error"))
		status_line("error", taskcli_str(task, "error"));
}

static int status_main(node_ctx *ctx, const node_args *a)
{
	taskcli t;
	cJSON *req = taskcli_req("status");
	cJSON_AddStringToObject(req, "id", a->pos[0]);
	cJSON *reply = NULL;
	int rc = taskcli_query(&t, ctx, a, req, &reply);
	if (rc != 0)
		return rc;
	const cJSON *task = cJSON_GetObjectItemCaseSensitive(reply, "task");
	if (!cJSON_IsObject(task)) {
		node_err err;
		node_err_set(&err, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "the broker's status reply has no task");
		rc = taskcli_fail(&t, &err);
	} else if (t.json) {
		taskcli_print_json(stdout, task);
	} else {
		status_print(&t, task);
	}
	return taskcli_finish(&t, reply, rc);
}

const node_cmd node_cmd_status = {
	.name = "status",
	.summary = "show a task's state, queue, worker, times, deliveries and result",
	.synopsis = "[--json] [--broker URL] ID",
	.description =
	    "Times are ISO-8601 UTC with milliseconds, with how long the task waited in its\n"
	    "queue and ran. An id the broker does not know exits 1 (not_found).",
	.opts = status_opts,
	.main = status_main,
	.min_pos = 1,
	.max_pos = 1,
};
