/*
 * alert_hook.c - the alert hook's child processes (see alert_hook.h):
 * posix_spawnp into a new process group, stdin a non-blocking pipe, reaped
 * through a pidfd watched by the loop, a timeout escalating SIGTERM ->
 * SIGKILL on the process group, bounded concurrency.
 */
#include "alert_hook.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "log.h"

#define RETRY_MIN_MS 5
#define RETRY_MAX_MS 50

extern char **environ;

struct child {
	struct alert_hook *h;
	uint64_t alert_id;
	pid_t pid;
	int64_t started_ms;
	struct loop_fd *pidw;          /* the pidfd's watch; NULL once it fired */
	int in_fd;                     /* stdin's write end, -1 when done */
	char *buf;                     /* stdin payload */
	size_t len, off;
	int64_t retry_ms;
	struct loop_timer retry;       /* stdin write retry */
	struct loop_timer timeout;     /* SIGTERM, then SIGKILL */
	int64_t grace_ms;
	bool term_sent, kill_sent;
	char *prog;                    /* argv[0], for log lines */
	struct child *next;
};

struct alert_hook {
	struct loop *loop;
	struct alert_hook_config cfg;
	char **argv;                   /* owned copy; cfg.argv points at it */
	struct child *children;
	unsigned running;
	struct alert_hook_stats stats;
	struct log_ratelimit rl_drop, rl_fail;
	alert_hook_done_fn done;
	void *done_user;
};

/* ---- configuration ------------------------------------------------------ */

void alert_hook_config_default(struct alert_hook_config *c)
{
	memset(c, 0, sizeof(*c));
	c->timeout_ms = 10000;
	c->kill_grace_ms = 2000;
	c->max_children = 4;
}

const char *alert_hook_config_check(const struct alert_hook_config *c)
{
	if (!c)
		return "alert hook: no configuration";
	if (c->argv && c->argv[0] && !c->argv[0][0])
		return "argv: the hook's program name is empty";
	if (c->timeout_ms < 100 || c->timeout_ms > 600000)
		return "timeout_ms: must be 100 ms to 10 minutes";
	if (c->kill_grace_ms < 100 || c->kill_grace_ms > 60000)
		return "kill_grace_ms: must be 100 ms to 60 s";
	if (c->max_children < 1 || c->max_children > 64)
		return "max_children: must be 1 to 64";
	return NULL;
}

static void argv_free(char **argv)
{
	size_t i;

	for (i = 0; argv && argv[i]; i++)
		free(argv[i]);
	free(argv);
}

/* NULL with *err 0 for no hook */
static char **argv_copy(const char *const *argv, int *err)
{
	size_t n = 0, i;
	char **r;

	*err = 0;
	if (!argv || !argv[0])
		return NULL;
	while (argv[n])
		n++;
	r = calloc(n + 1, sizeof(*r));
	if (!r)
		goto oom;
	for (i = 0; i < n; i++)
		if (!(r[i] = strdup(argv[i])))
			goto oom;
	return r;
oom:
	argv_free(r);
	*err = -1;
	return NULL;
}

/* ---- JSON --------------------------------------------------------------- */

static json_t *ts_or_null(int64_t ts)
{
	return ts ? json_integer((json_int_t)ts) : json_null();
}

char *alert_hook_json(const struct alert *a, size_t *len)
{
	json_t *o = json_object(), *sensor = NULL, *msg;
	char *s = NULL;
	int bad = 0;

	if (!o)
		return NULL;
	sensor = a->sensor[0] ? json_string(a->sensor) : json_null();
	msg = json_string(a->message);
	if (!sensor || !msg) {
		json_decref(sensor);
		json_decref(msg);
		json_decref(o);
		return NULL;
	}
	bad |= json_object_set_new(o, "type", json_string("alert"));
	bad |= json_object_set_new(o, "id", json_integer((json_int_t)a->id));
	bad |= json_object_set_new(o, "rule", json_string(alert_rule_name(a->rule) ?
							  alert_rule_name(a->rule) : "unknown"));
	bad |= json_object_set_new(o, "state", json_string(alert_state_name(a->state)));
	bad |= json_object_set_new(o, "severity", json_string(alert_severity_name(a->severity)));
	bad |= json_object_set_new(o, "sensor", sensor);
	bad |= json_object_set_new(o, "message", msg);
	bad |= json_object_set_new(o, "raised_ts", ts_or_null(a->raised_ts));
	bad |= json_object_set_new(o, "acked_ts", ts_or_null(a->acked_ts));
	bad |= json_object_set_new(o, "cleared_ts", ts_or_null(a->cleared_ts));
	if (!bad)
		s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	if (s && len)
		*len = strlen(s);
	return s;
}

