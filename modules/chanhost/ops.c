/* The channel host's protocol (node-protocol(7), section CHANNEL HOST):
 * each op checks its fields, then acts under the host lock. Reads, writes
 * and alternations carry a client id and sequence number, so a request a
 * client repeats after a dropped connection gets the first answer again. */
#include <stdlib.h>
#include <string.h>

#include "chanhost/chanhost.h"
#include "core/clock.h"

static int ch_chars_ok(const char *s, size_t max, const char *extra)
{
	size_t n = strlen(s);
	if (n == 0 || n > max)
		return 0;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || strchr(extra, c)))
			return 0;
	}
	return 1;
}

int ch_name_ok(const char *s)
{
	return ch_chars_ok(s, CH_NAME_MAX, "._:/-");
}

static int ch_cid_ok(const char *s)
{
	return ch_chars_ok(s, CH_CID_MAX, "._:-");
}

/* Printable ASCII, so trace lines stay valid JSON whatever a client sends. */
static int ch_proc_ok(const char *s)
{
	size_t n = strlen(s);
	for (const char *p = s; *p; p++)
		if (*p < 0x20 || *p > 0x7e)
			return 0;
	return n >= 1 && n <= CH_PROC_MAX;
}

/* A string field checked by ok; absent and not required leaves *out NULL. */
static int ch_str(const cJSON *req, const char *key, int required, int (*ok)(const char *), const char *what,
    const char **out, node_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, key);
	*out = NULL;
	if (v == NULL)
		return required ? node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s is missing", key) : 0;
	if (!cJSON_IsString(v) || !ok(v->valuestring))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s: expected %s", key, what);
	*out = v->valuestring;
	return 0;
}

static int ch_int(const cJSON *req, const char *key, long long min, long long max, long long def, long long *out,
    node_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, key);
	*out = def;
	if (v == NULL)
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble < (double)min || v->valuedouble > (double)max ||
	    v->valuedouble != (double)(long long)v->valuedouble)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s: expected an integer from %lld to %lld", key, min,
		    max);
	*out = (long long)v->valuedouble;
	return 0;
}

#define CH_NAME_WHAT "1 to 192 characters of A-Z a-z 0-9 . _ : / -"
#define CH_CID_WHAT "1 to 64 characters of A-Z a-z 0-9 . _ : -"

typedef struct ch_args {
	const char *chan, *cid, *proc;
	long long seq, max, timeout_ms;
} ch_args;

static int ch_args_get(const cJSON *req, int need_chan, int need_seq, ch_args *a, node_err *err)
{
	int rc = ch_str(req, "chan", need_chan, ch_name_ok, CH_NAME_WHAT, &a->chan, err);
	if (rc == 0)
		rc = ch_str(req, "cid", need_seq, ch_cid_ok, CH_CID_WHAT, &a->cid, err);
	if (rc == 0)
		rc = ch_str(req, "proc", 0, ch_proc_ok, "1 to 100 printable ASCII characters", &a->proc, err);
	if (rc == 0)
		rc = ch_int(req, "seq", need_seq ? 1 : 0, 9007199254740991LL, 0, &a->seq, err);
	if (rc == 0 && need_seq && a->seq == 0)
		rc = node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "seq is missing");
	if (rc == 0)
		rc = ch_int(req, "max", 1, CH_READ_MAX, 1, &a->max, err);
	if (rc == 0)
		rc = ch_int(req, "timeout_ms", 0, 86400000LL, -1, &a->timeout_ms, err);
	return rc;
}

static void ch_fail(node_call *c, const node_err *e)
{
	node_call_error(c, e->code[0] ? e->code : NODE_ERR_BAD_ARGS, "%s", e->msg);
}

/* Answer a bad request and leave the handler. */
#define CH_FAIL(c, e) do { ch_fail(c, e); return; } while (0)

/* Decide what a request with this seq means for its client: 1 when it was
 * answered here (a repeat or a stale one), 0 when it is new. */
