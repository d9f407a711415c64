/* A test helper for the MapReduce master and workers: one request signed
 * with the cluster file's secret (and its limits and TLS), the reply printed.
 * Usage: mr_call CLUSTER_FILE URL JSON|@FILE [TIMEOUT_MS]
 * Prints the reply as one line of JSON (also an error reply); exit 0 on an
 * ok reply, 1 on an error reply, 2 on bad usage, 3 when nothing came back. */
#include <stdio.h>
#include <stdlib.h>

#include "core/config.h"
#include "core/file.h"
#include "core/transport.h"

static int mr_call(const char *conf_path, const char *url, const char *text, int timeout_ms)
{
	node_conf conf = {0};
	node_wire w;
	node_wire_init(&w);
	node_err err = {0};
	cJSON *req = cJSON_Parse(text), *reply = NULL;
	node_client *c = NULL;
	int rc = req ? 0 : node_err_set(&err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "the request is not JSON");
	if (rc == 0)
		rc = node_conf_load(&conf, conf_path, NULL, &err);
	if (rc == 0)
		rc = node_conf_wire(&conf, &w, &err);
	if (rc == 0)
		rc = node_client_open(&c, url, "server", &w, &err);
	if (rc == 0)
		rc = node_client_call(c, req, timeout_ms, &reply, &err);
	node_client_close(c);
	if (reply) {
		char *s = cJSON_PrintUnformatted(reply);
		printf("%s\n", s ? s : "");
		cJSON_free(s);
	} else {
		fprintf(stderr, "mr_call: %s\n", err.msg);
	}
	int status = reply == NULL ? 3 : rc == 0 ? 0 : 1;
	cJSON_Delete(reply);
	cJSON_Delete(req);
	node_wire_fini(&w);
	node_conf_free(&conf);
	return status;
}

int main(int argc, char **argv)
{
	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: mr_call CLUSTER_FILE URL JSON|@FILE [TIMEOUT_MS]\n");
		return 2;
	}
	char *text = argv[3];
	node_err err = {0};
	if (argv[3][0] == '@' && node_file_read(argv[3] + 1, 64u << 20, &text, NULL, &err) != 0) {
		fprintf(stderr, "mr_call: %s\n", err.msg);
		return 2;
	}
	int status = mr_call(argv[1], argv[2], text, argc > 4 ? atoi(argv[4]) : 10000);
	if (text != argv[3])
		free(text);
	return status;
}
