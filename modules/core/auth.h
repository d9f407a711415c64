/* Message authentication: HMAC-SHA256 (mbedtls) over timestamp, nonce and
 * body, a freshness window and a replay cache of recently seen nonces.
 * One node_auth per process, shared by every endpoint; thread-safe. */
#ifndef NODE_AUTH_H
#define NODE_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define NODE_AUTH_MARK 0x02       /* first byte of a signed message */
#define NODE_AUTH_NONCE 16
#define NODE_AUTH_MAC 32
#define NODE_AUTH_HEADER (1 + 8 + NODE_AUTH_NONCE + NODE_AUTH_MAC)

typedef struct node_auth node_auth;

/* Counters of refused messages, read by `info` and /metrics. */
typedef struct node_auth_stats {
	uint64_t unsigned_refused;
	uint64_t bad_mac;
	uint64_t stale;
	uint64_t replayed;
} node_auth_stats;

int node_auth_new(node_auth **out, const void *secret, size_t len, int window_ms, node_err *err);
void node_auth_free(node_auth *a);
/* Write the header (NODE_AUTH_HEADER bytes) that signs body[0..len). */
int node_auth_sign(node_auth *a, const void *body, size_t len, unsigned char *hdr, node_err *err);
/* Check a whole signed message; on success body and blen point past the header.
 * check_replay: servers refuse a nonce seen before; clients only check the MAC
 * and the clock (REQ/REP already matches replies to requests). */
int node_auth_verify(node_auth *a, const void *msg, size_t len, int check_replay,
    const void **body, size_t *blen, node_err *err);
void node_auth_count_unsigned(node_auth *a);
void node_auth_stats_get(node_auth *a, node_auth_stats *out);
/* Test hook: pretend the clock is off by this many milliseconds. */
/* HTTP endpoints of a cluster with a secret want "Authorization: Bearer
 * TOKEN"; the token (64 hex digits) is an HMAC of a fixed label. */
int node_auth_http_token(node_auth *a, char *out, size_t n, node_err *err);
/* 1 when the Authorization header carries the token. */
int node_auth_http_check(node_auth *a, const char *authorization);
void node_auth_set_skew(node_auth *a, int64_t skew_ms);

#endif
