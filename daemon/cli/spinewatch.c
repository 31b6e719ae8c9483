/*
 * daemon/cli/spinewatch.c - the `spinewatch` command-line client: its command line (global
 * options, the tail, status, sensors, alerts, ack, calibrate, stats, annotate and help
 * subcommands, help per subcommand), what it prints (text for people, or --json) and its exit
 * status. Talking to the feed is feed_client.c's; following it (tail) is tail.c's.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "feed_client.h"
#include "tail.h"

#ifndef SPINEWATCH_VERSION
#define SPINEWATCH_VERSION "0.1.0"
#endif

#define DEFAULT_URL "ws://127.0.0.1:8421/ws"
#define MAX_TIMEOUT_S 3600.0
#define NOTE_MAX_BYTES 280    /* an annotation's note (protocol/websocket-feed.md) */
#define SCALE_MAX 10          /* pain and stiffness: 0 (none) to 10 (worst) */
#define MAX_REPEATS 64        /* --kind, --sensor given at most this often */

enum exit_status {
	EXIT_DONE = 0,        /* success */
	EXIT_REFUSED = 1,     /* the daemon refused the command */
	EXIT_USAGE = 2,       /* usage error */
	EXIT_UNREACHABLE = 3, /* the daemon is unreachable or misbehaves */
};

struct options {
	const char *url_text;
	struct feed_url url;
	bool json;
	double timeout_s;     /* 0: the command's default */
	const char *sensor;   /* stats --sensor */
	const char *pain;     /* annotate --pain, --stiffness, --note: as given */
	const char *stiffness;
	const char *note;
	/* tail: as given; --kind and --sensor may each hold a comma-separated list */
	const char *kind_args[MAX_REPEATS], *sensor_args[MAX_REPEATS];
	int n_kind_args, n_sensor_args;
	const char *since, *count;
	bool no_follow;
};

struct command {
	const char *name;
	const char *args;          /* the positional arguments, for the synopsis */
	int nargs;
	double default_timeout_s;
	const char *summary;       /* one line, for the global help */
	const char *help;          /* the rest of its help */
	int (*run)(const struct command *cmd, const struct options *o, char **args);
};

/* ---- help and usage errors ----------------------------------------------------- */

static const char global_options_help[] =
	"Options (before or after the command):\n"
	"  --url URL          spinewatchd's feed (default " DEFAULT_URL ",\n"
	"                     or $SPINEWATCH_URL); ws:// or wss://\n"
	"  --token-file FILE  the access token, for a spinewatchd on another machine\n"
	"                     (the first word of the file's first line that is not\n"
	"                     a # comment); or $SPINEWATCH_TOKEN\n"
	"  --cacert FILE      wss://: trust this certificate (e.g. self-signed)\n"
	"  --json             print the answer as one line of JSON (for jq); tail:\n"
	"                     gap notices become lines of its output\n"
	"  --timeout SECONDS  give up after this long (default 10; 15 for calibrate;\n"
	"                     tail: waiting for a hello, with --no-follow in all)\n"
	"  -h, --help         show this help; after a command, that command's\n"
	"  -V, --version      show the version\n";

static const char exit_help[] =
	"Exit status:\n"
	"  0  done (tail: interrupted, --count lines printed, or with --no-follow\n"
	"     everything printed)\n"
	"  1  spinewatchd refused the command (its code and message go to stderr)\n"
	"     or, for calibrate, refused the calibration; tail: refused the\n"
	"     connection, or the output cannot be written\n"
	"  2  usage error\n"
	"  3  spinewatchd is unreachable or misbehaves (connection refused, timeout,\n"
	"     no hello, bad JSON); tail: when its first connection fails (later\n"
	"     ones are tried again)\n";

static int run_tail(const struct command *cmd, const struct options *o, char **args);
static int run_status(const struct command *cmd, const struct options *o, char **args);
static int run_sensors(const struct command *cmd, const struct options *o, char **args);
static int run_alerts(const struct command *cmd, const struct options *o, char **args);
static int run_ack(const struct command *cmd, const struct options *o, char **args);
static int run_calibrate(const struct command *cmd, const struct options *o, char **args);
static int run_stats(const struct command *cmd, const struct options *o, char **args);
static int run_annotate(const struct command *cmd, const struct options *o, char **args);

