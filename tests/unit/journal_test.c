/* The broker's durable log on real files: replay after reopen, every fsync
 * policy under concurrent appenders, torn and corrupt tails, segment
 * rotation, compaction with appends running, a simulated and a real full
 * disk (tmpfs, when mounting is permitted), the directory lock. Prints
 * append+sync throughput and replay speed; asserts nothing about them. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "core/journal.h"
#include "core/log.h"
#include "unit.h"

/* ---- helpers ---- */

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void make_tmpdir(char *out, size_t n)
{
	snprintf(out, n, "/tmp/journal_test.XXXXXX");
	if (mkdtemp(out) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
}

static void rm_rf(const char *path)
{
	struct stat sb;
	if (lstat(path, &sb) != 0)
		return;
	if (S_ISDIR(sb.st_mode)) {
		DIR *d = opendir(path);
		struct dirent *e;
		while (d && (e = readdir(d)) != NULL) {
			if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
				continue;
			char sub[4096];
			snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
			rm_rf(sub);
		}
		if (d)
			closedir(d);
		rmdir(path);
	} else {
		unlink(path);
	}
}

/* Does name read exactly "<prefix><digits>.log"? Then *seq gets the number. */
static int name_is(const char *name, const char *prefix, unsigned long long *seq)
{
	size_t pl = strlen(prefix);
	if (strncmp(name, prefix, pl) != 0)
		return 0;
	const char *p = name + pl;
	if (*p < '0' || *p > '9')
		return 0;
	char *end;
	*seq = strtoull(p, &end, 10);
	return strcmp(end, ".log") == 0;
}

typedef struct dirinfo {
	int segments, snapshots, tmps, others;
	unsigned long long seg_min, seg_max, snap_max;
} dirinfo;

static dirinfo scan_dir(const char *dir)
{
	dirinfo di = {0};
	di.seg_min = ~0ull;
	DIR *d = opendir(dir);
	struct dirent *e;
	while (d && (e = readdir(d)) != NULL) {
		unsigned long long s;
		if (e->d_name[0] == '.' || strcmp(e->d_name, "LOCK") == 0)
			continue;
		if (name_is(e->d_name, "journal-", &s)) {
			di.segments++;
			if (s < di.seg_min)
				di.seg_min = s;
			if (s > di.seg_max)
				di.seg_max = s;
		} else if (name_is(e->d_name, "snapshot-", &s)) {
			di.snapshots++;
			if (s > di.snap_max)
				di.snap_max = s;
		} else if (strstr(e->d_name, ".tmp") != NULL) {
			di.tmps++;
		} else {
			di.others++;
		}
	}
	if (d)
		closedir(d);
	return di;
}

static void seg_name(const char *dir, const char *kind, unsigned long long seq, char *out, size_t n)
{
	snprintf(out, n, "%s/%s-%012llu.log", dir, kind, seq);
}

static long long file_size(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
}

static void append_bytes(const char *path, const void *p, size_t n)
{
	int fd = open(path, O_WRONLY | O_APPEND);
	UNIT_CHECK(fd >= 0);
	if (fd < 0)
		return;
	UNIT_CHECK(write(fd, p, n) == (ssize_t)n);
	close(fd);
}

static void flip_byte(const char *path, long long at)
{
	int fd = open(path, O_RDWR);
	UNIT_CHECK(fd >= 0);
	if (fd < 0)
		return;
	unsigned char c = 0;
	UNIT_CHECK(pread(fd, &c, 1, at) == 1);
	c ^= 0x5a;
	UNIT_CHECK(pwrite(fd, &c, 1, at) == 1);
	close(fd);
}

/* Record i of a test: a deterministic size and byte pattern. */
static unsigned char pat(unsigned i, size_t k)
{
	return (unsigned char)(i * 131u + k * 7u + (k >> 8) + 1u);
}

static void gen(unsigned i, unsigned char *buf, size_t len)
{
	for (size_t k = 0; k < len; k++)
		buf[k] = pat(i, k);
}

static int matches(unsigned i, const unsigned char *p, size_t len)
{
	for (size_t k = 0; k < len; k++)
		if (p[k] != pat(i, k))
			return 0;
	return 1;
}

/* Replay into a list of copies. */
typedef struct recs {
	size_t n, cap;
	unsigned char **p;
	size_t *len;
	int fail_at; /* >0: return an error for record number fail_at (1-based) */
} recs;

static int collect(const void *rec, size_t len, void *arg)
{
	recs *r = arg;
	if (r->n == r->cap) {
		r->cap = r->cap ? r->cap * 2 : 256;
		r->p = realloc(r->p, r->cap * sizeof *r->p);
		r->len = realloc(r->len, r->cap * sizeof *r->len);
	}
	r->p[r->n] = malloc(len ? len : 1);
	memcpy(r->p[r->n], rec, len);
	r->len[r->n] = len;
	r->n++;
	return 0;
}

static void recs_free(recs *r)
{
	for (size_t i = 0; i < r->n; i++)
		free(r->p[i]);
	free(r->p);
	free(r->len);
	memset(r, 0, sizeof *r);
}

/* Are records [0, n) of r exactly gen(first + i) with sizes size(first + i)? */
static int recs_match(const recs *r, size_t from, unsigned first, size_t n, size_t (*size)(unsigned))
{
	if (r->n < from + n)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned id = first + (unsigned)i;
		if (r->len[from + i] != size(id) || !matches(id, r->p[from + i], r->len[from + i])) {
			fprintf(stderr, "    record %zu differs (len %zu, want %zu)\n", from + i, r->len[from + i], size(id));
			return 0;
		}
	}
	return 1;
}

/* Sync and wait (bounded) for the callback. */
typedef struct synced {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done, rc;
	char code[32];
} synced;

