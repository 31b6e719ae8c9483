/*
 * server.c - lws context and vhost: static dashboard + feed on one port,
 * Chart.js from its Debian package for the dashboard's charts, and the HTTP
 * API and metrics mounts.
 */
#include "server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "http_api.h"
#include "log.h"

int server_parse_listen(const char *spec, char *host, size_t host_len, int *port)
{
	const char *colon, *h = spec;
	size_t hl;
	char *end;
	long p;

	if (!spec || !*spec)
		return -1;
	if (*spec == '[') {
		const char *close = strchr(spec, ']');

		if (!close || close[1] != ':')
			return -1;
		h = spec + 1;
		hl = (size_t)(close - h);
		colon = close + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon || memchr(spec, ':', (size_t)(colon - spec)))
			return -1;  /* bare IPv6 needs brackets */
		hl = (size_t)(colon - spec);
	}
	if (hl == 0 || hl >= host_len)
		return -1;
	p = strtol(colon + 1, &end, 10);
	if (colon[1] < '0' || colon[1] > '9' || *end || p < 1 || p > 65535)
		return -1;
	memcpy(host, h, hl);
	host[hl] = '\0';
	*port = (int)p;
	return 0;
}

/* The dashboard draws its charts with Chart.js from Debian's libjs-chart.js
 * (chart.mjs and chunks/), served from the package's directory at
 * /vendor/chart.js/ so the page needs no CDN. */
#ifndef SPINEWATCH_CHARTJS_DIR
#define SPINEWATCH_CHARTJS_DIR "/usr/share/javascript/chart.js"
#endif
#define CHARTJS_URL "/vendor/chart.js"

/* lws knows .js but not .mjs: without this, Chart.js's ES modules would go out
 * as application/octet-stream, which browsers refuse to run as modules (the
 * security headers include X-Content-Type-Options: nosniff). */
static const struct lws_protocol_vhost_options mjs_mimetype = {
	NULL, NULL, ".mjs", "text/javascript"
};

/* The longest matching mountpoint wins, so / does not shadow this one. */
static const struct lws_http_mount chartjs_mount = {
	.mountpoint = CHARTJS_URL,
	.mountpoint_len = sizeof(CHARTJS_URL) - 1,
	.origin = SPINEWATCH_CHARTJS_DIR,
	.origin_protocol = LWSMPRO_FILE,
	.extra_mimetypes = &mjs_mimetype,
};

/* per client, before the kernel doubles it for its bookkeeping */
#define SERVER_SNDBUF (96 * 1024)

/* Does uri fall under mountpoint (itself or below it)? */
static bool under(const char *uri, size_t len, const char *mountpoint)
{
	size_t n = strlen(mountpoint);

	return len >= n && !strncmp(uri, mountpoint, n) && (len == n || uri[n] == '/');
}

/* Every plain HTTP request, before lws looks for its mount: 0 to go on, 1 when
 * refused (the refusal is written and the connection closes). */
static int http_filter(struct server *s, struct lws *wsi, const char *uri, size_t len)
{
	struct gate_verdict v;
	enum access_role need = ACCESS_NONE;

	if (!s->gate)
		return 0;
	if (under(uri, len, HTTP_API_PATH) || under(uri, len, HTTP_METRICS_PATH))
		need = ACCESS_READ;
	gate_check(s->gate, wsi, false, need, &v);
	if (!v.status)
		return 0;
	gate_refuse(wsi, &v);
	return 1;
}

static struct server *server_of(struct lws *wsi)
{
	struct lws_vhost *vh = lws_get_vhost(wsi);

	return vh ? lws_vhost_user(vh) : NULL;
}

static int first_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			  size_t len)
{
	struct server *s = server_of(wsi);

	if (!s)
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	if (reason == LWS_CALLBACK_FILTER_NETWORK_CONNECTION && user) {
		/* A fixed send buffer: the kernel's autotuning would let each client that
		 * stops reading hold up to 4 MiB of ours; this bounds it (and lets the
		 * write timeout see the stall) while a LAN client still gets full speed. */
		int fd = ((struct lws_filter_network_conn_args *)user)->accept_fd, n = SERVER_SNDBUF;

		if (setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &n, sizeof(n)) < 0)
			log_debug("cannot set a client's send buffer: %s", strerror(errno));
		return 0;
	}
	if (reason == LWS_CALLBACK_FILTER_HTTP_CONNECTION && in &&
	    http_filter(s, wsi, in, strnlen(in, len)))
		return 1;
	return s->feed_cb(wsi, reason, user, in, len);
}

static int api_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
			size_t len)
{
	struct server *s = server_of(wsi);

	if (!s)
		return lws_callback_http_dummy(wsi, reason, user, in, len);
	if (reason == LWS_CALLBACK_FILTER_HTTP_CONNECTION && in &&
	    http_filter(s, wsi, in, strnlen(in, len)))
		return 1;
	return s->http_cb(wsi, reason, user, in, len);
}

static void lws_log_emit(int level, const char *line)
{
	char buf[512];
	size_t n;

	snprintf(buf, sizeof(buf), "%s", line);
	n = strlen(buf);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	log_msg(level == LLL_ERR ? LOG_ERR : level == LLL_WARN ? LOG_WARNING : LOG_DEBUG,
		"lws: %s", buf);
}

/*
 * libwebsockets sizes its tables of sockets by the open-file limit it finds
 * (16 bytes a file: 320 KiB at a shell's 20,000, 16 MiB at 1,048,576), and
 * systemd's default soft limit, 1024, is too few for max_clients of 500 and
 * more. So the limit is set to what the daemon needs: two files per feed
 * client (one more connection in each one's place while it is refused or
 * plain HTTP) and 256 for the bus, sensors' sockets, the history and the rest;
 * raised no further than the hard limit.
 */
