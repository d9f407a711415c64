/* Shared plumbing of the task-queue client commands; see taskcli.h. */
#include "core/clock.h"
#include "taskcli.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int taskcli_want_color(int fd)
{
	const char *nc = getenv("NO_COLOR");
	const char *term = getenv("TERM");
	if (nc && *nc)
		return 0;
	if (term && strcmp(term, "dumb") == 0)
		return 0;
	return isatty(fd);
}

void taskcli_init(taskcli *t, node_ctx *ctx, const node_args *a)
{
	memset(t, 0, sizeof *t);
	t->ctx = ctx;
	t->json = node_args_has(a, "json");
	t->color = taskcli_want_color(1);
	t->ecolor = taskcli_want_color(2);
	t->call_ms = ctx->timeout_ms > 0 ? ctx->timeout_ms : 5000;
}

int taskcli_open(taskcli *t, node_ctx *ctx, const node_args *a)
{
	const char *url = node_args_get(a, "broker");
	if (url == NULL || *url == '\0') {
		node_err err = {0};
		if (node_conf_role_url(&ctx->conf, "broker", "listen", &url, &err) != 0) {
			taskcli_init(t, ctx, a);
			taskcli_warn(t, "%s, or give --broker URL", err.msg);
			return NODE_EXIT_CONFIG;
		}
	}
	return taskcli_open_url(t, ctx, a, url, "broker");
}

int taskcli_open_url(taskcli *t, node_ctx *ctx, const node_args *a, const char *url, const char *peer)
{
	taskcli_init(t, ctx, a);
	t->url = url;
	node_err err = {0};
	ncl_err e = {0};
	if (ncl_open_peer(&t->conn, url, &ctx->conf, peer, &e) != 0) {
		t->conn = NULL;
		taskcli_from_ncl(&err, &e);
		if (err.rc == NODE_EINVAL) { /* a URL nng does not understand */
			taskcli_warn(t, "%s", err.msg);
			return NODE_EXIT_USAGE;
		}
		return taskcli_fail(t, &err);
	}
	t->url = ncl_url(t->conn);
	return 0;
}

void taskcli_close(taskcli *t)
{
	if (t->conn)
		ncl_close(t->conn);
	t->conn = NULL;
	fflush(stdout);
}

void taskcli_from_ncl(node_err *out, const ncl_err *e)
{
	int rc = e->code == NCL_ENOTFOUND && e->remote[0] ? NODE_EREMOTE : e->code;
	node_err_set(out, rc > NCL_ENOTFOUND || rc <= 0 ? NODE_EIO : rc, e->remote[0] ? e->remote : NODE_ERR_INTERNAL,
	    "%s", e->msg);
}

int taskcli_exit_for(const node_err *err)
{
	if (err->rc == NODE_ETIMEDOUT || err->rc == NODE_ECLOSED)
		return NODE_EXIT_TIMEOUT;
	if (err->rc == NODE_EREMOTE && strcmp(err->code, NODE_ERR_TIMEOUT) == 0)
		return NODE_EXIT_TIMEOUT;
	return NODE_EXIT_FAIL;
}

static const char *taskcli_name(const taskcli *t)
{
	return t && t->ctx && t->ctx->cmd ? t->ctx->cmd->name : "";
}

/* "node CMD: <formatted>" without the newline. stdout goes first so that
 * what was printed before the message stays before it. */
static void taskcli_vsay(const taskcli *t, const char *fmt, va_list ap)
{
	fflush(stdout);
	fprintf(stderr, "node %s: ", taskcli_name(t));
	vfprintf(stderr, fmt, ap);
}

