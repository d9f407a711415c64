/* Records (varints, the partition hash, sort orders, group-by-key) and the
 * map-side writer: a record arena plus index, an optional hash table that
 * folds numeric values first, sorted spills per partition, final merge. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapreduce/kv.h"
#include "mapreduce/merge.h"

/* ---- encoding, hash, order ---- */

size_t mr_kv_put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

size_t mr_kv_get_varint(const uint8_t *p, size_t avail, uint64_t *v)
{
	uint64_t x = 0;
	for (size_t i = 0; i < avail && i < 10; i++) {
		x |= (uint64_t)(p[i] & 0x7F) << (7 * i);
		if (!(p[i] & 0x80)) {
			*v = x;
			return i + 1;
		}
	}
	return 0;
}

uint64_t mr_kv_hash(const void *key, size_t len)
{
	const uint8_t *p = key;
	uint64_t h = MR_KV_HASH_INIT;
	for (size_t i = 0; i < len; i++)
		h = mr_kv_hash_step(h, p[i]);
	return h;
}

int mr_kv_partition(const void *key, size_t len, int nparts)
{
	return nparts <= 1 ? 0 : (int)(mr_kv_hash(key, len) % (uint64_t)nparts);
}

static int key_cmp(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
	int c = memcmp(a, b, al < bl ? al : bl);
	return c ? c : (al > bl) - (al < bl);
}

int mr_kv_parse_double(const uint8_t *v, size_t len, double *out)
{
	char buf[64];
	if (len == 0 || len >= sizeof buf)
		return 0;
	memcpy(buf, v, len);
	buf[len] = '\0';
	char *end;
	double d = strtod(buf, &end);
	if (end != buf + len || d != d)
		return 0;
	*out = d;
	return 1;
}

/* For sorting: -0 and 0 are one number. */
static int parse_num(const uint8_t *v, size_t len, double *out)
{
	if (!mr_kv_parse_double(v, len, out))
		return 0;
	if (*out == 0)
		*out = 0.0;
	return 1;
}

uint64_t mr_kv_prefix(mr_kv_order order, const mr_kv_rec *r)
{
	if (order == MR_ORDER_VALUE_DESC) {
		double d;
		if (!parse_num(r->val, r->vlen, &d))
			return UINT64_MAX;
		uint64_t u;
		memcpy(&u, &d, 8);
		/* IEEE bits made to sort ascending as unsigned, then inverted. */
		u = (u >> 63) ? ~u : u | (1ULL << 63);
		return ~u - (~u == UINT64_MAX);
	}
	uint64_t p = 0;
	for (size_t i = 0; i < 8; i++)
		p = p << 8 | (i < r->klen ? r->key[i] : 0);
	return p;
}

int mr_kv_cmp(mr_kv_order order, const mr_kv_rec *a, const mr_kv_rec *b)
{
	if (order == MR_ORDER_VALUE_DESC) {
		uint64_t pa = mr_kv_prefix(order, a), pb = mr_kv_prefix(order, b);
		if (pa != pb)
			return pa < pb ? -1 : 1;
	}
	return key_cmp(a->key, a->klen, b->key, b->klen);
}

/* ---- group by key ---- */

void mr_group_init(mr_values *g, mr_src src)
{
	memset(g, 0, sizeof *g);
	g->src = src;
}

static int pull(mr_values *g, node_err *err)
{
	if (g->has_pend || g->eof)
		return 0;
	int rc = g->src.next(g->src.ctx, &g->pend, err);
	if (rc < 0)
		return -1;
	if (rc == 0)
		g->eof = 1;
	else
		g->has_pend = 1;
	return 0;
}

int mr_values_next(mr_values *g, const uint8_t **val, size_t *vlen, node_err *err)
{
	if (!g->started || pull(g, err))
		return g->started ? -1 : 0;
	if (!g->has_pend || key_cmp(g->pend.key, g->pend.klen, g->key, g->klen) != 0)
		return 0;
	g->has_pend = 0;
	*val = g->pend.val;
	*vlen = g->pend.vlen;
	return 1;
}

