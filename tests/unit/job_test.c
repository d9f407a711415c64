/* The job file parser (modules/mapreduce/job.c): a job using every key,
 * defaults, globs, each bad job of issue 7 with the error it must give,
 * and the normalised JSON round trip, in a scratch directory under /tmp. */
#include "mapreduce/job.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit.h"

static char dir[64]; /* the scratch directory: every relative path resolves here */

static void write_file(const char *name, const char *text, mode_t mode)
{
	char p[256];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "w");
	UNIT_CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	chmod(p, mode);
}

static mr_job *good(const char *json)
{
	mr_job *j = NULL;
	node_err err = {0};
	int rc = mr_job_parse(json, strlen(json), dir, &j, &err);
	if (rc != 0)
		fprintf(stderr, "    unexpected error: %s\n", err.msg);
	UNIT_CHECK(rc == 0 && j != NULL);
	return j;
}

/* 1 when json is refused with a message containing want. */
static int bad(const char *json, const char *want)
{
	mr_job *j = NULL;
	node_err err = {0};
	int rc = mr_job_parse(json, strlen(json), dir, &j, &err);
	int ok = rc == NODE_EINVAL && j == NULL && strstr(err.msg, want) != NULL;
	if (!ok)
		fprintf(stderr, "    want error containing [%s], got rc %d [%s]\n", want, rc, err.msg);
	mr_job_free(j);
	return ok;
}

/* A job with one part left to the caller, the rest valid. */
#define NAME "\"name\": \"wc\""
#define INPUTS "\"inputs\": [\"a.txt\"]"
#define MAP "\"map\": \"wordcount\""
#define REDUCE "\"reduce\": \"sum\""
#define OUTPUT "\"output\": {\"dir\": \"out\"}"
#define JOB_BUT_NAME(x) "{" x ", " INPUTS ", " MAP ", " REDUCE ", " OUTPUT "}"
#define JOB_BUT_INPUTS(x) "{" NAME ", " x ", " MAP ", " REDUCE ", " OUTPUT "}"
#define JOB_BUT_MAP(x) "{" NAME ", " INPUTS ", " x ", " REDUCE ", " OUTPUT "}"
#define JOB_BUT_REDUCE(x) "{" NAME ", " INPUTS ", " MAP ", " x ", " OUTPUT "}"
#define JOB_BUT_OUTPUT(x) "{" NAME ", " INPUTS ", " MAP ", " REDUCE ", " x "}"
#define JOB_PLUS(x) "{" NAME ", " INPUTS ", " MAP ", " REDUCE ", " OUTPUT ", " x "}"

static int ends_with(const char *s, const char *tail)
{
	size_t n = strlen(s), k = strlen(tail);
	return n >= k && strcmp(s + n - k, tail) == 0;
}

static const char full_job[] = "{\"name\": \"word-count_2.v1\","
    " \"inputs\": [\"a.txt\", \"*.txt\", \"https://example.com/t.txt\", {\"text\": \"hi there\"},"
    " \"job:0b6f3c1e-aa\", {\"file\": \"b.txt\"}, {\"url\": \"http://h:8080/x\"}, {\"job\": \"j2\"}],"
    " \"chunk_bytes\": 1048576,"
    " \"map\": {\"exec\": [\"./map.sh\", \"-F\", \"\"]},"
    " \"combiner\": \"sum\","
    " \"reduce\": {\"plugin\": \"lib/wc.so\", \"function\": \"wc_reduce\"},"
    " \"partitions\": 4, \"partitioner\": \"hash\", \"sort\": \"value-desc\","
    " \"output\": {\"dir\": \"out/sub\", \"format\": \"jsonl\"},"
    " \"params\": {\"k\": [1, 2], \"s\": \"x\"}}";

