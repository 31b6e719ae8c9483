/*
 * alert_center.h - where alerts live in the running daemon: the alert engine
 * (alerts.h) with its one deadline timer on the loop, the optional hook
 * (alert_hook.h), and the bridge to the feed: every transition becomes a
 * sequenced "alert" event in the store (kept with the other events), the
 * active ones are listed in hello, and clients acknowledge them by id.
 * sensors.c reports what it sees through the alert_center_* inputs.
 */
#ifndef SW_ALERT_CENTER_H
#define SW_ALERT_CENTER_H

#include <stdbool.h>
#include <stddef.h>

#include "alert_hook.h"
#include "alerts.h"
#include "feed_json.h"
#include "loop.h"
#include "store.h"

struct alert_center;

struct alert_center *alert_center_new(struct store *store, const struct alerts_config *cfg);
/* The loop runs the deadline timer and the hook; before that, alerts that
 * depend on time wait for the next input. hook_argv may be NULL (no hook). */
void alert_center_attach(struct alert_center *ac, struct loop *loop,
			 const struct alert_hook_config *hook);
void alert_center_free(struct alert_center *ac);
/* SIGHUP: new rules/thresholds and hook. */
void alert_center_reconfigure(struct alert_center *ac, const struct alerts_config *cfg,
			      const struct alert_hook_config *hook);

/* Inputs (the engine's, with the clock read here and the timer re-armed). */
void alert_center_slouch(struct alert_center *ac, const char *sensor, bool slouching,
			 int64_t since_mono);
void alert_center_break_due(struct alert_center *ac, const char *sensor, bool due,
			    int64_t sitting_ms);
/* One crack episode, with the wearer's usual cracks per hour for this hour
 * of day (stats_keeper_baseline(); ALERTS_NO_BASELINE: none yet). */
void alert_center_crack(struct alert_center *ac, const char *sensor, double baseline_per_hour);
void alert_center_pattern(struct alert_center *ac, const char *sensor, enum alert_rule rule);
void alert_center_streaming(struct alert_center *ac, const char *sensor, bool streaming);
void alert_center_battery(struct alert_center *ac, const char *sensor, int percent);

/* A client's ack: true with *result "ok" or "already-acknowledged"; false with a code. */
bool alert_center_ack(struct alert_center *ac, uint64_t id, const char **result,
		      const char **code, const char **message);
/* Alerts of this rule raised since start (for /metrics). */
uint64_t alert_center_raised(const struct alert_center *ac, enum alert_rule rule);
/* Active alerts for hello; strings point into the engine until its next change. */
size_t alert_center_active(struct alert_center *ac, struct feed_alert_info *out, size_t max);

#endif