/* ---- children --------------------------------------------------------- */

static void child_free(struct child *c)
{
	struct child **pp;

	for (pp = &c->h->children; *pp; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	c->h->running--;
	c->h->stats.running = c->h->running;
	loop_timer_cancel(&c->retry);
	loop_timer_cancel(&c->timeout);
	loop_fd_close(c->pidw);
	if (c->in_fd >= 0)
		close(c->in_fd);
	free(c->buf);
	free(c->prog);
	free(c);
}

static void close_stdin(struct child *c)
{
	loop_timer_cancel(&c->retry);
	if (c->in_fd >= 0)
		close(c->in_fd);
	c->in_fd = -1;
}

/* Write what fits; 0 when done (or given up), 1 when more remains. */
static int write_stdin(struct child *c)
{
	while (c->off < c->len) {
		ssize_t n = write(c->in_fd, c->buf + c->off, c->len - c->off);

		if (n > 0) {
			c->off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 1;
		if (n < 0 && errno == EPIPE)
			log_debug("alert hook %s (alert %llu) closed its input after %zu of %zu bytes",
				  c->prog, (unsigned long long)c->alert_id, c->off, c->len);
		else
			log_warn("alert hook %s (alert %llu): writing its input: %s", c->prog,
				 (unsigned long long)c->alert_id, n < 0 ? strerror(errno) : "no progress");
		break;
	}
	close_stdin(c);
	return 0;
}

static void retry_fire(struct loop_timer *t)
{
	struct child *c = t->user;
	size_t before = c->off;

	if (c->in_fd < 0)
		return;
	if (write_stdin(c)) {
		/* the child is reading: come back soon; it is not: back off */
		if (c->off != before)
			c->retry_ms = RETRY_MIN_MS;
		else if ((c->retry_ms *= 2) > RETRY_MAX_MS)
			c->retry_ms = RETRY_MAX_MS;
		loop_timer_start(&c->retry, c->retry_ms);
	}
}

static void kill_group(struct child *c, int sig)
{
	/* the child is not reaped yet: its pid, and so its group id, is ours */
	if (kill(-c->pid, sig) < 0 && errno == ESRCH)
		kill(c->pid, sig);   /* it left its group */
}

static void timeout_fire(struct loop_timer *t)
{
	struct child *c = t->user;

	if (!c->term_sent) {
		c->term_sent = true;
		c->h->stats.timed_out++;
		log_warn("alert hook %s (alert %llu) still running after %lld ms: stopping it",
			 c->prog, (unsigned long long)c->alert_id, (long long)c->h->cfg.timeout_ms);
		kill_group(c, SIGTERM);
		loop_timer_start(&c->timeout, c->grace_ms);
	} else if (!c->kill_sent) {
		c->kill_sent = true;
		log_warn("alert hook %s (alert %llu) ignored SIGTERM: killing it", c->prog,
			 (unsigned long long)c->alert_id);
		kill_group(c, SIGKILL);
	}
}

static void log_exit(struct child *c, int st, int64_t ms)
{
	unsigned long long id = (unsigned long long)c->alert_id;

	if (st == -1)
		log_warn("alert hook %s (alert %llu): exit status unknown", c->prog, id);
	else if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && !c->term_sent)
		log_info("alert hook %s (alert %llu) done in %lld ms", c->prog, id, (long long)ms);
	else if (WIFEXITED(st))
		log_warn("alert hook %s (alert %llu) exited with status %d after %lld ms%s",
			 c->prog, id, WEXITSTATUS(st), (long long)ms,
			 c->term_sent ? " (timed out)" : "");
	else if (WIFSIGNALED(st))
		log_warn("alert hook %s (alert %llu) %s by SIG%s after %lld ms", c->prog, id,
			 c->term_sent ? "timed out, killed" : "killed",
			 sigabbrev_np(WTERMSIG(st)) ? sigabbrev_np(WTERMSIG(st)) : "?",
			 (long long)ms);
}

/* The pidfd is readable: the child has exited (a zombie until we reap). */
static void child_exited(struct loop_fd *f, int fd, unsigned events, void *user)
{
	struct child *c = user;
	struct alert_hook *h = c->h;
	struct alert_hook_result r;
	int st = -1;
	pid_t p;

	(void)f; (void)fd;
	if (events & LOOP_FD_IN)
		loop_fd_close(c->pidw);
	c->pidw = NULL;   /* after LOOP_FD_HUP the loop freed it */
	if (c->term_sent)
		kill_group(c, SIGKILL);   /* whatever it left behind */
	do
		p = waitpid(c->pid, &st, WNOHANG);
	while (p < 0 && errno == EINTR);
	if (p == 0) {
		/* woken without an exit (the watch failed): end it for sure */
		kill_group(c, SIGKILL);
		do
			p = waitpid(c->pid, &st, 0);
		while (p < 0 && errno == EINTR);
	}
	if (p != c->pid)
		st = -1;
	r.alert_id = c->alert_id;
	r.pid = c->pid;
	r.wait_status = st;
	r.timed_out = c->term_sent;
	r.elapsed_ms = clock_mono_ms() - c->started_ms;
	log_exit(c, st, r.elapsed_ms);
	if (st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0 && !c->term_sent)
		h->stats.exited_ok++;
	else
		h->stats.exited_fail++;
	child_free(c);
	if (h->done)
		h->done(&r, h->done_user);
}

/* an fd >= 3, close-on-exec, so dup2 onto 0 always clears the flag */
static int fd_high(int fd)
{
	int n;

	if (fd >= 3)
		return fd;
	n = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	close(fd);
	return n;
}

static int spawn(struct alert_hook *h, int in_fd, pid_t *pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t at;
	sigset_t none, all;
	int err;

	if (posix_spawn_file_actions_init(&fa))
		return ENOMEM;
	if (posix_spawnattr_init(&at)) {
		posix_spawn_file_actions_destroy(&fa);
		return ENOMEM;
	}
	sigemptyset(&none);
	sigfillset(&all);
	err = posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
	if (!err)
		err = posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
	if (!err)
		err = posix_spawn_file_actions_addclosefrom_np(&fa, 3);
	if (!err)
		err = posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
					       POSIX_SPAWN_SETSIGDEF);
	if (!err)
		err = posix_spawnattr_setpgroup(&at, 0);
	if (!err)
		err = posix_spawnattr_setsigmask(&at, &none);
	if (!err)
		err = posix_spawnattr_setsigdefault(&at, &all);
	if (!err)
		err = posix_spawnp(pid, h->argv[0], &fa, &at, h->argv, environ);
	posix_spawnattr_destroy(&at);
	posix_spawn_file_actions_destroy(&fa);
	return err;
}

