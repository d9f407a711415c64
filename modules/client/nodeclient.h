/* libnodeclient: talk to a node cluster from C (installed as <node/client.h>).
 *
 * Connect to the broker, submit tasks and hold their futures (ready, wait
 * with a time limit, result or error, a completion callback), wait for many
 * at once, map a task over many argument lists (results in input order or
 * as they arrive) and reduce the results on the client; call remote objects
 * and functions served by `node rpc` through proxies.
 *
 * Rules that hold for every function:
 *  - It returns 0 (NCL_OK) or an NCL_E* code, and fills the ncl_err it is
 *    given (it may be NULL) with the code and one line for a person.
 *  - A call that blocks takes timeout_ms, and < 0 means no limit. 0 means:
 *    for the waits, do not block; for a call to the broker (ping, submit,
 *    task_info, a proxy call), the cluster file's defaults.timeout_ms; for a
 *    map, no limit.
 *  - There is no global state; a connection and its futures may be used
 *    from any number of threads at once.
 *  - JSON goes in and comes out as text. Results are the exact text the
 *    worker produced, so integers beyond 2^53 stay exact.
 *
 *	ncl_conn *c;
 *	ncl_future *f;
 *	ncl_err e;
 *	if (ncl_open(&c, NULL, "cluster.json", &e) == 0 &&
 *	    ncl_submit(c, "add", "[5, 5]", NULL, 5000, &f, &e) == 0 &&
 *	    ncl_future_wait(f, 10000, &e) == 0)
 *		printf("%s\n", ncl_future_result(f)); // 10
 */
#ifndef NODE_CLIENT_H
#define NODE_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NCL_VERSION "0.1.0"

/* Error codes (the first ten are node's own, with the same numbers). */
enum {
	NCL_OK = 0,
	NCL_EINVAL = 1,    /* bad argument: a NULL, not JSON, not an array, a bad URL */
	NCL_ENOMEM = 2,
	NCL_EIO = 3,       /* a socket or file failed */
	NCL_ETIMEDOUT = 4, /* the time limit ran out (the message names it) */
	NCL_EAUTH = 5,     /* the broker refused our signature, or we its */
	NCL_ELIMIT = 6,    /* a message or value exceeds the cluster's limits */
	NCL_EREMOTE = 7,   /* the broker answered with an error (code in remote) */
	NCL_ECLOSED = 8,   /* the connection was closed */
	NCL_ENOTFOUND = 9, /* no such task, no broker in the cluster file */
	NCL_ETASK = 10,    /* the task ran and failed (or went to the dead letters) */
	NCL_ECANCEL = 11,  /* stopped or cancelled by the caller (an item callback said stop) */
	NCL_ESTARTED = 12, /* too late to cancel: the task has started or finished */
	NCL_ERPC = 13,     /* a remote method answered with a JSON-RPC error (rpc_code) */
};

/* An error: the code, the broker's stable code when there is one, a message.
 * rpc_code came last, so programs built before it still work; only the
 * proxy functions and their futures write it. */
typedef struct ncl_err {
	int code;         /* NCL_E* */
	char remote[32];  /* NCL_EREMOTE: the broker's code ("queue_full"); NCL_ERPC: the
	                     error's data.type when it has one ("KeyError"); else "" */
	char msg[512];    /* one line for a person */
	int rpc_code;     /* NCL_ERPC: the JSON-RPC error code (-32601...), else 0 */
} ncl_err;

/* The short name of an error code ("timed out"). */
const char *ncl_strerror(int code);

/* ---- connections ---- */

typedef struct ncl_conn ncl_conn;

/* Connect to the broker at url, else to the broker the cluster file names
 * (NULL: $NODE_CONFIG, ./node.json, else the embedded one-machine default).
 * The cluster file also gives the secret, TLS files, limits and the usual
 * call time limit. Does not wait for the broker: see ncl_ping. */
int ncl_open(ncl_conn **out, const char *url, const char *cluster_file, ncl_err *err);
/* Close: calls in flight end at once, futures not finished become NCL_CLOSED
 * (their callbacks run), and futures stay readable until freed. */
void ncl_close(ncl_conn *c);
/* The broker's URL. */
const char *ncl_url(const ncl_conn *c);
/* Ask the broker whether it is there. */
int ncl_ping(ncl_conn *c, int timeout_ms, ncl_err *err);

