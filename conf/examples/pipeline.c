/* A three-stage CSP pipeline with <node/csp.h>: a producer writes 1..N to
 * channel "numbers", a stage squares each and writes it to "squares", a
 * consumer adds them up. Each channel may live on its own channel host, so
 * the values cross two hosts; the ends retire when done, which is how the
 * next stage learns the stream ended. Values go in batches of 100 (one
 * message each on a host). Prints
 *   sum of squares of 1..N = N(N+1)(2N+1)/6
 *
 *   pipeline [N]                          local channels (threads only)
 *   pipeline URL1 URL2 [N]                numbers on URL1, squares on URL2
 *                                         e.g. tcp://127.0.0.1:7130 tcp://127.0.0.1:7131
 * N is 10000 by default. Networked channels are named pipeline.PID.numbers
 * and pipeline.PID.squares, so runs do not meet.
 * Build: make examples, or cc pipeline.c $(pkg-config --cflags --libs nodeclient) */
#define _POSIX_C_SOURCE 200809L
#include <node/csp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BATCH 100

typedef struct pipe_ctx {
	csp_chan *numbers, *squares;
	long n;
	long long sum;
	int failed;
} pipe_ctx;

static void report(pipe_ctx *p, csp_proc *self, const ncl_err *e)
{
	fprintf(stderr, "pipeline: %s: %s\n", csp_proc_name(self), e->msg);
	p->failed = 1;
}

static void producer(csp_proc *self, void *arg)
{
	pipe_ctx *p = arg;
	csp_end *out;
	ncl_err e;
	char text[BATCH][24];
	const char *vals[BATCH];
	if (csp_writer(p->numbers, &out, &e) != 0) {
		report(p, self, &e);
		return;
	}
	for (long i = 1; i <= p->n;) {
		size_t k = 0;
		for (; k < BATCH && i <= p->n; k++, i++) {
			snprintf(text[k], sizeof text[k], "%ld", i);
			vals[k] = text[k];
		}
		if (csp_write_many(out, vals, k, -1, &e) != 0) {
			report(p, self, &e);
			break;
		}
	}
	if (csp_retire(out, &e) != 0) /* the stage reads what is left, then hears "retired" */
		report(p, self, &e);
}

static void stage(csp_proc *self, void *arg)
{
	pipe_ctx *p = arg;
	csp_end *in, *out;
	ncl_err e;
	char *got[BATCH], text[BATCH][24];
	const char *vals[BATCH];
	size_t n;
	int rc;
	if (csp_reader(p->numbers, &in, &e) != 0) {
		report(p, self, &e);
		return;
	}
	if (csp_writer(p->squares, &out, &e) != 0) {
		csp_end_close(in);
		report(p, self, &e);
		return;
	}
	while ((rc = csp_read_many(in, got, BATCH, &n, -1, &e)) == 0) {
		for (size_t i = 0; i < n; i++) {
			long long x = atoll(got[i]);
			snprintf(text[i], sizeof text[i], "%lld", x * x);
			vals[i] = text[i];
			free(got[i]);
		}
		if ((rc = csp_write_many(out, vals, n, -1, &e)) != 0)
			break;
	}
	if (rc != NCL_ERETIRED)
		report(p, self, &e);
	csp_end_close(in);
	if (csp_retire(out, &e) != 0)
		report(p, self, &e);
}

static void consumer(csp_proc *self, void *arg)
{
	pipe_ctx *p = arg;
	csp_end *in;
	ncl_err e;
	char *got[BATCH];
	size_t n;
	int rc;
	if (csp_reader(p->squares, &in, &e) != 0) {
		report(p, self, &e);
		return;
	}
	while ((rc = csp_read_many(in, got, BATCH, &n, -1, &e)) == 0)
		for (size_t i = 0; i < n; i++) {
			p->sum += atoll(got[i]);
			free(got[i]);
		}
	if (rc != NCL_ERETIRED)
		report(p, self, &e);
	csp_end_close(in);
}

static int open_chans(pipe_ctx *p, const char *url1, const char *url2, ncl_err *e)
{
	char a[96], b[96];
	if (url1 == NULL)
		return csp_chan_local(&p->numbers, "numbers", CSP_ONE2ONE, 0, e) ||
		       csp_chan_local(&p->squares, "squares", CSP_ONE2ONE, 0, e);
	snprintf(a, sizeof a, "pipeline.%ld.numbers", (long)getpid());
	snprintf(b, sizeof b, "pipeline.%ld.squares", (long)getpid());
	return csp_chan_net(&p->numbers, a, url1, NULL, e) || csp_chan_net(&p->squares, b, url2, NULL, e);
}

int main(int argc, char **argv)
{
	pipe_ctx p = {.n = 10000};
	const char *url1 = NULL, *url2 = NULL;
	if (argc == 2 || argc == 4)
		p.n = atol(argv[argc - 1]);
	if (argc >= 3) {
		url1 = argv[1];
		url2 = argv[2];
	}
	if (argc > 4 || p.n < 1 || p.n > 1000000) {
		fprintf(stderr, "usage: pipeline [URL1 URL2] [N]   (N in 1..1000000)\n");
		return 2;
	}
	ncl_err e;
	if (open_chans(&p, url1, url2, &e) != 0) {
		fprintf(stderr, "pipeline: %s\n", e.msg);
		csp_chan_free(p.numbers);
		return 1;
	}
	csp_spec procs[] = {{"producer", producer, &p}, {"stage", stage, &p}, {"consumer", consumer, &p}};
	if (csp_parallel(procs, 3, &e) != 0) {
		fprintf(stderr, "pipeline: %s\n", e.msg);
		p.failed = 1;
	}
	if (!p.failed)
		printf("sum of squares of 1..%ld = %lld\n", p.n, p.sum);
	csp_chan_free(p.numbers);
	csp_chan_free(p.squares);
	return p.failed;
}
