/*
 * feed.c - the WebSocket feed (protocol: websocket-feed.md).
 *
 * One lws_write() per WRITEABLE callback, in this order: the hello, a pending
 * error (then close), the next event or gap notice, the newest live posture
 * samples; then ask for WRITEABLE again while anything is left. lws only
 * reports a client writeable once its previous frame is fully sent, so a slow
 * client holds at most one frame here; the ring moves on without it and it
 * gets a gap notice when it catches up.
 */
#include "feed.h"

#include <errno.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "log.h"

#define SENSORS_IN_HELLO SENSORS_MAX
#define ALERTS_IN_HELLO 64
#define REPLY_MAX 1024   /* an id of up to FEED_TAG_MAX bytes of JSON, code and message */
#define SKIP_PER_CALL 1024   /* filtered-out records passed over per writeable callback */

struct feed {
	struct feed_config cfg;
	struct lws_context *ctx;
	struct lws_protocols proto;
	unsigned clients;
	struct feed_counts counts;
	struct pss *list;           /* established clients */
	bool going_away;            /* the daemon stops: close every client with 1001 */
	void (*gone)(void *user);   /* called once the last client is closed */
	void *gone_user;
	unsigned peak;              /* most clients at once since the heap was last trimmed */
	bool trim_armed;
	lws_sorted_usec_list_t trim_timer;
	struct log_ratelimit rl_reject, rl_client;
};

/* per WebSocket session */
struct pss {
	struct lws *wsi;
	struct pss *prev, *next;   /* in feed.list while established */
	enum access_role role;     /* read: no commands that change state */
	int64_t cmd_tat_ms;        /* rate limit: when the client's next command is due */
	bool timer_armed;          /* the write timeout runs */
	bool rx_paused;            /* its input waits until its replies are out */
	lws_sorted_usec_list_t write_timer;
	struct feed *feed;
	uint64_t cursor;           /* last event seq sent */
	uint64_t posture_cursor;   /* last live posture record sent */
	unsigned char *hello;      /* LWS_PRE + JSON, until sent */
	size_t hello_len;
	const char *error_code, *error_message;
	char *rx;                  /* the message being received (FEED_MAX_CLIENT_MESSAGE) */
	size_t rx_len;
	bool rx_refused;           /* the message being received is refused (too long, binary) */
	bool rx_binary;
	struct feed_filter filter; /* what this client wants; empty: everything */
	char *replies[FEED_MAX_REPLIES];   /* LWS_PRE + JSON + NUL, oldest first */
	unsigned n_replies;
	bool established;
};

_Static_assert(RING_PRE >= LWS_PRE, "ring headroom must hold a WebSocket frame header");

/* ---- access gate --------------------------------------------------------- */

static bool path_ok(struct lws *wsi)
{
	char uri[64];

	if (lws_hdr_copy(wsi, uri, sizeof(uri), WSI_TOKEN_GET_URI) <= 0)
		return false;
	return !strcmp(uri, FEED_PATH);
}

/* Who may upgrade to the feed: 0, or -1 with the refusal in v. */
static int upgrade_verdict(struct feed *f, struct lws *wsi, struct gate_verdict *v)
{
	memset(v, 0, sizeof(*v));
	if (!path_ok(wsi)) {
		log_rl(&f->rl_reject, LOG_INFO, "feed: refused a WebSocket upgrade on another path");
		v->status = 404;
		v->code = "not-found";
		v->message = "the feed is at " FEED_PATH;
		return -1;
	}
	if (f->cfg.gate) {
		gate_check(f->cfg.gate, wsi, true, ACCESS_READ, v);
		if (v->status)
			return -1;
	}
	if (f->going_away) {
		v->status = 503;
		v->code = "going-away";
		v->message = "spinewatchd is stopping";
		return -1;
	}
	if (f->clients >= f->cfg.max_clients) {
		log_rl(&f->rl_reject, LOG_WARNING, "feed: refused a client: %u connected already",
		       f->clients);
		v->status = 503;
		v->code = "too-many-clients";
		v->message = "too many clients are connected; try again later";
		return -1;
	}
	return 0;
}

