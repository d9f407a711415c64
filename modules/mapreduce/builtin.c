/* Built-in map functions (wordcount, split-words, identity, grep) and
 * reducers (sum, count, min, max, identity, concat). wordcount counts
 * with the word-count kernel (wcount.c) and hands the writer its table. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapreduce/builtin.h"
#include "mapreduce/wcount.h"

/* ---- maps ---- */

/* The next line from pos: returns 0 at the end. */
static int next_line(const char *t, size_t len, size_t *pos, const char **line, size_t *llen)
{
	if (*pos >= len)
		return 0;
	const char *s = t + *pos, *nl = memchr(s, '\n', len - *pos);
	size_t n = nl ? (size_t)(nl - s) : len - *pos;
	*pos += n + (nl != NULL);
	if (n && s[n - 1] == '\r')
		n--;
	*line = s;
	*llen = n;
	return 1;
}

static int oom(node_err *err)
{
	return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
}

/* wordcount's side of the writer: the counter's table, sorted by
 * partition and word, goes straight into run files (one sorted spill per
 * flush); a word's partition hash is computed once per flush. */
typedef struct wc_out {
	mr_kv_writer *w;
	int nparts, open;
} wc_out;

static int wc_part(void *ctx, const uint8_t *word, size_t len)
{
	const wc_out *o = ctx;
	return (int)(mr_kv_hash(word, len) % (uint64_t)o->nparts);
}

static int wc_counted(void *ctx, int part, const uint8_t *word, size_t len, uint64_t count, node_err *err)
{
	wc_out *o = ctx;
	if (!o->open && mr_kv_spill_begin(o->w, err))
		return err->rc;
	o->open = 1;
	char num[24], *p = num + sizeof num;
	do
		*--p = (char)('0' + count % 10);
	while ((count /= 10) != 0);
	return mr_kv_spill_put(o->w, part, word, len, p, (size_t)(num + sizeof num - p), err);
}

static int wc_flushed(void *ctx, node_err *err)
{
	wc_out *o = ctx;
	o->open = 0;
	return mr_kv_spill_end(o->w, err);
}

/* Without a sum to fold into, every word is its own "word 1" record. */
static int wc_each(void *ctx, int part, const uint8_t *word, size_t len, uint64_t count, node_err *err)
{
	const wc_out *o = ctx;
	return mr_kv_add_num(o->w, word, len, mr_kv_hash(word, len), 1, err);
}

int mr_fn_wordcount(const char *text, size_t len, uint64_t first_line, const char *param,
                    mr_kv_writer *out, node_err *err)
{
	/* Under a sum the counter's table takes the writer's memory, and goes
	 * to it as a sorted spill whenever it is full and at the end. */
	int sum = mr_kv_writer_fold(out) == MR_FOLD_SUM;
	wc_out wo = {out, mr_kv_writer_parts(out), 0};
	mr_wc_opts o = {sum ? mr_kv_fold_budget(out) : 0, !sum, sum ? wc_counted : wc_each, &wo, wo.nparts, wc_part,
	                wc_flushed};
	mr_wc *wc;
	if (mr_wc_open(&wc, &o, err))
		return err->rc;
	int rc = mr_wc_feed(wc, text, len, err);
	if (rc == 0)
		rc = mr_wc_end(wc, err);
	if (rc == 0)
		rc = mr_wc_flush(wc, err);
	mr_wc_free(wc);
	return rc;
}

static int is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\v' || c == '\f' || c == '\r';
}

int mr_fn_split_words(const char *text, size_t len, uint64_t first_line, const char *param,
                      mr_kv_writer *out, node_err *err)
{
	const char *line;
	size_t pos = 0, ll;
	for (uint64_t no = first_line; next_line(text, len, &pos, &line, &ll); no++) {
		char num[24];
		int nn = snprintf(num, sizeof num, "%" PRIu64, no);
		for (size_t i = 0; i < ll;) {
			while (i < ll && is_blank(line[i]))
				i++;
			size_t s = i;
			while (i < ll && !is_blank(line[i]))
				i++;
			if (i > s && mr_kv_add(out, line + s, i - s, num, (size_t)nn, err))
				return err->rc;
		}
	}
	return 0;
}

