/* libnodeclient connections: opening from a URL or a cluster file, calls
 * with a time limit that a close can always interrupt, errors, generated
 * task ids, reference counts, and the one thread per connection that runs
 * completion callbacks and retries gets after a failure. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "client/client_int.h"
#include "client/nodecsp.h"
#include "core/config.h"
#include "core/rand.h"

_Static_assert((int)NCL_EINVAL == (int)NODE_EINVAL && (int)NCL_ETIMEDOUT == (int)NODE_ETIMEDOUT &&
	(int)NCL_EREMOTE == (int)NODE_EREMOTE && (int)NCL_ECLOSED == (int)NODE_ECLOSED &&
	(int)NCL_ENOTFOUND == (int)NODE_ENOTFOUND,
    "NCL_E* and NODE_E* codes agree");

#define NCL_CALL_MS_DEFAULT 5000

/* ---- time ---- */

int64_t ncl_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : node_clock_mono_ms() + timeout_ms;
}

void ncl_cond_wait_until(pthread_cond_t *cond, pthread_mutex_t *lock, int64_t deadline)
{
	if (deadline < 0) {
		pthread_cond_wait(cond, lock);
		return;
	}
	struct timespec ts = {(time_t)(deadline / 1000), (long)(deadline % 1000) * 1000000L};
	pthread_cond_timedwait(cond, lock, &ts);
}

static void ncl_cond_init(pthread_cond_t *cond)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &a);
	pthread_condattr_destroy(&a);
}

void ncl_fmt_ms(int64_t ms, char *out, size_t n)
{
	if (ms < 1000)
		snprintf(out, n, "%lld ms", (long long)ms);
	else
		snprintf(out, n, "%g s", (double)ms / 1000.0);
}

/* ---- errors ---- */

const char *ncl_strerror(int code)
{
	static const char *const names[] = {
		[NCL_OK] = "no error",
		[NCL_EINVAL] = "invalid argument",
		[NCL_ENOMEM] = "out of memory",
		[NCL_EIO] = "input/output error",
		[NCL_ETIMEDOUT] = "timed out",
		[NCL_EAUTH] = "authentication failed",
		[NCL_ELIMIT] = "limit exceeded",
		[NCL_EREMOTE] = "the broker refused",
		[NCL_ECLOSED] = "connection closed",
		[NCL_ENOTFOUND] = "not found",
		[NCL_ETASK] = "the task failed",
		[NCL_ECANCEL] = "cancelled by the caller",
		[NCL_ESTARTED] = "too late: the task has started",
		[NCL_ERPC] = "the remote method failed",
		[NCL_EPOISONED] = "the channel is poisoned",
		[NCL_ERETIRED] = "the channel is retired",
		[NCL_ECONFLICT] = "conflict: the channel end exists or the channel differs",
	};
	if (code < 0 || (size_t)code >= sizeof names / sizeof names[0] || names[code] == NULL)
		return "unknown error";
	return names[code];
}

int ncl_set(ncl_err *err, int code, const char *fmt, ...)
{
	if (err != NULL) {
		err->code = code;
		err->remote[0] = '\0';
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(err->msg, sizeof err->msg, fmt, ap);
		va_end(ap);
	}
	return code;
}

void ncl_append(ncl_err *err, const char *fmt, ...)
{
	if (err == NULL)
		return;
	size_t len = strlen(err->msg);
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg + len, sizeof err->msg - len, fmt, ap);
	va_end(ap);
}

