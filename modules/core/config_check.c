/* Validation of the cluster file against the key table: every error is
 * collected with its JSON path, in document order, so `node config check`
 * can list them all; then defaults are filled and cross-key rules checked. */
#include "config_int.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* ---- error collection ---- */

typedef struct walk {
	cJSON *errs; /* strings, document order */
	int n;       /* counted apart from errs so that OOM never hides an error */
} walk;

static void walk_error(walk *w, const char *fmt, ...) NODE_PRINTF(2, 3);
static void walk_error(walk *w, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	w->n++;
	cJSON_AddItemToArray(w->errs, cJSON_CreateString(msg));
}


static void describe_bounds(char *out, size_t n, const char *what, long long min, long long max)
{
	if (min != NODE_CONF_NOMIN && max != NODE_CONF_NOMAX)
		snprintf(out, n, "%s from %lld to %lld", what, min, max);
	else if (min != NODE_CONF_NOMIN)
		snprintf(out, n, "%s >= %lld", what, min);
	else if (max != NODE_CONF_NOMAX)
		snprintf(out, n, "%s <= %lld", what, max);
	else
		snprintf(out, n, "%s", what);
}

static void describe_string(const node_conf_key *row, char *out, size_t n)
{
	if (row->max <= 0)
		snprintf(out, n, "a string");
	else if (row->min <= 0)
		snprintf(out, n, "a string of at most %lld characters", row->max);
	else if (row->min == 1)
		snprintf(out, n, "a non-empty string of at most %lld characters", row->max);
	else
		snprintf(out, n, "a string of %lld to %lld characters", row->min, row->max);
}

static void describe_enum(const char *choices, char *out, size_t n)
{
	size_t used = 0;
	const char *head = "one of ";
	for (const char *p = head; *p && used + 1 < n; p++)
		out[used++] = *p;
	for (const char *p = choices; *p && used + 2 < n; p++) {
		if (*p == '|') {
			out[used++] = ',';
			out[used++] = ' ';
		} else {
			out[used++] = *p;
		}
	}
	out[used] = '\0';
}

/* What a row accepts, as the words after "expected". */
static void describe(const node_conf_key *row, char *out, size_t n)
{
	switch (row->type) {
	case NODE_CT_OBJECT:
	case NODE_CT_MAP: snprintf(out, n, "an object"); break;
	case NODE_CT_STRING: describe_string(row, out, n); break;
	case NODE_CT_INT: describe_bounds(out, n, "an integer", row->min, row->max); break;
	case NODE_CT_NUMBER: describe_bounds(out, n, "a number", row->min, row->max); break;
	case NODE_CT_BOOL: snprintf(out, n, "true or false"); break;
	case NODE_CT_URL:
		snprintf(out, n, "a URL (tcp://host:port, tls+tcp://host:port, ipc:///path or inproc://name)");
		break;
	case NODE_CT_ENUM: describe_enum(row->choices ? row->choices : "", out, n); break;
	case NODE_CT_STRLIST: snprintf(out, n, "a list of non-empty strings (an array, or \"a,b,c\")"); break;
	case NODE_CT_HTTP: snprintf(out, n, "an HTTP address (http://host:port), or \"\" for none"); break;
	case NODE_CT_ANY: snprintf(out, n, "any JSON value"); break;
	}
}

static void type_error(walk *w, const char *path, const node_conf_key *row, const char *got)
{
	char want[256];
	describe(row, want, sizeof want);
	walk_error(w, "%s: expected %s, got %s", path, want, got);
}

static void value_error(walk *w, const char *path, const node_conf_key *row, const cJSON *v)
{
	char got[NODE_EXCERPT_LEN + 8];
	node_json_excerpt(v, got, sizeof got);
	type_error(w, path, row, got);
}

/* ---- checks by type ---- */

static int int_ok(const cJSON *v, const node_conf_key *row)
{
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return 0;
	double d = v->valuedouble;
	if (d != floor(d) || d < -9.0e18 || d > 9.0e18)
		return 0;
	long long x = (long long)d;
	return x >= row->min && x <= row->max;
}

static int number_ok(const cJSON *v, const node_conf_key *row)
{
	if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
		return 0;
	return (row->min == NODE_CONF_NOMIN || v->valuedouble >= (double)row->min) &&
	    (row->max == NODE_CONF_NOMAX || v->valuedouble <= (double)row->max);
}

static int enum_ok(const char *s, const char *choices)
{
	size_t len = strlen(s);
	for (const char *p = choices; p && *p;) {
		size_t w = strcspn(p, "|");
		if (w == len && strncmp(p, s, len) == 0)
			return 1;
		p += w;
		if (*p == '|')
			p++;
	}
	return 0;
}

