/* The CSP trace: one JSON object per line (node-protocol(7) (CHANNEL HOST), "Trace
 * lines") for every channel and process event of this process, to the file
 * of csp_trace_start or $NODE_CSP_TRACE. Each line is one write(2) under a
 * lock, so lines never interleave and their seq is their order. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/csp_int.h"

atomic_int csp_tracing;

static pthread_mutex_t trace_lock = PTHREAD_MUTEX_INITIALIZER;
static int trace_fd = -1;
static unsigned long trace_seq;

/* Append s as a JSON string; names are short, so truncation only cuts a
 * name that could not be in a line anyway. */
static size_t put_json(char *out, size_t cap, size_t at, const char *s)
{
	if (at + 2 >= cap)
		return at;
	out[at++] = '"';
	for (; *s && at + 8 < cap; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\') {
			out[at++] = '\\';
			out[at++] = (char)ch;
		} else if (ch < 0x20)
			at += (size_t)snprintf(out + at, cap - at, "\\u%04x", ch);
		else
			out[at++] = (char)ch;
	}
	out[at++] = '"';
	return at;
}

static size_t put_str(char *out, size_t cap, size_t at, const char *s)
{
	size_t n = strlen(s);
	if (at + n >= cap)
		return at;
	memcpy(out + at, s, n);
	return at + n;
}

/* The line after its "seq" (which is numbered under the lock). */
static size_t event_body(char *out, size_t cap, const char *event, const char *chan, int dir, long n)
{
	const char *proc = csp_current_proc();
	size_t at = put_str(out, cap, 0, ",\"event\":");
	at = put_json(out, cap, at, event);
	if (chan != NULL) {
		at = put_str(out, cap, at, ",\"chan\":");
		at = put_json(out, cap, at, chan);
	}
	if (proc != NULL) {
		at = put_str(out, cap, at, ",\"proc\":");
		at = put_json(out, cap, at, proc);
	}
	if (dir >= 0)
		at = put_str(out, cap, at, dir == CSP_READ ? ",\"dir\":\"read\"" : ",\"dir\":\"write\"");
	if (n >= 0 && at + 32 < cap)
		at += (size_t)snprintf(out + at, cap - at, ",\"n\":%ld", n);
	return put_str(out, cap, at, "}\n");
}

static void write_line(const char *body, size_t len)
{
	char line[1024];
	struct timespec ts;
	pthread_mutex_lock(&trace_lock);
	if (trace_fd >= 0) {
		clock_gettime(CLOCK_REALTIME, &ts); /* under the lock: t grows with seq */
		int h = snprintf(line, sizeof line, "{\"t\":%lld.%06ld,\"seq\":%lu", (long long)ts.tv_sec,
		    ts.tv_nsec / 1000, ++trace_seq);
		if (h > 0 && (size_t)h + len <= sizeof line) {
			memcpy(line + h, body, len);
			/* a trace must not stop the program: a failed write loses a line */
			ssize_t w = write(trace_fd, line, (size_t)h + len);
			(void)w;
		}
	}
	pthread_mutex_unlock(&trace_lock);
}

void csp_trace_event(const char *event, const char *chan, int dir, long n)
{
	char body[900];
	size_t len = event_body(body, sizeof body, event, chan, dir, n);
	write_line(body, len);
}

void csp_trace_stop(void)
{
	if (atomic_load(&csp_tracing))
		csp_trace_event("trace_end", NULL, -1, -1);
	pthread_mutex_lock(&trace_lock);
	atomic_store(&csp_tracing, 0);
	if (trace_fd >= 0)
		close(trace_fd);
	trace_fd = -1;
	pthread_mutex_unlock(&trace_lock);
}

static int trace_open(const char *path, ncl_err *err)
{
	csp_trace_stop();
	if (path == NULL || *path == '\0')
		return 0;
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	if (fd < 0)
		return ncl_set(err, NCL_EIO, "csp_trace_start: %s: %s", path, strerror(errno));
	pthread_mutex_lock(&trace_lock);
	trace_fd = fd;
	trace_seq = 0;
	atomic_store(&csp_tracing, 1);
	pthread_mutex_unlock(&trace_lock);
	return 0;
}

static void trace_at_exit(void)
{
	csp_trace_stop();
}

static void env_start(void)
{
	const char *path = getenv("NODE_CSP_TRACE");
	ncl_err e;
	if (path == NULL || *path == '\0')
		return;
	if (trace_open(path, &e) != 0)
		fprintf(stderr, "NODE_CSP_TRACE: %s\n", e.msg);
	else
		atexit(trace_at_exit); /* so the file ends with trace_end */
}

void csp_trace_env(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, env_start);
}

int csp_trace_start(const char *path, ncl_err *err)
{
	csp_trace_env(); /* first, so $NODE_CSP_TRACE does not replace this file later */
	return trace_open(path, err);
}
