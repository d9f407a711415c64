/* node exec TARGET [--] CMD [ARG...]: run a command of an RPC server's
 * allow-list there (RPyC's classic mode, done safely) and show its output
 * here as it comes, then exit with its status. The server side is the exec
 * kind of `node rpc` (modules/rpc/exec.c); this is its client. */
#include <errno.h>
#include <mbedtls/base64.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "core/clock.h"
#include "core/discover.h"
#include "core/transport.h"

#define EXEC_CLI_STDIN_MAX (1 << 20)  /* what one exec.start carries */
#define EXEC_CLI_WAIT_MS 1000         /* how long one exec.read may wait for output */
#define EXEC_CLI_POLL_MS 50           /* how often a wait looks for Ctrl-C */
/* The longest a command can run (roles.rpc.exec.max_seconds is at most a
 * day), plus its last output: the read loop ends by then whatever happens. */
#define EXEC_CLI_MAX_MS ((86400LL + 600) * 1000)

static const node_opt exec_opts[] = {
	{"stdin", 0, "FILE", "send FILE (- for this standard input) as the command's standard input, at most 1 MiB"},
	{"nameserver", 0, "URL", "name server that knows TARGET (default: the cluster file's, else a broadcast)"},
	{NULL, 0, NULL, NULL},
};

enum { CLI_ANSWER, CLI_TRANSPORT, CLI_INTERRUPTED };

typedef struct exec_cli {
	node_ctx *ctx;
	node_client *cl;
	char url[1024];
	char id[64];          /* the remote command, once started */
	int next_id;          /* JSON-RPC ids */
	/* the asynchronous call in flight: its callback fills these */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done, rc;
	cJSON *reply;
	node_err err;
	int64_t call_end;     /* when its own time limit has surely ended it */
} exec_cli;

static int cli_fail(const char *fmt, const char *a, const char *b, int status)
{
	fprintf(stderr, "node exec: ");
	fprintf(stderr, fmt, a, b);
	fputc('\n', stderr);
	return status;
}

static int exit_for_err(const node_err *err)
{
	return err->rc == NODE_ETIMEDOUT ? NODE_EXIT_TIMEOUT : NODE_EXIT_FAIL;
}

/* ---- the command line ---- */

/* Read f whole, refusing more than EXEC_CLI_STDIN_MAX bytes. */
static int read_input(FILE *f, const char *name, char **out, size_t *len)
{
	char *buf = malloc(EXEC_CLI_STDIN_MAX + 1);
	if (buf == NULL)
		return cli_fail("--stdin %s: out of memory%s", name, "", NODE_EXIT_FAIL);
	size_t n = fread(buf, 1, EXEC_CLI_STDIN_MAX + 1, f);
	if (ferror(f)) {
		free(buf);
		return cli_fail("--stdin %s: %s", name, strerror(errno), NODE_EXIT_FAIL);
	}
	if (n > EXEC_CLI_STDIN_MAX) {
		free(buf);
		return cli_fail("--stdin %s: larger than 1 MiB (1048576 bytes), the most one exec.start carries%s", name, "",
		    NODE_EXIT_USAGE);
	}
	*out = buf;
	*len = n;
	return 0;
}

/* {"base64": ...} of --stdin, or NULL with *rc 0 when there is none. */
static cJSON *stdin_param(const node_args *a, int *rc)
{
	const char *name = node_args_get(a, "stdin");
	*rc = 0;
	if (name == NULL)
		return NULL;
	FILE *f = strcmp(name, "-") == 0 ? stdin : fopen(name, "rb");
	if (f == NULL) {
		*rc = cli_fail("--stdin %s: %s", name, strerror(errno), NODE_EXIT_USAGE);
		return NULL;
	}
	char *data = NULL;
	size_t len = 0;
	*rc = read_input(f, name, &data, &len);
	if (f != stdin)
		fclose(f);
	if (*rc != 0)
		return NULL;
	size_t cap = 4 * ((len + 2) / 3) + 1, olen = 0;
	unsigned char *text = malloc(cap);
	cJSON *o = cJSON_CreateObject();
	if (text && o && mbedtls_base64_encode(text, cap, &olen, (const unsigned char *)data, len) == 0) {
		text[olen] = '\0';
		cJSON_AddStringToObject(o, "base64", (const char *)text);
	} else {
		cJSON_Delete(o);
		o = NULL;
		*rc = cli_fail("--stdin %s: out of memory%s", name, "", NODE_EXIT_FAIL);
	}
	free(text);
	free(data);
	return o;
}

