/* A stand-in for the MapReduce master (`node mapreduce`) in tests of
 * `node job`: a node_server answering the job.* ops of node-protocol(7)
 * from a canned state machine (queued, each map, each reduce, done: one
 * step every STEP_MS), writing canned part files and a manifest.
 * Usage: fake_master URL [STEP_MS]; prints "ready URL", then one line per
 * request ("job.status ID"; a job.read also "job.read.at ID FILE OFFSET").
 * Job names choose the behaviour:
 * fail* fails after its first map, slow* never finishes its maps, hide*
 * names its output DIR-moved (results must come through job.read), stale*
 * writes another job's id in its manifest, refuse* is refused (code limit).
 * params.lines sets the lines of each part file (default 3). */
#include <errno.h>
#include <fcntl.h>
#include <mbedtls/base64.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/file.h"
#include "core/rand.h"
#include "core/transport.h"

#define FM_READ_CAP 65536   /* bytes of one job.read at most: results take several */
#define FM_WAIT_MAX 60000
#define FM_TICK_MS 10

typedef struct fm_job {
	char id[80], name[101], state[16], error[2600];
	int64_t submitted, started, finished, next_ms;
	int maps, maps_done, reds, reds_done, failed_attempts;
	int version, lines, jsonl;
	char dir[2048], shown[2048]; /* where the output is; where the status says it is */
	struct fm_job *next;
} fm_job;

typedef struct fm_wait {
	node_call *call;
	char id[80];
	double since;
	int64_t deadline;
	struct fm_wait *next;
} fm_wait;

typedef struct fm_master {
	pthread_mutex_t lock;
	fm_job *jobs; /* newest first */
	fm_wait *waits;
	int step_ms, stopping;
} fm_master;

static int fm_is(const fm_job *j, const char *prefix)
{
	return strncmp(j->name, prefix, strlen(prefix)) == 0;
}

static int fm_finished(const fm_job *j)
{
	return strcmp(j->state, "done") == 0 || strcmp(j->state, "failed") == 0 || strcmp(j->state, "killed") == 0;
}

static fm_job *fm_find(fm_master *fm, const char *id)
{
	for (fm_job *j = fm->jobs; id && j; j = j->next)
		if (strcmp(j->id, id) == 0)
			return j;
	return NULL;
}

static void fm_part(const fm_job *j, const char *dir, int p, char *out, size_t n)
{
	snprintf(out, n, "%s/part-%05d.%s", dir, p, j->jsonl ? "jsonl" : "tsv");
}

/* ---- the status object ---- */

static cJSON *fm_phase(int total, int done, int running, int failed)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "total", total);
	cJSON_AddNumberToObject(o, "done", done);
	cJSON_AddNumberToObject(o, "running", running);
	cJSON_AddNumberToObject(o, "failed_attempts", failed);
	cJSON_AddNumberToObject(o, "backups", 0);
	return o;
}

static cJSON *fm_status(const fm_job *j, int files)
{
	cJSON *o = cJSON_CreateObject(), *out = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "id", j->id);
	cJSON_AddStringToObject(o, "name", j->name);
	cJSON_AddStringToObject(o, "state", j->state);
	if (strcmp(j->state, "failed") == 0)
		cJSON_AddStringToObject(o, "error", j->error);
	cJSON_AddNumberToObject(o, "submitted_ms", (double)j->submitted);
	cJSON_AddNumberToObject(o, "started_ms", (double)j->started);
	cJSON_AddNumberToObject(o, "finished_ms", (double)j->finished);
	int in_map = strcmp(j->state, "map") == 0, in_red = strcmp(j->state, "reduce") == 0;
	cJSON_AddItemToObject(o, "maps", fm_phase(j->maps, j->maps_done, in_map ? j->maps - j->maps_done : 0, j->failed_attempts));
	cJSON_AddItemToObject(o, "reduces", fm_phase(j->reds, j->reds_done, in_red ? j->reds - j->reds_done : 0, 0));
	cJSON_AddNumberToObject(o, "records_in", 10.0 * j->maps_done);
	cJSON_AddNumberToObject(o, "bytes_in", 100.0 * j->maps_done);
	cJSON_AddNumberToObject(o, "records_out", strcmp(j->state, "done") == 0 ? (double)j->lines * j->reds : 0);
	cJSON_AddStringToObject(out, "dir", j->shown);
	cJSON_AddStringToObject(out, "format", j->jsonl ? "jsonl" : "tsv");
	if (files) {
		cJSON *fs = cJSON_AddArrayToObject(out, "files");
		for (int p = 0; p < j->reds; p++) {
			char path[2100];
			fm_part(j, j->shown, p, path, sizeof path);
			cJSON_AddItemToArray(fs, cJSON_CreateString(path));
		}
	}
	cJSON_AddItemToObject(o, "output", out);
	cJSON_AddNumberToObject(o, "version", j->version);
	return o;
}

