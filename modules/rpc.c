/* node rpc: serves functions and objects over JSON-RPC 2.0, on the
 * transport (each message one request or batch) and over HTTP POST, and
 * registers each object at the name server, what a Pyro4 daemon and an
 * RPyC server are. This file reads the settings, starts and stops the
 * role; the engine and the kinds are in modules/rpc/. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "core/clock.h"
#include "core/discover.h"
#include "core/log.h"
#include "rpc/rpc.h"

#define RPC_TICK_MS 200

static const node_opt rpc_role_opts[] = {
	{"listen", 'l', "URL", "transport address (default: roles.rpc.listen of this node)"},
	{"http", 0, "URL", "HTTP address, http://host:port, or \"\" for none (default: roles.rpc.http)"},
	{"object", 'o', "NAME=KIND[:K=V,...]", "serve an object (repeatable), e.g. example.chain.1=chain:this=1,next=2"},
	{"plugin", 0, "FILE.so", "load kinds from a plugin (repeatable)"},
	{"register-as", 0, "NAME", "the server's own name at the name server (default: roles.rpc.name, else rpc.NODE)"},
	{"nameserver", 0, "URL", "name server to register at; \"auto\" finds one by broadcast; \"\" registers nowhere"},
	{"replace", 0, NULL, "take over names another server registered"},
	{"no-functions", 0, NULL, "do not serve add, echo, time and sleep"},
	{NULL, 0, NULL, NULL},
};

/* ---- the transport side ---- */

static char *session_of(uint32_t pipe, char *buf, size_t n)
{
	snprintf(buf, n, "p:%u", (unsigned)pipe);
	return buf;
}

static void rpc_reply_to_call(cJSON *reply, void *arg)
{
	node_call *c = arg;
	/* REQ/REP needs an answer even for notifications: an acknowledgement. */
	node_call_reply(c, reply ? reply : node_reply_ok());
}

static void rpc_raw(node_call *c, const cJSON *msg, const node_err *bad, void *arg)
{
	rpc_server *s = arg;
	if (bad) {
		int code = bad->rc == NODE_ELIMIT ? RPC_TOO_LARGE : RPC_PARSE_ERROR;
		char text[600];
		snprintf(text, sizeof text, "%s: %s", code == RPC_PARSE_ERROR ? "parse error" : "too large", bad->msg);
		node_call_reply(c, rpc_error_response(code, text));
		return;
	}
	char session[32];
	rpc_serve(s, msg, session_of(node_call_pipe(c), session, sizeof session), rpc_reply_to_call, c);
}

static void rpc_disconnect(uint32_t pipe, void *arg)
{
	char session[32];
	rpc_objects_session_end(arg, session_of(pipe, session, sizeof session));
}

/* ---- settings ---- */

static int rpc_int(node_ctx *ctx, const char *key, int def)
{
	const cJSON *v = node_conf_mine(&ctx->conf, key);
	return cJSON_IsNumber(v) ? v->valueint : def;
}

static const char *rpc_str(node_ctx *ctx, const node_args *a, const char *opt, const char *key, const char *def)
{
	const char *v = opt ? node_args_get(a, opt) : NULL;
	if (v == NULL)
		v = cJSON_GetStringValue(node_conf_mine(&ctx->conf, key));
	return v ? v : def;
}

/* A name the name server takes. */
static int rpc_name_ok(const char *name)
{
	size_t len = strlen(name);
	return len > 0 && len <= 200 && strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/-") == len;
}

