/* The chain of Pyro's examples: objects that pass a message on to the next
 * one by name until it comes back to where it started. The call to the
 * next object is made without blocking a thread (the answer comes back in
 * a callback), so any topology, cycles included, cannot deadlock: a call
 * waits only for the time limit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "rpc/rpc.h"

#define CHAIN_NAME_MAX 200

typedef struct chain {
	char this_name[64];
	char next_object[CHAIN_NAME_MAX + 64]; /* the next object's full name */
	char next_name[64];
} chain;

static int chain_opt(const cJSON *opts, const char *key, char *out, size_t n, node_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(opts, key);
	if (cJSON_IsNumber(v) && v->valuedouble == (double)(long long)v->valuedouble) { /* this=1 on a command line */
		snprintf(out, n, "%lld", (long long)v->valuedouble);
		return 0;
	}
	if (!cJSON_IsString(v) || v->valuestring[0] == '\0' || strlen(v->valuestring) >= n)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "a chain needs \"%s\": a string of 1 to %zu bytes", key, n - 1);
	snprintf(out, n, "%s", v->valuestring);
	return 0;
}

static int chain_create(void **inst, const rpc_obj_cfg *cfg, node_err *err)
{
	chain *c = calloc(1, sizeof *c);
	if (c == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	char prefix[CHAIN_NAME_MAX + 1];
	const char *dot = strrchr(cfg->name, '.');
	snprintf(prefix, sizeof prefix, "%.*s", dot ? (int)(dot - cfg->name + 1) : 0, cfg->name);
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(cfg->opts, "prefix");
	int rc = chain_opt(cfg->opts, "this", c->this_name, sizeof c->this_name, err);
	if (rc == 0)
		rc = chain_opt(cfg->opts, "next", c->next_name, sizeof c->next_name, err);
	if (rc == 0 && p && chain_opt(cfg->opts, "prefix", prefix, sizeof prefix, err) != 0)
		rc = NODE_EINVAL;
	if (rc != 0) {
		free(c);
		return rc;
	}
	snprintf(c->next_object, sizeof c->next_object, "%s%s", prefix, c->next_name);
	*inst = c;
	return 0;
}

static void chain_destroy(void *inst, const rpc_kind *kind)
{
	(void)kind;
	free(inst);
}

typedef struct chain_hop {
	rpc_req *r;
	char this_name[64];
} chain_hop;

static void chain_back(int rc, cJSON *result, const cJSON *error, const node_err *err, void *arg)
{
	chain_hop *h = arg;
	rpc_req *r = h->r;
	if (rc != 0) {
		const cJSON *code = cJSON_GetObjectItemCaseSensitive(error, "code");
		int c = cJSON_IsNumber(code) ? code->valueint : err->rc == NODE_ETIMEDOUT ? RPC_TIMEOUT : RPC_UNAVAILABLE;
		rpc_req_error(r, c, NULL, "%s: %s", h->this_name, err->msg);
	} else if (!cJSON_IsArray(result)) {
		rpc_req_fail(r, "TypeError", "%s: the next object answered with something other than a list", h->this_name);
	} else {
		char line[128];
		snprintf(line, sizeof line, "passed on from %s", h->this_name);
		cJSON *first = cJSON_CreateString(line);
		if (first && cJSON_InsertItemInArray(result, 0, first)) {
			rpc_req_result(r, result);
			result = NULL;
		} else {
			cJSON_Delete(first);
			rpc_req_error(r, RPC_INTERNAL_ERROR, NULL, "out of memory");
		}
	}
	cJSON_Delete(result);
	free(h);
}

static int message_has(const cJSON *message, const char *name)
{
	const cJSON *v;
	cJSON_ArrayForEach(v, message)
		if (cJSON_IsString(v) && strcmp(v->valuestring, name) == 0)
			return 1;
	return 0;
}

static void chain_process(rpc_req *r, void *inst, const cJSON *params)
{
	chain *c = inst;
	const cJSON *message = cJSON_GetArrayItem(params, 0);
	if (!cJSON_IsArray(message)) {
		rpc_req_error(r, RPC_INVALID_PARAMS, NULL, "invalid params: process takes a list of strings");
		return;
	}
	if (message_has(message, c->this_name)) {
		node_info("Back at %s; the chain is closed!", c->this_name);
		char line[128];
		snprintf(line, sizeof line, "complete at %s", c->this_name);
		cJSON *out = cJSON_CreateArray();
		if (out)
			cJSON_AddItemToArray(out, cJSON_CreateString(line));
		rpc_req_result(r, out);
		return;
	}
	node_info("%s forwarding the message to the object %s", c->this_name, c->next_name);
	cJSON *params_next = cJSON_CreateArray();
	cJSON *msg = cJSON_Duplicate(message, 1);
	chain_hop *h = calloc(1, sizeof *h);
	if (params_next == NULL || msg == NULL || h == NULL || !cJSON_AddItemToArray(msg, cJSON_CreateString(c->this_name))) {
		cJSON_Delete(params_next);
		cJSON_Delete(msg);
		free(h);
		rpc_req_error(r, RPC_INTERNAL_ERROR, NULL, "out of memory");
		return;
	}
	cJSON_AddItemToArray(params_next, msg);
	h->r = r;
	snprintf(h->this_name, sizeof h->this_name, "%s", c->this_name);
	node_err err = {0};
	/* Leave a little of our own time limit to answer in. */
	int left = rpc_req_left_ms(r);
	if (rpc_peer_call(rpc_req_server(r), c->next_object, "process", params_next, left > 20 ? left - 10 : left, chain_back,
	        h, &err) != 0) {
		free(h);
		rpc_req_error(r, err.rc == NODE_ENOTFOUND ? RPC_UNAVAILABLE : RPC_INTERNAL_ERROR, NULL, "%s: %s", c->this_name, err.msg);
	}
}

static const rpc_method chain_methods[] = {
	{"process", chain_process, "message", 1, 1, 0, NULL},
	{NULL, NULL, NULL, 0, 0, 0, NULL},
};

const rpc_kind rpc_kind_chain = {
	.name = "chain",
	.doc = "process(message): passes the list on to the next object, adding this one's name",
	.methods = chain_methods,
	.create = chain_create,
	.destroy = chain_destroy,
	.concurrent = 1,
};
