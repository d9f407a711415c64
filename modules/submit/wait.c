/* node submit --wait: the ids of acknowledged batches, in chunks, go to the
 * broker as parked `get` calls (several in flight); results are printed as
 * they finish and the chunk asks again for the rest until the deadline. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "submit.h"

static void sub_queue_chunk(submit_run *r, submit_chunk *c)
{
	c->next = NULL;
	if (r->chunks_tail)
		r->chunks_tail->next = c;
	else
		r->chunks = c;
	r->chunks_tail = c;
}

/* Queue gets for the ids of an acknowledged batch. */
void submit_chunk_batch(submit_run *r, const submit_batch *bt)
{
	for (int i = 0; i < bt->count; i += r->chunk_size) {
		int n = bt->count - i < r->chunk_size ? bt->count - i : r->chunk_size;
		submit_chunk *c = calloc(1, sizeof *c);
		int *idx = malloc((size_t)n * sizeof *idx);
		if (c == NULL || idx == NULL) {
			free(c);
			free(idx);
			node_err err;
			node_err_set(&err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
			r->get_failed = 1;
			submit_error(r, &err, NULL);
			return;
		}
		for (int k = 0; k < n; k++)
			idx[k] = bt->first + i + k;
		c->idx = idx;
		c->n = n;
		sub_queue_chunk(r, c);
	}
}

static void sub_chunk_free(submit_chunk *c)
{
	if (c) {
		free(c->idx);
		free(c);
	}
}

void submit_chunks_free(submit_run *r)
{
	while (r->chunks) {
		submit_chunk *c = r->chunks;
		r->chunks = c->next;
		sub_chunk_free(c);
	}
}

void submit_send_get(submit_run *r)
{
	submit_chunk *c = r->chunks;
	r->chunks = c->next;
	if (r->chunks == NULL)
		r->chunks_tail = NULL;
	long long wait_ms = taskcli_park_ms(r->deadline);
	cJSON *ids;
	cJSON *req = taskcli_get_req(wait_ms, &ids);
	for (int k = 0; k < c->n; k++)
		cJSON_AddItemToArray(ids, cJSON_CreateStringReference(r->ids[c->idx[k]]));
	node_err err = {0};
	if (submit_send(r, req, (int)wait_ms + r->t->call_ms, (submit_ev){.kind = SUBMIT_EV_GET, .chunk = c}, &err) != 0) {
		r->get_failed = 1;
		submit_error(r, &err, "waiting for %d task%s: ", c->n, c->n == 1 ? "" : "s");
		sub_chunk_free(c);
		return;
	}
	r->gets_inflight++;
}

static void sub_print_result(submit_run *r, const cJSON *res, const char *id)
{
	const char *state = taskcli_str(res, "state");
	if (!(state && strcmp(state, "succeeded") == 0))
		r->failed++;
	r->finished++;
	taskcli_print_result(r->t, id, res, 1);
}

static void sub_print_timeout(submit_run *r, const char *id, const char *state)
{
	r->timed_out++;
	if (r->t->json) {
		taskcli_put_id_line(stdout, id, state ? state : "pending");
		return;
	}
	fflush(stdout);
	fprintf(stderr, "%s: not ready after %lld s\n", id, r->wait_s);
}

/* Print the finished results of chunk c (past the deadline, the unfinished
 * ones as not ready); c keeps the ids still to ask for. */
static void sub_take_results(submit_run *r, submit_chunk *c, const cJSON *results)
{
	int expired = r->deadline && node_clock_mono_ms() >= r->deadline;
	int left = 0;
	const cJSON *res = results->child;
	for (int k = 0; k < c->n; k++, res = res->next) {
		int i = c->idx[k];
		const char *state = taskcli_str(res, "state");
		if (taskcli_state_finished(state)) {
			sub_print_result(r, res, r->ids[i]);
			r->done[i] = 1;
		} else if (expired) {
			sub_print_timeout(r, r->ids[i], state);
			r->done[i] = 1;
		} else {
			c->idx[left++] = i;
		}
	}
	fflush(stdout);
	c->n = left;
}

void submit_handle_get(submit_run *r, submit_ev *ev)
{
	submit_chunk *c = ev->chunk;
	r->gets_inflight--;
	if (ev->rc != 0 && r->stopped) {
		sub_chunk_free(c);
		return;
	}
	if (ev->rc != 0) {
		r->get_failed = 1;
		submit_error(r, &ev->err, "waiting for %d task%s: ", c->n, c->n == 1 ? "" : "s");
		sub_chunk_free(c);
		return;
	}
	const cJSON *results = cJSON_GetObjectItemCaseSensitive(ev->reply, "results");
	if (!cJSON_IsArray(results) || cJSON_GetArraySize(results) != c->n) {
		node_err err;
		node_err_set(&err, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "the broker's get reply has %d results for %d ids",
		    cJSON_GetArraySize(results), c->n);
		r->get_failed = 1;
		submit_error(r, &err, NULL);
		sub_chunk_free(c);
		return;
	}
	sub_take_results(r, c, results);
	if (c->n > 0)
		sub_queue_chunk(r, c);
	else
		sub_chunk_free(c);
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
