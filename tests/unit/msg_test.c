/* The wire format (modules/core/msg.c): plain and lz4 bodies, limits,
 * refusal of malformed and hostile input, signing, replies and errors. */
#include <lz4frame.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/auth.h"
#include "core/err.h"
#include "core/msg.h"
#include "unit.h"

static const char test_secret[] = "correct horse battery staple";

/* A fresh wire with the default limits and, optionally, a secret. */
static void wire_open(node_wire *w, int with_auth)
{
	node_wire_init(w);
	if (with_auth) {
		node_err err = { 0 };
		int rc = node_auth_new(&w->auth, test_secret, sizeof test_secret - 1, 30000, &err);
		UNIT_CHECK(rc == 0);
	}
}

/* Encode body and copy the bytes out, so tests can tamper with them. */
static unsigned char *encode_bytes(node_wire *w, const cJSON *body, size_t *len)
{
	nng_msg *m = NULL;
	node_err err = { 0 };
	int rc = node_msg_encode(w, body, &m, &err);
	UNIT_CHECK(rc == 0);
	if (rc != 0) {
		fprintf(stderr, "    encode: %s: %s\n", err.code, err.msg);
		*len = 0;
		return NULL;
	}
	*len = nng_msg_len(m);
	unsigned char *b = malloc(*len ? *len : 1);
	memcpy(b, nng_msg_body(m), *len);
	nng_msg_free(m);
	return b;
}

static int decode_rc(node_wire *w, const void *data, size_t len, int check_replay, node_err *err)
{
	cJSON *v = NULL;
	memset(err, 0, sizeof *err);
	int rc = node_msg_decode(w, data, len, check_replay, &v, err);
	if (rc == 0) {
		UNIT_CHECK(v != NULL);
		cJSON_Delete(v);
	} else {
		UNIT_CHECK(v == NULL);
		UNIT_CHECK(err->rc == rc);
		UNIT_CHECK(err->code[0] != '\0');
		UNIT_CHECK(err->msg[0] != '\0');
	}
	return rc;
}

static int decode_str(node_wire *w, const char *s, node_err *err)
{
	return decode_rc(w, s, strlen(s), 0, err);
}

/* {"op":"fill","items":[{"i":0,"name":"item-000000","tags":[...]} ...]}: about `bytes` long, very repetitive. */
static cJSON *big_object(size_t bytes)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "op", "fill");
	cJSON *items = cJSON_AddArrayToObject(o, "items");
	char name[32];
	for (int i = 0; (size_t)i * 64 < bytes; i++) {
		cJSON *it = cJSON_CreateObject();
		cJSON_AddNumberToObject(it, "i", i);
		snprintf(name, sizeof name, "item-%06d", i);
		cJSON_AddStringToObject(it, "name", name);
		cJSON_AddStringToObject(it, "state", "pending");
		cJSON_AddItemToArray(items, it);
	}
	return o;
}

