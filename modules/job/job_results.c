/* node job results ID: every part file of a done job in order on stdout,
 * read straight from the output directory when this machine sees it (its
 * manifest names this job, the sizes match), else through the master
 * (job.read, base64), so results can be read from any machine. */
#include <errno.h>
#include <fcntl.h>
#include <mbedtls/base64.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/file.h"
#include "job/job_cli.h"

#define JOB_COPY_BYTES 65536
#define JOB_READ_MAX (1u << 20)        /* bytes asked for in one job.read */
#define JOB_MANIFEST_MAX (16u << 20)

typedef struct job_out {
	job_cli *c;
	const char *id;
	const char *dir;    /* output.dir as the master names it */
	const cJSON *files; /* absolute part paths, in order */
	cJSON *manifest;    /* NULL: not readable here, or another job's */
} job_out;

/* Our stdout failed: a closed pipe ends quietly, as for cat. */
static int job_out_failed(const job_out *o)
{
	if (errno == EPIPE)
		return JOB_EXIT_PIPE;
	job_warn(o->c, "writing the results of %s: %s", o->id, strerror(errno));
	return JOB_EXIT_FAILED;
}

/* DIR/manifest.json when it is readable here and belongs to this job. */
static cJSON *job_manifest(const job_out *o)
{
	char path[4096], *text = NULL;
	size_t len = 0;
	node_err err = {0};
	if (snprintf(path, sizeof path, "%s/manifest.json", o->dir) >= (int)sizeof path ||
	    node_file_read(path, JOB_MANIFEST_MAX, &text, &len, &err) != 0)
		return NULL;
	cJSON *m = cJSON_ParseWithLength(text, len);
	free(text);
	const char *id = job_str(m, "id");
	const cJSON *files = cJSON_GetObjectItemCaseSensitive(m, "files");
	if (id && strcmp(id, o->id) == 0 && cJSON_GetArraySize(files) == cJSON_GetArraySize(o->files))
		return m;
	cJSON_Delete(m); /* another job's output, or the output dir of another machine */
	return NULL;
}

/* The local path of part i by the manifest, and its size (-1: not said). 0 when it names none. */
static int job_local_path(const job_out *o, int i, char *out, size_t n, double *size)
{
	const cJSON *name = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o->manifest, "files"), i);
	const cJSON *b = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(o->manifest, "bytes"), i);
	const char *s = cJSON_GetStringValue(name);
	/* node makes these names (part-00000.tsv): anything else is not followed */
	if (s == NULL || s[0] == '\0' || s[0] == '.' || strchr(s, '/') != NULL)
		return 0;
	*size = cJSON_IsNumber(b) ? b->valuedouble : -1;
	return snprintf(out, n, "%s/%s", o->dir, s) < (int)n;
}

/* Copy part i from this machine. 1 when done (*rc: how), 0 to ask the master. */
static int job_copy_local(const job_out *o, int i, int *rc)
{
	char path[4096], *buf;
	double size;
	if (o->manifest == NULL || !job_local_path(o, i, path, sizeof path, &size))
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat sb;
	if (fd < 0)
		return 0;
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || (size >= 0 && (double)sb.st_size != size) ||
	    (buf = malloc(JOB_COPY_BYTES)) == NULL) {
		close(fd);
		return 0;
	}
	ssize_t n;
	*rc = 0;
	while (*rc == 0 && ((n = read(fd, buf, JOB_COPY_BYTES)) > 0 || (n < 0 && errno == EINTR))) {
		if (n > 0 && fwrite(buf, 1, (size_t)n, stdout) != (size_t)n)
			*rc = job_out_failed(o);
	}
	if (*rc == 0 && n < 0) {
		job_warn(o->c, "reading %s: %s", path, strerror(errno));
		*rc = JOB_EXIT_FAILED;
	}
	free(buf);
	close(fd);
	return 1;
}