/* [argv] or [argv, stdin]. */
static cJSON *start_params(const node_args *a, int *rc)
{
	cJSON *in = stdin_param(a, rc);
	if (*rc != 0)
		return NULL;
	cJSON *params = cJSON_CreateArray(), *argv = cJSON_CreateArray();
	for (int i = 1; argv && i < a->npos; i++)
		cJSON_AddItemToArray(argv, cJSON_CreateString(a->pos[i]));
	if (params && argv) {
		cJSON_AddItemToArray(params, argv);
		argv = NULL;
		if (in)
			cJSON_AddItemToArray(params, in);
		in = NULL;
	}
	cJSON_Delete(argv);
	cJSON_Delete(in);
	return params;
}

/* ---- finding the server ---- */

/* TARGET is a URL, or a name the name server knows. */
static int find_target(exec_cli *c, const node_args *a)
{
	const char *t = a->pos[0];
	if (strstr(t, "://")) {
		snprintf(c->url, sizeof c->url, "%s", t);
		return 0;
	}
	char ns[1024];
	node_err err = {0};
	if (node_nameserver_url(&c->ctx->conf, node_args_get(a, "nameserver"), ns, sizeof ns, &err) != 0)
		return cli_fail("%s is not a URL, and there is no name server to look it up: %s", t, err.msg,
		    err.rc == NODE_ENOTFOUND ? NODE_EXIT_CONFIG : exit_for_err(&err));
	node_client *nc = NULL;
	cJSON *req = cJSON_CreateObject(), *reply = NULL;
	cJSON_AddStringToObject(req, "op", "lookup");
	cJSON_AddStringToObject(req, "name", t);
	int rc = node_client_open(&nc, ns, "name server", &c->ctx->wire, &err);
	if (rc == 0)
		rc = node_client_call(nc, req, c->ctx->timeout_ms, &reply, &err);
	const char *addr = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "address"));
	if (rc == 0 && addr)
		snprintf(c->url, sizeof c->url, "%s", addr);
	cJSON_Delete(req);
	cJSON_Delete(reply);
	if (nc)
		node_client_close(nc);
	if (rc == NODE_EREMOTE && strcmp(err.code, NODE_ERR_NOT_FOUND) == 0)
		return cli_fail("%s: no such name at the name server %s", t, ns, NODE_EXIT_FAIL);
	if (rc != 0)
		return cli_fail("looking up %s: %s", t, err.msg, exit_for_err(&err));
	return addr ? 0 : cli_fail("looking up %s: the name server's answer has no address%s", t, "", NODE_EXIT_FAIL);
}

/* ---- calls ---- */

static cJSON *rpc_request(exec_cli *c, const char *method, cJSON *params)
{
	cJSON *req = cJSON_CreateObject();
	if (req == NULL) {
		cJSON_Delete(params);
		return NULL;
	}
	cJSON_AddStringToObject(req, "jsonrpc", "2.0");
	cJSON_AddStringToObject(req, "method", method);
	cJSON_AddItemToObject(req, "params", params);
	cJSON_AddNumberToObject(req, "id", ++c->next_id);
	return req;
}

static void on_reply(int rc, cJSON *reply, const node_err *err, void *arg)
{
	exec_cli *c = arg;
	pthread_mutex_lock(&c->lock);
	c->rc = rc;
	cJSON_Delete(c->reply); /* an abandoned call's, if any */
	c->reply = reply;
	if (err)
		c->err = *err;
	c->done = 1;
	pthread_cond_signal(&c->cond);
	pthread_mutex_unlock(&c->lock);
}

