/*
 * stats.c - per-sensor day/hour aggregation, baseline, week-over-week, the
 * "stats" JSON object and the save/load format (see stats.h). Pure: no
 * I/O, no clock reads; local days via localtime_r().
 */
#include "stats.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define HOUR_MS (3600LL * 1000)
#define DAY_MS (24 * HOUR_MS)
/* an interval is clipped to this much before its end: older parts could
 * not be kept anyway, and it bounds the splitting loop */
#define MAX_SPAN_MS ((STATS_MAX_DAYS + 2) * DAY_MS)
/* stats_load: input text larger than this is refused unparsed */
#define MAX_SAVE_TEXT (16u * 1024 * 1024)
/* local dates accepted by stats_load (UTC-12 .. UTC+14 of the time range) */
#define MIN_YEAR 1969
#define MAX_YEAR 2100
/* "YYYY-MM-DD" + NUL, with room the compiler can prove */
#define DATE_LEN 24

struct sensor {
	char name[STATS_SENSOR_LEN];
	size_t ndays;
	struct stats_day days[STATS_MAX_DAYS];   /* ascending by day */
};

struct stats {
	size_t n;
	struct sensor *s[STATS_MAX_SENSORS];     /* ascending by name */
};

/* ---- calendar ---- */

/* Howard Hinnant's days_from_civil / civil_from_days (proleptic Gregorian). */
static int32_t days_from_civil(int y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;

	return (int32_t)(era * 146097 + (int)doe - 719468);
}

static void civil_from_days(int32_t z, int *y, unsigned *m, unsigned *d)
{
	z += 719468;
	int era = (z >= 0 ? z : z - 146096) / 146097;
	unsigned doe = (unsigned)(z - era * 146097);
	unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	unsigned mp = (5 * doy + 2) / 153;

	*d = doy - (153 * mp + 2) / 5 + 1;
	*m = mp < 10 ? mp + 3 : mp - 9;
	*y = (int)yoe + era * 400 + (*m <= 2);
}

static void format_date(int32_t day, char out[DATE_LEN])
{
	int y;
	unsigned m, d;

	civil_from_days(day, &y, &m, &d);
	snprintf(out, DATE_LEN, "%04u-%02u-%02u", (unsigned)(y < 0 ? 0 : y) % 10000, m % 100, d % 100);
}

/* "YYYY-MM-DD", a real date within MIN_YEAR..MAX_YEAR: 0, else -1. */
static int parse_date(const char *s, int32_t *day)
{
	int y = 0;
	unsigned m = 0, d = 0, v[8];
	static const int pos[8] = { 0, 1, 2, 3, 5, 6, 8, 9 };

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
		return -1;
	for (int i = 0; i < 8; i++) {
		if (s[pos[i]] < '0' || s[pos[i]] > '9')
			return -1;
		v[i] = (unsigned)(s[pos[i]] - '0');
	}
	y = (int)(v[0] * 1000 + v[1] * 100 + v[2] * 10 + v[3]);
	m = v[4] * 10 + v[5];
	d = v[6] * 10 + v[7];
	if (y < MIN_YEAR || y > MAX_YEAR || m < 1 || m > 12 || d < 1 || d > 31)
		return -1;
	*day = days_from_civil(y, m, d);

	int y2;
	unsigned m2, d2;

	civil_from_days(*day, &y2, &m2, &d2);
	return y2 == y && m2 == m && d2 == d ? 0 : -1;   /* rejects 02-30 etc. */
}

static bool ts_ok(int64_t ms)
{
	return ms >= 0 && ms < STATS_MAX_TS_MS;
}

/*
 * The local day and hour containing ms (ts_ok), and where the next local
 * hour begins (> ms). 0, or -1 if localtime_r fails.
 */
