/* The RPC server's names at the name server: each registered object and
 * the server's own name (its functions) go in with a time to live that a
 * heartbeat renews every third of it, so a server that dies disappears.
 * A name the name server lost is registered again; a name someone else
 * holds fails the start unless the server may replace it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "rpc/rpc.h"

#define REG_MAX 1024

typedef struct reg_name {
	char name[256];
	const rpc_object *obj;  /* NULL for the server's own name */
	int registered;
	int lost;               /* taken over by another server: given up */
} reg_name;

struct rpc_registration {
	node_client *ns;
	reg_name names[REG_MAX];
	int n;
	int64_t next_ms;
	int warned;             /* name server unreachable, said once */
};

static cJSON *reg_meta(rpc_server *s, const reg_name *r)
{
	if (r->obj)
		return rpc_object_meta(s, r->obj);
	/* The server itself: its functions, and the names of its objects. */
	cJSON *m = rpc_object_meta(s, rpc_object_find(s, ""));
	cJSON *names = m ? cJSON_CreateArray() : NULL;
	for (rpc_object *o = rpc_object_next(s, NULL); names && o; o = rpc_object_next(s, o))
		if (rpc_object_registered(o))
			cJSON_AddItemToArray(names, cJSON_CreateString(rpc_object_name(o)));
	if (m) {
		cJSON_ReplaceItemInObjectCaseSensitive(m, "kind", cJSON_CreateString("server"));
		cJSON_AddItemToObject(m, "objects", names);
	}
	return m;
}

static int reg_call(rpc_server *s, cJSON *req, cJSON **reply, node_err *err)
{
	int rc = node_client_call(s->reg->ns, req, s->ctx->timeout_ms, reply, err);
	cJSON_Delete(req);
	return rc;
}

/* Register one name; on "exists" a name held at our own address (from
 * before a restart) is taken back, another's is an error. */
static int reg_one(rpc_server *s, reg_name *r, node_err *err)
{
	for (int attempt = 0; attempt < 2; attempt++) {
		cJSON *req = cJSON_CreateObject(), *reply = NULL;
		if (req == NULL)
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		cJSON_AddStringToObject(req, "op", "register");
		cJSON_AddStringToObject(req, "name", r->name);
		cJSON_AddStringToObject(req, "address", s->url);
		cJSON_AddItemToObject(req, "meta", reg_meta(s, r));
		cJSON_AddNumberToObject(req, "ttl_s", s->ttl_s);
		cJSON_AddBoolToObject(req, "replace", s->replace || attempt > 0);
		int rc = reg_call(s, req, &reply, err);
		int exists = rc == NODE_EREMOTE && strcmp(err->code, "exists") == 0;
		cJSON_Delete(reply);
		if (!exists) {
			r->registered = rc == 0;
			return rc;
		}
		req = cJSON_CreateObject();
		cJSON_AddStringToObject(req, "op", "lookup");
		cJSON_AddStringToObject(req, "name", r->name);
		node_err lerr = {0};
		reply = NULL;
		const char *holder = reg_call(s, req, &reply, &lerr) == 0 ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "address")) : NULL;
		int ours = holder && strcmp(holder, s->url) == 0;
		if (!ours) {
			node_err_set(err, NODE_EEXIST, "exists",
			    "%s is registered already by %s at the name server %s (stop that server, wait for its registration to expire, "
			    "or start this one with --replace)",
			    r->name, holder ? holder : "another server", s->nameserver);
			cJSON_Delete(reply);
			return NODE_EEXIST;
		}
		cJSON_Delete(reply);
	}
	return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "could not register %s", r->name);
}

/* Register what is not registered. A name another server holds stops
 * here with NODE_EEXIST and *bad its index (the start fails on it; later,
 * the name is given up); a name the name server refuses is given up at
 * once, so it cannot keep the others out; an unreachable name server is
 * tried again at the next tick. */
static int reg_pending(rpc_server *s, int *bad, node_err *err)
{
	rpc_registration *g = s->reg;
	for (int i = 0; i < g->n; i++) {
		reg_name *r = &g->names[i];
		if (r->registered || r->lost)
			continue;
		node_err e = {0};
		int rc = reg_one(s, r, &e);
		if (rc == NODE_EEXIST) {
			*err = e;
			*bad = i;
			return rc;
		}
		if (rc == NODE_EREMOTE) {
			r->lost = 1;
			node_error("the name server refused the name %s: %s; not registering it", r->name, e.msg);
			continue;
		}
		if (rc != 0) {
			if (!g->warned++)
				node_warn("cannot register at the name server %s: %s; trying again every %d s", s->nameserver, e.msg,
				    s->ttl_s / 3 > 0 ? s->ttl_s / 3 : 1);
			return 0;
		}
		if (g->warned) {
			node_info("registered at the name server %s again", s->nameserver);
			g->warned = 0;
		}
		node_info("registered %s -> %s (ttl %d s)", r->name, s->url, s->ttl_s);
	}
	return 0;
}

