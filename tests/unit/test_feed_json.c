/*
 * test_feed_json.c - unit tests for protocol/feed_json.c. Every ```json
 * example in websocket-feed.md is parsed, turned back into the encoder's
 * structs, re-encoded, and must come out byte for byte as documented: the
 * document shows exactly what the daemon sends. Then: buffers too small,
 * invalid UTF-8 in sensor names, and reals that must not print as 0.30000004.
 *
 * Usage: test_feed_json [path/to/websocket-feed.md]
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "feed_json.h"

#define DEFAULT_DOC "protocol/websocket-feed.md"
#define MAX_EXAMPLES 32
#define MIN_EXAMPLES 8

static const char *doc_path = DEFAULT_DOC;

static char *examples[MAX_EXAMPLES];
static int n_examples;

static void load_examples(void)
{
	FILE *f = fopen(doc_path, "r");
	char line[4096];
	int in_json = 0;

	n_examples = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = '\0';
		if (!strcmp(line, "```json")) {
			in_json = 1;
		} else if (!strncmp(line, "```", 3)) {
			in_json = 0;
		} else if (in_json && line[0] == '{' && n_examples < MAX_EXAMPLES) {
			examples[n_examples++] = strdup(line);
		}
	}
	fclose(f);
}

static const char *str(json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	assert_non_null(s);
	return s;
}

static int64_t num(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	assert_true(json_is_integer(v));
	return (int64_t)json_integer_value(v);
}

static double real(json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	assert_true(json_is_number(v));
	return json_number_value(v);
}

static void check_same(const char *expect, const char *got, int n)
{
	assert_true(n > 0);
	if ((size_t)n != strlen(expect) || memcmp(expect, got, (size_t)n)) {
		print_error("documented: %s\nencoded:    %.*s\n", expect, n, got);
		fail();
	}
}

static void reencode_event(json_t *o, const char *line)
{
	struct feed_event ev;
	const char *kind = str(o, "kind");
	char buf[1024];

	memset(&ev, 0, sizeof(ev));
	ev.seq = (uint64_t)num(o, "seq");
	ev.ts_ms = num(o, "ts");
	snprintf(ev.sensor, sizeof(ev.sensor), "%s", str(o, "sensor"));
	if (!strcmp(kind, "crack")) {
		ev.kind = FEED_EV_CRACK;
		ev.crack.kind = str(o, "crack");
		ev.crack.intensity = (unsigned)num(o, "intensity");
		ev.crack.duration_ms = (unsigned)num(o, "duration_ms");
		ev.crack.count = (unsigned)num(o, "count");
		if (json_object_get(o, "level_dbfs")) {   /* heard in audio */
			ev.crack.heard = true;
			ev.crack.level_dbfs = real(o, "level_dbfs");
			ev.crack.freq_hz = (unsigned)num(o, "freq_hz");
		}
	} else if (!strcmp(kind, "slouch")) {
		ev.kind = FEED_EV_SLOUCH;
		ev.slouch.start = !strcmp(str(o, "phase"), "start");
		ev.slouch.angle = real(o, "angle");
		ev.slouch.threshold_deg = real(o, "threshold_deg");
		ev.slouch.onset_ts = num(o, "onset_ts");
		if (!ev.slouch.start) {
			ev.slouch.duration_ms = num(o, "duration_ms");
			ev.slouch.peak_deg = real(o, "peak_deg");
			ev.slouch.reason = str(o, "reason");
		}
	} else if (!strcmp(kind, "sensor")) {
		ev.kind = FEED_EV_SENSOR;
		ev.dev.state = str(o, "state");
		ev.dev.reason = str(o, "reason");
		ev.dev.name = str(o, "name");
		ev.dev.profile = str(o, "profile");
	} else if (!strcmp(kind, "alert")) {
		ev.kind = FEED_EV_ALERT;
		ev.alert.id = (uint64_t)num(o, "id");
		ev.alert.rule = str(o, "rule");
		ev.alert.severity = str(o, "severity");
		ev.alert.state = str(o, "state");
		ev.alert.message = str(o, "message");
		ev.alert.raised_ts = num(o, "raised_ts");
	} else if (!strcmp(kind, "calibration")) {
		ev.kind = FEED_EV_CALIBRATION;
		ev.calibration.result = str(o, "result");
		if (json_object_get(o, "reason"))
			ev.calibration.reason = str(o, "reason");
	} else if (!strcmp(kind, "annotation")) {
		ev.kind = FEED_EV_ANNOTATION;
		ev.annotation.event = (uint64_t)num(o, "event");
		ev.annotation.of = str(o, "of");
		ev.annotation.pain = json_is_null(json_object_get(o, "pain")) ? FEED_SCALE_NONE :
				     (int)num(o, "pain");
		ev.annotation.stiffness = json_is_null(json_object_get(o, "stiffness")) ?
					  FEED_SCALE_NONE : (int)num(o, "stiffness");
		ev.annotation.note = json_is_null(json_object_get(o, "note")) ? NULL : str(o, "note");
	} else {
		print_error("undocumented event kind %s\n", kind);
		fail();
	}
	check_same(line, buf, feed_encode_event(&ev, buf, sizeof(buf)));
}

