/* The name server's registry: entries in an array sorted by name (binary
 * search; lists by prefix are one contiguous run), expiry, and the journal
 * records that rebuild it. Every record states the whole entry
 * ({"t":"r",...}) or its removal ({"t":"x","n":NAME}), so replaying a record
 * that a snapshot already holds is harmless. */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "nameserver.h"

int ns_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > NS_NAME_MAX)
		return 0;
	for (; *s; s++)
		if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') || ('0' <= *s && *s <= '9') || strchr("._:/-", *s)))
			return 0;
	return 1;
}

void ns_entry_free(ns_entry *e)
{
	if (e == NULL)
		return;
	free(e->name);
	free(e->address);
	free(e->meta);
	free(e);
}

void ns_free_all(nameserver *ns)
{
	for (size_t i = 0; i < ns->n; i++)
		ns_entry_free(ns->v[i]);
	free(ns->v);
	ns->v = NULL;
	ns->n = ns->cap = 0;
}

/* The index of name, or where it would go (*found = 0). */
static size_t ns_index(const nameserver *ns, const char *name, int *found)
{
	size_t lo = 0, hi = ns->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ns->v[mid]->name, name);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

static int ns_expired(const ns_entry *e, int64_t now_ms)
{
	return e->expires_ms != 0 && e->expires_ms <= now_ms;
}

static void ns_remove_at(nameserver *ns, size_t i)
{
	ns_entry_free(ns->v[i]);
	memmove(&ns->v[i], &ns->v[i + 1], (ns->n - i - 1) * sizeof *ns->v);
	ns->n--;
}

ns_entry *ns_find(nameserver *ns, const char *name, int64_t now_ms)
{
	int found;
	size_t i = ns_index(ns, name, &found);
	if (!found)
		return NULL;
	if (ns_expired(ns->v[i], now_ms)) {
		ns_remove_at(ns, i);
		return NULL;
	}
	return ns->v[i];
}

int ns_put(nameserver *ns, ns_entry *e)
{
	int found;
	size_t i = ns_index(ns, e->name, &found);
	if (found) {
		ns_entry_free(ns->v[i]);
		ns->v[i] = e;
		return 0;
	}
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 64;
		ns_entry **v = realloc(ns->v, cap * sizeof *v);
		if (v == NULL)
			return NODE_ENOMEM;
		ns->v = v;
		ns->cap = cap;
	}
	memmove(&ns->v[i + 1], &ns->v[i], (ns->n - i) * sizeof *ns->v);
	ns->v[i] = e;
	ns->n++;
	return 0;
}

void ns_remove(nameserver *ns, const char *name)
{
	int found;
	size_t i = ns_index(ns, name, &found);
	if (found)
		ns_remove_at(ns, i);
}

size_t ns_sweep(nameserver *ns, int64_t now_ms)
{
	size_t w = 0, gone = 0;
	for (size_t i = 0; i < ns->n; i++) {
		if (ns_expired(ns->v[i], now_ms)) {
			ns_entry_free(ns->v[i]);
			gone++;
		} else {
			ns->v[w++] = ns->v[i];
		}
	}
	ns->n = w;
	return gone;
}

cJSON *ns_entry_json(const ns_entry *e)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "name", e->name);
	cJSON_AddStringToObject(o, "address", e->address);
	if (e->meta) {
		cJSON *m = cJSON_Parse(e->meta);
		if (m)
			cJSON_AddItemToObject(o, "meta", m);
	}
	cJSON_AddNumberToObject(o, "ttl_s", (double)e->ttl_s);
	if (e->expires_ms)
		cJSON_AddNumberToObject(o, "expires_ms", (double)e->expires_ms);
	cJSON_AddNumberToObject(o, "registered_ms", (double)e->registered_ms);
	return o;
}

/* ---- journal records ---- */

