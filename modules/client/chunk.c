/* ncl_map: checks the items, picks the chunk size and, for chunks, packs
 * k items into one `chunk` task (args [TASK, [ARGS0, ARGS1, ...]]) and
 * unpacks its result ({"v": [V0, ...], "e": {"INDEX": "message"}}) into
 * one outcome per item, so callers see items whatever travelled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

#define CHUNK_TASKS_PER_SLOT 16 /* automatic chunks: tasks each slot gets */
#define CHUNK_DEFAULT_SLOTS 2   /* when the broker lists no worker for the queue */
#define CHUNK_ASK_MS 1000       /* how long the broker may take to list its workers */

/* What the user's callback is given, item by item, and the tally of it. */
typedef struct chunk_map {
	ncl_item_fn fn;
	void *arg;
	size_t k, n;       /* items per chunk, items */
	size_t failed, first_failed, delivered;
	char first_error[200];
	char *buf;         /* one value, NUL-terminated, for fn */
	size_t cap;
	const char *errors; /* the "e" member of the chunk being unpacked */
	size_t errors_len;
	cJSON *errs;       /* parsed from it */
} chunk_map;

static int chunk_deliver(chunk_map *m, size_t i, const char *result, const char *error)
{
	m->delivered++;
	if (error && m->failed++ == 0) {
		m->first_failed = i;
		snprintf(m->first_error, sizeof m->first_error, "%s", error);
	}
	return m->fn ? m->fn(i, error ? NULL : result, error, m->arg) : 0;
}

/* Per item when there are no chunks: only the tally. */
static int chunk_plain_item(size_t index, const char *result, const char *error, void *arg)
{
	return chunk_deliver(arg, index, result, error);
}

/* ---- unpacking one chunk's result ---- */

typedef struct chunk_unpack {
	chunk_map *m;
	size_t first, count; /* the chunk's items */
	const char *v;       /* spans of the result's members */
	size_t vlen;
	const char *e;
	size_t elen;
	int stop;
} chunk_unpack;

static int chunk_member(size_t i, const char *key, size_t keylen, const char *value, size_t len, void *arg)
{
	chunk_unpack *u = arg;
	if (keylen == 1 && key[0] == 'v') {
		u->v = value;
		u->vlen = len;
	} else if (keylen == 1 && key[0] == 'e') {
		u->e = value;
		u->elen = len;
	}
	return 0;
}

static int chunk_value(size_t j, const char *key, size_t keylen, const char *value, size_t len, void *arg)
{
	chunk_unpack *u = arg;
	chunk_map *m = u->m;
	if (j >= u->count)
		return 1;
	const char *error = NULL;
	if (m->errs) {
		char name[24];
		snprintf(name, sizeof name, "%zu", j);
		error = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(m->errs, name));
	}
	if (error == NULL && len + 1 > m->cap) {
		char *b = realloc(m->buf, len + 1);
		if (b == NULL)
			error = "out of memory unpacking the chunk's result"; /* the item fails, it does not vanish */
		else {
			m->buf = b;
			m->cap = len + 1;
		}
	}
	if (error == NULL) {
		memcpy(m->buf, value, len);
		m->buf[len] = '\0';
	}
	if (chunk_deliver(m, u->first + j, m->buf, error)) {
		u->stop = 1;
		return 1;
	}
	return 0;
}

static int chunk_count(size_t j, const char *key, size_t keylen, const char *value, size_t len, void *arg)
{
	++*(size_t *)arg;
	return 0;
}

/* The whole chunk failed (or its result makes no sense): each item gets
 * the message. */
static int chunk_fail_all(chunk_map *m, size_t first, size_t count, const char *error)
{
	for (size_t j = 0; j < count; j++)
		if (chunk_deliver(m, first + j, NULL, error))
			return 1;
	return 0;
}

static int chunk_unpack_values(chunk_map *m, chunk_unpack *u);

static int chunk_item(size_t ci, const char *result, const char *error, void *arg)
{
	chunk_map *m = arg;
	chunk_unpack u = {m, ci * m->k, 0, NULL, 0, NULL, 0, 0};
	u.count = u.first + m->k <= m->n ? m->k : m->n - u.first;
	if (error)
		return chunk_fail_all(m, u.first, u.count, error);
	if (ncl_json_each(result, chunk_member, &u) != 0 || u.v == NULL || (u.v[0] != '[' && u.v[0] != '"'))
		return chunk_fail_all(m, u.first, u.count, "the chunk task's result is not {\"v\": [...]}");
	cJSON_Delete(m->errs);
	m->errs = u.e ? cJSON_ParseWithLength(u.e, u.elen) : NULL;
	cJSON *text = NULL; /* "v" as the text of a JSON string: the values' JSON */
	if (u.v[0] == '"') {
		text = cJSON_ParseWithLength(u.v, u.vlen);
		if (!cJSON_IsString(text)) {
			cJSON_Delete(text);
			return chunk_fail_all(m, u.first, u.count, "the chunk task's \"v\" is not a JSON text");
		}
		u.v = text->valuestring;
	}
	int rc = chunk_unpack_values(m, &u);
	cJSON_Delete(text);
	return rc;
}