int mr_group_next(mr_values *g, const uint8_t **key, size_t *klen, node_err *err)
{
	const uint8_t *v;
	size_t vl;
	int rc;
	while (g->started && (rc = mr_values_next(g, &v, &vl, err)) != 0)
		if (rc < 0)
			return -1;
	if (pull(g, err))
		return -1;
	if (!g->has_pend)
		return 0;
	if (g->pend.klen > g->kcap) {
		uint8_t *k = realloc(g->key, g->pend.klen);
		if (k == NULL)
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory"), -1;
		g->key = k;
		g->kcap = g->pend.klen;
	}
	if (g->pend.klen)
		memcpy(g->key, g->pend.key, g->pend.klen);
	g->klen = g->pend.klen;
	g->started = 1;
	*key = g->key;
	*klen = g->klen;
	return 1;
}

void mr_group_free(mr_values *g)
{
	free(g->key);
	g->key = NULL;
}

/* ---- the writer ---- */

typedef struct idx_ent {
	uint64_t pfx;
	uint32_t off, part;
} idx_ent;

/* Fold table slot; klen1 is klen + 1 so 0 marks a free slot. */
typedef struct fold_ent {
	uint64_t hash;
	uint32_t koff, klen1;
	int64_t acc;
} fold_ent;

typedef struct path_list {
	char **v;
	size_t n, cap;
} path_list;

struct mr_kv_writer {
	mr_kv_opts o;
	char *dir;
	size_t buf_limit, tab_limit;
	uint8_t *arena;            /* encoded records */
	size_t used, acap;
	idx_ent *idx;
	size_t nidx, icap;
	fold_ent *tab;             /* open addressing, power-of-two size */
	size_t tcap, tcount;
	uint8_t *keys;             /* the table's keys */
	size_t kused, kcap;
	path_list *runs;           /* spills, per partition */
	size_t spills;
	int finished;
	/* a spill sorted by the caller: open, its partition's run, last key */
	int sopen, spart;
	mr_run_writer *sw;
	char spath[4096];
	uint8_t *skey;
	size_t sklen, skcap;
};

static int oom(node_err *err)
{
	return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
}

static int64_t fold_op(mr_kv_fold f, int64_t a, int64_t b)
{
	if (f == MR_FOLD_MIN)
		return b < a ? b : a;
	if (f == MR_FOLD_MAX)
		return b > a ? b : a;
	return (int64_t)((uint64_t)a + (uint64_t)b);  /* wraps, never UB */
}

int mr_kv_parse_i64(const uint8_t *v, size_t len, int64_t *out)
{
	char buf[24];
	if (len == 0 || len >= sizeof buf)
		return 0;
	memcpy(buf, v, len);
	buf[len] = '\0';
	char *end;
	errno = 0;
	long long x = strtoll(buf, &end, 10);
	if (end != buf + len || errno)
		return 0;
	*out = x;
	return 1;
}

static int fold_group(mr_kv_fold f, const uint8_t *key, size_t klen, mr_values *vals,
                      const mr_emitter *out, node_err *err)
{
	const uint8_t *v;
	size_t vl;
	int64_t acc = 0, x;
	int rc, any = 0;
	while ((rc = mr_values_next(vals, &v, &vl, err)) > 0) {
		if (!mr_kv_parse_i64(v, vl, &x))
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
			                    "value \"%.*s\" of key \"%.*s\" is not an integer", (int)(vl > 40 ? 40 : vl),
			                    (const char *)v, (int)(klen > 40 ? 40 : klen), (const char *)key);
		acc = any ? fold_op(f, acc, x) : x;
		any = 1;
	}
	if (rc < 0)
		return err->rc;
	char num[24];
	int n = snprintf(num, sizeof num, "%" PRId64, acc);
	return out->fn(out->ctx, key, klen, num, (size_t)n, err);
}

static int fold_sum(const uint8_t *k, size_t kl, mr_values *v, const mr_emitter *o, const char *p, node_err *e)
{
	return fold_group(MR_FOLD_SUM, k, kl, v, o, e);
}
static int fold_min(const uint8_t *k, size_t kl, mr_values *v, const mr_emitter *o, const char *p, node_err *e)
{
	return fold_group(MR_FOLD_MIN, k, kl, v, o, e);
}
static int fold_max(const uint8_t *k, size_t kl, mr_values *v, const mr_emitter *o, const char *p, node_err *e)
{
	return fold_group(MR_FOLD_MAX, k, kl, v, o, e);
}

