/* The master's scheduler thread: applies the outcomes of attempts (retries,
 * lost map outputs run again, a job's end), submits what master_plan.c
 * planned to the broker (ncl_submit, outcomes by ncl_future_on_done) and
 * revokes what is no longer wanted. It plans under the lock and talks to
 * the broker without it. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_int.h"
#include "core/clock.h"
#include "core/log.h"
#include "mapreduce/master.h"

#define MR_LOST_PREFIX "lost map output: "

static mr_task *mr_att_task(const mr_att *a)
{
	return a->reduce ? &a->job->reduces[a->task] : &a->job->maps[a->task];
}

/* ---- the outcome of an attempt ---- */

static void mr_sched_on_done(ncl_future *f, void *arg)
{
	mr_att *a = arg;
	mr_master *m = a->m;
	const char *res = ncl_future_result(f), *err = ncl_future_error(f);
	char *r = res ? strdup(res) : NULL, *e = err ? strdup(err) : NULL;
	pthread_mutex_lock(&m->lock);
	a->state = ncl_future_state(f);
	a->result = r;
	a->error = e;
	a->finished = 1;
	if (m->done_tail)
		m->done_tail->done_next = a;
	else
		m->done_head = a;
	m->done_tail = a;
	m->kick = 1;
	pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
}

/* Other attempts of a's task are not wanted once one has won. */
static void mr_sched_cancel_others(mr_master *m, const mr_att *a)
{
	for (mr_att *o = m->atts; o; o = o->next)
		if (o != a && o->job == a->job && o->reduce == a->reduce && o->task == a->task)
			o->cancel = 1;
}

void mr_sched_end_job(mr_master *m, mr_mjob *j, mr_jstate state, const char *error)
{
	j->state = state;
	free(j->error);
	j->error = error ? strdup(error) : NULL;
	j->finished_ms = node_clock_wall_ms();
	j->cleanup = 1;
	for (mr_att *a = m->atts; a; a = a->next)
		if (a->job == j)
			a->cancel = 1;
	mr_log_state(m, j);
	mr_master_touch(m, j);
}

void mr_sched_fail_job(mr_master *m, mr_mjob *j, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	node_error("job %s failed: %s", j->id, msg);
	mr_sched_end_job(m, j, MR_JS_FAILED, msg);
}

void mr_sched_task_failed(mr_master *m, mr_mjob *j, int reduce, size_t task, const char *msg)
{
	mr_task *t = reduce ? &j->reduces[task] : &j->maps[task];
	const char *phase = reduce ? "reduce" : "map";
	if (t->res || mr_jstate_finished(j->state))
		return;
	t->failures++;
	*(reduce ? &j->reduces_failed : &j->maps_failed) += 1;
	free(t->error);
	t->error = strdup(msg);
	node_warn("job %s: %s task %zu failed (%d of %d attempts): %s", j->id, phase, task, t->failures, m->max_attempts, msg);
	if (t->failures >= m->max_attempts) {
		mr_sched_fail_job(m, j, "%s task %zu failed %d times; the last error: %s", phase, task, t->failures, msg);
		return;
	}
	if (t->live == 0 && !t->collecting)
		t->pending = 1;
}

/* Whether map i still has the output a reduce attempt was given (not one
 * computed again since). */
static int mr_sched_same_output(const mr_mjob *j, size_t i, uint64_t gen)
{
	return j->maps[i].res != NULL && j->maps[i].gen <= gen;
}

/* Map i's output and every other output the attempt saw on the same
 * server are gone. */
static void mr_sched_lose(mr_master *m, mr_mjob *j, size_t i, uint64_t gen)
{
	const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j->maps[i].res, "url"));
	char *gone = url ? strdup(url) : NULL;
	for (size_t k = 0; k < j->nmaps; k++) {
		const cJSON *r = j->maps[k].res;
		const char *u = r ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "url")) : NULL;
		if (mr_sched_same_output(j, k, gen) && (k == i || (gone && u && strcmp(u, gone) == 0))) {
			mr_master_map_lost(m, j, k);
			mr_log_lost(m, j, k);
		}
	}
	free(gone);
}

/* "3,7: why" -> maps 3 and 7 (and every map whose output lives on the
 * same server) run again, then the reduce does. A loss counts once: maps
 * already running again, or done again since the attempt started, are
 * left alone. -1 when the list does not parse: an ordinary failure. */
