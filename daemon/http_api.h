/*
 * http_api.h - the HTTP side of the port next to the dashboard's files: the
 * JSON API under /api/v1 (events, sensors, alerts, stats; documented in
 * protocol/http-api.md) and /metrics (its text comes from metrics.h).
 *
 * Owns: the lws protocol that server.c's LWSMPRO_CALLBACK mounts name, the
 * request rules (GET only, known paths, strict and bounded query parameters),
 * every /api/v1 response body and the {"error":{"code","message"}} errors,
 * and writing bodies in chunks so a large answer never holds the loop. It
 * reads the daemon's state through struct http_sources, filled in main.c;
 * event items are the feed's own event objects (the bytes the history
 * database or the ring keeps), sensors and alerts are encoded by
 * feed_json.c's hello encoder, so the feed document's schemas apply.
 */
#ifndef SW_HTTP_API_H
#define SW_HTTP_API_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <libwebsockets.h>

#define HTTP_API_PROTOCOL "spinewatch-http"
#define HTTP_API_PATH "/api/v1"
#define HTTP_METRICS_PATH "/metrics"

#define HTTP_API_DEFAULT_LIMIT 100
#define HTTP_API_MAX_LIMIT 1000         /* events per response */
#define HTTP_API_DEFAULT_RECENT 10
#define HTTP_API_MAX_RECENT 100         /* recent alert events in /alerts */
#define HTTP_API_DEFAULT_DAYS 7         /* stats: the last 7 days by default */
#define HTTP_API_MAX_DAYS 731           /* stats: at most two years per request */
#define HTTP_API_MAX_DAY_ROWS 20000     /* stats: stored rows per request */
#define HTTP_API_RING_SCAN_MAX 65536    /* ring records looked at per request */
#define HTTP_API_MAX_ARGS 8             /* query parameters per request */
#define HTTP_API_MAX_ARG_LEN 64         /* bytes of one "name=value" (decoded) */
#define HTTP_API_MAX_PATH 128           /* bytes of the path */
#define HTTP_API_CHUNK 16384            /* body bytes per write */

struct history;
struct sensors;
struct alert_center;
struct stats_keeper;
struct store;
struct feed;
struct gate;
struct mqtt;

/* Where the answers come from; any pointer but store may be NULL. */
struct http_sources {
	struct store *store;           /* the ring: events without a history, last_seq */
	struct history *history;       /* NULL: events come from the ring */
	struct sensors *sensors;
	struct alert_center *alerts;
	struct stats_keeper *stats;    /* the per-day record in memory */
	struct feed *feed;             /* clients and counters, for /metrics */
	const struct gate *gate;       /* refused requests, for /metrics */
	const char *stream_id;         /* as in hello */
	const char *version;
	int64_t started_ms;            /* epoch ms the daemon started */
	const struct mqtt *mqtt;       /* NULL: no MQTT publisher (http_api_set_mqtt) */
};

/* One request as the lws side hands it over: path without the query; args
 * are the decoded "name=value" query fragments with their lengths (a length
 * other than strlen() means an embedded NUL). */
struct http_request {
	bool get;                      /* the method is GET */
	const char *path;
	size_t n_args;
	const char *args[HTTP_API_MAX_ARGS];
	size_t arg_len[HTTP_API_MAX_ARGS];
	bool too_many_args, arg_too_long;
};

struct http_response {
	unsigned status;
	const char *content_type;
	const char *allow;             /* an Allow header (405), or NULL */
	char *body;                    /* malloc'd (free()), NUL-terminated */
	size_t len;
};

struct http_api;

struct http_api *http_api_new(const struct http_sources *src);
void http_api_free(struct http_api *api);
/* The MQTT publisher, made after the API (NULL: none), for /metrics. */
void http_api_set_mqtt(struct http_api *api, const struct mqtt *mqtt);
/* The protocol entry for the vhost; its name is HTTP_API_PROTOCOL. */
struct lws_protocols http_api_protocol(struct http_api *api);

/* The answer to one request (pure apart from reading the sources; the lws
 * callback and the unit tests call it). Never fails: errors are answers. */
void http_api_respond(const struct http_sources *src, const struct http_request *req,
		      struct http_response *out);

#endif
