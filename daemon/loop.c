/*
 * loop.c - one thread, one loop: libwebsockets' default poll loop drives
 * libdbus and the signalfd too.
 *
 * D-Bus: a dup() of every fd libdbus watches is adopted into lws as a raw
 * file (lws closes what it adopts; the original stays libdbus'). libdbus may
 * hand us two watches for one fd (read and write): they share one adopted
 * wsi, holding the union of their enabled flags. POLLIN interest follows the
 * read watch through rx flow control; POLLOUT is asked for with
 * lws_callback_on_writable() on the *next* loop turn (lws 4.1's raw-file role
 * clears POLLOUT after the writeable callback, so asking from inside it is
 * lost). DBusTimeouts are lws sorted-usec timers, re-armed before
 * dbus_timeout_handle() (which may free them). Dispatching never happens in
 * a watch callback or in the dispatch-status callback: those arm a zero-delay
 * timer, which dispatches a bounded batch and re-arms itself only while the
 * status is still DATA_REMAINS.
 */
#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "log.h"

#define DISPATCH_BATCH 64
#define WATCHES_PER_FD 4

enum src_type { SRC_DBUS_FD, SRC_SIGNAL, SRC_USER_FD };

/* What an adopted wsi's opaque user data points at. */
struct src {
	enum src_type type;
	struct loop *loop;
	struct lws *wsi;
};

struct dbus_fd {
	struct src src;               /* first */
	int fd;                       /* libdbus' own fd */
	DBusWatch *watch[WATCHES_PER_FD];
	unsigned n;
	struct loop_timer ask_write;  /* deferred lws_callback_on_writable */
	struct dbus_fd *next;
};

struct loop_fd {
	struct src src;               /* first */
	loop_fd_fn fn;
	void *user;
	bool want_write;
	struct loop_timer ask_write;  /* deferred lws_callback_on_writable */
};

struct dbus_to {
	struct loop_timer timer;
	DBusTimeout *timeout;
};

struct loop {
	struct lws_context *ctx;
	struct lws_vhost *vh;
	DBusConnection *conn;
	struct dbus_fd *fds;
	struct loop_timer dispatch;
	struct src sig;
	void (*reload)(void *user);
	void *reload_user;
	void (*stop)(void *user);
	void *stop_user;
	bool stopping;
	struct loop_timer stop_grace;
	bool quit;
	int status;
};

/* ---- timers ---------------------------------------------------------- */

static void timer_fire(lws_sorted_usec_list_t *sul)
{
	struct loop_timer *t = lws_container_of(sul, struct loop_timer, sul);

	t->armed = false;
	t->fn(t);
}

void loop_timer_init(struct loop_timer *t, struct loop *l, loop_timer_fn fn, void *user)
{
	memset(t, 0, sizeof(*t));
	t->loop = l;
	t->fn = fn;
	t->user = user;
}

void loop_timer_start(struct loop_timer *t, int64_t delay_ms)
{
	if (delay_ms < 0)
		delay_ms = 0;
	t->armed = true;
	lws_sul_schedule(t->loop->ctx, 0, &t->sul, timer_fire,
			 (lws_usec_t)delay_ms * LWS_US_PER_MS);
}

void loop_timer_cancel(struct loop_timer *t)
{
	if (!t->loop)
		return;
	lws_sul_cancel(&t->sul);
	t->armed = false;
}

/* ---- dispatching ------------------------------------------------------- */

static void arm_dispatch(struct loop *l)
{
	if (l->conn && !l->dispatch.armed)
		loop_timer_start(&l->dispatch, 0);
}

static void check_dispatch(struct loop *l)
{
	if (l->conn && dbus_connection_get_dispatch_status(l->conn) == DBUS_DISPATCH_DATA_REMAINS)
		arm_dispatch(l);
}

