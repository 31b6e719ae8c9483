/*
 * config.c - settings table, value parsers and the INI reader (see config.h).
 */
#include "config.h"

#include "mqtt_topics.h"

#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

enum setting_id {
	S_LISTEN, S_WEB_ROOT, S_STATE_DIR, S_RING_SIZE, S_MAX_CLIENTS, S_LOG_LEVEL,
	S_EVENT_DAYS, S_DAILY_DAYS,
	S_ALLOW, S_DENY, S_PROFILES, S_DISCOVERY, S_NOTIFY_PATH, S_BACKOFF_MIN, S_BACKOFF_MAX,
	S_SENSOR_PERIOD,
	S_THRESHOLD, S_HYSTERESIS, S_DELAY, S_CALIBRATION,
	S_SLOUCH_LONG, S_BREAK_INTERVAL, S_SENSOR_LOST, S_BATTERY_LOW, S_BATTERY_CLEAR, S_COOLDOWN,
	S_HOOK, S_HOOK_TIMEOUT, S_DISABLE, S_MERGE, S_CRACK_FLOOR, S_CRACK_FACTOR, S_CRACK_CAP,
	S_MQTT_ENABLED, S_MQTT_HOST, S_MQTT_PORT, S_MQTT_CLIENT_ID, S_MQTT_USERNAME, S_MQTT_PASSWORD,
	S_MQTT_PASSWORD_FILE, S_MQTT_CA_FILE, S_MQTT_CERT_FILE, S_MQTT_KEY_FILE, S_MQTT_PREFIX,
	S_MQTT_DISCOVERY, S_MQTT_DISCOVERY_PREFIX, S_MQTT_KEEPALIVE,
	S_TLS_CERT, S_TLS_KEY, S_CLIENT_TIMEOUT,
	S_TOKEN_FILE, S_LOOPBACK, S_HOSTS, S_ORIGINS,
	S_COUNT
};

