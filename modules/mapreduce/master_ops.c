/* The master's protocol (node-protocol(7), MAPREDUCE MASTER): job.submit,
 * status, wait, list, kill, purge and read. Each answers from the job
 * table under the lock; only submit, purge and read touch files (a stat,
 * a mkdir, an unlink, one bounded read), never the network. */
#include <errno.h>
#include <fcntl.h>
#include <mbedtls/base64.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/file.h"
#include "core/log.h"
#include "core/rand.h"
#include "mapreduce/master.h"

static int mr_req_id(node_call *c, const cJSON *req, const char **out)
{
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "id"));
	if (id == NULL || !mr_job_id_ok(id)) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "id: expected a job id (a string of A-Z a-z 0-9 . _ -)");
		return -1;
	}
	*out = id;
	return 0;
}

/* An optional integer field within [min, max]; def when absent. */
static int mr_req_int(node_call *c, const cJSON *req, const char *key, double min, double max, double def, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, key);
	*out = def;
	if (v == NULL)
		return 0;
	if (!cJSON_IsNumber(v) || v->valuedouble < min || v->valuedouble > max || v->valuedouble != (double)(int64_t)v->valuedouble) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "%s: expected an integer from %.0f to %.0f", key, min, max);
		return -1;
	}
	*out = v->valuedouble;
	return 0;
}

/* The job named by the request, under the lock; NULL (answered) if none. */
static mr_mjob *mr_req_job(mr_master *m, node_call *c, const cJSON *req)
{
	const char *id;
	if (mr_req_id(c, req, &id) != 0)
		return NULL;
	mr_mjob *j = mr_master_find(m, id);
	if (j == NULL)
		node_call_error(c, NODE_ERR_NOT_FOUND, "no job %s", id);
	return j;
}

static void mr_reply_status(node_call *c, const mr_master *m, const mr_mjob *j)
{
	cJSON *r = node_reply_ok();
	cJSON_AddItemToObject(r, "job", mr_master_status(m, j, 1));
	node_call_reply(c, r);
}

/* ---- job.submit ---- */

/* "job:ID" inputs become the earlier job's part files, in order. */
static int mr_resolve_one(mr_master *m, size_t idx, const char *id, mr_input **v, size_t *n, size_t *cap, node_err *err)
{
	mr_mjob *e = mr_master_find(m, id);
	if (e == NULL)
		return node_err_set(err, NODE_EINVAL, MR_ERR_INVALID, "inputs[%zu]: no job %s", idx, id);
	if (e->state != MR_JS_DONE)
		return node_err_set(err, NODE_EINVAL, MR_ERR_INVALID, "inputs[%zu]: job %s is %s, not done", idx, id,
		    mr_jstate_name(e->state));
	if (e->job->format != MR_FORMAT_TSV)
		return node_err_set(err, NODE_EINVAL, MR_ERR_INVALID,
		    "inputs[%zu]: job %s wrote JSON lines; only TSV output can be read by another job", idx, id);
	for (size_t p = 0; p < e->nreduces; p++) {
		char path[4200];
		if (mr_job_part_path(e->job, (int)p, path, sizeof path) != 0)
			return node_err_set(err, NODE_EINVAL, MR_ERR_INVALID, "inputs[%zu]: job %s: path too long", idx, id);
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 8;
			mr_input *nv = realloc(*v, *cap * sizeof *nv);
			if (nv == NULL)
				return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
			*v = nv;
		}
		if (((*v)[*n].value = strdup(path)) == NULL)
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		(*v)[(*n)++].kind = MR_IN_FILE;
	}
	return 0;
}

static int mr_resolve_inputs(mr_master *m, mr_job *job, node_err *err)
{
	mr_input *v = NULL;
	size_t n = 0, cap = 0;
	int rc = 0;
	for (size_t i = 0; rc == 0 && i < job->n_inputs; i++) {
		mr_input *in = &job->inputs[i];
		if (in->kind == MR_IN_JOB) {
			rc = mr_resolve_one(m, i, in->value, &v, &n, &cap, err);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 8;
			mr_input *nv = realloc(v, cap * sizeof *nv);
			if (nv == NULL) {
				rc = node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
				break;
			}
			v = nv;
		}
		v[n++] = *in;
		in->value = NULL; /* moved */
	}
	if (rc == 0 && n > MR_JOB_MAX_INPUTS)
		rc = node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "more than %d inputs", MR_JOB_MAX_INPUTS);
	/* The job keeps whichever array is whole; the other is freed. */
	mr_input *old = job->inputs;
	size_t nold = job->n_inputs;
	if (rc == 0) {
		job->inputs = v, job->n_inputs = n;
		v = old, n = nold;
	}
	for (size_t i = 0; i < n; i++)
		free(v[i].value);
	free(v);
	return rc;
}

