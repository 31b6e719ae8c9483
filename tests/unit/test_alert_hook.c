/*
 * test_alert_hook.c - daemon/alert_hook.c against real processes on a real
 * event loop (a minimal lws context with the loop's raw-file protocol, and
 * SIGINT/SIGTERM blocked and SIGPIPE ignored as in the daemon): the alert
 * JSON arriving on a hook's stdin, a large payload written in pieces, exit
 * statuses, the timeout (SIGTERM, then SIGKILL for a hook ignoring it, and
 * the hook's own children), a command that does not exist, the concurrency
 * limit, and killing what still runs at free. Every wait is bounded by a
 * loop timer; nothing asserts on how long things took.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <libwebsockets.h>

#include "alert_hook.h"
#include "log.h"
#include "loop.h"
#include "loop_fixture.h"

#define WAIT_MS 15000   /* upper bound for any wait; normally far shorter */
#define MAX_DONE 32

struct tfx {
	struct loop_fixture lf;   /* lws context, vhost and the loop */
	struct alert_hook *h;
	char dir[64];
	struct alert_hook_result done[MAX_DONE];
	size_t n_done;
	size_t want_done;   /* wait_done()'s n */
	int fds_before;
};

static void on_done(const struct alert_hook_result *r, void *user)
{
	struct tfx *t = user;

	assert_true(t->n_done < MAX_DONE);
	t->done[t->n_done++] = *r;
}

static int setup(void **state)
{
	static struct tfx t;

	memset(&t, 0, sizeof(t));
	t.fds_before = loop_fixture_count_fds();
	assert_int_equal(loop_fixture_open(&t.lf), 0);
	/* as the daemon: SIGTERM blocked (signalfd), SIGPIPE ignored */
	assert_int_equal(loop_watch_signals(t.lf.loop), 0);
	strcpy(t.dir, "/tmp/sw-hook-XXXXXX");
	assert_non_null(mkdtemp(t.dir));
	*state = &t;
	return 0;
}

