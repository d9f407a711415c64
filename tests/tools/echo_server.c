/* A test helper: serves the transport layer's built-in ops plus "echo"
 * (reply with the request) and "park" (answer after "ms" milliseconds from
 * another thread), so tests exercise modules/core before any role exists.
 * Usage: echo_server URL [SECRET] [TLS_CERT TLS_KEY]; prints "ready URL". */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/transport.h"

typedef struct parked {
	node_call *call;
	int ms;
} parked;

static void *park_thread(void *arg)
{
	parked *p = arg;
	struct timespec ts = {p->ms / 1000, (long)(p->ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
	cJSON *r = node_reply_ok();
	cJSON_AddNumberToObject(r, "slept_ms", p->ms);
	node_call_reply(p->call, r);
	free(p);
	return NULL;
}

static void op_echo(node_call *c, const cJSON *req, void *arg)
{
	cJSON *r = cJSON_Duplicate(req, 1);
	cJSON_DeleteItemFromObject(r, "op");
	cJSON_AddBoolToObject(r, "ok", 1);
	node_call_reply(c, r);
}

static void op_park(node_call *c, const cJSON *req, void *arg)
{
	const cJSON *ms = cJSON_GetObjectItemCaseSensitive(req, "ms");
	parked *p = malloc(sizeof *p);
	pthread_t t;
	p->call = c;
	p->ms = cJSON_IsNumber(ms) ? ms->valueint : 100;
	if (pthread_create(&t, NULL, park_thread, p) != 0) {
		free(p);
		node_call_error(c, NODE_ERR_INTERNAL, "cannot start a thread");
		return;
	}
	pthread_detach(t);
}

static const node_op echo_ops[] = {
	{"echo", op_echo},
	{"park", op_park},
	{NULL, NULL},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: echo_server URL [SECRET] [CERT KEY]\n");
		return 2;
	}
	node_wire w;
	node_wire_init(&w);
	node_err err = {0};
	if (argc > 2 && argv[2][0] && node_auth_new(&w.auth, argv[2], strlen(argv[2]), 30000, &err) != 0) {
		fprintf(stderr, "echo_server: %s\n", err.msg);
		return 1;
	}
	if (argc > 4) {
		w.tls_cert = strdup(argv[3]);
		w.tls_key = strdup(argv[4]);
	}
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	node_server_cfg cfg = {.url = argv[1], .role = "echo", .node = "test", .ops = echo_ops, .wire = &w};
	node_server *s;
	if (node_server_start(&s, &cfg, &err) != 0) {
		fprintf(stderr, "echo_server: %s\n", err.msg);
		return 4;
	}
	printf("ready %s\n", node_server_url(s));
	fflush(stdout);
	int sig;
	sigwait(&set, &sig);
	node_server_stop(s);
	node_wire_fini(&w);
	return 0;
}
