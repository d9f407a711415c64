/* Proxy calls: one JSON-RPC 2.0 request per call, sent over the proxy's
 * client for the target's address; the reply ends the call's future with
 * the result text or the error and its code. A call answered "no object"
 * (the server moved away from that address) is sent once more when a new
 * lookup finds another address. ncl_proxy_call waits for the future; a
 * one-way call is a notification, over when the server acknowledges it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "client/client_int.h"

#define RPC_METHOD_MAX 256 /* the server's limit on a method name */
#define RPC_METHOD_NOT_FOUND (-32601)
#define RPC_NO_OBJECT "method not found: no object"

typedef struct pcall {
	ncl_route_wait wait;   /* first: a lookup hands the call back through it */
	ncl_proxy *p;
	ncl_future *f;         /* holds the call's reference until the end */
	char *method;          /* as the caller gave it */
	char *params;          /* JSON text, or NULL */
	int oneway;
	int64_t deadline;      /* monotonic ms, -1: none */
	int timeout_ms;        /* the whole time limit, for messages */
	ncl_pclient *via;      /* where it is in flight */
	char sent_url[NCL_URL_MAX];
	char wire[NCL_TARGET_MAX + RPC_METHOD_MAX + 2]; /* the method as sent */
	int moved;             /* answered "no object" once: routed again */
	ncl_err first;         /* that answer, which stands when no new address turns up */
} pcall;

static void pcall_replied(int rc, cJSON *reply, const node_err *e, void *arg);

/* ---- ending a call ---- */

static void pcall_free(pcall *pc)
{
	free(pc->method);
	free(pc->params);
	free(pc);
}

/* End the call: result (taken) on success, else the error. */
static void pcall_end(pcall *pc, char *result, const ncl_err *e)
{
	char *msg = result ? NULL : strdup(e->msg); /* NULL: the future fails with the code's name */
	ncl_future_rpc_end(pc->f, result ? 0 : e->code, result ? 0 : e->rpc_code, result ? NULL : e->remote, result, msg);
	pcall_free(pc);
}

/* End the call with a formatted error. */
static void pcall_fail(pcall *pc, int code, int rpc_code, const char *type, const char *fmt, ...) NODE_PRINTF(5, 6);
static void pcall_fail(pcall *pc, int code, int rpc_code, const char *type, const char *fmt, ...)
{
	ncl_err e = {.code = code, .rpc_code = rpc_code};
	snprintf(e.remote, sizeof e.remote, "%s", type ? type : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e.msg, sizeof e.msg, fmt, ap);
	va_end(ap);
	pcall_end(pc, NULL, &e);
}

/* A routing or sending error: a call that was answered "no object" keeps
 * that answer (unless the proxy closed). */
static void pcall_end_error(pcall *pc, const ncl_err *e)
{
	pcall_end(pc, NULL, pc->moved && e->code != NCL_ECLOSED ? &pc->first : e);
}

/* ---- sending ---- */

static cJSON *pcall_request(pcall *pc, uint64_t id)
{
	cJSON *req = cJSON_CreateObject();
	if (req == NULL || cJSON_AddStringToObject(req, "jsonrpc", "2.0") == NULL ||
	    cJSON_AddStringToObject(req, "method", pc->wire) == NULL ||
	    (pc->params && cJSON_AddRawToObject(req, "params", pc->params) == NULL) ||
	    (!pc->oneway && cJSON_AddNumberToObject(req, "id", (double)id) == NULL)) {
		cJSON_Delete(req);
		return NULL;
	}
	return req;
}

