/*
 * daemon/cli/tail.c - `spinewatch tail`: one client-only libwebsockets context that follows the
 * feed, connection after connection. See tail.h.
 *
 * The cursor is the last event seq printed or passed over (a gap): every connection after the
 * first asks for ?since=<cursor>, and an event at or below it is never printed again. The first
 * connection failing is fatal (exit 3: the daemon is down); once a hello arrived, a lost
 * connection (a close 1001 "going away" when the daemon stops, a reset, no pong to our pings)
 * is tried again with exponential backoff until it works or we are interrupted. A hello whose
 * `stream` differs from the one before means the daemon restarted after a crash and numbers
 * anew from what it kept: we say so and go on after min(cursor, its last_seq), printing what
 * that new stream sends from there (no replay from 0, which would print again what was kept
 * and printed before the crash).
 *
 * Without follow, the connection asks for no filter (the server skips filtered events without a
 * word, so the end of its replay could not be seen): we filter here and stop at the hello's
 * last_seq. Memory: one message at a time, at most FEED_CLIENT_MAX_MESSAGE; output is written
 * and flushed line by line (a slow reader slows us, and the daemon sends us a gap).
 */
#include "tail.h"

#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <libwebsockets.h>

#define SUBPROTOCOL "spinewatch.v1"
#define BACKOFF_MIN_MS 500       /* the first retry after a lost connection */
#define BACKOFF_MAX_MS 10000     /* doubling up to this, give or take a quarter */
#define PING_AFTER_S 30          /* a connection quiet this long gets a WebSocket ping */
#define HANGUP_AFTER_S 60        /* and is dropped if nothing confirmed it for this long */

static const char *const kind_name[] = {
	"crack", "slouch", "sensor", "alert", "calibration", "annotation", "posture", "status",
};

const char tail_kind_names[] =
	"crack, slouch, sensor, alert, calibration, annotation, posture, status";

unsigned tail_kind_bit(const char *name)
{
	for (size_t i = 0; i < sizeof(kind_name) / sizeof(kind_name[0]); i++)
		if (!strcmp(name, kind_name[i]))
			return 1u << i;
	return 0;
}

enum phase {
	PH_WAITING,      /* the connection was lost: waiting to try again */
	PH_CONNECTING,   /* TCP and the WebSocket handshake */
	PH_HELLO,        /* connected, the hello not yet received */
	PH_LIVE,         /* printing what comes */
};

struct tail {
	const struct tail_options *o;
	struct lws_context *ctx;
	struct lws *wsi;              /* the current connection (NULL while it is being made) */
	lws_sorted_usec_list_t timer; /* the hello's deadline (without follow: the run's), or
				       * the next attempt */
	enum phase phase;
	bool attempt;                 /* a connection is being made or open */
	bool tcp_up;                  /* the handshake went out */
	bool done;
	enum tail_status status;
	bool ever_live;               /* a hello arrived once */
	bool reconnecting;            /* the connection was lost and we said so */
	unsigned retries;             /* attempts since it was lost */
	bool have_since;              /* the since sent on this connection */
	uint64_t since;
	uint64_t cursor;              /* the last seq printed or passed over */
	uint64_t target;              /* without follow: the hello's last_seq */
	char stream[80];              /* the hello's stream; "" before the first */
	uint64_t printed;             /* lines that count for --count */
	unsigned close_code;          /* the server's close status, 0 if none */
	char close_reason[64];
	char path[1600];
	struct feed_rx rx;            /* a message being reassembled */
};

/* ---- stopping ----------------------------------------------------------------- */

static volatile sig_atomic_t interrupted;
static struct lws_context *volatile signal_ctx;

static void on_signal(int sig)
{
	struct lws_context *ctx = signal_ctx;

	(void)sig;
	interrupted = 1;
	if (ctx)
		lws_cancel_service(ctx);   /* wakes lws_service(): a write to its pipe */
}

static void finish(struct tail *t, enum tail_status status)
{
	if (t->done)
		return;
	t->done = true;
	t->status = status;
	lws_cancel_service(t->ctx);
}

