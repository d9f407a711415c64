/* Objects and their instances, in Pyro's three modes: one shared instance
 * (calls at once or one at a time, as the kind declares or the config
 * says), one per client session (a transport connection, or an HTTP
 * session header), or a new one per call. The server's lock guards the
 * object list, the session lists and every reference count. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "rpc/rpc.h"

struct rpc_inst {
	rpc_object *obj;
	void *state;
	pthread_mutex_t lock; /* one call at a time, for serialized objects */
	int refs;
	int listed;           /* in obj->sessions */
	char session[80];
	int64_t used_ms;
	rpc_inst *next;
};

struct rpc_object {
	rpc_object *next;
	rpc_server *srv;
	char *name;           /* "" for the functions */
	const rpc_kind *kind;
	int mode;             /* RPC_MODE_* */
	int concurrent;
	int registered;
	cJSON *opts;
	rpc_inst *shared;
	rpc_inst *sessions;
	int nsessions;
};

static int inst_new(rpc_object *o, const char *session, rpc_inst **out, node_err *err)
{
	rpc_inst *i = calloc(1, sizeof *i);
	if (i == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	rpc_obj_cfg cfg = {.name = o->name, .opts = o->opts, .kind = o->kind, .srv = o->srv};
	if (o->kind->create && o->kind->create(&i->state, &cfg, err) != 0) {
		free(i);
		return err->rc ? err->rc : NODE_EINVAL;
	}
	pthread_mutex_init(&i->lock, NULL);
	i->obj = o;
	i->refs = 1;
	snprintf(i->session, sizeof i->session, "%s", session);
	i->used_ms = node_clock_mono_ms();
	*out = i;
	return 0;
}

static void inst_free(rpc_inst *i)
{
	if (i->obj->kind->destroy)
		i->obj->kind->destroy(i->state, i->obj->kind);
	pthread_mutex_destroy(&i->lock);
	free(i);
}

static int mode_of(const cJSON *opts, int *mode, node_err *err)
{
	const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(opts, "mode"));
	*mode = RPC_MODE_SHARED;
	if (m == NULL || strcmp(m, "shared") == 0)
		return 0;
	if (strcmp(m, "session") == 0)
		*mode = RPC_MODE_SESSION;
	else if (strcmp(m, "call") == 0)
		*mode = RPC_MODE_CALL;
	else
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "mode must be shared, session or call, not \"%s\"", m);
	return 0;
}

static int concurrency_of(const cJSON *opts, const rpc_kind *kind, int *out, node_err *err)
{
	const char *c = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(opts, "concurrency"));
	*out = kind->concurrent;
	if (c == NULL)
		return 0;
	if (strcmp(c, "concurrent") == 0)
		*out = 1;
	else if (strcmp(c, "serialized") == 0)
		*out = 0;
	else
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "concurrency must be concurrent or serialized, not \"%s\"", c);
	return 0;
}

int rpc_object_add(rpc_server *s, const char *name, const rpc_kind *kind, const cJSON *opts, int registered,
    node_err *err)
{
	if (rpc_object_find(s, name) != NULL)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "object %s is declared twice", name);
	rpc_object *o = calloc(1, sizeof *o);
	if (o == NULL || (o->name = strdup(name)) == NULL ||
	    (o->opts = opts ? cJSON_Duplicate(opts, 1) : cJSON_CreateObject()) == NULL) {
		if (o)
			free(o->name);
		free(o);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	*o = (rpc_object){.srv = s, .name = o->name, .kind = kind, .registered = registered, .opts = o->opts};
	int rc = mode_of(opts, &o->mode, err);
	if (rc == 0)
		rc = concurrency_of(opts, kind, &o->concurrent, err);
	/* Every mode makes one instance now: a bad setting fails the start, not the first call. */
	if (rc == 0)
		rc = inst_new(o, "", &o->shared, err);
	if (rc != 0) {
		node_err_prefix(err, "object %s (%s): ", name[0] ? name : "functions", kind->name);
		cJSON_Delete(o->opts);
		free(o->name);
		free(o);
		return rc;
	}
	pthread_mutex_lock(&s->lock);
	rpc_object **tail = &s->objects;
	while (*tail)
		tail = &(*tail)->next;
	*tail = o;
	pthread_mutex_unlock(&s->lock);
	return 0;
}