/* A string of n copies of c (caller frees). */
static char *repeat(char c, size_t n)
{
	char *s = malloc(n + 1);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

UNIT_TEST(test_plain_round_trip)
{
	node_wire w;
	wire_open(&w, 0);
	cJSON *body = cJSON_Parse("{\"op\":\"ping\",\"n\":42,\"list\":[1,\"two\",null,true],\"o\":{\"k\":\"v\"}}");
	size_t len;
	unsigned char *b = encode_bytes(&w, body, &len);
	UNIT_CHECK(b != NULL && len > 0 && b[0] == '{');
	char *text = cJSON_PrintUnformatted(body);
	UNIT_CHECK(b != NULL && len == strlen(text) && memcmp(b, text, len) == 0);
	cJSON *back = NULL;
	node_err err = { 0 };
	UNIT_CHECK(node_msg_decode(&w, b, len, 0, &back, &err) == 0);
	UNIT_CHECK(back != NULL && cJSON_Compare(body, back, 1));
	cJSON_Delete(back);

	/* What nngcat sends: JSON typed by a person, with blanks. */
	const char *typed = "  {\n \"op\" : \"ping\" }\n";
	back = NULL;
	UNIT_CHECK(node_msg_decode(&w, typed, strlen(typed), 0, &back, &err) == 0);
	UNIT_CHECK(back != NULL && cJSON_IsString(cJSON_GetObjectItem(back, "op")));
	cJSON_Delete(back);
	cJSON_free(text);
	free(b);
	cJSON_Delete(body);
	node_wire_fini(&w);
}

UNIT_TEST(test_compressed_round_trip)
{
	node_wire w;
	wire_open(&w, 0);
	cJSON *body = big_object(64 * 1024);
	char *text = cJSON_PrintUnformatted(body);
	size_t tlen = strlen(text);
	UNIT_CHECK(tlen > w.limits.compress_above);
	size_t len;
	unsigned char *b = encode_bytes(&w, body, &len);
	UNIT_CHECK(b != NULL && b[0] == NODE_LZ4_MARK);
	UNIT_CHECK(len < tlen / 4);
	cJSON *back = NULL;
	node_err err = { 0 };
	UNIT_CHECK(node_msg_decode(&w, b, len, 0, &back, &err) == 0);
	UNIT_CHECK(back != NULL && cJSON_Compare(body, back, 1));
	if (back) {
		char *t2 = cJSON_PrintUnformatted(back);
		UNIT_CHECK(strcmp(text, t2) == 0);
		cJSON_free(t2);
	}
	cJSON_Delete(back);
	free(b);

	/* Just at the threshold: not compressed. compress_above = 0: never. */
	w.limits.compress_above = tlen;
	b = encode_bytes(&w, body, &len);
	UNIT_CHECK(b != NULL && b[0] == '{' && len == tlen);
	free(b);
	w.limits.compress_above = 0;
	b = encode_bytes(&w, body, &len);
	UNIT_CHECK(b != NULL && b[0] == '{' && len == tlen);
	free(b);

	/* A body that does not shrink is sent plain. */
	w.limits.compress_above = 16;
	cJSON *tiny = cJSON_Parse("{\"x\":\"q9$Zk!2p@L\"}");
	b = encode_bytes(&w, tiny, &len);
	UNIT_CHECK(b != NULL && b[0] == '{');
	free(b);
	cJSON_Delete(tiny);

	cJSON_free(text);
	cJSON_Delete(body);
	node_wire_fini(&w);
}

/* An lz4 frame (behind the marker) whose header declares `declared` bytes
 * while the blocks hold `src`: LZ4F_compressEnd would refuse the mismatch,
 * so the frame is assembled from Begin + Update + a hand-written end mark. */
static unsigned char *lz4_frame_declaring(unsigned long long declared, const void *src, size_t n, size_t *len)
{
	LZ4F_cctx *cctx = NULL;
	UNIT_CHECK(!LZ4F_isError(LZ4F_createCompressionContext(&cctx, LZ4F_VERSION)));
	LZ4F_preferences_t prefs;
	memset(&prefs, 0, sizeof prefs);
	prefs.frameInfo.contentSize = declared;
	size_t cap = 1 + LZ4F_HEADER_SIZE_MAX + LZ4F_compressBound(n, &prefs) + 8;
	unsigned char *buf = malloc(cap);
	buf[0] = NODE_LZ4_MARK;
	size_t pos = 1;
	size_t r = LZ4F_compressBegin(cctx, buf + pos, cap - pos, &prefs);
	UNIT_CHECK(!LZ4F_isError(r));
	pos += r;
	r = LZ4F_compressUpdate(cctx, buf + pos, cap - pos, src, n, NULL);
	UNIT_CHECK(!LZ4F_isError(r));
	pos += r;
	r = LZ4F_flush(cctx, buf + pos, cap - pos, NULL);
	UNIT_CHECK(!LZ4F_isError(r));
	pos += r;
	memset(buf + pos, 0, 4); /* end mark: a zero block size */
	pos += 4;
	LZ4F_freeCompressionContext(cctx);
	*len = pos;
	return buf;
}

UNIT_TEST(test_compressed_hostile)
{
	node_wire w;
	wire_open(&w, 0);
	node_err err;
	cJSON *body = big_object(64 * 1024);
	char *text = cJSON_PrintUnformatted(body);
	size_t tlen = strlen(text);
	size_t len;
	unsigned char *good = encode_bytes(&w, body, &len);
	UNIT_CHECK(good != NULL && good[0] == NODE_LZ4_MARK);
	if (good == NULL)
		return;

	/* Our own helper makes frames the decoder accepts when honest. */
	size_t hlen;
	unsigned char *honest = lz4_frame_declaring(tlen, text, tlen, &hlen);
	UNIT_CHECK(decode_rc(&w, honest, hlen, 0, &err) == 0);
	free(honest);

	/* Truncated anywhere: refused. */
	int all_refused = 1;
	for (size_t cut = 1; cut < len; cut += (cut < 64 ? 1 : 97)) {
		int rc = decode_rc(&w, good, cut, 0, &err);
		if (rc != NODE_EINVAL && rc != NODE_ELIMIT) {
			all_refused = 0;
			fprintf(stderr, "    truncated at %zu of %zu: rc %d\n", cut, len, rc);
		}
	}
	UNIT_CHECK(all_refused);
	UNIT_CHECK(decode_rc(&w, good, 1, 0, &err) == NODE_EINVAL);
	UNIT_CHECK(decode_rc(&w, good, len - 1, 0, &err) == NODE_EINVAL && strcmp(err.code, NODE_ERR_BAD_REQUEST) == 0);

	/* Header corruption is always detected (magic, flags, header checksum). */
	unsigned char *bad = malloc(len);
	for (size_t at = 1; at < 1 + 4 + 2 + 8 + 1; at++) {
		memcpy(bad, good, len);
		bad[at] ^= 0x5a;
		int rc = decode_rc(&w, bad, len, 0, &err);
		UNIT_CHECK(rc == NODE_EINVAL || rc == NODE_ELIMIT);
	}
	/* The first block's size field claims far more than is there. */
	memcpy(bad, good, len);
	bad[1 + 4 + 2 + 8 + 1 + 2] ^= 0x3f;
	UNIT_CHECK(decode_rc(&w, bad, len, 0, &err) != 0);
	/* Random corruption anywhere in the payload: never a crash; lz4 frames
	 * carry no content checksum, so a flipped literal may still decode. */
	srand(1234);
	for (int i = 0; i < 2000; i++) {
		memcpy(bad, good, len);
		int flips = 1 + rand() % 4;
		for (int f = 0; f < flips; f++)
			bad[1 + (size_t)rand() % (len - 1)] ^= (unsigned char)(1 + rand() % 255);
		int rc = decode_rc(&w, bad, len, 0, &err);
		UNIT_CHECK(rc == 0 || rc == NODE_EINVAL || rc == NODE_ELIMIT);
	}
	free(bad);

	/* Decompression bombs: the header declares more than max_message. */
	unsigned long long sizes[] = { (unsigned long long)w.limits.max_message + 1, 1ull << 40, UINT64_MAX - 1 };
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		unsigned char *bomb = lz4_frame_declaring(sizes[i], text, tlen, &hlen);
		unsigned long long before = atomic_load(&w.refused_limits);
		int rc = decode_rc(&w, bomb, hlen, 0, &err);
		UNIT_CHECK(rc == NODE_ELIMIT && strcmp(err.code, NODE_ERR_TOO_LARGE) == 0);
		UNIT_CHECK(atomic_load(&w.refused_limits) == before + 1);
		free(bomb);
	}
	/* An honest bomb: 32 MiB of one byte, about 130 KB compressed. */
	size_t zlen = 32u << 20;
	char *zeros = repeat(' ', zlen);
	zeros[0] = '{';
	zeros[zlen - 2] = '}';
	unsigned char *bomb = lz4_frame_declaring(zlen, zeros, zlen, &hlen);
	UNIT_CHECK(hlen < w.limits.max_message);
	UNIT_CHECK(decode_rc(&w, bomb, hlen, 0, &err) == NODE_ELIMIT);
	free(bomb);
	/* A frame that lies low: declares 100 bytes, holds 64 KiB. */
	bomb = lz4_frame_declaring(100, text, tlen, &hlen);
	int rc = decode_rc(&w, bomb, hlen, 0, &err);
	UNIT_CHECK(rc == NODE_EINVAL || rc == NODE_ELIMIT);
	free(bomb);
	/* ...or declares more than it holds. */
	bomb = lz4_frame_declaring(tlen + 10, text, tlen, &hlen);
	rc = decode_rc(&w, bomb, hlen, 0, &err);
	UNIT_CHECK(rc == NODE_EINVAL || rc == NODE_ELIMIT);
	free(bomb);
	/* A frame with no declared size (we always declare one): refused. */
	bomb = lz4_frame_declaring(0, text, tlen, &hlen);
	rc = decode_rc(&w, bomb, hlen, 0, &err);
	UNIT_CHECK(rc == NODE_EINVAL || rc == NODE_ELIMIT);
	free(bomb);
	/* A frame that decompresses to something that is not a JSON object. */
	bomb = lz4_frame_declaring(5, "[1,2]", 5, &hlen);
	UNIT_CHECK(decode_rc(&w, bomb, hlen, 0, &err) == NODE_EINVAL && strcmp(err.code, NODE_ERR_BAD_REQUEST) == 0);
	free(bomb);
	/* Only the marker. */
	UNIT_CHECK(decode_rc(&w, "\x01", 1, 0, &err) == NODE_EINVAL);

	free(zeros);
	free(good);
	cJSON_free(text);
	cJSON_Delete(body);
	node_wire_fini(&w);
}

