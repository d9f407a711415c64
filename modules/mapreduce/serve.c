/* The map output server every worker runs (node-protocol(7), MAPREDUCE
 * WORKER): mr.get hands out pieces of the map runs and reduce part files in
 * its MapReduce directory, and nothing else; mr.clean removes a job's
 * files. File work runs on two threads of its own, never on nng's. Also the
 * worker role's MapReduce side: its directory and the server's life. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <mbedtls/base64.h>

#include "core/file.h"
#include "core/log.h"
#include "core/transport.h"
#include "mapreduce/host.h"
#include "mapreduce/mrtask.h"

#define SERVE_ERR_INVALID "invalid"

typedef struct serve_work {
	node_call *call;
	cJSON *req;
	struct serve_work *next;
} serve_work;

struct mr_serve {
	node_server *srv;
	char *dir;
	size_t max;              /* raw bytes one mr.get answers at most */
	pthread_t th[MR_SERVE_THREADS];
	int nth;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	serve_work *head, *tail; /* requests waiting for a thread */
	int closing;
};

/* ---- paths ---- */

/* Skip a run of digits of min to max of them; NULL when there is none. */
static const char *serve_digits(const char *p, int min, int max)
{
	int n = 0;
	while (p[n] >= '0' && p[n] <= '9')
		n++;
	return n >= min && n <= max ? p + n : NULL;
}

static const char *serve_word(const char *p, const char *word)
{
	size_t n = strlen(word);
	return p && strncmp(p, word, n) == 0 ? p + n : NULL;
}

int mr_serve_path_ok(const char *rel)
{
	const char *slash = rel ? strchr(rel, '/') : NULL;
	if (slash == NULL || slash - rel > MR_JOB_ID_MAX)
		return 0;
	char id[MR_JOB_ID_MAX + 1];
	memcpy(id, rel, (size_t)(slash - rel));
	id[slash - rel] = '\0';
	if (!mr_job_id_ok(id))
		return 0;
	const char *p = slash + 1, *q;
	int map = (q = serve_word(p, "map-")) != NULL;
	if (!map && (q = serve_word(p, "reduce-")) == NULL)
		return 0;
	q = serve_digits(q, 5, 10);
	q = serve_word(q, "-a");
	q = q ? serve_digits(q, 1, 10) : NULL;
	q = serve_word(q, "/part-");
	q = q ? serve_digits(q, 5, 5) : NULL;
	if (q == NULL)
		return 0;
	if (map)
		return strcmp(q, ".run") == 0;
	return strcmp(q, ".tsv") == 0 || strcmp(q, ".jsonl") == 0;
}

/* ---- removing trees ---- */