static void check_inputs(const mr_job *j)
{
	UNIT_CHECK(j->n_inputs == 9);
	if (j->n_inputs != 9)
		return;
	/* "a.txt", then the glob sorted (a.txt, b.txt; not c.log, not the directory d.txt) */
	UNIT_CHECK(j->inputs[0].kind == MR_IN_FILE && j->inputs[0].value[0] == '/' && ends_with(j->inputs[0].value, "/a.txt"));
	UNIT_CHECK(j->inputs[1].kind == MR_IN_FILE && ends_with(j->inputs[1].value, "/a.txt"));
	UNIT_CHECK(j->inputs[2].kind == MR_IN_FILE && ends_with(j->inputs[2].value, "/b.txt"));
	UNIT_CHECK(j->inputs[3].kind == MR_IN_URL && strcmp(j->inputs[3].value, "https://example.com/t.txt") == 0);
	UNIT_CHECK(j->inputs[4].kind == MR_IN_TEXT && strcmp(j->inputs[4].value, "hi there") == 0);
	UNIT_CHECK(j->inputs[5].kind == MR_IN_JOB && strcmp(j->inputs[5].value, "0b6f3c1e-aa") == 0);
	UNIT_CHECK(j->inputs[6].kind == MR_IN_FILE && ends_with(j->inputs[6].value, "/b.txt"));
	UNIT_CHECK(j->inputs[7].kind == MR_IN_URL && strcmp(j->inputs[7].value, "http://h:8080/x") == 0);
	UNIT_CHECK(j->inputs[8].kind == MR_IN_JOB && strcmp(j->inputs[8].value, "j2") == 0);
}

UNIT_TEST(every_field)
{
	mr_job *j = good(full_job);
	if (j == NULL)
		return;
	UNIT_CHECK(strcmp(j->name, "word-count_2.v1") == 0);
	check_inputs(j);
	UNIT_CHECK(j->chunk_bytes == 1048576);
	UNIT_CHECK(j->map.kind == MR_FN_EXEC && j->map.argc == 3 && j->map.argv[3] == NULL);
	UNIT_CHECK(j->map.argv[0][0] == '/' && ends_with(j->map.argv[0], "/map.sh"));
	UNIT_CHECK(strcmp(j->map.argv[1], "-F") == 0 && strcmp(j->map.argv[2], "") == 0);
	UNIT_CHECK(j->combiner.kind == MR_FN_BUILTIN && strcmp(j->combiner.name, "sum") == 0);
	UNIT_CHECK(j->reduce.kind == MR_FN_PLUGIN && j->reduce.plugin[0] == '/' && ends_with(j->reduce.plugin, "/lib/wc.so"));
	UNIT_CHECK(strcmp(j->reduce.function, "wc_reduce") == 0);
	UNIT_CHECK(j->partitions == 4 && j->sort == MR_SORT_VALUE_DESC && j->format == MR_FORMAT_JSONL);
	struct stat st;
	UNIT_CHECK(j->output_dir[0] == '/' && ends_with(j->output_dir, "/out/sub"));
	UNIT_CHECK(stat(j->output_dir, &st) == 0 && S_ISDIR(st.st_mode));
	UNIT_CHECK(strcmp(j->params, "{\"k\":[1,2],\"s\":\"x\"}") == 0);
	char part[4096], want[4096];
	snprintf(want, sizeof want, "%s/part-00003.jsonl", j->output_dir);
	UNIT_CHECK(mr_job_part_path(j, 3, part, sizeof part) == 0 && strcmp(part, want) == 0);
	UNIT_CHECK(mr_job_part_path(j, 4, part, sizeof part) == -1);
	UNIT_CHECK(mr_job_part_path(j, -1, part, sizeof part) == -1);
	UNIT_CHECK(mr_job_part_path(j, 0, part, 10) == -1);
	mr_job_free(j);
}

