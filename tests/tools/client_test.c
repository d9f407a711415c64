/* The test program of libnodeclient, run by tests/client/library.sh against a
 * real broker and workers. Uses only the public header, as users do.
 *   client_test URL all            futures, callbacks, waits, map, reduce, errors
 *   client_test URL killmap N      a map of N sleeps; prints "progress" when a
 *                                  fifth is in, so the script can kill -9 a
 *                                  worker; checks every item came exactly once
 *   client_test URL bench N        a map of N add items: prints items/s
 *   client_test PORT down          a broker that is not there, bad URLs, bad files
 * Prints "ok: ..." or "FAIL: ..." per check; exits 1 when any failed. */
#define _POSIX_C_SOURCE 200809L
#include <node/client.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "libcheck.h"
/* Submit task(args) and wait for it; the future or NULL. */
static ncl_future *run(ncl_conn *c, const char *task, const char *args, int *rc, ncl_err *e)
{
	ncl_future *f = NULL;
	*rc = ncl_submit(c, task, args, NULL, 5000, &f, e);
	if (*rc == 0)
		*rc = ncl_future_wait(f, 20000, e);
	return f;
}

static int is(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* ---- futures ---- */

static void test_basic(ncl_conn *c)
{
	ncl_err e;
	int rc;
	ncl_future *f = run(c, "add", "[5, 5]", &rc, &e);
	check(rc == 0 && is(ncl_future_result(f), "10") && ncl_future_state(f) == NCL_SUCCEEDED,
	    "submit add [5, 5] + wait gives 10 (%s)", rc ? e.msg : ncl_future_result(f));
	check(ncl_future_error(f) == NULL && strncmp(ncl_future_id(f), "ncl-", 4) == 0, "a success has no error and a generated id (%s)",
	    ncl_future_id(f));
	ncl_info info;
	rc = ncl_task_info(c, ncl_future_id(f), 5000, &info, &e);
	check(rc == 0 && is(info.state, "succeeded") && is(info.name, "add") && info.worker[0] && info.deliveries == 1 &&
	        info.finished_ms >= info.started_ms && info.started_ms > 0,
	    "ncl_task_info: succeeded, add, worker %s, 1 delivery, times set", info.worker);
	ncl_future_free(f);
	rc = ncl_task_info(c, "no-such-task", 5000, &info, &e);
	check(rc == NCL_ENOTFOUND && e.msg[0], "ncl_task_info of an unknown id: NCL_ENOTFOUND (%s)", e.msg);

	f = run(c, "fibo", "[100]", &rc, &e);
	check(rc == 0 && is(ncl_future_result(f), "354224848179261915075"), "fibo 100 is exact: %s", ncl_future_result(f));
	ncl_future_free(f);

	/* ready does not block */
	rc = ncl_submit(c, "sleep", "[300]", NULL, 5000, &f, &e);
	double t0 = now_ms();
	int ready = ncl_future_ready(f);
	double took = now_ms() - t0;
	check(rc == 0 && !ready && took < 50 && ncl_future_state(f) == NCL_PENDING && ncl_future_result(f) == NULL,
	    "ready on a running sleep is 0 at once (%.2f ms)", took);
	rc = ncl_future_wait(f, 10000, &e);
	check(rc == 0 && ncl_future_ready(f) && is(ncl_future_result(f), "300"), "then wait gives 300 and ready is 1");
	ncl_future_free(f);

	/* wait with a time limit (no sleep outlives its test: later ones count on free slots) */
	rc = ncl_submit(c, "sleep", "[1000]", NULL, 5000, &f, &e);
	t0 = now_ms();
	rc = ncl_future_wait(f, 200, &e);
	took = now_ms() - t0;
	check(rc == NCL_ETIMEDOUT && strstr(e.msg, "200 ms") && strstr(e.msg, ncl_future_id(f)) && took >= 190 && took < 1000,
	    "wait 200 ms on sleep 1000: NCL_ETIMEDOUT after %.0f ms (%s)", took, e.msg);
	rc = ncl_future_wait(f, 0, &e);
	check(rc == NCL_ETIMEDOUT, "wait 0 ms does not block: NCL_ETIMEDOUT");
	rc = ncl_future_wait(f, 10000, &e);
	check(rc == 0 && is(ncl_future_result(f), "1000"), "waiting again after a time-out gets the result");
	ncl_future_free(f);
	rc = ncl_submit(c, "sleep", "[300]", NULL, 5000, &f, &e);
	ncl_future_free(f); /* running: freeing it is fine */

	/* a task that fails */
	f = run(c, "fail", "[\"this task fails on purpose\"]", &rc, &e);
	check(rc == NCL_ETASK && ncl_future_state(f) == NCL_FAILED && is(ncl_future_error(f), "this task fails on purpose") &&
	        ncl_future_result(f) == NULL && strstr(e.msg, "this task fails on purpose"),
	    "fail: NCL_ETASK, state failed, the task's message (%s)", e.msg);
	ncl_future_free(f);

	/* options */
	char id[64];
	snprintf(id, sizeof id, "client-test-%ld", (long)time(NULL) ^ (long)now_ms());
	ncl_opts o = {.id = id, .queue = "default", .priority = 7, .has_priority = 1, .kwargs_json = "{}",
		.options_json = "{\"note\": \"x\"}"};
	rc = ncl_submit(c, "add", "[1, 2]", &o, 5000, &f, &e);
	if (rc == 0)
		rc = ncl_future_wait(f, 10000, &e);
	check(rc == 0 && is(ncl_future_id(f), id) && is(ncl_future_result(f), "3"), "submit with id, queue, priority, kwargs, options");
	rc = ncl_task_info(c, id, 5000, &info, &e);
	check(rc == 0 && info.priority == 7 && is(info.queue, "default"), "the broker has priority 7 on queue default");
	ncl_future_free(f);
	o = (ncl_opts){.kwargs_json = "{\"a\": 2, \"b\": 3}"};
	rc = ncl_submit(c, "add", NULL, &o, 5000, &f, &e);
	if (rc == 0)
		rc = ncl_future_wait(f, 10000, &e);
	check(rc == 0 && is(ncl_future_result(f), "5"), "add with kwargs {a: 2, b: 3} gives 5 (%s)", rc ? e.msg : "");
	ncl_future_free(f);

	/* bad input: errors, not requests */
	rc = ncl_submit(c, "add", "[1,", NULL, 5000, &f, &e);
	check(rc == NCL_EINVAL && f == NULL && strstr(e.msg, "args is not valid JSON"), "args \"[1,\": NCL_EINVAL (%s)", e.msg);
	rc = ncl_submit(c, "add", "5", NULL, 5000, &f, &e);
	check(rc == NCL_EINVAL && strstr(e.msg, "must be a JSON array"), "args \"5\": NCL_EINVAL (%s)", e.msg);
	o = (ncl_opts){.kwargs_json = "[1]"};
	rc = ncl_submit(c, "add", "[]", &o, 5000, &f, &e);
	check(rc == NCL_EINVAL && strstr(e.msg, "kwargs"), "kwargs that is not an object: NCL_EINVAL (%s)", e.msg);
	o = (ncl_opts){.id = "bad id with spaces"};
	rc = ncl_submit(c, "add", "[1, 1]", &o, 5000, &f, &e);
	check(rc == NCL_EREMOTE && is(e.remote, "bad_args") && e.msg[0], "an id the broker refuses: NCL_EREMOTE bad_args (%s)", e.msg);
	check(is(ncl_strerror(NCL_ETIMEDOUT), "timed out") && is(ncl_strerror(999), "unknown error"), "ncl_strerror");
}

/* ---- callbacks ---- */

typedef struct cb_count {
	pthread_mutex_t lock;
	int calls, on_main, ready;
	char result[64];
} cb_count;

static void on_done(ncl_future *f, void *arg)
{
	cb_count *n = arg;
	pthread_mutex_lock(&n->lock);
	n->calls++;
	n->on_main += pthread_equal(pthread_self(), main_thread) != 0;
	n->ready = ncl_future_ready(f);
	snprintf(n->result, sizeof n->result, "%s",
	    ncl_future_result(f) ? ncl_future_result(f) : ncl_future_error(f) ? ncl_future_error(f) : "?");
	pthread_mutex_unlock(&n->lock);
}

typedef struct close_arg {
	ncl_conn *conn;
	cb_count count;
} close_arg;

static void close_in_callback(ncl_future *f, void *arg)
{
	close_arg *a = arg;
	ncl_close(a->conn);
	on_done(f, &a->count);
}

static int calls(cb_count *n)
{
	pthread_mutex_lock(&n->lock);
	int k = n->calls;
	pthread_mutex_unlock(&n->lock);
	return k;
}

static int wait_calls(cb_count *ns, int k, int ms)
{
	for (double end = now_ms() + ms; now_ms() < end; sleep_ms(5)) {
		int all = 1;
		for (int i = 0; i < k; i++)
			all &= calls(&ns[i]) >= 1;
		if (all)
			return 1;
	}
	return 0;
}

static void test_callbacks(ncl_conn *c)
{
	ncl_err e;
	cb_count n[4];
	memset(n, 0, sizeof n);
	for (int i = 0; i < 4; i++)
		pthread_mutex_init(&n[i].lock, NULL);
	ncl_future *f1, *f2, *f3;
	int rc = ncl_submit(c, "sleep", "[150]", NULL, 5000, &f1, &e);
	check(rc == 0 && ncl_future_on_done(f1, on_done, &n[0]) == 0, "callback registered before completion");
	check(ncl_future_on_done(f1, on_done, &n[3]) == NCL_EINVAL, "a second callback: NCL_EINVAL");
	rc = ncl_submit(c, "add", "[1, 2]", NULL, 5000, &f2, &e);
	rc |= ncl_future_wait(f2, 10000, &e);
	check(rc == 0 && ncl_future_on_done(f2, on_done, &n[1]) == 0, "callback registered after completion");
	rc = ncl_submit(c, "add", "[2, 2]", NULL, 5000, &f3, &e);
	check(rc == 0 && ncl_future_on_done(f3, on_done, &n[2]) == 0, "callback registered, then the future freed at once");
	ncl_future_free(f3);
	check(wait_calls(n, 3, 5000), "all three callbacks ran");
	sleep_ms(300);
	check(calls(&n[0]) == 1 && calls(&n[1]) == 1 && calls(&n[2]) == 1 && calls(&n[3]) == 0,
	    "each exactly once (%d %d %d %d)", calls(&n[0]), calls(&n[1]), calls(&n[2]), calls(&n[3]));
	check(n[0].on_main + n[1].on_main + n[2].on_main == 0, "callbacks run on a library thread, never the caller's");
	check(n[0].ready && n[1].ready && n[2].ready && is(n[0].result, "150") && is(n[1].result, "3") && is(n[2].result, "4"),
	    "a callback sees its future finished with its result (%s %s %s)", n[0].result, n[1].result, n[2].result);
	ncl_future_free(f1);
	ncl_future_free(f2);

	/* closing a connection ends its pending futures; their callbacks run once */
	ncl_conn *c2;
	memset(&n[3], 0, sizeof n[3]);
	pthread_mutex_init(&n[3].lock, NULL);
	rc = ncl_open(&c2, ncl_url(c), NULL, &e);
	ncl_future *f4 = NULL;
	if (rc == 0)
		rc = ncl_submit(c2, "sleep", "[500]", NULL, 5000, &f4, &e);
	check(rc == 0 && ncl_future_on_done(f4, on_done, &n[3]) == 0, "second connection: sleep 500 with a callback");
	sleep_ms(50);
	double t0 = now_ms();
	ncl_close(c2);
	double took = now_ms() - t0;
	check(took < 1000, "ncl_close with a get parked returns at once (%.0f ms)", took);
	check(calls(&n[3]) == 1 && ncl_future_state(f4) == NCL_CLOSED && strstr(n[3].result, "closed"),
	    "its future is NCL_CLOSED and the callback ran once (%s)", n[3].result);
	rc = ncl_future_wait(f4, 1000, &e);
	check(rc == NCL_ECLOSED && strstr(e.msg, "closed"), "waiting on it: NCL_ECLOSED (%s)", e.msg);
	cb_count late;
	memset(&late, 0, sizeof late);
	pthread_mutex_init(&late.lock, NULL);
	check(ncl_future_on_done(f4, on_done, &late) == NCL_EINVAL, "the future keeps its callback after close");
	ncl_future_free(f4);

	/* a callback may close its own connection */
	close_arg ca;
	memset(&ca, 0, sizeof ca);
	pthread_mutex_init(&ca.count.lock, NULL);
	ncl_future *f5 = NULL;
	rc = ncl_open(&ca.conn, ncl_url(c), NULL, &e);
	if (rc == 0)
		rc = ncl_submit(ca.conn, "add", "[3, 4]", NULL, 5000, &f5, &e);
	check(rc == 0 && ncl_future_on_done(f5, close_in_callback, &ca) == 0 && wait_calls(&ca.count, 1, 5000) &&
	        is(ca.count.result, "7"),
	    "a callback that closes its own connection");
	ncl_future_free(f5);
}

/* ---- waiting for many ---- */

static void test_waits(ncl_conn *c)
{
	ncl_err e;
	ncl_future *fs[5];
	char args[32];
	int rc = 0;
	for (int i = 0; i < 5; i++) {
		snprintf(args, sizeof args, "[%d]", 40 * i);
		rc |= ncl_submit(c, "sleep", args, NULL, 5000, &fs[i], &e);
	}
	rc |= ncl_wait_all(fs, 5, 10000, &e);
	int ready = 0;
	for (int i = 0; i < 5; i++)
		ready += ncl_future_ready(fs[i]);
	check(rc == 0 && ready == 5, "wait_all on 5 sleeps: all finished");
	for (int i = 0; i < 5; i++)
		ncl_future_free(fs[i]);

	rc = ncl_submit(c, "add", "[1, 1]", NULL, 5000, &fs[0], &e);
	rc |= ncl_submit(c, "fail", "[\"boom\"]", NULL, 5000, &fs[1], &e);
	rc |= ncl_submit(c, "add", "[2, 2]", NULL, 5000, &fs[2], &e);
	rc = rc ? rc : ncl_wait_all(fs, 3, 10000, &e);
	check(rc == NCL_ETASK && strstr(e.msg, "1 of 3 tasks failed") && strstr(e.msg, "boom") && ncl_future_ready(fs[2]),
	    "wait_all with one failure: NCL_ETASK (%s)", e.msg);
	for (int i = 0; i < 3; i++)
		ncl_future_free(fs[i]);

	rc = ncl_submit(c, "sleep", "[800]", NULL, 5000, &fs[0], &e);
	rc |= ncl_submit(c, "sleep", "[10]", NULL, 5000, &fs[1], &e);
	size_t idx = 99;
	double t0 = now_ms();
	rc = rc ? rc : ncl_wait_any(fs, 2, 10000, &idx, &e);
	double took = now_ms() - t0;
	check(rc == 0 && idx == 1 && took < 600 && !ncl_future_ready(fs[0]), "wait_any on sleeps 800 and 10: index 1 after %.0f ms",
	    took);
	rc = ncl_wait_any(fs, 1, 100, &idx, &e);
	check(rc == NCL_ETIMEDOUT && strstr(e.msg, "100 ms"), "wait_any with 100 ms on sleep 800: NCL_ETIMEDOUT (%s)", e.msg);
	check(ncl_wait_all(NULL, 0, 100, &e) == NCL_EINVAL, "wait_all on no futures: NCL_EINVAL");
	rc = ncl_wait_any(fs, 1, 5000, &idx, &e);
	check(rc == 0 && idx == 0 && is(ncl_future_result(fs[0]), "800"), "then wait_any gets sleep 800");
	ncl_future_free(fs[0]);
	ncl_future_free(fs[1]);
}

/* Many futures share chunked gets; several threads use one connection. */
typedef struct thread_arg {
	ncl_conn *c;
	int base, ok;
} thread_arg;

static void *submitter(void *arg)
{
	thread_arg *t = arg;
	enum { N = 100 };
	ncl_future *fs[N];
	ncl_err e;
	char args[64], want[32];
	int made = 0;
	for (; made < N; made++) {
		snprintf(args, sizeof args, "[%d, 1]", t->base + made);
		if (ncl_submit(t->c, "add", args, NULL, 5000, &fs[made], &e) != 0)
			break;
	}
	t->ok = made == N && ncl_wait_all(fs, N, 20000, &e) == 0;
	for (int i = 0; i < made; i++) {
		snprintf(want, sizeof want, "%d", t->base + i + 1);
		t->ok &= is(ncl_future_result(fs[i]), want);
		ncl_future_free(fs[i]);
	}
	return NULL;
}

static int count_item(size_t index, const char *result, const char *error, void *arg)
{
	thread_arg *t = arg;
	char want[32];
	snprintf(want, sizeof want, "%zu", (size_t)t->base + index + 1);
	t->ok += error == NULL && is(result, want);
	return 0;
}

static void *mapper(void *arg)
{
	thread_arg *t = arg;
	enum { N = 3000 };
	char **a = calloc(N, sizeof *a);
	for (int i = 0; i < N; i++) {
		a[i] = malloc(32);
		snprintf(a[i], 32, "[%d, 1]", t->base + i);
	}
	ncl_err e;
	t->ok = 0;
	if (ncl_map(t->c, "add", (const char *const *)a, N, NCL_AS_COMPLETED, count_item, t, NULL, 60000, &e) != 0)
		t->ok = -1;
	for (int i = 0; i < N; i++)
		free(a[i]);
	free(a);
	return NULL;
}

static void test_threads(ncl_conn *c)
{
	pthread_t th[4];
	thread_arg a[4];
	for (int i = 0; i < 4; i++) {
		a[i] = (thread_arg){c, i * 1000, 0};
		pthread_create(&th[i], NULL, submitter, &a[i]);
	}
	int ok = 1;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		ok &= a[i].ok;
	}
	check(ok, "4 threads x 100 futures on one connection: every result right");
	for (int i = 0; i < 3; i++) {
		a[i] = (thread_arg){c, i * 10000, 0};
		pthread_create(&th[i], NULL, mapper, &a[i]);
	}
	ok = 1;
	for (int i = 0; i < 3; i++) {
		pthread_join(th[i], NULL);
		ok &= a[i].ok == 3000;
	}
	check(ok, "3 threads each mapping 3000 items on one connection at once: every result right");
}