static int local_slot(int64_t ms, int32_t *day, int *hour, int64_t *next_hour_ms)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (!localtime_r(&t, &tm))
		return -1;
	*day = days_from_civil(tm.tm_year + 1900, (unsigned)tm.tm_mon + 1, (unsigned)tm.tm_mday);
	*hour = tm.tm_hour >= 0 && tm.tm_hour < STATS_HOURS ? tm.tm_hour : 0;
	if (next_hour_ms) {
		int sec = tm.tm_min * 60 + (tm.tm_sec > 59 ? 59 : tm.tm_sec);

		*next_hour_ms = ms - ms % 1000 + (int64_t)(3600 - sec) * 1000;
	}
	return 0;
}

static int32_t local_day(int64_t ms)
{
	int32_t day;
	int hour;

	return local_slot(ms, &day, &hour, NULL) == 0 ? day : INT32_MIN;
}

/* ---- sensors and days ---- */

static bool sensor_name_ok(const char *s)
{
	size_t n;

	if (!s)
		return false;
	for (n = 0; s[n]; n++)
		if (n >= STATS_SENSOR_LEN - 1 || s[n] < 0x21 || s[n] > 0x7e)
			return false;
	return n > 0;
}

/* The index of sensor name, or -(insertion point) - 1. */
static long sensor_index(const struct stats *st, const char *name)
{
	size_t lo = 0, hi = st->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(st->s[mid]->name, name);

		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -(long)lo - 1;
}

static const struct sensor *sensor_find(const struct stats *st, const char *name)
{
	long i;

	if (!st || !sensor_name_ok(name))
		return NULL;
	i = sensor_index(st, name);
	return i >= 0 ? st->s[i] : NULL;
}

/* Finds or adds a sensor: STATS_OK with *out set, or an error. */
static int sensor_get(struct stats *st, const char *name, struct sensor **out)
{
	long i = sensor_index(st, name);
	size_t at;
	struct sensor *s;

	if (i >= 0) {
		*out = st->s[i];
		return STATS_OK;
	}
	if (st->n >= STATS_MAX_SENSORS)
		return STATS_EFULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return STATS_ENOMEM;
	snprintf(s->name, sizeof(s->name), "%s", name);
	at = (size_t)(-i - 1);
	memmove(&st->s[at + 1], &st->s[at], (st->n - at) * sizeof(st->s[0]));
	st->s[at] = s;
	st->n++;
	*out = s;
	return STATS_OK;
}

static void sensor_remove(struct stats *st, size_t i)
{
	free(st->s[i]);
	memmove(&st->s[i], &st->s[i + 1], (st->n - i - 1) * sizeof(st->s[0]));
	st->n--;
}

static const struct stats_day *day_find(const struct sensor *s, int32_t day)
{
	for (size_t i = s->ndays; i-- > 0;) {
		if (s->days[i].day == day)
			return &s->days[i];
		if (s->days[i].day < day)
			break;
	}
	return NULL;
}

/* Finds or adds the day; NULL if it is older than every kept day of a full sensor. */
static struct stats_day *day_get(struct sensor *s, int32_t day)
{
	size_t at = s->ndays;

	while (at > 0 && s->days[at - 1].day >= day) {
		if (s->days[at - 1].day == day)
			return &s->days[at - 1];
		at--;
	}
	if (s->ndays == STATS_MAX_DAYS) {
		if (at == 0)
			return NULL;
		/* drop the oldest to make room */
		memmove(&s->days[0], &s->days[1], (at - 1) * sizeof(s->days[0]));
		at--;
		s->ndays--;
	} else {
		memmove(&s->days[at + 1], &s->days[at], (s->ndays - at) * sizeof(s->days[0]));
	}
	s->ndays++;
	memset(&s->days[at], 0, sizeof(s->days[at]));
	s->days[at].day = day;
	return &s->days[at];
}

static uint32_t sat_add_u32(uint32_t a, uint64_t b, uint32_t max)
{
	uint64_t v = (uint64_t)a + b;

	return v > max ? max : (uint32_t)v;
}

/* ---- inputs ---- */

struct stats *stats_new(void)
{
	return calloc(1, sizeof(struct stats));
}

static void clear(struct stats *st)
{
	for (size_t i = 0; i < st->n; i++)
		free(st->s[i]);
	st->n = 0;
}

void stats_free(struct stats *st)
{
	if (!st)
		return;
	clear(st);
	free(st);
}

