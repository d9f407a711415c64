/* bench_rpc: what a JSON-RPC call to `node rpc` costs, next to a bare nng
 * REQ/REP pair answering the same bytes, measured in the same run. A
 * benchmark, not a test: it prints numbers and fails only when calls fail.
 *
 *   bench_rpc RPC_URL HTTP_URL [CHAIN_URL CHAIN_OBJECT]
 *   bench_rpc serve-bare      internal: the bare server, spawned by the above
 *
 * Rows: sequential add (calls/s, p50, p99) over the transport and over
 * HTTP (keep-alive), bare pair alike; 64 calls in flight from one client
 * and 8 clients with 8 each; the chain (CHAIN_OBJECT.process) latency.
 * BENCH_CALLS (default 20000) sequential calls per row; BENCH_SECONDS
 * (default 2) per throughput row. The bare server is a child process
 * started with posix_spawn of /proc/self/exe (nng is not fork-safe); it
 * and the spawning are shared with bench_chan in bare_rep.h. */
#include <math.h>
#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/transport.h"

#define BARE_TOOL "bench_rpc"
#include "bare_rep.h"

#define REQ_TEXT "{\"jsonrpc\":\"2.0\",\"method\":\"add\",\"params\":[3,5],\"id\":1}"
#define REP_TEXT "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":8}"
#define BARE_CTX 128
#define WINDOW 64

/* ---- latency rows ---- */

static void lat_print(const char *label, double *lat, long n, double secs)
{
	qsort(lat, (size_t)n, sizeof *lat, cmp_d);
	printf("%-46s %8.0f calls/s  p50 %6.1f us  p99 %6.1f us\n", label, n / secs, lat[n / 2] * 1e6,
	    lat[(long)(n * 0.99)] * 1e6);
}

static void seq_bare(const char *url, long n)
{
	nng_socket s = bare_dial(url);
	double *lat = calloc((size_t)n, sizeof *lat);
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		double a = now_s();
		bare_call(s, REQ_TEXT);
		lat[i] = now_s() - a;
	}
	lat_print("sequential add, bare nng REQ/REP pair", lat, n, now_s() - t0);
	free(lat);
	nng_close(s);
}

static void seq_node(node_client *c, const char *label, const char *method, const char *params, long n)
{
	char text[512];
	snprintf(text, sizeof text, "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"params\":%s,\"id\":1}", method, params);
	cJSON *req = cJSON_Parse(text);
	double *lat = calloc((size_t)n, sizeof *lat);
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		double a = now_s();
		cJSON *reply = NULL;
		node_err err = {0};
		if (node_client_call_raw(c, req, 10000, &reply, &err) != 0 || !cJSON_GetObjectItemCaseSensitive(reply, "result"))
			die(label, err.msg[0] ? err.msg : "no result");
		cJSON_Delete(reply);
		lat[i] = now_s() - a;
	}
	lat_print(label, lat, n, now_s() - t0);
	free(lat);
	cJSON_Delete(req);
}

/* ---- HTTP, keep-alive ---- */

typedef struct http_conn {
	nng_http_client *cl;
	nng_http_conn *conn;
	nng_url *url;
} http_conn;

static void http_open(http_conn *h, const char *url)
{
	nng_aio *aio;
	char full[600];
	snprintf(full, sizeof full, "%s/rpc", url);
	if (nng_url_parse(&h->url, full) != 0 || nng_http_client_alloc(&h->cl, h->url) != 0 || nng_aio_alloc(&aio, NULL, NULL) != 0)
		die("http", url);
	nng_http_client_connect(h->cl, aio);
	nng_aio_wait(aio);
	if (nng_aio_result(aio) != 0)
		die("http connect", nng_strerror(nng_aio_result(aio)));
	h->conn = nng_aio_get_output(aio, 0);
	nng_aio_free(aio);
}

static void http_call(http_conn *h)
{
	nng_http_req *req;
	nng_http_res *res;
	nng_aio *aio;
	nng_http_req_alloc(&req, h->url);
	nng_http_res_alloc(&res);
	nng_aio_alloc(&aio, NULL, NULL);
	nng_http_req_set_method(req, "POST");
	nng_http_req_set_header(req, "Content-Type", "application/json");
	nng_http_req_copy_data(req, REQ_TEXT, strlen(REQ_TEXT));
	nng_http_conn_transact(h->conn, req, res, aio);
	nng_aio_wait(aio);
	if (nng_aio_result(aio) != 0 || nng_http_res_get_status(res) != 200)
		die("http call", nng_aio_result(aio) ? nng_strerror(nng_aio_result(aio)) : "status not 200");
	nng_aio_free(aio);
	nng_http_req_free(req);
	nng_http_res_free(res);
}

