/* The broker's protocol (node-protocol(7), "BROKER"): one handler per op.
 * Handlers validate outside the lock, change the store under it, journal
 * the change, and answer once the journal says it is durable. Waiting
 * requests (fetch, get) are parked, never polled. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "core/log.h"
#include "core/rand.h"

#define SUBMIT_MAX 10000
#define FETCH_MAX 10000
#define GET_MAX 10000

struct broker_fetch {
	node_call *call;
	broker_worker *w;
	broker_queue **qs;
	int nq, slots;
	int64_t deadline;
	uint32_t pipe;
	broker_fetch *next;
};

struct broker_get {
	node_call *call;
	char **ids;
	int n, pending;
	int64_t deadline;
	uint32_t pipe;
	broker_get *prev, *next;
};

/* ---- validation helpers ---- */

static int name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > BROKER_ID_MAX)
		return 0;
	for (; *s; s++)
		if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') || ('0' <= *s && *s <= '9') || strchr("._:-/@", *s)))
			return 0;
	return 1;
}

static const char *get_str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* An integer field within bounds, or def when absent; -1 on a bad value. */
static int get_int(const cJSON *o, const char *k, long long lo, long long hi, long long def, long long *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (v == NULL) {
		*out = def;
		return 0;
	}
	if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long long)v->valuedouble || v->valuedouble < lo || v->valuedouble > hi)
		return -1;
	*out = (long long)v->valuedouble;
	return 0;
}

/* ---- submit ---- */

typedef struct sub_task {
	char id[BROKER_ID_MAX + 1];
	const char *name, *queue;
	char *args, *kwargs, *options;
	int priority; /* -1: the queue's default */
} sub_task;

typedef struct sub_batch {
	broker *b;
	node_call *call;
	sub_task *in;
	broker_task **made; /* tasks created by this batch (NULL: already existed) */
	int n;
} sub_batch;

static void sub_free(sub_batch *sb)
{
	for (int i = 0; i < sb->n; i++) {
		cJSON_free(sb->in[i].args);
		cJSON_free(sb->in[i].kwargs);
		cJSON_free(sb->in[i].options);
	}
	free(sb->in);
	free(sb->made);
	free(sb);
}

static int sub_parse_one(const cJSON *o, int i, sub_task *t, node_err *err)
{
	if (!cJSON_IsObject(o))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "tasks[%d]: expected a task object", i);
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
	if (id && (!cJSON_IsString(id) || !name_ok(id->valuestring)))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "tasks[%d].id: expected 1 to %d characters of A-Z a-z 0-9 . _ : - / @", i, BROKER_ID_MAX);
	if (id)
		snprintf(t->id, sizeof t->id, "%s", id->valuestring);
	else if (node_rand_id(t->id, err) != 0)
		return NODE_EIO;
	t->name = get_str(o, "name");
	if (t->name == NULL || !name_ok(t->name))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "tasks[%d].name: expected a task name (1 to %d characters of A-Z a-z 0-9 . _ : - / @)", i, BROKER_NAME_MAX);
	const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "queue");
	t->queue = q ? get_str(o, "queue") : "default";
	if (t->queue == NULL || !name_ok(t->queue))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "tasks[%d].queue: expected a queue name (1 to %d characters of A-Z a-z 0-9 . _ : - / @)", i, BROKER_NAME_MAX);
	long long p;
	if (get_int(o, "priority", 0, BROKER_PRIORITIES - 1, -1, &p) != 0)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "tasks[%d].priority: expected an integer from 0 to 9", i);
	t->priority = (int)p;
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "args"), *k = cJSON_GetObjectItemCaseSensitive(o, "kwargs"),
		    *op = cJSON_GetObjectItemCaseSensitive(o, "options");
	if (a && !cJSON_IsArray(a))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "tasks[%d].args: expected an array", i);
	if (k && !cJSON_IsObject(k))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "tasks[%d].kwargs: expected an object", i);
	if (op && !cJSON_IsObject(op))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "tasks[%d].options: expected an object", i);
	t->args = a ? cJSON_PrintUnformatted(a) : strdup("[]");
	t->kwargs = k && k->child ? cJSON_PrintUnformatted(k) : NULL;
	t->options = op && op->child ? cJSON_PrintUnformatted(op) : NULL;
	if (t->args == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	return 0;
}

static int sub_parse(const cJSON *req, sub_batch **out, node_err *err)
{
	const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(req, "tasks");
	int n = cJSON_GetArraySize(tasks);
	if (!cJSON_IsArray(tasks) || n < 1 || n > SUBMIT_MAX)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "submit needs \"tasks\": an array of 1 to %d task objects", SUBMIT_MAX);
	sub_batch *sb = calloc(1, sizeof *sb);
	if (sb == NULL || (sb->in = calloc((size_t)n, sizeof *sb->in)) == NULL || (sb->made = calloc((size_t)n, sizeof *sb->made)) == NULL) {
		if (sb)
			free(sb->in);
		free(sb);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	int i = 0, rc = 0;
	const cJSON *o;
	cJSON_ArrayForEach(o, tasks) {
		sb->n = i + 1;
		if ((rc = sub_parse_one(o, i, &sb->in[i], err)) != 0)
			break;
		i++;
	}
	if (rc != 0) {
		sub_free(sb);
		return rc;
	}
	*out = sb;
	return 0;
}

