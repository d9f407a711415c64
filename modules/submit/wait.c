/* node submit --wait: every acknowledged task gets a libnodeclient future
 * (the library's tracker asks the broker with parked gets over many ids);
 * its completion callback posts the task to the loop, which prints the
 * broker's entry for it, in the order they finish, until the deadline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "submit.h"

/* On the library's callback thread: hand the task to the loop. */
static void sub_done(ncl_future *f, void *arg)
{
	submit_watch *w = arg;
	submit_post(w->ev.run, &w->ev);
}

void submit_watch_batch(submit_run *r, const submit_batch *bt)
{
	for (int i = bt->first; i < bt->first + bt->count; i++) {
		ncl_err e = {0};
		r->watches[i] = (submit_watch){.ev = {.run = r, .kind = SUBMIT_EV_DONE, .slot = i}};
		if (ncl_future_watch(r->t->conn, r->ids[i], 1, &r->futs[i], &e) != 0) {
			node_err err;
			taskcli_from_ncl(&err, &e);
			submit_error(r, &err, "waiting for %s: ", r->ids[i]);
			continue; /* reported as unknown at the end */
		}
		r->waiting++;
		ncl_future_on_done(r->futs[i], sub_done, &r->watches[i]);
	}
}

/* The entry to print when the broker's own is not there (out of memory, or
 * cancelled here). */
static cJSON *sub_entry_of(const ncl_future *f)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", ncl_future_id(f));
	int ok = ncl_future_state(f) == NCL_SUCCEEDED;
	cJSON_AddStringToObject(o, "state", ok ? "succeeded" : ncl_future_state(f) == NCL_CANCELLED ? "revoked" : "failed");
	if (ok)
		cJSON_AddRawToObject(o, "value", ncl_future_result(f));
	else
		cJSON_AddStringToObject(o, "error", ncl_future_error(f) ? ncl_future_error(f) : "");
	return o;
}

void submit_handle_done(submit_run *r, submit_ev *ev)
{
	int i = ev->slot;
	ncl_future *f = r->futs[i];
	if (r->done[i] || ncl_future_state(f) == NCL_CLOSED)
		return; /* printed as not ready already, or closed: unknown */
	const char *text = ncl_future_entry(f);
	cJSON *entry = text ? cJSON_Parse(text) : NULL;
	if (entry == NULL)
		entry = sub_entry_of(f);
	const char *state = taskcli_str(entry, "state");
	if (!(state && strcmp(state, "succeeded") == 0))
		r->failed++;
	r->finished++;
	taskcli_print_result(r->t, r->ids[i], entry, 1);
	cJSON_Delete(entry);
	r->done[i] = 1;
	r->waiting--;
}

void submit_expire(submit_run *r)
{
	for (int i = 0; i < r->ntasks; i++) {
		if (r->futs[i] == NULL || r->done[i] || ncl_future_ready(r->futs[i]))
			continue; /* a finished one is printed from its event */
		r->timed_out++;
		r->done[i] = 1;
		r->waiting--;
		if (r->t->json) {
			taskcli_put_id_line(stdout, r->ids[i], "pending");
		} else {
			fflush(stdout);
			fprintf(stderr, "%s: not ready after %lld s\n", r->ids[i], r->wait_s);
		}
	}
	fflush(stdout);
}

void submit_watches_free(submit_run *r)
{
	for (int i = 0; i < r->ntasks; i++) {
		ncl_future_free(r->futs[i]);
		r->futs[i] = NULL;
	}
}

/* --wait: accepted tasks whose result could not be had are named. */
void submit_report_unknown(submit_run *r)
{
	for (int b = 0; r->wait && b < r->nbatches; b++) {
		const submit_batch *bt = &r->batches[b];
		for (int i = bt->first; bt->state == 2 && i < bt->first + bt->count; i++) {
			if (r->done[i])
				continue;
			r->unknown++;
			if (r->t->json) {
				taskcli_put_id_line(stdout, r->ids[i], "unknown");
			} else {
				fflush(stdout);
				fprintf(stderr, "%s: submitted; result unknown (%s)\n", r->ids[i], r->stopped ? "interrupted" : "waiting failed");
			}
		}
	}
}
