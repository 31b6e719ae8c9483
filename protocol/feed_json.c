/*
 * feed_json.c - JSON encoders for the feed's messages, built on jansson.
 * Reals are rounded to one decimal and printed with up to 6 significant
 * digits; object members keep the order of websocket-feed.md. The two
 * messages of the hot path, live posture samples and crack events, are
 * written straight into the caller's buffer (no allocation), byte for byte
 * as jansson writes the others (a unit test compares them).
 */
#include "feed_json.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DUMP_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(6))

static json_t *real1(double v)
{
	if (!isfinite(v))
		v = 0;
	return json_real(round(v * 10.0) / 10.0);
}

static json_t *ms(int64_t v)
{
	return json_integer((json_int_t)v);
}

static json_t *u64(uint64_t v)
{
	/* JSON numbers are exact in JavaScript up to 2^53 */
	return json_integer((json_int_t)(v > (1ULL << 53) ? (1ULL << 53) : v));
}

/* Takes ownership of o. */
static int dump_into(json_t *o, char *buf, size_t cap)
{
	size_t n;

	if (!o)
		return -1;
	n = json_dumpb(o, buf, cap, DUMP_FLAGS);
	json_decref(o);
	if (n == 0 || n > cap || n > (size_t)INT32_MAX)
		return -1;
	return (int)n;
}

/* ---- an allocation-free writer for the hot path ------------------------------------------ */

struct jw {
	char *p, *end;
	bool full;
};

static void jw_raw(struct jw *w, const char *s, size_t n)
{
	if (w->full || (size_t)(w->end - w->p) < n) {
		w->full = true;
		return;
	}
	memcpy(w->p, s, n);
	w->p += n;
}

#define JW_LIT(w, s) jw_raw((w), (s), sizeof(s) - 1)

static void jw_fmt(struct jw *w, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void jw_fmt(struct jw *w, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(tmp)) {
		w->full = true;
		return;
	}
	jw_raw(w, tmp, (size_t)n);
}

/* A string as jansson writes it (its escapes; UTF-8 checked: invalid fails). */
static void jw_str(struct jw *w, const char *s)
{
	const unsigned char *u = (const unsigned char *)s;

	JW_LIT(w, "\"");
	for (; *u; u++) {
		switch (*u) {
		case '"': JW_LIT(w, "\\\""); break;
		case '\\': JW_LIT(w, "\\\\"); break;
		case '\b': JW_LIT(w, "\\b"); break;
		case '\f': JW_LIT(w, "\\f"); break;
		case '\n': JW_LIT(w, "\\n"); break;
		case '\r': JW_LIT(w, "\\r"); break;
		case '\t': JW_LIT(w, "\\t"); break;
		default:
			if (*u < 0x20)
				jw_fmt(w, "\\u%04X", *u);
			else if (*u < 0x80)
				jw_raw(w, (const char *)u, 1);
			else
				w->full = true;   /* not ASCII: these messages never carry any */
		}
	}
	JW_LIT(w, "\"");
}

/* A real rounded to one decimal, as jansson prints it with JSON_REAL_PRECISION(6):
 * %.6g, and ".0" when that looks like an integer. */
static void jw_real1(struct jw *w, double v)
{
	char tmp[40];
	int n;

	if (!isfinite(v))
		v = 0;
	v = round(v * 10.0) / 10.0;
	n = snprintf(tmp, sizeof(tmp), "%.6g", v);
	if (n < 0 || (size_t)n >= sizeof(tmp) - 2) {
		w->full = true;
		return;
	}
	if (!strpbrk(tmp, ".eE")) {
		memcpy(tmp + n, ".0", 3);
		n += 2;
	}
	jw_raw(w, tmp, (size_t)n);
}

static int jw_done(struct jw *w, char *buf)
{
	if (w->full || w->p - buf > INT32_MAX)
		return -1;
	return (int)(w->p - buf);
}

