/* The built-in worker tasks (modules/worker/tasks.c): results, exactness,
 * errors for bad input, chunk, fibr with a stand-in for the worker's
 * sub-tasks, and crawl against a tiny HTTP server on 127.0.0.1 started by
 * this test. tasks.c is included so the test links with only
 * modules/core (the Makefile's unit-test rule). */
#include "../../modules/worker/tasks.c"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include "unit.h"

/* Run a task from JSON text args / kwargs; returns the printed result, or
 * NULL with err filled. The caller frees the text. */
static char *run(const char *name, const char *args, const char *kwargs, char *err, size_t errlen)
{
	cJSON *a = args ? cJSON_Parse(args) : NULL, *k = kwargs ? cJSON_Parse(kwargs) : NULL, *r = NULL;
	UNIT_CHECK(args == NULL || a != NULL);
	UNIT_CHECK(kwargs == NULL || k != NULL);
	err[0] = '\0';
	int rc = worker_task_run(NULL, name, a, k, &r, err, errlen);
	char *text = NULL;
	if (rc == 0) {
		UNIT_CHECK(r != NULL);
		text = cJSON_PrintUnformatted(r);
		/* Every result must be valid JSON text. */
		cJSON *back = cJSON_Parse(text);
		UNIT_CHECK(back != NULL);
		cJSON_Delete(back);
	} else {
		UNIT_CHECK(r == NULL);
		UNIT_CHECK(err[0] != '\0');
	}
	cJSON_Delete(a);
	cJSON_Delete(k);
	cJSON_Delete(r);
	return text;
}

/* 1 when name(args) prints exactly want. */
static int gives(const char *name, const char *args, const char *want)
{
	char err[512];
	char *got = run(name, args, NULL, err, sizeof err);
	int ok = got && strcmp(got, want) == 0;
	if (!ok)
		fprintf(stderr, "    %s(%s): want %s, got %s%s\n", name, args ? args : "", want, got ? got : "error: ", got ? "" : err);
	cJSON_free(got);
	return ok;
}

/* 1 when name(args) fails with a message containing want. */
static int fails(const char *name, const char *args, const char *kwargs, const char *want)
{
	char err[512];
	char *got = run(name, args, kwargs, err, sizeof err);
	int ok = got == NULL && strstr(err, want) != NULL;
	if (!ok)
		fprintf(stderr, "    %s(%s): want an error with \"%s\", got %s%s\n", name, args ? args : "", want,
		    got ? got : "error: ", got ? "" : err);
	cJSON_free(got);
	return ok;
}

UNIT_TEST(test_table)
{
	UNIT_CHECK(worker_task_find("add") != NULL);
	UNIT_CHECK(worker_task_find("crawl") != NULL);
	UNIT_CHECK(worker_task_find("nope") == NULL);
	UNIT_CHECK(worker_task_find(NULL) == NULL);
	int n = 0;
	for (const worker_task *t = worker_tasks; t->name; t++, n++)
		UNIT_CHECK(t->fn != NULL && t->doc != NULL && t->doc[0] != '\0');
	UNIT_CHECK(n == 13); /* with mr.map and mr.reduce (tests/unit/mrtask_test.c) */
	UNIT_CHECK(worker_task_find("mr.map") != NULL && worker_task_find("mr.reduce") != NULL);
	UNIT_CHECK(fails("nope", "[]", NULL, "unknown task \"nope\""));
	UNIT_CHECK(fails(NULL, "[]", NULL, "unknown task"));
}

UNIT_TEST(test_add)
{
	UNIT_CHECK(gives("add", "[5,5]", "10"));
	UNIT_CHECK(gives("add", "[-3,1]", "-2"));
	UNIT_CHECK(gives("add", "[2.5,0.25]", "2.75"));
	UNIT_CHECK(gives("add", "[1000000000000000,1]", "1000000000000001"));
	UNIT_CHECK(gives("add", "[4000000000,4000000000]", "8000000000"));
	UNIT_CHECK(gives("add", "[0.1,0.2]", "0.30000000000000004"));
	char err[256];
	char *got = run("add", NULL, "{\"a\":1,\"b\":2}", err, sizeof err);
	UNIT_CHECK(got && strcmp(got, "3") == 0);
	cJSON_free(got);
	UNIT_CHECK(fails("add", "[\"x\",1]", NULL, "a must be a number"));
	UNIT_CHECK(fails("add", "[1]", NULL, "missing argument b"));
	UNIT_CHECK(fails("add", "[1,2,3]", NULL, "at most 2 arguments"));
	UNIT_CHECK(fails("add", "{\"a\":1}", NULL, "args must be an array"));
	UNIT_CHECK(fails("add", "[1,2]", "[1]", "kwargs must be an object"));
	UNIT_CHECK(fails("add", "[1e308,1e308]", NULL, "not a finite number"));
	UNIT_CHECK(fails("add", "[null,[1]]", NULL, "must be a number"));
}

