/* Streaming programs of MapReduce jobs (Hadoop streaming): a program
 * started without a shell reads records as lines on its standard input and
 * writes "key TAB value" lines on its standard output. Both pipes are pumped
 * with poll() from the task's thread, so neither side can deadlock. */
#ifndef NODE_MR_STREAM_H
#define NODE_MR_STREAM_H

#include <stddef.h>
#include <stdint.h>

#include "mapreduce/kv.h"

#define MR_STREAM_LINE_MAX (16u << 20) /* bytes in one output line */
#define MR_STREAM_STDERR_TAIL 2048     /* bytes of stderr kept for errors */

typedef struct mr_stream mr_stream;

typedef struct mr_stream_cfg {
	char *const *argv;   /* the program, then its arguments, then NULL */
	const char *what;    /* names it in errors: "map program awk" */
	const char *dir;     /* its working directory */
	const char *params;  /* NODE_MR_PARAMS: the job's params as JSON text */
	const char *phase;   /* NODE_MR_PHASE: "map" or "reduce" */
	const char *job_id;  /* NODE_MR_JOB */
	long long task;      /* NODE_MR_TASK */
	long long partition; /* NODE_MR_PARTITION; < 0: not set (map) */
	long long attempt;   /* NODE_MR_ATTEMPT */
	int64_t deadline_ms; /* monotonic ms; past it the program is killed; 0: none */
	mr_emitter out;      /* where its output records go */
} mr_stream_cfg;

/* Start the program (posix_spawnp in its own process group). */
int mr_stream_start(mr_stream **s, const mr_stream_cfg *cfg, node_err *err);
/* Bytes for its standard input (buffered; pumps output meanwhile). */
int mr_stream_write(mr_stream *s, const void *p, size_t n, node_err *err);
/* One record as "key TAB value LF" (an mr_emit_fn; ctx is the stream). */
int mr_stream_emit(void *s, const void *key, size_t klen, const void *val, size_t vlen, node_err *err);
/* Close its input, read the rest of its output, reap it: an exit status
 * other than 0 or a signal is an error with the tail of its stderr.
 * *records gets the output records. Frees s either way. */
int mr_stream_finish(mr_stream *s, uint64_t *records, node_err *err);
/* Kill it (the whole group), reap it, free s. NULL is fine. */
void mr_stream_abort(mr_stream *s);

#endif