static void wait_ms(exec_cli *c, int ms)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_nsec += (long)ms * 1000000L;
	until.tv_sec += until.tv_nsec / 1000000000L;
	until.tv_nsec %= 1000000000L;
	pthread_cond_timedwait(&c->cond, &c->lock, &until);
}

/* One call that Ctrl-C can cut short (CLI_INTERRUPTED: the call is still in
 * flight; see settle). CLI_ANSWER: *resp is the response; CLI_TRANSPORT:
 * c->err says why there is none. req is taken. */
static int call_interruptible(exec_cli *c, cJSON *req, int timeout_ms, cJSON **resp)
{
	*resp = NULL;
	pthread_mutex_lock(&c->lock);
	c->done = 0;
	pthread_mutex_unlock(&c->lock);
	node_err err = {0};
	int rc = req ? node_client_call_raw_async(c->cl, req, timeout_ms, on_reply, c, &err)
	             : node_err_set(&err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	cJSON_Delete(req);
	if (rc != 0) {
		c->err = err;
		return CLI_TRANSPORT;
	}
	c->call_end = node_clock_mono_ms() + timeout_ms + 1000; /* the call's own time limit comes first */
	pthread_mutex_lock(&c->lock);
	while (!c->done && node_clock_mono_ms() < c->call_end) {
		if (node_stop_requested(c->ctx->stop)) {
			pthread_mutex_unlock(&c->lock);
			return CLI_INTERRUPTED;
		}
		wait_ms(c, EXEC_CLI_POLL_MS);
	}
	int done = c->done;
	rc = c->rc;
	*resp = done ? c->reply : NULL;
	if (done)
		c->reply = NULL;
	else
		node_err_set(&c->err, NODE_ETIMEDOUT, NODE_ERR_TIMEOUT, "rpc server %s did not answer", c->url);
	pthread_mutex_unlock(&c->lock);
	return done && rc == 0 ? CLI_ANSWER : CLI_TRANSPORT;
}

/* The result of a JSON-RPC response, or NULL with *msg and *code of its error. */
static const cJSON *rpc_result(const cJSON *resp, const char **msg, int *code)
{
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(resp, "result");
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(resp, "error");
	if (res && e == NULL)
		return res;
	*code = cJSON_GetObjectItemCaseSensitive(e, "code") ? cJSON_GetObjectItemCaseSensitive(e, "code")->valueint : 0;
	*msg = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "message"));
	if (*msg == NULL)
		*msg = "the server's answer is not a JSON-RPC response";
	return NULL;
}

/* Ask the server to kill the command (after Ctrl-C or a closed stdout). */
static int kill_remote(exec_cli *c, node_err *err)
{
	cJSON *params = cJSON_CreateArray(), *reply = NULL;
	cJSON_AddItemToArray(params, cJSON_CreateString(c->id));
	cJSON *req = rpc_request(c, "exec.kill", params);
	int rc = req ? node_client_call_raw(c->cl, req, c->ctx->timeout_ms, &reply, err)
	             : node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	const char *msg = NULL;
	int code;
	if (rc == 0 && rpc_result(reply, &msg, &code) == NULL)
		rc = node_err_set(err, NODE_EREMOTE, NODE_ERR_INTERNAL, "%s", msg);
	cJSON_Delete(req);
	cJSON_Delete(reply);
	return rc;
}

/* ---- running ---- */

