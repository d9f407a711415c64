/* The transport layer in one process over real loopback sockets: servers
 * with parked calls, async clients with many calls in flight, disconnect
 * notices, publish/subscribe with topic filters, surveys. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

#include "core/transport.h"
#include "unit.h"

static node_wire wire;
static node_call *parked_call;
static pthread_mutex_t parked_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int disconnects;

static void op_hold(node_call *c, const cJSON *req, void *arg)
{
	pthread_mutex_lock(&parked_lock);
	parked_call = c; /* answered later by the test thread */
	pthread_mutex_unlock(&parked_lock);
}

static void op_add(node_call *c, const cJSON *req, void *arg)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(req, "a");
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(req, "b");
	if (!cJSON_IsNumber(a) || !cJSON_IsNumber(b)) {
		node_call_error(c, NODE_ERR_BAD_ARGS, "add needs numbers a and b");
		return;
	}
	cJSON *r = node_reply_ok();
	cJSON_AddNumberToObject(r, "sum", a->valuedouble + b->valuedouble);
	node_call_reply(c, r);
}

typedef struct async_state {
	atomic_int done, ok;
} async_state;

static void on_reply(int rc, cJSON *reply, const node_err *err, void *arg)
{
	async_state *st = arg;
	if (rc == 0 && cJSON_GetObjectItem(reply, "sum") != NULL)
		atomic_fetch_add(&st->ok, 1);
	cJSON_Delete(reply);
	atomic_fetch_add(&st->done, 1);
}

static void on_gone(uint32_t pipe, void *arg)
{
	atomic_fetch_add(&disconnects, 1);
}

static const node_op ops[] = {{"hold", op_hold}, {"add", op_add}, {NULL, NULL}};

static node_server *start_server(void)
{
	node_server_cfg cfg = {.url = "tcp://127.0.0.1:0", .role = "test", .node = "n1", .ops = ops,
	    .wire = &wire, .receivers = 4, .on_disconnect = on_gone};
	node_server *s = NULL;
	node_err err = {0};
	UNIT_CHECK(node_server_start(&s, &cfg, &err) == 0);
	return s;
}

static cJSON *req_of(const char *text)
{
	return cJSON_Parse(text);
}

UNIT_TEST(test_call_and_errors)
{
	node_server *s = start_server();
	node_client *c;
	node_err err = {0};
	UNIT_CHECK(node_client_open(&c, node_server_url(s), "tester", &wire, &err) == 0);
	cJSON *req = req_of("{\"op\":\"add\",\"a\":2,\"b\":3}"), *reply = NULL;
	UNIT_CHECK(node_client_call(c, req, 5000, &reply, &err) == 0);
	UNIT_CHECK(cJSON_GetObjectItem(reply, "sum")->valuedouble == 5);
	cJSON_Delete(reply);
	cJSON_Delete(req);
	req = req_of("{\"op\":\"add\",\"a\":\"x\"}");
	UNIT_CHECK(node_client_call(c, req, 5000, &reply, &err) == NODE_EREMOTE);
	UNIT_CHECK(strcmp(err.code, NODE_ERR_BAD_ARGS) == 0);
	UNIT_CHECK(strstr(err.msg, "add needs numbers") != NULL);
	cJSON_Delete(reply);
	cJSON_Delete(req);
	req = req_of("{\"op\":\"nope\"}");
	UNIT_CHECK(node_client_call(c, req, 5000, &reply, &err) == NODE_EREMOTE);
	UNIT_CHECK(strcmp(err.code, NODE_ERR_UNKNOWN_OP) == 0);
	cJSON_Delete(reply);
	cJSON_Delete(req);
	req = req_of("{\"op\":\"ping\"}");
	UNIT_CHECK(node_client_call(c, req, 5000, &reply, &err) == 0);
	UNIT_CHECK(strcmp(cJSON_GetObjectItem(reply, "role")->valuestring, "test") == 0);
	cJSON_Delete(reply);
	cJSON_Delete(req);
	node_client_close(c);
	node_server_stop(s);
}

