/* What the library's test programs (client_test.c, rpc_client.c) share:
 * "ok:"/"FAIL:" lines counted in fails, and time helpers. Each program
 * includes it once; everything is static. */
#ifndef NODE_TOOLS_LIBCHECK_H
#define NODE_TOOLS_LIBCHECK_H

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

static int fails;
static pthread_t main_thread;

static void check(int ok, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	printf("%s: ", ok ? "ok" : "FAIL");
	vprintf(fmt, ap);
	printf("\n");
	fflush(stdout);
	va_end(ap);
	fails += !ok;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}


#endif
