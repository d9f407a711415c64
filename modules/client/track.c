/* Completion tracking: how a connection learns that its tasks finished.
 *
 * Every task some future or map waits for is a watch in one queue per
 * connection. Watches leave the queue in chunks, each chunk one `get`
 * parked at the broker, several in flight; the broker answers a get when
 * every id in it is finished or its wait_ms has passed. On the answer the
 * finished ones go to their owners and the rest go back to the front of the
 * queue, to be chunked again. So there is never one request per task, and
 * no thread sits in a loop: gets are sent from whatever thread noticed
 * work (a submit, a map, the callback of the previous get).
 *
 * Chunking. The watched ids are spread over NCL_GETS_SPREAD gets: a few ids
 * get one get each, parked for a long time, and learn of completion the
 * moment it happens; many ids share gets of up to NCL_GET_MAX. Since a get
 * of several ids returns only when all are done, those park briefly at
 * first (NCL_WAIT_MANY_MIN_MS) and longer while their ids stay unfinished,
 * so a finished task waits at most NCL_WAIT_MANY_MAX_MS for slow neighbours,
 * and the chunks shrink as the work drains. Beyond the spread, up to
 * NCL_GETS_MAX gets are in flight, so new ids never wait for a slot behind
 * long-parked ones.
 *
 * Failures. A get that fails (broker down, time-out) puts its ids back and
 * holds every get back for NCL_RETRY_MIN_MS, doubling up to
 * NCL_RETRY_MAX_MS; the connection's thread sends them when the time is up.
 * A reply too large for the limits halves the chunk size. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "client/client_int.h"

typedef struct track_get {
	ncl_conn *c;
	int n;
	ncl_watch *w[]; /* in the order of the request's ids */
} track_get;

static void track_reply(int rc, cJSON *reply, const node_err *err, void *arg);

void ncl_track_locked(ncl_conn *c, ncl_watch *w)
{
	w->owner->refs++;
	w->next = NULL;
	if (c->qtail)
		c->qtail->next = w;
	else
		c->qhead = w;
	c->qtail = w;
	c->queued++;
}

/* Put the list head..tail (n watches) back at the front of the queue. */
static void track_requeue_locked(ncl_conn *c, ncl_watch *head, ncl_watch *tail, size_t n)
{
	if (head == NULL)
		return;
	tail->next = c->qhead;
	c->qhead = head;
	if (c->qtail == NULL)
		c->qtail = tail;
	c->queued += n;
}

static ncl_watch *track_pop_locked(ncl_conn *c)
{
	ncl_watch *w = c->qhead;
	if (w) {
		c->qhead = w->next;
		if (c->qhead == NULL)
			c->qtail = NULL;
		c->queued--;
		w->next = NULL;
	}
	return w;
}

/* How many ids the next get carries. */
static size_t track_chunk_locked(const ncl_conn *c)
{
	int spare = NCL_GETS_SPREAD - c->gets;
	size_t size = spare > 0 ? (c->queued + (size_t)spare - 1) / (size_t)spare : (size_t)c->get_max;
	if (size > (size_t)c->get_max)
		size = (size_t)c->get_max;
	return size < 1 ? 1 : size;
}

/* One id parks long; several park the longer the less they progressed. */
static int track_wait_ms(const track_get *g)
{
	if (g->n == 1)
		return NCL_WAIT_ONE_MS;
	unsigned tries = g->w[0]->tries;
	for (int i = 1; i < g->n; i++)
		if (g->w[i]->tries < tries)
			tries = g->w[i]->tries;
	int ms = NCL_WAIT_MANY_MIN_MS << (tries < 5 ? tries : 5);
	return ms < NCL_WAIT_MANY_MAX_MS ? ms : NCL_WAIT_MANY_MAX_MS;
}

