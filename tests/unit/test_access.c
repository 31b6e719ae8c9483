/*
 * test_access.c - unit tests for daemon/access.c: the token file's syntax
 * (roles, labels, comments, CRLF, bad tokens, duplicates, too many), its
 * mode check (world-readable refused), token lookup, the decision table
 * (loopback role, read and control tokens, wrong tokens), the Host check
 * against DNS rebinding, the Origin check (same host, reverse proxy,
 * configured origins, null and foreign origins), loopback listen addresses
 * and the exposure rule (beyond loopback needs tokens).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "access.h"
#include "scratch_dir.h"

#define R1 "read-token-0123456789abcdef"
#define C1 "control_token.0123456789~XYZ"

static struct access *fresh(void)
{
	struct access *a = calloc(1, sizeof(*a));
	struct access_config c;

	assert_non_null(a);
	access_config_default(&c);
	a->cfg = c;
	snprintf(a->hostname, sizeof(a->hostname), "spinepi");
	return a;
}

static int parse(struct access *a, const char *text, char *err, size_t errlen)
{
	return access_parse_tokens(a, text, strlen(text), err, errlen);
}

static void test_token_file_syntax(void **state)
{
	struct access *a = fresh();
	char err[160];

	(void)state;
	assert_int_equal(parse(a, "# tokens\n\n" R1 "\n  " C1 "  control  physio laptop \r\n"
			       "another-token-for-the-hall read hall display\n", err, sizeof(err)), 0);
	assert_int_equal(a->n_tokens, 3);
	assert_string_equal(a->tokens[0].secret, R1);
	assert_int_equal(a->tokens[0].role, ACCESS_READ);       /* read unless said */
	assert_string_equal(a->tokens[0].label, "token on line 3");
	assert_string_equal(a->tokens[1].secret, C1);
	assert_int_equal(a->tokens[1].role, ACCESS_CONTROL);
	assert_string_equal(a->tokens[1].label, "physio laptop ");
	assert_int_equal(a->tokens[2].role, ACCESS_READ);
	assert_string_equal(a->tokens[2].label, "hall display");
	free(a);
}

static void test_token_file_errors(void **state)
{
	static const struct {
		const char *text, *why;
	} bad[] = {
		{ "short-token\n", "line 1: a token is 16 to 128 characters long" },
		{ "# c\nbad/token/with/slashes\n", "line 2: a token is made of A-Z a-z 0-9 - . _ ~" },
		{ R1 "\n" R1 " control\n", "line 2: the same token twice" },
		{ R1 " admin\n", "line 1: the role is read or control" },
		{ R1 " none\n", "line 1: the role is read or control" },
		{ R1 " controller\n", "line 1: the role is read or control" },
	};
	struct access *a = fresh();
	char err[160], *many;
	size_t i, off = 0;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(parse(a, bad[i].text, err, sizeof(err)), -1);
		assert_string_equal(err, bad[i].why);
	}
	many = malloc((ACCESS_TOKENS_MAX + 1) * 40);
	assert_non_null(many);
	for (i = 0; i <= ACCESS_TOKENS_MAX; i++)
		off += (size_t)sprintf(many + off, "token-number-%04zu-xxxxxxxx\n", i);
	assert_int_equal(parse(a, many, err, sizeof(err)), -1);
	assert_string_equal(err, "line 65: more than 64 tokens");
	free(many);
	/* 128 characters is fine, 129 is not */
	many = malloc(200);
	memset(many, 'k', 128);
	strcpy(many + 128, "\n");
	assert_int_equal(parse(a, many, err, sizeof(err)), 0);
	memset(many, 'k', 129);
	strcpy(many + 129, "\n");
	assert_int_equal(parse(a, many, err, sizeof(err)), -1);
	free(many);
	free(a);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_token_file_mode_and_init(void **state)
{
	char path[128], err[400];
	struct access *a = calloc(1, sizeof(*a));
	struct access_config c;

	(void)state;
	assert_int_equal(scratch_make("sw-access"), 0);
	snprintf(path, sizeof(path), "%s/tokens", dir);
	access_config_default(&c);
	snprintf(c.token_file, sizeof(c.token_file), "%s", path);

	write_file(path, R1 " control\n", 0644);
	assert_int_equal(access_init(a, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "can be read or written by everyone (mode 644): chmod o-rw it"));
	write_file(path, R1 " control\n", 0640);
	assert_int_equal(access_init(a, &c, err, sizeof(err)), 0);
	assert_int_equal(a->n_tokens, 1);
	assert_int_equal(a->tokens[0].role, ACCESS_CONTROL);
	write_file(path, "nope\n", 0600);
	assert_int_equal(access_init(a, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "tokens: line 1: a token is 16 to 128"));
	unlink(path);
	assert_int_equal(access_init(a, &c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "cannot open the token file"));
	c.token_file[0] = '\0';
	assert_int_equal(access_init(a, &c, err, sizeof(err)), 0);
	assert_int_equal(a->n_tokens, 0);
	scratch_teardown(NULL);
	free(a);
}

