/* The example plugin of `node rpc`, to copy: kind "counter", a number whose calls
 * node serializes, with relay() making a nested call through the host; kind "kv",
 * a string -> JSON map taking concurrent calls, so it locks itself. See README. */
#define _POSIX_C_SOURCE 200809L /* strdup, with -std=c11 */

#include <cjson/cJSON.h>
#include <node/rpc_plugin.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define COUNT_MAX 9007199254740992LL /* 2^53: beyond it a JSON number (a double) is no longer exact */
#define KV_KEYS_MAX 10000            /* keys per kv instance */
#define KV_KEY_MAX 256               /* bytes in a key */

/* ---- answering: every string handed to node is malloc'd, node frees it ---- */

__attribute__((format(printf, 4, 5))) static int fail(node_rpc_result *out, int code, const char *type, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	out->error = n >= 0 ? malloc((size_t)n + 1) : NULL;
	if (out->error) {
		va_start(ap, fmt);
		vsnprintf(out->error, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	out->error_type = type ? strdup(type) : NULL;
	out->code = code;
	return -1; /* out of memory above still fails the call: node says so without a message */
}

static int oom(node_rpc_result *out)
{
	return fail(out, -32603, NULL, "out of memory");
}

/* Takes v. The text is copied with strdup, not handed over from cJSON,
 * because node frees it with free() whatever allocator cJSON was given. */
static int ok_json(node_rpc_result *out, cJSON *v)
{
	char *text = v ? cJSON_PrintUnformatted(v) : NULL;
	cJSON_Delete(v);
	out->json = text ? strdup(text) : NULL;
	cJSON_free(text);
	return out->json ? 0 : oom(out);
}

static int ok_int(node_rpc_result *out, long long n)
{
	out->json = malloc(24);
	if (out->json == NULL)
		return oom(out);
	snprintf(out->json, 24, "%lld", n);
	return 0;
}

/* ---- reading params (always a JSON array within the method's bounds) ---- */

static cJSON *params_parse(const char *params_json, node_rpc_result *out)
{
	cJSON *p = cJSON_Parse(params_json);
	if (!cJSON_IsArray(p)) {
		cJSON_Delete(p);
		fail(out, -32603, NULL, "the params node passed are not a JSON array");
		return NULL;
	}
	return p;
}

/* 1 when v is an integer JSON can hold exactly (within 2^53). */
static int int_of(const cJSON *v, long long *n)
{
	/* written so that NaN fails too, before the cast */
	if (!cJSON_IsNumber(v) || !(v->valuedouble <= (double)COUNT_MAX && v->valuedouble >= -(double)COUNT_MAX) ||
	    v->valuedouble != (double)(long long)v->valuedouble)
		return 0;
	*n = (long long)v->valuedouble;
	return 1;
}

/* An integer argument; null or absent keeps *n. */
static int arg_int(const cJSON *v, const char *name, long long *n, node_rpc_result *out)
{
	if (v == NULL || cJSON_IsNull(v) || int_of(v, n))
		return 0;
	return fail(out, -32602, NULL, "invalid params: %s must be an integer between -2^53 and 2^53", name);
}

static int arg_str(const cJSON *v, const char *name, const char **s, node_rpc_result *out)
{
	if (!cJSON_IsString(v))
		return fail(out, -32602, NULL, "invalid params: %s must be a string", name);
	*s = v->valuestring;
	return 0;
}

/* The object's settings hold node's own keys too; anything else must be the
 * kind's own key (known), so a misspelt setting fails the start, not silently. */
static cJSON *settings_parse(const char *settings_json, const char *kind, const char *known, char **error)
{
	static const char *const node_keys[] = {"name", "kind", "mode", "concurrency", NULL};
	cJSON *s = cJSON_Parse(settings_json), *v;
	if (!cJSON_IsObject(s)) {
		cJSON_Delete(s);
		*error = strdup("the settings node passed are not a JSON object");
		return NULL;
	}
	cJSON_ArrayForEach(v, s) {
		int ok = 0;
		for (int i = 0; node_keys[i] && !ok; i++)
			ok = strcmp(v->string, node_keys[i]) == 0;
		if (ok || (known[0] && strcmp(v->string, known) == 0))
			continue;
		char msg[400];
		snprintf(msg, sizeof msg, "%s: unknown setting \"%.64s\" (it takes: %s)", kind, v->string, known[0] ? known : "none");
		*error = strdup(msg);
		cJSON_Delete(s);
		return NULL;
	}
	return s;
}

/* ---- kind "counter": node runs one call at a time (concurrent 0), so no lock ---- */

typedef struct counter {
	long long count;
} counter;

static void *counter_create(const char *settings_json, char **error, const node_rpc_host *host)
{
	cJSON *s = settings_parse(settings_json, "counter", "start", error);
	if (s == NULL)
		return NULL;
	const char *conc = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "concurrency"));
	const char *mode = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(s, "mode"));
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(s, "start");
	long long start = 0;
	counter *c = NULL;
	if (conc && strcmp(conc, "concurrent") == 0 && !(mode && strcmp(mode, "call") == 0))
		*error = strdup("counter: its count has no lock of its own, so calls must come one at a time: "
		                "leave concurrency serialized (kind kv shows a concurrent one)");
	else if (v && !int_of(v, &start))
		*error = strdup("counter: start must be an integer between -2^53 and 2^53");
	else if ((c = malloc(sizeof *c)) == NULL)
		*error = strdup("out of memory");
	else
		c->count = start;
	cJSON_Delete(s);
	if (c && host->log) {
		char msg[64];
		snprintf(msg, sizeof msg, "counter: a new instance at %lld", start);
		host->log(host, 0, msg);
	}
	return c;
}