static cJSON *track_request(const track_get *g, int wait_ms)
{
	cJSON *req = cJSON_CreateObject();
	cJSON *ids = req ? cJSON_AddArrayToObject(req, "ids") : NULL;
	if (ids == NULL || cJSON_AddStringToObject(req, "op", "get") == NULL ||
	    cJSON_AddNumberToObject(req, "wait_ms", wait_ms) == NULL) {
		cJSON_Delete(req);
		return NULL;
	}
	char buf[NCL_ID_MAX + 1];
	for (int i = 0; i < g->n; i++) {
		ncl_owner *o = g->w[i]->owner;
		cJSON *s = cJSON_CreateString(o->ops->id(o, g->w[i], buf, sizeof buf));
		if (s == NULL) {
			cJSON_Delete(req);
			return NULL;
		}
		cJSON_AddItemToArray(ids, s);
	}
	return req;
}

void ncl_track_pump(ncl_conn *c)
{
	while (!c->closing && c->queued > 0 && c->gets < NCL_GETS_MAX) {
		if (c->retry_at > 0 && node_clock_mono_ms() < c->retry_at)
			return; /* the connection's thread sends them when it is time */
		size_t size = track_chunk_locked(c);
		track_get *g = malloc(sizeof *g + size * sizeof g->w[0]);
		if (g == NULL)
			return; /* the next reply or submit tries again */
		g->c = c;
		g->n = 0;
		ncl_owner *gone = NULL;
		while (g->n < (int)size && c->queued > 0) {
			ncl_watch *w = track_pop_locked(c);
			if (w->owner->abandoned)
				ncl_owner_unref_locked(w->owner, &gone);
			else
				g->w[g->n++] = w;
		}
		if (g->n > 0)
			c->gets++;
		pthread_mutex_unlock(&c->lock);
		ncl_owners_destroy(gone);
		if (g->n == 0) {
			free(g);
		} else {
			int wait_ms = track_wait_ms(g);
			cJSON *req = track_request(g, wait_ms);
			node_err e = {0};
			int rc = req ? ncl_call_async(c, req, wait_ms + c->call_ms, track_reply, g, &e)
			             : node_err_set(&e, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
			cJSON_Delete(req);
			if (rc != 0)
				track_reply(rc, NULL, &e, g); /* takes the lock, may pump again */
		}
		pthread_mutex_lock(&c->lock);
	}
}

static void outcome_worker(const cJSON *entry, ncl_outcome *out)
{
	const char *w = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "worker"));
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(entry, "started_ms");
	const cJSON *f = cJSON_GetObjectItemCaseSensitive(entry, "finished_ms");
	snprintf(out->worker, sizeof out->worker, "%s", w ? w : "");
	out->run_ms = cJSON_IsNumber(s) && cJSON_IsNumber(f) ? (int64_t)(f->valuedouble - s->valuedouble) : -1;
}

int ncl_outcome_read(const cJSON *entry, ncl_outcome *out)
{
	memset(out, 0, sizeof *out);
	out->run_ms = -1;
	const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "state"));
	if (state == NULL)
		return 0;
	const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "error"));
	if (strcmp(state, "succeeded") == 0) {
		const char *exact = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "value_json"));
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(entry, "value");
		out->result = exact ? strdup(exact) : v ? cJSON_PrintUnformatted(v) : strdup("null");
		if (out->result == NULL)
			return NCL_ENOMEM;
		out->state = NCL_SUCCEEDED;
	} else if (strcmp(state, "failed") == 0 || strcmp(state, "dead") == 0) {
		out->error = strdup(msg ? msg : strcmp(state, "dead") == 0 ? "dead letter" : "the task failed");
		if (out->error == NULL)
			return NCL_ENOMEM;
		out->state = NCL_FAILED;
	} else if (strcmp(state, "revoked") == 0) {
		out->error = strdup(msg ? msg : "revoked before it started");
		if (out->error == NULL)
			return NCL_ENOMEM;
		out->state = NCL_CANCELLED;
	} else {
		return 0;
	}
	outcome_worker(entry, out);
	return 0;
}

/* End w as closed: the connection went before its result came. */
static void track_closed_locked(ncl_conn *c, ncl_watch *w, ncl_owner **gone)
{
	ncl_owner *o = w->owner;
	if (!o->abandoned) {
		char msg[640];
		snprintf(msg, sizeof msg, "the connection to broker %s was closed before the result came", c->url);
		ncl_outcome out = {NCL_CLOSED, NULL, strdup(msg), "", -1, NULL};
		o->ops->done(o, w, &out);
		free(out.error);
	}
	ncl_owner_unref_locked(o, gone);
}

