/*
 * main.c - spinewatchd: command line, wiring of the modules, lifetime.
 *
 *   BlueZ (D-Bus) -> bluez.c -> sensors.c (decoders, detector) -> store.c
 *   (rings) -> feed.c (WebSocket) ; server.c serves web/ ; loop.c runs it all.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "bluez.h"
#include "detector.h"
#include "feed.h"
#include "log.h"
#include "loop.h"
#include "sensors.h"
#include "server.h"
#include "store.h"

#ifndef SPINEWATCH_VERSION
#define SPINEWATCH_VERSION "0.1.0"
#endif
#ifndef SPINEWATCH_WEB_ROOT
#define SPINEWATCH_WEB_ROOT "/usr/share/spinewatch/web"
#endif

#define RING_SIZE_DEFAULT 4096
#define RING_SIZE_MIN 4
#define RING_SIZE_MAX 1000000

struct options {
	const char *listen, *web_root;
	size_t ring_size;
	unsigned max_clients;
	struct detector_config det;
	struct bluez_config bz;
	int verbosity;
};

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: spinewatchd [OPTION]...\n"
		"Watch posture and back-crack sensors over Bluetooth LE (BlueZ) and stream\n"
		"slouch and crack events to a web dashboard and WebSocket clients.\n"
		"\n"
		"  -l, --listen HOST:PORT     where to serve / and /ws (default %s;\n"
		"                             IPv6 as [::1]:8421)\n"
		"  -w, --web-root DIR         dashboard files (default %s)\n"
		"      --ring-size N          events kept for replay (default %d)\n"
		"      --max-clients N        WebSocket clients at once (default %d)\n"
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
		"  -v, --verbose              more log output (repeat for debug)\n"
		"  -q, --quiet                errors and warnings only\n"
		"  -V, --version              print the version and exit\n"
		"  -h, --help                 print this help and exit\n"
		"\n"
		"The D-Bus system bus is used; DBUS_SYSTEM_BUS_ADDRESS overrides its address.\n"
		"Feed protocol: protocol/websocket-feed.md.\n",
		SERVER_DEFAULT_LISTEN, SPINEWATCH_WEB_ROOT, RING_SIZE_DEFAULT,
		FEED_DEFAULT_MAX_CLIENTS, DETECTOR_DEFAULT_THRESHOLD_DEG,
		DETECTOR_DEFAULT_HYSTERESIS_DEG, DETECTOR_DEFAULT_DELAY_MS / 1000,
		DETECTOR_DEFAULT_CALIBRATION_MS / 1000);
}

static int parse_double(const char *opt, const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v)) {
		fprintf(stderr, "spinewatchd: %s: '%s' is not a number\n", opt, s);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_ulong(const char *opt, const char *s, unsigned long lo, unsigned long hi,
		       unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || end == s || *end || *s == '-' || v < lo || v > hi) {
		fprintf(stderr, "spinewatchd: %s: '%s' is not a whole number from %lu to %lu\n",
			opt, s, lo, hi);
		return -1;
	}
	*out = v;
	return 0;
}

enum { OPT_RING = 256, OPT_CLIENTS, OPT_THRESH, OPT_HYST, OPT_DELAY, OPT_CALIB, OPT_ALLOW,
       OPT_DENY, OPT_PROFILES, OPT_DISCOVERY, OPT_BACKOFF_MIN, OPT_BACKOFF_MAX, OPT_NOTIFY,
       OPT_PERIOD };

/* 0: run, 1: exit 0 (help/version), -1: exit 2 (usage error) */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "web-root", required_argument, NULL, 'w' },
		{ "ring-size", required_argument, NULL, OPT_RING },
		{ "max-clients", required_argument, NULL, OPT_CLIENTS },
		{ "slouch-threshold", required_argument, NULL, OPT_THRESH },
		{ "slouch-hysteresis", required_argument, NULL, OPT_HYST },
		{ "slouch-delay", required_argument, NULL, OPT_DELAY },
		{ "calibration", required_argument, NULL, OPT_CALIB },
		{ "allow", required_argument, NULL, OPT_ALLOW },
		{ "deny", required_argument, NULL, OPT_DENY },
		{ "profiles", required_argument, NULL, OPT_PROFILES },
		{ "discovery", required_argument, NULL, OPT_DISCOVERY },
		{ "backoff-min", required_argument, NULL, OPT_BACKOFF_MIN },
		{ "backoff-max", required_argument, NULL, OPT_BACKOFF_MAX },
		{ "notify-path", required_argument, NULL, OPT_NOTIFY },
		{ "sensor-period", required_argument, NULL, OPT_PERIOD },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	unsigned long ul;
	double d;
	int c;

	o->listen = SERVER_DEFAULT_LISTEN;
	o->web_root = SPINEWATCH_WEB_ROOT;
	o->ring_size = RING_SIZE_DEFAULT;
	o->max_clients = FEED_DEFAULT_MAX_CLIENTS;
	detector_config_default(&o->det);
	bluez_config_defaults(&o->bz);
	while ((c = getopt_long(argc, argv, "l:w:vqVh", longopts, NULL)) != -1) {
		switch (c) {
		case 'l': o->listen = optarg; break;
		case 'w': o->web_root = optarg; break;
		case OPT_RING:
			if (parse_ulong("--ring-size", optarg, RING_SIZE_MIN, RING_SIZE_MAX, &ul))
				return -1;
			o->ring_size = ul;
			break;
		case OPT_CLIENTS:
			if (parse_ulong("--max-clients", optarg, 1, 10000, &ul))
				return -1;
			o->max_clients = (unsigned)ul;
			break;
		case OPT_THRESH:
			if (parse_double("--slouch-threshold", optarg, &o->det.threshold_deg))
				return -1;
			break;
		case OPT_HYST:
			if (parse_double("--slouch-hysteresis", optarg, &o->det.hysteresis_deg))
				return -1;
			break;
		case OPT_DELAY:
			if (parse_double("--slouch-delay", optarg, &d))
				return -1;
			o->det.delay_ms = d >= 0 && d < 1e7 ? (int64_t)llround(d * 1000) : -1;
			break;
		case OPT_CALIB:
			if (parse_double("--calibration", optarg, &d))
				return -1;
			o->det.calibration_ms = d >= 0 && d < 1e7 ? (int64_t)llround(d * 1000) : -1;
			break;
		case OPT_ALLOW:
		case OPT_DENY:
			if ((c == OPT_ALLOW ? bluez_config_allow : bluez_config_deny)(&o->bz, optarg)) {
				fprintf(stderr, "spinewatchd: %s: '%s' is not a Bluetooth address "
					"(AA:BB:CC:DD:EE:FF), or more than %d were given\n",
					c == OPT_ALLOW ? "--allow" : "--deny", optarg, BLUEZ_MAX_LISTED);
				return -1;
			}
			break;
		case OPT_PROFILES:
			if (bluez_config_profiles(&o->bz, optarg)) {
				fprintf(stderr, "spinewatchd: --profiles: '%s': use a comma-separated list "
					"of spinewatch, microbit, thingy52\n", optarg);
				return -1;
			}
			break;
		case OPT_DISCOVERY:
		case OPT_NOTIFY: {
			bool yes = !strcmp(optarg, "auto");

			if (!yes && strcmp(optarg, c == OPT_DISCOVERY ? "off" : "start")) {
				fprintf(stderr, "spinewatchd: %s: '%s': use %s\n",
					c == OPT_DISCOVERY ? "--discovery" : "--notify-path", optarg,
					c == OPT_DISCOVERY ? "auto or off" : "auto or start");
				return -1;
			}
			if (c == OPT_DISCOVERY)
				o->bz.discovery = yes;
			else
				o->bz.acquire = yes;
			break;
		}
		case OPT_BACKOFF_MIN:
			if (parse_ulong("--backoff-min", optarg, 100, 3600000, &ul))
				return -1;
			o->bz.backoff_min_ms = (unsigned)ul;
			break;
		case OPT_BACKOFF_MAX:
			if (parse_ulong("--backoff-max", optarg, 100, 3600000, &ul))
				return -1;
			o->bz.backoff_max_ms = (unsigned)ul;
			break;
		case OPT_PERIOD:
			if (parse_ulong("--sensor-period", optarg, 1, 1000, &ul))
				return -1;
			o->bz.sensor_period_ms = (unsigned)ul;
			break;
		case 'v': o->verbosity++; break;
		case 'q': o->verbosity = -1; break;
		case 'V': printf("spinewatchd %s\n", SPINEWATCH_VERSION); return 1;
		case 'h': usage(stdout); return 1;
		default: usage(stderr); return -1;
		}
	}
	if (optind < argc) {
		fprintf(stderr, "spinewatchd: unexpected argument '%s'\n", argv[optind]);
		return -1;
	}
	if (o->bz.backoff_max_ms < o->bz.backoff_min_ms) {
		fprintf(stderr, "spinewatchd: --backoff-max must not be below --backoff-min\n");
		return -1;
	}
	{
		const char *bad = detector_config_check(&o->det);

		if (bad) {
			fprintf(stderr, "spinewatchd: %s\n", bad);
			return -1;
		}
	}
	return 0;
}

