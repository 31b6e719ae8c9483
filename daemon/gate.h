/*
 * gate.h - the access gate on every HTTP request and WebSocket upgrade:
 * reads the peer address, Host (or HTTP/2 :authority), Origin,
 * X-Forwarded-Host, and the token (an `Authorization: Bearer` header or a
 * `token=` URL argument) off an lws request, asks access.h for a verdict,
 * and writes the refusal (a JSON error with the HTTP status) when there is
 * one. Counts refusals for /metrics.
 */
#ifndef SW_GATE_H
#define SW_GATE_H

#include <stdbool.h>
#include <stdint.h>

#include <libwebsockets.h>

#include "access.h"
#include "log.h"

struct gate_verdict {
	enum access_role role;   /* what the request may do */
	unsigned status;         /* 0: let it in; else the HTTP status of the refusal */
	const char *code;        /* stable: unknown-host, foreign-origin, token-required, bad-token */
	const char *message;     /* for people */
	const char *label;       /* the token's label, or NULL */
};

struct gate_counts {
	uint64_t unknown_host, foreign_origin, token_required, bad_token;
};

struct gate {
	const struct access *access;   /* NULL: everything is let in with control */
	struct gate_counts counts;
	struct log_ratelimit rl;
};

/*
 * Check a request that needs at least `need` (ACCESS_NONE for the
 * dashboard's files, ACCESS_READ for the API and the feed). upgrade: a
 * WebSocket upgrade (the Origin is checked too).
 */
void gate_check(struct gate *g, struct lws *wsi, bool upgrade, enum access_role need,
		struct gate_verdict *v);

/* Write the refusal v describes (status line, headers, JSON body). 0 if written. */
int gate_refuse(struct lws *wsi, const struct gate_verdict *v);

/* Is the peer of wsi on loopback (127/8, ::1, v4-mapped 127/8, a unix socket)? */
bool gate_peer_is_loopback(struct lws *wsi);

#endif
