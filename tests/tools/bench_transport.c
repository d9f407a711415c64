/* bench_transport: what a request costs through modules/core compared with
 * bare nng, between two processes on this machine. A benchmark, not a test:
 * it prints numbers and fails only when the machinery itself breaks.
 *
 *   bench_transport [PARTS]    run parts 1-4 (default "1234", about a minute);
 *                              parts 1 and 2 share their runs
 *   bench_transport serve ...  internal: the server side, spawned by the above
 *
 * Environment: BENCH_SECONDS (default 2) is how long each row of part 2 runs
 * at each in-flight level; parts 3 and 4 run for half of it. BENCH_CALLS
 * (default 20000) is the number of sequential calls timed per row.
 *
 * Rows that are compared (bare and node over one transport; the variants of
 * part 3) run side by side, each with its own server child, taking turns in
 * half-second slices, so that other load on the machine hits them alike.
 * "cpu us/req" is the CPU time (user + system) of the client process and of
 * the server child divided by the requests completed: on a machine with few
 * cores the pipelined rate is bound by it, so it is the steadier number.
 *
 * The servers run in child processes started with posix_spawn of
 * /proc/self/exe (nng is not fork-safe). A child listens, prints its bound
 * URL on stdout (the readiness signal) and serves until its stdin reaches
 * end of file or it is killed; the parent kills and reaps it by pid. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/transport.h"

extern char **environ;

#define SECRET "bench-transport-shared-secret"
#define SMALL_BODY "{\"op\":\"echo\",\"v\":1}"
#define BIG_BODY_BYTES 65536
#define CALL_TIMEOUT_MS 10000
#define WORKERS 64 /* server work objects (node's default receivers) */
#define PP_BUF 1024 /* NNG_OPT_SENDBUF / RECVBUF in the buffered push/pull runs */
#define PP_BUF_TEXT "1024"

enum { LAYER_BARE, LAYER_NODE };

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_s(double s)
{
	struct timespec ts = { (time_t)s, (long)((s - (double)(time_t)s) * 1e9) };
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

static void die(const char *what, const char *detail)
{
	fprintf(stderr, "bench_transport: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
	exit(1);
}

static void nng_die(const char *what, int rv)
{
	die(what, nng_strerror(rv));
}

/* ------------------------------------------------------------------ */
/* Request bodies                                                      */

/* About 64 KiB of JSON: a string of words picked by a fixed LCG, so lz4 has
 * something to do but the text is not one repeated byte. */
static char *big_body_text(void)
{
	static const char *words[] = { "alpha", "broker", "cluster", "delta", "echo", "frame", "gamma", "header",
		"index", "job", "kernel", "lambda", "message", "node", "offset", "packet", "queue", "result",
		"socket", "task", "update", "value", "worker", "x-ray", "yield", "zone", "compute", "batch",
		"stream", "channel", "reply", "request", "timeout", "retry", "signal", "vector" };
	size_t nwords = sizeof words / sizeof words[0];
	size_t cap = BIG_BODY_BYTES + 64;
	char *s = malloc(cap);
	if (s == NULL)
		die("out of memory", NULL);
	size_t n = (size_t)snprintf(s, cap, "{\"op\":\"echo\",\"v\":\"");
	uint32_t x = 12345;
	size_t tail = 2; /* "} */
	while (n + tail < BIG_BODY_BYTES) {
		x = x * 1103515245u + 12345u;
		const char *w = words[(x >> 16) % nwords];
		size_t wl = strlen(w);
		if (n + wl + 1 + tail > BIG_BODY_BYTES)
			break;
		memcpy(s + n, w, wl);
		n += wl;
		s[n++] = ((x >> 8) % 11 == 0) ? '.' : ' ';
	}
	while (n + tail < BIG_BODY_BYTES)
		s[n++] = ' ';
	memcpy(s + n, "\"}", 3);
	return s;
}

/* ------------------------------------------------------------------ */
/* Server side (child process)                                          */

static void op_echo(node_call *call, const cJSON *req, void *arg)
{
	(void)arg;
	cJSON *r = node_reply_ok();
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, "v");
	if (r != NULL && v != NULL)
		cJSON_AddItemToObject(r, "v", cJSON_Duplicate(v, 1));
	node_call_reply(call, r);
}

static const node_op echo_ops[] = { { "echo", op_echo }, { NULL, NULL } };

/* Bare REP server in nng's work-object shape: each object owns a context
 * and an aio and goes receive -> send (the message back unchanged) -> receive. */
enum { W_START, W_RECV, W_SEND };
typedef struct bare_work {
	int state;
	nng_ctx ctx;
	nng_aio *aio;
} bare_work;

static void bare_work_cb(void *arg)
{
	bare_work *w = arg;
	int rv;
	switch (w->state) {
	case W_START:
		w->state = W_RECV;
		nng_ctx_recv(w->ctx, w->aio);
		break;
	case W_RECV:
		rv = nng_aio_result(w->aio);
		if (rv == NNG_ECLOSED)
			return;
		if (rv != 0) {
			nng_ctx_recv(w->ctx, w->aio);
			break;
		}
		/* The received message is already in the aio: send it straight back. */
		w->state = W_SEND;
		nng_ctx_send(w->ctx, w->aio);
		break;
	case W_SEND:
		rv = nng_aio_result(w->aio);
		if (rv != 0) {
			nng_msg_free(nng_aio_get_msg(w->aio));
			nng_aio_set_msg(w->aio, NULL);
			if (rv == NNG_ECLOSED)
				return;
		}
		w->state = W_RECV;
		nng_ctx_recv(w->ctx, w->aio);
		break;
	}
}

static int tcp_url_with_port(nng_listener l, const char *url, char *out, size_t n)
{
	int port = 0;
	snprintf(out, n, "%s", url);
	if (strncmp(url, "tcp://", 6) != 0)
		return 0;
	int rv = nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port);
	if (rv != 0)
		return rv;
	const char *colon = strrchr(url, ':');
	snprintf(out, n, "%.*s:%d", (int)(colon - url), url, port);
	return 0;
}

