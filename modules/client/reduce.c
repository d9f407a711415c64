/* The built-in reducers of ncl_map_reduce, folded on the client as results
 * arrive. Results are read as text with a small scanner rather than cJSON,
 * whose numbers are doubles: integers are added and multiplied exactly in
 * 128 bits (a double takes over on overflow), and min/max keep the winner's
 * text as it was. Objects combine member by member, recursively, the way
 * Python's Counter adds: {"inside": 785, "points": 1000} + {...}. Results
 * come from the broker, so they are well-formed JSON; the scanner still
 * refuses what it does not expect rather than read past it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"

typedef __int128 ncl_i128;
#define I128_MAX ((ncl_i128)(((unsigned __int128)1 << 127) - 1))

typedef struct rnum {
	int is_int;
	ncl_i128 i;
	double d;
} rnum;

typedef struct racc racc;

typedef struct rmember {
	char *key;   /* its JSON text, quotes included */
	size_t klen;
	racc *val;
} rmember;

enum { R_NONE, R_NUM, R_OBJ };

struct racc {
	int kind;
	rnum num;
	char *text;      /* min, max: the winner as written */
	rmember *m;      /* objects: members in order of first appearance */
	size_t nm, cap;
	size_t *slot;    /* open addressing: index + 1 into m, 0 empty */
	size_t nslot;
};

struct ncl_reduce {
	ncl_reducer op;
	size_t count;
	racc acc;
	int ckind;       /* concat: '[' or '"' once the first item is in */
	char *buf;       /* concat: the joined inside */
	size_t len, cap;
};

static const char *const op_names[] = {"add", "mul", "min", "max", "concat", "count"};

int ncl_reducer_parse(const char *name, ncl_reducer *out)
{
	for (size_t i = 0; name && i < sizeof op_names / sizeof op_names[0]; i++)
		if (strcmp(name, op_names[i]) == 0) {
			*out = (ncl_reducer)i;
			return 0;
		}
	return NCL_ENOTFOUND;
}

int ncl_reduce_ordered(ncl_reducer op)
{
	return op == NCL_CONCAT;
}

int ncl_reduce_new(ncl_reduce **out, ncl_reducer op, ncl_err *err)
{
	*out = NULL;
	if ((int)op < NCL_ADD || op > NCL_COUNT)
		return ncl_set(err, NCL_EINVAL, "unknown reducer %d", (int)op);
	ncl_reduce *r = calloc(1, sizeof *r);
	if (r == NULL)
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	r->op = op;
	*out = r;
	return 0;
}

static void racc_free(racc *a)
{
	for (size_t i = 0; i < a->nm; i++) {
		free(a->m[i].key);
		racc_free(a->m[i].val);
		free(a->m[i].val);
	}
	free(a->m);
	free(a->slot);
	free(a->text);
}

void ncl_reduce_free(ncl_reduce *r)
{
	if (r == NULL)
		return;
	racc_free(&r->acc);
	free(r->buf);
	free(r);
}

/* ---- text ---- */

static const char *ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* Past the string that starts at p, or NULL. */
static const char *scan_string(const char *p)
{
	for (p++; *p && *p != '"'; p++)
		if (*p == '\\' && *++p == '\0')
			return NULL;
	return *p == '"' ? p + 1 : NULL;
}

/* Past the number at p, or NULL; its value in n. */
static const char *scan_number(const char *p, rnum *n)
{
	const char *s = p;
	int neg = *p == '-', is_int = 1;
	p += neg;
	if (*p < '0' || *p > '9')
		return NULL;
	ncl_i128 v = 0;
	for (; *p >= '0' && *p <= '9'; p++) {
		int d = *p - '0';
		if (v > (I128_MAX - d) / 10)
			is_int = 0;
		else
			v = v * 10 + d;
	}
	if (*p == '.' || *p == 'e' || *p == 'E') {
		is_int = 0;
		if (*p == '.')
			for (p++; *p >= '0' && *p <= '9'; p++)
				;
		if (*p == 'e' || *p == 'E') {
			p++;
			if (*p == '+' || *p == '-')
				p++;
			for (; *p >= '0' && *p <= '9'; p++)
				;
		}
	}
	n->is_int = is_int;
	n->i = neg ? -v : v;
	n->d = strtod(s, NULL);
	return p;
}

