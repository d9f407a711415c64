/* The single-threaded C word count that node's MapReduce word count is
 * measured against (issue 7): words are runs of A-Z a-z, lower-cased,
 * everything else separates. `wc_baseline [--by-count] [FILE...]` (stdin
 * when none, or "-") prints "word TAB count", by word (bytewise), or with
 * --by-count by count descending, ties by word. Tuned (a SWAR pass, word
 * starts from a bitmap, a table in huge pages: the kernel is
 * modules/mapreduce/wcount.c, which the wordcount map uses too) so that
 * beating it means something: ~380 MB/s on gentext's text on one core of
 * the 2-core machine. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapreduce/wcount.h"

static void *xalloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (!p) {
		fprintf(stderr, "wc_baseline: out of memory\n");
		exit(1);
	}
	return p;
}

static void fail(const node_err *err)
{
	fprintf(stderr, "wc_baseline: %s\n", err->msg);
	exit(1);
}

/* read() in blocks of 1 MB, each counted (wcount.c folds it 64 KB at a
 * time into its own scratch, carrying words cut by a block's end). */
#define BLOCK (1u << 20)

static int count_fd(mr_wc *wc, int fd, const char *name, uint8_t *buf)
{
	node_err err = {0};
	int rc = 0;
	posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
	for (;;) {
		ssize_t k = read(fd, buf, BLOCK);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			fprintf(stderr, "wc_baseline: %s: %s\n", name, strerror(errno));
			rc = -1;
		}
		if (k <= 0)
			break;
		if (mr_wc_feed(wc, buf, (size_t)k, &err))
			fail(&err);
	}
	/* a file's end ends a word: files do not join */
	if (mr_wc_end(wc, &err))
		fail(&err);
	return rc;
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

/* The table's words, copied out when it is flushed at the end (by word). */
typedef struct rows {
	struct row *v;
	size_t n, cap;
} rows;

static int take_row(void *ctx, int part, const uint8_t *word, size_t len, uint64_t count, node_err *err)
{
	rows *r = ctx;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 1024;
		r->v = xalloc(r->v, r->cap * sizeof *r->v);
	}
	uint8_t *k = xalloc(NULL, len);
	memcpy(k, word, len);
	r->v[r->n++] = (struct row){k, (uint32_t)len, count};
	return 0;
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
	rows r = {0};
	node_err err = {0};
	mr_wc_opts o = {.fn = take_row, .ctx = &r};
	mr_wc *wc;
	if (mr_wc_open(&wc, &o, &err))
		fail(&err);
	uint8_t *buf = xalloc(NULL, BLOCK);
	int rc = 0;
	if (i == argc) {
		rc = count_fd(wc, 0, "stdin", buf) ? 1 : rc;
	}
	for (; i < argc; i++) {
		if (!strcmp(argv[i], "-")) {
			rc = count_fd(wc, 0, "stdin", buf) ? 1 : rc;
			continue;
		}
		int fd = open(argv[i], O_RDONLY);
		if (fd < 0) {
			fprintf(stderr, "wc_baseline: %s: %s\n", argv[i], strerror(errno));
			rc = 1;
			continue;
		}
		if (count_fd(wc, fd, argv[i], buf))
			rc = 1;
		close(fd);
	}
	if (mr_wc_flush(wc, &err))
		fail(&err);
	mr_wc_free(wc);
	free(buf);

	if (sort_count && r.n)
		qsort(r.v, r.n, sizeof *r.v, by_count);
	static char obuf[1 << 16];
	setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
	for (size_t j = 0; j < r.n; j++) {
		fwrite(r.v[j].key, 1, r.v[j].len, stdout);
		printf("\t%" PRIu64 "\n", r.v[j].count);
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "wc_baseline: write: %s\n", strerror(errno));
		rc = 1;
	}
	for (size_t j = 0; j < r.n; j++)
		free((void *)r.v[j].key);
	free(r.v);
	return rc;
}
