/* Shared command plumbing: option lookups, usage text, stop requests and
 * error-to-exit-status mapping, so each command's file holds only its job. */
#include "cmd.h"

#include "log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void node_stop_init(node_stop *s)
{
	pthread_mutex_init(&s->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->cond, &ca);
	pthread_condattr_destroy(&ca);
	s->stopped = 0;
}

void node_stop_request(node_stop *s)
{
	pthread_mutex_lock(&s->lock);
	s->stopped = 1;
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->lock);
}

int node_stop_requested(node_stop *s)
{
	pthread_mutex_lock(&s->lock);
	int r = s->stopped;
	pthread_mutex_unlock(&s->lock);
	return r;
}

int node_stop_wait(node_stop *s, int timeout_ms)
{
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	if (timeout_ms >= 0) {
		until.tv_sec += timeout_ms / 1000;
		until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
		if (until.tv_nsec >= 1000000000L) {
			until.tv_sec++;
			until.tv_nsec -= 1000000000L;
		}
	}
	pthread_mutex_lock(&s->lock);
	while (!s->stopped) {
		if (timeout_ms < 0)
			pthread_cond_wait(&s->cond, &s->lock);
		else if (pthread_cond_timedwait(&s->cond, &s->lock, &until) == ETIMEDOUT)
			break;
	}
	int r = s->stopped;
	pthread_mutex_unlock(&s->lock);
	return r;
}

const char *node_args_get(const node_args *a, const char *name)
{
	for (int i = a->nopts - 1; i >= 0; i--)
		if (strcmp(a->opt_name[i], name) == 0)
			return a->opt_value[i];
	return NULL;
}

int node_args_has(const node_args *a, const char *name)
{
	return node_args_get(a, name) != NULL;
}

int node_args_int(const node_args *a, const char *name, long long min, long long max, long long def, long long *out, node_err *err)
{
	const char *v = node_args_get(a, name);
	if (v == NULL) {
		*out = def;
		return 0;
	}
	char *end;
	errno = 0;
	long long x = strtoll(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || x < min || x > max)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "--%s: expected an integer from %lld to %lld, got \"%s\"", name, min, max, v);
	*out = x;
	return 0;
}

void node_cmd_usage(const node_cmd *cmd, FILE *f)
{
	const char *syn = cmd->synopsis ? cmd->synopsis : "";
	fprintf(f, "usage: node %s%s%s\n\n%s\n", cmd->name, *syn ? " " : "", syn, cmd->summary);
	if (cmd->description && *cmd->description)
		fprintf(f, "\n%s\n", cmd->description);
	if (cmd->opts && cmd->opts[0].name) {
		fprintf(f, "\noptions:\n");
		for (const node_opt *o = cmd->opts; o->name; o++) {
			char head[80];
			if (o->letter)
				snprintf(head, sizeof head, "-%c, --%s%s%s", o->letter, o->name, o->arg ? " " : "", o->arg ? o->arg : "");
			else
				snprintf(head, sizeof head, "    --%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
			fprintf(f, "  %-28s %s\n", head, o->help);
		}
	}
	fprintf(f, "\nglobal options: --config FILE, --name NODE, --data-dir DIR, --log-level LEVEL,\n"
	           "  --log-format text|json, --timeout MS, --help (see node(1))\n");
}

int node_cmd_fail(const node_cmd *cmd, const node_err *err)
{
	fprintf(stderr, "node %s: %s\n", cmd ? cmd->name : "", err->msg);
	switch (err->rc) {
	case NODE_ETIMEDOUT:
		return NODE_EXIT_TIMEOUT;
	default:
		return NODE_EXIT_FAIL;
	}
}

static int cmd_usage_error(const node_cmd *cmd, const node_err *err)
{
	fprintf(stderr, "node: %s\n", err->msg);
	if (cmd)
		node_cmd_usage(cmd, stderr);
	return NODE_EXIT_USAGE;
}

int node_cmd_setup_logging(node_ctx *ctx, const node_args *a)
{
	const char *level = node_args_get(a, "log-level");
	const char *format = node_args_get(a, "log-format");
	if (level == NULL)
		level = getenv("NODE_LOG_LEVEL") ? getenv("NODE_LOG_LEVEL") : node_conf_str(&ctx->conf, "defaults.log_level", "info");
	if (format == NULL)
		format = node_conf_str(&ctx->conf, "defaults.log_format", "text");
	node_err err = {0};
	if (node_log_configure(level, format, &err) != 0)
		return cmd_usage_error(ctx->cmd, &err);
	return 0;
}

static void print_config_errors(const char *source, cJSON *errors, const node_err *err)
{
	int n = cJSON_GetArraySize(errors);
	if (n == 0) {
		fprintf(stderr, "node: %s\n", err->msg);
		return;
	}
	const cJSON *e;
	cJSON_ArrayForEach(e, errors)
		fprintf(stderr, "%s: %s\n", source, cJSON_IsString(e) ? e->valuestring : "?");
}

/* Load the cluster file, pick the node, apply flags. */
int node_cmd_setup_conf(node_ctx *ctx, const node_args *a)
{
	node_err err = {0};
	cJSON *errors = NULL;
	const char *path = node_args_get(a, "config");
	if (node_conf_load(&ctx->conf, path, &errors, &err) != 0) {
		print_config_errors(path ? path : getenv("NODE_CONFIG") ? getenv("NODE_CONFIG") : "node.json", errors, &err);
		cJSON_Delete(errors);
		return NODE_EXIT_CONFIG;
	}
	cJSON_Delete(errors);
	const char *name = node_args_get(a, "name");
	if ((ctx->cmd->role || name) && node_conf_select(&ctx->conf, name, &err) != 0) {
		fprintf(stderr, "node: %s\n", err.msg);
		return NODE_EXIT_CONFIG;
	}
	const char *dir = node_args_get(a, "data-dir");
	int rc = 0;
	if (dir)
		rc = node_conf_set(&ctx->conf, "defaults.data_dir", cJSON_CreateString(dir), &err);
	if (dir && rc == 0 && ctx->conf.node) {
		char p[300];
		snprintf(p, sizeof p, "nodes.%s.data_dir", ctx->conf.node);
		rc = node_conf_set(&ctx->conf, p, cJSON_CreateString(dir), &err);
	}
	if (rc != 0)
		return cmd_usage_error(ctx->cmd, &err);
	long long t;
	if (node_args_int(a, "timeout", 1, 86400000, node_conf_int(&ctx->conf, "defaults.timeout_ms", 5000), &t, &err) != 0)
		return cmd_usage_error(ctx->cmd, &err);
	ctx->timeout_ms = (int)t;
	return 0;
}

int node_cmd_setup(node_ctx *ctx, const node_args *a)
{
	int rc = node_cmd_setup_conf(ctx, a);
	if (rc != 0)
		return rc;
	node_err err = {0};
	if (node_conf_wire(&ctx->conf, &ctx->wire, &err) != 0) {
		fprintf(stderr, "node: %s\n", err.msg);
		return NODE_EXIT_CONFIG;
	}
	return node_cmd_setup_logging(ctx, a);
}