UNIT_TEST(test_sum)
{
	UNIT_CHECK(gives("sum", "[[1,2,3,4]]", "10"));
	UNIT_CHECK(gives("sum", "[[]]", "0"));
	UNIT_CHECK(gives("sum", "[[0.5,0.25]]", "0.75"));
	UNIT_CHECK(gives("sum", "[[9000000000000000,1]]", "9000000000000001"));
	UNIT_CHECK(fails("sum", "[[1,\"2\"]]", NULL, "list[1] must be a number"));
	UNIT_CHECK(fails("sum", "[5]", NULL, "must be an array"));
	UNIT_CHECK(fails("sum", "[]", NULL, "missing argument list"));
	/* map "sum of the list [a]*a" over 0..999, reduce with add: 332833500 */
	long long total = 0;
	cJSON *list = cJSON_CreateArray(), *args = cJSON_CreateArray();
	cJSON_AddItemToArray(args, list);
	for (int a = 0; a < 1000; a++) {
		for (int i = 0; i < a; i++)
			cJSON_AddItemToArray(list, cJSON_CreateNumber(a));
		cJSON *r = NULL;
		char err[256];
		UNIT_CHECK(worker_task_run(NULL, "sum", args, NULL, &r, err, sizeof err) == 0);
		total += r ? (long long)r->valuedouble : 0;
		cJSON_Delete(r);
		cJSON_Delete(cJSON_DetachItemFromArray(args, 0));
		list = cJSON_CreateArray();
		cJSON_AddItemToArray(args, list);
	}
	cJSON_Delete(args);
	UNIT_CHECK(total == 332833500LL);
	/* a list longer than the bound is refused, not summed */
	cJSON *big = cJSON_CreateArray(), *bargs = cJSON_CreateArray();
	for (int i = 0; i <= WORKER_TASK_LIST_MAX; i++)
		cJSON_AddItemToArray(big, cJSON_CreateNumber(1));
	cJSON_AddItemToArray(bargs, big);
	cJSON *r = NULL;
	char err[256];
	UNIT_CHECK(worker_task_run(NULL, "sum", bargs, NULL, &r, err, sizeof err) == -1 && strstr(err, "more than") != NULL);
	cJSON_Delete(bargs);
}

UNIT_TEST(test_sqrt)
{
	UNIT_CHECK(gives("sqrt", "[4]", "2"));
	UNIT_CHECK(gives("sqrt", "[2.25]", "1.5"));
	UNIT_CHECK(gives("sqrt", "[0]", "0"));
	UNIT_CHECK(fails("sqrt", "[-1]", NULL, "sqrt of a negative number"));
	UNIT_CHECK(fails("sqrt", "[\"4\"]", NULL, "must be a number"));
	UNIT_CHECK(fails("sqrt", "[]", NULL, "missing argument x"));
}

