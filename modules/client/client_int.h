/* The inside of libnodeclient, shared by its files:
 *   conn.c    connections, calls with a time limit, errors, the callback thread
 *   track.c   completion tracking: chunked, parked gets over every watched id
 *   future.c  submit and futures
 *   map.c     map: batched submits, results in order or as they arrive
 *   reduce.c  the built-in reducers
 *   proxy.c   proxies: the target, its address at the name server, clients
 *   rpc.c     proxy calls: JSON-RPC requests and replies, retry after a move
 *
 * Ownership. Everything that waits for tasks is an ncl_owner (a future waits
 * for one, a map for many); each task it waits for is an ncl_watch. The
 * connection's lock guards every owner, watch and reference count. A watch
 * given to the tracker holds a reference on its owner until its outcome is
 * delivered (or the owner gives up), so an owner never goes away under a
 * get in flight; each owner holds one on the connection, so a connection
 * outlives its futures. */
#ifndef NCL_CLIENT_INT_H
#define NCL_CLIENT_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "client/nodeclient.h"
#include "core/config.h"
#include "core/transport.h"

#define NCL_GET_MAX 1000          /* ids in one get at most */
#define NCL_GETS_SPREAD 32        /* watched ids are spread over this many gets */
#define NCL_GETS_MAX 256          /* gets in flight at most */
#define NCL_WAIT_ONE_MS 30000     /* a get of one id parks this long */
#define NCL_WAIT_MANY_MIN_MS 100  /* a get of several: this long at first, */
#define NCL_WAIT_MANY_MAX_MS 2000 /* doubling while its ids stay unfinished */
#define NCL_RETRY_MIN_MS 100      /* after a failed get, wait this long, */
#define NCL_RETRY_MAX_MS 2000     /* doubling up to this */
#define NCL_ID_MAX 128            /* the broker's limit on names */
#define NCL_FOREVER_MS 0x7fffffff /* a call "without" a time limit: 24 days */

typedef struct ncl_owner ncl_owner;
typedef struct ncl_watch ncl_watch;

/* How a task ended, as a get entry says it; the strings are malloc'd and
 * belong to whoever takes the outcome. */
typedef struct ncl_outcome {
	ncl_state state; /* NCL_PENDING: not finished yet */
	char *result;    /* exact JSON text, when succeeded */
	char *error;     /* the message, when failed or closed */
	char worker[NCL_ID_MAX + 1]; /* who ran it, "" when unknown */
	int64_t run_ms;  /* finished - started, -1 when unknown */
	char *entry;     /* the broker's whole get entry as JSON, for owners that want it */
} ncl_outcome;

typedef struct ncl_owner_ops {
	/* The task id of w, written into buf when it has to be made. */
	const char *(*id)(ncl_owner *o, const ncl_watch *w, char *buf, size_t n);
	/* w finished: take the outcome. Runs with the connection's lock held. */
	void (*done)(ncl_owner *o, ncl_watch *w, ncl_outcome *out);
	/* The last reference went: free it (without the lock). */
	void (*destroy)(ncl_owner *o);
} ncl_owner_ops;

struct ncl_owner {
	const ncl_owner_ops *ops;
	ncl_conn *conn;
	int refs;          /* its user, each watch in the tracker, each call in flight... */
	int abandoned;     /* wants no more outcomes: the tracker drops its watches */
	int want_entry;    /* keep the broker's get entry (node's commands print it) */
	ncl_owner *gone;   /* on a list of owners to destroy after unlocking */
};

struct ncl_watch {
	ncl_watch *next;   /* in the tracker's queue */
	ncl_owner *owner;
	unsigned tries;    /* gets it came back unfinished from */
};