static void counter_destroy(void *inst)
{
	free(inst);
}

static int counter_incr(void *inst, const char *params_json, node_rpc_result *out, const node_rpc_host *host)
{
	(void)host;
	counter *c = inst;
	cJSON *p = params_parse(params_json, out);
	if (p == NULL)
		return -1;
	long long by = 1;
	int rc = arg_int(cJSON_GetArrayItem(p, 0), "by", &by, out);
	cJSON_Delete(p);
	if (rc != 0)
		return rc;
	if ((by > 0 && c->count > COUNT_MAX - by) || (by < 0 && c->count < -COUNT_MAX - by))
		return fail(out, 0, "OverflowError", "incr: %lld + %lld is beyond 2^53", c->count, by);
	c->count += by;
	return ok_int(out, c->count);
}

static int counter_get(void *inst, const char *params_json, node_rpc_result *out, const node_rpc_host *host)
{
	(void)params_json, (void)host;
	return ok_int(out, ((counter *)inst)->count);
}

static int counter_reset(void *inst, const char *params_json, node_rpc_result *out, const node_rpc_host *host)
{
	(void)params_json, (void)host;
	((counter *)inst)->count = 0;
	return ok_int(out, 0);
}

/* relay(target, method[, params]): a nested call through node, to an
 * object by name or to a server by URL. It blocks, so it is not FAST; on
 * a serialized object it holds the instance while it waits, so relaying
 * to the same object waits for the call's time limit. */
