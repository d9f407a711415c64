/* Remote execution, RPyC's classic mode done safely: exec.start runs a
 * command of the allow-list (roles.rpc.exec.allow) and nothing else,
 * exec.read streams its output as a long poll, exec.kill stops it. One
 * thread polls the pipes of every command, reaps them, enforces the time
 * limit and answers the reads that wait; exec_proc.c starts and kills. */
#include <errno.h>
#include <fcntl.h>
#include <mbedtls/base64.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/log.h"
#include "rpc/exec_proc.h"
#include "rpc/rpc.h"

#define EXEC_WAIT_DEFAULT_MS 1000
#define EXEC_WAIT_MAX_MS 30000
#define EXEC_FORGET_MS 60000      /* an ended command nobody reads is forgotten after this */
#define EXEC_DRAIN_MS 1000        /* after the end, a pipe silent this long is closed */
#define EXEC_TICK_MS 100          /* how often running commands are looked at */
#define EXEC_IDLE_MS 1000
#define EXEC_MARGIN_MS 100        /* a parked read is answered this long before its caller gives up */
#define EXEC_READ_MAX (1 << 20)   /* bytes of one stream in one answer */
#define EXEC_STDIN_MAX (1 << 20)
#define EXEC_ARGS_MAX 4096
#define EXEC_ARGV_BYTES (256 << 10)
#define EXEC_RUNNING_MAX 1024
#define EXEC_CHUNK (64 << 10)     /* one read() of a pipe */
#define EXEC_REAP_MS 2000         /* the stop waits this long for killed commands */

/* Who killed a command, for the reason its end gives. */
enum { EXEC_BY_NONE, EXEC_BY_KILL, EXEC_BY_LIMIT, EXEC_BY_STOP };

typedef struct exec_buf {
	char *p;
	size_t len, cap;
} exec_buf;

typedef struct exec_run {
	struct exec_run *next;
	char id[24];
	pid_t pid;
	int fd[2];            /* stdout, stderr; -1 once at their end */
	int pi[2];            /* their places in the poll array; -1: not polled */
	exec_buf buf[2];      /* output nobody has read yet */
	int ended, lost;      /* reaped (lost: not our child any more) */
	int wstatus;
	int by;               /* EXEC_BY_* */
	int given;            /* the end was answered while the server stops */
	int64_t deadline_ms;  /* the time limit */
	int64_t ended_ms, read_ms, io_ms;
	rpc_req *parked;      /* the one read waiting for output */
	int64_t parked_until;
} exec_run;

typedef struct exec_cfg {
	exec_allow allow;
	char **env;
	char *dir;            /* NULL: the server's working directory */
	int max_seconds, max_running;
	size_t max_buf;       /* per stream; the process waits beyond it */
	size_t chunk;         /* per stream per answer, within the message limits */
} exec_cfg;

typedef struct exec_answer {
	rpc_req *r;
	cJSON *res;
} exec_answer;

typedef struct exec_state {
	pthread_mutex_t lock; /* guards everything but cfg, which never changes */
	exec_cfg cfg;
	rpc_server *srv;
	exec_run *runs;
	int nruns;            /* records: running, or holding output nobody read */
	unsigned long long seq;
	int stopping;         /* the server stops: all killed, reads answered at once */
	int quit;
	int wake[2];          /* a byte wakes the thread */
	pthread_t thread;
	int started;
	struct pollfd *pf;    /* the thread's: 1 + 2 * max_running */
	exec_answer out[EXEC_RUNNING_MAX]; /* the thread's answers, sent unlocked */
	int nout;
} exec_state;

static void exec_wake(exec_state *x)
{
	char c = 1;
	ssize_t w = write(x->wake[1], &c, 1); /* full pipe: a wake-up is pending anyway */
	(void)w;
}

/* ---- one command's record ---- */

static int run_final(const exec_run *e)
{
	return e->ended && e->fd[0] < 0 && e->fd[1] < 0;
}

static int run_has_data(const exec_run *e)
{
	return e->buf[0].len > 0 || e->buf[1].len > 0;
}

static exec_run *run_find(exec_state *x, const char *id)
{
	for (exec_run *e = x->runs; e; e = e->next)
		if (strcmp(e->id, id) == 0)
			return e;
	return NULL;
}

