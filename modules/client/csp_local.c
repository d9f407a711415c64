/* Local channels: in one process, no sockets. A mutex per channel guards its
 * buffer and the queues of parked readers and writers; a parked operation
 * sleeps on its own waiter (csp_wait.c), so a wake reaches exactly the
 * thread it is for. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "client/csp_int.h"

#define CSP_CAP_MAX (1 << 24) /* buffered values at most: a slot is a pointer */

int csp_local_new(csp_local **out, const char *name, csp_kind kind, int capacity, ncl_err *err)
{
	if (capacity < 0 || capacity > CSP_CAP_MAX)
		return ncl_set(err, NCL_EINVAL, "csp_chan_local: capacity %d of channel '%s' is not in 0..%d",
		    capacity, name, CSP_CAP_MAX);
	if ((int)kind < CSP_ANY2ANY || kind > CSP_ANY2ONE)
		return ncl_set(err, NCL_EINVAL, "csp_chan_local: channel '%s': unknown kind %d", name, (int)kind);
	csp_local *l = calloc(1, sizeof *l);
	if (l == NULL || (capacity > 0 && (l->buf = calloc((size_t)capacity, sizeof *l->buf)) == NULL)) {
		free(l);
		return ncl_set(err, NCL_ENOMEM, "csp_chan_local: out of memory for channel '%s'", name);
	}
	pthread_mutex_init(&l->lock, NULL);
	l->name = name;
	l->kind = kind;
	l->cap = (size_t)capacity;
	*out = l;
	return 0;
}

static void drop_buffer(csp_local *l)
{
	for (; l->count > 0; l->count--) {
		free(l->buf[l->head]);
		l->buf[l->head] = NULL;
		l->head = (l->head + 1) % l->cap;
	}
}

void csp_local_free(csp_local *l)
{
	if (l == NULL)
		return;
	drop_buffer(l);
	free(l->buf);
	pthread_mutex_destroy(&l->lock);
	free(l);
}

/* ---- queues of parked links ---- */

void csp_local_enqueue(csp_local *l, int dir, csp_link *ln)
{
	csp_link **head = dir == CSP_READ ? &l->rq : &l->wq;
	csp_link **tail = dir == CSP_READ ? &l->rq_tail : &l->wq_tail;
	ln->next = NULL;
	ln->prev = *tail;
	if (*tail)
		(*tail)->next = ln;
	else
		*head = ln;
	*tail = ln;
	ln->queued = 1;
}

void csp_local_unlink(csp_local *l, int dir, csp_link *ln)
{
	csp_link **head = dir == CSP_READ ? &l->rq : &l->wq;
	csp_link **tail = dir == CSP_READ ? &l->rq_tail : &l->wq_tail;
	if (!ln->queued)
		return;
	if (ln->prev)
		ln->prev->next = ln->next;
	else
		*head = ln->next;
	if (ln->next)
		ln->next->prev = ln->prev;
	else
		*tail = ln->prev;
	ln->prev = ln->next = NULL;
	ln->queued = 0;
}

/* The oldest parked link of that side whose waiter we win; links of waiters
 * someone else won (an alt that fired elsewhere, a time limit) are dropped. */
static csp_link *take_partner(csp_local *l, int dir)
{
	csp_link *ln;
	while ((ln = dir == CSP_READ ? l->rq : l->wq) != NULL) {
		csp_local_unlink(l, dir, ln);
		if (csp_claim(ln->w))
			return ln;
	}
	return NULL;
}

static void fire(csp_link *ln, int rc, csp_wakes *k)
{
	ln->w->fired = ln->guard;
	ln->w->rc = rc;
	csp_wakes_add(k, ln->w);
}

/* Every parked link of both sides fails with rc (poison, retire). */
static void fail_all(csp_local *l, int rc, csp_wakes *k)
{
	csp_link *ln;
	while ((ln = take_partner(l, CSP_READ)) != NULL)
		fire(ln, rc, k);
	while ((ln = take_partner(l, CSP_WRITE)) != NULL)
		fire(ln, rc, k);
}

/* ---- one value, without parking (l->lock held) ---- */

/* Values are copied when they move, by whoever moves them: a parked writer
 * only offers its caller's string (valid while it is parked), and the reader
 * that takes it copies it in its own thread, where it will also be freed;
 * malloc and free in one thread stay in its cache, across threads they
 * contend for the allocator's arena. */

