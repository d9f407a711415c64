/* The inside of the CSP API (<node/csp.h>), shared by its files:
 *   csp.c        channels and ends: checks, tracing, local or networked dispatch
 *   csp_local.c  local channels: buffer, parked readers and writers, poison, retire
 *   csp_wait.c   how a parked operation sleeps and is woken (spin, then futex)
 *   csp_alt.c    alternation over local guards (networked: csp_net_alt)
 *   csp_proc.c   processes: parallel, sequence, spawn/join, the current name
 *   csp_trace.c  the JSON-lines trace
 *
 * How a local operation parks. Every blocked operation (a read, a write, an
 * alt over many guards) has one csp_waiter and one csp_link per guard, queued
 * on its channel. Whoever completes it (a partner, a poison, a retire) first
 * wins the waiter's `claimed` flag by compare-and-swap, so an alt parked on
 * several channels fires exactly one guard; links of a claimed waiter left
 * in other queues are stale and dropped by whoever meets them. The winner
 * fills in the result and then sets `ready`, which is the waiter's last
 * touch: the waiter lives on its owner's stack. */
#ifndef NODE_CSP_INT_H
#define NODE_CSP_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "client/client_int.h"
#include "client/csp_net.h"
#include "client/nodecsp.h"

#define CSP_ALT_MAX 64     /* guards of one alt at most (as the channel host's limit) */
#define CSP_NAME_MAX 192   /* a channel name at most (the host's limit: channel/NAME fits the name server) */
#define CSP_PROC_MAX 100   /* a process name at most (the host's limit) */

enum { CSP_READ = 0, CSP_WRITE = 1 };

/* ---- parking (csp_wait.c) ---- */

typedef struct csp_waiter {
	atomic_int claimed; /* 0 open; 1 taken by a partner, a poison, or the owner's time limit */
	atomic_int ready;   /* futex word: 0 owner spinning, 2 owner asleep, 1 the result is in */
	int fired;          /* the guard that completed */
	int rc;             /* 0, NCL_EPOISONED or NCL_ERETIRED */
	char *value;        /* input guards: the value taken, now the owner's */
} csp_waiter;

typedef struct csp_link {
	csp_waiter *w;
	struct csp_link *prev, *next;
	const char *offer;  /* output guards: the owner's value, valid while it is parked; takers copy it */
	int guard;          /* its index in the alt (0 for a plain read or write) */
	int queued;         /* on its channel's queue (changed under the channel's lock) */
} csp_link;

/* Wakes collected under a channel's lock, done after unlocking it, so the
 * woken thread does not run into the lock we still hold. */
typedef struct csp_wakes {
	csp_waiter *w[8];
	int n;
} csp_wakes;

void csp_waiter_init(csp_waiter *w);
/* Claim w for its completion: 1 when we won it. */
static inline int csp_claim(csp_waiter *w)
{
	int open = 0;
	return atomic_load_explicit(&w->claimed, memory_order_relaxed) == 0 &&
	       atomic_compare_exchange_strong(&w->claimed, &open, 1);
}
/* The result is in: wake the owner (w may be gone when this returns). */
void csp_wake(csp_waiter *w);
void csp_wakes_add(csp_wakes *k, csp_waiter *w);
void csp_wakes_run(csp_wakes *k);
/* Wait for the result until deadline (monotonic ns, < 0: none): 1 it is in, 0 time is up. */
int csp_park(csp_waiter *w, int64_t deadline_ns);
int64_t csp_now_ns(void);
int64_t csp_deadline(int timeout_ms); /* < 0 for none */

/* ---- local channels (csp_local.c) ---- */

typedef struct csp_local {
	pthread_mutex_t lock;
	const char *name;       /* the csp_chan's */
	csp_kind kind;
	size_t cap;             /* buffer size, 0 for rendezvous */
	char **buf;             /* ring of cap values */
	size_t head, count;
	csp_link *rq, *rq_tail; /* parked readers and input guards, oldest first */
	csp_link *wq, *wq_tail; /* parked writers and output guards */
	int ends[2];            /* live ends: readers, writers */
	int retired_ends[2];
	int poisoned;
	int retired;            /* the last end of a side retired: for good */
} csp_local;

int csp_local_new(csp_local **out, const char *name, csp_kind kind, int capacity, ncl_err *err);
void csp_local_free(csp_local *l);
int csp_local_end_open(csp_local *l, int dir, ncl_err *err);
void csp_local_end_close(csp_local *l, int dir);
int csp_local_retire(csp_local *l, int dir);
int csp_local_poison(csp_local *l);
int csp_local_write_many(csp_local *l, const char *const *values, size_t n, int timeout_ms, ncl_err *err);
int csp_local_read_many(csp_local *l, char **values, size_t max, size_t *got, int timeout_ms, ncl_err *err);

/* Used by csp_alt.c with l->lock held. Complete one read or write without
 * parking (a write copies v): CSP_DONE, CSP_BLOCK, else NCL_EPOISONED,
 * NCL_ERETIRED or NCL_ENOMEM. */
enum { CSP_DONE = 0, CSP_BLOCK = -1 };
int csp_local_try_get(csp_local *l, char **out, csp_wakes *k);
int csp_local_try_put(csp_local *l, const char *v, csp_wakes *k);
void csp_local_enqueue(csp_local *l, int dir, csp_link *ln);
void csp_local_unlink(csp_local *l, int dir, csp_link *ln);
/* Fill err for a failed op on l (poisoned, retired, timed out after ms). */
int csp_local_fail(csp_local *l, int rc, const char *op, int ms, ncl_err *err);

/* ---- channels and ends (csp.c) ---- */

struct csp_chan {
	char *name;
	csp_local *local;   /* exactly one of local and net */
	csp_net_chan *net;
};

struct csp_end {
	csp_chan *chan;
	int dir;            /* CSP_READ or CSP_WRITE */
	csp_net_end *net;   /* networked channels */
};

int csp_alt_local(const csp_guard *guards, int n, int flags, int timeout_ms, int *fired, char **value, ncl_err *err);

/* ---- processes (csp_proc.c) ---- */

/* The name of the process running in this thread, NULL outside one. */
const char *csp_current_proc(void);

/* ---- tracing (csp_trace.c) ---- */

extern atomic_int csp_tracing; /* a trace file is open: check before building an event */
void csp_trace_env(void);      /* start from $NODE_CSP_TRACE, once */
/* One line: chan, dir (CSP_READ/CSP_WRITE or -1) and n (< 0: none) only when given. */
void csp_trace_event(const char *event, const char *chan, int dir, long n);
static inline void csp_trace(const char *event, const char *chan, int dir, long n)
{
	if (atomic_load_explicit(&csp_tracing, memory_order_relaxed))
		csp_trace_event(event, chan, dir, n);
}

#endif
