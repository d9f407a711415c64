/* node pub TOPIC [MESSAGE...] and node sub TOPIC [--count N]: the fan-out
 * topics of a `node chanhost` from the shell. pub sends each MESSAGE, or
 * each stdin line, to every current subscriber; sub subscribes, long-polls
 * and prints what comes, warning when the host dropped messages for it. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chancli.h"
#include "commands.h"
#include "core/clock.h"
#include "core/rand.h"
#include "taskcli.h"

#define SUB_NEXT_MAX 1000 /* values asked for in one pub.next */

static const node_opt pub_opts[] = {
	{"host", 0, "URL", "chanhost address (default: channel/TOPIC at the name server, else the cluster file's chanhost)"},
	{"json", 0, NULL, "pub: each MESSAGE or line is JSON text; sub: print every message as JSON"},
	{"count", 0, "N", "sub: exit after N messages"},
	{NULL, 0, NULL, NULL},
};

/* ---- pub ---- */

typedef struct pub_cli {
	node_ctx *ctx;
	csp_net_chan *host;
	const char *topic;
	uint64_t subscribers; /* of the last publish */
} pub_cli;

/* Publish n JSON texts in one message. */
static int pub_send_vals(pub_cli *p, char *const *vals, size_t n)
{
	cJSON *req = cJSON_CreateObject(), *arr = cJSON_CreateArray(), *reply = NULL;
	cJSON_AddStringToObject(req, "op", "pub.publish");
	cJSON_AddStringToObject(req, "topic", p->topic);
	cJSON_AddItemToObject(req, "values", arr);
	for (size_t i = 0; i < n; i++) /* checked JSON already */
		cJSON_AddItemToArray(arr, cJSON_Parse(vals[i]));
	ncl_err err = {0};
	int rc = csp_net_call(p->host, req, 0, &reply, &err);
	cJSON_Delete(req);
	if (rc == 0)
		p->subscribers = (uint64_t)cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(reply, "subscribers"));
	cJSON_Delete(reply);
	return rc ? chancli_fail(p->ctx, &err) : 0;
}

static int pub_send(chancli_batch *b, void *arg)
{
	return pub_send_vals(arg, b->vals, b->n);
}

static int pub_args(pub_cli *p, char **args, int n, int json)
{
	chancli_batch *b = calloc(1, sizeof *b);
	int rc = b ? 0 : chancli_usage(p->ctx, "out of memory");
	for (int i = 0; i < n && rc == 0; i++) {
		ncl_err err = {0};
		if ((b->vals[b->n] = chancli_value(args[i], json, &err)) == NULL) {
			rc = chancli_usage(p->ctx, "--json: MESSAGE %d is %s", i + 1, err.msg);
			break;
		}
		b->bytes += strlen(b->vals[b->n++]);
		if (b->n == CHANCLI_BATCH_VALUES || b->bytes >= CHANCLI_BATCH_BYTES || i == n - 1) {
			rc = pub_send(b, p);
			chancli_batch_clear(b);
		}
	}
	if (b)
		chancli_batch_clear(b);
	free(b);
	return rc;
}

static int pub_main(node_ctx *ctx, const node_args *a)
{
	pub_cli p = {.ctx = ctx, .topic = a->pos[0]};
	chancli_on_stop(ctx, NULL, NULL);
	int rc = chancli_open(ctx, a, p.topic, &p.host);
	int json = node_args_has(a, "json");
	if (rc == 0)
		rc = a->npos > 1 ? pub_args(&p, a->pos + 1, a->npos - 1, json) : chancli_stdin(ctx, json, pub_send, &p);
	csp_net_chan_free(p.host);
	return rc;
}

const node_cmd node_cmd_pub = {
	.name = "pub",
	.summary = "publish messages on a topic of a chanhost to every subscriber",
	.synopsis = "TOPIC [MESSAGE...] [--json] [--host URL]",
	.description =
	    "Sends each MESSAGE, or each line of stdin (in batches sent as soon as stdin\n"
	    "pauses), as a JSON string (--json: as JSON) to every current subscriber of TOPIC\n"
	    "(node sub). Nothing is kept for subscribers that come later. Exit status 0 on\n"
	    "success, 1 when the host refused, 2 for a bad command line, 3 when the cluster\n"
	    "file names no chanhost, 5 when the chanhost cannot be reached (node-pub(1)).",
	.opts = pub_opts,
	.main = pub_main,
	.min_pos = 1,
	.max_pos = -1,
};

/* ---- sub ---- */

typedef struct sub_cli {
	node_ctx *ctx;
	csp_net_chan *host;
	char id[48];
	int json;
	double dropped; /* the host's counter as last seen */
} sub_cli;

static cJSON *sub_req(const sub_cli *s, const char *op)
{
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", op);
	cJSON_AddStringToObject(req, "sub", s->id);
	return req;
}

