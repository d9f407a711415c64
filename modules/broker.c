/* node broker: named queues, leases, a durable journal and results — what
 * Celery gets from RabbitMQ/Redis plus a result backend. This file starts
 * and stops the role and runs its clock; the protocol is in broker/ops.c,
 * the state in broker/store.c, the journal records in broker/records.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "broker/broker.h"
#include "commands.h"
#include "core/log.h"

#define BROKER_TICK_MS 50

static const node_opt broker_opts[] = {
	{"listen", 'l', "URL", "address to listen on (default: roles.broker.listen of this node)"},
	{"fsync", 0, "POLICY", "always, batch or off (default: roles.broker.fsync, batch)"},
	{NULL, 0, NULL, NULL},
};

static long long mine_int(node_ctx *ctx, const char *key, long long def)
{
	const cJSON *v = node_conf_mine(&ctx->conf, key);
	return cJSON_IsNumber(v) ? (long long)v->valuedouble : def;
}

/* Queues declared in the cluster file get their settings before replay. */
static int broker_declare_queues(broker *b, node_err *err)
{
	const cJSON *qs = node_conf_get(&b->ctx->conf, "queues"), *q;
	cJSON_ArrayForEach(q, qs) {
		broker_queue *bq = broker_store_queue(&b->st, q->string, 1);
		if (bq == NULL)
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		const cJSON *v;
		if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(q, "max_length")))
			bq->max_length = (uint64_t)v->valuedouble;
		if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(q, "priority")))
			bq->default_priority = (uint8_t)v->valueint;
		if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(q, "result_ttl_s")))
			bq->result_ttl_ms = (int64_t)v->valuedouble * 1000;
		if (cJSON_IsNumber(v = cJSON_GetObjectItemCaseSensitive(q, "max_deliveries")))
			bq->max_deliveries = (uint32_t)v->valueint;
	}
	return 0;
}

static int broker_fsync_policy(const char *s, int *out)
{
	if (strcmp(s, "always") == 0)
		*out = NODE_FSYNC_ALWAYS;
	else if (strcmp(s, "batch") == 0)
		*out = NODE_FSYNC_BATCH;
	else if (strcmp(s, "off") == 0)
		*out = NODE_FSYNC_OFF;
	else
		return -1;
	return 0;
}

