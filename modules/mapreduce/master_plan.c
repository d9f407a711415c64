/* What the master's scheduler does next, decided under the lock: queued
 * jobs start in order, tasks that want an attempt get one (its number
 * journaled first), slow tasks near the end of a phase get a backup, a job
 * whose part files are all gathered gets its manifest, ended jobs are
 * cleaned and attempts nobody wants are marked for revoking. */
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "core/log.h"
#include "mapreduce/master.h"

static int mr_plan_grow(mr_plan *p)
{
	if (p->n < p->cap)
		return 0;
	size_t cap = p->cap ? p->cap * 2 : 16;
	mr_sub *ns = realloc(p->subs, cap * sizeof *ns);
	if (ns == NULL)
		return -1;
	p->subs = ns;
	p->cap = cap;
	return 0;
}

/* An attempt of task i: 0, or -1 when this round is full (or memory is
 * short): the job is looked at again soon. */
static int mr_plan_one(mr_master *m, mr_mjob *j, int reduce, size_t i, int backup, mr_plan *p, int64_t now)
{
	if (p->n >= MR_MASTER_ROUND_MAX) {
		p->soon = j->dirty = 1;
		return -1;
	}
	mr_task *t = reduce ? &j->reduces[i] : &j->maps[i];
	mr_att *a = calloc(1, sizeof *a);
	char *args = NULL;
	if (a && mr_plan_grow(p) == 0)
		args = mr_args_build(j, reduce, i, t->next_attempt);
	if (args == NULL) {
		free(a);
		node_warn("job %s: out of memory building a task; trying again", j->id);
		p->soon = j->dirty = 1;
		return -1;
	}
	*a = (mr_att){.m = m, .job = j, .reduce = reduce, .task = (int)i, .attempt = t->next_attempt++,
	    .backup = backup, .start_ms = now, .next = m->atts, .map_gen = j->map_gen};
	if (m->atts)
		m->atts->prev = a;
	m->atts = a;
	mr_log_attempt(m, j, reduce, i, a->attempt);
	if (t->live++ == 0)
		t->start_ms = now;
	t->pending = 0;
	mr_sub *s = &p->subs[p->n++];
	s->a = a;
	s->args = args;
	snprintf(s->id, sizeof s->id, "mr-%s-%c%05zu-a%d", j->id, reduce ? 'r' : 'm', i, a->attempt);
	return 0;
}

static int mr_cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
	return a < b ? -1 : a > b;
}

/* When every task of the phase is out and at most max(1, 10%) are left,
 * a task running longer than max(backup_after_ms, 2 x the median of the
 * finished ones) gets one backup attempt. */
static void mr_plan_backups(mr_master *m, mr_mjob *j, int reduce, mr_plan *p, int64_t now)
{
	mr_task *ts = reduce ? j->reduces : j->maps;
	size_t n = reduce ? j->nreduces : j->nmaps, left = 0, nd = 0;
	int64_t *durs = malloc(n * sizeof *durs);
	if (durs == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		if (ts[i].pending) {
			free(durs);
			return;
		}
		if (ts[i].res)
			durs[nd++] = ts[i].dur_ms;
		else if (!ts[i].collecting)
			left++;
	}
	size_t most = n / 10 > 1 ? n / 10 : 1;
	int64_t limit = m->backup_after_ms;
	if (nd > 0) {
		qsort(durs, nd, sizeof *durs, mr_cmp_i64);
		if (2 * durs[nd / 2] > limit)
			limit = 2 * durs[nd / 2];
	}
	free(durs);
	for (size_t i = 0; left > 0 && left <= most && i < n; i++) {
		mr_task *t = &ts[i];
		if (t->res || t->collecting || t->live == 0 || t->backed_up || now - t->start_ms <= limit)
			continue;
		if (mr_plan_one(m, j, reduce, i, 1, p, now) != 0)
			return;
		t->backed_up = 1;
		*(reduce ? &j->reduces_backups : &j->maps_backups) += 1;
		node_info("job %s: %s task %zu has run %lld ms: starting a backup", j->id, reduce ? "reduce" : "map", i,
		    (long long)(now - t->start_ms));
	}
}

static void mr_plan_manifest(mr_master *m, mr_mjob *j)
{
	mr_io *io = mr_io_new(MR_IO_MANIFEST, j->id);
	cJSON *b = cJSON_CreateObject(), *files = cJSON_CreateArray(), *recs = cJSON_CreateArray(), *bytes = cJSON_CreateArray();
	char path[4200];
	for (size_t p = 0; files && recs && bytes && p < j->nreduces; p++) {
		const cJSON *r = j->reduces[p].res;
		const cJSON *nr = cJSON_GetObjectItemCaseSensitive(r, "records"), *nb = cJSON_GetObjectItemCaseSensitive(r, "bytes");
		mr_job_part_path(j->job, (int)p, path, sizeof path);
		const char *slash = strrchr(path, '/');
		cJSON_AddItemToArray(files, cJSON_CreateString(slash ? slash + 1 : path));
		cJSON_AddItemToArray(recs, cJSON_CreateNumber(cJSON_IsNumber(nr) ? nr->valuedouble : 0));
		cJSON_AddItemToArray(bytes, cJSON_CreateNumber(cJSON_IsNumber(nb) ? nb->valuedouble : 0));
	}
	cJSON_AddStringToObject(b, "id", j->id);
	cJSON_AddStringToObject(b, "name", j->job->name);
	cJSON_AddStringToObject(b, "format", j->job->format == MR_FORMAT_JSONL ? "jsonl" : "tsv");
	cJSON_AddStringToObject(b, "sort", j->job->sort == MR_SORT_VALUE_DESC ? "value-desc" : "key");
	cJSON_AddNumberToObject(b, "partitions", (double)j->nreduces);
	cJSON_AddItemToObject(b, "files", files);
	cJSON_AddItemToObject(b, "records", recs);
	cJSON_AddItemToObject(b, "bytes", bytes);
	cJSON_AddNumberToObject(b, "finished_ms", (double)node_clock_wall_ms());
	snprintf(path, sizeof path, "%s/manifest.json", j->job->output_dir);
	if (io == NULL || b == NULL || (io->path = strdup(path)) == NULL) {
		cJSON_Delete(b);
		mr_io_free(io);
		return; /* tried again on the next round */
	}
	io->body = b;
	j->finishing = 1;
	mr_io_push(m, io);
}

