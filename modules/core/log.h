/* Logging to stderr, as text or JSON lines, with levels.
 * One process-wide sink (stderr is process-wide anyway); each thread can
 * carry a role tag so `node up` shows which role wrote a line. */
#ifndef NODE_LOG_H
#define NODE_LOG_H

#include "err.h"

enum node_log_level { NODE_LOG_DEBUG, NODE_LOG_INFO, NODE_LOG_WARN, NODE_LOG_ERROR };

/* Returns NODE_EINVAL for an unknown level or format name. */
int node_log_configure(const char *level, const char *format, node_err *err);
int node_log_level_parse(const char *name, int *out);
/* The role tag of the calling thread ("broker", "up", ...). */
void node_log_set_role(const char *role);
/* The tag of threads that set none (nng's), e.g. the command's name. */
void node_log_set_default_role(const char *role);
/* SIGHUP: reopen stderr from NODE_LOG_FILE if it names a file. */
void node_log_reopen(void);
int node_log_enabled(int level);
void node_log(int level, const char *fmt, ...) NODE_PRINTF(2, 3);

#define node_debug(...) node_log(NODE_LOG_DEBUG, __VA_ARGS__)
#define node_info(...) node_log(NODE_LOG_INFO, __VA_ARGS__)
#define node_warn(...) node_log(NODE_LOG_WARN, __VA_ARGS__)
#define node_error(...) node_log(NODE_LOG_ERROR, __VA_ARGS__)

#endif
