/*
 * test_stats.c - unit tests for daemon/stats.c: day and hour bucketing with
 * scripted inputs in TZ=UTC and TZ=Europe/Berlin (midnight, hour and DST
 * boundaries), the baseline median with 2/3/4/7/9 days of data,
 * week-over-week, pruning, the exact "stats" JSON, bounds (sensors, days,
 * saturation), save -> load round trips and stats_load rejecting hostile
 * input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "stats.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define DAY (24 * HOUR)
#define S1 "C0:FF:EE:00:00:01"
#define S2 "C0:FF:EE:00:00:02"
/* Europe/Berlin's rules, for a system without tzdata */
#define BERLIN_POSIX "CET-1CEST,M3.5.0,M10.5.0/3"

static void set_tz(const char *tz)
{
	setenv("TZ", tz, 1);
	tzset();
}

static void set_berlin(void)
{
	set_tz(access("/usr/share/zoneinfo/Europe/Berlin", R_OK) == 0 ? "Europe/Berlin"
								       : BERLIN_POSIX);
}

/* epoch ms of a UTC wall time */
static int64_t utc(int y, int mo, int d, int h, int mi)
{
	struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h,
			 .tm_min = mi };

	return (int64_t)timegm(&tm) * 1000;
}

static struct stats *new_stats(void)
{
	struct stats *st = stats_new();

	assert_non_null(st);
	return st;
}

static struct stats_day get_day(const struct stats *st, const char *sensor, int64_t ts)
{
	struct stats_day d;

	assert_int_equal(stats_day(st, sensor, ts, &d), 0);
	return d;
}

static char *dump(json_t *o)
{
	char *s;

	assert_non_null(o);
	s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
	assert_non_null(s);
	json_decref(o);
	return s;
}

/* ---- bucketing ---- */

static void test_cracks_by_kind_and_hour(void **state)
{
	struct stats *st = new_stats();
	struct stats_day d;
	int64_t t0 = utc(2025, 11, 25, 0, 0);

	(void)state;
	set_tz("UTC");
	assert_int_equal(stats_crack(st, S1, t0 + 9 * HOUR + 5 * MIN, "pop", 4), STATS_OK);
	assert_int_equal(stats_crack(st, S1, t0 + 9 * HOUR + 59 * MIN + 59 * SEC + 999, "pop", 2),
			 STATS_OK);
	assert_int_equal(stats_crack(st, S1, t0 + 10 * HOUR, "click", 1), STATS_OK);
	assert_int_equal(stats_crack(st, S1, t0 + 23 * HOUR + 59 * MIN, "grind", 0), STATS_OK);
	assert_int_equal(stats_crack(st, S1, t0, "pop", 1), STATS_OK);
	assert_int_equal(stats_break(st, S1, t0 + 12 * HOUR), STATS_OK);
	assert_int_equal(stats_break(st, S1, t0 + 13 * HOUR), STATS_OK);

	d = get_day(st, S1, t0 + 5 * HOUR);
	assert_int_equal(d.pop, 3);
	assert_int_equal(d.click, 1);
	assert_int_equal(d.grind, 1);
	assert_int_equal(d.pops, 4 + 2 + 1 + 0 + 1);
	assert_int_equal(d.breaks, 2);
	assert_int_equal(d.slouch_ms, 0);
	assert_int_equal(d.sitting_ms, 0);
	assert_int_equal(d.hour_cracks[0], 1);
	assert_int_equal(d.hour_cracks[9], 2);
	assert_int_equal(d.hour_cracks[10], 1);
	assert_int_equal(d.hour_cracks[23], 1);
	for (int h = 0; h < 24; h++)
		if (h != 0 && h != 9 && h != 10 && h != 23)
			assert_int_equal(d.hour_cracks[h], 0);
	/* the next day has nothing; other sensor nothing */
	assert_int_equal(stats_day(st, S1, t0 + DAY, &d), -1);
	assert_int_equal(d.pop, 0);
	assert_int_equal(stats_day(st, S2, t0, &d), -1);
	assert_int_equal(stats_sensor_count(st), 1);
	stats_free(st);
}

static void test_bad_inputs(void **state)
{
	struct stats *st = new_stats();
	int64_t t = utc(2025, 11, 25, 10, 0);

	(void)state;
	set_tz("UTC");
	assert_int_equal(stats_crack(st, S1, t, "crunch", 1), STATS_EINVAL);
	assert_int_equal(stats_crack(st, S1, t, NULL, 1), STATS_EINVAL);
	assert_int_equal(stats_crack(st, S1, t, "pop", STATS_MAX_POPS + 1), STATS_EINVAL);
	assert_int_equal(stats_crack(st, S1, -1, "pop", 1), STATS_EINVAL);
	assert_int_equal(stats_crack(st, S1, STATS_MAX_TS_MS, "pop", 1), STATS_EINVAL);
	assert_int_equal(stats_crack(st, NULL, t, "pop", 1), STATS_EINVAL);
	assert_int_equal(stats_crack(st, "", t, "pop", 1), STATS_EINVAL);
	assert_int_equal(stats_crack(st, "C0:FF:EE:00:00:01:2", t, "pop", 1), STATS_EINVAL);
	assert_int_equal(stats_crack(st, "bad name", t, "pop", 1), STATS_EINVAL);
	assert_int_equal(stats_crack(NULL, S1, t, "pop", 1), STATS_EINVAL);
	assert_int_equal(stats_slouch(st, S1, t, t - 1), STATS_EINVAL);
	assert_int_equal(stats_sitting(st, S1, t, t - 1), STATS_EINVAL);
	assert_int_equal(stats_break(st, S1, -5), STATS_EINVAL);
	/* nothing was created by the refused inputs */
	assert_int_equal(stats_sensor_count(st), 0);
	assert_true(stats_baseline(st, S1, t) < 0);
	assert_null(stats_json(st, -1, NULL));
	assert_int_equal(stats_forget_sensor(st, S1), -1);
	stats_free(st);
	stats_free(NULL);
}

