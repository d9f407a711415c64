/* Submitting one task and the future that stands for its result: ready,
 * wait, result or error, the completion callback, waiting for all or any of
 * many, and what the broker knows about a task. A proxy call's future
 * (rpc.c) is the same object, ended by its call instead of the tracker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "client/client_int.h"

/* ---- the owner side: the tracker delivers here ---- */

static const char *future_id(ncl_owner *o, const ncl_watch *w, char *buf, size_t n)
{
	return ((ncl_future *)o)->id;
}

static void future_done(ncl_owner *o, ncl_watch *w, ncl_outcome *out)
{
	ncl_future *f = (ncl_future *)o;
	ncl_conn *c = o->conn;
	if (__atomic_load_n(&f->state, __ATOMIC_RELAXED) != NCL_PENDING)
		return;
	f->result = out->result;
	f->error = out->error;
	f->entry = out->entry;
	out->result = out->error = out->entry = NULL;
	if (!f->rpc && (out->state == NCL_SUCCEEDED || out->state == NCL_FAILED))
		ncl_stats_add_locked(c, out->worker, 1, out->run_ms);
	__atomic_store_n(&f->state, (int)out->state, __ATOMIC_RELEASE); /* after the strings */
	pthread_cond_broadcast(&c->changed);
	ncl_callback_queue_locked(c, f);
}

static void future_destroy(ncl_owner *o)
{
	ncl_future *f = (ncl_future *)o;
	free(f->result);
	free(f->error);
	cJSON_free(f->entry);
	free(f);
}

static const ncl_owner_ops future_ops = {future_id, future_done, future_destroy};

/* ---- submit ---- */

/* Add the task options to a task object; texts are checked JSON. */
int ncl_opts_apply(cJSON *task, const ncl_opts *o, int checked, ncl_err *err)
{
	if (o == NULL)
		return 0;
	if (o->queue && cJSON_AddStringToObject(task, "queue", o->queue) == NULL)
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	if (o->has_priority && cJSON_AddNumberToObject(task, "priority", o->priority) == NULL)
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	const char *texts[2] = {o->kwargs_json, o->options_json};
	const char *names[2] = {"kwargs", "options"};
	for (int i = 0; i < 2; i++) {
		if (texts[i] == NULL)
			continue;
		int rc = checked ? 0 : ncl_check_json(texts[i], cJSON_Object, names[i], err);
		if (rc != 0)
			return rc;
		if (cJSON_AddRawToObject(task, names[i], texts[i]) == NULL)
			return ncl_set(err, NCL_ENOMEM, "out of memory");
	}
	return 0;
}

/* f (with its id) becomes a future of c and is watched until it finishes. */
static void future_start(ncl_conn *c, ncl_future *f)
{
	ncl_owner_init(&f->owner, &future_ops, c); /* keeps want_entry */
	f->watch.owner = &f->owner;
	pthread_mutex_lock(&c->lock);
	if (c->closing) {
		char msg[640];
		snprintf(msg, sizeof msg, "the connection to broker %s was closed before the result came", c->url);
		ncl_outcome o = {NCL_CLOSED, NULL, strdup(msg), "", -1, NULL};
		future_done(&f->owner, &f->watch, &o);
		free(o.error);
	} else {
		ncl_track_locked(c, &f->watch);
		ncl_track_pump(c);
	}
	pthread_mutex_unlock(&c->lock);
}