static void fm_reply_status(node_call *c, const fm_job *j)
{
	cJSON *r = node_reply_ok();
	cJSON_AddItemToObject(r, "job", fm_status(j, 1));
	node_call_reply(c, r);
}

/* ---- the state machine ---- */

/* Part files of L canned lines each, then the manifest (.tmp, rename). */
static int fm_write_output(fm_job *j)
{
	node_err err = {0};
	if (node_file_mkdirs(j->dir, &err) != 0) {
		snprintf(j->error, sizeof j->error, "%s", err.msg);
		return -1;
	}
	cJSON *m = cJSON_CreateObject(), *files = cJSON_CreateArray(), *recs = cJSON_CreateArray(), *bytes = cJSON_CreateArray();
	cJSON_AddStringToObject(m, "id", fm_is(j, "stale") ? "someone-else-20260101-000000-0000" : j->id);
	cJSON_AddStringToObject(m, "name", j->name);
	cJSON_AddStringToObject(m, "format", j->jsonl ? "jsonl" : "tsv");
	cJSON_AddStringToObject(m, "sort", "key");
	cJSON_AddNumberToObject(m, "partitions", j->reds);
	int rc = 0;
	for (int p = 0; p < j->reds && rc == 0; p++) {
		char path[2100];
		fm_part(j, j->dir, p, path, sizeof path);
		FILE *f = fopen(path, "w");
		if (f == NULL) {
			snprintf(j->error, sizeof j->error, "cannot write %s: %s", path, strerror(errno));
			rc = -1;
			break;
		}
		for (int i = 0; i < j->lines; i++)
			fprintf(f, j->jsonl ? "{\"key\":\"key-%d-%d\",\"value\":%d}\n" : "key-%d-%d\t%d\n", p, i, i);
		cJSON_AddItemToArray(files, cJSON_CreateString(strrchr(path, '/') + 1));
		cJSON_AddItemToArray(recs, cJSON_CreateNumber(j->lines));
		cJSON_AddItemToArray(bytes, cJSON_CreateNumber((double)ftell(f)));
		fclose(f);
	}
	cJSON_AddItemToObject(m, "files", files);
	cJSON_AddItemToObject(m, "records", recs);
	cJSON_AddItemToObject(m, "bytes", bytes);
	cJSON_AddNumberToObject(m, "finished_ms", (double)node_clock_wall_ms());
	char tmp[2100], final[2100], *text = cJSON_PrintUnformatted(m);
	snprintf(tmp, sizeof tmp, "%s/manifest.json.tmp", j->dir);
	snprintf(final, sizeof final, "%s/manifest.json", j->dir);
	FILE *f = rc == 0 ? fopen(tmp, "w") : NULL;
	if (f) {
		fputs(text, f);
		rc = fclose(f) == 0 && rename(tmp, final) == 0 ? 0 : -1;
	}
	cJSON_free(text);
	cJSON_Delete(m);
	return f ? rc : -1;
}

static void fm_end(fm_job *j, const char *state)
{
	snprintf(j->state, sizeof j->state, "%s", state);
	j->finished = node_clock_wall_ms();
}

static void fm_step(fm_master *fm, fm_job *j, int64_t now)
{
	if (fm_finished(j) || now < j->next_ms)
		return;
	j->next_ms = now + fm->step_ms;
	if (strcmp(j->state, "queued") == 0) {
		snprintf(j->state, sizeof j->state, "map");
		j->started = node_clock_wall_ms();
	} else if (strcmp(j->state, "map") == 0) {
		if (fm_is(j, "slow"))
			return; /* no change: no new version */
		j->maps_done++;
		if (fm_is(j, "fail")) {
			j->failed_attempts = 4;
			snprintf(j->error, sizeof j->error, "map task 1 failed 4 times: map program awk exited with status 3: boom");
			fm_end(j, "failed");
		} else if (j->maps_done == j->maps) {
			snprintf(j->state, sizeof j->state, "reduce");
		}
	} else if (++j->reds_done == j->reds) {
		fm_end(j, fm_write_output(j) == 0 ? "done" : "failed");
	}
	j->version++;
}