/* ---- submitting ---- */

/* Task options; zero-initialise, set what you need. */
typedef struct ncl_opts {
	const char *id;           /* task id (map: a prefix, items are ID-0, ID-1...); default: generated */
	const char *queue;        /* default: "default" */
	int priority;             /* 0-9, higher first; used when has_priority is set */
	int has_priority;         /* else the queue's own priority */
	const char *kwargs_json;  /* a JSON object of named arguments, or NULL */
	const char *options_json; /* a JSON object kept with the task (countdown...), or NULL */
	size_t chunk;             /* ncl_map: items per task; 0 chooses (see ncl_map), 1 is one task each */
} ncl_opts;

typedef struct ncl_future ncl_future;

/* Submit one task: args_json is a JSON array of its arguments ("[5, 5]",
 * NULL for none). The future is yours to ncl_future_free. */
int ncl_submit(ncl_conn *c, const char *task, const char *args_json, const ncl_opts *opts, int timeout_ms,
    ncl_future **out, ncl_err *err);

/* A future for a task submitted already, by this program or another
 * (Celery's AsyncResult(id)): it finishes when the task does. An id the
 * broker does not know stays pending (it may be on its way). */
int ncl_future_for(ncl_conn *c, const char *id, ncl_future **out, ncl_err *err);

/* ---- futures ---- */

typedef enum ncl_state {
	NCL_PENDING = 0, /* submitted, not finished */
	NCL_SUCCEEDED,
	NCL_FAILED,      /* the task failed, or was delivered too often (dead letter) */
	NCL_CLOSED,      /* the connection closed before the result came */
	NCL_CANCELLED,   /* cancelled before it started (ncl_future_cancel, or revoked) */
} ncl_state;

/* 1 when finished (in any way), without blocking. */
int ncl_future_ready(const ncl_future *f);
/* Wait until finished: 0 succeeded, NCL_ETASK failed (the task's error in
 * err), NCL_ECANCEL cancelled, NCL_ECLOSED, or NCL_ETIMEDOUT. */
int ncl_future_wait(ncl_future *f, int timeout_ms, ncl_err *err);
/* The current state. */
ncl_state ncl_future_state(const ncl_future *f);
/* The result as exact JSON text once succeeded, else NULL. */
const char *ncl_future_result(const ncl_future *f);
/* The error message once failed, cancelled or closed, else NULL. */
const char *ncl_future_error(const ncl_future *f);
/* The task id (of a proxy call's future: the method). */
const char *ncl_future_id(const ncl_future *f);

/* Called once when f finishes, on the connection's callback thread (after
 * ncl_close, on the thread that registers it). Keep it short: callbacks run
 * one after the other. It may submit, wait, call the broker, even close. */
typedef void (*ncl_done_fn)(ncl_future *f, void *arg);
/* Register the one completion callback of f; it runs exactly once, also when
 * f has finished already or is freed before. NCL_EINVAL when f has one. */
int ncl_future_on_done(ncl_future *f, ncl_done_fn fn, void *arg);
/* Let go of f (a registered callback still runs, then f goes). */
void ncl_future_free(ncl_future *f);

/* Cancel f's task if no worker has started it: 0 when it will never run (f
 * is then NCL_CANCELLED and its callback runs), NCL_ESTARTED when it has
 * started or finished already (f goes on as before). */
int ncl_future_cancel(ncl_future *f, int timeout_ms, ncl_err *err);

/* Wait until every future is finished (futures of one connection): 0 when
 * all succeeded, NCL_ETASK when some failed (the first in err). */
int ncl_wait_all(ncl_future *const *fs, size_t n, int timeout_ms, ncl_err *err);
/* Wait until one is finished; *index says which, the return value is its
 * outcome as ncl_future_wait gives it. */
int ncl_wait_any(ncl_future *const *fs, size_t n, int timeout_ms, size_t *index, ncl_err *err);

/* What the broker knows about a task (ncl_task_info). Times are ms since the
 * Unix epoch, 0 when not set. */