int ncl_submit(ncl_conn *c, const char *task, const char *args_json, const ncl_opts *opts, int timeout_ms,
    ncl_future **out, ncl_err *err)
{
	if (out)
		*out = NULL;
	if (c == NULL || task == NULL || *task == '\0' || out == NULL)
		return ncl_set(err, NCL_EINVAL, "ncl_submit: a connection, a task name and out are required");
	int rc = args_json ? ncl_check_json(args_json, cJSON_Array, "args", err) : 0;
	if (rc != 0)
		return rc;
	ncl_future *f = calloc(1, sizeof *f);
	if (f == NULL)
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	if (opts && opts->id) {
		if (strlen(opts->id) > NCL_ID_MAX) {
			free(f);
			return ncl_set(err, NCL_EINVAL, "task id is longer than %d characters", NCL_ID_MAX);
		}
		snprintf(f->id, sizeof f->id, "%s", opts->id);
	} else {
		ncl_new_id(c, f->id, sizeof f->id);
	}
	cJSON *req = cJSON_CreateObject(), *reply = NULL;
	cJSON *tasks = req ? cJSON_AddArrayToObject(req, "tasks") : NULL;
	cJSON *t = cJSON_CreateObject();
	if (tasks == NULL || t == NULL || cJSON_AddStringToObject(req, "op", "submit") == NULL) {
		cJSON_Delete(t);
		rc = ncl_set(err, NCL_ENOMEM, "out of memory");
	} else {
		cJSON_AddItemToArray(tasks, t);
		if (cJSON_AddStringToObject(t, "id", f->id) == NULL || cJSON_AddStringToObject(t, "name", task) == NULL ||
		    (args_json && cJSON_AddRawToObject(t, "args", args_json) == NULL))
			rc = ncl_set(err, NCL_ENOMEM, "out of memory");
		if (rc == 0)
			rc = ncl_opts_apply(t, opts, 0, err);
	}
	if (rc == 0)
		rc = ncl_call(c, req, timeout_ms, &reply, err);
	cJSON_Delete(req);
	cJSON_Delete(reply);
	if (rc != 0) {
		free(f);
		return rc;
	}
	future_start(c, f);
	*out = f;
	return 0;
}

int ncl_future_watch(ncl_conn *c, const char *id, int want_entry, ncl_future **out, ncl_err *err)
{
	if (out)
		*out = NULL;
	if (c == NULL || id == NULL || *id == '\0' || out == NULL)
		return ncl_set(err, NCL_EINVAL, "ncl_future_for: a connection, a task id and out are required");
	if (strlen(id) > NCL_ID_MAX)
		return ncl_set(err, NCL_EINVAL, "task id is longer than %d characters", NCL_ID_MAX);
	ncl_future *f = calloc(1, sizeof *f);
	if (f == NULL)
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	snprintf(f->id, sizeof f->id, "%s", id);
	f->owner.want_entry = want_entry;
	future_start(c, f);
	*out = f;
	return 0;
}

int ncl_future_for(ncl_conn *c, const char *id, ncl_future **out, ncl_err *err)
{
	return ncl_future_watch(c, id, 0, out, err);
}

const char *ncl_future_entry(const ncl_future *f)
{
	return ncl_future_ready(f) ? f->entry : NULL;
}

/* ---- futures of proxy calls ---- */

int ncl_future_rpc_new(ncl_conn *c, const char *id, ncl_future **out, ncl_err *err)
{
	ncl_future *f = calloc(1, sizeof *f);
	if (f == NULL)
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	snprintf(f->id, sizeof f->id, "%s", id);
	f->rpc = 1;
	f->watch.owner = &f->owner;
	ncl_owner_init(&f->owner, &future_ops, c);
	pthread_mutex_lock(&c->lock);
	f->owner.refs++; /* the call's, until ncl_future_rpc_end */
	pthread_mutex_unlock(&c->lock);
	*out = f;
	return 0;
}

void ncl_future_rpc_end(ncl_future *f, int code, int rpc_code, const char *type, char *result, char *msg)
{
	ncl_conn *c = f->owner.conn;
	ncl_owner *gone = NULL;
	ncl_state state = code == 0 ? NCL_SUCCEEDED : code == NCL_ECLOSED ? NCL_CLOSED : NCL_FAILED;
	ncl_outcome o = {state, result, msg, "", -1, NULL};
	pthread_mutex_lock(&c->lock);
	if (ncl_future_state(f) == NCL_PENDING) {
		f->err_code = code;
		f->rpc_code = rpc_code;
		snprintf(f->rpc_type, sizeof f->rpc_type, "%s", type ? type : "");
	}
	future_done(&f->owner, &f->watch, &o); /* takes the strings when f was pending */
	ncl_owner_unref_locked(&f->owner, &gone);
	pthread_mutex_unlock(&c->lock);
	free(o.result);
	free(o.error);
	ncl_owners_destroy(gone);
}

