/* Following a job to its end: job.wait calls parked at the master until the
 * job changes, a progress line on stderr ("map 3/8, reduce 0/2, 12 s"),
 * and the exit status of how the job ended. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chancli.h"
#include "core/clock.h"
#include "job/job_cli.h"

#define JOB_WAIT_MAX_MS 60000 /* the master's bound on one job.wait */
#define JOB_TICK_MS 1000      /* a terminal's line is redrawn this often, for its clock */

typedef enum job_show {
	JOB_SHOW_QUIET,  /* stderr is not a terminal and no --progress */
	JOB_SHOW_REDRAW, /* a terminal: one line, redrawn with \r */
	JOB_SHOW_LINES,  /* --progress elsewhere: one line per change */
} job_show;

typedef struct job_follow {
	job_cli *c;
	const char *id;
	job_show mode;
	int64_t start_ms; /* monotonic: the line's clock counts from here */
	size_t drawn;     /* characters of the line on the terminal now */
	char last[256];   /* the line without its clock, as last shown */
} job_follow;

/* On the stop thread, which owns the note. */
static void job_interrupted(void *arg)
{
	job_stop_note *n = arg;
	fprintf(stderr, "%snode job: interrupted; job %s goes on running (node job kill %s stops it)\n",
	    n->line_open ? "\n" : "", n->id, n->id);
}

/* Leave at once on SIGINT/SIGTERM, saying what became of the job. */
static void job_on_stop(job_cli *c, const char *id)
{
	job_stop_note *n = calloc(1, sizeof *n);
	if (n)
		snprintf(n->id, sizeof n->id, "%s", id);
	c->note = n;
	chancli_on_stop(c->ctx, n ? job_interrupted : NULL, n);
}

/* "map 3/8, reduce 0/2", with "queued, " before and ", 2 retried" after when so. */
static void job_progress_text(const cJSON *st, char *out, size_t n)
{
	char maps[64], reds[64], retried[48] = "";
	job_count(st, "maps", maps, sizeof maps);
	job_count(st, "reduces", reds, sizeof reds);
	double failed = job_num(cJSON_GetObjectItemCaseSensitive(st, "maps"), "failed_attempts") +
	                job_num(cJSON_GetObjectItemCaseSensitive(st, "reduces"), "failed_attempts");
	if (failed > 0)
		snprintf(retried, sizeof retried, ", %.0f retried", failed);
	const char *state = job_str(st, "state");
	snprintf(out, n, "%smap %s, reduce %s%s", state && strcmp(state, "queued") == 0 ? "queued, " : "", maps, reds, retried);
}

static void job_show_progress(job_follow *f, const cJSON *st)
{
	if (f->mode == JOB_SHOW_QUIET)
		return;
	char text[sizeof f->last], line[sizeof f->last + 32];
	job_progress_text(st, text, sizeof text);
	long long secs = (long long)((node_clock_mono_ms() - f->start_ms) / 1000);
	int len = snprintf(line, sizeof line, "%s, %lld s", text, secs);
	if (f->mode == JOB_SHOW_LINES) {
		if (strcmp(text, f->last) != 0)
			fprintf(stderr, "%s\n", line);
	} else {
		/* spaces wipe what a longer line before left */
		int pad = f->drawn > (size_t)len ? (int)(f->drawn - (size_t)len) : 0;
		fprintf(stderr, "\r%s%*s", line, pad, "");
		f->drawn = (size_t)len;
		if (f->c->note)
			f->c->note->line_open = 1;
	}
	snprintf(f->last, sizeof f->last, "%s", text);
	fflush(stderr);
}

static void job_end_line(job_follow *f)
{
	if (f->mode == JOB_SHOW_REDRAW && f->drawn > 0)
		fputc('\n', stderr);
	f->drawn = 0;
	if (f->c->note)
		f->c->note->line_open = 0;
}

/* The job ended: its final word on stderr, the exit status. */
static int job_ended(job_follow *f, const cJSON *st)
{
	const char *state = job_str(st, "state");
	if (strcmp(state, "failed") == 0) {
		const char *e = job_str(st, "error");
		job_warn(f->c, "job %s failed: %s", f->id, e ? e : "(the master gave no reason)");
		return JOB_EXIT_FAILED;
	}
	if (strcmp(state, "killed") == 0) {
		job_warn(f->c, "job %s was killed", f->id);
		return JOB_EXIT_FAILED;
	}
	if (f->mode != JOB_SHOW_QUIET) {
		const cJSON *out = cJSON_GetObjectItemCaseSensitive(st, "output");
		const char *dir = job_str(out, "dir");
		int n = cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(out, "files"));
		fprintf(stderr, "job %s done: %.0f records in %d part file%s in %s\n", f->id, job_num(st, "records_out"), n,
		    n == 1 ? "" : "s", dir ? dir : "?");
	}
	return 0;
}

/* The next question: the status now, then job.wait for a change. */
static cJSON *job_wait_req(const char *id, double version, int ms)
{
	if (version < 0)
		return job_req("job.status", id);
	cJSON *req = job_req("job.wait", id);
	if (req && (!cJSON_AddNumberToObject(req, "since", version) || !cJSON_AddNumberToObject(req, "timeout_ms", ms))) {
		cJSON_Delete(req);
		req = NULL;
	}
	return req;
}

/* One turn: ask, show. 0 to go on, -1 when the job ended (*rc its status), else an exit status. */
static int job_wait_turn(job_follow *f, double *version, int ms, int *rc)
{
	cJSON *reply = NULL;
	const cJSON *st = NULL;
	int r = job_call_status(f->c, job_wait_req(f->id, *version, ms), ms + f->c->call_ms, &reply, &st);
	if (r != 0)
		return r;
	*version = job_num(st, "version");
	job_show_progress(f, st);
	int over = job_finished(job_str(st, "state"));
	if (over) {
		job_end_line(f);
		if (f->c->json)
			job_print_json(st);
		*rc = job_ended(f, st);
	}
	cJSON_Delete(reply);
	return over ? -1 : 0;
}

int job_wait(job_cli *c, const char *id, long long wait_s)
{
	job_follow f = {.c = c, .id = id, .start_ms = node_clock_mono_ms()};
	f.mode = isatty(2) ? JOB_SHOW_REDRAW : node_args_has(c->a, "progress") ? JOB_SHOW_LINES : JOB_SHOW_QUIET;
	job_on_stop(c, id);
	int64_t deadline = wait_s >= 0 ? f.start_ms + wait_s * 1000 : -1;
	double version = -1;
	for (;;) {
		int ms = f.mode == JOB_SHOW_REDRAW ? JOB_TICK_MS : JOB_WAIT_MAX_MS;
		if (deadline >= 0) {
			int64_t left = deadline - node_clock_mono_ms();
			if (left <= 0) {
				job_end_line(&f);
				job_warn(c, "job %s is not finished after %lld s (--timeout); it goes on running", id, wait_s);
				return JOB_EXIT_TIMEOUT;
			}
			if (left < ms)
				ms = (int)left;
		}
		int rc = 0, r = job_wait_turn(&f, &version, ms, &rc);
		if (r < 0)
			return rc;
		if (r > 0)
			return r; /* printed, on a line of its own */
	}
}
