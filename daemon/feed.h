/*
 * feed.h - the WebSocket feed at /ws: who gets in (path, gate.h's Host,
 * Origin and token checks, client cap) and what they may do (read or
 * control; commands per second), the hello, `since` replay, and streaming events and live posture
 * samples from the event store. Each client is a pair of cursors into the
 * store's rings; frames are the rings' bytes, encoded once for everyone.
 */
#ifndef SW_FEED_H
#define SW_FEED_H

#include <libwebsockets.h>

#include "detector.h"
#include "gate.h"
#include "sensors.h"
#include "store.h"

#define FEED_PATH "/ws"
#define FEED_MAX_CLIENT_MESSAGE 4096
#define FEED_DEFAULT_MAX_CLIENTS 64
#define FEED_MAX_REPLIES 16     /* unsent replies per client before it is closed */
#define FEED_REPLY_PAUSE 4      /* unsent replies at which the client's input is paused */
#define FEED_COMMANDS_PER_S 20  /* a client's sustained command rate; more are refused */
#define FEED_COMMAND_BURST 40   /* commands a client may send at once after a quiet spell */
#define FEED_DEFAULT_WRITE_TIMEOUT_S 60  /* a client that takes nothing for this long is dropped */

struct feed;

struct feed_config {
	struct store *store;
	struct sensors *sensors;
	const struct detector_config *detector;
	const char *stream_id;   /* 16 hex digits, new every run */
	const char *version;
	unsigned max_clients;
	/* seconds a client may go without taking a frame it is due before it is
	 * dropped (0: FEED_DEFAULT_WRITE_TIMEOUT_S) */
	unsigned write_timeout_s;
	/* who may connect, and whether they may send commands that change state */
	struct gate *gate;
	/*
	 * Client commands (ack, calibrate): true with *result on success, false
	 * with a stable *code and a *message for people. NULL: every command is
	 * refused as unavailable.
	 */
	bool (*command)(void *user, const struct feed_command *cmd, const char **result,
			const char **code, const char **message);
	/* Active alerts for hello; NULL: none. */
	size_t (*alerts)(void *user, struct feed_alert_info *out, size_t max);
	/* The stats object (stats_keeper.h, without "type") for hello and the
	 * stats command, a new reference; sensor NULL means all. NULL callback or
	 * result: hello has no "stats" and the command is refused as unavailable. */
	struct json_t *(*stats)(void *user, const char *sensor_or_NULL);
	void *user;
};

struct feed *feed_new(const struct feed_config *cfg);
void feed_free(struct feed *f);

/* The protocol entry for the vhost (it must be the vhost's first protocol,
 * so that clients without a subprotocol land on it too). */
struct lws_protocols feed_protocol(struct feed *f);

/* After the context exists: lets the feed wake its clients. */
void feed_attach(struct feed *f, struct lws_context *ctx);

unsigned feed_clients(const struct feed *f);

/* Totals since start, for /metrics. */
struct feed_counts {
	uint64_t gaps_sent;        /* gap notices sent to slow or late clients */
	uint64_t events_skipped;   /* events those gaps stood for */
	uint64_t clients_total;    /* clients accepted */
	uint64_t commands;         /* client commands handled */
	uint64_t rate_limited;     /* commands refused for coming too fast */
	uint64_t forbidden;        /* commands refused to read-only clients */
	uint64_t timed_out;        /* clients dropped for taking nothing for write_timeout_s */
	uint64_t batches;          /* writes that carried a lagging client's backlog at once */
};
void feed_counts(const struct feed *f, struct feed_counts *out);

/* The daemon stops: every client gets a close frame 1001 "going away" and
 * new ones are refused; gone(user) is called once none is left (at once if
 * there are none). */
void feed_going_away(struct feed *f, void (*gone)(void *user), void *user);

#endif