int csp_local_try_put(csp_local *l, const char *v, csp_wakes *k)
{
	if (l->poisoned)
		return NCL_EPOISONED;
	if (l->retired)
		return NCL_ERETIRED;
	if (l->rq == NULL && l->count == l->cap)
		return CSP_BLOCK; /* the common wait: no copy made and dropped */
	char *copy = strdup(v);
	if (copy == NULL)
		return NCL_ENOMEM;
	csp_link *r = take_partner(l, CSP_READ);
	if (r != NULL) {
		r->w->value = copy;
		fire(r, 0, k);
		return CSP_DONE;
	}
	if (l->count < l->cap) {
		l->buf[(l->head + l->count++) % l->cap] = copy;
		return CSP_DONE;
	}
	free(copy); /* every parked reader had gone elsewhere */
	return CSP_BLOCK;
}

/* A copy of the oldest parked writer's value, which is then done: CSP_DONE,
 * CSP_BLOCK when none is parked, NCL_ENOMEM (the writer hears it too). */
static int take_writer(csp_local *l, char **out, csp_wakes *k)
{
	csp_link *head = l->wq;
	if (head == NULL)
		return CSP_BLOCK;
	char *copy = strdup(head->offer); /* before claiming: nothing to undo */
	if (copy == NULL)
		return NCL_ENOMEM;
	csp_link *w = take_partner(l, CSP_WRITE);
	if (w != head) { /* the head was stale: rare */
		free(copy);
		copy = w != NULL ? strdup(w->offer) : NULL;
		if (w == NULL)
			return CSP_BLOCK;
		if (copy == NULL) {
			fire(w, NCL_ENOMEM, k);
			return NCL_ENOMEM;
		}
	}
	*out = copy;
	fire(w, 0, k);
	return CSP_DONE;
}

int csp_local_try_get(csp_local *l, char **out, csp_wakes *k)
{
	if (l->poisoned)
		return NCL_EPOISONED;
	if (l->count > 0) {
		*out = l->buf[l->head];
		l->buf[l->head] = NULL;
		l->head = (l->head + 1) % l->cap;
		l->count--;
		/* a writer parked on the full buffer gets its value in now */
		char *v;
		if (take_writer(l, &v, k) == CSP_DONE)
			l->buf[(l->head + l->count++) % l->cap] = v;
		return CSP_DONE;
	}
	int rc = take_writer(l, out, k);
	if (rc == CSP_BLOCK && l->retired)
		return NCL_ERETIRED;
	return rc;
}

/* ---- parking one read or write ---- */

/* With l->lock held, after a try said CSP_BLOCK: park, unlock, wait. A write
 * offers v; a read gets the value in *out. */
static int park_one(csp_local *l, int dir, const char *v, char **out, int64_t deadline)
{
	csp_waiter w;
	csp_waiter_init(&w);
	csp_link ln = {.w = &w, .offer = v};
	csp_local_enqueue(l, dir, &ln);
	pthread_mutex_unlock(&l->lock);
	int in = csp_park(&w, deadline);
	if (!in && csp_claim(&w)) { /* time is up and nobody had taken it */
		pthread_mutex_lock(&l->lock);
		csp_local_unlink(l, dir, &ln);
		pthread_mutex_unlock(&l->lock);
		return NCL_ETIMEDOUT;
	}
	if (!in)
		csp_park(&w, -1); /* a partner won it and is filling it in */
	/* whoever fired the link unlinked it */
	if (out != NULL)
		*out = w.value;
	return w.rc;
}

int csp_local_fail(csp_local *l, int rc, const char *op, int ms, ncl_err *err)
{
	switch (rc) {
	case NCL_EPOISONED:
		return ncl_set(err, rc, "%s: channel '%s' is poisoned", op, l->name);
	case NCL_ERETIRED:
		return ncl_set(err, rc, "%s: channel '%s' is retired (every end of one side retired)", op, l->name);
	case NCL_ETIMEDOUT:
		return ncl_set(err, rc, "%s: channel '%s': no %s in %d ms", op, l->name,
		    strstr(op, "write") ? "reader took the value" : "value came", ms);
	default:
		return ncl_set(err, rc, "%s: channel '%s': %s", op, l->name, ncl_strerror(rc));
	}
}