/* Files must be readable regular files here: the master cuts them. */
static int mr_input_sizes(const mr_job *job, int64_t **out, node_err *err)
{
	int64_t *s = calloc(job->n_inputs ? job->n_inputs : 1, sizeof *s);
	if (s == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	for (size_t i = 0; i < job->n_inputs; i++) {
		s[i] = -1;
		if (job->inputs[i].kind != MR_IN_FILE)
			continue;
		const char *path = job->inputs[i].value;
		struct stat st;
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		int rc = fd < 0 ? -1 : fstat(fd, &st);
		int e = errno;
		if (fd >= 0)
			close(fd);
		if (rc != 0 || !S_ISREG(st.st_mode)) {
			free(s);
			return node_err_set(err, NODE_EINVAL, MR_ERR_INVALID, "inputs[%zu]: cannot read %s: %s", i, path,
			    rc != 0 ? strerror(e) : "not a regular file");
		}
		s[i] = (int64_t)st.st_size;
	}
	*out = s;
	return 0;
}

static int mr_output_ready(const mr_job *job, node_err *err)
{
	node_err e = {0};
	if (node_file_mkdirs(job->output_dir, &e) != 0)
		return node_err_set(err, NODE_EINVAL, MR_ERR_INVALID, "output.dir: %s", e.msg);
	if (access(job->output_dir, W_OK | X_OK) != 0)
		return node_err_set(err, NODE_EINVAL, MR_ERR_INVALID, "output.dir: cannot write %s: %s", job->output_dir,
		    strerror(errno));
	return 0;
}

/* NAME (first 40 characters) - UTC YYYYMMDD-HHMMSS - 4 hex digits. */
static void mr_new_id(const mr_job *job, char *out, size_t n)
{
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	char when[32];
	strftime(when, sizeof when, "%Y%m%d-%H%M%S", &tm);
	unsigned char r[2] = {0};
	node_err e = {0};
	if (node_rand_bytes(r, sizeof r, &e) != 0) {
		r[0] = (unsigned char)(node_clock_mono_ms() & 0xff);
		r[1] = (unsigned char)(getpid() & 0xff);
	}
	snprintf(out, n, "%.*s-%.15s-%02x%02x", MR_MASTER_ID_NAME, job->name, when, r[0], r[1]);
}

/* Under the lock: limits, ids, the table and the journal. */
static int mr_submit_locked(mr_master *m, mr_job *job, int64_t *sizes, char *id, size_t idn, node_err *err)
{
	if (m->njobs >= (size_t)m->max_jobs) {
		mr_job_free(job);
		free(sizes);
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "the master keeps %d jobs already (max_jobs): purge some",
		    m->max_jobs);
	}
	for (int tries = 0; tries < 100; tries++) {
		mr_new_id(job, id, idn);
		if (mr_master_find(m, id) == NULL)
			break;
	}
	cJSON *norm = mr_job_to_json(job);
	if (norm == NULL) {
		mr_job_free(job);
		free(sizes);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	mr_mjob *j;
	int rc = mr_master_job_new(m, id, job, norm, sizes, node_clock_wall_ms(), &j, err);
	if (rc != 0)
		return rc;
	mr_master_add(m, j);
	if ((rc = mr_log_job(m, j, err)) != 0) {
		mr_master_forget(m, j);
		return rc;
	}
	mr_master_touch(m, j);
	node_info("job %s submitted: %zu map%s, %zu reduce%s", j->id, j->nmaps, j->nmaps == 1 ? "" : "s", j->nreduces,
	    j->nreduces == 1 ? "" : "s");
	return 0;
}

static void mr_op_submit(node_call *c, const cJSON *req, void *arg)
{
	mr_master *m = arg;
	const cJSON *doc = cJSON_GetObjectItemCaseSensitive(req, "job");
	if (!cJSON_IsObject(doc)) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "job: expected a normalised job (an object)");
		return;
	}
	mr_job *job = NULL;
	int64_t *sizes = NULL;
	node_err err = {0};
	int rc = mr_job_from_json(doc, &job, &err);
	if (rc != 0)
		snprintf(err.code, sizeof err.code, "%s", rc == NODE_EINVAL ? MR_ERR_INVALID : NODE_ERR_INTERNAL);
	if (rc == 0) {
		pthread_mutex_lock(&m->lock);
		rc = mr_resolve_inputs(m, job, &err);
		pthread_mutex_unlock(&m->lock);
	}
	if (rc == 0)
		rc = mr_input_sizes(job, &sizes, &err);
	if (rc == 0)
		rc = mr_output_ready(job, &err);
	char id[MR_JOB_ID_MAX + 1];
	if (rc == 0) {
		pthread_mutex_lock(&m->lock);
		rc = mr_submit_locked(m, job, sizes, id, sizeof id, &err);
		pthread_mutex_unlock(&m->lock);
		job = NULL, sizes = NULL; /* taken */
	}
	mr_job_free(job);
	free(sizes);
	if (rc != 0) {
		node_call_reply(c, node_reply_from_err(&err));
		return;
	}
	cJSON *r = node_reply_ok();
	cJSON_AddStringToObject(r, "id", id);
	node_call_reply(c, r);
}

