/* Request/reply servers in nng's work-object shape: each node_call owns a
 * REP context and an aio and cycles recv -> handler -> send. A handler that
 * does not answer at once parks its call; the server then adds a receiver so
 * parked calls never starve new requests. Built-in ops: ping, info. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "transport.h"

enum { CALL_RECV, CALL_BUSY, CALL_SEND };

struct node_call {
	node_server *srv;
	nng_ctx ctx;
	nng_aio *aio;
	int state;        /* CALL_* */
	pthread_mutex_t lock;
	int in_handler;   /* the handler is still running on the receive thread */
	int answered;     /* a reply was given for the current request */
	int parked;       /* counted in srv->nparked */
	nng_msg *pending; /* reply given while in_handler; sent when it returns */
	uint32_t pipe;
	node_call *next;  /* srv->all */
};

struct node_server {
	nng_socket sock;
	nng_listener listener;
	node_server_cfg cfg;
	char url[512];
	pthread_mutex_t lock;
	node_call *all;
	int receiving;
	int nparked;
	int closing;
	atomic_ullong requests, errors, refused;
};

static void call_cb(void *arg);

static void call_free(node_call *c)
{
	if (c->aio)
		nng_aio_free(c->aio);
	nng_ctx_close(c->ctx);
	if (c->pending)
		nng_msg_free(c->pending);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

/* Start receiving on c; srv->lock must not be held. */
static void call_recv(node_call *c)
{
	node_server *s = c->srv;
	pthread_mutex_lock(&s->lock);
	s->receiving++;
	pthread_mutex_unlock(&s->lock);
	c->state = CALL_RECV;
	nng_ctx_recv(c->ctx, c->aio);
}

static int call_new(node_server *s, node_call **out)
{
	node_call *c = calloc(1, sizeof *c);
	if (c == NULL)
		return NNG_ENOMEM;
	c->srv = s;
	pthread_mutex_init(&c->lock, NULL);
	int rv = nng_aio_alloc(&c->aio, call_cb, c);
	if (rv == 0)
		rv = nng_ctx_open(&c->ctx, s->sock);
	if (rv != 0) {
		if (c->aio)
			nng_aio_free(c->aio);
		pthread_mutex_destroy(&c->lock);
		free(c);
		return rv;
	}
	pthread_mutex_lock(&s->lock);
	int closing = s->closing;
	if (!closing) {
		c->next = s->all;
		s->all = c;
	}
	pthread_mutex_unlock(&s->lock);
	if (closing) {
		call_free(c);
		return NNG_ECLOSED;
	}
	*out = c;
	return 0;
}

/* A call was parked: keep enough receivers so new requests are served. */
static void server_top_up(node_server *s)
{
	pthread_mutex_lock(&s->lock);
	int need = !s->closing && s->receiving < s->cfg.receivers && s->nparked < s->cfg.max_parked;
	pthread_mutex_unlock(&s->lock);
	node_call *c;
	if (need && call_new(s, &c) == 0)
		call_recv(c);
	else if (need)
		node_warn("%s: cannot add a receiver; parked calls: %d", s->url, s->nparked);
}

static void call_send(node_call *c, nng_msg *m)
{
	c->state = CALL_SEND;
	nng_aio_set_msg(c->aio, m);
	nng_ctx_send(c->ctx, c->aio);
}

static nng_msg *call_encode(node_call *c, cJSON *reply)
{
	node_err err = {0};
	nng_msg *m = NULL;
	node_wire *w = c->srv->cfg.wire;
	if (reply == NULL || node_msg_encode(w, reply, &m, &err) != 0) {
		cJSON *e = reply == NULL ? node_reply_error(NODE_ERR_INTERNAL, "out of memory building the reply")
		                         : node_reply_from_err(&err);
		if (e == NULL || node_msg_encode(w, e, &m, &err) != 0)
			m = NULL;
		cJSON_Delete(e);
	}
	cJSON_Delete(reply);
	return m;
}

void node_call_reply(node_call *c, cJSON *reply)
{
	const cJSON *ok = cJSON_IsObject(reply) ? cJSON_GetObjectItemCaseSensitive(reply, "ok") : NULL;
	if (reply == NULL || cJSON_IsFalse(ok))
		atomic_fetch_add(&c->srv->errors, 1);
	nng_msg *m = call_encode(c, reply);
	pthread_mutex_lock(&c->lock);
	if (c->answered) {
		pthread_mutex_unlock(&c->lock);
		node_error("%s: a handler answered the same request twice; second answer dropped", c->srv->url);
		if (m)
			nng_msg_free(m);
		return;
	}
	c->answered = 1;
	if (c->in_handler) {
		c->pending = m;
		pthread_mutex_unlock(&c->lock);
		return;
	}
	pthread_mutex_unlock(&c->lock);
	if (m == NULL) {
		/* Nothing can be sent: drop the request; the client times out. */
		call_recv(c);
		return;
	}
	call_send(c, m);
}

void node_call_error(node_call *c, const char *code, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	node_call_reply(c, node_reply_error(code, "%s", text));
}

uint32_t node_call_pipe(const node_call *c)
{
	return c->pipe;
}

static cJSON *server_identity(node_server *s)
{
	cJSON *r = node_reply_ok();
	cJSON_AddStringToObject(r, "role", s->cfg.role ? s->cfg.role : "");
	cJSON_AddStringToObject(r, "node", s->cfg.node ? s->cfg.node : "");
	cJSON_AddStringToObject(r, "version", NODE_VERSION);
	cJSON_AddNumberToObject(r, "protocol", NODE_PROTOCOL_VERSION);
	cJSON_AddNumberToObject(r, "time_ms", (double)node_clock_wall_ms());
	return r;
}

static void op_ping(node_call *c, const cJSON *req, void *arg)
{
	(void)req;
	node_call_reply(c, server_identity(arg));
}

static void op_info(node_call *c, const cJSON *req, void *arg)
{
	(void)req;
	node_server *s = arg;
	cJSON *r = server_identity(s);
	cJSON_AddStringToObject(r, "url", s->url);
	cJSON *ops = cJSON_AddArrayToObject(r, "ops");
	cJSON_AddItemToArray(ops, cJSON_CreateString("ping"));
	cJSON_AddItemToArray(ops, cJSON_CreateString("info"));
	for (const node_op *op = s->cfg.ops; op && op->name; op++)
		cJSON_AddItemToArray(ops, cJSON_CreateString(op->name));
	node_server_stats st;
	node_server_stats_get(s, &st);
	cJSON *o = cJSON_AddObjectToObject(r, "stats");
	cJSON_AddNumberToObject(o, "requests", (double)st.requests);
	cJSON_AddNumberToObject(o, "errors", (double)st.errors);
	cJSON_AddNumberToObject(o, "parked", (double)st.parked);
	cJSON_AddNumberToObject(o, "refused", (double)st.refused);
	cJSON_AddNumberToObject(o, "refused_limits", (double)atomic_load(&s->cfg.wire->refused_limits));
	cJSON_AddNumberToObject(o, "refused_malformed", (double)atomic_load(&s->cfg.wire->refused_malformed));
	if (s->cfg.wire->auth) {
		node_auth_stats as;
		node_auth_stats_get(s->cfg.wire->auth, &as);
		cJSON *a = cJSON_AddObjectToObject(o, "auth_refused");
		cJSON_AddNumberToObject(a, "unsigned", (double)as.unsigned_refused);
		cJSON_AddNumberToObject(a, "bad_signature", (double)as.bad_mac);
		cJSON_AddNumberToObject(a, "stale", (double)as.stale);
		cJSON_AddNumberToObject(a, "replayed", (double)as.replayed);
	}
	node_call_reply(c, r);
}

static void server_dispatch(node_call *c, const cJSON *req)
{
	node_server *s = c->srv;
	const cJSON *op = cJSON_IsObject(req) ? cJSON_GetObjectItemCaseSensitive(req, "op") : NULL;
	if (s->cfg.raw && (op == NULL || cJSON_GetObjectItemCaseSensitive(req, "jsonrpc") != NULL)) {
		s->cfg.raw(c, req, NULL, s->cfg.arg);
		return;
	}
	if (!cJSON_IsString(op)) {
		node_call_error(c, NODE_ERR_BAD_REQUEST, "request has no \"op\" string");
		return;
	}
	for (const node_op *o = s->cfg.ops; o && o->name; o++) {
		if (strcmp(o->name, op->valuestring) == 0) {
			o->fn(c, req, s->cfg.arg);
			return;
		}
	}
	if (strcmp(op->valuestring, "ping") == 0)
		op_ping(c, req, s);
	else if (strcmp(op->valuestring, "info") == 0)
		op_info(c, req, s);
	else
		node_call_error(c, NODE_ERR_UNKNOWN_OP, "unknown op \"%.64s\" for %s (try \"info\" for the list)", op->valuestring,
		    s->cfg.role ? s->cfg.role : "this server");
}

static void call_handle(node_call *c, nng_msg *m)
{
	node_server *s = c->srv;
	node_err err = {0};
	cJSON *req = NULL;
	c->pipe = nng_pipe_id(nng_msg_get_pipe(m));
	int rc = s->cfg.raw ? node_msg_decode_value(s->cfg.wire, nng_msg_body(m), nng_msg_len(m), 1, &req, &err)
	                    : node_msg_decode(s->cfg.wire, nng_msg_body(m), nng_msg_len(m), 1, &req, &err);
	nng_msg_free(m);
	atomic_fetch_add(&s->requests, 1);
	pthread_mutex_lock(&c->lock);
	c->state = CALL_BUSY;
	c->in_handler = 1;
	c->answered = 0;
	pthread_mutex_unlock(&c->lock);
	if (rc != 0) {
		atomic_fetch_add(&s->refused, 1);
		node_debug("%s: refused a message: %s", s->url, err.msg);
		if (s->cfg.raw && err.rc != NODE_EAUTH)
			s->cfg.raw(c, NULL, &err, s->cfg.arg);
		else
			node_call_reply(c, node_reply_from_err(&err));
	} else {
		server_dispatch(c, req);
	}
	cJSON_Delete(req);
	pthread_mutex_lock(&c->lock);
	c->in_handler = 0;
	nng_msg *reply = c->pending;
	c->pending = NULL;
	int answered = c->answered;
	pthread_mutex_unlock(&c->lock);
	if (reply) {
		call_send(c, reply);
		return;
	}
	if (answered) { /* answered but unencodable: drop, keep receiving */
		call_recv(c);
		return;
	}
	pthread_mutex_lock(&s->lock);
	c->parked = 1;
	s->nparked++;
	pthread_mutex_unlock(&s->lock);
	server_top_up(s);
}

static void call_cb(void *arg)
{
	node_call *c = arg;
	node_server *s = c->srv;
	int rv = nng_aio_result(c->aio);
	if (c->state == CALL_RECV) {
		pthread_mutex_lock(&s->lock);
		s->receiving--;
		pthread_mutex_unlock(&s->lock);
		if (rv == NNG_ECLOSED)
			return;
		if (rv != 0) {
			call_recv(c);
			return;
		}
		call_handle(c, nng_aio_get_msg(c->aio));
		return;
	}
	if (rv != 0) {
		nng_msg_free(nng_aio_get_msg(c->aio));
		nng_aio_set_msg(c->aio, NULL);
	}
	if (rv == NNG_ECLOSED)
		return;
	pthread_mutex_lock(&s->lock);
	if (c->parked) {
		c->parked = 0;
		s->nparked--;
	}
	pthread_mutex_unlock(&s->lock);
	call_recv(c);
}

static void server_pipe_gone(nng_pipe p, nng_pipe_ev ev, void *arg)
{
	node_server *s = arg;
	(void)ev;
	if (s->cfg.on_disconnect)
		s->cfg.on_disconnect(nng_pipe_id(p), s->cfg.arg);
}

static int server_open_socket(node_server *s, node_err *err)
{
	int rv = nng_rep0_open(&s->sock);
	if (rv != 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot open a reply socket: %s", nng_strerror(rv));
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, node_wire_recv_max(s->cfg.wire));
	if (s->cfg.on_disconnect)
		nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, server_pipe_gone, s);
	return node_listen_keep(s->sock, s->cfg.url, s->cfg.wire, s->url, sizeof s->url, &s->listener, err);
}

