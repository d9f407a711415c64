/* The built-in tasks of `node worker` (node-worker(1) lists them):
 *   add(a, b)            a + b; integers stay exact integers
 *   sum(list)            the sum of a list of numbers
 *   sqrt(x)              the square root of x >= 0
 *   fibo(n)              the n-th Fibonacci number, exact, n <= 100000
 *   fibr(n, cutoff=15)   the same by nested futures: sub-tasks n-1 and n-2
 *   pi(points, seed?)    Monte Carlo: {"inside": k, "points": n}
 *   sleep(ms)            sleeps, returns ms
 *   echo(...)            returns its arguments
 *   fail(message)        always fails with message
 *   crawl(url, n=10)     HTTP GET, returns the first n <a href> values
 *   chunk(name, items)   name over many argument lists: {"v": [...], "e": {...}}
 *   mr.map, mr.reduce    MapReduce tasks (modules/mapreduce/task_*.c, node-tasks(7))
 * Arguments come positionally (args) or by name (kwargs). Every input is
 * checked and bounded; a bad one is a task error, never a crash. Only fibr
 * uses the context (worker_task_ctx), through its function pointers, and the
 * MapReduce tasks its mr member, so this file knows nothing of the worker. */
#include "tasks.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <nng/nng.h>
#include <nng/supplemental/http/http.h>
#include <nng/supplemental/tls/tls.h>

#include "core/clock.h"
#include "core/rand.h"
#include "mapreduce/mrtask.h"

#define TASK_EXACT_MAX 9007199254740992.0 /* 2^53: doubles are exact integers below */

/* ---- arguments and errors ---- */

__attribute__((format(printf, 3, 4)))
static int task_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	if (err && errlen)
		vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static const char *task_type(const cJSON *v)
{
	if (v == NULL)
		return "nothing";
	if (cJSON_IsNumber(v))
		return "a number";
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsBool(v))
		return "a boolean";
	if (cJSON_IsNull(v))
		return "null";
	if (cJSON_IsArray(v))
		return "an array";
	if (cJSON_IsObject(v))
		return "an object";
	return "an unknown value";
}

/* Describe v for an error message: numbers by value, the rest by type. */
static const char *task_what(const cJSON *v, char *buf, size_t n)
{
	if (cJSON_IsNumber(v))
		snprintf(buf, n, "%.17g", v->valuedouble);
	else if (cJSON_IsString(v))
		snprintf(buf, n, "the string \"%.40s%s\"", v->valuestring, strlen(v->valuestring) > 40 ? "..." : "");
	else
		snprintf(buf, n, "%s", task_type(v));
	return buf;
}

static int task_nargs(const cJSON *args)
{
	int n = 0;
	for (const cJSON *e = cJSON_IsArray(args) ? args->child : NULL; e; e = e->next)
		n++;
	return n;
}

/* Argument i by position, else name from kwargs; NULL when absent. */
static const cJSON *task_arg(const cJSON *args, const cJSON *kwargs, int i, const char *name)
{
	if (cJSON_IsArray(args)) {
		const cJSON *e = args->child;
		for (int k = 0; e && k < i; k++)
			e = e->next;
		if (e)
			return e;
	}
	if (name && cJSON_IsObject(kwargs))
		return cJSON_GetObjectItemCaseSensitive(kwargs, name);
	return NULL;
}

static int task_check_arity(const char *task, const cJSON *args, int max, char *err, size_t errlen)
{
	if (args != NULL && !cJSON_IsArray(args))
		return task_err(err, errlen, "%s: args must be an array, got %s", task, task_type(args));
	int n = task_nargs(args);
	if (n > max)
		return task_err(err, errlen, "%s: takes at most %d argument%s, got %d", task, max, max == 1 ? "" : "s", n);
	return 0;
}

/* An integer argument within [min, max]. */
static int task_int(const char *task, const char *name, const cJSON *v, long long min, long long max, long long *out,
    char *err, size_t errlen)
{
	char what[96];
	if (v == NULL)
		return task_err(err, errlen, "%s: missing argument %s (an integer from %lld to %lld)", task, name, min, max);
	double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
	if (!cJSON_IsNumber(v) || d != floor(d) || d < (double)min || d > (double)max)
		return task_err(err, errlen, "%s: %s must be an integer from %lld to %lld, got %s", task, name, min, max,
		    task_what(v, what, sizeof what));
	*out = (long long)d;
	return 0;
}

static int task_num(const char *task, const char *name, const cJSON *v, double *out, char *err, size_t errlen)
{
	char what[96];
	if (v == NULL)
		return task_err(err, errlen, "%s: missing argument %s (a number)", task, name);
	if (!cJSON_IsNumber(v))
		return task_err(err, errlen, "%s: %s must be a number, got %s", task, name, task_what(v, what, sizeof what));
	*out = v->valuedouble;
	return 0;
}

/* ---- numbers that print exactly ---- */

/* cJSON prints integers beyond 32 bits in %g form (1e+15); print them whole. */
static cJSON *task_json_int(long long v)
{
	if (v >= -2147483647LL && v <= 2147483647LL)
		return cJSON_CreateNumber((double)v);
	char buf[32];
	snprintf(buf, sizeof buf, "%lld", v);
	return cJSON_CreateRaw(buf);
}

/* cJSON prints doubles with %.15g when that is merely close (0.1 + 0.2 comes
 * out as 0.3); print the shortest form that reads back exactly. */
