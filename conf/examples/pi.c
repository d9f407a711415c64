/* Monte Carlo pi on a node cluster (SCOOP's and Dask's pi example), with the
 * C client library: W tasks of A random points each -- the built-in `pi`
 * task mapped over the seeds 1..W -- and their {"inside": k, "points": n}
 * results added on the client as they arrive; pi ~ 4 * inside / points.
 *
 *   pi [-u BROKER_URL] [-c CLUSTER_FILE] [W [A]]    (W = A = 1000 by default)
 *
 * Without -u the broker is the one the cluster file names ($NODE_CONFIG,
 * ./node.json, else node's one-machine default).
 * Build: make examples, or cc pi.c $(pkg-config --cflags --libs nodeclient) */
#define _POSIX_C_SOURCE 200809L
#include <node/client.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PI 3.14159265358979323846

static double seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* The integer member key of a flat JSON object, -1 when absent. */
static long long member(const char *json, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof pat, "\"%s\":", key);
	const char *p = strstr(json, pat);
	return p ? strtoll(p + strlen(pat), NULL, 10) : -1;
}

int main(int argc, char **argv)
{
	const char *url = NULL, *file = NULL;
	long w = 1000, a = 1000;
	int i = 1, pos = 0;
	for (; i < argc; i++) {
		if (strcmp(argv[i], "-u") == 0 && i + 1 < argc)
			url = argv[++i];
		else if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			file = argv[++i];
		else if (argv[i][0] != '-' && pos < 2)
			*(pos++ == 0 ? &w : &a) = atol(argv[i]);
		else
			break;
	}
	if (i < argc || w < 1 || a < 1) {
		fprintf(stderr, "usage: pi [-u BROKER_URL] [-c CLUSTER_FILE] [TASKS [POINTS_PER_TASK]]\n");
		return 2;
	}

	ncl_conn *c;
	ncl_err e;
	if (ncl_open(&c, url, file, &e) != 0) {
		fprintf(stderr, "pi: %s\n", e.msg);
		return 1;
	}
	/* One argument list per task: [points, seed]. */
	char **args = calloc((size_t)w, sizeof *args);
	for (long t = 0; args && t < w; t++)
		if ((args[t] = malloc(48)) != NULL)
			snprintf(args[t], 48, "[%ld, %ld]", a, t + 1);
	double t0 = seconds();
	char *sum = NULL;
	int rc = ncl_map_reduce(c, "pi", (const char *const *)args, (size_t)w, NCL_ADD, &sum, NULL, 600000, &e);
	double took = seconds() - t0;
	if (rc == 0) {
		long long inside = member(sum, "inside"), points = member(sum, "points");
		double pi = 4.0 * (double)inside / (double)points;
		printf("pi is about %.6f (%lld points in %ld tasks, error %.4f%%, %.2f s, %.3g points/s)\n", pi, points, w,
		    100.0 * fabs(pi - PI) / PI, took, points / took);
	} else {
		fprintf(stderr, "pi: %s\n", e.msg);
	}
	free(sum);
	for (long t = 0; args && t < w; t++)
		free(args[t]);
	free(args);
	ncl_close(c);
	return rc == 0 ? 0 : 1;
}
