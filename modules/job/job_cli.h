/* What the pieces of `node job` share (modules/job.c, modules/job/): the
 * connection to the MapReduce master, errors as one line with the command's
 * exit statuses, and reading a job's status object (node-protocol(7),
 * MAPREDUCE MASTER). */
#ifndef NODE_JOB_CLI_H
#define NODE_JOB_CLI_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>

#include "core/cmd.h"
#include "core/transport.h"
#include "mapreduce/job.h"

/* Exit statuses (node-job(1)). */
#define JOB_EXIT_FAILED 1      /* the job failed or was killed; the master refused */
#define JOB_EXIT_USAGE 2       /* bad command line or job file */
#define JOB_EXIT_UNREACHABLE 3 /* no master configured, or it did not answer */
#define JOB_EXIT_TIMEOUT 124   /* --timeout S of a wait ran out, as timeout(1) says */
#define JOB_EXIT_PIPE 141      /* our standard output went away (128 + SIGPIPE) */

/* What SIGINT/SIGTERM during a wait needs. The stop thread owns it
 * (chancli_on_stop), so it outlives the command's own state. */
typedef struct job_stop_note {
	char id[MR_JOB_ID_MAX + 1]; /* the job being waited for */
	volatile int line_open;     /* a progress line without its newline is on stderr */
} job_stop_note;

/* One run of `node job`: the command line and, once opened, the master. */
typedef struct job_cli {
	node_ctx *ctx;
	const node_args *a;
	node_client *cl;     /* NULL until job_open */
	const char *url;     /* the master's address */
	int json;            /* --json */
	int call_ms;         /* time limit of one ordinary call */
	job_stop_note *note; /* NULL until a wait begins */
} job_cli;

void job_init(job_cli *c, node_ctx *ctx, const node_args *a);
/* Open a client to --master URL, else the cluster file's mapreduce role.
 * Returns 0 or an exit status after printing why. */
int job_open(job_cli *c);
void job_close(job_cli *c);

/* "node job: <formatted>" on stderr, after what stdout holds and on a
 * line of its own when a progress line is open. */
void job_warn(const job_cli *c, const char *fmt, ...) NODE_PRINTF(2, 3);
/* job_warn plus the usage hint; returns JOB_EXIT_USAGE. */
int job_usage(const job_cli *c, const char *fmt, ...) NODE_PRINTF(2, 3);
/* Print err and return its exit status: the master's own answer 1, a
 * master that cannot be reached 3. */
int job_fail(const job_cli *c, const node_err *err);

/* A request {"op": op} with "id" when id is not NULL; NULL when out of memory. */
cJSON *job_req(const char *op, const char *id);
/* Send req (freed here), wait at most timeout_ms (0: call_ms). On failure
 * *reply is NULL, err says why and the exit status is returned without
 * printing, so a caller can word it; job_call prints it too. */
int job_call_quiet(job_cli *c, cJSON *req, int timeout_ms, cJSON **reply, node_err *err);
int job_call(job_cli *c, cJSON *req, int timeout_ms, cJSON **reply);
/* One call whose answer holds {"job": STATUS}: *st points into *reply. */
int job_call_status(job_cli *c, cJSON *req, int timeout_ms, cJSON **reply, const cJSON **st);

/* ---- a status object ---- */

const char *job_str(const cJSON *o, const char *key); /* NULL when absent */
/* v as one line of compact JSON on stdout. */
void job_print_json(const cJSON *v);
double job_num(const cJSON *o, const char *key);      /* 0 when absent */
/* done/total of "maps" or "reduces": "3/8". */
void job_count(const cJSON *st, const char *phase, char *out, size_t n);
/* 1 for done, failed and killed. */
int job_finished(const char *state);

/* ---- the subcommands ---- */

int job_submit(job_cli *c);       /* job_submit.c */
/* Follow id until it finishes or wait_s seconds (< 0: no limit) pass;
 * progress on stderr as the command line asks. job_wait.c */
int job_wait(job_cli *c, const char *id, long long wait_s);
int job_status(job_cli *c, const char *id); /* job_show.c */
int job_list(job_cli *c);
int job_kill(job_cli *c, const char *id);
int job_purge(job_cli *c, const char *id);
int job_results(job_cli *c, const char *id); /* job_results.c */

#endif
