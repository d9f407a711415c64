/* The broker's journal records and their replay. Records are compact JSON
 * (readable with `strings`), and every one states a result rather than a
 * change ("deliveries = 3", not "one more"), so replaying a record that a
 * snapshot already contains is harmless. Ids, names and queue names are
 * restricted to characters that need no escaping. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "broker.h"
#include "core/log.h"

static int enc_submit(const broker_task *t, char **s)
{
	return asprintf(s, "{\"t\":\"s\",\"id\":\"%s\",\"n\":\"%s\",\"q\":\"%s\",\"p\":%d,\"a\":%s%s%s%s%s,\"ts\":%lld}",
	    t->id, t->name, t->queue->name, t->priority, t->args, *t->kwargs ? ",\"k\":" : "", t->kwargs,
	    *t->options ? ",\"o\":" : "", t->options, (long long)t->submitted_ms);
}

static int enc_delivery(const broker_task *t, char **s)
{
	if (t->ran_by == NULL)
		return asprintf(s, "{\"t\":\"d\",\"id\":\"%s\",\"d\":%u}", t->id, (unsigned)t->deliveries);
	return asprintf(s, "{\"t\":\"d\",\"id\":\"%s\",\"d\":%u,\"w\":\"%s\",\"ts\":%lld}", t->id, (unsigned)t->deliveries,
	    t->ran_by->name, (long long)t->started_ms);
}

static int enc_finish(const broker_task *t, char **s)
{
	if (t->state == BROKER_SUCCEEDED)
		return asprintf(s, "{\"t\":\"f\",\"id\":\"%s\",\"ok\":1,\"v\":%s,\"ts\":%lld,\"st\":%lld}", t->id, t->result,
		    (long long)t->finished_ms, (long long)t->started_ms);
	cJSON *e = cJSON_CreateString(t->result ? t->result : "");
	char *et = e ? cJSON_PrintUnformatted(e) : NULL;
	cJSON_Delete(e);
	int n = et ? asprintf(s, "{\"t\":\"f\",\"id\":\"%s\",\"ok\":0,\"e\":%s,\"ts\":%lld,\"st\":%lld}", t->id, et,
	                 (long long)t->finished_ms, (long long)t->started_ms)
	           : -1;
	cJSON_free(et);
	return n;
}

static int enc_revoke(const broker_task *t, int64_t ts, char **s)
{
	return asprintf(s, "{\"t\":\"v\",\"id\":\"%s\",\"ts\":%lld}", t->id, (long long)ts);
}

static int enc_simple(char type, const broker_task *t, char **s)
{
	return asprintf(s, "{\"t\":\"%c\",\"id\":\"%s\"}", type, t->id);
}

/* Append (journal) or write into the snapshot being made (snap). */
static int rec_put(broker *b, node_journal *snap, char *text, int n, node_err *err)
{
	if (n < 0 || text == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	if (snap == NULL && b->stopping) {
		free(text);
		return node_err_set(err, NODE_ECLOSED, NODE_ERR_SHUTDOWN, "the broker is shutting down");
	}
	int rc = snap ? node_journal_snapshot_put(snap, text, (size_t)n, err) : node_journal_append(b->journal, text, (size_t)n, err);
	free(text);
	return rc;
}

int broker_rec_submit(broker *b, const broker_task *t, node_err *err)
{
	char *s = NULL;
	int n = enc_submit(t, &s);
	return rec_put(b, NULL, s, n, err);
}

int broker_rec_delivery(broker *b, const broker_task *t, node_err *err)
{
	char *s = NULL;
	int n = enc_delivery(t, &s);
	return rec_put(b, NULL, s, n, err);
}

int broker_rec_finish(broker *b, const broker_task *t, node_err *err)
{
	char *s = NULL;
	int n = enc_finish(t, &s);
	return rec_put(b, NULL, s, n, err);
}

/* v: revoked while queued, at ts (written before the task changes state). */
int broker_rec_revoke(broker *b, const broker_task *t, int64_t ts, node_err *err)
{
	char *s = NULL;
	int n = enc_revoke(t, ts, &s);
	return rec_put(b, NULL, s, n, err);
}

/* x: buried in dead letters; r: requeued from dead letters; u: forgotten. */
int broker_rec_simple(broker *b, char type, const broker_task *t, node_err *err)
{
	char *s = NULL;
	int n = enc_simple(type, t, &s);
	return rec_put(b, NULL, s, n, err);
}

static const char *rec_str(const cJSON *r, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* The end of the JSON value starting at p (strings, nesting and scalars),
 * within [p, end); NULL if it runs off the end. */
static const char *json_value_end(const char *p, const char *end)
{
	int depth = 0, in_str = 0;
	for (; p < end; p++) {
		char c = *p;
		if (in_str) {
			if (c == '\\')
				p++;
			else if (c == '"') {
				in_str = 0;
				if (depth == 0)
					return p + 1;
			}
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '{' || c == '[') {
			depth++;
		} else if (c == '}' || c == ']') {
			if (depth == 0)
				return p;
			if (--depth == 0)
				return p + 1;
		} else if (c == ',' && depth == 0) {
			return p;
		}
	}
	return NULL;
}

/* The exact text of top-level field k of a record we wrote ourselves
 * ({"k":VALUE,...}, no spaces): cJSON would turn big numbers into doubles. */
static char *rec_text_raw(const char *rec, size_t len, const char *k)
{
	const char *end = rec + len, *p = rec + 1;
	size_t kl = strlen(k);
	while (p < end && *p == '"') {
		const char *key = p + 1, *kend = memchr(key, '"', (size_t)(end - key));
		if (kend == NULL || kend + 1 >= end || kend[1] != ':')
			return NULL;
		const char *v = kend + 2, *vend = json_value_end(v, end);
		if (vend == NULL)
			return NULL;
		if ((size_t)(kend - key) == kl && memcmp(key, k, kl) == 0)
			return strndup(v, (size_t)(vend - v));
		p = vend < end && *vend == ',' ? vend + 1 : end;
	}
	return NULL;
}

static int replay_submit(broker *b, const cJSON *r, const char *id, const char *rec, size_t len)
{
	if (broker_store_find(&b->st, id))
		return 0;
	const char *name = rec_str(r, "n"), *qn = rec_str(r, "q");
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(r, "p"), *ts = cJSON_GetObjectItemCaseSensitive(r, "ts");
	char *args = rec_text_raw(rec, len, "a"), *kw = rec_text_raw(rec, len, "k"), *opt = rec_text_raw(rec, len, "o");
	broker_queue *q = qn ? broker_store_queue(&b->st, qn, 1) : NULL;
	broker_task *t = NULL;
	if (name && q && args && cJSON_IsNumber(p))
		t = broker_store_add(&b->st, id, name, args, kw, opt, q, p->valueint, cJSON_IsNumber(ts) ? (int64_t)ts->valuedouble : 0);
	if (t) {
		broker_store_enqueue(&b->st, t);
		q->submitted++;
	}
	free(args);
	free(kw);
	free(opt);
	return t ? 0 : -1;
}

static void replay_finish(broker *b, const cJSON *r, broker_task *t, const char *rec, size_t len)
{
	if (t->state == BROKER_SUCCEEDED || t->state == BROKER_FAILED || t->state == BROKER_REVOKED)
		return; /* the first outcome wins, as it did when it was written */
	const cJSON *ok = cJSON_GetObjectItemCaseSensitive(r, "ok"), *ts = cJSON_GetObjectItemCaseSensitive(r, "ts");
	int good = cJSON_IsNumber(ok) && ok->valueint == 1;
	const char *e = rec_str(r, "e");
	char *res = good ? rec_text_raw(rec, len, "v") : strdup(e ? e : "");
	broker_store_finish(&b->st, t, good, res, cJSON_IsNumber(ts) ? (int64_t)ts->valuedouble : node_clock_wall_ms());
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "st");
	if (cJSON_IsNumber(st) && st->valuedouble > 0)
		t->started_ms = (int64_t)st->valuedouble; /* when it began to run, past any prefetch wait */
}

/* Who ran it last and when, so status can say so after a restart. */
static void replay_delivery(broker *b, const cJSON *r, broker_task *t)
{
	const char *w = rec_str(r, "w");
	const cJSON *ts = cJSON_GetObjectItemCaseSensitive(r, "ts");
	if (w)
		t->ran_by = broker_store_worker(&b->st, w, 1);
	if (cJSON_IsNumber(ts))
		t->started_ms = (int64_t)ts->valuedouble;
}

/* Only a queued task was ever revoked; anything else is a record that no
 * longer applies. */
static void replay_revoke(broker *b, const cJSON *r, broker_task *t)
{
	const cJSON *ts = cJSON_GetObjectItemCaseSensitive(r, "ts");
	if (t->state == BROKER_QUEUED)
		broker_store_revoke(&b->st, t, cJSON_IsNumber(ts) ? (int64_t)ts->valuedouble : node_clock_wall_ms());
}

static int replay_one(broker *b, const cJSON *r, const char *rec, size_t len)
{
	const char *type = rec_str(r, "t"), *id = rec_str(r, "id");
	if (type == NULL || id == NULL)
		return -1;
	if (type[0] == 's')
		return replay_submit(b, r, id, rec, len);
	broker_task *t = broker_store_find(&b->st, id);
	if (t == NULL)
		return 0; /* forgotten later in the log, or in the snapshot */
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(r, "d");
	switch (type[0]) {
	case 'd':
		if (cJSON_IsNumber(d))
			t->deliveries = (uint16_t)d->valueint;
		replay_delivery(b, r, t);
		break;
	case 'f':
		replay_finish(b, r, t, rec, len);
		break;
	case 'v':
		replay_revoke(b, r, t);
		break;
	case 'x':
		broker_store_bury(&b->st, t, node_clock_wall_ms());
		break;
	case 'r':
		t->deliveries = 0;
		broker_store_enqueue(&b->st, t);
		break;
	case 'u':
		broker_store_remove(&b->st, t);
		break;
	default:
		return -1;
	}
	return 0;
}

int broker_replay(const void *rec, size_t len, void *arg)
{
	broker *b = arg;
	cJSON *r = cJSON_ParseWithLength(rec, len);
	int rc = r ? replay_one(b, r, rec, len) : -1;
	if (rc != 0)
		node_warn("journal: skipped a record the broker does not understand: %.*s", (int)(len > 120 ? 120 : len), (const char *)rec);
	cJSON_Delete(r);
	return 0; /* one odd record must not make the rest unreadable */
}

/* The records that recreate one task. */
static int snap_task(broker *b, node_journal *j, const broker_task *t, node_err *err)
{
	char *s = NULL;
	int n = enc_submit(t, &s);
	int rc = rec_put(b, j, s, n, err);
	if (rc == 0 && t->deliveries) {
		n = enc_delivery(t, &s);
		rc = rec_put(b, j, s, n, err);
	}
	if (rc == 0 && (t->state == BROKER_SUCCEEDED || t->state == BROKER_FAILED)) {
		n = enc_finish(t, &s);
		rc = rec_put(b, j, s, n, err);
	}
	if (rc == 0 && t->state == BROKER_DEAD) {
		n = enc_simple('x', t, &s);
		rc = rec_put(b, j, s, n, err);
	}
	if (rc == 0 && t->state == BROKER_REVOKED) {
		n = enc_revoke(t, t->finished_ms, &s);
		rc = rec_put(b, j, s, n, err);
	}
	return rc;
}

/* Dump every live task (the broker lock is held while it runs). */
int broker_snapshot(node_journal *j, void *arg)
{
	broker *b = arg;
	node_err err = {0};
	int rc = 0;
	pthread_mutex_lock(&b->lock);
	for (size_t i = 0; rc == 0 && i < b->st.nslots; i++)
		for (broker_task *t = b->st.slots[i]; rc == 0 && t; t = t->hnext)
			if (t->state != BROKER_COMMITTING) /* its submit record follows in the new segment */
				rc = snap_task(b, j, t, &err);
	b->compacting = 0;
	b->compacted_ms = node_clock_wall_ms();
	pthread_mutex_unlock(&b->lock);
	if (rc != 0)
		node_error("snapshot: %s", err.msg);
	return rc;
}