static void mr_plan_job(mr_master *m, mr_mjob *j, mr_plan *p, int64_t now)
{
	int maps_left = j->maps_done < j->nmaps;
	if (!maps_left && j->state == MR_JS_MAP) {
		j->state = MR_JS_REDUCE;
		mr_log_state(m, j);
		mr_master_touch(m, j);
	}
	for (size_t i = 0; i < j->nmaps; i++)
		if (j->maps[i].pending && j->maps[i].live == 0 && !j->maps[i].res)
			mr_plan_one(m, j, 0, i, 0, p, now);
	if (!maps_left) {
		for (size_t i = 0; i < j->nreduces; i++) {
			mr_task *t = &j->reduces[i];
			if (t->pending && t->live == 0 && !t->res && !t->collecting)
				mr_plan_one(m, j, 1, i, 0, p, now);
		}
		if (j->reduces_done == j->nreduces && !j->finishing)
			mr_plan_manifest(m, j);
	}
	if (m->speculative && !mr_jstate_finished(j->state))
		mr_plan_backups(m, j, !maps_left, p, now);
}

/* Queued jobs start in submission order while fewer than max_running run. */
static void mr_plan_start_queued(mr_master *m)
{
	int running = 0;
	for (mr_mjob *j = m->jobs; j; j = j->next)
		running += j->state == MR_JS_MAP || j->state == MR_JS_REDUCE;
	while (running < m->max_running) {
		mr_mjob *first = NULL;
		for (mr_mjob *j = m->jobs; j; j = j->next)
			if (j->state == MR_JS_QUEUED && (first == NULL || j->seq < first->seq))
				first = j;
		if (first == NULL)
			return;
		first->state = MR_JS_MAP;
		first->started_ms = node_clock_wall_ms();
		mr_log_state(m, first);
		mr_master_touch(m, first);
		node_info("job %s started", first->id);
		running++;
	}
}

static void mr_plan_cleanup(mr_master *m, mr_mjob *j)
{
	j->cleanup = 0;
	if (j->servers.n == 0 && j->local.n == 0)
		return;
	mr_io *io = mr_io_new(MR_IO_CLEAN, j->id);
	int ok = io != NULL;
	for (size_t i = 0; ok && i < j->servers.n; i++)
		ok = mr_strs_add(&io->urls, j->servers.v[i]) == 0;
	for (size_t i = 0; ok && i < j->local.n; i++)
		ok = mr_strs_add(&io->dirs, j->local.v[i]) == 0;
	if (ok)
		mr_io_push(m, io);
	else
		mr_io_free(io);
}

static void mr_plan_cancels(mr_master *m, mr_plan *p)
{
	for (mr_att *a = m->atts; a; a = a->next) {
		if (!(a->cancel || a->job == NULL) || a->cancel_sent || a->f == NULL || a->finished)
			continue;
		if (p->ncancel == p->ccap) {
			size_t cap = p->ccap ? p->ccap * 2 : 16;
			mr_att **nc = realloc(p->cancels, cap * sizeof *nc);
			if (nc == NULL)
				return;
			p->cancels = nc;
			p->ccap = cap;
		}
		a->cancel_sent = 1;
		p->cancels[p->ncancel++] = a;
	}
}

void mr_plan_all(mr_master *m, mr_plan *p, int submit)
{
	int64_t now = node_clock_mono_ms();
	mr_sched_apply_all(m, p);
	mr_plan_start_queued(m);
	for (mr_mjob *j = m->jobs; j; j = j->next) {
		if (j->cleanup)
			mr_plan_cleanup(m, j);
		if (!submit || !(j->state == MR_JS_MAP || j->state == MR_JS_REDUCE))
			continue;
		/* A scan is O(tasks): a changed job at most every SCAN_MS, any
		 * job every TICK_MS for its backups. */
		int64_t since = now - j->scanned_ms;
		if (since < MR_MASTER_TICK_MS && !(j->dirty && since >= MR_MASTER_SCAN_MS)) {
			p->soon |= j->dirty;
			continue;
		}
		j->dirty = 0;
		j->scanned_ms = now;
		mr_plan_job(m, j, p, now);
	}
	mr_plan_cancels(m, p);
	mr_master_expire_waiters(m, now, 0);
}
