/* The CSP API's local channels, driven hard (<node/csp.h>, installed header
 * only): a rendezvous holds the writer until the read, poison wakes every
 * parked end, retire, one2one and friends, time limits, batches, alt (time
 * limit, skip, priority, fairness, output guards, no value lost or doubled
 * under contention), 1000 parked readers, processes, the trace file, error
 * messages. Prints "ok:"/"FAIL:" lines (tests/client/csp.sh relays them);
 * exits 1 when a check failed. Every wait is bounded.
 *
 *   csp_test [TRACE_FILE [HOST_URL]]   (default: a file under /tmp, removed after)
 * With HOST_URL (a running `node chanhost`), also an alt over two of its
 * channels and the refusal of an alt that mixes local and networked. */
#define _POSIX_C_SOURCE 200809L
#include <node/csp.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "libcheck.h"

#define WAIT_MS 10000 /* a bound on every wait that should succeed */

static csp_chan *chan(const char *name, csp_kind kind, int cap)
{
	csp_chan *c = NULL;
	ncl_err e;
	if (csp_chan_local(&c, name, kind, cap, &e) != 0) {
		printf("FAIL: csp_chan_local %s: %s\n", name, e.msg);
		exit(1);
	}
	return c;
}

static csp_end *end(csp_chan *c, int write)
{
	csp_end *x = NULL;
	ncl_err e;
	if ((write ? csp_writer(c, &x, &e) : csp_reader(c, &x, &e)) != 0) {
		printf("FAIL: end of %s: %s\n", csp_chan_name(c), e.msg);
		exit(1);
	}
	return x;
}

/* ---- a thread that does one op, so the main thread can watch it ---- */

typedef struct op {
	csp_chan *c;
	int write;       /* 1 write value, 0 read */
	const char *value;
	int timeout_ms;
	atomic_int done; /* 1 when the op returned */
	int rc;
	char *got;
	pthread_t t;
} op;

static void *op_main(void *arg)
{
	op *o = arg;
	csp_end *x = end(o->c, o->write);
	ncl_err e;
	o->rc = o->write ? csp_write(x, o->value, o->timeout_ms, &e) : csp_read(x, &o->got, o->timeout_ms, &e);
	atomic_store(&o->done, 1);
	csp_end_close(x);
	return NULL;
}

static void op_start(op *o, csp_chan *c, int write, const char *value)
{
	memset(o, 0, sizeof *o);
	o->c = c;
	o->write = write;
	o->value = value;
	o->timeout_ms = WAIT_MS;
	pthread_create(&o->t, NULL, op_main, o);
}

static void op_join(op *o)
{
	pthread_join(o->t, NULL);
}

/* ---- checks ---- */

static void test_rendezvous(void)
{
	csp_chan *c = chan("rdv", CSP_ANY2ANY, 0);
	op w;
	op_start(&w, c, 1, "\"hello\"");
	sleep_ms(150);
	check(!atomic_load(&w.done), "rendezvous: the writer is still blocked 150 ms later, with no reader");
	csp_end *r = end(c, 0);
	char *v = NULL;
	ncl_err e;
	int rc = csp_read(r, &v, WAIT_MS, &e);
	op_join(&w);
	check(rc == 0 && v && strcmp(v, "\"hello\"") == 0 && w.rc == 0, "rendezvous: the read gets the value, the write returns 0");
	free(v);
	/* a write with a time limit that nobody reads is not delivered later */
	csp_end *wr = end(c, 1);
	double t0 = now_ms();
	rc = csp_write(wr, "1", 100, &e);
	double dt = now_ms() - t0;
	check(rc == NCL_ETIMEDOUT && dt >= 90 && dt < 2000 && strstr(e.msg, "rdv"),
	    "write with 100 ms and no reader: NCL_ETIMEDOUT after %.0f ms (%s)", dt, e.msg);
	rc = csp_read(r, &v, 0, &e);
	check(rc == NCL_ETIMEDOUT, "the timed-out value is not there for a later read (timeout 0: %s)", ncl_strerror(rc));
	t0 = now_ms();
	rc = csp_read(r, &v, 80, &e);
	dt = now_ms() - t0;
	check(rc == NCL_ETIMEDOUT && dt >= 70, "read with 80 ms on an empty channel: NCL_ETIMEDOUT after %.0f ms", dt);
	rc = csp_write(r, "1", 0, &e);
	check(rc == NCL_EINVAL && strstr(e.msg, "reader"), "csp_write on a reader end: NCL_EINVAL (%s)", e.msg);
	rc = csp_read(wr, &v, 0, &e);
	check(rc == NCL_EINVAL, "csp_read on a writer end: NCL_EINVAL (%s)", e.msg);
	csp_end_close(r);
	csp_end_close(wr);
	csp_chan_free(c);
}

