/* Running a map: one task over many argument lists (chunk.c puts the
 * public ncl_map in front of this, and mapreduce.c the reductions).
 *
 * The caller's thread submits the items in batches of MAP_BATCH, up to
 * MAP_SUBMITS batches in flight and at most MAP_WINDOW items submitted and
 * not finished; each acknowledged batch goes to the connection's tracker
 * (track.c), which collects results with chunked gets. Outcomes land in the
 * map's slots and the caller's thread hands them to the item callback, in
 * input order or in the order they arrived. A batch that failed for a
 * passing reason (time-out, busy, queue full) is sent again with the same
 * ids, which the broker does not run twice. Items have ids PREFIX-i, the
 * prefix from the options or made for this map. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "client/client_int.h"

#define MAP_BATCH 1000              /* items in one submit */
#define MAP_SUBMITS 8               /* submits in flight */
#define MAP_WINDOW (16 * MAP_BATCH) /* items submitted and not finished, at most */

typedef struct map_range {
	size_t from, to;
} map_range;

typedef struct map_job {
	ncl_owner owner;          /* first member */
	pthread_cond_t cond;      /* an outcome arrived, a submit came back */
	size_t n;
	ncl_watch *w;             /* one per item */
	char **res, **errs;       /* outcomes not handed to the caller yet */
	size_t *arrived;          /* item indices in arrival order */
	size_t finished;          /* outcomes received (= arrived entries) */
	size_t acked;             /* items the broker acknowledged */
	int submits;              /* in flight */
	int closed;               /* the connection closed under the map */
	int fatal;                /* a submit failed for good: its code, */
	ncl_err fatal_err;        /* and message */
	ncl_err last_err;         /* the last passing submit failure */
	map_range *retry;         /* batches to send again */
	size_t nretry, capretry;
	int64_t retry_at;
	int retry_ms;
	char prefix[NCL_ID_MAX - 20]; /* room for "-" and 20 digits */
	int numbered;             /* ids: prefix-(base+i), else prefix-i */
	unsigned long long base;
	size_t per, items;        /* each task stands for per of items (chunks) */
} map_job;

typedef struct map_batch {
	map_job *job;
	size_t from, to;
} map_batch;

/* ---- the owner side ---- */

static const char *map_id(ncl_owner *o, const ncl_watch *w, char *buf, size_t n)
{
	map_job *j = (map_job *)o;
	size_t i = (size_t)(w - j->w);
	if (j->numbered)
		snprintf(buf, n, "%s-%llu", j->prefix, j->base + i);
	else
		snprintf(buf, n, "%s-%zu", j->prefix, i);
	return buf;
}

static void map_done(ncl_owner *o, ncl_watch *w, ncl_outcome *out)
{
	map_job *j = (map_job *)o;
	size_t i = (size_t)(w - j->w);
	if (out->state == NCL_CLOSED) {
		j->closed = 1;
	} else {
		j->res[i] = out->result;
		j->errs[i] = out->error;
		out->result = out->error = NULL;
		j->arrived[j->finished++] = i;
		if (out->state == NCL_SUCCEEDED || out->state == NCL_FAILED) {
			size_t first = i * j->per, jobs = first + j->per <= j->items ? j->per : j->items - first;
			ncl_stats_add_locked(o->conn, out->worker, jobs, out->run_ms);
		}
	}
	pthread_cond_signal(&j->cond);
}

static void map_destroy(ncl_owner *o)
{
	map_job *j = (map_job *)o;
	for (size_t i = 0; j->res && i < j->n; i++) {
		free(j->res[i]);
		free(j->errs[i]);
	}
	free(j->res);
	free(j->errs);
	free(j->w);
	free(j->arrived);
	free(j->retry);
	pthread_cond_destroy(&j->cond);
	free(j);
}

static const ncl_owner_ops map_ops = {map_id, map_done, map_destroy};