int mr_fn_identity(const char *text, size_t len, uint64_t first_line, const char *param,
                   mr_kv_writer *out, node_err *err)
{
	const char *line;
	size_t pos = 0, ll;
	while (next_line(text, len, &pos, &line, &ll)) {
		const char *tab = memchr(line, '\t', ll);
		size_t kl = tab ? (size_t)(tab - line) : ll;
		if (mr_kv_add(out, line, kl, tab ? tab + 1 : "", tab ? ll - kl - 1 : 0, err))
			return err->rc;
	}
	return 0;
}

int mr_fn_grep(const char *text, size_t len, uint64_t first_line, const char *param,
               mr_kv_writer *out, node_err *err)
{
	const char *line;
	size_t pos = 0, ll, pl = param ? strlen(param) : 0;
	for (uint64_t no = first_line; next_line(text, len, &pos, &line, &ll); no++) {
		if (pl && memmem(line, ll, param, pl) == NULL)
			continue;
		char num[24];
		int nn = snprintf(num, sizeof num, "%" PRIu64, no);
		if (mr_kv_add(out, line, ll, num, (size_t)nn, err))
			return err->rc;
	}
	return 0;
}

/* ---- reducers ---- */

/* A numeric value: exact int64 when it is one, else a double. */
typedef struct num {
	int is_int;
	int64_t i;
	double d;
} num;

static int parse_value(const uint8_t *v, size_t len, num *out)
{
	int64_t x;
	if (mr_kv_parse_i64(v, len, &x)) {
		*out = (num){1, x, (double)x};
		return 1;
	}
	double d;
	if (!mr_kv_parse_double(v, len, &d))
		return 0;
	*out = (num){0, 0, d};
	return 1;
}

static int not_number(const uint8_t *key, size_t klen, const uint8_t *v, size_t vl, node_err *err)
{
	return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "value \"%.*s\" of key \"%.*s\" is not a number",
	                    (int)(vl > 40 ? 40 : vl), (const char *)v, (int)(klen > 40 ? 40 : klen),
	                    (const char *)key);
}

typedef enum { OP_SUM, OP_MIN, OP_MAX } num_op;

static void combine_num(num_op op, num *acc, const num *x)
{
	if (op == OP_SUM) {
		int64_t s;
		if (acc->is_int && x->is_int && !__builtin_add_overflow(acc->i, x->i, &s))
			*acc = (num){1, s, (double)s};
		else
			*acc = (num){0, 0, acc->d + x->d};
		return;
	}
	int take;
	if (acc->is_int && x->is_int)
		take = op == OP_MIN ? x->i < acc->i : x->i > acc->i;
	else
		take = op == OP_MIN ? x->d < acc->d : x->d > acc->d;
	if (take)
		*acc = *x;
}

static int emit_num(const uint8_t *key, size_t klen, const num *n, const mr_emitter *out, node_err *err)
{
	char buf[40];
	int len = n->is_int ? snprintf(buf, sizeof buf, "%" PRId64, n->i) : snprintf(buf, sizeof buf, "%.17g", n->d);
	return out->fn(out->ctx, key, klen, buf, (size_t)len, err);
}

static int reduce_num(num_op op, const uint8_t *key, size_t klen, mr_values *vals, const mr_emitter *out,
                      node_err *err)
{
	const uint8_t *v;
	size_t vl;
	num acc = {1, 0, 0}, x;
	int rc, any = 0;
	while ((rc = mr_values_next(vals, &v, &vl, err)) > 0) {
		if (!parse_value(v, vl, &x))
			return not_number(key, klen, v, vl, err);
		if (any)
			combine_num(op, &acc, &x);
		else
			acc = x;
		any = 1;
	}
	if (rc < 0)
		return err->rc;
	return any ? emit_num(key, klen, &acc, out, err) : 0;
}

int mr_fn_sum(const uint8_t *key, size_t klen, mr_values *vals, const mr_emitter *out, const char *param,
              node_err *err)
{
	return reduce_num(OP_SUM, key, klen, vals, out, err);
}

int mr_fn_min(const uint8_t *key, size_t klen, mr_values *vals, const mr_emitter *out, const char *param,
              node_err *err)
{
	return reduce_num(OP_MIN, key, klen, vals, out, err);
}