static int port_ok(const char *p)
{
	if (*p == '\0' || strlen(p) > 5 || strspn(p, "0123456789") != strlen(p))
		return 0;
	return atoi(p) <= 65535;
}

/* host:port with a non-empty host ("[::1]" for IPv6) and a numeric port. */
static int hostport_ok(const char *hp)
{
	const char *colon;
	if (hp[0] == '[') {
		const char *close = strchr(hp, ']');
		if (close == NULL || close == hp + 1 || close[1] != ':')
			return 0;
		colon = close + 1;
	} else {
		colon = strrchr(hp, ':');
		if (colon == NULL || colon == hp || memchr(hp, '/', (size_t)(colon - hp)) != NULL)
			return 0;
	}
	return port_ok(colon + 1);
}

static int http_ok(const char *s)
{
	return strncmp(s, "http://", 7) == 0 && hostport_ok(s + 7);
}

static int url_ok(const char *s)
{
	if (strncmp(s, "tcp://", 6) == 0)
		return hostport_ok(s + 6);
	if (strncmp(s, "tls+tcp://", 10) == 0)
		return hostport_ok(s + 10);
	if (strncmp(s, "ipc://", 6) == 0)
		return s[6] != '\0';
	if (strncmp(s, "inproc://", 9) == 0)
		return s[9] != '\0';
	return 0;
}

static void check_string(walk *w, const char *path, const node_conf_key *row, const cJSON *v)
{
	if (!cJSON_IsString(v)) {
		value_error(w, path, row, v);
		return;
	}
	long long len = (long long)strlen(v->valuestring);
	if (row->max > 0 && (len < row->min || len > row->max)) {
		char got[64]; /* a length, never the text: it may be a secret */
		snprintf(got, sizeof got, "%lld characters", len);
		type_error(w, path, row, got);
	}
}

static int strlist_array_ok(const cJSON *v)
{
	const cJSON *e;
	cJSON_ArrayForEach(e, v)
		if (!cJSON_IsString(e) || e->valuestring[0] == '\0')
			return 0;
	return 1;
}

/* "a, b,c" -> ["a","b","c"]; NULL when an element is empty. */
static cJSON *strlist_split(const char *s)
{
	cJSON *arr = cJSON_CreateArray();
	for (const char *p = s; arr != NULL;) {
		size_t len = strcspn(p, ",");
		const char *b = p, *e = p + len;
		while (b < e && (*b == ' ' || *b == '\t'))
			b++;
		while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		char *copy = b < e ? strndup(b, (size_t)(e - b)) : NULL;
		cJSON *item = copy ? cJSON_CreateString(copy) : NULL;
		free(copy);
		if (item == NULL || !cJSON_AddItemToArray(arr, item)) {
			cJSON_Delete(item);
			cJSON_Delete(arr);
			return NULL;
		}
		if (p[len] == '\0')
			break;
		p += len + 1;
	}
	return arr;
}

/* Lists are arrays in the effective tree, whichever way the file wrote them. */
static void check_strlist(walk *w, cJSON *parent, cJSON *v, const char *path, const node_conf_key *row)
{
	if (cJSON_IsArray(v) && strlist_array_ok(v))
		return;
	cJSON *arr = cJSON_IsString(v) ? strlist_split(v->valuestring) : NULL;
	if (arr == NULL) {
		value_error(w, path, row, v);
		return;
	}
	if (!cJSON_ReplaceItemInObjectCaseSensitive(parent, v->string, arr)) {
		cJSON_Delete(arr);
		walk_error(w, "%s: out of memory", path);
	}
}

static void walk_object(walk *w, cJSON *obj, const char *path, const char *schema);

static void check_value(walk *w, cJSON *parent, cJSON *v, const char *path, const char *schema, const node_conf_key *row)
{
	switch (row->type) {
	case NODE_CT_OBJECT:
	case NODE_CT_MAP:
		if (cJSON_IsObject(v))
			walk_object(w, v, path, schema);
		else
			value_error(w, path, row, v);
		break;
	case NODE_CT_STRING: check_string(w, path, row, v); break;
	case NODE_CT_INT:
		if (!int_ok(v, row))
			value_error(w, path, row, v);
		break;
	case NODE_CT_NUMBER:
		if (!number_ok(v, row))
			value_error(w, path, row, v);
		break;
	case NODE_CT_BOOL:
		if (!cJSON_IsBool(v))
			value_error(w, path, row, v);
		break;
	case NODE_CT_URL:
		if (!cJSON_IsString(v) || !url_ok(v->valuestring))
			value_error(w, path, row, v);
		break;
	case NODE_CT_ENUM:
		if (!cJSON_IsString(v) || !enum_ok(v->valuestring, row->choices))
			value_error(w, path, row, v);
		break;
	case NODE_CT_STRLIST: check_strlist(w, parent, v, path, row); break;
	case NODE_CT_HTTP:
		if (!cJSON_IsString(v) || (v->valuestring[0] && !http_ok(v->valuestring)))
			value_error(w, path, row, v);
		break;
	case NODE_CT_ANY: break;
	}
}

