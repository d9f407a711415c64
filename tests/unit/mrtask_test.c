/* The worker side of MapReduce (modules/mapreduce task_map, task_reduce,
 * input, stream, plugin, fetch, serve): file chunks cut on line
 * boundaries at every offset, paths the output server accepts, streaming
 * programs (big inputs, exit status, stderr, deadline), mr.map then
 * mr.reduce in place and over mr.get, lost map output, value-desc, the
 * example plugin, and the refusal of programs when mr_exec is off. */
#include <dirent.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/file.h"
#include "core/transport.h"
#include "mapreduce/input.h"
#include "mapreduce/mrtask.h"
#include "mapreduce/stream.h"
#include "unit.h"

static char g_tmp[256];
static char g_plugin[4096]; /* build/plugins/mr_example.so, when built */

/* ---- helpers ---- */

static void write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "wb");
	UNIT_CHECK(f != NULL);
	if (f) {
		fwrite(text, 1, len, f);
		fclose(f);
	}
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return NULL;
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

static cJSON *parse(const char *text)
{
	cJSON *v = cJSON_Parse(text);
	UNIT_CHECK(v != NULL);
	return v;
}

/* A normalised job; map, combiner, reduce are JSON values. */
static char *job_text(const char *map, const char *comb, const char *red, int parts, const char *sort, const char *params)
{
	static char buf[8192];
	snprintf(buf, sizeof buf,
	         "{\"name\":\"t\",\"inputs\":[{\"text\":\"x\"}],\"chunk_bytes\":67108864,\"map\":%s,%s%s%s\"reduce\":%s,"
	         "\"partitions\":%d,\"partitioner\":\"hash\",\"sort\":\"%s\",\"output\":{\"dir\":\"%s/out\",\"format\":\"tsv\"},"
	         "\"params\":%s}",
	         map, comb ? "\"combiner\":" : "", comb ? comb : "", comb ? "," : "", red, parts, sort, g_tmp, params);
	return buf;
}

static worker_mr_env g_env;
static node_wire g_wire;

static worker_task_ctx ctx_of(worker_mr_env *env)
{
	return (worker_task_ctx){.id = "t", .queue = "mapreduce", .mr = env};
}

/* Run a task with args [obj]; the result (caller deletes) or NULL with err. */
static cJSON *run_task(worker_task_fn fn, worker_mr_env *env, cJSON *obj, char *err, size_t errlen)
{
	cJSON *args = cJSON_CreateArray(), *res = NULL;
	cJSON_AddItemToArray(args, obj);
	worker_task_ctx ctx = ctx_of(env);
	err[0] = '\0';
	int rc = fn(&ctx, args, NULL, &res, err, errlen);
	cJSON_Delete(args);
	if (rc != 0) {
		UNIT_CHECK(res == NULL);
		return NULL;
	}
	return res;
}

static cJSON *map_args(const char *job, int task, const char *input)
{
	char buf[16384];
	snprintf(buf, sizeof buf, "{\"job_id\":\"j1\",\"job\":%s,\"task\":%d,\"attempt\":1,\"input\":%s}", job, task, input);
	return parse(buf);
}

/* ---- paths ---- */

UNIT_TEST(test_paths)
{
	UNIT_CHECK(mr_serve_path_ok("j1/map-00003-a1/part-00000.run"));
	UNIT_CHECK(mr_serve_path_ok("job.x_y-2/map-1234567-a12/part-01023.run"));
	UNIT_CHECK(mr_serve_path_ok("j1/reduce-00000-a2/part-00000.tsv"));
	UNIT_CHECK(mr_serve_path_ok("j1/reduce-00000-a2/part-00000.jsonl"));
	static const char *bad[] = {
	    "", "j1", "/j1/map-00003-a1/part-00000.run", "../j1/map-00003-a1/part-00000.run",
	    "j1/../map-00003-a1/part-00000.run", "j1/map-00003-a1/../part-00000.run", "j1/map-00003-a1/part-00000.run/x",
	    "j1/map-00003-a1/part-00000.tsv", "j1/reduce-00000-a1/part-00000.run", "j1/map-0003-a1/part-00000.run",
	    "j1/map-00003-a/part-00000.run", "j1/map-00003-a1/part-0000.run", ".j/map-00003-a1/part-00000.run",
	    "j1/map-00003-a1//part-00000.run", "j1/map-00003-a1/part-00000.run ", "j1/map-00003-a1/in/part-00000.run",
	    "j1/reduce-00000-a1/in/part-00001.run", NULL};
	for (int i = 0; bad[i]; i++)
		if (mr_serve_path_ok(bad[i])) {
			fprintf(stderr, "    accepted %s\n", bad[i]);
			UNIT_CHECK(0);
		}
	UNIT_CHECK(!mr_serve_path_ok(NULL));
}

/* ---- input ---- */

