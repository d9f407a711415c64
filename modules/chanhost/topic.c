/* Publish/subscribe on the channel host: every subscriber of a topic gets
 * its own copy of every value published after it subscribed, kept in its
 * own bounded buffer (the oldest dropped and counted past the limit) and
 * handed out by long-polling pub.next, so a slow subscriber never slows a
 * publisher. Called under the host lock. */
#include <stdlib.h>
#include <string.h>

#include "chanhost/chanhost.h"

static void ch_sub_deliver(ch_host *h, ch_sub *s, int max)
{
	ch_waiter *w = s->parked;
	cJSON *vals = cJSON_CreateArray();
	size_t bytes = 0;
	for (int n = 0; n < max && s->buf->child; n++) {
		size_t sz = ch_value_size(s->buf->child) + 1;
		if (n > 0 && bytes + sz > h->lim.max_reply)
			break; /* the rest waits for the next pub.next */
		bytes += sz;
		cJSON_AddItemToArray(vals, cJSON_DetachItemViaPointer(s->buf, s->buf->child));
		s->nbuf--;
	}
	cJSON *r = node_reply_ok();
	cJSON_AddItemToObject(r, "values", vals);
	cJSON_AddNumberToObject(r, "dropped", (double)s->dropped);
	if (w)
		ch_waiter_finish(h, w, r);
	else
		cJSON_Delete(r);
}

int ch_publish(ch_host *h, const char *topic, const cJSON *values, int *subscribers, node_err *err)
{
	ch_topic *t = ch_table_get(h->topics, topic);
	*subscribers = t ? t->nsubs : 0;
	if (t == NULL)
		return 0;
	int nvals = cJSON_GetArraySize(values);
	for (ch_sub *s = t->subs; s; s = s->next) {
		/* Values that would be dropped at once are counted, not copied. */
		const cJSON *v = values->child;
		for (int skip = nvals - h->lim.sub_buffer; skip > 0; skip--, v = v->next) {
			s->dropped++;
			t->dropped++;
		}
		for (; v; v = v->next) {
			cJSON *copy = cJSON_Duplicate(v, 1);
			if (copy == NULL)
				return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory copying a value");
			cJSON_AddItemToArray(s->buf, copy);
			if (++s->nbuf > h->lim.sub_buffer) {
				cJSON_Delete(cJSON_DetachItemViaPointer(s->buf, s->buf->child));
				s->nbuf--;
				s->dropped++;
				t->dropped++;
			}
		}
		if (s->parked)
			ch_sub_deliver(h, s, s->parked->max);
	}
	t->published += (uint64_t)nvals;
	return 0;
}

int ch_subscribe(ch_host *h, const char *topic, const char *sub, uint32_t pipe, node_err *err)
{
	ch_sub *s = ch_table_get(h->subs, sub);
	if (s && strcmp(s->topic->name, topic) != 0)
		return node_err_set(err, NODE_EEXIST, "conflict", "subscriber %s is subscribed to %s", sub, s->topic->name);
	if (s) { /* subscribing again: it now lives on this connection */
		s->pipe = pipe;
		return 0;
	}
	if ((int)ch_table_count(h->subs) >= h->lim.max_clients)
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "the channel host has %d subscribers (roles.chanhost.max_clients)",
		    h->lim.max_clients);
	ch_topic *t = ch_table_get(h->topics, topic);
	if (t == NULL) {
		t = calloc(1, sizeof *t);
		if (t == NULL || ch_table_put(h->topics, strcpy(t->name, topic), t) != 0) {
			free(t);
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		}
	}
	s = calloc(1, sizeof *s);
	if (s)
		s->buf = cJSON_CreateArray();
	if (s == NULL || s->buf == NULL || ch_table_put(h->subs, strcpy(s->id, sub), s) != 0) {
		if (s)
			cJSON_Delete(s->buf);
		free(s);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	s->topic = t;
	s->pipe = pipe;
	s->next = t->subs;
	if (t->subs)
		t->subs->prev = s;
	t->subs = s;
	t->nsubs++;
	return 0;
}

void ch_unsubscribe(ch_host *h, ch_sub *s)
{
	if (s->parked)
		ch_waiter_fail(h, s->parked, "not_found", "subscriber %s was removed", s->id);
	ch_topic *t = s->topic;
	if (s->prev)
		s->prev->next = s->next;
	else
		t->subs = s->next;
	if (s->next)
		s->next->prev = s->prev;
	t->nsubs--;
	ch_table_del(h->subs, s->id);
	cJSON_Delete(s->buf);
	free(s);
	/* Topics live while they have subscribers, so unique topic names
	 * cannot pile up. */
	if (t->nsubs == 0) {
		ch_table_del(h->topics, t->name);
		free(t);
	}
}

int ch_sub_next(ch_host *h, ch_waiter *w, const char *sub, node_err *err)
{
	ch_sub *s = ch_table_get(h->subs, sub);
	if (s == NULL)
		return node_err_set(err, NODE_ENOTFOUND, NODE_ERR_NOT_FOUND,
		    "no subscriber %s (it was removed when its connection closed; subscribe again)", sub);
	s->pipe = w->pipe;
	if (s->parked)
		ch_waiter_fail(h, s->parked, "replaced", "a newer pub.next of subscriber %s took this one's place", sub);
	w->sub = s;
	s->parked = w;
	if (s->nbuf > 0) {
		ch_sub_deliver(h, s, w->max);
		return 1;
	}
	return 0;
}

static void ch_sub_gone(void *v, void *arg)
{
	void **a = arg;
	ch_sub *s = v;
	if (s->pipe == *(uint32_t *)a[1])
		ch_unsubscribe(a[0], s);
}

void ch_subs_disconnect(ch_host *h, uint32_t pipe)
{
	void *a[2] = {h, &pipe};
	ch_table_each(h->subs, ch_sub_gone, a);
}

static void ch_topic_json(void *v, void *arg)
{
	ch_topic *t = v;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "topic", t->name);
	cJSON_AddNumberToObject(o, "subscribers", t->nsubs);
	cJSON_AddNumberToObject(o, "published", (double)t->published);
	cJSON_AddNumberToObject(o, "dropped", (double)t->dropped);
	cJSON_AddItemToArray(arg, o);
}

void ch_topics_json(ch_host *h, cJSON *arr)
{
	ch_table_each(h->topics, ch_topic_json, arr);
}
