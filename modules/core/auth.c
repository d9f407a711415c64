/* Signing and checking messages. The replay cache keeps nonces for two
 * windows in two generations of open-addressing sets; a nonce older than
 * the window is refused as stale, so older generations can be dropped. */
#include "auth.h"

#include <mbedtls/md.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "rand.h"

typedef struct nonce_set {
	uint64_t *slot; /* 0 = empty */
	size_t cap;     /* power of two */
	size_t used;
} nonce_set;

struct node_auth {
	unsigned char *key;
	size_t keylen;
	int window_ms;
	int64_t skew_ms;
	pthread_mutex_t lock;
	nonce_set gen[2]; /* gen[0] current, gen[1] previous */
	int64_t rotated_ms;
	node_auth_stats stats;
};

#define NONCE_SET_MAX (1u << 24) /* 16M nonces per generation, 128 MiB worst case */

static int64_t auth_now_ms(const node_auth *a)
{
	return node_clock_wall_ms() + a->skew_ms;
}

int node_auth_new(node_auth **out, const void *secret, size_t len, int window_ms, node_err *err)
{
	if (len == 0)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "the cluster secret is empty");
	node_auth *a = calloc(1, sizeof *a);
	if (a == NULL || (a->key = malloc(len)) == NULL) {
		free(a);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	}
	memcpy(a->key, secret, len);
	a->keylen = len;
	a->window_ms = window_ms > 0 ? window_ms : 30000;
	pthread_mutex_init(&a->lock, NULL);
	a->rotated_ms = auth_now_ms(a);
	*out = a;
	return 0;
}

void node_auth_free(node_auth *a)
{
	if (a == NULL)
		return;
	memset(a->key, 0, a->keylen);
	free(a->key);
	free(a->gen[0].slot);
	free(a->gen[1].slot);
	pthread_mutex_destroy(&a->lock);
	free(a);
}

void node_auth_set_skew(node_auth *a, int64_t skew_ms)
{
	a->skew_ms = skew_ms;
}

static int auth_mac(const node_auth *a, const unsigned char *tsnonce, const void *body, size_t len, unsigned char mac[32])
{
	mbedtls_md_context_t md;
	mbedtls_md_init(&md);
	int rc = mbedtls_md_setup(&md, mbedtls_md_info_from_type(MBEDTLS_MD_SHA256), 1);
	if (rc == 0)
		rc = mbedtls_md_hmac_starts(&md, a->key, a->keylen);
	if (rc == 0)
		rc = mbedtls_md_hmac_update(&md, tsnonce, 8 + NODE_AUTH_NONCE);
	if (rc == 0)
		rc = mbedtls_md_hmac_update(&md, body, len);
	if (rc == 0)
		rc = mbedtls_md_hmac_finish(&md, mac);
	mbedtls_md_free(&md);
	return rc;
}

int node_auth_sign(node_auth *a, const void *body, size_t len, unsigned char *hdr, node_err *err)
{
	uint64_t ts = (uint64_t)auth_now_ms(a);
	hdr[0] = NODE_AUTH_MARK;
	for (int i = 0; i < 8; i++)
		hdr[1 + i] = (unsigned char)(ts >> (56 - 8 * i));
	int rc = node_rand_bytes(hdr + 9, NODE_AUTH_NONCE, err);
	if (rc != 0)
		return rc;
	if (auth_mac(a, hdr + 1, body, len, hdr + 9 + NODE_AUTH_NONCE) != 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "HMAC computation failed");
	return 0;
}

static int set_has(const nonce_set *s, uint64_t k)
{
	if (s->cap == 0)
		return 0;
	for (size_t i = k & (s->cap - 1);; i = (i + 1) & (s->cap - 1)) {
		if (s->slot[i] == 0)
			return 0;
		if (s->slot[i] == k)
			return 1;
	}
}

static int set_grow(nonce_set *s)
{
	size_t ncap = s->cap ? s->cap * 2 : 1024;
	if (ncap > NONCE_SET_MAX)
		return -1;
	uint64_t *ns = calloc(ncap, sizeof *ns);
	if (ns == NULL)
		return -1;
	for (size_t i = 0; i < s->cap; i++) {
		uint64_t k = s->slot[i];
		if (k == 0)
			continue;
		size_t j = k & (ncap - 1);
		while (ns[j] != 0)
			j = (j + 1) & (ncap - 1);
		ns[j] = k;
	}
	free(s->slot);
	s->slot = ns;
	s->cap = ncap;
	return 0;
}

static int set_add(nonce_set *s, uint64_t k)
{
	if ((s->used + 1) * 2 > s->cap && set_grow(s) != 0)
		return -1;
	size_t i = k & (s->cap - 1);
	while (s->slot[i] != 0)
		i = (i + 1) & (s->cap - 1);
	s->slot[i] = k;
	s->used++;
	return 0;
}

/* Returns 1 when the nonce was seen, 0 when it is new (and now recorded),
 * -1 when the cache is full (refused as busy rather than let through). */
