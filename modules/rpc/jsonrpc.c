/* The JSON-RPC 2.0 engine: checks each request of a message (or batch),
 * finds its object and method, puts by-name params in order, runs the
 * method inline or on the pool, and gathers the answers, which may come
 * later and from any thread, into the one reply the message gets. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "rpc/rpc.h"

/* The answers of one message: a batch, or a single request (one slot). */
typedef struct rpc_batch {
	rpc_done_fn done;
	void *arg;
	int is_array;
	int acked;          /* answered already (only notifications): drop the rest */
	size_t budget;      /* bytes the answers may take: the message limit */
	atomic_size_t used;
	int n;
	atomic_int left;    /* slots not answered yet, plus one while starting */
	cJSON *slots[];     /* NULL for notifications */
} rpc_batch;

struct rpc_req {
	rpc_server *srv;
	rpc_batch *batch;
	int slot;
	cJSON *id;          /* NULL: a notification, nobody hears the answer */
	const rpc_method *m;
	rpc_object *obj;
	rpc_inst *inst;
	cJSON *params;      /* always an array */
	int64_t deadline_ms;
};

static void batch_put(rpc_batch *b)
{
	if (atomic_fetch_sub(&b->left, 1) != 1)
		return;
	cJSON *reply = NULL;
	if (b->is_array) {
		reply = cJSON_CreateArray();
		for (int i = 0; i < b->n; i++)
			if (b->slots[i] && reply)
				cJSON_AddItemToArray(reply, b->slots[i]);
			else
				cJSON_Delete(b->slots[i]);
		if (reply && cJSON_GetArraySize(reply) == 0) {
			cJSON_Delete(reply);
			reply = NULL;
		}
	} else {
		reply = b->slots[0];
	}
	if (b->acked)
		cJSON_Delete(reply);
	else
		b->done(reply, b->arg);
	free(b);
}

static cJSON *response_new(const cJSON *id)
{
	cJSON *r = cJSON_CreateObject();
	if (r == NULL)
		return NULL;
	cJSON_AddStringToObject(r, "jsonrpc", "2.0");
	cJSON_AddItemToObject(r, "id", id ? cJSON_Duplicate(id, 1) : cJSON_CreateNull());
	return r;
}

static cJSON *error_response(const cJSON *id, int code, const char *msg, cJSON *data)
{
	cJSON *r = response_new(id);
	cJSON *e = r ? cJSON_AddObjectToObject(r, "error") : NULL;
	if (e == NULL) {
		cJSON_Delete(r);
		cJSON_Delete(data);
		return NULL;
	}
	cJSON_AddNumberToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", msg);
	if (data)
		cJSON_AddItemToObject(e, "data", data);
	return r;
}

cJSON *rpc_error_response(int code, const char *message)
{
	return error_response(NULL, code, message, NULL);
}

/* About how many bytes v prints to (strings without their escapes): a
 * walk, much cheaper than printing. */
static size_t json_size(const cJSON *v)
{
	if (cJSON_IsString(v))
		return strlen(v->valuestring) + 2;
	if (cJSON_IsNumber(v))
		return 24;
	if (!cJSON_IsArray(v) && !cJSON_IsObject(v))
		return 5;
	size_t n = 2;
	for (const cJSON *c = v->child; c; c = c->next)
		n += json_size(c) + 1 + (c->string ? strlen(c->string) + 3 : 0);
	return n;
}

/* Put the answer of slot i (taken; for notifications, dropped). The
 * answers of a message share one budget, the message limit, so a batch of
 * large results cannot pile up gigabytes before the reply is refused: past
 * it, answers become -32005 errors that keep their ids. */
static void batch_answer(rpc_batch *b, int i, int notification, cJSON *resp)
{
	if (notification) {
		cJSON_Delete(resp);
		batch_put(b);
		return;
	}
	size_t size = resp ? json_size(resp) : 0;
	size_t used = atomic_fetch_add(&b->used, size) + size;
	if (used > b->budget) {
		char why[160];
		snprintf(why, sizeof why, "the answer (about %zu bytes) does not fit in the message limit of %zu bytes", size, b->budget);
		cJSON *e = error_response(cJSON_GetObjectItemCaseSensitive(resp, "id"), RPC_TOO_LARGE, why, NULL);
		cJSON_Delete(resp);
		resp = e;
		atomic_fetch_add(&b->used, json_size(e));
	}
	b->slots[i] = resp;
	batch_put(b);
}

