/* Built-in map and reduce functions of MapReduce jobs (node-job(5)) and
 * the part-file writers (TSV, JSON lines) that reduce output goes to. */
#ifndef NODE_MR_BUILTIN_H
#define NODE_MR_BUILTIN_H

#include "mapreduce/kv.h"

/* A map function over a chunk of text lines. first_line is the number of
 * the chunk's first line (1-based across the input) for maps that emit
 * line numbers; param is the function's parameter (grep's pattern). A
 * line ends at '\n'; a '\r' before it is dropped; a last line without
 * '\n' counts. */
typedef int (*mr_map_fn)(const char *text, size_t len, uint64_t first_line, const char *param,
                         mr_kv_writer *out, node_err *err);

/* wordcount: words are runs of ASCII letters A-Za-z, lower-cased; emits
 * word -> count. Under MR_FOLD_SUM the counts come from wcount.h's table
 * (sorted spills into the writer); otherwise every word is word -> 1
 * through mr_kv_add_num. Anything else, digits and UTF-8 bytes too,
 * separates. */
int mr_fn_wordcount(const char *text, size_t len, uint64_t first_line, const char *param,
                    mr_kv_writer *out, node_err *err);
/* split-words: words are runs of non-blank bytes (blank: space, \t, \v,
 * \f, \r), kept as they are; emits word -> its line number. */
int mr_fn_split_words(const char *text, size_t len, uint64_t first_line, const char *param,
                      mr_kv_writer *out, node_err *err);
/* identity: "key TAB value" lines split at the first TAB; a line without
 * TAB is the key with an empty value. */
int mr_fn_identity(const char *text, size_t len, uint64_t first_line, const char *param,
                   mr_kv_writer *out, node_err *err);
/* grep: lines holding param as a plain byte substring (no regex; an empty
 * pattern matches every line); emits line -> its line number. */
int mr_fn_grep(const char *text, size_t len, uint64_t first_line, const char *param,
               mr_kv_writer *out, node_err *err);

/* Reducers. sum, min, max: values are numbers (strtod syntax; integers
 * stay exact int64 as long as every value is an integer, else the result
 * is a double printed with %.17g); a value that is not a number is an
 * error naming key and value. count: the number of values. identity:
 * every value as its own record. concat: the values joined with param
 * (NULL: ","). */
int mr_fn_sum(const uint8_t *key, size_t klen, mr_values *vals, const mr_emitter *out, const char *param,
              node_err *err);
int mr_fn_count(const uint8_t *key, size_t klen, mr_values *vals, const mr_emitter *out, const char *param,
                node_err *err);
int mr_fn_min(const uint8_t *key, size_t klen, mr_values *vals, const mr_emitter *out, const char *param,
              node_err *err);
int mr_fn_max(const uint8_t *key, size_t klen, mr_values *vals, const mr_emitter *out, const char *param,
              node_err *err);
int mr_fn_identity_reduce(const uint8_t *key, size_t klen, mr_values *vals, const mr_emitter *out,
                          const char *param, node_err *err);
int mr_fn_concat(const uint8_t *key, size_t klen, mr_values *vals, const mr_emitter *out, const char *param,
                 node_err *err);

/* By the names of node-job(5); NULL for an unknown name. */
mr_map_fn mr_fn_map_find(const char *name);
mr_reduce_fn mr_fn_reduce_find(const char *name);
/* The table fold that computes reducer `name` early (sum, min, max), or
 * MR_FOLD_NONE. */
mr_kv_fold mr_fn_reduce_fold(const char *name);
#define MR_FN_MAP_NAMES "wordcount, split-words, identity, grep"
#define MR_FN_REDUCE_NAMES "sum, count, min, max, identity, concat"

/* ---- part files ---- */

/* Numbers equal mr_format of job.h (TSV 0, JSON lines 1). */
typedef enum mr_out_format { MR_OUT_TSV = 0, MR_OUT_JSONL = 1 } mr_out_format;
typedef struct mr_out mr_out;

/* TSV: key TAB value LF, bytes as they are (keys holding TAB or LF need
 * JSON lines). JSON lines: {"key":K,"value":V} LF with K a string and V a
 * number when the value is JSON number text, else a string; bytes that
 * are not UTF-8 are written as \u00XX. Writes PATH.tmp; mr_out_close
 * renames it to PATH, so a part file is whole or absent. */
int mr_out_open(mr_out **o, const char *path, mr_out_format format, node_err *err);
int mr_out_emit(void *o, const void *key, size_t klen, const void *val, size_t vlen, node_err *err);
int mr_out_close(mr_out *o, node_err *err);  /* frees o either way */
void mr_out_abort(mr_out *o);                 /* removes PATH.tmp; NULL ok */
uint64_t mr_out_records(const mr_out *o);

#endif
