/* The master's journal (DATA_DIR/mapreduce): one JSON object per record,
 * each idempotent, so replaying a snapshot and the segments after it in
 * any overlap gives the same table. Records ("t" says which):
 *   job    {id, job: NORMALISED_JOB, sizes, submitted_ms}
 *   state  {id, state, error, started_ms, finished_ms}
 *   att    {id, r: 0 map | 1 reduce, i, a}   attempt a is about to be submitted
 *   map    {id, i, res}                       map i is done
 *   lost   {id, i}                            map i's output is gone
 *   red    {id, p, res}                       part file p is in output.dir
 *   purge  {id} */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "mapreduce/master.h"

/* ---- writing ---- */

static int mr_log_put_err(mr_master *m, node_journal *snap, cJSON *rec, node_err *errp)
{
	node_err err = {0};
	char *text = rec ? cJSON_PrintUnformatted(rec) : NULL;
	int rc = text == NULL ? node_err_set(&err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory")
	         : snap      ? node_journal_snapshot_put(snap, text, strlen(text), &err)
	                     : node_journal_append(m->journal, text, strlen(text), &err);
	if (rc != 0)
		node_error("journal: %s", err.msg);
	if (rc != 0 && errp)
		*errp = err;
	else if (!snap)
		m->records++;
	free(text);
	cJSON_Delete(rec);
	return rc;
}

static int mr_log_put(mr_master *m, node_journal *snap, cJSON *rec)
{
	return mr_log_put_err(m, snap, rec, NULL);
}

static cJSON *mr_rec(const char *type, const char *id)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "t", type);
	cJSON_AddStringToObject(r, "id", id);
	return r;
}

static cJSON *mr_rec_job(const mr_mjob *j)
{
	cJSON *r = mr_rec("job", j->id);
	cJSON_AddItemToObject(r, "job", cJSON_Duplicate(j->norm, 1));
	cJSON *s = cJSON_AddArrayToObject(r, "sizes");
	for (size_t i = 0; s && i < j->job->n_inputs; i++)
		cJSON_AddItemToArray(s, cJSON_CreateNumber((double)j->sizes[i]));
	cJSON_AddNumberToObject(r, "submitted_ms", (double)j->submitted_ms);
	return r;
}

static cJSON *mr_rec_state(const mr_mjob *j)
{
	cJSON *r = mr_rec("state", j->id);
	cJSON_AddStringToObject(r, "state", mr_jstate_name(j->state));
	if (j->error)
		cJSON_AddStringToObject(r, "error", j->error);
	cJSON_AddNumberToObject(r, "started_ms", (double)j->started_ms);
	cJSON_AddNumberToObject(r, "finished_ms", (double)j->finished_ms);
	return r;
}

static cJSON *mr_rec_att(const mr_mjob *j, int reduce, size_t task, int attempt)
{
	cJSON *r = mr_rec("att", j->id);
	cJSON_AddNumberToObject(r, "r", reduce);
	cJSON_AddNumberToObject(r, "i", (double)task);
	cJSON_AddNumberToObject(r, "a", attempt);
	return r;
}

static cJSON *mr_rec_done(const mr_mjob *j, int reduce, size_t i)
{
	cJSON *r = mr_rec(reduce ? "red" : "map", j->id);
	cJSON_AddNumberToObject(r, reduce ? "p" : "i", (double)i);
	cJSON_AddItemToObject(r, "res", cJSON_Duplicate(reduce ? j->reduces[i].res : j->maps[i].res, 1));
	return r;
}

int mr_log_job(mr_master *m, const mr_mjob *j, node_err *err)
{
	return mr_log_put_err(m, NULL, mr_rec_job(j), err);
}

void mr_log_state(mr_master *m, const mr_mjob *j)
{
	mr_log_put(m, NULL, mr_rec_state(j));
}

void mr_log_attempt(mr_master *m, const mr_mjob *j, int reduce, size_t task, int attempt)
{
	mr_log_put(m, NULL, mr_rec_att(j, reduce, task, attempt));
}

void mr_log_map(mr_master *m, const mr_mjob *j, size_t i)
{
	mr_log_put(m, NULL, mr_rec_done(j, 0, i));
}

