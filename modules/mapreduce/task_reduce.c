/* The worker task mr.reduce: gather one partition's run file from every
 * map task (in place on the same host, else over mr.get), merge them by
 * key, run the reduce function (a built-in, a plugin per key, or a
 * streaming program over the merged records) into the part file. A map
 * output that cannot be had fails the task with "lost map output: TASKS:",
 * which tells the master to run those maps again. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/file.h"
#include "mapreduce/builtin.h"
#include "mapreduce/merge.h"
#include "mapreduce/mrtask.h"
#include "mapreduce/stream.h"

#define REDUCE_SOURCES_MAX 10000000
#define REDUCE_LOST_LIST 200 /* bytes of task numbers in the lost message */

typedef struct red_src {
	long long task;
	const char *url, *host, *path, *dir;
	char file[4200];      /* what is merged: in place, or fetched into in/ */
} red_src;

/* One client per map output server, and whether it stopped answering. */
typedef struct red_server {
	const char *url;
	mr_fetch *f;
	int dead;             /* timed out or closed: its other sources are lost too */
	char why[520];
} red_server;

typedef struct reduce_run {
	mr_attempt a;
	int64_t deadline_ms;  /* the task's, 0 for none: a program past it is killed */
	red_src *src;
	size_t nsrc;
	red_server *srv;
	size_t nsrv;
	mr_reducer red;
	mr_out *out;
	char outpath[4200], outrel[400];
	uint64_t records;
} reduce_run;

/* ---- the sources ---- */

static int src_str(const cJSON *o, const char *key, size_t i, const char **out, node_err *err)
{
	*out = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
	if (*out == NULL || strlen(*out) > 4000)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "mr.reduce: sources[%zu].%s: expected a string", i, key);
	return 0;
}

static int src_one(const cJSON *o, size_t i, red_src *s, node_err *err)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(o, "task");
	if (!cJSON_IsNumber(t) || t->valuedouble < 0 || t->valuedouble > 1e8 || t->valuedouble != (double)(long long)t->valuedouble)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "mr.reduce: sources[%zu].task: expected a task number", i);
	s->task = (long long)t->valuedouble;
	if (src_str(o, "url", i, &s->url, err) || src_str(o, "host", i, &s->host, err) || src_str(o, "path", i, &s->path, err) ||
	    src_str(o, "dir", i, &s->dir, err))
		return err->rc;
	return 0;
}

static int cmp_task(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;
	return (x > y) - (x < y);
}

/* Each map task once: two copies of one would count its records twice. */
static int src_unique(const reduce_run *r, node_err *err)
{
	long long *t = malloc((r->nsrc + 1) * sizeof *t);
	if (t == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	for (size_t i = 0; i < r->nsrc; i++)
		t[i] = r->src[i].task;
	qsort(t, r->nsrc, sizeof *t, cmp_task);
	int rc = 0;
	for (size_t i = 1; i < r->nsrc && rc == 0; i++)
		if (t[i] == t[i - 1])
			rc = node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "mr.reduce: sources: map task %lld twice", t[i]);
	free(t);
	return rc;
}

static int src_parse(reduce_run *r, node_err *err)
{
	const cJSON *list = cJSON_GetObjectItemCaseSensitive(r->a.arg, "sources");
	int n = cJSON_GetArraySize(list);
	if (!cJSON_IsArray(list) || n > REDUCE_SOURCES_MAX)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "mr.reduce: sources: expected an array of map outputs");
	r->src = calloc((size_t)n + 1, sizeof *r->src);
	r->srv = calloc((size_t)n + 1, sizeof *r->srv);
	if (r->src == NULL || r->srv == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	const cJSON *o;
	cJSON_ArrayForEach(o, list) {
		if (src_one(o, r->nsrc, &r->src[r->nsrc], err) != 0)
			return err->rc;
		r->nsrc++;
	}
	return src_unique(r, err);
}

/* ---- gathering ---- */

static red_server *server_of(reduce_run *r, const char *url, node_err *err)
{
	for (size_t i = 0; i < r->nsrv; i++)
		if (strcmp(r->srv[i].url, url) == 0)
			return &r->srv[i];
	red_server *s = &r->srv[r->nsrv];
	s->url = url;
	if (mr_fetch_open(&s->f, url, r->a.env->wire, err) != 0) {
		s->dead = 1;
		snprintf(s->why, sizeof s->why, "%s", err->msg);
	}
	r->nsrv++;
	return s;
}

/* The partition's run of source s: read in place when this host has it,
 * else fetched; 0, or an error message in why. */