static const char *type_name(char c)
{
	switch (c) {
	case '"': return "a string";
	case '[': return "an array";
	case '{': return "an object";
	case 't': case 'f': return "a boolean";
	case 'n': return "null";
	case '\0': return "nothing";
	default: return (c == '-' || (c >= '0' && c <= '9')) ? "a number" : "something that is not JSON";
	}
}

/* Append text (n bytes) to *buf. */
static int put(char **buf, size_t *len, size_t *cap, const char *text, size_t n)
{
	if (*len + n + 1 > *cap) {
		size_t c = *cap ? *cap : 64;
		while (c < *len + n + 1)
			c *= 2;
		char *b = realloc(*buf, c);
		if (b == NULL)
			return NCL_ENOMEM;
		*buf = b;
		*cap = c;
	}
	memcpy(*buf + *len, text, n);
	*len += n;
	(*buf)[*len] = '\0';
	return 0;
}

/* ---- numbers ---- */

static double as_double(const rnum *n)
{
	return n->is_int ? (double)n->i : n->d;
}

static void combine(ncl_reducer op, racc *a, const rnum *b, const char *text, size_t tlen)
{
	rnum *x = &a->num;
	ncl_i128 r;
	if (op == NCL_ADD || op == NCL_MUL) {
		int over = x->is_int && b->is_int &&
		    (op == NCL_ADD ? __builtin_add_overflow(x->i, b->i, &r) : __builtin_mul_overflow(x->i, b->i, &r));
		if (x->is_int && b->is_int && !over) {
			x->i = r;
		} else {
			double d = op == NCL_ADD ? as_double(x) + as_double(b) : as_double(x) * as_double(b);
			x->is_int = 0;
			x->d = d;
		}
		return;
	}
	int less = x->is_int && b->is_int ? b->i < x->i : as_double(b) < as_double(x);
	int more = x->is_int && b->is_int ? b->i > x->i : as_double(b) > as_double(x);
	if ((op == NCL_MIN && less) || (op == NCL_MAX && more)) {
		char *t = strndup(text, tlen);
		if (t != NULL) {
			free(a->text);
			a->text = t;
			*x = *b;
		}
	}
}

/* ---- objects ---- */

static size_t key_hash(const char *k, size_t n)
{
	size_t h = 1469598103934665603ull;
	for (size_t i = 0; i < n; i++)
		h = (h ^ (unsigned char)k[i]) * 1099511628211ull;
	return h;
}

static int slots_grow(racc *a)
{
	size_t n = a->nslot ? a->nslot * 2 : 16;
	size_t *s = calloc(n, sizeof *s);
	if (s == NULL)
		return NCL_ENOMEM;
	for (size_t i = 0; i < a->nm; i++) {
		size_t h = key_hash(a->m[i].key, a->m[i].klen) & (n - 1);
		while (s[h])
			h = (h + 1) & (n - 1);
		s[h] = i + 1;
	}
	free(a->slot);
	a->slot = s;
	a->nslot = n;
	return 0;
}

/* The member of a with this key, added when new; NULL when out of memory. */
static racc *member(racc *a, const char *key, size_t klen)
{
	if (2 * (a->nm + 1) > a->nslot && slots_grow(a) != 0)
		return NULL;
	size_t h = key_hash(key, klen) & (a->nslot - 1);
	for (; a->slot[h]; h = (h + 1) & (a->nslot - 1)) {
		rmember *m = &a->m[a->slot[h] - 1];
		if (m->klen == klen && memcmp(m->key, key, klen) == 0)
			return m->val;
	}
	if (a->nm == a->cap) {
		size_t cap = a->cap ? 2 * a->cap : 8;
		rmember *m = realloc(a->m, cap * sizeof *m);
		if (m == NULL)
			return NULL;
		a->m = m;
		a->cap = cap;
	}
	rmember *m = &a->m[a->nm];
	m->key = strndup(key, klen);
	m->klen = klen;
	m->val = calloc(1, sizeof *m->val);
	if (m->key == NULL || m->val == NULL) {
		free(m->key);
		free(m->val);
		return NULL;
	}
	a->slot[h] = ++a->nm;
	return m->val;
}

