/* The broker's in-memory state (see store.h). Every task lives on exactly
 * one list, chosen by its state, so moving it is O(1); tasks are found by id
 * through a chained hash table that grows with the number of tasks. */
#include "store.h"

#include <stdlib.h>
#include <string.h>

static uint32_t store_hash(const char *s)
{
	uint32_t h = 2166136261u; /* FNV-1a */
	while (*s)
		h = (h ^ (unsigned char)*s++) * 16777619u;
	return h;
}

void broker_store_init(broker_store *s)
{
	memset(s, 0, sizeof *s);
	s->default_max_length = 10000000;
	s->default_max_deliveries = 5;
	s->default_result_ttl_ms = 86400000;
}

static void lane_push(broker_lane *l, broker_task *t)
{
	t->next = NULL;
	t->prev = l->tail;
	if (l->tail)
		l->tail->next = t;
	else
		l->head = t;
	l->tail = t;
}

static void lane_cut(broker_lane *l, broker_task *t)
{
	if (t->prev)
		t->prev->next = t->next;
	else
		l->head = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		l->tail = t->prev;
	t->prev = t->next = NULL;
}

static void free_task(broker_task *t)
{
	free(t->result);
	free(t);
}

void broker_store_free(broker_store *s)
{
	for (size_t i = 0; i < s->nslots; i++) {
		broker_task *t = s->slots[i];
		while (t) {
			broker_task *n = t->hnext;
			free_task(t);
			t = n;
		}
	}
	free(s->slots);
	for (broker_queue *q = s->queues, *n; q; q = n) {
		n = q->next;
		free(q->name);
		free(q);
	}
	for (broker_worker *w = s->workers, *n; w; w = n) {
		n = w->next;
		free(w->name);
		free(w->queues);
		free(w->host);
		free(w->tasks);
		free(w);
	}
	memset(s, 0, sizeof *s);
}

broker_task *broker_store_find(broker_store *s, const char *id)
{
	if (s->nslots == 0)
		return NULL;
	uint32_t h = store_hash(id);
	for (broker_task *t = s->slots[h & (s->nslots - 1)]; t; t = t->hnext)
		if (t->hash == h && strcmp(t->id, id) == 0)
			return t;
	return NULL;
}

static int store_grow(broker_store *s)
{
	size_t n = s->nslots ? s->nslots * 2 : 1024;
	broker_task **ns = calloc(n, sizeof *ns);
	if (ns == NULL)
		return -1;
	for (size_t i = 0; i < s->nslots; i++) {
		broker_task *t = s->slots[i];
		while (t) {
			broker_task *next = t->hnext;
			size_t k = t->hash & (n - 1);
			t->hnext = ns[k];
			ns[k] = t;
			t = next;
		}
	}
	free(s->slots);
	s->slots = ns;
	s->nslots = n;
	return 0;
}

static char *put_str(char **at, const char *s)
{
	char *start = *at;
	size_t n = strlen(s) + 1;
	memcpy(start, s, n);
	*at += n;
	return start;
}

broker_task *broker_store_add(broker_store *s, const char *id, const char *name, const char *args,
    const char *kwargs, const char *options, broker_queue *q, int priority, int64_t now_ms)
{
	if (s->ntasks + 1 > s->nslots && store_grow(s) != 0)
		return NULL;
	kwargs = kwargs ? kwargs : "";
	options = options ? options : "";
	size_t n = strlen(id) + strlen(name) + strlen(args) + strlen(kwargs) + strlen(options) + 5;
	broker_task *t = calloc(1, sizeof *t + n);
	if (t == NULL)
		return NULL;
	char *at = t->id;
	put_str(&at, id);
	t->name = put_str(&at, name);
	t->args = put_str(&at, args);
	t->kwargs = put_str(&at, kwargs);
	t->options = put_str(&at, options);
	t->queue = q;
	t->priority = (uint8_t)priority;
	t->state = BROKER_COMMITTING;
	t->submitted_ms = now_ms;
	t->hash = store_hash(id);
	size_t k = t->hash & (s->nslots - 1);
	t->hnext = s->slots[k];
	s->slots[k] = t;
	s->ntasks++;
	return t;
}

void broker_store_unlink(broker_store *s, broker_task *t)
{
	(void)s;
	broker_queue *q = t->queue;
	switch (t->state) {
	case BROKER_QUEUED:
		lane_cut(&q->lane[t->priority], t);
		q->depth--;
		break;
	case BROKER_STARTED:
		lane_cut(&t->worker->leased, t);
		t->worker->running--;
		q->leased--;
		t->worker = NULL;
		break;
	case BROKER_SUCCEEDED:
	case BROKER_FAILED:
	case BROKER_REVOKED:
		lane_cut(&q->finished, t);
		break;
	case BROKER_DEAD:
		lane_cut(&q->dead, t);
		q->dead_count--;
		break;
	default:
		break;
	}
}

void broker_store_remove(broker_store *s, broker_task *t)
{
	broker_store_unlink(s, t);
	broker_task **p = &s->slots[t->hash & (s->nslots - 1)];
	while (*p && *p != t)
		p = &(*p)->hnext;
	if (*p)
		*p = t->hnext;
	s->ntasks--;
	free_task(t);
}

