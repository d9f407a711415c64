/* The cost of the task path compared with the bare computation
 * (tests/bench/tasks_overhead.sh runs it).
 *   taskloop plain TASK K [ARG]
 *       call the built-in task function (modules/worker/tasks.c, compiled
 *       into this program) K times in a plain loop; print the time.
 *   taskloop remote URL TASK K [ARG] [CONCURRENCY PLAIN_S]
 *       submit the same K tasks to the broker at URL (batches of 1000, 8 in
 *       flight), wait for every result (parked gets of 1000 ids), check each
 *       succeeded; print the time from the first submit to the last result
 *       and, given the worker's concurrency C and the plain loop's time P,
 *       the per-task overhead (E2E * C - P) / K.
 * TASK is fibo (args [ARG], default 90) or pi (args [ARG, i]: ARG points,
 * default 100000, seeded with the task's index i, so both modes compute the
 * same thing). */
#include "../../modules/worker/tasks.c"

#include <stdatomic.h>
#include <unistd.h>

#include "core/log.h"
#include "core/transport.h"

#define BATCH 1000
#define INFLIGHT 8

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int is_pi;
static long long arg;

static cJSON *task_args(long i)
{
	cJSON *a = cJSON_CreateArray();
	cJSON_AddItemToArray(a, cJSON_CreateNumber((double)arg));
	if (is_pi)
		cJSON_AddItemToArray(a, cJSON_CreateNumber((double)i));
	return a;
}

static int do_plain(long k)
{
	/* Arguments are built before the clock starts: the worker gets them
	 * parsed from the fetch reply, which is part of the path's overhead. */
	cJSON **args = calloc((size_t)k, sizeof *args);
	for (long i = 0; i < k; i++)
		args[i] = task_args(i);
	worker_task_fn fn = is_pi ? task_pi : task_fibo;
	char err[256];
	unsigned long long check = 0;
	double t0 = now_s();
	for (long i = 0; i < k; i++) {
		cJSON *res = NULL;
		if (fn(NULL, args[i], NULL, &res, err, sizeof err) != 0) {
			fprintf(stderr, "taskloop: %s\n", err);
			return 1;
		}
		check += is_pi ? (unsigned long long)cJSON_GetObjectItem(res, "inside")->valuedouble : strlen(res->valuestring);
		cJSON_Delete(res);
	}
	double dt = now_s() - t0;
	for (long i = 0; i < k; i++)
		cJSON_Delete(args[i]);
	free(args);
	printf("%s(%lld) x %ld plain loop: %.6f s, %.2f us per task (checksum %llu)\n", is_pi ? "pi" : "fibo", arg, k, dt,
	    dt * 1e6 / (double)k, check);
	return 0;
}

typedef struct submit_state {
	atomic_long acked;
	atomic_int inflight, failed;
} submit_state;

static void on_submit(int rc, cJSON *reply, const node_err *err, void *p)
{
	submit_state *s = p;
	if (rc != 0) {
		fprintf(stderr, "taskloop: submit failed: %s\n", err->msg);
		atomic_store(&s->failed, 1);
	} else {
		atomic_fetch_add(&s->acked, cJSON_GetArraySize(cJSON_GetObjectItem(reply, "ids")));
	}
	cJSON_Delete(reply);
	atomic_fetch_sub(&s->inflight, 1);
}

