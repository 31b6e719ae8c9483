/*
 * calibration.c - explicit upright-baseline capture from still samples, and
 * the baseline's stored text line (see calibration.h). No I/O, no clock.
 */
#include "calibration.h"

#include <math.h>
#include <string.h>

static const double rad_to_deg = 180.0 / 3.14159265358979323846;

void calibration_config_default(struct calibration_config *cfg)
{
	cfg->still_ms = CALIBRATION_DEFAULT_STILL_MS;
	cfg->tolerance_deg = CALIBRATION_DEFAULT_TOLERANCE_DEG;
	cfg->min_mg = CALIBRATION_DEFAULT_MIN_MG;
	cfg->max_mg = CALIBRATION_DEFAULT_MAX_MG;
	cfg->max_gap_ms = CALIBRATION_DEFAULT_MAX_GAP_MS;
	cfg->timeout_ms = CALIBRATION_DEFAULT_TIMEOUT_MS;
}

const char *calibration_config_check(const struct calibration_config *cfg)
{
	if (!cfg)
		return "no calibration configuration";
	if (cfg->still_ms < 500 || cfg->still_ms > 30000)
		return "calibration still time must be between 0.5 and 30 seconds";
	if (!isfinite(cfg->tolerance_deg) || cfg->tolerance_deg < 0.5 ||
	    cfg->tolerance_deg > 20.0)
		return "calibration tolerance must be between 0.5 and 20 degrees";
	if (!isfinite(cfg->min_mg) || cfg->min_mg < 200.0 || cfg->min_mg > 1000.0)
		return "calibration minimum magnitude must be between 200 and 1000 mg";
	if (!isfinite(cfg->max_mg) || cfg->max_mg < 1000.0 || cfg->max_mg > 4000.0)
		return "calibration maximum magnitude must be between 1000 and 4000 mg";
	if (cfg->max_gap_ms < 10 || cfg->max_gap_ms > cfg->still_ms)
		return "calibration maximum sample gap must be between 10 ms and the still time";
	if (cfg->timeout_ms <= cfg->still_ms || cfg->timeout_ms > 300000)
		return "calibration timeout must be above the still time and at most 5 minutes";
	return NULL;
}

const char *calibration_reason_name(enum calibration_reason reason)
{
	switch (reason) {
	case CALIBRATION_OK: return "ok";
	case CALIBRATION_MOVING: return "moving";
	case CALIBRATION_NO_SAMPLES: return "no samples";
	case CALIBRATION_NOT_GRAVITY: return "not a gravity vector";
	case CALIBRATION_TIMED_OUT: return "timed out";
	}
	return "unknown";
}

void calibration_init(struct calibration *c, const struct calibration_config *cfg)
{
	memset(c, 0, sizeof(*c));
	if (cfg)
		c->cfg = *cfg;
	else
		calibration_config_default(&c->cfg);
	c->status = CALIBRATION_IDLE;
}

static void window_clear(struct calibration *c)
{
	c->n = 0;
	c->sum[0] = c->sum[1] = c->sum[2] = 0.0;
}

static void window_add(struct calibration *c, int64_t now_ms, const double u[3])
{
	if (c->n == 0)
		c->window_ms = now_ms;
	for (int i = 0; i < 3; i++)
		c->sum[i] += u[i];
	c->n++;
	c->last_ms = now_ms;
}

void calibration_start(struct calibration *c, int64_t now_ms)
{
	c->status = CALIBRATION_RUNNING;
	c->reason = CALIBRATION_OK;
	c->start_ms = now_ms;
	c->any = false;
	window_clear(c);
	c->baseline[0] = c->baseline[1] = c->baseline[2] = 0.0;
}

int64_t calibration_deadline(const struct calibration *c)
{
	if (c->status != CALIBRATION_RUNNING)
		return INT64_MAX;
	return c->start_ms + c->cfg.timeout_ms;
}

enum calibration_status calibration_tick(struct calibration *c, int64_t now_ms)
{
	if (c->status != CALIBRATION_RUNNING || now_ms < calibration_deadline(c))
		return c->status;
	c->status = CALIBRATION_FAILED;
	if (c->reason == CALIBRATION_OK)
		c->reason = c->any ? CALIBRATION_TIMED_OUT : CALIBRATION_NO_SAMPLES;
	window_clear(c);
	return c->status;
}

/* Angle in degrees between unit vector u and the window's mean direction. */
static double angle_from_mean(const struct calibration *c, const double u[3])
{
	double n = sqrt(c->sum[0] * c->sum[0] + c->sum[1] * c->sum[1] +
			c->sum[2] * c->sum[2]);
	double dot;

	if (!(n > 0.0))
		return 180.0;
	dot = (u[0] * c->sum[0] + u[1] * c->sum[1] + u[2] * c->sum[2]) / n;
	if (dot > 1.0)
		dot = 1.0;
	else if (dot < -1.0)
		dot = -1.0;
	return acos(dot) * rad_to_deg;
}

