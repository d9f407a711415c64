/* The worker side of MapReduce (issue 7): the built-in tasks mr.map and
 * mr.reduce, what they share, the client of mr.get that copies another
 * worker's map output into a local file, and the map output server every
 * worker runs (ops mr.get, mr.clean; node-protocol(7), MAPREDUCE WORKER). */
#ifndef NODE_MR_TASK_H
#define NODE_MR_TASK_H

#include <cjson/cJSON.h>
#include <stdint.h>

#include "core/config.h"
#include "core/msg.h"
#include "mapreduce/job.h"
#include "mapreduce/kv.h"
#include "mapreduce/plugin.h"
#include "worker/tasks.h"

#define MR_GET_DEFAULT (4u << 20) /* raw bytes one mr.get answers at most */
#define MR_SERVE_THREADS 2        /* threads reading files for mr.get */

/* What a worker tells its MapReduce tasks (worker_task_ctx.mr). */
typedef struct worker_mr_env {
	const char *dir;       /* MRDIR: DATA_DIR/mr/WORKERNAME, absolute */
	const char *fetch_url; /* this worker's map output server */
	const char *host_id;   /* mr_host_id(): same id, same files */
	const char *worker;    /* WORKERNAME, <node>-<pid> */
	size_t sort_mem;       /* bytes a map task buffers before it spills */
	int exec_allowed;      /* roles.worker.mr_exec: programs and plugins may run */
	int local_read;        /* roles.worker.mr_local_read */
	int timeout_ms;        /* each mr.get call to another worker */
	const node_conf *conf; /* the cluster's */
	node_wire *wire;       /* secret, TLS, limits of clients to other workers */
	const char *disabled;  /* why this worker cannot run them (no directory,
	                        * no server), or NULL */
} worker_mr_env;

/* ---- the tasks (worker_task_fn) ---- */

int mr_task_map(const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs, cJSON **result, char *err,
                size_t errlen);
int mr_task_reduce(const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs, cJSON **result, char *err,
                   size_t errlen);

/* ---- shared by the two tasks (task_map.c) ---- */

/* One attempt of a map or reduce task: its arguments and its directory. */
typedef struct mr_attempt {
	const worker_mr_env *env;
	const cJSON *arg;       /* args[0] */
	const char *job_id;
	mr_job *job;            /* owned */
	long long num;          /* the task's number (map) or partition (reduce) */
	long long attempt;
	char rel[256];          /* its directory relative to env->dir */
	char dir[4096];         /* and absolute (created empty) */
} mr_attempt;

/* Check ctx and the arguments, make the attempt's directory empty.
 * kind: "map" (number in "task") or "reduce" (in "partition"). */
int mr_attempt_begin(const worker_task_ctx *ctx, const cJSON *args, const char *kind, mr_attempt *a, node_err *err);
void mr_attempt_end(mr_attempt *a);
/* A function of the job may run here: programs and plugins need mr_exec. */
int mr_attempt_fn_allowed(const mr_attempt *a, const mr_fn *f, const char *role, node_err *err);

/* A reduce or combiner function ready to call through mr_reduce_fn. */
typedef struct mr_reducer {
	mr_reduce_fn fn;        /* NULL: none (no combiner) */
	const char *param;      /* what fn takes as param */
	mr_kv_fold fold;        /* a built-in's early fold in the map writer */
	mr_plugin *plugin;
	mr_plugin_call call;
	cJSON *params;          /* the job's params, parsed: owns a built-in's param */
} mr_reducer;

/* f must not be MR_FN_EXEC (the tasks handle programs themselves). */
int mr_reducer_open(const mr_attempt *a, const mr_fn *f, const char *role, mr_reducer *r, node_err *err);
void mr_reducer_close(mr_reducer *r);
/* The string a built-in takes from params: pattern (grep), separator
 * (concat), else NULL. params is the parsed params object. */
const char *mr_builtin_param(const cJSON *params, const char *name);
/* Size of a file, 0 when it cannot be looked at. */
uint64_t mr_file_size(const char *path);
/* A task error: the message of err into the task's err buffer; -1. */
int mr_task_fail(const node_err *e, char *err, size_t errlen);

/* ---- fetching map outputs: the client of mr.get (fetch.c) ---- */

typedef struct mr_fetch mr_fetch;

/* A client to the map output server at url ("worker" in errors). */
int mr_fetch_open(mr_fetch **f, const char *url, node_wire *wire, node_err *err);
/* Copy rel (a path under that worker's MRDIR) into dest in mr.get calls,
 * each within timeout_ms; dest is whole or removed. *bytes: its size. */
int mr_fetch_file(mr_fetch *f, const char *rel, const char *dest, int timeout_ms, uint64_t *bytes, node_err *err);
void mr_fetch_close(mr_fetch *f);

/* ---- the map output server (serve.c) ---- */

typedef struct mr_serve mr_serve;

/* 1 when rel is JOBID/map-NNNNN-aA/part-PPPPP.run or
 * JOBID/reduce-PPPPP-aA/part-PPPPP.tsv|.jsonl: the only files served. */
int mr_serve_path_ok(const char *rel);
/* Serve dir at url; node names this node to ping. */
int mr_serve_start(mr_serve **s, const char *url, const char *dir, node_wire *wire, const char *node, node_err *err);
const char *mr_serve_url(const mr_serve *s);
void mr_serve_stop(mr_serve *s);
/* rm -rf path (not following symbolic links); missing is fine. */
int mr_rmtree(const char *path, node_err *err);

/* ---- the worker role's MapReduce side (serve.c) ---- */

typedef struct mr_worker_side {
	worker_mr_env env;     /* points into the strings below */
	char why[512];         /* env.disabled */
	char dir[4096];
	char url[512];
	char host_id[256];
	char worker[256];
	mr_serve *srv;
} mr_worker_side;

/* Read roles.worker.mr_*, make MRDIR (removing the directories left by
 * dead workers of this node), start the map output server. On failure m
 * is still usable: env.disabled says why, and the tasks fail with it. */
int mr_worker_side_start(mr_worker_side *m, const node_conf *conf, node_wire *wire, const char *worker_name,
                         int timeout_ms, node_err *err);
void mr_worker_side_stop(mr_worker_side *m);

#endif
