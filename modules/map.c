/* node map TASK --input FILE: one task over many argument lists, with
 * SCOOP's map, map_as_completed and mapReduce and Parallel Python's
 * statistics, from the shell. The map itself is libnodeclient's ncl_map;
 * this file reads the options and ties input, map and output together. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "map/mapcli.h"

static const node_opt map_opts[] = {
	{"input", 'i', "FILE", "JSON lines, one item's args per line (- for stdin)"},
	{"as-completed", 'a', NULL, "print results as they arrive, each after its input index"},
	{"reduce", 'r', "OP|TASK", "print one value: add, mul, min, max, concat, count, or a reduce task (tree)"},
	{"fanin", 0, "N", "values per reduce task (--reduce TASK; default 16)"},
	{"chunk", 'k', "N", "items per task (default: chosen from the items and the workers' slots; 1: none)"},
	{"keep-going", 'K', NULL, "report failed items and finish the others"},
	{"stats", 's', NULL, "print the job statistics per worker at the end (on stderr)"},
	{"queue", 'q', "Q", "queue of the tasks (default: default)"},
	{"priority", 'p', "N", "priority 0-9 of the tasks"},
	{"kwargs", 0, "JSON", "named arguments given to every item"},
	TASKCLI_OPTS,
	{NULL, 0, NULL, NULL},
};

/* The stop request ends the map at once: closing the connection makes the
 * map return, whether items are arriving or not. The map's thread holds a
 * reference of its own, so the connection's memory outlives that close. */
typedef struct map_guard {
	pthread_mutex_t lock;
	pthread_t thread;
	taskcli *t;
	int done, closed;
} map_guard;

static void *map_guard_main(void *arg)
{
	map_guard *g = arg;
	for (;;) {
		int stopped = node_stop_wait(g->t->ctx->stop, 100);
		pthread_mutex_lock(&g->lock);
		if (g->done) {
			pthread_mutex_unlock(&g->lock);
			return NULL;
		}
		if (stopped) {
			ncl_close(g->t->conn);
			g->closed = 1;
			pthread_mutex_unlock(&g->lock);
			return NULL;
		}
		pthread_mutex_unlock(&g->lock);
	}
}

/* The map is over: stop the guard; when it closed the connection, drop
 * the map's reference (else taskcli_close closes it later). */
static void map_guard_end(map_guard *g, int started)
{
	if (started) {
		pthread_mutex_lock(&g->lock);
		g->done = 1;
		pthread_mutex_unlock(&g->lock);
		pthread_join(g->thread, NULL);
	}
	ncl_conn_unref(g->t->conn); /* map_main's; without the guard's close, the user's stays */
	if (g->closed)
		g->t->conn = NULL;
	pthread_mutex_destroy(&g->lock);
}

typedef struct map_plan {
	const char *task, *reduce;
	ncl_reducer op;
	int op_reduce, fanin, timeout_ms;
	ncl_opts opts;
	char id_prefix[64];
} map_plan;

static int map_parse(taskcli *t, const node_args *a, map_plan *p)
{
	memset(p, 0, sizeof *p);
	p->task = a->pos[0];
	p->reduce = node_args_get(a, "reduce");
	p->op_reduce = p->reduce && ncl_reducer_parse(p->reduce, &p->op) == 0;
	node_err err = {0};
	long long chunk = 0, prio = -1, fanin = 0, tmo = -1;
	if (node_args_int(a, "chunk", 1, NCL_CHUNK_MAX, 0, &chunk, &err) != 0 ||
	    node_args_int(a, "priority", 0, 9, -1, &prio, &err) != 0 ||
	    node_args_int(a, "fanin", 2, 100000, 0, &fanin, &err) != 0 ||
	    node_args_int(a, "timeout", 1, 0x7fffffff, -1, &tmo, &err) != 0)
		return taskcli_usage(t, "%s", err.msg);
	if (node_args_get(a, "input") == NULL)
		return taskcli_usage(t, "map needs --input FILE (JSON lines, one item's args per line; - for stdin)");
	if (p->reduce && node_args_has(a, "as-completed"))
		return taskcli_usage(t, "--reduce prints one value: --as-completed does not go with it");
	if (fanin && (p->reduce == NULL || p->op_reduce))
		return taskcli_usage(t, "--fanin is for --reduce TASK");
	if (p->reduce && !p->op_reduce && node_args_has(a, "keep-going"))
		return taskcli_usage(t, "--reduce TASK needs every value: --keep-going does not go with it");
	p->opts.chunk = (size_t)chunk;
	p->opts.queue = node_args_get(a, "queue");
	if (p->opts.queue && *p->opts.queue == '\0')
		return taskcli_usage(t, "--queue needs a name");
	p->opts.priority = (int)prio;
	p->opts.has_priority = prio >= 0;
	p->opts.kwargs_json = node_args_get(a, "kwargs");
	p->fanin = (int)fanin;
	p->timeout_ms = (int)tmo;
	return 0;
}

