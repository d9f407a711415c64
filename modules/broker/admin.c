/* The broker's listings and dead letters: queues, workers, dead. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "broker.h"
#include "core/log.h"

/* ---- listings: queues, workers, dead ---- */

void broker_op_queues(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	cJSON *r = node_reply_ok(), *list = cJSON_AddArrayToObject(r, "queues");
	int64_t now = node_clock_wall_ms();
	pthread_mutex_lock(&b->lock);
	for (broker_queue *q = b->st.queues; q; q = q->next) {
		uint64_t consumers = 0;
		for (broker_worker *w = b->st.workers; w; w = w->next) {
			if (!w->online || !w->queues)
				continue;
			size_t n = strlen(q->name);
			for (const char *p = w->queues; (p = strstr(p, q->name)) != NULL; p += n)
				if ((p == w->queues || p[-1] == ',') && (p[n] == ',' || p[n] == '\0')) {
					consumers++;
					break;
				}
		}
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", q->name);
		cJSON_AddNumberToObject(o, "depth", (double)q->depth);
		cJSON_AddNumberToObject(o, "leased", (double)q->leased);
		cJSON_AddNumberToObject(o, "consumers", (double)consumers);
		cJSON_AddNumberToObject(o, "submitted", (double)q->submitted);
		cJSON_AddNumberToObject(o, "succeeded", (double)q->succeeded);
		cJSON_AddNumberToObject(o, "failed", (double)q->failed);
		cJSON_AddNumberToObject(o, "dead", (double)q->dead_count);
		cJSON_AddNumberToObject(o, "revoked", (double)q->revoked);
		cJSON_AddNumberToObject(o, "rate_in", broker_queue_rate(q, 1, now));
		cJSON_AddNumberToObject(o, "rate_out", broker_queue_rate(q, 0, now));
		cJSON_AddNumberToObject(o, "max_length", (double)q->max_length);
		cJSON_AddNumberToObject(o, "max_deliveries", q->max_deliveries);
		cJSON_AddItemToArray(list, o);
	}
	pthread_mutex_unlock(&b->lock);
	node_call_reply(c, r);
}

void broker_op_workers(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	cJSON *r = node_reply_ok(), *list = cJSON_AddArrayToObject(r, "workers");
	int64_t now = node_clock_wall_ms();
	pthread_mutex_lock(&b->lock);
	for (broker_worker *w = b->st.workers; w; w = w->next) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "name", w->name);
		cJSON_AddStringToObject(o, "queues", w->queues ? w->queues : "");
		cJSON_AddNumberToObject(o, "concurrency", w->concurrency);
		cJSON_AddNumberToObject(o, "running", (double)w->running);
		cJSON_AddNumberToObject(o, "heartbeat_ago_ms", (double)(now - w->seen_ms));
		cJSON_AddStringToObject(o, "host", w->host ? w->host : "");
		cJSON_AddNumberToObject(o, "pid", w->pid);
		cJSON_AddBoolToObject(o, "online", w->online);
		cJSON_AddRawToObject(o, "tasks", w->tasks ? w->tasks : "[]");
		cJSON_AddItemToArray(list, o);
	}
	pthread_mutex_unlock(&b->lock);
	node_call_reply(c, r);
}

static int dead_requeue(broker *b, const cJSON *req, node_err *err)
{
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(req, "ids"), *e;
	int all = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "all")), n = 0;
	if (!all && !cJSON_IsArray(ids))
		return -node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "dead requeue needs \"ids\" or \"all\": true");
	for (broker_queue *q = b->st.queues; all && q; q = q->next)
		while (q->dead.head) {
			broker_task *t = q->dead.head;
			t->deliveries = 0;
			broker_rec_simple(b, 'r', t, err);
			broker_store_enqueue(&b->st, t);
			n++;
		}
	const cJSON *list = all ? NULL : ids;
	cJSON_ArrayForEach(e, list) {
		broker_task *t = cJSON_IsString(e) ? broker_store_find(&b->st, e->valuestring) : NULL;
		if (t == NULL || t->state != BROKER_DEAD)
			continue;
		t->deliveries = 0;
		broker_rec_simple(b, 'r', t, err);
		broker_store_enqueue(&b->st, t);
		n++;
	}
	broker_feed(b);
	return n;
}

void broker_op_dead(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	const char *action = broker_json_str(req, "action");
	node_err err = {0};
	cJSON *r = node_reply_ok();
	pthread_mutex_lock(&b->lock);
	if (action && strcmp(action, "list") == 0) {
		cJSON *list = cJSON_AddArrayToObject(r, "tasks");
		for (broker_queue *q = b->st.queues; q; q = q->next)
			for (broker_task *t = q->dead.head; t; t = t->next) {
				cJSON *o = cJSON_CreateObject();
				cJSON_AddStringToObject(o, "id", t->id);
				cJSON_AddStringToObject(o, "name", t->name);
				cJSON_AddStringToObject(o, "queue", q->name);
				cJSON_AddNumberToObject(o, "deliveries", t->deliveries);
				cJSON_AddItemToArray(list, o);
			}
	} else if (action && strcmp(action, "requeue") == 0) {
		int n = dead_requeue(b, req, &err);
		if (n < 0) {
			cJSON_Delete(r);
			r = node_reply_from_err(&err);
		} else {
			cJSON_AddNumberToObject(r, "requeued", n);
		}
	} else if (action && strcmp(action, "purge") == 0) {
		int n = 0;
		for (broker_queue *q = b->st.queues; q; q = q->next)
			while (q->dead.head) {
				broker_task *t = q->dead.head;
				broker_rec_simple(b, 'u', t, &err);
				broker_notify(b, t);
				broker_store_remove(&b->st, t);
				n++;
			}
		cJSON_AddNumberToObject(r, "purged", n);
	} else {
		cJSON_Delete(r);
		r = node_reply_error(NODE_ERR_BAD_ARGS, "dead needs \"action\": list, requeue or purge");
	}
	pthread_mutex_unlock(&b->lock);
	node_call_reply(c, r);
}
