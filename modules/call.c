/* node call TARGET METHOD [ARG...]: call a method of a remote object, or a
 * function, served by `node rpc` (Pyro4's proxy from the shell), through
 * libnodeclient's proxy: the arguments from the command line, the result
 * on stdout, the server's error on stderr; --count makes it a benchmark. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "commands.h"
#include "taskcli.h"

#define CALL_COUNT_MAX 100000000LL

static const node_opt call_opts[] = {
	{"params", 'p', "JSON", "the whole params instead of ARGs: a JSON array, or an object for by-name"},
	{"oneway", 0, NULL, "send a notification: done once the server accepts it; prints nothing"},
	{"nameserver", 0, "URL", "where names are looked up, or auto to broadcast (default: roles.nameserver.listen, else a broadcast)"},
	{"count", 0, "N", "make the call N times, one after the other; calls/s and latencies on stderr"},
	{"json", 0, NULL, "every ARG is JSON text, and the result is printed as JSON"},
	{NULL, 0, NULL, NULL},
};

/* ---- the params ---- */

/* A number, true, false or null, as JSON writes them. */
static int call_is_literal(const char *s)
{
	if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0 || strcmp(s, "null") == 0)
		return 1;
	return (s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) && ncl_json_valid(s, 0);
}

/* The params of ARGs as JSON text (malloc'd), or NULL after a usage error
 * (*rc) or for none. */
static char *call_args(const taskcli *t, char **args, int n, int *rc)
{
	*rc = 0;
	if (n == 0)
		return NULL;
	cJSON *list = cJSON_CreateArray();
	for (int i = 0; list && i < n; i++) {
		if (t->json && !ncl_json_valid(args[i], 0)) {
			*rc = taskcli_usage(t, "--json: argument %d is not JSON text: %s", i + 1, args[i]);
			cJSON_Delete(list);
			return NULL;
		}
		int raw = t->json || call_is_literal(args[i]);
		cJSON *v = raw ? cJSON_CreateRaw(args[i]) : cJSON_CreateString(args[i]);
		if (v == NULL)
			break;
		cJSON_AddItemToArray(list, v);
	}
	char *text = list && cJSON_GetArraySize(list) == n ? cJSON_PrintUnformatted(list) : NULL;
	cJSON_Delete(list);
	if (text == NULL) {
		taskcli_warn(t, "out of memory");
		*rc = NODE_EXIT_FAIL;
	}
	return text;
}

/* The params from --params or the ARGs (*text NULL for none); 0 or an exit
 * status after a usage error. */
static int call_params(const taskcli *t, const node_args *a, char **text)
{
	*text = NULL;
	const char *given = node_args_get(a, "params");
	int nargs = a->npos - 2;
	if (given == NULL) {
		int rc;
		*text = call_args(t, a->pos + 2, nargs, &rc);
		return rc;
	}
	if (nargs > 0)
		return taskcli_usage(t, "give the params as ARGs or as --params, not both");
	if (!ncl_json_valid(given, '[') && !ncl_json_valid(given, '{'))
		return taskcli_usage(t, "--params: expected a JSON array or object, got %s", given);
	if ((*text = strdup(given)) == NULL) {
		taskcli_warn(t, "out of memory");
		return NODE_EXIT_FAIL;
	}
	return 0;
}

/* ---- the calls ---- */

/* The result for people: a string as it is, anything else as JSON. */
static void call_print(const taskcli *t, const char *result)
{
	if (!t->json && result[0] == '"') {
		cJSON *v = cJSON_Parse(result);
		if (cJSON_IsString(v)) {
			printf("%s\n", v->valuestring);
			cJSON_Delete(v);
			return;
		}
		cJSON_Delete(v);
	}
	printf("%s\n", result);
}

static int64_t call_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* "N calls in S s: R calls/s, p50 X us, p99 Y us" on stderr. */
static void call_figures(int64_t *us, long long n, int64_t total_us)
{
	qsort(us, (size_t)n, sizeof *us, cmp_i64);
	double s = (double)total_us / 1e6;
	fprintf(stderr, "%lld calls in %.3f s: %.0f calls/s, p50 %lld us, p99 %lld us\n", n, s, s > 0 ? (double)n / s : 0.0,
	    (long long)us[n / 2], (long long)us[(n * 99) / 100 < n ? (n * 99) / 100 : n - 1]);
}

/* Say why a call failed; the exit status. A server that went away under
 * the call (its connection reset) did not answer, as one that timed out. */
