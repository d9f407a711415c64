/* MapReduce plugins: dlopen a job's shared object (RTLD_NOW | RTLD_LOCAL),
 * check its ABI, find its function, and call it with the node_mr_api of
 * nodemr.h: map once per line, reduce and combiner once per key. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapreduce/nodemr.h"
#include "mapreduce/plugin.h"

struct mr_plugin {
	void *dl;
	char what[512];   /* "map plugin /x/y.so function f", for errors */
	void *fn;         /* node_mr_map_fn or node_mr_reduce_fn */
};

/* What a function's records go through; a plugin sees it as opaque. */
struct node_mr_out {
	mr_emitter out;
	mr_values *vals;  /* reduce only */
	node_err *err;
	int failed;       /* emit or next failed: err says why */
	int has_msg;      /* fail() was called */
	char msg[400];
};

/* ---- the API a plugin calls ---- */

static int api_emit(node_mr_out *o, const char *key, size_t klen, const char *val, size_t vlen)
{
	if (o->failed)
		return -1;
	if ((key == NULL && klen) || (val == NULL && vlen)) {
		node_err_set(o->err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "emit() got a NULL key or value with a length");
		o->failed = 1;
		return -1;
	}
	if (o->out.fn(o->out.ctx, key ? key : "", klen, val ? val : "", vlen, o->err) != 0) {
		o->failed = 1;
		return -1;
	}
	return 0;
}

static int api_next(node_mr_out *o, const char **val, size_t *vlen)
{
	if (o->failed)
		return -1;
	if (o->vals == NULL) {
		node_err_set(o->err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "next() is for reduce and combiner functions only");
		o->failed = 1;
		return -1;
	}
	const uint8_t *v;
	int r = mr_values_next(o->vals, &v, vlen, o->err);
	if (r < 0) {
		o->failed = 1;
		return -1;
	}
	*val = r ? (const char *)v : NULL;
	if (!r)
		*vlen = 0;
	return r;
}

static void api_fail(node_mr_out *o, const char *msg)
{
	snprintf(o->msg, sizeof o->msg, "%s", msg ? msg : "");
	o->has_msg = 1;
}

static const node_mr_api mr_plugin_api = {NODE_MR_ABI, api_emit, api_next, api_fail};

/* After a call that returned rc: 0, or the error naming the function and
 * where (at is "at line 12" or "for key \"x\""). */
static int plugin_result(const mr_plugin *p, const node_mr_out *o, int rc, const char *at, node_err *err)
{
	if (o->failed) {
		node_err_prefix(err, "%s %s: ", p->what, at);
		return err->rc ? err->rc : NODE_EINVAL;
	}
	if (rc == 0 && !o->has_msg)
		return 0;
	if (o->has_msg)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s failed %s: %s", p->what, at, o->msg);
	return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s failed %s (returned %d, no message)", p->what, at, rc);
}

/* ---- loading ---- */

int mr_plugin_load(const mr_fn *f, const char *role, mr_plugin **out, node_err *err)
{
	*out = NULL;
	mr_plugin *p = calloc(1, sizeof *p);
	if (p == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	snprintf(p->what, sizeof p->what, "%s plugin %.300s function %.128s", role, f->plugin, f->function);
	/* A normalised job's plugin path is absolute; dlopen would search the
	 * library path for a bare name. */
	if (f->plugin[0] != '/') {
		node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s: the plugin path must be absolute", p->what);
		free(p);
		return NODE_EINVAL;
	}
	p->dl = dlopen(f->plugin, RTLD_NOW | RTLD_LOCAL);
	if (p->dl == NULL) {
		node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s: cannot load: %s", p->what, dlerror());
		free(p);
		return NODE_EINVAL;
	}
	const int *abi = dlsym(p->dl, "node_mr_abi");
	if (abi != NULL && *abi != NODE_MR_ABI) {
		node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s: the plugin speaks MapReduce plugin ABI %d; this node speaks %d (rebuild it)",
		             p->what, *abi, NODE_MR_ABI);
		mr_plugin_free(p);
		return NODE_EINVAL;
	}
	p->fn = dlsym(p->dl, f->function);
	if (p->fn == NULL) {
		node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s: the plugin exports no such function", p->what);
		mr_plugin_free(p);
		return NODE_EINVAL;
	}
	*out = p;
	return 0;
}

void mr_plugin_free(mr_plugin *p)
{
	if (p == NULL)
		return;
	if (p->dl)
		dlclose(p->dl);
	free(p);
}

/* ---- calling ---- */

int mr_plugin_map(mr_plugin *p, const char *text, size_t len, uint64_t first_line, const char *params_json,
                  mr_kv_writer *w, uint64_t *lines, node_err *err)
{
	node_mr_map_fn *fn;
	*(void **)&fn = p->fn;
	node_mr_out o = {.out = {mr_kv_emit, w}, .err = err};
	uint64_t no = first_line;
	for (size_t pos = 0; pos < len; no++) {
		const char *s = text + pos, *nl = memchr(s, '\n', len - pos);
		size_t n = nl ? (size_t)(nl - s) : len - pos;
		pos += n + (nl != NULL);
		if (n && s[n - 1] == '\r')
			n--;
		int rc = fn(&mr_plugin_api, &o, s, n, (unsigned long long)no, params_json);
		if (rc != 0 || o.failed || o.has_msg) {
			char at[48];
			snprintf(at, sizeof at, "at line %llu", (unsigned long long)no);
			*lines = no - first_line + 1;
			return plugin_result(p, &o, rc, at, err);
		}
	}
	*lines = no - first_line;
	return 0;
}

int mr_plugin_reduce(const uint8_t *key, size_t klen, mr_values *vals, const mr_emitter *out, const char *param,
                     node_err *err)
{
	const mr_plugin_call *call = (const void *)param;
	node_mr_reduce_fn *fn;
	*(void **)&fn = call->p->fn;
	node_mr_out o = {.out = *out, .vals = vals, .err = err};
	int rc = fn(&mr_plugin_api, &o, (const char *)key, klen, call->params_json);
	if (rc == 0 && !o.failed && !o.has_msg)
		return 0;
	char at[96];
	snprintf(at, sizeof at, "for key \"%.*s\"", (int)(klen > 40 ? 40 : klen), (const char *)key);
	return plugin_result(call->p, &o, rc, at, err);
}