static void track_reply(int rc, cJSON *reply, const node_err *err, void *arg)
{
	track_get *g = arg;
	ncl_conn *c = g->c;
	/* Read the entries before taking the lock: that is the slow part. */
	ncl_outcome *outs = rc == 0 ? calloc((size_t)g->n, sizeof *outs) : NULL;
	if (outs != NULL) {
		const cJSON *results = cJSON_GetObjectItemCaseSensitive(reply, "results");
		const cJSON *e = cJSON_IsArray(results) ? results->child : NULL;
		char buf[NCL_ID_MAX + 1];
		for (int i = 0; i < g->n && e != NULL; i++, e = e->next) {
			ncl_owner *o = g->w[i]->owner;
			const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "id"));
			if (id && strcmp(id, o->ops->id(o, g->w[i], buf, sizeof buf)) == 0) {
				ncl_outcome_read(e, &outs[i]);
				if (o->want_entry && outs[i].state != NCL_PENDING)
					outs[i].entry = cJSON_PrintUnformatted(e); /* NULL when out of memory: it prints less */
			}
		}
	}
	cJSON_Delete(reply);
	pthread_mutex_lock(&c->lock);
	ncl_owner *gone = NULL;
	ncl_watch *head = NULL, *tail = NULL;
	size_t again = 0;
	int closed = c->closing || rc == NODE_ECLOSED;
	for (int i = 0; i < g->n; i++) {
		ncl_watch *w = g->w[i];
		ncl_owner *o = w->owner;
		if (o->abandoned) {
			ncl_owner_unref_locked(o, &gone);
		} else if (outs != NULL && outs[i].state != NCL_PENDING) {
			o->ops->done(o, w, &outs[i]);
			ncl_owner_unref_locked(o, &gone);
		} else if (closed) {
			track_closed_locked(c, w, &gone);
		} else {
			w->tries += rc == 0;
			w->next = NULL;
			if (tail)
				tail->next = w;
			else
				head = w;
			tail = w;
			again++;
		}
	}
	track_requeue_locked(c, head, tail, again);
	c->gets--;
	if (rc == 0) {
		c->retry_ms = NCL_RETRY_MIN_MS;
		if (c->get_max < NCL_GET_MAX)
			c->get_max = c->get_max * 2 < NCL_GET_MAX ? c->get_max * 2 : NCL_GET_MAX;
	} else if (!closed) {
		if (rc == NODE_EREMOTE && err && strcmp(err->code, NODE_ERR_TOO_LARGE) == 0 && g->n > 1) {
			c->get_max = g->n / 2;
		} else {
			c->retry_at = node_clock_mono_ms() + c->retry_ms;
			c->retry_ms = c->retry_ms * 2 < NCL_RETRY_MAX_MS ? c->retry_ms * 2 : NCL_RETRY_MAX_MS;
			pthread_cond_signal(&c->wake);
		}
	}
	ncl_track_pump(c);
	pthread_mutex_unlock(&c->lock);
	if (outs != NULL) {
		for (int i = 0; i < g->n; i++) {
			free(outs[i].result); /* what no owner took */
			free(outs[i].error);
			cJSON_free(outs[i].entry);
		}
		free(outs);
	}
	free(g);
	ncl_owners_destroy(gone);
}

void ncl_track_forget_locked(ncl_conn *c, ncl_owner *o, ncl_owner **gone)
{
	o->abandoned = 1;
	ncl_watch **pp = &c->qhead, *last = NULL;
	while (*pp) {
		ncl_watch *w = *pp;
		if (w->owner == o) {
			*pp = w->next;
			c->queued--;
			ncl_owner_unref_locked(o, gone);
		} else {
			last = w;
			pp = &w->next;
		}
	}
	c->qtail = last;
}

void ncl_track_close_locked(ncl_conn *c, ncl_owner **gone)
{
	ncl_watch *w;
	while ((w = track_pop_locked(c)) != NULL)
		track_closed_locked(c, w, gone);
}