static void req_finish(rpc_req *r, cJSON *resp, int failed)
{
	/* r is freed here: a method answers exactly once (rpc.h), and a second
	 * answer could not even be detected. */
	rpc_server *s = r->srv;
	if (failed)
		atomic_fetch_add(&s->errors, 1);
	if (r->inst)
		rpc_inst_release(r->inst);
	rpc_batch *b = r->batch;
	int slot = r->slot, notification = r->id == NULL;
	cJSON_Delete(r->id);
	cJSON_Delete(r->params);
	free(r);
	batch_answer(b, slot, notification, resp);
	atomic_fetch_sub(&s->inflight, 1);
}

void rpc_req_result(rpc_req *r, cJSON *result)
{
	if (result == NULL) {
		rpc_req_error(r, RPC_INTERNAL_ERROR, NULL, "out of memory building the result");
		return;
	}
	cJSON *resp = r->id ? response_new(r->id) : NULL;
	if (resp)
		cJSON_AddItemToObject(resp, "result", result);
	else
		cJSON_Delete(result);
	req_finish(r, resp, 0);
}

static void req_verror(rpc_req *r, int code, cJSON *data, const char *fmt, va_list ap)
{
	char msg[1024];
	vsnprintf(msg, sizeof msg, fmt, ap);
	if (r->id == NULL)
		node_debug("notification %s failed: %s", r->m ? r->m->name : "?", msg);
	cJSON *resp = r->id ? error_response(r->id, code, msg, data) : (cJSON_Delete(data), NULL);
	req_finish(r, resp, 1);
}

void rpc_req_error(rpc_req *r, int code, cJSON *data, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	req_verror(r, code, data, fmt, ap);
	va_end(ap);
}

void rpc_req_fail(rpc_req *r, const char *type, const char *fmt, ...)
{
	cJSON *data = cJSON_CreateObject();
	if (data)
		cJSON_AddStringToObject(data, "type", type);
	va_list ap;
	va_start(ap, fmt);
	req_verror(r, RPC_APP_ERROR, data, fmt, ap);
	va_end(ap);
}

rpc_server *rpc_req_server(const rpc_req *r)
{
	return r->srv;
}

const rpc_method *rpc_req_method(const rpc_req *r)
{
	return r->m;
}

const char *rpc_req_object(const rpc_req *r)
{
	return r->obj ? rpc_object_name(r->obj) : "";
}

int rpc_req_left_ms(const rpc_req *r)
{
	int64_t left = r->deadline_ms - node_clock_mono_ms();
	return left > 0 ? (int)left : 0;
}

static const char *json_type(const cJSON *v)
{
	if (v == NULL)
		return "nothing";
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsNumber(v))
		return "a number";
	if (cJSON_IsBool(v))
		return "a boolean";
	if (cJSON_IsNull(v))
		return "null";
	return cJSON_IsArray(v) ? "an array" : "an object";
}

/* The name of parameter i from the method's list, or "#i". */
static void param_name(const rpc_method *m, int i, char *out, size_t n)
{
	const char *p = m->params;
	for (int k = 0; p && *p && k < i; k++) {
		p = strchr(p, ',');
		p = p ? p + 1 : NULL;
	}
	if (p && *p)
		snprintf(out, n, "%.*s", (int)strcspn(p, ","), p);
	else
		snprintf(out, n, "#%d", i + 1);
}

static int arg_bad(rpc_req *r, int i, const char *want, const cJSON *got)
{
	char name[64];
	param_name(r->m, i, name, sizeof name);
	rpc_req_error(r, RPC_INVALID_PARAMS, NULL, "invalid params: %s of %s must be %s, not %s", name, r->m->name, want,
	    json_type(got));
	return -1;
}