/* Lock held. Create the batch's new tasks as COMMITTING and journal them;
 * undo everything on the first failure. */
static int sub_apply(broker *b, sub_batch *sb, node_err *err)
{
	int64_t now = broker_now_ms();
	int rc = 0;
	for (int i = 0; rc == 0 && i < sb->n; i++) {
		sub_task *in = &sb->in[i];
		if (broker_store_find(&b->st, in->id))
			continue; /* the same id twice is one task */
		broker_queue *q = broker_store_queue(&b->st, in->queue, 1);
		if (q == NULL) {
			rc = node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
			break;
		}
		if (q->depth + q->leased >= q->max_length) {
			rc = node_err_set(err, NODE_ELIMIT, "queue_full", "queue %s is full (%llu tasks; max_length %llu)", q->name,
			    (unsigned long long)(q->depth + q->leased), (unsigned long long)q->max_length);
			break;
		}
		int prio = in->priority >= 0 ? in->priority : q->default_priority;
		broker_task *t = broker_store_add(&b->st, in->id, in->name, in->args, in->kwargs, in->options, q, prio, now);
		if (t == NULL) {
			rc = node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
			break;
		}
		q->depth++; /* counted while committing so max_length holds */
		sb->made[i] = t;
		rc = broker_rec_submit(b, t, err);
	}
	if (rc != 0) {
		for (int i = 0; i < sb->n; i++)
			if (sb->made[i]) {
				sb->made[i]->queue->depth--;
				broker_store_remove(&b->st, sb->made[i]);
				sb->made[i] = NULL;
			}
	}
	return rc;
}

static void sub_done(int rc, const node_err *err, void *arg)
{
	sub_batch *sb = arg;
	broker *b = sb->b;
	int64_t now = broker_now_ms();
	int created = 0;
	pthread_mutex_lock(&b->lock);
	for (int i = 0; i < sb->n; i++) {
		broker_task *t = sb->made[i];
		if (t == NULL)
			continue;
		t->queue->depth--;
		if (rc == 0) {
			broker_store_enqueue(&b->st, t);
			t->queue->submitted++;
			broker_queue_count(t->queue, 1, now);
			created++;
		} else {
			broker_notify(b, t);
			broker_store_remove(&b->st, t);
		}
	}
	if (rc == 0)
		broker_feed(b);
	pthread_mutex_unlock(&b->lock);
	if (rc != 0) {
		node_call_reply(sb->call, node_reply_from_err(err));
	} else {
		cJSON *r = node_reply_ok(), *ids = cJSON_AddArrayToObject(r, "ids");
		for (int i = 0; i < sb->n; i++)
			cJSON_AddItemToArray(ids, cJSON_CreateString(sb->in[i].id));
		cJSON_AddNumberToObject(r, "created", created);
		node_call_reply(sb->call, r);
	}
	sub_free(sb);
}

static void op_submit(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	node_err err = {0};
	sub_batch *sb = NULL;
	if (sub_parse(req, &sb, &err) != 0) {
		node_call_reply(c, node_reply_from_err(&err));
		return;
	}
	sb->b = b;
	sb->call = c;
	pthread_mutex_lock(&b->lock);
	int rc = b->stopping ? node_err_set(&err, NODE_ECLOSED, NODE_ERR_SHUTDOWN, "the broker is shutting down") : sub_apply(b, sb, &err);
	if (rc == 0) /* under the lock: a stopping broker closes its journal only after this */
		node_journal_sync(b->journal, sub_done, sb);
	pthread_mutex_unlock(&b->lock);
	if (rc != 0) {
		node_call_reply(c, node_reply_from_err(&err));
		sub_free(sb);
	}
}

/* ---- workers: register, fetch, report, heartbeat, giveback, bye ---- */

/* The worker a request speaks for. Only register creates one: a broker that
 * restarted answers not_found so the worker registers again. */