/* A slouch across midnight and across hours, and sitting spans, in UTC. */
static void test_spans_split_utc(void **state)
{
	struct stats *st = new_stats();
	struct stats_day a, b;
	int64_t d0 = utc(2025, 11, 25, 0, 0), d1 = d0 + DAY;

	(void)state;
	set_tz("UTC");
	/* 23:40 -> 00:25 */
	assert_int_equal(stats_slouch(st, S1, d0 + 23 * HOUR + 40 * MIN, d1 + 25 * MIN), STATS_OK);
	/* 10:50:30 -> 12:10 on day 0 */
	assert_int_equal(stats_slouch(st, S1, d0 + 10 * HOUR + 50 * MIN + 30 * SEC,
				      d0 + 12 * HOUR + 10 * MIN), STATS_OK);
	/* sitting 20:00 -> 02:00 */
	assert_int_equal(stats_sitting(st, S1, d0 + 20 * HOUR, d1 + 2 * HOUR), STATS_OK);
	/* a zero-length slouch marks the day as one with data */
	assert_int_equal(stats_slouch(st, S2, d1 + 5 * HOUR, d1 + 5 * HOUR), STATS_OK);

	a = get_day(st, S1, d0);
	b = get_day(st, S1, d1);
	assert_int_equal(a.hour_slouch_ms[23], 20 * MIN);
	assert_int_equal(a.hour_slouch_ms[10], 9 * MIN + 30 * SEC);
	assert_int_equal(a.hour_slouch_ms[11], HOUR);
	assert_int_equal(a.hour_slouch_ms[12], 10 * MIN);
	assert_int_equal(a.slouch_ms, 20 * MIN + 9 * MIN + 30 * SEC + HOUR + 10 * MIN);
	assert_int_equal(a.sitting_ms, 4 * HOUR);
	assert_int_equal(b.hour_slouch_ms[0], 25 * MIN);
	assert_int_equal(b.slouch_ms, 25 * MIN);
	assert_int_equal(b.sitting_ms, 2 * HOUR);
	a = get_day(st, S2, d1);
	assert_int_equal(a.slouch_ms, 0);
	assert_int_equal(stats_sensor_count(st), 2);
	stats_free(st);
}

/* The same instants land on other local days and hours in Berlin (UTC+1 in November). */
static void test_spans_split_berlin(void **state)
{
	struct stats *st = new_stats();
	struct stats_day a, b;
	int64_t d0 = utc(2025, 11, 25, 0, 0);

	(void)state;
	set_berlin();
	/* 22:50 -> 23:20 UTC = 23:50 -> 00:20 local: across local midnight */
	assert_int_equal(stats_slouch(st, S1, d0 + 22 * HOUR + 50 * MIN, d0 + 23 * HOUR + 20 * MIN),
			 STATS_OK);
	/* 23:30 UTC = 00:30 on the 26th, local */
	assert_int_equal(stats_crack(st, S1, d0 + 23 * HOUR + 30 * MIN, "pop", 3), STATS_OK);
	/* 22:59:59 UTC = 23:59:59 on the 25th, local */
	assert_int_equal(stats_crack(st, S1, d0 + 22 * HOUR + 59 * MIN + 59 * SEC, "grind", 1),
			 STATS_OK);
	/* 23:00 UTC on the 24th = midnight local on the 25th */
	assert_int_equal(stats_break(st, S1, d0 - HOUR), STATS_OK);

	a = get_day(st, S1, utc(2025, 11, 25, 12, 0));
	b = get_day(st, S1, utc(2025, 11, 26, 12, 0));
	assert_int_equal(b.day, a.day + 1);
	assert_int_equal(a.hour_slouch_ms[23], 10 * MIN);
	assert_int_equal(a.slouch_ms, 10 * MIN);
	assert_int_equal(a.grind, 1);
	assert_int_equal(a.hour_cracks[23], 1);
	assert_int_equal(a.breaks, 1);
	assert_int_equal(b.hour_slouch_ms[0], 20 * MIN);
	assert_int_equal(b.slouch_ms, 20 * MIN);
	assert_int_equal(b.pop, 1);
	assert_int_equal(b.pops, 3);
	assert_int_equal(b.hour_cracks[0], 1);
	assert_int_equal(b.breaks, 0);

	/* the JSON dates follow the local calendar */
	{
		json_t *o = stats_json(st, utc(2025, 11, 25, 23, 45), S1);
		json_t *today = json_object_get(json_array_get(json_object_get(o, "sensors"), 0),
						"today");

		assert_string_equal(json_string_value(json_object_get(today, "date")), "2025-11-26");
		assert_int_equal(json_integer_value(json_object_get(today, "pop")), 1);
		json_decref(o);
	}

	/* in UTC the same instants are one day */
	stats_free(st);
	st = new_stats();
	set_tz("UTC");
	assert_int_equal(stats_slouch(st, S1, d0 + 22 * HOUR + 50 * MIN, d0 + 23 * HOUR + 20 * MIN),
			 STATS_OK);
	a = get_day(st, S1, d0);
	assert_int_equal(a.hour_slouch_ms[22], 10 * MIN);
	assert_int_equal(a.hour_slouch_ms[23], 20 * MIN);
	assert_int_equal(stats_day(st, S1, d0 + DAY, &b), -1);
	stats_free(st);
}

/* DST days in Berlin: 23 and 25 hour days, the repeated hour in one bucket. */
static void test_spans_split_berlin_dst(void **state)
{
	struct stats *st = new_stats();
	struct stats_day d;
	/* 2025-03-30: 02:00 CET -> 03:00 CEST at 01:00 UTC */
	int64_t spring = utc(2025, 3, 29, 23, 0);   /* local midnight */
	/* 2025-10-26: 03:00 CEST -> 02:00 CET at 01:00 UTC */
	int64_t autumn = utc(2025, 10, 25, 22, 0);  /* local midnight */

	(void)state;
	set_berlin();
	/* the whole local day, midnight to midnight */
	assert_int_equal(stats_sitting(st, S1, spring, spring + 23 * HOUR), STATS_OK);
	/* 01:30 CET -> 03:30 CEST: one real hour */
	assert_int_equal(stats_slouch(st, S1, utc(2025, 3, 30, 0, 30), utc(2025, 3, 30, 1, 30)),
			 STATS_OK);
	d = get_day(st, S1, spring + HOUR);
	assert_int_equal(d.sitting_ms, 23 * HOUR);
	assert_int_equal(d.hour_slouch_ms[1], 30 * MIN);
	assert_int_equal(d.hour_slouch_ms[2], 0);
	assert_int_equal(d.hour_slouch_ms[3], 30 * MIN);
	assert_int_equal(stats_day(st, S1, spring + 23 * HOUR, &d), -1);   /* next day: none */

	assert_int_equal(stats_sitting(st, S1, autumn, autumn + 25 * HOUR), STATS_OK);
	/* 02:30 CEST -> 02:30 CET: one real hour, all in bucket 2 */
	assert_int_equal(stats_slouch(st, S1, utc(2025, 10, 26, 0, 30), utc(2025, 10, 26, 1, 30)),
			 STATS_OK);
	/* 01:50 CEST -> 03:10 CET: 10 + 120 + 10 min */
	assert_int_equal(stats_slouch(st, S2, utc(2025, 10, 25, 23, 50), utc(2025, 10, 26, 2, 10)),
			 STATS_OK);
	d = get_day(st, S1, autumn + HOUR);
	assert_int_equal(d.sitting_ms, 25 * HOUR);
	assert_int_equal(d.hour_slouch_ms[2], HOUR);
	assert_int_equal(d.slouch_ms, HOUR);
	d = get_day(st, S2, autumn + HOUR);
	assert_int_equal(d.hour_slouch_ms[1], 10 * MIN);
	assert_int_equal(d.hour_slouch_ms[2], 2 * HOUR);
	assert_int_equal(d.hour_slouch_ms[3], 10 * MIN);
	assert_int_equal(stats_day(st, S1, autumn + 25 * HOUR, &d), -1);
	set_tz("UTC");
	stats_free(st);
}

