/* Random bytes and ids from mbedtls's CTR-DRBG, seeded from the OS.
 * Thread-safe; one generator per process. */
#ifndef NODE_RAND_H
#define NODE_RAND_H

#include <stddef.h>

#include "err.h"

int node_rand_bytes(void *buf, size_t n, node_err *err);
/* A fresh UUID-4 style id, 36 characters plus NUL. */
int node_rand_id(char out[37], node_err *err);

#endif
