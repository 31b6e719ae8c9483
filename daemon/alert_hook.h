/*
 * alert_hook.h - runs an optional, configured command for each raised alert
 * with the alert as JSON on its standard input (like Netdata's alarm
 * notifications), without ever blocking the event loop.
 *
 * Owns: the hook's child processes, from spawn to reaping, and the alert's
 * JSON for hooks (alert_hook_json()).
 *
 * - The command is an argv array, no shell: argv[0] is looked up in PATH
 *   when it has no '/'. The environment is the daemon's. Each child runs in
 *   its own process group with default signal dispositions and an empty
 *   signal mask (the daemon blocks SIGTERM for its signalfd and ignores
 *   SIGPIPE; hooks must not inherit that).
 * - stdin: a pipe carrying one line, the alert's compact JSON and "\n",
 *   then end-of-file. Written non-blockingly: an alert's JSON (well under
 *   1 KiB) always fits the empty pipe in one write; a larger payload
 *   (alert_hook_run_json) is written as far as it fits and the rest retried
 *   on a short timer (5 ms, backing off to 50 ms; the loop watches fds for
 *   input only), until done, the child exits or the timeout.
 * - stdout goes to /dev/null; stderr is the daemon's (the journal under
 *   systemd), so a hook's complaints land next to our log lines.
 * - The child is reaped through a pidfd (pidfd_open, Linux >= 5.3) watched by
 *   the loop; its exit status is logged (info when 0, warning otherwise).
 * - Timeout (default 10 s): SIGTERM to the child's process group, then
 *   SIGKILL to the group after kill_grace_ms (default 2 s) if the child has
 *   not exited. After a timeout the group is also sent SIGKILL when the
 *   child exits (before it is reaped, so the group id cannot be reused), so
 *   nothing it started lingers.
 * - At most max_children (default 4) hooks run at once; an alert beyond that
 *   is not passed to the hook: counted, and logged rate-limited.
 * The process must not reap children with waitpid(-1) elsewhere.
 */
#ifndef SW_ALERT_HOOK_H
#define SW_ALERT_HOOK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "alerts.h"
#include "loop.h"

struct alert_hook_config {
	const char *const *argv;   /* NULL-terminated; NULL: no hook; copied */
	int64_t timeout_ms;        /* 10 000; 100 ms..10 min */
	int64_t kill_grace_ms;     /* 2 000; SIGTERM -> SIGKILL; 100 ms..60 s */
	unsigned max_children;     /* 4; 1..64 */
};

void alert_hook_config_default(struct alert_hook_config *c);
/* NULL if valid, else a static message starting with the bad field's name
 * ("timeout_ms: ..."). */
const char *alert_hook_config_check(const struct alert_hook_config *c);

/* Compact JSON of an alert, malloc'd, NUL-terminated, *len its length
 * (without "\n"); NULL on failure (a string not valid UTF-8, no memory):
 * {"type":"alert","id":7,"rule":"slouch-long","state":"raised",
 *  "severity":"info","sensor":"C0:FF:EE:00:00:01","message":"...",
 *  "raised_ts":1764064800000,"acked_ts":null,"cleared_ts":null}
 * sensor is null for a global alert; *_ts are epoch ms or null. */
char *alert_hook_json(const struct alert *a, size_t *len);

struct alert_hook;

/* How one run ended; given to the done callback. */
struct alert_hook_result {
	uint64_t alert_id;
	pid_t pid;
	int wait_status;           /* as from waitpid(); -1 if it could not be had */
	bool timed_out;            /* SIGTERM was sent */
	int64_t elapsed_ms;        /* monotonic, spawn to reap */
};
typedef void (*alert_hook_done_fn)(const struct alert_hook_result *r, void *user);

struct alert_hook_stats {
	uint64_t started, dropped, spawn_failed;
	uint64_t exited_ok, exited_fail, timed_out;
	unsigned running;
};

/* cfg must pass alert_hook_config_check() (NULL otherwise). Sets SIGPIPE to
 * ignored if it is at its default (a hook closing its stdin early must not
 * kill the daemon). */
struct alert_hook *alert_hook_new(struct loop *l, const struct alert_hook_config *cfg);
/* SIGKILLs every running hook's process group and reaps it (blocking only
 * for that). Call before loop_free()/lws_context_destroy(). */
void alert_hook_free(struct alert_hook *h);
/* New settings for later runs (SIGHUP); running hooks keep theirs. -1 if
 * invalid. */
int alert_hook_reconfigure(struct alert_hook *h, const struct alert_hook_config *cfg);
/* Optional: called after each started run has been reaped. */
void alert_hook_on_done(struct alert_hook *h, alert_hook_done_fn fn, void *user);

/* Start the hook for a raised alert. 0: started; 1: no hook configured;
 * -1: not started (limit reached, spawn or encoding failure; logged and
 * counted). */
int alert_hook_run(struct alert_hook *h, const struct alert *a);
/* The same with JSON the caller encoded (the feed's encoder, say); json
 * need not end in "\n" (one is added if missing); copied. */
int alert_hook_run_json(struct alert_hook *h, uint64_t alert_id, const char *json, size_t len);

void alert_hook_get_stats(const struct alert_hook *h, struct alert_hook_stats *out);

#endif