UNIT_TEST(defaults)
{
	mr_job *j = good("{\"name\": \"d\", \"inputs\": [{\"text\": \"\"}], \"map\": \"identity\", \"reduce\": \"identity\","
	                 " \"output\": {\"dir\": \"" "out2\"}}");
	if (j == NULL)
		return;
	UNIT_CHECK(j->chunk_bytes == 64ULL << 20);
	UNIT_CHECK(j->partitions == 1 && j->sort == MR_SORT_KEY && j->format == MR_FORMAT_TSV);
	UNIT_CHECK(j->combiner.kind == MR_FN_NONE);
	UNIT_CHECK(strcmp(j->params, "{}") == 0);
	UNIT_CHECK(j->n_inputs == 1 && j->inputs[0].kind == MR_IN_TEXT && j->inputs[0].value[0] == '\0');
	char part[4096];
	UNIT_CHECK(mr_job_part_path(j, 0, part, sizeof part) == 0 && ends_with(part, "/out2/part-00000.tsv"));
	cJSON *o = mr_job_to_json(j);
	char *text = cJSON_PrintUnformatted(o);
	/* every key, defaults filled */
	UNIT_CHECK(text && strstr(text, "\"chunk_bytes\":67108864,") && strstr(text, "\"partitions\":1,\"partitioner\":\"hash\",\"sort\":\"key\"") &&
	    strstr(text, "\"format\":\"tsv\"") && strstr(text, "\"params\":{}") && !strstr(text, "combiner"));
	cJSON_free(text);
	cJSON_Delete(o);
	mr_job_free(j);
}

UNIT_TEST(builtins)
{
	mr_job *j;
	const char *maps[] = {"wordcount", "identity", "split-words"};
	const char *reds[] = {"sum", "count", "min", "max", "identity", "concat"};
	for (int i = 0; i < 3; i++) {
		char json[512];
		snprintf(json, sizeof json, JOB_BUT_MAP("\"map\": \"%s\", \"combiner\": \"%s\""), maps[i], reds[i]);
		mr_job_free(good(json));
		snprintf(json, sizeof json, JOB_BUT_REDUCE("\"reduce\": \"%s\""), reds[i + 3]);
		mr_job_free(good(json));
	}
	j = good(JOB_BUT_MAP("\"map\": \"grep\", \"params\": {\"pattern\": \"known\"}"));
	UNIT_CHECK(j && strcmp(j->map.name, "grep") == 0);
	mr_job_free(j);
	UNIT_CHECK(bad(JOB_BUT_MAP("\"map\": \"grep\""), "map: grep needs params.pattern"));
	UNIT_CHECK(bad(JOB_BUT_MAP("\"map\": \"grep\", \"params\": {\"pattern\": 3}"), "params.pattern: expected a string"));
	UNIT_CHECK(bad(JOB_BUT_REDUCE("\"reduce\": \"concat\", \"params\": {\"separator\": 0}"), "params.separator: expected a string, got 0"));
	j = good(JOB_BUT_REDUCE("\"reduce\": \"concat\", \"params\": {\"separator\": \" \"}"));
	UNIT_CHECK(j && strcmp(j->reduce.name, "concat") == 0);
	mr_job_free(j);
}