typedef struct ncl_info {
	char state[16];      /* pending, queued, started, succeeded, failed, dead */
	char name[129];      /* the task */
	char queue[129];
	char worker[129];    /* the worker it was last handed to, "" for none */
	int priority;
	int deliveries;
	int64_t submitted_ms, started_ms, finished_ms;
} ncl_info;

/* Ask the broker about a task (NCL_ENOTFOUND when it does not know it). */
int ncl_task_info(ncl_conn *c, const char *id, int timeout_ms, ncl_info *out, ncl_err *err);

/* ---- map and reduce ---- */

/* ncl_map delivers results in input order, or as they arrive. */
enum { NCL_ORDERED = 0, NCL_AS_COMPLETED = 1 };

#define NCL_CHUNK_AUTO_MAX 4096 /* items per task that ncl_map chooses at most */
#define NCL_CHUNK_MAX 100000    /* items per task at most */

/* One item's outcome: result (exact JSON text) or error (message), the other
 * NULL; both valid during the call. Return 0 to go on, else stop the map. */
typedef int (*ncl_item_fn)(size_t index, const char *result, const char *error, void *arg);

/* Run task once for each of the n argument lists (JSON arrays), in batches,
 * and call fn (may be NULL) for each item, on this thread, exactly once, in
 * the order mode says. The options apply to every item; timeout_ms bounds
 * the whole map.
 * Chunks: with opts->chunk = k > 1 the items travel k at a time as one
 * `chunk` task that runs them one after the other on a worker, which saves
 * the per-task cost for tiny items; results still come one per item. With
 * 0, k is n / (16 * the slots of the workers of the queue), from 1 to
 * NCL_CHUNK_AUTO_MAX, so each slot still gets about 16 tasks to balance.
 * 0 when all succeeded; NCL_ETASK when some failed (each was given to fn);
 * NCL_ECANCEL when fn said stop; NCL_ETIMEDOUT. Tasks already submitted run
 * to the end even when the map stops early. */
int ncl_map(ncl_conn *c, const char *task, const char *const *args_json, size_t n, int mode, ncl_item_fn fn,
    void *arg, const ncl_opts *opts, int timeout_ms, ncl_err *err);

/* Reducers, applied on the client as results arrive. ADD, MUL, MIN and MAX
 * take numbers, or objects of numbers member by member ({"inside": 785,
 * "points": 1000}); integers stay exact up to 128 bits, then are doubles.
 * CONCAT joins arrays or strings in input order; COUNT counts the items. */
typedef enum ncl_reducer { NCL_ADD, NCL_MUL, NCL_MIN, NCL_MAX, NCL_CONCAT, NCL_COUNT } ncl_reducer;

/* The reducer called name ("add", "mul", "min", "max", "concat", "count"):
 * 0, or NCL_ENOTFOUND. */
int ncl_reducer_parse(const char *name, ncl_reducer *out);

/* ncl_map, then reduce: *result gets the JSON text of the reduced value
 * (free() it). The first failed item stops the map (NCL_ETASK). */
int ncl_map_reduce(ncl_conn *c, const char *task, const char *const *args_json, size_t n, ncl_reducer op,
    char **result, const ncl_opts *opts, int timeout_ms, ncl_err *err);

/* Map, then reduce on the workers: the results, in input order, go in
 * groups of fanin (2 or more; 0 means 16) to reduce_task as its one
 * argument, a JSON array of values ([[v0, v1, ...]]); its results are
 * grouped again, level by level, until one value is left (a tree of
 * reduce tasks; reduce_task runs at least once). "sum" is a built-in such
 * task. */
int ncl_map_reduce_task(ncl_conn *c, const char *task, const char *const *args_json, size_t n,
    const char *reduce_task, int fanin, char **result, const ncl_opts *opts, int timeout_ms, ncl_err *err);

/* ---- statistics (Parallel Python's job server statistics) ---- */

/* Jobs per worker, over every task this connection saw finish (a map item
 * is one job, also inside a chunk). */
typedef struct ncl_stat_row {
	char worker[129];    /* "" for tasks with no worker (cancelled, dead) */
	uint64_t jobs;
	double job_s;        /* run time on the worker, summed */
} ncl_stat_row;

typedef struct ncl_stats {
	ncl_stat_row *rows;  /* by worker name */
	size_t n;
	uint64_t jobs;       /* all rows */
	double job_s;
	double wall_s;       /* since ncl_open or ncl_stats_reset */
} ncl_stats;

