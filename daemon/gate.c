/*
 * gate.c - applying access.h to lws requests (see gate.h).
 */
#include "gate.h"

#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#define TOKEN_ARG "token="

bool gate_peer_is_loopback(struct lws *wsi)
{
	struct lws *net = lws_get_network_wsi(wsi);
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd = lws_get_socket_fd(net ? net : wsi);

	if (fd < 0 || getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	if (ss.ss_family == AF_UNIX)
		return true;
	if (ss.ss_family == AF_INET)
		return (ntohl(((struct sockaddr_in *)&ss)->sin_addr.s_addr) >> 24) == 127;
	if (ss.ss_family == AF_INET6) {
		const struct in6_addr *a = &((struct sockaddr_in6 *)&ss)->sin6_addr;

		if (IN6_IS_ADDR_LOOPBACK(a))
			return true;
		return IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127;
	}
	return false;
}

/* A header into buf ("" when absent or too long); false when too long. */
static bool header(struct lws *wsi, enum lws_token_indexes t, char *buf, int cap)
{
	int n = lws_hdr_total_length(wsi, t);

	buf[0] = '\0';
	if (n <= 0)
		return true;
	if (n >= cap || lws_hdr_copy(wsi, buf, cap, t) < 0) {
		buf[0] = '\0';
		return false;
	}
	return true;
}

/* The token: Authorization: Bearer, else ?token=. NULL when neither; *present
 * tells a token that is there but malformed (too long, another scheme). */
static const char *find_token(struct lws *wsi, char *buf, int cap, size_t *len, bool *present)
{
	const char *v;

	*present = false;
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_AUTHORIZATION) > 0) {
		*present = true;
		if (!header(wsi, WSI_TOKEN_HTTP_AUTHORIZATION, buf, cap) ||
		    strncasecmp(buf, "Bearer ", 7))
			return NULL;
		v = buf + 7;
		while (*v == ' ')
			v++;
		*len = strcspn(v, " ");
		return v;
	}
	v = lws_get_urlarg_by_name(wsi, TOKEN_ARG, buf, cap);
	if (!v) {
		/* a "token" argument too long for buf, or without a value */
		*present = lws_get_urlarg_by_name(wsi, "token", buf, cap) != NULL;
		return NULL;
	}
	*present = true;
	*len = strlen(v);
	return v;
}

static void refuse(struct gate *g, struct gate_verdict *v, unsigned status, const char *code,
		   const char *message, uint64_t *counter)
{
	v->status = status;
	v->code = code;
	v->message = message;
	v->role = ACCESS_NONE;
	(*counter)++;
	log_rl(&g->rl, LOG_INFO, "http: refused a request: %s", code);
}

void gate_check(struct gate *g, struct lws *wsi, bool upgrade, enum access_role need,
		struct gate_verdict *v)
{
	char host[256], origin[256], fwd[256], tok[ACCESS_TOKEN_MAX + 64];
	const char *t;
	size_t tlen = 0;
	bool present, bad;
	int n;

	memset(v, 0, sizeof(*v));
	if (!g->access) {
		v->role = ACCESS_CONTROL;
		return;
	}
	if (lws_hdr_total_length(wsi, WSI_TOKEN_HOST) > 0)
		header(wsi, WSI_TOKEN_HOST, host, sizeof(host));
	else   /* HTTP/2 */
		header(wsi, WSI_TOKEN_HTTP_COLON_AUTHORITY, host, sizeof(host));
	if (!access_host_ok(g->access, host)) {
		refuse(g, v, 421, "unknown-host", "this server does not answer to that host name; "
		       "add it to [access] hosts", &g->counts.unknown_host);
		return;
	}
	if (upgrade) {
		if (!header(wsi, WSI_TOKEN_ORIGIN, origin, sizeof(origin)))
			snprintf(origin, sizeof(origin), "null");   /* too long to be one */
		fwd[0] = '\0';
		n = lws_hdr_custom_length(wsi, "x-forwarded-host:", 17);
		if (n > 0 && n < (int)sizeof(fwd) &&
		    lws_hdr_custom_copy(wsi, fwd, sizeof(fwd), "x-forwarded-host:", 17) < 0)
			fwd[0] = '\0';
		if (!access_origin_ok(g->access, origin, host, fwd)) {
			refuse(g, v, 403, "foreign-origin", "a page from another site may not use "
			       "this feed; add its origin to [access] origins", &g->counts.foreign_origin);
			return;
		}
	}
	t = find_token(wsi, tok, sizeof(tok), &tlen, &present);
	if (present && !t) {
		refuse(g, v, 401, "bad-token", "the access token is not valid", &g->counts.bad_token);
		return;
	}
	v->role = access_decide(g->access, gate_peer_is_loopback(wsi), t, tlen, &bad);
	if (bad) {
		refuse(g, v, 401, "bad-token", "the access token is not valid", &g->counts.bad_token);
		return;
	}
	if (t) {
		const struct access_token *e = access_find_token(g->access, t, tlen);

		v->label = e ? e->label : NULL;
	}
	if (v->role < need) {
		refuse(g, v, 401, "token-required", "an access token is needed (Authorization: "
		       "Bearer TOKEN, or ?token=TOKEN)", &g->counts.token_required);
		return;
	}
}

int gate_refuse(struct lws *wsi, const struct gate_verdict *v)
{
	unsigned char buf[LWS_PRE + 1024], *start = buf + LWS_PRE, *p = start,
		*end = buf + sizeof(buf) - 1;
	char body[384];
	int n = snprintf(body, sizeof(body), "{\"type\":\"error\",\"code\":\"%s\",\"message\":\"%s\"}\n",
			 v->code, v->message);

	if (n < 0 || (size_t)n >= sizeof(body))
		return -1;
	if (lws_add_http_common_headers(wsi, v->status, "application/json", (lws_filepos_t)n,
					&p, end) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
					(const unsigned char *)"no-store", 8, &p, end) ||
	    (v->status == 401 &&
	     lws_add_http_header_by_token(wsi, WSI_TOKEN_HTTP_WWW_AUTHENTICATE,
					  (const unsigned char *)"Bearer realm=\"spinewatch\"", 25,
					  &p, end)) ||
	    lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
					(const unsigned char *)"close", 5, &p, end) ||
	    lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	memcpy(buf + LWS_PRE, body, (size_t)n);
	return lws_write(wsi, buf + LWS_PRE, (size_t)n, LWS_WRITE_HTTP_FINAL) < n ? -1 : 0;
}
