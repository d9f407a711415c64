/* node worker: consume queues of the broker and run their tasks in a pool of
 * threads (what `celery worker -Q fibo,sqrt` does).
 *
 * usage: node worker [--queues Q,...] [--concurrency N] [--broker URL]
 *                    [--grace S] [--prefetch N]
 *
 * How it runs (one worker struct, no globals, so `node up` can host it):
 *  - N pool threads take tasks from a local queue (mutex + condvar) and run
 *    the built-in tasks of modules/worker/tasks.c.
 *  - Fetching: at most ONE fetch is outstanding, parked at the broker until
 *    work exists. It asks for as many tasks as the worker has room for: the
 *    free threads plus a prefetch allowance that follows throughput (the
 *    tasks finished in the last ~20 ms, at least 2, at most 1000), so tiny
 *    tasks come in batches of hundreds while slow ones are not hoarded. The
 *    next fetch is sent by whoever notices room (the fetch callback or a pool
 *    thread) once the local queue is down to half the allowance.
 *  - Reporting: results collect in batches; at most one report is in flight,
 *    sent by the thread that finished a task or by the previous report's
 *    callback, so results batch under load and go at once when idle.
 *  - The role's own thread registers, heartbeats, retries after failures
 *    (logging each kind of failure once), re-registers after the broker comes
 *    back, and runs the shutdown: give back unstarted tasks, let running ones
 *    finish within --grace, report, say bye. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "commands.h"
#include "core/log.h"
#include "core/transport.h"
#include "worker/tasks.h"

#define WORKER_FETCH_WAIT_MS 10000   /* how long a fetch stays parked at the broker */
#define WORKER_PREFETCH_MAX 1000     /* adaptive prefetch allowance at most */
#define WORKER_PREFETCH_FLOOR 2      /* and at least (--prefetch sets it fixed) */
#define WORKER_RATE_BUCKET_MS 10     /* throughput is counted in two such buckets */
#define WORKER_BATCH_MAX 10000       /* results in one report at most */
#define WORKER_IDS_MAX 10000         /* ids in one giveback at most */
#define WORKER_BACKOFF_MIN_MS 100
#define WORKER_BACKOFF_MAX_MS 2000
#define WORKER_ID_MAX 128
#define WORKER_QUEUES_MAX 64
#define WORKER_ERR_MAX 1024          /* bytes of a task's error message */

static const node_opt worker_opts[] = {
	{"queues", 'Q', "Q,...", "queues to consume (default: the cluster file's, else \"default\")"},
	{"concurrency", 'C', "N", "tasks run at once (default: the cluster file's, else the number of cores)"},
	{"broker", 0, "URL", "the broker's address (default: where the cluster file says it listens)"},
	{"grace", 0, "S", "on SIGTERM, seconds running tasks get to finish (default 30)"},
	{"prefetch", 0, "N", "tasks held beyond the running ones (default: adapts to throughput)"},
	{NULL, 0, NULL, NULL},
};

typedef struct worker_item {         /* a task fetched and not started yet */
	cJSON *task;                 /* the task object of the fetch reply (owned) */
	const char *id;              /* its "id", inside task */
	struct worker_item *next;
} worker_item;

typedef struct worker_batch {        /* results waiting to be reported */
	cJSON *results;              /* array of {"id","delivery","ok","value"|"error"} */
	int n;
	size_t bytes;                /* about the size of the encoded results */
	int refused;                 /* the broker refused it once: now all failures */
	struct worker_batch *next;
} worker_batch;

struct worker;

typedef struct worker_thread {
	struct worker *w;
	pthread_t thread;
	int started;
	int busy;                    /* running a task (under lock) */
	char running[WORKER_ID_MAX + 1]; /* its id, for heartbeats */
} worker_thread;

enum { WORKER_RUNNING, WORKER_DRAINING, WORKER_FLUSHING };

typedef struct worker {
	node_ctx *ctx;
	char name[256];              /* <node>-<pid> */
	char host[256];
	char *queues[WORKER_QUEUES_MAX];
	int nqueues;
	char queues_text[1024];      /* "a,b" for logs */
	int concurrency;
	int prefetch;                /* -1: adaptive */
	int grace_s;
	char broker_url[512];
	int timeout_ms;              /* calls other than fetch */
	size_t result_max;           /* bytes of one encoded result at most */
	size_t batch_bytes;          /* bytes of one report at most (about) */

	node_client *fetch_cl;       /* fetch only: closing it cancels the parked fetch */
	node_client *ctl_cl;         /* register, report, heartbeat, giveback, bye */
	/* Senders hold a gate for reading while they call; closing takes it for
	 * writing, so no call starts on a client being closed. */
	pthread_rwlock_t fetch_gate, ctl_gate;
	atomic_int fetch_closed, ctl_closed;
	cJSON *fetch_req;            /* reused: only one fetch is in flight */

	pthread_t stop_thread;
	int stop_thread_started;

	pthread_mutex_t lock;        /* everything below */
	pthread_cond_t work;         /* pool threads wait for tasks */
	pthread_cond_t wake;         /* the role thread waits for events and timers */
	worker_item *qhead, *qtail;  /* fetched, not started */
	int queued;
	int running;
	worker_thread *threads;
	worker_batch *bhead, *btail; /* results not sent yet */
	int unreported;              /* results in bhead.. and the one in flight */
	worker_batch *inflight;      /* the report in flight, or NULL */
	int fetch_inflight;
	int64_t fetch_retry_at, report_retry_at; /* 0: no wait */
	int fetch_backoff, report_backoff;
	int registered, ever_registered, need_register, reg_inflight, reg_backoff;
	int64_t reg_retry_at;
	int hb_inflight;
	int announce;                /* 1: first registration, 2: again; to log */
	int64_t hb_at;               /* next heartbeat */
	int lease_ms, heartbeat_ms;
	int stop_seen, stopping, quit, abandoned;
	worker_item *giveback;       /* tasks that came after stop */
	int ngiveback;
	int64_t rate_bucket;         /* throughput window */
	int rate_cur, rate_prev;
	uint64_t done_ok, done_failed;
	atomic_ullong fetches, reports;  /* calls sent, for the log at exit */

	pthread_mutex_t log_lock;    /* failure kinds logged since the broker last answered */
	char logged[8][48];
	int nlogged;
	atomic_int broker_down;
} worker;

