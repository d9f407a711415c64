/* The MapReduce data plane (modules/mapreduce kv, run, merge, builtin,
 * out): the EXAMPLES.md word count, spilling and multi-pass merges under a
 * tiny memory limit, partitions, damaged run files, and a speed figure. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "mapreduce/builtin.h"
#include "mapreduce/merge.h"
#include "mapreduce/wcount.h"
#include "unit.h"

static const char *EXAMPLE =
    "There are known knowns. These are things we know that we know. There are\n"
    "known unknowns. That is to say, there are things that we know we do not\n"
    "know. But there are also unknown unknowns. There are things we do not\n"
    "know we do not know.\n";

/* ---- helpers ---- */

static char *tmpdir(void)
{
	char *t = strdup("/tmp/mr_test.XXXXXX");
	if (t == NULL || mkdtemp(t) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
	return t;
}

static void rmtree(char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char p[4096];
	while (d && (e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
		unlink(p);
	}
	if (d)
		closedir(d);
	rmdir(dir);
	free(dir);
}

static int count_files(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;
	while (d && (e = readdir(d)) != NULL)
		n += strncmp(e->d_name, prefix, strlen(prefix)) == 0;
	if (d)
		closedir(d);
	return n;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	char *b = malloc((size_t)n + 1);
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	if (b) {
		b[n] = '\0';
		if (len)
			*len = (size_t)n;
	}
	return b;
}

/* An emitter that appends "key\tvalue\n" to a growing string. */
typedef struct sbuf {
	char *s;
	size_t n, cap;
} sbuf;

static int sbuf_emit(void *ctx, const void *k, size_t kl, const void *v, size_t vl, node_err *err)
{
	sbuf *b = ctx;
	if (b->n + kl + vl + 3 > b->cap) {
		b->cap = (b->n + kl + vl + 3) * 2;
		b->s = realloc(b->s, b->cap);
		if (b->s == NULL)
			return node_err_set(err, NODE_ENOMEM, "internal", "out of memory");
	}
	memcpy(b->s + b->n, k, kl);
	b->s[b->n + kl] = '\t';
	memcpy(b->s + b->n + kl + 1, v, vl);
	b->n += kl + vl + 2;
	b->s[b->n - 1] = '\n';
	b->s[b->n] = '\0';
	return 0;
}

static int line_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The lines of s sorted, joined again: the union of partitions in one
 * order however they were split. */
static char *sorted_lines(const char *s)
{
	size_t n = 0, len = strlen(s);
	for (size_t i = 0; i < len; i++)
		n += s[i] == '\n';
	char *copy = strdup(s), **v = calloc(n + 1, sizeof *v), *out = malloc(len + 1), *save = NULL;
	size_t k = 0;
	for (char *t = strtok_r(copy, "\n", &save); t; t = strtok_r(NULL, "\n", &save))
		v[k++] = t;
	qsort(v, k, sizeof *v, line_cmp);
	out[0] = '\0';
	for (size_t i = 0, o = 0; i < k; i++) {
		size_t l = strlen(v[i]);
		memcpy(out + o, v[i], l);
		out[o + l] = '\n';
		o += l + 1;
		out[o] = '\0';
	}
	free(copy);
	free(v);
	return out;
}

typedef struct map_job {
	mr_map_fn map;
	const char *param;
	mr_kv_fold fold;
	mr_reduce_fn combine, reduce;
	mr_kv_order order;
	int nparts, fanin;
	size_t mem;
} map_job;

/* Map text into dir, then reduce every partition into one string (the
 * partitions one after the other). Returns NULL on error (err filled). */
static char *run_job(const map_job *j, const char *text, size_t len, const char *dir, size_t *spills,
                     node_err *err)
{
	mr_kv_opts o = {dir, j->nparts, j->mem, j->order, j->combine, NULL, j->fold, j->fanin};
	mr_kv_writer *w;
	if (mr_kv_writer_open(&w, &o, err))
		return NULL;
	int rc = j->map(text, len, 1, j->param, w, err);
	if (rc == 0)
		rc = mr_kv_finish(w, err);
	if (spills)
		*spills = mr_kv_spills(w);
	mr_kv_writer_free(w);
	if (rc)
		return NULL;
	sbuf b = {0};
	sbuf_emit(&b, "", 0, "", 0, err);
	b.n = 0;
	b.s[0] = '\0';
	mr_emitter em = {sbuf_emit, &b};
	mr_merge_opts mo = {j->order, j->fanin, dir, j->combine, NULL};
	for (int p = 0; p < j->nparts; p++) {
		char path[4096];
		mr_kv_part_path(path, sizeof path, dir, p, err);
		const char *one = path;
		if (mr_merge_reduce(&one, 1, &mo, j->reduce, NULL, &em, err)) {
			free(b.s);
			return NULL;
		}
	}
	return b.s;
}

/* ---- (a) the EXAMPLES.md word count ---- */

static const char *ALPHA = "also\t1\nare\t6\nbut\t1\ndo\t3\nis\t1\nknow\t6\nknown\t2\nknowns\t1\nnot\t3\n"
                           "say\t1\nthat\t3\nthere\t5\nthese\t1\nthings\t3\nto\t1\nunknown\t1\nunknowns\t2\nwe\t6\n";
static const char *BYCOUNT = "are\t6\nknow\t6\nwe\t6\nthere\t5\ndo\t3\nnot\t3\nthat\t3\nthings\t3\nknown\t2\n"
                             "unknowns\t2\nalso\t1\nbut\t1\nis\t1\nknowns\t1\nsay\t1\nthese\t1\nto\t1\nunknown\t1\n";

UNIT_TEST(test_example_wordcount)
{
	node_err err = {0};
	char *dir = tmpdir();
	map_job wc = {mr_fn_wordcount, NULL, MR_FOLD_SUM, NULL, mr_fn_sum, MR_ORDER_KEY, 1, 0, 0};
	char *alpha = run_job(&wc, EXAMPLE, strlen(EXAMPLE), dir, NULL, &err);
	UNIT_CHECK(alpha && strcmp(alpha, ALPHA) == 0);
	if (alpha && strcmp(alpha, ALPHA))
		fprintf(stderr, "got:\n%s", alpha);
	/* The second job: identity over the first's TSV, by count. */
	map_job by = {mr_fn_identity, NULL, MR_FOLD_NONE, NULL, NULL, MR_ORDER_VALUE_DESC, 1, 0, 0};
	char *dir2 = tmpdir();
	char *bycount = alpha ? run_job(&by, alpha, strlen(alpha), dir2, NULL, &err) : NULL;
	UNIT_CHECK(bycount && strcmp(bycount, BYCOUNT) == 0);
	if (bycount && strcmp(bycount, BYCOUNT))
		fprintf(stderr, "got:\n%s", bycount);
	free(alpha);
	free(bycount);
	rmtree(dir);
	rmtree(dir2);
}

/* The same through a combiner function instead of the fold table, and
 * with neither (every "word 1" reaches the reducer). */
UNIT_TEST(test_example_combiner_variants)
{
	node_err err = {0};
	map_job v[] = {
		{mr_fn_wordcount, NULL, MR_FOLD_NONE, mr_fn_sum, mr_fn_sum, MR_ORDER_KEY, 1, 0, 64},
		{mr_fn_wordcount, NULL, MR_FOLD_NONE, NULL, mr_fn_sum, MR_ORDER_KEY, 1, 2, 64},
		{mr_fn_wordcount, NULL, MR_FOLD_NONE, NULL, mr_fn_count, MR_ORDER_KEY, 1, 0, 0},
	};
	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		char *dir = tmpdir();
		char *got = run_job(&v[i], EXAMPLE, strlen(EXAMPLE), dir, NULL, &err);
		UNIT_CHECK(got && strcmp(got, ALPHA) == 0);
		free(got);
		rmtree(dir);
	}
}

UNIT_TEST(test_output_files)
{
	node_err err = {0};
	char *dir = tmpdir();
	char tsv[4096], js[4096];
	snprintf(tsv, sizeof tsv, "%s/part-0.tsv", dir);
	snprintf(js, sizeof js, "%s/part-0.jsonl", dir);
	mr_out *a, *b;
	UNIT_CHECK(mr_out_open(&a, tsv, MR_OUT_TSV, &err) == 0);
	UNIT_CHECK(mr_out_open(&b, js, MR_OUT_JSONL, &err) == 0);
	const char *rows[][2] = {{"are", "6"}, {"q\"t\\x", "1.5e3"}, {"tab\there", "007"}, {"caf\xc3\xa9", "\xff"}};
	for (size_t i = 0; i < 4; i++) {
		mr_out_emit(a, rows[i][0], strlen(rows[i][0]), rows[i][1], strlen(rows[i][1]), &err);
		mr_out_emit(b, rows[i][0], strlen(rows[i][0]), rows[i][1], strlen(rows[i][1]), &err);
	}
	UNIT_CHECK(access(tsv, F_OK) != 0); /* not there before close */
	UNIT_CHECK(mr_out_close(a, &err) == 0);
	UNIT_CHECK(mr_out_close(b, &err) == 0);
	char *t = slurp(tsv, NULL), *j = slurp(js, NULL);
	UNIT_CHECK(t && strcmp(t, "are\t6\nq\"t\\x\t1.5e3\ntab\there\t007\ncaf\xc3\xa9\t\xff\n") == 0);
	UNIT_CHECK(j && strcmp(j, "{\"key\":\"are\",\"value\":6}\n"
	                          "{\"key\":\"q\\\"t\\\\x\",\"value\":1.5e3}\n"
	                          "{\"key\":\"tab\\there\",\"value\":\"007\"}\n"
	                          "{\"key\":\"caf\xc3\xa9\",\"value\":\"\\u00ff\"}\n") == 0);
	if (j)
		fprintf(stderr, "%s", j[0] == '{' ? "" : j);
	free(t);
	free(j);
	rmtree(dir);
}

/* ---- (b) spilling ---- */

/* Word i of the generated vocabulary: bijective base 26, so all differ. */
static size_t vocab_word(unsigned i, char *w)
{
	size_t n = 0;
	for (unsigned x = i + 1; x; x = (x - 1) / 26)
		w[n++] = (char)('a' + (x - 1) % 26);
	return n;
}

static uint64_t lcg(uint64_t *s)
{
	*s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
	return *s >> 33;
}

/* Text of about `bytes` of words from a vocab of v (skewed: small
 * indexes are common), counting each word into counts[]. Mixed case and
 * punctuation exercise wordcount's letter rule. */
static char *gen_text(size_t bytes, unsigned v, unsigned *counts, size_t *len)
{
	char *t = malloc(bytes + 64);
	uint64_t s = 42;
	size_t n = 0;
	while (n < bytes) {
		unsigned r = (unsigned)lcg(&s);
		unsigned i = (r % v) % (1 + (unsigned)(lcg(&s) % v));
		char w[16];
		size_t wl = vocab_word(i, w);
		if (counts)
			counts[i]++;
		for (size_t k = 0; k < wl; k++)
			t[n++] = (r & 64) && k == 0 ? (char)(w[k] - 32) : w[k];
		static const char seps[] = " ,. \n;0";
		t[n++] = seps[r % 7];
	}
	*len = n;
	return t;
}

static char *expected_counts(const unsigned *counts, unsigned v)
{
	sbuf b = {0};
	node_err err;
	for (unsigned i = 0; i < v; i++) {
		if (!counts[i])
			continue;
		char w[16], num[16];
		size_t wl = vocab_word(i, w);
		int nl = snprintf(num, sizeof num, "%u", counts[i]);
		sbuf_emit(&b, w, wl, num, (size_t)nl, &err);
	}
	char *s = sorted_lines(b.s);
	free(b.s);
	return s;
}

UNIT_TEST(test_spill_many_runs)
{
	node_err err = {0};
	unsigned v = 20000, *counts = calloc(v, sizeof *counts);
	size_t len;
	char *text = gen_text(3u << 20, v, counts, &len);
	char *want = expected_counts(counts, v);
	map_job js[] = {
		{mr_fn_wordcount, NULL, MR_FOLD_SUM, NULL, mr_fn_sum, MR_ORDER_KEY, 3, 4, 4096},
		{mr_fn_wordcount, NULL, MR_FOLD_NONE, mr_fn_sum, mr_fn_sum, MR_ORDER_KEY, 2, 8, 8192},
	};
	for (size_t i = 0; i < sizeof js / sizeof js[0]; i++) {
		char *dir = tmpdir();
		size_t spills = 0;
		char *got = run_job(&js[i], text, len, dir, &spills, &err);
		UNIT_CHECK(got != NULL);
		if (got == NULL)
			fprintf(stderr, "  %s\n", err.msg);
		char *sorted = got ? sorted_lines(got) : NULL;
		UNIT_CHECK(sorted && strcmp(sorted, want) == 0);
		UNIT_CHECK(spills > 100); /* many runs, so merges took passes */
		fprintf(stderr, "    %zu spills at %zu bytes of memory\n", spills, js[i].mem);
		/* Only the part files are left. */
		UNIT_CHECK(count_files(dir, "part-") == js[i].nparts);
		UNIT_CHECK(count_files(dir, "spill-") == 0 && count_files(dir, "merge-") == 0);
		free(got);
		free(sorted);
		rmtree(dir);
	}
	free(want);
	free(text);
	free(counts);
}

/* Hundreds of runs straight through mr_merge_reduce with fan-in 3. */
UNIT_TEST(test_multipass_merge_reduce)
{
	node_err err = {0};
	char *dir = tmpdir();
	enum { RUNS = 100, PER = 50 };
	char *paths[RUNS];
	for (int r = 0; r < RUNS; r++) {
		char p[4096];
		snprintf(p, sizeof p, "%s/in-%03d.run", dir, r);
		paths[r] = strdup(p);
		mr_run_writer *w;
		UNIT_CHECK(mr_run_create(&w, p, &err) == 0);
		for (int k = 0; k < PER; k++) {
			char key[16], val[16];
			int kl = snprintf(key, sizeof key, "k%04d", k * 7 + r % 3), vl = snprintf(val, sizeof val, "%d", r);
			mr_run_put(w, key, (size_t)kl, val, (size_t)vl, &err);
		}
		UNIT_CHECK(mr_run_close(w, &err) == 0);
	}
	sbuf b = {0};
	mr_emitter em = {sbuf_emit, &b};
	mr_merge_opts mo = {MR_ORDER_KEY, 3, dir, NULL, NULL};
	UNIT_CHECK(mr_merge_reduce((const char *const *)paths, RUNS, &mo, mr_fn_concat, NULL, &em, &err) == 0);
	/* k0000 appears in runs 0,3,6,..99 and keeps run order (stable). */
	char want[1024] = "k0000\t";
	for (int r = 0; r < RUNS; r += 3)
		snprintf(want + strlen(want), sizeof want - strlen(want), "%s%d", r ? "," : "", r);
	strcat(want, "\n");
	UNIT_CHECK(b.s && strncmp(b.s, want, strlen(want)) == 0);
	size_t lines = 0;
	for (size_t i = 0; b.s && i < b.n; i++)
		lines += b.s[i] == '\n';
	UNIT_CHECK(lines == PER * 3);
	UNIT_CHECK(count_files(dir, "merge-") == 0);
	UNIT_CHECK(count_files(dir, "in-") == RUNS); /* inputs stay */
	for (int r = 0; r < RUNS; r++)
		free(paths[r]);
	free(b.s);
	rmtree(dir);
}

/* ---- (c) partitions, (e) 1 vs 4 ---- */

UNIT_TEST(test_partitions)
{
	node_err err = {0};
	UNIT_CHECK(mr_kv_hash("", 0) == 0xcbf29ce484222325ULL);  /* FNV-1a 64 test vectors */
	UNIT_CHECK(mr_kv_hash("a", 1) == 0xaf63dc4c8601ec8cULL);
	UNIT_CHECK(mr_kv_hash("foobar", 6) == 0x85944171f73967e8ULL);
	size_t len;
	char *text = gen_text(200000, 5000, NULL, &len);
	char *dirs[2] = {tmpdir(), tmpdir()};
	map_job j = {mr_fn_wordcount, NULL, MR_FOLD_SUM, NULL, NULL, MR_ORDER_KEY, 4, 0, 16384};
	char *got[2];
	for (int d = 0; d < 2; d++)
		got[d] = run_job(&j, text, len, dirs[d], NULL, &err);
	UNIT_CHECK(got[0] && got[1] && strcmp(got[0], got[1]) == 0);
	/* Every key of part p hashes to p; part files are byte for byte equal. */
	for (int p = 0; p < 4; p++) {
		char path[2][4096];
		size_t l0 = 0, l1 = 1;
		mr_kv_part_path(path[0], sizeof path[0], dirs[0], p, &err);
		mr_kv_part_path(path[1], sizeof path[1], dirs[1], p, &err);
		char *a = slurp(path[0], &l0), *b = slurp(path[1], &l1);
		UNIT_CHECK(a && b && l0 == l1 && memcmp(a, b, l0) == 0);
		free(a);
		free(b);
		mr_run_reader *r;
		UNIT_CHECK(mr_run_open(&r, path[0], &err) == 0);
		mr_kv_rec rec;
		int rc, bad = 0, n = 0;
		while ((rc = mr_run_next(r, &rec, &err)) > 0) {
			bad += mr_kv_partition(rec.key, rec.klen, 4) != p;
			n++;
		}
		UNIT_CHECK(rc == 0 && bad == 0 && n > 0);
		mr_run_free(r);
	}
	/* (e) one partition gives the same records as four. */
	j.nparts = 1;
	j.reduce = mr_fn_sum;
	char *dir1 = tmpdir();
	char *one = run_job(&j, text, len, dir1, NULL, &err);
	j.nparts = 4;
	char *dir4 = tmpdir();
	char *four = run_job(&j, text, len, dir4, NULL, &err);
	char *four_sorted = four ? sorted_lines(four) : NULL, *one_sorted = one ? sorted_lines(one) : NULL;
	UNIT_CHECK(one && four_sorted && strcmp(one, one_sorted) == 0 && strcmp(one, four_sorted) == 0);
	free(one);
	free(four);
	free(one_sorted);
	free(four_sorted);
	free(got[0]);
	free(got[1]);
	free(text);
	rmtree(dirs[0]);
	rmtree(dirs[1]);
	rmtree(dir1);
	rmtree(dir4);
}

/* ---- (f) the word-count kernel (wcount.c) against a plain reference ---- */

static int is_letter(uint8_t c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The words of t by the plain definition, lower-cased, in text order. */
static char **ref_words(const uint8_t *t, size_t len, size_t *count)
{
	size_t n = 0, cap = 1024;
	char **v = malloc(cap * sizeof *v);
	for (size_t i = 0; i < len;) {
		if (!is_letter(t[i])) {
			i++;
			continue;
		}
		size_t s = i;
		while (i < len && is_letter(t[i]))
			i++;
		char *w = malloc(i - s + 1);
		for (size_t k = s; k < i; k++)
			w[k - s] = (char)(t[k] | 0x20);
		w[i - s] = '\0';
		if (n == cap)
			v = realloc(v, (cap *= 2) * sizeof *v);
		v[n++] = w;
	}
	*count = n;
	return v;
}

static int cstr_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Distinct words (sorted) with the reference counts, and what a counter
 * under test reported for them. */
typedef struct tally {
	char **w;
	uint64_t *want, *got;
	size_t n, unknown, calls;
	int nparts, last_part; /* sorted flushes: by partition, then bytewise */
	char *last;
	size_t disorder;
} tally;

static tally ref_tally(const uint8_t *text, size_t len)
{
	size_t n;
	char **v = ref_words(text, len, &n);
	qsort(v, n, sizeof *v, cstr_cmp);
	tally t = {calloc(n + 1, sizeof(char *)), calloc(n + 1, 8), calloc(n + 1, 8), 0, 0, 0, 0, -1, NULL, 0};
	for (size_t i = 0; i < n; i++) {
		if (t.n && strcmp(t.w[t.n - 1], v[i]) == 0) {
			t.want[t.n - 1]++;
			free(v[i]);
			continue;
		}
		t.w[t.n] = v[i];
		t.want[t.n++] = 1;
	}
	free(v);
	return t;
}

static void tally_add(tally *t, const char *word, uint64_t count)
{
	char **hit = bsearch(&word, t->w, t->n, sizeof *t->w, cstr_cmp);
	if (hit)
		t->got[hit - t->w] += count;
	else
		t->unknown++;
	t->calls++;
}

static int tally_part(void *ctx, const uint8_t *word, size_t len)
{
	const tally *t = ctx;
	return mr_kv_partition(word, len, t->nparts);
}

static int tally_fn(void *ctx, int part, const uint8_t *word, size_t len, uint64_t count, node_err *err)
{
	tally *t = ctx;
	char *w = malloc(len + 1);
	memcpy(w, word, len);
	w[len] = '\0';
	tally_add(t, w, count);
	if (part != (t->nparts > 1 ? tally_part(t, word, len) : 0) || part < t->last_part ||
	    (part == t->last_part && t->last && strcmp(t->last, w) >= 0))
		t->disorder++;
	free(t->last);
	t->last = w;
	t->last_part = part;
	return 0;
}

/* A flush ends: the next one starts from partition 0 again. */
static int tally_flushed(void *ctx, node_err *err)
{
	tally *t = ctx;
	t->last_part = -1;
	free(t->last);
	t->last = NULL;
	return 0;
}

/* 1 when every word got its reference count; then starts again. */
static int tally_check(tally *t)
{
	int ok = t->unknown == 0 && t->disorder == 0;
	for (size_t i = 0; i < t->n; i++)
		ok &= t->got[i] == t->want[i];
	memset(t->got, 0, t->n * 8);
	t->unknown = t->calls = t->disorder = 0;
	tally_flushed(t, NULL);
	return ok;
}

/* "word TAB count" lines of a job's output into the tally. */
static void tally_lines(tally *t, char *s)
{
	char *save = NULL;
	for (char *line = strtok_r(s, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(line, '\t');
		if (tab == NULL) {
			t->unknown++;
			continue;
		}
		*tab = '\0';
		tally_add(t, line, strtoull(tab + 1, NULL, 10));
	}
}

static void tally_free(tally *t)
{
	free(t->last);
	for (size_t i = 0; i < t->n; i++)
		free(t->w[i]);
	free(t->w);
	free(t->want);
	free(t->got);
}

static void put_word(uint8_t *t, size_t *n, const char *w, size_t wl, uint64_t r)
{
	for (size_t k = 0; k < wl; k++)
		t[(*n)++] = (uint8_t)((r >> (k % 60)) & 1 ? w[k] - 32 : w[k]);
}

/* About `bytes` of words from short and long vocabularies (long words of
 * 8, 9, 16, 17, 64, 65 ... 300 letters, some sharing their first 12), in
 * mixed case, between separators that include bytes >= 0x80 (0xC1 is 'A'
 * with the high bit), NUL and the neighbours of the letters; a word
 * across each 64 KiB block end, one word of 200,000 letters; the text
 * starts and ends with a letter. */
static uint8_t *wc_text(size_t bytes, size_t *len)
{
	enum { NSHORT = 300, NLONG = 60, GIANT = 200000 };
	static const size_t fixed[] = {8, 9, 15, 16, 17, 63, 64, 65, 66, 127, 128, 129, 300};
	char *vs[NSHORT + NLONG];
	size_t vl[NSHORT + NLONG];
	uint64_t s = 99;
	for (int i = 0; i < NSHORT + NLONG; i++) {
		size_t l = i < NSHORT ? 1 + lcg(&s) % 8 : i - NSHORT < 13 ? fixed[i - NSHORT] : 9 + lcg(&s) % 120;
		vs[i] = malloc(l);
		for (size_t k = 0; k < l; k++)
			vs[i][k] = (char)('a' + lcg(&s) % 26);
		if (i >= NSHORT + 30) /* the same first 12 letters as another long word */
			memcpy(vs[i], vs[NSHORT + 30 - (i % 7) - 1], l < 12 ? l : 12);
		vl[i] = l;
	}
	static const uint8_t seps[] = " \n,.;:!?-'\"0123456789@[`{\x00\x7f\x80\xc1\xda\xe1\xfa\xff\xc3\xa9\t";
	uint8_t *t = malloc(bytes + GIANT + 1024);
	size_t n = 0;
	int giant = 0;
	while (n < bytes) {
		uint64_t r = lcg(&s);
		int i = r % 10 == 0 ? NSHORT + (int)(lcg(&s) % NLONG) : (int)(lcg(&s) % NSHORT);
		put_word(t, &n, vs[i], vl[i], lcg(&s));
		if (!giant && n > bytes / 2) {
			for (int k = 0; k < GIANT; k++)
				t[n++] = (uint8_t)('a' + k % 3);
			giant = 1;
		}
		if (n >= bytes)
			break;
		for (uint64_t k = 0, ns = 1 + (r >> 8) % 3; k < ns; k++) {
			uint64_t x = lcg(&s);
			t[n++] = x % 5 == 0 ? (uint8_t)(0x80 + x / 5 % 128) : seps[x / 5 % (sizeof seps - 1)];
		}
	}
	/* a 40-letter word across every 64 KiB boundary of the first 1 MB */
	for (size_t b = 65536; b + 64 < n && b <= (1u << 20); b += 65536) {
		t[b - 21] = ' ';
		for (size_t k = 0; k < 40; k++)
			t[b - 20 + k] = (uint8_t)('A' + (b / 65536 + k) % 26);
		t[b + 20] = '.';
	}
	*len = n;
	for (int i = 0; i < NSHORT + NLONG; i++)
		free(vs[i]);
	return t;
}

static int count_with(tally *t, const uint8_t *text, size_t len, size_t limit, size_t piece, size_t *full)
{
	node_err err = {0};
	mr_wc_opts o = {limit, 0, tally_fn, t, t->nparts, tally_part, tally_flushed};
	mr_wc *wc;
	if (mr_wc_open(&wc, &o, &err))
		return -1;
	int rc = 0;
	for (size_t at = 0, i = 0; rc == 0 && at < len; i++) {
		size_t n = piece ? 1 + (i * 7919 + piece) % piece : len;
		n = n > len - at ? len - at : n;
		rc = mr_wc_feed(wc, text + at, n, &err);
		at += n;
	}
	if (rc == 0)
		rc = mr_wc_end(wc, &err);
	if (rc == 0)
		rc = mr_wc_flush(wc, &err);
	if (full)
		*full = mr_wc_full_flushes(wc);
	mr_wc_free(wc);
	return rc;
}

static int seq_fn(void *ctx, int part, const uint8_t *word, size_t len, uint64_t count, node_err *err)
{
	char nl = '\n';
	return sbuf_emit(ctx, word, len, &nl, 0, err);
}

UNIT_TEST(test_wordcount_kernel)
{
	size_t len, full = 0;
	uint8_t *text = wc_text(3u << 20, &len);
	tally t = ref_tally(text, len);
	UNIT_CHECK(t.n > 300);
	/* whole, in odd pieces (words cut between calls), under limits */
	/* without a limit each distinct word comes once */
	UNIT_CHECK(count_with(&t, text, len, 0, 0, &full) == 0 && t.calls == t.n && tally_check(&t) && full == 0);
	UNIT_CHECK(count_with(&t, text, len, 0, 150001, NULL) == 0 && t.calls == t.n && tally_check(&t));
	UNIT_CHECK(count_with(&t, text, len, 0, 13, NULL) == 0 && tally_check(&t));
	UNIT_CHECK(count_with(&t, text, len, 2048, 70000, &full) == 0 && tally_check(&t) && full > 10);
	fprintf(stderr, "    %zu table flushes at 2048 bytes\n", full);
	UNIT_CHECK(count_with(&t, text, len, 100, 0, &full) == 0 && tally_check(&t) && full > 100);
	/* flushes by partition (the writer's hash), bytewise within one */
	t.nparts = 5;
	UNIT_CHECK(count_with(&t, text, len, 0, 0, NULL) == 0 && t.calls == t.n && tally_check(&t));
	UNIT_CHECK(count_with(&t, text, len, 4096, 0, &full) == 0 && tally_check(&t) && full > 10);
	t.nparts = 0;
	/* without a table: every word, in text order */
	size_t nw;
	char **words = ref_words(text, len, &nw);
	sbuf want = {0}, got = {0};
	node_err err = {0};
	for (size_t i = 0; i < nw; i++) {
		sbuf_emit(&want, words[i], strlen(words[i]), "", 0, &err);
		free(words[i]);
	}
	free(words);
	mr_wc_opts o = {0, 1, seq_fn, &got, 0, NULL, NULL};
	mr_wc *wc;
	UNIT_CHECK(mr_wc_open(&wc, &o, &err) == 0);
	UNIT_CHECK(mr_wc_feed(wc, text, len, &err) == 0 && mr_wc_end(wc, &err) == 0 && mr_wc_flush(wc, &err) == 0);
	mr_wc_free(wc);
	UNIT_CHECK(got.s && want.s && got.n == want.n && memcmp(got.s, want.s, want.n) == 0);
	free(got.s);
	free(want.s);
	/* through the map and a writer: the table's flushes under a tiny
	 * limit, and "word 1" records when the combiner does not fold */
	map_job js[] = {
		{mr_fn_wordcount, NULL, MR_FOLD_SUM, NULL, mr_fn_sum, MR_ORDER_KEY, 3, 4, 4096},
		{mr_fn_wordcount, NULL, MR_FOLD_SUM, mr_fn_sum, mr_fn_sum, MR_ORDER_KEY, 2, 0, 0},
		{mr_fn_wordcount, NULL, MR_FOLD_NONE, NULL, mr_fn_count, MR_ORDER_KEY, 2, 0, 1u << 20},
	};
	for (size_t i = 0; i < sizeof js / sizeof js[0]; i++) {
		char *dir = tmpdir();
		char *out = run_job(&js[i], (const char *)text, len, dir, NULL, &err);
		UNIT_CHECK(out != NULL);
		if (out)
			tally_lines(&t, out);
		UNIT_CHECK(tally_check(&t));
		free(out);
		rmtree(dir);
	}
	tally_free(&t);
	free(text);
	/* texts do not join; a text that is one word longer than a block */
	static const uint8_t abc[] = "ab c AB";
	t = ref_tally((const uint8_t *)"ab c ab", 7);
	o = (mr_wc_opts){0, 0, tally_fn, &t, 0, NULL, tally_flushed};
	UNIT_CHECK(mr_wc_open(&wc, &o, &err) == 0);
	UNIT_CHECK(mr_wc_end(wc, &err) == 0 && mr_wc_feed(wc, abc, 0, &err) == 0);
	static const size_t at[][2] = {{0, 1}, {1, 1}, {3, 1}, {5, 2}}; /* "a" "b" | "c" | "AB" */
	for (int i = 0; i < 4; i++)
		UNIT_CHECK(mr_wc_feed(wc, abc + at[i][0], at[i][1], &err) == 0 && (i == 0 || mr_wc_end(wc, &err) == 0));
	UNIT_CHECK(mr_wc_flush(wc, &err) == 0 && tally_check(&t));
	mr_wc_free(wc);
	tally_free(&t);
	len = 300000;
	text = malloc(len);
	for (size_t i = 0; i < len; i++)
		text[i] = (uint8_t)("Zz"[i % 2]);
	t = ref_tally(text, len);
	UNIT_CHECK(t.n == 1 && count_with(&t, text, len, 1024, 50000, NULL) == 0 && tally_check(&t));
	tally_free(&t);
	free(text);
}

/* ---- (d) damaged run files ---- */

static int read_all(const char *path, node_err *err)
{
	mr_run_reader *r;
	if (mr_run_open(&r, path, err))
		return -1;
	mr_kv_rec rec;
	int rc;
	while ((rc = mr_run_next(r, &rec, err)) > 0)
		;
	mr_run_free(r);
	return rc;
}

UNIT_TEST(test_damaged_runs)
{
	node_err err = {0};
	char *dir = tmpdir();
	char good[4096], badp[4096];
	snprintf(good, sizeof good, "%s/good.run", dir);
	snprintf(badp, sizeof badp, "%s/bad.run", dir);
	mr_run_writer *w;
	UNIT_CHECK(mr_run_create(&w, good, &err) == 0);
	uint64_t s = 7;
	for (int i = 0; i < 20000; i++) {
		char k[32];
		int kl = snprintf(k, sizeof k, "key%08d-%llu", i, (unsigned long long)lcg(&s));
		mr_run_put(w, k, (size_t)kl, "v", 1, &err);
	}
	UNIT_CHECK(mr_run_close(w, &err) == 0);
	UNIT_CHECK(read_all(good, &err) == 0);
	size_t len;
	char *data = slurp(good, &len);
	UNIT_CHECK(data && len > 3 * MR_KV_BLOCK / 4);
	/* Flip one byte at many places: every damage is an error, with the name. */
	int missed = 0;
	for (size_t at = 0; data && at < len; at += 1 + at / 7) {
		data[at] ^= 0x5A;
		FILE *f = fopen(badp, "wb");
		fwrite(data, 1, len, f);
		fclose(f);
		memset(&err, 0, sizeof err);
		if (read_all(badp, &err) != -1 || strstr(err.msg, "bad.run") == NULL)
			missed++;
		data[at] ^= 0x5A;
	}
	UNIT_CHECK(missed == 0);
	/* Truncations. */
	missed = 0;
	for (size_t cut = 0; data && cut < len; cut += 1 + cut / 5) {
		FILE *f = fopen(badp, "wb");
		fwrite(data, 1, cut, f);
		fclose(f);
		memset(&err, 0, sizeof err);
		if (read_all(badp, &err) != -1 || strstr(err.msg, "bad.run") == NULL)
			missed++;
	}
	UNIT_CHECK(missed == 0);
	/* Trailing bytes and a missing file. */
	FILE *f = fopen(badp, "wb");
	fwrite(data, 1, len, f);
	fputc('x', f);
	fclose(f);
	UNIT_CHECK(read_all(badp, &err) == -1 && strstr(err.msg, "after the end") != NULL);
	snprintf(badp, sizeof badp, "%s/none.run", dir);
	UNIT_CHECK(read_all(badp, &err) == -1 && err.rc == NODE_ENOTFOUND);
	/* Through a merge too: the error comes out, nothing is written. */
	snprintf(badp, sizeof badp, "%s/bad.run", dir);
	f = fopen(badp, "wb");
	fwrite(data, 1, len / 2, f);
	fclose(f);
	const char *two[] = {good, badp};
	char outp[4096];
	snprintf(outp, sizeof outp, "%s/out.run", dir);
	mr_merge_opts mo = {MR_ORDER_KEY, 0, dir, NULL, NULL};
	memset(&err, 0, sizeof err);
	UNIT_CHECK(mr_merge_files(two, 2, outp, &mo, &err) != 0 && strstr(err.msg, "bad.run: damaged") != NULL);
	UNIT_CHECK(access(outp, F_OK) != 0);
	fprintf(stderr, "    e.g. %s\n", err.msg);
	free(data);
	rmtree(dir);
}

/* ---- pieces ---- */

UNIT_TEST(test_varint_and_order)
{
	uint8_t b[10];
	uint64_t vals[] = {0, 1, 127, 128, 300, 1ULL << 35, UINT64_MAX}, x;
	for (size_t i = 0; i < 7; i++) {
		size_t n = mr_kv_put_varint(b, vals[i]);
		UNIT_CHECK(mr_kv_get_varint(b, n, &x) == n && x == vals[i]);
		UNIT_CHECK(mr_kv_get_varint(b, n - 1, &x) == 0);
	}
	mr_kv_rec a = {(const uint8_t *)"b", 1, (const uint8_t *)"10", 2};
	mr_kv_rec c = {(const uint8_t *)"a", 1, (const uint8_t *)"9.5", 3};
	mr_kv_rec d = {(const uint8_t *)"a", 1, (const uint8_t *)"x", 1};
	mr_kv_rec e = {(const uint8_t *)"ab", 2, (const uint8_t *)"-3", 2};
	UNIT_CHECK(mr_kv_cmp(MR_ORDER_KEY, &c, &a) < 0 && mr_kv_cmp(MR_ORDER_KEY, &c, &e) < 0);
	UNIT_CHECK(mr_kv_cmp(MR_ORDER_VALUE_DESC, &a, &c) < 0);  /* 10 before 9.5 */
	UNIT_CHECK(mr_kv_cmp(MR_ORDER_VALUE_DESC, &e, &d) < 0);  /* numbers before text */
	UNIT_CHECK(mr_kv_cmp(MR_ORDER_VALUE_DESC, &c, &e) < 0);
}

UNIT_TEST(test_maps_and_reducers)
{
	node_err err = {0};
	const char *text = "alpha beta\r\nbeta\tgamma\n\nno match here\nbeta";
	map_job sw = {mr_fn_split_words, NULL, MR_FOLD_NONE, NULL, mr_fn_concat, MR_ORDER_KEY, 1, 0, 0};
	char *dir = tmpdir();
	char *got = run_job(&sw, text, strlen(text), dir, NULL, &err);
	UNIT_CHECK(got && strcmp(got, "alpha\t1\nbeta\t1,2,5\ngamma\t2\nhere\t4\nmatch\t4\nno\t4\n") == 0);
	free(got);
	map_job gr = {mr_fn_grep, "eta", MR_FOLD_NONE, NULL, mr_fn_identity_reduce, MR_ORDER_KEY, 1, 0, 0};
	got = run_job(&gr, text, strlen(text), dir, NULL, &err);
	UNIT_CHECK(got && strcmp(got, "alpha beta\t1\nbeta\t5\nbeta\tgamma\t2\n") == 0);
	free(got);
	const char *nums = "a\t3\nb\t2.5\na\t-7\nb\t1\na\t10\n";
	struct { mr_reduce_fn fn; const char *want; } r[] = {
		{mr_fn_sum, "a\t6\nb\t3.5\n"}, {mr_fn_min, "a\t-7\nb\t1\n"},
		{mr_fn_max, "a\t10\nb\t2.5\n"}, {mr_fn_count, "a\t3\nb\t2\n"},
		{mr_fn_concat, "a\t3,-7,10\nb\t2.5,1\n"},
	};
	for (size_t i = 0; i < sizeof r / sizeof r[0]; i++) {
		map_job id = {mr_fn_identity, NULL, MR_FOLD_NONE, NULL, r[i].fn, MR_ORDER_KEY, 1, 0, 0};
		got = run_job(&id, nums, strlen(nums), dir, NULL, &err);
		UNIT_CHECK(got && strcmp(got, r[i].want) == 0);
		free(got);
	}
	map_job bad = {mr_fn_identity, NULL, MR_FOLD_NONE, NULL, mr_fn_sum, MR_ORDER_KEY, 1, 0, 0};
	got = run_job(&bad, "k\tnan?\n", 7, dir, NULL, &err);
	UNIT_CHECK(got == NULL && strstr(err.msg, "not a number") != NULL);
	UNIT_CHECK(mr_fn_map_find("wordcount") == mr_fn_wordcount && mr_fn_map_find("nope") == NULL);
	UNIT_CHECK(mr_fn_reduce_find("concat") == mr_fn_concat && mr_fn_reduce_fold("sum") == MR_FOLD_SUM);
	mr_kv_opts o = {dir, 1, 0, MR_ORDER_VALUE_DESC, mr_fn_sum, NULL, MR_FOLD_NONE, 0};
	mr_kv_writer *w;
	UNIT_CHECK(mr_kv_writer_open(&w, &o, &err) == NODE_EINVAL && strstr(err.msg, "combiner") != NULL);
	rmtree(dir);
}

/* ---- speed ---- */

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The single-threaded baseline: lower-case letter runs counted in an
 * open-addressing table, what a C programmer writes in twenty lines. */
static size_t baseline_wc(const char *t, size_t len)
{
	size_t cap = 1 << 20, distinct = 0;
	struct slot { uint64_t h; char w[24]; unsigned n; } *tab = calloc(cap, sizeof *tab);
	char w[24];
	size_t n = 0;
	for (size_t i = 0; i <= len; i++) {
		char c = i < len ? (char)(t[i] | 0x20) : 0;
		if (c >= 'a' && c <= 'z') {
			if (n < sizeof w - 1)
				w[n++] = c;
			continue;
		}
		if (!n)
			continue;
		w[n] = 0;
		uint64_t h = mr_kv_hash(w, n);
		size_t k = h & (cap - 1);
		while (tab[k].n && (tab[k].h != h || strcmp(tab[k].w, w)))
			k = (k + 1) & (cap - 1);
		if (!tab[k].n++) {
			tab[k].h = h;
			memcpy(tab[k].w, w, n + 1);
			distinct++;
		}
		n = 0;
	}
	free(tab);
	return distinct;
}

UNIT_TEST(test_speed)
{
	/* MR_BENCH_FILE: a text to time instead (e.g. tests/tools/gentext's). */
	const char *mb_env = getenv("MR_BENCH_MB"), *file = getenv("MR_BENCH_FILE");
	/* In make test it only has to run (4 MB); MR_BENCH_MB=64 measures. */
	size_t mb = mb_env ? (size_t)atoi(mb_env) : 4, len = 0;
	char *text = file ? slurp(file, &len) : gen_text(mb << 20, 50000, NULL, &len);
	UNIT_CHECK(text != NULL);
	if (text == NULL)
		return;
	node_err err = {0};
	char *dir = tmpdir();
	/* Best of three, interleaved: the machine is shared and noisy. */
	double best = 1e9, best_base = 1e9;
	size_t d = 0;
	for (int rep = 0; rep < 3; rep++) {
		mr_kv_opts o = {dir, 2, 64u << 20, MR_ORDER_KEY, NULL, NULL, MR_FOLD_SUM, 0};
		mr_kv_writer *w;
		double t0 = now();
		UNIT_CHECK(mr_kv_writer_open(&w, &o, &err) == 0);
		UNIT_CHECK(mr_fn_wordcount(text, len, 1, NULL, w, &err) == 0);
		UNIT_CHECK(mr_kv_finish(w, &err) == 0);
		double t1 = now();
		mr_kv_writer_free(w);
		d = baseline_wc(text, len);
		double t2 = now();
		best = t1 - t0 < best ? t1 - t0 : best;
		best_base = t2 - t1 < best_base ? t2 - t1 : best_base;
	}
	fprintf(stderr, "    wordcount map+combine+spill: %.0f MB/s; baseline C count: %.0f MB/s (%zu MB, %zu words)\n",
	        (double)len / 1048576 / best, (double)len / 1048576 / best_base, len >> 20, d);
	free(text);
	rmtree(dir);
}

int main(void)
{
	if (getenv("MR_BENCH_ONLY")) { /* for profiling the map path alone */
		UNIT_RUN(test_speed);
		return unit_finish("mr_test");
	}
	UNIT_RUN(test_varint_and_order);
	UNIT_RUN(test_example_wordcount);
	UNIT_RUN(test_example_combiner_variants);
	UNIT_RUN(test_output_files);
	UNIT_RUN(test_maps_and_reducers);
	UNIT_RUN(test_partitions);
	UNIT_RUN(test_wordcount_kernel);
	UNIT_RUN(test_damaged_runs);
	UNIT_RUN(test_multipass_merge_reduce);
	UNIT_RUN(test_spill_many_runs);
	UNIT_RUN(test_speed);
	return unit_finish("mr_test");
}