static int ch_seq_seen(ch_host *h, ch_client *cl, uint64_t seq, node_call *c)
{
	if (seq < cl->last_seq) {
		ch_answer_error(h, c, NODE_ERR_BAD_ARGS, "stale request: seq %llu after %llu", (unsigned long long)seq,
		    (unsigned long long)cl->last_seq);
		return 1;
	}
	if (seq == cl->last_seq && cl->parked && cl->parked->seq == seq) {
		/* The same request over a new connection: it takes the parked one's place. */
		node_call *old = cl->parked->call;
		cl->parked->call = c;
		cl->parked->pipe = node_call_pipe(c);
		ch_answer_error(h, old, "replaced", "the client asked again over another connection");
		return 1;
	}
	if (seq == cl->last_seq && cl->last_reply) {
		ch_answer(h, c, cJSON_Duplicate(cl->last_reply, 1));
		return 1;
	}
	if (cl->parked)
		ch_waiter_fail(h, cl->parked, "cancelled", "a newer request of the same client replaced it");
	cl->last_seq = seq;
	cJSON_Delete(cl->last_reply);
	cl->last_reply = NULL;
	return 0;
}

/* The client of a request, or 1 after answering (repeat, stale, limit). */
static int ch_client_of(ch_host *h, const ch_args *a, node_call *c, ch_client **cl)
{
	node_err e = {0};
	if (ch_client_get(h, a->cid, cl, &e) != 0) {
		ch_answer_error(h, c, e.code, "%s", e.msg);
		return 1;
	}
	(*cl)->pipe = node_call_pipe(c);
	return ch_seq_seen(h, *cl, (uint64_t)a->seq, c);
}

static void ch_waiter_setup(ch_waiter *w, ch_client *cl, const ch_args *a)
{
	w->cl = cl;
	w->seq = (uint64_t)a->seq;
	w->max = (int)a->max;
	if (a->proc)
		snprintf(w->proc, sizeof w->proc, "%s", a->proc);
	if (a->timeout_ms > 0)
		w->deadline_ms = node_clock_mono_ms() + a->timeout_ms;
}

/* Park w unless the caller said not to wait (timeout_ms 0). */
static void ch_park_or_expire(ch_host *h, ch_waiter *w, const ch_args *a)
{
	if (a->timeout_ms != 0) {
		ch_park(h, w);
		return;
	}
	if (w->type == CH_W_ALT) {
		cJSON *r = node_reply_ok();
		cJSON_AddBoolToObject(r, "timeout", 1);
		ch_waiter_finish(h, w, r);
	} else {
		ch_waiter_fail(h, w, NODE_ERR_TIMEOUT, "nothing to %s on channel %s right now",
		    w->type == CH_W_READ ? "read" : "write to", w->guards[0].ch->name);
	}
}

/* The values of a write or publish: taken out of the request, which the
 * server frees after the handler, so a batch is not copied. */
static cJSON *ch_take_values(const cJSON *req, node_err *err)
{
	cJSON *r = (cJSON *)req;
	cJSON *v = cJSON_DetachItemFromObjectCaseSensitive(r, "values");
	if (v == NULL) {
		cJSON *one = cJSON_DetachItemFromObjectCaseSensitive(r, "value");
		if (one == NULL) {
			node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "values is missing (an array of JSON values)");
			return NULL;
		}
		v = cJSON_CreateArray();
		cJSON_AddItemToArray(v, one);
	}
	if (!cJSON_IsArray(v) || v->child == NULL) {
		cJSON_Delete(v);
		node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "values: expected a non-empty array of JSON values");
		return NULL;
	}
	return v;
}

/* Client, channel and end of a read or write; 1 after answering. */
static int ch_prepare(ch_host *h, node_call *c, const ch_args *a, int dir, ch_client **cl, ch_chan **ch)
{
	if (ch_client_of(h, a, c, cl))
		return 1;
	node_err e = {0};
	if (ch_chan_get(h, a->chan, 1, ch, &e) != 0 || ch_end_join(h, *cl, *ch, dir, a->proc, &e) != 0) {
		if (*ch && (*ch)->poisoned)
			ch_answer_error(h, c, "poisoned", "channel %s is poisoned", (*ch)->name);
		else
			ch_answer_error(h, c, e.code, "%s", e.msg);
		return 1;
	}
	return 0;
}

