/* One CTR-DRBG per process behind a mutex: nonces and ids are needed on hot
 * paths, so the generator is seeded once, not per call. */
#include "rand.h"

#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <pthread.h>
#include <stdio.h>

static pthread_mutex_t rand_lock = PTHREAD_MUTEX_INITIALIZER;
static mbedtls_entropy_context rand_entropy;
static mbedtls_ctr_drbg_context rand_drbg;
static int rand_ready;

static int rand_seed(node_err *err)
{
	mbedtls_entropy_init(&rand_entropy);
	mbedtls_ctr_drbg_init(&rand_drbg);
	static const unsigned char pers[] = "node-rand";
	int rc = mbedtls_ctr_drbg_seed(&rand_drbg, mbedtls_entropy_func, &rand_entropy, pers, sizeof pers - 1);
	if (rc != 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot seed the random generator (mbedtls error -0x%04x)", -rc);
	mbedtls_ctr_drbg_set_prediction_resistance(&rand_drbg, MBEDTLS_CTR_DRBG_PR_OFF);
	rand_ready = 1;
	return 0;
}

int node_rand_bytes(void *buf, size_t n, node_err *err)
{
	int rc = 0;
	pthread_mutex_lock(&rand_lock);
	if (!rand_ready)
		rc = rand_seed(err);
	unsigned char *p = buf;
	while (rc == 0 && n > 0) {
		size_t chunk = n > MBEDTLS_CTR_DRBG_MAX_REQUEST ? MBEDTLS_CTR_DRBG_MAX_REQUEST : n;
		int mrc = mbedtls_ctr_drbg_random(&rand_drbg, p, chunk);
		if (mrc != 0)
			rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "random generator failed (mbedtls error -0x%04x)", -mrc);
		p += chunk;
		n -= chunk;
	}
	pthread_mutex_unlock(&rand_lock);
	return rc;
}

int node_rand_id(char out[37], node_err *err)
{
	unsigned char b[16];
	int rc = node_rand_bytes(b, sizeof b, err);
	if (rc != 0)
		return rc;
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
	    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}
