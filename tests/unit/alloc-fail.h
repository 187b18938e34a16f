/*
 * alloc-fail.h — allocation hooks for the unit tests that inject allocation failures.
 *
 * The tests link with -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc, so every allocation
 * made by the sources compiled into the test (and the test itself) goes through these functions: they count
 * allocations and can make the Nth one fail. Allocations inside shared libraries (yajl,
 * cmocka, libc's strdup) are not affected. Include from exactly one file per test binary.
 */
#pragma once

#include <stddef.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static long alloc_count;        /* allocations since the last alloc_reset() */
static long alloc_fail_at = -1; /* index of the allocation that fails, -1 for none */

static void alloc_reset(long fail_at) {
	alloc_count = 0;
	alloc_fail_at = fail_at;
}

static int alloc_fails(void) {
	return alloc_count++ == alloc_fail_at;
}

void *__wrap_malloc(size_t n) {
	return alloc_fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m) {
	return alloc_fails() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n) {
	return alloc_fails() ? NULL : __real_realloc(p, n);
}

/*
 * Run EXPR with allocation 0, 1, 2, ... failing until it succeeds; every failing run must
 * return -ENOMEM (leaks show up under ASan/valgrind). CLEANUP runs after each attempt.
 */
#define ALLOC_FAIL_LOOP(EXPR, CLEANUP)                                                  \
	do {                                                                            \
		for (long fail_ = 0;; fail_++) {                                         \
			int r_;                                                          \
			alloc_reset(fail_);                                              \
			r_ = (EXPR);                                                     \
			alloc_reset(-1);                                                 \
			CLEANUP;                                                         \
			if (r_ >= 0) {                                                   \
				break;                                                   \
			}                                                                \
			assert_int_equal(r_, -ENOMEM);                                   \
			assert_true(fail_ < 100000);                                     \
		}                                                                        \
	} while (0)
