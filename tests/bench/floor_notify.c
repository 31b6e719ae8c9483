/* tests/bench/floor_notify.c - the floor for spinewatchd's notification intake: a bare
 * program that receives the simulated Spine Mic's crack notifications and does nothing else.
 *
 *   floor_notify --address BUS --path CHAR_PATH --mode start|acquire --count N [--timeout S]
 *
 * start:   connects to the bus, adds the match rule spinewatchd uses for PropertiesChanged
 *          (daemon/bluez.c), calls StartNotify on the characteristic and takes each
 *          PropertiesChanged(Value) signal from its path;
 * acquire: calls AcquireNotify on the characteristic and read()s one packet per notification
 *          from the SOCK_SEQPACKET fd it gets.
 * Each notification is timestamped (CLOCK_MONOTONIC) and its crack's duration_ms (which the
 * simulator's BurstCracks sets to index + 1) kept. It prints "ready" once subscribed, then,
 * after N notifications (or the timeout, or SIGTERM), "cpu SECONDS" (getrusage, user + system,
 * from "ready" to the last notification) and one line "n DURATION_MS TIME" per notification.
 */
#include <dbus/dbus.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#define IFACE_PROPS "org.freedesktop.DBus.Properties"
#define IFACE_CHRC "org.bluez.GattCharacteristic1"

static volatile sig_atomic_t stop;

static void on_term(int sig)
{
	(void)sig;
	stop = 1;
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

struct rec {
	double t;
	unsigned dur;
};

static struct rec *recs;
static long nrecs, want;
static double cpu_end;

static void record(const unsigned char *p, size_t len, double t)
{
	/* crack: u8 version, u16 seq, u8 kind, u8 intensity, u16 duration_ms, u8 count, u16 age */
	if (len < 9 || nrecs >= want)
		return;
	recs[nrecs].t = t;
	recs[nrecs].dur = (unsigned)p[5] | (unsigned)p[6] << 8;
	nrecs++;
	cpu_end = cpu();
}

static const char *char_path;

/* PropertiesChanged("org.bluez.GattCharacteristic1", {"Value": ay}, as) from our path */
static DBusHandlerResult filter(DBusConnection *c, DBusMessage *m, void *u)
{
	DBusMessageIter it, dict, entry, var, arr;
	const char *iface, *key, *path;
	const unsigned char *bytes;
	int n;
	double t = now();

	(void)c;
	(void)u;
	if (!dbus_message_is_signal(m, IFACE_PROPS, "PropertiesChanged"))
		return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
	path = dbus_message_get_path(m);
	if (!path || strcmp(path, char_path) || !dbus_message_iter_init(m, &it) ||
	    dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_STRING)
		return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
	dbus_message_iter_get_basic(&it, &iface);
	if (strcmp(iface, IFACE_CHRC) || !dbus_message_iter_next(&it) ||
	    dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_ARRAY)
		return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
	for (dbus_message_iter_recurse(&it, &dict);
	     dbus_message_iter_get_arg_type(&dict) == DBUS_TYPE_DICT_ENTRY;
	     dbus_message_iter_next(&dict)) {
		dbus_message_iter_recurse(&dict, &entry);
		dbus_message_iter_get_basic(&entry, &key);
		if (strcmp(key, "Value") || !dbus_message_iter_next(&entry))
			continue;
		dbus_message_iter_recurse(&entry, &var);
		if (dbus_message_iter_get_arg_type(&var) != DBUS_TYPE_ARRAY)
			continue;
		dbus_message_iter_recurse(&var, &arr);
		if (dbus_message_iter_get_arg_type(&arr) != DBUS_TYPE_BYTE)
			continue;
		dbus_message_iter_get_fixed_array(&arr, &bytes, &n);
		record(bytes, (size_t)n, t);
	}
	return DBUS_HANDLER_RESULT_HANDLED;
}

static DBusMessage *call(DBusConnection *c, const char *method, DBusError *err)
{
	DBusMessage *m, *r;
	DBusMessageIter it, dict;

	m = dbus_message_new_method_call("org.bluez", char_path, IFACE_CHRC, method);
	if (!m)
		return NULL;
	if (!strcmp(method, "AcquireNotify")) {
		dbus_message_iter_init_append(m, &it);
		dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "{sv}", &dict);
		dbus_message_iter_close_container(&it, &dict);
	}
	r = dbus_connection_send_with_reply_and_block(c, m, 10000, err);
	dbus_message_unref(m);
	return r;
}