/* Add one object from its settings {name, kind, mode, concurrency, ...}. */
static int rpc_add_object(rpc_server *s, const cJSON *o, const char *where, node_err *err)
{
	const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "name"));
	const char *kind = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "kind"));
	if (!cJSON_IsObject(o) || name == NULL || kind == NULL)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "%s: expected {\"name\": NAME, \"kind\": KIND, ...}", where);
	if (!rpc_name_ok(name))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG,
		    "%s: name \"%.64s\" must be 1 to 200 characters of A-Z a-z 0-9 . _ : / -", where, name);
	if (strcmp(name, s->name) == 0 || strcmp(name, "exec") == 0)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "%s: the name %s is the server's own", where, name);
	const rpc_kind *k = rpc_kind_find(s, kind);
	if (k == NULL || k == &rpc_kind_functions || k == &rpc_kind_exec)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG,
		    "%s: unknown kind \"%.64s\" (built in: greeting, shop, chain; others come from plugins)", where, kind);
	int rc = rpc_object_add(s, name, k, o, 1, err);
	if (rc != 0)
		node_err_prefix(err, "%s: ", where);
	return rc;
}

/* "NAME=KIND[:K=V,...]" as the settings object a cluster file would give. */
static cJSON *rpc_object_flag(const char *spec, node_err *err)
{
	const char *eq = strchr(spec, '=');
	if (eq == NULL || eq == spec) {
		node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "--object %s: expected NAME=KIND[:KEY=VALUE,...]", spec);
		return NULL;
	}
	const char *colon = strchr(eq + 1, ':');
	size_t klen = colon ? (size_t)(colon - eq - 1) : strlen(eq + 1);
	cJSON *o = cJSON_CreateObject();
	char *name = strndup(spec, (size_t)(eq - spec)), *kind = strndup(eq + 1, klen);
	char *rest = colon ? strdup(colon + 1) : NULL;
	if (o && name && kind) {
		cJSON_AddStringToObject(o, "name", name);
		cJSON_AddStringToObject(o, "kind", kind);
	}
	char *save = NULL;
	for (char *kv = rest ? strtok_r(rest, ",", &save) : NULL; o && kv; kv = strtok_r(NULL, ",", &save)) {
		char *e = strchr(kv, '=');
		if (e == NULL || e == kv) {
			node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "--object %s: \"%s\" is not KEY=VALUE", spec, kv);
			cJSON_Delete(o);
			o = NULL;
			break;
		}
		*e = '\0';
		cJSON *v = cJSON_Parse(e + 1); /* numbers and JSON as such, anything else a string */
		cJSON_DeleteItemFromObjectCaseSensitive(o, kv);
		cJSON_AddItemToObject(o, kv, v ? v : cJSON_CreateString(e + 1));
	}
	free(name);
	free(kind);
	free(rest);
	return o;
}

static int rpc_add_objects(rpc_server *s, const node_args *a, node_err *err)
{
	const cJSON *list = node_conf_mine(&s->ctx->conf, "roles.rpc.objects"), *o;
	if (list && !cJSON_IsArray(list))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "nodes.%s.roles.rpc.objects: expected a list of objects",
		    s->node);
	int i = 0;
	cJSON_ArrayForEach(o, list) {
		char where[128];
		snprintf(where, sizeof where, "nodes.%s.roles.rpc.objects[%d]", s->node, i++);
		int rc = rpc_add_object(s, o, where, err);
		if (rc != 0)
			return rc;
	}
	for (int k = 0; k < a->nopts; k++) {
		if (strcmp(a->opt_name[k], "object") != 0)
			continue;
		cJSON *obj = rpc_object_flag(a->opt_value[k], err);
		char where[300];
		snprintf(where, sizeof where, "--object %.256s", a->opt_value[k]);
		int rc = obj ? rpc_add_object(s, obj, where, err) : NODE_EINVAL;
		cJSON_Delete(obj);
		if (rc != 0)
			return rc;
	}
	return 0;
}

static int rpc_load_plugins(rpc_server *s, const node_args *a, node_err *err)
{
	const cJSON *v;
	cJSON_ArrayForEach(v, node_conf_mine(&s->ctx->conf, "roles.rpc.plugins"))
		if (cJSON_IsString(v) && rpc_plugin_load(s, v->valuestring, err) != 0)
			return err->rc;
	for (int k = 0; k < a->nopts; k++)
		if (strcmp(a->opt_name[k], "plugin") == 0 && rpc_plugin_load(s, a->opt_value[k], err) != 0)
			return err->rc;
	return 0;
}