UNIT_TEST(bad_functions)
{
	UNIT_CHECK(bad(JOB_BUT_MAP("\"map\": \"wordcont\""),
	    "map: unknown function \"wordcont\" (known: wordcount, grep, identity, split-words; or {\"plugin\": FILE,"));
	UNIT_CHECK(bad(JOB_BUT_REDUCE("\"reduce\": \"avg\""), "reduce: unknown function \"avg\" (known: sum, count, min, max, identity, concat;"));
	UNIT_CHECK(bad(JOB_PLUS("\"combiner\": \"wordcount\""), "combiner: unknown function \"wordcount\" (known: sum,"));
	UNIT_CHECK(bad(JOB_BUT_MAP("\"map\": 3"), "map: expected a built-in function name, {\"plugin\": FILE, \"function\": NAME} or {\"exec\": [PROGRAM, ARG...]}, got 3"));
	UNIT_CHECK(bad(JOB_BUT_MAP("\"map\": {\"plugn\": \"lib/wc.so\"}"), "map.plugn: unknown key (known keys: plugin, function, exec)"));
	UNIT_CHECK(bad(JOB_BUT_MAP("\"map\": {}"), "map: expected {\"plugin\": FILE, \"function\": NAME} or {\"exec\": [PROGRAM, ARG...]}, got {}"));
	UNIT_CHECK(bad(JOB_BUT_MAP("\"map\": {\"plugin\": \"lib/wc.so\"}"), "map.function: missing"));
	UNIT_CHECK(bad(JOB_BUT_MAP("\"map\": {\"plugin\": \"lib/wc.so\", \"function\": \"a b\"}"), "map.function: expected a C function name, got \"a b\""));
	UNIT_CHECK(bad(JOB_BUT_MAP("\"map\": {\"plugin\": \"lib/nope.so\", \"function\": \"f\"}"), "map.plugin: cannot read /"));
	UNIT_CHECK(bad(JOB_BUT_MAP("\"map\": {\"plugin\": \"lib/wc.so\", \"function\": \"f\", \"exec\": [\"x\"]}"), "map: give either"));
	UNIT_CHECK(bad(JOB_BUT_MAP("\"map\": {\"exec\": \"awk '{print $1}' | sort\"}"), "map.exec: expected an array of strings, the program then its arguments (no shell command line), got \"awk"));
	UNIT_CHECK(bad(JOB_BUT_MAP("\"map\": {\"exec\": []}"), "map.exec: expected an array of strings"));
	UNIT_CHECK(bad(JOB_BUT_MAP("\"map\": {\"exec\": [\"awk\", 1]}"), "map.exec[1]: expected a string, got 1"));
	UNIT_CHECK(bad(JOB_BUT_MAP("\"map\": {\"exec\": [\"./noexec.sh\"]}"), "map.exec[0]: cannot run /"));
	UNIT_CHECK(bad(JOB_BUT_REDUCE("\"reduce\": {\"exec\": [\"./nope.sh\"]}"), "No such file or directory"));
	UNIT_CHECK(bad("{" NAME ", " INPUTS ", " REDUCE ", " OUTPUT "}", "map: missing"));
	UNIT_CHECK(bad("{" NAME ", " INPUTS ", " MAP ", " OUTPUT "}", "reduce: missing"));
	/* a program without a '/' is looked up in PATH where it runs */
	mr_job *j = good(JOB_BUT_REDUCE("\"reduce\": {\"exec\": [\"python3\", \"-c\", \"pass\"]}"));
	UNIT_CHECK(j && strcmp(j->reduce.argv[0], "python3") == 0);
	mr_job_free(j);
}

