/* The MapReduce data plane (issue 7): key/value records, sorted run files
 * (lz4 blocks with a checksum each), and the partitioned map-side writer
 * that buffers, combines, sorts and spills within a memory limit. */
#ifndef NODE_MR_KV_H
#define NODE_MR_KV_H

#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

/* Every function here that takes a node_err needs a real one (not NULL). */

/* Limits that keep a corrupted file from asking for absurd memory. */
#define MR_KV_BLOCK 65536u              /* raw bytes a run block aims for */
#define MR_KV_RECORD_MAX (256u << 20)   /* bytes of key + value in one record */
#define MR_KV_PARTS_MAX 65536
#define MR_KV_FANIN_DEFAULT 64          /* runs merged at once (~128 KB each) */

/* Sort orders. Numbers equal mr_sort of job.h (key 0, value-desc 1). */
typedef enum mr_kv_order {
	MR_ORDER_KEY = 0,        /* key bytewise (memcmp, shorter first), stable */
	MR_ORDER_VALUE_DESC = 1, /* value as a number, highest first; ties by key;
	                          * values that are not numbers come last */
} mr_kv_order;

/* One record; the bytes belong to whoever produced it and stay valid
 * until that producer's next call. */
typedef struct mr_kv_rec {
	const uint8_t *key;
	size_t klen;
	const uint8_t *val;
	size_t vlen;
} mr_kv_rec;

/* A record stream. next returns 1 (a record), 0 (end) or -1 (error, err
 * filled). Sorted buffers, run readers and merges all are sources. */
typedef struct mr_src {
	int (*next)(void *ctx, mr_kv_rec *rec, node_err *err);
	void *ctx;
} mr_src;

/* Where reducers, combiners and map functions put records: returns 0 or
 * NODE_E* with err filled. */
typedef int (*mr_emit_fn)(void *ctx, const void *key, size_t klen, const void *val, size_t vlen,
                          node_err *err);
typedef struct mr_emitter {
	mr_emit_fn fn;
	void *ctx;
} mr_emitter;

/* Group-by-key over a key-sorted source: mr_group_next gives each distinct
 * key once (1, 0 at the end, -1 on error); mr_values_next then gives that
 * key's values (1, 0 when the key is done, -1). A reducer need not read
 * every value. Keys are copied, so the key stays valid for the group. */
typedef struct mr_values {
	mr_src src;
	mr_kv_rec pend;  /* the record read ahead, not yet handed out */
	int has_pend, eof, started;
	uint8_t *key;
	size_t klen, kcap;
} mr_values;

void mr_group_init(mr_values *g, mr_src src);
int mr_group_next(mr_values *g, const uint8_t **key, size_t *klen, node_err *err);
int mr_values_next(mr_values *g, const uint8_t **val, size_t *vlen, node_err *err);
void mr_group_free(mr_values *g);

/* A reducer (also a combiner): reads the values of one key and emits any
 * number of records. param is the job's parameter text (may be NULL). */
typedef int (*mr_reduce_fn)(const uint8_t *key, size_t klen, mr_values *vals, const mr_emitter *out,
                            const char *param, node_err *err);

/* ---- encoding ---- */

/* LEB128 varints. put returns bytes written (at most 10); get returns
 * bytes read, or 0 if the input ends or the number is too long. */
size_t mr_kv_put_varint(uint8_t *p, uint64_t v);
size_t mr_kv_get_varint(const uint8_t *p, size_t avail, uint64_t *v);

/* The partition hash: FNV-1a 64 (offset basis 14695981039346656037, prime
 * 1099511628211) over the key bytes; partition = hash % P. Fixed forever:
 * map and reduce sides on different machines and versions must agree. */
uint64_t mr_kv_hash(const void *key, size_t len);
static inline uint64_t mr_kv_hash_step(uint64_t h, uint8_t c) { return (h ^ c) * 1099511628211ULL; }
#define MR_KV_HASH_INIT 14695981039346656037ULL
int mr_kv_partition(const void *key, size_t len, int nparts);
/* A value that is a whole decimal int64 ("42", "-7"): 1 and *out, else 0. */
int mr_kv_parse_i64(const uint8_t *v, size_t len, int64_t *out);
/* A value of at most 63 bytes that strtod reads whole (not NaN): 1 and *out, else 0. */
int mr_kv_parse_double(const uint8_t *v, size_t len, double *out);

/* Order of two records under an order (negative, 0, positive). */
int mr_kv_cmp(mr_kv_order order, const mr_kv_rec *a, const mr_kv_rec *b);
/* The 64-bit sort prefix of a record: comparing prefixes as unsigned
 * numbers agrees with mr_kv_cmp whenever they differ. */
uint64_t mr_kv_prefix(mr_kv_order order, const mr_kv_rec *r);

/* ---- run files ----
 * "MRRUN1\n\0", then blocks: u32le raw_len, comp_len, nrec, checksum, then
 * comp_len bytes of LZ4 block data holding nrec whole records (varint
 * klen, varint vlen, key, value). The checksum (mr_run_sum) covers the
 * three lengths and the compressed bytes. A block with raw_len 0 ends the
 * file: u64le total records, u32le checksum; nothing may follow. */
