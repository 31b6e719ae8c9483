/*
 * daemon/cli/feed_client.c - the command-line client's connection to spinewatchd's feed: the
 * ws:// URL parser and one request on a client-only libwebsockets context (connect, hello,
 * command, reply by id, optionally a following message; or the hello alone), bounded in time
 * by one lws timer and in memory by FEED_CLIENT_MAX_MESSAGE. See feed_client.h. Following the
 * feed (spinewatch tail) is tail.c's.
 */
#include "feed_client.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <libwebsockets.h>

#define SUBPROTOCOL "spinewatch.v1"
#define RX_INITIAL (64u << 10)

/* ---- the URL ---------------------------------------------------------------- */

int feed_url_parse(const char *url, struct feed_url *out, char *why, size_t why_len)
{
	const char *p, *auth, *auth_end, *host, *host_end, *port = NULL;
	size_t n;

	memset(out, 0, sizeof(*out));
	for (p = url; *p; p++) {
		if ((unsigned char)*p <= ' ' || *p == 0x7f) {
			snprintf(why, why_len, "the URL has a blank or a control character");
			return -1;
		}
	}
	if (!strncasecmp(url, "wss://", 6)) {
		out->tls = true;
		auth = url + 6;
	} else if (!strncasecmp(url, "ws://", 5)) {
		auth = url + 5;
	} else {
		snprintf(why, why_len, "the URL must start with ws:// or wss://");
		return -1;
	}
	auth_end = auth + strcspn(auth, "/?#");
	if (*auth_end == '#' || strchr(auth_end, '#')) {
		snprintf(why, why_len, "a WebSocket URL has no #fragment");
		return -1;
	}
	if (memchr(auth, '@', (size_t)(auth_end - auth))) {
		snprintf(why, why_len, "user names in the URL are not supported");
		return -1;
	}
	if (*auth == '[') {
		host = auth + 1;
		host_end = memchr(host, ']', (size_t)(auth_end - host));
		if (!host_end) {
			snprintf(why, why_len, "an IPv6 address in the URL lacks its ']'");
			return -1;
		}
		p = host_end + 1;
		if (p < auth_end && *p != ':') {
			snprintf(why, why_len, "unexpected text after ']' in the URL");
			return -1;
		}
	} else {
		host = auth;
		host_end = memchr(auth, ':', (size_t)(auth_end - auth));
		if (!host_end)
			host_end = auth_end;
		p = host_end;
	}
	if (p < auth_end && *p == ':')
		port = p + 1;
	n = (size_t)(host_end - host);
	if (!n || n >= sizeof(out->address)) {
		snprintf(why, why_len, n ? "the host name in the URL is too long"
					 : "the URL names no host");
		return -1;
	}
	memcpy(out->address, host, n);
	out->port = out->tls ? 443 : 80;
	if (port) {
		long v = 0;

		if (port == auth_end) {
			snprintf(why, why_len, "the URL has an empty port");
			return -1;
		}
		for (p = port; p < auth_end; p++) {
			if (!isdigit((unsigned char)*p) || (v = v * 10 + (*p - '0')) > 65535) {
				snprintf(why, why_len, "the port in the URL is not a number from 1 to 65535");
				return -1;
			}
		}
		if (v < 1) {
			snprintf(why, why_len, "the port in the URL is not a number from 1 to 65535");
			return -1;
		}
		out->port = (int)v;
	}
	n = (size_t)(auth_end - auth);
	if (n >= sizeof(out->host_header)) {
		snprintf(why, why_len, "the host name in the URL is too long");
		return -1;
	}
	memcpy(out->host_header, auth, n);
	n = strlen(auth_end);
	if (n + 2 > sizeof(out->path)) {
		snprintf(why, why_len, "the path in the URL is too long");
		return -1;
	}
	snprintf(out->path, sizeof(out->path), "%s%s", *auth_end == '/' ? "" : "/", auth_end);
	return 0;
}

int feed_url_add_headers(const struct feed_url *u, struct lws *wsi, void *in, size_t len)
{
	unsigned char **p = in, *end;
	char v[160];
	int n;

	if (!u->token)
		return 0;
	end = *p + len;
	n = snprintf(v, sizeof(v), "Bearer %s", u->token);
	if (n < 0 || (size_t)n >= sizeof(v))
		return -1;
	return lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_AUTHORIZATION,
					    (unsigned char *)v, n, p, end) ? -1 : 0;
}

