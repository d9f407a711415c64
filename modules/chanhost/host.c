/* The channel host's shared state: its lock and the replies sent after it,
 * parked calls and their time limits, clients (cids) with the reply cached
 * for a retry, channel ends, and what a dropped connection takes away. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "chanhost/chanhost.h"
#include "core/clock.h"

int ch_host_init(ch_host *h, const ch_limits *lim, node_err *err)
{
	memset(h, 0, sizeof *h);
	h->lim = *lim;
	pthread_mutex_init(&h->lock, NULL);
	h->chans = ch_table_new();
	h->clients = ch_table_new();
	h->topics = ch_table_new();
	h->subs = ch_table_new();
	if (!h->chans || !h->clients || !h->topics || !h->subs) {
		ch_host_fini(h);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	return 0;
}

static void ch_free_client(void *v, void *arg)
{
	(void)arg;
	ch_client *cl = v;
	for (ch_end *e = cl->ends, *next; e; e = next) {
		next = e->next;
		free(e);
	}
	cJSON_Delete(cl->last_reply);
	free(cl);
}

static void ch_free_chan(void *v, void *arg)
{
	(void)arg;
	ch_chan *ch = v;
	cJSON_Delete(ch->buf);
	free(ch);
}

static void ch_free_topic(void *v, void *arg)
{
	(void)arg;
	ch_topic *t = v;
	for (ch_sub *s = t->subs, *next; s; s = next) {
		next = s->next;
		cJSON_Delete(s->buf);
		free(s);
	}
	free(t);
}

/* Parked calls must have been answered (ch_host_stop_parked) before. */
void ch_host_fini(ch_host *h)
{
	if (h->clients)
		ch_table_each(h->clients, ch_free_client, NULL);
	if (h->chans)
		ch_table_each(h->chans, ch_free_chan, NULL);
	if (h->topics)
		ch_table_each(h->topics, ch_free_topic, NULL);
	ch_table_free(h->clients);
	ch_table_free(h->chans);
	ch_table_free(h->topics);
	ch_table_free(h->subs);
	pthread_mutex_destroy(&h->lock);
}

void ch_lock(ch_host *h)
{
	pthread_mutex_lock(&h->lock);
}

void ch_unlock(ch_host *h)
{
	ch_out *out = h->out;
	h->out = NULL;
	pthread_mutex_unlock(&h->lock);
	/* Oldest first, so replies leave in the order they were decided. */
	ch_out *rev = NULL;
	while (out) {
		ch_out *next = out->next;
		out->next = rev;
		rev = out;
		out = next;
	}
	while (rev) {
		ch_out *next = rev->next;
		node_call_reply(rev->call, rev->reply);
		free(rev);
		rev = next;
	}
}

void ch_answer(ch_host *h, node_call *c, cJSON *reply)
{
	ch_out *o = malloc(sizeof *o);
	if (o == NULL) { /* send it now: slower under the lock, but never lost */
		node_call_reply(c, reply);
		return;
	}
	*o = (ch_out){c, reply, h->out};
	h->out = o;
}