/* Hand the call to the client of via (routed already). */
static int pcall_send_via(pcall *pc, ncl_pclient *via, int bare, ncl_err *err)
{
	ncl_proxy *p = pc->p;
	int64_t left = pc->deadline < 0 ? NCL_FOREVER_MS : pc->deadline - node_clock_mono_ms();
	int rc = 0;
	cJSON *req = NULL;
	if (bare)
		snprintf(pc->wire, sizeof pc->wire, "%s", pc->method);
	else
		snprintf(pc->wire, sizeof pc->wire, "%s.%s", p->target, pc->method);
	if (left <= 0)
		rc = ncl_set(err, NCL_ETIMEDOUT, "%s: no time was left to send it after looking up %s", pc->wire, p->target);
	else if ((req = pcall_request(pc, __atomic_add_fetch(&p->next_id, 1, __ATOMIC_RELAXED))) == NULL)
		rc = ncl_set(err, NCL_ENOMEM, "out of memory");
	if (rc == 0) {
		pc->via = via;
		snprintf(pc->sent_url, sizeof pc->sent_url, "%s", via->url);
		node_err e = {0};
		/* From here the reply may come, and end pc, on another thread. */
		if (node_client_call_raw_async(via->cl, req, (int)left, pcall_replied, pc, &e) != 0) {
			pc->via = NULL;
			ncl_from_node(err, &e);
			ncl_prefix(err, "%s: ", pc->wire);
			rc = err ? err->code : e.rc;
		}
	}
	ncl_proxy_sent(p);
	cJSON_Delete(req);
	if (rc != 0)
		ncl_proxy_release(p, via);
	return rc;
}

/* Send the call, or queue it behind a lookup (NCL_ROUTE_WAIT); an error
 * when it cannot go (pc is still the caller's then). */
static int pcall_send(pcall *pc, const char *failed_url, ncl_err *err)
{
	ncl_pclient *via = NULL;
	int bare = 0;
	int rc = ncl_proxy_route(pc->p, &pc->wait, failed_url, &via, &bare, err);
	if (rc != 0)
		return rc;
	if (pc->moved && failed_url == NULL && strcmp(via->url, pc->sent_url) == 0) {
		/* Looked up again: still there. The server's answer stands. */
		ncl_proxy_sent(pc->p);
		ncl_proxy_release(pc->p, via);
		if (err)
			*err = pc->first;
		return pc->first.code;
	}
	return pcall_send_via(pc, via, bare, err);
}

/* The lookup pc waited for is over. */
static void pcall_ready(ncl_route_wait *w, int rc, const ncl_err *err)
{
	pcall *pc = (pcall *)w;
	ncl_err e = {0};
	if (rc == 0)
		rc = pcall_send(pc, NULL, &e);
	else
		e = *err;
	if (rc != 0 && rc != NCL_ROUTE_WAIT)
		pcall_end_error(pc, &e);
}

/* ---- replies ---- */

/* The server answered "no object": it may have moved. Look the name up
 * again and send the call there once; it never ran here. */
static void pcall_moved(pcall *pc, const ncl_err *answer)
{
	pc->moved = 1;
	pc->first = *answer;
	ncl_err e = {0};
	int rc = pcall_send(pc, pc->sent_url, &e);
	if (rc != 0 && rc != NCL_ROUTE_WAIT)
		pcall_end_error(pc, &e);
}

/* A JSON-RPC error response. */
static void pcall_rpc_error(pcall *pc, const cJSON *error)
{
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(error, "code");
	const char *msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(error, "message"));
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(error, "data");
	const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(data, "type"));
	int c = cJSON_IsNumber(code) ? code->valueint : 0;
	ncl_err e = {.code = NCL_ERPC, .rpc_code = c};
	snprintf(e.remote, sizeof e.remote, "%s", type ? type : "");
	snprintf(e.msg, sizeof e.msg, "%.200s: %.260s [%d%s%.31s]", pc->wire, msg ? msg : "(no message)", c,
	    type ? " " : "", type ? type : "");
	if (c == RPC_METHOD_NOT_FOUND && msg && strncmp(msg, RPC_NO_OBJECT, strlen(RPC_NO_OBJECT)) == 0 && !pc->p->is_url &&
	    !pc->moved && !pc->oneway)
		pcall_moved(pc, &e);
	else
		pcall_end(pc, NULL, &e);
}

