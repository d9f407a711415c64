/* The pool: --concurrency threads take fetched tasks from the local queue
 * (w->queue, under w->lock), run them, queue their results for the report
 * and send the next fetch or report when one is due.
 *
 * Slot lending: a task that blocks waiting for its sub-tasks (fibr) would
 * hold its slot while the sub-tasks wait for one: with --concurrency 1 a
 * deadlock. So while it waits it is counted in w->blocked; at most
 * --concurrency tasks run unblocked, the fetch asks for --concurrency +
 * blocked, and the pool keeps a thread for every slot: extra threads (at
 * most WORKER_LEND_MAX) are started as needed and end once there are more
 * of them than blocked tasks. Past that limit a wait keeps its slot and
 * runs queued tasks in it (worker_pool_help), and sub.c runs new sub-tasks
 * inline, so the pool still makes progress. */
#include <errno.h>
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

/* A task may start while fewer than --concurrency run unblocked. */
static int worker_pool_can_take_locked(const worker *w)
{
	return w->queue.head != NULL && w->running - w->blocked < w->concurrency;
}

/* An extra thread is surplus once the extra threads outnumber the blocked
 * tasks (whose slots they stand for). */
static int worker_pool_surplus_locked(const worker_thread *t)
{
	return t->extra && t->w->extras > t->w->blocked;
}

/* Take the next task for t (worker_pool_can_take_locked said yes). */
static worker_item *worker_pool_take_locked(worker_thread *t)
{
	worker *w = t->w;
	worker_item *it = w->queue.head;
	w->queue.head = it->next;
	if (w->queue.head == NULL)
		w->queue.tail = NULL;
	w->queue.n--;
	w->running++;
	t->busy = 1;
	snprintf(t->running, sizeof t->running, "%s", it->id);
	return it;
}

/* A task finished with result r (NULL when out of memory). A task that
 * finishes after the grace period is not reported: the worker gave it up and
 * the broker re-queues it. */
static void worker_pool_result_locked(worker *w, cJSON *r, size_t bytes, int ok)
{
	if (!w->abandoned) /* else it was left to the broker: not counted either */
		*(ok ? &w->done_ok : &w->done_failed) += 1;
	worker_fetch_count_locked(w);
	if (w->abandoned || r == NULL) {
		if (r == NULL)
			node_error("out of memory: a result is lost (its task will be re-run)");
		cJSON_Delete(r);
		return;
	}
	worker_report_add_locked(w, r, bytes);
	worker_send_due_locked(w);
}

/* t finished its task. */
static void worker_pool_done_locked(worker_thread *t, cJSON *r, size_t bytes, int ok)
{
	worker *w = t->w;
	t->busy = 0;
	w->running--;
	if (w->stopping && w->running == 0)
		pthread_cond_signal(&w->wake);
	worker_pool_result_locked(w, r, bytes, ok);
}

/* Send the fetch that is due and run its task, with w->lock released
 * meanwhile; its result for the report (NULL when out of memory). */
static cJSON *worker_pool_exec_locked(worker_thread *t, const worker_item *it, size_t *bytes, int *ok)
{
	worker *w = t->w;
	int slots = worker_fetch_want_locked(w);
	pthread_mutex_unlock(&w->lock);
	if (slots > 0)
		worker_fetch_send(w, slots);
	*bytes = 0;
	cJSON *r = worker_run_task(t, it->task, bytes);
	*ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "ok"));
	pthread_mutex_lock(&w->lock);
	return r;
}

/* Run it, then account for it. */
static void worker_pool_run_locked(worker_thread *t, worker_item *it)
{
	size_t bytes;
	int ok;
	cJSON *r = worker_pool_exec_locked(t, it, &bytes, &ok);
	cJSON_Delete(it->task);
	free(it);
	worker_pool_done_locked(t, r, bytes, ok);
}

