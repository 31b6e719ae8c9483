/*
 * test_cracks.c - unit tests for daemon/cracks.c with an injected clock:
 * merging pops within exactly 150 ms, late reports, the deadline, clicks and
 * grinds held back in order, refused reports, the self-manipulation and
 * repeated-grinding patterns with their window and gap edges and refractory
 * expiry, flushing, the queue and the configuration check.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cracks.h"

#define POP SPINE_CRACK_POP
#define CLICK SPINE_CRACK_CLICK
#define GRIND SPINE_CRACK_GRIND
#define MIN (60 * 1000)

static struct cracks_report rep(int64_t ts, enum spine_crack_kind kind, unsigned intensity,
				unsigned duration_ms, unsigned count)
{
	struct cracks_report r = { .ts_ms = ts, .kind = kind, .intensity = intensity,
				    .duration_ms = duration_ms, .count = count };

	return r;
}

static void feed_ok(struct cracks *c, int64_t now, struct cracks_report r)
{
	const char *msg = cracks_feed(c, now, &r);

	if (msg)
		fail_msg("report at %lld refused: %s", (long long)r.ts_ms, msg);
}

static void init_default(struct cracks *c)
{
	struct cracks_config cfg;

	cracks_config_default(&cfg);
	assert_null(cracks_config_check(&cfg));
	cracks_init(c, &cfg);
}

static void expect_nothing(struct cracks *c)
{
	struct cracks_event ev;

	if (cracks_next(c, &ev))
		fail_msg("unexpected event type %d (episode at %lld)", ev.type,
			 (long long)ev.episode.start_ms);
}

static void expect_episode(struct cracks *c, enum spine_crack_kind kind, int64_t start,
			   int64_t end, unsigned intensity, unsigned count, unsigned reports)
{
	struct cracks_event ev;

	if (!cracks_next(c, &ev))
		fail_msg("no event, want an episode at %lld", (long long)start);
	assert_int_equal(ev.type, CRACKS_EPISODE);
	assert_int_equal(ev.episode.kind, kind);
	assert_int_equal(ev.episode.start_ms, start);
	assert_int_equal(ev.episode.end_ms, end);
	assert_int_equal(ev.episode.intensity, intensity);
	assert_int_equal(ev.episode.count, count);
	assert_int_equal(ev.episode.reports, reports);
}

static void expect_pattern(struct cracks *c, enum cracks_event_type type, int64_t first,
			   int64_t last, unsigned episodes)
{
	struct cracks_event ev;

	if (!cracks_next(c, &ev))
		fail_msg("no event, want pattern %d", type);
	assert_int_equal(ev.type, type);
	assert_int_equal(ev.first_ms, first);
	assert_int_equal(ev.episode.start_ms, last);
	assert_int_equal(ev.episodes, episodes);
}

/* A single-report episode of `kind` at t, closed by the tick at its deadline
 * for pops; the episode event is checked and taken. */
static void one(struct cracks *c, int64_t t, enum spine_crack_kind kind)
{
	feed_ok(c, t, rep(t, kind, 50, 6, 1));
	if (kind == POP) {
		expect_nothing(c);
		assert_int_equal(cracks_next_deadline(c), t + 251);
		cracks_tick(c, t + 251);
	}
	expect_episode(c, kind, t, t + 6, 50, 1, 1);
}

/* Pops within 150 ms of the first merge; exactly 150 ms still does, 151
 * does not. The episode closes at onset + 150 + 100 + 1. */