typedef struct fold_ctx {
	ncl_reducer op;
	size_t index;
	ncl_err *err;
	char path[160]; /* where in the item we are: ".inside" */
} fold_ctx;

static const char *fold_fail(fold_ctx *x, const char *got, const char *why)
{
	ncl_set(x->err, NCL_EINVAL, "item %zu: %s needs numbers or objects of numbers%s%s, got %s%s", x->index,
	    op_names[x->op], x->path[0] ? " at " : "", x->path, got, why);
	return NULL;
}

/* Fold the value at p into a; past it, or NULL with err set. */
static const char *fold(fold_ctx *x, racc *a, const char *p)
{
	p = ws(p);
	if (*p == '{') {
		if (a->kind == R_NUM)
			return fold_fail(x, "an object", " where earlier items have a number");
		a->kind = R_OBJ;
		size_t plen = strlen(x->path);
		p = ws(p + 1);
		if (*p == '}')
			return p + 1;
		for (;;) {
			if (*p != '"')
				return fold_fail(x, type_name(*p), " as a member name");
			const char *kend = scan_string(p);
			if (kend == NULL)
				return fold_fail(x, "a broken string", "");
			racc *v = member(a, p, (size_t)(kend - p));
			if (v == NULL) {
				ncl_set(x->err, NCL_ENOMEM, "out of memory");
				return NULL;
			}
			snprintf(x->path + plen, sizeof x->path - plen, ".%.*s", (int)(kend - p - 2), p + 1);
			p = ws(kend);
			if (*p != ':')
				return fold_fail(x, type_name(*p), " after a member name");
			if ((p = fold(x, v, p + 1)) == NULL)
				return NULL;
			x->path[plen] = '\0';
			p = ws(p);
			if (*p == '}')
				return p + 1;
			if (*p != ',')
				return fold_fail(x, type_name(*p), " between members");
			p = ws(p + 1);
		}
	}
	rnum n;
	const char *end = scan_number(p, &n);
	if (end == NULL)
		return fold_fail(x, type_name(*p), "");
	if (a->kind == R_OBJ)
		return fold_fail(x, "a number", " where earlier items have an object");
	if (a->kind == R_NONE) {
		a->kind = R_NUM;
		a->num = n;
		if (x->op == NCL_MIN || x->op == NCL_MAX) {
			a->text = strndup(p, (size_t)(end - p));
			if (a->text == NULL) {
				ncl_set(x->err, NCL_ENOMEM, "out of memory");
				return NULL;
			}
		}
	} else {
		combine(x->op, a, &n, p, (size_t)(end - p));
	}
	return end;
}

/* ---- concat ---- */

static int concat(ncl_reduce *r, size_t index, const char *json, ncl_err *err)
{
	const char *p = ws(json), *end = p + strlen(p);
	while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\n' || end[-1] == '\r'))
		end--;
	char open = *p, close = open == '[' ? ']' : '"';
	if ((open != '[' && open != '"') || end - p < 2 || end[-1] != close)
		return ncl_set(err, NCL_EINVAL, "item %zu: concat needs arrays or strings, got %s", index, type_name(*p));
	if (r->ckind && r->ckind != open)
		return ncl_set(err, NCL_EINVAL, "item %zu: concat got %s where earlier items are %s", index,
		    type_name(open), type_name((char)r->ckind));
	r->ckind = open;
	const char *in = open == '[' ? ws(p + 1) : p + 1, *in_end = end - 1;
	while (open == '[' && in_end > in && (in_end[-1] == ' ' || in_end[-1] == '\n' || in_end[-1] == '\t' || in_end[-1] == '\r'))
		in_end--;
	if (in_end == in)
		return 0;
	if (open == '[' && r->len > 0 && put(&r->buf, &r->len, &r->cap, ",", 1) != 0)
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	if (put(&r->buf, &r->len, &r->cap, in, (size_t)(in_end - in)) != 0)
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	return 0;
}

/* ---- the reducer ---- */

