/*
 * calibration.h - the explicit capture of one posture sensor's upright
 * baseline (the wearer sits upright and still; the daemon takes ~2 s of still
 * samples), and the one-line text form a baseline is stored in. Pure logic:
 * the caller passes the clock (monotonic ms) and does all file I/O; hand the
 * result to detector_set_baseline().
 *
 * Still: every sample's magnitude is within [min_mg, max_mg] (a gravity
 * vector: the sensor is not being accelerated) and its direction is within
 * tolerance_deg of the mean direction of the samples kept so far in the
 * window. A sample that breaks this restarts the window: a moving one starts
 * the new window, one that is not a gravity vector is discarded. A gap of
 * more than max_gap_ms between samples also restarts the window (stillness
 * cannot be claimed over it). The capture succeeds with the first sample at
 * or after window start + still_ms; the baseline is the normalised mean of
 * the window's unit vectors, that sample included. It fails at
 * start + timeout_ms (by calibration_tick() or a sample at or after it) with
 * the reason the window last restarted ("moving", "not a gravity vector"),
 * "no samples" if none came at all, else "timed out".
 */
#ifndef SW_CALIBRATION_H
#define SW_CALIBRATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct calibration_config {
	int64_t still_ms;       /* default 2000: still time needed */
	double tolerance_deg;   /* default 3: max angle from the running mean */
	double min_mg, max_mg;  /* default 800, 1200: a gravity vector's magnitude */
	int64_t max_gap_ms;     /* default 500: longer sample gaps restart */
	int64_t timeout_ms;     /* default 10000: give up after this */
};

#define CALIBRATION_DEFAULT_STILL_MS 2000
#define CALIBRATION_DEFAULT_TOLERANCE_DEG 3.0
#define CALIBRATION_DEFAULT_MIN_MG 800.0
#define CALIBRATION_DEFAULT_MAX_MG 1200.0
#define CALIBRATION_DEFAULT_MAX_GAP_MS 500
#define CALIBRATION_DEFAULT_TIMEOUT_MS 10000

void calibration_config_default(struct calibration_config *cfg);
/* NULL if valid, else a message naming the bad setting */
const char *calibration_config_check(const struct calibration_config *cfg);

enum calibration_status {
	CALIBRATION_IDLE = 0,   /* not started */
	CALIBRATION_RUNNING,
	CALIBRATION_DONE,       /* baseline holds the result */
	CALIBRATION_FAILED,     /* reason says why */
};

enum calibration_reason {
	CALIBRATION_OK = 0,
	CALIBRATION_MOVING,       /* "moving" */
	CALIBRATION_NO_SAMPLES,   /* "no samples" */
	CALIBRATION_NOT_GRAVITY,  /* "not a gravity vector" */
	CALIBRATION_TIMED_OUT,    /* "timed out" */
};

/* The reason strings above ("ok" for CALIBRATION_OK), for people and feeds. */
const char *calibration_reason_name(enum calibration_reason reason);

struct calibration {
	struct calibration_config cfg;
	enum calibration_status status;
	/* while RUNNING: why the window last restarted (OK if it never did);
	 * once FAILED: why it failed */
	enum calibration_reason reason;
	int64_t start_ms;        /* calibration_start() */
	bool any;                /* a sample was fed since the start */
	int64_t window_ms;       /* first sample of the still window */
	int64_t last_ms;         /* last sample kept in the window */
	unsigned n;              /* samples in the window (0: none) */
	double sum[3];           /* sum of their unit vectors */
	double baseline[3];      /* the result once DONE: a unit vector */
};

/* cfg NULL means the defaults. Status IDLE. */
void calibration_init(struct calibration *c, const struct calibration_config *cfg);

/* Starts (or restarts) a capture at now_ms: status RUNNING. */
void calibration_start(struct calibration *c, int64_t now_ms);

/* Feeds one sample (milli-g, sensor axes) taken at now_ms. Returns the status
 * after it; samples outside RUNNING change nothing. */
enum calibration_status calibration_feed(struct calibration *c, int64_t now_ms,
					 double x, double y, double z);

/* Fails a RUNNING capture whose timeout has passed (now_ms >= deadline).
 * Returns the status. */
enum calibration_status calibration_tick(struct calibration *c, int64_t now_ms);

/* When a RUNNING capture times out (start + timeout_ms), for the caller's
 * timer; INT64_MAX when not running. */
int64_t calibration_deadline(const struct calibration *c);

/*
 * The stored form: "v1 X Y Z\n", components with 6 decimals, independent of
 * the locale. calibration_format() writes it (NUL-terminated) into buf and
 * returns its length, or 0 if len is too small or unit is not a finite unit
 * vector (within CALIBRATION_UNIT_TOLERANCE). calibration_parse() reads one
 * line (the trailing newline optional, nothing else around it): exactly
 * "v1", then three decimals ([-]digits[.digits], no exponent, nan or inf)
 * separated by single spaces, whose vector length is 1 within the tolerance;
 * stores the normalised vector in unit and returns NULL, or returns why the
 * line is refused and leaves unit alone.
 */
#define CALIBRATION_LINE_MAX 64
#define CALIBRATION_UNIT_TOLERANCE 0.001
size_t calibration_format(const double unit[3], char *buf, size_t len);
const char *calibration_parse(const char *line, double unit[3]);

#endif
