/*
 * test_http_api.c - unit tests for daemon/http_api.c's answers (without
 * lws: http_api_respond() on hand-made requests) and for the history
 * queries behind them (daemon/history.c on a real SQLite file): strict and
 * bounded parameters with their error codes, 404 and 405, events from the
 * ring with filters and next_since, recent alerts newest first, events from
 * the database and the write queue in both orders with filters, and per-day
 * rows by range, sensor and bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "history.h"
#include "scratch_dir.h"
#include "http_api.h"
#include "log.h"
#include "store.h"

static int setup(void **state)
{
	(void)state;
	return scratch_make("sw-http");
}

/* GET path?args ("a=1&b=2", split here as lws would) */
static json_t *answer(const struct http_sources *src, bool get, const char *path,
		      const char *query, unsigned *status)
{
	struct http_request req = { .get = get, .path = path };
	struct http_response resp;
	char buf[512], *save = NULL, *frag;
	json_t *o;

	snprintf(buf, sizeof(buf), "%s", query ? query : "");
	for (frag = strtok_r(buf, "&", &save); frag; frag = strtok_r(NULL, "&", &save)) {
		if (req.n_args == HTTP_API_MAX_ARGS) {
			req.too_many_args = true;
			break;
		}
		req.args[req.n_args] = frag;
		req.arg_len[req.n_args++] = strlen(frag);
	}
	http_api_respond(src, &req, &resp);
	assert_non_null(resp.body);
	assert_int_equal(resp.len, strlen(resp.body));
	*status = resp.status;
	if (resp.status == 405)
		assert_string_equal(resp.allow, "GET");
	if (!strcmp(path, HTTP_METRICS_PATH) && resp.status == 200) {
		free(resp.body);
		return json_string("metrics");
	}
	assert_string_equal(resp.content_type, "application/json");
	o = json_loads(resp.body, 0, NULL);
	free(resp.body);
	assert_non_null(o);
	return o;
}

static void expect_error(const struct http_sources *src, const char *path, const char *query,
			 unsigned want_status, const char *want_code)
{
	unsigned status;
	json_t *o = answer(src, true, path, query, &status);
	const char *code = json_string_value(json_object_get(json_object_get(o, "error"), "code"));

	if (status != want_status || !code || strcmp(code, want_code))
		fail_msg("%s?%s: %u %s, want %u %s", path, query ? query : "", status,
			 code ? code : "(none)", want_status, want_code);
	assert_true(json_is_string(json_object_get(json_object_get(o, "error"), "message")));
	json_decref(o);
}

static void add_crack(struct store *st, const char *sensor)
{
	struct feed_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = FEED_EV_CRACK;
	ev.ts_ms = 1764064801234;
	snprintf(ev.sensor, sizeof(ev.sensor), "%s", sensor);
	ev.crack.kind = "pop";
	ev.crack.intensity = 80;
	ev.crack.duration_ms = 120;
	ev.crack.count = 1;
	assert_true(store_add_event(st, &ev) > 0);
}

static void add_alert(struct store *st, uint64_t id)
{
	struct feed_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = FEED_EV_ALERT;
	ev.ts_ms = 1764064801234;
	ev.alert.id = id;
	ev.alert.rule = "no-break";
	ev.alert.severity = "info";
	ev.alert.state = "raised";
	ev.alert.message = "a break";
	ev.alert.raised_ts = ev.ts_ms;
	assert_true(store_add_event(st, &ev) > 0);
}

static uint64_t seq_at(json_t *o, size_t i)
{
	return (uint64_t)json_integer_value(json_object_get(json_array_get(
		json_object_get(o, "events"), i), "seq"));
}

