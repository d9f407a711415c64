/* Fetching tasks: at most one fetch is outstanding, parked at the broker
 * until work exists, asking for the free slots plus a prefetch allowance
 * that follows throughput. */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "worker/worker.h"

/* The allowance is the tasks finished in the last ~20 ms (at least 2, at
 * most 1000), so tiny tasks come in batches of hundreds while slow ones are
 * not hoarded. */
static void worker_fetch_rate_tick_locked(worker *w, int64_t now)
{
	int64_t b = now / WORKER_RATE_BUCKET_MS;
	if (b != w->rate_bucket) {
		w->rate_prev = b == w->rate_bucket + 1 ? w->rate_cur : 0;
		w->rate_cur = 0;
		w->rate_bucket = b;
	}
}

void worker_fetch_count_locked(worker *w)
{
	worker_fetch_rate_tick_locked(w, node_clock_mono_ms());
	w->rate_cur++;
}

static int worker_fetch_allowance_locked(worker *w)
{
	if (w->prefetch >= 0)
		return w->prefetch;
	worker_fetch_rate_tick_locked(w, node_clock_mono_ms());
	int a = w->rate_cur + w->rate_prev;
	int floor = w->concurrency < WORKER_PREFETCH_FLOOR ? w->concurrency : WORKER_PREFETCH_FLOOR;
	return a < floor ? floor : a > WORKER_PREFETCH_MAX ? WORKER_PREFETCH_MAX : a;
}

/* Whoever notices room (the fetch callback, a pool thread, the role's
 * thread, a task that starts to wait) sends the next fetch, once the local
 * queue is down to half the allowance. The capacity is --concurrency plus
 * the slots lent by blocked tasks, which count among the running ones. */
int worker_fetch_want_locked(worker *w)
{
	if (w->fetch_inflight || !w->registered || w->stopping)
		return 0;
	if (w->fetch_retry_at && node_clock_mono_ms() < w->fetch_retry_at)
		return 0;
	int allow = worker_fetch_allowance_locked(w);
	int capacity = w->concurrency + w->blocked;
	int slots = capacity + allow - w->running - w->queue.n;
	if (slots <= 0 || w->queue.n > allow / 2)
		return 0;
	w->fetch_inflight = 1;
	w->fetch_retry_at = 0;
	return slots > WORKER_SLOTS_MAX ? WORKER_SLOTS_MAX : slots;
}

void worker_fetch_init(worker *w)
{
	w->fetch_req = worker_link_req(w, "fetch");
	cJSON_AddItemToObject(w->fetch_req, "queues", worker_queues_json(w));
	cJSON_AddNumberToObject(w->fetch_req, "slots", 1);
	cJSON_AddNumberToObject(w->fetch_req, "wait_ms", WORKER_FETCH_WAIT_MS);
}

static void worker_fetch_failed(worker *w, const node_err *err)
{
	int unknown = worker_link_unknown(err);
	if (!w->fetch.closed) /* else: we closed it to stop */
		worker_link_failed(w, "fetch", err);
	pthread_mutex_lock(&w->lock);
	w->fetch_inflight = 0;
	w->fetch_retry_at = node_clock_mono_ms() + worker_link_backoff(&w->fetch_backoff);
	if (unknown)
		w->need_register = 1;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
}

/* Move the tasks of a fetch reply into got, in order. */
static void worker_fetch_take(cJSON *tasks, worker_items *got)
{
	while (tasks->child) {
		cJSON *t = cJSON_DetachItemViaPointer(tasks, tasks->child);
		const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, "id"));
		worker_item *it = id && strlen(id) <= WORKER_ID_MAX ? malloc(sizeof *it) : NULL;
		if (it == NULL) {
			node_warn("fetch: dropped a task without a usable id");
			cJSON_Delete(t);
			continue;
		}
		*it = (worker_item){t, id, NULL};
		worker_pool_append(got, &(worker_items){it, it, 1});
	}
}

/* Tasks that come after stop are given back, not run. */
static void worker_fetch_hold_locked(worker *w, worker_items *got)
{
	got->tail->next = w->giveback.head;
	w->giveback.head = got->head;
	if (w->giveback.tail == NULL)
		w->giveback.tail = got->tail;
	w->giveback.n += got->n;
}

static void worker_fetch_cb(int rc, cJSON *reply, const node_err *err, void *arg);

void worker_fetch_send(worker *w, int slots)
{
	node_err err = {0};
	cJSON_SetNumberValue(cJSON_GetObjectItemCaseSensitive(w->fetch_req, "slots"), slots);
	w->fetches++;
	if (worker_link_send(w, &w->fetch, w->fetch_req, WORKER_FETCH_WAIT_MS + w->timeout_ms, worker_fetch_cb, &err) != 0)
		worker_fetch_failed(w, &err);
}

/* Runs on an nng thread: queue the tasks, wake the pool, fetch again if
 * there is room. */
static void worker_fetch_cb(int rc, cJSON *reply, const node_err *err, void *arg)
{
	worker *w = arg;
	cJSON *tasks = cJSON_GetObjectItemCaseSensitive(reply, "tasks");
	node_err bad = {0};
	if (rc == 0 && !cJSON_IsArray(tasks)) {
		rc = node_err_set(&bad, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "the broker's fetch reply has no \"tasks\" array");
		err = &bad;
	}
	if (rc != 0) {
		cJSON_Delete(reply);
		worker_fetch_failed(w, err);
		return;
	}
	worker_link_answered(w);
	worker_items got = {0};
	worker_fetch_take(tasks, &got);
	cJSON_Delete(reply);
	pthread_mutex_lock(&w->lock);
	w->fetch_inflight = 0;
	w->fetch_backoff = 0;
	if (got.head && w->stopping)
		worker_fetch_hold_locked(w, &got);
	else if (got.head)
		worker_pool_add_locked(w, &got);
	int slots = worker_fetch_want_locked(w);
	pthread_mutex_unlock(&w->lock);
	if (slots > 0)
		worker_fetch_send(w, slots);
}