/* Answer the parked waits whose job changed or ended, or whose time ran out. */
static void fm_wake(fm_master *fm, int64_t now, int all)
{
	fm_wait **pw = &fm->waits;
	while (*pw) {
		fm_wait *w = *pw;
		fm_job *j = fm_find(fm, w->id);
		if (!all && j && j->version <= w->since && !fm_finished(j) && now < w->deadline) {
			pw = &w->next;
			continue;
		}
		if (all)
			node_call_error(w->call, NODE_ERR_SHUTDOWN, "the master is stopping");
		else if (j == NULL)
			node_call_error(w->call, NODE_ERR_NOT_FOUND, "job %s was purged", w->id);
		else
			fm_reply_status(w->call, j);
		*pw = w->next;
		free(w);
	}
}

static void *fm_ticker(void *arg)
{
	fm_master *fm = arg;
	struct timespec ts = {0, FM_TICK_MS * 1000000L};
	for (;;) {
		pthread_mutex_lock(&fm->lock);
		int stop = fm->stopping;
		int64_t now = node_clock_mono_ms();
		for (fm_job *j = fm->jobs; j && !stop; j = j->next)
			fm_step(fm, j, now);
		fm_wake(fm, now, stop);
		pthread_mutex_unlock(&fm->lock);
		if (stop)
			return NULL;
		nanosleep(&ts, NULL);
	}
}

/* ---- ops ---- */

static const char *fm_id(const cJSON *req)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "id"));
}

static void fm_log(const char *op, const char *what)
{
	printf("%s %s\n", op, what ? what : "-");
	fflush(stdout);
}

/* An {"job": X} input must name a done job. 0, or -1 after answering. */
static int fm_check_inputs(fm_master *fm, node_call *c, const cJSON *inputs)
{
	int i = 0;
	const cJSON *in;
	cJSON_ArrayForEach(in, inputs) {
		const char *src = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "job"));
		fm_job *e = src ? fm_find(fm, src) : NULL;
		if (src && e == NULL) {
			node_call_error(c, "invalid", "inputs[%d]: no job %s", i, src);
			return -1;
		}
		if (e && strcmp(e->state, "done") != 0) {
			node_call_error(c, "invalid", "inputs[%d]: job %s is %s, not done", i, src, e->state);
			return -1;
		}
		i++;
	}
	return 0;
}

static void fm_new_id(const char *name, char *out, size_t n)
{
	unsigned char r[2] = {0};
	node_rand_bytes(r, sizeof r, NULL);
	time_t t = time(NULL);
	struct tm tm;
	char when[32];
	gmtime_r(&t, &tm);
	strftime(when, sizeof when, "%Y%m%d-%H%M%S", &tm);
	snprintf(out, n, "%.40s-%s-%02x%02x", name, when, r[0], r[1]);
}

static void op_submit(node_call *c, const cJSON *req, void *arg)
{
	fm_master *fm = arg;
	const cJSON *job = cJSON_GetObjectItemCaseSensitive(req, "job");
	const cJSON *out = cJSON_GetObjectItemCaseSensitive(job, "output");
	const cJSON *inputs = cJSON_GetObjectItemCaseSensitive(job, "inputs");
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(job, "params");
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(job, "name"));
	const char *dir = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(out, "dir"));
	const char *format = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(out, "format"));
	const cJSON *parts = cJSON_GetObjectItemCaseSensitive(job, "partitions");
	const cJSON *lines = cJSON_GetObjectItemCaseSensitive(params, "lines");
	fm_log("job.submit", name);
	if (name == NULL || dir == NULL || !cJSON_IsArray(inputs) || !cJSON_IsNumber(parts)) {
		node_call_error(c, "invalid", "job: expected a normalised job (name, inputs, partitions, output.dir)");
		return;
	}
	if (strncmp(name, "refuse", 6) == 0) {
		node_call_error(c, NODE_ERR_LIMIT, "too many jobs: 1000 (roles.mapreduce.max_jobs)");
		return;
	}
	fm_job *j = calloc(1, sizeof *j);
	pthread_mutex_lock(&fm->lock);
	if (j == NULL || fm_check_inputs(fm, c, inputs) != 0) {
		pthread_mutex_unlock(&fm->lock);
		if (j == NULL)
			node_call_error(c, NODE_ERR_INTERNAL, "out of memory");
		free(j);
		return;
	}
	snprintf(j->name, sizeof j->name, "%s", name);
	fm_new_id(name, j->id, sizeof j->id);
	snprintf(j->state, sizeof j->state, "queued");
	j->maps = cJSON_GetArraySize(inputs) > 0 ? cJSON_GetArraySize(inputs) : 1;
	j->reds = parts->valueint;
	j->lines = cJSON_IsNumber(lines) ? lines->valueint : 3;
	j->jsonl = format && strcmp(format, "jsonl") == 0;
	snprintf(j->dir, sizeof j->dir, "%s", dir);
	snprintf(j->shown, sizeof j->shown, "%s%s", dir, fm_is(j, "hide") ? "-moved" : "");
	j->submitted = node_clock_wall_ms();
	j->next_ms = node_clock_mono_ms() + fm->step_ms;
	j->version = 1;
	j->next = fm->jobs;
	fm->jobs = j;
	cJSON *r = node_reply_ok();
	cJSON_AddStringToObject(r, "id", j->id);
	pthread_mutex_unlock(&fm->lock);
	node_call_reply(c, r);
}

