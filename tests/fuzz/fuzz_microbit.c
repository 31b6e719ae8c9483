/*
 * fuzz_microbit.c - libFuzzer target for the BBC micro:bit codecs: the
 * Accelerometer Data decoder (protocol/spine_profile.c) and the
 * Accelerometer Period codec (protocol/microbit.c), with a round trip of the
 * period spinewatch writes and the V1 period table's rule.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "microbit.h"
#include "spine_profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static bool is_v1_period(unsigned ms)
{
	static const unsigned v1[] = { 1, 2, 5, 10, 20, 80, 160, 640 };
	size_t i;

	for (i = 0; i < sizeof(v1) / sizeof(v1[0]); i++)
		if (v1[i] == ms)
			return true;
	return false;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spine_posture p;
	uint16_t period = 0xbeef, back;
	uint8_t out[MICROBIT_ACCEL_PERIOD_LEN];
	enum spine_err e;
	uint8_t *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);

	e = microbit_accel_decode(buf, size, &p);
	CHECK(e == (size == MICROBIT_ACCEL_LEN ? SPINE_OK : SPINE_ERR_LENGTH));
	if (e == SPINE_OK) {
		CHECK(p.seq == 0);
		CHECK(p.x == (int16_t)(buf[0] | buf[1] << 8));
		CHECK(p.y == (int16_t)(buf[2] | buf[3] << 8));
		CHECK(p.z == (int16_t)(buf[4] | buf[5] << 8));
	}

	e = microbit_period_decode(buf, size, &period);
	CHECK(e == (size == MICROBIT_ACCEL_PERIOD_LEN ? SPINE_OK : SPINE_ERR_LENGTH));
	if (e == SPINE_OK) {
		/* every value is accepted, and encoding it gives the same bytes back
		 * (but 0, which spinewatch never asks for: it becomes 1) */
		CHECK(period == (uint16_t)(buf[0] | buf[1] << 8));
		CHECK(microbit_period_encode(period, out) == (period ? period : 1));
		if (period)
			CHECK(!memcmp(out, buf, sizeof(out)));
	} else {
		CHECK(period == 0xbeef);   /* untouched on error */
	}

	/* a configured period (any unsigned): clamped to [1, 65535], decodes back */
	if (size >= 4) {
		unsigned ms = (unsigned)buf[0] | (unsigned)buf[1] << 8 | (unsigned)buf[2] << 16 |
			      (unsigned)buf[3] << 24;
		uint16_t v = microbit_period_encode(ms, out);
		unsigned chosen = microbit_period_nearest(ms);

		CHECK(v >= 1);
		CHECK(v == (ms == 0 ? 1 : ms > 65535 ? 65535 : ms));
		CHECK(microbit_period_decode(out, sizeof(out), &back) == SPINE_OK && back == v);
		/* a V1 picks a period of its table, not below the request unless above 640 */
		CHECK(is_v1_period(chosen));
		CHECK(chosen >= ms || chosen == 640);
		CHECK(microbit_period_nearest(chosen) == chosen);
	}
	free(buf);
	return 0;
}
