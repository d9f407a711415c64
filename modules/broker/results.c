/* The broker's result ops: get (parked until every listed task has
 * finished: succeeded, failed, dead or revoked) and status, and waking the
 * gets that watch a task. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "broker.h"
#include "core/log.h"

/* ---- results: get, status ---- */

static int finished(const broker_task *t)
{
	return !t->pending && (t->state == BROKER_SUCCEEDED || t->state == BROKER_FAILED || t->state == BROKER_DEAD ||
	    t->state == BROKER_REVOKED);
}

/* A run of 16 or more digits: a number a double may not hold exactly. */
static int long_number(const char *s)
{
	int run = 0;
	for (; *s; s++) {
		run = (*s >= '0' && *s <= '9') ? run + 1 : 0;
		if (run >= 16)
			return 1;
	}
	return 0;
}

static void add_time(cJSON *o, const char *k, int64_t ms)
{
	if (ms)
		cJSON_AddNumberToObject(o, k, (double)ms);
}

/* Who ran it and when, as far as known (all from t: no lookups). */
static void add_run(cJSON *o, const broker_task *t)
{
	if (t->ran_by)
		cJSON_AddStringToObject(o, "worker", t->ran_by->name);
	add_time(o, "started_ms", t->started_ms);
	add_time(o, "finished_ms", t->finished_ms);
}

/* The state a client sees: an outcome not on disk yet is not shown. */
static int shown_state(const broker_task *t)
{
	if (!t->pending)
		return t->state;
	return t->state == BROKER_REVOKED ? BROKER_QUEUED : BROKER_STARTED;
}

static cJSON *result_of(broker *b, const char *id)
{
	cJSON *o = cJSON_CreateObject();
	broker_task *t = broker_store_find(&b->st, id);
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddStringToObject(o, "state", t ? broker_state_name(shown_state(t)) : "pending");
	if (t == NULL || !finished(t))
		return o; /* nothing to show until its outcome is on disk */
	if (t->state == BROKER_SUCCEEDED) {
		cJSON_AddRawToObject(o, "value", t->result);
		if (long_number(t->result)) /* readers parse numbers as doubles: give them the text */
			cJSON_AddStringToObject(o, "value_json", t->result);
	}
	else if (t->state == BROKER_FAILED)
		cJSON_AddStringToObject(o, "error", t->result ? t->result : "");
	else if (t->state == BROKER_DEAD)
		cJSON_AddStringToObject(o, "error", "dead letter: the task was delivered too often without a result");
	else if (t->state == BROKER_REVOKED)
		cJSON_AddStringToObject(o, "error", "revoked before it started");
	add_run(o, t); /* client statistics: where and how long it ran */
	return o;
}

static void get_free(broker_get *g)
{
	for (int i = 0; i < g->n; i++)
		free(g->ids[i]);
	free(g->ids);
	free(g);
}

/* Lock held: answer g with the state of every id and forget it. */
void broker_get_answer(broker *b, broker_get *g)
{
	for (int i = 0; i < g->n; i++) { /* detach from tasks still watched */
		broker_task *t = broker_store_find(&b->st, g->ids[i]);
		broker_watch **p = t ? &t->watchers : NULL;
		while (p && *p) {
			if ((*p)->get == g) {
				broker_watch *x = *p;
				*p = x->next;
				free(x);
			} else {
				p = &(*p)->next;
			}
		}
	}
	if (g->prev)
		g->prev->next = g->next;
	else if (b->gets == g)
		b->gets = g->next;
	if (g->next)
		g->next->prev = g->prev;
	cJSON *r = node_reply_ok(), *list = cJSON_AddArrayToObject(r, "results");
	for (int i = 0; i < g->n; i++)
		cJSON_AddItemToArray(list, result_of(b, g->ids[i]));
	node_call_reply(g->call, r);
	get_free(g);
}