/* ---- map ---- */

typedef struct map_rec {
	size_t order[64], n;
	char results[64][128];
	int errors[64];
	int stop_after;
} map_rec;

static int record(size_t index, const char *result, const char *error, void *arg)
{
	map_rec *r = arg;
	if (r->n < 64)
		r->order[r->n++] = index;
	if (index < 64) {
		snprintf(r->results[index], sizeof r->results[index], "%s", result ? result : error);
		r->errors[index] = error != NULL;
	}
	return r->stop_after > 0 && (int)r->n >= r->stop_after;
}

static void test_map(ncl_conn *c)
{
	ncl_err e;
	const char *sleeps[] = {"[600]", "[480]", "[360]", "[240]", "[120]", "[0]"};
	const char *vals[] = {"600", "480", "360", "240", "120", "0"};
	map_rec r;
	memset(&r, 0, sizeof r);
	int rc = ncl_map(c, "sleep", sleeps, 6, NCL_ORDERED, record, &r, NULL, 20000, &e);
	int inorder = r.n == 6, right = 1;
	for (size_t i = 0; i < r.n; i++) {
		inorder &= r.order[i] == i;
		right &= is(r.results[i], vals[i]);
	}
	check(rc == 0 && inorder && right, "map ordered over sleeps 600..0: results in input order (%s)", rc ? e.msg : "");

	memset(&r, 0, sizeof r);
	rc = ncl_map(c, "sleep", sleeps, 6, NCL_AS_COMPLETED, record, &r, NULL, 20000, &e);
	char order[64] = "";
	int seen = 0, same = 1;
	for (size_t i = 0; i < r.n; i++) {
		snprintf(order + strlen(order), sizeof order - strlen(order), "%zu ", r.order[i]);
		seen |= 1 << r.order[i];
		same &= r.order[i] == i;
	}
	right = 1;
	for (size_t i = 0; i < 6; i++)
		right &= is(r.results[i], vals[i]);
	check(rc == 0 && r.n == 6 && seen == 63 && right, "map as-completed: each item once, right values (order %s)", order);
	size_t pos[6] = {0};
	for (size_t i = 0; i < r.n && i < 6; i++)
		pos[r.order[i]] = i;
	check(!same && pos[0] > 0 && pos[5] < pos[0], "as-completed order differs from input order: sleep 0 before sleep 600");

	/* failures are delivered with their index; the map says how many */
	const char *mixed[] = {"[1, 1]", "[\"boom\"]", "[2, 2]"};
	memset(&r, 0, sizeof r);
	rc = ncl_map(c, "add", mixed, 3, NCL_ORDERED, record, &r, NULL, 20000, &e);
	check(rc == NCL_ETASK && r.n == 3 && r.errors[1] && !r.errors[0] && is(r.results[2], "4") && strstr(e.msg, "item 1"),
	    "a failing item: delivered with its error, the rest finish, NCL_ETASK (%s)", e.msg);

	/* the callback can stop the map */
	const char *adds[] = {"[1, 1]", "[2, 2]", "[3, 3]", "[4, 4]"};
	memset(&r, 0, sizeof r);
	r.stop_after = 1;
	rc = ncl_map(c, "add", adds, 4, NCL_ORDERED, record, &r, NULL, 20000, &e);
	check(rc == NCL_ECANCEL && r.n == 1, "an item callback returning 1 stops the map: NCL_ECANCEL (%s)", e.msg);

	const char *bad[] = {"[1, 1]", "{\"a\": 1}"};
	rc = ncl_map(c, "add", bad, 2, NCL_ORDERED, NULL, NULL, NULL, 20000, &e);
	check(rc == NCL_EINVAL && strstr(e.msg, "item 1"), "an item whose args are not an array: NCL_EINVAL before anything runs (%s)",
	    e.msg);
	rc = ncl_map(c, "add", adds, 0, NCL_ORDERED, NULL, NULL, NULL, 1000, &e);
	check(rc == 0, "a map of no items succeeds");

	/* ids from a prefix */
	char prefix[64];
	snprintf(prefix, sizeof prefix, "ct-map-%ld", (long)now_ms());
	ncl_opts o = {.id = prefix};
	rc = ncl_map(c, "add", adds, 4, NCL_ORDERED, NULL, NULL, &o, 20000, &e);
	char id[96];
	snprintf(id, sizeof id, "%s-3", prefix);
	ncl_info info;
	int irc = ncl_task_info(c, id, 5000, &info, &e);
	check(rc == 0 && irc == 0 && is(info.state, "succeeded"), "map with an id prefix: item 3 is %s", id);
}