UNIT_TEST(test_fibo)
{
	const int in[] = {4, 3, 8, 6, 10};
	const char *out[] = {"3", "2", "21", "8", "55"};
	for (int i = 0; i < 5; i++) {
		char args[32];
		snprintf(args, sizeof args, "[%d]", in[i]);
		UNIT_CHECK(gives("fibo", args, out[i]));
	}
	UNIT_CHECK(gives("fibo", "[0]", "0"));
	UNIT_CHECK(gives("fibo", "[1]", "1"));
	UNIT_CHECK(gives("fibo", "[100]", "354224848179261915075"));
	UNIT_CHECK(gives("fibo", "[93]", "12200160415121876738"));
	UNIT_CHECK(fails("fibo", "[-1]", NULL, "from 0 to 100000"));
	UNIT_CHECK(fails("fibo", "[100001]", NULL, "from 0 to 100000, got 100001"));
	UNIT_CHECK(fails("fibo", "[\"x\"]", NULL, "must be an integer"));
	UNIT_CHECK(fails("fibo", "[2.5]", NULL, "must be an integer"));
	UNIT_CHECK(fails("fibo", "[]", NULL, "missing argument n"));
	/* the largest: 20899 digits, exact */
	char err[256];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	char *big = run("fibo", "[100000]", NULL, err, sizeof err);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	UNIT_CHECK(big != NULL);
	if (big) {
		UNIT_CHECK(strlen(big) == 20899);
		UNIT_CHECK(strncmp(big, "259740693472217241661550340212", 30) == 0);
		UNIT_CHECK(strcmp(big + strlen(big) - 30, "289236362349895374653428746875") == 0);
	}
	cJSON_free(big);
	fprintf(stderr, "    fibo(100000): %.0f ms\n", (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6);
}

UNIT_TEST(test_pi)
{
	char err[256];
	char *a = run("pi", "[1000000, 42]", NULL, err, sizeof err);
	char *b = run("pi", "[1000000, 42]", NULL, err, sizeof err);
	char *c = run("pi", "[1000000, 43]", NULL, err, sizeof err);
	UNIT_CHECK(a && b && c);
	if (a && b && c) {
		UNIT_CHECK(strcmp(a, b) == 0);
		UNIT_CHECK(strcmp(a, c) != 0);
		cJSON *r = cJSON_Parse(a);
		double inside = cJSON_GetNumberValue(cJSON_GetObjectItem(r, "inside"));
		double points = cJSON_GetNumberValue(cJSON_GetObjectItem(r, "points"));
		UNIT_CHECK(points == 1000000);
		UNIT_CHECK(fabs(4 * inside / points - M_PI) / M_PI < 0.01);
		cJSON_Delete(r);
	}
	cJSON_free(a);
	cJSON_free(b);
	cJSON_free(c);
	char *k = run("pi", NULL, "{\"points\":1000,\"seed\":7}", err, sizeof err);
	UNIT_CHECK(k != NULL);
	cJSON_free(k);
	char *r1 = run("pi", "[1000]", NULL, err, sizeof err); /* random seed */
	UNIT_CHECK(r1 != NULL && strstr(r1, "\"points\":1000") != NULL);
	cJSON_free(r1);
	UNIT_CHECK(fails("pi", "[0]", NULL, "points must be an integer"));
	UNIT_CHECK(fails("pi", "[1e12]", NULL, "points must be an integer"));
	UNIT_CHECK(fails("pi", "[10, -1]", NULL, "seed must be an integer"));
	UNIT_CHECK(fails("pi", "[10, \"s\"]", NULL, "seed must be an integer"));
}

UNIT_TEST(test_sleep_echo_fail)
{
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	UNIT_CHECK(gives("sleep", "[30]", "30"));
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_nsec - t0.tv_nsec) / 1e6;
	UNIT_CHECK(ms >= 29 && ms < 2000);
	UNIT_CHECK(gives("sleep", "[0]", "0"));
	UNIT_CHECK(fails("sleep", "[-5]", NULL, "from 0 to 3600000"));
	UNIT_CHECK(fails("sleep", "[3600001]", NULL, "from 0 to 3600000"));
	UNIT_CHECK(fails("sleep", "[\"1\"]", NULL, "must be an integer"));

	UNIT_CHECK(gives("echo", "[\"hi\"]", "\"hi\""));
	UNIT_CHECK(gives("echo", "[1,\"a\",{\"b\":[true,null]}]", "[1,\"a\",{\"b\":[true,null]}]"));
	UNIT_CHECK(gives("echo", "[]", "[]"));
	UNIT_CHECK(gives("echo", NULL, "[]"));
	UNIT_CHECK(fails("echo", "5", NULL, "args must be an array"));

	UNIT_CHECK(fails("fail", "[\"boom\"]", NULL, "boom"));
	UNIT_CHECK(fails("fail", "[]", NULL, "on purpose"));
	UNIT_CHECK(fails("fail", "[{\"x\":1}]", NULL, "{\"x\":1}"));
	char err[64];
	char *got = run("fail", NULL, "{\"message\":\"by name\"}", err, sizeof err);
	UNIT_CHECK(got == NULL && strcmp(err, "by name") == 0);
	/* a long message is cut to the buffer, never overflows it */
	char longmsg[400];
	memset(longmsg, 'm', sizeof longmsg);
	snprintf(longmsg, sizeof longmsg, "[\"%0300d\"]", 0);
	got = run("fail", longmsg, NULL, err, sizeof err);
	UNIT_CHECK(got == NULL && strlen(err) == sizeof err - 1);
}

