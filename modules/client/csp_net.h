/* Networked channel ends of the CSP API (csp.c dispatches to these for
 * channels hosted by `node chanhost`): the chanhost protocol client, with
 * its cid/seq retries, in node-protocol(7), section CHANNEL HOST. Internal to libnodeclient
 * and used by `node chan` (modules/chan.c). */
#ifndef NODE_CSP_NET_H
#define NODE_CSP_NET_H

#include <stddef.h>

#include "client/nodeclient.h"

typedef struct csp_net_chan csp_net_chan;
typedef struct csp_net_end csp_net_end;

/* where: a URL, or NULL to look up channel/NAME at the name server and
 * else take the cluster file's chanhost. */
int csp_net_chan_open(csp_net_chan **out, const char *name, const char *where, const char *cluster_file, ncl_err *err);
void csp_net_chan_free(csp_net_chan *c);
/* The host's URL (after csp_net_chan_open resolved it). */
const char *csp_net_host(const csp_net_chan *c);

/* dir: 0 reader, 1 writer. proc names the process in the host's trace (may be NULL). */
int csp_net_end_open(csp_net_chan *c, int dir, const char *proc, csp_net_end **out, ncl_err *err);
/* Leave without retiring (tells the host, best effort) and free. */
void csp_net_end_close(csp_net_end *e);

int csp_net_write_many(csp_net_end *w, const char *const *values, size_t n, int timeout_ms, ncl_err *err);
int csp_net_read_many(csp_net_end *r, char **values, size_t max, size_t *got, int timeout_ms, ncl_err *err);
int csp_net_poison(csp_net_end *e, ncl_err *err);
/* Retire and free the end. */
int csp_net_retire(csp_net_end *e, ncl_err *err);
/* values[i] NULL: ends[i] is an input guard; else an output guard writing it.
 * Flags and results as csp_alt. Every end must be of the same host (NCL_EINVAL). */
int csp_net_alt(csp_net_end *const *ends, const char *const *values, int n, int flags, int timeout_ms, int *fired,
    char **value, ncl_err *err);
/* Same host? (for csp_alt's check) */
int csp_net_same_host(const csp_net_end *a, const csp_net_end *b);

#endif
