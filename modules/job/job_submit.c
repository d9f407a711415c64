/* node job submit FILE: the job file is read and checked here, with the
 * parser the master and workers use (mr_job_load), before anything is
 * sent; its normalised form goes to the master, the id comes back and is
 * printed; --wait then follows the job (job_wait.c). */
#include <stdlib.h>
#include <string.h>

#include "job/job_cli.h"
#include "mapreduce/job.h"

/* {"op": "job.submit", "job": NORMALISED}, or NULL after printing why (*rc). */
static cJSON *job_submit_req(job_cli *c, const char *path, int *rc)
{
	mr_job *j = NULL;
	node_err err = {0};
	if (mr_job_load(path, &j, &err) != 0) {
		job_warn(c, "%s", err.msg); /* names the file and the JSON path */
		*rc = err.rc == NODE_ENOMEM ? JOB_EXIT_FAILED : JOB_EXIT_USAGE;
		return NULL;
	}
	cJSON *norm = mr_job_to_json(j);
	mr_job_free(j);
	cJSON *req = norm ? job_req("job.submit", NULL) : NULL;
	if (req == NULL || !cJSON_AddItemToObject(req, "job", norm)) {
		cJSON_Delete(req);
		if (req == NULL)
			cJSON_Delete(norm);
		job_warn(c, "out of memory");
		*rc = JOB_EXIT_FAILED;
		return NULL;
	}
	return req;
}

/* The master refused the job: a job it finds wrong (code "invalid": an
 * earlier job that is not done, an output directory it cannot write) is a
 * bad job file as much as one refused here. */
static int job_refused(job_cli *c, const node_err *err)
{
	if (err->rc == NODE_EREMOTE && strcmp(err->code, "invalid") == 0) {
		job_warn(c, "%s", err->msg);
		return JOB_EXIT_USAGE;
	}
	return job_fail(c, err);
}

int job_submit(job_cli *c)
{
	const node_args *a = c->a;
	if (a->npos != 2)
		return job_usage(c, "submit takes one job FILE (node-job(5))");
	int wait = node_args_has(a, "wait") || node_args_has(a, "progress");
	long long wait_s = -1;
	const char *ts = node_args_get(a, "timeout");
	if (wait && ts) {
		/* With --wait, --timeout is the wait in seconds (as for node submit); calls keep the configured limit. */
		wait_s = strtoll(ts, NULL, 10); /* a whole number: checked by node_cmd_setup */
		c->call_ms = (int)node_conf_int(&c->ctx->conf, "defaults.timeout_ms", 5000);
	}
	int rc = 0;
	cJSON *req = job_submit_req(c, a->pos[1], &rc), *reply = NULL;
	if (req == NULL)
		return rc;
	if ((rc = job_open(c)) != 0) {
		cJSON_Delete(req);
		return rc;
	}
	node_err err = {0};
	if (job_call_quiet(c, req, 0, &reply, &err) != 0) {
		rc = job_refused(c, &err);
	} else if (job_str(reply, "id") == NULL) {
		job_warn(c, "the master at %s accepted the job without giving its id", c->url);
		rc = JOB_EXIT_FAILED;
	} else {
		const char *id = job_str(reply, "id");
		if (c->json) {
			fputs("{\"id\":", stdout);
			char *q = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(reply, "id"));
			fputs(q ? q : "null", stdout);
			cJSON_free(q);
			fputs("}\n", stdout);
		} else {
			printf("%s\n", id);
		}
		fflush(stdout);
		if (wait)
			rc = job_wait(c, id, wait_s);
	}
	cJSON_Delete(reply);
	job_close(c);
	return rc;
}
