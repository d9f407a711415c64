/* Small file helpers shared by config, TLS and roles. */
#ifndef NODE_FILE_H
#define NODE_FILE_H

#include <stddef.h>

#include "err.h"

/* Read a whole file (at most max bytes) into a NUL-terminated buffer. */
int node_file_read(const char *path, size_t max, char **out, size_t *len, node_err *err);
/* mkdir -p */
int node_file_mkdirs(const char *path, node_err *err);

#endif