static int64_t worker_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int worker_backoff_next(int *b)
{
	int cur = *b < WORKER_BACKOFF_MIN_MS ? WORKER_BACKOFF_MIN_MS : *b;
	*b = cur * 2 > WORKER_BACKOFF_MAX_MS ? WORKER_BACKOFF_MAX_MS : cur * 2;
	return cur;
}

/* ---- failures: each kind logged once until the broker answers again ---- */

/* Failures after which the broker may come back as a new process that does
 * not know this worker: it was unreachable, or said it was shutting down. */
static int worker_transport_err(const node_err *err)
{
	return err->rc == NODE_ETIMEDOUT || err->rc == NODE_ECLOSED || err->rc == NODE_EIO ||
	    (err->rc == NODE_EREMOTE && strcmp(err->code, NODE_ERR_SHUTDOWN) == 0);
}

static void worker_failed(worker *w, const char *op, const node_err *err)
{
	char kind[48];
	snprintf(kind, sizeof kind, "%s/%s", worker_transport_err(err) ? "down" : op, err->code[0] ? err->code : "error");
	pthread_mutex_lock(&w->log_lock);
	int seen = 0;
	for (int i = 0; i < w->nlogged && !seen; i++)
		seen = strcmp(w->logged[i], kind) == 0;
	if (!seen && w->nlogged < 8)
		snprintf(w->logged[w->nlogged++], sizeof w->logged[0], "%s", kind);
	if (worker_transport_err(err))
		w->broker_down = 1;
	pthread_mutex_unlock(&w->log_lock);
	if (!seen)
		node_warn("%s: %s (retrying; logged once)", op, err->msg);
	else
		node_debug("%s: %s", op, err->msg);
}

/* The broker answered: after an outage, register again (a broker restarted
 * from its journal does not know this worker). Call without w->lock. */
static void worker_answered(worker *w)
{
	pthread_mutex_lock(&w->log_lock);
	int was_down = w->broker_down, had = w->nlogged;
	w->broker_down = 0;
	w->nlogged = 0;
	pthread_mutex_unlock(&w->log_lock);
	if (!had)
		return;
	if (was_down) {
		node_info("broker %s answers again", w->broker_url);
		pthread_mutex_lock(&w->lock);
		w->need_register = 1;
		pthread_cond_signal(&w->wake);
		pthread_mutex_unlock(&w->lock);
	}
}

/* A reply with not_found means the broker does not know this worker. */
static int worker_unknown(const node_err *err)
{
	return err->rc == NODE_EREMOTE && strcmp(err->code, NODE_ERR_NOT_FOUND) == 0;
}

/* ---- fetch ---- */

static void worker_rate_tick_locked(worker *w, int64_t now)
{
	int64_t b = now / WORKER_RATE_BUCKET_MS;
	if (b != w->rate_bucket) {
		w->rate_prev = b == w->rate_bucket + 1 ? w->rate_cur : 0;
		w->rate_cur = 0;
		w->rate_bucket = b;
	}
}

static int worker_allowance_locked(worker *w)
{
	if (w->prefetch >= 0)
		return w->prefetch;
	worker_rate_tick_locked(w, worker_now_ms());
	int a = w->rate_cur + w->rate_prev;
	int floor = w->concurrency < WORKER_PREFETCH_FLOOR ? w->concurrency : WORKER_PREFETCH_FLOOR;
	return a < floor ? floor : a > WORKER_PREFETCH_MAX ? WORKER_PREFETCH_MAX : a;
}

/* How many tasks to ask for now, 0 for no fetch; marks the fetch in flight. */
static int worker_fetch_want_locked(worker *w)
{
	if (w->fetch_inflight || !w->registered || w->stopping)
		return 0;
	if (w->fetch_retry_at && worker_now_ms() < w->fetch_retry_at)
		return 0;
	int allow = worker_allowance_locked(w);
	int slots = w->concurrency + allow - w->running - w->queued;
	if (slots <= 0 || w->queued > allow / 2)
		return 0;
	w->fetch_inflight = 1;
	w->fetch_retry_at = 0;
	return slots > 10000 ? 10000 : slots;
}

static void worker_fetch_cb(int rc, cJSON *reply, const node_err *err, void *arg);

static void worker_fetch_failed(worker *w, const node_err *err)
{
	int unknown = worker_unknown(err);
	if (!w->fetch_closed) /* else: we closed it to stop */
		worker_failed(w, "fetch", err);
	pthread_mutex_lock(&w->lock);
	w->fetch_inflight = 0;
	w->fetch_retry_at = worker_now_ms() + worker_backoff_next(&w->fetch_backoff);
	if (unknown)
		w->need_register = 1;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

static void worker_fetch_send(worker *w, int slots)
{
	node_err err = {0};
	cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(w->fetch_req, "slots"), slots);
	w->fetches++;
	pthread_rwlock_rdlock(&w->fetch_gate);
	int rc = w->fetch_closed ? node_err_set(&err, NODE_ECLOSED, NODE_ERR_SHUTDOWN, "stopping")
	                         : node_client_call_async(w->fetch_cl, w->fetch_req, WORKER_FETCH_WAIT_MS + w->timeout_ms,
	                               worker_fetch_cb, w, &err);
	pthread_rwlock_unlock(&w->fetch_gate);
	if (rc != 0)
		worker_fetch_failed(w, &err);
}

/* Runs on an nng thread: queue the tasks, wake the pool, fetch again if
 * there is room. After stop, tasks go to the giveback list instead. */