static int serve_rm_at(int dfd, const char *name, int depth)
{
	if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
		return 0;
	if ((errno != EISDIR && errno != EPERM) || depth > 64)
		return -1;
	int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -1;
	DIR *d = fdopendir(fd);
	if (d == NULL) {
		close(fd);
		return -1;
	}
	int rc = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL)
		if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && serve_rm_at(dirfd(d), e->d_name, depth + 1) != 0)
			rc = -1;
	closedir(d);
	if (unlinkat(dfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
		rc = -1;
	return rc;
}

int mr_rmtree(const char *path, node_err *err)
{
	if (serve_rm_at(AT_FDCWD, path, 0) != 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot remove %s: %s", path, strerror(errno));
	return 0;
}

/* ---- mr.get and mr.clean, on the server's threads ---- */

static int serve_int(const cJSON *req, const char *key, double def, double *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(req, key);
	if (v == NULL) {
		*out = def;
		return 0;
	}
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > 9e15 || v->valuedouble != (double)(long long)v->valuedouble)
		return -1;
	*out = v->valuedouble;
	return 0;
}

/* pread until n bytes or the end; -1 on error. */
static ssize_t serve_pread(int fd, unsigned char *buf, size_t n, off_t off)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = pread(fd, buf + got, n - got, off + (off_t)got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

/* {"data": base64 of n bytes of buf, "size", "eof"}; the base64 text is
 * made in cJSON's own memory and handed over, not copied again. */
static cJSON *serve_get_reply(const unsigned char *buf, size_t n, unsigned long long size, int eof)
{
	size_t cap = 4 * ((n + 2) / 3) + 1, olen;
	char *b64 = cJSON_malloc(cap);
	cJSON *r = cJSON_CreateObject(), *data = cJSON_CreateString("");
	if (b64)
		b64[0] = 0; /* mbedtls writes nothing, not even the NUL, for n == 0 */
	if (b64 == NULL || r == NULL || data == NULL || mbedtls_base64_encode((unsigned char *)b64, cap, &olen, buf, n) != 0) {
		if (b64)
			cJSON_free(b64);
		cJSON_Delete(r);
		cJSON_Delete(data);
		return NULL;
	}
	cJSON_AddTrueToObject(r, "ok");
	cJSON_free(data->valuestring);
	data->valuestring = b64;
	cJSON_AddItemToObject(r, "data", data);
	cJSON_AddNumberToObject(r, "size", (double)size);
	cJSON_AddBoolToObject(r, "eof", eof);
	return r;
}

static void serve_get(mr_serve *s, node_call *call, const cJSON *req)
{
	const char *rel = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "path"));
	double off, max;
	if (!mr_serve_path_ok(rel)) {
		node_call_error(call, SERVE_ERR_INVALID,
		                "path: expected JOBID/map-NNNNN-aA/part-PPPPP.run or JOBID/reduce-PPPPP-aA/part-PPPPP.tsv|.jsonl");
		return;
	}
	if (serve_int(req, "offset", 0, &off) != 0 || serve_int(req, "max", (double)MR_GET_DEFAULT, &max) != 0 || max < 1) {
		node_call_error(call, SERVE_ERR_INVALID, "offset and max must be whole numbers (max at least 1)");
		return;
	}
	size_t n = max < (double)s->max ? (size_t)max : s->max;
	n = n >= 3 ? n - n % 3 : n;
	char path[4400];
	snprintf(path, sizeof path, "%s/%s", s->dir, rel);
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0) {
		node_call_error(call, errno == ENOENT ? NODE_ERR_NOT_FOUND : NODE_ERR_INTERNAL, "%s: %s", rel, strerror(errno));
		return;
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		node_call_error(call, NODE_ERR_INTERNAL, "%s: not a regular file", rel);
		return;
	}
	unsigned long long size = (unsigned long long)st.st_size, o = (unsigned long long)off;
	size_t want = o >= size ? 0 : size - o < n ? (size_t)(size - o) : n;
	unsigned char *buf = malloc(want + 1);
	ssize_t got = buf ? serve_pread(fd, buf, want, (off_t)o) : -1;
	int e = buf ? errno : ENOMEM;
	close(fd);
	cJSON *r = got >= 0 ? serve_get_reply(buf, (size_t)got, size, o + (size_t)got >= size) : NULL;
	free(buf);
	if (got < 0) {
		node_call_error(call, NODE_ERR_INTERNAL, "%s: cannot read: %s", rel, strerror(e));
		return;
	}
	if (r == NULL) {
		node_call_error(call, NODE_ERR_INTERNAL, "out of memory");
		return;
	}
	node_call_reply(call, r);
}

static void serve_clean(mr_serve *s, node_call *call, const cJSON *req)
{
	const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(req, "job"));
	if (id == NULL || !mr_job_id_ok(id)) {
		node_call_error(call, SERVE_ERR_INVALID, "job: expected a job id");
		return;
	}
	char path[4200];
	snprintf(path, sizeof path, "%s/%s", s->dir, id);
	struct stat st;
	int existed = lstat(path, &st) == 0;
	node_err err = {0};
	if (mr_rmtree(path, &err) != 0) {
		node_call_error(call, NODE_ERR_INTERNAL, "%s", err.msg);
		return;
	}
	cJSON *r = cJSON_CreateObject();
	cJSON_AddTrueToObject(r, "ok");
	cJSON_AddBoolToObject(r, "removed", existed);
	node_call_reply(call, r);
}