/* ---- map and reduce ---- */

static char **args_list(int n, const char *fmt, int mul, int add)
{
	char **a = calloc((size_t)n, sizeof *a);
	for (int i = 0; i < n; i++)
		if ((a[i] = malloc(64)) != NULL) /* 64: callers may write other arguments in */
			snprintf(a[i], 64, fmt, i * mul + add);
	return a;
}

static void free_list(char **a, int n)
{
	for (int i = 0; i < n; i++)
		free(a[i]);
	free(a);
}

static void reduce_check(ncl_conn *c, const char *task, const char *const *args, int n, ncl_reducer op, const char *want, const char *what)
{
	ncl_err e;
	char *res = NULL;
	int rc = ncl_map_reduce(c, task, args, (size_t)n, op, &res, NULL, 30000, &e);
	check(rc == 0 && is(res, want), "%s = %s (%s)", what, want, rc ? e.msg : res);
	free(res);
}

static void test_reduce(ncl_conn *c)
{
	/* SCOOP's mapReduce: "sum of the list" over [a]*a for a in 0..999, add */
	char **lists = calloc(1000, sizeof *lists);
	for (int a = 0; a < 1000; a++) {
		size_t cap = 16 + (size_t)a * 5, len = 0;
		lists[a] = malloc(cap);
		len += (size_t)snprintf(lists[a] + len, cap - len, "[[");
		for (int k = 0; k < a; k++)
			len += (size_t)snprintf(lists[a] + len, cap - len, k ? ",%d" : "%d", a);
		snprintf(lists[a] + len, cap - len, "]]");
	}
	reduce_check(c, "sum", (const char *const *)lists, 1000, NCL_ADD, "332833500", "map_reduce sum over [a]*a for a in 0..999, add");
	free_list(lists, 1000);

	char **a = args_list(100, "[%d, 1]", 1, 0);
	reduce_check(c, "add", (const char *const *)a, 100, NCL_ADD, "5050", "add over add(i, 1), i < 100");
	reduce_check(c, "add", (const char *const *)a, 100, NCL_COUNT, "100", "count over 100 items");
	free_list(a, 100);
	a = args_list(30, "[%d, 0]", 1, 1);
	reduce_check(c, "add", (const char *const *)a, 20, NCL_MUL, "2432902008176640000", "mul over 1..20 (20!, exact)");
	reduce_check(c, "add", (const char *const *)a, 30, NCL_MUL, "265252859812191058636308480000000", "mul over 1..30 (30!, exact in 128 bits)");
	free_list(a, 30);
	a = calloc(101, sizeof *a);
	for (int i = 0; i < 101; i++) {
		char buf[32];
		snprintf(buf, sizeof buf, "[%d, 0]", (i * 37) % 101 - 50);
		a[i] = strdup(buf);
	}
	reduce_check(c, "add", (const char *const *)a, 101, NCL_MIN, "-50", "min");
	reduce_check(c, "add", (const char *const *)a, 101, NCL_MAX, "50", "max");
	free_list(a, 101);
	const char *fib[3] = {"[100]", "[100]", "[100]"};
	reduce_check(c, "fibo", fib, 3, NCL_ADD, "1062674544537785745225", "add of three fibo(100) beyond 2^64, exact");
	reduce_check(c, "fibo", fib, 3, NCL_MAX, "354224848179261915075", "max keeps the exact text");
	a = args_list(5, "[%d]", 1, 0);
	for (int i = 0; i < 5; i++)
		snprintf(a[i], 64, "[[%d, %d]]", i, i);
	reduce_check(c, "echo", (const char *const *)a, 5, NCL_CONCAT, "[0,0,1,1,2,2,3,3,4,4]", "concat of arrays, in input order");
	free_list(a, 5);
	const char *strs[3] = {"[\"ab\"]", "[\"c\\\"d\"]", "[\"\"]"};
	reduce_check(c, "echo", strs, 3, NCL_CONCAT, "\"abc\\\"d\"", "concat of strings");
	/* members keep the order they first came in: the same in every item here */
	const char *objs[3] = {"[{\"k\": 1, \"n\": {\"x\": 2}}]", "[{\"k\": 4, \"n\": {\"x\": 3}}]",
		"[{\"k\": 0.5, \"n\": {\"x\": 0, \"y\": 1}}]"};
	reduce_check(c, "echo", objs, 3, NCL_ADD, "{\"k\":5.5,\"n\":{\"x\":5,\"y\":1}}", "add of objects, member by member");
	const char *floats[3] = {"[0.5, 0.25]", "[1, 0]", "[2, 0.125]"};
	reduce_check(c, "add", floats, 3, NCL_ADD, "3.875", "add of doubles");

	ncl_err e;
	char *res = NULL;
	const char *words[2] = {"[\"x\"]", "[1]"};
	int rc = ncl_map_reduce(c, "echo", words, 2, NCL_ADD, &res, NULL, 30000, &e);
	check(rc == NCL_EINVAL && res == NULL && strstr(e.msg, "add needs numbers"), "add over a string: NCL_EINVAL (%s)", e.msg);
	const char *failing[2] = {"[1, 1]", "[\"nope\"]"};
	rc = ncl_map_reduce(c, "add", failing, 2, NCL_ADD, &res, NULL, 30000, &e);
	check(rc == NCL_ETASK && res == NULL && strstr(e.msg, "item 1"), "a failing item stops map_reduce: NCL_ETASK (%s)", e.msg);
	rc = ncl_map_reduce(c, "add", failing, 0, NCL_MIN, &res, NULL, 30000, &e);
	check(rc == NCL_EINVAL && strstr(e.msg, "no items"), "min of no items: NCL_EINVAL (%s)", e.msg);
	rc = ncl_map_reduce(c, "add", failing, 0, NCL_ADD, &res, NULL, 30000, &e);
	check(rc == 0 && is(res, "0"), "add of no items is 0");
	free(res);

	/* pi: objects {"inside", "points"} added */
	a = args_list(10, "[1000, %d]", 1, 1);
	res = NULL;
	rc = ncl_map_reduce(c, "pi", (const char *const *)a, 10, NCL_ADD, &res, NULL, 30000, &e);
	const char *in = res ? strstr(res, "\"inside\":") : NULL, *pts = res ? strstr(res, "\"points\":10000") : NULL;
	long inside = in ? strtol(in + 9, NULL, 10) : 0;
	check(rc == 0 && pts && inside > 7000 && inside < 8700, "pi over 10 seeds, add: %s", rc ? e.msg : res);
	free(res);
	free_list(a, 10);
}