static int map_new(ncl_conn *c, size_t n, const ncl_map_shape *shape, const ncl_opts *opts, map_job **out,
    ncl_err *err)
{
	map_job *j = calloc(1, sizeof *j);
	if (j == NULL)
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	j->n = n;
	j->per = shape ? shape->per : 1;
	j->items = shape ? shape->items : n;
	j->w = calloc(n, sizeof *j->w);
	j->res = calloc(n, sizeof *j->res);
	j->errs = calloc(n, sizeof *j->errs);
	j->arrived = calloc(n, sizeof *j->arrived);
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(&j->cond, &a);
	pthread_condattr_destroy(&a);
	if (j->w == NULL || j->res == NULL || j->errs == NULL || j->arrived == NULL) {
		map_destroy(&j->owner);
		return ncl_set(err, NCL_ENOMEM, "out of memory for a map of %zu items", n);
	}
	j->retry_ms = NCL_RETRY_MIN_MS;
	if (opts && opts->id) {
		if (strlen(opts->id) >= sizeof j->prefix) {
			map_destroy(&j->owner);
			return ncl_set(err, NCL_EINVAL, "map id prefix is longer than %zu characters", sizeof j->prefix - 1);
		}
		snprintf(j->prefix, sizeof j->prefix, "%s", opts->id);
	} else {
		pthread_mutex_lock(&c->lock);
		j->base = (unsigned long long)c->seq;
		c->seq += n;
		pthread_mutex_unlock(&c->lock);
		snprintf(j->prefix, sizeof j->prefix, "%s", c->prefix);
		j->numbered = 1;
	}
	ncl_owner_init(&j->owner, &map_ops, c);
	for (size_t i = 0; i < n; i++)
		j->w[i].owner = &j->owner;
	*out = j;
	return 0;
}

/* ---- submitting ---- */

/* Failures worth sending the same batch again for. */
static int map_passing(int rc, const node_err *e)
{
	if (rc == NODE_ETIMEDOUT || rc == NODE_EIO)
		return 1;
	if (rc != NODE_EREMOTE)
		return 0;
	static const char *const codes[] = {NODE_ERR_BUSY, "queue_full", NODE_ERR_DISK_FULL, NODE_ERR_SHUTDOWN, NODE_ERR_TIMEOUT};
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
		if (strcmp(e->code, codes[i]) == 0)
			return 1;
	return 0;
}

static void map_retry_locked(map_job *j, size_t from, size_t to)
{
	if (j->nretry == j->capretry) {
		size_t cap = j->capretry ? 2 * j->capretry : 8;
		map_range *r = realloc(j->retry, cap * sizeof *r);
		if (r == NULL) {
			j->fatal = ncl_set(&j->fatal_err, NCL_ENOMEM, "out of memory");
			return;
		}
		j->retry = r;
		j->capretry = cap;
	}
	j->retry[j->nretry++] = (map_range){from, to};
	j->retry_at = node_clock_mono_ms() + j->retry_ms;
	j->retry_ms = j->retry_ms * 2 < NCL_RETRY_MAX_MS ? j->retry_ms * 2 : NCL_RETRY_MAX_MS;
}

static void map_submitted(int rc, cJSON *reply, const node_err *err, void *arg)
{
	map_batch *b = arg;
	map_job *j = b->job;
	ncl_conn *c = j->owner.conn;
	cJSON_Delete(reply);
	ncl_owner *gone = NULL;
	pthread_mutex_lock(&c->lock);
	j->submits--;
	if (j->owner.abandoned) {
		/* the map has returned */
	} else if (rc == 0) {
		for (size_t i = b->from; i < b->to; i++)
			ncl_track_locked(c, &j->w[i]);
		j->acked += b->to - b->from;
		j->retry_ms = NCL_RETRY_MIN_MS;
		ncl_track_pump(c);
	} else if (j->acked == 0 && (rc == NODE_ETIMEDOUT || rc == NODE_EIO) && !j->fatal) {
		/* Nothing went through yet: the broker is not there, say so now
		 * rather than retry without end. */
		j->fatal = ncl_from_node(&j->fatal_err, err);
		ncl_prefix(&j->fatal_err, "map: ");
	} else if (map_passing(rc, err)) {
		ncl_from_node(&j->last_err, err);
		map_retry_locked(j, b->from, b->to);
	} else if (!j->fatal) {
		j->fatal = ncl_from_node(&j->fatal_err, err);
		ncl_prefix(&j->fatal_err, "submitting items %zu-%zu: ", b->from, b->to - 1);
	}
	pthread_cond_signal(&j->cond);
	ncl_owner_unref_locked(&j->owner, &gone);
	pthread_mutex_unlock(&c->lock);
	free(b);
	ncl_owners_destroy(gone);
}