/* battery, rssi, received, lost, rejected, notify, period_ms (nullable ones may be null) */
static void read_health(json_t *o, struct feed_health *h)
{
	json_t *v;

	v = json_object_get(o, "battery");
	assert_true(v != NULL);
	h->battery = json_is_null(v) ? FEED_NO_BATTERY : (int)num(o, "battery");
	v = json_object_get(o, "rssi");
	assert_true(v != NULL);
	h->rssi = json_is_null(v) ? FEED_NO_RSSI : (int)num(o, "rssi");
	h->received = (uint64_t)num(o, "received");
	h->lost = (uint64_t)num(o, "lost");
	h->rejected = (uint64_t)num(o, "rejected");
	v = json_object_get(o, "notify");
	assert_true(v != NULL);
	h->notify = json_is_null(v) ? NULL : str(o, "notify");
	v = json_object_get(o, "period_ms");
	assert_true(v != NULL);
	h->period_ms = json_is_null(v) ? 0 : (unsigned)num(o, "period_ms");
}

static void reencode_hello(json_t *o, const char *line)
{
	struct feed_sensor_info sensors[8];
	json_t *det = json_object_get(o, "detector"), *list = json_object_get(o, "sensors"), *s;
	struct feed_hello h;
	size_t i, len = 0;
	char *out;

	memset(&h, 0, sizeof(h));
	memset(sensors, 0, sizeof(sensors));
	assert_string_equal(str(o, "server"), "spinewatchd");
	assert_int_equal(num(o, "protocol"), FEED_PROTOCOL_VERSION);
	h.version = str(o, "version");
	h.stream = str(o, "stream");
	h.ts_ms = num(o, "ts");
	h.last_seq = (uint64_t)num(o, "last_seq");
	h.oldest_seq = (uint64_t)num(o, "oldest_seq");
	h.threshold_deg = real(det, "threshold_deg");
	h.hysteresis_deg = real(det, "hysteresis_deg");
	h.delay_ms = num(det, "delay_ms");
	h.calibration_ms = num(det, "calibration_ms");
	assert_true(json_array_size(list) <= 8);
	json_array_foreach(list, i, s) {
		json_t *roles = json_object_get(s, "roles"), *r;
		size_t j;

		sensors[i].address = str(s, "address");
		sensors[i].name = str(s, "name");
		sensors[i].profile = str(s, "profile");
		sensors[i].state = str(s, "state");
		sensors[i].reason = str(s, "reason");
		read_health(s, &sensors[i].health);
		json_array_foreach(roles, j, r)
			sensors[i].roles |= !strcmp(json_string_value(r), "posture") ?
				FEED_ROLE_POSTURE : FEED_ROLE_SOUND;
	}
	h.sensors = sensors;
	h.n_sensors = json_array_size(list);
	{
		json_t *alerts = json_object_get(o, "alerts"), *a;
		static struct feed_alert_info infos[8];

		assert_true(json_is_array(alerts) && json_array_size(alerts) <= 8);
		json_array_foreach(alerts, i, a) {
			infos[i].id = (uint64_t)num(a, "id");
			infos[i].rule = str(a, "rule");
			infos[i].sensor = str(a, "sensor");
			infos[i].severity = str(a, "severity");
			infos[i].state = str(a, "state");
			infos[i].message = str(a, "message");
			infos[i].raised_ts = num(a, "raised_ts");
		}
		h.alerts = infos;
		h.n_alerts = json_array_size(alerts);
	}
	h.stats = json_object_get(o, "stats");   /* passed through as given */
	assert_non_null(h.stats);
	out = feed_encode_hello(&h, &len);
	assert_non_null(out);
	check_same(line, out, (int)len);
	free(out);
}

