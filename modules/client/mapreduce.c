/* Map, then reduce: on the client with a built-in reducer as results
 * arrive (ncl_map_reduce), or on the workers with a reduce task applied as
 * a tree, level by level, to groups of results in input order
 * (ncl_map_reduce_task). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "client/client_int.h"

#define TREE_FANIN_DEFAULT 16


typedef struct reduce_ctx {
	ncl_reduce *r;
	int rc;           /* a reducer error, or NCL_ETASK */
	ncl_err err;
} reduce_ctx;

static int reduce_item(size_t index, const char *result, const char *error, void *arg)
{
	reduce_ctx *x = arg;
	if (error) {
		x->rc = ncl_set(&x->err, NCL_ETASK, "item %zu failed: %s", index, error);
		return 1;
	}
	x->rc = ncl_reduce_add(x->r, index, result, &x->err);
	return x->rc != 0;
}

int ncl_map_reduce(ncl_conn *c, const char *task, const char *const *args_json, size_t n, ncl_reducer op,
    char **result, const ncl_opts *opts, int timeout_ms, ncl_err *err)
{
	if (result == NULL)
		return ncl_set(err, NCL_EINVAL, "ncl_map_reduce: result is NULL");
	*result = NULL;
	reduce_ctx x = {0};
	int rc = ncl_reduce_new(&x.r, op, err);
	if (rc != 0)
		return rc;
	int mode = ncl_reduce_ordered(op) ? NCL_ORDERED : NCL_AS_COMPLETED;
	rc = ncl_map(c, task, args_json, n, mode, reduce_item, &x, opts, timeout_ms, err);
	if (rc == NCL_ECANCEL && x.rc != 0) { /* the reducer stopped it: say why */
		rc = x.rc;
		if (err)
			*err = x.err;
	}
	if (rc == 0)
		rc = ncl_reduce_result(x.r, result, err);
	ncl_reduce_free(x.r);
	return rc;
}

/* ---- a tree of reduce tasks ---- */

/* The values of one level, in input order. */
typedef struct tree_level {
	char **v;
	size_t n;
	int rc;
	ncl_err err;
} tree_level;

static int tree_collect(size_t index, const char *result, const char *error, void *arg)
{
	tree_level *l = arg;
	if (error) {
		l->rc = ncl_set(&l->err, NCL_ETASK, "item %zu failed: %s", index, error);
		return 1;
	}
	if ((l->v[index] = strdup(result)) == NULL) {
		l->rc = ncl_set(&l->err, NCL_ENOMEM, "out of memory");
		return 1;
	}
	return 0;
}

static void tree_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* Group the values of a level fanin at a time: [[v0,v1,...]] each. */
static char **tree_group(char *const *v, size_t n, size_t fanin, size_t *out_n)
{
	size_t m = (n + fanin - 1) / fanin;
	char **g = calloc(m ? m : 1, sizeof *g);
	for (size_t i = 0; g && i < m; i++) {
		size_t from = i * fanin, to = from + fanin < n ? from + fanin : n, len = 5;
		for (size_t x = from; x < to; x++)
			len += strlen(v[x]) + 1;
		char *p = g[i] = malloc(len);
		if (p == NULL) {
			tree_free(g, i);
			return NULL;
		}
		*p++ = '[';
		*p++ = '[';
		for (size_t x = from; x < to; x++) {
			size_t vl = strlen(v[x]);
			memcpy(p, v[x], vl);
			p += vl;
			*p++ = x + 1 < to ? ',' : ']';
		}
		strcpy(p, "]");
	}
	*out_n = m;
	return g;
}

/* Run task over args (n items) into a new level. */
static int tree_map(ncl_conn *c, const char *task, const char *const *args, size_t n, const ncl_opts *opts,
    int timeout_ms, tree_level *l, ncl_err *err)
{
	l->n = n;
	l->rc = 0;
	if ((l->v = calloc(n ? n : 1, sizeof *l->v)) == NULL)
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	int rc = ncl_map(c, task, args, n, NCL_ORDERED, tree_collect, l, opts, timeout_ms, err);
	if (rc == NCL_ECANCEL && l->rc != 0) {
		rc = l->rc;
		if (err)
			*err = l->err;
	}
	return rc;
}

/* What is left of the whole limit for the next level (-1: none). */
static int tree_left(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - node_clock_mono_ms();
	return left < 1 ? 1 : left > 0x7fffffff ? 0x7fffffff : (int)left;
}

int ncl_map_reduce_task(ncl_conn *c, const char *task, const char *const *args_json, size_t n,
    const char *reduce_task, int fanin, char **result, const ncl_opts *opts, int timeout_ms, ncl_err *err)
{
	if (result == NULL || reduce_task == NULL || *reduce_task == '\0' || fanin == 1 || fanin < 0)
		return ncl_set(err, NCL_EINVAL, "ncl_map_reduce_task: a reduce task, a fan-in of 2 or more (0: %d) and "
		    "result are required", TREE_FANIN_DEFAULT);
	*result = NULL;
	if (n == 0)
		return ncl_set(err, NCL_EINVAL, "ncl_map_reduce_task: nothing to reduce (no items)");
	size_t k = fanin ? (size_t)fanin : TREE_FANIN_DEFAULT;
	int64_t deadline = ncl_deadline(timeout_ms == 0 ? -1 : timeout_ms); /* one limit for every level */
	tree_level l = {0};
	int rc = tree_map(c, task, args_json, n, opts, tree_left(deadline), &l, err);
	ncl_opts ro = opts ? *opts : (ncl_opts){0};
	ro.id = NULL;          /* each level gets its own ids */
	ro.chunk = 1;          /* a reduce task is not tiny */
	ro.kwargs_json = NULL; /* the map's named arguments are not the reducer's */
	for (int level = 1; rc == 0 && (l.n > 1 || level == 1); level++) {
		size_t m = 0;
		char **groups = tree_group(l.v, l.n, k, &m);
		if (groups == NULL) {
			rc = ncl_set(err, NCL_ENOMEM, "out of memory");
			break;
		}
		tree_free(l.v, l.n);
		l.v = NULL;
		rc = tree_map(c, reduce_task, (const char *const *)groups, m, &ro, tree_left(deadline), &l, err);
		tree_free(groups, m);
		if (rc != 0)
			ncl_prefix(err, "reduce level %d (%zu %s tasks): ", level, m, reduce_task);
	}
	if (rc == 0) {
		*result = l.v[0];
		l.v[0] = NULL;
	}
	tree_free(l.v, l.n);
	return rc;
}