static void http_close(http_conn *h)
{
	nng_http_conn_close(h->conn);
	nng_http_client_free(h->cl);
	nng_url_free(h->url);
}

static void seq_http(const char *url, long n)
{
	http_conn h;
	http_open(&h, url);
	double *lat = calloc((size_t)n, sizeof *lat);
	double t0 = now_s();
	for (long i = 0; i < n; i++) {
		double a = now_s();
		http_call(&h);
		lat[i] = now_s() - a;
	}
	lat_print("sequential add, HTTP POST keep-alive", lat, n, now_s() - t0);
	free(lat);
	http_close(&h);
}

typedef struct http_thread {
	const char *url;
	double secs;
	long done;
} http_thread;

static void *http_loop(void *arg)
{
	http_thread *t = arg;
	http_conn h;
	http_open(&h, t->url);
	double end = now_s() + t->secs;
	while (now_s() < end) {
		http_call(&h);
		t->done++;
	}
	http_close(&h);
	return NULL;
}

static void par_http(const char *url, int conns, double secs)
{
	pthread_t th[64];
	http_thread t[64];
	for (int i = 0; i < conns; i++) {
		t[i] = (http_thread){.url = url, .secs = secs};
		pthread_create(&th[i], NULL, http_loop, &t[i]);
	}
	long total = 0;
	for (int i = 0; i < conns; i++) {
		pthread_join(th[i], NULL);
		total += t[i].done;
	}
	printf("%-46s %8.0f calls/s\n", conns == 8 ? "add over HTTP, 8 connections" : "add over HTTP", total / secs);
}

/* ---- many in flight ---- */

typedef struct flight {
	node_client *c;
	cJSON *req;
	atomic_long done, failed;
	atomic_int stop, outstanding;
} flight;

static void flight_issue(flight *f);

static void flight_cb(int rc, cJSON *reply, const node_err *err, void *arg)
{
	(void)err;
	flight *f = arg;
	cJSON_Delete(reply);
	if (rc != 0)
		atomic_fetch_add(&f->failed, 1);
	else
		atomic_fetch_add(&f->done, 1);
	if (!atomic_load(&f->stop))
		flight_issue(f);
	else
		atomic_fetch_sub(&f->outstanding, 1);
}

static void flight_issue(flight *f)
{
	node_err err = {0};
	if (node_client_call_raw_async(f->c, f->req, 10000, flight_cb, f, &err) != 0) {
		atomic_fetch_add(&f->failed, 1);
		atomic_fetch_sub(&f->outstanding, 1);
	}
}

/* clients connections with `each` calls in flight on each, for secs. */
static void par_node(const char *url, node_wire *w, int clients, int each, double secs)
{
	flight f[16];
	for (int i = 0; i < clients; i++) {
		node_err err = {0};
		memset(&f[i], 0, sizeof f[i]);
		if (node_client_open(&f[i].c, url, "rpc server", w, &err) != 0)
			die("open", err.msg);
		f[i].req = cJSON_Parse(REQ_TEXT);
	}
	double t0 = now_s();
	for (int i = 0; i < clients; i++)
		for (int k = 0; k < each; k++) {
			atomic_fetch_add(&f[i].outstanding, 1);
			flight_issue(&f[i]);
		}
	struct timespec ts = {(time_t)secs, (long)(fmod(secs, 1.0) * 1e9)};
	nanosleep(&ts, NULL);
	long done = 0, failed = 0;
	for (int i = 0; i < clients; i++) {
		done += atomic_load(&f[i].done);
		atomic_store(&f[i].stop, 1);
	}
	double el = now_s() - t0;
	for (int i = 0; i < clients; i++) {
		while (atomic_load(&f[i].outstanding) > 0) {
			struct timespec w1 = {0, 1000000};
			nanosleep(&w1, NULL);
		}
		failed += atomic_load(&f[i].failed);
		node_client_close(f[i].c);
		cJSON_Delete(f[i].req);
	}
	char label[96];
	snprintf(label, sizeof label, "add, %d in flight%s", clients * each, clients > 1 ? " over 8 clients" : ", one client");
	printf("%-46s %8.0f calls/s%s\n", label, done / el, failed ? "  (some failed)" : "");
}

