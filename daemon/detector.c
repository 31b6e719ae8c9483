/*
 * detector.c - the slouch detector (see detector.h): calibration of the
 * upright baseline, the flexion angle, and the upright / beyond / slouching
 * state machine with hysteresis and delay. No I/O, no clock of its own.
 */
#include "detector.h"

#include <math.h>
#include <stddef.h>
#include <string.h>

#define DETECTOR_MAX_DELAY_MS (3600 * 1000)
#define DETECTOR_MIN_CALIBRATION_MS 100
#define DETECTOR_MAX_CALIBRATION_MS (60 * 1000)

static const double rad_to_deg = 180.0 / 3.14159265358979323846;

void detector_config_default(struct detector_config *cfg)
{
	cfg->threshold_deg = DETECTOR_DEFAULT_THRESHOLD_DEG;
	cfg->hysteresis_deg = DETECTOR_DEFAULT_HYSTERESIS_DEG;
	cfg->delay_ms = DETECTOR_DEFAULT_DELAY_MS;
	cfg->calibration_ms = DETECTOR_DEFAULT_CALIBRATION_MS;
}

const char *detector_config_check(const struct detector_config *cfg)
{
	if (!cfg)
		return "no detector configuration";
	if (!isfinite(cfg->threshold_deg) || cfg->threshold_deg < 1.0 ||
	    cfg->threshold_deg > 90.0)
		return "slouch threshold must be between 1 and 90 degrees";
	/* a hysteresis equal to the threshold would never let a slouch end */
	if (!isfinite(cfg->hysteresis_deg) || cfg->hysteresis_deg < 0.0 ||
	    cfg->hysteresis_deg >= cfg->threshold_deg)
		return "slouch hysteresis must be at least 0 and below the slouch threshold";
	if (cfg->delay_ms < 0 || cfg->delay_ms > DETECTOR_MAX_DELAY_MS)
		return "slouch delay must be between 0 seconds and 1 hour";
	if (cfg->calibration_ms < DETECTOR_MIN_CALIBRATION_MS ||
	    cfg->calibration_ms > DETECTOR_MAX_CALIBRATION_MS)
		return "calibration time must be between 0.1 and 60 seconds";
	return NULL;
}

static void detector_calibration_reset(struct detector *d)
{
	d->state = DETECTOR_CALIBRATING;
	d->calib_started = false;
	d->calib_start_ms = 0;
	d->sum[0] = d->sum[1] = d->sum[2] = 0.0;
	d->calib_n = 0;
	d->angle = 0.0;
}

#define DETECTOR_BASELINE_TOLERANCE 0.01

bool detector_set_baseline(struct detector *d, const double unit[3])
{
	double n;

	if (!unit || !isfinite(unit[0]) || !isfinite(unit[1]) || !isfinite(unit[2]))
		return false;
	n = sqrt(unit[0] * unit[0] + unit[1] * unit[1] + unit[2] * unit[2]);
	if (!(fabs(n - 1.0) <= DETECTOR_BASELINE_TOLERANCE))
		return false;
	for (int i = 0; i < 3; i++)
		d->base[i] = unit[i] / n;
	d->base_set = true;
	if (d->state == DETECTOR_CALIBRATING) {
		d->state = DETECTOR_UPRIGHT;
		d->angle = 0.0;
	}
	return true;
}

void detector_init(struct detector *d, const struct detector_config *cfg)
{
	memset(d, 0, sizeof(*d));
	if (cfg)
		d->cfg = *cfg;
	else
		detector_config_default(&d->cfg);
	detector_calibration_reset(d);
}

/*
 * Ends calibration: the baseline is the normalised sum of the unit samples.
 * Returns false if they cancel out (no usable direction).
 */
static bool detector_calibration_finish(struct detector *d)
{
	double n = sqrt(d->sum[0] * d->sum[0] + d->sum[1] * d->sum[1] +
			d->sum[2] * d->sum[2]);

	if (d->calib_n == 0 || !(n > 1e-6 * d->calib_n))
		return false;
	for (int i = 0; i < 3; i++)
		d->base[i] = d->sum[i] / n;
	return true;
}

