/* Networked channel ends: the client of `node chanhost` (node-protocol(7), section CHANNEL HOST).
 * Each end has its own cid, seq and connection; a request whose connection
 * broke or went silent is re-sent with the same seq, so the host's per-cid
 * reply cache makes it happen once; a parked op answered again:true goes on
 * with the next seq. Values are JSON text both ways. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/client_int.h"
#include "client/csp_net_conf.h"
#include "client/nodecsp.h"
#include "core/clock.h"
#include "core/rand.h"

#define NET_PARK_MS_DEFAULT 20000 /* the host's roles.chanhost.max_park_ms */
#define NET_GRACE_MS 5000         /* past the host's own bound: a host this late is silent */
#define NET_RETRY_MS 30000        /* re-send for this long without an answer, then give up */
#define NET_NS_MS 1000            /* a name server lookup: a missing one must not stall us */
#define NET_LEAVE_MS 1000         /* a close's best-effort leave */
#define NET_CHUNK_VALUES 1000     /* values in one write request at most */
#define NET_CHUNK_BYTES (256 * 1024)
#define NET_READ_MAX 10000        /* the protocol's max of one read */
#define NET_GUARDS_MAX 64

struct csp_net_chan {
	char name[CSP_NET_NAME_MAX + 1]; /* "" for a host without a channel (list, pub/sub) */
	char url[NCL_URL_MAX];
	node_wire wire;        /* limits, secret, TLS: every connection of its ends points here */
	int call_ms;           /* defaults.timeout_ms: pings, poison, retire, lookups' callers */
	int park_ms;           /* how long the host holds a parked op before again:true */
	pthread_mutex_t lock;  /* guards cl */
	node_client *cl;       /* csp_net_call's connection, opened at its first call */
};

struct csp_net_end {
	csp_net_chan *chan;
	int dir;               /* 0 reader, 1 writer */
	char cid[48];
	char proc[101];        /* "" when not named */
	long long seq;         /* of the last request that carried one */
	pthread_mutex_t lock;  /* guards cl and users: a poison may come from another thread */
	node_client *cl;       /* this end's own connection */
	int users;             /* calls on cl right now */
};

/* ---- names and errors ---- */

int csp_net_name_ok(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	if (n == 0 || n > CSP_NET_NAME_MAX)
		return 0;
	return strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/-") == n;
}

/* A host's ok:false as the CSP codes; what names the channel (or op). */
static int net_remote(const node_err *ne, const char *what, ncl_err *err)
{
	int code = NCL_EREMOTE;
	const char *state = NULL;
	if (strcmp(ne->code, "poisoned") == 0)
		code = NCL_EPOISONED, state = "poisoned";
	else if (strcmp(ne->code, "retired") == 0)
		code = NCL_ERETIRED, state = "retired";
	else if (strcmp(ne->code, "conflict") == 0)
		code = NCL_ECONFLICT;
	else if (strcmp(ne->code, NODE_ERR_TIMEOUT) == 0)
		code = NCL_ETIMEDOUT;
	else if (strcmp(ne->code, NODE_ERR_NOT_FOUND) == 0)
		code = NCL_ENOTFOUND;
	if (state && what && what[0])
		ncl_set(err, code, "channel %s is %s", what, state);
	else
		ncl_set(err, code, "%s", ne->msg[0] ? ne->msg : ne->code);
	if (err)
		snprintf(err->remote, sizeof err->remote, "%s", ne->code);
	return code;
}

static int net_nomem(ncl_err *err)
{
	return ncl_set(err, NCL_ENOMEM, "out of memory");
}

static void net_sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* ---- finding the host ---- */

/* channel/NAME at the cluster file's name server: 0 with url, else nonzero
 * (no name server, not registered, no answer: the caller falls back). Never
 * broadcasts: discovery would cost every open its time limit. */
