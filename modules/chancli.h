/* What node chan, node pub and node sub share: finding the channel host,
 * errors as one line and an exit status, values read from stdin in
 * batches, values printed for people or as JSON, and leaving promptly on
 * SIGINT/SIGTERM. */
#ifndef NODE_CHANCLI_H
#define NODE_CHANCLI_H

#include <stddef.h>

#include "client/csp_net_conf.h"
#include "core/cmd.h"

/* Exit statuses beside node(1)'s: a wait the user bounded ran out, as
 * timeout(1) says it. */
#define CHANCLI_EXIT_TIMEOUT 124
#define CHANCLI_BATCH_VALUES 1000        /* values of one write or publish */
#define CHANCLI_BATCH_BYTES (256 * 1024)

/* "node CMD: <formatted>" on stderr, after what stdout holds. */
void chancli_warn(const node_ctx *ctx, const char *fmt, ...) NODE_PRINTF(2, 3);
/* Print err and return its exit status (chan(1) EXIT STATUS). */
int chancli_fail(const node_ctx *ctx, const ncl_err *err);
/* Print a usage error and return 2. */
int chancli_usage(const node_ctx *ctx, const char *fmt, ...) NODE_PRINTF(2, 3);

/* Open the host of name (NULL: no channel in particular) from --host, the
 * name server or the cluster file; 0 or an exit status after printing why. */
int chancli_open(node_ctx *ctx, const node_args *a, const char *name, csp_net_chan **out);

/* --timeout S of a wait: S seconds as a deadline's length in ms, or -1. */
int chancli_wait_ms(const node_args *a);

/* A value as JSON text (malloc'd): text itself when json (NULL and a
 * message in err when it is not JSON), else text as a JSON string. */
char *chancli_value(const char *text, int json, ncl_err *err);
/* Print one value (JSON text) and a newline: a string as it is unless
 * json, anything else as compact JSON. */
void chancli_print(const char *value, int json);

/* Values from stdin, one per line, in batches that go out as soon as stdin
 * has nothing more to give right now (so a typed line flows at once) or a
 * batch is full. */
typedef struct chancli_batch {
	char *vals[CHANCLI_BATCH_VALUES]; /* JSON texts, owned */
	size_t n, bytes;
} chancli_batch;

typedef int (*chancli_send_fn)(chancli_batch *b, void *arg); /* 0 or an exit status */
/* Read stdin to its end, calling send for each batch (which it empties
 * afterwards). Returns 0 or an exit status after printing why. */
int chancli_stdin(const node_ctx *ctx, int json, chancli_send_fn send, void *arg);
void chancli_batch_clear(chancli_batch *b);

/* On SIGINT/SIGTERM: run fn (may be NULL) and leave at once with 130, so
 * that a parked call is dropped by the host with our connection. */
void chancli_on_stop(node_ctx *ctx, void (*fn)(void *arg), void *arg);

#endif
