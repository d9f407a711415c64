/* Calls an RPC server makes to other objects (the chain): the name is
 * looked up at the name server and the address cached for a while; one
 * client per address is kept open. Everything is asynchronous, so a call
 * that waits for another holds no thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "rpc/rpc.h"

#define PEER_CACHE_MS 10000 /* a looked-up address is trusted this long */
#define PEER_MAX 256        /* names and clients cached at most; the oldest client goes */

typedef struct peer_name {
	char *name, *url;
	int64_t fetched_ms;
} peer_name;

typedef struct peer_client {
	char *url;
	node_client *cl;
	int64_t used_ms;
} peer_client;

struct rpc_peer_cache {
	pthread_mutex_t lock;
	peer_name names[PEER_MAX];
	int nnames;
	peer_client clients[PEER_MAX];
	int nclients;
	node_client *ns;
	atomic_uint next_id;
};

typedef struct peer_call {
	rpc_server *srv;
	char *name;      /* NULL when the target was a URL */
	char *method;    /* the full JSON-RPC method */
	cJSON *params;
	int64_t deadline_ms;
	rpc_peer_fn cb;
	void *arg;
} peer_call;

static rpc_peer_cache *cache_of(rpc_server *s, node_err *err)
{
	if (s->peers)
		return s->peers;
	node_err_set(err, NODE_EINVAL, NODE_ERR_INTERNAL, "calls to other objects are not set up");
	return NULL;
}

static void call_free(peer_call *pc)
{
	free(pc->name);
	free(pc->method);
	cJSON_Delete(pc->params);
	free(pc);
}

static void call_end(peer_call *pc, int rc, cJSON *result, const cJSON *error, const node_err *err)
{
	pc->cb(rc, result, error, err, pc->arg);
	call_free(pc);
}

static void call_fail(peer_call *pc, const node_err *err)
{
	call_end(pc, err->rc ? err->rc : NODE_EIO, NULL, NULL, err);
}

static void name_forget(rpc_peer_cache *c, const char *name)
{
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < c->nnames; i++) {
		if (strcmp(c->names[i].name, name) == 0) {
			free(c->names[i].name);
			free(c->names[i].url);
			c->names[i] = c->names[--c->nnames];
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
}

static void name_store(rpc_peer_cache *c, const char *name, const char *url)
{
	name_forget(c, name);
	char *n = strdup(name), *u = strdup(url);
	pthread_mutex_lock(&c->lock);
	if (n && u && c->nnames < PEER_MAX) {
		c->names[c->nnames++] = (peer_name){.name = n, .url = u, .fetched_ms = node_clock_mono_ms()};
		n = u = NULL;
	}
	pthread_mutex_unlock(&c->lock);
	free(n);
	free(u);
}

/* The cached address of name, copied into out; 0 when none is fresh. */
static int name_cached(rpc_peer_cache *c, const char *name, char *out, size_t n)
{
	int found = 0;
	int64_t now = node_clock_mono_ms();
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < c->nnames && !found; i++)
		if (strcmp(c->names[i].name, name) == 0 && now - c->names[i].fetched_ms < PEER_CACHE_MS)
			found = snprintf(out, n, "%s", c->names[i].url) > 0;
	pthread_mutex_unlock(&c->lock);
	return found;
}

/* Full: the client used longest ago goes (lock held), so servers that
 * come and go on new ports (port 0) cannot use the cache up for good.
 * Returns it for closing after the lock is released. */
static node_client *client_evict(rpc_peer_cache *c, int64_t now)
{
	int old = 0;
	for (int i = 1; i < c->nclients; i++)
		if (c->clients[i].used_ms < c->clients[old].used_ms)
			old = i;
	/* One handed out moments ago may be about to send: never that one. */
	if (now - c->clients[old].used_ms < PEER_CACHE_MS)
		return NULL;
	node_client *cl = c->clients[old].cl;
	free(c->clients[old].url);
	c->clients[old] = c->clients[--c->nclients];
	return cl;
}