static void test_buffered(void)
{
	csp_chan *c = chan("buf", CSP_ANY2ANY, 10);
	csp_end *w = end(c, 1), *r = end(c, 0);
	ncl_err e;
	const char *vals[10] = {"0", "1", "2", "3", "4", "5", "6", "7", "8", "9"};
	int rc = csp_write_many(w, vals, 10, 0, &e);
	check(rc == 0, "buffered 10: ten values go in without a reader");
	rc = csp_write(w, "10", 50, &e);
	check(rc == NCL_ETIMEDOUT, "buffered 10: the eleventh waits, and times out");
	char *got[20];
	size_t n = 0;
	rc = csp_read_many(r, got, 20, &n, 0, &e);
	int inorder = rc == 0 && n == 10;
	for (size_t i = 0; inorder && i < n; i++)
		inorder = strcmp(got[i], vals[i]) == 0;
	for (size_t i = 0; i < n; i++)
		free(got[i]);
	check(inorder, "csp_read_many takes the 10 buffered values at once, in order (got %zu)", n);
	/* a writer parked on the full buffer gets in when a reader takes one */
	csp_write_many(w, vals, 10, 0, &e);
	op pw;
	op_start(&pw, c, 1, "last");
	sleep_ms(50);
	check(!atomic_load(&pw.done), "a writer waits on a full buffer");
	char *v;
	rc = csp_read(r, &v, WAIT_MS, &e);
	free(v);
	op_join(&pw);
	check(pw.rc == 0, "... and returns once a read made room");
	rc = csp_read_many(r, got, 20, &n, 0, &e);
	check(rc == 0 && n == 10 && strcmp(got[9], "last") == 0, "its value is last in the buffer");
	for (size_t i = 0; i < n; i++)
		free(got[i]);
	csp_end_close(w);
	csp_end_close(r);
	csp_chan_free(c);
}

/* N parked readers (threads), then poison or N values. */
static void park_many(int n, int poison)
{
	csp_chan *c = chan("many", CSP_ANY2ANY, 0);
	op *ops = calloc((size_t)n, sizeof *ops);
	for (int i = 0; i < n; i++)
		op_start(&ops[i], c, 0, NULL);
	sleep_ms(n > 100 ? 300 : 100);
	csp_end *w = end(c, 1);
	ncl_err e;
	int ok = 1;
	if (poison)
		ok = csp_poison(w, &e) == 0;
	else
		for (int i = 0; i < n && ok; i++) {
			char v[16];
			snprintf(v, sizeof v, "%d", i);
			ok = csp_write(w, v, WAIT_MS, &e) == 0;
		}
	long sum = 0, want = (long)n * (n - 1) / 2;
	int bad = 0;
	for (int i = 0; i < n; i++) {
		op_join(&ops[i]);
		if (poison)
			bad += ops[i].rc != NCL_EPOISONED;
		else if (ops[i].rc != 0)
			bad++;
		else
			sum += atol(ops[i].got);
		free(ops[i].got);
	}
	if (poison)
		check(ok && bad == 0, "poison wakes all %d parked readers with NCL_EPOISONED (%d did not)", n, bad);
	else
		check(ok && bad == 0 && sum == want, "%d parked readers each get one of %d values (sum %ld, want %ld)", n, n,
		    sum, want);
	free(ops);
	csp_end_close(w);
	csp_chan_free(c);
}

typedef struct alt_park {
	csp_guard g[2];
	int rc, fired;
	pthread_t t;
} alt_park;

static void *alt_park_main(void *arg)
{
	alt_park *a = arg;
	char *v = NULL;
	a->rc = csp_alt(a->g, 2, 0, WAIT_MS, &a->fired, &v, NULL);
	free(v);
	return NULL;
}

