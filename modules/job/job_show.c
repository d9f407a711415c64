/* node job status|list|kill|purge: one call each to the master, its answer
 * shown for people (a block, a table, one line) or as JSON. */
#include <string.h>

#include "core/clock.h"
#include "job/job_cli.h"
#include "taskcli.h"

/* "label:     value" lines of the status block */
#define JOB_LABEL "%-11s"

static void job_show_phase(const cJSON *st, const char *phase, const char *label)
{
	const cJSON *p = cJSON_GetObjectItemCaseSensitive(st, phase);
	char count[64];
	job_count(st, phase, count, sizeof count);
	printf(JOB_LABEL "%s done, %.0f running, %.0f failed attempts, %.0f backups\n", label, count, job_num(p, "running"),
	    job_num(p, "failed_attempts"), job_num(p, "backups"));
}

/* A time of the job (none when unset), and how long after from_key it came. */
static void job_show_time(const cJSON *st, const char *key, const char *from_key, const char *from_word, const char *label)
{
	double ms = job_num(st, key), from = from_key ? job_num(st, from_key) : 0;
	if (ms <= 0)
		return;
	char when[64], took[64] = "";
	taskcli_iso_ms((int64_t)ms, when, sizeof when);
	if (from > 0 && ms >= from) {
		char d[48];
		taskcli_duration(ms - from, d, sizeof d);
		snprintf(took, sizeof took, " (%s after %s)", d, from_word);
	}
	printf(JOB_LABEL "%s%s\n", label, when, took);
}

static void job_show_block(const cJSON *st)
{
	const char *err = job_str(st, "error");
	const cJSON *out = cJSON_GetObjectItemCaseSensitive(st, "output"), *f;
	printf(JOB_LABEL "%s\n", "id:", job_str(st, "id") ? job_str(st, "id") : "?");
	printf(JOB_LABEL "%s\n", "name:", job_str(st, "name") ? job_str(st, "name") : "?");
	printf(JOB_LABEL "%s\n", "state:", job_str(st, "state"));
	job_show_phase(st, "maps", "maps:");
	job_show_phase(st, "reduces", "reduces:");
	printf(JOB_LABEL "%.0f in, %.0f out\n", "records:", job_num(st, "records_in"), job_num(st, "records_out"));
	printf(JOB_LABEL "%.0f\n", "bytes in:", job_num(st, "bytes_in"));
	job_show_time(st, "submitted_ms", NULL, NULL, "submitted:");
	job_show_time(st, "started_ms", "submitted_ms", "submitting", "started:");
	job_show_time(st, "finished_ms", "started_ms", "starting", "finished:");
	if (job_str(out, "dir"))
		printf(JOB_LABEL "%s (%s)\n", "output:", job_str(out, "dir"), job_str(out, "format") ? job_str(out, "format") : "?");
	cJSON_ArrayForEach(f, cJSON_GetObjectItemCaseSensitive(out, "files"))
		if (cJSON_IsString(f))
			printf(JOB_LABEL "%s\n", "", f->valuestring);
	if (err)
		printf(JOB_LABEL "%s\n", "error:", err);
}

int job_status(job_cli *c, const char *id)
{
	cJSON *reply = NULL;
	const cJSON *st = NULL;
	int rc = job_call_status(c, job_req("job.status", id), 0, &reply, &st);
	if (rc != 0)
		return rc;
	if (c->json)
		job_print_json(st);
	else
		job_show_block(st);
	cJSON_Delete(reply);
	return 0;
}

/* ---- list ---- */

static void job_list_row(taskcli_table *tb, const cJSON *st)
{
	char maps[64], reds[64], age[48] = "-";
	job_count(st, "maps", maps, sizeof maps);
	job_count(st, "reduces", reds, sizeof reds);
	double sub = job_num(st, "submitted_ms");
	if (sub > 0)
		taskcli_duration((double)node_clock_wall_ms() - sub, age, sizeof age);
	const char *cells[6] = {job_str(st, "id"), job_str(st, "name"), job_str(st, "state"), maps, reds, age};
	taskcli_table_row(tb, cells);
}

int job_list(job_cli *c)
{
	cJSON *reply = NULL;
	int rc = job_call(c, job_req("job.list", NULL), 0, &reply);
	if (rc != 0)
		return rc;
	const cJSON *jobs = cJSON_GetObjectItemCaseSensitive(reply, "jobs"), *st;
	static const char *const heads[] = {"ID", "NAME", "STATE", "MAPS", "REDUCES", "AGE"};
	if (c->json) {
		cJSON_ArrayForEach(st, jobs)
			job_print_json(st);
	} else if (cJSON_GetArraySize(jobs) == 0) {
		printf("no jobs\n");
	} else {
		taskcli_table_items(jobs, 6, "lllrrr", heads, job_list_row);
	}
	cJSON_Delete(reply);
	return 0;
}

/* ---- kill, purge ---- */

int job_kill(job_cli *c, const char *id)
{
	cJSON *reply = NULL;
	const cJSON *st = NULL;
	int rc = job_call_status(c, job_req("job.kill", id), 0, &reply, &st);
	if (rc != 0)
		return rc;
	if (c->json)
		job_print_json(st);
	else
		printf("%s: %s\n", id, job_str(st, "state"));
	cJSON_Delete(reply);
	return 0;
}

int job_purge(job_cli *c, const char *id)
{
	cJSON *reply = NULL;
	int rc = job_call(c, job_req("job.purge", id), 0, &reply);
	if (rc != 0)
		return rc;
	double n = job_num(reply, "removed");
	if (c->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "id", id);
		cJSON_AddNumberToObject(o, "removed", n);
		job_print_json(o);
		cJSON_Delete(o);
	} else {
		printf("%s: purged, %.0f file%s removed\n", id, n, n == 1 ? "" : "s");
	}
	cJSON_Delete(reply);
	return 0;
}
