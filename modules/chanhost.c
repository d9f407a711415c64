/* node chanhost: hosts named CSP channels (what PyCSP's networked channels
 * are) and pub/sub topics for processes on any machine. This file reads the
 * settings, declares the cluster file's channels, starts the server and
 * ticks time limits, the trace and the name server registration; the
 * channels themselves are in modules/chanhost/. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chanhost/chanhost.h"
#include "commands.h"
#include "core/clock.h"
#include "core/discover.h"
#include "core/log.h"
#include "core/names.h"

#define CH_TICK_MS 10
#define CH_FULL_SWEEP_MS 500

static const node_opt ch_role_opts[] = {
	{"listen", 'l', "URL", "address to listen on (default: roles.chanhost.listen of this node)"},
	{"trace", 0, "FILE", "append one JSON line per channel event to FILE (default: roles.chanhost.trace)"},
	{"nameserver", 0, "URL", "name server to register channel/NAME at; \"auto\" finds one by broadcast; \"\" registers nowhere"},
	{"replace", 0, NULL, "take over channel names another host registered"},
	{NULL, 0, NULL, NULL},
};

static int ch_conf_int(node_ctx *ctx, const char *key, int def)
{
	char path[128];
	snprintf(path, sizeof path, "roles.chanhost.%s", key);
	const cJSON *v = node_conf_mine(&ctx->conf, path);
	return cJSON_IsNumber(v) ? v->valueint : def;
}

static void ch_limits_get(node_ctx *ctx, ch_limits *lim)
{
	lim->max_channels = ch_conf_int(ctx, "max_channels", 100000);
	lim->max_clients = ch_conf_int(ctx, "max_clients", 100000);
	lim->sub_buffer = ch_conf_int(ctx, "sub_buffer", 10000);
	lim->max_park_ms = ch_conf_int(ctx, "max_park_ms", 20000);
	lim->idle_s = ch_conf_int(ctx, "idle_s", 60);
	lim->create = !cJSON_IsFalse(node_conf_mine(&ctx->conf, "roles.chanhost.create"));
	lim->max_parked = ch_conf_int(ctx, "max_parked", 100000);
	/* Room for the answer's own fields and signature beside its values. */
	size_t max = ctx->wire.limits.max_message;
	lim->max_reply = max > 8192 ? max - 4096 : max / 2;
}

/* roles.chanhost.channels: [{"name", "kind", "capacity"}], checked by the
 * config schema; a name given twice with different kinds is an error. */
static int ch_declare(ch_host *h, node_ctx *ctx, node_err *err)
{
	const cJSON *list = node_conf_mine(&ctx->conf, "roles.chanhost.channels");
	const cJSON *d;
	cJSON_ArrayForEach(d, list) {
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "name"));
		const char *k = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, "kind"));
		const cJSON *cap = cJSON_GetObjectItemCaseSensitive(d, "capacity");
		ch_kind kind = CH_ANY2ANY;
		if (name == NULL || !ch_name_ok(name) || (k && ch_kind_parse(k, &kind) != 0))
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG,
			    "roles.chanhost.channels: each needs a name (A-Z a-z 0-9 . _ : / -) and a kind any2any, one2one, one2any or any2one");
		ch_chan *ch;
		int created;
		int rc = ch_chan_create(h, name, kind, cJSON_IsNumber(cap) ? cap->valueint : 0, 1, &ch, &created, err);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int ch_trace_open(ch_host *h, node_ctx *ctx, const node_args *a, node_err *err)
{
	const char *path = node_args_get(a, "trace");
	if (path == NULL)
		path = cJSON_GetStringValue(node_conf_mine(&ctx->conf, "roles.chanhost.trace"));
	if (path == NULL || path[0] == 0)
		return 0;
	h->trace = fopen(path, "a");
	if (h->trace == NULL)
		return node_err_set(err, NODE_EIO, NODE_ERR_BAD_CONFIG, "cannot open the trace file %s: %m", path);
	return 0;
}

static void ch_on_disconnect(uint32_t pipe, void *arg)
{
	ch_disconnect(arg, pipe);
}