static void test_poison(void)
{
	park_many(10, 1);
	/* parked writers on a rendezvous, and an alt with a guard on it */
	csp_chan *c = chan("pw", CSP_ANY2ANY, 0), *other = chan("other", CSP_ANY2ANY, 0);
	op ws[5];
	for (int i = 0; i < 5; i++)
		op_start(&ws[i], c, 1, "x");
	alt_park a = {.g = {{end(other, 0), NULL}, {end(c, 1), "y"}}};
	pthread_create(&a.t, NULL, alt_park_main, &a);
	sleep_ms(100);
	csp_end *p = end(c, 0);
	ncl_err e;
	csp_poison(p, &e);
	int bad = 0;
	for (int i = 0; i < 5; i++) {
		op_join(&ws[i]);
		bad += ws[i].rc != NCL_EPOISONED;
	}
	pthread_join(a.t, NULL);
	check(bad == 0, "poison wakes 5 parked writers with NCL_EPOISONED");
	check(a.rc == NCL_EPOISONED && a.fired == 1, "... and an alt parked with an output guard on it (guard 1, %s)",
	    ncl_strerror(a.rc));
	char *v;
	int rc = csp_read(p, &v, 0, &e);
	check(rc == NCL_EPOISONED && strstr(e.msg, "poisoned"), "later ops fail too: %s", e.msg);
	/* a buffered channel drops its values */
	csp_chan *b = chan("pb", CSP_ANY2ANY, 4);
	csp_end *bw = end(b, 1), *br = end(b, 0);
	csp_write(bw, "1", 0, &e);
	csp_poison(bw, &e);
	check(csp_read(br, &v, 0, &e) == NCL_EPOISONED, "a poisoned buffered channel drops its values");
	csp_end_close(bw);
	csp_end_close(br);
	csp_end_close(a.g[0].end);
	csp_end_close(a.g[1].end);
	csp_end_close(p);
	csp_chan_free(b);
	csp_chan_free(c);
	csp_chan_free(other);
}

static void test_retire(void)
{
	ncl_err e;
	char *v;
	/* every writer retires: readers get the buffer, then NCL_ERETIRED */
	csp_chan *c = chan("ret", CSP_ANY2ANY, 4);
	csp_end *w1 = end(c, 1), *w2 = end(c, 1), *r = end(c, 0);
	csp_write(w1, "a", 0, &e);
	csp_write(w2, "b", 0, &e);
	csp_retire(w1, &e);
	int rc = csp_write(w2, "c", 0, &e);
	check(rc == 0, "one of two writers retired: the other still writes");
	csp_retire(w2, &e);
	int n = 0;
	while ((rc = csp_read(r, &v, 0, &e)) == 0) {
		free(v);
		n++;
	}
	check(n == 3 && rc == NCL_ERETIRED, "both retired: the reader gets the 3 buffered values, then NCL_ERETIRED (%s)",
	    e.msg);
	csp_end_close(r);
	csp_chan_free(c);
	/* a parked reader is woken by the last writer's retire */
	c = chan("ret2", CSP_ANY2ANY, 0);
	csp_end *w = end(c, 1);
	op pr;
	op_start(&pr, c, 0, NULL);
	sleep_ms(50);
	csp_retire(w, &e);
	op_join(&pr);
	check(pr.rc == NCL_ERETIRED, "a parked reader gets NCL_ERETIRED when the last writer retires");
	csp_chan_free(c);
	/* the last reader retires: a parked writer gets NCL_ERETIRED */
	c = chan("ret3", CSP_ANY2ANY, 0);
	r = end(c, 0);
	op pw;
	op_start(&pw, c, 1, "v");
	sleep_ms(50);
	csp_retire(r, &e);
	op_join(&pw);
	check(pw.rc == NCL_ERETIRED, "a parked writer gets NCL_ERETIRED when the last reader retires");
	csp_chan_free(c);
}

