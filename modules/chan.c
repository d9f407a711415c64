/* node chan write|read|alt|poison|retire|create|delete|list: the channels of
 * a `node chanhost` from the shell (PyCSP's networked channels), through the
 * same client as the C API (modules/client/csp_net.c). Usage in
 * node_cmd_chan below and in man/node-chan.1. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chancli.h"
#include "client/nodecsp.h"
#include "commands.h"
#include "core/clock.h"
#include "taskcli.h"

#define CHAN_READ_BATCH 1000 /* values asked for in one read */

static const node_opt chan_opts[] = {
	{"host", 0, "URL", "chanhost address (default: channel/NAME at the name server, else the cluster file's chanhost)"},
	{"json", 0, NULL, "values are JSON text (write: each VALUE or line is parsed; read, alt: printed as JSON); list: JSON lines"},
	{"count", 0, "N", "read: stop after N values"},
	{"retire", 0, NULL, "write: retire the writer end at the end, so readers finish after the last value"},
	{"reader", 0, NULL, "retire: retire a reader end (default: a writer end)"},
	{"kind", 0, "KIND", "create: any2any (default), one2one, one2any or any2one"},
	{"capacity", 0, "N", "create: buffered values (default 0: rendezvous)"},
	{"skip", 0, NULL, "alt: do not wait when no guard is ready"},
	{"priority", 0, NULL, "alt: the first ready guard in order fires (default: fair)"},
	{NULL, 0, NULL, NULL},
};

typedef struct chan_cli {
	node_ctx *ctx;
	const node_args *a;
	csp_net_chan *chan;
	int json;
	const char *name; /* the channel */
	int wait_ms;   /* --timeout S, or -1 */
	char proc[64]; /* names this process in the host's trace */
} chan_cli;

/* ---- write ---- */

typedef struct chan_writer {
	chan_cli *c;
	csp_net_end *w;
} chan_writer;

static int chan_send(chancli_batch *b, void *arg)
{
	chan_writer *cw = arg;
	ncl_err err = {0};
	if (csp_net_write_many(cw->w, (const char *const *)b->vals, b->n, cw->c->wait_ms, &err) == 0)
		return 0;
	return chancli_fail(cw->c->ctx, &err);
}

/* The VALUE arguments as one batch (csp_net_write_many splits it). */
static int chan_write_args(chan_writer *cw, char **args, int n)
{
	char **vals = calloc((size_t)n, sizeof *vals);
	if (vals == NULL)
		return chancli_usage(cw->c->ctx, "out of memory");
	int rc = 0;
	for (int i = 0; i < n && rc == 0; i++) {
		ncl_err err = {0};
		if ((vals[i] = chancli_value(args[i], cw->c->json, &err)) == NULL)
			rc = chancli_usage(cw->c->ctx, "--json: VALUE %d is %s", i + 1, err.msg);
	}
	if (rc == 0) {
		ncl_err err = {0};
		if (csp_net_write_many(cw->w, (const char *const *)vals, (size_t)n, cw->c->wait_ms, &err) != 0)
			rc = chancli_fail(cw->c->ctx, &err);
	}
	for (int i = 0; i < n; i++)
		free(vals[i]);
	free(vals);
	return rc;
}

static int chan_write(chan_cli *c, char **args, int n)
{
	chan_writer cw = {c, NULL};
	ncl_err err = {0};
	if (csp_net_end_open(c->chan, 1, c->proc, &cw.w, &err) != 0)
		return chancli_fail(c->ctx, &err);
	int rc = n > 0 ? chan_write_args(&cw, args, n) : chancli_stdin(c->ctx, c->json, chan_send, &cw);
	if (rc == 0 && node_args_has(c->a, "retire")) {
		if (csp_net_retire(cw.w, &err) != 0)
			rc = chancli_fail(c->ctx, &err);
	} else {
		csp_net_end_close(cw.w);
	}
	return rc;
}

