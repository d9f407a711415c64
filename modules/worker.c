/* node worker: consume queues of the broker and run their tasks in a pool of
 * threads (what `celery worker -Q fibo,sqrt` does). This file reads the
 * options and runs the role's thread; the rest is in modules/worker/.
 *
 * usage: node worker [--queues Q,...] [--concurrency N] [--broker URL]
 *                    [--grace S] [--prefetch N]
 *
 * One worker struct (worker/worker.h), no globals, so `node up` can host it.
 * The role's thread registers and sends heartbeats (session.c), sends the
 * fetch or report that is due when no other thread does (fetch.c,
 * report.c), sleeps until its next timer between retries (link.c) and runs
 * the stop (stop.c). The pool threads (pool.c) run the tasks (run.c); tasks
 * that wait for sub-tasks (sub.c) lend their slots to extra threads. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "commands.h"
#include "core/log.h"
#include "mapreduce/mrtask.h"
#include "worker/worker.h"

static const node_opt worker_opts[] = {
	{"queues", 'Q', "Q,...", "queues to consume (default: the cluster file's, else \"default\")"},
	{"concurrency", 'C', "N", "tasks run at once (default: the cluster file's, else the number of cores)"},
	{"broker", 0, "URL", "the broker's address (default: where the cluster file says it listens)"},
	{"grace", 0, "S", "on SIGTERM, seconds running tasks get to finish (default 30)"},
	{"prefetch", 0, "N", "tasks held beyond the running ones (default: adapts to throughput)"},
	{NULL, 0, NULL, NULL},
};

/* ---- options ---- */

/* The characters of queue names and worker names. */
static int worker_name_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == ':' ||
	    c == '-';
}

static int worker_queue_ok(const char *q)
{
	size_t n = strlen(q);
	if (n < 1 || n > 128)
		return 0;
	for (const char *p = q; *p; p++)
		if (!worker_name_char(*p))
			return 0;
	return 1;
}

/* Add q[0..n), trimmed; blanks and repeats are skipped. */
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

cJSON *worker_queues_json(const worker *w)
{
	cJSON *q = cJSON_CreateArray();
	for (int i = 0; i < w->nqueues; i++)
		cJSON_AddItemToArray(q, cJSON_CreateString(w->queues[i]));
	return q;
}

/* --queues, else the cluster file (a string or an array), else "default". */
static int worker_setup_queues(worker *w, const node_args *a, node_err *err)
{
	const char *qopt = node_args_get(a, "queues");
	const cJSON *qconf = node_conf_mine(&w->ctx->conf, "roles.worker.queues");
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
	return 0;
}

/* --concurrency (default: the cluster file's, else the cores), --grace,
 * --prefetch. */
static int worker_setup_numbers(worker *w, const node_args *a, node_err *err)
{
	long long cores = sysconf(_SC_NPROCESSORS_ONLN);
	const cJSON *cconf = node_conf_mine(&w->ctx->conf, "roles.worker.concurrency");
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
	return 0;
}

/* <node>-<pid>, in the characters ids may use. */
static void worker_setup_name(worker *w)
{
	snprintf(w->name, sizeof w->name, "%.200s-%ld", w->ctx->conf.node ? w->ctx->conf.node : "worker", (long)getpid());
	for (char *p = w->name; *p; p++)
		if (!worker_name_char(*p))
			*p = '_';
	if (gethostname(w->host, sizeof w->host - 1) != 0)
		snprintf(w->host, sizeof w->host, "unknown");
}

/* A result leaves room for the rest of a report in one message. */
static int worker_setup(worker *w, node_ctx *ctx, const node_args *a, node_err *err)
{
	w->ctx = ctx;
	if (worker_setup_queues(w, a, err) != 0 || worker_setup_numbers(w, a, err) != 0)
		return err->rc;
	const char *url = node_args_get(a, "broker");
	if (url == NULL && node_conf_role_url(&ctx->conf, "broker", "listen", &url, err) != 0)
		return err->rc;
	snprintf(w->broker_url, sizeof w->broker_url, "%s", url);
	worker_setup_name(w);
	w->timeout_ms = ctx->timeout_ms > 0 ? ctx->timeout_ms : 5000;
	size_t maxmsg = ctx->wire.limits.max_message;
	w->result_max = maxmsg > (128u << 10) ? maxmsg - (64u << 10) : maxmsg / 2;
	w->batch_bytes = maxmsg / 2;
	w->need_register = 1;
	return 0;
}

/* ---- life cycle ---- */

