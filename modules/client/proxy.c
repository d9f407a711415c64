/* Proxies (Pyro4's Proxy): the target, where it is, and the clients to it.
 * A name is looked up at the name server when a call first needs it and
 * again when a call says the server may have moved; one lookup is in
 * flight at a time and the calls that need it wait on it. The calls
 * themselves (JSON-RPC) are in rpc.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/discover.h"
#include "client/client_int.h"

/* ---- clients, one per address ---- */

static int pclient_open(ncl_proxy *p, const char *url, ncl_pclient **out, ncl_err *err)
{
	ncl_pclient *pc = calloc(1, sizeof *pc);
	if (pc == NULL)
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	snprintf(pc->url, sizeof pc->url, "%s", url);
	node_err e = {0};
	if (node_client_open(&pc->cl, url, "rpc server", &p->host->wire, &e) != 0) {
		free(pc);
		return ncl_from_node(err, &e);
	}
	*out = pc;
	return 0;
}

static void pclients_close(ncl_pclient *list)
{
	while (list) {
		ncl_pclient *next = list->next;
		node_client_close(list->cl); /* fails its calls in flight; waits for their callbacks */
		free(list);
		list = next;
	}
}

/* Take the earlier addresses nothing is using any more off the list (lock
 * held); the caller closes them without the lock. */
static ncl_pclient *pclients_unused_locked(ncl_proxy *p)
{
	ncl_pclient *unused = NULL, **pp = &p->old;
	while (*pp) {
		ncl_pclient *c = *pp;
		if (c->users == 0) {
			*pp = c->next;
			c->next = unused;
			unused = c;
		} else {
			pp = &c->next;
		}
	}
	return unused;
}

/* ---- lookups ---- */

typedef struct lookup_result {
	int rc;                  /* for the waiting calls */
	ncl_err err;
	ncl_pclient *fresh;      /* a client to a new address, or NULL */
	int opening;             /* counted in sending while fresh was opened */
	int bare;
} lookup_result;

static void lookup_fail(ncl_proxy *p, lookup_result *r, int nrc, const node_err *e)
{
	if (nrc == NCL_ECLOSED) {
		ncl_set(&r->err, NCL_ECLOSED, "the proxy for %s was closed", p->target);
	} else if (nrc == NCL_ENOTFOUND) {
		ncl_set(&r->err, NCL_ENOTFOUND, "no such name %s at the name server %s", p->target, p->ns_url);
	} else if (nrc == NCL_ETIMEDOUT) {
		ncl_set(&r->err, NCL_ETIMEDOUT, "the name server %s did not answer the lookup of %s in time", p->ns_url,
		    p->target);
	} else {
		ncl_from_node(&r->err, e);
		ncl_prefix(&r->err, "looking up %s at the name server %s: ", p->target, p->ns_url);
	}
	r->rc = r->err.code;
}

/* Read a lookup's reply into r: a client for a new address, or an error. */
static void lookup_read(ncl_proxy *p, int rc, const cJSON *reply, const node_err *e, lookup_result *r)
{
	memset(r, 0, sizeof *r);
	if (rc != 0) {
		lookup_fail(p, r, rc == NODE_EREMOTE && strcmp(e->code, NODE_ERR_NOT_FOUND) == 0 ? NCL_ENOTFOUND : rc, e);
		return;
	}
	const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "address"));
	const cJSON *meta = cJSON_GetObjectItemCaseSensitive(reply, "meta");
	const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(meta, "kind"));
	if (url == NULL || url[0] == '\0' || strlen(url) >= NCL_URL_MAX) {
		r->rc = ncl_set(&r->err, NCL_EIO, "the name server %s answered a lookup of %s without a usable address", p->ns_url,
		    p->target);
		return;
	}
	r->bare = kind && strcmp(kind, "server") == 0;
	pthread_mutex_lock(&p->lock);
	int same = p->cur && strcmp(p->cur->url, url) == 0, closing = p->closing;
	r->opening = !same && !closing;
	if (r->opening)
		p->sending++; /* the close waits while the new client is being opened */
	pthread_mutex_unlock(&p->lock);
	if (closing)
		r->rc = ncl_set(&r->err, NCL_ECLOSED, "the proxy for %s was closed", p->target);
	else if (!same)
		r->rc = pclient_open(p, url, &r->fresh, &r->err);
}

/* The lookup is over: install what it found, then tell every call that
 * waited for it (except self, whose outcome is returned, the error in
 * self_err). */
