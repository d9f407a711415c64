/* Channels of the channel host and how parked ends meet: a write hands its
 * values to parked readers or the buffer, a read takes from the buffer or
 * parked writers, an alternation fires exactly one ready guard. Values move
 * between cJSON arrays without being copied. Called under the host lock. */
#include <stdlib.h>
#include <string.h>

#include "chanhost/chanhost.h"

static const char *const ch_kinds[] = {"any2any", "one2one", "one2any", "any2one"};

const char *ch_kind_name(ch_kind k)
{
	return ch_kinds[k];
}

int ch_kind_parse(const char *s, ch_kind *out)
{
	for (int i = 0; i < 4; i++)
		if (s && strcmp(s, ch_kinds[i]) == 0) {
			*out = (ch_kind)i;
			return 0;
		}
	return -1;
}

int ch_chan_create(ch_host *h, const char *name, ch_kind kind, int capacity, int declared, ch_chan **out, int *created,
    node_err *err)
{
	ch_chan *ch = ch_table_get(h->chans, name);
	*created = 0;
	if (ch) {
		*out = ch;
		if (ch->kind != kind || ch->capacity != capacity)
			return node_err_set(err, NODE_EEXIST, "conflict", "channel %s exists as %s with capacity %d", name,
			    ch_kind_name(ch->kind), ch->capacity);
		return 0;
	}
	if ((int)ch_table_count(h->chans) >= h->lim.max_channels)
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT,
		    "the channel host has %d channels (roles.chanhost.max_channels); delete some", h->lim.max_channels);
	ch = calloc(1, sizeof *ch);
	if (ch)
		ch->buf = cJSON_CreateArray();
	if (ch == NULL || ch->buf == NULL || ch_table_put(h->chans, strcpy(ch->name, name), ch) != 0) {
		if (ch)
			cJSON_Delete(ch->buf);
		free(ch);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	ch->kind = kind;
	ch->capacity = capacity;
	ch->declared = declared;
	*out = ch;
	*created = 1;
	ch_trace(h, "channel_created", name, NULL, -1, 0);
	if (h->on_create)
		h->on_create(ch, h->hook_arg);
	return 0;
}

int ch_chan_get(ch_host *h, const char *name, int create, ch_chan **out, node_err *err)
{
	*out = ch_table_get(h->chans, name);
	if (*out)
		return 0;
	if (!create || !h->lim.create)
		return node_err_set(err, NODE_ENOTFOUND, NODE_ERR_NOT_FOUND, "no channel %s on this host%s", name,
		    h->lim.create ? "" : " (roles.chanhost.create is false: channels must be declared)");
	int created;
	return ch_chan_create(h, name, CH_ANY2ANY, 0, 0, out, &created, err);
}

/* Every waiter parked on the channel is answered with code (an
 * alternation with one guard here fails as a whole). */
static void ch_fail_queue(ch_host *h, ch_queue *q, const char *code, const char *why)
{
	while (q->head)
		ch_waiter_fail(h, q->head->w, code, "%s", why);
}

void ch_chan_poison(ch_host *h, ch_chan *ch, const char *proc)
{
	char why[300];
	snprintf(why, sizeof why, "channel %s is poisoned", ch->name);
	ch_trace(h, "poison", ch->name, proc, -1, 0);
	ch->poisoned = 1;
	cJSON_Delete(ch->buf);
	ch->buf = cJSON_CreateArray();
	ch->nbuf = 0;
	ch_fail_queue(h, &ch->readers, "poisoned", why);
	ch_fail_queue(h, &ch->writers, "poisoned", why);
}

static void ch_drop_ends(void *v, void *arg)
{
	ch_client *cl = v;
	for (ch_end **p = &cl->ends; *p;) {
		if ((*p)->ch == arg) {
			ch_end *e = *p;
			*p = e->next;
			free(e);
		} else {
			p = &(*p)->next;
		}
	}
}