static void *serve_thread(void *arg)
{
	mr_serve *s = arg;
	node_log_set_role("worker");
	pthread_mutex_lock(&s->lock);
	for (;;) {
		while (s->head == NULL && !s->closing)
			pthread_cond_wait(&s->cond, &s->lock);
		serve_work *w = s->head;
		if (w == NULL)
			break; /* closing, and every queued request answered */
		if ((s->head = w->next) == NULL)
			s->tail = NULL;
		pthread_mutex_unlock(&s->lock);
		const char *op = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(w->req, "op"));
		if (op && strcmp(op, "mr.get") == 0)
			serve_get(s, w->call, w->req);
		else
			serve_clean(s, w->call, w->req);
		cJSON_Delete(w->req);
		free(w);
		pthread_mutex_lock(&s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* Both ops: the request is copied to a thread's queue (it lives only as
 * long as this handler), the answer comes from there. */
static void serve_queue(node_call *call, const cJSON *req, void *arg)
{
	mr_serve *s = arg;
	serve_work *w = malloc(sizeof *w);
	cJSON *copy = cJSON_Duplicate(req, 1);
	if (w == NULL || copy == NULL) {
		free(w);
		cJSON_Delete(copy);
		node_call_error(call, NODE_ERR_INTERNAL, "out of memory");
		return;
	}
	*w = (serve_work){call, copy, NULL};
	pthread_mutex_lock(&s->lock);
	int closing = s->closing;
	if (!closing) {
		if (s->tail)
			s->tail->next = w;
		else
			s->head = w;
		s->tail = w;
		pthread_cond_signal(&s->cond);
	}
	pthread_mutex_unlock(&s->lock);
	if (closing) {
		cJSON_Delete(copy);
		free(w);
		node_call_error(call, NODE_ERR_SHUTDOWN, "the worker is stopping");
	}
}

static const node_op serve_ops[] = {
	{"mr.get", serve_queue},
	{"mr.clean", serve_queue},
	{NULL, NULL},
};

/* ---- the server ---- */

static void serve_free(mr_serve *s)
{
	pthread_mutex_lock(&s->lock);
	s->closing = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
	for (int i = 0; i < s->nth; i++)
		pthread_join(s->th[i], NULL);
	if (s->srv)
		node_server_stop(s->srv);
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->lock);
	free(s->dir);
	free(s);
}

int mr_serve_start(mr_serve **out, const char *url, const char *dir, node_wire *wire, const char *node, node_err *err)
{
	*out = NULL;
	mr_serve *s = calloc(1, sizeof *s);
	if (s == NULL || (s->dir = strdup(dir)) == NULL) {
		free(s);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->cond, NULL);
	/* what one reply may carry: half a message, and base64 within one string */
	s->max = MR_GET_DEFAULT;
	if (wire->limits.max_message / 2 < s->max)
		s->max = wire->limits.max_message / 2;
	if (wire->limits.max_string && (wire->limits.max_string - 64) / 4 * 3 < s->max)
		s->max = (wire->limits.max_string - 64) / 4 * 3;
	for (int e; s->nth < MR_SERVE_THREADS; s->nth++)
		if ((e = pthread_create(&s->th[s->nth], NULL, serve_thread, s)) != 0) {
			serve_free(s);
			return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot start a thread: %s", strerror(e)); /* not in errno */
		}
	node_server_cfg sc = {.url = url, .role = "worker", .node = node, .ops = serve_ops, .arg = s, .wire = wire};
	if (node_server_start(&s->srv, &sc, err) != 0) {
		s->srv = NULL;
		serve_free(s);
		node_err_prefix(err, "map output server: ");
		return err->rc;
	}
	*out = s;
	return 0;
}

const char *mr_serve_url(const mr_serve *s)
{
	return node_server_url(s->srv);
}

void mr_serve_stop(mr_serve *s)
{
	if (s)
		serve_free(s);
}

/* ---- the worker role's side ---- */

/* Remove DIR/<prefix>-<pid> of workers of this node that are gone: their
 * map outputs can no longer be served, and nobody else cleans them. */
static void side_remove_stale(const char *base, const char *name)
{
	const char *dash = strrchr(name, '-');
	size_t plen = dash ? (size_t)(dash - name) + 1 : 0;
	DIR *d = plen ? opendir(base) : NULL;
	if (d == NULL)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		const char *pid = e->d_name + plen;
		if (strncmp(e->d_name, name, plen) != 0 || *pid == '\0' || serve_digits(pid, 1, 9) == NULL ||
		    *serve_digits(pid, 1, 9) != '\0' || strcmp(e->d_name, name) == 0)
			continue;
		if (kill((pid_t)atol(pid), 0) == 0 || errno != ESRCH)
			continue;
		char path[4400];
		node_err err = {0};
		snprintf(path, sizeof path, "%s/%s", base, e->d_name);
		if (mr_rmtree(path, &err) == 0)
			node_info("removed %s, the MapReduce files of a worker that is gone", path);
		else
			node_warn("%s", err.msg);
	}
	closedir(d);
}

