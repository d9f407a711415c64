/* Benchmark of local CSP channels (<node/csp.h>): two processes (threads),
 * one writing N values, one reading them; prints ns per value for a
 * rendezvous channel, a buffered one (one value per call and in batches),
 * and an alt over two channels; then the rendezvous again with the spin
 * before sleeping turned off ($NODE_CSP_SPIN_NS=0, in a child process), to
 * show what the futex wake alone costs. Go's unbuffered channel is about
 * 190 ns per value on similar machines.
 *
 *   bench_csp [N]       N values per run (BENCH_N, default 200000), 5 runs per row */
#define _POSIX_C_SOURCE 200809L
#include <node/csp.h>

#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static long n_values = 200000;

typedef struct run {
	csp_chan *a, *b; /* b: the second channel of the alt row */
	int batch;       /* values per call, 1 for single calls */
	int alt;
	int failed;
} run;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void writer(csp_proc *self, void *arg)
{
	run *r = arg;
	(void)self;
	csp_end *w;
	ncl_err e;
	const char *vals[64];
	for (int i = 0; i < 64; i++)
		vals[i] = "12345";
	if (csp_writer(r->a, &w, &e) != 0) {
		r->failed = 1;
		return;
	}
	for (long i = 0; i < n_values; i += r->batch)
		if (csp_write_many(w, vals, (size_t)r->batch, -1, &e) != 0) {
			fprintf(stderr, "write: %s\n", e.msg);
			r->failed = 1;
			break;
		}
	csp_end_close(w);
}

static void reader(csp_proc *self, void *arg)
{
	run *r = arg;
	(void)self;
	csp_end *in, *other = NULL;
	ncl_err e;
	char *vals[64];
	if (csp_reader(r->a, &in, &e) != 0 || (r->alt && csp_reader(r->b, &other, &e) != 0)) {
		r->failed = 1;
		return;
	}
	csp_guard g[2] = {{other, NULL}, {in, NULL}};
	for (long i = 0; i < n_values;) {
		size_t got = 0;
		int fired, rc;
		if (r->alt) {
			rc = csp_alt(g, 2, CSP_ALT_FAIR, -1, &fired, &vals[0], &e);
			got = 1;
		} else
			rc = csp_read_many(in, vals, (size_t)r->batch, &got, -1, &e);
		if (rc != 0) {
			fprintf(stderr, "read: %s\n", e.msg);
			r->failed = 1;
			break;
		}
		for (size_t j = 0; j < got; j++)
			free(vals[j]);
		i += (long)got;
	}
	csp_end_close(in);
	csp_end_close(other);
}

/* One run of a row: seconds, < 0 when it failed. */
static double run_once(int capacity, int batch, int alt)
{
	run r = {.batch = batch, .alt = alt};
	ncl_err e;
	if (csp_chan_local(&r.a, "a", CSP_ANY2ANY, capacity, &e) != 0 || csp_chan_local(&r.b, "b", CSP_ANY2ANY, 0, &e) != 0) {
		fprintf(stderr, "bench_csp: %s\n", e.msg);
		return -1;
	}
	csp_spec p[] = {{"writer", writer, &r}, {"reader", reader, &r}};
	double t0 = now_s();
	int rc = csp_parallel(p, 2, &e);
	double dt = now_s() - t0;
	csp_chan_free(r.a);
	csp_chan_free(r.b);
	return rc != 0 || r.failed ? -1 : dt;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* Five runs (the machine is shared: threads meet other load), median and best. */
static int row(const char *what, int capacity, int batch, int alt)
{
	double t[5];
	for (int i = 0; i < 5; i++)
		if ((t[i] = run_once(capacity, batch, alt)) < 0) {
			fprintf(stderr, "bench_csp: %s failed\n", what);
			return 1;
		}
	qsort(t, 5, sizeof t[0], cmp_double);
	double per = 1e9 / (double)n_values;
	printf("%-46s median %6.0f ns/value  best %6.0f  (%.2f M values/s)\n", what, t[2] * per, t[0] * per,
	    (double)n_values / t[2] / 1e6);
	fflush(stdout);
	return 0;
}

/* The rendezvous row in a child with the spin off (the setting is read once). */
static int nospin_child(const char *self)
{
	char n[32], *argv[] = {(char *)self, n, "--nospin-row", NULL};
	snprintf(n, sizeof n, "%ld", n_values / 10);
	setenv("NODE_CSP_SPIN_NS", "0", 1);
	pid_t pid;
	if (posix_spawn(&pid, "/proc/self/exe", NULL, NULL, argv, environ) != 0)
		return 1;
	int st;
	waitpid(pid, &st, 0);
	return !(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(int argc, char **argv)
{
	const char *env = getenv("BENCH_N");
	if (argc > 1)
		n_values = atol(argv[1]);
	else if (env != NULL)
		n_values = atol(env);
	if (n_values < 64)
		n_values = 64;
	if (argc > 2 && strcmp(argv[2], "--nospin-row") == 0)
		return row("rendezvous, no spin (futex wake every value)", 0, 1, 0);
	printf("local CSP channels, two threads, %ld values per row, %ld cores\n", n_values, sysconf(_SC_NPROCESSORS_ONLN));
	int rc = row("rendezvous (capacity 0), csp_write/csp_read", 0, 1, 0);
	rc |= row("rendezvous, reader in csp_alt over 2 channels", 0, 1, 1);
	rc |= row("buffered (capacity 64), one value per call", 64, 1, 0);
	rc |= row("buffered (capacity 64), batches of 64", 64, 64, 0);
	rc |= row("buffered (capacity 1024), batches of 64", 1024, 64, 0);
	rc |= nospin_child(argv[0]);
	return rc;
}