UNIT_TEST(test_count)
{
	const char *t = "a\nbb\n\nccc\nd";
	UNIT_CHECK(mr_input_count_nl(t, strlen(t)) == 4);
	UNIT_CHECK(mr_input_count_lines(t, strlen(t)) == 5);
	UNIT_CHECK(mr_input_count_lines("x\n", 2) == 1);
	UNIT_CHECK(mr_input_count_lines("", 0) == 0);
	char big[1000];
	for (int i = 0; i < 1000; i++)
		big[i] = i % 7 == 0 ? '\n' : (char)(i % 256 == 10 ? 'x' : i % 256);
	for (int off = 0; off < 9; off++) {
		uint64_t n = 0;
		for (int i = off; i < 1000; i++)
			n += big[i] == '\n';
		UNIT_CHECK(mr_input_count_nl(big + off, 1000 - (size_t)off) == n);
	}
	char *nl = malloc(100003);
	memset(nl, '\n', 100003);
	UNIT_CHECK(mr_input_count_nl(nl, 100003) == 100003); /* every lane full, many times */
	free(nl);
}

/* Every cut of the file into chunks of k bytes gives back every line once,
 * whole, numbered right. */
static void chunks_cover(const char *path, const char *text, size_t len, uint64_t k)
{
	char *got = malloc(len + 1);
	size_t glen = 0;
	uint64_t expect_line = 1;
	int ok = 1;
	for (uint64_t off = 0; off < len || (len == 0 && off == 0); off += k) {
		char in[600];
		snprintf(in, sizeof in, "{\"file\":\"%s\",\"offset\":%llu,\"length\":%llu,\"lines\":true}", path,
		         (unsigned long long)off, (unsigned long long)k);
		cJSON *j = parse(in);
		mr_input_chunk c;
		node_err err = {0};
		if (mr_input_read(j, 0, &c, &err) != 0) {
			fprintf(stderr, "    %s\n", err.msg);
			ok = 0;
		} else {
			if ((c.len > 0 && c.first_line != expect_line) || c.lines != mr_input_count_lines(c.text, c.len))
				ok = 0;
			expect_line += mr_input_count_lines(c.text, c.len);
			if (glen + c.len <= len)
				memcpy(got + glen, c.text, c.len);
			glen += c.len;
			mr_input_free(&c);
		}
		cJSON_Delete(j);
		if (len == 0)
			break;
	}
	if (!ok || glen != len || memcmp(got, text, len) != 0) {
		fprintf(stderr, "    chunks of %llu bytes do not cover the file\n", (unsigned long long)k);
		UNIT_CHECK(0);
	}
	free(got);
}

UNIT_TEST(test_file_chunks)
{
	char path[512];
	snprintf(path, sizeof path, "%s/lines.txt", g_tmp);
	const char *texts[] = {"one\ntwo two\n\nthree\nfour four four\nfive", "a\nb\nc\n", "\n\n\nx\n\n", "no newline at all",
	                       "", "\r\nwin\r\ndows\r\n"};
	for (size_t t = 0; t < sizeof texts / sizeof *texts; t++) {
		size_t len = strlen(texts[t]);
		write_file(path, texts[t], len);
		for (uint64_t k = 1; k <= len + 2; k++)
			chunks_cover(path, texts[t], len, k);
	}
	/* long lines across the 64 KiB steps past a chunk's end */
	size_t big = 300000;
	char *b = malloc(big);
	for (size_t i = 0; i < big; i++)
		b[i] = i % 100000 == 99999 ? '\n' : 'a' + (char)(i % 26);
	write_file(path, b, big);
	chunks_cover(path, b, big, 4096);
	chunks_cover(path, b, big, 150000);
	free(b);

	node_err err = {0};
	mr_input_chunk c;
	cJSON *j;
	/* a chunk as long as the limit over a small file: just the file's lines */
	char q[700];
	write_file(path, "a\nbb\nccc", 8);
	snprintf(q, sizeof q, "{\"file\":\"%s\",\"offset\":2,\"length\":1073741824,\"lines\":true}", path);
	j = parse(q);
	UNIT_CHECK(mr_input_read(j, 0, &c, &err) == 0 && c.len == 6 && memcmp(c.text, "bb\nccc", 6) == 0 && c.lines == 2 &&
	           c.first_line == 2);
	mr_input_free(&c);
	cJSON_Delete(j);
	j = parse("{\"text\":\"inline\\ntext\"}");
	UNIT_CHECK(mr_input_read(j, 0, &c, &err) == 0 && c.len == 11 && c.first_line == 1);
	mr_input_free(&c);
	cJSON_Delete(j);
	static const char *bad[] = {"{}", "{\"file\":\"rel.txt\",\"offset\":0,\"length\":1}", "{\"file\":\"/nope/x\",\"offset\":0,\"length\":1}",
	                            "{\"file\":\"/etc/hostname\",\"offset\":-1,\"length\":1}", "{\"text\":1}",
	                            "{\"text\":\"a\",\"url\":\"http://x/\"}", "{\"url\":\"ftp://x/y\"}", "[]", NULL};
	for (int i = 0; bad[i]; i++) {
		j = parse(bad[i]);
		err.msg[0] = '\0';
		UNIT_CHECK(mr_input_read(j, 0, &c, &err) != 0 && err.msg[0]);
		cJSON_Delete(j);
	}
	j = parse("{\"file\":\"/nope/x\",\"offset\":0,\"length\":1}");
	UNIT_CHECK(mr_input_read(j, 0, &c, &err) != 0 && strstr(err.msg, "/nope/x") && strstr(err.msg, "No such file"));
	cJSON_Delete(j);
	j = parse("{\"url\":\"http://127.0.0.1:1/x\"}");
	UNIT_CHECK(mr_input_read(j, 0, &c, &err) != 0 && strstr(err.msg, "http://127.0.0.1:1/x"));
	cJSON_Delete(j);
}