int mr_kv_part_path(char *buf, size_t size, const char *dir, int part, node_err *err)
{
	int n = snprintf(buf, size, "%s/part-%05d.run", dir, part);
	if (n < 0 || (size_t)n >= size)
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "%s: directory name too long", dir);
	return 0;
}

static int check_opts(const mr_kv_opts *o, node_err *err)
{
	if (o->dir == NULL || o->nparts < 1 || o->nparts > MR_KV_PARTS_MAX)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
		                    "map output needs a directory and 1 to %d partitions", MR_KV_PARTS_MAX);
	if ((o->combine || o->fold) && o->order != MR_ORDER_KEY)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
		                    "a combiner needs the key sort order (values of a key must be adjacent)");
	if (o->fanin == 1 || o->fanin < 0)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "merge fan-in must be at least 2");
	return 0;
}

int mr_kv_writer_open(mr_kv_writer **out, const mr_kv_opts *opts, node_err *err)
{
	*out = NULL;
	if (check_opts(opts, err))
		return err ? err->rc : NODE_EINVAL;
	mr_kv_writer *w = calloc(1, sizeof *w);
	if (w == NULL)
		return oom(err);
	w->o = *opts;
	w->dir = strdup(opts->dir);
	w->runs = calloc((size_t)opts->nparts, sizeof *w->runs);
	if (w->dir == NULL || w->runs == NULL) {
		mr_kv_writer_free(w);
		return oom(err);
	}
	w->o.dir = w->dir;
	size_t limit = opts->mem_limit ? opts->mem_limit : (64u << 20);
	if (limit > (1ULL << 31))
		limit = 1ULL << 31;  /* arena offsets are 32-bit */
	/* The fold table takes half: what it folds away never reaches the
	 * buffer, and what it flushes the buffer combines once more. */
	w->tab_limit = opts->fold ? limit / 2 : 0;
	w->buf_limit = limit - w->tab_limit;
	if (opts->fold && opts->combine == NULL)
		w->o.combine = opts->fold == MR_FOLD_MIN ? fold_min : opts->fold == MR_FOLD_MAX ? fold_max : fold_sum;
	*out = w;
	return 0;
}

static int list_add(path_list *l, const char *path, node_err *err)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		char **v = realloc(l->v, cap * sizeof *v);
		if (v == NULL)
			return oom(err);
		l->v = v;
		l->cap = cap;
	}
	if ((l->v[l->n] = strdup(path)) == NULL)
		return oom(err);
	l->n++;
	return 0;
}

static void list_free(path_list *l, int remove)
{
	for (size_t i = 0; i < l->n; i++) {
		if (remove)
			unlink(l->v[i]);
		free(l->v[i]);
	}
	free(l->v);
	memset(l, 0, sizeof *l);
}

void mr_kv_writer_free(mr_kv_writer *w)
{
	if (w == NULL)
		return;
	for (int p = 0; w->runs && p < w->o.nparts; p++)
		list_free(&w->runs[p], 1);
	free(w->runs);
	free(w->arena);
	free(w->idx);
	free(w->tab);
	free(w->keys);
	mr_run_abort(w->sw);
	free(w->skey);
	free(w->dir);
	free(w);
}

size_t mr_kv_spills(const mr_kv_writer *w)
{
	return w->spills;
}

static void decode_at(const uint8_t *p, mr_kv_rec *r)
{
	uint64_t kl = 0, vl = 0;
	p += mr_kv_get_varint(p, 10, &kl);
	p += mr_kv_get_varint(p, 10, &vl);
	r->key = p;
	r->klen = (size_t)kl;
	r->val = p + kl;
	r->vlen = (size_t)vl;
}

static int ent_cmp(const void *pa, const void *pb, void *ctx)
{
	const idx_ent *a = pa, *b = pb;
	const mr_kv_writer *w = ctx;
	if (a->part != b->part)
		return a->part < b->part ? -1 : 1;
	if (a->pfx != b->pfx)
		return a->pfx < b->pfx ? -1 : 1;
	mr_kv_rec ra, rb;
	decode_at(w->arena + a->off, &ra);
	decode_at(w->arena + b->off, &rb);
	int c = key_cmp(ra.key, ra.klen, rb.key, rb.klen);
	/* Offsets grow with insertion, so this last step makes it stable. */
	return c ? c : (a->off > b->off) - (a->off < b->off);
}

