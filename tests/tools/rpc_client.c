/* The test program of libnodeclient's proxies, run by tests/rpc/call.sh
 * against real rpc servers and a name server (the cluster file in
 * $NODE_CONFIG). Uses only the public header, as users do.
 *   rpc_client all URL SERVER    sync and async calls, callbacks, one-way
 *                                calls, error codes, threads, close; URL is
 *                                the server's address, SERVER its name
 *   rpc_client move NAME GOFILE  call NAME; print "move 1" and wait for
 *                                GOFILE.1 (the script moves the server),
 *                                call again; "move 2", GOFILE.2 (moved again,
 *                                another server at the old address): the
 *                                proxy finds the new address each time
 * Prints "ok: ..." or "FAIL: ..." per check; exits 1 when any failed. */
#define _POSIX_C_SOURCE 200809L
#include <node/client.h>

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADS 8
#define PER_THREAD 300

#include "libcheck.h"

static int is(const char *a, const char *b)
{
	return a && b && strcmp(a, b) == 0;
}

/* Call and keep the result in buf ("" on error). */
static int call(ncl_proxy *p, const char *method, const char *params, int timeout_ms, char *buf, size_t n, ncl_err *e)
{
	char *r = NULL;
	int rc = ncl_proxy_call(p, method, params, timeout_ms, &r, e);
	snprintf(buf, n, "%s", r ? r : "");
	free(r);
	return rc;
}

/* ---- synchronous calls and errors ---- */

static void test_sync(ncl_proxy *url_p, const char *server)
{
	ncl_err e;
	char r[256];
	int rc = call(url_p, "add", "[3, 5]", 5000, r, sizeof r, &e);
	check(rc == 0 && is(r, "8"), "by address: add [3, 5] = 8 (%s)", rc ? e.msg : r);
	rc = call(url_p, "add", "{\"a\": 1, \"b\": 2}", 5000, r, sizeof r, &e);
	check(rc == 0 && is(r, "3"), "params by name: add {a: 1, b: 2} = 3 (%s)", rc ? e.msg : r);
	rc = call(url_p, "server.welcomeMessage", "[\"Rashmi\"]", 0, r, sizeof r, &e);
	check(rc == 0 && is(r, "\"Hi welcome Rashmi\""), "a string result is JSON text (%s)", rc ? e.msg : r);
	rc = call(url_p, "time", NULL, 0, r, sizeof r, &e);
	check(rc == 0 && r[0] == '{' && strstr(r, "\"unix_ms\":"), "no params: time (%s)", rc ? e.msg : r);

	ncl_proxy *s = NULL;
	rc = ncl_proxy_open(&s, server, NULL, &e);
	check(rc == 0 && is(ncl_proxy_target(s), server), "a proxy for the server's name %s", server);
	char addr[256];
	check(ncl_proxy_address(s, addr, sizeof addr) == 0, "no address before the first call");
	rc = call(s, "add", "[40, 2]", 5000, r, sizeof r, &e);
	check(rc == 0 && is(r, "42"), "by the server's name: bare add = 42 (%s)", rc ? e.msg : r);
	check(ncl_proxy_address(s, addr, sizeof addr) > 0 && strstr(addr, "tcp://"), "looked up: %s", addr);

	rc = call(s, "nope", "[]", 5000, r, sizeof r, &e);
	check(rc == NCL_ERPC && e.rpc_code == -32601 && strstr(e.msg, "nope: method not found"),
	    "unknown method: NCL_ERPC, -32601 (%s)", e.msg);
	rc = call(s, "add", "[1]", 5000, r, sizeof r, &e);
	check(rc == NCL_ERPC && e.rpc_code == -32602 && strstr(e.msg, "[-32602]"), "wrong arity: -32602 (%s)", e.msg);
	rc = call(s, "add", "[1, \"x\"]", 5000, r, sizeof r, &e);
	check(rc == NCL_ERPC && e.rpc_code == -32602, "wrong type: -32602 (%s)", e.msg);
	rc = call(s, "add", "[1, 2", 5000, r, sizeof r, &e);
	check(rc == NCL_EINVAL && e.rpc_code == 0, "params not JSON: NCL_EINVAL, nothing sent (%s)", e.msg);
	rc = call(s, "add", "5", 5000, r, sizeof r, &e);
	check(rc == NCL_EINVAL, "params neither array nor object: NCL_EINVAL (%s)", e.msg);
	double t0 = now_ms();
	rc = call(s, "sleep", "[3000]", 300, r, sizeof r, &e);
	double took = now_ms() - t0;
	check(rc == NCL_ETIMEDOUT && took < 1500, "sleep 3000 with 300 ms: NCL_ETIMEDOUT in %.0f ms (%s)", took, e.msg);
	ncl_proxy_close(s);

	ncl_proxy *shop = NULL;
	rc = ncl_proxy_open(&shop, "example.shop.Shop", NULL, &e);
	rc = rc ? rc : call(shop, "deposit", "[\"ghost\", 5]", 5000, r, sizeof r, &e);
	check(rc == NCL_ERPC && e.rpc_code == -32000 && is(e.remote, "KeyError") &&
	        strstr(e.msg, "example.shop.Shop.deposit: unknown account \"ghost\"") && strstr(e.msg, "[-32000 KeyError]"),
	    "an application error: -32000, type KeyError, \"METHOD: MESSAGE [CODE TYPE]\" (%s)", e.msg);
	rc = call(shop, "logOn", "[\"Lib\"]", 5000, r, sizeof r, &e);
	rc = rc ? rc : call(shop, "deposit", "{\"name\": \"Lib\", \"amount\": 7}", 5000, r, sizeof r, &e);
	check(rc == 0 && is(r, "7"), "by name: example.shop.Shop.deposit (%s)", rc ? e.msg : r);
	ncl_proxy_close(shop);

	ncl_proxy *none = NULL;
	rc = ncl_proxy_open(&none, "no.such.object", NULL, &e);
	rc = rc ? rc : call(none, "x", NULL, 5000, r, sizeof r, &e);
	check(rc == NCL_ENOTFOUND && strstr(e.msg, "no such name no.such.object at the name server"),
	    "a name nobody registered: NCL_ENOTFOUND (%s)", e.msg);
	ncl_proxy_close(none);
}