void broker_notify(broker *b, broker_task *t)
{
	broker_watch *w = t->watchers;
	t->watchers = NULL;
	while (w) {
		broker_watch *next = w->next;
		broker_get *g = w->get;
		free(w);
		if (--g->pending == 0)
			broker_get_answer(b, g);
		w = next;
	}
}

static int get_parse(const cJSON *req, broker_get *g, long long *wait, node_err *err)
{
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(req, "ids"), *e;
	int n = cJSON_GetArraySize(ids);
	if (!cJSON_IsArray(ids) || n < 1 || n > BROKER_GET_MAX)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "get needs \"ids\": an array of 1 to %d task ids", BROKER_GET_MAX);
	if (broker_json_int(req, "wait_ms", 0, 3600000, 0, wait) != 0)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "get: \"wait_ms\" must be an integer from 0 to 3600000");
	if ((g->ids = calloc((size_t)n, sizeof *g->ids)) == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	cJSON_ArrayForEach(e, ids) {
		if (!cJSON_IsString(e) || (g->ids[g->n++] = strdup(e->valuestring)) == NULL)
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "get: ids must be strings");
	}
	return 0;
}

/* Lock held: watch every unfinished task of g; returns how many. */
static int get_watch(broker *b, broker_get *g)
{
	int pending = 0;
	for (int i = 0; i < g->n; i++) {
		broker_task *t = broker_store_find(&b->st, g->ids[i]);
		if (t == NULL || finished(t))
			continue; /* unknown ids cannot finish: they only time out */
		broker_watch *w = malloc(sizeof *w);
		if (w == NULL)
			continue;
		w->get = g;
		w->next = t->watchers;
		t->watchers = w;
		pending++;
	}
	for (int i = 0; i < g->n; i++)
		if (!broker_store_find(&b->st, g->ids[i]))
			pending++;
	return pending;
}

void broker_op_get(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	broker_get *g = calloc(1, sizeof *g);
	node_err err = {0};
	long long wait = 0;
	if (g == NULL || get_parse(req, g, &wait, &err) != 0) {
		node_call_reply(c, g ? node_reply_from_err(&err) : node_reply_error(NODE_ERR_INTERNAL, "out of memory"));
		if (g)
			get_free(g);
		return;
	}
	g->call = c;
	g->pipe = node_call_pipe(c);
	g->deadline = node_clock_wall_ms() + wait;
	pthread_mutex_lock(&b->lock);
	g->pending = wait > 0 && !b->stopping ? get_watch(b, g) : 0;
	g->next = b->gets;
	if (b->gets)
		b->gets->prev = g;
	b->gets = g;
	if (g->pending == 0)
		broker_get_answer(b, g);
	pthread_mutex_unlock(&b->lock);
}

void broker_op_status(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	const char *id = broker_json_str(req, "id");
	if (id == NULL) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "status needs \"id\"");
		return;
	}
	pthread_mutex_lock(&b->lock);
	broker_task *t = broker_store_find(&b->st, id);
	if (t == NULL) {
		pthread_mutex_unlock(&b->lock);
		node_call_error(c, NODE_ERR_NOT_FOUND, "no task %.128s (state pending: never submitted, or its result expired)", id);
		return;
	}
	cJSON *r = node_reply_ok(), *o = result_of(b, id);
	cJSON_AddStringToObject(o, "name", t->name);
	cJSON_AddStringToObject(o, "queue", t->queue->name);
	cJSON_AddNumberToObject(o, "priority", t->priority);
	cJSON_AddNumberToObject(o, "deliveries", t->deliveries);
	add_time(o, "submitted_ms", t->submitted_ms);
	if (!finished(t)) /* result_of has these for a finished task */
		add_run(o, t);
	cJSON_AddRawToObject(o, "args", t->args);
	cJSON_AddRawToObject(o, "kwargs", *t->kwargs ? t->kwargs : "{}");
	if (*t->options)
		cJSON_AddRawToObject(o, "options", t->options);
	cJSON_AddItemToObject(r, "task", o);
	pthread_mutex_unlock(&b->lock);
	node_call_reply(c, r);
}