/* ---- status, wait, list ---- */

static void mr_op_status(node_call *c, const cJSON *req, void *arg)
{
	mr_master *m = arg;
	pthread_mutex_lock(&m->lock);
	mr_mjob *j = mr_req_job(m, c, req);
	if (j)
		mr_reply_status(c, m, j);
	pthread_mutex_unlock(&m->lock);
}

static void mr_op_wait(node_call *c, const cJSON *req, void *arg)
{
	mr_master *m = arg;
	double since, timeout;
	if (mr_req_int(c, req, "since", 0, 9007199254740991.0, 0, &since) != 0 ||
	    mr_req_int(c, req, "timeout_ms", 0, 9007199254740991.0, MR_MASTER_WAIT_MAX_MS, &timeout) != 0)
		return;
	if (timeout > MR_MASTER_WAIT_MAX_MS)
		timeout = MR_MASTER_WAIT_MAX_MS;
	pthread_mutex_lock(&m->lock);
	mr_mjob *j = mr_req_job(m, c, req);
	if (j && ((double)j->version > since || mr_jstate_finished(j->state) || timeout == 0 || m->stopping ||
	             mr_master_park(m, j, c, node_clock_mono_ms() + (int64_t)timeout) != 0))
		mr_reply_status(c, m, j);
	pthread_mutex_unlock(&m->lock);
}

static void mr_op_list(node_call *c, const cJSON *req, void *arg)
{
	(void)req;
	mr_master *m = arg;
	cJSON *r = node_reply_ok();
	cJSON *a = cJSON_AddArrayToObject(r, "jobs");
	pthread_mutex_lock(&m->lock);
	for (mr_mjob *j = m->jobs; j && a; j = j->next)
		cJSON_AddItemToArray(a, mr_master_status(m, j, 0));
	pthread_mutex_unlock(&m->lock);
	node_call_reply(c, r);
}

/* ---- kill, purge ---- */

static void mr_op_kill(node_call *c, const cJSON *req, void *arg)
{
	mr_master *m = arg;
	pthread_mutex_lock(&m->lock);
	mr_mjob *j = mr_req_job(m, c, req);
	if (j && mr_jstate_finished(j->state)) {
		node_call_error(c, MR_ERR_FINISHED, "job %s is %s already", j->id, mr_jstate_name(j->state));
	} else if (j) {
		mr_sched_end_job(m, j, MR_JS_KILLED, NULL);
		node_info("job %s killed", j->id);
		mr_reply_status(c, m, j);
	}
	pthread_mutex_unlock(&m->lock);
}

/* The part files and the manifest, never anything else of output.dir. */
static int mr_remove_outputs(const mr_mjob *j)
{
	int n = 0;
	char path[4200], tmp[4300];
	for (size_t p = 0; p <= j->nreduces; p++) {
		if (p < j->nreduces) {
			if (mr_job_part_path(j->job, (int)p, path, sizeof path) != 0)
				continue;
		} else {
			snprintf(path, sizeof path, "%s/manifest.json", j->job->output_dir);
		}
		n += unlink(path) == 0;
		snprintf(tmp, sizeof tmp, "%s.tmp", path);
		unlink(tmp);
	}
	return n;
}

