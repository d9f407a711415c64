/* The word-count kernel (wcount.h): text is folded a block at a time into
 * a scratch buffer (SWAR lower-casing and a bitmap of letters), word starts
 * come from the bitmap by ctz, and words are counted in an open-addressing
 * table keyed by their first 8 bytes, with an arena for longer ones. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mapreduce/wcount.h"

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "wcount finds word ends with ctz over little-endian loads"
#endif

/* Text is folded in blocks of this many bytes, which stay in L1/L2 while
 * they are scanned; a word cut by a block's end is carried to the next. */
#define WC_BLOCK (64u << 10)
/* Zero bytes after the last 64-byte chunk: word ends are found with
 * 8-byte loads. */
#define WC_TAIL 8

typedef struct wc_slot {
	uint64_t k0;    /* the first 8 letters, zero-padded: the key for len <= 8 */
	uint64_t count;
	uint32_t len;   /* 0: an empty slot */
	uint32_t off;   /* into the arena, when len > 8 */
} wc_slot;

struct mr_wc {
	mr_wc_opts o;
	wc_slot *tab;      /* 2^bits slots, at most half used */
	unsigned bits;
	size_t used;
	uint8_t *arena;    /* letters of words longer than 8, zero-padded to 8 */
	size_t arena_len, arena_cap;
	uint8_t *buf;      /* the carried word, then the folded block, then WC_TAIL */
	uint64_t *letters; /* bit i of letters[i / 64]: buf[i] is a letter */
	size_t cap;        /* bytes of buf before the tail, a multiple of 64 */
	size_t have;       /* bytes of the carried word, which ends at round64(have) */
	size_t full;       /* flushes because the table was full */
};

static int oom(node_err *err)
{
	return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
}

static inline uint64_t load64(const uint8_t *p)
{
	uint64_t v;
	memcpy(&v, p, 8);
	return v;
}

/* The bytes of v that are 0x00 have 0x80 set in the result; only the lowest
 * one is exact (a borrow can mark a 0x01 above a zero), which is all the
 * scan needs: the first separator. */
static inline uint64_t zero_bytes(uint64_t v)
{
	return (v - 0x0101010101010101ULL) & ~v & 0x8080808080808080ULL;
}

static inline uint64_t mask_low(size_t len)
{
	return len >= 8 ? ~0ULL : (1ULL << (8 * len)) - 1;
}

static size_t round64(size_t n)
{
	return (n + 63) & ~(size_t)63;
}

/* src[0, n) to dst, 8 bytes at a time, before any word is looked at:
 * letters become lower case, every other byte 0, and bit i of bits[i / 64]
 * says whether byte i is a letter. n is a multiple of 64; dst may be src.
 * Idempotent, which the carried word relies on. */
static void fold_copy(uint8_t *dst, const uint8_t *src, size_t n, uint64_t *bits)
{
	const uint64_t k80 = 0x8080808080808080ULL, k7f = 0x7f7f7f7f7f7f7f7fULL;
	for (size_t c = 0; c < n; c += 64) {
		uint64_t m = 0;
		for (int g = 0; g < 64; g += 8) {
			uint64_t x = load64(src + c + g) | 0x2020202020202020ULL; /* A-Z -> a-z */
			uint64_t y = x & k7f;
			/* per byte, no carry between bytes: y >= 'a' and y > 'z', ASCII only */
			uint64_t ge_a = (y + 0x1f1f1f1f1f1f1f1fULL) & k80;
			uint64_t gt_z = (y + 0x0505050505050505ULL) & k80;
			uint64_t letter = (ge_a & ~gt_z & ~x & k80) >> 7; /* 0x01 per letter */
			x &= letter * 0xff;
			memcpy(dst + c + g, &x, 8);
			/* gather the 8 flags into 8 bits (the products do not overlap) */
			m |= ((letter * 0x0102040810204080ULL) >> 56) << g;
		}
		bits[c / 64] = m;
	}
}

/* ---- the table ---- */

/* A multiply-xorshift mix (the table takes the top bits); for long words
 * each 8-byte chunk goes in the same way. The input is lower-case letters
 * only, so there is nothing adversarial to defend against. */
static inline uint64_t mix(uint64_t h)
{
	h *= 0x9E3779B97F4A7C15ULL;
	h ^= h >> 29;
	h *= 0xBF58476D1CE4E5B9ULL;
	return h ^ (h >> 32);
}