/* A source over idx[pos, end) of the sorted buffer. */
typedef struct range_src {
	const mr_kv_writer *w;
	size_t pos, end;
} range_src;

static int range_next(void *ctx, mr_kv_rec *rec, node_err *err)
{
	range_src *s = ctx;
	if (s->pos == s->end)
		return 0;
	decode_at(s->w->arena + s->w->idx[s->pos++].off, rec);
	return 1;
}

static int spill_part(mr_kv_writer *w, uint32_t part, size_t lo, size_t hi, node_err *err)
{
	char path[4096];
	int n = snprintf(path, sizeof path, "%s/spill-%06zu-%05u.run", w->dir, w->spills, part);
	if (n < 0 || (size_t)n >= sizeof path)
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "%s: directory name too long", w->dir);
	mr_run_writer *rw;
	if (mr_run_create(&rw, path, err))
		return err->rc;
	range_src rs = {w, lo, hi};
	mr_emitter em = {mr_run_emit, rw};
	if (mr_pump((mr_src){range_next, &rs}, w->o.combine, w->o.param, &em, err)) {
		mr_run_abort(rw);
		return err->rc;
	}
	if (mr_run_close(rw, err))
		return err->rc;
	if (list_add(&w->runs[part], path, err)) {
		unlink(path);
		return err->rc;
	}
	return 0;
}

static int spill(mr_kv_writer *w, node_err *err)
{
	if (w->nidx == 0)
		return 0;
	qsort_r(w->idx, w->nidx, sizeof *w->idx, ent_cmp, w);
	for (size_t lo = 0, hi; lo < w->nidx; lo = hi) {
		uint32_t part = w->idx[lo].part;
		for (hi = lo + 1; hi < w->nidx && w->idx[hi].part == part; hi++)
			;
		if (spill_part(w, part, lo, hi, err))
			return err->rc;
	}
	w->spills++;
	w->used = 0;
	w->nidx = 0;
	return 0;
}

/* Room for need more arena bytes and one index entry; spills when the
 * limit is reached, but a lone record larger than the limit still fits. */
static int buf_room(mr_kv_writer *w, size_t need, node_err *err)
{
	if (w->nidx && w->used + need + (w->nidx + 1) * sizeof(idx_ent) > w->buf_limit && spill(w, err))
		return err->rc;
	if (w->used + need > w->acap) {
		size_t cap = w->acap ? w->acap : 4096;
		while (cap < w->used + need)
			cap *= 2;
		uint8_t *a = realloc(w->arena, cap);
		if (a == NULL)
			return oom(err);
		w->arena = a;
		w->acap = cap;
	}
	if (w->nidx == w->icap) {
		size_t cap = w->icap ? w->icap * 2 : 256;
		idx_ent *x = realloc(w->idx, cap * sizeof *x);
		if (x == NULL)
			return oom(err);
		w->idx = x;
		w->icap = cap;
	}
	return 0;
}

static int buf_add(mr_kv_writer *w, const void *key, size_t klen, const void *val, size_t vlen,
                   uint32_t part, node_err *err)
{
	if (klen + vlen > MR_KV_RECORD_MAX)
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_TOO_LARGE,
		                    "a record of %zu bytes is larger than the limit of %u", klen + vlen,
		                    MR_KV_RECORD_MAX);
	if (buf_room(w, 20 + klen + vlen, err))
		return err->rc;
	uint32_t off = (uint32_t)w->used;
	uint8_t *p = w->arena + off;
	p += mr_kv_put_varint(p, klen);
	p += mr_kv_put_varint(p, vlen);
	memcpy(p, key, klen);
	if (vlen)
		memcpy(p + klen, val, vlen);
	w->used = (size_t)(p - w->arena) + klen + vlen;
	mr_kv_rec r = {p, klen, p + klen, vlen};
	w->idx[w->nidx++] = (idx_ent){mr_kv_prefix(w->o.order, &r), off, part};
	return 0;
}

static uint32_t part_of(const mr_kv_writer *w, uint64_t hash)
{
	return w->o.nparts == 1 ? 0 : (uint32_t)(hash % (uint64_t)w->o.nparts);
}