/* ---- a worker killed mid-map ---- */

typedef struct kill_rec {
	size_t n, delivered;
	int *seen;
	int wrong;
} kill_rec;

static int kill_item(size_t index, const char *result, const char *error, void *arg)
{
	kill_rec *k = arg;
	char want[16];
	snprintf(want, sizeof want, "%zu", 20 + index % 5);
	k->seen[index]++;
	k->wrong += error != NULL || !is(result, want);
	if (++k->delivered == k->n / 5) {
		printf("progress: %zu of %zu\n", k->delivered, k->n);
		fflush(stdout);
	}
	return 0;
}

static void test_killmap(ncl_conn *c, size_t n, size_t chunk)
{
	char **a = calloc(n, sizeof *a);
	for (size_t i = 0; i < n; i++) {
		a[i] = malloc(16);
		snprintf(a[i], 16, "[%zu]", 20 + i % 5);
	}
	kill_rec k = {n, 0, calloc(n, sizeof(int)), 0};
	ncl_err e;
	double t0 = now_ms();
	ncl_opts o = {.chunk = chunk};
	int rc = ncl_map(c, "sleep", (const char *const *)a, n, NCL_AS_COMPLETED, kill_item, &k, &o, 60000, &e);
	size_t once = 0;
	for (size_t i = 0; i < n; i++)
		once += k.seen[i] == 1;
	check(rc == 0 && once == n && k.delivered == n && k.wrong == 0,
	    "map of %zu sleeps (chunk %zu) with a worker killed: every item exactly once, right values (%.1f s%s%s)", n, chunk,
	    (now_ms() - t0) / 1e3,
	    rc ? ": " : "", rc ? e.msg : "");
	free(k.seen);
	for (size_t i = 0; i < n; i++)
		free(a[i]);
	free(a);
}