/* ---- read ---- */

/* Print a batch; 1 when stdout is gone (a closed pipe: stop reading). */
static int chan_print_batch(const chan_cli *c, char **vals, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		chancli_print(vals[i], c->json);
		free(vals[i]);
	}
	return fflush(stdout) != 0 || ferror(stdout);
}

static int chan_read(chan_cli *c)
{
	long long count = -1;
	node_err ne = {0};
	if (node_args_int(c->a, "count", 1, 1LL << 62, -1, &count, &ne) != 0)
		return chancli_usage(c->ctx, "%s", ne.msg);
	csp_net_end *r = NULL;
	ncl_err err = {0};
	if (csp_net_end_open(c->chan, 0, c->proc, &r, &err) != 0)
		return chancli_fail(c->ctx, &err);
	char **vals = malloc(CHAN_READ_BATCH * sizeof *vals);
	int64_t deadline = ncl_deadline(c->wait_ms);
	long long got = 0;
	int rc = vals ? 0 : chancli_usage(c->ctx, "out of memory");
	while (rc == 0 && (count < 0 || got < count)) {
		size_t max = count < 0 || count - got > CHAN_READ_BATCH ? CHAN_READ_BATCH : (size_t)(count - got), n = 0;
		int64_t left = deadline < 0 ? -1 : deadline - node_clock_mono_ms();
		int r_rc = csp_net_read_many(r, vals, max, &n, deadline < 0 ? -1 : left > 0 ? (int)left : 0, &err);
		if (r_rc == NCL_EPOISONED || r_rc == NCL_ERETIRED)
			break; /* the end of the stream */
		if (r_rc == NCL_ETIMEDOUT && deadline >= 0)
			snprintf(err.msg, sizeof err.msg, "read %s: --timeout %d s ran out (%lld values read)", c->name,
			    c->wait_ms / 1000, got);
		if (r_rc != 0) {
			rc = chancli_fail(c->ctx, &err);
			break;
		}
		got += (long long)n;
		if (chan_print_batch(c, vals, n))
			break; /* nobody reads our output any more */
	}
	free(vals);
	csp_net_end_close(r);
	return rc;
}

/* ---- alt ---- */

/* Guards: CHAN reads, CHAN=VALUE writes VALUE. ends[i] and vals[i] are set. */
static int chan_alt_guards(chan_cli *c, char **args, int n, csp_net_chan **chans, csp_net_end **ends, char **vals)
{
	for (int i = 0; i < n; i++) {
		char *eq = strchr(args[i], '=');
		if (eq)
			*eq = '\0';
		int rc = chancli_open(c->ctx, c->a, args[i], &chans[i]);
		if (rc != 0)
			return rc;
		ncl_err err = {0};
		if (eq && (vals[i] = chancli_value(eq + 1, c->json, &err)) == NULL)
			return chancli_usage(c->ctx, "--json: the value for %s is %s", args[i], err.msg);
		if (i > 0 && strcmp(csp_net_host(chans[i]), csp_net_host(chans[0])) != 0)
			return chancli_usage(c->ctx, "%s is on chanhost %s, %s on %s: an alt's channels share one host", args[0],
			    csp_net_host(chans[0]), args[i], csp_net_host(chans[i]));
		if (csp_net_end_open(chans[i], eq != NULL, c->proc, &ends[i], &err) != 0)
			return chancli_fail(c->ctx, &err);
	}
	return 0;
}

static void chan_alt_show(const chan_cli *c, char **args, int fired, const char *value)
{
	if (c->json) {
		printf("{\"index\":%d,\"chan\":", fired);
		taskcli_put_jstr(stdout, args[fired]);
		printf(value ? ",\"value\":%s}\n" : "}\n", value);
	} else if (value) {
		printf("%s ", args[fired]);
		chancli_print(value, 0);
	} else {
		printf("%s\n", args[fired]);
	}
}