broker_queue *broker_store_queue(broker_store *s, const char *name, int create)
{
	for (broker_queue *q = s->queues; q; q = q->next)
		if (strcmp(q->name, name) == 0)
			return q;
	if (!create)
		return NULL;
	broker_queue *q = calloc(1, sizeof *q);
	if (q == NULL || (q->name = strdup(name)) == NULL) {
		free(q);
		return NULL;
	}
	q->max_length = s->default_max_length;
	q->max_deliveries = s->default_max_deliveries;
	q->result_ttl_ms = s->default_result_ttl_ms;
	/* Keep queues sorted by name: listings are stable and readable. */
	broker_queue **p = &s->queues;
	while (*p && strcmp((*p)->name, name) < 0)
		p = &(*p)->next;
	q->next = *p;
	*p = q;
	return q;
}

void broker_store_enqueue(broker_store *s, broker_task *t)
{
	broker_store_unlink(s, t);
	t->state = BROKER_QUEUED;
	lane_push(&t->queue->lane[t->priority], t);
	t->queue->depth++;
}

broker_task *broker_store_dequeue(broker_store *s, broker_queue *q)
{
	(void)s;
	for (int p = BROKER_PRIORITIES - 1; p >= 0; p--) {
		broker_task *t = q->lane[p].head;
		if (t) {
			lane_cut(&q->lane[p], t);
			q->depth--;
			t->state = BROKER_COMMITTING; /* off every list until leased */
			return t;
		}
	}
	return NULL;
}

void broker_store_lease(broker_store *s, broker_task *t, broker_worker *w, int64_t now_ms)
{
	broker_store_unlink(s, t);
	t->state = BROKER_STARTED;
	t->worker = w;
	t->ran_by = w;
	t->started_ms = now_ms;
	t->deliveries++;
	lane_push(&w->leased, t);
	w->running++;
	t->queue->leased++;
}

void broker_store_finish(broker_store *s, broker_task *t, int ok, char *result, int64_t now_ms)
{
	broker_store_unlink(s, t);
	free(t->result);
	t->result = result;
	t->state = ok ? BROKER_SUCCEEDED : BROKER_FAILED;
	t->finished_ms = now_ms;
	lane_push(&t->queue->finished, t);
	if (ok)
		t->queue->succeeded++;
	else
		t->queue->failed++;
	broker_queue_count(t->queue, 0, now_ms);
}

void broker_store_unfinish(broker_store *s, broker_task *t)
{
	if (t->state == BROKER_SUCCEEDED)
		t->queue->succeeded--;
	else if (t->state == BROKER_FAILED)
		t->queue->failed--;
	else if (t->state == BROKER_REVOKED)
		t->queue->revoked--;
	free(t->result);
	t->result = NULL;
	t->finished_ms = 0;
	broker_store_enqueue(s, t);
}

/* On the finished list, so the queue's result_ttl_s forgets it like a
 * result; not counted in rate_out, which measures work done. */
void broker_store_revoke(broker_store *s, broker_task *t, int64_t now_ms)
{
	broker_store_unlink(s, t);
	t->state = BROKER_REVOKED;
	t->finished_ms = now_ms;
	lane_push(&t->queue->finished, t);
	t->queue->revoked++;
}

void broker_store_bury(broker_store *s, broker_task *t, int64_t now_ms)
{
	broker_store_unlink(s, t);
	t->state = BROKER_DEAD;
	t->finished_ms = now_ms;
	lane_push(&t->queue->dead, t);
	t->queue->dead_count++;
}

broker_worker *broker_store_worker(broker_store *s, const char *name, int create)
{
	for (broker_worker *w = s->workers; w; w = w->next)
		if (strcmp(w->name, name) == 0)
			return w;
	if (!create)
		return NULL;
	broker_worker *w = calloc(1, sizeof *w);
	if (w == NULL || (w->name = strdup(name)) == NULL) {
		free(w);
		return NULL;
	}
	w->next = s->workers;
	s->workers = w;
	return w;
}

/* Rates: ten one-second buckets; a bucket is cleared when its second comes round again. */
static void rate_advance(broker_queue *q, int64_t now_ms)
{
	int64_t sec = now_ms / 1000;
	if (q->rate_sec == 0 || sec - q->rate_sec >= 10) {
		memset(q->rate_in, 0, sizeof q->rate_in);
		memset(q->rate_out, 0, sizeof q->rate_out);
	} else {
		for (int64_t x = q->rate_sec + 1; x <= sec; x++)
			q->rate_in[x % 10] = q->rate_out[x % 10] = 0;
	}
	q->rate_sec = sec;
}

void broker_queue_count(broker_queue *q, int in, int64_t now_ms)
{
	rate_advance(q, now_ms);
	if (in)
		q->rate_in[(now_ms / 1000) % 10]++;
	else
		q->rate_out[(now_ms / 1000) % 10]++;
}

double broker_queue_rate(const broker_queue *q, int in, int64_t now_ms)
{
	int64_t sec = now_ms / 1000;
	if (q->rate_sec == 0 || sec - q->rate_sec >= 10)
		return 0;
	uint64_t sum = 0;
	for (int64_t x = sec - 9; x <= sec; x++) {
		if (x > q->rate_sec)
			continue;
		sum += in ? q->rate_in[x % 10] : q->rate_out[x % 10];
	}
	return (double)sum / 10.0;
}

const char *broker_state_name(int state)
{
	static const char *const names[] = {"queued", "queued", "started", "succeeded", "failed", "dead", "revoked"};
	return state >= 0 && state <= BROKER_REVOKED ? names[state] : "pending";
}
