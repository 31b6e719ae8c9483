/*
 * sensors.h - the sensor registry and the middle of the pipeline: takes
 * device states and raw notification bytes from the BlueZ client, decodes
 * them with the profile decoders, counts lost and rejected payloads, runs
 * each posture sensor's slouch detector, and puts the resulting events and
 * live posture samples into the event store.
 */
#ifndef SW_SENSORS_H
#define SW_SENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "bluez.h"
#include "detector.h"
#include "feed_json.h"
#include "store.h"

#define SENSORS_MAX 64
#define SENSORS_POSTURE_INTERVAL_MS 100   /* live posture: at most 10/s/sensor */

struct sensors;

struct sensors *sensors_new(struct store *store, const struct detector_config *cfg);
void sensors_free(struct sensors *s);

/* the BlueZ client's callbacks (user = struct sensors *) */
extern const struct bluez_callbacks sensors_bluez_callbacks;

void sensors_device_state(struct sensors *s, const struct bluez_device_info *info);
void sensors_notification(struct sensors *s, const char *address, enum bluez_char_role role,
			  const uint8_t *data, size_t len);

/*
 * Fill out[] with up to max sensors, for hello. The strings point into the
 * registry and stay valid until the next call into it.
 */
size_t sensors_snapshot(const struct sensors *s, struct feed_sensor_info *out, size_t max);

#endif
