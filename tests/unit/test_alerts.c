/*
 * test_alerts.c - unit tests for daemon/alerts.c: every rule driven by
 * scripted inputs and an injected clock, asserting the exact transitions
 * (raised / acknowledged / cleared), deadlines, cooldown boundaries,
 * hysteresis, acknowledgement and configuration checks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "alerts.h"

#define SEC 1000LL
#define MIN (60 * SEC)
#define HOUR (60 * MIN)
#define EPOCH0 1764064800000LL
#define S1 "C0:FF:EE:00:00:01"
#define S2 "C0:FF:EE:00:00:02"

struct rec {
	uint64_t id;
	enum alert_rule rule;
	char sensor[ALERT_SENSOR_LEN];
	enum alert_state state;
	enum alert_severity severity;
	char message[ALERT_MESSAGE_LEN];
	int64_t raised_ts, acked_ts, cleared_ts;
};

struct fx {
	struct alerts *e;
	struct alerts_config cfg;
	struct rec rec[64];
	size_t n;       /* recorded */
	size_t seen;    /* checked by expect() */
};

static void on_emit(const struct alert_transition *t, void *user)
{
	struct fx *f = user;
	struct rec *r;

	assert_true(f->n < 64);
	assert_int_equal(t->state, t->alert->state);
	r = &f->rec[f->n++];
	r->id = t->alert->id;
	r->rule = t->alert->rule;
	strcpy(r->sensor, t->alert->sensor);
	r->state = t->state;
	r->severity = t->alert->severity;
	strcpy(r->message, t->alert->message);
	r->raised_ts = t->alert->raised_ts;
	r->acked_ts = t->alert->acked_ts;
	r->cleared_ts = t->alert->cleared_ts;
}

static struct alert_clock at(int64_t mono)
{
	struct alert_clock c = { mono, EPOCH0 + mono };
	return c;
}

static void fx_start(struct fx *f)
{
	assert_null(alerts_config_check(&f->cfg));
	f->e = alerts_new(&f->cfg, on_emit, f);
	assert_non_null(f->e);
}

static int setup(void **state)
{
	static struct fx f;

	memset(&f, 0, sizeof(f));
	alerts_config_default(&f.cfg);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	alerts_free(f->e);
	f->e = NULL;
	return 0;
}

/* The next recorded transition is exactly this; returns it. */
static const struct rec *expect(struct fx *f, uint64_t id, enum alert_rule rule,
				const char *sensor, enum alert_state st)
{
	const struct rec *r;

	assert_true(f->seen < f->n);
	r = &f->rec[f->seen++];
	assert_int_equal(r->id, id);
	assert_int_equal(r->rule, rule);
	assert_string_equal(r->sensor, sensor);
	assert_int_equal(r->state, st);
	return r;
}

static void expect_none(struct fx *f)
{
	assert_int_equal(f->n, f->seen);
}

static void tick(struct fx *f, int64_t t)
{
	alerts_tick(f->e, at(t));
}

/* wording: guides, never alarms or diagnoses */
static void assert_kind_wording(const char *m)
{
	static const char *const bad[] = { "!", "danger", "damage", "injur", "disease",
					   "diagnos", "urgent", "warning", "serious",
					   "hernia", "arthritis", NULL };
	size_t i;

	assert_true(strlen(m) > 20);
	for (i = 0; bad[i]; i++)
		assert_null(strstr(m, bad[i]));
}

/* ---- configuration ------------------------------------------------------ */

static void test_config(void **state)
{
	struct alerts_config c;
	const char *m;

	(void)state;
	alerts_config_default(&c);
	assert_null(alerts_config_check(&c));
	assert_int_equal(c.slouch_long_ms, 20 * MIN);
	assert_int_equal(c.sensor_lost_ms, 60 * SEC);
	assert_int_equal(c.battery_low_pct, 15);
	assert_int_equal(c.battery_clear_pct, 20);
	assert_int_equal(c.crack_floor, 6);
	assert_int_equal(c.crack_cap, 20);
	assert_true(c.crack_factor == 3.0);
	assert_int_equal(c.cooldown_ms[ALERT_GRINDING], 15 * MIN);
	assert_true(c.enabled[ALERT_BATTERY_LOW]);

#define BAD(field, value, prefix) do { \
		alerts_config_default(&c); c.field = value; \
		m = alerts_config_check(&c); \
		assert_non_null(m); \
		assert_true(strncmp(m, prefix, strlen(prefix)) == 0); \
		assert_null(alerts_new(&c, NULL, NULL)); \
	} while (0)
	BAD(slouch_long_ms, 3 * SEC - 1, "slouch_long_ms:");
	BAD(slouch_long_ms, 8 * HOUR + 1, "slouch_long_ms:");
	BAD(sensor_lost_ms, 999, "sensor_lost_ms:");
	BAD(battery_low_pct, 0, "battery_low_pct:");
	BAD(battery_clear_pct, 15, "battery_clear_pct:");
	BAD(battery_clear_pct, 101, "battery_clear_pct:");
	BAD(crack_cap, 0, "crack_cap:");
	BAD(crack_cap, ALERTS_CRACK_CAP_MAX + 1, "crack_cap:");
	BAD(crack_floor, 21, "crack_floor:");
	BAD(crack_floor, 0, "crack_floor:");
	BAD(crack_factor, 0.5, "crack_factor:");
	BAD(crack_factor, NAN, "crack_factor:");
	BAD(pattern_hold_ms, 0, "pattern_hold_ms:");
	BAD(cooldown_ms[ALERT_SENSOR_LOST], -1, "cooldown_ms[sensor-lost]:");
	BAD(cooldown_ms[ALERT_NO_BREAK], 24 * HOUR + 1, "cooldown_ms[no-break]:");