static int earlier_duplicate(const cJSON *obj, const cJSON *v)
{
	for (const cJSON *e = obj->child; e != NULL && e != v; e = e->next)
		if (strcmp(e->string, v->string) == 0)
			return 1;
	return 0;
}

/* Names are path segments, so they cannot hold the separator. */
static int name_ok(const char *key)
{
	return key[0] != '\0' && strchr(key, '.') == NULL;
}

static void walk_object(walk *w, cJSON *obj, const char *path, const char *schema)
{
	int is_map = node_conf_find_row(schema)->type == NODE_CT_MAP;
	cJSON *next;
	for (cJSON *v = obj->child; v != NULL; v = next) {
		next = v->next; /* check_value may replace v */
		char cpath[NODE_CONF_PATH_LEN], cschema[NODE_CONF_PATH_LEN];
		node_conf_path_join(cpath, sizeof cpath, path, v->string);
		if (earlier_duplicate(obj, v)) {
			walk_error(w, "%s: duplicate key", cpath);
			continue;
		}
		if (is_map && !name_ok(v->string)) {
			walk_error(w, "%s: \"%s\" is not a usable name (names are non-empty and contain no '.')",
			    path[0] ? path : "(top level)", v->string);
			continue;
		}
		node_conf_path_join(cschema, sizeof cschema, schema, is_map ? "*" : v->string);
		const node_conf_key *row = node_conf_find_row(cschema);
		if (row == NULL) {
			char known[400];
			node_conf_known_keys(schema, known, sizeof known);
			walk_error(w, "%s: unknown key (known keys here: %s)", cpath, known[0] ? known : "none");
			continue;
		}
		check_value(w, obj, v, cpath, cschema, row);
	}
}

/* ---- cross checks ---- */

typedef struct url_seen {
	char path[NODE_CONF_PATH_LEN];
	const char *url;
} url_seen;

static void collect_urls(const cJSON *obj, const char *path, const char *schema, url_seen *seen, int *n, int cap)
{
	const cJSON *v;
	cJSON_ArrayForEach(v, obj) {
		char cpath[NODE_CONF_PATH_LEN], cschema[NODE_CONF_PATH_LEN];
		node_conf_path_join(cpath, sizeof cpath, path, v->string);
		node_conf_schema_child(cschema, sizeof cschema, schema, v->string);
		const node_conf_key *row = node_conf_find_row(cschema);
		if (row == NULL)
			continue;
		if (cJSON_IsObject(v))
			collect_urls(v, cpath, cschema, seen, n, cap);
		else if (row->type == NODE_CT_URL && cJSON_IsString(v) && *n < cap) {
			snprintf(seen[*n].path, sizeof seen[*n].path, "%s", cpath);
			seen[(*n)++].url = v->valuestring;
		}
	}
}

/* Two roles of one node cannot listen on one address. */
static void check_node_urls(walk *w, const cJSON *node)
{
	enum { CAP = 64 };
	url_seen *seen = calloc(CAP, sizeof *seen);
	if (seen == NULL) {
		walk_error(w, "nodes.%s: out of memory", node->string);
		return;
	}
	char path[NODE_CONF_PATH_LEN];
	int n = 0;
	node_conf_path_join(path, sizeof path, "nodes", node->string);
	collect_urls(node, path, "nodes.*", seen, &n, CAP);
	for (int i = 1; i < n; i++)
		for (int j = 0; j < i; j++)
			if (strcmp(seen[i].url, seen[j].url) == 0) {
				walk_error(w, "%s: %s is already used by %s (each role needs its own address)",
				    seen[i].path, seen[i].url, seen[j].path);
				break;
			}
	free(seen);
}