void mr_log_lost(mr_master *m, const mr_mjob *j, size_t i)
{
	cJSON *r = mr_rec("lost", j->id);
	cJSON_AddNumberToObject(r, "i", (double)i);
	mr_log_put(m, NULL, r);
}

void mr_log_reduce(mr_master *m, const mr_mjob *j, size_t p)
{
	mr_log_put(m, NULL, mr_rec_done(j, 1, p));
}

void mr_log_purge(mr_master *m, const char *id)
{
	mr_log_put(m, NULL, mr_rec("purge", id));
}

typedef struct mr_sync {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done, rc;
	node_err err;
} mr_sync;

static void mr_log_synced(int rc, const node_err *err, void *arg)
{
	mr_sync *s = arg;
	pthread_mutex_lock(&s->lock);
	s->rc = rc;
	if (rc != 0 && err)
		s->err = *err;
	s->done = 1;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

int mr_log_sync(mr_master *m, node_err *err)
{
	mr_sync s = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	node_journal_sync(m->journal, mr_log_synced, &s);
	pthread_mutex_lock(&s.lock);
	while (!s.done)
		pthread_cond_wait(&s.cond, &s.lock);
	pthread_mutex_unlock(&s.lock);
	if (s.rc != 0 && err)
		*err = s.err;
	return s.rc;
}

/* ---- snapshots ---- */

static int mr_snap_job(mr_master *m, node_journal *snap, const mr_mjob *j)
{
	int rc = mr_log_put(m, snap, mr_rec_job(j));
	if (rc == 0)
		rc = mr_log_put(m, snap, mr_rec_state(j));
	for (int r = 0; r < 2; r++) {
		const mr_task *ts = r ? j->reduces : j->maps;
		size_t n = r ? j->nreduces : j->nmaps;
		for (size_t i = 0; rc == 0 && i < n; i++) {
			if (ts[i].next_attempt > 1)
				rc = mr_log_put(m, snap, mr_rec_att(j, r, i, ts[i].next_attempt - 1));
			if (rc == 0 && ts[i].res)
				rc = mr_log_put(m, snap, mr_rec_done(j, r, i));
		}
	}
	return rc;
}

/* Runs on the journal's writer thread; oldest job first, so a replay
 * numbers them in the order they came. */
static int mr_log_snapshot(node_journal *snap, void *arg)
{
	mr_master *m = arg;
	pthread_mutex_lock(&m->lock);
	size_t n = m->njobs, k = 0;
	const mr_mjob **v = calloc(n ? n : 1, sizeof *v);
	for (const mr_mjob *j = m->jobs; v && j; j = j->next)
		v[k++] = j;
	int rc = v ? 0 : -1;
	while (rc == 0 && k > 0)
		rc = mr_snap_job(m, snap, v[--k]);
	free(v);
	m->compacting = 0;
	pthread_mutex_unlock(&m->lock);
	return rc;
}

void mr_log_maybe_compact(mr_master *m)
{
	uint64_t live = 0;
	for (const mr_mjob *j = m->jobs; j; j = j->next)
		live += 2 + 2 * (uint64_t)(j->nmaps + j->nreduces);
	if (m->compacting || m->records < MR_MASTER_COMPACT_MIN || m->records < 4 * live)
		return;
	m->compacting = 1;
	node_info("journal: %llu records since the last snapshot for %zu jobs: compacting", (unsigned long long)m->records,
	    m->njobs);
	m->records = 0;
	node_journal_compact(m->journal, mr_log_snapshot, m);
}

/* ---- replay ---- */

static double mr_num(const cJSON *r, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, key);
	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

static int mr_replay_job(mr_master *m, const cJSON *r, const char *id)
{
	if (mr_master_find(m, id))
		return 0;
	mr_job *job = NULL;
	node_err err = {0};
	const cJSON *doc = cJSON_GetObjectItemCaseSensitive(r, "job");
	const cJSON *sz = cJSON_GetObjectItemCaseSensitive(r, "sizes");
	if (mr_job_from_json(doc, &job, &err) != 0) {
		node_error("journal: job %s cannot be read back (%s); skipped", id, err.msg);
		return 0;
	}
	int64_t *sizes = calloc(job->n_inputs ? job->n_inputs : 1, sizeof *sizes);
	cJSON *norm = mr_job_to_json(job);
	for (size_t i = 0; sizes && i < job->n_inputs; i++) {
		const cJSON *v = cJSON_GetArrayItem(sz, (int)i);
		sizes[i] = cJSON_IsNumber(v) ? (int64_t)v->valuedouble : -1;
	}
	if (sizes == NULL || norm == NULL) {
		mr_job_free(job);
		cJSON_Delete(norm);
		free(sizes);
		return -1;
	}
	mr_mjob *j;
	if (mr_master_job_new(m, id, job, norm, sizes, (int64_t)mr_num(r, "submitted_ms"), &j, &err) != 0) {
		node_error("journal: job %s: %s; skipped", id, err.msg);
		return 0;
	}
	mr_master_add(m, j);
	return 0;
}

static void mr_replay_state(mr_mjob *j, const cJSON *r)
{
	mr_jstate st;
	if (mr_jstate_parse(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "state")), &st) != 0)
		return;
	j->state = st;
	const char *e = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "error"));
	free(j->error);
	j->error = e ? strdup(e) : NULL;
	j->started_ms = (int64_t)mr_num(r, "started_ms");
	j->finished_ms = (int64_t)mr_num(r, "finished_ms");
}

