/* Streaming programs of map and reduce tasks: posix_spawnp (never a shell,
 * never fork in a process running nng threads), non-blocking pipes pumped
 * with poll() on the task's thread, output lines parsed into records, the
 * last 2 KiB of stderr kept for the error, a deadline that kills. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/clock.h"
#include "mapreduce/stream.h"

extern char **environ;

#define STREAM_INBUF (256u << 10)  /* input gathered before a write */
#define STREAM_OUTBUF (128u << 10) /* first size of the output line buffer */
#define STREAM_WRITE_MAX (1u << 20)
#define STREAM_TAIL_SHOWN 300      /* bytes of the stderr tail an error message shows */

enum { FD_IN, FD_OUT, FD_ERR };

struct mr_stream {
	mr_stream_cfg cfg;
	char *what;
	pid_t pid;
	int fd[3];           /* our ends; -1 once closed */
	int broken;          /* it closed its input early: the rest is dropped */
	char *in;            /* buffered input */
	size_t inlen;
	char *out;           /* output not parsed yet */
	size_t outlen, outcap, scan;
	char tail[MR_STREAM_STDERR_TAIL];
	size_t tailpos, taillen; /* a ring */
	uint64_t records;
};

/* ---- starting ---- */

static int stream_env_add(char **env, size_t *n, const char *name, const char *value)
{
	size_t len = strlen(name) + strlen(value) + 2;
	if ((env[*n] = malloc(len)) == NULL)
		return -1;
	snprintf(env[(*n)++], len, "%s=%s", name, value);
	return 0;
}

static void stream_env_free(char **env)
{
	for (size_t i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

/* The worker's environment without node's own NODE_* variables (its
 * configuration, perhaps a secret), plus the task's NODE_MR_*. */
static char **stream_env(const mr_stream_cfg *c)
{
	size_t n = 0, k = 0;
	while (environ && environ[n])
		n++;
	char **env = calloc(n + 8, sizeof *env);
	if (env == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (strncmp(environ[i], "NODE_", 5) == 0)
			continue;
		if ((env[k] = strdup(environ[i])) == NULL)
			goto oom;
		k++;
	}
	char num[3][24];
	snprintf(num[0], sizeof num[0], "%lld", c->task);
	snprintf(num[1], sizeof num[1], "%lld", c->partition);
	snprintf(num[2], sizeof num[2], "%lld", c->attempt);
	if (stream_env_add(env, &k, "NODE_MR_PARAMS", c->params ? c->params : "{}") ||
	    stream_env_add(env, &k, "NODE_MR_PHASE", c->phase) || stream_env_add(env, &k, "NODE_MR_TASK", num[0]) ||
	    stream_env_add(env, &k, "NODE_MR_ATTEMPT", num[2]) ||
	    stream_env_add(env, &k, "NODE_MR_JOB", c->job_id ? c->job_id : "") ||
	    (c->partition >= 0 && stream_env_add(env, &k, "NODE_MR_PARTITION", num[1])))
		goto oom;
	return env;
oom:
	stream_env_free(env);
	return NULL;
}

/* Its own process group (one kill takes what it started too), default
 * signal dispositions and mask, none of the worker's descriptors. */
static int stream_spawn(mr_stream *s, int pin[2], int pout[2], int perr[2], char **env)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&at);
	int e = posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
	if (e == 0)
		e = posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
	if (e == 0)
		e = posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
	if (e == 0 && s->cfg.dir)
		e = posix_spawn_file_actions_addchdir_np(&fa, s->cfg.dir);
	if (e == 0)
		e = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (e == 0)
		e = posix_spawnattr_setsigmask(&at, &none);
	if (e == 0)
		e = posix_spawnattr_setsigdefault(&at, &all);
	if (e == 0)
		e = posix_spawnattr_setpgroup(&at, 0);
	if (e == 0)
		e = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	if (e == 0)
		e = posix_spawnp(&s->pid, s->cfg.argv[0], &fa, &at, s->cfg.argv, env);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&at);
	return e;
}

