/* The MapReduce master (node mapreduce, node-mapreduce(1)): the job table
 * the job.* ops answer from, the scheduler that runs each job's map and
 * reduce tasks through the broker, the I/O thread that gathers results,
 * and the journal that lets a restarted master resume its jobs. */
#ifndef NODE_MR_MASTER_H
#define NODE_MR_MASTER_H

#include <pthread.h>
#include <stdint.h>

#include "client/nodeclient.h"
#include "core/cmd.h"
#include "core/journal.h"
#include "core/transport.h"
#include "mapreduce/job.h"

/* Error codes of the job.* ops besides core's (node-protocol(7)). */
#define MR_ERR_INVALID "invalid"
#define MR_ERR_FINISHED "finished"
#define MR_ERR_RUNNING "running"

/* Limits (node-mapreduce(1), LIMITS). */
#define MR_MASTER_MAPS_MAX 100000     /* map tasks (chunks) of one job */
#define MR_MASTER_WAIT_MAX_MS 60000   /* job.wait parks at most this long */
#define MR_MASTER_ID_NAME 40          /* characters of the name in a job id */
#define MR_MASTER_TICK_MS 100         /* the scheduler looks at time limits this often */
#define MR_MASTER_SCAN_MS 20          /* and at a changed job's tasks at most this often */
#define MR_MASTER_ROUND_MAX 256       /* attempts submitted per round (the lock is held to plan them) */
#define MR_MASTER_READ_MAX (4u << 20) /* bytes of one job.read or mr.get at most */
#define MR_MASTER_CLEAN_MS 3000       /* mr.clean calls of one job end are awaited this long */
#define MR_MASTER_RETRY_MIN_MS 500    /* after the broker refused a submit, wait this long, */
#define MR_MASTER_RETRY_MAX_MS 5000   /* doubling up to this */
#define MR_MASTER_LOST_FACTOR 3       /* lost map outputs per job: max_attempts times this */
#define MR_MASTER_COMPACT_MIN 10000   /* records appended before a snapshot is considered */

typedef enum mr_jstate { MR_JS_QUEUED, MR_JS_MAP, MR_JS_REDUCE, MR_JS_DONE, MR_JS_FAILED, MR_JS_KILLED } mr_jstate;

/* One map chunk: bytes [offset, offset + length) of input `input`, or all
 * of a URL or text input; input -1 is the empty text of a job without any. */
typedef struct mr_chunk {
	int input;
	uint64_t offset, length;
} mr_chunk;

/* One map or reduce task of a job. */
typedef struct mr_task {
	cJSON *res;       /* the winning attempt's result; NULL until done */
	int live;         /* attempts submitted whose outcome has not been applied */
	int pending;      /* wants an attempt submitted */
	int next_attempt; /* the number the next attempt gets (from 1; journaled before it is used) */
	int failures;     /* failed attempts */
	int backed_up;    /* has a backup attempt since it was last started */
	int collecting;   /* reduce: its part file is being gathered by the I/O thread */
	int64_t start_ms; /* monotonic: when its first live attempt was submitted */
	int64_t dur_ms;   /* done: how long the winning attempt ran */
	uint64_t gen;     /* map done: the job's map_gen when it became done */
	char *error;      /* the last failed attempt's message */
} mr_task;

/* A growing set of distinct strings. */
typedef struct mr_strs {
	char **v;
	size_t n, cap;
} mr_strs;

typedef struct mr_waiter mr_waiter; /* a parked job.wait */

typedef struct mr_mjob {
	struct mr_mjob *next;      /* the table's list, newest first */
	uint64_t seq;              /* submission order */
	char id[MR_JOB_ID_MAX + 1];
	mr_job *job;               /* inputs resolved ("job:ID" replaced by part files) */
	cJSON *norm;               /* mr_job_to_json(job) */
	int64_t *sizes;            /* per input: bytes of a file, -1 for a URL or text */
	size_t nmaps, nreduces;
	mr_chunk *chunks;          /* nmaps */
	mr_task *maps, *reduces;
	mr_jstate state;
	char *error;               /* failed: why */
	int64_t submitted_ms, started_ms, finished_ms; /* wall clock, 0 when not yet */
	uint64_t version;          /* increments on every change */
	uint64_t records_in, bytes_in, records_out;
	uint64_t spills;           /* runs the done maps wrote before their final merge */
	size_t maps_done, reduces_done;
	int maps_failed, reduces_failed, maps_backups, reduces_backups;
	int reruns;                /* losses of map output */
	uint64_t map_gen;          /* counts maps becoming done */
	mr_strs servers;           /* output servers holding some of its files */
	mr_strs local;             /* MRDIR/JOBID directories of its files on this machine */
	int finishing;             /* the manifest is with the I/O thread */
	int cleanup;               /* the scheduler must revoke its attempts and clean */
	mr_waiter *waiters;
	int dirty;                 /* changed since the scheduler last looked at its tasks */
	int64_t scanned_ms;        /* monotonic: when it last did */
} mr_mjob;