char *ncl_future_rpc_take(ncl_future *f)
{
	ncl_conn *c = f->owner.conn;
	pthread_mutex_lock(&c->lock);
	char *r = ncl_future_state(f) == NCL_SUCCEEDED ? f->result : NULL;
	if (r)
		f->result = NULL;
	pthread_mutex_unlock(&c->lock);
	return r;
}

/* ---- reading a future ---- */

int ncl_future_ready(const ncl_future *f)
{
	return f && __atomic_load_n(&f->state, __ATOMIC_ACQUIRE) != NCL_PENDING;
}

ncl_state ncl_future_state(const ncl_future *f)
{
	return f ? (ncl_state)__atomic_load_n(&f->state, __ATOMIC_ACQUIRE) : NCL_PENDING;
}

const char *ncl_future_result(const ncl_future *f)
{
	return ncl_future_state(f) == NCL_SUCCEEDED ? f->result : NULL;
}

const char *ncl_future_error(const ncl_future *f)
{
	ncl_state s = ncl_future_state(f);
	return s == NCL_FAILED || s == NCL_CLOSED || s == NCL_CANCELLED ? f->error : NULL;
}

const char *ncl_future_id(const ncl_future *f)
{
	return f ? f->id : "";
}

/* A proxy call's outcome: the code its call ended with, as ncl_proxy_call
 * gives it. */
static int rpc_outcome(const ncl_future *f, ncl_err *err)
{
	ncl_state s = ncl_future_state(f);
	if (s == NCL_SUCCEEDED)
		return 0;
	if (s == NCL_PENDING)
		return ncl_set(err, NCL_EINVAL, "call %s is not finished", f->id);
	int code = s == NCL_CLOSED ? NCL_ECLOSED : f->err_code ? f->err_code : NCL_EIO;
	ncl_set(err, code, "%s", f->error ? f->error : ncl_strerror(code));
	if (err) {
		err->rpc_code = f->rpc_code;
		snprintf(err->remote, sizeof err->remote, "%s", f->rpc_type);
	}
	return code;
}

/* The outcome of a finished future as a return code. */
static int future_outcome(const ncl_future *f, ncl_err *err)
{
	if (f->rpc)
		return rpc_outcome(f, err);
	switch (ncl_future_state(f)) {
	case NCL_SUCCEEDED:
		return 0;
	case NCL_FAILED:
		return ncl_set(err, NCL_ETASK, "task %s failed: %s", f->id, f->error ? f->error : "");
	case NCL_CLOSED:
		return ncl_set(err, NCL_ECLOSED, "task %s: %s", f->id, f->error ? f->error : "connection closed");
	case NCL_CANCELLED:
		return ncl_set(err, NCL_ECANCEL, "task %s was cancelled: %s", f->id, f->error ? f->error : "");
	default:
		return ncl_set(err, NCL_EINVAL, "task %s is not finished", f->id);
	}
}

/* ---- waiting ---- */

static int wait_timed_out(size_t left, size_t n, const ncl_future *first, int timeout_ms, ncl_err *err)
{
	char t[32];
	ncl_fmt_ms(timeout_ms, t, sizeof t);
	const char *what = first->rpc ? "call" : "task";
	if (n == 1)
		return ncl_set(err, NCL_ETIMEDOUT, "%s %s did not finish in %s", what, first->id, t);
	return ncl_set(err, NCL_ETIMEDOUT, "%zu of %zu %ss did not finish in %s (the first: %s)", left, n, what, t, first->id);
}

/* Check that fs holds n futures of one connection. */
static int wait_args(ncl_future *const *fs, size_t n, const char *fn, ncl_err *err)
{
	if (fs == NULL || n == 0)
		return ncl_set(err, NCL_EINVAL, "%s: no futures", fn);
	for (size_t i = 0; i < n; i++)
		if (fs[i] == NULL || fs[i]->owner.conn != fs[0]->owner.conn)
			return ncl_set(err, NCL_EINVAL, "%s: future %zu is NULL or of another connection", fn, i);
	return 0;
}

int ncl_future_wait(ncl_future *f, int timeout_ms, ncl_err *err)
{
	return ncl_wait_all(&f, 1, timeout_ms, err);
}

