/* The built-in tasks a worker runs: one table of {name, function, doc}.
 * Every task takes JSON args (an array, may be NULL) and kwargs (an object,
 * may be NULL) and either sets *result to a new JSON value and returns 0, or
 * writes a one-line message into err and returns -1. Tasks never crash on
 * bad input: wrong types, missing arguments and out-of-range values are
 * errors. Tasks are thread-safe and keep no state between calls. */
#ifndef NODE_WORKER_TASKS_H
#define NODE_WORKER_TASKS_H

#include <cjson/cJSON.h>
#include <stddef.h>

typedef int (*worker_task_fn)(const cJSON *args, const cJSON *kwargs, cJSON **result, char *err, size_t errlen);

typedef struct worker_task {
	const char *name; /* what a task's "name" says, e.g. "add" */
	worker_task_fn fn;
	const char *doc;  /* one line: signature and what it returns */
} worker_task;

/* The table, ending with a row whose name is NULL. */
extern const worker_task worker_tasks[];

/* Limits of the built-in tasks (documented in node-worker(1)). */
#define WORKER_TASK_FIBO_MAX 100000           /* fibo(n): n at most */
#define WORKER_TASK_LIST_MAX 1000000          /* sum: list length at most */
#define WORKER_TASK_PI_MAX 10000000000LL      /* pi: points at most */
#define WORKER_TASK_SLEEP_MAX 3600000         /* sleep: milliseconds at most */
#define WORKER_TASK_CRAWL_LINKS_MAX 1000      /* crawl: n at most */
#define WORKER_TASK_CRAWL_BODY_MAX (4u << 20) /* crawl: bytes of a page read at most */
#define WORKER_TASK_CRAWL_TIMEOUT_MS 10000    /* crawl: default time limit */
#define WORKER_TASK_HREF_MAX 8192             /* crawl: longer href values are skipped */

/* The task called name, or NULL. */
const worker_task *worker_task_find(const char *name);

/* Run the task called name; an unknown name is an error like any other. */
int worker_task_run(const char *name, const cJSON *args, const cJSON *kwargs, cJSON **result, char *err, size_t errlen);

/* Append to links (an array) the href values of the first max <a> tags of
 * html[0..len) that have one, in order; returns how many were added. */
int worker_task_links(const char *html, size_t len, int max, cJSON *links);

#endif