static void test_merge_window_boundary(void **state)
{
	struct cracks c;

	(void)state;
	init_default(&c);
	assert_true(cracks_next_deadline(&c) == CRACKS_NO_DEADLINE);
	feed_ok(&c, 1000, rep(1000, POP, 55, 6, 1));
	assert_int_equal(cracks_next_deadline(&c), 1251);
	feed_ok(&c, 1060, rep(1060, POP, 80, 5, 1));
	feed_ok(&c, 1150, rep(1150, POP, 40, 10, 2));
	assert_int_equal(cracks_next_deadline(&c), 1251);
	cracks_tick(&c, 1250);
	expect_nothing(&c);
	cracks_tick(&c, 1251);
	expect_episode(&c, POP, 1000, 1160, 80, 4, 3);
	expect_nothing(&c);
	assert_true(cracks_next_deadline(&c) == CRACKS_NO_DEADLINE);
	assert_int_equal(c.episodes, 1);

	/* 151 ms after: the open episode is emitted, a new one opens */
	feed_ok(&c, 5000, rep(5000, POP, 60, 6, 1));
	feed_ok(&c, 5151, rep(5151, POP, 30, 6, 1));
	expect_episode(&c, POP, 5000, 5006, 60, 1, 1);
	expect_nothing(&c);
	assert_int_equal(cracks_next_deadline(&c), 5151 + 251);
	cracks_tick(&c, 5151 + 251);
	expect_episode(&c, POP, 5151, 5157, 30, 1, 1);
}

/* A notification arriving late still merges while the episode is open. */
static void test_late_report(void **state)
{
	struct cracks c;

	(void)state;
	init_default(&c);
	feed_ok(&c, 1000, rep(1000, POP, 50, 6, 1));
	feed_ok(&c, 1250, rep(1140, POP, 50, 6, 1));
	expect_nothing(&c);
	cracks_tick(&c, 1251);
	expect_episode(&c, POP, 1000, 1146, 50, 2, 2);

	/* one ms later it is too late: the feed closes the episode first */
	feed_ok(&c, 2000, rep(2000, POP, 50, 6, 1));
	feed_ok(&c, 2251, rep(2140, POP, 50, 6, 1));
	expect_episode(&c, POP, 2000, 2006, 50, 1, 1);
	expect_nothing(&c);
	assert_int_equal(cracks_next_deadline(&c), 2140 + 251);
	cracks_tick(&c, 2391);
	expect_episode(&c, POP, 2140, 2146, 50, 1, 1);
}

/* A report slightly earlier than the opening one merges and moves the start;
 * the window stays anchored at the opening report. */
static void test_earlier_onset_merges(void **state)
{
	struct cracks c;

	(void)state;
	init_default(&c);
	feed_ok(&c, 1000, rep(1000, POP, 50, 6, 2));
	feed_ok(&c, 1010, rep(990, POP, 70, 5, 1));
	assert_int_equal(cracks_next_deadline(&c), 1251);
	cracks_tick(&c, 1251);
	expect_episode(&c, POP, 990, 1006, 70, 3, 2);
}

/* With no report delay the window is still inclusive at 150 ms. */
static void test_zero_report_delay(void **state)
{
	struct cracks_config cfg;
	struct cracks c;

	(void)state;
	cracks_config_default(&cfg);
	cfg.report_delay_ms = 0;
	assert_null(cracks_config_check(&cfg));
	cracks_init(&c, &cfg);
	feed_ok(&c, 0, rep(0, POP, 50, 6, 1));
	assert_int_equal(cracks_next_deadline(&c), 151);
	feed_ok(&c, 150, rep(150, POP, 50, 6, 1));
	cracks_tick(&c, 150);
	expect_nothing(&c);
	cracks_tick(&c, 151);
	expect_episode(&c, POP, 0, 156, 50, 2, 2);
}

/* Clicks and grinds never merge; inside an open pop window they wait for it,
 * so episodes come out in onset order. */