static broker_worker *worker_of(broker *b, const cJSON *req, node_call *c, int create)
{
	const char *name = get_str(req, "worker");
	if (name == NULL || !name_ok(name)) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "expected \"worker\": the worker's name (A-Z a-z 0-9 . _ : - / @)");
		return NULL;
	}
	broker_worker *w = broker_store_worker(&b->st, name, create);
	if (w != NULL && !create && !w->registered)
		w = NULL; /* known from the journal only: it must register again */
	if (w == NULL && !create) {
		node_call_error(c, NODE_ERR_NOT_FOUND, "worker %s is not registered here (did the broker restart?)", name);
		return NULL;
	}
	if (w == NULL) {
		node_call_error(c, NODE_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	if (!w->online)
		node_info("worker %s online", w->name);
	w->online = 1;
	w->seen_ms = broker_now_ms();
	return w;
}

static char *strlist_join(const cJSON *arr)
{
	size_t n = 1;
	const cJSON *e;
	cJSON_ArrayForEach(e, arr) if (cJSON_IsString(e)) n += strlen(e->valuestring) + 1;
	char *s = calloc(1, n);
	if (s == NULL)
		return NULL;
	cJSON_ArrayForEach(e, arr) if (cJSON_IsString(e))
	{
		if (*s)
			strcat(s, ",");
		strcat(s, e->valuestring);
	}
	return s;
}

static void op_register(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	pthread_mutex_lock(&b->lock);
	broker_worker *w = worker_of(b, req, c, 1);
	if (w != NULL) {
		w->registered = 1;
		long long conc = 0, pid = 0;
		get_int(req, "concurrency", 0, 100000, 0, &conc);
		get_int(req, "pid", 0, 1LL << 31, 0, &pid);
		w->concurrency = (int)conc;
		w->pid = (int)pid;
		char *qs = strlist_join(cJSON_GetObjectItemCaseSensitive(req, "queues"));
		const char *host = get_str(req, "host");
		char *h = host ? strdup(host) : NULL;
		const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(req, "tasks");
		char *tt = cJSON_IsArray(tasks) ? cJSON_PrintUnformatted(tasks) : NULL;
		free(w->queues), free(w->host), free(w->tasks);
		w->queues = qs, w->host = h, w->tasks = tt;
		cJSON *r = node_reply_ok();
		cJSON_AddNumberToObject(r, "lease_ms", (double)b->lease_ms);
		cJSON_AddNumberToObject(r, "heartbeat_ms", (double)(b->lease_ms / 3));
		node_call_reply(c, r);
	}
	pthread_mutex_unlock(&b->lock);
}

static void fetch_free(broker_fetch *f)
{
	free(f->qs);
	free(f);
}

/* Lock held. Take up to f->slots tasks round robin over f's queues. */
static cJSON *fetch_take(broker *b, broker_fetch *f)
{
	cJSON *list = NULL;
	int64_t now = broker_now_ms();
	int got = 0, progress = 1;
	while (got < f->slots && progress) {
		progress = 0;
		for (int i = 0; i < f->nq && got < f->slots; i++) {
			broker_task *t = broker_store_dequeue(&b->st, f->qs[i]);
			if (t == NULL)
				continue;
			progress = 1;
			broker_store_lease(&b->st, t, f->w, now);
			node_err err = {0};
			broker_rec_delivery(b, t, &err); /* advisory: a lost count only delays dead-lettering */
			if (list == NULL)
				list = cJSON_CreateArray();
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "id", t->id);
			cJSON_AddStringToObject(o, "name", t->name);
			cJSON_AddRawToObject(o, "args", t->args);
			cJSON_AddRawToObject(o, "kwargs", *t->kwargs ? t->kwargs : "{}");
			if (*t->options)
				cJSON_AddRawToObject(o, "options", t->options);
			cJSON_AddStringToObject(o, "queue", t->queue->name);
			cJSON_AddNumberToObject(o, "priority", t->priority);
			cJSON_AddNumberToObject(o, "delivery", t->deliveries);
			cJSON_AddItemToArray(list, o);
			got++;
		}
	}
	return list;
}

static void fetch_answer(broker_fetch *f, cJSON *list)
{
	cJSON *r = node_reply_ok();
	cJSON_AddItemToObject(r, "tasks", list ? list : cJSON_CreateArray());
	node_call_reply(f->call, r);
}

void broker_feed(broker *b)
{
	broker_fetch **p = &b->fetches;
	while (*p) {
		broker_fetch *f = *p;
		cJSON *list = fetch_take(b, f);
		if (list == NULL) {
			p = &f->next;
			continue;
		}
		*p = f->next;
		fetch_answer(f, list);
		fetch_free(f);
	}
}

static int fetch_parse(broker *b, const cJSON *req, broker_fetch *f, node_err *err)
{
	const cJSON *qs = cJSON_GetObjectItemCaseSensitive(req, "queues"), *e;
	int n = cJSON_GetArraySize(qs);
	if (!cJSON_IsArray(qs) || n < 1 || n > 64)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "fetch needs \"queues\": an array of 1 to 64 queue names");
	long long slots, wait;
	if (get_int(req, "slots", 1, FETCH_MAX, 1, &slots) != 0 || get_int(req, "wait_ms", 0, 60000, 0, &wait) != 0)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "fetch: \"slots\" must be 1 to %d and \"wait_ms\" 0 to 60000", FETCH_MAX);
	f->qs = calloc((size_t)n, sizeof *f->qs);
	if (f->qs == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	cJSON_ArrayForEach(e, qs) {
		if (!cJSON_IsString(e) || !name_ok(e->valuestring))
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "fetch: bad queue name");
		if ((f->qs[f->nq++] = broker_store_queue(&b->st, e->valuestring, 1)) == NULL)
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	f->slots = (int)slots;
	f->deadline = broker_now_ms() + wait;
	return 0;
}

