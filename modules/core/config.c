/* The cluster file: one table of typed keys drives validation (every error
 * collected, with its JSON path), defaults, node selection and lookups, so
 * `node config check`, `node config show` and node.json(5) agree. */
#include "config.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "file.h"

#define NOMIN LLONG_MIN
#define NOMAX LLONG_MAX
#define CONF_FILE_MAX (16u << 20)
#define SECRET_FILE_MAX 65536
#define SECRET_MIN 16
#define PATH_LEN 512
#define GOT_LEN 60

static const char BAD_CONFIG[] = "bad_config";

/* Rows are in the order `config keys` and node.json(5) list them; a parent
 * comes before its children because defaults are filled in table order.
 * INT/NUMBER bounds use NOMIN/NOMAX for "unbounded"; STRING lengths apply
 * only when max > 0. An OBJECT whose def is "{}" always exists in the
 * effective tree. */
const node_conf_key node_conf_keys[] = {
	{ "cluster", NODE_CT_STRING, 1, 255, NULL, "\"local\"",
	  "name of the cluster, shown in logs and events" },
	{ "secret", NODE_CT_STRING, SECRET_MIN, 4096, NULL, NULL,
	  "shared secret: every message is signed with HMAC-SHA256 (at least 16 characters)" },
	{ "secret_file", NODE_CT_STRING, 1, 4095, NULL, NULL,
	  "file holding the secret (trailing newline ignored; relative to the cluster file); read when a role starts" },
	{ "auth_window_ms", NODE_CT_INT, 1000, 3600000, NULL, "30000",
	  "clock skew allowed between signed messages, milliseconds" },

	{ "tls", NODE_CT_OBJECT, 0, 0, NULL, NULL,
	  "TLS files for tls+tcp:// addresses (paths relative to the cluster file)" },
	{ "tls.cert", NODE_CT_STRING, 1, 4095, NULL, NULL, "PEM certificate of this node" },
	{ "tls.key", NODE_CT_STRING, 1, 4095, NULL, NULL, "PEM private key of the certificate" },
	{ "tls.ca", NODE_CT_STRING, 1, 4095, NULL, NULL, "PEM certificate of the CA that signs peers" },
	{ "tls.server_name", NODE_CT_STRING, 1, 255, NULL, NULL, "name clients expect in the server's certificate" },
	{ "tls.require_client_cert", NODE_CT_BOOL, 0, 0, NULL, "false",
	  "servers refuse clients without a certificate signed by tls.ca" },

	{ "limits", NODE_CT_OBJECT, 0, 0, NULL, "{}", "hard limits on every message" },
	{ "limits.max_message", NODE_CT_INT, 1024, 1073741824, NULL, "16777216",
	  "largest message in bytes, on the wire and after decompression" },
	{ "limits.max_depth", NODE_CT_INT, 4, 1000, NULL, "64", "deepest nesting of objects and arrays" },
	{ "limits.max_string", NODE_CT_INT, 64, 1073741824, NULL, "4194304", "longest JSON string in bytes" },
	{ "limits.compress_above", NODE_CT_INT, 0, 1073741824, NULL, "16384",
	  "compress message bodies larger than this many bytes with lz4; 0 never compresses" },

	{ "defaults", NODE_CT_OBJECT, 0, 0, NULL, "{}", "settings every node uses unless it says otherwise" },
	{ "defaults.log_level", NODE_CT_ENUM, 0, 0, "debug|info|warn|error", "\"info\"", "least severe message logged" },
	{ "defaults.log_format", NODE_CT_ENUM, 0, 0, "text|json", "\"text\"", "stderr log lines as text or JSON" },
	{ "defaults.data_dir", NODE_CT_STRING, 1, 4095, NULL, NULL,
	  "state directory (default $XDG_STATE_HOME/node, ~/.local/state/node or /var/lib/node)" },
	{ "defaults.timeout_ms", NODE_CT_INT, 1, 86400000, NULL, "5000", "how long a client waits for an answer, milliseconds" },

	{ "queues", NODE_CT_MAP, 0, 0, NULL, NULL, "queues declared with settings (others are created on first use with the defaults)" },
	{ "queues.*", NODE_CT_OBJECT, 0, 0, NULL, NULL, "one queue's settings" },
	{ "queues.*.max_length", NODE_CT_INT, 1, 1000000000, NULL, "10000000", "tasks queued or running at most; submits beyond are refused" },
	{ "queues.*.priority", NODE_CT_INT, 0, 9, NULL, "0", "priority of tasks submitted without one (0-9, higher first)" },
	{ "queues.*.result_ttl_s", NODE_CT_INT, 1, 31536000, NULL, "86400", "how long results are kept, seconds" },
	{ "queues.*.max_deliveries", NODE_CT_INT, 1, 1000, NULL, "5",
	  "deliveries without a result before a task goes to dead letters" },

	{ "nodes", NODE_CT_MAP, 0, 0, NULL, NULL, "the machines of the cluster, by name (at least one)" },
	{ "nodes.*", NODE_CT_OBJECT, 0, 0, NULL, NULL, "one node: where it is and which roles it runs" },
	{ "nodes.*.host", NODE_CT_STRING, 1, 255, NULL, NULL,
	  "address of the machine; default listen addresses use it (127.0.0.1 when unset)" },
	{ "nodes.*.data_dir", NODE_CT_STRING, 1, 4095, NULL, NULL, "state directory of this node (overrides defaults.data_dir)" },
	{ "nodes.*.roles", NODE_CT_OBJECT, 0, 0, NULL, NULL, "roles this node runs, each with its settings" },
	{ "nodes.*.roles.broker", NODE_CT_OBJECT, 0, 0, NULL, NULL, "queues, leases, durable log and results" },
	{ "nodes.*.roles.broker.listen", NODE_CT_URL, 0, 0, NULL, "\"tcp://127.0.0.1:7100\"",
	  "address the broker listens on (default port 7100 on the node's host)" },
	{ "nodes.*.roles.broker.fsync", NODE_CT_ENUM, 0, 0, "always|batch|off", "\"batch\"",
	  "when the journal is synced: every commit, every batch_ms (group commit), or never (survives kill -9, not power loss)" },
	{ "nodes.*.roles.broker.batch_ms", NODE_CT_INT, 1, 1000, NULL, "5", "group commit interval for fsync batch, milliseconds" },
	{ "nodes.*.roles.broker.lease_ms", NODE_CT_INT, 500, 3600000, NULL, "30000",
	  "a worker silent this long loses its tasks to other workers; workers heartbeat every third of it" },
	{ "nodes.*.roles.broker.segment_mb", NODE_CT_INT, 1, 4096, NULL, "64", "journal segment size in MiB" },
	{ "nodes.*.roles.broker.compact_mb", NODE_CT_INT, 1, 1048576, NULL, "256",
	  "compact the journal once it is larger than this many MiB and twice the live state" },
	{ "nodes.*.roles.worker", NODE_CT_OBJECT, 0, 0, NULL, NULL, "runs tasks from queues" },
	{ "nodes.*.roles.worker.queues", NODE_CT_STRLIST, 0, 0, NULL, "[\"default\"]", "queues this worker consumes" },
	{ "nodes.*.roles.worker.concurrency", NODE_CT_INT, 1, NOMAX, NULL, NULL,
	  "tasks run at once (default: the number of cores)" },
	{ NULL, 0, 0, 0, NULL, NULL, NULL },
};

