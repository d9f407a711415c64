/* The master's job table: jobs with their chunks and tasks, the status the
 * ops answer with, parked job.wait calls, and the bookkeeping of map and
 * reduce results that the scheduler and the journal replay share. */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "mapreduce/master.h"

struct mr_waiter {
	mr_waiter *next;
	node_call *call;
	int64_t deadline_ms; /* monotonic */
};

static const char *const mr_jstate_names[] = {"queued", "map", "reduce", "done", "failed", "killed"};

const char *mr_jstate_name(mr_jstate s)
{
	return s <= MR_JS_KILLED ? mr_jstate_names[s] : "unknown";
}

int mr_jstate_parse(const char *s, mr_jstate *out)
{
	for (int i = 0; s && i <= MR_JS_KILLED; i++)
		if (strcmp(s, mr_jstate_names[i]) == 0) {
			*out = (mr_jstate)i;
			return 0;
		}
	return -1;
}

int mr_jstate_finished(mr_jstate s)
{
	return s == MR_JS_DONE || s == MR_JS_FAILED || s == MR_JS_KILLED;
}

/* ---- string sets ---- */

int mr_strs_add(mr_strs *s, const char *v)
{
	for (size_t i = 0; i < s->n; i++)
		if (strcmp(s->v[i], v) == 0)
			return 0;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 4;
		char **nv = realloc(s->v, cap * sizeof *nv);
		if (nv == NULL)
			return -1;
		s->v = nv;
		s->cap = cap;
	}
	if ((s->v[s->n] = strdup(v)) == NULL)
		return -1;
	s->n++;
	return 0;
}

void mr_strs_free(mr_strs *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof *s);
}

/* ---- jobs ---- */

mr_mjob *mr_master_find(mr_master *m, const char *id)
{
	for (mr_mjob *j = m->jobs; j; j = j->next)
		if (strcmp(j->id, id) == 0)
			return j;
	return NULL;
}

static void mr_tasks_free(mr_task *t, size_t n)
{
	for (size_t i = 0; t && i < n; i++) {
		cJSON_Delete(t[i].res);
		free(t[i].error);
	}
	free(t);
}

static void mr_mjob_free(mr_mjob *j)
{
	if (j == NULL)
		return;
	mr_job_free(j->job);
	cJSON_Delete(j->norm);
	free(j->sizes);
	free(j->chunks);
	mr_tasks_free(j->maps, j->nmaps);
	mr_tasks_free(j->reduces, j->nreduces);
	free(j->error);
	mr_strs_free(&j->servers);
	mr_strs_free(&j->local);
	free(j);
}

static int mr_chunk_add(mr_mjob *j, size_t *cap, int input, uint64_t off, uint64_t len, node_err *err)
{
	if (j->nmaps >= MR_MASTER_MAPS_MAX)
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT,
		    "the inputs make more than %d map tasks: raise chunk_bytes", MR_MASTER_MAPS_MAX);
	if (j->nmaps == *cap) {
		*cap = *cap ? *cap * 2 : 16;
		mr_chunk *nc = realloc(j->chunks, *cap * sizeof *nc);
		if (nc == NULL)
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		j->chunks = nc;
	}
	j->chunks[j->nmaps++] = (mr_chunk){.input = input, .offset = off, .length = len};
	return 0;
}

/* Files are cut at chunk_bytes (a file of size 0 gives no chunk); URLs and
 * texts are one chunk each; a job always has at least one map task. */
static int mr_chunks_make(mr_mjob *j, node_err *err)
{
	size_t cap = 0;
	uint64_t cb = j->job->chunk_bytes ? j->job->chunk_bytes : MR_JOB_CHUNK_DEFAULT;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < j->job->n_inputs; i++) {
		if (j->job->inputs[i].kind == MR_IN_JOB)
			return node_err_set(err, NODE_EINVAL, MR_ERR_INVALID, "inputs[%zu]: job input not resolved", i);
		if (j->job->inputs[i].kind != MR_IN_FILE) {
			rc = mr_chunk_add(j, &cap, (int)i, 0, 0, err);
			continue;
		}
		uint64_t size = j->sizes[i] > 0 ? (uint64_t)j->sizes[i] : 0;
		for (uint64_t off = 0; rc == 0 && off < size; off += cb)
			rc = mr_chunk_add(j, &cap, (int)i, off, size - off < cb ? size - off : cb, err);
	}
	if (rc == 0 && j->nmaps == 0)
		rc = mr_chunk_add(j, &cap, -1, 0, 0, err);
	return rc;
}

static mr_task *mr_tasks_new(size_t n)
{
	mr_task *t = calloc(n ? n : 1, sizeof *t);
	for (size_t i = 0; t && i < n; i++) {
		t[i].next_attempt = 1;
		t[i].pending = 1;
	}
	return t;
}

