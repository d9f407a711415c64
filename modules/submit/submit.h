/* The `node submit` command's shared state, for modules/submit.c (options
 * and main) and the files of modules/submit/: load.c (task files and ARGs),
 * prepare.c (ids and batches), run.c (the event loop), send.c and wait.c. */
#ifndef NODE_SUBMIT_H
#define NODE_SUBMIT_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>

#include "core/cmd.h"
#include "core/err.h"
#include "taskcli.h"

/* The command line's defaults for the tasks, and how to send them. */
typedef struct submit_flags {
	long long prio, batch, inflight;
	const char *queue, *id;
	cJSON *kwargs, *options; /* NULL when not given */
} submit_flags;

/* ---- the run: batches in flight, gets in flight, one event queue ----
 *
 * The throughput path: tasks go in batches (up to --batch per submit
 * message, also bounded in bytes) with several batches in flight; with
 * --wait, each acknowledged task gets a future of libnodeclient, whose
 * tracker collects results with parked gets over many ids, and whose
 * completion callback posts it to the loop. Ids are generated here when a
 * task has none, so a batch that nng re-sends after a broker restart creates
 * each task once (the broker keeps one task per id). */

enum { SUBMIT_EV_SUBMIT, SUBMIT_EV_DONE };

typedef struct submit_run submit_run;

/* A call in flight, or a future that finished; it comes back to the loop
 * as this event. */
typedef struct submit_ev {
	submit_run *run;
	int kind;
	int slot;      /* batch index, or the task's index */
	int rc;
	cJSON *reply;
	node_err err;
	struct submit_ev *next;
} submit_ev;

/* What a future's completion callback posts: its own event, made before,
 * so that posting cannot fail (and is not freed by the loop). */
typedef struct submit_watch {
	submit_ev ev; /* SUBMIT_EV_DONE, slot: the task's index */
} submit_watch;

typedef struct submit_batch {
	int first, count;
	int state; /* 0 not sent, 1 in flight, 2 acknowledged, 3 refused or failed */
} submit_batch;

struct submit_run {
	taskcli *t;
	const char *src;      /* file name for messages, or NULL */
	cJSON *tasks;         /* tasks not yet sent, at the head of this array */
	int ntasks;
	char **ids;
	submit_batch *batches;
	int nbatches, next_batch, printed_batches, batches_inflight, inflight_max;
	int wait;
	long long wait_s;     /* -1: forever */
	int64_t deadline;     /* monotonic ms, or 0 */
	ncl_future **futs;    /* --wait: one per acknowledged task */
	submit_watch *watches;
	int waiting;          /* futures whose task is not printed yet */
	int failed, timed_out, finished, stopped, unknown;
	int exit_status;      /* first error's status */
	int submit_failed;    /* a batch failed: send no more */
	unsigned char *done;  /* --wait: the task's result (or timeout) was printed */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	submit_ev *head, *tail;
};

/* ---- load.c ---- */

/* [A-Za-z0-9._:-]{1,128}: what the broker takes as a task id or queue. */
int submit_name_ok(const char *s);
/* Check one task as the broker will; where ("FILE: [3]", "FILE" or "")
 * starts the message. Fills err and returns NODE_EINVAL on error. */
int submit_check_task(const cJSON *t, const char *where, node_err *err);
/* The tasks, into r->tasks: a file's (or standard input's), else the one on
 * the command line. Returns an exit status. */
int submit_load(submit_run *r, const node_args *a, const submit_flags *o);

/* ---- prepare.c ---- */

/* Room for every task's id, batch and "done" mark. */
int submit_alloc(submit_run *r);
void submit_free(submit_run *r);
/* Fill in, check, name and batch every task before anything is sent. */
int submit_prepare(submit_run *r, const submit_flags *o);

/* ---- run.c ---- */

/* Send req (freed here) with an event that brings the reply back to the
 * loop; ev0 names the batch (slot) it is for. */
int submit_send(submit_run *r, cJSON *req, int timeout_ms, submit_ev ev0, node_err *err);
/* Put an event on the loop's queue (from any thread). */
void submit_post(submit_run *r, submit_ev *ev);
/* Record the first error's exit status and say what went wrong. */
void submit_error(submit_run *r, const node_err *err, const char *fmt, ...) NODE_PRINTF(3, 4);
/* Send the prepared batches and with --wait wait for the results; closes
 * the client. Returns the exit status. */
int submit_go(submit_run *r, const node_args *a, const submit_flags *o);

/* ---- send.c ---- */

void submit_send_batch(submit_run *r);
void submit_handle_submit(submit_run *r, submit_ev *ev);
/* Print the acknowledged batches' ids, in order, as far as they are settled. */
void submit_print_ids(submit_run *r);

/* ---- wait.c ---- */

/* Watch the tasks of an acknowledged batch with futures. */
void submit_watch_batch(submit_run *r, const submit_batch *bt);
/* A watched task finished: print it. */
void submit_handle_done(submit_run *r, submit_ev *ev);
/* Past the deadline: the tasks not finished are not ready. */
void submit_expire(submit_run *r);
/* After the connection closed: free the futures. */
void submit_watches_free(submit_run *r);
/* --wait: name the accepted tasks whose result could not be had. */
void submit_report_unknown(submit_run *r);

#endif