static void run_unlink(exec_state *x, exec_run *e)
{
	for (exec_run **p = &x->runs; *p; p = &(*p)->next)
		if (*p == e) {
			*p = e->next;
			x->nruns--;
			return;
		}
}

static void run_free(exec_run *e)
{
	for (int s = 0; s < 2; s++) {
		if (e->fd[s] >= 0)
			close(e->fd[s]);
		free(e->buf[s].p);
	}
	free(e);
}

static int buf_reserve(exec_buf *b, size_t want, size_t max)
{
	if (b->len + want <= b->cap)
		return 0;
	size_t cap = b->cap ? b->cap : EXEC_CHUNK;
	while (cap < b->len + want)
		cap *= 2;
	if (cap > max)
		cap = max;
	char *p = realloc(b->p, cap);
	if (p == NULL)
		return -1;
	b->p = p;
	b->cap = cap;
	return 0;
}

/* Move up to n bytes of b into o[key] as base64; nothing moves on failure. */
static int chunk_add(cJSON *o, const char *key, exec_buf *b, size_t n)
{
	if (n > b->len)
		n = b->len;
	if (n == 0)
		return cJSON_AddStringToObject(o, key, "") ? 0 : -1;
	size_t cap = 4 * ((n + 2) / 3) + 1, olen = 0;
	unsigned char *text = malloc(cap);
	if (text == NULL || mbedtls_base64_encode(text, cap, &olen, (const unsigned char *)b->p, n) != 0) {
		free(text);
		return -1;
	}
	text[olen] = '\0';
	cJSON *s = cJSON_CreateString((const char *)text);
	free(text);
	if (s == NULL || !cJSON_AddItemToObject(o, key, s)) {
		cJSON_Delete(s);
		return -1;
	}
	memmove(b->p, b->p + n, b->len - n);
	b->len -= n;
	if (b->len == 0 && b->cap > EXEC_CHUNK) { /* an idle record keeps little */
		free(b->p);
		*b = (exec_buf){0};
	}
	return 0;
}

/* status, signal and reason of a command that is done. */
static void run_status(cJSON *o, const exec_run *e)
{
	if (!e->ended || e->lost) { /* killed as the server stops, not reaped yet */
		cJSON_AddNumberToObject(o, "status", e->lost ? 255 : 128 + SIGKILL);
		cJSON_AddStringToObject(o, "signal", "KILL");
		cJSON_AddStringToObject(o, "reason", e->lost ? "lost" : "server stopping");
		return;
	}
	if (WIFSIGNALED(e->wstatus)) {
		int sig = WTERMSIG(e->wstatus);
		const char *name = sigabbrev_np(sig);
		char num[16];
		snprintf(num, sizeof num, "%d", sig);
		cJSON_AddNumberToObject(o, "status", 128 + sig);
		cJSON_AddStringToObject(o, "signal", name ? name : num);
		cJSON_AddStringToObject(o, "reason", e->by == EXEC_BY_LIMIT ? "time limit"
		                                     : e->by == EXEC_BY_STOP ? "server stopping" : "killed");
		return;
	}
	cJSON_AddNumberToObject(o, "status", WIFEXITED(e->wstatus) ? WEXITSTATUS(e->wstatus) : 255);
	cJSON_AddNullToObject(o, "signal");
	cJSON_AddStringToObject(o, "reason", "exited");
}

/* The answer to a read of e (lock held): what is buffered, and the end once
 * all is given. *last: e may be freed (unlinked by the caller). */
static cJSON *run_answer(exec_state *x, exec_run *e, int64_t now, int *last)
{
	*last = 0;
	for (int s = 0; s < 2; s++)
		if (e->buf[s].len >= x->cfg.max_buf)
			e->io_ms = now; /* it was paused: its drain clock starts now */
	cJSON *o = cJSON_CreateObject();
	if (o == NULL || chunk_add(o, "out", &e->buf[0], x->cfg.chunk) != 0 ||
	    chunk_add(o, "err", &e->buf[1], x->cfg.chunk) != 0) {
		cJSON_Delete(o);
		return NULL;
	}
	int done = x->stopping || (run_final(e) && !run_has_data(e));
	cJSON_AddBoolToObject(o, "done", done);
	if (done) {
		run_status(o, e);
		*last = run_final(e);
		e->given = 1;
	}
	return o;
}

/* ---- the thread ---- */

