/* The broker's worker ops: register, fetch (parked until work exists),
 * report, heartbeat, giveback and bye, and what happens to the tasks of a
 * worker that goes silent. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "broker.h"
#include "core/log.h"

/* ---- workers: register, fetch, report, heartbeat, giveback, bye ---- */

/* The worker a request speaks for. Only register creates one: a broker that
 * restarted answers not_found so the worker registers again. */
static broker_worker *worker_of(broker *b, const cJSON *req, node_call *c, int create)
{
	const char *name = broker_json_str(req, "worker");
	if (name == NULL || !broker_name_ok(name)) {
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
	w->seen_ms = node_clock_wall_ms();
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

void broker_op_register(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	pthread_mutex_lock(&b->lock);
	broker_worker *w = worker_of(b, req, c, 1);
	if (w != NULL) {
		w->registered = 1;
		long long conc = 0, pid = 0;
		broker_json_int(req, "concurrency", 0, 100000, 0, &conc);
		broker_json_int(req, "pid", 0, 1LL << 31, 0, &pid);
		w->concurrency = (int)conc;
		w->pid = (int)pid;
		char *qs = strlist_join(cJSON_GetObjectItemCaseSensitive(req, "queues"));
		const char *host = broker_json_str(req, "host");
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

void broker_fetch_free(broker_fetch *f)
{
	free(f->qs);
	free(f);
}

/* Lock held. Take up to f->slots tasks round robin over f's queues. */
static cJSON *fetch_take(broker *b, broker_fetch *f)
{
	cJSON *list = NULL;
	int64_t now = node_clock_wall_ms();
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

void broker_fetch_answer(broker_fetch *f, cJSON *list)
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
		broker_fetch_answer(f, list);
		broker_fetch_free(f);
	}
}

static int fetch_parse(broker *b, const cJSON *req, broker_fetch *f, node_err *err)
{
	const cJSON *qs = cJSON_GetObjectItemCaseSensitive(req, "queues"), *e;
	int n = cJSON_GetArraySize(qs);
	if (!cJSON_IsArray(qs) || n < 1 || n > 64)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "fetch needs \"queues\": an array of 1 to 64 queue names");
	long long slots, wait;
	if (broker_json_int(req, "slots", 1, BROKER_FETCH_MAX, 1, &slots) != 0 || broker_json_int(req, "wait_ms", 0, 60000, 0, &wait) != 0)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "fetch: \"slots\" must be 1 to %d and \"wait_ms\" 0 to 60000", BROKER_FETCH_MAX);
	f->qs = calloc((size_t)n, sizeof *f->qs);
	if (f->qs == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	cJSON_ArrayForEach(e, qs) {
		if (!cJSON_IsString(e) || !broker_name_ok(e->valuestring))
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "fetch: bad queue name");
		if ((f->qs[f->nq++] = broker_store_queue(&b->st, e->valuestring, 1)) == NULL)
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	f->slots = (int)slots;
	f->deadline = node_clock_wall_ms() + wait;
	return 0;
}

void broker_op_fetch(node_call *c, const cJSON *req, void *arg)
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
			broker_fetch_free(f);
		return;
	}
	f->call = c;
	f->w = w;
	f->pipe = node_call_pipe(c);
	cJSON *list = fetch_take(b, f);
	if (list != NULL || f->deadline <= node_clock_wall_ms()) {
		broker_fetch_answer(f, list);
		broker_fetch_free(f);
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
	const char *id = broker_json_str(res, "id");
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
	const char *exact = broker_json_str(res, "value_json");
	if (cJSON_IsTrue(ok) && exact) {
		/* The worker's own text keeps numbers exact (big integers, doubles). */
		cJSON *check = cJSON_ParseWithOpts(exact, NULL, 1); /* whole text, no trailing bytes */
		text = check ? strdup(exact) : strdup("null");
		cJSON_Delete(check);
	} else if (cJSON_IsTrue(ok)) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(res, "value");
		text = v ? cJSON_PrintUnformatted(v) : strdup("null");
	} else {
		const char *e = broker_json_str(res, "error");
		text = strdup(e ? e : "the task failed without a message");
	}
	if (text == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	if (t->state == BROKER_QUEUED)
		node_info("task %s: late result from %s accepted (its lease had run out)", t->id, w->name);
	int64_t now = node_clock_wall_ms();
	long long run_ms = -1;
	broker_store_finish(&b->st, t, cJSON_IsTrue(ok), text, now);
	/* The worker's own run time, when it gives one that fits, places the
	 * start after any wait in the worker's prefetch queue. */
	if (broker_json_int(res, "run_ms", 0, now - t->started_ms, -1, &run_ms) == 0 && run_ms >= 0)
		t->started_ms = now - run_ms;
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

void broker_op_report(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	const cJSON *results = cJSON_GetObjectItemCaseSensitive(req, "results"), *res;
	int n = cJSON_GetArraySize(results);
	if (!cJSON_IsArray(results) || n > BROKER_FETCH_MAX) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "report needs \"results\": an array of at most %d results", BROKER_FETCH_MAX);
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
	int64_t now = node_clock_wall_ms();
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

void broker_op_heartbeat(node_call *c, const cJSON *req, void *arg)
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
			broker_fetch_answer(f, NULL);
			broker_fetch_free(f);
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

void broker_op_giveback(node_call *c, const cJSON *req, void *arg)
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

void broker_op_bye(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	pthread_mutex_lock(&b->lock);
	broker_worker *w = worker_of(b, req, c, 0);
	if (w) {
		broker_worker_lost(b, w, node_clock_wall_ms());
		broker_feed(b);
	}
	pthread_mutex_unlock(&b->lock);
	if (w)
		node_call_reply(c, node_reply_ok());
}