static void check_cluster(walk *w, const cJSON *root)
{
	const cJSON *nodes = cJSON_GetObjectItemCaseSensitive(root, "nodes");
	if (nodes == NULL)
		walk_error(w, "nodes: required: describe at least one node (\"nodes\": {\"local\": {}})");
	else if (cJSON_IsObject(nodes) && nodes->child == NULL)
		walk_error(w, "nodes: describe at least one node (\"nodes\": {\"local\": {}})");
	if (cJSON_HasObjectItem(root, "secret") && cJSON_HasObjectItem(root, "secret_file"))
		walk_error(w, "secret_file: set either secret or secret_file, not both");
}

static void check_effective(walk *w, const cJSON *root)
{
	const cJSON *node;
	cJSON_ArrayForEach(node, cJSON_GetObjectItemCaseSensitive(root, "nodes"))
		check_node_urls(w, node);
}

/* ---- whole documents and single values ---- */

static void line_col(const char *text, const char *at, int *line, int *col)
{
	*line = 1;
	*col = 1;
	for (const char *p = text; *p && p < at; p++) {
		if (*p == '\n') {
			(*line)++;
			*col = 1;
		} else {
			(*col)++;
		}
	}
}

static cJSON *parse_json(walk *w, const char *text)
{
	const char *end = NULL;
	cJSON *root = cJSON_ParseWithOpts(text, &end, 1);
	if (root != NULL)
		return root;
	if (text[strspn(text, " \t\r\n")] == '\0') {
		walk_error(w, "empty file (expected a JSON object)");
		return NULL;
	}
	int line, col;
	line_col(text, end ? end : text, &line, &col);
	walk_error(w, "malformed JSON at line %d, column %d", line, col);
	return NULL;
}

static void validate(walk *w, cJSON *root, node_err *err)
{
	if (!cJSON_IsObject(root)) {
		char got[NODE_EXCERPT_LEN + 8];
		node_json_excerpt(root, got, sizeof got);
		walk_error(w, "expected a JSON object at the top level, got %s", got);
		return;
	}
	walk_object(w, root, "", "");
	check_cluster(w, root);
	if (w->n > 0)
		return;
	if (node_conf_fill_defaults(root, err) != 0) {
		walk_error(w, "%s", err->msg);
		return;
	}
	check_effective(w, root);
}

static int parse_failed(walk *w, const char *source, cJSON **errors, node_err *err)
{
	const char *first = cJSON_GetStringValue(cJSON_GetArrayItem(w->errs, 0));
	node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "%s: %s", source, first ? first : "invalid (out of memory)");
	if (errors != NULL)
		*errors = w->errs;
	else
		cJSON_Delete(w->errs);
	return NODE_EINVAL;
}

int node_conf_check_text(const char *text, const char *source, cJSON **root, cJSON **errors, node_err *err)
{
	walk w = { cJSON_CreateArray(), 0 };
	if (w.errs == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "%s: out of memory", source);
	cJSON *doc = parse_json(&w, text);
	if (doc != NULL)
		validate(&w, doc, err);
	if (w.n > 0) {
		cJSON_Delete(doc);
		return parse_failed(&w, source, errors, err);
	}
	cJSON_Delete(w.errs);
	*root = doc;
	return 0;
}

int node_conf_check_value(const char *path, cJSON **value, node_err *err)
{
	char schema[NODE_CONF_PATH_LEN], parent[NODE_CONF_PATH_LEN];
	const char *last = strrchr(path, '.');
	snprintf(parent, sizeof parent, "%.*s", last ? (int)(last - path) : 0, path);
	const node_conf_key *row = node_conf_key_find(path);
	if (row == NULL) {
		const node_conf_key *prow = parent[0] ? node_conf_key_find(parent) : &node_conf_root_row;
		char known[400] = "";
		if (prow != NULL)
			node_conf_known_keys(prow->path, known, sizeof known);
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "%s: unknown key (known keys here: %s)", path, known[0] ? known : "none");
	}
	snprintf(schema, sizeof schema, "%s", row->path);
	/* Boxed as in a file, so that a list written "a,b" can become an array. */
	cJSON *box = cJSON_CreateObject();
	if (box == NULL || !cJSON_AddItemToObject(box, last ? last + 1 : path, *value)) {
		cJSON_Delete(box);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	walk w = { cJSON_CreateArray(), 0 };
	check_value(&w, box, box->child, path, schema, row);
	*value = cJSON_DetachItemViaPointer(box, box->child);
	cJSON_Delete(box);
	const char *first = cJSON_GetStringValue(cJSON_GetArrayItem(w.errs, 0));
	int rc = w.n == 0 ? 0 : node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "%s", first ? first : "invalid value (out of memory)");
	cJSON_Delete(w.errs);
	return rc;
}