static void log_end(const exec_run *e)
{
	if (e->lost)
		node_warn("exec %s: pid %d was reaped by someone else; its status is lost", e->id, (int)e->pid);
	else if (WIFSIGNALED(e->wstatus))
		node_info("exec %s: killed by SIG%s%s", e->id, sigabbrev_np(WTERMSIG(e->wstatus)) ? sigabbrev_np(WTERMSIG(e->wstatus)) : "?",
		    e->by == EXEC_BY_LIMIT ? " (time limit)" : e->by == EXEC_BY_KILL ? " (exec.kill)" : e->by == EXEC_BY_STOP ? " (server stopping)" : "");
	else
		node_info("exec %s: exited with status %d", e->id, WEXITSTATUS(e->wstatus));
}

/* Reap, the time limit, and pipes left open by what escaped the group. */
static void run_check(exec_state *x, exec_run *e, int64_t now)
{
	if (!e->ended) {
		int rc = exec_proc_reap(e->pid, &e->wstatus);
		if (rc != 0) {
			e->ended = 1;
			e->lost = rc < 0;
			e->ended_ms = now;
			log_end(e);
		} else if (e->by == EXEC_BY_NONE && now >= e->deadline_ms) {
			exec_proc_kill(e->pid);
			e->by = EXEC_BY_LIMIT;
		}
		return;
	}
	int64_t quiet_since = e->io_ms > e->ended_ms ? e->io_ms : e->ended_ms;
	for (int s = 0; s < 2; s++)
		if (e->fd[s] >= 0 && e->buf[s].len < x->cfg.max_buf && now - quiet_since >= EXEC_DRAIN_MS) {
			node_debug("exec %s: %s still open %d ms after the end: closed", e->id, s ? "stderr" : "stdout", EXEC_DRAIN_MS);
			close(e->fd[s]);
			e->fd[s] = -1;
		}
}

static void exec_stop_all(exec_state *x)
{
	x->stopping = 1;
	int n = 0;
	for (exec_run *e = x->runs; e; e = e->next)
		if (!e->ended) {
			exec_proc_kill(e->pid);
			if (e->by == EXEC_BY_NONE)
				e->by = EXEC_BY_STOP;
			n++;
		}
	if (n)
		node_info("exec: the server is stopping: %d command%s killed", n, n == 1 ? "" : "s");
}

/* Answer e's parked read when it can be (lock held); 1 when e was freed. */
static int run_answer_parked(exec_state *x, exec_run *e, int64_t now)
{
	if (e->parked == NULL || x->nout == EXEC_RUNNING_MAX ||
	    !(x->stopping || run_has_data(e) || run_final(e) || now >= e->parked_until))
		return 0;
	int last;
	x->out[x->nout++] = (exec_answer){e->parked, run_answer(x, e, now, &last)};
	e->parked = NULL;
	if (!last)
		return 0;
	run_unlink(x, e);
	run_free(e);
	return 1;
}

static int run_forgotten(const exec_run *e, int64_t now)
{
	int64_t since = e->read_ms > e->ended_ms ? e->read_ms : e->ended_ms;
	/* Not run_final: a full buffer nobody drains keeps its pipe open. */
	return e->ended && e->parked == NULL && now - since >= EXEC_FORGET_MS;
}

/* Everything time or the end of a process decides (lock held). */
static void exec_tend(exec_state *x, int64_t now)
{
	if (!x->stopping && x->srv && atomic_load(&x->srv->stopping))
		exec_stop_all(x);
	exec_run *e = x->runs;
	while (e) {
		exec_run *next = e->next;
		run_check(x, e, now);
		if (!run_answer_parked(x, e, now) && run_forgotten(e, now)) {
			node_info("exec %s: forgotten: ended %d s ago and nobody read its end", e->id, EXEC_FORGET_MS / 1000);
			run_unlink(x, e);
			run_free(e);
		}
		e = next;
	}
}

static int exec_poll_set(exec_state *x)
{
	int n = 0, cap = 1 + 2 * x->cfg.max_running;
	x->pf[n++] = (struct pollfd){.fd = x->wake[0], .events = POLLIN};
	for (exec_run *e = x->runs; e; e = e->next)
		for (int s = 0; s < 2; s++) {
			e->pi[s] = -1;
			if (e->fd[s] >= 0 && e->buf[s].len < x->cfg.max_buf && n < cap) {
				e->pi[s] = n;
				x->pf[n++] = (struct pollfd){.fd = e->fd[s], .events = POLLIN};
			}
		}
	return n;
}