static int net_ns_lookup(const node_conf *conf, node_wire *w, const char *name, char *url, size_t n)
{
	const char *ns = NULL;
	if (node_conf_role_url(conf, "nameserver", "listen", &ns, NULL) != 0)
		return -1;
	node_client *cl = NULL;
	cJSON *req = cJSON_CreateObject(), *reply = NULL;
	char key[CSP_NET_NAME_MAX + 16];
	snprintf(key, sizeof key, "channel/%s", name);
	int rc = req && cJSON_AddStringToObject(req, "op", "lookup") && cJSON_AddStringToObject(req, "name", key) ? 0 : -1;
	if (rc == 0)
		rc = node_client_open(&cl, ns, "name server", w, NULL);
	if (rc == 0)
		rc = node_client_call(cl, req, NET_NS_MS, &reply, NULL);
	const char *addr = rc == 0 ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "address")) : NULL;
	if (addr && addr[0] && strlen(addr) < n)
		snprintf(url, n, "%s", addr);
	else
		rc = -1;
	cJSON_Delete(req);
	cJSON_Delete(reply);
	node_client_close(cl);
	return rc;
}

/* where, else the name server's channel/NAME, else the chanhost of this
 * node, else of the first node that runs one. */
static int net_resolve(csp_net_chan *c, const char *where, const node_conf *conf, ncl_err *err)
{
	if (where && where[0]) {
		if (strlen(where) >= sizeof c->url)
			return ncl_set(err, NCL_EINVAL, "chanhost address too long: %.60s...", where);
		snprintf(c->url, sizeof c->url, "%s", where);
		return 0;
	}
	if (c->name[0] && net_ns_lookup(conf, &c->wire, c->name, c->url, sizeof c->url) == 0)
		return 0;
	const char *url = NULL;
	node_err e = {0};
	if (node_conf_role_url(conf, "chanhost", "listen", &url, &e) != 0)
		return ncl_from_node(err, &e);
	snprintf(c->url, sizeof c->url, "%s", url);
	return 0;
}

/* roles.chanhost.max_park_ms of the node whose listen URL we use, else of
 * any chanhost node, else the protocol's default. */
static int net_conf_park_ms(const node_conf *conf, const char *url)
{
	const cJSON *nodes = node_conf_get(conf, "nodes"), *n;
	long long any = -1;
	cJSON_ArrayForEach(n, nodes) {
		const cJSON *role = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(n, "roles"), "chanhost");
		const cJSON *park = cJSON_GetObjectItemCaseSensitive(role, "max_park_ms");
		const char *listen = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(role, "listen"));
		if (!cJSON_IsNumber(park) || park->valuedouble < 1)
			continue;
		if (listen && strcmp(listen, url) == 0)
			return (int)park->valuedouble;
		if (any < 0)
			any = (long long)park->valuedouble;
	}
	return any > 0 && any < 0x7fffffff - NET_GRACE_MS ? (int)any : NET_PARK_MS_DEFAULT;
}

/* ---- channels ---- */

int csp_net_chan_open_conf(csp_net_chan **out, const char *name, const char *where, const node_conf *conf,
    ncl_err *err)
{
	*out = NULL;
	if (name && !csp_net_name_ok(name))
		return ncl_set(err, NCL_EINVAL, "bad channel name \"%.60s\": 1 to %d of A-Z a-z 0-9 . _ : / -", name,
		    CSP_NET_NAME_MAX);
	csp_net_chan *c = calloc(1, sizeof *c);
	if (c == NULL)
		return net_nomem(err);
	snprintf(c->name, sizeof c->name, "%s", name ? name : "");
	node_wire_init(&c->wire);
	pthread_mutex_init(&c->lock, NULL);
	node_err e = {0};
	int rc = node_conf_wire(conf, &c->wire, &e) != 0 ? ncl_from_node(err, &e) : 0;
	if (rc == 0)
		rc = net_resolve(c, where, conf, err);
	if (rc != 0) {
		csp_net_chan_free(c);
		return rc;
	}
	c->call_ms = (int)node_conf_int(conf, "defaults.timeout_ms", 5000);
	if (c->call_ms <= 0)
		c->call_ms = 5000;
	c->park_ms = net_conf_park_ms(conf, c->url);
	*out = c;
	return 0;
}

