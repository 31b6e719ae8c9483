/*
 * thingy52.c - Nordic Thingy:52 Motion Service codecs: Gravity Vector
 * (float32 m/s^2 -> milli-g, with rejection of NaN/inf and of values beyond
 * 16 g) and Motion Configuration (decode, validate, encode, set the rate).
 * See thingy52-motion.md; tests/unit/test_thingy52.c checks its vectors.
 */
#include "thingy52.h"

#include <float.h>
#include <math.h>
#include <string.h>

/* The wire format is IEEE 754 binary32; so must our float be. */
_Static_assert(sizeof(float) == 4 && FLT_MANT_DIG == 24 && FLT_MAX_EXP == 128,
	       "float is not IEEE 754 binary32");

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v & 0xff);
	p[1] = (uint8_t)(v >> 8);
}

static float le_float(const uint8_t *p)
{
	uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		     (uint32_t)p[3] << 24;
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

/* m/s^2 -> milli-g, rounded; RANGE beyond THINGY52_GRAVITY_MAX_MG. */
static enum thingy52_err to_mg(float ms2, int16_t *mg)
{
	double v = (double)ms2 * 1000.0 / THINGY52_STANDARD_GRAVITY;
	long r;

	if (!isfinite(ms2))
		return THINGY52_ERR_NONFINITE;
	/* pre-check keeps lround() in range; the exact test is on the rounded value */
	if (fabs(v) > THINGY52_GRAVITY_MAX_MG + 1.0)
		return THINGY52_ERR_RANGE;
	r = lround(v);
	if (r > THINGY52_GRAVITY_MAX_MG || r < -THINGY52_GRAVITY_MAX_MG)
		return THINGY52_ERR_RANGE;
	*mg = (int16_t)r;
	return THINGY52_OK;
}

enum thingy52_err thingy52_gravity_decode(const uint8_t *buf, size_t len,
					  struct spine_posture *out)
{
	float f[3];
	int16_t mg[3];
	int64_t sq = 0;
	const int64_t max = THINGY52_GRAVITY_MAX_MG;

	if (!buf || len != THINGY52_GRAVITY_LEN)
		return THINGY52_ERR_LENGTH;
	for (int i = 0; i < 3; i++)
		f[i] = le_float(buf + 4 * i);
	/* every NaN/inf is reported as such, even if another axis is out of range */
	for (int i = 0; i < 3; i++)
		if (!isfinite(f[i]))
			return THINGY52_ERR_NONFINITE;
	for (int i = 0; i < 3; i++) {
		enum thingy52_err err = to_mg(f[i], &mg[i]);

		if (err != THINGY52_OK)
			return err;
		sq += (int64_t)mg[i] * mg[i];
	}
	if (sq > max * max)
		return THINGY52_ERR_RANGE;
	out->seq = 0;
	out->x = mg[0];
	out->y = mg[1];
	out->z = mg[2];
	return THINGY52_OK;
}

enum thingy52_err thingy52_motion_config_validate(const struct thingy52_motion_config *cfg)
{
	if (cfg->step_interval_ms < THINGY52_STEP_INTERVAL_MIN ||
	    cfg->step_interval_ms > THINGY52_STEP_INTERVAL_MAX)
		return THINGY52_ERR_STEP_INTERVAL;
	if (cfg->temp_interval_ms < THINGY52_TEMP_INTERVAL_MIN ||
	    cfg->temp_interval_ms > THINGY52_TEMP_INTERVAL_MAX)
		return THINGY52_ERR_TEMP_INTERVAL;
	if (cfg->magnet_interval_ms < THINGY52_MAGNET_INTERVAL_MIN ||
	    cfg->magnet_interval_ms > THINGY52_MAGNET_INTERVAL_MAX)
		return THINGY52_ERR_MAGNET_INTERVAL;
	if (cfg->motion_freq_hz < THINGY52_MOTION_FREQ_MIN ||
	    cfg->motion_freq_hz > THINGY52_MOTION_FREQ_MAX)
		return THINGY52_ERR_FREQUENCY;
	if (cfg->wake_on_motion > THINGY52_WAKE_ON_MOTION_MAX)
		return THINGY52_ERR_WAKE_ON_MOTION;
	return THINGY52_OK;
}

static uint16_t clamp16(uint16_t v, uint16_t lo, uint16_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

unsigned thingy52_motion_config_clamp(struct thingy52_motion_config *cfg)
{
	struct thingy52_motion_config was = *cfg;
	unsigned changed = 0;

	cfg->step_interval_ms = clamp16(cfg->step_interval_ms, THINGY52_STEP_INTERVAL_MIN,
					THINGY52_STEP_INTERVAL_MAX);
	cfg->temp_interval_ms = clamp16(cfg->temp_interval_ms, THINGY52_TEMP_INTERVAL_MIN,
					THINGY52_TEMP_INTERVAL_MAX);
	cfg->magnet_interval_ms = clamp16(cfg->magnet_interval_ms, THINGY52_MAGNET_INTERVAL_MIN,
					  THINGY52_MAGNET_INTERVAL_MAX);
	cfg->motion_freq_hz = clamp16(cfg->motion_freq_hz, THINGY52_MOTION_FREQ_MIN,
				      THINGY52_MOTION_FREQ_MAX);
	if (cfg->wake_on_motion > THINGY52_WAKE_ON_MOTION_MAX)
		cfg->wake_on_motion = THINGY52_WAKE_ON_MOTION_MAX;
	changed += was.step_interval_ms != cfg->step_interval_ms;
	changed += was.temp_interval_ms != cfg->temp_interval_ms;
	changed += was.magnet_interval_ms != cfg->magnet_interval_ms;
	changed += was.motion_freq_hz != cfg->motion_freq_hz;
	changed += was.wake_on_motion != cfg->wake_on_motion;
	return changed;
}

enum thingy52_err thingy52_motion_config_decode(const uint8_t *buf, size_t len,
						struct thingy52_motion_config *out)
{
	if (!buf || len != THINGY52_MOTION_CONFIG_LEN)
		return THINGY52_ERR_LENGTH;
	out->step_interval_ms = le16(buf);
	out->temp_interval_ms = le16(buf + 2);
	out->magnet_interval_ms = le16(buf + 4);
	out->motion_freq_hz = le16(buf + 6);
	out->wake_on_motion = buf[8];
	return thingy52_motion_config_validate(out);
}

enum thingy52_err thingy52_motion_config_encode(const struct thingy52_motion_config *cfg,
						uint8_t out[THINGY52_MOTION_CONFIG_LEN])
{
	enum thingy52_err err = thingy52_motion_config_validate(cfg);

	if (err != THINGY52_OK)
		return err;
	put_le16(out, cfg->step_interval_ms);
	put_le16(out + 2, cfg->temp_interval_ms);
	put_le16(out + 4, cfg->magnet_interval_ms);
	put_le16(out + 6, cfg->motion_freq_hz);
	out[8] = cfg->wake_on_motion;
	return THINGY52_OK;
}

void thingy52_motion_config_default(struct thingy52_motion_config *cfg)
{
	cfg->step_interval_ms = 1000;
	cfg->temp_interval_ms = 500;
	cfg->magnet_interval_ms = 500;
	cfg->motion_freq_hz = 10;
	cfg->wake_on_motion = 1;
}

unsigned thingy52_config_set_rate(struct thingy52_motion_config *cfg, unsigned period_ms)
{
	unsigned hz;

	if (period_ms == 0)
		hz = THINGY52_MOTION_FREQ_MAX;
	else    /* round(1000 / period), without overflow for any unsigned period */
		hz = 1000u / period_ms + (1000u % period_ms >= period_ms - period_ms / 2);
	if (hz < THINGY52_RATE_FREQ_MIN)
		hz = THINGY52_RATE_FREQ_MIN;
	if (hz > THINGY52_MOTION_FREQ_MAX)
		hz = THINGY52_MOTION_FREQ_MAX;
	cfg->motion_freq_hz = (uint16_t)hz;
	return hz;
}

const char *thingy52_err_name(enum thingy52_err err)
{
	switch (err) {
	case THINGY52_OK: return "ok";
	case THINGY52_ERR_LENGTH: return "length";
	case THINGY52_ERR_NONFINITE: return "nonfinite";
	case THINGY52_ERR_RANGE: return "range";
	case THINGY52_ERR_STEP_INTERVAL: return "step_interval";
	case THINGY52_ERR_TEMP_INTERVAL: return "temp_interval";
	case THINGY52_ERR_MAGNET_INTERVAL: return "magnet_interval";
	case THINGY52_ERR_FREQUENCY: return "frequency";
	case THINGY52_ERR_WAKE_ON_MOTION: return "wake_on_motion";
	}
	return "unknown";
}