static uint64_t hash_long(const uint8_t *s, size_t len, uint64_t k0)
{
	uint64_t h = mix(k0 ^ len);
	size_t i = 8;
	for (; i + 8 <= len; i += 8)
		h = mix(h ^ load64(s + i));
	if (i < len)
		h = mix(h ^ (load64(s + i) & mask_low(len - i)));
	return h;
}

static int long_equal(const mr_wc *wc, const wc_slot *e, const uint8_t *s, size_t len)
{
	const uint8_t *k = wc->arena + e->off;
	size_t i = 8;
	for (; i + 8 <= len; i += 8)
		if (load64(k + i) != load64(s + i))
			return 0;
	return i >= len || load64(k + i) == (load64(s + i) & mask_low(len - i));
}

static const uint8_t *slot_word(const mr_wc *wc, const wc_slot *e)
{
	/* k0 was loaded from the text, so its bytes in memory are the word */
	return e->len <= 8 ? (const uint8_t *)&e->k0 : wc->arena + e->off;
}

static uint64_t slot_hash(const mr_wc *wc, const wc_slot *e)
{
	return e->len <= 8 ? mix(e->k0) : hash_long(wc->arena + e->off, e->len, e->k0);
}

static size_t tab_bytes(unsigned bits)
{
	return ((size_t)1 << bits) * sizeof(wc_slot);
}

/* What a table costs under the limit: its slots, and for a sorted flush
 * a partition number for each of its at most half-full slots. */
static size_t tab_cost(unsigned bits)
{
	return tab_bytes(bits) + ((size_t)1 << bits) / 2 * sizeof(uint32_t);
}

/* A zeroed table of 2^b slots. From 2 MB on it asks for huge pages: a
 * lookup of a rare word is a random access into megabytes, and with 4 KB
 * pages that is a TLB miss on top of the cache miss (measured: 0.96 s for
 * 200 MB of gentext's text with 4 KB pages, 0.7 s with huge ones). */
static wc_slot *table_alloc(unsigned b)
{
	size_t sz = tab_bytes(b), hp = (size_t)2 << 20;
	void *t;
	if (sz >= hp) {
		sz = (sz + hp - 1) / hp * hp;
		if ((t = aligned_alloc(hp, sz)) != NULL)
			madvise(t, sz, MADV_HUGEPAGE);
	} else {
		t = malloc(sz);
	}
	return t ? memset(t, 0, sz) : NULL;
}

static size_t home(const mr_wc *wc, uint64_t h)
{
	return h >> (64 - wc->bits);
}

static size_t free_slot(const mr_wc *wc, uint64_t h)
{
	size_t m = ((size_t)1 << wc->bits) - 1, j = home(wc, h);
	while (wc->tab[j].len)
		j = (j + 1) & m;
	return j;
}

static int grow(mr_wc *wc, node_err *err)
{
	wc_slot *old = wc->tab, *t = table_alloc(wc->bits + 1);
	if (t == NULL)
		return oom(err);
	size_t n = (size_t)1 << wc->bits;
	wc->tab = t;
	wc->bits++;
	for (size_t i = 0; i < n; i++)
		if (old[i].len)
			t[free_slot(wc, slot_hash(wc, &old[i]))] = old[i];
	free(old);
	return 0;
}

/* ---- sorted flushes ---- */

/* Slots with the same first 8 letters (so both words have 8 or more): by
 * the rest, shorter first. */
