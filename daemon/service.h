/*
 * service.h - life under systemd (Type=notify), through libsystemd's
 * sd_notify: READY=1 once the feed listens and BlueZ tracking started,
 * STATUS= lines ("2 sensors streaming, 3 clients"), RELOADING=1 around a
 * SIGHUP reload, STOPPING=1 on shutdown, and WATCHDOG=1 pings sent by a
 * timer on the event loop itself at half of WatchdogSec=, so a stuck loop
 * stops pinging and systemd restarts the daemon. The status line is
 * refreshed with each ping and at ready and reload; with no
 * watchdog the loop has no timer here at all. Outside systemd (no
 * $NOTIFY_SOCKET) every call does nothing.
 */
#ifndef SW_SERVICE_H
#define SW_SERVICE_H

#include <stddef.h>

#include "loop.h"

/* Writes the current status line into buf (NUL-terminated). */
typedef void (*service_status_fn)(void *user, char *buf, size_t len);

struct service;

/* NULL on allocation failure. status may be NULL (no STATUS= lines). */
struct service *service_new(struct loop *loop, service_status_fn status, void *user);
void service_free(struct service *s);

/* READY=1 with the status, and starts the watchdog pings if asked for. */
void service_ready(struct service *s);
void service_reloading(struct service *s);
void service_reloaded(struct service *s);
void service_stopping(struct service *s);

#endif