void ch_answer_error(ch_host *h, node_call *c, const char *code, const char *fmt, ...)
{
	char text[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	ch_answer(h, c, node_reply_error(code, "%s", text));
}

ch_waiter *ch_waiter_new(int type, node_call *c, int nguards)
{
	ch_waiter *w = calloc(1, sizeof *w);
	if (w == NULL)
		return NULL;
	w->guards = calloc((size_t)(nguards > 0 ? nguards : 1), sizeof *w->guards);
	if (w->guards == NULL) {
		free(w);
		return NULL;
	}
	w->type = type;
	w->call = c;
	w->pipe = node_call_pipe(c);
	w->nguards = nguards;
	return w;
}

static void ch_parked_remove(ch_host *h, ch_waiter *w)
{
	if (w->prev == NULL && h->parked != w)
		return; /* never parked */
	if (w->prev)
		w->prev->next = w->next;
	else
		h->parked = w->next;
	if (w->next)
		w->next->prev = w->prev;
	w->prev = w->next = NULL;
	h->nparked--;
}

void ch_waiter_finish(ch_host *h, ch_waiter *w, cJSON *reply)
{
	ch_waiter_unlink(w);
	ch_parked_remove(h, w);
	for (int i = 0; i < w->nguards; i++)
		if (w->guards[i].owner)
			w->guards[i].owner->guard_refs--;
	if (w->cl) {
		if (w->cl->parked == w)
			w->cl->parked = NULL;
		/* Only the latest request of a client can be asked again. */
		if (w->seq == w->cl->last_seq && reply) {
			cJSON_Delete(w->cl->last_reply);
			w->cl->last_reply = cJSON_Duplicate(reply, 1);
		}
	}
	if (w->sub && w->sub->parked == w)
		w->sub->parked = NULL;
	if (reply)
		ch_answer(h, w->call, reply);
	cJSON_Delete(w->values);
	cJSON_Delete(w->alt_vals);
	free(w->guards);
	free(w);
}

void ch_waiter_fail(ch_host *h, ch_waiter *w, const char *code, const char *fmt, ...)
{
	char text[600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	cJSON *r = node_reply_error(code, "%s", text);
	if (w->type == CH_W_WRITE && r)
		cJSON_AddNumberToObject(r, "n", w->given);
	ch_waiter_finish(h, w, r);
}

static int ch_pipe_closed(const ch_host *h, uint32_t pipe)
{
	for (int i = 0; i < CH_CLOSED_PIPES; i++)
		if (h->closed_pipes[i] == pipe && pipe != 0)
			return 1;
	return 0;
}

/* The waiter's connection closed: the answer goes nowhere, so it is not
 * kept for a retry. A retry with the same seq does the request anew, except
 * that a write whose first values were taken answers how many, with again,
 * so the client sends only the rest. */
static void ch_waiter_orphan(ch_host *h, ch_waiter *w)
{
	ch_client *cl = w->cl;
	cJSON *keep = NULL;
	if (cl && w->seq == cl->last_seq && w->type == CH_W_WRITE && w->given > 0) {
		keep = node_reply_ok();
		cJSON_AddNumberToObject(keep, "n", w->given);
		cJSON_AddBoolToObject(keep, "again", 1);
	}
	w->seq = 0; /* not cached */
	ch_waiter_fail(h, w, "disconnected", "the connection closed");
	if (keep) {
		cJSON_Delete(cl->last_reply);
		cl->last_reply = keep;
	}
}

/* Timed waiters go first in the list, so the per-tick sweep for time
 * limits stops at the first untimed one. */
void ch_park(ch_host *h, ch_waiter *w)
{
	if (h->stopping) {
		ch_waiter_fail(h, w, NODE_ERR_SHUTDOWN, "the channel host is stopping");
		return;
	}
	if (h->nparked >= h->lim.max_parked) {
		ch_waiter_fail(h, w, NODE_ERR_LIMIT, "the channel host has %d parked requests (roles.chanhost.max_parked)",
		    h->lim.max_parked);
		return;
	}
	if (ch_pipe_closed(h, w->pipe)) { /* it closed while this request was on its way in */
		ch_waiter_orphan(h, w);
		return;
	}
	w->park_until_ms = node_clock_mono_ms() + h->lim.max_park_ms;
	if (w->deadline_ms > 0 || h->parked == NULL) {
		w->next = h->parked;
		if (h->parked)
			h->parked->prev = w;
		h->parked = w;
	} else {
		ch_waiter *p = h->parked;
		while (p->next && p->next->deadline_ms > 0)
			p = p->next;
		w->next = p->next;
		w->prev = p;
		if (p->next)
			p->next->prev = w;
		p->next = w;
	}
	h->nparked++;
	if (w->cl)
		w->cl->parked = w;
	for (int i = 0; i < w->nguards; i++) {
		ch_guard *g = &w->guards[i];
		if (g->ch == NULL)
			continue;
		ch_queue *q = g->dir == CH_READ ? &g->ch->readers : &g->ch->writers;
		g->link = (ch_link){w, i, q->tail, NULL};
		if (q->tail)
			q->tail->next = &g->link;
		else
			q->head = &g->link;
		q->tail = &g->link;
		q->n++;
		g->queued = 1;
		ch_trace(h, g->dir == CH_READ ? "block_read" : "block_write", g->ch->name, w->proc, g->dir, 0);
	}
}

/* The time limit ran out: reads fail "timeout", alternations answer
 * timeout:true, writes fail "timeout" with how many values were taken. */
static void ch_expire(ch_host *h, ch_waiter *w)
{
	if (w->type == CH_W_ALT) {
		cJSON *r = node_reply_ok();
		cJSON_AddBoolToObject(r, "timeout", 1);
		ch_waiter_finish(h, w, r);
		return;
	}
	ch_waiter_fail(h, w, NODE_ERR_TIMEOUT, "nothing happened on the channel in the time given");
}

/* Parked past max_park_ms: answer "again" so the client hears from us and
 * asks anew (it is not an error; values taken so far are counted). */
static void ch_again(ch_host *h, ch_waiter *w)
{
	cJSON *r = node_reply_ok();
	cJSON_AddBoolToObject(r, "again", 1);
	if (w->type == CH_W_WRITE)
		cJSON_AddNumberToObject(r, "n", w->given);
	else if (w->type == CH_W_READ || w->type == CH_W_SUB)
		cJSON_AddItemToObject(r, "values", cJSON_CreateArray());
	if (w->type == CH_W_SUB && w->sub)
		cJSON_AddNumberToObject(r, "dropped", (double)w->sub->dropped);
	ch_waiter_finish(h, w, r);
}

static void ch_sweep_client(void *v, void *arg)
{
	ch_host *h = ((void **)arg)[0];
	int64_t cut = *(int64_t *)((void **)arg)[1];
	ch_client *cl = v;
	if (cl->parked || cl->guard_refs > 0 || cl->last_ms > cut)
		return;
	while (cl->ends)
		ch_end_leave(h, cl, cl->ends->ch, cl->ends->dir, 0, NULL);
	ch_table_del(h->clients, cl->cid);
	ch_free_client(cl, NULL);
}

void ch_sweep(ch_host *h, int64_t now_ms, int full)
{
	for (ch_waiter *w = h->parked, *next; w && w->deadline_ms > 0; w = next) {
		next = w->next;
		if (w->deadline_ms <= now_ms)
			ch_expire(h, w);
	}
	if (!full)
		return;
	for (ch_waiter *w = h->parked, *next; w; w = next) {
		next = w->next;
		if (w->park_until_ms <= now_ms && w->deadline_ms == 0)
			ch_again(h, w);
	}
	int64_t cut = now_ms - (int64_t)h->lim.idle_s * 1000;
	void *args[2] = {h, &cut};
	ch_table_each(h->clients, ch_sweep_client, args);
}

static void ch_detach_client(void *v, void *arg)
{
	ch_client *cl = v;
	if (cl->pipe == *(uint32_t *)arg)
		cl->detached = 1;
}

/* A connection closed: its parked calls are answered (the answer goes
 * nowhere, but frees the call) so no value is handed to a dead reader and
 * no dead writer's value is taken. Clients keep their ends and cached
 * reply for a while: the same cid may come back over a new connection. */
void ch_disconnect(ch_host *h, uint32_t pipe)
{
	ch_lock(h);
	h->closed_pipes[h->closed_next] = pipe;
	h->closed_next = (h->closed_next + 1) % CH_CLOSED_PIPES;
	for (ch_waiter *w = h->parked, *next; w; w = next) {
		next = w->next;
		if (w->pipe == pipe)
			ch_waiter_orphan(h, w);
	}
	ch_subs_disconnect(h, pipe);
	ch_table_each(h->clients, ch_detach_client, &pipe);
	ch_unlock(h);
}

int ch_client_get(ch_host *h, const char *cid, ch_client **out, node_err *err)
{
	ch_client *cl = ch_table_get(h->clients, cid);
	if (cl == NULL) {
		if ((int)ch_table_count(h->clients) >= h->lim.max_clients)
			return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT,
			    "the channel host has %d clients (roles.chanhost.max_clients); try again when idle ones expire",
			    h->lim.max_clients);
		cl = calloc(1, sizeof *cl);
		if (cl == NULL || ch_table_put(h->clients, strcpy(cl->cid, cid), cl) != 0) {
			free(cl);
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		}
	}
	cl->last_ms = node_clock_mono_ms();
	cl->detached = 0;
	*out = cl;
	return 0;
}

static ch_end **ch_end_find(ch_client *cl, const ch_chan *ch, int dir)
{
	for (ch_end **p = &cl->ends; *p; p = &(*p)->next)
		if ((*p)->ch == ch && (*p)->dir == dir)
			return p;
	return NULL;
}

static int ch_restricted(const ch_chan *ch, int dir)
{
	if (ch->kind == CH_ONE2ONE)
		return 1;
	if (ch->kind == CH_ONE2ANY)
		return dir == CH_WRITE;
	if (ch->kind == CH_ANY2ONE)
		return dir == CH_READ;
	return 0;
}

static void ch_evict_one(void *v, void *arg)
{
	ch_client *cl = v;
	void **a = arg;
	ch_guard *g = a[1];
	if (cl->detached && cl->parked == NULL && cl->guard_refs == 0 && ch_end_find(cl, g->ch, g->dir))
		ch_end_leave(a[0], cl, g->ch, g->dir, 0, NULL);
}

/* The one end a one2one side allows belongs to a client whose connection
 * closed (a killed process): a new end takes its place rather than wait
 * for the idle sweep. */
static void ch_evict_detached(ch_host *h, ch_chan *ch, int dir)
{
	ch_guard g = {.ch = ch, .dir = dir};
	void *a[2] = {h, &g};
	ch_table_each(h->clients, ch_evict_one, a);
}

int ch_end_join(ch_host *h, ch_client *cl, ch_chan *ch, int dir, const char *proc, node_err *err)
{
	if (ch_end_find(cl, ch, dir))
		return 0;
	const char *side = dir == CH_READ ? "reader" : "writer";
	if (ch->closed[dir])
		return node_err_set(err, NODE_EINVAL, "retired", "channel %s: every %s retired; it takes no new %ss",
		    ch->name, side, side);
	if (ch_restricted(ch, dir) && ch->live[dir] > 0)
		ch_evict_detached(h, ch, dir);
	if (ch_restricted(ch, dir) && ch->live[dir] > 0)
		return node_err_set(err, NODE_EEXIST, "conflict", "channel %s is %s and already has its %s", ch->name,
		    ch_kind_name(ch->kind), side);
	ch_end *e = calloc(1, sizeof *e);
	if (e == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	*e = (ch_end){ch, dir, cl->ends};
	cl->ends = e;
	ch->live[dir]++;
	ch_trace(h, "end_created", ch->name, proc, dir, 0);
	return 0;
}

void ch_end_leave(ch_host *h, ch_client *cl, ch_chan *ch, int dir, int retire, const char *proc)
{
	ch_end **p = ch_end_find(cl, ch, dir);
	if (p == NULL && (!retire || ch->closed[dir]))
		return; /* not an end, or that side is gone already */
	if (p) {
		ch_end *e = *p;
		*p = e->next;
		free(e);
		ch->live[dir]--;
	}
	if (!retire)
		return;
	ch->retired[dir]++;
	ch_trace(h, "retire", ch->name, proc, dir, 0);
	if (ch->live[dir] == 0 && !ch->closed[dir]) {
		ch->closed[dir] = 1;
		ch_chan_settle(h, ch);
	}
}