static void op_write(node_call *c, const cJSON *req, void *arg)
{
	ch_host *h = arg;
	ch_args a = {0};
	node_err e = {0};
	if (ch_args_get(req, 1, 1, &a, &e) != 0)
		CH_FAIL(c, &e);
	cJSON *vals = ch_take_values(req, &e);
	if (vals == NULL || ch_values_fit(h, vals, &e) != 0) {
		cJSON_Delete(vals);
		ch_fail(c, &e);
		return;
	}
	ch_client *cl;
	ch_chan *ch = NULL;
	ch_lock(h);
	ch_waiter *w = NULL;
	if (ch_prepare(h, c, &a, CH_WRITE, &cl, &ch) == 0 && (w = ch_waiter_new(CH_W_WRITE, c, 1)) == NULL)
		ch_answer_error(h, c, NODE_ERR_INTERNAL, "out of memory");
	if (w) {
		ch_waiter_setup(w, cl, &a);
		w->values = vals;
		vals = NULL;
		w->guards[0] = (ch_guard){.ch = ch, .dir = CH_WRITE};
		if (!ch_write_try(h, w))
			ch_park_or_expire(h, w, &a);
	}
	ch_unlock(h);
	cJSON_Delete(vals);
}

static void op_read(node_call *c, const cJSON *req, void *arg)
{
	ch_host *h = arg;
	ch_args a = {0};
	node_err e = {0};
	if (ch_args_get(req, 1, 1, &a, &e) != 0)
		CH_FAIL(c, &e);
	ch_client *cl;
	ch_chan *ch = NULL;
	ch_lock(h);
	ch_waiter *w = NULL;
	if (ch_prepare(h, c, &a, CH_READ, &cl, &ch) == 0 && (w = ch_waiter_new(CH_W_READ, c, 1)) == NULL)
		ch_answer_error(h, c, NODE_ERR_INTERNAL, "out of memory");
	if (w && (w->values = cJSON_CreateArray()) == NULL) {
		ch_waiter_fail(h, w, NODE_ERR_INTERNAL, "out of memory");
		w = NULL;
	}
	if (w) {
		ch_waiter_setup(w, cl, &a);
		w->guards[0] = (ch_guard){.ch = ch, .dir = CH_READ};
		if (!ch_read_try(h, w))
			ch_park_or_expire(h, w, &a);
	}
	ch_unlock(h);
}

/* Check the guards' shape before taking the lock. */
static int ch_guards_check(const cJSON *guards, node_err *err)
{
	int n = cJSON_GetArraySize(guards);
	if (!cJSON_IsArray(guards) || n < 1 || n > CH_GUARDS_MAX)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "guards: expected an array of 1 to %d guards",
		    CH_GUARDS_MAX);
	int i = 0;
	for (const cJSON *g = guards->child; g; g = g->next, i++) {
		const char *name;
		if (!cJSON_IsObject(g) || ch_str(g, "chan", 1, ch_name_ok, CH_NAME_WHAT, &name, err) != 0)
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
			    "guards[%d]: expected {\"chan\": NAME, \"read\": true} or {\"chan\": NAME, \"write\": VALUE}", i);
		const char *gcid;
		if (ch_str(g, "cid", 0, ch_cid_ok, CH_CID_WHAT, &gcid, err) != 0)
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "guards[%d].cid: expected %s", i, CH_CID_WHAT);
		int rd = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(g, "read"));
		int wr = cJSON_GetObjectItemCaseSensitive(g, "write") != NULL;
		if (rd == wr)
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
			    "guards[%d]: give either \"read\": true or \"write\": VALUE", i);
	}
	return 0;
}

/* Channels, ends and offered values of an alternation; 1 after answering.
 * A guard is the end (chan, its own cid or the alternation's, dir): a
 * process alternating over ends it already has does not make new ones. */
