/*
 * mqtt.h - the optional MQTT publisher: one libmosquitto client driven by
 * the daemon's event loop (its socket is a loop fd, keepalive a timer; no
 * thread), which publishes every sequenced event of the store, the sensors'
 * live state, their active alerts and per-day record, and Home Assistant
 * discovery configs (topics and payloads: protocol/mqtt_topics.h,
 * protocol/mqtt.md).
 *
 * Nothing is lost while the broker is away: events go out in seq order,
 * at most MQTT_WINDOW unacknowledged at a time; the last seq the broker
 * acknowledged (PUBACK) is kept in STATE_DIR/mqtt.state, and after a
 * reconnect or a restart publishing resumes after it, from the store's
 * ring or, if the ring has moved past, from the history database.
 * Connection failures are logged and retried with backoff; the rest of
 * the daemon never waits for the broker.
 */
#ifndef SW_MQTT_H
#define SW_MQTT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"
#include "mqtt_config.h"
#include "store.h"

#define MQTT_WINDOW 32                 /* events published and not yet acknowledged */
#define MQTT_CONNECT_TIMEOUT_MS 10000  /* TCP + TLS + CONNACK */
#define MQTT_BACKOFF_MIN_MS 1000
#define MQTT_BACKOFF_MAX_MS 60000
#define MQTT_STABLE_MS 10000           /* a connection this old resets the backoff when lost */
#define MQTT_SAVE_DELAY_MS 1000        /* the acknowledged seq is written at most this late */
#define MQTT_STATS_DELAY_MS 2000       /* a changed per-day record goes out this late */
#define MQTT_HISTORY_RETRY_MS 1000     /* the history database could not be read */
#define MQTT_STATE_FILE "mqtt.state"

struct mqtt;
struct sensors;
struct alert_center;
struct stats_keeper;
struct history;

struct mqtt_sources {
	struct store *store;
	struct history *history;        /* NULL: no backlog beyond the ring */
	struct sensors *sensors;
	struct alert_center *alerts;    /* NULL: no alerts topics */
	struct stats_keeper *stats;     /* NULL: no stats topics */
	const char *state_dir;          /* where mqtt.state is kept */
	const char *version;
};

/*
 * NULL when disabled (c->enabled false) or on a setting that cannot work
 * (logged); otherwise the client starts connecting at once and keeps
 * trying. Call after the history has refilled the store.
 */
struct mqtt *mqtt_new(const struct mqtt_config *c, const struct mqtt_sources *src,
		      struct loop *loop);
/* Says "offline", disconnects, writes the acknowledged seq; before the loop goes. */
void mqtt_free(struct mqtt *m);

/* For tests and /metrics. */
bool mqtt_connected(const struct mqtt *m);
uint64_t mqtt_acked_seq(const struct mqtt *m);

struct mqtt_counts {
	uint64_t connections;      /* connections the broker accepted (CONNACK) */
	uint64_t drops;            /* connections lost, or attempts that failed */
	uint64_t events_acked;     /* events the broker acknowledged, this run */
};
void mqtt_get_counts(const struct mqtt *m, struct mqtt_counts *out);

#endif
