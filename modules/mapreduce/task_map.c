/* The worker task mr.map: read one chunk of input, run the job's map
 * function over it once (a built-in, a plugin per line, or a streaming
 * program) into the partitioned, sorted, combined run files of its attempt
 * directory; plus what mr.map and mr.reduce share (arguments, directories,
 * reduce functions). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "mapreduce/builtin.h"
#include "mapreduce/input.h"
#include "mapreduce/mrtask.h"
#include "mapreduce/stream.h"

#define MR_TASK_NUM_MAX 100000000LL /* task numbers and attempts at most */

/* ---- shared by mr.map and mr.reduce ---- */

int mr_task_fail(const node_err *e, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s", e->msg[0] ? e->msg : "failed without a message");
	return -1;
}

uint64_t mr_file_size(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 ? (uint64_t)st.st_size : 0;
}

static int attempt_int(const cJSON *o, const char *key, long long max, long long *out, const char *kind, node_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > (double)max ||
	    v->valuedouble != (double)(long long)v->valuedouble)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "mr.%s: %s: expected an integer from 0 to %lld", kind,
		                    key, max);
	*out = (long long)v->valuedouble;
	return 0;
}

static int attempt_args(const cJSON *args, const char *kind, mr_attempt *a, node_err *err)
{
	if (cJSON_GetArraySize(args) != 1 || !cJSON_IsArray(args) || !cJSON_IsObject(args->child))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "mr.%s: args must be an array of one object", kind);
	a->arg = args->child;
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(a->arg, "job_id");
	if (!cJSON_IsString(id) || !mr_job_id_ok(id->valuestring))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
		                    "mr.%s: job_id: expected 1 to %d of A-Z a-z 0-9 . _ - (not starting with . or -)", kind, MR_JOB_ID_MAX);
	a->job_id = id->valuestring;
	const cJSON *job = cJSON_GetObjectItemCaseSensitive(a->arg, "job");
	if (!cJSON_IsObject(job))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "mr.%s: job: expected the normalised job object", kind);
	if (mr_job_from_json(job, &a->job, err) != 0) {
		node_err_prefix(err, "mr.%s: job: ", kind);
		return err->rc;
	}
	int map = strcmp(kind, "map") == 0;
	if (attempt_int(a->arg, map ? "task" : "partition", map ? MR_TASK_NUM_MAX : a->job->partitions - 1, &a->num, kind, err) ||
	    attempt_int(a->arg, "attempt", MR_TASK_NUM_MAX, &a->attempt, kind, err))
		return err->rc;
	return 0;
}

int mr_attempt_begin(const worker_task_ctx *ctx, const cJSON *args, const char *kind, mr_attempt *a, node_err *err)
{
	memset(a, 0, sizeof *a);
	if (ctx == NULL || ctx->mr == NULL)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
		                    "mr.%s runs only in a worker (node worker), which gives it a MapReduce directory", kind);
	a->env = ctx->mr;
	if (a->env->disabled || a->env->dir == NULL)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "this worker cannot run MapReduce tasks: %s",
		                    a->env->disabled ? a->env->disabled : "it has no MapReduce directory");
	if (attempt_args(args, kind, a, err) != 0)
		return err->rc;
	int n = snprintf(a->rel, sizeof a->rel, "%s/%s-%05lld-a%lld", a->job_id, kind, a->num, a->attempt);
	int m = n > 0 && (size_t)n < sizeof a->rel ? snprintf(a->dir, sizeof a->dir, "%s/%s", a->env->dir, a->rel) : -1;
	if (m < 0 || (size_t)m >= sizeof a->dir) {
		a->dir[0] = '\0'; /* never a cut path: it is removed on failure */
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "mr.%s: directory name too long under %s", kind, a->env->dir);
	}
	/* the same attempt delivered again starts from nothing */
	if (mr_rmtree(a->dir, err) != 0 || node_file_mkdirs(a->dir, err) != 0)
		return err->rc;
	return 0;
}

void mr_attempt_end(mr_attempt *a)
{
	mr_job_free(a->job);
	a->job = NULL;
}

int mr_attempt_fn_allowed(const mr_attempt *a, const mr_fn *f, const char *role, node_err *err)
{
	if ((f->kind == MR_FN_EXEC || f->kind == MR_FN_PLUGIN) && !a->env->exec_allowed)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
		                    "%s: this worker does not run programs or plugins of jobs (roles.worker.mr_exec is false)", role);
	return 0;
}