/* ---- futures ---- */

typedef struct cb_count {
	pthread_mutex_t lock;
	int calls, on_main;
	char result[128];
} cb_count;

static void on_done(ncl_future *f, void *arg)
{
	cb_count *n = arg;
	pthread_mutex_lock(&n->lock);
	n->calls++;
	n->on_main += pthread_equal(pthread_self(), main_thread);
	const char *r = ncl_future_result(f);
	snprintf(n->result, sizeof n->result, "%s", r ? r : ncl_future_error(f) ? ncl_future_error(f) : "?");
	pthread_mutex_unlock(&n->lock);
}

static int count_of(cb_count *n)
{
	pthread_mutex_lock(&n->lock);
	int k = n->calls;
	pthread_mutex_unlock(&n->lock);
	return k;
}

static int wait_count(cb_count *n, int want, int ms)
{
	for (double end = now_ms() + ms; now_ms() < end; sleep_ms(5))
		if (count_of(n) >= want)
			return 1;
	return 0;
}

static void test_async(const char *url)
{
	ncl_err e;
	ncl_proxy *p = NULL;
	if (ncl_proxy_open(&p, url, NULL, &e) != 0) {
		check(0, "open %s: %s", url, e.msg);
		return;
	}
	cb_count n[3];
	memset(n, 0, sizeof n);
	for (int i = 0; i < 3; i++)
		pthread_mutex_init(&n[i].lock, NULL);
	ncl_future *f1 = NULL, *f2 = NULL, *f3 = NULL;
	int rc = ncl_proxy_call_async(p, "sleep", "[200]", 5000, &f1, &e);
	check(rc == 0 && !ncl_future_ready(f1) && ncl_future_on_done(f1, on_done, &n[0]) == 0,
	    "async sleep 200: pending, callback registered");
	rc = ncl_proxy_call_async(p, "add", "[2, 2]", 5000, &f2, &e);
	rc = rc ? rc : ncl_future_wait(f2, 5000, &e);
	check(rc == 0 && is(ncl_future_result(f2), "4") && ncl_future_state(f2) == NCL_SUCCEEDED, "async add, wait: 4");
	check(ncl_future_on_done(f2, on_done, &n[1]) == 0, "callback registered after it finished");
	check(ncl_future_cancel(f2, 1000, &e) == NCL_ESTARTED, "a call cannot be cancelled: NCL_ESTARTED");
	rc = ncl_proxy_call_async(p, "add", "[1, \"x\"]", 5000, &f3, &e);
	check(rc == 0 && ncl_future_on_done(f3, on_done, &n[2]) == 0, "async call that fails, with a callback, freed at once");
	ncl_future_free(f3);
	check(wait_count(&n[0], 1, 5000) && wait_count(&n[1], 1, 5000) && wait_count(&n[2], 1, 5000), "all three callbacks ran");
	sleep_ms(100);
	check(count_of(&n[0]) == 1 && count_of(&n[1]) == 1 && count_of(&n[2]) == 1, "each exactly once");
	check(n[0].on_main + n[1].on_main + n[2].on_main == 0, "callbacks run on a library thread");
	check(is(n[0].result, "200") && is(n[1].result, "4") && strstr(n[2].result, "-32602"),
	    "callbacks see the outcomes (%s | %s | %s)", n[0].result, n[1].result, n[2].result);
	rc = ncl_future_wait(f1, 1000, &e);
	check(rc == 0 && is(ncl_future_result(f1), "200"), "waiting on a finished call: 0");
	ncl_future_free(f1);
	ncl_future_free(f2);

	ncl_future *fe = NULL;
	rc = ncl_proxy_call_async(p, "add", "[1]", 5000, &fe, &e);
	rc = rc ? rc : ncl_future_wait(fe, 5000, &e);
	check(rc == NCL_ERPC && e.rpc_code == -32602 && ncl_future_state(fe) == NCL_FAILED && strstr(ncl_future_error(fe), "-32602"),
	    "a failed future: NCL_FAILED, the wait gives NCL_ERPC and rpc_code (%s)", e.msg);
	ncl_future_free(fe);

	/* wait for all, any */
	ncl_future *fs[5];
	int started = 0;
	for (int i = 0; i < 5; i++) {
		char params[32];
		snprintf(params, sizeof params, "[%d, %d]", i, i);
		started += ncl_proxy_call_async(p, "add", params, 5000, &fs[i], &e) == 0;
	}
	rc = started == 5 ? ncl_wait_all(fs, 5, 5000, &e) : -1;
	int right = 1;
	for (int i = 0; rc == 0 && i < 5; i++) {
		char want[16];
		snprintf(want, sizeof want, "%d", 2 * i);
		right &= is(ncl_future_result(fs[i]), want);
	}
	check(rc == 0 && right, "ncl_wait_all over five calls of one proxy");
	for (int i = 0; i < started; i++)
		ncl_future_free(fs[i]);

	/* closing the proxy ends calls in flight */
	cb_count late;
	memset(&late, 0, sizeof late);
	pthread_mutex_init(&late.lock, NULL);
	ncl_future *fl = NULL;
	rc = ncl_proxy_call_async(p, "sleep", "[2000]", 5000, &fl, &e);
	check(rc == 0 && ncl_future_on_done(fl, on_done, &late) == 0, "sleep 2000 in flight with a callback");
	sleep_ms(50);
	double t0 = now_ms();
	ncl_proxy_close(p);
	double took = now_ms() - t0;
	check(took < 1000, "ncl_proxy_close with a call in flight returns at once (%.0f ms)", took);
	rc = ncl_future_wait(fl, 1000, &e);
	check(rc == NCL_ECLOSED && ncl_future_state(fl) == NCL_CLOSED && count_of(&late) == 1,
	    "its future is NCL_CLOSED and its callback ran once (%s)", e.msg);
	ncl_future_free(fl);
}

