/* Part files of reduce output: TSV or JSON lines, written to PATH.tmp and
 * renamed on close so a reader never sees half a part file (a retried
 * reduce task simply writes it again). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapreduce/builtin.h"

struct mr_out {
	FILE *f;
	char *path, *tmp;
	mr_out_format format;
	uint64_t records;
};

static void out_free(mr_out *o)
{
	free(o->path);
	free(o->tmp);
	free(o);
}

int mr_out_open(mr_out **out, const char *path, mr_out_format format, node_err *err)
{
	*out = NULL;
	mr_out *o = calloc(1, sizeof *o);
	if (o == NULL || (o->path = strdup(path)) == NULL || (o->tmp = malloc(strlen(path) + 5)) == NULL) {
		if (o)
			out_free(o);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	sprintf(o->tmp, "%s.tmp", path);
	o->format = format;
	o->f = fopen(o->tmp, "wb");
	if (o->f == NULL) {
		int e = errno;
		out_free(o);
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "%s: cannot create part file: %s", path,
		                    strerror(e));
	}
	setvbuf(o->f, NULL, _IOFBF, 1 << 16);
	*out = o;
	return 0;
}

/* Length of a valid UTF-8 sequence at p (1-4), or 0. */
static size_t utf8_len(const uint8_t *p, size_t n)
{
	size_t k = p[0] >= 0xF0 && p[0] <= 0xF4 ? 4 : p[0] >= 0xE0 ? 3 : p[0] >= 0xC2 && p[0] < 0xE0 ? 2 : 0;
	if (k == 0 || k > n)
		return 0;
	for (size_t i = 1; i < k; i++)
		if ((p[i] & 0xC0) != 0x80)
			return 0;
	if ((k == 3 && p[0] == 0xE0 && p[1] < 0xA0) || (k == 3 && p[0] == 0xED && p[1] >= 0xA0) ||
	    (k == 4 && p[0] == 0xF0 && p[1] < 0x90) || (k == 4 && p[0] == 0xF4 && p[1] >= 0x90))
		return 0;  /* overlong, surrogate, beyond U+10FFFF */
	return k;
}

static void put_json_string(FILE *f, const uint8_t *s, size_t n)
{
	putc('"', f);
	for (size_t i = 0; i < n;) {
		uint8_t c = s[i];
		size_t k;
		if (c == '"' || c == '\\') {
			putc('\\', f);
			putc(c, f);
			i++;
		} else if (c >= 0x20 && c < 0x80) {
			putc(c, f);
			i++;
		} else if (c >= 0x80 && (k = utf8_len(s + i, n - i)) != 0) {
			fwrite(s + i, 1, k, f);
			i += k;
		} else {
			if (c == '\n')
				fputs("\\n", f);
			else if (c == '\t')
				fputs("\\t", f);
			else
				fprintf(f, "\\u%04x", c);
			i++;
		}
	}
	putc('"', f);
}

/* JSON number grammar: -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)? */
static int is_json_number(const uint8_t *s, size_t n)
{
	size_t i = 0;
#define DIGITS(at_least_one)                                   \
	do {                                                   \
		size_t s0 = i;                                 \
		while (i < n && s[i] >= '0' && s[i] <= '9')    \
			i++;                                   \
		if ((at_least_one) && i == s0)                 \
			return 0;                              \
	} while (0)
	if (i < n && s[i] == '-')
		i++;
	if (i < n && s[i] == '0')
		i++;
	else
		DIGITS(1);
	if (i < n && s[i] == '.') {
		i++;
		DIGITS(1);
	}
	if (i < n && (s[i] == 'e' || s[i] == 'E')) {
		i++;
		if (i < n && (s[i] == '+' || s[i] == '-'))
			i++;
		DIGITS(1);
	}
#undef DIGITS
	return n > 0 && i == n;
}

int mr_out_emit(void *ctx, const void *key, size_t klen, const void *val, size_t vlen, node_err *err)
{
	mr_out *o = ctx;
	if (o->format == MR_OUT_TSV) {
		fwrite(key, 1, klen, o->f);
		putc('\t', o->f);
		fwrite(val, 1, vlen, o->f);
	} else {
		fputs("{\"key\":", o->f);
		put_json_string(o->f, key, klen);
		fputs(",\"value\":", o->f);
		if (is_json_number(val, vlen))
			fwrite(val, 1, vlen, o->f);
		else
			put_json_string(o->f, val, vlen);
		putc('}', o->f);
	}
	if (putc('\n', o->f) == EOF)
		return node_err_set(err, NODE_EIO, errno == ENOSPC ? NODE_ERR_DISK_FULL : NODE_ERR_INTERNAL,
		                    "%s: cannot write: %s", o->tmp, strerror(errno));
	o->records++;
	return 0;
}

uint64_t mr_out_records(const mr_out *o)
{
	return o->records;
}

int mr_out_close(mr_out *o, node_err *err)
{
	int bad = ferror(o->f) | fflush(o->f);
	int e = errno;
	if (fclose(o->f) != 0 && !bad) {
		bad = 1;
		e = errno;
	}
	int rc = 0;
	if (bad)
		rc = node_err_set(err, NODE_EIO, e == ENOSPC ? NODE_ERR_DISK_FULL : NODE_ERR_INTERNAL,
		                  "%s: cannot write: %s", o->tmp, strerror(e));
	else if (rename(o->tmp, o->path) != 0)
		rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "%s: cannot rename to %s: %s", o->tmp, o->path,
		                  strerror(errno));
	if (rc)
		unlink(o->tmp);
	out_free(o);
	return rc;
}

void mr_out_abort(mr_out *o)
{
	if (o == NULL)
		return;
	fclose(o->f);
	unlink(o->tmp);
	out_free(o);
}
