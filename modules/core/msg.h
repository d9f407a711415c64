/* The wire format: one JSON object per message. Plain JSON text, or above a
 * threshold an lz4 frame behind the byte 0x01; with a cluster secret, the
 * whole thing behind a signed header (auth.h). Limits are checked on every
 * decode so bad input becomes an error, never a crash. */
#ifndef NODE_MSG_H
#define NODE_MSG_H

#include <cjson/cJSON.h>
#include <nng/nng.h>
#include <stdatomic.h>
#include <stddef.h>

#include "auth.h"
#include "err.h"

#define NODE_LZ4_MARK 0x01

typedef struct node_limits {
	size_t max_message;    /* bytes, on the wire and after decompression */
	int max_depth;         /* nesting of objects and arrays */
	size_t max_string;     /* bytes in one JSON string */
	size_t compress_above; /* compress bodies larger than this; 0 = never */
} node_limits;

#define NODE_LIMITS_DEFAULT { 16u << 20, 64, 4u << 20, 16384 }

/* How this process frames and protects messages: shared by every endpoint. */
typedef struct node_wire {
	node_limits limits;
	node_auth *auth;       /* NULL: no secret, messages are not signed */
	char *tls_cert;        /* PEM file of our certificate (tls+tcp://) */
	char *tls_key;         /* PEM file of its private key */
	char *tls_ca;          /* PEM file of the CA that signs peers */
	char *tls_server_name; /* name clients expect in the server's cert */
	int tls_require_client_cert;
	atomic_ullong refused_limits; /* messages refused for size or shape */
	atomic_ullong refused_malformed;
} node_wire;

void node_wire_init(node_wire *w);
/* The most a socket takes in: twice the message limit, so that a message a
 * little over it is read and answered too_large instead of being dropped
 * with its connection; beyond that nng drops it. */
size_t node_wire_recv_max(const node_wire *w);
void node_wire_fini(node_wire *w);

/* Encode body into a new nng message (compressed and signed as configured). */
int node_msg_encode(node_wire *w, const cJSON *body, nng_msg **out, node_err *err);
/* Decode bytes into a JSON object. check_replay: see node_auth_verify. */
int node_msg_decode(node_wire *w, const void *data, size_t len, int check_replay, cJSON **out, node_err *err);
/* The same, accepting any JSON value (JSON-RPC 2.0 batches are arrays,
 * and a JSON-RPC server answers other values itself). */
int node_msg_decode_value(node_wire *w, const void *data, size_t len, int check_replay, cJSON **out, node_err *err);
/* Parse JSON text that came some other way (an HTTP body) with the same
 * limits; any JSON value. */
int node_msg_parse_text(node_wire *w, const char *text, size_t len, cJSON **out, node_err *err);
/* Check an already parsed value against the depth and string limits. */
int node_msg_check_limits(const node_limits *lim, const cJSON *v, node_err *err);

/* Replies: {"ok":true} and {"ok":false,"error":{"code":...,"message":...}}. */
/* A value as the user wrote it, cut to NODE_EXCERPT_LEN bytes (never inside
 * a UTF-8 character) so an error about it stays one line. out: at least
 * NODE_EXCERPT_LEN + 8 bytes. */
#define NODE_EXCERPT_LEN 60
void node_json_excerpt(const cJSON *v, char *out, size_t n);

cJSON *node_reply_ok(void);
cJSON *node_reply_error(const char *code, const char *fmt, ...) NODE_PRINTF(2, 3);
cJSON *node_reply_from_err(const node_err *err);
/* Turn an {"ok":false} reply into err; returns 0 for ok replies. */
int node_reply_check(const cJSON *reply, node_err *err);

#endif
