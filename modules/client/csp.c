/* The CSP API's channels and ends (<node/csp.h>): argument checks, the trace
 * events of every operation, and the dispatch to a local channel
 * (csp_local.c) or a networked one (csp_net.c), so both behave alike. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/csp_int.h"

static const char *dir_name(int dir)
{
	return dir == CSP_READ ? "reader" : "writer";
}

/* A channel name for the trace and messages; local names are free-form but
 * bounded, networked ones are checked by the host. */
static int chan_new(csp_chan **out, const char *name, const char *fn, ncl_err *err)
{
	static atomic_uint unnamed;
	char gen[32];
	if (name == NULL || *name == '\0') {
		snprintf(gen, sizeof gen, "chan%u", atomic_fetch_add(&unnamed, 1) + 1);
		name = gen;
	}
	if (strlen(name) > CSP_NAME_MAX)
		return ncl_set(err, NCL_EINVAL, "%s: a channel name is at most %d bytes", fn, CSP_NAME_MAX);
	csp_chan *c = calloc(1, sizeof *c);
	if (c == NULL || (c->name = strdup(name)) == NULL) {
		free(c);
		return ncl_set(err, NCL_ENOMEM, "%s: out of memory", fn);
	}
	*out = c;
	return 0;
}

int csp_chan_local(csp_chan **out, const char *name, csp_kind kind, int capacity, ncl_err *err)
{
	csp_chan *c;
	if (out == NULL)
		return ncl_set(err, NCL_EINVAL, "csp_chan_local: out is NULL");
	csp_trace_env();
	int rc = chan_new(&c, name, "csp_chan_local", err);
	if (rc != 0)
		return rc;
	if ((rc = csp_local_new(&c->local, c->name, kind, capacity, err)) != 0) {
		csp_chan_free(c);
		return rc;
	}
	csp_trace("channel_created", c->name, -1, -1);
	*out = c;
	return 0;
}

int csp_chan_net(csp_chan **out, const char *name, const char *where, const char *cluster_file, ncl_err *err)
{
	csp_chan *c;
	if (out == NULL || name == NULL || *name == '\0')
		return ncl_set(err, NCL_EINVAL, "csp_chan_net: a networked channel needs a name");
	csp_trace_env();
	int rc = chan_new(&c, name, "csp_chan_net", err);
	if (rc != 0)
		return rc;
	if ((rc = csp_net_chan_open(&c->net, c->name, where, cluster_file, err)) != 0) {
		csp_chan_free(c);
		return rc;
	}
	csp_trace("channel_created", c->name, -1, -1);
	*out = c;
	return 0;
}

void csp_chan_free(csp_chan *c)
{
	if (c == NULL)
		return;
	csp_local_free(c->local);
	if (c->net != NULL)
		csp_net_chan_free(c->net);
	free(c->name);
	free(c);
}

const char *csp_chan_name(const csp_chan *c)
{
	return c != NULL ? c->name : NULL;
}

/* ---- ends ---- */

static int end_open(csp_chan *c, int dir, csp_end **out, ncl_err *err)
{
	const char *fn = dir == CSP_READ ? "csp_reader" : "csp_writer";
	if (c == NULL || out == NULL)
		return ncl_set(err, NCL_EINVAL, "%s: channel or out is NULL", fn);
	csp_end *e = calloc(1, sizeof *e);
	if (e == NULL)
		return ncl_set(err, NCL_ENOMEM, "%s: out of memory", fn);
	e->chan = c;
	e->dir = dir;
	int rc = c->local ? csp_local_end_open(c->local, dir, err)
	                  : csp_net_end_open(c->net, dir, csp_current_proc(), &e->net, err);
	if (rc != 0) {
		free(e);
		return rc;
	}
	csp_trace("end_created", c->name, dir, -1);
	*out = e;
	return 0;
}

int csp_reader(csp_chan *c, csp_end **out, ncl_err *err)
{
	return end_open(c, CSP_READ, out, err);
}