static void bare_listen(nng_socket s, const char *url, char *bound, size_t n)
{
	nng_listener l;
	int rv = nng_listen(s, url, &l, 0);
	if (rv != 0)
		nng_die("listen", rv);
	if ((rv = tcp_url_with_port(l, url, bound, n)) != 0)
		nng_die("bound port", rv);
}

static void *push_loop(void *arg)
{
	nng_socket *s = arg;
	char buf[16] = "0123456789abcde";
	for (;;) {
		int rv = nng_send(*s, buf, sizeof buf, 0);
		if (rv == NNG_ECLOSED)
			break;
	}
	return NULL;
}

static void *rep_loop(void *arg)
{
	nng_socket *s = arg;
	for (;;) {
		nng_msg *m;
		int rv = nng_recvmsg(*s, &m, 0);
		if (rv == NNG_ECLOSED)
			break;
		if (rv != 0)
			continue;
		if (nng_sendmsg(*s, m, 0) != 0)
			nng_msg_free(m);
	}
	return NULL;
}

/* serve KIND URL [hmac] [nocomp] [buf]; KIND: bare node push rep */
static int serve_main(int argc, char **argv)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (argc < 4)
		die("usage: bench_transport serve bare|node|push|rep URL [hmac] [nocomp] [buf]", NULL);
	const char *kind = argv[2], *url = argv[3];
	int hmac = 0, nocomp = 0, buf = 0;
	for (int i = 4; i < argc; i++) {
		hmac |= strcmp(argv[i], "hmac") == 0;
		nocomp |= strcmp(argv[i], "nocomp") == 0;
		buf |= strcmp(argv[i], "buf") == 0;
	}
	char bound[512];
	nng_socket sock = NNG_SOCKET_INITIALIZER;
	node_server *srv = NULL;
	node_wire wire;
	bare_work *work = NULL;
	pthread_t thr;
	int have_thr = 0;
	int rv;
	node_err err = { 0 };

	if (strcmp(kind, "node") == 0) {
		node_wire_init(&wire);
		if (nocomp)
			wire.limits.compress_above = 0;
		if (hmac && node_auth_new(&wire.auth, SECRET, strlen(SECRET), 0, &err) != 0)
			die("node_auth_new", err.msg);
		node_server_cfg cfg = { 0 };
		cfg.url = url;
		cfg.role = "bench";
		cfg.node = "bench";
		cfg.ops = echo_ops;
		cfg.wire = &wire;
		cfg.receivers = WORKERS;
		if (node_server_start(&srv, &cfg, &err) != 0)
			die("node_server_start", err.msg);
		snprintf(bound, sizeof bound, "%s", node_server_url(srv));
	} else if (strcmp(kind, "bare") == 0) {
		if ((rv = nng_rep0_open(&sock)) != 0)
			nng_die("nng_rep0_open", rv);
		nng_socket_set_size(sock, NNG_OPT_RECVMAXSZ, 0);
		work = calloc(WORKERS, sizeof *work);
		for (int i = 0; i < WORKERS; i++) {
			if ((rv = nng_aio_alloc(&work[i].aio, bare_work_cb, &work[i])) != 0 ||
			    (rv = nng_ctx_open(&work[i].ctx, sock)) != 0)
				nng_die("work object", rv);
			work[i].state = W_START;
		}
		bare_listen(sock, url, bound, sizeof bound);
		for (int i = 0; i < WORKERS; i++)
			bare_work_cb(&work[i]);
	} else if (strcmp(kind, "push") == 0) {
		if ((rv = nng_push0_open(&sock)) != 0)
			nng_die("nng_push0_open", rv);
		if (buf)
			nng_socket_set_int(sock, NNG_OPT_SENDBUF, PP_BUF);
		bare_listen(sock, url, bound, sizeof bound);
		pthread_create(&thr, NULL, push_loop, &sock);
		have_thr = 1;
	} else if (strcmp(kind, "rep") == 0) {
		if ((rv = nng_rep0_open(&sock)) != 0)
			nng_die("nng_rep0_open", rv);
		bare_listen(sock, url, bound, sizeof bound);
		pthread_create(&thr, NULL, rep_loop, &sock);
		have_thr = 1;
	} else {
		die("unknown server kind", kind);
	}
	printf("%s\n", bound);
	fflush(stdout);

	for (;;) {
		char c;
		ssize_t k = read(0, &c, 1);
		if (k == 0 || (k < 0 && errno != EINTR))
			break;
	}
	/* The parent is done with us; it also kills us, so this is best effort. */
	if (srv)
		node_server_stop(srv);
	else
		nng_close(sock);
	if (have_thr)
		pthread_join(thr, NULL);
	_exit(0);
}

