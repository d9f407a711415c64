/* Job files (node-job(5)): every key checked against a short list, every
 * error naming its JSON path and what was given, then normalised (globs
 * expanded, paths absolute, defaults filled) so all workers see one job. */
#include "mapreduce/job.h"

#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "core/msg.h"

#define JPATH 160 /* a JSON path in an error; longer ones are cut */
#define FUNCTION_MAX 128

static const char *const map_builtins[] = {"wordcount", "grep", "identity", "split-words", NULL};
static const char *const reduce_builtins[] = {"sum", "count", "min", "max", "identity", "concat", NULL};
static const char *const top_keys[] = {"name", "inputs", "chunk_bytes", "map", "combiner", "reduce", "partitions",
    "partitioner", "sort", "output", "params", NULL};
static const char *const fn_keys[] = {"plugin", "function", "exec", NULL};
static const char *const input_keys[] = {"file", "url", "text", "job", NULL};
static const char *const output_keys[] = {"dir", "format", NULL};

/* What the checks need besides the JSON. */
typedef struct pctx {
	const char *base;   /* absolute directory for relative paths; NULL: paths must be absolute */
	int fs;             /* expand globs, check files, create the output directory */
	const cJSON *params;
	node_err *err;
} pctx;

/* ---- errors ---- */