static int start_remote(exec_cli *c, cJSON *params)
{
	cJSON *req = rpc_request(c, "exec.start", params), *resp = NULL;
	node_err err = {0};
	int rc = req ? node_client_call_raw(c->cl, req, c->ctx->timeout_ms, &resp, &err)
	             : node_err_set(&err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	cJSON_Delete(req);
	if (rc != 0)
		return cli_fail("%s%s", err.msg, "", exit_for_err(&err));
	const char *msg = NULL;
	int code = 0;
	const cJSON *res = rpc_result(resp, &msg, &code);
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "id"));
	if (id)
		snprintf(c->id, sizeof c->id, "%s", id);
	else if (res)
		msg = "exec.start answered without an id";
	if (msg && strncmp(msg, "exec refused: ", 14) == 0)
		msg += 14; /* said once is enough */
	rc = id ? 0 : cli_fail("refused: %s%s", msg,
	                  code == -32601 ? " (remote execution is off there unless roles.rpc.exec.allow lists commands)" : "",
	                  NODE_EXIT_FAIL);
	cJSON_Delete(resp);
	return rc;
}

/* Write the base64 member key of o to f. -1: f failed (errno), -2: bad base64. */
static int put_b64(FILE *f, const cJSON *o, const char *key)
{
	const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
	if (s == NULL || s[0] == '\0')
		return 0;
	size_t slen = strlen(s), cap = slen / 4 * 3 + 3, n = 0;
	unsigned char *buf = malloc(cap);
	if (buf == NULL || mbedtls_base64_decode(buf, cap, &n, (const unsigned char *)s, slen) != 0) {
		free(buf);
		return -2;
	}
	size_t w = fwrite(buf, 1, n, f);
	free(buf);
	return w == n && fflush(f) == 0 ? 0 : -1;
}

/* The exit status for the command's end, like a shell's (and timeout(1)'s 124). */
static int exit_for_end(const cJSON *res)
{
	const char *reason = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "reason"));
	const char *sig = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "signal"));
	const cJSON *st = cJSON_GetObjectItemCaseSensitive(res, "status");
	if (reason && strcmp(reason, "time limit") == 0) {
		fprintf(stderr, "node exec: the command ran past the server's time limit (roles.rpc.exec.max_seconds) and was killed\n");
		return 124;
	}
	if (sig)
		fprintf(stderr, "node exec: the command was killed by SIG%s%s%s\n", sig, reason && strcmp(reason, "killed") ? ": " : "",
		    reason && strcmp(reason, "killed") ? reason : "");
	if (!cJSON_IsNumber(st) || st->valueint < 0 || st->valueint > 255)
		return NODE_EXIT_FAIL;
	return st->valueint;
}

/* Wait for the call Ctrl-C left in flight and drop its answer: the socket
 * is never closed under a call (nng 1.5.2 can hang closing one). */
static void settle(exec_cli *c)
{
	pthread_mutex_lock(&c->lock);
	while (!c->done && node_clock_mono_ms() < c->call_end)
		wait_ms(c, EXEC_CLI_POLL_MS);
	cJSON_Delete(c->reply);
	c->reply = NULL;
	pthread_mutex_unlock(&c->lock);
}

/* Ctrl-C: kill the remote command; that also ends the read in flight at once. */
static int interrupted(exec_cli *c, int in_flight)
{
	node_err err = {0};
	if (kill_remote(c, &err) == 0)
		fprintf(stderr, "node exec: interrupted: the remote command %s was killed\n", c->id);
	else
		fprintf(stderr, "node exec: interrupted; killing the remote command %s failed: %s\n", c->id, err.msg);
	if (in_flight)
		settle(c);
	return 130;
}

/* Our stdout or stderr is gone (a closed pipe): stop the command too. */
static int output_failed(exec_cli *c, int bad)
{
	int e = errno;
	node_err err = {0};
	kill_remote(c, &err);
	if (bad == -2)
		return cli_fail("exec.read of %s: the output is not valid base64%s", c->id, "", NODE_EXIT_FAIL);
	if (e == EPIPE)
		return 141; /* 128 + SIGPIPE, what a shell shows for `yes | head -1` */
	return cli_fail("writing the output: %s%s", strerror(e), "", NODE_EXIT_FAIL);
}

