/*
 * resolver.h - host names looked up without blocking the event loop: c-ares,
 * with its sockets and its timeouts on the daemon's loop. A library call such
 * as getaddrinfo() would hold the whole daemon (feed, dashboard, sensors) for
 * as long as an unanswering DNS server takes, up to tens of seconds.
 *
 * One lookup at a time per resolver; its callback is called exactly once,
 * from the loop, unless the lookup is cancelled or the resolver freed first.
 */
#ifndef SW_RESOLVER_H
#define SW_RESOLVER_H

#include <stdbool.h>

#include "loop.h"

#define RESOLVER_TIMEOUT_MS 2000   /* per DNS server and try */
#define RESOLVER_TRIES 2

struct resolver;

/* ok: the name has at least one address; else why says what went wrong. */
typedef void (*resolver_fn)(void *user, bool ok, const char *why);

struct resolver *resolver_new(struct loop *loop);
void resolver_free(struct resolver *r);

/* Look host up (IPv4 and IPv6, /etc/hosts first, as the system resolver
 * does); 0, or -1 if a lookup is running already or it cannot start. */
int resolver_lookup(struct resolver *r, const char *host, resolver_fn fn, void *user);
/* Forget the running lookup, if any: its callback will not be called. */
void resolver_cancel(struct resolver *r);

/* An IPv4 or IPv6 address literal needs no lookup. */
bool resolver_is_address(const char *host);

#endif