int node_server_start(node_server **out, const node_server_cfg *cfg, node_err *err)
{
	node_server *s = calloc(1, sizeof *s);
	if (s == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	s->cfg = *cfg;
	if (s->cfg.receivers <= 0)
		s->cfg.receivers = 64;
	if (s->cfg.max_parked <= 0)
		s->cfg.max_parked = 100000;
	pthread_mutex_init(&s->lock, NULL);
	int rc = server_open_socket(s, err);
	if (rc != 0) {
		nng_close(s->sock);
		pthread_mutex_destroy(&s->lock);
		free(s);
		return rc;
	}
	for (int i = 0; i < s->cfg.receivers; i++) {
		node_call *c;
		int rv = call_new(s, &c);
		if (rv != 0) {
			node_server_stop(s);
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "cannot start receivers: %s", nng_strerror(rv));
		}
		call_recv(c);
	}
	*out = s;
	return 0;
}

const char *node_server_url(const node_server *s)
{
	return s->url;
}

typedef struct server_closer {
	nng_socket sock;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done, abandoned;
} server_closer;

static void closer_free(server_closer *k)
{
	pthread_cond_destroy(&k->cond);
	pthread_mutex_destroy(&k->lock);
	free(k);
}

static void *server_closer_thread(void *arg)
{
	server_closer *k = arg;
	nng_close(k->sock);
	pthread_mutex_lock(&k->lock);
	k->done = 1;
	int abandoned = k->abandoned;
	pthread_cond_signal(&k->cond);
	pthread_mutex_unlock(&k->lock);
	if (abandoned)
		closer_free(k);
	return NULL;
}

