/* The RPC role's shared definitions, for the files of modules/rpc/: the
 * JSON-RPC 2.0 engine (jsonrpc.c), objects and their instances (objects.c),
 * the kinds built in (builtin.c, shop.c, chain.c) or loaded (plugin.c), the
 * thread pool for methods that block (pool.c), calls to other servers
 * (peer.c), the name server registration (register.c), HTTP (http.c) and
 * remote execution (exec.c). modules/rpc.c starts and stops the role. */
#ifndef NODE_RPC_H
#define NODE_RPC_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "core/cmd.h"
#include "core/names.h"
#include "core/transport.h"

/* JSON-RPC 2.0 error codes: the standard ones, then ours (-32000..-32099,
 * the range the specification leaves to servers). */
#define RPC_PARSE_ERROR -32700
#define RPC_INVALID_REQUEST -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS -32602
#define RPC_INTERNAL_ERROR -32603
#define RPC_APP_ERROR -32000   /* the method's own error; data: {"type": ...} */
#define RPC_TIMEOUT -32001     /* the call (or a call it made) ran out of time */
#define RPC_UNAVAILABLE -32002 /* a name not registered, a server not reachable */
#define RPC_OVERLOADED -32003  /* too many calls waiting */
#define RPC_DENIED -32004      /* not allowed here (exec allow-list) */
#define RPC_TOO_LARGE -32005   /* over the message or batch limits */

#define RPC_BATCH_MAX 1000      /* requests in one batch */
#define RPC_METHOD_MAX 256      /* bytes in a method name */
#define RPC_SESSION_MAX 10000   /* live sessions per object */
#define RPC_CALL_MAX_MS 3600000 /* the longest a call may take */

typedef struct rpc_server rpc_server;
typedef struct rpc_req rpc_req;
typedef struct rpc_object rpc_object;
typedef struct rpc_kind rpc_kind;

/* A method: params is always an array here (by-name params are put in the
 * order of rpc_method.params first) with an arity already checked. It must
 * answer r exactly once, now or later, from any thread. */
typedef void (*rpc_method_fn)(rpc_req *r, void *inst, const cJSON *params);

#define RPC_M_BLOCKS 1 /* may block its thread (sleeps, waits): runs on the pool */

typedef struct rpc_method {
	const char *name;
	rpc_method_fn fn;
	const char *params;    /* "name,amount": names in order; "" for none */
	int min_args, max_args; /* max_args -1: any number */
	int flags;             /* RPC_M_* */
	const void *udata;     /* a plugin's own function, for plugin kinds */
} rpc_method;

typedef struct rpc_obj_cfg {
	const char *name;      /* the registered name, e.g. example.shop.Shop */
	const cJSON *opts;     /* the object's settings (kind-specific keys) */
	const rpc_kind *kind;
	rpc_server *srv;
} rpc_obj_cfg;

struct rpc_kind {
	const char *name;
	const char *doc;
	const rpc_method *methods; /* ends with {NULL} */
	/* A new instance; NULL create means the kind has no state. */
	int (*create)(void **inst, const rpc_obj_cfg *cfg, node_err *err);
	void (*destroy)(void *inst, const rpc_kind *kind);
	int concurrent;            /* shared instance: calls at once (1) or one at a time (0) */
	const void *udata;         /* a plugin's table, for plugin kinds */
};

/* ---- answering (jsonrpc.c) ---- */

/* Takes result. */
void rpc_req_result(rpc_req *r, cJSON *result);
/* data (taken, may be NULL) becomes the error's "data". */
void rpc_req_error(rpc_req *r, int code, cJSON *data, const char *fmt, ...) NODE_PRINTF(4, 5);
/* An application error: code RPC_APP_ERROR, data {"type": type}. */
void rpc_req_fail(rpc_req *r, const char *type, const char *fmt, ...) NODE_PRINTF(3, 4);
rpc_server *rpc_req_server(const rpc_req *r);
const rpc_method *rpc_req_method(const rpc_req *r);
const char *rpc_req_object(const rpc_req *r);
/* Milliseconds left before the caller gives up (for calls this one makes). */
int rpc_req_left_ms(const rpc_req *r);

/* Argument i of params with a type check; on a wrong type r is answered
 * with invalid params and -1 returned. */
int rpc_arg_str(rpc_req *r, const cJSON *params, int i, const char **out);
int rpc_arg_num(rpc_req *r, const cJSON *params, int i, double *out);

/* A parsed message (request or batch) from a session ("" for none). done
 * gets the reply to send (a response, an array of them) or NULL when every
 * request was a notification; it runs once, maybe before rpc_serve returns. */
typedef void (*rpc_done_fn)(cJSON *reply, void *arg);
void rpc_serve(rpc_server *s, const cJSON *msg, const char *session, rpc_done_fn done, void *arg);
/* The response for a message that could not be read (parse error, limits). */
cJSON *rpc_error_response(int code, const char *message);

/* ---- objects (objects.c) ---- */

#define RPC_MODE_SHARED 0
#define RPC_MODE_SESSION 1
#define RPC_MODE_CALL 2

typedef struct rpc_inst rpc_inst;

/* Add an object; its shared instance is made now, so a bad setting fails
 * the start. registered: announce it at the name server (the server's own
 * namespaces, functions and exec, are not). */
