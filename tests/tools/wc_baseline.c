/* The single-threaded C word count that node's MapReduce word count is
 * measured against (issue 7): words are runs of A-Z a-z, lower-cased,
 * everything else separates. `wc_baseline [--by-count] [FILE...]` (stdin
 * when none, or "-") prints "word TAB count", by word (bytewise), or with
 * --by-count by count descending, ties by word. Tuned (a SWAR pass, word
 * starts from a bitmap, a table in huge pages) so that beating it means
 * something: ~380 MB/s on gentext's text on one core of the 2-core machine. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "wc_baseline finds word ends with ctz over little-endian loads"
#endif

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

/* One pass over a block, 8 bytes at a time, before any word is looked at:
 * letters become lower case, every other byte 0, and bit i of bits[i / 64]
 * says whether byte i is a letter. n is a multiple of 64. Idempotent,
 * which the carried-over partial word relies on. */
static void fold_block(uint8_t *p, size_t n, uint64_t *bits)
{
	const uint64_t k80 = 0x8080808080808080ULL, k7f = 0x7f7f7f7f7f7f7f7fULL;
	for (size_t c = 0; c < n; c += 64) {
		uint64_t m = 0;
		for (int g = 0; g < 64; g += 8) {
			uint64_t x = load64(p + c + g) | 0x2020202020202020ULL; /* A-Z -> a-z */
			uint64_t y = x & k7f;
			/* per byte, no carry between bytes: y >= 'a' and y > 'z', ASCII only */
			uint64_t ge_a = (y + 0x1f1f1f1f1f1f1f1fULL) & k80;
			uint64_t gt_z = (y + 0x0505050505050505ULL) & k80;
			uint64_t letter = (ge_a & ~gt_z & ~x & k80) >> 7; /* 0x01 per letter */
			x &= letter * 0xff;
			memcpy(p + c + g, &x, 8);
			/* gather the 8 flags into 8 bits (the products do not overlap) */
			m |= ((letter * 0x0102040810204080ULL) >> 56) << g;
		}
		bits[c / 64] = m;
	}
}

/* The table: open addressing, linear probing, at most half full. A word of
 * up to 8 letters is its first 8 bytes (zero-padded, so the bytes are the
 * key), compared in one instruction; longer ones also keep their letters
 * in an arena, zero-padded to 8 bytes. Empty slots have len 0. */
struct slot {
	uint64_t k0;
	uint64_t count;
	uint32_t len;
	uint32_t off; /* into the arena, when len > 8 */
};

static struct slot *tab;
static unsigned bits;
static size_t used;
static uint8_t *arena;
static size_t arena_len, arena_cap;

static inline uint64_t mask_low(size_t len)
{
	return len >= 8 ? ~0ULL : (1ULL << (8 * len)) - 1;
}

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

static int long_equal(const struct slot *e, const uint8_t *s, size_t len)
{
	const uint8_t *k = arena + e->off;
	size_t i = 8;
	for (; i + 8 <= len; i += 8)
		if (load64(k + i) != load64(s + i))
			return 0;
	return i >= len || load64(k + i) == (load64(s + i) & mask_low(len - i));
}

static void *xalloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "wc_baseline: out of memory\n");
		exit(1);
	}
	return p;
}

static uint64_t slot_hash(const struct slot *e)
{
	return e->len <= 8 ? mix(e->k0) : hash_long(arena + e->off, e->len, e->k0);
}

/* A zeroed table of 2^b slots. From 2 MB on it asks for huge pages: a
 * lookup of a rare word is a random access into megabytes, and with 4 KB
 * pages that is a TLB miss on top of the cache miss (measured: 0.96 s for
 * 200 MB of gentext's text with 4 KB pages, 0.7 s with huge ones). */
static struct slot *table_alloc(unsigned b)
{
	size_t sz = ((size_t)1 << b) * sizeof(struct slot), hp = (size_t)2 << 20;
	void *t;
	if (sz >= hp) {
		sz = (sz + hp - 1) / hp * hp;
		t = aligned_alloc(hp, sz);
		if (t)
			madvise(t, sz, MADV_HUGEPAGE);
	} else {
		t = malloc(sz);
	}
	if (!t) {
		fprintf(stderr, "wc_baseline: out of memory\n");
		exit(1);
	}
	return memset(t, 0, sz);
}

static void grow(void)
{
	struct slot *old = tab;
	size_t n = (size_t)1 << bits;
	bits++;
	tab = table_alloc(bits);
	size_t m = ((size_t)1 << bits) - 1;
	for (size_t i = 0; i < n; i++) {
		if (!old[i].len)
			continue;
		size_t j = slot_hash(&old[i]) >> (64 - bits);
		while (tab[j].len)
			j = (j + 1) & m;
		tab[j] = old[i];
	}
	free(old);
}

static void insert(uint64_t k0, const uint8_t *s, size_t len, size_t j)
{
	struct slot *e = &tab[j];
	e->k0 = k0;
	e->count = 1;
	e->len = (uint32_t)len;
	if (len > 8) {
		size_t need = (len + 7) & ~(size_t)7;
		if (arena_len + need > arena_cap) {
			arena_cap = (arena_cap + need) * 2;
			arena = xalloc(arena, arena_cap);
		}
		if (arena_len + need > UINT32_MAX) {
			fprintf(stderr, "wc_baseline: more than 4 GB of distinct long words\n");
			exit(1);
		}
		e->off = (uint32_t)arena_len;
		memcpy(arena + arena_len, s, len);
		memset(arena + arena_len + len, 0, need - len);
		arena_len += need;
	}
	if (++used * 2 > ((size_t)1 << bits))
		grow();
}

