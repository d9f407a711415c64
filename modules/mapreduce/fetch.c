/* The client side of mr.get: copy a file another worker's map output
 * server holds (a map's run, a reduce's part file) into a local file, in
 * pieces that fit the message limits, each call within its own timeout. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <mbedtls/base64.h>

#include "core/transport.h"
#include "mapreduce/mrtask.h"

struct mr_fetch {
	node_client *cl;
	size_t max; /* raw bytes asked for per call */
};

/* The most one reply can carry: base64 (4/3 larger) must fit in one JSON
 * string and in half a message; a multiple of 3 so pieces join cleanly. */
static size_t fetch_max(const node_wire *w)
{
	size_t m = MR_GET_DEFAULT;
	if (w && w->limits.max_message / 2 < m)
		m = w->limits.max_message / 2;
	if (w && w->limits.max_string && (w->limits.max_string - 64) / 4 * 3 < m)
		m = (w->limits.max_string - 64) / 4 * 3;
	m -= m % 3;
	return m >= 3 ? m : 3;
}

int mr_fetch_open(mr_fetch **out, const char *url, node_wire *wire, node_err *err)
{
	*out = NULL;
	mr_fetch *f = calloc(1, sizeof *f);
	if (f == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	f->max = fetch_max(wire);
	if (node_client_open(&f->cl, url, "worker", wire, err) != 0) {
		free(f);
		return err->rc;
	}
	*out = f;
	return 0;
}

void mr_fetch_close(mr_fetch *f)
{
	if (f == NULL)
		return;
	if (f->cl)
		node_client_close(f->cl);
	free(f);
}

static int fetch_write(int fd, const unsigned char *p, size_t n, const char *dest, node_err *err)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot write %s: %s", dest, strerror(errno));
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One mr.get from off: the decoded bytes into buf (*got), the file's size
 * and whether this was its end. */
static int fetch_piece(mr_fetch *f, const char *rel, unsigned long long off, int timeout_ms, unsigned char *buf,
                       size_t *got, unsigned long long *size, int *eof, node_err *err)
{
	cJSON *req = cJSON_CreateObject(), *reply = NULL;
	cJSON_AddStringToObject(req, "op", "mr.get");
	cJSON_AddStringToObject(req, "path", rel);
	cJSON_AddNumberToObject(req, "offset", (double)off);
	if (cJSON_AddNumberToObject(req, "max", (double)f->max) == NULL) {
		cJSON_Delete(req);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	int rc = node_client_call(f->cl, req, timeout_ms, &reply, err);
	cJSON_Delete(req);
	if (rc == NODE_EREMOTE)
		node_err_prefix(err, "worker %s: mr.get %s: ", node_client_url(f->cl), rel);
	if (rc != 0) {
		cJSON_Delete(reply);
		return rc;
	}
	const char *data = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(reply, "data"));
	const cJSON *sz = cJSON_GetObjectItemCaseSensitive(reply, "size");
	*eof = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "eof"));
	if (data == NULL || !cJSON_IsNumber(sz) || sz->valuedouble < 0 ||
	    mbedtls_base64_decode(buf, f->max + 3, got, (const unsigned char *)data, strlen(data)) != 0)
		rc = node_err_set(err, NODE_EIO, NODE_ERR_BAD_REQUEST, "worker %s: mr.get %s: a malformed reply",
		                  node_client_url(f->cl), rel);
	else
		*size = (unsigned long long)sz->valuedouble;
	cJSON_Delete(reply);
	return rc;
}

int mr_fetch_file(mr_fetch *f, const char *rel, const char *dest, int timeout_ms, uint64_t *bytes, node_err *err)
{
	*bytes = 0;
	unsigned char *buf = malloc(f->max + 3);
	if (buf == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	int fd = open(dest, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		free(buf);
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot create %s: %s", dest, strerror(errno));
	}
	unsigned long long off = 0, size = 0;
	int rc = 0, eof = 0;
	while (rc == 0 && !eof) {
		size_t got = 0;
		rc = fetch_piece(f, rel, off, timeout_ms, buf, &got, &size, &eof, err);
		if (rc == 0 && (off + got > size || (got == 0 && !eof)))
			rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "worker %s: mr.get %s: the file changed while it was read",
			                  node_client_url(f->cl), rel);
		if (rc == 0)
			rc = fetch_write(fd, buf, got, dest, err);
		off += got;
	}
	if (rc == 0 && off != size)
		rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "worker %s: mr.get %s: %llu of %llu bytes came", node_client_url(f->cl),
		                  rel, off, size);
	if (close(fd) != 0 && rc == 0)
		rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot write %s: %s", dest, strerror(errno));
	free(buf);
	if (rc != 0)
		unlink(dest);
	else
		*bytes = off;
	return rc;
}