static void test_clicks_and_grinds(void **state)
{
	struct cracks c;

	(void)state;
	init_default(&c);
	/* alone: emitted at once, no deadline */
	feed_ok(&c, 500, rep(500, CLICK, 30, 4, 1));
	expect_episode(&c, CLICK, 500, 504, 30, 1, 1);
	assert_true(cracks_next_deadline(&c) == CRACKS_NO_DEADLINE);
	feed_ok(&c, 600, rep(600, GRIND, 20, 400, 1));
	expect_episode(&c, GRIND, 600, 1000, 20, 1, 1);

	feed_ok(&c, 1000, rep(1000, POP, 60, 6, 1));
	feed_ok(&c, 1050, rep(1050, CLICK, 35, 4, 1));
	feed_ok(&c, 1100, rep(1100, POP, 65, 6, 1));
	feed_ok(&c, 1110, rep(1110, CLICK, 36, 4, 1));
	expect_nothing(&c);
	/* a grind past the window closes the pop episode and its held clicks */
	feed_ok(&c, 1200, rep(1200, GRIND, 25, 300, 1));
	expect_episode(&c, POP, 1000, 1106, 65, 2, 2);
	expect_episode(&c, CLICK, 1050, 1054, 35, 1, 1);
	/* click 500, pop 1000, click 1050: three cracks within a minute */
	expect_pattern(&c, CRACKS_SELF_MANIPULATION, 500, 1050, 3);
	expect_episode(&c, CLICK, 1110, 1114, 36, 1, 1);
	expect_episode(&c, GRIND, 1200, 1500, 25, 1, 1);
	expect_nothing(&c);
	assert_true(cracks_next_deadline(&c) == CRACKS_NO_DEADLINE);

	/* held clicks also come out at the tick */
	feed_ok(&c, 3000, rep(3000, POP, 60, 6, 1));
	feed_ok(&c, 3150, rep(3150, CLICK, 35, 4, 1));
	cracks_tick(&c, 3251);
	expect_episode(&c, POP, 3000, 3006, 60, 1, 1);
	expect_episode(&c, CLICK, 3150, 3154, 35, 1, 1);
	expect_nothing(&c);
}

/* More held reports than fit: the pop episode is closed early. */
static void test_pending_full(void **state)
{
	struct cracks c;

	(void)state;
	init_default(&c);
	feed_ok(&c, 1000, rep(1000, POP, 60, 6, 1));
	for (int i = 0; i < CRACKS_PENDING_MAX; i++)
		feed_ok(&c, 1010 + i, rep(1010 + i, CLICK, 30, 4, 1));
	expect_nothing(&c);
	feed_ok(&c, 1020, rep(1020, CLICK, 31, 4, 1));
	expect_episode(&c, POP, 1000, 1006, 60, 1, 1);
	for (int i = 0; i < CRACKS_PENDING_MAX; i++) {
		expect_episode(&c, CLICK, 1010 + i, 1014 + i, 30, 1, 1);
		if (i == 1)
			expect_pattern(&c, CRACKS_SELF_MANIPULATION, 1000, 1011, 3);
	}
	expect_episode(&c, CLICK, 1020, 1024, 31, 1, 1);
	expect_nothing(&c);
	assert_true(cracks_next_deadline(&c) == CRACKS_NO_DEADLINE);
}

static void expect_refused(struct cracks *c, int64_t now, struct cracks_report r,
			   const char *word)
{
	const char *msg = cracks_feed(c, now, &r);

	assert_non_null(msg);
	if (!strstr(msg, word))
		fail_msg("message \"%s\" does not say \"%s\"", msg, word);
}

static void test_refused_reports(void **state)
{
	struct cracks c;

	(void)state;
	init_default(&c);
	feed_ok(&c, 1000, rep(1000, POP, 50, 6, 1));
	expect_refused(&c, 1010, rep(1010, (enum spine_crack_kind)3, 50, 6, 1), "kind");
	expect_refused(&c, 1010, rep(1010, POP, 101, 6, 1), "intensity");
	expect_refused(&c, 1010, rep(1010, POP, 50, 6, 0), "count");
	expect_refused(&c, 1010, rep(1010, POP, 50, 65536, 1), "duration");
	expect_refused(&c, 1010, rep(1011, POP, 50, 6, 1), "after now");
	assert_non_null(cracks_feed(&c, 1010, NULL));
	/* nothing changed, not even the tick a feed does first */
	expect_refused(&c, 1300, rep(1301, POP, 50, 6, 1), "after now");
	expect_nothing(&c);
	assert_int_equal(cracks_next_deadline(&c), 1251);
	cracks_tick(&c, 1250);
	expect_nothing(&c);
	cracks_tick(&c, 1251);
	expect_episode(&c, POP, 1000, 1006, 50, 1, 1);
	/* the limits themselves are fine */
	feed_ok(&c, 2000, rep(2000, GRIND, 100, 65535, 255));
	expect_episode(&c, GRIND, 2000, 67535, 100, 255, 1);
	feed_ok(&c, 3000, rep(3000, CLICK, 0, 0, 1));
	expect_episode(&c, CLICK, 3000, 3000, 0, 1, 1);
}

