/* What node's own commands (node chan, node pub, node sub) need of the
 * chanhost client beyond csp_net.h: opening from a cluster file that is
 * loaded already, names, and calls that belong to no channel end. */
#ifndef NODE_CSP_NET_CONF_H
#define NODE_CSP_NET_CONF_H

#include <cjson/cJSON.h>

#include "client/csp_net.h"
#include "core/config.h"

#define CSP_NET_NAME_MAX 192 /* bytes in a channel or topic name */

/* 1 when name is 1-200 bytes of [A-Za-z0-9._:/-] (channels and topics). */
int csp_net_name_ok(const char *name);

/* csp_net_chan_open with the cluster file loaded (conf). name NULL: no
 * channel in particular (list, pub/sub): where, else the cluster file. */
int csp_net_chan_open_conf(csp_net_chan **out, const char *name, const char *where, const node_conf *conf,
    ncl_err *err);

/* One request over the channel's own connection (opened at the first call,
 * checked with a ping): the host may hold it host_ms (its park bound), the
 * reply comes within host_ms plus a grace. Errors map as for the ends
 * (poisoned, retired, conflict, timeout). *reply is the ok reply. */
int csp_net_call(csp_net_chan *c, const cJSON *req, int host_ms, cJSON **reply, ncl_err *err);

/* The host's park bound (roles.chanhost.max_park_ms) as the cluster file says. */
int csp_net_park_ms(const csp_net_chan *c);

#endif
