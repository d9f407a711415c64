/* Map task inputs. A file chunk is read with one pread into one buffer (plus
 * the end of its last line), so the map runs over memory at full speed; a
 * URL is fetched with nng's HTTP client within a size and time limit
 * (chunked bodies decoded here, redirects followed); text is used in place. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/tls/tls.h>

#include "core/clock.h"
#include "mapreduce/input.h"
#include "mapreduce/job.h"

#define INPUT_TAIL_STEP (64u << 10)  /* read past the chunk's end in these steps */
#define INPUT_COUNT_STEP (1u << 20)  /* counting lines before a chunk */
#define INPUT_CA_FILE "/etc/ssl/certs/ca-certificates.crt"
#define INPUT_HUGE (2u << 20)        /* a chunk buffer in huge pages when it can */
#define INPUT_PIECE (1u << 20)       /* a chunk is read (and its lines counted) in these */
#define INPUT_LINE_MAX (256u << 20)  /* bytes the last line may run on past a chunk's end */

static int input_oom(node_err *err)
{
	return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
}

/* ---- counting ---- */

#ifdef __SSE2__
#include <emmintrin.h>
#endif

uint64_t mr_input_count_nl(const char *p, size_t n)
{
	uint64_t count = 0;
	size_t i = 0;
#ifdef __SSE2__
	/* 16 bytes at a time: each '\n' adds 1 to its byte lane (cmpeq gives
	 * -1), lanes summed by psadbw before they can overflow */
	const __m128i nl = _mm_set1_epi8('\n'), zero = _mm_setzero_si128();
	while (i + 16 <= n) {
		__m128i acc = zero;
		for (int k = 0; k < 255 && i + 16 <= n; k++, i += 16)
			acc = _mm_sub_epi8(acc, _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(const void *)(p + i)), nl));
		__m128i sad = _mm_sad_epu8(acc, zero);
		count += (uint64_t)_mm_cvtsi128_si64(sad) + (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(sad, sad));
	}
#else
	/* eight bytes at a time: a byte of w is zero where p has '\n' */
	const uint64_t low7 = 0x7F7F7F7F7F7F7F7FULL, lanes = 0x00FF00FF00FF00FFULL;
	while (i + 8 <= n) {
		uint64_t acc = 0;
		for (int k = 0; k < 255 && i + 8 <= n; k++, i += 8) {
			uint64_t w;
			memcpy(&w, p + i, 8);
			w ^= 0x0A0A0A0A0A0A0A0AULL;
			acc += (~(((w & low7) + low7) | w) & 0x8080808080808080ULL) >> 7;
		}
		acc = (acc & lanes) + ((acc >> 8) & lanes);
		count += (acc * 0x0001000100010001ULL) >> 48;
	}
#endif
	for (; i < n; i++)
		count += p[i] == '\n';
	return count;
}

uint64_t mr_input_count_lines(const char *p, size_t n)
{
	return mr_input_count_nl(p, n) + (n > 0 && p[n - 1] != '\n');
}

/* ---- file chunks ---- */

/* A chunk's buffer: a big one is aligned and advised into huge pages, so
 * reading 64 MiB into it costs 32 page faults rather than 16384, and the
 * map's scan misses the TLB less. Freed with free(). */
static char *input_alloc(size_t n)
{
	void *p = NULL;
	if (n < 2 * INPUT_HUGE)
		return malloc(n);
	if (posix_memalign(&p, INPUT_HUGE, n) != 0)
		return NULL;
	madvise(p, n - n % INPUT_HUGE, MADV_HUGEPAGE); /* advice: ignored where unsupported */
	return p;
}

/* pread until n bytes or the end of the file; *got the bytes read. */
static int input_pread(int fd, char *buf, size_t n, uint64_t off, size_t *got, const char *path, node_err *err)
{
	*got = 0;
	while (*got < n) {
		ssize_t r = pread(fd, buf + *got, n - *got, (off_t)(off + *got));
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot read %s: %s", path, strerror(errno));
		if (r == 0)
			break;
		*got += (size_t)r;
	}
	return 0;
}

