/* How a parked CSP operation waits for its partner and is woken: a short
 * bounded spin (the partner on the other core usually comes within a
 * microsecond), then a futex sleep with the time limit. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "client/csp_int.h"

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield");
#endif
}

/* How long to spin before sleeping. Waking a sleeping thread costs several
 * microseconds on these machines (futex wake plus the scheduler), a
 * rendezvous between two spinning threads about a hundred nanoseconds; the
 * spin is bounded in time (pause lasts 10 to 140 cycles depending on the
 * CPU, so rounds alone would not say how long) so an end whose partner is
 * not coming sleeps soon. With one core there is nobody to spin for.
 * $NODE_CSP_SPIN_NS overrides it (0: never spin), for measuring. */
#define CSP_SPIN_NS 20000

static int64_t spin_ns(void)
{
	static atomic_llong ns = -1;
	long long v = atomic_load_explicit(&ns, memory_order_relaxed);
	if (v < 0) {
		const char *e = getenv("NODE_CSP_SPIN_NS");
		v = sysconf(_SC_NPROCESSORS_ONLN) > 1 ? CSP_SPIN_NS : 0;
		if (e != NULL && *e >= '0' && *e <= '9')
			v = strtoll(e, NULL, 10);
		atomic_store_explicit(&ns, v, memory_order_relaxed);
	}
	return v;
}

/* This thread's spin time now: it halves each time a spin ends in sleep
 * (the partner was not running: on a loaded machine both ends may share a
 * core, and spinning only delays it) and doubles back after each spin that
 * saw the result, between CSP_SPIN_MIN_NS and the limit. */
#define CSP_SPIN_MIN_NS 2000
static _Thread_local int64_t spin_now = -1;

/* Spin until the result is in or the spin time is up: 1 it is in. */
static int spin(csp_waiter *w)
{
	int64_t limit = spin_ns(), until = 0;
	if (spin_now < 0 || spin_now > limit)
		spin_now = limit;
	for (unsigned i = 0; spin_now > 0; i++) {
		if (atomic_load_explicit(&w->ready, memory_order_acquire) == 1) {
			spin_now = spin_now * 2 > limit ? limit : spin_now * 2;
			return 1;
		}
		if ((i & 63) == 0) {
			int64_t now = csp_now_ns();
			if (until == 0)
				until = now + spin_now;
			else if (now >= until)
				break;
		}
		cpu_relax();
	}
	int64_t floor = limit < CSP_SPIN_MIN_NS ? limit : CSP_SPIN_MIN_NS;
	spin_now = spin_now / 2 > floor ? spin_now / 2 : floor;
	return 0;
}

int64_t csp_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t csp_deadline(int timeout_ms)
{
	return timeout_ms < 0 ? -1 : csp_now_ns() + (int64_t)timeout_ms * 1000000;
}

void csp_waiter_init(csp_waiter *w)
{
	atomic_init(&w->claimed, 0);
	atomic_init(&w->ready, 0);
	w->fired = -1;
	w->rc = 0;
	w->value = NULL;
}

void csp_wake(csp_waiter *w)
{
	/* The exchange is the last access to *w unless its owner sleeps: then
	 * it is still in the futex wait (or leaving it; a wake that reaches a
	 * reused address is a spurious wake, which every futex user tolerates). */
	if (atomic_exchange(&w->ready, 1) == 2)
		syscall(SYS_futex, &w->ready, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

void csp_wakes_add(csp_wakes *k, csp_waiter *w)
{
	if (k->n == (int)(sizeof k->w / sizeof k->w[0]))
		csp_wakes_run(k); /* under the lock: correct, only a little slower */
	k->w[k->n++] = w;
}

void csp_wakes_run(csp_wakes *k)
{
	for (int i = 0; i < k->n; i++)
		csp_wake(k->w[i]);
	k->n = 0;
}

static int sleep_until(csp_waiter *w, int64_t deadline_ns)
{
	struct timespec ts, *tp = NULL;
	if (deadline_ns >= 0) {
		int64_t left = deadline_ns - csp_now_ns();
		if (left <= 0)
			return 0;
		ts.tv_sec = left / 1000000000;
		ts.tv_nsec = left % 1000000000;
		tp = &ts;
	}
	syscall(SYS_futex, &w->ready, FUTEX_WAIT_PRIVATE, 2, tp, NULL, 0);
	return 1;
}

int csp_park(csp_waiter *w, int64_t deadline_ns)
{
	if (spin(w))
		return 1;
	for (;;) {
		int s = 0;
		if (!atomic_compare_exchange_strong(&w->ready, &s, 2) && s == 1)
			return 1;
		if (!sleep_until(w, deadline_ns))
			return atomic_load(&w->ready) == 1;
		if (atomic_load(&w->ready) == 1)
			return 1;
	}
}
