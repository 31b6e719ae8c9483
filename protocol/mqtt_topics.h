/*
 * mqtt_topics.h - what spinewatchd publishes to an MQTT broker
 * (protocol/mqtt.md), as pure functions: the hub's name and topic prefix,
 * the topics of one sequenced event (read from the feed's JSON bytes, which
 * are the payload as they are), the topics of the live and retained state
 * messages, the active-alerts payload and the Home Assistant discovery
 * configs. No I/O and no broker here: daemon/mqtt.c sends what this builds.
 */
#ifndef MQTT_TOPICS_H
#define MQTT_TOPICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "feed_json.h"

#define MQTT_TOPIC_MAX 256
#define MQTT_HUB_MAX 64          /* the hub's name, sanitized, NUL included */
#define MQTT_PREFIX_MAX 160      /* topic prefix, NUL included */
#define MQTT_DISCOVERY_MAX 64    /* discovery prefix, NUL included */
#define MQTT_NODE_LEN 13         /* "c0ffee000002" (a sensor) or "hub", NUL included */
#define MQTT_NODE_HUB "hub"      /* the node of events about no sensor in particular */

struct mqtt_names {
	char hub[MQTT_HUB_MAX];              /* [A-Za-z0-9_-] only */
	char prefix[MQTT_PREFIX_MAX];        /* no trailing '/' */
	char discovery[MQTT_DISCOVERY_MAX];  /* "" : no Home Assistant discovery */
};

/*
 * hub: the hub's name (the host name): every character but [A-Za-z0-9_-]
 * becomes '_', cut at MQTT_HUB_MAX - 1; "" becomes "spinewatch".
 * prefix "" means "spinewatch/<hub>"; a trailing '/' is dropped.
 * discovery "" means no discovery. Prefixes must be valid publish topics
 * (no '+', '#', NUL, not empty, not starting with '$'): 0, or -1 with a
 * message for people in err.
 */
int mqtt_names_init(struct mqtt_names *n, const char *hub, const char *prefix,
		    const char *discovery, char *err, size_t errlen);
/* Whether text can begin a publish topic (the checks above). */
bool mqtt_prefix_valid(const char *prefix);

/* A sensor's node: its address as 12 lower-case hex digits; "" gives "hub";
 * anything that is not a Bluetooth address gives "other". */
void mqtt_node(const char *sensor, char out[MQTT_NODE_LEN]);

/* "<prefix>/<leaf>" (node NULL) or "<prefix>/<node>/<leaf>": 0, or -1 if it does not fit. */
int mqtt_topic(const struct mqtt_names *n, const char *node, const char *leaf, char *out,
	       size_t cap);

/* The leaves under a node (protocol/mqtt.md) */
#define MQTT_LEAF_STATUS "status"     /* <prefix>/status: online / offline (the will) */
#define MQTT_LEAF_STATE "state"       /* a sensor's last status message, retained */
#define MQTT_LEAF_POSTURE "posture"   /* a sensor's last posture message, retained */
#define MQTT_LEAF_STATS "stats"       /* a sensor's per-day record, retained */
#define MQTT_LEAF_ALERTS "alerts"     /* a node's active alerts (an array), retained */
#define MQTT_ONLINE "online"
#define MQTT_OFFLINE "offline"

struct mqtt_pub {
	char topic[MQTT_TOPIC_MAX];
	const char *payload;   /* points into the event's JSON, or "" */
	size_t len;
	int qos;
	bool retain;
};

/* What an event is about, read from its JSON. */
struct mqtt_event_info {
	uint64_t seq;
	char sensor[FEED_ADDRESS_LEN];   /* "" for none */
	char node[MQTT_NODE_LEN];
	char kind[16];                   /* "crack", "slouch", ... */
	char rule[32];                   /* alerts: the rule */
	bool alert_active;               /* alerts: raised or acknowledged */
};

/*
 * The publications of one sequenced event (the feed's JSON): always
 * "<prefix>/<node>/event/<kind>" (QoS 1, not retained); for an alert also
 * "<prefix>/<node>/alert/<rule>" (QoS 1, retained): the event while raised
 * or acknowledged, an empty payload (which removes the retained message)
 * once cleared. Returns how many (1 or 2), or -1 if json is not an event
 * this can name (info is filled as far as it was read).
 */
#define MQTT_EVENT_PUBS 2
int mqtt_event_pubs(const struct mqtt_names *n, const char *json, size_t len,
		    struct mqtt_event_info *info, struct mqtt_pub out[MQTT_EVENT_PUBS]);

/* The active alerts about one sensor ("" for the hub's own) as a JSON array
 * of hello's alert objects; malloc'd, NULL on allocation failure. */
char *mqtt_alerts_payload(const struct feed_alert_info *a, size_t n, const char *sensor,
			  size_t *len);

/*
 * Home Assistant MQTT discovery: one device per sensor, with MQTT_ENTITIES
 * entities (posture angle, slouching, cracks today, last crack, battery,
 * signal, link state, active alerts), each a retained config at
 * "<discovery>/<component>/spinewatch_<hub>_<node>_<entity>/config".
 * Payloads are malloc'd (mqtt_discovery_free). Returns how many, 0 when
 * discovery is off, -1 on allocation failure.
 */
#define MQTT_ENTITIES 8
struct mqtt_discovery {
	char topic[MQTT_TOPIC_MAX];
	char *payload;
	size_t len;
};
int mqtt_discovery_configs(const struct mqtt_names *n, const struct feed_sensor_info *s,
			   const char *version, struct mqtt_discovery out[MQTT_ENTITIES]);
void mqtt_discovery_free(struct mqtt_discovery *d, int n);

#endif
