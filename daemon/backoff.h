/*
 * backoff.h — the reconnect backoff of spec §2.7 and the small PRNG that jitters it (and the
 * REST retry delays).
 *
 * Pure arithmetic: no loop, no I/O, no allocation, no logging. Depends on nothing but
 * proto/tr-limits.h, so the websocket session and REST can both use it without knowing each
 * other.
 */
#pragma once

#include <stdint.h>

/* Delay before reconnect attempt k >= 1 (k < 1 is treated as 1): full jitter over
 * [TR_RECONNECT_MIN_MS, 1000 * min(30, 2^k - 1)] ms, picked by the random number rnd. */
uint64_t tr_backoff_ms(unsigned k, uint32_t rnd);

/* Next number of a xorshift32 sequence kept in *state. A 0 state (which xorshift never
 * leaves) is replaced by a fixed seed, so a zeroed state works and the result is never 0. */
uint32_t tr_backoff_rand_next(uint32_t *state);