UNIT_TEST(test_links)
{
	const char *html =
	    "<html><head><style>a{}</style><script>var s='<a href=\"/script\">';</script></head><body>"
	    "<!-- <a href=\"/comment\"> -->"
	    "<abbr href=\"/abbr\">x</abbr><area href=\"/area\">"
	    "<a href=\"/one\">1</a>"
	    "<A CLASS=x HREF='/two?a=1&amp;b=2'>2</A>"
	    "<a\n  name=n\n  href = \"http://example.com/three\" href=\"/dup\">3</a>"
	    "<a>no href</a>"
	    "<a href=/four>4</a>"
	    "<a href=\"\">empty</a>"
	    "<a href=\"/cut";
	cJSON *links = cJSON_CreateArray();
	int n = worker_task_links(html, strlen(html), 100, links);
	UNIT_CHECK(n == 5);
	const char *want[] = {"/one", "/two?a=1&amp;b=2", "http://example.com/three", "/four", ""};
	for (int i = 0; i < 5 && i < n; i++) {
		const char *got = cJSON_GetStringValue(cJSON_GetArrayItem(links, i));
		UNIT_CHECK(got && strcmp(got, want[i]) == 0);
	}
	cJSON_Delete(links);
	links = cJSON_CreateArray();
	UNIT_CHECK(worker_task_links(html, strlen(html), 2, links) == 2);
	UNIT_CHECK(cJSON_GetArraySize(links) == 2);
	cJSON_Delete(links);
	links = cJSON_CreateArray();
	UNIT_CHECK(worker_task_links("<a", 2, 10, links) == 0);
	UNIT_CHECK(worker_task_links("", 0, 10, links) == 0);
	UNIT_CHECK(worker_task_links("<a href='x", 10, 10, links) == 0);
	cJSON_Delete(links);
}

/* ---- chunk ---- */

/* 1 when the chunk result r has an error for item index that contains want. */
static int chunk_err_has(const cJSON *r, const char *index, const char *want)
{
	const char *e = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(r, "e"), index));
	if (e == NULL || strstr(e, want) == NULL) {
		fprintf(stderr, "    chunk item %s: want an error with \"%s\", got %s\n", index, want, e ? e : "none");
		return 0;
	}
	return 1;
}

UNIT_TEST(test_chunk)
{
	UNIT_CHECK(gives("chunk", "[\"add\",[[1,2],[3,4],[5,6]]]", "{\"v\":[3,7,11]}"));
	UNIT_CHECK(gives("chunk", "[\"add\",[]]", "{\"v\":[]}"));
	UNIT_CHECK(gives("chunk", "[\"echo\",[null,[1],[1,2]]]", "{\"v\":[[],1,[1,2]]}"));
	UNIT_CHECK(gives("chunk", "[\"fibo\",[[90]]]", "{\"v\":[2880067194370816120]}")); /* exact, as fibo alone */
	/* kwargs go to every item */
	char err[512];
	char *got = run("chunk", "[\"add\",[[1],[2]]]", "{\"b\":10}", err, sizeof err);
	UNIT_CHECK(got && strcmp(got, "{\"v\":[11,12]}") == 0);
	cJSON_free(got);
	/* failed items are null in "v" and have their message in "e" */
	got = run("chunk", "[\"add\",[[1,2],[3,\"x\"],[5,6],[7],null]]", NULL, err, sizeof err);
	cJSON *r = got ? cJSON_Parse(got) : NULL;
	UNIT_CHECK(r != NULL);
	if (r) {
		char *v = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(r, "v"));
		UNIT_CHECK(v && strcmp(v, "[3,null,11,null,null]") == 0);
		cJSON_free(v);
		UNIT_CHECK(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(r, "e")) == 3);
		UNIT_CHECK(chunk_err_has(r, "1", "add: b must be a number, got the string \"x\""));
		UNIT_CHECK(chunk_err_has(r, "3", "add: missing argument b"));
		UNIT_CHECK(chunk_err_has(r, "4", "add: missing argument a"));
		UNIT_CHECK(strncmp(got, "{\"v\":", 5) == 0); /* "v" first, then "e" */
	}
	cJSON_Delete(r);
	cJSON_free(got);
	/* the text form: items as the text of a JSON string, values back the same way */
	UNIT_CHECK(gives("chunk", "[\"add\",\"[[1,2],[3,4],[0.5,0.25],[-7,0]]\"]", "{\"v\":\"[3,7,0.75,-7]\"}"));
	UNIT_CHECK(gives("chunk", "[\"fibo\",\"[[90],[1]]\"]", "{\"v\":\"[2880067194370816120,1]\"}"));
	UNIT_CHECK(gives("chunk", "[\"echo\",\"[[\\\"a\\\\\\\"b\\\"],null]\"]", "{\"v\":\"[\\\"a\\\\\\\"b\\\",[]]\"}"));
	UNIT_CHECK(gives("chunk", "[\"add\",\"[[1e300,1e300]]\"]", "{\"v\":\"[2e+300]\"}"));
	got = run("chunk", "[\"add\",\"[[1,2],[3,\\\"x\\\"]]\"]", NULL, err, sizeof err);
	UNIT_CHECK(got && strstr(got, "\"v\":\"[3,null]\"") && strstr(got, "\"e\":{\"1\":\"add: b must be a number"));
	free(got);
	UNIT_CHECK(fails("chunk", "[\"add\",\"[[1,2]\"]", NULL, "must hold a JSON array of argument lists"));
	UNIT_CHECK(fails("chunk", "[\"add\",\"{}\"]", NULL, "must hold a JSON array of argument lists"));

	/* bad requests fail the chunk itself */
	UNIT_CHECK(fails("chunk", "[1,[[1,2]]]", NULL, "chunk: the first argument must be a task name (a string), got 1"));
	UNIT_CHECK(fails("chunk", NULL, NULL, "first argument must be a task name"));
	UNIT_CHECK(fails("chunk", "[\"nope\",[[1]]]", NULL, "chunk: unknown task \"nope\""));
	UNIT_CHECK(fails("chunk", "[\"chunk\",[[\"add\",[[1,2]]]]]", NULL, "chunk: cannot run chunk itself"));
	UNIT_CHECK(fails("chunk", "[\"add\",{\"a\":1}]", NULL, "the second argument must be an array of argument lists, got an object"));
	UNIT_CHECK(fails("chunk", "[\"add\"]", NULL, "the second argument must be an array"));
	UNIT_CHECK(fails("chunk", "[\"add\",[[1,2],5]]", NULL, "chunk: item 1 must be an array of arguments or null, got 5"));
	UNIT_CHECK(fails("chunk", "[\"add\",[[1,2]],3]", NULL, "at most 2 arguments"));
	UNIT_CHECK(fails("chunk", "[\"add\",[[1,2]]]", "[1]", "kwargs must be an object"));
	/* at most WORKER_TASK_LIST_MAX items */
	cJSON *args = cJSON_CreateArray(), *items = cJSON_CreateArray();
	cJSON_AddItemToArray(args, cJSON_CreateString("echo"));
	cJSON_AddItemToArray(args, items);
	for (int i = 0; i <= WORKER_TASK_LIST_MAX; i++)
		cJSON_AddItemToArray(items, cJSON_CreateNull());
	r = NULL;
	UNIT_CHECK(worker_task_run(NULL, "chunk", args, NULL, &r, err, sizeof err) == -1 && strstr(err, "more than 1000000 items"));
	cJSON_Delete(args);
}