#undef BAD
	alerts_config_default(&c);
	c.crack_floor = c.crack_cap;
	c.cooldown_ms[ALERT_SLOUCH_LONG] = 0;
	assert_null(alerts_config_check(&c));
	assert_non_null(alerts_config_check(NULL));
}

static void test_names(void **state)
{
	int r;

	(void)state;
	assert_string_equal(alert_rule_name(ALERT_SLOUCH_LONG), "slouch-long");
	assert_string_equal(alert_rule_name(ALERT_SELF_MANIPULATION), "self-manipulation");
	assert_null(alert_rule_name(ALERT_RULE_COUNT));
	for (r = 0; r < ALERT_RULE_COUNT; r++)
		assert_int_equal(alert_rule_from_name(alert_rule_name((enum alert_rule)r)), r);
	assert_int_equal(alert_rule_from_name("nope"), -1);
	assert_int_equal(alert_rule_from_name(NULL), -1);
	assert_string_equal(alert_severity_name(ALERT_WARNING), "warning");
	assert_string_equal(alert_state_name(ALERT_ACKNOWLEDGED), "acknowledged");
	assert_string_equal(alerts_ack_result_name(ALERTS_ACK_CLEARED), "cleared");
}

/* ---- slouch-long ----------------------------------------------------------- */

static void test_slouch_long(void **state)
{
	struct fx *f = *state;
	const struct rec *r;

	fx_start(f);
	assert_int_equal(alerts_next_deadline(f->e), ALERTS_NO_DEADLINE);
	/* detector reports the slouch 60 s after its onset */
	assert_int_equal(alerts_slouch(f->e, at(60 * SEC), S1, true, 0), 0);
	expect_none(f);
	assert_int_equal(alerts_next_deadline(f->e), 20 * MIN);
	tick(f, 20 * MIN - 1);
	expect_none(f);
	tick(f, 20 * MIN);
	r = expect(f, 1, ALERT_SLOUCH_LONG, S1, ALERT_RAISED);
	assert_int_equal(r->severity, ALERT_INFO);
	assert_int_equal(r->raised_ts, EPOCH0 + 20 * MIN);
	assert_string_equal(r->message, "You've been leaning forward for 20 minutes. A good "
			    "moment to sit up tall, or to stand and stretch for a minute.");
	assert_kind_wording(r->message);
	assert_int_equal(alerts_next_deadline(f->e), ALERTS_NO_DEADLINE);
	/* a repeated start while slouching changes nothing */
	assert_int_equal(alerts_slouch(f->e, at(21 * MIN), S1, true, 21 * MIN), 0);
	tick(f, 22 * MIN);
	expect_none(f);

	/* ends: cleared, cooldown 15 min from 25:00 */
	alerts_slouch(f->e, at(25 * MIN), S1, false, 0);
	r = expect(f, 1, ALERT_SLOUCH_LONG, S1, ALERT_CLEARED);
	assert_int_equal(r->cleared_ts, EPOCH0 + 25 * MIN);
	assert_int_equal(r->acked_ts, 0);
	assert_int_equal(alerts_list_active(f->e, NULL, 0), 0);

	/* a new slouch from 30:00 reaches 20 min at 50:00, after the cooldown */
	alerts_slouch(f->e, at(31 * MIN), S1, true, 30 * MIN);
	assert_int_equal(alerts_next_deadline(f->e), 50 * MIN);
	tick(f, 50 * MIN);
	r = expect(f, 2, ALERT_SLOUCH_LONG, S1, ALERT_RAISED);
	assert_non_null(strstr(r->message, "for 20 minutes."));
	expect_none(f);
}