void feed_url_describe_failure(const struct feed_url *u, const char *url_text, struct lws *wsi,
			       const char *in, bool tcp_up, char *why, size_t why_len)
{
	unsigned int status = wsi ? lws_http_client_http_response(wsi) : 0;

	if (!tcp_up && u->tls && in && strstr(in, "SSL"))
		snprintf(why, why_len, "cannot connect to %s: the TLS handshake failed (%s); is its "
			 "certificate trusted here (--cacert FILE)?", url_text, in);
	else if (!tcp_up)
		snprintf(why, why_len, "cannot connect to %s: %s (is spinewatchd running?)",
			 url_text, in ? in : "connection failed");
	else if (status == 401)
		snprintf(why, why_len, "%s refused: %s (401); give a token with --token-file or "
			 "$SPINEWATCH_TOKEN", url_text,
			 u->token ? "the token is not one it knows" : "it wants a token");
	else if (status == 403)
		snprintf(why, why_len, "%s refused the connection (403: this origin or token may "
			 "not use the feed)", url_text);
	else if (status == 421)
		snprintf(why, why_len, "%s refused the host name it was reached by (421); add it to "
			 "[access] hosts in its settings", url_text);
	else if (status == 503)
		snprintf(why, why_len, "%s is not taking clients now (503: too many connected, or "
			 "stopping); try again later", url_text);
	else if (status)
		snprintf(why, why_len, "%s did not accept a WebSocket connection (HTTP %u); is it "
			 "spinewatchd's feed?", url_text, status);
	else
		snprintf(why, why_len, "%s did not accept a WebSocket connection (%s); is it "
			 "spinewatchd's feed?", url_text, in ? in : "handshake failed");
}

struct lws_context *feed_url_context(const struct feed_url *u,
				     const struct lws_protocols *protocols, void *user)
{
	struct lws_context_creation_info info;

	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.protocols = protocols;
	info.user = user;
	info.gid = -1;
	info.uid = -1;
	if (u->tls) {
		info.options |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
		info.client_ssl_ca_filepath = u->ca_file;
	}
	return lws_create_context(&info);
}

void feed_url_connect_info(const struct feed_url *u, struct lws_context *ctx, const char *path,
			   struct lws_client_connect_info *ci)
{
	memset(ci, 0, sizeof(*ci));
	ci->context = ctx;
	ci->address = u->address;
	ci->port = u->port;
	ci->path = path ? path : u->path;
	ci->host = u->host_header;
	ci->protocol = SUBPROTOCOL;
	ci->local_protocol_name = SUBPROTOCOL;
	if (u->tls)
		ci->ssl_connection = LCCSCF_USE_SSL;
}

/* ---- one request ------------------------------------------------------------ */

enum phase {
	PH_CONNECTING,   /* TCP and the WebSocket handshake */
	PH_HELLO,        /* connected, the hello not yet received */
	PH_SEND,         /* the command is waiting for the socket to be writable */
	PH_REPLY,        /* the command was sent */
	PH_FOLLOW,       /* the reply arrived, waiting for what follow() accepts */
};

struct client {
	const struct feed_request *req;
	struct feed_result *res;
	struct lws_context *ctx;
	lws_sorted_usec_list_t deadline;
	enum phase phase;
	bool tcp_up;          /* connected: the handshake went out */
	bool done;
	json_t *id;
	unsigned char *out;   /* LWS_PRE bytes, then the command */
	size_t out_len;
	struct feed_rx rx;    /* a message being reassembled */
};

/* The loop in feed_run() stops. lws runs due timers (our deadline) at the start of
 * lws_service() and then waits for the next event: wake it, so it returns at once. */
static void finish(struct client *c)
{
	c->done = true;
	if (c->ctx)
		lws_cancel_service(c->ctx);
}