static void stream_close(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static void stream_free(mr_stream *s)
{
	for (int i = 0; i < 3; i++)
		stream_close(&s->fd[i]);
	free(s->what);
	free(s->in);
	free(s->out);
	free(s);
}

static int stream_pipes(int p[3][2], node_err *err)
{
	for (int i = 0; i < 3; i++)
		if (pipe2(p[i], O_CLOEXEC) != 0)
			return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot make a pipe: %s", strerror(errno));
	return 0;
}

int mr_stream_start(mr_stream **out, const mr_stream_cfg *cfg, node_err *err)
{
	*out = NULL;
	mr_stream *s = calloc(1, sizeof *s);
	if (s == NULL || (s->what = strdup(cfg->what)) == NULL || (s->in = malloc(STREAM_INBUF)) == NULL ||
	    (s->out = malloc(STREAM_OUTBUF)) == NULL) {
		if (s)
			stream_free(s);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	s->cfg = *cfg;
	s->cfg.what = s->what;
	s->outcap = STREAM_OUTBUF;
	s->fd[0] = s->fd[1] = s->fd[2] = -1;
	int p[3][2] = {{-1, -1}, {-1, -1}, {-1, -1}};
	int rc = stream_pipes(p, err);
	char **env = rc == 0 ? stream_env(cfg) : NULL;
	if (rc == 0 && env == NULL)
		rc = node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	int e = rc == 0 ? stream_spawn(s, p[0], p[1], p[2], env) : 0;
	if (rc == 0 && e != 0)
		rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "%s cannot be started: %s", s->what, strerror(e));
	stream_env_free(env);
	/* the child's ends close here; ours are the write end of its stdin and
	 * the read ends of its stdout and stderr */
	s->fd[FD_IN] = p[0][1], s->fd[FD_OUT] = p[1][0], s->fd[FD_ERR] = p[2][0];
	stream_close(&p[0][0]);
	stream_close(&p[1][1]);
	stream_close(&p[2][1]);
	if (rc != 0) {
		stream_free(s);
		return rc;
	}
	for (int i = 0; i < 3; i++)
		fcntl(s->fd[i], F_SETFL, fcntl(s->fd[i], F_GETFL) | O_NONBLOCK);
	*out = s;
	return 0;
}

/* ---- output ---- */

static void stream_tail_add(mr_stream *s, const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		s->tail[s->tailpos] = p[i];
		s->tailpos = (s->tailpos + 1) % sizeof s->tail;
		if (s->taillen < sizeof s->tail)
			s->taillen++;
	}
}

/* The stderr tail as one line: newlines become "; ", the rest as it is. */
static void stream_tail_text(const mr_stream *s, char *out, size_t n)
{
	size_t start = (s->tailpos + sizeof s->tail - s->taillen) % sizeof s->tail, k = 0;
	for (size_t i = 0; i < s->taillen && k + 3 < n; i++) {
		char c = s->tail[(start + i) % sizeof s->tail];
		if (c == '\n') {
			if (i + 1 < s->taillen && k > 0) {
				out[k++] = ';';
				out[k++] = ' ';
			}
		} else if (c != '\r') {
			out[k++] = c;
		}
	}
	out[k] = '\0';
}

static int stream_line(mr_stream *s, const char *line, size_t n, node_err *err)
{
	const char *tab = memchr(line, '\t', n);
	size_t kl = tab ? (size_t)(tab - line) : n;
	int rc = s->cfg.out.fn(s->cfg.out.ctx, line, kl, tab ? tab + 1 : "", tab ? n - kl - 1 : 0, err);
	if (rc == 0)
		s->records++;
	return rc;
}

/* Emit the complete lines in the buffer, keep the rest. */
static int stream_parse(mr_stream *s, node_err *err)
{
	size_t start = 0;
	for (;;) {
		char *nl = memchr(s->out + s->scan, '\n', s->outlen - s->scan);
		if (nl == NULL)
			break;
		size_t end = (size_t)(nl - s->out);
		if (stream_line(s, s->out + start, end - start, err) != 0)
			return err->rc;
		start = s->scan = end + 1;
	}
	if (start > 0) {
		memmove(s->out, s->out + start, s->outlen - start);
		s->outlen -= start;
	}
	s->scan = s->outlen;
	return 0;
}