static int gather_one(reduce_run *r, red_src *s, char *why, size_t whylen)
{
	const worker_mr_env *env = r->a.env;
	node_err e = {0};
	char name[32];
	snprintf(name, sizeof name, "part-%05lld.run", r->a.num);
	if (env->local_read && env->host_id && strcmp(s->host, env->host_id) == 0) {
		snprintf(s->file, sizeof s->file, "%s/%s", s->path, name);
		int fd = open(s->file, O_RDONLY | O_CLOEXEC);
		if (fd >= 0) {
			close(fd);
			return 0;
		}
	}
	red_server *srv = server_of(r, s->url, &e);
	if (srv->dead) {
		snprintf(why, whylen, "%s", srv->why);
		return -1;
	}
	char rel[4100];
	snprintf(rel, sizeof rel, "%s/%s", s->dir, name);
	snprintf(s->file, sizeof s->file, "%s/in/part-%05lld.run", r->a.dir, s->task);
	uint64_t bytes;
	if (mr_fetch_file(srv->f, rel, s->file, env->timeout_ms, &bytes, &e) == 0)
		return 0;
	snprintf(why, whylen, "%s", e.msg);
	if (e.rc == NODE_ETIMEDOUT || e.rc == NODE_ECLOSED) {
		srv->dead = 1;
		snprintf(srv->why, sizeof srv->why, "%s", e.msg);
	}
	return -1;
}

/* "3,7" of lost tasks while there is room; the master reads the list up
 * to the ':' (so never a "..." in it), runs those maps again and every
 * other map of the same worker, then asks again: *more counts the rest. */
static void lost_add(char *list, size_t n, long long task, size_t *more)
{
	size_t len = strlen(list);
	if (len + 24 >= n) {
		(*more)++;
		return;
	}
	snprintf(list + len, n - len, "%s%lld", len ? "," : "", task);
}

static int gather(reduce_run *r, node_err *err)
{
	char in[4200], lost[REDUCE_LOST_LIST] = "", first[520] = "", why[520];
	size_t more = 0;
	snprintf(in, sizeof in, "%s/in", r->a.dir);
	if (node_file_mkdirs(in, err) != 0)
		return err->rc;
	for (size_t i = 0; i < r->nsrc; i++) {
		if (gather_one(r, &r->src[i], why, sizeof why) == 0)
			continue;
		lost_add(lost, sizeof lost, r->src[i].task, &more);
		if (first[0] == '\0')
			snprintf(first, sizeof first, "%s", why);
	}
	if (lost[0] && more)
		return node_err_set(err, NODE_EIO, NODE_ERR_NOT_FOUND, "lost map output: %s: (and %zu more) %s", lost, more, first);
	if (lost[0])
		return node_err_set(err, NODE_EIO, NODE_ERR_NOT_FOUND, "lost map output: %s: %s", lost, first);
	return 0;
}

/* A merge error that names a source's file: that map output is damaged. */
static void blame_source(const reduce_run *r, node_err *err)
{
	for (size_t i = 0; i < r->nsrc; i++)
		if (strstr(err->msg, r->src[i].file)) {
			char msg[sizeof err->msg];
			snprintf(msg, sizeof msg, "%s", err->msg);
			node_err_set(err, err->rc, NODE_ERR_NOT_FOUND, "lost map output: %lld: %s", r->src[i].task, msg);
			return;
		}
}

/* ---- reducing ---- */

