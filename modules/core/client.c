/* Request/reply clients: one REQ socket per client, one context per call in
 * flight (so calls from many threads or many at once never queue behind each
 * other), contexts and aios kept in a free list because a call must cost
 * little more than the bare nng round trip. */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "transport.h"

typedef struct client_req {
	node_client *cl;
	nng_ctx ctx;
	nng_aio *aio;
	int sending;        /* async: send phase, then receive */
	int raw;            /* another protocol: any JSON value, no "ok" check */
	int timeout_ms;
	int64_t deadline_ms;
	node_reply_fn cb;
	void *cb_arg;
	struct client_req *next; /* free list */
	struct client_req *fl_prev, *fl_next; /* async calls in flight */
} client_req;

struct node_client {
	nng_socket sock;
	node_wire *wire;
	char url[512];
	char peer[64];
	pthread_mutex_t lock;
	pthread_cond_t idle;     /* signalled when outstanding drops to 0 */
	int outstanding;         /* async calls whose callback has not returned */
	int closing;             /* node_client_close has begun */
	client_req *free_sync, *free_async;
	client_req *inflight;    /* async calls in flight, to cancel on close */
	nng_dialer dialer;
};

static void client_async_cb(void *arg);

int node_client_open(node_client **out, const char *url, const char *peer, node_wire *w, node_err *err)
{
	node_client *c = calloc(1, sizeof *c);
	if (c == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	snprintf(c->url, sizeof c->url, "%s", url);
	snprintf(c->peer, sizeof c->peer, "%s", peer && *peer ? peer : "server");
	c->wire = w;
	pthread_mutex_init(&c->lock, NULL);
	pthread_cond_init(&c->idle, NULL);
	int rv = nng_req0_open(&c->sock);
	if (rv != 0) {
		pthread_mutex_destroy(&c->lock);
		free(c);
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot open a request socket: %s", nng_strerror(rv));
	}
	/* Replies are matched by REQ; a request is re-sent by nng only when its
	 * connection breaks, never on a timer (a parked wait can be long). */
	nng_socket_set_ms(c->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_size(c->sock, NNG_OPT_RECVMAXSZ, node_wire_recv_max(w));
	int rc = node_dial_keep(c->sock, url, w, &c->dialer, err);
	if (rc != 0) {
		nng_close(c->sock);
		pthread_mutex_destroy(&c->lock);
		free(c);
		return rc;
	}
	*out = c;
	return 0;
}

static void req_free_list(client_req *r)
{
	while (r) {
		client_req *next = r->next;
		nng_aio_free(r->aio);
		nng_ctx_close(r->ctx);
		free(r);
		r = next;
	}
}

void node_client_close(node_client *c)
{
	if (c == NULL)
		return;
	/* End every async call and wait for its callback before the socket
	 * closes, then close the dialer, then the socket: nng 1.5.2 can panic
	 * when a socket closes under contexts with operations pending, or while
	 * its dialer is between reconnect attempts (a broker that is down). */
	pthread_mutex_lock(&c->lock);
	c->closing = 1;
	for (client_req *r = c->inflight; r; r = r->fl_next)
		nng_aio_cancel(r->aio);
	while (c->outstanding > 0)
		pthread_cond_wait(&c->idle, &c->lock);
	pthread_mutex_unlock(&c->lock);
	nng_dialer_close(c->dialer);
	nng_close(c->sock);
	req_free_list(c->free_sync);
	req_free_list(c->free_async);
	pthread_cond_destroy(&c->idle);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

const char *node_client_url(const node_client *c)
{
	return c->url;
}

static int req_get(node_client *c, int async, client_req **out, node_err *err)
{
	pthread_mutex_lock(&c->lock);
	client_req **list = async ? &c->free_async : &c->free_sync;
	client_req *r = *list;
	if (r)
		*list = r->next;
	pthread_mutex_unlock(&c->lock);
	if (r == NULL) {
		r = calloc(1, sizeof *r);
		if (r == NULL)
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		r->cl = c;
		int rv = nng_aio_alloc(&r->aio, async ? client_async_cb : NULL, r);
		if (rv == 0 && (rv = nng_ctx_open(&r->ctx, c->sock)) != 0)
			nng_aio_free(r->aio);
		if (rv != 0) {
			free(r);
			return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot start a call to %s: %s", c->url, nng_strerror(rv));
		}
	}
	r->next = NULL;
	*out = r;
	return 0;
}

static void req_put(client_req *r, int async)
{
	node_client *c = r->cl;
	pthread_mutex_lock(&c->lock);
	client_req **list = async ? &c->free_async : &c->free_sync;
	r->next = *list;
	*list = r;
	pthread_mutex_unlock(&c->lock);
}

static int client_timeout_err(node_client *c, int timeout_ms, node_err *err)
{
	if (timeout_ms < 1000)
		return node_err_set(err, NODE_ETIMEDOUT, NODE_ERR_TIMEOUT, "%s %s did not answer in %d ms", c->peer, c->url, timeout_ms);
	return node_err_set(err, NODE_ETIMEDOUT, NODE_ERR_TIMEOUT, "%s %s did not answer in %g s", c->peer, c->url, timeout_ms / 1000.0);
}

static int client_io_err(node_client *c, int rv, int timeout_ms, node_err *err)
{
	if (rv == NNG_ETIMEDOUT)
		return client_timeout_err(c, timeout_ms, err);
	if (rv == NNG_ECLOSED || rv == NNG_ECANCELED) /* a close cancels the calls in flight */
		return node_err_set(err, NODE_ECLOSED, NODE_ERR_SHUTDOWN, "connection to %s %s was closed", c->peer, c->url);
	return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "call to %s %s failed: %s", c->peer, c->url, nng_strerror(rv));
}

/* Decode a reply and turn ok:false into NODE_EREMOTE (raw: decode only). */
static int client_finish(node_client *c, nng_msg *m, int raw, cJSON **reply, node_err *err)
{
	cJSON *r = NULL;
	int rc = raw ? node_msg_decode_value(c->wire, nng_msg_body(m), nng_msg_len(m), 0, &r, err)
	             : node_msg_decode(c->wire, nng_msg_body(m), nng_msg_len(m), 0, &r, err);
	nng_msg_free(m);
	if (rc != 0) {
		node_err_prefix(err, "reply from %s %s: ", c->peer, c->url);
		return rc;
	}
	*reply = r;
	return raw ? 0 : node_reply_check(r, err);
}

static int client_call(node_client *c, const cJSON *req, int raw, int timeout_ms, cJSON **reply, node_err *err)
{
	*reply = NULL;
	nng_msg *m;
	int rc = node_msg_encode(c->wire, req, &m, err);
	if (rc != 0)
		return rc;
	client_req *r;
	if ((rc = req_get(c, 0, &r, err)) != 0) {
		nng_msg_free(m);
		return rc;
	}
	int64_t deadline = node_clock_mono_ms() + timeout_ms;
	nng_aio_set_timeout(r->aio, timeout_ms);
	nng_aio_set_msg(r->aio, m);
	nng_ctx_send(r->ctx, r->aio);
	nng_aio_wait(r->aio);
	int rv = nng_aio_result(r->aio);
	if (rv != 0) {
		nng_msg_free(nng_aio_get_msg(r->aio));
	} else {
		int64_t left = deadline - node_clock_mono_ms();
		nng_aio_set_timeout(r->aio, left > 0 ? (nng_duration)left : 1);
		nng_ctx_recv(r->ctx, r->aio);
		nng_aio_wait(r->aio);
		rv = nng_aio_result(r->aio);
	}
	if (rv != 0) {
		/* A context that timed out may still get the late reply; drop it. */
		nng_ctx_close(r->ctx);
		nng_aio_free(r->aio);
		free(r);
		return client_io_err(c, rv, timeout_ms, err);
	}
	m = nng_aio_get_msg(r->aio);
	req_put(r, 0);
	rc = client_finish(c, m, raw, reply, err);
	return rc;
}

int node_client_call(node_client *c, const cJSON *req, int timeout_ms, cJSON **reply, node_err *err)
{
	return client_call(c, req, 0, timeout_ms, reply, err);
}

int node_client_call_raw(node_client *c, const cJSON *req, int timeout_ms, cJSON **reply, node_err *err)
{
	return client_call(c, req, 1, timeout_ms, reply, err);
}

static void client_async_done(client_req *r, int rc, cJSON *reply, const node_err *err)
{
	node_reply_fn cb = r->cb;
	void *arg = r->cb_arg;
	node_client *c = r->cl;
	pthread_mutex_lock(&c->lock);
	int closing = c->closing;
	if (r->fl_prev)
		r->fl_prev->fl_next = r->fl_next;
	else
		c->inflight = r->fl_next;
	if (r->fl_next)
		r->fl_next->fl_prev = r->fl_prev;
	pthread_mutex_unlock(&c->lock);
	if (!closing) {
		/* Reusable even after a time-out: a REQ context's next send abandons
		 * the old request, so a late reply to it is dropped. */
		req_put(r, 1);
	} else {
		/* The closing socket closes its contexts; closing one here as well
		 * races nng 1.5.2's socket close (a panic in nng). */
		nng_aio_reap(r->aio);
		free(r);
	}
	if (cb)
		cb(rc, reply, err, arg);
	else
		cJSON_Delete(reply);
	pthread_mutex_lock(&c->lock);
	if (--c->outstanding == 0)
		pthread_cond_broadcast(&c->idle);
	pthread_mutex_unlock(&c->lock);
}

static void client_async_cb(void *arg)
{
	client_req *r = arg;
	node_client *c = r->cl;
	node_err err = {0};
	int rv = nng_aio_result(r->aio);
	if (rv != 0) {
		if (r->sending)
			nng_msg_free(nng_aio_get_msg(r->aio));
		int rc = client_io_err(c, rv, r->timeout_ms, &err);
		client_async_done(r, rc, NULL, &err);
		return;
	}
	if (r->sending) {
		r->sending = 0;
		int64_t left = r->deadline_ms - node_clock_mono_ms();
		nng_aio_set_timeout(r->aio, left > 0 ? (nng_duration)left : 1);
		/* Under the lock, so that a close either sees this receive to
		 * cancel or this sees the close. */
		pthread_mutex_lock(&c->lock);
		int closing = c->closing;
		if (!closing)
			nng_ctx_recv(r->ctx, r->aio);
		pthread_mutex_unlock(&c->lock);
		if (closing) {
			int rc = client_io_err(c, NNG_ECLOSED, r->timeout_ms, &err);
			client_async_done(r, rc, NULL, &err);
		}
		return;
	}
	cJSON *reply = NULL;
	int rc = client_finish(c, nng_aio_get_msg(r->aio), r->raw, &reply, &err);
	client_async_done(r, rc, reply, &err);
}

static int client_call_async(node_client *c, const cJSON *req, int raw, int timeout_ms, node_reply_fn cb, void *arg, node_err *err)
{
	nng_msg *m;
	int rc = node_msg_encode(c->wire, req, &m, err);
	if (rc != 0)
		return rc;
	client_req *r;
	if ((rc = req_get(c, 1, &r, err)) != 0) {
		nng_msg_free(m);
		return rc;
	}
	r->sending = 1;
	r->raw = raw;
	r->timeout_ms = timeout_ms;
	r->deadline_ms = node_clock_mono_ms() + timeout_ms;
	r->cb = cb;
	r->cb_arg = arg;
	nng_aio_set_timeout(r->aio, timeout_ms);
	nng_aio_set_msg(r->aio, m);
	pthread_mutex_lock(&c->lock);
	if (c->closing) {
		pthread_mutex_unlock(&c->lock);
		nng_msg_free(m);
		req_put(r, 1);
		return node_err_set(err, NODE_ECLOSED, NODE_ERR_SHUTDOWN, "connection to %s %s was closed", c->peer, c->url);
	}
	c->outstanding++;
	r->fl_prev = NULL;
	r->fl_next = c->inflight;
	if (c->inflight)
		c->inflight->fl_prev = r;
	c->inflight = r;
	nng_ctx_send(r->ctx, r->aio); /* under the lock: a close cancels it or comes after */
	pthread_mutex_unlock(&c->lock);
	return 0;
}

int node_client_call_async(node_client *c, const cJSON *req, int timeout_ms, node_reply_fn cb, void *arg, node_err *err)
{
	return client_call_async(c, req, 0, timeout_ms, cb, arg, err);
}

int node_client_call_raw_async(node_client *c, const cJSON *req, int timeout_ms, node_reply_fn cb, void *arg, node_err *err)
{
	return client_call_async(c, req, 1, timeout_ms, cb, arg, err);
}
