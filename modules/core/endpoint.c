/* Listening and dialing, including TLS for tls+tcp:// URLs: one place that
 * turns the cluster file's certificate paths into nng TLS configuration. */
#include <nng/nng.h>
#include <nng/supplemental/tls/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "file.h"
#include "transport.h"

static int is_tls(const char *url)
{
	return strncmp(url, "tls+tcp://", 10) == 0 || strncmp(url, "tls+tcp4://", 11) == 0 || strncmp(url, "tls+tcp6://", 11) == 0;
}

static int tls_own_cert(nng_tls_config *cfg, const node_wire *w, node_err *err)
{
	char *cert = NULL, *key = NULL;
	int rc = node_file_read(w->tls_cert, 1 << 20, &cert, NULL, err);
	if (rc == 0)
		rc = node_file_read(w->tls_key, 1 << 20, &key, NULL, err);
	if (rc == 0) {
		int nrc = nng_tls_config_own_cert(cfg, cert, key, NULL);
		if (nrc != 0)
			rc = node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "TLS certificate %s or key %s is not usable: %s",
			    w->tls_cert, w->tls_key, nng_strerror(nrc));
	}
	free(cert);
	free(key);
	return rc;
}

static void url_host(const char *url, char *host, size_t n)
{
	const char *p = strstr(url, "://");
	p = p ? p + 3 : url;
	const char *end = p[0] == '[' ? strchr(p, ']') : strrchr(p, ':');
	size_t k = end ? (size_t)(end - p) : strlen(p);
	if (p[0] == '[' && k > 0)
		p++, k--;
	if (k >= n)
		k = n - 1;
	memcpy(host, p, k);
	host[k] = '\0';
}

/* Build the TLS configuration for one endpoint. */
static int tls_config(nng_tls_config **out, const char *url, int server, const node_wire *w, node_err *err)
{
	nng_tls_config *cfg;
	int nrc = nng_tls_config_alloc(&cfg, server ? NNG_TLS_MODE_SERVER : NNG_TLS_MODE_CLIENT);
	if (nrc != 0)
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "TLS is not available: %s", nng_strerror(nrc));
	int rc = 0;
	if (server && (w->tls_cert == NULL || w->tls_key == NULL))
		rc = node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s needs tls.cert and tls.key in the cluster file", url);
	if (rc == 0 && w->tls_cert && w->tls_key)
		rc = tls_own_cert(cfg, w, err);
	if (rc == 0 && w->tls_ca) {
		nrc = nng_tls_config_ca_file(cfg, w->tls_ca);
		if (nrc != 0)
			rc = node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "TLS CA file %s is not usable: %s", w->tls_ca, nng_strerror(nrc));
	}
	if (rc == 0 && !server && w->tls_ca == NULL)
		rc = node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s needs tls.ca in the cluster file to check the server", url);
	if (rc == 0) {
		nng_tls_auth_mode mode = NNG_TLS_AUTH_MODE_REQUIRED;
		if (server)
			mode = w->tls_require_client_cert ? NNG_TLS_AUTH_MODE_REQUIRED : NNG_TLS_AUTH_MODE_NONE;
		nng_tls_config_auth_mode(cfg, mode);
		if (!server) {
			char host[256];
			if (w->tls_server_name)
				snprintf(host, sizeof host, "%s", w->tls_server_name);
			else
				url_host(url, host, sizeof host);
			nng_tls_config_server_name(cfg, host);
		}
	}
	if (rc != 0) {
		nng_tls_config_free(cfg);
		return rc;
	}
	*out = cfg;
	return 0;
}

static void bound_url_make(nng_listener l, const char *url, char *out, size_t n)
{
	snprintf(out, n, "%s", url);
	const char *colon = strrchr(url, ':');
	int port = 0;
	if (colon == NULL || strcmp(colon, ":0") != 0 || strncmp(url, "ipc:", 4) == 0 || strncmp(url, "inproc:", 7) == 0)
		return;
	if (nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, &port) == 0)
		snprintf(out, n, "%.*s:%d", (int)(colon - url), url, port);
}

int node_listen(nng_socket sock, const char *url, node_wire *w, char *bound_url, size_t blen, node_err *err)
{
	nng_listener l;
	return node_listen_keep(sock, url, w, bound_url, blen, &l, err);
}

int node_listen_keep(nng_socket sock, const char *url, node_wire *w, char *bound_url, size_t blen, nng_listener *out,
    node_err *err)
{
	nng_listener l;
	int nrc = nng_listener_create(&l, sock, url);
	if (nrc != 0)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "cannot listen on %s: %s", url, nng_strerror(nrc));
	nng_listener_set_size(l, NNG_OPT_RECVMAXSZ, node_wire_recv_max(w));
	if (is_tls(url)) {
		nng_tls_config *cfg;
		int rc = tls_config(&cfg, url, 1, w, err);
		if (rc != 0) {
			nng_listener_close(l);
			return rc;
		}
		nrc = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, cfg);
		nng_tls_config_free(cfg);
		if (nrc != 0) {
			nng_listener_close(l);
			return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot set TLS on %s: %s", url, nng_strerror(nrc));
		}
	}
	nrc = nng_listener_start(l, 0);
	if (nrc != 0) {
		nng_listener_close(l);
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot listen on %s: %s", url,
		    nrc == NNG_EADDRINUSE ? "address in use (is another node running there?)" : nng_strerror(nrc));
	}
	if (bound_url)
		bound_url_make(l, url, bound_url, blen);
	*out = l;
	return 0;
}

int node_dial_keep(nng_socket sock, const char *url, node_wire *w, nng_dialer *out, node_err *err)
{
	nng_dialer d;
	int nrc = nng_dialer_create(&d, sock, url);
	if (nrc != 0)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "cannot dial %s: %s", url, nng_strerror(nrc));
	nng_dialer_set_size(d, NNG_OPT_RECVMAXSZ, node_wire_recv_max(w));
	nng_dialer_set_ms(d, NNG_OPT_RECONNMINT, 20);
	nng_dialer_set_ms(d, NNG_OPT_RECONNMAXT, 1000);
	if (is_tls(url)) {
		nng_tls_config *cfg;
		int rc = tls_config(&cfg, url, 0, w, err);
		if (rc != 0) {
			nng_dialer_close(d);
			return rc;
		}
		nrc = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, cfg);
		nng_tls_config_free(cfg);
		if (nrc != 0) {
			nng_dialer_close(d);
			return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot set TLS on %s: %s", url, nng_strerror(nrc));
		}
	}
	nrc = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
	if (nrc != 0) {
		nng_dialer_close(d);
		return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot dial %s: %s", url, nng_strerror(nrc));
	}
	if (out)
		*out = d;
	return 0;
}

int node_dial(nng_socket sock, const char *url, node_wire *w, node_err *err)
{
	return node_dial_keep(sock, url, w, NULL, err);
}
