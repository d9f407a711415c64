/* node submit: send tasks to the broker (one from the command line, or a
 * file holding a task object or an array of them), print their ids, and with
 * --wait their results. This file reads the flags; modules/submit/ does the rest. */
#include <string.h>

#include "commands.h"
#include "submit/submit.h"

static const node_opt submit_opts[] = {
	{"queue", 'q', "Q", "queue (default: \"default\"; for a file: tasks that name none)"},
	{"priority", 'p', "P", "priority 0-9, higher first (for a file: tasks that set none)"},
	{"id", 0, "ID", "task id (default: a generated UUID)"},
	{"kwargs", 0, "JSON", "keyword arguments, a JSON object"},
	{"options", 0, "JSON", "task options, a JSON object (countdown, expires, retries, link)"},
	{"wait", 'w', NULL, "wait for the results and print them as they finish"},
	{"batch", 0, "N", "tasks per submit message (1-10000, default 5000)"},
	{"inflight", 0, "N", "submit messages in flight at once (1-64, default 6)"},
	TASKCLI_OPTS,
	{NULL, 0, NULL, NULL},
};

/* --kwargs / --options: a JSON object. */
static int sub_object_opt(taskcli *t, const node_args *a, const char *name, cJSON **out)
{
	const char *s = node_args_get(a, name);
	*out = NULL;
	if (s == NULL)
		return 0;
	cJSON *v = cJSON_Parse(s);
	if (!cJSON_IsObject(v)) {
		cJSON_Delete(v);
		return taskcli_usage(t, "--%s: expected a JSON object, e.g. '{\"x\": 1}', got %s", name, s);
	}
	*out = v;
	return 0;
}

/* Usage errors, before anything is read or sent. */
static int sub_read_opts(taskcli *t, const node_args *a, submit_flags *o)
{
	node_err err = {0};
	memset(o, 0, sizeof *o);
	if (node_args_int(a, "priority", 0, 9, -1, &o->prio, &err) != 0 || node_args_int(a, "batch", 1, 10000, 5000, &o->batch, &err) != 0 ||
	    node_args_int(a, "inflight", 1, 64, 6, &o->inflight, &err) != 0)
		return taskcli_usage(t, "%s", err.msg);
	o->queue = node_args_get(a, "queue");
	o->id = node_args_get(a, "id");
	if (o->queue && !submit_name_ok(o->queue))
		return taskcli_usage(t, "--queue: expected 1 to 128 characters of A-Z a-z 0-9 . _ : -, got \"%s\"", o->queue);
	if (o->id && !submit_name_ok(o->id))
		return taskcli_usage(t, "--id: expected 1 to 128 characters of A-Z a-z 0-9 . _ : -, got \"%s\"", o->id);
	if (a->npos > 1) {
		size_t n0 = strlen(a->pos[0]);
		if (strcmp(a->pos[0], "-") == 0 || (n0 > 5 && strcmp(a->pos[0] + n0 - 5, ".json") == 0))
			return taskcli_usage(t, "a task file takes no further arguments (got %d more after %s)", a->npos - 1, a->pos[0]);
	}
	int rc = sub_object_opt(t, a, "kwargs", &o->kwargs);
	if (rc == 0)
		rc = sub_object_opt(t, a, "options", &o->options);
	if (rc != 0) {
		cJSON_Delete(o->kwargs);
		o->kwargs = NULL;
	}
	return rc;
}

static int submit_main(node_ctx *ctx, const node_args *a)
{
	taskcli t;
	submit_flags o;
	taskcli_init(&t, ctx, a);
	int rc = sub_read_opts(&t, a, &o);
	if (rc != 0)
		return rc;
	submit_run r;
	memset(&r, 0, sizeof r);
	r.t = &t;
	rc = submit_load(&r, a, &o);
	if (rc == 0)
		rc = submit_alloc(&r);
	if (rc == 0)
		rc = submit_prepare(&r, &o);
	cJSON_Delete(o.kwargs);
	cJSON_Delete(o.options);
	/* An empty task file submits nothing, and needs no broker. */
	if (rc == 0 && r.ntasks > 0)
		rc = taskcli_open(&t, ctx, a);
	if (rc == 0 && r.ntasks > 0)
		rc = submit_go(&r, a, &o);
	submit_free(&r);
	return rc;
}

const node_cmd node_cmd_submit = {
	.name = "submit",
	.summary = "send tasks to the broker; print their ids, or with --wait their results",
	.synopsis = "[options] FILE|-  |  node submit [options] TASK [ARG...]",
	.description =
	    "FILE holds a task object or an array of them; - reads standard input. A single\n"
	    "argument is a FILE when it is -, ends in .json, has a / or names a file. A task is\n"
	    "{\"name\": \"add\", \"args\": [5, 5], \"kwargs\": {}, \"queue\": \"default\", \"priority\": 0,\n"
	    " \"id\": \"...\", \"options\": {}}; only name is required. TASK ARG... sends one task:\n"
	    "each ARG that is valid JSON is sent as that value, else as a string\n"
	    "(`node submit add 5 5` sends [5, 5], `node submit echo hello` sends [\"hello\"];\n"
	    "'\"5\"' sends the string \"5\"). --queue, --priority, --kwargs and --options fill\n"
	    "in what a file's tasks leave out.\n"
	    "Prints one task id per line, in order (--json: {\"id\": ...} lines). Tasks without\n"
	    "an id get a generated UUID, so a batch re-sent after a broker restart is one task.\n"
	    "\n"
	    "--wait prints each result as it finishes instead: `ID: VALUE` (a string value as\n"
	    "is, other values as JSON); a failed task prints `ID: failed: MESSAGE` on stderr.\n"
	    "With --wait, --timeout S is the wait in seconds (default: no limit); tasks not\n"
	    "finished by then print `ID: not ready after S s`. --json prints {\"id\", \"state\",\n"
	    "\"value\" or \"error\"} per task.\n"
	    "\n"
	    "Exit status: 0 all submitted (and with --wait, succeeded); 1 the broker refused\n"
	    "a batch or a task failed; 2 bad command line or task file; 5 the broker did not\n"
	    "answer, or --wait ran out of time.",
	.opts = submit_opts,
	.main = submit_main,
	.min_pos = 1,
	.max_pos = -1,
};