static void test_doc_examples_reencode(void **state)
{
	int i, seen_types = 0;
	char buf[1024];

	(void)state;
	load_examples();
	if (n_examples < MIN_EXAMPLES) {
		print_error("%s: found %d json examples, expected at least %d\n",
			    doc_path, n_examples, MIN_EXAMPLES);
		fail();
	}
	for (i = 0; i < n_examples; i++) {
		json_error_t err;
		json_t *o = json_loads(examples[i], 0, &err);
		const char *type;

		if (!o) {
			print_error("example %d does not parse: %s\n%s\n", i, err.text, examples[i]);
			fail();
		}
		type = str(o, "type");
		if (!strcmp(type, "event")) {
			reencode_event(o, examples[i]);
			seen_types |= 1;
		} else if (!strcmp(type, "hello")) {
			reencode_hello(o, examples[i]);
			seen_types |= 2;
		} else if (!strcmp(type, "posture")) {
			struct feed_posture p = {
				.ts_ms = num(o, "ts"), .sensor = str(o, "sensor"),
				.angle = real(o, "angle"),
				.calibrating = json_is_true(json_object_get(o, "calibrating")),
				.slouching = json_is_true(json_object_get(o, "slouching")),
				.beyond_ms = num(o, "beyond_ms"),
				.sitting_ms = num(o, "sitting_ms"),
			};

			check_same(examples[i], buf, feed_encode_posture(&p, buf, sizeof(buf)));
			seen_types |= 4;
		} else if (!strcmp(type, "status")) {
			struct feed_status st = {
				.ts_ms = num(o, "ts"), .sensor = str(o, "sensor"),
				.state = str(o, "state"),
			};

			read_health(o, &st.health);
			check_same(examples[i], buf, feed_encode_status(&st, buf, sizeof(buf)));
			seen_types |= 32;
		} else if (!strcmp(type, "reply")) {
			json_t *id = json_object_get(o, "id");
			char *tag = json_dumps(id, JSON_ENCODE_ANY | JSON_COMPACT);
			bool ok = json_is_true(json_object_get(o, "ok"));

			assert_non_null(tag);
			if (json_object_get(o, "stats")) {
				size_t n;
				char *out = feed_encode_stats_reply(tag, json_object_get(o, "stats"), &n);

				assert_non_null(out);
				check_same(examples[i], out, (int)n);
				free(out);
			} else {
				check_same(examples[i], buf,
					   feed_encode_reply(tag, ok, str(o, ok ? "result" : "code"),
							     ok ? NULL : str(o, "message"), buf,
							     sizeof(buf)));
			}
			free(tag);
			seen_types |= 64;
		} else if (!strcmp(type, "ack") || !strcmp(type, "calibrate") ||
			   !strcmp(type, "stats") || !strcmp(type, "annotate") ||
			   !strcmp(type, "subscribe") || !strcmp(type, "ping")) {
			/* client messages: the parser takes every documented one */
			struct feed_command cmd;
			const char *code = NULL, *message = NULL;

			if (feed_parse_command(examples[i], strlen(examples[i]), &cmd, &code, &message))
				fail_msg("documented command refused (%s: %s): %s", code, message,
					 examples[i]);
			if (!strcmp(type, "ack"))
				assert_int_equal(cmd.alert, (uint64_t)num(o, "alert"));
			else if (!strcmp(type, "calibrate"))
				assert_string_equal(cmd.sensor, str(o, "sensor"));
			else if (!strcmp(type, "annotate"))
				assert_int_equal(cmd.event, (uint64_t)num(o, "event"));
			else if (!strcmp(type, "subscribe"))
				assert_true(cmd.type == FEED_CMD_SUBSCRIBE && cmd.has_since &&
					    cmd.since == (uint64_t)num(o, "since") &&
					    cmd.filter.kinds && cmd.filter.n_sensors == 1);
			else if (!strcmp(type, "ping"))
				assert_int_equal(cmd.type, FEED_CMD_PING);
			else
				assert_int_equal(cmd.type, FEED_CMD_STATS);
			seen_types |= 128;
		} else if (!strcmp(type, "gap")) {
			check_same(examples[i], buf,
				   feed_encode_gap((uint64_t)num(o, "from"), (uint64_t)num(o, "to"),
						   buf, sizeof(buf)));
			seen_types |= 8;
		} else if (!strcmp(type, "error")) {
			check_same(examples[i], buf,
				   feed_encode_error(str(o, "code"), str(o, "message"), buf, sizeof(buf)));
			seen_types |= 16;
		} else {
			print_error("example of unknown type %s\n", type);
			fail();
		}
		json_decref(o);
		free(examples[i]);
	}
	assert_int_equal(seen_types, 255);
}