static int fail(pctx *c, const char *path, const char *fmt, ...) NODE_PRINTF(3, 4);
static int fail(pctx *c, const char *path, const char *fmt, ...)
{
	char msg[sizeof c->err->msg];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (path[0] == '\0')
		return node_err_set(c->err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s", msg);
	return node_err_set(c->err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "%s: %s", path, msg);
}

static int oom(pctx *c)
{
	return node_err_set(c->err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory reading the job");
}


static int expect(pctx *c, const char *path, const char *want, const cJSON *got)
{
	char g[NODE_EXCERPT_LEN + 8];
	node_json_excerpt(got, g, sizeof g);
	return fail(c, path, "expected %s, got %s", want, g);
}

/* "a, b, c" from a NULL-terminated list. */
static void list_words(const char *const *words, char *out, size_t n)
{
	size_t used = 0;
	out[0] = '\0';
	for (size_t i = 0; words[i] && used < n; i++)
		used += (size_t)snprintf(out + used, n - used, "%s%s", i ? ", " : "", words[i]);
}

static int in_list(const char *s, const char *const *words)
{
	for (size_t i = 0; words[i]; i++)
		if (strcmp(s, words[i]) == 0)
			return 1;
	return 0;
}

/* ---- JSON paths and keys ---- */

/* A path cut short ends in "..." so the error does not look exact. */
static void jkey(char *out, const char *path, const char *key)
{
	if (snprintf(out, JPATH, "%s%s%s", path, path[0] ? "." : "", key) >= JPATH)
		memcpy(out + JPATH - 4, "...", 4);
}

static void jindex(char *out, const char *path, size_t i)
{
	if (snprintf(out, JPATH, "%s[%zu]", path, i) >= JPATH)
		memcpy(out + JPATH - 4, "...", 4);
}

/* Unknown and repeated keys are errors: a typo must not silently become
 * a default. */
static int check_keys(pctx *c, const char *path, const cJSON *obj, const char *const *known)
{
	char p[JPATH], words[256];
	for (const cJSON *k = obj->child; k; k = k->next) {
		jkey(p, path, k->string);
		if (!in_list(k->string, known)) {
			list_words(known, words, sizeof words);
			return fail(c, p, "unknown key (known keys: %s)", words);
		}
		for (const cJSON *e = obj->child; e != k; e = e->next)
			if (strcmp(e->string, k->string) == 0)
				return fail(c, p, "duplicate key");
	}
	return 0;
}

static const cJSON *get(const cJSON *obj, const char *key)
{
	return cJSON_GetObjectItemCaseSensitive(obj, key);
}

/* ---- small values ---- */

static int want_string(pctx *c, const char *path, const cJSON *v, const char *what)
{
	if (!cJSON_IsString(v) || v->valuestring[0] == '\0')
		return expect(c, path, what, v);
	return 0;
}

static int want_int(pctx *c, const char *path, const cJSON *v, long long min, long long max, long long *out)
{
	double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
	if (!isfinite(d) || d != floor(d) || d < (double)min || d > (double)max) {
		char want[96];
		snprintf(want, sizeof want, "an integer from %lld to %lld", min, max);
		return expect(c, path, want, v);
	}
	*out = (long long)d;
	return 0;
}

static int want_choice(pctx *c, const char *path, const cJSON *v, const char *const *choices, int *out)
{
	for (int i = 0; cJSON_IsString(v) && choices[i]; i++)
		if (strcmp(v->valuestring, choices[i]) == 0) {
			*out = i;
			return 0;
		}
	char words[128], want[160];
	list_words(choices, words, sizeof words);
	snprintf(want, sizeof want, "one of %s", words);
	return expect(c, path, want, v);
}

static int dup_str(pctx *c, const char *s, char **out)
{
	*out = strdup(s);
	return *out ? 0 : oom(c);
}

/* Names and ids become file names: a safe alphabet, no leading dot (no
 * ".", "..", hidden files) and no leading dash (not an option). */
static int safe_name(const char *s, size_t max)
{
	size_t n = strlen(s);
	if (n == 0 || n > max || s[0] == '.' || s[0] == '-')
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

int mr_job_id_ok(const char *s)
{
	return s && safe_name(s, MR_JOB_ID_MAX);
}

static int parse_name(pctx *c, const cJSON *v, mr_job *j)
{
	if (v == NULL)
		return fail(c, "name", "missing (1 to %d of A-Z a-z 0-9 . _ -)", MR_JOB_NAME_MAX);
	if (!cJSON_IsString(v) || !safe_name(v->valuestring, MR_JOB_NAME_MAX)) {
		char want[128];
		snprintf(want, sizeof want, "1 to %d of A-Z a-z 0-9 . _ - (not starting with . or -)", MR_JOB_NAME_MAX);
		return expect(c, "name", want, v);
	}
	return dup_str(c, v->valuestring, &j->name);
}

/* ---- paths ---- */

/* base/rel, or rel when it is absolute; *out is malloc'd. Without a base
 * (a normalised job) a relative path is an error. */
static int abs_path(pctx *c, const char *path, const char *rel, char **out)
{
	if (rel[0] != '/' && c->base == NULL)
		return fail(c, path, "expected an absolute path, got \"%s\"", rel);
	const char *sep = rel[0] == '/' || c->base[strlen(c->base) - 1] == '/' ? "" : "/";
	int n = asprintf(out, "%s%s%s", rel[0] == '/' ? "" : c->base, sep, rel);
	if (n < 0) {
		*out = NULL;
		return oom(c);
	}
	return 0;
}

/* A readable regular file, named canonically (realpath) in *out. */
static int readable_file(pctx *c, const char *path, const char *file, char **out)
{
	struct stat st;
	int fd = open(file, O_RDONLY | O_CLOEXEC | O_NONBLOCK); /* a FIFO must not hang us */
	int e = fd < 0 ? errno : fstat(fd, &st) != 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : 0;
	if (fd >= 0)
		close(fd);
	if (e == 0 && !S_ISREG(st.st_mode))
		return fail(c, path, "cannot read %s: not a regular file", file);
	if (e != 0)
		return fail(c, path, "cannot read %s: %s", file, strerror(e));
	*out = realpath(file, NULL);
	return *out ? 0 : fail(c, path, "cannot resolve %s: %s", file, strerror(errno));
}

/* A file given by the user: absolute, and when the file system is ours,
 * readable and canonical. */
static int user_file(pctx *c, const char *path, const char *rel, char **out)
{
	char *p;
	int rc = abs_path(c, path, rel, &p);
	if (rc != 0 || !c->fs) {
		*out = rc == 0 ? p : NULL;
		return rc;
	}
	rc = readable_file(c, path, p, out);
	free(p);
	return rc;
}

/* ---- inputs ---- */

typedef struct inlist {
	mr_input *v;
	size_t n, cap;
} inlist;

/* Takes value (freed on failure). */
static int add_input(pctx *c, const char *path, inlist *l, mr_input_kind kind, char *value)
{
	if (l->n == MR_JOB_MAX_INPUTS) {
		free(value);
		return fail(c, path, "more than %d inputs", MR_JOB_MAX_INPUTS);
	}
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 8;
		mr_input *nv = realloc(l->v, cap * sizeof *nv);
		if (nv == NULL) {
			free(value);
			return oom(c);
		}
		l->v = nv;
		l->cap = cap;
	}
	l->v[l->n].kind = kind;
	l->v[l->n++].value = value;
	return 0;
}

static int has_glob(const char *s)
{
	return strpbrk(s, "*?[") != NULL;
}

/* The base directory with glob's special characters escaped, so that only
 * the user's pattern is a pattern. */
static char *glob_pattern(const char *base, const char *pat)
{
	if (pat[0] == '/')
		return strdup(pat);
	char *out = malloc(2 * strlen(base) + strlen(pat) + 2), *o = out;
	if (out == NULL)
		return NULL;
	for (const char *b = base; *b; b++) {
		if (strchr("*?[\\", *b))
			*o++ = '\\';
		*o++ = *b;
	}
	sprintf(o, "/%s", pat);
	return out;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Regular files matching pat, sorted bytewise so every machine agrees;
 * directories are skipped (GLOB_MARK ends their names with '/'). */
static int add_glob_matches(pctx *c, const char *path, const char *pat, const glob_t *g, inlist *l)
{
	size_t before = l->n;
	qsort(g->gl_pathv, g->gl_pathc, sizeof *g->gl_pathv, cmp_str);
	for (size_t i = 0; i < g->gl_pathc; i++) {
		const char *m = g->gl_pathv[i];
		if (m[strlen(m) - 1] == '/')
			continue;
		char *file;
		int rc = readable_file(c, path, m, &file);
		if (rc == 0)
			rc = add_input(c, path, l, MR_IN_FILE, file);
		if (rc != 0)
			return rc;
	}
	return l->n > before ? 0 : fail(c, path, "no file matches \"%s\"", pat);
}

static int add_glob(pctx *c, const char *path, const char *pat, inlist *l)
{
	if (!c->fs)
		return fail(c, path, "a glob (\"%s\") in a normalised job: expected {\"file\": PATH}", pat);
	char *full = glob_pattern(c->base, pat);
	if (full == NULL)
		return oom(c);
	glob_t g;
	int grc = glob(full, GLOB_MARK | GLOB_NOSORT, NULL, &g);
	free(full);
	int rc;
	if (grc == 0)
		rc = add_glob_matches(c, path, pat, &g, l);
	else if (grc == GLOB_NOMATCH)
		rc = fail(c, path, "no file matches \"%s\"", pat);
	else if (grc == GLOB_NOSPACE)
		rc = oom(c);
	else
		rc = fail(c, path, "cannot expand \"%s\": a directory could not be read", pat);
	if (grc != GLOB_NOMATCH)
		globfree(&g);
	return rc;
}

static int url_ok(const char *s)
{
	const char *h = strncmp(s, "http://", 7) == 0 ? s + 7 : strncmp(s, "https://", 8) == 0 ? s + 8 : NULL;
	if (h == NULL || *h == '\0' || *h == '/')
		return 0;
	for (const char *p = s; *p; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			return 0;
	return 1;
}

static int add_kind(pctx *c, const char *path, inlist *l, mr_input_kind kind, const char *s)
{
	char *v;
	if (kind == MR_IN_URL && !url_ok(s))
		return fail(c, path, "expected an http:// or https:// URL with a host, got \"%s\"", s);
	if (kind == MR_IN_JOB && !mr_job_id_ok(s))
		return fail(c, path, "expected a job id (1 to %d of A-Z a-z 0-9 . _ -, not starting with . or -), got \"%s\"",
		    MR_JOB_ID_MAX, s);
	int rc = kind == MR_IN_FILE ? user_file(c, path, s, &v) : dup_str(c, s, &v);
	return rc ? rc : add_input(c, path, l, kind, v);
}

/* The short forms: "job:ID", a URL, a glob, or a file path. */
static int input_string(pctx *c, const char *path, const char *s, inlist *l)
{
	if (strncmp(s, "job:", 4) == 0)
		return add_kind(c, path, l, MR_IN_JOB, s + 4);
	if (strncmp(s, "http://", 7) == 0 || strncmp(s, "https://", 8) == 0)
		return add_kind(c, path, l, MR_IN_URL, s);
	if (has_glob(s))
		return add_glob(c, path, s, l);
	return add_kind(c, path, l, MR_IN_FILE, s);
}

/* {"text": ...} and the explicit forms the normalised job uses. */
static int input_object(pctx *c, const char *path, const cJSON *o, inlist *l)
{
	int rc = check_keys(c, path, o, input_keys);
	if (rc != 0)
		return rc;
	if (cJSON_GetArraySize(o) != 1)
		return expect(c, path, "one of {\"file\": PATH}, {\"url\": URL}, {\"text\": TEXT}, {\"job\": ID}", o);
	char p[JPATH];
	jkey(p, path, o->child->string);
	int kind = 0;
	for (int i = 0; input_keys[i]; i++)
		if (strcmp(o->child->string, input_keys[i]) == 0)
			kind = i;
	const mr_input_kind kinds[] = {MR_IN_FILE, MR_IN_URL, MR_IN_TEXT, MR_IN_JOB};
	const cJSON *v = o->child;
	if (kinds[kind] == MR_IN_TEXT)
		return cJSON_IsString(v) ? add_kind(c, p, l, MR_IN_TEXT, v->valuestring) : expect(c, p, "a string", v);
	rc = want_string(c, p, v, "a non-empty string");
	return rc ? rc : add_kind(c, p, l, kinds[kind], v->valuestring);
}

static int parse_inputs(pctx *c, const cJSON *v, mr_job *j)
{
	if (v == NULL)
		return fail(c, "inputs", "missing (at least one: a file, a glob, a URL, {\"text\": ...} or \"job:ID\")");
	if (!cJSON_IsArray(v) || v->child == NULL)
		return expect(c, "inputs", "a non-empty array of inputs", v);
	inlist l = {0};
	char p[JPATH];
	size_t i = 0;
	int rc = 0;
	for (const cJSON *e = v->child; e && rc == 0; e = e->next, i++) {
		jindex(p, "inputs", i);
		if (cJSON_IsString(e) && e->valuestring[0])
			rc = input_string(c, p, e->valuestring, &l);
		else if (cJSON_IsObject(e))
			rc = input_object(c, p, e, &l);
		else
			rc = expect(c, p, "a file, a glob, a URL, \"job:ID\" or {\"text\": ...}", e);
	}
	j->inputs = l.v; /* owned by j from here, also on error */
	j->n_inputs = l.n;
	return rc;
}

/* ---- functions ---- */

static int identifier_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > FUNCTION_MAX || (s[0] >= '0' && s[0] <= '9'))
		return 0;
	return strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

static int fn_plugin(pctx *c, const char *path, const cJSON *o, mr_fn *f)
{
	char p[JPATH];
	const cJSON *so = get(o, "plugin"), *fn = get(o, "function");
	jkey(p, path, "plugin");
	int rc = want_string(c, p, so, "the path of a shared object");
	if (rc == 0)
		rc = user_file(c, p, so->valuestring, &f->plugin);
	jkey(p, path, "function");
	if (rc == 0 && fn == NULL)
		return fail(c, p, "missing (the name of the function in the plugin)");
	if (rc == 0 && (!cJSON_IsString(fn) || !identifier_ok(fn->valuestring)))
		return expect(c, p, "a C function name", fn);
	f->kind = MR_FN_PLUGIN;
	return rc ? rc : dup_str(c, fn->valuestring, &f->function);
}

/* A program with a '/' is the user's file (made absolute, must be
 * executable); a bare name is looked up in PATH where it runs. */
static int exec_prog(pctx *c, const char *path, const char *prog, char **out)
{
	if (strchr(prog, '/') == NULL)
		return dup_str(c, prog, out);
	char *p;
	int rc = abs_path(c, path, prog, &p);
	if (rc != 0 || !c->fs) {
		*out = rc == 0 ? p : NULL;
		return rc;
	}
	*out = access(p, X_OK) == 0 ? realpath(p, NULL) : NULL;
	if (*out == NULL)
		rc = fail(c, path, "cannot run %s: %s", p, strerror(errno));
	free(p);
	return rc;
}

static int fn_exec(pctx *c, const char *path, const cJSON *a, mr_fn *f)
{
	int n = cJSON_GetArraySize(a);
	if (!cJSON_IsArray(a) || n < 1 || n > MR_JOB_MAX_ARGV || !cJSON_IsString(a->child) || !a->child->valuestring[0])
		return expect(c, path, "an array of strings, the program then its arguments (no shell command line)", a);
	f->kind = MR_FN_EXEC;
	f->argv = calloc((size_t)n + 1, sizeof *f->argv);
	if (f->argv == NULL)
		return oom(c);
	char p[JPATH];
	int rc = 0;
	for (const cJSON *e = a->child; e && rc == 0; e = e->next, f->argc++) {
		jindex(p, path, f->argc);
		if (!cJSON_IsString(e))
			return expect(c, p, "a string", e);
		rc = f->argc == 0 ? exec_prog(c, p, e->valuestring, &f->argv[0]) : dup_str(c, e->valuestring, &f->argv[f->argc]);
	}
	return rc;
}

static int fn_object(pctx *c, const char *path, const cJSON *o, mr_fn *f)
{
	int rc = check_keys(c, path, o, fn_keys);
	if (rc != 0)
		return rc;
	const cJSON *ex = get(o, "exec");
	char p[JPATH];
	if (ex && (get(o, "plugin") || get(o, "function")))
		return fail(c, path, "give either {\"plugin\", \"function\"} or {\"exec\"}, not both");
	if (ex) {
		jkey(p, path, "exec");
		return fn_exec(c, p, ex, f);
	}
	if (get(o, "plugin") == NULL)
		return expect(c, path, "{\"plugin\": FILE, \"function\": NAME} or {\"exec\": [PROGRAM, ARG...]}", o);
	return fn_plugin(c, path, o, f);
}

/* The built-ins that read a parameter (modules/mapreduce/builtin.h) get
 * it checked now, once, not on every worker: grep's params.pattern (a
 * plain substring) and concat's optional params.separator. */
static int builtin_params(pctx *c, const char *path, const char *name)
{
	const char *key = strcmp(name, "grep") == 0 ? "pattern" : strcmp(name, "concat") == 0 ? "separator" : NULL;
	const cJSON *v = key && c->params ? get(c->params, key) : NULL;
	char p[JPATH];
	if (key == NULL)
		return 0;
	if (v == NULL && strcmp(name, "grep") == 0)
		return fail(c, path, "grep needs params.pattern (the text a line must contain)");
	jkey(p, "params", key);
	return v == NULL || cJSON_IsString(v) ? 0 : expect(c, p, "a string", v);
}

static int fn_builtin(pctx *c, const char *path, const char *name, const char *const *known, mr_fn *f)
{
	if (!in_list(name, known)) {
		char words[128];
		list_words(known, words, sizeof words);
		return fail(c, path,
		    "unknown function \"%s\" (known: %s; or {\"plugin\": FILE, \"function\": NAME}, or {\"exec\": [PROGRAM, ARG...]})",
		    name, words);
	}
	f->kind = MR_FN_BUILTIN;
	int rc = builtin_params(c, path, name);
	return rc ? rc : dup_str(c, name, &f->name);
}

static int parse_fn(pctx *c, const char *path, const cJSON *v, const char *const *known, mr_fn *f)
{
	if (cJSON_IsString(v))
		return fn_builtin(c, path, v->valuestring, known, f);
	if (cJSON_IsObject(v))
		return fn_object(c, path, v, f);
	return expect(c, path, "a built-in function name, {\"plugin\": FILE, \"function\": NAME} or {\"exec\": [PROGRAM, ARG...]}", v);
}

static int parse_fns(pctx *c, const cJSON *doc, mr_job *j)
{
	const cJSON *map = get(doc, "map"), *red = get(doc, "reduce"), *comb = get(doc, "combiner");
	char words[128];
	if (map == NULL) {
		list_words(map_builtins, words, sizeof words);
		return fail(c, "map", "missing (a built-in: %s; a plugin; or an exec program)", words);
	}
	int rc = parse_fn(c, "map", map, map_builtins, &j->map);
	if (rc == 0 && comb)
		rc = parse_fn(c, "combiner", comb, reduce_builtins, &j->combiner);
	if (rc == 0 && red == NULL) {
		list_words(reduce_builtins, words, sizeof words);
		return fail(c, "reduce", "missing (a built-in: %s; a plugin; or an exec program)", words);
	}
	return rc ? rc : parse_fn(c, "reduce", red, reduce_builtins, &j->reduce);
}

/* ---- output, params, numbers ---- */

static int output_dir_ready(pctx *c, const char *dir, char **out)
{
	node_err e;
	struct stat st;
	if (node_file_mkdirs(dir, &e) != 0)
		return fail(c, "output.dir", "%s", e.msg);
	if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
		return fail(c, "output.dir", "%s is not a directory", dir);
	if (access(dir, W_OK | X_OK) != 0)
		return fail(c, "output.dir", "cannot write in %s: %s", dir, strerror(errno));
	*out = realpath(dir, NULL);
	return *out ? 0 : fail(c, "output.dir", "cannot resolve %s: %s", dir, strerror(errno));
}

static int parse_output(pctx *c, const cJSON *o, mr_job *j)
{
	if (o == NULL)
		return fail(c, "output", "missing ({\"dir\": PATH, \"format\": \"tsv\" or \"jsonl\"})");
	if (!cJSON_IsObject(o))
		return expect(c, "output", "an object {\"dir\": PATH, \"format\": \"tsv\" or \"jsonl\"}", o);
	int rc = check_keys(c, "output", o, output_keys);
	const cJSON *dir = get(o, "dir"), *fmt = get(o, "format");
	if (rc == 0 && dir == NULL)
		return fail(c, "output.dir", "missing (the directory the part files go in)");
	if (rc == 0)
		rc = want_string(c, "output.dir", dir, "a directory path");
	static const char *const formats[] = {"tsv", "jsonl", NULL};
	int f = 0;
	if (rc == 0 && fmt)
		rc = want_choice(c, "output.format", fmt, formats, &f);
	j->format = f == 1 ? MR_FORMAT_JSONL : MR_FORMAT_TSV;
	char *abs = NULL;
	if (rc == 0)
		rc = abs_path(c, "output.dir", dir->valuestring, &abs);
	if (rc == 0 && c->fs) {
		rc = output_dir_ready(c, abs, &j->output_dir);
		free(abs);
	} else {
		j->output_dir = abs;
	}
	return rc;
}

static int parse_params(pctx *c, const cJSON *v, mr_job *j)
{
	if (v && !cJSON_IsObject(v))
		return expect(c, "params", "an object", v);
	c->params = v;
	j->params = v ? cJSON_PrintUnformatted(v) : strdup("{}");
	if (j->params == NULL)
		return oom(c);
	if (strlen(j->params) > MR_JOB_MAX_PARAMS)
		return fail(c, "params", "larger than %u bytes of JSON", MR_JOB_MAX_PARAMS);
	return 0;
}

static int parse_numbers(pctx *c, const cJSON *doc, mr_job *j)
{
	long long x = MR_JOB_CHUNK_DEFAULT;
	const cJSON *v = get(doc, "chunk_bytes");
	int rc = v ? want_int(c, "chunk_bytes", v, MR_JOB_CHUNK_MIN, MR_JOB_CHUNK_MAX, &x) : 0;
	j->chunk_bytes = (unsigned long long)x;
	x = 1;
	v = get(doc, "partitions");
	if (rc == 0 && v)
		rc = want_int(c, "partitions", v, 1, MR_JOB_PARTITIONS_MAX, &x);
	j->partitions = (int)x;
	return rc;
}

static int parse_order(pctx *c, const cJSON *doc, mr_job *j)
{
	static const char *const partitioners[] = {"hash", NULL};
	static const char *const sorts[] = {"key", "value-desc", NULL};
	const cJSON *part = get(doc, "partitioner"), *sort = get(doc, "sort");
	int i = 0, rc = part ? want_choice(c, "partitioner", part, partitioners, &i) : 0;
	if (rc == 0 && sort)
		rc = want_choice(c, "sort", sort, sorts, &i);
	j->sort = i == 1 ? MR_SORT_VALUE_DESC : MR_SORT_KEY;
	return rc;
}

/* ---- the whole job ---- */

static int parse_doc(pctx *c, const cJSON *doc, mr_job **out)
{
	*out = NULL;
	if (!cJSON_IsObject(doc))
		return expect(c, "", "a JSON object (a job)", doc);
	mr_job *j = calloc(1, sizeof *j);
	if (j == NULL)
		return oom(c);
	int rc = check_keys(c, "", doc, top_keys);
	if (rc == 0)
		rc = parse_name(c, get(doc, "name"), j);
	if (rc == 0)
		rc = parse_params(c, get(doc, "params"), j);
	if (rc == 0)
		rc = parse_inputs(c, get(doc, "inputs"), j);
	if (rc == 0)
		rc = parse_numbers(c, doc, j);
	if (rc == 0)
		rc = parse_fns(c, doc, j);
	if (rc == 0)
		rc = parse_order(c, doc, j);
	if (rc == 0)
		rc = parse_output(c, get(doc, "output"), j);
	if (rc != 0) {
		mr_job_free(j);
		return rc;
	}
	*out = j;
	return 0;
}

/* "line L, column C" of where cJSON stopped. */
static int json_error(node_err *err, const char *text, size_t len, const char *at)
{
	if (at == NULL || at < text || at > text + len)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "malformed JSON");
	int line = 1, col = 1;
	for (const char *p = text; p < at; p++, col++)
		if (*p == '\n') {
			line++;
			col = 0;
		}
	return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "malformed JSON at line %d, column %d", line, col);
}

/* base_dir made absolute, or the current directory. */
static char *absolute_base(const char *base_dir)
{
	char cwd[PATH_MAX];
	if (base_dir && base_dir[0] == '/')
		return strdup(base_dir);
	if (getcwd(cwd, sizeof cwd) == NULL)
		return NULL;
	char *out;
	if (base_dir == NULL || base_dir[0] == '\0')
		return strdup(cwd);
	return asprintf(&out, "%s/%s", cwd, base_dir) < 0 ? NULL : out;
}

int mr_job_parse(const char *json_text, size_t len, const char *base_dir, mr_job **out, node_err *err)
{
	*out = NULL;
	const char *end = NULL;
	cJSON *doc = cJSON_ParseWithLengthOpts(json_text, len, &end, 0);
	if (doc == NULL) /* end is where it stopped (cJSON_GetErrorPtr is a global) */
		return json_error(err, json_text, len, end);
	while (end < json_text + len && strchr(" \t\r\n", *end) && *end)
		end++;
	if (end < json_text + len) { /* cJSON stops after the object: more text is an error too */
		cJSON_Delete(doc);
		return json_error(err, json_text, len, end);
	}
	char *base = absolute_base(base_dir);
	pctx c = {.base = base, .fs = 1, .err = err};
	int rc = base ? parse_doc(&c, doc, out)
	              : node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot find the current directory: %s", strerror(errno));
	free(base);
	cJSON_Delete(doc);
	return rc;
}

int mr_job_from_json(const cJSON *json, mr_job **out, node_err *err)
{
	pctx c = {.base = NULL, .fs = 0, .err = err};
	return parse_doc(&c, json, out);
}

int mr_job_load(const char *path, mr_job **out, node_err *err)
{
	char *text, *slash;
	size_t len;
	*out = NULL;
	int rc = node_file_read(path, MR_JOB_FILE_MAX, &text, &len, err);
	if (rc != 0)
		return rc;
	char *dir = strdup(path);
	if (dir == NULL) {
		free(text);
		return node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory reading %s", path);
	}
	slash = strrchr(dir, '/');
	if (slash == NULL)
		dir[0] = '\0'; /* the current directory */
	else
		slash[slash == dir ? 1 : 0] = '\0'; /* "/job.json" lives in "/" */
	rc = mr_job_parse(text, len, dir, out, err);
	if (rc != 0)
		node_err_prefix(err, "%s: ", path);
	free(dir);
	free(text);
	return rc;
}

/* ---- freeing and printing ---- */

static void fn_free(mr_fn *f)
{
	free(f->name);
	free(f->plugin);
	free(f->function);
	for (size_t i = 0; f->argv && f->argv[i]; i++)
		free(f->argv[i]);
	free(f->argv);
}

void mr_job_free(mr_job *j)
{
	if (j == NULL)
		return;
	free(j->name);
	for (size_t i = 0; i < j->n_inputs; i++)
		free(j->inputs[i].value);
	free(j->inputs);
	fn_free(&j->map);
	fn_free(&j->combiner);
	fn_free(&j->reduce);
	free(j->output_dir);
	free(j->params);
	free(j);
}

/* cJSON's adders fail quietly when out of memory: put records it in *ok,
 * so a job is never printed with a key missing. */
static void put(cJSON *o, const char *key, cJSON *v, int *ok)
{
	int added = o && v && (key ? cJSON_AddItemToObject(o, key, v) : cJSON_AddItemToArray(o, v));
	if (!added) {
		cJSON_Delete(v);
		*ok = 0;
	}
}

static cJSON *fn_json(const mr_fn *f, int *ok)
{
	if (f->kind == MR_FN_BUILTIN)
		return cJSON_CreateString(f->name);
	cJSON *o = cJSON_CreateObject();
	if (f->kind == MR_FN_PLUGIN) {
		put(o, "plugin", cJSON_CreateString(f->plugin), ok);
		put(o, "function", cJSON_CreateString(f->function), ok);
	} else {
		put(o, "exec", cJSON_CreateStringArray((const char *const *)f->argv, (int)f->argc), ok);
	}
	return o;
}

static cJSON *inputs_json(const mr_job *j, int *ok)
{
	static const char *const keys[] = {[MR_IN_FILE] = "file", [MR_IN_URL] = "url", [MR_IN_TEXT] = "text", [MR_IN_JOB] = "job"};
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < j->n_inputs; i++) {
		cJSON *o = cJSON_CreateObject();
		put(o, keys[j->inputs[i].kind], cJSON_CreateString(j->inputs[i].value), ok);
		put(a, NULL, o, ok);
	}
	return a;
}