static void test_kinds(void)
{
	ncl_err e;
	csp_end *x;
	csp_chan *c = chan("o2o", CSP_ONE2ONE, 0);
	csp_end *r = end(c, 0), *w = end(c, 1);
	int rc = csp_reader(c, &x, &e);
	check(rc == NCL_ECONFLICT && strstr(e.msg, "one2one"), "one2one: a second reader is refused (%s)", e.msg);
	rc = csp_writer(c, &x, &e);
	check(rc == NCL_ECONFLICT, "one2one: a second writer is refused");
	csp_end_close(r);
	rc = csp_reader(c, &x, &e);
	check(rc == 0, "one2one: after the reader closed, a new one is fine");
	csp_end_close(x);
	csp_end_close(w);
	csp_chan_free(c);
	c = chan("o2a", CSP_ONE2ANY, 0);
	w = end(c, 1);
	csp_end *r1 = end(c, 0), *r2 = NULL;
	rc = csp_reader(c, &r2, &e);
	int rc2 = csp_writer(c, &x, &e);
	check(rc == 0 && rc2 == NCL_ECONFLICT, "one2any: many readers, one writer");
	csp_end_close(r1);
	csp_end_close(r2);
	csp_end_close(w);
	csp_chan_free(c);
	c = chan("a2o", CSP_ANY2ONE, 0);
	r = end(c, 0);
	csp_end *w1 = end(c, 1), *w2 = NULL;
	rc = csp_writer(c, &w2, &e);
	rc2 = csp_reader(c, &x, &e);
	check(rc == 0 && rc2 == NCL_ECONFLICT, "any2one: many writers, one reader");
	csp_end_close(w1);
	csp_end_close(w2);
	csp_end_close(r);
	csp_chan_free(c);
	rc = csp_chan_local(&c, "bad", CSP_ANY2ANY, -1, &e);
	check(rc == NCL_EINVAL && strstr(e.msg, "capacity"), "capacity -1: NCL_EINVAL (%s)", e.msg);
}

static void test_alt(void)
{
	ncl_err e;
	char *v = NULL;
	int fired = 99;
	csp_chan *a = chan("alt-a", CSP_ANY2ANY, 4), *b = chan("alt-b", CSP_ANY2ANY, 4);
	csp_end *ar = end(a, 0), *br = end(b, 0), *aw = end(a, 1), *bw = end(b, 1);
	csp_guard g[2] = {{ar, NULL}, {br, NULL}};
	int rc = csp_alt(g, 2, CSP_ALT_SKIP, -1, &fired, &v, &e);
	check(rc == 0 && fired == -1 && v == NULL, "alt skip with nothing ready: fired -1 at once");
	double t0 = now_ms();
	rc = csp_alt(g, 2, 0, 60, &fired, &v, &e);
	double dt = now_ms() - t0;
	check(rc == 0 && fired == -1 && dt >= 50, "alt with 60 ms and nothing ready: fired -1 after %.0f ms", dt);
	csp_write(bw, "B", 0, &e);
	rc = csp_alt(g, 2, 0, 1000, &fired, &v, &e);
	check(rc == 0 && fired == 1 && v && strcmp(v, "B") == 0, "alt fires the ready guard 1 with its value");
	free(v);
	/* priority: both ready, guard 0 always wins */
	int zeros = 0;
	for (int i = 0; i < 4; i++) {
		csp_write(aw, "A", 0, &e);
		csp_write(bw, "B", 0, &e);
		csp_alt(g, 2, CSP_ALT_PRIORITY, 0, &fired, &v, &e);
		zeros += fired == 0;
		free(v);
		csp_alt(g, 2, CSP_ALT_PRIORITY, 0, &fired, &v, &e); /* takes the other */
		free(v);
	}
	check(zeros == 4, "priority alt with both ready fires guard 0 first (4 of 4)");
	/* fair: both always ready, each fires about half of the time */
	csp_write(aw, "A", 0, &e);
	csp_write(bw, "B", 0, &e);
	int count[2] = {0, 0};
	for (int i = 0; i < 100; i++) {
		csp_alt(g, 2, CSP_ALT_FAIR, 0, &fired, &v, &e);
		free(v);
		if (fired >= 0) {
			count[fired]++;
			csp_write(fired == 0 ? aw : bw, "again", 0, &e);
		}
	}
	check(count[0] >= 30 && count[1] >= 30, "fair alt with both ready: %d and %d of 100", count[0], count[1]);
	csp_end_close(ar);
	csp_end_close(br);
	csp_end_close(aw);
	csp_end_close(bw);
	csp_chan_free(a);
	csp_chan_free(b);
	/* an output guard, parked, completed by a reader */
	csp_chan *o = chan("alt-out", CSP_ANY2ANY, 0), *i2 = chan("alt-in", CSP_ANY2ANY, 0);
	alt_park p = {.g = {{end(i2, 0), NULL}, {end(o, 1), "\"out\""}}};
	pthread_create(&p.t, NULL, alt_park_main, &p);
	sleep_ms(50);
	csp_end *or = end(o, 0);
	rc = csp_read(or, &v, WAIT_MS, &e);
	pthread_join(p.t, NULL);
	check(rc == 0 && v && strcmp(v, "\"out\"") == 0 && p.rc == 0 && p.fired == 1,
	    "a parked alt's output guard completes when a reader comes");
	free(v);
	/* and a write-only alt that times out leaves nothing behind */
	csp_guard og[1] = {{p.g[1].end, "late"}};
	rc = csp_alt(og, 1, 0, 30, &fired, NULL, &e);
	check(rc == 0 && fired == -1 && csp_read(or, &v, 0, &e) == NCL_ETIMEDOUT, "a timed-out output guard offers nothing after");
	rc = csp_alt(og, 0, 0, 30, &fired, NULL, &e);
	check(rc == NCL_EINVAL, "alt with 0 guards: NCL_EINVAL (%s)", e.msg);
	csp_end_close(or);
	csp_end_close(p.g[0].end);
	csp_end_close(p.g[1].end);
	csp_chan_free(o);
	csp_chan_free(i2);
}

