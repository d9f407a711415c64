/* node submit's tasks made ready to send: what a task leaves out filled in
 * from the flags, each checked and given an id (a UUID made here, so a batch
 * re-sent after a broker restart is one task), and the tasks cut into batches. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/rand.h"
#include "submit.h"

#define SUB_BATCH_BYTES (4u << 20)   /* a submit message carries about this much at most */

/* ---- ids ---- */

typedef struct sub_rng {
	uint64_t s[4];
} sub_rng;

static uint64_t sub_rotl(uint64_t x, int k)
{
	return (x << k) | (x >> (64 - k));
}

/* xoshiro256**, seeded from the system generator: UUID-4 ids at memory speed. */
static uint64_t sub_next(sub_rng *r)
{
	uint64_t *s = r->s;
	uint64_t res = sub_rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
	s[2] ^= s[0];
	s[3] ^= s[1];
	s[1] ^= s[2];
	s[0] ^= s[3];
	s[2] ^= t;
	s[3] = sub_rotl(s[3], 45);
	return res;
}

static void sub_uuid(sub_rng *r, char out[37])
{
	static const char hex[] = "0123456789abcdef";
	uint8_t b[16];
	uint64_t x = sub_next(r), y = sub_next(r);
	memcpy(b, &x, 8);
	memcpy(b + 8, &y, 8);
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	int o = 0;
	for (int i = 0; i < 16; i++) {
		if (i == 4 || i == 6 || i == 8 || i == 10)
			out[o++] = '-';
		out[o++] = hex[b[i] >> 4];
		out[o++] = hex[b[i] & 15];
	}
	out[o] = '\0';
}

static void sub_seed(sub_rng *rng)
{
	node_err err = {0};
	if (node_rand_bytes(rng->s, sizeof rng->s, &err) == 0)
		return;
	/* No system generator: ids need to be unique, not unguessable. */
	uint64_t seed = (uint64_t)node_clock_mono_ms() ^ ((uint64_t)getpid() << 32);
	for (int i = 0; i < 4; i++)
		rng->s[i] = seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
}

/* Task i's id, generated when it has none, into r->ids[i]. */
static int sub_take_id(submit_run *r, int i, cJSON *task, sub_rng *rng)
{
	const char *tid = taskcli_str(task, "id");
	char gen[37];
	if (tid == NULL) {
		sub_uuid(rng, gen);
		cJSON_AddStringToObject(task, "id", gen);
		tid = gen;
	}
	r->ids[i] = strdup(tid);
	return r->ids[i] ? 0 : NODE_ENOMEM;
}

/* ---- tasks and batches ---- */

/* Room for every task's id, batch and "done" mark. */
int submit_alloc(submit_run *r)
{
	size_t n = (size_t)cJSON_GetArraySize(r->tasks) + 1;
	r->ntasks = (int)n - 1;
	r->ids = calloc(n, sizeof *r->ids);
	r->batches = calloc(n, sizeof *r->batches);
	r->done = calloc(n, 1);
	r->futs = calloc(n, sizeof *r->futs);
	r->watches = calloc(n, sizeof *r->watches);
	if (r->ids == NULL || r->batches == NULL || r->done == NULL || r->futs == NULL || r->watches == NULL) {
		taskcli_warn(r->t, "out of memory");
		return NODE_EXIT_FAIL;
	}
	return 0;
}

void submit_free(submit_run *r)
{
	for (int k = 0; r->ids && k < r->ntasks; k++)
		free(r->ids[k]);
	free(r->ids);
	free(r->batches);
	free(r->done);
	free(r->futs);
	free(r->watches);
	cJSON_Delete(r->tasks);
}

/* Roughly the bytes of v as compact JSON (to keep messages under the limit). */
static size_t sub_json_size(const cJSON *v, int depth)
{
	size_t n = v->string ? strlen(v->string) + 4 : 0;
	if (depth > 200)
		return n + 16;
	if (cJSON_IsString(v))
		return n + strlen(v->valuestring) + 2;
	if (cJSON_IsNumber(v))
		return n + 24;
	if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
		n += 2;
		for (const cJSON *c = v->child; c; c = c->next)
			n += sub_json_size(c, depth + 1) + 1;
		return n;
	}
	return n + 5;
}

/* What a task leaves out, from --queue, --priority, --id, --kwargs, --options. */
static void sub_defaults(cJSON *task, const submit_flags *o)
{
	if (!cJSON_IsObject(task))
		return; /* submit_check_task says what is wrong */
	if (o->queue && !cJSON_HasObjectItem(task, "queue"))
		cJSON_AddStringToObject(task, "queue", o->queue);
	if (o->prio >= 0 && !cJSON_HasObjectItem(task, "priority"))
		cJSON_AddNumberToObject(task, "priority", (double)o->prio);
	if (o->id && !cJSON_HasObjectItem(task, "id"))
		cJSON_AddStringToObject(task, "id", o->id);
	if (o->kwargs && !cJSON_HasObjectItem(task, "kwargs"))
		cJSON_AddItemToObject(task, "kwargs", cJSON_Duplicate(o->kwargs, 1));
	if (o->options && !cJSON_HasObjectItem(task, "options"))
		cJSON_AddItemToObject(task, "options", cJSON_Duplicate(o->options, 1));
}

/* Put task i (about sz bytes) in the last batch, or start a new one: up to
 * max tasks and about SUB_BATCH_BYTES each; *bytes counts the last batch's. */
static void sub_batch_add(submit_run *r, int i, size_t sz, long long max, size_t *bytes)
{
	submit_batch *last = r->nbatches ? &r->batches[r->nbatches - 1] : NULL;
	if (last == NULL || last->count >= max || (*bytes + sz > SUB_BATCH_BYTES && last->count > 0)) {
		last = &r->batches[r->nbatches++];
		last->first = i;
		last->count = 0;
		*bytes = 0;
	}
	last->count++;
	*bytes += sz;
}

/* Fill in, check, name and batch every task before anything is sent. */
int submit_prepare(submit_run *r, const submit_flags *o)
{
	node_err err = {0};
	sub_rng rng;
	sub_seed(&rng);
	int file_array = r->src && r->ntasks > 1;
	size_t bytes = 0;
	int i = 0;
	for (cJSON *task = r->tasks->child; task; task = task->next, i++) {
		sub_defaults(task, o);
		char where[600];
		if (file_array)
			snprintf(where, sizeof where, "%s: [%d]", r->src, i);
		else
			snprintf(where, sizeof where, "%s", r->src ? r->src : "");
		if (submit_check_task(task, where, &err) != 0) {
			taskcli_warn(r->t, "%s", err.msg);
			return NODE_EXIT_USAGE;
		}
		if (sub_take_id(r, i, task, &rng) != 0) {
			taskcli_warn(r->t, "out of memory");
			return NODE_EXIT_FAIL;
		}
		sub_batch_add(r, i, sub_json_size(task, 0), o->batch, &bytes);
	}
	return 0;
}
