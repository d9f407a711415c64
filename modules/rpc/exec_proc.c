/* The processes of remote execution: the allow-list (bare names resolved in
 * PATH once, at start), the small environment commands get, posix_spawn
 * into a process group of their own with standard input from memory and
 * stdout/stderr to pipes, and killing and reaping whole groups. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "rpc/exec_proc.h"

#define EXEC_PATH_MAX 4096
#define EXEC_DEFAULT_PATH "/usr/local/bin:/usr/bin:/bin"

/* ---- the allow-list ---- */

static int is_program(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) && access(path, X_OK) == 0;
}

/* The first executable file called name in $PATH, or NULL. Relative PATH
 * entries are skipped: what runs must not depend on the directory. */
static char *which(const char *name)
{
	const char *p = getenv("PATH");
	if (p == NULL || p[0] == '\0')
		p = EXEC_DEFAULT_PATH;
	char buf[EXEC_PATH_MAX];
	for (;;) {
		size_t len = strcspn(p, ":");
		int w = snprintf(buf, sizeof buf, "%.*s/%s", (int)len, p, name);
		if (p[0] == '/' && w > 0 && (size_t)w < sizeof buf && is_program(buf))
			return strdup(buf);
		if (p[len] == '\0')
			return NULL;
		p += len + 1;
	}
}

static int allow_one(exec_allowed *out, const cJSON *e, node_err *err)
{
	const char *s = cJSON_GetStringValue(e);
	if (s == NULL || s[0] == '\0' || strlen(s) >= EXEC_PATH_MAX)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG,
		    "roles.rpc.exec.allow: every entry must be a program name or an absolute path");
	int absolute = s[0] == '/';
	if (!absolute && (strchr(s, '/') || strcmp(s, ".") == 0 || strcmp(s, "..") == 0))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG,
		    "roles.rpc.exec.allow: \"%.200s\" must be an absolute path or a bare program name (no relative paths)", s);
	out->name = strdup(s);
	out->path = absolute ? strdup(s) : which(s);
	if (out->name == NULL || (absolute && out->path == NULL))
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	if (out->path == NULL)
		node_warn("exec: %s (roles.rpc.exec.allow) is not in PATH; requests for it will fail", s);
	else if (!is_program(out->path))
		node_warn("exec: %s (roles.rpc.exec.allow) is not an executable file here; requests for it will fail", s);
	else if (!absolute)
		node_debug("exec: %s is %s", s, out->path);
	return 0;
}

int exec_allow_load(exec_allow *a, const cJSON *list, node_err *err)
{
	*a = (exec_allow){0};
	int n = cJSON_GetArraySize(list);
	if (!cJSON_IsArray(list) || n < 1 || n > EXEC_ALLOW_MAX)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "roles.rpc.exec.allow: expected a list of 1 to %d commands",
		    EXEC_ALLOW_MAX);
	if ((a->v = calloc((size_t)n, sizeof *a->v)) == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	const cJSON *e;
	cJSON_ArrayForEach(e, list) {
		int rc = allow_one(&a->v[a->n], e, err);
		a->n++; /* counted even when half made, so that free sees it */
		if (rc != 0) {
			exec_allow_free(a);
			return rc;
		}
	}
	return 0;
}

const exec_allowed *exec_allow_find(const exec_allow *a, const char *argv0)
{
	for (int i = 0; i < a->n; i++)
		if (strcmp(a->v[i].name, argv0) == 0)
			return &a->v[i];
	return NULL;
}

void exec_allow_free(exec_allow *a)
{
	for (int i = 0; i < a->n; i++) {
		free(a->v[i].name);
		free(a->v[i].path);
	}
	free(a->v);
	*a = (exec_allow){0};
}

/* ---- the environment ---- */

static const char *const exec_env_keep[] = {
	"PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "USER", "LOGNAME", "TMPDIR", NULL,
};

char **exec_env_new(void)
{
	char **env = calloc(sizeof exec_env_keep / sizeof *exec_env_keep, sizeof *env);
	int n = 0;
	for (int i = 0; env && exec_env_keep[i]; i++) {
		const char *v = getenv(exec_env_keep[i]);
		if (v == NULL && strcmp(exec_env_keep[i], "PATH") == 0)
			v = EXEC_DEFAULT_PATH;
		if (v == NULL)
			continue;
		size_t len = strlen(exec_env_keep[i]) + strlen(v) + 2;
		if ((env[n] = malloc(len)) == NULL) {
			exec_env_free(env);
			return NULL;
		}
		snprintf(env[n++], len, "%s=%s", exec_env_keep[i], v);
	}
	return env;
}