static void fatal(struct tail *t, enum tail_status status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void fatal(struct tail *t, enum tail_status status, const char *fmt, ...)
{
	va_list ap;

	if (t->done)
		return;   /* the first problem is the one to report */
	fputs("spinewatch: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	finish(t, status);
}

static void notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static void notice(const char *fmt, ...)
{
	va_list ap;

	fputs("spinewatch: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* ---- output --------------------------------------------------------------------- */

/* One line of output: the message as the daemon sent it (compact JSON), or re-encoded if it
 * came with line breaks. `counts`: it counts for --count. */
static void emit(struct tail *t, const char *text, size_t len, const json_t *m, bool counts)
{
	char *dumped = NULL;

	if (t->done)
		return;
	if (memchr(text, '\n', len) || memchr(text, '\r', len)) {
		dumped = json_dumps(m, JSON_COMPACT | JSON_REAL_PRECISION(17));
		if (!dumped) {
			fatal(t, TAIL_REFUSED, "out of memory");
			return;
		}
		text = dumped;
		len = strlen(dumped);
	}
	errno = 0;
	if (fwrite(text, 1, len, stdout) != len || putchar('\n') == EOF || fflush(stdout)) {
		if (errno == EPIPE || interrupted)
			finish(t, TAIL_DONE);   /* the reader has what it wanted (| head), or we
						 * were interrupted while it did not read */
		else
			fatal(t, TAIL_REFUSED, "cannot write the output: %s",
			      errno ? strerror(errno) : "write error");
	} else if (counts && t->o->count && ++t->printed >= t->o->count) {
		finish(t, TAIL_DONE);
	}
	free(dumped);
}

/* The filters, applied here too: without follow the connection has none. */
static bool wanted(const struct tail *t, unsigned bit, const json_t *m)
{
	const char *sensor = json_string_value(json_object_get(m, "sensor"));

	if (t->o->kinds ? !(t->o->kinds & bit) : (bit & (TAIL_POSTURE | TAIL_STATUS)) != 0)
		return false;
	if (!t->o->n_sensors || !sensor || !*sensor)
		return true;   /* messages about no sensor in particular always come */
	for (unsigned i = 0; i < t->o->n_sensors; i++)
		if (!strcasecmp(t->o->sensors[i], sensor))
			return true;
	return false;
}

/* ---- messages ------------------------------------------------------------------ */

static bool get_seq(const json_t *m, const char *key, uint64_t *out)
{
	const json_t *v = json_object_get(m, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return false;
	*out = (uint64_t)json_integer_value(v);
	return true;
}

static void end_of_ring(struct tail *t)
{
	if (!t->o->follow && t->cursor >= t->target)
		finish(t, TAIL_DONE);
}

static void on_hello(struct tail *t, const json_t *m)
{
	const char *url = t->o->url_text;
	const char *stream = json_string_value(json_object_get(m, "stream"));
	uint64_t last, from;

	if (!get_seq(m, "last_seq", &last)) {
		fatal(t, TAIL_UNREACHABLE, "%s sent a hello without its last_seq", url);
		return;
	}
	if (!stream)
		stream = "";
	/* the server starts after since, or after its last seq when since is above it or absent */
	from = t->have_since && t->since < last ? t->since : last;
	if (t->stream[0] && strcmp(stream, t->stream)) {
		notice("%s numbers its events anew (stream %.40s, was %.40s): it restarted without "
		       "stopping cleanly, so events from around its restart may be missing; going "
		       "on after seq %llu", url, stream, t->stream, (unsigned long long)from);
	} else if (t->reconnecting) {
		notice("reconnected to %s; going on after seq %llu", url, (unsigned long long)from);
	}
	snprintf(t->stream, sizeof(t->stream), "%s", stream);
	t->cursor = from;
	t->ever_live = true;
	t->reconnecting = false;
	t->retries = 0;
	t->phase = PH_LIVE;
	if (t->o->follow) {
		lws_sul_cancel(&t->timer);   /* following has no end */
	} else {
		t->target = last;
		end_of_ring(t);
	}
}

static void on_event(struct tail *t, const char *text, size_t len, const json_t *m)
{
	const char *kind = json_string_value(json_object_get(m, "kind"));
	uint64_t seq;

	if (!get_seq(m, "seq", &seq) || !seq) {
		fatal(t, TAIL_UNREACHABLE, "%s sent an event without a valid seq", t->o->url_text);
		return;
	}
	if (seq <= t->cursor)
		return;   /* printed already */
	t->cursor = seq;
	if (wanted(t, kind ? tail_kind_bit(kind) : 0, m))
		emit(t, text, len, m, true);
	end_of_ring(t);
}

static void on_gap(struct tail *t, const char *text, size_t len, const json_t *m)
{
	uint64_t from, to;

	if (!get_seq(m, "from", &from) || !get_seq(m, "to", &to) || from > to) {
		fatal(t, TAIL_UNREACHABLE, "%s sent a gap without a valid from and to",
		      t->o->url_text);
		return;
	}
	if (to <= t->cursor)
		return;   /* about events we printed or heard of already */
	t->cursor = to;
	if (t->o->gaps_on_stdout)
		emit(t, text, len, m, false);
	else if (from == to)
		notice("gap: event %llu is no longer kept by the daemon and will not be printed",
		       (unsigned long long)from);
	else
		notice("gap: events %llu to %llu are no longer kept by the daemon and will not be "
		       "printed", (unsigned long long)from, (unsigned long long)to);
	end_of_ring(t);
}

/* One whole server message. 0: go on; -1: close the connection. */
static int on_message(struct tail *t, const char *text, size_t len)
{
	const char *url = t->o->url_text, *type;
	json_error_t jerr;
	json_t *m = json_loadb(text, len, 0, &jerr);

	if (!m || !json_is_object(m)) {
		fatal(t, TAIL_UNREACHABLE, "%s sent a message that is not a JSON object (%s)", url,
		      m ? "another JSON value" : jerr.text);
		json_decref(m);
		return -1;
	}
	type = json_string_value(json_object_get(m, "type"));
	if (!type) {
		fatal(t, TAIL_UNREACHABLE, "%s sent a message without a string \"type\"", url);
	} else if (!strcmp(type, "error")) {
		/* the daemon refuses what we asked for, then closes */
		const char *code = json_string_value(json_object_get(m, "code"));
		const char *why = json_string_value(json_object_get(m, "message"));

		fatal(t, TAIL_REFUSED, "%s: %s", code ? code : "error",
		      why ? why : "the daemon refused the connection");
	} else if (t->phase == PH_HELLO) {
		if (strcmp(type, "hello"))
			fatal(t, TAIL_UNREACHABLE, "%s did not start with a hello (its first message "
			      "is a \"%.40s\"); is it spinewatchd?", url, type);
		else
			on_hello(t, m);
	} else if (!strcmp(type, "event")) {
		on_event(t, text, len, m);
	} else if (!strcmp(type, "gap")) {
		on_gap(t, text, len, m);
	} else if (!strcmp(type, "posture") || !strcmp(type, "status")) {
		/* live messages: not sequenced, not replayed */
		if (t->o->follow && wanted(t, tail_kind_bit(type), m))
			emit(t, text, len, m, true);
	}
	/* anything else (a reply, a type added later) is not for us */
	json_decref(m);
	return t->done ? -1 : 0;
}

static int receive(struct tail *t, struct lws *wsi, const void *in, size_t len)
{
	const char *why;
	int r = feed_rx_add(&t->rx, wsi, in, len, &why);

	if (r < 0) {
		fatal(t, TAIL_UNREACHABLE, "%s %s", t->o->url_text, why);
		return -1;
	}
	if (r == 0)
		return 0;
	r = on_message(t, t->rx.buf, t->rx.len);
	feed_rx_done(&t->rx);
	return r;
}

/* ---- connections ------------------------------------------------------------- */

static const lws_retry_bo_t idle_policy = {
	.secs_since_valid_ping = PING_AFTER_S,
	.secs_since_valid_hangup = HANGUP_AFTER_S,
};

static void on_timer(lws_sorted_usec_list_t *sul);

static int backoff_ms(unsigned retries)
{
	long ms = BACKOFF_MIN_MS;

	while (retries-- && ms < BACKOFF_MAX_MS)
		ms *= 2;
	if (ms > BACKOFF_MAX_MS)
		ms = BACKOFF_MAX_MS;
	return (int)(ms * (75 + rand() % 51) / 100);   /* 75 % to 125 %: no lockstep */
}

/* The connection (or the attempt to make one) ended, for `why`. */
static void ended(struct tail *t, const char *why)
{
	const char *url = t->o->url_text;

	if (!t->attempt)
		return;
	t->attempt = false;
	t->wsi = NULL;
	feed_rx_done(&t->rx);
	lws_sul_cancel(&t->timer);
	if (t->done)
		return;
	if (!t->ever_live) {
		fatal(t, TAIL_UNREACHABLE, "%s", why);
		return;
	}
	if (!t->o->follow) {
		fatal(t, TAIL_UNREACHABLE, "%s before sending all it holds", why);
		return;
	}
	if (!t->reconnecting) {
		notice("%s; reconnecting to %s to go on after seq %llu", why, url,
		       (unsigned long long)t->cursor);
		t->reconnecting = true;
		t->retries = 0;
	}
	t->phase = PH_WAITING;
	lws_sul_schedule(t->ctx, 0, &t->timer, on_timer,
			 (lws_usec_t)backoff_ms(t->retries++) * LWS_US_PER_MS);
}

static void connect_now(struct tail *t)
{
	const struct feed_url *u = t->o->url;
	struct lws_client_connect_info ci;
	char kinds[128] = "", sensors[TAIL_MAX_SENSORS * 18 + 1] = "";
	struct lws *wsi;
	size_t n;

	/* the query: since (first as asked, then the cursor) and, when following, the filters */
	t->have_since = t->ever_live || t->o->has_since;
	t->since = t->ever_live ? t->cursor : t->o->since;
	if (t->o->follow) {
		for (size_t i = 0; i < sizeof(kind_name) / sizeof(kind_name[0]); i++) {
			if (!(t->o->kinds & (1u << i)))
				continue;
			n = strlen(kinds);
			snprintf(kinds + n, sizeof(kinds) - n, "%s%s", n ? "," : "", kind_name[i]);
		}
		for (unsigned i = 0; i < t->o->n_sensors; i++) {
			n = strlen(sensors);
			snprintf(sensors + n, sizeof(sensors) - n, "%s%s", n ? "," : "",
				 t->o->sensors[i]);
		}
	}
	snprintf(t->path, sizeof(t->path), "%s", u->path);
	if (t->have_since) {
		n = strlen(t->path);
		snprintf(t->path + n, sizeof(t->path) - n, "?since=%llu",
			 (unsigned long long)t->since);
	}
	if (kinds[0]) {
		n = strlen(t->path);
		snprintf(t->path + n, sizeof(t->path) - n, "%ckinds=%s",
			 strchr(t->path, '?') ? '&' : '?', kinds);
	}
	if (sensors[0]) {
		n = strlen(t->path);
		snprintf(t->path + n, sizeof(t->path) - n, "%csensors=%s",
			 strchr(t->path, '?') ? '&' : '?', sensors);
	}

	t->phase = PH_CONNECTING;
	t->attempt = true;
	t->tcp_up = false;
	t->close_code = 0;
	t->close_reason[0] = '\0';
	t->wsi = NULL;
	lws_sul_schedule(t->ctx, 0, &t->timer, on_timer,
			 (lws_usec_t)t->o->timeout_ms * LWS_US_PER_MS);

	feed_url_connect_info(u, t->ctx, t->path, &ci);
	ci.retry_and_idle_policy = &idle_policy;
	wsi = lws_client_connect_via_info(&ci);
	/* it may have failed already, in a callback from inside the call */
	if (!t->attempt)
		return;
	if (!wsi) {
		char why[400];

		snprintf(why, sizeof(why), "cannot connect to %s (is spinewatchd running?)",
			 t->o->url_text);
		ended(t, why);
		return;
	}
	t->wsi = wsi;
}

static void on_timer(lws_sorted_usec_list_t *sul)
{
	struct tail *t = lws_container_of(sul, struct tail, timer);
	const char *url = t->o->url_text;
	double s = t->o->timeout_ms / 1000.0;
	struct lws *wsi = t->wsi;
	char why[400];

	switch (t->phase) {
	case PH_WAITING:
		connect_now(t);
		return;
	case PH_CONNECTING:
		if (t->tcp_up)
			snprintf(why, sizeof(why), "%s accepted the connection but did not answer "
				 "within %g s (is it spinewatchd?)", url, s);
		else
			snprintf(why, sizeof(why), "cannot connect to %s: no answer within %g s", url,
				 s);
		break;
	case PH_HELLO:
		snprintf(why, sizeof(why), "%s sent no hello within %g s (is it spinewatchd?)", url,
			 s);
		break;
	case PH_LIVE:
	default:
		/* only without follow: the run's deadline */
		fatal(t, TAIL_UNREACHABLE, "%s did not send the events it holds within %g s", url,
		      s);
		return;
	}
	ended(t, why);
	if (wsi && !t->done)
		lws_set_timeout(wsi, PENDING_TIMEOUT_CLOSE_SEND, LWS_TO_KILL_ASYNC);
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct tail *t = lws_context_user(lws_get_context(wsi));
	const char *url;
	char why[400];
	bool ours;

	if (!t)
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	url = t->o->url_text;
	/* a connection given up on (the hello's deadline) is closed soon: ignore it till then */
	ours = t->attempt && (!t->wsi || t->wsi == wsi);

	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		if (ours)
			t->tcp_up = true;
		return feed_url_add_headers(t->o->url, wsi, in, len);

	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
		if (!ours)
			return 0;
		feed_url_describe_failure(t->o->url, url, wsi, in, t->tcp_up, why, sizeof(why));
		ended(t, why);
		return 0;

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (!ours)
			return -1;
		t->wsi = wsi;
		t->phase = PH_HELLO;
		return 0;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (!ours || t->done)
			return -1;
		return receive(t, wsi, in, len);

	case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
		if (ours && in && len >= 2) {
			const unsigned char *p = in;
			size_t n = len - 2 < sizeof(t->close_reason) - 1 ? len - 2
					: sizeof(t->close_reason) - 1;

			t->close_code = (unsigned)p[0] << 8 | p[1];
			for (size_t i = 0; i < n; i++)   /* for people: printable ASCII only */
				t->close_reason[i] = p[2 + i] >= ' ' && p[2 + i] < 0x7f
						     ? (char)p[2 + i] : '?';
			t->close_reason[n] = '\0';
		}
		return 0;

	case LWS_CALLBACK_CLIENT_CLOSED:
		if (!ours)
			return 0;
		if (t->phase != PH_LIVE)
			snprintf(why, sizeof(why), "%s closed the connection before its hello", url);
		else if (t->close_code)
			snprintf(why, sizeof(why), "%s closed the connection (%u%s%s)", url,
				 t->close_code, t->close_reason[0] ? " " : "", t->close_reason);
		else
			snprintf(why, sizeof(why), "lost the connection to %s", url);
		ended(t, why);
		return 0;

	default:
		break;
	}
	return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static const struct lws_protocols protocols[] = {
	{ .name = SUBPROTOCOL, .callback = callback, .rx_buffer_size = 65536 },
	{ .name = NULL }
};

enum tail_status tail_run(const struct tail_options *o)
{
	struct sigaction sa, old_int, old_term;
	struct tail t;

	memset(&t, 0, sizeof(t));
	t.o = o;
	srand((unsigned)time(NULL) ^ (unsigned)getpid());

	lws_set_log_level(0, NULL);
	t.ctx = feed_url_context(t.o->url, protocols, &t);
	if (!t.ctx) {
		fputs("spinewatch: cannot set up a WebSocket client\n", stderr);
		return TAIL_UNREACHABLE;
	}

	/* interrupted (Ctrl-C, kill): stop cleanly; a reader gone away: EPIPE, not a signal */
	signal(SIGPIPE, SIG_IGN);
	signal_ctx = t.ctx;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, &old_int);
	sigaction(SIGTERM, &sa, &old_term);

	connect_now(&t);
	/* lws_service() sleeps until something happens, a timer is due or a signal wakes it */
	while (!t.done && !interrupted) {
		if (lws_service(t.ctx, 0) < 0 && !interrupted)
			fatal(&t, TAIL_UNREACHABLE, "lost the connection to %s", o->url_text);
	}

	signal_ctx = NULL;
	sigaction(SIGINT, &old_int, NULL);
	sigaction(SIGTERM, &old_term, NULL);
	if (!t.done) {   /* interrupted: done, and the close in lws_context_destroy() is ours */
		t.done = true;
		t.status = TAIL_DONE;
	}
	lws_sul_cancel(&t.timer);
	lws_context_destroy(t.ctx);
	free(t.rx.buf);
	fflush(stdout);
	return t.status;
}
