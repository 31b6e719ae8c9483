/*
 * test_detector.c - unit tests for daemon/detector.c, driven by an injected
 * clock: calibration in any sensor orientation, the angle, the slouch delay,
 * hysteresis, the peak angle, a baseline set from outside, sensor loss,
 * dropped samples and configuration checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <string.h>

#include <cmocka.h>

#include "detector.h"

#define PI 3.14159265358979323846
#define SAMPLE_MS 20 /* 50 Hz, like a micro:bit */

struct vec {
	double x, y, z;
};

static struct vec vec_scale(struct vec a, double k)
{
	struct vec r = { a.x * k, a.y * k, a.z * k };
	return r;
}

static struct vec vec_add(struct vec a, struct vec b)
{
	struct vec r = { a.x + b.x, a.y + b.y, a.z + b.z };
	return r;
}

static struct vec vec_unit(struct vec a)
{
	return vec_scale(a, 1.0 / sqrt(a.x * a.x + a.y * a.y + a.z * a.z));
}

static struct vec vec_cross(struct vec a, struct vec b)
{
	struct vec r = { a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z,
			 a.x * b.y - a.y * b.x };
	return r;
}

/*
 * A sensor mount: the gravity direction when upright (up) and a unit vector
 * perpendicular to it (fwd), the direction the reading moves to on flexion.
 */
struct mount {
	struct vec up, fwd;
};

static struct mount mount_make(struct vec up, struct vec hint)
{
	struct mount m;

	m.up = vec_unit(up);
	m.fwd = vec_unit(vec_cross(vec_cross(m.up, hint), m.up));
	return m;
}

/* A reading in milli-g, tilted deg from upright, rounded like the sensor's. */
static struct vec reading(const struct mount *m, double deg)
{
	double a = deg * PI / 180.0;
	struct vec v = vec_add(vec_scale(m->up, 1000.0 * cos(a)),
			       vec_scale(m->fwd, 1000.0 * sin(a)));

	v.x = round(v.x);
	v.y = round(v.y);
	v.z = round(v.z);
	return v;
}

static enum detector_output feed(struct detector *d, int64_t now,
				 const struct mount *m, double deg)
{
	struct vec v = reading(m, deg);

	return detector_feed(d, now, v.x, v.y, v.z);
}

/* Feeds deg every SAMPLE_MS in [from, to), expecting `want` each time. */
static void feed_span(struct detector *d, int64_t from, int64_t to,
		      const struct mount *m, double deg,
		      enum detector_output want, enum detector_state state)
{
	for (int64_t t = from; t < to; t += SAMPLE_MS) {
		enum detector_output out = feed(d, t, m, deg);

		if (out != want || d->state != state)
			fail_msg("t=%lld deg=%.1f: output %d state %d, want %d state %d",
				 (long long)t, deg, out, d->state, want, state);
	}
}

/*
 * Calibrates with the default 3 s starting at t0, with small symmetric
 * wobble around upright. Returns the time of the first judged sample.
 */
static int64_t calibrate(struct detector *d, int64_t t0, const struct mount *m)
{
	const int64_t end = t0 + DETECTOR_DEFAULT_CALIBRATION_MS;
	struct vec side = vec_cross(m->up, m->fwd);
	int i = 0;

	for (int64_t t = t0; t < end; t += SAMPLE_MS, i++) {
		/* +-3 degrees in two directions, cancelling over 4 samples */
		struct vec w = (i % 4 < 2) ? m->fwd : side;
		double a = ((i % 2) ? 3.0 : -3.0) * PI / 180.0;
		struct vec v = vec_add(vec_scale(m->up, 1000.0 * cos(a)),
				       vec_scale(w, 1000.0 * sin(a)));

		assert_int_equal(detector_feed(d, t, v.x, v.y, v.z), DETECTOR_NONE);
		assert_int_equal(d->state, DETECTOR_CALIBRATING);
		assert_true(d->angle == 0.0);
	}
	return end;
}

static void init_default(struct detector *d)
{
	struct detector_config cfg;

	detector_config_default(&cfg);
	assert_null(detector_config_check(&cfg));
	detector_init(d, &cfg);
	assert_int_equal(d->state, DETECTOR_CALIBRATING);
}