/* ---- streaming ---- */

typedef struct sink {
	char buf[4096];
	size_t len;
	uint64_t n, bytes;
} sink;

static int sink_emit(void *ctx, const void *key, size_t klen, const void *val, size_t vlen, node_err *err)
{
	sink *s = ctx;
	s->n++;
	s->bytes += klen + vlen;
	if (s->len + klen + vlen + 3 < sizeof s->buf) {
		s->len += (size_t)snprintf(s->buf + s->len, sizeof s->buf - s->len, "%.*s=%.*s;", (int)klen, (const char *)key,
		                           (int)vlen, (const char *)val);
	}
	return 0;
}

static int stream_run(char *const *argv, const char *in, size_t inlen, int64_t deadline, sink *s, node_err *err)
{
	mr_stream_cfg c = {.argv = argv, .what = "map program test", .dir = g_tmp, .params = "{\"p\":1}", .phase = "map",
	                   .job_id = "j1", .task = 3, .partition = -1, .attempt = 1, .deadline_ms = deadline,
	                   .out = {sink_emit, s}};
	mr_stream *st;
	if (mr_stream_start(&st, &c, err) != 0)
		return err->rc;
	if (mr_stream_write(st, in, inlen, err) != 0) {
		mr_stream_abort(st);
		return err->rc;
	}
	uint64_t records = 0;
	int rc = mr_stream_finish(st, &records, err);
	UNIT_CHECK(rc != 0 || records == s->n);
	return rc;
}

UNIT_TEST(test_stream)
{
	node_err err = {0};
	sink s = {0};
	char *cat[] = {"cat", NULL};
	const char *in = "a\tb\nkey only\n\tv\nlast";
	UNIT_CHECK(stream_run(cat, in, strlen(in), 0, &s, &err) == 0);
	UNIT_CHECK(strcmp(s.buf, "a=b;key only=;=v;last=;") == 0);

	/* 20 MB both ways: pumped, never deadlocked */
	size_t big = 20u << 20;
	char *b = malloc(big);
	for (size_t i = 0; i < big; i++)
		b[i] = i % 64 == 63 ? '\n' : 'k';
	memset(&s, 0, sizeof s);
	UNIT_CHECK(stream_run(cat, b, big, 0, &s, &err) == 0 && s.n == big / 64 && s.bytes == big / 64 * 63);
	free(b);

	char *env[] = {"sh", "-c", "printf '%s\\t%s\\n' \"$NODE_MR_PHASE\" \"$NODE_MR_TASK$NODE_MR_PARTITION\"; echo \"$NODE_MR_PARAMS\"; pwd", NULL};
	memset(&s, 0, sizeof s);
	UNIT_CHECK(stream_run(env, "", 0, 0, &s, &err) == 0);
	char want[512];
	snprintf(want, sizeof want, "map=3;{\"p\":1}=;%s=;", g_tmp);
	UNIT_CHECK(strcmp(s.buf, want) == 0);

	char *fail3[] = {"sh", "-c", "cat >/dev/null; echo first >&2; echo oops >&2; exit 3", NULL};
	UNIT_CHECK(stream_run(fail3, "x\n", 2, 0, &s, &err) != 0);
	UNIT_CHECK(strstr(err.msg, "map program test exited with status 3: first; oops") != NULL);
	/* a long stderr: the message shows its end, where the reason is */
	char *chatty[] = {"sh", "-c", "cat >/dev/null; i=0; while [ $i -lt 200 ]; do echo progress $i >&2; i=$((i+1)); done;"
	                  " echo the real reason >&2; exit 4", NULL};
	UNIT_CHECK(stream_run(chatty, "x\n", 2, 0, &s, &err) != 0);
	UNIT_CHECK(strstr(err.msg, "exited with status 4: ...") && strstr(err.msg, "progress 199; the real reason") != NULL);

	char *killed[] = {"sh", "-c", "kill -9 $$", NULL};
	UNIT_CHECK(stream_run(killed, "", 0, 0, &s, &err) != 0 && strstr(err.msg, "killed by signal 9"));

	/* stops reading its input early and exits 0: fine */
	char *head[] = {"head", "-n", "1", NULL};
	b = malloc(big);
	memset(b, '\n', big);
	memset(&s, 0, sizeof s);
	UNIT_CHECK(stream_run(head, b, big, 0, &s, &err) == 0 && s.n == 1);
	free(b);

	int64_t t0 = node_clock_mono_ms();
	char *slow[] = {"sleep", "10", NULL};
	UNIT_CHECK(stream_run(slow, "", 0, t0 + 300, &s, &err) != 0 && strstr(err.msg, "deadline"));
	UNIT_CHECK(node_clock_mono_ms() - t0 < 3000);

	char *none[] = {"/no/such/program", NULL};
	UNIT_CHECK(stream_run(none, "", 0, 0, &s, &err) != 0 && strstr(err.msg, "cannot be started"));

	/* a line longer than the limit */
	char *yes[] = {"sh", "-c", "head -c 17000000 /dev/zero | tr '\\0' x", NULL};
	UNIT_CHECK(stream_run(yes, "", 0, 0, &s, &err) != 0 && strstr(err.msg, "longer than 16 MiB"));
}

