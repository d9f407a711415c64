/* node revoke ID...: cancel tasks before they start. A revoked task never
 * runs: it finishes at once in state revoked, and `node result` says so.
 * A task that has started or finished is left alone, with the reason. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "taskcli.h"

#define REVOKE_MAX 10000 /* ids in one revoke (the broker's GET_MAX) */

static const node_opt revoke_opts[] = {
	TASKCLI_OPTS,
	{NULL, 0, NULL, NULL},
};

static cJSON *revoke_req(const node_args *a)
{
	cJSON *req = taskcli_req("revoke");
	cJSON *ids = cJSON_AddArrayToObject(req, "ids");
	for (int i = 0; i < a->npos; i++)
		cJSON_AddItemToArray(ids, cJSON_CreateString(a->pos[i]));
	return req;
}

/* Why a task was not revoked, from the state the broker gives. */
static void revoke_why(const char *state, char *out, size_t n)
{
	if (state == NULL)
		snprintf(out, n, "the broker gave no state");
	else if (strcmp(state, "started") == 0)
		snprintf(out, n, "the task has started");
	else if (strcmp(state, "unknown") == 0)
		snprintf(out, n, "no such task");
	else if (strcmp(state, "queued") == 0) /* its submit is still on its way to disk */
		snprintf(out, n, "the task is being submitted; try again");
	else if (taskcli_state_finished(state))
		snprintf(out, n, "already finished (%s)", state);
	else
		snprintf(out, n, "the task is %s", state);
}

static void revoke_line(const taskcli *t, const cJSON *e)
{
	const char *id = taskcli_str(e, "id");
	if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "revoked"))) {
		printf("%s: %srevoked%s\n", id ? id : "?", taskcli_color_on(t->color, "yes"), taskcli_color_off(t->color));
		return;
	}
	char why[128];
	revoke_why(taskcli_str(e, "state"), why, sizeof why);
	printf("%s: %snot revoked%s: %s\n", id ? id : "?", taskcli_color_on(t->color, "no"), taskcli_color_off(t->color), why);
}

/* One line per id, in the order given; 0 when every one was revoked. */
static int revoke_print(const taskcli *t, const cJSON *results, int nids)
{
	const cJSON *e;
	int revoked = 0;
	cJSON_ArrayForEach(e, results) {
		revoked += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "revoked"));
		if (t->json)
			taskcli_print_json(stdout, e);
		else
			revoke_line(t, e);
	}
	return revoked == nids ? 0 : NODE_EXIT_FAIL;
}

static int revoke_main(node_ctx *ctx, const node_args *a)
{
	taskcli t;
	taskcli_init(&t, ctx, a);
	if (a->npos > REVOKE_MAX)
		return taskcli_usage(&t, "revoke takes at most %d ids at once", REVOKE_MAX);
	cJSON *reply = NULL;
	int rc = taskcli_query(&t, ctx, a, revoke_req(a), &reply);
	if (rc != 0)
		return rc;
	const cJSON *results = cJSON_GetObjectItemCaseSensitive(reply, "results");
	if (!cJSON_IsArray(results) || cJSON_GetArraySize(results) != a->npos) {
		node_err err;
		node_err_set(&err, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "the broker's revoke reply has no result for each id");
		rc = taskcli_fail(&t, &err);
	} else {
		rc = revoke_print(&t, results, a->npos);
	}
	return taskcli_finish(&t, reply, rc);
}

const node_cmd node_cmd_revoke = {
	.name = "revoke",
	.summary = "cancel tasks that have not started yet",
	.synopsis = "[--json] [--broker URL] ID...",
	.description =
	    "A queued task is revoked: it never runs, and its result is the error\n"
	    "\"revoked before it started\". Prints `ID: revoked` or `ID: not revoked: WHY`\n"
	    "(the task has started, already finished (STATE), no such task) per id;\n"
	    "--json prints the broker's entry {\"id\", \"revoked\", \"state\"} per line.\n"
	    "Exit status 0 when every task was revoked (again: revoking twice is fine),\n"
	    "1 otherwise, 5 when the broker did not answer.",
	.opts = revoke_opts,
	.main = revoke_main,
	.min_pos = 1,
	.max_pos = -1,
};