/* The job of req under the lock, or NULL after answering not_found (unlocked). */
static fm_job *fm_lock_job(fm_master *fm, node_call *c, const cJSON *req, const char *op)
{
	const char *id = fm_id(req);
	fm_log(op, id);
	pthread_mutex_lock(&fm->lock);
	fm_job *j = fm_find(fm, id);
	if (j == NULL) {
		pthread_mutex_unlock(&fm->lock);
		node_call_error(c, NODE_ERR_NOT_FOUND, "no job %s (node job list shows the jobs)", id ? id : "(no id)");
	}
	return j;
}

static void op_status(node_call *c, const cJSON *req, void *arg)
{
	fm_master *fm = arg;
	fm_job *j = fm_lock_job(fm, c, req, "job.status");
	if (j == NULL)
		return;
	fm_reply_status(c, j);
	pthread_mutex_unlock(&fm->lock);
}

static void op_wait(node_call *c, const cJSON *req, void *arg)
{
	fm_master *fm = arg;
	const cJSON *since = cJSON_GetObjectItemCaseSensitive(req, "since");
	const cJSON *tmo = cJSON_GetObjectItemCaseSensitive(req, "timeout_ms");
	fm_job *j = fm_lock_job(fm, c, req, "job.wait");
	if (j == NULL)
		return;
	double s = cJSON_IsNumber(since) ? since->valuedouble : 0;
	fm_wait *w = j->version > s || fm_finished(j) || fm->stopping ? NULL : calloc(1, sizeof *w);
	if (w) {
		double ms = cJSON_IsNumber(tmo) ? tmo->valuedouble : FM_WAIT_MAX;
		w->call = c;
		snprintf(w->id, sizeof w->id, "%s", j->id);
		w->since = s;
		w->deadline = node_clock_mono_ms() + (int64_t)(ms < 0 ? 0 : ms > FM_WAIT_MAX ? FM_WAIT_MAX : ms);
		w->next = fm->waits;
		fm->waits = w;
	} else {
		fm_reply_status(c, j);
	}
	pthread_mutex_unlock(&fm->lock);
}

static void op_list(node_call *c, const cJSON *req, void *arg)
{
	fm_master *fm = arg;
	fm_log("job.list", NULL);
	cJSON *r = node_reply_ok(), *jobs = cJSON_AddArrayToObject(r, "jobs");
	pthread_mutex_lock(&fm->lock);
	for (fm_job *j = fm->jobs; j; j = j->next)
		cJSON_AddItemToArray(jobs, fm_status(j, 0));
	pthread_mutex_unlock(&fm->lock);
	node_call_reply(c, r);
}

static void op_kill(node_call *c, const cJSON *req, void *arg)
{
	fm_master *fm = arg;
	fm_job *j = fm_lock_job(fm, c, req, "job.kill");
	if (j == NULL)
		return;
	if (fm_finished(j)) {
		node_call_error(c, "finished", "job %s is %s already", j->id, j->state);
	} else {
		fm_end(j, "killed");
		j->version++;
		fm_reply_status(c, j);
	}
	pthread_mutex_unlock(&fm->lock);
}

static void op_purge(node_call *c, const cJSON *req, void *arg)
{
	fm_master *fm = arg;
	fm_job *j = fm_lock_job(fm, c, req, "job.purge");
	if (j == NULL)
		return;
	if (!fm_finished(j)) {
		node_call_error(c, "running", "job %s is %s (node job kill %s first)", j->id, j->state, j->id);
		pthread_mutex_unlock(&fm->lock);
		return;
	}
	int removed = 0;
	char path[2100];
	for (int p = 0; p < j->reds; p++) {
		fm_part(j, j->dir, p, path, sizeof path);
		removed += unlink(path) == 0;
	}
	snprintf(path, sizeof path, "%s/manifest.json", j->dir);
	removed += unlink(path) == 0;
	for (fm_job **pj = &fm->jobs; *pj; pj = &(*pj)->next)
		if (*pj == j) {
			*pj = j->next;
			break;
		}
	free(j);
	pthread_mutex_unlock(&fm->lock);
	cJSON *r = node_reply_ok();
	cJSON_AddNumberToObject(r, "removed", removed);
	node_call_reply(c, r);
}