/* nng_close, given SERVER_CLOSE_MS: nng 1.5.2 sometimes never returns from
 * it when peers were connecting and sending at the moment of the close
 * (a reaper waiting for a pipe that never finishes). A stop must not hang
 * for that: past the limit the socket is left to the process exit. */
#define SERVER_CLOSE_MS 1500
static int server_close_socket(node_server *s)
{
	server_closer *k = calloc(1, sizeof *k);
	pthread_t t;
	if (k == NULL) {
		nng_close(s->sock);
		return 0;
	}
	k->sock = s->sock;
	pthread_mutex_init(&k->lock, NULL);
	pthread_cond_init(&k->cond, NULL);
	if (pthread_create(&t, NULL, server_closer_thread, k) != 0) {
		closer_free(k);
		nng_close(s->sock);
		return 0;
	}
	pthread_detach(t);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	long long ns = ts.tv_nsec + (long long)(SERVER_CLOSE_MS % 1000) * 1000000LL;
	ts.tv_sec += SERVER_CLOSE_MS / 1000 + ns / 1000000000LL;
	ts.tv_nsec = (long)(ns % 1000000000LL);
	pthread_mutex_lock(&k->lock);
	while (!k->done && pthread_cond_timedwait(&k->cond, &k->lock, &ts) == 0)
		;
	int done = k->done;
	k->abandoned = !done;
	pthread_mutex_unlock(&k->lock);
	if (done) {
		closer_free(k);
		return 0;
	}
	node_warn("%s: nng did not close the socket in %d ms (an nng 1.5.2 hang when peers connect during the close); "
	          "leaving it to the process exit", s->url, SERVER_CLOSE_MS);
	return -1;
}