static int ch_alt_setup(ch_host *h, ch_waiter *w, ch_client *cl, cJSON *guards, const char *proc)
{
	int i = 0;
	for (cJSON *g = guards->child; g; g = g->next, i++) {
		node_err e = {0};
		const char *name = cJSON_GetObjectItemCaseSensitive(g, "chan")->valuestring;
		const char *gcid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(g, "cid"));
		int dir = cJSON_GetObjectItemCaseSensitive(g, "write") ? CH_WRITE : CH_READ;
		ch_chan *ch = NULL;
		ch_client *owner = cl;
		if ((gcid && ch_client_get(h, gcid, &owner, &e) != 0) || ch_chan_get(h, name, 1, &ch, &e) != 0 ||
		    ch_end_join(h, owner, ch, dir, proc, &e) != 0) {
			ch_waiter_fail(h, w, e.code, "%s", e.msg);
			return 1;
		}
		w->guards[i] = (ch_guard){.ch = ch, .dir = dir};
		if (owner != cl) { /* keeps the end's client while the guard waits */
			w->guards[i].owner = owner;
			owner->guard_refs++;
		}
		cJSON *v = dir == CH_WRITE ? cJSON_DetachItemFromObjectCaseSensitive(g, "write") : cJSON_CreateNull();
		cJSON_AddItemToArray(w->alt_vals, v);
		if (dir == CH_WRITE && ch_value_size(v) > h->lim.max_reply) {
			ch_waiter_fail(h, w, NODE_ERR_TOO_LARGE, "guards[%d]: the value is too large to be answered (limits.max_message)", i);
			return 1;
		}
	}
	return 0;
}

static void op_alt(node_call *c, const cJSON *req, void *arg)
{
	ch_host *h = arg;
	ch_args a = {0};
	node_err e = {0};
	cJSON *guards = cJSON_GetObjectItemCaseSensitive(req, "guards");
	if (ch_args_get(req, 0, 1, &a, &e) != 0 || ch_guards_check(guards, &e) != 0)
		CH_FAIL(c, &e);
	int skip = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "skip"));
	int priority = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(req, "priority"));
	ch_client *cl;
	ch_lock(h);
	ch_waiter *w = NULL;
	if (ch_client_of(h, &a, c, &cl) == 0 && (w = ch_waiter_new(CH_W_ALT, c, cJSON_GetArraySize(guards))) == NULL)
		ch_answer_error(h, c, NODE_ERR_INTERNAL, "out of memory");
	if (w && (w->alt_vals = cJSON_CreateArray()) == NULL) {
		ch_waiter_fail(h, w, NODE_ERR_INTERNAL, "out of memory");
		w = NULL;
	}
	if (w) {
		ch_waiter_setup(w, cl, &a);
		if (ch_alt_setup(h, w, cl, guards, a.proc) == 0 && !ch_alt_try(h, w, priority)) {
			if (skip) {
				cJSON *r = node_reply_ok();
				cJSON_AddBoolToObject(r, "skip", 1);
				ch_waiter_finish(h, w, r);
			} else {
				ch_park_or_expire(h, w, &a);
			}
		}
	}
	ch_unlock(h);
}

/* An op on a whole channel: check the fields, find (or make) the channel,
 * act under the lock, answer ok. */
static void ch_chan_op(node_call *c, const cJSON *req, ch_host *h, int create,
    void (*act)(ch_host *h, ch_chan *ch, const char *proc))
{
	ch_args a = {0};
	node_err e = {0};
	if (ch_args_get(req, 1, 0, &a, &e) != 0) {
		ch_fail(c, &e);
		return;
	}
	ch_chan *ch;
	ch_lock(h);
	if (ch_chan_get(h, a.chan, create, &ch, &e) != 0) {
		ch_answer_error(h, c, e.code, "%s", e.msg);
	} else {
		act(h, ch, a.proc);
		ch_answer(h, c, node_reply_ok());
	}
	ch_unlock(h);
}

/* Poisoning a channel nobody used yet makes it, poisoned: later ends fail. */
static void op_poison(node_call *c, const cJSON *req, void *arg)
{
	ch_chan_op(c, req, arg, 1, ch_chan_poison);
}

static int ch_dir(const cJSON *req, int *dir, node_err *err)
{
	const char *d = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "dir"));
	if (d && (strcmp(d, "read") == 0 || strcmp(d, "write") == 0)) {
		*dir = d[0] == 'r' ? CH_READ : CH_WRITE;
		return 0;
	}
	return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "dir: expected \"read\" or \"write\"");
}