UNIT_TEST(test_malformed)
{
	node_wire w;
	wire_open(&w, 0);
	node_err err;
	const char *bad[] = {
		"{", "{\"op\":", "{\"op\":\"ping\"", "{op:1}", "{\"a\":tru}", "nonsense", "\"just a string\"",
		"[1,2,3]", "[]", "42", "-1.5e3", "null", "true", "\"{}\"", "   ", "\n", "{\"a\":\"\\u12\"}",
		"\xef\xbb\xbf", "{\"a\":1,}", "}", "]",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		unsigned long long before = atomic_load(&w.refused_malformed);
		int rc = decode_str(&w, bad[i], &err);
		if (rc != NODE_EINVAL || strcmp(err.code, NODE_ERR_BAD_REQUEST) != 0)
			fprintf(stderr, "    %s: rc %d code %s\n", bad[i], rc, err.code);
		UNIT_CHECK(rc == NODE_EINVAL && strcmp(err.code, NODE_ERR_BAD_REQUEST) == 0);
		UNIT_CHECK(atomic_load(&w.refused_malformed) == before + 1);
	}
	/* Empty message. */
	UNIT_CHECK(decode_rc(&w, "", 0, 0, &err) == NODE_EINVAL && strcmp(err.code, NODE_ERR_BAD_REQUEST) == 0);
	/* An array root names the problem. */
	decode_str(&w, "[{\"op\":\"ping\"}]", &err);
	UNIT_CHECK(strstr(err.msg, "object") != NULL);
	/* Binary junk, including NUL bytes. */
	UNIT_CHECK(decode_rc(&w, "\0\0\0\0", 4, 0, &err) == NODE_EINVAL);
	UNIT_CHECK(decode_rc(&w, "{\"a\":\0}", 7, 0, &err) == NODE_EINVAL);
	UNIT_CHECK(decode_rc(&w, "\x03\x04", 2, 0, &err) == NODE_EINVAL);
	/* The parser never reads past the length: the text continues in memory. */
	const char *pad = "{\"op\":\"ping\"}";
	UNIT_CHECK(decode_rc(&w, pad, 6, 0, &err) == NODE_EINVAL);
	/* Good ones still pass, with odd but valid content. */
	UNIT_CHECK(decode_str(&w, "{}", &err) == 0);
	UNIT_CHECK(decode_str(&w, "{\"a\":\"\\u00e9\\n\\\"\",\"b\":[[],{}],\"c\":-0.5e-3}", &err) == 0);
	UNIT_CHECK(decode_str(&w, "\xef\xbb\xbf{\"bom\":1}", &err) == 0);
	node_wire_fini(&w);
}

