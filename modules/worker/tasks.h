/* The built-in tasks a worker runs: one table of {name, function, doc}.
 * Every task takes its context (may be NULL), JSON args (an array, may be
 * NULL) and kwargs (an object, may be NULL) and either sets *result to a new
 * JSON value and returns 0, or writes a one-line message into err and
 * returns -1. Tasks never crash on bad input: wrong types, missing arguments
 * and out-of-range values are errors. Tasks are thread-safe and keep no
 * state between calls. */
#ifndef NODE_WORKER_TASKS_H
#define NODE_WORKER_TASKS_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

/* A sub-task a task submitted, until it releases it (the worker's future). */
typedef struct worker_sub worker_sub;

/* What a task knows about its run, and how it submits sub-tasks and waits
 * for them (SCOOP-style nested futures). The worker (modules/worker/run.c)
 * fills it; unit tests pass NULL, and then tasks that need it fail. The
 * functions get the context back and are safe from any task thread. */
typedef struct worker_task_ctx {
	const char *id;         /* the task's id */
	int delivery;           /* 1 the first time the broker hands it out, 2 the next... */
	const char *queue;      /* the queue it came from */
	int priority;           /* its priority, 0-9 */
	int64_t deadline_ms;    /* monotonic ms it must be done by, 0 for none known */
	void *opaque;           /* the worker's, for the functions below */
	/* Submit task name with args (JSON array text, NULL for none) on queue
	 * (NULL: the task's own), one priority above the task's (at most 9), so
	 * trees of tasks finish depth first; *sub is its future. -1 with err
	 * on failure. */
	int (*submit)(const struct worker_task_ctx *ctx, const char *name, const char *args_json, const char *queue,
	    worker_sub **sub, char *err, size_t errlen);
	/* Wait until every one of subs[0..n) has finished, well or not, at most
	 * timeout_ms: 0, or -1 with err (the time ran out, the worker stops).
	 * Calls wait_begin and wait_end itself. */
	int (*wait)(const struct worker_task_ctx *ctx, worker_sub *const *subs, size_t n, int timeout_ms, char *err,
	    size_t errlen);
	/* A finished sub-task's value (exact JSON text), or NULL when it failed. */
	const char *(*result)(const worker_sub *sub);
	/* A finished sub-task's error message, or NULL when it succeeded. */
	const char *(*error)(const worker_sub *sub);
	const char *(*sub_id)(const worker_sub *sub);
	void (*release)(worker_sub *sub);
	/* Around any other blocking wait: while blocked, the task lends its
	 * slot to other tasks (node-worker(1), SLOT LENDING). */
	void (*wait_begin)(const struct worker_task_ctx *ctx);
	void (*wait_end)(const struct worker_task_ctx *ctx);
	/* MapReduce tasks: the worker's directory, server, limits
	 * (mapreduce/mrtask.h); NULL when not run by a worker. */
	const struct worker_mr_env *mr;
} worker_task_ctx;

typedef int (*worker_task_fn)(const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs, cJSON **result,
    char *err, size_t errlen);

typedef struct worker_task {
	const char *name; /* what a task's "name" says, e.g. "add" */
	worker_task_fn fn;
	const char *doc;  /* one line: signature and what it returns */
} worker_task;

/* The table, ending with a row whose name is NULL. */
extern const worker_task worker_tasks[];

/* Limits of the built-in tasks (documented in node-worker(1)). */
#define WORKER_TASK_FIBO_MAX 100000           /* fibo(n): n at most */
#define WORKER_TASK_LIST_MAX 1000000          /* sum: list length, chunk: items at most */
#define WORKER_TASK_PI_MAX 10000000000LL      /* pi: points at most */
#define WORKER_TASK_SLEEP_MAX 3600000         /* sleep: milliseconds at most */
#define WORKER_TASK_CRAWL_LINKS_MAX 1000      /* crawl: n at most */
#define WORKER_TASK_CRAWL_BODY_MAX (4u << 20) /* crawl: bytes of a page read at most */
#define WORKER_TASK_CRAWL_TIMEOUT_MS 10000    /* crawl: default time limit */
#define WORKER_TASK_HREF_MAX 8192             /* crawl: longer href values are skipped */
#define WORKER_TASK_FIBR_MAX 90               /* fibr(n): n at most (fibo(90) fits in int64) */
#define WORKER_TASK_FIBR_CUTOFF 15            /* fibr: default cutoff */
#define WORKER_TASK_FIBR_WAIT_MS 600000       /* fibr: the wait for sub-tasks at most */

/* The task called name, or NULL. */
const worker_task *worker_task_find(const char *name);

/* Run the task called name; an unknown name is an error like any other. */
int worker_task_run(const worker_task_ctx *ctx, const char *name, const cJSON *args, const cJSON *kwargs,
    cJSON **result, char *err, size_t errlen);

/* Append to links (an array) the href values of the first max <a> tags of
 * html[0..len) that have one, in order; returns how many were added. */
int worker_task_links(const char *html, size_t len, int max, cJSON *links);

#endif
