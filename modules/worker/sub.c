/* Sub-tasks: a task that submits tasks and waits for them (fibr) does it
 * through its context (worker_task_ctx, filled here), which goes through the
 * worker's one client connection (libnodeclient), opened on first use and
 * closed at stop once the pool is joined. While it waits the task lends its
 * slot to another thread (pool.c). Past WORKER_LEND_MAX lent slots, new
 * sub-tasks run inline at once, and a wait that could not lend runs queued
 * tasks in its own slot (its own sub-tasks first): nested futures never
 * deadlock a small pool. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "core/clock.h"
#include "worker/worker.h"

/* A sub-task: submitted to the broker, or, when no thread is left to lend
 * (WORKER_LEND_MAX), run here at once inside the submit. */
struct worker_sub {
	ncl_future *f;          /* submitted, else NULL */
	char *result, *error;   /* run here: one of them (cJSON's allocator, malloc) */
};

static worker_sub *worker_sub_new(ncl_future *f)
{
	worker_sub *s = calloc(1, sizeof *s);
	if (s)
		s->f = f;
	return s;
}

static worker *worker_sub_worker(const worker_task_ctx *ctx)
{
	return ((worker_ctx_state *)ctx->opaque)->t->w;
}

/* Take the gate for reading with the connection open: 0, or -1 with err
 * (it could not be opened, or the worker stops). The first caller opens it. */
static int worker_sub_enter(worker *w, char *err, size_t errlen)
{
	for (;;) {
		pthread_rwlock_rdlock(&w->sub_gate);
		if (w->sub_conn && !w->sub_closed)
			return 0;
		pthread_rwlock_unlock(&w->sub_gate);
		ncl_err e = {0};
		int rc = 0;
		pthread_rwlock_wrlock(&w->sub_gate);
		if (w->sub_closed)
			rc = ncl_set(&e, NCL_ECLOSED, "the worker is stopping");
		else if (w->sub_conn == NULL)
			rc = ncl_open_conf(&w->sub_conn, w->broker_url, &w->ctx->conf, &e);
		pthread_rwlock_unlock(&w->sub_gate);
		if (rc != 0) {
			snprintf(err, errlen, "%s", e.msg);
			return -1;
		}
	}
}

/* Run task name(args_json) on this thread, as the task's own work: 0 with
 * its outcome in s, -1 with err when s cannot be made. */
static int worker_sub_run_here(const worker_task_ctx *ctx, const char *name, const char *args_json, worker_sub **sub,
    char *err, size_t errlen)
{
	cJSON *args = args_json ? cJSON_Parse(args_json) : NULL, *r = NULL;
	worker_sub *s = worker_sub_new(NULL);
	if (s == NULL || (args_json && args == NULL)) {
		snprintf(err, errlen, "%s", s ? "the arguments are not JSON" : "out of memory");
		cJSON_Delete(args);
		free(s);
		return -1;
	}
	char e[WORKER_ERR_MAX];
	if (worker_task_run(ctx, name, args, NULL, &r, e, sizeof e) == 0)
		s->result = cJSON_PrintUnformatted(r);
	else
		s->error = strdup(e);
	cJSON_Delete(r);
	cJSON_Delete(args);
	if (s->result == NULL && s->error == NULL)
		s->error = strdup("out of memory");
	*sub = s;
	return 0;
}

/* 1 when a sub-task on queue is best run here and now: every thread the
 * pool may lend is taken by a waiting task (so a sub-task sent to the broker
 * might find no slot here), and this worker consumes queue. */
static int worker_sub_here(worker *w, const char *queue)
{
	if (!worker_pool_saturated(w))
		return 0;
	for (int i = 0; i < w->nqueues; i++)
		if (strcmp(w->queues[i], queue) == 0)
			return 1;
	return 0;
}

static int worker_sub_submit(const worker_task_ctx *ctx, const char *name, const char *args_json, const char *queue,
    worker_sub **sub, char *err, size_t errlen)
{
	worker *w = worker_sub_worker(ctx);
	*sub = NULL;
	if (queue == NULL)
		queue = ctx->queue;
	if (worker_sub_here(w, queue))
		return worker_sub_run_here(ctx, name, args_json, sub, err, errlen);
	if (worker_sub_enter(w, err, errlen) != 0)
		return -1;
	/* One above the parent: a started tree's sub-tasks come before new
	 * work (depth first), so few tasks wait at once. */
	ncl_opts o = {.queue = queue, .has_priority = 1, .priority = ctx->priority < 9 ? ctx->priority + 1 : 9};
	ncl_future *f = NULL;
	ncl_err e = {0};
	int rc = ncl_submit(w->sub_conn, name, args_json, &o, w->timeout_ms, &f, &e);
	pthread_rwlock_unlock(&w->sub_gate);
	if (rc == 0 && (*sub = worker_sub_new(f)) == NULL) {
		ncl_future_free(f);
		rc = ncl_set(&e, NCL_ENOMEM, "out of memory");
	}
	if (rc != 0) {
		snprintf(err, errlen, "%s", e.msg);
		return -1;
	}
	return 0;
}

/* A wait that could not lend its slot runs queued tasks in it meanwhile
 * (they may be the very sub-tasks it waits for), looking at its futures
 * between them and every WORKER_SUB_HELP_MS while there is nothing to run. */
#define WORKER_SUB_HELP_MS 50

