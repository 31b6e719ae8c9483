/*
 * test_metrics.c - unit tests for daemon/metrics.c: label values escaped as
 * the Prometheus text format 0.0.4 says (and kept to valid UTF-8), every
 * sample under its family's HELP and TYPE, events counted by kind and
 * sensor in the store (with the bound on sensors), and the families that
 * need a history database left out without one.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_api.h"
#include "log.h"
#include "metrics.h"
#include "store.h"

static char *escaped(const char *in)
{
	static char buf[256];
	FILE *f;

	memset(buf, 0, sizeof(buf));
	f = fmemopen(buf, sizeof(buf) - 1, "w");

	assert_non_null(f);
	metrics_write_label_value(f, in);
	fclose(f);
	return buf;
}

static void test_label_values(void **state)
{
	(void)state;
	assert_string_equal(escaped("C0:FF:EE:00:00:01"), "C0:FF:EE:00:00:01");
	assert_string_equal(escaped("a\"b"), "a\\\"b");
	assert_string_equal(escaped("a\\b"), "a\\\\b");
	assert_string_equal(escaped("a\nb"), "a\\nb");
	assert_string_equal(escaped("tab\there\r\x7f"), "tab?here??");
	assert_string_equal(escaped("caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x98\x80"),
			    "caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x98\x80");
	/* not UTF-8: a lone continuation, a cut sequence, overlong, a surrogate, beyond U+10FFFF */
	assert_string_equal(escaped("\x80x"), "?x");
	assert_string_equal(escaped("\xc3"), "?");
	assert_string_equal(escaped("\xc0\xaf"), "??");
	assert_string_equal(escaped("\xed\xa0\x80"), "???");
	assert_string_equal(escaped("\xf4\x90\x80\x80"), "????");
	assert_string_equal(escaped(""), "");
	assert_string_equal(escaped(NULL), "");
}

/* Every sample line's name has had its HELP and TYPE; returns the text's value of `series`
 * (a whole sample line up to the value), or -1. */
static long long check_text(const char *text, const char *series)
{
	char *copy = strdup(text), *save = NULL, *line, family[128] = "";
	long long found = -1;
	bool help = false;

	assert_non_null(copy);
	assert_true(strlen(text) > 0 && text[strlen(text) - 1] == '\n');
	for (line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		size_t n;

		if (!strncmp(line, "# HELP ", 7)) {
			n = strcspn(line + 7, " ");
			assert_true(n < sizeof(family));
			memcpy(family, line + 7, n);
			family[n] = '\0';
			help = true;
			continue;
		}
		if (!strncmp(line, "# TYPE ", 7)) {
			assert_true(help);
			assert_memory_equal(line + 7, family, strlen(family));
			assert_true(!strcmp(line + 7 + strlen(family), " counter") ||
				    !strcmp(line + 7 + strlen(family), " gauge"));
			if (!strcmp(line + 7 + strlen(family), " counter"))
				assert_string_equal(family + strlen(family) - 6, "_total");
			help = false;
			continue;
		}
		n = strcspn(line, "{ ");
		if (n != strlen(family) || strncmp(line, family, n))
			fail_msg("sample outside its family %s: %s", family, line);
		if (!strncmp(line, series, strlen(series)) && line[strlen(series)] == ' ')
			found = atoll(line + strlen(series) + 1);
	}
	free(copy);
	return found;
}

static void add(struct store *st, enum feed_event_kind kind, const char *sensor)
{
	struct feed_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.ts_ms = 1764064801234;
	snprintf(ev.sensor, sizeof(ev.sensor), "%s", sensor);
	if (kind == FEED_EV_CRACK) {
		ev.crack.kind = "click";
		ev.crack.count = 1;
	} else {
		ev.kind = FEED_EV_CALIBRATION;
		ev.calibration.result = "done";
	}
	assert_true(store_add_event(st, &ev) > 0);
}

static void test_render(void **state)
{
	struct store *st = store_new(4);
	struct http_sources src = { .store = st, .version = "9.9\"x", .started_ms = 1764064800000 };
	const struct store_event_count *c;
	char sensor[32], *text;
	size_t len;
	int i;

	(void)state;
	add(st, FEED_EV_CRACK, "C0:FF:EE:00:00:02");
	add(st, FEED_EV_CRACK, "C0:FF:EE:00:00:02");
	add(st, FEED_EV_CALIBRATION, "C0:FF:EE:00:00:01");
	for (i = 0; i < STORE_COUNTED_SENSORS + 5; i++) {   /* beyond the bound: "other" */
		snprintf(sensor, sizeof(sensor), "AA:00:00:00:%02X:%02X", i / 256, i % 256);
		add(st, FEED_EV_CRACK, sensor);
	}
	assert_int_equal(store_event_counts(st, &c), STORE_COUNTED_SENSORS + 1);
	assert_string_equal(c[STORE_COUNTED_SENSORS].sensor, "other");
	assert_int_equal(c[STORE_COUNTED_SENSORS].by_kind[FEED_EV_CRACK], 7);

	text = metrics_render(&src, &len);
	assert_non_null(text);
	assert_int_equal(len, strlen(text));
	assert_int_equal(check_text(text, "spinewatch_events_total{kind=\"crack\","
				    "sensor=\"C0:FF:EE:00:00:02\"}"), 2);
	assert_int_equal(check_text(text, "spinewatch_events_total{kind=\"calibration\","
				    "sensor=\"C0:FF:EE:00:00:01\"}"), 1);
	assert_int_equal(check_text(text, "spinewatch_events_total{kind=\"crack\","
				    "sensor=\"other\"}"), 7);
	assert_int_equal(check_text(text, "spinewatch_build_info{version=\"9.9\\\"x\"}"), 1);
	assert_int_equal(check_text(text, "spinewatch_start_time_seconds"), 1764064800);
	assert_int_equal(check_text(text, "spinewatch_ring_capacity"), 4);
	assert_int_equal(check_text(text, "spinewatch_ring_events"), 4);
	/* the area: 320 bytes an event, two of the largest (RING_PRE + 1024, aligned) */
	assert_int_equal(check_text(text, "spinewatch_ring_bytes"), 4 * 320 + 2 * 1048);
	assert_int_equal(check_text(text, "spinewatch_ring_last_seq"), STORE_COUNTED_SENSORS + 8);
	assert_int_equal(check_text(text, "spinewatch_sensors{state=\"streaming\"}"), 0);
	assert_int_equal(check_text(text, "spinewatch_alerts_raised_total{rule=\"no-break\"}"), 0);
	assert_int_equal(check_text(text, "spinewatch_feed_clients"), 0);
	assert_null(strstr(text, "spinewatch_history_"));   /* no history database */
	free(text);
	store_free(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_label_values),
		cmocka_unit_test(test_render),
	};

	log_init(LOG_WARNING);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
