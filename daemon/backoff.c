/*
 * backoff.c — reconnect delays and their jitter (see backoff.h).
 */
#include "backoff.h"

#include "tr-limits.h"

uint32_t tr_backoff_rand_next(uint32_t *state) {
	uint32_t x = *state ? *state : 0x9e3779b9u;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*state = x;
	return x;
}

uint64_t tr_backoff_ms(unsigned k, uint32_t rnd) {
	uint64_t max;

	if (k < 1) {
		k = 1;
	}
	/* 2^5 - 1 s is already past the cap; larger k would overflow the shift. */
	if (k >= 5) {
		max = TR_RECONNECT_MAX_MS;
	} else {
		max = 1000u * ((1u << k) - 1u);
		if (max > TR_RECONNECT_MAX_MS) {
			max = TR_RECONNECT_MAX_MS;
		}
	}
	if (max < TR_RECONNECT_MIN_MS) {
		max = TR_RECONNECT_MIN_MS;
	}
	return TR_RECONNECT_MIN_MS + rnd % (max - TR_RECONNECT_MIN_MS + 1);
}