static int do_remote(const char *url, long k, int conc, double plain_s)
{
	node_wire wire;
	node_wire_init(&wire);
	node_client *c;
	node_err err = {0};
	if (node_client_open(&c, url, "broker", &wire, &err) != 0) {
		fprintf(stderr, "taskloop: %s\n", err.msg);
		return 1;
	}
	const char *name = is_pi ? "pi" : "fibo";
	int pid = (int)getpid(), rc = 0;
	submit_state s = {0};
	double t0 = now_s();
	for (long from = 0; from < k && !atomic_load(&s.failed); from += BATCH) {
		long to = from + BATCH < k ? from + BATCH : k;
		cJSON *req = cJSON_CreateObject(), *tasks = cJSON_AddArrayToObject(req, "tasks");
		cJSON_AddStringToObject(req, "op", "submit");
		for (long i = from; i < to; i++) {
			char id[64];
			snprintf(id, sizeof id, "tl-%d-%ld", pid, i);
			cJSON *t = cJSON_CreateObject();
			cJSON_AddStringToObject(t, "id", id);
			cJSON_AddStringToObject(t, "name", name);
			cJSON_AddItemToObject(t, "args", task_args(i));
			cJSON_AddItemToArray(tasks, t);
		}
		while (atomic_load(&s.inflight) >= INFLIGHT)
			usleep(50);
		atomic_fetch_add(&s.inflight, 1);
		if (node_client_call_async(c, req, 30000, on_submit, &s, &err) != 0) {
			fprintf(stderr, "taskloop: %s\n", err.msg);
			atomic_fetch_sub(&s.inflight, 1);
			atomic_store(&s.failed, 1);
		}
		cJSON_Delete(req);
	}
	while (atomic_load(&s.inflight) > 0)
		usleep(100);
	if (atomic_load(&s.failed))
		rc = 1;
	long ok = 0, checked = 0;
	for (long from = 0; from < k && rc == 0; from += BATCH) {
		long to = from + BATCH < k ? from + BATCH : k;
		cJSON *req = cJSON_CreateObject(), *ids = cJSON_AddArrayToObject(req, "ids"), *reply = NULL;
		cJSON_AddStringToObject(req, "op", "get");
		cJSON_AddNumberToObject(req, "wait_ms", 120000);
		for (long i = from; i < to; i++) {
			char id[64];
			snprintf(id, sizeof id, "tl-%d-%ld", pid, i);
			cJSON_AddItemToArray(ids, cJSON_CreateString(id));
		}
		if (node_client_call(c, req, 125000, &reply, &err) != 0) {
			fprintf(stderr, "taskloop: %s\n", err.msg);
			rc = 1;
		}
		const cJSON *r;
		long i = from;
		cJSON_ArrayForEach(r, cJSON_GetObjectItem(reply, "results")) {
			const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(r, "state"));
			if (st && strcmp(st, "succeeded") == 0)
				ok++;
			else if (rc++ == 0)
				fprintf(stderr, "taskloop: task %ld is %s\n", i, st ? st : "?");
			i++;
		}
		cJSON_Delete(reply);
		cJSON_Delete(req);
	}
	double dt = now_s() - t0;
	/* Spot-check values against the same computation here (pi's counts are
	 * exact in a double; fibo(90) is not, so only its state is checked). */
	for (long i = 0; i < k && rc == 0 && is_pi; i += 97) {
		char id[64];
		snprintf(id, sizeof id, "tl-%d-%ld", pid, i);
		cJSON *req = cJSON_CreateObject(), *reply = NULL, *mine = NULL, *a = task_args(i);
		cJSON_AddStringToObject(req, "op", "get");
		cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "ids"), cJSON_CreateString(id));
		char e[256];
		if (node_client_call(c, req, 5000, &reply, &err) == 0 && task_pi(NULL, a, NULL, &mine, e, sizeof e) == 0) {
			const cJSON *v = cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(reply, "results"), 0), "value");
			double got = cJSON_GetNumberValue(cJSON_GetObjectItem(v, "inside"));
			if (got != cJSON_GetObjectItem(mine, "inside")->valuedouble) {
				fprintf(stderr, "taskloop: task %ld: inside %.0f from the worker, %.0f here\n", i, got,
				    cJSON_GetObjectItem(mine, "inside")->valuedouble);
				rc = 1;
			}
			checked++;
		}
		cJSON_Delete(mine);
		cJSON_Delete(a);
		cJSON_Delete(reply);
		cJSON_Delete(req);
	}
	node_client_close(c);
	node_wire_fini(&wire);
	if (rc != 0 || ok != k) {
		fprintf(stderr, "taskloop: %ld of %ld tasks succeeded\n", ok, k);
		return 1;
	}
	printf("%s(%lld) x %ld through broker+worker --concurrency %d: %.3f s, %.0f tasks/s, %.2f us per task", name, arg, k,
	    conc, dt, (double)k / dt, dt * 1e6 / (double)k);
	if (conc > 0 && plain_s >= 0)
		printf("; overhead (%.3f s x %d - %.3f s) / %ld = %.2f us per task", dt, conc, plain_s, k,
		    (dt * conc - plain_s) * 1e6 / (double)k);
	printf("\n");
	if (checked)
		printf("    %ld results spot-checked against the plain computation\n", checked);
	return 0;
}

int main(int argc, char **argv)
{
	int remote = argc >= 2 && strcmp(argv[1], "remote") == 0;
	int base = remote ? 3 : 2; /* index of TASK */
	if (argc < base + 2 || (!remote && strcmp(argv[1], "plain") != 0)) {
		fprintf(stderr, "usage: taskloop plain TASK K [ARG]\n"
		                "       taskloop remote URL TASK K [ARG] [CONCURRENCY PLAIN_S]\n");
		return 2;
	}
	const char *task = argv[base];
	if (strcmp(task, "pi") == 0)
		is_pi = 1;
	else if (strcmp(task, "fibo") != 0) {
		fprintf(stderr, "taskloop: TASK is fibo or pi\n");
		return 2;
	}
	long k = atol(argv[base + 1]);
	arg = argc > base + 2 ? atoll(argv[base + 2]) : is_pi ? 100000 : 90;
	if (k < 1) {
		fprintf(stderr, "taskloop: K must be at least 1\n");
		return 2;
	}
	node_err err = {0};
	node_log_configure("warn", NULL, &err);
	if (!remote)
		return do_plain(k);
	int conc = argc > base + 3 ? atoi(argv[base + 3]) : 0;
	double plain_s = argc > base + 4 ? atof(argv[base + 4]) : -1;
	return do_remote(argv[2], k, conc, plain_s);
}
