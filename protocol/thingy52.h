/*
 * thingy52.h - codecs for the parts of the Nordic Thingy:52 Motion Service
 * that spinewatch uses (see thingy52-motion.md): the Gravity Vector
 * notification (decoded into a struct spine_posture in milli-g) and the
 * Motion Configuration characteristic (decoded, validated, re-encoded, and
 * its processing frequency derived from a sample period). Plain functions
 * over bytes, no I/O, shared by the daemon and the unit tests.
 *
 * This file owns: the Thingy:52 UUIDs, payload lengths, the firmware's
 * accepted configuration ranges, enum thingy52_err and its names.
 */
#ifndef SW_THINGY52_H
#define SW_THINGY52_H

#include <stddef.h>
#include <stdint.h>

#include "spine_profile.h"

/* Base UUID ef68xxxx-9b35-4933-9b10-52ffa9740042; lowercase, as BlueZ spells them. */
#define THINGY52_CONFIG_SERVICE_UUID "ef680100-9b35-4933-9b10-52ffa9740042" /* advertised */
#define THINGY52_MOTION_SERVICE_UUID "ef680400-9b35-4933-9b10-52ffa9740042"
#define THINGY52_MOTION_CONFIG_UUID  "ef680401-9b35-4933-9b10-52ffa9740042"
#define THINGY52_GRAVITY_UUID        "ef68040a-9b35-4933-9b10-52ffa9740042"

#define THINGY52_GRAVITY_LEN        12 /* float32 x, y, z; exactly */
#define THINGY52_MOTION_CONFIG_LEN  9  /* u16 x4 + u8; exactly */

/* Standard gravity: m/s^2 per g. */
#define THINGY52_STANDARD_GRAVITY 9.80665
/* A gravity sample is rejected when an axis or the magnitude exceeds this (16 g). */
#define THINGY52_GRAVITY_MAX_MG   16000

/*
 * Ranges the Thingy:52 firmware (v2.x, ble_tms.c) accepts in a Motion
 * Configuration write; a write outside them fails with "write not permitted".
 */
#define THINGY52_STEP_INTERVAL_MIN     100  /* ms */
#define THINGY52_STEP_INTERVAL_MAX     5000
#define THINGY52_TEMP_INTERVAL_MIN     100  /* ms */
#define THINGY52_TEMP_INTERVAL_MAX     5000
#define THINGY52_MAGNET_INTERVAL_MIN   100  /* ms */
#define THINGY52_MAGNET_INTERVAL_MAX   5000
#define THINGY52_MOTION_FREQ_MIN       1    /* Hz */
#define THINGY52_MOTION_FREQ_MAX       200
#define THINGY52_WAKE_ON_MOTION_MAX    1
/*
 * Lowest frequency thingy52_config_set_rate() asks for: Nordic's published
 * documentation and client libraries allow 5-200 Hz, a subset of what the
 * firmware accepts, so spinewatch stays within both.
 */
#define THINGY52_RATE_FREQ_MIN         5

enum thingy52_err {
	THINGY52_OK = 0,
	THINGY52_ERR_LENGTH,          /* "length": not exactly the expected size */
	THINGY52_ERR_NONFINITE,       /* "nonfinite": a NaN or infinite float */
	THINGY52_ERR_RANGE,           /* "range": an axis or |g| above 16 g */
	THINGY52_ERR_STEP_INTERVAL,   /* "step_interval" */
	THINGY52_ERR_TEMP_INTERVAL,   /* "temp_interval" */
	THINGY52_ERR_MAGNET_INTERVAL, /* "magnet_interval" */
	THINGY52_ERR_FREQUENCY,       /* "frequency" */
	THINGY52_ERR_WAKE_ON_MOTION,  /* "wake_on_motion" */
};

/* Motion Configuration (ef680401), fields in wire order. */
struct thingy52_motion_config {
	uint16_t step_interval_ms;        /* step counter interval */
	uint16_t temp_interval_ms;        /* temperature compensation interval */
	uint16_t magnet_interval_ms;      /* magnetometer compensation interval */
	uint16_t motion_freq_hz;          /* motion processing unit frequency */
	uint8_t wake_on_motion;           /* 0 or 1 */
};

/*
 * Gravity Vector (ef68040a): three float32 LE in m/s^2 -> milli-g, rounded
 * to nearest; out->seq is 0 (no counter). Errors, checked in this order:
 * LENGTH (len != 12 or buf NULL), NONFINITE, RANGE. *out is written only on
 * THINGY52_OK.
 */
enum thingy52_err thingy52_gravity_decode(const uint8_t *buf, size_t len,
					  struct spine_posture *out);

/*
 * Motion Configuration, exactly 9 bytes. Returns LENGTH, or the first field
 * outside the firmware's range (wire order), or OK. *out is filled whenever
 * the length is right, even on a range error, so a caller may repair it.
 */
enum thingy52_err thingy52_motion_config_decode(const uint8_t *buf, size_t len,
						struct thingy52_motion_config *out);
/* The first field outside the firmware's range (wire order), or OK. */
enum thingy52_err thingy52_motion_config_validate(const struct thingy52_motion_config *cfg);
/* Validates, then writes exactly THINGY52_MOTION_CONFIG_LEN bytes; out untouched on error. */
enum thingy52_err thingy52_motion_config_encode(const struct thingy52_motion_config *cfg,
						uint8_t out[THINGY52_MOTION_CONFIG_LEN]);
/* The firmware's factory default: 1000 ms, 500 ms, 500 ms, 10 Hz, wake on motion. */
void thingy52_motion_config_default(struct thingy52_motion_config *cfg);

/*
 * Sets cfg->motion_freq_hz for one sample every period_ms:
 * round(1000 / period_ms) clamped to [THINGY52_RATE_FREQ_MIN,
 * THINGY52_MOTION_FREQ_MAX] (period 0 means as fast as possible). The other
 * fields are left alone. Returns the frequency set.
 */
/*
 * Pull every field into the firmware's accepted range (a device may report
 * a value it would refuse to be written back). Returns how many changed.
 */
unsigned thingy52_motion_config_clamp(struct thingy52_motion_config *cfg);

unsigned thingy52_config_set_rate(struct thingy52_motion_config *cfg, unsigned period_ms);

/* "ok", "length", "nonfinite", ... as used in the spec's vectors; "unknown" otherwise */
const char *thingy52_err_name(enum thingy52_err err);

#endif
