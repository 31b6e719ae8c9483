/*
 * loop.h - the daemon's one event loop: libwebsockets' default poll loop,
 * with libdbus' watches, timeouts and dispatching plugged into it, a
 * signalfd for SIGINT/SIGTERM, and one-shot timers for the other modules.
 * Nothing here polls or wakes up periodically: every wake-up is an fd event
 * or a timer someone asked for.
 */
#ifndef SW_LOOP_H
#define SW_LOOP_H

#include <stdbool.h>
#include <stdint.h>

#include <dbus/dbus.h>
#include <libwebsockets.h>

struct loop;

/* The raw-file protocol for adopted fds; put it in the vhost's protocol list. */
#define LOOP_PROTOCOL_NAME "spinewatch-loop"
extern const struct lws_protocols loop_protocol;

struct loop *loop_new(struct lws_context *ctx, struct lws_vhost *vh);
/* Detaches D-Bus and cancels timers; call before lws_context_destroy(). */
void loop_free(struct loop *l);

/* Plug a connection's watches/timeouts/dispatch into the loop. */
int loop_attach_dbus(struct loop *l, DBusConnection *conn);
void loop_detach_dbus(struct loop *l);

/* SIGINT/SIGTERM end loop_run(), SIGHUP calls the reload function if one
 * is set; call before any thread could exist. */
int loop_watch_signals(struct loop *l);
void loop_on_reload(struct loop *l, void (*fn)(void *user), void *user);

/*
 * SIGINT/SIGTERM call loop_stop(): with a stop function set, it is called
 * to wind down (say goodbye to clients) and the loop runs on until
 * loop_quit() or LOOP_STOP_GRACE_MS have passed; a second signal, or no
 * stop function, quits at once.
 */
#define LOOP_STOP_GRACE_MS 1000
void loop_on_stop(struct loop *l, void (*fn)(void *user), void *user);
void loop_stop(struct loop *l);

/* Runs until loop_quit() or a signal; returns the exit status given. */
int loop_run(struct loop *l);
void loop_quit(struct loop *l, int status);

/*
 * Watch a file descriptor for input (an AcquireNotify socket, say; or a dup
 * of the MQTT client's socket, with loop_fd_want_write() for output). The loop
 * takes the fd over and closes it. fn is called with LOOP_FD_IN when it is
 * readable and once with LOOP_FD_HUP when the peer hung up or it failed;
 * after LOOP_FD_HUP the handle is gone. loop_fd_close() closes it from our
 * side (no callback follows).
 */
#define LOOP_FD_IN  1u
#define LOOP_FD_HUP 2u
#define LOOP_FD_OUT 4u
struct loop_fd;
typedef void (*loop_fd_fn)(struct loop_fd *f, int fd, unsigned events, void *user);
struct loop_fd *loop_fd_add(struct loop *l, int fd, loop_fd_fn fn, void *user);
void loop_fd_close(struct loop_fd *f);
/*
 * Also watch it for output (a socket with data queued): while on, fn is
 * called with LOOP_FD_OUT when it is writable (asked for on the next loop
 * turn, as lws' raw-file role wants). fn may turn it off, or close the fd.
 */
void loop_fd_want_write(struct loop_fd *f, bool on);

/* One-shot timers (wrapping lws' sorted-usec lists). The struct is owned by
 * the caller and must stay alive (or be cancelled) while armed. */
struct loop_timer;
typedef void (*loop_timer_fn)(struct loop_timer *t);
struct loop_timer {
	lws_sorted_usec_list_t sul;  /* first: container_of from the sul */
	struct loop *loop;
	loop_timer_fn fn;
	void *user;
	bool armed;
};

void loop_timer_init(struct loop_timer *t, struct loop *l, loop_timer_fn fn, void *user);
void loop_timer_start(struct loop_timer *t, int64_t delay_ms);
void loop_timer_cancel(struct loop_timer *t);

#endif