static void jw_init(struct jw *w, char *buf, size_t cap)
{
	w->p = buf;
	w->end = buf + cap;
	w->full = false;
}

static int encode_crack(const struct feed_event *ev, char *buf, size_t cap)
{
	struct jw w;
	uint64_t seq = ev->seq > (1ULL << 53) ? (1ULL << 53) : ev->seq;

	jw_init(&w, buf, cap);
	jw_fmt(&w, "{\"type\":\"event\",\"seq\":%" PRIu64 ",\"ts\":%" PRId64 ",\"sensor\":", seq,
	       ev->ts_ms);
	jw_str(&w, ev->sensor);
	JW_LIT(&w, ",\"kind\":\"crack\",\"crack\":");
	jw_str(&w, ev->crack.kind ? ev->crack.kind : "unknown");
	jw_fmt(&w, ",\"intensity\":%u,\"duration_ms\":%u,\"count\":%u", ev->crack.intensity,
	       ev->crack.duration_ms, ev->crack.count);
	if (ev->crack.heard) {
		JW_LIT(&w, ",\"level_dbfs\":");
		jw_real1(&w, ev->crack.level_dbfs);
		jw_fmt(&w, ",\"freq_hz\":%u", ev->crack.freq_hz);
	}
	JW_LIT(&w, "}");
	return jw_done(&w, buf);
}

/* json_object_set_new that tolerates NULL values (invalid UTF-8) by failing the object */
static int put(json_t *o, const char *key, json_t *v)
{
	if (!v)
		return -1;
	return json_object_set_new_nocheck(o, key, v);
}

int feed_encode_event(const struct feed_event *ev, char *buf, size_t cap)
{
	json_t *o;
	int bad = 0;

	if (ev->kind == FEED_EV_CRACK)
		return encode_crack(ev, buf, cap);
	o = json_object();

	if (!o)
		return -1;
	bad |= put(o, "type", json_string("event"));
	bad |= put(o, "seq", u64(ev->seq));
	bad |= put(o, "ts", ms(ev->ts_ms));
	bad |= put(o, "sensor", json_string(ev->sensor));
	switch (ev->kind) {
	case FEED_EV_CRACK:
		bad |= put(o, "kind", json_string("crack"));
		bad |= put(o, "crack", json_string(ev->crack.kind ? ev->crack.kind : "unknown"));
		bad |= put(o, "intensity", json_integer(ev->crack.intensity));
		bad |= put(o, "duration_ms", json_integer(ev->crack.duration_ms));
		bad |= put(o, "count", json_integer(ev->crack.count));
		if (ev->crack.heard) {
			bad |= put(o, "level_dbfs", real1(ev->crack.level_dbfs));
			bad |= put(o, "freq_hz", json_integer(ev->crack.freq_hz));
		}
		break;
	case FEED_EV_SLOUCH:
		bad |= put(o, "kind", json_string("slouch"));
		bad |= put(o, "phase", json_string(ev->slouch.start ? "start" : "end"));
		bad |= put(o, "angle", real1(ev->slouch.angle));
		bad |= put(o, "threshold_deg", real1(ev->slouch.threshold_deg));
		bad |= put(o, "onset_ts", ms(ev->slouch.onset_ts));
		if (!ev->slouch.start) {
			bad |= put(o, "duration_ms", ms(ev->slouch.duration_ms));
			bad |= put(o, "peak_deg", real1(ev->slouch.peak_deg));
			bad |= put(o, "reason", json_string(ev->slouch.reason ? ev->slouch.reason : "upright"));
		}
		break;
	case FEED_EV_SENSOR:
		bad |= put(o, "kind", json_string("sensor"));
		bad |= put(o, "state", json_string(ev->dev.state ? ev->dev.state : "discovered"));
		bad |= put(o, "reason", json_string(ev->dev.reason ? ev->dev.reason : ""));
		bad |= put(o, "name", json_string(ev->dev.name ? ev->dev.name : ""));
		bad |= put(o, "profile", json_string(ev->dev.profile ? ev->dev.profile : ""));
		break;
	case FEED_EV_ALERT:
		bad |= put(o, "kind", json_string("alert"));
		bad |= put(o, "id", u64(ev->alert.id));
		bad |= put(o, "rule", json_string(ev->alert.rule ? ev->alert.rule : ""));
		bad |= put(o, "severity", json_string(ev->alert.severity ? ev->alert.severity : "info"));
		bad |= put(o, "state", json_string(ev->alert.state ? ev->alert.state : "raised"));
		bad |= put(o, "message", json_string(ev->alert.message ? ev->alert.message : ""));
		bad |= put(o, "raised_ts", ms(ev->alert.raised_ts));
		break;
	case FEED_EV_CALIBRATION:
		bad |= put(o, "kind", json_string("calibration"));
		bad |= put(o, "result", json_string(ev->calibration.result ? ev->calibration.result : ""));
		if (ev->calibration.reason)
			bad |= put(o, "reason", json_string(ev->calibration.reason));
		break;
	case FEED_EV_ANNOTATION:
		bad |= put(o, "kind", json_string("annotation"));
		bad |= put(o, "event", u64(ev->annotation.event));
		bad |= put(o, "of", json_string(ev->annotation.of ? ev->annotation.of : ""));
		bad |= put(o, "pain", ev->annotation.pain == FEED_SCALE_NONE ? json_null() :
			   json_integer(ev->annotation.pain));
		bad |= put(o, "stiffness", ev->annotation.stiffness == FEED_SCALE_NONE ? json_null() :
			   json_integer(ev->annotation.stiffness));
		bad |= put(o, "note", ev->annotation.note ? json_string(ev->annotation.note) :
			   json_null());
		break;
	default:
		bad = 1;
	}
	if (bad) {
		json_decref(o);
		return -1;
	}
	return dump_into(o, buf, cap);
}