static int counter_relay(void *inst, const char *params_json, node_rpc_result *out, const node_rpc_host *host)
{
	(void)inst;
	cJSON *p = params_parse(params_json, out);
	if (p == NULL)
		return -1;
	const char *target = NULL, *method = NULL;
	const cJSON *args = cJSON_GetArrayItem(p, 2);
	char *args_text = NULL;
	int rc = arg_str(cJSON_GetArrayItem(p, 0), "target", &target, out);
	if (rc == 0)
		rc = arg_str(cJSON_GetArrayItem(p, 1), "method", &method, out);
	if (rc == 0 && args && !cJSON_IsNull(args) && !cJSON_IsArray(args) && !cJSON_IsObject(args))
		rc = fail(out, -32602, NULL, "invalid params: params must be an array or an object");
	if (rc == 0 && args && !cJSON_IsNull(args) && (args_text = cJSON_PrintUnformatted(args)) == NULL)
		rc = oom(out);
	if (rc == 0) {
		char *result = NULL, *error = NULL;
		/* NULL params: no arguments; timeout 0: node's own call_timeout_ms */
		if (host->call(host, target, method, args_text, 0, &result, &error) == 0) {
			out->json = result; /* malloc'd by node, freed by node */
			result = NULL;
		} else {
			rc = fail(out, 0, "RelayError", "relay to %s %s: %s", target, method, error ? error : "failed");
		}
		free(result);
		free(error);
	}
	cJSON_free(args_text);
	cJSON_Delete(p);
	return rc;
}

static const node_rpc_plugin_method counter_methods[] = {
	{"incr", counter_incr, "by", 0, 1, NODE_RPC_FAST},
	{"get", counter_get, "", 0, 0, NODE_RPC_FAST},
	{"reset", counter_reset, "", 0, 0, NODE_RPC_FAST},
	{"relay", counter_relay, "target,method,params", 2, 3, 0},
	{NULL, NULL, NULL, 0, 0, 0},
};

/* ---- kind "kv": concurrent 1, so calls run at once and the map has its own lock ---- */

typedef struct kv_entry {
	char *key;
	char *json; /* the value as JSON text */
} kv_entry;

typedef struct kv {
	pthread_mutex_t lock;
	kv_entry *e; /* sorted by key, so keys() lists them in order */
	int n, cap;
} kv;

static void *kv_create(const char *settings_json, char **error, const node_rpc_host *host)
{
	(void)host;
	cJSON *s = settings_parse(settings_json, "kv", "", error);
	if (s == NULL)
		return NULL;
	cJSON_Delete(s);
	kv *m = calloc(1, sizeof *m);
	if (m == NULL) {
		*error = strdup("out of memory");
		return NULL;
	}
	pthread_mutex_init(&m->lock, NULL);
	return m;
}

static void kv_destroy(void *inst)
{
	kv *m = inst;
	for (int i = 0; i < m->n; i++) {
		free(m->e[i].key);
		free(m->e[i].json);
	}
	free(m->e);
	pthread_mutex_destroy(&m->lock);
	free(m);
}