/* More parked calls than receivers: the server must keep serving. */
UNIT_TEST(test_parked_does_not_block)
{
	node_server *s = start_server();
	node_client *c;
	node_err err = {0};
	UNIT_CHECK(node_client_open(&c, node_server_url(s), "tester", &wire, &err) == 0);
	cJSON *hold = req_of("{\"op\":\"hold\"}");
	cJSON *add = req_of("{\"op\":\"add\",\"a\":1,\"b\":1}");
	async_state held = {0};
	for (int i = 0; i < 10; i++)
		UNIT_CHECK(node_client_call_async(c, hold, 10000, on_reply, &held, &err) == 0);
	cJSON_Delete(hold);
	for (int i = 0; i < 500; i++) {
		node_server_stats ps;
		node_server_stats_get(s, &ps);
		if (ps.parked == 10)
			break;
		usleep(2000);
	}
	/* 10 holds on 4 receivers; every hold parks. A plain call still answers. */
	cJSON *reply = NULL;
	for (int i = 0; i < 20; i++) {
		UNIT_CHECK(node_client_call(c, add, 2000, &reply, &err) == 0);
		cJSON_Delete(reply);
		reply = NULL;
	}
	node_server_stats st;
	node_server_stats_get(s, &st);
	UNIT_CHECK(st.parked == 10);
	cJSON_Delete(add);
	node_client_close(c);
	UNIT_CHECK(atomic_load(&held.done) == 10); /* close failed them and waited */
	node_server_stop(s);
}

UNIT_TEST(test_async_many_in_flight)
{
	node_server *s = start_server();
	node_client *c;
	node_err err = {0};
	UNIT_CHECK(node_client_open(&c, node_server_url(s), "tester", &wire, &err) == 0);
	async_state st = {0};
	cJSON *add = req_of("{\"op\":\"add\",\"a\":1,\"b\":2}");
	for (int i = 0; i < 200; i++)
		UNIT_CHECK(node_client_call_async(c, add, 5000, on_reply, &st, &err) == 0);
	for (int i = 0; i < 500 && atomic_load(&st.done) < 200; i++)
		usleep(10000);
	UNIT_CHECK(atomic_load(&st.ok) == 200);
	cJSON_Delete(add);
	node_client_close(c);
	node_server_stop(s);
}

UNIT_TEST(test_parked_reply_and_disconnect)
{
	node_server *s = start_server();
	node_client *c;
	node_err err = {0};
	UNIT_CHECK(node_client_open(&c, node_server_url(s), "tester", &wire, &err) == 0);
	async_state st = {0};
	parked_call = NULL;
	cJSON *hold = req_of("{\"op\":\"hold\"}");
	UNIT_CHECK(node_client_call_async(c, hold, 5000, on_reply, &st, &err) == 0);
	node_call *pc = NULL;
	for (int i = 0; i < 500 && pc == NULL; i++) {
		pthread_mutex_lock(&parked_lock);
		pc = parked_call;
		pthread_mutex_unlock(&parked_lock);
		usleep(2000);
	}
	UNIT_CHECK(pc != NULL);
	cJSON *r = node_reply_ok();
	cJSON_AddNumberToObject(r, "sum", 42);
	if (pc)
		node_call_reply(pc, r);
	for (int i = 0; i < 500 && atomic_load(&st.done) < 1; i++)
		usleep(2000);
	UNIT_CHECK(atomic_load(&st.ok) == 1);
	int before = atomic_load(&disconnects);
	node_client_close(c);
	for (int i = 0; i < 500 && atomic_load(&disconnects) == before; i++)
		usleep(2000);
	UNIT_CHECK(atomic_load(&disconnects) > before);
	cJSON_Delete(hold);
	node_server_stop(s);
}

UNIT_TEST(test_timeout_message)
{
	node_server *s = start_server();
	node_client *c;
	node_err err = {0};
	UNIT_CHECK(node_client_open(&c, node_server_url(s), "broker", &wire, &err) == 0);
	cJSON *hold = req_of("{\"op\":\"hold\"}"), *reply = NULL;
	UNIT_CHECK(node_client_call(c, hold, 200, &reply, &err) == NODE_ETIMEDOUT);
	UNIT_CHECK(strstr(err.msg, "broker tcp://127.0.0.1:") != NULL);
	UNIT_CHECK(strstr(err.msg, "did not answer in 200 ms") != NULL);
	cJSON_Delete(hold);
	node_client_close(c);
	pthread_mutex_lock(&parked_lock);
	node_call *pc = parked_call;
	parked_call = NULL;
	pthread_mutex_unlock(&parked_lock);
	if (pc) /* the client is gone; answering must still be safe */
		node_call_reply(pc, node_reply_ok());
	node_server_stop(s);
}

