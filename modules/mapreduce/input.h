/* The input of one map task: a chunk of a file cut on line boundaries, a
 * URL fetched over HTTP(S) with nng's client, or inline text; read whole
 * into memory so the map function runs once over all of it. */
#ifndef NODE_MR_INPUT_H
#define NODE_MR_INPUT_H

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdint.h>

#include "core/err.h"

#define MR_INPUT_URL_MAX (1ULL << 30)      /* bytes of a URL's body at most */
#define MR_INPUT_URL_TIMEOUT_MS 300000     /* a URL's whole fetch at most */
#define MR_INPUT_URL_REDIRECTS 5

typedef struct mr_input_chunk {
	const char *text;    /* the chunk's lines */
	size_t len;
	uint64_t first_line; /* number of its first line (1-based; 1 unless counted) */
	uint64_t bytes_in;   /* bytes read for it */
	uint64_t lines;      /* lines in text (a last one without '\n' counts) */
	char *buf;           /* owned memory text points into, or NULL */
	char what[600];      /* names the input in errors */
} mr_input_chunk;

/* Read the task's "input" object: {"file": ABS, "offset": O, "length": L,
 * "lines": BOOL} | {"url": URL} | {"text": TEXT}. A file chunk holds the
 * lines that start in [O, O+L); with "lines" true the lines before it are
 * counted for first_line. deadline_ms (monotonic, 0: none) bounds a URL
 * fetch besides MR_INPUT_URL_TIMEOUT_MS. A text input points into the
 * JSON, which must outlive the chunk. */
int mr_input_read(const cJSON *input, int64_t deadline_ms, mr_input_chunk *c, node_err *err);
void mr_input_free(mr_input_chunk *c);

/* The number of '\n' bytes in p[0..n). */
uint64_t mr_input_count_nl(const char *p, size_t n);
/* The number of lines in p[0..n): '\n's, plus a last line without one. */
uint64_t mr_input_count_lines(const char *p, size_t n);

#endif
