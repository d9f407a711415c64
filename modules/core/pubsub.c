/* Publish/subscribe for events. Subscribers filter on the "topic" field
 * after decoding, because nng's prefix filter would see the signed header,
 * not the topic. */
#include <nng/nng.h>
#include <nng/protocol/pubsub0/pub.h>
#include <nng/protocol/pubsub0/sub.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "transport.h"

struct node_pub {
	nng_socket sock;
	node_wire *wire;
	char url[512];
};

struct node_sub {
	nng_socket sock;
	node_wire *wire;
	char *prefix;
};

int node_pub_open(node_pub **out, const char *url, node_wire *w, node_err *err)
{
	node_pub *p = calloc(1, sizeof *p);
	if (p == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	p->wire = w;
	int rv = nng_pub0_open(&p->sock);
	if (rv != 0) {
		free(p);
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot open a publisher socket: %s", nng_strerror(rv));
	}
	int rc = node_listen(p->sock, url, w, p->url, sizeof p->url, err);
	if (rc != 0) {
		nng_close(p->sock);
		free(p);
		return rc;
	}
	*out = p;
	return 0;
}

const char *node_pub_url(const node_pub *p)
{
	return p->url;
}

int node_pub_send(node_pub *p, const cJSON *body, node_err *err)
{
	if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(body, "topic")))
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "a published message needs a \"topic\" string");
	nng_msg *m;
	int rc = node_msg_encode(p->wire, body, &m, err);
	if (rc != 0)
		return rc;
	int rv = nng_sendmsg(p->sock, m, NNG_FLAG_NONBLOCK);
	if (rv != 0) {
		nng_msg_free(m);
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot publish on %s: %s", p->url, nng_strerror(rv));
	}
	return 0;
}

void node_pub_close(node_pub *p)
{
	if (p == NULL)
		return;
	nng_close(p->sock);
	free(p);
}

int node_sub_open(node_sub **out, const char *url, const char *topic_prefix, node_wire *w, node_err *err)
{
	node_sub *s = calloc(1, sizeof *s);
	if (s == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	s->wire = w;
	s->prefix = strdup(topic_prefix ? topic_prefix : "");
	int rv = nng_sub0_open(&s->sock);
	if (rv == 0)
		rv = nng_socket_set(s->sock, NNG_OPT_SUB_SUBSCRIBE, "", 0);
	if (rv != 0 || s->prefix == NULL) {
		if (rv == 0)
			nng_close(s->sock);
		free(s->prefix);
		free(s);
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot open a subscriber socket: %s", nng_strerror(rv));
	}
	nng_socket_set_size(s->sock, NNG_OPT_RECVMAXSZ, node_wire_recv_max(w));
	int rc = node_dial(s->sock, url, w, err);
	if (rc != 0) {
		node_sub_close(s);
		return rc;
	}
	*out = s;
	return 0;
}

static int sub_matches(const node_sub *s, const cJSON *body)
{
	const cJSON *t = cJSON_GetObjectItemCaseSensitive(body, "topic");
	return cJSON_IsString(t) && strncmp(t->valuestring, s->prefix, strlen(s->prefix)) == 0;
}

int node_sub_recv(node_sub *s, int timeout_ms, cJSON **body, node_err *err)
{
	int64_t deadline = node_clock_mono_ms() + timeout_ms;
	for (;;) {
		int64_t left = deadline - node_clock_mono_ms();
		if (left <= 0)
			return node_err_set(err, NODE_ETIMEDOUT, NODE_ERR_TIMEOUT, "no message in %d ms", timeout_ms);
		nng_socket_set_ms(s->sock, NNG_OPT_RECVTIMEO, (nng_duration)left);
		nng_msg *m;
		int rv = nng_recvmsg(s->sock, &m, 0);
		if (rv == NNG_ETIMEDOUT)
			return node_err_set(err, NODE_ETIMEDOUT, NODE_ERR_TIMEOUT, "no message in %d ms", timeout_ms);
		if (rv != 0)
			return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot receive: %s", nng_strerror(rv));
		cJSON *b = NULL;
		node_err derr = {0};
		int rc = node_msg_decode(s->wire, nng_msg_body(m), nng_msg_len(m), 0, &b, &derr);
		nng_msg_free(m);
		if (rc != 0)
			continue; /* refused and counted; a bad publisher must not stop us */
		if (sub_matches(s, b)) {
			*body = b;
			return 0;
		}
		cJSON_Delete(b);
	}
}

void node_sub_close(node_sub *s)
{
	if (s == NULL)
		return;
	nng_close(s->sock);
	free(s->prefix);
	free(s);
}
