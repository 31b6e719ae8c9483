/*
 * http_api.c - /api/v1 and /metrics on the dashboard's port (see
 * http_api.h; the API: protocol/http-api.md).
 */
#include "http_api.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "alert_center.h"
#include "feed.h"
#include "history.h"
#include "log.h"
#include "metrics.h"
#include "sensors.h"
#include "stats_keeper.h"
#include "store.h"

#define JSON_TYPE "application/json"
#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(6))   /* as feed_json.c */
#define DAY_S 86400LL
#define ALERTS_LISTED 64

struct http_api {
	struct http_sources src;
	struct lws_protocols proto;
	struct log_ratelimit rl;
};

/* per HTTP connection: the response body being written */
struct http_pss {
	char *body;
	size_t len, off;
	bool wait_body;      /* the request has a body: answer once it is read */
	size_t body_read;
};

#define HTTP_API_MAX_BODY 65536   /* request body bytes read (and ignored) before closing */

/* ---- responses ---------------------------------------------------------------- */

static void respond_text(struct http_response *out, unsigned status, const char *type,
			 char *body, size_t len)
{
	out->status = status;
	out->content_type = type;
	out->body = body;
	out->len = len;
}

/* A fixed body for when even an error cannot be built. */
static void respond_oom(struct http_response *out)
{
	static const char oom[] = "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}";

	respond_text(out, 500, JSON_TYPE, strdup(oom), sizeof(oom) - 1);
	if (!out->body)
		out->len = 0;
}

/* Takes o (may be NULL: out of memory). */
static void respond_json(struct http_response *out, unsigned status, json_t *o)
{
	char *text = o ? json_dumps(o, DUMP_FLAGS) : NULL;

	json_decref(o);
	if (!text) {
		respond_oom(out);
		return;
	}
	respond_text(out, status, JSON_TYPE, text, strlen(text));
}

/* message: ours, never a copy of the request's bytes unchecked */
static void respond_error(struct http_response *out, unsigned status, const char *code,
			  const char *message)
{
	respond_json(out, status, json_pack("{s:{s:s, s:s}}", "error", "code", code, "message",
					    message));
}

/* ---- query parameters ---------------------------------------------------------- */

struct params {
	size_t n;
	const char *name[HTTP_API_MAX_ARGS];
	size_t name_len[HTTP_API_MAX_ARGS];
	const char *value[HTTP_API_MAX_ARGS];
};

/* A parameter name safe to repeat in a message: [a-z_]{1,24}. */
static bool plain_name(const char *s, size_t n)
{
	size_t i;

	if (!n || n > 24)
		return false;
	for (i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || s[i] == '_'))
			return false;
	return true;
}

/* Splits the query into known parameters: false with the error response set. */
static bool get_params(const struct http_request *req, const char *const *allowed,
		       const char *usage, struct params *p, struct http_response *out)
{
	char msg[160];
	size_t i, k;

	memset(p, 0, sizeof(*p));
	if (req->too_many_args || req->arg_too_long) {
		respond_error(out, 400, "bad-parameter", req->too_many_args ?
			      "too many query parameters" : "a query parameter is too long");
		return false;
	}
	for (i = 0; i < req->n_args; i++) {
		const char *a = req->args[i], *eq;
		size_t nl;
		bool known = false;

		if (req->arg_len[i] != strlen(a)) {
			respond_error(out, 400, "bad-parameter", "a query parameter contains a NUL byte");
			return false;
		}
		if (!*a)
			continue;   /* "?&limit=5": an empty fragment */
		if (!strncmp(a, "token=", 6))
			continue;   /* the access token: the gate (gate.h) has seen to it */
		eq = strchr(a, '=');
		nl = eq ? (size_t)(eq - a) : strlen(a);
		for (k = 0; allowed[k] && !known; k++)
			known = strlen(allowed[k]) == nl && !strncmp(allowed[k], a, nl);
		if (!known) {
			if (plain_name(a, nl))
				snprintf(msg, sizeof(msg), "unknown parameter '%.*s'; %s", (int)nl, a, usage);
			else
				snprintf(msg, sizeof(msg), "unknown parameter; %s", usage);
			respond_error(out, 400, "unknown-parameter", msg);
			return false;
		}
		if (!eq || !eq[1]) {
			snprintf(msg, sizeof(msg), "%.*s needs a value", (int)nl, a);
			respond_error(out, 400, "bad-parameter", msg);
			return false;
		}
		for (k = 0; k < p->n; k++) {
			if (p->name_len[k] == nl && !strncmp(p->name[k], a, nl)) {
				snprintf(msg, sizeof(msg), "%.*s is given twice", (int)nl, a);
				respond_error(out, 400, "bad-parameter", msg);
				return false;
			}
		}
		p->name[p->n] = a;
		p->name_len[p->n] = nl;
		p->value[p->n++] = eq + 1;
	}
	return true;
}