typedef struct ch_role {
	ch_host host;
	node_server *srv;
	node_ctx *ctx;
	node_names *names;       /* NULL: registers nowhere */
	pthread_t names_thread;  /* ticks names: registering many must not delay time limits */
	int names_started;
	node_stop names_stop;
} ch_role;

/* ---- channel/NAME at the name server ---- */

static void ch_name_of(const ch_chan *ch, char *out, size_t n)
{
	snprintf(out, n, "channel/%s", ch->name);
}

static void ch_on_create(const ch_chan *ch, void *arg)
{
	ch_role *r = arg;
	char name[CH_NAME_MAX + 16];
	ch_name_of(ch, name, sizeof name);
	cJSON *meta = cJSON_CreateObject();
	cJSON_AddStringToObject(meta, "kind", "channel");
	cJSON_AddStringToObject(meta, "channel_kind", ch_kind_name(ch->kind));
	cJSON_AddNumberToObject(meta, "capacity", ch->capacity);
	node_err e = {0};
	if (node_names_add(r->names, name, meta, &e) != 0)
		node_warn("%s will not be found by name: %s", name, e.msg);
	cJSON_Delete(meta);
}

static void ch_on_delete(const ch_chan *ch, void *arg)
{
	ch_role *r = arg;
	char name[CH_NAME_MAX + 16];
	ch_name_of(ch, name, sizeof name);
	node_names_drop(r->names, name);
}

static void ch_add_existing(void *v, void *arg)
{
	ch_on_create(v, arg);
}

static void *ch_names_loop(void *arg)
{
	ch_role *r = arg;
	node_log_set_role("chanhost");
	node_err e = {0};
	while (!node_stop_wait(&r->names_stop, 200))
		while (node_names_tick(r->names, &e) == NODE_EEXIST)
			node_error("%s", e.msg);
	return NULL;
}

static int ch_names_url(ch_role *r, const node_args *a, char *url, size_t n, node_err *err)
{
	const char *flag = node_args_get(a, "nameserver");
	if (flag == NULL)
		flag = cJSON_GetStringValue(node_conf_mine(&r->ctx->conf, "roles.chanhost.nameserver"));
	url[0] = 0;
	if (flag && flag[0] == 0)
		return 0; /* registers nowhere, on purpose */
	node_err e = {0};
	if (node_nameserver_url(&r->ctx->conf, flag, url, n, &e) != 0) {
		url[0] = 0;
		if (flag) { /* asked for one by name: that must work */
			*err = e;
			return e.rc;
		}
		node_debug("no name server: %s", e.msg);
	}
	return 0;
}

/* Register every channel, those declared now and those made later. A
 * declared channel another host holds fails the start, as for rpc. */
static int ch_names_start(ch_role *r, const node_args *a, node_err *err)
{
	char url[1024];
	int rc = ch_names_url(r, a, url, sizeof url, err);
	if (rc != 0 || url[0] == 0)
		return rc;
	node_names_cfg nc = {.nameserver = url, .wire = &r->ctx->wire, .address = node_server_url(r->srv),
	    .ttl_s = ch_conf_int(r->ctx, "ttl_s", 10),
	    .replace = node_args_get(a, "replace") != NULL || cJSON_IsTrue(node_conf_mine(&r->ctx->conf, "roles.chanhost.replace")),
	    .timeout_ms = r->ctx->timeout_ms, .max_names = (size_t)r->host.lim.max_channels, .budget_ms = 100, .quiet = 1};
	if ((rc = node_names_open(&r->names, &nc, err)) != 0)
		return rc;
	ch_lock(&r->host);
	ch_table_each(r->host.chans, ch_add_existing, r);
	r->host.on_create = ch_on_create;
	r->host.on_delete = ch_on_delete;
	r->host.hook_arg = r;
	ch_unlock(&r->host);
	if ((rc = node_names_tick(r->names, err)) != 0)
		return rc;
	node_info("channels register at the name server %s as channel/NAME", url);
	node_stop_init(&r->names_stop);
	if (pthread_create(&r->names_thread, NULL, ch_names_loop, r) != 0)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "cannot start a thread");
	r->names_started = 1;
	return 0;
}