UNIT_TEST(test_pubsub)
{
	node_pub *p;
	node_sub *all, *only;
	node_err err = {0};
	UNIT_CHECK(node_pub_open(&p, "tcp://127.0.0.1:0", &wire, &err) == 0);
	UNIT_CHECK(node_sub_open(&all, node_pub_url(p), "", &wire, &err) == 0);
	UNIT_CHECK(node_sub_open(&only, node_pub_url(p), "task.", &wire, &err) == 0);
	cJSON *ev = req_of("{\"topic\":\"worker.online\",\"n\":1}");
	cJSON *ev2 = req_of("{\"topic\":\"task.succeeded\",\"n\":2}");
	cJSON *got = NULL;
	/* Subscriptions connect asynchronously: publish until the first arrives. */
	int seen = 0;
	for (int i = 0; i < 200 && !seen; i++) {
		node_pub_send(p, ev, &err);
		if (node_sub_recv(all, 20, &got, &err) == 0) {
			seen = 1;
			cJSON_Delete(got);
		}
	}
	UNIT_CHECK(seen);
	/* The filtered subscriber may connect later: publish both kinds until the
	 * task event arrives; the worker event must never reach it. */
	int only_seen = 0, wrong = 0;
	for (int i = 0; i < 200 && !only_seen; i++) {
		UNIT_CHECK(node_pub_send(p, ev, &err) == 0);
		UNIT_CHECK(node_pub_send(p, ev2, &err) == 0);
		got = NULL;
		if (node_sub_recv(only, 20, &got, &err) == 0) {
			if (strcmp(cJSON_GetObjectItem(got, "topic")->valuestring, "task.succeeded") == 0)
				only_seen = 1;
			else
				wrong = 1;
			cJSON_Delete(got);
		}
	}
	UNIT_CHECK(only_seen);
	UNIT_CHECK(!wrong);
	cJSON *nt = req_of("{\"n\":3}");
	UNIT_CHECK(node_pub_send(p, nt, &err) == NODE_EINVAL);
	cJSON_Delete(nt);
	cJSON_Delete(ev);
	cJSON_Delete(ev2);
	/* The sender goes first: nng 1.5.2 can hang closing a receiver that is
	 * still being sent to (nng issue 1219). */
	node_pub_close(p);
	node_sub_close(all);
	node_sub_close(only);
}

static cJSON *answer(const cJSON *q, void *arg)
{
	cJSON *a = node_reply_ok();
	cJSON_AddStringToObject(a, "name", arg);
	return a;
}

static void collect(cJSON *a, void *arg)
{
	atomic_fetch_add((atomic_int *)arg, 1);
	cJSON_Delete(a);
}

UNIT_TEST(test_survey)
{
	node_respondent *r1, *r2;
	node_err err = {0};
	char url[64];
	snprintf(url, sizeof url, "ipc:///tmp/node-survey-%d", (int)getpid());
	UNIT_CHECK(node_respondent_start(&r1, url, 1, &wire, answer, "one", &err) == 0);
	snprintf(url + strlen(url), 8, "b");
	UNIT_CHECK(node_respondent_start(&r2, url, 1, &wire, answer, "two", &err) == 0);
	url[strlen(url) - 1] = '\0';
	cJSON *q = req_of("{\"op\":\"who\"}");
	atomic_int n = 0;
	int answers = 0;
	UNIT_CHECK(node_survey(url, 0, &wire, q, 500, 100, collect, &n, &answers, &err) == 0);
	UNIT_CHECK(answers == 1 && atomic_load(&n) == 1);
	cJSON_Delete(q);
	node_respondent_stop(r1);
	node_respondent_stop(r2);
}

int main(void)
{
	node_wire_init(&wire);
	UNIT_RUN(test_call_and_errors);
	UNIT_RUN(test_parked_does_not_block);
	UNIT_RUN(test_async_many_in_flight);
	UNIT_RUN(test_parked_reply_and_disconnect);
	UNIT_RUN(test_timeout_message);
	UNIT_RUN(test_pubsub);
	UNIT_RUN(test_survey);
	node_wire_fini(&wire);
	return unit_finish("transport");
}
