/* The broker's revoke op: cancel queued tasks before any worker starts
 * them. A revoked task is finished at once (state revoked, kept like a
 * result); the client is answered once the journal holds the record. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "broker.h"
#include "core/log.h"

typedef struct rev_batch {
	broker *b;
	node_call *call;
	char **ids;          /* as asked, in order */
	unsigned char *mine; /* revoked by this call: made durable or undone when the commit is done */
	int n;
	int rc;              /* a record the journal refused: the call fails */
	node_err err;
} rev_batch;

static void rev_free(rev_batch *rb)
{
	for (int i = 0; i < rb->n; i++)
		free(rb->ids[i]);
	free(rb->ids);
	free(rb->mine);
	free(rb);
}

static int rev_parse(const cJSON *req, rev_batch *rb, node_err *err)
{
	const cJSON *ids = cJSON_GetObjectItemCaseSensitive(req, "ids"), *e;
	int n = cJSON_GetArraySize(ids);
	if (!cJSON_IsArray(ids) || n < 1 || n > BROKER_GET_MAX)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "revoke needs \"ids\": an array of 1 to %d task ids", BROKER_GET_MAX);
	int i = 0;
	cJSON_ArrayForEach(e, ids) {
		if (!cJSON_IsString(e))
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "revoke: ids[%d]: expected a task id (a string)", i);
		i++;
	}
	if ((rb->ids = calloc((size_t)n, sizeof *rb->ids)) == NULL || (rb->mine = calloc((size_t)n, 1)) == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	cJSON_ArrayForEach(e, ids) {
		if ((rb->ids[rb->n] = strdup(e->valuestring)) == NULL)
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		rb->n++;
	}
	return 0;
}

/* Lock held. Revoke every queued task of rb and journal it. Started,
 * finished and dead tasks are left alone (the reply says their state); so
 * are tasks whose submit is not durable yet. On the first record the
 * journal refuses, stop: what was appended before is committed as usual. */
static void rev_apply(broker *b, rev_batch *rb)
{
	int64_t now = node_clock_wall_ms();
	for (int i = 0; i < rb->n; i++) {
		broker_task *t = broker_store_find(&b->st, rb->ids[i]);
		if (t == NULL || t->state != BROKER_QUEUED)
			continue;
		if ((rb->rc = broker_rec_revoke(b, t, now, &rb->err)) != 0)
			break; /* the record first: a refused task keeps its place in its queue */
		broker_store_revoke(&b->st, t, now);
		t->pending = 1; /* not durable yet: not finished for get, not revoked in replies */
		rb->mine[i] = 1;
	}
}

/* One reply entry, from the task's state once the commit is done. */
static cJSON *rev_entry(broker *b, const char *id)
{
	broker_task *t = broker_store_find(&b->st, id);
	const char *state = "unknown";
	if (t && t->pending) /* someone else's commit still on its way */
		state = t->state == BROKER_REVOKED ? "queued" : "started";
	else if (t)
		state = broker_state_name(t->state);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", id);
	cJSON_AddBoolToObject(o, "revoked", t && !t->pending && t->state == BROKER_REVOKED);
	cJSON_AddStringToObject(o, "state", state);
	return o;
}

/* The commit is done (rc 0: the records appended are durable). */
static void rev_done(int rc, const node_err *err, void *arg)
{
	rev_batch *rb = arg;
	broker *b = rb->b;
	cJSON *r = NULL;
	int n = 0, first = -1;
	pthread_mutex_lock(&b->lock);
	for (int i = 0; i < rb->n; i++) {
		broker_task *t = rb->mine[i] ? broker_store_find(&b->st, rb->ids[i]) : NULL;
		if (t == NULL || !t->pending || t->state != BROKER_REVOKED)
			continue;
		t->pending = 0;
		if (rc == 0) {
			broker_notify(b, t);
			if (n++ == 0)
				first = i;
		} else {
			broker_store_unfinish(&b->st, t); /* not on disk: queued again */
		}
	}
	if (n == 1)
		node_info("task %s revoked before it started", rb->ids[first]);
	else if (n > 1)
		node_info("%d tasks revoked before they started (%s, ...)", n, rb->ids[first]);
	if (rc == 0 && rb->rc != 0) { /* durable so far, but the journal refused a record */
		rc = rb->rc;
		err = &rb->err;
	}
	if (rc != 0) {
		broker_feed(b);
	} else {
		r = node_reply_ok();
		cJSON *list = cJSON_AddArrayToObject(r, "results");
		for (int i = 0; i < rb->n; i++)
			cJSON_AddItemToArray(list, rev_entry(b, rb->ids[i]));
	}
	pthread_mutex_unlock(&b->lock);
	/* An error leaves some revoked and some not: revoke is idempotent, so
	 * the client sends it again. */
	node_call_reply(rb->call, r ? r : node_reply_from_err(err));
	rev_free(rb);
}

void broker_op_revoke(node_call *c, const cJSON *req, void *arg)
{
	broker *b = arg;
	rev_batch *rb = calloc(1, sizeof *rb);
	node_err err = {0};
	if (rb == NULL || rev_parse(req, rb, &err) != 0) {
		node_call_reply(c, rb ? node_reply_from_err(&err) : node_reply_error(NODE_ERR_INTERNAL, "out of memory"));
		if (rb)
			rev_free(rb);
		return;
	}
	rb->b = b;
	rb->call = c;
	pthread_mutex_lock(&b->lock);
	if (b->stopping) {
		pthread_mutex_unlock(&b->lock);
		node_call_error(c, NODE_ERR_SHUTDOWN, "the broker is shutting down");
		rev_free(rb);
		return;
	}
	rev_apply(b, rb);
	if (rb->rc != 0)
		node_warn("revoke: %s", rb->err.msg);
	/* Always through the journal, under the lock: an id revoked by a call
	 * still committing is answered only after that commit. */
	node_journal_sync(b->journal, rev_done, rb);
	pthread_mutex_unlock(&b->lock);
}
