/* Whole-file reads with a size cap and recursive mkdir; errors name the path. */
#include "file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int node_file_read(const char *path, size_t max, char **out, size_t *len, node_err *err)
{
	FILE *f = fopen(path, "rb");
	if (f == NULL)
		return node_err_set(err, NODE_EIO, NODE_ERR_NOT_FOUND, "cannot open %s: %s", path, strerror(errno));
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);
	int rc = buf ? 0 : node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory reading %s", path);
	while (rc == 0) {
		if (n == cap) {
			if (cap >= max) {
				rc = node_err_set(err, NODE_ELIMIT, NODE_ERR_TOO_LARGE, "%s is larger than %zu bytes", path, max);
				break;
			}
			cap = cap * 2 > max ? max : cap * 2;
			char *nb = realloc(buf, cap + 1);
			if (nb == NULL) {
				rc = node_err_set(err, NODE_ENOMEM, NODE_ERR_INTERNAL, "out of memory reading %s", path);
				break;
			}
			buf = nb;
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0) {
			if (ferror(f))
				rc = node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot read %s: %s", path, strerror(errno));
			break;
		}
	}
	fclose(f);
	if (rc != 0) {
		free(buf);
		return rc;
	}
	buf[n] = '\0';
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

int node_file_mkdirs(const char *path, node_err *err)
{
	char tmp[4096];
	if (snprintf(tmp, sizeof tmp, "%s", path) >= (int)sizeof tmp)
		return node_err_set(err, NODE_EINVAL, NODE_ERR_BAD_ARGS, "path too long: %s", path);
	for (char *p = tmp + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
			return node_err_set(err, NODE_EIO, NODE_ERR_INTERNAL, "cannot create directory %s: %s", tmp, strerror(errno));
		*p = c;
		if (c == '\0')
			break;
	}
	return 0;
}
