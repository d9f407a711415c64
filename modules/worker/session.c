/* The worker's standing at the broker: it registers (again when the broker
 * has forgotten it) and sends heartbeats listing every task it holds, so the
 * broker keeps their leases. */
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "worker/tasks.h"
#include "worker/worker.h"

static void worker_register_failed(worker *w, const node_err *err)
{
	if (!w->ctl.closed)
		worker_link_failed(w, "register", err);
	pthread_mutex_lock(&w->lock);
	w->reg_inflight = 0;
	w->reg_retry_at = node_clock_mono_ms() + worker_link_backoff(&w->reg_backoff);
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

/* The broker's lease and heartbeat period, within sane bounds. */
static void worker_register_times_locked(worker *w, double lease, double hb)
{
	w->lease_ms = lease >= 100 && lease <= 86400000 ? (int)lease : 30000;
	if (!(hb >= 10 && hb <= 3600000))
		hb = w->lease_ms / 3;
	w->heartbeat_ms = (int)hb;
}

static void worker_register_cb(int rc, cJSON *reply, const node_err *err, void *arg)
{
	worker *w = arg;
	if (rc != 0) {
		cJSON_Delete(reply);
		worker_register_failed(w, err);
		return;
	}
	double lease = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(reply, "lease_ms"));
	double hb = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(reply, "heartbeat_ms"));
	cJSON_Delete(reply);
	worker_link_answered(w);
	pthread_mutex_lock(&w->lock);
	worker_register_times_locked(w, lease, hb);
	int first = !w->ever_registered;
	w->reg_inflight = 0;
	w->reg_backoff = 0;
	w->need_register = 0;
	w->registered = 1;
	w->ever_registered = 1;
	w->fetch_retry_at = 0;
	w->hb_at = 0;
	w->announce = first ? 1 : 2; /* logged by the role's thread, under its role tag */
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

static void worker_register_send(worker *w)
{
	cJSON *req = worker_link_req(w, "register"), *t = cJSON_CreateArray();
	cJSON_AddItemToObject(req, "queues", worker_queues_json(w));
	cJSON_AddNumberToObject(req, "concurrency", w->concurrency);
	for (const worker_task *k = worker_tasks; k->name; k++)
		cJSON_AddItemToArray(t, cJSON_CreateString(k->name));
	cJSON_AddItemToObject(req, "tasks", t);
	cJSON_AddStringToObject(req, "host", w->host);
	cJSON_AddNumberToObject(req, "pid", (double)getpid());
	node_err err = {0};
	int rc = worker_link_send(w, &w->ctl, req, w->timeout_ms, worker_register_cb, &err);
	cJSON_Delete(req);
	if (rc != 0)
		worker_register_failed(w, &err);
}

static void worker_heartbeat_cb(int rc, cJSON *reply, const node_err *err, void *arg)
{
	worker *w = arg;
	cJSON_Delete(reply);
	if (rc == 0)
		worker_link_answered(w);
	else if (!w->ctl.closed)
		worker_link_failed(w, "heartbeat", err);
	pthread_mutex_lock(&w->lock);
	w->hb_inflight = 0;
	if (rc != 0 && worker_link_unknown(err))
		w->need_register = 1;
	pthread_cond_signal(&w->wake); /* the next heartbeat may be due already */
	pthread_mutex_unlock(&w->lock);
}

static void worker_heartbeat_add_ids(cJSON *ids, const worker_batch *b)
{
	const cJSON *r;
	cJSON_ArrayForEach(r, b->results) {
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "id"));
		if (id)
			cJSON_AddItemToArray(ids, cJSON_CreateString(id));
	}
}

static void worker_heartbeat_add_id(const char *id, void *arg)
{
	cJSON_AddItemToArray(arg, cJSON_CreateString(id));
}

/* Built under w->lock; the caller sends it. */
static cJSON *worker_heartbeat_req_locked(worker *w)
{
	cJSON *req = worker_link_req(w, "heartbeat"), *ids = cJSON_CreateArray(), *held = cJSON_CreateArray();
	/* Waiting ones too: a task waiting for its sub-tasks keeps its lease. */
	worker_pool_ids_locked(w, worker_heartbeat_add_id, ids);
	/* Finished but not yet reported: still ours until the broker has the result. */
	if (w->inflight)
		worker_heartbeat_add_ids(ids, w->inflight);
	for (worker_batch *b = w->bhead; b; b = b->next)
		worker_heartbeat_add_ids(ids, b);
	cJSON_AddItemToObject(req, "running", ids);
	/* Also what is fetched and not started (at most the prefetch allowance),
	 * so a broker can tell a lost lease from one held here. */
	for (worker_item *it = w->queue.head; it; it = it->next)
		cJSON_AddItemToArray(held, cJSON_CreateString(it->id));
	cJSON_AddItemToObject(req, "queued", held);
	return req;
}

/* A heartbeat waits at most a period (at least 1 s), and never longer than
 * other calls. */
static void worker_heartbeat_send(worker *w, cJSON *req)
{
	node_err err = {0};
	int hb_timeout = w->heartbeat_ms > 1000 ? w->heartbeat_ms : 1000;
	if (hb_timeout > w->timeout_ms)
		hb_timeout = w->timeout_ms;
	int rc = worker_link_send(w, &w->ctl, req, hb_timeout, worker_heartbeat_cb, &err);
	cJSON_Delete(req);
	if (rc != 0)
		worker_heartbeat_cb(rc, NULL, &err, w);
}

static void worker_session_announce_locked(worker *w)
{
	if (w->announce == 1)
		node_info("worker %s consuming %s with %d threads from %s", w->name, w->queues_text, w->concurrency,
		    w->broker_url);
	else if (w->announce == 2)
		node_info("registered again with broker %s", w->broker_url);
	w->announce = 0;
}

int worker_session_step_locked(worker *w, int64_t now)
{
	worker_session_announce_locked(w);
	if (w->need_register && !w->reg_inflight && now >= w->reg_retry_at) {
		w->reg_inflight = 1;
		pthread_mutex_unlock(&w->lock);
		worker_register_send(w);
		pthread_mutex_lock(&w->lock);
		return 1;
	}
	if (w->registered && !w->hb_inflight && now >= w->hb_at) {
		w->hb_at = now + w->heartbeat_ms;
		w->hb_inflight = 1;
		cJSON *req = worker_heartbeat_req_locked(w);
		pthread_mutex_unlock(&w->lock);
		worker_heartbeat_send(w, req);
		pthread_mutex_lock(&w->lock);
		return 1;
	}
	return 0;
}