/* "since" query argument: 1 if present and valid, 0 if absent, -1 if bad */
/* ?kinds=crack,slouch&sensors=AA:..,BB:..: 0, or -1 with an error code and message. */
static int parse_filter(struct lws *wsi, struct feed_filter *f, const char **code,
			const char **message)
{
	char buf[FEED_FILTER_SENSORS * 18 + 32];
	const char *v;

	memset(f, 0, sizeof(*f));
	v = lws_get_urlarg_by_name(wsi, "kinds=", buf, sizeof(buf));
	if (v && feed_filter_parse_kinds(f, v, message) < 0) {
		*code = "bad-kinds";
		return -1;
	}
	v = lws_get_urlarg_by_name(wsi, "sensors=", buf, sizeof(buf));
	if (v && feed_filter_parse_sensors(f, v, message) < 0) {
		*code = "bad-sensors";
		return -1;
	}
	return 0;
}

static int parse_since(struct lws *wsi, uint64_t *since)
{
	char buf[64];
	const char *v = lws_get_urlarg_by_name(wsi, "since=", buf, sizeof(buf));
	char *end;
	unsigned long long n;

	if (!v) {
		/* "?since" without a value, or too long to be a number */
		if (lws_get_urlarg_by_name(wsi, "since", buf, sizeof(buf)))
			return -1;
		return 0;
	}
	if (*v < '0' || *v > '9' || strlen(v) > 20)
		return -1;
	errno = 0;
	n = strtoull(v, &end, 10);
	if (errno || *end)
		return -1;
	*since = n;
	return 1;
}

/* ---- messages ------------------------------------------------------------ */

static void build_hello(struct feed *f, struct pss *pss)
{
	struct feed_sensor_info sensors[SENSORS_IN_HELLO];
	const struct ring *ev = store_events(f->cfg.store);
	struct feed_hello h = {
		.version = f->cfg.version,
		.stream = f->cfg.stream_id,
		.ts_ms = clock_epoch_ms(),
		.last_seq = ring_last_seq(ev),
		.oldest_seq = ring_oldest_seq(ev),
		.threshold_deg = f->cfg.detector->threshold_deg,
		.hysteresis_deg = f->cfg.detector->hysteresis_deg,
		.delay_ms = f->cfg.detector->delay_ms,
		.calibration_ms = f->cfg.detector->calibration_ms,
		.sensors = sensors,
	};
	size_t len;
	char *json;

	struct feed_alert_info alerts[ALERTS_IN_HELLO];

	h.n_sensors = sensors_snapshot(f->cfg.sensors, sensors, SENSORS_IN_HELLO);
	if (f->cfg.alerts) {
		h.alerts = alerts;
		h.n_alerts = f->cfg.alerts(f->cfg.user, alerts, ALERTS_IN_HELLO);
	}
	if (f->cfg.stats)
		h.stats = f->cfg.stats(f->cfg.user, NULL);
	json = feed_encode_hello(&h, &len);
	json_decref(h.stats);
	if (!json)
		return;
	pss->hello = malloc(LWS_PRE + len);
	if (pss->hello) {
		memcpy(pss->hello + LWS_PRE, json, len);
		pss->hello_len = len;
	}
	free(json);
}

static int write_text(struct lws *wsi, unsigned char *payload, size_t len)
{
	int n = lws_write(wsi, payload, len, LWS_WRITE_TEXT);

	return n < (int)len ? -1 : 0;
}

static int write_small(struct lws *wsi, int (*enc)(char *buf, size_t cap, const void *a),
		       const void *arg)
{
	unsigned char buf[LWS_PRE + 256];
	int n = enc((char *)buf + LWS_PRE, sizeof(buf) - LWS_PRE, arg);

	if (n < 0)
		return -1;
	return write_text(wsi, buf + LWS_PRE, (size_t)n);
}

static int enc_gap(char *buf, size_t cap, const void *a)
{
	const struct ring_gap *g = a;

	return feed_encode_gap(g->from, g->to, buf, cap);
}