static int reduce_merge(reduce_run *r, const mr_emitter *em, node_err *err)
{
	const mr_job *j = r->a.job;
	const char **paths = calloc(r->nsrc + 1, sizeof *paths);
	if (paths == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	for (size_t i = 0; i < r->nsrc; i++)
		paths[i] = r->src[i].file;
	mr_merge_opts mo = {.order = MR_ORDER_KEY, .tmpdir = r->a.dir};
	int rc;
	if (j->reduce.kind != MR_FN_EXEC) {
		rc = mr_merge_reduce(paths, r->nsrc, &mo, r->red.fn, r->red.param, em, err);
	} else {
		char what[300];
		snprintf(what, sizeof what, "reduce program %.250s", j->reduce.argv[0]);
		mr_stream_cfg sc = {.argv = j->reduce.argv, .what = what, .dir = r->a.dir, .params = j->params, .phase = "reduce",
		                    .job_id = r->a.job_id, .task = r->a.num, .partition = r->a.num, .attempt = r->a.attempt,
		                    .deadline_ms = r->deadline_ms, .out = *em};
		mr_stream *s;
		rc = mr_stream_start(&s, &sc, err);
		if (rc == 0 && (rc = mr_merge_reduce(paths, r->nsrc, &mo, NULL, NULL, &(mr_emitter){mr_stream_emit, s}, err)) != 0)
			mr_stream_abort(s);
		else if (rc == 0)
			rc = mr_stream_finish(s, NULL, err);
	}
	free(paths);
	if (rc != 0)
		blame_source(r, err);
	return rc;
}

/* sort "value-desc": the reduce output is sorted by value in a writer of
 * one partition, whose run then goes to the part file in that order. */
static int reduce_by_value(reduce_run *r, const mr_emitter *out, node_err *err)
{
	char dir[4200], run[4300];
	snprintf(dir, sizeof dir, "%s/sort", r->a.dir);
	if (node_file_mkdirs(dir, err) != 0 || mr_kv_part_path(run, sizeof run, dir, 0, err) != 0)
		return err->rc;
	mr_kv_opts o = {.dir = dir, .nparts = 1, .mem_limit = r->a.env->sort_mem, .order = MR_ORDER_VALUE_DESC};
	mr_kv_writer *w;
	if (mr_kv_writer_open(&w, &o, err) != 0)
		return err->rc;
	int rc = reduce_merge(r, &(mr_emitter){mr_kv_emit, w}, err);
	if (rc == 0)
		rc = mr_kv_finish(w, err);
	mr_kv_writer_free(w);
	mr_run_reader *rd = NULL;
	if (rc == 0 && (rc = mr_run_open(&rd, run, err)) == 0)
		rc = mr_pump(mr_run_src(rd), NULL, NULL, out, err);
	mr_run_free(rd);
	return rc;
}

static int reduce_output(reduce_run *r, node_err *err)
{
	const mr_job *j = r->a.job;
	const char *ext = j->format == MR_FORMAT_JSONL ? "jsonl" : "tsv";
	snprintf(r->outrel, sizeof r->outrel, "%s/part-%05lld.%s", r->a.rel, r->a.num, ext);
	snprintf(r->outpath, sizeof r->outpath, "%s/%s", r->a.env->dir, r->outrel);
	if (mr_out_open(&r->out, r->outpath, (mr_out_format)j->format, err) != 0)
		return err->rc;
	mr_emitter em = {mr_out_emit, r->out};
	int rc = j->sort == MR_SORT_VALUE_DESC ? reduce_by_value(r, &em, err) : reduce_merge(r, &em, err);
	if (rc == 0) {
		r->records = mr_out_records(r->out);
		rc = mr_out_close(r->out, err);
	} else {
		mr_out_abort(r->out);
	}
	r->out = NULL;
	return rc;
}

static cJSON *reduce_result(const reduce_run *r)
{
	const worker_mr_env *env = r->a.env;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "file", r->outrel);
	cJSON_AddStringToObject(o, "path", r->outpath);
	cJSON_AddStringToObject(o, "url", env->fetch_url ? env->fetch_url : "");
	cJSON_AddStringToObject(o, "host", env->host_id ? env->host_id : "");
	cJSON_AddStringToObject(o, "worker", env->worker ? env->worker : "");
	cJSON_AddNumberToObject(o, "records", (double)r->records);
	if (cJSON_AddNumberToObject(o, "bytes", (double)mr_file_size(r->outpath)) == NULL) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

static int reduce_go(reduce_run *r, cJSON **result, node_err *err)
{
	const mr_job *j = r->a.job;
	if (mr_attempt_fn_allowed(&r->a, &j->reduce, "reduce", err) != 0 || src_parse(r, err) != 0)
		return err->rc;
	if (j->reduce.kind != MR_FN_EXEC && mr_reducer_open(&r->a, &j->reduce, "reduce", &r->red, err) != 0)
		return err->rc;
	if (gather(r, err) != 0 || reduce_output(r, err) != 0)
		return err->rc;
	if ((*result = reduce_result(r)) == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	return 0;
}

int mr_task_reduce(const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs, cJSON **result, char *err,
                   size_t errlen)
{
	node_err e = {0};
	reduce_run *r = calloc(1, sizeof *r);
	if (r == NULL)
		return snprintf(err, errlen, "mr.reduce: out of memory"), -1;
	int rc = mr_attempt_begin(ctx, args, "reduce", &r->a, &e);
	if (rc == 0) {
		r->deadline_ms = ctx->deadline_ms;
		rc = reduce_go(r, result, &e);
	}
	for (size_t i = 0; i < r->nsrv; i++)
		mr_fetch_close(r->srv[i].f);
	mr_reducer_close(&r->red);
	node_err ignored = {0};
	if (rc == 0) {
		char sub[4200];
		snprintf(sub, sizeof sub, "%s/in", r->a.dir);
		mr_rmtree(sub, &ignored); /* the fetched runs are merged: only the part file is kept */
		snprintf(sub, sizeof sub, "%s/sort", r->a.dir);
		mr_rmtree(sub, &ignored);
	} else if (r->a.dir[0]) {
		mr_rmtree(r->a.dir, &ignored);
	}
	free(r->src);
	free(r->srv);
	mr_attempt_end(&r->a);
	free(r);
	return rc == 0 ? 0 : mr_task_fail(&e, err, errlen);
}