static void check_angles(const struct mount *m)
{
	static const double tilts[] = { 0.0, 5.0, 12.0, 20.0, 45.0, 90.0, 135.0, 180.0 };
	struct detector d;
	int64_t t;

	init_default(&d);
	t = calibrate(&d, 5000, m);
	for (size_t i = 0; i < sizeof(tilts) / sizeof(tilts[0]); i++) {
		feed(&d, t, m, tilts[i]);
		if (fabs(d.angle - tilts[i]) > 0.5)
			fail_msg("tilt %.1f deg measured as %.3f deg", tilts[i], d.angle);
		t += SAMPLE_MS;
	}
	/* a sideways lean is flexion too: the angle does not care about direction */
	{
		struct mount side = { m->up, vec_unit(vec_cross(m->up, m->fwd)) };

		feed(&d, t, &side, 25.0);
		assert_true(fabs(d.angle - 25.0) <= 0.5);
	}
}

static void test_angle_microbit_minus_y(void **state)
{
	/* micro:bit lying flat against the back, edge connector down: -Y is up */
	struct mount m = mount_make((struct vec){ 0, -1, 0 }, (struct vec){ 0, 0, -1 });

	(void)state;
	check_angles(&m);
}

static void test_angle_tilted_mount(void **state)
{
	/* a clip mounted askew: no axis lines up with gravity */
	struct mount m = mount_make((struct vec){ 0.42, -0.31, 0.85 },
				    (struct vec){ 1, 0.2, 0 });

	(void)state;
	check_angles(&m);
}

static void test_angle_plus_z(void **state)
{
	struct mount m = mount_make((struct vec){ 0, 0, 1 }, (struct vec){ 1, 0, 0 });

	(void)state;
	check_angles(&m);
}

/* The sample at exactly calib_start + calibration_ms ends calibration, is
 * judged against the new baseline, and is not part of it. */
static void test_calibration_boundary(void **state)
{
	struct mount m = mount_make((struct vec){ 0, -1, 0 }, (struct vec){ 0, 0, 1 });
	struct detector d;

	(void)state;
	init_default(&d);
	assert_int_equal(feed(&d, 1000, &m, 0), DETECTOR_NONE);
	assert_int_equal(feed(&d, 2500, &m, 0), DETECTOR_NONE);
	assert_int_equal(feed(&d, 3999, &m, 0), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_CALIBRATING);
	assert_true(d.angle == 0.0);
	assert_int_equal(feed(&d, 4000, &m, 30.0), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_BEYOND);
	assert_true(fabs(d.angle - 30.0) < 0.5);
}

/* Calibration starts with the first valid sample, not the first call. */
static void test_calibration_starts_at_first_valid_sample(void **state)
{
	struct mount m = mount_make((struct vec){ 1, 0, 0 }, (struct vec){ 0, 1, 0 });
	struct detector d;

	(void)state;
	init_default(&d);
	assert_int_equal(detector_feed(&d, 0, 0, 0, 0), DETECTOR_DROPPED);
	assert_int_equal(feed(&d, 10000, &m, 0), DETECTOR_NONE);
	assert_int_equal(feed(&d, 12999, &m, 0), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_CALIBRATING);
	assert_int_equal(feed(&d, 13000, &m, 0), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_UPRIGHT);
	assert_true(d.angle < 0.5);
}

/* Samples that cancel out give no direction: calibration starts over. */
static void test_calibration_degenerate_restarts(void **state)
{
	struct mount m = mount_make((struct vec){ 0, 0, 1 }, (struct vec){ 1, 0, 0 });
	struct detector d;

	(void)state;
	init_default(&d);
	assert_int_equal(feed(&d, 0, &m, 0), DETECTOR_NONE);
	assert_int_equal(feed(&d, 100, &m, 180), DETECTOR_NONE);
	assert_int_equal(feed(&d, 3000, &m, 40), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_CALIBRATING);
	/* the sample at 3000 started the new calibration */
	assert_int_equal(feed(&d, 5999, &m, 40), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_CALIBRATING);
	assert_int_equal(feed(&d, 6000, &m, 40), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_UPRIGHT);
	assert_true(d.angle < 0.5);
}