static cJSON *task_json_number(double d)
{
	if (d == floor(d) && fabs(d) < 9.2e18)
		return task_json_int((long long)d);
	if (!isfinite(d))
		return NULL;
	char buf[40];
	for (int prec = 15; prec <= 17; prec++) {
		snprintf(buf, sizeof buf, "%.*g", prec, d);
		if (strtod(buf, NULL) == d)
			break;
	}
	return cJSON_CreateRaw(buf);
}

/* A running sum that stays an exact integer while every term is one. */
typedef struct task_acc {
	int exact;
	long long i;
	double d;
} task_acc;

static void task_acc_add(task_acc *s, double x)
{
	s->d += x;
	long long r;
	if (s->exact && x == floor(x) && fabs(x) <= TASK_EXACT_MAX && !__builtin_add_overflow(s->i, (long long)x, &r))
		s->i = r;
	else
		s->exact = 0;
}

static int task_acc_result(const char *task, const task_acc *s, cJSON **result, char *err, size_t errlen)
{
	if (s->exact) {
		*result = task_json_int(s->i);
		return 0;
	}
	if (!isfinite(s->d))
		return task_err(err, errlen, "%s: the result is not a finite number", task);
	*result = task_json_number(s->d);
	return 0;
}

/* ---- add, sum, sqrt ---- */

static int task_add(const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs, cJSON **result,
    char *err, size_t errlen)
{
	double a, b;
	if (task_check_arity("add", args, 2, err, errlen) != 0 ||
	    task_num("add", "a", task_arg(args, kwargs, 0, "a"), &a, err, errlen) != 0 ||
	    task_num("add", "b", task_arg(args, kwargs, 1, "b"), &b, err, errlen) != 0)
		return -1;
	task_acc s = {1, 0, 0};
	task_acc_add(&s, a);
	task_acc_add(&s, b);
	return task_acc_result("add", &s, result, err, errlen);
}

static int task_sum(const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs, cJSON **result,
    char *err, size_t errlen)
{
	if (task_check_arity("sum", args, 1, err, errlen) != 0)
		return -1;
	const cJSON *list = task_arg(args, kwargs, 0, "list");
	if (list == NULL)
		return task_err(err, errlen, "sum: missing argument list (an array of numbers)");
	if (!cJSON_IsArray(list))
		return task_err(err, errlen, "sum: list must be an array of numbers, got %s", task_type(list));
	task_acc s = {1, 0, 0};
	long long i = 0;
	char what[96];
	for (const cJSON *e = list->child; e; e = e->next, i++) {
		if (i >= WORKER_TASK_LIST_MAX)
			return task_err(err, errlen, "sum: list has more than %d items", WORKER_TASK_LIST_MAX);
		if (!cJSON_IsNumber(e))
			return task_err(err, errlen, "sum: list[%lld] must be a number, got %s", i, task_what(e, what, sizeof what));
		task_acc_add(&s, e->valuedouble);
	}
	return task_acc_result("sum", &s, result, err, errlen);
}

static int task_sqrt(const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs, cJSON **result,
    char *err, size_t errlen)
{
	double x;
	if (task_check_arity("sqrt", args, 1, err, errlen) != 0 ||
	    task_num("sqrt", "x", task_arg(args, kwargs, 0, "x"), &x, err, errlen) != 0)
		return -1;
	if (x < 0)
		return task_err(err, errlen, "sqrt of a negative number");
	*result = task_json_number(sqrt(x));
	return 0;
}

/* ---- fibo: exact, with base 10^18 limbs ---- */

#define FIBO_LIMB 1000000000000000000ull

static int task_fibo(const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs, cJSON **result,
    char *err, size_t errlen)
{
	long long n;
	if (task_check_arity("fibo", args, 1, err, errlen) != 0 ||
	    task_int("fibo", "n", task_arg(args, kwargs, 0, "n"), 0, WORKER_TASK_FIBO_MAX, &n, err, errlen) != 0)
		return -1;
	/* F(n) has about n * log10(phi) = 0.2090 n digits. */
	size_t cap = (size_t)(n * 0.20898764024997873 / 18.0) + 3;
	uint64_t *a = calloc(cap, sizeof *a), *b = calloc(cap, sizeof *b);
	char *text = malloc(cap * 18 + 1);
	if (a == NULL || b == NULL || text == NULL) {
		free(a);
		free(b);
		free(text);
		return task_err(err, errlen, "fibo: out of memory");
	}
	/* a, b = 0, 1; n times: a, b = b, a + b. Limbs past a length stay 0. */
	size_t la = 1, lb = 1;
	b[0] = 1;
	for (long long i = 0; i < n; i++) {
		uint64_t carry = 0;
		size_t j;
		for (j = 0; j < lb; j++) {
			uint64_t s = a[j] + b[j] + carry;
			carry = s >= FIBO_LIMB;
			a[j] = carry ? s - FIBO_LIMB : s;
		}
		if (carry)
			a[j++] = 1;
		uint64_t *t = a;
		a = b;
		b = t;
		la = lb;
		lb = j;
	}
	int off = snprintf(text, 21, "%llu", (unsigned long long)a[la - 1]);
	for (size_t j = la - 1; j-- > 0;)
		off += snprintf(text + off, 19, "%018llu", (unsigned long long)a[j]);
	*result = cJSON_CreateRaw(text);
	free(a);
	free(b);
	free(text);
	return *result ? 0 : task_err(err, errlen, "fibo: out of memory");
}

/* ---- fibr: fibo by nested futures (SCOOP's recursive example) ---- */

static long long fibr_local(long long n)
{
	long long a = 0, b = 1;
	for (long long i = 0; i < n; i++) {
		long long t = a + b;
		a = b;
		b = t;
	}
	return a;
}

