/* A test helper: one call through the node client library.
 * Usage: call URL JSON|@FILE TIMEOUT_MS [SECRET]; prints the reply JSON or
 * the error, exit 0 on an ok reply. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/file.h"
#include "core/transport.h"

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: call URL JSON|@FILE TIMEOUT_MS [SECRET]\n");
		return 2;
	}
	node_wire w;
	node_wire_init(&w);
	w.limits.max_message = 64u << 20; /* let the server, not us, enforce its limit */
	w.limits.max_string = 64u << 20;
	node_err err = {0};
	char *text = argv[2];
	if (argv[2][0] == '@' && node_file_read(argv[2] + 1, 64u << 20, &text, NULL, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	if (argc > 4 && node_auth_new(&w.auth, argv[4], strlen(argv[4]), 30000, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 1;
	}
	cJSON *req = cJSON_Parse(text);
	if (req == NULL) {
		fprintf(stderr, "bad JSON\n");
		return 2;
	}
	node_client *c;
	cJSON *reply = NULL;
	int rc = node_client_open(&c, argv[1], "server", &w, &err);
	if (rc == 0) {
		rc = node_client_call(c, req, atoi(argv[3]), &reply, &err);
		node_client_close(c);
	}
	if (reply) {
		char *s = cJSON_PrintUnformatted(reply);
		printf("%s\n", s);
		cJSON_free(s);
	}
	if (rc != 0)
		fprintf(stderr, "error %s: %s\n", err.code, err.msg);
	cJSON_Delete(reply);
	cJSON_Delete(req);
	if (text != argv[2])
		free(text);
	node_wire_fini(&w);
	return rc == 0 ? 0 : 1;
}