struct ncl_future {
	ncl_owner owner;   /* first member: a future is its own owner */
	ncl_watch watch;
	char id[NCL_ID_MAX + 1];
	int state;         /* ncl_state; written under the lock, read atomically */
	char *result, *error;
	char *entry;       /* the broker's get entry when the owner wanted it */
	ncl_done_fn cb;
	void *cb_arg;
	int cb_queued;     /* on the connection's callback queue, or has run */
	ncl_future *cb_next;
	/* a proxy call's future (rpc.c): never tracked; its call ends it */
	int rpc;
	int err_code;      /* NCL_E* when it failed */
	int rpc_code;      /* the JSON-RPC error code, 0 for none */
	char rpc_type[32]; /* the error's data.type, "" for none */
};

struct ncl_conn {
	pthread_mutex_t lock;
	pthread_cond_t changed;  /* a future finished, or the connection closes */
	pthread_cond_t wake;     /* the callback thread: callbacks, a retry due, closing */
	int refs;                /* the user, the callback thread, each owner */
	int closing;
	int calls;               /* threads inside node_client_call_async right now */
	node_wire wire;
	node_client *cl;
	char url[512];
	int call_ms;             /* the usual time limit of one call */
	char prefix[32];         /* of generated task ids */
	int64_t opened_ms;       /* monotonic: the start of the statistics' wall time */
	uint64_t seq;            /* the number of the next generated id */
	/* completion tracking (track.c) */
	ncl_watch *qhead, *qtail; /* watched ids waiting for a get */
	size_t queued;
	int gets;                /* in flight */
	int get_max;             /* ids per get; halved when a reply is too large */
	int64_t retry_at;        /* after a failed get, send none before (ms) */
	int retry_ms;
	/* statistics (stats.c) */
	struct ncl_stat_row *stats;
	size_t nstats, capstats;
	/* completion callbacks */
	ncl_future *cb_head, *cb_tail;
	pthread_t thread;
	int has_thread;
};

/* ---- conn.c ---- */

/* ncl_open for node's own commands and roles, which have their cluster file
 * loaded already (url NULL: the broker's listen URL in conf). */
int ncl_open_conf(ncl_conn **out, const char *url, const node_conf *conf, ncl_err *err);
/* The same to another role than the broker: peer names it in errors ("name server"). */
int ncl_open_peer(ncl_conn **out, const char *url, const node_conf *conf, const char *peer, ncl_err *err);

/* Wait on cond until woken or the monotonic deadline (ms, < 0: none). */
void ncl_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t deadline);
/* Deadline in ms for a time limit (< 0: none). */
int64_t ncl_deadline(int timeout_ms);
/* "200 ms", "2 s", "1.5 s" */
void ncl_fmt_ms(int64_t ms, char *out, size_t n);

int ncl_set(ncl_err *err, int code, const char *fmt, ...) NODE_PRINTF(3, 4);
int ncl_from_node(ncl_err *err, const node_err *e);
/* Add formatted text after err's message. */
void ncl_append(ncl_err *err, const char *fmt, ...) NODE_PRINTF(2, 3);
/* Put a formatted prefix before err's message. */
void ncl_prefix(ncl_err *err, const char *fmt, ...) NODE_PRINTF(2, 3);

/* One call to the broker with a time limit; *reply is the ok reply. */
int ncl_call(ncl_conn *c, const cJSON *req, int timeout_ms, cJSON **reply, ncl_err *err);
/* The same without waiting: cb runs on an nng thread (once, also on error). */
int ncl_call_async(ncl_conn *c, const cJSON *req, int timeout_ms, node_reply_fn cb, void *arg, node_err *err);

void ncl_owner_init(ncl_owner *o, const ncl_owner_ops *ops, ncl_conn *c);
/* Drop a reference (lock held); when it was the last, o goes on *gone. */
void ncl_owner_unref_locked(ncl_owner *o, ncl_owner **gone);
/* Destroy the owners of a gone list (lock not held). */
void ncl_owners_destroy(ncl_owner *gone);
void ncl_conn_unref(ncl_conn *c);
/* Keep c's memory past an ncl_close from another thread (ncl_conn_unref). */
void ncl_conn_ref(ncl_conn *c);

/* A new task id into buf. */
void ncl_new_id(ncl_conn *c, char *buf, size_t n);
/* Check that text is a JSON value of the wanted type (cJSON_Array...);
 * what names it in the message. */