/* ---- the operations ---- */

/* Write one value: 0 or an NCL_E* code. */
static int put_one(csp_local *l, const char *value, int64_t deadline, int nowait)
{
	csp_wakes k = {.n = 0};
	pthread_mutex_lock(&l->lock);
	int rc = csp_local_try_put(l, value, &k);
	if (rc == CSP_BLOCK && nowait)
		rc = NCL_ETIMEDOUT;
	if (rc == CSP_BLOCK)
		rc = park_one(l, CSP_WRITE, value, NULL, deadline); /* unlocks */
	else
		pthread_mutex_unlock(&l->lock);
	csp_wakes_run(&k);
	return rc;
}

int csp_local_write_many(csp_local *l, const char *const *values, size_t n, int timeout_ms, ncl_err *err)
{
	int64_t deadline = csp_deadline(timeout_ms);
	for (size_t i = 0; i < n; i++) {
		int rc = put_one(l, values[i], deadline, timeout_ms == 0);
		if (rc != 0)
			return csp_local_fail(l, rc, "csp_write", timeout_ms, err);
	}
	return 0;
}

int csp_local_read_many(csp_local *l, char **values, size_t max, size_t *got, int timeout_ms, ncl_err *err)
{
	csp_wakes k = {.n = 0};
	size_t n = 0;
	int rc = CSP_DONE;
	pthread_mutex_lock(&l->lock);
	while (n < max && (rc = csp_local_try_get(l, &values[n], &k)) == CSP_DONE)
		n++;
	if (n > 0 || rc != CSP_BLOCK)
		pthread_mutex_unlock(&l->lock); /* values, or the error after them next time */
	else if (timeout_ms == 0) {
		pthread_mutex_unlock(&l->lock);
		rc = NCL_ETIMEDOUT;
	} else if ((rc = park_one(l, CSP_READ, NULL, &values[0], csp_deadline(timeout_ms))) == 0)
		n = 1;
	csp_wakes_run(&k);
	*got = n;
	if (n == 0)
		return csp_local_fail(l, rc, "csp_read", timeout_ms, err);
	return 0;
}

/* ---- ends, poison, retire ---- */

/* Does the kind allow only one live end on this side? */
static int restricted(csp_kind kind, int dir)
{
	return kind == CSP_ONE2ONE || (kind == CSP_ONE2ANY && dir == CSP_WRITE) ||
	       (kind == CSP_ANY2ONE && dir == CSP_READ);
}

int csp_local_end_open(csp_local *l, int dir, ncl_err *err)
{
	static const char *const kinds[] = {"any2any", "one2one", "one2any", "any2one"};
	int rc = 0;
	pthread_mutex_lock(&l->lock);
	if (restricted(l->kind, dir) && l->ends[dir] > 0)
		rc = ncl_set(err, NCL_ECONFLICT, "channel '%s' is %s: it has its %s end already", l->name,
		    kinds[l->kind], dir == CSP_READ ? "reader" : "writer");
	else
		l->ends[dir]++;
	pthread_mutex_unlock(&l->lock);
	return rc;
}

void csp_local_end_close(csp_local *l, int dir)
{
	pthread_mutex_lock(&l->lock);
	l->ends[dir]--;
	pthread_mutex_unlock(&l->lock);
}

int csp_local_retire(csp_local *l, int dir)
{
	csp_wakes k = {.n = 0};
	pthread_mutex_lock(&l->lock);
	l->ends[dir]--;
	l->retired_ends[dir]++;
	/* The last live end of a side: writes fail from now on, reads once the
	 * buffer is drained; parked ones are woken (a parked reader means an
	 * empty buffer). */
	if (l->ends[dir] == 0 && !l->retired) {
		l->retired = 1;
		fail_all(l, NCL_ERETIRED, &k);
	}
	pthread_mutex_unlock(&l->lock);
	csp_wakes_run(&k);
	return 0;
}

int csp_local_poison(csp_local *l)
{
	csp_wakes k = {.n = 0};
	pthread_mutex_lock(&l->lock);
	if (!l->poisoned) {
		l->poisoned = 1;
		drop_buffer(l);
		fail_all(l, NCL_EPOISONED, &k);
	}
	pthread_mutex_unlock(&l->lock);
	csp_wakes_run(&k);
	return 0;
}