/* ---- chunks, cancel, a tree of reduce tasks, statistics ---- */

typedef struct chunk_rec {
	size_t n, seen_twice, wrong, errors, last;
	unsigned char *seen;
	int ordered_ok;
} chunk_rec;

/* Items [i, 1] give i + 1; items [i, "x"] fail. */
static int chunk_item(size_t index, const char *result, const char *error, void *arg)
{
	chunk_rec *r = arg;
	if (r->seen[index]++)
		r->seen_twice++;
	if (r->n > 0 && index != r->last + 1)
		r->ordered_ok = 0;
	r->last = index;
	r->n++;
	if (error)
		r->errors++;
	else if (strtol(result, NULL, 10) != (long)index + 1)
		r->wrong++;
	return 0;
}

static void chunk_case(ncl_conn *c, size_t n, size_t chunk, int mode, size_t fail_every)
{
	char **a = calloc(n, sizeof *a);
	size_t want_err = 0;
	for (size_t i = 0; i < n; i++) {
		a[i] = malloc(32);
		int bad = fail_every && i % fail_every == fail_every - 1;
		want_err += bad;
		snprintf(a[i], 32, bad ? "[%zu, \"x\"]" : "[%zu, 1]", i);
	}
	chunk_rec r = {0};
	r.seen = calloc(n, 1);
	r.ordered_ok = 1;
	ncl_opts o = {.chunk = chunk};
	ncl_err e = {0};
	int rc = ncl_map(c, "add", (const char *const *)a, n, mode, chunk_item, &r, &o, 60000, &e);
	size_t missing = 0;
	for (size_t i = 0; i < n; i++)
		missing += r.seen[i] == 0;
	check((want_err ? rc == NCL_ETASK : rc == 0) && r.n == n && !missing && !r.seen_twice && !r.wrong &&
	        r.errors == want_err && (mode == NCL_AS_COMPLETED || r.ordered_ok),
	    "map of %zu items in chunks of %zu (%s, %zu failing): each item once, right values, failures per item%s%s", n,
	    chunk, mode == NCL_ORDERED ? "ordered" : "as completed", want_err, rc ? ": " : "", rc ? e.msg : "");
	for (size_t i = 0; i < n; i++)
		free(a[i]);
	free(a);
	free(r.seen);
}