static void test_small_buffer_fails(void **state)
{
	struct feed_event ev = { .seq = 1, .ts_ms = 1764064801234, .sensor = "C0:FF:EE:00:00:02",
				 .kind = FEED_EV_CRACK };
	char buf[256];
	int full, n;

	(void)state;
	ev.crack.kind = "pop";
	ev.crack.intensity = 80;
	ev.crack.duration_ms = 120;
	ev.crack.count = 4;
	full = feed_encode_event(&ev, buf, sizeof(buf));
	assert_true(full > 0);
	for (n = 0; n < full; n++)
		assert_int_equal(feed_encode_event(&ev, buf, (size_t)n), -1);
	assert_int_equal(feed_encode_event(&ev, buf, (size_t)full), full);
	assert_int_equal(feed_encode_gap(1, 2, buf, 5), -1);
}

static void test_invalid_utf8(void **state)
{
	struct feed_event ev = { .seq = 3, .ts_ms = 1, .sensor = "C0:FF:EE:00:00:03",
				 .kind = FEED_EV_SENSOR };
	struct feed_sensor_info s = { .address = "C0:FF:EE:00:00:03", .name = "bad \xff name",
				      .profile = "microbit", .state = "found",
				      .roles = FEED_ROLE_POSTURE };
	struct feed_hello h = { .version = "0", .stream = "0123456789abcdef", .sensors = &s,
				.n_sensors = 1 };
	char buf[512], *out;
	size_t len;

	(void)state;
	ev.dev.state = "discovered";
	ev.dev.reason = "found";
	ev.dev.name = "bad \xff name";
	ev.dev.profile = "microbit";
	assert_int_equal(feed_encode_event(&ev, buf, sizeof(buf)), -1);
	/* hello still lists the sensor, without the broken name */
	out = feed_encode_hello(&h, &len);
	assert_non_null(out);
	assert_non_null(strstr(out, "\"address\":\"C0:FF:EE:00:00:03\""));
	assert_non_null(strstr(out, "\"name\":\"\""));
	free(out);
}

static void test_reals_rounded(void **state)
{
	struct feed_posture p = { .ts_ms = 5, .sensor = "C0:FF:EE:00:00:01", .angle = 0.30000004 };
	char buf[256];
	int n;

	(void)state;
	n = feed_encode_posture(&p, buf, sizeof(buf));
	assert_true(n > 0);
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"angle\":0.3,"));
	p.angle = 179.96;
	n = feed_encode_posture(&p, buf, sizeof(buf));
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"angle\":180.0,"));
	p.calibrating = true;
	n = feed_encode_posture(&p, buf, sizeof(buf));
	buf[n] = '\0';
	assert_non_null(strstr(buf, "\"angle\":0.0,\"calibrating\":true"));
}

static void expect_cmd_error(const char *msg, const char *want_code, const char *want_tag)
{
	struct feed_command cmd;
	const char *code = NULL, *message = NULL;

	assert_int_equal(feed_parse_command(msg, strlen(msg), &cmd, &code, &message), -1);
	assert_string_equal(code, want_code);
	assert_non_null(message);
	assert_string_equal(cmd.tag, want_tag);
}

