/*
 * test_calibration.c - unit tests for daemon/calibration.c with an injected
 * clock: success after exactly the still time, refusal while moving and then
 * success once still, the tolerance and magnitude edges, sample gaps,
 * timeouts and their reasons, and the stored text line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "calibration.h"

#define PI 3.14159265358979323846
#define SAMPLE_MS 20

/* A reading of mag milli-g, tilted deg from -Y (upright) towards +Z, turned
 * by az degrees around the -Y axis. */
static void reading(double deg, double az, double mag, double v[3])
{
	double a = deg * PI / 180.0, b = az * PI / 180.0;

	v[0] = mag * sin(a) * sin(b);
	v[1] = -mag * cos(a);
	v[2] = mag * sin(a) * cos(b);
}

static enum calibration_status feed(struct calibration *c, int64_t t, double deg,
				    double az, double mag)
{
	double v[3];

	reading(deg, az, mag, v);
	return calibration_feed(c, t, v[0], v[1], v[2]);
}

static void start_default(struct calibration *c, int64_t t)
{
	struct calibration_config cfg;

	calibration_config_default(&cfg);
	assert_null(calibration_config_check(&cfg));
	calibration_init(c, &cfg);
	assert_int_equal(c->status, CALIBRATION_IDLE);
	assert_true(calibration_deadline(c) == INT64_MAX);
	calibration_start(c, t);
	assert_int_equal(c->status, CALIBRATION_RUNNING);
	assert_int_equal(c->reason, CALIBRATION_OK);
	assert_int_equal(calibration_deadline(c), t + CALIBRATION_DEFAULT_TIMEOUT_MS);
}

/* Feeds a small wobble (+-1 degree around upright) in [from, to), expecting
 * RUNNING throughout. */
static void feed_still(struct calibration *c, int64_t from, int64_t to)
{
	int i = 0;

	for (int64_t t = from; t < to; t += SAMPLE_MS, i++) {
		double tilt = (i % 2) ? 1.0 : 0.0;
		enum calibration_status st = feed(c, t, tilt, 90.0 * (i % 4), 1000.0);

		if (st != CALIBRATION_RUNNING)
			fail_msg("t=%lld: status %d, want running", (long long)t, st);
	}
}

static void assert_up(const struct calibration *c)
{
	double n = sqrt(c->baseline[0] * c->baseline[0] + c->baseline[1] * c->baseline[1] +
			c->baseline[2] * c->baseline[2]);

	assert_true(fabs(n - 1.0) < 1e-9);
	/* within 0.5 degrees of -Y */
	assert_true(-c->baseline[1] > cos(0.5 * PI / 180.0));
}

/* Succeeds with the first sample at window start + still time, not before. */
static void test_still_succeeds_at_still_time(void **state)
{
	struct calibration c;

	(void)state;
	start_default(&c, 1000);
	/* the window starts with the first sample, not at start() */
	feed_still(&c, 1500, 1500 + CALIBRATION_DEFAULT_STILL_MS);
	assert_int_equal(feed(&c, 3499, 0, 0, 1000), CALIBRATION_RUNNING);
	assert_int_equal(c.reason, CALIBRATION_OK);
	assert_int_equal(feed(&c, 3500, 0, 0, 1000), CALIBRATION_DONE);
	assert_int_equal(c.reason, CALIBRATION_OK);
	assert_string_equal(calibration_reason_name(c.reason), "ok");
	assert_up(&c);
	assert_true(calibration_deadline(&c) == INT64_MAX);
	/* later samples and ticks change nothing */
	assert_int_equal(feed(&c, 3520, 60, 0, 1000), CALIBRATION_DONE);
	assert_int_equal(calibration_tick(&c, 100000), CALIBRATION_DONE);
	assert_up(&c);
}

/* The baseline is the mean direction, in any orientation. */
static void test_baseline_is_mean_direction(void **state)
{
	struct calibration c;
	const double u[3] = { 0.48, 0.6, -0.64 };

	(void)state;
	start_default(&c, 0);
	for (int64_t t = 0; t <= 2000; t += 100)
		assert_int_equal(calibration_feed(&c, t, 980 * u[0], 980 * u[1], 980 * u[2]),
				 t < 2000 ? CALIBRATION_RUNNING : CALIBRATION_DONE);
	for (int i = 0; i < 3; i++)
		assert_true(fabs(c.baseline[i] - u[i]) < 1e-9);
}