/* cooldown: a condition true during it raises exactly at its end */
static void test_slouch_cooldown_boundary(void **state)
{
	struct fx *f = *state;
	const struct rec *r;

	f->cfg.slouch_long_ms = 1 * MIN;
	fx_start(f);
	alerts_slouch(f->e, at(0), S1, true, 0);
	tick(f, 1 * MIN);
	expect(f, 1, ALERT_SLOUCH_LONG, S1, ALERT_RAISED);
	alerts_slouch(f->e, at(2 * MIN), S1, false, 0);
	expect(f, 1, ALERT_SLOUCH_LONG, S1, ALERT_CLEARED);
	/* cooldown until 17:00; slouching again from 2:10, long enough at 3:10 */
	alerts_slouch(f->e, at(2 * MIN + 10 * SEC), S1, true, 2 * MIN + 10 * SEC);
	assert_int_equal(alerts_next_deadline(f->e), 3 * MIN + 10 * SEC);
	tick(f, 3 * MIN + 10 * SEC);
	expect_none(f);
	assert_int_equal(alerts_next_deadline(f->e), 17 * MIN);
	tick(f, 17 * MIN - 1);
	expect_none(f);
	assert_int_equal(alerts_next_deadline(f->e), 17 * MIN);
	tick(f, 17 * MIN);
	r = expect(f, 2, ALERT_SLOUCH_LONG, S1, ALERT_RAISED);
	/* the message tells the real duration */
	assert_non_null(strstr(r->message, "for 14 minutes."));
	expect_none(f);
}

/* slouch ending during the cooldown: nothing raised when it ends */
static void test_slouch_ends_in_cooldown(void **state)
{
	struct fx *f = *state;

	f->cfg.slouch_long_ms = 1 * MIN;
	fx_start(f);
	alerts_slouch(f->e, at(0), S1, true, 0);
	tick(f, 1 * MIN);
	alerts_slouch(f->e, at(2 * MIN), S1, false, 0);
	expect(f, 1, ALERT_SLOUCH_LONG, S1, ALERT_RAISED);
	expect(f, 1, ALERT_SLOUCH_LONG, S1, ALERT_CLEARED);
	alerts_slouch(f->e, at(3 * MIN), S1, true, 3 * MIN);
	tick(f, 4 * MIN);
	alerts_slouch(f->e, at(10 * MIN), S1, false, 0);
	assert_int_equal(alerts_next_deadline(f->e), ALERTS_NO_DEADLINE);
	tick(f, 17 * MIN);
	tick(f, 30 * MIN);
	expect_none(f);
}

/* ---- acknowledge ------------------------------------------------------------ */

static void test_ack(void **state)
{
	struct fx *f = *state;
	const struct rec *r;
	struct alert list[4];

	fx_start(f);
	assert_int_equal(alerts_ack(f->e, at(0), 1), ALERTS_ACK_UNKNOWN);
	alerts_slouch(f->e, at(0), S1, true, 0);
	tick(f, 20 * MIN);
	expect(f, 1, ALERT_SLOUCH_LONG, S1, ALERT_RAISED);
	assert_int_equal(alerts_ack(f->e, at(21 * MIN), 1), ALERTS_ACK_OK);
	r = expect(f, 1, ALERT_SLOUCH_LONG, S1, ALERT_ACKNOWLEDGED);
	assert_int_equal(r->acked_ts, EPOCH0 + 21 * MIN);
	assert_int_equal(r->raised_ts, EPOCH0 + 20 * MIN);
	assert_int_equal(alerts_ack(f->e, at(22 * MIN), 1), ALERTS_ACK_ALREADY);
	expect_none(f);
	/* the condition persists for hours: no re-raise, no deadline */
	assert_int_equal(alerts_next_deadline(f->e), ALERTS_NO_DEADLINE);
	tick(f, 40 * MIN);
	tick(f, 3 * HOUR);
	alerts_slouch(f->e, at(3 * HOUR), S1, true, 0);
	expect_none(f);
	assert_int_equal(alerts_list_active(f->e, list, 4), 1);
	assert_int_equal(list[0].id, 1);
	assert_int_equal(list[0].state, ALERT_ACKNOWLEDGED);
	assert_non_null(alerts_find(f->e, 1));
	/* an acknowledged alert is cleared when the condition ends */
	alerts_slouch(f->e, at(3 * HOUR + 1), S1, false, 0);
	r = expect(f, 1, ALERT_SLOUCH_LONG, S1, ALERT_CLEARED);
	assert_int_equal(r->acked_ts, EPOCH0 + 21 * MIN);
	assert_int_equal(alerts_ack(f->e, at(3 * HOUR + 2), 1), ALERTS_ACK_CLEARED);
	assert_int_equal(alerts_ack(f->e, at(3 * HOUR + 2), 0), ALERTS_ACK_UNKNOWN);
	assert_int_equal(alerts_ack(f->e, at(3 * HOUR + 2), 2), ALERTS_ACK_UNKNOWN);
	assert_null(alerts_find(f->e, 1));
	expect_none(f);
}

