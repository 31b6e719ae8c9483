/*
 * spine_profile.h - decoders for the GATT payloads spinewatch reads: its own
 * Spine Sensor Profile (Posture, Crack; see spine-sensor-profile.md) and the
 * BBC micro:bit Accelerometer Data characteristic. Plain functions over
 * bytes, no I/O, shared by the daemon, the unit tests and the fuzzers.
 */
#ifndef SPINE_PROFILE_H
#define SPINE_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#define SPINE_SERVICE_UUID   "5370696e-0100-4177-a174-636857617463"
#define SPINE_POSTURE_UUID   "5370696e-0101-4177-a174-636857617463"
#define SPINE_CRACK_UUID     "5370696e-0102-4177-a174-636857617463"
#define MICROBIT_ACCEL_SERVICE_UUID "e95d0753-251d-470a-a062-fa1922dfa9a8"
#define MICROBIT_ACCEL_DATA_UUID    "e95dca4b-251d-470a-a062-fa1922dfa9a8"

#define SPINE_PROFILE_VERSION 1
#define SPINE_POSTURE_MIN_LEN 9
#define SPINE_CRACK_MIN_LEN   10
#define MICROBIT_ACCEL_LEN    6

enum spine_err {
	SPINE_OK = 0,
	SPINE_ERR_LENGTH,
	SPINE_ERR_VERSION,
	SPINE_ERR_KIND,
	SPINE_ERR_INTENSITY,
	SPINE_ERR_COUNT,
};

enum spine_crack_kind {
	SPINE_CRACK_POP = 0,
	SPINE_CRACK_CLICK = 1,
	SPINE_CRACK_GRIND = 2,
};

/* A gravity sample in milli-g (1000 = 1 g), sensor axes. */
struct spine_posture {
	uint16_t seq;      /* 0 for the micro:bit, which has no counter */
	int16_t x, y, z;
};

struct spine_crack {
	uint16_t seq;
	enum spine_crack_kind kind;
	uint8_t intensity;    /* 0-100 */
	uint16_t duration_ms;
	uint8_t count;        /* pops in the burst, >= 1 */
	uint16_t age_ms;      /* onset to notification */
};

enum spine_err spine_posture_decode(const uint8_t *buf, size_t len,
				    struct spine_posture *out);
enum spine_err spine_crack_decode(const uint8_t *buf, size_t len,
				  struct spine_crack *out);
enum spine_err microbit_accel_decode(const uint8_t *buf, size_t len,
				     struct spine_posture *out);

/* "pop", "click", "grind"; NULL for anything else */
const char *spine_crack_kind_name(enum spine_crack_kind kind);
/* "length", "version", ... as used by the spec's test vectors; "ok" for SPINE_OK */
const char *spine_err_name(enum spine_err err);

/*
 * Notifications lost between two sequence counters, per the spec:
 * (seq - prev - 1) mod 65536 if below 32768, else 0 (duplicate/restart).
 */
unsigned spine_seq_lost(uint16_t prev, uint16_t seq);

#endif
