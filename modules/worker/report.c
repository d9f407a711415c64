/* Reporting results: they collect in batches and at most one report is in
 * flight, sent by the thread that finished a task or by the previous
 * report's callback, so results batch under load and go at once when idle. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "worker/worker.h"

static void worker_batch_free(worker_batch *b)
{
	if (b) {
		cJSON_Delete(b->results);
		free(b);
	}
}

void worker_report_free(worker *w)
{
	for (worker_batch *b = w->bhead, *next; b; b = next) {
		next = b->next;
		worker_batch_free(b);
	}
}

void worker_report_add_locked(worker *w, cJSON *r, size_t bytes)
{
	worker_batch *b = w->btail;
	if (b == NULL || b->refused || b->n >= WORKER_BATCH_MAX || (b->n > 0 && b->bytes + bytes > w->batch_bytes)) {
		b = calloc(1, sizeof *b);
		if (b == NULL || (b->results = cJSON_CreateArray()) == NULL) {
			free(b);
			cJSON_Delete(r);
			node_error("out of memory: a result is lost (its task will be re-run)");
			return;
		}
		if (w->btail)
			w->btail->next = b;
		else
			w->bhead = b;
		w->btail = b;
	}
	cJSON_AddItemToArray(b->results, r);
	b->n++;
	b->bytes += bytes;
	w->unreported++;
}

worker_batch *worker_report_take_locked(worker *w)
{
	if (w->inflight || !w->bhead || w->ctl.closed)
		return NULL;
	if (w->report_retry_at && node_clock_mono_ms() < w->report_retry_at)
		return NULL;
	worker_batch *b = w->bhead;
	w->bhead = b->next;
	if (w->bhead == NULL)
		w->btail = NULL;
	b->next = NULL;
	w->inflight = b;
	w->report_retry_at = 0;
	return b;
}

static void worker_report_cb(int rc, cJSON *reply, const node_err *err, void *arg);
static void worker_report_failed(worker *w, worker_batch *b, const node_err *err);

void worker_report_send(worker *w, worker_batch *b)
{
	node_err err = {0};
	cJSON *req = worker_link_req(w, "report");
	/* A reference: the batch stays ours (and may be freed by the callback
	 * while req is still being deleted here). */
	cJSON_AddItemReferenceToObject(req, "results", b->results);
	w->reports++;
	int rc = worker_link_send(w, &w->ctl, req, w->timeout_ms, worker_report_cb, &err);
	cJSON_Delete(req);
	if (rc != 0)
		worker_report_failed(w, b, &err);
}

/* Turn every result of a batch the broker refused into a failure saying so,
 * so that the tasks end (and are not re-run forever) if the refusal was
 * about a value. */
static void worker_report_refuse(worker_batch *b, const node_err *err)
{
	char msg[600];
	snprintf(msg, sizeof msg, "the broker refused the result: %s", err->msg);
	cJSON *fresh = cJSON_CreateArray();
	b->bytes = 0;
	for (cJSON *r = b->results->child; r; r = r->next) {
		cJSON *f = cJSON_CreateObject();
		cJSON_AddItemToObject(f, "id", cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(r, "id"), 1));
		const cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "delivery");
		if (d)
			cJSON_AddItemToObject(f, "delivery", cJSON_Duplicate(d, 1));
		cJSON_AddFalseToObject(f, "ok");
		cJSON_AddStringToObject(f, "error", msg);
		cJSON_AddItemToArray(fresh, f);
		b->bytes += strlen(msg) + WORKER_ID_MAX + 64;
	}
	cJSON_Delete(b->results);
	b->results = fresh;
	b->refused = 1;
}

/* Split b into batches of one result, *first..*last (NULL when none), and
 * free it. Whatever cannot be split (out of memory) is dropped. */
