/* A role's names at the name server (node-nameserver(1)): each name points
 * at the role's address with a time to live that a heartbeat renews, so a
 * role that dies disappears. Used by rpc (objects) and chanhost (channels).
 *
 * Rules:
 * - Threads: node_names_add and node_names_drop may be called from any
 *   thread, nng callbacks included: they only change the wanted set under a
 *   lock and never touch the network. Everything else (open, tick, leave,
 *   close) runs on one thread, the role's own loop; only it talks to the
 *   name server, with blocking calls of at most cfg.timeout_ms each.
 * - Registering: a name added is registered at the next tick, in the order
 *   names were added. "exists" at our own address (the same role before a
 *   restart) is taken back; at another address it is an error unless
 *   cfg.replace: tick gives that name up and returns NODE_EEXIST (a start
 *   fails on it; later, log it and call tick again for the rest). A name
 *   the name server refuses (bad_args, ...) is given up at once so it cannot
 *   keep the others out. An unreachable name server is tried again one
 *   heartbeat later, warned about once until it answers again.
 * - Heartbeat: every third of cfg.ttl_s (at least 200 ms) one renew per
 *   10000 names, sent with our address: "missing" names (a name server that
 *   lost them) are registered again; "foreign" ones (another address took
 *   them over) are given up for good, unless added again.
 * - Dropping: a dropped name is removed at the name server at the next tick
 *   (only at our address), and forgotten; adding it again before that just
 *   keeps it. Adding a name that is there already replaces its meta and
 *   registers it again.
 * - Leaving (node_names_leave, node_names_close): every registered name is
 *   removed, one call each; the first call the name server does not answer
 *   ends it (the TTL removes the rest). After leave, add is refused and
 *   drop ignored; after close nothing may touch n, so a role whose
 *   callbacks add names stops them (or calls leave) before close.
 * - Limits: at most cfg.max_names names wanted at once, each 1 to
 *   NODE_NAMES_NAME_MAX-1 bytes (the name server itself takes 200). */
#ifndef NODE_NAMES_H
#define NODE_NAMES_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "err.h"
#include "msg.h"

#define NODE_NAMES_NAME_MAX 256     /* bytes in a name, with its NUL */
#define NODE_NAMES_DEFAULT_MAX 1024 /* names at most when cfg.max_names is 0 */
#define NODE_NAMES_RENEW_BATCH 10000 /* names in one renew (the name server's limit) */
#define NODE_NAMES_DEFAULT_TIMEOUT_MS 5000

typedef struct node_names node_names;

/* The meta registered with name when it was added without one: a new
 * object (taken) or NULL for none. Runs on the tick thread, no lock held. */
typedef cJSON *(*node_names_meta_fn)(const char *name, void *arg);
/* A name was given up (taken over by another address, refused by the name
 * server, or held by another at registration): runs on the tick thread. */
typedef void (*node_names_lost_fn)(const char *name, const node_err *why, void *arg);

typedef struct node_names_cfg {
	const char *nameserver;   /* the name server's URL */
	node_wire *wire;          /* kept, not copied: must outlive n */
	const char *address;      /* ours: what every name points at */
	int ttl_s;                /* registrations live this long unless renewed; 0: never expire */
	int replace;              /* take over names held by another address */
	int timeout_ms;           /* each call to the name server; 0: NODE_NAMES_DEFAULT_TIMEOUT_MS */
	size_t max_names;         /* names wanted at once; 0: NODE_NAMES_DEFAULT_MAX */
	int budget_ms;            /* a tick stops registering/removing after this long; 0: no limit */
	int quiet;                /* each name's registration at debug level instead of info */
	node_names_meta_fn meta;  /* may be NULL */
	node_names_lost_fn lost;  /* may be NULL */
	void *arg;                /* for meta and lost */
} node_names_cfg;

/* Connect (nng dials in the background: a name server that is not up yet
 * is fine) and copy cfg's strings. Registers nothing yet: add, then tick.
 * The first renew is one heartbeat after open. */
int node_names_open(node_names **out, const node_names_cfg *cfg, node_err *err);

/* Want name registered with meta (copied; NULL: cfg.meta gives it at
 * registration). Any thread, never blocks on the network. NODE_EINVAL for
 * an empty or too long name, NODE_ELIMIT past cfg.max_names, NODE_ECLOSED
 * after leave. */
int node_names_add(node_names *n, const char *name, const cJSON *meta, node_err *err);

/* Want name gone: removed at the name server at the next tick. Any
 * thread, never blocks; a name not added is ignored. */
void node_names_drop(node_names *n, const char *name);

/* The network work, from the role's loop thread, as often as it likes (it
 * returns at once when there is nothing to do): the heartbeat when due,
 * then the queued registrations and removals. Returns 0, or NODE_EEXIST
 * with err set when a name is held by another address and !cfg.replace
 * (that name is given up; the rest wait for the next call). */
int node_names_tick(node_names *n, node_err *err);

/* Names wanted right now (added and not dropped). Any thread. */
size_t node_names_count(node_names *n);

/* Remove every registered name from the name server (see the rules) and
 * take no more. Loop thread. */
void node_names_leave(node_names *n);

/* Leave (if not done) and free n. NULL is fine. Loop thread. */
void node_names_close(node_names *n);

#endif