/* ------------------------------------------------------------------ */
/* Child process management (parent side)                               */

typedef struct child {
	pid_t pid;
	int to_child;   /* its stdin */
	int from_child; /* its stdout */
	char url[512];
	char ipc_path[256];
} child;

static int ipc_seq;

/* Start "serve kind URL opts..." and wait for the URL it prints. */
static void child_start(child *ch, const char *kind, int ipc, const char *opt1, const char *opt2)
{
	memset(ch, 0, sizeof *ch);
	char listen_url[300];
	if (ipc) {
		snprintf(ch->ipc_path, sizeof ch->ipc_path, "/tmp/bench_transport.%d.%d.ipc", (int)getpid(), ipc_seq++);
		unlink(ch->ipc_path);
		snprintf(listen_url, sizeof listen_url, "ipc://%s", ch->ipc_path);
	} else {
		snprintf(listen_url, sizeof listen_url, "tcp://127.0.0.1:0");
	}
	int in[2], out[2];
	if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0)
		die("pipe", strerror(errno));
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	char *argv[8];
	int n = 0;
	argv[n++] = "bench_transport";
	argv[n++] = "serve";
	argv[n++] = (char *)kind;
	argv[n++] = listen_url;
	if (opt1)
		argv[n++] = (char *)opt1;
	if (opt2)
		argv[n++] = (char *)opt2;
	argv[n] = NULL;
	int rc = posix_spawn(&ch->pid, "/proc/self/exe", &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	if (rc != 0)
		die("posix_spawn", strerror(rc));
	close(in[0]);
	close(out[1]);
	ch->to_child = in[1];
	ch->from_child = out[0];

	size_t got = 0;
	double deadline = now_s() + 10;
	while (got < sizeof ch->url - 1) {
		struct pollfd p = { ch->from_child, POLLIN, 0 };
		int left = (int)((deadline - now_s()) * 1000);
		if (left <= 0 || poll(&p, 1, left) <= 0)
			die("server child did not report its URL in time", kind);
		ssize_t k = read(ch->from_child, ch->url + got, 1);
		if (k <= 0)
			die("server child exited before listening", kind);
		if (ch->url[got] == '\n')
			break;
		got++;
	}
	ch->url[got] = '\0';
}

static void child_stop(child *ch)
{
	if (ch->pid <= 0)
		return;
	close(ch->to_child);
	close(ch->from_child);
	kill(ch->pid, SIGTERM);
	int st;
	while (waitpid(ch->pid, &st, 0) < 0 && errno == EINTR)
		;
	ch->pid = 0;
	if (ch->ipc_path[0])
		unlink(ch->ipc_path);
}

/* CPU seconds used so far by a child (utime + stime from /proc). */
static double child_cpu_s(const child *ch)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)ch->pid);
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return NAN;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	if (p == NULL)
		return NAN;
	unsigned long ut = 0, st = 0;
	/* after ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15) */
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return NAN;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------------ */
/* Clients                                                              */

typedef struct target {
	int layer;
	const char *body; /* the request's JSON text */
	size_t body_len;
	/* bare */
	nng_socket sock;
	nng_ctx ctx;
	nng_aio *aio;
	/* node */
	node_wire wire;
	node_client *cl;
	cJSON *req;
} target;