static int reg_add(rpc_registration *g, const char *name, const rpc_object *o)
{
	if (g->n >= REG_MAX || strlen(name) >= sizeof g->names[0].name)
		return -1;
	reg_name *r = &g->names[g->n++];
	snprintf(r->name, sizeof r->name, "%s", name);
	r->obj = o;
	return 0;
}

int rpc_register_start(rpc_server *s, node_err *err)
{
	if (s->nameserver[0] == '\0') {
		node_warn("no name server: objects are reachable by this server's address only (%s)", s->url);
		return 0;
	}
	rpc_registration *g = calloc(1, sizeof *g);
	if (g == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	s->reg = g;
	int rc = node_client_open(&g->ns, s->nameserver, "name server", &s->ctx->wire, err);
	if (rc != 0)
		return rc;
	if (s->functions)
		reg_add(g, s->name, NULL);
	for (rpc_object *o = rpc_object_next(s, NULL); o; o = rpc_object_next(s, o))
		if (rpc_object_registered(o) && reg_add(g, rpc_object_name(o), o) != 0)
			return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "more than %d objects to register", REG_MAX);
	g->next_ms = node_clock_mono_ms() + s->ttl_s * 1000 / 3;
	int bad;
	return reg_pending(s, &bad, err);
}

/* Renew every registered name; the ones the name server lost go in again. */
static void reg_renew(rpc_server *s)
{
	rpc_registration *g = s->reg;
	cJSON *req = cJSON_CreateObject(), *reply = NULL;
	cJSON *names = req ? cJSON_AddArrayToObject(req, "names") : NULL;
	for (int i = 0; names && i < g->n; i++)
		if (g->names[i].registered)
			cJSON_AddItemToArray(names, cJSON_CreateString(g->names[i].name));
	if (names == NULL || cJSON_GetArraySize(names) == 0) {
		cJSON_Delete(req);
		return;
	}
	cJSON_AddStringToObject(req, "op", "renew");
	cJSON_AddStringToObject(req, "address", s->url);
	node_err err = {0};
	if (reg_call(s, req, &reply, &err) != 0) {
		if (!g->warned++)
			node_warn("cannot renew at the name server %s: %s; trying again", s->nameserver, err.msg);
		cJSON_Delete(reply);
		return;
	}
	const cJSON *v;
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(reply, "missing"))
		for (int i = 0; i < g->n; i++)
			if (cJSON_IsString(v) && strcmp(g->names[i].name, v->valuestring) == 0)
				g->names[i].registered = 0;
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(reply, "foreign")) {
		for (int i = 0; i < g->n; i++) {
			if (cJSON_IsString(v) && strcmp(g->names[i].name, v->valuestring) == 0) {
				g->names[i].registered = 0;
				g->names[i].lost = 1;
				node_error("%s was taken over by another server; this one no longer registers it", v->valuestring);
			}
		}
	}
	cJSON_Delete(reply);
}

void rpc_register_tick(rpc_server *s)
{
	rpc_registration *g = s->reg;
	int64_t now = node_clock_mono_ms();
	if (g == NULL || now < g->next_ms)
		return;
	int every = s->ttl_s * 1000 / 3;
	g->next_ms = now + (every > 200 ? every : 200);
	reg_renew(s);
	node_err err = {0};
	int bad = -1;
	/* Someone took a name over while we were away: theirs now. */
	while (reg_pending(s, &bad, &err) == NODE_EEXIST && bad >= 0) {
		g->names[bad].lost = 1;
		node_error("%s", err.msg);
	}
}

void rpc_register_stop(rpc_server *s)
{
	rpc_registration *g = s->reg;
	if (g == NULL)
		return;
	/* A clean stop leaves the registry at once instead of at the TTL; only
	 * names still at our address, and no more waiting once the name server
	 * has not answered (the TTL removes the rest). */
	for (int i = 0; g->ns && i < g->n; i++) {
		if (!g->names[i].registered)
			continue;
		cJSON *req = cJSON_CreateObject(), *reply = NULL;
		cJSON_AddStringToObject(req, "op", "remove");
		cJSON_AddStringToObject(req, "name", g->names[i].name);
		cJSON_AddStringToObject(req, "address", s->url);
		node_err err = {0};
		int rc = reg_call(s, req, &reply, &err);
		cJSON_Delete(reply);
		if (rc != 0 && rc != NODE_EREMOTE) {
			node_warn("could not remove %s at the name server: %s; the names expire in %d s", g->names[i].name, err.msg,
			    s->ttl_s);
			break;
		}
	}
	node_client_close(g->ns);
	free(g);
	s->reg = NULL;
}
