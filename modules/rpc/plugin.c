/* Plugins: shared objects that add kinds of objects (rpc_plugin.h is their
 * ABI). Each plugin kind becomes an rpc_kind whose methods go through one
 * trampoline: params as JSON text in, JSON text or an error out. Methods
 * run on the pool unless marked fast, since a plugin may block; a plugin's
 * own calls to other objects (host->call) wait on a condition variable. */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/log.h"
#include "rpc/rpc.h"
#include "rpc/rpc_plugin.h"

#define PLUGIN_KINDS_MAX 64
#define PLUGIN_METHODS_MAX 256

/* What the trampoline needs to reach from a method. */
typedef struct plugin_method_ref {
	const node_rpc_plugin_method *pm;
	const node_rpc_host *host;
} plugin_method_ref;

typedef struct plugin_kind {
	rpc_kind kind;                 /* what the server sees */
	const node_rpc_plugin_kind *pk;
	const node_rpc_host *host;
	rpc_method *methods;
	plugin_method_ref *refs;
} plugin_kind;

struct rpc_plugin {
	rpc_plugin *next;
	void *dl;
	char *path;
	node_rpc_host host;
	plugin_kind *kinds;
	int nkinds;
};

/* ---- the host side: what plugins may call ---- */

typedef struct sync_call {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int done, rc;
	char *result, *error;
} sync_call;

static void sync_done(int rc, cJSON *result, const cJSON *error, const node_err *err, void *arg)
{
	(void)error;
	sync_call *sc = arg;
	char *res = rc == 0 ? cJSON_PrintUnformatted(result) : NULL;
	char *msg = rc != 0 ? strdup(err->msg) : NULL;
	cJSON_Delete(result);
	pthread_mutex_lock(&sc->lock);
	sc->rc = rc == 0 && res == NULL ? NODE_ENOMEM : rc;
	sc->result = res;
	sc->error = msg;
	sc->done = 1;
	pthread_cond_signal(&sc->cond);
	pthread_mutex_unlock(&sc->lock);
}

static int host_call(const node_rpc_host *host, const char *target, const char *method, const char *params_json,
    int timeout_ms, char **result_json, char **error)
{
	rpc_server *s = host->priv;
	*result_json = *error = NULL;
	cJSON *params = params_json ? cJSON_Parse(params_json) : cJSON_CreateArray();
	if (target == NULL || method == NULL || !(cJSON_IsArray(params) || cJSON_IsObject(params))) {
		cJSON_Delete(params);
		*error = strdup("host->call: target and method are needed, and params must be a JSON array or object");
		return -1;
	}
	sync_call sc = {.rc = 0};
	pthread_mutex_init(&sc.lock, NULL);
	pthread_cond_init(&sc.cond, NULL);
	node_err err = {0};
	/* At most the server's call limit, so that a stop can wait for it. */
	int limit = timeout_ms > 0 && timeout_ms < s->call_ms ? timeout_ms : s->call_ms;
	int rc = rpc_peer_call(s, target, method, params, limit, sync_done, &sc, &err);
	if (rc != 0) {
		*error = strdup(err.msg);
	} else {
		/* The call has its own time limit, so the callback always comes. */
		pthread_mutex_lock(&sc.lock);
		while (!sc.done)
			pthread_cond_wait(&sc.cond, &sc.lock);
		pthread_mutex_unlock(&sc.lock);
		rc = sc.rc;
		*result_json = sc.result;
		*error = sc.error;
	}
	pthread_cond_destroy(&sc.cond);
	pthread_mutex_destroy(&sc.lock);
	return rc;
}

static void host_log(const node_rpc_host *host, int level, const char *message)
{
	(void)host;
	if (level <= 0)
		node_debug("plugin: %s", message);
	else if (level == 1)
		node_info("plugin: %s", message);
	else if (level == 2)
		node_warn("plugin: %s", message);
	else
		node_error("plugin: %s", message);
}

/* ---- the trampoline ---- */

static void plugin_result_free(node_rpc_result *res)
{
	free(res->json);
	free(res->error);
	free(res->error_type);
}

