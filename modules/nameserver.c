/* node nameserver: a name -> address registry for discovery, what Pyro4's
 * name server is. Entries carry an optional meta object and a time to live
 * that clients renew; every change is journaled under DATA_DIR/nameserver
 * and replayed at start. This file starts and stops the role and sweeps
 * expired entries, and answers discovery broadcasts (core/discover.c) so
 * clients without its address find it; the protocol is in nameserver/ops.c,
 * the registry and its journal records in nameserver/registry.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "core/clock.h"
#include "core/discover.h"
#include "core/log.h"
#include "nameserver/nameserver.h"

#define NS_TICK_MS 200
#define NS_COMPACT_MIN 10000 /* records appended before a snapshot is considered */

static const node_opt ns_role_opts[] = {
	{"listen", 'l', "URL", "address to listen on (default: roles.nameserver.listen of this node)"},
	{NULL, 0, NULL, NULL},
};

static int ns_open_journal(nameserver *ns, node_err *err)
{
	char dir[4096];
	int rc = node_conf_data_dir(&ns->ctx->conf, "nameserver", dir, sizeof dir, err);
	if (rc != 0)
		return rc;
	node_journal_cfg jc = {.dir = dir, .fsync = NODE_FSYNC_BATCH, .batch_ms = 5, .segment_bytes = 16u << 20};
	rc = node_journal_open(&ns->journal, &jc, ns_replay, ns, err);
	if (rc != 0)
		return rc;
	node_journal_stats js;
	node_journal_stats_get(ns->journal, &js);
	node_info("journal %s: %zu names from %llu records (%llu expired while down)", dir, ns->n,
	    (unsigned long long)js.recovered, (unsigned long long)ns->dropped);
	/* Start from a snapshot of what is live, so the journal stays the size of the registry. */
	if (js.recovered > 0) {
		ns->compacting = 1;
		node_journal_compact(ns->journal, ns_snapshot, ns);
	}
	return 0;
}

static int ns_start(nameserver *ns, const node_args *a, node_err *err)
{
	node_ctx *ctx = ns->ctx;
	const char *url = node_args_get(a, "listen");
	if (url == NULL)
		url = cJSON_GetStringValue(node_conf_mine(&ctx->conf, "roles.nameserver.listen"));
	if (url == NULL)
		url = "tcp://127.0.0.1:7110";
	const cJSON *ttl = node_conf_mine(&ctx->conf, "roles.nameserver.default_ttl_s");
	ns->default_ttl_s = cJSON_IsNumber(ttl) ? (int64_t)ttl->valuedouble : 30;
	int rc = ns_open_journal(ns, err);
	if (rc != 0)
		return rc;
	node_server_cfg sc = {.url = url, .role = "nameserver", .node = ctx->conf.node, .ops = ns_ops, .arg = ns, .wire = &ctx->wire};
	rc = node_server_start(&ns->srv, &sc, err);
	if (rc == 0)
		node_info("listening on %s", node_server_url(ns->srv));
	return rc;
}

/* Answer "where is the name server?" broadcasts unless the node says not to.
 * A failure is a warning, not a failed start: clients given the address
 * still work, and the port may be held by a program that does not share it. */
static node_discover *ns_discovery_start(nameserver *ns)
{
	const node_conf *c = &ns->ctx->conf;
	if (cJSON_IsFalse(node_conf_mine(c, "roles.nameserver.discovery")))
		return NULL;
	const cJSON *port = node_conf_mine(c, "roles.nameserver.discovery_port");
	node_discover_cfg dc = {
		.port = cJSON_IsNumber(port) ? (int)port->valuedouble : NODE_DISCOVER_PORT,
		.role = "nameserver",
		.url = node_server_url(ns->srv),
		.cluster = node_conf_str(c, "cluster", "local"),
		.node = c->node,
	};
	node_discover *d = NULL;
	node_err err = {0};
	if (node_discover_start(&d, &dc, &err) != 0) {
		node_warn("not answering discovery broadcasts: %s; clients need --nameserver or roles.nameserver.listen", err.msg);
		return NULL;
	}
	node_info("answering discovery broadcasts on UDP port %d", node_discover_port(d));
	return d;
}

static void ns_tick(nameserver *ns)
{
	pthread_mutex_lock(&ns->lock);
	size_t gone = ns_sweep(ns, node_clock_wall_ms());
	if (gone)
		node_debug("%zu names expired", gone);
	if (!ns->compacting && ns->records > NS_COMPACT_MIN && ns->records > 4 * (uint64_t)ns->n) {
		ns->compacting = 1;
		ns->records = 0;
		node_journal_compact(ns->journal, ns_snapshot, ns);
	}
	pthread_mutex_unlock(&ns->lock);
}

static void ns_stop(nameserver *ns)
{
	pthread_mutex_lock(&ns->lock);
	ns->stopping = 1;
	pthread_mutex_unlock(&ns->lock);
	node_journal_close(ns->journal); /* runs the last commits, which answer their calls */
	ns->journal = NULL;
	node_server_stop(ns->srv);
	ns_free_all(ns);
	pthread_mutex_destroy(&ns->lock);
}

static int ns_role_main(node_ctx *ctx, const node_args *a)
{
	nameserver ns;
	memset(&ns, 0, sizeof ns);
	ns.ctx = ctx;
	pthread_mutex_init(&ns.lock, NULL);
	node_err err = {0};
	if (ns_start(&ns, a, &err) != 0) {
		node_error("cannot start: %s", err.msg);
		ns_stop(&ns);
		return err.rc == NODE_EINVAL ? NODE_EXIT_CONFIG : NODE_EXIT_START;
	}
	node_discover *disc = ns_discovery_start(&ns);
	while (!node_stop_wait(ctx->stop, NS_TICK_MS))
		ns_tick(&ns);
	if (disc) {
		node_discover_stats ds;
		node_discover_stats_get(disc, &ds);
		node_info("discovery: %llu answers; %llu datagrams ignored as malformed or too big", (unsigned long long)ds.answered,
		    (unsigned long long)ds.ignored);
	}
	node_discover_stop(disc); /* first: no answer should point at a server that is going */
	node_info("stopping: flushing the journal");
	ns_stop(&ns);
	node_info("stopped");
	return 0;
}

const node_cmd node_cmd_nameserver = {
	.name = "nameserver",
	.summary = "run the name server: a name -> address registry with TTLs",
	.synopsis = "[--listen URL]",
	.description = "Serves register, renew, lookup, list and remove (node-nameserver(1)) on\n"
	               "roles.nameserver.listen (default tcp://127.0.0.1:7110). Entries expire after\n"
	               "their ttl_s unless renewed (roles.nameserver.default_ttl_s, 30, when a\n"
	               "register gives none; 0 never expires). Every change is journaled under\n"
	               "DATA_DIR/nameserver and replayed at start; `node ns` is the client. Unless\n"
	               "roles.nameserver.discovery is false it answers discovery broadcasts of its\n"
	               "cluster on UDP port roles.nameserver.discovery_port (7111).",
	.opts = ns_role_opts,
	.main = ns_role_main,
	.max_pos = 0,
	.role = 1,
};
