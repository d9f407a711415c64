/* K-way merge over run files with a binary min-heap of readers (ties to
 * the lower run index, for stability), multi-pass merging with a bounded
 * fan-in, and the reduce phase built on it. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapreduce/merge.h"

typedef struct heap_ent {
	mr_run_reader *r;
	mr_kv_rec rec;
	uint64_t pfx;
	size_t run;  /* index in the input list: the tie-break */
} heap_ent;

struct mr_merge {
	mr_kv_order order;
	heap_ent *h;
	size_t n;         /* entries in the heap */
	size_t nruns;
	mr_run_reader **readers;
	heap_ent *last;   /* handed out by the last call; advanced lazily */
	heap_ent last_ent;
};

static int less(const mr_merge *m, const heap_ent *a, const heap_ent *b)
{
	if (a->pfx != b->pfx)
		return a->pfx < b->pfx;
	int c = mr_kv_cmp(m->order, &a->rec, &b->rec);
	return c ? c < 0 : a->run < b->run;
}

static void sift_down(mr_merge *m, size_t i)
{
	heap_ent e = m->h[i];
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= m->n)
			break;
		if (c + 1 < m->n && less(m, &m->h[c + 1], &m->h[c]))
			c++;
		if (!less(m, &m->h[c], &e))
			break;
		m->h[i] = m->h[c];
		i = c;
	}
	m->h[i] = e;
}

void mr_merge_free(mr_merge *m)
{
	if (m == NULL)
		return;
	for (size_t i = 0; i < m->nruns; i++)
		mr_run_free(m->readers[i]);
	free(m->readers);
	free(m->h);
	free(m);
}

/* Read the next record of e's run; 1 got one, 0 run ended, -1 error. */
static int advance(mr_merge *m, heap_ent *e, node_err *err)
{
	int rc = mr_run_next(e->r, &e->rec, err);
	if (rc > 0)
		e->pfx = mr_kv_prefix(m->order, &e->rec);
	return rc;
}

int mr_merge_open(mr_merge **out, const char *const *paths, size_t n, mr_kv_order order, node_err *err)
{
	*out = NULL;
	mr_merge *m = calloc(1, sizeof *m);
	if (m == NULL || (m->readers = calloc(n ? n : 1, sizeof *m->readers)) == NULL ||
	    (m->h = calloc(n ? n : 1, sizeof *m->h)) == NULL) {
		mr_merge_free(m);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	m->order = order;
	for (size_t i = 0; i < n; i++) {
		if (mr_run_open(&m->readers[i], paths[i], err))
			goto fail;
		m->nruns = i + 1;
		heap_ent e = {m->readers[i], {0}, 0, i};
		int rc = advance(m, &e, err);
		if (rc < 0)
			goto fail;
		if (rc > 0)
			m->h[m->n++] = e;
	}
	for (size_t i = m->n / 2; i-- > 0;)
		sift_down(m, i);
	*out = m;
	return 0;
fail:
	m->nruns = n;  /* readers not opened are NULL */
	mr_merge_free(m);
	return err->rc;
}

int mr_merge_next(mr_merge *m, mr_kv_rec *rec, node_err *err)
{
	if (m->last) {
		/* The record handed out last lives in its reader's block, so its
		 * run moves on only now. */
		int rc = advance(m, &m->h[0], err);
		if (rc < 0)
			return -1;
		if (rc == 0)
			m->h[0] = m->h[--m->n];
		if (m->n)
			sift_down(m, 0);
		m->last = NULL;
	}
	if (m->n == 0)
		return 0;
	m->last = &m->h[0];
	*rec = m->h[0].rec;
	return 1;
}

static int merge_src_next(void *ctx, mr_kv_rec *rec, node_err *err)
{
	return mr_merge_next(ctx, rec, err);
}

mr_src mr_merge_src(mr_merge *m)
{
	return (mr_src){merge_src_next, m};
}

int mr_pump(mr_src src, mr_reduce_fn combine, const char *param, const mr_emitter *out, node_err *err)
{
	int rc;
	if (combine == NULL) {
		mr_kv_rec r;
		while ((rc = src.next(src.ctx, &r, err)) > 0)
			if (out->fn(out->ctx, r.key, r.klen, r.val, r.vlen, err))
				return err->rc;
		return rc < 0 ? err->rc : 0;
	}
	mr_values g;
	mr_group_init(&g, src);
	const uint8_t *key;
	size_t klen;
	while ((rc = mr_group_next(&g, &key, &klen, err)) > 0)
		if ((rc = combine(key, klen, &g, out, param, err)) != 0)
			break;
	mr_group_free(&g);
	return rc < 0 ? err->rc : rc;
}

/* ---- multi-pass ---- */

void mr_merge_paths_free(char **paths, size_t n)
{
	for (size_t i = 0; paths && i < n; i++)
		free(paths[i]);
	free(paths);
}

static int merge_to(const char *const *paths, size_t n, const char *out_path, const mr_merge_opts *o,
                    node_err *err)
{
	mr_merge *m;
	if (mr_merge_open(&m, paths, n, o->order, err))
		return err->rc;
	mr_run_writer *w;
	if (mr_run_create(&w, out_path, err)) {
		mr_merge_free(m);
		return err->rc;
	}
	mr_emitter em = {mr_run_emit, w};
	int rc = mr_pump(mr_merge_src(m), o->combine, o->param, &em, err);
	mr_merge_free(m);
	if (rc) {
		mr_run_abort(w);
		return rc;
	}
	return mr_run_close(w, err);
}

static atomic_uint merge_seq;

static int tmp_name(const mr_merge_opts *o, char **out, node_err *err)
{
	char buf[4096];
	int n = snprintf(buf, sizeof buf, "%s/merge-%ld-%u.run", o->tmpdir ? o->tmpdir : ".", (long)getpid(),
	                 atomic_fetch_add(&merge_seq, 1));
	if (n < 0 || (size_t)n >= sizeof buf)
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "%s: directory name too long", o->tmpdir);
	if ((*out = strdup(buf)) == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	return 0;
}

/* One pass: consecutive groups of fanin runs become one run each, in
 * order, so ties keep their order across passes. owned says whether the
 * inputs are ours to delete. */
static int one_pass(char **in, size_t n, int owned, const mr_merge_opts *o, int fanin, char **out,
                    size_t *nout, node_err *err)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i += (size_t)fanin) {
		size_t g = n - i < (size_t)fanin ? n - i : (size_t)fanin;
		if (tmp_name(o, &out[k], err))
			goto fail;
		if (merge_to((const char *const *)in + i, g, out[k], o, err)) {
			free(out[k]);
			goto fail;
		}
		k++;
		for (size_t j = i; owned && j < i + g; j++)
			unlink(in[j]);
	}
	*nout = k;
	return 0;
