/* The small kinds built in: the server's functions (add, echo, time, sleep,
 * and rpc.objects, which lists what the server serves) and the greeting
 * object of Pyro's first example. The table of every built-in kind is here
 * too, so `kind` names in the cluster file find them. */
#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "rpc/rpc.h"

#define RPC_SLEEP_MAX_MS 60000

static void fn_add(rpc_req *r, void *inst, const cJSON *params)
{
	(void)inst;
	double a, b;
	if (rpc_arg_num(r, params, 0, &a) != 0 || rpc_arg_num(r, params, 1, &b) != 0)
		return;
	double sum = a + b;
	if (!isfinite(sum)) {
		rpc_req_fail(r, "OverflowError", "add: %g + %g does not fit in a double", a, b);
		return;
	}
	rpc_req_result(r, cJSON_CreateNumber(sum));
}

static void fn_echo(rpc_req *r, void *inst, const cJSON *params)
{
	(void)inst;
	rpc_req_result(r, cJSON_Duplicate(cJSON_GetArrayItem(params, 0), 1));
}

static void fn_time(rpc_req *r, void *inst, const cJSON *params)
{
	(void)inst;
	(void)params;
	int64_t ms = node_clock_wall_ms();
	time_t secs = (time_t)(ms / 1000);
	struct tm tm;
	gmtime_r(&secs, &tm);
	char iso[64];
	snprintf(iso, sizeof iso, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	    tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	cJSON *o = cJSON_CreateObject();
	if (o) {
		cJSON_AddNumberToObject(o, "unix_ms", (double)ms);
		cJSON_AddStringToObject(o, "iso", iso);
		cJSON_AddStringToObject(o, "node", rpc_req_server(r)->node ? rpc_req_server(r)->node : "");
	}
	rpc_req_result(r, o);
}

/* Runs on the pool: it blocks its thread on purpose (time-out tests, demos). */
static void fn_sleep(rpc_req *r, void *inst, const cJSON *params)
{
	(void)inst;
	double ms;
	if (rpc_arg_num(r, params, 0, &ms) != 0)
		return;
	if (!(ms >= 0 && ms <= RPC_SLEEP_MAX_MS)) {
		rpc_req_error(r, RPC_INVALID_PARAMS, NULL, "invalid params: sleep takes 0 to %d ms, not %g", RPC_SLEEP_MAX_MS, ms);
		return;
	}
	/* Never past the call's own time limit: a stop waits for running calls. */
	int left = rpc_req_left_ms(r);
	double nap = ms < left ? ms : left;
	struct timespec ts = {.tv_sec = (time_t)(nap / 1000), .tv_nsec = (long)fmod(nap, 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
	if (nap < ms)
		rpc_req_error(r, RPC_TIMEOUT, NULL, "sleep(%g) is longer than the call's time limit (%d ms left)", ms, left);
	else
		rpc_req_result(r, cJSON_CreateNumber(ms));
}

static void fn_objects(rpc_req *r, void *inst, const cJSON *params)
{
	(void)inst;
	(void)params;
	rpc_req_result(r, rpc_objects_json(rpc_req_server(r)));
}

static const rpc_method functions_methods[] = {
	{"add", fn_add, "a,b", 2, 2, 0, NULL},
	{"echo", fn_echo, "value", 1, 1, 0, NULL},
	{"time", fn_time, "", 0, 0, 0, NULL},
	{"sleep", fn_sleep, "ms", 1, 1, RPC_M_BLOCKS, NULL},
	{"rpc.objects", fn_objects, "", 0, 0, 0, NULL},
	{NULL, NULL, NULL, 0, 0, 0, NULL},
};

const rpc_kind rpc_kind_functions = {
	.name = "functions",
	.doc = "add(a, b), echo(value), time(), sleep(ms), rpc.objects()",
	.methods = functions_methods,
	.concurrent = 1,
};

/* ---- greeting ---- */

static void greeting_welcome(rpc_req *r, void *inst, const cJSON *params)
{
	(void)inst;
	const char *name;
	if (rpc_arg_str(r, params, 0, &name) != 0)
		return;
	size_t n = strlen(name) + 16;
	char *text = malloc(n);
	if (text == NULL) {
		rpc_req_error(r, RPC_INTERNAL_ERROR, NULL, "out of memory");
		return;
	}
	snprintf(text, n, "Hi welcome %s", name);
	rpc_req_result(r, cJSON_CreateString(text));
	free(text);
}

static const rpc_method greeting_methods[] = {
	{"welcomeMessage", greeting_welcome, "name", 1, 1, 0, NULL},
	{NULL, NULL, NULL, 0, 0, 0, NULL},
};

const rpc_kind rpc_kind_greeting = {
	.name = "greeting",
	.doc = "welcomeMessage(name) -> \"Hi welcome NAME\"",
	.methods = greeting_methods,
	.concurrent = 1,
};

static const rpc_kind *const builtin_kinds[] = {
	&rpc_kind_functions, &rpc_kind_greeting, &rpc_kind_shop, &rpc_kind_chain, &rpc_kind_exec, NULL,
};

const rpc_kind *rpc_kind_find(rpc_server *s, const char *name)
{
	for (int i = 0; builtin_kinds[i]; i++)
		if (strcmp(builtin_kinds[i]->name, name) == 0)
			return builtin_kinds[i];
	return rpc_plugin_kind_find(s, name);
}
