/* From the cluster file to a wire: message limits, TLS files and the
 * shared secret (inline or from secret_file) that signs every message. */
#include "config_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "file.h"

#define SECRET_FILE_MAX 65536

/* Files named in the cluster file are relative to the file itself, so a
 * service started from any directory finds them. */
static char *conf_path(const node_conf *c, const char *p)
{
	const char *slash = c->source && c->source[0] != '(' ? strrchr(c->source, '/') : NULL;
	if (p[0] == '/' || slash == NULL)
		return strdup(p);
	char *out = NULL;
	if (asprintf(&out, "%.*s/%s", (int)(slash - c->source), c->source, p) < 0)
		return NULL;
	return out;
}

static void wire_limits(const node_conf *c, node_limits *l)
{
	l->max_message = (size_t)node_conf_int(c, "limits.max_message", (long long)l->max_message);
	l->max_depth = (int)node_conf_int(c, "limits.max_depth", l->max_depth);
	l->max_string = (size_t)node_conf_int(c, "limits.max_string", (long long)l->max_string);
	l->compress_above = (size_t)node_conf_int(c, "limits.compress_above", (long long)l->compress_above);
}

static int wire_tls_file(const node_conf *c, const char *key, char **dst, node_err *err)
{
	const char *p = node_conf_str(c, key, NULL);
	if (p == NULL)
		return 0;
	char *full = conf_path(c, p);
	if (full == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	free(*dst);
	*dst = full;
	return 0;
}

static int wire_tls(const node_conf *c, node_wire *w, node_err *err)
{
	int rc = wire_tls_file(c, "tls.cert", &w->tls_cert, err);
	if (rc == 0)
		rc = wire_tls_file(c, "tls.key", &w->tls_key, err);
	if (rc == 0)
		rc = wire_tls_file(c, "tls.ca", &w->tls_ca, err);
	const char *name = node_conf_str(c, "tls.server_name", NULL);
	if (rc == 0 && name != NULL) {
		char *copy = strdup(name);
		if (copy == NULL)
			return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
		free(w->tls_server_name);
		w->tls_server_name = copy;
	}
	w->tls_require_client_cert = node_conf_bool(c, "tls.require_client_cert", 0);
	return rc;
}

/* The secret file, trailing newline stripped; errors name the file. */
static int read_secret(const node_conf *c, const char *file, char **out, size_t *len, node_err *err)
{
	char *full = conf_path(c, file);
	if (full == NULL)
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory");
	int rc = node_file_read(full, SECRET_FILE_MAX, out, len, err);
	if (rc != 0) {
		node_err_prefix(err, "secret_file: ");
		free(full);
		return rc;
	}
	while (*len > 0 && ((*out)[*len - 1] == '\n' || (*out)[*len - 1] == '\r'))
		(*out)[--*len] = '\0';
	if (*len < NODE_CONF_SECRET_MIN) {
		rc = node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_CONFIG, "secret_file: %s holds %zu characters; a secret needs at least %d",
		    full, *len, NODE_CONF_SECRET_MIN);
		explicit_bzero(*out, *len);
		free(*out);
		*out = NULL;
	}
	free(full);
	return rc;
}

static int wire_auth(const node_conf *c, node_wire *w, node_err *err)
{
	const char *secret = node_conf_str(c, "secret", NULL);
	const char *file = node_conf_str(c, "secret_file", NULL);
	if (secret == NULL && file == NULL)
		return 0;
	char *bytes = NULL;
	size_t len = secret ? strlen(secret) : 0;
	if (secret == NULL) {
		int rc = read_secret(c, file, &bytes, &len, err);
		if (rc != 0)
			return rc;
	}
	node_auth *a = NULL;
	int window = (int)node_conf_int(c, "auth_window_ms", 30000);
	int rc = node_auth_new(&a, secret ? secret : bytes, len, window, err);
	if (bytes != NULL) {
		explicit_bzero(bytes, len);
		free(bytes);
	}
	if (rc != 0)
		return rc;
	node_auth_free(w->auth);
	w->auth = a;
	return 0;
}

int node_conf_wire(const node_conf *c, node_wire *w, node_err *err)
{
	wire_limits(c, &w->limits);
	int rc = wire_tls(c, w, err);
	return rc != 0 ? rc : wire_auth(c, w, err);
}