static void fail(struct client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void fail(struct client *c, const char *fmt, ...)
{
	va_list ap;

	if (c->done)
		return;   /* the first problem is the one to report */
	va_start(ap, fmt);
	vsnprintf(c->res->error, sizeof(c->res->error), fmt, ap);
	va_end(ap);
	finish(c);
}

static double seconds(int ms)
{
	return ms / 1000.0;
}

static void on_deadline(lws_sorted_usec_list_t *sul)
{
	struct client *c = lws_container_of(sul, struct client, deadline);
	const char *url = c->req->url_text;
	double s = seconds(c->req->timeout_ms);

	switch (c->phase) {
	case PH_CONNECTING:
		if (c->tcp_up)
			fail(c, "%s accepted the connection but did not answer within %g s "
			     "(is it spinewatchd?)", url, s);
		else
			fail(c, "cannot connect to %s: no answer within %g s", url, s);
		break;
	case PH_HELLO:
		fail(c, "%s sent no hello within %g s (is it spinewatchd?)", url, s);
		break;
	case PH_SEND:
	case PH_REPLY:
		fail(c, "no reply from %s within %g s", url, s);
		break;
	case PH_FOLLOW:
		fail(c, "no %s from %s within %g s", c->req->follow_what ? c->req->follow_what
				: "answer", url, s);
		break;
	}
}

/* One whole server message. 0: go on; -1: close the connection (done or failed). */
static int message(struct client *c, struct lws *wsi, const char *text, size_t len)
{
	const char *url = c->req->url_text, *type;
	json_error_t jerr;
	json_t *m = json_loadb(text, len, 0, &jerr);
	int r = 0;

	if (!m || !json_is_object(m)) {
		fail(c, "%s sent a message that is not a JSON object (%s)", url,
		     m ? "another JSON value" : jerr.text);
		json_decref(m);
		return -1;
	}
	type = json_string_value(json_object_get(m, "type"));
	if (!type) {
		fail(c, "%s sent a message without a string \"type\"", url);
		r = -1;
	} else if (!strcmp(type, "error")) {
		/* sent before the server closes a connection it cannot serve */
		const char *code = json_string_value(json_object_get(m, "code"));
		const char *why = json_string_value(json_object_get(m, "message"));

		fail(c, "%s closed the connection: %s: %s", url, code ? code : "error",
		     why ? why : "(no message)");
		r = -1;
	} else if (c->phase == PH_HELLO) {
		if (strcmp(type, "hello")) {
			fail(c, "%s did not start with a hello (its first message is a \"%.40s\"); "
			     "is it spinewatchd?", url, type);
			r = -1;
		} else if (!c->req->command) {
			c->res->hello = json_incref(m);
			finish(c);
			r = -1;
		} else {
			c->res->hello = json_incref(m);
			c->phase = PH_SEND;
			lws_callback_on_writable(wsi);
		}
	} else if ((c->phase == PH_SEND || c->phase == PH_REPLY) && !strcmp(type, "reply") &&
		   json_equal(json_object_get(m, "id"), c->id)) {
		c->res->reply = json_incref(m);
		if (c->req->follow && c->req->after_reply &&
		    c->req->after_reply(m, c->req->user)) {
			c->phase = PH_FOLLOW;
		} else {
			finish(c);
			r = -1;
		}
	} else if (c->phase == PH_FOLLOW && c->req->follow(m, c->req->user)) {
		c->res->followed = json_incref(m);
		finish(c);
		r = -1;
	}
	/* anything else (events, posture, status, gap) is not for us */
	json_decref(m);
	return r;
}

int feed_rx_add(struct feed_rx *rx, struct lws *wsi, const void *in, size_t len,
		const char **why)
{
	if (lws_frame_is_binary(wsi)) {
		*why = "sent a binary frame (the feed is JSON text)";
		return -1;
	}
	if (len > FEED_CLIENT_MAX_MESSAGE - rx->len) {
		*why = "sent a message over 4 MiB";
		return -1;
	}
	if (rx->len + len > rx->cap) {
		size_t cap = rx->cap ? rx->cap : RX_INITIAL;
		char *p;

		while (cap < rx->len + len)
			cap *= 2;
		if (cap > FEED_CLIENT_MAX_MESSAGE)
			cap = FEED_CLIENT_MAX_MESSAGE;
		p = realloc(rx->buf, cap);
		if (!p) {
			*why = "sent a message too large for the memory left";
			return -1;
		}
		rx->buf = p;
		rx->cap = cap;
	}
	if (len)
		memcpy(rx->buf + rx->len, in, len);
	rx->len += len;
	return lws_is_final_fragment(wsi) && !lws_remaining_packet_payload(wsi);
}

static int receive(struct client *c, struct lws *wsi, const void *in, size_t len)
{
	const char *why;
	int r = feed_rx_add(&c->rx, wsi, in, len, &why);

	if (r < 0) {
		fail(c, "%s %s", c->req->url_text, why);
		return -1;
	}
	if (r == 0)
		return 0;
	r = message(c, wsi, c->rx.buf, c->rx.len);
	feed_rx_done(&c->rx);
	return r;
}

static int callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
		    size_t len)
{
	struct client *c = lws_context_user(lws_get_context(wsi));
	const char *url;
	int n;

	if (!c)
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	url = c->req->url_text;

	switch (reason) {
	case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
		c->tcp_up = true;
		return feed_url_add_headers(c->req->url, wsi, in, len);

	case LWS_CALLBACK_CLIENT_CONNECTION_ERROR: {
		char why[512];

		feed_url_describe_failure(c->req->url, url, wsi, in, c->tcp_up, why, sizeof(why));
		fail(c, "%s", why);
		return 0;
	}

	case LWS_CALLBACK_CLIENT_ESTABLISHED:
		if (c->phase == PH_CONNECTING)
			c->phase = PH_HELLO;
		return 0;

	case LWS_CALLBACK_CLIENT_RECEIVE:
		if (c->done)
			return -1;
		return receive(c, wsi, in, len);

	case LWS_CALLBACK_CLIENT_WRITEABLE:
		if (c->done)
			return -1;
		if (c->phase != PH_SEND)
			return 0;
		n = lws_write(wsi, c->out + LWS_PRE, c->out_len, LWS_WRITE_TEXT);
		if (n < (int)c->out_len) {
			fail(c, "cannot send the command to %s", url);
			return -1;
		}
		c->phase = PH_REPLY;
		return 0;

	case LWS_CALLBACK_CLIENT_CLOSED:
		switch (c->phase) {
		case PH_CONNECTING:
		case PH_HELLO:
			fail(c, "%s closed the connection before its hello", url);
			break;
		case PH_SEND:
		case PH_REPLY:
			fail(c, "%s closed the connection before replying", url);
			break;
		case PH_FOLLOW:
			fail(c, "%s closed the connection before the %s", url,
			     c->req->follow_what ? c->req->follow_what : "answer");
			break;
		}
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

void feed_result_clear(struct feed_result *res)
{
	json_decref(res->hello);
	json_decref(res->reply);
	json_decref(res->followed);
	res->hello = res->reply = res->followed = NULL;
}

int feed_run(const struct feed_request *req, struct feed_result *res)
{
	struct lws_client_connect_info ci;
	struct client c;
	char *text = NULL;
	size_t n;

	memset(res, 0, sizeof(*res));
	memset(&c, 0, sizeof(c));
	c.req = req;
	c.res = res;
	c.phase = PH_CONNECTING;

	/* the command with our id; the reply echoes it */
	if (req->command) {
		c.id = json_sprintf("spinewatch-%ld", (long)getpid());
		if (!c.id || json_object_set(req->command, "id", c.id) ||
		    !(text = json_dumps(req->command, JSON_COMPACT))) {
			snprintf(res->error, sizeof(res->error), "cannot encode the command");
			goto out;
		}
		n = strlen(text);
		c.out = malloc(LWS_PRE + n);
		if (!c.out) {
			snprintf(res->error, sizeof(res->error), "out of memory");
			goto out;
		}
		memcpy(c.out + LWS_PRE, text, n);
		c.out_len = n;
	}

	lws_set_log_level(0, NULL);
	c.ctx = feed_url_context(req->url, protocols, &c);
	if (!c.ctx) {
		snprintf(res->error, sizeof(res->error), "cannot set up a WebSocket client");
		goto out;
	}
	lws_sul_schedule(c.ctx, 0, &c.deadline, on_deadline,
			 (lws_usec_t)req->timeout_ms * LWS_US_PER_MS);

	feed_url_connect_info(req->url, c.ctx, NULL, &ci);
	if (!lws_client_connect_via_info(&ci))
		fail(&c, "cannot connect to %s (is spinewatchd running?)", req->url_text);

	/* lws_service() sleeps until something happens or the deadline timer is due */
	while (!c.done) {
		if (lws_service(c.ctx, 0) < 0)
			fail(&c, "lost the connection to %s", req->url_text);
	}
	lws_sul_cancel(&c.deadline);
	lws_context_destroy(c.ctx);
	c.ctx = NULL;
out:
	free(text);
	free(c.out);
	free(c.rx.buf);
	json_decref(c.id);
	if (res->error[0]) {
		feed_result_clear(res);
		return -1;
	}
	return 0;
}