int mr_master_job_new(mr_master *m, const char *id, mr_job *job, cJSON *norm, int64_t *sizes, int64_t submitted_ms,
    mr_mjob **out, node_err *err)
{
	(void)m;
	*out = NULL;
	mr_mjob *j = calloc(1, sizeof *j);
	if (j == NULL) {
		mr_job_free(job);
		cJSON_Delete(norm);
		free(sizes);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	snprintf(j->id, sizeof j->id, "%s", id);
	j->job = job;
	j->norm = norm;
	j->sizes = sizes;
	j->submitted_ms = submitted_ms;
	j->state = MR_JS_QUEUED;
	int rc = mr_chunks_make(j, err);
	if (rc == 0) {
		j->nreduces = (size_t)job->partitions;
		j->maps = mr_tasks_new(j->nmaps);
		j->reduces = mr_tasks_new(j->nreduces);
		if (j->maps == NULL || j->reduces == NULL)
			rc = node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	if (rc != 0) {
		mr_mjob_free(j);
		return rc;
	}
	*out = j;
	return 0;
}

void mr_master_add(mr_master *m, mr_mjob *j)
{
	j->seq = ++m->seq;
	j->next = m->jobs;
	m->jobs = j;
	m->njobs++;
}

void mr_master_forget(mr_master *m, mr_mjob *j)
{
	for (mr_mjob **p = &m->jobs; *p; p = &(*p)->next)
		if (*p == j) {
			*p = j->next;
			m->njobs--;
			break;
		}
	for (mr_att *a = m->atts; a; a = a->next)
		if (a->job == j)
			a->job = NULL;
	while (j->waiters) {
		mr_waiter *w = j->waiters;
		j->waiters = w->next;
		node_call_error(w->call, NODE_ERR_NOT_FOUND, "job %s was purged", j->id);
		free(w);
	}
	mr_mjob_free(j);
}

/* ---- status ---- */

static int mr_tasks_running(const mr_task *t, size_t n)
{
	int r = 0;
	for (size_t i = 0; i < n; i++)
		r += t[i].live > 0;
	return r;
}

static cJSON *mr_phase_json(const mr_task *t, size_t n, size_t done, int failed, int backups)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "total", (double)n);
	cJSON_AddNumberToObject(o, "done", (double)done);
	cJSON_AddNumberToObject(o, "running", mr_tasks_running(t, n));
	cJSON_AddNumberToObject(o, "failed_attempts", failed);
	cJSON_AddNumberToObject(o, "backups", backups);
	return o;
}

static cJSON *mr_output_json(const mr_mjob *j, int files)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "dir", j->job->output_dir);
	cJSON_AddStringToObject(o, "format", j->job->format == MR_FORMAT_JSONL ? "jsonl" : "tsv");
	if (!files)
		return o;
	cJSON *a = cJSON_AddArrayToObject(o, "files");
	char path[4200];
	for (size_t p = 0; a && p < j->nreduces; p++)
		if (mr_job_part_path(j->job, (int)p, path, sizeof path) == 0)
			cJSON_AddItemToArray(a, cJSON_CreateString(path));
	return o;
}

cJSON *mr_master_status(const mr_master *m, const mr_mjob *j, int files)
{
	(void)m;
	cJSON *o = cJSON_CreateObject();
	if (o == NULL)
		return NULL;
	cJSON_AddStringToObject(o, "id", j->id);
	cJSON_AddStringToObject(o, "name", j->job->name);
	cJSON_AddStringToObject(o, "state", mr_jstate_name(j->state));
	if (j->state == MR_JS_FAILED)
		cJSON_AddStringToObject(o, "error", j->error ? j->error : "");
	cJSON_AddNumberToObject(o, "submitted_ms", (double)j->submitted_ms);
	cJSON_AddNumberToObject(o, "started_ms", (double)j->started_ms);
	cJSON_AddNumberToObject(o, "finished_ms", (double)j->finished_ms);
	cJSON *maps = mr_phase_json(j->maps, j->nmaps, j->maps_done, j->maps_failed, j->maps_backups);
	cJSON_AddNumberToObject(maps, "reruns", j->reruns);
	cJSON_AddNumberToObject(maps, "spills", (double)j->spills);
	cJSON_AddItemToObject(o, "maps", maps);
	cJSON_AddItemToObject(o, "reduces", mr_phase_json(j->reduces, j->nreduces, j->reduces_done, j->reduces_failed,
	    j->reduces_backups));
	cJSON_AddNumberToObject(o, "records_in", (double)j->records_in);
	cJSON_AddNumberToObject(o, "bytes_in", (double)j->bytes_in);
	cJSON_AddNumberToObject(o, "records_out", (double)j->records_out);
	cJSON_AddItemToObject(o, "output", mr_output_json(j, files));
	cJSON_AddNumberToObject(o, "version", (double)j->version);
	return o;
}