/* ---- no-break ---------------------------------------------------------------- */

static void test_no_break(void **state)
{
	struct fx *f = *state;
	const struct rec *r;

	fx_start(f);
	alerts_break_due(f->e, at(30 * MIN), "", false, 0);
	expect_none(f);
	alerts_break_due(f->e, at(30 * MIN), "", true, 30 * MIN);
	r = expect(f, 1, ALERT_NO_BREAK, "", ALERT_RAISED);
	assert_int_equal(r->severity, ALERT_INFO);
	assert_string_equal(r->message, "You've been sitting for 30 minutes without a break. "
			    "Standing up and moving around for a minute or two does your back good.");
	assert_kind_wording(r->message);
	alerts_break_due(f->e, at(31 * MIN), "", true, 31 * MIN);
	expect_none(f);
	alerts_break_due(f->e, at(35 * MIN), "", false, 0);
	expect(f, 1, ALERT_NO_BREAK, "", ALERT_CLEARED);
	/* due again at 40:00, during the cooldown (until 50:00) */
	alerts_break_due(f->e, at(40 * MIN), "", true, 0);
	expect_none(f);
	assert_int_equal(alerts_next_deadline(f->e), 50 * MIN);
	tick(f, 50 * MIN - 1);
	expect_none(f);
	tick(f, 50 * MIN);
	r = expect(f, 2, ALERT_NO_BREAK, "", ALERT_RAISED);
	assert_string_equal(r->message, "Time for a short break: standing up and moving "
			    "around for a minute or two does your back good.");
	/* the break taken during the cooldown: no raise at its end */
	alerts_break_due(f->e, at(51 * MIN), "", false, 0);
	expect(f, 2, ALERT_NO_BREAK, "", ALERT_CLEARED);
	alerts_break_due(f->e, at(52 * MIN), "", true, 0);
	alerts_break_due(f->e, at(53 * MIN), "", false, 0);
	assert_int_equal(alerts_next_deadline(f->e), ALERTS_NO_DEADLINE);
	tick(f, 66 * MIN);
	expect_none(f);
	/* long sitting is worded in hours */
	alerts_break_due(f->e, at(70 * MIN), "", true, 150 * MIN);
	r = expect(f, 3, ALERT_NO_BREAK, "", ALERT_RAISED);
	assert_non_null(strstr(r->message, "sitting for over 2 hours without"));
}

/* ---- crack-rate ---------------------------------------------------------------- */

static void cracks(struct fx *f, const char *sensor, int64_t t0, int64_t step, int n)
{
	int i;

	for (i = 0; i < n; i++)
		assert_int_equal(alerts_crack(f->e, at(t0 + i * step), sensor), 0);
}

/* no baseline yet: only the absolute cap (20 per hour) */
static void test_crack_cap_without_baseline(void **state)
{
	struct fx *f = *state;
	const struct rec *r;

	fx_start(f);
	cracks(f, S2, 0, 10 * SEC, 19);          /* 0 .. 180 s */
	expect_none(f);
	assert_int_equal(alerts_next_deadline(f->e), ALERTS_NO_DEADLINE);
	alerts_crack(f->e, at(190 * SEC), S2);   /* the 20th */
	r = expect(f, 1, ALERT_CRACK_RATE, S2, ALERT_RAISED);
	assert_int_equal(r->severity, ALERT_WARNING);
	assert_string_equal(r->message, "Your back has cracked 20 times in the last hour, "
			    "which is a lot. Some gentle movement may help. If it comes with pain "
			    "or stiffness, consider talking to a physiotherapist or doctor.");
	assert_kind_wording(r->message);
	/* clears when 10 (20/2) or fewer remain: when the 11th newest (90 s)
	 * leaves the hour */
	assert_int_equal(alerts_next_deadline(f->e), 90 * SEC + HOUR);
	tick(f, 90 * SEC + HOUR - 1);
	expect_none(f);
	tick(f, 90 * SEC + HOUR);
	expect(f, 1, ALERT_CRACK_RATE, S2, ALERT_CLEARED);
	assert_int_equal(alerts_next_deadline(f->e), ALERTS_NO_DEADLINE);
}