int mr_kv_add(mr_kv_writer *w, const void *key, size_t klen, const void *val, size_t vlen,
              node_err *err)
{
	uint64_t h = w->o.nparts == 1 ? 0 : mr_kv_hash(key, klen);
	return buf_add(w, key, klen, val, vlen, part_of(w, h), err);
}

int mr_kv_emit(void *w, const void *key, size_t klen, const void *val, size_t vlen, node_err *err)
{
	return mr_kv_add(w, key, klen, val, vlen, err);
}

/* ---- the fold table ---- */

static int tab_flush(mr_kv_writer *w, node_err *err)
{
	for (size_t i = 0; i < w->tcap; i++) {
		fold_ent *e = &w->tab[i];
		if (e->klen1 == 0)
			continue;
		char num[24];
		int n = snprintf(num, sizeof num, "%" PRId64, e->acc);
		if (buf_add(w, w->keys + e->koff, e->klen1 - 1, num, (size_t)n, part_of(w, e->hash), err))
			return err->rc;
	}
	if (w->tab)
		memset(w->tab, 0, w->tcap * sizeof *w->tab);
	w->tcount = 0;
	w->kused = 0;
	return 0;
}

static int tab_resize(mr_kv_writer *w, size_t cap, node_err *err)
{
	fold_ent *t = calloc(cap, sizeof *t);
	if (t == NULL)
		return oom(err);
	for (size_t i = 0; i < w->tcap; i++) {
		fold_ent *e = &w->tab[i];
		if (e->klen1 == 0)
			continue;
		size_t j = e->hash & (cap - 1);
		while (t[j].klen1)
			j = (j + 1) & (cap - 1);
		t[j] = *e;
	}
	free(w->tab);
	w->tab = t;
	w->tcap = cap;
	return 0;
}

/* Make room for one more key of klen bytes: grow the table and key arena
 * within tab_limit, or flush the table into the buffer. */
static int tab_room(mr_kv_writer *w, size_t klen, node_err *err)
{
	int full = (w->tcount + 1) * 2 > w->tcap;
	size_t tbytes = (full ? w->tcap * 2 : w->tcap) * sizeof(fold_ent);
	size_t kneed = w->kused + klen;
	size_t kcap = w->kcap ? w->kcap : 1024;
	while (kcap < kneed)
		kcap *= 2;
	if (w->tcap && tbytes + kcap > w->tab_limit && w->tcount) {
		if (tab_flush(w, err))
			return err->rc;
		return tab_room(w, klen, err);
	}
	if (w->tcap == 0 || full)
		if (tab_resize(w, w->tcap ? w->tcap * 2 : 64, err))
			return err->rc;
	if (kcap > w->kcap) {
		uint8_t *k = realloc(w->keys, kcap);
		if (k == NULL)
			return oom(err);
		w->keys = k;
		w->kcap = kcap;
	}
	return 0;
}

int mr_kv_add_num(mr_kv_writer *w, const void *key, size_t klen, uint64_t hash, int64_t v,
                  node_err *err)
{
	if (w->o.fold == MR_FOLD_NONE) {
		char num[24];
		int n = snprintf(num, sizeof num, "%" PRId64, v);
		return buf_add(w, key, klen, num, (size_t)n, part_of(w, hash), err);
	}
	if (klen > MR_KV_RECORD_MAX)
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_TOO_LARGE, "a key of %zu bytes is too large", klen);
	if (w->tcap) {
		size_t mask = w->tcap - 1;
		for (size_t i = hash & mask;; i = (i + 1) & mask) {
			fold_ent *e = &w->tab[i];
			if (e->klen1 == 0)
				break;
			if (e->hash == hash && e->klen1 == klen + 1 && memcmp(w->keys + e->koff, key, klen) == 0) {
				e->acc = fold_op(w->o.fold, e->acc, v);
				return 0;
			}
		}
	}
	if (tab_room(w, klen, err))
		return err->rc;
	size_t i = hash & (w->tcap - 1);
	while (w->tab[i].klen1)
		i = (i + 1) & (w->tcap - 1);
	memcpy(w->keys + w->kused, key, klen);
	w->tab[i] = (fold_ent){hash, (uint32_t)w->kused, (uint32_t)klen + 1, v};
	w->kused += klen;
	w->tcount++;
	return 0;
}

