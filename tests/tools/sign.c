/* A test helper: write JSON as one signed wire message to stdout, so tests
 * can replay the exact same bytes. Usage: sign SECRET JSON */
#include <stdio.h>
#include <string.h>

#include "core/msg.h"

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: sign SECRET JSON\n");
		return 2;
	}
	node_wire w;
	node_wire_init(&w);
	node_err err = {0};
	cJSON *j = cJSON_Parse(argv[2]);
	nng_msg *m = NULL;
	if (j == NULL || node_auth_new(&w.auth, argv[1], strlen(argv[1]), 30000, &err) != 0 ||
	    node_msg_encode(&w, j, &m, &err) != 0) {
		fprintf(stderr, "sign: %s\n", j ? err.msg : "bad JSON");
		return 1;
	}
	fwrite(nng_msg_body(m), 1, nng_msg_len(m), stdout);
	nng_msg_free(m);
	cJSON_Delete(j);
	node_wire_fini(&w);
	return 0;
}