int alert_hook_run_json(struct alert_hook *h, uint64_t alert_id, const char *json, size_t len)
{
	struct child *c;
	int p[2], err, pidfd;
	unsigned long long id = (unsigned long long)alert_id;

	if (!h->argv)
		return 1;
	if (h->running >= h->cfg.max_children) {
		h->stats.dropped++;
		log_rl(&h->rl_drop, LOG_WARNING, "alert hook: %u already running, alert %llu not "
		       "passed to it (%llu dropped so far)", h->running, id,
		       (unsigned long long)h->stats.dropped);
		return -1;
	}
	c = calloc(1, sizeof(*c));
	if (!c || !(c->prog = strdup(h->argv[0])) || !(c->buf = malloc(len + 1)))
		goto fail_mem;
	memcpy(c->buf, json, len);
	c->len = len;
	if (!len || json[len - 1] != '\n')
		c->buf[c->len++] = '\n';
	c->h = h;
	c->alert_id = alert_id;
	c->in_fd = -1;
	c->retry_ms = RETRY_MIN_MS;
	c->grace_ms = h->cfg.kill_grace_ms;
	loop_timer_init(&c->retry, h->loop, retry_fire, c);
	loop_timer_init(&c->timeout, h->loop, timeout_fire, c);

	if (pipe2(p, O_CLOEXEC) < 0) {
		log_rl(&h->rl_fail, LOG_WARNING, "alert hook: pipe: %s", strerror(errno));
		goto fail;
	}
	p[0] = fd_high(p[0]);
	p[1] = fd_high(p[1]);
	if (p[0] < 0 || p[1] < 0 || fcntl(p[1], F_SETFL, O_NONBLOCK) < 0) {
		log_rl(&h->rl_fail, LOG_WARNING, "alert hook: pipe: %s", strerror(errno));
		if (p[0] >= 0)
			close(p[0]);
		if (p[1] >= 0)
			close(p[1]);
		goto fail;
	}
	err = spawn(h, p[0], &c->pid);
	close(p[0]);
	if (err) {
		close(p[1]);
		log_rl(&h->rl_fail, LOG_WARNING, "alert hook: cannot run %s for alert %llu: %s",
		       c->prog, id, strerror(err));
		goto fail;
	}
	c->in_fd = p[1];
	c->started_ms = clock_mono_ms();
	c->next = h->children;
	h->children = c;
	h->running++;
	h->stats.running = h->running;
	h->stats.started++;

	pidfd = (int)syscall(SYS_pidfd_open, c->pid, 0);
	if (pidfd < 0)
		log_error("alert hook: pidfd_open: %s (Linux 5.3 or later needed)", strerror(errno));
	else if (!(c->pidw = loop_fd_add(h->loop, pidfd, child_exited, c)))
		log_error("alert hook: cannot watch the hook's process");
	if (!c->pidw) {
		/* cannot wait for it without blocking later: end it now */
		close_stdin(c);
		kill_group(c, SIGKILL);
		child_exited(NULL, -1, 0, c);
		return -1;
	}
	log_debug("alert hook %s started for alert %llu (pid %d)", c->prog, id, (int)c->pid);
	loop_timer_start(&c->timeout, h->cfg.timeout_ms);
	if (write_stdin(c))
		loop_timer_start(&c->retry, c->retry_ms);
	return 0;

fail_mem:
	log_rl(&h->rl_fail, LOG_WARNING, "alert hook: out of memory");
fail:
	h->stats.spawn_failed++;
	if (c) {
		free(c->buf);
		free(c->prog);
		free(c);
	}
	return -1;
}