static int client_for(rpc_server *s, rpc_peer_cache *c, const char *url, node_client **out, node_err *err)
{
	int64_t now = node_clock_mono_ms();
	pthread_mutex_lock(&c->lock);
	for (int i = 0; i < c->nclients; i++) {
		if (strcmp(c->clients[i].url, url) == 0) {
			c->clients[i].used_ms = now;
			*out = c->clients[i].cl;
			pthread_mutex_unlock(&c->lock);
			return 0;
		}
	}
	node_client *gone = c->nclients >= PEER_MAX ? client_evict(c, now) : NULL;
	int rc = 0;
	char *u = NULL;
	if (c->nclients >= PEER_MAX)
		rc = node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "calls to more than %d servers in %d s", PEER_MAX, PEER_CACHE_MS / 1000);
	else if ((u = strdup(url)) == NULL)
		rc = node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	else if ((rc = node_client_open(out, url, "rpc server", &s->ctx->wire, err)) == 0)
		c->clients[c->nclients++] = (peer_client){.url = u, .cl = *out, .used_ms = now};
	if (rc != 0)
		free(u);
	pthread_mutex_unlock(&c->lock);
	/* Its calls in flight, if any, fail with "closed"; their callbacks take the lock. */
	node_client_close(gone);
	return rc;
}

static int left_ms(const peer_call *pc)
{
	int64_t left = pc->deadline_ms - node_clock_mono_ms();
	return left > 1 ? (int)left : 1;
}

static void call_replied(int rc, cJSON *reply, const node_err *err, void *arg)
{
	peer_call *pc = arg;
	rpc_peer_cache *c = pc->srv->peers;
	if (rc != 0) {
		if (pc->name)
			name_forget(c, pc->name); /* it may have moved: look it up again next time */
		call_fail(pc, err);
		cJSON_Delete(reply);
		return;
	}
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "error");
	cJSON *result = cJSON_DetachItemFromObjectCaseSensitive(reply, "result");
	if (result) {
		call_end(pc, 0, result, NULL, NULL);
	} else {
		const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
		node_err er = {0};
		node_err_set(&er, NODE_EREMOTE, NODE_ERR_INTERNAL, "%s",
		    cJSON_IsString(msg) ? msg->valuestring : "the peer answered without a result or an error");
		if (pc->name && cJSON_IsNumber(code) && code->valueint == RPC_METHOD_NOT_FOUND)
			name_forget(c, pc->name);
		call_end(pc, NODE_EREMOTE, NULL, e, &er);
	}
	cJSON_Delete(reply);
}

static void call_send(peer_call *pc, const char *url)
{
	node_err err = {0};
	node_client *cl;
	cJSON *req = cJSON_CreateObject();
	if (req == NULL) {
		node_err_set(&err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		call_fail(pc, &err);
		return;
	}
	cJSON_AddStringToObject(req, "jsonrpc", "2.0");
	cJSON_AddStringToObject(req, "method", pc->method);
	cJSON_AddItemReferenceToObject(req, "params", pc->params);
	cJSON_AddNumberToObject(req, "id", atomic_fetch_add(&pc->srv->peers->next_id, 1));
	int rc = client_for(pc->srv, pc->srv->peers, url, &cl, &err);
	if (rc == 0)
		rc = node_client_call_raw_async(cl, req, left_ms(pc), call_replied, pc, &err);
	cJSON_Delete(req);
	if (rc != 0)
		call_fail(pc, &err);
}

static void lookup_replied(int rc, cJSON *reply, const node_err *err, void *arg)
{
	peer_call *pc = arg;
	const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "address"));
	if (rc == 0 && url == NULL) {
		node_err e = {0};
		node_err_set(&e, NODE_EINVAL, NODE_ERR_INTERNAL, "the name server answered a lookup of %s without an address", pc->name);
		call_fail(pc, &e);
	} else if (rc != 0) {
		node_err e = *err;
		if (rc == NODE_EREMOTE)
			node_err_set(&e, NODE_ENOTFOUND, NODE_ERR_NOT_FOUND, "%s is not registered at the name server %s", pc->name,
			    pc->srv->nameserver);
		call_fail(pc, &e);
	} else {
		name_store(pc->srv->peers, pc->name, url);
		call_send(pc, url);
	}
	cJSON_Delete(reply);
}

