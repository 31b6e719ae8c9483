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
#include "resolver.h"

#define WAIT_MS 20000   /* upper bound: two DNS tries of 2 s per server, and more */

struct tfx {
	struct lws_context *ctx;
	struct lws_vhost *vh;
	struct lws_protocols protocols[2];
	struct loop *loop;
	int fds_before;
	int answers;
	bool ok, expired;
	char why[160];
};

static int count_fds(void)
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

static int setup(void **state)
{
	static struct tfx t;
	struct lws_context_creation_info info;

	memset(&t, 0, sizeof(t));
	t.fds_before = count_fds();
	log_init(LOG_INFO);
	lws_set_log_level(LLL_ERR, NULL);
	memset(&info, 0, sizeof(info));
	info.options = LWS_SERVER_OPTION_EXPLICIT_VHOSTS;
	info.port = CONTEXT_PORT_NO_LISTEN;
	t.ctx = lws_create_context(&info);
	assert_non_null(t.ctx);
	t.protocols[0] = loop_protocol;
	memset(&info, 0, sizeof(info));
	info.port = CONTEXT_PORT_NO_LISTEN;
	info.vhost_name = "test";
	info.protocols = t.protocols;
	t.vh = lws_create_vhost(t.ctx, &info);
	assert_non_null(t.vh);
	t.loop = loop_new(t.ctx, t.vh);
	assert_non_null(t.loop);
	assert_int_equal(loop_watch_signals(t.loop), 0);   /* as the daemon */
	*state = &t;
	return 0;
}

static int teardown(void **state)
{
	struct tfx *t = *state;

	loop_free(t->loop);
	lws_context_destroy(t->ctx);
	assert_int_equal(count_fds(), t->fds_before);   /* every DNS socket and dup closed */
	return 0;
}

static void answered(void *user, bool ok, const char *why)
{
	struct tfx *t = user;

	t->answers++;
	t->ok = ok;
	snprintf(t->why, sizeof(t->why), "%s", why);
}

static void guard_fire(struct loop_timer *lt)
{
	struct tfx *t = lt->user;

	t->expired = true;
	lws_cancel_service(t->ctx);   /* lws_service() polls on after a timer; this ends it */
}

/* Run the loop until an answer came, or for ms when none is expected. */
static void run_loop(struct tfx *t, int64_t ms, bool until_answer)
{
	struct loop_timer guard;

	t->expired = false;
	loop_timer_init(&guard, t->loop, guard_fire, t);
	loop_timer_start(&guard, ms);
	while (!t->expired && !(until_answer && t->answers))
		assert_true(lws_service(t->ctx, 0) >= 0);
	loop_timer_cancel(&guard);
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
	struct resolver *r = resolver_new(t->loop);

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
	struct resolver *r = resolver_new(t->loop);

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
	struct resolver *r = resolver_new(t->loop);

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