const char node_conf_default_text[] =
	"{\n"
	"  \"cluster\": \"local\",\n"
	"  \"nodes\": {\n"
	"    \"local\": {\n"
	"      \"host\": \"127.0.0.1\",\n"
	"      \"roles\": {\n"
	"        \"broker\": { \"listen\": \"tcp://127.0.0.1:7100\" },\n"
	"        \"worker\": { \"queues\": [\"default\", \"fibo\", \"sqrt\", \"webcrawler\"] }\n"
	"      }\n"
	"    }\n"
	"  }\n"
	"}\n";

/* The document root is an object of fixed keys, like any OBJECT row. */
static const node_conf_key root_row = { "", NODE_CT_OBJECT, 0, 0, NULL, NULL, "the cluster file" };

/* ---- the table ---- */

static const node_conf_key *find_row(const char *schema)
{
	if (schema[0] == '\0')
		return &root_row;
	for (const node_conf_key *k = node_conf_keys; k->path; k++)
		if (strcmp(k->path, schema) == 0)
			return k;
	return NULL;
}

/* Over-long paths are cut short: they only appear in messages. */
static int path_join(char *out, size_t n, const char *parent, const char *key)
{
	int w = parent[0] == '\0' ? snprintf(out, n, "%s", key) : snprintf(out, n, "%s.%s", parent, key);
	return w >= 0 && (size_t)w < n;
}