static void test_filters(void **state)
{
	struct feed_filter f;
	const char *message = NULL;

	(void)state;
	memset(&f, 0, sizeof(f));
	assert_true(feed_filter_match(&f, feed_kind_bit("crack"), "C0:FF:EE:00:00:01"));
	assert_int_equal(feed_filter_parse_kinds(&f, "crack,posture", &message), 0);
	assert_int_equal(feed_filter_parse_sensors(&f, "c0:ff:ee:00:00:02", &message), 0);
	assert_string_equal(f.sensors[0], "C0:FF:EE:00:00:02");
	assert_true(feed_filter_match(&f, feed_kind_bit("crack"), "C0:FF:EE:00:00:02"));
	assert_false(feed_filter_match(&f, feed_kind_bit("crack"), "C0:FF:EE:00:00:01"));
	assert_false(feed_filter_match(&f, feed_kind_bit("slouch"), "C0:FF:EE:00:00:02"));
	assert_true(feed_filter_match(&f, FEED_KIND_POSTURE, "c0:ff:ee:00:00:02"));
	assert_false(feed_filter_match(&f, FEED_KIND_STATUS, "C0:FF:EE:00:00:02"));
	/* about no sensor in particular: passes a sensor filter, not a kind filter */
	assert_false(feed_filter_match(&f, feed_kind_bit("alert"), ""));
	f.kinds = 0;
	assert_true(feed_filter_match(&f, feed_kind_bit("alert"), ""));
	assert_int_equal(feed_kind_bit("bogus"), 0);
	memset(&f, 0, sizeof(f));
	assert_int_equal(feed_filter_parse_kinds(&f, "", &message), -1);
	assert_int_equal(feed_filter_parse_kinds(&f, "crack,,slouch", &message), -1);
	assert_int_equal(feed_filter_parse_kinds(&f, "crack,", &message), -1);
	assert_int_equal(feed_filter_parse_sensors(&f, "C0:FF:EE:00:00", &message), -1);
	assert_non_null(message);
	memset(&f, 0, sizeof(f));
	{
		char list[17 * 18 + 1] = "";

		for (int i = 0; i < 17; i++)
			strcat(list, i ? ",C0:FF:EE:00:00:01" : "C0:FF:EE:00:00:01");
		assert_int_equal(feed_filter_parse_sensors(&f, list, &message), -1);   /* 17 > 16 */
	}
}