static int exec_timeout(exec_state *x, int64_t now)
{
	int64_t t = EXEC_IDLE_MS;
	for (exec_run *e = x->runs; e; e = e->next) {
		if (!run_final(e) && t > EXEC_TICK_MS)
			t = EXEC_TICK_MS;
		if (e->parked && e->parked_until - now < t)
			t = e->parked_until - now;
	}
	return t < 0 ? 0 : (int)t;
}

/* Read what stream s of e has, up to its buffer's limit (lock held). */
static void run_pull(exec_state *x, exec_run *e, int s, int64_t now)
{
	exec_buf *b = &e->buf[s];
	for (int i = 0; i < 64 && b->len < x->cfg.max_buf; i++) {
		size_t want = x->cfg.max_buf - b->len;
		if (want > EXEC_CHUNK)
			want = EXEC_CHUNK;
		if (buf_reserve(b, want, x->cfg.max_buf) != 0)
			return; /* out of memory: the pipe waits */
		ssize_t got = read(e->fd[s], b->p + b->len, want);
		if (got > 0) {
			b->len += (size_t)got;
			e->io_ms = now;
			continue;
		}
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		close(e->fd[s]); /* the end of the stream (or an error: the same to us) */
		e->fd[s] = -1;
		return;
	}
}

static void exec_collect(exec_state *x)
{
	int64_t now = node_clock_mono_ms();
	for (exec_run *e = x->runs; e; e = e->next)
		for (int s = 0; s < 2; s++)
			if (e->pi[s] >= 0 && e->fd[s] >= 0 && x->pf[e->pi[s]].revents)
				run_pull(x, e, s, now);
}

static void exec_send(exec_state *x)
{
	for (int i = 0; i < x->nout; i++)
		rpc_req_result(x->out[i].r, x->out[i].res);
	x->nout = 0;
}

static void *exec_thread(void *arg)
{
	exec_state *x = arg;
	node_log_set_role("rpc");
	pthread_mutex_lock(&x->lock);
	while (!x->quit) {
		int64_t now = node_clock_mono_ms();
		exec_tend(x, now);
		int n = exec_poll_set(x);
		int timeout = exec_timeout(x, now);
		pthread_mutex_unlock(&x->lock);
		exec_send(x);
		poll(x->pf, (nfds_t)n, timeout); /* EINTR and the like: looked at again */
		char drain[64];
		while (read(x->wake[0], drain, sizeof drain) > 0)
			;
		pthread_mutex_lock(&x->lock);
		exec_collect(x);
	}
	pthread_mutex_unlock(&x->lock);
	return NULL;
}

/* ---- the methods ---- */

static int bad_param(rpc_req *r, const char *what)
{
	rpc_req_error(r, RPC_INVALID_PARAMS, NULL, "invalid params: %s", what);
	return -1;
}

/* argv: 1 to EXEC_ARGS_MAX strings; *out points into params. */
static int argv_arg(rpc_req *r, const cJSON *params, char ***out)
{
	const cJSON *a = cJSON_GetArrayItem(params, 0), *v;
	int n = cJSON_GetArraySize(a);
	if (!cJSON_IsArray(a))
		return bad_param(r, "argv of exec.start must be an array of strings, e.g. [\"uname\", \"-a\"]");
	if (n == 0)
		return bad_param(r, "argv of exec.start is empty: it needs at least the command");
	if (n > EXEC_ARGS_MAX)
		return bad_param(r, "argv of exec.start has too many arguments (at most 4096)");
	char **argv = calloc((size_t)n + 1, sizeof *argv);
	if (argv == NULL) {
		rpc_req_error(r, RPC_INTERNAL_ERROR, NULL, "out of memory");
		return -1;
	}
	size_t bytes = 0;
	int i = 0;
	cJSON_ArrayForEach(v, a) {
		if (!cJSON_IsString(v)) {
			free(argv);
			char why[128];
			snprintf(why, sizeof why, "argv[%d] of exec.start must be a string", i);
			return bad_param(r, why);
		}
		bytes += strlen(v->valuestring) + 1;
		argv[i++] = v->valuestring;
	}
	const char *why = argv[0][0] == '\0' ? "argv[0] of exec.start is empty"
	                : bytes > EXEC_ARGV_BYTES ? "argv of exec.start is longer than 256 KiB" : NULL;
	if (why) {
		free(argv);
		return bad_param(r, why);
	}
	*out = argv;
	return 0;
}