int csp_net_chan_open(csp_net_chan **out, const char *name, const char *where, const char *cluster_file, ncl_err *err)
{
	if (out == NULL || name == NULL)
		return ncl_set(err, NCL_EINVAL, "csp_chan_net: out and a name are required");
	*out = NULL;
	node_conf conf;
	node_err e = {0};
	if (node_conf_load(&conf, cluster_file, NULL, &e) != 0) {
		node_conf_free(&conf);
		return ncl_from_node(err, &e);
	}
	node_conf_select(&conf, NULL, NULL); /* "this node's chanhost" when it can tell; else the first */
	int rc = csp_net_chan_open_conf(out, name, where, &conf, err);
	node_conf_free(&conf);
	return rc;
}

void csp_net_chan_free(csp_net_chan *c)
{
	if (c == NULL)
		return;
	node_client_close(c->cl);
	node_wire_fini(&c->wire);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

const char *csp_net_host(const csp_net_chan *c)
{
	return c ? c->url : "";
}

int csp_net_park_ms(const csp_net_chan *c)
{
	return c->park_ms;
}

/* ---- connections ---- */

/* Ask the host at cl for ping within the usual time limit, so that a wrong
 * or dead address is one clear error instead of a parked wait. */
static int net_ping(csp_net_chan *c, node_client *cl, ncl_err *err)
{
	cJSON *req = cJSON_CreateObject(), *reply = NULL;
	if (req == NULL || cJSON_AddStringToObject(req, "op", "ping") == NULL) {
		cJSON_Delete(req);
		return net_nomem(err);
	}
	node_err e = {0};
	int rc = node_client_call(cl, req, c->call_ms, &reply, &e);
	cJSON_Delete(req);
	const char *role = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "role"));
	if (rc == 0 && role && strcmp(role, "chanhost") != 0 && strcmp(role, "up") != 0)
		rc = ncl_set(err, NCL_EINVAL, "%s is a %s, not a chanhost", c->url, role);
	else if (rc != 0) {
		ncl_from_node(err, &e);
		ncl_prefix(err, "cannot reach chanhost %s: ", c->url);
		if (err && rc == NODE_ETIMEDOUT)
			err->code = NCL_EIO; /* not the caller's time limit */
		rc = err ? err->code : NCL_EIO;
	}
	cJSON_Delete(reply);
	return rc;
}

static int net_connect(csp_net_chan *c, node_client **out, ncl_err *err)
{
	node_err e = {0};
	if (node_client_open(out, c->url, "chanhost", &c->wire, &e) != 0)
		return ncl_from_node(err, &e);
	int rc = net_ping(c, *out, err);
	if (rc != 0) {
		node_client_close(*out);
		*out = NULL;
	}
	return rc;
}

int csp_net_call(csp_net_chan *c, const cJSON *req, int host_ms, cJSON **reply, ncl_err *err)
{
	*reply = NULL;
	pthread_mutex_lock(&c->lock);
	int rc = c->cl ? 0 : net_connect(c, &c->cl, err);
	node_client *cl = c->cl;
	pthread_mutex_unlock(&c->lock);
	if (rc != 0)
		return rc;
	node_err e = {0};
	rc = node_client_call(cl, req, host_ms + NET_GRACE_MS, reply, &e);
	if (rc == NODE_EREMOTE) {
		cJSON_Delete(*reply);
		*reply = NULL;
		return net_remote(&e, c->name, err);
	}
	return rc ? ncl_from_node(err, &e) : 0;
}

/* ---- ends ---- */