/* `levels` nested arrays inside an object: {"a":[[[...]]]}, depth levels + 1. */
static char *nested(int levels)
{
	char *s = malloc((size_t)levels * 2 + 16);
	size_t n = 0;
	n += (size_t)sprintf(s, "{\"a\":");
	for (int i = 0; i < levels; i++)
		s[n++] = '[';
	for (int i = 0; i < levels; i++)
		s[n++] = ']';
	s[n++] = '}';
	s[n] = '\0';
	return s;
}

UNIT_TEST(test_depth)
{
	node_wire w;
	wire_open(&w, 0);
	node_err err;
	int max = w.limits.max_depth;
	char *ok = nested(max - 1);
	UNIT_CHECK(decode_str(&w, ok, &err) == 0);
	char *deep = nested(max);
	unsigned long long before = atomic_load(&w.refused_limits);
	UNIT_CHECK(decode_str(&w, deep, &err) == NODE_ELIMIT && strcmp(err.code, NODE_ERR_LIMIT) == 0);
	UNIT_CHECK(atomic_load(&w.refused_limits) == before + 1);
	/* Far deeper than cJSON's own limit: a scan, not a stack overflow. */
	char *abyss = nested(200000);
	UNIT_CHECK(decode_str(&w, abyss, &err) == NODE_ELIMIT);
	/* Unbalanced and deep. */
	abyss[strlen(abyss) / 2 + 3] = '\0';
	UNIT_CHECK(decode_str(&w, abyss, &err) == NODE_ELIMIT);
	/* Objects count as well as arrays. */
	size_t n = 0;
	char *objs = malloc((size_t)max * 8 + 8);
	for (int i = 0; i <= max; i++)
		n += (size_t)sprintf(objs + n, "{\"a\":");
	n += (size_t)sprintf(objs + n, "1");
	for (int i = 0; i <= max; i++)
		objs[n++] = '}';
	objs[n] = '\0';
	UNIT_CHECK(decode_str(&w, objs, &err) == NODE_ELIMIT);

	/* Brackets inside strings are text, escaped quotes included. */
	char *in_str = malloc(20000);
	strcpy(in_str, "{\"s\":\"\\\"");
	memset(in_str + strlen(in_str), '[', 10000);
	in_str[8 + 10000] = '\0';
	strcat(in_str, "\\\\\",\"t\":\"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{\"}");
	UNIT_CHECK(decode_str(&w, in_str, &err) == 0);
	/* ...and keys too. */
	char *key = repeat('[', 5000);
	char *in_key = malloc(6000);
	snprintf(in_key, 6000, "{\"%s\":[[1]]}", key);
	UNIT_CHECK(decode_str(&w, in_key, &err) == 0);

	/* A smaller configured limit, and the same check on built values. */
	w.limits.max_depth = 3;
	UNIT_CHECK(decode_str(&w, "{\"a\":[[1]]}", &err) == 0);
	UNIT_CHECK(decode_str(&w, "{\"a\":[[[1]]]}", &err) == NODE_ELIMIT);
	UNIT_CHECK(decode_str(&w, "{\"a\":[{\"b\":{}}]}", &err) == NODE_ELIMIT);
	/* Brackets inside strings do not count, escaped quotes do not end them,
	 * and an escaped backslash before a quote does. */
	UNIT_CHECK(decode_str(&w, "{\"a\":\"x\\\"[[[[{{\",\"b\":[1]}", &err) == 0);
	UNIT_CHECK(decode_str(&w, "{\"a\":\"\\\\\",\"b\":[[[1]]]}", &err) == NODE_ELIMIT);
	UNIT_CHECK(decode_str(&w, "{\"a\":\"\\\\\",\"b\":[[1]]}", &err) == 0);
	cJSON *built = cJSON_Parse("{\"a\":[[[1]]]}");
	UNIT_CHECK(node_msg_check_limits(&w.limits, built, &err) == NODE_ELIMIT);
	cJSON_Delete(built);
	built = cJSON_Parse("{\"a\":[[1]]}");
	UNIT_CHECK(node_msg_check_limits(&w.limits, built, &err) == 0);
	cJSON_Delete(built);
	/* An empty container one level too deep counts as well. */
	built = cJSON_Parse("{\"a\":[[[]]]}");
	UNIT_CHECK(node_msg_check_limits(&w.limits, built, &err) == NODE_ELIMIT);
	cJSON_Delete(built);
	built = cJSON_Parse("{\"a\":[[],{},1,\"s\"]}");
	UNIT_CHECK(node_msg_check_limits(&w.limits, built, &err) == 0);
	cJSON_Delete(built);

	free(ok);
	free(deep);
	free(abyss);
	free(objs);
	free(in_str);
	free(key);
	free(in_key);
	node_wire_fini(&w);
}