int ncl_check_json(const char *text, int type, const char *what, ncl_err *err);

/* Add the options of o (may be NULL) to a task object of a submit; checked:
 * their JSON texts were checked already (a map checks them once). */
int ncl_opts_apply(cJSON *task, const ncl_opts *o, int checked, ncl_err *err);

/* Put a finished future's callback on the callback queue (lock held). */
void ncl_callback_queue_locked(ncl_conn *c, ncl_future *f);

/* ---- future.c ---- */

/* ncl_future_for, keeping the broker's get entry (ncl_future_entry). */
int ncl_future_watch(ncl_conn *c, const char *id, int want_entry, ncl_future **out, ncl_err *err);
/* The broker's get entry of a finished future as JSON text, or NULL. */
const char *ncl_future_entry(const ncl_future *f);

/* A pending future of c for a proxy call; id names it. It holds two
 * references: its user's and the call's, which ncl_future_rpc_end drops. */
int ncl_future_rpc_new(ncl_conn *c, const char *id, ncl_future **out, ncl_err *err);
/* The call ended: succeeded with result (code 0), else failed with code,
 * rpc_code, type (may be NULL) and msg; closed when code is NCL_ECLOSED.
 * Takes result and msg (malloc'd). Any thread, without c's lock. */
void ncl_future_rpc_end(ncl_future *f, int code, int rpc_code, const char *type, char *result, char *msg);
/* Take a succeeded future's result text (the caller frees it). */
char *ncl_future_rpc_take(ncl_future *f);

/* ---- proxy.c ---- */

#define NCL_TARGET_MAX 256 /* bytes in a proxy's target */
#define NCL_URL_MAX 512

/* A client to one address a proxy's calls went to. */
typedef struct ncl_pclient {
	struct ncl_pclient *next;
	node_client *cl;
	int users;             /* calls sent over it and not answered (proxy lock) */
	char url[NCL_URL_MAX];
} ncl_pclient;

/* A call that waits for a lookup; ready runs once it is over: rc 0, route
 * again (ncl_proxy_route gives the address now), else the lookup failed
 * (err). Runs on whatever thread ended the lookup, without locks. */
typedef struct ncl_route_wait {
	struct ncl_route_wait *next;
	int64_t deadline;      /* monotonic ms, -1 none: bounds the lookup */
	void (*ready)(struct ncl_route_wait *w, int rc, const ncl_err *err);
} ncl_route_wait;

struct ncl_proxy {
	pthread_mutex_t lock;    /* guards everything below the target */
	pthread_cond_t idle;     /* sending dropped to 0 */
	ncl_conn *host;          /* its futures' connection (waits, callback thread); it
	                            dials the name server, or the target's address */
	char target[NCL_TARGET_MAX];
	int is_url;              /* the target is an address: no lookups */
	char ns_url[NCL_URL_MAX];/* "" for an address */
	int call_ms;             /* what a timeout of 0 means */
	uint64_t next_id;        /* of JSON-RPC requests (atomic) */
	ncl_pclient *cur;        /* where calls go; NULL until a name is looked up */
	ncl_pclient *old;        /* earlier addresses; closed with the proxy */
	int bare;                /* the name is a server's: methods go as they are */
	int stale;               /* cur failed: look the name up before the next call */
	int resolving;           /* a lookup is in flight */
	ncl_route_wait *waiting; /* calls waiting for it, in order */
	int sending;             /* threads handing a call to a client right now */
	int closing;
};

/* ncl_proxy_open for node's own commands, which have their cluster file
 * loaded already. */
int ncl_proxy_open_conf(ncl_proxy **out, const char *target, const node_conf *conf, const ncl_proxy_opts *opts,
    ncl_err *err);

#define NCL_ROUTE_WAIT (-1) /* ncl_proxy_route: w waits for a lookup */

/* Where a call goes: 0 with *via (hold it until the call's reply comes:
 * ncl_proxy_release; and call ncl_proxy_sent once it is handed over) and
 * *bare (send the method as it is); NCL_ROUTE_WAIT when w waits for a
 * lookup; else an error. failed_url: the call failed there as if the
 * server had moved: look the name up again unless that is known already. */
