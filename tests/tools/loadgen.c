/* A test and benchmark helper that drives a broker hard.
 *   loadgen submit URL N PREFIX [ACKFILE]  submit tasks PREFIX-0..N-1 (add i 1) in
 *       batches, retrying each batch until acknowledged (ids make retries
 *       idempotent); append "acked K" to ACKFILE after each acknowledged batch.
 *   loadgen check URL N PREFIX SECONDS  wait for every task; print counts by
 *       state and the first wrong value; exit 0 when all succeeded with i+1.
 *   loadgen bench URL N  time N add tasks from first submit to last result.
 *   loadgen latency URL N  one task at a time: submit, wait; print p50/p99. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/transport.h"

#define BATCH 1000
#define INFLIGHT 8

static node_wire wire;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static cJSON *batch_req(const char *prefix, long from, long to)
{
	cJSON *req = cJSON_CreateObject(), *tasks = cJSON_AddArrayToObject(req, "tasks");
	cJSON_AddStringToObject(req, "op", "submit");
	for (long i = from; i < to; i++) {
		char id[160];
		cJSON *t = cJSON_CreateObject(), *args = cJSON_AddArrayToObject(t, "args");
		if (prefix) {
			snprintf(id, sizeof id, "%s-%ld", prefix, i);
			cJSON_AddStringToObject(t, "id", id);
		}
		cJSON_AddStringToObject(t, "name", "add");
		cJSON_AddItemToArray(args, cJSON_CreateNumber((double)i));
		cJSON_AddItemToArray(args, cJSON_CreateNumber(1));
		cJSON_AddItemToArray(tasks, t);
	}
	return req;
}

/* LOADGEN_BATCH and LOADGEN_PAUSE_MS slow the submitter down so a test can
 * kill the broker many times while it runs. */
static int do_submit(node_client *c, long n, const char *prefix, const char *ackfile)
{
	long batch = getenv("LOADGEN_BATCH") ? atol(getenv("LOADGEN_BATCH")) : BATCH;
	long pause_ms = getenv("LOADGEN_PAUSE_MS") ? atol(getenv("LOADGEN_PAUSE_MS")) : 0;
	if (batch < 1 || batch > 10000)
		batch = BATCH;
	for (long from = 0; from < n; from += batch) {
		long to = from + batch < n ? from + batch : n;
		if (pause_ms > 0)
			usleep((useconds_t)pause_ms * 1000);
		cJSON *req = batch_req(prefix, from, to);
		for (int attempt = 0;; attempt++) {
			cJSON *reply = NULL;
			node_err err = {0};
			int rc = node_client_call(c, req, 3000, &reply, &err);
			cJSON_Delete(reply);
			if (rc == 0)
				break;
			if (attempt > 600) {
				fprintf(stderr, "loadgen: giving up on batch %ld: %s\n", from, err.msg);
				cJSON_Delete(req);
				return 1;
			}
			usleep(100000);
		}
		cJSON_Delete(req);
		if (ackfile) {
			FILE *f = fopen(ackfile, "a");
			if (f) {
				fprintf(f, "acked %ld\n", to);
				fclose(f);
			}
		}
	}
	return 0;
}

static int do_check(node_client *c, long n, const char *prefix, int seconds)
{
	long ok = 0, bad = 0, other = 0;
	double deadline = now_s() + seconds;
	for (long from = 0; from < n; from += BATCH) {
		long to = from + BATCH < n ? from + BATCH : n;
		cJSON *req = cJSON_CreateObject(), *ids = cJSON_AddArrayToObject(req, "ids");
		cJSON_AddStringToObject(req, "op", "get");
		for (long i = from; i < to; i++) {
			char id[160];
			snprintf(id, sizeof id, "%s-%ld", prefix, i);
			cJSON_AddItemToArray(ids, cJSON_CreateString(id));
		}
		double left = deadline - now_s();
		cJSON_AddNumberToObject(req, "wait_ms", left > 0 ? (int)(left * 1000) : 0);
		cJSON *reply = NULL;
		node_err err = {0};
		if (node_client_call(c, req, (int)(left > 0 ? left * 1000 : 0) + 5000, &reply, &err) != 0) {
			fprintf(stderr, "loadgen: %s\n", err.msg);
			cJSON_Delete(req);
			return 1;
		}
		const cJSON *r;
		long i = from;
		cJSON_ArrayForEach(r, cJSON_GetObjectItem(reply, "results")) {
			const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(r, "state"));
			const cJSON *v = cJSON_GetObjectItem(r, "value");
			if (st && strcmp(st, "succeeded") == 0 && cJSON_IsNumber(v) && v->valuedouble == (double)(i + 1))
				ok++;
			else if (st && strcmp(st, "succeeded") == 0) {
				if (bad++ == 0)
					fprintf(stderr, "loadgen: %s-%ld has a wrong value\n", prefix, i);
			} else {
				if (other++ == 0)
					fprintf(stderr, "loadgen: %s-%ld is %s\n", prefix, i, st ? st : "?");
			}
			i++;
		}
		cJSON_Delete(reply);
		cJSON_Delete(req);
	}
	printf("succeeded %ld wrong %ld unfinished %ld of %ld\n", ok, bad, other, n);
	return ok == n ? 0 : 1;
}