/* Angle in degrees between unit vector u and the unit baseline. */
static double detector_angle(const struct detector *d, const double u[3])
{
	double dot = u[0] * d->base[0] + u[1] * d->base[1] + u[2] * d->base[2];

	if (dot > 1.0)
		dot = 1.0;
	else if (dot < -1.0)
		dot = -1.0;
	return acos(dot) * rad_to_deg;
}

enum detector_output detector_feed(struct detector *d, int64_t now_ms,
				   double x, double y, double z)
{
	double mag = sqrt(x * x + y * y + z * z);
	double u[3];
	bool beyond, back;

	/* !(mag >= min) also catches NaN and infinite components */
	if (!(mag >= DETECTOR_MIN_MAGNITUDE_MG) || !isfinite(mag)) {
		d->dropped++;
		return DETECTOR_DROPPED;
	}
	u[0] = x / mag;
	u[1] = y / mag;
	u[2] = z / mag;

	if (d->state == DETECTOR_CALIBRATING) {
		if (!d->calib_started) {
			d->calib_started = true;
			d->calib_start_ms = now_ms;
		}
		if (now_ms - d->calib_start_ms < d->cfg.calibration_ms) {
			for (int i = 0; i < 3; i++)
				d->sum[i] += u[i];
			d->calib_n++;
			d->angle = 0.0;
			return DETECTOR_NONE;
		}
		if (!detector_calibration_finish(d)) {
			/* no usable direction: start over from this sample */
			detector_calibration_reset(d);
			d->calib_started = true;
			d->calib_start_ms = now_ms;
			for (int i = 0; i < 3; i++)
				d->sum[i] = u[i];
			d->calib_n = 1;
			return DETECTOR_NONE;
		}
		d->state = DETECTOR_UPRIGHT;
		/* this sample is the first one judged against the baseline */
	}

	d->angle = detector_angle(d, u);
	beyond = d->angle > d->cfg.threshold_deg;
	back = d->angle < d->cfg.threshold_deg - d->cfg.hysteresis_deg;

	if ((d->state == DETECTOR_BEYOND || d->state == DETECTOR_SLOUCHING) &&
	    d->angle > d->peak)
		d->peak = d->angle;

	switch (d->state) {
	case DETECTOR_UPRIGHT:
		if (!beyond)
			return DETECTOR_NONE;
		d->state = DETECTOR_BEYOND;
		d->onset_ms = now_ms;
		d->peak = d->angle;
		/* a zero delay starts the slouch with this sample */
		/* fall through */
	case DETECTOR_BEYOND:
		if (back) {
			d->state = DETECTOR_UPRIGHT;
			return DETECTOR_NONE;
		}
		if (now_ms - d->onset_ms >= d->cfg.delay_ms) {
			d->state = DETECTOR_SLOUCHING;
			return DETECTOR_SLOUCH_START;
		}
		return DETECTOR_NONE;
	case DETECTOR_SLOUCHING:
		if (back) {
			d->state = DETECTOR_UPRIGHT;
			return DETECTOR_SLOUCH_END;
		}
		return DETECTOR_NONE;
	case DETECTOR_CALIBRATING:
		break;
	}
	return DETECTOR_NONE;
}

enum detector_output detector_lost(struct detector *d, int64_t now_ms)
{
	(void)now_ms;
	switch (d->state) {
	case DETECTOR_CALIBRATING:
		/* a partial calibration may mix two wearings: start again (never
		 * reached with a baseline set: the state is not CALIBRATING then) */
		detector_calibration_reset(d);
		return DETECTOR_NONE;
	case DETECTOR_UPRIGHT:
		return DETECTOR_NONE;
	case DETECTOR_BEYOND:
		d->state = DETECTOR_UPRIGHT;
		return DETECTOR_NONE;
	case DETECTOR_SLOUCHING:
		d->state = DETECTOR_UPRIGHT;
		return DETECTOR_SLOUCH_END;
	}
	return DETECTOR_NONE;
}

int64_t detector_beyond_ms(const struct detector *d, int64_t now_ms)
{
	if (d->state != DETECTOR_BEYOND && d->state != DETECTOR_SLOUCHING)
		return 0;
	return now_ms > d->onset_ms ? now_ms - d->onset_ms : 0;
}