/* Read the server's reply to pc and end the call (or send it again). */
static void pcall_read(pcall *pc, const cJSON *reply)
{
	const cJSON *ok = cJSON_IsObject(reply) ? cJSON_GetObjectItemCaseSensitive(reply, "ok") : NULL;
	const cJSON *error = cJSON_IsObject(reply) ? cJSON_GetObjectItemCaseSensitive(reply, "error") : NULL;
	const cJSON *result = cJSON_IsObject(reply) ? cJSON_GetObjectItemCaseSensitive(reply, "result") : NULL;
	if (ok && !cJSON_IsTrue(ok)) { /* a node role, not an rpc server */
		const char *m = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(error, "message"));
		const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(error, "code"));
		pcall_fail(pc, NCL_EREMOTE, 0, code, "%s: %s refused the call (is it an rpc server?): %s", pc->wire, pc->sent_url,
		    m ? m : "no message");
	} else if (cJSON_IsObject(error)) {
		pcall_rpc_error(pc, error);
	} else if (result && !pc->oneway) {
		char *text = cJSON_PrintUnformatted(result);
		if (text)
			pcall_end(pc, text, NULL);
		else
			pcall_fail(pc, NCL_ENOMEM, 0, NULL, "%s: out of memory reading the result", pc->wire);
	} else if (pc->oneway && cJSON_IsTrue(ok)) {
		char *text = strdup("null");
		if (text)
			pcall_end(pc, text, NULL);
		else
			pcall_fail(pc, NCL_ENOMEM, 0, NULL, "out of memory");
	} else {
		pcall_fail(pc, NCL_EIO, 0, NULL, "%s: %s answered with neither a result nor an error", pc->wire, pc->sent_url);
	}
}

/* The call failed in transport. */
static void pcall_lost(pcall *pc, int rc, const node_err *e)
{
	ncl_err er = {0};
	ncl_from_node(&er, e);
	if (rc != NODE_ETIMEDOUT) {
		pcall_fail(pc, er.code, 0, NULL, "%s: %s", pc->wire, er.msg);
		return;
	}
	/* The transport counts from the send, which may come after a lookup:
	 * name the whole limit. */
	char t[32];
	ncl_fmt_ms(pc->timeout_ms, t, sizeof t);
	pcall_fail(pc, NCL_ETIMEDOUT, 0, NULL, "%s: rpc server %s did not answer in %s", pc->wire, pc->sent_url, t);
}

static void pcall_replied(int rc, cJSON *reply, const node_err *e, void *arg)
{
	pcall *pc = arg;
	ncl_proxy *p = pc->p;
	ncl_pclient *via = pc->via; /* pc may be gone (or sent elsewhere) below */
	pc->via = NULL;
	if (rc == 0) {
		pcall_read(pc, reply);
	} else {
		/* A time-out or a reset may have run the call: not sent again,
		 * but the next call looks the name up first. */
		if (rc != NODE_ECLOSED && rc != NODE_ELIMIT && rc != NODE_ENOMEM)
			ncl_proxy_suspect(p, via);
		pcall_lost(pc, rc, e);
	}
	ncl_proxy_release(p, via);
	cJSON_Delete(reply);
}

/* ---- the calls ---- */

/* Check a call's arguments. */
static int pcall_check(ncl_proxy *p, const char *method, const char *params, ncl_err *err)
{
	if (p == NULL || method == NULL || method[0] == '\0')
		return ncl_set(err, NCL_EINVAL, "a proxy call needs a proxy and a method name");
	if (strlen(method) > RPC_METHOD_MAX)
		return ncl_set(err, NCL_EINVAL, "method name longer than %d bytes: %.60s...", RPC_METHOD_MAX, method);
	if (params == NULL || ncl_json_valid(params, '[') || ncl_json_valid(params, '{'))
		return 0;
	const char *q = params + strspn(params, " \t\r\n");
	return ncl_check_json(params, *q == '{' ? cJSON_Object : cJSON_Array, "params", err);
}

