/* Defaults of the cluster file: every key of the table that the file leaves
 * out gets its row's default, under every node and queue of a MAP, with URL
 * defaults moved to the node's own host. */
#include "config_int.h"

#include <stdio.h>
#include <string.h>

/* "tcp://127.0.0.1:7100" on a node with host 10.0.0.1 -> "tcp://10.0.0.1:7100". */
static cJSON *default_value(const node_conf_key *row, const cJSON *node)
{
	cJSON *v = cJSON_Parse(row->def);
	const char *host = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(node, "host"));
	const char *at = v && row->type == NODE_CT_URL && cJSON_IsString(v) && host ? strstr(v->valuestring, "://127.0.0.1:") : NULL;
	if (at == NULL)
		return v;
	int v6 = strchr(host, ':') != NULL;
	char url[512];
	snprintf(url, sizeof url, "%.*s://%s%s%s%s", (int)(at - v->valuestring), v->valuestring,
	    v6 ? "[" : "", host, v6 ? "]" : "", at + strlen("://127.0.0.1"));
	cJSON_Delete(v);
	return cJSON_CreateString(url);
}

/* Give obj (and, through "*", every child of a MAP) the default of row. */
static int fill_at(cJSON *obj, const char *rest, const node_conf_key *row, const cJSON *node)
{
	if (!cJSON_IsObject(obj))
		return 0;
	size_t len = strcspn(rest, ".");
	if (rest[len] == '\0') {
		if (cJSON_GetObjectItemCaseSensitive(obj, rest) != NULL)
			return 0;
		cJSON *v = default_value(row, node);
		if (v == NULL || !cJSON_AddItemToObject(obj, rest, v)) {
			cJSON_Delete(v);
			return NODE_ENOMEM;
		}
		return 0;
	}
	char seg[NODE_CONF_PATH_LEN];
	snprintf(seg, sizeof seg, "%.*s", (int)len, rest);
	if (strcmp(seg, "*") != 0)
		return fill_at(cJSON_GetObjectItemCaseSensitive(obj, seg), rest + len + 1, row, node);
	cJSON *child;
	cJSON_ArrayForEach(child, obj) {
		/* The first "*" level is a node (nodes.*): its host shapes URL defaults. */
		int rc = fill_at(child, rest + len + 1, row, node ? node : child);
		if (rc != 0)
			return rc;
	}
	return 0;
}

int node_conf_fill_defaults(cJSON *root, node_err *err)
{
	for (const node_conf_key *k = node_conf_keys; k->path; k++) {
		int rc = k->def ? fill_at(root, k->path, k, NULL) : 0;
		if (rc != 0)
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory filling the default of %s", k->path);
	}
	return 0;
}
