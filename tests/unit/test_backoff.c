/*
 * test_backoff.c - unit tests for daemon/backoff.c: the first (jittered) delay, bounds
 * over many draws at every step, exponential growth of the step, reaching
 * and holding the cap, reset, no overflow after many failures, degenerate
 * settings (min 0, max < min, min == max, huge values), determinism per
 * seed, and that the jitter actually spreads the delays.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "backoff.h"

/* The documented range of the delay drawn at step `failures`. */
static void expected_range(unsigned min, unsigned max, unsigned failures,
			   int64_t *lo, int64_t *hi)
{
	uint64_t base = (uint64_t)min * 2;

	if (max < min)
		max = min;
	for (unsigned i = 0; i < failures && base < max; i++)
		base *= 2;
	if (base > max)
		base = max;
	*hi = (int64_t)base;
	*lo = (int64_t)(base / 2 < min ? min : base / 2);
}

static void test_first_delay_is_jittered(void **state)
{
	struct backoff b;
	int64_t d, lo = INT64_MAX, hi = 0;

	(void)state;
	for (uint64_t seed = 0; seed < 50; seed++) {
		backoff_init(&b, 1000, 60000, seed);
		assert_int_equal(backoff_base(&b), 2000);
		d = backoff_next(&b);
		assert_true(d >= 1000 && d <= 2000);
		lo = d < lo ? d : lo;
		hi = d > hi ? d : hi;
		assert_int_equal(b.failures, 1);
	}
	/* sensors that failed together spread their first retries */
	assert_true(hi - lo > 500);
}

static void test_bounds_every_step(void **state)
{
	static const unsigned cfg[][2] = {
		{ 1000, 60000 }, { 1, 1 }, { 1, 2 }, { 3, 1000 }, { 250, 251 },
		{ 500, 10000 }, { 7, 4294967295u }, { 4294967295u, 4294967295u },
		{ 100000, 1000 }, /* max below min: raised to min */
	};

	(void)state;
	for (size_t c = 0; c < sizeof(cfg) / sizeof(cfg[0]); c++) {
		for (uint64_t seed = 1; seed <= 20; seed++) {
			struct backoff b;

			backoff_init(&b, cfg[c][0], cfg[c][1], seed * 7919);
			for (unsigned step = 0; step < 80; step++) {
				int64_t lo, hi, d;

				expected_range(cfg[c][0], cfg[c][1], step, &lo, &hi);
				assert_int_equal(backoff_base(&b), hi);
				d = backoff_next(&b);
				if (d < lo || d > hi)
					fail_msg("min %u max %u seed %llu step %u: %lld not in [%lld, %lld]",
						 cfg[c][0], cfg[c][1], (unsigned long long)seed, step,
						 (long long)d, (long long)lo, (long long)hi);
				assert_true(d >= (int64_t)cfg[c][0]);
				assert_true(d <= (int64_t)(cfg[c][1] < cfg[c][0] ? cfg[c][0] : cfg[c][1]));
			}
		}
	}
}

static void test_growth_and_cap(void **state)
{
	struct backoff b;
	static const int64_t steps[] = { 2000, 4000, 8000, 16000, 32000, 60000, 60000 };

	(void)state;
	backoff_init(&b, 1000, 60000, 42);
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		assert_int_equal(backoff_base(&b), steps[i]);
		(void)backoff_next(&b);
	}
	/* once capped, every draw is in [max/2, max], and the top half is used */
	{
		int64_t lo = INT64_MAX, hi = 0;

		for (int i = 0; i < 10000; i++) {
			int64_t d = backoff_next(&b);

			assert_true(d >= 30000 && d <= 60000);
			lo = d < lo ? d : lo;
			hi = d > hi ? d : hi;
		}
		assert_true(lo < 31000);  /* reaches near both ends */
		assert_true(hi > 59000);
	}
}

static void test_reset(void **state)
{
	struct backoff b;

	(void)state;
	backoff_init(&b, 200, 5000, 9);
	for (int i = 0; i < 10; i++)
		(void)backoff_next(&b);
	assert_int_equal(backoff_base(&b), 5000);
	backoff_reset(&b);
	assert_int_equal(b.failures, 0);
	assert_int_equal(backoff_base(&b), 400);
	{
		int64_t d = backoff_next(&b);

		assert_true(d >= 200 && d <= 400);
	}
	assert_int_equal(backoff_base(&b), 800);
	{
		int64_t d = backoff_next(&b);

		assert_true(d >= 400 && d <= 800);
	}
}