/* Refused while moving (the reason says so), then succeeds 2 s after the
 * first still sample. */
static void test_moving_then_still(void **state)
{
	struct calibration c;
	int64_t t;

	(void)state;
	start_default(&c, 0);
	assert_int_equal(feed(&c, 0, 0, 0, 1000), CALIBRATION_RUNNING);
	/* swaying 0 -> 10 -> 0 degrees and so on, every 200 ms */
	for (t = 200; t < 4000; t += 200) {
		assert_int_equal(feed(&c, t, (t / 200) % 2 ? 10.0 : 0.0, 0, 1000),
				 CALIBRATION_RUNNING);
		assert_int_equal(c.reason, CALIBRATION_MOVING);
		assert_string_equal(calibration_reason_name(c.reason), "moving");
	}
	/* t = 4000: (4000/200) % 2 == 0, the last sway sample (3800) was at 10 */
	feed_still(&c, 4000, 6000);
	assert_int_equal(c.reason, CALIBRATION_MOVING);
	assert_int_equal(feed(&c, 6000, 0, 0, 1000), CALIBRATION_DONE);
	assert_int_equal(c.reason, CALIBRATION_OK);
	assert_up(&c);
}

/* The tolerance: 2.9 degrees from the mean is still, 3.1 is moving. */
static void test_tolerance_edge(void **state)
{
	struct calibration c;

	(void)state;
	start_default(&c, 0);
	assert_int_equal(feed(&c, 0, 0, 0, 1000), CALIBRATION_RUNNING);
	assert_int_equal(feed(&c, 20, 2.9, 0, 1000), CALIBRATION_RUNNING);
	assert_int_equal(c.reason, CALIBRATION_OK);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.window_ms, 0);

	start_default(&c, 0);
	assert_int_equal(feed(&c, 0, 0, 0, 1000), CALIBRATION_RUNNING);
	assert_int_equal(feed(&c, 20, 3.1, 0, 1000), CALIBRATION_RUNNING);
	assert_int_equal(c.reason, CALIBRATION_MOVING);
	/* the moving sample starts the new window */
	assert_int_equal(c.n, 1);
	assert_int_equal(c.window_ms, 20);
	feed_still(&c, 40, 2020);
	/* the first still sample (at 40) was 3.1 degrees from the window of
	 * the 3.1-degree sample: it restarted the window once more */
	assert_int_equal(c.window_ms, 40);
	assert_int_equal(feed(&c, 2040, 0, 0, 1000), CALIBRATION_DONE);
}

/* A magnitude outside 800-1200 mg is not a gravity vector: the window
 * restarts without it. The limits themselves are accepted. */
static void test_magnitude_edges(void **state)
{
	struct calibration c;

	(void)state;
	start_default(&c, 0);
	assert_int_equal(feed(&c, 0, 0, 0, 800.0), CALIBRATION_RUNNING);
	assert_int_equal(feed(&c, 20, 0, 0, 1200.0), CALIBRATION_RUNNING);
	assert_int_equal(c.n, 2);
	assert_int_equal(c.reason, CALIBRATION_OK);
	assert_int_equal(feed(&c, 40, 0, 0, 1201.0), CALIBRATION_RUNNING);
	assert_int_equal(c.reason, CALIBRATION_NOT_GRAVITY);
	assert_int_equal(c.n, 0);
	assert_int_equal(feed(&c, 60, 0, 0, 799.0), CALIBRATION_RUNNING);
	assert_int_equal(c.n, 0);
	assert_int_equal(calibration_feed(&c, 80, NAN, -1000, 0), CALIBRATION_RUNNING);
	assert_int_equal(calibration_feed(&c, 100, 0, -INFINITY, 0), CALIBRATION_RUNNING);
	assert_int_equal(c.n, 0);
	assert_string_equal(calibration_reason_name(c.reason), "not a gravity vector");
	/* the next good sample starts the window */
	feed_still(&c, 120, 2120);
	assert_int_equal(c.window_ms, 120);
	assert_int_equal(feed(&c, 2120, 0, 0, 1000), CALIBRATION_DONE);
}

