/* K-way merge of sorted run files (a binary heap of readers), in passes of
 * at most fanin runs so memory stays bounded however many runs a job made;
 * and the reduce side: merge, group by key, reduce, emit. */
#ifndef NODE_MR_MERGE_H
#define NODE_MR_MERGE_H

#include "mapreduce/kv.h"

typedef struct mr_merge mr_merge;

/* Open every run (at most one block of each in memory). Ties go to the
 * run listed first, so merging runs spilled in order is stable. */
int mr_merge_open(mr_merge **m, const char *const *paths, size_t n, mr_kv_order order, node_err *err);
/* 1 record (valid until the next call), 0 end, -1 error. */
int mr_merge_next(mr_merge *m, mr_kv_rec *rec, node_err *err);
mr_src mr_merge_src(mr_merge *m);
void mr_merge_free(mr_merge *m);

typedef struct mr_merge_opts {
	mr_kv_order order;
	int fanin;            /* 0: MR_KV_FANIN_DEFAULT; at least 2 */
	const char *tmpdir;   /* intermediate runs of multi-pass merges */
	mr_reduce_fn combine; /* applied to each key's values as runs merge */
	const char *param;
} mr_merge_opts;

/* Merge runs until at most fanin are left; *out gets the new list (owned
 * strings, the caller frees with mr_merge_paths_free), intermediate files
 * are removed as they are consumed; the inputs are never removed. */
int mr_merge_passes(const char *const *paths, size_t n, const mr_merge_opts *o, char ***out,
                    size_t *nout, node_err *err);
void mr_merge_paths_free(char **paths, size_t n);

/* Merge runs (in passes if needed) into one run file at out_path. */
int mr_merge_files(const char *const *paths, size_t n, const char *out_path, const mr_merge_opts *o,
                   node_err *err);

/* The reduce phase of one partition: merge the runs, and under
 * MR_ORDER_KEY hand each key's values to reduce (NULL: every record
 * passes unchanged); under MR_ORDER_VALUE_DESC records pass in order and
 * reduce must be NULL. Results go to out. */
int mr_merge_reduce(const char *const *paths, size_t n, const mr_merge_opts *o, mr_reduce_fn reduce,
                    const char *param, const mr_emitter *out, node_err *err);

/* Copy a source into an emitter, combining keys when combine is set. */
int mr_pump(mr_src src, mr_reduce_fn combine, const char *param, const mr_emitter *out, node_err *err);

#endif
