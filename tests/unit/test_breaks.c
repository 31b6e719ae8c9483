/*
 * test_breaks.c - unit tests for daemon/breaks.c with an injected clock:
 * the reminder at exactly the interval and each further interval, breaks by
 * sustained movement and by a large tilt (thresholds, window counts,
 * hysteresis), break end, gaps, sensor loss, dropped samples and the
 * configuration check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "breaks.h"

#define PI 3.14159265358979323846
#define SAMPLE_MS 100
#define MIN (60 * 1000)

/*
 * One sample tilted deg from -Y towards +Z with magnitude 1000 +- wobble
 * (the sign alternating with i, so a window of an even number of samples has
 * a standard deviation of exactly wobble); the detector's angle is deg.
 */
static enum breaks_output feed_i(struct breaks *b, int64_t t, double deg, double wobble,
				 long i)
{
	double a = deg * PI / 180.0, m = 1000.0 + (i % 2 ? -wobble : wobble);

	return breaks_feed(b, t, 0.0, -m * cos(a), m * sin(a), deg);
}

static enum breaks_output feed(struct breaks *b, int64_t t, double deg)
{
	return feed_i(b, t, deg, 0.0, 0);
}

/* Feeds every step ms in [from, to), expecting `want` and `state` each time. */
static void span_step(struct breaks *b, int64_t from, int64_t to, int64_t step, double deg,
		      double wobble, enum breaks_output want, enum breaks_state state)
{
	long i = 0;

	for (int64_t t = from; t < to; t += step, i++) {
		enum breaks_output out = feed_i(b, t, deg, wobble, i);

		if (out != want || b->state != state)
			fail_msg("t=%lld deg=%.1f wobble=%.0f: output %d state %d, want %d state %d",
				 (long long)t, deg, wobble, out, b->state, want, state);
	}
}

static void span(struct breaks *b, int64_t from, int64_t to, double deg, double wobble,
		 enum breaks_output want, enum breaks_state state)
{
	span_step(b, from, to, SAMPLE_MS, deg, wobble, want, state);
}

static void init_default(struct breaks *b)
{
	struct breaks_config cfg;

	breaks_config_default(&cfg);
	assert_null(breaks_config_check(&cfg));
	breaks_init(b, &cfg);
	assert_int_equal(b->state, BREAKS_IDLE);
}

