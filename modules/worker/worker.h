/* The worker role's shared state, for modules/worker.c (options, setup, the
 * role's thread) and the files of modules/worker/: link.c, session.c,
 * fetch.c, pool.c, run.c, sub.c, report.c and stop.c. */
#ifndef NODE_WORKER_H
#define NODE_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cmd.h"
#include "core/transport.h"
#include "worker/tasks.h"

#define WORKER_FETCH_WAIT_MS 10000   /* how long a fetch stays parked at the broker */
#define WORKER_PREFETCH_MAX 1000     /* adaptive prefetch allowance at most */
#define WORKER_PREFETCH_FLOOR 2      /* and at least (--prefetch sets it fixed) */
#define WORKER_RATE_BUCKET_MS 10     /* throughput is counted in two such buckets */
#define WORKER_SLOTS_MAX 10000       /* tasks asked for in one fetch at most */
#define WORKER_BATCH_MAX 10000       /* results in one report at most */
#define WORKER_IDS_MAX 10000         /* ids in one giveback at most */
#define WORKER_BACKOFF_MIN_MS 100
#define WORKER_BACKOFF_MAX_MS 2000
#define WORKER_ID_MAX 128
#define WORKER_QUEUES_MAX 64
#define WORKER_ERR_MAX 1024          /* bytes of a task's error message */
#define WORKER_LEND_MAX 256          /* extra pool threads for slots lent by waiting tasks */
#define WORKER_HELP_DEPTH 64         /* tasks one thread runs inside waits that could not lend */

typedef struct worker_item {         /* a task fetched and not started yet */
	cJSON *task;                 /* the task object of the fetch reply (owned) */
	const char *id;              /* its "id", inside task */
	struct worker_item *next;
} worker_item;

typedef struct worker_items {        /* a list of them, in order */
	worker_item *head, *tail;
	int n;
} worker_items;

typedef struct worker_batch {        /* results waiting to be reported */
	cJSON *results;              /* array of {"id","delivery","ok","value"|"error"} */
	int n;
	size_t bytes;                /* about the size of the encoded results */
	int refused;                 /* the broker refused it once: now all failures */
	struct worker_batch *next;
} worker_batch;

/* A client to the broker that one thread may close while others send on it:
 * senders hold the gate for reading while they call, closing takes it for
 * writing, so no call starts on a client being closed. */
typedef struct worker_link {
	node_client *cl;
	pthread_rwlock_t gate;
	atomic_int closed;
} worker_link;

struct worker;
struct ncl_conn;

typedef struct worker_thread {
	struct worker *w;
	pthread_t thread;
	int started;
	int busy;                    /* running a task (under lock) */
	char running[WORKER_ID_MAX + 1]; /* its id, for heartbeats */
	int extra;                   /* started for a lent slot (on w->extra), not one of --concurrency */
	int exited;                  /* an extra thread that has ended, to be joined */
	struct worker_thread *next;  /* on w->extra */
	worker_item *helped;         /* tasks it runs inside waits, innermost first (via next) */
	int helping;                 /* how many */
} worker_thread;

/* The phases of the role's thread: running, then after SIGTERM draining
 * (running tasks get --grace to finish), then flushing (the last reports). */
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

	worker_link fetch;           /* fetch only: closing it cancels the parked fetch */
	worker_link ctl;             /* register, report, heartbeat, giveback, bye */
	cJSON *fetch_req;            /* reused: only one fetch is in flight */

	pthread_t stop_thread;
	int stop_thread_started;

	pthread_mutex_t lock;        /* everything below */
	pthread_cond_t work;         /* pool threads wait for tasks */
	pthread_cond_t wake;         /* the role thread waits for events and timers */
	worker_items queue;          /* fetched, not started */
	int running;                 /* tasks taken and not finished, blocked ones too */
	int blocked;                 /* running tasks waiting for sub-tasks, their slots lent */
	int extras;                  /* extra threads alive and serving */
	int lend_warned;             /* WORKER_LEND_MAX was reached (logged once) */
	worker_thread *threads;      /* the --concurrency threads */
	worker_thread *extra;        /* extra threads, alive or exited and not joined yet */
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
	int phase;                   /* WORKER_RUNNING.. (the role's thread only) */
	int64_t phase_end;           /* when draining or flushing ends at the latest */
	worker_items giveback;       /* tasks that came after stop, newest fetch first */
	int64_t rate_bucket;         /* throughput window */
	int rate_cur, rate_prev;
	uint64_t done_ok, done_failed;
	atomic_ullong fetches, reports;  /* calls sent, for the log at exit */

	pthread_rwlock_t sub_gate;   /* submits hold it for reading, opening and closing for writing */
	struct ncl_conn *sub_conn;   /* for sub-tasks, opened on first use (sub.c) */
	int sub_closed;              /* closed at stop: no more sub-tasks */

	pthread_mutex_t log_lock;    /* failure kinds logged since the broker last answered */
	char logged[8][48];
	int nlogged;
	atomic_int broker_down;

	struct mr_worker_side *mr;   /* MapReduce: its directory and map output server (mrtask.h) */
} worker;

/* worker.c */
/* The queues to consume, as a JSON array of strings. */
cJSON *worker_queues_json(const worker *w);
/* Send the report and the fetch that are due, with w->lock released
 * meanwhile; 1 when anything was sent. */
int worker_send_due_locked(worker *w);

