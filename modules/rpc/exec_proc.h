/* The processes of remote execution (exec.c): the allow-list, starting a
 * program with posix_spawn in a process group of its own (nng is not
 * fork-safe), killing the group, and reaping. exec_proc.c has the code. */
#ifndef NODE_RPC_EXEC_PROC_H
#define NODE_RPC_EXEC_PROC_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <sys/types.h>

#include "core/err.h"

#define EXEC_ALLOW_MAX 1024 /* entries in an allow-list */

/* One allow-list entry: what a request's argv[0] must equal, and what runs. */
typedef struct exec_allowed {
	char *name;  /* the entry as written: "uname" or "/usr/bin/uname" */
	char *path;  /* absolute; NULL when a bare name was not in PATH at start */
} exec_allowed;

typedef struct exec_allow {
	exec_allowed *v;
	int n;
} exec_allow;

/* Read list (an array of strings) and resolve bare names in PATH now. */
int exec_allow_load(exec_allow *a, const cJSON *list, node_err *err);
/* The entry argv0 equals exactly, or NULL. */
const exec_allowed *exec_allow_find(const exec_allow *a, const char *argv0);
void exec_allow_free(exec_allow *a);

/* The environment commands get: a few harmless variables of the server's
 * (PATH, HOME, LANG, ...), never its secrets. NULL-terminated, owned. */
char **exec_env_new(void);
void exec_env_free(char **env);

typedef struct exec_spawn {
	const char *path;   /* absolute path of the program */
	char *const *argv;  /* argv[0] as the caller wrote it */
	char *const *env;
	const char *dir;    /* working directory; NULL: the server's */
	const char *in;     /* standard input bytes; NULL: /dev/null */
	size_t in_len;
} exec_spawn;

/* Start sp. *pid leads a new process group; fd[0] and fd[1] read its
 * stdout and stderr (non-blocking, close-on-exec). */
int exec_proc_spawn(const exec_spawn *sp, pid_t *pid, int fd[2], node_err *err);
/* SIGKILL the group of pid, which must not be reaped yet. */
void exec_proc_kill(pid_t pid);
/* 1: pid has ended; what it left in its group is killed, pid is reaped
 * and *wstatus set. 0: still running. -1: not our child any more. */
int exec_proc_reap(pid_t pid, int *wstatus);

#endif