mr_kv_fold mr_kv_writer_fold(const mr_kv_writer *w)
{
	return w->o.fold;
}

size_t mr_kv_fold_budget(const mr_kv_writer *w)
{
	return w->tab_limit + w->buf_limit;
}

int mr_kv_writer_parts(const mr_kv_writer *w)
{
	return w->o.nparts;
}

/* ---- spills sorted by the caller ---- */

static int sorted_close(mr_kv_writer *w, node_err *err)
{
	mr_run_writer *rw = w->sw;
	w->sw = NULL;
	if (rw == NULL)
		return 0;
	if (mr_run_close(rw, err))
		return err->rc;
	if (list_add(&w->runs[w->spart], w->spath, err)) {
		unlink(w->spath);
		return err->rc;
	}
	return 0;
}

int mr_kv_spill_begin(mr_kv_writer *w, node_err *err)
{
	if (w->o.order != MR_ORDER_KEY || w->sopen || w->finished)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_INTERNAL,
		                    "a sorted spill needs the key order, and no other one open");
	w->sopen = 1;
	w->spart = -1;
	return 0;
}

int mr_kv_spill_put(mr_kv_writer *w, int part, const void *key, size_t klen, const void *val, size_t vlen,
                    node_err *err)
{
	if (!w->sopen || part < w->spart || part >= w->o.nparts ||
	    (part == w->spart && key_cmp(key, klen, w->skey, w->sklen) <= 0))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_INTERNAL,
		                    "sorted spill: a record out of order (partition %d, key \"%.*s\")", part,
		                    (int)(klen > 40 ? 40 : klen), (const char *)key);
	if (part != w->spart) {
		if (sorted_close(w, err))
			return err->rc;
		int n = snprintf(w->spath, sizeof w->spath, "%s/spill-%06zu-%05d.run", w->dir, w->spills, part);
		if (n < 0 || (size_t)n >= sizeof w->spath)
			return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "%s: directory name too long", w->dir);
		if (mr_run_create(&w->sw, w->spath, err))
			return err->rc;
		w->spart = part;
	}
	if (klen > w->skcap) {
		uint8_t *k = realloc(w->skey, klen);
		if (k == NULL)
			return oom(err);
		w->skey = k;
		w->skcap = klen;
	}
	if (klen)
		memcpy(w->skey, key, klen);
	w->sklen = klen;
	return mr_run_put(w->sw, key, klen, val, vlen, err);
}

int mr_kv_spill_end(mr_kv_writer *w, node_err *err)
{
	if (!w->sopen)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_INTERNAL, "sorted spill: not begun");
	w->sopen = 0;
	if (sorted_close(w, err))
		return err->rc;
	w->spills++;
	return 0;
}

/* ---- finish ---- */

static int finish_part(mr_kv_writer *w, int p, node_err *err)
{
	char path[4096];
	if (mr_kv_part_path(path, sizeof path, w->dir, p, err))
		return err->rc;
	path_list *l = &w->runs[p];
	if (l->n == 0) {
		mr_run_writer *rw;
		if (mr_run_create(&rw, path, err))
			return err->rc;
		return mr_run_close(rw, err);
	}
	if (l->n == 1) {
		if (rename(l->v[0], path) != 0)
			return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "%s: cannot rename to %s: %s", l->v[0],
			                    path, strerror(errno));
		list_free(l, 0);
		return 0;
	}
	mr_merge_opts mo = {w->o.order, w->o.fanin, w->dir, w->o.combine, w->o.param};
	if (mr_merge_files((const char *const *)l->v, l->n, path, &mo, err))
		return err->rc;
	list_free(l, 1);
	return 0;
}

int mr_kv_finish(mr_kv_writer *w, node_err *err)
{
	if (w->finished)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_INTERNAL, "map output already finished");
	if (w->sopen)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_INTERNAL, "map output: a sorted spill is not ended");
	if (tab_flush(w, err) || spill(w, err))
		return err->rc;
	for (int p = 0; p < w->o.nparts; p++)
		if (finish_part(w, p, err))
			return err->rc;
	w->finished = 1;
	return 0;
}