void ch_chan_delete(ch_host *h, ch_chan *ch)
{
	char why[300];
	snprintf(why, sizeof why, "channel %s was deleted", ch->name);
	ch_fail_queue(h, &ch->readers, "deleted", why);
	ch_fail_queue(h, &ch->writers, "deleted", why);
	ch_table_each(h->clients, ch_drop_ends, ch);
	if (h->on_delete)
		h->on_delete(ch, h->hook_arg);
	ch_table_del(h->chans, ch->name);
	cJSON_Delete(ch->buf);
	free(ch);
}

void ch_chan_settle(ch_host *h, ch_chan *ch)
{
	char why[300];
	if (ch->closed[CH_WRITE] && ch->nbuf == 0 && ch->writers.head == NULL) {
		snprintf(why, sizeof why, "channel %s: every writer retired", ch->name);
		ch_fail_queue(h, &ch->readers, "retired", why);
	}
	if (ch->closed[CH_READ]) {
		snprintf(why, sizeof why, "channel %s: every reader retired", ch->name);
		ch_fail_queue(h, &ch->writers, "retired", why);
	}
}

void ch_waiter_unlink(ch_waiter *w)
{
	for (int i = 0; i < w->nguards; i++) {
		ch_guard *g = &w->guards[i];
		if (!g->queued)
			continue;
		ch_queue *q = g->dir == CH_READ ? &g->ch->readers : &g->ch->writers;
		if (g->link.prev)
			g->link.prev->next = g->link.next;
		else
			q->head = g->link.next;
		if (g->link.next)
			g->link.next->prev = g->link.prev;
		else
			q->tail = g->link.prev;
		q->n--;
		g->queued = 0;
	}
}

/* The first parked end in q that is not w itself (an alternation may
 * offer to write and to read the same channel). */
static ch_link *ch_first_other(ch_queue *q, const ch_waiter *w)
{
	ch_link *l = q->head;
	while (l && l->w == w)
		l = l->next;
	return l;
}

static cJSON *ch_detach_first(cJSON *arr)
{
	return cJSON_DetachItemViaPointer(arr, arr->child);
}

static void ch_finish_alt(ch_host *h, ch_waiter *w, int guard, cJSON *value)
{
	ch_guard *g = &w->guards[guard];
	cJSON *r = node_reply_ok();
	cJSON_AddNumberToObject(r, "index", guard);
	cJSON_AddStringToObject(r, "chan", g->ch->name);
	if (value)
		cJSON_AddItemToObject(r, "value", value);
	ch_trace(h, g->dir == CH_READ ? "done_read" : "done_write", g->ch->name, w->proc, g->dir, 1);
	ch_waiter_finish(h, w, r);
}

static void ch_finish_read(ch_host *h, ch_waiter *w, ch_chan *ch)
{
	cJSON *r = node_reply_ok();
	int n = cJSON_GetArraySize(w->values);
	cJSON_AddItemToObject(r, "values", w->values);
	w->values = NULL;
	ch_trace(h, "done_read", ch->name, w->proc, CH_READ, n);
	ch_waiter_finish(h, w, r);
}

static void ch_finish_write(ch_host *h, ch_waiter *w, ch_chan *ch)
{
	cJSON *r = node_reply_ok();
	cJSON_AddNumberToObject(r, "n", w->given);
	ch_trace(h, "done_write", ch->name, w->proc, CH_WRITE, w->given);
	ch_waiter_finish(h, w, r);
}

/* The value a parked writer would give next. */
static const cJSON *ch_offered(const ch_link *l)
{
	if (l->w->type == CH_W_ALT)
		return cJSON_GetArrayItem(l->w->alt_vals, l->guard);
	return l->w->values->child;
}

/* Take one value a parked writer offers; the writer is answered when it
 * has nothing left. */
static cJSON *ch_take_from(ch_host *h, ch_chan *ch, ch_link *l)
{
	ch_waiter *ww = l->w;
	ch->taken++;
	ch->written++;
	if (ww->type == CH_W_ALT) {
		cJSON *v = cJSON_DetachItemFromArray(ww->alt_vals, l->guard);
		cJSON_InsertItemInArray(ww->alt_vals, l->guard, cJSON_CreateNull());
		ch_finish_alt(h, ww, l->guard, NULL);
		return v;
	}
	cJSON *v = ch_detach_first(ww->values);
	ww->given++;
	if (ww->values->child == NULL)
		ch_finish_write(h, ww, ch);
	return v;
}