static worker *worker_new(void)
{
	worker *w = calloc(1, sizeof *w);
	if (w == NULL)
		return NULL;
	pthread_mutex_init(&w->lock, NULL);
	pthread_mutex_init(&w->log_lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* worker_now_ms's clock */
	pthread_cond_init(&w->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&w->work, NULL);
	worker_link_init(&w->fetch);
	worker_link_init(&w->ctl);
	pthread_rwlock_init(&w->sub_gate, NULL);
	return w;
}

static void worker_free(worker *w)
{
	for (int i = 0; i < w->nqueues; i++)
		free(w->queues[i]);
	worker_report_free(w);
	worker_pool_free(w);
	cJSON_Delete(w->fetch_req);
	free(w->threads);
	worker_link_destroy(&w->fetch);
	worker_link_destroy(&w->ctl);
	pthread_rwlock_destroy(&w->sub_gate);
	pthread_cond_destroy(&w->work);
	pthread_cond_destroy(&w->wake);
	pthread_mutex_destroy(&w->lock);
	pthread_mutex_destroy(&w->log_lock);
	free(w->mr);
	free(w);
}

/* Open the clients and start the threads; an exit status on failure. */
static int worker_start(worker *w, node_err *err)
{
	if (worker_link_open(w, &w->fetch, err) != 0 || worker_link_open(w, &w->ctl, err) != 0)
		return NODE_EXIT_START;
	/* MapReduce tasks: MRDIR and the map output server, before any task runs */
	if ((w->mr = calloc(1, sizeof *w->mr)) == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory"), NODE_EXIT_START;
	node_err mrerr = {0};
	if (mr_worker_side_start(w->mr, &w->ctx->conf, &w->ctx->wire, w->name, w->timeout_ms, &mrerr) != 0)
		node_warn("MapReduce tasks cannot run on this worker: %s", mrerr.msg); /* the other tasks can */
	worker_fetch_init(w);
	if (worker_pool_start(w, err) != 0 || worker_stop_watch(w, err) != 0)
		return NODE_EXIT_START;
	return 0;
}

/* Say bye, close the clients, join the threads, then close the sub-task
 * connection (a task left running past the grace period, waiting for its
 * sub-tasks, wakes up and ends). Returns 1 when w must not be freed
 * (threads left running a task past the grace period). */
static int worker_finish(worker *w)
{
	worker_stop_bye(w);
	int abandoned = worker_pool_quit(w);
	worker_link_close(w, &w->fetch);
	worker_link_close(w, &w->ctl);
	worker_pool_join(w, abandoned);
	if (w->mr)
		mr_worker_side_stop(w->mr); /* after the pool: reduces elsewhere may fetch while tasks drain */
	worker_sub_close(w);
	worker_stop_join(w);
	return abandoned;
}

/* ---- the role's thread ---- */

int worker_send_due_locked(worker *w)
{
	int slots = worker_fetch_want_locked(w);
	worker_batch *b = worker_report_take_locked(w);
	if (slots <= 0 && b == NULL)
		return 0;
	pthread_mutex_unlock(&w->lock);
	if (b)
		worker_report_send(w, b);
	if (slots > 0)
		worker_fetch_send(w, slots);
	pthread_mutex_lock(&w->lock);
	return 1;
}

static int64_t worker_min(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* Sleep until the next timer that applies (a minute at most) or a wake-up. */
static void worker_wait_locked(worker *w, int64_t now)
{
	int64_t until = now + 60000;
	if (w->registered && !w->hb_inflight)
		until = worker_min(until, w->hb_at);
	if (w->need_register && !w->reg_inflight)
		until = worker_min(until, w->reg_retry_at);
	if (w->fetch_retry_at && !w->fetch_inflight && !w->stopping) /* no fetches once stopping */
		until = worker_min(until, w->fetch_retry_at);
	if (w->report_retry_at && w->bhead && !w->inflight && w->report_retry_at > now)
		until = worker_min(until, w->report_retry_at);
	if (w->phase != WORKER_RUNNING)
		until = worker_min(until, w->phase_end);
	if (until <= now)
		return;
	struct timespec ts = {(time_t)(until / 1000), (long)(until % 1000) * 1000000L};
	pthread_cond_timedwait(&w->wake, &w->lock, &ts);
}

/* Each turn does one thing and looks again: a stop, a registration or
 * heartbeat, a fetch or report, the next stop phase; else it sleeps. */
static void worker_loop(worker *w)
{
	pthread_mutex_lock(&w->lock);
	for (;;) {
		int64_t now = node_clock_mono_ms();
		if (worker_stop_begin_locked(w) || worker_session_step_locked(w, now) || worker_send_due_locked(w))
			continue;
		int next = worker_stop_next_locked(w, now);
		if (next < 0)
			break;
		if (next == 0)
			worker_wait_locked(w, now);
	}
	pthread_mutex_unlock(&w->lock);
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
	               "N at a time (built-in tasks: add, sum, sqrt, fibo, fibr, pi, sleep, echo, fail,\n"
	               "crawl, chunk; mr.map and mr.reduce of MapReduce jobs, whose outputs it serves\n"
	               "on roles.worker.mr_listen). A task waiting for its sub-tasks (fibr) lends its slot.\n"
	               "Keeps retrying while the broker is unreachable and registers again when it\n"
	               "is back. SIGTERM or SIGINT: unstarted tasks are given back at once, running\n"
	               "ones get --grace seconds to finish and report, then it exits 0.",
	.opts = worker_opts,
	.main = worker_main,
	.role = 1,
	.max_pos = 0,
};
