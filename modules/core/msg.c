/* Encoding and decoding messages; see msg.h for the format. Decoding never
 * trusts a length it has not checked against the limits. */
#include "msg.h"

#include <lz4frame.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void node_wire_init(node_wire *w)
{
	memset(w, 0, sizeof *w);
	node_limits def = NODE_LIMITS_DEFAULT;
	w->limits = def;
}

void node_wire_fini(node_wire *w)
{
	node_auth_free(w->auth);
	free(w->tls_cert);
	free(w->tls_key);
	free(w->tls_ca);
	free(w->tls_server_name);
	memset(w, 0, sizeof *w);
}

static int msg_compress(const char *text, size_t len, void **out, size_t *olen, node_err *err)
{
	LZ4F_preferences_t prefs;
	memset(&prefs, 0, sizeof prefs);
	prefs.frameInfo.contentSize = len;
	prefs.frameInfo.contentChecksumFlag = LZ4F_contentChecksumEnabled; /* unsigned peers still get corruption caught */
	size_t cap = LZ4F_compressFrameBound(len, &prefs) + 1;
	unsigned char *buf = malloc(cap);
	if (buf == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory compressing %zu bytes", len);
	buf[0] = NODE_LZ4_MARK;
	size_t n = LZ4F_compressFrame(buf + 1, cap - 1, text, len, &prefs);
	if (LZ4F_isError(n)) {
		free(buf);
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "lz4 compression failed: %s", LZ4F_getErrorName(n));
	}
	*out = buf;
	*olen = n + 1;
	return 0;
}

int node_msg_encode(node_wire *w, const cJSON *body, nng_msg **out, node_err *err)
{
	char *text = cJSON_PrintUnformatted(body);
	if (text == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "cannot serialise message");
	size_t len = strlen(text);
	const void *payload = text;
	void *packed = NULL;
	size_t plen = len;
	int rc = 0;
	if (len > w->limits.max_message) /* the limit holds after decompression too */
		rc = node_err_set(err, NODE_ELIMIT, NODE_ERR_TOO_LARGE, "message of %zu bytes exceeds the limit of %zu bytes", len, w->limits.max_message);
	else if (w->limits.compress_above > 0 && len > w->limits.compress_above) {
		rc = msg_compress(text, len, &packed, &plen, err);
		if (rc == 0 && plen < len)
			payload = packed;
		else
			plen = len;
	}
	size_t hdr = w->auth ? NODE_AUTH_HEADER : 0;
	nng_msg *m = NULL;
	if (rc == 0 && plen > w->limits.max_message)
		rc = node_err_set(err, NODE_ELIMIT, NODE_ERR_TOO_LARGE, "message of %zu bytes exceeds the limit of %zu bytes", plen, w->limits.max_message);
	if (rc == 0 && nng_msg_alloc(&m, hdr + plen) != 0)
		rc = node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory for a %zu byte message", plen);
	if (rc == 0) {
		unsigned char *b = nng_msg_body(m);
		memcpy(b + hdr, payload, plen);
		if (w->auth)
			rc = node_auth_sign(w->auth, b + hdr, plen, b, err);
	}
	cJSON_free(text);
	free(packed);
	if (rc != 0) {
		if (m)
			nng_msg_free(m);
		return rc;
	}
	*out = m;
	return 0;
}

static int msg_decompress(const node_limits *lim, const unsigned char *src, size_t len, char **out, size_t *olen, node_err *err)
{
	LZ4F_dctx *dctx = NULL;
	if (LZ4F_isError(LZ4F_createDecompressionContext(&dctx, LZ4F_VERSION)))
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	LZ4F_frameInfo_t info;
	size_t used = len;
	size_t r = LZ4F_getFrameInfo(dctx, &info, src, &used);
	int rc = 0;
	char *buf = NULL;
	if (LZ4F_isError(r))
		rc = node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "corrupt lz4 frame header: %s", LZ4F_getErrorName(r));
	else if (info.contentSize == 0 || info.contentSize > lim->max_message)
		rc = node_err_set(err, NODE_ELIMIT, NODE_ERR_TOO_LARGE, "compressed message declares %llu bytes; the limit is %zu",
		    (unsigned long long)info.contentSize, lim->max_message);
	else if ((buf = malloc((size_t)info.contentSize + 1)) == NULL)
		rc = node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	size_t have = 0, pos = used, want = rc == 0 ? (size_t)info.contentSize : 0;
	while (rc == 0 && r != 0) {
		size_t dst = want - have, srcn = len - pos;
		r = LZ4F_decompress(dctx, buf + have, &dst, src + pos, &srcn, NULL);
		if (LZ4F_isError(r)) {
			rc = node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "corrupt lz4 frame: %s", LZ4F_getErrorName(r));
			break;
		}
		have += dst;
		pos += srcn;
		if (r != 0 && (pos >= len || (dst == 0 && srcn == 0)))
			rc = node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "truncated lz4 frame");
	}
	if (rc == 0 && have != want)
		rc = node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "lz4 frame holds %zu bytes, header said %zu", have, want);
	LZ4F_freeDecompressionContext(dctx);
	if (rc != 0) {
		free(buf);
		return rc;
	}
	buf[have] = '\0';
	*out = buf;
	*olen = have;
	return 0;
}