/* ---- baseline ---- */

/* n cracks at hour h of the UTC day starting at day0 + k days */
static void cracks_at(struct stats *st, const char *s, int64_t day0, int k, int h, int n)
{
	for (int i = 0; i < n; i++)
		assert_int_equal(stats_crack(st, s, day0 + k * DAY + h * HOUR + i * MIN, "pop", 1),
				 STATS_OK);
}

static void test_baseline_median(void **state)
{
	struct stats *st = new_stats();
	int64_t d0 = utc(2025, 11, 1, 0, 0);
	int64_t now = d0 + 20 * DAY + 9 * HOUR + 30 * MIN;   /* Nov 21, 09:30 */

	(void)state;
	set_tz("UTC");
	assert_true(stats_baseline(st, S1, now) == STATS_NO_BASELINE);
	/* 2 days of data (Nov 20: 4 at 09h, Nov 19: 2 at 09h): none yet */
	cracks_at(st, S1, d0, 19, 9, 4);
	cracks_at(st, S1, d0, 18, 9, 2);
	/* today's cracks and days in the future never count */
	cracks_at(st, S1, d0, 20, 9, 50);
	cracks_at(st, S1, d0, 22, 9, 50);
	assert_true(stats_baseline(st, S1, now) == STATS_NO_BASELINE);
	/* 3 days: a worn day without cracks at 09h counts as 0 -> median of {0,2,4} */
	assert_int_equal(stats_break(st, S1, d0 + 17 * DAY + 15 * HOUR), STATS_OK);
	assert_true(stats_baseline(st, S1, now) == 2.0);
	/* another hour: {0,0,0} */
	assert_true(stats_baseline(st, S1, now + 2 * HOUR) == 0.0);
	/* 4 days: {0,2,4,7} -> 3.0 */
	cracks_at(st, S1, d0, 16, 9, 7);
	assert_true(stats_baseline(st, S1, now) == 3.0);
	/* 7 days: Nov 14..20 = {9,9,9,7,0,2,4} -> sorted 0 2 4 7 9 9 9 -> 7 */
	cracks_at(st, S1, d0, 13, 9, 9);
	cracks_at(st, S1, d0, 14, 9, 9);
	cracks_at(st, S1, d0, 15, 9, 9);
	assert_true(stats_baseline(st, S1, now) == 7.0);
	/* 9 days: Nov 12 and 13 (8 and 9 days back) are outside the window */
	cracks_at(st, S1, d0, 11, 9, 0 + 1);
	cracks_at(st, S1, d0, 12, 9, 1);
	assert_true(stats_baseline(st, S1, now) == 7.0);
	/* a day later the window is Nov 15..21 = {9,9,7,0,2,4,50} -> 7 */
	assert_true(stats_baseline(st, S1, now + DAY) == 7.0);
	/* other sensors are separate */
	assert_true(stats_baseline(st, S2, now) == STATS_NO_BASELINE);
	stats_free(st);
}

/* The baseline in Berlin follows the local hour and the local days. */
static void test_baseline_local_hour(void **state)
{
	struct stats *st = new_stats();
	/* local midnight of Nov 10 in Berlin */
	int64_t d0 = utc(2025, 11, 9, 23, 0);

	(void)state;
	set_berlin();
	/* 3 local days with 1, 3, 5 cracks at local 08h (07h UTC) */
	cracks_at(st, S1, d0, 0, 8, 1);
	cracks_at(st, S1, d0, 1, 8, 3);
	cracks_at(st, S1, d0, 2, 8, 5);
	assert_true(stats_baseline(st, S1, d0 + 3 * DAY + 8 * HOUR + 59 * MIN) == 3.0);
	assert_true(stats_baseline(st, S1, d0 + 3 * DAY + 7 * HOUR + 59 * MIN) == 0.0);
	/* 00:30 local on day 3 is still "today = day 3": days 0..2 count */
	assert_true(stats_baseline(st, S1, d0 + 3 * DAY + 30 * MIN) == 0.0);
	/* 23:30 local on day 2 (22:30 UTC): only days 0, 1 before it -> none */
	assert_true(stats_baseline(st, S1, d0 + 2 * DAY + 23 * HOUR + 30 * MIN) ==
		    STATS_NO_BASELINE);
	set_tz("UTC");
	stats_free(st);
}

/* ---- week over week ---- */

static json_t *sensor_obj(json_t *o, size_t i)
{
	return json_array_get(json_object_get(o, "sensors"), i);
}

static void test_week_over_week(void **state)
{
	struct stats *st = new_stats();
	struct stats_week w;
	int64_t d0 = utc(2025, 11, 1, 0, 0);
	int64_t now = d0 + 20 * DAY + 18 * HOUR;    /* Nov 21 */
	json_t *o, *wk;

	(void)state;
	set_tz("UTC");
	/* this week: Nov 15..21 */
	cracks_at(st, S1, d0, 14, 10, 3);            /* Nov 15 */
	cracks_at(st, S1, d0, 20, 10, 2);            /* Nov 21, today */
	assert_int_equal(stats_slouch(st, S1, d0 + 20 * DAY + 11 * HOUR,
				      d0 + 20 * DAY + 11 * HOUR + 30 * MIN), STATS_OK);
	/* nothing the week before: null change */
	assert_int_equal(stats_week(st, S1, now, &w), 0);
	assert_int_equal(w.cracks, 5);
	assert_int_equal(w.previous_cracks, 0);
	assert_int_equal(w.slouch_ms, 30 * MIN);
	assert_int_equal(w.days, 2);
	assert_int_equal(w.previous_days, 0);
	o = stats_json(st, now, NULL);
	wk = json_object_get(sensor_obj(o, 0), "week");
	assert_int_equal(json_integer_value(json_object_get(wk, "cracks")), 5);
	assert_int_equal(json_integer_value(json_object_get(wk, "previous_cracks")), 0);
	assert_true(json_is_null(json_object_get(wk, "cracks_change_pct")));
	assert_true(json_is_null(json_object_get(wk, "slouch_change_pct")));
	assert_true(json_real_value(json_object_get(wk, "slouch_min")) == 30.0);
	json_decref(o);

	/* previous week Nov 8..14: 4 cracks, 20 min slouched; Nov 7 is outside */
	cracks_at(st, S1, d0, 7, 10, 1);             /* Nov 8 */
	cracks_at(st, S1, d0, 13, 22, 3);            /* Nov 14 */
	cracks_at(st, S1, d0, 6, 10, 40);            /* Nov 7 */
	assert_int_equal(stats_slouch(st, S1, d0 + 13 * DAY + 23 * HOUR + 50 * MIN,
				      d0 + 14 * DAY + 10 * MIN), STATS_OK);  /* 10 + 10 */
	assert_int_equal(stats_slouch(st, S1, d0 + 7 * DAY, d0 + 7 * DAY + 10 * MIN), STATS_OK);
	assert_int_equal(stats_week(st, S1, now, &w), 0);
	assert_int_equal(w.cracks, 5);
	assert_int_equal(w.previous_cracks, 4);
	assert_int_equal(w.slouch_ms, 40 * MIN);
	assert_int_equal(w.previous_slouch_ms, 20 * MIN);
	assert_int_equal(w.days, 2);
	assert_int_equal(w.previous_days, 2);
	o = stats_json(st, now, S1);
	wk = json_object_get(sensor_obj(o, 0), "week");
	assert_true(json_real_value(json_object_get(wk, "cracks_change_pct")) == 25.0);
	assert_true(json_real_value(json_object_get(wk, "slouch_change_pct")) == 100.0);
	assert_true(json_real_value(json_object_get(wk, "previous_slouch_min")) == 20.0);
	json_decref(o);

	/* a previous week with data but no cracks: no percentage either */
	stats_free(st);
	st = new_stats();
	assert_int_equal(stats_break(st, S1, d0 + 9 * DAY), STATS_OK);
	cracks_at(st, S1, d0, 20, 10, 2);
	o = stats_json(st, now, S1);
	wk = json_object_get(sensor_obj(o, 0), "week");
	assert_true(json_is_null(json_object_get(wk, "cracks_change_pct")));
	assert_int_equal(json_integer_value(json_object_get(wk, "previous_days")), 1);
	json_decref(o);
	/* fewer cracks: a negative change rounded to 0.1 (3 -> 2: -33.3 %) */
	cracks_at(st, S1, d0, 10, 10, 3);
	o = stats_json(st, now, S1);
	wk = json_object_get(sensor_obj(o, 0), "week");
	assert_true(json_real_value(json_object_get(wk, "cracks_change_pct")) == -33.3);
	json_decref(o);
	/* an unknown sensor gives zeros */
	assert_int_equal(stats_week(st, S2, now, &w), 0);
	assert_int_equal(w.cracks + w.previous_cracks + w.days + w.previous_days, 0);
	stats_free(st);
}