/* link.c: the clients to the broker, failures and retries */
void worker_link_init(worker_link *l);
void worker_link_destroy(worker_link *l);
int worker_link_open(worker *w, worker_link *l, node_err *err);
/* Mark l closed (failing later sends), then close its client, which waits
 * for the callbacks of its calls. Call without w->lock. */
void worker_link_close(worker *w, worker_link *l);
/* A request {"op": op, "worker": <name>}. */
cJSON *worker_link_req(const worker *w, const char *op);
/* Send req on l; cb gets w. Fails at once when l is closed. */
int worker_link_send(worker *w, worker_link *l, const cJSON *req, int timeout_ms, node_reply_fn cb, node_err *err);
/* A blocking call on the control client from the role's thread; frees req. */
int worker_link_call(worker *w, cJSON *req, node_err *err);
/* The next wait before a retry, doubling *backoff up to the maximum. */
int worker_link_backoff(int *backoff);
/* A call failed: log its kind once until the broker answers again. */
void worker_link_failed(worker *w, const char *op, const node_err *err);
/* The broker answered: after an outage, register again. Call without w->lock. */
void worker_link_answered(worker *w);
/* The broker does not know this worker (it must register again). */
int worker_link_unknown(const node_err *err);

/* session.c: registering and heartbeats */
/* Log a registration, then send the registration or heartbeat that is due,
 * with w->lock released meanwhile; 1 when one was sent. */
int worker_session_step_locked(worker *w, int64_t now);

/* fetch.c: fetching tasks with an allowance that follows throughput */
void worker_fetch_init(worker *w);
/* How many tasks to ask for now, 0 for no fetch; marks the fetch in flight. */
int worker_fetch_want_locked(worker *w);
void worker_fetch_send(worker *w, int slots);
/* A task finished: counts toward the throughput the allowance follows. */
void worker_fetch_count_locked(worker *w);

/* pool.c: the local queue and the threads that run its tasks */
/* Move the items of from to the end of to (from keeps its pointers). */
void worker_pool_append(worker_items *to, const worker_items *from);
/* Free the tasks still queued. */
void worker_pool_free(worker *w);
/* Queue fetched tasks and wake as many pool threads. */
void worker_pool_add_locked(worker *w, const worker_items *got);
int worker_pool_start(worker *w, node_err *err);
/* Tell the pool to quit once the queue is empty; returns w->abandoned. */
int worker_pool_quit(worker *w);
/* Join the pool threads, or detach them when abandoned. */
void worker_pool_join(worker *w, int abandoned);
/* A running task is about to block (waiting for sub-tasks): count it as
 * blocked, so one more task may run and be fetched, and start an extra
 * thread when no thread would be free for it. 0 when the slot could not be
 * lent (WORKER_LEND_MAX extra threads, or stopping): then the task blocks
 * holding it, and must not call worker_pool_wait_end. */
int worker_pool_wait_begin(worker *w);
/* The wait is over: the task runs on; a surplus extra thread ends. */
void worker_pool_wait_end(worker *w);
/* 1 when the next wait could not lend its slot (WORKER_LEND_MAX). */
int worker_pool_saturated(worker *w);
/* Inside a wait that could not lend its slot: run a queued task on this
 * thread, in that slot (at most WORKER_HELP_DEPTH deep), one of ids[0..n)
 * (the tasks waited for) when one is queued. 1 when one ran, else 0. */
int worker_pool_help(worker_thread *t, const char *const *ids, size_t n);
/* Call fn with the id of every task running in the pool (under w->lock). */
void worker_pool_ids_locked(worker *w, void (*fn)(const char *id, void *arg), void *arg);

/* run.c: one task run into its result object */
/* The result for the report, NULL when out of memory; *bytes about its
 * encoded size. */
cJSON *worker_run_task(worker_thread *t, const cJSON *task, size_t *bytes);

/* sub.c: sub-tasks, through one client connection per worker */
/* What a task's context points to (worker_task_ctx.opaque). */
typedef struct worker_ctx_state {
	worker_thread *t;            /* the pool thread running the task */
	int depth;                   /* wait_begin calls not ended yet (nested ones count once) */
	int lent;                    /* the outer one lent the task's slot */
} worker_ctx_state;
/* Fill the context of task, run by t, pointing at st. */
void worker_sub_ctx(worker_thread *t, const cJSON *task, worker_task_ctx *ctx, worker_ctx_state *st);
/* Close the connection (after the pool is joined); later submits fail. */
void worker_sub_close(worker *w);

/* report.c: results batched into reports */
/* Queue a result for the next report. */
void worker_report_add_locked(worker *w, cJSON *r, size_t bytes);
/* The next batch to send, or NULL; marks it in flight. */
worker_batch *worker_report_take_locked(worker *w);
void worker_report_send(worker *w, worker_batch *b);
/* Free the batches not sent. */
void worker_report_free(worker *w);

/* stop.c: the SIGTERM sequence */
/* Start the thread that waits for the stop request. */
int worker_stop_watch(worker *w, node_err *err);
void worker_stop_join(worker *w);
/* SIGTERM seen: stop fetching and give back what has not started; 1 when
 * that happened now. */
int worker_stop_begin_locked(worker *w);
/* Move from draining to flushing once no task runs or the grace period is
 * over: 1 when the phase changed, -1 when done flushing, else 0. */
int worker_stop_next_locked(worker *w, int64_t now);
/* Say bye when registered once (call without w->lock). */
void worker_stop_bye(worker *w);

#endif