static int mr_sched_lost(mr_master *m, mr_mjob *j, const mr_att *a, const char *list)
{
	size_t idx[64], n = 0, fresh = 0;
	const char *s = list;
	while (n < 64) {
		char *end;
		unsigned long long v = strtoull(s, &end, 10);
		if (end == s || v >= j->nmaps)
			return -1;
		fresh += mr_sched_same_output(j, (size_t)v, a->map_gen);
		idx[n++] = (size_t)v;
		if (*end != ',')
			break;
		s = end + 1;
	}
	if (fresh > 0 && ++j->reruns > m->max_attempts * MR_MASTER_LOST_FACTOR) {
		mr_sched_fail_job(m, j, "map output was lost %d times; the last: %s%s", j->reruns, MR_LOST_PREFIX, list);
		return 0;
	}
	if (fresh > 0)
		node_warn("job %s: reduce %d: %s%s; running those maps again", j->id, a->task, MR_LOST_PREFIX, list);
	for (size_t k = 0; k < n; k++)
		if (mr_sched_same_output(j, idx[k], a->map_gen))
			mr_sched_lose(m, j, idx[k], a->map_gen);
	mr_task *t = &j->reduces[a->task];
	if (t->live == 0)
		t->pending = 1;
	return 0;
}

static int mr_res_has(const cJSON *res, const char *const *keys)
{
	for (; *keys; keys++)
		if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(res, *keys)))
			return 0;
	return 1;
}

static void mr_sched_map_ok(mr_master *m, mr_mjob *j, mr_att *a, cJSON *res, int64_t now)
{
	static const char *const keys[] = {"url", "host", "path", "dir", NULL};
	mr_task *t = &j->maps[a->task];
	if (t->res || !mr_res_has(res, keys)) {
		mr_master_note_files(m, j, res);
		if (!t->res)
			mr_sched_task_failed(m, j, 0, (size_t)a->task, "the map's result lacks url, host, path or dir");
		cJSON_Delete(res);
		return;
	}
	t->dur_ms = now - a->start_ms;
	mr_master_map_done(m, j, (size_t)a->task, res);
	mr_log_map(m, j, (size_t)a->task);
	if (t->live > 0)
		mr_sched_cancel_others(m, a);
}

static void mr_sched_collect(mr_master *m, mr_mjob *j, size_t p, cJSON *res)
{
	mr_io *io = mr_io_new(MR_IO_COLLECT, j->id);
	char path[4200];
	if (io && mr_job_part_path(j->job, (int)p, path, sizeof path) == 0 && (io->path = strdup(path)) != NULL) {
		io->task = (int)p;
		io->res = res;
		j->reduces[p].collecting = 1;
		mr_io_push(m, io);
		return;
	}
	mr_io_free(io);
	cJSON_Delete(res);
	mr_sched_task_failed(m, j, 1, p, "out of memory gathering the part file");
}

static void mr_sched_reduce_ok(mr_master *m, mr_mjob *j, mr_att *a, cJSON *res, int64_t now)
{
	static const char *const keys[] = {"file", "path", "url", "host", NULL};
	mr_task *t = &j->reduces[a->task];
	mr_master_note_files(m, j, res);
	if (t->res || t->collecting || !mr_res_has(res, keys)) {
		if (!t->res && !t->collecting)
			mr_sched_task_failed(m, j, 1, (size_t)a->task, "the reduce's result lacks file, path, url or host");
		cJSON_Delete(res);
		return;
	}
	t->dur_ms = now - a->start_ms;
	if (t->live > 0)
		mr_sched_cancel_others(m, a);
	mr_sched_collect(m, j, (size_t)a->task, res);
}

static void mr_sched_failed(mr_master *m, mr_mjob *j, const mr_att *a)
{
	const char *msg = a->error ? a->error : a->state == NCL_CANCELLED ? "the task was revoked" : "the task failed";
	if (a->reduce && strncmp(msg, MR_LOST_PREFIX, strlen(MR_LOST_PREFIX)) == 0 &&
	    mr_sched_lost(m, j, a, msg + strlen(MR_LOST_PREFIX)) == 0)
		return;
	mr_sched_task_failed(m, j, a->reduce, (size_t)a->task, msg);
}