/* Three crack episodes within exactly 60 s fire; one ms more does not. */
static void test_self_manipulation_window(void **state)
{
	struct cracks c;

	(void)state;
	init_default(&c);
	one(&c, 0, POP);
	one(&c, 30000, POP);
	assert_false(cracks_pattern_active(&c, CRACKS_SELF_MANIPULATION, 30251));
	one(&c, 60000, POP);
	expect_pattern(&c, CRACKS_SELF_MANIPULATION, 0, 60000, 3);
	expect_nothing(&c);
	assert_true(cracks_pattern_active(&c, CRACKS_SELF_MANIPULATION, 60251));

	init_default(&c);
	one(&c, 0, POP);
	one(&c, 30000, POP);
	one(&c, 60001, POP);
	expect_nothing(&c);
	/* but 30000, 60001, 61000 do */
	one(&c, 61000, CLICK);
	expect_pattern(&c, CRACKS_SELF_MANIPULATION, 30000, 61000, 3);
	expect_nothing(&c);
}

/* Grinds do not count towards self-manipulation; pops and clicks do. */
static void test_self_manipulation_kinds(void **state)
{
	struct cracks c;
	struct cracks_config cfg;

	(void)state;
	init_default(&c);
	one(&c, 0, POP);
	one(&c, 10000, GRIND);
	one(&c, 20000, CLICK);
	expect_nothing(&c);
	one(&c, 30000, POP);
	expect_pattern(&c, CRACKS_SELF_MANIPULATION, 0, 30000, 3);

	/* configurable: pops only */
	cracks_config_default(&cfg);
	cfg.manip_kinds = CRACKS_KIND_BIT(POP);
	assert_null(cracks_config_check(&cfg));
	cracks_init(&c, &cfg);
	one(&c, 0, POP);
	one(&c, 1000, CLICK);
	one(&c, 2000, POP);
	expect_nothing(&c);
	one(&c, 3000, POP);
	expect_pattern(&c, CRACKS_SELF_MANIPULATION, 0, 3000, 3);
}

/* One occurrence fires once: more cracks at most 60 s apart keep it going;
 * it lapses after a longer quiet, then needs 3 within 60 s again. */
static void test_self_manipulation_refractory(void **state)
{
	struct cracks c;

	(void)state;
	init_default(&c);
	one(&c, 0, POP);
	one(&c, 1000, POP);
	one(&c, 2000, POP);
	expect_pattern(&c, CRACKS_SELF_MANIPULATION, 0, 2000, 3);
	one(&c, 3000, POP);
	one(&c, 50000, POP);
	/* exactly 60 s after the last still belongs to it */
	one(&c, 110000, POP);
	one(&c, 110500, POP);
	expect_nothing(&c);
	assert_true(cracks_pattern_active(&c, CRACKS_SELF_MANIPULATION, 170500));
	assert_false(cracks_pattern_active(&c, CRACKS_SELF_MANIPULATION, 170501));
	/* lapsed: the first crack after the quiet does not fire alone */
	one(&c, 170501, POP);
	expect_nothing(&c);
	assert_false(cracks_pattern_active(&c, CRACKS_SELF_MANIPULATION, 170752));
	one(&c, 171000, POP);
	expect_nothing(&c);
	one(&c, 172000, CLICK);
	expect_pattern(&c, CRACKS_SELF_MANIPULATION, 170501, 172000, 3);
	expect_nothing(&c);
}