/* A sub-task's value: a whole number >= 0 as JSON text. */
static int fibr_value(const char *text, long long *out)
{
	if (text == NULL || *text < '0' || *text > '9')
		return -1;
	char *end;
	errno = 0;
	*out = strtoll(text, &end, 10);
	return errno == 0 && *end == '\0' ? 0 : -1;
}

/* How long to wait for the sub-tasks: until the task's deadline when it has
 * one, never more than WORKER_TASK_FIBR_WAIT_MS. */
static int fibr_wait_ms(const worker_task_ctx *ctx)
{
	if (ctx->deadline_ms <= 0)
		return WORKER_TASK_FIBR_WAIT_MS;
	int64_t left = ctx->deadline_ms - node_clock_mono_ms();
	return left < 1 ? 1 : left > WORKER_TASK_FIBR_WAIT_MS ? WORKER_TASK_FIBR_WAIT_MS : (int)left;
}

/* 1 when e is a fibr error that says a sub-task of its own failed:
 * "fibr(N, C): sub-task fibr(M, C) (ID) failed: CAUSE". */
static int fibr_nested(const char *e)
{
	const char *p = strncmp(e, "fibr(", 5) == 0 ? strstr(e, "): ") : NULL;
	return p && strncmp(p + 3, "sub-task fibr(", 14) == 0 && strstr(p, ") failed: ");
}

/* The innermost such error a sub-task's error carries, else the error: a
 * parent names its own sub-task and that, so a failure deep in the tree
 * reads in one line of bounded length. */
static const char *fibr_cause(const char *e)
{
	while (fibr_nested(e)) {
		const char *inner = strstr(e, ") failed: ") + strlen(") failed: ");
		if (!fibr_nested(inner))
			break;
		e = inner;
	}
	return e;
}

/* The outcome of finished sub-task i, fibr(n - 1 - i, cutoff), added to *sum. */
static int fibr_take(const worker_task_ctx *ctx, const worker_sub *sub, long long n, long long cutoff, int i,
    long long *sum, char *err, size_t errlen)
{
	const char *e = ctx->error(sub), *text = ctx->result(sub);
	long long v;
	if (e)
		return task_err(err, errlen, "fibr(%lld, %lld): sub-task fibr(%lld, %lld) (%s) failed: %s", n, cutoff,
		    n - 1 - i, cutoff, ctx->sub_id(sub), fibr_cause(e));
	if (fibr_value(text, &v) != 0 || __builtin_add_overflow(*sum, v, sum))
		return task_err(err, errlen, "fibr(%lld, %lld): sub-task fibr(%lld, %lld) (%s) returned %.40s, not a "
		    "Fibonacci number", n, cutoff, n - 1 - i, cutoff, ctx->sub_id(sub), text ? text : "nothing");
	return 0;
}

/* Submit fibr(n-1) and fibr(n-2) on the task's queue, wait for both (the
 * wait lends this task's slot) and add them up. */
static int fibr_split(const worker_task_ctx *ctx, long long n, long long cutoff, cJSON **result, char *err,
    size_t errlen)
{
	worker_sub *subs[2] = {NULL, NULL};
	char why[1024];
	int rc = 0;
	for (int i = 0; i < 2 && rc == 0; i++) {
		char args[64];
		snprintf(args, sizeof args, "[%lld, %lld]", n - 1 - i, cutoff);
		if (ctx->submit(ctx, "fibr", args, NULL, &subs[i], why, sizeof why) != 0)
			rc = task_err(err, errlen, "fibr(%lld, %lld): cannot submit sub-task fibr(%lld, %lld): %s", n,
			    cutoff, n - 1 - i, cutoff, why);
	}
	if (rc == 0 && ctx->wait(ctx, subs, 2, fibr_wait_ms(ctx), why, sizeof why) != 0)
		rc = task_err(err, errlen, "fibr(%lld, %lld): %s", n, cutoff, why);
	long long sum = 0;
	for (int i = 0; i < 2 && rc == 0; i++)
		rc = fibr_take(ctx, subs[i], n, cutoff, i, &sum, err, errlen);
	for (int i = 0; i < 2; i++)
		if (subs[i])
			ctx->release(subs[i]);
	if (rc == 0)
		*result = task_json_int(sum);
	return rc;
}

static int task_fibr(const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs, cJSON **result,
    char *err, size_t errlen)
{
	long long n, cutoff = WORKER_TASK_FIBR_CUTOFF;
	if (task_check_arity("fibr", args, 2, err, errlen) != 0 ||
	    task_int("fibr", "n", task_arg(args, kwargs, 0, "n"), 0, WORKER_TASK_FIBR_MAX, &n, err, errlen) != 0)
		return -1;
	const cJSON *cv = task_arg(args, kwargs, 1, "cutoff");
	if (cv && !cJSON_IsNull(cv) &&
	    task_int("fibr", "cutoff", cv, 0, WORKER_TASK_FIBR_MAX, &cutoff, err, errlen) != 0)
		return -1;
	if (n <= cutoff || n < 2) {
		*result = task_json_int(fibr_local(n));
		return 0;
	}
	if (ctx == NULL || ctx->submit == NULL)
		return task_err(err, errlen, "fibr(%lld, %lld): n > cutoff needs sub-tasks, which only a task run by a "
		    "worker can submit", n, cutoff);
	return fibr_split(ctx, n, cutoff, result, err, errlen);
}

/* ---- pi: Monte Carlo with splitmix64 ---- */

