/*
 * stats.h - per-sensor aggregation over days and weeks: cracks by kind,
 * slouch minutes, sitting time and breaks per local calendar day and per
 * hour of day, the wearer's usual crack rate per hour of day (the baseline
 * that feeds alerts_crack_baseline()), week-over-week change, the "stats"
 * JSON object for the feed and the CLI, and its own persistence format.
 *
 * Owns: the day/hour bucketing, the bounds (STATS_MAX_SENSORS sensors x
 * STATS_MAX_DAYS days), the baseline and week rules, the "stats" message
 * shape below and the save format. Pure: no I/O, no clock reads, no
 * logging; every time is passed in as epoch ms. Local days and hours come
 * from localtime_r(), so they follow TZ (call tzset() after changing it).
 *
 * Days: a day is a local calendar date. A day "has data" for a sensor when
 * any input for that sensor touched it (a crack, a break, or any part of a
 * slouch or sitting span, even of zero length); only such days are kept.
 * Intervals (slouch, sitting) are split at local hour boundaries, so a span
 * across midnight counts on both days and in the right hour buckets. On a
 * DST day the repeated hour shares one bucket (so one hour bucket may hold
 * up to 2 h) and the skipped hour's bucket stays empty.
 * Bounds: at most STATS_MAX_DAYS days per sensor: a new day beyond that
 * drops the sensor's oldest day; an input for a day older than every kept
 * day of a full sensor is dropped (STATS_EOLD). At most STATS_MAX_SENSORS
 * sensors: inputs for more are ignored (STATS_EFULL). Counters saturate at
 * the STATS_MAX_* limits, so a saved state always loads again. The daemon
 * calls stats_forget_before(now - STATS_MAX_DAYS days) now and then.
 *
 * Baseline (hour h of day D): the median, over the days D-7 .. D-1 that
 * have data for the sensor, of their crack count in hour h (a worn day with
 * no crack in hour h counts as 0); the mean of the middle two for an even
 * number of days. Fewer than STATS_BASELINE_MIN_DAYS (3) such days: no
 * baseline (STATS_NO_BASELINE, -1.0, the same as ALERTS_NO_BASELINE).
 * Week: "week" is the local days D-6 .. D (today included, so far),
 * "previous" is D-13 .. D-7.
 *
 * The "stats" object (stats_json; compact, reals with one decimal) is
 * {"type":"stats","ts":..,"sensors":[..]}; protocol/websocket-feed.md
 * ("stats") shows it as the feed sends it, without "type", and
 * tests/unit/test_stats.c checks that example against this code.
 *
 * - ts: the now_ms the object was built for. sensors: every sensor with kept
 *   days, by address (or just the one asked for; [] if it has none).
 * - today: the local day containing ts, all zeros if it has no data yet.
 *   cracks = pop + click + grind (crack episodes; a merged burst counts
 *   once); pops: pops over all episodes (an episode's count); slouch_min and
 *   sitting_min: minutes; breaks: posture breaks. hours: 24 buckets by local
 *   hour of day (index 0 = 00:00-01:00), crack episodes and slouch minutes.
 * - days: the most recent days with data up to and including today (days
 *   without data are left out, dates are local), newest first, at most
 *   STATS_JSON_DAYS (56, every kept day); the same members as today without hours.
 * - baseline_per_hour: the baseline for each hour of today (see above), in
 *   crack episodes per hour; all 24 null while there is no baseline.
 * - week: the sums over this week and the previous one; days and
 *   previous_days: how many days of each had data (sums over weeks with few
 *   worn days compare badly); *_change_pct: (week - previous) / previous x
 *   100, null when the previous week has no data or its sum is 0.
 * Minutes and percentages are rounded to 0.1.
 */
#ifndef SW_STATS_H
#define SW_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define STATS_MAX_SENSORS 64
#define STATS_MAX_DAYS 56
#define STATS_JSON_DAYS STATS_MAX_DAYS   /* every kept day: 8 weeks */
#define STATS_BASELINE_DAYS 7
#define STATS_BASELINE_MIN_DAYS 3
#define STATS_SENSOR_LEN 18              /* "AA:BB:CC:DD:EE:FF" + NUL */
#define STATS_NO_BASELINE (-1.0)
#define STATS_HOURS 24
/* limits: inputs saturate there, stats_load rejects anything above */
#define STATS_MAX_POPS 1000              /* pops of one crack episode */
#define STATS_MAX_COUNT 1000000u         /* episodes, breaks per day or hour */
#define STATS_MAX_DAY_POPS 1000000000u   /* pops per day */
#define STATS_MAX_DAY_MS (25LL * 3600 * 1000)  /* slouch or sitting per day */
#define STATS_MAX_HOUR_MS (2LL * 3600 * 1000)  /* slouch per hour bucket */
/* times accepted: [0, 2100-01-01T00:00:00Z) */
#define STATS_MAX_TS_MS 4102444800000LL
#define STATS_SAVE_VERSION 1

