/* The master's I/O thread: gathers each reduce's part file into output.dir
 * (a rename when the file is on this machine, else mr.get from the worker's
 * output server), writes manifest.json last, and cleans a finished job's
 * intermediate files (mr.clean at its output servers, local ones removed).
 * It works without the lock, so slow disks and peers never hold up ops. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <mbedtls/base64.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/log.h"
#include "mapreduce/master.h"

mr_io *mr_io_new(mr_io_kind kind, const char *job_id)
{
	mr_io *io = calloc(1, sizeof *io);
	if (io) {
		io->kind = kind;
		snprintf(io->job_id, sizeof io->job_id, "%s", job_id);
	}
	return io;
}

void mr_io_free(mr_io *io)
{
	if (io == NULL)
		return;
	cJSON_Delete(io->res);
	cJSON_Delete(io->body);
	free(io->path);
	mr_strs_free(&io->urls);
	mr_strs_free(&io->dirs);
	free(io);
}

void mr_io_push(mr_master *m, mr_io *io)
{
	if (m->io_tail)
		m->io_tail->next = io;
	else
		m->io_head = io;
	m->io_tail = io;
	pthread_cond_signal(&m->io_wake);
}

void mr_io_clean_result(mr_master *m, const char *job_id, const cJSON *res)
{
	mr_io *io = mr_io_new(MR_IO_CLEAN, job_id);
	const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "url"));
	char *dir = mr_master_local_dir(m, job_id, res);
	int ok = io && (url == NULL || mr_strs_add(&io->urls, url) == 0) && (dir == NULL || mr_strs_add(&io->dirs, dir) == 0);
	free(dir);
	if (ok)
		mr_io_push(m, io);
	else
		mr_io_free(io);
}

/* ---- writing files ---- */

static int mr_write_all(int fd, const void *p, size_t n)
{
	const char *b = p;
	while (n > 0) {
		ssize_t w = write(fd, b, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		b += w;
		n -= (size_t)w;
	}
	return 0;
}

static int mr_copy(const char *src, const char *dst, node_err *err)
{
	int in = open(src, O_RDONLY | O_CLOEXEC);
	int out = in < 0 ? -1 : open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	char buf[65536];
	ssize_t n = 0;
	int rc = in < 0 || out < 0 ? -1 : 0;
	while (rc == 0 && (n = read(in, buf, sizeof buf)) > 0)
		rc = mr_write_all(out, buf, (size_t)n);
	if (rc == 0 && n < 0)
		rc = -1;
	if (rc != 0)
		node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot copy %s to %s: %s", src, dst, strerror(errno));
	if (in >= 0)
		close(in);
	if (out >= 0 && close(out) != 0 && rc == 0)
		rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot write %s: %s", dst, strerror(errno));
	return rc;
}

/* mr.get the file piece by piece from the worker's output server. */
static int mr_fetch_loop(mr_master *m, node_client *c, const char *rel, int fd, node_err *err)
{
	uint64_t off = 0;
	for (;;) {
		cJSON *req = cJSON_CreateObject(), *reply = NULL;
		cJSON_AddStringToObject(req, "op", "mr.get");
		cJSON_AddStringToObject(req, "path", rel);
		cJSON_AddNumberToObject(req, "offset", (double)off);
		cJSON_AddNumberToObject(req, "max", (double)m->read_max);
		int rc = node_client_call(c, req, m->timeout_ms, &reply, err);
		cJSON_Delete(req);
		const char *data = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "data"));
		const cJSON *size = cJSON_GetObjectItemCaseSensitive(reply, "size");
		int eof = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "eof"));
		if (rc == 0 && eof && cJSON_IsNumber(size) && size->valuedouble <= (double)off)
			data = ""; /* nothing left: whatever data says, there are no bytes */
		size_t dl = data ? strlen(data) : 0, olen = 0;
		unsigned char *buf = rc == 0 && data ? malloc(dl / 4 * 3 + 3) : NULL;
		if (rc == 0 && (buf == NULL || mbedtls_base64_decode(buf, dl / 4 * 3 + 3, &olen, (const unsigned char *)data, dl) != 0))
			rc = node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "mr.get %s: the answer holds no base64 data", rel);
		if (rc == 0 && olen == 0 && !eof)
			rc = node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "mr.get %s: an empty answer before the end", rel);
		if (rc == 0 && mr_write_all(fd, buf, olen) != 0)
			rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot write: %s", strerror(errno));
		free(buf);
		cJSON_Delete(reply);
		off += olen;
		if (rc != 0 || eof)
			return rc;
	}
}