static int task_pi(const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs, cJSON **result,
    char *err, size_t errlen)
{
	long long points, seed = -1;
	if (task_check_arity("pi", args, 2, err, errlen) != 0 ||
	    task_int("pi", "points", task_arg(args, kwargs, 0, "points"), 1, WORKER_TASK_PI_MAX, &points, err, errlen) != 0)
		return -1;
	const cJSON *sv = task_arg(args, kwargs, 1, "seed");
	if (sv != NULL && !cJSON_IsNull(sv) &&
	    task_int("pi", "seed", sv, 0, (long long)TASK_EXACT_MAX, &seed, err, errlen) != 0)
		return -1;
	uint64_t s;
	if (seed >= 0) {
		s = (uint64_t)seed;
	} else {
		node_err e = {0};
		if (node_rand_bytes(&s, sizeof s, &e) != 0)
			s = (uint64_t)time(NULL) ^ (uint64_t)(uintptr_t)&s;
	}
	/* Each 64-bit draw is a point (x, y) of two 32-bit halves; it lies in the
	 * quarter circle when x^2 + y^2 < 2^64, i.e. x^2 <= 2^64 - 1 - y^2. */
	uint64_t inside = 0;
	for (long long i = 0; i < points; i++) {
		uint64_t z = (s += 0x9E3779B97F4A7C15ull);
		z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
		z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
		z ^= z >> 31;
		uint64_t x = z >> 32, y = z & 0xffffffffu;
		inside += x * x <= ~(y * y);
	}
	cJSON *o = cJSON_CreateObject();
	if (o == NULL)
		return task_err(err, errlen, "pi: out of memory");
	cJSON_AddItemToObject(o, "inside", task_json_int((long long)inside));
	cJSON_AddItemToObject(o, "points", task_json_int(points));
	*result = o;
	return 0;
}

/* ---- sleep, echo, fail ---- */

static int task_sleep(const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs, cJSON **result,
    char *err, size_t errlen)
{
	long long ms;
	if (task_check_arity("sleep", args, 1, err, errlen) != 0 ||
	    task_int("sleep", "ms", task_arg(args, kwargs, 0, "ms"), 0, WORKER_TASK_SLEEP_MAX, &ms, err, errlen) != 0)
		return -1;
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
	*result = task_json_int(ms);
	return 0;
}

static int task_echo(const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs, cJSON **result,
    char *err, size_t errlen)
{
	if (args != NULL && !cJSON_IsArray(args))
		return task_err(err, errlen, "echo: args must be an array, got %s", task_type(args));
	int n = task_nargs(args);
	if (n == 0 && cJSON_IsObject(kwargs) && kwargs->child)
		*result = cJSON_Duplicate(kwargs, 1);
	else if (n == 0)
		*result = cJSON_CreateArray();
	else if (n == 1)
		*result = cJSON_Duplicate(args->child, 1);
	else
		*result = cJSON_Duplicate(args, 1);
	return *result ? 0 : task_err(err, errlen, "echo: out of memory");
}

static int task_fail(const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs, cJSON **result,
    char *err, size_t errlen)
{
	const cJSON *m = task_arg(args, kwargs, 0, "message");
	if (cJSON_IsString(m))
		return task_err(err, errlen, "%s", m->valuestring);
	if (m == NULL)
		return task_err(err, errlen, "failed on purpose (task fail)");
	char *text = cJSON_PrintUnformatted(m);
	task_err(err, errlen, "%s", text ? text : "failed on purpose (task fail)");
	cJSON_free(text);
	return -1;
}

/* ---- crawl: HTTP GET with nng's client, then <a href> extraction ---- */

static int link_ci_prefix(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word);
	return (size_t)(end - p) >= n && strncasecmp(p, word, n) == 0;
}

static const char *link_find(const char *p, const char *end, const char *word)
{
	size_t n = strlen(word);
	for (; (size_t)(end - p) >= n; p++)
		if (strncasecmp(p, word, n) == 0)
			return p;
	return NULL;
}

static int link_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f';
}

/* Parse the attributes of the tag whose name ends at p; stores the href
 * value (if any) in *v, *vn; returns where the tag ends (after '>'). */
static const char *link_tag(const char *p, const char *end, const char **v, size_t *vn)
{
	*v = NULL;
	while (p < end) {
		while (p < end && (link_space(*p) || *p == '/'))
			p++;
		if (p >= end)
			break;
		if (*p == '>')
			return p + 1;
		const char *name = p;
		while (p < end && !link_space(*p) && *p != '=' && *p != '>' && *p != '/')
			p++;
		size_t nn = (size_t)(p - name);
		while (p < end && link_space(*p))
			p++;
		if (p >= end || *p != '=')
			continue; /* an attribute without a value */
		p++;
		while (p < end && link_space(*p))
			p++;
		const char *val;
		size_t vl;
		if (p < end && (*p == '"' || *p == '\'')) {
			char q = *p++;
			val = p;
			const char *close = memchr(p, q, (size_t)(end - p));
			if (close == NULL)
				return end; /* unterminated: the page is cut off */
			vl = (size_t)(close - val);
			p = close + 1;
		} else {
			val = p;
			while (p < end && !link_space(*p) && *p != '>')
				p++;
			vl = (size_t)(p - val);
		}
		if (*v == NULL && nn == 4 && strncasecmp(name, "href", 4) == 0) {
			*v = val;
			*vn = vl;
		}
	}
	return end;
}