/* Run the map (or map and reduce) and print what the plan says. */
static int map_run(taskcli *t, const map_plan *p, const mapcli_input *in, mapcli_show *s, ncl_err *e)
{
	int rc;
	if (p->reduce && !p->op_reduce) {
		char *v = NULL;
		rc = ncl_map_reduce_task(t->conn, p->task, in->args, in->n, p->reduce, p->fanin, &v, &p->opts,
		    p->timeout_ms, e);
		if (rc == 0)
			printf(t->json ? "{\"value\":%s}\n" : "%s\n", v);
		free(v);
		return rc;
	}
	if (p->op_reduce && (rc = ncl_reduce_new((ncl_reduce **)&s->reduce, p->op, e)) != 0)
		return rc;
	int mode = s->as_completed || (p->op_reduce && !ncl_reduce_ordered(p->op)) ? NCL_AS_COMPLETED : NCL_ORDERED;
	rc = ncl_map(t->conn, p->task, in->args, in->n, mode, mapcli_show_item, s, &p->opts, p->timeout_ms, e);
	if (rc == NCL_ECANCEL && s->reduce_failed) {
		rc = s->reduce_err.code;
		*e = s->reduce_err;
	}
	if (p->op_reduce && (rc == 0 || (rc == NCL_ETASK && s->keep_going))) {
		char *v = NULL;
		int rrc = ncl_reduce_result(s->reduce, &v, e);
		if (rrc == 0)
			printf(t->json ? "{\"value\":%s}\n" : "%s\n", v);
		else
			rc = rrc;
		free(v);
	}
	ncl_reduce_free(s->reduce);
	s->reduce = NULL;
	return rc;
}

/* The exit status and the last word on stderr. */
static int map_finish(taskcli *t, mapcli_show *s, int rc, const ncl_err *e)
{
	mapcli_show_progress(s, 1);
	mapcli_show_clear(s);
	if (s->interrupted || node_stop_requested(t->ctx->stop)) {
		taskcli_warn(t, "interrupted after %zu of %zu items (tasks submitted already still run)", s->done, s->n);
		return NODE_EXIT_FAIL;
	}
	if (rc == 0)
		return 0;
	if (s->failed && (rc == NCL_ETASK || rc == NCL_ECANCEL)) {
		if (s->keep_going)
			taskcli_warn(t, "%zu of %zu items failed", s->failed, s->n);
		else
			taskcli_warn(t, "stopped at the first failed item (--keep-going finishes the rest)");
		return NODE_EXIT_FAIL;
	}
	node_err ne = {0};
	taskcli_from_ncl(&ne, e);
	return taskcli_fail(t, &ne);
}

static int map_main(node_ctx *ctx, const node_args *a)
{
	taskcli t;
	taskcli_init(&t, ctx, a);
	map_plan p;
	int rc = map_parse(&t, a, &p);
	if (rc != 0)
		return rc;
	mapcli_input in;
	node_err err = {0};
	if (mapcli_input_read(&in, node_args_get(a, "input"), &err) != 0) {
		taskcli_warn(&t, "%s", err.msg);
		return err.rc == NODE_EINVAL ? NODE_EXIT_USAGE : NODE_EXIT_FAIL;
	}
	if ((rc = taskcli_open(&t, ctx, a)) != 0) {
		mapcli_input_free(&in);
		return rc;
	}
	mapcli_show s;
	mapcli_show_init(&s, &t, in.n, node_args_has(a, "as-completed"), node_args_has(a, "keep-going"));
	map_guard g = {.t = &t};
	pthread_mutex_init(&g.lock, NULL);
	ncl_conn_ref(t.conn);
	int guarded = pthread_create(&g.thread, NULL, map_guard_main, &g) == 0;
	ncl_err e = {0};
	rc = map_run(&t, &p, &in, &s, &e);
	map_guard_end(&g, guarded);
	rc = map_finish(&t, &s, rc, &e);
	if (node_args_has(a, "stats") && t.conn) {
		ncl_stats st;
		if (ncl_stats_get(t.conn, &st, NULL) == 0) {
			fflush(stdout);
			ncl_stats_print(&st, stderr);
			ncl_stats_free(&st);
		}
	}
	taskcli_close(&t);
	mapcli_input_free(&in);
	return rc;
}

const node_cmd node_cmd_map = {
	.name = "map",
	.summary = "run a task over many argument lists (map, as completed, reduce)",
	.synopsis = "TASK --input FILE [--as-completed | --reduce OP|TASK [--fanin N]] [--chunk N] [--keep-going] "
	            "[--stats] [--queue Q] [--priority N] [--kwargs JSON] [--json] [--broker URL]",
	.description =
	    "Each line of FILE (- for stdin) is one item's args as JSON ([1, 2]; a line with\n"
	    "one value v is [v]). Prints each item's result as one line of JSON, in input\n"
	    "order; --as-completed prints `INDEX<TAB>RESULT` as results arrive. --reduce\n"
	    "prints one value: add, mul, min, max (numbers, or objects member by member),\n"
	    "concat and count are done here as results arrive; any other name is a task\n"
	    "run on the workers as a tree over groups of --fanin results (sum is one).\n"
	    "Tiny items travel --chunk at a time in one task; by default the chunk is\n"
	    "the items / (16 x the slots of the queue's workers), at most 4096.\n"
	    "A failed item prints `node map: item I failed: MESSAGE` on stderr and stops\n"
	    "the map (exit 1); --keep-going finishes the others. --json prints\n"
	    "{\"index\", \"value\" | \"error\"} per item. On a terminal a progress bar with\n"
	    "rate and ETA is drawn on stderr. --stats prints Parallel Python's table of\n"
	    "jobs per worker. --timeout MS bounds the whole map (default: no limit).",
	.opts = map_opts,
	.main = map_main,
	.min_pos = 1,
	.max_pos = 1,
};