static int mr_fetch(mr_master *m, const char *url, const char *rel, const char *dst, node_err *err)
{
	node_client *c = NULL;
	int rc = node_client_open(&c, url, "worker", &m->ctx->wire, err);
	int fd = rc == 0 ? open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
	if (rc == 0 && fd < 0)
		rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot write %s: %s", dst, strerror(errno));
	if (rc == 0)
		rc = mr_fetch_loop(m, c, rel, fd, err);
	if (fd >= 0 && close(fd) != 0 && rc == 0)
		rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot write %s: %s", dst, strerror(errno));
	node_client_close(c);
	return rc;
}

/* The reduce's file into PART.tmp, then PART: moved when it is on this
 * machine and readable (copied across file systems), else fetched. */
static int mr_io_collect(mr_master *m, mr_io *io, node_err *err)
{
	const cJSON *r = io->res;
	const char *src = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "path"));
	const char *host = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "host"));
	const char *url = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "url"));
	const char *rel = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "file"));
	const cJSON *bytes = cJSON_GetObjectItemCaseSensitive(r, "bytes");
	char tmp[4300];
	snprintf(tmp, sizeof tmp, "%s.tmp", io->path);
	int rc = -1;
	node_err e = {0};
	if (host && src && strcmp(host, m->host) == 0 && access(src, R_OK) == 0)
		rc = rename(src, tmp) == 0 ? 0 : mr_copy(src, tmp, &e);
	if (rc != 0 && (url == NULL || rel == NULL)) {
		rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "%s", e.msg[0] ? e.msg : "the result names no output server");
	} else if (rc != 0) {
		if ((rc = mr_fetch(m, url, rel, tmp, err)) != 0)
			node_err_prefix(err, "from %s: ", url);
		else
			node_info("job %s: %s fetched from %s", io->job_id, rel, url);
	}
	struct stat st;
	if (rc == 0 && cJSON_IsNumber(bytes) && (stat(tmp, &st) != 0 || (double)st.st_size != bytes->valuedouble))
		rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "%s has %lld bytes, the reduce wrote %.0f", tmp,
		    (long long)st.st_size, bytes->valuedouble);
	if (rc == 0 && rename(tmp, io->path) != 0)
		rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot rename %s: %s", tmp, strerror(errno));
	if (rc != 0)
		unlink(tmp);
	return rc;
}

static void mr_io_collected(mr_master *m, mr_io *io, int rc, const node_err *err)
{
	mr_mjob *j = mr_master_find(m, io->job_id);
	if (j == NULL) { /* purged meanwhile: nothing may stay behind */
		if (rc == 0)
			unlink(io->path);
		return;
	}
	size_t p = (size_t)io->task;
	if (!j->reduces[p].collecting)
		return;
	j->reduces[p].collecting = 0;
	if (rc != 0) {
		char msg[700];
		snprintf(msg, sizeof msg, "cannot gather %s: %s", io->path, err->msg);
		mr_sched_task_failed(m, j, 1, p, msg);
	} else {
		mr_master_reduce_done(m, j, p, io->res);
		io->res = NULL;
		mr_log_reduce(m, j, p);
	}
	mr_master_touch(m, j);
}

static int mr_io_manifest(mr_io *io, node_err *err)
{
	char tmp[4300];
	snprintf(tmp, sizeof tmp, "%s.tmp", io->path);
	char *text = cJSON_Print(io->body);
	int fd = text ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644) : -1;
	int rc = fd < 0 || mr_write_all(fd, text, strlen(text)) != 0 || mr_write_all(fd, "\n", 1) != 0 || fsync(fd) != 0;
	if (fd >= 0 && close(fd) != 0)
		rc = 1;
	if (rc == 0 && rename(tmp, io->path) != 0)
		rc = 1;
	free(text);
	if (rc == 0)
		return 0;
	unlink(tmp);
	return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot write %s: %s", io->path, strerror(errno));
}

static void mr_io_manifested(mr_master *m, mr_io *io, int rc, const node_err *err)
{
	mr_mjob *j = mr_master_find(m, io->job_id);
	if (j == NULL || j->state != MR_JS_REDUCE)
		return;
	if (rc != 0) {
		mr_sched_fail_job(m, j, "%s", err->msg);
		return;
	}
	mr_sched_end_job(m, j, MR_JS_DONE, NULL);
	node_info("job %s done: %llu records in %zu part file%s in %s", j->id, (unsigned long long)j->records_out,
	    j->nreduces, j->nreduces == 1 ? "" : "s", j->job->output_dir);
}

/* ---- cleaning ---- */

static int mr_rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb, (void)flag, (void)ftw;
	remove(path);
	return 0;
}

typedef struct mr_clean_wait {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int left;
} mr_clean_wait;

