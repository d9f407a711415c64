/* Shared by node chan, node pub and node sub (chancli.h): the host, errors
 * and exit statuses, stdin batches, printing values, leaving on a signal. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chancli.h"
#include "client/client_int.h"
#include "client/nodecsp.h"

#define CHANCLI_LINE_MAX (16 * 1024 * 1024) /* a line longer than a message cannot go */
#define CHANCLI_READ 65536

static void chancli_vsay(const node_ctx *ctx, const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "node %s: ", ctx && ctx->cmd ? ctx->cmd->name : "chan");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void chancli_warn(const node_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	chancli_vsay(ctx, fmt, ap);
	va_end(ap);
}

int chancli_usage(const node_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	chancli_vsay(ctx, fmt, ap);
	va_end(ap);
	fprintf(stderr, "(see node %s --help)\n", ctx && ctx->cmd ? ctx->cmd->name : "chan");
	return NODE_EXIT_USAGE;
}

int chancli_fail(const node_ctx *ctx, const ncl_err *err)
{
	chancli_warn(ctx, "%s", err->msg);
	switch (err->code) {
	case NCL_ETIMEDOUT:
		return CHANCLI_EXIT_TIMEOUT;
	case NCL_EINVAL: /* a URL nng does not know, an address that is not a chanhost's */
		return NODE_EXIT_USAGE;
	case NCL_EIO:
	case NCL_ECLOSED:
		return NODE_EXIT_TIMEOUT; /* the host could not be reached or went silent */
	default:
		return NODE_EXIT_FAIL;
	}
}

int chancli_open(node_ctx *ctx, const node_args *a, const char *name, csp_net_chan **out)
{
	if (name && !csp_net_name_ok(name))
		return chancli_usage(ctx, "bad name \"%.60s\": 1 to %d bytes of A-Z a-z 0-9 . _ : / -", name, CSP_NET_NAME_MAX);
	ncl_err err = {0};
	if (csp_net_chan_open_conf(out, name, node_args_get(a, "host"), &ctx->conf, &err) == 0)
		return 0;
	if (err.code == NCL_ENOTFOUND) { /* no chanhost in the cluster file */
		chancli_warn(ctx, "%s, or give --host URL", err.msg);
		return NODE_EXIT_CONFIG;
	}

	return chancli_fail(ctx, &err);
}

int chancli_wait_ms(const node_args *a)
{
	const char *s = node_args_get(a, "timeout");
	if (s == NULL)
		return -1;
	long long v = strtoll(s, NULL, 10); /* checked as a whole number by node_cmd_setup */
	return v > 2000000 ? 2000000000 : (int)(v * 1000);
}

/* ---- values ---- */

char *chancli_value(const char *text, int json, ncl_err *err)
{
	if (json) {
		cJSON *v = cJSON_ParseWithOpts(text, NULL, 1);
		cJSON_Delete(v);
		if (v == NULL) {
			ncl_set(err, NCL_EINVAL, "not JSON: %.60s", text);
			return NULL;
		}
		char *copy = strdup(text);
		if (copy == NULL)
			ncl_set(err, NCL_ENOMEM, "out of memory");
		return copy;
	}
	cJSON *s = cJSON_CreateString(text);
	char *out = s ? cJSON_PrintUnformatted(s) : NULL;
	cJSON_Delete(s);
	if (out == NULL)
		ncl_set(err, NCL_ENOMEM, "out of memory");
	return out;
}

void chancli_print(const char *value, int json)
{
	if (!json && value[0] == '"') {
		cJSON *v = cJSON_Parse(value);
		if (cJSON_IsString(v)) {
			fputs(v->valuestring, stdout);
			fputc('\n', stdout);
			cJSON_Delete(v);
			return;
		}
		cJSON_Delete(v);
	}
	fputs(value, stdout);
	fputc('\n', stdout);
}

/* ---- stdin ---- */

typedef struct chancli_lines {
	char *buf;
	size_t off, len, cap; /* unread bytes are buf[off, len) */
	size_t lineno;
	int eof;
} chancli_lines;

void chancli_batch_clear(chancli_batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free(b->vals[i]);
	b->n = b->bytes = 0;
}

static int chancli_full(const chancli_batch *b)
{
	return b->n == CHANCLI_BATCH_VALUES || b->bytes >= CHANCLI_BATCH_BYTES;
}