/* ---- the JSON object ---- */

/* One worn day: cracks at 09h, 11h, 14h, slouching, sitting 09-12, breaks. */
static void typical_day(struct stats *st, const char *s, int64_t day, int extra)
{
	assert_int_equal(stats_crack(st, s, day + 9 * HOUR + 10 * MIN, "pop", 2), STATS_OK);
	assert_int_equal(stats_crack(st, s, day + 11 * HOUR + 5 * MIN, "pop", 4), STATS_OK);
	assert_int_equal(stats_crack(st, s, day + 11 * HOUR + 40 * MIN, "click", 1), STATS_OK);
	assert_int_equal(stats_crack(st, s, day + 14 * HOUR + 1 * MIN, "pop", 1), STATS_OK);
	assert_int_equal(stats_crack(st, s, day + 14 * HOUR + 2 * MIN, "grind", 1), STATS_OK);
	for (int i = 0; i < extra; i++)
		assert_int_equal(stats_crack(st, s, day + 11 * HOUR + 50 * MIN, "pop", 3), STATS_OK);
	assert_int_equal(stats_slouch(st, s, day + 9 * HOUR + 30 * MIN, day + 9 * HOUR + 42 * MIN),
			 STATS_OK);
	assert_int_equal(stats_slouch(st, s, day + 10 * HOUR, day + 10 * HOUR + 20 * MIN + 30 * SEC),
			 STATS_OK);
	assert_int_equal(stats_slouch(st, s, day + 14 * HOUR + 5 * MIN, day + 14 * HOUR + 15 * MIN),
			 STATS_OK);
	assert_int_equal(stats_sitting(st, s, day + 9 * HOUR, day + 12 * HOUR), STATS_OK);
	for (int i = 0; i < 4; i++)
		assert_int_equal(stats_break(st, s, day + 12 * HOUR + i * HOUR), STATS_OK);
}

/* The example in protocol/websocket-feed.md ("stats"), exactly; the test checks the doc. */
static const char example[] =
	"{\"type\":\"stats\",\"ts\":1764086400000,\"sensors\":[{\"sensor\":\"C0:FF:EE:00:00:02\","
	"\"today\":{\"date\":\"2025-11-25\",\"cracks\":5,\"pop\":3,\"click\":1,\"grind\":1,"
	"\"pops\":9,\"slouch_min\":42.5,\"sitting_min\":180.0,\"breaks\":4,\"hours\":{\"cracks\":"
	"[0,0,0,0,0,0,0,0,0,1,0,2,0,0,2,0,0,0,0,0,0,0,0,0],\"slouch_min\":[0.0,0.0,0.0,0.0,0.0,"
	"0.0,0.0,0.0,0.0,12.0,20.5,0.0,0.0,0.0,10.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0]}},"
	"\"days\":[{\"date\":\"2025-11-25\",\"cracks\":5,\"pop\":3,\"click\":1,\"grind\":1,"
	"\"pops\":9,\"slouch_min\":42.5,\"sitting_min\":180.0,\"breaks\":4},{\"date\":"
	"\"2025-11-24\",\"cracks\":7,\"pop\":5,\"click\":1,\"grind\":1,\"pops\":15,"
	"\"slouch_min\":42.5,\"sitting_min\":180.0,\"breaks\":4},{\"date\":\"2025-11-22\","
	"\"cracks\":6,\"pop\":4,\"click\":1,\"grind\":1,\"pops\":12,\"slouch_min\":42.5,"
	"\"sitting_min\":180.0,\"breaks\":4},{\"date\":\"2025-11-21\",\"cracks\":5,\"pop\":3,"
	"\"click\":1,\"grind\":1,\"pops\":9,\"slouch_min\":42.5,\"sitting_min\":180.0,"
	"\"breaks\":4},{\"date\":\"2025-11-14\",\"cracks\":9,\"pop\":7,\"click\":1,\"grind\":1,"
	"\"pops\":23,\"slouch_min\":0.0,\"sitting_min\":0.0,\"breaks\":0}],"
	"\"baseline_per_hour\":[0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0,1.0,0.0,3.0,0.0,0.0,2.0,0.0,"
	"0.0,0.0,0.0,0.0,0.0,0.0,0.0,0.0],\"week\":{\"cracks\":23,\"previous_cracks\":9,"
	"\"cracks_change_pct\":155.6,\"slouch_min\":170.0,\"previous_slouch_min\":0.0,"
	"\"slouch_change_pct\":null,\"days\":4,\"previous_days\":1}}]}";

