/*
 * microbit.h - codec for the BBC micro:bit Accelerometer Period
 * characteristic (uint16 LE, milliseconds; see "Accelerometer Period" in
 * spine-sensor-profile.md): decode what the device reports, encode what
 * spinewatch writes, and predict the period a micro:bit V1 picks.
 *
 * This file owns only the Accelerometer Period; the Accelerometer Data
 * decoder (microbit_accel_decode) and the service UUIDs stay in
 * spine_profile.h. Plain functions over bytes, no I/O.
 */
#ifndef SW_MICROBIT_H
#define SW_MICROBIT_H

#include <stddef.h>
#include <stdint.h>

#include "spine_profile.h"

#define MICROBIT_ACCEL_PERIOD_UUID "e95dfb24-251d-470a-a062-fa1922dfa9a8"
#define MICROBIT_ACCEL_PERIOD_LEN  2

/*
 * Decodes the period the device reports (read after a write: what it chose).
 * Exactly 2 bytes, else SPINE_ERR_LENGTH (also for buf NULL). Every value is
 * accepted: a micro:bit V2 reports 0 for its fastest rate.
 */
enum spine_err microbit_period_decode(const uint8_t *buf, size_t len,
				      uint16_t *period_ms);

/*
 * Writes the 2-byte payload requesting period_ms, clamped to [1, 65535]
 * (0 would select a V2's ~0.6 ms rate; spinewatch never asks for it).
 * Returns the value encoded.
 */
uint16_t microbit_period_encode(unsigned period_ms,
				uint8_t out[MICROBIT_ACCEL_PERIOD_LEN]);

/*
 * The period a micro:bit V1 (MMA8653/FXOS8700 accelerometer, supported
 * periods 1, 2, 5, 10, 20, 80, 160, 640 ms) chooses for a request of ms:
 * the shortest supported period not below ms, or 640 above that, as the
 * DAL's lookup does (a request between two periods is rounded up, i.e. to
 * the slower rate). 0 -> 1.
 */
unsigned microbit_period_nearest(unsigned ms);

#endif
