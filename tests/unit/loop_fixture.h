/*
 * loop_fixture.h - for unit tests that need the daemon's event loop: a
 * libwebsockets context and vhost with the loop's protocol, the loop on them,
 * a way to run it until something happened or a time is up, and a count of
 * open file descriptors (to check nothing is left open).
 */
#ifndef SW_TEST_LOOP_FIXTURE_H
#define SW_TEST_LOOP_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libwebsockets.h>

#include "log.h"
#include "loop.h"

struct loop_fixture {
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct lws_protocols protocols[2];
	struct loop *loop;
	bool expired;   /* loop_fixture_run()'s time is up */
};

static inline int loop_fixture_count_fds(void)
{
	char path[64];
	int fd, n = 0;

	for (fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		if (access(path, F_OK) == 0)
			n++;
	}
	return n;
}

/* 0, or -1 if the context, vhost or loop could not be made. */
static inline int loop_fixture_open(struct loop_fixture *f)
{
	struct lws_context_creation_info info;

	memset(f, 0, sizeof(*f));
	log_init(LOG_INFO);
	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info.port = CONTEXT_PORT_NO_LISTEN;
	if (!(f->ctx = lws_create_context(&info)))
		return -1;
	f->protocols[0] = loop_protocol;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.vhost_name = "test";
	info.protocols = f->protocols;
	if (!(f->vh = lws_create_vhost(f->ctx, &info)) || !(f->loop = loop_new(f->ctx, f->vh)))
		return -1;
	return 0;
}

static inline void loop_fixture_expire(struct loop_timer *lt)
{
	struct loop_fixture *f = lt->user;

	f->expired = true;
	lws_cancel_service(f->ctx);   /* lws_service() polls on after a timer; this ends it */
}

/* Run the loop until done(arg) (NULL: never) or ms have passed; false if done never was. */
static inline bool loop_fixture_run(struct loop_fixture *f, int64_t ms, bool (*done)(void *),
				    void *arg)
{
	struct loop_timer guard;

	f->expired = false;
	loop_timer_init(&guard, f->loop, loop_fixture_expire, f);
	loop_timer_start(&guard, ms);
	while (!(done && done(arg)) && !f->expired)
		if (lws_service(f->ctx, 0) < 0)
			break;
	loop_timer_cancel(&guard);
	return done && done(arg);
}

static inline void loop_fixture_close(struct loop_fixture *f)
{
	loop_free(f->loop);
	if (f->ctx)
		lws_context_destroy(f->ctx);
	f->loop = NULL;
	f->ctx = NULL;
}

#endif