static int pcall_new(ncl_proxy *p, const char *method, const char *params, int timeout_ms, int oneway, pcall **out,
    ncl_err *err)
{
	pcall *pc = calloc(1, sizeof *pc);
	if (pc == NULL || (pc->method = strdup(method)) == NULL || (params && (pc->params = strdup(params)) == NULL)) {
		if (pc)
			pcall_free(pc);
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	}
	int rc = ncl_future_rpc_new(p->host, method, &pc->f, err);
	if (rc != 0) {
		pcall_free(pc);
		return rc;
	}
	if (timeout_ms == 0)
		timeout_ms = p->call_ms;
	pc->p = p;
	pc->oneway = oneway;
	pc->deadline = timeout_ms < 0 ? -1 : node_clock_mono_ms() + timeout_ms;
	pc->timeout_ms = timeout_ms < 0 ? NCL_FOREVER_MS : timeout_ms;
	pc->wait.deadline = pc->deadline;
	pc->wait.ready = pcall_ready;
	*out = pc;
	return 0;
}

/* Start a call; its future, or an error with nothing sent. */
static int pcall_start(ncl_proxy *p, const char *method, const char *params, int timeout_ms, int oneway,
    ncl_future **out, ncl_err *err)
{
	ncl_err e = {0};
	pcall *pc = NULL;
	int rc = pcall_check(p, method, params, &e);
	if (rc == 0) {
		ncl_proxy_prune(p);
		rc = pcall_new(p, method, params, timeout_ms, oneway, &pc, &e);
	}
	if (rc != 0) {
		if (err)
			*err = e;
		return rc;
	}
	ncl_future *f = pc->f;
	rc = pcall_send(pc, NULL, &e);
	if (rc == NCL_ROUTE_WAIT)
		rc = 0; /* pc belongs to the lookup now */
	if (rc != 0) {
		pcall_end(pc, NULL, &e);
		ncl_future_free(f);
		if (err)
			*err = e;
		return rc;
	}
	if (err)
		err->rpc_code = 0;
	*out = f;
	return 0;
}

int ncl_proxy_call_async(ncl_proxy *p, const char *method, const char *params_json, int timeout_ms,
    ncl_future **out, ncl_err *err)
{
	if (out == NULL)
		return ncl_set(err, NCL_EINVAL, "ncl_proxy_call_async: out is NULL");
	*out = NULL;
	return pcall_start(p, method, params_json, timeout_ms, 0, out, err);
}

/* Start a call and wait for it; *result gets the result when wanted. */
static int pcall_run(ncl_proxy *p, const char *method, const char *params, int timeout_ms, int oneway,
    char **result, ncl_err *err)
{
	ncl_future *f = NULL;
	int rc = pcall_start(p, method, params, timeout_ms, oneway, &f, err);
	if (rc != 0)
		return rc;
	/* No limit here: the call itself has one, and always ends. */
	rc = ncl_future_wait(f, -1, err);
	if (rc == 0 && result)
		*result = ncl_future_rpc_take(f);
	ncl_future_free(f);
	return rc;
}

int ncl_proxy_call(ncl_proxy *p, const char *method, const char *params_json, int timeout_ms, char **result_json,
    ncl_err *err)
{
	if (result_json == NULL)
		return ncl_set(err, NCL_EINVAL, "ncl_proxy_call: result_json is NULL");
	*result_json = NULL;
	return pcall_run(p, method, params_json, timeout_ms, 0, result_json, err);
}

int ncl_proxy_oneway(ncl_proxy *p, const char *method, const char *params_json, ncl_err *err)
{
	return pcall_run(p, method, params_json, 0, 1, NULL, err);
}