/* The bare pair with `each` contexts in flight, for secs. */
typedef struct bare_slot {
	nng_ctx ctx;
	nng_aio *aio;
	int sending;
	atomic_long *done;
	atomic_int *stop;
} bare_slot;

static void bare_slot_send(bare_slot *b)
{
	nng_msg *m;
	nng_msg_alloc(&m, 0);
	nng_msg_append(m, REQ_TEXT, strlen(REQ_TEXT));
	nng_aio_set_msg(b->aio, m);
	b->sending = 1;
	nng_ctx_send(b->ctx, b->aio);
}

static void bare_slot_cb(void *arg)
{
	bare_slot *b = arg;
	if (nng_aio_result(b->aio) != 0) {
		if (b->sending)
			nng_msg_free(nng_aio_get_msg(b->aio));
		return;
	}
	if (b->sending) {
		b->sending = 0;
		nng_ctx_recv(b->ctx, b->aio);
		return;
	}
	nng_msg_free(nng_aio_get_msg(b->aio));
	atomic_fetch_add(b->done, 1);
	if (!atomic_load(b->stop))
		bare_slot_send(b);
}

static void par_bare(const char *url, int each, double secs)
{
	nng_socket s = bare_dial(url);
	atomic_long done = 0;
	atomic_int stop = 0;
	bare_slot *b = calloc((size_t)each, sizeof *b);
	for (int i = 0; i < each; i++) {
		b[i] = (bare_slot){.done = &done, .stop = &stop};
		nng_ctx_open(&b[i].ctx, s);
		nng_aio_alloc(&b[i].aio, bare_slot_cb, &b[i]);
	}
	double t0 = now_s();
	for (int i = 0; i < each; i++)
		bare_slot_send(&b[i]);
	struct timespec ts = {(time_t)secs, (long)(fmod(secs, 1.0) * 1e9)};
	nanosleep(&ts, NULL);
	long n = atomic_load(&done);
	double el = now_s() - t0;
	atomic_store(&stop, 1);
	for (int i = 0; i < each; i++)
		nng_aio_stop(b[i].aio);
	for (int i = 0; i < each; i++) {
		nng_aio_free(b[i].aio);
		nng_ctx_close(b[i].ctx);
	}
	free(b);
	nng_close(s);
	printf("%-46s %8.0f calls/s\n", "add, 64 in flight, bare nng REQ/REP pair", n / el);
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "serve-bare") == 0)
		return serve_bare(REP_TEXT, BARE_CTX);
	if (argc < 3)
		die("usage", "bench_rpc RPC_URL HTTP_URL [CHAIN_URL CHAIN_OBJECT]");
	signal(SIGPIPE, SIG_IGN);
	long calls = getenv("BENCH_CALLS") ? atol(getenv("BENCH_CALLS")) : 20000;
	double secs = getenv("BENCH_SECONDS") ? atof(getenv("BENCH_SECONDS")) : 2;
	char bare[256];
	char *bare_argv[] = {"bench_rpc", "serve-bare", NULL};
	child srv;
	bare_start(&srv, bare_argv, bare, sizeof bare);
	node_wire w;
	node_wire_init(&w);
	node_client *c;
	node_err err = {0};
	if (node_client_open(&c, argv[1], "rpc server", &w, &err) != 0)
		die("open", err.msg);
	seq_node(c, "warm-up", "add", "[3,5]", 500);
	seq_bare(bare, calls);
	seq_node(c, "sequential add, node rpc (the proxies' client)", "add", "[3,5]", calls);
	seq_bare(bare, calls);
	seq_node(c, "sequential add, node rpc (again)", "add", "[3,5]", calls);
	par_bare(bare, WINDOW, secs);
	par_node(argv[1], &w, 1, WINDOW, secs);
	par_node(argv[1], &w, 8, WINDOW / 8, secs);
	if (argv[2][0]) {
		seq_http(argv[2], calls / 4);
		par_http(argv[2], 8, secs);
	}
	if (argc > 4) {
		node_client *cc;
		if (node_client_open(&cc, argv[3], "rpc server", &w, &err) != 0)
			die("open", err.msg);
		char method[300];
		snprintf(method, sizeof method, "%s.process", argv[4]);
		seq_node(cc, "chain warm-up", method, "[[\"hello\"]]", 200);
		seq_node(cc, "chain 1 -> 2 -> 3 -> 1 (three processes)", method, "[[\"hello\"]]", calls / 10);
		node_client_close(cc);
	}
	node_client_close(c);
	node_wire_fini(&w);
	child_reap(&srv, 1);
	return 0;
}