static void server_size_file_limit(unsigned max_clients)
{
	rlim_t want = 2 * (rlim_t)(max_clients ? max_clients : 64) + 256;
	struct rlimit rl;
	rlim_t had;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return;
	had = rl.rlim_cur;
	if (rl.rlim_max != RLIM_INFINITY && want > rl.rlim_max) {
		log_warn("only %llu files may be open (hard limit), %llu wanted for %u clients: "
			 "clients may be refused (LimitNOFILE= raises it)",
			 (unsigned long long)rl.rlim_max, (unsigned long long)want, max_clients);
		want = rl.rlim_max;
	}
	if (had == want)
		return;
	rl.rlim_cur = want;
	if (!setrlimit(RLIMIT_NOFILE, &rl))
		return;
	/* the service's system call filter may forbid it (@resources): a limit above
	 * the need only costs table memory, one below it clients */
	if (had < want)
		log_warn("cannot raise the open-file limit from %llu to %llu (%s): clients may be "
			 "refused (LimitNOFILE= raises it)", (unsigned long long)had,
			 (unsigned long long)want, strerror(errno));
	else
		log_debug("the open-file limit stays %llu (%s)", (unsigned long long)had,
			  strerror(errno));
}

int server_start(struct server *s, const struct server_config *cfg)
{
	struct lws_context_creation_info info;
	uint64_t opts = LWS_SERVER_OPTION_HTTP_HEADERS_SECURITY_BEST_PRACTICES_ENFORCE |
			LWS_SERVER_OPTION_VALIDATE_UTF8;

	memset(s, 0, sizeof(*s));
	if (server_parse_listen(cfg->listen, s->host, sizeof(s->host), &s->port)) {
		log_error("invalid listen address '%s' (want HOST:PORT or [IPV6]:PORT)",
			  cfg->listen ? cfg->listen : "");
		return -1;
	}
	lws_set_log_level(log_get_level() >= LOG_DEBUG ? LLL_ERR | LLL_WARN | LLL_NOTICE :
			  LLL_ERR | LLL_WARN, lws_log_emit);

	s->gate = cfg->gate;
	s->protocols[0] = cfg->feed;
	s->feed_cb = cfg->feed.callback;
	s->protocols[0].callback = first_callback;
	s->protocols[1] = *cfg->loop;
	if (cfg->http) {
		s->protocols[2] = *cfg->http;
		s->http_cb = cfg->http->callback;
		s->protocols[2].callback = api_callback;
	}
	/* the next one stays zeroed: the terminator */

	s->mount.mountpoint = "/";
	s->mount.mountpoint_len = 1;
	s->mount.origin = cfg->web_root;
	s->mount.def = "index.html";
	s->mount.origin_protocol = LWSMPRO_FILE;
	s->mount.extra_mimetypes = &mjs_mimetype;
	s->mount.mount_next = &chartjs_mount;
	if (cfg->http) {
		/* /api/v1/... and /metrics go to the HTTP API's callback */
		s->api_mount.mountpoint = HTTP_API_PATH;
		s->api_mount.mountpoint_len = sizeof(HTTP_API_PATH) - 1;
		s->api_mount.protocol = cfg->http->name;
		s->api_mount.origin_protocol = LWSMPRO_CALLBACK;
		s->api_mount.mount_next = &s->metrics_mount;
		s->metrics_mount = s->api_mount;
		s->metrics_mount.mountpoint = HTTP_METRICS_PATH;
		s->metrics_mount.mountpoint_len = sizeof(HTTP_METRICS_PATH) - 1;
		s->metrics_mount.mount_next = &chartjs_mount;
		s->mount.mount_next = &s->api_mount;
	}

	s->tls = cfg->tls_cert && cfg->tls_cert[0];
	if (s->tls)
		opts |= LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT;
	server_size_file_limit(cfg->max_clients);
	memset(&info, 0, sizeof(info));
	info.options = opts | LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info.port = CONTEXT_PORT_NO_LISTEN;
	s->ctx = lws_create_context(&info);
	if (!s->ctx) {
		log_error("cannot create the libwebsockets context");
		return -1;
	}

	memset(&info, 0, sizeof(info));
	info.options = opts;
	if (!strchr(s->host, ':'))
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.vhost_name = "spinewatch";
	info.port = s->port;
	info.iface = s->host;
	info.protocols = s->protocols;
	info.mounts = &s->mount;
	info.user = s;
	if (s->tls) {
		/* HTTP/1.1 only: over h2 a refused request's answer would not reach the
		 * client (lws resets the stream), and every client holds one connection
		 * (the feed) anyway; a reverse proxy may still speak h2 to browsers */
		info.alpn = "http/1.1";
		info.ssl_cert_filepath = cfg->tls_cert;
		info.ssl_private_key_filepath = cfg->tls_key;
		/* TLS 1.2 and up only */
		info.ssl_options_set = SSL_OP_NO_SSLv2 | SSL_OP_NO_SSLv3 | SSL_OP_NO_TLSv1 |
				       SSL_OP_NO_TLSv1_1;
	}
	s->vh = lws_create_vhost(s->ctx, &info);
	if (!s->vh) {
		if (s->tls)
			log_error("cannot listen on %s with TLS (address in use, or a certificate %s "
				  "or key %s that cannot be read or do not match?)", cfg->listen,
				  cfg->tls_cert, cfg->tls_key);
		else
			log_error("cannot listen on %s (address in use or not available?)",
				  cfg->listen);
		lws_context_destroy(s->ctx);
		s->ctx = NULL;
		return -1;
	}
	return 0;
}

void server_stop(struct server *s)
{
	if (s->ctx)
		lws_context_destroy(s->ctx);
	s->ctx = NULL;
	s->vh = NULL;
}