static void test_slouch_starts_exactly_at_delay(void **state)
{
	struct mount m = mount_make((struct vec){ 0, -1, 0 }, (struct vec){ 0, 0, -1 });
	struct detector d;
	int64_t t, onset;

	(void)state;
	init_default(&d);
	t = calibrate(&d, 0, &m);
	feed_span(&d, t, t + 2000, &m, 3.0, DETECTOR_NONE, DETECTOR_UPRIGHT);
	assert_int_equal(detector_beyond_ms(&d, t + 2000), 0);
	/* just below the threshold is not beyond it */
	assert_int_equal(feed(&d, t + 2000, &m, 14.7), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_UPRIGHT);

	onset = t + 5000;
	assert_int_equal(feed(&d, onset, &m, 22.0), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_BEYOND);
	feed_span(&d, onset + SAMPLE_MS, onset + DETECTOR_DEFAULT_DELAY_MS, &m, 22.0,
		  DETECTOR_NONE, DETECTOR_BEYOND);
	assert_int_equal(feed(&d, onset + DETECTOR_DEFAULT_DELAY_MS - 1, &m, 22.0),
			 DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_BEYOND);
	assert_int_equal(detector_beyond_ms(&d, onset + 12345), 12345);
	assert_int_equal(feed(&d, onset + DETECTOR_DEFAULT_DELAY_MS, &m, 22.0),
			 DETECTOR_SLOUCH_START);
	assert_int_equal(d.state, DETECTOR_SLOUCHING);
	/* reported once */
	feed_span(&d, onset + DETECTOR_DEFAULT_DELAY_MS + 1,
		  onset + DETECTOR_DEFAULT_DELAY_MS + 5000, &m, 25.0,
		  DETECTOR_NONE, DETECTOR_SLOUCHING);
	assert_int_equal(detector_beyond_ms(&d, onset + 40000), 40000);
}

/* Between threshold - hysteresis and threshold the timer keeps running. */
static void test_dip_within_hysteresis_keeps_timer(void **state)
{
	struct mount m = mount_make((struct vec){ 0.3, 0.9, -0.2 }, (struct vec){ 0, 0, 1 });
	struct detector d;
	int64_t t, onset;

	(void)state;
	init_default(&d);
	t = calibrate(&d, 0, &m);
	onset = t + 1000;
	assert_int_equal(feed(&d, onset, &m, 20.0), DETECTOR_NONE);
	feed_span(&d, onset + 5000, onset + 15000, &m, 12.0, DETECTOR_NONE, DETECTOR_BEYOND);
	feed_span(&d, onset + 15000, onset + 20000, &m, 10.5, DETECTOR_NONE, DETECTOR_BEYOND);
	feed_span(&d, onset + 20000, onset + DETECTOR_DEFAULT_DELAY_MS, &m, 18.0,
		  DETECTOR_NONE, DETECTOR_BEYOND);
	assert_int_equal(detector_beyond_ms(&d, onset + DETECTOR_DEFAULT_DELAY_MS - 10),
			 DETECTOR_DEFAULT_DELAY_MS - 10);
	assert_int_equal(feed(&d, onset + DETECTOR_DEFAULT_DELAY_MS, &m, 18.0),
			 DETECTOR_SLOUCH_START);
	/* the peak is the largest angle since onset, dips included */
	assert_true(fabs(d.peak - 20.0) < 0.5);
}

/* Falling below threshold - hysteresis resets the timer. */
static void test_drop_below_hysteresis_resets_timer(void **state)
{
	struct mount m = mount_make((struct vec){ 0, -1, 0 }, (struct vec){ 0, 0, -1 });
	struct detector d;
	int64_t t, onset;

	(void)state;
	init_default(&d);
	t = calibrate(&d, 0, &m);
	assert_int_equal(feed(&d, t, &m, 20.0), DETECTOR_NONE);
	feed_span(&d, t + SAMPLE_MS, t + 10000, &m, 20.0, DETECTOR_NONE, DETECTOR_BEYOND);
	assert_int_equal(feed(&d, t + 10000, &m, 9.0), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_UPRIGHT);
	assert_int_equal(detector_beyond_ms(&d, t + 10000), 0);
	feed_span(&d, t + 10020, t + 15000, &m, 12.0, DETECTOR_NONE, DETECTOR_UPRIGHT);

	onset = t + 15000;
	feed_span(&d, onset, onset + DETECTOR_DEFAULT_DELAY_MS, &m, 20.0,
		  DETECTOR_NONE, DETECTOR_BEYOND);
	assert_int_equal(feed(&d, onset + DETECTOR_DEFAULT_DELAY_MS, &m, 20.0),
			 DETECTOR_SLOUCH_START);
}

