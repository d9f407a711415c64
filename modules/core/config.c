/* The cluster file as the rest of node sees it: load and parse (checked by
 * config_check.c against the table in config_keys.c), choose this node, look
 * keys up, override them from flags, and find role addresses and data dirs. */
#include "config_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "file.h"

#define CONF_FILE_MAX (16u << 20)

/* ---- parse and load ---- */

int node_conf_parse(node_conf *c, const char *text, const char *source, cJSON **errors, node_err *err)
{
	node_err scratch;
	if (err == NULL)
		err = &scratch;
	memset(c, 0, sizeof *c);
	if (errors != NULL)
		*errors = NULL;
	if (source == NULL)
		source = "(text)";
	cJSON *root = NULL;
	int rc = node_conf_check_text(text ? text : "", source, &root, errors, err);
	if (rc != 0)
		return rc;
	c->root = root;
	c->source = strdup(source);
	if (c->source == NULL) {
		node_conf_free(c);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "%s: out of memory", source);
	}
	return 0;
}

static int load_file(node_conf *c, const char *path, cJSON **errors, node_err *err)
{
	char *text = NULL;
	int rc = node_file_read(path, CONF_FILE_MAX, &text, NULL, err);
	if (rc != 0) {
		if (errors != NULL) {
			*errors = cJSON_CreateArray();
			cJSON_AddItemToArray(*errors, cJSON_CreateString(err->msg));
		}
		return rc;
	}
	rc = node_conf_parse(c, text, path, errors, err);
	free(text);
	return rc;
}

int node_conf_load(node_conf *c, const char *path, cJSON **errors, node_err *err)
{
	node_err scratch;
	if (err == NULL)
		err = &scratch;
	memset(c, 0, sizeof *c);
	if (errors != NULL)
		*errors = NULL;
	if (path != NULL && path[0] != '\0')
		return load_file(c, path, errors, err);
	const char *env = getenv("NODE_CONFIG");
	if (env != NULL && env[0] != '\0')
		return load_file(c, env, errors, err);
	if (access("node.json", F_OK) == 0)
		return load_file(c, "node.json", errors, err);
	return node_conf_parse(c, node_conf_default_text, "(embedded default)", errors, err);
}

void node_conf_free(node_conf *c)
{
	if (c == NULL)
		return;
	cJSON_Delete(c->root);
	free(c->source);
	free(c->node);
	memset(c, 0, sizeof *c);
}

/* ---- choosing this node ---- */

/* "a, b, c" */
static void node_names(const cJSON *nodes, char *out, size_t n)
{
	size_t used = 0;
	const cJSON *v;
	out[0] = '\0';
	cJSON_ArrayForEach(v, nodes) {
		if (used + 1 >= n)
			break;
		int w = snprintf(out + used, n - used, "%s%s", used ? ", " : "", v->string);
		used = w < 0 || (size_t)w >= n - used ? n - 1 : used + (size_t)w;
	}
}

static int set_node(node_conf *c, const char *name, node_err *err)
{
	char *copy = strdup(name);
	if (copy == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	free(c->node);
	c->node = copy;
	return 0;
}

static int select_named(node_conf *c, const cJSON *nodes, const char *name, const char *from, node_err *err)
{
	if (cJSON_GetObjectItemCaseSensitive(nodes, name) != NULL)
		return set_node(c, name, err);
	char names[300];
	node_names(nodes, names, sizeof names);
	return node_err_set(err, NODE_ENOTFOUND, NODE_ERR_NOT_FOUND, "%sno node \"%s\" in %s (nodes: %s)",
	    from, name, c->source, names);
}

/* The node named like this machine (full or short host name, or its host). */
static const char *host_match(const cJSON *nodes)
{
	char host[256] = "";
	if (gethostname(host, sizeof host - 1) != 0 || host[0] == '\0')
		return NULL;
	size_t shortlen = strcspn(host, ".");
	const cJSON *v;
	cJSON_ArrayForEach(v, nodes) {
		const char *h = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "host"));
		if (strcmp(v->string, host) == 0 || (strlen(v->string) == shortlen && strncmp(v->string, host, shortlen) == 0) ||
		    (h != NULL && strcmp(h, host) == 0))
			return v->string;
	}
	return NULL;
}

int node_conf_select(node_conf *c, const char *name, node_err *err)
{
	const cJSON *nodes = node_conf_get(c, "nodes");
	if (!cJSON_IsObject(nodes) || nodes->child == NULL)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "%s describes no nodes", c->source ? c->source : "the configuration");
	if (name != NULL && name[0] != '\0')
		return select_named(c, nodes, name, "", err);
	const char *env = getenv("NODE_NAME");
	if (env != NULL && env[0] != '\0')
		return select_named(c, nodes, env, "$NODE_NAME: ", err);
	if (nodes->child->next == NULL)
		return set_node(c, nodes->child->string, err);
	const char *mine = host_match(nodes);
	if (mine != NULL)
		return set_node(c, mine, err);
	char names[300];
	node_names(nodes, names, sizeof names);
	return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG,
	    "%s describes several nodes (%s); say which one this is with --name", c->source, names);
}

/* ---- lookups ---- */

/* Keys containing '.' cannot be reached: names are checked to have none. */
static cJSON *lookup(const cJSON *from, const char *path)
{
	cJSON *v = (cJSON *)from;
	char seg[NODE_CONF_PATH_LEN];
	for (const char *p = path; v != NULL && p && *p;) {
		size_t len = strcspn(p, ".");
		if (len >= sizeof seg)
			return NULL;
		memcpy(seg, p, len);
		seg[len] = '\0';
		v = cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, seg) : NULL;
		p += len;
		if (*p == '.')
			p++;
	}
	return v;
}

