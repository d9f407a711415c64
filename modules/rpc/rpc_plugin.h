/* The plugin ABI of `node rpc` (installed as <node/rpc_plugin.h>): a shared
 * object adds kinds of remote objects, each with a method table and
 * per-instance state. Everything crosses the boundary as JSON text and
 * malloc'd strings, so a plugin needs no node header but this one and no
 * node library. node-rpc(1), PLUGINS, has the rules. */
#ifndef NODE_RPC_PLUGIN_H
#define NODE_RPC_PLUGIN_H

#ifdef __cplusplus
extern "C" {
#endif

#define NODE_RPC_PLUGIN_ABI 1

/* What node offers a plugin. */
typedef struct node_rpc_host {
	int abi;
	/* Call method of another object, by registered name or by URL (then
	 * method is sent as is). Blocks up to timeout_ms. 0: *result_json
	 * holds the result; else *error holds the message. Free both with free(). */
	int (*call)(const struct node_rpc_host *host, const char *target, const char *method, const char *params_json,
	    int timeout_ms, char **result_json, char **error);
	/* Log through node's log: level 0 debug, 1 info, 2 warn, 3 error. */
	void (*log)(const struct node_rpc_host *host, int level, const char *message);
	void *priv; /* node's */
} node_rpc_host;

/* What a method fills: on success json (a JSON value as text), on failure
 * error (the message) and optionally error_type (the error's data.type) and
 * code (a JSON-RPC code; 0 means an application error, -32000). Strings are
 * malloc'd; node frees them. */
typedef struct node_rpc_result {
	char *json;
	char *error;
	char *error_type;
	int code;
} node_rpc_result;

/* params_json is always a JSON array whose length is within the method's
 * bounds (by-name params are put in order first). Return 0 on success,
 * anything else on failure. */
typedef int (*node_rpc_method_fn)(void *instance, const char *params_json, node_rpc_result *out, const node_rpc_host *host);

#define NODE_RPC_FAST 1 /* never blocks: node may run it on its receiving thread */

typedef struct node_rpc_plugin_method {
	const char *name;
	node_rpc_method_fn fn;
	const char *params;     /* "a,b": the names, in order */
	int min_args, max_args; /* max_args -1: any number */
	int flags;              /* NODE_RPC_FAST */
} node_rpc_plugin_method;

typedef struct node_rpc_plugin_kind {
	const char *name;
	const node_rpc_plugin_method *methods; /* ends with a {NULL} entry */
	/* A new instance from the object's settings (a JSON object as text);
	 * NULL with *error (malloc'd) set on failure. */
	void *(*create)(const char *settings_json, char **error, const node_rpc_host *host);
	void (*destroy)(void *instance);
	int concurrent; /* a shared instance takes calls at once (1) or one at a time (0) */
} node_rpc_plugin_kind;

typedef struct node_rpc_plugin {
	int abi;        /* NODE_RPC_PLUGIN_ABI */
	const char *name;
	const node_rpc_plugin_kind *kinds; /* ends with a {NULL} entry */
} node_rpc_plugin;

/* The one symbol a plugin exports. */
const node_rpc_plugin *node_rpc_plugin_v1(void);

#ifdef __cplusplus
}
#endif

#endif