static int tail_cmp(const mr_wc *wc, const wc_slot *a, const wc_slot *b)
{
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(slot_word(wc, a) + 8, slot_word(wc, b) + 8, n - 8);
	return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* s[0, n) bytewise: an LSD radix sort over the bytes of k0 that vary,
 * most significant first in memory (zero pads sort before letters, so
 * shorter first holds), with t[0, n) as scratch; then the rare runs with
 * the same first 8 letters by the rest. Returns s or t, where the result is. */
static wc_slot *sort_range(const mr_wc *wc, wc_slot *s, wc_slot *t, size_t n)
{
	size_t cnt[8][256];
	memset(cnt, 0, sizeof cnt);
	for (size_t i = 0; i < n; i++)
		for (int d = 0; d < 8; d++)
			cnt[d][(s[i].k0 >> (8 * d)) & 0xff]++;
	for (int d = 7; n && d >= 0; d--) {
		size_t *c = cnt[d], sum = 0;
		if (c[(s[0].k0 >> (8 * d)) & 0xff] == n)
			continue; /* the same byte everywhere */
		for (int v = 0; v < 256; v++) {
			size_t x = c[v];
			c[v] = sum;
			sum += x;
		}
		for (size_t i = 0; i < n; i++)
			t[c[(s[i].k0 >> (8 * d)) & 0xff]++] = s[i];
		wc_slot *x = s;
		s = t;
		t = x;
	}
	for (size_t i = 1; i < n; i++) {
		if (s[i].k0 != s[i - 1].k0)
			continue;
		wc_slot x = s[i];
		size_t j = i;
		for (; j > 0 && s[j - 1].k0 == x.k0 && tail_cmp(wc, &s[j - 1], &x) > 0; j--)
			s[j] = s[j - 1];
		s[j] = x;
	}
	return s;
}

/* a[0, n) grouped by partition into b, start[p] where partition p begins
 * (start[np] = n). */
static int group_parts(mr_wc *wc, const wc_slot *a, wc_slot *b, size_t n, size_t *start, node_err *err)
{
	int np = wc->o.nparts;
	uint32_t *part = malloc(n * sizeof *part);
	size_t *at = calloc((size_t)np + 1, sizeof *at);
	if (part == NULL || at == NULL) {
		free(part);
		free(at);
		return oom(err);
	}
	for (size_t i = 0; i < n; i++) {
		int p = wc->o.part(wc->o.ctx, slot_word(wc, &a[i]), a[i].len);
		if (p < 0 || p >= np) {
			free(part);
			free(at);
			return node_err_set(err, NODE_EINVAL, NODE_ERR_INTERNAL, "word partition %d is not below %d", p, np);
		}
		part[i] = (uint32_t)p;
		at[p + 1]++;
	}
	for (int p = 0; p < np; p++)
		at[p + 1] += at[p];
	memcpy(start, at, ((size_t)np + 1) * sizeof *start);
	for (size_t i = 0; i < n; i++)
		b[at[part[i]]++] = a[i];
	free(part);
	free(at);
	return 0;
}

int mr_wc_flush(mr_wc *wc, node_err *err)
{
	size_t n = wc->used, half = ((size_t)1 << wc->bits) / 2;
	if (n == 0)
		return 0;
	/* The words to the front; the other half (at most half is used) is
	 * the sort's scratch. The table is rebuilt empty afterwards. */
	wc_slot *a = wc->tab, *b = wc->tab + half;
	for (size_t i = 0, k = 0; k < n; i++)
		if (a[i].len)
			a[k++] = a[i];
	int np = wc->o.nparts > 1 ? wc->o.nparts : 1;
	size_t one[2] = {0, n}, *start = one;
	if (np > 1) {
		if ((start = malloc(((size_t)np + 1) * sizeof *start)) == NULL)
			return oom(err);
		if (group_parts(wc, a, b, n, start, err)) {
			free(start);
			return err->rc;
		}
		wc_slot *x = a;
		a = b;
		b = x;
	}
	int rc = 0;
	for (int p = 0; rc == 0 && p < np; p++) {
		size_t lo = start[p], m = start[p + 1] - lo;
		const wc_slot *r = sort_range(wc, a + lo, b + lo, m);
		for (size_t i = 0; rc == 0 && i < m; i++)
			rc = wc->o.fn(wc->o.ctx, p, slot_word(wc, &r[i]), r[i].len, r[i].count, err);
	}
	if (start != one)
		free(start);
	if (rc)
		return rc;
	memset(wc->tab, 0, tab_bytes(wc->bits));
	wc->used = 0;
	wc->arena_len = 0;
	return wc->o.flushed ? wc->o.flushed(wc->o.ctx, err) : 0;
}

static int full_flush(mr_wc *wc, node_err *err)
{
	wc->full++;
	return mr_wc_flush(wc, err);
}

/* Room in the arena for need more bytes, within the limit (the table
 * flushed first if it must be; a lone word larger than the limit still
 * goes in). */
static int arena_room(mr_wc *wc, size_t need, node_err *err)
{
	size_t lo = wc->arena_len + need; /* the least that will do */
	if (lo <= wc->arena_cap)
		return 0;
	size_t lim = wc->o.mem_limit, t = tab_cost(wc->bits);
	if (lim && t + lo > lim && wc->used) {
		if (full_flush(wc, err))
			return err->rc;
		if ((lo = need) <= wc->arena_cap)
			return 0;
	}
	size_t cap = wc->arena_cap * 2 > 4096 ? wc->arena_cap * 2 : 4096;
	if (cap < lo)
		cap = lo;
	if (lim && t + cap > lim)
		cap = t + lo > lim ? lo : lim - t;
	if (lo > UINT32_MAX)
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "more than 4 GB of distinct long words");
	if (cap > UINT32_MAX)
		cap = UINT32_MAX;
	uint8_t *a = realloc(wc->arena, cap);
	if (a == NULL)
		return oom(err);
	wc->arena = a;
	wc->arena_cap = cap;
	return 0;
}

