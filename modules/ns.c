/* node ns register|renew|lookup|list|remove: the name server's client.
 * Usage: node ns register NAME ADDRESS [--meta JSON] [--ttl S] [--replace],
 * node ns renew NAME..., node ns lookup NAME, node ns list [PREFIX],
 * node ns remove NAME; each with --json and --nameserver URL|auto. Without
 * --nameserver the cluster file says where, or a broadcast finds it. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "core/discover.h"
#include "taskcli.h"

static const node_opt ns_opts[] = {
	{"meta", 0, "JSON", "register: a JSON object stored with the name"},
	{"ttl", 0, "S", "register: seconds until the name expires unless renewed; 0 never (default: the server's)"},
	{"replace", 0, NULL, "register: take over a name that is registered already"},
	{"nameserver", 0, "URL", "name server address, or auto to broadcast for it (default: roles.nameserver.listen, else a broadcast)"},
	{"json", 0, NULL, "machine output: JSON, one object per line"},
	{NULL, 0, NULL, NULL},
};

/* The request for the command line, or NULL after a usage error (*rc). */
static cJSON *ns_build(const taskcli *t, const node_args *a, int *rc)
{
	const char *sub = a->pos[0];
	int n = a->npos - 1;
	char **p = a->pos + 1;
	cJSON *req = NULL;
	node_err err = {0};
	*rc = 0;
	if (strcmp(sub, "register") == 0) {
		if (n != 2) {
			*rc = taskcli_usage(t, "register takes NAME ADDRESS");
			return NULL;
		}
		long long ttl = -1;
		if (node_args_int(a, "ttl", 0, 31536000, -1, &ttl, &err) != 0) {
			*rc = taskcli_usage(t, "%s", err.msg);
			return NULL;
		}
		cJSON *meta = NULL;
		const char *mt = node_args_get(a, "meta");
		if (mt && (!cJSON_IsObject(meta = cJSON_Parse(mt)))) {
			cJSON_Delete(meta);
			*rc = taskcli_usage(t, "--meta: expected a JSON object, got %s", mt);
			return NULL;
		}
		req = taskcli_req("register");
		cJSON_AddStringToObject(req, "name", p[0]);
		cJSON_AddStringToObject(req, "address", p[1]);
		if (meta)
			cJSON_AddItemToObject(req, "meta", meta);
		if (ttl >= 0)
			cJSON_AddNumberToObject(req, "ttl_s", (double)ttl);
		cJSON_AddBoolToObject(req, "replace", node_args_has(a, "replace"));
	} else if (strcmp(sub, "renew") == 0) {
		if (n < 1) {
			*rc = taskcli_usage(t, "renew takes NAME...");
			return NULL;
		}
		req = taskcli_req("renew");
		cJSON *names = cJSON_AddArrayToObject(req, "names");
		for (int i = 0; i < n; i++)
			cJSON_AddItemToArray(names, cJSON_CreateString(p[i]));
	} else if (strcmp(sub, "lookup") == 0 || strcmp(sub, "remove") == 0) {
		if (n != 1) {
			*rc = taskcli_usage(t, "%s takes NAME", sub);
			return NULL;
		}
		req = taskcli_req(sub);
		cJSON_AddStringToObject(req, "name", p[0]);
	} else if (strcmp(sub, "ping") == 0) {
		if (n != 0) {
			*rc = taskcli_usage(t, "ping takes nothing");
			return NULL;
		}
		req = taskcli_req("ping");
	} else if (strcmp(sub, "list") == 0) {
		if (n > 1) {
			*rc = taskcli_usage(t, "list takes at most one PREFIX");
			return NULL;
		}
		req = taskcli_req("list");
		if (n == 1)
			cJSON_AddStringToObject(req, "prefix", p[0]);
	} else {
		*rc = taskcli_usage(t, "unknown subcommand \"%s\" (register, renew, lookup, list, remove or ping)", sub);
	}
	if (req == NULL && *rc == 0)
		*rc = NODE_EXIT_FAIL;
	return req;
}

static void ns_expires(const cJSON *e, char *out, size_t n)
{
	if (!taskcli_has_num(e, "expires_ms")) {
		snprintf(out, n, "never");
		return;
	}
	taskcli_iso_ms((int64_t)taskcli_num(e, "expires_ms", 0), out, n);
}

static void ns_row(taskcli_table *tb, const cJSON *e)
{
	char exp[64], *meta = NULL;
	ns_expires(e, exp, sizeof exp);
	const cJSON *m = cJSON_GetObjectItemCaseSensitive(e, "meta");
	if (m)
		meta = cJSON_PrintUnformatted(m);
	const char *cells[4] = {taskcli_str(e, "name"), taskcli_str(e, "address"), exp, meta};
	taskcli_table_row(tb, cells);
	cJSON_free(meta);
}