int csp_net_end_open(csp_net_chan *c, int dir, const char *proc, csp_net_end **out, ncl_err *err)
{
	if (c == NULL || out == NULL || (dir != 0 && dir != 1) || c->name[0] == '\0')
		return ncl_set(err, NCL_EINVAL, "csp_net_end_open: a channel, out and dir 0 or 1 are required");
	*out = NULL;
	csp_net_end *e = calloc(1, sizeof *e);
	if (e == NULL)
		return net_nomem(err);
	e->chan = c;
	e->dir = dir;
	snprintf(e->proc, sizeof e->proc, "%s", proc ? proc : "");
	char id[37];
	node_err ne = {0};
	if (node_rand_id(id, &ne) != 0) {
		free(e);
		return ncl_from_node(err, &ne);
	}
	snprintf(e->cid, sizeof e->cid, "c-%s", id);
	int rc = net_connect(c, &e->cl, err);
	if (rc != 0) {
		free(e);
		return rc;
	}
	pthread_mutex_init(&e->lock, NULL);
	*out = e;
	return 0;
}

static void end_free(csp_net_end *e)
{
	node_client_close(e->cl);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

/* A request for e: {op, chan, cid} plus proc when named. */
static cJSON *end_req(const csp_net_end *e, const char *op)
{
	cJSON *req = cJSON_CreateObject();
	if (req == NULL || !cJSON_AddStringToObject(req, "op", op) || !cJSON_AddStringToObject(req, "chan", e->chan->name) ||
	    !cJSON_AddStringToObject(req, "cid", e->cid) || (e->proc[0] && !cJSON_AddStringToObject(req, "proc", e->proc))) {
		cJSON_Delete(req);
		return NULL;
	}
	return req;
}

/* Set (or replace) a number member. */
static int req_num(cJSON *req, const char *key, double v)
{
	cJSON *n = cJSON_CreateNumber(v);
	if (n == NULL)
		return -1;
	if (cJSON_GetObjectItemCaseSensitive(req, key))
		return cJSON_ReplaceItemInObjectCaseSensitive(req, key, n) ? 0 : -1;
	cJSON_AddItemToObject(req, key, n);
	return 0;
}

/* A broken or silent connection: start afresh (the host drops what was
 * parked for the old one), unless another thread is using it too. */
static void end_reconnect(csp_net_end *e)
{
	pthread_mutex_lock(&e->lock);
	node_client *old = e->users == 0 ? e->cl : NULL, *fresh = NULL;
	if (old && node_client_open(&fresh, e->chan->url, "chanhost", &e->chan->wire, NULL) == 0)
		e->cl = fresh;
	else
		old = NULL;
	pthread_mutex_unlock(&e->lock);
	node_client_close(old);
}

static int end_call_once(csp_net_end *e, const cJSON *req, int wait_ms, cJSON **reply, node_err *ne)
{
	pthread_mutex_lock(&e->lock);
	node_client *cl = e->cl;
	e->users++;
	pthread_mutex_unlock(&e->lock);
	int rc = node_client_call(cl, req, wait_ms, reply, ne);
	pthread_mutex_lock(&e->lock);
	e->users--;
	pthread_mutex_unlock(&e->lock);
	return rc;
}

/* One request of e, re-sent as it is (same seq) while the connection
 * fails or the host stays silent past host_ms plus a grace: until the
 * caller's deadline (monotonic ms, < 0 none) or NET_RETRY_MS of failures. */
static int end_call(csp_net_end *e, const cJSON *req, int host_ms, int64_t deadline, cJSON **reply, ncl_err *err)
{
	int64_t first_fail = -1;
	int pause = 50;
	for (;;) {
		node_err ne = {0};
		*reply = NULL;
		int rc = end_call_once(e, req, host_ms + NET_GRACE_MS, reply, &ne);
		if (rc == 0)
			return 0;
		cJSON_Delete(*reply);
		*reply = NULL;
		if (rc == NODE_EREMOTE)
			return net_remote(&ne, e->chan->name, err);
		if (rc != NODE_ETIMEDOUT && rc != NODE_EIO && rc != NODE_ECLOSED)
			return ncl_from_node(err, &ne);
		int64_t now = node_clock_mono_ms();
		if (first_fail < 0)
			first_fail = now;
		if ((deadline >= 0 && now >= deadline) || now - first_fail >= NET_RETRY_MS) {
			ncl_set(err, deadline >= 0 && now >= deadline ? NCL_ETIMEDOUT : NCL_EIO, "chanhost %s: %s", e->chan->url,
			    ne.msg);
			return err ? err->code : NCL_EIO;
		}
		end_reconnect(e);
		if (rc != NODE_ETIMEDOUT) { /* a refusal comes back at once: do not spin */
			net_sleep_ms(pause);
			pause = pause < 1000 ? pause * 2 : 1000;
		}
	}
}

/* How long the host may park the next request: the park bound, or less
 * when the caller's deadline comes first (then also sent as timeout_ms). */
static int end_host_ms(const csp_net_end *e, int64_t deadline)
{
	if (deadline < 0)
		return e->chan->park_ms;
	int64_t left = deadline - node_clock_mono_ms();
	if (left < 0)
		left = 0;
	return left < e->chan->park_ms ? (int)left : e->chan->park_ms;
}

/* Best effort: the host forgets idle cids anyway. */
static void end_leave(csp_net_end *e, const char *chan, int dir)
{
	cJSON *req = end_req(e, "chan.leave"), *reply = NULL;
	if (req && cJSON_ReplaceItemInObjectCaseSensitive(req, "chan", cJSON_CreateString(chan)) &&
	    cJSON_AddStringToObject(req, "dir", dir ? "write" : "read"))
		end_call_once(e, req, NET_LEAVE_MS, &reply, &(node_err){0});
	cJSON_Delete(req);
	cJSON_Delete(reply);
}

void csp_net_end_close(csp_net_end *e)
{
	if (e == NULL)
		return;
	end_leave(e, e->chan->name, e->dir);
	end_free(e);
}

/* ---- write ---- */

/* Parse every value first, so that a bad one is refused before any is sent. */
static int net_parse_values(const char *const *values, size_t n, cJSON **out, ncl_err *err)
{
	cJSON *all = cJSON_CreateArray();
	if (all == NULL)
		return net_nomem(err);
	for (size_t i = 0; i < n; i++) {
		const char *end = NULL;
		cJSON *v = values[i] ? cJSON_ParseWithOpts(values[i], &end, 1) : NULL;
		if (v == NULL) {
			cJSON_Delete(all);
			if (values[i] == NULL)
				return ncl_set(err, NCL_EINVAL, "value %zu is NULL", i);
			return ncl_set(err, NCL_EINVAL, "value %zu is not JSON (a networked channel carries JSON text): %.60s", i,
			    values[i]);
		}
		cJSON_AddItemToArray(all, v);
	}
	*out = all;
	return 0;
}

/* How many values from values[0] go in one request. */
static size_t net_chunk(const char *const *values, size_t n)
{
	size_t k = 0, bytes = 0;
	while (k < n && k < NET_CHUNK_VALUES && (k == 0 || bytes + strlen(values[k]) <= NET_CHUNK_BYTES))
		bytes += strlen(values[k++]);
	return k;
}

/* Write the k values of vals (a detached array, taken) until all were taken.
 * k is counted here, not by cJSON_GetArraySize: that walks the list, and a
 * batch of 1000 was walked three times per request. */
static int net_write_chunk(csp_net_end *w, cJSON *vals, int k, int64_t deadline, ncl_err *err)
{
	cJSON *req = end_req(w, "chan.write");
	if (req == NULL) {
		cJSON_Delete(vals);
		return net_nomem(err);
	}
	cJSON_AddItemToObject(req, "values", vals);
	int rc = 0;
	while (rc == 0 && k > 0) {
		int host_ms = end_host_ms(w, deadline);
		/* The caller's limit goes to the host only when it comes before the
		 * park bound: a host timeout says nothing of the values taken. */
		int limit = deadline >= 0 && host_ms < w->chan->park_ms;
		cJSON_DeleteItemFromObjectCaseSensitive(req, "timeout_ms");
		if (req_num(req, "seq", (double)++w->seq) != 0 || (limit && req_num(req, "timeout_ms", host_ms) != 0)) {
			rc = net_nomem(err);
			break;
		}
		cJSON *reply = NULL;
		rc = end_call(w, req, host_ms, deadline, &reply, err);
		if (rc != 0)
			break;
		int taken = (int)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(reply, "n"));
		int again = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "again"));
		cJSON_Delete(reply);
		if (taken < 0 || taken > k || (!again && taken != k))
			rc = ncl_set(err, NCL_EIO, "chanhost %s answered a write of %d values with n %d", w->chan->url, k, taken);
		for (; rc == 0 && taken > 0; taken--, k--)
			cJSON_DeleteItemFromArray(vals, 0);
		if (rc == 0 && again && deadline >= 0 && node_clock_mono_ms() >= deadline)
			rc = ncl_set(err, NCL_ETIMEDOUT, "channel %s: the write was not taken in time", w->chan->name);
	}
	cJSON_Delete(req);
	return rc;
}

