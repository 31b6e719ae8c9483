/*
 * test_config.c - unit tests for daemon/config.c: the settings file and the
 * command-line settings. The commented sample systemd/spinewatchd.conf must
 * load to exactly the built-in defaults, both as shipped (all commented) and
 * with every setting uncommented, so the sample cannot drift from the code.
 * Errors carry FILE:LINE.
 *
 * Usage: test_config [path/to/spinewatchd.conf]
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

static const char *sample = "systemd/spinewatchd.conf";

static void defaults(struct sw_config *c)
{
	unsetenv("STATE_DIRECTORY");
	config_defaults(c, "127.0.0.1:8421", "/usr/share/spinewatch/web");
}

/* Write text to a temp file; returns its path (static buffer). */
static const char *temp_file(const char *text)
{
	static char path[64];
	int fd;

	if (!text)
		return path;   /* the last one's */
	snprintf(path, sizeof(path), "/tmp/test_config.XXXXXX");
	fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static const char *temp_file_path(void);

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf;
	long n;

	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	rewind(f);
	buf = calloc(1, (size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	return buf;
}

static void assert_same_config(const struct sw_config *a, const struct sw_config *b)
{
	assert_string_equal(a->listen, b->listen);
	assert_string_equal(a->web_root, b->web_root);
	assert_string_equal(a->state_dir, b->state_dir);
	assert_int_equal(a->ring_size, b->ring_size);
	assert_int_equal(a->max_clients, b->max_clients);
	assert_int_equal(a->log_level, b->log_level);
	assert_true(a->det.threshold_deg == b->det.threshold_deg);
	assert_true(a->det.hysteresis_deg == b->det.hysteresis_deg);
	assert_int_equal(a->det.delay_ms, b->det.delay_ms);
	assert_int_equal(a->det.calibration_ms, b->det.calibration_ms);
	assert_int_equal(a->bz.n_allow, b->bz.n_allow);
	assert_int_equal(a->bz.n_deny, b->bz.n_deny);
	assert_int_equal(a->bz.profiles, b->bz.profiles);
	assert_int_equal(a->bz.discovery, b->bz.discovery);
	assert_int_equal(a->bz.acquire, b->bz.acquire);
	assert_int_equal(a->bz.backoff_min_ms, b->bz.backoff_min_ms);
	assert_int_equal(a->bz.backoff_max_ms, b->bz.backoff_max_ms);
	assert_int_equal(a->bz.sensor_period_ms, b->bz.sensor_period_ms);
	assert_int_equal(a->alerts.slouch_long_ms, b->alerts.slouch_long_ms);
	assert_int_equal(a->alerts.sensor_lost_ms, b->alerts.sensor_lost_ms);
	assert_int_equal(a->alerts.battery_low_pct, b->alerts.battery_low_pct);
	assert_int_equal(a->alerts.battery_clear_pct, b->alerts.battery_clear_pct);
	assert_int_equal(a->alerts.crack_floor, b->alerts.crack_floor);
	assert_int_equal(a->history.event_days, b->history.event_days);
	assert_int_equal(a->history.daily_days, b->history.daily_days);
	assert_int_equal(a->alerts.crack_cap, b->alerts.crack_cap);
	assert_true(a->alerts.crack_factor == b->alerts.crack_factor);
	assert_memory_equal(a->alerts.cooldown_ms, b->alerts.cooldown_ms, sizeof(a->alerts.cooldown_ms));
	assert_int_equal(a->breaks.interval_ms, b->breaks.interval_ms);
	assert_string_equal(a->hook, b->hook);
	assert_int_equal(a->hook_timeout_ms, b->hook_timeout_ms);
	assert_memory_equal(a->alerts.enabled, b->alerts.enabled, sizeof(a->alerts.enabled));
	assert_int_equal(a->mqtt.enabled, b->mqtt.enabled);
	assert_string_equal(a->mqtt.host, b->mqtt.host);
	assert_int_equal(a->mqtt.port, b->mqtt.port);
	assert_string_equal(a->mqtt.client_id, b->mqtt.client_id);
	assert_string_equal(a->mqtt.username, b->mqtt.username);
	assert_string_equal(a->mqtt.password, b->mqtt.password);
	assert_string_equal(a->mqtt.password_file, b->mqtt.password_file);
	assert_string_equal(a->mqtt.ca_file, b->mqtt.ca_file);
	assert_string_equal(a->mqtt.cert_file, b->mqtt.cert_file);
	assert_string_equal(a->mqtt.key_file, b->mqtt.key_file);
	assert_string_equal(a->mqtt.topic_prefix, b->mqtt.topic_prefix);
	assert_int_equal(a->mqtt.discovery, b->mqtt.discovery);
	assert_string_equal(a->mqtt.discovery_prefix, b->mqtt.discovery_prefix);
	assert_int_equal(a->mqtt.keepalive, b->mqtt.keepalive);
	assert_int_equal(a->cracks.merge_ms, b->cracks.merge_ms);
}

static const char *temp_file_path(void)
{
	return temp_file(NULL);
}

static void test_sample_as_shipped(void **state)
{
	struct sw_config def, c;
	char err[512];

	(void)state;
	defaults(&def);
	defaults(&c);
	if (config_load(&c, sample, false, err, sizeof(err)))
		fail_msg("%s", err);
	assert_same_config(&c, &def);
}

/* "#key = value" lines (no space after #) are settings; uncomment them all. */
static void test_sample_uncommented_is_defaults(void **state)
{
	struct sw_config def, c;
	char err[512], *text = slurp(sample), *out, *line, *save = NULL;
	size_t n = 0, settings = 0;

	(void)state;
	out = calloc(1, strlen(text) + 2);
	assert_non_null(out);
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (line[0] == '#' && line[1] != ' ' && line[1] != '\0' && strchr(line, '=')) {
			line++;
			settings++;
		}
		n += (size_t)sprintf(out + n, "%s\n", line);
	}
	assert_true(settings >= 42);   /* every setting is in the sample */
	defaults(&def);
	defaults(&c);
	if (config_load(&c, temp_file(out), false, err, sizeof(err)))
		fail_msg("uncommented sample: %s", err);
	unlink(temp_file_path());
	assert_same_config(&c, &def);
	free(text);
	free(out);
}

static void test_values(void **state)
{
	struct sw_config c;
	char err[512];
	const char *path = temp_file(
		"; a comment\n"
		"[server]\n"
		"listen = [::1]:9000\n"
		"log_level = debug\n"
		"[sensors]\n"
		"allow = c0:ff:ee:00:00:01, C0:FF:EE:00:00:02\n"
		"allow = C0:FF:EE:00:00:03\n"
		"deny = AA:BB:CC:DD:EE:FF\n"
		"profiles = thingy52\n"
		"discovery = off\n"
		"notify_path = start\n"
		"backoff_min_ms = 500\n"
		"[posture]\n"
		"threshold_deg = 12.5\n"
		"delay_s = 90\n"
		"[alerts]\n"
		"slouch_long_min = 0.1\n"
		"[mqtt]\n"
		"enabled = true\n"
		"host = broker.example\n"
		"port = 8883\n"
		"username = hub\n"
		"password_file = /etc/spinewatch/mqtt-password\n"
		"ca_file = /etc/ssl/certs/ca.pem\n"
		"topic_prefix = clinic/room-2/\n"
		"discovery = false\n"
		"keepalive = 30\n");

	(void)state;
	defaults(&c);
	if (config_load(&c, path, false, err, sizeof(err)))
		fail_msg("%s", err);
	assert_string_equal(c.listen, "[::1]:9000");
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_int_equal(c.bz.n_allow, 3);
	assert_string_equal(c.bz.allow[0], "C0:FF:EE:00:00:01");
	assert_string_equal(c.bz.allow[2], "C0:FF:EE:00:00:03");
	assert_int_equal(c.bz.n_deny, 1);
	assert_int_equal(c.bz.profiles, SW_PROFILE_BIT(SW_PROFILE_THINGY52));
	assert_false(c.bz.discovery);
	assert_false(c.bz.acquire);
	assert_int_equal(c.bz.backoff_min_ms, 500);
	assert_true(c.det.threshold_deg == 12.5);
	assert_int_equal(c.det.delay_ms, 90000);
	assert_int_equal(c.alerts.slouch_long_ms, 6000);   /* decimal minutes */
	assert_true(c.mqtt.enabled);
	assert_string_equal(c.mqtt.host, "broker.example");
	assert_int_equal(c.mqtt.port, 8883);
	assert_string_equal(c.mqtt.username, "hub");
	assert_string_equal(c.mqtt.password_file, "/etc/spinewatch/mqtt-password");
	assert_string_equal(c.mqtt.ca_file, "/etc/ssl/certs/ca.pem");
	assert_string_equal(c.mqtt.topic_prefix, "clinic/room-2/");
	assert_false(c.mqtt.discovery);
	assert_string_equal(c.mqtt.discovery_prefix, "homeassistant");
	assert_int_equal(c.mqtt.keepalive, 30);
	assert_null(config_check(&c));
	unlink(path);
}

/* Each bad file: the whole message, FILE:LINE included; c is left unchanged. */
static void expect_error(const char *text, int line, const char *msg)
{
	struct sw_config c, def;
	char err[512], want[600];
	const char *path = temp_file(text);

	defaults(&c);
	def = c;
	assert_int_equal(config_load(&c, path, false, err, sizeof(err)), -1);
	snprintf(want, sizeof(want), "%s:%d: %s", path, line, msg);
	assert_string_equal(err, want);
	assert_same_config(&c, &def);
	unlink(path);
}

static void test_errors(void **state)
{
	(void)state;
	expect_error("[server]\nlisten = 127.0.0.1:1\nfoo = 1\n", 3, "unknown key 'foo' in [server]");
	expect_error("[posture]\n\n[sparks]\nx = 1\n", 4,
		     "unknown section [sparks] (known: server, sensors, posture, cracks, alerts, "
		     "access, mqtt)");
	expect_error("threshold_deg = 3\n", 1, "'threshold_deg' is outside any [section]");
	expect_error("[posture]\nthreshold_deg = 15\nthreshold_deg = 16\n", 3,
		     "[posture] threshold_deg is set twice");
	expect_error("[posture]\ndelay_s = soon\n", 2,
		     "[posture] delay_s: 'soon' is not a number from 0 to 86400");
	expect_error("[posture]\nthreshold_deg = nan\n", 2,
		     "[posture] threshold_deg: 'nan' is not a number from 1 to 90");
	expect_error("[server]\nring_size = 3\n", 2,
		     "[server] ring_size: '3' is not a whole number from 4 to 1000000");
	expect_error("[server]\nring_size = -5\n", 2,
		     "[server] ring_size: '-5' is not a whole number from 4 to 1000000");
	expect_error("[server]\nweb_root = relative/dir\n", 2,
		     "[server] web_root: 'relative/dir' is not an absolute path");
	expect_error("[server]\nlog_level = loud\n", 2,
		     "[server] log_level: 'loud': use warning, info or debug");
	expect_error("[sensors]\nallow = C0:FF:EE:00:00:01, nope\n", 2,
		     "[sensors] allow: 'nope' is not a Bluetooth address (AA:BB:CC:DD:EE:FF)");
	expect_error("[sensors]\nprofiles = fitbit\n", 2,
		     "[sensors] profiles: 'fitbit': use a comma-separated list of spinewatch, "
		     "microbit, thingy52");
	expect_error("[sensors]\ndiscovery = yes\n", 2, "[sensors] discovery: 'yes': use auto or off");
	expect_error("[alerts]\nhook = notify-send\n", 2,
		     "[alerts] hook: 'notify-send': the command must be an absolute path");
	expect_error("[alerts]\nslouch_long_min = 0.01\n", 2,
		     "[alerts] slouch_long_min: '0.01' is not a number from 0.05 to 480");
	expect_error("[alerts]\nslouch_long_min = 481\n", 2,
		     "[alerts] slouch_long_min: '481' is not a number from 0.05 to 480");
	expect_error("[alerts]\nbreak_interval_min = 2\n", 2,
		     "[alerts] break_interval_min: '2' is not a whole number from 5 to 480");
	expect_error("[alerts]\ndisable = crack-rate, nagging\n", 2,
		     "[alerts] disable: 'nagging' is not an alert rule (slouch-long, no-break, "
		     "crack-rate, grinding, self-manipulation, sensor-lost, battery-low)");
	expect_error("[mqtt]\nenabled = yes\n", 2, "[mqtt] enabled: 'yes': use true or false");
	expect_error("[mqtt]\nport = 0\n", 2,
		     "[mqtt] port: '0' is not a whole number from 1 to 65535");
	expect_error("[mqtt]\nkeepalive = 2\n", 2,
		     "[mqtt] keepalive: '2' is not a whole number from 5 to 3600");
	expect_error("[mqtt]\nca_file = ca.pem\n", 2, "[mqtt] ca_file: 'ca.pem' is not an absolute path");
	expect_error("[mqtt]\ntopic_prefix = spinewatch/#\n", 2,
		     "[mqtt] topic_prefix: 'spinewatch/#' is not a topic prefix (no '+' or '#', not "
		     "starting with '$')");
	expect_error("[mqtt]\nhost = a b\n", 2, "[mqtt] host: 'a b' is not a host name or address");
	expect_error("[server]\nlisten\n", 2, "not a 'key = value' line or a [section]");
	expect_error("[server\nlisten = x:1\n", 1, "not a 'key = value' line or a [section]");
}

static void test_missing_file(void **state)
{
	struct sw_config c;
	char err[512];

	(void)state;
	defaults(&c);
	assert_int_equal(config_load(&c, "/nonexistent/spinewatchd.conf", true, err, sizeof(err)), 1);
	assert_int_equal(config_load(&c, "/nonexistent/spinewatchd.conf", false, err, sizeof(err)), -1);
	assert_string_equal(err, "/nonexistent/spinewatchd.conf: No such file or directory");
}

static void test_cross_checks_and_options(void **state)
{
	struct sw_config c;
	const char *section, *key;
	char err[512];

	(void)state;
	defaults(&c);
	assert_int_equal(config_set(&c, "sensors", "backoff_max_ms", "500", err, sizeof(err)), 0);
	assert_string_equal(config_check(&c), "[sensors] backoff_max_ms must not be below backoff_min_ms");
	defaults(&c);
	assert_int_equal(config_set(&c, "posture", "hysteresis_deg", "20", err, sizeof(err)), 0);
	assert_non_null(config_check(&c));   /* hysteresis above the threshold */
	assert_int_equal(config_set(&c, "posture", "nope", "1", err, sizeof(err)), -1);
	assert_string_equal(err, "unknown setting [posture] nope");
	assert_true(config_option_key("slouch-delay", &section, &key));
	assert_string_equal(section, "posture");
	assert_string_equal(key, "delay_s");
	assert_true(config_option_key("sensor-period", &section, &key));
	assert_string_equal(key, "sensor_period_ms");
	assert_false(config_option_key("config", &section, &key));
	defaults(&c);
	assert_int_equal(config_set(&c, "alerts", "battery_clear_pct", "10", err, sizeof(err)), 0);
	assert_string_equal(config_check(&c), "[alerts] battery_clear_pct must be above battery_low_pct");
	defaults(&c);
	assert_int_equal(config_set(&c, "alerts", "crack_rate_floor", "30", err, sizeof(err)), 0);
	assert_string_equal(config_check(&c), "[alerts] crack_rate_floor must not be above crack_rate_cap");
	assert_int_equal(config_set(&c, "alerts", "crack_rate_cap", "40", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "alerts", "crack_rate_factor", "2.5", err, sizeof(err)), 0);
	assert_null(config_check(&c));
	assert_true(c.alerts.crack_floor == 30 && c.alerts.crack_cap == 40 &&
		    c.alerts.crack_factor == 2.5);
	assert_int_equal(config_set(&c, "alerts", "crack_rate_factor", "0.5", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "alerts", "crack_rate_cap", "1001", err, sizeof(err)), -1);
	assert_int_equal(config_set(&c, "server", "history_days", "30", err, sizeof(err)), 0);
	assert_int_equal(c.history.event_days, 30);
	assert_int_equal(config_set(&c, "server", "daily_history_days", "0", err, sizeof(err)), -1);
	defaults(&c);
	assert_int_equal(config_set(&c, "alerts", "hook", "/usr/bin/logger -t spinewatch", err,
				    sizeof(err)), 0);
	{
		char buf[512];
		const char *argv[CONFIG_HOOK_ARGS + 1];

		assert_int_equal(config_hook_argv(&c, buf, sizeof(buf), argv), 3);
		assert_string_equal(argv[0], "/usr/bin/logger");
		assert_string_equal(argv[2], "spinewatch");
		assert_null(argv[3]);
	}
	defaults(&c);
	assert_null(config_check(&c));   /* MQTT is off: its settings are not checked */
	assert_int_equal(config_set(&c, "mqtt", "enabled", "true", err, sizeof(err)), 0);
	assert_null(config_check(&c));
	assert_int_equal(config_set(&c, "mqtt", "password", "x", err, sizeof(err)), 0);
	assert_string_equal(config_check(&c), "[mqtt] a password needs a username");
	assert_int_equal(config_set(&c, "mqtt", "username", "hub", err, sizeof(err)), 0);
	assert_null(config_check(&c));
	assert_int_equal(config_set(&c, "mqtt", "password_file", "/run/pw", err, sizeof(err)), 0);
	assert_string_equal(config_check(&c), "[mqtt] password and password_file: set one of them");
	assert_int_equal(config_set(&c, "mqtt", "password", "", err, sizeof(err)), 0);
	assert_int_equal(config_set(&c, "mqtt", "cert_file", "/etc/c.pem", err, sizeof(err)), 0);
	assert_string_equal(config_check(&c), "[mqtt] cert_file and key_file go together");
	assert_int_equal(config_set(&c, "mqtt", "key_file", "/etc/c.key", err, sizeof(err)), 0);
	assert_string_equal(config_check(&c), "[mqtt] a client certificate needs ca_file (TLS)");
	assert_int_equal(config_set(&c, "mqtt", "ca_file", "/etc/ca.pem", err, sizeof(err)), 0);
	assert_null(config_check(&c));
	assert_int_equal(config_set(&c, "mqtt", "host", "", err, sizeof(err)), 0);
	assert_string_equal(config_check(&c), "[mqtt] host must be set when enabled");
	assert_int_equal(config_set(&c, "mqtt", "client_id", "a\tb", err, sizeof(err)), -1);
	assert_string_equal(err, "control characters are not allowed");
	setenv("STATE_DIRECTORY", "/var/lib/spinewatch:/var/lib/other", 1);
	config_defaults(&c, "127.0.0.1:8421", "/w");
	assert_string_equal(c.state_dir, "/var/lib/spinewatch");
	unsetenv("STATE_DIRECTORY");
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sample_as_shipped),
		cmocka_unit_test(test_sample_uncommented_is_defaults),
		cmocka_unit_test(test_values),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_cross_checks_and_options),
	};

	if (argc > 1)
		sample = argv[1];
	return cmocka_run_group_tests(tests, NULL, NULL);
}