UNIT_TEST(bad_inputs)
{
	char want[512];
	UNIT_CHECK(bad("{" NAME ", " MAP ", " REDUCE ", " OUTPUT "}", "inputs: missing (at least one"));
	UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": []"), "inputs: expected a non-empty array of inputs, got []"));
	UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": \"a.txt\""), "inputs: expected a non-empty array of inputs, got \"a.txt\""));
	UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": [\"a.txt\", 7]"), "inputs[1]: expected a file, a glob, a URL, \"job:ID\" or {\"text\": ...}, got 7"));
	UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": [\"\"]"), "inputs[0]: expected a file"));
	snprintf(want, sizeof want, "inputs[0]: cannot read %s/nope.txt: No such file or directory", dir);
	UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": [\"nope.txt\"]"), want));
	snprintf(want, sizeof want, "inputs[1]: cannot read %s/d.txt: Is a directory", dir);
	UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": [\"a.txt\", \"d.txt\"]"), want));
	/* chmod 000 stops every reader but root, who reads anyway */
	if (geteuid() != 0) {
		snprintf(want, sizeof want, "inputs[0]: cannot read %s/secret.dat: Permission denied", dir);
		UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": [\"secret.dat\"]"), want));
	}
	UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": [\"*.csv\"]"), "inputs[0]: no file matches \"*.csv\""));
	UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": [\"d*\"]"), "inputs[0]: no file matches \"d*\"")); /* only a directory */
	UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": [\"job:../x\"]"), "inputs[0]: expected a job id"));
	UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": [\"job:\"]"), "inputs[0]: expected a job id"));
	UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": [{\"job\": \"a/b\"}]"), "inputs[0].job: expected a job id"));
	UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": [\"http://\"]"), "inputs[0]: expected an http:// or https:// URL with a host"));
	UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": [{\"text\": 5}]"), "inputs[0].text: expected a string, got 5"));
	UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": [{\"txt\": \"x\"}]"), "inputs[0].txt: unknown key (known keys: file, url, text, job)"));
	UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": [{\"text\": \"x\", \"url\": \"http://h/\"}]"), "inputs[0]: expected one of {\"file\": PATH}"));
	UNIT_CHECK(bad(JOB_BUT_INPUTS("\"inputs\": [{}]"), "inputs[0]: expected one of"));
}

UNIT_TEST(bad_names)
{
	UNIT_CHECK(bad(JOB_BUT_NAME("\"name\": \"../x\""), "name: expected 1 to 100 of A-Z a-z 0-9 . _ - (not starting with . or -), got \"../x\""));
	UNIT_CHECK(bad(JOB_BUT_NAME("\"name\": \"a/b\""), "name: expected 1 to 100 of"));
	UNIT_CHECK(bad(JOB_BUT_NAME("\"name\": \"..\""), "name: expected"));
	UNIT_CHECK(bad(JOB_BUT_NAME("\"name\": \".hidden\""), "name: expected"));
	UNIT_CHECK(bad(JOB_BUT_NAME("\"name\": \"-rf\""), "name: expected"));
	UNIT_CHECK(bad(JOB_BUT_NAME("\"name\": \"\""), "name: expected"));
	UNIT_CHECK(bad(JOB_BUT_NAME("\"name\": \"a b\""), "name: expected"));
	UNIT_CHECK(bad(JOB_BUT_NAME("\"name\": 5"), "name: expected 1 to 100 of A-Z a-z 0-9 . _ - (not starting with . or -), got 5"));
	UNIT_CHECK(bad("{" INPUTS ", " MAP ", " REDUCE ", " OUTPUT "}", "name: missing"));
	char json[512], name[102];
	memset(name, 'x', 101);
	name[101] = '\0';
	snprintf(json, sizeof json, JOB_BUT_NAME("\"name\": \"%s\""), name);
	UNIT_CHECK(bad(json, "name: expected"));
	name[100] = '\0';
	snprintf(json, sizeof json, JOB_BUT_NAME("\"name\": \"%s\""), name);
	mr_job_free(good(json));
	UNIT_CHECK(mr_job_id_ok("0b6f3c1e-4a2d-4c1e-9f00-123456789abc") && !mr_job_id_ok("../x") && !mr_job_id_ok(NULL));
}