/* Up to FM_READ_CAP bytes of part file `file` from `offset`, as base64. */
static void op_read(node_call *c, const cJSON *req, void *arg)
{
	fm_master *fm = arg;
	const cJSON *file = cJSON_GetObjectItemCaseSensitive(req, "file");
	const cJSON *off = cJSON_GetObjectItemCaseSensitive(req, "offset"), *max = cJSON_GetObjectItemCaseSensitive(req, "max");
	char path[2100], what[200];
	snprintf(what, sizeof what, "%s %d %.0f", fm_id(req) ? fm_id(req) : "-", file ? file->valueint : -1,
	    off ? off->valuedouble : -1);
	fm_job *j = fm_lock_job(fm, c, req, "job.read");
	if (j == NULL)
		return;
	fm_log("job.read.at", what);
	int ok = strcmp(j->state, "done") == 0 && cJSON_IsNumber(file) && file->valueint >= 0 && file->valueint < j->reds;
	if (ok)
		fm_part(j, j->dir, file->valueint, path, sizeof path);
	pthread_mutex_unlock(&fm->lock);
	if (!ok || !cJSON_IsNumber(off) || off->valuedouble < 0) {
		node_call_error(c, "invalid", "job.read: no such file of a done job, or a bad offset");
		return;
	}
	size_t want = FM_READ_CAP;
	if (cJSON_IsNumber(max) && max->valuedouble > 0 && max->valuedouble < FM_READ_CAP)
		want = (size_t)max->valuedouble;
	size_t tcap = FM_READ_CAP / 3 * 4 + 8, tlen = 0;
	unsigned char *buf = malloc(FM_READ_CAP), *text = malloc(tcap);
	int fd = open(path, O_RDONLY);
	struct stat sb;
	ssize_t n = buf && text && fd >= 0 && fstat(fd, &sb) == 0 ? pread(fd, buf, want, (off_t)off->valuedouble) : -1;
	if (fd >= 0)
		close(fd);
	if (n < 0 || mbedtls_base64_encode(text, tcap, &tlen, buf, (size_t)n) != 0) {
		node_call_error(c, NODE_ERR_NOT_FOUND, "cannot read %s: %s", path, strerror(errno));
	} else {
		cJSON *r = node_reply_ok();
		cJSON_AddStringToObject(r, "data", (const char *)text);
		cJSON_AddNumberToObject(r, "size", (double)sb.st_size);
		cJSON_AddBoolToObject(r, "eof", off->valuedouble + (double)n >= (double)sb.st_size);
		node_call_reply(c, r);
	}
	free(buf);
	free(text);
}

static const node_op fm_ops[] = {
	{"job.submit", op_submit},
	{"job.status", op_status},
	{"job.wait", op_wait},
	{"job.list", op_list},
	{"job.kill", op_kill},
	{"job.purge", op_purge},
	{"job.read", op_read},
	{NULL, NULL},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: fake_master URL [STEP_MS]\n");
		return 2;
	}
	fm_master fm = {.lock = PTHREAD_MUTEX_INITIALIZER, .step_ms = argc > 2 && atoi(argv[2]) > 0 ? atoi(argv[2]) : 50};
	node_wire w;
	node_wire_init(&w);
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	node_err err = {0};
	node_server_cfg cfg = {.url = argv[1], .role = "mapreduce", .node = "fake", .ops = fm_ops, .arg = &fm, .wire = &w};
	node_server *s;
	if (node_server_start(&s, &cfg, &err) != 0) {
		fprintf(stderr, "fake_master: %s\n", err.msg);
		return 4;
	}
	pthread_t ticker;
	pthread_create(&ticker, NULL, fm_ticker, &fm);
	printf("ready %s\n", node_server_url(s));
	fflush(stdout);
	int sig;
	sigwait(&set, &sig);
	pthread_mutex_lock(&fm.lock);
	fm.stopping = 1; /* the ticker answers the parked waits and ends */
	pthread_mutex_unlock(&fm.lock);
	pthread_join(ticker, NULL);
	node_server_stop(s);
	while (fm.jobs) {
		fm_job *j = fm.jobs;
		fm.jobs = j->next;
		free(j);
	}
	node_wire_fini(&w);
	return 0;
}