static void op_fetch(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	pthread_mutex_lock(&b->lock);
	broker_worker *w = worker_of(b, req, c, 0);
	if (w == NULL) {
		pthread_mutex_unlock(&b->lock);
		return;
	}
	broker_fetch *f = calloc(1, sizeof *f);
	node_err err = {0};
	int rc = f ? fetch_parse(b, req, f, &err) : node_err_set(&err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	if (rc == 0 && b->stopping)
		rc = node_err_set(&err, NODE_ECLOSED, NODE_ERR_SHUTDOWN, "the broker is shutting down");
	if (rc != 0) {
		pthread_mutex_unlock(&b->lock);
		node_call_reply(c, node_reply_from_err(&err));
		if (f)
			fetch_free(f);
		return;
	}
	f->call = c;
	f->w = w;
	f->pipe = node_call_pipe(c);
	cJSON *list = fetch_take(b, f);
	if (list != NULL || f->deadline <= broker_now_ms()) {
		fetch_answer(f, list);
		fetch_free(f);
	} else {
		broker_fetch **p = &b->fetches; /* park at the back: oldest fetch is served first */
		while (*p)
			p = &(*p)->next;
		*p = f;
	}
	pthread_mutex_unlock(&b->lock);
}

typedef struct rep_batch {
	broker *b;
	node_call *call;
	char **ids; /* finished by this report: notify watchers once durable */
	int n, accepted, ignored;
} rep_batch;

static int report_one(broker *b, broker_worker *w, const cJSON *res, rep_batch *rb, node_err *err)
{
	const char *id = get_str(res, "id");
	const cJSON *ok = cJSON_GetObjectItemCaseSensitive(res, "ok");
	broker_task *t = id ? broker_store_find(&b->st, id) : NULL;
	/* First result wins, and only from the worker holding the lease, or from
	 * the last holder while the task waits to be handed out again. */
	int holder = t && ((t->state == BROKER_STARTED && t->worker == w) || (t->state == BROKER_QUEUED && t->ran_by == w));
	if (!holder || !cJSON_IsBool(ok)) {
		rb->ignored++; /* unknown, finished, someone else's, or malformed */
		return 0;
	}
	char *text;
	const char *exact = get_str(res, "value_json");
	if (cJSON_IsTrue(ok) && exact) {
		/* The worker's own text keeps numbers exact (big integers, doubles). */
		cJSON *check = cJSON_ParseWithOpts(exact, NULL, 1); /* whole text, no trailing bytes */
		text = check ? strdup(exact) : strdup("null");
		cJSON_Delete(check);
	} else if (cJSON_IsTrue(ok)) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(res, "value");
		text = v ? cJSON_PrintUnformatted(v) : strdup("null");
	} else {
		const char *e = get_str(res, "error");
		text = strdup(e ? e : "the task failed without a message");
	}
	if (text == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	if (t->state == BROKER_QUEUED)
		node_info("task %s: late result from %s accepted (its lease had run out)", t->id, w->name);
	broker_store_finish(&b->st, t, cJSON_IsTrue(ok), text, broker_now_ms());
	t->pending = 1;
	rb->ids[rb->n++] = strdup(t->id);
	rb->accepted++;
	return broker_rec_finish(b, t, err);
}

static void report_done(int rc, const node_err *err, void *arg)
{
	rep_batch *rb = arg;
	broker *b = rb->b;
	pthread_mutex_lock(&b->lock);
	for (int i = 0; i < rb->n; i++) {
		broker_task *t = rb->ids[i] ? broker_store_find(&b->st, rb->ids[i]) : NULL;
		if (t && t->pending) {
			t->pending = 0;
			if (rc == 0)
				broker_notify(b, t);
			else
				broker_store_unfinish(&b->st, t); /* not on disk: the worker's retry is accepted again */
		}
		free(rb->ids[i]);
	}
	if (rc != 0)
		broker_feed(b);
	pthread_mutex_unlock(&b->lock);
	if (rc != 0) {
		node_call_reply(rb->call, node_reply_from_err(err));
	} else {
		cJSON *r = node_reply_ok();
		cJSON_AddNumberToObject(r, "accepted", rb->accepted);
		cJSON_AddNumberToObject(r, "ignored", rb->ignored);
		node_call_reply(rb->call, r);
	}
	free(rb->ids);
	free(rb);
}

static void op_report(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	const cJSON *results = cJSON_GetObjectItemCaseSensitive(req, "results"), *res;
	int n = cJSON_GetArraySize(results);
	if (!cJSON_IsArray(results) || n > FETCH_MAX) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "report needs \"results\": an array of at most %d results", FETCH_MAX);
		return;
	}
	rep_batch *rb = calloc(1, sizeof *rb);
	if (rb == NULL || (rb->ids = calloc((size_t)n + 1, sizeof *rb->ids)) == NULL) {
		free(rb);
		node_call_error(c, NODE_ERR_INTERNAL, "out of memory");
		return;
	}
	rb->b = b;
	rb->call = c;
	node_err err = {0};
	int rc = 0;
	pthread_mutex_lock(&b->lock);
	broker_worker *w = worker_of(b, req, c, 0);
	if (w == NULL) {
		pthread_mutex_unlock(&b->lock);
		free(rb->ids);
		free(rb);
		return;
	}
	cJSON_ArrayForEach(res, results) if (rc == 0) rc = report_one(b, w, res, rb, &err);
	if (rc == 0)
		node_journal_sync(b->journal, report_done, rb);
	pthread_mutex_unlock(&b->lock);
	if (rc != 0) { /* not journaled: undo, and the worker retries */
		node_warn("report from %s: %s", w->name, err.msg);
		report_done(rc, &err, rb);
	}
}