/* Move whole lines (at the end also the last, unterminated one) into b
 * while it has room. Returns 0 or an exit status. */
static int chancli_take(const node_ctx *ctx, chancli_lines *l, chancli_batch *b, int json)
{
	while (!chancli_full(b) && l->off < l->len) {
		char *p = l->buf + l->off, *nl = memchr(p, '\n', l->len - l->off);
		if (nl == NULL && !l->eof)
			break;
		size_t n = nl ? (size_t)(nl - p) : l->len - l->off;
		l->off += n + (nl != NULL);
		l->lineno++;
		p[n] = '\0'; /* the newline, or the byte reserved past len */
		if (json && strspn(p, " \t\r") == n)
			continue; /* blank lines between JSON values */
		ncl_err err = {0};
		char *v = chancli_value(p, json, &err);
		if (v == NULL) {
			chancli_warn(ctx, "stdin line %zu is %s", l->lineno, err.msg);
			return NODE_EXIT_FAIL;
		}
		b->vals[b->n++] = v;
		b->bytes += strlen(v);
	}
	return 0;
}

/* Read what stdin has (waiting for it); keeps one byte free past len. */
static int chancli_fill(const node_ctx *ctx, chancli_lines *l)
{
	if (l->off > 0) {
		memmove(l->buf, l->buf + l->off, l->len - l->off);
		l->len -= l->off;
		l->off = 0;
	}
	if (l->cap - l->len < CHANCLI_READ + 1) {
		if (l->len > CHANCLI_LINE_MAX) {
			chancli_warn(ctx, "stdin line %zu is longer than %d bytes", l->lineno + 1, CHANCLI_LINE_MAX);
			return NODE_EXIT_FAIL;
		}
		char *nb = realloc(l->buf, l->cap * 2 + CHANCLI_READ + 1);
		if (nb == NULL) {
			chancli_warn(ctx, "out of memory");
			return NODE_EXIT_FAIL;
		}
		l->buf = nb;
		l->cap = l->cap * 2 + CHANCLI_READ + 1;
	}
	ssize_t n;
	do
		n = read(0, l->buf + l->len, l->cap - l->len - 1);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		chancli_warn(ctx, "reading stdin: %s", strerror(errno));
		return NODE_EXIT_FAIL;
	}
	l->len += (size_t)n;
	l->eof = n == 0;
	return 0;
}

static int chancli_stdin_ready(void)
{
	struct pollfd p = {.fd = 0, .events = POLLIN};
	return poll(&p, 1, 0) > 0;
}

int chancli_stdin(const node_ctx *ctx, int json, chancli_send_fn send, void *arg)
{
	chancli_lines l = {0};
	chancli_batch *b = calloc(1, sizeof *b);
	if (b == NULL) {
		chancli_warn(ctx, "out of memory");
		return NODE_EXIT_FAIL;
	}
	int rc = 0;
	for (;;) {
		if ((rc = chancli_take(ctx, &l, b, json)) != 0)
			break;
		/* a batch goes when full, or when stdin has nothing more right now */
		if (chancli_full(b) || (b->n > 0 && (l.eof || !chancli_stdin_ready()))) {
			if ((rc = send(b, arg)) != 0)
				break;
			chancli_batch_clear(b);
			continue;
		}
		if (l.eof)
			break;
		if ((rc = chancli_fill(ctx, &l)) != 0)
			break;
	}
	chancli_batch_clear(b);
	free(b);
	free(l.buf);
	return rc;
}

/* ---- signals ---- */

typedef struct chancli_stop {
	node_stop *stop;
	void (*fn)(void *arg);
	void *arg;
} chancli_stop;

static void *chancli_stop_thread(void *p)
{
	chancli_stop s = *(chancli_stop *)p;
	free(p);
	node_stop_wait(s.stop, -1);
	if (s.fn)
		s.fn(s.arg);
	fflush(stdout);
	_exit(130);
	return NULL;
}

void chancli_on_stop(node_ctx *ctx, void (*fn)(void *arg), void *arg)
{
	chancli_stop *s = malloc(sizeof *s);
	if (s == NULL)
		return;
	*s = (chancli_stop){ctx->stop, fn, arg};
	pthread_t t;
	if (pthread_create(&t, NULL, chancli_stop_thread, s) == 0)
		pthread_detach(t);
	else
		free(s);
}