static int chan_alt(chan_cli *c, char **args, int n)
{
	if (n > 64)
		return chancli_usage(c->ctx, "alt takes at most 64 channels");
	csp_net_chan *chans[64] = {0};
	csp_net_end *ends[64] = {0};
	char *vals[64] = {0};
	int rc = chan_alt_guards(c, args, n, chans, ends, vals);
	if (rc == 0) {
		int flags = (node_args_has(c->a, "skip") ? CSP_ALT_SKIP : 0) | (node_args_has(c->a, "priority") ? CSP_ALT_PRIORITY : 0);
		int fired = -1;
		char *value = NULL;
		ncl_err err = {0};
		if (csp_net_alt(ends, (const char *const *)vals, n, flags, c->wait_ms, &fired, &value, &err) != 0)
			rc = chancli_fail(c->ctx, &err);
		else if (fired >= 0)
			chan_alt_show(c, args, fired, value);
		else
			rc = flags & CSP_ALT_SKIP ? NODE_EXIT_FAIL : CHANCLI_EXIT_TIMEOUT;
		free(value);
	}
	for (int i = 0; i < n; i++) {
		csp_net_end_close(ends[i]);
		csp_net_chan_free(chans[i]);
		free(vals[i]);
	}
	return rc;
}

/* ---- one-request subcommands ---- */

static cJSON *chan_req(const char *op, const char *name)
{
	cJSON *req = cJSON_CreateObject();
	cJSON_AddStringToObject(req, "op", op);
	if (name)
		cJSON_AddStringToObject(req, "chan", name);
	return req;
}

/* Send req (taken) to the host; *reply the ok reply. */
static int chan_call(chan_cli *c, cJSON *req, cJSON **reply)
{
	ncl_err err = {0};
	int rc = csp_net_call(c->chan, req, 0, reply, &err);
	cJSON_Delete(req);
	return rc ? chancli_fail(c->ctx, &err) : 0;
}

static int chan_create(chan_cli *c, const char *name)
{
	long long cap = 0;
	node_err ne = {0};
	if (node_args_int(c->a, "capacity", 0, 1000000000, 0, &cap, &ne) != 0)
		return chancli_usage(c->ctx, "%s", ne.msg);
	const char *kind = node_args_get(c->a, "kind");
	if (kind == NULL)
		kind = "any2any";
	if (strcmp(kind, "any2any") && strcmp(kind, "one2one") && strcmp(kind, "one2any") && strcmp(kind, "any2one"))
		return chancli_usage(c->ctx, "--kind: expected any2any, one2one, one2any or any2one, got %s", kind);
	cJSON *req = chan_req("chan.create", name), *reply = NULL;
	cJSON_AddStringToObject(req, "kind", kind);
	cJSON_AddNumberToObject(req, "capacity", (double)cap);
	int rc = chan_call(c, req, &reply);
	if (rc == 0 && c->json)
		printf("{\"chan\":\"%s\",\"created\":%s}\n", name, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "created")) ? "true" : "false");
	else if (rc == 0)
		printf("%s: %s (%s, capacity %lld)\n", name,
		    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "created")) ? "created" : "exists", kind, cap);
	cJSON_Delete(reply);
	return rc;
}

/* poison, delete: {op, chan}; retire: an end of this process retires. */
static int chan_simple(chan_cli *c, const char *sub, const char *name)
{
	cJSON *reply = NULL;
	int rc;
	if (strcmp(sub, "retire") == 0) {
		csp_net_end *e = NULL;
		ncl_err err = {0};
		rc = csp_net_end_open(c->chan, !node_args_has(c->a, "reader"), c->proc, &e, &err);
		if (rc == 0)
			rc = csp_net_retire(e, &err);
		rc = rc ? chancli_fail(c->ctx, &err) : 0;
	} else {
		rc = chan_call(c, chan_req(strcmp(sub, "poison") == 0 ? "chan.poison" : "chan.delete", name), &reply);
	}
	cJSON_Delete(reply);
	if (rc == 0 && c->json)
		printf("{\"chan\":\"%s\",\"%s\":true}\n", name, strcmp(sub, "poison") == 0 ? "poisoned" : strcmp(sub, "retire") == 0 ? "retired" : "deleted");
	return rc;
}