static void worker_report_split(worker *w, worker_batch *b, worker_batch **first, worker_batch **last)
{
	*first = *last = NULL;
	while (b->results->child) {
		worker_batch *one = calloc(1, sizeof *one);
		cJSON *arr = cJSON_CreateArray();
		if (one == NULL || arr == NULL) {
			free(one);
			cJSON_Delete(arr);
			break;
		}
		cJSON_AddItemToArray(arr, cJSON_DetachItemViaPointer(b->results, b->results->child));
		one->results = arr;
		one->n = 1;
		one->bytes = b->bytes / (size_t)b->n;
		if (*last)
			(*last)->next = one;
		else
			*first = one;
		*last = one;
	}
	int left = cJSON_GetArraySize(b->results);
	pthread_mutex_lock(&w->lock);
	w->unreported -= left;
	pthread_mutex_unlock(&w->lock);
	worker_batch_free(b);
}

/* Refusals that sending again cannot fix. */
static int worker_report_permanent(const node_err *err)
{
	return err->rc == NODE_ELIMIT || err->rc == NODE_EINVAL ||
	    (err->rc == NODE_EREMOTE &&
	        (strcmp(err->code, NODE_ERR_BAD_REQUEST) == 0 || strcmp(err->code, NODE_ERR_BAD_ARGS) == 0 ||
	            strcmp(err->code, NODE_ERR_LIMIT) == 0 || strcmp(err->code, NODE_ERR_TOO_LARGE) == 0));
}

/* Put first..last back at the head of the batches to send. */
static void worker_report_requeue_locked(worker *w, worker_batch *first, worker_batch *last)
{
	last->next = w->bhead;
	w->bhead = first;
	if (w->btail == NULL)
		w->btail = last;
}

/* A failed report. Transient failures keep the batch for a retry (results
 * are idempotent by task id). A batch the broker refuses as malformed is
 * split into single results, so one bad value cannot sink the others; a
 * single refused result is reported once more as a failure saying why, and
 * dropped if that is refused too. */
static void worker_report_failed(worker *w, worker_batch *b, const node_err *err)
{
	int permanent = worker_report_permanent(err);
	worker_batch *first = b, *last = b;
	int drop = 0;
	if (permanent && b->n > 1) {
		node_warn("report: the broker refused a batch of %d results (%s); sending them one by one", b->n, err->msg);
		worker_report_split(w, b, &first, &last);
		b = NULL;
	} else if (permanent && b->refused) {
		node_error("report: the broker refused a result again (%s); dropping it", err->msg);
		drop = 1;
	} else if (permanent) {
		node_error("report: the broker refused a result (%s); reporting its task as failed", err->msg);
		worker_report_refuse(b, err);
	} else if (!w->ctl.closed) {
		worker_link_failed(w, "report", err);
	}
	pthread_mutex_lock(&w->lock);
	w->inflight = NULL;
	if (drop)
		w->unreported -= b->n;
	else if (first)
		worker_report_requeue_locked(w, first, last);
	if (!permanent)
		w->report_retry_at = node_clock_mono_ms() + worker_link_backoff(&w->report_backoff);
	if (worker_link_unknown(err))
		w->need_register = 1;
	pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	if (drop)
		worker_batch_free(b);
}

static void worker_report_cb(int rc, cJSON *reply, const node_err *err, void *arg)
{
	worker *w = arg;
	pthread_mutex_lock(&w->lock);
	worker_batch *b = w->inflight;
	pthread_mutex_unlock(&w->lock);
	if (rc != 0) {
		cJSON_Delete(reply);
		worker_report_failed(w, b, err);
		return;
	}
	double ignored = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(reply, "ignored"));
	if (ignored > 0)
		node_debug("report: the broker ignored %.0f of %d results (finished before)", ignored, b->n);
	cJSON_Delete(reply);
	worker_link_answered(w);
	pthread_mutex_lock(&w->lock);
	w->inflight = NULL;
	w->unreported -= b->n;
	w->report_backoff = 0;
	worker_batch *next = worker_report_take_locked(w);
	if (w->stopping)
		pthread_cond_signal(&w->wake);
	pthread_mutex_unlock(&w->lock);
	worker_batch_free(b);
	if (next)
		worker_report_send(w, next);
}
