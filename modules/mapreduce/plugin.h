/* MapReduce plugins on the worker side: loading a job's shared object
 * (dlopen, the ABI of nodemr.h) and calling its map function per line and
 * its reduce or combiner function per key through the data plane's types. */
#ifndef NODE_MR_PLUGIN_H
#define NODE_MR_PLUGIN_H

#include <stdint.h>

#include "mapreduce/job.h"
#include "mapreduce/kv.h"

typedef struct mr_plugin mr_plugin;

/* Load f (MR_FN_PLUGIN) for role "map", "combiner" or "reduce" (which
 * names it in errors); *p holds the shared object open until freed. */
int mr_plugin_load(const mr_fn *f, const char *role, mr_plugin **p, node_err *err);
void mr_plugin_free(mr_plugin *p);

/* A map function over text[0..len) line by line (first_line numbers the
 * first); records go to out. *lines gets the lines read. */
int mr_plugin_map(mr_plugin *p, const char *text, size_t len, uint64_t first_line, const char *params_json,
                  mr_kv_writer *out, uint64_t *lines, node_err *err);

/* For a reduce or combiner plugin: the mr_reduce_fn that calls it, and the
 * param that function must be given (it points at p and params_json,
 * which must outlive its use). */
typedef struct mr_plugin_call {
	mr_plugin *p;
	const char *params_json;
} mr_plugin_call;
int mr_plugin_reduce(const uint8_t *key, size_t klen, mr_values *vals, const mr_emitter *out, const char *param,
                     node_err *err);
/* The param of mr_plugin_reduce for call. */
static inline const char *mr_plugin_param(const mr_plugin_call *call) { return (const char *)(const void *)call; }

#endif