/* Many tiny items in one chunk: in order, and fast (the worker's part of
 * the 1,000,000 items/s target of a client map). */
UNIT_TEST(test_chunk_many)
{
	enum { N = 200000 };
	cJSON *args = cJSON_CreateArray(), *items = cJSON_CreateArray();
	cJSON_AddItemToArray(args, cJSON_CreateString("add"));
	cJSON_AddItemToArray(args, items);
	for (int i = 0; i < N; i++) {
		cJSON *a = cJSON_CreateArray();
		cJSON_AddItemToArray(a, cJSON_CreateNumber(i));
		cJSON_AddItemToArray(a, cJSON_CreateNumber(i));
		cJSON_AddItemToArray(items, a);
	}
	cJSON *r = NULL;
	char err[256];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	UNIT_CHECK(worker_task_run(NULL, "chunk", args, NULL, &r, err, sizeof err) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(r, "v");
	int i = 0, inorder = 1;
	for (const cJSON *e = v ? v->child : NULL; e; e = e->next, i++)
		inorder &= e->valuedouble == 2.0 * i;
	UNIT_CHECK(i == N && inorder);
	UNIT_CHECK(cJSON_GetObjectItemCaseSensitive(r, "e") == NULL);
	double s = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
	fprintf(stderr, "    chunk of %d add items: %.1f ms, %.1f M items/s\n", N, s * 1e3, N / s / 1e6);
	cJSON_Delete(r);
	cJSON_Delete(args);
}

/* ---- fibr: locally, and with a stand-in for the worker's sub-tasks ---- */

UNIT_TEST(test_fibr_local)
{
	UNIT_CHECK(gives("fibr", "[0]", "0"));
	UNIT_CHECK(gives("fibr", "[1]", "1"));
	UNIT_CHECK(gives("fibr", "[10]", "55"));
	UNIT_CHECK(gives("fibr", "[15]", "610"));
	UNIT_CHECK(gives("fibr", "[20, 20]", "6765"));
	UNIT_CHECK(gives("fibr", "[1, 0]", "1"));
	UNIT_CHECK(gives("fibr", "[90, 90]", "2880067194370816120"));
	char err[256];
	char *got = run("fibr", NULL, "{\"n\":12,\"cutoff\":null}", err, sizeof err);
	UNIT_CHECK(got && strcmp(got, "144") == 0);
	cJSON_free(got);
	UNIT_CHECK(fails("fibr", "[91]", NULL, "fibr: n must be an integer from 0 to 90, got 91"));
	UNIT_CHECK(fails("fibr", "[-1]", NULL, "from 0 to 90"));
	UNIT_CHECK(fails("fibr", "[10, -1]", NULL, "cutoff must be an integer from 0 to 90"));
	UNIT_CHECK(fails("fibr", "[10, 1.5]", NULL, "cutoff must be an integer"));
	UNIT_CHECK(fails("fibr", "[]", NULL, "missing argument n"));
	UNIT_CHECK(fails("fibr", "[1,2,3]", NULL, "at most 2 arguments"));
	/* n > cutoff needs a worker to submit sub-tasks */
	UNIT_CHECK(fails("fibr", "[20]", NULL, "fibr(20, 15): n > cutoff needs sub-tasks"));
}

/* Sub-tasks run at once, inside submit; one n can be made to fail. */
struct worker_sub {
	char id[32];
	char *result, *error;
};

typedef struct fake_worker {
	int submits, waits, begins, ends;
	long long fail_n;  /* a sub-task fibr(fail_n) fails, */
	int fail_submit;   /* or cannot even be submitted */
	int fail_wait;     /* the wait runs out of time */
} fake_worker;

static int fake_open; /* sub-tasks not released */

static int fake_submit(const worker_task_ctx *ctx, const char *name, const char *args_json, const char *queue,
    worker_sub **sub, char *err, size_t errlen)
{
	fake_worker *f = ctx->opaque;
	cJSON *a = cJSON_Parse(args_json);
	long long n = (long long)cJSON_GetNumberValue(cJSON_GetArrayItem(a, 0));
	UNIT_CHECK(queue == NULL && strcmp(name, "fibr") == 0);
	if (n == f->fail_n && f->fail_submit) {
		cJSON_Delete(a);
		snprintf(err, errlen, "queue %s is full", ctx->queue);
		return -1;
	}
	worker_sub *s = calloc(1, sizeof *s);
	snprintf(s->id, sizeof s->id, "sub-%d", f->submits++);
	fake_open++;
	cJSON *r = NULL;
	char e[1024];
	if (n == f->fail_n)
		s->error = strdup("boom");
	else if (worker_task_run(ctx, name, a, NULL, &r, e, sizeof e) == 0)
		s->result = cJSON_PrintUnformatted(r);
	else
		s->error = strdup(e);
	cJSON_Delete(r);
	cJSON_Delete(a);
	*sub = s;
	return 0;
}

static int fake_wait(const worker_task_ctx *ctx, worker_sub *const *subs, size_t n, int timeout_ms, char *err,
    size_t errlen)
{
	fake_worker *f = ctx->opaque;
	UNIT_CHECK(n == 2 && subs[0] && subs[1] && timeout_ms > 0 && timeout_ms <= WORKER_TASK_FIBR_WAIT_MS);
	ctx->wait_begin(ctx);
	f->waits++;
	ctx->wait_end(ctx);
	if (f->fail_wait)
		snprintf(err, errlen, "2 of 2 tasks did not finish in 10 min (the first: %s)", subs[0]->id);
	return f->fail_wait ? -1 : 0;
}

static const char *fake_result(const worker_sub *s)
{
	return s->result;
}

static const char *fake_error(const worker_sub *s)
{
	return s->error;
}

static const char *fake_id(const worker_sub *s)
{
	return s->id;
}

static void fake_release(worker_sub *s)
{
	fake_open--;
	free(s->result);
	free(s->error);
	free(s);
}

static void fake_begin(const worker_task_ctx *ctx)
{
	((fake_worker *)ctx->opaque)->begins++;
}

static void fake_end(const worker_task_ctx *ctx)
{
	((fake_worker *)ctx->opaque)->ends++;
}

/* fibr(args) with the stand-in; the printed result or NULL with err. */
static char *fake_fibr(fake_worker *f, const char *args, char *err, size_t errlen)
{
	worker_task_ctx ctx = {.id = "t-1", .delivery = 1, .queue = "q", .opaque = f, .submit = fake_submit,
	    .wait = fake_wait, .result = fake_result, .error = fake_error, .sub_id = fake_id, .release = fake_release,
	    .wait_begin = fake_begin, .wait_end = fake_end};
	cJSON *a = cJSON_Parse(args), *r = NULL;
	char *text = NULL;
	if (worker_task_run(&ctx, "fibr", a, NULL, &r, err, errlen) == 0)
		text = cJSON_PrintUnformatted(r);
	cJSON_Delete(a);
	cJSON_Delete(r);
	return text;
}

UNIT_TEST(test_fibr_nested)
{
	char err[1024];
	fake_worker f = {.fail_n = -1};
	char *got = fake_fibr(&f, "[20, 12]", err, sizeof err);
	UNIT_CHECK(got && strcmp(got, "6765") == 0);
	cJSON_free(got);
	/* the nodes of the tree with n > 12 split: F(20 - 10) - 1 = 54 */
	UNIT_CHECK(f.submits == 2 * 54 && f.waits == 54);
	UNIT_CHECK(f.begins == f.waits && f.ends == f.waits);
	f = (fake_worker){.fail_n = -1};
	got = fake_fibr(&f, "[90, 88]", err, sizeof err);
	UNIT_CHECK(got && strcmp(got, "2880067194370816120") == 0);
	cJSON_free(got);

	/* a failed sub-task: the parent names its own sub-task and the
	 * innermost failure, once */
	f = (fake_worker){.fail_n = 12};
	got = fake_fibr(&f, "[20, 10]", err, sizeof err);
	UNIT_CHECK(got == NULL);
	UNIT_CHECK(strncmp(err, "fibr(20, 10): sub-task fibr(19, 10) (sub-", 41) == 0);
	UNIT_CHECK(strstr(err, ") failed: fibr(13, 10): sub-task fibr(12, 10) (sub-") != NULL);
	UNIT_CHECK(strlen(err) > 6 && strcmp(err + strlen(err) - 6, ": boom") == 0);
	cJSON_free(got);
	/* one that cannot be submitted */
	f = (fake_worker){.fail_n = 12, .fail_submit = 1};
	got = fake_fibr(&f, "[20, 10]", err, sizeof err);
	UNIT_CHECK(got == NULL && strstr(err, "fibr(20, 10): sub-task fibr(19, 10) (sub-"));
	UNIT_CHECK(strstr(err, ") failed: fibr(15, 10): sub-task fibr(14, 10) (sub-") != NULL);
	UNIT_CHECK(strstr(err, ") failed: fibr(14, 10): cannot submit sub-task fibr(12, 10): queue q is full") != NULL);
	cJSON_free(got);
	/* the parent's own failure: the wait ran out of time */
	f = (fake_worker){.fail_n = -1, .fail_wait = 1};
	got = fake_fibr(&f, "[20, 19]", err, sizeof err);
	UNIT_CHECK(got == NULL && strcmp(err, "fibr(20, 19): 2 of 2 tasks did not finish in 10 min (the first: sub-0)") == 0);
	cJSON_free(got);
	UNIT_CHECK(fake_open == 0); /* every sub-task released, also on failure */
}

/* ---- a tiny HTTP server on 127.0.0.1 for crawl ---- */

static const char page[] =
    "<html><body><h1>Links</h1>\n"
    "<a href=\"http://127.0.0.1/first\">first</a>\n"
    "<p><A HREF='/second'>second</A></p>\n"
    "<a class=\"c\" href=\"third.html\">third</a>\n"
    "</body></html>\n";

typedef struct http_srv {
	int fd;
	int port;
	atomic_int stop;
	pthread_t thread;
} http_srv;

static void srv_send(int c, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t k = send(c, s, n, MSG_NOSIGNAL);
		if (k <= 0)
			return;
		s += k;
		n -= (size_t)k;
	}
}