static void mr_sched_apply(mr_master *m, mr_att *a, int64_t now)
{
	mr_mjob *j = a->job;
	if (j == NULL)
		return;
	mr_task *t = mr_att_task(a);
	t->live--;
	cJSON *res = a->state == NCL_SUCCEEDED ? cJSON_Parse(a->result) : NULL;
	if (mr_jstate_finished(j->state)) { /* late: only its files matter */
		if (cJSON_IsObject(res))
			mr_io_clean_result(m, j->id, res);
		cJSON_Delete(res);
		return;
	}
	if (a->state == NCL_SUCCEEDED && !cJSON_IsObject(res)) {
		cJSON_Delete(res);
		mr_sched_task_failed(m, j, a->reduce, (size_t)a->task, "the worker's result is not a JSON object");
	} else if (res) {
		(a->reduce ? mr_sched_reduce_ok : mr_sched_map_ok)(m, j, a, res, now);
	} else if (!(a->cancel_sent && a->state == NCL_CANCELLED)) {
		mr_sched_failed(m, j, a);
	} else if (t->live == 0 && !t->res && !t->collecting) {
		t->pending = 1; /* a lost race was revoked, then the winner's output was lost */
	}
	if (!mr_jstate_finished(j->state))
		mr_master_touch(m, j);
}

static void mr_att_unlink(mr_master *m, mr_att *a)
{
	if (a->prev)
		a->prev->next = a->next;
	else if (m->atts == a)
		m->atts = a->next;
	if (a->next)
		a->next->prev = a->prev;
	a->next = a->prev = NULL;
}

void mr_sched_apply_all(mr_master *m, mr_plan *p)
{
	int64_t now = node_clock_mono_ms();
	while (m->done_head) {
		mr_att *a = m->done_head;
		m->done_head = a->done_next;
		if (m->done_head == NULL)
			m->done_tail = NULL;
		mr_att_unlink(m, a);
		mr_sched_apply(m, a, now);
		a->next = p->trash;
		p->trash = a;
	}
}

static void mr_att_free(mr_att *a)
{
	if (a->f)
		ncl_future_free(a->f);
	free(a->result);
	free(a->error);
	free(a);
}

/* ---- talking to the broker ---- */

/* A submission that did not happen: the task wants another attempt. */
static void mr_sched_unplan(mr_master *m, mr_att *a)
{
	mr_att_unlink(m, a);
	if (a->job) {
		mr_task *t = mr_att_task(a);
		t->live--;
		if (a->backup) {
			t->backed_up = 0;
			*(a->reduce ? &a->job->reduces_backups : &a->job->maps_backups) -= 1;
		} else if (!t->res && !t->collecting) {
			t->pending = 1;
		}
	}
	free(a);
}

int mr_sched_open(mr_master *m, node_err *err)
{
	ncl_err e = {0};
	if (ncl_open_conf(&m->conn, m->broker_url, &m->ctx->conf, &e) != 0) {
		m->conn = NULL;
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "the broker: %s", e.msg);
	}
	node_info("tasks go to the broker %s, queue %s", ncl_url(m->conn), m->queue);
	return 0;
}

static int mr_sched_connect(mr_master *m, int quiet)
{
	if (m->conn)
		return 0;
	ncl_err e = {0};
	if (ncl_open_conf(&m->conn, m->broker_url, &m->ctx->conf, &e) != 0) {
		if (!quiet)
			node_warn("cannot reach the broker: %s; trying again", e.msg);
		m->conn = NULL;
		return -1;
	}
	node_info("tasks go to the broker %s, queue %s", ncl_url(m->conn), m->queue);
	return 0;
}

/* Submits the plan in order; returns how many went out. A transport error
 * stops it (the broker is away); a refusal fails that attempt. */