static void test_slouch_ends_with_hysteresis(void **state)
{
	struct mount m = mount_make((struct vec){ 0, 0, -1 }, (struct vec){ 0, 1, 0 });
	struct detector d;
	int64_t t;

	(void)state;
	init_default(&d);
	t = calibrate(&d, 0, &m);
	feed_span(&d, t, t + DETECTOR_DEFAULT_DELAY_MS, &m, 30.0, DETECTOR_NONE,
		  DETECTOR_BEYOND);
	t += DETECTOR_DEFAULT_DELAY_MS;
	assert_int_equal(feed(&d, t, &m, 30.0), DETECTOR_SLOUCH_START);
	feed_span(&d, t + 20, t + 2000, &m, 14.0, DETECTOR_NONE, DETECTOR_SLOUCHING);
	feed_span(&d, t + 2000, t + 4000, &m, 10.4, DETECTOR_NONE, DETECTOR_SLOUCHING);
	assert_int_equal(feed(&d, t + 4000, &m, 9.5), DETECTOR_SLOUCH_END);
	assert_int_equal(d.state, DETECTOR_UPRIGHT);
	feed_span(&d, t + 4020, t + 6000, &m, 2.0, DETECTOR_NONE, DETECTOR_UPRIGHT);
	/* a new slouch needs a new full delay */
	feed_span(&d, t + 6000, t + 6000 + DETECTOR_DEFAULT_DELAY_MS, &m, 16.0,
		  DETECTOR_NONE, DETECTOR_BEYOND);
	assert_int_equal(feed(&d, t + 6000 + DETECTOR_DEFAULT_DELAY_MS, &m, 16.0),
			 DETECTOR_SLOUCH_START);
}

static void test_zero_delay(void **state)
{
	struct mount m = mount_make((struct vec){ 0, -1, 0 }, (struct vec){ 0, 0, -1 });
	struct detector_config cfg;
	struct detector d;
	int64_t t;

	(void)state;
	detector_config_default(&cfg);
	cfg.delay_ms = 0;
	assert_null(detector_config_check(&cfg));
	detector_init(&d, &cfg);
	t = calibrate(&d, 0, &m);
	assert_int_equal(feed(&d, t, &m, 1.0), DETECTOR_NONE);
	assert_int_equal(feed(&d, t + 20, &m, 16.0), DETECTOR_SLOUCH_START);
	assert_int_equal(feed(&d, t + 40, &m, 4.0), DETECTOR_SLOUCH_END);
}

static void test_lost(void **state)
{
	struct mount m = mount_make((struct vec){ 0, -1, 0 }, (struct vec){ 0, 0, -1 });
	struct detector d;
	int64_t t;

	(void)state;
	init_default(&d);
	t = calibrate(&d, 0, &m);

	/* while upright: nothing */
	assert_int_equal(feed(&d, t, &m, 0), DETECTOR_NONE);
	t += SAMPLE_MS;
	assert_int_equal(detector_lost(&d, t), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_UPRIGHT);

	/* while slouching: ends the slouch, keeps the baseline */
	feed_span(&d, t, t + DETECTOR_DEFAULT_DELAY_MS, &m, 25.0, DETECTOR_NONE,
		  DETECTOR_BEYOND);
	t += DETECTOR_DEFAULT_DELAY_MS;
	assert_int_equal(feed(&d, t, &m, 25.0), DETECTOR_SLOUCH_START);
	assert_int_equal(detector_lost(&d, t + 100), DETECTOR_SLOUCH_END);
	assert_int_equal(d.state, DETECTOR_UPRIGHT);
	assert_int_equal(detector_beyond_ms(&d, t + 100), 0);
	assert_int_equal(detector_lost(&d, t + 200), DETECTOR_NONE);
	/* no recalibration afterwards: the first sample is judged at once */
	assert_int_equal(feed(&d, t + 5000, &m, 7.0), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_UPRIGHT);
	assert_true(fabs(d.angle - 7.0) < 0.5);

	/* while beyond: back to upright silently, the timer starts over */
	t += 10000;
	feed_span(&d, t, t + 20000, &m, 25.0, DETECTOR_NONE, DETECTOR_BEYOND);
	assert_int_equal(detector_lost(&d, t + 20000), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_UPRIGHT);
	t += 25000;
	feed_span(&d, t, t + DETECTOR_DEFAULT_DELAY_MS, &m, 25.0, DETECTOR_NONE,
		  DETECTOR_BEYOND);
	assert_int_equal(feed(&d, t + DETECTOR_DEFAULT_DELAY_MS, &m, 25.0),
			 DETECTOR_SLOUCH_START);
}