UNIT_TEST(test_string_limit)
{
	node_wire w;
	wire_open(&w, 0);
	node_err err;
	w.limits.max_string = 100;
	char *s100 = repeat('x', 100), *s101 = repeat('x', 101);
	char buf[512];
	snprintf(buf, sizeof buf, "{\"s\":\"%s\"}", s100);
	UNIT_CHECK(decode_str(&w, buf, &err) == 0);
	snprintf(buf, sizeof buf, "{\"s\":\"%s\"}", s101);
	unsigned long long before = atomic_load(&w.refused_limits);
	UNIT_CHECK(decode_str(&w, buf, &err) == NODE_ELIMIT && strcmp(err.code, NODE_ERR_LIMIT) == 0);
	UNIT_CHECK(atomic_load(&w.refused_limits) == before + 1);
	/* In an array, deep inside, or as a key. */
	snprintf(buf, sizeof buf, "{\"a\":[1,{\"b\":[\"%s\"]}]}", s101);
	UNIT_CHECK(decode_str(&w, buf, &err) == NODE_ELIMIT);
	snprintf(buf, sizeof buf, "{\"%s\":1}", s101);
	UNIT_CHECK(decode_str(&w, buf, &err) == NODE_ELIMIT);
	/* Escapes count once decoded: 100 "\n" escapes are 100 bytes. */
	char esc[400] = "{\"s\":\"";
	for (int i = 0; i < 100; i++)
		strcat(esc, "\\n");
	strcat(esc, "\"}");
	UNIT_CHECK(decode_str(&w, esc, &err) == 0);
	/* Behind compression too. */
	w.limits.max_string = 1000;
	w.limits.compress_above = 64;
	char *big = repeat('y', 5000);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "s", big);
	w.limits.max_string = 10000;
	size_t len;
	unsigned char *b = encode_bytes(&w, o, &len);
	UNIT_CHECK(b != NULL && b[0] == NODE_LZ4_MARK);
	w.limits.max_string = 1000;
	UNIT_CHECK(b != NULL && decode_rc(&w, b, len, 0, &err) == NODE_ELIMIT);
	free(b);
	cJSON_Delete(o);
	free(big);
	free(s100);
	free(s101);
	node_wire_fini(&w);
}

UNIT_TEST(test_message_size)
{
	node_wire w;
	wire_open(&w, 0);
	node_err err;
	w.limits.max_message = 1000;
	w.limits.compress_above = 0;

	/* Encode: 999, 1000 and 1001 bytes of JSON text. */
	for (size_t total = 999; total <= 1001; total++) {
		char *pad = repeat('p', total - 8);
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "s", pad); /* {"s":"..."} = 8 + pad */
		nng_msg *m = NULL;
		int rc = node_msg_encode(&w, o, &m, &err);
		if (total <= 1000) {
			UNIT_CHECK(rc == 0 && nng_msg_len(m) == total);
			nng_msg_free(m);
		} else {
			UNIT_CHECK(rc == NODE_ELIMIT && strcmp(err.code, NODE_ERR_TOO_LARGE) == 0 && m == NULL);
		}
		/* Decode the same text. */
		char *text = cJSON_PrintUnformatted(o);
		unsigned long long before = atomic_load(&w.refused_limits);
		rc = decode_rc(&w, text, strlen(text), 0, &err);
		if (total <= 1000) {
			UNIT_CHECK(rc == 0);
		} else {
			UNIT_CHECK(rc == NODE_ELIMIT && strcmp(err.code, NODE_ERR_TOO_LARGE) == 0);
			UNIT_CHECK(atomic_load(&w.refused_limits) == before + 1);
		}
		cJSON_free(text);
		cJSON_Delete(o);
		free(pad);
	}

	/* Compression does not lift the limit: it holds after decompression
	 * too, so the encoder must not send what every decoder refuses. */
	w.limits.compress_above = 100;
	char *fill = repeat('f', 8000);
	cJSON *big = cJSON_CreateObject();
	cJSON_AddStringToObject(big, "s", fill);
	free(fill);
	char *text = cJSON_PrintUnformatted(big);
	UNIT_CHECK(strlen(text) > 1000);
	nng_msg *m = NULL;
	int rc = node_msg_encode(&w, big, &m, &err);
	UNIT_CHECK(rc == NODE_ELIMIT && strcmp(err.code, NODE_ERR_TOO_LARGE) == 0);
	if (rc == 0)
		nng_msg_free(m);
	w.limits.max_message = 1u << 20;
	size_t len;
	unsigned char *b = encode_bytes(&w, big, &len);
	UNIT_CHECK(b != NULL && b[0] == NODE_LZ4_MARK && len < 1000);
	w.limits.max_message = 1000;
	UNIT_CHECK(b != NULL && decode_rc(&w, b, len, 0, &err) == NODE_ELIMIT);
	free(b);
	cJSON_free(text);
	cJSON_Delete(big);

	/* With a secret, the limit is on the body; the header comes on top. */
	node_wire s;
	wire_open(&s, 1);
	s.limits = w.limits;
	s.limits.compress_above = 0;
	char *pad = repeat('p', 1000 - 8);
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "s", pad);
	b = encode_bytes(&s, o, &len);
	UNIT_CHECK(b != NULL && len == 1000 + NODE_AUTH_HEADER);
	UNIT_CHECK(b != NULL && decode_rc(&s, b, len, 1, &err) == 0);
	free(b);
	cJSON_Delete(o);
	free(pad);
	node_wire_fini(&s);
	node_wire_fini(&w);
}