const char *mr_builtin_param(const cJSON *params, const char *name)
{
	const char *key = strcmp(name, "grep") == 0 ? "pattern" : strcmp(name, "concat") == 0 ? "separator" : NULL;
	return key ? cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(params, key)) : NULL;
}

static int parse_params(const mr_attempt *a, cJSON **out, node_err *err)
{
	*out = cJSON_Parse(a->job->params ? a->job->params : "{}");
	if (*out == NULL)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "params: not a JSON object");
	return 0;
}

int mr_reducer_open(const mr_attempt *a, const mr_fn *f, const char *role, mr_reducer *r, node_err *err)
{
	memset(r, 0, sizeof *r);
	if (f->kind == MR_FN_NONE)
		return 0;
	if (mr_attempt_fn_allowed(a, f, role, err) != 0)
		return err->rc;
	if (f->kind == MR_FN_PLUGIN) {
		if (mr_plugin_load(f, role, &r->plugin, err) != 0)
			return err->rc;
		r->call = (mr_plugin_call){r->plugin, a->job->params ? a->job->params : "{}"};
		r->fn = mr_plugin_reduce;
		r->param = mr_plugin_param(&r->call);
		return 0;
	}
	if (f->kind != MR_FN_BUILTIN)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s: programs are not called through mr_reducer", role);
	if ((r->fn = mr_fn_reduce_find(f->name)) == NULL)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s: unknown function \"%.100s\" (known: %s)", role, f->name,
		                    MR_FN_REDUCE_NAMES);
	if (parse_params(a, &r->params, err) != 0)
		return err->rc;
	r->param = mr_builtin_param(r->params, f->name);
	r->fold = mr_fn_reduce_fold(f->name);
	return 0;
}

void mr_reducer_close(mr_reducer *r)
{
	mr_plugin_free(r->plugin);
	cJSON_Delete(r->params);
	memset(r, 0, sizeof *r);
}

/* ---- mr.map ---- */

typedef struct map_run {
	mr_attempt a;
	int64_t deadline_ms;
	mr_input_chunk in;
	mr_reducer comb;
	mr_kv_writer *w;
	uint64_t records_in, records_out;
} map_run;

/* The map function over the whole chunk, once. */
static int map_builtin(map_run *m, node_err *err)
{
	const mr_fn *f = &m->a.job->map;
	mr_map_fn fn = mr_fn_map_find(f->name);
	if (fn == NULL)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "map: unknown function \"%.100s\" (known: %s)", f->name,
		                    MR_FN_MAP_NAMES);
	cJSON *params;
	if (parse_params(&m->a, &params, err) != 0)
		return err->rc;
	int rc = fn(m->in.text, m->in.len, m->in.first_line, mr_builtin_param(params, f->name), m->w, err);
	cJSON_Delete(params);
	if (rc != 0)
		node_err_prefix(err, "map %s over %s: ", f->name, m->in.what);
	m->records_in = m->in.lines;
	return rc;
}

static int map_plugin(map_run *m, node_err *err)
{
	mr_plugin *p;
	if (mr_plugin_load(&m->a.job->map, "map", &p, err) != 0)
		return err->rc;
	int rc = mr_plugin_map(p, m->in.text, m->in.len, m->in.first_line, m->a.job->params ? m->a.job->params : "{}", m->w,
	                       &m->records_in, err);
	mr_plugin_free(p);
	return rc;
}

static int map_exec(map_run *m, node_err *err)
{
	const mr_fn *f = &m->a.job->map;
	char what[300];
	snprintf(what, sizeof what, "map program %.250s", f->argv[0]);
	mr_stream_cfg sc = {.argv = f->argv, .what = what, .dir = m->a.dir, .params = m->a.job->params, .phase = "map",
	                    .job_id = m->a.job_id, .task = m->a.num, .partition = -1, .attempt = m->a.attempt,
	                    .deadline_ms = m->deadline_ms, .out = {mr_kv_emit, m->w}};
	mr_stream *s;
	if (mr_stream_start(&s, &sc, err) != 0)
		return err->rc;
	if (mr_stream_write(s, m->in.text, m->in.len, err) != 0) {
		mr_stream_abort(s);
		return err->rc;
	}
	m->records_in = m->in.lines;
	return mr_stream_finish(s, NULL, err);
}