static void make_stream_id(char out[17])
{
	uint64_t r = 0;
	int64_t t;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r)) {
		t = clock_epoch_ms();
		r ^= (uint64_t)t * 0x9e3779b97f4a7c15ULL;
	}
	snprintf(out, 17, "%016llx", (unsigned long long)r);
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
	DBusConnection *conn = NULL;
	DBusError err;
	char stream[17];
	int status = 1, r;

	memset(&o, 0, sizeof(o));
	r = parse_options(argc, argv, &o);
	if (r)
		return r > 0 ? 0 : 2;
	log_init(o.verbosity < 0 ? LOG_WARNING : o.verbosity == 0 ? LOG_INFO : LOG_DEBUG);
	make_stream_id(stream);

	store = store_new(o.ring_size);
	sensors = store ? sensors_new(store, &o.det) : NULL;
	if (!sensors) {
		log_error("out of memory");
		goto out;
	}
	feed = feed_new(&(struct feed_config){
		.store = store, .sensors = sensors, .detector = &o.det,
		.stream_id = stream, .version = SPINEWATCH_VERSION, .max_clients = o.max_clients });
	if (!feed)
		goto out;
	if (server_start(&srv, &(struct server_config){
		.listen = o.listen, .web_root = o.web_root,
		.feed = feed_protocol(feed), .loop = &loop_protocol }))
		goto out;
	feed_attach(feed, srv.ctx);
	loop = loop_new(srv.ctx, srv.vh);
	if (!loop || loop_watch_signals(loop)) {
		log_error("cannot set up the event loop");
		goto out;
	}
	sensors_attach_loop(sensors, loop);

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
	bz = bluez_new(conn, loop, &o.bz, &sensors_bluez_callbacks, sensors);
	if (!bz || bluez_start(bz)) {
		log_error("cannot start the BlueZ client");
		goto out;
	}

	log_info("spinewatchd %s: dashboard at http://%s%s%s:%d/ (stream %s)", SPINEWATCH_VERSION,
		 strchr(srv.host, ':') ? "[" : "", srv.host, strchr(srv.host, ':') ? "]" : "",
		 srv.port, stream);
	status = loop_run(loop);

out:
	bluez_free(bz);
	if (loop)
		loop_detach_dbus(loop);
	if (conn) {
		dbus_connection_remove_filter(conn, bus_filter, loop);
		dbus_connection_close(conn);
		dbus_connection_unref(conn);
	}
	loop_free(loop);
	server_stop(&srv);
	feed_free(feed);
	sensors_free(sensors);
	store_free(store);
	return status;
}