/* Accelerated the whole time: fails at the timeout with that reason. */
static void test_not_gravity_times_out(void **state)
{
	struct calibration c;

	(void)state;
	start_default(&c, 500);
	for (int64_t t = 500; t < 10500; t += SAMPLE_MS)
		assert_int_equal(feed(&c, t, 0, 0, 1500.0), CALIBRATION_RUNNING);
	assert_int_equal(calibration_tick(&c, 10499), CALIBRATION_RUNNING);
	assert_int_equal(calibration_tick(&c, 10500), CALIBRATION_FAILED);
	assert_int_equal(c.reason, CALIBRATION_NOT_GRAVITY);
	assert_true(calibration_deadline(&c) == INT64_MAX);
}

/* Moving until the end: the sample at the deadline is not used even though
 * it would complete a still window; the capture fails as "moving". */
static void test_sample_at_deadline_fails(void **state)
{
	struct calibration c;

	(void)state;
	start_default(&c, 0);
	for (int64_t t = 0; t < 8000; t += 200)
		feed(&c, t, (t / 200) % 2 ? 10.0 : 0.0, 0, 1000);
	assert_int_equal(c.reason, CALIBRATION_MOVING);
	feed_still(&c, 8000, 10000);
	assert_int_equal(c.window_ms, 8000);
	assert_int_equal(feed(&c, 10000, 0, 0, 1000), CALIBRATION_FAILED);
	assert_int_equal(c.reason, CALIBRATION_MOVING);
	/* failed stays failed; a new start runs again */
	assert_int_equal(feed(&c, 10020, 0, 0, 1000), CALIBRATION_FAILED);
	calibration_start(&c, 20000);
	assert_int_equal(c.reason, CALIBRATION_OK);
	feed_still(&c, 20000, 22000);
	assert_int_equal(feed(&c, 22000, 0, 0, 1000), CALIBRATION_DONE);
}

static void test_no_samples(void **state)
{
	struct calibration c;

	(void)state;
	start_default(&c, 100);
	assert_int_equal(calibration_tick(&c, 5000), CALIBRATION_RUNNING);
	assert_int_equal(calibration_tick(&c, 10099), CALIBRATION_RUNNING);
	assert_int_equal(calibration_tick(&c, 10100), CALIBRATION_FAILED);
	assert_int_equal(c.reason, CALIBRATION_NO_SAMPLES);
	assert_string_equal(calibration_reason_name(c.reason), "no samples");
	/* a late tick or sample changes nothing */
	assert_int_equal(calibration_tick(&c, 20000), CALIBRATION_FAILED);
	assert_int_equal(c.reason, CALIBRATION_NO_SAMPLES);
}

/* Samples further apart than max_gap_ms never make a still window. */
static void test_sparse_samples_time_out(void **state)
{
	struct calibration c;

	(void)state;
	start_default(&c, 0);
	for (int64_t t = 0; t < 10000; t += 501)
		assert_int_equal(feed(&c, t, 0, 0, 1000), CALIBRATION_RUNNING);
	assert_int_equal(c.n, 1);
	assert_int_equal(calibration_tick(&c, 10000), CALIBRATION_FAILED);
	assert_int_equal(c.reason, CALIBRATION_TIMED_OUT);
	assert_string_equal(calibration_reason_name(c.reason), "timed out");

	/* exactly max_gap_ms apart is fine: 2000 / 500 */
	start_default(&c, 0);
	for (int64_t t = 0; t < 2000; t += 500)
		assert_int_equal(feed(&c, t, 0, 0, 1000), CALIBRATION_RUNNING);
	assert_int_equal(feed(&c, 2000, 0, 0, 1000), CALIBRATION_DONE);
}