static void dispatch_fire(struct loop_timer *t)
{
	struct loop *l = t->user;
	int i;

	if (!l->conn)
		return;
	dbus_connection_ref(l->conn);
	for (i = 0; i < DISPATCH_BATCH; i++)
		if (dbus_connection_dispatch(l->conn) != DBUS_DISPATCH_DATA_REMAINS)
			break;
	dbus_connection_unref(l->conn);
	/* more than one batch queued: leave the rest for the next turn */
	check_dispatch(l);
}

static void dispatch_status_changed(DBusConnection *conn, DBusDispatchStatus status, void *data)
{
	(void)conn;
	if (status == DBUS_DISPATCH_DATA_REMAINS)
		arm_dispatch(data);
}

/* ---- watches ----------------------------------------------------------- */

static unsigned enabled_flags(const struct dbus_fd *d)
{
	unsigned f = 0, i;

	for (i = 0; i < d->n; i++)
		if (dbus_watch_get_enabled(d->watch[i]))
			f |= dbus_watch_get_flags(d->watch[i]);
	return f;
}

static void ask_write_fire(struct loop_timer *t)
{
	struct dbus_fd *d = t->user;

	if (d->src.wsi && (enabled_flags(d) & DBUS_WATCH_WRITABLE))
		lws_callback_on_writable(d->src.wsi);
}

static void fd_sync(struct dbus_fd *d)
{
	unsigned f = enabled_flags(d);

	if (!d->src.wsi)
		return;
	lws_rx_flow_control(d->src.wsi, (f & DBUS_WATCH_READABLE) ? 1 : 0);
	if ((f & DBUS_WATCH_WRITABLE) && !d->ask_write.armed)
		loop_timer_start(&d->ask_write, 0);
}

static struct dbus_fd *fd_lookup(struct loop *l, int fd)
{
	struct dbus_fd *d;

	for (d = l->fds; d; d = d->next)
		if (d->fd == fd)
			return d;
	return NULL;
}

static struct dbus_fd *fd_new(struct loop *l, int fd)
{
	struct dbus_fd *d = calloc(1, sizeof(*d));
	lws_sock_file_fd_type u;
	int dupfd;

	if (!d)
		return NULL;
	dupfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	if (dupfd < 0) {
		log_error("loop: dup of D-Bus fd %d: %s", fd, strerror(errno));
		free(d);
		return NULL;
	}
	u.filefd = dupfd;
	/* on failure lws closes dupfd */
	d->src.wsi = lws_adopt_descriptor_vhost(l->vh, LWS_ADOPT_RAW_FILE_DESC, u,
						LOOP_PROTOCOL_NAME, NULL);
	if (!d->src.wsi) {
		log_error("loop: cannot adopt D-Bus fd %d into the event loop", fd);
		free(d);
		return NULL;
	}
	d->src.type = SRC_DBUS_FD;
	d->src.loop = l;
	d->fd = fd;
	loop_timer_init(&d->ask_write, l, ask_write_fire, d);
	lws_set_opaque_user_data(d->src.wsi, &d->src);
	d->next = l->fds;
	l->fds = d;
	return d;
}

static void fd_free(struct loop *l, struct dbus_fd *d)
{
	struct dbus_fd **pp;

	for (pp = &l->fds; *pp; pp = &(*pp)->next)
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	loop_timer_cancel(&d->ask_write);
	if (d->src.wsi) {
		/* lws closes the dup'd fd; the close callback finds no src */
		lws_set_opaque_user_data(d->src.wsi, NULL);
		lws_set_timeout(d->src.wsi, 1, LWS_TO_KILL_ASYNC);
	}
	free(d);
}

static dbus_bool_t watch_add(DBusWatch *w, void *data)
{
	struct loop *l = data;
	int fd = dbus_watch_get_unix_fd(w);
	struct dbus_fd *d = fd_lookup(l, fd);

	if (!d)
		d = fd_new(l, fd);
	if (!d || d->n >= WATCHES_PER_FD)
		return FALSE;
	d->watch[d->n++] = w;
	dbus_watch_set_data(w, d, NULL);
	fd_sync(d);
	return TRUE;
}

