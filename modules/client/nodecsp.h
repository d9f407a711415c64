/* Communicating sequential processes in C (installed as <node/csp.h>, part of
 * libnodeclient): processes are threads run by csp_parallel, csp_sequence
 * and csp_spawn; they talk over channels that are local (in this process,
 * no sockets) or hosted by a `node chanhost` (networked), with the same calls.
 *
 * Rules: as in <node/client.h>. Every function returns 0 or an NCL_E* code
 * and fills the ncl_err it is given (may be NULL). timeout_ms < 0 waits
 * without limit, 0 does not wait. Values are NUL-terminated strings; a
 * networked channel carries JSON text (anything else is NCL_EINVAL), a local
 * one any string. A value read is malloc'd and yours to free().
 *
 *	static void counter(csp_proc *p, void *arg) {
 *		csp_end *out = arg;
 *		char v[16];
 *		for (int i = 0; i < 5; i++) {
 *			snprintf(v, sizeof v, "%d", i);
 *			csp_write(out, v, -1, NULL);
 *		}
 *		csp_poison(out, NULL);
 *	}
 */
#ifndef NODE_CSP_H
#define NODE_CSP_H

/* In the source tree this is nodeclient.h beside it; `make lib` and `make
 * install` write "client.h" here, the name it has beside node/csp.h. */
#include "nodeclient.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Codes beside client.h's NCL_E*: */
enum {
	NCL_EPOISONED = 20, /* the channel was poisoned */
	NCL_ERETIRED = 21,  /* every end of the other side retired (readers: after the buffer drained) */
	NCL_ECONFLICT = 22, /* one2one/one2any/any2one: that side already has its end; or kind mismatch */
};

/* ---- channels ---- */

typedef enum csp_kind { CSP_ANY2ANY = 0, CSP_ONE2ONE, CSP_ONE2ANY, CSP_ANY2ONE } csp_kind;

typedef struct csp_chan csp_chan;
typedef struct csp_end csp_end;

/* A local channel: capacity 0 is a rendezvous (a write returns when a
 * reader has taken the value), > 0 a buffer of that many values (at most
 * 16777216). name: at most 200 bytes, for messages and traces; NULL: "chanN". */
int csp_chan_local(csp_chan **out, const char *name, csp_kind kind, int capacity, ncl_err *err);

/* A channel of a channel host. where: a URL (tcp://host:7130), or NULL to
 * find the host of `name` at the name server (channel/NAME) and else take the
 * cluster file's chanhost. cluster_file as for ncl_open (NULL: $NODE_CONFIG,
 * ./node.json, the embedded default). Does not contact the host. */
int csp_chan_net(csp_chan **out, const char *name, const char *where, const char *cluster_file, ncl_err *err);

/* Free a channel; its ends must have been closed. Does not poison it. */
void csp_chan_free(csp_chan *c);
const char *csp_chan_name(const csp_chan *c);

/* Ends: one per process that reads or writes. An end is what one2one counts
 * and what retires. */
int csp_reader(csp_chan *c, csp_end **out, ncl_err *err);
int csp_writer(csp_chan *c, csp_end **out, ncl_err *err);
/* Leave without retiring (a networked end tells the host) and free. */
void csp_end_close(csp_end *e);

int csp_write(csp_end *w, const char *value, int timeout_ms, ncl_err *err);
int csp_read(csp_end *r, char **value, int timeout_ms, ncl_err *err);
/* Batches, for streams: write n values in order (returns when all were
 * taken or buffered; when the time runs out, the ones before may have been
 * taken); read up to max values available at once (at least 1, waits for
 * the first). On a networked channel each is one message. */
int csp_write_many(csp_end *w, const char *const *values, size_t n, int timeout_ms, ncl_err *err);
int csp_read_many(csp_end *r, char **values, size_t max, size_t *got, int timeout_ms, ncl_err *err);

/* Poison the end's channel: every parked and later op on it fails NCL_EPOISONED. */
int csp_poison(csp_end *e, ncl_err *err);
/* This end leaves for good; when the last live end of its side retired, the
 * channel is retired for good: writes fail NCL_ERETIRED, reads get the
 * buffered values and then NCL_ERETIRED, parked ends are woken with it.
 * The end is freed. */
int csp_retire(csp_end *e, ncl_err *err);

/* ---- alternation ---- */

typedef struct csp_guard {
	csp_end *end;       /* a reader (input guard) or a writer (output guard) */
	const char *value;  /* output guards: the value to write */
} csp_guard;

enum { CSP_ALT_FAIR = 0, CSP_ALT_PRIORITY = 1, CSP_ALT_SKIP = 2 };

/* Wait until one guard can complete and complete it: returns 0 with *fired
 * its index (and *value the value read, for an input guard; else NULL).
 * flags: CSP_ALT_PRIORITY chooses the first ready guard in order (else
 * fairly); CSP_ALT_SKIP returns at once with *fired = -1 when none is ready.
 * timeout_ms >= 0: *fired = -1 when none became ready in time (returns 0).
 * A guard whose channel is poisoned or retired counts as ready: the call
 * returns NCL_EPOISONED or NCL_ERETIRED with *fired naming it. value may be
 * NULL (a value read is then dropped). All guards' channels must be local,
 * or all on one channel host (else NCL_EINVAL). At most 64 guards. */
int csp_alt(const csp_guard *guards, int n, int flags, int timeout_ms, int *fired, char **value, ncl_err *err);

/* ---- processes ---- */

typedef struct csp_proc csp_proc;
typedef void (*csp_fn)(csp_proc *self, void *arg);

typedef struct csp_spec {
	const char *name;   /* for traces; default "procN" */
	csp_fn fn;
	void *arg;
} csp_spec;

/* Run the processes as threads at once and wait for all. Every thread is
 * made before any process runs: if one cannot be, none runs (NCL_ENOMEM). */
int csp_parallel(const csp_spec *procs, int n, ncl_err *err);
/* Run them one after the other in the calling thread. */
int csp_sequence(const csp_spec *procs, int n, ncl_err *err);
/* Start one and return; csp_join waits for it and frees the handle. */
int csp_spawn(const csp_spec *proc, csp_proc **out, ncl_err *err);
void csp_join(csp_proc *p);
const char *csp_proc_name(const csp_proc *p);

/* ---- tracing ---- */

/* Append one JSON object per line to path for every channel event of this
 * process (channel created, end created, block/done read and write, poison,
 * retire, process start/quit, parallel start/done, trace end at
 * csp_trace_stop). NULL or "" stops. Also started by $NODE_CSP_TRACE. */
int csp_trace_start(const char *path, ncl_err *err);
void csp_trace_stop(void);

#ifdef __cplusplus
}
#endif

#endif