/* One submitted attempt of a task. It lives until the scheduler has applied
 * its outcome, so the completion callback's pointer stays valid; job is
 * NULL once the job is forgotten. */
typedef struct mr_att {
	struct mr_master *m;
	struct mr_att *next, *prev; /* the master's list of attempts */
	struct mr_att *done_next;  /* the queue of outcomes to apply */
	mr_mjob *job;
	int reduce;                /* 0 map, 1 reduce */
	int task, attempt, backup;
	uint64_t map_gen;          /* reduce: the job's map_gen when its sources were chosen */
	ncl_future *f;             /* set and freed by the scheduler thread only */
	int64_t start_ms;          /* monotonic */
	int cancel;                /* wanted no more (lost a race, job ended) */
	int cancel_sent;
	int finished;              /* its callback ran: the outcome below is set */
	ncl_state state;
	char *result, *error;
} mr_att;

/* Work for the I/O thread (master_io.c). */
typedef enum mr_io_kind { MR_IO_COLLECT, MR_IO_MANIFEST, MR_IO_CLEAN } mr_io_kind;

typedef struct mr_io {
	struct mr_io *next;
	mr_io_kind kind;
	char job_id[MR_JOB_ID_MAX + 1];
	int task;        /* COLLECT: the partition */
	cJSON *res;      /* COLLECT: the reduce's result */
	char *path;      /* COLLECT: the part file; MANIFEST: manifest.json */
	cJSON *body;     /* MANIFEST: what it says */
	mr_strs urls;    /* CLEAN: output servers to send mr.clean to */
	mr_strs dirs;    /* CLEAN: local directories to remove */
} mr_io;

typedef struct mr_master {
	node_ctx *ctx;
	pthread_mutex_t lock;      /* guards everything below but the settings */
	pthread_cond_t wake;       /* the scheduler */
	pthread_cond_t io_wake;    /* the I/O thread */
	mr_mjob *jobs;
	size_t njobs;
	uint64_t seq;
	mr_att *atts;
	mr_att *done_head, *done_tail;
	mr_io *io_head, *io_tail;
	int kick;                  /* something for the scheduler to look at */
	int stopping;
	node_journal *journal;
	uint64_t records;          /* appended since the last snapshot */
	int compacting;
	node_server *srv;
	ncl_conn *conn;            /* to the broker; the scheduler thread's */
	pthread_t sched_thread, io_thread;
	int sched_started, io_started;
	/* settings, fixed at start */
	char host[256];            /* mr_host_id */
	const char *broker_url;    /* NULL: the cluster's broker role */
	const char *queue;
	int max_attempts, speculative, backup_after_ms, max_jobs, max_running, timeout_ms;
	size_t read_max;           /* bytes of one job.read answer or mr.get request */
} mr_master;

/* ---- master.c: the job table ---- */

const char *mr_jstate_name(mr_jstate s);
int mr_jstate_parse(const char *s, mr_jstate *out);
int mr_jstate_finished(mr_jstate s);
mr_mjob *mr_master_find(mr_master *m, const char *id);
/* A job from its parts (submit, replay): builds chunks and tasks; takes
 * job, norm and sizes whether it fails or not. */
int mr_master_job_new(mr_master *m, const char *id, mr_job *job, cJSON *norm, int64_t *sizes, int64_t submitted_ms,
    mr_mjob **out, node_err *err);