/* ---- the tasks ---- */

static const char *EXAMPLE =
    "There are known knowns. These are things we know that we know. There are\n"
    "known unknowns. That is to say, there are things that we know we do not\n"
    "know. But there are also unknown unknowns. There are things we do not\n"
    "know we do not know.\n";

static const char *EXAMPLE_COUNTS = "also\t1\nare\t6\nbut\t1\ndo\t3\nis\t1\nknow\t6\nknown\t2\nknowns\t1\n"
                                    "not\t3\nsay\t1\nthat\t3\nthere\t5\nthese\t1\nthings\t3\nto\t1\nunknown\t1\n"
                                    "unknowns\t2\nwe\t6\n";

/* mr.map of the example split in two file chunks; mr.reduce of partition
 * p from both into *out (the part file's text). */
static int map_both(const char *job, cJSON **r0, cJSON **r1, char *err, size_t errlen)
{
	char path[512], in[1024];
	snprintf(path, sizeof path, "%s/example.txt", g_tmp);
	write_file(path, EXAMPLE, strlen(EXAMPLE));
	snprintf(in, sizeof in, "{\"file\":\"%s\",\"offset\":0,\"length\":100,\"lines\":true}", path);
	*r0 = run_task(mr_task_map, &g_env, map_args(job, 0, in), err, errlen);
	snprintf(in, sizeof in, "{\"file\":\"%s\",\"offset\":100,\"length\":1000,\"lines\":true}", path);
	*r1 = *r0 ? run_task(mr_task_map, &g_env, map_args(job, 1, in), err, errlen) : NULL;
	return *r0 && *r1 ? 0 : -1;
}

static cJSON *source_of(const cJSON *r, int task, const char *host)
{
	cJSON *s = cJSON_CreateObject();
	cJSON_AddNumberToObject(s, "task", task);
	cJSON_AddStringToObject(s, "url", cJSON_GetStringValue(cJSON_GetObjectItem(r, "url")));
	cJSON_AddStringToObject(s, "host", host ? host : cJSON_GetStringValue(cJSON_GetObjectItem(r, "host")));
	cJSON_AddStringToObject(s, "path", cJSON_GetStringValue(cJSON_GetObjectItem(r, "path")));
	cJSON_AddStringToObject(s, "dir", cJSON_GetStringValue(cJSON_GetObjectItem(r, "dir")));
	return s;
}

static cJSON *reduce_args(const char *job, int p, int attempt, cJSON *sources)
{
	char buf[16384];
	snprintf(buf, sizeof buf, "{\"job_id\":\"j1\",\"job\":%s,\"partition\":%d,\"attempt\":%d}", job, p, attempt);
	cJSON *a = parse(buf);
	cJSON_AddItemToObject(a, "sources", sources);
	return a;
}

/* Reduce every partition; the part files' text, in partition order. */
static char *reduce_all(const char *job, int parts, cJSON *r0, cJSON *r1, const char *host, char *err, size_t errlen)
{
	static char all[8192];
	all[0] = '\0';
	for (int p = 0; p < parts; p++) {
		cJSON *src = cJSON_CreateArray();
		cJSON_AddItemToArray(src, source_of(r0, 0, host));
		cJSON_AddItemToArray(src, source_of(r1, 1, host));
		cJSON *res = run_task(mr_task_reduce, &g_env, reduce_args(job, p, 1, src), err, errlen);
		if (res == NULL)
			return NULL;
		const char *path = cJSON_GetStringValue(cJSON_GetObjectItem(res, "path"));
		char want[600];
		snprintf(want, sizeof want, "%s/j1/reduce-%05d-a1/part-%05d.tsv", g_env.dir, p, p);
		UNIT_CHECK(path && strcmp(path, want) == 0);
		char *text = path ? read_file(path) : NULL;
		UNIT_CHECK(text != NULL);
		if (text)
			strcat(all, text);
		cJSON_Delete(res);
	}
	return all;
}