void node_server_stop(node_server *s)
{
	if (s == NULL)
		return;
	pthread_mutex_lock(&s->lock);
	s->closing = 1;
	pthread_mutex_unlock(&s->lock);
	/* No new connections, then no receive or send in flight, then the
	 * socket: nng 1.5.2 can hang in nng_close while peers keep connecting
	 * and sending to a socket with operations pending. A stopped aio
	 * refuses new operations, so a callback cannot re-arm it. */
	if (nng_listener_id(s->listener) > 0)
		nng_listener_close(s->listener);
	/* A close left to the process exit must not call back into a role
	 * that is gone. */
	if (s->cfg.on_disconnect)
		nng_pipe_notify(s->sock, NNG_PIPE_EV_REM_POST, NULL, NULL);
	for (node_call *c = s->all; c; c = c->next)
		nng_aio_stop(c->aio);
	if (server_close_socket(s) != 0)
		return; /* nng still holds the socket: its calls stay allocated until the process exits */
	node_call *c = s->all;
	while (c) {
		node_call *next = c->next;
		call_free(c);
		c = next;
	}
	pthread_mutex_destroy(&s->lock);
	free(s);
}

void node_server_stats_get(node_server *s, node_server_stats *out)
{
	out->requests = atomic_load(&s->requests);
	out->errors = atomic_load(&s->errors);
	out->refused = atomic_load(&s->refused);
	pthread_mutex_lock(&s->lock);
	out->parked = (uint64_t)s->nparked;
	pthread_mutex_unlock(&s->lock);
}