/* Objects are only added before the server starts serving: no lock needed to read. */
rpc_object *rpc_object_find(rpc_server *s, const char *name)
{
	for (rpc_object *o = s->objects; o; o = o->next)
		if (strcmp(o->name, name) == 0)
			return o;
	return NULL;
}

rpc_object *rpc_object_next(rpc_server *s, rpc_object *prev)
{
	return prev ? prev->next : s->objects;
}

int rpc_object_registered(const rpc_object *o)
{
	return o->registered;
}

const char *rpc_object_name(const rpc_object *o)
{
	return o->name;
}

const rpc_method *rpc_object_method(const rpc_object *o, const char *method)
{
	for (const rpc_method *m = o->kind->methods; m && m->name; m++)
		if (strcmp(m->name, method) == 0)
			return m;
	return NULL;
}

static rpc_inst *session_find(rpc_object *o, const char *session)
{
	for (rpc_inst *i = o->sessions; i; i = i->next)
		if (strcmp(i->session, session) == 0)
			return i;
	return NULL;
}

/* Full: the session idle longest makes room (lock held), so a flood of
 * new sessions cannot lock everyone else out; NULL when all are busy. */
static rpc_inst *session_evict(rpc_object *o)
{
	rpc_inst **oldest = NULL;
	for (rpc_inst **p = &o->sessions; *p; p = &(*p)->next)
		if ((*p)->refs == 0 && (oldest == NULL || (*p)->used_ms < (*oldest)->used_ms))
			oldest = p;
	if (oldest == NULL)
		return NULL;
	rpc_inst *i = *oldest;
	*oldest = i->next;
	i->listed = 0;
	o->nsessions--;
	return i;
}

static int acquire_session(rpc_object *o, const char *session, rpc_inst **out, node_err *err)
{
	rpc_server *s = o->srv;
	pthread_mutex_lock(&s->lock);
	rpc_inst *i = session_find(o, session);
	if (i) {
		i->refs++;
		i->used_ms = node_clock_mono_ms();
	}
	rpc_inst *evicted = NULL;
	if (i == NULL && o->nsessions >= RPC_SESSION_MAX)
		evicted = session_evict(o);
	int full = i == NULL && o->nsessions >= RPC_SESSION_MAX;
	pthread_mutex_unlock(&s->lock);
	if (evicted)
		inst_free(evicted);
	if (full)
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "%s has %d sessions already (the limit)", o->name, RPC_SESSION_MAX);
	if (i) {
		*out = i;
		return 0;
	}
	rpc_inst *fresh;
	int rc = inst_new(o, session, &fresh, err);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&s->lock);
	i = session_find(o, session); /* another call of the session may have made one meanwhile */
	if (i) {
		i->refs++;
	} else {
		i = fresh;
		i->listed = 1;
		i->next = o->sessions;
		o->sessions = i;
		o->nsessions++;
		fresh = NULL;
	}
	pthread_mutex_unlock(&s->lock);
	if (fresh)
		inst_free(fresh);
	*out = i;
	return 0;
}

int rpc_object_acquire(rpc_object *o, const char *session, rpc_inst **out, node_err *err)
{
	/* A session mode object called without a session (HTTP without the
	 * header) gets a fresh instance, as in call mode. */
	if (o->mode == RPC_MODE_SESSION && session && session[0])
		return acquire_session(o, session, out, err);
	if (o->mode != RPC_MODE_SHARED)
		return inst_new(o, "", out, err);
	/* The shared instance lives until the server stops: no count to keep,
	 * and no lock on the path every call takes. */
	*out = o->shared;
	return 0;
}

void *rpc_inst_state(rpc_inst *i)
{
	return i->state;
}

/* One more reference for a running method; the shared instance needs none. */
static void inst_hold(rpc_inst *i)
{
	if (i == i->obj->shared)
		return;
	pthread_mutex_lock(&i->obj->srv->lock);
	i->refs++;
	pthread_mutex_unlock(&i->obj->srv->lock);
}

void rpc_inst_enter(rpc_inst *i)
{
	inst_hold(i);
	if (!i->obj->concurrent)
		pthread_mutex_lock(&i->lock);
}

int rpc_inst_try_enter(rpc_inst *i)
{
	if (!i->obj->concurrent && pthread_mutex_trylock(&i->lock) != 0)
		return 0;
	inst_hold(i);
	return 1;
}

void rpc_inst_leave(rpc_inst *i)
{
	if (!i->obj->concurrent)
		pthread_mutex_unlock(&i->lock);
	rpc_inst_release(i);
}