void taskcli_warn(const taskcli *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	taskcli_vsay(t, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int taskcli_fail(const taskcli *t, const node_err *err)
{
	taskcli_warn(t, "%s", err->msg);
	return taskcli_exit_for(err);
}

int taskcli_usage(const taskcli *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	taskcli_vsay(t, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n(see node %s --help)\n", taskcli_name(t));
	return NODE_EXIT_USAGE;
}

cJSON *taskcli_req(const char *op)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "op", op);
	return r;
}

int taskcli_call(taskcli *t, const cJSON *req, cJSON **reply)
{
	node_err err = {0};
	ncl_err e = {0};
	int rc = ncl_call(t->conn, req, t->call_ms, reply, &e);
	if (rc == 0)
		return 0;
	taskcli_from_ncl(&err, &e);
	return taskcli_fail(t, &err);
}

int taskcli_query(taskcli *t, node_ctx *ctx, const node_args *a, cJSON *req, cJSON **reply)
{
	*reply = NULL;
	int rc = taskcli_open(t, ctx, a);
	if (rc == 0)
		rc = taskcli_call(t, req, reply);
	cJSON_Delete(req);
	if (rc != 0)
		taskcli_close(t);
	return rc;
}

int taskcli_finish(taskcli *t, cJSON *reply, int rc)
{
	cJSON_Delete(reply);
	taskcli_close(t);
	return rc;
}

int taskcli_cond_wait_ms(pthread_cond_t *cond, pthread_mutex_t *lock, long ms)
{
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	return pthread_cond_timedwait(cond, lock, &until);
}

/* ---- waiting for results ---- */

long long taskcli_wait_s(const node_args *a)
{
	const char *s = node_args_get(a, "timeout");
	if (!node_args_has(a, "wait") || s == NULL)
		return -1;
	return strtoll(s, NULL, 10);
}

void taskcli_wait_calls(taskcli *t)
{
	t->call_ms = (int)node_conf_int(&t->ctx->conf, "defaults.timeout_ms", 5000);
}

int64_t taskcli_deadline(long long wait_s)
{
	return wait_s >= 0 ? node_clock_mono_ms() + wait_s * 1000 : 0;
}

cJSON *taskcli_get_req(long long wait_ms, cJSON **ids)
{
	cJSON *req = taskcli_req("get");
	*ids = cJSON_AddArrayToObject(req, "ids");
	cJSON_AddNumberToObject(req, "wait_ms", (double)wait_ms);
	return req;
}

/* ---- replies ---- */

const char *taskcli_str(const cJSON *o, const char *key)
{
	return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

double taskcli_num(const cJSON *o, const char *key, double fallback)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : fallback;
}

int taskcli_has_num(const cJSON *o, const char *key)
{
	return cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, key));
}

void taskcli_fmt_int(const cJSON *o, const char *key, char *out, size_t n)
{
	if (taskcli_has_num(o, key))
		snprintf(out, n, "%.0f", taskcli_num(o, key, 0));
	else
		snprintf(out, n, "-");
}

void taskcli_print_json(FILE *f, const cJSON *v)
{
	char *s = cJSON_PrintUnformatted(v);
	if (s) {
		fputs(s, f);
		cJSON_free(s);
	} else {
		fputs("null", f);
	}
	fputc('\n', f);
}

void taskcli_put_jstr(FILE *f, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	fputc('"', f);
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", f); break;
		case '\\': fputs("\\\\", f); break;
		case '\n': fputs("\\n", f); break;
		case '\r': fputs("\\r", f); break;
		case '\t': fputs("\\t", f); break;
		default:
			if (*p < 0x20) {
				fputs("\\u00", f);
				fputc(hex[*p >> 4], f);
				fputc(hex[*p & 15], f);
			} else {
				fputc(*p, f);
			}
		}
	}
	fputc('"', f);
}

void taskcli_put_id_line(FILE *f, const char *id, const char *state)
{
	fputs("{\"id\":", f);
	taskcli_put_jstr(f, id);
	if (state) {
		fputs(",\"state\":", f);
		taskcli_put_jstr(f, state);
	}
	fputs("}\n", f);
}

void taskcli_put_result(FILE *f, const cJSON *entry)
{
	/* value_json is the exact text when the value holds numbers a double cannot. */
	const char *exact = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(entry, "value_json"));
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(entry, "value");
	if (exact && !cJSON_IsString(v))
		fputs(exact, f);
	else
		taskcli_put_value(f, v);
}