UNIT_TEST(bad_output)
{
	char want[512];
	/* root may write anywhere, but no one makes a directory under a regular file */
	UNIT_CHECK(bad(JOB_BUT_OUTPUT("\"output\": {\"dir\": \"a.txt/x\"}"), "output.dir: cannot create directory "));
	snprintf(want, sizeof want, "output.dir: %s/a.txt is not a directory", dir);
	UNIT_CHECK(bad(JOB_BUT_OUTPUT("\"output\": {\"dir\": \"a.txt\"}"), want));
	if (geteuid() != 0) {
		snprintf(want, sizeof want, "output.dir: cannot write in %s/ro: Permission denied", dir);
		UNIT_CHECK(bad(JOB_BUT_OUTPUT("\"output\": {\"dir\": \"ro\"}"), want));
		UNIT_CHECK(bad(JOB_BUT_OUTPUT("\"output\": {\"dir\": \"ro/x\"}"), "output.dir: cannot create directory"));
	}
	UNIT_CHECK(bad("{" NAME ", " INPUTS ", " MAP ", " REDUCE "}", "output: missing"));
	UNIT_CHECK(bad(JOB_BUT_OUTPUT("\"output\": \"out\""), "output: expected an object"));
	UNIT_CHECK(bad(JOB_BUT_OUTPUT("\"output\": {\"format\": \"tsv\"}"), "output.dir: missing"));
	UNIT_CHECK(bad(JOB_BUT_OUTPUT("\"output\": {\"dir\": \"out\", \"format\": \"csv\"}"), "output.format: expected one of tsv, jsonl, got \"csv\""));
	UNIT_CHECK(bad(JOB_BUT_OUTPUT("\"output\": {\"dir\": \"out\", \"fmt\": \"tsv\"}"), "output.fmt: unknown key (known keys: dir, format)"));
}

UNIT_TEST(bad_values)
{
	UNIT_CHECK(bad(JOB_PLUS("\"chunk_bytes\": \"64M\""), "chunk_bytes: expected an integer from 4096 to 1073741824, got \"64M\""));
	UNIT_CHECK(bad(JOB_PLUS("\"chunk_bytes\": 100"), "chunk_bytes: expected an integer from 4096"));
	UNIT_CHECK(bad(JOB_PLUS("\"partitions\": 0"), "partitions: expected an integer from 1 to 1024, got 0"));
	UNIT_CHECK(bad(JOB_PLUS("\"partitions\": 1025"), "partitions: expected an integer from 1 to 1024, got 1025"));
	UNIT_CHECK(bad(JOB_PLUS("\"partitions\": 2.5"), "partitions: expected an integer"));
	UNIT_CHECK(bad(JOB_PLUS("\"partitioner\": \"range\""), "partitioner: expected one of hash, got \"range\""));
	UNIT_CHECK(bad(JOB_PLUS("\"sort\": \"value\""), "sort: expected one of key, value-desc, got \"value\""));
	UNIT_CHECK(bad(JOB_PLUS("\"params\": [1]"), "params: expected an object, got [1]"));
	UNIT_CHECK(bad(JOB_PLUS("\"partiton\": 2"), "partiton: unknown key (known keys: name, inputs, chunk_bytes, map, combiner, reduce,"));
	UNIT_CHECK(bad(JOB_PLUS("\"partitions\": 2, \"partitions\": 3"), "partitions: duplicate key"));
	UNIT_CHECK(bad("[1]", "expected a JSON object (a job), got [1]"));
	UNIT_CHECK(bad("{\"name\": \"x\",\n  \"inputs\": [}", "malformed JSON at line 2, column 14"));
	UNIT_CHECK(bad("", "malformed JSON"));
	UNIT_CHECK(bad(JOB_PLUS("\"sort\": \"key\"") "\n x", "malformed JSON at line 2, column 2"));
}

static char *print(const mr_job *j)
{
	cJSON *o = mr_job_to_json(j);
	char *s = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	return s;
}