static void test_decide(void **state)
{
	struct access *a = fresh();
	char err[160];
	bool bad;

	(void)state;
	assert_int_equal(parse(a, R1 "\n" C1 " control\n", err, sizeof(err)), 0);
	/* no token: loopback gets the loopback role, the rest nothing */
	assert_int_equal(access_decide(a, true, NULL, 0, &bad), ACCESS_CONTROL);
	assert_false(bad);
	assert_int_equal(access_decide(a, false, NULL, 0, &bad), ACCESS_NONE);
	assert_false(bad);
	a->cfg.loopback = ACCESS_READ;
	assert_int_equal(access_decide(a, true, NULL, 0, &bad), ACCESS_READ);
	a->cfg.loopback = ACCESS_NONE;
	assert_int_equal(access_decide(a, true, NULL, 0, &bad), ACCESS_NONE);
	/* tokens: their role wherever they come from */
	assert_int_equal(access_decide(a, false, R1, strlen(R1), &bad), ACCESS_READ);
	assert_int_equal(access_decide(a, false, C1, strlen(C1), &bad), ACCESS_CONTROL);
	assert_int_equal(access_decide(a, true, C1, strlen(C1), &bad), ACCESS_CONTROL);
	/* a wrong token is refused even from loopback, and a prefix or an
	 * extension of a real one is wrong */
	a->cfg.loopback = ACCESS_CONTROL;
	assert_int_equal(access_decide(a, true, "x" R1, strlen(R1) + 1, &bad), ACCESS_NONE);
	assert_true(bad);
	assert_int_equal(access_decide(a, false, R1, strlen(R1) - 1, &bad), ACCESS_NONE);
	assert_true(bad);
	assert_int_equal(access_decide(a, false, "", 0, &bad), ACCESS_NONE);
	assert_true(bad);
	assert_null(access_find_token(a, R1 "0", strlen(R1) + 1));
	assert_ptr_equal(access_find_token(a, C1 "trailing", strlen(C1)), &a->tokens[1]);
	free(a);
}

static void test_host(void **state)
{
	static const char *const good[] = {
		"127.0.0.1", "127.0.0.1:8421", "[::1]:8421", "[::1]", "192.168.1.20:8421",
		"localhost", "LOCALHOST:80", "localhost.", "app.localhost:1", "spinepi",
		"spinepi:8421", "SpinePi.local:8421", "spine.example.org", "dash.example:443",
	};
	static const char *const bad[] = {
		"", "evil.example", "evil.example:8421", "127.0.0.1.nip.io", "spinepi.evil.example",
		"localhost.evil.example", "::1", "[::1", "[::1]x", "example.org",
		"spine.example.org.evil", "xspinepi",
	};
	struct access *a = fresh();
	size_t i;

	(void)state;
	snprintf(a->cfg.hosts, sizeof(a->cfg.hosts), "spine.example.org, dash.example");
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		if (!access_host_ok(a, good[i]))
			fail_msg("refused %s", good[i]);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (access_host_ok(a, bad[i]))
			fail_msg("accepted %s", bad[i]);
	assert_false(access_host_ok(a, NULL));
	free(a);
}

