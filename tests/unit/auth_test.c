/* Message authentication (modules/core/auth.c): signatures, freshness, the
 * replay cache and its counters; random ids (modules/core/rand.c). */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/auth.h"
#include "core/err.h"
#include "core/rand.h"
#include "unit.h"

static const char secret_a[] = "the cluster secret";
static const char secret_b[] = "another cluster's secret";

static node_auth *auth_open(const char *secret, int window_ms)
{
	node_auth *a = NULL;
	node_err err = { 0 };
	UNIT_CHECK(node_auth_new(&a, secret, strlen(secret), window_ms, &err) == 0);
	return a;
}

/* A signed message: header + body, in a new buffer. */
static unsigned char *sign_msg(node_auth *a, const char *body, size_t *len)
{
	size_t n = strlen(body);
	unsigned char *m = malloc(NODE_AUTH_HEADER + n + 1);
	node_err err = { 0 };
	UNIT_CHECK(node_auth_sign(a, body, n, m, &err) == 0);
	memcpy(m + NODE_AUTH_HEADER, body, n);
	*len = NODE_AUTH_HEADER + n;
	return m;
}

static int verify(node_auth *a, const unsigned char *m, size_t len, int check_replay, node_err *err)
{
	const void *body = NULL;
	size_t blen = 0;
	memset(err, 0, sizeof *err);
	int rc = node_auth_verify(a, m, len, check_replay, &body, &blen, err);
	if (rc == 0)
		UNIT_CHECK(body == m + NODE_AUTH_HEADER && blen == len - NODE_AUTH_HEADER);
	else
		UNIT_CHECK(err->rc == rc && err->code[0] && err->msg[0]);
	return rc;
}

UNIT_TEST(test_new_and_sign)
{
	node_err err = { 0 };
	node_auth *a = NULL;
	UNIT_CHECK(node_auth_new(&a, "", 0, 1000, &err) == NODE_EINVAL && a == NULL);
	UNIT_CHECK(strstr(err.msg, "secret") != NULL);
	/* A binary secret with NUL bytes is fine. */
	UNIT_CHECK(node_auth_new(&a, "\0\1\0\2", 4, 0, &err) == 0 && a != NULL);
	size_t len;
	unsigned char *m = sign_msg(a, "{\"op\":\"ping\"}", &len);
	UNIT_CHECK(m[0] == NODE_AUTH_MARK);
	UNIT_CHECK(verify(a, m, len, 1, &err) == 0);
	free(m);
	node_auth_free(a);
	node_auth_free(NULL);

	/* Two signatures of the same body differ (fresh nonce each time). */
	a = auth_open(secret_a, 30000);
	size_t l1, l2;
	unsigned char *m1 = sign_msg(a, "{}", &l1), *m2 = sign_msg(a, "{}", &l2);
	UNIT_CHECK(l1 == l2 && memcmp(m1 + 9, m2 + 9, NODE_AUTH_NONCE) != 0);
	UNIT_CHECK(memcmp(m1 + 9 + NODE_AUTH_NONCE, m2 + 9 + NODE_AUTH_NONCE, NODE_AUTH_MAC) != 0);
	/* The timestamp is milliseconds since the epoch, big-endian. */
	uint64_t ts = 0;
	for (int i = 0; i < 8; i++)
		ts = ts << 8 | m1[1 + i];
	UNIT_CHECK(ts > 1600000000000ull && ts < 4102444800000ull);
	free(m1);
	free(m2);
	node_auth_free(a);
}

UNIT_TEST(test_wrong_secret)
{
	node_auth *a = auth_open(secret_a, 30000), *b = auth_open(secret_b, 30000);
	/* One byte shorter: a different key. (One NUL longer would be the same
	 * key: HMAC pads keys with zeros.) */
	node_auth *c = NULL;
	node_err err = { 0 };
	UNIT_CHECK(node_auth_new(&c, secret_a, sizeof secret_a - 2, 30000, &err) == 0);
	size_t len;
	unsigned char *m = sign_msg(a, "{\"op\":\"submit\"}", &len);
	UNIT_CHECK(verify(b, m, len, 1, &err) == NODE_EAUTH && strcmp(err.code, "bad_signature") == 0);
	UNIT_CHECK(verify(c, m, len, 1, &err) == NODE_EAUTH && strcmp(err.code, "bad_signature") == 0);
	/* Refused signatures do not poison the replay cache. */
	UNIT_CHECK(verify(a, m, len, 1, &err) == 0);
	node_auth_stats st;
	node_auth_stats_get(b, &st);
	UNIT_CHECK(st.bad_mac == 1 && st.unsigned_refused == 0 && st.stale == 0 && st.replayed == 0);
	free(m);
	node_auth_free(a);
	node_auth_free(b);
	node_auth_free(c);
}