static void srv_serve(http_srv *s, int c)
{
	char req[4096];
	size_t got = 0;
	req[0] = '\0';
	while (got < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
		struct pollfd p = {c, POLLIN, 0};
		if (poll(&p, 1, 2000) <= 0)
			return;
		ssize_t k = recv(c, req + got, sizeof req - 1 - got, 0);
		if (k <= 0)
			return;
		got += (size_t)k;
		req[got] = '\0';
	}
	char out[8192];
	if (strncmp(req, "GET / ", 6) == 0) {
		int n = snprintf(out, sizeof out, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %zu\r\n\r\n%s",
		    strlen(page), page);
		srv_send(c, out, (size_t)n);
	} else if (strncmp(req, "GET /chunked ", 13) == 0) {
		const char *h = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n";
		srv_send(c, h, strlen(h));
		size_t len = strlen(page), half = len / 2;
		int n = snprintf(out, sizeof out, "%zx\r\n%.*s\r\n%zX;ext=1\r\n%s\r\n0\r\n\r\n", half, (int)half, page, len - half,
		    page + half);
		srv_send(c, out, (size_t)n);
	} else if (strncmp(req, "GET /close ", 11) == 0) {
		int n = snprintf(out, sizeof out, "HTTP/1.0 200 OK\r\n\r\n%s", page);
		srv_send(c, out, (size_t)n);
	} else if (strncmp(req, "GET /slow ", 10) == 0) {
		for (int i = 0; i < 20 && !s->stop; i++) /* answer nothing for 1 s */
			usleep(50000);
	} else {
		const char *nf = "HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found";
		srv_send(c, nf, strlen(nf));
	}
}