static int rpc_find_nameserver(rpc_server *s, const node_args *a, node_err *err)
{
	const char *flag = node_args_get(a, "nameserver");
	if (flag == NULL)
		flag = cJSON_GetStringValue(node_conf_mine(&s->ctx->conf, "roles.rpc.nameserver"));
	if (flag && flag[0] == '\0')
		return 0; /* registers nowhere, on purpose */
	node_err e = {0};
	if (node_nameserver_url(&s->ctx->conf, flag, s->nameserver, sizeof s->nameserver, &e) != 0) {
		if (flag) { /* asked for one by name: that must work */
			*err = e;
			return e.rc;
		}
		s->nameserver[0] = '\0';
		node_debug("no name server: %s", e.msg);
	}
	return 0;
}

static int rpc_settings(rpc_server *s, const node_args *a, node_err *err)
{
	node_ctx *ctx = s->ctx;
	s->node = ctx->conf.node ? ctx->conf.node : "local";
	const char *name = rpc_str(ctx, a, "register-as", "roles.rpc.name", NULL);
	if (name)
		snprintf(s->name, sizeof s->name, "%s", name);
	else
		snprintf(s->name, sizeof s->name, "rpc.%s", s->node);
	if (!rpc_name_ok(s->name))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG,
		    "the server's name \"%.64s\" must be 1 to 200 characters of A-Z a-z 0-9 . _ : / -", s->name);
	const cJSON *fn = node_conf_mine(&ctx->conf, "roles.rpc.functions");
	s->functions = !node_args_has(a, "no-functions") && !cJSON_IsFalse(fn);
	s->ttl_s = rpc_int(ctx, "roles.rpc.ttl_s", 10);
	s->replace = node_args_has(a, "replace") || cJSON_IsTrue(node_conf_mine(&ctx->conf, "roles.rpc.replace"));
	s->call_ms = rpc_int(ctx, "roles.rpc.call_timeout_ms", 30000);
	s->session_idle_ms = (int64_t)rpc_int(ctx, "roles.rpc.session_idle_s", 600) * 1000;
	return rpc_find_nameserver(s, a, err);
}

static int rpc_add_all(rpc_server *s, const node_args *a, node_err *err)
{
	int rc = rpc_load_plugins(s, a, err);
	/* The functions answer bare method names; they are there (for
	 * rpc.objects) even when add and friends are switched off. */
	if (rc == 0)
		rc = rpc_object_add(s, "", &rpc_kind_functions, NULL, 0, err);
	const cJSON *ex = node_conf_mine(&s->ctx->conf, "roles.rpc.exec");
	if (rc == 0 && cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(ex, "allow")) > 0)
		rc = rpc_object_add(s, "exec", &rpc_kind_exec, ex, 0, err);
	if (rc == 0)
		rc = rpc_add_objects(s, a, err);
	return rc;
}

static int rpc_start(rpc_server *s, const node_args *a, node_err *err)
{
	node_ctx *ctx = s->ctx;
	int rc = rpc_settings(s, a, err);
	if (rc == 0)
		rc = rpc_peers_init(s, err);
	if (rc == 0)
		rc = rpc_pool_start(&s->pool, rpc_int(ctx, "roles.rpc.max_threads", 64), err);
	if (rc == 0)
		rc = rpc_add_all(s, a, err);
	if (rc != 0)
		return rc;
	const char *url = rpc_str(ctx, a, "listen", "roles.rpc.listen", "tcp://127.0.0.1:7120");
	node_server_cfg sc = {.url = url, .role = "rpc", .node = s->node, .ops = NULL, .arg = s, .wire = &ctx->wire,
	    .on_disconnect = rpc_disconnect, .raw = rpc_raw};
	if ((rc = node_server_start(&s->srv, &sc, err)) != 0)
		return rc;
	snprintf(s->url, sizeof s->url, "%s", node_server_url(s->srv));
	node_info("listening on %s", s->url);
	const char *http = rpc_str(ctx, a, "http", "roles.rpc.http", "");
	if (http[0] && (rc = rpc_http_start(s, http, err)) != 0)
		return rc;
	return rpc_register_start(s, err);
}