static char *ns_enc_entry(const ns_entry *e)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "t", "r");
	cJSON_AddStringToObject(o, "n", e->name);
	cJSON_AddStringToObject(o, "a", e->address);
	if (e->meta) {
		cJSON *m = cJSON_Parse(e->meta);
		if (m)
			cJSON_AddItemToObject(o, "m", m);
	}
	cJSON_AddNumberToObject(o, "ttl", (double)e->ttl_s);
	cJSON_AddNumberToObject(o, "e", (double)e->expires_ms);
	cJSON_AddNumberToObject(o, "ts", (double)e->registered_ms);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return s;
}

static int ns_append(nameserver *ns, node_journal *snap, char *s, node_err *err)
{
	if (s == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	int rc;
	if (snap) {
		rc = node_journal_snapshot_put(snap, s, strlen(s), err);
	} else if (ns->stopping) {
		rc = node_err_set(err, NODE_ECLOSED, NODE_ERR_SHUTDOWN, "the name server is shutting down");
	} else {
		rc = node_journal_append(ns->journal, s, strlen(s), err);
		ns->records++;
	}
	cJSON_free(s);
	return rc;
}

int ns_rec_put(nameserver *ns, const ns_entry *e, node_err *err)
{
	return ns_append(ns, NULL, ns_enc_entry(e), err);
}

int ns_rec_remove(nameserver *ns, const char *name, node_err *err)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "t", "x");
	cJSON_AddStringToObject(o, "n", name);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return ns_append(ns, NULL, s, err);
}

static int64_t ns_rec_int(const cJSON *r, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, k);
	return cJSON_IsNumber(v) ? (int64_t)v->valuedouble : 0;
}

static int ns_replay_one(nameserver *ns, const cJSON *r)
{
	const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "t"));
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "n"));
	if (t == NULL || name == NULL || !ns_name_ok(name))
		return -1;
	if (strcmp(t, "x") == 0) {
		ns_remove(ns, name);
		return 0;
	}
	const char *addr = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "a"));
	if (strcmp(t, "r") != 0 || addr == NULL)
		return -1;
	int64_t expires = ns_rec_int(r, "e");
	if (expires != 0 && expires <= node_clock_wall_ms()) { /* it ran out while we were down */
		ns_remove(ns, name);
		ns->dropped++;
		return 0;
	}
	ns_entry *e = calloc(1, sizeof *e);
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(r, "m");
	if (e == NULL || (e->name = strdup(name)) == NULL || (e->address = strdup(addr)) == NULL ||
	    (cJSON_IsObject(m) && (e->meta = cJSON_PrintUnformatted(m)) == NULL)) {
		ns_entry_free(e);
		return -1;
	}
	e->ttl_s = ns_rec_int(r, "ttl");
	e->expires_ms = expires;
	e->registered_ms = ns_rec_int(r, "ts");
	if (ns_put(ns, e) != 0) {
		ns_entry_free(e);
		return -1;
	}
	return 0;
}

int ns_replay(const void *rec, size_t len, void *arg)
{
	nameserver *ns = arg;
	cJSON *r = cJSON_ParseWithLength(rec, len);
	if (r == NULL || ns_replay_one(ns, r) != 0)
		node_warn("journal: skipped a record the name server does not understand: %.*s", (int)(len > 120 ? 120 : len),
		    (const char *)rec);
	cJSON_Delete(r);
	return 0; /* one odd record must not make the rest unreadable */
}

/* Dump every live entry (runs on the journal's writer thread). */
int ns_snapshot(node_journal *j, void *arg)
{
	nameserver *ns = arg;
	node_err err = {0};
	int rc = 0;
	pthread_mutex_lock(&ns->lock);
	ns_sweep(ns, node_clock_wall_ms());
	for (size_t i = 0; rc == 0 && i < ns->n; i++)
		rc = ns_append(ns, j, ns_enc_entry(ns->v[i]), &err);
	ns->compacting = 0;
	pthread_mutex_unlock(&ns->lock);
	if (rc != 0)
		node_error("snapshot: %s", err.msg);
	return rc;
}