int ncl_proxy_route(ncl_proxy *p, ncl_route_wait *w, const char *failed_url, ncl_pclient **via, int *bare,
    ncl_err *err);
/* The call routed to via has been handed to its client (or not). */
void ncl_proxy_sent(ncl_proxy *p);
/* The call's reply came (or it failed): via may go. */
void ncl_proxy_release(ncl_proxy *p, ncl_pclient *via);
/* A call to via failed in transport: look the name up before the next. */
void ncl_proxy_suspect(ncl_proxy *p, ncl_pclient *via);
/* Close the clients of earlier addresses that no call uses any more (on a
 * caller's thread, never in a client's callback). */
void ncl_proxy_prune(ncl_proxy *p);

/* ---- track.c ---- */

/* Start watching w for its owner (lock held; takes a reference on the owner). */
void ncl_track_locked(ncl_conn *c, ncl_watch *w);
/* Send gets for queued watches. Lock held on entry and return; dropped
 * while sending. */
void ncl_track_pump(ncl_conn *c);
/* Drop the queued watches of an owner that gave up (lock held). */
void ncl_track_forget_locked(ncl_conn *c, ncl_owner *o, ncl_owner **gone);
/* The connection closes: every queued watch ends as NCL_CLOSED (lock held). */
void ncl_track_close_locked(ncl_conn *c, ncl_owner **gone);
/* Read one get entry into out (state NCL_PENDING when not finished). */
int ncl_outcome_read(const cJSON *entry, ncl_outcome *out);

/* ---- map.c ---- */

/* What the tasks of a map stand for: each is per of items (chunks). */
typedef struct ncl_map_shape {
	size_t per, items;
} ncl_map_shape;

/* The map itself, on checked arguments, with n tasks (ncl_map's rules). */
int ncl_map_run(ncl_conn *c, const char *task, const char *const *args_json, size_t n, int mode,
    const ncl_map_shape *shape, ncl_item_fn fn, void *arg, const ncl_opts *opts, int timeout_ms, ncl_err *err);

/* ---- chunk.c ---- */

/* The chunk size ncl_map picks for n items on queue (NULL: default). */
size_t ncl_chunk_auto(ncl_conn *c, size_t n, const char *queue);

/* ---- json.c ---- */

/* 1 when text is one valid JSON value, of type '[' or '{' when type is not 0. */
int ncl_json_valid(const char *text, char type);
/* The end of the valid JSON value at p (after white space), or NULL. */
const char *ncl_json_skip(const char *p);
/* Called for each element of an array (key NULL) or member of an object
 * (key: the name as it is in the text, without quotes); value is a span of
 * the text. Return 0 to go on. */
typedef int (*ncl_json_fn)(size_t index, const char *key, size_t keylen, const char *value, size_t len, void *arg);
/* Walk an array or object text: 0 when all went, -1 when the text is not
 * valid, else what fn returned. */
int ncl_json_each(const char *text, ncl_json_fn fn, void *arg);

/* ---- stats.c ---- */

/* A task finished on worker (may be empty) after run_ms; it stands for
 * jobs items of a map. Lock held. */
void ncl_stats_add_locked(ncl_conn *c, const char *worker, uint64_t jobs, int64_t run_ms);
void ncl_stats_free_locked(ncl_conn *c);

/* ---- reduce.c ---- */

typedef struct ncl_reduce ncl_reduce;
int ncl_reduce_new(ncl_reduce **out, ncl_reducer op, ncl_err *err);
/* Fold in item index's result (JSON text). */
int ncl_reduce_add(ncl_reduce *r, size_t index, const char *json, ncl_err *err);
/* The reduced value as JSON text (malloc'd). */
int ncl_reduce_result(ncl_reduce *r, char **out, ncl_err *err);
void ncl_reduce_free(ncl_reduce *r);
/* Whether op needs the items in input order. */
int ncl_reduce_ordered(ncl_reducer op);

#endif