static int ns_show(const taskcli *t, const node_args *a, const cJSON *reply)
{
	const char *sub = a->pos[0];
	if (strcmp(sub, "ping") == 0) {
		if (t->json)
			taskcli_print_json(stdout, reply);
		else
			printf("name server %s: node %s, version %s\n", t->url, taskcli_str(reply, "node"), taskcli_str(reply, "version"));
		return 0;
	}
	if (strcmp(sub, "list") == 0) {
		const cJSON *items = cJSON_GetObjectItemCaseSensitive(reply, "entries");
		static const char *const heads[] = {"NAME", "ADDRESS", "EXPIRES", "META"};
		if (taskcli_list(t, items, "no names"))
			taskcli_table_items(items, 4, "llll", heads, ns_row);
		return 0;
	}
	if (strcmp(sub, "register") == 0) {
		const cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "entry");
		if (t->json) {
			taskcli_print_json(stdout, e);
		} else {
			char exp[64];
			ns_expires(e, exp, sizeof exp);
			printf("%s -> %s (expires %s)%s\n", taskcli_str(e, "name"), taskcli_str(e, "address"), exp,
			    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "replaced")) ? ", replaced" : "");
		}
		return 0;
	}
	if (strcmp(sub, "lookup") == 0) {
		if (t->json) {
			cJSON *e = cJSON_Duplicate(reply, 1);
			cJSON_DeleteItemFromObjectCaseSensitive(e, "ok");
			taskcli_print_json(stdout, e);
			cJSON_Delete(e);
		} else {
			printf("%s\n", taskcli_str(reply, "address"));
		}
		return 0;
	}
	if (strcmp(sub, "renew") == 0) {
		const cJSON *missing = cJSON_GetObjectItemCaseSensitive(reply, "missing"), *v;
		if (t->json) {
			cJSON *o = cJSON_Duplicate(reply, 1);
			cJSON_DeleteItemFromObjectCaseSensitive(o, "ok");
			taskcli_print_json(stdout, o);
			cJSON_Delete(o);
		} else {
			cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(reply, "renewed"))
				printf("%s: renewed\n", v->valuestring);
			cJSON_ArrayForEach(v, missing)
				printf("%s: not registered\n", v->valuestring);
		}
		return cJSON_GetArraySize(missing) ? NODE_EXIT_FAIL : 0;
	}
	if (t->json) {
		fputs("{\"name\":", stdout);
		taskcli_put_jstr(stdout, a->pos[1]);
		fputs(",\"removed\":true}\n", stdout);
	} else {
		printf("%s: removed\n", a->pos[1]);
	}
	return 0;
}

static int ns_main(node_ctx *ctx, const node_args *a)
{
	taskcli t;
	taskcli_init(&t, ctx, a);
	int rc;
	cJSON *req = ns_build(&t, a, &rc);
	if (req == NULL)
		return rc;
	node_err err = {0};
	char url[1024];
	if (node_nameserver_url(&ctx->conf, node_args_get(a, "nameserver"), url, sizeof url, &err) != 0) {
		cJSON_Delete(req);
		if (err.rc == NODE_ENOTFOUND || err.rc == NODE_ELIMIT) {
			taskcli_warn(&t, "%s", err.msg);
			return NODE_EXIT_CONFIG;
		}
		return taskcli_fail(&t, &err); /* no answer to the broadcast: 5 */
	}
	cJSON *reply = NULL;
	rc = taskcli_open_url(&t, ctx, a, url, "name server");
	if (rc == 0)
		rc = taskcli_call(&t, req, &reply);
	cJSON_Delete(req);
	if (rc == 0)
		rc = ns_show(&t, a, reply);
	return taskcli_finish(&t, reply, rc);
}

const node_cmd node_cmd_ns = {
	.name = "ns",
	.summary = "register, look up, list and remove names at the name server",
	.synopsis = "register NAME ADDRESS [--meta JSON] [--ttl S] [--replace] | renew NAME... | lookup NAME |\n"
	            "       list [PREFIX] | remove NAME | ping   [--json] [--nameserver URL|auto]",
	.description =
	    "The client of `node nameserver`. register prints `NAME -> ADDRESS (expires WHEN)`;\n"
	    "lookup prints the address alone; list prints a table sorted by name (--json:\n"
	    "one entry per line); renew restarts the TTL of each name. Exit status 0 on\n"
	    "success, 1 for a remote error (not_found, exists, bad_args) or a name renew did\n"
	    "not find, 2 for a bad command line, 3 when the cluster file names no name server\n"
	    "and defaults.discovery is false, 5 when the name server did not answer or no\n"
	    "name server answered the broadcast. Without --nameserver (or with auto) and no\n"
	    "roles.nameserver in the cluster file, a UDP broadcast finds the name server\n"
	    "(node-nameserver(1), DISCOVERY).",
	.opts = ns_opts,
	.main = ns_main,
	.min_pos = 1,
	.max_pos = -1,
};