static const char *param(const struct params *p, const char *name)
{
	size_t i, nl = strlen(name);

	for (i = 0; i < p->n; i++)
		if (p->name_len[i] == nl && !strncmp(p->name[i], name, nl))
			return p->value[i];
	return NULL;
}

/* Decimal digits only (no sign, space or prefix), at most 20 of them, no overflow. */
static bool parse_u64(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!s || *s < '0' || *s > '9' || strlen(s) > 20)
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return false;
	*out = v;
	return true;
}

/* An unsigned parameter within [lo, hi], or its default when absent. */
static bool uint_param(const struct params *p, const char *name, uint64_t lo, uint64_t hi,
		       uint64_t def, uint64_t *out, struct http_response *resp)
{
	const char *v = param(p, name);
	char msg[128];

	*out = def;
	if (!v)
		return true;
	if (parse_u64(v, out) && *out >= lo && *out <= hi)
		return true;
	if (hi == UINT64_MAX)
		snprintf(msg, sizeof(msg), "%s must be a decimal integer", name);
	else
		snprintf(msg, sizeof(msg), "%s must be a whole number from %llu to %llu", name,
			 (unsigned long long)lo, (unsigned long long)hi);
	respond_error(resp, 400, "bad-parameter", msg);
	return false;
}

/* "AA:BB:CC:DD:EE:FF" in either case; out gets the upper-case form. */
static bool parse_address(const char *s, char out[FEED_ADDRESS_LEN])
{
	size_t i;

	if (strlen(s) != FEED_ADDRESS_LEN - 1)
		return false;
	for (i = 0; i < FEED_ADDRESS_LEN - 1; i++) {
		char c = s[i];

		if (i % 3 == 2) {
			if (c != ':')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') ||
			     (c >= 'a' && c <= 'f'))) {
			return false;
		}
		out[i] = c >= 'a' && c <= 'f' ? (char)(c - 'a' + 'A') : c;
	}
	out[FEED_ADDRESS_LEN - 1] = '\0';
	return true;
}

static bool sensor_param(const struct params *p, char out[FEED_ADDRESS_LEN], bool *given,
			 struct http_response *resp)
{
	const char *v = param(p, "sensor");

	*given = v != NULL;
	if (!v || parse_address(v, out))
		return true;
	respond_error(resp, 400, "bad-parameter",
		      "sensor must be a Bluetooth address like C0:FF:EE:00:00:01");
	return false;
}

/* Dates are days since 1970-01-01 of a calendar date (the local date's
 * number: a date, not an instant). */