/* a high rate that never falls: raised, acked, persists; more cracks than the ring holds */
static void test_crack_sustained(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	cracks(f, S1, 0, 1 * MIN, 20);
	expect(f, 1, ALERT_CRACK_RATE, S1, ALERT_RAISED);
	assert_int_equal(alerts_ack(f->e, at(20 * MIN), 1), ALERTS_ACK_OK);
	expect(f, 1, ALERT_CRACK_RATE, S1, ALERT_ACKNOWLEDGED);
	/* one a minute for 5 more hours: count stays 20 in the ring, 60 real */
	cracks(f, S1, 20 * MIN, 1 * MIN, 300);
	tick(f, 320 * MIN);
	expect_none(f);
	/* stop at 319:00; 10 remain once the crack at 309:00 ages out */
	assert_int_equal(alerts_next_deadline(f->e), 309 * MIN + HOUR);
	tick(f, 309 * MIN + HOUR);
	expect(f, 1, ALERT_CRACK_RATE, S1, ALERT_CLEARED);
}

static void test_crack_baseline(void **state)
{
	struct fx *f = *state;
	const struct rec *r;

	fx_start(f);
	/* baseline 1/h: 3 x 1 = 3 is below the floor: threshold 6 */
	assert_int_equal(alerts_crack_baseline(f->e, at(0), S1, 1.0), 0);
	cracks(f, S1, 0, 1 * MIN, 5);
	expect_none(f);
	alerts_crack(f->e, at(5 * MIN), S1);
	r = expect(f, 1, ALERT_CRACK_RATE, S1, ALERT_RAISED);
	assert_int_equal(r->severity, ALERT_INFO);
	assert_string_equal(r->message, "Your back has cracked 6 times in the last hour, "
			    "more than usual for you at this time of day. Changing position or "
			    "some gentle movement may help.");
	assert_kind_wording(r->message);
	/* 3 or fewer: when the 4th newest (2:00) leaves the hour */
	assert_int_equal(alerts_next_deadline(f->e), 2 * MIN + HOUR);
	/* a higher baseline for the next hour of day: threshold ceil(3 x 2.5)
	 * = 8, clear at 4 or fewer: the 5th newest (1:00) */
	alerts_crack_baseline(f->e, at(10 * MIN), S1, 2.5);
	expect_none(f);
	assert_int_equal(alerts_next_deadline(f->e), 1 * MIN + HOUR);
	/* baseline 4: threshold 12, 6 cracks is at most 6: cleared now */
	alerts_crack_baseline(f->e, at(11 * MIN), S1, 4.0);
	expect(f, 1, ALERT_CRACK_RATE, S1, ALERT_CLEARED);
	/* back to 1/h during the cooldown (until 26:00): condition holds,
	 * raised at the cooldown's end */
	alerts_crack_baseline(f->e, at(12 * MIN), S1, 1.0);
	expect_none(f);
	assert_int_equal(alerts_next_deadline(f->e), 26 * MIN);
	tick(f, 26 * MIN);
	r = expect(f, 2, ALERT_CRACK_RATE, S1, ALERT_RAISED);
	assert_non_null(strstr(r->message, "cracked 6 times"));
	expect_none(f);
}

/* a baseline so high that factor x baseline is over the cap: the cap wins */
static void test_crack_cap_over_baseline(void **state)
{
	struct fx *f = *state;
	const struct rec *r;

	fx_start(f);
	alerts_crack_baseline(f->e, at(0), S1, 10.0);   /* 30 > cap 20 */
	cracks(f, S1, 0, 30 * SEC, 19);
	expect_none(f);
	alerts_crack(f->e, at(10 * MIN), S1);
	r = expect(f, 1, ALERT_CRACK_RATE, S1, ALERT_RAISED);
	assert_int_equal(r->severity, ALERT_WARNING);
	/* invalid baselines mean none */
	alerts_crack_baseline(f->e, at(11 * MIN), S2, -3.0);
	cracks(f, S2, 11 * MIN, SEC, 19);
	expect_none(f);
}

/* cracks spread out: never 6 within an hour with baseline 1/h */
static void test_crack_window_slides(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	alerts_crack_baseline(f->e, at(0), S1, 1.0);
	/* 5 in the first hour, then one every 12 min (exactly 5 per hour:
	 * each new one arrives when the one 60 min older leaves) */
	cracks(f, S1, 0, 12 * MIN, 30);
	expect_none(f);
	/* one 12-minute gap shorter: 6 in (t - 1 h, t] */
	alerts_crack(f->e, at(29 * 12 * MIN + 11 * MIN), S1);
	expect(f, 1, ALERT_CRACK_RATE, S1, ALERT_RAISED);
}

/* ---- patterns ------------------------------------------------------------------ */