/* Best effort: the host also forgets us when our connection closes. */
static void sub_unsubscribe(void *arg)
{
	sub_cli *s = arg;
	cJSON *req = sub_req(s, "pub.unsubscribe"), *reply = NULL;
	csp_net_call(s->host, req, 0, &reply, NULL);
	cJSON_Delete(req);
	cJSON_Delete(reply);
}

static int sub_subscribe(sub_cli *s, const char *topic)
{
	char id[37];
	node_err ne = {0};
	ncl_err err = {0};
	if (node_rand_id(id, &ne) != 0)
		return chancli_usage(s->ctx, "%s", ne.msg);
	snprintf(s->id, sizeof s->id, "s-%s", id);
	cJSON *req = sub_req(s, "pub.subscribe"), *reply = NULL;
	cJSON_AddStringToObject(req, "topic", topic);
	int rc = csp_net_call(s->host, req, 0, &reply, &err);
	cJSON_Delete(req);
	cJSON_Delete(reply);
	return rc ? chancli_fail(s->ctx, &err) : 0;
}

/* Print a pub.next reply's values, at most left of them; returns how many. */
static long long sub_show(sub_cli *s, const cJSON *reply, long long left)
{
	double dropped = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(reply, "dropped"));
	if (dropped > s->dropped) {
		chancli_warn(s->ctx, "%.0f messages dropped: this subscriber was too slow (buffer roles.chanhost.sub_buffer)",
		    dropped - s->dropped);
		s->dropped = dropped;
	}
	long long n = 0;
	const cJSON *v;
	cJSON_ArrayForEach(v, cJSON_GetObjectItemCaseSensitive(reply, "values")) {
		if (left >= 0 && n == left)
			break;
		char *text = cJSON_PrintUnformatted(v);
		if (text)
			chancli_print(text, s->json);
		free(text);
		n++;
	}
	return n;
}

/* Long-poll pub.next until count messages, a deadline or an error. */
static int sub_loop(sub_cli *s, long long count, int wait_ms)
{
	int64_t deadline = ncl_deadline(wait_ms);
	long long got = 0;
	int park = csp_net_park_ms(s->host);
	while (count < 0 || got < count) {
		long long want = count < 0 || count - got > SUB_NEXT_MAX ? SUB_NEXT_MAX : count - got;
		int64_t left = deadline < 0 ? park : deadline - node_clock_mono_ms();
		if (left <= 0) {
			chancli_warn(s->ctx, "--timeout %d s ran out (%lld messages)", wait_ms / 1000, got);
			return CHANCLI_EXIT_TIMEOUT;
		}
		cJSON *req = sub_req(s, "pub.next"), *reply = NULL;
		cJSON_AddNumberToObject(req, "max", (double)want);
		cJSON_AddNumberToObject(req, "timeout_ms", (double)(left < park ? left : park));
		ncl_err err = {0};
		int rc = csp_net_call(s->host, req, (int)(left < park ? left : park), &reply, &err);
		cJSON_Delete(req);
		if (rc == NCL_ETIMEDOUT)
			continue; /* nothing in this poll */
		if (rc != 0)
			return chancli_fail(s->ctx, &err);
		got += sub_show(s, reply, count < 0 ? -1 : count - got);
		cJSON_Delete(reply);
		if (fflush(stdout) != 0 || ferror(stdout))
			break; /* nobody reads our output any more */
	}
	return 0;
}

static int sub_main(node_ctx *ctx, const node_args *a)
{
	sub_cli s = {.ctx = ctx, .json = node_args_has(a, "json")};
	long long count = -1;
	node_err ne = {0};
	if (node_args_int(a, "count", 1, 1LL << 62, -1, &count, &ne) != 0)
		return chancli_usage(ctx, "%s", ne.msg);
	int rc = chancli_open(ctx, a, a->pos[0], &s.host);
	if (rc == 0)
		rc = sub_subscribe(&s, a->pos[0]);
	if (rc == 0) {
		chancli_on_stop(ctx, sub_unsubscribe, &s);
		rc = sub_loop(&s, count, chancli_wait_ms(a));
		sub_unsubscribe(&s);
	}
	csp_net_chan_free(s.host);
	return rc;
}

const node_cmd node_cmd_sub = {
	.name = "sub",
	.summary = "subscribe to a topic of a chanhost and print its messages",
	.synopsis = "TOPIC [--count N] [--json] [--timeout S] [--host URL]",
	.description =
	    "Prints every message published on TOPIC from now on, one per line (a string as\n"
	    "it is, else compact JSON; --json: always JSON), until N messages, --timeout S\n"
	    "seconds or a signal. The host keeps at most roles.chanhost.sub_buffer messages\n"
	    "for a subscriber; past that the oldest go and a warning on stderr says how many.\n"
	    "Exit status 0 after N messages, 1 when the host refused, 2 for a bad command\n"
	    "line, 3 when the cluster file names no chanhost, 5 when the chanhost cannot be\n"
	    "reached, 124 when --timeout ran out, 130 on SIGINT/SIGTERM (node-pub(1)).",
	.opts = pub_opts,
	.main = sub_main,
	.min_pos = 1,
	.max_pos = 1,
};