/* Records in a finished run file: its end block's total (kv.h). */
static uint64_t map_run_records(const char *path)
{
	uint8_t end[12];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint64_t total = 0;
	if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= 12 && pread(fd, end, 12, st.st_size - 12) == 12)
		for (int i = 0; i < 8; i++)
			total |= (uint64_t)end[i] << (8 * i);
	if (fd >= 0)
		close(fd);
	return total;
}

static cJSON *map_result(map_run *m, node_err *err)
{
	const worker_mr_env *env = m->a.env;
	cJSON *r = cJSON_CreateObject(), *parts = cJSON_AddArrayToObject(r, "parts");
	for (int p = 0; parts && p < m->a.job->partitions; p++) {
		char path[4200];
		if (mr_kv_part_path(path, sizeof path, m->a.dir, p, err) != 0) {
			cJSON_Delete(r);
			return NULL;
		}
		m->records_out += map_run_records(path);
		cJSON_AddItemToArray(parts, cJSON_CreateNumber((double)mr_file_size(path)));
	}
	cJSON_AddStringToObject(r, "dir", m->a.rel);
	cJSON_AddStringToObject(r, "path", m->a.dir);
	cJSON_AddStringToObject(r, "url", env->fetch_url ? env->fetch_url : "");
	cJSON_AddStringToObject(r, "host", env->host_id ? env->host_id : "");
	cJSON_AddStringToObject(r, "worker", env->worker ? env->worker : "");
	cJSON_AddNumberToObject(r, "records_in", (double)m->records_in);
	cJSON_AddNumberToObject(r, "bytes_in", (double)m->in.bytes_in);
	cJSON_AddNumberToObject(r, "records_out", (double)m->records_out);
	cJSON_AddNumberToObject(r, "spills", (double)mr_kv_spills(m->w)); /* runs written before the last merge */
	if (parts == NULL || cJSON_GetObjectItemCaseSensitive(r, "records_out") == NULL) {
		cJSON_Delete(r);
		node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	return r;
}

/* The functions, the writer, the input, the map, the part files. */
static int map_go(map_run *m, cJSON **result, node_err *err)
{
	const mr_job *j = m->a.job;
	if (mr_attempt_fn_allowed(&m->a, &j->map, "map", err) || mr_attempt_fn_allowed(&m->a, &j->combiner, "combiner", err))
		return err->rc;
	if (j->combiner.kind == MR_FN_EXEC)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
		                    "combiner: a program cannot be a combiner on this worker (use a built-in or a plugin, or none)");
	if (mr_reducer_open(&m->a, &j->combiner, "combiner", &m->comb, err) != 0)
		return err->rc;
	mr_kv_opts o = {.dir = m->a.dir, .nparts = j->partitions, .mem_limit = m->a.env->sort_mem, .order = MR_ORDER_KEY,
	                .combine = m->comb.fn, .param = m->comb.param, .fold = m->comb.fold};
	if (mr_kv_writer_open(&m->w, &o, err) != 0)
		return err->rc;
	if (mr_input_read(cJSON_GetObjectItemCaseSensitive(m->a.arg, "input"), m->deadline_ms, &m->in, err) != 0)
		return err->rc;
	int rc = j->map.kind == MR_FN_BUILTIN ? map_builtin(m, err) : j->map.kind == MR_FN_PLUGIN ? map_plugin(m, err)
	                                                                                          : map_exec(m, err);
	if (rc == 0 && mr_kv_finish(m->w, err) != 0)
		rc = err->rc;
	if (rc == 0 && (*result = map_result(m, err)) == NULL)
		rc = err->rc;
	return rc;
}

int mr_task_map(const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs, cJSON **result, char *err,
                size_t errlen)
{
	node_err e = {0};
	map_run *m = calloc(1, sizeof *m);
	if (m == NULL)
		return snprintf(err, errlen, "mr.map: out of memory"), -1;
	int rc = mr_attempt_begin(ctx, args, "map", &m->a, &e);
	if (rc == 0) {
		m->deadline_ms = ctx->deadline_ms;
		rc = map_go(m, result, &e);
	}
	mr_kv_writer_free(m->w);
	mr_input_free(&m->in);
	mr_reducer_close(&m->comb);
	if (rc != 0 && m->a.dir[0]) {
		node_err ignored = {0};
		mr_rmtree(m->a.dir, &ignored); /* nothing of a failed attempt is used */
	}
	mr_attempt_end(&m->a);
	free(m);
	return rc == 0 ? 0 : mr_task_fail(&e, err, errlen);
}
