/* The cluster file: one JSON document describing every node, the roles it
 * runs and where they listen. Read through one table of typed keys (path,
 * type, bounds, default) so that validation, defaults, `node config show`
 * and node.json(5) all agree. */
#ifndef NODE_CONFIG_H
#define NODE_CONFIG_H

#include <cjson/cJSON.h>

#include "err.h"
#include "msg.h"

typedef enum node_conf_type {
	NODE_CT_OBJECT,  /* fixed keys, each listed in the table */
	NODE_CT_MAP,     /* user-chosen keys (node names, queue names): "a.*" rows */
	NODE_CT_STRING,
	NODE_CT_INT,     /* bounds min..max */
	NODE_CT_NUMBER,
	NODE_CT_BOOL,
	NODE_CT_URL,     /* tcp://, tls+tcp://, ipc://, inproc:// */
	NODE_CT_ENUM,    /* one of the '|'-separated words in choices */
	NODE_CT_STRLIST, /* array of non-empty strings (also "a,b,c") */
	NODE_CT_HTTP,    /* http://host:port, or "" for off */
	NODE_CT_ANY,     /* any JSON value: settings a role reads itself (an object's options) */
} node_conf_type;

typedef struct node_conf_key {
	const char *path;    /* dotted; "*" matches any key of a MAP */
	node_conf_type type;
	long long min, max;  /* INT bounds; STRING minimum/maximum length when max > 0 */
	const char *choices; /* ENUM */
	const char *def;     /* default as JSON text, NULL for none */
	const char *doc;     /* one line for node.json(5) and `config keys` */
} node_conf_key;

/* The table, ending with a row whose path is NULL. */
extern const node_conf_key node_conf_keys[];

/* The cluster file every machine shares, plus which node this process is. */
typedef struct node_conf {
	cJSON *root;      /* effective: file + defaults + flags */
	char *source;     /* file path, or "(embedded default)" */
	char *node;       /* this node's name, or NULL when not chosen */
} node_conf;

/* The embedded one-machine default (every role on 127.0.0.1). */
extern const char node_conf_default_text[];

/* Parse and validate text. On failure err->msg holds the first error and,
 * when errors is not NULL, *errors gets every error as an array of strings
 * ("nodes.beta.roles.worker.concurrency: expected an integer >= 1, got \"four\""). */
int node_conf_parse(node_conf *c, const char *text, const char *source, cJSON **errors, node_err *err);
/* Load path (NULL: $NODE_CONFIG, then ./node.json, then the embedded default). */
int node_conf_load(node_conf *c, const char *path, cJSON **errors, node_err *err);
void node_conf_free(node_conf *c);

/* Choose this process's node: name, else $NODE_NAME, else the only node, else
 * the node whose name is the host name. */
int node_conf_select(node_conf *c, const char *name, node_err *err);

/* Lookups by dotted path in the effective tree; NULL / fallback when absent. */
const cJSON *node_conf_get(const node_conf *c, const char *path);
const char *node_conf_str(const node_conf *c, const char *path, const char *fallback);
long long node_conf_int(const node_conf *c, const char *path, long long fallback);
int node_conf_bool(const node_conf *c, const char *path, int fallback);
/* The same, under this node: "roles.worker.concurrency" -> nodes.<me>.roles.worker.concurrency. */
const cJSON *node_conf_mine(const node_conf *c, const char *subpath);
/* Set a value (used by command-line flags that override the file). */
int node_conf_set(node_conf *c, const char *path, cJSON *value, node_err *err);

/* Where role listens: this node's setting if it runs role, else the first node
 * that does. NODE_ENOTFOUND with a helpful message when no node runs it. */
int node_conf_role_url(const node_conf *c, const char *role, const char *key, const char **url, node_err *err);
/* This node's data directory for role (created): data_dir/role. */
int node_conf_data_dir(const node_conf *c, const char *role, char *out, size_t n, node_err *err);

/* Fill a wire (limits, secret, TLS) from the configuration. */
int node_conf_wire(const node_conf *c, node_wire *w, node_err *err);

#endif