/* The table path of a child: a MAP's children are all "*". */
static int schema_child(char *out, size_t n, const char *schema, const char *key)
{
	const node_conf_key *row = find_row(schema);
	return path_join(out, n, schema, row && row->type == NODE_CT_MAP ? "*" : key);
}

static const node_conf_key *key_find(const char *path)
{
	char schema[PATH_LEN] = "", next[PATH_LEN], seg[PATH_LEN];
	const char *p = path;
	while (*p) {
		size_t len = strcspn(p, ".");
		if (len == 0 || len >= sizeof seg)
			return NULL;
		memcpy(seg, p, len);
		seg[len] = '\0';
		if (!schema_child(next, sizeof next, schema, seg))
			return NULL;
		memcpy(schema, next, sizeof schema);
		p += len;
		if (*p == '.')
			p++;
	}
	return schema[0] ? find_row(schema) : NULL;
}

/* "a, b, c": the keys the table allows directly under schema. */
static void known_keys(const char *schema, char *out, size_t n)
{
	size_t plen = strlen(schema), used = 0;
	out[0] = '\0';
	for (const node_conf_key *k = node_conf_keys; k->path; k++) {
		const char *rest = k->path;
		if (plen > 0) {
			if (strncmp(k->path, schema, plen) != 0 || k->path[plen] != '.')
				continue;
			rest = k->path + plen + 1;
		}
		if (strchr(rest, '.') != NULL || used + 1 >= n)
			continue;
		int w = snprintf(out + used, n - used, "%s%s", used ? ", " : "", rest);
		used = w < 0 || (size_t)w >= n - used ? n - 1 : used + (size_t)w;
	}
}

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

/* A value as the user wrote it, cut short so one error stays one line. */
static void got_text(const cJSON *v, char *out, size_t n)
{
	char *s = cJSON_PrintUnformatted(v);
	if (s == NULL) {
		snprintf(out, n, "(a value)");
		return;
	}
	size_t len = strlen(s);
	if (len > GOT_LEN) {
		len = GOT_LEN - 3;
		while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
			len--; /* do not split a UTF-8 character */
		snprintf(out, n, "%.*s...", (int)len, s);
	} else {
		snprintf(out, n, "%s", s);
	}
	cJSON_free(s);
}

static void describe_bounds(char *out, size_t n, const char *what, long long min, long long max)
{
	if (min != NOMIN && max != NOMAX)
		snprintf(out, n, "%s from %lld to %lld", what, min, max);
	else if (min != NOMIN)
		snprintf(out, n, "%s >= %lld", what, min);
	else if (max != NOMAX)
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
	char got[GOT_LEN + 8];
	got_text(v, got, sizeof got);
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
	return (row->min == NOMIN || v->valuedouble >= (double)row->min) &&
	    (row->max == NOMAX || v->valuedouble <= (double)row->max);
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
	int is_map = find_row(schema)->type == NODE_CT_MAP;
	cJSON *next;
	for (cJSON *v = obj->child; v != NULL; v = next) {
		next = v->next; /* check_value may replace v */
		char cpath[PATH_LEN], cschema[PATH_LEN];
		path_join(cpath, sizeof cpath, path, v->string);
		if (earlier_duplicate(obj, v)) {
			walk_error(w, "%s: duplicate key", cpath);
			continue;
		}
		if (is_map && !name_ok(v->string)) {
			walk_error(w, "%s: \"%s\" is not a usable name (names are non-empty and contain no '.')",
			    path[0] ? path : "(top level)", v->string);
			continue;
		}
		path_join(cschema, sizeof cschema, schema, is_map ? "*" : v->string);
		const node_conf_key *row = find_row(cschema);
		if (row == NULL) {
			char known[400];
			known_keys(schema, known, sizeof known);
			walk_error(w, "%s: unknown key (known keys here: %s)", cpath, known[0] ? known : "none");
			continue;
		}
		check_value(w, obj, v, cpath, cschema, row);
	}
}

/* ---- defaults ---- */

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
	char seg[PATH_LEN];
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

static int fill_defaults(cJSON *root, node_err *err)
{
	for (const node_conf_key *k = node_conf_keys; k->path; k++) {
		int rc = k->def ? fill_at(root, k->path, k, NULL) : 0;
		if (rc != 0)
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory filling the default of %s", k->path);
	}
	return 0;
}

/* ---- cross checks ---- */