static inline void add_word(const uint8_t *s, size_t len, uint64_t k0, uint64_t h)
{
	size_t m = ((size_t)1 << bits) - 1, j = h >> (64 - bits);
	for (;; j = (j + 1) & m) {
		struct slot *e = &tab[j];
		if (e->k0 == k0 && e->len == len && (len <= 8 || long_equal(e, s, len))) {
			e->count++;
			return;
		}
		if (!e->len) {
			insert(k0, s, len, j);
			return;
		}
	}
}

/* Count the words that start in p[0, n) (folded by fold_block, letter
 * bits in letters[]); each ends before a zero byte. The starts come from the
 * bitmap, one ctz each, so finding the next word does not wait for the
 * length of this one: with a scan from word to word, load, zero test,
 * ctz and add were a chain of ~20 cycles per word (this is ~10% faster).
 * Prefetching the slots of a batch of words first measured no faster. */
static void count_block(const uint8_t *p, size_t n, const uint64_t *letters)
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
			add_word(s, len, k0, h);
		}
	}
}

/* Blocks of 1 MB: read() into a buffer that stays in the core's L2 while
 * it is folded and scanned. A word cut by the block end is moved to the
 * front and finished by the next read; the buffer doubles when a single
 * word fills it. Past the data, zeros up to the next 64 bytes and 8 more:
 * word ends are found with 8-byte loads. */
#define BLOCK (1u << 20)
#define PAD 128

static uint8_t *buf;
static uint64_t *bitmap;
static size_t cap;

static int count_fd(int fd, const char *name)
{
	size_t have = 0; /* bytes of a cut word at the front */
	int eof = 0;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	while (!eof) {
		if (have == cap) {
			cap *= 2;
			buf = xalloc(buf, cap + PAD);
			bitmap = xalloc(bitmap, (cap + PAD) / 64 * sizeof *bitmap);
		}
		size_t n = have;
		while (n < cap) {
			ssize_t k = read(fd, buf + n, cap - n);
			if (k < 0) {
				if (errno == EINTR)
					continue;
				fprintf(stderr, "wc_baseline: %s: %s\n", name, strerror(errno));
				return -1;
			}
			if (k == 0) {
				eof = 1;
				break;
			}
			n += (size_t)k;
		}
		size_t n64 = (n + 63) & ~(size_t)63;
		memset(buf + n, 0, n64 - n + 8);
		fold_block(buf, n64, bitmap);
		/* keep back a word that touches the block end unless it is the input's end */
		size_t cut = n;
		if (!eof)
			while (cut > 0 && buf[cut - 1])
				cut--;
		count_block(buf, cut, bitmap);
		have = n - cut;
		memmove(buf, buf + cut, have);
	}
	return 0;
}

struct row {
	const uint8_t *key;
	uint32_t len;
	uint64_t count;
};

static int by_word(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	int c = memcmp(x->key, y->key, x->len < y->len ? x->len : y->len);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

static int by_count(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return by_word(a, b);
}

int main(int argc, char **argv)
{
	int sort_count = 0, i = 1;
	for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (!strcmp(argv[i], "--")) {
			i++;
			break;
		}
		if (!strcmp(argv[i], "--by-count")) {
			sort_count = 1;
		} else {
			fprintf(stderr, "usage: wc_baseline [--by-count] [FILE...]\n");
			return 2;
		}
	}
	bits = 16;
	tab = table_alloc(bits);
	cap = BLOCK;
	buf = xalloc(NULL, cap + PAD);
	bitmap = xalloc(NULL, (cap + PAD) / 64 * sizeof *bitmap);
	int rc = 0;
	if (i == argc) {
		rc = count_fd(0, "stdin") ? 1 : rc;
	}
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "-")) {
			rc = count_fd(0, "stdin") ? 1 : rc;
			continue;
		}
		int fd = open(argv[i], O_RDONLY);
		if (fd < 0) {
			fprintf(stderr, "wc_baseline: %s: %s\n", argv[i], strerror(errno));
			rc = 1;
			continue;
		}
		if (count_fd(fd, argv[i]))
			rc = 1;
		close(fd);
	}

	struct row *rows = xalloc(NULL, (used + 1) * sizeof *rows);
	size_t n = 0;
	for (size_t j = 0; j < ((size_t)1 << bits); j++) {
		struct slot *e = &tab[j];
		if (!e->len)
			continue;
		/* k0 was loaded from the text, so its bytes in memory are the word */
		rows[n].key = e->len <= 8 ? (const uint8_t *)&e->k0 : arena + e->off;
		rows[n].len = e->len;
		rows[n].count = e->count;
		n++;
	}
	qsort(rows, n, sizeof *rows, sort_count ? by_count : by_word);
	static char obuf[1 << 16];
	setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
	for (size_t j = 0; j < n; j++) {
		fwrite(rows[j].key, 1, rows[j].len, stdout);
		printf("\t%" PRIu64 "\n", rows[j].count);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "wc_baseline: write: %s\n", strerror(errno));
		rc = 1;
	}
	free(rows);
	free(tab);
	free(arena);
	free(buf);
	free(bitmap);
	return rc;
}