void rpc_inst_release(rpc_inst *i)
{
	rpc_object *o = i->obj;
	if (i == o->shared)
		return;
	pthread_mutex_lock(&o->srv->lock);
	int last = --i->refs == 0 && i != o->shared && !i->listed;
	pthread_mutex_unlock(&o->srv->lock);
	if (last)
		inst_free(i);
}

/* Unlink the sessions that match (session, or idle before idle_before) and
 * have no call running; those with calls are unlisted and go when released. */
static rpc_inst *sessions_take(rpc_object *o, const char *session, int64_t idle_before)
{
	rpc_inst *gone = NULL, **p = &o->sessions;
	while (*p) {
		rpc_inst *i = *p;
		int match = session ? strcmp(i->session, session) == 0 : i->refs == 0 && i->used_ms < idle_before;
		if (!match) {
			p = &i->next;
			continue;
		}
		*p = i->next;
		i->listed = 0;
		o->nsessions--;
		if (i->refs == 0) {
			i->next = gone;
			gone = i;
		}
	}
	return gone;
}

static void sessions_drop(rpc_server *s, const char *session, int64_t idle_before)
{
	rpc_inst *gone = NULL;
	pthread_mutex_lock(&s->lock);
	for (rpc_object *o = s->objects; o; o = o->next) {
		rpc_inst *g = sessions_take(o, session, idle_before);
		while (g) {
			rpc_inst *next = g->next;
			g->next = gone;
			gone = g;
			g = next;
		}
	}
	pthread_mutex_unlock(&s->lock);
	while (gone) {
		rpc_inst *next = gone->next;
		inst_free(gone);
		gone = next;
	}
}

void rpc_objects_session_end(rpc_server *s, const char *session)
{
	sessions_drop(s, session, 0);
}

void rpc_objects_sweep(rpc_server *s, int64_t idle_ms)
{
	sessions_drop(s, NULL, node_clock_mono_ms() - idle_ms);
}

static const char *mode_name(int mode)
{
	return mode == RPC_MODE_SESSION ? "session" : mode == RPC_MODE_CALL ? "call" : "shared";
}

static cJSON *methods_json(const rpc_object *o)
{
	cJSON *a = cJSON_CreateArray();
	for (const rpc_method *m = o->kind->methods; a && m && m->name; m++)
		cJSON_AddItemToArray(a, cJSON_CreateString(m->name));
	return a;
}

cJSON *rpc_object_meta(rpc_server *s, const rpc_object *o)
{
	cJSON *m = cJSON_CreateObject();
	if (m == NULL)
		return NULL;
	cJSON_AddStringToObject(m, "kind", o->kind->name);
	cJSON_AddItemToObject(m, "methods", methods_json(o));
	cJSON_AddStringToObject(m, "mode", mode_name(o->mode));
	cJSON_AddStringToObject(m, "node", s->node ? s->node : "");
	if (s->http_url[0])
		cJSON_AddStringToObject(m, "http", s->http_url);
	return m;
}

cJSON *rpc_objects_json(rpc_server *s)
{
	cJSON *all = cJSON_CreateObject();
	for (rpc_object *o = s->objects; all && o; o = o->next) {
		cJSON *j = cJSON_CreateObject();
		cJSON_AddStringToObject(j, "kind", o->kind->name);
		cJSON_AddStringToObject(j, "mode", mode_name(o->mode));
		cJSON_AddStringToObject(j, "concurrency", o->concurrent ? "concurrent" : "serialized");
		cJSON_AddBoolToObject(j, "registered", o->registered);
		cJSON_AddItemToObject(j, "methods", methods_json(o));
		pthread_mutex_lock(&s->lock);
		cJSON_AddNumberToObject(j, "sessions", o->nsessions);
		pthread_mutex_unlock(&s->lock);
		cJSON_AddItemToObject(all, o->name[0] ? o->name : s->name, j);
	}
	return all;
}

void rpc_objects_free(rpc_server *s)
{
	rpc_object *o = s->objects;
	while (o) {
		rpc_object *next = o->next;
		rpc_inst *i = o->sessions;
		while (i) {
			rpc_inst *in = i->next;
			inst_free(i);
			i = in;
		}
		if (o->shared)
			inst_free(o->shared);
		cJSON_Delete(o->opts);
		free(o->name);
		free(o);
		o = next;
	}
	s->objects = NULL;
}