static void test_commands(void **state)
{
	struct feed_command cmd;
	const char *code = NULL, *message = NULL;
	const char *ok = "{\"type\":\"calibrate\",\"sensor\":\"c0:ff:ee:00:00:0a\",\"id\":\"x\\\"y\"}";
	char buf[256];

	(void)state;
	assert_int_equal(feed_parse_command(ok, strlen(ok), &cmd, &code, &message), 0);
	assert_int_equal(cmd.type, FEED_CMD_CALIBRATE);
	assert_string_equal(cmd.sensor, "C0:FF:EE:00:00:0A");   /* normalised */
	assert_string_equal(cmd.tag, "\"x\\\"y\"");            /* echoed as JSON */
	{
		int n = feed_encode_reply(cmd.tag, true, "started", NULL, buf, sizeof(buf) - 1);

		assert_true(n > 0);
		buf[n] = '\0';   /* encoders write no NUL */
	}
	assert_string_equal(buf, "{\"type\":\"reply\",\"id\":\"x\\\"y\",\"ok\":true,\"result\":\"started\"}");
	expect_cmd_error("not json", "bad-json", "null");
	expect_cmd_error("[1,2]", "bad-command", "null");
	expect_cmd_error("{\"id\":5}", "bad-command", "5");
	expect_cmd_error("{\"type\":\"reboot\",\"id\":\"r\"}", "unknown-command", "\"r\"");
	expect_cmd_error("{\"type\":\"ack\",\"id\":1}", "bad-command", "1");
	expect_cmd_error("{\"type\":\"ack\",\"alert\":0}", "bad-command", "null");
	expect_cmd_error("{\"type\":\"ack\",\"alert\":\"4\"}", "bad-command", "null");
	expect_cmd_error("{\"type\":\"calibrate\",\"sensor\":\"C0:FF:EE:00:00\"}", "bad-command", "null");
	expect_cmd_error("{\"type\":\"ack\",\"alert\":1,\"id\":[1]}", "bad-command", "null");
	expect_cmd_error("{\"type\":\"ack\",\"alert\":1,\"alert\":2}", "bad-json", "null");
	expect_cmd_error("{\"type\":\"stats\",\"sensor\":7,\"id\":2}", "bad-command", "2");
	expect_cmd_error("{\"type\":\"annotate\",\"event\":3}", "bad-command", "null");
	expect_cmd_error("{\"type\":\"annotate\",\"event\":3,\"pain\":11}", "bad-command", "null");
	expect_cmd_error("{\"type\":\"annotate\",\"event\":3,\"pain\":2.5}", "bad-command", "null");
	expect_cmd_error("{\"type\":\"annotate\",\"event\":0,\"pain\":2}", "bad-command", "null");
	/* a NUL inside a note: jansson refuses the text outright */
	expect_cmd_error("{\"type\":\"annotate\",\"event\":3,\"note\":\"a\\u0000b\"}", "bad-json",
			 "null");
	{
		char m[400];
		const char *a = "{\"type\":\"annotate\",\"event\":9,\"stiffness\":0,\"pain\":null}";

		assert_int_equal(feed_parse_command(a, strlen(a), &cmd, &code, &message), 0);
		assert_int_equal(cmd.type, FEED_CMD_ANNOTATE);
		assert_int_equal(cmd.stiffness, 0);
		assert_int_equal(cmd.pain, FEED_SCALE_NONE);
		assert_false(cmd.has_note);
		/* a note of 280 bytes is fine, 281 is not */
		snprintf(m, sizeof(m), "{\"type\":\"annotate\",\"event\":9,\"note\":\"%0280d\"}", 0);
		assert_int_equal(feed_parse_command(m, strlen(m), &cmd, &code, &message), 0);
		assert_int_equal(strlen(cmd.note), 280);
		snprintf(m, sizeof(m), "{\"type\":\"annotate\",\"event\":9,\"note\":\"%0281d\"}", 0);
		expect_cmd_error(m, "bad-command", "null");
	}
	{
		const char *st = "{\"type\":\"stats\",\"sensor\":\"c0:ff:ee:00:00:0b\"}";

		assert_int_equal(feed_parse_command(st, strlen(st), &cmd, &code, &message), 0);
		assert_int_equal(cmd.type, FEED_CMD_STATS);
		assert_string_equal(cmd.sensor, "C0:FF:EE:00:00:0B");
		st = "{\"type\":\"stats\"}";
		assert_int_equal(feed_parse_command(st, strlen(st), &cmd, &code, &message), 0);
		assert_string_equal(cmd.sensor, "");
	}
	/* an id of 65 bytes is refused, 64 is fine */
	{
		char m[200];

		snprintf(m, sizeof(m), "{\"type\":\"ack\",\"alert\":1,\"id\":\"%065d\"}", 0);
		expect_cmd_error(m, "bad-command", "null");
		snprintf(m, sizeof(m), "{\"type\":\"ack\",\"alert\":1,\"id\":\"%064d\"}", 0);
		assert_int_equal(feed_parse_command(m, strlen(m), &cmd, &code, &message), 0);
		assert_int_equal(strlen(cmd.tag), 66);
	}
}

/*
 * Found by tests/fuzz/fuzz_feed_command (seed corpus/feed_command/regress-id-escaped): an id
 * of up to 64 bytes is echoed even when JSON needs escapes for all of them (quotes, control
 * characters: up to 6 bytes each); it used to overflow the 72-byte tag and come back as null.
 */