/* ---- contention: writers on two channels, alt readers; nothing lost or doubled ---- */

#define CW 4     /* writers */
#define CR 3     /* alt readers */
#define CN 5000  /* values per writer */

typedef struct contention {
	csp_chan *c[2];
	csp_end *w[CW]; /* made before the processes start: a writer that retired
	                   before another joined would retire its channel for good */
	atomic_long sum, count;
	atomic_int stop;
} contention;

static void cont_writer(csp_proc *self, void *arg)
{
	contention *k = arg;
	int id = atoi(csp_proc_name(self) + 1);
	csp_end *w = k->w[id];
	char v[32];
	for (int i = 1; i <= CN; i++) {
		snprintf(v, sizeof v, "%d", i);
		if (csp_write(w, v, WAIT_MS, NULL) != 0)
			break;
	}
	csp_retire(w, NULL);
}

/* A guard that fails with NCL_ERETIRED (every writer of that channel is
 * done) leaves the alt; the reader stops when none is left. */
static void cont_reader(csp_proc *self, void *arg)
{
	contention *k = arg;
	(void)self;
	csp_end *r0 = end(k->c[0], 0), *r1 = end(k->c[1], 0);
	csp_guard g[2] = {{r0, NULL}, {r1, NULL}};
	int n = 2;
	while (n > 0) {
		int fired;
		char *v;
		int rc = csp_alt(g, n, 0, WAIT_MS, &fired, &v, NULL);
		if (rc == NCL_ERETIRED && fired >= 0) {
			g[fired] = g[--n];
			continue;
		}
		if (rc != 0 || fired < 0)
			break;
		atomic_fetch_add(&k->sum, atol(v));
		atomic_fetch_add(&k->count, 1);
		free(v);
	}
	csp_end_close(r0);
	csp_end_close(r1);
}

static void test_contention(int cap)
{
	contention k = {.sum = 0};
	k.c[0] = chan("c0", CSP_ANY2ANY, cap);
	k.c[1] = chan("c1", CSP_ANY2ANY, cap);
	for (int i = 0; i < CW; i++)
		k.w[i] = end(k.c[i % 2], 1);
	csp_spec ps[CW + CR];
	char names[CW + CR][16];
	for (int i = 0; i < CW + CR; i++) {
		snprintf(names[i], sizeof names[i], "%c%d", i < CW ? 'w' : 'r', i);
		ps[i] = (csp_spec){names[i], i < CW ? cont_writer : cont_reader, &k};
	}
	double t0 = now_ms();
	int rc = csp_parallel(ps, CW + CR, NULL);
	long want_sum = (long)CW * CN * (CN + 1) / 2;
	check(rc == 0 && k.count == (long)CW * CN && k.sum == want_sum,
	    "capacity %d: %d writers x %d values, %d alt readers over 2 channels: %ld values, sum %ld (want %ld), %.0f ms",
	    cap, CW, CN, CR, (long)k.count, (long)k.sum, want_sum, now_ms() - t0);
	csp_chan_free(k.c[0]);
	csp_chan_free(k.c[1]);
}