/* '\n's in the file before off, for the number of a chunk's first line. */
static int input_count_before(int fd, uint64_t off, const char *path, uint64_t *count, node_err *err)
{
	char *buf = malloc(INPUT_COUNT_STEP);
	if (buf == NULL)
		return input_oom(err);
	*count = 0;
	int rc = 0;
	for (uint64_t pos = 0; pos < off && rc == 0;) {
		size_t want = off - pos < INPUT_COUNT_STEP ? (size_t)(off - pos) : INPUT_COUNT_STEP, got;
		rc = input_pread(fd, buf, want, pos, &got, path, err);
		if (rc == 0 && got == 0)
			break;
		*count += mr_input_count_nl(buf, got);
		pos += got;
	}
	free(buf);
	return rc;
}

/* Read on from file offset at (buf holds *len bytes) until a '\n' ends the
 * last line or the file ends; a file without line ends is not read whole
 * into memory: past INPUT_LINE_MAX more bytes it is an error. */
static int input_finish_line(int fd, char **buf, size_t *len, size_t *cap, uint64_t at, const char *path,
                             node_err *err)
{
	for (size_t limit = *len + INPUT_LINE_MAX;;) {
		if (*len >= limit)
			return node_err_set(err, NODE_ELIMIT, NODE_ERR_TOO_LARGE,
			                    "%s: a line runs on past byte %llu for more than %u MiB without a line end",
			                    path, (unsigned long long)(at + limit - INPUT_LINE_MAX), INPUT_LINE_MAX >> 20);
		if (*cap - *len < INPUT_TAIL_STEP) {
			size_t ncap = *cap + (*cap / 4 > INPUT_TAIL_STEP ? *cap / 4 : INPUT_TAIL_STEP);
			char *b = realloc(*buf, ncap + 1);
			if (b == NULL)
				return input_oom(err);
			*buf = b;
			*cap = ncap;
		}
		size_t got;
		if (input_pread(fd, *buf + *len, INPUT_TAIL_STEP, at + *len, &got, path, err))
			return err->rc;
		char *nl = memchr(*buf + *len, '\n', got);
		if (nl) {
			*len = (size_t)(nl - *buf) + 1;
			return 0;
		}
		*len += got;
		if (got < INPUT_TAIL_STEP)
			return 0;
	}
}

typedef struct file_chunk {
	const char *path;
	uint64_t offset, length;
	uint64_t size; /* the file's, at least offset */
	int lines;
} file_chunk;

/* The lines that start in [O, O+L): read from O-1 (a line starting at O is
 * ours exactly when byte O-1 is '\n'), skip to the first line start at or
 * after O, and read past O+L to the end of the last line. */
/* pread up to want bytes in pieces, counting the '\n's of each while it
 * is still in the cache (a second pass over 64 MiB would miss it). */
static int input_read_counting(int fd, char *buf, size_t want, uint64_t from, size_t *len, uint64_t *nl,
                               const char *path, node_err *err)
{
	*len = 0;
	*nl = 0;
	while (*len < want) {
		size_t step = want - *len < INPUT_PIECE ? want - *len : INPUT_PIECE, got;
		if (input_pread(fd, buf + *len, step, from + *len, &got, path, err))
			return err->rc;
		*nl += mr_input_count_nl(buf + *len, got);
		*len += got;
		if (got < step)
			break;
	}
	return 0;
}

