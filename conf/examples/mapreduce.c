/* SCOOP's mapReduce example on a node cluster, with the C client library:
 * map "sum of the list" (the built-in `sum` task) over the 1000 lists [a]*a
 * for a in 0..999 and reduce the sums with add, on the client, as they
 * arrive. Prints 332833500.
 *
 *   mapreduce [-u BROKER_URL] [-c CLUSTER_FILE] [--sleep MS]
 *
 * With --sleep MS it maps `sleep MS` over 1000 items instead and compares the
 * time with the serial time (1000 x MS): two worker slots take about half.
 * Build: make examples, or cc mapreduce.c $(pkg-config --cflags --libs nodeclient) */
#define _POSIX_C_SOURCE 200809L
#include <node/client.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define ITEMS 1000

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* "[[a,a,...,a]]": the argument list of one sum task (a copies of a). */
static char *list_of(int a)
{
	size_t cap = 8 + (size_t)a * 5, len = 0;
	char *s = malloc(cap);
	if (s == NULL)
		return NULL;
	len += (size_t)snprintf(s, cap, "[[");
	for (int k = 0; k < a; k++)
		len += (size_t)snprintf(s + len, cap - len, k ? ",%d" : "%d", a);
	snprintf(s + len, cap - len, "]]");
	return s;
}

int main(int argc, char **argv)
{
	const char *url = NULL, *file = NULL;
	int sleep_ms = -1;
	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "-u") == 0)
			url = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "-c") == 0)
			file = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--sleep") == 0)
			sleep_ms = atoi(argv[++i]);
		else {
			fprintf(stderr, "usage: mapreduce [-u BROKER_URL] [-c CLUSTER_FILE] [--sleep MS]\n");
			return 2;
		}
	}
	ncl_conn *c;
	ncl_err e;
	if (ncl_open(&c, url, file, &e) != 0) {
		fprintf(stderr, "mapreduce: %s\n", e.msg);
		return 1;
	}
	char *args[ITEMS];
	for (int a = 0; a < ITEMS; a++) {
		if (sleep_ms < 0) {
			args[a] = list_of(a);
		} else if ((args[a] = malloc(24)) != NULL) {
			snprintf(args[a], 24, "[%d]", sleep_ms);
		}
	}
	char *result = NULL;
	double t0 = now_s();
	int rc = ncl_map_reduce(c, sleep_ms < 0 ? "sum" : "sleep", (const char *const *)args, ITEMS,
	    sleep_ms < 0 ? NCL_ADD : NCL_COUNT, &result, NULL, 600000, &e);
	double took = now_s() - t0;
	if (rc != 0)
		fprintf(stderr, "mapreduce: %s\n", e.msg);
	else if (sleep_ms < 0)
		printf("sum of [a]*a for a in 0..%d = %s (%d tasks, %.2f s)\n", ITEMS - 1, result, ITEMS, took);
	else
		printf("%s sleeps of %d ms: %.2f s; serially %.2f s (%.2fx faster)\n", result, sleep_ms, took,
		    ITEMS * sleep_ms / 1000.0, ITEMS * sleep_ms / 1000.0 / took);
	free(result);
	for (int a = 0; a < ITEMS; a++)
		free(args[a]);
	ncl_close(c);
	return rc == 0 ? 0 : 1;
}
