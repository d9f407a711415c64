/* Alternation (csp_alt): wait on several guards, complete exactly one. Local
 * guards lock their channels (in address order, so two alts never deadlock),
 * complete the first ready guard, or park one waiter with a link on every
 * channel; all-networked guards go to the channel host in one chan.alt. */
#include <stdlib.h>
#include <string.h>

#include "client/csp_int.h"

/* Where a fair alt starts looking, turning per thread, so a guard that is
 * always ready cannot starve the others. */
static _Thread_local unsigned rotation;

static int cmp_ptr(const void *a, const void *b)
{
	uintptr_t x = (uintptr_t) * (csp_local *const *)a, y = (uintptr_t) * (csp_local *const *)b;
	return x < y ? -1 : x > y;
}

/* The distinct channels of the guards, sorted: the order they are locked in. */
static int lock_order(const csp_guard *g, int n, csp_local **ls)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		ls[k++] = g[i].end->chan->local;
	qsort(ls, (size_t)k, sizeof *ls, cmp_ptr);
	int m = 0;
	for (int i = 0; i < k; i++)
		if (m == 0 || ls[m - 1] != ls[i])
			ls[m++] = ls[i];
	return m;
}

static void lock_all(csp_local **ls, int m)
{
	for (int i = 0; i < m; i++)
		pthread_mutex_lock(&ls[i]->lock);
}

static void unlock_all(csp_local **ls, int m)
{
	for (int i = m - 1; i >= 0; i--)
		pthread_mutex_unlock(&ls[i]->lock);
}

/* Try every guard once from start (all locks held): the index of the guard
 * that completed or failed (*rc says which), or -1 when none is ready. */
static int try_guards(const csp_guard *g, int n, int start, char **value, int *rc, csp_wakes *k)
{
	for (int j = 0; j < n; j++) {
		int i = (start + j) % n;
		csp_local *l = g[i].end->chan->local;
		*rc = g[i].end->dir == CSP_READ ? csp_local_try_get(l, value, k) : csp_local_try_put(l, g[i].value, k);
		if (*rc != CSP_BLOCK)
			return i;
	}
	*rc = 0;
	return -1;
}

/* Park on every guard at once and wait: the fired guard or -1 (time is up). */
static int park_all(const csp_guard *g, int n, csp_local **ls, int m, int64_t deadline, char **value, int *rc)
{
	csp_waiter w;
	csp_link links[CSP_ALT_MAX];
	csp_waiter_init(&w);
	for (int i = 0; i < n; i++) {
		links[i] = (csp_link){.w = &w, .offer = g[i].value, .guard = i};
		csp_local_enqueue(g[i].end->chan->local, g[i].end->dir, &links[i]);
	}
	unlock_all(ls, m);
	int in = csp_park(&w, deadline);
	if (!in && !csp_claim(&w))
		csp_park(&w, -1); /* a partner won it while time ran out */
	for (int i = 0; i < n; i++) { /* our other links are still queued */
		csp_local *l = g[i].end->chan->local;
		pthread_mutex_lock(&l->lock);
		csp_local_unlink(l, g[i].end->dir, &links[i]);
		pthread_mutex_unlock(&l->lock);
	}
	*rc = w.rc;
	*value = w.value;
	return w.fired;
}

int csp_alt_local(const csp_guard *g, int n, int flags, int timeout_ms, int *fired, char **value, ncl_err *err)
{
	csp_local *ls[CSP_ALT_MAX];
	csp_wakes k = {.n = 0};
	char *got = NULL;
	int rc;
	int m = lock_order(g, n, ls);
	int start = flags & CSP_ALT_PRIORITY ? 0 : (int)(rotation++ % (unsigned)n);
	lock_all(ls, m);
	int i = try_guards(g, n, start, &got, &rc, &k);
	if (i >= 0 || (flags & CSP_ALT_SKIP) || timeout_ms == 0)
		unlock_all(ls, m);
	else
		i = park_all(g, n, ls, m, csp_deadline(timeout_ms), &got, &rc);
	csp_wakes_run(&k);
	*fired = i;
	if (value != NULL)
		*value = got;
	else
		free(got);
	if (rc != 0 && i >= 0)
		return csp_local_fail(g[i].end->chan->local, rc, "csp_alt", timeout_ms, err);
	return rc;
}