/* A merged burst is one episode: 2-9 pops within 150 ms are one crack. */
static void test_burst_counts_once(void **state)
{
	struct cracks c;

	(void)state;
	init_default(&c);
	for (int b = 0; b < 2; b++) {
		int64_t t = b * 10000;

		for (int i = 0; i < 5; i++)
			feed_ok(&c, t + i * 30, rep(t + i * 30, POP, 60 + i, 6, 1));
		cracks_tick(&c, t + 251);
		expect_episode(&c, POP, t, t + 126, 64, 5, 5);
	}
	expect_nothing(&c);
	assert_int_equal(c.episodes, 2);
}

/* Grinds at most 2 min apart: three fire; a gap of 2 min + 1 ms breaks the
 * session. */
static void test_grinding_gap(void **state)
{
	struct cracks c;

	(void)state;
	init_default(&c);
	one(&c, 0, GRIND);
	one(&c, 2 * MIN, GRIND);
	one(&c, 4 * MIN, GRIND);
	expect_pattern(&c, CRACKS_GRINDING, 0, 4 * MIN, 3);
	expect_nothing(&c);

	init_default(&c);
	one(&c, 0, GRIND);
	one(&c, 2 * MIN + 1, GRIND);
	one(&c, 3 * MIN, GRIND);
	expect_nothing(&c);
	one(&c, 4 * MIN, GRIND);
	expect_pattern(&c, CRACKS_GRINDING, 2 * MIN + 1, 4 * MIN, 3);
	/* pops in between are neither grinds nor enough for the other pattern */
	one(&c, 4 * MIN + 500, POP);
	expect_nothing(&c);
}

/* The session bound: grind_count grinds must lie within 10 min (reachable
 * with 7 grinds: six gaps of up to 2 min span up to 12 min). */
static void test_grinding_session_length(void **state)
{
	static const int64_t within[] = { 0, 2 * MIN, 4 * MIN, 6 * MIN, 8 * MIN, 9 * MIN, 10 * MIN };
	static const int64_t beyond[] = { 0, 2 * MIN, 4 * MIN, 6 * MIN, 8 * MIN, 10 * MIN,
					  10 * MIN + 1 };
	struct cracks_config cfg;
	struct cracks c;

	(void)state;
	cracks_config_default(&cfg);
	cfg.grind_count = 7;
	assert_null(cracks_config_check(&cfg));

	cracks_init(&c, &cfg);
	for (int i = 0; i < 7; i++)
		one(&c, within[i], GRIND);
	expect_pattern(&c, CRACKS_GRINDING, 0, 10 * MIN, 7);

	cracks_init(&c, &cfg);
	for (int i = 0; i < 7; i++)
		one(&c, beyond[i], GRIND);
	expect_nothing(&c);
	one(&c, 12 * MIN, GRIND);
	expect_pattern(&c, CRACKS_GRINDING, 2 * MIN, 12 * MIN, 7);
}

/* Repeated grinding fires once per session; a new session fires again. */
static void test_grinding_refractory(void **state)
{
	struct cracks c;

	(void)state;
	init_default(&c);
	for (int i = 0; i < 3; i++)
		one(&c, i * MIN, GRIND);
	expect_pattern(&c, CRACKS_GRINDING, 0, 2 * MIN, 3);
	for (int i = 3; i < 30; i++)
		one(&c, i * MIN, GRIND);
	expect_nothing(&c);
	assert_true(cracks_pattern_active(&c, CRACKS_GRINDING, 31 * MIN));
	assert_false(cracks_pattern_active(&c, CRACKS_GRINDING, 31 * MIN + 1));
	assert_false(cracks_pattern_active(&c, CRACKS_SELF_MANIPULATION, 29 * MIN));
	one(&c, 31 * MIN + 1, GRIND);
	one(&c, 32 * MIN, GRIND);
	expect_nothing(&c);
	one(&c, 33 * MIN, GRIND);
	expect_pattern(&c, CRACKS_GRINDING, 31 * MIN + 1, 33 * MIN, 3);
}