/* One exec.read: 0 while running, else the exit status (*over set). */
static int read_once(exec_cli *c, int *over)
{
	cJSON *params = cJSON_CreateArray(), *resp = NULL;
	cJSON_AddItemToArray(params, cJSON_CreateString(c->id));
	cJSON_AddItemToArray(params, cJSON_CreateNumber(EXEC_CLI_WAIT_MS));
	int r = call_interruptible(c, rpc_request(c, "exec.read", params), c->ctx->timeout_ms + EXEC_CLI_WAIT_MS, &resp);
	*over = 1;
	if (r == CLI_INTERRUPTED)
		return interrupted(c, 1);
	if (r == CLI_TRANSPORT)
		return cli_fail("%s%s", c->err.msg, "", exit_for_err(&c->err));
	const char *msg = NULL;
	int code = 0, rc = 0, bad = 0;
	const cJSON *res = rpc_result(resp, &msg, &code);
	if (res == NULL)
		rc = cli_fail("exec.read of %s: %s", c->id, msg, NODE_EXIT_FAIL);
	else if ((bad = put_b64(stdout, res, "out")) != 0 || (bad = put_b64(stderr, res, "err")) != 0)
		rc = output_failed(c, bad);
	else if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "done")))
		rc = exit_for_end(res);
	else
		*over = 0;
	cJSON_Delete(resp);
	return rc;
}

static int run_remote(exec_cli *c, cJSON *params)
{
	int rc = start_remote(c, params);
	if (rc != 0)
		return rc;
	if (node_stop_requested(c->ctx->stop))
		return interrupted(c, 0);
	int64_t end = node_clock_mono_ms() + EXEC_CLI_MAX_MS;
	while (node_clock_mono_ms() < end) {
		int over;
		rc = read_once(c, &over);
		if (over)
			return rc;
	}
	return cli_fail("%s ran longer than any server's time limit; giving up on it%s", c->id, "", NODE_EXIT_FAIL);
}

static int exec_main(node_ctx *ctx, const node_args *a)
{
	int rc;
	cJSON *params = start_params(a, &rc);
	if (params == NULL)
		return rc ? rc : cli_fail("out of memory%s%s", "", "", NODE_EXIT_FAIL);
	exec_cli c = {.ctx = ctx};
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&c.cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&c.lock, NULL);
	node_err err = {0};
	rc = find_target(&c, a);
	if (rc == 0 && node_client_open(&c.cl, c.url, "rpc server", &ctx->wire, &err) != 0)
		rc = cli_fail("%s%s", err.msg, "", NODE_EXIT_FAIL);
	if (rc == 0)
		rc = run_remote(&c, params);
	else
		cJSON_Delete(params);
	if (c.cl)
		node_client_close(c.cl);
	cJSON_Delete(c.reply);
	pthread_cond_destroy(&c.cond);
	pthread_mutex_destroy(&c.lock);
	return rc;
}

const node_cmd node_cmd_exec = {
	.name = "exec",
	.summary = "run an allowed command on an RPC server and show its output here (RPyC classic, safely)",
	.synopsis = "[--stdin FILE|-] [--nameserver URL] TARGET [--] CMD [ARG...]",
	.description =
	    "TARGET is the URL of a `node rpc` (tcp://, ipc://, tls+tcp://) or a name the name\n"
	    "server knows (e.g. rpc.NODE). The server runs CMD only if it is on its allow-list\n"
	    "(roles.rpc.exec.allow); stdout and stderr stream here as they come. Put -- before\n"
	    "CMD when its arguments start with -. Exit status: the command's; 128+N when a\n"
	    "signal N killed it; 124 when it ran past the server's time limit; 1 when the\n"
	    "server refused it; 5 when the server did not answer within --timeout; 130 after\n"
	    "Ctrl-C, which kills the remote command. node-exec(1) has the details.",
	.opts = exec_opts,
	.main = exec_main,
	.min_pos = 2,
	.max_pos = -1,
};