/* Validates, then finds or adds the sensor. */
static int prepare(struct stats *st, const char *sensor, int64_t from, int64_t to,
		   struct sensor **out)
{
	if (!st || !sensor_name_ok(sensor) || !ts_ok(from) || !ts_ok(to) || to < from)
		return STATS_EINVAL;
	return sensor_get(st, sensor, out);
}

/* The sensor's day record of the instant ts_ms (added if new) and its local
 * hour: STATS_OK with *out and *hour set, or an error. */
static int day_of_instant(struct stats *st, const char *sensor, int64_t ts_ms,
			  struct stats_day **out, int *hour)
{
	struct sensor *s;
	int32_t day;
	int r = prepare(st, sensor, ts_ms, ts_ms, &s);

	if (r != STATS_OK)
		return r;
	if (local_slot(ts_ms, &day, hour, NULL) != 0)
		return STATS_EINVAL;
	*out = day_get(s, day);
	return *out ? STATS_OK : STATS_EOLD;
}

int stats_crack(struct stats *st, const char *sensor, int64_t ts_ms, const char *kind,
		unsigned pops)
{
	struct stats_day *d;
	uint32_t *k;
	int hour, r;

	if (!kind || pops > STATS_MAX_POPS)
		return STATS_EINVAL;
	if (strcmp(kind, "pop") && strcmp(kind, "click") && strcmp(kind, "grind"))
		return STATS_EINVAL;
	r = day_of_instant(st, sensor, ts_ms, &d, &hour);
	if (r != STATS_OK)
		return r;
	k = kind[0] == 'p' ? &d->pop : kind[0] == 'c' ? &d->click : &d->grind;
	/* the day's total stays <= STATS_MAX_COUNT, so the hours sum to it */
	if ((uint64_t)d->pop + d->click + d->grind < STATS_MAX_COUNT) {
		(*k)++;
		d->hour_cracks[hour]++;
	}
	d->pops = sat_add_u32(d->pops, pops, STATS_MAX_DAY_POPS);
	return STATS_OK;
}

int stats_break(struct stats *st, const char *sensor, int64_t ts_ms)
{
	struct stats_day *d;
	int hour, r = day_of_instant(st, sensor, ts_ms, &d, &hour);

	if (r != STATS_OK)
		return r;
	d->breaks = sat_add_u32(d->breaks, 1, STATS_MAX_COUNT);
	return STATS_OK;
}

/* Adds [from, to) hour by hour to slouch (per day and hour) or sitting. */
static int add_span(struct stats *st, const char *sensor, int64_t from, int64_t to, bool slouch)
{
	struct sensor *s;
	bool dropped = false;
	int r = prepare(st, sensor, from, to, &s);

	if (r != STATS_OK)
		return r;
	if (to - from > MAX_SPAN_MS) {
		from = to - MAX_SPAN_MS;
		dropped = true;
	}
	for (int64_t t = from;;) {
		int32_t day;
		int hour;
		int64_t next, add;
		struct stats_day *d;

		if (local_slot(t, &day, &hour, &next) != 0)
			return STATS_EINVAL;
		if (next <= t)   /* cannot happen; never loop forever */
			next = t + HOUR_MS;
		if (next > to)
			next = to;
		add = next - t;
		d = day_get(s, day);
		if (!d) {
			dropped = true;
		} else if (slouch) {
			if (add > STATS_MAX_HOUR_MS - d->hour_slouch_ms[hour])
				add = STATS_MAX_HOUR_MS - d->hour_slouch_ms[hour];
			if (add > STATS_MAX_DAY_MS - d->slouch_ms)
				add = STATS_MAX_DAY_MS - d->slouch_ms;
			d->hour_slouch_ms[hour] += add;
			d->slouch_ms += add;
		} else {
			if (add > STATS_MAX_DAY_MS - d->sitting_ms)
				add = STATS_MAX_DAY_MS - d->sitting_ms;
			d->sitting_ms += add;
		}
		if (next >= to)
			break;
		t = next;
	}
	return dropped ? STATS_EOLD : STATS_OK;
}

