/* Filling node_err values; see err.h. */
#include "err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int node_err_set(node_err *err, int rc, const char *code, const char *fmt, ...)
{
	if (err == NULL)
		return rc;
	err->rc = rc;
	snprintf(err->code, sizeof err->code, "%s", code ? code : "");
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	return rc;
}

void node_err_prefix(node_err *err, const char *fmt, ...)
{
	if (err == NULL)
		return;
	char old[sizeof err->msg];
	memcpy(old, err->msg, sizeof old);
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof err->msg)
		return;
	size_t room = sizeof err->msg - (size_t)n;
	size_t k = strnlen(old, room - 1);
	memcpy(err->msg + n, old, k);
	err->msg[(size_t)n + k] = '\0';
}
