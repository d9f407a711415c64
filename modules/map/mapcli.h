/* node map, the command: reading the items (input.c) and showing the
 * outcomes, the progress bar and the tally (show.c). modules/map.c runs
 * the map itself with libnodeclient. */
#ifndef NODE_MAPCLI_H
#define NODE_MAPCLI_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "taskcli.h"

#define MAPCLI_LINE_MAX (64u << 20) /* bytes of one input line at most */
#define MAPCLI_PROGRESS_MS 200      /* the progress bar is redrawn this often at most */

/* The items of a map: their args texts (JSON arrays) and who owns them. */
typedef struct mapcli_input {
	char *text;          /* the whole input; the lines point into it */
	const char **args;   /* one per item */
	char **wrapped;      /* "[v]" made for lines that held one value */
	size_t n, nwrapped;
} mapcli_input;

/* Read JSON lines from path ("-": stdin). Empty lines are skipped; a line
 * that is not an array is one argument ("5" is [5]). Fills err naming the
 * line when one is not JSON. */
int mapcli_input_read(mapcli_input *in, const char *path, node_err *err);
void mapcli_input_free(mapcli_input *in);

/* What is shown, and the tally kept while showing it. */
typedef struct mapcli_show {
	taskcli *t;
	int as_completed, keep_going, quiet;
	int progress;        /* draw the bar on stderr */
	size_t n, done, failed;
	int64_t started, drawn; /* monotonic ms */
	node_stop *stop;
	int interrupted;
	void *reduce;        /* an ncl_reduce to fold results into, or NULL (then print them) */
	ncl_err reduce_err;
	int reduce_failed;
} mapcli_show;

void mapcli_show_init(mapcli_show *s, taskcli *t, size_t n, int as_completed, int keep_going);
/* The item callback of ncl_map. */
int mapcli_show_item(size_t index, const char *result, const char *error, void *arg);
/* Draw the bar now when due (force: whatever the time). */
void mapcli_show_progress(mapcli_show *s, int force);
/* Clear the bar's line before other output on stderr. */
void mapcli_show_clear(mapcli_show *s);

#endif