static void test_chunks(ncl_conn *c)
{
	chunk_case(c, 100, 7, NCL_ORDERED, 0);
	chunk_case(c, 100, 7, NCL_AS_COMPLETED, 0);
	chunk_case(c, 1000, 0, NCL_ORDERED, 0);    /* chosen automatically */
	chunk_case(c, 50, 10, NCL_ORDERED, 9);     /* some items of some chunks fail */
	chunk_case(c, 10, 100, NCL_AS_COMPLETED, 3); /* one chunk holds everything */
	/* big items: a chunk holds fewer, so that arguments and results fit the limits */
	ncl_err e;
	enum { BIG = 100, BIGLEN = 100000 };
	char **big = calloc(BIG, sizeof *big);
	for (int i = 0; i < BIG; i++) {
		big[i] = malloc(BIGLEN + 8);
		snprintf(big[i], BIGLEN + 8, "[\"%0*d\"]", BIGLEN, i);
	}
	ncl_opts bo = {.chunk = BIG};
	size_t right = 0;
	map_rec br;
	memset(&br, 0, sizeof br);
	int brc = ncl_map(c, "echo", (const char *const *)big, BIG, NCL_ORDERED, record, &br, &bo, 60000, &e);
	for (int i = 0; i < 64 && i < BIG; i++)
		right += !br.errors[i];
	check(brc == 0 && br.n == 64 && right == 64, "100 items of 100 kB in one requested chunk: split to fit the limits, all succeed (%s)",
	    brc ? e.msg : "ok");
	for (int i = 0; i < BIG; i++)
		free(big[i]);
	free(big);

	/* a task the workers do not have: every item gets the message */
	const char *items[] = {"[1]", "[2]", "[3]"};
	map_rec r;
	memset(&r, 0, sizeof r);
	ncl_opts o = {.chunk = 2};
	int rc = ncl_map(c, "no-such-task", items, 3, NCL_ORDERED, record, &r, &o, 20000, &e);
	check(rc == NCL_ETASK && r.n == 3 && r.errors[0] && r.errors[1] && r.errors[2] && strstr(r.results[2], "no-such-task"),
	    "chunks of an unknown task: each item fails with the reason (%s)", r.results[2]);
	o.chunk = NCL_CHUNK_MAX + 1;
	rc = ncl_map(c, "add", items, 3, NCL_ORDERED, NULL, NULL, &o, 20000, &e);
	check(rc == NCL_EINVAL, "a chunk above NCL_CHUNK_MAX: NCL_EINVAL (%s)", e.msg);
	rc = ncl_map(c, "chunk", items, 3, NCL_ORDERED, NULL, NULL, NULL, 20000, &e);
	check(rc == NCL_EINVAL, "mapping the chunk task itself: NCL_EINVAL (%s)", e.msg);
}

static void count_done(ncl_future *f, void *arg)
{
	(void)f;
	__atomic_add_fetch((int *)arg, 1, __ATOMIC_SEQ_CST);
}

