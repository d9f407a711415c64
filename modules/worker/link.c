/* The worker's two clients to the broker (one for the parked fetch, one for
 * everything else) and what every call shares: sending while another thread
 * may close the client, backoff, and logging each kind of failure once. */
#include <stdio.h>
#include <string.h>

#include "core/log.h"
#include "worker/worker.h"

void worker_link_init(worker_link *l)
{
	pthread_rwlock_init(&l->gate, NULL);
}

void worker_link_destroy(worker_link *l)
{
	pthread_rwlock_destroy(&l->gate);
}

int worker_link_open(worker *w, worker_link *l, node_err *err)
{
	return node_client_open(&l->cl, w->broker_url, "broker", &w->ctx->wire, err);
}

void worker_link_close(worker *w, worker_link *l)
{
	if (l->cl == NULL)
		return;
	pthread_rwlock_wrlock(&l->gate);
	pthread_mutex_lock(&w->lock); /* worker_report_take_locked reads ctl.closed */
	l->closed = 1;
	pthread_mutex_unlock(&w->lock);
	pthread_rwlock_unlock(&l->gate);
	node_client_close(l->cl); /* waits for the callbacks */
	l->cl = NULL;
}

cJSON *worker_link_req(const worker *w, const char *op)
{
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", op);
	cJSON_AddStringToObject(req, "worker", w->name);
	return req;
}

int worker_link_send(worker *w, worker_link *l, const cJSON *req, int timeout_ms, node_reply_fn cb, node_err *err)
{
	pthread_rwlock_rdlock(&l->gate);
	int rc = l->closed ? node_err_set(err, NODE_ECLOSED, NODE_ERR_SHUTDOWN, "stopping")
	                   : node_client_call_async(l->cl, req, timeout_ms, cb, w, err);
	pthread_rwlock_unlock(&l->gate);
	return rc;
}

/* Only the role's thread calls, and it is the one that closes ctl: no gate.
 * While the broker is down, waiting the full timeout would only delay the
 * stop. */
int worker_link_call(worker *w, cJSON *req, node_err *err)
{
	int timeout = w->broker_down ? 1000 : w->timeout_ms;
	cJSON *reply = NULL;
	int rc = node_client_call(w->ctl.cl, req, timeout, &reply, err);
	cJSON_Delete(reply);
	cJSON_Delete(req);
	return rc;
}

int worker_link_backoff(int *backoff)
{
	int cur = *backoff < WORKER_BACKOFF_MIN_MS ? WORKER_BACKOFF_MIN_MS : *backoff;
	*backoff = cur * 2 > WORKER_BACKOFF_MAX_MS ? WORKER_BACKOFF_MAX_MS : cur * 2;
	return cur;
}

/* Failures after which the broker may come back as a new process that does
 * not know this worker: it was unreachable, or said it was shutting down. */
static int worker_link_down(const node_err *err)
{
	return err->rc == NODE_ETIMEDOUT || err->rc == NODE_ECLOSED || err->rc == NODE_EIO ||
	    (err->rc == NODE_EREMOTE && strcmp(err->code, NODE_ERR_SHUTDOWN) == 0);
}

/* Remember kind; 1 when it was logged before. */
static int worker_link_seen_locked(worker *w, const char *kind)
{
	for (int i = 0; i < w->nlogged; i++)
		if (strcmp(w->logged[i], kind) == 0)
			return 1;
	if (w->nlogged < 8)
		snprintf(w->logged[w->nlogged++], sizeof w->logged[0], "%s", kind);
	return 0;
}

void worker_link_failed(worker *w, const char *op, const node_err *err)
{
	char kind[48];
	int down = worker_link_down(err);
	snprintf(kind, sizeof kind, "%s/%s", down ? "down" : op, err->code[0] ? err->code : "error");
	pthread_mutex_lock(&w->log_lock);
	int seen = worker_link_seen_locked(w, kind);
	if (down)
		w->broker_down = 1;
	pthread_mutex_unlock(&w->log_lock);
	if (!seen)
		node_warn("%s: %s (retrying; logged once)", op, err->msg);
	else
		node_debug("%s: %s", op, err->msg);
}

/* A broker restarted from its journal does not know this worker. */
void worker_link_answered(worker *w)
{
	pthread_mutex_lock(&w->log_lock);
	int was_down = w->broker_down, had = w->nlogged;
	w->broker_down = 0;
	w->nlogged = 0;
	pthread_mutex_unlock(&w->log_lock);
	if (!had || !was_down)
		return;
	node_info("broker %s answers again", w->broker_url);
	pthread_mutex_lock(&w->lock);
	w->need_register = 1;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

int worker_link_unknown(const node_err *err)
{
	return err->rc == NODE_EREMOTE && strcmp(err->code, NODE_ERR_NOT_FOUND) == 0;
}