int ncl_wait_all(ncl_future *const *fs, size_t n, int timeout_ms, ncl_err *err)
{
	int rc = wait_args(fs, n, "ncl_wait_all", err);
	if (rc != 0)
		return rc;
	ncl_conn *c = fs[0]->owner.conn;
	int64_t deadline = ncl_deadline(timeout_ms);
	size_t i = 0; /* fs[0..i) are finished */
	pthread_mutex_lock(&c->lock);
	for (;;) {
		while (i < n && ncl_future_ready(fs[i]))
			i++;
		if (i == n || (deadline >= 0 && node_clock_mono_ms() >= deadline))
			break;
		ncl_cond_wait_until(&c->changed, &c->lock, deadline);
	}
	pthread_mutex_unlock(&c->lock);
	if (i < n) {
		size_t left = 0;
		for (size_t j = i; j < n; j++)
			left += !ncl_future_ready(fs[j]);
		return wait_timed_out(left, n, fs[i], timeout_ms, err);
	}
	size_t failed = 0, first = 0;
	for (size_t j = 0; j < n; j++)
		if (ncl_future_state(fs[j]) != NCL_SUCCEEDED && failed++ == 0)
			first = j;
	if (failed == 0)
		return 0;
	rc = future_outcome(fs[first], err);
	if (n > 1)
		ncl_prefix(err, "%zu of %zu %s failed; ", failed, n, fs[first]->rpc ? "calls" : "tasks");
	return rc;
}

int ncl_wait_any(ncl_future *const *fs, size_t n, int timeout_ms, size_t *index, ncl_err *err)
{
	int rc = wait_args(fs, n, "ncl_wait_any", err);
	if (rc != 0)
		return rc;
	ncl_conn *c = fs[0]->owner.conn;
	int64_t deadline = ncl_deadline(timeout_ms);
	size_t found = n;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		for (size_t i = 0; i < n && found == n; i++)
			if (ncl_future_ready(fs[i]))
				found = i;
		if (found < n || (deadline >= 0 && node_clock_mono_ms() >= deadline))
			break;
		ncl_cond_wait_until(&c->changed, &c->lock, deadline);
	}
	pthread_mutex_unlock(&c->lock);
	if (found == n)
		return wait_timed_out(n, n, fs[0], timeout_ms, err);
	if (index)
		*index = found;
	return future_outcome(fs[found], err);
}

/* ---- callbacks and freeing ---- */

int ncl_future_on_done(ncl_future *f, ncl_done_fn fn, void *arg)
{
	if (f == NULL || fn == NULL)
		return NCL_EINVAL;
	ncl_conn *c = f->owner.conn;
	pthread_mutex_lock(&c->lock);
	if (f->cb != NULL) {
		pthread_mutex_unlock(&c->lock);
		return NCL_EINVAL;
	}
	f->cb = fn;
	f->cb_arg = arg;
	int now = 0;
	if (ncl_future_ready(f)) {
		if (c->closing && c->cl == NULL) /* the callback thread has gone */
			now = f->cb_queued = 1;
		else
			ncl_callback_queue_locked(c, f);
	}
	pthread_mutex_unlock(&c->lock);
	if (now)
		fn(f, arg);
	return 0;
}

void ncl_future_free(ncl_future *f)
{
	if (f == NULL)
		return;
	ncl_conn *c = f->owner.conn;
	ncl_owner *gone = NULL;
	pthread_mutex_lock(&c->lock);
	if (f->cb == NULL) {
		/* Nobody wants the outcome: stop watching the task. A callback
		 * keeps it watched until it has run. */
		ncl_track_forget_locked(c, &f->owner, &gone);
	}
	ncl_owner_unref_locked(&f->owner, &gone);
	pthread_mutex_unlock(&c->lock);
	ncl_owners_destroy(gone);
}

/* ---- what the broker knows ---- */

static int64_t info_ms(const cJSON *t, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(t, key);
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static void info_str(const cJSON *t, const char *key, char *out, size_t n)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(t, key));
	snprintf(out, n, "%s", s ? s : "");
}