typedef struct url_seen {
	char path[PATH_LEN];
	const char *url;
} url_seen;

static void collect_urls(const cJSON *obj, const char *path, const char *schema, url_seen *seen, int *n, int cap)
{
	const cJSON *v;
	cJSON_ArrayForEach(v, obj) {
		char cpath[PATH_LEN], cschema[PATH_LEN];
		path_join(cpath, sizeof cpath, path, v->string);
		schema_child(cschema, sizeof cschema, schema, v->string);
		const node_conf_key *row = find_row(cschema);
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
	char path[PATH_LEN];
	int n = 0;
	path_join(path, sizeof path, "nodes", node->string);
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

/* ---- parse and load ---- */

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
		char got[GOT_LEN + 8];
		got_text(root, got, sizeof got);
		walk_error(w, "expected a JSON object at the top level, got %s", got);
		return;
	}
	walk_object(w, root, "", "");
	check_cluster(w, root);
	if (w->n > 0)
		return;
	if (fill_defaults(root, err) != 0) {
		walk_error(w, "%s", err->msg);
		return;
	}
	check_effective(w, root);
}

static int parse_failed(walk *w, const char *source, cJSON **errors, node_err *err)
{
	const char *first = cJSON_GetStringValue(cJSON_GetArrayItem(w->errs, 0));
	node_err_set(err, NODE_EINVAL, BAD_CONFIG, "%s: %s", source, first ? first : "invalid (out of memory)");
	if (errors != NULL)
		*errors = w->errs;
	else
		cJSON_Delete(w->errs);
	return NODE_EINVAL;
}

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
	walk w = { cJSON_CreateArray(), 0 };
	if (w.errs == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "%s: out of memory", source);
	cJSON *root = parse_json(&w, text ? text : "");
	if (root != NULL)
		validate(&w, root, err);
	if (w.n > 0) {
		cJSON_Delete(root);
		return parse_failed(&w, source, errors, err);
	}
	cJSON_Delete(w.errs);
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
		return node_err_set(err, NODE_EINVAL, BAD_CONFIG, "%s describes no nodes", c->source ? c->source : "the configuration");
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
	return node_err_set(err, NODE_EINVAL, BAD_CONFIG,
	    "%s describes several nodes (%s); say which one this is with --name", c->source, names);
}

/* ---- lookups ---- */

/* Keys containing '.' cannot be reached: names are checked to have none. */
static cJSON *lookup(const cJSON *from, const char *path)
{
	cJSON *v = (cJSON *)from;
	char seg[PATH_LEN];
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

/* Check value as if the file held it at path (lists become arrays). */
static int set_check(const char *path, cJSON **value, node_err *err)
{
	char schema[PATH_LEN], parent[PATH_LEN];
	const char *last = strrchr(path, '.');
	snprintf(parent, sizeof parent, "%.*s", last ? (int)(last - path) : 0, path);
	const node_conf_key *row = key_find(path);
	if (row == NULL) {
		const node_conf_key *prow = parent[0] ? key_find(parent) : &root_row;
		char known[400] = "";
		if (prow != NULL)
			known_keys(prow->path, known, sizeof known);
		return node_err_set(err, NODE_EINVAL, BAD_CONFIG, "%s: unknown key (known keys here: %s)", path, known[0] ? known : "none");
	}
	snprintf(schema, sizeof schema, "%s", row->path);
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
	int rc = w.n == 0 ? 0 : node_err_set(err, NODE_EINVAL, BAD_CONFIG, "%s", first ? first : "invalid value (out of memory)");
	cJSON_Delete(w.errs);
	return rc;
}

/* The object at path, creating empty objects on the way. */
static cJSON *make_path(cJSON *root, const char *path, size_t len, node_err *err)
{
	cJSON *obj = root;
	char seg[PATH_LEN];
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
			node_err_set(err, NODE_EINVAL, BAD_CONFIG, "%.*s: not an object, cannot set keys under it", (int)(i + n), path);
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
		return node_err_set(err, NODE_EINVAL, BAD_CONFIG, "empty configuration key");
	}
	if (value != NULL) {
		int rc = set_check(path, &value, err);
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
	return fill_defaults(c->root, err); /* a new role object gets its defaults */
}

/* ---- roles, directories, the wire ---- */

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
		return node_err_set(err, NODE_EINVAL, BAD_CONFIG, "data directory path too long");
	w = role && role[0] ? snprintf(out, n, "%s/%s", base, role) : snprintf(out, n, "%s", base);
	if (w < 0 || (size_t)w >= n)
		return node_err_set(err, NODE_EINVAL, BAD_CONFIG, "data directory path too long: %s/%s", base, role ? role : "");
	return node_file_mkdirs(out, err);
}

