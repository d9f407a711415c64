/* What the task-queue client commands (submit, result, status, queues,
 * workers, dead) share: finding and calling the broker, mapping errors to
 * exit statuses, waiting for results, printing results, JSON lines, times
 * and aligned tables. Each command keeps only what is its own. */
#ifndef NODE_TASKCLI_H
#define NODE_TASKCLI_H

#include <cjson/cJSON.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

#include "client/client_int.h"
#include "core/cmd.h"
#include "core/transport.h"

/* Options every client command takes; put them at the end of its table. */
#define TASKCLI_OPTS                                                                         \
	{"broker", 'b', "URL", "broker address (default: the broker's listen URL in the cluster file)"}, \
	{"json", 0, NULL, "machine output: JSON, one object per line"}

/* A connection to the broker for one command: the client library's
 * (libnodeclient), so that node's commands and C programs share one path. */
typedef struct taskcli {
	node_ctx *ctx;
	ncl_conn *conn;
	const char *url;
	int json;    /* --json */
	int color;   /* stdout is a terminal and NO_COLOR is not set */
	int ecolor;  /* the same for stderr */
	int call_ms; /* time limit of one ordinary call */
} taskcli;

/* Fill t from the command line without connecting, so that a command can
 * check its arguments (and print usage errors) first. */
void taskcli_init(taskcli *t, node_ctx *ctx, const node_args *a);
/* taskcli_init, then open a client to --broker URL, else the cluster file's
 * broker. Returns 0 or an exit status after printing why. call_ms is
 * ctx->timeout_ms. */
int taskcli_open(taskcli *t, node_ctx *ctx, const node_args *a);
void taskcli_close(taskcli *t);
/* taskcli_init, then open a client to url (another role than the broker,
 * e.g. the name server, which peer names in errors). Returns 0 or an exit
 * status after printing why. */
int taskcli_open_url(taskcli *t, node_ctx *ctx, const node_args *a, const char *url, const char *peer);

/* The exit status for an error: 5 when the broker did not answer, else 1. */
int taskcli_exit_for(const node_err *err);
/* The same error as node's own (code, stable remote code, message). */
void taskcli_from_ncl(node_err *out, const ncl_err *e);
/* Print "node CMD: <formatted>" on stderr, after what stdout holds. */
void taskcli_warn(const taskcli *t, const char *fmt, ...) NODE_PRINTF(2, 3);
/* Print "node CMD: message" on stderr and return the exit status. */
int taskcli_fail(const taskcli *t, const node_err *err);
/* Print "node CMD: <formatted>" plus the usage hint; returns 2. */
int taskcli_usage(const taskcli *t, const char *fmt, ...) NODE_PRINTF(2, 3);

/* A request {"op": op}. */
cJSON *taskcli_req(const char *op);
/* Call the broker with t->call_ms; on failure prints the error and returns
 * the exit status (the reply, if any, is freed). */
int taskcli_call(taskcli *t, const cJSON *req, cJSON **reply);
/* A command's one call, start to end: taskcli_open, then taskcli_call with
 * req, which is freed here. On failure the client is closed again and the
 * exit status returned; on success finish with taskcli_finish. */
int taskcli_query(taskcli *t, node_ctx *ctx, const node_args *a, cJSON *req, cJSON **reply);
/* Free the reply, close the client and return rc. */
int taskcli_finish(taskcli *t, cJSON *reply, int rc);

/* pthread_cond_timedwait for at most ms from now; returns its result. */
int taskcli_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, long ms);

/* --wait --timeout S: S (the global --timeout, in seconds here), or -1
 * without --wait or --timeout. */
long long taskcli_wait_s(const node_args *a);
/* With --wait the global --timeout was the wait; calls keep the configured
 * limit. */
void taskcli_wait_calls(taskcli *t);
/* The monotonic ms when a wait of wait_s seconds ends; 0 for no end. */
int64_t taskcli_deadline(long long wait_s);
/* A request {"op": "get", "ids": [], "wait_ms": wait_ms}; *ids is the array
 * to fill. */
cJSON *taskcli_get_req(long long wait_ms, cJSON **ids);

/* Lookups in a reply; NULL / fallback when absent or of another type. */
const char *taskcli_str(const cJSON *o, const char *key);
double taskcli_num(const cJSON *o, const char *key, double fallback);
int taskcli_has_num(const cJSON *o, const char *key);
/* A number member as a whole number, "-" when absent. */
void taskcli_fmt_int(const cJSON *o, const char *key, char *out, size_t n);

/* Write v as one line of compact JSON on f. */
void taskcli_print_json(FILE *f, const cJSON *v);
/* Write s as a JSON string (quoted and escaped). */
void taskcli_put_jstr(FILE *f, const char *s);
/* The line {"id": id} or, when state is not NULL, {"id": id, "state": state}. */
void taskcli_put_id_line(FILE *f, const char *id, const char *state);
/* Write a task value for people: a top-level string as is, anything else as
 * compact JSON. */
void taskcli_put_value(FILE *f, const cJSON *v);
/* A result entry's value, exact even for big integers (value_json). */
void taskcli_put_result(FILE *f, const cJSON *entry);
/* A finished task's result entry: with --json its JSON line; a success its
 * value on stdout ("ID: VALUE" when named); else "ID: STATE: MESSAGE" on
 * stderr. */
void taskcli_print_result(const taskcli *t, const char *id, const cJSON *entry, int named);

/* Task states: the finished ones, and a word coloured for a terminal. */
int taskcli_state_finished(const char *state);
const char *taskcli_color_on(int color, const char *state);
const char *taskcli_color_off(int color);

/* Wall clock in ms since the epoch (for "ago"), and the monotonic clock in
 * ms (for deadlines). */
/* "2024-05-01T12:00:00.123Z" */
void taskcli_iso_ms(int64_t ms, char *out, size_t n);
/* "850 us", "12 ms", "1.25 s", "3 min 2 s", "2 h 5 min" */
void taskcli_duration(double ms, char *out, size_t n);

/* Parse a command-line word as JSON if it is valid JSON, else a string. */
cJSON *taskcli_parse_arg(const char *s);

/* Aligned text tables: columns left ('l') or right ('r') aligned. */
typedef struct taskcli_table {
	int ncols;
	const char *align;
	char **cells;  /* rows * ncols, row 0 = headings */
	int rows, cap;
} taskcli_table;

void taskcli_table_init(taskcli_table *tb, int ncols, const char *align, const char *const *heads);
/* Add one row of ncols cells (copied; NULL prints as "-"). */
void taskcli_table_row(taskcli_table *tb, const char *const *cells);
void taskcli_table_print(const taskcli_table *tb, FILE *f);
void taskcli_table_free(taskcli_table *tb);
/* A whole table on stdout: the headings, then one row per item of items,
 * added by row(). */
void taskcli_table_items(const cJSON *items, int ncols, const char *align, const char *const *heads,
    void (*row)(taskcli_table *tb, const cJSON *item));

/* The items of a list reply: with --json one line each, none: the line
 * empty. Returns 1 when the items are still to be shown (as a table). */
int taskcli_list(const taskcli *t, const cJSON *items, const char *empty);
/* A whole listing command: ask the broker for op, whose reply holds the
 * array op, and show it (taskcli_list, else table(items)). */
int taskcli_list_main(node_ctx *ctx, const node_args *a, const char *op, const char *empty,
    void (*table)(const cJSON *items));

#endif