static int input_file_read(int fd, const file_chunk *f, mr_input_chunk *c, node_err *err)
{
	uint64_t from = f->offset > 0 ? f->offset - 1 : 0, want = f->offset + f->length - from, nl;
	if (want > f->size - from) /* no buffer for bytes the file does not have */
		want = f->size - from;
	size_t cap = (size_t)want + INPUT_TAIL_STEP, len;
	char *buf = input_alloc(cap + 1);
	if (buf == NULL)
		return input_oom(err);
	c->buf = buf;
	if (input_read_counting(fd, buf, (size_t)want, from, &len, &nl, f->path, err))
		return err->rc;
	size_t begin = 0;
	if (f->offset > 0) {
		const char *p = memchr(buf, '\n', len);
		begin = p ? (size_t)(p - buf) + 1 : len;
	}
	uint64_t nl_before = begin > 0 && buf[begin - 1] == '\n'; /* begin follows the first '\n', if any */
	if (begin < len && len == want && buf[len - 1] != '\n') {
		size_t old = len;
		if (input_finish_line(fd, &c->buf, &len, &cap, from, f->path, err))
			return err->rc;
		buf = c->buf;
		nl += mr_input_count_nl(buf + old, len - old);
	}
	if (begin >= want) /* the first line starts at or after O+L: not ours */
		begin = len = nl = nl_before = 0;
	c->text = buf + begin;
	c->len = len - begin;
	c->bytes_in = c->len; /* so the chunks of a file add up to its size */
	c->lines = nl - nl_before + (c->len > 0 && c->text[c->len - 1] != '\n');
	if (f->lines && c->len > 0) {
		uint64_t before = 0;
		if (input_count_before(fd, from, f->path, &before, err))
			return err->rc;
		c->first_line = before + nl_before + 1;
	}
	return 0;
}

static int input_num(const cJSON *in, const char *key, uint64_t max, uint64_t *out, node_err *err)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, key);
	if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > (double)max ||
	    v->valuedouble != (double)(uint64_t)v->valuedouble)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "input.%s: expected an integer from 0 to %" PRIu64,
		                    key, max);
	*out = (uint64_t)v->valuedouble;
	return 0;
}

static int input_file(const cJSON *in, const char *path, mr_input_chunk *c, node_err *err)
{
	file_chunk f = {.path = path};
	const cJSON *lines = cJSON_GetObjectItemCaseSensitive(in, "lines");
	if (input_num(in, "offset", 1ULL << 62, &f.offset, err) || input_num(in, "length", MR_JOB_CHUNK_MAX, &f.length, err))
		return err->rc;
	if (lines && !cJSON_IsBool(lines))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "input.lines: expected true or false");
	f.lines = cJSON_IsTrue(lines);
	if (path[0] != '/')
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "input.file: expected an absolute path, got \"%.200s\"", path);
	snprintf(c->what, sizeof c->what, "%.500s (bytes %" PRIu64 "+%" PRIu64 ")", path, f.offset, f.length);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_NOT_FOUND, "cannot open %s: %s", path, strerror(errno));
	struct stat st;
	int rc = 0;
	if (fstat(fd, &st) != 0)
		rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot read %s: %s", path, strerror(errno));
	else if ((uint64_t)st.st_size < f.offset)
		rc = node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s has %lld bytes, fewer than the chunk's offset %" PRIu64
		                  " (it changed since the job was submitted)", path, (long long)st.st_size, f.offset);
	else {
		f.size = (uint64_t)st.st_size;
		rc = input_file_read(fd, &f, c, err);
	}
	close(fd);
	return rc;
}

/* ---- URLs ---- */

typedef struct url_body {
	char *buf;
	size_t len, cap;
	/* chunked transfer coding, decoded as it comes */
	enum { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER, CH_DONE } state;
	uint64_t left;
	char line[64];
	size_t ll;
} url_body;

typedef struct url_get {
	const char *url;     /* the input's URL, for errors */
	int64_t deadline;    /* monotonic ms */
	nng_aio *aio;
	url_body body;
	char location[4096]; /* a redirect's target */
	node_err *err;
} url_get;

static int url_fail(url_get *g, int rv, const char *doing)
{
	if (rv == NNG_ETIMEDOUT)
		return node_err_set(g->err, NODE_ETIMEDOUT, NODE_ERR_TIMEOUT, "%s: timed out while %s", g->url, doing);
	return node_err_set(g->err, NODE_EIO, NODE_ERR_INTERNAL, "%s: %s while %s", g->url, nng_strerror(rv), doing);
}

/* Run the operation just started on g->aio to its end. */
static int url_wait(url_get *g, const char *doing)
{
	nng_aio_wait(g->aio);
	int rv = nng_aio_result(g->aio);
	return rv ? url_fail(g, rv, doing) : 0;
}

static void url_timeout(url_get *g)
{
	int64_t left = g->deadline - node_clock_mono_ms();
	nng_aio_set_timeout(g->aio, left > 0 ? (nng_duration)left : 1);
}

