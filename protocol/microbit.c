/*
 * microbit.c - micro:bit Accelerometer Period codec (see microbit.h and the
 * "Accelerometer Period" section of spine-sensor-profile.md).
 */
#include "microbit.h"

/* micro:bit V1 accelerometer periods in ms, ascending */
static const unsigned v1_periods[] = { 1, 2, 5, 10, 20, 80, 160, 640 };

enum spine_err microbit_period_decode(const uint8_t *buf, size_t len,
				      uint16_t *period_ms)
{
	if (!buf || len != MICROBIT_ACCEL_PERIOD_LEN)
		return SPINE_ERR_LENGTH;
	*period_ms = (uint16_t)(buf[0] | (buf[1] << 8));
	return SPINE_OK;
}

uint16_t microbit_period_encode(unsigned period_ms,
				uint8_t out[MICROBIT_ACCEL_PERIOD_LEN])
{
	uint16_t v = period_ms == 0 ? 1 : period_ms > UINT16_MAX ? UINT16_MAX
					      : (uint16_t)period_ms;

	out[0] = (uint8_t)(v & 0xff);
	out[1] = (uint8_t)(v >> 8);
	return v;
}

unsigned microbit_period_nearest(unsigned ms)
{
	size_t n = sizeof(v1_periods) / sizeof(v1_periods[0]);

	for (size_t i = 0; i < n; i++)
		if (v1_periods[i] >= ms)
			return v1_periods[i];
	return v1_periods[n - 1];
}