UNIT_TEST(test_stats)
{
	node_auth *tx = auth_open(secret_a, 5000), *rx = auth_open(secret_a, 5000);
	node_err err;
	node_auth_stats st;
	node_auth_stats_get(rx, &st);
	UNIT_CHECK(st.unsigned_refused == 0 && st.bad_mac == 0 && st.stale == 0 && st.replayed == 0);

	size_t len;
	unsigned char *m = sign_msg(tx, "{\"op\":\"ping\"}", &len);
	/* unsigned: too short, or no mark */
	UNIT_CHECK(verify(rx, (const unsigned char *)"{\"op\":\"ping\"}", 13, 1, &err) == NODE_EAUTH && strcmp(err.code, "unauthenticated") == 0);
	UNIT_CHECK(verify(rx, (const unsigned char *)"", 0, 1, &err) == NODE_EAUTH && strcmp(err.code, "unauthenticated") == 0);
	UNIT_CHECK(verify(rx, m, NODE_AUTH_HEADER - 1, 1, &err) == NODE_EAUTH && strcmp(err.code, "unauthenticated") == 0);
	node_auth_count_unsigned(rx);
	/* bad MAC */
	m[len - 1] ^= 0x20;
	UNIT_CHECK(verify(rx, m, len, 1, &err) == NODE_EAUTH && strcmp(err.code, "bad_signature") == 0);
	m[len - 1] ^= 0x20;
	/* stale: the receiver's clock is ahead, then behind */
	node_auth_set_skew(rx, 6000);
	UNIT_CHECK(verify(rx, m, len, 1, &err) == NODE_EAUTH && strcmp(err.code, "stale") == 0);
	node_auth_set_skew(rx, -6000);
	UNIT_CHECK(verify(rx, m, len, 1, &err) == NODE_EAUTH && strcmp(err.code, "stale") == 0);
	/* a sender whose clock is off is refused the same way */
	node_auth_set_skew(rx, 0);
	node_auth_set_skew(tx, -60000);
	size_t olen;
	unsigned char *old = sign_msg(tx, "{}", &olen);
	UNIT_CHECK(verify(rx, old, olen, 0, &err) == NODE_EAUTH && strcmp(err.code, "stale") == 0);
	node_auth_set_skew(tx, 0);
	/* accepted, then replayed twice */
	UNIT_CHECK(verify(rx, m, len, 1, &err) == 0);
	UNIT_CHECK(verify(rx, m, len, 1, &err) == NODE_EAUTH && strcmp(err.code, "replayed") == 0);
	UNIT_CHECK(verify(rx, m, len, 1, &err) == NODE_EAUTH && strcmp(err.code, "replayed") == 0);
	UNIT_CHECK(verify(rx, m, len, 0, &err) == 0);

	node_auth_stats_get(rx, &st);
	UNIT_CHECK(st.unsigned_refused == 4);
	UNIT_CHECK(st.bad_mac == 1);
	UNIT_CHECK(st.stale == 3);
	UNIT_CHECK(st.replayed == 2);
	/* the sender counted nothing */
	node_auth_stats_get(tx, &st);
	UNIT_CHECK(st.unsigned_refused == 0 && st.bad_mac == 0 && st.stale == 0 && st.replayed == 0);
	free(m);
	free(old);
	node_auth_free(tx);
	node_auth_free(rx);
}

#define MANY 200000
#define KEEP 8