static int lookup_start(peer_call *pc, node_err *err)
{
	rpc_server *s = pc->srv;
	rpc_peer_cache *c = s->peers;
	if (s->nameserver[0] == '\0')
		return node_err_set(err, NODE_ENOTFOUND, NODE_ERR_NOT_FOUND,
		    "cannot find %s: this server has no name server (roles.rpc.nameserver or a nameserver role)", pc->name);
	pthread_mutex_lock(&c->lock);
	int rc = c->ns ? 0 : node_client_open(&c->ns, s->nameserver, "name server", &s->ctx->wire, err);
	node_client *ns = c->ns;
	pthread_mutex_unlock(&c->lock);
	if (rc != 0)
		return rc;
	cJSON *req = cJSON_CreateObject();
	if (req == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	cJSON_AddStringToObject(req, "op", "lookup");
	cJSON_AddStringToObject(req, "name", pc->name);
	rc = node_client_call_async(ns, req, left_ms(pc), lookup_replied, pc, err);
	cJSON_Delete(req);
	return rc;
}

int rpc_peer_call(rpc_server *s, const char *target, const char *method, cJSON *params, int timeout_ms,
    rpc_peer_fn cb, void *arg, node_err *err)
{
	rpc_peer_cache *c = cache_of(s, err);
	peer_call *pc = c ? calloc(1, sizeof *pc) : NULL;
	int is_url = strstr(target, "://") != NULL;
	size_t mlen = strlen(target) + strlen(method) + 2;
	if (pc)
		pc->method = malloc(mlen);
	if (pc == NULL || pc->method == NULL || (!is_url && (pc->name = strdup(target)) == NULL)) {
		cJSON_Delete(params);
		if (pc)
			call_free(pc);
		return c ? node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory") : err->rc;
	}
	if (is_url)
		snprintf(pc->method, mlen, "%s", method);
	else
		snprintf(pc->method, mlen, "%s.%s", target, method);
	*pc = (peer_call){.srv = s, .name = pc->name, .method = pc->method, .params = params ? params : cJSON_CreateArray(),
	    .deadline_ms = node_clock_mono_ms() + (timeout_ms > 0 ? timeout_ms : 1), .cb = cb, .arg = arg};
	char url[512];
	if (is_url || name_cached(c, target, url, sizeof url)) {
		call_send(pc, is_url ? target : url);
		return 0;
	}
	int rc = lookup_start(pc, err);
	if (rc != 0) {
		pc->cb = NULL;
		call_free(pc);
	}
	return rc;
}

int rpc_peers_init(rpc_server *s, node_err *err)
{
	rpc_peer_cache *c = calloc(1, sizeof *c);
	if (c == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	pthread_mutex_init(&c->lock, NULL);
	s->peers = c;
	return 0;
}

void rpc_peers_free(rpc_server *s)
{
	rpc_peer_cache *c = s->peers;
	if (c == NULL)
		return;
	/* Closing a client fails its calls in flight, whose callbacks answer
	 * their requests; the name server's first, so no lookup opens a client
	 * behind this loop. */
	node_client_close(c->ns);
	for (int i = 0; i < c->nclients; i++) {
		node_client_close(c->clients[i].cl);
		free(c->clients[i].url);
	}
	for (int i = 0; i < c->nnames; i++) {
		free(c->names[i].name);
		free(c->names[i].url);
	}
	pthread_mutex_destroy(&c->lock);
	free(c);
	s->peers = NULL;
}