static const struct command commands[] = {
	{ "tail", "[--since N] [--kind K]... [--sensor ADDR]... [--count N] [--no-follow]", 0, 10,
	  "print events as JSON lines as they happen",
	  "Print the feed's events as they happen, one JSON object per line (NDJSON, for\n"
	  "jq), each as the daemon sent it; with --since, first those it still holds\n"
	  "after seq N. Follows until interrupted (Ctrl-C or SIGTERM: exit 0). When the\n"
	  "daemon stops or the connection drops it says so on stderr, reconnects with\n"
	  "backoff and goes on after the last event printed: nothing twice. If the\n"
	  "daemon restarted after a crash (a new \"stream\"), it says so and goes on\n"
	  "after the same seq, or the new last one if lower. Events the daemon no longer\n"
	  "holds are a gap, said on stderr; with --json, a line {\"type\":\"gap\",...}.\n"
	  "\n"
	  "  --since N          first the events after seq N still held (0: all);\n"
	  "                     default: only new ones\n"
	  "  --kind K           only events of kind K: crack, slouch, sensor, alert,\n"
	  "                     calibration, annotation; or the live posture or status\n"
	  "                     messages (never printed otherwise); repeatable, or K,K\n"
	  "  --sensor ADDR      only about sensor ADDR (and about no sensor in\n"
	  "                     particular); repeatable, or ADDR,ADDR; up to 16\n"
	  "  --count N          exit after N lines (gaps do not count)\n"
	  "  --no-follow        print what the daemon holds after --since (default 0)\n"
	  "                     and exit; posture and status are never held\n"
	  "\n"
	  "Example: spinewatch tail --kind crack | jq -r '\"\\(.ts) \\(.crack) \\(.intensity)\"'\n",
	  run_tail },
	{ "status", "", 0, 10, "print the daemon's state on one screen",
	  "Print the daemon's version and stream, its sensors by state, the active\n"
	  "alerts, today's cracks and minutes slouched (every sensor), and the feed's\n"
	  "last seq. --json prints them as one JSON object:\n"
	  "{\"server\",\"version\",\"protocol\",\"url\",\"stream\",\"ts\",\"last_seq\",\n"
	  "\"oldest_seq\",\"sensors\":{\"known\",\"by_state\":{STATE:N,...}},\n"
	  "\"alerts\":{\"active\",\"raised\",\"acknowledged\"},\n"
	  "\"today\":{\"date\",\"cracks\",\"slouch_min\"}}\n",
	  run_status },
	{ "sensors", "", 0, 10, "list the sensors and their health",
	  "List every sensor the daemon knows: address, name, profile, state, battery,\n"
	  "signal (RSSI), notifications lost and rejected, and why it is in its state.\n"
	  "--json prints the hello's \"sensors\" array as one line.\n",
	  run_sensors },
	{ "alerts", "", 0, 10, "list the active alerts",
	  "List the active (raised or acknowledged) alerts: id, rule, severity, state,\n"
	  "sensor, when it was raised and its message. Acknowledge one with\n"
	  "'spinewatch ack ID'. --json prints the hello's \"alerts\" array as one line.\n",
	  run_alerts },
	{ "ack", "ID", 1, 10, "acknowledge the alert ID",
	  "Acknowledge an alert by its id (from an alert event, or the feed's hello).\n"
	  "An alert acknowledged already is not an error. --json prints the reply.\n",
	  run_ack },
	{ "calibrate", "ADDR", 1, 15, "capture posture sensor ADDR's upright baseline",
	  "Capture the upright baseline of the posture sensor ADDR (AA:BB:CC:DD:EE:FF):\n"
	  "sit upright and still for a few seconds once it says so. Waits for the result\n"
	  "(at most --timeout, default 15 s): exit 0 when done, 1 when refused (moving,\n"
	  "no samples, ...). --json prints the calibration event.\n",
	  run_calibrate },
	{ "stats", "[--sensor ADDR]", 0, 10, "print the per-day record",
	  "Print the per-day record of every sensor (or of one, with --sensor ADDR):\n"
	  "today's cracks by kind, minutes slouched and sitting, posture breaks; the last\n"
	  "7 days; this week against the one before; the usual cracks for this hour.\n"
	  "--json prints the record (the reply's \"stats\") as one line of JSON.\n"
	  "\n"
	  "  --sensor ADDR      only this sensor\n",
	  run_stats },
	{ "annotate", "SEQ [--pain N] [--stiffness N] [--note TEXT]", 1, 10,
	  "note how event SEQ felt",
	  "Note how the event SEQ felt (a crack, a slouch, an alert...: its \"seq\" from the\n"
	  "feed or the dashboard): pain and stiffness from 0 (none) to 10 (worst) and\n"
	  "what you were doing, at least one of the three. Every feed client gets it as\n"
	  "an annotation event; a later note on the same event replaces this one.\n"
	  "Prints \"Noted.\"; --json prints the reply.\n"
	  "\n"
	  "  --pain N           pain, a whole number from 0 to 10\n"
	  "  --stiffness N      stiffness, a whole number from 0 to 10\n"
	  "  --note TEXT        what you were doing, up to 280 bytes of UTF-8 text\n",
	  run_annotate },
};

#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static const struct command *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(commands[i].name, name))
			return &commands[i];
	return NULL;
}

static void print_global_help(void)
{
	printf("Usage: spinewatch [OPTION]... COMMAND [ARG]...\n"
	       "Talk to spinewatchd, the posture and back-crack daemon, over its feed.\n\n"
	       "Commands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++) {
		char head[96];

		snprintf(head, sizeof(head), "%s%s%s", commands[i].name, *commands[i].args ? " " : "",
			 commands[i].args);
		if (strlen(head) > 22)   /* a long synopsis: the summary on the next line */
			printf("  %s\n  %-22s %s\n", head, "", commands[i].summary);
		else
			printf("  %-22s %s\n", head, commands[i].summary);
	}
	printf("  %-22s %s\n\n%s\n%s\n", "help [COMMAND]", "show this help, or a command's",
	       global_options_help, exit_help);
	printf("Examples:\n"
	       "  spinewatch tail --kind crack | jq -r '\"\\(.ts) \\(.sensor) \\(.crack)\"'\n"
	       "  spinewatch stats --json | jq '.sensors[] | {sensor, cracks: .today.cracks}'\n");
}

static void print_command_help(const struct command *cmd)
{
	printf("Usage: spinewatch [OPTION]... %s%s%s\n%s\n%s\n%s", cmd->name,
	       *cmd->args ? " " : "", cmd->args, cmd->help, global_options_help, exit_help);
}

