/* The arguments of mr.map and mr.reduce tasks: the normalised job with
 * only the inputs the task needs, its chunk (a byte range of a file, a URL
 * or a text), and for a reduce the map outputs it merges. */
#include <stdlib.h>
#include <string.h>

#include "mapreduce/master.h"

static const char *const mr_in_keys[] = {[MR_IN_FILE] = "file", [MR_IN_URL] = "url", [MR_IN_TEXT] = "text",
    [MR_IN_JOB] = "job"};

/* Maps that number lines need the count of lines before the chunk. */
static int mr_map_wants_lines(const mr_job *job)
{
	if (job->map.kind == MR_FN_PLUGIN)
		return 1;
	return job->map.kind == MR_FN_BUILTIN &&
	       (strcmp(job->map.name, "grep") == 0 || strcmp(job->map.name, "split-words") == 0);
}

/* {"file": PATH} and friends: input idx in long form (-1: the empty text). */
static cJSON *mr_input_long(const mr_job *job, int idx)
{
	cJSON *o = cJSON_CreateObject();
	if (idx < 0)
		cJSON_AddStringToObject(o, "text", "");
	else
		cJSON_AddStringToObject(o, mr_in_keys[job->inputs[idx].kind], job->inputs[idx].value);
	return o;
}

/* The normalised job whose "inputs" holds input idx only. */
static cJSON *mr_job_for(const mr_mjob *j, int idx)
{
	cJSON *o = cJSON_Duplicate(j->norm, 1);
	cJSON *in = cJSON_CreateArray();
	if (o == NULL || in == NULL) {
		cJSON_Delete(o);
		cJSON_Delete(in);
		return NULL;
	}
	cJSON_AddItemToArray(in, mr_input_long(j->job, idx));
	cJSON_ReplaceItemInObjectCaseSensitive(o, "inputs", in);
	return o;
}

static cJSON *mr_chunk_json(const mr_mjob *j, size_t i)
{
	const mr_chunk *c = &j->chunks[i];
	cJSON *o = mr_input_long(j->job, c->input);
	if (o && c->input >= 0 && j->job->inputs[c->input].kind == MR_IN_FILE) {
		cJSON_AddNumberToObject(o, "offset", (double)c->offset);
		cJSON_AddNumberToObject(o, "length", (double)c->length);
		cJSON_AddBoolToObject(o, "lines", mr_map_wants_lines(j->job));
	}
	return o;
}

static cJSON *mr_sources(const mr_mjob *j)
{
	static const char *const keys[] = {"url", "host", "path", "dir", NULL};
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < j->nmaps; i++) {
		cJSON *s = cJSON_CreateObject();
		cJSON_AddNumberToObject(s, "task", (double)i);
		for (int k = 0; keys[k]; k++) {
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(j->maps[i].res, keys[k]);
			cJSON_AddStringToObject(s, keys[k], cJSON_IsString(v) ? v->valuestring : "");
		}
		cJSON_AddItemToArray(a, s);
	}
	return a;
}

char *mr_args_build(const mr_mjob *j, int reduce, size_t i, int attempt)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "job_id", j->id);
	cJSON_AddItemToObject(o, "job", mr_job_for(j, reduce ? (j->job->n_inputs ? 0 : -1) : j->chunks[i].input));
	cJSON_AddNumberToObject(o, reduce ? "partition" : "task", (double)i);
	cJSON_AddNumberToObject(o, "attempt", attempt);
	if (reduce)
		cJSON_AddItemToObject(o, "sources", mr_sources(j));
	else
		cJSON_AddItemToObject(o, "input", mr_chunk_json(j, i));
	cJSON *args = cJSON_CreateArray();
	char *text = NULL;
	if (args && o && cJSON_AddItemToArray(args, o)) {
		o = NULL;
		text = cJSON_PrintUnformatted(args);
	}
	cJSON_Delete(o);
	cJSON_Delete(args);
	return text;
}
