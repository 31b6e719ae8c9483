/*
 * daemon/cli/feed_client.h - the command-line client's connection to spinewatchd's feed: parse
 * a ws:// URL, connect (subprotocol spinewatch.v1), await the hello, send one command, wait for
 * the reply carrying its id and, if asked, for a later message matching a predicate, all within
 * one deadline; or just take the hello (no command). Messages are reassembled into a bounded buffer (FEED_CLIENT_MAX_MESSAGE).
 */
#ifndef SPINEWATCH_CLI_FEED_CLIENT_H
#define SPINEWATCH_CLI_FEED_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>
#include <libwebsockets.h>

#define FEED_CLIENT_MAX_MESSAGE (4u << 20)   /* one server message, reassembled: 4 MiB */

/* One server message being put together from its fragments (bounded). */
struct feed_rx {
	char *buf;
	size_t len, cap;
};
/*
 * Adds a received fragment: 1 once a whole message is in rx->buf (rx->len
 * bytes; call feed_rx_done() after using it), 0 while more is to come, -1
 * with *why (static text: binary frame, too large, out of memory) on error.
 */
int feed_rx_add(struct feed_rx *rx, struct lws *wsi, const void *in, size_t len,
		const char **why);
static inline void feed_rx_done(struct feed_rx *rx) { rx->len = 0; }

/* A parsed ws:// or wss://HOST[:PORT][/PATH] URL, and how to get in. */
struct feed_url {
	char address[256];     /* what to connect to: a name or an address, IPv6 without [] */
	int port;              /* 80 (443 for wss) when the URL names none */
	bool tls;              /* wss:// */
	const char *token;     /* sent as Authorization: Bearer; NULL for none */
	const char *ca_file;   /* wss: trust this PEM file instead of the system's CAs */
	char host_header[272]; /* the Host header: as in the URL */
	char path[1024];       /* "/" when the URL names none; a query is kept */
};

/* Parse `url`: 0, or -1 with a reason for people in why (another scheme, a bad port). */
int feed_url_parse(const char *url, struct feed_url *out, char *why, size_t why_len);

/* For LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER (in, len as given): the token. 0 if fine. */
int feed_url_add_headers(const struct feed_url *u, struct lws *wsi, void *in, size_t len);

/*
 * For LWS_CALLBACK_CLIENT_CONNECTION_ERROR (in as given): what went wrong, for
 * people, into why. A connection that got as far as an HTTP answer is named by
 * its status (401: a token is needed or was refused, 403, 421, 503: full or
 * stopping); tcp_up: the TCP connection was made.
 */
void feed_url_describe_failure(const struct feed_url *u, const char *url_text, struct lws *wsi,
			       const char *in, bool tcp_up, char *why, size_t why_len);

/* A client context for u (TLS for wss://) with these protocols; NULL on failure. */
struct lws_context *feed_url_context(const struct feed_url *u,
				     const struct lws_protocols *protocols, void *user);

/* The connection to u (path: u->path, or another) on ctx, subprotocol spinewatch.v1. */
void feed_url_connect_info(const struct feed_url *u, struct lws_context *ctx, const char *path,
			   struct lws_client_connect_info *ci);

struct feed_request {
	const char *url_text;        /* the URL as given, for messages */
	const struct feed_url *url;
	json_t *command;             /* a JSON object; "id" is added to it. NULL: no command,
				      * done once the hello arrived */
	int timeout_ms;              /* from the connect to the end */
	/* Called with the reply to the command. Return true to go on waiting for a message
	 * for which follow() returns true (NULL: never). */
	bool (*after_reply)(const json_t *reply, void *user);
	bool (*follow)(const json_t *msg, void *user);
	const char *follow_what;     /* what follow() waits for, for the timeout message */
	void *user;
};

struct feed_result {
	json_t *hello;     /* the server's hello */
	json_t *reply;     /* the reply (its "ok" says whether the command was refused) */
	json_t *followed;  /* the message follow() accepted, if it was waited for */
	char error[640];   /* when feed_run() fails: what went wrong, naming the URL */
};

/* Run one request. 0: hello, and reply (and followed, if waited for) unless there is no
 * command, are set; -1: the daemon could not
 * be reached or misbehaved (connection refused, timeout, no hello, bad JSON), see error.
 * Release the result with feed_result_clear() either way. */
int feed_run(const struct feed_request *req, struct feed_result *res);
void feed_result_clear(struct feed_result *res);

#endif