static int url_append(url_get *g, const char *p, size_t n)
{
	url_body *b = &g->body;
	if (n > MR_INPUT_URL_MAX - b->len)
		return node_err_set(g->err, NODE_ELIMIT, NODE_ERR_TOO_LARGE, "%s: the body is larger than %llu MiB", g->url,
		                    MR_INPUT_URL_MAX >> 20);
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 1u << 20;
		while (cap < b->len + n)
			cap *= 2;
		char *nb = realloc(b->buf, cap + 1);
		if (nb == NULL)
			return input_oom(g->err);
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
	return 0;
}

static int url_bad_chunk(url_get *g)
{
	return node_err_set(g->err, NODE_EIO, NODE_ERR_INTERNAL, "%s: malformed chunked body", g->url);
}

/* Feed received bytes through the chunked decoder into the body. */
static int url_dechunk(url_get *g, const char *p, size_t n)
{
	url_body *b = &g->body;
	for (const char *end = p + n; p < end && b->state != CH_DONE;) {
		if (b->state == CH_DATA) {
			size_t k = (size_t)(end - p) < b->left ? (size_t)(end - p) : (size_t)b->left;
			if (url_append(g, p, k))
				return g->err->rc;
			p += k;
			if ((b->left -= k) == 0)
				b->state = CH_DATA_END;
			continue;
		}
		char ch = *p++;
		if (b->state == CH_DATA_END) {
			if (ch == '\n')
				b->state = CH_SIZE;
			else if (ch != '\r')
				return url_bad_chunk(g);
		} else if (ch != '\n') {
			if (b->ll + 1 >= sizeof b->line && b->state == CH_SIZE)
				return url_bad_chunk(g);
			if (b->ll + 1 < sizeof b->line)
				b->line[b->ll] = ch;
			b->ll++;
		} else if (b->state == CH_TRAILER) {
			if (b->ll == 0 || (b->ll == 1 && b->line[0] == '\r'))
				b->state = CH_DONE;
			b->ll = 0;
		} else {
			b->line[b->ll < sizeof b->line ? b->ll : sizeof b->line - 1] = '\0';
			char *e;
			errno = 0;
			unsigned long long size = strtoull(b->line, &e, 16);
			if (e == b->line || errno || (*e && *e != ';' && *e != '\r' && *e != ' ' && *e != '\t'))
				return url_bad_chunk(g);
			b->ll = 0;
			b->left = size;
			b->state = size ? CH_DATA : CH_TRAILER;
		}
	}
	return 0;
}

static int url_read_body(url_get *g, nng_http_conn *conn, nng_http_res *res)
{
	const char *te = nng_http_res_get_header(res, "Transfer-Encoding");
	const char *cl = nng_http_res_get_header(res, "Content-Length");
	int chunked = te && strcasestr(te, "chunked");
	long long length = -1;
	if (!chunked && cl) {
		char *e;
		length = strtoll(cl, &e, 10);
		if (e == cl || length < 0)
			return node_err_set(g->err, NODE_EIO, NODE_ERR_INTERNAL, "%s: bad Content-Length \"%.40s\"", g->url, cl);
		if ((unsigned long long)length > MR_INPUT_URL_MAX)
			return node_err_set(g->err, NODE_ELIMIT, NODE_ERR_TOO_LARGE, "%s: the body is %lld bytes, more than %llu MiB",
			                    g->url, length, MR_INPUT_URL_MAX >> 20);
	}
	static const size_t step = 1u << 16;
	char *tmp = malloc(step);
	if (tmp == NULL)
		return input_oom(g->err);
	int rc = 0;
	while (rc == 0 && !(chunked && g->body.state == CH_DONE) && !(length >= 0 && g->body.len >= (size_t)length)) {
		nng_iov iov = {tmp, length >= 0 && (size_t)length - g->body.len < step ? (size_t)length - g->body.len : step};
		nng_aio_set_iov(g->aio, 1, &iov);
		url_timeout(g);
		nng_http_conn_read(conn, g->aio);
		nng_aio_wait(g->aio);
		int rv = nng_aio_result(g->aio);
		size_t n = nng_aio_count(g->aio);
		if (rv == NNG_ECLOSED || rv == NNG_ECONNSHUT || rv == NNG_ECONNRESET || (rv == 0 && n == 0)) {
			if (chunked || length >= 0)
				rc = node_err_set(g->err, NODE_EIO, NODE_ERR_INTERNAL, "%s: the connection closed before the body ended", g->url);
			break; /* without a length the body ends when the server closes */
		}
		if (rv != 0)
			rc = url_fail(g, rv, "reading the body");
		else
			rc = chunked ? url_dechunk(g, tmp, n) : url_append(g, tmp, n);
	}
	free(tmp);
	return rc;
}