enum stats_result {
	STATS_OK = 0,
	STATS_EINVAL = -1,   /* NULL/bad sensor, unknown kind, bad time or span */
	STATS_EFULL = -2,    /* a new sensor beyond STATS_MAX_SENSORS: ignored */
	STATS_EOLD = -3,     /* (part of) the input fell on days no longer kept */
	STATS_ENOMEM = -4,
};

/* One sensor's local day. */
struct stats_day {
	int32_t day;                        /* days since 1970-01-01 (local date) */
	uint32_t pop, click, grind;         /* crack episodes by kind */
	uint32_t pops;                      /* pops over all episodes */
	uint32_t breaks;
	int64_t slouch_ms, sitting_ms;
	uint32_t hour_cracks[STATS_HOURS];  /* by local hour of day */
	int64_t hour_slouch_ms[STATS_HOURS];
};

struct stats_week {
	uint64_t cracks, previous_cracks;
	int64_t slouch_ms, previous_slouch_ms;
	unsigned days, previous_days;       /* days with data */
};

struct stats;

/* NULL on allocation failure. */
struct stats *stats_new(void);
void stats_free(struct stats *st);

/*
 * Inputs: sensor is 1..STATS_SENSOR_LEN-1 printable ASCII characters
 * (no space). Return an enum stats_result (STATS_OK = 0).
 */
/* One crack episode: kind "pop" | "click" | "grind", pops 0..STATS_MAX_POPS. */
int stats_crack(struct stats *st, const char *sensor, int64_t ts_ms, const char *kind,
		unsigned pops);
/* A slouch from its onset to its end (end >= onset). */
int stats_slouch(struct stats *st, const char *sensor, int64_t onset_ms, int64_t end_ms);
/* Time spent sitting, [from, to) (to >= from). Spans are the caller's:
 * overlapping spans are counted twice (up to the per-day limit). */
int stats_sitting(struct stats *st, const char *sensor, int64_t from_ms, int64_t to_ms);
/* One posture break. */
int stats_break(struct stats *st, const char *sensor, int64_t ts_ms);

/* The baseline for the local hour of day containing now_ms, or
 * STATS_NO_BASELINE (also for an unknown sensor or a bad time). */
double stats_baseline(const struct stats *st, const char *sensor, int64_t now_ms);
/* The sensor's record of the local day containing ts_ms: 0, or -1 if that
 * day has no data (out zeroed, out->day still set) or the arguments are bad. */
int stats_day(const struct stats *st, const char *sensor, int64_t ts_ms, struct stats_day *out);
/* This week against the previous one, as of now_ms: 0, or -1 if bad args
 * (an unknown sensor gives zeros and 0). */
int stats_week(const struct stats *st, const char *sensor, int64_t now_ms, struct stats_week *out);
/* Number of sensors with kept days. */
size_t stats_sensor_count(const struct stats *st);

/* Drops every day before the local day containing epoch_ms (that day is
 * kept), and sensors left without days. Returns the number of days dropped. */
size_t stats_forget_before(struct stats *st, int64_t epoch_ms);
/* Drops one sensor: 0, or -1 if unknown. */
int stats_forget_sensor(struct stats *st, const char *sensor);

/* The "stats" object above (a new reference), for every sensor (NULL) or
 * one. NULL on allocation failure or a bad now_ms. Dump it with
 * JSON_REAL_PRECISION(6) or more, like feed_json.c, so 0.1 stays "0.1". */
json_t *stats_json(const struct stats *st, int64_t now_ms, const char *sensor_or_NULL);

/*
 * Persistence: compact JSON text, malloc'd (free()), NULL on allocation
 * failure:
 *   {"v":1,"sensors":[{"sensor":"C0:FF:EE:00:00:02","days":[{"date":"2025-11-24",
 *    "pop":9,"click":2,"grind":0,"pops":20,"breaks":6,"slouch_ms":5700000,
 *    "sitting_ms":24618000,"hour_cracks":[24 ints],"hour_slouch_ms":[24 ints]}, ...]}, ...]}
 * Days oldest first, dates are local calendar dates (kept as dates, so a
 * change of TZ does not move them).
 */
char *stats_save(const struct stats *st);
/*
 * Replaces st's contents with a saved state. Strict: every member present,
 * no unknown member, integers only, within the limits above, at most
 * STATS_MAX_SENSORS sensors of at most STATS_MAX_DAYS days, dates valid and
 * strictly increasing, sensors unique, hour buckets summing to the day's
 * totals. 0, or -1 with a message in err (if errlen > 0) and st unchanged.
 */
int stats_load(struct stats *st, const char *json, char *err, size_t errlen);

#endif