static void test_grinding(void **state)
{
	struct fx *f = *state;
	const struct rec *r;

	fx_start(f);
	assert_int_equal(alerts_pattern(f->e, at(0), S2, ALERT_GRINDING), 0);
	r = expect(f, 1, ALERT_GRINDING, S2, ALERT_RAISED);
	assert_int_equal(r->severity, ALERT_WARNING);
	assert_string_equal(r->message, "Grinding sounds keep coming back as you move. If they "
			    "come with pain, stiffness or swelling, it's worth talking to a "
			    "physiotherapist or doctor.");
	assert_kind_wording(r->message);
	assert_int_equal(alerts_next_deadline(f->e), 10 * MIN);
	/* repeated: extends the hold, no second alert */
	alerts_pattern(f->e, at(5 * MIN), S2, ALERT_GRINDING);
	expect_none(f);
	assert_int_equal(alerts_next_deadline(f->e), 15 * MIN);
	tick(f, 15 * MIN - 1);
	expect_none(f);
	tick(f, 15 * MIN);
	expect(f, 1, ALERT_GRINDING, S2, ALERT_CLEARED);
	/* cooldown until 30:00. A signal at 19:00 holds until 29:00: expires
	 * before the cooldown ends, never raised */
	alerts_pattern(f->e, at(19 * MIN), S2, ALERT_GRINDING);
	assert_int_equal(alerts_next_deadline(f->e), 29 * MIN);
	tick(f, 29 * MIN);
	assert_int_equal(alerts_next_deadline(f->e), ALERTS_NO_DEADLINE);
	tick(f, 30 * MIN);
	expect_none(f);
}

static void test_grinding_cooldown_raise(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	alerts_pattern(f->e, at(0), S2, ALERT_GRINDING);
	tick(f, 10 * MIN);
	expect(f, 1, ALERT_GRINDING, S2, ALERT_RAISED);
	expect(f, 1, ALERT_GRINDING, S2, ALERT_CLEARED);
	/* cooldown until 25:00; a signal at 24:59.999 still holds then */
	alerts_pattern(f->e, at(25 * MIN - 1), S2, ALERT_GRINDING);
	expect_none(f);
	assert_int_equal(alerts_next_deadline(f->e), 25 * MIN);
	tick(f, 25 * MIN);
	expect(f, 2, ALERT_GRINDING, S2, ALERT_RAISED);
	/* acknowledged, then more grinding: stays acknowledged until it stops */
	assert_int_equal(alerts_ack(f->e, at(26 * MIN), 2), ALERTS_ACK_OK);
	expect(f, 2, ALERT_GRINDING, S2, ALERT_ACKNOWLEDGED);
	alerts_pattern(f->e, at(30 * MIN), S2, ALERT_GRINDING);
	tick(f, 39 * MIN);
	expect_none(f);
	tick(f, 40 * MIN);
	expect(f, 2, ALERT_GRINDING, S2, ALERT_CLEARED);
}

static void test_self_manipulation(void **state)
{
	struct fx *f = *state;
	const struct rec *r;

	fx_start(f);
	assert_int_equal(alerts_pattern(f->e, at(0), S2, ALERT_SLOUCH_LONG), -1);
	alerts_pattern(f->e, at(MIN), S2, ALERT_SELF_MANIPULATION);
	r = expect(f, 1, ALERT_SELF_MANIPULATION, S2, ALERT_RAISED);
	assert_int_equal(r->severity, ALERT_INFO);
	assert_kind_wording(r->message);
	assert_non_null(strstr(r->message, "physiotherapist"));
	/* grinding is independent */
	alerts_pattern(f->e, at(2 * MIN), S2, ALERT_GRINDING);
	expect(f, 2, ALERT_GRINDING, S2, ALERT_RAISED);
	tick(f, 11 * MIN);
	expect(f, 1, ALERT_SELF_MANIPULATION, S2, ALERT_CLEARED);
	tick(f, 12 * MIN);
	expect(f, 2, ALERT_GRINDING, S2, ALERT_CLEARED);
	expect_none(f);
}

/* ---- sensor-lost ------------------------------------------------------------------ */