/* ---- job.wait ---- */

static void mr_waiter_answer(const mr_master *m, const mr_mjob *j, mr_waiter *w)
{
	cJSON *r = node_reply_ok();
	cJSON_AddItemToObject(r, "job", mr_master_status(m, j, 1));
	node_call_reply(w->call, r);
	free(w);
}

void mr_master_touch(mr_master *m, mr_mjob *j)
{
	j->version++;
	j->dirty = 1;
	while (j->waiters) {
		mr_waiter *w = j->waiters;
		j->waiters = w->next;
		mr_waiter_answer(m, j, w);
	}
	m->kick = 1;
	pthread_cond_signal(&m->wake);
}

int mr_master_park(mr_master *m, mr_mjob *j, node_call *call, int64_t deadline_ms)
{
	(void)m;
	mr_waiter *w = calloc(1, sizeof *w);
	if (w == NULL)
		return -1;
	w->call = call;
	w->deadline_ms = deadline_ms;
	w->next = j->waiters;
	j->waiters = w;
	return 0;
}

/* all: the master is stopping; every parked call is answered. */
void mr_master_expire_waiters(mr_master *m, int64_t now_ms, int all)
{
	for (mr_mjob *j = m->jobs; j; j = j->next)
		for (mr_waiter **p = &j->waiters; *p;) {
			mr_waiter *w = *p;
			if (!all && w->deadline_ms > now_ms) {
				p = &w->next;
				continue;
			}
			*p = w->next;
			if (all) {
				node_call_error(w->call, NODE_ERR_SHUTDOWN, "the master is stopping");
				free(w);
			} else {
				mr_waiter_answer(m, j, w);
			}
		}
}

/* ---- results ---- */

static uint64_t mr_res_num(const cJSON *res, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(res, key);
	return cJSON_IsNumber(v) && v->valuedouble > 0 ? (uint64_t)v->valuedouble : 0;
}

/* The MRDIR/JOBID directory holding res's path when it is on this machine
 * (removed directly when the job ends), else NULL. */
char *mr_master_local_dir(const mr_master *m, const char *id, const cJSON *res)
{
	const char *host = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "host"));
	const char *path = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "path"));
	if (host == NULL || path == NULL || path[0] != '/' || strcmp(host, m->host) != 0)
		return NULL;
	char key[MR_JOB_ID_MAX + 3];
	snprintf(key, sizeof key, "/%s/", id);
	const char *at = strstr(path, key);
	return at ? strndup(path, (size_t)(at - path) + strlen(key) - 1) : NULL;
}

/* Where res's files live: its output server, and maybe a local directory. */
void mr_master_note_files(mr_master *m, mr_mjob *j, const cJSON *res)
{
	const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "url"));
	if (url && url[0] && mr_strs_add(&j->servers, url) != 0)
		node_warn("job %s: out of memory noting the output server %s", j->id, url);
	char *dir = mr_master_local_dir(m, j->id, res);
	if (dir && mr_strs_add(&j->local, dir) != 0)
		node_warn("job %s: out of memory noting a local directory", j->id);
	free(dir);
}

void mr_master_map_done(mr_master *m, mr_mjob *j, size_t i, cJSON *res)
{
	mr_task *t = &j->maps[i];
	if (t->res) { /* replay of a journal that holds it twice */
		mr_master_map_lost(m, j, i);
	}
	t->res = res;
	t->pending = 0;
	t->gen = ++j->map_gen;
	j->maps_done++;
	j->records_in += mr_res_num(res, "records_in");
	j->bytes_in += mr_res_num(res, "bytes_in");
	j->spills += mr_res_num(res, "spills");
	mr_master_note_files(m, j, res);
}

void mr_master_map_lost(mr_master *m, mr_mjob *j, size_t i)
{
	(void)m;
	mr_task *t = &j->maps[i];
	if (t->res == NULL)
		return;
	j->records_in -= mr_res_num(t->res, "records_in");
	j->bytes_in -= mr_res_num(t->res, "bytes_in");
	j->spills -= mr_res_num(t->res, "spills");
	cJSON_Delete(t->res);
	t->res = NULL;
	j->maps_done--;
	t->pending = t->live == 0;
	t->backed_up = 0;
}

void mr_master_reduce_done(mr_master *m, mr_mjob *j, size_t p, cJSON *res)
{
	mr_task *t = &j->reduces[p];
	if (t->res) {
		j->records_out -= mr_res_num(t->res, "records");
		cJSON_Delete(t->res);
		j->reduces_done--;
	}
	t->res = res;
	t->pending = 0;
	t->collecting = 0;
	j->reduces_done++;
	j->records_out += mr_res_num(res, "records");
	mr_master_note_files(m, j, res);
}