int stats_slouch(struct stats *st, const char *sensor, int64_t onset_ms, int64_t end_ms)
{
	return add_span(st, sensor, onset_ms, end_ms, true);
}

int stats_sitting(struct stats *st, const char *sensor, int64_t from_ms, int64_t to_ms)
{
	return add_span(st, sensor, from_ms, to_ms, false);
}

/* ---- queries ---- */

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

/* The baseline for hour of day `hour` of local day `today`. */
static double baseline_at(const struct sensor *s, int32_t today, int hour)
{
	uint32_t v[STATS_BASELINE_DAYS];
	size_t n = 0;

	for (size_t i = 0; i < s->ndays; i++) {
		int32_t age = today - s->days[i].day;

		if (age >= 1 && age <= STATS_BASELINE_DAYS && n < STATS_BASELINE_DAYS)
			v[n++] = s->days[i].hour_cracks[hour];
	}
	if (n < STATS_BASELINE_MIN_DAYS)
		return STATS_NO_BASELINE;
	qsort(v, n, sizeof(v[0]), cmp_u32);
	return n % 2 ? (double)v[n / 2] : ((double)v[n / 2 - 1] + (double)v[n / 2]) / 2.0;
}

double stats_baseline(const struct stats *st, const char *sensor, int64_t now_ms)
{
	const struct sensor *s = sensor_find(st, sensor);
	int32_t day;
	int hour;

	if (!s || !ts_ok(now_ms) || local_slot(now_ms, &day, &hour, NULL) != 0)
		return STATS_NO_BASELINE;
	return baseline_at(s, day, hour);
}

int stats_day(const struct stats *st, const char *sensor, int64_t ts_ms, struct stats_day *out)
{
	const struct sensor *s;
	const struct stats_day *d;
	int32_t day;

	if (!st || !out || !sensor_name_ok(sensor) || !ts_ok(ts_ms))
		return -1;
	day = local_day(ts_ms);
	if (day == INT32_MIN)
		return -1;
	memset(out, 0, sizeof(*out));
	out->day = day;
	s = sensor_find(st, sensor);
	d = s ? day_find(s, day) : NULL;
	if (!d)
		return -1;
	*out = *d;
	return 0;
}

static uint64_t day_cracks(const struct stats_day *d)
{
	return (uint64_t)d->pop + d->click + d->grind;
}

static void week_of(const struct sensor *s, int32_t today, struct stats_week *w)
{
	memset(w, 0, sizeof(*w));
	for (size_t i = 0; s && i < s->ndays; i++) {
		const struct stats_day *d = &s->days[i];
		int32_t age = today - d->day;

		if (age >= 0 && age < 7) {
			w->cracks += day_cracks(d);
			w->slouch_ms += d->slouch_ms;
			w->days++;
		} else if (age >= 7 && age < 14) {
			w->previous_cracks += day_cracks(d);
			w->previous_slouch_ms += d->slouch_ms;
			w->previous_days++;
		}
	}
}

int stats_week(const struct stats *st, const char *sensor, int64_t now_ms, struct stats_week *out)
{
	int32_t today;

	if (!st || !out || !sensor_name_ok(sensor) || !ts_ok(now_ms))
		return -1;
	today = local_day(now_ms);
	if (today == INT32_MIN)
		return -1;
	week_of(sensor_find(st, sensor), today, out);
	return 0;
}

size_t stats_sensor_count(const struct stats *st)
{
	return st ? st->n : 0;
}

size_t stats_forget_before(struct stats *st, int64_t epoch_ms)
{
	int32_t cut;
	size_t dropped = 0;

	if (!st || !ts_ok(epoch_ms) || (cut = local_day(epoch_ms)) == INT32_MIN)
		return 0;
	for (size_t i = st->n; i-- > 0;) {
		struct sensor *s = st->s[i];
		size_t k = 0;

		while (k < s->ndays && s->days[k].day < cut)
			k++;
		if (k) {
			memmove(&s->days[0], &s->days[k], (s->ndays - k) * sizeof(s->days[0]));
			s->ndays -= k;
			dropped += k;
		}
		if (s->ndays == 0)
			sensor_remove(st, i);
	}
	return dropped;
}