typedef struct exec_input {
	const char *p;  /* NULL: no input (/dev/null) */
	size_t len;
	char *owned;    /* decoded base64 */
} exec_input;

/* stdin: absent or null, a string (its bytes), or {"base64": TEXT} (any bytes). */
static int stdin_arg(rpc_req *r, const cJSON *params, exec_input *in)
{
	const cJSON *v = cJSON_GetArrayItem(params, 1);
	*in = (exec_input){0};
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (cJSON_IsString(v)) {
		in->p = v->valuestring;
		in->len = strlen(v->valuestring);
	} else {
		const char *b64 = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "base64"));
		if (!cJSON_IsObject(v) || b64 == NULL)
			return bad_param(r, "stdin of exec.start must be a string or {\"base64\": TEXT}");
		size_t slen = strlen(b64), cap = slen / 4 * 3 + 3;
		if (cap > EXEC_STDIN_MAX + 3) {
			rpc_req_error(r, RPC_TOO_LARGE, NULL, "stdin of exec.start is larger than 1 MiB (1048576 bytes), the limit");
			return -1;
		}
		if ((in->owned = malloc(cap)) == NULL) {
			rpc_req_error(r, RPC_INTERNAL_ERROR, NULL, "out of memory");
			return -1;
		}
		if (mbedtls_base64_decode((unsigned char *)in->owned, cap, &in->len, (const unsigned char *)b64, slen) != 0) {
			free(in->owned);
			return bad_param(r, "stdin.base64 of exec.start is not valid base64");
		}
		in->p = in->owned;
	}
	if (in->len > EXEC_STDIN_MAX) {
		free(in->owned);
		rpc_req_error(r, RPC_TOO_LARGE, NULL, "stdin of exec.start is larger than 1 MiB (1048576 bytes), the limit");
		return -1;
	}
	return 0;
}

/* A slot for a new command, or r is answered and -1 returned. */
static int exec_reserve(exec_state *x, rpc_req *r, unsigned long long *seq)
{
	pthread_mutex_lock(&x->lock);
	int stopping = x->stopping, full = x->nruns >= x->cfg.max_running;
	if (!stopping && !full) {
		x->nruns++;
		*seq = ++x->seq;
	}
	pthread_mutex_unlock(&x->lock);
	if (stopping)
		rpc_req_error(r, RPC_UNAVAILABLE, NULL, "exec refused: the server is stopping");
	else if (full)
		rpc_req_error(r, RPC_OVERLOADED, NULL,
		    "exec refused: %d commands are running or hold output nobody has read (the limit, roles.rpc.exec.max_running)",
		    x->cfg.max_running);
	return stopping || full ? -1 : 0;
}

static void exec_release(exec_state *x)
{
	pthread_mutex_lock(&x->lock);
	x->nruns--;
	pthread_mutex_unlock(&x->lock);
}