static void plugin_call(rpc_req *r, void *inst, const cJSON *params)
{
	const plugin_method_ref *ref = rpc_req_method(r)->udata;
	char *text = cJSON_PrintUnformatted(params);
	if (text == NULL) {
		rpc_req_error(r, RPC_INTERNAL_ERROR, NULL, "out of memory");
		return;
	}
	node_rpc_result res = {0};
	int rc = ref->pm->fn(inst, text, &res, ref->host);
	cJSON_free(text);
	cJSON *v = NULL;
	if (rc == 0) {
		const char *end = NULL;
		v = res.json ? cJSON_ParseWithOpts(res.json, &end, 1) : NULL;
		if (v == NULL)
			rpc_req_error(r, RPC_INTERNAL_ERROR, NULL, "%s.%s returned %s", rpc_req_object(r), ref->pm->name,
			    res.json ? "text that is not JSON" : "no result");
		else
			rpc_req_result(r, v);
	} else if (res.code != 0 && res.code != RPC_APP_ERROR) {
		rpc_req_error(r, res.code, NULL, "%s", res.error ? res.error : "the method failed without a message");
	} else {
		rpc_req_fail(r, res.error_type ? res.error_type : "Error", "%s", res.error ? res.error : "the method failed without a message");
	}
	plugin_result_free(&res);
}

/* ---- kinds ---- */

static int plugin_create(void **inst, const rpc_obj_cfg *cfg, node_err *err)
{
	const plugin_kind *k = cfg->kind->udata;
	*inst = NULL;
	if (k->pk->create == NULL)
		return 0;
	/* The plugin gets its own settings, not node's keys for the object. */
	cJSON *own = cJSON_Duplicate(cfg->opts, 1);
	static const char *const node_keys[] = {"name", "kind", "mode", "concurrency", NULL};
	for (int i = 0; own && node_keys[i]; i++)
		cJSON_DeleteItemFromObjectCaseSensitive(own, node_keys[i]);
	char *settings = own ? cJSON_PrintUnformatted(own) : NULL, *why = NULL;
	cJSON_Delete(own);
	if (settings == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	*inst = k->pk->create(settings, &why, k->host);
	cJSON_free(settings);
	if (*inst == NULL) {
		node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "%s", why ? why : "the plugin could not make an instance");
		free(why);
		return NODE_EINVAL;
	}
	free(why);
	return 0;
}

static void plugin_destroy(void *inst, const rpc_kind *kind)
{
	const plugin_kind *k = kind->udata;
	if (k->pk->destroy && inst)
		k->pk->destroy(inst);
}

static int plugin_methods(plugin_kind *k, const char *path, node_err *err)
{
	int n = 0;
	while (k->pk->methods && k->pk->methods[n].name && n <= PLUGIN_METHODS_MAX)
		n++;
	if (n == 0 || n > PLUGIN_METHODS_MAX)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "plugin %s: kind %s has %s methods", path, k->pk->name,
		    n ? "too many" : "no");
	k->methods = calloc((size_t)n + 1, sizeof *k->methods);
	k->refs = calloc((size_t)n, sizeof *k->refs);
	if (k->methods == NULL || k->refs == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	for (int i = 0; i < n; i++) {
		const node_rpc_plugin_method *pm = &k->pk->methods[i];
		if (pm->fn == NULL || pm->min_args < 0 || (pm->max_args >= 0 && pm->max_args < pm->min_args))
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG,
			    "plugin %s: method %s.%s has no function or bad argument bounds", path, k->pk->name, pm->name);
		k->refs[i] = (plugin_method_ref){.pm = pm, .host = k->host};
		k->methods[i] = (rpc_method){.name = pm->name, .fn = plugin_call, .params = pm->params ? pm->params : "",
		    .min_args = pm->min_args, .max_args = pm->max_args, .flags = pm->flags & NODE_RPC_FAST ? 0 : RPC_M_BLOCKS,
		    .udata = &k->refs[i]};
	}
	return 0;
}

static void plugin_free(rpc_plugin *p)
{
	for (int i = 0; i < p->nkinds; i++) {
		free(p->kinds[i].methods);
		free(p->kinds[i].refs);
	}
	free(p->kinds);
	if (p->dl)
		dlclose(p->dl);
	free(p->path);
	free(p);
}