static void test_parameters(void **state)
{
	struct store *st = store_new(16);
	struct http_sources src = { .store = st, .stream_id = "0123456789abcdef", .version = "t" };
	static const struct { const char *path, *query, *code; unsigned status; } bad[] = {
		{ "/api/v1/events", "since=abc", "bad-parameter", 400 },
		{ "/api/v1/events", "since=-1", "bad-parameter", 400 },
		{ "/api/v1/events", "since= 1", "bad-parameter", 400 },
		{ "/api/v1/events", "since=1 ", "bad-parameter", 400 },
		{ "/api/v1/events", "since=18446744073709551616", "bad-parameter", 400 },
		{ "/api/v1/events", "since=", "bad-parameter", 400 },
		{ "/api/v1/events", "since", "bad-parameter", 400 },
		{ "/api/v1/events", "since=1&since=1", "bad-parameter", 400 },
		{ "/api/v1/events", "limit=0", "bad-parameter", 400 },
		{ "/api/v1/events", "limit=1001", "bad-parameter", 400 },
		{ "/api/v1/events", "kind=pop", "bad-parameter", 400 },
		{ "/api/v1/events", "sensor=C0:FF:EE:00:00", "bad-parameter", 400 },
		{ "/api/v1/events", "sensor=C0:FF:EE:00:00:0g", "bad-parameter", 400 },
		{ "/api/v1/events", "sensor=C0:FF:EE:00:00:001", "bad-parameter", 400 },
		{ "/api/v1/events", "sensor=C0:FF:EE-00:00:01", "bad-parameter", 400 },
		{ "/api/v1/events", "sinc=1", "unknown-parameter", 400 },
		{ "/api/v1/events", "a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9", "bad-parameter", 400 },
		{ "/api/v1/sensors", "x=1", "unknown-parameter", 400 },
		{ "/api/v1/alerts", "recent=101", "bad-parameter", 400 },
		{ "/api/v1/stats", "from=2025-02-29", "bad-parameter", 400 },
		{ "/api/v1/stats", "from=2025-1-01", "bad-parameter", 400 },
		{ "/api/v1/stats", "to=2100-01-01", "bad-parameter", 400 },
		{ "/api/v1/stats", "from=2025-01-02&to=2025-01-01", "bad-parameter", 400 },
		{ "/api/v1/stats", "from=2023-01-01&to=2025-01-01", "bad-parameter", 400 },
		{ "/api/v1/stats", "bucket=month", "bad-parameter", 400 },
		{ "/metrics", "x=1", "unknown-parameter", 400 },
		{ "/api/v1", NULL, "not-found", 404 },
		{ "/api/v1/events/", NULL, "not-found", 404 },
		{ "", NULL, "not-found", 404 },
	};
	struct http_request req = { .get = true, .path = "/api/v1/events", .n_args = 1,
				    .args = { "since=1\0x" }, .arg_len = { 9 } };
	struct http_response resp;
	unsigned status;
	size_t i;
	json_t *o;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		expect_error(&src, bad[i].path, bad[i].query, bad[i].status, bad[i].code);
	/* an embedded NUL, a too long parameter */
	http_api_respond(&src, &req, &resp);
	assert_int_equal(resp.status, 400);
	free(resp.body);
	req.arg_len[0] = 7;
	req.arg_too_long = true;
	http_api_respond(&src, &req, &resp);
	assert_int_equal(resp.status, 400);
	free(resp.body);
	/* only GET */
	o = answer(&src, false, "/api/v1/events", NULL, &status);
	assert_int_equal(status, 405);
	json_decref(o);
	o = answer(&src, false, "/metrics", NULL, &status);
	assert_int_equal(status, 405);
	json_decref(o);
	/* good ones */
	o = answer(&src, true, "/api/v1/stats", "from=2024-02-29&to=2026-02-28&bucket=hour", &status);
	assert_int_equal(status, 200);
	assert_string_equal(json_string_value(json_object_get(o, "from")), "2024-02-29");
	json_decref(o);
	o = answer(&src, true, "/metrics", NULL, &status);
	assert_int_equal(status, 200);
	json_decref(o);
	o = answer(&src, true, "/api/v1/sensors", NULL, &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_array_size(json_object_get(o, "sensors")), 0);
	json_decref(o);
	store_free(st);
}