static void on_synced(int rc, const node_err *err, void *arg)
{
	synced *s = arg;
	pthread_mutex_lock(&s->mu);
	s->rc = rc;
	snprintf(s->code, sizeof s->code, "%s", rc != 0 && err ? err->code : "");
	s->done = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->mu);
}

#define SYNC_TIMEOUT (-999)

static int sync_wait(node_journal *j, char *code, size_t code_len)
{
	synced *s = calloc(1, sizeof *s);
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cv, NULL);
	node_journal_sync(j, on_synced, s);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&s->mu);
	while (!s->done && pthread_cond_timedwait(&s->cv, &s->mu, &until) == 0)
		;
	int done = s->done, rc = s->rc;
	if (code)
		snprintf(code, code_len, "%s", s->code);
	pthread_mutex_unlock(&s->mu);
	if (!done) {
		fprintf(stderr, "    sync callback did not come within 10 s\n");
		return SYNC_TIMEOUT; /* s leaks on purpose: the callback may still come */
	}
	pthread_mutex_destroy(&s->mu);
	pthread_cond_destroy(&s->cv);
	free(s);
	return rc;
}

/* Counting callbacks for fire-and-forget syncs. */
typedef struct counter {
	atomic_int issued, done, failed;
} counter;

static void on_count(int rc, const node_err *err, void *arg)
{
	counter *c = arg;
	if (rc != 0)
		atomic_fetch_add(&c->failed, 1);
	atomic_fetch_add(&c->done, 1);
}

static int wait_counter(counter *c, int secs)
{
	for (int i = 0; i < secs * 1000; i++) {
		if (atomic_load(&c->done) >= atomic_load(&c->issued))
			return 1;
		usleep(1000);
	}
	return atomic_load(&c->done) >= atomic_load(&c->issued);
}

static node_journal *open_j(const char *dir, int policy, size_t seg, recs *r, node_err *err)
{
	node_journal_cfg cfg = {.dir = dir, .fsync = policy, .batch_ms = 5, .segment_bytes = seg};
	node_journal *j = NULL;
	if (node_journal_open(&j, &cfg, collect, r, err) != 0) {
		fprintf(stderr, "    open %s: %s\n", dir, err->msg);
		return NULL;
	}
	return j;
}

/* ---- (1) replay after reopen ---- */

static size_t size_mixed(unsigned i)
{
	static const size_t sizes[] = {1, 5, 100, 1000, 4096, 65536, 1u << 20, (1u << 20) + 3, 17, 300};
	return sizes[i % 10];
}

UNIT_TEST(test_reopen_replays_in_order)
{
	char dir[64];
	make_tmpdir(dir, sizeof dir);
	node_err err = {0};
	recs r = {0};
	node_journal *j = open_j(dir, NODE_FSYNC_ALWAYS, 0, &r, &err);
	UNIT_CHECK(j != NULL && r.n == 0);
	if (j == NULL)
		goto out;
	enum { N = 40 };
	unsigned char *buf = malloc((1u << 20) + 3);
	for (unsigned i = 0; i < N; i++) {
		gen(i, buf, size_mixed(i));
		UNIT_CHECK(node_journal_append(j, buf, size_mixed(i), &err) == 0);
	}
	UNIT_CHECK(node_journal_append(j, buf, 0, &err) == NODE_ELIMIT); /* empty records are refused */
	UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
	node_journal_stats st;
	node_journal_stats_get(j, &st);
	UNIT_CHECK(st.records == N);
	UNIT_CHECK(st.syncs >= 1);
	node_journal_close(j);

	for (int round = 0; round < 2; round++) { /* replay twice: open must not change anything */
		j = open_j(dir, NODE_FSYNC_ALWAYS, 0, &r, &err);
		UNIT_CHECK(j != NULL);
		if (j == NULL)
			break;
		UNIT_CHECK(r.n == N);
		UNIT_CHECK(recs_match(&r, 0, 0, N, size_mixed));
		node_journal_stats_get(j, &st);
		UNIT_CHECK(st.recovered == N);
		UNIT_CHECK(st.cut_bytes == 0);
		node_journal_close(j);
		recs_free(&r);
	}
	free(buf);
out:
	recs_free(&r);
	rm_rf(dir);
}

/* ---- (2) every fsync policy, concurrent appenders ---- */

enum { THREADS = 4, PER_THREAD = 5000 };

typedef struct worker {
	node_journal *j;
	int id;
	counter *syncs;
	atomic_int *append_errors;
} worker;

static void *worker_main(void *arg)
{
	worker *w = arg;
	char rec[64];
	node_err err = {0};
	for (int i = 0; i < PER_THREAD; i++) {
		int n = snprintf(rec, sizeof rec, "t%d-%d", w->id, i);
		if (node_journal_append(w->j, rec, (size_t)n, &err) != 0)
			atomic_fetch_add(w->append_errors, 1);
		if (i % 10 == 9 || i == PER_THREAD - 1) {
			atomic_fetch_add(&w->syncs->issued, 1);
			node_journal_sync(w->j, on_count, w->syncs);
		}
		if (i % 250 == 249 && sync_wait(w->j, NULL, 0) != 0) /* now and then wait: many batches */
			atomic_fetch_add(w->append_errors, 1);
	}
	return NULL;
}