int stats_forget_sensor(struct stats *st, const char *sensor)
{
	long i;

	if (!st || !sensor_name_ok(sensor))
		return -1;
	i = sensor_index(st, sensor);
	if (i < 0)
		return -1;
	sensor_remove(st, (size_t)i);
	return 0;
}

/* ---- the "stats" object ---- */

static double tenth(double v)
{
	return round(v * 10.0) / 10.0;
}

static double minutes(int64_t ms)
{
	return tenth((double)ms / 60000.0);
}

/* json_object_set_new that remembers a failure */
static void put(json_t *o, const char *k, json_t *v, bool *ok)
{
	if (!v || json_object_set_new(o, k, v) != 0)
		*ok = false;
}

static void append(json_t *a, json_t *v, bool *ok)
{
	if (!v || json_array_append_new(a, v) != 0)
		*ok = false;
}

static json_t *day_json(const struct stats_day *d, bool hours, bool *ok)
{
	json_t *o = json_object();
	char date[DATE_LEN];

	if (!o) {
		*ok = false;
		return NULL;
	}
	format_date(d->day, date);
	put(o, "date", json_string(date), ok);
	put(o, "cracks", json_integer((json_int_t)day_cracks(d)), ok);
	put(o, "pop", json_integer(d->pop), ok);
	put(o, "click", json_integer(d->click), ok);
	put(o, "grind", json_integer(d->grind), ok);
	put(o, "pops", json_integer(d->pops), ok);
	put(o, "slouch_min", json_real(minutes(d->slouch_ms)), ok);
	put(o, "sitting_min", json_real(minutes(d->sitting_ms)), ok);
	put(o, "breaks", json_integer(d->breaks), ok);
	if (hours) {
		json_t *h = json_object(), *c = json_array(), *m = json_array();

		for (int i = 0; c && m && i < STATS_HOURS; i++) {
			append(c, json_integer(d->hour_cracks[i]), ok);
			append(m, json_real(minutes(d->hour_slouch_ms[i])), ok);
		}
		if (h) {
			put(h, "cracks", c, ok);
			put(h, "slouch_min", m, ok);
		} else {
			json_decref(c);
			json_decref(m);
		}
		put(o, "hours", h, ok);
	}
	return o;
}

static json_t *pct(uint64_t cur, uint64_t prev, bool prev_has_data)
{
	if (!prev_has_data || prev == 0)
		return json_null();
	return json_real(tenth(((double)cur - (double)prev) / (double)prev * 100.0));
}

static json_t *sensor_json(const struct sensor *s, int32_t today, bool *ok)
{
	json_t *o = json_object(), *days = json_array(), *base = json_array(), *week = json_object();
	const struct stats_day *td = day_find(s, today);
	struct stats_day zero;
	struct stats_week w;
	size_t n = 0;
	bool have_base = baseline_at(s, today, 0) >= 0;

	if (!o || !days || !base || !week) {
		json_decref(o);
		json_decref(days);
		json_decref(base);
		json_decref(week);
		*ok = false;
		return NULL;
	}
	if (!td) {
		memset(&zero, 0, sizeof(zero));
		zero.day = today;
		td = &zero;
	}
	for (size_t i = s->ndays; i-- > 0 && n < STATS_JSON_DAYS;) {
		if (s->days[i].day > today)
			continue;
		append(days, day_json(&s->days[i], false, ok), ok);
		n++;
	}
	for (int h = 0; h < STATS_HOURS; h++)
		append(base, have_base ? json_real(tenth(baseline_at(s, today, h))) : json_null(), ok);
	week_of(s, today, &w);
	put(week, "cracks", json_integer((json_int_t)w.cracks), ok);
	put(week, "previous_cracks", json_integer((json_int_t)w.previous_cracks), ok);
	put(week, "cracks_change_pct", pct(w.cracks, w.previous_cracks, w.previous_days > 0), ok);
	put(week, "slouch_min", json_real(minutes(w.slouch_ms)), ok);
	put(week, "previous_slouch_min", json_real(minutes(w.previous_slouch_ms)), ok);
	put(week, "slouch_change_pct",
	    pct((uint64_t)w.slouch_ms, (uint64_t)w.previous_slouch_ms, w.previous_days > 0), ok);
	put(week, "days", json_integer(w.days), ok);
	put(week, "previous_days", json_integer(w.previous_days), ok);

	put(o, "sensor", json_string(s->name), ok);
	put(o, "today", day_json(td, true, ok), ok);
	put(o, "days", days, ok);
	put(o, "baseline_per_hour", base, ok);
	put(o, "week", week, ok);
	return o;
}