static void requeue_or_bury(broker *b, broker_task *t, int64_t now);

static int ids_have(const cJSON *ids, const char *id)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, ids) if (cJSON_IsString(e) && strcmp(e->valuestring, id) == 0) return 1;
	return 0;
}

/* Lock held. A heartbeat lists what the worker runs, holds and has yet to
 * report; a task leased to it for longer than a lease but absent from every
 * list was lost on the way (a fetch reply that never arrived): it moves on. */
static int heartbeat_reclaim(broker *b, broker_worker *w, const cJSON *req)
{
	const cJSON *running = cJSON_GetObjectItemCaseSensitive(req, "running");
	const cJSON *queued = cJSON_GetObjectItemCaseSensitive(req, "queued");
	if (!cJSON_IsArray(running) || !cJSON_IsArray(queued))
		return 0; /* an older worker: any message renews all its leases */
	int64_t now = broker_now_ms();
	int n = 0;
	broker_task *t = w->leased.head;
	while (t) {
		broker_task *next = t->next;
		if (now - t->started_ms > b->lease_ms && !ids_have(running, t->id) && !ids_have(queued, t->id)) {
			requeue_or_bury(b, t, now);
			n++;
		}
		t = next;
	}
	if (n) {
		node_warn("worker %s does not hold %d task%s leased to it: moved on", w->name, n, n == 1 ? "" : "s");
		broker_feed(b);
	}
	return n;
}

static void op_heartbeat(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	pthread_mutex_lock(&b->lock);
	broker_worker *w = worker_of(b, req, c, 0);
	if (w)
		heartbeat_reclaim(b, w, req);
	pthread_mutex_unlock(&b->lock);
	if (w)
		node_call_reply(c, node_reply_ok());
}

/* Lock held: back to the queue, or to dead letters when it has been tried too often. */
static void requeue_or_bury(broker *b, broker_task *t, int64_t now)
{
	node_err err = {0};
	if (t->deliveries >= t->queue->max_deliveries) {
		broker_store_bury(&b->st, t, now);
		broker_rec_simple(b, 'x', t, &err);
		node_warn("task %s (%s) went to dead letters after %u deliveries", t->id, t->name, (unsigned)t->deliveries);
		broker_notify(b, t);
	} else {
		broker_store_enqueue(&b->st, t);
	}
}

/* Lock held: the worker is gone or silent; its tasks move on, and a fetch
 * it left parked must not hand them straight back to it. */
void broker_worker_lost(broker *b, broker_worker *w, int64_t now)
{
	int n = 0, dead = 0;
	broker_fetch **p = &b->fetches;
	while (*p) {
		broker_fetch *f = *p;
		if (f->w == w) {
			*p = f->next;
			fetch_answer(f, NULL);
			fetch_free(f);
		} else {
			p = &f->next;
		}
	}
	broker_task *t = w->leased.head;
	while (t) {
		broker_task *next = t->next;
		if (!t->pending) { /* a result on its way to disk stays */
			dead += t->deliveries >= t->queue->max_deliveries;
			requeue_or_bury(b, t, now);
			n++;
		}
		t = next;
	}
	w->online = 0;
	if (n)
		node_warn("worker %s is gone: %d task%s back to their queues, %d to dead letters", w->name, n - dead,
		    n - dead == 1 ? "" : "s", dead);
	else
		node_info("worker %s offline", w->name);
}

static void op_giveback(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(req, "ids"), *e;
	if (!cJSON_IsArray(ids)) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "giveback needs \"ids\": an array of task ids");
		return;
	}
	int n = 0;
	pthread_mutex_lock(&b->lock);
	broker_worker *w = worker_of(b, req, c, 0);
	if (w == NULL) {
		pthread_mutex_unlock(&b->lock);
		return;
	}
	cJSON_ArrayForEach(e, ids) {
		broker_task *t = cJSON_IsString(e) ? broker_store_find(&b->st, e->valuestring) : NULL;
		if (t == NULL || t->state != BROKER_STARTED || t->worker != w)
			continue;
		if (t->deliveries > 0)
			t->deliveries--; /* never started: this delivery does not count */
		node_err err = {0};
		broker_rec_delivery(b, t, &err);
		broker_store_enqueue(&b->st, t);
		n++;
	}
	broker_feed(b);
	pthread_mutex_unlock(&b->lock);
	cJSON *r = node_reply_ok();
	cJSON_AddNumberToObject(r, "requeued", n);
	node_call_reply(c, r);
}