static void worker_fetch_cb(int rc, cJSON *reply, const node_err *err, void *arg)
{
	worker *w = arg;
	if (rc != 0) {
		cJSON_Delete(reply);
		worker_fetch_failed(w, err);
		return;
	}
	cJSON *tasks = cJSON_GetObjectItemCaseSensitive(reply, "tasks");
	if (!cJSON_IsArray(tasks)) {
		node_err bad = {0};
		node_err_set(&bad, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "the broker's fetch reply has no \"tasks\" array");
		cJSON_Delete(reply);
		worker_fetch_failed(w, &bad);
		return;
	}
	worker_answered(w);
	worker_item *head = NULL, *tail = NULL;
	int n = 0;
	while (tasks->child) {
		cJSON *t = cJSON_DetachItemViaPointer(tasks, tasks->child);
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "id"));
		worker_item *it = id && strlen(id) <= WORKER_ID_MAX ? malloc(sizeof *it) : NULL;
		if (it == NULL) {
			node_warn("fetch: dropped a task without a usable id");
			cJSON_Delete(t);
			continue;
		}
		*it = (worker_item){t, id, NULL};
		if (tail)
			tail->next = it;
		else
			head = it;
		tail = it;
		n++;
	}
	cJSON_Delete(reply);
	pthread_mutex_lock(&w->lock);
	w->fetch_inflight = 0;
	w->fetch_backoff = 0;
	if (head && w->stopping) {
		tail->next = w->giveback;
		w->giveback = head;
		w->ngiveback += n;
	} else if (head) {
		if (w->qtail)
			w->qtail->next = head;
		else
			w->qhead = head;
		w->qtail = tail;
		w->queued += n;
		if (n == 1)
			pthread_cond_signal(&w->work);
		else
			pthread_cond_broadcast(&w->work);
	}
	int slots = worker_fetch_want_locked(w);
	pthread_mutex_unlock(&w->lock);
	if (slots > 0)
		worker_fetch_send(w, slots);
}

/* ---- report ---- */

static void worker_report_cb(int rc, cJSON *reply, const node_err *err, void *arg);

/* The next batch to send, or NULL; marks it in flight. */
static worker_batch *worker_report_take_locked(worker *w)
{
	if (w->inflight || !w->bhead || w->ctl_closed)
		return NULL;
	if (w->report_retry_at && worker_now_ms() < w->report_retry_at)
		return NULL;
	worker_batch *b = w->bhead;
	w->bhead = b->next;
	if (w->bhead == NULL)
		w->btail = NULL;
	b->next = NULL;
	w->inflight = b;
	w->report_retry_at = 0;
	return b;
}

static void worker_report_failed(worker *w, worker_batch *b, const node_err *err);

static void worker_report_send(worker *w, worker_batch *b)
{
	node_err err = {0};
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", "report");
	cJSON_AddStringToObject(req, "worker", w->name);
	/* A reference: the batch stays ours (and may be freed by the callback
	 * while req is still being deleted here). */
	cJSON_AddItemReferenceToObject(req, "results", b->results);
	w->reports++;
	pthread_rwlock_rdlock(&w->ctl_gate);
	int rc = w->ctl_closed ? node_err_set(&err, NODE_ECLOSED, NODE_ERR_SHUTDOWN, "stopping")
	                       : node_client_call_async(w->ctl_cl, req, w->timeout_ms, worker_report_cb, w, &err);
	pthread_rwlock_unlock(&w->ctl_gate);
	cJSON_Delete(req);
	if (rc != 0)
		worker_report_failed(w, b, &err);
}

/* Turn every result of a batch the broker refused into a failure saying so,
 * so that the tasks end (and are not re-run forever) if the refusal was
 * about a value. */
static void worker_batch_refuse(worker_batch *b, const node_err *err)
{
	char msg[600];
	snprintf(msg, sizeof msg, "the broker refused the result: %s", err->msg);
	cJSON *fresh = cJSON_CreateArray();
	b->bytes = 0;
	for (cJSON *r = b->results->child; r; r = r->next) {
		cJSON *f = cJSON_CreateObject();
		cJSON_AddItemToObject(f, "id", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(r, "id"), 1));
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "delivery");
		if (d)
			cJSON_AddItemToObject(f, "delivery", cJSON_Duplicate(d, 1));
		cJSON_AddFalseToObject(f, "ok");
		cJSON_AddStringToObject(f, "error", msg);
		cJSON_AddItemToArray(fresh, f);
		b->bytes += strlen(msg) + WORKER_ID_MAX + 64;
	}
	cJSON_Delete(b->results);
	b->results = fresh;
	b->refused = 1;
}

static void worker_batch_free(worker_batch *b)
{
	if (b) {
		cJSON_Delete(b->results);
		free(b);
	}
}


static void worker_batches_push_front_locked(worker *w, worker_batch *first, worker_batch *last)
{
	last->next = w->bhead;
	w->bhead = first;
	if (w->btail == NULL)
		w->btail = last;
}

/* A failed report. Transient failures keep the batch for a retry (results
 * are idempotent by task id). A batch the broker refuses as malformed is
 * split into single results, so one bad value cannot sink the others; a
 * single refused result is reported once more as a failure saying why, and
 * dropped if that is refused too. */
static void worker_report_failed(worker *w, worker_batch *b, const node_err *err)
{
	int permanent = err->rc == NODE_ELIMIT || err->rc == NODE_EINVAL ||
	    (err->rc == NODE_EREMOTE &&
	        (strcmp(err->code, NODE_ERR_BAD_REQUEST) == 0 || strcmp(err->code, NODE_ERR_BAD_ARGS) == 0 ||
	            strcmp(err->code, NODE_ERR_LIMIT) == 0 || strcmp(err->code, NODE_ERR_TOO_LARGE) == 0));
	worker_batch *first = b, *last = b;
	int drop = 0;
	if (permanent && b->n > 1) {
		node_warn("report: the broker refused a batch of %d results (%s); sending them one by one", b->n, err->msg);
		first = last = NULL;
		while (b->results->child) {
			worker_batch *one = calloc(1, sizeof *one);
			cJSON *arr = cJSON_CreateArray();
			if (one == NULL || arr == NULL) {
				free(one);
				cJSON_Delete(arr);
				break;
			}
			cJSON_AddItemToArray(arr, cJSON_DetachItemViaPointer(b->results, b->results->child));
			one->results = arr;
			one->n = 1;
			one->bytes = b->bytes / (size_t)b->n;
			if (last)
				last->next = one;
			else
				first = one;
			last = one;
		}
		/* whatever could not be split (out of memory) is dropped */
		int left = cJSON_GetArraySize(b->results);
		pthread_mutex_lock(&w->lock);
		w->unreported -= left;
		pthread_mutex_unlock(&w->lock);
		worker_batch_free(b);
		b = NULL;
	} else if (permanent && b->refused) {
		node_error("report: the broker refused a result again (%s); dropping it", err->msg);
		drop = 1;
	} else if (permanent) {
		node_error("report: the broker refused a result (%s); reporting its task as failed", err->msg);
		worker_batch_refuse(b, err);
	} else if (!w->ctl_closed) {
		worker_failed(w, "report", err);
	}
	pthread_mutex_lock(&w->lock);
	w->inflight = NULL;
	if (drop)
		w->unreported -= b->n;
	else if (first)
		worker_batches_push_front_locked(w, first, last);
	if (!permanent)
		w->report_retry_at = worker_now_ms() + worker_backoff_next(&w->report_backoff);
	if (worker_unknown(err))
		w->need_register = 1;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	if (drop)
		worker_batch_free(b);
}