int csp_net_write_many(csp_net_end *w, const char *const *values, size_t n, int timeout_ms, ncl_err *err)
{
	if (w == NULL || (values == NULL && n > 0) || w->dir != 1)
		return ncl_set(err, NCL_EINVAL, "csp_write: a writer end and values are required");
	cJSON *all = NULL;
	int rc = net_parse_values(values, n, &all, err);
	int64_t deadline = ncl_deadline(timeout_ms);
	size_t off = 0;
	while (rc == 0 && off < n) {
		size_t k = net_chunk(values + off, n - off);
		cJSON *vals = cJSON_CreateArray();
		if (vals == NULL) {
			rc = net_nomem(err);
			break;
		}
		for (size_t i = 0; i < k; i++) /* the front of all moves into this chunk */
			cJSON_AddItemToArray(vals, cJSON_DetachItemFromArray(all, 0));
		rc = net_write_chunk(w, vals, (int)k, deadline, err);
		off += k;
	}
	cJSON_Delete(all);
	return rc;
}

/* ---- read ---- */

/* The values of a read reply as malloc'd JSON texts. */
static int net_take_values(const csp_net_end *r, const cJSON *vals, char **values, size_t max, size_t *got,
    ncl_err *err)
{
	size_t n = (size_t)cJSON_GetArraySize(vals);
	if (!cJSON_IsArray(vals) || n > max)
		return ncl_set(err, NCL_EIO, "chanhost %s answered a read of at most %zu values with %zu", r->chan->url, max, n);
	size_t i = 0;
	const cJSON *v;
	cJSON_ArrayForEach(v, vals) {
		if ((values[i] = cJSON_PrintUnformatted(v)) == NULL) {
			while (i > 0)
				free(values[--i]);
			return net_nomem(err);
		}
		i++;
	}
	*got = n;
	return 0;
}