int worker_task_links(const char *html, size_t len, int max, cJSON *links)
{
	const char *p = html, *end = html + len;
	int added = 0;
	char *buf = NULL;
	while (added < max && p < end && (p = memchr(p, '<', (size_t)(end - p))) != NULL) {
		if (link_ci_prefix(p, end, "<!--")) {
			const char *c = link_find(p + 4, end, "-->");
			p = c ? c + 3 : end;
			continue;
		}
		if (link_ci_prefix(p, end, "<script") || link_ci_prefix(p, end, "<style")) {
			int script = (p[2] | 0x20) == 'c';
			const char *c = link_find(p + 6, end, script ? "</script" : "</style");
			p = c ? c + 7 : end;
			continue;
		}
		if (end - p < 3 || (p[1] | 0x20) != 'a' || !(link_space(p[2]) || p[2] == '>' || p[2] == '/')) {
			p++;
			continue;
		}
		const char *v;
		size_t vn = 0;
		p = link_tag(p + 2, end, &v, &vn);
		if (v == NULL || vn > WORKER_TASK_HREF_MAX)
			continue;
		if (buf == NULL && (buf = malloc(WORKER_TASK_HREF_MAX + 1)) == NULL)
			break;
		memcpy(buf, v, vn);
		buf[vn] = '\0';
		cJSON *s = cJSON_CreateString(buf);
		if (s == NULL)
			break;
		cJSON_AddItemToArray(links, s);
		added++;
	}
	free(buf);
	return added;
}

/* The body of a chunked response, decoded as it arrives. */
typedef struct crawl_dechunk {
	enum { DC_SIZE, DC_DATA, DC_DATA_END, DC_TRAILER, DC_DONE, DC_BAD } state;
	size_t left;    /* bytes of the current chunk still to come */
	char line[40];  /* the chunk-size line so far */
	size_t ll;
} crawl_dechunk;

typedef struct crawl_body {
	char *buf;
	size_t len, cap;
	int truncated; /* more than WORKER_TASK_CRAWL_BODY_MAX bytes */
} crawl_body;

static void crawl_append(crawl_body *b, const char *p, size_t n)
{
	if (n > WORKER_TASK_CRAWL_BODY_MAX - b->len) {
		n = WORKER_TASK_CRAWL_BODY_MAX - b->len;
		b->truncated = 1;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;
		while (cap < b->len + n)
			cap *= 2;
		char *nb = realloc(b->buf, cap);
		if (nb == NULL) {
			b->truncated = 1;
			return;
		}
		b->buf = nb;
		b->cap = cap;
	}
	memcpy(b->buf + b->len, p, n);
	b->len += n;
}

static void crawl_dechunk_feed(crawl_dechunk *d, crawl_body *b, const char *p, size_t n)
{
	const char *end = p + n;
	while (p < end && d->state != DC_DONE && d->state != DC_BAD) {
		switch (d->state) {
		case DC_SIZE:
			if (*p == '\n') {
				d->line[d->ll < sizeof d->line ? d->ll : sizeof d->line - 1] = '\0';
				char *e;
				errno = 0;
				unsigned long long size = strtoull(d->line, &e, 16);
				if (e == d->line || errno != 0 || (*e != '\0' && *e != ';' && *e != '\r' && *e != ' ' && *e != '\t'))
					d->state = DC_BAD;
				else if (size == 0)
					d->state = DC_TRAILER;
				else {
					d->left = size;
					d->state = DC_DATA;
				}
				d->ll = 0;
			} else if (d->ll < sizeof d->line - 1) {
				d->line[d->ll++] = *p;
			}
			p++;
			break;
		case DC_DATA: {
			size_t k = (size_t)(end - p) < d->left ? (size_t)(end - p) : d->left;
			crawl_append(b, p, k);
			p += k;
			d->left -= k;
			if (d->left == 0)
				d->state = DC_DATA_END;
			break;
		}
		case DC_DATA_END:
			if (*p++ == '\n')
				d->state = DC_SIZE;
			break;
		case DC_TRAILER:
			if (*p == '\n') {
				if (d->ll == 0)
					d->state = DC_DONE;
				d->ll = 0;
			} else if (*p != '\r') {
				d->ll++;
			}
			p++;
			break;
		default:
			return;
		}
	}
}

typedef struct crawl_req {
	const char *url;
	int timeout_ms;
	struct timespec deadline;
	nng_aio *aio;
	char *err;
	size_t errlen;
} crawl_req;

static nng_duration crawl_left(const crawl_req *c)
{
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	long long ms = (long long)(c->deadline.tv_sec - now.tv_sec) * 1000 + (c->deadline.tv_nsec - now.tv_nsec) / 1000000;
	return ms > 0 ? (nng_duration)ms : 1;
}

/* Wait for the operation just started on c->aio; describe a failure. */
static int crawl_wait(crawl_req *c, const char *doing)
{
	nng_aio_wait(c->aio);
	int rv = nng_aio_result(c->aio);
	if (rv == 0)
		return 0;
	if (rv == NNG_ETIMEDOUT)
		return task_err(c->err, c->errlen, "crawl %s: timed out after %g s while %s", c->url, c->timeout_ms / 1000.0, doing);
	return task_err(c->err, c->errlen, "crawl %s: %s while %s", c->url, nng_strerror(rv), doing);
}