static int sorted_equal(const char *got, const char *want)
{
	/* compare as sets of lines: partitions split the order */
	char cmd[10000];
	char a[512], b[512];
	snprintf(a, sizeof a, "%s/got.txt", g_tmp);
	snprintf(b, sizeof b, "%s/want.txt", g_tmp);
	write_file(a, got, strlen(got));
	write_file(b, want, strlen(want));
	snprintf(cmd, sizeof cmd, "LC_ALL=C sort %s | cmp -s - %s", a, b);
	return system(cmd) == 0;
}

UNIT_TEST(test_map_reduce_local)
{
	char err[1024];
	const char *job = job_text("\"wordcount\"", "\"sum\"", "\"sum\"", 3, "key", "{}");
	cJSON *r0, *r1;
	UNIT_CHECK(map_both(job, &r0, &r1, err, sizeof err) == 0);
	if (r0 == NULL || r1 == NULL) {
		fprintf(stderr, "    %s\n", err);
		return;
	}
	UNIT_CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(r0, "parts")) == 3);
	UNIT_CHECK(strcmp(cJSON_GetStringValue(cJSON_GetObjectItem(r0, "dir")), "j1/map-00000-a1") == 0);
	UNIT_CHECK(cJSON_GetObjectItem(r0, "records_in")->valuedouble == 2);
	UNIT_CHECK(cJSON_GetObjectItem(r1, "records_in")->valuedouble == 2);
	UNIT_CHECK(cJSON_GetObjectItem(r0, "bytes_in")->valuedouble + cJSON_GetObjectItem(r1, "bytes_in")->valuedouble ==
	           (double)strlen(EXAMPLE));
	UNIT_CHECK(cJSON_GetObjectItem(r0, "records_out")->valuedouble > 5);
	char *all = reduce_all(job, 3, r0, r1, NULL, err, sizeof err);
	UNIT_CHECK(all && sorted_equal(all, EXAMPLE_COUNTS));
	if (!all || !sorted_equal(all, EXAMPLE_COUNTS))
		fprintf(stderr, "    %s\n%s\n", err, all ? all : "");
	char in[600];
	snprintf(in, sizeof in, "%s/j1/reduce-00000-a1/in", g_env.dir);
	UNIT_CHECK(access(in, F_OK) != 0); /* read in place, in/ removed */

	/* sort value-desc, one partition: highest count first, ties by key */
	const char *vjob = job_text("\"wordcount\"", "\"sum\"", "\"sum\"", 1, "value-desc", "{}");
	cJSON *v0, *v1;
	UNIT_CHECK(map_both(vjob, &v0, &v1, err, sizeof err) == 0);
	all = v0 && v1 ? reduce_all(vjob, 1, v0, v1, NULL, err, sizeof err) : NULL;
	UNIT_CHECK(all && strncmp(all, "are\t6\nknow\t6\nwe\t6\nthere\t5\ndo\t3\n", 30) == 0);
	cJSON_Delete(v0);
	cJSON_Delete(v1);

	/* grep with line numbers across chunks */
	const char *gjob = job_text("\"grep\"", NULL, "\"identity\"", 1, "key", "{\"pattern\":\"not\"}");
	cJSON *g0, *g1;
	UNIT_CHECK(map_both(gjob, &g0, &g1, err, sizeof err) == 0);
	all = g0 && g1 ? reduce_all(gjob, 1, g0, g1, NULL, err, sizeof err) : NULL;
	UNIT_CHECK(all && strstr(all, "know. But there are also unknown unknowns. There are things we do not\t3\n") &&
	           strstr(all, "known unknowns. That is to say, there are things that we know we do not\t2\n") &&
	           strstr(all, "know we do not know.\t4\n"));
	cJSON_Delete(g0);
	cJSON_Delete(g1);

	/* a damaged run read in place: that map's output is lost */
	char run[700];
	snprintf(run, sizeof run, "%s/j1/map-00001-a1/part-00000.run", g_env.dir);
	UNIT_CHECK(map_both(job, &g0, &g1, err, sizeof err) == 0);
	FILE *f = fopen(run, "r+b");
	UNIT_CHECK(f != NULL);
	if (f) {
		fseek(f, 40, SEEK_SET);
		fputc('#', f);
		fclose(f);
	}
	cJSON *src = cJSON_CreateArray();
	cJSON_AddItemToArray(src, source_of(g0, 0, NULL));
	cJSON_AddItemToArray(src, source_of(g1, 1, NULL));
	UNIT_CHECK(run_task(mr_task_reduce, &g_env, reduce_args(job, 0, 4, src), err, sizeof err) == NULL);
	UNIT_CHECK(strncmp(err, "lost map output: 1: ", 20) == 0 && strstr(err, "damaged"));
	cJSON_Delete(g0);
	cJSON_Delete(g1);
	cJSON_Delete(r0);
	cJSON_Delete(r1);
}