/* ---- one-way calls ---- */

static void test_oneway(const char *url)
{
	ncl_err e;
	ncl_proxy *p = NULL;
	int rc = ncl_proxy_open(&p, url, NULL, &e);
	double t0 = now_ms();
	rc = rc ? rc : ncl_proxy_oneway(p, "sleep", "[1000]", &e);
	double took = now_ms() - t0;
	check(rc == 0 && took < 500, "one-way sleep 1000: accepted in %.0f ms, not waited for", took);
	rc = ncl_proxy_oneway(p, "nope", NULL, &e);
	check(rc == 0, "one-way call of an unknown method: accepted (nobody hears how it ends)");
	rc = ncl_proxy_oneway(p, "add", "[1", &e);
	check(rc == NCL_EINVAL, "one-way call with bad params: NCL_EINVAL");
	ncl_proxy_close(p);
}

/* ---- many threads on one proxy ---- */

typedef struct worker_arg {
	ncl_proxy *p;
	int id, bad;
	char why[256];
} worker_arg;

static void *worker(void *arg)
{
	worker_arg *w = arg;
	for (int i = 0; i < PER_THREAD && !w->bad; i++) {
		char params[64], want[32], r[600];
		ncl_err e;
		snprintf(params, sizeof params, "[%d, %d]", w->id * 100000, i);
		snprintf(want, sizeof want, "%d", w->id * 100000 + i);
		if (i % 3 == 0) {
			ncl_future *f = NULL;
			int rc = ncl_proxy_call_async(w->p, "add", params, 10000, &f, &e);
			rc = rc ? rc : ncl_future_wait(f, 15000, &e);
			snprintf(r, sizeof r, "%s", rc == 0 ? ncl_future_result(f) : e.msg);
			ncl_future_free(f);
		} else if (call(w->p, "add", params, 10000, r, sizeof r, &e) != 0) {
			snprintf(r, sizeof r, "%s", e.msg);
		}
		if (!is(r, want)) {
			w->bad = 1;
			snprintf(w->why, sizeof w->why, "thread %d call %d: %.180s, want %s", w->id, i, r, want);
		}
	}
	return NULL;
}

