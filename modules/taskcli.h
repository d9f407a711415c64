/* What the task-queue client commands (submit, result, status, queues,
 * workers, dead) share: finding and calling the broker, mapping errors to
 * exit statuses, printing results, times and aligned tables. */
#ifndef NODE_TASKCLI_H
#define NODE_TASKCLI_H

#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdio.h>

#include "core/cmd.h"
#include "core/transport.h"

/* Options every client command takes; put them at the end of its table. */
#define TASKCLI_OPTS                                                                         \
	{"broker", 'b', "URL", "broker address (default: the broker's listen URL in the cluster file)"}, \
	{"json", 0, NULL, "machine output: JSON, one object per line"}

/* A connection to the broker for one command. */
typedef struct taskcli {
	node_ctx *ctx;
	node_client *cl;
	const char *url;
	int json;    /* --json */
	int color;   /* stdout is a terminal and NO_COLOR is not set */
	int ecolor;  /* the same for stderr */
	int call_ms; /* time limit of one ordinary call */
} taskcli;

/* Open a client to --broker URL, else the cluster file's broker. Returns 0
 * or an exit status after printing why. call_ms is ctx->timeout_ms. */
int taskcli_open(taskcli *t, node_ctx *ctx, const node_args *a);
void taskcli_close(taskcli *t);

/* The exit status for an error: 5 when the broker did not answer, else 1. */
int taskcli_exit_for(const node_err *err);
/* Print "node CMD: message" on stderr and return the exit status. */
int taskcli_fail(const taskcli *t, const node_err *err);
/* Print "node CMD: <formatted>" plus the usage hint; returns 2. */
int taskcli_usage(const taskcli *t, const char *fmt, ...) NODE_PRINTF(2, 3);

/* A request {"op": op}. */
cJSON *taskcli_req(const char *op);
/* Call the broker with t->call_ms; on failure prints the error and returns
 * the exit status (the reply, if any, is freed). */
int taskcli_call(taskcli *t, const cJSON *req, cJSON **reply);

/* The same with a given time limit, for parked calls: a stop request
 * (SIGINT, SIGTERM) ends the wait, closes the client and returns
 * NODE_ECLOSED "interrupted" in err. Prints nothing. */
int taskcli_call_parked(taskcli *t, const cJSON *req, int timeout_ms, cJSON **reply, node_err *err);

/* Lookups in a reply; NULL / fallback when absent or of another type. */
const char *taskcli_str(const cJSON *o, const char *key);
double taskcli_num(const cJSON *o, const char *key, double fallback);
int taskcli_has_num(const cJSON *o, const char *key);

/* Write v as one line of compact JSON on f. */
void taskcli_print_json(FILE *f, const cJSON *v);
/* Write s as a JSON string (quoted and escaped). */
void taskcli_put_jstr(FILE *f, const char *s);
/* Write a task value for people: a top-level string as is, anything else as
 * compact JSON. */
/* A result entry's value, exact even for big integers (value_json). */
void taskcli_put_result(FILE *f, const cJSON *entry);
void taskcli_put_value(FILE *f, const cJSON *v);

/* Task states: the finished ones, and a word coloured for a terminal. */
int taskcli_state_finished(const char *state);
const char *taskcli_color_on(int color, const char *state);
const char *taskcli_color_off(int color);

/* Wall clock in ms since the epoch (for "ago"), and formatting. */
int64_t taskcli_wall_ms(void);
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

#endif
