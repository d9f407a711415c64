/* PyCSP's first example with <node/csp.h>: a counter process writes 0..4 to
 * channel A and poisons it; a printer process reads A until it is poisoned.
 * Prints exactly "0 1 2 3 4".
 *
 *   counter_printer                      a local channel (threads, no sockets)
 *   counter_printer --host tcp://127.0.0.1:7130    on that channel host
 *   counter_printer --config FILE        on the cluster file's channel host
 *   ... [--chan NAME] [--trace FILE]     (also $NODE_CSP_TRACE)
 *
 * The printer retires its end when done (so a trace shows every event kind).
 * A poisoned channel stays poisoned on its host, so networked runs name the
 * channel A.<pid> unless --chan says otherwise.
 * Build: make examples, or cc counter_printer.c $(pkg-config --cflags --libs nodeclient) */
#define _POSIX_C_SOURCE 200809L
#include <node/csp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void counter(csp_proc *self, void *arg)
{
	csp_end *out;
	ncl_err e;
	char v[16];
	if (csp_writer(arg, &out, &e) != 0) {
		fprintf(stderr, "%s: %s\n", csp_proc_name(self), e.msg);
		return;
	}
	for (int i = 0; i < 5; i++) {
		snprintf(v, sizeof v, "%d", i);
		if (csp_write(out, v, -1, &e) != 0)
			fprintf(stderr, "%s: %s\n", csp_proc_name(self), e.msg);
	}
	if (csp_poison(out, &e) != 0)
		fprintf(stderr, "%s: %s\n", csp_proc_name(self), e.msg);
	csp_end_close(out);
}

static void printer(csp_proc *self, void *arg)
{
	csp_end *in;
	ncl_err e;
	char *v;
	int rc, first = 1;
	if (csp_reader(arg, &in, &e) != 0) {
		fprintf(stderr, "%s: %s\n", csp_proc_name(self), e.msg);
		return;
	}
	while ((rc = csp_read(in, &v, -1, &e)) == 0) {
		printf("%s%s", first ? "" : " ", v);
		first = 0;
		free(v);
	}
	printf("\n");
	fflush(stdout);
	if (rc != NCL_EPOISONED) /* poison is how the counter says it is done */
		fprintf(stderr, "%s: %s\n", csp_proc_name(self), e.msg);
	/* this end is done for good; the channel is poisoned already, so a host
	 * may answer "poisoned", which says the same */
	if (csp_retire(in, &e) != 0 && e.code != NCL_EPOISONED)
		fprintf(stderr, "%s: %s\n", csp_proc_name(self), e.msg);
}

int main(int argc, char **argv)
{
	const char *host = NULL, *file = NULL, *name = NULL, *trace = NULL;
	for (int i = 1; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--host") == 0)
			host = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--config") == 0)
			file = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--chan") == 0)
			name = argv[++i];
		else if (i + 1 < argc && strcmp(argv[i], "--trace") == 0)
			trace = argv[++i];
		else {
			fprintf(stderr, "usage: counter_printer [--host URL | --config FILE] [--chan NAME] [--trace FILE]\n");
			return 2;
		}
	}
	ncl_err e;
	if (trace != NULL && csp_trace_start(trace, &e) != 0) {
		fprintf(stderr, "counter_printer: %s\n", e.msg);
		return 1;
	}
	char gen[64];
	csp_chan *a;
	int rc;
	if (host == NULL && file == NULL)
		rc = csp_chan_local(&a, name ? name : "A", CSP_ANY2ANY, 0, &e);
	else {
		snprintf(gen, sizeof gen, "A.%ld", (long)getpid());
		rc = csp_chan_net(&a, name ? name : gen, host, file, &e);
	}
	if (rc != 0) {
		fprintf(stderr, "counter_printer: %s\n", e.msg);
		return 1;
	}
	csp_spec procs[] = {{"counter", counter, a}, {"printer", printer, a}};
	rc = csp_parallel(procs, 2, &e);
	if (rc != 0)
		fprintf(stderr, "counter_printer: %s\n", e.msg);
	csp_chan_free(a);
	csp_trace_stop();
	return rc != 0;
}