static void test_threads(const char *target)
{
	ncl_err e;
	ncl_proxy *p = NULL;
	if (ncl_proxy_open(&p, target, NULL, &e) != 0) {
		check(0, "open %s: %s", target, e.msg);
		return;
	}
	pthread_t th[THREADS];
	worker_arg wa[THREADS];
	double t0 = now_ms();
	for (int i = 0; i < THREADS; i++) {
		wa[i] = (worker_arg){.p = p, .id = i + 1};
		pthread_create(&th[i], NULL, worker, &wa[i]);
	}
	int bad = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(th[i], NULL);
		if (wa[i].bad && bad++ == 0)
			check(0, "%s", wa[i].why);
	}
	double s = (now_ms() - t0) / 1000;
	check(bad == 0, "%d threads x %d calls on one proxy (%s), each its own result", THREADS, PER_THREAD, target);
	printf("figure: %d calls from %d threads in %.2f s: %.0f calls/s\n", THREADS * PER_THREAD, THREADS, s,
	    THREADS * PER_THREAD / s);
	ncl_proxy_close(p);
}

/* ---- the server moves ---- */

static int wait_file(const char *path, int ms)
{
	for (double end = now_ms() + ms; now_ms() < end; sleep_ms(20))
		if (access(path, F_OK) == 0)
			return 1;
	return 0;
}

/* Call until an answer that is not a time-out, at most 3 times. */
static int call_moved(ncl_proxy *p, const char *who, char *r, size_t n, int *tries, ncl_err *e)
{
	char params[64];
	snprintf(params, sizeof params, "[\"%s\"]", who);
	int rc;
	*tries = 0;
	do {
		rc = call(p, "welcomeMessage", params, 0, r, n, e);
		++*tries;
	} while (rc == NCL_ETIMEDOUT && *tries < 3);
	return rc;
}

static void test_move(const char *name, const char *go)
{
	ncl_err e;
	ncl_proxy *p = NULL;
	char r[256], before[256], after[256], file[1024];
	int tries, rc = ncl_proxy_open(&p, name, &(ncl_proxy_opts){.timeout_ms = 3000}, &e);
	rc = rc ? rc : call(p, "welcomeMessage", "[\"A\"]", 0, r, sizeof r, &e);
	ncl_proxy_address(p, before, sizeof before);
	check(rc == 0 && is(r, "\"Hi welcome A\""), "%s answers at %s (%s)", name, before, rc ? e.msg : r);

	/* Moved, nothing at the old address: the first call may go there and
	 * time out (it may have run: not sent again); the next goes to the new. */
	printf("move 1\n");
	fflush(stdout);
	snprintf(file, sizeof file, "%s.1", go);
	check(wait_file(file, 60000), "the script moved the server");
	rc = call_moved(p, "B", r, sizeof r, &tries, &e);
	ncl_proxy_address(p, after, sizeof after);
	check(rc == 0 && is(r, "\"Hi welcome B\"") && !is(before, after),
	    "after the move: answered at %s after %d call(s) (%s)", after, tries, rc ? e.msg : r);
	check(tries <= 2, "at most one call was lost to the old address (%d)", tries);

	/* Moved again, another server at the old address: it says "no object",
	 * so the call never ran there and goes to the new address at once. */
	snprintf(before, sizeof before, "%s", after);
	printf("move 2\n");
	fflush(stdout);
	snprintf(file, sizeof file, "%s.2", go);
	check(wait_file(file, 60000), "the script moved the server again, and started another at the old address");
	rc = call_moved(p, "C", r, sizeof r, &tries, &e);
	ncl_proxy_address(p, after, sizeof after);
	check(rc == 0 && is(r, "\"Hi welcome C\"") && !is(before, after) && tries == 1,
	    "\"no object\" at the old address: sent again to %s within the one call (%d call(s): %s)", after, tries,
	    rc ? e.msg : r);
	ncl_proxy_close(p);
}

int main(int argc, char **argv)
{
	main_thread = pthread_self();
	if (argc == 4 && strcmp(argv[1], "all") == 0) {
		ncl_proxy *p = NULL;
		ncl_err e;
		if (ncl_proxy_open(&p, argv[2], NULL, &e) != 0) {
			fprintf(stderr, "rpc_client: %s\n", e.msg);
			return 1;
		}
		test_sync(p, argv[3]);
		ncl_proxy_close(p);
		test_async(argv[2]);
		test_oneway(argv[2]);
		test_threads(argv[2]);
		test_threads(argv[3]);
	} else if (argc == 4 && strcmp(argv[1], "move") == 0) {
		test_move(argv[2], argv[3]);
	} else {
		fprintf(stderr, "usage: rpc_client all URL SERVER | rpc_client move NAME GOFILE\n");
		return 2;
	}
	return fails ? 1 : 0;
}