/* The doc shows the object as a stats command's reply carries it: without "type". */
static void doc_has_example(const struct stats *st, int64_t now, const char *sensor,
			    const char *id)
{
	json_t *o = stats_json(st, now, sensor);
	char *obj, *want, *doc;
	size_t n = 0;
	FILE *f = fopen("protocol/websocket-feed.md", "r");

	assert_non_null(f);   /* unit tests run from the repository root */
	doc = malloc(1 << 20);
	assert_non_null(doc);
	n = fread(doc, 1, (1 << 20) - 1, f);
	doc[n] = '\0';
	fclose(f);
	json_object_del(o, "type");
	obj = dump(o);
	want = malloc(strlen(obj) + 100);
	assert_non_null(want);
	sprintf(want, "{\"type\":\"reply\",\"id\":\"%s\",\"ok\":true,\"result\":\"ok\",\"stats\":%s}\n",
		id, obj);
	if (!strstr(doc, want))
		fail_msg("protocol/websocket-feed.md lacks the stats reply example:\n%s", want);
	free(want);
	free(obj);
	free(doc);
}

static void test_json_example(void **state)
{
	struct stats *st = new_stats();
	int64_t today = utc(2025, 11, 25, 0, 0), now = today + 16 * HOUR;
	char *s;

	(void)state;
	set_tz("UTC");
	typical_day(st, S2, today, 0);
	typical_day(st, S2, today - DAY, 2);
	typical_day(st, S2, today - 3 * DAY, 1);
	typical_day(st, S2, today - 4 * DAY, 0);
	/* previous week: cracks only */
	cracks_at(st, S2, today, -11, 7, 1);
	for (int i = 0; i < 4; i++)
		assert_int_equal(stats_crack(st, S2, today - 11 * DAY + 8 * HOUR, "pop", 5),
				 STATS_OK);
	cracks_at(st, S2, today, -11, 9, 2);
	assert_int_equal(stats_crack(st, S2, today - 11 * DAY + 20 * HOUR, "click", 0), STATS_OK);
	assert_int_equal(stats_crack(st, S2, today - 11 * DAY + 21 * HOUR, "grind", 0), STATS_OK);
	/* a day in the future is not listed */
	cracks_at(st, S2, today, 1, 7, 1);
	/* another sensor, filtered out */
	cracks_at(st, S1, today, 0, 7, 1);

	s = dump(stats_json(st, now, S2));
	assert_string_equal(s, example);
	free(s);
	doc_has_example(st, now, S2, "st");
	/* a sensor's first day: no baseline, no week before (nulls) */
	doc_has_example(st, now, S1, "st1");

	/* both sensors, by address; an unknown one gives [] */
	{
		json_t *o = stats_json(st, now, NULL);

		assert_int_equal(json_array_size(json_object_get(o, "sensors")), 2);
		assert_string_equal(json_string_value(json_object_get(sensor_obj(o, 0), "sensor")),
				    S1);
		assert_string_equal(json_string_value(json_object_get(sensor_obj(o, 1), "sensor")),
				    S2);
		/* S1 has 1 day of data: no baseline */
		assert_true(json_is_null(json_array_get(
			json_object_get(sensor_obj(o, 0), "baseline_per_hour"), 5)));
		json_decref(o);
		s = dump(stats_json(st, now, "C0:FF:EE:00:00:09"));
		assert_string_equal(s, "{\"type\":\"stats\",\"ts\":1764086400000,\"sensors\":[]}");
		free(s);
	}
	stats_free(st);
}

/* today without data: zeros; days capped at 28, newest first */
static void test_json_empty_today_and_all_days(void **state)
{
	struct stats *st = new_stats();
	int64_t d0 = utc(2025, 10, 1, 0, 0), now = d0 + 61 * DAY + HOUR;
	json_t *o, *so, *days, *today;

	(void)state;
	set_tz("UTC");
	/* 60 worn days: the oldest 4 are no longer kept, the other 56 are all listed */
	for (int k = 0; k < 60; k++)
		cracks_at(st, S1, d0, k, 8, 1);
	o = stats_json(st, now, S1);
	so = sensor_obj(o, 0);
	today = json_object_get(so, "today");
	days = json_object_get(so, "days");
	assert_string_equal(json_string_value(json_object_get(today, "date")), "2025-12-01");
	assert_int_equal(json_integer_value(json_object_get(today, "cracks")), 0);
	assert_int_equal(json_array_size(json_object_get(json_object_get(today, "hours"), "cracks")),
			 24);
	assert_int_equal(json_array_size(days), STATS_JSON_DAYS);
	assert_int_equal(STATS_JSON_DAYS, STATS_MAX_DAYS);
	assert_string_equal(json_string_value(json_object_get(json_array_get(days, 0), "date")),
			    "2025-11-29");
	assert_string_equal(json_string_value(json_object_get(json_array_get(days, 55), "date")),
			    "2025-10-05");
	/* Nov 24 .. Nov 30: 6 days with data (Nov 29 is the last): a baseline */
	assert_true(json_real_value(json_array_get(json_object_get(so, "baseline_per_hour"), 8)) ==
		    1.0);
	json_decref(o);
	stats_free(st);
}

/* ---- bounds and pruning ---- */

static void test_sensor_cap(void **state)
{
	struct stats *st = new_stats();
	int64_t t = utc(2025, 11, 25, 10, 0);
	char name[STATS_SENSOR_LEN];

	(void)state;
	set_tz("UTC");
	for (int i = 0; i < STATS_MAX_SENSORS; i++) {
		snprintf(name, sizeof(name), "C0:FF:EE:00:01:%02X", i);
		assert_int_equal(stats_crack(st, name, t, "pop", 1), STATS_OK);
	}
	assert_int_equal(stats_sensor_count(st), STATS_MAX_SENSORS);
	assert_int_equal(stats_crack(st, S1, t, "pop", 1), STATS_EFULL);
	assert_int_equal(stats_slouch(st, S1, t, t + MIN), STATS_EFULL);
	assert_int_equal(stats_sitting(st, S1, t, t + MIN), STATS_EFULL);
	assert_int_equal(stats_break(st, S1, t), STATS_EFULL);
	assert_int_equal(stats_sensor_count(st), STATS_MAX_SENSORS);
	/* known ones still count */
	assert_int_equal(stats_crack(st, "C0:FF:EE:00:01:00", t, "pop", 1), STATS_OK);
	assert_int_equal(get_day(st, "C0:FF:EE:00:01:00", t).pop, 2);
	/* forgetting one makes room */
	assert_int_equal(stats_forget_sensor(st, "C0:FF:EE:00:01:07"), 0);
	assert_int_equal(stats_forget_sensor(st, "C0:FF:EE:00:01:07"), -1);
	assert_int_equal(stats_crack(st, S1, t, "pop", 1), STATS_OK);
	assert_int_equal(stats_sensor_count(st), STATS_MAX_SENSORS);
	stats_free(st);
}