UNIT_TEST(test_counters)
{
	node_wire w;
	wire_open(&w, 0);
	node_err err;
	w.limits.max_depth = 2;
	UNIT_CHECK(atomic_load(&w.refused_limits) == 0 && atomic_load(&w.refused_malformed) == 0);
	decode_str(&w, "{", &err);
	decode_str(&w, "[]", &err);
	decode_str(&w, "{\"a\":[[1]]}", &err);
	decode_str(&w, "{\"ok\":1}", &err);
	UNIT_CHECK(atomic_load(&w.refused_malformed) == 2);
	UNIT_CHECK(atomic_load(&w.refused_limits) == 1);
	node_wire_fini(&w);
}

UNIT_TEST(test_signed)
{
	node_wire tx, rx;
	wire_open(&tx, 1);
	wire_open(&rx, 1);
	node_err err;
	cJSON *body = cJSON_Parse("{\"op\":\"submit\",\"tasks\":[{\"cmd\":\"true\"}]}");
	size_t len;
	unsigned char *b = encode_bytes(&tx, body, &len);
	UNIT_CHECK(b != NULL && b[0] == NODE_AUTH_MARK);
	if (b == NULL)
		return;
	char *text = cJSON_PrintUnformatted(body);
	UNIT_CHECK(len == NODE_AUTH_HEADER + strlen(text));
	UNIT_CHECK(memcmp(b + NODE_AUTH_HEADER, text, strlen(text)) == 0);
	cJSON_free(text);

	/* Accepted once with replay checking, refused the second time. */
	cJSON *back = NULL;
	UNIT_CHECK(node_msg_decode(&rx, b, len, 1, &back, &err) == 0);
	UNIT_CHECK(back != NULL && cJSON_Compare(body, back, 1));
	cJSON_Delete(back);
	UNIT_CHECK(decode_rc(&rx, b, len, 1, &err) == NODE_EAUTH && strcmp(err.code, NODE_ERR_REPLAY) == 0);
	/* Clients do not check replays (REQ/REP matches replies already). */
	UNIT_CHECK(decode_rc(&rx, b, len, 0, &err) == 0);
	UNIT_CHECK(decode_rc(&rx, b, len, 0, &err) == 0);
	/* The sender's own wire accepts it too: same secret. */
	UNIT_CHECK(decode_rc(&tx, b, len, 1, &err) == 0);

	/* A tampered byte anywhere: the mark turns it into an unsigned message,
	 * anything else (timestamp, nonce, MAC, body) breaks the signature. */
	unsigned char *bad = malloc(len);
	int all_bad_sig = 1;
	for (size_t at = 1; at < len; at++) {
		for (int bit = 0; bit < 8; bit += 7) {
			memcpy(bad, b, len);
			bad[at] ^= (unsigned char)(1u << bit);
			int rc = decode_rc(&rx, bad, len, 0, &err);
			if (rc != NODE_EAUTH || strcmp(err.code, NODE_ERR_BAD_SIGNATURE) != 0) {
				all_bad_sig = 0;
				fprintf(stderr, "    byte %zu bit %d: rc %d %s\n", at, bit, rc, err.code);
			}
		}
	}
	UNIT_CHECK(all_bad_sig);
	memcpy(bad, b, len);
	bad[0] = '{';
	UNIT_CHECK(decode_rc(&rx, bad, len, 0, &err) == NODE_EAUTH && strcmp(err.code, NODE_ERR_AUTH) == 0);
	/* Truncated, or extended by a byte. */
	UNIT_CHECK(decode_rc(&rx, b, len - 1, 0, &err) == NODE_EAUTH && strcmp(err.code, NODE_ERR_BAD_SIGNATURE) == 0);
	UNIT_CHECK(decode_rc(&rx, b, NODE_AUTH_HEADER - 1, 0, &err) == NODE_EAUTH && strcmp(err.code, NODE_ERR_AUTH) == 0);
	unsigned char *longer = malloc(len + 1);
	memcpy(longer, b, len);
	longer[len] = ' ';
	UNIT_CHECK(decode_rc(&rx, longer, len + 1, 0, &err) == NODE_EAUTH && strcmp(err.code, NODE_ERR_BAD_SIGNATURE) == 0);
	free(longer);
	free(bad);

	/* Unsigned messages are refused and counted. */
	node_auth_stats st0, st1;
	node_auth_stats_get(rx.auth, &st0);
	UNIT_CHECK(decode_str(&rx, "{\"op\":\"ping\"}", &err) == NODE_EAUTH && strcmp(err.code, NODE_ERR_AUTH) == 0);
	UNIT_CHECK(decode_rc(&rx, "", 0, 0, &err) == NODE_EAUTH && strcmp(err.code, NODE_ERR_AUTH) == 0);
	node_auth_stats_get(rx.auth, &st1);
	UNIT_CHECK(st1.unsigned_refused == st0.unsigned_refused + 2);

	/* A signed message reaching a process that has no secret. */
	node_wire plain;
	wire_open(&plain, 0);
	UNIT_CHECK(decode_rc(&plain, b, len, 1, &err) == NODE_EAUTH && strcmp(err.code, NODE_ERR_AUTH) == 0);
	UNIT_CHECK(strstr(err.msg, "secret") != NULL);
	node_wire_fini(&plain);

	/* A fresh message is accepted with the clocks in step... */
	free(b);
	b = encode_bytes(&tx, body, &len);
	/* ...but not when this host's clock is off by more than the window. */
	node_auth_set_skew(rx.auth, 31000);
	UNIT_CHECK(decode_rc(&rx, b, len, 1, &err) == NODE_EAUTH && strcmp(err.code, NODE_ERR_STALE) == 0);
	node_auth_set_skew(rx.auth, -31000);
	UNIT_CHECK(decode_rc(&rx, b, len, 0, &err) == NODE_EAUTH && strcmp(err.code, NODE_ERR_STALE) == 0);
	UNIT_CHECK(strstr(err.msg, "clock") != NULL);
	node_auth_set_skew(rx.auth, 25000);
	UNIT_CHECK(decode_rc(&rx, b, len, 1, &err) == 0);
	node_auth_set_skew(rx.auth, 0);
	node_auth_stats_get(rx.auth, &st1);
	UNIT_CHECK(st1.stale == st0.stale + 2);
	free(b);

	/* Signed and compressed: the compression is behind the signature. */
	cJSON *big = big_object(64 * 1024);
	b = encode_bytes(&tx, big, &len);
	UNIT_CHECK(b != NULL && b[0] == NODE_AUTH_MARK && b[NODE_AUTH_HEADER] == NODE_LZ4_MARK);
	back = NULL;
	UNIT_CHECK(b != NULL && node_msg_decode(&rx, b, len, 1, &back, &err) == 0);
	UNIT_CHECK(back != NULL && cJSON_Compare(big, back, 1));
	cJSON_Delete(back);
	b[len / 2] ^= 1;
	UNIT_CHECK(decode_rc(&rx, b, len, 0, &err) == NODE_EAUTH && strcmp(err.code, NODE_ERR_BAD_SIGNATURE) == 0);
	free(b);
	cJSON_Delete(big);

	/* The limits still apply behind a valid signature. */
	rx.limits.max_depth = 2;
	cJSON *deep = cJSON_Parse("{\"a\":[[1]]}");
	b = encode_bytes(&tx, deep, &len);
	UNIT_CHECK(decode_rc(&rx, b, len, 1, &err) == NODE_ELIMIT);
	free(b);
	cJSON_Delete(deep);
	/* A signed empty body: valid signature, nothing inside. */
	unsigned char hdr[NODE_AUTH_HEADER];
	UNIT_CHECK(node_auth_sign(tx.auth, "", 0, hdr, &err) == 0);
	UNIT_CHECK(decode_rc(&rx, hdr, sizeof hdr, 1, &err) == NODE_EINVAL && strcmp(err.code, NODE_ERR_BAD_REQUEST) == 0);

	cJSON_Delete(body);
	node_wire_fini(&tx);
	node_wire_fini(&rx);
}