static int lookup_done(ncl_proxy *p, lookup_result *r, ncl_route_wait *self, ncl_err *self_err)
{
	pthread_mutex_lock(&p->lock);
	if (r->fresh) {
		if (p->cur) {
			p->cur->next = p->old;
			p->old = p->cur;
		}
		p->cur = r->fresh;
	}
	if (r->opening && --p->sending == 0)
		pthread_cond_broadcast(&p->idle);
	if (r->rc == 0) {
		p->bare = r->bare;
		p->stale = 0;
	} else if (p->cur && r->rc != NCL_ENOTFOUND && r->rc != NCL_ECLOSED) {
		/* The name server is away: the address we had is the best guess,
		 * and calls should not pay for a lookup each until it is back. */
		p->stale = 0;
		r->rc = 0;
	}
	p->resolving = 0;
	ncl_route_wait *w = p->waiting;
	p->waiting = NULL;
	pthread_mutex_unlock(&p->lock);
	int self_rc = NCL_ROUTE_WAIT;
	while (w) {
		ncl_route_wait *next = w->next;
		if (w == self) {
			self_rc = r->rc;
			if (self_err && r->rc != 0)
				*self_err = r->err;
		} else {
			w->ready(w, r->rc, &r->err);
		}
		w = next;
	}
	return self_rc;
}

static void lookup_replied(int rc, cJSON *reply, const node_err *e, void *arg)
{
	ncl_proxy *p = arg;
	lookup_result r;
	lookup_read(p, rc, reply, e, &r);
	cJSON_Delete(reply);
	lookup_done(p, &r, NULL, NULL);
}

/* Send the lookup of the target; on failure the waiting calls hear it, and
 * self's outcome is returned (NCL_ROUTE_WAIT when it is to wait). */
static int lookup_start(ncl_proxy *p, int64_t deadline, ncl_route_wait *self, ncl_err *self_err)
{
	lookup_result r;
	memset(&r, 0, sizeof r);
	cJSON *req = cJSON_CreateObject();
	if (req == NULL || cJSON_AddStringToObject(req, "op", "lookup") == NULL ||
	    cJSON_AddStringToObject(req, "name", p->target) == NULL) {
		cJSON_Delete(req);
		r.rc = ncl_set(&r.err, NCL_ENOMEM, "out of memory");
		return lookup_done(p, &r, self, self_err);
	}
	int64_t left = deadline < 0 ? NCL_FOREVER_MS : deadline - node_clock_mono_ms();
	node_err e = {0};
	int rc = ncl_call_async(p->host, req, left > 0 ? (int)left : 1, lookup_replied, p, &e);
	cJSON_Delete(req);
	if (rc == 0)
		return NCL_ROUTE_WAIT;
	lookup_fail(p, &r, rc, &e);
	return lookup_done(p, &r, self, self_err);
}

/* ---- routing calls ---- */

int ncl_proxy_route(ncl_proxy *p, ncl_route_wait *w, const char *failed_url, ncl_pclient **via, int *bare,
    ncl_err *err)
{
	pthread_mutex_lock(&p->lock);
	if (p->closing) {
		pthread_mutex_unlock(&p->lock);
		return ncl_set(err, NCL_ECLOSED, "the proxy for %s was closed", p->target);
	}
	if (failed_url && p->cur && !p->is_url && strcmp(p->cur->url, failed_url) == 0)
		p->stale = 1;
	if (p->cur && !p->stale) {
		p->cur->users++;
		p->sending++;
		*via = p->cur;
		*bare = p->bare || p->is_url;
		pthread_mutex_unlock(&p->lock);
		return 0;
	}
	w->next = NULL;
	ncl_route_wait **pp = &p->waiting;
	while (*pp)
		pp = &(*pp)->next;
	*pp = w;
	int start = !p->resolving;
	p->resolving = 1;
	pthread_mutex_unlock(&p->lock);
	int rc = start ? lookup_start(p, w->deadline, w, err) : NCL_ROUTE_WAIT;
	if (rc == 0) /* the lookup failed at once, but the old address stands */
		return ncl_proxy_route(p, w, NULL, via, bare, err);
	return rc;
}

void ncl_proxy_sent(ncl_proxy *p)
{
	pthread_mutex_lock(&p->lock);
	if (--p->sending == 0)
		pthread_cond_broadcast(&p->idle);
	pthread_mutex_unlock(&p->lock);
}

void ncl_proxy_release(ncl_proxy *p, ncl_pclient *via)
{
	pthread_mutex_lock(&p->lock);
	via->users--;
	pthread_mutex_unlock(&p->lock);
}