static void test_idle_ignores_samples(void **state)
{
	struct calibration c;

	(void)state;
	calibration_init(&c, NULL);
	assert_int_equal(c.cfg.still_ms, CALIBRATION_DEFAULT_STILL_MS);
	assert_int_equal(feed(&c, 0, 0, 0, 1000), CALIBRATION_IDLE);
	assert_int_equal(calibration_tick(&c, 1000000), CALIBRATION_IDLE);
	assert_int_equal(c.n, 0);
}

static void test_format(void **state)
{
	const double up[3] = { 0, -1, 0 };
	const double odd[3] = { 0.48, 0.6, -0.64 };
	const double tiny[3] = { -0.0000004, 0, 1 };
	const double bad[][3] = { { 0, 0, 0 }, { NAN, 0, 1 }, { 0, 0, 1.01 }, { 0, INFINITY, 0 } };
	char buf[CALIBRATION_LINE_MAX];

	(void)state;
	assert_int_equal(calibration_format(up, buf, sizeof(buf)), 31);
	assert_string_equal(buf, "v1 0.000000 -1.000000 0.000000\n");
	assert_int_equal(calibration_format(odd, buf, sizeof(buf)), 31);
	assert_string_equal(buf, "v1 0.480000 0.600000 -0.640000\n");
	assert_int_equal(calibration_format(tiny, buf, sizeof(buf)), 30);
	assert_string_equal(buf, "v1 0.000000 0.000000 1.000000\n");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_int_equal(calibration_format(bad[i], buf, sizeof(buf)), 0);
	/* the buffer must hold the line and its NUL */
	assert_int_equal(calibration_format(up, buf, 31), 0);
	assert_int_equal(calibration_format(up, buf, 32), 31);
	assert_int_equal(calibration_format(NULL, buf, sizeof(buf)), 0);
}

static void test_round_trip(void **state)
{
	struct calibration c;
	char buf[CALIBRATION_LINE_MAX];
	double back[3];

	(void)state;
	start_default(&c, 0);
	for (int64_t t = 0; t <= 2000; t += SAMPLE_MS)
		calibration_feed(&c, t, 123, -871, 402);
	assert_int_equal(c.status, CALIBRATION_DONE);
	assert_true(calibration_format(c.baseline, buf, sizeof(buf)) > 0);
	assert_null(calibration_parse(buf, back));
	for (int i = 0; i < 3; i++)
		assert_true(fabs(back[i] - c.baseline[i]) < 2e-6);
}

static void expect_parse_refused(const char *line, const char *word)
{
	double v[3] = { 7, 7, 7 };
	const char *msg = calibration_parse(line, v);

	if (!msg)
		fail_msg("\"%s\" accepted", line);
	if (!strstr(msg, word))
		fail_msg("\"%s\": message \"%s\" does not say \"%s\"", line, msg, word);
	assert_true(v[0] == 7 && v[1] == 7 && v[2] == 7);
}

static void test_parse(void **state)
{
	double v[3];

	(void)state;
	assert_null(calibration_parse("v1 0.000000 -1.000000 0.000000\n", v));
	assert_true(v[0] == 0.0 && v[1] == -1.0 && v[2] == 0.0);
	assert_null(calibration_parse("v1 0.6 -0.8 0", v));
	assert_true(fabs(v[0] - 0.6) < 1e-12 && fabs(v[1] + 0.8) < 1e-12 && v[2] == 0.0);
	assert_null(calibration_parse("v1 0 0 -1", v));
	assert_true(v[2] == -1.0);
	/* within the tolerance: normalised */
	assert_null(calibration_parse("v1 0 0 -1.0009", v));
	assert_true(v[2] == -1.0);

	assert_non_null(calibration_parse(NULL, v));
	expect_parse_refused("", "version");
	expect_parse_refused("v2 0 0 1", "version");
	expect_parse_refused("V1 0 0 1", "version");
	expect_parse_refused(" v1 0 0 1", "version");
	expect_parse_refused("v1 nan 0 1", "decimal");
	expect_parse_refused("v1 0 inf 0", "decimal");
	expect_parse_refused("v1 1e0 0 0", "decimal");
	expect_parse_refused("v1 0x1 0 0", "decimal");
	expect_parse_refused("v1 +1 0 0", "decimal");
	expect_parse_refused("v1 .5 0 0", "decimal");
	expect_parse_refused("v1 1. 0 0", "decimal");
	expect_parse_refused("v1 0,6 -0,8 0", "decimal");
	expect_parse_refused("v1 0 0", "three components");
	expect_parse_refused("v1  0 0 1", "decimal");
	expect_parse_refused("v1 0 0 1 ", "trailing");
	expect_parse_refused("v1 0 0 1\n\n", "trailing");
	expect_parse_refused("v1 0 0 1\r\n", "trailing");
	expect_parse_refused("v1 0 0 1 0", "trailing");
	expect_parse_refused("v1 0 0 1e0", "decimal");
	expect_parse_refused("v1 0 -0.5 -0.5 junk", "trailing");
	expect_parse_refused("v1 0 0 1.0011", "unit");
	expect_parse_refused("v1 0 0 0", "unit");
	expect_parse_refused("v1 0.5 0.5 0.5", "unit");
	expect_parse_refused("v1 0 0 1000", "decimal");
	expect_parse_refused("v1 0 0 0.0000000001", "decimal");
}

