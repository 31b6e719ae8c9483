/*
 * fuzz_thingy52.c - libFuzzer target for the Nordic Thingy:52 codecs
 * (protocol/thingy52.c): the Gravity Vector decoder (a sample it accepts is
 * within 16 g on every axis and in magnitude) and the Motion Configuration
 * decode / validate / encode / clamp / set-rate round trips
 * (protocol/thingy52-motion.md).
 */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "thingy52.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static float le_float(const uint8_t *p)
{
	uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
		     (uint32_t)p[3] << 24;
	float f;

	memcpy(&f, &u, sizeof(f));
	return f;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spine_posture p, untouched;
	struct thingy52_motion_config cfg, again;
	uint8_t out[THINGY52_MOTION_CONFIG_LEN];
	enum thingy52_err e;
	uint8_t *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);

	memset(&p, 0x5a, sizeof(p));
	untouched = p;
	e = thingy52_gravity_decode(buf, size, &p);
	CHECK(strcmp(thingy52_err_name(e), "unknown") != 0);
	if (size != THINGY52_GRAVITY_LEN) {
		CHECK(e == THINGY52_ERR_LENGTH);
	} else {
		int nonfinite = 0, i;

		for (i = 0; i < 3; i++)
			nonfinite |= !isfinite(le_float(buf + 4 * i));
		CHECK((e == THINGY52_ERR_NONFINITE) == !!nonfinite);
		CHECK(e == THINGY52_OK || e == THINGY52_ERR_NONFINITE || e == THINGY52_ERR_RANGE);
	}
	if (e == THINGY52_OK) {
		int64_t sq = (int64_t)p.x * p.x + (int64_t)p.y * p.y + (int64_t)p.z * p.z;

		CHECK(p.seq == 0);
		CHECK(abs(p.x) <= THINGY52_GRAVITY_MAX_MG && abs(p.y) <= THINGY52_GRAVITY_MAX_MG &&
		      abs(p.z) <= THINGY52_GRAVITY_MAX_MG);
		CHECK(sq <= (int64_t)THINGY52_GRAVITY_MAX_MG * THINGY52_GRAVITY_MAX_MG);
		/* rounded to the nearest milli-g */
		CHECK(fabs(p.x - le_float(buf) * 1000.0 / THINGY52_STANDARD_GRAVITY) <= 0.5 + 1e-6);
	} else {
		CHECK(!memcmp(&p, &untouched, sizeof(p)));   /* written only on OK */
	}

	e = thingy52_motion_config_decode(buf, size, &cfg);
	CHECK(strcmp(thingy52_err_name(e), "unknown") != 0);
	if (size != THINGY52_MOTION_CONFIG_LEN) {
		CHECK(e == THINGY52_ERR_LENGTH);
	} else {
		CHECK(e == thingy52_motion_config_validate(&cfg));
		if (e == THINGY52_OK) {
			/* a valid configuration encodes back to the same bytes */
			CHECK(thingy52_motion_config_encode(&cfg, out) == THINGY52_OK);
			CHECK(!memcmp(out, buf, sizeof(out)));
			again = cfg;
			CHECK(thingy52_motion_config_clamp(&again) == 0);
		} else {
			memset(out, 0x77, sizeof(out));
			CHECK(thingy52_motion_config_encode(&cfg, out) == e);
			CHECK(out[0] == 0x77 && out[8] == 0x77);   /* untouched on error */
			CHECK(thingy52_motion_config_clamp(&cfg) > 0);
		}
		/* clamped, it is valid; with the rate set from a period it still is */
		CHECK(thingy52_motion_config_validate(&cfg) == THINGY52_OK);
		{
			unsigned period = (unsigned)buf[0] | (unsigned)buf[1] << 8 |
					  (unsigned)buf[2] << 16 | (unsigned)buf[3] << 24;
			unsigned hz = thingy52_config_set_rate(&cfg, period);

			CHECK(hz >= THINGY52_RATE_FREQ_MIN && hz <= THINGY52_MOTION_FREQ_MAX);
			CHECK(cfg.motion_freq_hz == hz);
			CHECK(thingy52_motion_config_encode(&cfg, out) == THINGY52_OK);
			CHECK(thingy52_motion_config_decode(out, sizeof(out), &again) == THINGY52_OK);
			CHECK(again.step_interval_ms == cfg.step_interval_ms &&
			      again.temp_interval_ms == cfg.temp_interval_ms &&
			      again.magnet_interval_ms == cfg.magnet_interval_ms &&
			      again.motion_freq_hz == cfg.motion_freq_hz &&
			      again.wake_on_motion == cfg.wake_on_motion);
		}
	}
	free(buf);
	return 0;
}