/* A word that is not in the table: room for it first (a bigger table, or
 * the table flushed when the limit says so), then its slot. */
static __attribute__((noinline)) int insert(mr_wc *wc, uint64_t k0, const uint8_t *s, size_t len, uint64_t h,
                                            node_err *err)
{
	if (len > UINT32_MAX)
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "a word of %zu letters is too long", len);
	if ((wc->used + 1) * 2 > ((size_t)1 << wc->bits)) {
		size_t lim = wc->o.mem_limit;
		if (lim && tab_cost(wc->bits + 1) + wc->arena_cap > lim) {
			if (full_flush(wc, err))
				return err->rc;
		} else if (grow(wc, err)) {
			return err->rc;
		}
	}
	size_t need = len > 8 ? (len + 7) & ~(size_t)7 : 0;
	if (need && arena_room(wc, need, err))
		return err->rc;
	wc_slot *e = &wc->tab[free_slot(wc, h)];
	*e = (wc_slot){k0, 1, (uint32_t)len, (uint32_t)wc->arena_len};
	if (need) {
		memcpy(wc->arena + wc->arena_len, s, len);
		memset(wc->arena + wc->arena_len + len, 0, need - len);
		wc->arena_len += need;
	}
	wc->used++;
	return 0;
}

static inline int add_word(mr_wc *wc, const uint8_t *s, size_t len, uint64_t k0, uint64_t h, node_err *err)
{
	size_t m = ((size_t)1 << wc->bits) - 1, j = home(wc, h);
	for (;; j = (j + 1) & m) {
		wc_slot *e = &wc->tab[j];
		if (e->k0 == k0 && e->len == len && (len <= 8 || long_equal(wc, e, s, len))) {
			e->count++;
			return 0;
		}
		if (!e->len)
			return insert(wc, k0, s, len, h, err);
	}
}

/* ---- the scan ---- */

/* Each word that starts in p[0, n) (folded by fold_copy, letter bits in
 * letters[]) and ends before a zero byte: counted, or with per_word given
 * to fn. The starts come from the bitmap, one ctz each, so finding the next
 * word does not wait for the length of this one: with a scan from word to
 * word, load, zero test, ctz and add were a chain of ~20 cycles per word
 * (this is ~10% faster). Prefetching the slots of a batch of words first
 * measured no faster. */
static inline __attribute__((always_inline)) int scan(mr_wc *wc, const uint8_t *p, size_t n,
                                                      const uint64_t *letters, int per_word, node_err *err)
{
	uint64_t prev = 0; /* is the byte before this chunk a letter */
	for (size_t c = 0; c * 64 < n; c++) {
		uint64_t m = letters[c];
		uint64_t starts = m & ~((m << 1) | prev);
		prev = m >> 63;
		if (n - c * 64 < 64)
			starts &= (1ULL << (n - c * 64)) - 1;
		while (starts) {
			const uint8_t *s = p + c * 64 + __builtin_ctzll(starts);
			starts &= starts - 1;
			/* the word: most fit in the first load */
			uint64_t k0 = load64(s), z = zero_bytes(k0), h;
			size_t len;
			if (z) {
				len = __builtin_ctzll(z) >> 3;
				k0 &= mask_low(len);
				h = mix(k0);
			} else {
				const uint8_t *q = s + 8;
				uint64_t zq;
				while (!(zq = zero_bytes(load64(q))))
					q += 8;
				len = (size_t)(q - s) + (__builtin_ctzll(zq) >> 3);
				/* exactly 8 letters come here too; they hash as short */
				h = len == 8 ? mix(k0) : hash_long(s, len, k0);
			}
			if (per_word ? wc->o.fn(wc->o.ctx, 0, s, len, 1, err) : add_word(wc, s, len, k0, h, err))
				return err->rc;
		}
	}
	return 0;
}

