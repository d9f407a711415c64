/* The RPC server's names at the name server: each registered object and
 * the server's own name (its functions), with their meta. The heartbeat,
 * taking names back after a restart, giving up names taken over and the
 * removal at a stop are core/names.c's (rules in core/names.h). */
#include <string.h>

#include "core/log.h"
#include "core/names.h"
#include "rpc/rpc.h"

#define REG_MAX 1024

/* The meta of a name, made when it is registered (so the server's lists
 * the objects as they are then). An object named as the server wins, as
 * it was registered last. */
static cJSON *reg_meta(const char *name, void *arg)
{
	rpc_server *s = arg;
	rpc_object *obj = rpc_object_find(s, name);
	if (obj && rpc_object_registered(obj))
		return rpc_object_meta(s, obj);
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

int rpc_register_start(rpc_server *s, node_err *err)
{
	if (s->nameserver[0] == '\0') {
		node_warn("no name server: objects are reachable by this server's address only (%s)", s->url);
		return 0;
	}
	node_names_cfg cfg = {.nameserver = s->nameserver, .wire = &s->ctx->wire, .address = s->url, .ttl_s = s->ttl_s,
	    .replace = s->replace, .timeout_ms = s->ctx->timeout_ms, .max_names = REG_MAX, .meta = reg_meta, .arg = s};
	int rc = node_names_open(&s->reg, &cfg, err);
	if (rc != 0)
		return rc;
	if (s->functions && (rc = node_names_add(s->reg, s->name, NULL, err)) != 0)
		return rc;
	for (rpc_object *o = rpc_object_next(s, NULL); o; o = rpc_object_next(s, o)) {
		if (!rpc_object_registered(o) || (rc = node_names_add(s->reg, rpc_object_name(o), NULL, err)) == 0)
			continue;
		if (rc == NODE_ELIMIT)
			node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "more than %d objects to register", REG_MAX);
		return rc;
	}
	/* Registers them all now: a name held by another server fails the start. */
	return node_names_tick(s->reg, err);
}

void rpc_register_tick(rpc_server *s)
{
	if (s->reg == NULL)
		return;
	node_err err = {0};
	/* Someone took a name over while we were away: theirs now. */
	while (node_names_tick(s->reg, &err) == NODE_EEXIST)
		node_error("%s", err.msg);
}

void rpc_register_stop(rpc_server *s)
{
	node_names_close(s->reg);
	s->reg = NULL;
}