static void policy_run(int policy, const char *name)
{
	char dir[64];
	make_tmpdir(dir, sizeof dir);
	node_err err = {0};
	recs r = {0};
	node_journal *j = open_j(dir, policy, 256 << 10, &r, &err);
	UNIT_CHECK(j != NULL);
	if (j == NULL) {
		rm_rf(dir);
		return;
	}
	counter syncs = {0};
	atomic_int append_errors = 0;
	worker w[THREADS];
	pthread_t th[THREADS];
	double t0 = now_s();
	for (int i = 0; i < THREADS; i++) {
		w[i] = (worker){.j = j, .id = i, .syncs = &syncs, .append_errors = &append_errors};
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	UNIT_CHECK(wait_counter(&syncs, 20));
	double dt = now_s() - t0;
	UNIT_CHECK(atomic_load(&syncs.failed) == 0);
	UNIT_CHECK(atomic_load(&syncs.done) == THREADS * (PER_THREAD / 10));
	UNIT_CHECK(atomic_load(&append_errors) == 0);
	node_journal_stats st;
	node_journal_stats_get(j, &st);
	UNIT_CHECK(st.records == THREADS * PER_THREAD);
	if (policy == NODE_FSYNC_OFF)
		UNIT_CHECK(st.syncs == 0);
	else
		UNIT_CHECK(st.syncs >= 1);
	fprintf(stderr, "    %-6s %d records from %d threads, %d sync callbacks, %llu fsyncs: %.3f s\n", name,
	    THREADS * PER_THREAD, THREADS, atomic_load(&syncs.done), (unsigned long long)st.syncs, dt);
	node_journal_close(j);

	j = open_j(dir, policy, 256 << 10, &r, &err);
	UNIT_CHECK(j != NULL);
	UNIT_CHECK(r.n == THREADS * PER_THREAD);
	static unsigned char seen[THREADS][PER_THREAD];
	memset(seen, 0, sizeof seen);
	int next[THREADS] = {0};
	int bad = 0, dup = 0, order = 0;
	for (size_t k = 0; k < r.n; k++) {
		char text[64];
		int t, i, used = 0;
		size_t n = r.len[k] < sizeof text - 1 ? r.len[k] : sizeof text - 1;
		memcpy(text, r.p[k], n);
		text[n] = '\0';
		if (sscanf(text, "t%d-%d%n", &t, &i, &used) != 2 || (size_t)used != r.len[k] || t < 0 || t >= THREADS || i < 0 ||
		    i >= PER_THREAD) {
			bad++;
			continue;
		}
		if (seen[t][i]++)
			dup++;
		if (i != next[t])
			order++;
		next[t] = i + 1;
	}
	int missing = 0;
	for (int t = 0; t < THREADS; t++)
		for (int i = 0; i < PER_THREAD; i++)
			missing += !seen[t][i];
	UNIT_CHECK(bad == 0);
	UNIT_CHECK(dup == 0);
	UNIT_CHECK(missing == 0);
	UNIT_CHECK(order == 0); /* each thread's records in its own order */
	if (j)
		node_journal_close(j);
	recs_free(&r);
	rm_rf(dir);
}

UNIT_TEST(test_policies_concurrent)
{
	policy_run(NODE_FSYNC_ALWAYS, "always");
	policy_run(NODE_FSYNC_BATCH, "batch");
	policy_run(NODE_FSYNC_OFF, "off");
}

/* ---- (3) torn and corrupt tails ---- */

static size_t size_small(unsigned i)
{
	return 10 + (i * 37u) % 300;
}

static void put_range(node_journal *j, unsigned from, unsigned to)
{
	unsigned char buf[512];
	node_err err = {0};
	for (unsigned i = from; i < to; i++) {
		gen(i, buf, size_small(i));
		UNIT_CHECK(node_journal_append(j, buf, size_small(i), &err) == 0);
	}
}

/* Write records [0, 100), damage the single segment with fn, and check the cut. */
static void torn_case(const char *label, void (*damage)(const char *path, long long size, long long *cut, unsigned *kept))
{
	char dir[64];
	make_tmpdir(dir, sizeof dir);
	node_err err = {0};
	recs r = {0};
	node_journal *j = open_j(dir, NODE_FSYNC_ALWAYS, 0, &r, &err);
	UNIT_CHECK(j != NULL);
	if (j == NULL) {
		rm_rf(dir);
		return;
	}
	put_range(j, 0, 100);
	UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
	node_journal_close(j);

	dirinfo di = scan_dir(dir);
	UNIT_CHECK(di.segments == 1);
	char path[4096];
	seg_name(dir, "journal", di.seg_max, path, sizeof path);
	long long size = file_size(path);
	long long cut = 0;
	unsigned kept = 100;
	damage(path, size, &cut, &kept);
	long long good = size - (long long)(100 - kept) * 8;
	for (unsigned i = kept; i < 100; i++)
		good -= (long long)size_small(i);

	j = open_j(dir, NODE_FSYNC_ALWAYS, 0, &r, &err);
	UNIT_CHECK(j != NULL);
	if (j == NULL) {
		fprintf(stderr, "    (%s)\n", label);
		recs_free(&r);
		rm_rf(dir);
		return;
	}
	int ok = r.n == kept && recs_match(&r, 0, 0, kept, size_small);
	UNIT_CHECK(ok);
	node_journal_stats st;
	node_journal_stats_get(j, &st);
	UNIT_CHECK(st.cut_bytes > 0);
	UNIT_CHECK((long long)st.cut_bytes == cut);
	UNIT_CHECK(st.recovered == kept);
	UNIT_CHECK(file_size(path) == good); /* cut back to the last good record */
	if (!ok || (long long)st.cut_bytes != cut)
		fprintf(stderr, "    (%s: replayed %zu, want %u; cut %llu, want %lld)\n", label, r.n, kept,
		    (unsigned long long)st.cut_bytes, cut);
	recs_free(&r);
	/* Appends after the cut land right behind the last good record. */
	put_range(j, kept, kept + 10);
	UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
	node_journal_close(j);

	j = open_j(dir, NODE_FSYNC_ALWAYS, 0, &r, &err);
	UNIT_CHECK(j != NULL);
	UNIT_CHECK(r.n == kept + 10 && recs_match(&r, 0, 0, kept + 10, size_small));
	if (j) {
		node_journal_stats_get(j, &st);
		UNIT_CHECK(st.cut_bytes == 0);
		node_journal_close(j);
	}
	recs_free(&r);
	rm_rf(dir);
}

static void damage_garbage(const char *path, long long size, long long *cut, unsigned *kept)
{
	/* A header that promises 1000 bytes, then only 10 of them. */
	unsigned char g[18] = {0xe8, 0x03, 0, 0, 0x12, 0x34, 0x56, 0x78, 'p', 'a', 'r', 't', 'i', 'a', 'l', '.', '.', '.'};
	append_bytes(path, g, sizeof g);
	*cut = sizeof g;
}

static void damage_short_header(const char *path, long long size, long long *cut, unsigned *kept)
{
	append_bytes(path, "\x05\x00\x00", 3); /* less than a header */
	*cut = 3;
}

static void damage_zeros(const char *path, long long size, long long *cut, unsigned *kept)
{
	/* A crash can leave the file longer than the data written: zeros. */
	unsigned char z[64] = {0};
	append_bytes(path, z, sizeof z);
	*cut = sizeof z;
}

static void damage_flip_last(const char *path, long long size, long long *cut, unsigned *kept)
{
	flip_byte(path, size - 3); /* inside the last record's bytes */
	*kept = 99;
	*cut = 8 + (long long)size_small(99);
}

static void damage_flip_len(const char *path, long long size, long long *cut, unsigned *kept)
{
	/* The length field of the last record. */
	long long at = size - (long long)size_small(99) - 8;
	flip_byte(path, at + 1);
	*kept = 99;
	*cut = 8 + (long long)size_small(99);
}

UNIT_TEST(test_torn_tail)
{
	torn_case("garbage", damage_garbage);
	torn_case("short header", damage_short_header);
	torn_case("zeros", damage_zeros);
	torn_case("flipped byte", damage_flip_last);
	torn_case("flipped length", damage_flip_len);
}

/* Damage in an early segment: everything from there on is kept out (later
 * segments moved aside), and the journal still opens the next time. */
UNIT_TEST(test_damaged_middle_segment)
{
	char dir[64];
	make_tmpdir(dir, sizeof dir);
	node_err err = {0};
	recs r = {0};
	node_journal *j = open_j(dir, NODE_FSYNC_OFF, 4096, &r, &err);
	UNIT_CHECK(j != NULL);
	if (j == NULL) {
		rm_rf(dir);
		return;
	}
	for (unsigned i = 0; i < 300; i += 10) { /* sync often so segments cut near 4096 */
		put_range(j, i, i + 10);
		UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
	}
	node_journal_close(j);
	dirinfo di = scan_dir(dir);
	UNIT_CHECK(di.segments >= 4);
	char path[4096];
	seg_name(dir, "journal", di.seg_min + 1, path, sizeof path);
	flip_byte(path, file_size(path) - 2);

	j = open_j(dir, NODE_FSYNC_OFF, 4096, &r, &err);
	UNIT_CHECK(j != NULL);
	size_t kept = r.n;
	UNIT_CHECK(kept > 0 && kept < 300);
	UNIT_CHECK(recs_match(&r, 0, 0, kept, size_small));
	recs_free(&r);
	if (j) {
		put_range(j, 1000, 1010);
		UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
		node_journal_close(j);
	}
	/* The moved-aside segments must not confuse the next open. */
	j = open_j(dir, NODE_FSYNC_OFF, 4096, &r, &err);
	UNIT_CHECK(j != NULL);
	UNIT_CHECK(r.n == kept + 10);
	UNIT_CHECK(recs_match(&r, 0, 0, kept, size_small) && recs_match(&r, kept, 1000, 10, size_small));
	if (j)
		node_journal_close(j);
	recs_free(&r);
	rm_rf(dir);
}

/* Files a crash can leave behind: a half-written snapshot, a moved-aside segment. */
UNIT_TEST(test_leftover_files_ignored)
{
	char dir[64];
	make_tmpdir(dir, sizeof dir);
	node_err err = {0};
	recs r = {0};
	node_journal *j = open_j(dir, NODE_FSYNC_ALWAYS, 0, &r, &err);
	UNIT_CHECK(j != NULL);
	if (j == NULL) {
		rm_rf(dir);
		return;
	}
	put_range(j, 0, 20);
	UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
	node_journal_close(j);
	char path[4096];
	snprintf(path, sizeof path, "%s/snapshot-000000000007.log.tmp", dir);
	FILE *f = fopen(path, "w");
	if (f) {
		fputs("half a snapshot", f);
		fclose(f);
	}
	snprintf(path, sizeof path, "%s/journal-000000000009.log.damaged", dir);
	f = fopen(path, "w");
	if (f) {
		fputs("moved aside", f);
		fclose(f);
	}
	j = open_j(dir, NODE_FSYNC_ALWAYS, 0, &r, &err);
	UNIT_CHECK(j != NULL);
	UNIT_CHECK(r.n == 20 && recs_match(&r, 0, 0, 20, size_small));
	if (j)
		node_journal_close(j);
	recs_free(&r);
	rm_rf(dir);
}

/* ---- (4) rotation ---- */

UNIT_TEST(test_rotation)
{
	char dir[64];
	make_tmpdir(dir, sizeof dir);
	node_err err = {0};
	recs r = {0};
	node_journal *j = open_j(dir, NODE_FSYNC_ALWAYS, 4096, &r, &err);
	UNIT_CHECK(j != NULL);
	if (j == NULL) {
		rm_rf(dir);
		return;
	}
	enum { N = 2000 };
	for (unsigned i = 0; i < N; i += 20) {
		put_range(j, i, i + 20);
		UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
	}
	node_journal_close(j);
	dirinfo di = scan_dir(dir);
	UNIT_CHECK(di.segments >= 50);
	UNIT_CHECK(di.snapshots == 0 && di.tmps == 0 && di.others == 0);
	UNIT_CHECK(di.seg_max - di.seg_min + 1 == (unsigned long long)di.segments); /* no gaps */
	fprintf(stderr, "    %d segments for %d records\n", di.segments, N);

	j = open_j(dir, NODE_FSYNC_ALWAYS, 4096, &r, &err);
	UNIT_CHECK(j != NULL);
	UNIT_CHECK(r.n == N && recs_match(&r, 0, 0, N, size_small));
	recs_free(&r);
	if (j) {
		put_range(j, N, N + 100);
		UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
		node_journal_close(j);
	}
	j = open_j(dir, NODE_FSYNC_ALWAYS, 4096, &r, &err);
	UNIT_CHECK(j != NULL);
	UNIT_CHECK(r.n == N + 100 && recs_match(&r, 0, 0, N + 100, size_small));
	if (j)
		node_journal_close(j);
	recs_free(&r);
	rm_rf(dir);
}

/* ---- (5) compaction ---- */

enum { KEYS = 200 };

typedef struct kvmap {
	pthread_mutex_t mu;
	int val[KEYS];
	unsigned char set[KEYS];
	node_journal *j;
	unsigned seq;
	atomic_int stop, errors, snap_calls;
	counter syncs;
	size_t puts;
} kvmap;

static int kv_apply(const void *rec, size_t len, void *arg)
{
	kvmap *m = arg;
	char text[64];
	int k, v, used = 0;
	if (len >= sizeof text)
		return -1;
	memcpy(text, rec, len);
	text[len] = '\0';
	if (sscanf(text, "k%d=%d%n", &k, &v, &used) != 2 || (size_t)used != len || k < 0 || k >= KEYS)
		return -1;
	m->val[k] = v;
	m->set[k] = 1;
	return 0;
}

/* Update the map and journal it under the map's lock, so a snapshot taken
 * under the same lock holds every record written before it. */
static void kv_put(kvmap *m)
{
	node_err err = {0};
	char rec[64];
	pthread_mutex_lock(&m->mu);
	unsigned s = m->seq++;
	int k = (int)((s * 7919u) % KEYS), v = (int)s;
	m->val[k] = v;
	m->set[k] = 1;
	int n = snprintf(rec, sizeof rec, "k%d=%d", k, v);
	if (node_journal_append(m->j, rec, (size_t)n, &err) != 0)
		atomic_fetch_add(&m->errors, 1);
	m->puts++;
	pthread_mutex_unlock(&m->mu);
	if (s % 20 == 19) {
		atomic_fetch_add(&m->syncs.issued, 1);
		node_journal_sync(m->j, on_count, &m->syncs);
	}
}

static int kv_snapshot(node_journal *j, void *arg)
{
	kvmap *m = arg;
	node_err err = {0};
	int rc = 0;
	atomic_fetch_add(&m->snap_calls, 1);
	pthread_mutex_lock(&m->mu);
	for (int k = 0; k < KEYS && rc == 0; k++) {
		if (!m->set[k])
			continue;
		char rec[64];
		int n = snprintf(rec, sizeof rec, "k%d=%d", k, m->val[k]);
		rc = node_journal_snapshot_put(j, rec, (size_t)n, &err);
	}
	pthread_mutex_unlock(&m->mu);
	usleep(20000); /* a slow snapshot: appends keep piling up meanwhile */
	return rc;
}

static void *kv_writer(void *arg)
{
	kvmap *m = arg;
	for (int i = 0; i < 200000 && !atomic_load(&m->stop); i++) {
		kv_put(m);
		if (i % 100 == 99)
			usleep(200);
	}
	return NULL;
}

static node_journal *kv_open(const char *dir, kvmap *m, node_err *err)
{
	node_journal_cfg cfg = {.dir = dir, .fsync = NODE_FSYNC_BATCH, .batch_ms = 5, .segment_bytes = 4096};
	node_journal *j = NULL;
	if (node_journal_open(&j, &cfg, kv_apply, m, err) != 0) {
		fprintf(stderr, "    open %s: %s\n", dir, err->msg);
		return NULL;
	}
	m->j = j;
	return j;
}

static int wait_compactions(node_journal *j, uint64_t want)
{
	node_journal_stats st;
	for (int i = 0; i < 5000; i++) {
		node_journal_stats_get(j, &st);
		if (st.compactions >= want)
			return 1;
		usleep(1000);
	}
	return 0;
}

static int kv_same(const kvmap *a, const kvmap *b)
{
	for (int k = 0; k < KEYS; k++)
		if (a->set[k] != b->set[k] || (a->set[k] && a->val[k] != b->val[k]))
			return 0;
	return 1;
}

UNIT_TEST(test_compaction)
{
	char dir[64];
	make_tmpdir(dir, sizeof dir);
	node_err err = {0};
	static kvmap m, back;
	memset(&m, 0, sizeof m);
	pthread_mutex_init(&m.mu, NULL);
	node_journal *j = kv_open(dir, &m, &err);
	UNIT_CHECK(j != NULL);
	if (j == NULL) {
		rm_rf(dir);
		return;
	}
	for (int i = 0; i < 3000; i++) {
		kv_put(&m);
		if (i % 100 == 99) /* BATCH writes only when asked: ask often, for many segments */
			UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
	}
	UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
	dirinfo before = scan_dir(dir);
	UNIT_CHECK(before.segments >= 10);

	pthread_t th;
	pthread_create(&th, NULL, kv_writer, &m);
	usleep(20000);
	node_journal_compact(j, kv_snapshot, &m);
	UNIT_CHECK(wait_compactions(j, 1));
	usleep(30000); /* appends continue after the snapshot */
	atomic_store(&m.stop, 1);
	pthread_join(th, NULL);
	UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
	UNIT_CHECK(wait_counter(&m.syncs, 10));
	UNIT_CHECK(atomic_load(&m.syncs.failed) == 0);
	UNIT_CHECK(atomic_load(&m.errors) == 0);
	UNIT_CHECK(atomic_load(&m.snap_calls) == 1);
	node_journal_stats st;
	node_journal_stats_get(j, &st);
	UNIT_CHECK(st.compactions == 1);
	node_journal_close(j);

	dirinfo di = scan_dir(dir);
	UNIT_CHECK(di.snapshots == 1);
	UNIT_CHECK(di.tmps == 0);
	UNIT_CHECK(di.segments >= 1 && di.seg_min >= di.snap_max); /* nothing below the snapshot is left */
	UNIT_CHECK(di.snap_max > before.seg_max);                  /* the snapshot covers every older segment */
	fprintf(stderr, "    %zu puts; before: %d segments; after: snapshot %llu + %d segments\n", m.puts, before.segments,
	    di.snap_max, di.segments);

	memset(&back, 0, sizeof back);
	pthread_mutex_init(&back.mu, NULL);
	j = kv_open(dir, &back, &err);
	UNIT_CHECK(j != NULL);
	UNIT_CHECK(kv_same(&m, &back));
	if (j) {
		node_journal_stats_get(j, &st);
		UNIT_CHECK(st.recovered < m.puts); /* the snapshot replaced most of the log */
		UNIT_CHECK(st.cut_bytes == 0);
		/* A second compaction replaces the first snapshot. */
		back.seq = m.seq;
		for (int i = 0; i < 500; i++)
			kv_put(&back);
		node_journal_compact(j, kv_snapshot, &back);
		UNIT_CHECK(wait_compactions(j, 1));
		for (int i = 0; i < 100; i++)
			kv_put(&back);
		UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
		UNIT_CHECK(wait_counter(&back.syncs, 10));
		node_journal_close(j);
	}
	dirinfo di2 = scan_dir(dir);
	UNIT_CHECK(di2.snapshots == 1 && di2.snap_max > di.snap_max);
	UNIT_CHECK(di2.seg_min >= di2.snap_max);
	static kvmap again;
	memset(&again, 0, sizeof again);
	pthread_mutex_init(&again.mu, NULL);
	j = kv_open(dir, &again, &err);
	UNIT_CHECK(j != NULL);
	UNIT_CHECK(kv_same(&back, &again));
	if (j)
		node_journal_close(j);
	pthread_mutex_destroy(&m.mu);
	pthread_mutex_destroy(&back.mu);
	pthread_mutex_destroy(&again.mu);
	rm_rf(dir);
}

/* ---- (6) simulated full disk ---- */

static void append_text(node_journal *j, const char *text, int want_rc, const char *want_code)
{
	node_err err = {0};
	int rc = node_journal_append(j, text, strlen(text), &err);
	UNIT_CHECK(rc == want_rc);
	if (want_code)
		UNIT_CHECK(strcmp(err.code, want_code) == 0);
}

static void disk_full_run(int policy, int rounds)
{
	char dir[64];
	make_tmpdir(dir, sizeof dir);
	node_err err = {0};
	recs r = {0};
	node_journal *j = open_j(dir, policy, 0, &r, &err);
	UNIT_CHECK(j != NULL);
	if (j == NULL) {
		rm_rf(dir);
		return;
	}
	char text[64], code[32];
	int good = 0, acked_bad = 0;
	for (int i = 0; i < 5; i++) {
		snprintf(text, sizeof text, "good-%d", good++);
		append_text(j, text, 0, NULL);
	}
	UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
	for (int round = 0; round < rounds; round++) {
		node_journal_fail_writes(j, 1);
		snprintf(text, sizeof text, "bad-%d", round);
		append_text(j, text, 0, NULL); /* accepted: nothing has failed yet */
		int rc = sync_wait(j, code, sizeof code);
		UNIT_CHECK(rc != 0 && rc != SYNC_TIMEOUT);
		UNIT_CHECK(strcmp(code, NODE_ERR_DISK_FULL) == 0);
		if (rc == 0)
			acked_bad++;
		append_text(j, "refused", NODE_ELIMIT, NODE_ERR_DISK_FULL);
		/* A commit with nothing new to write is no write that succeeded:
		 * it must not end the full state, nor confirm anything. */
		rc = sync_wait(j, code, sizeof code);
		UNIT_CHECK(rc != 0 && strcmp(code, NODE_ERR_DISK_FULL) == 0);
		append_text(j, "refused", NODE_ELIMIT, NODE_ERR_DISK_FULL);
		node_journal_fail_writes(j, 0);
		snprintf(text, sizeof text, "good-%d", good++);
		append_text(j, text, 0, NULL);
		UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
	}
	if (acked_bad)
		fprintf(stderr, "    %d failed writes were confirmed as durable\n", acked_bad);
	node_journal_close(j);

	j = open_j(dir, policy, 0, &r, &err);
	UNIT_CHECK(j != NULL);
	UNIT_CHECK(r.n == (size_t)good);
	int in_order = 1;
	for (size_t k = 0; k < r.n; k++) {
		snprintf(text, sizeof text, "good-%zu", k);
		if (r.len[k] != strlen(text) || memcmp(r.p[k], text, r.len[k]) != 0)
			in_order = 0;
	}
	UNIT_CHECK(in_order);
	if (j)
		node_journal_close(j);
	recs_free(&r);
	rm_rf(dir);
}

UNIT_TEST(test_disk_full_simulated)
{
	disk_full_run(NODE_FSYNC_ALWAYS, 60);
	disk_full_run(NODE_FSYNC_OFF, 60);
	disk_full_run(NODE_FSYNC_BATCH, 20);
}

/* ---- (7) the directory lock ---- */

UNIT_TEST(test_dir_lock)
{
	char dir[64];
	make_tmpdir(dir, sizeof dir);
	node_err err = {0};
	recs r = {0};
	node_journal *j = open_j(dir, NODE_FSYNC_ALWAYS, 0, &r, &err);
	UNIT_CHECK(j != NULL);
	if (j == NULL) {
		rm_rf(dir);
		return;
	}
	put_range(j, 0, 5);
	UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
	node_journal_cfg cfg = {.dir = dir, .fsync = NODE_FSYNC_ALWAYS};
	node_journal *j2 = NULL;
	recs r2 = {0};
	node_err err2 = {0};
	UNIT_CHECK(node_journal_open(&j2, &cfg, collect, &r2, &err2) != 0);
	UNIT_CHECK(strstr(err2.msg, "in use by another process") != NULL);
	UNIT_CHECK(r2.n == 0); /* nothing replayed into the loser */
	node_journal_close(j);
	j = open_j(dir, NODE_FSYNC_ALWAYS, 0, &r, &err); /* free again once closed */
	UNIT_CHECK(j != NULL);
	UNIT_CHECK(r.n == 5);
	if (j)
		node_journal_close(j);
	recs_free(&r);
	recs_free(&r2);
	rm_rf(dir);
}

/* ---- (8) a real full disk on a 16 MiB tmpfs ---- */

static unsigned long long free_bytes(const char *path)
{
	struct statvfs sv;
	if (statvfs(path, &sv) != 0)
		return 0;
	return (unsigned long long)sv.f_bavail * sv.f_frsize;
}

UNIT_TEST(test_disk_full_real)
{
	if (geteuid() != 0) {
		fprintf(stderr, "    skipped: not running as root, cannot mount a tmpfs\n");
		return;
	}
	char mnt[64];
	make_tmpdir(mnt, sizeof mnt);
	if (mount("tmpfs", mnt, "tmpfs", 0, "size=16m") != 0) {
		fprintf(stderr, "    skipped: mount -t tmpfs not permitted: %s\n", strerror(errno));
		rmdir(mnt);
		return;
	}
	char dir[128], filler[128];
	snprintf(dir, sizeof dir, "%s/journal", mnt);
	snprintf(filler, sizeof filler, "%s/filler", mnt);
	node_err err = {0};
	recs r = {0};
	node_journal *j = open_j(dir, NODE_FSYNC_ALWAYS, 0, &r, &err);
	UNIT_CHECK(j != NULL);
	if (j == NULL)
		goto out;

	/* Fill the disk until less than 100 KiB are free. */
	int fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	UNIT_CHECK(fd >= 0);
	static char chunk[64 << 10];
	memset(chunk, 'f', sizeof chunk);
	while (fd >= 0 && free_bytes(mnt) >= (100u << 10) + sizeof chunk)
		if (write(fd, chunk, sizeof chunk) != (ssize_t)sizeof chunk)
			break;
	if (fd >= 0)
		close(fd);
	unsigned long long left = free_bytes(mnt);
	UNIT_CHECK(left < (100u << 10) + sizeof chunk);

	/* Write 1 KiB records, each committed, until the disk says no. */
	unsigned char rec[1024];
	unsigned ok = 0, failed_at = 0;
	char code[32] = "";
	int rc = 0;
	for (unsigned i = 0; i < 2000; i++) {
		gen(i, rec, sizeof rec);
		if (node_journal_append(j, rec, sizeof rec, &err) != 0) {
			UNIT_CHECK(0); /* refused before any sync failed */
			break;
		}
		rc = sync_wait(j, code, sizeof code);
		if (rc != 0) {
			failed_at = i;
			break;
		}
		ok++;
	}
	UNIT_CHECK(rc != 0 && rc != SYNC_TIMEOUT);
	UNIT_CHECK(strcmp(code, NODE_ERR_DISK_FULL) == 0);
	fprintf(stderr, "    %u records of 1 KiB fit in %llu KiB free; record %u failed: %s\n", ok, left >> 10, failed_at, code);
	gen(failed_at, rec, sizeof rec);
	UNIT_CHECK(node_journal_append(j, rec, sizeof rec, &err) == NODE_ELIMIT);
	UNIT_CHECK(strcmp(err.code, NODE_ERR_DISK_FULL) == 0);

	/* Free space: within a few seconds the journal takes writes again. */
	UNIT_CHECK(unlink(filler) == 0);
	double t0 = now_s(), took = -1;
	while (now_s() - t0 < 5.0) {
		if (node_journal_append(j, rec, sizeof rec, &err) != 0) {
			UNIT_CHECK(strcmp(err.code, NODE_ERR_DISK_FULL) == 0);
			usleep(50000);
			continue;
		}
		rc = sync_wait(j, code, sizeof code);
		UNIT_CHECK(rc == 0);
		if (rc == 0)
			took = now_s() - t0;
		break;
	}
	UNIT_CHECK(took >= 0);
	fprintf(stderr, "    writes accepted again %.2f s after the filler was removed\n", took);
	if (took >= 0) {
		ok++; /* record failed_at, written now */
		for (unsigned i = failed_at + 1; i < failed_at + 20; i++, ok++) {
			gen(i, rec, sizeof rec);
			UNIT_CHECK(node_journal_append(j, rec, sizeof rec, &err) == 0);
		}
		UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
	}
	node_journal_close(j);

	/* Every committed record is there, the failed one exactly once (it was
	 * cut off the file when its write failed and written again later). */
	j = open_j(dir, NODE_FSYNC_ALWAYS, 0, &r, &err);
	UNIT_CHECK(j != NULL);
	UNIT_CHECK(r.n == ok);
	int same = 1;
	for (size_t k = 0; k < r.n; k++)
		if (r.len[k] != sizeof rec || !matches((unsigned)k, r.p[k], r.len[k]))
			same = 0;
	UNIT_CHECK(same);
	if (j)
		node_journal_close(j);
out:
	recs_free(&r);
	rm_rf(dir);
	unlink(filler);
	if (umount(mnt) != 0)
		fprintf(stderr, "    umount %s: %s\n", mnt, strerror(errno));
	rmdir(mnt);
}

/* ---- measurements (printed, not asserted) ---- */

typedef struct bench {
	node_journal *j;
	double until;
	long commits;
} bench;

static void *bench_main(void *arg)
{
	bench *b = arg;
	unsigned char rec[100];
	memset(rec, 'b', sizeof rec);
	node_err err = {0};
	while (now_s() < b->until) {
		if (node_journal_append(b->j, rec, sizeof rec, &err) != 0)
			break;
		if (sync_wait(b->j, NULL, 0) != 0)
			break;
		b->commits++;
	}
	return NULL;
}

typedef struct replay_count {
	unsigned n, bad;
} replay_count;

static int count_replay(const void *p, size_t len, void *arg)
{
	replay_count *c = arg;
	unsigned id;
	if (len != 100) {
		c->bad++;
		return 0;
	}
	memcpy(&id, p, sizeof id);
	if (id != c->n)
		c->bad++;
	c->n++;
	return 0;
}

UNIT_TEST(test_measure)
{
	static const struct {
		int policy;
		const char *name;
	} pol[] = {{NODE_FSYNC_OFF, "off"}, {NODE_FSYNC_BATCH, "batch 5ms"}, {NODE_FSYNC_ALWAYS, "always"}};
	for (int p = 0; p < 3; p++) {
		char dir[64];
		make_tmpdir(dir, sizeof dir);
		node_err err = {0};
		recs r = {0};
		node_journal *j = open_j(dir, pol[p].policy, 0, &r, &err);
		UNIT_CHECK(j != NULL);
		if (j == NULL) {
			rm_rf(dir);
			continue;
		}
		bench b[2];
		pthread_t th[2];
		double t0 = now_s();
		for (int i = 0; i < 2; i++) {
			b[i] = (bench){.j = j, .until = t0 + 1.0};
			pthread_create(&th[i], NULL, bench_main, &b[i]);
		}
		for (int i = 0; i < 2; i++)
			pthread_join(th[i], NULL);
		double dt = now_s() - t0;
		node_journal_stats st;
		node_journal_stats_get(j, &st);
		long total = b[0].commits + b[1].commits;
		fprintf(stderr, "    append+sync (wait for each), 2 threads, fsync %-9s: %8.0f commits/s, %llu fsyncs, avg fsync %.0f us, max %llu us\n",
		    pol[p].name, total / dt, (unsigned long long)st.syncs, st.syncs ? (double)st.sync_us_total / (double)st.syncs : 0.0,
		    (unsigned long long)st.sync_us_max);
		node_journal_close(j);
		rm_rf(dir);
	}

	/* Replay speed: 1,000,000 records of 100 bytes. */
	char dir[64];
	make_tmpdir(dir, sizeof dir);
	node_err err = {0};
	recs r = {0};
	node_journal *j = open_j(dir, NODE_FSYNC_OFF, 0, &r, &err);
	UNIT_CHECK(j != NULL);
	if (j == NULL) {
		rm_rf(dir);
		return;
	}
	enum { M = 1000000 };
	unsigned char rec[100];
	memset(rec, 'r', sizeof rec);
	double t0 = now_s();
	for (unsigned i = 0; i < M; i++) {
		memcpy(rec, &i, sizeof i);
		if (node_journal_append(j, rec, sizeof rec, &err) != 0) {
			UNIT_CHECK(0);
			break;
		}
		if (i % 100000 == 99999) /* keep the writer's buffer bounded */
			UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
	}
	UNIT_CHECK(sync_wait(j, NULL, 0) == 0);
	double wt = now_s() - t0;
	node_journal_close(j);
	replay_count cnt = {0};
	node_journal_cfg cfg = {.dir = dir, .fsync = NODE_FSYNC_OFF};
	t0 = now_s();
	j = NULL;
	UNIT_CHECK(node_journal_open(&j, &cfg, count_replay, &cnt, &err) == 0);
	double rt = now_s() - t0;
	UNIT_CHECK(cnt.n == M && cnt.bad == 0);
	fprintf(stderr, "    wrote %d records of 100 bytes (fsync off) in %.2f s: %.0f records/s\n", M, wt, M / wt);
	fprintf(stderr, "    replayed %u records in %.2f s: %.0f records/s\n", cnt.n, rt, cnt.n / rt);
	if (j)
		node_journal_close(j);
	rm_rf(dir);
}

int main(void)
{
	node_err err = {0};
	node_log_configure("error", NULL, &err);
	UNIT_RUN(test_reopen_replays_in_order);
	UNIT_RUN(test_policies_concurrent);
	UNIT_RUN(test_torn_tail);
	UNIT_RUN(test_damaged_middle_segment);
	UNIT_RUN(test_leftover_files_ignored);
	UNIT_RUN(test_rotation);
	UNIT_RUN(test_compaction);
	UNIT_RUN(test_disk_full_simulated);
	UNIT_RUN(test_dir_lock);
	UNIT_RUN(test_disk_full_real);
	UNIT_RUN(test_measure);
	return unit_finish("journal");
}
