/*
 * resolver.c - host name lookups on the event loop (see resolver.h).
 *
 * c-ares tells us which of its sockets it wants watched (the socket-state
 * callback); each gets a dup() on the loop (the loop closes what it is
 * given, c-ares closes its own), and readiness goes back to c-ares with
 * ares_process_fd(). After every call into c-ares its next timeout is a loop
 * timer, so retries and giving up happen without a wake-up of our own.
 */
#include "resolver.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ares.h>

#include "log.h"

#define RESOLVER_SOCKETS 8   /* c-ares uses one or two per DNS server */

struct resolver_socket {
	ares_socket_t fd;           /* c-ares' own; ARES_SOCKET_BAD: a free slot */
	struct loop_fd *watch;      /* our dup of it on the loop */
	struct resolver *r;
};

struct resolver {
	struct loop *loop;
	ares_channel channel;
	struct loop_timer timer;
	struct resolver_socket sockets[RESOLVER_SOCKETS];
	bool busy;                  /* a lookup runs */
	resolver_fn fn;
	void *user;
};

static void arm_timer(struct resolver *r)
{
	struct timeval tv, *t = ares_timeout(r->channel, NULL, &tv);

	if (t)
		loop_timer_start(&r->timer, (int64_t)t->tv_sec * 1000 + (t->tv_usec + 999) / 1000);
	else
		loop_timer_cancel(&r->timer);
}

static void timer_fire(struct loop_timer *t)
{
	struct resolver *r = t->user;

	ares_process_fd(r->channel, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	arm_timer(r);
}

static void on_socket(struct loop_fd *f, int fd, unsigned events, void *user)
{
	struct resolver_socket *s = user;
	struct resolver *r = s->r;
	ares_socket_t theirs = s->fd;

	(void)f;
	(void)fd;
	if (events & LOOP_FD_HUP)
		s->watch = NULL;   /* the loop has closed our dup; c-ares finds out reading */
	ares_process_fd(r->channel, events & (LOOP_FD_IN | LOOP_FD_HUP) ? theirs : ARES_SOCKET_BAD,
			events & LOOP_FD_OUT ? theirs : ARES_SOCKET_BAD);
	arm_timer(r);
}

static void socket_state(void *data, ares_socket_t fd, int readable, int writable)
{
	struct resolver *r = data;
	struct resolver_socket *s = NULL, *free_slot = NULL;
	size_t i;
	int dup_fd;

	for (i = 0; i < RESOLVER_SOCKETS; i++) {
		if (r->sockets[i].fd == fd)
			s = &r->sockets[i];
		else if (r->sockets[i].fd == ARES_SOCKET_BAD && !free_slot)
			free_slot = &r->sockets[i];
	}
	if (!readable && !writable) {   /* c-ares is done with it (and closes it) */
		if (s) {
			if (s->watch)
				loop_fd_close(s->watch);
			s->watch = NULL;
			s->fd = ARES_SOCKET_BAD;
		}
		return;
	}
	if (!s) {
		if (!free_slot) {
			log_warn("resolver: more than %d DNS sockets at once; one is not watched",
				 RESOLVER_SOCKETS);
			return;   /* its query times out */
		}
		s = free_slot;
		dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		s->watch = dup_fd >= 0 ? loop_fd_add(r->loop, dup_fd, on_socket, s) : NULL;
		if (!s->watch) {
			log_warn("resolver: cannot watch a DNS socket");
			return;
		}
		s->fd = fd;
	}
	if (s->watch)
		loop_fd_want_write(s->watch, writable != 0);
}

static void looked_up(void *arg, int status, int timeouts, struct ares_addrinfo *res)
{
	struct resolver *r = arg;
	bool ok = status == ARES_SUCCESS && res && res->nodes;
	char why[160];

	(void)timeouts;
	if (res)
		ares_freeaddrinfo(res);
	if (status == ARES_ECANCELLED || status == ARES_EDESTRUCTION || !r->busy)
		return;   /* resolver_cancel() or resolver_free(): nobody is waiting */
	r->busy = false;
	snprintf(why, sizeof(why), "%s", ok ? "" : status == ARES_SUCCESS ? "no address" :
		 ares_strerror(status));
	r->fn(r->user, ok, why);
}

struct resolver *resolver_new(struct loop *loop)
{
	struct resolver *r = calloc(1, sizeof(*r));
	struct ares_options opts;
	int rc;
	size_t i;

	if (!r)
		return NULL;
	r->loop = loop;
	for (i = 0; i < RESOLVER_SOCKETS; i++) {
		r->sockets[i].fd = ARES_SOCKET_BAD;
		r->sockets[i].r = r;
	}
	loop_timer_init(&r->timer, loop, timer_fire, r);
	rc = ares_library_init(ARES_LIB_INIT_ALL);
	if (rc != ARES_SUCCESS) {
		log_error("resolver: %s", ares_strerror(rc));
		free(r);
		return NULL;
	}
	memset(&opts, 0, sizeof(opts));
	opts.sock_state_cb = socket_state;
	opts.sock_state_cb_data = r;
	opts.timeout = RESOLVER_TIMEOUT_MS;
	opts.tries = RESOLVER_TRIES;
	opts.lookups = (char *)"fb";   /* /etc/hosts, then DNS */
	rc = ares_init_options(&r->channel, &opts, ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
			       ARES_OPT_TRIES | ARES_OPT_LOOKUPS);
	if (rc != ARES_SUCCESS) {
		log_error("resolver: %s", ares_strerror(rc));
		ares_library_cleanup();
		free(r);
		return NULL;
	}
	return r;
}

void resolver_free(struct resolver *r)
{
	size_t i;

	if (!r)
		return;
	r->busy = false;
	ares_destroy(r->channel);   /* the running lookup's callback says EDESTRUCTION */
	for (i = 0; i < RESOLVER_SOCKETS; i++)
		if (r->sockets[i].watch)
			loop_fd_close(r->sockets[i].watch);
	loop_timer_cancel(&r->timer);
	ares_library_cleanup();
	free(r);
}

int resolver_lookup(struct resolver *r, const char *host, resolver_fn fn, void *user)
{
	struct ares_addrinfo_hints hints;

	if (r->busy)
		return -1;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	r->busy = true;
	r->fn = fn;
	r->user = user;
	ares_getaddrinfo(r->channel, host, NULL, &hints, looked_up, r);   /* may answer at once */
	arm_timer(r);
	return 0;
}

void resolver_cancel(struct resolver *r)
{
	if (!r || !r->busy)
		return;
	r->busy = false;
	ares_cancel(r->channel);
	arm_timer(r);
}

bool resolver_is_address(const char *host)
{
	unsigned char buf[sizeof(struct in6_addr)];

	return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}
