/*
 * test_stats_keeper.c - unit tests for daemon/stats_keeper.c: sitting spans
 * joined and handed over, the record saved into the history database and
 * read back by the next keeper, an unusable stored record left alone while
 * the keeper starts empty, and the crack baseline from stored days.
 */
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

#include "history.h"
#include "scratch_dir.h"
#include "stats.h"
#include "stats_keeper.h"

#define SEC 1000LL
#define HOUR (3600 * SEC)
#define DAY (24 * HOUR)
#define S1 "C0:FF:EE:00:00:01"
/* 10:00 UTC today: saving drops days older than STATS_MAX_DAYS before the real now */
static int64_t T0;
static int setup(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	T0 = (int64_t)(time(NULL) / 86400) * DAY + 10 * HOUR;
	return scratch_make("sw-keeper");
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

static struct history *open_history(void)
{
	char err[256] = "";
	struct history *h = history_open(dir, NULL, err, sizeof(err));

	if (!h)
		fail_msg("history_open: %s", err);
	return h;
}

static void test_save_and_reload(void **state)
{
	struct history *h = open_history();
	struct stats_keeper *k = stats_keeper_new(h);
	json_t *a, *b;

	(void)state;
	assert_non_null(k);
	stats_keeper_crack(k, S1, T0, "pop", 3);
	stats_keeper_crack(k, S1, T0 + SEC, "grind", 1);
	stats_keeper_crack(k, S1, T0 + 2 * SEC, "boom", 1);   /* dropped: no such kind */
	stats_keeper_slouch(k, S1, T0, T0 + 90 * SEC);
	stats_keeper_break(k, S1, T0 + 100 * SEC);
	stats_keeper_sitting(k, S1, T0, T0 + 30 * SEC);       /* still pending: saved too */
	stats_keeper_crack(k, S1, T0 - 3 * DAY, "click", 1);  /* an earlier day */
	a = stats_keeper_json(k, T0 + HOUR, NULL);
	assert_int_equal(stats_keeper_save(k), 0);
	stats_keeper_free(k);
	history_close(h);

	h = open_history();
	k = stats_keeper_new(h);
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
	stats_keeper_free(k);   /* nothing changed: nothing written */
	history_close(h);
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

/* A stored day the record cannot take: the keeper starts empty, the rows stay. */
static void test_unusable_record(void **state)
{
	struct history *h = open_history();
	struct stats_keeper *k;
	json_t *o;
	char date[16], rec[256], *text;
	time_t t = (time_t)(T0 / 1000);
	struct tm tm;

	(void)state;
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%Y-%m-%d", &tm);
	snprintf(rec, sizeof(rec), "{\"v\":1,\"sensors\":[{\"sensor\":\"%s\",\"days\":["
		 "{\"date\":\"%s\",\"pop\":-4}]}]}", S1, date);
	assert_int_equal(history_save_days(h, rec), 0);
	k = stats_keeper_new(h);
	assert_non_null(k);
	o = stats_keeper_json(k, T0, NULL);
	assert_int_equal(json_array_size(json_object_get(o, "sensors")), 0);
	json_decref(o);
	stats_keeper_free(k);
	text = history_days(h, date);
	assert_non_null(strstr(text, "\"pop\":-4"));
	free(text);
	history_close(h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sitting_joined, setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_save_and_reload, setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_baseline_from_history, setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_unusable_record, setup, scratch_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
