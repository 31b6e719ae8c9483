/*
 * sensors.h - the sensor registry and the middle of the pipeline: takes
 * device states and raw notification bytes from the BlueZ client, decodes
 * them with the profile decoders, counts received, lost and rejected
 * payloads, publishes sensor states and health, runs
 * each posture sensor's slouch detector, and puts the resulting events and
 * live posture samples into the event store.
 */
#ifndef SW_SENSORS_H
#define SW_SENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "alert_center.h"
#include "bluez.h"
#include "breaks.h"
#include "calibration.h"
#include "cracks.h"
#include "detector.h"
#include "feed_json.h"
#include "store.h"

#define SENSORS_MAX 64
#define SENSORS_POSTURE_INTERVAL_MS 500   /* live posture: at most 2/s/sensor */
#define SENSORS_STATUS_INTERVAL_MS 1000   /* status updates: at most 1/s/sensor */
#define SENSORS_CLOCK_STEP_MS 2000        /* wall clock off by more: it was set */
#define SENSORS_SEQ_BACKWARDS 1024        /* a counter this far back is stale */

struct sensors;

struct sensors *sensors_new(struct store *store, const struct detector_config *cfg);
/* The loop runs the status-update timer; without one, updates go out only
 * when something changes a second or more after the last. */
void sensors_attach_loop(struct sensors *s, struct loop *loop);
/* New detector settings at run time: every sensor keeps its baseline and
 * state, and is judged by the new thresholds from its next sample. */
void sensors_set_detector_config(struct sensors *s, const struct detector_config *cfg);
void sensors_set_breaks_config(struct sensors *s, const struct breaks_config *cfg);
/* merge_ms 0: every crack report is a crack event at once, and no patterns. */
void sensors_set_cracks_config(struct sensors *s, const struct cracks_config *cfg);
struct stats_keeper;
/* Crack episodes, slouches, breaks and sitting time go into the day's record. */
void sensors_attach_stats(struct sensors *s, struct stats_keeper *k);
/* Slouches, breaks, link state and battery go to the alert center too. */
void sensors_attach_alerts(struct sensors *s, struct alert_center *ac);
/* Where calibrations are kept (history.h); before sensors appear. */
struct history;
void sensors_set_history(struct sensors *s, struct history *h);

/*
 * A client asks to capture a posture sensor's upright baseline: true if it
 * started (the result comes as a "calibration" event), else false with a
 * stable code and a message (websocket-feed.md, reply codes).
 */
bool sensors_calibrate(struct sensors *s, const char *address, const char **code,
		       const char **message);
void sensors_free(struct sensors *s);

/* the BlueZ client's callbacks (user = struct sensors *) */
extern const struct bluez_callbacks sensors_bluez_callbacks;

void sensors_device_state(struct sensors *s, const struct bluez_device_info *info);
void sensors_device_health(struct sensors *s, const struct bluez_device_info *info);
void sensors_notification(struct sensors *s, const char *address, enum sw_char_role role,
			  const uint8_t *data, size_t len);

/*
 * Fill out[] with up to max sensors, for hello. The strings point into the
 * registry and stay valid until the next call into it.
 */
size_t sensors_snapshot(const struct sensors *s, struct feed_sensor_info *out, size_t max);

#endif