UNIT_TEST(round_trip)
{
	mr_job *j = good(full_job), *back = NULL;
	if (j == NULL)
		return;
	cJSON *o = mr_job_to_json(j);
	node_err err = {0};
	UNIT_CHECK(o && mr_job_from_json(o, &back, &err) == 0);
	char *one = print(j), *two = back ? print(back) : NULL;
	UNIT_CHECK(one && two && strcmp(one, two) == 0);
	/* the normalised form lists files, not globs, and paths are absolute */
	UNIT_CHECK(one && !strstr(one, "*.txt") && strstr(one, "{\"file\":\"/"));
	cJSON_free(one);
	cJSON_free(two);
	cJSON_Delete(o);
	mr_job_free(back);
	/* a normalised job never resolves relative paths or expands globs */
	cJSON *rel = cJSON_Parse(JOB_BUT_INPUTS("\"inputs\": [\"/abs/file\"]"));
	UNIT_CHECK(mr_job_from_json(rel, &back, &err) == NODE_EINVAL && strstr(err.msg, "output.dir: expected an absolute path, got \"out\""));
	cJSON_Delete(rel);
	cJSON *glob = cJSON_Parse(JOB_BUT_INPUTS("\"inputs\": [\"/abs/*.txt\"]"));
	UNIT_CHECK(mr_job_from_json(glob, &back, &err) == NODE_EINVAL && strstr(err.msg, "inputs[0]: a glob"));
	cJSON_Delete(glob);
	mr_job_free(j);
}

UNIT_TEST(load)
{
	char path[256];
	snprintf(path, sizeof path, "%s/lib/job.json", dir);
	FILE *f = fopen(path, "w");
	UNIT_CHECK(f != NULL);
	if (f == NULL)
		return;
	/* relative paths in a job file resolve next to it, not in the cwd */
	fputs("{\"name\": \"l\", \"inputs\": [\"../a.txt\"], \"map\": \"wordcount\", \"reduce\": \"sum\","
	      " \"output\": {\"dir\": \"res\"}}", f);
	fclose(f);
	mr_job *j = NULL;
	node_err err = {0};
	UNIT_CHECK(mr_job_load(path, &j, &err) == 0);
	UNIT_CHECK(j && ends_with(j->inputs[0].value, "/a.txt") && !strstr(j->inputs[0].value, ".."));
	UNIT_CHECK(j && ends_with(j->output_dir, "/lib/res"));
	mr_job_free(j);
	snprintf(path, sizeof path, "%s/a.txt", dir); /* not JSON */
	UNIT_CHECK(mr_job_load(path, &j, &err) == NODE_EINVAL && strstr(err.msg, "/a.txt: malformed JSON at line 1, column 1") && j == NULL);
	UNIT_CHECK(mr_job_load("/nonexistent/job.json", &j, &err) != 0 && strstr(err.msg, "/nonexistent/job.json"));
}

static void setup(void)
{
	snprintf(dir, sizeof dir, "/tmp/job_test.XXXXXX");
	UNIT_CHECK(mkdtemp(dir) != NULL);
	char p[256];
	write_file("a.txt", "There are known knowns.\n", 0644);
	write_file("b.txt", "These are things we know that we know.\n", 0644);
	write_file("c.log", "not a .txt\n", 0644);
	write_file("secret.dat", "unreadable\n", 0);
	write_file("map.sh", "#!/bin/sh\ntr -cs A-Za-z '\\n'\n", 0755);
	write_file("noexec.sh", "#!/bin/sh\n", 0644);
	snprintf(p, sizeof p, "%s/d.txt", dir); /* a directory the *.txt glob skips */
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/ro", dir);
	mkdir(p, 0555);
	snprintf(p, sizeof p, "%s/lib", dir);
	mkdir(p, 0755);
	write_file("lib/wc.so", "not really ELF: only its readability is checked\n", 0644);
}

int main(void)
{
	setup();
	UNIT_RUN(every_field);
	UNIT_RUN(defaults);
	UNIT_RUN(builtins);
	UNIT_RUN(bad_functions);
	UNIT_RUN(bad_inputs);
	UNIT_RUN(bad_names);
	UNIT_RUN(bad_output);
	UNIT_RUN(bad_values);
	UNIT_RUN(round_trip);
	UNIT_RUN(load);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "chmod -R u+rwx %s && rm -rf %s", dir, dir);
	UNIT_CHECK(system(cmd) == 0);
	return unit_finish("job_test");
}