/* Move what parked writers offer into the buffer while it has room. */
static void ch_refill(ch_host *h, ch_chan *ch, const ch_waiter *self)
{
	ch_link *l;
	while (ch->nbuf < ch->capacity && (l = ch_first_other(&ch->writers, self)) != NULL) {
		cJSON *v = ch_take_from(h, ch, l);
		ch->taken--; /* buffered, not yet read */
		cJSON_AddItemToArray(ch->buf, v);
		ch->nbuf++;
	}
}

static size_t ch_str_size(const char *s)
{
	size_t n = 2;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		n += c < 0x20 ? 6 : (c == '"' || c == '\\') ? 2 : 1;
	}
	return n;
}

size_t ch_value_size(const cJSON *v)
{
	if (cJSON_IsString(v))
		return ch_str_size(v->valuestring);
	if (cJSON_IsNumber(v))
		return 32; /* cJSON prints at most 17 significant digits and an exponent */
	if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
		return 5;
	size_t n = 2;
	for (const cJSON *c = v->child; c; c = c->next)
		n += ch_value_size(c) + 1 + (c->string ? ch_str_size(c->string) + 1 : 0);
	return n;
}

int ch_values_fit(const ch_host *h, const cJSON *values, node_err *err)
{
	int i = 0;
	for (const cJSON *v = values->child; v; v = v->next, i++) {
		size_t n = ch_value_size(v);
		if (n > h->lim.max_reply)
			return node_err_set(err, NODE_ELIMIT, NODE_ERR_TOO_LARGE,
			    "value %d may take %zu bytes when sent on, more than an answer can hold (limits.max_message)", i, n);
	}
	return 0;
}

/* Another value fits in an answer holding *bytes already (the first always
 * does: writes refuse values that could not go alone). */
static int ch_fits(const ch_host *h, const cJSON *v, size_t *bytes, int n)
{
	size_t sz = ch_value_size(v) + 1;
	if (n > 0 && *bytes + sz > h->lim.max_reply)
		return 0;
	*bytes += sz;
	return 1;
}

/* Up to max values for a reader, as many as one answer holds: the buffer
 * first, then parked writers. */
static int ch_collect(ch_host *h, ch_chan *ch, const ch_waiter *self, cJSON *dst, int max)
{
	int n = 0;
	size_t bytes = 0;
	while (n < max && ch->nbuf > 0 && ch_fits(h, ch->buf->child, &bytes, n)) {
		cJSON_AddItemToArray(dst, ch_detach_first(ch->buf));
		ch->nbuf--;
		ch->taken++;
		n++;
	}
	ch_refill(h, ch, self);
	ch_link *l;
	while (n < max && ch->nbuf == 0 && (l = ch_first_other(&ch->writers, self)) != NULL &&
	    ch_fits(h, ch_offered(l), &bytes, n)) {
		cJSON_AddItemToArray(dst, ch_take_from(h, ch, l));
		n++;
	}
	return n;
}

/* Hand values of a write to a parked reader: a read takes what it can, an
 * alternation one. Returns how many it took. */
static int ch_give_to(ch_host *h, ch_chan *ch, ch_link *l, cJSON *src)
{
	ch_waiter *rw = l->w;
	if (rw->type == CH_W_ALT) {
		ch->taken++;
		ch_finish_alt(h, rw, l->guard, ch_detach_first(src));
		return 1;
	}
	int n = 0;
	size_t bytes = 0;
	while (n < rw->max && src->child && ch_fits(h, src->child, &bytes, n)) {
		cJSON_AddItemToArray(rw->values, ch_detach_first(src));
		ch->taken++;
		n++;
	}
	ch_finish_read(h, rw, ch);
	return n;
}

static int ch_check(ch_host *h, ch_waiter *w, ch_chan *ch, int dir)
{
	if (ch->poisoned) {
		ch_waiter_fail(h, w, "poisoned", "channel %s is poisoned", ch->name);
		return 1;
	}
	if (ch->closed[!dir]) {
		if (dir == CH_READ && (ch->nbuf > 0 || ch->writers.head))
			return 0;
		ch_waiter_fail(h, w, "retired", "channel %s: every %s retired", ch->name, dir == CH_READ ? "writer" : "reader");
		return 1;
	}
	return 0;
}