/* Where key is or would go (lock held); *found says which. */
static int kv_find(const kv *m, const char *key, int *found)
{
	int lo = 0, hi = m->n;
	while (lo < hi) {
		int mid = lo + (hi - lo) / 2, c = strcmp(m->e[mid].key, key);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = 0;
	return lo;
}

enum { KV_STORED, KV_FULL, KV_NOMEM };

/* Store (key, json) (lock held); when KV_STORED the map has taken both. */
static int kv_store(kv *m, char *key, char *json)
{
	int found, at = kv_find(m, key, &found);
	if (found) {
		free(m->e[at].json);
		m->e[at].json = json;
		free(key);
		return KV_STORED;
	}
	if (m->n >= KV_KEYS_MAX)
		return KV_FULL;
	if (m->n == m->cap) {
		int cap = m->cap ? m->cap * 2 : 16;
		kv_entry *e = realloc(m->e, (size_t)cap * sizeof *e);
		if (e == NULL)
			return KV_NOMEM;
		m->e = e;
		m->cap = cap;
	}
	memmove(&m->e[at + 1], &m->e[at], (size_t)(m->n - at) * sizeof *m->e);
	m->e[at] = (kv_entry){.key = key, .json = json};
	m->n++;
	return KV_STORED;
}

static int kv_put(void *inst, const char *params_json, node_rpc_result *out, const node_rpc_host *host)
{
	(void)host;
	kv *m = inst;
	cJSON *p = params_parse(params_json, out);
	if (p == NULL)
		return -1;
	const char *key = NULL;
	int rc = arg_str(cJSON_GetArrayItem(p, 0), "key", &key, out);
	if (rc == 0 && (key[0] == '\0' || strlen(key) > KV_KEY_MAX))
		rc = fail(out, -32602, NULL, "invalid params: key must be 1 to %d bytes", KV_KEY_MAX);
	/* The copies are made before the lock, so it is held only for the store. */
	char *k = NULL, *text = NULL, *json = NULL;
	if (rc == 0 && ((k = strdup(key)) == NULL || (text = cJSON_PrintUnformatted(cJSON_GetArrayItem(p, 1))) == NULL ||
	                   (json = strdup(text)) == NULL))
		rc = oom(out);
	cJSON_free(text);
	if (rc == 0) {
		pthread_mutex_lock(&m->lock);
		int stored = kv_store(m, k, json);
		pthread_mutex_unlock(&m->lock);
		if (stored == KV_STORED)
			k = json = NULL; /* the map has them */
		else if (stored == KV_FULL)
			rc = fail(out, 0, "MemoryError", "put: the map holds %d keys already (the limit)", KV_KEYS_MAX);
		else
			rc = oom(out);
	}
	free(k);
	free(json);
	cJSON_Delete(p);
	return rc ? rc : ok_json(out, cJSON_CreateNull());
}

static int kv_get(void *inst, const char *params_json, node_rpc_result *out, const node_rpc_host *host)
{
	(void)host;
	kv *m = inst;
	cJSON *p = params_parse(params_json, out);
	if (p == NULL)
		return -1;
	const char *key = NULL;
	int rc = arg_str(cJSON_GetArrayItem(p, 0), "key", &key, out);
	if (rc == 0) {
		pthread_mutex_lock(&m->lock);
		int found, at = kv_find(m, key, &found);
		char *json = found ? strdup(m->e[at].json) : NULL;
		pthread_mutex_unlock(&m->lock);
		if (!found)
			rc = fail(out, 0, "KeyError", "no key \"%.*s\"", KV_KEY_MAX, key);
		else if (json == NULL)
			rc = oom(out);
		out->json = json;
	}
	cJSON_Delete(p);
	return rc;
}

static int kv_keys(void *inst, const char *params_json, node_rpc_result *out, const node_rpc_host *host)
{
	(void)params_json, (void)host;
	kv *m = inst;
	cJSON *a = cJSON_CreateArray();
	pthread_mutex_lock(&m->lock);
	for (int i = 0; a && i < m->n; i++) {
		cJSON *k = cJSON_CreateString(m->e[i].key);
		if (k == NULL || !cJSON_AddItemToArray(a, k)) {
			cJSON_Delete(k);
			cJSON_Delete(a);
			a = NULL;
		}
	}
	pthread_mutex_unlock(&m->lock);
	return a ? ok_json(out, a) : oom(out);
}

static const node_rpc_plugin_method kv_methods[] = {
	{"put", kv_put, "key,value", 2, 2, NODE_RPC_FAST},
	{"get", kv_get, "key", 1, 1, NODE_RPC_FAST},
	{"keys", kv_keys, "", 0, 0, NODE_RPC_FAST},
	{NULL, NULL, NULL, 0, 0, 0},
};

/* ---- the plugin ---- */

static const node_rpc_plugin_kind counter_kinds[] = {
	{"counter", counter_methods, counter_create, counter_destroy, 0},
	{"kv", kv_methods, kv_create, kv_destroy, 1},
	{NULL, NULL, NULL, NULL, 0},
};

static const node_rpc_plugin counter_plugin = {NODE_RPC_PLUGIN_ABI, "counter", counter_kinds};

const node_rpc_plugin *node_rpc_plugin_v1(void)
{
	return &counter_plugin;
}