static cJSON *output_json(const mr_job *j, int *ok)
{
	cJSON *o = cJSON_CreateObject();
	put(o, "dir", cJSON_CreateString(j->output_dir), ok);
	put(o, "format", cJSON_CreateString(j->format == MR_FORMAT_JSONL ? "jsonl" : "tsv"), ok);
	return o;
}

cJSON *mr_job_to_json(const mr_job *j)
{
	int ok = 1;
	cJSON *o = cJSON_CreateObject();
	put(o, "name", cJSON_CreateString(j->name), &ok);
	put(o, "inputs", inputs_json(j, &ok), &ok);
	put(o, "chunk_bytes", cJSON_CreateNumber((double)j->chunk_bytes), &ok);
	put(o, "map", fn_json(&j->map, &ok), &ok);
	if (j->combiner.kind != MR_FN_NONE)
		put(o, "combiner", fn_json(&j->combiner, &ok), &ok);
	put(o, "reduce", fn_json(&j->reduce, &ok), &ok);
	put(o, "partitions", cJSON_CreateNumber(j->partitions), &ok);
	put(o, "partitioner", cJSON_CreateString("hash"), &ok);
	put(o, "sort", cJSON_CreateString(j->sort == MR_SORT_VALUE_DESC ? "value-desc" : "key"), &ok);
	put(o, "output", output_json(j, &ok), &ok);
	put(o, "params", cJSON_Parse(j->params), &ok);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

int mr_job_part_path(const mr_job *j, int partition, char *out, size_t n)
{
	if (partition < 0 || partition >= j->partitions)
		return -1;
	int w = snprintf(out, n, "%s/part-%05d.%s", j->output_dir, partition, j->format == MR_FORMAT_JSONL ? "jsonl" : "tsv");
	return w < 0 || (size_t)w >= n ? -1 : 0;
}
