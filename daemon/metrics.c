/*
 * metrics.c - /metrics in the Prometheus text format 0.0.4 (see metrics.h).
 */
#include "metrics.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "alert_center.h"
#include "alerts.h"
#include "feed.h"
#include "history.h"
#include "log.h"
#include "mqtt.h"
#include "sensors.h"
#include "store.h"

#define ACTIVE_MAX 64

/* The states of websocket-feed.md's hello.sensors, always listed (0 or more). */
static const char *const sensor_states[] = {
	"discovered", "connecting", "pairing", "resolving", "subscribed", "streaming", "lost",
	"waiting", "gone",
};
#define N_STATES (sizeof(sensor_states) / sizeof(sensor_states[0]))

/* Length of the valid UTF-8 sequence at s (1..4), or 0. */
static size_t utf8_len(const unsigned char *s)
{
	size_t n, i;
	uint32_t cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		n = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		n = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		n = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = cp << 6 | (s[i] & 0x3f);
	}
	if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;   /* overlong, surrogate, beyond Unicode */
	return n;
}

void metrics_write_label_value(FILE *out, const char *value)
{
	const unsigned char *s = (const unsigned char *)(value ? value : "");

	while (*s) {
		size_t n = utf8_len(s);

		if (*s == '\\')
			fputs("\\\\", out);
		else if (*s == '"')
			fputs("\\\"", out);
		else if (*s == '\n')
			fputs("\\n", out);
		else if (!n || *s < 0x20 || *s == 0x7f)
			fputc('?', out);
		else
			fwrite(s, 1, n, out);
		s += n ? n : 1;
	}
}