/* ---- processes ---- */

static char order[64];
static pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;

static void note(csp_proc *self, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&order_lock);
	strncat(order, csp_proc_name(self), sizeof order - strlen(order) - 1);
	strncat(order, ",", sizeof order - strlen(order) - 1);
	pthread_mutex_unlock(&order_lock);
}

static void test_procs(void)
{
	ncl_err e;
	csp_spec seq[] = {{"a", note, NULL}, {"b", note, NULL}, {"c", note, NULL}};
	order[0] = '\0';
	int rc = csp_sequence(seq, 3, &e);
	check(rc == 0 && strcmp(order, "a,b,c,") == 0, "csp_sequence runs a, b, c in order (%s)", order);
	order[0] = '\0';
	rc = csp_parallel(seq, 3, &e);
	check(rc == 0 && strlen(order) == 6, "csp_parallel runs all three (%s)", order);
	csp_proc *p;
	csp_spec anon = {NULL, note, NULL};
	order[0] = '\0';
	rc = csp_spawn(&anon, &p, &e);
	int named = rc == 0 && strncmp(csp_proc_name(p), "proc", 4) == 0;
	csp_join(p);
	check(named && strncmp(order, "proc", 4) == 0, "csp_spawn/csp_join, a default name procN (%s)", order);
	csp_spec bad = {"x", NULL, NULL};
	rc = csp_parallel(&bad, 1, &e);
	check(rc == NCL_EINVAL, "a process without a function: NCL_EINVAL (%s)", e.msg);
	check(strcmp(ncl_strerror(NCL_EPOISONED), "unknown error") != 0 &&
	          strcmp(ncl_strerror(NCL_ERETIRED), "unknown error") != 0 &&
	          strcmp(ncl_strerror(NCL_ECONFLICT), "unknown error") != 0,
	    "ncl_strerror knows the CSP codes (%s; %s; %s)", ncl_strerror(NCL_EPOISONED), ncl_strerror(NCL_ERETIRED),
	    ncl_strerror(NCL_ECONFLICT));
}

/* ---- trace ---- */

static void traced(csp_proc *self, void *arg)
{
	csp_chan *c = arg;
	ncl_err e;
	char *v;
	if (strcmp(csp_proc_name(self), "w") == 0) {
		csp_end *w = end(c, 1);
		const char *vals[3] = {"1", "2", "3"};
		csp_write_many(w, vals, 3, WAIT_MS, &e);
		csp_retire(w, &e);
	} else {
		csp_end *r = end(c, 0);
		while (csp_read(r, &v, WAIT_MS, &e) == 0)
			free(v);
		csp_poison(r, &e);
		csp_end_close(r);
	}
}

static void test_trace(const char *path)
{
	ncl_err e;
	unlink(path);
	int rc = csp_trace_start(path, &e);
	csp_chan *c = chan("traced \"chan\"", CSP_ANY2ANY, 3);
	csp_spec ps[] = {{"w", traced, c}, {"r", traced, c}};
	csp_parallel(ps, 2, &e);
	csp_chan_free(c);
	csp_trace_stop();
	FILE *f = fopen(path, "r");
	char line[1024];
	int lines = 0, seq_ok = 1, escaped = 0, last_end = 0;
	static const char *const kinds[] = {"channel_created", "end_created", "parallel_start", "process_start",
	    "block_write", "block_read", "done_read", "done_write", "poison", "retire", "process_quit",
	    "parallel_done", "trace_end"};
	int seen[13] = {0};
	while (f && fgets(line, sizeof line, f)) {
		char want[64];
		lines++;
		snprintf(want, sizeof want, "\"seq\":%d,", lines);
		seq_ok &= strstr(line, want) != NULL && line[0] == '{' && line[strlen(line) - 2] == '}';
		escaped |= strstr(line, "\"chan\":\"traced \\\"chan\\\"\"") != NULL;
		for (int i = 0; i < 13; i++) {
			snprintf(want, sizeof want, "\"event\":\"%s\"", kinds[i]);
			seen[i] |= strstr(line, want) != NULL;
		}
		last_end = strstr(line, "trace_end") != NULL;
	}
	if (f)
		fclose(f);
	int all = 1;
	for (int i = 0; i < 13; i++)
		if (!seen[i]) {
			printf("note: no %s line\n", kinds[i]);
			all = 0;
		}
	check(rc == 0 && lines > 10 && seq_ok, "trace: %d JSON lines, seq 1, 2, ... in file order", lines);
	check(all && last_end, "trace: every event kind, trace_end last");
	check(escaped, "trace: the channel name is JSON-escaped");
	rc = csp_trace_start("/nonexistent-dir/x", &e);
	check(rc == NCL_EIO && strstr(e.msg, "/nonexistent-dir/x"), "trace to a bad path: NCL_EIO (%s)", e.msg);
}

