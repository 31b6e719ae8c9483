/*
 * spine_profile.c - decoders for Spine Sensor Profile v1 payloads and the
 * micro:bit accelerometer payload (see spine-sensor-profile.md).
 */
#include "spine_profile.h"

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

static int16_t le16s(const uint8_t *p)
{
	return (int16_t)le16(p);
}

enum spine_err spine_posture_decode(const uint8_t *buf, size_t len,
				    struct spine_posture *out)
{
	if (!buf || len < SPINE_POSTURE_MIN_LEN)
		return SPINE_ERR_LENGTH;
	if (buf[0] != SPINE_PROFILE_VERSION)
		return SPINE_ERR_VERSION;
	out->seq = le16(buf + 1);
	out->x = le16s(buf + 3);
	out->y = le16s(buf + 5);
	out->z = le16s(buf + 7);
	return SPINE_OK;
}

enum spine_err spine_crack_decode(const uint8_t *buf, size_t len,
				  struct spine_crack *out)
{
	if (!buf || len < SPINE_CRACK_MIN_LEN)
		return SPINE_ERR_LENGTH;
	if (buf[0] != SPINE_PROFILE_VERSION)
		return SPINE_ERR_VERSION;
	if (buf[3] > SPINE_CRACK_GRIND)
		return SPINE_ERR_KIND;
	if (buf[4] > 100)
		return SPINE_ERR_INTENSITY;
	if (buf[7] == 0)
		return SPINE_ERR_COUNT;
	out->seq = le16(buf + 1);
	out->kind = (enum spine_crack_kind)buf[3];
	out->intensity = buf[4];
	out->duration_ms = le16(buf + 5);
	out->count = buf[7];
	out->age_ms = le16(buf + 8);
	return SPINE_OK;
}

enum spine_err microbit_accel_decode(const uint8_t *buf, size_t len,
				     struct spine_posture *out)
{
	if (!buf || len != MICROBIT_ACCEL_LEN)
		return SPINE_ERR_LENGTH;
	out->seq = 0;
	out->x = le16s(buf);
	out->y = le16s(buf + 2);
	out->z = le16s(buf + 4);
	return SPINE_OK;
}

const char *spine_crack_kind_name(enum spine_crack_kind kind)
{
	switch (kind) {
	case SPINE_CRACK_POP: return "pop";
	case SPINE_CRACK_CLICK: return "click";
	case SPINE_CRACK_GRIND: return "grind";
	}
	return NULL;
}

const char *spine_err_name(enum spine_err err)
{
	switch (err) {
	case SPINE_OK: return "ok";
	case SPINE_ERR_LENGTH: return "length";
	case SPINE_ERR_VERSION: return "version";
	case SPINE_ERR_KIND: return "kind";
	case SPINE_ERR_INTENSITY: return "intensity";
	case SPINE_ERR_COUNT: return "count";
	}
	return "unknown";
}

unsigned spine_seq_lost(uint16_t prev, uint16_t seq)
{
	uint16_t d = (uint16_t)(seq - prev - 1);
	return d < 32768 ? d : 0;
}