static void test_flush(void **state)
{
	struct cracks c;

	(void)state;
	init_default(&c);
	cracks_flush(&c);
	expect_nothing(&c);
	feed_ok(&c, 1000, rep(1000, POP, 50, 6, 1));
	feed_ok(&c, 1010, rep(1010, CLICK, 40, 4, 1));
	cracks_flush(&c);
	expect_episode(&c, POP, 1000, 1006, 50, 1, 1);
	expect_episode(&c, CLICK, 1010, 1014, 40, 1, 1);
	expect_nothing(&c);
	assert_true(cracks_next_deadline(&c) == CRACKS_NO_DEADLINE);
	cracks_tick(&c, 5000);
	expect_nothing(&c);
}

/* An undrained queue keeps the oldest CRACKS_QUEUE_MAX and counts the rest. */
static void test_queue_overflow(void **state)
{
	struct cracks c;
	struct cracks_event ev;

	(void)state;
	init_default(&c);
	for (int i = 0; i < CRACKS_QUEUE_MAX + 8; i++)
		feed_ok(&c, i * 10 * MIN, rep(i * 10 * MIN, GRIND, 10, 100, 1));
	assert_int_equal(c.overflow, 8);
	for (int i = 0; i < CRACKS_QUEUE_MAX; i++) {
		assert_true(cracks_next(&c, &ev));
		assert_int_equal(ev.type, CRACKS_EPISODE);
		assert_int_equal(ev.episode.start_ms, (int64_t)i * 10 * MIN);
	}
	expect_nothing(&c);
	feed_ok(&c, 1000 * MIN, rep(1000 * MIN, CLICK, 10, 1, 1));
	expect_episode(&c, CLICK, 1000 * MIN, 1000 * MIN + 1, 10, 1, 1);
}

static void expect_rejected(const struct cracks_config *cfg, const char *word)
{
	const char *msg = cracks_config_check(cfg);

	assert_non_null(msg);
	if (!strstr(msg, word))
		fail_msg("message \"%s\" does not name \"%s\"", msg, word);
}

static void test_config_check(void **state)
{
	struct cracks_config def, c;
	struct cracks k;

	(void)state;
	cracks_config_default(&def);
	assert_int_equal(def.merge_ms, 150);
	assert_int_equal(def.report_delay_ms, 100);
	assert_int_equal(def.manip_count, 3);
	assert_int_equal(def.manip_window_ms, 60000);
	assert_int_equal(def.manip_kinds, (1u << POP) | (1u << CLICK));
	assert_int_equal(def.grind_count, 3);
	assert_int_equal(def.grind_session_ms, 600000);
	assert_int_equal(def.grind_gap_ms, 120000);
	assert_null(cracks_config_check(&def));
	assert_non_null(cracks_config_check(NULL));

	c = def; c.merge_ms = -1;            expect_rejected(&c, "merge window");
	c = def; c.merge_ms = 1001;          expect_rejected(&c, "merge window");
	c = def; c.merge_ms = 0;             assert_null(cracks_config_check(&c));
	c = def; c.report_delay_ms = -1;     expect_rejected(&c, "report delay");
	c = def; c.report_delay_ms = 2001;   expect_rejected(&c, "report delay");
	c = def; c.manip_count = 1;          expect_rejected(&c, "self-manipulation count");
	c = def; c.manip_count = 33;         expect_rejected(&c, "self-manipulation count");
	c = def; c.manip_count = 32;         assert_null(cracks_config_check(&c));
	c = def; c.manip_window_ms = 999;    expect_rejected(&c, "self-manipulation window");
	c = def; c.manip_window_ms = 3600001; expect_rejected(&c, "self-manipulation window");
	c = def; c.manip_kinds = 0;          expect_rejected(&c, "self-manipulation kinds");
	c = def; c.manip_kinds = 8;          expect_rejected(&c, "self-manipulation kinds");
	c = def; c.grind_count = 1;          expect_rejected(&c, "grinding count");
	c = def; c.grind_count = 33;         expect_rejected(&c, "grinding count");
	c = def; c.grind_gap_ms = 999;       expect_rejected(&c, "session gap");
	c = def; c.grind_session_ms = 119999; expect_rejected(&c, "session length");
	c = def; c.grind_session_ms = 120000; assert_null(cracks_config_check(&c));

	cracks_init(&k, NULL);
	assert_int_equal(k.cfg.merge_ms, CRACKS_DEFAULT_MERGE_MS);
}