static void worker_report_cb(int rc, cJSON *reply, const node_err *err, void *arg)
{
	worker *w = arg;
	pthread_mutex_lock(&w->lock);
	worker_batch *b = w->inflight;
	pthread_mutex_unlock(&w->lock);
	if (rc != 0) {
		cJSON_Delete(reply);
		worker_report_failed(w, b, err);
		return;
	}
	double ignored = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(reply, "ignored"));
	if (ignored > 0)
		node_debug("report: the broker ignored %.0f of %d results (finished before)", ignored, b->n);
	cJSON_Delete(reply);
	worker_answered(w);
	pthread_mutex_lock(&w->lock);
	w->inflight = NULL;
	w->unreported -= b->n;
	w->report_backoff = 0;
	worker_batch *next = worker_report_take_locked(w);
	if (w->stopping)
		pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	worker_batch_free(b);
	if (next)
		worker_report_send(w, next);
}

/* Queue a result for the next report. */
static void worker_result_add_locked(worker *w, cJSON *r, size_t bytes)
{
	worker_batch *b = w->btail;
	if (b == NULL || b->refused || b->n >= WORKER_BATCH_MAX || (b->n > 0 && b->bytes + bytes > w->batch_bytes)) {
		b = calloc(1, sizeof *b);
		if (b == NULL || (b->results = cJSON_CreateArray()) == NULL) {
			free(b);
			cJSON_Delete(r);
			node_error("out of memory: a result is lost (its task will be re-run)");
			return;
		}
		if (w->btail)
			w->btail->next = b;
		else
			w->bhead = b;
		w->btail = b;
	}
	cJSON_AddItemToArray(b->results, r);
	b->n++;
	b->bytes += bytes;
	w->unreported++;
}

/* ---- running a task ---- */

/* 1 when text (printed JSON) holds a number of 16 digits or more, which a
 * reader that parses numbers into doubles (cJSON) cannot keep exactly. */
static int worker_has_long_number(const char *text)
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

/* Run one task; returns its result object for the report. The value is
 * printed here, once, and carried as raw JSON text to the report. */
static cJSON *worker_run_task(worker *w, const cJSON *task, size_t *bytes)
{
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(task, "id"));
	const cJSON *name = cJSON_GetObjectItemCaseSensitive(task, "name");
	const cJSON *args = cJSON_GetObjectItemCaseSensitive(task, "args");
	const cJSON *kwargs = cJSON_GetObjectItemCaseSensitive(task, "kwargs");
	if (cJSON_IsNull(args))
		args = NULL;
	if (cJSON_IsNull(kwargs))
		kwargs = NULL;
	char err[WORKER_ERR_MAX];
	cJSON *value = NULL;
	char *text = NULL;
	int rc;
	if (!cJSON_IsString(name)) {
		snprintf(err, sizeof err, "the task has no name");
		rc = -1;
	} else
		rc = worker_task_run(name->valuestring, args, kwargs, &value, err, sizeof err);
	if (rc == 0) {
		/* the value sits 3 levels deep in a report: message, results, result */
		node_limits lim = w->ctx->wire.limits;
		lim.max_depth = lim.max_depth > 4 ? lim.max_depth - 3 : 1;
		node_err lerr = {0};
		if (node_msg_check_limits(&lim, value, &lerr) != 0) {
			snprintf(err, sizeof err, "the result exceeds the message limits: %s", lerr.msg);
			rc = -1;
		} else if ((text = cJSON_PrintUnformatted(value)) == NULL) {
			snprintf(err, sizeof err, "out of memory printing the result");
			rc = -1;
		} else if (strlen(text) > w->result_max) {
			snprintf(err, sizeof err, "the result is too large: %zu bytes (at most %zu)", strlen(text), w->result_max);
			cJSON_free(text);
			text = NULL;
			rc = -1;
		}
		cJSON_Delete(value);
	}
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
	if (rc == 0) {
		cJSON_AddTrueToObject(r, "ok");
		cJSON_free(raw->valuestring);
		raw->valuestring = text; /* both from cJSON's allocator */
		cJSON_AddItemToObject(r, "value", raw);
		*bytes = strlen(text) + strlen(id) + 48;
		/* Exact big numbers (fibo) would reach a cJSON reader as doubles
		 * (or null past 1e308): carry the exact text too. */
		if (worker_has_long_number(text)) {
			cJSON_AddStringToObject(r, "value_json", text);
			*bytes += strlen(text);
		}
	} else {
		cJSON_AddFalseToObject(r, "ok");
		cJSON_AddStringToObject(r, "error", err);
		*bytes = strlen(err) * 2 + strlen(id) + 48;
		if (node_log_enabled(NODE_LOG_DEBUG))
			node_debug("task %s (%s) failed: %s", id, cJSON_IsString(name) ? name->valuestring : "?", err);
	}
	return r;
}

static void *worker_thread_main(void *arg)
{
	worker_thread *t = arg;
	worker *w = t->w;
	node_log_set_role("worker");
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->qhead == NULL && !w->quit)
			pthread_cond_wait(&w->work, &w->lock);
		worker_item *it = w->qhead;
		if (it == NULL)
			break;
		w->qhead = it->next;
		if (w->qhead == NULL)
			w->qtail = NULL;
		w->queued--;
		w->running++;
		t->busy = 1;
		snprintf(t->running, sizeof t->running, "%s", it->id);
		int slots = worker_fetch_want_locked(w);
		pthread_mutex_unlock(&w->lock);

		if (slots > 0)
			worker_fetch_send(w, slots);
		size_t bytes = 0;
		cJSON *r = worker_run_task(w, it->task, &bytes);
		int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok"));
		cJSON_Delete(it->task);
		free(it);

		pthread_mutex_lock(&w->lock);
		t->busy = 0;
		w->running--;
		if (ok)
			w->done_ok++;
		else
			w->done_failed++;
		worker_rate_tick_locked(w, worker_now_ms());
		w->rate_cur++;
		if (w->stopping && w->running == 0)
			pthread_cond_signal(&w->wake);
		if (w->abandoned || r == NULL) {
			if (r == NULL)
				node_error("out of memory: a result is lost (its task will be re-run)");
			cJSON_Delete(r);
			continue;
		}
		worker_result_add_locked(w, r, bytes);
		worker_batch *b = worker_report_take_locked(w);
		slots = worker_fetch_want_locked(w);
		if (b || slots > 0) {
			pthread_mutex_unlock(&w->lock);
			if (b)
				worker_report_send(w, b);
			if (slots > 0)
				worker_fetch_send(w, slots);
			pthread_mutex_lock(&w->lock);
		}
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