UNIT_TEST(test_map_reduce_fetch)
{
	char err[1024];
	mr_serve *srv;
	node_err e = {0};
	UNIT_CHECK(mr_serve_start(&srv, "tcp://127.0.0.1:0", g_env.dir, &g_wire, "test", &e) == 0);
	if (srv == NULL) {
		fprintf(stderr, "    %s\n", e.msg);
		return;
	}
	g_env.fetch_url = mr_serve_url(srv);
	const char *job = job_text("\"wordcount\"", "\"sum\"", "\"sum\"", 2, "key", "{}");
	cJSON *r0, *r1;
	UNIT_CHECK(map_both(job, &r0, &r1, err, sizeof err) == 0);
	/* another host id: fetched over mr.get */
	char *all = r0 && r1 ? reduce_all(job, 2, r0, r1, "another-host", err, sizeof err) : NULL;
	UNIT_CHECK(all && sorted_equal(all, EXAMPLE_COUNTS));
	if (!all)
		fprintf(stderr, "    %s\n", err);

	/* mr.get itself: traversal refused, missing file not_found, pieces */
	node_client *cl;
	UNIT_CHECK(node_client_open(&cl, mr_serve_url(srv), "worker", &g_wire, &e) == 0);
	cJSON *rep = NULL;
	cJSON *req = parse("{\"op\":\"mr.get\",\"path\":\"j1/../../../etc/passwd\"}");
	UNIT_CHECK(node_client_call(cl, req, 3000, &rep, &e) == NODE_EREMOTE && strcmp(e.code, "invalid") == 0);
	cJSON_Delete(req);
	cJSON_Delete(rep);
	req = parse("{\"op\":\"mr.get\",\"path\":\"j1/map-00009-a1/part-00000.run\"}");
	UNIT_CHECK(node_client_call(cl, req, 3000, &rep, &e) == NODE_EREMOTE && strcmp(e.code, "not_found") == 0);
	cJSON_Delete(req);
	cJSON_Delete(rep);
	req = parse("{\"op\":\"mr.get\",\"path\":\"j1/reduce-00000-a1/part-00000.tsv\",\"offset\":2,\"max\":4}");
	UNIT_CHECK(node_client_call(cl, req, 3000, &rep, &e) == 0);
	const char *data = cJSON_GetStringValue(cJSON_GetObjectItem(rep, "data"));
	UNIT_CHECK(data && strlen(data) == 4 && cJSON_IsFalse(cJSON_GetObjectItem(rep, "eof"))); /* 3 bytes: base64 of 3 */
	cJSON_Delete(req);
	cJSON_Delete(rep);

	/* a fetched whole file equals the original */
	mr_fetch *f;
	uint64_t bytes;
	char dest[512], orig[600];
	snprintf(dest, sizeof dest, "%s/fetched.run", g_tmp);
	snprintf(orig, sizeof orig, "%s/j1/map-00000-a1/part-00001.run", g_env.dir);
	UNIT_CHECK(mr_fetch_open(&f, mr_serve_url(srv), &g_wire, &e) == 0);
	UNIT_CHECK(mr_fetch_file(f, "j1/map-00000-a1/part-00001.run", dest, 3000, &bytes, &e) == 0 && bytes == mr_file_size(orig));
	char cmd[1300];
	snprintf(cmd, sizeof cmd, "cmp -s %s %s", dest, orig);
	UNIT_CHECK(system(cmd) == 0);
	mr_fetch_close(f);

	/* mr.clean */
	req = parse("{\"op\":\"mr.clean\",\"job\":\"../x\"}");
	UNIT_CHECK(node_client_call(cl, req, 3000, &rep, &e) == NODE_EREMOTE && strcmp(e.code, "invalid") == 0);
	cJSON_Delete(req);
	cJSON_Delete(rep);
	req = parse("{\"op\":\"mr.clean\",\"job\":\"j1\"}");
	UNIT_CHECK(node_client_call(cl, req, 3000, &rep, &e) == 0 && cJSON_IsTrue(cJSON_GetObjectItem(rep, "removed")));
	cJSON_Delete(req);
	cJSON_Delete(rep);
	snprintf(cmd, sizeof cmd, "%s/j1", g_env.dir);
	UNIT_CHECK(access(cmd, F_OK) != 0);
	node_client_close(cl);

	/* the maps' outputs are gone: the reduce names them as lost */
	cJSON *src = cJSON_CreateArray();
	cJSON_AddItemToArray(src, source_of(r0, 0, "another-host"));
	cJSON_AddItemToArray(src, source_of(r1, 7, "another-host"));
	UNIT_CHECK(run_task(mr_task_reduce, &g_env, reduce_args(job, 0, 2, src), err, sizeof err) == NULL);
	UNIT_CHECK(strncmp(err, "lost map output: 0,7: worker ", 29) == 0 && strstr(err, "not_found") == NULL);
	mr_serve_stop(srv);
	g_env.fetch_url = "tcp://127.0.0.1:1";

	/* nobody answers there: lost, within the call timeout */
	int64_t t0 = node_clock_mono_ms();
	g_env.timeout_ms = 500;
	src = cJSON_CreateArray();
	cJSON_AddItemToArray(src, source_of(r0, 3, "another-host"));
	cJSON_AddItemToArray(src, source_of(r1, 4, "another-host"));
	UNIT_CHECK(run_task(mr_task_reduce, &g_env, reduce_args(job, 0, 3, src), err, sizeof err) == NULL);
	UNIT_CHECK(strncmp(err, "lost map output: 3,4: worker tcp://127.0.0.1:", 45) == 0 && strstr(err, "did not answer in 500 ms"));
	UNIT_CHECK(node_clock_mono_ms() - t0 < 2500); /* one timeout per server, not per source */
	/* many lost: the list the master parses holds numbers only, the rest counted */
	src = cJSON_CreateArray();
	for (int i = 0; i < 60; i++)
		cJSON_AddItemToArray(src, source_of(r0, 1000000 + i, "another-host"));
	UNIT_CHECK(run_task(mr_task_reduce, &g_env, reduce_args(job, 0, 4, src), err, sizeof err) == NULL);
	UNIT_CHECK(strncmp(err, "lost map output: 1000000,1000001,", 33) == 0);
	size_t span = strspn(err + 17, "0123456789,");
	UNIT_CHECK(span > 0 && err[17 + span] == ':' && err[17 + span - 1] != ',' && strstr(err, " more) worker ") != NULL);
	g_env.timeout_ms = 3000;
	cJSON_Delete(r0);
	cJSON_Delete(r1);
}