static int broker_open_journal(broker *b, const node_args *a, node_err *err)
{
	node_ctx *ctx = b->ctx;
	char dir[4096];
	int rc = node_conf_data_dir(&ctx->conf, "broker", dir, sizeof dir, err);
	if (rc != 0)
		return rc;
	const char *pol = node_args_get(a, "fsync");
	if (pol == NULL)
		pol = cJSON_GetStringValue(node_conf_mine(&ctx->conf, "roles.broker.fsync"));
	node_journal_cfg jc = {.dir = dir, .fsync = NODE_FSYNC_BATCH};
	if (pol && broker_fsync_policy(pol, &jc.fsync) != 0)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "--fsync: expected always, batch or off, got \"%s\"", pol);
	jc.batch_ms = (int)mine_int(ctx, "roles.broker.batch_ms", 5);
	jc.segment_bytes = (size_t)mine_int(ctx, "roles.broker.segment_mb", 64) << 20;
	b->compact_floor = mine_int(ctx, "roles.broker.compact_mb", 256) << 20;
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	rc = node_journal_open(&b->journal, &jc, broker_replay, b, err);
	if (rc != 0)
		return rc;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	node_journal_stats js;
	node_journal_stats_get(b->journal, &js);
	node_info("journal %s (fsync %s): %zu tasks from %llu records in %.0f ms", dir, pol ? pol : "batch", b->st.ntasks,
	    (unsigned long long)js.recovered, (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	return 0;
}

static int broker_start(broker *b, const node_args *a, node_err *err)
{
	node_ctx *ctx = b->ctx;
	const char *url = node_args_get(a, "listen");
	if (url == NULL)
		url = cJSON_GetStringValue(node_conf_mine(&ctx->conf, "roles.broker.listen"));
	if (url == NULL && node_conf_role_url(&ctx->conf, "broker", "listen", &url, err) != 0)
		return NODE_EINVAL;
	b->lease_ms = mine_int(ctx, "roles.broker.lease_ms", 30000);
	int rc = broker_declare_queues(b, err);
	if (rc == 0)
		rc = broker_open_journal(b, a, err);
	if (rc != 0)
		return rc;
	node_server_cfg sc = {.url = url, .role = "broker", .node = ctx->conf.node, .ops = broker_ops, .arg = b,
	    .wire = &ctx->wire, .on_disconnect = broker_on_disconnect};
	rc = node_server_start(&b->srv, &sc, err);
	if (rc == 0)
		node_info("listening on %s", node_server_url(b->srv));
	return rc;
}

/* Results past their time to live are forgotten, oldest first. */
static void broker_expire_results(broker *b, int64_t now)
{
	node_err err = {0};
	for (broker_queue *q = b->st.queues; q; q = q->next)
		while (q->finished.head && q->finished.head->finished_ms + q->result_ttl_ms <= now) {
			broker_task *t = q->finished.head;
			broker_rec_simple(b, 'u', t, &err);
			broker_notify(b, t);
			broker_store_remove(&b->st, t);
		}
}

static void broker_maybe_compact(broker *b)
{
	node_journal_stats js;
	node_journal_stats_get(b->journal, &js);
	uint64_t live = (uint64_t)b->st.ntasks * 256;
	/* The journal counts the snapshot's bytes only after it returns: wait a moment. */
	if (b->compacting || node_clock_wall_ms() - b->compacted_ms < 5000 || js.bytes < (uint64_t)b->compact_floor || js.bytes < 2 * live)
		return;
	b->compacting = 1;
	node_info("journal is %llu MiB for %zu tasks: compacting", (unsigned long long)(js.bytes >> 20), b->st.ntasks);
	node_journal_compact(b->journal, broker_snapshot, b);
}

static void broker_tick(broker *b)
{
	int64_t now = node_clock_wall_ms();
	pthread_mutex_lock(&b->lock);
	for (broker_worker *w = b->st.workers; w; w = w->next)
		if (w->online && now - w->seen_ms > b->lease_ms)
			broker_worker_lost(b, w, now);
	broker_feed(b);
	broker_expire_parked(b, now, 0);
	broker_expire_results(b, now);
	broker_maybe_compact(b);
	pthread_mutex_unlock(&b->lock);
}

static void broker_stop(broker *b)
{
	if (b->srv) {
		pthread_mutex_lock(&b->lock);
		b->stopping = 1;
		broker_expire_parked(b, node_clock_wall_ms(), 1);
		pthread_mutex_unlock(&b->lock);
	}
	node_journal_close(b->journal); /* runs the last commits, which answer their calls */
	b->journal = NULL;
	node_server_stop(b->srv);
	broker_store_free(&b->st);
	pthread_mutex_destroy(&b->lock);
}

static int broker_main(node_ctx *ctx, const node_args *a)
{
	broker b;
	memset(&b, 0, sizeof b);
	b.ctx = ctx;
	pthread_mutex_init(&b.lock, NULL);
	broker_store_init(&b.st);
	node_err err = {0};
	if (broker_start(&b, a, &err) != 0) {
		node_error("cannot start: %s", err.msg);
		broker_stop(&b);
		return err.rc == NODE_EINVAL ? NODE_EXIT_CONFIG : NODE_EXIT_START;
	}
	while (!node_stop_wait(ctx->stop, BROKER_TICK_MS))
		broker_tick(&b);
	node_info("stopping: answering parked requests, flushing the journal");
	broker_stop(&b);
	node_info("stopped");
	return 0;
}

const node_cmd node_cmd_broker = {
	.name = "broker",
	.summary = "run the broker: queues, leases, durable journal, results",
	.synopsis = "[--listen URL] [--fsync always|batch|off]",
	.description = "Serves the task protocol (node-protocol(7)) on roles.broker.listen, keeps every\n"
	               "state change in a journal under DATA_DIR/broker and recovers from it on start.\n"
	               "Workers lease tasks; a worker silent for lease_ms loses them to others.",
	.opts = broker_opts,
	.main = broker_main,
	.max_pos = 0,
	.role = 1,
};