/* ---- register, heartbeat ---- */

static void worker_register_cb(int rc, cJSON *reply, const node_err *err, void *arg)
{
	worker *w = arg;
	if (rc != 0) {
		cJSON_Delete(reply);
		if (!w->ctl_closed)
			worker_failed(w, "register", err);
		pthread_mutex_lock(&w->lock);
		w->reg_inflight = 0;
		w->reg_retry_at = worker_now_ms() + worker_backoff_next(&w->reg_backoff);
		pthread_cond_signal(&w->wake);
		pthread_mutex_unlock(&w->lock);
		return;
	}
	double lease = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(reply, "lease_ms"));
	double hb = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(reply, "heartbeat_ms"));
	cJSON_Delete(reply);
	worker_answered(w);
	pthread_mutex_lock(&w->lock);
	w->lease_ms = lease >= 100 && lease <= 86400000 ? (int)lease : 30000;
	if (!(hb >= 10 && hb <= 3600000))
		hb = w->lease_ms / 3;
	w->heartbeat_ms = (int)hb;
	int first = !w->ever_registered;
	w->reg_inflight = 0;
	w->reg_backoff = 0;
	w->need_register = 0;
	w->registered = 1;
	w->ever_registered = 1;
	w->fetch_retry_at = 0;
	w->hb_at = 0;
	w->announce = first ? 1 : 2; /* logged by the role's thread, under its role tag */
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

static void worker_register_send(worker *w)
{
	cJSON *req = cJSON_CreateObject(), *q = cJSON_CreateArray(), *t = cJSON_CreateArray();
	cJSON_AddStringToObject(req, "op", "register");
	cJSON_AddStringToObject(req, "worker", w->name);
	for (int i = 0; i < w->nqueues; i++)
		cJSON_AddItemToArray(q, cJSON_CreateString(w->queues[i]));
	cJSON_AddItemToObject(req, "queues", q);
	cJSON_AddNumberToObject(req, "concurrency", w->concurrency);
	for (const worker_task *k = worker_tasks; k->name; k++)
		cJSON_AddItemToArray(t, cJSON_CreateString(k->name));
	cJSON_AddItemToObject(req, "tasks", t);
	cJSON_AddStringToObject(req, "host", w->host);
	cJSON_AddNumberToObject(req, "pid", (double)getpid());
	node_err err = {0};
	pthread_rwlock_rdlock(&w->ctl_gate);
	int rc = w->ctl_closed ? node_err_set(&err, NODE_ECLOSED, NODE_ERR_SHUTDOWN, "stopping")
	                       : node_client_call_async(w->ctl_cl, req, w->timeout_ms, worker_register_cb, w, &err);
	pthread_rwlock_unlock(&w->ctl_gate);
	cJSON_Delete(req);
	if (rc != 0)
		worker_register_cb(rc, NULL, &err, w);
}

static void worker_heartbeat_cb(int rc, cJSON *reply, const node_err *err, void *arg)
{
	worker *w = arg;
	cJSON_Delete(reply);
	if (rc == 0)
		worker_answered(w);
	else if (!w->ctl_closed)
		worker_failed(w, "heartbeat", err);
	pthread_mutex_lock(&w->lock);
	w->hb_inflight = 0;
	if (rc != 0 && worker_unknown(err))
		w->need_register = 1;
	pthread_cond_signal(&w->wake); /* the next heartbeat may be due already */
	pthread_mutex_unlock(&w->lock);
}

/* Build the heartbeat under w->lock; the caller sends it. */
static void worker_heartbeat_add_ids(cJSON *ids, const worker_batch *b)
{
	const cJSON *r;
	cJSON_ArrayForEach(r, b->results) {
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "id"));
		if (id)
			cJSON_AddItemToArray(ids, cJSON_CreateString(id));
	}
}

static cJSON *worker_heartbeat_req_locked(worker *w)
{
	cJSON *req = cJSON_CreateObject(), *ids = cJSON_CreateArray(), *held = cJSON_CreateArray();
	cJSON_AddStringToObject(req, "op", "heartbeat");
	cJSON_AddStringToObject(req, "worker", w->name);
	for (int i = 0; i < w->concurrency; i++)
		if (w->threads[i].busy)
			cJSON_AddItemToArray(ids, cJSON_CreateString(w->threads[i].running));
	/* Finished but not yet reported: still ours until the broker has the result. */
	for (worker_batch *b = w->inflight; b; b = NULL)
		worker_heartbeat_add_ids(ids, b);
	for (worker_batch *b = w->bhead; b; b = b->next)
		worker_heartbeat_add_ids(ids, b);
	cJSON_AddItemToObject(req, "running", ids);
	/* Also what is fetched and not started (at most the prefetch allowance),
	 * so a broker can tell a lost lease from one held here. */
	for (worker_item *it = w->qhead; it; it = it->next)
		cJSON_AddItemToArray(held, cJSON_CreateString(it->id));
	cJSON_AddItemToObject(req, "queued", held);
	return req;
}

static void worker_heartbeat_send(worker *w, cJSON *req)
{
	node_err err = {0};
	int hb_timeout = w->heartbeat_ms > 1000 ? w->heartbeat_ms : 1000;
	if (hb_timeout > w->timeout_ms)
		hb_timeout = w->timeout_ms;
	pthread_rwlock_rdlock(&w->ctl_gate);
	int rc = w->ctl_closed ? node_err_set(&err, NODE_ECLOSED, NODE_ERR_SHUTDOWN, "stopping")
	                       : node_client_call_async(w->ctl_cl, req, hb_timeout, worker_heartbeat_cb, w, &err);
	pthread_rwlock_unlock(&w->ctl_gate);
	cJSON_Delete(req);
	if (rc != 0)
		worker_heartbeat_cb(rc, NULL, &err, w);
}

