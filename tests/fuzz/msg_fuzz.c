/* libFuzzer target for the wire format (modules/core/msg.c, auth.c).
 *
 * Every input is decoded by two wires without a secret (1 MiB limits, and
 * tight ones: 4 KiB, depth 8, 256-byte strings). Then, by its first byte:
 *   0x02 (a signed message): decoded as is by a wire with a secret; the MAC
 *        almost never matches, so this explores the header checks;
 *   anything else: decoded by the secret wire as is (refused as unsigned),
 *        then signed with node_auth_sign and decoded, so the decompression
 *        and JSON paths are reached behind a valid signature, and decoded a
 *        second time to hit the replay cache.
 * Whatever decodes must encode again and decode to the same text. Limits are
 * small so the fuzzer can reach them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/auth.h"
#include "core/err.h"
#include "core/msg.h"

static node_wire fz_plain, fz_signed, fz_tight;
static unsigned char *fz_buf;

static const char fz_secret[] = "fuzz secret";

static void fz_limits(node_wire *w)
{
	w->limits.max_message = 1u << 20;
	w->limits.max_depth = 32;
	w->limits.max_string = 64u << 10;
	w->limits.compress_above = 512;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	node_err err;
	node_wire_init(&fz_plain);
	node_wire_init(&fz_signed);
	fz_limits(&fz_plain);
	fz_limits(&fz_signed);
	node_wire_init(&fz_tight); /* limits a 64 KiB input can cross */
	fz_tight.limits.max_message = 4096;
	fz_tight.limits.max_depth = 8;
	fz_tight.limits.max_string = 256;
	fz_tight.limits.compress_above = 64;
	if (node_auth_new(&fz_signed.auth, fz_secret, sizeof fz_secret - 1, 30000, &err) != 0) {
		fprintf(stderr, "msg_fuzz: %s\n", err.msg);
		abort();
	}
	fz_buf = malloc(NODE_AUTH_HEADER + fz_plain.limits.max_message + 64);
	return 0;
}

static void fz_check_err(int rc, const node_err *err, cJSON *v)
{
	if (rc == 0) {
		if (v == NULL || !cJSON_IsObject(v))
			abort();
		return;
	}
	if (v != NULL || err->rc != rc || err->code[0] == '\0' || err->msg[0] == '\0')
		abort();
	if (rc != NODE_EINVAL && rc != NODE_ELIMIT && rc != NODE_EAUTH)
		abort();
}

/* What decoded must encode, and decode again to the same thing. */
static void fz_round_trip(node_wire *w, cJSON *v)
{
	node_err err;
	nng_msg *m = NULL;
	int rc = node_msg_encode(w, v, &m, &err);
	if (rc == NODE_ELIMIT)
		return; /* printing can lengthen a message: 1e5 -> 100000 */
	if (rc != 0)
		abort();
	cJSON *back = NULL;
	rc = node_msg_decode(w, nng_msg_body(m), nng_msg_len(m), 0, &back, &err);
	if (rc != 0) {
		fprintf(stderr, "msg_fuzz: re-encoded message refused: %s: %s\n", err.code, err.msg);
		abort();
	}
	char *t1 = cJSON_PrintUnformatted(v), *t2 = cJSON_PrintUnformatted(back);
	if (t1 == NULL || t2 == NULL || strcmp(t1, t2) != 0) {
		fprintf(stderr, "msg_fuzz: round trip changed the message\n");
		abort();
	}
	cJSON_free(t1);
	cJSON_free(t2);
	cJSON_Delete(back);
	nng_msg_free(m);
}

static int fz_decode(node_wire *w, const void *data, size_t len, int check_replay, int round_trip)
{
	node_err err;
	memset(&err, 0, sizeof err);
	cJSON *v = NULL;
	int rc = node_msg_decode(w, data, len, check_replay, &v, &err);
	fz_check_err(rc, &err, v);
	if (rc == 0 && round_trip)
		fz_round_trip(w, v);
	cJSON_Delete(v);
	return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	int plain = fz_decode(&fz_plain, data, size, 0, 1);
	fz_decode(&fz_tight, data, size, 0, 1);
	if (size > 0 && data[0] == NODE_AUTH_MARK) {
		fz_decode(&fz_signed, data, size, 1, 0);
		return 0;
	}
	int rc = fz_decode(&fz_signed, data, size, 0, 0);
	if (rc != NODE_EAUTH && rc != NODE_ELIMIT)
		abort(); /* an unsigned message got past the secret */
	if (size > fz_plain.limits.max_message)
		return 0;
	node_err err;
	if (node_auth_sign(fz_signed.auth, data, size, fz_buf, &err) != 0)
		abort();
	if (size > 0)
		memcpy(fz_buf + NODE_AUTH_HEADER, data, size);
	size_t len = NODE_AUTH_HEADER + size;
	rc = fz_decode(&fz_signed, fz_buf, len, 1, 1);
	if (rc != plain) {
		fprintf(stderr, "msg_fuzz: decoded %d unsigned but %d signed\n", plain, rc);
		abort(); /* the signature must not change what the body means */
	}
	int again = fz_decode(&fz_signed, fz_buf, len, 1, 0);
	if (again != NODE_EAUTH)
		abort(); /* a replay got through */
	return 0;
}
