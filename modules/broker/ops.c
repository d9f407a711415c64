/* The broker's protocol (node-protocol(7), "BROKER"): the op table, the
 * checks every op shares, and parked calls that time out or lose their
 * client. The ops themselves live in submit.c, lease.c, results.c, revoke.c
 * and admin.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "core/log.h"

/* ---- validation helpers ---- */

int broker_name_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > BROKER_ID_MAX)
		return 0;
	for (; *s; s++)
		if (!(('a' <= *s && *s <= 'z') || ('A' <= *s && *s <= 'Z') || ('0' <= *s && *s <= '9') || strchr("._:-/@", *s)))
			return 0;
	return 1;
}

const char *broker_json_str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* An integer field within bounds, or def when absent; -1 on a bad value. */
int broker_json_int(const cJSON *o, const char *k, long long lo, long long hi, long long def, long long *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
	if (v == NULL) {
		*out = def;
		return 0;
	}
	if (!cJSON_IsNumber(v) || v->valuedouble != (double)(long long)v->valuedouble || v->valuedouble < lo || v->valuedouble > hi)
		return -1;
	*out = (long long)v->valuedouble;
	return 0;
}

/* ---- parked calls: time-outs and departures ---- */

void broker_expire_parked(broker *b, int64_t now, int all)
{
	broker_fetch **p = &b->fetches;
	while (*p) {
		broker_fetch *f = *p;
		if (all || f->deadline <= now) {
			*p = f->next;
			if (all && b->stopping)
				node_call_error(f->call, NODE_ERR_SHUTDOWN, "the broker is shutting down");
			else
				broker_fetch_answer(f, NULL);
			broker_fetch_free(f);
		} else {
			p = &f->next;
		}
	}
	broker_get *g = b->gets;
	while (g) {
		broker_get *next = g->next;
		if (all || g->deadline <= now)
			broker_get_answer(b, g);
		g = next;
	}
}

void broker_on_disconnect(uint32_t pipe, void *arg)
{
	broker *b = arg;
	pthread_mutex_lock(&b->lock);
	broker_fetch **p = &b->fetches;
	while (*p) {
		broker_fetch *f = *p;
		if (f->pipe == pipe) {
			*p = f->next;
			node_call_error(f->call, NODE_ERR_SHUTDOWN, "the client went away"); /* frees the call; nobody reads it */
			broker_fetch_free(f);
		} else {
			p = &f->next;
		}
	}
	for (broker_get *g = b->gets, *next; g; g = next) {
		next = g->next;
		if (g->pipe == pipe)
			broker_get_answer(b, g);
	}
	pthread_mutex_unlock(&b->lock);
}

const node_op broker_ops[] = {
	{"submit", broker_op_submit},
	{"register", broker_op_register},
	{"fetch", broker_op_fetch},
	{"report", broker_op_report},
	{"heartbeat", broker_op_heartbeat},
	{"giveback", broker_op_giveback},
	{"bye", broker_op_bye},
	{"get", broker_op_get},
	{"status", broker_op_status},
	{"queues", broker_op_queues},
	{"workers", broker_op_workers},
	{"dead", broker_op_dead},
	{"revoke", broker_op_revoke},
	{NULL, NULL},
};