int csp_writer(csp_chan *c, csp_end **out, ncl_err *err)
{
	return end_open(c, CSP_WRITE, out, err);
}

void csp_end_close(csp_end *e)
{
	if (e == NULL)
		return;
	if (e->net != NULL)
		csp_net_end_close(e->net);
	else
		csp_local_end_close(e->chan->local, e->dir);
	free(e);
}

static int wrong_end(const csp_end *e, int dir, const char *fn, ncl_err *err)
{
	if (e == NULL)
		return ncl_set(err, NCL_EINVAL, "%s: the end is NULL", fn);
	if (e->dir != dir)
		return ncl_set(err, NCL_EINVAL, "%s: channel '%s': this end is a %s", fn, e->chan->name, dir_name(e->dir));
	return 0;
}

/* ---- reading and writing ---- */

int csp_write_many(csp_end *w, const char *const *values, size_t n, int timeout_ms, ncl_err *err)
{
	int rc = wrong_end(w, CSP_WRITE, "csp_write", err);
	if (rc != 0)
		return rc;
	if (values == NULL && n > 0)
		return ncl_set(err, NCL_EINVAL, "csp_write: values is NULL");
	for (size_t i = 0; i < n; i++)
		if (values[i] == NULL)
			return ncl_set(err, NCL_EINVAL, "csp_write: channel '%s': value %zu is NULL", w->chan->name, i);
	csp_trace("block_write", w->chan->name, CSP_WRITE, (long)n);
	rc = w->net ? csp_net_write_many(w->net, values, n, timeout_ms, err)
	            : csp_local_write_many(w->chan->local, values, n, timeout_ms, err);
	if (rc == 0)
		csp_trace("done_write", w->chan->name, CSP_WRITE, (long)n);
	return rc;
}

int csp_write(csp_end *w, const char *value, int timeout_ms, ncl_err *err)
{
	return csp_write_many(w, &value, 1, timeout_ms, err);
}

int csp_read_many(csp_end *r, char **values, size_t max, size_t *got, int timeout_ms, ncl_err *err)
{
	size_t n = 0;
	int rc = wrong_end(r, CSP_READ, "csp_read", err);
	if (got != NULL)
		*got = 0;
	if (rc != 0)
		return rc;
	if (values == NULL || max == 0)
		return ncl_set(err, NCL_EINVAL, "csp_read: channel '%s': no room for a value", r->chan->name);
	csp_trace("block_read", r->chan->name, CSP_READ, -1);
	rc = r->net ? csp_net_read_many(r->net, values, max, &n, timeout_ms, err)
	            : csp_local_read_many(r->chan->local, values, max, &n, timeout_ms, err);
	if (rc == 0)
		csp_trace("done_read", r->chan->name, CSP_READ, (long)n);
	if (got != NULL)
		*got = n;
	return rc;
}

int csp_read(csp_end *r, char **value, int timeout_ms, ncl_err *err)
{
	size_t got;
	if (value == NULL)
		return ncl_set(err, NCL_EINVAL, "csp_read: value is NULL");
	*value = NULL;
	return csp_read_many(r, value, 1, &got, timeout_ms, err);
}

/* ---- poison and retire ---- */

int csp_poison(csp_end *e, ncl_err *err)
{
	if (e == NULL)
		return ncl_set(err, NCL_EINVAL, "csp_poison: the end is NULL");
	int rc = e->net ? csp_net_poison(e->net, err) : csp_local_poison(e->chan->local);
	if (rc == 0)
		csp_trace("poison", e->chan->name, e->dir, -1);
	return rc;
}

int csp_retire(csp_end *e, ncl_err *err)
{
	if (e == NULL)
		return ncl_set(err, NCL_EINVAL, "csp_retire: the end is NULL");
	/* traced first: the end and its names are gone after */
	csp_trace("retire", e->chan->name, e->dir, -1);
	int rc = e->net ? csp_net_retire(e->net, err) : csp_local_retire(e->chan->local, e->dir);
	free(e);
	return rc;
}