/* A task record: t, i or p within bounds; the result, duplicated. */
static void mr_replay_task(mr_master *m, mr_mjob *j, const char *t, const cJSON *r)
{
	int reduce = strcmp(t, "red") == 0 || (strcmp(t, "att") == 0 && mr_num(r, "r") == 1);
	double i = mr_num(r, reduce && strcmp(t, "att") != 0 ? "p" : "i");
	if (i < 0 || i >= (double)(reduce ? j->nreduces : j->nmaps))
		return;
	size_t k = (size_t)i;
	mr_task *task = reduce ? &j->reduces[k] : &j->maps[k];
	if (strcmp(t, "att") == 0) {
		int a = (int)mr_num(r, "a");
		if (a >= task->next_attempt)
			task->next_attempt = a + 1;
	} else if (strcmp(t, "lost") == 0) {
		mr_master_map_lost(m, j, k);
	} else {
		cJSON *res = cJSON_Duplicate(cJSON_GetObjectItemCaseSensitive(r, "res"), 1);
		if (!cJSON_IsObject(res)) {
			cJSON_Delete(res);
			return;
		}
		if (reduce)
			mr_master_reduce_done(m, j, k, res);
		else
			mr_master_map_done(m, j, k, res);
	}
}

static int mr_replay(const void *rec, size_t len, void *arg)
{
	mr_master *m = arg;
	cJSON *r = cJSON_ParseWithLength(rec, len);
	const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "t"));
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "id"));
	int rc = 0;
	if (t == NULL || id == NULL) {
		node_warn("journal: a record that is not a master record; skipped");
	} else if (strcmp(t, "job") == 0) {
		rc = mr_replay_job(m, r, id);
	} else {
		mr_mjob *j = mr_master_find(m, id);
		if (j && strcmp(t, "state") == 0)
			mr_replay_state(j, r);
		else if (j && strcmp(t, "purge") == 0)
			mr_master_forget(m, j);
		else if (j)
			mr_replay_task(m, j, t, r);
	}
	cJSON_Delete(r);
	return rc;
}

int mr_log_open(mr_master *m, node_err *err)
{
	char dir[4096];
	int rc = node_conf_data_dir(&m->ctx->conf, "mapreduce", dir, sizeof dir, err);
	if (rc != 0)
		return rc;
	node_journal_cfg jc = {.dir = dir, .fsync = NODE_FSYNC_BATCH, .batch_ms = 5, .segment_bytes = 16u << 20};
	if ((rc = node_journal_open(&m->journal, &jc, mr_replay, m, err)) != 0)
		return rc;
	node_journal_stats js;
	node_journal_stats_get(m->journal, &js);
	size_t running = 0;
	for (const mr_mjob *j = m->jobs; j; j = j->next)
		running += !mr_jstate_finished(j->state);
	node_info("journal %s: %zu jobs (%zu to resume) from %llu records", dir, m->njobs, running,
	    (unsigned long long)js.recovered);
	if (js.recovered > 0) { /* start from what is live */
		m->compacting = 1;
		node_journal_compact(m->journal, mr_log_snapshot, m);
	}
	return 0;
}

void mr_log_close(mr_master *m)
{
	node_journal_close(m->journal);
	m->journal = NULL;
}
