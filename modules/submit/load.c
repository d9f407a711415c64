/* node submit's input: a task file, standard input or TASK ARG... from the
 * command line, read into an array of tasks, each checked as the broker will
 * check it so that mistakes name the file and index before anything is sent. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "submit.h"

#define SUB_MAX_FILE (1024u << 20)   /* task files up to 1 GiB */

/* [A-Za-z0-9._:-]{1,128} */
int submit_name_ok(const char *s)
{
	size_t n = 0;
	for (const char *p = s; *p; p++, n++) {
		char c = *p;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		        c == ':' || c == '-'))
			return 0;
	}
	return n >= 1 && n <= 128;
}

/* "got ..." for error messages: the value's JSON, shortened. */
static void sub_got(const cJSON *v, char *out, size_t n)
{
	char *s = cJSON_PrintUnformatted(v);
	if (s == NULL) {
		snprintf(out, n, "?");
		return;
	}
	if (strlen(s) > 40)
		snprintf(out, n, "%.37s...", s);
	else
		snprintf(out, n, "%s", s);
	cJSON_free(s);
}

/* Check one task as the broker will (protocol "submit"), so mistakes are
 * reported with the file and index before anything is sent. where is
 * "FILE: [3]" or "FILE" or "". Fills err and returns NODE_EINVAL on error. */
int submit_check_task(const cJSON *t, const char *where, node_err *err)
{
	static const char *const keys[] = {"id", "name", "args", "kwargs", "queue", "priority", "options", NULL};
	const char *sep = *where ? ": " : "";
	char got[64];
	if (!cJSON_IsObject(t)) {
		sub_got(t, got, sizeof got);
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s%sexpected a task object, got %s", where, sep, got);
	}
	for (const cJSON *f = t->child; f; f = f->next) {
		int known = 0;
		for (int i = 0; keys[i] && !known; i++)
			known = f->string && strcmp(f->string, keys[i]) == 0;
		if (!known)
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
			    "%s%sunknown key \"%s\" (a task has id, name, args, kwargs, queue, priority, options)", where, sep,
			    f->string ? f->string : "");
	}
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, "name");
	if (v == NULL)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s%smissing \"name\" (the task to run, e.g. \"add\")", where, sep);
	if (!cJSON_IsString(v) || strlen(v->valuestring) < 1 || strlen(v->valuestring) > 128) {
		sub_got(v, got, sizeof got);
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s%sname: expected a string of 1 to 128 characters, got %s", where, sep, got);
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(t, "id")) != NULL && (!cJSON_IsString(v) || !submit_name_ok(v->valuestring))) {
		sub_got(v, got, sizeof got);
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
		    "%s%sid: expected 1 to 128 characters of A-Z a-z 0-9 . _ : -, got %s", where, sep, got);
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(t, "queue")) != NULL && (!cJSON_IsString(v) || !submit_name_ok(v->valuestring))) {
		sub_got(v, got, sizeof got);
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
		    "%s%squeue: expected 1 to 128 characters of A-Z a-z 0-9 . _ : -, got %s", where, sep, got);
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(t, "priority")) != NULL &&
	    (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9 || v->valuedouble != (double)(int)v->valuedouble)) {
		sub_got(v, got, sizeof got);
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s%spriority: expected an integer from 0 to 9, got %s", where, sep, got);
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(t, "args")) != NULL && !cJSON_IsArray(v)) {
		sub_got(v, got, sizeof got);
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s%sargs: expected an array, got %s", where, sep, got);
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(t, "kwargs")) != NULL && !cJSON_IsObject(v)) {
		sub_got(v, got, sizeof got);
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s%skwargs: expected an object, got %s", where, sep, got);
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(t, "options")) != NULL && !cJSON_IsObject(v)) {
		sub_got(v, got, sizeof got);
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s%soptions: expected an object, got %s", where, sep, got);
	}
	return 0;
}

/* Read all of stdin. */
static int sub_read_stdin(char **out, size_t *len, node_err *err)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap + 1);
	if (buf == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	for (;;) {
		if (n == cap) {
			if (cap >= SUB_MAX_FILE) {
				free(buf);
				return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "standard input: more than %u MiB", SUB_MAX_FILE >> 20);
			}
			cap *= 2;
			char *b = realloc(buf, cap + 1);
			if (b == NULL) {
				free(buf);
				return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
			}
			buf = b;
		}
		size_t k = fread(buf + n, 1, cap - n, stdin);
		n += k;
		if (k == 0) {
			if (ferror(stdin)) {
				int e = errno;
				free(buf);
				return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "standard input: %s", strerror(e));
			}
			break;
		}
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static int sub_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Whether [p, e) is all whitespace. */
static int sub_blank(const char *p, const char *e)
{
	for (; p < e; p++)
		if (!sub_space(*p))
			return 0;
	return 1;
}