static int enc_error(char *buf, size_t cap, const void *a)
{
	const struct pss *pss = a;

	return feed_encode_error(pss->error_code, pss->error_message, buf, cap);
}

static bool has_pending(struct feed *f, const struct pss *pss)
{
	return pss->hello || pss->error_code || pss->n_replies ||
	       ring_pending(store_events(f->cfg.store), pss->cursor) ||
	       ring_pending(store_postures(f->cfg.store), pss->posture_cursor);
}

/*
 * A client behind by more than one event gets its backlog of whole frames in
 * one write of up to BATCH_MAX bytes (one lws_write per WRITEABLE would cap a
 * thousand clients far below what the loop can push). The frames are the
 * ring's bytes behind WebSocket headers made here (server frames: unmasked,
 * no extensions), copied into one buffer shared by all clients.
 */
#define BATCH_MAX 65536

static size_t put_frame(unsigned char *b, const unsigned char *p, size_t len)
{
	size_t h;

	b[0] = 0x81;   /* FIN, text */
	if (len < 126) {
		b[1] = (unsigned char)len;
		h = 2;
	} else {
		b[1] = 126;
		b[2] = (unsigned char)(len >> 8);
		b[3] = (unsigned char)len;
		h = 4;
	}
	memcpy(b + h, p, len);
	return h + len;
}

static int write_batch(struct feed *f, struct lws *wsi, struct pss *pss,
		       const unsigned char *data, size_t len)
{
	static unsigned char buf[LWS_PRE + BATCH_MAX];
	unsigned char *b = buf + LWS_PRE;
	size_t n = put_frame(b, data, len);
	struct ring_gap gap;
	const char *sensor;
	unsigned kind;
	uint64_t before;

	for (;;) {
		before = pss->cursor;
		if (ring_read(store_events(f->cfg.store), &pss->cursor, &data, &len, &gap) !=
		    RING_DATA || len > 0xffff || n + len + 4 > BATCH_MAX) {
			pss->cursor = before;   /* a gap, the end, or no room: next time */
			break;
		}
		store_event_tag(f->cfg.store, pss->cursor, &kind, &sensor);
		if (feed_filter_match(&pss->filter, kind, sensor))
			n += put_frame(b + n, data, len);
	}
	f->counts.batches++;
	return lws_write(wsi, b, n, LWS_WRITE_RAW) < (int)n ? -1 : 0;
}

/* Send the next frame this client is due. 0: sent or nothing; -1: close. */
static int send_next(struct feed *f, struct lws *wsi, struct pss *pss)
{
	const unsigned char *data;
	size_t len;
	struct ring_gap gap;
	const struct ring *postures = store_postures(f->cfg.store);
	const char *sensor;
	unsigned kind, skipped;

	if (pss->hello) {
		int r = write_text(wsi, pss->hello + LWS_PRE, pss->hello_len);

		free(pss->hello);
		pss->hello = NULL;
		return r;
	}
	if (pss->n_replies) {
		char *r = pss->replies[0];
		int n = write_text(wsi, (unsigned char *)r + LWS_PRE, strlen(r + LWS_PRE));

		free(r);
		memmove(pss->replies, pss->replies + 1, --pss->n_replies * sizeof(pss->replies[0]));
		if (pss->rx_paused && pss->n_replies < FEED_REPLY_PAUSE) {
			pss->rx_paused = false;
			lws_rx_flow_control(wsi, 1);
		}
		return n;
	}
	if (pss->error_code) {
		write_small(wsi, enc_error, pss);
		lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
				 (unsigned char *)pss->error_code, strlen(pss->error_code));
		return -1;
	}
	/* events this client's filter does not want are skipped, a bounded number per
	 * call (the caller asks to be called again while more is pending) */
	for (skipped = 0; skipped < SKIP_PER_CALL; skipped++) {
		switch (ring_read(store_events(f->cfg.store), &pss->cursor, &data, &len, &gap)) {
		case RING_GAP:
			f->counts.gaps_sent++;
			f->counts.events_skipped += gap.to - gap.from + 1;
			return write_small(wsi, enc_gap, &gap);
		case RING_DATA:
			store_event_tag(f->cfg.store, pss->cursor, &kind, &sensor);
			if (!feed_filter_match(&pss->filter, kind, sensor))
				continue;
			if (len <= BATCH_MAX - 4 && ring_pending(store_events(f->cfg.store), pss->cursor))
				return write_batch(f, wsi, pss, data, len);
			/* ring records keep RING_PRE >= LWS_PRE writable bytes before data */
			return write_text(wsi, (unsigned char *)data, len);
		case RING_EMPTY:
			skipped = SKIP_PER_CALL;
			break;
		}
	}
	/* live posture and status: only the newest matters, skipping is not a gap */
	for (skipped = 0; skipped < SKIP_PER_CALL; skipped++) {
		switch (ring_read(postures, &pss->posture_cursor, &data, &len, &gap)) {
		case RING_GAP:
			continue;
		case RING_DATA:
			store_live_tag(f->cfg.store, pss->posture_cursor, &kind, &sensor);
			if (!feed_filter_match(&pss->filter, kind, sensor))
				continue;
			return write_text(wsi, (unsigned char *)data, len);
		case RING_EMPTY:
			return 0;
		}
	}
	return 0;
}