/* ---- stopping ---- */

/* A blocking call from the role's thread (giveback, bye). */
static int worker_call(worker *w, cJSON *req, node_err *err)
{
	int timeout = w->broker_down ? 1000 : w->timeout_ms;
	cJSON *reply = NULL;
	int rc = node_client_call(w->ctl_cl, req, timeout, &reply, err);
	cJSON_Delete(reply);
	cJSON_Delete(req);
	return rc;
}

static void worker_giveback(worker *w, worker_item *items, int n)
{
	int given = 0, failed = 0;
	node_err err = {0};
	while (items) {
		cJSON *req = cJSON_CreateObject(), *ids = cJSON_CreateArray();
		cJSON_AddStringToObject(req, "op", "giveback");
		cJSON_AddStringToObject(req, "worker", w->name);
		int k = 0;
		for (; items && k < WORKER_IDS_MAX; k++) {
			worker_item *it = items;
			items = it->next;
			cJSON_AddItemToArray(ids, cJSON_CreateString(it->id));
			cJSON_Delete(it->task);
			free(it);
		}
		cJSON_AddItemToObject(req, "ids", ids);
		if (worker_call(w, req, &err) == 0)
			given += k;
		else
			failed += k;
	}
	if (given)
		node_info("gave back %d unstarted task%s", given, given == 1 ? "" : "s");
	if (failed)
		node_warn("could not give back %d of %d unstarted tasks (%s); the broker re-queues them when their lease runs out",
		    failed, n, err.msg);
}

/* Stop fetching (closing the fetch client cancels the parked fetch) and
 * give back every task not started. */
static void worker_begin_stop(worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->stopping = 1;
	pthread_mutex_unlock(&w->lock);
	pthread_rwlock_wrlock(&w->fetch_gate);
	w->fetch_closed = 1;
	pthread_rwlock_unlock(&w->fetch_gate);
	node_client_close(w->fetch_cl); /* waits for the fetch callback */
	w->fetch_cl = NULL;

	pthread_mutex_lock(&w->lock);
	worker_item *back = w->giveback;
	int n = w->ngiveback + w->queued;
	if (w->qtail) {
		w->qtail->next = back;
		back = w->qhead;
	}
	w->qhead = w->qtail = NULL;
	w->queued = 0;
	w->giveback = NULL;
	w->ngiveback = 0;
	w->quit = 1;
	pthread_cond_broadcast(&w->work);
	int running = w->running;
	pthread_mutex_unlock(&w->lock);
	if (n > 0)
		worker_giveback(w, back, n);
	if (running > 0)
		node_info("stopping: waiting up to %d s for %d running task%s", w->grace_s, running, running == 1 ? "" : "s");
	else
		node_info("stopping");
}

static void worker_abandon_locked(worker *w)
{
	char ids[1024];
	size_t off = 0;
	ids[0] = '\0';
	for (int i = 0; i < w->concurrency && off < sizeof ids - 1; i++)
		if (w->threads[i].busy)
			off += (size_t)snprintf(ids + off, sizeof ids - off, "%s%s", off ? ", " : "", w->threads[i].running);
	node_warn("grace period of %d s is over; leaving %d task%s unfinished (the broker re-queues them): %s", w->grace_s,
	    w->running, w->running == 1 ? "" : "s", ids);
	w->abandoned = 1;
}

/* ---- the role's thread ---- */

static void *worker_stop_main(void *arg)
{
	worker *w = arg;
	node_stop_wait(w->ctx->stop, -1);
	pthread_mutex_lock(&w->lock);
	w->stop_seen = 1;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void worker_wait_until_locked(worker *w, int64_t until_ms)
{
	struct timespec ts = {(time_t)(until_ms / 1000), (long)(until_ms % 1000) * 1000000L};
	pthread_cond_timedwait(&w->wake, &w->lock, &ts);
}

static int64_t worker_min(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

static void worker_loop(worker *w)
{
	int phase = WORKER_RUNNING;
	int64_t grace_at = 0, flush_at = 0;
	pthread_mutex_lock(&w->lock);
	for (;;) {
		int64_t now = worker_now_ms();
		if (phase == WORKER_RUNNING && w->stop_seen) {
			pthread_mutex_unlock(&w->lock);
			worker_begin_stop(w);
			pthread_mutex_lock(&w->lock);
			phase = WORKER_DRAINING;
			grace_at = worker_now_ms() + (int64_t)w->grace_s * 1000;
			continue;
		}
		if (w->announce) {
			if (w->announce == 1)
				node_info("worker %s consuming %s with %d threads from %s", w->name, w->queues_text, w->concurrency,
				    w->broker_url);
			else
				node_info("registered again with broker %s", w->broker_url);
			w->announce = 0;
		}
		if (w->need_register && !w->reg_inflight && now >= w->reg_retry_at) {
			w->reg_inflight = 1;
			pthread_mutex_unlock(&w->lock);
			worker_register_send(w);
			pthread_mutex_lock(&w->lock);
			continue;
		}
		if (w->registered && !w->hb_inflight && now >= w->hb_at) {
			w->hb_at = now + w->heartbeat_ms;
			w->hb_inflight = 1;
			cJSON *req = worker_heartbeat_req_locked(w);
			pthread_mutex_unlock(&w->lock);
			worker_heartbeat_send(w, req);
			pthread_mutex_lock(&w->lock);
			continue;
		}
		int slots = worker_fetch_want_locked(w);
		worker_batch *b = worker_report_take_locked(w);
		if (slots > 0 || b) {
			pthread_mutex_unlock(&w->lock);
			if (b)
				worker_report_send(w, b);
			if (slots > 0)
				worker_fetch_send(w, slots);
			pthread_mutex_lock(&w->lock);
			continue;
		}
		if (phase == WORKER_DRAINING && (w->running == 0 || now >= grace_at)) {
			if (w->running > 0)
				worker_abandon_locked(w);
			phase = WORKER_FLUSHING;
			flush_at = now + (w->broker_down ? 1000 : w->timeout_ms);
			continue;
		}
		if (phase == WORKER_FLUSHING && ((w->bhead == NULL && w->inflight == NULL) || now >= flush_at))
			break;
		int64_t until = now + 60000;
		if (w->registered && !w->hb_inflight)
			until = worker_min(until, w->hb_at);
		if (w->need_register && !w->reg_inflight)
			until = worker_min(until, w->reg_retry_at);
		if (w->fetch_retry_at && !w->fetch_inflight && !w->stopping) /* no fetches once stopping */
			until = worker_min(until, w->fetch_retry_at);
		if (w->report_retry_at && w->bhead && !w->inflight && w->report_retry_at > now)
			until = worker_min(until, w->report_retry_at);
		if (phase == WORKER_DRAINING)
			until = worker_min(until, grace_at);
		if (phase == WORKER_FLUSHING)
			until = worker_min(until, flush_at);
		if (until > now)
			worker_wait_until_locked(w, until);
	}
	if (w->unreported > 0)
		node_warn("%d result%s could not be reported; the broker re-runs those tasks", w->unreported,
		    w->unreported == 1 ? "" : "s");
	pthread_mutex_unlock(&w->lock);
}

/* ---- setup ---- */

static int worker_queue_ok(const char *q)
{
	size_t n = strlen(q);
	if (n < 1 || n > 128)
		return 0;
	for (const char *p = q; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
		        *p == ':' || *p == '-'))
			return 0;
	return 1;
}

static int worker_queue_add(worker *w, const char *q, size_t n, node_err *err)
{
	while (n > 0 && (*q == ' ' || *q == '\t'))
		q++, n--;
	while (n > 0 && (q[n - 1] == ' ' || q[n - 1] == '\t'))
		n--;
	if (n == 0)
		return 0;
	if (w->nqueues == WORKER_QUEUES_MAX)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "--queues: at most %d queues", WORKER_QUEUES_MAX);
	char *name = strndup(q, n);
	if (name == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	if (!worker_queue_ok(name)) {
		node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
		    "queue name \"%.200s\": expected 1 to 128 characters of A-Z a-z 0-9 . _ : -", name);
		free(name);
		return err->rc;
	}
	for (int i = 0; i < w->nqueues; i++)
		if (strcmp(w->queues[i], name) == 0) {
			free(name);
			return 0;
		}
	w->queues[w->nqueues++] = name;
	return 0;
}

