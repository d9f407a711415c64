/* The one transport layer every role uses: request/reply servers that
 * dispatch by "op" and can park requests, clients with timeouts, PUB/SUB
 * and SURVEYOR/RESPONDENT. Nothing outside modules/core opens nng sockets. */
#ifndef NODE_TRANSPORT_H
#define NODE_TRANSPORT_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "err.h"
#include "msg.h"

#include "version.h"

/* ---- endpoints (endpoint.c) ---- */

/* Listen on or dial url for sock, with TLS set up from w for tls+tcp://.
 * A listener on tcp://host:0 gets a free port; bound_url receives the real URL. */
int node_listen(nng_socket sock, const char *url, node_wire *w, char *bound_url, size_t blen, node_err *err);
/* The same, giving the listener (to close it before its socket). */
int node_listen_keep(nng_socket sock, const char *url, node_wire *w, char *bound_url, size_t blen, nng_listener *out,
    node_err *err);
int node_dial(nng_socket sock, const char *url, node_wire *w, node_err *err);
/* The same, giving the dialer (to close it before its socket). */
int node_dial_keep(nng_socket sock, const char *url, node_wire *w, nng_dialer *out, node_err *err);

/* ---- servers (server.c) ---- */

typedef struct node_server node_server;
typedef struct node_call node_call; /* one request being served */

/* A handler must answer the call exactly once, now or later (a parked call),
 * with node_call_reply or node_call_error. req is only valid during the call
 * of the handler; the call itself stays valid until it is answered. */
typedef void (*node_op_fn)(node_call *call, const cJSON *req, void *arg);

typedef struct node_op {
	const char *name;
	node_op_fn fn;
} node_op;

/* For servers that speak another JSON protocol beside ops (JSON-RPC 2.0):
 * gets every message that is not an object with "op" (an array, or an
 * object without "op"), and, with msg NULL and bad set, every message that
 * could not be decoded. It answers the call like an op handler. */
typedef void (*node_raw_fn)(node_call *call, const cJSON *msg, const node_err *bad, void *arg);

typedef struct node_server_cfg {
	const char *url;
	const char *role;     /* answered by ping and info */
	const char *node;     /* node name, answered by ping and info */
	const node_op *ops;   /* ends with {NULL, NULL} */
	void *arg;            /* passed to every handler */
	node_wire *wire;
	int receivers;        /* requests received at once (default 64) */
	int max_parked;       /* parked calls at most (default 100000) */
	/* Called (from an nng thread) when a client connection goes away, so a
	 * role can drop the parked calls that came over it. */
	void (*on_disconnect)(uint32_t pipe, void *arg);
	node_raw_fn raw;      /* NULL: only ops */
} node_server_cfg;

int node_server_start(node_server **out, const node_server_cfg *cfg, node_err *err);
/* The URL it listens on, with the real port. */
const char *node_server_url(const node_server *s);
/* Stop receiving, wait for running handlers, free everything. Parked calls
 * that were never answered are freed too: answer them before stopping. */
void node_server_stop(node_server *s);

/* Takes ownership of reply. Safe from any thread. */
void node_call_reply(node_call *c, cJSON *reply);
void node_call_error(node_call *c, const char *code, const char *fmt, ...) NODE_PRINTF(3, 4);
/* The connection the request came over (for on_disconnect). */
uint32_t node_call_pipe(const node_call *c);

typedef struct node_server_stats {
	uint64_t requests;
	uint64_t errors;
	uint64_t parked;  /* parked right now */
	uint64_t refused; /* bad messages: malformed, limits, authentication */
} node_server_stats;
void node_server_stats_get(node_server *s, node_server_stats *out);

/* ---- clients (client.c) ---- */

typedef struct node_client node_client;

/* peer names the other side in errors ("broker"). Dialing does not wait: a
 * server that is not up yet is reached when it comes up (nng reconnects). */
int node_client_open(node_client **out, const char *url, const char *peer, node_wire *w, node_err *err);
/* Fails calls still in flight (their callbacks run with NODE_ECLOSED) and
 * waits for those callbacks before freeing. */
void node_client_close(node_client *c);
const char *node_client_url(const node_client *c);
/* Send req, wait up to timeout_ms for the reply. A reply with ok:false
 * returns NODE_EREMOTE with the peer's code and message in err (and
 * *reply set, for callers that want more). Thread-safe: each call has its own context. */
int node_client_call(node_client *c, const cJSON *req, int timeout_ms, cJSON **reply, node_err *err);

/* The same without waiting; cb (may be NULL) runs on an nng thread and owns reply. */
typedef void (*node_reply_fn)(int rc, cJSON *reply, const node_err *err, void *arg);
int node_client_call_async(node_client *c, const cJSON *req, int timeout_ms, node_reply_fn cb, void *arg, node_err *err);
/* Calls to servers of another protocol (JSON-RPC 2.0): the reply may be an
 * object or an array and is not checked for "ok". */
int node_client_call_raw(node_client *c, const cJSON *req, int timeout_ms, cJSON **reply, node_err *err);
int node_client_call_raw_async(node_client *c, const cJSON *req, int timeout_ms, node_reply_fn cb, void *arg, node_err *err);

/* ---- publish/subscribe (pubsub.c) ---- */

typedef struct node_pub node_pub;
typedef struct node_sub node_sub;

int node_pub_open(node_pub **out, const char *url, node_wire *w, node_err *err);
/* body must have a string "topic"; subscribers filter on its prefix. */
int node_pub_send(node_pub *p, const cJSON *body, node_err *err);
void node_pub_close(node_pub *p);
const char *node_pub_url(const node_pub *p);

/* topic_prefix NULL or "" receives everything. */
int node_sub_open(node_sub **out, const char *url, const char *topic_prefix, node_wire *w, node_err *err);
/* NODE_ETIMEDOUT when nothing arrived in time. */
int node_sub_recv(node_sub *s, int timeout_ms, cJSON **body, node_err *err);
void node_sub_close(node_sub *s);

/* ---- surveys (survey.c) ---- */

typedef struct node_respondent node_respondent;

/* Answer every survey that arrives at url (dial or listen) with handler's reply. */
typedef cJSON *(*node_survey_fn)(const cJSON *question, void *arg);
int node_respondent_start(node_respondent **out, const char *url, int do_listen, node_wire *w,
    node_survey_fn fn, void *arg, node_err *err);
void node_respondent_stop(node_respondent *r);

/* Ask every respondent connected to the surveyor socket; collect replies
 * for timeout_ms. urls: where to dial or listen. cb gets each reply (owned by cb). */
typedef void (*node_answer_fn)(cJSON *answer, void *arg);
int node_survey(const char *url, int do_listen, node_wire *w, const cJSON *question, int timeout_ms,
    int settle_ms, node_answer_fn cb, void *arg, int *answers, node_err *err);

#endif