/* Why text is not one JSON value; end is where the parser stopped, or the
 * text after the value (trailing). Says the line and column and shows what
 * stands there. */
static int sub_json_error(const char *text, size_t len, const char *src, const char *end, int trailing, node_err *err)
{
	if (sub_blank(text, text + len))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s: empty, expected a task object or an array of them", src);
	if (end == NULL || end < text || end > text + len)
		end = text;
	int line = 1, col = 1;
	for (const char *q = text; q < end; q++) {
		if (*q == '\n') {
			line++;
			col = 1;
		} else {
			col++;
		}
	}
	char near[32];
	size_t k = 0;
	for (const char *q = end; q < text + len && k < 20 && *q != '\n' && *q != '\r'; q++)
		near[k++] = (*q >= 0x20 && *q != 0x7f) ? *q : '?';
	near[k] = '\0';
	if (trailing)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
		    "%s:%d:%d: invalid JSON: text after the end of the value: \"%s\"", src, line, col, near);
	if (end >= text + len || k == 0)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
		    "%s:%d:%d: invalid JSON: unexpected end of input (an unclosed bracket or string?)", src, line, col);
	if (sub_blank(end + 1, text + len))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
		    "%s:%d:%d: invalid JSON near \"%s\" at the end of the input", src, line, col, near);
	return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s:%d:%d: invalid JSON near \"%s\"", src, line, col, near);
}

/* Parse a task file's text into an array of tasks; errors name the line and column. */
static int sub_parse_text(const char *text, size_t len, const char *src, cJSON **out, node_err *err)
{
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (doc == NULL)
		return sub_json_error(text, len, src, end, 0, err);
	const char *p = end ? end : text + len;
	while (p < text + len && sub_space(*p))
		p++;
	if (p < text + len) {
		cJSON_Delete(doc);
		return sub_json_error(text, len, src, p, 1, err);
	}
	if (cJSON_IsObject(doc)) {
		cJSON *arr = cJSON_CreateArray();
		cJSON_AddItemToArray(arr, doc);
		doc = arr;
	} else if (!cJSON_IsArray(doc)) {
		char got[64];
		sub_got(doc, got, sizeof got);
		cJSON_Delete(doc);
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s: expected a task object or an array of them, got %s", src, got);
	}
	*out = doc;
	return 0;
}

/* node submit TASK ARG...: one task from the command line. */
static cJSON *sub_task_from_argv(const node_args *a)
{
	cJSON *tasks = cJSON_CreateArray();
	cJSON *task = cJSON_CreateObject();
	cJSON_AddItemToArray(tasks, task);
	cJSON_AddStringToObject(task, "name", a->pos[0]);
	cJSON *args = cJSON_AddArrayToObject(task, "args");
	for (int i = 1; i < a->npos; i++)
		cJSON_AddItemToArray(args, taskcli_parse_arg(a->pos[i]));
	return tasks;
}

/* Whether the single positional argument names a task file. */
static int sub_is_file(const node_args *a)
{
	if (a->npos != 1)
		return 0;
	const char *s = a->pos[0];
	size_t n = strlen(s);
	if (strcmp(s, "-") == 0 || strchr(s, '/') != NULL || (n > 5 && strcmp(s + n - 5, ".json") == 0))
		return 1;
	FILE *f = fopen(s, "r");
	/* an existing file; otherwise a task name */
	if (f) {
		fclose(f);
		return 1;
	}
	return 0;
}

/* The tasks, into r->tasks: a file's (or standard input's), else the one on
 * the command line. */
int submit_load(submit_run *r, const node_args *a, const submit_flags *o)
{
	if (!sub_is_file(a)) {
		r->tasks = sub_task_from_argv(a);
		return 0;
	}
	node_err err = {0};
	int from_stdin = strcmp(a->pos[0], "-") == 0;
	char *text = NULL;
	size_t len = 0;
	r->src = from_stdin ? "standard input" : a->pos[0];
	int rc = from_stdin ? sub_read_stdin(&text, &len, &err) : node_file_read(a->pos[0], SUB_MAX_FILE, &text, &len, &err);
	if (rc == 0) {
		rc = sub_parse_text(text, len, r->src, &r->tasks, &err);
		free(text);
	}
	if (rc != 0) {
		taskcli_warn(r->t, "%s", err.msg);
		return rc == NODE_EINVAL ? NODE_EXIT_USAGE : NODE_EXIT_FAIL;
	}
	if (o->id && cJSON_GetArraySize(r->tasks) > 1)
		return taskcli_usage(r->t, "--id gives one task an id, but %s holds %d tasks", r->src, cJSON_GetArraySize(r->tasks));
	return 0;
}
