/*
 * main.c - spinewatchd: command line, wiring of the modules, lifetime.
 *
 *   BlueZ (D-Bus) -> bluez.c -> sensors.c (decoders, detector) -> store.c
 *   (rings) -> feed.c (WebSocket) ; server.c serves web/ ; loop.c runs it all.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "alert_center.h"
#include "annotations.h"
#include "history.h"
#include "service.h"
#include "stats_keeper.h"
#include "bluez.h"
#include "config.h"
#include "detector.h"
#include "feed.h"
#include "http_api.h"
#include "log.h"
#include "loop.h"
#include "mqtt.h"
#include "sensors.h"
#include "server.h"
#include "store.h"

#ifndef SPINEWATCH_VERSION
#define SPINEWATCH_VERSION "0.1.0"
#endif
#ifndef SPINEWATCH_WEB_ROOT
#define SPINEWATCH_WEB_ROOT "/usr/share/spinewatch/web"
#endif

struct options {
	struct sw_config cfg;
	const char *config_path;
	bool config_given, check_only;
	int argc;
	char **argv;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: spinewatchd [OPTION]...\n"
		"Watch posture and back-crack sensors over Bluetooth LE (BlueZ) and stream\n"
		"slouch and crack events to a web dashboard and WebSocket clients.\n"
		"\n"
		"  -c, --config FILE          settings file (default %s;\n"
		"                             options given here override it)\n"
		"      --check-config         check the settings file and options, then exit\n"
		"  -l, --listen HOST:PORT     where to serve / and /ws (default %s;\n"
		"                             IPv6 as [::1]:8421)\n"
		"  -w, --web-root DIR         dashboard files (default %s)\n"
		"      --state-dir DIR        state kept across restarts (default %s,\n"
		"                             or $STATE_DIRECTORY)\n"
		"      --ring-size N          events kept for replay (default 4096)\n"
		"      --max-clients N        WebSocket clients at once (default %d)\n"
		"      --client-timeout SEC   drop a client that takes nothing it is due for SEC\n"
		"                             (default 60)\n"
		"      --token-file FILE      access tokens (needed to listen beyond loopback)\n"
		"      --tls-cert FILE        serve https/wss with this PEM certificate...\n"
		"      --tls-key FILE         ...and its key\n"
		"      --slouch-threshold DEG flexion angle that counts as slouched (default %.0f)\n"
		"      --slouch-hysteresis DEG  a slouch ends below threshold-DEG (default %.0f)\n"
		"      --slouch-delay SEC     how long beyond the threshold before a slouch (default %d)\n"
		"      --calibration SEC      first SEC of samples = upright baseline (default %d)\n"
		"\nSensors:\n"
		"      --allow ADDR           adopt only this sensor (repeatable); default: any\n"
		"                             device with a supported profile\n"
		"      --deny ADDR            never adopt this device (repeatable)\n"
		"      --profiles LIST        profiles to adopt (default spinewatch,microbit,thingy52)\n"
		"      --discovery auto|off   discover while a wanted sensor is missing (default auto)\n"
		"      --backoff-min MS       first reconnect delay (default 1000)\n"
		"      --backoff-max MS       longest reconnect delay (default 60000)\n"
		"      --notify-path auto|start  auto: AcquireNotify, falling back to StartNotify\n"
		"      --sensor-period MS     accelerometer period asked of micro:bit and Thingy:52\n"
		"                             (default 80)\n"
		"\n"
		"      --alert-hook COMMAND   run COMMAND with each raised alert as JSON on stdin\n"
		"      --disable-alerts LIST  alert rules to leave out (e.g. crack-rate,no-break)\n"
		"      --crack-merge-ms MS    crack reports within MS merge into one (default 150;\n"
		"                             0: each report is a crack at once, no crack patterns)\n"
		"      --log-level LEVEL      warning, info (default) or debug\n"
		"  -v, --verbose              debug log output\n"
		"  -q, --quiet                errors and warnings only\n"
		"  -V, --version              print the version and exit\n"
		"  -h, --help                 print this help and exit\n"
		"\n"
		"SIGHUP reloads the settings file. The D-Bus system bus is used;\n"
		"DBUS_SYSTEM_BUS_ADDRESS overrides its address. Feed protocol:\n"
		"protocol/websocket-feed.md; HTTP API and /metrics: protocol/http-api.md.\n",
		CONFIG_DEFAULT_PATH, SERVER_DEFAULT_LISTEN, SPINEWATCH_WEB_ROOT,
		CONFIG_DEFAULT_STATE_DIR, FEED_DEFAULT_MAX_CLIENTS, DETECTOR_DEFAULT_THRESHOLD_DEG,
		DETECTOR_DEFAULT_HYSTERESIS_DEG, DETECTOR_DEFAULT_DELAY_MS / 1000,
		DETECTOR_DEFAULT_CALIBRATION_MS / 1000);
}

enum { OPT_CHECK = 256, OPT_SETTING = 512 };

/* Options that set a setting carry OPT_SETTING + their index here. */
static const struct option longopts[] = {
	{ "listen", required_argument, NULL, OPT_SETTING + 0 },
	{ "web-root", required_argument, NULL, OPT_SETTING + 1 },
	{ "state-dir", required_argument, NULL, OPT_SETTING + 2 },
	{ "ring-size", required_argument, NULL, OPT_SETTING + 3 },
	{ "max-clients", required_argument, NULL, OPT_SETTING + 4 },
	{ "slouch-threshold", required_argument, NULL, OPT_SETTING + 5 },
	{ "slouch-hysteresis", required_argument, NULL, OPT_SETTING + 6 },
	{ "slouch-delay", required_argument, NULL, OPT_SETTING + 7 },
	{ "calibration", required_argument, NULL, OPT_SETTING + 8 },
	{ "allow", required_argument, NULL, OPT_SETTING + 9 },
	{ "deny", required_argument, NULL, OPT_SETTING + 10 },
	{ "profiles", required_argument, NULL, OPT_SETTING + 11 },
	{ "discovery", required_argument, NULL, OPT_SETTING + 12 },
	{ "backoff-min", required_argument, NULL, OPT_SETTING + 13 },
	{ "backoff-max", required_argument, NULL, OPT_SETTING + 14 },
	{ "notify-path", required_argument, NULL, OPT_SETTING + 15 },
	{ "sensor-period", required_argument, NULL, OPT_SETTING + 16 },
	{ "log-level", required_argument, NULL, OPT_SETTING + 17 },
	{ "alert-hook", required_argument, NULL, OPT_SETTING + 18 },
	{ "disable-alerts", required_argument, NULL, OPT_SETTING + 19 },
	{ "crack-merge-ms", required_argument, NULL, OPT_SETTING + 20 },
	{ "tls-cert", required_argument, NULL, OPT_SETTING + 21 },
	{ "tls-key", required_argument, NULL, OPT_SETTING + 22 },
	{ "client-timeout", required_argument, NULL, OPT_SETTING + 23 },
	{ "token-file", required_argument, NULL, OPT_SETTING + 24 },
	{ "config", required_argument, NULL, 'c' },
	{ "check-config", no_argument, NULL, OPT_CHECK },
	{ "verbose", no_argument, NULL, 'v' },
	{ "quiet", no_argument, NULL, 'q' },
	{ "version", no_argument, NULL, 'V' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};
#define SHORTOPTS "c:l:w:vqVh"

/*
 * Settings = defaults, then the file, then the command line. Used at start
 * and again on SIGHUP. Returns 0, or -1 with a message in err.
 */
static int settings_load(const struct options *o, struct sw_config *out, char *err, size_t errlen)
{
	char why[256];
	int c, r;

	config_defaults(out, SERVER_DEFAULT_LISTEN, SPINEWATCH_WEB_ROOT);
	r = config_load(out, o->config_path, !o->config_given, why, sizeof(why));
	if (r < 0) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	optind = 0;   /* glibc: rescan from the start */
	opterr = 0;
	while ((c = getopt_long(o->argc, o->argv, SHORTOPTS, longopts, NULL)) != -1) {
		const char *name = NULL, *section, *key;

		if (c >= OPT_SETTING)
			name = longopts[c - OPT_SETTING].name;
		else if (c == 'l')
			name = "listen";
		else if (c == 'w')
			name = "web-root";
		else if (c == 'v')
			out->log_level = LOG_DEBUG;
		else if (c == 'q')
			out->log_level = LOG_WARNING;
		if (name && config_option_key(name, &section, &key) &&
		    config_set(out, section, key, optarg, why, sizeof(why))) {
			snprintf(err, errlen, "--%s: %s", name, why);
			return -1;
		}
	}
	{
		const char *bad = config_check(out);

		if (bad) {
			snprintf(err, errlen, "%s", bad);
			return -1;
		}
	}
	return 0;
}

static bool listens_on_loopback(const char *listen)
{
	char host[64];
	int port;

	return server_parse_listen(listen, host, sizeof(host), &port) == 0 &&
	       access_listen_is_loopback(host);
}

/* Tokens and checks from the settings: 0, or -1 with the reason in err. */
static int load_access(const struct sw_config *c, struct access *a, char *err, size_t errlen)
{
	char host[64];
	int port;
	const char *why;

	if (access_init(a, &c->access, err, errlen) < 0)
		return -1;
	if (server_parse_listen(c->listen, host, sizeof(host), &port) == 0 &&
	    (why = access_exposure_problem(a, host))) {
		snprintf(err, errlen, "%s", why);
		return -1;
	}
	return 0;
}

/* 0: run, 1: exit 0 (help/version/check), -1: exit 2 (usage), -2: exit 1 (settings) */
static int parse_options(int argc, char **argv, struct options *o)
{
	char err[512];
	int c;

	o->argc = argc;
	o->argv = argv;
	o->config_path = CONFIG_DEFAULT_PATH;
	while ((c = getopt_long(argc, argv, SHORTOPTS, longopts, NULL)) != -1) {
		switch (c) {
		case 'c': o->config_path = optarg; o->config_given = true; break;
		case OPT_CHECK: o->check_only = true; break;
		case 'V': printf("spinewatchd %s\n", SPINEWATCH_VERSION); return 1;
		case 'h': usage(stdout); return 1;
		case '?': usage(stderr); return -1;
		default: break;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "spinewatchd: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (settings_load(o, &o->cfg, err, sizeof(err))) {
		fprintf(stderr, "spinewatchd: %s\n", err);
		return -2;
	}
	if (o->check_only) {
		struct access *a = malloc(sizeof(*a));

		if (!a || load_access(&o->cfg, a, err, sizeof(err)) < 0) {
			fprintf(stderr, "spinewatchd: %s\n", a ? err : "out of memory");
			free(a);
			return -2;
		}
		free(a);
		printf("spinewatchd: settings OK (%s%s)\n", o->config_path,
		       o->config_given || access(o->config_path, F_OK) == 0 ? "" : " absent: defaults");
		return 1;
	}
	return 0;
}

/* What SIGHUP and client commands need to reach. */
struct running {
	struct options *o;
	struct sensors *sensors;
	struct bluez *bz;
	struct alert_center *alerts;
	struct stats_keeper *stats;
	struct service *service;
	struct history *history;
	struct store *store;
	struct feed *feed;
	struct loop *loop;
	struct mqtt *mqtt;
	struct http_api *api;
	struct access *access;
};

/* The MQTT publisher of the current [mqtt] settings (NULL when none; a broker
 * that is away or refuses is logged and retried, never fatal), and /metrics
 * told of it. The one before, if any, says offline and goes first. */
static void restart_mqtt(struct running *run)
{
	if (run->api)
		http_api_set_mqtt(run->api, NULL);
	mqtt_free(run->mqtt);
	run->mqtt = mqtt_new(&run->o->cfg.mqtt, &(struct mqtt_sources){
		.store = run->store, .history = run->history, .sensors = run->sensors,
		.alerts = run->alerts, .stats = run->stats, .state_dir = run->o->cfg.state_dir,
		.version = SPINEWATCH_VERSION }, run->loop);
	if (run->api)
		http_api_set_mqtt(run->api, run->mqtt);
}


/* The alert hook's settings from the file's [alerts] hook (argv points into buf). */
static const struct alert_hook_config *hook_config(const struct sw_config *c,
						   struct alert_hook_config *h, char *buf,
						   size_t buflen, const char **argv)
{
	alert_hook_config_default(h);
	if (config_hook_argv(c, buf, buflen, argv) <= 0)
		return NULL;
	h->argv = argv;
	h->timeout_ms = c->hook_timeout_ms;
	return h;
}

static bool feed_command(void *user, const struct feed_command *cmd, const char **result,
			 const char **code, const char **message)
{
	struct running *run = user;

	switch (cmd->type) {
	case FEED_CMD_ACK:
		return alert_center_ack(run->alerts, cmd->alert, result, code, message);
	case FEED_CMD_CALIBRATE:
		*result = "started";
		return sensors_calibrate(run->sensors, cmd->sensor, code, message);
	case FEED_CMD_STATS:   /* answered by the feed itself (feed_stats) */
	case FEED_CMD_SUBSCRIBE:
	case FEED_CMD_PING:
		break;
	case FEED_CMD_ANNOTATE:
		return annotations_add(run->store, run->history, cmd, result, code, message);
	}
	*code = "unknown-command";
	*message = "unknown command";
	return false;
}

static size_t feed_alerts(void *user, struct feed_alert_info *out, size_t max)
{
	struct running *run = user;

	return run->alerts ? alert_center_active(run->alerts, out, max) : 0;
}

static json_t *feed_stats(void *user, const char *sensor_or_NULL)
{
	struct running *run = user;
	json_t *o = run->stats ? stats_keeper_json(run->stats, clock_epoch_ms(), sensor_or_NULL) :
				 NULL;

	if (o)
		json_object_del(o, "type");
	return o;
}

/* systemd's status line: "2 sensors streaming, 3 clients" */
static void service_status(void *user, char *buf, size_t len)
{
	struct running *run = user;
	struct feed_sensor_info sensors[SENSORS_MAX];
	size_t n = sensors_snapshot(run->sensors, sensors, SENSORS_MAX), streaming = 0, i;
	unsigned clients = run->feed ? feed_clients(run->feed) : 0;

	for (i = 0; i < n; i++)
		streaming += sensors[i].state && !strcmp(sensors[i].state, "streaming");
	snprintf(buf, len, "%zu sensor%s streaming (%zu known), %u client%s%s%s", streaming,
		 streaming == 1 ? "" : "s", n, clients, clients == 1 ? "" : "s",
		 run->history && history_problem(run->history) ? "; history not written: " : "",
		 run->history && history_problem(run->history) ? history_problem(run->history) : "");
}

/* ---- the durable store: refill the ring, continue the numbering and the stream ---- */

static void refill_one(void *user, uint64_t seq, const char *json, size_t len)
{
	static struct log_ratelimit rl;

	if (store_refill(user, seq, json, len) < 0)
		log_rl(&rl, LOG_WARNING, "history: event %llu not put back into the ring",
		       (unsigned long long)seq);
}

static void history_sink(void *user, const struct feed_event *ev, const char *json, size_t len)
{
	history_add_event(user, ev->seq, ev->ts_ms, store_kind_name(ev->kind), ev->sensor, json,
			  len);
}

static struct history *open_history(const struct sw_config *c, struct store *store,
				    char stream[17])
{
	char err[256];
	struct history *h = history_open(c->state_dir, &c->history, err, sizeof(err));
	long n;

	if (!h) {
		log_warn("history: none kept this run (%s): events stream live but do not outlive "
			 "a restart", err);
		return NULL;
	}
	n = history_recent(h, c->ring_size, refill_one, store);
	if (n <= 0 && history_last_seq(h))
		store_start_at(store, history_last_seq(h) + 1);
	if (n > 0 || history_last_seq(h))
		log_info("history: %ld events back in the ring, numbering continues at %llu", n > 0 ? n : 0,
			 (unsigned long long)ring_last_seq(store_events(store)) + 1);
	snprintf(stream, 17, "%s", history_stream(h));
	store_set_sink(store, history_sink, h);
	return h;
}

static void quit_now(void *user)
{
	loop_quit(user, 0);
}

/* SIGTERM/SIGINT: tell systemd, say goodbye to the feed's clients, then stop. */
static void stopping(void *user)
{
	struct running *run = user;

	service_stopping(run->service);
	feed_going_away(run->feed, quit_now, run->loop);
}

static void reload_settings(struct running *run);

static void reload(void *user)
{
	struct running *run = user;

	service_reloading(run->service);
	reload_settings(run);
	service_reloaded(run->service);
}

static void reload_settings(struct running *run)
{
	struct sw_config *cur = &run->o->cfg, next;
	char err[512];

	if (settings_load(run->o, &next, err, sizeof(err))) {
		log_error("settings not reloaded, the old ones stay: %s", err);
		return;
	}
	if (strcmp(next.listen, cur->listen) || strcmp(next.web_root, cur->web_root) ||
	    strcmp(next.state_dir, cur->state_dir) || next.ring_size != cur->ring_size ||
	    next.max_clients != cur->max_clients)
		log_warn("[server] listen, web_root, state_directory, ring_size and max_clients "
			 "take effect at the next start");
	if (memcmp(&next.mqtt, &cur->mqtt, sizeof(next.mqtt))) {
		cur->mqtt = next.mqtt;
		log_info("mqtt: settings changed: %s", cur->mqtt.enabled ? "reconnecting" : "off");
		restart_mqtt(run);
	}
	log_init(next.log_level);
	cur->log_level = next.log_level;
	cur->history = next.history;
	if (run->history)
		history_set_config(run->history, &next.history);
	cur->det = next.det;   /* hello reads it from here */
	sensors_set_detector_config(run->sensors, &next.det);
	cur->bz = next.bz;
	if (run->bz)
		bluez_set_config(run->bz, &next.bz);
	cur->breaks = next.breaks;
	sensors_set_breaks_config(run->sensors, &next.breaks);
	cur->cracks = next.cracks;
	sensors_set_cracks_config(run->sensors, &next.cracks);
	if (run->access) {
		struct access *acc = malloc(sizeof(*acc));

		if (acc && load_access(&next, acc, err, sizeof(err)) == 0) {
			*run->access = *acc;
			cur->access = next.access;
			log_info("access: %zu token(s) from %s", acc->n_tokens,
				 next.access.token_file[0] ? next.access.token_file : "no token file");
		} else {
			log_error("access tokens not reloaded, the old ones stay: %s",
				  acc ? err : "out of memory");
		}
		free(acc);
	}
	cur->alerts = next.alerts;
	snprintf(cur->hook, sizeof(cur->hook), "%s", next.hook);
	cur->hook_timeout_ms = next.hook_timeout_ms;
	{
		struct alert_hook_config h;
		char buf[CONFIG_PATH_MAX];
		const char *argv[CONFIG_HOOK_ARGS + 1];

		alert_center_reconfigure(run->alerts, &next.alerts,
					 hook_config(&next, &h, buf, sizeof(buf), argv));
	}
	log_info("settings reloaded from %s: slouch beyond %.1f° for %.0f s", run->o->config_path,
		 next.det.threshold_deg, (double)next.det.delay_ms / 1000.0);
}

static DBusHandlerResult bus_filter(DBusConnection *conn, DBusMessage *m, void *data)
{
	(void)conn;
	if (dbus_message_is_signal(m, DBUS_INTERFACE_LOCAL, "Disconnected")) {
		log_error("lost the D-Bus system bus; exiting");
		loop_quit(data, 1);
		return DBUS_HANDLER_RESULT_HANDLED;
	}
	return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
}

int main(int argc, char **argv)
{
	struct options o;
	struct server srv = { 0 };
	struct store *store = NULL;
	struct sensors *sensors = NULL;
	struct feed *feed = NULL;
	struct loop *loop = NULL;
	struct bluez *bz = NULL;
	struct running run = { 0 };
	struct alert_center *alerts = NULL;
	struct http_api *api = NULL;
	struct lws_protocols http_proto;
	struct access *acc = NULL;
	struct gate gate = { 0 };
	DBusConnection *conn = NULL;
	DBusError err;
	char stream[17];
	int status = 1, r;

	memset(&o, 0, sizeof(o));
	r = parse_options(argc, argv, &o);
	if (r)
		return r > 0 ? 0 : r == -1 ? 2 : 1;
	log_init(o.cfg.log_level);
	history_new_stream_id(stream);   /* without a history, each run is a stream */

	acc = malloc(sizeof(*acc));
	if (!acc) {
		log_error("out of memory");
		goto out;
	}
	{
		char why[640];

		if (load_access(&o.cfg, acc, why, sizeof(why)) < 0) {
			log_error("%s", why);
			goto out;
		}
	}
	gate.access = acc;
	run.access = acc;
	if (!listens_on_loopback(o.cfg.listen) && !o.cfg.tls_cert[0])
		log_warn("listening on %s without TLS: tokens and data cross the network in the "
			 "clear; set [server] tls_certificate and tls_key, or serve through a TLS "
			 "reverse proxy", o.cfg.listen);
	store = store_new(o.cfg.ring_size);
	if (store)
		run.history = open_history(&o.cfg, store, stream);
	sensors = store ? sensors_new(store, &o.cfg.det) : NULL;
	alerts = store ? alert_center_new(store, &o.cfg.alerts) : NULL;
	run.stats = stats_keeper_new(run.history);
	if (!sensors || !alerts || !run.stats) {
		log_error("out of memory");
		goto out;
	}
	sensors_set_history(sensors, run.history);
	sensors_set_breaks_config(sensors, &o.cfg.breaks);
	sensors_set_cracks_config(sensors, &o.cfg.cracks);
	sensors_attach_alerts(sensors, alerts);
	sensors_attach_stats(sensors, run.stats);
	run.o = &o;
	run.store = store;
	run.sensors = sensors;
	run.alerts = alerts;
	feed = feed_new(&(struct feed_config){
		.store = store, .sensors = sensors, .detector = &o.cfg.det,
		.stream_id = stream, .version = SPINEWATCH_VERSION, .max_clients = o.cfg.max_clients,
		.write_timeout_s = o.cfg.client_timeout_s, .gate = &gate,
		.command = feed_command, .alerts = feed_alerts, .stats = feed_stats,
		.user = &run });
	if (!feed)
		goto out;
	api = http_api_new(&(struct http_sources){
		.store = store, .history = run.history, .sensors = sensors, .alerts = alerts,
		.stats = run.stats, .feed = feed, .gate = &gate, .stream_id = stream, .version = SPINEWATCH_VERSION,
		.started_ms = clock_epoch_ms() });
	if (!api) {
		log_error("out of memory");
		goto out;
	}
	http_proto = http_api_protocol(api);
	if (server_start(&srv, &(struct server_config){
		.listen = o.cfg.listen, .web_root = o.cfg.web_root,
		.feed = feed_protocol(feed), .loop = &loop_protocol,
		.http = &http_proto, .gate = &gate,
		.tls_cert = o.cfg.tls_cert, .tls_key = o.cfg.tls_key,
		.max_clients = o.cfg.max_clients }))
		goto out;
	feed_attach(feed, srv.ctx);
	loop = loop_new(srv.ctx, srv.vh);
	if (!loop || loop_watch_signals(loop)) {
		log_error("cannot set up the event loop");
		goto out;
	}
	sensors_attach_loop(sensors, loop);
	stats_keeper_attach_loop(run.stats, loop);
	if (run.history)
		history_attach_loop(run.history, loop);
	run.feed = feed;
	run.loop = loop;
	run.service = service_new(loop, service_status, &run);
	if (!run.service) {
		log_error("out of memory");
		goto out;
	}
	{
		struct alert_hook_config h;
		char buf[CONFIG_PATH_MAX];
		const char *hargv[CONFIG_HOOK_ARGS + 1];

		alert_center_attach(alerts, loop, hook_config(&o.cfg, &h, buf, sizeof(buf), hargv));
	}

	run.api = api;
	restart_mqtt(&run);   /* optional */

	dbus_error_init(&err);
	conn = dbus_bus_get_private(DBUS_BUS_SYSTEM, &err);
	if (!conn) {
		log_error("cannot connect to the D-Bus system bus: %s", err.message);
		dbus_error_free(&err);
		goto out;
	}
	dbus_connection_set_exit_on_disconnect(conn, FALSE);
	if (!dbus_connection_add_filter(conn, bus_filter, loop, NULL) ||
	    loop_attach_dbus(loop, conn)) {
		log_error("cannot attach D-Bus to the event loop");
		goto out;
	}
	bz = bluez_new(conn, loop, &o.cfg.bz, &sensors_bluez_callbacks, sensors);
	if (!bz || bluez_start(bz)) {
		log_error("cannot start the BlueZ client");
		goto out;
	}

	run.bz = bz;
	loop_on_reload(loop, reload, &run);
	loop_on_stop(loop, stopping, &run);

	log_info("spinewatchd %s: dashboard at http://%s%s%s:%d/ (stream %s)", SPINEWATCH_VERSION,
		 strchr(srv.host, ':') ? "[" : "", srv.host, strchr(srv.host, ':') ? "]" : "",
		 srv.port, stream);
	/* what starting needed and freed (settings, the history's refill of the ring) goes back
	 * to the system rather than staying in the heap for good */
	malloc_trim(0);
	service_ready(run.service);
	status = loop_run(loop);

out:
	if (api)
		http_api_set_mqtt(api, NULL);
	run.api = NULL;
	mqtt_free(run.mqtt);   /* says offline; before the store, history and loop go */
	run.mqtt = NULL;
	service_free(run.service);
	bluez_free(bz);
	alert_center_free(alerts);   /* before the loop: it kills running hooks */
	alerts = NULL;
	if (sensors)
		sensors_attach_stats(sensors, NULL);
	stats_keeper_free(run.stats);   /* saves the day; before the loop (its timer) */
	run.stats = NULL;
	if (store)
		store_set_sink(store, NULL, NULL);
	history_close(run.history);     /* writes what is queued, marks a clean stop */
	run.history = NULL;
	if (loop)
		loop_detach_dbus(loop);
	if (conn) {
		dbus_connection_remove_filter(conn, bus_filter, loop);
		dbus_connection_close(conn);
		dbus_connection_unref(conn);
	}
	sensors_free(sensors);   /* cancels its timers: before server_stop destroys their list */
	sensors = NULL;
	if (feed)   /* clients still open close with the context: no one to tell */
		feed_going_away(feed, NULL, NULL);
	loop_free(loop);
	server_stop(&srv);
	http_api_free(api);
	feed_free(feed);
	store_free(store);
	free(acc);
	return status;
}
