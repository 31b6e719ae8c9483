/*
 * breaks.c - posture breaks and the sitting timer (see breaks.h): the large
 * tilt and sustained movement rules, break start/end and the reminder. No
 * I/O, no clock of its own.
 */
#include "breaks.h"

#include <math.h>
#include <string.h>

void breaks_config_default(struct breaks_config *cfg)
{
	cfg->interval_ms = BREAKS_DEFAULT_INTERVAL_MS;
	cfg->tilt_deg = BREAKS_DEFAULT_TILT_DEG;
	cfg->tilt_hysteresis_deg = BREAKS_DEFAULT_TILT_HYSTERESIS_DEG;
	cfg->tilt_ms = BREAKS_DEFAULT_TILT_MS;
	cfg->move_window_ms = BREAKS_DEFAULT_MOVE_WINDOW_MS;
	cfg->move_sd_mg = BREAKS_DEFAULT_MOVE_SD_MG;
	cfg->move_windows = BREAKS_DEFAULT_MOVE_WINDOWS;
	cfg->move_min_samples = BREAKS_DEFAULT_MOVE_MIN_SAMPLES;
	cfg->gap_ms = BREAKS_DEFAULT_GAP_MS;
}

const char *breaks_config_check(const struct breaks_config *cfg)
{
	if (!cfg)
		return "no break configuration";
	if (cfg->interval_ms < 60 * 1000 || cfg->interval_ms > 8 * 3600 * 1000)
		return "break interval must be between 1 minute and 8 hours";
	if (!isfinite(cfg->tilt_deg) || cfg->tilt_deg < 10.0 || cfg->tilt_deg > 90.0)
		return "break tilt must be between 10 and 90 degrees";
	if (!isfinite(cfg->tilt_hysteresis_deg) || cfg->tilt_hysteresis_deg < 0.0 ||
	    cfg->tilt_hysteresis_deg >= cfg->tilt_deg)
		return "break tilt hysteresis must be at least 0 and below the break tilt";
	if (cfg->tilt_ms < 0 || cfg->tilt_ms > 60 * 1000)
		return "break tilt time must be between 0 and 60 seconds";
	if (cfg->move_window_ms < 200 || cfg->move_window_ms > 10 * 1000)
		return "break movement window must be between 0.2 and 10 seconds";
	if (!isfinite(cfg->move_sd_mg) || cfg->move_sd_mg < 5.0 || cfg->move_sd_mg > 2000.0)
		return "break movement deviation must be between 5 and 2000 mg";
	if (cfg->move_windows < 1 || cfg->move_windows > 120)
		return "break movement windows must be between 1 and 120";
	if (cfg->move_min_samples < 2 || cfg->move_min_samples > 1000)
		return "break movement minimum samples must be between 2 and 1000";
	if (cfg->gap_ms < 10 * 1000 || cfg->gap_ms > 24LL * 3600 * 1000 ||
	    cfg->gap_ms < 2 * cfg->move_window_ms)
		return "break gap must be between 10 seconds and 24 hours";
	return NULL;
}

void breaks_init(struct breaks *b, const struct breaks_config *cfg)
{
	memset(b, 0, sizeof(*b));
	if (cfg)
		b->cfg = *cfg;
	else
		breaks_config_default(&b->cfg);
	b->state = BREAKS_IDLE;
}

/* Forgets tilt and movement tracking (after a gap or a loss). */
static void tracking_reset(struct breaks *b)
{
	b->tilted = false;
	b->tilt_onset_ms = 0;
	b->win_n = 0;
	b->move_streak = 0;
}

static void sit_from(struct breaks *b, int64_t now_ms)
{
	b->state = BREAKS_SITTING;
	b->sitting_since = now_ms;
	b->dues = 0;
}

static void window_add(struct breaks *b, int64_t now_ms, const double v[3])
{
	if (b->win_n == 0) {
		b->win_start_ms = now_ms;
		for (int i = 0; i < 3; i++) {
			b->win_ref[i] = v[i];
			b->win_sum[i] = b->win_sq[i] = 0.0;
		}
	}
	for (int i = 0; i < 3; i++) {
		double d = v[i] - b->win_ref[i];

		b->win_sum[i] += d;
		b->win_sq[i] += d * d;
	}
	b->win_n++;
}

