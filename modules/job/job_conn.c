/* node job's side of the wire: finding the MapReduce master, calling it,
 * and turning what went wrong into one line and an exit status. */
#include <stdarg.h>
#include <string.h>

#include "job/job_cli.h"

#define JOB_PEER "mapreduce master"

void job_init(job_cli *c, node_ctx *ctx, const node_args *a)
{
	memset(c, 0, sizeof *c);
	c->ctx = ctx;
	c->a = a;
	c->json = node_args_has(a, "json");
	c->call_ms = ctx->timeout_ms > 0 ? ctx->timeout_ms : 5000;
}

int job_open(job_cli *c)
{
	node_err err = {0};
	const char *url = node_args_get(c->a, "master");
	if ((url == NULL || *url == '\0') && node_conf_role_url(&c->ctx->conf, "mapreduce", "listen", &url, &err) != 0) {
		job_warn(c, "%s, or give --master URL", err.msg);
		return JOB_EXIT_UNREACHABLE;
	}
	c->url = url;
	if (node_client_open(&c->cl, url, JOB_PEER, &c->ctx->wire, &err) != 0) {
		c->cl = NULL;
		if (err.rc == NODE_EINVAL) /* an address nng cannot dial */
			return job_usage(c, "%s", err.msg);
		return job_fail(c, &err);
	}
	return 0;
}

void job_close(job_cli *c)
{
	node_client_close(c->cl);
	c->cl = NULL;
	fflush(stdout);
}

/* stdout first, so that what was printed before the message stays before it. */
static void job_vsay(const job_cli *c, const char *fmt, va_list ap)
{
	fflush(stdout);
	if (c && c->note && c->note->line_open) {
		fputc('\n', stderr);
		c->note->line_open = 0;
	}
	fputs("node job: ", stderr);
	vfprintf(stderr, fmt, ap);
}

void job_warn(const job_cli *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	job_vsay(c, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int job_usage(const job_cli *c, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	job_vsay(c, fmt, ap);
	va_end(ap);
	fputs("\n(see node job --help)\n", stderr);
	return JOB_EXIT_USAGE;
}

int job_fail(const job_cli *c, const node_err *err)
{
	switch (err->rc) {
	case NODE_ETIMEDOUT:
	case NODE_ECLOSED:
	case NODE_EIO: /* the transport's own failures: the master is not there */
		job_warn(c, "%s (is node mapreduce running there? --master URL, else roles.mapreduce.listen)", err->msg);
		return JOB_EXIT_UNREACHABLE;
	default: /* the master's answer (ok:false), a limit, memory */
		job_warn(c, "%s", err->msg);
		return JOB_EXIT_FAILED;
	}
}

cJSON *job_req(const char *op, const char *id)
{
	cJSON *r = cJSON_CreateObject();
	if (r == NULL || cJSON_AddStringToObject(r, "op", op) == NULL || (id && cJSON_AddStringToObject(r, "id", id) == NULL)) {
		cJSON_Delete(r);
		return NULL;
	}
	return r;
}

int job_call_quiet(job_cli *c, cJSON *req, int timeout_ms, cJSON **reply, node_err *err)
{
	*reply = NULL;
	int rc = req ? node_client_call(c->cl, req, timeout_ms > 0 ? timeout_ms : c->call_ms, reply, err)
	             : node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	cJSON_Delete(req);
	if (rc == 0)
		return 0;
	cJSON_Delete(*reply); /* an ok:false answer: err holds its message */
	*reply = NULL;
	return rc;
}

int job_call(job_cli *c, cJSON *req, int timeout_ms, cJSON **reply)
{
	node_err err = {0};
	if (job_call_quiet(c, req, timeout_ms, reply, &err) == 0)
		return 0;
	return job_fail(c, &err);
}

int job_call_status(job_cli *c, cJSON *req, int timeout_ms, cJSON **reply, const cJSON **st)
{
	int rc = job_call(c, req, timeout_ms, reply);
	if (rc != 0)
		return rc;
	*st = cJSON_GetObjectItemCaseSensitive(*reply, "job");
	if (cJSON_IsObject(*st) && job_str(*st, "state") != NULL)
		return 0;
	job_warn(c, "the master at %s answered without a job status", c->url);
	cJSON_Delete(*reply);
	*reply = NULL;
	return JOB_EXIT_FAILED;
}

/* ---- a status object ---- */

const char *job_str(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

void job_print_json(const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);
	fputs(s ? s : "null", stdout);
	fputc('\n', stdout);
	cJSON_free(s);
}

double job_num(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

void job_count(const cJSON *st, const char *phase, char *out, size_t n)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(st, phase);
	snprintf(out, n, "%.0f/%.0f", job_num(p, "done"), job_num(p, "total"));
}

int job_finished(const char *state)
{
	return state && (strcmp(state, "done") == 0 || strcmp(state, "failed") == 0 || strcmp(state, "killed") == 0);
}