void exec_env_free(char **env)
{
	for (int i = 0; env && env[i]; i++)
		free(env[i]);
	free(env);
}

/* ---- starting ---- */

/* The child's standard input: the bytes in a memory file (no pipe to feed,
 * so no writer can block), or /dev/null. */
static int stdin_fd(const exec_spawn *sp, node_err *err)
{
	if (sp->in == NULL) {
		int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot open /dev/null: %s", strerror(errno));
		return fd;
	}
	int fd = memfd_create("node-exec-stdin", MFD_CLOEXEC);
	if (fd < 0) {
		node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot hold the standard input: %s", strerror(errno));
		return -1;
	}
	for (size_t done = 0; done < sp->in_len;) {
		ssize_t w = write(fd, sp->in + done, sp->in_len - done);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot hold the standard input: %s", strerror(errno));
			close(fd);
			return -1;
		}
		done += (size_t)w;
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

/* Everything else the child gets: its own process group, no blocked or
 * ignored signals (the server blocks SIGINT and ignores SIGPIPE), none of
 * the server's descriptors. */
static int spawn_setup(posix_spawn_file_actions_t *fa, posix_spawnattr_t *at, const exec_spawn *sp, int in, int out, int errfd)
{
	sigset_t none, all;
	sigemptyset(&none);
	sigfillset(&all);
	int e = posix_spawn_file_actions_adddup2(fa, in, 0);
	if (e == 0)
		e = posix_spawn_file_actions_adddup2(fa, out, 1);
	if (e == 0)
		e = posix_spawn_file_actions_adddup2(fa, errfd, 2);
	if (e == 0 && sp->dir)
		e = posix_spawn_file_actions_addchdir_np(fa, sp->dir);
	if (e == 0)
		e = posix_spawn_file_actions_addclosefrom_np(fa, 3);
	if (e == 0)
		e = posix_spawnattr_setsigmask(at, &none);
	if (e == 0)
		e = posix_spawnattr_setsigdefault(at, &all);
	if (e == 0)
		e = posix_spawnattr_setpgroup(at, 0);
	if (e == 0)
		e = posix_spawnattr_setflags(at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	return e;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

int exec_proc_spawn(const exec_spawn *sp, pid_t *pid, int fd[2], node_err *err)
{
	int po[2] = {-1, -1}, pe[2] = {-1, -1};
	int in = stdin_fd(sp, err);
	if (in < 0)
		return err->rc;
	int rc = 0;
	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
		rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot make a pipe: %s", strerror(errno));
	} else {
		posix_spawn_file_actions_t fa;
		posix_spawnattr_t at;
		posix_spawn_file_actions_init(&fa);
		posix_spawnattr_init(&at);
		int e = spawn_setup(&fa, &at, sp, in, po[1], pe[1]);
		if (e == 0)
			e = posix_spawn(pid, sp->path, &fa, &at, sp->argv, sp->env);
		posix_spawn_file_actions_destroy(&fa);
		posix_spawnattr_destroy(&at);
		if (e != 0)
			rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot start %s: %s", sp->path, strerror(e));
	}
	close_fd(&in);
	close_fd(&po[1]);
	close_fd(&pe[1]);
	if (rc != 0) {
		close_fd(&po[0]);
		close_fd(&pe[0]);
		return rc;
	}
	/* Non-blocking: one thread reads every command's pipes. */
	fcntl(po[0], F_SETFL, fcntl(po[0], F_GETFL) | O_NONBLOCK);
	fcntl(pe[0], F_SETFL, fcntl(pe[0], F_GETFL) | O_NONBLOCK);
	fd[0] = po[0];
	fd[1] = pe[0];
	return 0;
}

/* ---- stopping ---- */

void exec_proc_kill(pid_t pid)
{
	if (pid <= 0)
		return;
	kill(-pid, SIGKILL);
	kill(pid, SIGKILL); /* in case it left its group */
}

int exec_proc_reap(pid_t pid, int *wstatus)
{
	siginfo_t si;
	memset(&si, 0, sizeof si);
	/* Look without reaping: while the leader is a zombie its pid, and so
	 * the group id, cannot go to another process. */
	if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
		return errno == EINTR ? 0 : -1;
	if (si.si_pid == 0)
		return 0;
	kill(-pid, SIGKILL); /* what it left behind dies with it */
	pid_t r;
	do
		r = waitpid(pid, wstatus, 0);
	while (r < 0 && errno == EINTR);
	return r == pid ? 1 : -1;
}