int rpc_arg_str(rpc_req *r, const cJSON *params, int i, const char **out)
{
	const cJSON *v = cJSON_GetArrayItem(params, i);
	if (!cJSON_IsString(v))
		return arg_bad(r, i, "a string", v);
	*out = v->valuestring;
	return 0;
}

int rpc_arg_num(rpc_req *r, const cJSON *params, int i, double *out)
{
	const cJSON *v = cJSON_GetArrayItem(params, i);
	if (!cJSON_IsNumber(v))
		return arg_bad(r, i, "a number", v);
	*out = v->valuedouble;
	return 0;
}

/* ---- finding the method ---- */

/* "Object.method" splits at the last dot (object names have dots too);
 * functions and the server's own name take bare method names. */
static int find_method(rpc_server *s, const char *method, rpc_object **obj, const rpc_method **m, char *why, size_t n)
{
	rpc_object *fn = rpc_object_find(s, "");
	const char *dot = strrchr(method, '.');
	if (fn && (*m = rpc_object_method(fn, method)) != NULL) {
		*obj = fn;
		return 0;
	}
	if (dot == NULL || dot == method || dot[1] == '\0') {
		snprintf(why, n, "method not found: no function \"%s\" here (call Object.method for an object's)", method);
		return -1;
	}
	char name[RPC_METHOD_MAX + 1];
	snprintf(name, sizeof name, "%.*s", (int)(dot - method), method);
	*obj = strcmp(name, s->name) == 0 ? fn : rpc_object_find(s, name);
	if (*obj == NULL) {
		snprintf(why, n, "method not found: no object \"%s\" on this server", name);
		return -1;
	}
	if ((*m = rpc_object_method(*obj, dot + 1)) == NULL) {
		snprintf(why, n, "method not found: %s has no method \"%s\"", name, dot + 1);
		return -1;
	}
	return 0;
}

/* params (absent, array or object) as an array in the method's order. */
static cJSON *params_array(const rpc_method *m, const cJSON *params, char *why, size_t n)
{
	if (params == NULL)
		return cJSON_CreateArray();
	if (cJSON_IsArray(params))
		return cJSON_Duplicate(params, 1);
	cJSON *out = cJSON_CreateArray();
	int want = 0, k = 0;
	char name[64];
	for (; m->params && m->params[0]; k++) {
		param_name(m, k, name, sizeof name);
		if (name[0] == '#')
			break;
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(params, name);
		if (v) {
			for (; want < k; want++) /* a gap: an earlier optional one left out */
				cJSON_AddItemToArray(out, cJSON_CreateNull());
			cJSON_AddItemToArray(out, cJSON_Duplicate(v, 1));
			want++;
		}
	}
	const cJSON *v;
	cJSON_ArrayForEach(v, params) {
		int known = 0;
		for (int i = 0; i < k && !known; i++) {
			param_name(m, i, name, sizeof name);
			known = strcmp(name, v->string) == 0;
		}
		if (!known) {
			snprintf(why, n, "invalid params: %s has no parameter \"%.64s\" (it takes: %s)", m->name, v->string,
			    m->params && m->params[0] ? m->params : "nothing");
			cJSON_Delete(out);
			return NULL;
		}
	}
	return out;
}

static int arity_ok(const rpc_method *m, const cJSON *params, char *why, size_t n)
{
	int got = cJSON_GetArraySize(params);
	if (got >= m->min_args && (m->max_args < 0 || got <= m->max_args))
		return 1;
	const char *list = m->params && m->params[0] ? m->params : "no parameters";
	if (m->max_args < 0)
		snprintf(why, n, "invalid params: %s takes at least %d (%s), got %d", m->name, m->min_args, list, got);
	else if (m->min_args == m->max_args)
		snprintf(why, n, "invalid params: %s takes %d (%s), got %d", m->name, m->min_args, list, got);
	else
		snprintf(why, n, "invalid params: %s takes %d to %d (%s), got %d", m->name, m->min_args, m->max_args, list, got);
	return 0;
}

/* ---- running a request ---- */

static void req_cancel(void *arg)
{
	rpc_req_error(arg, RPC_UNAVAILABLE, NULL, "the server is stopping");
}