void mr_master_add(mr_master *m, mr_mjob *j); /* into the table, as the newest */
void mr_master_forget(mr_master *m, mr_mjob *j); /* out of the table, freed */
/* Something changed: a new version, waiters answered, the scheduler woken. */
void mr_master_touch(mr_master *m, mr_mjob *j);
/* STATUS of node-protocol(7); files: with output.files. */
cJSON *mr_master_status(const mr_master *m, const mr_mjob *j, int files);
int mr_master_park(mr_master *m, mr_mjob *j, node_call *call, int64_t deadline_ms);
void mr_master_expire_waiters(mr_master *m, int64_t now_ms, int all);
/* Map result bookkeeping shared by the scheduler and replay. */
void mr_master_map_done(mr_master *m, mr_mjob *j, size_t i, cJSON *res);
void mr_master_map_lost(mr_master *m, mr_mjob *j, size_t i);
void mr_master_reduce_done(mr_master *m, mr_mjob *j, size_t p, cJSON *res);
void mr_master_note_files(mr_master *m, mr_mjob *j, const cJSON *res);
char *mr_master_local_dir(const mr_master *m, const char *id, const cJSON *res);
int mr_strs_add(mr_strs *s, const char *v);
void mr_strs_free(mr_strs *s);

/* ---- master_ops.c ---- */

extern const node_op mr_master_ops[];

/* ---- master_sched.c: the scheduler thread; master_plan.c: what it does next ---- */

/* What one round of the scheduler does outside the lock. */
typedef struct mr_sub { /* an attempt to submit */
	mr_att *a;
	char *args;
	char id[MR_JOB_ID_MAX + 32];
} mr_sub;

typedef struct mr_plan {
	mr_sub *subs;
	size_t n, cap;
	mr_att **cancels;
	size_t ncancel, ccap;
	mr_att *trash;         /* outcomes applied: their futures are freed without the lock */
	int soon;              /* work left for a round within MR_MASTER_SCAN_MS */
} mr_plan;

void mr_sched_apply_all(mr_master *m, mr_plan *p); /* outcomes into the table; lock held */
/* Under the lock: outcomes, queued jobs started, attempts and backups to
 * submit (submit 0: the broker is being waited for), what to revoke and
 * clean, expired job.wait calls answered. */
void mr_plan_all(mr_master *m, mr_plan *p, int submit);

/* The connection to the broker (it need not be up yet): a bad URL, or no
 * broker in the cluster file, is a configuration error. */
int mr_sched_open(mr_master *m, node_err *err);
int mr_sched_start(mr_master *m, node_err *err);
void mr_sched_stop(mr_master *m); /* joins; then frees every attempt */
void mr_sched_fail_job(mr_master *m, mr_mjob *j, const char *fmt, ...) NODE_PRINTF(3, 4);
/* An attempt of a task failed (also: its part file could not be gathered):
 * counted, then retried or the job fails. Lock held. */
void mr_sched_task_failed(mr_master *m, mr_mjob *j, int reduce, size_t task, const char *msg);
/* A job ended: done, failed or killed. Journals it and asks for cleaning. */
void mr_sched_end_job(mr_master *m, mr_mjob *j, mr_jstate state, const char *error);

/* ---- master_args.c ---- */

/* The JSON text of the args of attempt `attempt` of a map (reduce 0) or
 * reduce task: [{"job_id", "job", ...}] as node-protocol(7) says; NULL
 * when out of memory. */
char *mr_args_build(const mr_mjob *j, int reduce, size_t i, int attempt);

/* ---- master_io.c: the I/O thread ---- */

int mr_io_start(mr_master *m, node_err *err);
void mr_io_stop(mr_master *m);
void mr_io_push(mr_master *m, mr_io *io); /* with the lock held */
mr_io *mr_io_new(mr_io_kind kind, const char *job_id);
void mr_io_free(mr_io *io);
/* Queue cleaning of what res names (a late or lost attempt's files). */
void mr_io_clean_result(mr_master *m, const char *job_id, const cJSON *res);

/* ---- master_log.c: the journal ---- */

int mr_log_open(mr_master *m, node_err *err);
void mr_log_close(mr_master *m);
/* Records, appended with the lock held; a failed append is logged (a job
 * that cannot be journaled is refused, hence its error). */
int mr_log_job(mr_master *m, const mr_mjob *j, node_err *err);
void mr_log_state(mr_master *m, const mr_mjob *j);
void mr_log_attempt(mr_master *m, const mr_mjob *j, int reduce, size_t task, int attempt);
void mr_log_map(mr_master *m, const mr_mjob *j, size_t i);
void mr_log_lost(mr_master *m, const mr_mjob *j, size_t i);
void mr_log_reduce(mr_master *m, const mr_mjob *j, size_t p);
void mr_log_purge(mr_master *m, const char *id);
/* Wait until everything appended so far is durable (without the lock). */
int mr_log_sync(mr_master *m, node_err *err);
/* Snapshot when the journal has grown well past what is live (lock held). */
void mr_log_maybe_compact(mr_master *m);

#endif
