/*
 * test_resolver.c - unit tests for daemon/resolver.c on a real event loop:
 * address literals need no lookup, a name in /etc/hosts resolves, a name
 * that cannot resolve fails once with a reason, one lookup at a time, a
 * cancelled lookup never calls back, and every DNS socket is closed after.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libwebsockets.h>

#include "log.h"
#include "loop.h"
#include "loop_fixture.h"
#include "resolver.h"

#define WAIT_MS 20000   /* upper bound: two DNS tries of 2 s per server, and more */

struct tfx {
	struct loop_fixture lf;   /* lws context, vhost and the loop */
	int fds_before;
	int answers;
	bool ok;
	char why[160];
};

static int setup(void **state)
{
	static struct tfx t;

	memset(&t, 0, sizeof(t));
	t.fds_before = loop_fixture_count_fds();
	assert_int_equal(loop_fixture_open(&t.lf), 0);
	assert_int_equal(loop_watch_signals(t.lf.loop), 0);   /* as the daemon */
	*state = &t;
	return 0;
}

static int teardown(void **state)
{
	struct tfx *t = *state;

	loop_fixture_close(&t->lf);
	/* every DNS socket and dup closed */
	assert_int_equal(loop_fixture_count_fds(), t->fds_before);
	return 0;
}

static void answered(void *user, bool ok, const char *why)
{
	struct tfx *t = user;

	t->answers++;
	t->ok = ok;
	snprintf(t->why, sizeof(t->why), "%s", why);
}

static bool has_answer(void *arg)
{
	return ((struct tfx *)arg)->answers > 0;
}

/* Run the loop until an answer came, or for ms when none is expected. */
static void run_loop(struct tfx *t, int64_t ms, bool until_answer)
{
	loop_fixture_run(&t->lf, ms, until_answer ? has_answer : NULL, t);
}

static void test_address_literals(void **state)
{
	(void)state;
	assert_true(resolver_is_address("127.0.0.1"));
	assert_true(resolver_is_address("192.168.1.20"));
	assert_true(resolver_is_address("::1"));
	assert_true(resolver_is_address("fd00::5"));
	assert_false(resolver_is_address("localhost"));
	assert_false(resolver_is_address("broker.example"));
	assert_false(resolver_is_address("1.2.3"));
	assert_false(resolver_is_address("[::1]"));
	assert_false(resolver_is_address(""));
}

static void test_hosts_file_name(void **state)
{
	struct tfx *t = *state;
	struct resolver *r = resolver_new(t->lf.loop);

	assert_non_null(r);
	t->answers = 0;
	assert_int_equal(resolver_lookup(r, "localhost", answered, t), 0);
	run_loop(t, WAIT_MS, true);
	assert_int_equal(t->answers, 1);
	assert_true(t->ok);
	/* the resolver is ready for another */
	t->answers = 0;
	assert_int_equal(resolver_lookup(r, "localhost", answered, t), 0);
	run_loop(t, WAIT_MS, true);
	assert_int_equal(t->answers, 1);
	assert_true(t->ok);
	resolver_free(r);
}

static void test_name_that_does_not_resolve(void **state)
{
	struct tfx *t = *state;
	struct resolver *r = resolver_new(t->lf.loop);

	assert_non_null(r);
	t->answers = 0;
	/* .invalid never resolves (RFC 6761): NXDOMAIN, or a timeout with no DNS at all */
	assert_int_equal(resolver_lookup(r, "no-such-broker.invalid", answered, t), 0);
	assert_int_equal(resolver_lookup(r, "localhost", answered, t), -1);   /* one at a time */
	run_loop(t, WAIT_MS, true);
	assert_int_equal(t->answers, 1);
	assert_false(t->ok);
	assert_true(t->why[0] != '\0');
	run_loop(t, 200, false);
	assert_int_equal(t->answers, 1);   /* exactly once */
	resolver_free(r);
}

static void test_cancel_and_free(void **state)
{
	struct tfx *t = *state;
	struct resolver *r = resolver_new(t->lf.loop);

	assert_non_null(r);
	t->answers = 0;
	assert_int_equal(resolver_lookup(r, "no-such-broker.invalid", answered, t), 0);
	resolver_cancel(r);
	run_loop(t, 300, false);
	assert_int_equal(t->answers, 0);
	/* and freed with a lookup running: no call back either */
	assert_int_equal(resolver_lookup(r, "no-such-broker.invalid", answered, t), 0);
	resolver_free(r);
	run_loop(t, 300, false);
	assert_int_equal(t->answers, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_address_literals),
		cmocka_unit_test_setup_teardown(test_hosts_file_name, setup, teardown),
		cmocka_unit_test_setup_teardown(test_name_that_does_not_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_and_free, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
