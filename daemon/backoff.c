/*
 * backoff.c - capped exponential reconnect backoff with equal jitter (see
 * backoff.h). The PRNG is splitmix64: tiny, any seed, full 64-bit output.
 */
#include "backoff.h"

#include <limits.h>

static uint64_t splitmix64(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15u);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
	return z ^ (z >> 31);
}

void backoff_init(struct backoff *b, unsigned min_ms, unsigned max_ms, uint64_t seed)
{
	b->min_ms = min_ms;
	b->max_ms = max_ms < min_ms ? min_ms : max_ms;
	b->failures = 0;
	b->rng = seed;
}

void backoff_reset(struct backoff *b)
{
	b->failures = 0;
}

int64_t backoff_base(const struct backoff *b)
{
	uint64_t base = b->min_ms;

	/* the first step is already doubled, so even the first retry is
	 * jittered; double until the cap (at most ~33 steps: max_ms < 2^32) */
	base *= 2;
	for (unsigned i = 0; i < b->failures && base < b->max_ms; i++)
		base *= 2;
	if (base > b->max_ms)
		base = b->max_ms;
	return (int64_t)base;
}

int64_t backoff_next(struct backoff *b)
{
	uint64_t base = (uint64_t)backoff_base(b);
	uint64_t lo = base / 2, span;

	if (lo < b->min_ms)
		lo = b->min_ms;
	/* lo <= base since base >= min_ms; span <= 2^32, so modulo bias < 2^-32 */
	span = base - lo + 1;
	if (b->failures < UINT_MAX)
		b->failures++;
	return (int64_t)(lo + splitmix64(&b->rng) % span);
}
