/* node map's output: each item's outcome as it is handed over (in input
 * order, or as it arrived with its index), failures on stderr with their
 * index, and a progress bar with rate and ETA on stderr when that is a
 * terminal. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "map/mapcli.h"

void mapcli_show_init(mapcli_show *s, taskcli *t, size_t n, int as_completed, int keep_going)
{
	memset(s, 0, sizeof *s);
	s->t = t;
	s->n = n;
	s->as_completed = as_completed;
	s->keep_going = keep_going;
	const char *term = getenv("TERM");
	s->progress = isatty(2) && !(term && strcmp(term, "dumb") == 0);
	s->started = node_clock_mono_ms();
	s->stop = t->ctx->stop;
}

void mapcli_show_clear(mapcli_show *s)
{
	if (s->progress && s->drawn) {
		fputs("\r\033[K", stderr);
		s->drawn = 0;
	}
}

void mapcli_show_progress(mapcli_show *s, int force)
{
	if (!s->progress || s->n == 0)
		return;
	int64_t now = node_clock_mono_ms();
	if (!force && s->drawn && now - s->drawn < MAPCLI_PROGRESS_MS)
		return;
	double secs = (double)(now - s->started) / 1000.0;
	double rate = secs > 0 ? (double)s->done / secs : 0;
	char bar[31], eta[32] = "-";
	size_t fill = s->done * 30 / s->n;
	for (size_t i = 0; i < 30; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[30] = '\0';
	if (rate > 0 && s->done < s->n)
		taskcli_duration((double)(s->n - s->done) / rate * 1000.0, eta, sizeof eta);
	fflush(stdout);
	fprintf(stderr, "\r\033[K[%s] %zu/%zu %3.0f%%  %.0f items/s  ETA %s", bar, s->done, s->n,
	    100.0 * (double)s->done / (double)s->n, rate, s->done < s->n ? eta : "0 s");
	if (s->failed)
		fprintf(stderr, "  %zu failed", s->failed);
	fflush(stderr);
	s->drawn = now;
}

static void show_failure(mapcli_show *s, size_t index, const char *error)
{
	if (s->t->json) {
		printf("{\"index\":%zu,\"error\":", index);
		taskcli_put_jstr(stdout, error);
		fputs("}\n", stdout);
		return;
	}
	mapcli_show_clear(s);
	taskcli_warn(s->t, "item %zu failed: %s", index, error);
}

static void show_value(mapcli_show *s, size_t index, const char *result)
{
	if (s->t->json)
		printf("{\"index\":%zu,\"value\":%s}\n", index, result);
	else if (s->as_completed)
		printf("%zu\t%s\n", index, result);
	else
		puts(result);
}

int mapcli_show_item(size_t index, const char *result, const char *error, void *arg)
{
	mapcli_show *s = arg;
	s->done++;
	if (error) {
		s->failed++;
		show_failure(s, index, error);
	} else if (s->reduce) {
		if (ncl_reduce_add(s->reduce, index, result, &s->reduce_err) != 0) {
			s->reduce_failed = 1;
			return 1;
		}
	} else {
		mapcli_show_clear(s);
		show_value(s, index, result);
	}
	if (node_stop_requested(s->stop)) {
		s->interrupted = 1;
		return 1;
	}
	mapcli_show_progress(s, 0);
	return error && !s->keep_going;
}