static const struct setting {
	const char *section, *key, *option;
	bool list;
} settings[S_COUNT] = {
	[S_LISTEN] = { "server", "listen", "listen", false },
	[S_WEB_ROOT] = { "server", "web_root", "web-root", false },
	[S_STATE_DIR] = { "server", "state_directory", "state-dir", false },
	[S_RING_SIZE] = { "server", "ring_size", "ring-size", false },
	[S_MAX_CLIENTS] = { "server", "max_clients", "max-clients", false },
	[S_EVENT_DAYS] = { "server", "history_days", NULL, false },
	[S_DAILY_DAYS] = { "server", "daily_history_days", NULL, false },
	[S_LOG_LEVEL] = { "server", "log_level", "log-level", false },
	[S_ALLOW] = { "sensors", "allow", "allow", true },
	[S_DENY] = { "sensors", "deny", "deny", true },
	[S_PROFILES] = { "sensors", "profiles", "profiles", false },
	[S_DISCOVERY] = { "sensors", "discovery", "discovery", false },
	[S_NOTIFY_PATH] = { "sensors", "notify_path", "notify-path", false },
	[S_BACKOFF_MIN] = { "sensors", "backoff_min_ms", "backoff-min", false },
	[S_BACKOFF_MAX] = { "sensors", "backoff_max_ms", "backoff-max", false },
	[S_SENSOR_PERIOD] = { "sensors", "sensor_period_ms", "sensor-period", false },
	[S_THRESHOLD] = { "posture", "threshold_deg", "slouch-threshold", false },
	[S_HYSTERESIS] = { "posture", "hysteresis_deg", "slouch-hysteresis", false },
	[S_DELAY] = { "posture", "delay_s", "slouch-delay", false },
	[S_CALIBRATION] = { "posture", "calibration_s", "calibration", false },
	[S_SLOUCH_LONG] = { "alerts", "slouch_long_min", NULL, false },
	[S_BREAK_INTERVAL] = { "alerts", "break_interval_min", NULL, false },
	[S_SENSOR_LOST] = { "alerts", "sensor_lost_s", NULL, false },
	[S_BATTERY_LOW] = { "alerts", "battery_low_pct", NULL, false },
	[S_BATTERY_CLEAR] = { "alerts", "battery_clear_pct", NULL, false },
	[S_COOLDOWN] = { "alerts", "cooldown_min", NULL, false },
	[S_HOOK] = { "alerts", "hook", "alert-hook", false },
	[S_HOOK_TIMEOUT] = { "alerts", "hook_timeout_s", NULL, false },
	[S_DISABLE] = { "alerts", "disable", "disable-alerts", false },
	[S_MERGE] = { "cracks", "merge_ms", "crack-merge-ms", false },
	[S_CRACK_FLOOR] = { "alerts", "crack_rate_floor", NULL, false },
	[S_CRACK_FACTOR] = { "alerts", "crack_rate_factor", NULL, false },
	[S_CRACK_CAP] = { "alerts", "crack_rate_cap", NULL, false },
	[S_MQTT_ENABLED] = { "mqtt", "enabled", NULL, false },
	[S_MQTT_HOST] = { "mqtt", "host", NULL, false },
	[S_MQTT_PORT] = { "mqtt", "port", NULL, false },
	[S_MQTT_CLIENT_ID] = { "mqtt", "client_id", NULL, false },
	[S_MQTT_USERNAME] = { "mqtt", "username", NULL, false },
	[S_MQTT_PASSWORD] = { "mqtt", "password", NULL, false },
	[S_MQTT_PASSWORD_FILE] = { "mqtt", "password_file", NULL, false },
	[S_MQTT_CA_FILE] = { "mqtt", "ca_file", NULL, false },
	[S_MQTT_CERT_FILE] = { "mqtt", "cert_file", NULL, false },
	[S_MQTT_KEY_FILE] = { "mqtt", "key_file", NULL, false },
	[S_MQTT_PREFIX] = { "mqtt", "topic_prefix", NULL, false },
	[S_MQTT_DISCOVERY] = { "mqtt", "discovery", NULL, false },
	[S_MQTT_DISCOVERY_PREFIX] = { "mqtt", "discovery_prefix", NULL, false },
	[S_MQTT_KEEPALIVE] = { "mqtt", "keepalive", NULL, false },
	[S_TLS_CERT] = { "server", "tls_certificate", "tls-cert", false },
	[S_TLS_KEY] = { "server", "tls_key", "tls-key", false },
	[S_CLIENT_TIMEOUT] = { "server", "client_timeout_s", "client-timeout", false },
	[S_TOKEN_FILE] = { "access", "token_file", "token-file", false },
	[S_LOOPBACK] = { "access", "loopback", NULL, false },
	[S_HOSTS] = { "access", "hosts", NULL, false },
	[S_ORIGINS] = { "access", "origins", NULL, false },
};

void config_defaults(struct sw_config *c, const char *listen, const char *web_root)
{
	const char *state = getenv("STATE_DIRECTORY");   /* systemd's StateDirectory= */

	memset(c, 0, sizeof(*c));
	snprintf(c->listen, sizeof(c->listen), "%s", listen);
	snprintf(c->web_root, sizeof(c->web_root), "%s", web_root);
	/* systemd may pass several, colon-separated: the first is ours */
	if (state && state[0] == '/')
		snprintf(c->state_dir, sizeof(c->state_dir), "%.*s", (int)strcspn(state, ":"), state);
	else
		snprintf(c->state_dir, sizeof(c->state_dir), "%s", CONFIG_DEFAULT_STATE_DIR);
	c->ring_size = 4096;
	c->max_clients = 64;
	c->history.event_days = HISTORY_DEFAULT_EVENT_DAYS;
	c->history.daily_days = HISTORY_DEFAULT_DAILY_DAYS;
	c->log_level = LOG_INFO;
	detector_config_default(&c->det);
	bluez_config_defaults(&c->bz);
	alerts_config_default(&c->alerts);
	breaks_config_default(&c->breaks);
	cracks_config_default(&c->cracks);
	c->hook_timeout_ms = 10000;
	mqtt_config_defaults(&c->mqtt);
	c->client_timeout_s = 60;
	access_config_default(&c->access);
}