static int limits_walk(const node_limits *lim, const cJSON *v, int depth, node_err *err)
{
	for (; v != NULL; v = v->next) {
		if ((cJSON_IsArray(v) || cJSON_IsObject(v)) && depth > lim->max_depth)
			return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "message nests deeper than %d levels", lim->max_depth);
		if (v->string != NULL && strlen(v->string) > lim->max_string)
			return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "a key is longer than %zu bytes", lim->max_string);
		if (cJSON_IsString(v) && strlen(v->valuestring) > lim->max_string)
			return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "a string is longer than %zu bytes", lim->max_string);
		if (v->child != NULL) {
			int rc = limits_walk(lim, v->child, depth + 1, err);
			if (rc != 0)
				return rc;
		}
	}
	return 0;
}

int node_msg_check_limits(const node_limits *lim, const cJSON *v, node_err *err)
{
	return limits_walk(lim, v, 1, err);
}

/* Refuse nesting before cJSON recurses into it: cJSON's own limit is 1000,
 * far above ours, and a deep message should cost a scan, not a parse. */
/* The end of the string whose contents start at s[i]: the index of its
 * closing quote, or n. memchr jumps over the contents, which are most of a
 * batch's bytes (a byte-at-a-time loop here was 15% of a channel host). */
static size_t msg_string_end(const char *s, size_t i, size_t n)
{
	while (i < n) {
		const char *q = memchr(s + i, '"', n - i);
		size_t qi = q ? (size_t)(q - s) : n;
		const char *b = memchr(s + i, '\\', qi - i);
		if (b == NULL)
			return qi;
		i = (size_t)(b - s) + 2; /* an escape: skip the byte after the backslash */
	}
	return n;
}

static int msg_prescan(const node_limits *lim, const char *s, size_t n, node_err *err)
{
	int depth = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '"') {
			i = msg_string_end(s, i + 1, n);
		} else if (c == '{' || c == '[') {
			if (++depth > lim->max_depth)
				return node_err_set(err, NODE_ELIMIT, NODE_ERR_LIMIT, "message nests deeper than %d levels", lim->max_depth);
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return 0;
}

static int msg_parse(node_wire *w, const char *text, size_t len, int any, cJSON **out, node_err *err)
{
	int rc = msg_prescan(&w->limits, text, len, err);
	if (rc != 0)
		return rc;
	const char *end = NULL;
	cJSON *v = cJSON_ParseWithLengthOpts(text, len, &end, 0);
	if (v == NULL) {
		size_t at = end && end >= text ? (size_t)(end - text) : 0;
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "malformed JSON near byte %zu", at);
	}
	/* One value per message: "{...}xyz" or two requests back to back are
	 * refused, not half read. Trailing blanks and NULs are fine. */
	for (const char *p = end; p && p < text + len; p++) {
		if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n' && *p != '\0') {
			cJSON_Delete(v);
			return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "malformed JSON: text after the value at byte %zu",
			    (size_t)(p - text));
		}
	}
	/* any: every JSON value (a JSON-RPC server answers a bare 1 itself). */
	if (!any && !cJSON_IsObject(v)) {
		cJSON_Delete(v);
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "a message must be a JSON object");
	}
	rc = node_msg_check_limits(&w->limits, v, err);
	if (rc != 0) {
		cJSON_Delete(v);
		return rc;
	}
	*out = v;
	return 0;
}

