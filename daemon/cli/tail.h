/*
 * daemon/cli/tail.h - `spinewatch tail`: follow spinewatchd's feed and print its events as
 * NDJSON (one compact JSON object per line), resuming after a lost connection or a daemon
 * restart with ?since=<the last seq printed> and never printing an event twice. The command
 * line is checked by spinewatch.c; this runs it.
 */
#ifndef SPINEWATCH_CLI_TAIL_H
#define SPINEWATCH_CLI_TAIL_H

#include <stdbool.h>
#include <stdint.h>

#include "feed_client.h"

#define TAIL_MAX_SENSORS 16   /* the feed's limit on ?sensors= */

/* What can be asked for: the feed's event kinds, then its live messages. */
enum tail_kind {
	TAIL_CRACK = 1u << 0, TAIL_SLOUCH = 1u << 1, TAIL_SENSOR = 1u << 2, TAIL_ALERT = 1u << 3,
	TAIL_CALIBRATION = 1u << 4, TAIL_ANNOTATION = 1u << 5,
	TAIL_POSTURE = 1u << 6, TAIL_STATUS = 1u << 7,
};

/* The bit of a kind's name (as in the feed's ?kinds=), or 0 for a name it does not know. */
unsigned tail_kind_bit(const char *name);

/* A comma-separated list of every kind's name, for messages. */
extern const char tail_kind_names[];

struct tail_options {
	const char *url_text;          /* for messages */
	const struct feed_url *url;    /* its path has no query: tail makes it */
	bool has_since;
	uint64_t since;                /* replay events after this seq first */
	unsigned kinds;                /* tail_kind bits; 0: every event (no posture, status) */
	char sensors[TAIL_MAX_SENSORS][18];   /* upper-case addresses */
	unsigned n_sensors;            /* 0: every sensor */
	uint64_t count;                /* stop after this many lines; 0: no limit */
	bool follow;                   /* false: print what the ring holds after since, exit */
	bool gaps_on_stdout;           /* --json: gap messages are lines of the output too */
	int timeout_ms;                /* for each connection's hello; without follow, in all */
};

enum tail_status {
	TAIL_DONE,          /* interrupted, --count reached, the ring printed, or the reader of
			     * our output went away */
	TAIL_REFUSED,       /* the daemon refused the connection (an error message), or our
			     * output could not be written */
	TAIL_UNREACHABLE,   /* the first connection failed, or the daemon misbehaved */
};

/* Run it until done; messages for people go to stderr. */
enum tail_status tail_run(const struct tail_options *o);

#endif