#if defined(__GNUC__)
__attribute__((format(printf, 3, 4)))
#endif
static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

static int parse_ulong(const char *s, unsigned long lo, unsigned long hi, unsigned long *out,
		       char *err, size_t errlen)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || *s == '+' || *s == ' ' || v < lo || v > hi)
		return fail(err, errlen, "'%s' is not a whole number from %lu to %lu", s, lo, hi);
	*out = v;
	return 0;
}

static int parse_double(const char *s, double lo, double hi, double *out, char *err, size_t errlen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v < lo || v > hi)
		return fail(err, errlen, "'%s' is not a number from %g to %g", s, lo, hi);
	*out = v;
	return 0;
}

static int parse_path(const char *s, char *dst, size_t cap, char *err, size_t errlen)
{
	if (s[0] != '/')
		return fail(err, errlen, "'%s' is not an absolute path", s);
	if (strlen(s) >= cap)
		return fail(err, errlen, "the path is longer than %zu bytes", cap - 1);
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

/* Free text for the [mqtt] section: printable, no blanks at the ends; "" allowed. */
static int parse_text(const char *s, char *dst, size_t cap, bool path, char *err, size_t errlen)
{
	size_t i, n = strlen(s);

	if (n >= cap)
		return fail(err, errlen, "longer than %zu bytes", cap - 1);
	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return fail(err, errlen, "control characters are not allowed");
	if (path && n && s[0] != '/')
		return fail(err, errlen, "'%s' is not an absolute path", s);
	memcpy(dst, s, n + 1);
	return 0;
}

/* Each address of a comma- or space-separated list. */
static int parse_addresses(struct bluez_config *bz, const char *s, bool allow, char *err,
			   size_t errlen)
{
	char buf[BLUEZ_MAX_LISTED * 20], *tok, *save = NULL;
	if (snprintf(buf, sizeof(buf), "%s", s) >= (int)sizeof(buf))
		return fail(err, errlen, "more than %d addresses", BLUEZ_MAX_LISTED);
	for (tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
		if (!bluez_valid_address(tok))
			return fail(err, errlen, "'%s' is not a Bluetooth address (AA:BB:CC:DD:EE:FF)",
				    tok);
		if ((allow ? bluez_config_allow : bluez_config_deny)(bz, tok))
			return fail(err, errlen, "more than %d addresses", BLUEZ_MAX_LISTED);
	}
	return 0;   /* an empty list adds nothing */
}

static int parse_choice(const char *s, const char *yes, const char *no, bool *out, char *err,
			size_t errlen)
{
	if (!strcmp(s, yes))
		*out = true;
	else if (!strcmp(s, no))
		*out = false;
	else
		return fail(err, errlen, "'%s': use %s or %s", s, yes, no);
	return 0;
}

static int set_one(struct sw_config *c, enum setting_id id, const char *v, char *err,
		   size_t errlen)
{
	unsigned long ul;
	double d;

	switch (id) {
	case S_LISTEN:
		if (!v[0] || strlen(v) >= sizeof(c->listen) || strchr(v, ' '))
			return fail(err, errlen, "'%s' is not HOST:PORT", v);
		snprintf(c->listen, sizeof(c->listen), "%s", v);
		return 0;
	case S_WEB_ROOT:
		return parse_path(v, c->web_root, sizeof(c->web_root), err, errlen);
	case S_STATE_DIR:
		return parse_path(v, c->state_dir, sizeof(c->state_dir), err, errlen);
	case S_RING_SIZE:
		if (parse_ulong(v, 4, 1000000, &ul, err, errlen))
			return -1;
		c->ring_size = ul;
		return 0;
	case S_MAX_CLIENTS:
		if (parse_ulong(v, 1, 10000, &ul, err, errlen))
			return -1;
		c->max_clients = (unsigned)ul;
		return 0;
	case S_EVENT_DAYS:
	case S_DAILY_DAYS:
		if (parse_ulong(v, 1, 36500, &ul, err, errlen))
			return -1;
		*(id == S_EVENT_DAYS ? &c->history.event_days : &c->history.daily_days) =
			(unsigned)ul;
		return 0;
	case S_LOG_LEVEL:
		if (!strcmp(v, "warning"))
			c->log_level = LOG_WARNING;
		else if (!strcmp(v, "info"))
			c->log_level = LOG_INFO;
		else if (!strcmp(v, "debug"))
			c->log_level = LOG_DEBUG;
		else
			return fail(err, errlen, "'%s': use warning, info or debug", v);
		return 0;
	case S_ALLOW:
	case S_DENY:
		return parse_addresses(&c->bz, v, id == S_ALLOW, err, errlen);
	case S_PROFILES:
		if (bluez_config_profiles(&c->bz, v))
			return fail(err, errlen, "'%s': use a comma-separated list of spinewatch, "
				    "microbit, thingy52", v);
		return 0;
	case S_DISCOVERY:
		return parse_choice(v, "auto", "off", &c->bz.discovery, err, errlen);
	case S_NOTIFY_PATH:
		return parse_choice(v, "auto", "start", &c->bz.acquire, err, errlen);
	case S_BACKOFF_MIN:
	case S_BACKOFF_MAX:
		if (parse_ulong(v, 100, 3600000, &ul, err, errlen))
			return -1;
		*(id == S_BACKOFF_MIN ? &c->bz.backoff_min_ms : &c->bz.backoff_max_ms) = (unsigned)ul;
		return 0;
	case S_SENSOR_PERIOD:
		if (parse_ulong(v, 1, 1000, &ul, err, errlen))
			return -1;
		c->bz.sensor_period_ms = (unsigned)ul;
		return 0;
	case S_THRESHOLD:
		return parse_double(v, 1, 90, &c->det.threshold_deg, err, errlen);
	case S_HYSTERESIS:
		return parse_double(v, 0, 89, &c->det.hysteresis_deg, err, errlen);
	case S_DELAY:
	case S_CALIBRATION:
		if (parse_double(v, 0, 86400, &d, err, errlen))
			return -1;
		*(id == S_DELAY ? &c->det.delay_ms : &c->det.calibration_ms) = (int64_t)llround(d * 1000);
		return 0;
	case S_SLOUCH_LONG:
		/* decimal minutes: 0.1 is 6 s (for tests and demos) */
		if (parse_double(v, 0.05, 480, &d, err, errlen))
			return -1;
		c->alerts.slouch_long_ms = (int64_t)llround(d * 60000);
		return 0;
	case S_BREAK_INTERVAL:
		if (parse_ulong(v, 5, 480, &ul, err, errlen))
			return -1;
		c->breaks.interval_ms = (int64_t)ul * 60000;
		return 0;
	case S_SENSOR_LOST:
		if (parse_ulong(v, 1, 86400, &ul, err, errlen))
			return -1;
		c->alerts.sensor_lost_ms = (int64_t)ul * 1000;
		return 0;
	case S_CRACK_FLOOR:
	case S_CRACK_CAP:
		if (parse_ulong(v, 1, ALERTS_CRACK_CAP_MAX, &ul, err, errlen))
			return -1;
		*(id == S_CRACK_FLOOR ? &c->alerts.crack_floor : &c->alerts.crack_cap) = (unsigned)ul;
		return 0;
	case S_CRACK_FACTOR:
		return parse_double(v, 1, 100, &c->alerts.crack_factor, err, errlen);
	case S_BATTERY_LOW:
	case S_BATTERY_CLEAR:
		if (parse_ulong(v, 1, 100, &ul, err, errlen))
			return -1;
		*(id == S_BATTERY_LOW ? &c->alerts.battery_low_pct : &c->alerts.battery_clear_pct) =
			(int)ul;
		return 0;
	case S_COOLDOWN: {
		int r;

		if (parse_ulong(v, 0, 1440, &ul, err, errlen))
			return -1;
		for (r = 0; r < ALERT_RULE_COUNT; r++)
			c->alerts.cooldown_ms[r] = (int64_t)ul * 60000;
		return 0;
	}
	case S_HOOK:
		if (v[0] && v[0] != '/')
			return fail(err, errlen, "'%s': the command must be an absolute path", v);
		if (strlen(v) >= sizeof(c->hook))
			return fail(err, errlen, "the command is longer than %zu bytes",
				    sizeof(c->hook) - 1);
		snprintf(c->hook, sizeof(c->hook), "%s", v);
		return 0;
	case S_HOOK_TIMEOUT:
		if (parse_ulong(v, 1, 600, &ul, err, errlen))
			return -1;
		c->hook_timeout_ms = (int64_t)ul * 1000;
		return 0;
	case S_DISABLE: {
		char buf[256], *tok, *save = NULL;
		int r;

		for (r = 0; r < ALERT_RULE_COUNT; r++)
			c->alerts.enabled[r] = true;
		if (snprintf(buf, sizeof(buf), "%s", v) >= (int)sizeof(buf))
			return fail(err, errlen, "the list is too long");
		for (tok = strtok_r(buf, ", \t", &save); tok; tok = strtok_r(NULL, ", \t", &save)) {
			if ((r = alert_rule_from_name(tok)) < 0)
				return fail(err, errlen, "'%s' is not an alert rule (slouch-long, no-break, "
					    "crack-rate, grinding, self-manipulation, sensor-lost, "
					    "battery-low)", tok);
			c->alerts.enabled[r] = false;
		}
		return 0;
	}
	case S_MERGE:
		if (parse_ulong(v, 0, 1000, &ul, err, errlen))
			return -1;
		c->cracks.merge_ms = (int64_t)ul;
		return 0;
	case S_MQTT_ENABLED:
		return parse_choice(v, "true", "false", &c->mqtt.enabled, err, errlen);
	case S_MQTT_DISCOVERY:
		return parse_choice(v, "true", "false", &c->mqtt.discovery, err, errlen);
	case S_MQTT_HOST:
		if (strchr(v, ' ') || strchr(v, '/'))
			return fail(err, errlen, "'%s' is not a host name or address", v);
		return parse_text(v, c->mqtt.host, sizeof(c->mqtt.host), false, err, errlen);
	case S_MQTT_PORT:
		if (parse_ulong(v, 1, 65535, &ul, err, errlen))
			return -1;
		c->mqtt.port = (unsigned)ul;
		return 0;
	case S_MQTT_KEEPALIVE:
		if (parse_ulong(v, 5, 3600, &ul, err, errlen))
			return -1;
		c->mqtt.keepalive = (unsigned)ul;
		return 0;
	case S_MQTT_CLIENT_ID:
		return parse_text(v, c->mqtt.client_id, sizeof(c->mqtt.client_id), false, err, errlen);
	case S_MQTT_USERNAME:
		return parse_text(v, c->mqtt.username, sizeof(c->mqtt.username), false, err, errlen);
	case S_MQTT_PASSWORD:
		return parse_text(v, c->mqtt.password, sizeof(c->mqtt.password), false, err, errlen);
	case S_MQTT_PASSWORD_FILE:
		return parse_text(v, c->mqtt.password_file, sizeof(c->mqtt.password_file), true, err,
				  errlen);
	case S_MQTT_CA_FILE:
		return parse_text(v, c->mqtt.ca_file, sizeof(c->mqtt.ca_file), true, err, errlen);
	case S_MQTT_CERT_FILE:
		return parse_text(v, c->mqtt.cert_file, sizeof(c->mqtt.cert_file), true, err, errlen);
	case S_MQTT_KEY_FILE:
		return parse_text(v, c->mqtt.key_file, sizeof(c->mqtt.key_file), true, err, errlen);
	case S_MQTT_PREFIX:
	case S_MQTT_DISCOVERY_PREFIX: {
		char *dst = id == S_MQTT_PREFIX ? c->mqtt.topic_prefix : c->mqtt.discovery_prefix;

		if (v[0] && !mqtt_prefix_valid(v))
			return fail(err, errlen, "'%s' is not a topic prefix (no '+' or '#', not "
				    "starting with '$')", v);
		return parse_text(v, dst, MQTT_STR_MAX, false, err, errlen);
	}
	case S_TLS_CERT:
	case S_TLS_KEY:
		if (!v[0]) {
			(id == S_TLS_CERT ? c->tls_cert : c->tls_key)[0] = '\0';
			return 0;
		}
		return parse_path(v, id == S_TLS_CERT ? c->tls_cert : c->tls_key,
				  sizeof(c->tls_cert), err, errlen);
	case S_CLIENT_TIMEOUT:
		if (parse_ulong(v, 1, 86400, &ul, err, errlen))
			return -1;
		c->client_timeout_s = (unsigned)ul;
		return 0;
	case S_TOKEN_FILE:
		if (!v[0]) {
			c->access.token_file[0] = '\0';
			return 0;
		}
		return parse_path(v, c->access.token_file, sizeof(c->access.token_file), err,
				  errlen);
	case S_LOOPBACK: {
		int r = access_role_parse(v);

		if (r < 0)
			return fail(err, errlen, "'%s': use control, read or none", v);
		c->access.loopback = (enum access_role)r;
		return 0;
	}
	case S_HOSTS:
	case S_ORIGINS: {
		char *dst = id == S_HOSTS ? c->access.hosts : c->access.origins;
		const char *p;

		if (strlen(v) >= ACCESS_NAMES_MAX)
			return fail(err, errlen, "the list is longer than %d bytes", ACCESS_NAMES_MAX - 1);
		for (p = v; *p; p++)
			if ((unsigned char)*p < ' ' || *p == 0x7f || *p == '"')
				return fail(err, errlen, "the list has a control character or a quote");
		snprintf(dst, ACCESS_NAMES_MAX, "%s", v);
		return 0;
	}
	case S_COUNT:
		break;
	}
	return fail(err, errlen, "internal error");
}

static int lookup(const char *section, const char *key)
{
	int i;

	for (i = 0; i < S_COUNT; i++)
		if (!strcmp(settings[i].section, section) && !strcmp(settings[i].key, key))
			return i;
	return -1;
}

int config_set(struct sw_config *c, const char *section, const char *key, const char *value,
	       char *err, size_t errlen)
{
	int id = lookup(section, key);

	if (id < 0)
		return fail(err, errlen, "unknown setting [%s] %s", section, key);
	return set_one(c, (enum setting_id)id, value, err, errlen);
}

bool config_option_key(const char *option, const char **section, const char **key)
{
	int i;

	for (i = 0; i < S_COUNT; i++)
		if (settings[i].option && !strcmp(settings[i].option, option)) {
			*section = settings[i].section;
			*key = settings[i].key;
			return true;
		}
	return false;
}

/* ---- the file -------------------------------------------------------------- */

struct load_ctx {
	struct sw_config *c;
	bool seen[S_COUNT];
	FILE *f;
	int line;            /* lines read so far: the handler's line */
	char msg[256];       /* the first error the handler found */
	int msg_line;
};

/* inih's line reader, counting lines so that handler errors know theirs */
static char *read_line(char *str, int num, void *stream)
{
	struct load_ctx *x = stream;
	char *r = fgets(str, num, x->f);

	if (r)
		x->line++;
	return r;
}

static bool section_known(const char *s)
{
	int i;

	for (i = 0; i < S_COUNT; i++)
		if (!strcmp(settings[i].section, s))
			return true;
	return false;
}

static int handler(void *user, const char *section, const char *name, const char *value)
{
	struct load_ctx *x = user;
	char err[200];
	int id;

	if (x->msg[0])
		return 0;
	if (!section[0])
		snprintf(x->msg, sizeof(x->msg), "'%s' is outside any [section]", name);
	else if (!section_known(section))
		snprintf(x->msg, sizeof(x->msg), "unknown section [%s] (known: server, sensors, "
			 "posture, cracks, alerts, access, mqtt)", section);
	else if ((id = lookup(section, name)) < 0)
		snprintf(x->msg, sizeof(x->msg), "unknown key '%s' in [%s]", name, section);
	else if (!settings[id].list && x->seen[id])
		snprintf(x->msg, sizeof(x->msg), "[%s] %s is set twice", section, name);
	else if (set_one(x->c, (enum setting_id)id, value, err, sizeof(err)))
		snprintf(x->msg, sizeof(x->msg), "[%s] %s: %s", section, name, err);
	else {
		x->seen[id] = true;
		return 1;
	}
	x->msg_line = x->line;
	return 0;
}

int config_load(struct sw_config *c, const char *path, bool missing_ok, char *err, size_t errlen)
{
	struct load_ctx x;
	struct sw_config work = *c;
	FILE *f = fopen(path, "re");
	int line;

	if (!f) {
		if (missing_ok && errno == ENOENT)
			return 1;
		return fail(err, errlen, "%s: %s", path, strerror(errno));
	}
	memset(&x, 0, sizeof(x));
	x.c = &work;
	x.f = f;
	line = ini_parse_stream(read_line, &x, handler, &x);
	fclose(f);
	if (line == -2)
		return fail(err, errlen, "%s: out of memory", path);
	if (line > 0)
		return fail(err, errlen, "%s:%d: %s", path, line,
			    x.msg[0] && x.msg_line == line ? x.msg :
			    "not a 'key = value' line or a [section]");
	if (line < 0)
		return fail(err, errlen, "%s: cannot read it", path);
	*c = work;
	return 0;
}

const char *config_check(const struct sw_config *c)
{
	char buf[CONFIG_PATH_MAX];
	const char *argv[CONFIG_HOOK_ARGS + 1];

	if (c->bz.backoff_max_ms < c->bz.backoff_min_ms)
		return "[sensors] backoff_max_ms must not be below backoff_min_ms";
	if (c->alerts.battery_clear_pct <= c->alerts.battery_low_pct)
		return "[alerts] battery_clear_pct must be above battery_low_pct";
	if (!c->tls_cert[0] != !c->tls_key[0])
		return "[server] tls_certificate and tls_key go together";
	if (c->alerts.crack_floor > c->alerts.crack_cap)
		return "[alerts] crack_rate_floor must not be above crack_rate_cap";
	if (config_hook_argv(c, buf, sizeof(buf), argv) < 0)
		return "[alerts] hook: more than 16 words";
	if (alerts_config_check(&c->alerts))
		return alerts_config_check(&c->alerts);
	if (breaks_config_check(&c->breaks))
		return breaks_config_check(&c->breaks);
	if (c->cracks.merge_ms && cracks_config_check(&c->cracks))
		return cracks_config_check(&c->cracks);
	if (mqtt_config_check(&c->mqtt))
		return mqtt_config_check(&c->mqtt);
	return detector_config_check(&c->det);
}

int config_hook_argv(const struct sw_config *c, char *buf, size_t buflen,
		     const char *argv[CONFIG_HOOK_ARGS + 1])
{
	char *tok, *save = NULL;
	int n = 0;

	snprintf(buf, buflen, "%s", c->hook);
	for (tok = strtok_r(buf, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		if (n == CONFIG_HOOK_ARGS)
			return -1;
		argv[n++] = tok;
	}
	argv[n] = NULL;
	return n;
}