static void req_run(void *arg)
{
	rpc_req *r = arg;
	if (rpc_req_left_ms(r) == 0) { /* it waited for a thread all its time */
		rpc_req_error(r, RPC_TIMEOUT, NULL, "%s waited out its time limit for a thread (the server is busy)", r->m->name);
		return;
	}
	rpc_inst *inst = r->inst; /* r is freed as soon as fn answers */
	rpc_inst_enter(inst);
	r->m->fn(r, rpc_inst_state(inst), r->params);
	rpc_inst_leave(inst);
}

static const cJSON *valid_id(const cJSON *req)
{
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "id");
	return id && (cJSON_IsString(id) || cJSON_IsNumber(id) || cJSON_IsNull(id)) ? id : NULL;
}

static int envelope_check(const cJSON *req, char *why, size_t n);

/* A well-formed request without an id; a malformed one is answered (with
 * id null) even without an id, as the specification asks. */
static int is_notification(const cJSON *req)
{
	char why[256];
	return cJSON_IsObject(req) && cJSON_GetObjectItemCaseSensitive(req, "id") == NULL &&
	       envelope_check(req, why, sizeof why) == 0;
}

/* Check req's envelope; on failure fills why and returns the error code. */
static int envelope_check(const cJSON *req, char *why, size_t n)
{
	if (!cJSON_IsObject(req)) {
		snprintf(why, n, "invalid request: expected an object, got %s", json_type(req));
		return RPC_INVALID_REQUEST;
	}
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "jsonrpc");
	if (!cJSON_IsString(v) || strcmp(v->valuestring, "2.0") != 0) {
		snprintf(why, n, "invalid request: \"jsonrpc\" must be \"2.0\"");
		return RPC_INVALID_REQUEST;
	}
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(req, "id");
	if (id && valid_id(req) == NULL) {
		snprintf(why, n, "invalid request: \"id\" must be a string, a number or null");
		return RPC_INVALID_REQUEST;
	}
	v = cJSON_GetObjectItemCaseSensitive(req, "method");
	if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) > RPC_METHOD_MAX) {
		snprintf(why, n, "invalid request: \"method\" must be a string of 1 to %d bytes", RPC_METHOD_MAX);
		return RPC_INVALID_REQUEST;
	}
	v = cJSON_GetObjectItemCaseSensitive(req, "params");
	if (v && !cJSON_IsArray(v) && !cJSON_IsObject(v)) {
		snprintf(why, n, "invalid request: \"params\" must be an array or an object, not %s", json_type(v));
		return RPC_INVALID_REQUEST;
	}
	return 0;
}

/* Build the call for req, or answer slot i with the error. */
static rpc_req *req_new(rpc_server *s, rpc_batch *b, int i, const cJSON *req, const char *session)
{
	char why[512];
	int code = envelope_check(req, why, sizeof why);
	int notification = code == 0 && cJSON_GetObjectItemCaseSensitive(req, "id") == NULL; /* is_notification, checked once */
	rpc_object *obj = NULL;
	const rpc_method *m = NULL;
	cJSON *params = NULL;
	rpc_inst *inst = NULL;
	if (code == 0 && find_method(s, cJSON_GetObjectItemCaseSensitive(req, "method")->valuestring, &obj, &m, why, sizeof why) != 0)
		code = RPC_METHOD_NOT_FOUND;
	if (code == 0 && ((params = params_array(m, cJSON_GetObjectItemCaseSensitive(req, "params"), why, sizeof why)) == NULL ||
	                     !arity_ok(m, params, why, sizeof why)))
		code = RPC_INVALID_PARAMS;
	node_err err = {0};
	if (code == 0 && rpc_object_acquire(obj, session, &inst, &err) != 0) {
		code = err.rc == NODE_ELIMIT ? RPC_OVERLOADED : RPC_INTERNAL_ERROR;
		snprintf(why, sizeof why, "%s", err.msg);
	}
	if (code == 0 && atomic_load(&s->stopping)) {
		code = RPC_UNAVAILABLE;
		snprintf(why, sizeof why, "the server is stopping");
	}
	rpc_req *r = code == 0 ? calloc(1, sizeof *r) : NULL;
	if (code == 0 && r == NULL) {
		code = RPC_INTERNAL_ERROR;
		snprintf(why, sizeof why, "out of memory");
	}
	if (code != 0) {
		cJSON_Delete(params);
		if (inst)
			rpc_inst_release(inst);
		atomic_fetch_add(&s->errors, 1);
		batch_answer(b, i, notification, notification ? NULL : error_response(valid_id(req), code, why, NULL));
		return NULL;
	}
	const cJSON *id = valid_id(req);
	*r = (rpc_req){.srv = s, .batch = b, .slot = i, .id = id ? cJSON_Duplicate(id, 1) : NULL, .m = m, .obj = obj,
	    .inst = inst, .params = params, .deadline_ms = node_clock_mono_ms() + s->call_ms};
	if (!notification && r->id == NULL)
		r->id = cJSON_CreateNull(); /* out of memory duplicating: still answered */
	return r;
}