static int stream_out_room(mr_stream *s, node_err *err)
{
	if (s->outlen < s->outcap)
		return 0;
	if (s->outcap > MR_STREAM_LINE_MAX)
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_TOO_LARGE, "%s wrote a line longer than %u MiB", s->what,
		                    MR_STREAM_LINE_MAX >> 20);
	size_t cap = s->outcap * 2 > MR_STREAM_LINE_MAX + 1 ? MR_STREAM_LINE_MAX + 1 : s->outcap * 2;
	char *b = realloc(s->out, cap);
	if (b == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	s->out = b;
	s->outcap = cap;
	return 0;
}

static int stream_read_out(mr_stream *s, node_err *err)
{
	for (int i = 0; i < 16; i++) {
		if (stream_out_room(s, err) != 0)
			return err->rc;
		ssize_t r = read(s->fd[FD_OUT], s->out + s->outlen, s->outcap - s->outlen);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return 0;
		if (r <= 0) {
			stream_close(&s->fd[FD_OUT]);
			/* a last line without LF counts */
			int rc = s->outlen ? stream_line(s, s->out, s->outlen, err) : 0;
			s->outlen = s->scan = 0;
			return rc;
		}
		s->outlen += (size_t)r;
		if (stream_parse(s, err) != 0)
			return err->rc;
	}
	return 0;
}

static void stream_read_err(mr_stream *s)
{
	char buf[4096];
	for (int i = 0; i < 16; i++) {
		ssize_t r = read(s->fd[FD_ERR], buf, sizeof buf);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EAGAIN)
			return;
		if (r <= 0) {
			stream_close(&s->fd[FD_ERR]);
			return;
		}
		stream_tail_add(s, buf, (size_t)r);
	}
}

/* ---- the pump ---- */

static int stream_deadline(mr_stream *s, node_err *err)
{
	return node_err_set(err, NODE_ETIMEDOUT, NODE_ERR_TIMEOUT, "%s ran past the task's deadline and was killed",
	                    s->what);
}

/* Wait for any pipe (at most until the deadline), then write what it
 * takes of p[0..*n) and read what it wrote. */
static int stream_step(mr_stream *s, const char **p, size_t *n, node_err *err)
{
	struct pollfd pf[3];
	int k = 0, win = -1, wout = -1, werr = -1;
	if (s->fd[FD_IN] >= 0 && *n > 0)
		win = k, pf[k++] = (struct pollfd){.fd = s->fd[FD_IN], .events = POLLOUT};
	if (s->fd[FD_OUT] >= 0)
		wout = k, pf[k++] = (struct pollfd){.fd = s->fd[FD_OUT], .events = POLLIN};
	if (s->fd[FD_ERR] >= 0)
		werr = k, pf[k++] = (struct pollfd){.fd = s->fd[FD_ERR], .events = POLLIN};
	int timeout = -1;
	if (s->cfg.deadline_ms > 0) {
		int64_t left = s->cfg.deadline_ms - node_clock_mono_ms();
		if (left <= 0)
			return stream_deadline(s, err);
		timeout = left > 60000 ? 60000 : (int)left;
	}
	int r = poll(pf, (nfds_t)k, timeout);
	if (r < 0 && errno != EINTR)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "poll: %s", strerror(errno));
	if (r <= 0)
		return 0;
	if (win >= 0 && pf[win].revents) {
		ssize_t w = write(s->fd[FD_IN], *p, *n > STREAM_WRITE_MAX ? STREAM_WRITE_MAX : *n);
		if (w > 0) {
			*p += w;
			*n -= (size_t)w;
		} else if (w < 0 && errno != EAGAIN && errno != EINTR) {
			/* EPIPE: it stopped reading; what it wrote still counts */
			stream_close(&s->fd[FD_IN]);
			s->broken = 1;
		}
	}
	if (wout >= 0 && pf[wout].revents && stream_read_out(s, err) != 0)
		return err->rc;
	if (werr >= 0 && pf[werr].revents)
		stream_read_err(s);
	return 0;
}

/* Write all of p[0..n) (or drop it once the program closed its input). */
static int stream_push(mr_stream *s, const char *p, size_t n, node_err *err)
{
	while (n > 0 && s->fd[FD_IN] >= 0)
		if (stream_step(s, &p, &n, err) != 0)
			return err->rc;
	return 0;
}