/* ---- client commands -------------------------------------------------------- */

/* Queue a reply; false if the client lets too many pile up (it is closed). */
static bool queue_reply(struct pss *pss, const char *tag, bool ok, const char *what,
			const char *message)
{
	char buf[REPLY_MAX], *r;
	int n;

	if (pss->n_replies >= FEED_MAX_REPLIES)
		return false;
	n = feed_encode_reply(tag, ok, what, message, buf, sizeof(buf));
	if (n < 0)
		n = feed_encode_reply(NULL, false, "internal", "cannot encode the reply", buf,
				      sizeof(buf));
	if (n < 0 || !(r = malloc(LWS_PRE + (size_t)n + 1)))
		return false;
	memcpy(r + LWS_PRE, buf, (size_t)n);
	r[LWS_PRE + n] = '\0';
	pss->replies[pss->n_replies++] = r;
	return true;
}

/* The answer to a stats command: a reply carrying the stats object. */
static bool queue_stats(struct feed *f, struct pss *pss, const struct feed_command *cmd)
{
	json_t *st;
	char *json, *r;
	size_t n;

	if (pss->n_replies >= FEED_MAX_REPLIES)
		return false;
	st = f->cfg.stats ? f->cfg.stats(f->cfg.user, cmd->sensor[0] ? cmd->sensor : NULL) : NULL;
	if (!st)
		return queue_reply(pss, cmd->tag, false, "unavailable", "statistics are not available");
	json = feed_encode_stats_reply(cmd->tag, st, &n);
	json_decref(st);
	if (!json)
		return queue_reply(pss, cmd->tag, false, "internal", "cannot encode the statistics");
	r = malloc(LWS_PRE + n + 1);
	if (r) {
		memcpy(r + LWS_PRE, json, n + 1);
		pss->replies[pss->n_replies++] = r;
	}
	free(json);
	return r != NULL;
}