typedef struct bench_state {
	atomic_long acked, done;
	atomic_int inflight;
} bench_state;

static void on_submit(int rc, cJSON *reply, const node_err *err, void *arg)
{
	bench_state *b = arg;
	if (rc != 0)
		fprintf(stderr, "loadgen: submit failed: %s\n", err->msg);
	else
		atomic_fetch_add(&b->acked, cJSON_GetArraySize(cJSON_GetObjectItem(reply, "ids")));
	cJSON_Delete(reply);
	atomic_fetch_sub(&b->inflight, 1);
}

static int do_bench(node_client *c, long n)
{
	bench_state b = {0};
	double t0 = now_s();
	for (long from = 0; from < n; from += BATCH) {
		long to = from + BATCH < n ? from + BATCH : n;
		while (atomic_load(&b.inflight) >= INFLIGHT)
			usleep(50);
		cJSON *req = batch_req("bench", from, to);
		node_err err = {0};
		atomic_fetch_add(&b.inflight, 1);
		if (node_client_call_async(c, req, 30000, on_submit, &b, &err) != 0) {
			fprintf(stderr, "loadgen: %s\n", err.msg);
			return 1;
		}
		cJSON_Delete(req);
	}
	while (atomic_load(&b.inflight) > 0)
		usleep(100);
	double t1 = now_s();
	int rc = do_check(c, n, "bench", 120);
	double t2 = now_s();
	printf("submitted %ld tasks in %.3f s (%.0f/s); all results after %.3f s: %.0f tasks/s end to end\n", n, t1 - t0,
	    n / (t1 - t0), t2 - t0, n / (t2 - t0));
	return rc;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static int do_latency(node_client *c, long n)
{
	double *lat = calloc((size_t)n, sizeof *lat);
	for (long i = 0; i < n; i++) {
		char id[64];
		snprintf(id, sizeof id, "lat-%ld-%d", i, (int)getpid());
		cJSON *req = batch_req(NULL, i, i + 1), *reply = NULL;
		cJSON_AddStringToObject(cJSON_GetArrayItem(cJSON_GetObjectItem(req, "tasks"), 0), "id", id);
		node_err err = {0};
		double t0 = now_s();
		int rc = node_client_call(c, req, 5000, &reply, &err);
		cJSON_Delete(reply);
		cJSON_Delete(req);
		req = cJSON_CreateObject();
		cJSON_AddStringToObject(req, "op", "get");
		cJSON_AddNumberToObject(req, "wait_ms", 5000);
		cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "ids"), cJSON_CreateString(id));
		if (rc == 0)
			rc = node_client_call(c, req, 10000, &reply, &err);
		lat[i] = (now_s() - t0) * 1e6;
		cJSON_Delete(reply);
		cJSON_Delete(req);
		if (rc != 0) {
			fprintf(stderr, "loadgen: %s\n", err.msg);
			return 1;
		}
	}
	qsort(lat, (size_t)n, sizeof *lat, cmp_d);
	printf("submit+wait one at a time, %ld tasks: p50 %.0f us, p90 %.0f us, p99 %.0f us\n", n, lat[n / 2], lat[n * 9 / 10], lat[n * 99 / 100]);
	free(lat);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: loadgen submit|check|bench|latency URL N [PREFIX] [ACKFILE|SECONDS]\n");
		return 2;
	}
	node_wire_init(&wire);
	node_client *c;
	node_err err = {0};
	if (node_client_open(&c, argv[2], "broker", &wire, &err) != 0) {
		fprintf(stderr, "loadgen: %s\n", err.msg);
		return 1;
	}
	long n = atol(argv[3]);
	int rc = 2;
	if (strcmp(argv[1], "submit") == 0 && argc >= 5)
		rc = do_submit(c, n, argv[4], argc > 5 ? argv[5] : NULL);
	else if (strcmp(argv[1], "check") == 0 && argc >= 6)
		rc = do_check(c, n, argv[4], atoi(argv[5]));
	else if (strcmp(argv[1], "bench") == 0)
		rc = do_bench(c, n);
	else if (strcmp(argv[1], "latency") == 0)
		rc = do_latency(c, n);
	node_client_close(c);
	node_wire_fini(&wire);
	return rc;
}