static int usage_error(const struct command *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static int usage_error(const struct command *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("spinewatch: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	if (cmd)
		fprintf(stderr, "\nTry 'spinewatch help %s'.\n", cmd->name);
	else
		fputs("\nTry 'spinewatch --help'.\n", stderr);
	return EXIT_USAGE;
}

/* ---- argument checks ----------------------------------------------------------- */

static bool is_address(const char *s)
{
	if (strlen(s) != 17)
		return false;
	for (int i = 0; i < 17; i++) {
		bool colon = i % 3 == 2;

		if (colon ? s[i] != ':' : !strchr("0123456789abcdefABCDEF", s[i]))
			return false;
	}
	return true;
}

/* A positive decimal integer that fits JSON's integers: 0, else -1. */
static int parse_id(const char *s, json_int_t *out)
{
	unsigned long long v;
	char *end;

	if (!*s || strspn(s, "0123456789") != strlen(s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v < 1 || v > (unsigned long long)INT64_MAX)
		return -1;
	*out = (json_int_t)v;
	return 0;
}

/* A whole number from 0 to SCALE_MAX, in decimal digits: 0, else -1. */
static int parse_scale(const char *s, int *out)
{
	size_t n = strlen(s);

	if (!n || n > 2 || strspn(s, "0123456789") != n || atoi(s) > SCALE_MAX)
		return -1;
	*out = atoi(s);
	return 0;
}

static int parse_timeout(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(v) || v <= 0 || v > MAX_TIMEOUT_S)
		return -1;
	*out = v;
	return 0;
}

/* ---- running a command --------------------------------------------------------- */

struct follow_ctx {
	const char *sensor;
	bool json;
};

static int request(const struct command *cmd, const struct options *o, json_t *command,
		   struct feed_request *req, struct feed_result *res)
{
	double t = o->timeout_s > 0 ? o->timeout_s : cmd->default_timeout_s;

	req->url_text = o->url_text;
	req->url = &o->url;
	req->command = command;
	req->timeout_ms = (int)ceil(t * 1000);
	if (req->timeout_ms < 1)
		req->timeout_ms = 1;
	if (feed_run(req, res) < 0) {
		fprintf(stderr, "spinewatch: %s\n", res->error);
		return EXIT_UNREACHABLE;
	}
	if (!json_is_boolean(json_object_get(res->reply, "ok"))) {
		fprintf(stderr, "spinewatch: %s sent a reply without \"ok\"\n", o->url_text);
		return EXIT_UNREACHABLE;
	}
	return EXIT_DONE;
}

/* The reply refused the command: say why. */
static int refused(const json_t *reply)
{
	const char *code = json_string_value(json_object_get(reply, "code"));
	const char *message = json_string_value(json_object_get(reply, "message"));

	fprintf(stderr, "spinewatch: %s: %s\n", code ? code : "refused",
		message ? message : "the command was refused");
	return EXIT_REFUSED;
}

static void print_json(const json_t *v)
{
	/* 15 significant digits print back what the daemon sent (0.1 stays 0.1) */
	char *s = json_dumps(v, JSON_COMPACT | JSON_REAL_PRECISION(15) | JSON_ENCODE_ANY);

	if (s) {
		puts(s);
		free(s);
	}
}

static int run_ack(const struct command *cmd, const struct options *o, char **args)
{
	struct feed_request req = { 0 };
	struct feed_result res;
	json_int_t id;
	json_t *command;
	const char *result;
	int r;

	if (parse_id(args[0], &id) < 0)
		return usage_error(cmd, "the alert ID must be a positive integer, not '%s'", args[0]);
	command = json_pack("{s:s, s:I}", "type", "ack", "alert", id);
	if (!command) {
		fputs("spinewatch: out of memory\n", stderr);
		return EXIT_UNREACHABLE;
	}
	r = request(cmd, o, command, &req, &res);
	if (r == EXIT_DONE && !json_is_true(json_object_get(res.reply, "ok"))) {
		r = refused(res.reply);
	} else if (r == EXIT_DONE) {
		result = json_string_value(json_object_get(res.reply, "result"));
		if (o->json)
			print_json(res.reply);
		else if (result && !strcmp(result, "already-acknowledged"))
			printf("Alert %s was already acknowledged.\n", args[0]);
		else
			printf("Alert %s acknowledged.\n", args[0]);
	}
	feed_result_clear(&res);
	json_decref(command);
	return r;
}

static bool calibration_started(const json_t *reply, void *user)
{
	const struct follow_ctx *f = user;
	const char *result = json_string_value(json_object_get(reply, "result"));

	if (!json_is_true(json_object_get(reply, "ok")) || !result || strcmp(result, "started"))
		return false;
	/* with --json, stdout is for the JSON alone */
	fprintf(f->json ? stderr : stdout,
		"Calibrating %s: sit upright and still for a few seconds...\n", f->sensor);
	fflush(f->json ? stderr : stdout);
	return true;
}

static bool is_calibration_event(const json_t *m, void *user)
{
	const struct follow_ctx *f = user;
	const char *type = json_string_value(json_object_get(m, "type"));
	const char *kind = json_string_value(json_object_get(m, "kind"));
	const char *sensor = json_string_value(json_object_get(m, "sensor"));

	return type && !strcmp(type, "event") && kind && !strcmp(kind, "calibration") &&
	       sensor && !strcasecmp(sensor, f->sensor);
}

static int run_calibrate(const struct command *cmd, const struct options *o, char **args)
{
	struct follow_ctx f = { .sensor = args[0], .json = o->json };
	struct feed_request req = {
		.after_reply = calibration_started, .follow = is_calibration_event,
		.follow_what = "calibration result", .user = &f,
	};
	struct feed_result res;
	const char *result, *reason;
	json_t *command;
	int r;

	if (!is_address(args[0]))
		return usage_error(cmd, "'%s' is not a sensor address (AA:BB:CC:DD:EE:FF)", args[0]);
	command = json_pack("{s:s, s:s}", "type", "calibrate", "sensor", args[0]);
	if (!command) {
		fputs("spinewatch: out of memory\n", stderr);
		return EXIT_UNREACHABLE;
	}
	r = request(cmd, o, command, &req, &res);
	if (r != EXIT_DONE)
		goto out;
	if (!json_is_true(json_object_get(res.reply, "ok"))) {
		r = refused(res.reply);
		goto out;
	}
	if (!res.followed) {
		/* an ok reply that is not "started": not what the protocol says */
		fprintf(stderr, "spinewatch: %s answered calibrate with an unexpected reply\n",
			o->url_text);
		r = EXIT_UNREACHABLE;
		goto out;
	}
	result = json_string_value(json_object_get(res.followed, "result"));
	reason = json_string_value(json_object_get(res.followed, "reason"));
	if (o->json)
		print_json(res.followed);
	if (result && !strcmp(result, "done")) {
		if (!o->json)
			printf("Calibrated: this position is now upright for %s.\n", args[0]);
	} else if (result && !strcmp(result, "refused")) {
		fprintf(stderr, "spinewatch: calibration of %s refused: %s\n", args[0],
			reason ? reason : "no reason given");
		r = EXIT_REFUSED;
	} else {
		fprintf(stderr, "spinewatch: %s sent a calibration event without a known result\n",
			o->url_text);
		r = EXIT_UNREACHABLE;
	}
out:
	feed_result_clear(&res);
	json_decref(command);
	return r;
}

/* ---- stats for people ------------------------------------------------------------ */

static double num(const json_t *o, const char *key)
{
	return json_number_value(json_object_get(o, key));
}

static long long whole(const json_t *o, const char *key)
{
	return llround(num(o, key));
}

static const char *plural(long long n, const char *one, const char *many)
{
	return n == 1 ? one : many;
}

/* "5 cracks (3 pop, 1 click, 1 grind)" */
static void format_cracks(const json_t *day, char *buf, size_t len)
{
	long long n = whole(day, "cracks");

	if (!n)
		snprintf(buf, len, "no cracks");
	else
		snprintf(buf, len, "%lld %s (%lld pop, %lld click, %lld grind)", n,
			 plural(n, "crack", "cracks"), whole(day, "pop"), whole(day, "click"),
			 whole(day, "grind"));
}

/* the day `back` days before the local date `today` (YYYY-MM-DD), and its weekday */
static bool day_before(const char *today, int back, char date[16], char weekday[8])
{
	struct tm tm = { 0 };
	int y, m, d;

	if (!today || sscanf(today, "%4d-%2d-%2d", &y, &m, &d) != 3)
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = m - 1;
	tm.tm_mday = d - back;
	tm.tm_hour = 12;   /* far from any daylight-saving change */
	tm.tm_isdst = -1;
	if (mktime(&tm) == (time_t)-1)
		return false;
	strftime(date, 16, "%Y-%m-%d", &tm);
	strftime(weekday, 8, "%a", &tm);
	return true;
}

static const json_t *find_day(const json_t *days, const char *date)
{
	size_t i;
	json_t *d;

	json_array_foreach(days, i, d) {
		const char *s = json_string_value(json_object_get(d, "date"));

		if (s && !strcmp(s, date))
			return d;
	}
	return NULL;
}

static void format_change(const json_t *pct, char *buf, size_t len)
{
	if (json_is_number(pct))
		snprintf(buf, len, "%+.1f %%", json_number_value(pct));
	else
		snprintf(buf, len, "no comparison");
}

static void print_sensor(const json_t *s, int hour)
{
	const json_t *today = json_object_get(s, "today");
	const json_t *days = json_object_get(s, "days");
	const json_t *week = json_object_get(s, "week");
	const json_t *baseline = json_array_get(json_object_get(s, "baseline_per_hour"),
						(size_t)hour);
	const json_t *hour_cracks = json_array_get(
		json_object_get(json_object_get(today, "hours"), "cracks"), (size_t)hour);
	const char *date = json_string_value(json_object_get(today, "date"));
	const char *sensor = json_string_value(json_object_get(s, "sensor"));
	char cracks[128], d[16], wd[8], change[32];
	long long breaks;

	printf("%s\n", sensor ? sensor : "(a sensor without an address)");
	format_cracks(today, cracks, sizeof(cracks));
	breaks = whole(today, "breaks");
	if (!day_before(date, 0, d, wd))
		snprintf(wd, sizeof(wd), "?");
	printf("  Today (%s %s): %s, %lld pops in all\n", wd, date ? date : "?", cracks,
	       whole(today, "pops"));
	printf("    slouched %.1f min, sitting %.1f min, %lld posture %s\n",
	       num(today, "slouch_min"), num(today, "sitting_min"), breaks,
	       plural(breaks, "break", "breaks"));
	printf("  Usual cracks %02d:00-%02d:00: ", hour, (hour + 1) % 24);
	if (json_is_number(baseline))
		printf("%.1f", json_number_value(baseline));
	else
		printf("not known yet (needs 3 earlier days with data)");
	printf(" (this hour today: %lld)\n", llround(json_number_value(hour_cracks)));

	printf("  Last 7 days:\n");
	for (int back = 0; back < 7; back++) {
		const json_t *day;

		if (!day_before(date, back, d, wd))
			break;
		day = find_day(days, d);
		if (!day) {
			printf("    %s %s  no data\n", wd, d);
			continue;
		}
		format_cracks(day, cracks, sizeof(cracks));
		breaks = whole(day, "breaks");
		printf("    %s %s  %-38s slouched %6.1f min  sitting %6.1f min  %lld %s\n", wd, d,
		       cracks, num(day, "slouch_min"), num(day, "sitting_min"), breaks,
		       plural(breaks, "break", "breaks"));
	}

	if (json_is_object(week)) {
		printf("  Week over week (%lld days with data, %lld the week before):\n",
		       whole(week, "days"), whole(week, "previous_days"));
		format_change(json_object_get(week, "cracks_change_pct"), change, sizeof(change));
		printf("    cracks    %lld against %lld (%s)\n", whole(week, "cracks"),
		       whole(week, "previous_cracks"), change);
		format_change(json_object_get(week, "slouch_change_pct"), change, sizeof(change));
		printf("    slouched  %.1f min against %.1f min (%s)\n", num(week, "slouch_min"),
		       num(week, "previous_slouch_min"), change);
	}
}

static void print_stats(const json_t *stats, const struct options *o)
{
	const json_t *sensors = json_object_get(stats, "sensors");
	time_t ts = (time_t)(num(stats, "ts") / 1000);
	struct tm tm;
	char when[32] = "?";
	size_t i;
	json_t *s;

	if (localtime_r(&ts, &tm))
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M", &tm);
	else
		memset(&tm, 0, sizeof(tm));
	printf("Per-day record at %s from %s\n", when, o->url_text);
	if (!json_array_size(sensors)) {
		if (o->sensor)
			printf("\nNo record for %s yet.\n", o->sensor);
		else
			printf("\nNo sensor has a record yet.\n");
		return;
	}
	json_array_foreach(sensors, i, s) {
		putchar('\n');
		print_sensor(s, tm.tm_hour);
	}
}

static int run_stats(const struct command *cmd, const struct options *o, char **args)
{
	struct feed_request req = { 0 };
	struct feed_result res;
	const json_t *stats;
	json_t *command;
	int r;

	(void)args;
	if (o->sensor && !is_address(o->sensor))
		return usage_error(cmd, "'%s' is not a sensor address (AA:BB:CC:DD:EE:FF)",
				   o->sensor);
	command = o->sensor ? json_pack("{s:s, s:s}", "type", "stats", "sensor", o->sensor)
			    : json_pack("{s:s}", "type", "stats");
	if (!command) {
		fputs("spinewatch: out of memory\n", stderr);
		return EXIT_UNREACHABLE;
	}
	r = request(cmd, o, command, &req, &res);
	if (r != EXIT_DONE)
		goto out;
	if (!json_is_true(json_object_get(res.reply, "ok"))) {
		r = refused(res.reply);
		goto out;
	}
	stats = json_object_get(res.reply, "stats");
	if (!json_is_object(stats) || !json_is_array(json_object_get(stats, "sensors"))) {
		fprintf(stderr, "spinewatch: %s sent a stats reply without its record\n",
			o->url_text);
		r = EXIT_UNREACHABLE;
		goto out;
	}
	if (o->json)
		print_json(stats);
	else
		print_stats(stats, o);
out:
	feed_result_clear(&res);
	json_decref(command);
	return r;
}

/* ---- annotate ------------------------------------------------------------------ */

static int run_annotate(const struct command *cmd, const struct options *o, char **args)
{
	struct feed_request req = { 0 };
	struct feed_result res;
	json_t *command = NULL, *note = NULL;
	json_int_t seq;
	int pain = -1, stiffness = -1, r;

	/* everything is checked before connecting */
	if (parse_id(args[0], &seq) < 0)
		return usage_error(cmd, "the event SEQ must be a positive integer, not '%s'", args[0]);
	if (!o->pain && !o->stiffness && !o->note)
		return usage_error(cmd, "annotate needs --pain, --stiffness or --note");
	if (o->pain && parse_scale(o->pain, &pain) < 0)
		return usage_error(cmd, "--pain takes a whole number from 0 to %d, not '%s'",
				   SCALE_MAX, o->pain);
	if (o->stiffness && parse_scale(o->stiffness, &stiffness) < 0)
		return usage_error(cmd, "--stiffness takes a whole number from 0 to %d, not '%s'",
				   SCALE_MAX, o->stiffness);
	if (o->note) {
		size_t n = strlen(o->note);

		if (!n)
			return usage_error(cmd, "--note is empty (leave it out for no note)");
		if (n > NOTE_MAX_BYTES)
			return usage_error(cmd, "--note takes up to %d bytes of text, not %zu",
					   NOTE_MAX_BYTES, n);
		note = json_stringn(o->note, n);   /* NULL: not UTF-8 */
		if (!note)
			return usage_error(cmd, "--note is not UTF-8 text");
	}

	command = json_pack("{s:s, s:I}", "type", "annotate", "event", seq);
	if (!command || (pain >= 0 && json_object_set_new(command, "pain", json_integer(pain))) ||
	    (stiffness >= 0 &&
	     json_object_set_new(command, "stiffness", json_integer(stiffness))) ||
	    (note && json_object_set(command, "note", note))) {
		fputs("spinewatch: out of memory\n", stderr);
		json_decref(command);
		json_decref(note);
		return EXIT_UNREACHABLE;
	}
	r = request(cmd, o, command, &req, &res);
	if (r == EXIT_DONE && !json_is_true(json_object_get(res.reply, "ok")))
		r = refused(res.reply);
	else if (r == EXIT_DONE && o->json)
		print_json(res.reply);
	else if (r == EXIT_DONE)
		printf("Noted.\n");
	feed_result_clear(&res);
	json_decref(command);
	json_decref(note);
	return r;
}

/* ---- tail ------------------------------------------------------------------------- */

/* A decimal integer from 0 to INT64_MAX (a seq): 0, else -1. */
static int parse_seq(const char *s, uint64_t *out)
{
	unsigned long long v;
	char *end;

	if (!*s || strspn(s, "0123456789") != strlen(s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end || v > (unsigned long long)INT64_MAX)
		return -1;
	*out = v;
	return 0;
}

/* Each comma-separated item of `arg` to fn; an empty item is handed over as "". 0, or fn's -1. */
static int each_item(const char *arg, int (*fn)(const char *item, void *ctx), void *ctx)
{
	char item[64];

	for (const char *p = arg;; p++) {
		size_t n = strcspn(p, ",");

		/* a longer item is cut, and still no kind or address */
		snprintf(item, sizeof(item), "%.*s", (int)(n < sizeof(item) ? n : sizeof(item) - 1), p);
		if (fn(item, ctx) < 0)
			return -1;
		p += n;
		if (!*p)
			return 0;
	}
}

struct tail_check {
	const struct command *cmd;
	struct tail_options *t;
	int status;
};

static int add_kind(const char *item, void *ctx)
{
	struct tail_check *k = ctx;
	unsigned bit = tail_kind_bit(item);

	if (!bit) {
		k->status = usage_error(k->cmd, "'%s' is not a kind (%s)", item, tail_kind_names);
		return -1;
	}
	k->t->kinds |= bit;
	return 0;
}

static int add_sensor(const char *item, void *ctx)
{
	struct tail_check *k = ctx;
	char up[18];

	if (!is_address(item)) {
		k->status = usage_error(k->cmd, "'%s' is not a sensor address (AA:BB:CC:DD:EE:FF)",
					item);
		return -1;
	}
	for (int i = 0; i < 17; i++)
		up[i] = (char)toupper((unsigned char)item[i]);
	up[17] = '\0';
	for (unsigned i = 0; i < k->t->n_sensors; i++)
		if (!strcmp(k->t->sensors[i], up))
			return 0;
	if (k->t->n_sensors >= TAIL_MAX_SENSORS) {
		k->status = usage_error(k->cmd, "tail follows at most %d sensors", TAIL_MAX_SENSORS);
		return -1;
	}
	memcpy(k->t->sensors[k->t->n_sensors++], up, sizeof(up));
	return 0;
}

static int run_tail(const struct command *cmd, const struct options *o, char **args)
{
	struct tail_options t = { 0 };
	struct tail_check k = { .cmd = cmd, .t = &t };
	double s = o->timeout_s > 0 ? o->timeout_s : cmd->default_timeout_s;

	(void)args;
	/* everything is checked before connecting */
	for (int i = 0; i < o->n_kind_args; i++)
		if (each_item(o->kind_args[i], add_kind, &k) < 0)
			return k.status;
	for (int i = 0; i < o->n_sensor_args; i++)
		if (each_item(o->sensor_args[i], add_sensor, &k) < 0)
			return k.status;
	if (o->since && parse_seq(o->since, &t.since) < 0)
		return usage_error(cmd, "--since takes a seq, a whole number from 0, not '%s'",
				   o->since);
	if (o->count) {
		json_int_t n;

		if (parse_id(o->count, &n) < 0)
			return usage_error(cmd, "--count takes a positive whole number, not '%s'",
					   o->count);
		t.count = (uint64_t)n;
	}
	if (strchr(o->url.path, '?'))
		return usage_error(cmd, "tail makes the URL's query itself: leave it out of '%s'",
				   o->url_text);
	t.url_text = o->url_text;
	t.url = &o->url;
	t.has_since = o->since || o->no_follow;   /* --no-follow alone: everything held */
	t.follow = !o->no_follow;
	t.gaps_on_stdout = o->json;
	t.timeout_ms = (int)ceil(s * 1000);
	if (t.timeout_ms < 1)
		t.timeout_ms = 1;
	switch (tail_run(&t)) {
	case TAIL_DONE:
		return EXIT_DONE;
	case TAIL_REFUSED:
		return EXIT_REFUSED;
	case TAIL_UNREACHABLE:
	default:
		return EXIT_UNREACHABLE;
	}
}

/* ---- status, sensors, alerts: from the hello ----------------------------------- */

/* Connect and take the hello alone; res->hello is set when EXIT_DONE. */
static int hello_only(const struct command *cmd, const struct options *o,
		      struct feed_result *res)
{
	struct feed_request req = { 0 };
	double t = o->timeout_s > 0 ? o->timeout_s : cmd->default_timeout_s;

	req.url_text = o->url_text;
	req.url = &o->url;
	req.timeout_ms = (int)ceil(t * 1000);
	if (req.timeout_ms < 1)
		req.timeout_ms = 1;
	if (feed_run(&req, res) < 0) {
		fprintf(stderr, "spinewatch: %s\n", res->error);
		return EXIT_UNREACHABLE;
	}
	return EXIT_DONE;
}

/* The hello's array `key`, or NULL after saying the hello lacks it. */
static const json_t *hello_array(const struct options *o, const json_t *hello, const char *key)
{
	const json_t *a = json_object_get(hello, key);

	if (!json_is_array(a))
		fprintf(stderr, "spinewatch: %s sent a hello without its \"%s\"\n", o->url_text, key);
	return json_is_array(a) ? a : NULL;
}

/* Text from the daemon for a terminal: control characters (C0, DEL, C1) become '?', and it is
 * cut to fit `len` at a character boundary. */
static void sanitize(const char *in, char *out, size_t len)
{
	const unsigned char *p = (const unsigned char *)(in ? in : "");
	size_t n = 0;

	while (*p) {
		size_t clen = *p < 0x80 ? 1 : *p >= 0xf0 ? 4 : *p >= 0xe0 ? 3 : 2;

		if (n + clen >= len)
			break;
		if (*p < ' ' || *p == 0x7f || (*p == 0xc2 && p[1] >= 0x80 && p[1] < 0xa0)) {
			out[n++] = '?';
			p += *p == 0xc2 ? 2 : 1;
			continue;
		}
		for (size_t i = 0; i < clen && *p; i++)
			out[n++] = (char)*p++;
	}
	out[n] = '\0';
}

/* Columns on a terminal: one per character (UTF-8 continuation bytes take none). */
static size_t text_width(const char *s)
{
	size_t w = 0;

	for (; *s; s++)
		w += ((unsigned char)*s & 0xc0) != 0x80;
	return w;
}

#define TABLE_MAX_COLS 10
#define CELL_MAX 512

typedef void (*cell_fn)(const json_t *row, int col, char *buf, size_t len);

/* A table: a header line, then a line per row; columns two spaces apart, the numbers (right[])
 * aligned right, the last column unpadded (the long free text goes there). */
static void print_table(const json_t *rows, int ncols, const char *const *heads,
			const bool *right, cell_fn cell)
{
	size_t width[TABLE_MAX_COLS], i;
	char buf[CELL_MAX];
	json_t *row;

	for (int c = 0; c < ncols; c++)
		width[c] = text_width(heads[c]);
	json_array_foreach(rows, i, row) {
		for (int c = 0; c < ncols; c++) {
			cell(row, c, buf, sizeof(buf));
			if (text_width(buf) > width[c])
				width[c] = text_width(buf);
		}
	}
	for (size_t r = 0; r <= json_array_size(rows); r++) {
		for (int c = 0; c < ncols; c++) {
			const char *text = buf;
			size_t pad;

			if (r == 0)
				text = heads[c];
			else
				cell(json_array_get(rows, r - 1), c, buf, sizeof(buf));
			pad = width[c] - text_width(text);
			if (right[c])
				printf("%*s%s", (int)pad, "", text);
			else if (c < ncols - 1)
				printf("%s%*s", text, (int)pad, "");
			else
				printf("%s", text);
			fputs(c < ncols - 1 ? "  " : "\n", stdout);
		}
	}
}

/* A JSON number as a whole number, or "-" when it is not a number (null). */
static void cell_number(const json_t *v, const char *unit, char *buf, size_t len)
{
	if (json_is_number(v))
		snprintf(buf, len, "%lld%s", llround(json_number_value(v)), unit);
	else
		snprintf(buf, len, "-");
}

static void cell_string(const json_t *v, char *buf, size_t len)
{
	const char *s = json_string_value(v);

	if (s && *s)
		sanitize(s, buf, len);
	else
		snprintf(buf, len, "-");
}

static const char *const sensor_heads[] = {
	"ADDRESS", "NAME", "PROFILE", "STATE", "BATTERY", "RSSI", "LOST", "REJECTED", "REASON",
};
static const bool sensor_right[] = { false, false, false, false, true, true, true, true, false };

static void sensor_cell(const json_t *s, int col, char *buf, size_t len)
{
	static const char *const key[] = {
		"address", "name", "profile", "state", "battery", "rssi", "lost", "rejected", "reason",
	};
	const json_t *v = json_object_get(s, key[col]);

	if (col == 4)
		cell_number(v, "%", buf, len);
	else if (col >= 5 && col <= 7)
		cell_number(v, "", buf, len);
	else
		cell_string(v, buf, len);
}

static const char *const alert_heads[] = {
	"ID", "RULE", "SEVERITY", "STATE", "SENSOR", "SINCE", "MESSAGE",
};
static const bool alert_right[] = { true, false, false, false, false, false, false };

/* Milliseconds since the epoch as local time, "YYYY-MM-DD HH:MM". */
static void format_ms(const json_t *v, char *buf, size_t len)
{
	time_t ts = (time_t)(json_number_value(v) / 1000);
	struct tm tm;

	if (!json_is_number(v) || !localtime_r(&ts, &tm) ||
	    !strftime(buf, len, "%Y-%m-%d %H:%M", &tm))
		snprintf(buf, len, "-");
}

static void alert_cell(const json_t *a, int col, char *buf, size_t len)
{
	static const char *const key[] = {
		"id", "rule", "severity", "state", "sensor", "raised_ts", "message",
	};
	const json_t *v = json_object_get(a, key[col]);

	if (col == 0)
		cell_number(v, "", buf, len);
	else if (col == 5)
		format_ms(v, buf, len);
	else
		cell_string(v, buf, len);
}

/* sensors and alerts: one of hello's arrays, as a table or as it is (--json) */
static int run_hello_table(const struct command *cmd, const struct options *o, const char *key,
			   const char *empty, int ncols, const char *const *heads,
			   const bool *right, cell_fn cell)
{
	struct feed_result res;
	const json_t *rows = NULL;
	int r = hello_only(cmd, o, &res);

	if (r == EXIT_DONE && !(rows = hello_array(o, res.hello, key)))
		r = EXIT_UNREACHABLE;
	if (r == EXIT_DONE) {
		if (o->json)
			print_json(rows);
		else if (!json_array_size(rows))
			printf("%s\n", empty);
		else
			print_table(rows, ncols, heads, right, cell);
	}
	feed_result_clear(&res);
	return r;
}

static int run_sensors(const struct command *cmd, const struct options *o, char **args)
{
	(void)args;
	return run_hello_table(cmd, o, "sensors", "No sensor known yet.", 9, sensor_heads,
			       sensor_right, sensor_cell);
}

static int run_alerts(const struct command *cmd, const struct options *o, char **args)
{
	(void)args;
	return run_hello_table(cmd, o, "alerts", "No active alerts.", 7, alert_heads, alert_right,
			       alert_cell);
}

/* The sensor states of protocol/websocket-feed.md, in their order. */
static const char *const sensor_states[] = {
	"discovered", "connecting", "pairing", "resolving", "subscribed", "streaming", "lost",
	"waiting", "gone",
};

/* status --json (README.md, "The command line"), built from the hello. */
static json_t *status_object(const struct options *o, const json_t *hello)
{
	const json_t *sensors = json_object_get(hello, "sensors");
	const json_t *alerts = json_object_get(hello, "alerts");
	const json_t *stats = json_object_get(json_object_get(hello, "stats"), "sensors");
	json_t *st = json_object(), *by_state = json_object(), *v;
	json_int_t raised = 0, acked = 0, cracks = 0;
	double slouch = 0;
	const char *date = NULL;
	char today[16];
	size_t i;

	if (!st || !by_state)
		goto fail;
	for (i = 0; i < sizeof(sensor_states) / sizeof(sensor_states[0]); i++)
		if (json_object_set_new(by_state, sensor_states[i], json_integer(0)))
			goto fail;
	json_array_foreach(sensors, i, v) {
		const char *state = json_string_value(json_object_get(v, "state"));
		json_t *n;

		if (!state)
			state = "unknown";
		n = json_object_get(by_state, state);
		if (json_object_set_new(by_state, state,
					json_integer(n ? json_integer_value(n) + 1 : 1)))
			goto fail;
	}
	json_array_foreach(alerts, i, v) {
		const char *state = json_string_value(json_object_get(v, "state"));

		raised += state && !strcmp(state, "raised");
		acked += state && !strcmp(state, "acknowledged");
	}
	json_array_foreach(stats, i, v) {
		const json_t *day = json_object_get(v, "today");

		cracks += whole(day, "cracks");
		slouch += num(day, "slouch_min");
		if (!date)
			date = json_string_value(json_object_get(day, "date"));
	}
	if (!date) {   /* nothing counted yet: the daemon's today, as seen here */
		time_t ts = (time_t)(num(hello, "ts") / 1000);
		struct tm tm;

		if (localtime_r(&ts, &tm) && strftime(today, sizeof(today), "%Y-%m-%d", &tm))
			date = today;
	}
#define COPY(key) json_object_set(st, key, json_object_get(hello, key) ? \
		json_object_get(hello, key) : json_null())
	if (COPY("server") || COPY("version") || COPY("protocol") ||
	    json_object_set_new(st, "url", json_string(o->url_text)) || COPY("stream") ||
	    COPY("ts") || COPY("last_seq") || COPY("oldest_seq"))
		goto fail;
#undef COPY
	if (json_object_set_new(st, "sensors", json_pack("{s:I, s:O}", "known",
			(json_int_t)json_array_size(sensors), "by_state", by_state)) ||
	    json_object_set_new(st, "alerts", json_pack("{s:I, s:I, s:I}", "active",
			(json_int_t)json_array_size(alerts), "raised", raised, "acknowledged",
			acked)) ||
	    json_object_set_new(st, "today", json_pack("{s:s?, s:I, s:f}", "date", date,
			"cracks", cracks, "slouch_min", round(slouch * 10) / 10)))
		goto fail;
	json_decref(by_state);
	return st;
fail:
	json_decref(st);
	json_decref(by_state);
	return NULL;
}

static void print_status(const json_t *st)
{
	const json_t *sensors = json_object_get(st, "sensors");
	const json_t *by_state = json_object_get(sensors, "by_state");
	const json_t *alerts = json_object_get(st, "alerts");
	const json_t *today = json_object_get(st, "today");
	const char *version = json_string_value(json_object_get(st, "version"));
	const char *date = json_string_value(json_object_get(today, "date"));
	char text[CELL_MAX];
	long long n, cracks = whole(today, "cracks");
	const char *state;
	const char *sep = ": ";
	json_t *v;

	sanitize(json_string_value(json_object_get(st, "stream")), text, sizeof(text));
	printf("spinewatchd %s at %s (stream %s)\n", version ? version : "?",
	       json_string_value(json_object_get(st, "url")), text[0] ? text : "?");
	n = whole(sensors, "known");
	if (!n) {
		printf("Sensors:  none known yet\n");
	} else {
		printf("Sensors:  %lld known", n);
		json_object_foreach((json_t *)by_state, state, v) {
			if (!json_integer_value(v))
				continue;
			sanitize(state, text, sizeof(text));
			printf("%s%lld %s", sep, (long long)json_integer_value(v), text);
			sep = ", ";
		}
		putchar('\n');
	}
	n = whole(alerts, "active");
	if (!n)
		printf("Alerts:   none active\n");
	else
		printf("Alerts:   %lld active (%lld raised, %lld acknowledged): "
		       "'spinewatch alerts' lists them\n", n, whole(alerts, "raised"),
		       whole(alerts, "acknowledged"));
	printf("Today:    %lld %s, %.1f min slouched%s%s%s\n", cracks,
	       plural(cracks, "crack", "cracks"), num(today, "slouch_min"), date ? " (" : "",
	       date ? date : "", date ? ")" : "");
	printf("Feed:     last seq %lld, oldest kept %lld\n", whole(st, "last_seq"),
	       whole(st, "oldest_seq"));
}

static int run_status(const struct command *cmd, const struct options *o, char **args)
{
	struct feed_result res;
	json_t *st = NULL;
	int r;

	(void)args;
	r = hello_only(cmd, o, &res);
	if (r != EXIT_DONE)
		goto out;
	if (!hello_array(o, res.hello, "sensors") || !hello_array(o, res.hello, "alerts")) {
		r = EXIT_UNREACHABLE;
		goto out;
	}
	st = status_object(o, res.hello);
	if (!st) {
		fputs("spinewatch: out of memory\n", stderr);
		r = EXIT_UNREACHABLE;
		goto out;
	}
	if (o->json)
		print_json(st);
	else
		print_status(st);
out:
	json_decref(st);
	feed_result_clear(&res);
	return r;
}

/* ---- the command line ------------------------------------------------------------ */

/* The first word of the first line of path that is not blank or a # comment. */
static int read_token(const char *path, char *out, size_t cap, char *why, size_t why_len)
{
	char line[512];
	FILE *f = fopen(path, "re");

	if (!f) {
		snprintf(why, why_len, "%s", strerror(errno));
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		char *w = line + strspn(line, " \t");
		size_t n = strcspn(w, " \t\r\n");

		if (!n || *w == '#')
			continue;
		fclose(f);
		if (n >= cap) {
			snprintf(why, why_len, "the token is too long");
			return -1;
		}
		memcpy(out, w, n);
		out[n] = '\0';
		return 0;
	}
	fclose(f);
	snprintf(why, why_len, "no token in it");
	return -1;
}

enum { OPT_URL = 256, OPT_TOKEN_FILE, OPT_CACERT, OPT_JSON, OPT_TIMEOUT, OPT_SENSOR, OPT_PAIN, OPT_STIFFNESS, OPT_NOTE,
       OPT_SINCE, OPT_KIND, OPT_COUNT, OPT_NO_FOLLOW };

static const struct option long_options[] = {
	{ "url", required_argument, NULL, OPT_URL },
	{ "token-file", required_argument, NULL, OPT_TOKEN_FILE },
	{ "cacert", required_argument, NULL, OPT_CACERT },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "sensor", required_argument, NULL, OPT_SENSOR },
	{ "pain", required_argument, NULL, OPT_PAIN },
	{ "stiffness", required_argument, NULL, OPT_STIFFNESS },
	{ "note", required_argument, NULL, OPT_NOTE },
	{ "since", required_argument, NULL, OPT_SINCE },
	{ "kind", required_argument, NULL, OPT_KIND },
	{ "count", required_argument, NULL, OPT_COUNT },
	{ "no-follow", no_argument, NULL, OPT_NO_FOLLOW },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
	struct options o = { 0 };
	const struct command *cmd = NULL;
	const char *url_from = "--url", *timeout_arg = NULL, *token_file = NULL, *cacert = NULL;
	static char token[160];
	bool help = false, version = false;
	char why[160], **args;
	int c, nargs;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hV", long_options, NULL)) != -1) {
		switch (c) {
		case OPT_URL: o.url_text = optarg; break;
		case OPT_TOKEN_FILE: token_file = optarg; break;
		case OPT_CACERT: cacert = optarg; break;
		case OPT_JSON: o.json = true; break;
		case OPT_TIMEOUT: timeout_arg = optarg; break;
		case OPT_SENSOR:
		case OPT_KIND: {
			const char **list = c == OPT_SENSOR ? o.sensor_args : o.kind_args;
			int *n = c == OPT_SENSOR ? &o.n_sensor_args : &o.n_kind_args;

			if (*n >= MAX_REPEATS)
				return usage_error(NULL, "option '--%s' given more than %d times",
						   c == OPT_SENSOR ? "sensor" : "kind", MAX_REPEATS);
			list[(*n)++] = optarg;
			break;
		}
		case OPT_SINCE:
		case OPT_COUNT: {
			const char **slot = c == OPT_SINCE ? &o.since : &o.count;

			if (*slot)
				return usage_error(NULL, "option '--%s' given twice",
						   c == OPT_SINCE ? "since" : "count");
			*slot = optarg;
			break;
		}
		case OPT_NO_FOLLOW: o.no_follow = true; break;
		case OPT_PAIN:
		case OPT_STIFFNESS:
		case OPT_NOTE: {
			const char **slot = c == OPT_PAIN ? &o.pain
					    : c == OPT_STIFFNESS ? &o.stiffness : &o.note;

			if (*slot)
				return usage_error(NULL, "option '--%s' given twice",
						   c == OPT_PAIN ? "pain" : c == OPT_STIFFNESS
						   ? "stiffness" : "note");
			*slot = optarg;
			break;
		}
		case 'h': help = true; break;
		case 'V': version = true; break;
		case ':':
			return usage_error(NULL, "option '%s' needs a value", argv[optind - 1]);
		default:
			if (optopt)
				return usage_error(NULL, "unknown option '-%c'", optopt);
			return usage_error(NULL, "unknown option '%s'", argv[optind - 1]);
		}
	}
	args = argv + optind;
	nargs = argc - optind;

	if (version) {
		printf("spinewatch %s\n", SPINEWATCH_VERSION);
		return EXIT_DONE;
	}
	if (nargs && !strcmp(args[0], "help")) {
		if (nargs > 2)
			return usage_error(NULL, "help takes at most one command");
		if (nargs == 1) {
			print_global_help();
			return EXIT_DONE;
		}
		if (!(cmd = find_command(args[1])))
			return usage_error(NULL, "unknown command '%s'", args[1]);
		print_command_help(cmd);
		return EXIT_DONE;
	}
	if (nargs && !(cmd = find_command(args[0])))
		return usage_error(NULL, "unknown command '%s'", args[0]);
	if (help) {
		if (cmd)
			print_command_help(cmd);
		else
			print_global_help();
		return EXIT_DONE;
	}
	if (!cmd)
		return usage_error(NULL, "no command given (tail, status, sensors, alerts, ack, "
				   "calibrate, stats, annotate or help)");
	if (nargs - 1 != cmd->nargs) {
		if (cmd->nargs)
			return usage_error(cmd, "%s takes one argument: %.*s", cmd->name,
					   (int)strcspn(cmd->args, " "), cmd->args);
		return usage_error(cmd, "%s takes no arguments", cmd->name);
	}
	if (o.n_sensor_args && cmd->run != run_stats && cmd->run != run_tail)
		return usage_error(cmd, "--sensor is for stats and tail only");
	if (o.n_sensor_args > 1 && cmd->run == run_stats)
		return usage_error(cmd, "stats takes one --sensor");
	if (cmd->run == run_stats && o.n_sensor_args)
		o.sensor = o.sensor_args[0];
	if ((o.since || o.n_kind_args || o.count || o.no_follow) && cmd->run != run_tail)
		return usage_error(cmd, "%s is for tail only",
				   o.since ? "--since" : o.n_kind_args ? "--kind"
				   : o.count ? "--count" : "--no-follow");
	if ((o.pain || o.stiffness || o.note) && cmd->run != run_annotate)
		return usage_error(cmd, "%s is for annotate only",
				   o.pain ? "--pain" : o.stiffness ? "--stiffness" : "--note");
	if (timeout_arg && parse_timeout(timeout_arg, &o.timeout_s) < 0)
		return usage_error(cmd, "--timeout takes a number of seconds above 0 and at most "
				   "%g, not '%s'", MAX_TIMEOUT_S, timeout_arg);
	if (!o.url_text) {
		o.url_text = getenv("SPINEWATCH_URL");
		url_from = "SPINEWATCH_URL";
		if (!o.url_text || !*o.url_text) {
			o.url_text = DEFAULT_URL;
			url_from = "the default URL";
		}
	}
	if (feed_url_parse(o.url_text, &o.url, why, sizeof(why)) < 0)
		return usage_error(cmd, "%s '%s': %s", url_from, o.url_text, why);
	if (token_file) {
		if (read_token(token_file, token, sizeof(token), why, sizeof(why)) < 0)
			return usage_error(cmd, "--token-file %s: %s", token_file, why);
		o.url.token = token;
	} else if (getenv("SPINEWATCH_TOKEN") && *getenv("SPINEWATCH_TOKEN")) {
		o.url.token = getenv("SPINEWATCH_TOKEN");
	}
	if (o.url.token && strpbrk(o.url.token, " \t\r\n"))
		return usage_error(cmd, "the access token has a blank in it");
	o.url.ca_file = cacert;
	return cmd->run(cmd, &o, args + 1);
}