/* One whole client message: parse, run, queue the reply. false: close it. */
static bool client_message(struct feed *f, struct pss *pss, const char *msg, size_t len)
{
	struct feed_command cmd;
	const char *code = NULL, *message = NULL, *result = NULL;
	int64_t now = clock_mono_ms(), step = 1000 / FEED_COMMANDS_PER_S;

	f->counts.commands++;
	if (feed_parse_command(msg, len, &cmd, &code, &message) < 0) {
		log_rl(&f->rl_client, LOG_INFO, "feed: refused a client message (%s)", code);
		return queue_reply(pss, cmd.tag, false, code, message);
	}
	/* at most FEED_COMMANDS_PER_S, after a burst of FEED_COMMAND_BURST */
	if (pss->cmd_tat_ms < now)
		pss->cmd_tat_ms = now;
	if (pss->cmd_tat_ms - now >= step * FEED_COMMAND_BURST) {
		f->counts.rate_limited++;
		log_rl(&f->rl_client, LOG_INFO, "feed: refused a command: more than %d a second",
		       FEED_COMMANDS_PER_S);
		return queue_reply(pss, cmd.tag, false, "rate-limited",
				   "too many commands: at most 20 a second");
	}
	pss->cmd_tat_ms += step;
	if (cmd.type == FEED_CMD_STATS)
		return queue_stats(f, pss, &cmd);
	if (cmd.type == FEED_CMD_PING)
		return queue_reply(pss, cmd.tag, true, "pong", NULL);
	if (cmd.type == FEED_CMD_SUBSCRIBE) {
		pss->filter = cmd.filter;
		if (cmd.has_since)   /* ring_read() treats a cursor past the last seq as the last */
			pss->cursor = cmd.since;
		return queue_reply(pss, cmd.tag, true, "ok", NULL);
	}
	if (pss->role < ACCESS_CONTROL) {
		f->counts.forbidden++;
		return queue_reply(pss, cmd.tag, false, "forbidden",
				   "this connection may read the feed but not change anything");
	}
	if (!f->cfg.command)
		return queue_reply(pss, cmd.tag, false, "unavailable", "commands are not available");
	if (f->cfg.command(f->cfg.user, &cmd, &result, &code, &message))
		return queue_reply(pss, cmd.tag, true, result ? result : "ok", NULL);
	return queue_reply(pss, cmd.tag, false, code ? code : "internal",
			   message ? message : "the command could not be carried out");
}

static void unlink_client(struct feed *f, struct pss *pss)
{
	if (pss->prev)
		pss->prev->next = pss->next;
	else if (f->list == pss)
		f->list = pss->next;
	if (pss->next)
		pss->next->prev = pss->prev;
	pss->prev = pss->next = NULL;
}

/*
 * Clients' buffers are heap memory that the C library keeps once they are
 * freed (it returns only the top of the heap). When many clients have left -
 * FEED_TRIM_CLIENTS fewer than the most there were - the heap is trimmed
 * once, FEED_TRIM_DELAY_US later (a wave of closes is one trim): after 1000
 * clients, about 5 MiB go back to the system. Nothing runs while nobody leaves.
 */
#define FEED_TRIM_CLIENTS 64
#define FEED_TRIM_DELAY_US (2 * LWS_US_PER_SEC)

static void trim_fire(lws_sorted_usec_list_t *sul)
{
	struct feed *f = lws_container_of(sul, struct feed, trim_timer);

	f->trim_armed = false;
	f->peak = f->clients;
	malloc_trim(0);
}

static void arm_trim(struct feed *f)
{
	if (f->trim_armed || f->going_away || !f->ctx || f->peak < f->clients + FEED_TRIM_CLIENTS)
		return;
	f->trim_armed = true;
	lws_sul_schedule(f->ctx, 0, &f->trim_timer, trim_fire, FEED_TRIM_DELAY_US);
}

/* A client due a frame has write_timeout_s to take it, and as long again for
 * each one after; one with nothing due has no timer (no idle wake-ups). */
