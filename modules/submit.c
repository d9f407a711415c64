/* node submit: send tasks to the broker (one from the command line, or a
 * file holding a task object or an array of them), print their ids, and with
 * --wait print their results as they finish.
 *
 * The throughput path: tasks go in batches (up to --batch per submit
 * message, also bounded in bytes) with several batches in flight; results are
 * fetched with parked `get` calls over chunks of ids, several in flight,
 * starting as soon as a batch is acknowledged. Ids are generated here when a
 * task has none, so a batch that nng re-sends after a broker restart creates
 * each task once (the broker keeps one task per id). */
#include <errno.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "commands.h"
#include "core/file.h"
#include "core/rand.h"
#include "taskcli.h"

#define SUB_MAX_FILE (1024u << 20)   /* task files up to 1 GiB */
#define SUB_BATCH_BYTES (4u << 20)   /* a submit message carries about this much at most */
#define SUB_GET_CHUNK 1000           /* ids per get when many tasks wait */
#define SUB_GET_SINGLE 64            /* up to this many tasks: one get per id */
#define SUB_GET_INFLIGHT 8

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

/* ---- ids ---- */

typedef struct sub_rng {
	uint64_t s[4];
} sub_rng;

static uint64_t sub_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256**, seeded from the system generator: UUID-4 ids at memory speed. */
static uint64_t sub_next(sub_rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = sub_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = sub_rotl(s[3], 45);
	return res;
}

static void sub_uuid(sub_rng *r, char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	uint64_t x = sub_next(r), y = sub_next(r);
	memcpy(b, &x, 8);
	memcpy(b + 8, &y, 8);
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	int o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
}

/* [A-Za-z0-9._:-]{1,128} */
static int sub_name_ok(const char *s)
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