int csp_net_read_many(csp_net_end *r, char **values, size_t max, size_t *got, int timeout_ms, ncl_err *err)
{
	if (got)
		*got = 0;
	if (r == NULL || values == NULL || got == NULL || max == 0 || r->dir != 0)
		return ncl_set(err, NCL_EINVAL, "csp_read: a reader end, room for a value and got are required");
	cJSON *req = end_req(r, "chan.read");
	if (req == NULL || req_num(req, "max", (double)(max < NET_READ_MAX ? max : NET_READ_MAX)) != 0) {
		cJSON_Delete(req);
		return net_nomem(err);
	}
	int64_t deadline = ncl_deadline(timeout_ms);
	int rc = 0;
	while (rc == 0 && *got == 0) {
		int host_ms = end_host_ms(r, deadline);
		if (req_num(req, "seq", (double)++r->seq) != 0 || (deadline >= 0 && req_num(req, "timeout_ms", host_ms) != 0)) {
			rc = net_nomem(err);
			break;
		}
		cJSON *reply = NULL;
		rc = end_call(r, req, host_ms, deadline, &reply, err);
		if (rc == NCL_ETIMEDOUT && deadline >= 0 && node_clock_mono_ms() < deadline)
			rc = 0; /* the host's bound, not the caller's: ask again */
		else if (rc == NCL_ETIMEDOUT)
			rc = ncl_set(err, NCL_ETIMEDOUT, "channel %s: nothing to read in %d ms", r->chan->name, timeout_ms);
		else if (rc == 0)
			rc = net_take_values(r, cJSON_GetObjectItemCaseSensitive(reply, "values"), values, max, got, err);
		cJSON_Delete(reply);
		if (rc == 0 && *got == 0 && deadline >= 0 && node_clock_mono_ms() >= deadline)
			rc = ncl_set(err, NCL_ETIMEDOUT, "channel %s: nothing to read in %d ms", r->chan->name, timeout_ms);
	}
	cJSON_Delete(req);
	return rc;
}