static void write_timed_out(lws_sorted_usec_list_t *sul)
{
	struct pss *pss = lws_container_of(sul, struct pss, write_timer);
	struct feed *f = pss->feed;

	pss->timer_armed = false;
	f->counts.timed_out++;
	log_rl(&f->rl_client, LOG_INFO, "feed: dropping a client that took nothing for %u s",
	       f->cfg.write_timeout_s);
	lws_set_timeout(pss->wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
}

/* (lws 4.1's own per-connection timer cannot be cancelled: it fires at once) */
static void arm_write_timeout(struct feed *f, struct pss *pss)
{
	lws_sul_schedule(f->ctx, 0, &pss->write_timer, write_timed_out,
			 (lws_usec_t)f->cfg.write_timeout_s * LWS_US_PER_SEC);
	pss->timer_armed = true;
}

static void disarm_write_timeout(struct pss *pss)
{
	if (pss->timer_armed)
		lws_sul_cancel(&pss->write_timer);
	pss->timer_armed = false;
}

static void free_client(struct pss *pss)
{
	free(pss->hello);
	pss->hello = NULL;
	free(pss->rx);
	pss->rx = NULL;
	while (pss->n_replies)
		free(pss->replies[--pss->n_replies]);
}

/* ---- the protocol callback ------------------------------------------------ */

static int feed_callback(struct lws *wsi, enum lws_callback_reasons reason,
			 void *user, void *in, size_t len)
{
	const struct lws_protocols *proto = lws_get_protocol(wsi);
	struct feed *f = proto ? proto->user : NULL;
	struct pss *pss = user;
	struct gate_verdict v;
	uint64_t since = 0;
	int r;

	if (!f)
		return lws_callback_http_dummy(wsi, reason, user, in, len);

	switch (reason) {
	case LWS_CALLBACK_HTTP_CONFIRM_UPGRADE:
		/* refused with an HTTP status and a JSON error the client can show */
		if (upgrade_verdict(f, wsi, &v) < 0)
			return gate_refuse(wsi, &v) < 0 ? -1 : 1;
		return 0;

	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		/* the same checks for upgrades that skip the above (HTTP/2) */
		return upgrade_verdict(f, wsi, &v) < 0 ? 1 : 0;

	case LWS_CALLBACK_ESTABLISHED:
		memset(pss, 0, sizeof(*pss));
		pss->wsi = wsi;
		pss->feed = f;
		if (f->cfg.gate) {
			gate_check(f->cfg.gate, wsi, true, ACCESS_READ, &v);
			pss->role = v.role;
			if (v.label)   /* who came in with which token: never the token itself */
				log_rl(&f->rl_client, LOG_INFO, "feed: a client with the token \"%s\" (%s)",
				       v.label, access_role_name(v.role));
		} else {
			pss->role = ACCESS_CONTROL;
		}
		pss->next = f->list;
		if (f->list)
			f->list->prev = pss;
		f->list = pss;
		pss->established = true;
		f->clients++;
		if (f->clients > f->peak)
			f->peak = f->clients;
		f->counts.clients_total++;
		build_hello(f, pss);
		if (!pss->hello)
			return -1;
		r = parse_since(wsi, &since);
		if (r < 0) {
			pss->error_code = "bad-since";
			pss->error_message = "since must be a decimal integer";
		} else if (parse_filter(wsi, &pss->filter, &pss->error_code,
					&pss->error_message) < 0) {
			/* the error goes out after hello, then the connection closes */
		} else {
			uint64_t last = ring_last_seq(store_events(f->cfg.store));

			pss->cursor = r > 0 && since < last ? since : last;
		}
		pss->posture_cursor = ring_last_seq(store_postures(f->cfg.store));
		lws_callback_on_writable(wsi);
		return 0;

	case LWS_CALLBACK_SERVER_WRITEABLE:
		if (f->going_away) {
			static const char why[] = "going away";

			lws_close_reason(wsi, LWS_CLOSE_STATUS_GOINGAWAY, (unsigned char *)why,
					 sizeof(why) - 1);
			return -1;
		}
		if (send_next(f, wsi, pss) < 0)
			return -1;
		if (has_pending(f, pss)) {
			lws_callback_on_writable(wsi);
			arm_write_timeout(f, pss);   /* it took a frame: a new term */
		} else if (lws_partial_buffered(wsi)) {
			arm_write_timeout(f, pss);   /* the frame is not out yet */
		} else {
			disarm_write_timeout(pss);
		}
		return 0;

	case LWS_CALLBACK_RECEIVE:
		/* commands: one JSON object per message, at most FEED_MAX_CLIENT_MESSAGE bytes */
		/* a binary or oversized message is refused with a reply once it is over
		 * (its bytes are dropped as they come); the connection stays */
		if (!pss->rx_refused && (lws_frame_is_binary(wsi) ||
					 pss->rx_len + len > FEED_MAX_CLIENT_MESSAGE)) {
			log_rl(&f->rl_client, LOG_INFO, "feed: refused a client message (%s)",
			       lws_frame_is_binary(wsi) ? "binary" : "too large");
			pss->rx_refused = true;
			pss->rx_binary = lws_frame_is_binary(wsi);
		}
		if (!pss->rx_refused) {
			if (!pss->rx && !(pss->rx = malloc(FEED_MAX_CLIENT_MESSAGE)))
				return -1;
			memcpy(pss->rx + pss->rx_len, in, len);
			pss->rx_len += len;
		}
		if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi))
			return 0;
		if (pss->rx_refused) {
			f->counts.commands++;
			r = pss->rx_binary ?
			    queue_reply(pss, NULL, false, "bad-command", "messages are JSON text, not "
					"binary") :
			    queue_reply(pss, NULL, false, "too-large", "a message is at most 4096 bytes");
			pss->rx_refused = false;
		} else {
			r = client_message(f, pss, pss->rx, pss->rx_len);
		}
		pss->rx_len = 0;
		if (r && pss->n_replies >= FEED_REPLY_PAUSE && !pss->rx_paused) {
			/* a client sending commands faster than it takes the replies waits:
			 * lws holds what it already read, and reads no more meanwhile */
			pss->rx_paused = true;
			lws_rx_flow_control(wsi, 0);
		}
		if (!r) {
			log_rl(&f->rl_client, LOG_INFO, "feed: closing a client that does not read "
			       "its replies");
			lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION, NULL, 0);
			return -1;
		}
		lws_callback_on_writable(wsi);
		return 0;

	case LWS_CALLBACK_CLOSED:
		if (pss->established) {
			f->clients--;
			pss->established = false;
			unlink_client(f, pss);
			disarm_write_timeout(pss);
			arm_trim(f);
		}
		free_client(pss);
		if (f->going_away && !f->clients && f->gone) {
			void (*gone)(void *user) = f->gone;

			f->gone = NULL;
			gone(f->gone_user);
		}
		return 0;

	default:
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	}
}