static void mr_clean_reply(int rc, cJSON *reply, const node_err *err, void *arg)
{
	(void)rc, (void)err;
	mr_clean_wait *w = arg;
	cJSON_Delete(reply);
	pthread_mutex_lock(&w->lock);
	w->left--;
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
}

/* Every server at once; those that do not answer in time are given up. */
static void mr_clean_servers(mr_master *m, const mr_io *io)
{
	mr_clean_wait w = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};
	node_client **cs = calloc(io->urls.n ? io->urls.n : 1, sizeof *cs);
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", "mr.clean");
	cJSON_AddStringToObject(req, "job", io->job_id);
	for (size_t i = 0; cs && i < io->urls.n; i++) {
		node_err e = {0};
		if (node_client_open(&cs[i], io->urls.v[i], "worker", &m->ctx->wire, &e) != 0)
			continue;
		pthread_mutex_lock(&w.lock);
		w.left++;
		pthread_mutex_unlock(&w.lock);
		if (node_client_call_async(cs[i], req, MR_MASTER_CLEAN_MS, mr_clean_reply, &w, &e) != 0)
			mr_clean_reply(0, NULL, NULL, &w);
	}
	/* In slices, so a stopping master does not wait for dead servers. */
	for (int waited = 0; waited < MR_MASTER_CLEAN_MS + 500; waited += 100) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_mutex_lock(&w.lock);
		if (w.left > 0)
			pthread_cond_timedwait(&w.cond, &w.lock, &ts);
		int left = w.left;
		pthread_mutex_unlock(&w.lock);
		pthread_mutex_lock(&m->lock);
		int stopping = m->stopping;
		pthread_mutex_unlock(&m->lock);
		if (left == 0 || stopping)
			break;
	}
	for (size_t i = 0; cs && i < io->urls.n; i++)
		node_client_close(cs[i]); /* waits for a callback still due */
	free(cs);
	cJSON_Delete(req);
}

static void mr_io_clean(mr_master *m, const mr_io *io)
{
	for (size_t i = 0; i < io->dirs.n; i++) {
		const char *d = io->dirs.v[i], *base = strrchr(d, '/');
		if (d[0] == '/' && base && strcmp(base + 1, io->job_id) == 0)
			nftw(d, mr_rm_one, 16, FTW_DEPTH | FTW_PHYS);
	}
	mr_clean_servers(m, io);
	node_debug("job %s: cleaned %zu output server%s and %zu local director%s", io->job_id, io->urls.n,
	    io->urls.n == 1 ? "" : "s", io->dirs.n, io->dirs.n == 1 ? "y" : "ies");
}

/* ---- the thread ---- */

static void mr_io_run(mr_master *m, mr_io *io)
{
	node_err err = {0};
	int rc = 0;
	if (io->kind == MR_IO_COLLECT)
		rc = mr_io_collect(m, io, &err);
	else if (io->kind == MR_IO_MANIFEST)
		rc = mr_io_manifest(io, &err);
	else
		mr_io_clean(m, io);
	if (io->kind == MR_IO_CLEAN)
		return;
	pthread_mutex_lock(&m->lock);
	if (io->kind == MR_IO_COLLECT)
		mr_io_collected(m, io, rc, &err);
	else
		mr_io_manifested(m, io, rc, &err);
	pthread_mutex_unlock(&m->lock);
}

static void *mr_io_main(void *arg)
{
	mr_master *m = arg;
	node_log_set_role("mapreduce");
	pthread_mutex_lock(&m->lock);
	while (!m->stopping) {
		mr_io *io = m->io_head;
		if (io == NULL) {
			pthread_cond_wait(&m->io_wake, &m->lock);
			continue;
		}
		m->io_head = io->next;
		if (m->io_head == NULL)
			m->io_tail = NULL;
		pthread_mutex_unlock(&m->lock);
		mr_io_run(m, io);
		mr_io_free(io);
		pthread_mutex_lock(&m->lock);
	}
	pthread_mutex_unlock(&m->lock);
	return NULL;
}

int mr_io_start(mr_master *m, node_err *err)
{
	if (pthread_create(&m->io_thread, NULL, mr_io_main, m) != 0)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "cannot start the I/O thread");
	m->io_started = 1;
	return 0;
}

/* What is still queued is dropped: a restarted master gathers again. */
void mr_io_stop(mr_master *m)
{
	pthread_mutex_lock(&m->lock);
	m->stopping = 1;
	pthread_cond_broadcast(&m->io_wake);
	pthread_mutex_unlock(&m->lock);
	if (m->io_started)
		pthread_join(m->io_thread, NULL);
	m->io_started = 0;
	while (m->io_head) {
		mr_io *io = m->io_head;
		m->io_head = io->next;
		mr_io_free(io);
	}
	m->io_tail = NULL;
}