/* retire and leave: the end goes, for good (retire) or quietly (leave). */
static void ch_end_op(node_call *c, const cJSON *req, ch_host *h, int retire)
{
	ch_args a = {0};
	node_err e = {0};
	int dir = CH_READ;
	if (ch_args_get(req, 1, 0, &a, &e) != 0 || ch_dir(req, &dir, &e) != 0)
		CH_FAIL(c, &e);
	if (a.cid == NULL) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "cid is missing");
		return;
	}
	ch_client *cl;
	ch_chan *ch;
	ch_lock(h);
	if (ch_client_get(h, a.cid, &cl, &e) != 0 || ch_chan_get(h, a.chan, 0, &ch, &e) != 0) {
		/* Leaving a channel that is gone is done already. */
		ch_answer(h, c, retire || e.rc != NODE_ENOTFOUND ? node_reply_from_err(&e) : node_reply_ok());
	} else {
		/* The end's own parked request goes with it. */
		ch_waiter *p = cl->parked;
		if (p && p->type != CH_W_ALT && p->guards[0].ch == ch && p->guards[0].dir == dir)
			ch_waiter_fail(h, p, "cancelled", "the end left");
		ch_end_leave(h, cl, ch, dir, retire, a.proc);
		ch_answer(h, c, node_reply_ok());
	}
	ch_unlock(h);
}

static void op_retire(node_call *c, const cJSON *req, void *arg)
{
	ch_end_op(c, req, arg, 1);
}

static void op_leave(node_call *c, const cJSON *req, void *arg)
{
	ch_end_op(c, req, arg, 0);
}

static void op_create(node_call *c, const cJSON *req, void *arg)
{
	ch_host *h = arg;
	ch_args a = {0};
	node_err e = {0};
	long long cap;
	ch_kind kind = CH_ANY2ANY;
	const cJSON *kv = cJSON_GetObjectItemCaseSensitive(req, "kind");
	const char *k = kv ? cJSON_GetStringValue(kv) : "any2any";
	if (ch_args_get(req, 1, 0, &a, &e) != 0 || ch_int(req, "capacity", 0, 1000000, 0, &cap, &e) != 0)
		CH_FAIL(c, &e);
	if (ch_kind_parse(k, &kind) != 0) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "kind: expected any2any, one2one, one2any or any2one");
		return;
	}
	ch_chan *ch;
	int created;
	ch_lock(h);
	if (ch_chan_create(h, a.chan, kind, (int)cap, 0, &ch, &created, &e) != 0) {
		ch_answer_error(h, c, e.code, "%s", e.msg);
	} else {
		cJSON *r = node_reply_ok();
		cJSON_AddBoolToObject(r, "created", created);
		ch_answer(h, c, r);
	}
	ch_unlock(h);
}

static void ch_delete_act(ch_host *h, ch_chan *ch, const char *proc)
{
	(void)proc;
	ch_chan_delete(h, ch);
}

static void op_delete(node_call *c, const cJSON *req, void *arg)
{
	ch_chan_op(c, req, arg, 0, ch_delete_act);
}

static void ch_list_one(void *v, void *arg)
{
	void **a = arg;
	const ch_chan *ch = v;
	const char *prefix = a[1];
	if (prefix == NULL || strncmp(ch->name, prefix, strlen(prefix)) == 0)
		cJSON_AddItemToArray(a[0], ch_chan_json(ch));
}

static void op_list(node_call *c, const cJSON *req, void *arg)
{
	ch_host *h = arg;
	const char *prefix = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "prefix"));
	cJSON *r = node_reply_ok();
	cJSON *chans = cJSON_AddArrayToObject(r, "channels");
	cJSON *topics = cJSON_AddArrayToObject(r, "topics");
	void *a[2] = {chans, (void *)prefix};
	ch_lock(h);
	ch_table_each(h->chans, ch_list_one, a);
	ch_topics_json(h, topics);
	cJSON_AddNumberToObject(r, "parked", h->nparked);
	cJSON_AddNumberToObject(r, "clients", (double)ch_table_count(h->clients));
	ch_unlock(h);
	node_call_reply(c, r);
}

/* ---- publish/subscribe ---- */