static int auth_seen(node_auth *a, const unsigned char *nonce, int64_t now)
{
	uint64_t k;
	memcpy(&k, nonce, sizeof k);
	k |= 1; /* 0 marks an empty slot */
	if (now - a->rotated_ms >= 2LL * a->window_ms) {
		free(a->gen[1].slot);
		a->gen[1] = a->gen[0];
		memset(&a->gen[0], 0, sizeof a->gen[0]);
		a->rotated_ms = now;
	}
	if (set_has(&a->gen[0], k) || set_has(&a->gen[1], k))
		return 1;
	return set_add(&a->gen[0], k) == 0 ? 0 : -1;
}

static int auth_ct_equal(const unsigned char *x, const unsigned char *y, size_t n)
{
	unsigned char d = 0;
	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(x[i] ^ y[i]);
	return d == 0;
}

static void auth_count(node_auth *a, uint64_t *field)
{
	pthread_mutex_lock(&a->lock);
	(*field)++;
	pthread_mutex_unlock(&a->lock);
}

int node_auth_verify(node_auth *a, const void *msg, size_t len, int check_replay,
    const void **body, size_t *blen, node_err *err)
{
	const unsigned char *m = msg;
	if (len < NODE_AUTH_HEADER || m[0] != NODE_AUTH_MARK) {
		auth_count(a, &a->stats.unsigned_refused);
		return node_err_set(err, NODE_EAUTH, NODE_ERR_AUTH, "message is not signed; this cluster requires the shared secret");
	}
	unsigned char mac[32];
	if (auth_mac(a, m + 1, m + NODE_AUTH_HEADER, len - NODE_AUTH_HEADER, mac) != 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "HMAC computation failed");
	if (!auth_ct_equal(mac, m + 9 + NODE_AUTH_NONCE, 32)) {
		auth_count(a, &a->stats.bad_mac);
		return node_err_set(err, NODE_EAUTH, NODE_ERR_BAD_SIGNATURE, "message signature does not match (wrong secret or tampered message)");
	}
	uint64_t ts = 0;
	for (int i = 0; i < 8; i++)
		ts = ts << 8 | m[1 + i];
	if (ts > (uint64_t)INT64_MAX / 2)
		ts = (uint64_t)INT64_MAX / 2; /* absurd stamps are simply stale */
	int64_t now = auth_now_ms(a), skew = now - (int64_t)ts;
	if (skew > a->window_ms || skew < -a->window_ms) {
		auth_count(a, &a->stats.stale);
		return node_err_set(err, NODE_EAUTH, NODE_ERR_STALE,
		    "message timestamp is %lld ms away from this host's clock (window %d ms); check the clocks",
		    (long long)skew, a->window_ms);
	}
	if (check_replay) {
		pthread_mutex_lock(&a->lock);
		int seen = auth_seen(a, m + 9, now);
		if (seen == 1)
			a->stats.replayed++;
		pthread_mutex_unlock(&a->lock);
		if (seen == 1)
			return node_err_set(err, NODE_EAUTH, NODE_ERR_REPLAY, "message was already received (replayed nonce)");
		if (seen < 0)
			return node_err_set(err, NODE_ELIMIT, NODE_ERR_BUSY, "replay cache is full; try again shortly");
	}
	*body = m + NODE_AUTH_HEADER;
	*blen = len - NODE_AUTH_HEADER;
	return 0;
}

void node_auth_count_unsigned(node_auth *a)
{
	auth_count(a, &a->stats.unsigned_refused);
}

void node_auth_stats_get(node_auth *a, node_auth_stats *out)
{
	pthread_mutex_lock(&a->lock);
	*out = a->stats;
	pthread_mutex_unlock(&a->lock);
}

/* The bearer token of HTTP endpoints: derived from the secret, so every
 * node computes the same one and `node token` can print it, while the
 * secret itself never travels. Compared in constant time. */
int node_auth_http_token(node_auth *a, char *out, size_t n, node_err *err)
{
	static const char label[] = "node http token v1";
	unsigned char mac[32];
	const mbedtls_md_info_t *md = mbedtls_md_info_from_type(MBEDTLS_MD_SHA256);
	if (n < 65 || md == NULL || mbedtls_md_hmac(md, a->key, a->keylen, (const unsigned char *)label, sizeof label - 1, mac) != 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot compute the HTTP token");
	for (int i = 0; i < 32; i++)
		snprintf(out + 2 * i, 3, "%02x", mac[i]);
	return 0;
}

int node_auth_http_check(node_auth *a, const char *authorization)
{
	char want[65];
	node_err err = {0};
	if (authorization == NULL || strncmp(authorization, "Bearer ", 7) != 0 || strlen(authorization + 7) != 64 ||
	    node_auth_http_token(a, want, sizeof want, &err) != 0)
		return 0;
	unsigned char diff = 0;
	for (int i = 0; i < 64; i++)
		diff |= (unsigned char)(want[i] ^ authorization[7 + i]);
	return diff == 0;
}
