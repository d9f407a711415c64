/* --trace FILE: one JSON object per line for each channel event, with the
 * time, a sequence number, the channel and the process that asked (the
 * "proc" of its request). Written under the host lock so lines never mix;
 * flushed by the role's tick and at the end. */
#include <sys/time.h>

#include "chanhost/chanhost.h"

static void ch_trace_str(FILE *f, const char *key, const char *s)
{
	fprintf(f, ",\"%s\":\"", key);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(f, "\\%c", c);
		else if (c < 0x20)
			fprintf(f, "\\u%04x", c);
		else
			fputc(c, f);
	}
	fputc('"', f);
}

void ch_trace(ch_host *h, const char *event, const char *chan, const char *proc, int dir, int n)
{
	if (h->trace == NULL)
		return;
	struct timeval tv;
	gettimeofday(&tv, NULL);
	fprintf(h->trace, "{\"t\":%lld.%06ld,\"seq\":%llu,\"event\":\"%s\"", (long long)tv.tv_sec, (long)tv.tv_usec,
	    (unsigned long long)++h->trace_seq, event);
	if (chan)
		ch_trace_str(h->trace, "chan", chan);
	if (proc && *proc)
		ch_trace_str(h->trace, "proc", proc);
	if (dir == CH_READ || dir == CH_WRITE)
		fprintf(h->trace, ",\"dir\":\"%s\"", dir == CH_READ ? "read" : "write");
	if (n > 0)
		fprintf(h->trace, ",\"n\":%d", n);
	fputs("}\n", h->trace);
}

void ch_trace_flush(ch_host *h)
{
	if (h->trace)
		fflush(h->trace);
}