UNIT_TEST(test_replies)
{
	node_err err = { 0 };
	cJSON *ok = node_reply_ok();
	UNIT_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(ok, "ok")));
	UNIT_CHECK(node_reply_check(ok, &err) == 0);

	cJSON *r = node_reply_error(NODE_ERR_BUSY, "queue %s holds %d tasks", "gpu", 10000);
	UNIT_CHECK(cJSON_IsFalse(cJSON_GetObjectItem(r, "ok")));
	/* Through the wire and back. */
	node_wire w;
	wire_open(&w, 1);
	size_t len;
	unsigned char *b = encode_bytes(&w, r, &len);
	cJSON *back = NULL;
	UNIT_CHECK(b != NULL && node_msg_decode(&w, b, len, 1, &back, &err) == 0);
	memset(&err, 0, sizeof err);
	UNIT_CHECK(node_reply_check(back, &err) == NODE_EREMOTE);
	UNIT_CHECK(err.rc == NODE_EREMOTE);
	UNIT_CHECK(strcmp(err.code, "busy") == 0);
	UNIT_CHECK(strcmp(err.msg, "queue gpu holds 10000 tasks") == 0);
	cJSON_Delete(back);
	free(b);
	node_wire_fini(&w);

	/* From a node_err, and back. */
	node_err e2 = { 0 };
	node_err_set(&e2, NODE_ETIMEDOUT, NODE_ERR_TIMEOUT, "broker %s did not answer in %d s", "tcp://10.0.0.1:7100", 5);
	cJSON *r2 = node_reply_from_err(&e2);
	UNIT_CHECK(node_reply_check(r2, &err) == NODE_EREMOTE);
	UNIT_CHECK(strcmp(err.code, "timeout") == 0 && strcmp(err.msg, e2.msg) == 0);
	/* An error without a code becomes "internal". */
	node_err e3 = { 0 };
	strcpy(e3.msg, "something odd");
	cJSON *r3 = node_reply_from_err(&e3);
	UNIT_CHECK(node_reply_check(r3, &err) == NODE_EREMOTE && strcmp(err.code, NODE_ERR_INTERNAL) == 0);

	/* Replies from a confused peer. */
	const char *odd[] = { "{}", "{\"ok\":\"yes\"}", "{\"ok\":1}", "{\"ok\":null}" };
	for (size_t i = 0; i < sizeof odd / sizeof odd[0]; i++) {
		cJSON *v = cJSON_Parse(odd[i]);
		UNIT_CHECK(node_reply_check(v, &err) == NODE_EINVAL && strcmp(err.code, NODE_ERR_BAD_REQUEST) == 0);
		cJSON_Delete(v);
	}
	cJSON *v = cJSON_Parse("{\"ok\":false}");
	UNIT_CHECK(node_reply_check(v, &err) == NODE_EREMOTE && strcmp(err.code, NODE_ERR_INTERNAL) == 0 && err.msg[0]);
	cJSON_Delete(v);
	v = cJSON_Parse("{\"ok\":false,\"error\":{\"code\":7,\"message\":[]}}");
	UNIT_CHECK(node_reply_check(v, &err) == NODE_EREMOTE && strcmp(err.code, NODE_ERR_INTERNAL) == 0 && err.msg[0]);
	cJSON_Delete(v);
	/* A very long code or message is cut, not overflowed. */
	char *longs = repeat('c', 5000);
	cJSON *r4 = node_reply_error(longs, "%s", longs);
	UNIT_CHECK(node_reply_check(r4, &err) == NODE_EREMOTE);
	UNIT_CHECK(strlen(err.code) == sizeof err.code - 1 && strlen(err.msg) == sizeof err.msg - 1);
	/* NULL reply: no "ok". */
	UNIT_CHECK(node_reply_check(NULL, &err) == NODE_EINVAL);
	/* err may be NULL. */
	UNIT_CHECK(node_reply_check(r, NULL) == NODE_EREMOTE);
	free(longs);
	cJSON_Delete(r4);
	cJSON_Delete(ok);
	cJSON_Delete(r);
	cJSON_Delete(r2);
	cJSON_Delete(r3);
}