/* ---- list ---- */

static void chan_list_row(taskcli_table *tb, const cJSON *ch)
{
	char f[8][32];
	static const char *const keys[] = {"capacity", "buffered", "readers", "writers", "readers_waiting", "writers_waiting",
	    "written", "read"};
	for (int i = 0; i < 8; i++)
		taskcli_fmt_int(ch, keys[i], f[i], sizeof f[i]);
	const char *state = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ch, "poisoned")) ? "poisoned"
	    : cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ch, "retired"))               ? "retired"
	                                                                                   : "open";
	const char *cells[11] = {taskcli_str(ch, "name"), taskcli_str(ch, "kind"), f[0], f[1], f[2], f[3], f[4], f[5], f[6],
	    f[7], state};
	taskcli_table_row(tb, cells);
}

static void chan_topic_row(taskcli_table *tb, const cJSON *t)
{
	char f[3][32];
	taskcli_fmt_int(t, "subscribers", f[0], sizeof f[0]);
	taskcli_fmt_int(t, "published", f[1], sizeof f[1]);
	taskcli_fmt_int(t, "dropped", f[2], sizeof f[2]);
	const char *cells[4] = {taskcli_str(t, "topic"), f[0], f[1], f[2]};
	taskcli_table_row(tb, cells);
}

static int chan_list(chan_cli *c, const char *prefix)
{
	cJSON *req = chan_req("chan.list", NULL), *reply = NULL;
	if (prefix)
		cJSON_AddStringToObject(req, "prefix", prefix);
	int rc = chan_call(c, req, &reply);
	if (rc != 0)
		return rc;
	const cJSON *chans = cJSON_GetObjectItemCaseSensitive(reply, "channels");
	const cJSON *topics = cJSON_GetObjectItemCaseSensitive(reply, "topics"), *v;
	if (c->json) {
		cJSON_ArrayForEach(v, chans)
			taskcli_print_json(stdout, v);
		cJSON_ArrayForEach(v, topics)
			taskcli_print_json(stdout, v);
	} else {
		static const char *const heads[] = {"CHANNEL", "KIND", "CAP", "BUFFERED", "READERS", "WRITERS", "R-WAIT",
		    "W-WAIT", "WRITTEN", "READ", "STATE"};
		static const char *const theads[] = {"TOPIC", "SUBSCRIBERS", "PUBLISHED", "DROPPED"};
		if (cJSON_GetArraySize(chans) == 0)
			printf("no channels\n");
		else
			taskcli_table_items(chans, 11, "llrrrrrrrrl", heads, chan_list_row);
		if (cJSON_GetArraySize(topics) > 0) {
			printf("\n");
			taskcli_table_items(topics, 4, "lrrr", theads, chan_topic_row);
		}
	}
	cJSON_Delete(reply);
	return 0;
}

/* ---- the command ---- */

/* Check the count of arguments of sub; 0 or a usage error. */
static int chan_arity(chan_cli *c, const char *sub, int n)
{
	static const struct {
		const char *sub;
		int min, max;
	} tab[] = {{"write", 1, -1}, {"read", 1, 1}, {"alt", 1, 64}, {"poison", 1, 1}, {"retire", 1, 1}, {"create", 1, 1},
	    {"delete", 1, 1}, {"list", 0, 1}};
	for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
		if (strcmp(tab[i].sub, sub) == 0) {
			if (n < tab[i].min || (tab[i].max >= 0 && n > tab[i].max))
				return chancli_usage(c->ctx, "%s takes %s", sub,
				    tab[i].max < 0 ? "CHANNEL [VALUE...]" : tab[i].max == 64 ? "CHANNEL[=VALUE]... (1 to 64)"
				    : tab[i].min == 0 ? "at most one PREFIX" : "one CHANNEL");
			return 0;
		}
	return chancli_usage(c->ctx, "unknown subcommand \"%s\" (write, read, alt, poison, retire, create, delete or list)", sub);
}