/* Start argv as allowed entry al, in a reserved slot; answers r. */
static void exec_launch(exec_state *x, rpc_req *r, const exec_allowed *al, char **argv, const exec_input *in,
    unsigned long long seq)
{
	exec_run *e = calloc(1, sizeof *e);
	node_err err = {0};
	exec_spawn sp = {.path = al->path, .argv = argv, .env = x->cfg.env, .dir = x->cfg.dir, .in = in->p, .in_len = in->len};
	if (e == NULL)
		node_err_set(&err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	if (e == NULL || exec_proc_spawn(&sp, &e->pid, e->fd, &err) != 0) {
		free(e);
		exec_release(x);
		node_warn("exec: %s: %s", argv[0], err.msg);
		rpc_req_fail(r, "OSError", "%s", err.msg);
		return;
	}
	int64_t now = node_clock_mono_ms();
	snprintf(e->id, sizeof e->id, "e%llu", seq);
	e->pi[0] = e->pi[1] = -1;
	e->deadline_ms = now + (int64_t)x->cfg.max_seconds * 1000;
	e->read_ms = e->io_ms = now;
	char id[sizeof e->id];
	snprintf(id, sizeof id, "%s", e->id);
	int pid = (int)e->pid, argc = 0;
	while (argv[argc])
		argc++;
	node_info("exec %s: started %s (pid %d, %d argument%s)", id, al->path, pid, argc - 1, argc == 2 ? "" : "s");
	pthread_mutex_lock(&x->lock);
	if (x->stopping) { /* the stop came while it started */
		exec_proc_kill(e->pid);
		e->by = EXEC_BY_STOP;
	}
	e->next = x->runs;
	x->runs = e;
	pthread_mutex_unlock(&x->lock);
	exec_wake(x);
	cJSON *res = cJSON_CreateObject();
	if (res) {
		cJSON_AddStringToObject(res, "id", id);
		cJSON_AddNumberToObject(res, "pid", pid);
	}
	rpc_req_result(r, res);
}

static void exec_start(rpc_req *r, void *inst, const cJSON *params)
{
	exec_state *x = inst;
	char **argv;
	exec_input in;
	if (argv_arg(r, params, &argv) != 0)
		return;
	if (stdin_arg(r, params, &in) != 0) {
		free(argv);
		return;
	}
	const exec_allowed *al = exec_allow_find(&x->cfg.allow, argv[0]);
	unsigned long long seq;
	if (al == NULL) {
		node_warn("exec refused: \"%.200s\" is not on the allow-list", argv[0]);
		rpc_req_error(r, RPC_DENIED, NULL, "exec refused: \"%.200s\" is not on this server's allow-list (roles.rpc.exec.allow)",
		    argv[0]);
	} else if (al->path == NULL) {
		rpc_req_fail(r, "FileNotFoundError", "exec: %.200s is allowed but was not in this server's PATH when it started",
		    argv[0]);
	} else if (exec_reserve(x, r, &seq) == 0) {
		exec_launch(x, r, al, argv, &in, seq);
	}
	free(in.owned);
	free(argv);
}

static int wait_arg(rpc_req *r, const cJSON *params, int *out)
{
	const cJSON *v = cJSON_GetArrayItem(params, 1);
	*out = EXEC_WAIT_DEFAULT_MS;
	if (v == NULL || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsNumber(v) || !(v->valuedouble >= 0 && v->valuedouble <= EXEC_WAIT_MAX_MS))
		return bad_param(r, "wait_ms of exec.read must be a number from 0 to 30000");
	*out = (int)v->valuedouble;
	return 0;
}

/* The record of id (lock taken), or r is answered and NULL returned. */
static exec_run *exec_find(exec_state *x, rpc_req *r, const char *id)
{
	pthread_mutex_lock(&x->lock);
	exec_run *e = run_find(x, id);
	if (e && !e->given)
		return e;
	pthread_mutex_unlock(&x->lock);
	rpc_req_fail(r, "KeyError",
	    "no command %.64s here (its end was read already, it was forgotten %d s after it ended unread, or it never started)", id,
	    EXEC_FORGET_MS / 1000);
	return NULL;
}

static void exec_read(rpc_req *r, void *inst, const cJSON *params)
{
	exec_state *x = inst;
	const char *id;
	int wait_ms;
	if (rpc_arg_str(r, params, 0, &id) != 0 || wait_arg(r, params, &wait_ms) != 0)
		return;
	int left = rpc_req_left_ms(r) - EXEC_MARGIN_MS;
	if (wait_ms > left)
		wait_ms = left > 0 ? left : 0;
	exec_run *e = exec_find(x, r, id);
	if (e == NULL)
		return;
	if (e->parked) {
		pthread_mutex_unlock(&x->lock);
		rpc_req_fail(r, "BusyError", "another exec.read of %.64s is waiting already (one at a time)", id);
		return;
	}
	int64_t now = node_clock_mono_ms();
	e->read_ms = now;
	if (!(run_has_data(e) || run_final(e) || x->stopping || wait_ms == 0)) {
		e->parked = r; /* the thread answers it */
		e->parked_until = now + wait_ms;
		pthread_mutex_unlock(&x->lock);
		exec_wake(x);
		return;
	}
	int last;
	cJSON *res = run_answer(x, e, now, &last);
	if (last)
		run_unlink(x, e);
	pthread_mutex_unlock(&x->lock);
	if (last)
		run_free(e);
	exec_wake(x); /* a full buffer has room again */
	rpc_req_result(r, res);
}

static void exec_kill(rpc_req *r, void *inst, const cJSON *params)
{
	exec_state *x = inst;
	const char *id;
	if (rpc_arg_str(r, params, 0, &id) != 0)
		return;
	exec_run *e = exec_find(x, r, id);
	if (e == NULL)
		return;
	int running = !e->ended;
	if (running) {
		exec_proc_kill(e->pid);
		if (e->by == EXEC_BY_NONE)
			e->by = EXEC_BY_KILL;
	}
	pthread_mutex_unlock(&x->lock);
	if (running)
		exec_wake(x);
	rpc_req_result(r, cJSON_CreateTrue());
}

/* ---- settings, create, destroy ---- */

static int opt_int(const cJSON *opts, const char *key, int min, int max, int def, int *out, node_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(opts, key);
	*out = def;
	if (v == NULL)
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long long)v->valuedouble || v->valuedouble < min ||
	    v->valuedouble > max)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "roles.rpc.exec.%s: expected a whole number from %d to %d",
		    key, min, max);
	*out = (int)v->valuedouble;
	return 0;
}

