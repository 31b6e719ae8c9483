/*
 * backoff.h - reconnect delays: exponential growth from min_ms, capped at
 * max_ms, with "equal jitter" (a uniform draw from the upper half of the
 * current step), driven by a caller-seeded PRNG so that runs are
 * reproducible in tests. Pure computation: no clock, no timers, no I/O.
 *
 * This file owns the backoff policy only; when to call it (and the timers)
 * belongs to the BlueZ client.
 */
#ifndef SW_BACKOFF_H
#define SW_BACKOFF_H

#include <stdint.h>

struct backoff {
	unsigned min_ms, max_ms;
	unsigned failures;  /* attempts since the last reset; saturates */
	uint64_t rng;       /* splitmix64 state */
};

/*
 * min_ms is the floor of every delay, max_ms the cap
 * (raised to min_ms if below it). min_ms 0 means no delay at all (every
 * draw is 0). Any seed is fine, 0 included; equal seeds give equal runs.
 */
void backoff_init(struct backoff *b, unsigned min_ms, unsigned max_ms, uint64_t seed);

/*
 * Delay in ms before the next attempt, then counts one more failure.
 * With base = min(min_ms * 2^(failures + 1), max_ms), the delay is uniform
 * in [max(base / 2, min_ms), base]: the first is in [min_ms, 2 min_ms] (so
 * sensors that failed together do not retry together), then the range
 * doubles until it reaches [max_ms / 2, max_ms] (or [min_ms, max_ms] if
 * min_ms is above max_ms / 2).
 */
int64_t backoff_next(struct backoff *b);

/* Back to the first step (after a connection that worked); keeps the PRNG state. */
void backoff_reset(struct backoff *b);

/* The top of the next backoff_next()'s range: min(min_ms * 2^(failures + 1), max_ms). */
int64_t backoff_base(const struct backoff *b);

#endif