static void test_events_from_ring(void **state)
{
	struct store *st = store_new(8);
	struct http_sources src = { .store = st, .stream_id = "0123456789abcdef", .version = "t" };
	unsigned status;
	json_t *o;
	int i;

	(void)state;
	o = answer(&src, true, "/api/v1/events", NULL, &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_integer_value(json_object_get(o, "next_since")), 0);
	assert_int_equal(json_array_size(json_object_get(o, "events")), 0);
	json_decref(o);
	for (i = 0; i < 12; i++)   /* 1..12: the ring keeps 5..12 */
		add_crack(st, i % 2 ? "C0:FF:EE:00:00:01" : "C0:FF:EE:00:00:02");
	o = answer(&src, true, "/api/v1/events", "since=0&limit=3", &status);
	assert_int_equal(json_array_size(json_object_get(o, "events")), 3);
	assert_int_equal(seq_at(o, 0), 5);
	assert_int_equal(json_integer_value(json_object_get(o, "next_since")), 7);
	assert_int_equal(json_integer_value(json_object_get(o, "last_seq")), 12);
	assert_string_equal(json_string_value(json_object_get(o, "stream")), "0123456789abcdef");
	json_decref(o);
	/* a sensor in lower case; seqs 6, 8, 10, 12 are ...:01 */
	o = answer(&src, true, "/api/v1/events", "sensor=c0:ff:ee:00:00:01&since=6&kind=crack",
		   &status);
	assert_int_equal(json_array_size(json_object_get(o, "events")), 3);
	assert_int_equal(seq_at(o, 0), 8);
	assert_int_equal(json_integer_value(json_object_get(o, "next_since")), 12);
	json_decref(o);
	o = answer(&src, true, "/api/v1/events", "since=99", &status);
	assert_int_equal(json_array_size(json_object_get(o, "events")), 0);
	assert_int_equal(json_integer_value(json_object_get(o, "next_since")), 12);
	json_decref(o);
	/* recent alerts: newest first, from the ring */
	add_alert(st, 1);
	add_crack(st, "C0:FF:EE:00:00:01");
	add_alert(st, 2);
	o = answer(&src, true, "/api/v1/alerts", "recent=5", &status);
	assert_int_equal(status, 200);
	assert_int_equal(json_array_size(json_object_get(o, "recent")), 2);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(
		json_object_get(o, "recent"), 0), "id")), 2);
	json_decref(o);
	o = answer(&src, true, "/api/v1/alerts", "recent=1", &status);
	assert_int_equal(json_array_size(json_object_get(o, "recent")), 1);
	json_decref(o);
	store_free(st);
}

static void add_row(struct history *h, uint64_t seq, const char *kind, const char *sensor)
{
	char json[128];
	int n = snprintf(json, sizeof(json), "{\"seq\":%llu,\"kind\":\"%s\"}",
			 (unsigned long long)seq, kind);

	history_add_event(h, seq, 1000 + (int64_t)seq, kind, sensor, json, (size_t)n);
}

struct got {
	uint64_t seqs[64];
	size_t n;
};

static void got_one(void *user, uint64_t seq, const char *json, size_t len)
{
	struct got *g = user;
	json_t *o = json_loadb(json, len, 0, NULL);

	assert_int_equal(json_integer_value(json_object_get(o, "seq")), seq);
	json_decref(o);
	if (g->n < 64)
		g->seqs[g->n++] = seq;
}

static long query(struct history *h, struct history_query q, struct got *g)
{
	memset(g, 0, sizeof(*g));
	return history_query_events(h, &q, got_one, g);
}