enum calibration_status calibration_feed(struct calibration *c, int64_t now_ms,
					 double x, double y, double z)
{
	double mag = sqrt(x * x + y * y + z * z);
	double u[3], n;

	if (c->status != CALIBRATION_RUNNING)
		return c->status;
	if (calibration_tick(c, now_ms) != CALIBRATION_RUNNING)
		return c->status;
	c->any = true;
	/* !(a <= b) also catches NaN */
	if (!(mag >= c->cfg.min_mg && mag <= c->cfg.max_mg)) {
		c->reason = CALIBRATION_NOT_GRAVITY;
		window_clear(c);
		return c->status;
	}
	u[0] = x / mag;
	u[1] = y / mag;
	u[2] = z / mag;
	if (c->n > 0 && now_ms - c->last_ms > c->cfg.max_gap_ms)
		window_clear(c);
	if (c->n > 0 && angle_from_mean(c, u) > c->cfg.tolerance_deg) {
		c->reason = CALIBRATION_MOVING;
		window_clear(c);
	}
	window_add(c, now_ms, u);
	if (now_ms - c->window_ms < c->cfg.still_ms)
		return c->status;
	n = sqrt(c->sum[0] * c->sum[0] + c->sum[1] * c->sum[1] + c->sum[2] * c->sum[2]);
	for (int i = 0; i < 3; i++)
		c->baseline[i] = c->sum[i] / n;
	c->status = CALIBRATION_DONE;
	c->reason = CALIBRATION_OK;
	return c->status;
}

/* ---- the stored line ---- */

static bool unit_ok(const double v[3])
{
	double n;

	if (!isfinite(v[0]) || !isfinite(v[1]) || !isfinite(v[2]))
		return false;
	n = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
	return fabs(n - 1.0) <= CALIBRATION_UNIT_TOLERANCE;
}

/* Appends v with 6 decimals at *p (room checked by the caller). */
static char *put_fixed6(char *p, double v)
{
	long long m = llround(fabs(v) * 1e6);
	char digits[24];
	int nd = 0;

	if (m != 0 && v < 0)
		*p++ = '-';
	do {
		digits[nd++] = (char)('0' + m % 10);
		m /= 10;
	} while (m > 0 || nd < 7);
	while (nd > 6)
		*p++ = digits[--nd];
	*p++ = '.';
	while (nd > 0)
		*p++ = digits[--nd];
	return p;
}

size_t calibration_format(const double unit[3], char *buf, size_t len)
{
	char tmp[CALIBRATION_LINE_MAX], *p = tmp;
	size_t n;

	if (!unit || !unit_ok(unit))
		return 0;
	*p++ = 'v';
	*p++ = '1';
	for (int i = 0; i < 3; i++) {
		*p++ = ' ';
		p = put_fixed6(p, unit[i]);
	}
	*p++ = '\n';
	n = (size_t)(p - tmp);
	if (!buf || len < n + 1)
		return 0;
	memcpy(buf, tmp, n);
	buf[n] = '\0';
	return n;
}

/* Parses [-]digits[.digits] at *pp (at most 3 integer and 9 fraction digits). */
static bool get_decimal(const char **pp, double *out)
{
	const char *p = *pp;
	bool neg = false;
	double v = 0.0, scale = 0.1;
	int ni = 0, nf = 0;

	if (*p == '-') {
		neg = true;
		p++;
	}
	while (*p >= '0' && *p <= '9') {
		if (++ni > 3)
			return false;
		v = v * 10.0 + (*p++ - '0');
	}
	if (ni == 0)
		return false;
	if (*p == '.') {
		p++;
		while (*p >= '0' && *p <= '9') {
			if (++nf > 9)
				return false;
			v += (*p++ - '0') * scale;
			scale /= 10.0;
		}
		if (nf == 0)
			return false;
	}
	*out = neg ? -v : v;
	*pp = p;
	return true;
}

/* A character that continues a malformed number ("1e0", "0x1", "0,5"). */
static bool numberish(char ch)
{
	return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
	       (ch >= 'A' && ch <= 'Z') || ch == '.' || ch == ',' || ch == '+' ||
	       ch == '-';
}

const char *calibration_parse(const char *line, double unit[3])
{
	const char *p = line;
	double v[3], n;

	if (!line)
		return "no calibration line";
	if (strncmp(p, "v1 ", 3) != 0)
		return "not a version 1 calibration line (\"v1 x y z\")";
	p += 3;
	for (int i = 0; i < 3; i++) {
		if (!get_decimal(&p, &v[i]) || numberish(*p))
			return "calibration component is not a plain decimal number";
		if (i == 2)
			break;
		if (*p != ' ')
			return "calibration line needs three components separated by single spaces";
		p++;
	}
	if (*p == '\n')
		p++;
	if (*p != '\0')
		return "trailing characters after the calibration vector";
	if (!unit_ok(v))
		return "calibration vector is not a unit vector";
	n = sqrt(v[0] * v[0] + v[1] * v[1] + v[2] * v[2]);
	for (int i = 0; i < 3; i++)
		unit[i] = v[i] / n;
	return NULL;
}