/* The items from..to as one submit request. */
static cJSON *map_request(map_job *j, const char *task, const char *const *args, size_t from, size_t to,
    const ncl_opts *opts, ncl_err *err)
{
	cJSON *req = cJSON_CreateObject();
	cJSON *tasks = req ? cJSON_AddArrayToObject(req, "tasks") : NULL;
	if (tasks == NULL || cJSON_AddStringToObject(req, "op", "submit") == NULL)
		goto nomem;
	char id[NCL_ID_MAX + 1];
	for (size_t i = from; i < to; i++) {
		cJSON *t = cJSON_CreateObject();
		if (t == NULL)
			goto nomem;
		cJSON_AddItemToArray(tasks, t);
		if (cJSON_AddStringToObject(t, "id", map_id(&j->owner, &j->w[i], id, sizeof id)) == NULL ||
		    cJSON_AddStringToObject(t, "name", task) == NULL ||
		    (args[i] && cJSON_AddRawToObject(t, "args", args[i]) == NULL))
			goto nomem;
		if (ncl_opts_apply(t, opts, 1, err) != 0) {
			cJSON_Delete(req);
			return NULL;
		}
	}
	return req;
nomem:
	cJSON_Delete(req);
	ncl_set(err, NCL_ENOMEM, "out of memory");
	return NULL;
}

/* The next batch to send: one due again, else new items (from *next).
 * 0 when there is none now. */
static int map_pick_locked(map_job *j, const char *const *args, size_t *next, size_t max_bytes, map_range *r)
{
	if (j->nretry > 0 && node_clock_mono_ms() >= j->retry_at) {
		*r = j->retry[--j->nretry];
		return 1;
	}
	if (*next >= j->n || *next - j->finished >= MAP_WINDOW)
		return 0;
	size_t bytes = 0, to = *next;
	while (to < j->n && to - *next < MAP_BATCH) {
		size_t len = (args[to] ? strlen(args[to]) : 0) + 2 * NCL_ID_MAX;
		if (to > *next && bytes + len > max_bytes)
			break;
		bytes += len;
		to++;
	}
	*r = (map_range){*next, to};
	*next = to;
	return 1;
}

/* ---- the map ---- */

typedef struct map_tally {
	size_t delivered, failed, first_failed;
	char first_error[200];
} map_tally;

/* Hand the outcomes that are due to fn; 1 when fn said stop. Lock held,
 * dropped around fn. */
static int map_deliver_locked(map_job *j, int mode, size_t *cursor, ncl_item_fn fn, void *arg, map_tally *t)
{
	ncl_conn *c = j->owner.conn;
	for (;;) {
		size_t i;
		if (mode == NCL_AS_COMPLETED) {
			if (*cursor >= j->finished)
				return 0;
			i = j->arrived[(*cursor)++];
		} else {
			if (*cursor >= j->n || (j->res[*cursor] == NULL && j->errs[*cursor] == NULL))
				return 0;
			i = (*cursor)++;
		}
		char *res = j->res[i], *error = j->errs[i];
		j->res[i] = j->errs[i] = NULL;
		pthread_mutex_unlock(&c->lock);
		if (error && t->failed++ == 0) {
			t->first_failed = i;
			snprintf(t->first_error, sizeof t->first_error, "%s", error);
		}
		int stop = fn ? fn(i, error ? NULL : res, error, arg) : 0;
		free(res);
		free(error);
		t->delivered++;
		pthread_mutex_lock(&c->lock);
		if (stop)
			return 1;
	}
}

