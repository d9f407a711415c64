/* bench_chan: what a networked CSP channel (<node/csp.h> over a running
 * `node chanhost`) costs next to a bare nng REQ/REP pair of the same message
 * size, and how fast a buffered channel streams batches. A benchmark: it
 * prints numbers and fails only when its own machinery breaks.
 *
 *   bench_chan HOST_URL                 tests/bench/chan.sh starts the host
 *   bench_chan serve                    internal: the bare REP server
 *   bench_chan reader URL CHAN MAX      internal: a reader child process
 *
 * Rows, every process apart (writer here; reader, bare server and the host
 * are child or separate processes), tcp on 127.0.0.1:
 *   a. bare REQ/REP round trips, one at a time, ~100-byte requests
 *   b. rendezvous writes/s: csp_write of one small value at a time, the
 *      reader child csp_read one at a time; ratio to (a). (a) and (b) take
 *      turns for BENCH_ROUNDS (5) rounds, each slice at most BENCH_CALLS
 *      (20000) calls and BENCH_SECONDS (1) seconds; medians printed.
 *   c. buffered channel (capacity 10000, made with chan.create): csp_write_many
 *      of 100-byte JSON strings in batches of 500, 1000 and 2000, the reader
 *      child csp_read_many(max 10000); BENCH_LINES (500000) values per run,
 *      at most 3 x BENCH_SECONDS, timed from the first write to the reader's
 *      last value; messages/s and MB/s of values, median of 3 runs.
 * BENCH_ONLY=ab or c runs one part (for a profiler).
 * Children are started with posix_spawn of /proc/self/exe (nng is not
 * fork-safe) and reaped by pid; the bare server and the spawning are shared
 * with bench_rpc in bare_rep.h. */
#define _POSIX_C_SOURCE 200809L
#include <node/csp.h>

#include <nng/nng.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BARE_TOOL "bench_chan"
#include "bare_rep.h"

#define BARE_CTX 8
#define ROUNDS_MAX 50
#define READ_WAIT_MS 30000 /* a reader child's bound on one read */
#define BUF_CAPACITY 10000
#define VALUE_LEN 100      /* bytes of one streamed value, quotes included */

/* A request of about a chan.write's size and a reply like its answer. */
#define BARE_REQ "{\"op\":\"chan.write\",\"chan\":\"bench.rv.12345\",\"cid\":\"c-0123456789abcdef0123456789abcdef\"," \
                 "\"seq\":1,\"values\":[1]}"
#define BARE_REP "{\"ok\":true,\"n\":1}"

static double env_num(const char *name, double def)
{
	const char *s = getenv(name);
	return s && atof(s) > 0 ? atof(s) : def;
}

static double median(const double *v, int n)
{
	double s[ROUNDS_MAX];
	memcpy(s, v, (size_t)n * sizeof *s);
	qsort(s, (size_t)n, sizeof *s, cmp_d);
	return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

/* ---- a reader child: reads until the channel retires ---- */

static int serve_reader(const char *url, const char *name, long max)
{
	csp_chan *c = NULL;
	csp_end *r = NULL;
	ncl_err e = {0};
	if (csp_chan_net(&c, name, url, NULL, &e) != 0 || csp_reader(c, &r, &e) != 0)
		die("reader", e.msg);
	printf("ready\n");
	fflush(stdout);
	char **vals = calloc((size_t)max, sizeof *vals);
	long long got = 0, bytes = 0;
	int rc = 0;
	for (;;) {
		size_t n = 0;
		if (max == 1)
			rc = csp_read(r, &vals[0], READ_WAIT_MS, &e), n = rc == 0;
		else
			rc = csp_read_many(r, vals, (size_t)max, &n, READ_WAIT_MS, &e);
		if (rc != 0)
			break;
		for (size_t i = 0; i < n; i++) {
			bytes += (long long)strlen(vals[i]);
			free(vals[i]);
		}
		got += (long long)n;
	}
	/* the writer retires at the end: anything else is a broken run */
	printf("%lld %lld %s\n", got, bytes, rc == NCL_ERETIRED ? "retired" : e.msg);
	fflush(stdout);
	free(vals);
	csp_end_close(r);
	csp_chan_free(c);
	return rc == NCL_ERETIRED ? 0 : 1;
}

static void reader_start(child *c, const char *url, const char *name, long max)
{
	char smax[24];
	snprintf(smax, sizeof smax, "%ld", max);
	char *argv[] = {"bench_chan", "reader", (char *)url, (char *)name, smax, NULL};
	child_start(c, argv);
	char line[64];
	child_line(c, line, sizeof line, "reader ready");
}

/* The reader's count line after the writer retired: values read. */
static long long reader_finish(child *c, long long want, const char *what)
{
	char line[700];
	child_line(c, line, sizeof line, what);
	long long got = strtoll(line, NULL, 10);
	int rc = child_reap(c, 0);
	if (rc != 0 || got != want) {
		fprintf(stderr, "bench_chan: %s: the reader got %lld of %lld values (%s), exit %d\n", what, got, want, line, rc);
		exit(1);
	}
	return got;
}

/* A writer end on the channel name at host; *c is its channel, to free. */
static csp_end *writer_open(const char *host, const char *name, csp_chan **c)
{
	csp_end *w = NULL;
	ncl_err e = {0};
	*c = NULL;
	if (csp_chan_net(c, name, host, NULL, &e) != 0 || csp_writer(*c, &w, &e) != 0)
		die("writer", e.msg);
	return w;
}

/* ---- host calls without the library: chan.create / chan.delete ---- */

static void host_raw(const char *url, const char *text)
{
	nng_socket s;
	char *buf = NULL;
	size_t len = 0;
	int rv = nng_req0_open(&s);
	if (rv == 0) {
		nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, 5000);
		nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, 5000);
		rv = nng_dial(s, url, NULL, 0);
	}
	if (rv == 0)
		rv = nng_send(s, (void *)text, strlen(text), 0);
	if (rv == 0)
		rv = nng_recv(s, &buf, &len, NNG_FLAG_ALLOC);
	if (rv != 0)
		die(url, nng_strerror(rv));
	if (len < 11 || memcmp(buf, "{\"ok\":true", 10) != 0)
		die(text, "the host did not answer ok");
	nng_free(buf, len);
	nng_close(s);
}