static void test_cancel(ncl_conn *c)
{
	ncl_err e;
	ncl_future *f = NULL;
	ncl_opts nobody = {.queue = "ct-nobody"}; /* no worker consumes it */
	int calls = 0;
	int rc = ncl_submit(c, "add", "[1, 2]", &nobody, 5000, &f, &e);
	check(rc == 0, "submit to a queue nobody consumes");
	if (rc != 0)
		return;
	ncl_future_on_done(f, count_done, &calls);
	rc = ncl_future_cancel(f, 5000, &e);
	check(rc == 0 && ncl_future_state(f) == NCL_CANCELLED && ncl_future_error(f) != NULL,
	    "cancel before start: 0, the future is NCL_CANCELLED (%s)", rc ? e.msg : ncl_future_error(f));
	rc = ncl_future_wait(f, 1000, &e);
	check(rc == NCL_ECANCEL, "wait on a cancelled future: NCL_ECANCEL (%s)", e.msg);
	rc = ncl_future_cancel(f, 5000, &e);
	check(rc == 0, "cancel again: still 0 (%s)", rc ? e.msg : "");
	ncl_info info;
	rc = ncl_task_info(c, ncl_future_id(f), 5000, &info, &e);
	check(rc == 0 && is(info.state, "revoked"), "the broker says revoked (%s)", rc ? e.msg : info.state);
	for (int i = 0; i < 100 && __atomic_load_n(&calls, __ATOMIC_SEQ_CST) == 0; i++)
		sleep_ms(10);
	sleep_ms(300); /* the tracker's own outcome for it must not run the callback again */
	check(__atomic_load_n(&calls, __ATOMIC_SEQ_CST) == 1, "the callback ran exactly once (%d)", calls);
	ncl_future_free(f);

	f = run(c, "add", "[2, 2]", &rc, &e);
	rc = f ? ncl_future_cancel(f, 5000, &e) : -1;
	check(rc == NCL_ESTARTED && ncl_future_state(f) == NCL_SUCCEEDED, "cancel after it finished: NCL_ESTARTED (%s)", e.msg);
	ncl_future_free(f);
	rc = ncl_submit(c, "sleep", "[1500]", NULL, 5000, &f, &e);
	for (int i = 0; rc == 0 && i < 100; i++) {
		ncl_info in;
		if (ncl_task_info(c, ncl_future_id(f), 5000, &in, &e) == 0 && is(in.state, "started"))
			break;
		sleep_ms(20);
	}
	rc = rc == 0 ? ncl_future_cancel(f, 5000, &e) : rc;
	check(rc == NCL_ESTARTED && strstr(e.msg, "started"), "cancel of a running task: NCL_ESTARTED (%s)", e.msg);
	check(ncl_future_wait(f, 10000, &e) == 0 && is(ncl_future_result(f), "1500"), "and it runs to its end");
	ncl_future_free(f);
}

static void test_tree(ncl_conn *c)
{
	char **lists = args_list(1000, "[[%d]]", 1, 0);
	for (int a = 0; a < 1000; a++) { /* [[a, a, ... a]] (a times) */
		free(lists[a]);
		size_t cap = 16 + (size_t)a * 5;
		lists[a] = malloc(cap);
		size_t len = (size_t)snprintf(lists[a], cap, "[[");
		for (int k = 0; k < a; k++)
			len += (size_t)snprintf(lists[a] + len, cap - len, k ? ",%d" : "%d", a);
		snprintf(lists[a] + len, cap - len, "]]");
	}
	char *res = NULL;
	ncl_err e;
	int rc = ncl_map_reduce_task(c, "sum", (const char *const *)lists, 1000, "sum", 8, &res, NULL, 60000, &e);
	check(rc == 0 && is(res, "332833500"), "map sum, reduce with the sum task as a tree (fan-in 8): %s", rc ? e.msg : res);
	free(res);
	rc = ncl_map_reduce_task(c, "sum", (const char *const *)lists, 1, "sum", 0, &res, NULL, 60000, &e);
	check(rc == 0 && is(res, "0"), "one item: the reduce task still runs once (%s)", rc ? e.msg : res);
	free(res);
	res = NULL;
	rc = ncl_map_reduce_task(c, "sum", (const char *const *)lists, 10, "fail", 2, &res, NULL, 60000, &e);
	check(rc == NCL_ETASK && res == NULL && strstr(e.msg, "reduce level 1"), "a failing reduce task names its level (%s)", e.msg);
	rc = ncl_map_reduce_task(c, "sum", (const char *const *)lists, 10, "sum", 1, &res, NULL, 60000, &e);
	check(rc == NCL_EINVAL, "fan-in 1: NCL_EINVAL");
	free_list(lists, 1000);
}

/* A future for a task submitted elsewhere (Celery's AsyncResult(id)). */
static void test_future_for(ncl_conn *c)
{
	ncl_err e;
	int rc;
	ncl_future *f = run(c, "add", "[20, 22]", &rc, &e), *g = NULL;
	rc = f ? ncl_future_for(c, ncl_future_id(f), &g, &e) : -1;
	rc = rc == 0 ? ncl_future_wait(g, 10000, &e) : rc;
	check(rc == 0 && is(ncl_future_result(g), "42"), "ncl_future_for an id submitted before: 42 (%s)", rc ? e.msg : "");
	ncl_future_free(g);
	ncl_future_free(f);
	rc = ncl_future_for(c, "ct-never-submitted", &g, &e);
	rc = rc == 0 ? ncl_future_wait(g, 300, &e) : rc;
	check(rc == NCL_ETIMEDOUT && !ncl_future_ready(g), "ncl_future_for an unknown id stays pending (%s)", e.msg);
	ncl_future_free(g);
	rc = ncl_future_for(c, "", &g, &e);
	check(rc == NCL_EINVAL && g == NULL, "ncl_future_for an empty id: NCL_EINVAL");
}

static void test_stats(ncl_conn *c)
{
	ncl_stats_reset(c);
	char **a = args_list(40, "[%d, 1]", 1, 0);
	ncl_opts o = {.chunk = 1};
	ncl_err e;
	int rc = ncl_map(c, "add", (const char *const *)a, 40, NCL_ORDERED, NULL, NULL, &o, 20000, &e);
	o.chunk = 8;
	rc |= ncl_map(c, "add", (const char *const *)a, 40, NCL_ORDERED, NULL, NULL, &o, 20000, &e);
	ncl_stats st;
	rc |= ncl_stats_get(c, &st, &e);
	int named = 1;
	for (size_t i = 0; i < st.n; i++)
		named &= st.rows[i].worker[0] == 'w';
	check(rc == 0 && st.jobs == 80 && st.n >= 1 && named && st.wall_s > 0,
	    "statistics: 80 jobs (40 single, 40 in chunks) over %zu workers, wall %.3f s", st.n, st.wall_s);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	ncl_stats_print(&st, f);
	fclose(f);
	check(buf && strstr(buf, "job count | % of all jobs | job time sum | time per job | worker") &&
	        strstr(buf, "Time elapsed since start: "), "ncl_stats_print: Parallel Python's table");
	free(buf);
	ncl_stats_free(&st);
	free_list(a, 40);
}

