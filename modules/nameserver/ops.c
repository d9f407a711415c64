/* The name server's protocol (node-nameserver(1)): register, renew, lookup,
 * list and remove. Changes are applied under the lock, journaled, and
 * answered once the journal says they are on disk. */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "nameserver.h"

/* Answer an error and leave the handler. */
#define NS_FAIL(...) do { node_call_error(__VA_ARGS__); return; } while (0)

/* ---- argument checks ---- */

/* The name field: a valid name, or NULL after answering bad_args. */
static const char *ns_arg_name(node_call *c, const cJSON *req, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, key);
	if (v == NULL) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "%s is missing", key);
		return NULL;
	}
	if (!cJSON_IsString(v)) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "%s: expected a string", key);
		return NULL;
	}
	if (!ns_name_ok(v->valuestring)) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "%s: expected 1 to %d characters of A-Z a-z 0-9 . _ : / -", key, NS_NAME_MAX);
		return NULL;
	}
	return v->valuestring;
}

/* The optional "address" of renew and remove: only names registered at
 * that address are touched (a server does not renew or remove a name
 * another server took over). "" when absent; NULL after answering. */
static const char *ns_arg_owner(node_call *c, const cJSON *req)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "address");
	if (v == NULL)
		return "";
	if (!cJSON_IsString(v) || strlen(v->valuestring) > NS_ADDRESS_MAX) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "address: expected a string of at most %d bytes", NS_ADDRESS_MAX);
		return NULL;
	}
	return v->valuestring;
}

/* ---- answering after the journal sync ---- */

typedef struct ns_pending {
	node_call *call;
	cJSON *reply;
} ns_pending;

static void ns_synced(int rc, const node_err *err, void *arg)
{
	ns_pending *p = arg;
	if (rc == 0) {
		node_call_reply(p->call, p->reply);
	} else {
		cJSON_Delete(p->reply);
		node_call_reply(p->call, node_reply_from_err(err));
	}
	free(p);
}

/* Reply once everything journaled so far is durable (lock held). */
static void ns_reply_synced(nameserver *ns, node_call *c, cJSON *reply)
{
	ns_pending *p = malloc(sizeof *p);
	if (p == NULL) {
		cJSON_Delete(reply);
		node_call_error(c, NODE_ERR_INTERNAL, "out of memory");
		return;
	}
	p->call = c;
	p->reply = reply;
	node_journal_sync(ns->journal, ns_synced, p);
}

/* ---- ops ---- */