void taskcli_put_value(FILE *f, const cJSON *v)
{
	if (v == NULL) {
		fputs("null", f);
		return;
	}
	if (cJSON_IsString(v)) {
		fputs(v->valuestring, f);
		return;
	}
	char buf[256];
	if (cJSON_IsNumber(v) || cJSON_IsBool(v) || cJSON_IsNull(v)) {
		if (cJSON_PrintPreallocated((cJSON *)v, buf, (int)sizeof buf, 0)) {
			fputs(buf, f);
			return;
		}
	}
	char *s = cJSON_PrintUnformatted(v);
	fputs(s ? s : "null", f);
	cJSON_free(s);
}

void taskcli_print_result(const taskcli *t, const char *id, const cJSON *entry, int named)
{
	const char *state = taskcli_str(entry, "state");
	if (t->json) {
		taskcli_print_json(stdout, entry);
	} else if (state && strcmp(state, "succeeded") == 0) {
		if (named) {
			fputs(id, stdout);
			fputs(": ", stdout);
		}
		taskcli_put_result(stdout, entry);
		fputc('\n', stdout);
	} else {
		const char *msg = taskcli_str(entry, "error");
		fflush(stdout);
		fprintf(stderr, "%s: %s%s%s: %s\n", id, taskcli_color_on(t->ecolor, state), state ? state : "?",
		    taskcli_color_off(t->ecolor), msg ? msg : "(no error message)");
	}
}

int taskcli_state_finished(const char *state)
{
	return state && (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 || strcmp(state, "dead") == 0 ||
	                    strcmp(state, "revoked") == 0);
}

const char *taskcli_color_on(int color, const char *state)
{
	if (!color || state == NULL)
		return "";
	if (strcmp(state, "succeeded") == 0 || strcmp(state, "yes") == 0)
		return "\033[32m";
	if (strcmp(state, "failed") == 0 || strcmp(state, "dead") == 0 || strcmp(state, "no") == 0)
		return "\033[31m";
	if (strcmp(state, "started") == 0)
		return "\033[36m";
	if (strcmp(state, "revoked") == 0)
		return "\033[33m";
	if (strcmp(state, "queued") == 0 || strcmp(state, "pending") == 0)
		return "\033[33m";
	if (strcmp(state, "bold") == 0)
		return "\033[1m";
	return "";
}

const char *taskcli_color_off(int color)
{
	return color ? "\033[0m" : "";
}

void taskcli_iso_ms(int64_t ms, char *out, size_t n)
{
	time_t s = (time_t)(ms / 1000);
	int frac = (int)(ms % 1000);
	if (frac < 0) {
		frac += 1000;
		s--;
	}
	struct tm tm;
	gmtime_r(&s, &tm);
	char day[64];
	strftime(day, sizeof day, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, n, "%s.%03dZ", day, frac);
}

void taskcli_duration(double ms, char *out, size_t n)
{
	if (ms < 0)
		ms = 0;
	if (ms == 0)
		snprintf(out, n, "0 ms");
	else if (ms < 1)
		snprintf(out, n, "%.0f us", ms * 1000);
	else if (ms < 100)
		snprintf(out, n, "%.3g ms", ms);
	else if (ms < 1000)
		snprintf(out, n, "%.0f ms", ms);
	else if (ms < 60000)
		snprintf(out, n, "%.3g s", ms / 1000);
	else if (ms < 3600000) {
		long long s = (long long)(ms / 1000);
		snprintf(out, n, "%lld min %lld s", s / 60, s % 60);
	} else if (ms < 86400000.0) {
		long long m = (long long)(ms / 60000);
		snprintf(out, n, "%lld h %lld min", m / 60, m % 60);
	} else {
		long long h = (long long)(ms / 3600000);
		snprintf(out, n, "%lld d %lld h", h / 24, h % 24);
	}
}

cJSON *taskcli_parse_arg(const char *s)
{
	const char *end = NULL;
	cJSON *v = cJSON_ParseWithOpts(s, &end, 1);
	if (v != NULL)
		return v;
	return cJSON_CreateString(s);
}

/* ---- tables ---- */

void taskcli_table_init(taskcli_table *tb, int ncols, const char *align, const char *const *heads)
{
	memset(tb, 0, sizeof *tb);
	tb->ncols = ncols;
	tb->align = align;
	taskcli_table_row(tb, heads);
}

