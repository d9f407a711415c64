/* The SIGTERM sequence, driven by the role's thread: stop fetching and give
 * back the tasks not started, let running ones finish within --grace, flush
 * the last reports, say bye. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "worker/worker.h"

/* A thread of its own waits for the stop request and wakes the role's
 * thread, which otherwise sleeps until its next timer. */
static void *worker_stop_main(void *arg)
{
	worker *w = arg;
	node_stop_wait(w->ctx->stop, -1);
	pthread_mutex_lock(&w->lock);
	w->stop_seen = 1;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int worker_stop_watch(worker *w, node_err *err)
{
	int rv = pthread_create(&w->stop_thread, NULL, worker_stop_main, w);
	if (rv != 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot start a thread: %s", strerror(rv));
	w->stop_thread_started = 1;
	return 0;
}

void worker_stop_join(worker *w)
{
	if (w->stop_thread_started)
		pthread_join(w->stop_thread, NULL);
}

/* A giveback request naming the next items (at most WORKER_IDS_MAX), which
 * it frees; *k says how many. */
static cJSON *worker_stop_giveback_req(worker *w, worker_item **items, int *k)
{
	cJSON *req = worker_link_req(w, "giveback"), *ids = cJSON_CreateArray();
	for (*k = 0; *items && *k < WORKER_IDS_MAX; (*k)++) {
		worker_item *it = *items;
		*items = it->next;
		cJSON_AddItemToArray(ids, cJSON_CreateString(it->id));
		cJSON_Delete(it->task);
		free(it);
	}
	cJSON_AddItemToObject(req, "ids", ids);
	return req;
}

static void worker_stop_giveback(worker *w, worker_items back)
{
	int given = 0, failed = 0;
	node_err err = {0};
	while (back.head) {
		int k;
		cJSON *req = worker_stop_giveback_req(w, &back.head, &k);
		if (worker_link_call(w, req, &err) == 0)
			given += k;
		else
			failed += k;
	}
	if (given)
		node_info("gave back %d unstarted task%s", given, given == 1 ? "" : "s");
	if (failed)
		node_warn("could not give back %d of %d unstarted tasks (%s); the broker re-queues them when their lease runs out",
		    failed, back.n, err.msg);
}

/* Empty the local queue and the tasks held since stop into one list, and
 * tell the pool to quit once its running tasks are done. */
static worker_items worker_stop_unstarted_locked(worker *w)
{
	worker_items back = w->queue;
	worker_pool_append(&back, &w->giveback);
	w->queue = w->giveback = (worker_items){0};
	w->quit = 1;
	pthread_cond_broadcast(&w->work);
	return back;
}

/* Closing the fetch client cancels the parked fetch; once its callback is
 * done no task can arrive. */
static void worker_stop_begin(worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->stopping = 1;
	pthread_mutex_unlock(&w->lock);
	worker_link_close(w, &w->fetch);

	pthread_mutex_lock(&w->lock);
	worker_items back = worker_stop_unstarted_locked(w);
	int running = w->running;
	pthread_mutex_unlock(&w->lock);
	if (back.n > 0)
		worker_stop_giveback(w, back);
	if (running > 0)
		node_info("stopping: waiting up to %d s for %d running task%s", w->grace_s, running, running == 1 ? "" : "s");
	else
		node_info("stopping");
}

int worker_stop_begin_locked(worker *w)
{
	if (w->phase != WORKER_RUNNING || !w->stop_seen)
		return 0;
	pthread_mutex_unlock(&w->lock);
	worker_stop_begin(w);
	pthread_mutex_lock(&w->lock);
	w->phase = WORKER_DRAINING;
	w->phase_end = node_clock_mono_ms() + (int64_t)w->grace_s * 1000;
	return 1;
}

/* The ids of the tasks left unfinished, as much as fits, for the log. */
typedef struct worker_stop_ids {
	char text[1024];
	size_t off;
} worker_stop_ids;

static void worker_stop_add_id(const char *id, void *arg)
{
	worker_stop_ids *ids = arg;
	if (ids->off < sizeof ids->text - 1) {
		int n = snprintf(ids->text + ids->off, sizeof ids->text - ids->off, "%s%s", ids->off ? ", " : "", id);
		ids->off += n > 0 ? (size_t)n : 0;
	}
}

static void worker_stop_abandon_locked(worker *w)
{
	worker_stop_ids ids = {.off = 0};
	ids.text[0] = '\0';
	worker_pool_ids_locked(w, worker_stop_add_id, &ids);
	node_warn("grace period of %d s is over; leaving %d task%s unfinished (the broker re-queues them): %s", w->grace_s,
	    w->running, w->running == 1 ? "" : "s", ids.text);
	w->abandoned = 1;
}

/* Flushing waits for the reports in flight: a timeout's worth, or a second
 * when the broker is down. */
int worker_stop_next_locked(worker *w, int64_t now)
{
	if (w->phase == WORKER_DRAINING && (w->running == 0 || now >= w->phase_end)) {
		if (w->running > 0)
			worker_stop_abandon_locked(w);
		w->phase = WORKER_FLUSHING;
		w->phase_end = now + (w->broker_down ? 1000 : w->timeout_ms);
		return 1;
	}
	if (w->phase != WORKER_FLUSHING || ((w->bhead || w->inflight) && now < w->phase_end))
		return 0;
	if (w->unreported > 0)
		node_warn("%d result%s could not be reported; the broker re-runs those tasks", w->unreported,
		    w->unreported == 1 ? "" : "s");
	return -1;
}

void worker_stop_bye(worker *w)
{
	if (!w->ever_registered || w->ctl.cl == NULL)
		return;
	node_err err = {0};
	if (worker_link_call(w, worker_link_req(w, "bye"), &err) != 0)
		node_info("bye not delivered (%s); the broker re-queues this worker's tasks when their lease runs out", err.msg);
}