static void op_publish(node_call *c, const cJSON *req, void *arg)
{
	ch_host *h = arg;
	node_err e = {0};
	const char *topic;
	if (ch_str(req, "topic", 1, ch_name_ok, CH_NAME_WHAT, &topic, &e) != 0)
		CH_FAIL(c, &e);
	cJSON *vals = ch_take_values(req, &e);
	if (vals == NULL || ch_values_fit(h, vals, &e) != 0) {
		cJSON_Delete(vals);
		ch_fail(c, &e);
		return;
	}
	int subs = 0;
	ch_lock(h);
	if (ch_publish(h, topic, vals, &subs, &e) != 0) {
		ch_answer_error(h, c, e.code, "%s", e.msg);
	} else {
		cJSON *r = node_reply_ok();
		cJSON_AddNumberToObject(r, "subscribers", subs);
		ch_answer(h, c, r);
	}
	ch_unlock(h);
	cJSON_Delete(vals);
}

static void op_subscribe(node_call *c, const cJSON *req, void *arg)
{
	ch_host *h = arg;
	node_err e = {0};
	const char *topic, *sub;
	if (ch_str(req, "topic", 1, ch_name_ok, CH_NAME_WHAT, &topic, &e) != 0 ||
	    ch_str(req, "sub", 1, ch_cid_ok, CH_CID_WHAT, &sub, &e) != 0)
		CH_FAIL(c, &e);
	ch_lock(h);
	if (ch_subscribe(h, topic, sub, node_call_pipe(c), &e) != 0)
		ch_answer_error(h, c, e.code, "%s", e.msg);
	else
		ch_answer(h, c, node_reply_ok());
	ch_unlock(h);
}

static void op_next(node_call *c, const cJSON *req, void *arg)
{
	ch_host *h = arg;
	node_err e = {0};
	const char *sub;
	long long max, timeout_ms;
	if (ch_str(req, "sub", 1, ch_cid_ok, CH_CID_WHAT, &sub, &e) != 0 ||
	    ch_int(req, "max", 1, CH_READ_MAX, 1000, &max, &e) != 0 ||
	    ch_int(req, "timeout_ms", 0, 86400000LL, -1, &timeout_ms, &e) != 0)
		CH_FAIL(c, &e);
	ch_lock(h);
	ch_waiter *w = ch_waiter_new(CH_W_SUB, c, 0);
	if (w == NULL) {
		ch_answer_error(h, c, NODE_ERR_INTERNAL, "out of memory");
	} else {
		w->max = (int)max;
		if (timeout_ms > 0)
			w->deadline_ms = node_clock_mono_ms() + timeout_ms;
		int rc = ch_sub_next(h, w, sub, &e);
		if (rc < 0 || (rc > 0 && e.rc != 0))
			ch_waiter_fail(h, w, e.code, "%s", e.msg);
		else if (rc == 0 && timeout_ms == 0)
			ch_waiter_fail(h, w, NODE_ERR_TIMEOUT, "nothing published for subscriber %s yet", sub);
		else if (rc == 0)
			ch_park(h, w);
	}
	ch_unlock(h);
}

static void op_unsubscribe(node_call *c, const cJSON *req, void *arg)
{
	ch_host *h = arg;
	node_err e = {0};
	const char *sub;
	if (ch_str(req, "sub", 1, ch_cid_ok, CH_CID_WHAT, &sub, &e) != 0)
		CH_FAIL(c, &e);
	ch_lock(h);
	ch_sub *s = ch_table_get(h->subs, sub);
	if (s)
		ch_unsubscribe(h, s);
	ch_answer(h, c, node_reply_ok());
	ch_unlock(h);
}

const node_op ch_ops[] = {
	{"chan.write", op_write},
	{"chan.read", op_read},
	{"chan.alt", op_alt},
	{"chan.poison", op_poison},
	{"chan.retire", op_retire},
	{"chan.leave", op_leave},
	{"chan.create", op_create},
	{"chan.delete", op_delete},
	{"chan.list", op_list},
	{"pub.publish", op_publish},
	{"pub.subscribe", op_subscribe},
	{"pub.next", op_next},
	{"pub.unsubscribe", op_unsubscribe},
	{NULL, NULL},
};
