/* node job submit|status|results|list|kill|purge: the client of the
 * MapReduce master (`node mapreduce`). This file reads the command line;
 * modules/job/ does the rest. Usage below and in man/node-job.1. */
#include <string.h>

#include "commands.h"
#include "job/job_cli.h"
#include "mapreduce/job.h"

static const node_opt job_opts[] = {
	{"master", 0, "URL", "the MapReduce master (default: roles.mapreduce.listen in the cluster file)"},
	{"wait", 'w', NULL, "submit: wait until the job ends; exit 0 done, 1 failed or killed"},
	{"progress", 0, NULL, "submit: wait, printing progress on stderr even when it is not a terminal"},
	{"json", 0, NULL, "machine output: JSON, one object per line"},
	{NULL, 0, NULL, NULL},
};

typedef struct job_sub {
	const char *name;
	int (*by_id)(job_cli *c, const char *id); /* NULL: takes no ID */
} job_sub;

static const job_sub job_subs[] = {
	{"status", job_status},
	{"results", job_results},
	{"kill", job_kill},
	{"purge", job_purge},
	{"list", NULL},
	{NULL, NULL},
};

/* Usage errors before anything is sent; the subcommand in *out. */
static int job_check(job_cli *c, const node_args *a, const job_sub **out)
{
	const char *sub = a->pos[0];
	for (const job_sub *s = job_subs; s->name; s++)
		if (strcmp(s->name, sub) == 0)
			*out = s;
	if (*out == NULL)
		return job_usage(c, "unknown subcommand \"%s\" (submit, status, results, list, kill or purge)", sub);
	if (node_args_has(a, "wait") || node_args_has(a, "progress"))
		return job_usage(c, "--wait and --progress are options of submit");
	int want = (*out)->by_id ? 1 : 0;
	if (a->npos - 1 != want)
		return job_usage(c, "%s takes %s", sub, want ? "one job ID" : "no arguments");
	if (want && !mr_job_id_ok(a->pos[1]))
		return job_usage(c, "\"%.80s\" is not a job id (1 to %d of A-Z a-z 0-9 . _ -, not starting with . or -)",
		    a->pos[1], MR_JOB_ID_MAX);
	return 0;
}

static int job_main(node_ctx *ctx, const node_args *a)
{
	job_cli c;
	job_init(&c, ctx, a);
	if (a->npos < 1)
		return job_usage(&c, "which subcommand? submit, status, results, list, kill or purge");
	if (strcmp(a->pos[0], "submit") == 0)
		return job_submit(&c);
	const job_sub *s = NULL;
	int rc = job_check(&c, a, &s);
	if (rc == 0)
		rc = job_open(&c);
	if (rc != 0)
		return rc;
	rc = s->by_id ? s->by_id(&c, a->pos[1]) : job_list(&c);
	job_close(&c);
	return rc;
}

const node_cmd node_cmd_job = {
	.name = "job",
	.summary = "submit MapReduce jobs, follow them, read their results",
	.synopsis = "submit FILE [--wait] [--progress] [--timeout S] | status ID | results ID | list |\n"
	            "       kill ID | purge ID   [--json] [--master URL]",
	.description =
	    "The client of `node mapreduce`. submit reads and checks the job file (node-job(5))\n"
	    "before anything is sent, then prints the job's id; with --wait it follows the job\n"
	    "with a progress line on stderr (\"map 3/8, reduce 0/2, 12 s\"; redrawn on a terminal,\n"
	    "one line per change with --progress elsewhere) and --timeout S bounds the wait in\n"
	    "seconds. status prints the job (--json: its status object); results writes every\n"
	    "part file in order to stdout, read from the output directory when this machine\n"
	    "sees it, else through the master; list prints a table of the jobs, newest first;\n"
	    "kill stops a job; purge removes a finished job's part files and forgets it.\n"
	    "Exit status: 0 success (submit --wait: the job is done); 1 the job failed or was\n"
	    "killed, or the master refused (its message printed); 2 bad command line or job\n"
	    "file; 3 no master configured or it did not answer; 124 --timeout ran out.",
	.opts = job_opts,
	.main = job_main,
	.min_pos = 0,
	.max_pos = -1,
};