/* ---- (a) bare, (b) rendezvous ---- */

/* Sequential round trips on s for at most calls and secs: calls/s. */
static double slice_bare(nng_socket s, long calls, double secs)
{
	double t0 = now_s(), end = t0 + secs, t = t0;
	long i = 0;
	while (i < calls && t < end) {
		bare_call(s, BARE_REQ);
		if (++i % 64 == 0)
			t = now_s();
	}
	return i / (now_s() - t0);
}

/* One value per csp_write for at most calls and secs: writes/s; *done counts. */
static double slice_rv(csp_end *w, long calls, double secs, long long *done)
{
	double t0 = now_s(), end = t0 + secs, t = t0;
	long i = 0;
	ncl_err e = {0};
	while (i < calls && t < end) {
		if (csp_write(w, "1", READ_WAIT_MS, &e) != 0)
			die("csp_write", e.msg);
		if (++i % 64 == 0)
			t = now_s();
	}
	*done += i;
	return i / (now_s() - t0);
}

static void bench_rendezvous(const char *host, int rounds, long calls, double secs)
{
	char burl[128], name[64];
	char *argv[] = {"bench_chan", "serve", NULL};
	child bare;
	bare_start(&bare, argv, burl, sizeof burl);
	nng_socket s = bare_dial(burl);

	snprintf(name, sizeof name, "bench.rv.%ld", (long)getpid());
	child rd;
	reader_start(&rd, host, name, 1);
	csp_chan *c;
	csp_end *w = writer_open(host, name, &c);
	ncl_err e = {0};

	long long written = 0;
	slice_bare(s, 2000, 0.5); /* warm-up: connections, caches */
	slice_rv(w, 2000, 0.5, &written);
	double bare_r[ROUNDS_MAX], rv_r[ROUNDS_MAX];
	for (int k = 0; k < rounds; k++) {
		bare_r[k] = slice_bare(s, calls, secs);
		rv_r[k] = slice_rv(w, calls, secs, &written);
		printf("  round %d: bare %8.0f round trips/s   rendezvous %8.0f writes/s   (%.0f%%)\n", k + 1, bare_r[k],
		    rv_r[k], 100 * rv_r[k] / bare_r[k]);
	}
	if (csp_retire(w, &e) != 0)
		die("retire", e.msg);
	reader_finish(&rd, written, "rendezvous reader");
	csp_chan_free(c);
	nng_close(s);
	child_reap(&bare, 0);

	double mb = median(bare_r, rounds), mr = median(rv_r, rounds);
	printf("%-58s %9.0f round trips/s  %6.1f us\n", "a. bare nng REQ/REP, sequential, ~100 B (median)", mb, 1e6 / mb);
	printf("%-58s %9.0f writes/s       %6.1f us\n", "b. rendezvous csp_write -> csp_read (median)", mr, 1e6 / mr);
	printf("%-58s %9.0f%%   (target >= 80%%)\n", "   rendezvous / bare", 100 * mr / mb);
}