static int msg_decode(node_wire *w, const void *data, size_t len, int check_replay, int any, cJSON **out, node_err *err)
{
	const unsigned char *p = data;
	if (len > w->limits.max_message + (w->auth ? NODE_AUTH_HEADER : 0))
		return node_err_set(err, NODE_ELIMIT, NODE_ERR_TOO_LARGE, "message of %zu bytes exceeds the limit of %zu bytes", len, w->limits.max_message);
	if (w->auth != NULL) {
		const void *body;
		size_t blen;
		int rc = node_auth_verify(w->auth, p, len, check_replay, &body, &blen, err);
		if (rc != 0)
			return rc;
		p = body;
		len = blen;
	} else if (len > 0 && p[0] == NODE_AUTH_MARK) {
		return node_err_set(err, NODE_EAUTH, NODE_ERR_AUTH, "the peer signs its messages but no cluster secret is configured here");
	}
	if (len == 0)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "empty message");
	if (p[0] != NODE_LZ4_MARK)
		return msg_parse(w, (const char *)p, len, any, out, err);
	char *text = NULL;
	size_t tlen = 0;
	int rc = msg_decompress(&w->limits, p + 1, len - 1, &text, &tlen, err);
	if (rc != 0)
		return rc;
	rc = msg_parse(w, text, tlen, any, out, err);
	free(text);
	return rc;
}

/* Count a refused message by its kind; returns rc. */
static int msg_count_refusal(node_wire *w, int rc)
{
	if (rc == NODE_ELIMIT)
		atomic_fetch_add(&w->refused_limits, 1);
	else if (rc == NODE_EINVAL)
		atomic_fetch_add(&w->refused_malformed, 1);
	return rc;
}

static int msg_decode_counted(node_wire *w, const void *data, size_t len, int check_replay, int any, cJSON **out, node_err *err)
{
	return msg_count_refusal(w, msg_decode(w, data, len, check_replay, any, out, err));
}

int node_msg_decode(node_wire *w, const void *data, size_t len, int check_replay, cJSON **out, node_err *err)
{
	return msg_decode_counted(w, data, len, check_replay, 0, out, err);
}

int node_msg_parse_text(node_wire *w, const char *text, size_t len, cJSON **out, node_err *err)
{
	int rc = len > w->limits.max_message
	             ? node_err_set(err, NODE_ELIMIT, NODE_ERR_TOO_LARGE, "message of %zu bytes exceeds the limit of %zu bytes", len,
	                   w->limits.max_message)
	             : msg_parse(w, text, len, 1, out, err);
	return msg_count_refusal(w, rc);
}

int node_msg_decode_value(node_wire *w, const void *data, size_t len, int check_replay, cJSON **out, node_err *err)
{
	return msg_decode_counted(w, data, len, check_replay, 1, out, err);
}

size_t node_wire_recv_max(const node_wire *w)
{
	return 2 * w->limits.max_message + NODE_AUTH_HEADER + 64;
}

cJSON *node_reply_ok(void)
{
	cJSON *r = cJSON_CreateObject();
	if (r != NULL)
		cJSON_AddBoolToObject(r, "ok", 1);
	return r;
}

static cJSON *reply_error(const char *code, const char *text)
{
	cJSON *r = cJSON_CreateObject();
	if (r == NULL)
		return NULL;
	cJSON_AddBoolToObject(r, "ok", 0);
	cJSON *e = cJSON_AddObjectToObject(r, "error");
	cJSON_AddStringToObject(e, "code", code);
	cJSON_AddStringToObject(e, "message", text);
	return r;
}

cJSON *node_reply_error(const char *code, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof text, fmt, ap);
	va_end(ap);
	return reply_error(code, text);
}

cJSON *node_reply_from_err(const node_err *err)
{
	return reply_error(err->code[0] ? err->code : NODE_ERR_INTERNAL, err->msg);
}

int node_reply_check(const cJSON *reply, node_err *err)
{
	const cJSON *ok = cJSON_GetObjectItemCaseSensitive(reply, "ok");
	if (cJSON_IsTrue(ok))
		return 0;
	if (!cJSON_IsBool(ok))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_REQUEST, "reply has no \"ok\" field");
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(reply, "error");
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(e, "code");
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(e, "message");
	return node_err_set(err, NODE_EREMOTE, cJSON_IsString(code) ? code->valuestring : NODE_ERR_INTERNAL, "%s",
	    cJSON_IsString(msg) ? msg->valuestring : "the peer reported an error without a message");
}

void node_json_excerpt(const cJSON *v, char *out, size_t n)
{
	char *s = cJSON_PrintUnformatted(v);
	if (s == NULL) {
		snprintf(out, n, "(a value)");
		return;
	}
	size_t len = strlen(s);
	if (len > NODE_EXCERPT_LEN) {
		len = NODE_EXCERPT_LEN - 3;
		while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
			len--; /* do not split a UTF-8 character */
		snprintf(out, n, "%.*s...", (int)len, s);
	} else {
		snprintf(out, n, "%s", s);
	}
	cJSON_free(s);
}
