/* Parallel Python's job statistics for a connection: for each worker the
 * jobs it ran and their run time, from the worker and times that come with
 * every finished task, and the wall time since the connection opened. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/clock.h"
#include "client/client_int.h"

void ncl_stats_add_locked(ncl_conn *c, const char *worker, uint64_t jobs, int64_t run_ms)
{
	size_t i = 0;
	while (i < c->nstats && strcmp(c->stats[i].worker, worker) != 0)
		i++;
	if (i == c->nstats) {
		if (c->nstats == c->capstats) {
			size_t cap = c->capstats ? 2 * c->capstats : 8;
			ncl_stat_row *r = realloc(c->stats, cap * sizeof *r);
			if (r == NULL)
				return; /* statistics are best effort; the results are not */
			c->stats = r;
			c->capstats = cap;
		}
		memset(&c->stats[i], 0, sizeof c->stats[i]);
		snprintf(c->stats[i].worker, sizeof c->stats[i].worker, "%s", worker);
		c->nstats++;
	}
	c->stats[i].jobs += jobs;
	if (run_ms > 0)
		c->stats[i].job_s += (double)run_ms / 1000.0;
}

void ncl_stats_free_locked(ncl_conn *c)
{
	free(c->stats);
	c->stats = NULL;
	c->nstats = c->capstats = 0;
}

static int stats_by_worker(const void *a, const void *b)
{
	return strcmp(((const ncl_stat_row *)a)->worker, ((const ncl_stat_row *)b)->worker);
}

int ncl_stats_get(ncl_conn *c, ncl_stats *out, ncl_err *err)
{
	if (out == NULL)
		return ncl_set(err, NCL_EINVAL, "ncl_stats_get: out is NULL");
	memset(out, 0, sizeof *out);
	if (c == NULL)
		return ncl_set(err, NCL_EINVAL, "ncl_stats_get: no connection");
	pthread_mutex_lock(&c->lock);
	size_t n = c->nstats;
	out->rows = n ? malloc(n * sizeof *out->rows) : NULL;
	if (n && out->rows == NULL) {
		pthread_mutex_unlock(&c->lock);
		return ncl_set(err, NCL_ENOMEM, "out of memory");
	}
	if (n)
		memcpy(out->rows, c->stats, n * sizeof *out->rows);
	out->wall_s = (double)(node_clock_mono_ms() - c->opened_ms) / 1000.0;
	pthread_mutex_unlock(&c->lock);
	out->n = n;
	for (size_t i = 0; i < n; i++) {
		out->jobs += out->rows[i].jobs;
		out->job_s += out->rows[i].job_s;
	}
	qsort(out->rows, n, sizeof *out->rows, stats_by_worker);
	return 0;
}

void ncl_stats_free(ncl_stats *s)
{
	if (s == NULL)
		return;
	free(s->rows);
	memset(s, 0, sizeof *s);
}

void ncl_stats_reset(ncl_conn *c)
{
	if (c == NULL)
		return;
	pthread_mutex_lock(&c->lock);
	ncl_stats_free_locked(c);
	c->opened_ms = node_clock_mono_ms();
	pthread_mutex_unlock(&c->lock);
}

void ncl_stats_print(const ncl_stats *s, FILE *f)
{
	fprintf(f, "Job execution statistics:\n");
	fprintf(f, " %9s | %13s | %12s | %12s | %s\n", "job count", "% of all jobs", "job time sum", "time per job",
	    "worker");
	for (size_t i = 0; i < s->n; i++) {
		const ncl_stat_row *r = &s->rows[i];
		double pct = s->jobs ? 100.0 * (double)r->jobs / (double)s->jobs : 0.0;
		double per = r->jobs ? r->job_s / (double)r->jobs : 0.0;
		fprintf(f, " %9llu | %13.2f | %12.4f | %12.6f | %s\n", (unsigned long long)r->jobs, pct, r->job_s, per,
		    r->worker[0] ? r->worker : "(none)");
	}
	fprintf(f, "Time elapsed since start: %.4f s\n", s->wall_s);
}