/* roles.worker.mr_listen, else tcp://HOST:0 on this node's host (tls+tcp
 * when the cluster has certificates). */
static int side_url(mr_worker_side *m, const node_conf *conf, const node_wire *wire, node_err *err)
{
	const char *url = cJSON_GetStringValue(node_conf_mine(conf, "roles.worker.mr_listen"));
	const char *host = cJSON_GetStringValue(node_conf_mine(conf, "host"));
	if (host == NULL || host[0] == '\0')
		host = "127.0.0.1";
	int v6 = strchr(host, ':') != NULL, n;
	if (url)
		n = snprintf(m->url, sizeof m->url, "%s", url);
	else
		n = snprintf(m->url, sizeof m->url, "%s://%s%s%s:0", wire->tls_cert && wire->tls_key ? "tls+tcp" : "tcp", v6 ? "[" : "",
		             host, v6 ? "]" : "");
	if (n < 0 || (size_t)n >= sizeof m->url)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "roles.worker.mr_listen: too long");
	return 0;
}

static int side_start(mr_worker_side *m, const node_conf *conf, node_wire *wire, const char *worker_name,
                      int timeout_ms, node_err *err)
{
	char base[4096];
	if (node_conf_data_dir(conf, "mr", base, sizeof base, err) != 0)
		return err->rc;
	int n = snprintf(m->dir, sizeof m->dir, "%s/%s", base, worker_name);
	if (n < 0 || (size_t)n >= sizeof m->dir)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "data directory path too long: %s", base);
	side_remove_stale(base, worker_name);
	if (node_file_mkdirs(m->dir, err) != 0 || side_url(m, conf, wire, err) != 0)
		return err->rc;
	snprintf(m->worker, sizeof m->worker, "%s", worker_name);
	if (mr_host_id(m->host_id, sizeof m->host_id) != 0)
		snprintf(m->host_id, sizeof m->host_id, "unknown");
	if (mr_serve_start(&m->srv, m->url, m->dir, wire, conf->node, err) != 0)
		return err->rc;
	snprintf(m->url, sizeof m->url, "%s", mr_serve_url(m->srv));
	const cJSON *mb = node_conf_mine(conf, "roles.worker.mr_sort_mb");
	const cJSON *ex = node_conf_mine(conf, "roles.worker.mr_exec");
	const cJSON *lr = node_conf_mine(conf, "roles.worker.mr_local_read");
	m->env = (worker_mr_env){
		.dir = m->dir,
		.fetch_url = m->url,
		.host_id = m->host_id,
		.worker = m->worker,
		.sort_mem = (size_t)(cJSON_IsNumber(mb) && mb->valuedouble >= 1 ? mb->valuedouble : 256) << 20,
		.exec_allowed = cJSON_IsTrue(ex),
		.local_read = !cJSON_IsFalse(lr),
		.timeout_ms = timeout_ms > 0 ? timeout_ms : 5000,
		.conf = conf,
		.wire = wire,
	};
	node_info("map output server listening on %s (MapReduce files in %s%s)", m->url, m->dir,
	          m->env.exec_allowed ? "; job programs and plugins allowed" : "");
	return 0;
}

int mr_worker_side_start(mr_worker_side *m, const node_conf *conf, node_wire *wire, const char *worker_name,
                         int timeout_ms, node_err *err)
{
	memset(m, 0, sizeof *m);
	int rc = side_start(m, conf, wire, worker_name, timeout_ms, err);
	if (rc != 0) {
		snprintf(m->why, sizeof m->why, "%s", err->msg);
		snprintf(m->worker, sizeof m->worker, "%s", worker_name);
		m->env = (worker_mr_env){.worker = m->worker, .disabled = m->why};
	}
	return rc;
}

void mr_worker_side_stop(mr_worker_side *m)
{
	mr_serve_stop(m->srv);
	m->srv = NULL;
}
