/*
 * server.h - the HTTP/WebSocket server setup: parses the listen address,
 * creates the lws context and the one vhost that serves the dashboard's
 * static files at / and the feed at /ws, mounts /api/v1 and /metrics on
 * the HTTP API's protocol (http_api.h), and carries the loop's raw-file
 * protocol. Every plain HTTP request passes the gate (gate.h) first: the
 * dashboard's files need only an accepted Host, the API and metrics a
 * reader's access. Serves https/wss when given a certificate and key.
 * Routes lws' own log lines into ours.
 */
#ifndef SW_SERVER_H
#define SW_SERVER_H

#include <libwebsockets.h>

#include "gate.h"

#define SERVER_DEFAULT_LISTEN "127.0.0.1:8421"

struct server_config {
	const char *listen;          /* "HOST:PORT", "[V6]:PORT" */
	const char *web_root;        /* directory served at / */
	struct lws_protocols feed;   /* first protocol of the vhost */
	const struct lws_protocols *loop;
	/* NULL, or the protocol serving /api/v1 and /metrics (http_api.h) */
	const struct lws_protocols *http;
	struct gate *gate;           /* NULL: no checks (tests) */
	const char *tls_cert, *tls_key;   /* PEM files; NULL or "": plain http/ws */
	unsigned max_clients;        /* feed clients at once: sizes the open-file limit */
};

struct server {
	struct lws_context *ctx;
	struct lws_vhost *vh;
	char host[64];
	int port;
	struct lws_protocols protocols[4];
	struct lws_http_mount mount;
	struct lws_http_mount api_mount, metrics_mount;   /* LWSMPRO_CALLBACK */
	struct gate *gate;
	lws_callback_function *feed_cb, *http_cb;   /* what the gate hands requests on to */
	bool tls;
};

/* Split "HOST:PORT" / "[V6]:PORT"; 0 if valid. */
int server_parse_listen(const char *spec, char *host, size_t host_len, int *port);

int server_start(struct server *s, const struct server_config *cfg);
void server_stop(struct server *s);

#endif