int alert_hook_run(struct alert_hook *h, const struct alert *a)
{
	size_t len;
	char *json;
	int r;

	if (!h->argv)
		return 1;
	json = alert_hook_json(a, &len);
	if (!json) {
		h->stats.spawn_failed++;
		log_rl(&h->rl_fail, LOG_WARNING, "alert hook: cannot encode alert %llu",
		       (unsigned long long)a->id);
		return -1;
	}
	r = alert_hook_run_json(h, a->id, json, len);
	free(json);
	return r;
}

/* ---- the hook --------------------------------------------------------- */

struct alert_hook *alert_hook_new(struct loop *l, const struct alert_hook_config *cfg)
{
	struct alert_hook *h;
	struct sigaction sa;

	if (alert_hook_config_check(cfg))
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h)
		return NULL;
	h->loop = l;
	if (alert_hook_reconfigure(h, cfg)) {
		free(h);
		return NULL;
	}
	if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL)
		signal(SIGPIPE, SIG_IGN);
	return h;
}

int alert_hook_reconfigure(struct alert_hook *h, const struct alert_hook_config *cfg)
{
	char **argv;
	int err;

	if (alert_hook_config_check(cfg))
		return -1;
	argv = argv_copy(cfg->argv, &err);
	if (err)
		return -1;
	argv_free(h->argv);
	h->argv = argv;
	h->cfg = *cfg;
	h->cfg.argv = (const char *const *)h->argv;
	return 0;
}

void alert_hook_free(struct alert_hook *h)
{
	unsigned n = 0;

	if (!h)
		return;
	while (h->children) {
		struct child *c = h->children;
		pid_t p;

		kill_group(c, SIGKILL);
		do
			p = waitpid(c->pid, NULL, 0);
		while (p < 0 && errno == EINTR);
		child_free(c);
		n++;
	}
	if (n)
		log_info("alert hook: killed %u running hook%s", n, n == 1 ? "" : "s");
	argv_free(h->argv);
	free(h);
}

void alert_hook_on_done(struct alert_hook *h, alert_hook_done_fn fn, void *user)
{
	h->done = fn;
	h->done_user = user;
}

void alert_hook_get_stats(const struct alert_hook *h, struct alert_hook_stats *out)
{
	*out = h->stats;
	out->running = h->running;
}
