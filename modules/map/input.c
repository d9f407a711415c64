/* node map's input: JSON lines, one item's args per line, from a file or
 * stdin, read whole and split in place (a million small lines cost one
 * read, not a million allocations). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map/mapcli.h"

static int input_slurp(FILE *f, const char *path, char **out, size_t *len, node_err *err)
{
	size_t cap = 1 << 16, n = 0;
	char *buf = malloc(cap);
	while (buf) {
		size_t got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
		if (got == 0)
			break;
		if (cap - n - 1 == 0) {
			char *b = realloc(buf, cap * 2);
			if (b == NULL) {
				free(buf);
				buf = NULL;
				break;
			}
			buf = b;
			cap *= 2;
		}
	}
	if (buf == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory reading %s", path);
	if (ferror(f)) {
		free(buf);
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot read %s: %s", path, strerror(errno));
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static int input_grow(mapcli_input *in, size_t *cap)
{
	size_t c = *cap ? *cap * 2 : 1024;
	const char **a = realloc(in->args, c * sizeof *a);
	if (a == NULL)
		return -1;
	in->args = a;
	*cap = c;
	return 0;
}

/* Add one line (NUL-terminated, trimmed) as an item. */
static int input_line(mapcli_input *in, char *line, size_t lineno, const char *path, size_t *cap, node_err *err)
{
	if (strlen(line) > MAPCLI_LINE_MAX)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_TOO_LARGE, "%s:%zu: the line is longer than %u bytes", path,
		    lineno, MAPCLI_LINE_MAX);
	if (!ncl_json_valid(line, 0)) {
		const char *end = NULL;
		cJSON *v = cJSON_ParseWithOpts(line, &end, 1);
		size_t at = end && end >= line ? (size_t)(end - line) + 1 : 1;
		cJSON_Delete(v);
		if (v != NULL) /* cJSON is lenient where the strict check is not */
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
			    "%s:%zu: not strict JSON (a leading zero, a control character or lone surrogate in a string, or "
			    "nesting deeper than 128): %.60s", path, lineno, line);
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
		    "%s:%zu: not JSON at column %zu: %.60s (each line is one item's args, e.g. [1, 2])", path, lineno, at, line);
	}
	if (in->n == *cap && input_grow(in, cap) != 0)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	if (line[0] == '[') {
		in->args[in->n++] = line;
		return 0;
	}
	char **w = realloc(in->wrapped, (in->nwrapped + 1) * sizeof *w);
	if (w == NULL || asprintf(&w[in->nwrapped], "[%s]", line) < 0) {
		if (w)
			in->wrapped = w;
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	in->wrapped = w;
	in->args[in->n++] = w[in->nwrapped++];
	return 0;
}

int mapcli_input_read(mapcli_input *in, const char *path, node_err *err)
{
	memset(in, 0, sizeof *in);
	int is_stdin = strcmp(path, "-") == 0;
	FILE *f = is_stdin ? stdin : fopen(path, "rb");
	if (f == NULL)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot open %s: %s", path, strerror(errno));
	size_t len = 0, cap = 0;
	int rc = input_slurp(f, is_stdin ? "stdin" : path, &in->text, &len, err);
	if (!is_stdin)
		fclose(f);
	char *p = rc == 0 ? in->text : NULL;
	for (size_t lineno = 1; rc == 0 && p < in->text + len; lineno++) {
		char *nl = memchr(p, '\n', (size_t)(in->text + len - p));
		char *end = nl ? nl : in->text + len;
		*end = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		for (char *e = end; e > p && (e[-1] == '\r' || e[-1] == ' ' || e[-1] == '\t'); e--)
			e[-1] = '\0';
		if (*p != '\0')
			rc = input_line(in, p, lineno, is_stdin ? "stdin" : path, &cap, err);
		p = end + 1;
	}
	if (rc != 0)
		mapcli_input_free(in);
	return rc;
}

void mapcli_input_free(mapcli_input *in)
{
	for (size_t i = 0; i < in->nwrapped; i++)
		free(in->wrapped[i]);
	free(in->wrapped);
	free(in->args);
	free(in->text);
	memset(in, 0, sizeof *in);
}
