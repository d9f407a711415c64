/* A MapReduce job file (node-job(5)): parsed, checked and normalised into
 * one struct that owns all its memory, so the master can store it and send
 * the same normalised JSON to every worker (issue 7). */
#ifndef NODE_MR_JOB_H
#define NODE_MR_JOB_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "core/err.h"

#define MR_JOB_NAME_MAX 100          /* characters in a job name */
#define MR_JOB_ID_MAX 64             /* characters in a job id */
#define MR_JOB_FILE_MAX (16u << 20)  /* bytes in a job file */
#define MR_JOB_MAX_INPUTS 100000     /* inputs after globs are expanded */
#define MR_JOB_MAX_ARGV 256          /* words in an exec function's argv */
#define MR_JOB_MAX_PARAMS (1u << 20) /* bytes of params as JSON text */
#define MR_JOB_CHUNK_MIN 4096ULL
#define MR_JOB_CHUNK_MAX (1ULL << 30)
#define MR_JOB_CHUNK_DEFAULT (64ULL << 20)
#define MR_JOB_PARTITIONS_MAX 1024

typedef enum mr_input_kind {
	MR_IN_FILE, /* value: an absolute path (globs are expanded at parse time) */
	MR_IN_URL,  /* value: an http:// or https:// URL */
	MR_IN_TEXT, /* value: the text itself */
	MR_IN_JOB,  /* value: the id of an earlier job whose output is read */
} mr_input_kind;

typedef struct mr_input {
	mr_input_kind kind;
	char *value;
} mr_input;

typedef enum mr_fn_kind {
	MR_FN_NONE,    /* no function (a job without a combiner) */
	MR_FN_BUILTIN, /* name: one of the built-ins of its phase */
	MR_FN_PLUGIN,  /* plugin (absolute path of a shared object) + function */
	MR_FN_EXEC,    /* argv: a program in the streaming style, never a shell line */
} mr_fn_kind;

typedef struct mr_fn {
	mr_fn_kind kind;
	char *name;     /* MR_FN_BUILTIN */
	char *plugin;   /* MR_FN_PLUGIN */
	char *function; /* MR_FN_PLUGIN */
	char **argv;    /* MR_FN_EXEC: argc words then NULL */
	size_t argc;
} mr_fn;

typedef enum mr_sort { MR_SORT_KEY, MR_SORT_VALUE_DESC } mr_sort;
typedef enum mr_format { MR_FORMAT_TSV, MR_FORMAT_JSONL } mr_format;

typedef struct mr_job {
	char *name;
	mr_input *inputs;
	size_t n_inputs;
	unsigned long long chunk_bytes;
	mr_fn map, combiner, reduce; /* combiner.kind may be MR_FN_NONE */
	int partitions;
	mr_sort sort;               /* the partitioner is always "hash" */
	char *output_dir;           /* absolute */
	mr_format format;
	char *params;               /* a JSON object as text, "{}" when none */
} mr_job;

/* Parse and check a job from JSON text. Relative paths (files, globs,
 * plugins, programs, the output directory) resolve against base_dir,
 * which must be absolute (NULL: the current directory). Touches the file
 * system: globs are expanded, input files must be readable, the output
 * directory is created if missing and must be writable. On error returns
 * NODE_EINVAL (or NODE_ENOMEM) with err naming the JSON path, e.g.
 * "map.plugn: unknown key (known keys: plugin, function, exec)". */
int mr_job_parse(const char *json_text, size_t len, const char *base_dir, mr_job **out, node_err *err);

/* mr_job_parse of a file, relative paths resolving next to it; errors are
 * prefixed with the file's path. */
int mr_job_load(const char *path, mr_job **out, node_err *err);

/* NULL is fine. */
void mr_job_free(mr_job *j);

/* The normalised job: every key present with its default filled, globs
 * expanded, paths absolute, inputs as {"file"|"url"|"text"|"job": ...}.
 * NULL when out of memory. The caller deletes it. */
cJSON *mr_job_to_json(const mr_job *j);

/* The inverse of mr_job_to_json, for a worker or a restarted master: the
 * same checks of keys, types and bounds, but paths must already be absolute
 * and the file system is not looked at (it may be another machine's). */
int mr_job_from_json(const cJSON *json, mr_job **out, node_err *err);

/* 1 when s is a valid job id: 1 to MR_JOB_ID_MAX of A-Z a-z 0-9 . _ -,
 * not starting with '.' or '-' (ids become file names). */
int mr_job_id_ok(const char *s);

/* The path of part file `partition` in the output directory:
 * DIR/part-NNNNN.tsv or .jsonl. Names are made here, never from user
 * input, so they cannot leave the directory. -1 if it does not fit. */
int mr_job_part_path(const mr_job *j, int partition, char *out, size_t n);

#endif
