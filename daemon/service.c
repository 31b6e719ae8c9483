/*
 * service.c - sd_notify readiness, status, reload/stop notices and the
 * event-loop watchdog (see service.h).
 */
#include "service.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-daemon.h>

#include "log.h"

#define STATUS_LEN 200

struct service {
	struct loop *loop;
	service_status_fn status;
	void *user;
	bool enabled;             /* $NOTIFY_SOCKET is set */
	long long watchdog_ms;    /* ping interval, 0: none */
	struct loop_timer ping;
	char last[STATUS_LEN];    /* the status line last sent */
};

static void notify(struct service *s, const char *what, bool with_status)
{
	char buf[STATUS_LEN + 64], status[STATUS_LEN] = "";
	int r;

	if (!s->enabled)
		return;
	if (with_status && s->status) {
		s->status(s->user, status, sizeof(status));
		if (!strcmp(status, s->last))
			status[0] = '\0';   /* unchanged: not sent again */
		else
			snprintf(s->last, sizeof(s->last), "%s", status);
	}
	snprintf(buf, sizeof(buf), "%s%s%s%s", what, what[0] && status[0] ? "\n" : "",
		 status[0] ? "STATUS=" : "", status);
	if (!buf[0])
		return;
	r = sd_notify(0, buf);
	if (r < 0)
		log_warn("systemd: sd_notify failed: %s", strerror(-r));
}

static void ping_fire(struct loop_timer *t)
{
	struct service *s = t->user;

	notify(s, "WATCHDOG=1", true);
	loop_timer_start(&s->ping, s->watchdog_ms);
}

struct service *service_new(struct loop *loop, service_status_fn status, void *user)
{
	struct service *s = calloc(1, sizeof(*s));
	uint64_t usec = 0;

	if (!s)
		return NULL;
	s->loop = loop;
	s->status = status;
	s->user = user;
	s->enabled = getenv("NOTIFY_SOCKET") != NULL;
	if (s->enabled && sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		/* ping at half the timeout, at least every 500 ms apart */
		s->watchdog_ms = (long long)(usec / 2000);
		if (s->watchdog_ms < 500)
			s->watchdog_ms = 500;
	}
	loop_timer_init(&s->ping, loop, ping_fire, s);
	return s;
}

void service_free(struct service *s)
{
	if (!s)
		return;
	loop_timer_cancel(&s->ping);
	free(s);
}

void service_ready(struct service *s)
{
	notify(s, "READY=1", true);
	if (s->watchdog_ms) {
		log_info("systemd: watchdog ping every %lld ms", s->watchdog_ms);
		loop_timer_start(&s->ping, s->watchdog_ms);
	}
}

void service_reloading(struct service *s)
{
	notify(s, "RELOADING=1", false);
}

void service_reloaded(struct service *s)
{
	notify(s, "READY=1", true);
}

void service_stopping(struct service *s)
{
	notify(s, "STOPPING=1", false);
}