int ncl_reduce_add(ncl_reduce *r, size_t index, const char *json, ncl_err *err)
{
	r->count++;
	if (r->op == NCL_COUNT)
		return 0;
	if (r->op == NCL_CONCAT)
		return concat(r, index, json, err);
	fold_ctx x = {r->op, index, err, ""};
	const char *end = fold(&x, &r->acc, json);
	if (end == NULL)
		return err ? err->code : NCL_EINVAL;
	if (*ws(end) != '\0')
		return ncl_set(err, NCL_EINVAL, "item %zu: %s: unexpected text after the value: %.40s", index,
		    op_names[r->op], ws(end));
	return 0;
}

static int print_i128(ncl_i128 v, char **buf, size_t *len, size_t *cap)
{
	char tmp[48], *p = tmp + sizeof tmp;
	unsigned __int128 u = v < 0 ? -(unsigned __int128)v : (unsigned __int128)v;
	do {
		*--p = (char)('0' + (int)(u % 10));
		u /= 10;
	} while (u);
	if (v < 0)
		*--p = '-';
	return put(buf, len, cap, p, (size_t)(tmp + sizeof tmp - p));
}

/* The shortest text that reads back as d. */
static int print_double(double d, char **buf, size_t *len, size_t *cap)
{
	char tmp[40];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(tmp, sizeof tmp, "%.*g", prec, d);
		if (strtod(tmp, NULL) == d)
			break;
	}
	return put(buf, len, cap, tmp, strlen(tmp));
}

static int print_acc(const ncl_reduce *r, const racc *a, char **buf, size_t *len, size_t *cap, ncl_err *err)
{
	if (a->kind == R_OBJ) {
		if (put(buf, len, cap, "{", 1) != 0)
			return ncl_set(err, NCL_ENOMEM, "out of memory");
		for (size_t i = 0; i < a->nm; i++) {
			if ((i > 0 && put(buf, len, cap, ",", 1) != 0) || put(buf, len, cap, a->m[i].key, a->m[i].klen) != 0 ||
			    put(buf, len, cap, ":", 1) != 0)
				return ncl_set(err, NCL_ENOMEM, "out of memory");
			int rc = print_acc(r, a->m[i].val, buf, len, cap, err);
			if (rc != 0)
				return rc;
		}
		return put(buf, len, cap, "}", 1) ? ncl_set(err, NCL_ENOMEM, "out of memory") : 0;
	}
	if (a->kind == R_NONE)
		return ncl_set(err, NCL_EINVAL, "%s of no items has no value", op_names[r->op]);
	int rc;
	if (a->text)
		rc = put(buf, len, cap, a->text, strlen(a->text));
	else if (a->num.is_int)
		rc = print_i128(a->num.i, buf, len, cap);
	else if (a->num.d - a->num.d != 0) /* inf or nan: JSON has no such number */
		return ncl_set(err, NCL_EINVAL, "%s: the result is not a finite number", op_names[r->op]);
	else
		rc = print_double(a->num.d, buf, len, cap);
	return rc ? ncl_set(err, NCL_ENOMEM, "out of memory") : 0;
}

int ncl_reduce_result(ncl_reduce *r, char **out, ncl_err *err)
{
	*out = NULL;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	int rc = 0;
	if (r->op == NCL_COUNT) {
		char tmp[32];
		snprintf(tmp, sizeof tmp, "%zu", r->count);
		rc = put(&buf, &len, &cap, tmp, strlen(tmp));
	} else if (r->op == NCL_CONCAT) {
		char q[2] = {r->ckind == '"' ? '"' : '[', 0};
		rc = put(&buf, &len, &cap, q, 1);
		if (rc == 0 && r->len)
			rc = put(&buf, &len, &cap, r->buf, r->len);
		if (rc == 0)
			rc = put(&buf, &len, &cap, r->ckind == '"' ? "\"" : "]", 1);
	} else if (r->count == 0 && (r->op == NCL_ADD || r->op == NCL_MUL)) {
		rc = put(&buf, &len, &cap, r->op == NCL_ADD ? "0" : "1", 1);
	} else {
		rc = print_acc(r, &r->acc, &buf, &len, &cap, err);
		if (rc != 0) {
			free(buf);
			return rc;
		}
	}
	if (rc != 0) {
		free(buf);
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	}
	*out = buf;
	return 0;
}
