/*
 * daemon/cli/spinewatch.c - the `spinewatch` command-line client: its command line (global
 * options, the ack, calibrate, stats, annotate and help subcommands, help per subcommand), what
 * it prints (text for people, or --json) and its exit status. Talking to the feed is
 * feed_client.c's.
 */
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

#ifndef SPINEWATCH_VERSION
#define SPINEWATCH_VERSION "0.1.0"
#endif

#define DEFAULT_URL "ws://127.0.0.1:8421/ws"
#define MAX_TIMEOUT_S 3600.0
#define NOTE_MAX_BYTES 280    /* an annotation's note (protocol/websocket-feed.md) */
#define SCALE_MAX 10          /* pain and stiffness: 0 (none) to 10 (worst) */

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
	"                     or $SPINEWATCH_URL); ws:// only\n"
	"  --json             print the answer as one line of JSON (for jq)\n"
	"  --timeout SECONDS  give up after this long (default 10; 15 for calibrate)\n"
	"  -h, --help         show this help; after a command, that command's\n"
	"  -V, --version      show the version\n";

static const char exit_help[] =
	"Exit status:\n"
	"  0  done\n"
	"  1  spinewatchd refused the command (its code and message go to stderr)\n"
	"     or, for calibrate, refused the calibration\n"
	"  2  usage error\n"
	"  3  spinewatchd is unreachable or misbehaves (connection refused, timeout,\n"
	"     no hello, bad JSON)\n";

static int run_ack(const struct command *cmd, const struct options *o, char **args);
static int run_calibrate(const struct command *cmd, const struct options *o, char **args);
static int run_stats(const struct command *cmd, const struct options *o, char **args);
static int run_annotate(const struct command *cmd, const struct options *o, char **args);

static const struct command commands[] = {
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

		snprintf(head, sizeof(head), "%s %s", commands[i].name, commands[i].args);
		if (strlen(head) > 22)   /* a long synopsis: the summary on the next line */
			printf("  %s\n  %-22s %s\n", head, "", commands[i].summary);
		else
			printf("  %-22s %s\n", head, commands[i].summary);
	}
	printf("  %-22s %s\n\n%s\n%s\n", "help [COMMAND]", "show this help, or a command's",
	       global_options_help, exit_help);
	printf("Example: spinewatch stats --json | jq '.sensors[] | {sensor, cracks: .today.cracks}'\n");
}

static void print_command_help(const struct command *cmd)
{
	printf("Usage: spinewatch [OPTION]... %s %s\n%s\n%s\n%s", cmd->name, cmd->args, cmd->help,
	       global_options_help, exit_help);
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

/* ---- the command line ------------------------------------------------------------ */

enum { OPT_URL = 256, OPT_JSON, OPT_TIMEOUT, OPT_SENSOR, OPT_PAIN, OPT_STIFFNESS, OPT_NOTE };

static const struct option long_options[] = {
	{ "url", required_argument, NULL, OPT_URL },
	{ "json", no_argument, NULL, OPT_JSON },
	{ "timeout", required_argument, NULL, OPT_TIMEOUT },
	{ "sensor", required_argument, NULL, OPT_SENSOR },
	{ "pain", required_argument, NULL, OPT_PAIN },
	{ "stiffness", required_argument, NULL, OPT_STIFFNESS },
	{ "note", required_argument, NULL, OPT_NOTE },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ NULL, 0, NULL, 0 },
};

int main(int argc, char **argv)
{
	struct options o = { 0 };
	const struct command *cmd = NULL;
	const char *url_from = "--url", *timeout_arg = NULL;
	bool help = false, version = false;
	char why[160], **args;
	int c, nargs;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hV", long_options, NULL)) != -1) {
		switch (c) {
		case OPT_URL: o.url_text = optarg; break;
		case OPT_JSON: o.json = true; break;
		case OPT_TIMEOUT: timeout_arg = optarg; break;
		case OPT_SENSOR: o.sensor = optarg; break;
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
		return usage_error(NULL, "no command given (ack, calibrate, stats, annotate or help)");
	if (nargs - 1 != cmd->nargs) {
		if (cmd->nargs)
			return usage_error(cmd, "%s takes one argument: %.*s", cmd->name,
					   (int)strcspn(cmd->args, " "), cmd->args);
		return usage_error(cmd, "%s takes no arguments", cmd->name);
	}
	if (o.sensor && cmd->run != run_stats)
		return usage_error(cmd, "--sensor is for stats only");
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
	return cmd->run(cmd, &o, args + 1);
}