/* Bytes to ask for at once: within the message and string limits as base64. */
static size_t job_read_max(const job_cli *c)
{
	const node_limits *l = &c->ctx->wire.limits;
	size_t m = JOB_READ_MAX;
	if (l->max_string > 0 && l->max_string / 4 * 3 < m)
		m = l->max_string / 4 * 3;
	if (l->max_message > 0 && l->max_message / 2 < m)
		m = l->max_message / 2;
	m -= m % 3;
	return m > 3 ? m : 3;
}

/* One job.read answer to stdout; *got its bytes. */
static int job_put_b64(const job_out *o, const cJSON *reply, size_t *got)
{
	const char *s = job_str(reply, "data");
	size_t slen = s ? strlen(s) : 0, cap = slen / 4 * 3 + 3;
	unsigned char *buf = malloc(cap);
	*got = 0;
	if (s == NULL || buf == NULL || mbedtls_base64_decode(buf, cap, got, (const unsigned char *)s, slen) != 0) {
		free(buf);
		job_warn(o->c, "job.read of %s: the master's answer holds no valid base64 data", o->id);
		return JOB_EXIT_FAILED;
	}
	int rc = fwrite(buf, 1, *got, stdout) == *got ? 0 : job_out_failed(o);
	free(buf);
	return rc;
}

/* Copy part i through the master, from offset 0 to its end. */
static int job_copy_remote(const job_out *o, int i)
{
	double off = 0;
	size_t max = job_read_max(o->c);
	for (;;) {
		cJSON *req = job_req("job.read", o->id), *reply = NULL;
		if (req && (!cJSON_AddNumberToObject(req, "file", i) || !cJSON_AddNumberToObject(req, "offset", off) ||
		               !cJSON_AddNumberToObject(req, "max", (double)max))) {
			cJSON_Delete(req);
			req = NULL;
		}
		int rc = job_call(o->c, req, 0, &reply);
		size_t got = 0;
		if (rc == 0)
			rc = job_put_b64(o, reply, &got);
		int eof = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(reply, "eof"));
		cJSON_Delete(reply);
		if (rc != 0 || eof)
			return rc;
		if (got == 0) { /* neither data nor the end: never loop on it */
			job_warn(o->c, "job.read of %s file %d at offset %.0f: the master sent no data and no end", o->id, i, off);
			return JOB_EXIT_FAILED;
		}
		off += (double)got;
	}
}

/* The job must be done: else say why there is nothing to read. */
static int job_results_ready(job_cli *c, const char *id, const cJSON *st)
{
	const char *state = job_str(st, "state"), *e = job_str(st, "error");
	if (strcmp(state, "done") == 0)
		return 0;
	if (strcmp(state, "failed") == 0)
		job_warn(c, "job %s failed, it has no results: %s", id, e ? e : "(the master gave no reason)");
	else if (strcmp(state, "killed") == 0)
		job_warn(c, "job %s was killed, it has no results", id);
	else
		job_warn(c, "job %s is %s, not done yet (node job status %s)", id, state, id);
	return JOB_EXIT_FAILED;
}

int job_results(job_cli *c, const char *id)
{
	cJSON *reply = NULL;
	const cJSON *st = NULL;
	int rc = job_call_status(c, job_req("job.status", id), 0, &reply, &st);
	if (rc != 0 || (rc = job_results_ready(c, id, st)) != 0) {
		cJSON_Delete(reply);
		return rc;
	}
	const cJSON *out = cJSON_GetObjectItemCaseSensitive(st, "output");
	job_out o = {c, id, job_str(out, "dir"), cJSON_GetObjectItemCaseSensitive(out, "files"), NULL};
	if (o.dir == NULL || !cJSON_IsArray(o.files)) {
		job_warn(c, "the master's status of %s names no output files", id);
		cJSON_Delete(reply);
		return JOB_EXIT_FAILED;
	}
	o.manifest = job_manifest(&o);
	int n = cJSON_GetArraySize(o.files);
	for (int i = 0; i < n && rc == 0; i++)
		if (!job_copy_local(&o, i, &rc))
			rc = job_copy_remote(&o, i);
	if (rc == 0 && fflush(stdout) != 0)
		rc = job_out_failed(&o);
	cJSON_Delete(o.manifest);
	cJSON_Delete(reply);
	return rc;
}