static void watch_remove(DBusWatch *w, void *data)
{
	struct dbus_fd *d = dbus_watch_get_data(w);
	unsigned i;

	(void)data;
	if (!d)
		return;
	dbus_watch_set_data(w, NULL, NULL);
	for (i = 0; i < d->n; i++)
		if (d->watch[i] == w) {
			d->watch[i] = d->watch[--d->n];
			break;
		}
	if (d->n == 0)
		fd_free(d->src.loop, d);
	else
		fd_sync(d);
}

static void watch_toggled(DBusWatch *w, void *data)
{
	struct dbus_fd *d = dbus_watch_get_data(w);

	(void)data;
	if (d)
		fd_sync(d);
}

/*
 * Hand one readiness condition to the first enabled watch that wants it.
 * dbus_watch_handle() may remove watches and free d: touch nothing after.
 */
static void fd_handle(struct dbus_fd *d, unsigned cond)
{
	unsigned i;

	for (i = 0; i < d->n; i++) {
		DBusWatch *w = d->watch[i];
		unsigned f = dbus_watch_get_flags(w);

		if (!dbus_watch_get_enabled(w))
			continue;
		if ((cond & f) || (cond & (DBUS_WATCH_HANGUP | DBUS_WATCH_ERROR))) {
			dbus_watch_handle(w, cond & (f | DBUS_WATCH_HANGUP | DBUS_WATCH_ERROR));
			return;
		}
	}
}

/* ---- timeouts ---------------------------------------------------------- */

static void timeout_fire(struct loop_timer *t)
{
	struct dbus_to *to = t->user;
	struct loop *l = t->loop;

	/* re-arm first: dbus_timeout_handle() may remove (and free) it */
	loop_timer_start(&to->timer, dbus_timeout_get_interval(to->timeout));
	dbus_timeout_handle(to->timeout);
	check_dispatch(l);
}

static dbus_bool_t timeout_add(DBusTimeout *timeout, void *data)
{
	struct dbus_to *to = calloc(1, sizeof(*to));

	if (!to)
		return FALSE;
	to->timeout = timeout;
	loop_timer_init(&to->timer, data, timeout_fire, to);
	dbus_timeout_set_data(timeout, to, NULL);
	if (dbus_timeout_get_enabled(timeout))
		loop_timer_start(&to->timer, dbus_timeout_get_interval(timeout));
	return TRUE;
}

static void timeout_remove(DBusTimeout *timeout, void *data)
{
	struct dbus_to *to = dbus_timeout_get_data(timeout);

	(void)data;
	if (!to)
		return;
	loop_timer_cancel(&to->timer);
	dbus_timeout_set_data(timeout, NULL, NULL);
	free(to);
}

static void timeout_toggled(DBusTimeout *timeout, void *data)
{
	struct dbus_to *to = dbus_timeout_get_data(timeout);

	(void)data;
	if (!to)
		return;
	if (dbus_timeout_get_enabled(timeout))
		loop_timer_start(&to->timer, dbus_timeout_get_interval(timeout));
	else
		loop_timer_cancel(&to->timer);
}

/* ---- the raw-file protocol --------------------------------------------- */

