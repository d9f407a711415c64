/* The ABI of MapReduce plugins (node-job(5), node-tasks(7)): a shared object
 * exporting map and reduce functions that `node worker` calls in its own
 * process. Installed as <node/mapreduce.h>; a plugin includes only this and
 * links no node library. conf/plugins/mr_example.c is the one to copy. */
#ifndef NODE_MAPREDUCE_PLUGIN_H
#define NODE_MAPREDUCE_PLUGIN_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NODE_MR_ABI 1

/* Where a function's records go; opaque to the plugin. */
typedef struct node_mr_out node_mr_out;

/* What node gives every call. The pointers stay valid for the call only. */
typedef struct node_mr_api {
	int abi; /* NODE_MR_ABI */
	/* Emit one record (bytes, not strings: they may hold NUL). 0 ok, -1
	 * stop: the task is failing, return nonzero soon. */
	int (*emit)(node_mr_out *o, const char *key, size_t klen, const char *val, size_t vlen);
	/* Reduce and combiner only: the next value of the current key. 1 got
	 * one (valid until the next call), 0 no more, -1 error (return
	 * nonzero). A function need not read every value. */
	int (*next)(node_mr_out *o, const char **val, size_t *vlen);
	/* Record the reason the task fails (copied); then return nonzero. */
	void (*fail)(node_mr_out *o, const char *msg);
} node_mr_api;

/* A map function: called once per input line, without its '\n' (and a
 * '\r' before it); line numbers count from 1 across the input.
 * params_json is the job's "params" object as JSON text ("{}" when none).
 * Returns 0, or nonzero to fail the task. */
typedef int node_mr_map_fn(const node_mr_api *api, node_mr_out *o, const char *line, size_t len,
                           unsigned long long lineno, const char *params_json);

/* A reduce (or combiner) function: called once per key, in key order,
 * reading that key's values with api->next. */
typedef int node_mr_reduce_fn(const node_mr_api *api, node_mr_out *o, const char *key, size_t klen,
                              const char *params_json);

/* A plugin may export `int node_mr_abi = NODE_MR_ABI;`: when present, a
 * different value makes node refuse the plugin. Functions may be called
 * from several threads at once (one task per thread): keep no unlocked
 * global state. */

#ifdef __cplusplus
}
#endif

#endif