static void test_day_cap_and_old_input(void **state)
{
	struct stats *st = new_stats();
	int64_t d0 = utc(2025, 9, 1, 0, 0);
	struct stats_day d;

	(void)state;
	set_tz("UTC");
	for (int k = 0; k < STATS_MAX_DAYS; k++)
		assert_int_equal(stats_break(st, S1, d0 + k * DAY + HOUR), STATS_OK);
	/* full: an input older than every kept day is dropped */
	assert_int_equal(stats_break(st, S1, d0 - DAY), STATS_EOLD);
	assert_int_equal(stats_day(st, S1, d0 - DAY, &d), -1);
	/* a new day drops the oldest */
	assert_int_equal(stats_break(st, S1, d0 + STATS_MAX_DAYS * DAY), STATS_OK);
	assert_int_equal(stats_day(st, S1, d0, &d), -1);
	assert_int_equal(stats_day(st, S1, d0 + DAY, &d), 0);
	/* a span that starts on dropped days keeps the part it can */
	assert_int_equal(stats_slouch(st, S1, d0 + 23 * HOUR, d0 + DAY + 30 * MIN), STATS_EOLD);
	assert_int_equal(get_day(st, S1, d0 + DAY).slouch_ms, 30 * MIN);
	/* with room again, a day older than the oldest kept one is taken */
	assert_int_equal(stats_forget_before(st, d0 + 10 * DAY), 9);
	assert_int_equal(stats_crack(st, S1, d0 + 5 * DAY, "pop", 1), STATS_OK);
	assert_int_equal(stats_day(st, S1, d0 + 5 * DAY, &d), 0);
	assert_int_equal(stats_day(st, S1, d0 + 9 * DAY, &d), -1);
	/* an absurdly long span is clipped, not looped over for years */
	assert_int_equal(stats_sitting(st, S2, 0, d0), STATS_EOLD);
	assert_int_equal(get_day(st, S2, d0 - HOUR).sitting_ms, DAY);
	stats_free(st);
}

static void test_saturation(void **state)
{
	struct stats *st = new_stats();
	int64_t t = utc(2025, 11, 25, 10, 0);
	struct stats_day d;

	(void)state;
	set_tz("UTC");
	/* overlapping slouches: an hour bucket holds at most 2 h, a day 25 h */
	for (int i = 0; i < 5; i++)
		assert_int_equal(stats_slouch(st, S1, t, t + HOUR), STATS_OK);
	d = get_day(st, S1, t);
	assert_int_equal(d.hour_slouch_ms[10], STATS_MAX_HOUR_MS);
	assert_int_equal(d.slouch_ms, STATS_MAX_HOUR_MS);
	for (int i = 0; i < 3; i++)
		assert_int_equal(stats_sitting(st, S1, t - 10 * HOUR, t + 14 * HOUR - 1), STATS_OK);
	assert_int_equal(get_day(st, S1, t).sitting_ms, STATS_MAX_DAY_MS);
	for (int i = 0; i < 3; i++)
		assert_int_equal(stats_slouch(st, S1, t - 10 * HOUR, t + 14 * HOUR - 1), STATS_OK);
	d = get_day(st, S1, t);
	assert_int_equal(d.slouch_ms, STATS_MAX_DAY_MS);
	{
		int64_t sum = 0;

		for (int h = 0; h < 24; h++)
			sum += d.hour_slouch_ms[h];
		assert_int_equal(sum, d.slouch_ms);
	}
	/* and it still saves and loads */
	{
		char *s = stats_save(st), err[200];
		struct stats *st2 = new_stats();

		assert_non_null(s);
		assert_int_equal(stats_load(st2, s, err, sizeof(err)), 0);
		free(s);
		stats_free(st2);
	}
	stats_free(st);
}

static void test_forget_before(void **state)
{
	struct stats *st = new_stats();
	int64_t d0 = utc(2025, 11, 1, 0, 0);
	struct stats_day d;

	(void)state;
	set_berlin();
	for (int k = 0; k < 5; k++)
		assert_int_equal(stats_break(st, S1, d0 + k * DAY + 12 * HOUR), STATS_OK);
	assert_int_equal(stats_break(st, S2, d0 + 12 * HOUR), STATS_OK);
	/* Nov 3, 23:30 UTC is Nov 4 in Berlin: Nov 1..3 go */
	assert_int_equal(stats_forget_before(st, d0 + 2 * DAY + 23 * HOUR + 30 * MIN), 3 + 1);
	assert_int_equal(stats_sensor_count(st), 1);
	assert_int_equal(stats_day(st, S1, d0 + 2 * DAY + 12 * HOUR, &d), -1);
	assert_int_equal(stats_day(st, S1, d0 + 3 * DAY + 12 * HOUR, &d), 0);
	assert_int_equal(stats_day(st, S2, d0 + 12 * HOUR, &d), -1);
	assert_int_equal(stats_forget_before(st, d0), 0);
	assert_int_equal(stats_forget_before(st, -1), 0);
	assert_int_equal(stats_forget_before(st, d0 + 30 * DAY), 2);
	assert_int_equal(stats_sensor_count(st), 0);
	set_tz("UTC");
	stats_free(st);
}

/* ---- save / load ---- */

static struct stats *rich_state(void)
{
	struct stats *st = new_stats();
	int64_t d0 = utc(2025, 10, 20, 0, 0);

	for (int k = 0; k < 20; k += 2) {
		typical_day(st, S1, d0 + k * DAY, k % 3);
		if (k % 4 == 0)
			typical_day(st, S2, d0 + k * DAY + 3 * HOUR, 1);
	}
	assert_int_equal(stats_slouch(st, S1, d0 + 5 * DAY + 23 * HOUR, d0 + 6 * DAY + HOUR),
			 STATS_OK);
	assert_int_equal(stats_sitting(st, "AB", d0, d0 + 1), STATS_OK);
	return st;
}

static void test_save_load_round_trip(void **state)
{
	struct stats *a, *b;
	char *s1, *s2, err[200];
	int64_t now = utc(2025, 11, 8, 12, 0);
	json_t *ja, *jb;

	(void)state;
	set_tz("UTC");
	a = rich_state();
	s1 = stats_save(a);
	assert_non_null(s1);
	{
		static const char head[] = "{\"v\":1,\"sensors\":[{\"sensor\":\"AB\",\"days\":"
					   "[{\"date\":\"2025-10-20\",\"pop\":0,";

		assert_int_equal(strncmp(s1, head, strlen(head)), 0);
	}
	b = new_stats();
	assert_int_equal(stats_crack(b, S2, now, "pop", 1), STATS_OK);   /* replaced by load */
	assert_int_equal(stats_load(b, s1, err, sizeof(err)), 0);
	s2 = stats_save(b);
	assert_string_equal(s1, s2);
	assert_int_equal(stats_sensor_count(b), 3);
	for (int k = -1; k < 22; k++) {
		int64_t t = utc(2025, 10, 20, 12, 0) + k * DAY;
		const char *names[] = { S1, S2, "AB" };

		for (int i = 0; i < 3; i++) {
			struct stats_day da, db;
			int ra = stats_day(a, names[i], t, &da), rb = stats_day(b, names[i], t, &db);

			assert_int_equal(ra, rb);
			assert_memory_equal(&da, &db, sizeof(da));
		}
		assert_true(stats_baseline(a, S1, t) == stats_baseline(b, S1, t));
	}
	ja = stats_json(a, now, NULL);
	jb = stats_json(b, now, NULL);
	assert_true(json_equal(ja, jb));
	json_decref(ja);
	json_decref(jb);
	free(s1);
	free(s2);

	/* empty */
	stats_free(a);
	a = new_stats();
	s1 = stats_save(a);
	assert_string_equal(s1, "{\"v\":1,\"sensors\":[]}");
	assert_int_equal(stats_load(b, s1, err, sizeof(err)), 0);
	assert_int_equal(stats_sensor_count(b), 0);
	free(s1);
	stats_free(a);
	stats_free(b);
}

