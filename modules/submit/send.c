/* node submit's batches: each goes out as one submit message (several in
 * flight), the broker's answer settles it, and without --wait the ids of the
 * settled batches are printed in order. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "submit.h"

/* The broker names a task of the batch as tasks[i]; make i count from the
 * start of the whole submission. */
static void sub_renumber(node_err *err, int first)
{
	const char *p = strstr(err->msg, "tasks[");
	if (p == NULL || first == 0)
		return;
	char *end;
	long i = strtol(p + 6, &end, 10);
	if (end == p + 6 || *end != ']')
		return;
	char buf[sizeof err->msg];
	snprintf(buf, sizeof buf, "%.*stasks[%ld]%s", (int)(p - err->msg), err->msg, i + first, end + 1);
	snprintf(err->msg, sizeof err->msg, "%s", buf);
}

/* Send the next batch, its tasks moved from r->tasks into the message. */
void submit_send_batch(submit_run *r)
{
	int b = r->next_batch++;
	submit_batch *bt = &r->batches[b];
	cJSON *req = taskcli_req("submit");
	cJSON *arr = cJSON_AddArrayToObject(req, "tasks");
	for (int i = 0; i < bt->count && r->tasks->child; i++) {
		cJSON *item = cJSON_DetachItemViaPointer(r->tasks, r->tasks->child);
		cJSON_AddItemToArray(arr, item);
	}
	node_err err = {0};
	if (submit_send(r, req, r->t->call_ms, (submit_ev){.kind = SUBMIT_EV_SUBMIT, .slot = b}, &err) != 0) {
		bt->state = 3;
		r->submit_failed = 1;
		if (bt->count == 1 && err.rc == NODE_ELIMIT)
			submit_error(r, &err, "task %d (%s) is too large: ", bt->first, r->ids[bt->first]);
		else if (bt->count == 1)
			submit_error(r, &err, "task %d (%s): ", bt->first, r->ids[bt->first]);
		else
			submit_error(r, &err, "tasks %d-%d: ", bt->first, bt->first + bt->count - 1);
		return;
	}
	bt->state = 1;
	r->batches_inflight++;
}

/* The broker's answer to a batch; with --wait an accepted batch is waited for. */
void submit_handle_submit(submit_run *r, submit_ev *ev)
{
	submit_batch *bt = &r->batches[ev->slot];
	r->batches_inflight--;
	if (ev->rc != 0) {
		bt->state = 3;
		r->submit_failed = 1;
		if (r->stopped)
			return;
		sub_renumber(&ev->err, bt->first);
		const char *who = ev->err.rc == NODE_EREMOTE ? "the broker refused " : "";
		if (ev->err.rc == NODE_ETIMEDOUT || ev->err.rc == NODE_ECLOSED)
			submit_error(r, &ev->err, NULL); /* the broker's address and the time say it all */
		else if (bt->count == 1)
			submit_error(r, &ev->err, "%stask %d (%s): ", who, bt->first, r->ids[bt->first]);
		else
			submit_error(r, &ev->err, "%stasks %d-%d: ", who, bt->first, bt->first + bt->count - 1);
		return;
	}
	/* The broker answers with the ids in order; they are ours unless it
	 * changed them, and then its ids are the ones that count. */
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(ev->reply, "ids");
	if (cJSON_IsArray(ids) && cJSON_GetArraySize(ids) == bt->count) {
		int i = bt->first;
		for (const cJSON *v = ids->child; v; v = v->next, i++) {
			if (cJSON_IsString(v) && strcmp(v->valuestring, r->ids[i]) != 0) {
				char *d = strdup(v->valuestring);
				if (d) {
					free(r->ids[i]);
					r->ids[i] = d;
				}
			}
		}
	}
	bt->state = 2;
	if (r->wait)
		submit_watch_batch(r, bt);
}

/* Print the acknowledged batches' ids, in order, as far as they are settled. */
void submit_print_ids(submit_run *r)
{
	while (r->printed_batches < r->nbatches && r->batches[r->printed_batches].state >= 2) {
		submit_batch *bt = &r->batches[r->printed_batches++];
		if (bt->state != 2 || r->wait)
			continue;
		for (int i = bt->first; i < bt->first + bt->count; i++) {
			if (r->t->json) {
				taskcli_put_id_line(stdout, r->ids[i], NULL);
			} else {
				fputs(r->ids[i], stdout);
				fputc('\n', stdout);
			}
		}
	}
	fflush(stdout);
}