fail:
	for (size_t j = 0; j < k; j++) {
		unlink(out[j]);
		free(out[j]);
	}
	return err->rc;
}

int mr_merge_passes(const char *const *paths, size_t n, const mr_merge_opts *o, char ***out,
                    size_t *nout, node_err *err)
{
	int fanin = o->fanin ? o->fanin : MR_KV_FANIN_DEFAULT;
	if (fanin < 2)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "merge fan-in must be at least 2");
	char **cur = calloc(n ? n : 1, sizeof *cur);
	if (cur == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	size_t ncur = n;
	for (size_t i = 0; i < n; i++)
		if ((cur[i] = strdup(paths[i])) == NULL) {
			mr_merge_paths_free(cur, i);
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		}
	int owned = 0;
	while (ncur > (size_t)fanin) {
		char **next = calloc((ncur + (size_t)fanin - 1) / (size_t)fanin, sizeof *next);
		size_t nnext = 0;
		if (next == NULL || one_pass(cur, ncur, owned, o, fanin, next, &nnext, err)) {
			free(next);
			for (size_t i = 0; owned && i < ncur; i++)
				unlink(cur[i]);
			mr_merge_paths_free(cur, ncur);
			return next ? err->rc : node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		}
		mr_merge_paths_free(cur, ncur);
		cur = next;
		ncur = nnext;
		owned = 1;
	}
	*out = cur;
	*nout = ncur;
	return 0;
}

/* Intermediate files are ours when passes ran (the list then differs). */
static void drop_passes(const char *const *paths, size_t n, char **cur, size_t ncur)
{
	int owned = ncur != n;
	for (size_t i = 0; owned && i < ncur; i++)
		unlink(cur[i]);
	mr_merge_paths_free(cur, ncur);
}

int mr_merge_files(const char *const *paths, size_t n, const char *out_path, const mr_merge_opts *o,
                   node_err *err)
{
	char **cur;
	size_t ncur;
	if (mr_merge_passes(paths, n, o, &cur, &ncur, err))
		return err->rc;
	int rc = merge_to((const char *const *)cur, ncur, out_path, o, err);
	drop_passes(paths, n, cur, ncur);
	return rc;
}

int mr_merge_reduce(const char *const *paths, size_t n, const mr_merge_opts *o, mr_reduce_fn reduce,
                    const char *param, const mr_emitter *out, node_err *err)
{
	if (reduce && o->order != MR_ORDER_KEY)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
		                    "a reducer needs the key sort order (values of a key must be adjacent)");
	char **cur;
	size_t ncur;
	if (mr_merge_passes(paths, n, o, &cur, &ncur, err))
		return err->rc;
	mr_merge *m;
	int rc = mr_merge_open(&m, (const char *const *)cur, ncur, o->order, err);
	if (rc == 0) {
		rc = mr_pump(mr_merge_src(m), reduce, param, out, err);
		mr_merge_free(m);
	}
	drop_passes(paths, n, cur, ncur);
	return rc;
}
