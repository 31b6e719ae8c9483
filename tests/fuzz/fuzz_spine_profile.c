/*
 * fuzz_spine_profile.c - libFuzzer target for the Spine Sensor Profile
 * decoders (protocol/spine_profile.c): every input goes through the Posture
 * and the Crack decoder, and what they accept or refuse is checked against
 * the payload layout of protocol/spine-sensor-profile.md.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "spine_profile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (p[1] << 8));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct spine_posture p;
	struct spine_crack c;
	enum spine_err e;
	/* a private copy of exactly size bytes, so ASan sees any over-read */
	uint8_t *buf = malloc(size ? size : 1);

	if (!buf)
		return 0;
	if (size)
		memcpy(buf, data, size);

	memset(&p, 0xa5, sizeof(p));
	e = spine_posture_decode(buf, size, &p);
	CHECK(strcmp(spine_err_name(e), "unknown") != 0);
	if (size < SPINE_POSTURE_MIN_LEN)
		CHECK(e == SPINE_ERR_LENGTH);
	else if (buf[0] != SPINE_PROFILE_VERSION)
		CHECK(e == SPINE_ERR_VERSION);
	else {
		CHECK(e == SPINE_OK);
		CHECK(p.seq == le16(buf + 1));
		CHECK(p.x == (int16_t)le16(buf + 3));
		CHECK(p.y == (int16_t)le16(buf + 5));
		CHECK(p.z == (int16_t)le16(buf + 7));
	}

	e = spine_crack_decode(buf, size, &c);
	CHECK(strcmp(spine_err_name(e), "unknown") != 0);
	if (size < SPINE_CRACK_MIN_LEN)
		CHECK(e == SPINE_ERR_LENGTH);
	else if (buf[0] != SPINE_PROFILE_VERSION)
		CHECK(e == SPINE_ERR_VERSION);
	if (e == SPINE_OK) {
		/* the documented ranges: kind 0-2, intensity 0-100, count 1-255 */
		CHECK(spine_crack_kind_name(c.kind) != NULL);
		CHECK(c.intensity <= 100);
		CHECK(c.count >= 1);
		CHECK(c.seq == le16(buf + 1));
		CHECK(c.duration_ms == le16(buf + 5));
		CHECK(c.age_ms == le16(buf + 8));
	}

	/* the sequence rule: lost counts are below 32768, a successor loses none */
	if (size >= 4) {
		uint16_t prev = le16(buf), seq = le16(buf + 2);

		CHECK(spine_seq_lost(prev, seq) < 32768);
		CHECK(spine_seq_lost(prev, (uint16_t)(prev + 1)) == 0);
		CHECK(spine_seq_lost(prev, prev) == 0);
	}
	free(buf);
	return 0;
}