const cJSON *node_conf_get(const node_conf *c, const char *path)
{
	return c != NULL && c->root != NULL ? lookup(c->root, path ? path : "") : NULL;
}

const char *node_conf_str(const node_conf *c, const char *path, const char *fallback)
{
	const cJSON *v = node_conf_get(c, path);
	return cJSON_IsString(v) ? v->valuestring : fallback;
}

long long node_conf_int(const node_conf *c, const char *path, long long fallback)
{
	const cJSON *v = node_conf_get(c, path);
	return cJSON_IsNumber(v) ? (long long)v->valuedouble : fallback;
}

int node_conf_bool(const node_conf *c, const char *path, int fallback)
{
	const cJSON *v = node_conf_get(c, path);
	return cJSON_IsBool(v) ? cJSON_IsTrue(v) : fallback;
}

static const cJSON *my_node(const node_conf *c)
{
	if (c == NULL || c->node == NULL)
		return NULL;
	return cJSON_GetObjectItemCaseSensitive(node_conf_get(c, "nodes"), c->node);
}

const cJSON *node_conf_mine(const node_conf *c, const char *subpath)
{
	const cJSON *me = my_node(c);
	return me ? lookup(me, subpath ? subpath : "") : NULL;
}

/* ---- overrides ---- */

/* The object at path, creating empty objects on the way. */
static cJSON *make_path(cJSON *root, const char *path, size_t len, node_err *err)
{
	cJSON *obj = root;
	char seg[NODE_CONF_PATH_LEN];
	for (size_t i = 0; i < len;) {
		size_t n = strcspn(path + i, ".");
		if (n > len - i)
			n = len - i;
		snprintf(seg, sizeof seg, "%.*s", (int)n, path + i);
		cJSON *next = cJSON_GetObjectItemCaseSensitive(obj, seg);
		if (next == NULL && (next = cJSON_AddObjectToObject(obj, seg)) == NULL) {
			node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
			return NULL;
		}
		if (!cJSON_IsObject(next)) {
			node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "%.*s: not an object, cannot set keys under it", (int)(i + n), path);
			return NULL;
		}
		obj = next;
		i += n + 1;
	}
	return obj;
}

int node_conf_set(node_conf *c, const char *path, cJSON *value, node_err *err)
{
	if (path == NULL || path[0] == '\0' || path[strlen(path) - 1] == '.') {
		cJSON_Delete(value);
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "empty configuration key");
	}
	if (value != NULL) {
		int rc = node_conf_check_value(path, &value, err);
		if (rc != 0) {
			cJSON_Delete(value);
			return rc;
		}
	}
	if (c->root == NULL && (c->root = cJSON_CreateObject()) == NULL) {
		cJSON_Delete(value);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	const char *last = strrchr(path, '.');
	const char *key = last ? last + 1 : path;
	cJSON *parent = make_path(c->root, path, last ? (size_t)(last - path) : 0, err);
	if (parent == NULL) {
		cJSON_Delete(value);
		return err ? err->rc : NODE_EINVAL;
	}
	if (value == NULL) {
		cJSON_DeleteItemFromObjectCaseSensitive(parent, key);
		return 0;
	}
	int ok = cJSON_HasObjectItem(parent, key) ? cJSON_ReplaceItemInObjectCaseSensitive(parent, key, value)
	                                            : cJSON_AddItemToObject(parent, key, value);
	if (!ok) {
		cJSON_Delete(value);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	return node_conf_fill_defaults(c->root, err); /* a new role object gets its defaults */
}

/* ---- roles and directories ---- */

static const char *role_value(const cJSON *node, const char *role, const char *key)
{
	const cJSON *r = cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(node, "roles"), role);
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, key));
}

int node_conf_role_url(const node_conf *c, const char *role, const char *key, const char **url, node_err *err)
{
	if (key == NULL)
		key = "listen";
	const char *found = role_value(my_node(c), role, key);
	const cJSON *nodes = node_conf_get(c, "nodes");
	for (const cJSON *v = nodes ? nodes->child : NULL; v != NULL && found == NULL; v = v->next)
		found = role_value(v, role, key);
	if (found != NULL) {
		*url = found;
		return 0;
	}
	const char *name = c->node ? c->node : nodes && nodes->child ? nodes->child->string : "NAME";
	return node_err_set(err, NODE_ENOTFOUND, NODE_ERR_NOT_FOUND, "no node in %s runs the %s role (add nodes.%s.roles.%s)",
	    c->source ? c->source : "the configuration", role, name, role);
}

static int state_base(const node_conf *c, char *out, size_t n)
{
	const char *dir = cJSON_GetStringValue(node_conf_mine(c, "data_dir"));
	if (dir == NULL)
		dir = node_conf_str(c, "defaults.data_dir", NULL);
	if (dir != NULL)
		return snprintf(out, n, "%s", dir);
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	if (xdg != NULL && xdg[0] == '/')
		return snprintf(out, n, "%s/node", xdg);
	if (home != NULL && home[0] != '\0')
		return snprintf(out, n, "%s/.local/state/node", home);
	return snprintf(out, n, "/var/lib/node");
}

int node_conf_data_dir(const node_conf *c, const char *role, char *out, size_t n, node_err *err)
{
	char base[4096];
	int w = state_base(c, base, sizeof base);
	if (w < 0 || (size_t)w >= sizeof base)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "data directory path too long");
	w = role && role[0] ? snprintf(out, n, "%s/%s", base, role) : snprintf(out, n, "%s", base);
	if (w < 0 || (size_t)w >= n)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "data directory path too long: %s/%s", base, role ? role : "");
	return node_file_mkdirs(out, err);
}