static int ch_start(ch_role *r, const node_args *a, node_err *err)
{
	node_ctx *ctx = r->ctx;
	ch_limits lim;
	ch_limits_get(ctx, &lim);
	int rc = ch_host_init(&r->host, &lim, err);
	if (rc == 0)
		rc = ch_trace_open(&r->host, ctx, a, err);
	if (rc == 0)
		rc = ch_declare(&r->host, ctx, err);
	if (rc != 0)
		return rc;
	const char *url = node_args_get(a, "listen");
	if (url == NULL)
		url = cJSON_GetStringValue(node_conf_mine(&ctx->conf, "roles.chanhost.listen"));
	if (url == NULL)
		url = "tcp://127.0.0.1:7130";
	/* The server's own bound above ours, so ours answers "limit" first. */
	node_server_cfg sc = {.url = url, .role = "chanhost", .node = ctx->conf.node, .ops = ch_ops, .arg = &r->host,
	    .wire = &ctx->wire, .on_disconnect = ch_on_disconnect, .max_parked = lim.max_parked + 1024};
	rc = node_server_start(&r->srv, &sc, err);
	if (rc != 0)
		return rc;
	node_info("listening on %s", node_server_url(r->srv));
	return ch_names_start(r, a, err);
}

static void ch_fail_all(ch_host *h)
{
	ch_lock(h);
	h->stopping = 1;
	while (h->parked)
		ch_waiter_fail(h, h->parked, NODE_ERR_SHUTDOWN, "the channel host is stopping");
	ch_unlock(h);
}

/* Names go last: the server's handlers may add them until it stopped. */
static void ch_stop(ch_role *r)
{
	if (r->names_started) {
		node_stop_request(&r->names_stop);
		pthread_join(r->names_thread, NULL);
	}
	if (r->srv) {
		ch_fail_all(&r->host);
		node_server_stop(r->srv);
	}
	node_names_close(r->names);
	if (r->host.trace) {
		ch_trace(&r->host, "trace_end", NULL, NULL, -1, 0);
		fclose(r->host.trace);
		r->host.trace = NULL;
	}
	if (r->host.chans)
		ch_host_fini(&r->host);
}

static void ch_loop(ch_role *r)
{
	int64_t last_full = node_clock_mono_ms();
	while (!node_stop_wait(r->ctx->stop, CH_TICK_MS)) {
		int64_t now = node_clock_mono_ms();
		int full = now - last_full >= CH_FULL_SWEEP_MS;
		if (full)
			last_full = now;
		ch_lock(&r->host);
		ch_sweep(&r->host, now, full);
		ch_trace_flush(&r->host);
		ch_unlock(&r->host);
	}
}

static int ch_role_main(node_ctx *ctx, const node_args *a)
{
	ch_role *r = calloc(1, sizeof *r);
	if (r == NULL) {
		node_error("cannot start: out of memory");
		return NODE_EXIT_START;
	}
	r->ctx = ctx;
	node_err err = {0};
	int status = 0;
	if (ch_start(r, a, &err) != 0) {
		node_error("cannot start: %s", err.msg);
		status = err.rc == NODE_EINVAL || err.rc == NODE_EEXIST ? NODE_EXIT_CONFIG : NODE_EXIT_START;
	} else {
		ch_loop(r);
		node_info("stopping: parked calls are answered \"shutting_down\"");
	}
	ch_stop(r);
	free(r);
	if (status == 0)
		node_info("stopped");
	return status;
}

const node_cmd node_cmd_chanhost = {
	.name = "chanhost",
	.summary = "host named CSP channels and pub/sub topics (PyCSP networked channels)",
	.synopsis = "[--listen URL] [--trace FILE] [--nameserver URL|auto] [--replace]",
	.description =
	    "Hosts the channels of roles.chanhost.channels and any channel a client names\n"
	    "(created on first use, any-to-any rendezvous): write, read, poison, retire and\n"
	    "alternation, parked until they can complete, and publish/subscribe topics.\n"
	    "`node chan`, `node pub`, `node sub` and the C API <node/csp.h> are its clients;\n"
	    "node-chanhost(1) says what a completed write guarantees.",
	.opts = ch_role_opts,
	.main = ch_role_main,
	.max_pos = 0,
	.role = 1,
};