static bool parse_date(const char *s, int64_t *day)
{
	struct tm tm, back;
	time_t t;
	size_t i;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return false;
	for (i = 0; i < 10; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return false;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = atoi(s) - 1900;
	tm.tm_mon = atoi(s + 5) - 1;
	tm.tm_mday = atoi(s + 8);
	tm.tm_hour = 12;
	if (tm.tm_year < 70 || tm.tm_year > 199)
		return false;   /* 1970 .. 2099 */
	back = tm;
	t = timegm(&back);   /* normalises back: 2025-02-30 becomes 2025-03-02 */
	if (t == (time_t)-1 || back.tm_year != tm.tm_year || back.tm_mon != tm.tm_mon ||
	    back.tm_mday != tm.tm_mday)
		return false;
	*day = (int64_t)t / DAY_S;
	return true;
}

static void format_date(int64_t day, char out[16])
{
	time_t t = (time_t)(day * DAY_S + 12 * 3600);
	struct tm tm;

	if (!gmtime_r(&t, &tm) || !strftime(out, 16, "%Y-%m-%d", &tm))
		snprintf(out, 16, "1970-01-01");
}

static int64_t local_today(void)
{
	time_t now = (time_t)(clock_epoch_ms() / 1000);
	struct tm tm;

	if (!localtime_r(&now, &tm))
		return (int64_t)now / DAY_S;
	tm.tm_hour = 12;
	tm.tm_min = tm.tm_sec = 0;
	tm.tm_isdst = 0;
	return (int64_t)timegm(&tm) / DAY_S;
}

/* ---- events ------------------------------------------------------------------------ */

static const char *kind_name(const char *s)
{
	int k;

	for (k = 0; k < STORE_KINDS; k++)
		if (!strcmp(s, store_kind_name((enum feed_event_kind)k)))
			return store_kind_name((enum feed_event_kind)k);
	return NULL;
}

struct collect {
	json_t *events;
	uint64_t last_seq;    /* the last one looked at */
	size_t n;             /* how many looked at */
	bool oom;
};

static void collect_row(void *user, uint64_t seq, const char *json, size_t len)
{
	struct collect *c = user;
	json_t *o = json_loadb(json, len, 0, NULL);

	c->last_seq = seq;
	c->n++;
	if (json_is_object(o)) {
		if (json_array_append_new(c->events, o))
			c->oom = true;
	} else {
		json_decref(o);   /* not ours any more: left out */
	}
}

/* Whether a ring record (an encoded event) passes the filters: the parsed
 * object (a new reference), else NULL. */
static json_t *ring_match(const unsigned char *data, size_t len, const char *kind,
			  const char *sensor)
{
	char needle[64];
	json_t *o;
	const char *k, *s;

	/* cheap first: the encoder writes "kind":"crack" (a string value cannot hold an
	 * unescaped quote, so a note cannot fake it); parse only what may match */
	if (kind && (snprintf(needle, sizeof(needle), "\"kind\":\"%s\"", kind) < 0 ||
		     !memmem(data, len, needle, strlen(needle))))
		return NULL;
	if (sensor && (snprintf(needle, sizeof(needle), "\"sensor\":\"%s\"", sensor) < 0 ||
		       !memmem(data, len, needle, strlen(needle))))
		return NULL;
	o = json_loadb((const char *)data, len, 0, NULL);
	k = json_string_value(json_object_get(o, "kind"));
	s = json_string_value(json_object_get(o, "sensor"));

	if (!json_is_object(o) || (kind && (!k || strcmp(k, kind))) ||
	    (sensor && (!s || strcmp(s, sensor)))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Oldest first after since: at most limit; c->last_seq is how far it got. */
static int events_from_ring(const struct store *store, uint64_t since, size_t limit,
			    const char *kind, const char *sensor, struct collect *c)
{
	const struct ring *r = store_events(store);
	uint64_t cursor = since;
	size_t scanned = 0, got = 0;

	while (got < limit && scanned < HTTP_API_RING_SCAN_MAX) {
		const unsigned char *data;
		size_t len;
		struct ring_gap gap;
		enum ring_read_result rr = ring_read(r, &cursor, &data, &len, &gap);
		json_t *o;

		if (rr == RING_EMPTY)
			break;
		if (rr == RING_GAP)
			continue;   /* overwritten: gone */
		scanned++;
		o = ring_match(data, len, kind, sensor);
		if (o) {
			if (json_array_append_new(c->events, o))
				return -1;
			got++;
		}
	}
	c->last_seq = cursor;
	c->n = got;
	return 0;
}

/* The newest limit matching ones, newest first, from the last
 * HTTP_API_RING_SCAN_MAX records. */
static int events_from_ring_newest(const struct store *store, size_t limit, const char *kind,
				   json_t *out)
{
	const struct ring *r = store_events(store);
	uint64_t last = ring_last_seq(r), oldest = ring_oldest_seq(r);
	uint64_t cursor = last > HTTP_API_RING_SCAN_MAX ? last - HTTP_API_RING_SCAN_MAX : 0;
	json_t **keep;
	size_t n = 0, head = 0, i;
	int rc = 0;

	if (!limit || !oldest)
		return 0;
	keep = calloc(limit, sizeof(*keep));
	if (!keep)
		return -1;
	if (cursor < oldest - 1)
		cursor = oldest - 1;
	for (;;) {
		const unsigned char *data;
		size_t len;
		struct ring_gap gap;
		enum ring_read_result rr = ring_read(r, &cursor, &data, &len, &gap);
		json_t *o;

		if (rr == RING_EMPTY)
			break;
		if (rr == RING_GAP)
			continue;
		o = ring_match(data, len, kind, NULL);
		if (!o)
			continue;
		if (n == limit) {   /* keep[head] is the oldest kept: replace it */
			json_decref(keep[head]);
			keep[head] = o;
			head = (head + 1) % limit;
		} else {
			keep[n++] = o;
		}
	}
	for (i = n; i-- > 0;) {
		json_t *o = keep[(head + i) % n];

		if (!rc && json_array_append(out, o))
			rc = -1;
		json_decref(o);
	}
	free(keep);
	return rc;
}

static void api_events(const struct http_sources *src, const struct http_request *req,
		       struct http_response *out)
{
	static const char *const allowed[] = { "since", "limit", "kind", "sensor", NULL };
	const char *usage = "this endpoint takes since, limit, kind and sensor";
	struct params p;
	uint64_t since, limit, last = ring_last_seq(store_events(src->store)), next;
	char sensor[FEED_ADDRESS_LEN];
	const char *kind = NULL;
	bool has_sensor;
	struct collect c = { 0 };
	json_t *o;

	if (!get_params(req, allowed, usage, &p, out) ||
	    !uint_param(&p, "since", 0, UINT64_MAX, 0, &since, out) ||
	    !uint_param(&p, "limit", 1, HTTP_API_MAX_LIMIT, HTTP_API_DEFAULT_LIMIT, &limit, out) ||
	    !sensor_param(&p, sensor, &has_sensor, out))
		return;
	if (param(&p, "kind") && !(kind = kind_name(param(&p, "kind")))) {
		respond_error(out, 400, "bad-parameter", "kind must be one of crack, slouch, sensor, "
			      "alert, calibration, annotation");
		return;
	}
	if (since > last)
		since = last;   /* as the feed does */
	c.events = json_array();
	if (!c.events) {
		respond_oom(out);
		return;
	}
	if (src->history) {
		struct history_query q = {
			.since = since, .limit = (size_t)limit, .kind = kind,
			.sensor = has_sensor ? sensor : NULL,
		};

		if (history_query_events(src->history, &q, collect_row, &c) < 0) {
			json_decref(c.events);
			respond_error(out, 500, "internal", "the history database cannot be read");
			return;
		}
		/* a full page: go on after its last; else everything up to last was seen */
		next = c.n == limit ? c.last_seq : last;
	} else {
		if (events_from_ring(src->store, since, (size_t)limit, kind,
				     has_sensor ? sensor : NULL, &c) < 0)
			c.oom = true;
		next = c.last_seq;
	}
	if (c.oom) {
		json_decref(c.events);
		respond_oom(out);
		return;
	}
	o = json_pack("{s:s, s:I, s:I, s:o}", "stream", src->stream_id ? src->stream_id : "",
		      "last_seq", (json_int_t)last, "next_since", (json_int_t)next,
		      "events", c.events);
	respond_json(out, 200, o);
}

/* ---- sensors and alerts (hello's lists, by hello's encoder) --------------------------- */

static json_t *hello_lists(const struct http_sources *src, bool want_sensors, bool want_alerts)
{
	struct feed_sensor_info sensors[SENSORS_MAX];
	struct feed_alert_info alerts[ALERTS_LISTED];
	struct feed_hello h = {
		.version = src->version ? src->version : "",
		.stream = src->stream_id ? src->stream_id : "",
		.ts_ms = clock_epoch_ms(),
		.sensors = sensors,
		.alerts = alerts,
	};
	size_t len;
	char *text;
	json_t *o;

	if (want_sensors && src->sensors)
		h.n_sensors = sensors_snapshot(src->sensors, sensors, SENSORS_MAX);
	if (want_alerts && src->alerts)
		h.n_alerts = alert_center_active(src->alerts, alerts, ALERTS_LISTED);
	text = feed_encode_hello(&h, &len);
	if (!text)
		return NULL;
	o = json_loadb(text, len, 0, NULL);
	free(text);
	return o;
}

static void api_sensors(const struct http_sources *src, const struct http_request *req,
			struct http_response *out)
{
	static const char *const allowed[] = { NULL };
	struct params p;
	json_t *h;

	if (!get_params(req, allowed, "this endpoint takes none", &p, out))
		return;
	h = hello_lists(src, true, false);
	respond_json(out, 200, h ? json_pack("{s:O, s:O}", "ts", json_object_get(h, "ts"),
					     "sensors", json_object_get(h, "sensors")) : NULL);
	json_decref(h);
}

static void api_alerts(const struct http_sources *src, const struct http_request *req,
		       struct http_response *out)
{
	static const char *const allowed[] = { "recent", NULL };
	struct params p;
	uint64_t recent;
	json_t *h, *list;
	int rc = 0;

	if (!get_params(req, allowed, "this endpoint takes recent", &p, out) ||
	    !uint_param(&p, "recent", 0, HTTP_API_MAX_RECENT, HTTP_API_DEFAULT_RECENT, &recent, out))
		return;
	list = json_array();
	if (!list) {
		respond_oom(out);
		return;
	}
	if (recent && src->history) {
		struct history_query q = {
			.limit = (size_t)recent, .kind = "alert", .newest_first = true,
		};
		struct collect c = { .events = list };

		rc = history_query_events(src->history, &q, collect_row, &c) < 0 ? -1 :
		     c.oom ? -2 : 0;
	} else if (recent) {
		rc = events_from_ring_newest(src->store, (size_t)recent, "alert", list) ? -2 : 0;
	}
	if (rc) {
		json_decref(list);
		if (rc == -1)
			respond_error(out, 500, "internal", "the history database cannot be read");
		else
			respond_oom(out);
		return;
	}
	h = hello_lists(src, false, true);
	respond_json(out, 200, h ? json_pack("{s:O, s:O, s:o}", "ts", json_object_get(h, "ts"),
					     "alerts", json_object_get(h, "alerts"), "recent",
					     list) : NULL);
	if (!h)
		json_decref(list);
	json_decref(h);
}

/* ---- stats ------------------------------------------------------------------------------ */

/* The rows in range, by sensor then date: {"C0:..":{"2025-11-24":{row},..},..} */
struct day_rows {
	json_t *by_sensor;
	char from[16], to[16];
	const char *sensor;     /* NULL: all */
	bool oom;
};

static void put_row(struct day_rows *d, const char *sensor, const char *date, json_t *row)
{
	json_t *days = json_object_get(d->by_sensor, sensor);

	if (!days) {
		days = json_object();
		if (!days || json_object_set_new(d->by_sensor, sensor, days)) {
			d->oom = true;
			json_decref(row);
			return;
		}
	}
	if (json_object_set_new(days, date, row))   /* a later source replaces an earlier */
		d->oom = true;
}

static void db_row(void *user, const char *sensor, const char *date, const char *json)
{
	json_t *row = json_loads(json, 0, NULL);

	if (!json_is_object(row)) {
		json_decref(row);
		return;
	}
	put_row(user, sensor, date, row);
}

/* The record in memory: newer than its rows in the database. */
static void memory_rows(struct day_rows *d, struct stats_keeper *k)
{
	char *text = stats_keeper_days_text(k);
	json_t *root = text ? json_loads(text, 0, NULL) : NULL, *s, *day;
	size_t i, j;

	free(text);
	if (!root) {
		d->oom = true;
		return;
	}
	json_array_foreach(json_object_get(root, "sensors"), i, s) {
		const char *name = json_string_value(json_object_get(s, "sensor"));

		if (!name || (d->sensor && strcmp(name, d->sensor)))
			continue;
		json_array_foreach(json_object_get(s, "days"), j, day) {
			const char *date = json_string_value(json_object_get(day, "date"));

			if (date && strcmp(date, d->from) >= 0 && strcmp(date, d->to) <= 0)
				put_row(d, name, date, json_incref(day));
		}
	}
	json_decref(root);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The object's keys, sorted (malloc'd array of borrowed strings). */
static const char **sorted_keys(json_t *o, size_t *n)
{
	const char **keys = malloc((json_object_size(o) + 1) * sizeof(*keys));
	const char *key;
	json_t *v;

	*n = 0;
	if (!keys)
		return NULL;
	json_object_foreach(o, key, v)
		keys[(*n)++] = key;
	qsort(keys, *n, sizeof(*keys), cmp_str);
	return keys;
}

/* A stored count, 0 if missing or not a non-negative integer. */
static uint64_t count(json_t *v)
{
	json_int_t i = json_integer_value(v);

	return i > 0 ? (uint64_t)i : 0;
}

static uint64_t count_of(json_t *row, const char *key)
{
	return count(json_object_get(row, key));
}

static json_t *minutes(int64_t ms)
{
	return json_real((double)((ms + 3000) / 6000) / 10.0);   /* rounded to 0.1 */
}

struct totals {
	uint64_t pop, click, grind, pops, breaks;
	int64_t slouch_ms, sitting_ms;
};

static void add_row(struct totals *t, json_t *row)
{
	t->pop += count_of(row, "pop");
	t->click += count_of(row, "click");
	t->grind += count_of(row, "grind");
	t->pops += count_of(row, "pops");
	t->breaks += count_of(row, "breaks");
	t->slouch_ms += (int64_t)count_of(row, "slouch_ms");
	t->sitting_ms += (int64_t)count_of(row, "sitting_ms");
}

/* The members of stats' "days" entries (websocket-feed.md), date first if given. */
static json_t *totals_json(const char *date, const struct totals *t)
{
	json_t *o = json_object();

	if (!o)
		return NULL;
	if (date)
		json_object_set_new(o, "date", json_string(date));
	json_object_set_new(o, "cracks", json_integer((json_int_t)(t->pop + t->click + t->grind)));
	json_object_set_new(o, "pop", json_integer((json_int_t)t->pop));
	json_object_set_new(o, "click", json_integer((json_int_t)t->click));
	json_object_set_new(o, "grind", json_integer((json_int_t)t->grind));
	json_object_set_new(o, "pops", json_integer((json_int_t)t->pops));
	json_object_set_new(o, "slouch_min", minutes(t->slouch_ms));
	json_object_set_new(o, "sitting_min", minutes(t->sitting_ms));
	json_object_set_new(o, "breaks", json_integer((json_int_t)t->breaks));
	return o;
}

static json_t *sensor_stats(const char *sensor, json_t *days, bool hourly)
{
	size_t n, i, h;
	const char **dates = sorted_keys(days, &n);
	struct totals total = { 0 };
	uint64_t hour_cracks[24] = { 0 };
	int64_t hour_slouch[24] = { 0 };
	json_t *list = json_array(), *o = NULL, *hc = json_array(), *hs = json_array();

	if (!dates || !list || !hc || !hs)
		goto out;
	for (i = 0; i < n; i++) {
		json_t *row = json_object_get(days, dates[i]);
		struct totals one = { 0 };

		add_row(&one, row);
		add_row(&total, row);
		if (!hourly) {
			json_array_append_new(list, totals_json(dates[i], &one));
			continue;
		}
		for (h = 0; h < 24; h++) {
			hour_cracks[h] += count(json_array_get(json_object_get(row, "hour_cracks"), h));
			hour_slouch[h] += (int64_t)count(
				json_array_get(json_object_get(row, "hour_slouch_ms"), h));
		}
	}
	for (h = 0; h < 24; h++) {
		json_array_append_new(hc, json_integer((json_int_t)hour_cracks[h]));
		json_array_append_new(hs, minutes(hour_slouch[h]));
	}
	o = json_pack("{s:s, s:I, s:o}", "sensor", sensor, "days_with_data", (json_int_t)n,
		      "total", totals_json(NULL, &total));
	if (o && hourly)
		json_object_set_new(o, "hours", json_pack("{s:O, s:O}", "cracks", hc,
							  "slouch_min", hs));
	else if (o)
		json_object_set(o, "days", list);
out:
	free(dates);
	json_decref(list);
	json_decref(hc);
	json_decref(hs);
	return o;
}

static void api_stats(const struct http_sources *src, const struct http_request *req,
		      struct http_response *out)
{
	static const char *const allowed[] = { "from", "to", "bucket", "sensor", NULL };
	struct params p;
	char sensor[FEED_ADDRESS_LEN], msg[160];
	bool has_sensor, hourly = false;
	int64_t from, to;
	struct day_rows d = { 0 };
	const char *v, **names = NULL;
	json_t *list = NULL;
	size_t n = 0, i;

	if (!get_params(req, allowed, "this endpoint takes from, to, bucket and sensor", &p, out) ||
	    !sensor_param(&p, sensor, &has_sensor, out))
		return;
	to = local_today();
	if ((v = param(&p, "to")) && !parse_date(v, &to)) {
		respond_error(out, 400, "bad-parameter", "to must be a date like 2025-11-25");
		return;
	}
	from = to - (HTTP_API_DEFAULT_DAYS - 1);
	if ((v = param(&p, "from")) && !parse_date(v, &from)) {
		respond_error(out, 400, "bad-parameter", "from must be a date like 2025-11-19");
		return;
	}
	if (from > to || to - from >= HTTP_API_MAX_DAYS) {
		snprintf(msg, sizeof(msg), "from must not be after to, and the range is at most %d days",
			 HTTP_API_MAX_DAYS);
		respond_error(out, 400, "bad-parameter", msg);
		return;
	}
	if ((v = param(&p, "bucket")) && strcmp(v, "day") && !(hourly = !strcmp(v, "hour"))) {
		respond_error(out, 400, "bad-parameter", "bucket must be day or hour");
		return;
	}
	format_date(from, d.from);
	format_date(to, d.to);
	d.sensor = has_sensor ? sensor : NULL;
	d.by_sensor = json_object();
	if (!d.by_sensor) {
		respond_oom(out);
		return;
	}
	if (src->history) {
		long r = history_query_days(src->history, d.from, d.to, d.sensor,
					    HTTP_API_MAX_DAY_ROWS, db_row, &d);

		if (r == -2) {
			json_decref(d.by_sensor);
			respond_error(out, 400, "too-large", "too many days in that range; ask for a "
				      "shorter one or for one sensor");
			return;
		}
		if (r < 0) {
			json_decref(d.by_sensor);
			respond_error(out, 500, "internal", "the history database cannot be read");
			return;
		}
	}
	if (src->stats)
		memory_rows(&d, src->stats);
	if (!d.oom)
		names = sorted_keys(d.by_sensor, &n);
	if (names)
		list = json_array();
	for (i = 0; list && i < n; i++) {
		json_t *s = sensor_stats(names[i], json_object_get(d.by_sensor, names[i]), hourly);

		if (!s || json_array_append_new(list, s)) {
			json_decref(list);
			list = NULL;
		}
	}
	free(names);
	json_decref(d.by_sensor);
	if (!list) {
		respond_oom(out);
		return;
	}
	respond_json(out, 200, json_pack("{s:I, s:s, s:s, s:s, s:o}", "ts",
					 (json_int_t)clock_epoch_ms(), "from", d.from, "to", d.to,
					 "bucket", hourly ? "hour" : "day", "sensors", list));
}

/* ---- routing ------------------------------------------------------------------------------ */

static void metrics(const struct http_sources *src, const struct http_request *req,
		    struct http_response *out)
{
	static const char *const allowed[] = { NULL };
	struct params p;
	size_t len;
	char *text;

	if (!get_params(req, allowed, "/metrics takes none", &p, out))
		return;
	text = metrics_render(src, &len);
	if (!text) {
		respond_oom(out);
		return;
	}
	respond_text(out, 200, METRICS_CONTENT_TYPE, text, len);
}

void http_api_respond(const struct http_sources *src, const struct http_request *req,
		      struct http_response *out)
{
	static const struct {
		const char *path;
		void (*fn)(const struct http_sources *, const struct http_request *,
			   struct http_response *);
	} routes[] = {
		{ HTTP_API_PATH "/events", api_events },
		{ HTTP_API_PATH "/sensors", api_sensors },
		{ HTTP_API_PATH "/alerts", api_alerts },
		{ HTTP_API_PATH "/stats", api_stats },
		{ HTTP_METRICS_PATH, metrics },
	};
	size_t i;

	memset(out, 0, sizeof(*out));
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!req->path || strcmp(req->path, routes[i].path))
			continue;
		if (!req->get) {
			respond_error(out, 405, "method-not-allowed", "only GET is allowed here");
			out->allow = "GET";
			return;
		}
		routes[i].fn(src, req, out);
		return;
	}
	respond_error(out, 404, "not-found", "no such endpoint; see protocol/http-api.md");
}

/* ---- the lws side ------------------------------------------------------------------------- */

static void pss_clear(struct http_pss *pss)
{
	if (!pss)
		return;
	free(pss->body);
	pss->body = NULL;
	pss->len = pss->off = pss->body_read = 0;
	pss->wait_body = false;
}

/* Read the request from lws: 0, or -1 if there is no usable method/URI. */
static int read_request(struct lws *wsi, struct http_request *req, char *path, size_t path_cap,
			char args[][HTTP_API_MAX_ARG_LEN + 1], bool *head)
{
	char *uri;
	int uri_len, method = lws_http_get_uri_and_method(wsi, &uri, &uri_len), i;

	memset(req, 0, sizeof(*req));
	if (method < 0 || uri_len < 0)
		return -1;
	req->get = method == LWSHUMETH_GET;
	*head = method == LWSHUMETH_HEAD;
	if ((size_t)uri_len >= path_cap)
		uri_len = 0;   /* no path of ours is that long: a 404 */
	memcpy(path, uri, (size_t)uri_len);
	path[uri_len] = '\0';
	req->path = path;
	for (i = 0; i < 64; i++) {
		char scratch[HTTP_API_MAX_ARG_LEN + 1];
		char *dest = req->n_args < HTTP_API_MAX_ARGS ? args[req->n_args] : scratch;
		int n;

		if (lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > HTTP_API_MAX_ARG_LEN) {
			req->arg_too_long = true;
			break;
		}
		n = lws_hdr_copy_fragment(wsi, dest, HTTP_API_MAX_ARG_LEN + 1,
					  WSI_TOKEN_HTTP_URI_ARGS, i);
		if (n < 0)
			break;      /* no such fragment: the end */
		if (n == 0 || !strcmp(dest, "/"))
			continue;   /* "?&a=1"; lws makes "a=1&" a fragment "/" */
		if (req->n_args == HTTP_API_MAX_ARGS) {
			req->too_many_args = true;
			break;
		}
		req->args[req->n_args] = dest;
		req->arg_len[req->n_args++] = (size_t)n;
	}
	if (i == 64)
		req->too_many_args = true;
	return 0;
}

static int send_headers(struct lws *wsi, const struct http_response *r, bool head)
{
	unsigned char buf[LWS_PRE + 2048], *start = buf + LWS_PRE, *p = start,
		*end = buf + sizeof(buf) - 1;

	if (lws_add_http_common_headers(wsi, r->status, r->content_type,
					head ? 0 : (lws_filepos_t)r->len, &p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-store", 8, &p, end) ||
	    (r->allow && lws_add_http_header_by_name(wsi, (const unsigned char *)"allow:",
						     (const unsigned char *)r->allow,
						     (int)strlen(r->allow), &p, end)) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	return 0;
}

static int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user,
			 void *in, size_t len)
{
	const struct lws_protocols *proto = lws_get_protocol(wsi);
	struct http_api *api = proto ? proto->user : NULL;
	struct http_pss *pss = user;

	if (!api)
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	switch (reason) {
	case LWS_CALLBACK_HTTP: {
		char path[HTTP_API_MAX_PATH + 1];
		char args[HTTP_API_MAX_ARGS][HTTP_API_MAX_ARG_LEN + 1];
		struct http_request req;
		struct http_response resp;
		bool head = false;

		pss_clear(pss);
		if (read_request(wsi, &req, path, sizeof(path), args, &head) < 0)
			return -1;
		http_api_respond(&api->src, &req, &resp);
		if (!resp.body)
			return -1;
		log_debug("http: %s %s -> %u (%zu bytes)", req.get ? "GET" : head ? "HEAD" : "other",
			  req.path, resp.status, resp.len);
		if (send_headers(wsi, &resp, head) < 0) {
			free(resp.body);
			return -1;
		}
		if (head || !resp.len) {   /* no body: done */
			free(resp.body);
			return lws_http_transaction_completed(wsi) ? -1 : 0;
		}
		pss->body = resp.body;
		pss->len = resp.len;
		pss->off = 0;
		/* a refused POST & co: lws finishes the transaction when the body is in */
		pss->wait_body = lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 ||
				 lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING) > 0;
		if (!pss->wait_body)
			lws_callback_on_writable(wsi);
		return 0;
	}

	case LWS_CALLBACK_HTTP_WRITEABLE: {
		unsigned char buf[LWS_PRE + HTTP_API_CHUNK];
		size_t n;
		bool final;

		if (!pss || !pss->body || pss->wait_body)
			return 0;
		n = pss->len - pss->off;
		if (n > HTTP_API_CHUNK)
			n = HTTP_API_CHUNK;
		final = pss->off + n == pss->len;
		memcpy(buf + LWS_PRE, pss->body + pss->off, n);
		if (lws_write(wsi, buf + LWS_PRE, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) !=
		    (int)n) {
			pss_clear(pss);
			return -1;
		}
		pss->off += n;
		if (!final) {
			lws_callback_on_writable(wsi);
			return 0;
		}
		pss_clear(pss);
		return lws_http_transaction_completed(wsi) ? -1 : 0;
	}

	case LWS_CALLBACK_HTTP_BODY:   /* sent with a refused method: ignored, bounded */
		if (pss) {
			pss->body_read += len;
			if (pss->body_read > HTTP_API_MAX_BODY)
				return -1;
		}
		return 0;

	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		/* (lws' default would end the transaction before the answer) */
		if (pss && pss->body) {
			pss->wait_body = false;
			lws_callback_on_writable(wsi);
		}
		return 0;

	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		pss_clear(pss);
		break;

	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

/* ---- public ------------------------------------------------------------------------------------ */

void http_api_set_mqtt(struct http_api *api, const struct mqtt *mqtt)
{
	api->src.mqtt = mqtt;
}

struct http_api *http_api_new(const struct http_sources *src)
{
	struct http_api *api = calloc(1, sizeof(*api));

	if (!api)
		return NULL;
	api->src = *src;
	api->proto.name = HTTP_API_PROTOCOL;
	api->proto.callback = http_callback;
	api->proto.per_session_data_size = sizeof(struct http_pss);
	api->proto.user = api;
	return api;
}

void http_api_free(struct http_api *api)
{
	free(api);
}

struct lws_protocols http_api_protocol(struct http_api *api)
{
	return api->proto;
}