static void *srv_thread(void *arg)
{
	http_srv *s = arg;
	for (int i = 0; i < 100 && !s->stop; i++) { /* bounded: at most 100 polls */
		struct pollfd p = {s->fd, POLLIN, 0};
		if (poll(&p, 1, 100) <= 0)
			continue;
		int c = accept(s->fd, NULL, NULL);
		if (c < 0)
			continue;
		srv_serve(s, c);
		close(c);
	}
	return NULL;
}

static int srv_start(http_srv *s)
{
	memset(s, 0, sizeof *s);
	s->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t al = sizeof a;
	if (s->fd < 0 || bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->fd, 16) != 0 ||
	    getsockname(s->fd, (struct sockaddr *)&a, &al) != 0)
		return -1;
	s->port = ntohs(a.sin_port);
	return pthread_create(&s->thread, NULL, srv_thread, s);
}

static void srv_stop(http_srv *s)
{
	s->stop = 1;
	pthread_join(s->thread, NULL);
	close(s->fd);
}

static void check_page_links(const char *text, const char *url)
{
	cJSON *r = cJSON_Parse(text);
	UNIT_CHECK(r != NULL);
	UNIT_CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(r, "url")), url) == 0);
	UNIT_CHECK(cJSON_GetNumberValue(cJSON_GetObjectItem(r, "status")) == 200);
	cJSON *links = cJSON_GetObjectItem(r, "links");
	UNIT_CHECK(cJSON_GetArraySize(links) == 3);
	const char *want[] = {"http://127.0.0.1/first", "/second", "third.html"};
	for (int i = 0; i < 3; i++) {
		const char *got = cJSON_GetStringValue(cJSON_GetArrayItem(links, i));
		UNIT_CHECK(got && strcmp(got, want[i]) == 0);
	}
	cJSON_Delete(r);
}

