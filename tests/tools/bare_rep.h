/* What the benchmarks that measure against a bare nng REQ/REP pair
 * (bench_chan.c, bench_rpc.c) share: the bare server (REP contexts answering
 * a fixed reply), run as a child process that prints its URL on stdout; the
 * children (posix_spawn of /proc/self/exe: nng is not fork-safe, reaped by
 * pid); the client's dial and round trip; time and error helpers. Each
 * program defines BARE_TOOL (its name, which starts its error lines) and
 * includes it once; everything is static. */
#ifndef NODE_TOOLS_BARE_REP_H
#define NODE_TOOLS_BARE_REP_H

#ifndef BARE_TOOL
#error "define BARE_TOOL (the program's name) before including bare_rep.h"
#endif

#include <arpa/inet.h>
#include <nng/nng.h>
#include <nng/protocol/reqrep0/rep.h>
#include <nng/protocol/reqrep0/req.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, const char *why)
{
	fprintf(stderr, BARE_TOOL ": %s: %s\n", what, why);
	exit(1);
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* ---- children ---- */

typedef struct child {
	pid_t pid;
	FILE *out; /* its stdout */
	int in;    /* its stdin: closing it tells the bare server to stop */
} child;

static void child_start(child *c, char **argv)
{
	int in[2], out[2];
	if (pipe(in) != 0 || pipe(out) != 0)
		die("pipe", "failed");
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_addclose(&fa, in[1]);
	posix_spawn_file_actions_addclose(&fa, out[0]);
	if (posix_spawn(&c->pid, "/proc/self/exe", &fa, NULL, argv, environ) != 0)
		die("spawn", argv[1]);
	posix_spawn_file_actions_destroy(&fa);
	close(in[0]);
	close(out[1]);
	c->in = in[1];
	if ((c->out = fdopen(out[0], "r")) == NULL)
		die("fdopen", "failed");
}

/* One line of the child's stdout, or die naming what was expected. */
static void child_line(child *c, char *buf, size_t n, const char *what)
{
	if (fgets(buf, (int)n, c->out) == NULL)
		die(what, "the child exited without it");
	buf[strcspn(buf, "\n")] = '\0';
}

/* Closes its stdin (SIGTERM too with kill_it) and waits: its exit status. */
static int child_reap(child *c, int kill_it)
{
	close(c->in);
	if (kill_it)
		kill(c->pid, SIGTERM);
	int st = 0;
	waitpid(c->pid, &st, 0);
	fclose(c->out);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

/* ---- the bare server: REP contexts answering a fixed reply ---- */

typedef struct bare_ctx {
	nng_ctx ctx;
	nng_aio *aio;
	int sending;
	const char *reply;
} bare_ctx;

static void bare_cb(void *arg)
{
	bare_ctx *b = arg;
	int rv = nng_aio_result(b->aio);
	if (rv != 0) {
		if (b->sending)
			nng_msg_free(nng_aio_get_msg(b->aio));
		if (rv == NNG_ECLOSED)
			return;
		b->sending = 0;
		nng_ctx_recv(b->ctx, b->aio);
		return;
	}
	if (b->sending) {
		b->sending = 0;
		nng_ctx_recv(b->ctx, b->aio);
		return;
	}
	nng_msg *m = nng_aio_get_msg(b->aio);
	nng_msg_clear(m);
	nng_msg_append(m, b->reply, strlen(b->reply));
	nng_aio_set_msg(b->aio, m);
	b->sending = 1;
	nng_ctx_send(b->ctx, b->aio);
}

/* The child's side: listens on a free port of 127.0.0.1 with nctx contexts
 * answering reply to every request, prints its URL and serves until its
 * stdin closes. */
static int serve_bare(const char *reply, int nctx)
{
	nng_socket s;
	nng_listener l;
	int rv = nng_rep0_open(&s);
	if (rv == 0)
		rv = nng_listen(s, "tcp://127.0.0.1:0", &l, 0);
	if (rv != 0)
		die("bare server", nng_strerror(rv));
	nng_sockaddr sa;
	nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa);
	bare_ctx *ctxs = calloc((size_t)nctx, sizeof *ctxs); /* in use until exit */
	if (ctxs == NULL)
		die("bare server", "contexts");
	for (int i = 0; i < nctx; i++) {
		ctxs[i].reply = reply;
		if (nng_ctx_open(&ctxs[i].ctx, s) != 0 || nng_aio_alloc(&ctxs[i].aio, bare_cb, &ctxs[i]) != 0)
			die("bare server", "contexts");
		nng_ctx_recv(ctxs[i].ctx, ctxs[i].aio);
	}
	printf("tcp://127.0.0.1:%u\n", (unsigned)ntohs(sa.s_in.sa_port));
	fflush(stdout);
	char c;
	while (read(0, &c, 1) > 0) /* until the parent closes our stdin */
		;
	nng_close(s);
	return 0;
}

/* The parent's side: spawns argv (this program in its serve mode) and reads
 * the server's URL into url. */
static void bare_start(child *c, char **argv, char *url, size_t n)
{
	child_start(c, argv);
	child_line(c, url, n, "bare server URL");
}

/* A REQ socket dialled to the bare server at url. */
static nng_socket bare_dial(const char *url)
{
	nng_socket s;
	if (nng_req0_open(&s) != 0 || nng_dial(s, url, NULL, 0) != 0)
		die("bare dial", url);
	return s;
}

/* One round trip: sends req, waits for the reply. */
static void bare_call(nng_socket s, const char *req)
{
	char *buf;
	size_t len;
	if (nng_send(s, (void *)req, strlen(req), 0) != 0 || nng_recv(s, &buf, &len, NNG_FLAG_ALLOC) != 0)
		die("bare call", "failed");
	nng_free(buf, len);
}

#endif