/* Files named in the cluster file are relative to the file itself, so a
 * service started from any directory finds them. */
static char *conf_path(const node_conf *c, const char *p)
{
	const char *slash = c->source && c->source[0] != '(' ? strrchr(c->source, '/') : NULL;
	if (p[0] == '/' || slash == NULL)
		return strdup(p);
	char *out = NULL;
	if (asprintf(&out, "%.*s/%s", (int)(slash - c->source), c->source, p) < 0)
		return NULL;
	return out;
}

static void wire_limits(const node_conf *c, node_limits *l)
{
	l->max_message = (size_t)node_conf_int(c, "limits.max_message", (long long)l->max_message);
	l->max_depth = (int)node_conf_int(c, "limits.max_depth", l->max_depth);
	l->max_string = (size_t)node_conf_int(c, "limits.max_string", (long long)l->max_string);
	l->compress_above = (size_t)node_conf_int(c, "limits.compress_above", (long long)l->compress_above);
}

static int wire_tls_file(const node_conf *c, const char *key, char **dst, node_err *err)
{
	const char *p = node_conf_str(c, key, NULL);
	if (p == NULL)
		return 0;
	char *full = conf_path(c, p);
	if (full == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	free(*dst);
	*dst = full;
	return 0;
}

static int wire_tls(const node_conf *c, node_wire *w, node_err *err)
{
	int rc = wire_tls_file(c, "tls.cert", &w->tls_cert, err);
	if (rc == 0)
		rc = wire_tls_file(c, "tls.key", &w->tls_key, err);
	if (rc == 0)
		rc = wire_tls_file(c, "tls.ca", &w->tls_ca, err);
	const char *name = node_conf_str(c, "tls.server_name", NULL);
	if (rc == 0 && name != NULL) {
		char *copy = strdup(name);
		if (copy == NULL)
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		free(w->tls_server_name);
		w->tls_server_name = copy;
	}
	w->tls_require_client_cert = node_conf_bool(c, "tls.require_client_cert", 0);
	return rc;
}

/* The secret file, trailing newline stripped; errors name the file. */
static int read_secret(const node_conf *c, const char *file, char **out, size_t *len, node_err *err)
{
	char *full = conf_path(c, file);
	if (full == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	int rc = node_file_read(full, SECRET_FILE_MAX, out, len, err);
	if (rc != 0) {
		node_err_prefix(err, "secret_file: ");
		free(full);
		return rc;
	}
	while (*len > 0 && ((*out)[*len - 1] == '\n' || (*out)[*len - 1] == '\r'))
		(*out)[--*len] = '\0';
	if (*len < SECRET_MIN) {
		rc = node_err_set(err, NODE_EINVAL, BAD_CONFIG, "secret_file: %s holds %zu characters; a secret needs at least %d",
		    full, *len, SECRET_MIN);
		explicit_bzero(*out, *len);
		free(*out);
		*out = NULL;
	}
	free(full);
	return rc;
}

static int wire_auth(const node_conf *c, node_wire *w, node_err *err)
{
	const char *secret = node_conf_str(c, "secret", NULL);
	const char *file = node_conf_str(c, "secret_file", NULL);
	if (secret == NULL && file == NULL)
		return 0;
	char *bytes = NULL;
	size_t len = secret ? strlen(secret) : 0;
	if (secret == NULL) {
		int rc = read_secret(c, file, &bytes, &len, err);
		if (rc != 0)
			return rc;
	}
	node_auth *a = NULL;
	int window = (int)node_conf_int(c, "auth_window_ms", 30000);
	int rc = node_auth_new(&a, secret ? secret : bytes, len, window, err);
	if (bytes != NULL) {
		explicit_bzero(bytes, len);
		free(bytes);
	}
	if (rc != 0)
		return rc;
	node_auth_free(w->auth);
	w->auth = a;
	return 0;
}

int node_conf_wire(const node_conf *c, node_wire *w, node_err *err)
{
	wire_limits(c, &w->limits);
	int rc = wire_tls(c, w, err);
	return rc != 0 ? rc : wire_auth(c, w, err);
}