void ncl_proxy_suspect(ncl_proxy *p, ncl_pclient *via)
{
	pthread_mutex_lock(&p->lock);
	if (via == p->cur && !p->is_url)
		p->stale = 1;
	pthread_mutex_unlock(&p->lock);
}

/* ---- open and close ---- */

/* The proxy's fields from the target and options. */
static int proxy_settings(ncl_proxy *p, const char *target, const node_conf *conf, const ncl_proxy_opts *opts,
    ncl_err *err)
{
	size_t len = strlen(target);
	if (len == 0 || len >= sizeof p->target)
		return ncl_set(err, NCL_EINVAL, "a proxy's target is a name or an address of 1 to %zu bytes",
		    sizeof p->target - 1);
	memcpy(p->target, target, len + 1);
	p->is_url = strstr(target, "://") != NULL;
	if (p->is_url)
		return 0;
	node_err e = {0};
	if (node_nameserver_url(conf, opts ? opts->nameserver : NULL, p->ns_url, sizeof p->ns_url, &e) != 0) {
		ncl_from_node(err, &e);
		ncl_prefix(err, "cannot look up %s: ", target);
		return err ? err->code : e.rc;
	}
	return 0;
}

static void proxy_free(ncl_proxy *p)
{
	pthread_cond_destroy(&p->idle);
	pthread_mutex_destroy(&p->lock);
	free(p);
}

int ncl_proxy_open_conf(ncl_proxy **out, const char *target, const node_conf *conf, const ncl_proxy_opts *opts,
    ncl_err *err)
{
	if (err)
		err->rpc_code = 0;
	if (out == NULL || target == NULL)
		return ncl_set(err, NCL_EINVAL, "ncl_proxy_open: out and a target are required");
	*out = NULL;
	ncl_proxy *p = calloc(1, sizeof *p);
	if (p == NULL)
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->idle, NULL);
	int rc = proxy_settings(p, target, conf, opts, err);
	/* The host connection dials the name server, which answers the lookups,
	 * or, for an address, that address, where it sends nothing. */
	if (rc == 0)
		rc = ncl_open_peer(&p->host, p->is_url ? p->target : p->ns_url, conf, p->is_url ? "rpc server" : "name server", err);
	if (rc == 0) {
		p->call_ms = opts && opts->timeout_ms > 0 ? opts->timeout_ms : p->host->call_ms;
		if (p->is_url)
			rc = pclient_open(p, p->target, &p->cur, err);
	}
	if (rc != 0) {
		ncl_close(p->host);
		proxy_free(p);
		return rc;
	}
	*out = p;
	return 0;
}

int ncl_proxy_open(ncl_proxy **out, const char *target, const ncl_proxy_opts *opts, ncl_err *err)
{
	if (out)
		*out = NULL;
	node_conf conf;
	node_err e = {0};
	if (node_conf_load(&conf, opts ? opts->cluster_file : NULL, NULL, &e) != 0) {
		node_conf_free(&conf);
		return ncl_from_node(err, &e);
	}
	int rc = ncl_proxy_open_conf(out, target, &conf, opts, err);
	node_conf_free(&conf);
	return rc;
}

void ncl_proxy_close(ncl_proxy *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->closing = 1;
	while (p->sending > 0) /* a call being handed to a client: it returns at once */
		pthread_cond_wait(&p->idle, &p->lock);
	ncl_pclient *all = p->old;
	if (p->cur) {
		p->cur->next = all;
		all = p->cur;
	}
	p->cur = p->old = NULL;
	pthread_mutex_unlock(&p->lock);
	/* Calls in flight end as closed; then lookups in flight, whose waiting
	 * calls end as closed too (nothing is sent once closing is set). */
	pclients_close(all);
	ncl_close(p->host);
	proxy_free(p);
}

const char *ncl_proxy_target(const ncl_proxy *p)
{
	return p ? p->target : "";
}

size_t ncl_proxy_address(ncl_proxy *p, char *buf, size_t n)
{
	if (p == NULL)
		return 0;
	pthread_mutex_lock(&p->lock);
	const char *url = p->cur ? p->cur->url : "";
	size_t len = strlen(url);
	if (buf && n)
		snprintf(buf, n, "%s", url);
	pthread_mutex_unlock(&p->lock);
	return len;
}

/* Close the clients of earlier addresses that no call uses any more (from
 * a caller's thread: never from a client's own callback). */
void ncl_proxy_prune(ncl_proxy *p)
{
	pthread_mutex_lock(&p->lock);
	ncl_pclient *unused = p->old ? pclients_unused_locked(p) : NULL;
	pthread_mutex_unlock(&p->lock);
	pclients_close(unused);
}
