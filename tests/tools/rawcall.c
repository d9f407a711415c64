/* A test helper: send bytes as they are over REQ/REP and print the reply's
 * bytes, so tests can send what no client would (malformed JSON, batches,
 * JSON-RPC requests). Usage: rawcall URL TEXT|@FILE TIMEOUT_MS [COUNT];
 * COUNT > 1 repeats the call and prints calls/s instead (a bare pair). */
#include <nng/nng.h>
#include <nng/protocol/reqrep0/req.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/file.h"

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: rawcall URL TEXT|@FILE TIMEOUT_MS [COUNT]\n");
		return 2;
	}
	char *text = argv[2];
	size_t len = strlen(text);
	node_err err = {0};
	if (argv[2][0] == '@' && node_file_read(argv[2] + 1, 256u << 20, &text, &len, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		return 2;
	}
	long count = argc > 4 ? atol(argv[4]) : 1;
	nng_socket s;
	int rv = nng_req0_open(&s);
	if (rv == 0) {
		nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, atoi(argv[3]));
		nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, atoi(argv[3]));
		nng_socket_set_size(s, NNG_OPT_RECVMAXSZ, 0);
		rv = nng_dial(s, argv[1], NULL, 0);
	}
	double t0 = now_s();
	for (long i = 0; rv == 0 && i < count; i++) {
		char *buf = NULL;
		size_t blen = 0;
		if ((rv = nng_send(s, text, len, 0)) == 0 && (rv = nng_recv(s, &buf, &blen, NNG_FLAG_ALLOC)) == 0) {
			if (count == 1)
				printf("%.*s\n", (int)blen, buf);
			nng_free(buf, blen);
		}
	}
	if (rv != 0) {
		fprintf(stderr, "rawcall %s: %s\n", argv[1], nng_strerror(rv));
		if (text != argv[2])
			free(text);
		return 1;
	}
	if (count > 1)
		printf("%.0f calls/s\n", count / (now_s() - t0));
	nng_close(s);
	if (text != argv[2])
		free(text);
	return 0;
}