static int crawl_read_body(crawl_req *c, nng_http_conn *conn, nng_http_res *res, crawl_body *body)
{
	const char *te = nng_http_res_get_header(res, "Transfer-Encoding");
	const char *cl = nng_http_res_get_header(res, "Content-Length");
	int chunked = te && strcasestr(te, "chunked") != NULL;
	long long length = -1; /* -1: until the server closes */
	if (!chunked && cl) {
		char *e;
		length = strtoll(cl, &e, 10);
		if (e == cl || length < 0)
			length = -1;
	}
	crawl_dechunk dc = {0};
	char *tmp = malloc(65536);
	if (tmp == NULL)
		return task_err(c->err, c->errlen, "crawl: out of memory");
	int rc = 0;
	size_t got_total = 0;
	while (!body->truncated) {
		if (chunked && (dc.state == DC_DONE || dc.state == DC_BAD))
			break;
		if (!chunked && length >= 0 && got_total >= (unsigned long long)length)
			break;
		nng_iov iov = {tmp, 65536};
		nng_aio_set_iov(c->aio, 1, &iov);
		nng_aio_set_timeout(c->aio, crawl_left(c));
		nng_http_conn_read(conn, c->aio);
		nng_aio_wait(c->aio);
		int rv = nng_aio_result(c->aio);
		if (rv == NNG_ECLOSED || rv == NNG_ECONNSHUT || rv == NNG_ECONNRESET)
			break; /* the server closed: the body is what came */
		if (rv != 0) {
			rc = crawl_wait(c, "reading the page");
			break;
		}
		size_t n = nng_aio_count(c->aio);
		if (n == 0)
			break;
		got_total += n;
		if (chunked)
			crawl_dechunk_feed(&dc, body, tmp, n);
		else
			crawl_append(body, tmp, length >= 0 && got_total > (unsigned long long)length ? n - (size_t)(got_total - (unsigned long long)length) : n);
	}
	free(tmp);
	return rc;
}