/* ---- the public call: checks, then local or networked ---- */

static int check_guards(const csp_guard *g, int n, int *nets, ncl_err *err)
{
	if (g == NULL || n < 1 || n > CSP_ALT_MAX)
		return ncl_set(err, NCL_EINVAL, "csp_alt: %d guards (1..%d)", n, CSP_ALT_MAX);
	*nets = 0;
	for (int i = 0; i < n; i++) {
		if (g[i].end == NULL)
			return ncl_set(err, NCL_EINVAL, "csp_alt: guard %d has no end", i);
		if (g[i].end->dir == CSP_WRITE && g[i].value == NULL)
			return ncl_set(err, NCL_EINVAL, "csp_alt: guard %d (channel '%s') writes but has no value", i,
			    g[i].end->chan->name);
		*nets += g[i].end->net != NULL;
	}
	if (*nets != 0 && *nets != n) {
		int l = 0, r = 0;
		while (g[l].end->net != NULL)
			l++;
		while (g[r].end->net == NULL)
			r++;
		return ncl_set(err, NCL_EINVAL,
		    "csp_alt: guards mix local and networked channels (guard %d '%s' is local, guard %d '%s' is on %s): "
		    "one alt waits on one kind",
		    l, g[l].end->chan->name, r, g[r].end->chan->name, csp_net_host(g[r].end->chan->net));
	}
	for (int i = 1; *nets && i < n; i++)
		if (!csp_net_same_host(g[0].end->net, g[i].end->net))
			return ncl_set(err, NCL_EINVAL,
			    "csp_alt: guard 0 '%s' is on %s, guard %d '%s' on %s: networked guards must share a host",
			    g[0].end->chan->name, csp_net_host(g[0].end->chan->net), i, g[i].end->chan->name,
			    csp_net_host(g[i].end->chan->net));
	return 0;
}

static int alt_net(const csp_guard *g, int n, int flags, int timeout_ms, int *fired, char **value, ncl_err *err)
{
	csp_net_end *ends[CSP_ALT_MAX];
	const char *vals[CSP_ALT_MAX];
	char *got = NULL;
	for (int i = 0; i < n; i++) {
		ends[i] = g[i].end->net;
		vals[i] = g[i].end->dir == CSP_WRITE ? g[i].value : NULL;
	}
	int rc = csp_net_alt(ends, vals, n, flags, timeout_ms, fired, &got, err);
	if (value != NULL)
		*value = got;
	else
		free(got);
	return rc;
}

int csp_alt(const csp_guard *guards, int n, int flags, int timeout_ms, int *fired, char **value, ncl_err *err)
{
	int nets = 0, f = -1;
	if (value != NULL)
		*value = NULL;
	if (fired != NULL)
		*fired = -1;
	int rc = check_guards(guards, n, &nets, err);
	if (rc != 0)
		return rc;
	if (fired == NULL)
		fired = &f;
	for (int i = 0; i < n; i++)
		csp_trace(guards[i].end->dir == CSP_READ ? "block_read" : "block_write", guards[i].end->chan->name,
		    guards[i].end->dir, -1);
	rc = nets ? alt_net(guards, n, flags, timeout_ms, fired, value, err)
	          : csp_alt_local(guards, n, flags, timeout_ms, fired, value, err);
	if (rc == 0 && *fired >= 0) {
		const csp_end *e = guards[*fired].end;
		csp_trace(e->dir == CSP_READ ? "done_read" : "done_write", e->chan->name, e->dir, 1);
	}
	return rc;
}