static int stream_flush(mr_stream *s, node_err *err)
{
	size_t n = s->inlen;
	s->inlen = 0;
	return stream_push(s, s->in, n, err);
}

int mr_stream_write(mr_stream *s, const void *p, size_t n, node_err *err)
{
	if (s->inlen + n <= STREAM_INBUF) {
		memcpy(s->in + s->inlen, p, n);
		s->inlen += n;
		return 0;
	}
	if (stream_flush(s, err) != 0)
		return err->rc;
	if (n >= STREAM_INBUF / 2)
		return stream_push(s, p, n, err); /* a big piece goes as it is */
	memcpy(s->in, p, n);
	s->inlen = n;
	return 0;
}

int mr_stream_emit(void *ctx, const void *key, size_t klen, const void *val, size_t vlen, node_err *err)
{
	mr_stream *s = ctx;
	if (mr_stream_write(s, key, klen, err) || mr_stream_write(s, "\t", 1, err) ||
	    mr_stream_write(s, val, vlen, err) || mr_stream_write(s, "\n", 1, err))
		return err->rc;
	return 0;
}

/* ---- ending ---- */

static void stream_kill(mr_stream *s)
{
	kill(-s->pid, SIGKILL);
	kill(s->pid, SIGKILL); /* in case it left its group */
}

/* Wait for the leader, then kill what it left in its group (while the
 * leader is not reaped its pid, and so the group id, cannot be reused). */
static int stream_reap(mr_stream *s, int *status, node_err *err)
{
	for (;;) {
		siginfo_t si;
		memset(&si, 0, sizeof si);
		int flags = WEXITED | WNOWAIT | (s->cfg.deadline_ms > 0 ? WNOHANG : 0);
		if (waitid(P_PID, (id_t)s->pid, &si, flags) != 0) {
			if (errno == EINTR)
				continue;
			return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "%s: waitid: %s", s->what, strerror(errno));
		}
		if (si.si_pid != 0)
			break;
		if (node_clock_mono_ms() >= s->cfg.deadline_ms) {
			stream_kill(s);
			waitpid(s->pid, status, 0);
			return stream_deadline(s, err);
		}
		usleep(10000);
	}
	kill(-s->pid, SIGKILL);
	while (waitpid(s->pid, status, 0) < 0 && errno == EINTR)
		;
	return 0;
}

static int stream_status(mr_stream *s, int st, node_err *err)
{
	char text[2 * MR_STREAM_STDERR_TAIL + 4]; /* each newline may become "; " */
	stream_tail_text(s, text, sizeof text);
	/* what fits of it in a message: its end, where a program says why it stops */
	size_t len = strlen(text);
	const char *tail = len > STREAM_TAIL_SHOWN ? text + len - STREAM_TAIL_SHOWN : text;
	const char *sep = !text[0] ? " (no stderr)" : tail != text ? ": ..." : ": ";
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
		return 0;
	if (WIFEXITED(st))
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "%s exited with status %d%s%s", s->what,
		                    WEXITSTATUS(st), sep, tail);
	if (WIFSIGNALED(st))
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "%s was killed by signal %d (%s)%s%s", s->what,
		                    WTERMSIG(st), strsignal(WTERMSIG(st)), sep, tail);
	return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "%s ended oddly (wait status %d)", s->what, st);
}

int mr_stream_finish(mr_stream *s, uint64_t *records, node_err *err)
{
	int rc = stream_flush(s, err);
	if (rc == 0) {
		stream_close(&s->fd[FD_IN]);
		const char *none = NULL;
		size_t zero = 0;
		while (rc == 0 && (s->fd[FD_OUT] >= 0 || s->fd[FD_ERR] >= 0))
			rc = stream_step(s, &none, &zero, err);
	}
	if (rc != 0) {
		mr_stream_abort(s);
		return rc;
	}
	int st = 0;
	rc = stream_reap(s, &st, err);
	if (rc == 0)
		rc = stream_status(s, st, err);
	if (rc == 0 && records)
		*records = s->records;
	stream_free(s);
	return rc;
}

void mr_stream_abort(mr_stream *s)
{
	if (s == NULL)
		return;
	stream_kill(s);
	while (waitpid(s->pid, NULL, 0) < 0 && errno == EINTR)
		;
	stream_free(s);
}