int ch_write_try(ch_host *h, ch_waiter *w)
{
	ch_chan *ch = w->guards[0].ch;
	if (ch_check(h, w, ch, CH_WRITE))
		return 1;
	while (w->values->child) {
		ch_link *l = ch_first_other(&ch->readers, w);
		if (l) {
			int k = ch_give_to(h, ch, l, w->values);
			w->given += k;
			ch->written += (uint64_t)k;
			continue;
		}
		if (ch->nbuf >= ch->capacity)
			break;
		cJSON_AddItemToArray(ch->buf, ch_detach_first(w->values));
		ch->nbuf++;
		ch->written++;
		w->given++;
	}
	if (w->values->child)
		return 0;
	ch_finish_write(h, w, ch);
	return 1;
}

int ch_read_try(ch_host *h, ch_waiter *w)
{
	ch_chan *ch = w->guards[0].ch;
	if (ch_check(h, w, ch, CH_READ))
		return 1;
	if (ch_collect(h, ch, w, w->values, w->max) > 0) {
		ch_finish_read(h, w, ch);
		return 1;
	}
	return 0;
}

/* One guard, if it can fire now: 1 fired (or failed), 0 not ready. */
static int ch_alt_guard(ch_host *h, ch_waiter *w, int i)
{
	ch_guard *g = &w->guards[i];
	ch_chan *ch = g->ch;
	if (ch_check(h, w, ch, g->dir))
		return 1;
	if (g->dir == CH_READ) {
		cJSON *one = cJSON_CreateArray();
		if (ch_collect(h, ch, w, one, 1) == 0) {
			cJSON_Delete(one);
			return 0;
		}
		cJSON *v = ch_detach_first(one);
		cJSON_Delete(one);
		ch_finish_alt(h, w, i, v);
		return 1;
	}
	ch_link *l = ch_first_other(&ch->readers, w);
	if (l == NULL && ch->nbuf >= ch->capacity)
		return 0;
	cJSON *v = cJSON_DetachItemFromArray(w->alt_vals, i);
	cJSON_InsertItemInArray(w->alt_vals, i, cJSON_CreateNull());
	ch->written++;
	if (l) {
		cJSON *src = cJSON_CreateArray();
		cJSON_AddItemToArray(src, v);
		ch_give_to(h, ch, l, src);
		cJSON_Delete(src);
	} else {
		cJSON_AddItemToArray(ch->buf, v);
		ch->nbuf++;
	}
	ch_finish_alt(h, w, i, NULL);
	return 1;
}

int ch_alt_try(ch_host *h, ch_waiter *w, int priority)
{
	int n = w->nguards;
	int start = priority ? 0 : (int)(w->cl->rotor++ % (unsigned)n);
	for (int k = 0; k < n; k++)
		if (ch_alt_guard(h, w, (start + k) % n))
			return 1;
	return 0;
}

cJSON *ch_chan_json(const ch_chan *ch)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", ch->name);
	cJSON_AddStringToObject(o, "kind", ch_kind_name(ch->kind));
	cJSON_AddNumberToObject(o, "capacity", ch->capacity);
	cJSON_AddNumberToObject(o, "buffered", ch->nbuf);
	cJSON_AddNumberToObject(o, "readers", ch->live[CH_READ]);
	cJSON_AddNumberToObject(o, "writers", ch->live[CH_WRITE]);
	cJSON_AddNumberToObject(o, "readers_waiting", ch->readers.n);
	cJSON_AddNumberToObject(o, "writers_waiting", ch->writers.n);
	cJSON_AddNumberToObject(o, "written", (double)ch->written);
	cJSON_AddNumberToObject(o, "read", (double)ch->taken);
	cJSON_AddBoolToObject(o, "poisoned", ch->poisoned);
	cJSON_AddBoolToObject(o, "retired", ch->closed[CH_READ] || ch->closed[CH_WRITE]);
	cJSON_AddBoolToObject(o, "declared", ch->declared);
	return o;
}
