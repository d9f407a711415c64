/* A tiny unit-test harness: checks record failures and go on, so one run
 * shows every broken expectation. Each *_test.c is one program. */
#ifndef NODE_UNIT_H
#define NODE_UNIT_H

#include <stdio.h>

static int unit_checks, unit_failed;

#define UNIT_CHECK(cond)                                                         \
	do {                                                                     \
		unit_checks++;                                                   \
		if (!(cond)) {                                                   \
			unit_failed++;                                           \
			fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                \
	} while (0)

#define UNIT_TEST(name) static void name(void)
#define UNIT_RUN(name)                                                           \
	do {                                                                     \
		int before_ = unit_failed;                                       \
		name();                                                          \
		fprintf(stderr, "  %-40s %s\n", #name, unit_failed == before_ ? "ok" : "FAILED"); \
	} while (0)

static inline int unit_finish(const char *suite)
{
	printf("%s: %d checks, %d failed\n", suite, unit_checks, unit_failed);
	return unit_failed ? 1 : 0;
}

#endif