json_t *stats_json(const struct stats *st, int64_t now_ms, const char *sensor_or_NULL)
{
	json_t *o, *arr;
	int32_t today;
	bool ok = true;

	if (!st || !ts_ok(now_ms) || (today = local_day(now_ms)) == INT32_MIN)
		return NULL;
	o = json_object();
	arr = json_array();
	if (!o || !arr) {
		json_decref(o);
		json_decref(arr);
		return NULL;
	}
	put(o, "type", json_string("stats"), &ok);
	put(o, "ts", json_integer(now_ms), &ok);
	for (size_t i = 0; i < st->n; i++) {
		if (sensor_or_NULL && strcmp(st->s[i]->name, sensor_or_NULL) != 0)
			continue;
		append(arr, sensor_json(st->s[i], today, &ok), &ok);
	}
	put(o, "sensors", arr, &ok);
	if (!ok) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ---- save / load ---- */

char *stats_save(const struct stats *st)
{
	json_t *o, *sensors;
	char *text = NULL;
	bool ok = true;

	if (!st)
		return NULL;
	o = json_object();
	sensors = json_array();
	if (!o || !sensors) {
		json_decref(o);
		json_decref(sensors);
		return NULL;
	}
	put(o, "v", json_integer(STATS_SAVE_VERSION), &ok);
	for (size_t i = 0; i < st->n; i++) {
		const struct sensor *s = st->s[i];
		json_t *so = json_object(), *days = json_array();

		if (!so || !days) {
			json_decref(so);
			json_decref(days);
			ok = false;
			break;
		}
		for (size_t k = 0; k < s->ndays; k++) {
			const struct stats_day *d = &s->days[k];
			json_t *dj = json_object(), *hc = json_array(), *hs = json_array();
			char date[DATE_LEN];

			if (!dj || !hc || !hs) {
				json_decref(dj);
				json_decref(hc);
				json_decref(hs);
				ok = false;
				break;
			}
			format_date(d->day, date);
			for (int h = 0; h < STATS_HOURS; h++) {
				append(hc, json_integer(d->hour_cracks[h]), &ok);
				append(hs, json_integer(d->hour_slouch_ms[h]), &ok);
			}
			put(dj, "date", json_string(date), &ok);
			put(dj, "pop", json_integer(d->pop), &ok);
			put(dj, "click", json_integer(d->click), &ok);
			put(dj, "grind", json_integer(d->grind), &ok);
			put(dj, "pops", json_integer(d->pops), &ok);
			put(dj, "breaks", json_integer(d->breaks), &ok);
			put(dj, "slouch_ms", json_integer(d->slouch_ms), &ok);
			put(dj, "sitting_ms", json_integer(d->sitting_ms), &ok);
			put(dj, "hour_cracks", hc, &ok);
			put(dj, "hour_slouch_ms", hs, &ok);
			append(days, dj, &ok);
		}
		put(so, "sensor", json_string(s->name), &ok);
		put(so, "days", days, &ok);
		append(sensors, so, &ok);
	}
	put(o, "sensors", sensors, &ok);
	if (ok)
		text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* obj[key] as an integer in [min, max]. */
static int get_int(json_t *obj, const char *key, json_int_t min, json_int_t max, json_int_t *out,
		   const char *where, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	if (!v)
		return fail(err, errlen, "%s: missing \"%s\"", where, key);
	if (!json_is_integer(v))
		return fail(err, errlen, "%s: \"%s\" is not an integer", where, key);
	*out = json_integer_value(v);
	if (*out < min || *out > max)
		return fail(err, errlen, "%s: \"%s\" %lld is out of range %lld..%lld", where, key,
			    (long long)*out, (long long)min, (long long)max);
	return 0;
}

/* obj[key]: an array of STATS_HOURS integers in [0, max]. */
static int get_hours(json_t *obj, const char *key, json_int_t max, json_int_t out[STATS_HOURS],
		     const char *where, char *err, size_t errlen)
{
	json_t *a = json_object_get(obj, key);

	if (!json_is_array(a) || json_array_size(a) != STATS_HOURS)
		return fail(err, errlen, "%s: \"%s\" must be an array of %d integers", where, key,
			    STATS_HOURS);
	for (int h = 0; h < STATS_HOURS; h++) {
		json_t *v = json_array_get(a, (size_t)h);

		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
			return fail(err, errlen, "%s: \"%s\"[%d] must be an integer in 0..%lld", where,
				    key, h, (long long)max);
		out[h] = json_integer_value(v);
	}
	return 0;
}

static int load_day(json_t *dj, struct stats_day *d, const char *where, char *err, size_t errlen)
{
	static const char *const keys[] = { "date", "pop", "click", "grind", "pops", "breaks",
					     "slouch_ms", "sitting_ms", "hour_cracks",
					     "hour_slouch_ms" };
	const size_t nkeys = sizeof(keys) / sizeof(keys[0]);
	json_int_t pop, click, grind, pops, breaks, slouch, sitting, hc[STATS_HOURS],
		hs[STATS_HOURS], sum_c = 0, sum_s = 0;
	const char *date;

	if (!json_is_object(dj))
		return fail(err, errlen, "%s: not an object", where);
	for (size_t i = 0; i < nkeys; i++)
		if (!json_object_get(dj, keys[i]))
			return fail(err, errlen, "%s: missing \"%s\"", where, keys[i]);
	if (json_object_size(dj) != nkeys)
		return fail(err, errlen, "%s: unknown members", where);
	date = json_string_value(json_object_get(dj, "date"));
	if (!date || parse_date(date, &d->day) != 0)
		return fail(err, errlen, "%s: \"date\" must be a date YYYY-MM-DD in %d..%d", where,
			    MIN_YEAR, MAX_YEAR);
	if (get_int(dj, "pop", 0, STATS_MAX_COUNT, &pop, where, err, errlen) ||
	    get_int(dj, "click", 0, STATS_MAX_COUNT, &click, where, err, errlen) ||
	    get_int(dj, "grind", 0, STATS_MAX_COUNT, &grind, where, err, errlen) ||
	    get_int(dj, "pops", 0, STATS_MAX_DAY_POPS, &pops, where, err, errlen) ||
	    get_int(dj, "breaks", 0, STATS_MAX_COUNT, &breaks, where, err, errlen) ||
	    get_int(dj, "slouch_ms", 0, STATS_MAX_DAY_MS, &slouch, where, err, errlen) ||
	    get_int(dj, "sitting_ms", 0, STATS_MAX_DAY_MS, &sitting, where, err, errlen) ||
	    get_hours(dj, "hour_cracks", STATS_MAX_COUNT, hc, where, err, errlen) ||
	    get_hours(dj, "hour_slouch_ms", STATS_MAX_HOUR_MS, hs, where, err, errlen))
		return -1;
	if (pop + click + grind > (json_int_t)STATS_MAX_COUNT)
		return fail(err, errlen, "%s: more than %u cracks", where, STATS_MAX_COUNT);
	for (int h = 0; h < STATS_HOURS; h++) {
		sum_c += hc[h];
		sum_s += hs[h];
		d->hour_cracks[h] = (uint32_t)hc[h];
		d->hour_slouch_ms[h] = hs[h];
	}
	if (sum_c != pop + click + grind)
		return fail(err, errlen, "%s: \"hour_cracks\" sum to %lld, not pop+click+grind %lld",
			    where, (long long)sum_c, (long long)(pop + click + grind));
	if (sum_s != slouch)
		return fail(err, errlen, "%s: \"hour_slouch_ms\" sum to %lld, not slouch_ms %lld",
			    where, (long long)sum_s, (long long)slouch);
	d->pop = (uint32_t)pop;
	d->click = (uint32_t)click;
	d->grind = (uint32_t)grind;
	d->pops = (uint32_t)pops;
	d->breaks = (uint32_t)breaks;
	d->slouch_ms = slouch;
	d->sitting_ms = sitting;
	return 0;
}

static int load_sensor(json_t *sj, struct stats *tmp, size_t idx, char *err, size_t errlen)
{
	json_t *days;
	const char *name;
	struct sensor *s;
	char where[64];
	long at;

	snprintf(where, sizeof(where), "sensors[%zu]", idx);
	if (!json_is_object(sj) || json_object_size(sj) != 2)
		return fail(err, errlen, "%s: must be an object with \"sensor\" and \"days\"", where);
	name = json_string_value(json_object_get(sj, "sensor"));
	days = json_object_get(sj, "days");
	if (!name || !sensor_name_ok(name))
		return fail(err, errlen, "%s: \"sensor\" must be 1..%d printable characters", where,
			    STATS_SENSOR_LEN - 1);
	if (!json_is_array(days) || json_array_size(days) == 0 ||
	    json_array_size(days) > STATS_MAX_DAYS)
		return fail(err, errlen, "%s: \"days\" must be an array of 1..%d days", where,
			    STATS_MAX_DAYS);
	at = sensor_index(tmp, name);
	if (at >= 0)
		return fail(err, errlen, "%s: sensor %s appears twice", where, name);
	if (sensor_get(tmp, name, &s) != STATS_OK)
		return fail(err, errlen, "out of memory");
	for (size_t k = 0; k < json_array_size(days); k++) {
		struct stats_day *d = &s->days[k];
		char dw[96];

		snprintf(dw, sizeof(dw), "%s.days[%zu]", where, k);
		memset(d, 0, sizeof(*d));
		if (load_day(json_array_get(days, k), d, dw, err, errlen) != 0)
			return -1;
		if (k > 0 && d->day <= s->days[k - 1].day)
			return fail(err, errlen, "%s: dates must be strictly increasing", dw);
		s->ndays = k + 1;
	}
	return 0;
}

int stats_load(struct stats *st, const char *text, char *err, size_t errlen)
{
	struct stats tmp;
	json_t *root, *sensors, *v;
	json_error_t je;
	size_t len;
	int rc = -1;

	if (err && errlen)
		err[0] = '\0';
	if (!st || !text)
		return fail(err, errlen, "no state given");
	len = strnlen(text, MAX_SAVE_TEXT + 1);
	if (len > MAX_SAVE_TEXT)
		return fail(err, errlen, "larger than %u bytes", MAX_SAVE_TEXT);
	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!root)
		return fail(err, errlen, "not JSON: %s at line %d column %d", je.text, je.line,
			    je.column);
	memset(&tmp, 0, sizeof(tmp));
	v = json_object_get(root, "v");
	sensors = json_object_get(root, "sensors");
	if (!json_is_object(root)) {
		fail(err, errlen, "not an object");
	} else if (!json_is_integer(v) || json_integer_value(v) != STATS_SAVE_VERSION) {
		fail(err, errlen, "\"v\" must be %d", STATS_SAVE_VERSION);
	} else if (!json_is_array(sensors)) {
		fail(err, errlen, "\"sensors\" must be an array");
	} else if (json_object_size(root) != 2) {
		fail(err, errlen, "unknown members");
	} else if (json_array_size(sensors) > STATS_MAX_SENSORS) {
		fail(err, errlen, "more than %d sensors", STATS_MAX_SENSORS);
	} else {
		rc = 0;
		for (size_t i = 0; rc == 0 && i < json_array_size(sensors); i++)
			rc = load_sensor(json_array_get(sensors, i), &tmp, i, err, errlen);
	}
	json_decref(root);
	if (rc != 0) {
		clear(&tmp);
		return -1;
	}
	clear(st);
	*st = tmp;
	return 0;
}