/* The working directory: dir, else DATA_DIR/exec, else the server's own. */
static int exec_dir(exec_cfg *c, const rpc_obj_cfg *cfg, node_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg->opts, "dir");
	char buf[4096];
	const char *dir = NULL;
	if (v) {
		struct stat st;
		if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "roles.rpc.exec.dir: expected a directory");
		if (stat(v->valuestring, &st) != 0 || !S_ISDIR(st.st_mode))
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "roles.rpc.exec.dir: %.256s is not a directory", v->valuestring);
		dir = v->valuestring;
	} else {
		node_err e = {0};
		if (cfg->srv && cfg->srv->ctx && node_conf_data_dir(&cfg->srv->ctx->conf, "exec", buf, sizeof buf, &e) == 0)
			dir = buf;
		else
			node_debug("exec: commands run in the server's directory: %s", e.msg);
	}
	if (dir && (c->dir = strdup(dir)) == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	return 0;
}

/* Bytes of one stream in one answer: base64 of both must fit in a message. */
static size_t exec_chunk(const rpc_server *srv)
{
	size_t n = EXEC_READ_MAX;
	if (srv && srv->ctx) {
		const node_limits *l = &srv->ctx->wire.limits;
		size_t by_string = l->max_string / 4 * 3, by_message = l->max_message > 1024 ? (l->max_message - 512) / 8 * 3 : 192;
		if (by_string < n)
			n = by_string;
		if (by_message < n)
			n = by_message;
	}
	return n < 64 ? 64 : n;
}

static void exec_cfg_free(exec_cfg *c)
{
	exec_allow_free(&c->allow);
	exec_env_free(c->env);
	free(c->dir);
}

static int exec_cfg_load(exec_cfg *c, const rpc_obj_cfg *cfg, node_err *err)
{
	const cJSON *o = cfg->opts;
	int buf = 0;
	int rc = exec_allow_load(&c->allow, cJSON_GetObjectItemCaseSensitive(o, "allow"), err);
	if (rc == 0)
		rc = opt_int(o, "max_seconds", 1, 86400, 300, &c->max_seconds, err);
	if (rc == 0)
		rc = opt_int(o, "max_running", 1, EXEC_RUNNING_MAX, 16, &c->max_running, err);
	if (rc == 0)
		rc = opt_int(o, "max_output_buffer", 4096, 256 << 20, 1 << 20, &buf, err);
	if (rc == 0)
		rc = exec_dir(c, cfg, err);
	if (rc == 0 && (c->env = exec_env_new()) == NULL)
		rc = node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	c->max_buf = (size_t)buf;
	c->chunk = exec_chunk(cfg->srv);
	return rc;
}

/* Programs that run whatever they are told: allowing one allows everything. */
static void exec_warn_shells(const exec_allow *a)
{
	static const char *const any[] = {"sh", "bash", "dash", "zsh", "ksh", "mksh", "csh", "tcsh", "fish", "busybox", "env",
	    "xargs", "find", "nohup", "timeout", "nice", "sudo", "su", "python", "python3", "perl", "ruby", "node", "awk", NULL};
	for (int i = 0; i < a->n; i++) {
		const char *base = strrchr(a->v[i].name, '/');
		base = base ? base + 1 : a->v[i].name;
		for (int k = 0; any[k]; k++)
			if (strcmp(base, any[k]) == 0)
				node_warn("exec: %s is on the allow-list: it runs any command it is given, so everything is allowed",
				    a->v[i].name);
	}
}