UNIT_TEST(test_replay_many)
{
	node_auth *tx = auth_open(secret_a, 30000), *rx = auth_open(secret_a, 30000);
	node_err err;
	unsigned char *kept[2 * KEEP];
	size_t kept_len[2 * KEEP];
	int accepted = 0, first_fail = -1;
	char body[64];
	for (int i = 0; i < MANY; i++) {
		int n = snprintf(body, sizeof body, "{\"op\":\"ping\",\"i\":%d}", i);
		unsigned char m[NODE_AUTH_HEADER + 64];
		if (node_auth_sign(tx, body, (size_t)n, m, &err) != 0)
			break;
		memcpy(m + NODE_AUTH_HEADER, body, (size_t)n);
		size_t len = NODE_AUTH_HEADER + (size_t)n;
		const void *b;
		size_t blen;
		if (node_auth_verify(rx, m, len, 1, &b, &blen, &err) == 0)
			accepted++;
		else if (first_fail < 0)
			first_fail = i;
		int slot = i < KEEP ? i : i >= MANY - KEEP ? KEEP + (i - (MANY - KEEP)) : -1;
		if (slot >= 0) {
			kept[slot] = malloc(len);
			memcpy(kept[slot], m, len);
			kept_len[slot] = len;
		}
	}
	if (first_fail >= 0)
		fprintf(stderr, "    message %d refused: %s: %s\n", first_fail, err.code, err.msg);
	UNIT_CHECK(accepted == MANY);
	/* The first and the last few, replayed: all refused. */
	for (int i = 0; i < 2 * KEEP; i++) {
		UNIT_CHECK(verify(rx, kept[i], kept_len[i], 1, &err) == NODE_EAUTH && strcmp(err.code, "replayed") == 0);
		/* ...except by a client, which does not check replays. */
		UNIT_CHECK(verify(rx, kept[i], kept_len[i], 0, &err) == 0);
		free(kept[i]);
	}
	node_auth_stats st;
	node_auth_stats_get(rx, &st);
	UNIT_CHECK(st.replayed == 2 * KEEP && st.bad_mac == 0 && st.stale == 0 && st.unsigned_refused == 0);
	node_auth_free(tx);
	node_auth_free(rx);
}

/* The cache keeps each nonce for at least two windows across its rotation:
 * the clock is moved with the skew hook on both sides instead of sleeping. */
UNIT_TEST(test_replay_rotation)
{
	node_auth *tx = auth_open(secret_a, 1000), *rx = auth_open(secret_a, 1000);
	node_err err;
	size_t l1, l2, l3;
	node_auth_set_skew(tx, 1700);
	node_auth_set_skew(rx, 1700);
	unsigned char *m1 = sign_msg(tx, "{\"n\":1}", &l1);
	UNIT_CHECK(verify(rx, m1, l1, 1, &err) == 0);
	/* 2.2 s after the cache started: it rotates; m1 is in the old generation. */
	node_auth_set_skew(tx, 2200);
	node_auth_set_skew(rx, 2200);
	unsigned char *m2 = sign_msg(tx, "{\"n\":2}", &l2);
	UNIT_CHECK(verify(rx, m2, l2, 1, &err) == 0);
	UNIT_CHECK(verify(rx, m1, l1, 1, &err) == NODE_EAUTH && strcmp(err.code, "replayed") == 0);
	UNIT_CHECK(verify(rx, m2, l2, 1, &err) == NODE_EAUTH && strcmp(err.code, "replayed") == 0);
	/* Later still: m1 has left the cache, but it is stale by then. */
	node_auth_set_skew(tx, 4300);
	node_auth_set_skew(rx, 4300);
	unsigned char *m3 = sign_msg(tx, "{\"n\":3}", &l3);
	UNIT_CHECK(verify(rx, m3, l3, 1, &err) == 0);
	UNIT_CHECK(verify(rx, m1, l1, 1, &err) == NODE_EAUTH && strcmp(err.code, "stale") == 0);
	UNIT_CHECK(verify(rx, m3, l3, 1, &err) == NODE_EAUTH && strcmp(err.code, "replayed") == 0);
	/* Just inside the window on each side. */
	node_auth_set_skew(rx, 4300 + 900);
	UNIT_CHECK(verify(rx, m3, l3, 0, &err) == 0);
	node_auth_set_skew(rx, 4300 - 900);
	UNIT_CHECK(verify(rx, m3, l3, 0, &err) == 0);
	free(m1);
	free(m2);
	free(m3);
	node_auth_free(tx);
	node_auth_free(rx);
}

/* Many threads checking the same messages: each is accepted exactly once. */
#define SHARED_MSGS 4000
#define THREADS 4

static unsigned char *shared_msg[SHARED_MSGS];
static size_t shared_len[SHARED_MSGS];
static node_auth *shared_rx;
static atomic_int shared_accepted, shared_replayed, shared_other;