int feed_encode_posture(const struct feed_posture *p, char *buf, size_t cap)
{
	struct jw w;

	jw_init(&w, buf, cap);
	jw_fmt(&w, "{\"type\":\"posture\",\"ts\":%" PRId64 ",\"sensor\":", p->ts_ms);
	jw_str(&w, p->sensor ? p->sensor : "");
	JW_LIT(&w, ",\"angle\":");
	jw_real1(&w, p->calibrating ? 0.0 : p->angle);
	jw_fmt(&w, ",\"calibrating\":%s,\"beyond_ms\":%" PRId64 ",\"slouching\":%s,"
	       "\"sitting_ms\":%" PRId64 "}", p->calibrating ? "true" : "false", p->beyond_ms,
	       p->slouching ? "true" : "false", p->sitting_ms);
	return jw_done(&w, buf);
}

static json_t *int_or_null(bool present, json_int_t v)
{
	return present ? json_integer(v) : json_null();
}

/* the health members, in the documented order */
static int put_health(json_t *o, const struct feed_health *h)
{
	int bad = 0;

	bad |= put(o, "battery", int_or_null(h->battery >= 0 && h->battery <= 100, h->battery));
	bad |= put(o, "rssi", int_or_null(h->rssi != FEED_NO_RSSI, h->rssi));
	bad |= put(o, "received", u64(h->received));
	bad |= put(o, "lost", u64(h->lost));
	bad |= put(o, "rejected", u64(h->rejected));
	bad |= put(o, "notify", h->notify ? json_string(h->notify) : json_null());
	bad |= put(o, "period_ms", int_or_null(h->period_ms > 0, h->period_ms));
	return bad;
}

