/*
 * test_stats_keeper.c - unit tests for daemon/stats_keeper.c and
 * daemon/statefile.c: sitting spans joined and handed over, the record saved
 * atomically and read back by the next keeper, an unusable record moved
 * aside, the crack baseline from stored days, and bounded state-file reads.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "statefile.h"
#include "stats.h"
#include "stats_keeper.h"

#define SEC 1000LL
#define HOUR (3600 * SEC)
#define DAY (24 * HOUR)
#define S1 "C0:FF:EE:00:00:01"
/* 10:00 UTC today: saving drops days older than STATS_MAX_DAYS before the real now */
static int64_t T0;
static char dir[64];

static int setup(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	T0 = (int64_t)(time(NULL) / 86400) * DAY + 10 * HOUR;
	snprintf(dir, sizeof(dir), "/tmp/sw-keeper-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static json_t *today_of(struct stats_keeper *k, int64_t now)
{
	json_t *o = stats_keeper_json(k, now, S1);

	assert_non_null(o);
	assert_int_equal(json_array_size(json_object_get(o, "sensors")), 1);
	json_incref(json_object_get(json_array_get(json_object_get(o, "sensors"), 0), "today"));
	{
		json_t *t = json_object_get(json_array_get(json_object_get(o, "sensors"), 0), "today");

		json_decref(o);
		return t;
	}
}

static double member_real(json_t *o, const char *k)
{
	return json_number_value(json_object_get(o, k));
}

static void test_sitting_joined(void **state)
{
	struct stats_keeper *k = stats_keeper_new(NULL);
	json_t *t;

	(void)state;
	assert_non_null(k);
	/* 10 minutes of samples every 100 ms: one span per sample, joined */
	for (int64_t ts = T0; ts < T0 + 600 * SEC; ts += 100)
		stats_keeper_sitting(k, S1, ts, ts + 100);
	/* a gap, then 30 s more: not joined to the first, counted all the same */
	stats_keeper_sitting(k, S1, T0 + 700 * SEC, T0 + 730 * SEC);
	/* refused: empty or backwards spans, no sensor */
	stats_keeper_sitting(k, S1, T0 + 800 * SEC, T0 + 800 * SEC);
	stats_keeper_sitting(k, S1, T0 + 900 * SEC, T0 + 800 * SEC);
	stats_keeper_sitting(k, NULL, T0, T0 + SEC);
	t = today_of(k, T0 + HOUR);
	assert_true(member_real(t, "sitting_min") == 10.5);
	json_decref(t);
	stats_keeper_free(k);
}

static void test_save_and_reload(void **state)
{
	struct stats_keeper *k = stats_keeper_new(dir);
	json_t *a, *b;
	char path[128];
	struct stat sb;

	(void)state;
	assert_non_null(k);
	stats_keeper_crack(k, S1, T0, "pop", 3);
	stats_keeper_crack(k, S1, T0 + SEC, "grind", 1);
	stats_keeper_crack(k, S1, T0 + 2 * SEC, "boom", 1);   /* dropped: no such kind */
	stats_keeper_slouch(k, S1, T0, T0 + 90 * SEC);
	stats_keeper_break(k, S1, T0 + 100 * SEC);
	stats_keeper_sitting(k, S1, T0, T0 + 30 * SEC);       /* still pending: saved too */
	a = stats_keeper_json(k, T0 + HOUR, NULL);
	assert_int_equal(stats_keeper_save(k), 0);
	snprintf(path, sizeof(path), "%s/%s", dir, STATS_KEEPER_FILE);
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0640);
	snprintf(path, sizeof(path), "%s/%s.tmp", dir, STATS_KEEPER_FILE);
	assert_int_equal(stat(path, &sb), -1);   /* no temporary file left */
	stats_keeper_free(k);

	k = stats_keeper_new(dir);
	b = stats_keeper_json(k, T0 + HOUR, NULL);
	assert_true(json_equal(a, b));
	{
		json_t *t = today_of(k, T0 + HOUR);

		assert_int_equal(json_integer_value(json_object_get(t, "cracks")), 2);
		assert_int_equal(json_integer_value(json_object_get(t, "pops")), 4);
		assert_true(member_real(t, "slouch_min") == 1.5);
		assert_true(member_real(t, "sitting_min") == 0.5);
		assert_int_equal(json_integer_value(json_object_get(t, "breaks")), 1);
		json_decref(t);
	}
	json_decref(a);
	json_decref(b);
	stats_keeper_free(k);
}

static void test_baseline_from_history(void **state)
{
	struct stats_keeper *k = stats_keeper_new(NULL);

	(void)state;
	assert_true(stats_keeper_baseline(k, S1, T0) < 0);
	/* three earlier days with 1, 4 and 2 cracks in the 10h hour: median 2 */
	for (int d = 1; d <= 3; d++)
		for (int i = 0; i < (d == 1 ? 1 : d == 2 ? 4 : 2); i++)
			stats_keeper_crack(k, S1, T0 - d * DAY + i * SEC, "click", 1);
	assert_true(stats_keeper_baseline(k, S1, T0) == 2.0);
	/* another hour of the day: those days had none there */
	assert_true(stats_keeper_baseline(k, S1, T0 + 2 * HOUR) == 0.0);
	stats_keeper_free(k);
}

static void test_unusable_record_moved_aside(void **state)
{
	char path[128];
	struct stats_keeper *k;
	json_t *o;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/%s", dir, STATS_KEEPER_FILE);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("{\"v\":2,\"sensors\":[]}", f);
	fclose(f);
	k = stats_keeper_new(dir);
	assert_non_null(k);
	o = stats_keeper_json(k, T0, NULL);
	assert_int_equal(json_array_size(json_object_get(o, "sensors")), 0);
	json_decref(o);
	assert_int_equal(access(path, F_OK), -1);
	snprintf(path, sizeof(path), "%s/%s.bad", dir, STATS_KEEPER_FILE);
	assert_int_equal(access(path, F_OK), 0);
	/* nothing changed: nothing is written */
	stats_keeper_free(k);
	snprintf(path, sizeof(path), "%s/%s", dir, STATS_KEEPER_FILE);
	assert_int_equal(access(path, F_OK), -1);
}

static void test_statefile(void **state)
{
	size_t len = 0;
	char *text;

	(void)state;
	assert_int_equal(statefile_write(dir, "sub/file", "hello\n", 6), 0);
	text = statefile_read(dir, "sub/file", 6, &len);
	assert_non_null(text);
	assert_int_equal(len, 6);
	assert_string_equal(text, "hello\n");
	free(text);
	assert_null(statefile_read(dir, "sub/file", 5, NULL));
	assert_int_equal(errno, EFBIG);
	assert_null(statefile_read(dir, "sub/none", 5, NULL));
	assert_int_equal(errno, ENOENT);
	assert_int_equal(statefile_write(dir, "a/b/c", "x", 1), -1);   /* one level only */
	assert_int_equal(errno, EINVAL);
	assert_int_equal(statefile_write("", "f", "x", 1), -1);
	assert_int_equal(statefile_write("/proc/no-such-dir", "f", "x", 1), -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sitting_joined, setup, teardown),
		cmocka_unit_test_setup_teardown(test_save_and_reload, setup, teardown),
		cmocka_unit_test_setup_teardown(test_baseline_from_history, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unusable_record_moved_aside, setup, teardown),
		cmocka_unit_test_setup_teardown(test_statefile, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