/* Sitting still: the reminder at exactly 30 min, again at 60 min, not between. */
static void test_due_at_interval_and_again(void **state)
{
	struct breaks b;

	(void)state;
	init_default(&b);
	assert_int_equal(breaks_sitting_ms(&b, 0), 0);
	/* typing-level jitter of 10 mg, slightly slouched */
	span(&b, 0, 30 * MIN, 8.0, 10.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(breaks_sitting_ms(&b, 30 * MIN - 1), 30 * MIN - 1);
	assert_int_equal(feed(&b, 30 * MIN, 8.0), BREAKS_DUE);
	assert_int_equal(b.dues, 1);
	assert_int_equal(breaks_sitting_ms(&b, 30 * MIN), 30 * MIN);
	span(&b, 30 * MIN + SAMPLE_MS, 60 * MIN, 8.0, 10.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(feed(&b, 60 * MIN, 8.0), BREAKS_DUE);
	span(&b, 60 * MIN + SAMPLE_MS, 61 * MIN, 8.0, 10.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(b.breaks, 0);
}

/* Five 1 s windows of walking make a break at the sample that judges the
 * fifth; the first still window ends it; the timer restarts there. */
static void test_movement_break(void **state)
{
	struct breaks b;
	int64_t end;

	(void)state;
	init_default(&b);
	span(&b, 0, 60000, 3.0, 5.0, BREAKS_NONE, BREAKS_SITTING);
	/* walking: +-150 mg */
	span(&b, 60000, 65000, 3.0, 150.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(b.move_streak, 4);
	assert_int_equal(feed_i(&b, 65000, 3.0, 150.0, 50), BREAKS_START);
	assert_int_equal(b.state, BREAKS_ON_BREAK);
	assert_int_equal(b.break_ms, 65000);
	assert_int_equal(b.breaks, 1);
	assert_int_equal(breaks_sitting_ms(&b, 65000), 0);
	span(&b, 65100, 90000, 3.0, 150.0, BREAKS_NONE, BREAKS_ON_BREAK);
	/* sits down: the window [90000, 91000) is judged still at 91000 */
	span(&b, 90000, 91000, 3.0, 5.0, BREAKS_NONE, BREAKS_ON_BREAK);
	assert_int_equal(feed(&b, 91000, 3.0), BREAKS_END);
	assert_int_equal(b.state, BREAKS_SITTING);
	assert_int_equal(b.sitting_since, 91000);
	assert_int_equal(b.dues, 0);
	end = 91000;
	span(&b, end + SAMPLE_MS, end + 30 * MIN, 3.0, 5.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(breaks_sitting_ms(&b, end + 30 * MIN - 1), 30 * MIN - 1);
	assert_int_equal(feed(&b, end + 30 * MIN, 3.0), BREAKS_DUE);
}

/* Four windows of movement are not a break; nor is the fifth after a still
 * one in between. */
static void test_short_movement_is_no_break(void **state)
{
	struct breaks b;

	(void)state;
	init_default(&b);
	span(&b, 0, 10000, 3.0, 5.0, BREAKS_NONE, BREAKS_SITTING);
	span(&b, 10000, 14000, 3.0, 200.0, BREAKS_NONE, BREAKS_SITTING);
	span(&b, 14000, 15000, 3.0, 5.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(b.move_streak, 4);
	span(&b, 15000, 16000, 3.0, 200.0, BREAKS_NONE, BREAKS_SITTING);
	/* judged at 16000: [14000, 15000) was still */
	span(&b, 16000, 20000, 3.0, 200.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(b.move_streak, 4);
	assert_int_equal(feed_i(&b, 20000, 3.0, 200.0, 0), BREAKS_START);
}

/* The deviation threshold: exactly 60 mg is movement, 59 mg is not. */
static void test_movement_threshold(void **state)
{
	struct breaks b;

	(void)state;
	init_default(&b);
	span(&b, 0, 5000, 0.0, 59.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(feed(&b, 5000, 0.0), BREAKS_NONE);
	assert_true(b.last_sd_mg == 59.0);
	assert_int_equal(b.move_streak, 0);
	span(&b, 10000, 15000, 0.0, 60.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(feed(&b, 15000, 0.0), BREAKS_START);
	assert_true(b.last_sd_mg == 60.0);
}

/* A window needs 5 samples: 4 per second (250 ms) never counts. */
static void test_movement_min_samples(void **state)
{
	struct breaks b;

	(void)state;
	init_default(&b);
	span_step(&b, 0, 20000, 250, 3.0, 300.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(b.move_streak, 0);
	assert_true(b.last_sd_mg > 60.0);
	/* 5 per second (200 ms) does: windows from 20000 judged at 21000..25000 */
	span_step(&b, 20000, 25000, 200, 3.0, 300.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(feed_i(&b, 25000, 3.0, 300.0, 1), BREAKS_START);
}

/* A sample gap of a whole window or more breaks the movement streak. */
static void test_movement_gap_breaks_streak(void **state)
{
	struct breaks b;

	(void)state;
	init_default(&b);
	span(&b, 0, 4000, 3.0, 150.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(b.move_streak, 3);
	/* last sample 3900; the window [3000, ...) is judged at 5000: late */
	span(&b, 5000, 9000, 3.0, 150.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(b.move_streak, 3);
	span(&b, 9000, 10000, 3.0, 150.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(feed_i(&b, 10000, 3.0, 150.0, 0), BREAKS_START);
}

/* A large tilt for 3 s; dips within the hysteresis keep it, an angle of
 * exactly 35 degrees is not beyond it. */
static void test_tilt_break(void **state)
{
	struct breaks b;
	int64_t t0 = 100000;

	(void)state;
	init_default(&b);
	span(&b, 0, t0, 5.0, 0.0, BREAKS_NONE, BREAKS_SITTING);
	span(&b, t0, t0 + 10000, 35.0, 0.0, BREAKS_NONE, BREAKS_SITTING);
	assert_false(b.tilted);
	/* tilted from t0 + 10000; below 30 at + 12000 resets it */
	span(&b, t0 + 10000, t0 + 12000, 36.0, 0.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(feed(&b, t0 + 12000, 29.9), BREAKS_NONE);
	assert_false(b.tilted);
	/* tilted from t0 + 13000, with a dip to 30.5 */
	span(&b, t0 + 13000, t0 + 14000, 40.0, 0.0, BREAKS_NONE, BREAKS_SITTING);
	span(&b, t0 + 14000, t0 + 15000, 30.5, 0.0, BREAKS_NONE, BREAKS_SITTING);
	span(&b, t0 + 15000, t0 + 16000, 50.0, 0.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(b.tilt_onset_ms, t0 + 13000);
	assert_int_equal(feed(&b, t0 + 16000, 38.0), BREAKS_START);
	assert_int_equal(breaks_sitting_ms(&b, t0 + 16000), 0);
	/* the break lasts while tilted (30 is not below 30) */
	span(&b, t0 + 16100, t0 + 20000, 30.0, 0.0, BREAKS_NONE, BREAKS_ON_BREAK);
	assert_int_equal(feed(&b, t0 + 20000, 29.9), BREAKS_END);
	assert_int_equal(b.sitting_since, t0 + 20000);
}

/* A zero tilt time breaks with the first sample beyond the tilt. */
static void test_tilt_zero_time(void **state)
{
	struct breaks_config cfg;
	struct breaks b;

	(void)state;
	breaks_config_default(&cfg);
	cfg.tilt_ms = 0;
	assert_null(breaks_config_check(&cfg));
	breaks_init(&b, &cfg);
	assert_int_equal(feed(&b, 0, 5.0), BREAKS_NONE);
	assert_int_equal(feed(&b, 100, 35.1), BREAKS_START);
	assert_int_equal(feed(&b, 200, 29.0), BREAKS_END);
}

/* Without a baseline (NAN angle) the tilt rule is off; the timer still runs. */
static void test_no_baseline(void **state)
{
	struct breaks b;

	(void)state;
	init_default(&b);
	for (int64_t t = 0; t < 30 * MIN; t += 1000)
		assert_int_equal(breaks_feed(&b, t, 0, -500, 866, NAN), BREAKS_NONE);
	assert_false(b.tilted);
	assert_int_equal(breaks_feed(&b, 30 * MIN, 0, -500, 866, NAN), BREAKS_DUE);
}

/* A break and the reminder on the same sample: the break wins. */
static void test_break_wins_over_due(void **state)
{
	struct breaks b;

	(void)state;
	init_default(&b);
	span(&b, 0, 30 * MIN - 3000, 5.0, 0.0, BREAKS_NONE, BREAKS_SITTING);
	span(&b, 30 * MIN - 3000, 30 * MIN, 45.0, 0.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(feed(&b, 30 * MIN, 45.0), BREAKS_START);
	assert_int_equal(b.dues, 0);
}

/* A silence of gap_ms restarts the timer without a break; shorter ones count
 * as sitting. */
static void test_gap(void **state)
{
	struct breaks b;
	const int64_t gap = BREAKS_DEFAULT_GAP_MS;

	(void)state;
	init_default(&b);
	span(&b, 0, 10 * MIN, 5.0, 0.0, BREAKS_NONE, BREAKS_SITTING);
	/* a dropout just short of the gap: still sitting since 0 */
	assert_int_equal(breaks_sitting_ms(&b, 10 * MIN - 100 + gap - 1), 10 * MIN - 101 + gap);
	assert_int_equal(feed(&b, 10 * MIN - 100 + gap - 1, 5.0), BREAKS_NONE);
	assert_int_equal(b.sitting_since, 0);
	/* now silent for exactly gap_ms */
	{
		int64_t last = 10 * MIN - 100 + gap - 1;

		assert_int_equal(breaks_sitting_ms(&b, last + gap - 1), last + gap - 1);
		assert_int_equal(breaks_sitting_ms(&b, last + gap), 0);
		assert_int_equal(feed(&b, last + gap, 5.0), BREAKS_NONE);
		assert_int_equal(b.state, BREAKS_SITTING);
		assert_int_equal(b.sitting_since, last + gap);
		assert_int_equal(b.breaks, 0);
		/* no reminder 30 min after the original start, one 30 min after this */
		span(&b, last + gap + SAMPLE_MS, last + gap + 30 * MIN, 5.0, 0.0, BREAKS_NONE,
		     BREAKS_SITTING);
		assert_int_equal(feed(&b, last + gap + 30 * MIN, 5.0), BREAKS_DUE);
	}
}

/* A gap during a break ends it. */
static void test_gap_ends_break(void **state)
{
	struct breaks b;

	(void)state;
	init_default(&b);
	/* tilted from the very first sample */
	span(&b, 0, 3000, 45.0, 0.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(feed(&b, 3000, 45.0), BREAKS_START);
	assert_int_equal(feed(&b, 3000 + BREAKS_DEFAULT_GAP_MS, 45.0), BREAKS_END);
	assert_int_equal(b.state, BREAKS_SITTING);
	assert_int_equal(b.sitting_since, 3000 + BREAKS_DEFAULT_GAP_MS);
	/* tilt tracking started over with that sample */
	assert_int_equal(b.tilt_onset_ms, 3000 + BREAKS_DEFAULT_GAP_MS);
	span(&b, 3100 + BREAKS_DEFAULT_GAP_MS, 6000 + BREAKS_DEFAULT_GAP_MS, 45.0, 0.0,
	     BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(feed(&b, 6000 + BREAKS_DEFAULT_GAP_MS, 45.0), BREAKS_START);
}

static void test_lost(void **state)
{
	struct breaks b;

	(void)state;
	init_default(&b);
	assert_int_equal(breaks_lost(&b, 0), BREAKS_NONE);
	assert_int_equal(b.state, BREAKS_IDLE);
	span(&b, 0, 60000, 5.0, 0.0, BREAKS_NONE, BREAKS_SITTING);
	/* sitting: the timer keeps running through a short loss */
	assert_int_equal(breaks_lost(&b, 60000), BREAKS_NONE);
	assert_int_equal(b.sitting_since, 0);
	assert_int_equal(breaks_sitting_ms(&b, 70000), 70000);
	/* movement tracking starts over: 4 s of walking before the loss ... */
	span(&b, 70000, 74000, 5.0, 150.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(b.move_streak, 3);
	assert_int_equal(breaks_lost(&b, 74000), BREAKS_NONE);
	assert_int_equal(b.move_streak, 0);
	/* ... and 4 s right after are not 5 s */
	span(&b, 74000, 78000, 5.0, 150.0, BREAKS_NONE, BREAKS_SITTING);
	span(&b, 78000, 80000, 5.0, 0.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(b.move_streak, 0);
	/* on a break: it ends with the loss */
	span(&b, 80000, 83000, 60.0, 0.0, BREAKS_NONE, BREAKS_SITTING);
	assert_int_equal(feed(&b, 83000, 60.0), BREAKS_START);
	assert_int_equal(breaks_lost(&b, 83500), BREAKS_END);
	assert_int_equal(b.state, BREAKS_SITTING);
	assert_int_equal(b.sitting_since, 83500);
	assert_false(b.tilted);
	assert_int_equal(breaks_sitting_ms(&b, 90000), 6500);
}

static void test_dropped(void **state)
{
	struct breaks b;

	(void)state;
	init_default(&b);
	assert_int_equal(breaks_feed(&b, 0, 0, 0, 0, 0.0), BREAKS_DROPPED);
	assert_int_equal(breaks_feed(&b, 0, 0, -199, 0, 0.0), BREAKS_DROPPED);
	assert_int_equal(breaks_feed(&b, 0, NAN, -1000, 0, 0.0), BREAKS_DROPPED);
	assert_int_equal(breaks_feed(&b, 0, 0, -1000, 0, INFINITY), BREAKS_DROPPED);
	assert_int_equal(b.dropped, 4);
	assert_int_equal(b.state, BREAKS_IDLE);
	assert_int_equal(breaks_feed(&b, 0, 0, -200, 0, 0.0), BREAKS_NONE);
	assert_int_equal(b.state, BREAKS_SITTING);
}

static void expect_rejected(const struct breaks_config *cfg, const char *word)
{
	const char *msg = breaks_config_check(cfg);

	assert_non_null(msg);
	if (!strstr(msg, word))
		fail_msg("message \"%s\" does not name \"%s\"", msg, word);
}

static void test_config_check(void **state)
{
	struct breaks_config def, c;
	struct breaks b;

	(void)state;
	breaks_config_default(&def);
	assert_int_equal(def.interval_ms, 1800000);
	assert_true(def.tilt_deg == 35.0 && def.tilt_hysteresis_deg == 5.0);
	assert_int_equal(def.tilt_ms, 3000);
	assert_int_equal(def.move_window_ms, 1000);
	assert_true(def.move_sd_mg == 60.0);
	assert_int_equal(def.move_windows, 5);
	assert_int_equal(def.move_min_samples, 5);
	assert_int_equal(def.gap_ms, 300000);
	assert_null(breaks_config_check(&def));
	assert_non_null(breaks_config_check(NULL));

	c = def; c.interval_ms = 59999;        expect_rejected(&c, "interval");
	c = def; c.interval_ms = 8 * 3600000LL + 1; expect_rejected(&c, "interval");
	c = def; c.interval_ms = 60000;        assert_null(breaks_config_check(&c));
	c = def; c.tilt_deg = 9.9;             expect_rejected(&c, "tilt");
	c = def; c.tilt_deg = NAN;             expect_rejected(&c, "tilt");
	c = def; c.tilt_deg = 91;              expect_rejected(&c, "tilt");
	c = def; c.tilt_hysteresis_deg = -1;   expect_rejected(&c, "hysteresis");
	c = def; c.tilt_hysteresis_deg = 35;   expect_rejected(&c, "hysteresis");
	c = def; c.tilt_hysteresis_deg = NAN;  expect_rejected(&c, "hysteresis");
	c = def; c.tilt_ms = -1;               expect_rejected(&c, "tilt time");
	c = def; c.tilt_ms = 60001;            expect_rejected(&c, "tilt time");
	c = def; c.move_window_ms = 199;       expect_rejected(&c, "movement window");
	c = def; c.move_window_ms = 10001;     expect_rejected(&c, "movement window");
	c = def; c.move_sd_mg = 4;             expect_rejected(&c, "deviation");
	c = def; c.move_sd_mg = INFINITY;      expect_rejected(&c, "deviation");
	c = def; c.move_windows = 0;           expect_rejected(&c, "movement windows");
	c = def; c.move_windows = 121;         expect_rejected(&c, "movement windows");
	c = def; c.move_min_samples = 1;       expect_rejected(&c, "minimum samples");
	c = def; c.gap_ms = 9999;              expect_rejected(&c, "gap");
	c = def; c.gap_ms = 24 * 3600000LL + 1; expect_rejected(&c, "gap");

	breaks_init(&b, NULL);
	assert_int_equal(b.cfg.interval_ms, BREAKS_DEFAULT_INTERVAL_MS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_due_at_interval_and_again),
		cmocka_unit_test(test_movement_break),
		cmocka_unit_test(test_short_movement_is_no_break),
		cmocka_unit_test(test_movement_threshold),
		cmocka_unit_test(test_movement_min_samples),
		cmocka_unit_test(test_movement_gap_breaks_streak),
		cmocka_unit_test(test_tilt_break),
		cmocka_unit_test(test_tilt_zero_time),
		cmocka_unit_test(test_no_baseline),
		cmocka_unit_test(test_break_wins_over_due),
		cmocka_unit_test(test_gap),
		cmocka_unit_test(test_gap_ends_break),
		cmocka_unit_test(test_lost),
		cmocka_unit_test(test_dropped),
		cmocka_unit_test(test_config_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