/* Hand the values of u.v (an array's text) to the items of the chunk. */
static int chunk_unpack_values(chunk_map *m, chunk_unpack *u)
{
	/* Count first: a short answer must not leave items without an outcome. */
	size_t got = 0;
	if (ncl_json_each(u->v, chunk_count, &got) != 0 || got != u->count) {
		char msg[160];
		snprintf(msg, sizeof msg, "the chunk task returned %zu values for %zu items", got, u->count);
		return chunk_fail_all(m, u->first, u->count, msg);
	}
	int rc = ncl_json_each(u->v, chunk_value, u);
	return rc != 0 && u->stop;
}

/* ---- packing ---- */

/* Bytes of s once escaped inside a JSON string. */
static size_t chunk_escaped_len(const char *s)
{
	size_t n = 0;
	for (; *s; s++)
		n += (*s == '"' || *s == '\\' || *s == '\n' || *s == '\r' || *s == '\t') ? 2 : 1;
	return n;
}

/* Append s escaped for a JSON string at p; returns the new end. Item texts
 * are valid JSON, so the only control characters in them are white space. */
static char *chunk_escape(char *p, const char *s)
{
	for (; *s; s++) {
		char c = *s;
		if (c == '"' || c == '\\')
			*p++ = '\\';
		else if (c == '\n' || c == '\r' || c == '\t') {
			*p++ = '\\';
			c = c == '\n' ? 'n' : c == '\r' ? 'r' : 't';
		}
		*p++ = c;
	}
	return p;
}

/* The args of each chunk task: ["TASK","[A0,A1,...]"]: the items travel as
 * the text of one JSON string, so that the broker and this side never parse
 * or print their numbers (cJSON's slowest work); the worker parses them once. */
static char **chunk_pack(const char *task, const char *const *args, size_t n, size_t k, size_t *out_n)
{
	size_t m = (n + k - 1) / k, tlen = strlen(task);
	char **packs = calloc(m, sizeof *packs);
	if (packs == NULL)
		return NULL;
	for (size_t c = 0; c < m; c++) {
		size_t from = c * k, to = from + k < n ? from + k : n, len = tlen + 10;
		for (size_t i = from; i < to; i++)
			len += (args[i] ? chunk_escaped_len(args[i]) : 4) + 1;
		char *p = malloc(len);
		if ((packs[c] = p) == NULL) {
			for (size_t x = 0; x < c; x++)
				free(packs[x]);
			free(packs);
			return NULL;
		}
		p += sprintf(p, "[\"%s\",\"[", task); /* task names need no escaping (checked) */
		for (size_t i = from; i < to; i++) {
			p = chunk_escape(p, args[i] ? args[i] : "null");
			*p++ = i + 1 < to ? ',' : ']';
		}
		strcpy(p, "\"]");
	}
	*out_n = m;
	return packs;
}

/* ---- the chunk size ---- */

/* Slots of the online workers that consume queue, from the broker. */
static size_t chunk_slots(ncl_conn *c, const char *queue)
{
	cJSON *req = cJSON_CreateObject(), *reply = NULL;
	if (req == NULL || cJSON_AddStringToObject(req, "op", "workers") == NULL ||
	    ncl_call(c, req, c->call_ms < CHUNK_ASK_MS ? c->call_ms : CHUNK_ASK_MS, &reply, NULL) != 0) {
		cJSON_Delete(req);
		return 0;
	}
	cJSON_Delete(req);
	size_t slots = 0, qlen = strlen(queue);
	const cJSON *w;
	cJSON_ArrayForEach(w, cJSON_GetObjectItemCaseSensitive(reply, "workers")) {
		const char *qs = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(w, "queues"));
		const cJSON *conc = cJSON_GetObjectItemCaseSensitive(w, "concurrency");
		if (!cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(w, "online")) || qs == NULL || !cJSON_IsNumber(conc))
			continue;
		for (const char *p = qs; *p;) { /* comma-separated names */
			size_t len = strcspn(p, ",");
			if (len == qlen && strncmp(p, queue, qlen) == 0) {
				slots += conc->valueint > 0 ? (size_t)conc->valueint : 0;
				break;
			}
			p += len + (p[len] == ',');
		}
	}
	cJSON_Delete(reply);
	return slots;
}

/* At most k items of args per chunk such that the packed string of the
 * largest items stays within a quarter of the message limits (string and
 * message): the results come back in one string too, and are often as
 * large as the arguments. */
static size_t chunk_fit(const ncl_conn *c, const char *const *args, size_t n, size_t k)
{
	size_t longest = 4;
	for (size_t i = 0; i < n; i++) {
		size_t len = args[i] ? chunk_escaped_len(args[i]) : 4;
		longest = len > longest ? len : longest;
	}
	size_t cap = c->wire.limits.max_string;
	if (c->wire.limits.max_message / 2 < cap)
		cap = c->wire.limits.max_message / 2;
	cap /= 4;
	size_t fit = cap / (longest + 1);
	return fit < 1 ? 1 : fit < k ? fit : k;
}