static int crawl_get(crawl_req *c, int *status, crawl_body *body)
{
	nng_url *u = NULL;
	nng_http_client *client = NULL;
	nng_http_conn *conn = NULL;
	nng_http_req *req = NULL;
	nng_http_res *res = NULL;
	nng_tls_config *tls = NULL;
	int rc = -1, rv;
	if ((rv = nng_url_parse(&u, c->url)) != 0) {
		task_err(c->err, c->errlen, "crawl: %s is not a valid URL: %s", c->url, nng_strerror(rv));
		goto done;
	}
	int https = strcmp(u->u_scheme, "https") == 0;
	if (strcmp(u->u_scheme, "http") != 0 && !https) {
		task_err(c->err, c->errlen, "crawl: %s: only http:// and https:// URLs can be fetched", c->url);
		goto done;
	}
	if ((rv = nng_http_client_alloc(&client, u)) != 0) {
		task_err(c->err, c->errlen, "crawl %s: %s", c->url, nng_strerror(rv));
		goto done;
	}
	if (https) {
		if ((rv = nng_tls_config_alloc(&tls, NNG_TLS_MODE_CLIENT)) != 0 ||
		    (rv = nng_tls_config_server_name(tls, u->u_hostname)) != 0 ||
		    (rv = nng_tls_config_ca_file(tls, "/etc/ssl/certs/ca-certificates.crt")) != 0 ||
		    (rv = nng_tls_config_auth_mode(tls, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
		    (rv = nng_http_client_set_tls(client, tls)) != 0) {
			task_err(c->err, c->errlen, "crawl %s: cannot set up TLS: %s", c->url, nng_strerror(rv));
			goto done;
		}
	}
	if ((rv = nng_http_req_alloc(&req, u)) != 0 || (rv = nng_http_res_alloc(&res)) != 0) {
		task_err(c->err, c->errlen, "crawl %s: %s", c->url, nng_strerror(rv));
		goto done;
	}
	if (u->u_requri == NULL || u->u_requri[0] == '\0')
		nng_http_req_set_uri(req, "/");
	nng_http_req_set_header(req, "User-Agent", "node-crawl/1");
	nng_http_req_set_header(req, "Accept", "text/html, */*");
	nng_http_req_set_header(req, "Connection", "close");

	nng_aio_set_timeout(c->aio, crawl_left(c));
	nng_http_client_connect(client, c->aio);
	if (crawl_wait(c, "connecting") != 0)
		goto done;
	conn = nng_aio_get_output(c->aio, 0);
	nng_aio_set_timeout(c->aio, crawl_left(c));
	nng_http_conn_write_req(conn, req, c->aio);
	if (crawl_wait(c, "sending the request") != 0)
		goto done;
	nng_aio_set_timeout(c->aio, crawl_left(c));
	nng_http_conn_read_res(conn, res, c->aio);
	if (crawl_wait(c, "waiting for the response") != 0)
		goto done;
	*status = nng_http_res_get_status(res);
	if (*status < 200 || *status > 299) {
		const char *reason = nng_http_res_get_reason(res);
		const char *loc = nng_http_res_get_header(res, "Location");
		task_err(c->err, c->errlen, "crawl %s: HTTP %d %s%s%s%s", c->url, *status, reason ? reason : "",
		    loc ? " (Location: " : "", loc ? loc : "", loc ? ")" : "");
		goto done;
	}
	rc = crawl_read_body(c, conn, res, body);
done:
	if (conn)
		nng_http_conn_close(conn);
	nng_http_req_free(req);
	nng_http_res_free(res);
	if (client)
		nng_http_client_free(client);
	if (tls)
		nng_tls_config_free(tls);
	nng_url_free(u);
	return rc;
}

static int task_crawl(const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs, cJSON **result,
    char *err, size_t errlen)
{
	if (task_check_arity("crawl", args, 2, err, errlen) != 0)
		return -1;
	const cJSON *uv = task_arg(args, kwargs, 0, "url");
	if (!cJSON_IsString(uv) || uv->valuestring[0] == '\0' || strlen(uv->valuestring) > 4096)
		return task_err(err, errlen, "crawl: url must be a string of 1 to 4096 characters, got %s", task_type(uv));
	long long n = 10, timeout = WORKER_TASK_CRAWL_TIMEOUT_MS;
	const cJSON *nv = task_arg(args, kwargs, 1, "n");
	if (nv && task_int("crawl", "n", nv, 0, WORKER_TASK_CRAWL_LINKS_MAX, &n, err, errlen) != 0)
		return -1;
	const cJSON *tv = cJSON_IsObject(kwargs) ? cJSON_GetObjectItemCaseSensitive(kwargs, "timeout_ms") : NULL;
	if (tv && task_int("crawl", "timeout_ms", tv, 1, 600000, &timeout, err, errlen) != 0)
		return -1;
	crawl_req c = {.url = uv->valuestring, .timeout_ms = (int)timeout, .err = err, .errlen = errlen};
	clock_gettime(CLOCK_MONOTONIC, &c.deadline);
	c.deadline.tv_sec += timeout / 1000;
	c.deadline.tv_nsec += (timeout % 1000) * 1000000L;
	if (c.deadline.tv_nsec >= 1000000000L) {
		c.deadline.tv_sec++;
		c.deadline.tv_nsec -= 1000000000L;
	}
	int rv = nng_aio_alloc(&c.aio, NULL, NULL);
	if (rv != 0)
		return task_err(err, errlen, "crawl: %s", nng_strerror(rv));
	int status = 0;
	crawl_body body = {0};
	int rc = crawl_get(&c, &status, &body);
	nng_aio_free(c.aio);
	if (rc == 0) {
		cJSON *o = cJSON_CreateObject(), *links = cJSON_CreateArray();
		if (o == NULL || links == NULL) {
			cJSON_Delete(o);
			cJSON_Delete(links);
			rc = task_err(err, errlen, "crawl: out of memory");
		} else {
			worker_task_links(body.buf ? body.buf : "", body.len, (int)n, links);
			cJSON_AddStringToObject(o, "url", uv->valuestring);
			cJSON_AddNumberToObject(o, "status", status);
			cJSON_AddItemToObject(o, "links", links);
			*result = o;
		}
	}
	free(body.buf);
	return rc;
}

/* ---- calling a task: its checks and the fix-ups every call gets ---- */

/* Call t: a result of NULL is out of memory, a failure always has a message. */
static int task_call(const worker_task *t, const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs,
    cJSON **result, char *err, size_t errlen)
{
	*result = NULL;
	if (err && errlen)
		err[0] = '\0';
	int rc = t->fn(ctx, args, kwargs, result, err, errlen);
	if (rc == 0 && *result == NULL)
		rc = task_err(err, errlen, "%s: out of memory", t->name);
	if (rc != 0) {
		cJSON_Delete(*result);
		*result = NULL;
		if (err && errlen && err[0] == '\0')
			snprintf(err, errlen, "%s failed", t->name);
	}
	return rc;
}

/* ---- chunk: one task over many argument lists in one delivery ---- */

/* Every item is an argument array or null, and there are not too many. */
static int chunk_check(const cJSON *items, char *err, size_t errlen)
{
	char what[96];
	long long i = 0;
	for (const cJSON *e = items->child; e; e = e->next, i++) {
		if (i >= WORKER_TASK_LIST_MAX)
			return task_err(err, errlen, "chunk: more than %d items", WORKER_TASK_LIST_MAX);
		if (!cJSON_IsArray(e) && !cJSON_IsNull(e))
			return task_err(err, errlen, "chunk: item %lld must be an array of arguments or null, got %s",
			    i, task_what(e, what, sizeof what));
	}
	return 0;
}

/* Record item i's failure in the "e" object of o (made on the first). */
static int chunk_fail(cJSON *o, cJSON **errs, long long i, const char *msg)
{
	char key[24];
	if (*errs == NULL && (*errs = cJSON_AddObjectToObject(o, "e")) == NULL)
		return -1;
	snprintf(key, sizeof key, "%lld", i);
	cJSON *m = cJSON_CreateString(msg);
	if (m == NULL)
		return -1;
	cJSON_AddItemToObject(*errs, key, m);
	return 0;
}

/* The values' text for the text form: integers the fast way (cJSON prints
 * every number with printf and checks it with scanf), raw values as they
 * are, the rest with cJSON. */
typedef struct chunk_text {
	char *buf;
	size_t len, cap;
} chunk_text;

static int chunk_put(chunk_text *t, const char *s, size_t n)
{
	if (t->len + n + 2 > t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 4096;
		while (cap < t->len + n + 2)
			cap *= 2;
		char *b = realloc(t->buf, cap);
		if (b == NULL)
			return -1;
		t->buf = b;
		t->cap = cap;
	}
	memcpy(t->buf + t->len, s, n);
	t->len += n;
	return 0;
}

static int chunk_put_value(chunk_text *t, const cJSON *v)
{
	char num[32];
	if (cJSON_IsNumber(v) && fabs(v->valuedouble) <= TASK_EXACT_MAX && v->valuedouble == floor(v->valuedouble)) {
		int n = snprintf(num, sizeof num, "%lld", (long long)v->valuedouble);
		return chunk_put(t, num, (size_t)n);
	}
	if (cJSON_IsRaw(v))
		return chunk_put(t, v->valuestring, strlen(v->valuestring));
	char *p = cJSON_PrintUnformatted(v);
	int rc = p ? chunk_put(t, p, strlen(p)) : -1;
	cJSON_free(p);
	return rc;
}

/* Run t over the items, in order: {"v": [values, null for failures], "e":
 * {"index": message}} ("e" only when some failed). In the text form (the
 * items came as the text of a JSON string) "v" is the values' JSON text as
 * a string, so the broker and the client pass numbers on without parsing. */
static int chunk_run(const worker_task *t, const worker_task_ctx *ctx, const cJSON *items, const cJSON *kwargs,
    int as_text, cJSON **result, char *err, size_t errlen)
{
	cJSON *o = cJSON_CreateObject(), *v = o && !as_text ? cJSON_AddArrayToObject(o, "v") : NULL, *errs = NULL;
	chunk_text text = {0};
	char ierr[1024];
	int oom = o == NULL || (v == NULL && !as_text) || (as_text && chunk_put(&text, "[", 1) != 0);
	long long i = 0;
	for (const cJSON *it = oom ? NULL : items->child; it; it = it->next, i++) {
		cJSON *r;
		if (task_call(t, ctx, cJSON_IsNull(it) ? NULL : it, kwargs, &r, ierr, sizeof ierr) != 0 &&
		    ((r = cJSON_CreateNull()) == NULL || chunk_fail(o, &errs, i, ierr) != 0)) {
			cJSON_Delete(r);
			oom = 1;
			break;
		}
		if (!as_text) {
			cJSON_AddItemToArray(v, r);
			continue;
		}
		oom = (i > 0 && chunk_put(&text, ",", 1) != 0) || chunk_put_value(&text, r) != 0;
		cJSON_Delete(r);
		if (oom)
			break;
	}
	if (!oom && as_text) {
		text.buf[text.len++] = ']';
		text.buf[text.len] = '\0';
		cJSON *s = cJSON_CreateString(text.buf);
		oom = s == NULL;
		if (s)
			cJSON_AddItemToObject(o, "v", s);
	}
	free(text.buf);
	if (oom) {
		cJSON_Delete(o);
		return task_err(err, errlen, "chunk: out of memory after %lld items", i);
	}
	*result = o;
	return 0;
}

static int task_chunk(const worker_task_ctx *ctx, const cJSON *args, const cJSON *kwargs, cJSON **result,
    char *err, size_t errlen)
{
	char what[96];
	if (task_check_arity("chunk", args, 2, err, errlen) != 0)
		return -1;
	const cJSON *name = task_arg(args, NULL, 0, NULL), *items = task_arg(args, NULL, 1, NULL);
	if (!cJSON_IsString(name))
		return task_err(err, errlen, "chunk: the first argument must be a task name (a string), got %s",
		    task_what(name, what, sizeof what));
	if (strcmp(name->valuestring, "chunk") == 0)
		return task_err(err, errlen, "chunk: cannot run chunk itself (chunks do not nest)");
	const worker_task *t = worker_task_find(name->valuestring);
	if (t == NULL)
		return task_err(err, errlen, "chunk: unknown task \"%.128s\"", name->valuestring);
	cJSON *parsed = NULL;
	if (cJSON_IsString(items) && !cJSON_IsArray(parsed = cJSON_Parse(items->valuestring))) {
		cJSON_Delete(parsed);
		return task_err(err, errlen, "chunk: the second argument, as a string, must hold a JSON array of argument lists");
	}
	if (parsed)
		items = parsed;
	int rc;
	if (!cJSON_IsArray(items))
		rc = task_err(err, errlen, "chunk: the second argument must be an array of argument lists, got %s",
		    task_what(items, what, sizeof what));
	else if ((rc = chunk_check(items, err, errlen)) == 0)
		rc = chunk_run(t, ctx, items, kwargs, parsed != NULL, result, err, errlen);
	cJSON_Delete(parsed);
	return rc;
}

/* ---- the table ---- */

const worker_task worker_tasks[] = {
	{"add", task_add, "add(a, b): a + b (integers stay exact)"},
	{"sum", task_sum, "sum(list): the sum of a list of numbers"},
	{"sqrt", task_sqrt, "sqrt(x): the square root of x >= 0"},
	{"fibo", task_fibo, "fibo(n): the n-th Fibonacci number, exact, 0 <= n <= 100000"},
	{"fibr", task_fibr, "fibr(n, cutoff=15): fibo(n), n <= 90, by nested sub-tasks n-1 and n-2"},
	{"pi", task_pi, "pi(points, seed?): Monte Carlo, {\"inside\": k, \"points\": n}; pi ~ 4k/n"},
	{"sleep", task_sleep, "sleep(ms): sleep ms milliseconds (at most 3600000), return ms"},
	{"echo", task_echo, "echo(...): return the arguments (the only one, or the array)"},
	{"fail", task_fail, "fail(message): always fail with message"},
	{"crawl", task_crawl, "crawl(url, n=10): HTTP GET url, return {url, status, links: first n <a href>}"},
	{"chunk", task_chunk, "chunk(name, [args0, ...] or its JSON text): name on each, {\"v\": [values] or their text, \"e\": {index: error}}"},
	{"mr.map", mr_task_map, "mr.map({job_id, job, task, attempt, input}): one map task of a MapReduce job (node-tasks(7))"},
	{"mr.reduce", mr_task_reduce, "mr.reduce({job_id, job, partition, attempt, sources}): one reduce task of a MapReduce job"},
	{NULL, NULL, NULL},
};

const worker_task *worker_task_find(const char *name)
{
	if (name == NULL)
		return NULL;
	for (const worker_task *t = worker_tasks; t->name; t++)
		if (strcmp(t->name, name) == 0)
			return t;
	return NULL;
}

int worker_task_run(const worker_task_ctx *ctx, const char *name, const cJSON *args, const cJSON *kwargs,
    cJSON **result, char *err, size_t errlen)
{
	*result = NULL;
	const worker_task *t = worker_task_find(name);
	if (t == NULL)
		return task_err(err, errlen, "unknown task \"%.128s\"", name ? name : "");
	if (kwargs != NULL && !cJSON_IsObject(kwargs))
		return task_err(err, errlen, "%s: kwargs must be an object, got %s", t->name, task_type(kwargs));
	return task_call(t, ctx, args, kwargs, result, err, errlen);
}