/* Lost during calibration: the partial calibration is thrown away. */
static void test_lost_while_calibrating(void **state)
{
	struct mount a = mount_make((struct vec){ 1, 0, 0 }, (struct vec){ 0, 1, 0 });
	struct mount b = mount_make((struct vec){ 0, 0, 1 }, (struct vec){ 0, 1, 0 });
	struct detector d;

	(void)state;
	init_default(&d);
	feed_span(&d, 0, 2000, &a, 0, DETECTOR_NONE, DETECTOR_CALIBRATING);
	assert_int_equal(detector_lost(&d, 2000), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_CALIBRATING);
	/* re-worn differently; calibration runs 3 s from the first new sample */
	feed_span(&d, 10000, 13000, &b, 0, DETECTOR_NONE, DETECTOR_CALIBRATING);
	assert_int_equal(feed(&d, 13000, &b, 0), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_UPRIGHT);
	assert_true(d.angle < 0.5);
}

static void test_low_magnitude_dropped(void **state)
{
	struct mount m = mount_make((struct vec){ 0, -1, 0 }, (struct vec){ 0, 0, -1 });
	struct detector d;
	int64_t t;
	double angle;

	(void)state;
	init_default(&d);
	assert_int_equal(detector_feed(&d, 0, 0, 0, 0), DETECTOR_DROPPED);
	assert_int_equal(detector_feed(&d, 10, 100, -100, 100), DETECTOR_DROPPED);
	assert_int_equal(detector_feed(&d, 20, NAN, -1000, 0), DETECTOR_DROPPED);
	assert_int_equal(detector_feed(&d, 30, 0, -INFINITY, 0), DETECTOR_DROPPED);
	assert_int_equal(d.dropped, 4);
	assert_false(d.calib_started);
	assert_int_equal(d.state, DETECTOR_CALIBRATING);

	t = calibrate(&d, 100, &m);
	/* dropped samples during calibration do not pull the baseline */
	assert_int_equal(feed(&d, t, &m, 0), DETECTOR_NONE);
	assert_true(d.angle < 0.5);

	assert_int_equal(feed(&d, t + 1000, &m, 20.0), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_BEYOND);
	angle = d.angle;
	/* 199 mg along the baseline would read as upright if it counted */
	for (int64_t s = t + 1020; s < t + 1000 + DETECTOR_DEFAULT_DELAY_MS; s += 20)
		assert_int_equal(detector_feed(&d, s, 0, -199, 0), DETECTOR_DROPPED);
	assert_int_equal(d.state, DETECTOR_BEYOND);
	assert_true(d.angle == angle);
	assert_int_equal(d.dropped, 4 + (DETECTOR_DEFAULT_DELAY_MS - 20) / 20);
	assert_int_equal(feed(&d, t + 1000 + DETECTOR_DEFAULT_DELAY_MS, &m, 20.0),
			 DETECTOR_SLOUCH_START);
	/* 200 mg exactly is a valid sample */
	assert_int_equal(detector_feed(&d, t + 2000 + DETECTOR_DEFAULT_DELAY_MS, 0, -200, 0),
			 DETECTOR_SLOUCH_END);
}

/* The peak is reset at each onset, follows the largest angle of the episode
 * and is kept after the end for the end event. */
