/* The word-count kernel (issue 7), one copy shared by the built-in map
 * `wordcount` and tests/tools/wc_baseline: words are runs of ASCII letters
 * A-Za-z, lower-cased; every other byte separates. */
#ifndef NODE_MR_WCOUNT_H
#define NODE_MR_WCOUNT_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

typedef struct mr_wc mr_wc;

/* Gets a word (lower-case letters, len >= 1) and its count: the table's
 * words when it is flushed, by partition (part) and within one bytewise
 * (shorter first); or, for a counter without a table, each word as it is
 * seen (count 1, part 0). The bytes are valid during the call only.
 * Returns 0 or NODE_E* with err filled, which stops the counter. */
typedef int (*mr_wc_fn)(void *ctx, int part, const uint8_t *word, size_t len, uint64_t count, node_err *err);

typedef struct mr_wc_opts {
	size_t mem_limit; /* bytes of table, its sorting and the long-word
	                   * arena; 0: no limit. When full, the table is
	                   * flushed and starts again (one word larger than
	                   * the limit still counts). */
	int no_table;     /* every word to fn as it comes, count 1, text order */
	mr_wc_fn fn;
	void *ctx;        /* for fn, part and flushed */
	int nparts;       /* <= 1: one partition */
	int (*part)(void *ctx, const uint8_t *word, size_t len); /* 0 to nparts-1,
	                   * when nparts > 1; called once per word per flush */
	int (*flushed)(void *ctx, node_err *err); /* after the words of a flush
	                   * that had any; may be NULL */
} mr_wc_opts;

int mr_wc_open(mr_wc **wc, const mr_wc_opts *opts, node_err *err);
/* Counts the words of text (never written to); a word that reaches the
 * end of text goes on in the next call's text. */
int mr_wc_feed(mr_wc *wc, const void *text, size_t len, node_err *err);
/* The end of a text: a word it cuts counts (texts do not join). */
int mr_wc_end(mr_wc *wc, node_err *err);
/* Every word of the table to fn (sorted, see mr_wc_fn), then flushed,
 * and the table is empty. After an error from any call only mr_wc_free
 * is safe. */
int mr_wc_flush(mr_wc *wc, node_err *err);
/* Times the table was full and flushed before anyone asked (for tests). */
size_t mr_wc_full_flushes(const mr_wc *wc);
void mr_wc_free(mr_wc *wc); /* NULL ok */

#endif
