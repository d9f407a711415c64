/* Log lines to stderr: `2026-11-21T10:00:00.123Z INFO broker: message` or
 * one JSON object per line. Whole lines go out in one write so threads do
 * not interleave. */
#include "log.h"

#include <cjson/cJSON.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

static atomic_int log_level = NODE_LOG_INFO;
static atomic_int log_json = 0;
static const char *log_default_role = "node";
static _Thread_local const char *log_role;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

int node_log_level_parse(const char *name, int *out)
{
	for (int i = 0; i < 4; i++) {
		if (strcasecmp(name, level_names[i]) == 0) {
			*out = i;
			return 0;
		}
	}
	if (strcasecmp(name, "warning") == 0) {
		*out = NODE_LOG_WARN;
		return 0;
	}
	return NODE_EINVAL;
}

int node_log_configure(const char *level, const char *format, node_err *err)
{
	int lv;
	if (level != NULL) {
		if (node_log_level_parse(level, &lv) != 0)
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
			    "unknown log level \"%s\" (use debug, info, warn or error)", level);
		atomic_store(&log_level, lv);
	}
	if (format != NULL) {
		if (strcmp(format, "json") == 0)
			atomic_store(&log_json, 1);
		else if (strcmp(format, "text") == 0)
			atomic_store(&log_json, 0);
		else
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
			    "unknown log format \"%s\" (use text or json)", format);
	}
	return 0;
}

void node_log_set_role(const char *role)
{
	log_role = role;
}

void node_log_set_default_role(const char *role)
{
	log_default_role = role ? role : "node";
}

static const char *log_role_now(void)
{
	return log_role ? log_role : log_default_role;
}

void node_log_reopen(void)
{
	const char *path = getenv("NODE_LOG_FILE");
	if (path == NULL || *path == '\0')
		return;
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return;
	dup2(fd, STDERR_FILENO);
	close(fd);
}

int node_log_enabled(int level)
{
	return level >= atomic_load(&log_level);
}

static void log_stamp(char *buf, size_t n)
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	size_t k = strftime(buf, n, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + k, n - k, ".%03ldZ", ts.tv_nsec / 1000000);
}

static void log_write_json(int level, const char *stamp, const char *text)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "time", stamp);
	cJSON_AddStringToObject(o, "level", level_names[level]);
	cJSON_AddStringToObject(o, "role", log_role_now());
	cJSON_AddStringToObject(o, "msg", text);
	char *s = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	if (s == NULL)
		return;
	size_t n = strlen(s);
	char *line = malloc(n + 2);
	if (line != NULL) {
		memcpy(line, s, n);
		line[n] = '\n';
		ssize_t w = write(STDERR_FILENO, line, n + 1);
		(void)w;
		free(line);
	}
	cJSON_free(s);
}

void node_log(int level, const char *fmt, ...)
{
	if (level < 0 || level > NODE_LOG_ERROR || !node_log_enabled(level))
		return;
	char text[2048], stamp[40], line[2304];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	log_stamp(stamp, sizeof stamp);
	if (atomic_load(&log_json)) {
		log_write_json(level, stamp, text);
		return;
	}
	int n = snprintf(line, sizeof line, "%s %-5s %s: %s\n", stamp, level_names[level], log_role_now(), text);
	if (n > (int)sizeof line - 1)
		n = (int)sizeof line - 1, line[n - 1] = '\n';
	ssize_t w = write(STDERR_FILENO, line, (size_t)n);
	(void)w;
}