static void test_peak(void **state)
{
	struct mount m = mount_make((struct vec){ 0, -1, 0 }, (struct vec){ 0, 0, -1 });
	struct detector d;
	int64_t t, onset;

	(void)state;
	init_default(&d);
	assert_true(d.peak == 0.0);
	t = calibrate(&d, 0, &m);
	/* an aborted excursion to 40 degrees sets a peak... */
	assert_int_equal(feed(&d, t, &m, 40.0), DETECTOR_NONE);
	assert_true(fabs(d.peak - 40.0) < 0.5);
	assert_int_equal(feed(&d, t + 1000, &m, 5.0), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_UPRIGHT);
	/* ...which the next onset replaces, even with a lower angle */
	onset = t + 2000;
	assert_int_equal(feed(&d, onset, &m, 17.0), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_BEYOND);
	assert_true(fabs(d.peak - 17.0) < 0.5);
	feed_span(&d, onset + 20, onset + 10000, &m, 24.0, DETECTOR_NONE, DETECTOR_BEYOND);
	assert_true(fabs(d.peak - 24.0) < 0.5);
	feed_span(&d, onset + 10000, onset + DETECTOR_DEFAULT_DELAY_MS, &m, 19.0,
		  DETECTOR_NONE, DETECTOR_BEYOND);
	assert_int_equal(feed(&d, onset + DETECTOR_DEFAULT_DELAY_MS, &m, 19.0),
			 DETECTOR_SLOUCH_START);
	t = onset + DETECTOR_DEFAULT_DELAY_MS;
	feed_span(&d, t + 20, t + 5000, &m, 33.0, DETECTOR_NONE, DETECTOR_SLOUCHING);
	feed_span(&d, t + 5000, t + 8000, &m, 12.0, DETECTOR_NONE, DETECTOR_SLOUCHING);
	assert_int_equal(feed(&d, t + 8000, &m, 3.0), DETECTOR_SLOUCH_END);
	assert_true(fabs(d.peak - 33.0) < 0.5);
	assert_true(fabs(d.angle - 3.0) < 0.5);
	/* upright samples leave it alone */
	feed_span(&d, t + 8020, t + 9000, &m, 1.0, DETECTOR_NONE, DETECTOR_UPRIGHT);
	assert_true(fabs(d.peak - 33.0) < 0.5);
	/* sensor loss ends the slouch with the peak intact */
	assert_int_equal(feed(&d, t + 9000, &m, 50.0), DETECTOR_NONE);
	feed_span(&d, t + 9020, t + 9000 + DETECTOR_DEFAULT_DELAY_MS, &m, 21.0,
		  DETECTOR_NONE, DETECTOR_BEYOND);
	assert_int_equal(feed(&d, t + 9000 + DETECTOR_DEFAULT_DELAY_MS, &m, 21.0),
			 DETECTOR_SLOUCH_START);
	assert_int_equal(detector_lost(&d, t + 70000), DETECTOR_SLOUCH_END);
	assert_true(fabs(d.peak - 50.0) < 0.5);
}

/* A stored baseline set before the first sample: no automatic calibration,
 * the very first sample is judged against it. */
static void test_set_baseline_before_samples(void **state)
{
	struct mount m = mount_make((struct vec){ 0, 0, 1 }, (struct vec){ 1, 0, 0 });
	const double up[3] = { 0, 0, 1 };
	struct detector d;

	(void)state;
	init_default(&d);
	assert_false(d.base_set);
	assert_true(detector_set_baseline(&d, up));
	assert_true(d.base_set);
	assert_int_equal(d.state, DETECTOR_UPRIGHT);
	assert_true(d.angle == 0.0);
	assert_int_equal(feed(&d, 100, &m, 25.0), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_BEYOND);
	assert_true(fabs(d.angle - 25.0) < 0.5);
	feed_span(&d, 120, 100 + DETECTOR_DEFAULT_DELAY_MS, &m, 25.0, DETECTOR_NONE,
		  DETECTOR_BEYOND);
	assert_int_equal(feed(&d, 100 + DETECTOR_DEFAULT_DELAY_MS, &m, 25.0),
			 DETECTOR_SLOUCH_START);
	/* sensor loss keeps it: no calibration after reconnecting */
	assert_int_equal(detector_lost(&d, 70000), DETECTOR_SLOUCH_END);
	assert_int_equal(d.state, DETECTOR_UPRIGHT);
	assert_int_equal(feed(&d, 80000, &m, 8.0), DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_UPRIGHT);
	assert_true(fabs(d.angle - 8.0) < 0.5);
}