/* ---- reading and checking tasks ---- */

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
static int sub_check_task(const cJSON *t, const char *where, node_err *err)
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
	if ((v = cJSON_GetObjectItemCaseSensitive(t, "id")) != NULL && (!cJSON_IsString(v) || !sub_name_ok(v->valuestring))) {
		sub_got(v, got, sizeof got);
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
		    "%s%sid: expected 1 to 128 characters of A-Z a-z 0-9 . _ : -, got %s", where, sep, got);
	}
	if ((v = cJSON_GetObjectItemCaseSensitive(t, "queue")) != NULL && (!cJSON_IsString(v) || !sub_name_ok(v->valuestring))) {
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

/* Roughly the bytes of v as compact JSON (to keep messages under the limit). */
static size_t sub_json_size(const cJSON *v, int depth)
{
	size_t n = v->string ? strlen(v->string) + 4 : 0;
	if (depth > 200)
		return n + 16;
	if (cJSON_IsString(v))
		return n + strlen(v->valuestring) + 2;
	if (cJSON_IsNumber(v))
		return n + 24;
	if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
		n += 2;
		for (const cJSON *c = v->child; c; c = c->next)
			n += sub_json_size(c, depth + 1) + 1;
		return n;
	}
	return n + 5;
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

/* Parse a task file's text into an array of tasks; errors name the line and column. */
static int sub_parse_text(const char *text, size_t len, const char *src, cJSON **out, node_err *err)
{
	const char *end = NULL;
	int trailing = 0;
	cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (doc != NULL) {
		const char *p = end ? end : text + len;
		while (p < text + len && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
			p++;
		if (p < text + len) {
			cJSON_Delete(doc);
			doc = NULL;
			end = p;
			trailing = 1;
		}
	}
	if (doc == NULL) {
		int all_space = 1;
		for (const char *q = text; q < text + len && all_space; q++)
			all_space = (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r');
		if (all_space)
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
		int rest_blank = 1;
		for (const char *q = end + 1; q < text + len && rest_blank; q++)
			rest_blank = (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r');
		if (rest_blank)
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
			    "%s:%d:%d: invalid JSON near \"%s\" at the end of the input", src, line, col, near);
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s:%d:%d: invalid JSON near \"%s\"", src, line, col, near);
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

/* ---- the run: batches in flight, gets in flight, one event queue ---- */

enum { EV_SUBMIT, EV_GET };

typedef struct sub_ev {
	struct sub_run *run;
	int kind;
	int slot;      /* batch index, or the chunk below */
	struct sub_chunk *chunk;
	int rc;
	cJSON *reply;
	node_err err;
	struct sub_ev *next;
} sub_ev;

typedef struct sub_chunk {
	int *idx; /* task indices */
	int n;
	struct sub_chunk *next;
} sub_chunk;

typedef struct sub_batch {
	int first, count;
	int state; /* 0 not sent, 1 in flight, 2 acknowledged, 3 refused or failed */
} sub_batch;

typedef struct sub_run {
	taskcli *t;
	const char *src;      /* file name for messages, or NULL */
	cJSON *tasks;         /* tasks not yet sent, at the head of this array */
	int ntasks;
	char **ids;
	sub_batch *batches;
	int nbatches, next_batch, printed_batches, batches_inflight, inflight_max;
	int wait;
	long long wait_s;     /* -1: forever */
	int64_t deadline;     /* monotonic ms, or 0 */
	sub_chunk *chunks, *chunks_tail;
	int gets_inflight, gets_max, chunk_size;
	int failed, timed_out, finished, stopped, unknown;
	int exit_status;      /* first error's status */
	int submit_failed;    /* a batch failed: send no more */
	int get_failed;       /* a get failed: ask no more */
	unsigned char *done;  /* --wait: the task's result (or timeout) was printed */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	sub_ev *head, *tail;
} sub_run;

static void sub_on_reply(int rc, cJSON *reply, const node_err *err, void *arg)
{
	sub_ev *ev = arg;
	sub_run *r = ev->run;
	ev->rc = rc;
	ev->reply = reply;
	if (err)
		ev->err = *err;
	ev->next = NULL;
	pthread_mutex_lock(&r->lock);
	if (r->tail)
		r->tail->next = ev;
	else
		r->head = ev;
	r->tail = ev;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

/* Record the first error's exit status and say what went wrong. */
static void sub_error(sub_run *r, const node_err *err, const char *fmt, ...) NODE_PRINTF(3, 4);
static void sub_error(sub_run *r, const node_err *err, const char *fmt, ...)
{
	char what[512] = ""; /* "task 3 (ID): ", and ids are at most 128 characters */
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(what, sizeof what, fmt, ap);
		va_end(ap);
	}
	taskcli_warn(r->t, "%s%s", what, err->msg);
	if (r->exit_status == 0)
		r->exit_status = taskcli_exit_for(err);
}

/* The broker names a task of the batch as tasks[i]; make i count from the
 * start of the whole submission. */
static void sub_renumber(node_err *err, int first)
{
	const char *p = strstr(err->msg, "tasks[");
	if (p == NULL || first == 0)
		return;
	char *end;
	long i = strtol(p + 6, &end, 10);
	if (end == p + 6 || *end != ']')
		return;
	char buf[sizeof err->msg];
	snprintf(buf, sizeof buf, "%.*stasks[%ld]%s", (int)(p - err->msg), err->msg, i + first, end + 1);
	snprintf(err->msg, sizeof err->msg, "%s", buf);
}

/* Send req (freed here) with an event that brings the reply back to the
 * loop; ev0 names the batch (slot) or the chunk it is for. */
static int sub_send(sub_run *r, cJSON *req, int timeout_ms, sub_ev ev0, node_err *err)
{
	sub_ev *ev = malloc(sizeof *ev);
	int rc = ev ? 0 : node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	if (rc == 0) {
		*ev = ev0;
		ev->run = r;
		rc = node_client_call_async(r->t->cl, req, timeout_ms, sub_on_reply, ev, err);
		if (rc != 0)
			free(ev);
	}
	cJSON_Delete(req);
	return rc;
}

static void sub_send_batch(sub_run *r)
{
	int b = r->next_batch++;
	sub_batch *bt = &r->batches[b];
	cJSON *req = taskcli_req("submit");
	cJSON *arr = cJSON_AddArrayToObject(req, "tasks");
	for (int i = 0; i < bt->count && r->tasks->child; i++) {
		cJSON *item = cJSON_DetachItemViaPointer(r->tasks, r->tasks->child);
		cJSON_AddItemToArray(arr, item);
	}
	node_err err = {0};
	if (sub_send(r, req, r->t->call_ms, (sub_ev){.kind = EV_SUBMIT, .slot = b}, &err) != 0) {
		bt->state = 3;
		r->submit_failed = 1;
		if (bt->count == 1 && err.rc == NODE_ELIMIT)
			sub_error(r, &err, "task %d (%s) is too large: ", bt->first, r->ids[bt->first]);
		else if (bt->count == 1)
			sub_error(r, &err, "task %d (%s): ", bt->first, r->ids[bt->first]);
		else
			sub_error(r, &err, "tasks %d-%d: ", bt->first, bt->first + bt->count - 1);
		return;
	}
	bt->state = 1;
	r->batches_inflight++;
}

static void sub_queue_chunk(sub_run *r, sub_chunk *c)
{
	c->next = NULL;
	if (r->chunks_tail)
		r->chunks_tail->next = c;
	else
		r->chunks = c;
	r->chunks_tail = c;
}

/* Queue gets for the ids of an acknowledged batch. */
static void sub_chunk_batch(sub_run *r, const sub_batch *bt)
{
	for (int i = 0; i < bt->count; i += r->chunk_size) {
		int n = bt->count - i < r->chunk_size ? bt->count - i : r->chunk_size;
		sub_chunk *c = calloc(1, sizeof *c);
		int *idx = malloc((size_t)n * sizeof *idx);
		if (c == NULL || idx == NULL) {
			free(c);
			free(idx);
			node_err err;
			node_err_set(&err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
			r->get_failed = 1;
			sub_error(r, &err, NULL);
			return;
		}
		for (int k = 0; k < n; k++)
			idx[k] = bt->first + i + k;
		c->idx = idx;
		c->n = n;
		sub_queue_chunk(r, c);
	}
}

static void sub_chunk_free(sub_chunk *c)
{
	if (c) {
		free(c->idx);
		free(c);
	}
}

static void sub_send_get(sub_run *r)
{
	sub_chunk *c = r->chunks;
	r->chunks = c->next;
	if (r->chunks == NULL)
		r->chunks_tail = NULL;
	long long wait_ms = taskcli_park_ms(r->deadline);
	cJSON *ids;
	cJSON *req = taskcli_get_req(wait_ms, &ids);
	for (int k = 0; k < c->n; k++)
		cJSON_AddItemToArray(ids, cJSON_CreateStringReference(r->ids[c->idx[k]]));
	node_err err = {0};
	if (sub_send(r, req, (int)wait_ms + r->t->call_ms, (sub_ev){.kind = EV_GET, .chunk = c}, &err) != 0) {
		r->get_failed = 1;
		sub_error(r, &err, "waiting for %d task%s: ", c->n, c->n == 1 ? "" : "s");
		sub_chunk_free(c);
		return;
	}
	r->gets_inflight++;
}

/* Print the acknowledged batches' ids, in order, as far as they are settled. */
static void sub_print_ids(sub_run *r)
{
	while (r->printed_batches < r->nbatches && r->batches[r->printed_batches].state >= 2) {
		sub_batch *bt = &r->batches[r->printed_batches++];
		if (bt->state != 2 || r->wait)
			continue;
		for (int i = bt->first; i < bt->first + bt->count; i++) {
			if (r->t->json) {
				taskcli_put_id_line(stdout, r->ids[i], NULL);
			} else {
				fputs(r->ids[i], stdout);
				fputc('\n', stdout);
			}
		}
	}
	fflush(stdout);
}

static void sub_print_result(sub_run *r, const cJSON *res, const char *id)
{
	const char *state = taskcli_str(res, "state");
	if (!(state && strcmp(state, "succeeded") == 0))
		r->failed++;
	r->finished++;
	taskcli_print_result(r->t, id, res, 1);
}

static void sub_print_timeout(sub_run *r, const char *id, const char *state)
{
	r->timed_out++;
	if (r->t->json) {
		taskcli_put_id_line(stdout, id, state ? state : "pending");
		return;
	}
	fflush(stdout);
	fprintf(stderr, "%s: not ready after %lld s\n", id, r->wait_s);
}

static void sub_handle_get(sub_run *r, sub_ev *ev)
{
	sub_chunk *c = ev->chunk;
	r->gets_inflight--;
	if (ev->rc != 0 && r->stopped) {
		sub_chunk_free(c);
		return;
	}
	if (ev->rc != 0) {
		r->get_failed = 1;
		sub_error(r, &ev->err, "waiting for %d task%s: ", c->n, c->n == 1 ? "" : "s");
		sub_chunk_free(c);
		return;
	}
	const cJSON *results = cJSON_GetObjectItemCaseSensitive(ev->reply, "results");
	if (!cJSON_IsArray(results) || cJSON_GetArraySize(results) != c->n) {
		node_err err;
		node_err_set(&err, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "the broker's get reply has %d results for %d ids",
		    cJSON_GetArraySize(results), c->n);
		r->get_failed = 1;
		sub_error(r, &err, NULL);
		sub_chunk_free(c);
		return;
	}
	int expired = r->deadline && taskcli_mono_ms() >= r->deadline;
	int left = 0;
	const cJSON *res = results->child;
	for (int k = 0; k < c->n; k++, res = res->next) {
		int i = c->idx[k];
		const char *state = taskcli_str(res, "state");
		if (taskcli_state_finished(state)) {
			sub_print_result(r, res, r->ids[i]);
			r->done[i] = 1;
		} else if (expired) {
			sub_print_timeout(r, r->ids[i], state);
			r->done[i] = 1;
		} else {
			c->idx[left++] = i;
		}
	}
	fflush(stdout);
	if (left > 0) {
		c->n = left;
		sub_queue_chunk(r, c);
	} else {
		sub_chunk_free(c);
	}
}

static void sub_handle_submit(sub_run *r, sub_ev *ev)
{
	sub_batch *bt = &r->batches[ev->slot];
	r->batches_inflight--;
	if (ev->rc != 0) {
		bt->state = 3;
		r->submit_failed = 1;
		if (r->stopped)
			return;
		sub_renumber(&ev->err, bt->first);
		const char *who = ev->err.rc == NODE_EREMOTE ? "the broker refused " : "";
		if (ev->err.rc == NODE_ETIMEDOUT || ev->err.rc == NODE_ECLOSED)
			sub_error(r, &ev->err, NULL); /* the broker's address and the time say it all */
		else if (bt->count == 1)
			sub_error(r, &ev->err, "%stask %d (%s): ", who, bt->first, r->ids[bt->first]);
		else
			sub_error(r, &ev->err, "%stasks %d-%d: ", who, bt->first, bt->first + bt->count - 1);
		return;
	}
	/* The broker answers with the ids in order; they are ours unless it
	 * changed them, and then its ids are the ones that count. */
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(ev->reply, "ids");
	if (cJSON_IsArray(ids) && cJSON_GetArraySize(ids) == bt->count) {
		int i = bt->first;
		for (const cJSON *v = ids->child; v; v = v->next, i++) {
			if (cJSON_IsString(v) && strcmp(v->valuestring, r->ids[i]) != 0) {
				char *d = strdup(v->valuestring);
				if (d) {
					free(r->ids[i]);
					r->ids[i] = d;
				}
			}
		}
	}
	bt->state = 2;
	if (r->wait)
		sub_chunk_batch(r, bt);
}

static sub_ev *sub_next_event(sub_run *r)
{
	pthread_mutex_lock(&r->lock);
	while (r->head == NULL) {
		/* Not longer: the loop looks for a stop request between events. */
		if (taskcli_cond_wait_ms(&r->cond, &r->lock, 100) == ETIMEDOUT)
			break;
	}
	sub_ev *ev = r->head;
	if (ev) {
		r->head = ev->next;
		if (r->head == NULL)
			r->tail = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	return ev;
}

static void sub_loop(sub_run *r)
{
	for (;;) {
		if (!r->stopped && node_stop_requested(r->t->ctx->stop)) {
			r->stopped = 1;
			taskcli_warn(r->t, "interrupted");
			if (r->exit_status == 0)
				r->exit_status = NODE_EXIT_FAIL;
			/* Fail what is in flight now rather than wait for it. */
			node_client_close(r->t->cl);
			r->t->cl = NULL;
		}
		if (!r->stopped) {
			/* A refused batch stops the sending, not the wait for what was accepted. */
			while (!r->submit_failed && r->next_batch < r->nbatches && r->batches_inflight < r->inflight_max)
				sub_send_batch(r);
			while (!r->get_failed && r->chunks && r->gets_inflight < r->gets_max)
				sub_send_get(r);
		}
		int sending = !r->stopped && !r->submit_failed && r->next_batch < r->nbatches;
		int getting = !r->stopped && !r->get_failed && r->chunks != NULL;
		if (r->batches_inflight == 0 && r->gets_inflight == 0 && !sending && !getting)
			break;
		sub_ev *ev = sub_next_event(r);
		if (ev == NULL)
			continue;
		if (ev->kind == EV_SUBMIT) {
			sub_handle_submit(r, ev);
			sub_print_ids(r);
		} else {
			sub_handle_get(r, ev);
		}
		cJSON_Delete(ev->reply);
		free(ev);
	}
	/* Batches never sent count as settled for printing. */
	for (int b = 0; b < r->nbatches; b++)
		if (r->batches[b].state < 2)
			r->batches[b].state = 3;
	sub_print_ids(r);
	while (r->chunks) {
		sub_chunk *c = r->chunks;
		r->chunks = c->next;
		sub_chunk_free(c);
	}
	/* --wait: accepted tasks whose result could not be had are named. */
	for (int b = 0; r->wait && b < r->nbatches; b++) {
		const sub_batch *bt = &r->batches[b];
		for (int i = bt->first; bt->state == 2 && i < bt->first + bt->count; i++) {
			if (r->done[i])
				continue;
			r->unknown++;
			if (r->t->json) {
				taskcli_put_id_line(stdout, r->ids[i], "unknown");
			} else {
				fflush(stdout);
				fprintf(stderr, "%s: submitted; result unknown (%s)\n", r->ids[i], r->stopped ? "interrupted" : "waiting failed");
			}
		}
	}
	fflush(stdout);
}

/* ---- building the tasks ---- */

/* The command line's defaults for the tasks, and how to send them. */
typedef struct sub_opts {
	long long prio, batch, inflight;
	const char *queue, *id;
	cJSON *kwargs, *options; /* NULL when not given */
} sub_opts;

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
static int sub_read_opts(taskcli *t, const node_args *a, sub_opts *o)
{
	node_err err = {0};
	memset(o, 0, sizeof *o);
	if (node_args_int(a, "priority", 0, 9, -1, &o->prio, &err) != 0 || node_args_int(a, "batch", 1, 10000, 5000, &o->batch, &err) != 0 ||
	    node_args_int(a, "inflight", 1, 64, 6, &o->inflight, &err) != 0)
		return taskcli_usage(t, "%s", err.msg);
	o->queue = node_args_get(a, "queue");
	o->id = node_args_get(a, "id");
	if (o->queue && !sub_name_ok(o->queue))
		return taskcli_usage(t, "--queue: expected 1 to 128 characters of A-Z a-z 0-9 . _ : -, got \"%s\"", o->queue);
	if (o->id && !sub_name_ok(o->id))
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
static int sub_load(sub_run *r, const node_args *a, const sub_opts *o)
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

/* Room for every task's id, batch and "done" mark. */
static int sub_alloc(sub_run *r)
{
	size_t n = (size_t)cJSON_GetArraySize(r->tasks) + 1;
	r->ntasks = (int)n - 1;
	r->ids = calloc(n, sizeof *r->ids);
	r->batches = calloc(n, sizeof *r->batches);
	r->done = calloc(n, 1);
	if (r->ids == NULL || r->batches == NULL || r->done == NULL) {
		taskcli_warn(r->t, "out of memory");
		return NODE_EXIT_FAIL;
	}
	return 0;
}

static void sub_free(sub_run *r)
{
	for (int k = 0; r->ids && k < r->ntasks; k++)
		free(r->ids[k]);
	free(r->ids);
	free(r->batches);
	free(r->done);
	cJSON_Delete(r->tasks);
}

/* What a task leaves out, from --queue, --priority, --id, --kwargs, --options. */
static void sub_defaults(cJSON *task, const sub_opts *o)
{
	if (!cJSON_IsObject(task))
		return; /* sub_check_task says what is wrong */
	if (o->queue && !cJSON_HasObjectItem(task, "queue"))
		cJSON_AddStringToObject(task, "queue", o->queue);
	if (o->prio >= 0 && !cJSON_HasObjectItem(task, "priority"))
		cJSON_AddNumberToObject(task, "priority", (double)o->prio);
	if (o->id && !cJSON_HasObjectItem(task, "id"))
		cJSON_AddStringToObject(task, "id", o->id);
	if (o->kwargs && !cJSON_HasObjectItem(task, "kwargs"))
		cJSON_AddItemToObject(task, "kwargs", cJSON_Duplicate(o->kwargs, 1));
	if (o->options && !cJSON_HasObjectItem(task, "options"))
		cJSON_AddItemToObject(task, "options", cJSON_Duplicate(o->options, 1));
}

static void sub_seed(sub_rng *rng)
{
	node_err err = {0};
	if (node_rand_bytes(rng->s, sizeof rng->s, &err) == 0)
		return;
	/* No system generator: ids need to be unique, not unguessable. */
	uint64_t seed = (uint64_t)taskcli_mono_ms() ^ ((uint64_t)getpid() << 32);
	for (int i = 0; i < 4; i++)
		rng->s[i] = seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
}

/* Task i's id, generated when it has none, into r->ids[i]. */
static int sub_take_id(sub_run *r, int i, cJSON *task, sub_rng *rng)
{
	const char *tid = taskcli_str(task, "id");
	char gen[37];
	if (tid == NULL) {
		sub_uuid(rng, gen);
		cJSON_AddStringToObject(task, "id", gen);
		tid = gen;
	}
	r->ids[i] = strdup(tid);
	return r->ids[i] ? 0 : NODE_ENOMEM;
}

/* Put task i (about sz bytes) in the last batch, or start a new one: up to
 * max tasks and about SUB_BATCH_BYTES each; *bytes counts the last batch's. */
static void sub_batch_add(sub_run *r, int i, size_t sz, long long max, size_t *bytes)
{
	sub_batch *last = r->nbatches ? &r->batches[r->nbatches - 1] : NULL;
	if (last == NULL || last->count >= max || (*bytes + sz > SUB_BATCH_BYTES && last->count > 0)) {
		last = &r->batches[r->nbatches++];
		last->first = i;
		last->count = 0;
		*bytes = 0;
	}
	last->count++;
	*bytes += sz;
}

/* Fill in, check, name and batch every task before anything is sent. */
static int sub_prepare(sub_run *r, const sub_opts *o)
{
	node_err err = {0};
	sub_rng rng;
	sub_seed(&rng);
	int file_array = r->src && r->ntasks > 1;
	size_t bytes = 0;
	int i = 0;
	for (cJSON *task = r->tasks->child; task; task = task->next, i++) {
		sub_defaults(task, o);
		char where[600];
		if (file_array)
			snprintf(where, sizeof where, "%s: [%d]", r->src, i);
		else
			snprintf(where, sizeof where, "%s", r->src ? r->src : "");
		if (sub_check_task(task, where, &err) != 0) {
			taskcli_warn(r->t, "%s", err.msg);
			return NODE_EXIT_USAGE;
		}
		if (sub_take_id(r, i, task, &rng) != 0) {
			taskcli_warn(r->t, "out of memory");
			return NODE_EXIT_FAIL;
		}
		sub_batch_add(r, i, sub_json_size(task, 0), o->batch, &bytes);
	}
	return 0;
}

/* Send the prepared batches and with --wait wait for the results; closes
 * the client. Returns the exit status. */
static int sub_go(sub_run *r, const node_args *a, const sub_opts *o)
{
	r->wait = node_args_has(a, "wait");
	r->wait_s = taskcli_wait_s(a);
	if (r->wait)
		taskcli_wait_calls(r->t);
	r->inflight_max = (int)o->inflight;
	r->deadline = taskcli_deadline(r->wait_s);
	r->chunk_size = r->ntasks <= SUB_GET_SINGLE ? 1 : SUB_GET_CHUNK;
	r->gets_max = r->ntasks <= SUB_GET_SINGLE ? SUB_GET_SINGLE : SUB_GET_INFLIGHT;
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	static char outbuf[1 << 16];
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	sub_loop(r);
	fflush(stdout);
	taskcli_close(r->t);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	if (r->exit_status != 0)
		return r->exit_status;
	if (r->failed > 0)
		return NODE_EXIT_FAIL;
	if (r->timed_out > 0)
		return NODE_EXIT_TIMEOUT;
	return 0;
}

static int submit_main(node_ctx *ctx, const node_args *a)
{
	taskcli t;
	sub_opts o;
	taskcli_init(&t, ctx, a);
	int rc = sub_read_opts(&t, a, &o);
	if (rc != 0)
		return rc;
	sub_run r;
	memset(&r, 0, sizeof r);
	r.t = &t;
	rc = sub_load(&r, a, &o);
	if (rc == 0)
		rc = sub_alloc(&r);
	if (rc == 0)
		rc = sub_prepare(&r, &o);
	cJSON_Delete(o.kwargs);
	cJSON_Delete(o.options);
	/* An empty task file submits nothing, and needs no broker. */
	if (rc == 0 && r.ntasks > 0)
		rc = taskcli_open(&t, ctx, a);
	if (rc == 0 && r.ntasks > 0)
		rc = sub_go(&r, a, &o);
	sub_free(&r);
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
