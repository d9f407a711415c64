/* Commands and the context they run in. Each command is one file under
 * modules/ that exports a node_cmd; node.c lists them in one table, parses
 * global and per-command options in one place, then calls the entry. */
#ifndef NODE_CMD_H
#define NODE_CMD_H

#include <pthread.h>
#include <stdio.h>

#include "config.h"
#include "err.h"
#include "msg.h"
#include "version.h"

/* Exit statuses (node(1)). */
enum {
	NODE_EXIT_OK = 0,
	NODE_EXIT_FAIL = 1,    /* the operation failed (remote error, task failed) */
	NODE_EXIT_USAGE = 2,   /* bad command line */
	NODE_EXIT_CONFIG = 3,  /* the cluster file is invalid */
	NODE_EXIT_START = 4,   /* a role could not start (address in use, data dir) */
	NODE_EXIT_TIMEOUT = 5, /* a peer did not answer in time */
};

typedef struct node_opt {
	const char *name;    /* long name without "--" */
	char letter;         /* short option, 0 for none */
	const char *arg;     /* argument name, NULL for a flag */
	const char *help;
} node_opt;

/* A stop request shared by every role of the process (signals, `node up`). */
typedef struct node_stop {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	int stopped;
} node_stop;

void node_stop_init(node_stop *s);
void node_stop_request(node_stop *s);
int node_stop_requested(node_stop *s);
/* Wait until stopped or timeout_ms (< 0: forever); returns 1 when stopped. */
int node_stop_wait(node_stop *s, int timeout_ms);

#define NODE_ARGS_MAX 64

typedef struct node_args {
	const char *opt_name[NODE_ARGS_MAX];
	const char *opt_value[NODE_ARGS_MAX]; /* "" for flags */
	int nopts;
	char **pos;   /* positional arguments */
	int npos;
} node_args;

/* The last value of option name, or NULL when not given. */
const char *node_args_get(const node_args *a, const char *name);
int node_args_has(const node_args *a, const char *name);
/* Parse an integer option within bounds; fills err naming the option. */
int node_args_int(const node_args *a, const char *name, long long min, long long max, long long def, long long *out, node_err *err);

typedef struct node_ctx {
	node_conf conf;       /* effective cluster configuration */
	node_wire wire;       /* limits, secret and TLS from conf */
	const char *data_dir; /* --data-dir, or NULL */
	int timeout_ms;       /* client calls: defaults.timeout_ms or --timeout */
	node_stop *stop;
	const struct node_cmd *cmd;
} node_ctx;

typedef struct node_cmd {
	const char *name;
	const char *summary;  /* one line for `node help` */
	const char *synopsis; /* "[--queues Q,...] [--concurrency N]" */
	const char *description;
	const node_opt *opts; /* ends with {NULL} */
	int (*main)(node_ctx *ctx, const node_args *args);
	int role;             /* 1: a long-running role that `node up` starts */
	int min_pos, max_pos; /* positional argument count bounds; max -1 = any */
	int own_config;       /* 1: the command reads cluster files itself (help, config) */
} node_cmd;

/* The command table (node.c). */
extern const node_cmd *const node_cmds[];
const node_cmd *node_cmd_find(const char *name);
void node_cmd_usage(const node_cmd *cmd, FILE *f);

/* Load the cluster file (--config, $NODE_CONFIG, ./node.json or the embedded
 * default), choose the node, apply --data-dir and --timeout, build the wire
 * and set up logging. Returns an exit status (0 on success). */
int node_cmd_setup(node_ctx *ctx, const node_args *a);
/* The same without reading secrets and certificates (config show). */
int node_cmd_setup_conf(node_ctx *ctx, const node_args *a);
int node_cmd_setup_logging(node_ctx *ctx, const node_args *a);

/* Report err for a command and return the matching exit status. */
int node_cmd_fail(const node_cmd *cmd, const node_err *err);

#endif