/* Judges the open window if now_ms is at or past its end. */
static void window_judge(struct breaks *b, int64_t now_ms)
{
	const int64_t w = b->cfg.move_window_ms;
	double var = 0.0;
	bool moving;

	if (b->win_n == 0 || now_ms - b->win_start_ms < w)
		return;
	for (int i = 0; i < 3; i++) {
		double mean = b->win_sum[i] / b->win_n;
		double v = b->win_sq[i] / b->win_n - mean * mean;

		var += v > 0.0 ? v : 0.0;
	}
	b->last_sd_mg = sqrt(var);
	moving = b->win_n >= b->cfg.move_min_samples && b->last_sd_mg >= b->cfg.move_sd_mg;
	if (now_ms - b->win_start_ms >= 2 * w || !moving)
		b->move_streak = 0;
	else if (b->move_streak < b->cfg.move_windows)
		b->move_streak++;
	b->win_n = 0;
}

static void tilt_track(struct breaks *b, int64_t now_ms, double angle_deg)
{
	if (isnan(angle_deg)) {
		b->tilted = false;
		return;
	}
	if (!b->tilted && angle_deg > b->cfg.tilt_deg) {
		b->tilted = true;
		b->tilt_onset_ms = now_ms;
	} else if (b->tilted && angle_deg < b->cfg.tilt_deg - b->cfg.tilt_hysteresis_deg) {
		b->tilted = false;
	}
}

enum breaks_output breaks_feed(struct breaks *b, int64_t now_ms, double x, double y,
			       double z, double angle_deg)
{
	double mag = sqrt(x * x + y * y + z * z);
	const double v[3] = { x, y, z };
	enum breaks_output out = BREAKS_NONE;
	bool tilt_break, move_break;

	if (!(mag >= BREAKS_MIN_MAGNITUDE_MG) || !isfinite(mag) || isinf(angle_deg)) {
		b->dropped++;
		return BREAKS_DROPPED;
	}
	if (b->state == BREAKS_IDLE || now_ms - b->last_ms >= b->cfg.gap_ms) {
		/* not observed until now: sitting from this sample */
		if (b->state == BREAKS_ON_BREAK)
			out = BREAKS_END;
		tracking_reset(b);
		sit_from(b, now_ms);
		b->last_ms = now_ms;
		tilt_track(b, now_ms, angle_deg);
		window_add(b, now_ms, v);
		return out;
	}
	b->last_ms = now_ms;
	tilt_track(b, now_ms, angle_deg);
	window_judge(b, now_ms);
	window_add(b, now_ms, v);

	tilt_break = b->tilted && now_ms - b->tilt_onset_ms >= b->cfg.tilt_ms;
	move_break = b->move_streak >= b->cfg.move_windows;
	switch (b->state) {
	case BREAKS_SITTING:
		if (tilt_break || move_break) {
			b->state = BREAKS_ON_BREAK;
			b->break_ms = now_ms;
			b->breaks++;
			return BREAKS_START;
		}
		if (now_ms - b->sitting_since >= b->cfg.interval_ms * (int64_t)(b->dues + 1)) {
			b->dues++;
			return BREAKS_DUE;
		}
		return BREAKS_NONE;
	case BREAKS_ON_BREAK:
		if (!b->tilted && b->move_streak == 0) {
			sit_from(b, now_ms);
			return BREAKS_END;
		}
		return BREAKS_NONE;
	case BREAKS_IDLE:
		break;
	}
	return BREAKS_NONE;
}

enum breaks_output breaks_lost(struct breaks *b, int64_t now_ms)
{
	tracking_reset(b);
	if (b->state != BREAKS_ON_BREAK)
		return BREAKS_NONE;
	sit_from(b, now_ms);
	/* the gap rule measures from here */
	b->last_ms = now_ms;
	return BREAKS_END;
}

int64_t breaks_sitting_ms(const struct breaks *b, int64_t now_ms)
{
	if (b->state != BREAKS_SITTING || now_ms - b->last_ms >= b->cfg.gap_ms)
		return 0;
	return now_ms > b->sitting_since ? now_ms - b->sitting_since : 0;
}
