/* libFuzzer target for the cluster file (modules/core/config.c): the input,
 * as NUL-terminated text, goes to node_conf_parse; what parses is looked up
 * the way the roles do, then everything is freed. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/config.h"
#include "core/err.h"
#include "core/msg.h"

static const char *const fz_paths[] = {
	"cluster", "secret", "auth_window_ms", "tls", "tls.cert", "tls.require_client_cert",
	"limits", "limits.max_message", "limits.max_depth", "limits.max_string", "limits.compress_above",
	"defaults", "defaults.log_level", "defaults.timeout_ms", "nodes", "nodes.local", "nodes.local.roles",
	"nodes.local.roles.broker.listen", "", ".", "..", "nodes..roles", "no.such.key",
};

static void fz_lookups(node_conf *c)
{
	for (size_t i = 0; i < sizeof fz_paths / sizeof fz_paths[0]; i++) {
		(void)node_conf_get(c, fz_paths[i]);
		(void)node_conf_str(c, fz_paths[i], "fallback");
		(void)node_conf_int(c, fz_paths[i], -1);
		(void)node_conf_bool(c, fz_paths[i], 0);
	}
	node_err err;
	const char *url = NULL;
	(void)node_conf_role_url(c, "broker", "listen", &url, &err);
	(void)node_conf_role_url(c, "worker", "listen", &url, &err);
	(void)node_conf_role_url(c, "nosuchrole", "listen", &url, &err);
	if (node_conf_select(c, NULL, &err) == 0) {
		(void)node_conf_mine(c, "roles.worker.concurrency");
		(void)node_conf_mine(c, "roles.broker.listen");
		(void)node_conf_mine(c, "host");
		(void)node_conf_mine(c, "");
	}
	/* Command-line overrides, as cmd.c applies them, naming each node.
	 * The names are copied first: a set may replace the tree under them. */
	const cJSON *nodes = node_conf_get(c, "nodes");
	char *names[3];
	int k = 0;
	for (const cJSON *n = nodes ? nodes->child : NULL; n != NULL && k < 3; n = n->next)
		if (n->string != NULL)
			names[k++] = strdup(n->string);
	for (int i = 0; i < k; i++) {
		char p1[512], p2[512], p3[512];
		if (names[i] == NULL)
			continue;
		(void)node_conf_select(c, names[i], &err);
		if ((size_t)snprintf(p1, sizeof p1, "nodes.%s.data_dir", names[i]) < sizeof p1 &&
		    (size_t)snprintf(p2, sizeof p2, "nodes.%s.roles.worker.concurrency", names[i]) < sizeof p2 &&
		    (size_t)snprintf(p3, sizeof p3, "nodes.%s.roles.broker", names[i]) < sizeof p3) {
			(void)node_conf_set(c, p1, cJSON_CreateString("/tmp/fuzz-state"), &err);
			(void)node_conf_set(c, p2, cJSON_CreateNumber(i + 1), &err);
			(void)node_conf_set(c, p2, cJSON_CreateString("four"), &err);
			(void)node_conf_set(c, p3, NULL, &err);
			(void)node_conf_mine(c, "roles.worker.queues");
		}
		free(names[i]);
	}
	(void)node_conf_set(c, "defaults.data_dir", cJSON_CreateString("/tmp/fuzz-state"), &err);
	(void)node_conf_set(c, "limits.max_depth", cJSON_CreateNumber(3), &err);
	(void)node_conf_set(c, "no.such", cJSON_CreateTrue(), &err);
	(void)node_conf_set(c, "limits.", cJSON_CreateTrue(), &err);
	(void)node_conf_role_url(c, "broker", "listen", &url, &err);

	/* The wire reads secret_file when one is named: not from fuzz input. */
	if (node_conf_get(c, "secret_file") == NULL) {
		node_wire w;
		node_wire_init(&w);
		(void)node_conf_wire(c, &w, &err);
		node_wire_fini(&w);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';

	node_conf c;
	cJSON *errors = NULL;
	node_err err;
	memset(&err, 0, sizeof err);
	int rc = node_conf_parse(&c, text, "fuzz.json", &errors, &err);
	if (rc == 0) {
		if (c.root == NULL || errors != NULL)
			abort();
		fz_lookups(&c);
	} else {
		if (c.root != NULL || err.rc != rc || err.msg[0] == '\0')
			abort();
		if (rc == NODE_EINVAL && (!cJSON_IsArray(errors) || cJSON_GetArraySize(errors) < 1))
			abort(); /* a refused file says why */
	}
	cJSON_Delete(errors);
	node_conf_free(&c);
	free(text);
	return 0;
}