static void op_bye(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	pthread_mutex_lock(&b->lock);
	broker_worker *w = worker_of(b, req, c, 0);
	if (w) {
		broker_worker_lost(b, w, broker_now_ms());
		broker_feed(b);
	}
	pthread_mutex_unlock(&b->lock);
	if (w)
		node_call_reply(c, node_reply_ok());
}

/* ---- results: get, status ---- */

static int finished(const broker_task *t)
{
	return !t->pending && (t->state == BROKER_SUCCEEDED || t->state == BROKER_FAILED || t->state == BROKER_DEAD);
}

/* A run of 16 or more digits: a number a double may not hold exactly. */
static int long_number(const char *s)
{
	int run = 0;
	for (; *s; s++) {
		run = (*s >= '0' && *s <= '9') ? run + 1 : 0;
		if (run >= 16)
			return 1;
	}
	return 0;
}

static cJSON *result_of(broker *b, const char *id)
{
	cJSON *o = cJSON_CreateObject();
	broker_task *t = broker_store_find(&b->st, id);
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "state", t ? broker_state_name(t->pending ? BROKER_STARTED : t->state) : "pending");
	if (t && t->pending)
		t = NULL; /* its result is not on disk yet: nothing to show */
	if (t && t->state == BROKER_SUCCEEDED) {
		cJSON_AddRawToObject(o, "value", t->result);
		if (long_number(t->result)) /* readers parse numbers as doubles: give them the text */
			cJSON_AddStringToObject(o, "value_json", t->result);
	}
	else if (t && t->state == BROKER_FAILED)
		cJSON_AddStringToObject(o, "error", t->result ? t->result : "");
	else if (t && t->state == BROKER_DEAD)
		cJSON_AddStringToObject(o, "error", "dead letter: the task was delivered too often without a result");
	return o;
}

static void get_free(broker_get *g)
{
	for (int i = 0; i < g->n; i++)
		free(g->ids[i]);
	free(g->ids);
	free(g);
}

/* Lock held: answer g with the state of every id and forget it. */
static void get_answer(broker *b, broker_get *g)
{
	for (int i = 0; i < g->n; i++) { /* detach from tasks still watched */
		broker_task *t = broker_store_find(&b->st, g->ids[i]);
		broker_watch **p = t ? &t->watchers : NULL;
		while (p && *p) {
			if ((*p)->get == g) {
				broker_watch *x = *p;
				*p = x->next;
				free(x);
			} else {
				p = &(*p)->next;
			}
		}
	}
	if (g->prev)
		g->prev->next = g->next;
	else if (b->gets == g)
		b->gets = g->next;
	if (g->next)
		g->next->prev = g->prev;
	cJSON *r = node_reply_ok(), *list = cJSON_AddArrayToObject(r, "results");
	for (int i = 0; i < g->n; i++)
		cJSON_AddItemToArray(list, result_of(b, g->ids[i]));
	node_call_reply(g->call, r);
	get_free(g);
}

void broker_notify(broker *b, broker_task *t)
{
	broker_watch *w = t->watchers;
	t->watchers = NULL;
	while (w) {
		broker_watch *next = w->next;
		broker_get *g = w->get;
		free(w);
		if (--g->pending == 0)
			get_answer(b, g);
		w = next;
	}
}

static int get_parse(const cJSON *req, broker_get *g, long long *wait, node_err *err)
{
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(req, "ids"), *e;
	int n = cJSON_GetArraySize(ids);
	if (!cJSON_IsArray(ids) || n < 1 || n > GET_MAX)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "get needs \"ids\": an array of 1 to %d task ids", GET_MAX);
	if (get_int(req, "wait_ms", 0, 3600000, 0, wait) != 0)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "get: \"wait_ms\" must be an integer from 0 to 3600000");
	if ((g->ids = calloc((size_t)n, sizeof *g->ids)) == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	cJSON_ArrayForEach(e, ids) {
		if (!cJSON_IsString(e) || (g->ids[g->n++] = strdup(e->valuestring)) == NULL)
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "get: ids must be strings");
	}
	return 0;
}

/* Lock held: watch every unfinished task of g; returns how many. */
static int get_watch(broker *b, broker_get *g)
{
	int pending = 0;
	for (int i = 0; i < g->n; i++) {
		broker_task *t = broker_store_find(&b->st, g->ids[i]);
		if (t == NULL || finished(t))
			continue; /* unknown ids cannot finish: they only time out */
		broker_watch *w = malloc(sizeof *w);
		if (w == NULL)
			continue;
		w->get = g;
		w->next = t->watchers;
		t->watchers = w;
		pending++;
	}
	for (int i = 0; i < g->n; i++)
		if (!broker_store_find(&b->st, g->ids[i]))
			pending++;
	return pending;
}