static void test_origin(void **state)
{
	struct access *a = fresh();

	(void)state;
	/* not a browser */
	assert_true(access_origin_ok(a, NULL, "127.0.0.1:8421", NULL));
	assert_true(access_origin_ok(a, "", "127.0.0.1:8421", NULL));
	/* same host and port */
	assert_true(access_origin_ok(a, "http://127.0.0.1:8421", "127.0.0.1:8421", NULL));
	assert_true(access_origin_ok(a, "https://SpinePi:8421", "spinepi:8421", NULL));
	assert_false(access_origin_ok(a, "http://127.0.0.1:9999", "127.0.0.1:8421", NULL));
	assert_false(access_origin_ok(a, "http://evil.example", "127.0.0.1:8421", NULL));
	assert_false(access_origin_ok(a, "null", "127.0.0.1:8421", NULL));
	assert_false(access_origin_ok(a, "file://", "127.0.0.1:8421", NULL));
	assert_false(access_origin_ok(a, "http://127.0.0.1:8421/x", "127.0.0.1:8421", NULL));
	assert_false(access_origin_ok(a, "http://127.0.0.1:8421", NULL, NULL));
	/* behind a reverse proxy: the public name in X-Forwarded-Host (the first one) */
	assert_true(access_origin_ok(a, "https://spine.example.org", "127.0.0.1:8421",
				     "spine.example.org"));
	assert_true(access_origin_ok(a, "https://spine.example.org", "127.0.0.1:8421",
				     "spine.example.org , inner.proxy"));
	assert_false(access_origin_ok(a, "https://evil.example", "127.0.0.1:8421",
				      "spine.example.org"));
	/* configured origins, whole */
	snprintf(a->cfg.origins, sizeof(a->cfg.origins), "https://dash.example.org https://b.example:8443");
	assert_true(access_origin_ok(a, "https://dash.example.org", "127.0.0.1:8421", NULL));
	assert_true(access_origin_ok(a, "https://b.example:8443", "127.0.0.1:8421", NULL));
	assert_false(access_origin_ok(a, "http://dash.example.org", "127.0.0.1:8421", NULL));
	assert_false(access_origin_ok(a, "https://b.example", "127.0.0.1:8421", NULL));
	free(a);
}

static void test_listen_and_exposure(void **state)
{
	struct access *a = fresh();
	char err[160];

	(void)state;
	assert_true(access_listen_is_loopback("127.0.0.1"));
	assert_true(access_listen_is_loopback("127.1.2.3"));
	assert_true(access_listen_is_loopback("::1"));
	assert_true(access_listen_is_loopback("localhost"));
	assert_false(access_listen_is_loopback("0.0.0.0"));
	assert_false(access_listen_is_loopback("::"));
	assert_false(access_listen_is_loopback("192.168.1.20"));
	assert_false(access_listen_is_loopback("eth0"));
	assert_null(access_exposure_problem(a, "127.0.0.1"));
	assert_non_null(strstr(access_exposure_problem(a, "0.0.0.0"), "needs access tokens"));
	a->cfg.loopback = ACCESS_NONE;
	assert_non_null(strstr(access_exposure_problem(a, "127.0.0.1"), "loopback = none"));
	assert_int_equal(parse(a, R1 "\n", err, sizeof(err)), 0);
	assert_null(access_exposure_problem(a, "0.0.0.0"));
	assert_null(access_exposure_problem(a, "127.0.0.1"));
	free(a);
}

static void test_role_names(void **state)
{
	(void)state;
	assert_int_equal(access_role_parse("read"), ACCESS_READ);
	assert_int_equal(access_role_parse("control"), ACCESS_CONTROL);
	assert_int_equal(access_role_parse("none"), ACCESS_NONE);
	assert_int_equal(access_role_parse("Control"), -1);
	assert_string_equal(access_role_name(ACCESS_CONTROL), "control");
	assert_string_equal(access_role_name(ACCESS_READ), "read");
	assert_string_equal(access_role_name(ACCESS_NONE), "none");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_file_syntax),
		cmocka_unit_test(test_token_file_errors),
		cmocka_unit_test(test_token_file_mode_and_init),
		cmocka_unit_test(test_decide),
		cmocka_unit_test(test_host),
		cmocka_unit_test(test_origin),
		cmocka_unit_test(test_listen_and_exposure),
		cmocka_unit_test(test_role_names),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
