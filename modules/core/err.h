/* Errors that carry a stable code and a message meant for a person.
 * Every fallible function returns 0 or a NODE_E* value and fills a node_err. */
#ifndef NODE_ERR_H
#define NODE_ERR_H

#include <stddef.h>

enum {
	NODE_OK = 0,
	NODE_EINVAL = 1,   /* bad input from a person or a peer */
	NODE_ENOMEM = 2,
	NODE_EIO = 3,      /* file or socket failure */
	NODE_ETIMEDOUT = 4,
	NODE_EAUTH = 5,    /* signature missing, wrong, stale or replayed */
	NODE_ELIMIT = 6,   /* a size or nesting limit was exceeded */
	NODE_EREMOTE = 7,  /* the peer answered with ok:false */
	NODE_ECLOSED = 8,
	NODE_ENOTFOUND = 9,
	NODE_EEXIST = 10,  /* a name or id is taken */
};

/* Stable error codes on the wire (man/node-protocol.7). */
#define NODE_ERR_BAD_REQUEST "bad_request"
#define NODE_ERR_UNKNOWN_OP "unknown_op"
#define NODE_ERR_TOO_LARGE "too_large"
#define NODE_ERR_LIMIT "limit"
#define NODE_ERR_AUTH "unauthenticated"
#define NODE_ERR_BAD_SIGNATURE "bad_signature"
#define NODE_ERR_STALE "stale"
#define NODE_ERR_REPLAY "replayed"
#define NODE_ERR_INTERNAL "internal"
#define NODE_ERR_TIMEOUT "timeout"
#define NODE_ERR_SHUTDOWN "shutting_down"
#define NODE_ERR_BUSY "busy"
#define NODE_ERR_NOT_FOUND "not_found"
#define NODE_ERR_BAD_ARGS "bad_args"
#define NODE_ERR_BAD_CONFIG "bad_config"
#define NODE_ERR_DISK_FULL "disk_full"

typedef struct node_err {
	int rc;            /* NODE_E* */
	char code[32];     /* wire code, e.g. "timeout" */
	char msg[512];     /* one line for a person */
} node_err;

#if defined(__GNUC__)
#define NODE_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define NODE_PRINTF(a, b)
#endif

/* Fill err (may be NULL) and return rc, so callers write
 * `return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "...")`. */
int node_err_set(node_err *err, int rc, const char *code, const char *fmt, ...)
    NODE_PRINTF(4, 5);

/* Prefix an existing message with context ("config.json: ..."). */
void node_err_prefix(node_err *err, const char *fmt, ...) NODE_PRINTF(2, 3);

#endif