size_t ncl_chunk_auto(ncl_conn *c, size_t n, const char *queue)
{
	if (n <= CHUNK_TASKS_PER_SLOT * CHUNK_DEFAULT_SLOTS)
		return 1;
	size_t slots = chunk_slots(c, queue ? queue : "default");
	if (slots == 0)
		slots = CHUNK_DEFAULT_SLOTS;
	size_t k = (n + CHUNK_TASKS_PER_SLOT * slots - 1) / (CHUNK_TASKS_PER_SLOT * slots);
	return k < 1 ? 1 : k > NCL_CHUNK_AUTO_MAX ? NCL_CHUNK_AUTO_MAX : k;
}

/* ---- ncl_map ---- */

static int chunk_check(ncl_conn *c, const char *task, const char *const *args, size_t n, int mode,
    const ncl_opts *opts, ncl_err *err)
{
	if (c == NULL || task == NULL || *task == '\0' || (n > 0 && args == NULL))
		return ncl_set(err, NCL_EINVAL, "ncl_map: a connection, a task name and the items' arguments are required");
	if (mode != NCL_ORDERED && mode != NCL_AS_COMPLETED)
		return ncl_set(err, NCL_EINVAL, "ncl_map: mode must be NCL_ORDERED or NCL_AS_COMPLETED, not %d", mode);
	if (strlen(task) > NCL_ID_MAX || strpbrk(task, "\"\\") || strcmp(task, "chunk") == 0)
		return ncl_set(err, NCL_EINVAL, "ncl_map: \"%.40s\" cannot be mapped (a task name of at most %d characters, not chunk)",
		    task, NCL_ID_MAX);
	if (opts && opts->queue && *opts->queue == '\0')
		return ncl_set(err, NCL_EINVAL, "ncl_map: the queue name is empty (NULL means the default queue)");
	if (opts && opts->chunk > NCL_CHUNK_MAX)
		return ncl_set(err, NCL_EINVAL, "ncl_map: chunk is %zu; at most %d items go in one task", opts->chunk,
		    NCL_CHUNK_MAX);
	char what[48];
	for (size_t i = 0; i < n; i++) {
		if (args[i] == NULL)
			continue;
		snprintf(what, sizeof what, "item %zu: args", i);
		int rc = ncl_check_json(args[i], cJSON_Array, what, err);
		if (rc != 0)
			return rc;
	}
	/* One task with the options, so that bad options fail before any submit. */
	cJSON *t = cJSON_CreateObject();
	int rc = t ? ncl_opts_apply(t, opts, 0, err) : ncl_set(err, NCL_ENOMEM, "out of memory");
	cJSON_Delete(t);
	return rc;
}

static int chunk_run(ncl_conn *c, const char *task, const char *const *args, size_t n, size_t k, int mode,
    chunk_map *m, const ncl_opts *opts, int timeout_ms, ncl_err *err)
{
	size_t nchunks = 0;
	char **packs = chunk_pack(task, args, n, k, &nchunks);
	if (packs == NULL)
		return ncl_set(err, NCL_ENOMEM, "out of memory packing %zu items in chunks of %zu", n, k);
	ncl_map_shape shape = {k, n};
	int rc = ncl_map_run(c, "chunk", (const char *const *)packs, nchunks, mode, &shape, chunk_item, m, opts,
	    timeout_ms, err);
	for (size_t i = 0; i < nchunks; i++)
		free(packs[i]);
	free(packs);
	return rc;
}

int ncl_map(ncl_conn *c, const char *task, const char *const *args_json, size_t n, int mode, ncl_item_fn fn,
    void *arg, const ncl_opts *opts, int timeout_ms, ncl_err *err)
{
	int rc = chunk_check(c, task, args_json, n, mode, opts, err);
	if (rc != 0 || n == 0)
		return rc;
	size_t k = opts && opts->chunk ? opts->chunk : ncl_chunk_auto(c, n, opts ? opts->queue : NULL);
	if (k > 1)
		k = chunk_fit(c, args_json, n, k);
	chunk_map m = {.fn = fn, .arg = arg, .k = k, .n = n};
	if (k > 1)
		rc = chunk_run(c, task, args_json, n, k, mode, &m, opts, timeout_ms, err);
	else
		rc = ncl_map_run(c, task, args_json, n, mode, NULL, chunk_plain_item, &m, opts, timeout_ms, err);
	free(m.buf);
	cJSON_Delete(m.errs);
	if (rc == NCL_ECANCEL)
		rc = ncl_set(err, NCL_ECANCEL, "map of %zu %s items stopped by its item callback after %zu", n, task,
		    m.delivered);
	else if ((rc == 0 || rc == NCL_ETASK) && m.failed > 0)
		rc = ncl_set(err, NCL_ETASK, "%zu of %zu %s items failed; the first, item %zu: %s", m.failed, n, task,
		    m.first_failed, m.first_error);
	else if (rc == NCL_ETASK)
		rc = 0; /* cannot happen: every failed task was delivered to an item */
	return rc;
}
