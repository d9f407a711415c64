/* node mapreduce: the MapReduce master (what Disco's master is). Takes jobs
 * from `node job`, cuts their inputs into chunks, runs map and reduce tasks
 * on ordinary workers through the broker, and gathers the part files into
 * each job's output directory. This file reads the settings and starts and
 * stops the pieces of modules/mapreduce/master*.c; node-mapreduce(1). */
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "core/log.h"
#include "mapreduce/host.h"
#include "mapreduce/master.h"

#define MR_ROLE_TICK_MS 200

static const node_opt mr_role_opts[] = {
	{"listen", 'l', "URL", "address to listen on (default: roles.mapreduce.listen of this node)"},
	{"broker", 0, "URL", "broker the tasks go through (default: roles.mapreduce.broker, else the cluster's broker)"},
	{"queue", 'q', "Q", "queue of the map and reduce tasks (default: roles.mapreduce.queue, \"mapreduce\")"},
	{NULL, 0, NULL, NULL},
};

static int mr_conf_int(node_ctx *ctx, const char *key, int def)
{
	char path[128];
	snprintf(path, sizeof path, "roles.mapreduce.%s", key);
	const cJSON *v = node_conf_mine(&ctx->conf, path);
	return cJSON_IsNumber(v) ? (int)v->valuedouble : def;
}

static const char *mr_conf_str(node_ctx *ctx, const node_args *a, const char *key, const char *def)
{
	const char *v = node_args_get(a, key);
	if (v == NULL) {
		char path[128];
		snprintf(path, sizeof path, "roles.mapreduce.%s", key);
		v = cJSON_GetStringValue(node_conf_mine(&ctx->conf, path));
	}
	return v && v[0] ? v : def;
}

static void mr_settings(mr_master *m, const node_args *a)
{
	node_ctx *ctx = m->ctx;
	m->broker_url = mr_conf_str(ctx, a, "broker", NULL);
	m->queue = mr_conf_str(ctx, a, "queue", "mapreduce");
	m->max_attempts = mr_conf_int(ctx, "max_attempts", 4);
	m->speculative = !cJSON_IsFalse(node_conf_mine(&ctx->conf, "roles.mapreduce.speculative"));
	m->backup_after_ms = mr_conf_int(ctx, "backup_after_ms", 2000);
	m->max_jobs = mr_conf_int(ctx, "max_jobs", 1000);
	m->max_running = mr_conf_int(ctx, "max_running", 4);
	m->timeout_ms = ctx->timeout_ms > 0 ? ctx->timeout_ms : 5000;
	/* mr.get and job.read answers carry base64 (4/3 of the bytes) inside
	 * one message: half the message limit at most, whole base64 groups. */
	size_t half = ctx->wire.limits.max_message / 2;
	m->read_max = half < MR_MASTER_READ_MAX ? half : MR_MASTER_READ_MAX;
	m->read_max -= m->read_max % 3;
	if (m->read_max < 3)
		m->read_max = 3;
	if (mr_host_id(m->host, sizeof m->host) != 0)
		node_warn("no host id (neither a boot id nor a host name): every part file is fetched over the network");
}

static int mr_start(mr_master *m, const node_args *a, node_err *err)
{
	node_ctx *ctx = m->ctx;
	mr_settings(m, a);
	const char *url = mr_conf_str(ctx, a, "listen", "tcp://127.0.0.1:7140");
	int rc = mr_sched_open(m, err);
	if (rc == 0)
		rc = mr_log_open(m, err);
	if (rc == 0)
		rc = mr_io_start(m, err);
	if (rc == 0)
		rc = mr_sched_start(m, err);
	if (rc != 0)
		return rc;
	node_server_cfg sc = {.url = url, .role = "mapreduce", .node = ctx->conf.node, .ops = mr_master_ops, .arg = m,
	    .wire = &ctx->wire};
	rc = node_server_start(&m->srv, &sc, err);
	if (rc == 0)
		node_info("listening on %s", node_server_url(m->srv));
	return rc;
}

/* Parked calls are answered before the server goes; the threads stop
 * before the journal closes, so every record they wrote is flushed. */
static void mr_stop(mr_master *m)
{
	pthread_mutex_lock(&m->lock);
	m->stopping = 1;
	mr_master_expire_waiters(m, 0, 1);
	pthread_mutex_unlock(&m->lock);
	node_server_stop(m->srv);
	m->srv = NULL;
	mr_sched_stop(m);
	mr_io_stop(m);
	if (m->journal)
		mr_log_close(m);
	while (m->jobs)
		mr_master_forget(m, m->jobs);
}

static int mr_role_main(node_ctx *ctx, const node_args *a)
{
	mr_master *m = calloc(1, sizeof *m);
	if (m == NULL) {
		node_error("cannot start: out of memory");
		return NODE_EXIT_START;
	}
	m->ctx = ctx;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->wake, NULL);
	pthread_cond_init(&m->io_wake, NULL);
	node_err err = {0};
	int status = 0;
	if (mr_start(m, a, &err) != 0) {
		node_error("cannot start: %s", err.msg);
		status = err.rc == NODE_EINVAL ? NODE_EXIT_CONFIG : NODE_EXIT_START;
	} else {
		while (!node_stop_wait(ctx->stop, MR_ROLE_TICK_MS)) {
			pthread_mutex_lock(&m->lock);
			mr_log_maybe_compact(m);
			pthread_mutex_unlock(&m->lock);
		}
		node_info("stopping: parked calls are answered \"shutting_down\"; running jobs resume at the next start");
	}
	mr_stop(m);
	pthread_cond_destroy(&m->wake);
	pthread_cond_destroy(&m->io_wake);
	pthread_mutex_destroy(&m->lock);
	free(m);
	if (status == 0)
		node_info("stopped");
	return status;
}

const node_cmd node_cmd_mapreduce = {
	.name = "mapreduce",
	.summary = "the MapReduce master: runs jobs of map and reduce tasks over the workers (Disco)",
	.synopsis = "[--listen URL] [--broker URL] [--queue Q]",
	.description =
	    "Serves the job.* ops (node-protocol(7)) on roles.mapreduce.listen for `node job`.\n"
	    "Cuts each job's inputs into chunks, submits mr.map and mr.reduce tasks to the\n"
	    "broker for workers that consume the queue, retries failed attempts, re-runs\n"
	    "maps whose output was lost, backs up slow tasks, and gathers the part files and\n"
	    "manifest.json into the job's output directory. Jobs are journaled under\n"
	    "DATA_DIR/mapreduce and resume after a restart. node-mapreduce(1).",
	.opts = mr_role_opts,
	.main = mr_role_main,
	.max_pos = 0,
	.role = 1,
};
