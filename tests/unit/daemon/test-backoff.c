/* Unit tests of daemon/backoff.c: the reconnect delay of spec §2.7 and its PRNG. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "backoff.h"

static void test_delay(void **state) {
	/* The upper bound for attempt k: 1000 * (2^k - 1), capped at 30 s. */
	static const uint64_t max[] = {0, 1000, 3000, 7000, 15000, 30000, 30000, 30000, 30000, 30000, 30000};
	uint32_t rng = 12345;
	(void)state;
	for (unsigned k = 1; k <= 10; k++) {
		uint64_t lo = UINT64_MAX, hi = 0;
		/* the extremes are reachable */
		assert_int_equal(tr_backoff_ms(k, 0), 800);
		assert_int_equal(tr_backoff_ms(k, (uint32_t)(max[k] - 800)), max[k]);
		for (int i = 0; i < 2000; i++) {
			uint64_t d = tr_backoff_ms(k, tr_backoff_rand_next(&rng));
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		assert_true(lo >= 800);
		assert_true(hi <= max[k]);
		/* full jitter: the samples spread over most of the range */
		assert_true(hi - lo > (max[k] - 800) / 2);
	}
	/* k = 0 behaves like k = 1; huge k stays capped */
	assert_true(tr_backoff_ms(0, 0xffffffffu) <= 1000);
	assert_true(tr_backoff_ms(1000, 0xffffffffu) <= 30000);
}

static void test_rand(void **state) {
	uint32_t rng = 0, a = 7, b = 7;
	(void)state;
	/* deterministic for a seed, and never stuck at 0 */
	assert_int_not_equal(tr_backoff_rand_next(&rng), 0);
	assert_int_equal(tr_backoff_rand_next(&a), tr_backoff_rand_next(&b));
}

int main(void) {
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_delay),
		cmocka_unit_test(test_rand),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
