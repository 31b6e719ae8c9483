/*
 * fuzz_http_query.c - libFuzzer target for the HTTP API's query parameters
 * (daemon/http_api.c through its pure entry point http_api_respond(); the
 * rules are in protocol/http-api.md: known names only, each once, with a
 * value, bounded numbers, addresses, dates, kinds, buckets).
 *
 * Input: the first byte picks the endpoint (low 3 bits) and whether the
 * method is GET (bit 3); the rest is the query string, split on '&' into
 * fragments as read_request() gets them from lws (empty ones and "/"
 * skipped, a fragment over HTTP_API_MAX_ARG_LEN bytes or more than
 * HTTP_API_MAX_ARGS of them flagged; NUL bytes kept, so arg_len can differ
 * from strlen). The sources are a small ring with two events and nothing
 * else. Checks: every answer has a status the document lists and a body;
 * a JSON answer parses; errors carry a known code and a message of printable
 * ASCII (never the request's raw bytes); a 200 for events is consistent.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "feed_json.h"
#include "http_api.h"
#include "metrics.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static void add_events(struct store *st)
{
	struct feed_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = FEED_EV_CRACK;
	ev.ts_ms = 1764064801234;
	snprintf(ev.sensor, sizeof(ev.sensor), "C0:FF:EE:00:00:02");
	ev.crack.kind = "pop";
	ev.crack.intensity = 80;
	ev.crack.duration_ms = 120;
	ev.crack.count = 1;
	CHECK(store_add_event(st, &ev) > 0);
	memset(&ev, 0, sizeof(ev));
	ev.kind = FEED_EV_ALERT;
	ev.ts_ms = 1764064802234;
	ev.alert.id = 1;
	ev.alert.rule = "no-break";
	ev.alert.severity = "info";
	ev.alert.state = "raised";
	ev.alert.message = "a break";
	ev.alert.raised_ts = ev.ts_ms;
	CHECK(store_add_event(st, &ev) > 0);
}

static void check_error(json_t *o, unsigned status)
{
	json_t *e = json_object_get(o, "error");
	const char *code = json_string_value(json_object_get(e, "code"));
	const char *msg = json_string_value(json_object_get(e, "message")), *p;

	CHECK(code && msg && *msg);
	for (p = msg; *p; p++)
		CHECK(*p >= 0x20 && *p <= 0x7e);
	switch (status) {
	case 400:
		CHECK(!strcmp(code, "bad-parameter") || !strcmp(code, "unknown-parameter"));
		break;
	case 404:
		CHECK(!strcmp(code, "not-found"));
		break;
	case 405:
		CHECK(!strcmp(code, "method-not-allowed"));
		break;
	default:
		CHECK(0);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = {
		HTTP_API_PATH "/events", HTTP_API_PATH "/sensors", HTTP_API_PATH "/alerts",
		HTTP_API_PATH "/stats", HTTP_METRICS_PATH, HTTP_API_PATH, HTTP_API_PATH "/events/",
		"/",
	};
	char args[HTTP_API_MAX_ARGS][HTTP_API_MAX_ARG_LEN + 1];
	struct http_request req;
	struct http_response resp;
	struct http_sources src = { .stream_id = "0123456789abcdef", .version = "fuzz" };
	const uint8_t *q, *end = data + size;
	json_t *o;

	if (size < 1)
		return 0;
	memset(&req, 0, sizeof(req));
	req.path = paths[data[0] & 7];
	req.get = !(data[0] & 8);
	for (q = data + 1; q <= end && !req.too_many_args && !req.arg_too_long;) {
		const uint8_t *amp = memchr(q, '&', (size_t)(end - q));
		size_t n = (size_t)((amp ? amp : end) - q);

		if (n > HTTP_API_MAX_ARG_LEN) {
			req.arg_too_long = true;
		} else if (n && !(n == 1 && q[0] == '/')) {
			if (req.n_args == HTTP_API_MAX_ARGS) {
				req.too_many_args = true;
			} else {
				memcpy(args[req.n_args], q, n);
				args[req.n_args][n] = '\0';
				req.args[req.n_args] = args[req.n_args];
				req.arg_len[req.n_args++] = n;
			}
		}
		if (!amp)
			break;
		q = amp + 1;
	}

	src.store = store_new(8);
	CHECK(src.store);
	add_events(src.store);
	http_api_respond(&src, &req, &resp);

	CHECK(resp.body && resp.len == strlen(resp.body));
	CHECK(resp.status == 200 || resp.status == 400 || resp.status == 404 ||
	      resp.status == 405);
	CHECK((resp.status == 405) == (resp.allow != NULL));
	if (resp.status == 200 && !strcmp(req.path, HTTP_METRICS_PATH)) {
		CHECK(!strcmp(resp.content_type, METRICS_CONTENT_TYPE));
	} else {
		CHECK(!strcmp(resp.content_type, "application/json"));
		o = json_loadb(resp.body, resp.len, 0, NULL);
		CHECK(json_is_object(o));
		if (resp.status != 200) {
			check_error(o, resp.status);
		} else if (!strcmp(req.path, HTTP_API_PATH "/events")) {
			json_int_t last = json_integer_value(json_object_get(o, "last_seq"));
			json_int_t next = json_integer_value(json_object_get(o, "next_since"));
			json_t *events = json_object_get(o, "events"), *ev;
			size_t i;

			CHECK(last == 2 && next >= 0 && next <= last);
			CHECK(json_is_array(events) && json_array_size(events) <= 2);
			json_array_foreach(events, i, ev) {
				json_int_t seq = json_integer_value(json_object_get(ev, "seq"));

				CHECK(seq >= 1 && seq <= last);
			}
		}
		json_decref(o);
	}
	free(resp.body);
	store_free(src.store);
	return 0;
}