/* Set in the middle of the automatic calibration: it is abandoned. */
static void test_set_baseline_during_auto_calibration(void **state)
{
	struct mount tilted = mount_make((struct vec){ 0, -0.8, 0.6 }, (struct vec){ 1, 0, 0 });
	const double up[3] = { 0, -1, 0 };
	struct detector d;
	double want;

	(void)state;
	init_default(&d);
	feed_span(&d, 0, 1500, &tilted, 0, DETECTOR_NONE, DETECTOR_CALIBRATING);
	assert_true(detector_set_baseline(&d, up));
	assert_int_equal(d.state, DETECTOR_UPRIGHT);
	/* judged against (0,-1,0), not the mean of the partial calibration */
	want = acos(0.8) * 180.0 / PI;
	assert_int_equal(feed(&d, 1500, &tilted, 0), DETECTOR_NONE);
	assert_true(fabs(d.angle - want) < 0.5);
	assert_int_equal(d.state, DETECTOR_BEYOND);
	/* and the automatic calibration never comes back */
	assert_int_equal(feed(&d, 1500 + DETECTOR_DEFAULT_CALIBRATION_MS, &tilted, 0),
			 DETECTOR_NONE);
	assert_int_equal(d.state, DETECTOR_BEYOND);
}

/* Recalibrating while slouched: the slouch ends on the next sample when the
 * wearer is upright against the new baseline. */
static void test_set_baseline_while_slouching(void **state)
{
	struct mount m = mount_make((struct vec){ 0, -1, 0 }, (struct vec){ 0, 0, -1 });
	struct vec v;
	struct detector d;
	double unit[3];
	int64_t t;

	(void)state;
	init_default(&d);
	t = calibrate(&d, 0, &m);
	assert_false(d.base_set);
	feed_span(&d, t, t + DETECTOR_DEFAULT_DELAY_MS, &m, 20.0, DETECTOR_NONE,
		  DETECTOR_BEYOND);
	t += DETECTOR_DEFAULT_DELAY_MS;
	assert_int_equal(feed(&d, t, &m, 20.0), DETECTOR_SLOUCH_START);
	/* the new upright is the current 20 degree posture */
	v = vec_unit(reading(&m, 20.0));
	unit[0] = v.x;
	unit[1] = v.y;
	unit[2] = v.z;
	assert_true(detector_set_baseline(&d, unit));
	assert_int_equal(d.state, DETECTOR_SLOUCHING);
	assert_int_equal(feed(&d, t + 20, &m, 20.0), DETECTOR_SLOUCH_END);
	assert_true(d.angle < 0.5);
	assert_int_equal(d.state, DETECTOR_UPRIGHT);
	/* 20 degrees forward of the new baseline */
	assert_int_equal(feed(&d, t + 40, &m, 40.0), DETECTOR_NONE);
	assert_true(fabs(d.angle - 20.0) < 0.5);
}

static void test_set_baseline_rejects(void **state)
{
	static const double bad[][3] = {
		{ 0, 0, 0 },
		{ NAN, 0, 1 },
		{ 0, INFINITY, 0 },
		{ 0, 0, 1.02 },
		{ 0.5, 0.5, 0.5 },
		{ 0, -0.98, 0 },
	};
	const double ok_short[3] = { 0, -0.995, 0 };
	struct detector d;

	(void)state;
	init_default(&d);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (detector_set_baseline(&d, bad[i]))
			fail_msg("baseline %zu accepted", i);
		assert_false(d.base_set);
		assert_int_equal(d.state, DETECTOR_CALIBRATING);
	}
	assert_false(detector_set_baseline(&d, NULL));
	/* within the tolerance it is accepted and normalised */
	assert_true(detector_set_baseline(&d, ok_short));
	assert_true(d.base[0] == 0.0 && d.base[1] == -1.0 && d.base[2] == 0.0);
}

static void expect_rejected(const struct detector_config *cfg, const char *word)
{
	const char *msg = detector_config_check(cfg);

	assert_non_null(msg);
	if (!strstr(msg, word))
		fail_msg("message \"%s\" does not name \"%s\"", msg, word);
}