int main(int argc, char **argv)
{
	const char *address = NULL, *mode = "start";
	double timeout = 60, t_end;
	DBusConnection *c;
	DBusError err;
	DBusMessage *r;
	int i, fd = -1;
	double cpu0;

	for (i = 1; i + 1 < argc; i += 2) {
		if (!strcmp(argv[i], "--address"))
			address = argv[i + 1];
		else if (!strcmp(argv[i], "--path"))
			char_path = argv[i + 1];
		else if (!strcmp(argv[i], "--mode"))
			mode = argv[i + 1];
		else if (!strcmp(argv[i], "--count"))
			want = atol(argv[i + 1]);
		else if (!strcmp(argv[i], "--timeout"))
			timeout = atof(argv[i + 1]);
	}
	if (!address || !char_path || want < 1 ||
	    (strcmp(mode, "start") && strcmp(mode, "acquire"))) {
		fprintf(stderr, "usage: %s --address BUS --path CHAR_PATH --mode start|acquire "
			"--count N [--timeout S]\n", argv[0]);
		return 2;
	}
	recs = calloc((size_t)want, sizeof(*recs));
	if (!recs)
		return 1;
	signal(SIGTERM, on_term);
	signal(SIGINT, on_term);
	dbus_error_init(&err);
	c = dbus_connection_open_private(address, &err);
	if (!c || !dbus_bus_register(c, &err)) {
		fprintf(stderr, "floor_notify: %s\n", err.message);
		return 1;
	}
	if (!strcmp(mode, "start")) {
		dbus_bus_add_match(c, "type='signal',sender='org.bluez',interface='" IFACE_PROPS
				   "',member='PropertiesChanged',path_namespace='/org/bluez'", &err);
		if (dbus_error_is_set(&err)) {
			fprintf(stderr, "floor_notify: AddMatch: %s\n", err.message);
			return 1;
		}
		dbus_connection_add_filter(c, filter, NULL, NULL);
		r = call(c, "StartNotify", &err);
	} else {
		uint16_t mtu;

		r = call(c, "AcquireNotify", &err);
		if (r && !dbus_message_get_args(r, &err, DBUS_TYPE_UNIX_FD, &fd, DBUS_TYPE_UINT16,
						&mtu, DBUS_TYPE_INVALID)) {
			dbus_message_unref(r);
			r = NULL;
		}
	}
	if (!r) {
		fprintf(stderr, "floor_notify: %s: %s\n", mode, err.message);
		return 1;
	}
	dbus_message_unref(r);
	printf("ready\n");
	fflush(stdout);
	cpu0 = cpu_end = cpu();
	t_end = now() + timeout;
	while (!stop && nrecs < want && now() < t_end) {
		if (fd < 0) {
			if (!dbus_connection_read_write_dispatch(c, 100))
				break;
			continue;
		}
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		unsigned char buf[512];
		ssize_t n;

		if (poll(&pfd, 1, 100) <= 0)
			continue;
		n = read(fd, buf, sizeof(buf));
		if (n > 0)
			record(buf, (size_t)n, now());
		else if (n == 0 || (errno != EAGAIN && errno != EINTR))
			break;
	}
	printf("cpu %.6f\n", cpu_end - cpu0);
	for (i = 0; i < nrecs; i++)
		printf("n %u %.6f\n", recs[i].dur, recs[i].t);
	fflush(stdout);
	if (fd >= 0)
		close(fd);
	dbus_connection_close(c);
	dbus_connection_unref(c);
	free(recs);
	return 0;
}