static size_t mr_sched_submit(mr_master *m, mr_plan *p, int quiet)
{
	node_err je = {0};
	if (mr_log_sync(m, &je) != 0) {
		node_error("journal: %s; not submitting until it works", je.msg);
		return 0;
	}
	if (mr_sched_connect(m, quiet) != 0)
		return 0;
	size_t k = 0;
	for (; k < p->n; k++) {
		mr_sub *s = &p->subs[k];
		ncl_opts o = {.id = s->id, .queue = m->queue};
		ncl_future *f = NULL;
		ncl_err e = {0};
		int rc = ncl_submit(m->conn, s->a->reduce ? "mr.reduce" : "mr.map", s->args, &o, m->timeout_ms, &f, &e);
		if (rc == NCL_EREMOTE || rc == NCL_ELIMIT || rc == NCL_EINVAL) {
			pthread_mutex_lock(&m->lock);
			mr_att *a = s->a;
			if (a->job)
				mr_sched_task_failed(m, a->job, a->reduce, (size_t)a->task, e.msg);
			mr_sched_unplan(m, a);
			pthread_mutex_unlock(&m->lock);
			s->a = NULL;
			continue;
		}
		if (rc != 0) {
			if (!quiet)
				node_warn("cannot submit to the broker %s: %s; trying again", ncl_url(m->conn), e.msg);
			break;
		}
		s->a->f = f;
		ncl_future_on_done(f, mr_sched_on_done, s->a);
		s->a = NULL;
	}
	return k;
}

static void mr_plan_free(mr_master *m, mr_plan *p)
{
	int unplanned = 0;
	for (size_t k = 0; k < p->n; k++) {
		if (p->subs[k].a) {
			if (!unplanned++)
				pthread_mutex_lock(&m->lock);
			mr_sched_unplan(m, p->subs[k].a);
		}
		free(p->subs[k].args);
	}
	if (unplanned)
		pthread_mutex_unlock(&m->lock);
	while (p->trash) {
		mr_att *a = p->trash;
		p->trash = a->next;
		mr_att_free(a);
	}
	free(p->subs);
	free(p->cancels);
	memset(p, 0, sizeof *p);
}

static void mr_sched_cancel(mr_master *m, mr_plan *p)
{
	for (size_t k = 0; k < p->ncancel && m->conn; k++) {
		ncl_err e = {0};
		ncl_future_cancel(p->cancels[k]->f, m->timeout_ms, &e);
	}
}

static void *mr_sched_main(void *arg)
{
	mr_master *m = arg;
	node_log_set_role("mapreduce");
	int64_t retry_at = 0, backoff = 0;
	pthread_mutex_lock(&m->lock);
	while (!m->stopping) {
		mr_plan p = {0};
		int64_t now = node_clock_mono_ms();
		m->kick = 0;
		mr_plan_all(m, &p, now >= retry_at);
		if (p.n == 0 && p.ncancel == 0 && p.trash == NULL) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += (p.soon ? MR_MASTER_SCAN_MS : MR_MASTER_TICK_MS) * 1000000L;
			ts.tv_sec += ts.tv_nsec / 1000000000L;
			ts.tv_nsec %= 1000000000L;
			if (!m->kick && !m->stopping)
				pthread_cond_timedwait(&m->wake, &m->lock, &ts);
			continue;
		}
		pthread_mutex_unlock(&m->lock);
		if (p.n && mr_sched_submit(m, &p, backoff > MR_MASTER_RETRY_MIN_MS) < p.n) {
			backoff = backoff ? (backoff * 2 > MR_MASTER_RETRY_MAX_MS ? MR_MASTER_RETRY_MAX_MS : backoff * 2)
			                  : MR_MASTER_RETRY_MIN_MS;
			retry_at = node_clock_mono_ms() + backoff;
		} else if (p.n) {
			backoff = 0;
		}
		mr_sched_cancel(m, &p);
		mr_plan_free(m, &p);
		pthread_mutex_lock(&m->lock);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

int mr_sched_start(mr_master *m, node_err *err)
{
	if (pthread_create(&m->sched_thread, NULL, mr_sched_main, m) != 0)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "cannot start the scheduler thread");
	m->sched_started = 1;
	return 0;
}

/* After the thread: closing the connection finishes every future (their
 * callbacks queue them), then every attempt goes. */
void mr_sched_stop(mr_master *m)
{
	pthread_mutex_lock(&m->lock);
	m->stopping = 1;
	pthread_cond_broadcast(&m->wake);
	pthread_mutex_unlock(&m->lock);
	if (m->sched_started)
		pthread_join(m->sched_thread, NULL);
	m->sched_started = 0;
	if (m->conn)
		ncl_close(m->conn);
	m->conn = NULL;
	pthread_mutex_lock(&m->lock);
	mr_att *list = m->atts;
	m->atts = NULL;
	m->done_head = m->done_tail = NULL;
	pthread_mutex_unlock(&m->lock);
	while (list) {
		mr_att *a = list;
		list = a->next;
		mr_att_free(a);
	}
}