static void ns_op_register(node_call *c, const cJSON *req, void *arg)
{
	nameserver *ns = arg;
	const char *name = ns_arg_name(c, req, "name");
	if (name == NULL)
		return;
	const cJSON *addr = cJSON_GetObjectItemCaseSensitive(req, "address");
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(req, "meta");
	const cJSON *ttl = cJSON_GetObjectItemCaseSensitive(req, "ttl_s");
	const cJSON *replace = cJSON_GetObjectItemCaseSensitive(req, "replace");
	if (addr == NULL)
		NS_FAIL(c, NODE_ERR_BAD_ARGS, "address is missing");
	if (!cJSON_IsString(addr) || addr->valuestring[0] == '\0' || strlen(addr->valuestring) > NS_ADDRESS_MAX)
		NS_FAIL(c, NODE_ERR_BAD_ARGS, "address: expected a string of 1 to %d bytes", NS_ADDRESS_MAX);
	if (meta != NULL && !cJSON_IsObject(meta) && !cJSON_IsNull(meta))
		NS_FAIL(c, NODE_ERR_BAD_ARGS, "meta: expected an object");
	if (ttl != NULL && (!cJSON_IsNumber(ttl) || ttl->valuedouble != (double)(long long)ttl->valuedouble ||
	                       ttl->valuedouble < 0 || ttl->valuedouble > NS_TTL_MAX))
		NS_FAIL(c, NODE_ERR_BAD_ARGS, "ttl_s: expected a whole number of seconds from 0 (no expiry) to %d", NS_TTL_MAX);
	if (replace != NULL && !cJSON_IsBool(replace))
		NS_FAIL(c, NODE_ERR_BAD_ARGS, "replace: expected true or false");
	ns_entry *e = calloc(1, sizeof *e);
	if (e == NULL || (e->name = strdup(name)) == NULL || (e->address = strdup(addr->valuestring)) == NULL ||
	    (cJSON_IsObject(meta) && (e->meta = cJSON_PrintUnformatted(meta)) == NULL)) {
		ns_entry_free(e);
		NS_FAIL(c, NODE_ERR_INTERNAL, "out of memory");
	}
	int64_t now = node_clock_wall_ms();
	e->ttl_s = ttl ? (int64_t)ttl->valuedouble : ns->default_ttl_s;
	e->expires_ms = e->ttl_s ? now + e->ttl_s * 1000 : 0;
	e->registered_ms = now;
	node_err err = {0};
	pthread_mutex_lock(&ns->lock);
	const ns_entry *old = ns_find(ns, name, now);
	if (old && !cJSON_IsTrue(replace)) {
		pthread_mutex_unlock(&ns->lock);
		node_call_error(c, NS_ERR_EXISTS, "%s is registered already (at %s); give replace to take it over", name, old->address);
		ns_entry_free(e);
		return;
	}
	int replaced = old != NULL;
	int rc = ns_rec_put(ns, e, &err);
	cJSON *reply = NULL;
	if (rc == 0) {
		reply = node_reply_ok();
		cJSON_AddItemToObject(reply, "entry", ns_entry_json(e));
		cJSON_AddBoolToObject(reply, "replaced", replaced);
		if (ns_put(ns, e) != 0) {
			rc = node_err_set(&err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
			cJSON_Delete(reply);
		}
	}
	if (rc == 0)
		ns_reply_synced(ns, c, reply);
	pthread_mutex_unlock(&ns->lock);
	if (rc != 0) {
		ns_entry_free(e);
		node_call_reply(c, node_reply_from_err(&err));
	}
}

static void ns_op_renew(node_call *c, const cJSON *req, void *arg)
{
	nameserver *ns = arg;
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(req, "names"), *v;
	if (names == NULL)
		NS_FAIL(c, NODE_ERR_BAD_ARGS, "names is missing");
	int n = cJSON_GetArraySize(names);
	if (!cJSON_IsArray(names) || n < 1 || n > NS_RENEW_MAX)
		NS_FAIL(c, NODE_ERR_BAD_ARGS, "names: expected an array of 1 to %d names", NS_RENEW_MAX);
	int i = 0;
	cJSON_ArrayForEach(v, names) {
		if (!cJSON_IsString(v) || !ns_name_ok(v->valuestring))
			NS_FAIL(c, NODE_ERR_BAD_ARGS, "names[%d]: expected 1 to %d characters of A-Z a-z 0-9 . _ : / -", i,
			    NS_NAME_MAX);
		i++;
	}
	const char *owner = ns_arg_owner(c, req);
	if (owner == NULL)
		return;
	cJSON *reply = node_reply_ok();
	cJSON *renewed = cJSON_AddArrayToObject(reply, "renewed");
	cJSON *missing = cJSON_AddArrayToObject(reply, "missing");
	cJSON *foreign = cJSON_AddArrayToObject(reply, "foreign");
	node_err err = {0};
	int rc = 0;
	int64_t now = node_clock_wall_ms();
	pthread_mutex_lock(&ns->lock);
	cJSON_ArrayForEach(v, names) {
		ns_entry *e = ns_find(ns, v->valuestring, now);
		if (e == NULL) {
			cJSON_AddItemToArray(missing, cJSON_CreateString(v->valuestring));
			continue;
		}
		if (owner[0] && strcmp(e->address, owner) != 0) { /* taken over: not the caller's to renew */
			cJSON_AddItemToArray(foreign, cJSON_CreateString(v->valuestring));
			continue;
		}
		if (e->ttl_s) {
			e->expires_ms = now + e->ttl_s * 1000;
			if ((rc = ns_rec_put(ns, e, &err)) != 0)
				break;
		}
		cJSON_AddItemToArray(renewed, cJSON_CreateString(v->valuestring));
	}
	if (rc == 0)
		ns_reply_synced(ns, c, reply);
	pthread_mutex_unlock(&ns->lock);
	if (rc != 0) {
		cJSON_Delete(reply);
		node_call_reply(c, node_reply_from_err(&err));
	}
}

static void ns_op_lookup(node_call *c, const cJSON *req, void *arg)
{
	nameserver *ns = arg;
	const char *name = ns_arg_name(c, req, "name");
	if (name == NULL)
		return;
	pthread_mutex_lock(&ns->lock);
	const ns_entry *e = ns_find(ns, name, node_clock_wall_ms());
	cJSON *reply = NULL;
	if (e) {
		reply = ns_entry_json(e);
		cJSON_AddBoolToObject(reply, "ok", 1);
	}
	pthread_mutex_unlock(&ns->lock);
	if (reply)
		node_call_reply(c, reply);
	else
		node_call_error(c, NODE_ERR_NOT_FOUND, "no such name: %s", name);
}

static void ns_op_list(node_call *c, const cJSON *req, void *arg)
{
	nameserver *ns = arg;
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(req, "prefix");
	if (p != NULL && (!cJSON_IsString(p) || strlen(p->valuestring) > NS_NAME_MAX))
		NS_FAIL(c, NODE_ERR_BAD_ARGS, "prefix: expected a string of at most %d characters", NS_NAME_MAX);
	const char *prefix = p ? p->valuestring : "";
	size_t plen = strlen(prefix);
	cJSON *reply = node_reply_ok();
	cJSON *entries = cJSON_AddArrayToObject(reply, "entries");
	pthread_mutex_lock(&ns->lock);
	ns_sweep(ns, node_clock_wall_ms());
	for (size_t i = 0; i < ns->n; i++) /* sorted: the matches are one run */
		if (strncmp(ns->v[i]->name, prefix, plen) == 0)
			cJSON_AddItemToArray(entries, ns_entry_json(ns->v[i]));
	pthread_mutex_unlock(&ns->lock);
	node_call_reply(c, reply);
}

static void ns_op_remove(node_call *c, const cJSON *req, void *arg)
{
	nameserver *ns = arg;
	const char *name = ns_arg_name(c, req, "name");
	if (name == NULL)
		return;
	const char *owner = ns_arg_owner(c, req);
	if (owner == NULL)
		return;
	node_err err = {0};
	pthread_mutex_lock(&ns->lock);
	const ns_entry *e = ns_find(ns, name, node_clock_wall_ms());
	if (e == NULL) {
		pthread_mutex_unlock(&ns->lock);
		NS_FAIL(c, NODE_ERR_NOT_FOUND, "no such name: %s", name);
	}
	if (owner[0] && strcmp(e->address, owner) != 0) {
		pthread_mutex_unlock(&ns->lock);
		NS_FAIL(c, NS_ERR_EXISTS, "%s is registered by %s now, not by %s: not removed", name, e->address, owner);
	}
	int rc = ns_rec_remove(ns, name, &err);
	if (rc == 0) {
		ns_remove(ns, name);
		ns_reply_synced(ns, c, node_reply_ok());
	}
	pthread_mutex_unlock(&ns->lock);
	if (rc != 0)
		node_call_reply(c, node_reply_from_err(&err));
}

const node_op ns_ops[] = {
	{"register", ns_op_register},
	{"renew", ns_op_renew},
	{"lookup", ns_op_lookup},
	{"list", ns_op_list},
	{"remove", ns_op_remove},
	{NULL, NULL},
};