int feed_encode_status(const struct feed_status *st, char *buf, size_t cap)
{
	json_t *o = json_object();
	int bad = 0;

	if (!o)
		return -1;
	bad |= put(o, "type", json_string("status"));
	bad |= put(o, "ts", ms(st->ts_ms));
	bad |= put(o, "sensor", json_string(st->sensor));
	bad |= put(o, "state", json_string(st->state ? st->state : "discovered"));
	bad |= put_health(o, &st->health);
	if (bad) {
		json_decref(o);
		return -1;
	}
	return dump_into(o, buf, cap);
}

int feed_encode_gap(uint64_t from, uint64_t to, char *buf, size_t cap)
{
	return dump_into(json_pack("{s:s, s:o, s:o}", "type", "gap",
				   "from", u64(from), "to", u64(to)), buf, cap);
}

int feed_encode_error(const char *code, const char *message, char *buf, size_t cap)
{
	return dump_into(json_pack("{s:s, s:s, s:s}", "type", "error",
				   "code", code, "message", message), buf, cap);
}

static json_t *sensor_json(const struct feed_sensor_info *s)
{
	json_t *roles = json_array(), *o;

	if (!roles)
		return NULL;
	if (s->roles & FEED_ROLE_POSTURE)
		json_array_append_new(roles, json_string("posture"));
	if (s->roles & FEED_ROLE_SOUND)
		json_array_append_new(roles, json_string("sound"));
	o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}",
		      "address", s->address,
		      "name", s->name ? s->name : "",
		      "profile", s->profile ? s->profile : "",
		      "roles", roles,
		      "state", s->state ? s->state : "discovered",
		      "reason", s->reason ? s->reason : "");
	if (o && put_health(o, &s->health)) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *alert_json(const struct feed_alert_info *a)
{
	return json_pack("{s:o, s:s, s:s, s:s, s:s, s:s, s:I}",
			 "id", u64(a->id),
			 "rule", a->rule ? a->rule : "",
			 "sensor", a->sensor ? a->sensor : "",
			 "severity", a->severity ? a->severity : "info",
			 "state", a->state ? a->state : "raised",
			 "message", a->message ? a->message : "",
			 "raised_ts", (json_int_t)a->raised_ts);
}

char *feed_encode_hello(const struct feed_hello *h, size_t *len)
{
	json_t *sensors = json_array(), *alerts = json_array(), *o;
	char *out;
	size_t i;

	if (!sensors)
		return NULL;
	for (i = 0; i < h->n_sensors; i++) {
		json_t *s = sensor_json(&h->sensors[i]);

		/* a sensor whose name is not valid UTF-8 is still listed, unnamed */
		if (!s) {
			struct feed_sensor_info copy = h->sensors[i];

			copy.name = "";
			s = sensor_json(&copy);
		}
		if (s)
			json_array_append_new(sensors, s);
	}
	if (!alerts) {
		json_decref(sensors);
		return NULL;
	}
	for (i = 0; i < h->n_alerts; i++) {
		json_t *a = alert_json(&h->alerts[i]);

		if (a)
			json_array_append_new(alerts, a);
	}
	o = json_pack("{s:s, s:s, s:s, s:i, s:s, s:I, s:o, s:o, s:{s:o, s:o, s:I, s:I}, s:o, s:o}",
		      "type", "hello",
		      "server", "spinewatchd",
		      "version", h->version,
		      "protocol", FEED_PROTOCOL_VERSION,
		      "stream", h->stream,
		      "ts", (json_int_t)h->ts_ms,
		      "last_seq", u64(h->last_seq),
		      "oldest_seq", u64(h->oldest_seq),
		      "detector",
		      "threshold_deg", real1(h->threshold_deg),
		      "hysteresis_deg", real1(h->hysteresis_deg),
		      "delay_ms", (json_int_t)h->delay_ms,
		      "calibration_ms", (json_int_t)h->calibration_ms,
		      "sensors", sensors,
		      "alerts", alerts);
	if (!o)
		return NULL;
	if (h->stats && json_object_set(o, "stats", h->stats) != 0) {
		json_decref(o);
		return NULL;
	}
	out = json_dumps(o, DUMP_FLAGS);
	json_decref(o);
	if (out && len)
		*len = strlen(out);
	return out;
}