UNIT_TEST(test_crawl)
{
	http_srv s;
	UNIT_CHECK(srv_start(&s) == 0);
	char url[128], args[256], err[512];
	const char *paths[] = {"/", "/chunked", "/close"};
	for (int i = 0; i < 3; i++) {
		snprintf(url, sizeof url, "http://127.0.0.1:%d%s", s.port, paths[i]);
		snprintf(args, sizeof args, "[\"%s\"]", url);
		char *got = run("crawl", args, NULL, err, sizeof err);
		UNIT_CHECK(got != NULL);
		if (got)
			check_page_links(got, url);
		else
			fprintf(stderr, "    crawl %s: %s\n", url, err);
		cJSON_free(got);
	}
	/* n limits the links */
	snprintf(url, sizeof url, "http://127.0.0.1:%d/", s.port);
	snprintf(args, sizeof args, "[\"%s\", 2]", url);
	char *got = run("crawl", args, NULL, err, sizeof err);
	UNIT_CHECK(got && strstr(got, "\"links\":[\"http://127.0.0.1/first\",\"/second\"]"));
	cJSON_free(got);
	/* non-2xx is an error naming the URL and the status */
	snprintf(url, sizeof url, "http://127.0.0.1:%d/missing", s.port);
	snprintf(args, sizeof args, "[\"%s\"]", url);
	UNIT_CHECK(fails("crawl", args, NULL, "HTTP 404"));
	UNIT_CHECK(fails("crawl", args, NULL, url));
	/* a server that does not answer in time */
	snprintf(url, sizeof url, "http://127.0.0.1:%d/slow", s.port);
	snprintf(args, sizeof args, "[\"%s\"]", url);
	UNIT_CHECK(fails("crawl", args, "{\"timeout_ms\":200}", "timed out"));
	srv_stop(&s);
	/* nothing listens there any more */
	snprintf(args, sizeof args, "[\"http://127.0.0.1:%d/\"]", s.port);
	UNIT_CHECK(fails("crawl", args, NULL, "crawl http://127.0.0.1:"));
	UNIT_CHECK(fails("crawl", "[\"ftp://127.0.0.1/\"]", NULL, "only http://"));
	UNIT_CHECK(fails("crawl", "[\"not a url\"]", NULL, "crawl"));
	UNIT_CHECK(fails("crawl", "[42]", NULL, "url must be a string"));
	UNIT_CHECK(fails("crawl", "[\"http://127.0.0.1:1/\", -1]", NULL, "n must be an integer"));
	UNIT_CHECK(fails("crawl", "[]", NULL, "url must be a string"));
}

int main(void)
{
	UNIT_RUN(test_table);
	UNIT_RUN(test_add);
	UNIT_RUN(test_sum);
	UNIT_RUN(test_sqrt);
	UNIT_RUN(test_fibo);
	UNIT_RUN(test_pi);
	UNIT_RUN(test_sleep_echo_fail);
	UNIT_RUN(test_links);
	UNIT_RUN(test_chunk);
	UNIT_RUN(test_chunk_many);
	UNIT_RUN(test_fibr_local);
	UNIT_RUN(test_fibr_nested);
	UNIT_RUN(test_crawl);
	return unit_finish("tasks");
}