static char *taskcli_strdup(const char *s)
{
	size_t n = strlen(s);
	char *d = malloc(n + 1);
	if (d)
		memcpy(d, s, n + 1);
	return d;
}

void taskcli_table_row(taskcli_table *tb, const char *const *cells)
{
	if (tb->rows == tb->cap) {
		int cap = tb->cap ? tb->cap * 2 : 16;
		char **c = realloc(tb->cells, (size_t)cap * (size_t)tb->ncols * sizeof *c);
		if (c == NULL)
			return;
		tb->cells = c;
		tb->cap = cap;
	}
	for (int i = 0; i < tb->ncols; i++) {
		const char *s = cells[i] ? cells[i] : "-";
		/* One line per row: newlines and tabs in a cell become spaces. */
		char *d = taskcli_strdup(s);
		for (char *p = d; p && *p; p++)
			if (*p == '\n' || *p == '\r' || *p == '\t')
				*p = ' ';
		tb->cells[tb->rows * tb->ncols + i] = d;
	}
	tb->rows++;
}

/* Display width: count UTF-8 lead bytes, not bytes. */
static int taskcli_width(const char *s)
{
	int w = 0;
	for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++)
		if ((*p & 0xC0) != 0x80)
			w++;
	return w;
}

void taskcli_table_print(const taskcli_table *tb, FILE *f)
{
	int *w = calloc((size_t)tb->ncols, sizeof *w);
	if (w == NULL)
		return;
	for (int r = 0; r < tb->rows; r++)
		for (int c = 0; c < tb->ncols; c++) {
			int x = taskcli_width(tb->cells[r * tb->ncols + c]);
			if (x > w[c])
				w[c] = x;
		}
	int color = (f == stdout) ? taskcli_want_color(1) : 0;
	for (int r = 0; r < tb->rows; r++) {
		if (r == 0)
			fputs(taskcli_color_on(color, "bold"), f);
		for (int c = 0; c < tb->ncols; c++) {
			const char *s = tb->cells[r * tb->ncols + c];
			int pad = w[c] - taskcli_width(s);
			int last = c == tb->ncols - 1;
			int right = tb->align && tb->align[c] == 'r';
			if (c > 0)
				fputs("  ", f);
			if (right)
				fprintf(f, "%*s", pad, "");
			fputs(s, f);
			if (!right && !last)
				fprintf(f, "%*s", pad, "");
		}
		if (r == 0)
			fputs(taskcli_color_off(color), f);
		fputc('\n', f);
	}
	free(w);
}

void taskcli_table_free(taskcli_table *tb)
{
	for (int i = 0; i < tb->rows * tb->ncols; i++)
		free(tb->cells[i]);
	free(tb->cells);
	memset(tb, 0, sizeof *tb);
}

void taskcli_table_items(const cJSON *items, int ncols, const char *align, const char *const *heads,
    void (*row)(taskcli_table *tb, const cJSON *item))
{
	taskcli_table tb;
	const cJSON *item;
	taskcli_table_init(&tb, ncols, align, heads);
	cJSON_ArrayForEach(item, items)
		row(&tb, item);
	taskcli_table_print(&tb, stdout);
	taskcli_table_free(&tb);
}

/* ---- listing commands ---- */

int taskcli_list(const taskcli *t, const cJSON *items, const char *empty)
{
	const cJSON *item;
	if (t->json) {
		cJSON_ArrayForEach(item, items)
			taskcli_print_json(stdout, item);
		return 0;
	}
	if (cJSON_GetArraySize(items) == 0) {
		printf("%s\n", empty);
		return 0;
	}
	return 1;
}

int taskcli_list_main(node_ctx *ctx, const node_args *a, const char *op, const char *empty,
    void (*table)(const cJSON *items))
{
	taskcli t;
	cJSON *reply = NULL;
	int rc = taskcli_query(&t, ctx, a, taskcli_req(op), &reply);
	if (rc != 0)
		return rc;
	const cJSON *items = cJSON_GetObjectItemCaseSensitive(reply, op);
	if (taskcli_list(&t, items, empty))
		table(items);
	return taskcli_finish(&t, reply, 0);
}