static void test_config_check(void **state)
{
	struct detector_config def, c;

	(void)state;
	detector_config_default(&def);
	assert_true(def.threshold_deg == DETECTOR_DEFAULT_THRESHOLD_DEG);
	assert_true(def.hysteresis_deg == DETECTOR_DEFAULT_HYSTERESIS_DEG);
	assert_int_equal(def.delay_ms, DETECTOR_DEFAULT_DELAY_MS);
	assert_int_equal(def.calibration_ms, DETECTOR_DEFAULT_CALIBRATION_MS);
	assert_null(detector_config_check(&def));
	assert_non_null(detector_config_check(NULL));

	c = def; c.threshold_deg = NAN;        expect_rejected(&c, "threshold");
	c = def; c.threshold_deg = INFINITY;   expect_rejected(&c, "threshold");
	c = def; c.threshold_deg = 0.5;        expect_rejected(&c, "threshold");
	c = def; c.threshold_deg = -15;        expect_rejected(&c, "threshold");
	c = def; c.threshold_deg = 90.5;       expect_rejected(&c, "threshold");
	c = def; c.threshold_deg = 1;          c.hysteresis_deg = 0;
	assert_null(detector_config_check(&c));
	c = def; c.threshold_deg = 90;         assert_null(detector_config_check(&c));

	c = def; c.hysteresis_deg = NAN;       expect_rejected(&c, "hysteresis");
	c = def; c.hysteresis_deg = -1;        expect_rejected(&c, "hysteresis");
	c = def; c.hysteresis_deg = -INFINITY; expect_rejected(&c, "hysteresis");
	c = def; c.hysteresis_deg = 15;        expect_rejected(&c, "hysteresis");
	c = def; c.hysteresis_deg = 20;        expect_rejected(&c, "hysteresis");
	c = def; c.hysteresis_deg = 0;         assert_null(detector_config_check(&c));
	c = def; c.hysteresis_deg = 14.9;      assert_null(detector_config_check(&c));

	c = def; c.delay_ms = -1;              expect_rejected(&c, "delay");
	c = def; c.delay_ms = INT64_MIN;       expect_rejected(&c, "delay");
	c = def; c.delay_ms = 3600001;         expect_rejected(&c, "delay");
	c = def; c.delay_ms = 0;               assert_null(detector_config_check(&c));
	c = def; c.delay_ms = 3600000;         assert_null(detector_config_check(&c));

	c = def; c.calibration_ms = 99;        expect_rejected(&c, "calibration");
	c = def; c.calibration_ms = -3000;     expect_rejected(&c, "calibration");
	c = def; c.calibration_ms = 60001;     expect_rejected(&c, "calibration");
	c = def; c.calibration_ms = 100;       assert_null(detector_config_check(&c));
	c = def; c.calibration_ms = 60000;     assert_null(detector_config_check(&c));

	/* NULL config means the defaults */
	{
		struct detector d;

		detector_init(&d, NULL);
		assert_int_equal(d.cfg.delay_ms, DETECTOR_DEFAULT_DELAY_MS);
		assert_int_equal(d.state, DETECTOR_CALIBRATING);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_angle_microbit_minus_y),
		cmocka_unit_test(test_angle_tilted_mount),
		cmocka_unit_test(test_angle_plus_z),
		cmocka_unit_test(test_calibration_boundary),
		cmocka_unit_test(test_calibration_starts_at_first_valid_sample),
		cmocka_unit_test(test_calibration_degenerate_restarts),
		cmocka_unit_test(test_slouch_starts_exactly_at_delay),
		cmocka_unit_test(test_dip_within_hysteresis_keeps_timer),
		cmocka_unit_test(test_drop_below_hysteresis_resets_timer),
		cmocka_unit_test(test_slouch_ends_with_hysteresis),
		cmocka_unit_test(test_zero_delay),
		cmocka_unit_test(test_lost),
		cmocka_unit_test(test_lost_while_calibrating),
		cmocka_unit_test(test_low_magnitude_dropped),
		cmocka_unit_test(test_peak),
		cmocka_unit_test(test_set_baseline_before_samples),
		cmocka_unit_test(test_set_baseline_during_auto_calibration),
		cmocka_unit_test(test_set_baseline_while_slouching),
		cmocka_unit_test(test_set_baseline_rejects),
		cmocka_unit_test(test_config_check),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