static void test_history_events(void **state)
{
	char err[256];
	struct history *h = history_open(dir, NULL, err, sizeof(err));
	struct got g;
	uint64_t s;

	(void)state;
	assert_non_null(h);
	/* 1..10 written, 11..14 still queued; even seqs are sensor B, every third an alert */
	for (s = 1; s <= 14; s++) {
		add_row(h, s, s % 3 ? "crack" : "alert", s % 2 ? "C0:FF:EE:00:00:0A" :
			"C0:FF:EE:00:00:0B");
		if (s == 10)
			assert_int_equal(history_flush(h), 0);
	}
	assert_int_equal(query(h, (struct history_query){ .limit = 100 }, &g), 14);
	assert_int_equal(g.seqs[0], 1);
	assert_int_equal(g.seqs[13], 14);
	assert_int_equal(query(h, (struct history_query){ .since = 8, .limit = 4 }, &g), 4);
	assert_int_equal(g.seqs[0], 9);
	assert_int_equal(g.seqs[3], 12);
	assert_int_equal(query(h, (struct history_query){ .limit = 100, .kind = "alert" }, &g), 4);
	assert_int_equal(g.seqs[3], 12);
	assert_int_equal(query(h, (struct history_query){ .limit = 100, .kind = "alert",
				     .sensor = "C0:FF:EE:00:00:0B" }, &g), 2);
	assert_int_equal(g.seqs[0], 6);
	assert_int_equal(g.seqs[1], 12);
	assert_int_equal(query(h, (struct history_query){ .limit = 100,
				     .sensor = "C0:FF:EE:00:00:0C" }, &g), 0);
	/* newest first: the queue, then the database */
	assert_int_equal(query(h, (struct history_query){ .limit = 6, .newest_first = true }, &g),
			 6);
	assert_int_equal(g.seqs[0], 14);
	assert_int_equal(g.seqs[5], 9);
	assert_int_equal(query(h, (struct history_query){ .limit = 3, .kind = "alert",
				     .newest_first = true }, &g), 3);
	assert_int_equal(g.seqs[0], 12);
	assert_int_equal(g.seqs[2], 6);
	assert_int_equal(query(h, (struct history_query){ .limit = 100, .before = 5,
				     .newest_first = true }, &g), 4);
	assert_int_equal(g.seqs[0], 4);
	assert_int_equal(query(h, (struct history_query){ .since = UINT64_MAX, .limit = 5 }, &g),
			 0);
	/* the limit is bounded */
	assert_int_equal(query(h, (struct history_query){ .limit = 0 }, &g), 0);
	history_close(h);
}

struct days {
	char rows[16][64];
	size_t n;
};

static void day_one(void *user, const char *sensor, const char *date, const char *json)
{
	struct days *d = user;
	json_t *o = json_loads(json, 0, NULL);

	assert_true(json_is_object(o));
	json_decref(o);
	if (d->n < 16)
		snprintf(d->rows[d->n++], 64, "%s %s", sensor, date);
}

static void test_history_days(void **state)
{
	char err[256];
	struct history *h = history_open(dir, NULL, err, sizeof(err));
	struct days d = { .n = 0 };
	const char *record =
		"{\"v\":1,\"sensors\":[{\"sensor\":\"C0:FF:EE:00:00:0A\",\"days\":["
		"{\"date\":\"2025-11-20\",\"pop\":1},{\"date\":\"2025-11-24\",\"pop\":2},"
		"{\"date\":\"2025-11-25\",\"pop\":3}]},{\"sensor\":\"C0:FF:EE:00:00:0B\",\"days\":["
		"{\"date\":\"2025-11-24\",\"pop\":4}]}]}";

	(void)state;
	assert_non_null(h);
	assert_int_equal(history_save_days(h, record), 0);
	assert_int_equal(history_query_days(h, "2025-11-21", "2025-11-25", NULL, 100, day_one, &d),
			 3);
	assert_string_equal(d.rows[0], "C0:FF:EE:00:00:0A 2025-11-24");
	assert_string_equal(d.rows[1], "C0:FF:EE:00:00:0A 2025-11-25");
	assert_string_equal(d.rows[2], "C0:FF:EE:00:00:0B 2025-11-24");
	d.n = 0;
	assert_int_equal(history_query_days(h, "2025-11-01", "2025-11-24", "C0:FF:EE:00:00:0A", 100,
					    day_one, &d), 2);
	assert_string_equal(d.rows[0], "C0:FF:EE:00:00:0A 2025-11-20");
	d.n = 0;
	assert_int_equal(history_query_days(h, "2025-11-01", "2025-11-30", NULL, 3, day_one, &d),
			 -2);
	assert_int_equal(d.n, 0);
	assert_int_equal(history_query_days(h, "2025-11-01", "2025-11-30", NULL, 4, day_one, &d),
			 4);
	history_close(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parameters),
		cmocka_unit_test(test_events_from_ring),
		cmocka_unit_test_setup_teardown(test_history_events, setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_history_days, setup, scratch_teardown),
	};

	log_init(LOG_WARNING);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