static void signal_read(struct src *s)
{
	struct signalfd_siginfo si;
	int fd = lws_get_socket_fd(s->wsi);

	while (read(fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
		if (si.ssi_signo == SIGHUP) {
			log_info("received %s, reloading the settings", strsignal((int)si.ssi_signo));
			if (s->loop->reload)
				s->loop->reload(s->loop->reload_user);
			continue;
		}
		log_info("received %s, stopping", strsignal((int)si.ssi_signo));
		loop_stop(s->loop);
	}
}

static int loop_callback(struct lws *wsi, enum lws_callback_reasons reason,
			 void *user, void *in, size_t len)
{
	struct src *s = lws_get_opaque_user_data(wsi);
	struct loop *l;

	(void)user; (void)in; (void)len;
	if (!s)
		return 0;
	l = s->loop;
	if (s->type == SRC_USER_FD) {
		struct loop_fd *f = (struct loop_fd *)s;

		if (reason == LWS_CALLBACK_RAW_RX_FILE) {
			f->fn(f, lws_get_socket_fd(wsi), LOOP_FD_IN, f->user);
		} else if (reason == LWS_CALLBACK_RAW_WRITEABLE_FILE) {
			if (!f->want_write)
				return 0;
			/* ask again next turn while still wanted (fn may free f: arm first) */
			if (!f->ask_write.armed)
				loop_timer_start(&f->ask_write, 0);
			f->fn(f, lws_get_socket_fd(wsi), LOOP_FD_OUT, f->user);
		} else if (reason == LWS_CALLBACK_RAW_CLOSE_FILE) {
			lws_set_opaque_user_data(wsi, NULL);
			loop_timer_cancel(&f->ask_write);
			f->fn(f, -1, LOOP_FD_HUP, f->user);
			free(f);
		}
		return 0;
	}
	switch (reason) {
	case LWS_CALLBACK_RAW_RX_FILE:
		if (s->type == SRC_SIGNAL)
			signal_read(s);
		else
			fd_handle((struct dbus_fd *)s, DBUS_WATCH_READABLE);
		check_dispatch(l);
		break;
	case LWS_CALLBACK_RAW_WRITEABLE_FILE:
		if (s->type == SRC_DBUS_FD) {
			struct dbus_fd *d = (struct dbus_fd *)s;

			/* ask again next turn if libdbus still has output queued */
			if (!d->ask_write.armed)
				loop_timer_start(&d->ask_write, 0);
			fd_handle(d, DBUS_WATCH_WRITABLE);
			check_dispatch(l);
		}
		break;
	case LWS_CALLBACK_RAW_CLOSE_FILE:
		s->wsi = NULL;
		if (s->type == SRC_DBUS_FD) {
			log_warn("D-Bus connection hung up");
			fd_handle((struct dbus_fd *)s, DBUS_WATCH_HANGUP);
			check_dispatch(l);
		}
		break;
	default:
		break;
	}
	return 0;
}

const struct lws_protocols loop_protocol = {
	LOOP_PROTOCOL_NAME, loop_callback, 0, 0, 0, NULL, 0
};

/* ---- user fds ------------------------------------------------------------ */

static void user_ask_write_fire(struct loop_timer *t)
{
	struct loop_fd *f = t->user;

	if (f->src.wsi && f->want_write)
		lws_callback_on_writable(f->src.wsi);
}

void loop_fd_want_write(struct loop_fd *f, bool on)
{
	if (!f)
		return;
	f->want_write = on;
	if (on && !f->ask_write.armed)
		loop_timer_start(&f->ask_write, 0);
}

struct loop_fd *loop_fd_add(struct loop *l, int fd, loop_fd_fn fn, void *user)
{
	struct loop_fd *f = calloc(1, sizeof(*f));
	lws_sock_file_fd_type u;

	if (!f) {
		close(fd);
		return NULL;
	}
	u.filefd = fd;
	f->src.type = SRC_USER_FD;
	f->src.loop = l;
	f->fn = fn;
	f->user = user;
	loop_timer_init(&f->ask_write, l, user_ask_write_fire, f);
	/* on failure lws closes fd */
	f->src.wsi = lws_adopt_descriptor_vhost(l->vh, LWS_ADOPT_RAW_FILE_DESC, u,
						LOOP_PROTOCOL_NAME, NULL);
	if (!f->src.wsi) {
		free(f);
		return NULL;
	}
	lws_set_opaque_user_data(f->src.wsi, &f->src);
	return f;
}

void loop_fd_close(struct loop_fd *f)
{
	if (!f)
		return;
	loop_timer_cancel(&f->ask_write);
	if (f->src.wsi) {
		/* lws closes the fd; the close callback finds no src */
		lws_set_opaque_user_data(f->src.wsi, NULL);
		lws_set_timeout(f->src.wsi, 1, LWS_TO_KILL_ASYNC);
	}
	free(f);
}

/* ---- public ------------------------------------------------------------- */

struct loop *loop_new(struct lws_context *ctx, struct lws_vhost *vh)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->ctx = ctx;
	l->vh = vh;
	loop_timer_init(&l->dispatch, l, dispatch_fire, l);
	return l;
}

