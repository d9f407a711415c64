/* JSON text without building trees: checking that a text is one valid JSON
 * value and walking the members of an object or the elements of an array
 * as spans of the original text. A map checks a million argument lists and
 * splits chunk results this way, where cJSON would allocate every node. */
#include <string.h>

#include "client/client_int.h"

#define JSON_DEPTH_MAX 128

static const char *json_ws(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

/* The 4 hex digits after "\u" at p (p at the 'u'), or -1. */
static long json_hex4(const char *p)
{
	long v = 0;
	for (int i = 1; i <= 4; i++) {
		if (p[i] == '\0' || !strchr("0123456789abcdefABCDEF", p[i]))
			return -1;
		v = v * 16 + (p[i] <= '9' ? p[i] - '0' : (p[i] | 0x20) - 'a' + 10);
	}
	return v;
}

static const char *json_string(const char *p)
{
	for (p++; *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return NULL; /* also the end of the text */
		if (*p != '\\')
			continue;
		p++;
		if (*p != 'u') {
			if (*p == '\0' || !strchr("\"\\/bfnrt", *p))
				return NULL;
			continue;
		}
		long u = json_hex4(p);
		if (u < 0 || (u >= 0xDC00 && u <= 0xDFFF))
			return NULL; /* not hex, or a low surrogate alone (cJSON refuses it) */
		p += 4;
		if (u >= 0xD800 && u <= 0xDBFF) { /* a high surrogate needs its low half */
			long lo = p[1] == '\\' && p[2] == 'u' ? json_hex4(p + 2) : -1;
			if (lo < 0xDC00 || lo > 0xDFFF)
				return NULL;
			p += 6;
		}
	}
	return p + 1;
}

static const char *json_digits(const char *p)
{
	if (*p < '0' || *p > '9')
		return NULL;
	while (*p >= '0' && *p <= '9')
		p++;
	return p;
}

static const char *json_number(const char *p)
{
	if (*p == '-')
		p++;
	if (*p == '0')
		p++;
	else if ((p = json_digits(p)) == NULL)
		return NULL;
	if (*p == '.' && (p = json_digits(p + 1)) == NULL)
		return NULL;
	if (*p == 'e' || *p == 'E') {
		p++;
		if (*p == '+' || *p == '-')
			p++;
		p = json_digits(p);
	}
	return p;
}

static const char *json_value(const char *p, int depth);

/* An array or object starting at p ('[' or '{'). */
static const char *json_container(const char *p, int depth)
{
	char close = *p == '[' ? ']' : '}';
	int object = *p == '{';
	if (depth >= JSON_DEPTH_MAX)
		return NULL;
	p = json_ws(p + 1);
	if (*p == close)
		return p + 1;
	for (;;) {
		if (object) {
			if (*p != '"' || (p = json_string(p)) == NULL)
				return NULL;
			p = json_ws(p);
			if (*p++ != ':')
				return NULL;
		}
		if ((p = json_value(json_ws(p), depth + 1)) == NULL)
			return NULL;
		p = json_ws(p);
		if (*p == close)
			return p + 1;
		if (*p++ != ',')
			return NULL;
		p = json_ws(p);
	}
}

static const char *json_value(const char *p, int depth)
{
	switch (*p) {
	case '"':
		return json_string(p);
	case '[':
	case '{':
		return json_container(p, depth);
	case 't':
		return strncmp(p, "true", 4) == 0 ? p + 4 : NULL;
	case 'f':
		return strncmp(p, "false", 5) == 0 ? p + 5 : NULL;
	case 'n':
		return strncmp(p, "null", 4) == 0 ? p + 4 : NULL;
	default:
		return json_number(p);
	}
}

int ncl_json_valid(const char *text, char type)
{
	const char *p = json_ws(text);
	if (type && *p != type)
		return 0;
	p = json_value(p, 0);
	return p != NULL && *json_ws(p) == '\0';
}

const char *ncl_json_skip(const char *p)
{
	return json_value(json_ws(p), 0);
}

int ncl_json_each(const char *text, ncl_json_fn fn, void *arg)
{
	const char *p = json_ws(text);
	if (*p != '[' && *p != '{')
		return -1;
	int object = *p == '{';
	char close = object ? '}' : ']';
	p = json_ws(p + 1);
	if (*p == close)
		return 0;
	for (size_t i = 0;; i++) {
		const char *key = NULL, *kend = NULL;
		if (object) {
			key = p;
			if (*p != '"' || (kend = json_string(p)) == NULL)
				return -1;
			p = json_ws(kend);
			if (*p++ != ':')
				return -1;
			p = json_ws(p);
		}
		const char *end = json_value(p, 1);
		if (end == NULL)
			return -1;
		int rc = fn(i, key ? key + 1 : NULL, key ? (size_t)(kend - key - 2) : 0, p, (size_t)(end - p), arg);
		if (rc != 0)
			return rc;
		p = json_ws(end);
		if (*p == close)
			return 0;
		if (*p++ != ',')
			return -1;
		p = json_ws(p);
	}
}