/* HELP and TYPE of one family (help texts are ours: no escaping needed). */
static void family(FILE *out, const char *name, const char *type, const char *help)
{
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample: labels are NULL-terminated name, value pairs (or NULL). */
static void sample(FILE *out, const char *name, const char *const *labels, uint64_t value)
{
	size_t i;

	fputs(name, out);
	if (labels && labels[0]) {
		fputc('{', out);
		for (i = 0; labels[i]; i += 2) {
			fprintf(out, "%s%s=\"", i ? "," : "", labels[i]);
			metrics_write_label_value(out, labels[i + 1]);
			fputc('"', out);
		}
		fputc('}', out);
	}
	fprintf(out, " %llu\n", (unsigned long long)value);
}

static void one(FILE *out, const char *name, const char *type, const char *help,
		uint64_t value)
{
	family(out, name, type, help);
	sample(out, name, NULL, value);
}

static void events_family(FILE *out, const struct store *store)
{
	const struct store_event_count *c;
	size_t n = store_event_counts(store, &c), i;
	int k;

	family(out, "spinewatch_events_total", "counter",
	       "Sequenced events added since the daemon started, by kind and sensor (\"\" for "
	       "alerts about no sensor in particular, \"other\" beyond 64 sensors).");
	for (i = 0; i < n; i++) {
		for (k = 0; k < STORE_KINDS; k++) {
			const char *labels[] = { "kind", store_kind_name((enum feed_event_kind)k),
						 "sensor", c[i].sensor, NULL };

			sample(out, "spinewatch_events_total", labels, c[i].by_kind[k]);
		}
	}
}

static void sensor_families(FILE *out, const struct sensors *reg)
{
	struct feed_sensor_info s[SENSORS_MAX];
	size_t n = reg ? sensors_snapshot(reg, s, SENSORS_MAX) : 0, i, k;
	uint64_t counted[N_STATES] = { 0 };
	static const struct {
		const char *name, *help;
		size_t offset;
	} health[] = {
		{ "spinewatch_notifications_received_total",
		  "Notifications received from the sensor since the daemon started.",
		  offsetof(struct feed_health, received) },
		{ "spinewatch_notifications_lost_total",
		  "Notifications lost on the way, from the profile's sequence counters.",
		  offsetof(struct feed_health, lost) },
		{ "spinewatch_notifications_rejected_total",
		  "Notification payloads dropped as malformed.",
		  offsetof(struct feed_health, rejected) },
	};

	family(out, "spinewatch_sensors", "gauge", "Sensors the daemon knows, by state.");
	for (i = 0; i < n; i++)
		for (k = 0; k < N_STATES; k++)
			counted[k] += s[i].state && !strcmp(s[i].state, sensor_states[k]);
	for (k = 0; k < N_STATES; k++) {
		const char *labels[] = { "state", sensor_states[k], NULL };

		sample(out, "spinewatch_sensors", labels, counted[k]);
	}
	for (i = 0; i < n; i++) {   /* a state this list does not know yet */
		uint64_t same = 0;
		size_t j;

		for (k = 0; k < N_STATES && s[i].state; k++)
			if (!strcmp(s[i].state, sensor_states[k]))
				break;
		if (!s[i].state || k < N_STATES)
			continue;
		for (j = 0; j < i; j++)
			if (s[j].state && !strcmp(s[j].state, s[i].state))
				break;
		if (j < i)
			continue;   /* counted with the first */
		for (j = i; j < n; j++)
			same += s[j].state && !strcmp(s[j].state, s[i].state);
		{
			const char *labels[] = { "state", s[i].state, NULL };

			sample(out, "spinewatch_sensors", labels, same);
		}
	}

	family(out, "spinewatch_sensor_info", "gauge",
	       "A sensor the daemon knows (always 1): its name and profile.");
	for (i = 0; i < n; i++) {
		const char *labels[] = { "sensor", s[i].address, "name", s[i].name ? s[i].name : "",
					 "profile", s[i].profile ? s[i].profile : "", NULL };

		sample(out, "spinewatch_sensor_info", labels, 1);
	}
	for (k = 0; k < sizeof(health) / sizeof(health[0]); k++) {
		family(out, health[k].name, "counter", health[k].help);
		for (i = 0; i < n; i++) {
			const char *labels[] = { "sensor", s[i].address, NULL };
			uint64_t v;

			memcpy(&v, (const char *)&s[i].health + health[k].offset, sizeof(v));
			sample(out, health[k].name, labels, v);
		}
	}
	family(out, "spinewatch_sensor_battery_percent", "gauge",
	       "Battery level from BlueZ's Battery service, where the sensor has one.");
	for (i = 0; i < n; i++) {
		const char *labels[] = { "sensor", s[i].address, NULL };

		if (s[i].health.battery != FEED_NO_BATTERY && s[i].health.battery >= 0)
			sample(out, "spinewatch_sensor_battery_percent", labels,
			       (uint64_t)s[i].health.battery);
	}
	family(out, "spinewatch_sensor_rssi_dbm", "gauge",
	       "Signal strength while BlueZ is discovering, where known.");
	for (i = 0; i < n; i++) {
		if (s[i].health.rssi == FEED_NO_RSSI)
			continue;
		fputs("spinewatch_sensor_rssi_dbm{sensor=\"", out);
		metrics_write_label_value(out, s[i].address);
		fprintf(out, "\"} %d\n", s[i].health.rssi);
	}
}

static void alert_families(FILE *out, struct alert_center *ac)
{
	struct feed_alert_info active[ACTIVE_MAX];
	size_t n = ac ? alert_center_active(ac, active, ACTIVE_MAX) : 0, i;
	uint64_t raised = 0, acked = 0;
	int r;

	family(out, "spinewatch_alerts_raised_total", "counter",
	       "Alerts raised since the daemon started, by rule.");
	for (r = 0; r < ALERT_RULE_COUNT; r++) {
		const char *labels[] = { "rule", alert_rule_name((enum alert_rule)r), NULL };

		sample(out, "spinewatch_alerts_raised_total", labels,
		       ac ? alert_center_raised(ac, (enum alert_rule)r) : 0);
	}
	for (i = 0; i < n; i++) {
		raised += active[i].state && !strcmp(active[i].state, "raised");
		acked += active[i].state && !strcmp(active[i].state, "acknowledged");
	}
	family(out, "spinewatch_alerts_active", "gauge",
	       "Active alerts (as in hello's alerts), by state.");
	{
		const char *l1[] = { "state", "raised", NULL }, *l2[] = { "state", "acknowledged", NULL };

		sample(out, "spinewatch_alerts_active", l1, raised);
		sample(out, "spinewatch_alerts_active", l2, acked);
	}
}

static void feed_and_ring(FILE *out, const struct http_sources *src)
{
	const struct ring *r = store_events(src->store);
	uint64_t last = ring_last_seq(r), oldest = ring_oldest_seq(r);
	struct feed_counts c = { 0 };

	if (src->feed)
		feed_counts(src->feed, &c);
	one(out, "spinewatch_feed_clients", "gauge", "WebSocket feed clients connected now.",
	    src->feed ? feed_clients(src->feed) : 0);
	one(out, "spinewatch_feed_clients_accepted_total", "counter",
	    "WebSocket feed clients accepted since the daemon started.", c.clients_total);
	one(out, "spinewatch_feed_commands_total", "counter",
	    "Client commands handled since the daemon started.", c.commands);
	one(out, "spinewatch_feed_gaps_total", "counter",
	    "Gap notices sent to slow or late feed clients.", c.gaps_sent);
	one(out, "spinewatch_feed_events_skipped_total", "counter",
	    "Events the gap notices stood for (never sent to those clients).", c.events_skipped);
	one(out, "spinewatch_feed_commands_rate_limited_total", "counter",
	    "Client commands refused for coming faster than 20 a second.", c.rate_limited);
	one(out, "spinewatch_feed_commands_forbidden_total", "counter",
	    "Commands that change state refused to read-only clients.", c.forbidden);
	one(out, "spinewatch_feed_batches_total", "counter",
	    "Writes that carried a lagging feed client's backlog of events at once.", c.batches);
	one(out, "spinewatch_feed_clients_timed_out_total", "counter",
	    "Feed clients dropped for taking nothing they were due for the client timeout.",
	    c.timed_out);
	if (src->gate) {
		const struct gate_counts *g = &src->gate->counts;
		const char *const reasons[] = { "unknown-host", "foreign-origin", "token-required",
						"bad-token" };
		const uint64_t values[] = { g->unknown_host, g->foreign_origin, g->token_required,
					    g->bad_token };
		size_t i;

		family(out, "spinewatch_http_refused_total", "counter",
		       "HTTP requests and WebSocket upgrades refused by the access gate, by reason.");
		for (i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
			const char *l[] = { "reason", reasons[i], NULL };

			sample(out, "spinewatch_http_refused_total", l, values[i]);
		}
	}
	one(out, "spinewatch_ring_events", "gauge", "Events held in the replay ring now.",
	    oldest ? last - oldest + 1 : 0);
	one(out, "spinewatch_ring_capacity", "gauge", "Events the replay ring holds at most.",
	    ring_capacity(r));
	one(out, "spinewatch_ring_bytes", "gauge", "Bytes of memory the replay ring's records share.",
	    ring_bytes(r));
	one(out, "spinewatch_ring_last_seq", "gauge", "The newest event's sequence number.", last);
	one(out, "spinewatch_store_encode_failures_total", "counter",
	    "Events or samples that could not be encoded.", store_encode_failures(src->store));
}

static void history_families(FILE *out, const struct history *h)
{
	struct history_counts c;

	if (!h)
		return;   /* no state directory: no history families */
	history_counts(h, &c);
	one(out, "spinewatch_history_pending", "gauge",
	    "Events waiting in memory to be written to the history database.", c.pending);
	one(out, "spinewatch_history_written_total", "counter",
	    "Events written to the history database since the daemon started.", c.written);
	one(out, "spinewatch_history_dropped_total", "counter",
	    "Events dropped unwritten while the history database could not be written.",
	    c.dropped);
	one(out, "spinewatch_history_pruned_total", "counter",
	    "Old events and days pruned from the history database.", c.pruned);
	one(out, "spinewatch_history_write_ok", "gauge",
	    "1 while writing the history database works, 0 while it fails.",
	    history_problem(h) ? 0 : 1);
}

static void mqtt_families(FILE *out, const struct http_sources *src)
{
	struct mqtt_counts c;
	uint64_t acked, last;

	if (!src->mqtt)
		return;   /* no [mqtt] broker: no MQTT families */
	mqtt_get_counts(src->mqtt, &c);
	acked = mqtt_acked_seq(src->mqtt);
	last = ring_last_seq(store_events(src->store));
	one(out, "spinewatch_mqtt_connected", "gauge",
	    "1 while connected to the MQTT broker, 0 otherwise.", mqtt_connected(src->mqtt));
	one(out, "spinewatch_mqtt_acked_seq", "gauge",
	    "Every event up to this seq was acknowledged by the MQTT broker.", acked);
	one(out, "spinewatch_mqtt_backlog_events", "gauge",
	    "Events not yet acknowledged by the MQTT broker.", last > acked ? last - acked : 0);
	one(out, "spinewatch_mqtt_connections_total", "counter",
	    "Connections the MQTT broker accepted.", c.connections);
	one(out, "spinewatch_mqtt_drops_total", "counter",
	    "MQTT connections lost, or attempts that failed.", c.drops);
	one(out, "spinewatch_mqtt_events_acked_total", "counter",
	    "Events the MQTT broker acknowledged since the daemon started.", c.events_acked);
}

char *metrics_render(const struct http_sources *src, size_t *len)
{
	char *buf = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&buf, &size);

	if (!out)
		return NULL;
	family(out, "spinewatch_build_info", "gauge", "The daemon's version (always 1).");
	{
		const char *labels[] = { "version", src->version ? src->version : "", NULL };

		sample(out, "spinewatch_build_info", labels, 1);
	}
	one(out, "spinewatch_start_time_seconds", "gauge",
	    "When the daemon started, in seconds since the Unix epoch.",
	    src->started_ms > 0 ? (uint64_t)(src->started_ms / 1000) : 0);
	events_family(out, src->store);
	sensor_families(out, src->sensors);
	alert_families(out, src->alerts);
	feed_and_ring(out, src);
	history_families(out, src->history);
	mqtt_families(out, src);
	if (fclose(out) != 0) {
		free(buf);
		return NULL;
	}
	*len = size;
	return buf;
}