static void mr_op_purge(node_call *c, const cJSON *req, void *arg)
{
	mr_master *m = arg;
	pthread_mutex_lock(&m->lock);
	mr_mjob *j = mr_req_job(m, c, req);
	if (j && !mr_jstate_finished(j->state)) {
		node_call_error(c, MR_ERR_RUNNING, "job %s is %s: kill it first", j->id, mr_jstate_name(j->state));
	} else if (j) {
		int n = mr_remove_outputs(j);
		mr_log_purge(m, j->id);
		node_info("job %s purged: %d file%s removed", j->id, n, n == 1 ? "" : "s");
		mr_master_forget(m, j);
		cJSON *r = node_reply_ok();
		cJSON_AddNumberToObject(r, "removed", n);
		node_call_reply(c, r);
	}
	pthread_mutex_unlock(&m->lock);
}

/* ---- job.read ---- */

static int mr_read_part(const char *path, uint64_t off, size_t max, cJSON *r, node_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return node_err_set(err, NODE_ENOTFOUND, NODE_ERR_NOT_FOUND, "cannot read %s: %s", path, strerror(e));
	}
	uint64_t size = (uint64_t)st.st_size;
	size_t want = off >= size ? 0 : size - off < max ? (size_t)(size - off) : max;
	unsigned char *buf = malloc(want ? want : 1);
	size_t b64n = 4 * ((want + 2) / 3) + 1, olen = 0;
	unsigned char *b64 = malloc(b64n);
	ssize_t got = buf && b64 ? pread(fd, buf, want, (off_t)off) : -1;
	int rc = 0;
	if (got < 0 || (size_t)got != want)
		rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot read %s: %s", path, got < 0 ? strerror(errno) : "short read");
	else if (mbedtls_base64_encode(b64, b64n, &olen, buf, want) != 0)
		rc = node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "base64 failed");
	close(fd);
	if (rc == 0) {
		b64[olen] = 0;
		cJSON_AddStringToObject(r, "data", (const char *)b64);
		cJSON_AddNumberToObject(r, "size", (double)size);
		cJSON_AddBoolToObject(r, "eof", off + want >= size);
	}
	free(buf);
	free(b64);
	return rc;
}

static void mr_op_read(node_call *c, const cJSON *req, void *arg)
{
	mr_master *m = arg;
	double file, off, max;
	if (mr_req_int(c, req, "file", 0, MR_JOB_PARTITIONS_MAX - 1, 0, &file) != 0 ||
	    mr_req_int(c, req, "offset", 0, 9007199254740991.0, 0, &off) != 0 ||
	    mr_req_int(c, req, "max", 1, 9007199254740991.0, (double)m->read_max, &max) != 0)
		return;
	char path[4200] = "";
	pthread_mutex_lock(&m->lock);
	mr_mjob *j = mr_req_job(m, c, req);
	if (j && (size_t)file >= j->nreduces)
		node_call_error(c, NODE_ERR_BAD_ARGS, "file: job %s has %zu part files", j->id, j->nreduces);
	else if (j && !mr_jstate_finished(j->state))
		node_call_error(c, MR_ERR_RUNNING, "job %s is %s: its part files are not written yet", j->id,
		    mr_jstate_name(j->state));
	else if (j)
		mr_job_part_path(j->job, (int)file, path, sizeof path);
	pthread_mutex_unlock(&m->lock);
	if (path[0] == 0)
		return;
	size_t lim = max < (double)m->read_max ? (size_t)max : m->read_max;
	cJSON *r = node_reply_ok();
	node_err err = {0};
	if (mr_read_part(path, (uint64_t)off, lim, r, &err) != 0) {
		cJSON_Delete(r);
		r = node_reply_from_err(&err);
	}
	node_call_reply(c, r);
}

const node_op mr_master_ops[] = {
	{"job.submit", mr_op_submit},
	{"job.status", mr_op_status},
	{"job.wait", mr_op_wait},
	{"job.list", mr_op_list},
	{"job.kill", mr_op_kill},
	{"job.purge", mr_op_purge},
	{"job.read", mr_op_read},
	{NULL, NULL},
};