/* ---- figures ---- */

typedef struct bench_rec {
	long wrong, got;
} bench_rec;

static int bench_item(size_t index, const char *result, const char *error, void *arg)
{
	bench_rec *b = arg;
	b->got++;
	b->wrong += error != NULL || result == NULL || strtol(result, NULL, 10) != (long)index + 1;
	return 0;
}

static void bench(ncl_conn *c, size_t n, int mode, size_t chunk)
{
	char **a = calloc(n, sizeof *a);
	for (size_t i = 0; i < n; i++) {
		a[i] = malloc(32);
		snprintf(a[i], 32, "[%zu, 1]", i);
	}
	bench_rec b = {0, 0};
	ncl_err e;
	double t0 = now_ms();
	ncl_opts o = {.chunk = chunk};
	int rc = ncl_map(c, "add", (const char *const *)a, n, mode, bench_item, &b, &o, 300000, &e);
	double s = (now_ms() - t0) / 1e3;
	char how[64];
	snprintf(how, sizeof how, chunk == 1 ? "no chunks" : chunk ? "chunks of %zu" : "automatic chunks", chunk);
	check(rc == 0 && b.got == (long)n && b.wrong == 0, "bench: map (%s, %s) of %zu add items: every result right%s%s",
	    mode == NCL_ORDERED ? "ordered" : "as completed", how, n, rc ? ": " : "", rc ? e.msg : "");
	printf("figure: map (%s, %s) of %zu add items: %.3f s, %.0f items/s end to end\n",
	    mode == NCL_ORDERED ? "ordered" : "as completed", how, n, s, n / s);
	for (size_t i = 0; i < n; i++)
		free(a[i]);
	free(a);
}

/* ---- no broker ---- */

static void test_down(const char *port)
{
	ncl_conn *c = NULL;
	ncl_err e;
	int rc = ncl_open(&c, "bogus://nowhere", NULL, &e);
	check(rc == NCL_EINVAL && c == NULL && e.msg[0], "ncl_open of a URL nng does not know: NCL_EINVAL (%s)", e.msg);
	rc = ncl_open(&c, NULL, "/nonexistent/cluster.json", &e);
	check(rc != 0 && c == NULL && strstr(e.msg, "/nonexistent/cluster.json"), "ncl_open of a missing cluster file names it (%s)",
	    e.msg);
	char url[64];
	snprintf(url, sizeof url, "tcp://127.0.0.1:%s", port);
	rc = ncl_open(&c, url, NULL, &e);
	check(rc == 0, "ncl_open of a port nothing listens on succeeds (no waiting)");
	if (rc != 0)
		return;
	double t0 = now_ms();
	rc = ncl_ping(c, 300, &e);
	double took = now_ms() - t0;
	check(rc == NCL_ETIMEDOUT && strstr(e.msg, "did not answer in 300 ms") && strstr(e.msg, url) && took < 1300,
	    "ping: NCL_ETIMEDOUT after %.0f ms (%s)", took, e.msg);
	ncl_future *f = NULL;
	t0 = now_ms();
	rc = ncl_submit(c, "add", "[1, 1]", NULL, 300, &f, &e);
	took = now_ms() - t0;
	check(rc == NCL_ETIMEDOUT && f == NULL && took < 1300, "submit: NCL_ETIMEDOUT after %.0f ms (%s)", took, e.msg);
	const char *items[] = {"[1, 1]", "[2, 2]"};
	t0 = now_ms();
	rc = ncl_map(c, "add", items, 2, NCL_ORDERED, NULL, NULL, NULL, 800, &e);
	took = now_ms() - t0;
	check(rc == NCL_ETIMEDOUT && strstr(e.msg, "800 ms") && took < 1800, "map: NCL_ETIMEDOUT after %.0f ms (%s)", took, e.msg);
	char *res = NULL;
	rc = ncl_map_reduce(c, "add", items, 2, NCL_ADD, &res, NULL, 500, &e);
	check(rc == NCL_ETIMEDOUT && res == NULL, "map_reduce: NCL_ETIMEDOUT (%s)", e.msg);
	t0 = now_ms();
	ncl_close(c);
	check(now_ms() - t0 < 1000, "close is prompt with calls outstanding (%.0f ms)", now_ms() - t0);
}

int main(int argc, char **argv)
{
	main_thread = pthread_self();
	if (argc >= 3 && strcmp(argv[2], "down") == 0) {
		test_down(argv[1]);
		return fails ? 1 : 0;
	}
	if (argc < 3) {
		fprintf(stderr, "usage: client_test URL all|killmap N [CHUNK]|bench N [CHUNK], or client_test PORT down\n");
		return 2;
	}
	ncl_conn *c;
	ncl_err e;
	if (ncl_open(&c, argv[1], NULL, &e) != 0) {
		fprintf(stderr, "client_test: %s\n", e.msg);
		return 1;
	}
	size_t n = argc > 3 ? (size_t)strtoul(argv[3], NULL, 10) : 1000;
	if (strcmp(argv[2], "all") == 0) {
		check(ncl_ping(c, 5000, &e) == 0 && strcmp(ncl_url(c), argv[1]) == 0, "ping the broker at %s", ncl_url(c));
		test_basic(c);
		test_callbacks(c);
		test_waits(c);
		test_threads(c);
		test_map(c);
		test_reduce(c);
		test_chunks(c);
		test_cancel(c);
		test_tree(c);
		test_future_for(c);
		test_stats(c);
	} else if (strcmp(argv[2], "killmap") == 0) {
		test_killmap(c, n, argc > 4 ? (size_t)strtoul(argv[4], NULL, 10) : 1);
	} else if (strcmp(argv[2], "bench") == 0) {
		size_t chunk = argc > 4 ? (size_t)strtoul(argv[4], NULL, 10) : 0;
		bench(c, n, NCL_AS_COMPLETED, chunk);
		bench(c, n / 10, NCL_ORDERED, 1);
	} else {
		fprintf(stderr, "client_test: unknown test %s\n", argv[2]);
		ncl_close(c);
		return 2;
	}
	ncl_close(c);
	return fails ? 1 : 0;
}