static void req_start(rpc_server *s, rpc_batch *b, int i, const cJSON *req, const char *session)
{
	atomic_fetch_add(&s->inflight, 1); /* before req_new looks at stopping */
	rpc_req *r = req_new(s, b, i, req, session);
	if (r == NULL) {
		atomic_fetch_sub(&s->inflight, 1);
		return;
	}
	atomic_fetch_add(&s->calls, 1);
	/* A method that never blocks runs here, on nng's thread, unless its
	 * serialized instance is busy: waiting for that lock here could hold
	 * every nng thread while the lock holder needs one (a nested call). */
	rpc_inst *inst = r->inst;
	if (!(r->m->flags & RPC_M_BLOCKS) && rpc_inst_try_enter(inst)) {
		r->m->fn(r, rpc_inst_state(inst), r->params);
		rpc_inst_leave(inst);
		return;
	}
	node_err err = {0};
	if (rpc_pool_run(s->pool, req_run, req_cancel, r, &err) != 0)
		rpc_req_error(r, RPC_OVERLOADED, NULL, "%s", err.msg);
}

void rpc_serve(rpc_server *s, const cJSON *msg, const char *session, rpc_done_fn done, void *arg)
{
	int is_array = cJSON_IsArray(msg);
	int n = is_array ? cJSON_GetArraySize(msg) : 1;
	if (is_array && (n == 0 || n > RPC_BATCH_MAX)) {
		char why[128];
		snprintf(why, sizeof why, n ? "a batch holds at most %d requests, this one %d" : "invalid request: an empty batch",
		    RPC_BATCH_MAX, n);
		done(error_response(NULL, n ? RPC_TOO_LARGE : RPC_INVALID_REQUEST, why, NULL), arg);
		return;
	}
	rpc_batch *b = calloc(1, sizeof *b + (size_t)n * sizeof(cJSON *));
	if (b == NULL) {
		done(error_response(NULL, RPC_INTERNAL_ERROR, "out of memory", NULL), arg);
		return;
	}
	/* Room for the array's own brackets and commas, and the envelope. */
	size_t limit = s->ctx->wire.limits.max_message;
	*b = (rpc_batch){.done = done, .arg = arg, .is_array = is_array, .n = n,
	    .budget = limit > (size_t)n * 2 + 256 ? limit - (size_t)n * 2 - 256 : 0};
	atomic_init(&b->used, 0);
	atomic_init(&b->left, n + 1);
	int notifications = 0;
	const cJSON *req;
	if (is_array) {
		cJSON_ArrayForEach(req, msg)
			notifications += is_notification(req);
	} else {
		notifications = is_notification(msg);
	}
	/* One-way calls: the sender hears that they were accepted, not how they end. */
	if (notifications == n) {
		b->acked = 1;
		done(NULL, arg);
	}
	if (is_array) {
		int i = 0;
		cJSON_ArrayForEach(req, msg)
			req_start(s, b, i++, req, session);
	} else {
		req_start(s, b, 0, msg, session);
	}
	batch_put(b);
}