static int scan_count(mr_wc *wc, const uint8_t *p, size_t n, node_err *err)
{
	return scan(wc, p, n, wc->letters, 0, err);
}

static int scan_each(mr_wc *wc, const uint8_t *p, size_t n, node_err *err)
{
	return scan(wc, p, n, wc->letters, 1, err);
}

/* ---- blocks ---- */

/* buf holds need bytes (a multiple of 64) and the tail; the carried word
 * stays where it is. */
static int scratch_room(mr_wc *wc, size_t need, node_err *err)
{
	if (need <= wc->cap)
		return 0;
	size_t cap = wc->cap * 2 > need ? wc->cap * 2 : need;
	uint8_t *b = realloc(wc->buf, cap + WC_TAIL);
	if (b == NULL)
		return oom(err);
	wc->buf = b;
	uint64_t *l = realloc(wc->letters, cap / 64 * sizeof *l);
	if (l == NULL)
		return oom(err);
	wc->letters = l;
	wc->cap = cap;
	return 0;
}

/* The carried word, then src[0, n) folded behind it at a 64-byte boundary;
 * the words that start there are counted, except one that touches the end
 * when it is not the text's end (final): that one is carried again. */
static int block(mr_wc *wc, const uint8_t *src, size_t n, int final, node_err *err)
{
	size_t have = wc->have, h = round64(have), body = n & ~(size_t)63;
	if (scratch_room(wc, h + round64(n), err))
		return err->rc;
	uint8_t *buf = wc->buf;
	if (h) {
		memset(buf, 0, h - have);
		fold_copy(buf, buf, h, wc->letters);
	}
	fold_copy(buf + h, src, body, wc->letters + h / 64);
	if (n > body) {
		uint8_t t[64] = {0};
		memcpy(t, src + body, n - body);
		fold_copy(buf + h + body, t, 64, wc->letters + (h + body) / 64);
	}
	memset(buf + h + round64(n), 0, WC_TAIL);
	size_t end = h + n, cut = end;
	if (!final)
		while (cut > 0 && buf[cut - 1])
			cut--;
	if ((wc->o.no_table ? scan_each : scan_count)(wc, buf, cut, err))
		return err->rc;
	wc->have = end - cut;
	memmove(buf + round64(wc->have) - wc->have, buf + cut, wc->have);
	return 0;
}

int mr_wc_feed(mr_wc *wc, const void *text, size_t len, node_err *err)
{
	const uint8_t *src = text;
	while (len > 0) {
		/* blocks grow with a carried word, so a huge word costs linear time */
		size_t n = wc->have > WC_BLOCK ? wc->have : WC_BLOCK;
		if (n > len)
			n = len;
		if (block(wc, src, n, 0, err))
			return err->rc;
		src += n;
		len -= n;
	}
	return 0;
}

int mr_wc_end(mr_wc *wc, node_err *err)
{
	return wc->have ? block(wc, NULL, 0, 1, err) : 0;
}

/* ---- life ---- */

int mr_wc_open(mr_wc **out, const mr_wc_opts *opts, node_err *err)
{
	*out = NULL;
	if (opts->fn == NULL || (opts->nparts > 1 && opts->part == NULL))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_INTERNAL, "a word counter needs a function for its words%s",
		                    opts->fn ? " and one for their partitions" : "");
	mr_wc *wc = calloc(1, sizeof *wc);
	if (wc == NULL)
		return oom(err);
	wc->o = *opts;
	/* 2^16 slots (1.5 MB) unless the limit wants a smaller start */
	wc->bits = 16;
	while (opts->mem_limit && wc->bits > 4 && tab_cost(wc->bits) > opts->mem_limit / 2)
		wc->bits--;
	if (!opts->no_table && (wc->tab = table_alloc(wc->bits)) == NULL) {
		free(wc);
		return oom(err);
	}
	if (scratch_room(wc, WC_BLOCK + 64, err)) {
		mr_wc_free(wc);
		return err->rc;
	}
	*out = wc;
	return 0;
}

size_t mr_wc_full_flushes(const mr_wc *wc)
{
	return wc->full;
}

void mr_wc_free(mr_wc *wc)
{
	if (wc == NULL)
		return;
	free(wc->tab);
	free(wc->arena);
	free(wc->buf);
	free(wc->letters);
	free(wc);
}