static int call_fail(const taskcli *t, const ncl_err *e)
{
	taskcli_warn(t, "%s", e->msg);
	if (e->code == NCL_ETIMEDOUT || e->code == NCL_ECLOSED || e->code == NCL_EIO)
		return NODE_EXIT_TIMEOUT;
	return e->code == NCL_EINVAL ? NODE_EXIT_USAGE : NODE_EXIT_FAIL;
}

/* Make the call count times; print the last result. */
static int call_run(const taskcli *t, ncl_proxy *p, const node_args *a, const char *params, long long count)
{
	const char *method = a->pos[1];
	int oneway = node_args_has(a, "oneway");
	int64_t *us = count > 1 ? malloc((size_t)count * sizeof *us) : NULL;
	if (count > 1 && us == NULL) {
		taskcli_warn(t, "out of memory for %lld latencies", count);
		return NODE_EXIT_FAIL;
	}
	char *result = NULL;
	ncl_err e = {0};
	int rc = 0;
	int64_t start = call_now_us();
	for (long long i = 0; i < count && rc == 0; i++) {
		int64_t t0 = us ? call_now_us() : 0;
		free(result);
		result = NULL;
		rc = oneway ? ncl_proxy_oneway(p, method, params, &e) : ncl_proxy_call(p, method, params, 0, &result, &e);
		if (us)
			us[i] = call_now_us() - t0;
	}
	int64_t total = call_now_us() - start;
	if (rc == 0 && us)
		call_figures(us, count, total);
	free(us);
	if (rc == 0 && result)
		call_print(t, result);
	free(result);
	return rc == 0 ? 0 : call_fail(t, &e);
}

/* Open the proxy; 0, or an exit status after saying why. */
static int call_open(const taskcli *t, node_ctx *ctx, const node_args *a, ncl_proxy **p)
{
	ncl_proxy_opts opts = {.nameserver = node_args_get(a, "nameserver"), .timeout_ms = ctx->timeout_ms};
	ncl_err e = {0};
	if (ncl_proxy_open_conf(p, a->pos[0], &ctx->conf, &opts, &e) == 0)
		return 0;
	if (e.code == NCL_EINVAL) /* a target nng cannot dial */
		return taskcli_usage(t, "%s", e.msg);
	if (e.code == NCL_ENOTFOUND || e.code == NCL_ELIMIT) { /* no name server in the cluster file */
		taskcli_warn(t, "%s", e.msg);
		return NODE_EXIT_CONFIG;
	}
	return call_fail(t, &e); /* no answer to the broadcast: 5 */
}

static int call_main(node_ctx *ctx, const node_args *a)
{
	taskcli t;
	taskcli_init(&t, ctx, a);
	long long count = 1;
	node_err err = {0};
	if (node_args_int(a, "count", 1, CALL_COUNT_MAX, 1, &count, &err) != 0)
		return taskcli_usage(&t, "%s", err.msg);
	char *params = NULL;
	int rc = call_params(&t, a, &params);
	ncl_proxy *p = NULL;
	if (rc == 0)
		rc = call_open(&t, ctx, a, &p);
	if (rc == 0)
		rc = call_run(&t, p, a, params, count);
	ncl_proxy_close(p);
	free(params);
	fflush(stdout);
	return rc;
}

const node_cmd node_cmd_call = {
	.name = "call",
	.summary = "call a method of a remote object or a function served by node rpc (Pyro4's proxy)",
	.synopsis = "TARGET METHOD [ARG...] [--params JSON] [--json] [--oneway] [--count N] [--nameserver URL|auto]",
	.description =
	    "TARGET is a name registered at the name server (an object, example.shop.Shop,\n"
	    "or a server, rpc.NODE, whose functions add, echo, time, sleep take bare names)\n"
	    "or an address (tcp://, ipc://, tls+tcp://) where METHOD goes as it is. An ARG\n"
	    "that is a JSON number, true, false or null is that, anything else a string\n"
	    "(put -- before negative numbers); with --json each ARG is JSON text. A string\n"
	    "result prints as it is, anything else as compact JSON (--json: always JSON).\n"
	    "The global --timeout MS bounds the call. Exit status 0 on success, 1 for the\n"
	    "method's error (\"METHOD: MESSAGE [CODE TYPE]\" on stderr) or a name the name\n"
	    "server does not know, 2 for a bad command line, 3 when no name server is\n"
	    "configured, 5 when the server or the name server did not answer (in time,\n"
	    "or at all: killed under the call).",
	.opts = call_opts,
	.main = call_main,
	.min_pos = 2,
	.max_pos = -1,
};