static int url_tls(url_get *g, nng_http_client *client, const nng_url *u, nng_tls_config **tls)
{
	int rv;
	if ((rv = nng_tls_config_alloc(tls, NNG_TLS_MODE_CLIENT)) != 0 || (rv = nng_tls_config_server_name(*tls, u->u_hostname)) != 0 ||
	    (rv = nng_tls_config_ca_file(*tls, INPUT_CA_FILE)) != 0 ||
	    (rv = nng_tls_config_auth_mode(*tls, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 || (rv = nng_http_client_set_tls(client, *tls)) != 0)
		return node_err_set(g->err, NODE_EIO, NODE_ERR_INTERNAL, "%s: cannot set up TLS: %s", g->url, nng_strerror(rv));
	return 0;
}

/* A redirect's target as an absolute URL in g->location. */
static int url_redirect(url_get *g, const nng_url *u, const char *loc, int status)
{
	int n;
	if (loc == NULL)
		return node_err_set(g->err, NODE_EIO, NODE_ERR_INTERNAL, "%s: HTTP %d without a Location", g->url, status);
	if (strncmp(loc, "http://", 7) == 0 || strncmp(loc, "https://", 8) == 0)
		n = snprintf(g->location, sizeof g->location, "%s", loc);
	else if (loc[0] == '/' && loc[1] != '/')
		n = snprintf(g->location, sizeof g->location, "%s://%s%s", u->u_scheme, u->u_host, loc);
	else
		return node_err_set(g->err, NODE_EIO, NODE_ERR_INTERNAL, "%s: HTTP %d to \"%.200s\", which cannot be followed",
		                    g->url, status, loc);
	if (n < 0 || (size_t)n >= sizeof g->location)
		return node_err_set(g->err, NODE_EIO, NODE_ERR_INTERNAL, "%s: redirect target too long", g->url);
	return 0;
}

/* One request to url: 0 with the body, 1 with a redirect in g->location. */
static int url_get_once(url_get *g, const char *url)
{
	nng_url *u = NULL;
	nng_http_client *client = NULL;
	nng_http_conn *conn = NULL;
	nng_http_req *req = NULL;
	nng_http_res *res = NULL;
	nng_tls_config *tls = NULL;
	int rc = -1, rv;
	if ((rv = nng_url_parse(&u, url)) != 0) {
		node_err_set(g->err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s is not a valid URL: %s", url, nng_strerror(rv));
		goto done;
	}
	int https = strcmp(u->u_scheme, "https") == 0;
	if (!https && strcmp(u->u_scheme, "http") != 0) {
		node_err_set(g->err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s: only http:// and https:// URLs can be read", url);
		goto done;
	}
	if ((rv = nng_http_client_alloc(&client, u)) != 0 || (rv = nng_http_req_alloc(&req, u)) != 0 ||
	    (rv = nng_http_res_alloc(&res)) != 0) {
		url_fail(g, rv, "starting");
		goto done;
	}
	if (https && url_tls(g, client, u, &tls) != 0)
		goto done;
	if (u->u_requri == NULL || u->u_requri[0] == '\0')
		nng_http_req_set_uri(req, "/");
	nng_http_req_set_header(req, "User-Agent", "node-mapreduce/1");
	nng_http_req_set_header(req, "Connection", "close");
	url_timeout(g);
	nng_http_client_connect(client, g->aio);
	if (url_wait(g, "connecting"))
		goto done;
	conn = nng_aio_get_output(g->aio, 0);
	url_timeout(g);
	nng_http_conn_write_req(conn, req, g->aio);
	if (url_wait(g, "sending the request"))
		goto done;
	url_timeout(g);
	nng_http_conn_read_res(conn, res, g->aio);
	if (url_wait(g, "waiting for the response"))
		goto done;
	int status = nng_http_res_get_status(res);
	if (status == 301 || status == 302 || status == 303 || status == 307 || status == 308) {
		rc = url_redirect(g, u, nng_http_res_get_header(res, "Location"), status) ? -1 : 1;
	} else if (status != 200) {
		const char *reason = nng_http_res_get_reason(res);
		node_err_set(g->err, NODE_EIO, NODE_ERR_INTERNAL, "%s: HTTP %d %s", g->url, status, reason ? reason : "");
	} else {
		rc = url_read_body(g, conn, res) ? -1 : 0;
	}
done:
	if (conn)
		nng_http_conn_close(conn);
	nng_http_req_free(req);
	nng_http_res_free(res);
	if (client)
		nng_http_client_free(client);
	if (tls)
		nng_tls_config_free(tls);
	nng_url_free(u);
	return rc;
}

static int input_url(const char *url, int64_t deadline_ms, mr_input_chunk *c, node_err *err)
{
	snprintf(c->what, sizeof c->what, "%.590s", url);
	url_get g = {.url = url, .err = err};
	g.deadline = node_clock_mono_ms() + MR_INPUT_URL_TIMEOUT_MS;
	if (deadline_ms > 0 && deadline_ms < g.deadline)
		g.deadline = deadline_ms;
	int rv = nng_aio_alloc(&g.aio, NULL, NULL);
	if (rv != 0)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "%s: %s", url, nng_strerror(rv));
	char *cur = strdup(url);
	int rc = cur ? -1 : input_oom(err);
	for (int hop = 0; cur && hop <= MR_INPUT_URL_REDIRECTS; hop++) {
		rc = url_get_once(&g, cur);
		free(cur);
		cur = NULL;
		if (rc == 1 && hop < MR_INPUT_URL_REDIRECTS && (cur = strdup(g.location)) == NULL)
			rc = input_oom(err);
		else if (rc == 1 && hop == MR_INPUT_URL_REDIRECTS)
			rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "%s: more than %d redirects", url, MR_INPUT_URL_REDIRECTS);
	}
	nng_aio_free(g.aio);
	if (rc != 0) {
		free(g.body.buf);
		return err->rc ? err->rc : NODE_EIO;
	}
	c->buf = g.body.buf;
	c->text = c->buf ? c->buf : "";
	c->len = c->bytes_in = g.body.len;
	c->lines = mr_input_count_lines(c->text, c->len);
	return 0;
}

/* ---- the input object ---- */

int mr_input_read(const cJSON *in, int64_t deadline_ms, mr_input_chunk *c, node_err *err)
{
	memset(c, 0, sizeof *c);
	c->first_line = 1;
	c->text = "";
	const cJSON *file = cJSON_GetObjectItemCaseSensitive(in, "file");
	const cJSON *url = cJSON_GetObjectItemCaseSensitive(in, "url");
	const cJSON *text = cJSON_GetObjectItemCaseSensitive(in, "text");
	if (!cJSON_IsObject(in) || (file != NULL) + (url != NULL) + (text != NULL) != 1)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS,
		                    "input: expected an object with one of file (and offset, length), url or text");
	int rc;
	if (file && cJSON_IsString(file))
		rc = input_file(in, file->valuestring, c, err);
	else if (url && cJSON_IsString(url))
		rc = input_url(url->valuestring, deadline_ms, c, err);
	else if (text && cJSON_IsString(text)) {
		snprintf(c->what, sizeof c->what, "the input text");
		c->text = text->valuestring;
		c->len = c->bytes_in = strlen(text->valuestring);
		c->lines = mr_input_count_lines(c->text, c->len);
		rc = 0;
	} else
		rc = node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "input.%s: expected a string", file ? "file" : url ? "url" : "text");
	if (rc != 0)
		mr_input_free(c);
	return rc;
}

void mr_input_free(mr_input_chunk *c)
{
	free(c->buf);
	c->buf = NULL;
	c->text = "";
	c->len = 0;
}