static void *replay_thread(void *arg)
{
	int start = (int)(intptr_t)arg;
	for (int k = 0; k < SHARED_MSGS; k++) {
		int i = (k + start * 997) % SHARED_MSGS;
		const void *b;
		size_t blen;
		node_err err;
		int rc = node_auth_verify(shared_rx, shared_msg[i], shared_len[i], 1, &b, &blen, &err);
		if (rc == 0)
			atomic_fetch_add(&shared_accepted, 1);
		else if (rc == NODE_EAUTH && strcmp(err.code, "replayed") == 0)
			atomic_fetch_add(&shared_replayed, 1);
		else
			atomic_fetch_add(&shared_other, 1);
	}
	return NULL;
}

UNIT_TEST(test_replay_threads)
{
	node_auth *tx = auth_open(secret_a, 30000);
	shared_rx = auth_open(secret_a, 30000);
	for (int i = 0; i < SHARED_MSGS; i++)
		shared_msg[i] = sign_msg(tx, "{\"op\":\"fetch\"}", &shared_len[i]);
	pthread_t t[THREADS];
	for (int i = 0; i < THREADS; i++)
		pthread_create(&t[i], NULL, replay_thread, (void *)(intptr_t)i);
	for (int i = 0; i < THREADS; i++)
		pthread_join(t[i], NULL);
	UNIT_CHECK(atomic_load(&shared_accepted) == SHARED_MSGS);
	UNIT_CHECK(atomic_load(&shared_replayed) == SHARED_MSGS * (THREADS - 1));
	UNIT_CHECK(atomic_load(&shared_other) == 0);
	node_auth_stats st;
	node_auth_stats_get(shared_rx, &st);
	UNIT_CHECK(st.replayed == (uint64_t)SHARED_MSGS * (THREADS - 1));
	for (int i = 0; i < SHARED_MSGS; i++)
		free(shared_msg[i]);
	node_auth_free(tx);
	node_auth_free(shared_rx);
}

static int cmp_id(const void *x, const void *y)
{
	return memcmp(x, y, 37);
}

#define IDS 10000

UNIT_TEST(test_rand_id)
{
	node_err err = { 0 };
	char(*ids)[37] = malloc(sizeof *ids * IDS);
	int well_formed = 1;
	for (int i = 0; i < IDS; i++) {
		memset(ids[i], 'Z', 37);
		UNIT_CHECK(node_rand_id(ids[i], &err) == 0);
		const char *s = ids[i];
		int ok = strlen(s) == 36 && s[8] == '-' && s[13] == '-' && s[18] == '-' && s[23] == '-';
		for (int k = 0; k < 36 && ok; k++)
			if (k != 8 && k != 13 && k != 18 && k != 23)
				ok = (s[k] >= '0' && s[k] <= '9') || (s[k] >= 'a' && s[k] <= 'f');
		ok = ok && s[14] == '4' && strchr("89ab", s[19]) != NULL;
		if (!ok && well_formed)
			fprintf(stderr, "    bad id: %.37s\n", s);
		well_formed &= ok;
	}
	UNIT_CHECK(well_formed);
	qsort(ids, IDS, sizeof *ids, cmp_id);
	int unique = 1;
	for (int i = 1; i < IDS; i++)
		if (memcmp(ids[i - 1], ids[i], 37) == 0)
			unique = 0;
	UNIT_CHECK(unique);
	free(ids);

	/* Random bytes: large requests are split, zero is fine. */
	size_t n = 100000;
	unsigned char *buf = calloc(1, n);
	UNIT_CHECK(node_rand_bytes(buf, n, &err) == 0);
	size_t zeros = 0;
	for (size_t i = 0; i < n; i++)
		zeros += buf[i] == 0;
	UNIT_CHECK(zeros < n / 128); /* about n/256 expected */
	UNIT_CHECK(buf[n - 1] != 0 || buf[n - 2] != 0 || buf[n - 3] != 0);
	UNIT_CHECK(node_rand_bytes(buf, 0, &err) == 0);
	free(buf);
}

int main(void)
{
	UNIT_RUN(test_new_and_sign);
	UNIT_RUN(test_wrong_secret);
	UNIT_RUN(test_stats);
	UNIT_RUN(test_replay_many);
	UNIT_RUN(test_replay_rotation);
	UNIT_RUN(test_replay_threads);
	UNIT_RUN(test_rand_id);
	return unit_finish("auth");
}