static void test_no_overflow(void **state)
{
	struct backoff b;

	(void)state;
	backoff_init(&b, 1000, 60000, 1);
	for (int i = 0; i < 1000; i++) {
		int64_t d = backoff_next(&b);

		assert_true(d >= 1000 && d <= 60000);
	}
	assert_int_equal(b.failures, 1000);
	assert_int_equal(backoff_base(&b), 60000);

	/* the largest settings: 2^failures must not wrap into small delays */
	backoff_init(&b, 3000000000u, 4294967295u, 5);
	for (int i = 0; i < 1000; i++) {
		int64_t d = backoff_next(&b);

		assert_true(d >= 3000000000LL && d <= 4294967295LL);
	}

	/* the failure counter saturates instead of wrapping to step 0 */
	backoff_init(&b, 1000, 60000, 3);
	b.failures = UINT_MAX - 2;
	for (int i = 0; i < 5; i++) {
		int64_t d = backoff_next(&b);

		assert_true(d >= 30000 && d <= 60000);
	}
	assert_int_equal(b.failures, UINT_MAX);
	assert_int_equal(backoff_base(&b), 60000);
}

static void test_min_zero(void **state)
{
	struct backoff b;

	(void)state;
	backoff_init(&b, 0, 60000, 11);
	for (int i = 0; i < 100; i++)
		assert_int_equal(backoff_next(&b), 0);
	backoff_init(&b, 0, 0, 11);
	assert_int_equal(backoff_next(&b), 0);
}

static void test_deterministic(void **state)
{
	struct backoff a, b, c;
	int differ = 0;

	(void)state;
	backoff_init(&a, 100, 100000, 12345);
	backoff_init(&b, 100, 100000, 12345);
	backoff_init(&c, 100, 100000, 54321);
	for (int i = 0; i < 200; i++) {
		int64_t da = backoff_next(&a), db = backoff_next(&b), dc = backoff_next(&c);

		assert_int_equal(da, db);
		differ |= da != dc;
	}
	assert_true(differ);
}

/*
 * The jitter is not degenerate: at a fixed step, draws spread over the whole
 * range roughly uniformly (each of 10 buckets gets 5-15% of 20000 draws), and
 * sensors seeded differently do not retry in lockstep.
 */
static void test_distribution(void **state)
{
	struct backoff b;
	unsigned bucket[10] = { 0 };
	const int n = 20000;
	double sum = 0;

	(void)state;
	backoff_init(&b, 1000, 64000, 77);
	for (int i = 0; i < n; i++) {
		int64_t d;

		b.failures = 3;              /* base 16000: uniform in [8000, 16000] */
		d = backoff_next(&b);
		assert_true(d >= 8000 && d <= 16000);
		bucket[d == 16000 ? 9 : (d - 8000) / 800]++;
		sum += (double)d;
	}
	for (int i = 0; i < 10; i++)
		if (bucket[i] < (unsigned)n / 20 || bucket[i] > (unsigned)n * 3 / 20)
			fail_msg("bucket %d holds %u of %d draws", i, bucket[i], n);
	assert_true(sum / n > 11700 && sum / n < 12300);   /* mean 12000 */

	/* 8 sensors losing the link together spread their second retry */
	{
		int64_t seen[8];
		int distinct = 0;

		for (int s = 0; s < 8; s++) {
			backoff_init(&b, 1000, 60000, 0x5eed0000u + (uint64_t)s);
			(void)backoff_next(&b);
			seen[s] = backoff_next(&b);
			int dup = 0;

			for (int t = 0; t < s; t++)
				dup |= seen[t] == seen[s];
			distinct += !dup;
		}
		assert_true(distinct >= 6);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_first_delay_is_jittered),
		cmocka_unit_test(test_bounds_every_step),
		cmocka_unit_test(test_growth_and_cap),
		cmocka_unit_test(test_reset),
		cmocka_unit_test(test_no_overflow),
		cmocka_unit_test(test_min_zero),
		cmocka_unit_test(test_deterministic),
		cmocka_unit_test(test_distribution),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