/* A copy of the statistics now; ncl_stats_free it. */
int ncl_stats_get(ncl_conn *c, ncl_stats *out, ncl_err *err);
void ncl_stats_free(ncl_stats *s);
/* Forget them and start the wall time again. */
void ncl_stats_reset(ncl_conn *c);
/* Print the table: jobs, % of all jobs, job time sum, time per job, worker;
 * then the wall time. */
void ncl_stats_print(const ncl_stats *s, FILE *f);

/* ---- proxies: remote objects and functions (Pyro4's Proxy) ---- */

/* A proxy calls the methods of one target served by `node rpc`, over
 * JSON-RPC 2.0: a name registered at the name server (an object,
 * "example.shop.Shop", or a server's own name, "rpc.alpha") or an address
 * (tcp://, ipc://, tls+tcp://). A name is looked up at the first call and
 * the address kept; it is looked up again when the server seems to have
 * moved (a call failed in transport, or the server said it has no such
 * object). A call that certainly never ran (that answer) is sent once more
 * to the new address; a call that timed out is not (it may have run), but
 * the next call goes to the new address. Any number of threads may use one
 * proxy at once. */
typedef struct ncl_proxy ncl_proxy;

/* Proxy options; zero-initialise, set what you need (or pass NULL). */
typedef struct ncl_proxy_opts {
	const char *cluster_file; /* NULL: $NODE_CONFIG, ./node.json, else the embedded default */
	const char *nameserver;   /* name server URL, or "auto" to broadcast for it; NULL: the
	                             cluster file's, else a broadcast when defaults.discovery is on */
	int timeout_ms;           /* what a timeout_ms of 0 means; 0: defaults.timeout_ms */
} ncl_proxy_opts;

/* A proxy for target. Does not call anyone yet, except to find the name
 * server by broadcast when that is how it is found. NCL_ENOTFOUND when a
 * name has no name server to be looked up at. */
int ncl_proxy_open(ncl_proxy **out, const char *target, const ncl_proxy_opts *opts, ncl_err *err);
/* Close: calls in flight end at once with NCL_ECLOSED (their futures are
 * NCL_CLOSED, their callbacks run); futures stay readable until freed. */
void ncl_proxy_close(ncl_proxy *p);
/* The target as given. */
const char *ncl_proxy_target(const ncl_proxy *p);
/* The address calls go to now, copied into buf ("" before a name's first
 * lookup); the length of the address. */
size_t ncl_proxy_address(ncl_proxy *p, char *buf, size_t n);

/* Call method (of a name: "deposit", sent as "NAME.deposit"; of a server's
 * name or an address: as it is, "add" or "example.shop.Shop.deposit") with
 * params_json, a JSON array (by position) or object (by name), or NULL for
 * none. *result_json gets the result as JSON text (free() it). A JSON-RPC
 * error is NCL_ERPC with rpc_code, the error's data.type in remote, and
 * msg "METHOD: MESSAGE [CODE TYPE]"; no answer in time is NCL_ETIMEDOUT;
 * a name the name server does not know is NCL_ENOTFOUND. */
int ncl_proxy_call(ncl_proxy *p, const char *method, const char *params_json, int timeout_ms, char **result_json,
    ncl_err *err);
/* The same without waiting: the future (yours to ncl_future_free) finishes
 * with the result (ncl_future_result) or fails (ncl_future_error; then
 * ncl_future_wait gives the code, rpc_code included, as ncl_proxy_call
 * would). Waits, callbacks and ncl_wait_all/any work as for tasks, over
 * futures of one proxy; ncl_future_cancel says NCL_ESTARTED. Errors found
 * before anything was sent are returned here, without a future. */
int ncl_proxy_call_async(ncl_proxy *p, const char *method, const char *params_json, int timeout_ms,
    ncl_future **out, ncl_err *err);
/* A one-way call (a JSON-RPC notification): returns once the server has
 * accepted it, within the proxy's usual time limit; what the method does,
 * or whether it fails, is not heard. */
int ncl_proxy_oneway(ncl_proxy *p, const char *method, const char *params_json, ncl_err *err);

#ifdef __cplusplus
}
#endif

#endif
