/* The broker's journal alone (modules/core/journal.c), no broker, no
 * transport: how many records/s it takes with fsync off, batch (batch_ms 5,
 * the broker's default) and always, in two shapes:
 *   - one record per commit: 2 threads, each appends a 100-byte record and
 *     waits for its commit, again and again (one-at-a-time submits);
 *   - 1000 records per commit: 1 thread appends 1000 records and waits for
 *     the commit (a batch submit of 1000 tasks).
 * Each row runs BENCH_SECONDS (default 1) in a fresh directory under $TMPDIR
 * (or /tmp), which is removed afterwards. Also prints what fdatasync costs
 * there (the journal's own counters). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/journal.h"
#include "core/log.h"

#define REC 100

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

typedef struct waiter {
	pthread_mutex_t m;
	pthread_cond_t cv;
	int done, rc;
} waiter;

static void on_sync(int rc, const node_err *err, void *arg)
{
	waiter *w = arg;
	pthread_mutex_lock(&w->m);
	w->done = 1;
	w->rc = rc;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->m);
}

static int sync_wait(node_journal *j)
{
	waiter w = {.m = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};
	node_journal_sync(j, on_sync, &w);
	pthread_mutex_lock(&w.m);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.m);
	pthread_mutex_unlock(&w.m);
	return w.rc;
}

typedef struct run {
	node_journal *j;
	double until;
	int per_commit;
	long records, commits;
	int failed;
} run;

static void *run_main(void *arg)
{
	run *r = arg;
	unsigned char rec[REC];
	memset(rec, 'j', sizeof rec);
	node_err err = {0};
	while (now_s() < r->until) {
		for (int i = 0; i < r->per_commit; i++) {
			if (node_journal_append(r->j, rec, sizeof rec, &err) != 0) {
				fprintf(stderr, "bench_journal: %s\n", err.msg);
				r->failed = 1;
				return NULL;
			}
		}
		if (sync_wait(r->j) != 0) {
			r->failed = 1;
			return NULL;
		}
		r->records += r->per_commit;
		r->commits++;
	}
	return NULL;
}

static int noop_replay(const void *rec, size_t len, void *arg)
{
	return 0;
}

static void rm_rf(const char *dir)
{
	char cmd[4200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "bench_journal: could not remove %s\n", dir);
}

int main(void)
{
	node_err err = {0};
	node_log_configure("error", NULL, &err);
	double secs = getenv("BENCH_SECONDS") ? atof(getenv("BENCH_SECONDS")) : 1.0;
	if (secs <= 0)
		secs = 1.0;
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	static const struct {
		int policy;
		const char *name;
	} pol[] = {{NODE_FSYNC_OFF, "off"}, {NODE_FSYNC_BATCH, "batch"}, {NODE_FSYNC_ALWAYS, "always"}};
	static const struct {
		int threads, per_commit;
	} shape[] = {{2, 1}, {1, 1000}};
	int status = 0;
	printf("journal alone, %d-byte records, %.1f s per row, in %s\n", REC, secs, tmp);
	printf("  fsync   shape                        records/s   commits/s   fsyncs  avg fsync us  max fsync us\n");
	for (int s = 0; s < 2; s++) {
		for (int p = 0; p < 3; p++) {
			char dir[4096];
			snprintf(dir, sizeof dir, "%s/node-bench-journal.XXXXXX", tmp);
			if (mkdtemp(dir) == NULL) {
				perror("bench_journal: mkdtemp");
				return 1;
			}
			node_journal_cfg cfg = {.dir = dir, .fsync = pol[p].policy, .batch_ms = 5, .segment_bytes = 64u << 20};
			node_journal *j = NULL;
			if (node_journal_open(&j, &cfg, noop_replay, NULL, &err) != 0) {
				fprintf(stderr, "bench_journal: %s\n", err.msg);
				rm_rf(dir);
				return 1;
			}
			run r[2];
			pthread_t th[2];
			double t0 = now_s();
			for (int i = 0; i < shape[s].threads; i++) {
				r[i] = (run){.j = j, .until = t0 + secs, .per_commit = shape[s].per_commit};
				pthread_create(&th[i], NULL, run_main, &r[i]);
			}
			long records = 0, commits = 0;
			for (int i = 0; i < shape[s].threads; i++) {
				pthread_join(th[i], NULL);
				records += r[i].records;
				commits += r[i].commits;
				status |= r[i].failed;
			}
			double dt = now_s() - t0;
			node_journal_stats st;
			node_journal_stats_get(j, &st);
			char what[64];
			snprintf(what, sizeof what, "%d thread%s x %d rec/commit", shape[s].threads, shape[s].threads > 1 ? "s" : "",
			    shape[s].per_commit);
			printf("  %-7s %-26s %11.0f %11.0f %8llu %13.0f %13llu\n", pol[p].name, what, records / dt, commits / dt,
			    (unsigned long long)st.syncs, st.syncs ? (double)st.sync_us_total / (double)st.syncs : 0.0,
			    (unsigned long long)st.sync_us_max);
			node_journal_close(j);
			rm_rf(dir);
		}
	}
	return status;
}