int ncl_task_info(ncl_conn *c, const char *id, int timeout_ms, ncl_info *out, ncl_err *err)
{
	if (c == NULL || id == NULL || out == NULL)
		return ncl_set(err, NCL_EINVAL, "ncl_task_info: a connection, an id and out are required");
	memset(out, 0, sizeof *out);
	cJSON *req = cJSON_CreateObject(), *reply = NULL;
	if (req == NULL || cJSON_AddStringToObject(req, "op", "status") == NULL ||
	    cJSON_AddStringToObject(req, "id", id) == NULL) {
		cJSON_Delete(req);
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	}
	int rc = ncl_call(c, req, timeout_ms, &reply, err);
	cJSON_Delete(req);
	if (rc == 0) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(reply, "task");
		info_str(t, "state", out->state, sizeof out->state);
		info_str(t, "name", out->name, sizeof out->name);
		info_str(t, "queue", out->queue, sizeof out->queue);
		info_str(t, "worker", out->worker, sizeof out->worker);
		out->priority = (int)info_ms(t, "priority");
		out->deliveries = (int)info_ms(t, "deliveries");
		out->submitted_ms = info_ms(t, "submitted_ms");
		out->started_ms = info_ms(t, "started_ms");
		out->finished_ms = info_ms(t, "finished_ms");
	}
	cJSON_Delete(reply);
	return rc;
}

/* ---- cancel ---- */

/* The revoke reply's entry for our one id: whether it was revoked, and the
 * state it is in. */
static int cancel_read(const cJSON *reply, const char *id, int *revoked, const char **state)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(reply, "results");
	const cJSON *e = cJSON_IsArray(list) ? list->child : NULL;
	const char *eid = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "id"));
	if (eid == NULL || strcmp(eid, id) != 0)
		return -1;
	*revoked = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "revoked"));
	*state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "state"));
	return 0;
}

int ncl_future_cancel(ncl_future *f, int timeout_ms, ncl_err *err)
{
	if (f == NULL)
		return ncl_set(err, NCL_EINVAL, "ncl_future_cancel: no future");
	if (f->rpc) /* sent at once: the server has it */
		return ncl_set(err, NCL_ESTARTED, "call %s cannot be cancelled: it has been sent", f->id);
	ncl_conn *c = f->owner.conn;
	if (ncl_future_ready(f) && ncl_future_state(f) != NCL_CANCELLED)
		return ncl_set(err, NCL_ESTARTED, "task %s has finished already", f->id);
	cJSON *req = cJSON_CreateObject(), *reply = NULL;
	cJSON *ids = req ? cJSON_AddArrayToObject(req, "ids") : NULL;
	if (ids == NULL || cJSON_AddStringToObject(req, "op", "revoke") == NULL) {
		cJSON_Delete(req);
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	}
	cJSON_AddItemToArray(ids, cJSON_CreateString(f->id));
	int rc = ncl_call(c, req, timeout_ms, &reply, err);
	cJSON_Delete(req);
	int revoked = 0;
	const char *state = NULL;
	if (rc == 0 && cancel_read(reply, f->id, &revoked, &state) != 0)
		rc = ncl_set(err, NCL_EIO, "broker %s answered revoke without an entry for task %s", c->url, f->id);
	if (rc == 0 && !revoked) {
		if (state && strcmp(state, "unknown") == 0)
			rc = ncl_set(err, NCL_ENOTFOUND, "broker %s does not know task %s", c->url, f->id);
		else if (state && strcmp(state, "queued") == 0) /* its submit or a revoke is still being written */
			rc = ncl_set(err, NCL_EIO, "task %s is being submitted or revoked right now; try again", f->id);
		else
			rc = ncl_set(err, NCL_ESTARTED, "task %s cannot be cancelled: it is %s", f->id, state ? state : "running");
	}
	cJSON_Delete(reply);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&c->lock);
	ncl_outcome o = {NCL_CANCELLED, NULL, strdup("cancelled before it started"), "", -1, NULL};
	future_done(&f->owner, &f->watch, &o); /* the tracker's later outcome finds it finished */
	free(o.error);
	pthread_mutex_unlock(&c->lock);
	return 0;
}
