/*
 * breaks.h - sitting time and posture breaks for one posture sensor: decides
 * from the gravity stream when the wearer took a break (stood up and moved,
 * bent or stretched) and when a break reminder is due. Pure logic: the caller
 * passes the clock (monotonic ms) with every call.
 *
 * A break is either
 *  - a large tilt: the flexion angle (from the detector, against the upright
 *    baseline) above tilt_deg continuously for tilt_ms; it stays tilted until
 *    the angle falls below tilt_deg - tilt_hysteresis_deg (bending over,
 *    reaching down, stretching); or
 *  - sustained movement: move_windows consecutive movement windows. Samples
 *    are grouped into windows of move_window_ms (a window starts with its
 *    first sample and is judged when a sample at or after its end arrives);
 *    a window is moving if it holds at least move_min_samples samples and
 *    the total standard deviation of the acceleration vector,
 *    sqrt(var x + var y + var z), is at least move_sd_mg (walking; sitting
 *    still and typing stays well below). A window judged late by a whole
 *    window or more (a sample gap) breaks the streak.
 * The break starts (BREAKS_START) with the sample that completes either rule
 * and lasts while the wearer is still tilted or the last judged window was
 * moving; it ends (BREAKS_END) with the sample that shows neither, which
 * restarts the sitting timer.
 * Sitting time: time since the first sample, the end of the last break, or
 * the first sample after a silence of gap_ms or more (the wearer was not
 * observed: the timer restarts without a break being reported). A sensor on
 * the upper back cannot tell standing still from sitting upright: "sitting"
 * means worn without a detected break.
 * Reminder: BREAKS_DUE when the sitting time reaches interval_ms, then again
 * at each further full interval (2x, 3x ...) until a break.
 */
#ifndef SW_BREAKS_H
#define SW_BREAKS_H

#include <stdbool.h>
#include <stdint.h>

struct breaks_config {
	int64_t interval_ms;          /* default 1800000 (30 min) */
	double tilt_deg;              /* default 35 */
	double tilt_hysteresis_deg;   /* default 5 */
	int64_t tilt_ms;              /* default 3000 */
	int64_t move_window_ms;       /* default 1000 */
	double move_sd_mg;            /* default 60 */
	unsigned move_windows;        /* default 5 (5 s of movement) */
	unsigned move_min_samples;    /* default 5 per window */
	int64_t gap_ms;               /* default 300000 (5 min) */
};

#define BREAKS_DEFAULT_INTERVAL_MS (30 * 60 * 1000)
#define BREAKS_DEFAULT_TILT_DEG 35.0
#define BREAKS_DEFAULT_TILT_HYSTERESIS_DEG 5.0
#define BREAKS_DEFAULT_TILT_MS 3000
#define BREAKS_DEFAULT_MOVE_WINDOW_MS 1000
#define BREAKS_DEFAULT_MOVE_SD_MG 60.0
#define BREAKS_DEFAULT_MOVE_WINDOWS 5
#define BREAKS_DEFAULT_MOVE_MIN_SAMPLES 5
#define BREAKS_DEFAULT_GAP_MS (5 * 60 * 1000)
/* samples whose magnitude is below this (milli-g) are dropped, as in detector.h */
#define BREAKS_MIN_MAGNITUDE_MG 200.0

void breaks_config_default(struct breaks_config *cfg);
/* NULL if valid, else a message naming the bad setting */
const char *breaks_config_check(const struct breaks_config *cfg);

enum breaks_state {
	BREAKS_IDLE = 0,   /* no sample yet */
	BREAKS_SITTING,    /* the sitting timer runs */
	BREAKS_ON_BREAK,
};

enum breaks_output {
	BREAKS_NONE = 0,
	BREAKS_START,      /* a break began: the sitting timer is reset */
	BREAKS_END,        /* the break is over: sitting again from now */
	BREAKS_DUE,        /* sitting reached a multiple of interval_ms */
	BREAKS_DROPPED,    /* the sample was invalid and ignored */
};

struct breaks {
	struct breaks_config cfg;
	enum breaks_state state;
	int64_t last_ms;         /* last valid sample */
	int64_t sitting_since;   /* SITTING: when the timer started */
	unsigned dues;           /* BREAKS_DUE reported since sitting_since */
	int64_t break_ms;        /* ON_BREAK: when it started */
	uint64_t breaks;         /* breaks seen */
	uint64_t dropped;        /* samples dropped */
	/* large tilt */
	bool tilted;
	int64_t tilt_onset_ms;
	/* movement */
	int64_t win_start_ms;
	unsigned win_n;
	double win_ref[3];       /* the window's first sample (numerical shift) */
	double win_sum[3], win_sq[3];
	unsigned move_streak;    /* consecutive moving windows, up to move_windows */
	double last_sd_mg;       /* of the last judged window */
};

/* cfg NULL means the defaults. State IDLE. */
void breaks_init(struct breaks *b, const struct breaks_config *cfg);

/*
 * Feeds one sample (milli-g, sensor axes) taken at now_ms with the flexion
 * angle the detector computed for it (d->angle after detector_feed()), or NAN
 * while the detector has no baseline (the tilt rule is then off). Feed every
 * sample the detector accepted. One output per sample; a break start wins
 * over a reminder due with the same sample.
 */
enum breaks_output breaks_feed(struct breaks *b, int64_t now_ms, double x, double y,
			       double z, double angle_deg);

/* The sensor went away: ends a running break (BREAKS_END, sitting from now);
 * the sitting timer keeps running otherwise (the gap rule applies when the
 * sensor comes back). Movement and tilt tracking start over. */
enum breaks_output breaks_lost(struct breaks *b, int64_t now_ms);

/* Sitting time at now_ms: 0 before the first sample, during a break, and once
 * no sample came for gap_ms. */
int64_t breaks_sitting_ms(const struct breaks *b, int64_t now_ms);

#endif