static int teardown(void **state)
{
	struct tfx *t = *state;
	char cmd[128];

	alert_hook_free(t->h);
	t->h = NULL;
	loop_fixture_close(&t->lf);
	/* every pipe, pidfd and adopted fd closed */
	assert_int_equal(loop_fixture_count_fds(), t->fds_before);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", t->dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static bool all_done(void *arg)
{
	struct tfx *t = arg;

	return t->n_done >= t->want_done;
}

/* Run the loop until n runs are done or WAIT_MS passed. */
static void wait_done(struct tfx *t, size_t n)
{
	t->want_done = n;
	loop_fixture_run(&t->lf, WAIT_MS, all_done, t);
	assert_int_equal(t->n_done, n);
}

static void hook_start(struct tfx *t, const char *const *argv, int64_t timeout_ms,
		       int64_t grace_ms, unsigned max)
{
	struct alert_hook_config c;

	alert_hook_config_default(&c);
	c.argv = argv;
	if (timeout_ms)
		c.timeout_ms = timeout_ms;
	if (grace_ms)
		c.kill_grace_ms = grace_ms;
	if (max)
		c.max_children = max;
	assert_null(alert_hook_config_check(&c));
	t->h = alert_hook_new(t->lf.loop, &c);
	assert_non_null(t->h);
	alert_hook_on_done(t->h, on_done, t);
}

static struct alert sample_alert(uint64_t id, const char *sensor)
{
	struct alert a;

	memset(&a, 0, sizeof(a));
	a.id = id;
	a.rule = ALERT_GRINDING;
	strcpy(a.sensor, sensor);
	a.severity = ALERT_WARNING;
	a.state = ALERT_RAISED;
	strcpy(a.message, "Grinding sounds keep coming back as you move. It's worth "
	       "talking to a \"physio\" \xe2\x80\x94 or a doctor.");
	a.raised_ts = 1764064800000LL;
	return a;
}

static char *slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	long n;

	assert_non_null(f);
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	rewind(f);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	buf[n] = '\0';
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* a process that is gone or a zombie (nobody may reap it in a container) */
static bool process_dead(pid_t pid)
{
	char path[64], stat[256];
	FILE *f;
	char *p;
	bool dead;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return true;
	dead = !fgets(stat, sizeof(stat), f);
	fclose(f);
	if (dead)
		return true;
	p = strrchr(stat, ')');
	return p && (p[2] == 'Z' || p[2] == 'X');
}

static bool wait_dead(pid_t pid)
{
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	int i;

	for (i = 0; i < WAIT_MS / 10; i++) {
		if (process_dead(pid))
			return true;
		nanosleep(&ts, NULL);
	}
	return false;
}

/* ---- tests --------------------------------------------------------------- */

static void test_config(void **state)
{
	struct alert_hook_config c;
	const char *empty[] = { "", NULL };

	(void)state;
	alert_hook_config_default(&c);
	assert_null(alert_hook_config_check(&c));
	assert_null(c.argv);
	assert_int_equal(c.timeout_ms, 10000);
	assert_int_equal(c.kill_grace_ms, 2000);
	assert_int_equal(c.max_children, 4);
	c.timeout_ms = 99;
	assert_string_equal(alert_hook_config_check(&c), "timeout_ms: must be 100 ms to 10 minutes");
	alert_hook_config_default(&c);
	c.kill_grace_ms = 60001;
	assert_true(!strncmp(alert_hook_config_check(&c), "kill_grace_ms:", 14));
	alert_hook_config_default(&c);
	c.max_children = 0;
	assert_true(!strncmp(alert_hook_config_check(&c), "max_children:", 13));
	alert_hook_config_default(&c);
	c.argv = empty;
	assert_true(!strncmp(alert_hook_config_check(&c), "argv:", 5));
	assert_null(alert_hook_new(NULL, &c));
}

static void test_json(void **state)
{
	struct alert a = sample_alert(7, "C0:FF:EE:00:00:02");
	size_t len;
	char *s;

	(void)state;
	s = alert_hook_json(&a, &len);
	assert_non_null(s);
	assert_int_equal(strlen(s), len);
	assert_string_equal(s, "{\"type\":\"alert\",\"id\":7,\"rule\":\"grinding\",\"state\":\"raised\","
			    "\"severity\":\"warning\",\"sensor\":\"C0:FF:EE:00:00:02\",\"message\":"
			    "\"Grinding sounds keep coming back as you move. It's worth talking to a "
			    "\\\"physio\\\" \xe2\x80\x94 or a doctor.\",\"raised_ts\":1764064800000,"
			    "\"acked_ts\":null,\"cleared_ts\":null}");
	free(s);
	/* global, acknowledged */
	a = sample_alert(8, "");
	a.rule = ALERT_NO_BREAK;
	a.state = ALERT_ACKNOWLEDGED;
	a.acked_ts = 1764064801000LL;
	s = alert_hook_json(&a, NULL);
	assert_non_null(strstr(s, "\"rule\":\"no-break\",\"state\":\"acknowledged\""));
	assert_non_null(strstr(s, "\"sensor\":null"));
	assert_non_null(strstr(s, "\"acked_ts\":1764064801000,\"cleared_ts\":null}"));
	free(s);
	/* not UTF-8: refused */
	a.message[0] = (char)0xff;
	assert_null(alert_hook_json(&a, NULL));
}

static void test_no_hook(void **state)
{
	struct tfx *t = *state;
	struct alert a = sample_alert(1, "");
	struct alert_hook_stats st;

	hook_start(t, NULL, 0, 0, 0);
	assert_int_equal(alert_hook_run(t->h, &a), 1);
	alert_hook_get_stats(t->h, &st);
	assert_int_equal(st.started, 0);
}

/* the alert arrives on stdin as one JSON line */
static void test_stdin(void **state)
{
	struct tfx *t = *state;
	struct alert a = sample_alert(42, "C0:FF:EE:00:00:02");
	struct alert_hook_stats st;
	char path[128], *got;
	const char *argv[] = { "/bin/sh", "-c", "cat > \"$1\"", "hook", path, NULL };
	json_error_t jerr;
	json_t *j;
	size_t len;

	snprintf(path, sizeof(path), "%s/alert.json", t->dir);
	hook_start(t, argv, 0, 0, 0);
	assert_int_equal(alert_hook_run(t->h, &a), 0);
	wait_done(t, 1);
	assert_int_equal(t->done[0].alert_id, 42);
	assert_true(WIFEXITED(t->done[0].wait_status));
	assert_int_equal(WEXITSTATUS(t->done[0].wait_status), 0);
	assert_false(t->done[0].timed_out);
	got = slurp(path, &len);
	assert_true(len > 1 && got[len - 1] == '\n');
	assert_null(memchr(got, '\n', len - 1));
	j = json_loads(got, 0, &jerr);
	assert_non_null(j);
	assert_string_equal(json_string_value(json_object_get(j, "type")), "alert");
	assert_int_equal(json_integer_value(json_object_get(j, "id")), 42);
	assert_string_equal(json_string_value(json_object_get(j, "rule")), "grinding");
	assert_string_equal(json_string_value(json_object_get(j, "sensor")), "C0:FF:EE:00:00:02");
	assert_string_equal(json_string_value(json_object_get(j, "message")), a.message);
	assert_int_equal(json_integer_value(json_object_get(j, "raised_ts")), 1764064800000LL);
	json_decref(j);
	free(got);
	alert_hook_get_stats(t->h, &st);
	assert_int_equal(st.started, 1);
	assert_int_equal(st.exited_ok, 1);
	assert_int_equal(st.running, 0);
}

/* 1 MiB: more than a pipe holds; written as the child reads */
static void test_large_payload(void **state)
{
	struct tfx *t = *state;
	char path[128], *got, *big;
	const char *argv[] = { "/bin/sh", "-c", "sleep 0.2; cat > \"$1\"", "hook", path, NULL };
	size_t len, n = 1 << 20, i;

	snprintf(path, sizeof(path), "%s/big", t->dir);
	big = malloc(n);
	assert_non_null(big);
	for (i = 0; i < n; i++)
		big[i] = (char)('a' + i % 26);
	hook_start(t, argv, 0, 0, 0);
	assert_int_equal(alert_hook_run_json(t->h, 9, big, n), 0);
	wait_done(t, 1);
	assert_int_equal(WEXITSTATUS(t->done[0].wait_status), 0);
	got = slurp(path, &len);
	assert_int_equal(len, n + 1);
	assert_memory_equal(got, big, n);
	assert_int_equal(got[n], '\n');
	free(got);
	free(big);
}

/* a hook that does not read its input and fails: EPIPE is no problem */
static void test_exit_status(void **state)
{
	struct tfx *t = *state;
	const char *argv[] = { "/bin/sh", "-c", "exit 3", NULL };
	struct alert_hook_stats st;
	char *big = calloc(1, 256 * 1024);

	assert_non_null(big);
	memset(big, 'x', 256 * 1024);
	hook_start(t, argv, 0, 0, 0);
	assert_int_equal(alert_hook_run_json(t->h, 1, big, 256 * 1024), 0);
	free(big);
	wait_done(t, 1);
	assert_true(WIFEXITED(t->done[0].wait_status));
	assert_int_equal(WEXITSTATUS(t->done[0].wait_status), 3);
	alert_hook_get_stats(t->h, &st);
	assert_int_equal(st.exited_fail, 1);
	assert_int_equal(st.exited_ok, 0);
	assert_int_equal(st.running, 0);
}

/* still running at the timeout: SIGTERM to the group (not blocked in the child) */
static void test_timeout_term(void **state)
{
	struct tfx *t = *state;
	const char *argv[] = { "sleep", "30", NULL };   /* found in PATH */
	struct alert a = sample_alert(5, "");
	struct alert_hook_stats st;

	hook_start(t, argv, 200, 5000, 0);
	assert_int_equal(alert_hook_run(t->h, &a), 0);
	wait_done(t, 1);
	assert_true(t->done[0].timed_out);
	assert_true(WIFSIGNALED(t->done[0].wait_status));
	assert_int_equal(WTERMSIG(t->done[0].wait_status), SIGTERM);
	alert_hook_get_stats(t->h, &st);
	assert_int_equal(st.timed_out, 1);
	assert_int_equal(st.exited_fail, 1);
}

/* ignoring SIGTERM: SIGKILL after the grace; what it started dies too */
static void test_timeout_kill_group(void **state)
{
	struct tfx *t = *state;
	char path[128], *got;
	const char *argv[] = { "/bin/sh", "-c",
			       "trap '' TERM; sleep 30 & echo $! > \"$1\"; wait",
			       "hook", path, NULL };
	struct alert a = sample_alert(6, "");
	size_t len;
	pid_t grandchild;

	snprintf(path, sizeof(path), "%s/pid", t->dir);
	hook_start(t, argv, 1000, 200, 0);
	assert_int_equal(alert_hook_run(t->h, &a), 0);
	wait_done(t, 1);
	assert_true(t->done[0].timed_out);
	assert_true(WIFSIGNALED(t->done[0].wait_status));
	assert_int_equal(WTERMSIG(t->done[0].wait_status), SIGKILL);
	got = slurp(path, &len);
	grandchild = (pid_t)atoi(got);
	free(got);
	assert_true(grandchild > 0);
	assert_true(wait_dead(grandchild));
}

static void test_nonexistent(void **state)
{
	struct tfx *t = *state;
	const char *abs_argv[] = { "/nonexistent/spinewatch-hook", NULL };
	const char *path_argv[] = { "spinewatch-no-such-hook", "x", NULL };
	struct alert a = sample_alert(1, "");
	struct alert_hook_stats st;
	struct alert_hook_config c;

	hook_start(t, abs_argv, 0, 0, 0);
	assert_int_equal(alert_hook_run(t->h, &a), -1);
	alert_hook_config_default(&c);
	c.argv = path_argv;
	assert_int_equal(alert_hook_reconfigure(t->h, &c), 0);
	assert_int_equal(alert_hook_run(t->h, &a), -1);
	alert_hook_get_stats(t->h, &st);
	assert_int_equal(st.spawn_failed, 2);
	assert_int_equal(st.started, 0);
	assert_int_equal(st.running, 0);
	assert_int_equal(t->n_done, 0);
}

/* at most max_children at once; the rest dropped and counted */
static void test_concurrency(void **state)
{
	struct tfx *t = *state;
	const char *argv[] = { "/bin/sh", "-c", "cat > /dev/null", NULL };
	struct alert a = sample_alert(1, "");
	struct alert_hook_stats st;
	int i;

	hook_start(t, argv, 0, 0, 2);
	/* children are reaped only in the loop: none can finish in between */
	assert_int_equal(alert_hook_run(t->h, &a), 0);
	a.id = 2;
	assert_int_equal(alert_hook_run(t->h, &a), 0);
	for (i = 0; i < 10; i++) {
		a.id = 3 + (uint64_t)i;
		assert_int_equal(alert_hook_run(t->h, &a), -1);
	}
	alert_hook_get_stats(t->h, &st);
	assert_int_equal(st.running, 2);
	assert_int_equal(st.started, 2);
	assert_int_equal(st.dropped, 10);
	wait_done(t, 2);
	assert_true(t->done[0].alert_id + t->done[1].alert_id == 3);
	/* room again */
	a.id = 20;
	assert_int_equal(alert_hook_run(t->h, &a), 0);
	wait_done(t, 3);
	assert_int_equal(t->done[2].alert_id, 20);
	alert_hook_get_stats(t->h, &st);
	assert_int_equal(st.exited_ok, 3);
	assert_int_equal(st.dropped, 10);
	assert_int_equal(st.running, 0);
}

/* free kills and reaps what still runs */
static void test_free_kills(void **state)
{
	struct tfx *t = *state;
	char path[128], *got;
	const char *argv[] = { "/bin/sh", "-c", "echo $$ > \"$1\"; exec sleep 30", "hook",
			       path, NULL };
	struct alert a = sample_alert(1, "");
	struct stat sb;
	struct timespec ts = { 0, 10 * 1000 * 1000 };
	size_t len;
	pid_t pid;
	int i;

	snprintf(path, sizeof(path), "%s/pid", t->dir);
	hook_start(t, argv, 0, 0, 0);
	assert_int_equal(alert_hook_run(t->h, &a), 0);
	/* wait (bounded) for the child to say who it is */
	for (i = 0; i < WAIT_MS / 10; i++) {
		if (stat(path, &sb) == 0 && sb.st_size > 0)
			break;
		nanosleep(&ts, NULL);
	}
	got = slurp(path, &len);
	pid = (pid_t)atoi(got);
	free(got);
	assert_true(pid > 0);
	alert_hook_free(t->h);
	t->h = NULL;
	/* reaped by us: gone, not a zombie, and not our child any more */
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1);
	assert_int_equal(errno, ECHILD);
	assert_int_equal(t->n_done, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_json),
		cmocka_unit_test_setup_teardown(test_no_hook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_large_payload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_term, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timeout_kill_group, setup, teardown),
		cmocka_unit_test_setup_teardown(test_nonexistent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrency, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_kills, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