int mr_fn_max(const uint8_t *key, size_t klen, mr_values *vals, const mr_emitter *out, const char *param,
              node_err *err)
{
	return reduce_num(OP_MAX, key, klen, vals, out, err);
}

int mr_fn_count(const uint8_t *key, size_t klen, mr_values *vals, const mr_emitter *out, const char *param,
                node_err *err)
{
	const uint8_t *v;
	size_t vl;
	int rc;
	num n = {1, 0, 0};
	while ((rc = mr_values_next(vals, &v, &vl, err)) > 0)
		n.i++;
	return rc < 0 ? err->rc : emit_num(key, klen, &n, out, err);
}

int mr_fn_identity_reduce(const uint8_t *key, size_t klen, mr_values *vals, const mr_emitter *out,
                          const char *param, node_err *err)
{
	const uint8_t *v;
	size_t vl;
	int rc;
	while ((rc = mr_values_next(vals, &v, &vl, err)) > 0)
		if (out->fn(out->ctx, key, klen, v, vl, err))
			return err->rc;
	return rc < 0 ? err->rc : 0;
}

int mr_fn_concat(const uint8_t *key, size_t klen, mr_values *vals, const mr_emitter *out, const char *param,
                 node_err *err)
{
	const char *sep = param ? param : ",";
	size_t sl = strlen(sep), n = 0, cap = 0;
	uint8_t *buf = NULL;
	const uint8_t *v;
	size_t vl;
	int rc, first = 1;
	while ((rc = mr_values_next(vals, &v, &vl, err)) > 0) {
		size_t need = n + (first ? 0 : sl) + vl;
		if (need > MR_KV_RECORD_MAX) {
			free(buf);
			return node_err_set(err, NODE_ELIMIT, NODE_ERR_TOO_LARGE, "concat of key \"%.*s\" exceeds %u bytes",
			                    (int)(klen > 40 ? 40 : klen), (const char *)key, MR_KV_RECORD_MAX);
		}
		if (need > cap) {
			size_t c = cap ? cap : 256;
			while (c < need)
				c *= 2;
			uint8_t *b = realloc(buf, c);
			if (b == NULL) {
				free(buf);
				return oom(err);
			}
			buf = b;
			cap = c;
		}
		if (!first)
			memcpy(buf + n, sep, sl), n += sl;
		if (vl)
			memcpy(buf + n, v, vl);
		n += vl;
		first = 0;
	}
	if (rc == 0)
		rc = out->fn(out->ctx, key, klen, buf ? (const void *)buf : "", n, err);
	else
		rc = err->rc;
	free(buf);
	return rc;
}

/* ---- lookup ---- */

mr_map_fn mr_fn_map_find(const char *name)
{
	static const struct { const char *name; mr_map_fn fn; } maps[] = {
		{"wordcount", mr_fn_wordcount}, {"split-words", mr_fn_split_words},
		{"identity", mr_fn_identity},   {"grep", mr_fn_grep},
	};
	for (size_t i = 0; name && i < sizeof maps / sizeof maps[0]; i++)
		if (strcmp(name, maps[i].name) == 0)
			return maps[i].fn;
	return NULL;
}

mr_reduce_fn mr_fn_reduce_find(const char *name)
{
	static const struct { const char *name; mr_reduce_fn fn; } reds[] = {
		{"sum", mr_fn_sum}, {"count", mr_fn_count}, {"min", mr_fn_min},
		{"max", mr_fn_max}, {"identity", mr_fn_identity_reduce}, {"concat", mr_fn_concat},
	};
	for (size_t i = 0; name && i < sizeof reds / sizeof reds[0]; i++)
		if (strcmp(name, reds[i].name) == 0)
			return reds[i].fn;
	return NULL;
}

mr_kv_fold mr_fn_reduce_fold(const char *name)
{
	if (name == NULL)
		return MR_FOLD_NONE;
	if (strcmp(name, "sum") == 0)
		return MR_FOLD_SUM;
	if (strcmp(name, "min") == 0)
		return MR_FOLD_MIN;
	if (strcmp(name, "max") == 0)
		return MR_FOLD_MAX;
	return MR_FOLD_NONE;
}