/* ---- poison, retire ---- */

int csp_net_poison(csp_net_end *e, ncl_err *err)
{
	if (e == NULL)
		return ncl_set(err, NCL_EINVAL, "csp_poison: no end");
	cJSON *req = end_req(e, "chan.poison"), *reply = NULL;
	if (req == NULL)
		return net_nomem(err);
	int rc = end_call(e, req, e->chan->call_ms, ncl_deadline(e->chan->call_ms + NET_GRACE_MS), &reply, err);
	cJSON_Delete(req);
	cJSON_Delete(reply);
	return rc;
}

int csp_net_retire(csp_net_end *e, ncl_err *err)
{
	if (e == NULL)
		return ncl_set(err, NCL_EINVAL, "csp_retire: no end");
	cJSON *req = end_req(e, "chan.retire"), *reply = NULL;
	int rc = req && cJSON_AddStringToObject(req, "dir", e->dir ? "write" : "read") ? 0 : net_nomem(err);
	if (rc == 0)
		rc = end_call(e, req, e->chan->call_ms, ncl_deadline(e->chan->call_ms + NET_GRACE_MS), &reply, err);
	cJSON_Delete(req);
	cJSON_Delete(reply);
	end_free(e);
	return rc;
}

/* ---- alternation ---- */

int csp_net_same_host(const csp_net_end *a, const csp_net_end *b)
{
	return a && b && strcmp(a->chan->url, b->chan->url) == 0;
}

/* The guards array: {chan, read:true} or {chan, write:V}. */
static int net_guards(csp_net_end *const *ends, const char *const *values, int n, cJSON **out, ncl_err *err)
{
	cJSON *gs = cJSON_CreateArray();
	if (gs == NULL)
		return net_nomem(err);
	for (int i = 0; i < n; i++) {
		if (ends[i] == NULL || ends[i]->dir != (values[i] != NULL) || !csp_net_same_host(ends[0], ends[i])) {
			cJSON_Delete(gs);
			return ncl_set(err, NCL_EINVAL, "csp_alt: guard %d is not a %s end of chanhost %s", i,
			    values[i] ? "writer" : "reader", ends[0]->chan->url);
		}
		cJSON *g = cJSON_CreateObject(), *v = NULL;
		cJSON_AddItemToArray(gs, g);
		if (g == NULL || !cJSON_AddStringToObject(g, "chan", ends[i]->chan->name)) {
			cJSON_Delete(gs);
			return net_nomem(err);
		}
		/* The guard is that end at the host, not a new one of the alt's cid. */
		cJSON_AddStringToObject(g, "cid", ends[i]->cid);
		if (values[i] == NULL) {
			cJSON_AddBoolToObject(g, "read", 1);
		} else if ((v = cJSON_ParseWithOpts(values[i], NULL, 1)) != NULL) {
			cJSON_AddItemToObject(g, "write", v);
		} else {
			cJSON_Delete(gs);
			return ncl_set(err, NCL_EINVAL, "guard %d's value is not JSON: %.60s", i, values[i]);
		}
	}
	*out = gs;
	return 0;
}