/* a valid single-day state with one member's text replaced */
static char *day_doc(const char *member, const char *value)
{
	static const char *const keys[] = { "date", "pop", "click", "grind", "pops", "breaks",
					     "slouch_ms", "sitting_ms", "hour_cracks",
					     "hour_slouch_ms" };
	static const char *const vals[] = {
		"\"2025-11-25\"", "1", "1", "0", "3", "2", "60000", "120000",
		"[0,0,0,0,0,0,0,0,0,2,0,0,0,0,0,0,0,0,0,0,0,0,0,0]",
		"[0,0,0,0,0,0,0,0,0,0,60000,0,0,0,0,0,0,0,0,0,0,0,0,0]"
	};
	char *out = malloc(4096);
	size_t n;

	assert_non_null(out);
	n = (size_t)snprintf(out, 4096, "{\"v\":1,\"sensors\":[{\"sensor\":\"%s\",\"days\":[{", S1);
	for (size_t i = 0; i < 10; i++)
		n += (size_t)snprintf(out + n, 4096 - n, "%s\"%s\":%s", i ? "," : "", keys[i],
				      member && !strcmp(member, keys[i]) ? value : vals[i]);
	snprintf(out + n, 4096 - n, "}]}]}");
	return out;
}

static void expect_load_fails(struct stats *st, const char *text, const char *want_in_err)
{
	char err[256];
	char *before = stats_save(st), *after;

	memset(err, 'x', sizeof(err));
	if (stats_load(st, text, err, sizeof(err)) != -1)
		fail_msg("loaded: %.200s", text);
	assert_true(strlen(err) > 0 && strlen(err) < sizeof(err));
	if (want_in_err && !strstr(err, want_in_err))
		fail_msg("error \"%s\" lacks \"%s\" for %.200s", err, want_in_err, text);
	after = stats_save(st);
	assert_string_equal(before, after);   /* unchanged */
	free(before);
	free(after);
}

