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
	FEED_EV_ALERT,
	FEED_EV_CALIBRATION,
	FEED_EV_ANNOTATION,
};

#define FEED_NOTE_MAX 280        /* bytes of an annotation's note (UTF-8) */
#define FEED_SCALE_NONE (-1)     /* pain / stiffness not given */

struct feed_event {
	uint64_t seq;
	int64_t ts_ms;
	char sensor[FEED_ADDRESS_LEN];
	enum feed_event_kind kind;
	union {
		struct {
			const char *kind;      /* "pop" | "click" | "grind" */
			unsigned intensity, duration_ms, count;
			bool heard;            /* heard in audio: level_dbfs and freq_hz follow */
			double level_dbfs;
			unsigned freq_hz;
		} crack;
		struct {
			bool start;
			double angle, threshold_deg;
			double peak_deg;                 /* end only: the largest angle */
			int64_t onset_ts, duration_ms;   /* duration: end only */
			const char *reason;              /* end only */
		} slouch;
		struct {
			const char *state, *reason, *name, *profile;
		} dev;             /* kind "sensor" */
		struct {
			uint64_t id;
			const char *rule, *severity, *state, *message;
			int64_t raised_ts;
		} alert;           /* kind "alert"; sensor "" for a global one */
		struct {
			const char *result, *reason;   /* "done" | "refused"; reason: refused only */
		} calibration;
		struct {
			uint64_t event;        /* the annotated event's seq */
			const char *of;        /* its kind ("crack", ...) */
			int pain, stiffness;   /* 0..10, or FEED_SCALE_NONE */
			const char *note;      /* NULL: none */
		} annotation;              /* sensor: the annotated event's */
	};
};

struct feed_posture {
	int64_t ts_ms;
	const char *sensor;
	double angle;
	bool calibrating, slouching;
	int64_t beyond_ms;
	int64_t sitting_ms;   /* worn without a posture break; 0 during a break */
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

/* An active alert, as listed in hello. */
struct feed_alert_info {
	uint64_t id;
	const char *rule, *sensor, *severity, *state, *message;
	int64_t raised_ts;
};

struct feed_hello {
	const char *version, *stream;
	int64_t ts_ms;
	uint64_t last_seq, oldest_seq;
	double threshold_deg, hysteresis_deg;
	int64_t delay_ms, calibration_ms;
	const struct feed_sensor_info *sensors;
	size_t n_sensors;
	const struct feed_alert_info *alerts;
	size_t n_alerts;
	/* the aggregation (daemon/stats.h's object without "type"), borrowed;
	 * NULL: hello has no "stats" */
	struct json_t *stats;
};

/* ---- filters: what a client wants (websocket-feed.md, "Filters") ---- */

/* message kinds a filter can name: the event kinds (1 << enum feed_event_kind)
 * and the two live messages */
#define FEED_KIND_POSTURE (1u << 8)
#define FEED_KIND_STATUS  (1u << 9)
#define FEED_FILTER_SENSORS 16

struct feed_filter {
	unsigned kinds;        /* 0: every kind */
	size_t n_sensors;      /* 0: every sensor */
	char sensors[FEED_FILTER_SENSORS][FEED_ADDRESS_LEN];   /* upper case */
};

/* The kind bit of a name ("crack", ..., "posture", "status"), or 0. */
unsigned feed_kind_bit(const char *name);
/* Comma-separated lists, as in /ws?kinds=crack,slouch&sensors=AA:..,BB:..
 * (added to f): 0, or -1 with a message for people. */
int feed_filter_parse_kinds(struct feed_filter *f, const char *csv, const char **message);
int feed_filter_parse_sensors(struct feed_filter *f, const char *csv, const char **message);
/* Does a message of this kind bit about this sensor ("" for none in
 * particular, which every sensor filter lets through) pass? */
bool feed_filter_match(const struct feed_filter *f, unsigned kind_bit, const char *sensor);

/* ---- client commands (websocket-feed.md, "Client messages") ---- */

/* A command's "id": a string of up to 64 bytes or an integer. Kept as JSON text,
 * where each byte of a string may take up to 6 ("\u001f"), plus the quotes. */
#define FEED_ID_MAX 64
#define FEED_TAG_MAX (FEED_ID_MAX * 6 + 2)

enum feed_command_type {
	FEED_CMD_ACK,          /* {"type":"ack","alert":ID} */
	FEED_CMD_CALIBRATE,    /* {"type":"calibrate","sensor":"AA:BB:CC:DD:EE:FF"} */
	FEED_CMD_STATS,        /* {"type":"stats"} or with "sensor":"AA:.." (else sensor "") */
	FEED_CMD_ANNOTATE,     /* {"type":"annotate","event":SEQ,"pain":N,"stiffness":N,"note":".."} */
	FEED_CMD_SUBSCRIBE,    /* {"type":"subscribe","since":N,"kinds":[..],"sensors":[..]} */
	FEED_CMD_PING,         /* {"type":"ping"} */
};

struct feed_command {
	enum feed_command_type type;
	char tag[FEED_TAG_MAX + 1];   /* the client's "id", as JSON text ("null" if none) */
	uint64_t alert;
	char sensor[FEED_ADDRESS_LEN];
	/* annotate: at least one of pain, stiffness, note */
	uint64_t event;
	int pain, stiffness;              /* 0..10 or FEED_SCALE_NONE */
	bool has_note;
	char note[FEED_NOTE_MAX + 1];
	/* subscribe: the new filter (replaces the old one), and where to resume */
	struct feed_filter filter;
	bool has_since;
	uint64_t since;
};

#define FEED_JSON_DEPTH_MAX 4   /* a client message nesting deeper is refused unparsed */

/*
 * Parse one client message. Returns 0, or -1 with a stable error code and a
 * message for people (static strings); the tag is filled in whenever the
 * message had a usable "id", so the error reply can carry it.
 */
int feed_parse_command(const char *buf, size_t len, struct feed_command *out,
		       const char **code, const char **message);

/*
 * The reply to one command: {"type":"reply","id":TAG,"ok":true,"result":R}
 * or {"type":"reply","id":TAG,"ok":false,"code":C,"message":M}.
 */
int feed_encode_reply(const char *tag, bool ok, const char *result_or_code, const char *message,
		      char *buf, size_t cap);

/*
 * Encoders write compact JSON (no NUL) into buf and return its length, or -1
 * if it does not fit in cap or a string is not valid UTF-8.
 */
int feed_encode_event(const struct feed_event *ev, char *buf, size_t cap);
int feed_encode_posture(const struct feed_posture *p, char *buf, size_t cap);
int feed_encode_status(const struct feed_status *st, char *buf, size_t cap);
int feed_encode_gap(uint64_t from, uint64_t to, char *buf, size_t cap);
int feed_encode_error(const char *code, const char *message, char *buf, size_t cap);
/*
 * The reply to a stats command: {"type":"reply","id":TAG,"ok":true,
 * "result":"ok","stats":STATS} with STATS borrowed; malloc'd, *len set.
 */
char *feed_encode_stats_reply(const char *tag, struct json_t *stats, size_t *len);
/* hello has no size bound (sensor list): returns malloc'd JSON, *len set */
char *feed_encode_hello(const struct feed_hello *h, size_t *len);

#endif