static int worker_sub_help_loop(worker_thread *t, ncl_future **fs, size_t n, const char *const *ids, size_t nids,
    int64_t deadline, int timeout_ms, ncl_err *e)
{
	for (;;) {
		int rc = ncl_wait_all(fs, n, 0, e);
		int64_t left = deadline < 0 ? WORKER_SUB_HELP_MS : deadline - node_clock_mono_ms();
		if (rc != NCL_ETIMEDOUT)
			return rc;
		if (left <= 0) {
			char limit[32];
			ncl_fmt_ms(timeout_ms, limit, sizeof limit);
			return ncl_set(e, NCL_ETIMEDOUT, "sub-tasks did not finish in %s (the first: %s)", limit,
			    ncl_future_id(fs[0]));
		}
		if (worker_pool_help(t, ids, nids) == 0)
			ncl_wait_all(fs, n, left < WORKER_SUB_HELP_MS ? (int)left : WORKER_SUB_HELP_MS, e);
	}
}

static int worker_sub_wait_helping(worker_thread *t, ncl_future **fs, size_t n, int timeout_ms, ncl_err *e)
{
	int64_t deadline = timeout_ms < 0 ? -1 : node_clock_mono_ms() + timeout_ms;
	const char *few[16], **ids = n <= 16 ? few : malloc(n * sizeof *ids);
	size_t nids = ids ? n : 0;
	for (size_t i = 0; i < nids; i++)
		ids[i] = ncl_future_id(fs[i]);
	int rc = worker_sub_help_loop(t, fs, n, ids, nids, deadline, timeout_ms, e);
	if (ids != few)
		free(ids);
	return rc;
}

/* Every sub-task finished, well or not, is a 0; a failed one says so
 * through worker_sub_error. Those run here are finished already. */
static int worker_sub_wait(const worker_task_ctx *ctx, worker_sub *const *subs, size_t n, int timeout_ms, char *err,
    size_t errlen)
{
	worker_ctx_state *st = ctx->opaque;
	ncl_future *few[16], **fs = n <= 16 ? few : malloc(n * sizeof *fs);
	if (fs == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (subs[i]->f)
			fs[k++] = subs[i]->f;
	ncl_err e = {0};
	int rc = NCL_OK;
	if (k > 0) {
		ctx->wait_begin(ctx);
		rc = st->lent || timeout_ms == 0 ? ncl_wait_all(fs, k, timeout_ms, &e)
		                                 : worker_sub_wait_helping(st->t, fs, k, timeout_ms, &e);
		ctx->wait_end(ctx);
	}
	if (fs != few)
		free(fs);
	if (rc == NCL_OK || rc == NCL_ETASK || rc == NCL_ECLOSED || rc == NCL_ECANCEL)
		return 0;
	snprintf(err, errlen, "%s", e.msg);
	return -1;
}

static const char *worker_sub_result(const worker_sub *s)
{
	return s->f ? ncl_future_result(s->f) : s->result;
}

static const char *worker_sub_error(const worker_sub *s)
{
	if (s->f == NULL)
		return s->error;
	const char *e = ncl_future_error(s->f);
	return e || ncl_future_state(s->f) == NCL_SUCCEEDED ? e : "not finished";
}

static const char *worker_sub_id(const worker_sub *s)
{
	return s->f ? ncl_future_id(s->f) : "run inline";
}

static void worker_sub_release(worker_sub *s)
{
	if (s->f)
		ncl_future_free(s->f);
	cJSON_free(s->result);
	free(s->error);
	free(s);
}

/* Nested begin/end pairs count once: only the outer pair lends the slot. */
static void worker_sub_wait_begin(const worker_task_ctx *ctx)
{
	worker_ctx_state *st = ctx->opaque;
	if (st->depth++ == 0)
		st->lent = worker_pool_wait_begin(st->t->w);
}

static void worker_sub_wait_end(const worker_task_ctx *ctx)
{
	worker_ctx_state *st = ctx->opaque;
	if (st->depth > 0 && --st->depth == 0 && st->lent) {
		st->lent = 0;
		worker_pool_wait_end(st->t->w);
	}
}

void worker_sub_ctx(worker_thread *t, const cJSON *task, worker_task_ctx *ctx, worker_ctx_state *st)
{
	const char *queue = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task, "queue"));
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(task, "delivery");
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(task, "priority");
	*st = (worker_ctx_state){.t = t};
	*ctx = (worker_task_ctx){
		.id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task, "id")),
		.delivery = cJSON_IsNumber(d) ? d->valueint : 0,
		.queue = queue ? queue : "default",
		.priority = cJSON_IsNumber(p) && p->valueint >= 0 && p->valueint <= 9 ? p->valueint : 0,
		.opaque = st,
		.submit = worker_sub_submit,
		.wait = worker_sub_wait,
		.result = worker_sub_result,
		.error = worker_sub_error,
		.sub_id = worker_sub_id,
		.release = worker_sub_release,
		.wait_begin = worker_sub_wait_begin,
		.wait_end = worker_sub_wait_end,
	};
}

void worker_sub_close(worker *w)
{
	pthread_rwlock_wrlock(&w->sub_gate);
	w->sub_closed = 1;
	ncl_conn *c = w->sub_conn;
	w->sub_conn = NULL;
	pthread_rwlock_unlock(&w->sub_gate);
	ncl_close(c);
}