static void check_id_echoed(const char *msg, const char *want_id, size_t want_tag_len)
{
	struct feed_command cmd;
	const char *code = NULL, *message = NULL;
	char buf[1024];
	json_t *r;
	int n;

	assert_int_equal(feed_parse_command(msg, strlen(msg), &cmd, &code, &message), 0);
	assert_int_equal(strlen(cmd.tag), want_tag_len);
	n = feed_encode_reply(cmd.tag, false, "unknown-sensor", "no sensor with that address", buf,
			      sizeof(buf));
	assert_true(n > 0);
	r = json_loadb(buf, (size_t)n, 0, NULL);
	assert_non_null(r);
	assert_string_equal(json_string_value(json_object_get(r, "id")), want_id);
	json_decref(r);
}

static void test_id_escaped_echoed(void **state)
{
	char msg[512], id[65];
	size_t i;

	(void)state;
	/* the corpus file's bytes: 64 quotes */
	snprintf(msg, sizeof(msg), "{\"type\":\"ping\",\"id\":\"");
	for (i = 0; i < 64; i++)
		strcat(msg, "\\\"");
	strcat(msg, "\"}");
	memset(id, '"', 64);
	id[64] = '\0';
	check_id_echoed(msg, id, 2 + 64 * 2);
	/* the worst case: 64 control characters, "\u0001" each */
	snprintf(msg, sizeof(msg), "{\"type\":\"ping\",\"id\":\"");
	for (i = 0; i < 64; i++)
		strcat(msg, "\\u0001");
	strcat(msg, "\"}");
	memset(id, 1, 64);
	check_id_echoed(msg, id, FEED_TAG_MAX);
	/* 65 is still refused */
	snprintf(msg, sizeof(msg), "{\"type\":\"ping\",\"id\":\"");
	for (i = 0; i < 65; i++)
		strcat(msg, "\\u0001");
	strcat(msg, "\"}");
	expect_cmd_error(msg, "bad-command", "null");
}

/* Nesting is capped before parsing: depth 4 parses, depth 5 is refused unparsed; brackets inside strings do not count. */
static void test_command_depth_cap(void **state)
{
	const char *four = "{\"type\":\"ping\",\"id\":1,\"x\":[[[1]]]}";
	const char *five = "{\"type\":\"ping\",\"id\":1,\"x\":[[[[1]]]]}";
	const char *strings = "{\"type\":\"ping\",\"id\":\"[[[[[[{{{{\\\"[[[[\"}";
	struct feed_command cmd;
	const char *code, *message;
	char deep[4096];
	size_t n = 0;
	int i;

	(void)state;
	assert_int_equal(feed_parse_command(four, strlen(four), &cmd, &code, &message), 0);
	assert_int_equal(cmd.type, FEED_CMD_PING);
	assert_int_equal(feed_parse_command(five, strlen(five), &cmd, &code, &message), -1);
	assert_string_equal(code, "bad-command");
	assert_string_equal(message, "the message nests deeper than 4 levels");
	assert_int_equal(feed_parse_command(strings, strlen(strings), &cmd, &code, &message), 0);
	assert_int_equal(cmd.type, FEED_CMD_PING);
	/* 2000 levels: refused as quickly */
	for (i = 0; i < 2000; i++)
		deep[n++] = '[';
	for (i = 0; i < 2000; i++)
		deep[n++] = ']';
	assert_int_equal(feed_parse_command(deep, n, &cmd, &code, &message), -1);
	assert_string_equal(message, "the message nests deeper than 4 levels");
}

/* The hot path's own writer (postures, crack events) against jansson's output
 * for the same message, over many values: byte for byte. */