int rpc_object_add(rpc_server *s, const char *name, const rpc_kind *kind, const cJSON *opts, int registered,
    node_err *err);
int rpc_object_registered(const rpc_object *o);
/* The objects in the order they were added (for registration). */
rpc_object *rpc_object_next(rpc_server *s, rpc_object *prev);
rpc_object *rpc_object_find(rpc_server *s, const char *name);
const rpc_method *rpc_object_method(const rpc_object *o, const char *method);
const char *rpc_object_name(const rpc_object *o);
/* The instance a call uses: the shared one, the session's, or a new one. */
int rpc_object_acquire(rpc_object *o, const char *session, rpc_inst **out, node_err *err);
void *rpc_inst_state(rpc_inst *i);
/* Around a method's run: holds the instance and, for objects that take
 * one call at a time, its lock (until the method returns, not until it
 * answers: a method that answers later lets the next call in). */
void rpc_inst_enter(rpc_inst *i);
/* The same without waiting: 0 when a serialized instance is busy. */
int rpc_inst_try_enter(rpc_inst *i);
void rpc_inst_leave(rpc_inst *i);
void rpc_inst_release(rpc_inst *i);
/* A session ended (its connection closed): free its instances. */
void rpc_objects_session_end(rpc_server *s, const char *session);
/* Free sessions idle longer than idle_ms. */
void rpc_objects_sweep(rpc_server *s, int64_t idle_ms);
/* {name: {kind, mode, concurrent, methods: [...]}} */
cJSON *rpc_objects_json(rpc_server *s);
/* The meta of one object for the name server: {kind, methods, mode, node, http}. */
cJSON *rpc_object_meta(rpc_server *s, const rpc_object *o);
void rpc_objects_free(rpc_server *s);

/* ---- kinds (builtin.c, shop.c, chain.c, plugin.c, exec.c) ---- */

extern const rpc_kind rpc_kind_functions, rpc_kind_greeting, rpc_kind_shop, rpc_kind_chain, rpc_kind_exec;
/* A built-in or loaded kind by name. */
const rpc_kind *rpc_kind_find(rpc_server *s, const char *name);
/* A kind of a loaded plugin, or NULL. */
const rpc_kind *rpc_plugin_kind_find(rpc_server *s, const char *name);
/* Load a plugin: its kinds join the server's. */
int rpc_plugin_load(rpc_server *s, const char *path, node_err *err);
void rpc_plugins_free(rpc_server *s);

/* ---- the pool for methods that block (pool.c) ---- */

typedef struct rpc_pool rpc_pool;
int rpc_pool_start(rpc_pool **out, int max_threads, node_err *err);
/* Run fn(arg) on a pool thread, or cancel(arg) if the pool stops before
 * it runs; NODE_ELIMIT when too many wait. */
int rpc_pool_run(rpc_pool *p, void (*fn)(void *), void (*cancel)(void *), void *arg, node_err *err);
/* Answer every queued job with its cancel and take no more. */
void rpc_pool_cancel_queued(rpc_pool *p);
void rpc_pool_stop(rpc_pool *p);

/* ---- calls to other objects (peer.c) ---- */

int rpc_peers_init(rpc_server *s, node_err *err);
/* rc 0: result set (taken by the callback). Else error: the remote
 * JSON-RPC error object when the peer answered with one, and err. */
typedef void (*rpc_peer_fn)(int rc, cJSON *result, const cJSON *error, const node_err *err, void *arg);
/* Call method of the object called name (resolved through the name server,
 * cached) or, when target is a URL, method as is. params is taken. On
 * success cb runs exactly once, later; on failure it never runs. */
int rpc_peer_call(rpc_server *s, const char *target, const char *method, cJSON *params, int timeout_ms,
    rpc_peer_fn cb, void *arg, node_err *err);
void rpc_peers_free(rpc_server *s);

/* ---- name server registration (register.c) ---- */

int rpc_register_start(rpc_server *s, node_err *err);
void rpc_register_tick(rpc_server *s);
void rpc_register_stop(rpc_server *s);

/* ---- HTTP (http.c) ---- */

int rpc_http_start(rpc_server *s, const char *url, node_err *err);
void rpc_http_stop(rpc_server *s);

/* ---- the server ---- */

typedef struct rpc_peer_cache rpc_peer_cache;
typedef struct rpc_http rpc_http;
typedef struct rpc_plugin rpc_plugin;

struct rpc_server {
	node_ctx *ctx;
	node_server *srv;
	const char *node;
	char name[256];           /* the functions' name: roles.rpc.name or rpc.NODE */
	char url[512];            /* where the transport listens */
	char http_url[512];       /* where HTTP listens, "" when off */
	char nameserver[512];     /* "" when there is none */
	int functions;            /* serve add, echo, time, sleep */
	int ttl_s;                /* registrations live this long unless renewed */
	int replace;              /* take over names registered by others */
	int64_t session_idle_ms;
	pthread_mutex_t lock;     /* guards objects and sessions */
	rpc_object *objects;
	rpc_pool *pool;
	rpc_peer_cache *peers;
	node_names *reg;          /* NULL when registering nowhere */
	rpc_http *http;
	rpc_plugin *plugins;
	int call_ms;              /* how long a call may take, for the calls it makes */
	atomic_ullong calls, errors;
	atomic_int inflight;      /* calls started and not answered */
	atomic_int stopping;      /* new calls are refused */
};

#endif
