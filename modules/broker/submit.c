/* The broker's submit op: a batch is checked whole, its new tasks are
 * created invisible to workers, journaled, and become queued (and the
 * client acknowledged) only once the journal says they are durable. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "broker.h"
#include "core/log.h"
#include "core/rand.h"

/* ---- submit ---- */

typedef struct sub_task {
	char id[BROKER_ID_MAX + 1];
	const char *name, *queue;
	char *args, *kwargs, *options;
	int priority; /* -1: the queue's default */
} sub_task;

typedef struct sub_batch {
	broker *b;
	node_call *call;
	sub_task *in;
	broker_task **made; /* tasks created by this batch (NULL: already existed) */
	int n;
} sub_batch;

static void sub_free(sub_batch *sb)
{
	for (int i = 0; i < sb->n; i++) {
		cJSON_free(sb->in[i].args);
		cJSON_free(sb->in[i].kwargs);
		cJSON_free(sb->in[i].options);
	}
	free(sb->in);
	free(sb->made);
	free(sb);
}

static int sub_parse_one(const cJSON *o, int i, sub_task *t, node_err *err)
{
	if (!cJSON_IsObject(o))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "tasks[%d]: expected a task object", i);
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(o, "id");
	if (id && (!cJSON_IsString(id) || !broker_name_ok(id->valuestring)))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "tasks[%d].id: expected 1 to %d characters of A-Z a-z 0-9 . _ : - / @", i, BROKER_ID_MAX);
	if (id)
		snprintf(t->id, sizeof t->id, "%s", id->valuestring);
	else if (node_rand_id(t->id, err) != 0)
		return NODE_EIO;
	t->name = broker_json_str(o, "name");
	if (t->name == NULL || !broker_name_ok(t->name))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "tasks[%d].name: expected a task name (1 to %d characters of A-Z a-z 0-9 . _ : - / @)", i, BROKER_NAME_MAX);
	const cJSON *q = cJSON_GetObjectItemCaseSensitive(o, "queue");
	t->queue = q ? broker_json_str(o, "queue") : "default";
	if (t->queue == NULL || !broker_name_ok(t->queue))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "tasks[%d].queue: expected a queue name (1 to %d characters of A-Z a-z 0-9 . _ : - / @)", i, BROKER_NAME_MAX);
	long long p;
	if (broker_json_int(o, "priority", 0, BROKER_PRIORITIES - 1, -1, &p) != 0)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "tasks[%d].priority: expected an integer from 0 to 9", i);
	t->priority = (int)p;
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, "args"), *k = cJSON_GetObjectItemCaseSensitive(o, "kwargs"),
		    *op = cJSON_GetObjectItemCaseSensitive(o, "options");
	if (a && !cJSON_IsArray(a))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "tasks[%d].args: expected an array", i);
	if (k && !cJSON_IsObject(k))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "tasks[%d].kwargs: expected an object", i);
	if (op && !cJSON_IsObject(op))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "tasks[%d].options: expected an object", i);
	t->args = a ? cJSON_PrintUnformatted(a) : strdup("[]");
	t->kwargs = k && k->child ? cJSON_PrintUnformatted(k) : NULL;
	t->options = op && op->child ? cJSON_PrintUnformatted(op) : NULL;
	if (t->args == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	return 0;
}

static int sub_parse(const cJSON *req, sub_batch **out, node_err *err)
{
	const cJSON *tasks = cJSON_GetObjectItemCaseSensitive(req, "tasks");
	int n = cJSON_GetArraySize(tasks);
	if (!cJSON_IsArray(tasks) || n < 1 || n > BROKER_SUBMIT_MAX)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "submit needs \"tasks\": an array of 1 to %d task objects", BROKER_SUBMIT_MAX);
	sub_batch *sb = calloc(1, sizeof *sb);
	if (sb == NULL || (sb->in = calloc((size_t)n, sizeof *sb->in)) == NULL || (sb->made = calloc((size_t)n, sizeof *sb->made)) == NULL) {
		if (sb)
			free(sb->in);
		free(sb);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	int i = 0, rc = 0;
	const cJSON *o;
	cJSON_ArrayForEach(o, tasks) {
		sb->n = i + 1;
		if ((rc = sub_parse_one(o, i, &sb->in[i], err)) != 0)
			break;
		i++;
	}
	if (rc != 0) {
		sub_free(sb);
		return rc;
	}
	*out = sb;
	return 0;
}