int ncl_map_run(ncl_conn *c, const char *task, const char *const *args_json, size_t n, int mode,
    const ncl_map_shape *shape, ncl_item_fn fn, void *arg, const ncl_opts *opts, int timeout_ms, ncl_err *err)
{
	map_job *j = NULL;
	int rc = n == 0 ? 0 : map_new(c, n, shape, opts, &j, err);
	if (rc != 0 || n == 0)
		return rc;
	int64_t deadline = ncl_deadline(timeout_ms == 0 ? -1 : timeout_ms);
	size_t max_bytes = c->wire.limits.max_message / 2, next = 0, cursor = 0;
	map_tally t = {0};
	pthread_mutex_lock(&c->lock);
	for (;;) {
		if (j->fatal) {
			rc = j->fatal;
			if (err)
				*err = j->fatal_err;
			break;
		}
		if (c->closing || j->closed) {
			rc = ncl_set(err, NCL_ECLOSED, "map: the connection to broker %s was closed", c->url);
			break;
		}
		map_range r;
		while (j->submits < MAP_SUBMITS && map_pick_locked(j, args_json, &next, max_bytes, &r)) {
			map_batch *b = malloc(sizeof *b);
			if (b == NULL) {
				map_retry_locked(j, r.from, r.to);
				break;
			}
			*b = (map_batch){j, r.from, r.to};
			j->submits++;
			j->owner.refs++; /* the batch's, dropped in map_submitted */
			pthread_mutex_unlock(&c->lock);
			ncl_err e = {0};
			node_err ne = {0};
			cJSON *req = map_request(j, task, args_json, r.from, r.to, opts, &e);
			int64_t left = deadline < 0 ? c->call_ms : deadline - node_clock_mono_ms();
			int call_ms = left < 1 ? 1 : left < c->call_ms ? (int)left : c->call_ms;
			int src = req ? ncl_call_async(c, req, call_ms, map_submitted, b, &ne)
			              : node_err_set(&ne, e.code, NODE_ERR_INTERNAL, "%s", e.msg);
			cJSON_Delete(req);
			if (src != 0)
				map_submitted(src, NULL, &ne, b);
			pthread_mutex_lock(&c->lock);
		}
		if (map_deliver_locked(j, mode, &cursor, fn, arg, &t)) {
			rc = ncl_set(err, NCL_ECANCEL, "map of %zu items stopped by its item callback after %zu", n, t.delivered);
			break;
		}
		if (t.delivered == n)
			break;
		int64_t now = node_clock_mono_ms();
		if (deadline >= 0 && now >= deadline) {
			char tm[32];
			ncl_fmt_ms(timeout_ms, tm, sizeof tm);
			if (j->per > 1)
				rc = ncl_set(err, NCL_ETIMEDOUT, "map of %zu items in %zu chunks: %zu chunks not finished after %s",
				    j->items, n, n - j->finished, tm);
			else
				rc = ncl_set(err, NCL_ETIMEDOUT, "map of %zu %s tasks: %zu not finished after %s", n, task,
				    n - j->finished, tm);
			if (j->acked < n)
				ncl_append(err, "; broker %s acknowledged %zu of %zu submits%s%s", c->url, j->acked, n,
				    j->last_err.msg[0] ? "; the last error: " : "", j->last_err.msg);
			break;
		}
		int64_t until = deadline;
		if (j->nretry > 0 && j->submits < MAP_SUBMITS && (until < 0 || j->retry_at < until))
			until = j->retry_at;
		ncl_cond_wait_until(&j->cond, &c->lock, until);
	}
	ncl_owner *gone = NULL;
	ncl_track_forget_locked(c, &j->owner, &gone); /* in-flight gets drop theirs on return */
	ncl_owner_unref_locked(&j->owner, &gone);
	pthread_mutex_unlock(&c->lock);
	ncl_owners_destroy(gone);
	if (rc == 0 && t.failed > 0)
		rc = ncl_set(err, NCL_ETASK, "%zu of %zu %s tasks failed; the first, item %zu: %s", t.failed, n, task,
		    t.first_failed, t.first_error);
	return rc;
}