static void expect_rejected(const struct calibration_config *cfg, const char *word)
{
	const char *msg = calibration_config_check(cfg);

	assert_non_null(msg);
	if (!strstr(msg, word))
		fail_msg("message \"%s\" does not name \"%s\"", msg, word);
}

static void test_config_check(void **state)
{
	struct calibration_config def, c;

	(void)state;
	calibration_config_default(&def);
	assert_int_equal(def.still_ms, 2000);
	assert_true(def.tolerance_deg == 3.0);
	assert_true(def.min_mg == 800.0 && def.max_mg == 1200.0);
	assert_int_equal(def.max_gap_ms, 500);
	assert_int_equal(def.timeout_ms, 10000);
	assert_null(calibration_config_check(&def));
	assert_non_null(calibration_config_check(NULL));

	c = def; c.still_ms = 499;          expect_rejected(&c, "still time");
	c = def; c.still_ms = 30001;        expect_rejected(&c, "still time");
	c = def; c.still_ms = 500;          assert_null(calibration_config_check(&c));
	c = def; c.tolerance_deg = NAN;     expect_rejected(&c, "tolerance");
	c = def; c.tolerance_deg = 0.4;     expect_rejected(&c, "tolerance");
	c = def; c.tolerance_deg = 20.5;    expect_rejected(&c, "tolerance");
	c = def; c.min_mg = 199;            expect_rejected(&c, "minimum magnitude");
	c = def; c.min_mg = NAN;            expect_rejected(&c, "minimum magnitude");
	c = def; c.max_mg = 999;            expect_rejected(&c, "maximum magnitude");
	c = def; c.max_mg = INFINITY;       expect_rejected(&c, "maximum magnitude");
	c = def; c.min_mg = 1000; c.max_mg = 1000; assert_null(calibration_config_check(&c));
	c = def; c.max_gap_ms = 9;          expect_rejected(&c, "gap");
	c = def; c.max_gap_ms = 2001;       expect_rejected(&c, "gap");
	c = def; c.timeout_ms = 2000;       expect_rejected(&c, "timeout");
	c = def; c.timeout_ms = 300001;     expect_rejected(&c, "timeout");
	c = def; c.timeout_ms = 2001;       assert_null(calibration_config_check(&c));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_still_succeeds_at_still_time),
		cmocka_unit_test(test_baseline_is_mean_direction),
		cmocka_unit_test(test_moving_then_still),
		cmocka_unit_test(test_tolerance_edge),
		cmocka_unit_test(test_magnitude_edges),
		cmocka_unit_test(test_not_gravity_times_out),
		cmocka_unit_test(test_sample_at_deadline_fails),
		cmocka_unit_test(test_no_samples),
		cmocka_unit_test(test_sparse_samples_time_out),
		cmocka_unit_test(test_idle_ignores_samples),
		cmocka_unit_test(test_format),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_parse),
		cmocka_unit_test(test_config_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