static int worker_queues_parse(worker *w, const char *text, node_err *err)
{
	for (const char *p = text;;) {
		const char *comma = strchr(p, ',');
		size_t n = comma ? (size_t)(comma - p) : strlen(p);
		if (worker_queue_add(w, p, n, err) != 0)
			return err->rc;
		if (comma == NULL)
			break;
		p = comma + 1;
	}
	return 0;
}

static int worker_setup(worker *w, node_ctx *ctx, const node_args *a, node_err *err)
{
	w->ctx = ctx;
	/* queues: --queues, else the cluster file, else "default" */
	const char *qopt = node_args_get(a, "queues");
	const cJSON *qconf = node_conf_mine(&ctx->conf, "roles.worker.queues");
	if (qopt) {
		if (worker_queues_parse(w, qopt, err) != 0)
			return err->rc;
	} else if (cJSON_IsString(qconf)) {
		if (worker_queues_parse(w, qconf->valuestring, err) != 0)
			return err->rc;
	} else if (cJSON_IsArray(qconf)) {
		for (const cJSON *q = qconf->child; q; q = q->next)
			if (cJSON_IsString(q) && worker_queue_add(w, q->valuestring, strlen(q->valuestring), err) != 0)
				return err->rc;
	}
	if (w->nqueues == 0 && worker_queue_add(w, "default", 7, err) != 0)
		return err->rc;
	size_t off = 0;
	for (int i = 0; i < w->nqueues && off < sizeof w->queues_text; i++)
		off += (size_t)snprintf(w->queues_text + off, sizeof w->queues_text - off, "%s%s", i ? "," : "", w->queues[i]);

	long long cores = sysconf(_SC_NPROCESSORS_ONLN);
	const cJSON *cconf = node_conf_mine(&ctx->conf, "roles.worker.concurrency");
	long long def = cJSON_IsNumber(cconf) && cconf->valuedouble >= 1 ? (long long)cconf->valuedouble : cores > 0 ? cores : 1;
	if (def > 1024)
		def = 1024;
	long long v;
	if (node_args_int(a, "concurrency", 1, 1024, def, &v, err) != 0)
		return err->rc;
	w->concurrency = (int)v;
	if (node_args_int(a, "grace", 0, 86400, 30, &v, err) != 0)
		return err->rc;
	w->grace_s = (int)v;
	if (node_args_int(a, "prefetch", 0, 10000, -1, &v, err) != 0)
		return err->rc;
	w->prefetch = (int)v;

	const char *url = node_args_get(a, "broker");
	if (url == NULL && node_conf_role_url(&ctx->conf, "broker", "listen", &url, err) != 0)
		return err->rc;
	snprintf(w->broker_url, sizeof w->broker_url, "%s", url);

	/* name: <node>-<pid>, in the characters ids may use */
	snprintf(w->name, sizeof w->name, "%.200s-%ld", ctx->conf.node ? ctx->conf.node : "worker", (long)getpid());
	for (char *p = w->name; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' || *p == '_' ||
		        *p == ':' || *p == '-'))
			*p = '_';
	if (gethostname(w->host, sizeof w->host - 1) != 0)
		snprintf(w->host, sizeof w->host, "unknown");

	w->timeout_ms = ctx->timeout_ms > 0 ? ctx->timeout_ms : 5000;
	size_t maxmsg = ctx->wire.limits.max_message;
	w->result_max = maxmsg > (128u << 10) ? maxmsg - (64u << 10) : maxmsg / 2;
	w->batch_bytes = maxmsg / 2;
	w->need_register = 1;
	return 0;
}

static void worker_free(worker *w)
{
	for (int i = 0; i < w->nqueues; i++)
		free(w->queues[i]);
	for (worker_batch *b = w->bhead, *next; b; b = next) {
		next = b->next;
		worker_batch_free(b);
	}
	for (worker_item *it = w->qhead, *next; it; it = next) {
		next = it->next;
		cJSON_Delete(it->task);
		free(it);
	}
	cJSON_Delete(w->fetch_req);
	free(w->threads);
	pthread_rwlock_destroy(&w->fetch_gate);
	pthread_rwlock_destroy(&w->ctl_gate);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	pthread_mutex_destroy(&w->log_lock);
	free(w);
}