static void op_get(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	broker_get *g = calloc(1, sizeof *g);
	node_err err = {0};
	long long wait = 0;
	if (g == NULL || get_parse(req, g, &wait, &err) != 0) {
		node_call_reply(c, g ? node_reply_from_err(&err) : node_reply_error(NODE_ERR_INTERNAL, "out of memory"));
		if (g)
			get_free(g);
		return;
	}
	g->call = c;
	g->pipe = node_call_pipe(c);
	g->deadline = broker_now_ms() + wait;
	pthread_mutex_lock(&b->lock);
	g->pending = wait > 0 && !b->stopping ? get_watch(b, g) : 0;
	g->next = b->gets;
	if (b->gets)
		b->gets->prev = g;
	b->gets = g;
	if (g->pending == 0)
		get_answer(b, g);
	pthread_mutex_unlock(&b->lock);
}

static void add_time(cJSON *o, const char *k, int64_t ms)
{
	if (ms)
		cJSON_AddNumberToObject(o, k, (double)ms);
}

static void op_status(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	const char *id = get_str(req, "id");
	if (id == NULL) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "status needs \"id\"");
		return;
	}
	pthread_mutex_lock(&b->lock);
	broker_task *t = broker_store_find(&b->st, id);
	if (t == NULL) {
		pthread_mutex_unlock(&b->lock);
		node_call_error(c, NODE_ERR_NOT_FOUND, "no task %.128s (state pending: never submitted, or its result expired)", id);
		return;
	}
	cJSON *r = node_reply_ok(), *o = result_of(b, id);
	cJSON_AddStringToObject(o, "name", t->name);
	cJSON_AddStringToObject(o, "queue", t->queue->name);
	cJSON_AddNumberToObject(o, "priority", t->priority);
	if (t->ran_by)
		cJSON_AddStringToObject(o, "worker", t->ran_by->name);
	cJSON_AddNumberToObject(o, "deliveries", t->deliveries);
	add_time(o, "submitted_ms", t->submitted_ms);
	add_time(o, "started_ms", t->started_ms);
	add_time(o, "finished_ms", t->finished_ms);
	cJSON_AddRawToObject(o, "args", t->args);
	cJSON_AddRawToObject(o, "kwargs", *t->kwargs ? t->kwargs : "{}");
	if (*t->options)
		cJSON_AddRawToObject(o, "options", t->options);
	cJSON_AddItemToObject(r, "task", o);
	pthread_mutex_unlock(&b->lock);
	node_call_reply(c, r);
}

/* ---- listings: queues, workers, dead ---- */

static void op_queues(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	cJSON *r = node_reply_ok(), *list = cJSON_AddArrayToObject(r, "queues");
	int64_t now = broker_now_ms();
	pthread_mutex_lock(&b->lock);
	for (broker_queue *q = b->st.queues; q; q = q->next) {
		uint64_t consumers = 0;
		for (broker_worker *w = b->st.workers; w; w = w->next) {
			if (!w->online || !w->queues)
				continue;
			size_t n = strlen(q->name);
			for (const char *p = w->queues; (p = strstr(p, q->name)) != NULL; p += n)
				if ((p == w->queues || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) {
					consumers++;
					break;
				}
		}
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", q->name);
		cJSON_AddNumberToObject(o, "depth", (double)q->depth);
		cJSON_AddNumberToObject(o, "leased", (double)q->leased);
		cJSON_AddNumberToObject(o, "consumers", (double)consumers);
		cJSON_AddNumberToObject(o, "submitted", (double)q->submitted);
		cJSON_AddNumberToObject(o, "succeeded", (double)q->succeeded);
		cJSON_AddNumberToObject(o, "failed", (double)q->failed);
		cJSON_AddNumberToObject(o, "dead", (double)q->dead_count);
		cJSON_AddNumberToObject(o, "rate_in", broker_queue_rate(q, 1, now));
		cJSON_AddNumberToObject(o, "rate_out", broker_queue_rate(q, 0, now));
		cJSON_AddNumberToObject(o, "max_length", (double)q->max_length);
		cJSON_AddNumberToObject(o, "max_deliveries", q->max_deliveries);
		cJSON_AddItemToArray(list, o);
	}
	pthread_mutex_unlock(&b->lock);
	node_call_reply(c, r);
}

static void op_workers(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	cJSON *r = node_reply_ok(), *list = cJSON_AddArrayToObject(r, "workers");
	int64_t now = broker_now_ms();
	pthread_mutex_lock(&b->lock);
	for (broker_worker *w = b->st.workers; w; w = w->next) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", w->name);
		cJSON_AddStringToObject(o, "queues", w->queues ? w->queues : "");
		cJSON_AddNumberToObject(o, "concurrency", w->concurrency);
		cJSON_AddNumberToObject(o, "running", (double)w->running);
		cJSON_AddNumberToObject(o, "heartbeat_ago_ms", (double)(now - w->seen_ms));
		cJSON_AddStringToObject(o, "host", w->host ? w->host : "");
		cJSON_AddNumberToObject(o, "pid", w->pid);
		cJSON_AddBoolToObject(o, "online", w->online);
		cJSON_AddRawToObject(o, "tasks", w->tasks ? w->tasks : "[]");
		cJSON_AddItemToArray(list, o);
	}
	pthread_mutex_unlock(&b->lock);
	node_call_reply(c, r);
}

