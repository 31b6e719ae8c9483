/*
 * feed_json.h - the WebSocket feed's messages (websocket-feed.md) as C
 * structs, and their JSON encoders. Every message is encoded once, by these
 * functions, and the same bytes go to every client.
 */
#ifndef FEED_JSON_H
#define FEED_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define FEED_PROTOCOL_VERSION 1
#define FEED_SUBPROTOCOL "spinewatch.v1"
#define FEED_ADDRESS_LEN 18   /* "AA:BB:CC:DD:EE:FF" + NUL */

enum feed_event_kind {
	FEED_EV_CRACK,
	FEED_EV_SLOUCH,
	FEED_EV_SENSOR,
};

struct feed_event {
	uint64_t seq;
	int64_t ts_ms;
	char sensor[FEED_ADDRESS_LEN];
	enum feed_event_kind kind;
	union {
		struct {
			const char *kind;      /* "pop" | "click" | "grind" */
			unsigned intensity, duration_ms, count;
		} crack;
		struct {
			bool start;
			double angle, threshold_deg;
			int64_t onset_ts, duration_ms;   /* duration: end only */
			const char *reason;              /* end only */
		} slouch;
		struct {
			const char *state, *reason, *name, *profile;
		} dev;             /* kind "sensor" */
	};
};

struct feed_posture {
	int64_t ts_ms;
	const char *sensor;
	double angle;
	bool calibrating, slouching;
	int64_t beyond_ms;
};

enum feed_role {
	FEED_ROLE_POSTURE = 1 << 0,
	FEED_ROLE_SOUND = 1 << 1,
};

#define FEED_NO_BATTERY (-1)
#define FEED_NO_RSSI     INT16_MIN

/* A sensor's health: in hello's sensor list and in "status" messages. */
struct feed_health {
	int battery;                 /* 0-100, FEED_NO_BATTERY: null */
	int rssi;                    /* dBm, FEED_NO_RSSI: null */
	const char *notify;          /* "acquire", "start", NULL: null */
	unsigned period_ms;          /* 0: null */
	uint64_t received, lost, rejected;
};

struct feed_sensor_info {
	const char *address, *name, *profile, *state, *reason;
	unsigned roles;              /* enum feed_role bits */
	struct feed_health health;
};

struct feed_status {
	int64_t ts_ms;
	const char *sensor, *state;
	struct feed_health health;
};

struct feed_hello {
	const char *version, *stream;
	int64_t ts_ms;
	uint64_t last_seq, oldest_seq;
	double threshold_deg, hysteresis_deg;
	int64_t delay_ms, calibration_ms;
	const struct feed_sensor_info *sensors;
	size_t n_sensors;
};

/*
 * Encoders write compact JSON (no NUL) into buf and return its length, or -1
 * if it does not fit in cap or a string is not valid UTF-8.
 */
int feed_encode_event(const struct feed_event *ev, char *buf, size_t cap);
int feed_encode_posture(const struct feed_posture *p, char *buf, size_t cap);
int feed_encode_status(const struct feed_status *st, char *buf, size_t cap);
int feed_encode_gap(uint64_t from, uint64_t to, char *buf, size_t cap);
int feed_encode_error(const char *code, const char *message, char *buf, size_t cap);
/* hello has no size bound (sensor list): returns malloc'd JSON, *len set */
char *feed_encode_hello(const struct feed_hello *h, size_t *len);

#endif
