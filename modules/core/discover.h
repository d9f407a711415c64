/* Finding a role by UDP broadcast, what Pyro4's locateNS and Parallel
 * Python's -a do: a responder thread answers "where is the name server of
 * cluster X?" and a finder asks every IPv4 broadcast domain of this machine.
 * node_nameserver_url is the one way a client picks the name server. */
#ifndef NODE_DISCOVER_H
#define NODE_DISCOVER_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "err.h"

#define NODE_DISCOVER_PORT 7111        /* UDP port of queries and answers */
#define NODE_DISCOVER_TIMEOUT_MS 1500  /* how long a finder waits by default */
#define NODE_DISCOVER_MAX 1500         /* bytes in a datagram; larger ones are ignored */
#define NODE_DISCOVER_Q "node-discover"
#define NODE_DISCOVER_V 1

typedef struct node_discover node_discover;

typedef struct node_discover_cfg {
	int port;             /* UDP port to answer on; 0: NODE_DISCOVER_PORT */
	const char *role;     /* role answered for; NULL: "nameserver" */
	const char *url;      /* the role's address; a wildcard host (0.0.0.0, ::, *) is
	                         replaced by the address each query arrived on */
	const char *cluster;  /* queries naming another cluster get no answer */
	const char *node;     /* node name, in answers (may be NULL) */
} node_discover_cfg;

typedef struct node_discover_stats {
	uint64_t answered;    /* answers sent */
	uint64_t ignored;     /* malformed, too big, or a role or version we do not serve */
	uint64_t other;       /* well-formed, for another cluster */
	uint64_t unreachable; /* from another machine while url is loopback-only */
} node_discover_stats;

/* Bind UDP cfg->port on every IPv4 address and answer queries from a thread.
 * NODE_EIO (port in use, no sockets) with a message naming the port. */
int node_discover_start(node_discover **out, const node_discover_cfg *cfg, node_err *err);
/* Stop the thread (promptly: it is woken, not polled) and free d. NULL is fine. */
void node_discover_stop(node_discover *d);
void node_discover_stats_get(const node_discover *d, node_discover_stats *st);
/* The port it answers on. */
int node_discover_port(const node_discover *d);

/* Broadcast a query for cluster's name server on UDP port (0: the default) to
 * every up IPv4 interface that has a broadcast address, to 255.255.255.255
 * and to loopback, a few times within timeout_ms; the first valid answer's
 * URL goes to url. NODE_ETIMEDOUT when none came, NODE_ELIMIT when the URL
 * does not fit in n, NODE_EIO when no query could be sent. */
int node_discover_find(const char *cluster, int port, int timeout_ms, char *url, size_t n, node_err *err);

/* The name server's address for a client: flag_url unless it is NULL, empty or
 * "auto"; else the cluster file's roles.nameserver.listen; else, when
 * defaults.discovery is true (or flag_url is "auto"), a broadcast with
 * defaults.discovery_port and defaults.discovery_timeout_ms. NODE_ENOTFOUND
 * when there is no file entry and discovery is off; node_discover_find's
 * errors otherwise. */
int node_nameserver_url(const node_conf *c, const char *flag_url, char *out, size_t n, node_err *err);

#endif