int loop_attach_dbus(struct loop *l, DBusConnection *conn)
{
	l->conn = conn;
	if (!dbus_connection_set_watch_functions(conn, watch_add, watch_remove,
						 watch_toggled, l, NULL) ||
	    !dbus_connection_set_timeout_functions(conn, timeout_add, timeout_remove,
						   timeout_toggled, l, NULL)) {
		loop_detach_dbus(l);
		return -1;
	}
	dbus_connection_set_dispatch_status_function(conn, dispatch_status_changed, l, NULL);
	check_dispatch(l);
	return 0;
}

void loop_detach_dbus(struct loop *l)
{
	if (!l->conn)
		return;
	dbus_connection_set_dispatch_status_function(l->conn, NULL, NULL, NULL);
	/* replacing the functions removes every watch and timeout through ours */
	dbus_connection_set_watch_functions(l->conn, NULL, NULL, NULL, NULL, NULL);
	dbus_connection_set_timeout_functions(l->conn, NULL, NULL, NULL, NULL, NULL);
	loop_timer_cancel(&l->dispatch);
	while (l->fds)
		fd_free(l, l->fds);
	l->conn = NULL;
}

int loop_watch_signals(struct loop *l)
{
	lws_sock_file_fd_type u;
	sigset_t mask;
	int fd;

	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
		return -1;
	fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (fd < 0)
		return -1;
	u.filefd = fd;
	l->sig.type = SRC_SIGNAL;
	l->sig.loop = l;
	l->sig.wsi = lws_adopt_descriptor_vhost(l->vh, LWS_ADOPT_RAW_FILE_DESC, u,
						LOOP_PROTOCOL_NAME, NULL);
	if (!l->sig.wsi)
		return -1;
	lws_set_opaque_user_data(l->sig.wsi, &l->sig);
	return 0;
}

void loop_on_reload(struct loop *l, void (*fn)(void *user), void *user)
{
	l->reload = fn;
	l->reload_user = user;
}

void loop_on_stop(struct loop *l, void (*fn)(void *user), void *user)
{
	l->stop = fn;
	l->stop_user = user;
}

static void stop_grace_fire(struct loop_timer *t)
{
	loop_quit(t->user, 0);
}

void loop_stop(struct loop *l)
{
	if (l->stopping || !l->stop) {
		loop_quit(l, 0);   /* a second signal, or nothing to wind down */
		return;
	}
	l->stopping = true;
	loop_timer_init(&l->stop_grace, l, stop_grace_fire, l);
	loop_timer_start(&l->stop_grace, LOOP_STOP_GRACE_MS);
	l->stop(l->stop_user);
}

int loop_run(struct loop *l)
{
	while (!l->quit)
		if (lws_service(l->ctx, 0) < 0) {
			log_error("event loop failed");
			return 1;
		}
	return l->status;
}

void loop_quit(struct loop *l, int status)
{
	if (l->stopping)
		loop_timer_cancel(&l->stop_grace);
	if (!l->quit)
		l->status = status;
	l->quit = true;
	lws_cancel_service(l->ctx);
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	loop_detach_dbus(l);
	if (l->sig.wsi) {
		lws_set_opaque_user_data(l->sig.wsi, NULL);
		l->sig.wsi = NULL;
	}
	free(l);
}