static worker *worker_new(void)
{
	worker *w = calloc(1, sizeof *w);
	if (w == NULL)
		return NULL;
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->log_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&w->work, NULL);
	pthread_rwlock_init(&w->fetch_gate, NULL);
	pthread_rwlock_init(&w->ctl_gate, NULL);
	return w;
}

/* Open the clients and start the pool; an exit status on failure. */
static int worker_start(worker *w, node_err *err)
{
	if (node_client_open(&w->fetch_cl, w->broker_url, "broker", &w->ctx->wire, err) != 0 ||
	    node_client_open(&w->ctl_cl, w->broker_url, "broker", &w->ctx->wire, err) != 0)
		return NODE_EXIT_START;
	w->fetch_req = cJSON_CreateObject();
	cJSON *q = cJSON_CreateArray();
	cJSON_AddStringToObject(w->fetch_req, "op", "fetch");
	cJSON_AddStringToObject(w->fetch_req, "worker", w->name);
	for (int i = 0; i < w->nqueues; i++)
		cJSON_AddItemToArray(q, cJSON_CreateString(w->queues[i]));
	cJSON_AddItemToObject(w->fetch_req, "queues", q);
	cJSON_AddNumberToObject(w->fetch_req, "slots", 1);
	cJSON_AddNumberToObject(w->fetch_req, "wait_ms", WORKER_FETCH_WAIT_MS);
	w->threads = calloc((size_t)w->concurrency, sizeof *w->threads);
	if (w->threads == NULL) {
		node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		return NODE_EXIT_START;
	}
	for (int i = 0; i < w->concurrency; i++) {
		w->threads[i].w = w;
		int rv = pthread_create(&w->threads[i].thread, NULL, worker_thread_main, &w->threads[i]);
		if (rv != 0) {
			node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot start worker thread %d of %d: %s", i + 1, w->concurrency,
			    strerror(rv));
			return NODE_EXIT_START;
		}
		w->threads[i].started = 1;
	}
	int rv = pthread_create(&w->stop_thread, NULL, worker_stop_main, w);
	if (rv != 0) {
		node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot start a thread: %s", strerror(rv));
		return NODE_EXIT_START;
	}
	w->stop_thread_started = 1;
	return 0;
}

/* Say bye, close the clients, join the pool. Returns 1 when w must not be
 * freed (threads left running a task past the grace period). */
static int worker_finish(worker *w)
{
	if (w->ever_registered && w->ctl_cl) {
		node_err err = {0};
		cJSON *req = cJSON_CreateObject();
		cJSON_AddStringToObject(req, "op", "bye");
		cJSON_AddStringToObject(req, "worker", w->name);
		if (worker_call(w, req, &err) != 0)
			node_info("bye not delivered (%s); the broker re-queues this worker's tasks when their lease runs out", err.msg);
	}
	pthread_mutex_lock(&w->lock);
	w->quit = 1;
	pthread_cond_broadcast(&w->work);
	int abandoned = w->abandoned;
	pthread_mutex_unlock(&w->lock);
	if (w->fetch_cl) {
		pthread_rwlock_wrlock(&w->fetch_gate);
		w->fetch_closed = 1;
		pthread_rwlock_unlock(&w->fetch_gate);
		node_client_close(w->fetch_cl);
		w->fetch_cl = NULL;
	}
	if (w->ctl_cl) {
		pthread_rwlock_wrlock(&w->ctl_gate);
		pthread_mutex_lock(&w->lock);
		w->ctl_closed = 1;
		pthread_mutex_unlock(&w->lock);
		pthread_rwlock_unlock(&w->ctl_gate);
		node_client_close(w->ctl_cl);
		w->ctl_cl = NULL;
	}
	for (int i = 0; w->threads && i < w->concurrency; i++) {
		if (!w->threads[i].started)
			continue;
		if (abandoned)
			pthread_detach(w->threads[i].thread);
		else
			pthread_join(w->threads[i].thread, NULL);
	}
	if (w->stop_thread_started)
		pthread_join(w->stop_thread, NULL);
	return abandoned;
}

static int worker_main(node_ctx *ctx, const node_args *a)
{
	node_err err = {0};
	worker *w = worker_new();
	if (w == NULL) {
		node_error("out of memory");
		return NODE_EXIT_START;
	}
	int rc = worker_setup(w, ctx, a, &err);
	if (rc != 0) {
		fprintf(stderr, "node worker: %s\n", err.msg);
		int status = err.rc == NODE_ENOTFOUND ? NODE_EXIT_CONFIG : NODE_EXIT_USAGE;
		worker_free(w);
		return status;
	}
	rc = worker_start(w, &err);
	if (rc != 0) {
		node_error("%s", err.msg);
		/* stop what started: no stop thread exists yet on failure */
		worker_finish(w);
		worker_free(w);
		return rc;
	}
	worker_loop(w);
	int keep = worker_finish(w);
	node_info("worker %s stopped: %llu task%s succeeded, %llu failed (%llu fetches, %llu reports)", w->name,
	    (unsigned long long)w->done_ok, w->done_ok == 1 ? "" : "s", (unsigned long long)w->done_failed,
	    (unsigned long long)w->fetches, (unsigned long long)w->reports);
	if (!keep)
		worker_free(w);
	return 0;
}

const node_cmd node_cmd_worker = {
	.name = "worker",
	.summary = "run tasks from the broker's queues in a pool of threads",
	.synopsis = "[--queues Q,...] [--concurrency N] [--broker URL] [--grace S] [--prefetch N]",
	.description = "Registers with the broker, then fetches tasks from the queues and runs them,\n"
	               "N at a time (built-in tasks: add, sum, sqrt, fibo, pi, sleep, echo, fail, crawl).\n"
	               "Keeps retrying while the broker is unreachable and registers again when it\n"
	               "is back. SIGTERM or SIGINT: unstarted tasks are given back at once, running\n"
	               "ones get --grace seconds to finish and report, then it exits 0.",
	.opts = worker_opts,
	.main = worker_main,
	.role = 1,
	.max_pos = 0,
};