static void test_load_rejects(void **state)
{
	struct stats *st = new_stats();
	char err[256], *doc, *big;
	size_t n;

	(void)state;
	set_tz("UTC");
	assert_int_equal(stats_crack(st, S2, utc(2025, 11, 1, 10, 0), "pop", 1), STATS_OK);

	/* the template itself loads */
	doc = day_doc(NULL, NULL);
	{
		struct stats *t = new_stats();

		assert_int_equal(stats_load(t, doc, err, sizeof(err)), 0);
		assert_int_equal(get_day(t, S1, utc(2025, 11, 25, 9, 0)).hour_cracks[9], 2);
		stats_free(t);
	}
	/* every truncation fails */
	n = strlen(doc);
	for (size_t i = 0; i < n; i++) {
		char *t = strndup(doc, i);

		assert_non_null(t);
		expect_load_fails(st, t, NULL);
		free(t);
	}
	free(doc);

	expect_load_fails(st, "", "not JSON");
	expect_load_fails(st, "null", NULL);
	expect_load_fails(st, "[]", NULL);
	expect_load_fails(st, "{\"v\":1,\"sensors\":[]", "not JSON");
	expect_load_fails(st, "{\"v\":2,\"sensors\":[]}", "\"v\"");
	expect_load_fails(st, "{\"v\":\"1\",\"sensors\":[]}", "\"v\"");
	expect_load_fails(st, "{\"v\":1.0,\"sensors\":[]}", "\"v\"");
	expect_load_fails(st, "{\"sensors\":[]}", "\"v\"");
	expect_load_fails(st, "{\"v\":1,\"sensors\":{}}", "sensors");
	expect_load_fails(st, "{\"v\":1,\"sensors\":[],\"x\":0}", "unknown");
	expect_load_fails(st, "{\"v\":1,\"v\":1,\"sensors\":[]}", "not JSON");
	expect_load_fails(st, "{\"v\":1,\"sensors\":[1]}", "sensors[0]");
	expect_load_fails(st, "{\"v\":1,\"sensors\":[{\"sensor\":\"A\",\"days\":[]}]}", "days");
	expect_load_fails(st, "{\"v\":1,\"sensors\":[{\"sensor\":\"\",\"days\":[]}]}", "sensor");
	expect_load_fails(st, "{\"v\":1,\"sensors\":[{\"sensor\":\"A B\",\"days\":[]}]}", "sensor");
	expect_load_fails(st, "{\"v\":1,\"sensors\":[{\"sensor\":\"C0:FF:EE:00:00:01:22\","
			      "\"days\":[]}]}", "sensor");
	expect_load_fails(st, "{\"v\":1,\"sensors\":[{\"sensor\":\"A\",\"days\":[],\"x\":1}]}",
			  "sensors[0]");

#define BAD(member, value, msg)                           \
	do {                                              \
		doc = day_doc(member, value);             \
		expect_load_fails(st, doc, msg);          \
		free(doc);                                \
	} while (0)
	BAD("pop", "-1", "\"pop\"");
	BAD("pop", "1.5", "\"pop\"");
	BAD("pop", "\"1\"", "\"pop\"");
	BAD("pop", "null", "\"pop\"");
	BAD("click", "1000001", "\"click\"");
	BAD("pops", "99999999999999999999999999", "not JSON");
	BAD("pops", "-3", "\"pops\"");
	BAD("breaks", "-1", "\"breaks\"");
	BAD("slouch_ms", "-60000", "\"slouch_ms\"");
	BAD("slouch_ms", "61000", "sum");
	BAD("sitting_ms", "90000001", "\"sitting_ms\"");
	BAD("sitting_ms", "-1", "\"sitting_ms\"");
	BAD("date", "\"2025-02-29\"", "date");
	BAD("date", "\"2025-13-01\"", "date");
	BAD("date", "\"2025-1-01\"", "date");
	BAD("date", "\"1900-01-01\"", "date");
	BAD("date", "\"2025-11-25T00\"", "date");
	BAD("date", "20251125", "date");
	BAD("hour_cracks", "[0,0,0,0,0,0,0,0,0,1,0,0,0,0,0,0,0,0,0,0,0,0,0,0]", "sum");
	BAD("hour_cracks", "[0,0,0,0,0,0,0,0,0,2,0,0,0,0,0,0,0,0,0,0,0,0,0]", "hour_cracks");
	BAD("hour_cracks", "[0,0,0,0,0,0,0,0,0,2,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]", "hour_cracks");
	BAD("hour_cracks", "[0,0,0,0,0,0,0,0,0,3,-1,0,0,0,0,0,0,0,0,0,0,0,0,0]", "hour_cracks");
	BAD("hour_cracks", "{}", "hour_cracks");
	BAD("hour_slouch_ms", "[0,0,0,0,0,0,0,0,0,0,7200001,0,0,0,0,0,0,0,0,0,0,0,0,0]",
	    "hour_slouch_ms");
	BAD("hour_slouch_ms", "[0,0,0,0,0,0,0,0,0,0,60000.0,0,0,0,0,0,0,0,0,0,0,0,0,0]",
	    "hour_slouch_ms");
	BAD("hour_slouch_ms", "[0,0,0,0,0,0,0,0,0,0,[60000],0,0,0,0,0,0,0,0,0,0,0,0,0]",
	    "hour_slouch_ms");
#undef BAD
	/* a missing member and an extra one */
	doc = day_doc(NULL, NULL);
	{
		char *p = strstr(doc, "\"breaks\":2,");

		memmove(p, p + 11, strlen(p + 11) + 1);
		expect_load_fails(st, doc, "missing \"breaks\"");
		free(doc);
		doc = day_doc("breaks", "2,\"pain\":3");
		expect_load_fails(st, doc, "unknown");
		free(doc);
	}

	/* duplicate sensors, unordered and repeated dates */
	{
		char *one = day_doc(NULL, NULL), *two = malloc(8192);
		const char *days = strstr(one, "\"days\":") + 7;
		size_t dl = strlen(days) - 3;   /* without "}]}" */

		assert_non_null(two);
		snprintf(two, 8192, "{\"v\":1,\"sensors\":[{\"sensor\":\"%s\",\"days\":%.*s},"
			 "{\"sensor\":\"%s\",\"days\":%.*s}]}", S1, (int)dl, days, S1, (int)dl, days);
		expect_load_fails(st, two, "twice");
		/* the same day twice */
		snprintf(two, 8192, "{\"v\":1,\"sensors\":[{\"sensor\":\"%s\",\"days\":[%.*s,%.*s]}]}",
			 S1, (int)dl - 2, days + 1, (int)dl - 2, days + 1);
		expect_load_fails(st, two, "increasing");
		free(one);
		free(two);
	}

	/* huge arrays: 65 sensors, 57 days, a million hour entries */
	{
		size_t cap = 1u << 20;

		big = malloc(cap);
		assert_non_null(big);
		n = (size_t)snprintf(big, cap, "{\"v\":1,\"sensors\":[");
		for (int i = 0; i <= STATS_MAX_SENSORS; i++)
			n += (size_t)snprintf(big + n, cap - n, "%s{\"sensor\":\"S%d\",\"days\":[]}",
					      i ? "," : "", i);
		snprintf(big + n, cap - n, "]}");
		expect_load_fails(st, big, "more than 64 sensors");

		n = (size_t)snprintf(big, cap, "{\"v\":1,\"sensors\":[{\"sensor\":\"A\",\"days\":[");
		for (int i = 0; i <= STATS_MAX_DAYS; i++)
			n += (size_t)snprintf(big + n, cap - n, "%s{}", i ? "," : "");
		snprintf(big + n, cap - n, "]}]}");
		expect_load_fails(st, big, "days");

		doc = day_doc("hour_cracks", "[0]");
		free(big);
		cap = 4u << 20;
		big = malloc(cap);
		assert_non_null(big);
		n = (size_t)snprintf(big, cap, "%.*s", (int)(strstr(doc, "[0]") - doc + 1), doc);
		for (int i = 0; i < 1000000; i++) {
			big[n++] = '0';
			big[n++] = ',';
		}
		snprintf(big + n, cap - n, "0%s", strstr(doc, "[0]") + 2);
		expect_load_fails(st, big, "hour_cracks");
		free(doc);
		free(big);
	}
	/* deep nesting and oversized input */
	{
		size_t depth = 100000, cap = 2 * depth + 64;

		big = malloc(cap);
		assert_non_null(big);
		n = (size_t)snprintf(big, cap, "{\"v\":1,\"sensors\":");
		memset(big + n, '[', depth);
		memset(big + n + depth, ']', depth);
		snprintf(big + n + 2 * depth, cap - n - 2 * depth, "}");
		expect_load_fails(st, big, NULL);
		free(big);

		cap = (16u << 20) + 2;
		big = malloc(cap);
		assert_non_null(big);
		memset(big, ' ', cap - 1);
		big[cap - 1] = '\0';
		expect_load_fails(st, big, "larger");
		free(big);
	}
	/* NULL arguments, no error buffer */
	assert_int_equal(stats_load(st, NULL, err, sizeof(err)), -1);
	assert_int_equal(stats_load(NULL, "{}", err, sizeof(err)), -1);
	assert_int_equal(stats_load(st, "x", NULL, 0), -1);
	assert_int_equal(stats_sensor_count(st), 1);
	stats_free(st);
}

/* Flipping any byte of a real save to a few hostile values never crashes. */
static void test_load_mutations(void **state)
{
	struct stats *a = rich_state(), *b = new_stats();
	char *s, err[256];
	static const char subst[] = { '-', '9', '"', '{', ']', '\0', '.', 'e' };
	size_t n;

	(void)state;
	set_tz("UTC");
	s = stats_save(a);
	assert_non_null(s);
	n = strlen(s);
	for (size_t i = 0; i < n; i += 7) {
		char keep = s[i];

		for (size_t k = 0; k < sizeof(subst); k++) {
			s[i] = subst[k];
			if (stats_load(b, s, err, sizeof(err)) == 0) {
				char *again = stats_save(b);
				struct stats *c = new_stats();

				/* whatever loads saves and loads again */
				assert_non_null(again);
				assert_int_equal(stats_load(c, again, err, sizeof(err)), 0);
				free(again);
				stats_free(c);
			}
		}
		s[i] = keep;
	}
	free(s);
	stats_free(a);
	stats_free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cracks_by_kind_and_hour),
		cmocka_unit_test(test_bad_inputs),
		cmocka_unit_test(test_spans_split_utc),
		cmocka_unit_test(test_spans_split_berlin),
		cmocka_unit_test(test_spans_split_berlin_dst),
		cmocka_unit_test(test_baseline_median),
		cmocka_unit_test(test_baseline_local_hour),
		cmocka_unit_test(test_week_over_week),
		cmocka_unit_test(test_json_example),
		cmocka_unit_test(test_json_empty_today_and_all_days),
		cmocka_unit_test(test_sensor_cap),
		cmocka_unit_test(test_day_cap_and_old_input),
		cmocka_unit_test(test_saturation),
		cmocka_unit_test(test_forget_before),
		cmocka_unit_test(test_save_load_round_trip),
		cmocka_unit_test(test_load_rejects),
		cmocka_unit_test(test_load_mutations),
	};

	set_tz("UTC");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