/* ---- public ------------------------------------------------------------- */

static void on_store(void *user)
{
	struct feed *f = user;
	struct pss *p;

	if (!f->ctx)
		return;
	for (p = f->list; p; p = p->next) {
		lws_callback_on_writable(p->wsi);
		if (!p->timer_armed)
			arm_write_timeout(f, p);
	}
}

struct feed *feed_new(const struct feed_config *cfg)
{
	struct feed *f = calloc(1, sizeof(*f));

	if (!f)
		return NULL;
	f->cfg = *cfg;
	if (!f->cfg.max_clients)
		f->cfg.max_clients = FEED_DEFAULT_MAX_CLIENTS;
	if (!f->cfg.write_timeout_s)
		f->cfg.write_timeout_s = FEED_DEFAULT_WRITE_TIMEOUT_S;
	f->proto.name = FEED_SUBPROTOCOL;
	f->proto.callback = feed_callback;
	f->proto.per_session_data_size = sizeof(struct pss);
	f->proto.rx_buffer_size = FEED_MAX_CLIENT_MESSAGE;
	f->proto.user = f;
	store_set_listener(cfg->store, on_store, f);
	return f;
}

void feed_free(struct feed *f)
{
	if (!f)
		return;
	store_set_listener(f->cfg.store, NULL, NULL);
	free(f);
}

struct lws_protocols feed_protocol(struct feed *f)
{
	return f->proto;
}

void feed_going_away(struct feed *f, void (*gone)(void *user), void *user)
{
	struct pss *p;

	f->going_away = true;
	if (f->trim_armed) {
		lws_sul_cancel(&f->trim_timer);
		f->trim_armed = false;
	}
	if (!f->clients || !f->ctx) {
		if (gone)
			gone(user);
		return;
	}
	f->gone = gone;
	f->gone_user = user;
	for (p = f->list; p; p = p->next)
		lws_callback_on_writable(p->wsi);
}

void feed_attach(struct feed *f, struct lws_context *ctx)
{
	f->ctx = ctx;
}

unsigned feed_clients(const struct feed *f)
{
	return f->clients;
}

void feed_counts(const struct feed *f, struct feed_counts *out)
{
	*out = f->counts;
}