static int exec_start_thread(exec_state *x, node_err *err)
{
	x->pf = calloc(1 + 2 * (size_t)x->cfg.max_running, sizeof *x->pf);
	if (x->pf == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	if (pipe2(x->wake, O_CLOEXEC | O_NONBLOCK) != 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot make a pipe: %s", strerror(errno));
	int e = pthread_create(&x->thread, NULL, exec_thread, x);
	if (e != 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot start a thread: %s", strerror(e));
	x->started = 1;
	return 0;
}

static void exec_free(exec_state *x)
{
	while (x->runs) {
		exec_run *e = x->runs;
		x->runs = e->next;
		run_free(e);
	}
	for (int i = 0; i < 2; i++)
		if (x->wake[i] >= 0)
			close(x->wake[i]);
	free(x->pf);
	exec_cfg_free(&x->cfg);
	pthread_mutex_destroy(&x->lock);
	free(x);
}

static int exec_create(void **inst, const rpc_obj_cfg *cfg, node_err *err)
{
	exec_state *x = calloc(1, sizeof *x);
	if (x == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	x->srv = cfg->srv;
	x->wake[0] = x->wake[1] = -1;
	pthread_mutex_init(&x->lock, NULL);
	int rc = exec_cfg_load(&x->cfg, cfg, err);
	if (rc == 0)
		rc = exec_start_thread(x, err);
	if (rc != 0) {
		exec_free(x);
		return rc;
	}
	exec_warn_shells(&x->cfg.allow);
	node_info("exec: on for %d command%s, at most %d at once, %d s each, in %s", x->cfg.allow.n,
	    x->cfg.allow.n == 1 ? "" : "s", x->cfg.max_running, x->cfg.max_seconds, x->cfg.dir ? x->cfg.dir : "the server's directory");
	*inst = x;
	return 0;
}

/* Killed commands are reaped, a bounded wait (one stuck in the kernel
 * stays a zombie rather than hang the stop). */
static void exec_reap_all(exec_state *x)
{
	int left = 0;
	for (int i = 0; i < EXEC_REAP_MS / 10; i++) {
		left = 0;
		for (exec_run *e = x->runs; e; e = e->next)
			if (!e->ended && exec_proc_reap(e->pid, &e->wstatus) == 0)
				left++;
			else
				e->ended = 1;
		if (left == 0)
			return;
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	node_warn("exec: %d command%s did not end %d ms after SIGKILL; left as zombies", left, left == 1 ? "" : "s", EXEC_REAP_MS);
}

/* Kill everything, answer the reads still waiting ("server stopping"),
 * stop the thread, reap. */
static void exec_destroy(void *inst, const rpc_kind *kind)
{
	(void)kind;
	exec_state *x = inst;
	pthread_mutex_lock(&x->lock);
	x->quit = 1;
	pthread_mutex_unlock(&x->lock);
	exec_wake(x);
	if (x->started)
		pthread_join(x->thread, NULL);
	exec_send(x); /* the thread's last answers, if it stopped before sending them */
	if (!x->stopping)
		exec_stop_all(x);
	int64_t now = node_clock_mono_ms();
	for (exec_run *e = x->runs; e; e = e->next)
		if (e->parked) {
			int last;
			x->out[x->nout++] = (exec_answer){e->parked, run_answer(x, e, now, &last)};
			e->parked = NULL;
		}
	exec_send(x);
	exec_reap_all(x);
	exec_free(x);
}

static const rpc_method exec_methods[] = {
	{"start", exec_start, "argv,stdin", 1, 2, 0, NULL},
	{"read", exec_read, "id,wait_ms", 1, 2, 0, NULL},
	{"kill", exec_kill, "id", 1, 1, 0, NULL},
	{NULL, NULL, NULL, 0, 0, 0, NULL},
};

const rpc_kind rpc_kind_exec = {
	.name = "exec",
	.doc = "start(argv, stdin) -> {id}, read(id, wait_ms) -> {out, err, done, status, signal, reason}, kill(id)",
	.methods = exec_methods,
	.create = exec_create,
	.destroy = exec_destroy,
	.concurrent = 1,
};