static int plugin_kinds(rpc_server *s, rpc_plugin *p, const node_rpc_plugin *def, node_err *err)
{
	int n = 0;
	while (def->kinds && def->kinds[n].name && n <= PLUGIN_KINDS_MAX)
		n++;
	if (n == 0 || n > PLUGIN_KINDS_MAX)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "plugin %s: %s kinds", p->path, n ? "too many" : "no");
	p->kinds = calloc((size_t)n, sizeof *p->kinds);
	if (p->kinds == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	for (int i = 0; i < n; i++) {
		const node_rpc_plugin_kind *pk = &def->kinds[i];
		int twice = 0;
		for (int k = 0; k < i; k++)
			twice |= strcmp(def->kinds[k].name, pk->name) == 0;
		if (pk->name[0] == '\0')
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "plugin %s: a kind without a name", p->path);
		if (twice || rpc_kind_find(s, pk->name) != NULL)
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "plugin %s: kind %s exists already", p->path, pk->name);
		plugin_kind *k = &p->kinds[i];
		p->nkinds = i + 1;
		*k = (plugin_kind){.pk = pk, .host = &p->host};
		int rc = plugin_methods(k, p->path, err);
		if (rc != 0)
			return rc;
		k->kind = (rpc_kind){.name = pk->name, .doc = def->name, .methods = k->methods, .create = plugin_create,
		    .destroy = plugin_destroy, .concurrent = pk->concurrent, .udata = k};
	}
	return 0;
}

static int plugin_open(rpc_plugin *p, const node_rpc_plugin **def, node_err *err)
{
	p->dl = dlopen(p->path, RTLD_NOW | RTLD_LOCAL);
	if (p->dl == NULL)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "cannot load plugin %s: %s", p->path, dlerror());
	const node_rpc_plugin *(*entry)(void);
	*(void **)&entry = dlsym(p->dl, "node_rpc_plugin_v1");
	if (entry == NULL)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG,
		    "%s is not a node rpc plugin: it exports no node_rpc_plugin_v1 (node-rpc(1), PLUGINS)", p->path);
	*def = entry();
	if (*def == NULL || (*def)->abi != NODE_RPC_PLUGIN_ABI)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "plugin %s speaks plugin ABI %d; this node speaks %d (rebuild it)",
		    p->path, *def ? (*def)->abi : -1, NODE_RPC_PLUGIN_ABI);
	return 0;
}

int rpc_plugin_load(rpc_server *s, const char *path, node_err *err)
{
	rpc_plugin *p = calloc(1, sizeof *p);
	/* dlopen searches the library path for a bare name; a user means the file. */
	size_t n = strlen(path) + 3;
	if (p && (p->path = malloc(n)) != NULL)
		snprintf(p->path, n, "%s%s", strchr(path, '/') ? "" : "./", path);
	if (p == NULL || p->path == NULL) {
		free(p);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	p->host = (node_rpc_host){.abi = NODE_RPC_PLUGIN_ABI, .call = host_call, .log = host_log, .priv = s};
	const node_rpc_plugin *def = NULL;
	int rc = plugin_open(p, &def, err);
	if (rc == 0)
		rc = plugin_kinds(s, p, def, err);
	if (rc != 0) {
		plugin_free(p);
		return rc;
	}
	p->next = s->plugins;
	s->plugins = p;
	node_info("plugin %s: %d kind%s (%s)", path, p->nkinds, p->nkinds == 1 ? "" : "s", def->name ? def->name : "");
	return 0;
}

const rpc_kind *rpc_plugin_kind_find(rpc_server *s, const char *name)
{
	for (rpc_plugin *p = s->plugins; p; p = p->next)
		for (int i = 0; i < p->nkinds; i++)
			if (strcmp(p->kinds[i].kind.name, name) == 0)
				return &p->kinds[i].kind;
	return NULL;
}

void rpc_plugins_free(rpc_server *s)
{
	while (s->plugins) {
		rpc_plugin *next = s->plugins->next;
		plugin_free(s->plugins);
		s->plugins = next;
	}
}
