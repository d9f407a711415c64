/* The pool: --concurrency threads take fetched tasks from the local queue
 * (w->queue, under w->lock), run them, queue their results for the report
 * and send the next fetch or report when one is due. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "worker/worker.h"

void worker_pool_free(worker *w)
{
	for (worker_item *it = w->queue.head, *next; it; it = next) {
		next = it->next;
		cJSON_Delete(it->task);
		free(it);
	}
	w->queue = (worker_items){0};
}

void worker_pool_append(worker_items *to, const worker_items *from)
{
	if (from->head == NULL)
		return;
	if (to->tail)
		to->tail->next = from->head;
	else
		to->head = from->head;
	to->tail = from->tail;
	to->n += from->n;
}

void worker_pool_add_locked(worker *w, const worker_items *got)
{
	worker_pool_append(&w->queue, got);
	if (got->n == 1)
		pthread_cond_signal(&w->work);
	else
		pthread_cond_broadcast(&w->work);
}

/* Take the next task for t, or NULL when the queue is empty. */
static worker_item *worker_pool_take_locked(worker_thread *t)
{
	worker *w = t->w;
	worker_item *it = w->queue.head;
	if (it == NULL)
		return NULL;
	w->queue.head = it->next;
	if (w->queue.head == NULL)
		w->queue.tail = NULL;
	w->queue.n--;
	w->running++;
	t->busy = 1;
	snprintf(t->running, sizeof t->running, "%s", it->id);
	return it;
}

/* t finished its task with result r (NULL when out of memory). A task that
 * finishes after the grace period is not reported: the worker gave it up and
 * the broker re-queues it. */
static void worker_pool_done_locked(worker_thread *t, cJSON *r, size_t bytes, int ok)
{
	worker *w = t->w;
	t->busy = 0;
	w->running--;
	if (ok)
		w->done_ok++;
	else
		w->done_failed++;
	worker_fetch_count_locked(w);
	if (w->stopping && w->running == 0)
		pthread_cond_signal(&w->wake);
	if (w->abandoned || r == NULL) {
		if (r == NULL)
			node_error("out of memory: a result is lost (its task will be re-run)");
		cJSON_Delete(r);
		return;
	}
	worker_report_add_locked(w, r, bytes);
	worker_send_due_locked(w);
}

static void *worker_pool_main(void *arg)
{
	worker_thread *t = arg;
	worker *w = t->w;
	node_log_set_role("worker");
	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (w->queue.head == NULL && !w->quit)
			pthread_cond_wait(&w->work, &w->lock);
		worker_item *it = worker_pool_take_locked(t);
		if (it == NULL)
			break;
		int slots = worker_fetch_want_locked(w);
		pthread_mutex_unlock(&w->lock);

		if (slots > 0)
			worker_fetch_send(w, slots);
		size_t bytes = 0;
		cJSON *r = worker_run_task(w, it->task, &bytes);
		int ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok"));
		cJSON_Delete(it->task);
		free(it);

		pthread_mutex_lock(&w->lock);
		worker_pool_done_locked(t, r, bytes, ok);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int worker_pool_start(worker *w, node_err *err)
{
	w->threads = calloc((size_t)w->concurrency, sizeof *w->threads);
	if (w->threads == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	for (int i = 0; i < w->concurrency; i++) {
		w->threads[i].w = w;
		int rv = pthread_create(&w->threads[i].thread, NULL, worker_pool_main, &w->threads[i]);
		if (rv != 0)
			return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot start worker thread %d of %d: %s", i + 1,
			    w->concurrency, strerror(rv));
		w->threads[i].started = 1;
	}
	return 0;
}

int worker_pool_quit(worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->quit = 1;
	pthread_cond_broadcast(&w->work);
	int abandoned = w->abandoned;
	pthread_mutex_unlock(&w->lock);
	return abandoned;
}

/* Threads still running a task past the grace period are left behind. */
void worker_pool_join(worker *w, int abandoned)
{
	for (int i = 0; w->threads && i < w->concurrency; i++) {
		if (!w->threads[i].started)
			continue;
		if (abandoned)
			pthread_detach(w->threads[i].thread);
		else
			pthread_join(w->threads[i].thread, NULL);
	}
}