/* Lock held. Create the batch's new tasks as COMMITTING and journal them;
 * undo everything on the first failure. */
static int sub_apply(broker *b, sub_batch *sb, node_err *err)
{
	int64_t now = node_clock_wall_ms();
	int rc = 0;
	for (int i = 0; rc == 0 && i < sb->n; i++) {
		sub_task *in = &sb->in[i];
		if (broker_store_find(&b->st, in->id))
			continue; /* the same id twice is one task */
		broker_queue *q = broker_store_queue(&b->st, in->queue, 1);
		if (q == NULL) {
			rc = node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
			break;
		}
		if (q->depth + q->leased >= q->max_length) {
			rc = node_err_set(err, NODE_ELIMIT, "queue_full", "queue %s is full (%llu tasks; max_length %llu)", q->name,
			    (unsigned long long)(q->depth + q->leased), (unsigned long long)q->max_length);
			break;
		}
		int prio = in->priority >= 0 ? in->priority : q->default_priority;
		broker_task *t = broker_store_add(&b->st, in->id, in->name, in->args, in->kwargs, in->options, q, prio, now);
		if (t == NULL) {
			rc = node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
			break;
		}
		q->depth++; /* counted while committing so max_length holds */
		sb->made[i] = t;
		rc = broker_rec_submit(b, t, err);
	}
	if (rc != 0) {
		for (int i = 0; i < sb->n; i++)
			if (sb->made[i]) {
				sb->made[i]->queue->depth--;
				broker_store_remove(&b->st, sb->made[i]);
				sb->made[i] = NULL;
			}
	}
	return rc;
}

static void sub_done(int rc, const node_err *err, void *arg)
{
	sub_batch *sb = arg;
	broker *b = sb->b;
	int64_t now = node_clock_wall_ms();
	int created = 0;
	pthread_mutex_lock(&b->lock);
	for (int i = 0; i < sb->n; i++) {
		broker_task *t = sb->made[i];
		if (t == NULL)
			continue;
		t->queue->depth--;
		if (rc == 0) {
			broker_store_enqueue(&b->st, t);
			t->queue->submitted++;
			broker_queue_count(t->queue, 1, now);
			created++;
		} else {
			broker_notify(b, t);
			broker_store_remove(&b->st, t);
		}
	}
	if (rc == 0)
		broker_feed(b);
	pthread_mutex_unlock(&b->lock);
	if (rc != 0) {
		node_call_reply(sb->call, node_reply_from_err(err));
	} else {
		cJSON *r = node_reply_ok(), *ids = cJSON_AddArrayToObject(r, "ids");
		for (int i = 0; i < sb->n; i++)
			cJSON_AddItemToArray(ids, cJSON_CreateString(sb->in[i].id));
		cJSON_AddNumberToObject(r, "created", created);
		node_call_reply(sb->call, r);
	}
	sub_free(sb);
}

void broker_op_submit(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	node_err err = {0};
	sub_batch *sb = NULL;
	if (sub_parse(req, &sb, &err) != 0) {
		node_call_reply(c, node_reply_from_err(&err));
		return;
	}
	sb->b = b;
	sb->call = c;
	pthread_mutex_lock(&b->lock);
	int rc = b->stopping ? node_err_set(&err, NODE_ECLOSED, NODE_ERR_SHUTDOWN, "the broker is shutting down") : sub_apply(b, sb, &err);
	if (rc == 0) /* under the lock: a stopping broker closes its journal only after this */
		node_journal_sync(b->journal, sub_done, sb);
	pthread_mutex_unlock(&b->lock);
	if (rc != 0) {
		node_call_reply(c, node_reply_from_err(&err));
		sub_free(sb);
	}
}