/* A surplus extra thread ends; the slot it leaves goes to a waiting thread. */
static void worker_pool_leave_locked(worker_thread *t)
{
	worker *w = t->w;
	w->extras--;
	t->exited = 1;
	if (worker_pool_can_take_locked(w))
		pthread_cond_signal(&w->work);
}

static void *worker_pool_main(void *arg)
{
	worker_thread *t = arg;
	worker *w = t->w;
	node_log_set_role("worker");
	pthread_mutex_lock(&w->lock);
	for (;;) {
		if (worker_pool_surplus_locked(t)) {
			worker_pool_leave_locked(t);
			break;
		}
		if (worker_pool_can_take_locked(w)) {
			worker_pool_run_locked(t, worker_pool_take_locked(t));
			continue;
		}
		if (w->quit && w->queue.head == NULL)
			break;
		pthread_cond_wait(&w->work, &w->lock);
	}
	if (t->extra && !t->exited) { /* quit */
		w->extras--;
		t->exited = 1;
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

/* ---- extra threads for lent slots ---- */

/* Unlink the extra threads that have ended (or, with all, every one). */
static worker_thread *worker_pool_unlink_locked(worker *w, int all)
{
	worker_thread *out = NULL;
	for (worker_thread **p = &w->extra; *p;) {
		worker_thread *t = *p;
		if (all || t->exited) {
			*p = t->next;
			t->next = out;
			out = t;
		} else {
			p = &t->next;
		}
	}
	return out;
}

/* Join ended extra threads: each has let go of w->lock for good. */
static void worker_pool_reap(worker *w)
{
	pthread_mutex_lock(&w->lock);
	worker_thread *gone = worker_pool_unlink_locked(w, 0);
	pthread_mutex_unlock(&w->lock);
	for (worker_thread *t = gone, *next; t; t = next) {
		next = t->next;
		pthread_join(t->thread, NULL);
		free(t);
	}
}

/* Start one extra thread; -1 when that fails (logged). It waits for
 * w->lock, which we hold, before it looks at anything but t->w. */
static int worker_pool_extra_locked(worker *w)
{
	worker_thread *t = calloc(1, sizeof *t);
	if (t)
		*t = (worker_thread){.w = w, .started = 1, .extra = 1, .next = w->extra};
	int rv = t ? pthread_create(&t->thread, NULL, worker_pool_main, t) : ENOMEM;
	if (rv != 0) {
		free(t);
		node_warn("cannot start a thread for a waiting task's slot (%s); the task keeps its slot",
		    strerror(rv));
		return -1;
	}
	w->extra = t;
	w->extras++;
	return 0;
}

/* No more slots can be lent: say so once, it explains a slower worker. */
static void worker_pool_full_locked(worker *w)
{
	if (w->lend_warned)
		return;
	w->lend_warned = 1;
	node_warn("%d tasks wait for sub-tasks, each on a thread of its own: no more threads are started (at most %d "
	          "extra); until fewer wait, new sub-tasks run inline and further waits run queued tasks in their slot",
	    w->blocked, WORKER_LEND_MAX);
}

/* While the extra threads are at least as many as the blocked tasks, every
 * slot has a thread: free threads (all - running) >= free slots
 * (concurrency + blocked - running). */
int worker_pool_wait_begin(worker *w)
{
	worker_pool_reap(w);
	pthread_mutex_lock(&w->lock);
	int lent = 0;
	if (w->quit)
		lent = 0; /* no task starts any more: nothing to lend to */
	else if (w->extras >= w->blocked + 1)
		lent = 1;
	else if (w->extras < WORKER_LEND_MAX)
		lent = worker_pool_extra_locked(w) == 0;
	else
		worker_pool_full_locked(w);
	int slots = 0;
	if (lent) {
		w->blocked++;
		if (worker_pool_can_take_locked(w))
			pthread_cond_signal(&w->work);
		slots = worker_fetch_want_locked(w);
	}
	pthread_mutex_unlock(&w->lock);
	if (slots > 0)
		worker_fetch_send(w, slots);
	return lent;
}

int worker_pool_saturated(worker *w)
{
	pthread_mutex_lock(&w->lock);
	int full = w->extras >= WORKER_LEND_MAX && w->extras <= w->blocked;
	if (full)
		worker_pool_full_locked(w);
	pthread_mutex_unlock(&w->lock);
	return full;
}

void worker_pool_wait_end(worker *w)
{
	pthread_mutex_lock(&w->lock);
	w->blocked--;
	if (w->extras > w->blocked)
		pthread_cond_broadcast(&w->work); /* an idle extra thread is surplus now */
	pthread_mutex_unlock(&w->lock);
}

/* The pool's threads: the --concurrency ones, then the extra ones. */
static worker_thread *worker_pool_next_locked(worker *w, worker_thread *t)
{
	if (t == NULL)
		return w->threads ? &w->threads[0] : w->extra;
	if (t->extra)
		return t->next;
	return t + 1 < w->threads + w->concurrency ? t + 1 : w->extra;
}

void worker_pool_ids_locked(worker *w, void (*fn)(const char *id, void *arg), void *arg)
{
	for (worker_thread *t = worker_pool_next_locked(w, NULL); t; t = worker_pool_next_locked(w, t)) {
		if (t->busy)
			fn(t->running, arg);
		for (const worker_item *it = t->helped; it; it = it->next)
			fn(it->id, arg);
	}
}

/* ---- helping: running queued tasks inside a wait that could not lend ---- */

/* The queued task to help with: one of the ids waited for when one is
 * here (finishing the waiter's own subtree first keeps the stack shallow),
 * else the next in line. Unlinked from the queue. */
static worker_item *worker_pool_help_take_locked(worker *w, const char *const *ids, size_t n)
{
	worker_item **pick = &w->queue.head, *prev = NULL, *pick_prev = NULL;
	for (worker_item **p = &w->queue.head; *p; prev = *p, p = &(*p)->next) {
		size_t i = 0;
		while (i < n && strcmp((*p)->id, ids[i]) != 0)
			i++;
		if (i < n) {
			pick = p;
			pick_prev = prev;
			break;
		}
	}
	worker_item *it = *pick;
	*pick = it->next;
	if (w->queue.tail == it)
		w->queue.tail = pick_prev;
	w->queue.n--;
	return it;
}

/* A task run inside another's wait uses that task's slot: it is not one
 * more in w->running, which the fetch and the stop look at. */
int worker_pool_help(worker_thread *t, const char *const *ids, size_t n)
{
	worker *w = t->w;
	pthread_mutex_lock(&w->lock);
	if (w->queue.head == NULL || t->helping >= WORKER_HELP_DEPTH || w->quit) {
		pthread_mutex_unlock(&w->lock);
		return 0;
	}
	worker_item *it = worker_pool_help_take_locked(w, ids, n);
	it->next = t->helped;
	t->helped = it;
	t->helping++;
	size_t bytes;
	int ok;
	cJSON *r = worker_pool_exec_locked(t, it, &bytes, &ok);
	t->helped = it->next;
	t->helping--;
	worker_pool_result_locked(w, r, bytes, ok);
	pthread_mutex_unlock(&w->lock);
	cJSON_Delete(it->task);
	free(it);
	return 1;
}

/* Threads still running a task past the grace period are left behind. No
 * extra thread starts once w->quit is set. */
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
	pthread_mutex_lock(&w->lock);
	worker_thread *extra = worker_pool_unlink_locked(w, 1);
	pthread_mutex_unlock(&w->lock);
	for (worker_thread *t = extra, *next; t; t = next) {
		next = t->next;
		if (abandoned) { /* a thread left running may still use t */
			pthread_detach(t->thread);
			continue;
		}
		pthread_join(t->thread, NULL);
		free(t);
	}
}