UNIT_TEST(test_programs_and_plugins)
{
	char err[1024];
	/* mr_exec off: refused */
	g_env.exec_allowed = 0;
	const char *ejob = job_text("{\"exec\":[\"cat\"]}", NULL, "\"count\"", 1, "key", "{}");
	UNIT_CHECK(run_task(mr_task_map, &g_env, map_args(ejob, 0, "{\"text\":\"a\"}"), err, sizeof err) == NULL);
	UNIT_CHECK(strstr(err, "this worker does not run programs or plugins of jobs (roles.worker.mr_exec is false)") != NULL);
	g_env.exec_allowed = 1;

	/* a program map and a program reduce */
	const char *sjob = job_text("{\"exec\":[\"tr\",\"-s\",\" \",\"\\\\n\"]}", NULL, "{\"exec\":[\"uniq\",\"-c\"]}", 1, "key", "{}");
	cJSON *r = run_task(mr_task_map, &g_env, map_args(sjob, 0, "{\"text\":\"b a b\\nc b\"}"), err, sizeof err);
	UNIT_CHECK(r != NULL);
	if (r == NULL)
		fprintf(stderr, "    %s\n", err);
	cJSON *src = cJSON_CreateArray();
	if (r)
		cJSON_AddItemToArray(src, source_of(r, 0, NULL));
	cJSON *red = r ? run_task(mr_task_reduce, &g_env, reduce_args(sjob, 0, 1, src), err, sizeof err) : NULL;
	if (!r)
		cJSON_Delete(src);
	const char *text = red ? read_file(cJSON_GetStringValue(cJSON_GetObjectItem(red, "path"))) : NULL;
	UNIT_CHECK(text && strcmp(text, "      1 a\t\n      3 b\t\n      1 c\t\n") == 0);
	if (!red)
		fprintf(stderr, "    %s\n", err);
	cJSON_Delete(r);
	cJSON_Delete(red);

	/* a failing program names itself and its stderr */
	const char *fjob = job_text("{\"exec\":[\"sh\",\"-c\",\"echo bad input >&2; exit 3\"]}", NULL, "\"count\"", 1, "key", "{}");
	UNIT_CHECK(run_task(mr_task_map, &g_env, map_args(fjob, 0, "{\"text\":\"a\"}"), err, sizeof err) == NULL);
	UNIT_CHECK(strstr(err, "map program sh exited with status 3: bad input") != NULL);
	/* a program cannot be a combiner */
	const char *cjob = job_text("\"wordcount\"", "{\"exec\":[\"cat\"]}", "\"sum\"", 1, "key", "{}");
	UNIT_CHECK(run_task(mr_task_map, &g_env, map_args(cjob, 0, "{\"text\":\"a\"}"), err, sizeof err) == NULL);
	UNIT_CHECK(strstr(err, "combiner") != NULL);

	if (g_plugin[0] == '\0') {
		fprintf(stderr, "    (no mr_example.so next to this test: make plugins)\n");
		return;
	}
	char map[5000], reduce[5000];
	snprintf(map, sizeof map, "{\"plugin\":\"%s\",\"function\":\"first_letter\"}", g_plugin);
	snprintf(reduce, sizeof reduce, "{\"plugin\":\"%s\",\"function\":\"longest\"}", g_plugin);
	char pjob[9000];
	snprintf(pjob, sizeof pjob, "%s", job_text(map, "\"sum\"", reduce, 1, "key", "{}"));
	r = run_task(mr_task_map, &g_env, map_args(pjob, 0, "{\"text\":\"Apple avocado\\nbanana 42 cherry\\n\\nAxe\"}"), err, sizeof err);
	UNIT_CHECK(r && cJSON_GetObjectItem(r, "records_in")->valuedouble == 4);
	if (!r)
		fprintf(stderr, "    %s\n", err);
	src = cJSON_CreateArray();
	if (r)
		cJSON_AddItemToArray(src, source_of(r, 0, NULL));
	red = r ? run_task(mr_task_reduce, &g_env, reduce_args(pjob, 0, 1, src), err, sizeof err) : NULL;
	if (!r)
		cJSON_Delete(src);
	text = red ? read_file(cJSON_GetStringValue(cJSON_GetObjectItem(red, "path"))) : NULL;
	UNIT_CHECK(text && strcmp(text, "a\t3\nb\t1\nc\t1\n") == 0);
	cJSON_Delete(r);
	cJSON_Delete(red);
	snprintf(map, sizeof map, "{\"plugin\":\"%s\",\"function\":\"no_such_fn\"}", g_plugin);
	snprintf(pjob, sizeof pjob, "%s", job_text(map, NULL, "\"count\"", 1, "key", "{}"));
	UNIT_CHECK(run_task(mr_task_map, &g_env, map_args(pjob, 0, "{\"text\":\"a\"}"), err, sizeof err) == NULL);
	UNIT_CHECK(strstr(err, "no_such_fn") && strstr(err, "exports no such function"));
}