/* With the largest count the pattern history is full and still correct. */
static void test_pattern_max_count(void **state)
{
	struct cracks_config cfg;
	struct cracks c;

	(void)state;
	cracks_config_default(&cfg);
	cfg.manip_count = CRACKS_PATTERN_MAX;
	cfg.manip_window_ms = 3600 * 1000;
	assert_null(cracks_config_check(&cfg));
	cracks_init(&c, &cfg);
	for (int i = 0; i < CRACKS_PATTERN_MAX - 1; i++)
		one(&c, i * 1000, CLICK);
	expect_nothing(&c);
	one(&c, (CRACKS_PATTERN_MAX - 1) * 1000, CLICK);
	expect_pattern(&c, CRACKS_SELF_MANIPULATION, 0, (CRACKS_PATTERN_MAX - 1) * 1000,
		       CRACKS_PATTERN_MAX);
	assert_int_equal(c.manip.n, CRACKS_PATTERN_MAX);
	one(&c, CRACKS_PATTERN_MAX * 1000, CLICK);
	expect_nothing(&c);
	assert_int_equal(c.manip.n, CRACKS_PATTERN_MAX);
	assert_int_equal(c.manip.onset[0], 1000);
}

/* Heard reports (from audio): the episode keeps the loudest heard one's level
 * and frequency; a merged report the sensor made itself adds none; an episode
 * of reports the sensor made has none. */
static void test_heard_level_and_frequency(void **state)
{
	struct cracks c;
	struct cracks_event ev;
	struct cracks_report a = rep(1000, POP, 60, 5, 1), b = rep(1040, POP, 70, 5, 2),
			     d = rep(1080, POP, 90, 5, 1);

	(void)state;
	init_default(&c);
	a.heard = (struct cracks_heard){ true, -30.0, 2400 };
	b.heard = (struct cracks_heard){ true, -22.5, 3100 };
	feed_ok(&c, 1010, a);
	feed_ok(&c, 1050, b);
	feed_ok(&c, 1090, d);   /* the sensor's own: louder by intensity, but not heard */
	cracks_tick(&c, 1251);
	assert_true(cracks_next(&c, &ev));
	assert_int_equal(ev.type, CRACKS_EPISODE);
	assert_int_equal(ev.episode.reports, 3);
	assert_int_equal(ev.episode.intensity, 90);
	assert_true(ev.episode.heard.heard);
	assert_true(ev.episode.heard.dbfs == -22.5);
	assert_int_equal(ev.episode.heard.freq_hz, 3100);
	feed_ok(&c, 5000, rep(5000, GRIND, 40, 800, 1));
	assert_true(cracks_next(&c, &ev));
	assert_false(ev.episode.heard.heard);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_heard_level_and_frequency),
		cmocka_unit_test(test_merge_window_boundary),
		cmocka_unit_test(test_late_report),
		cmocka_unit_test(test_earlier_onset_merges),
		cmocka_unit_test(test_zero_report_delay),
		cmocka_unit_test(test_clicks_and_grinds),
		cmocka_unit_test(test_pending_full),
		cmocka_unit_test(test_refused_reports),
		cmocka_unit_test(test_self_manipulation_window),
		cmocka_unit_test(test_self_manipulation_kinds),
		cmocka_unit_test(test_self_manipulation_refractory),
		cmocka_unit_test(test_burst_counts_once),
		cmocka_unit_test(test_grinding_gap),
		cmocka_unit_test(test_grinding_session_length),
		cmocka_unit_test(test_grinding_refractory),
		cmocka_unit_test(test_flush),
		cmocka_unit_test(test_queue_overflow),
		cmocka_unit_test(test_config_check),
		cmocka_unit_test(test_pattern_max_count),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