static int dead_requeue(broker *b, const cJSON *req, node_err *err)
{
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(req, "ids"), *e;
	int all = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "all")), n = 0;
	if (!all && !cJSON_IsArray(ids))
		return -node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "dead requeue needs \"ids\" or \"all\": true");
	for (broker_queue *q = b->st.queues; all && q; q = q->next)
		while (q->dead.head) {
			broker_task *t = q->dead.head;
			t->deliveries = 0;
			broker_rec_simple(b, 'r', t, err);
			broker_store_enqueue(&b->st, t);
			n++;
		}
	const cJSON *list = all ? NULL : ids;
	cJSON_ArrayForEach(e, list) {
		broker_task *t = cJSON_IsString(e) ? broker_store_find(&b->st, e->valuestring) : NULL;
		if (t == NULL || t->state != BROKER_DEAD)
			continue;
		t->deliveries = 0;
		broker_rec_simple(b, 'r', t, err);
		broker_store_enqueue(&b->st, t);
		n++;
	}
	broker_feed(b);
	return n;
}

static void op_dead(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	const char *action = get_str(req, "action");
	node_err err = {0};
	cJSON *r = node_reply_ok();
	pthread_mutex_lock(&b->lock);
	if (action && strcmp(action, "list") == 0) {
		cJSON *list = cJSON_AddArrayToObject(r, "tasks");
		for (broker_queue *q = b->st.queues; q; q = q->next)
			for (broker_task *t = q->dead.head; t; t = t->next) {
				cJSON *o = cJSON_CreateObject();
				cJSON_AddStringToObject(o, "id", t->id);
				cJSON_AddStringToObject(o, "name", t->name);
				cJSON_AddStringToObject(o, "queue", q->name);
				cJSON_AddNumberToObject(o, "deliveries", t->deliveries);
				cJSON_AddItemToArray(list, o);
			}
	} else if (action && strcmp(action, "requeue") == 0) {
		int n = dead_requeue(b, req, &err);
		if (n < 0) {
			cJSON_Delete(r);
			r = node_reply_from_err(&err);
		} else {
			cJSON_AddNumberToObject(r, "requeued", n);
		}
	} else if (action && strcmp(action, "purge") == 0) {
		int n = 0;
		for (broker_queue *q = b->st.queues; q; q = q->next)
			while (q->dead.head) {
				broker_task *t = q->dead.head;
				broker_rec_simple(b, 'u', t, &err);
				broker_notify(b, t);
				broker_store_remove(&b->st, t);
				n++;
			}
		cJSON_AddNumberToObject(r, "purged", n);
	} else {
		cJSON_Delete(r);
		r = node_reply_error(NODE_ERR_BAD_ARGS, "dead needs \"action\": list, requeue or purge");
	}
	pthread_mutex_unlock(&b->lock);
	node_call_reply(c, r);
}

/* ---- parked calls: time-outs and departures ---- */

void broker_expire_parked(broker *b, int64_t now, int all)
{
	broker_fetch **p = &b->fetches;
	while (*p) {
		broker_fetch *f = *p;
		if (all || f->deadline <= now) {
			*p = f->next;
			if (all && b->stopping)
				node_call_error(f->call, NODE_ERR_SHUTDOWN, "the broker is shutting down");
			else
				fetch_answer(f, NULL);
			fetch_free(f);
		} else {
			p = &f->next;
		}
	}
	broker_get *g = b->gets;
	while (g) {
		broker_get *next = g->next;
		if (all || g->deadline <= now)
			get_answer(b, g);
		g = next;
	}
}

void broker_on_disconnect(uint32_t pipe, void *arg)
{
	broker *b = arg;
	pthread_mutex_lock(&b->lock);
	broker_fetch **p = &b->fetches;
	while (*p) {
		broker_fetch *f = *p;
		if (f->pipe == pipe) {
			*p = f->next;
			node_call_error(f->call, NODE_ERR_SHUTDOWN, "the client went away"); /* frees the call; nobody reads it */
			fetch_free(f);
		} else {
			p = &f->next;
		}
	}
	for (broker_get *g = b->gets, *next; g; g = next) {
		next = g->next;
		if (g->pipe == pipe)
			get_answer(b, g);
	}
	pthread_mutex_unlock(&b->lock);
}

const node_op broker_ops[] = {
	{"submit", op_submit},
	{"register", op_register},
	{"fetch", op_fetch},
	{"report", op_report},
	{"heartbeat", op_heartbeat},
	{"giveback", op_giveback},
	{"bye", op_bye},
	{"get", op_get},
	{"status", op_status},
	{"queues", op_queues},
	{"workers", op_workers},
	{"dead", op_dead},
	{NULL, NULL},
};