/* Calls still running finish (or time out) before anything is freed. */
static void rpc_drain(rpc_server *s)
{
	atomic_store(&s->stopping, 1);
	rpc_pool_cancel_queued(s->pool);
	int64_t end = node_clock_mono_ms() + s->call_ms + 1000;
	while (atomic_load(&s->inflight) > 0 && node_clock_mono_ms() < end) {
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/* Stop in the order that answers everything before it is freed: names,
 * running calls, queued ones (cancelled), calls to other servers (failed,
 * which answers their callers), then the sockets. Returns 1 when a call
 * is still unanswered (a plugin method that does not return): then s and
 * its sockets are left to the process exit rather than freed under it. */
static int rpc_stop(rpc_server *s)
{
	rpc_register_stop(s);
	rpc_drain(s);
	rpc_pool_stop(s->pool);
	rpc_peers_free(s);
	if (atomic_load(&s->inflight) > 0) {
		node_warn("%d calls still running at the stop; leaving them to the process exit", atomic_load(&s->inflight));
		return 1;
	}
	rpc_http_stop(s);
	node_server_stop(s->srv);
	rpc_objects_free(s);
	rpc_plugins_free(s);
	pthread_mutex_destroy(&s->lock);
	return 0;
}

static int rpc_role_main(node_ctx *ctx, const node_args *a)
{
	rpc_server *s = calloc(1, sizeof *s);
	if (s == NULL) {
		node_error("cannot start: out of memory");
		return NODE_EXIT_START;
	}
	s->ctx = ctx;
	pthread_mutex_init(&s->lock, NULL);
	node_err err = {0};
	int status = 0;
	if (rpc_start(s, a, &err) != 0) {
		node_error("cannot start: %s", err.msg);
		status = err.rc == NODE_EINVAL || err.rc == NODE_EEXIST ? NODE_EXIT_CONFIG : NODE_EXIT_START;
	} else {
		int64_t last_sweep = node_clock_mono_ms();
		while (!node_stop_wait(ctx->stop, RPC_TICK_MS)) {
			rpc_register_tick(s);
			if (node_clock_mono_ms() - last_sweep > 1000) {
				rpc_objects_sweep(s, s->session_idle_ms);
				last_sweep = node_clock_mono_ms();
			}
		}
		node_info("stopping: removing names, finishing calls");
	}
	if (rpc_stop(s) == 0)
		free(s);
	if (status == 0)
		node_info("stopped");
	return status;
}

const node_cmd node_cmd_rpc = {
	.name = "rpc",
	.summary = "serve remote objects and functions over JSON-RPC 2.0 (Pyro4, RPyC)",
	.synopsis = "[--listen URL] [--http URL] [--object NAME=KIND[:K=V,...]]... [--plugin FILE.so]...\n"
	            "       [--register-as NAME] [--nameserver URL|auto] [--replace] [--no-functions]",
	.description =
	    "Serves the objects of roles.rpc.objects and --object (kinds: greeting, shop,\n"
	    "chain, and those of plugins) and the functions add, echo, time and sleep, as\n"
	    "JSON-RPC 2.0 on the transport and over HTTP POST, and registers each object at\n"
	    "the name server with a TTL its heartbeat renews. `node call` is the client;\n"
	    "node-rpc(1) has the protocol, the kinds, instance modes and plugins.",
	.opts = rpc_role_opts,
	.main = rpc_role_main,
	.max_pos = 0,
	.role = 1,
};