static void test_sensor_lost(void **state)
{
	struct fx *f = *state;
	const struct rec *r;

	fx_start(f);
	alerts_sensor_streaming(f->e, at(0), S1, true);
	alerts_sensor_streaming(f->e, at(10 * SEC), S1, false);
	/* further "not streaming" states keep the original start */
	alerts_sensor_streaming(f->e, at(20 * SEC), S1, false);
	expect_none(f);
	assert_int_equal(alerts_next_deadline(f->e), 70 * SEC);
	tick(f, 70 * SEC - 1);
	expect_none(f);
	tick(f, 70 * SEC);
	r = expect(f, 1, ALERT_SENSOR_LOST, S1, ALERT_RAISED);
	assert_int_equal(r->severity, ALERT_WARNING);
	assert_string_equal(r->message, "Sensor " S1 " hasn't sent data for 1 minute. It may "
			    "be out of range, switched off or out of charge; tracking resumes "
			    "when it's back.");
	assert_kind_wording(r->message);
	alerts_sensor_streaming(f->e, at(2 * MIN), S1, true);
	expect(f, 1, ALERT_SENSOR_LOST, S1, ALERT_CLEARED);
	/* a short drop (under 60 s) raises nothing */
	alerts_sensor_streaming(f->e, at(3 * MIN), S1, false);
	alerts_sensor_streaming(f->e, at(3 * MIN + 59 * SEC), S1, true);
	assert_int_equal(alerts_next_deadline(f->e), ALERTS_NO_DEADLINE);
	/* lost again at 5:00 for good: long enough at 6:00, cooldown ends 17:00 */
	alerts_sensor_streaming(f->e, at(5 * MIN), S1, false);
	tick(f, 6 * MIN);
	expect_none(f);
	assert_int_equal(alerts_next_deadline(f->e), 17 * MIN);
	tick(f, 17 * MIN);
	r = expect(f, 2, ALERT_SENSOR_LOST, S1, ALERT_RAISED);
	assert_non_null(strstr(r->message, "for 12 minutes."));
	expect_none(f);
}

/* ---- battery-low -------------------------------------------------------------------- */

static void test_battery_hysteresis(void **state)
{
	struct fx *f = *state;
	const struct rec *r;

	fx_start(f);
	alerts_battery(f->e, at(0), S1, 17);
	alerts_battery(f->e, at(1), S1, 15);     /* not below 15 */
	alerts_battery(f->e, at(2), S1, -1);     /* unknown: ignored */
	expect_none(f);
	alerts_battery(f->e, at(3), S1, 14);
	r = expect(f, 1, ALERT_BATTERY_LOW, S1, ALERT_RAISED);
	assert_int_equal(r->severity, ALERT_INFO);
	assert_string_equal(r->message, "The battery of sensor " S1 " is at 14%. Charging it "
			    "soon keeps tracking going.");
	assert_kind_wording(r->message);
	alerts_battery(f->e, at(4), S1, 15);
	alerts_battery(f->e, at(5), S1, 18);
	alerts_battery(f->e, at(6), S1, 20);     /* not above 20 */
	expect_none(f);
	alerts_battery(f->e, at(7), S1, 21);
	expect(f, 1, ALERT_BATTERY_LOW, S1, ALERT_CLEARED);
	/* back to 19 (in the band): stays clear; 16 too */
	alerts_battery(f->e, at(8), S1, 19);
	alerts_battery(f->e, at(9), S1, 16);
	expect_none(f);
	/* low again within the cooldown (until 15:00 + 7 ms) */
	alerts_battery(f->e, at(10 * MIN), S1, 12);
	expect_none(f);
	assert_int_equal(alerts_next_deadline(f->e), 15 * MIN + 7);
	/* charged back into the band: still low (hysteresis), raised at the end */
	alerts_battery(f->e, at(11 * MIN), S1, 18);
	tick(f, 15 * MIN + 6);
	expect_none(f);
	tick(f, 15 * MIN + 7);
	r = expect(f, 2, ALERT_BATTERY_LOW, S1, ALERT_RAISED);
	assert_non_null(strstr(r->message, "is at 18%."));
	alerts_battery(f->e, at(16 * MIN), S1, 100);
	expect(f, 2, ALERT_BATTERY_LOW, S1, ALERT_CLEARED);
	expect_none(f);
}

/* ---- several sensors, ids, list, forget, config ---------------------------------------- */

static void test_ids_and_list(void **state)
{
	struct fx *f = *state;
	struct alert list[8];

	fx_start(f);
	alerts_battery(f->e, at(0), S1, 5);
	alerts_battery(f->e, at(0), S2, 5);
	alerts_break_due(f->e, at(1), "", true, 0);
	alerts_pattern(f->e, at(2), S2, ALERT_GRINDING);
	expect(f, 1, ALERT_BATTERY_LOW, S1, ALERT_RAISED);
	expect(f, 2, ALERT_BATTERY_LOW, S2, ALERT_RAISED);
	expect(f, 3, ALERT_NO_BREAK, "", ALERT_RAISED);
	expect(f, 4, ALERT_GRINDING, S2, ALERT_RAISED);
	alerts_battery(f->e, at(3), S1, 90);
	expect(f, 1, ALERT_BATTERY_LOW, S1, ALERT_CLEARED);
	assert_int_equal(alerts_list_active(f->e, list, 2), 3);
	assert_int_equal(list[0].id, 2);
	assert_int_equal(list[1].id, 3);
	assert_int_equal(alerts_list_active(f->e, list, 8), 3);
	assert_int_equal(list[2].id, 4);
	assert_string_equal(list[2].sensor, S2);
	assert_int_equal(list[2].state, ALERT_RAISED);
	assert_int_equal(alerts_ack(f->e, at(4), 1), ALERTS_ACK_CLEARED);
	assert_int_equal(alerts_ack(f->e, at(4), 3), ALERTS_ACK_OK);
	expect(f, 3, ALERT_NO_BREAK, "", ALERT_ACKNOWLEDGED);
	/* forgetting a sensor clears its alerts, in rule order */
	assert_int_equal(alerts_forget_sensor(f->e, at(5), S2), 0);
	expect(f, 4, ALERT_GRINDING, S2, ALERT_CLEARED);
	expect(f, 2, ALERT_BATTERY_LOW, S2, ALERT_CLEARED);
	assert_int_equal(alerts_forget_sensor(f->e, at(5), S2), -1);
	assert_int_equal(alerts_list_active(f->e, NULL, 0), 1);
	/* a forgotten sensor starts afresh (no cooldown) */
	alerts_battery(f->e, at(6), S2, 5);
	expect(f, 5, ALERT_BATTERY_LOW, S2, ALERT_RAISED);
	expect_none(f);
}