static int chan_run(chan_cli *c, const char *sub, char **args, int n)
{
	if (strcmp(sub, "write") == 0)
		return chan_write(c, args + 1, n - 1);
	if (strcmp(sub, "read") == 0)
		return chan_read(c);
	if (strcmp(sub, "create") == 0)
		return chan_create(c, args[0]);
	if (strcmp(sub, "list") == 0)
		return chan_list(c, n ? args[0] : NULL);
	return chan_simple(c, sub, args[0]);
}

static int chan_main(node_ctx *ctx, const node_args *a)
{
	chan_cli c = {.ctx = ctx, .a = a, .json = node_args_has(a, "json"), .wait_ms = chancli_wait_ms(a)};
	const char *sub = a->pos[0];
	char **args = a->pos + 1;
	int n = a->npos - 1;
	int rc = chan_arity(&c, sub, n);
	if (rc != 0)
		return rc;
	snprintf(c.proc, sizeof c.proc, "node-chan-%s-%ld", sub, (long)getpid());
	/* Killed or interrupted: exit at once; the host drops our parked call
	 * with the connection, so no value is taken or given half-way. */
	chancli_on_stop(ctx, NULL, NULL);
	if (strcmp(sub, "alt") == 0)
		return chan_alt(&c, args, n);
	c.name = strcmp(sub, "list") == 0 ? NULL : args[0];
	rc = chancli_open(ctx, a, c.name, &c.chan);
	if (rc == 0)
		rc = chan_run(&c, sub, args, n);
	csp_net_chan_free(c.chan);
	return rc;
}

const node_cmd node_cmd_chan = {
	.name = "chan",
	.summary = "write, read, alternate over, poison, retire and list the channels of a chanhost (PyCSP)",
	.synopsis = "write CHANNEL [VALUE...] [--json] [--retire] | read CHANNEL [--count N] [--json] |\n"
	            "       alt CHANNEL[=VALUE]... [--skip] [--priority] [--json] | poison CHANNEL |\n"
	            "       retire CHANNEL [--reader] | create CHANNEL [--kind KIND] [--capacity N] |\n"
	            "       delete CHANNEL | list [PREFIX] [--json]   [--host URL] [--timeout S]",
	.description =
	    "The client of `node chanhost`. write sends each VALUE, or each line of stdin (in\n"
	    "batches of up to 1000 lines or 256 KB, sent as soon as stdin pauses), as a JSON\n"
	    "string (--json: parsed as JSON) and returns when every value was taken (rendezvous)\n"
	    "or buffered. read prints one value per line (a string as it is, else compact JSON;\n"
	    "--json: always JSON) until N values or until the channel is poisoned or retired.\n"
	    "alt waits for the first ready guard (CHANNEL reads, CHANNEL=VALUE writes) and\n"
	    "prints \"CHANNEL VALUE\" (a write guard: CHANNEL). --timeout S bounds the wait of\n"
	    "write, read and alt in seconds. Exit status 0 on success (read: also when the\n"
	    "channel ends poisoned or retired), 1 when the host refused (poisoned, retired,\n"
	    "conflict...) or alt --skip found nothing ready, 2 for a bad command line, 3 when\n"
	    "the cluster file names no chanhost, 5 when the chanhost cannot be reached or went\n"
	    "silent, 124 when --timeout ran out, 130 on SIGINT/SIGTERM.",
	.opts = chan_opts,
	.main = chan_main,
	.min_pos = 1,
	.max_pos = -1,
};