typedef struct mr_run_writer mr_run_writer;
typedef struct mr_run_reader mr_run_reader;

int mr_run_create(mr_run_writer **w, const char *path, node_err *err);
int mr_run_put(mr_run_writer *w, const void *key, size_t klen, const void *val, size_t vlen,
               node_err *err);
/* Flush, write the end block, close; frees w either way, removes the file
 * on error. */
int mr_run_close(mr_run_writer *w, node_err *err);
/* Give up: close, remove the file, free. NULL is fine. */
void mr_run_abort(mr_run_writer *w);
/* mr_run_put as an mr_emit_fn (ctx is the writer). */
int mr_run_emit(void *w, const void *key, size_t klen, const void *val, size_t vlen, node_err *err);
uint64_t mr_run_records(const mr_run_writer *w);

int mr_run_open(mr_run_reader **r, const char *path, node_err *err);
/* 1 record, 0 end (the end block was checked), -1 error naming the file. */
int mr_run_next(mr_run_reader *r, mr_kv_rec *rec, node_err *err);
mr_src mr_run_src(mr_run_reader *r);
void mr_run_free(mr_run_reader *r);
/* Checksum of run blocks: 64-bit words mixed by multiply-xor, folded to
 * 32 bits. Not cryptographic; catches flipped and lost bytes. */
uint32_t mr_run_sum(const void *p, size_t len, uint64_t seed);

/* ---- the map-side writer ---- */

/* Numeric folds done in a hash table as records are added (word count's
 * combiner), before anything is sorted. Values are decimal int64 text. */
typedef enum mr_kv_fold { MR_FOLD_NONE, MR_FOLD_SUM, MR_FOLD_MIN, MR_FOLD_MAX } mr_kv_fold;

typedef struct mr_kv_opts {
	const char *dir;        /* run files go here (must exist) */
	int nparts;             /* >= 1 */
	size_t mem_limit;       /* bytes of buffered records and table; 0: 64 MB */
	mr_kv_order order;
	mr_reduce_fn combine;   /* applied to each key's values when a buffer is
	                         * sorted and when runs are merged; NULL: none */
	const char *param;      /* for combine */
	mr_kv_fold fold;        /* mr_kv_add_num folds in a table first */
	int fanin;              /* 0: MR_KV_FANIN_DEFAULT */
} mr_kv_opts;

typedef struct mr_kv_writer mr_kv_writer;

/* combine and fold need MR_ORDER_KEY (groups are adjacent keys). */
int mr_kv_writer_open(mr_kv_writer **w, const mr_kv_opts *opts, node_err *err);
int mr_kv_add(mr_kv_writer *w, const void *key, size_t klen, const void *val, size_t vlen,
              node_err *err);
/* A numeric value: folded in the table under opts.fold, else added as
 * its decimal text. hash must be mr_kv_hash(key) (callers that lower-case
 * as they scan compute it for free). */
int mr_kv_add_num(mr_kv_writer *w, const void *key, size_t klen, uint64_t hash, int64_t v,
                  node_err *err);
/* For a map that folds in a table of its own (word count's mr_wc): the
 * writer's fold and partitions, and the bytes that table may use: the
 * whole limit, for a map that hands it over only as sorted spills (below)
 * and so leaves the writer's own table and buffer empty. */
mr_kv_fold mr_kv_writer_fold(const mr_kv_writer *w);
int mr_kv_writer_parts(const mr_kv_writer *w);
size_t mr_kv_fold_budget(const mr_kv_writer *w);
/* A spill the caller sorted and combined itself (order KEY only): between
 * begin and end, records come by partition (part never goes down) and
 * within a partition by key, each key once (else NODE_EINVAL); they are
 * written as they come, one run per partition that has records, without
 * the buffer or the combiner (the final merge still combines runs). */
int mr_kv_spill_begin(mr_kv_writer *w, node_err *err);
int mr_kv_spill_put(mr_kv_writer *w, int part, const void *key, size_t klen, const void *val, size_t vlen,
                    node_err *err);
int mr_kv_spill_end(mr_kv_writer *w, node_err *err);
/* mr_kv_add as an mr_emit_fn (ctx is the writer). */
int mr_kv_emit(void *w, const void *key, size_t klen, const void *val, size_t vlen, node_err *err);
/* Spill what is buffered, merge each partition's runs into
 * DIR/part-NNNNN.run (an empty run for a partition without records) and
 * remove the spills. */
int mr_kv_finish(mr_kv_writer *w, node_err *err);
/* Removes spills left by a failed writer (not the part files). NULL ok. */
void mr_kv_writer_free(mr_kv_writer *w);
/* Statistics for logs and tests. */
size_t mr_kv_spills(const mr_kv_writer *w);
/* DIR/part-NNNNN.run into buf; returns 0 or NODE_ELIMIT. */
int mr_kv_part_path(char *buf, size_t size, const char *dir, int part, node_err *err);

#endif
