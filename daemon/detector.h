/*
 * detector.h - the slouch detector: turns gravity samples from one posture
 * sensor into a flexion angle against the wearer's upright baseline, and
 * into slouch start/end decisions. Pure logic: the caller passes the clock
 * (monotonic milliseconds), so tests drive it with an injected time.
 *
 * Baseline: a unit vector set from outside with detector_set_baseline() (an
 * explicit calibration, or one stored and reloaded after a restart). Only
 * when none was set, the detector falls back to an automatic one: the mean
 * direction of the valid samples of the first calibration_ms after the first
 * sample (state DETECTOR_CALIBRATING meanwhile).
 * Beyond: the angle went above threshold_deg; it stays beyond until the angle
 * falls below threshold_deg - hysteresis_deg.
 * Slouch: beyond continuously for delay_ms; ends when no longer beyond.
 * Peak: the largest angle since the episode's onset (reset when it goes
 * beyond), so the slouch end event can carry it.
 */
#ifndef SW_DETECTOR_H
#define SW_DETECTOR_H

#include <stdbool.h>
#include <stdint.h>

struct detector_config {
	double threshold_deg;   /* default 15 */
	double hysteresis_deg;  /* default 5 */
	int64_t delay_ms;       /* default 60000 */
	int64_t calibration_ms; /* default 3000 */
};

#define DETECTOR_DEFAULT_THRESHOLD_DEG 15.0
#define DETECTOR_DEFAULT_HYSTERESIS_DEG 5.0
#define DETECTOR_DEFAULT_DELAY_MS 60000
#define DETECTOR_DEFAULT_CALIBRATION_MS 3000
/* samples whose magnitude is below this (milli-g) are dropped */
#define DETECTOR_MIN_MAGNITUDE_MG 200.0

void detector_config_default(struct detector_config *cfg);
/* NULL if valid, else a message naming the bad setting */
const char *detector_config_check(const struct detector_config *cfg);

enum detector_state {
	DETECTOR_CALIBRATING = 0,
	DETECTOR_UPRIGHT,
	DETECTOR_BEYOND,    /* above threshold, delay running */
	DETECTOR_SLOUCHING,
};

struct detector {
	struct detector_config cfg;
	enum detector_state state;
	int64_t calib_start_ms;
	bool calib_started;
	double sum[3];       /* sum of unit vectors while calibrating */
	unsigned calib_n;
	double base[3];      /* unit baseline */
	bool base_set;       /* base came from detector_set_baseline() */
	double angle;        /* last angle, degrees */
	int64_t onset_ms;    /* when it went beyond */
	/* largest angle since onset_ms: set at onset, updated while BEYOND or
	 * SLOUCHING, kept after the end (read it for the end event) until the
	 * next onset; 0 before the first onset */
	double peak;
	uint64_t dropped;    /* samples below DETECTOR_MIN_MAGNITUDE_MG */
};

enum detector_output {
	DETECTOR_NONE = 0,
	DETECTOR_SLOUCH_START,
	DETECTOR_SLOUCH_END,
	DETECTOR_DROPPED,    /* the sample was invalid and ignored */
};

void detector_init(struct detector *d, const struct detector_config *cfg);

/* Feed one sample (milli-g, any axes) taken at now_ms. */
enum detector_output detector_feed(struct detector *d, int64_t now_ms,
				   double x, double y, double z);

/* The sensor went away: ends a running slouch (returns DETECTOR_SLOUCH_END)
 * and keeps the baseline. */
enum detector_output detector_lost(struct detector *d, int64_t now_ms);

/*
 * Sets the upright baseline (a unit vector in sensor axes, e.g. from
 * calibration_feed() or calibration_parse()); it is normalised here. Returns
 * false, changing nothing, unless all components are finite and the length is
 * within 1 +- 0.01. A running automatic calibration is abandoned (state
 * UPRIGHT, angle 0) and never runs again for this detector. Otherwise the
 * state machine keeps its state: the next sample is judged against the new
 * baseline, so a slouch running when the wearer recalibrates upright ends
 * (DETECTOR_SLOUCH_END) on the next sample through the normal hysteresis.
 */
bool detector_set_baseline(struct detector *d, const double unit[3]);

/* ms spent beyond the threshold so far (0 unless BEYOND or SLOUCHING) */
int64_t detector_beyond_ms(const struct detector *d, int64_t now_ms);

#endif