/* ---- networked: alt through the host, and a mix refused (with a host URL) ---- */

static void net_writer(csp_proc *self, void *arg)
{
	csp_end *w = end(arg, 1);
	ncl_err e;
	(void)self;
	if (csp_write(w, "{\"n\": 7}", WAIT_MS, &e) != 0)
		printf("note: net write: %s\n", e.msg);
	csp_end_close(w);
}

static void net_alt(csp_proc *self, void *arg)
{
	csp_chan **c = arg;
	csp_end *x = end(c[0], 0), *y = end(c[1], 0), *l = end(c[2], 0);
	ncl_err e;
	char *v = NULL;
	int fired = 99;
	(void)self;
	csp_guard g[2] = {{y, NULL}, {x, NULL}};
	int rc = csp_alt(g, 2, 0, WAIT_MS, &fired, &v, &e);
	check(rc == 0 && fired == 1 && v && strstr(v, "7"), "networked alt over two channels of one host fires the written one (%s)",
	    rc ? e.msg : v);
	free(v);
	rc = csp_alt(g, 2, CSP_ALT_SKIP, -1, &fired, &v, &e);
	check(rc == 0 && fired == -1, "networked alt with skip and nothing ready: fired -1 (%s)", rc ? e.msg : "ok");
	csp_guard mix[2] = {{x, NULL}, {l, NULL}};
	rc = csp_alt(mix, 2, 0, 0, &fired, &v, &e);
	check(rc == NCL_EINVAL && strstr(e.msg, "mix"), "an alt mixing local and networked guards: NCL_EINVAL (%s)", e.msg);
	csp_end_close(x);
	csp_end_close(y);
	csp_end_close(l);
}

static void test_net(const char *url)
{
	char a[64], b[64];
	csp_chan *c[3];
	ncl_err e;
	snprintf(a, sizeof a, "csp_test.%ld.x", (long)getpid());
	snprintf(b, sizeof b, "csp_test.%ld.y", (long)getpid());
	if (csp_chan_net(&c[0], a, url, NULL, &e) != 0 || csp_chan_net(&c[1], b, url, NULL, &e) != 0) {
		check(0, "csp_chan_net %s: %s", url, e.msg);
		return;
	}
	c[2] = chan("local", CSP_ANY2ANY, 0);
	csp_spec ps[] = {{"alt", net_alt, c}, {"writer", net_writer, c[0]}};
	csp_parallel(ps, 2, &e);
	for (int i = 0; i < 3; i++)
		csp_chan_free(c[i]);
}

int main(int argc, char **argv)
{
	char path[256];
	snprintf(path, sizeof path, "%s", argc > 1 ? argv[1] : "");
	if (argc < 2)
		snprintf(path, sizeof path, "/tmp/csp_test.%ld.trace", (long)getpid());
	setvbuf(stdout, NULL, _IOLBF, 0);
	main_thread = pthread_self(); /* libcheck.h's, unused here */
	test_rendezvous();
	test_buffered();
	test_poison();
	test_retire();
	test_kinds();
	test_alt();
	test_contention(0);
	test_contention(8);
	park_many(1000, 0);
	park_many(1000, 1);
	test_procs();
	test_trace(path);
	if (argc < 2)
		unlink(path);
	if (argc > 2)
		test_net(argv[2]);
	printf("%s\n", fails ? "some checks failed" : "all checks passed");
	return fails != 0;
}