void ncl_prefix(ncl_err *err, const char *fmt, ...)
{
	if (err == NULL)
		return;
	char head[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(head, sizeof head, fmt, ap);
	va_end(ap);
	size_t hl = strlen(head), ml = strlen(err->msg);
	if (hl + ml >= sizeof err->msg)
		ml = sizeof err->msg - 1 - hl;
	memmove(err->msg + hl, err->msg, ml);
	memcpy(err->msg, head, hl);
	err->msg[hl + ml] = '\0';
}

int ncl_from_node(ncl_err *err, const node_err *e)
{
	int code = e->rc ? e->rc : NCL_EIO;
	if (code == NCL_EREMOTE && strcmp(e->code, NODE_ERR_NOT_FOUND) == 0)
		code = NCL_ENOTFOUND;
	if (err != NULL) {
		err->code = code;
		snprintf(err->remote, sizeof err->remote, "%s", e->rc == NODE_EREMOTE ? e->code : "");
		snprintf(err->msg, sizeof err->msg, "%s", e->msg[0] ? e->msg : ncl_strerror(code));
	}
	return code;
}

int ncl_check_json(const char *text, int type, const char *what, ncl_err *err)
{
	if (ncl_json_valid(text, type == cJSON_Array ? '[' : '{'))
		return 0; /* the fast way; cJSON says where it is wrong */
	const char *end = NULL;
	cJSON *v = cJSON_ParseWithOpts(text, &end, 1);
	if (v == NULL) {
		size_t at = end && end >= text ? (size_t)(end - text) : 0;
		return ncl_set(err, NCL_EINVAL, "%s is not valid JSON (at byte %zu): %.60s", what, at, text);
	}
	int ok = (v->type & 0xff) == type;
	cJSON_Delete(v);
	if (!ok)
		return ncl_set(err, NCL_EINVAL, "%s must be a JSON %s, got %.60s", what, type == cJSON_Array ? "array" : "object",
		    text);
	/* cJSON is lenient where the strict check is not */
	return ncl_set(err, NCL_EINVAL,
	    "%s is not strict JSON (a leading zero, a control character or lone surrogate in a string, or nesting "
	    "deeper than 128): %.60s", what, text);
}

/* ---- references ---- */

static void conn_destroy(ncl_conn *c)
{
	ncl_stats_free_locked(c);
	node_wire_fini(&c->wire);
	pthread_cond_destroy(&c->changed);
	pthread_cond_destroy(&c->wake);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

void ncl_conn_ref(ncl_conn *c)
{
	pthread_mutex_lock(&c->lock);
	c->refs++;
	pthread_mutex_unlock(&c->lock);
}

void ncl_conn_unref(ncl_conn *c)
{
	pthread_mutex_lock(&c->lock);
	int last = --c->refs == 0;
	pthread_mutex_unlock(&c->lock);
	if (last)
		conn_destroy(c);
}

void ncl_owner_init(ncl_owner *o, const ncl_owner_ops *ops, ncl_conn *c)
{
	o->ops = ops;
	o->conn = c;
	o->refs = 1;
	o->abandoned = 0;
	o->gone = NULL;
	pthread_mutex_lock(&c->lock);
	c->refs++;
	pthread_mutex_unlock(&c->lock);
}

void ncl_owner_unref_locked(ncl_owner *o, ncl_owner **gone)
{
	if (--o->refs == 0) {
		o->gone = *gone;
		*gone = o;
	}
}

void ncl_owners_destroy(ncl_owner *gone)
{
	while (gone) {
		ncl_owner *next = gone->gone;
		ncl_conn *c = gone->conn;
		gone->ops->destroy(gone);
		ncl_conn_unref(c);
		gone = next;
	}
}

void ncl_new_id(ncl_conn *c, char *buf, size_t n)
{
	pthread_mutex_lock(&c->lock);
	unsigned long long seq = (unsigned long long)c->seq++;
	pthread_mutex_unlock(&c->lock);
	snprintf(buf, n, "%s-%llu", c->prefix, seq);
}

/* ---- calls ---- */

int ncl_call_async(ncl_conn *c, const cJSON *req, int timeout_ms, node_reply_fn cb, void *arg, node_err *err)
{
	pthread_mutex_lock(&c->lock);
	if (c->closing) {
		pthread_mutex_unlock(&c->lock);
		return node_err_set(err, NODE_ECLOSED, NODE_ERR_SHUTDOWN, "the connection to broker %s is closed", c->url);
	}
	c->calls++; /* ncl_close waits for this before it frees the client */
	pthread_mutex_unlock(&c->lock);
	int rc = node_client_call_async(c->cl, req, timeout_ms < 0 ? NCL_FOREVER_MS : timeout_ms, cb, arg, err);
	pthread_mutex_lock(&c->lock);
	if (--c->calls == 0 && c->closing)
		pthread_cond_broadcast(&c->changed);
	pthread_mutex_unlock(&c->lock);
	return rc;
}

typedef struct call_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done, rc;
	cJSON *reply;
	node_err err;
} call_wait;

static void call_wait_cb(int rc, cJSON *reply, const node_err *err, void *arg)
{
	call_wait *w = arg;
	pthread_mutex_lock(&w->lock);
	w->rc = rc;
	w->reply = reply;
	if (rc != 0 && err != NULL)
		w->err = *err;
	w->done = 1;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Asynchronous underneath, so that closing the connection ends the wait at
 * once instead of after the time limit. */
int ncl_call(ncl_conn *c, const cJSON *req, int timeout_ms, cJSON **reply, ncl_err *err)
{
	*reply = NULL;
	if (timeout_ms == 0)
		timeout_ms = c->call_ms;
	call_wait w;
	memset(&w, 0, sizeof w);
	pthread_mutex_init(&w.lock, NULL);
	pthread_cond_init(&w.cond, NULL);
	int rc = ncl_call_async(c, req, timeout_ms, call_wait_cb, &w, &w.err);
	if (rc == 0) {
		pthread_mutex_lock(&w.lock);
		while (!w.done)
			pthread_cond_wait(&w.cond, &w.lock); /* the client always answers: reply, time-out or close */
		pthread_mutex_unlock(&w.lock);
		rc = w.rc;
	}
	pthread_cond_destroy(&w.cond);
	pthread_mutex_destroy(&w.lock);
	if (rc != 0) {
		cJSON_Delete(w.reply);
		return ncl_from_node(err, &w.err);
	}
	*reply = w.reply;
	return 0;
}

int ncl_ping(ncl_conn *c, int timeout_ms, ncl_err *err)
{
	if (c == NULL)
		return ncl_set(err, NCL_EINVAL, "ncl_ping: no connection");
	cJSON *req = cJSON_CreateObject(), *reply = NULL;
	if (req == NULL || cJSON_AddStringToObject(req, "op", "ping") == NULL) {
		cJSON_Delete(req);
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	}
	int rc = ncl_call(c, req, timeout_ms, &reply, err);
	cJSON_Delete(req);
	cJSON_Delete(reply);
	return rc;
}

/* ---- the callback thread ---- */

void ncl_callback_queue_locked(ncl_conn *c, ncl_future *f)
{
	if (f->cb == NULL || f->cb_queued)
		return;
	f->cb_queued = 1;
	f->owner.refs++; /* until the callback has run */
	f->cb_next = NULL;
	if (c->cb_tail)
		c->cb_tail->cb_next = f;
	else
		c->cb_head = f;
	c->cb_tail = f;
	pthread_cond_signal(&c->wake);
}

/* Runs callbacks in the order their futures finished; sends the gets that
 * wait for a retry time; ends when the connection closes and no callback is
 * left. Holds a reference on the connection. */
static void *conn_thread(void *arg)
{
	ncl_conn *c = arg;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		if (c->cb_head) {
			ncl_future *f = c->cb_head;
			c->cb_head = f->cb_next;
			if (c->cb_head == NULL)
				c->cb_tail = NULL;
			pthread_mutex_unlock(&c->lock);
			f->cb(f, f->cb_arg);
			pthread_mutex_lock(&c->lock);
			ncl_owner *gone = NULL;
			ncl_owner_unref_locked(&f->owner, &gone);
			if (gone) {
				pthread_mutex_unlock(&c->lock);
				ncl_owners_destroy(gone);
				pthread_mutex_lock(&c->lock);
			}
			continue;
		}
		if (c->closing && c->cl == NULL)
			break;
		if (c->retry_at > 0 && node_clock_mono_ms() >= c->retry_at) {
			c->retry_at = 0;
			ncl_track_pump(c);
			continue;
		}
		ncl_cond_wait_until(&c->wake, &c->lock, c->retry_at > 0 ? c->retry_at : -1);
	}
	int last = --c->refs == 0;
	pthread_mutex_unlock(&c->lock);
	if (last)
		conn_destroy(c);
	return NULL;
}

/* ---- open and close ---- */

int ncl_open(ncl_conn **out, const char *url, const char *cluster_file, ncl_err *err)
{
	if (out == NULL)
		return ncl_set(err, NCL_EINVAL, "ncl_open: out is NULL");
	*out = NULL;
	node_conf conf;
	node_err e = {0};
	if (node_conf_load(&conf, cluster_file, NULL, &e) != 0) {
		node_conf_free(&conf);
		return ncl_from_node(err, &e);
	}
	int rc = ncl_open_conf(out, url, &conf, err);
	node_conf_free(&conf);
	return rc;
}

int ncl_open_conf(ncl_conn **out, const char *url, const node_conf *conf, ncl_err *err)
{
	return ncl_open_peer(out, url, conf, "broker", err);
}

int ncl_open_peer(ncl_conn **out, const char *url, const node_conf *conf, const char *peer, ncl_err *err)
{
	*out = NULL;
	node_err e = {0};
	ncl_conn *c = calloc(1, sizeof *c);
	if (c == NULL)
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	node_wire_init(&c->wire);
	pthread_mutex_init(&c->lock, NULL);
	ncl_cond_init(&c->changed);
	ncl_cond_init(&c->wake);
	c->refs = 1;
	c->get_max = NCL_GET_MAX;
	c->retry_ms = NCL_RETRY_MIN_MS;
	c->opened_ms = node_clock_mono_ms();
	int rc = node_conf_wire(conf, &c->wire, &e);
	if (rc == 0 && (url == NULL || *url == '\0'))
		rc = node_conf_role_url(conf, "broker", "listen", &url, &e);
	if (rc == 0) {
		snprintf(c->url, sizeof c->url, "%s", url);
		c->call_ms = (int)node_conf_int(conf, "defaults.timeout_ms", NCL_CALL_MS_DEFAULT);
		if (c->call_ms <= 0)
			c->call_ms = NCL_CALL_MS_DEFAULT;
	}
	uint64_t r = 0;
	if (rc == 0)
		rc = node_rand_bytes(&r, sizeof r, &e);
	if (rc == 0)
		rc = node_client_open(&c->cl, c->url, peer, &c->wire, &e);
	if (rc != 0) {
		conn_destroy(c);
		return ncl_from_node(err, &e);
	}
	snprintf(c->prefix, sizeof c->prefix, "ncl-%016llx", (unsigned long long)r);
	c->refs++; /* the thread's */
	if (pthread_create(&c->thread, NULL, conn_thread, c) != 0) {
		node_client_close(c->cl);
		conn_destroy(c);
		return ncl_set(err, NCL_ENOMEM, "cannot start the connection's thread: %s", strerror(errno));
	}
	c->has_thread = 1;
	*out = c;
	return 0;
}

const char *ncl_url(const ncl_conn *c)
{
	return c ? c->url : "";
}

void ncl_close(ncl_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	c->closing = 1;
	while (c->calls > 0) /* a call being handed to the client: it returns at once */
		pthread_cond_wait(&c->changed, &c->lock);
	pthread_mutex_unlock(&c->lock);
	/* Fails every call in flight: gets end their watches as closed, maps
	 * and waits wake up. */
	node_client_close(c->cl);
	pthread_mutex_lock(&c->lock);
	ncl_owner *gone = NULL;
	ncl_track_close_locked(c, &gone);
	c->cl = NULL;
	pthread_cond_broadcast(&c->changed);
	pthread_cond_signal(&c->wake);
	pthread_mutex_unlock(&c->lock);
	ncl_owners_destroy(gone);
	if (pthread_equal(pthread_self(), c->thread))
		pthread_detach(c->thread); /* closed from a callback: the thread ends by itself */
	else
		pthread_join(c->thread, NULL);
	ncl_conn_unref(c);
}