/* Read an alt reply: 1 when it settled (*fired, *value), 0 to ask again. */
static int net_alt_reply(const cJSON *reply, int n, int64_t deadline, int *fired, char **value, ncl_err *err)
{
	const cJSON *idx = cJSON_GetObjectItemCaseSensitive(reply, "index");
	if (cJSON_IsNumber(idx)) {
		int i = (int)idx->valuedouble;
		if (i < 0 || i >= n)
			return -ncl_set(err, NCL_EIO, "chanhost answered an alt of %d guards with index %d", n, i);
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(reply, "value");
		if (value && v && (*value = cJSON_PrintUnformatted(v)) == NULL)
			return -net_nomem(err);
		*fired = i;
		return 1;
	}
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "skip")))
		return 1;
	/* timeout or again: the caller's time is over, or only the host's bound was */
	return deadline >= 0 && node_clock_mono_ms() >= deadline;
}

int csp_net_alt(csp_net_end *const *ends, const char *const *values, int n, int flags, int timeout_ms, int *fired,
    char **value, ncl_err *err)
{
	if (fired)
		*fired = -1;
	if (value)
		*value = NULL;
	if (ends == NULL || values == NULL || fired == NULL || n < 1 || n > NET_GUARDS_MAX || ends[0] == NULL)
		return ncl_set(err, NCL_EINVAL, "csp_alt: 1 to %d guards and fired are required", NET_GUARDS_MAX);
	cJSON *gs = NULL;
	int rc = net_guards(ends, values, n, &gs, err);
	if (rc != 0)
		return rc;
	/* One request for all guards: its cid and seq are the first end's; each
	 * guard names its own end's cid. */
	csp_net_end *e = ends[0];
	cJSON *req = cJSON_CreateObject();
	if (req == NULL || !cJSON_AddStringToObject(req, "op", "chan.alt") || !cJSON_AddStringToObject(req, "cid", e->cid) ||
	    (e->proc[0] && !cJSON_AddStringToObject(req, "proc", e->proc))) {
		cJSON_Delete(req);
		cJSON_Delete(gs);
		return net_nomem(err);
	}
	cJSON_AddItemToObject(req, "guards", gs);
	cJSON_AddBoolToObject(req, "skip", (flags & CSP_ALT_SKIP) != 0 || timeout_ms == 0);
	cJSON_AddBoolToObject(req, "priority", (flags & CSP_ALT_PRIORITY) != 0);
	int64_t deadline = ncl_deadline(timeout_ms);
	int settled = 0;
	while (rc == 0 && !settled) {
		int host_ms = end_host_ms(e, deadline);
		if (req_num(req, "seq", (double)++e->seq) != 0 || req_num(req, "timeout_ms", host_ms) != 0) {
			rc = net_nomem(err);
			break;
		}
		cJSON *reply = NULL;
		rc = end_call(e, req, host_ms, deadline, &reply, err);
		if (rc == 0 && (settled = net_alt_reply(reply, n, deadline, fired, value, err)) < 0)
			rc = -settled;
		cJSON_Delete(reply);
	}
	cJSON_Delete(req);
	return rc;
}