UNIT_TEST(test_bad_args)
{
	char err[1024];
	cJSON *res = NULL;
	UNIT_CHECK(mr_task_map(NULL, NULL, NULL, &res, err, sizeof err) != 0 && strstr(err, "runs only in a worker"));
	worker_task_ctx ctx = ctx_of(&g_env);
	static const char *bad[] = {"[]", "[1]", "[{}]", "[{\"job_id\":\"../x\"}]", "[{\"job_id\":\"j\",\"job\":{}}]", NULL};
	for (int i = 0; bad[i]; i++) {
		cJSON *a = parse(bad[i]);
		err[0] = '\0';
		UNIT_CHECK(mr_task_map(&ctx, a, NULL, &res, err, sizeof err) != 0 && strncmp(err, "mr.map: ", 8) == 0);
		UNIT_CHECK(mr_task_reduce(&ctx, a, NULL, &res, err, sizeof err) != 0 && strncmp(err, "mr.reduce: ", 11) == 0);
		cJSON_Delete(a);
	}
	const char *job = job_text("\"wordcount\"", NULL, "\"sum\"", 2, "key", "{}");
	cJSON *a = reduce_args(job, 2, 1, cJSON_CreateArray());
	UNIT_CHECK(run_task(mr_task_reduce, &g_env, a, err, sizeof err) == NULL && strstr(err, "partition"));
}

int main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN); /* as node does */
	snprintf(g_tmp, sizeof g_tmp, "/tmp/mrtask_test.XXXXXX");
	if (mkdtemp(g_tmp) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	char exe[4096];
	snprintf(exe, sizeof exe, "%s", argv[0]);
	snprintf(g_plugin, sizeof g_plugin, "%s/../plugins/mr_example.so", dirname(exe));
	char *abs = realpath(g_plugin, NULL);
	snprintf(g_plugin, sizeof g_plugin, "%s", abs ? abs : "");
	free(abs);
	static char dir[512], host[] = "this-host";
	snprintf(dir, sizeof dir, "%s/mr/w-1", g_tmp);
	node_err e = {0};
	node_file_mkdirs(dir, &e);
	node_wire_init(&g_wire);
	g_env = (worker_mr_env){.dir = dir, .fetch_url = "tcp://127.0.0.1:1", .host_id = host, .worker = "w-1",
	                        .sort_mem = 1u << 20, .exec_allowed = 1, .local_read = 1, .timeout_ms = 3000, .wire = &g_wire};
	UNIT_RUN(test_paths);
	UNIT_RUN(test_count);
	UNIT_RUN(test_file_chunks);
	UNIT_RUN(test_stream);
	UNIT_RUN(test_map_reduce_local);
	UNIT_RUN(test_map_reduce_fetch);
	UNIT_RUN(test_programs_and_plugins);
	UNIT_RUN(test_bad_args);
	node_err ignored;
	mr_rmtree(g_tmp, &ignored);
	return unit_finish("mrtask_test");
}
