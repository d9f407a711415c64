/* node submit's run: every call to the broker is async and its reply comes
 * back as an event on one queue; one loop keeps batches and gets in flight,
 * handles the replies as they come and stops early on a stop request. */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "core/clock.h"
#include "submit.h"

void submit_post(submit_run *r, submit_ev *ev)
{
	ev->next = NULL;
	pthread_mutex_lock(&r->lock);
	if (r->tail)
		r->tail->next = ev;
	else
		r->head = ev;
	r->tail = ev;
	pthread_cond_signal(&r->cond);
	pthread_mutex_unlock(&r->lock);
}

static void sub_on_reply(int rc, cJSON *reply, const node_err *err, void *arg)
{
	submit_ev *ev = arg;
	ev->rc = rc;
	ev->reply = reply;
	if (err)
		ev->err = *err;
	submit_post(ev->run, ev);
}

/* Record the first error's exit status and say what went wrong. */
void submit_error(submit_run *r, const node_err *err, const char *fmt, ...)
{
	char what[512] = ""; /* "task 3 (ID): ", and ids are at most 128 characters */
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(what, sizeof what, fmt, ap);
		va_end(ap);
	}
	taskcli_warn(r->t, "%s%s", what, err->msg);
	if (r->exit_status == 0)
		r->exit_status = taskcli_exit_for(err);
}

/* Send req (freed here) with an event that brings the reply back to the
 * loop; ev0 names the batch (slot) it is for. */
int submit_send(submit_run *r, cJSON *req, int timeout_ms, submit_ev ev0, node_err *err)
{
	submit_ev *ev = malloc(sizeof *ev);
	int rc = ev ? 0 : node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	if (rc == 0) {
		*ev = ev0;
		ev->run = r;
		rc = ncl_call_async(r->t->conn, req, timeout_ms, sub_on_reply, ev, err);
		if (rc != 0)
			free(ev);
	}
	cJSON_Delete(req);
	return rc;
}

static submit_ev *sub_next_event(submit_run *r)
{
	pthread_mutex_lock(&r->lock);
	while (r->head == NULL) {
		/* Not longer: the loop looks for a stop request between events. */
		if (taskcli_cond_wait_ms(&r->cond, &r->lock, 100) == ETIMEDOUT)
			break;
	}
	submit_ev *ev = r->head;
	if (ev) {
		r->head = ev->next;
		if (r->head == NULL)
			r->tail = NULL;
	}
	pthread_mutex_unlock(&r->lock);
	return ev;
}

/* On a stop request, fail what is in flight now rather than wait for it. */
static void sub_check_stop(submit_run *r)
{
	if (r->stopped || !node_stop_requested(r->t->ctx->stop))
		return;
	r->stopped = 1;
	taskcli_warn(r->t, "interrupted");
	if (r->exit_status == 0)
		r->exit_status = NODE_EXIT_FAIL;
	ncl_close(r->t->conn);
	r->t->conn = NULL;
}

/* Keep as many batches and gets in flight as allowed. A refused batch stops
 * the sending, not the wait for what was accepted. */
static void sub_fill(submit_run *r)
{
	if (r->stopped)
		return;
	while (!r->submit_failed && r->next_batch < r->nbatches && r->batches_inflight < r->inflight_max)
		submit_send_batch(r);
	if (r->wait && r->waiting > 0 && r->deadline && node_clock_mono_ms() >= r->deadline)
		submit_expire(r);
}

/* Whether a call is in flight, or one is still to be made. */
static int sub_busy(const submit_run *r)
{
	int sending = !r->stopped && !r->submit_failed && r->next_batch < r->nbatches;
	int getting = !r->stopped && r->waiting > 0;
	return r->batches_inflight > 0 || sending || getting;
}

static void sub_handle(submit_run *r, submit_ev *ev)
{
	if (ev->kind == SUBMIT_EV_SUBMIT) {
		submit_handle_submit(r, ev);
		submit_print_ids(r);
	} else {
		submit_handle_done(r, ev);
		return; /* a watch's own event */
	}
	cJSON_Delete(ev->reply);
	free(ev);
}

static void sub_loop(submit_run *r)
{
	for (;;) {
		sub_check_stop(r);
		sub_fill(r);
		if (!sub_busy(r))
			break;
		submit_ev *ev = sub_next_event(r);
		if (ev != NULL)
			sub_handle(r, ev);
	}
	/* Batches never sent count as settled for printing. */
	for (int b = 0; b < r->nbatches; b++)
		if (r->batches[b].state < 2)
			r->batches[b].state = 3;
	submit_print_ids(r);
	submit_report_unknown(r);
	fflush(stdout);
}

/* Events that came after the loop (callbacks of a closing connection). */
static void sub_drain(submit_run *r)
{
	while (r->head) {
		submit_ev *ev = r->head;
		r->head = ev->next;
		if (ev->kind != SUBMIT_EV_DONE) { /* a watch's own event is not ours to free */
			cJSON_Delete(ev->reply);
			free(ev);
		}
	}
	r->tail = NULL;
}

/* Send the prepared batches and with --wait wait for the results; closes
 * the client. Returns the exit status. */
int submit_go(submit_run *r, const node_args *a, const submit_flags *o)
{
	r->wait = node_args_has(a, "wait");
	r->wait_s = taskcli_wait_s(a);
	if (r->wait)
		taskcli_wait_calls(r->t);
	r->inflight_max = (int)o->inflight;
	r->deadline = taskcli_deadline(r->wait_s);
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->cond, NULL);
	static char outbuf[1 << 16];
	setvbuf(stdout, outbuf, _IOFBF, sizeof outbuf);
	sub_loop(r);
	fflush(stdout);
	taskcli_close(r->t); /* after it, no callback runs: the futures and events can go */
	submit_watches_free(r);
	sub_drain(r);
	pthread_cond_destroy(&r->cond);
	pthread_mutex_destroy(&r->lock);
	if (r->exit_status != 0)
		return r->exit_status;
	if (r->failed > 0)
		return NODE_EXIT_FAIL;
	if (r->timed_out > 0)
		return NODE_EXIT_TIMEOUT;
	return 0;
}