/* ---- (c) buffered, batches ---- */

/* One run: n values in batches of batch through a fresh buffered channel;
 * values/s from the first write to the reader's last value. */
static double run_buffered(const char *host, const char *const *vals, int batch, long n, double secs, int run)
{
	char name[64], req[256];
	snprintf(name, sizeof name, "bench.buf.%ld.%d.%d", (long)getpid(), batch, run);
	snprintf(req, sizeof req, "{\"op\":\"chan.create\",\"chan\":\"%s\",\"kind\":\"any2any\",\"capacity\":%d}", name,
	    BUF_CAPACITY);
	host_raw(host, req);
	child rd;
	reader_start(&rd, host, name, 10000);
	csp_chan *c;
	csp_end *w = writer_open(host, name, &c);
	ncl_err e = {0};
	double t0 = now_s(), end = t0 + secs;
	long sent = 0;
	while (sent < n && now_s() < end) {
		long k = n - sent < batch ? n - sent : batch;
		if (csp_write_many(w, vals, (size_t)k, READ_WAIT_MS, &e) != 0)
			die("csp_write_many", e.msg);
		sent += k;
	}
	if (csp_retire(w, &e) != 0)
		die("retire", e.msg);
	reader_finish(&rd, sent, "buffered reader");
	double el = now_s() - t0;
	csp_chan_free(c);
	snprintf(req, sizeof req, "{\"op\":\"chan.delete\",\"chan\":\"%s\"}", name);
	host_raw(host, req);
	return sent / el;
}

static void bench_buffered(const char *host, long n, double secs)
{
	static const int batches[] = {500, 1000, 2000};
	enum { NB = sizeof batches / sizeof batches[0], RUNS = 3 };
	char **vals = calloc(2000, sizeof *vals);
	for (int i = 0; i < 2000; i++) { /* "v000123 xxx...x": VALUE_LEN bytes with the quotes */
		vals[i] = malloc(VALUE_LEN + 1);
		int k = snprintf(vals[i], VALUE_LEN + 1, "\"v%06d ", i);
		memset(vals[i] + k, 'x', (size_t)(VALUE_LEN - 1 - k));
		vals[i][VALUE_LEN - 1] = '"';
		vals[i][VALUE_LEN] = '\0';
	}
	double r[NB][RUNS];
	for (int run = 0; run < RUNS; run++)
		for (int b = 0; b < NB; b++)
			r[b][run] = run_buffered(host, (const char *const *)vals, batches[b], n, secs, run);
	for (int b = 0; b < NB; b++) {
		char label[96];
		snprintf(label, sizeof label, "c. buffered (cap %d), write_many %d, read_many 10000", BUF_CAPACITY, batches[b]);
		double m = median(r[b], RUNS);
		printf("%-58s %9.0f msgs/s  %6.1f MB/s  (runs %.0f %.0f %.0f; target >= 500000)\n", label, m,
		    m * VALUE_LEN / 1e6, r[b][0], r[b][1], r[b][2]);
	}
	for (int i = 0; i < 2000; i++)
		free(vals[i]);
	free(vals);
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	if (argc == 2 && strcmp(argv[1], "serve") == 0)
		return serve_bare(BARE_REP, BARE_CTX);
	if (argc == 5 && strcmp(argv[1], "reader") == 0)
		return serve_reader(argv[2], argv[3], atol(argv[4]) > 0 ? atol(argv[4]) : 1);
	if (argc != 2 || strncmp(argv[1], "tcp://", 6) != 0) {
		fprintf(stderr, "usage: bench_chan HOST_URL   (a running node chanhost, tcp://127.0.0.1:PORT)\n");
		return 2;
	}
	int rounds = (int)env_num("BENCH_ROUNDS", 5);
	if (rounds > ROUNDS_MAX)
		rounds = ROUNDS_MAX;
	long calls = (long)env_num("BENCH_CALLS", 20000);
	double secs = env_num("BENCH_SECONDS", 1);
	long lines = (long)env_num("BENCH_LINES", 500000);
	printf("chanhost %s, nng %s; rounds %d, each slice <= %ld calls and <= %.1f s\n", argv[1], nng_version(), rounds,
	    calls, secs);
	const char *only = getenv("BENCH_ONLY"); /* "ab" or "c": one part, e.g. under a profiler */
	if (only == NULL || strchr(only, 'a') || strchr(only, 'b'))
		bench_rendezvous(argv[1], rounds, calls, secs);
	if (only == NULL || strchr(only, 'c'))
		bench_buffered(argv[1], lines, 3 * secs);
	return 0;
}