static void test_hot_path_matches_jansson(void **state)
{
	static const char *const sensors[] = { "C0:FF:EE:00:00:01", "a\"b\\c\n\t\x01\x7f/", "" };
	static const double angles[] = { 0.0, -0.0, 0.04, -0.04, 0.05, 0.15, 12.25, -3.35,
					 179.99, 1e-7, 123456.7, -99999.95, 1.0 / 3.0 };
	char mine[1024], ref[1024];
	unsigned i, j;

	(void)state;
	srand(7);
	for (i = 0; i < 4000; i++) {
		double a = i < 13 ? angles[i] : ((double)rand() / RAND_MAX - 0.5) * 400.0;
		const char *sensor = sensors[i % 3];
		struct feed_posture p = {
			.ts_ms = (int64_t)rand() * 1000 + i, .sensor = sensor, .angle = a,
			.calibrating = i % 7 == 0, .slouching = i % 3 == 1,
			.beyond_ms = rand() % 100000, .sitting_ms = (int64_t)rand() * 3,
		};
		json_t *o = json_pack("{s:s, s:I, s:s, s:f, s:b, s:I, s:b, s:I}", "type", "posture",
				      "ts", (json_int_t)p.ts_ms, "sensor", sensor,
				      "angle", round((p.calibrating ? 0.0 : a) * 10.0) / 10.0,
				      "calibrating", p.calibrating, "beyond_ms", (json_int_t)p.beyond_ms,
				      "slouching", p.slouching, "sitting_ms", (json_int_t)p.sitting_ms);
		size_t n = json_dumpb(o, ref, sizeof(ref), JSON_COMPACT | JSON_REAL_PRECISION(6));
		int m = feed_encode_posture(&p, mine, sizeof(mine));

		json_decref(o);
		if (m < 0 || (size_t)m != n || memcmp(mine, ref, n))
			fail_msg("posture %u: %.*s != %.*s", i, m, mine, (int)n, ref);
		/* too small a buffer fails, never overflows */
		for (j = 0; j < n; j += 7)
			assert_int_equal(feed_encode_posture(&p, mine, j), -1);
	}
	for (i = 0; i < 4000; i++) {
		struct feed_event ev;
		json_t *o;
		size_t n;
		int m;

		memset(&ev, 0, sizeof(ev));
		ev.kind = FEED_EV_CRACK;
		ev.seq = i == 0 ? (1ULL << 60) : (uint64_t)rand() * rand();
		ev.ts_ms = (int64_t)rand() * 1000;
		snprintf(ev.sensor, sizeof(ev.sensor), "%s", sensors[i % 2 ? 0 : 2]);
		ev.crack.kind = (const char *[]){ "pop", "click", "grind" }[i % 3];
		ev.crack.intensity = (unsigned)rand() % 101;
		ev.crack.duration_ms = (unsigned)rand() % 65536;
		ev.crack.count = 1 + (unsigned)rand() % 255;
		ev.crack.heard = i % 2;
		ev.crack.level_dbfs = -((double)rand() / RAND_MAX) * 90.0;
		ev.crack.freq_hz = (unsigned)rand() % 8001;
		o = json_pack("{s:s, s:I, s:I, s:s, s:s, s:s, s:i, s:i, s:i}", "type", "event",
			      "seq", (json_int_t)(ev.seq > (1ULL << 53) ? (1ULL << 53) : ev.seq),
			      "ts", (json_int_t)ev.ts_ms, "sensor", ev.sensor, "kind", "crack",
			      "crack", ev.crack.kind, "intensity", (int)ev.crack.intensity,
			      "duration_ms", (int)ev.crack.duration_ms, "count", (int)ev.crack.count);
		if (ev.crack.heard) {
			json_object_set_new(o, "level_dbfs",
					    json_real(round(ev.crack.level_dbfs * 10.0) / 10.0));
			json_object_set_new(o, "freq_hz", json_integer(ev.crack.freq_hz));
		}
		n = json_dumpb(o, ref, sizeof(ref), JSON_COMPACT | JSON_REAL_PRECISION(6) |
			       JSON_PRESERVE_ORDER);
		json_decref(o);
		m = feed_encode_event(&ev, mine, sizeof(mine));
		if (m < 0 || (size_t)m != n || memcmp(mine, ref, n))
			fail_msg("crack %u: %.*s != %.*s", i, m, mine, (int)n, ref);
	}
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_doc_examples_reencode),
		cmocka_unit_test(test_commands),
		cmocka_unit_test(test_id_escaped_echoed),
		cmocka_unit_test(test_filters),
		cmocka_unit_test(test_small_buffer_fails),
		cmocka_unit_test(test_invalid_utf8),
		cmocka_unit_test(test_reals_rounded),
		cmocka_unit_test(test_command_depth_cap),
		cmocka_unit_test(test_hot_path_matches_jansson),
	};

	if (argc > 1)
		doc_path = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