/* ---- client commands ------------------------------------------------------ */

static bool is_address(const char *s)
{
	int i;

	if (strlen(s) != 17)
		return false;
	for (i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* ---- filters ---- */

static const char *const kind_names[] = {
	[FEED_EV_CRACK] = "crack", [FEED_EV_SLOUCH] = "slouch", [FEED_EV_SENSOR] = "sensor",
	[FEED_EV_ALERT] = "alert", [FEED_EV_CALIBRATION] = "calibration",
	[FEED_EV_ANNOTATION] = "annotation",
};

unsigned feed_kind_bit(const char *name)
{
	size_t i;

	for (i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
		if (kind_names[i] && !strcmp(name, kind_names[i]))
			return 1u << i;
	if (!strcmp(name, "posture"))
		return FEED_KIND_POSTURE;
	if (!strcmp(name, "status"))
		return FEED_KIND_STATUS;
	return 0;
}

/* Calls fn for each comma-separated item of csv (empty items refused). */
static int each_item(const char *csv, int (*fn)(void *ctx, const char *item), void *ctx)
{
	char item[32];
	const char *p = csv;

	if (!*csv)
		return -1;
	for (;;) {
		size_t n = strcspn(p, ",");

		if (n == 0 || n >= sizeof(item))
			return -1;
		memcpy(item, p, n);
		item[n] = '\0';
		if (fn(ctx, item) < 0)
			return -1;
		if (!p[n])
			return 0;
		p += n + 1;
	}
}

static int add_kind(void *ctx, const char *item)
{
	unsigned bit = feed_kind_bit(item);

	if (!bit)
		return -1;
	((struct feed_filter *)ctx)->kinds |= bit;
	return 0;
}

static bool is_address(const char *s);

static int add_sensor(void *ctx, const char *item)
{
	struct feed_filter *f = ctx;
	size_t i;

	if (!is_address(item) || f->n_sensors >= FEED_FILTER_SENSORS)
		return -1;
	for (i = 0; i < 17; i++)
		f->sensors[f->n_sensors][i] = (char)toupper((unsigned char)item[i]);
	f->sensors[f->n_sensors++][17] = '\0';
	return 0;
}

int feed_filter_parse_kinds(struct feed_filter *f, const char *csv, const char **message)
{
	if (each_item(csv, add_kind, f) == 0)
		return 0;
	*message = "kinds is a comma-separated list of crack, slouch, sensor, alert, calibration, "
		   "annotation, posture, status";
	return -1;
}

int feed_filter_parse_sensors(struct feed_filter *f, const char *csv, const char **message)
{
	if (each_item(csv, add_sensor, f) == 0)
		return 0;
	*message = "sensors is a comma-separated list of up to 16 addresses AA:BB:CC:DD:EE:FF";
	return -1;
}

bool feed_filter_match(const struct feed_filter *f, unsigned kind_bit, const char *sensor)
{
	size_t i;

	if (f->kinds && !(f->kinds & kind_bit))
		return false;
	if (!f->n_sensors || !sensor || !sensor[0])
		return true;
	for (i = 0; i < f->n_sensors; i++)
		if (!strcasecmp(f->sensors[i], sensor))
			return true;
	return false;
}

/* A JSON array of strings into a filter list, via the CSV parsers' item checks. */
static int filter_array(json_t *a, struct feed_filter *f, int (*fn)(void *, const char *))
{
	size_t i;
	json_t *v;

	if (!json_is_array(a) || json_array_size(a) == 0)
		return -1;
	json_array_foreach(a, i, v) {
		const char *item = json_string_value(v);

		if (!item || strlen(item) >= 32 || fn(f, item) < 0)
			return -1;
	}
	return 0;
}

#define CMD_ERR(c, m) do { *code = (c); *message = (m); goto out; } while (0)

/* The deepest nesting of [ and { outside strings (stops counting past max). */
static int json_depth(const char *buf, size_t len, int max)
{
	int depth = 0, deepest = 0;
	bool in_string = false;
	size_t i;

	for (i = 0; i < len && deepest <= max; i++) {
		char c = buf[i];

		if (in_string) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_string = false;
		} else if (c == '"') {
			in_string = true;
		} else if (c == '[' || c == '{') {
			if (++depth > deepest)
				deepest = depth;
		} else if (c == ']' || c == '}') {
			depth--;
		}
	}
	return deepest;
}

int feed_parse_command(const char *buf, size_t len, struct feed_command *out,
		       const char **code, const char **message)
{
	json_error_t jerr;
	json_t *o = NULL, *v, *tag;
	const char *type;
	int r = -1, i;

	memset(out, 0, sizeof(*out));
	snprintf(out->tag, sizeof(out->tag), "null");
	/* no command nests deeper than an array in an object: the parser never
	 * works through more (jansson would go 2048 levels deep) */
	if (json_depth(buf, len, FEED_JSON_DEPTH_MAX) > FEED_JSON_DEPTH_MAX)
		CMD_ERR("bad-command", "the message nests deeper than 4 levels");
	o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!o)
		CMD_ERR("bad-json", "the message is not JSON");
	if (!json_is_object(o))
		CMD_ERR("bad-command", "a command is a JSON object");
	tag = json_object_get(o, "id");
	if (tag) {
		/* echoed back as given: a string of up to 64 bytes or an integer */
		if (json_is_string(tag) && json_string_length(tag) <= FEED_ID_MAX) {
			char *t = json_dumps(tag, JSON_ENCODE_ANY | JSON_COMPACT);

			if (t && strlen(t) < sizeof(out->tag))
				snprintf(out->tag, sizeof(out->tag), "%s", t);
			free(t);
		} else if (json_is_integer(tag)) {
			snprintf(out->tag, sizeof(out->tag), "%" JSON_INTEGER_FORMAT,
				 json_integer_value(tag));
		} else {
			CMD_ERR("bad-command", "id must be a string of up to 64 bytes or an integer");
		}
	}
	type = json_string_value(json_object_get(o, "type"));
	if (!type)
		CMD_ERR("bad-command", "a command needs a string \"type\"");
	if (!strcmp(type, "ack")) {
		out->type = FEED_CMD_ACK;
		v = json_object_get(o, "alert");
		if (!json_is_integer(v) || json_integer_value(v) < 1)
			CMD_ERR("bad-command", "ack needs \"alert\": the alert's id");
		out->alert = (uint64_t)json_integer_value(v);
	} else if (!strcmp(type, "calibrate")) {
		out->type = FEED_CMD_CALIBRATE;
		v = json_object_get(o, "sensor");
		if (!json_is_string(v) || !is_address(json_string_value(v)))
			CMD_ERR("bad-command", "calibrate needs \"sensor\": AA:BB:CC:DD:EE:FF");
		for (i = 0; i < 17; i++)
			out->sensor[i] = (char)toupper((unsigned char)json_string_value(v)[i]);
	} else if (!strcmp(type, "stats")) {
		out->type = FEED_CMD_STATS;
		v = json_object_get(o, "sensor");
		if (v && (!json_is_string(v) || !is_address(json_string_value(v))))
			CMD_ERR("bad-command", "stats takes an optional \"sensor\": AA:BB:CC:DD:EE:FF");
		for (i = 0; v && i < 17; i++)
			out->sensor[i] = (char)toupper((unsigned char)json_string_value(v)[i]);
	} else if (!strcmp(type, "annotate")) {
		out->type = FEED_CMD_ANNOTATE;
		v = json_object_get(o, "event");
		if (!json_is_integer(v) || json_integer_value(v) < 1)
			CMD_ERR("bad-command", "annotate needs \"event\": the event's seq");
		out->event = (uint64_t)json_integer_value(v);
		out->pain = out->stiffness = FEED_SCALE_NONE;
		for (i = 0; i < 2; i++) {
			v = json_object_get(o, i ? "stiffness" : "pain");
			if (!v || json_is_null(v))
				continue;
			if (!json_is_integer(v) || json_integer_value(v) < 0 ||
			    json_integer_value(v) > 10)
				CMD_ERR("bad-command", "pain and stiffness are whole numbers from 0 to 10");
			*(i ? &out->stiffness : &out->pain) = (int)json_integer_value(v);
		}
		v = json_object_get(o, "note");
		if (v && !json_is_null(v)) {
			if (!json_is_string(v) || json_string_length(v) > FEED_NOTE_MAX ||
			    strlen(json_string_value(v)) != json_string_length(v))
				CMD_ERR("bad-command", "note is text of up to 280 bytes");
			snprintf(out->note, sizeof(out->note), "%s", json_string_value(v));
			out->has_note = true;
		}
		if (out->pain == FEED_SCALE_NONE && out->stiffness == FEED_SCALE_NONE &&
		    !out->has_note)
			CMD_ERR("bad-command", "annotate needs pain, stiffness or a note");
	} else if (!strcmp(type, "subscribe")) {
		out->type = FEED_CMD_SUBSCRIBE;
		v = json_object_get(o, "since");
		if (v) {
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				CMD_ERR("bad-command", "since is the last seq you have (0: from the oldest)");
			out->has_since = true;
			out->since = (uint64_t)json_integer_value(v);
		}
		v = json_object_get(o, "kinds");
		if (v && !json_is_null(v) && filter_array(v, &out->filter, add_kind) < 0)
			CMD_ERR("bad-command", "kinds is a list of crack, slouch, sensor, alert, "
				"calibration, annotation, posture, status");
		v = json_object_get(o, "sensors");
		if (v && !json_is_null(v) && filter_array(v, &out->filter, add_sensor) < 0)
			CMD_ERR("bad-command", "sensors is a list of up to 16 addresses AA:BB:CC:DD:EE:FF");
	} else if (!strcmp(type, "ping")) {
		out->type = FEED_CMD_PING;
	} else {
		CMD_ERR("unknown-command", "known commands: ack, calibrate, stats, annotate, subscribe, "
			"ping");
	}
	r = 0;
out:
	json_decref(o);
	return r;
}

char *feed_encode_stats_reply(const char *tag, json_t *stats, size_t *len)
{
	json_t *t = json_loads(tag ? tag : "null", JSON_DECODE_ANY, NULL), *o;
	char *out;

	if (!t)
		t = json_null();
	o = json_pack("{s:s, s:o, s:b, s:s, s:O}", "type", "reply", "id", t, "ok", 1,
		      "result", "ok", "stats", stats);
	if (!o)
		return NULL;
	out = json_dumps(o, DUMP_FLAGS);
	json_decref(o);
	if (out && len)
		*len = strlen(out);
	return out;
}

int feed_encode_reply(const char *tag, bool ok, const char *result_or_code, const char *message,
		      char *buf, size_t cap)
{
	json_t *t = json_loads(tag ? tag : "null", JSON_DECODE_ANY, NULL), *o;

	if (!t)
		t = json_null();
	if (ok)
		o = json_pack("{s:s, s:o, s:b, s:s}", "type", "reply", "id", t, "ok", 1,
			      "result", result_or_code);
	else
		o = json_pack("{s:s, s:o, s:b, s:s, s:s}", "type", "reply", "id", t, "ok", 0,
			      "code", result_or_code, "message", message ? message : "");
	return dump_into(o, buf, cap);
}