static void target_open(target *t, int layer, const char *url, const char *body, int hmac, int nocomp)
{
	memset(t, 0, sizeof *t);
	t->layer = layer;
	t->body = body;
	t->body_len = strlen(body);
	node_err err = { 0 };
	int rv;
	if (layer == LAYER_BARE) {
		if ((rv = nng_req0_open(&t->sock)) != 0)
			nng_die("nng_req0_open", rv);
		nng_socket_set_ms(t->sock, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
		nng_socket_set_size(t->sock, NNG_OPT_RECVMAXSZ, 0);
		if ((rv = nng_dial(t->sock, url, NULL, 0)) != 0)
			nng_die("nng_dial", rv);
		if ((rv = nng_ctx_open(&t->ctx, t->sock)) != 0 || (rv = nng_aio_alloc(&t->aio, NULL, NULL)) != 0)
			nng_die("client context", rv);
		nng_aio_set_timeout(t->aio, CALL_TIMEOUT_MS);
	} else {
		node_wire_init(&t->wire);
		if (nocomp)
			t->wire.limits.compress_above = 0;
		if (hmac && node_auth_new(&t->wire.auth, SECRET, strlen(SECRET), 0, &err) != 0)
			die("node_auth_new", err.msg);
		if (node_client_open(&t->cl, url, "bench server", &t->wire, &err) != 0)
			die("node_client_open", err.msg);
		t->req = cJSON_Parse(body);
		if (t->req == NULL)
			die("cannot parse the request body", NULL);
	}
}

static void target_close(target *t)
{
	if (t->layer == LAYER_BARE) {
		nng_aio_free(t->aio);
		nng_ctx_close(t->ctx);
		nng_close(t->sock);
	} else {
		node_client_close(t->cl);
		cJSON_Delete(t->req);
		node_wire_fini(&t->wire);
	}
}

static char first_error[600];
static atomic_int first_error_set;

static void note_error(const char *msg)
{
	int expect = 0;
	if (atomic_compare_exchange_strong(&first_error_set, &expect, 1))
		snprintf(first_error, sizeof first_error, "%s", msg);
}

/* One request, waiting for the reply. check: verify the echo. */
static int target_call(target *t, int check)
{
	if (t->layer == LAYER_BARE) {
		nng_msg *m;
		int rv = nng_msg_alloc(&m, t->body_len);
		if (rv != 0)
			return rv;
		memcpy(nng_msg_body(m), t->body, t->body_len);
		nng_aio_set_msg(t->aio, m);
		nng_ctx_send(t->ctx, t->aio);
		nng_aio_wait(t->aio);
		if ((rv = nng_aio_result(t->aio)) != 0) {
			nng_msg_free(nng_aio_get_msg(t->aio));
			note_error(nng_strerror(rv));
			return rv;
		}
		nng_ctx_recv(t->ctx, t->aio);
		nng_aio_wait(t->aio);
		if ((rv = nng_aio_result(t->aio)) != 0) {
			note_error(nng_strerror(rv));
			return rv;
		}
		m = nng_aio_get_msg(t->aio);
		if (check && (nng_msg_len(m) != t->body_len || memcmp(nng_msg_body(m), t->body, t->body_len) != 0))
			die("bare echo returned something else", NULL);
		nng_msg_free(m);
		return 0;
	}
	cJSON *reply = NULL;
	node_err err = { 0 };
	int rc = node_client_call(t->cl, t->req, CALL_TIMEOUT_MS, &reply, &err);
	if (rc != 0)
		note_error(err.msg);
	if (rc == 0 && check) {
		const cJSON *want = cJSON_GetObjectItemCaseSensitive(t->req, "v");
		const cJSON *got = cJSON_GetObjectItemCaseSensitive(reply, "v");
		if (!cJSON_Compare(want, got, 1))
			die("node echo returned something else", NULL);
	}
	cJSON_Delete(reply);
	return rc;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

typedef struct lat_result {
	double median_us, p99_us, rate;
	long calls, errors;
} lat_result;

/* Sequential round trips gathered over several slices. */
typedef struct lat_acc {
	uint64_t *ns;
	long n, cap, errors;
	double elapsed;
} lat_acc;

static void warm_up(target *t)
{
	for (int i = 0; i < 300; i++)
		if (target_call(t, i == 0) != 0)
			die("warm-up call failed", first_error);
}

/* One slice: up to count more calls, or as many as fit in max_s seconds. */
static void lat_slice(target *t, lat_acc *acc, long count, double max_s)
{
	if (acc->n + count > acc->cap) {
		acc->cap = acc->n + count;
		acc->ns = realloc(acc->ns, (size_t)acc->cap * sizeof *acc->ns);
		if (acc->ns == NULL)
			die("out of memory", NULL);
	}
	long stop = acc->n + count;
	double t0 = now_s(), end = t0 + max_s;
	while (acc->n < stop && acc->errors <= 100) {
		uint64_t a = now_ns();
		int rc = target_call(t, 0);
		uint64_t b = now_ns();
		if (rc != 0) {
			acc->errors++;
			continue;
		}
		acc->ns[acc->n++] = b - a;
		if ((acc->n & 15) == 0 && now_s() > end)
			break;
	}
	acc->elapsed += now_s() - t0;
}

static void lat_finish(lat_acc *acc, lat_result *res)
{
	long n = acc->n;
	qsort(acc->ns, (size_t)n, sizeof *acc->ns, cmp_u64);
	res->calls = n;
	res->errors = acc->errors;
	res->median_us = n ? acc->ns[n / 2] / 1e3 : NAN;
	res->p99_us = n ? acc->ns[(size_t)((double)n * 0.99)] / 1e3 : NAN;
	res->rate = acc->elapsed > 0 ? n / acc->elapsed : NAN;
	free(acc->ns);
	memset(acc, 0, sizeof *acc);
}

/* ---- many requests in flight ---- */

typedef struct flight {
	target *t;
	atomic_ullong done, errors;
	atomic_int active;
	atomic_int stop;
} flight;

typedef struct bare_slot {
	flight *f;
	nng_ctx ctx;
	nng_aio *aio;
	int sending;
} bare_slot;

static int bare_slot_send(bare_slot *s)
{
	nng_msg *m;
	if (nng_msg_alloc(&m, s->f->t->body_len) != 0)
		return -1;
	memcpy(nng_msg_body(m), s->f->t->body, s->f->t->body_len);
	s->sending = 1;
	nng_aio_set_msg(s->aio, m);
	nng_ctx_send(s->ctx, s->aio);
	return 0;
}

static void bare_slot_cb(void *arg)
{
	bare_slot *s = arg;
	flight *f = s->f;
	int rv = nng_aio_result(s->aio);
	if (rv != 0) {
		if (s->sending)
			nng_msg_free(nng_aio_get_msg(s->aio));
		note_error(nng_strerror(rv));
		atomic_fetch_add(&f->errors, 1);
		atomic_fetch_sub(&f->active, 1);
		return;
	}
	if (s->sending) {
		s->sending = 0;
		nng_ctx_recv(s->ctx, s->aio);
		return;
	}
	nng_msg_free(nng_aio_get_msg(s->aio));
	atomic_fetch_add(&f->done, 1);
	if (atomic_load(&f->stop) || bare_slot_send(s) != 0)
		atomic_fetch_sub(&f->active, 1);
}

static int node_issue(flight *f);

static void node_flight_cb(int rc, cJSON *reply, const node_err *err, void *arg)
{
	flight *f = arg;
	cJSON_Delete(reply);
	if (rc != 0) {
		note_error(err ? err->msg : "error");
		atomic_fetch_add(&f->errors, 1);
		atomic_fetch_sub(&f->active, 1);
		return;
	}
	atomic_fetch_add(&f->done, 1);
	if (atomic_load(&f->stop) || node_issue(f) != 0)
		atomic_fetch_sub(&f->active, 1);
}

static int node_issue(flight *f)
{
	node_err err = { 0 };
	int rc = node_client_call_async(f->t->cl, f->t->req, CALL_TIMEOUT_MS, node_flight_cb, f, &err);
	if (rc != 0)
		note_error(err.msg);
	return rc;
}

typedef struct rate_result {
	double rate;
	double cli_cpu_us, srv_cpu_us; /* CPU per request, client and server process */
	unsigned long long errors;
	/* totals over the slices */
	double n, elapsed, cli_cpu_s, srv_cpu_s;
} rate_result;

/* One slice of secs seconds (after warm seconds) with inflight requests
 * always outstanding; adds to res. */
static void rate_slice(target *t, const child *srv, int inflight, double secs, double warm, rate_result *res)
{
	flight f;
	memset(&f, 0, sizeof f);
	f.t = t;
	bare_slot *slots = NULL;
	if (t->layer == LAYER_BARE) {
		slots = calloc((size_t)inflight, sizeof *slots);
		for (int i = 0; i < inflight; i++) {
			int rv;
			slots[i].f = &f;
			if ((rv = nng_ctx_open(&slots[i].ctx, t->sock)) != 0 || (rv = nng_aio_alloc(&slots[i].aio, bare_slot_cb, &slots[i])) != 0)
				nng_die("client context", rv);
			nng_aio_set_timeout(slots[i].aio, CALL_TIMEOUT_MS);
		}
	}
	atomic_store(&f.active, inflight);
	for (int i = 0; i < inflight; i++) {
		int rc = t->layer == LAYER_BARE ? bare_slot_send(&slots[i]) : node_issue(&f);
		if (rc != 0)
			atomic_fetch_sub(&f.active, 1);
	}
	sleep_s(warm);
	unsigned long long d0 = atomic_load(&f.done);
	double c0 = self_cpu_s(), s0 = srv ? child_cpu_s(srv) : NAN, t0 = now_s();
	sleep_s(secs);
	unsigned long long d1 = atomic_load(&f.done);
	double c1 = self_cpu_s(), s1 = srv ? child_cpu_s(srv) : NAN, t1 = now_s();
	atomic_store(&f.stop, 1);
	double deadline = now_s() + CALL_TIMEOUT_MS / 1000.0 + 1;
	while (atomic_load(&f.active) > 0 && now_s() < deadline)
		sleep_s(0.001);
	if (atomic_load(&f.active) > 0)
		die("requests still in flight after the run", NULL);
	if (slots) {
		for (int i = 0; i < inflight; i++) {
			nng_aio_free(slots[i].aio);
			nng_ctx_close(slots[i].ctx);
		}
		free(slots);
	}
	res->n += (double)(d1 - d0);
	res->elapsed += t1 - t0;
	res->cli_cpu_s += c1 - c0;
	res->srv_cpu_s += s1 - s0;
	res->errors += atomic_load(&f.errors);
	res->rate = res->n / res->elapsed;
	res->cli_cpu_us = res->n > 0 ? res->cli_cpu_s * 1e6 / res->n : NAN;
	res->srv_cpu_us = res->n > 0 ? res->srv_cpu_s * 1e6 / res->n : NAN;
}

/* ------------------------------------------------------------------ */
/* Raw nng                                                              */

typedef struct push_arg {
	nng_socket sock;
	atomic_int stop;
} push_arg;

static void *inproc_push_loop(void *arg)
{
	push_arg *p = arg;
	char buf[16] = "0123456789abcde";
	while (!atomic_load(&p->stop)) {
		int rv = nng_send(p->sock, buf, sizeof buf, 0);
		if (rv == NNG_ECLOSED)
			break;
	}
	return NULL;
}

/* Count messages a PULL socket receives in secs. */
static double pull_rate(nng_socket pull, double secs)
{
	nng_socket_set_ms(pull, NNG_OPT_RECVTIMEO, 5000);
	double warm_end = now_s() + (secs > 1 ? 0.2 : secs / 5);
	nng_msg *m;
	while (now_s() < warm_end) {
		int rv = nng_recvmsg(pull, &m, 0);
		if (rv != 0)
			nng_die("pull warm-up", rv);
		nng_msg_free(m);
	}
	long n = 0;
	double t0 = now_s(), end = t0 + secs, t1 = t0;
	for (;;) {
		int rv = nng_recvmsg(pull, &m, 0);
		if (rv != 0)
			nng_die("pull", rv);
		nng_msg_free(m);
		n++;
		if ((n & 255) == 0 && (t1 = now_s()) >= end)
			break;
	}
	return n / (t1 - t0);
}

static double bench_pushpull_inproc(double secs, int buf)
{
	nng_socket pull;
	push_arg p;
	memset(&p, 0, sizeof p);
	int rv;
	if ((rv = nng_pull0_open(&pull)) != 0 || (rv = nng_push0_open(&p.sock)) != 0)
		nng_die("push/pull", rv);
	if ((rv = nng_listen(pull, "inproc://bench_transport_pp", NULL, 0)) != 0 ||
	    (rv = nng_dial(p.sock, "inproc://bench_transport_pp", NULL, 0)) != 0)
		nng_die("inproc push/pull", rv);
	nng_socket_set_ms(p.sock, NNG_OPT_SENDTIMEO, 100);
	if (buf) {
		nng_socket_set_int(p.sock, NNG_OPT_SENDBUF, PP_BUF);
		nng_socket_set_int(pull, NNG_OPT_RECVBUF, PP_BUF);
	}
	pthread_t thr;
	pthread_create(&thr, NULL, inproc_push_loop, &p);
	double r = pull_rate(pull, secs);
	atomic_store(&p.stop, 1);
	nng_close(pull);
	pthread_join(thr, NULL);
	nng_close(p.sock);
	return r;
}

static double bench_pushpull_tcp(double secs, int buf)
{
	child ch;
	child_start(&ch, "push", 0, buf ? "buf" : NULL, NULL);
	nng_socket pull;
	int rv;
	if ((rv = nng_pull0_open(&pull)) != 0)
		nng_die("nng_pull0_open", rv);
	if (buf)
		nng_socket_set_int(pull, NNG_OPT_RECVBUF, PP_BUF);
	if ((rv = nng_dial(pull, ch.url, NULL, 0)) != 0)
		nng_die("dial push server", rv);
	double r = pull_rate(pull, secs);
	/* Stop the sender first: nng 1.5.2 can hang in nng_close of a tcp PULL
	 * socket while the peer is still streaming into it (nng issue #1219,
	 * fixed after 1.5.2 by nng pull request #1636). */
	child_stop(&ch);
	nng_close(pull);
	return r;
}

/* Plain REQ/REP sockets, no contexts: nng_send then nng_recv. */
static void pingpong(nng_socket req, double secs, lat_result *res)
{
	char buf[] = SMALL_BODY;
	nng_socket_set_ms(req, NNG_OPT_REQ_RESENDTIME, NNG_DURATION_INFINITE);
	nng_socket_set_ms(req, NNG_OPT_RECVTIMEO, CALL_TIMEOUT_MS);
	size_t cap = 1 << 20;
	uint64_t *ns = malloc(cap * sizeof *ns);
	long n = 0;
	double warm_end = now_s() + (secs > 1 ? 0.2 : secs / 5);
	for (int warm = 1;; warm = 0) {
		double t0 = now_s(), end = warm ? warm_end : t0 + secs;
		n = 0;
		while ((size_t)n < cap) {
			uint64_t a = now_ns();
			nng_msg *m;
			int rv = nng_send(req, buf, sizeof buf - 1, 0);
			if (rv == 0)
				rv = nng_recvmsg(req, &m, 0);
			if (rv != 0)
				nng_die("ping-pong", rv);
			nng_msg_free(m);
			ns[n++] = now_ns() - a;
			if ((n & 15) == 0 && now_s() >= end)
				break;
		}
		if (!warm) {
			double el = now_s() - t0;
			qsort(ns, (size_t)n, sizeof *ns, cmp_u64);
			res->calls = n;
			res->errors = 0;
			res->rate = n / el;
			res->median_us = ns[n / 2] / 1e3;
			res->p99_us = ns[(size_t)((double)n * 0.99)] / 1e3;
			break;
		}
	}
	free(ns);
}

static void bench_pingpong_inproc(double secs, lat_result *res)
{
	nng_socket rep, req;
	int rv;
	if ((rv = nng_rep0_open(&rep)) != 0 || (rv = nng_req0_open(&req)) != 0)
		nng_die("req/rep", rv);
	if ((rv = nng_listen(rep, "inproc://bench_transport_rr", NULL, 0)) != 0 ||
	    (rv = nng_dial(req, "inproc://bench_transport_rr", NULL, 0)) != 0)
		nng_die("inproc req/rep", rv);
	pthread_t thr;
	pthread_create(&thr, NULL, rep_loop, &rep);
	pingpong(req, secs, res);
	nng_close(req);
	nng_close(rep);
	pthread_join(thr, NULL);
}

static void bench_pingpong_tcp(double secs, lat_result *res)
{
	child ch;
	child_start(&ch, "rep", 0, NULL, NULL);
	nng_socket req;
	int rv;
	if ((rv = nng_req0_open(&req)) != 0)
		nng_die("nng_req0_open", rv);
	if ((rv = nng_dial(req, ch.url, NULL, 0)) != 0)
		nng_die("dial rep server", rv);
	pingpong(req, secs, res);
	child_stop(&ch);
	nng_close(req);
}

/* ------------------------------------------------------------------ */
/* The report                                                           */

static const int INFLIGHT[3] = { 1, 8, 64 };

typedef struct row {
	const char *transport, *layer;
	int node, ipc, hmac, nocomp;
	const char *body;
	lat_result lat;
	rate_result rate[3];
} row;

#define SLICE_S 0.5 /* compared rows take turns in slices this long */

/* Measure rows side by side: every row gets its own server child and
 * client, and the rows take turns in short slices so that a change in the
 * machine's background load hits all of them alike. */
static void bench_rows(row *rows, int nrows, long ncalls, double lat_max_s, double rate_s)
{
	child ch[8];
	target t[8];
	lat_acc acc[8];
	memset(acc, 0, sizeof acc);
	for (int i = 0; i < nrows; i++) {
		row *r = &rows[i];
		child_start(&ch[i], r->node ? "node" : "bare", r->ipc, r->hmac ? "hmac" : NULL, r->nocomp ? "nocomp" : NULL);
		target_open(&t[i], r->node ? LAYER_NODE : LAYER_BARE, ch[i].url, r->body, r->hmac, r->nocomp);
		warm_up(&t[i]);
	}
	/* Sequential round trips: slices of at most 1000 calls or 0.1 s. */
	for (int more = 1; more;) {
		more = 0;
		for (int i = 0; i < nrows; i++) {
			if (acc[i].n >= ncalls || acc[i].elapsed >= lat_max_s || acc[i].errors > 100)
				continue;
			long left = ncalls - acc[i].n;
			lat_slice(&t[i], &acc[i], left < 1000 ? left : 1000, 0.1);
			more = 1;
		}
	}
	for (int i = 0; i < nrows; i++)
		lat_finish(&acc[i], &rows[i].lat);
	/* Pipelined: each in-flight level in slices, rows in turn. */
	int slices = (int)(rate_s / SLICE_S + 0.5);
	if (slices < 1)
		slices = 1;
	for (int k = 0; k < 3; k++)
		for (int sl = 0; sl < slices; sl++)
			for (int i = 0; i < nrows; i++)
				rate_slice(&t[i], &ch[i], INFLIGHT[k], rate_s / slices, sl == 0 ? 0.1 : 0.02, &rows[i].rate[k]);
	for (int i = 0; i < nrows; i++) {
		target_close(&t[i]);
		child_stop(&ch[i]);
		row *r = &rows[i];
		unsigned long long errs = (unsigned long long)r->lat.errors;
		for (int k = 0; k < 3; k++)
			errs += r->rate[k].errors;
		if (errs > 0)
			fprintf(stderr, "bench_transport: %s %s: %llu failed calls (first: %s)\n", r->transport, r->layer, errs,
			    first_error);
	}
}

static void print_row(const row *r, int show_cpu, double mbps)
{
	printf("  %-5s %-15s %8.1f %8.1f  %9.0f %9.0f %9.0f", r->transport, r->layer, r->lat.median_us, r->lat.p99_us,
	    r->rate[0].rate, r->rate[1].rate, r->rate[2].rate);
	if (show_cpu)
		printf("   %5.1f + %5.1f", r->rate[2].cli_cpu_us, r->rate[2].srv_cpu_us);
	if (mbps >= 0)
		printf("   %20.1f", mbps);
	printf("\n");
}

static double env_double(const char *name, double def)
{
	const char *s = getenv(name);
	if (s == NULL || *s == '\0')
		return def;
	char *end;
	double v = strtod(s, &end);
	if (*end != '\0' || !(v > 0))
		die("bad number in the environment", name);
	return v;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "serve") == 0)
		return serve_main(argc, argv);
	const char *parts = argc >= 2 ? argv[1] : "1234";
	if (argc > 2 || strspn(parts, "1234") != strlen(parts) || *parts == '\0') {
		fprintf(stderr, "usage: bench_transport [PARTS, e.g. 1234 or 3]   (environment: BENCH_SECONDS, BENCH_CALLS)\n");
		return 2;
	}
	int part12 = strpbrk(parts, "12") != NULL, part3 = strchr(parts, '3') != NULL, part4 = strchr(parts, '4') != NULL;
	signal(SIGPIPE, SIG_IGN);
	setvbuf(stdout, NULL, _IOLBF, 0);
	double secs = env_double("BENCH_SECONDS", 2.0);
	long ncalls = (long)env_double("BENCH_CALLS", 20000);
	double half = secs / 2;
	double started = now_s();
	char *big = big_body_text();

	/* What a 64 KiB body becomes on the wire. */
	size_t big_lz4 = 0;
	{
		node_wire w;
		node_wire_init(&w);
		cJSON *j = cJSON_Parse(big);
		nng_msg *m;
		node_err err = { 0 };
		if (j == NULL || node_msg_encode(&w, j, &m, &err) != 0)
			die("cannot encode the 64 KiB body", err.msg);
		big_lz4 = nng_msg_len(m);
		nng_msg_free(m);
		cJSON_Delete(j);
		node_wire_fini(&w);
	}

	char load[64] = "?";
	FILE *lf = fopen("/proc/loadavg", "r");
	if (lf != NULL) {
		if (fgets(load, sizeof load, lf) != NULL)
			load[strcspn(load, "\n")] = '\0';
		fclose(lf);
	}
	printf("bench_transport: %ld cores online, nng %s, BENCH_SECONDS=%g, BENCH_CALLS=%ld, loadavg %s\n",
	    sysconf(_SC_NPROCESSORS_ONLN), nng_version(), secs, ncalls, load);
	printf("server in a child process (%d work objects / receivers); client in this one; times in microseconds\n", WORKERS);
	printf("small body %s (%zu bytes); 64 KiB body: %zu bytes of JSON words, %zu bytes lz4-framed\n\n", SMALL_BODY,
	    strlen(SMALL_BODY), strlen(big), big_lz4);

	/* 1 and 2: bare and node over tcp and ipc. */
	row main_rows[4] = {
		{ .transport = "tcp", .layer = "bare nng", .body = SMALL_BODY },
		{ .transport = "tcp", .layer = "node", .node = 1, .body = SMALL_BODY },
		{ .transport = "ipc", .layer = "bare nng", .ipc = 1, .body = SMALL_BODY },
		{ .transport = "ipc", .layer = "node", .node = 1, .ipc = 1, .body = SMALL_BODY },
	};
	if (part12) {
		printf("1-2. small body: sequential round trip (%ld calls) and pipelined requests/s (%g s each)\n", ncalls, secs);
		printf("  %-5s %-15s %8s %8s  %9s %9s %9s   %s\n", "", "", "median", "p99", "1 inflt", "8 inflt", "64 inflt",
		    "cpu us/req @64 cli+srv");
		for (int i = 0; i < 4; i += 2) { /* bare and node over one transport take turns */
			bench_rows(&main_rows[i], 2, ncalls, 3 * secs, secs);
			print_row(&main_rows[i], 1, -1);
			print_row(&main_rows[i + 1], 1, -1);
		}
		printf("\n");
	}

	/* 3: node variants over tcp. */
	row var_rows[5] = {
		{ .transport = "tcp", .layer = "node", .node = 1, .body = SMALL_BODY },
		{ .transport = "tcp", .layer = "node hmac", .node = 1, .hmac = 1, .body = SMALL_BODY },
		{ .transport = "tcp", .layer = "bare 64K", .body = big },
		{ .transport = "tcp", .layer = "node 64K lz4", .node = 1, .body = big },
		{ .transport = "tcp", .layer = "node 64K raw", .node = 1, .nocomp = 1, .body = big },
	};
	if (part3) {
		printf("3. variants over tcp (%g s each; round trip from at most %ld sequential calls or %g s)\n", half, ncalls, half / 2);
		printf("  %-5s %-15s %8s %8s  %9s %9s %9s   %-22s %s\n", "", "", "median", "p99", "1 inflt", "8 inflt",
		    "64 inflt", "cpu us/req @64 cli+srv", "MB/s @64 (each way)");
		bench_rows(var_rows, 5, ncalls, half / 2, half);
		for (int i = 0; i < 5; i++) /* rows 2-4 carry 64 KiB each way */
			print_row(&var_rows[i], 1, i >= 2 ? var_rows[i].rate[2].rate * (double)strlen(big) / 1e6 : -1);
		printf("\n");
	}

	/* 4: raw nng. */
	if (part4) {
		printf("4. raw nng, 16-byte messages (%g s each)\n", half);
		for (int buf = 0; buf <= 1; buf++) {
			const char *how = buf ? "buffers " PP_BUF_TEXT : "default buffers";
			double r = bench_pushpull_inproc(half, buf);
			printf("  push/pull one-way   inproc  %9.0f msgs/s  %6.1f us/msg  (%s)\n", r, 1e6 / r, how);
			r = bench_pushpull_tcp(half, buf);
			printf("  push/pull one-way   tcp     %9.0f msgs/s  %6.1f us/msg  (%s, across processes)\n", r, 1e6 / r, how);
		}
		lat_result pi, pt;
		bench_pingpong_inproc(half, &pi);
		printf("  req/rep ping-pong   inproc  %9.0f rt/s    median %6.1f  p99 %6.1f\n", pi.rate, pi.median_us, pi.p99_us);
		bench_pingpong_tcp(half, &pt);
		printf("  req/rep ping-pong   tcp     %9.0f rt/s    median %6.1f  p99 %6.1f  (plain sockets, across processes)\n",
		    pt.rate, pt.median_us, pt.p99_us);
		printf("\n");
	}

	if (part12) {
		for (int i = 0; i < 4; i += 2) {
			const row *b = &main_rows[i], *n = &main_rows[i + 1];
			printf("node/bare round trip: %.0f%% added (%s, median %.1f vs %.1f us)\n",
			    (n->lat.median_us / b->lat.median_us - 1) * 100, b->transport, n->lat.median_us, b->lat.median_us);
		}
		for (int i = 0; i < 4; i += 2) {
			const row *b = &main_rows[i], *n = &main_rows[i + 1];
			printf("node/bare pipelined rate at 64 in flight: %.0f%% (%s, %.0f vs %.0f req/s)\n",
			    n->rate[2].rate / b->rate[2].rate * 100, b->transport, n->rate[2].rate, b->rate[2].rate);
		}
	}
	if (part3) {
		printf("node hmac/plain rate at 64 in flight: %.0f%% (tcp)\n", var_rows[1].rate[2].rate / var_rows[0].rate[2].rate * 100);
		printf("node/bare 64 KiB round trip: %.1fx (lz4), %.1fx (uncompressed)\n", var_rows[3].lat.median_us / var_rows[2].lat.median_us,
		    var_rows[4].lat.median_us / var_rows[2].lat.median_us);
	}
	printf("total %.1f s\n", now_s() - started);
	free(big);
	return 0;
}