static void test_bad_input(void **state)
{
	struct fx *f = *state;

	fx_start(f);
	assert_int_equal(alerts_battery(f->e, at(0), NULL, 5), -1);
	assert_int_equal(alerts_battery(f->e, at(0), "C0:FF:EE:00:00:01:02", 5), -1);
	assert_int_equal(alerts_crack(f->e, at(0), "C0:FF:EE:00:00:01:02"), -1);
	assert_int_equal(alerts_forget_sensor(f->e, at(0), NULL), -1);
	expect_none(f);
}

static void test_disabled_and_reconfigure(void **state)
{
	struct fx *f = *state;
	struct alerts_config c;

	f->cfg.enabled[ALERT_BATTERY_LOW] = false;
	fx_start(f);
	alerts_battery(f->e, at(0), S1, 5);
	alerts_sensor_streaming(f->e, at(0), S1, false);
	expect_none(f);
	assert_int_equal(alerts_next_deadline(f->e), 60 * SEC);
	tick(f, 60 * SEC);
	expect(f, 1, ALERT_SENSOR_LOST, S1, ALERT_RAISED);
	/* enable battery-low (it was low all along), disable sensor-lost */
	c = f->cfg;
	c.enabled[ALERT_BATTERY_LOW] = true;
	c.enabled[ALERT_SENSOR_LOST] = false;
	c.crack_cap = 5;
	c.crack_floor = 5;
	assert_int_equal(alerts_reconfigure(f->e, &c, at(2 * MIN)), 0);
	expect(f, 1, ALERT_SENSOR_LOST, S1, ALERT_CLEARED);   /* rule order */
	expect(f, 2, ALERT_BATTERY_LOW, S1, ALERT_RAISED);
	assert_int_equal(alerts_next_deadline(f->e), ALERTS_NO_DEADLINE);
	/* the smaller cap applies */
	cracks(f, S1, 3 * MIN, SEC, 5);
	expect(f, 3, ALERT_CRACK_RATE, S1, ALERT_RAISED);
	c.crack_cap = 0;
	assert_int_equal(alerts_reconfigure(f->e, &c, at(4 * MIN)), -1);
	expect_none(f);
}

/* a zero cooldown: re-raised as soon as the condition returns */
static void test_zero_cooldown(void **state)
{
	struct fx *f = *state;

	f->cfg.cooldown_ms[ALERT_BATTERY_LOW] = 0;
	fx_start(f);
	alerts_battery(f->e, at(0), S1, 5);
	alerts_battery(f->e, at(1), S1, 50);
	alerts_battery(f->e, at(1), S1, 5);
	expect(f, 1, ALERT_BATTERY_LOW, S1, ALERT_RAISED);
	expect(f, 1, ALERT_BATTERY_LOW, S1, ALERT_CLEARED);
	expect(f, 2, ALERT_BATTERY_LOW, S1, ALERT_RAISED);
	expect_none(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config),
		cmocka_unit_test(test_names),
		cmocka_unit_test_setup_teardown(test_slouch_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slouch_cooldown_boundary, setup, teardown),
		cmocka_unit_test_setup_teardown(test_slouch_ends_in_cooldown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ack, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_break, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crack_cap_without_baseline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crack_sustained, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crack_baseline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crack_cap_over_baseline, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crack_window_slides, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grinding, setup, teardown),
		cmocka_unit_test_setup_teardown(test_grinding_cooldown_raise, setup, teardown),
		cmocka_unit_test_setup_teardown(test_self_manipulation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sensor_lost, setup, teardown),
		cmocka_unit_test_setup_teardown(test_battery_hysteresis, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ids_and_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disabled_and_reconfigure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_zero_cooldown, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