UNIT_TEST(test_err_prefix)
{
	node_err err;
	memset(&err, 0, sizeof err);
	UNIT_CHECK(node_err_set(&err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "line %d: expected %s", 3, "a number") == NODE_EINVAL);
	UNIT_CHECK(err.rc == NODE_EINVAL && strcmp(err.code, "bad_args") == 0);
	node_err_prefix(&err, "%s: ", "cluster.json");
	UNIT_CHECK(strcmp(err.msg, "cluster.json: line 3: expected a number") == 0);
	UNIT_CHECK(err.rc == NODE_EINVAL && strcmp(err.code, "bad_args") == 0);
	node_err_prefix(&err, "%s", "");
	UNIT_CHECK(strcmp(err.msg, "cluster.json: line 3: expected a number") == 0);
	/* Long message: the result is cut to fit. */
	char *m = repeat('m', 510);
	node_err_set(&err, NODE_EIO, NODE_ERR_INTERNAL, "%s", m);
	node_err_prefix(&err, "prefix: ");
	UNIT_CHECK(strlen(err.msg) == sizeof err.msg - 1 && strncmp(err.msg, "prefix: mmm", 11) == 0);
	/* A prefix longer than the buffer. */
	char *p = repeat('p', 700);
	node_err_prefix(&err, "%s", p);
	UNIT_CHECK(strlen(err.msg) < sizeof err.msg);
	/* NULL err is fine everywhere. */
	UNIT_CHECK(node_err_set(NULL, NODE_ENOMEM, NODE_ERR_INTERNAL, "x") == NODE_ENOMEM);
	node_err_prefix(NULL, "x");
	/* A NULL code is stored as empty. */
	node_err_set(&err, NODE_EIO, NULL, "no code");
	UNIT_CHECK(err.code[0] == '\0');
	free(m);
	free(p);
}

int main(void)
{
	UNIT_RUN(test_plain_round_trip);
	UNIT_RUN(test_compressed_round_trip);
	UNIT_RUN(test_compressed_hostile);
	UNIT_RUN(test_malformed);
	UNIT_RUN(test_depth);
	UNIT_RUN(test_string_limit);
	UNIT_RUN(test_message_size);
	UNIT_RUN(test_counters);
	UNIT_RUN(test_signed);
	UNIT_RUN(test_replies);
	UNIT_RUN(test_err_prefix);
	return unit_finish("msg");
}
