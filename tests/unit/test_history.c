/*
 * test_history.c - unit tests for daemon/history.c on real SQLite files in a
 * temporary state directory: the stream id kept across a clean close and
 * replaced after a crash, events written in batches and read back as the
 * newest consecutive run, writes that fail while another connection holds
 * the database (kept, retried, bounded, reported), pruning of old events and
 * days, the per-day record round trip, calibrations, and a damaged file set
 * aside.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "history.h"
#include "scratch_dir.h"
#include "log.h"

#define DAY_MS (24LL * 3600 * 1000)
#define PAD "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" \
	"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"

static int setup(void **state)
{
	(void)state;
	return scratch_make("sw-history");
}

static struct history *open_h(void)
{
	char err[256] = "";
	struct history *h = history_open(dir, NULL, err, sizeof(err));

	if (!h)
		fail_msg("history_open: %s", err);
	return h;
}

static void add(struct history *h, uint64_t seq, int64_t ts)
{
	char json[64];
	int n = snprintf(json, sizeof(json), "{\"seq\":%llu}", (unsigned long long)seq);

	history_add_event(h, seq, ts, "crack", "C0:FF:EE:00:00:02", json, (size_t)n);
}

struct seen {
	uint64_t seqs[64];
	size_t n;
};

static void collect(void *user, uint64_t seq, const char *json, size_t len)
{
	struct seen *s = user;
	char want[64];

	snprintf(want, sizeof(want), "{\"seq\":%llu}", (unsigned long long)seq);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(json, want, len);
	if (s->n < 64)
		s->seqs[s->n++] = seq;
}

static void test_stream_kept_on_clean_close(void **state)
{
	struct history *h = open_h();
	char first[17];
	struct seen s = { .n = 0 };

	(void)state;
	assert_false(history_resumed(h));
	assert_int_equal(history_last_seq(h), 0);
	snprintf(first, sizeof(first), "%s", history_stream(h));
	assert_int_equal(strlen(first), 16);
	for (uint64_t q = 1; q <= 5; q++)
		add(h, q, clock_epoch_ms());
	history_close(h);   /* flushes */

	h = open_h();
	assert_true(history_resumed(h));
	assert_string_equal(history_stream(h), first);
	assert_int_equal(history_last_seq(h), 5);
	assert_int_equal(history_recent(h, 3, collect, &s), 3);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.seqs[0], 3);
	assert_int_equal(s.seqs[2], 5);
	history_close(h);
}

/* No history_close(): a crash. What was flushed stays; the stream id is new. */
static void test_crash_new_stream(void **state)
{
	struct history *h = open_h(), *h2;
	char first[17];
	struct seen s = { .n = 0 };

	(void)state;
	snprintf(first, sizeof(first), "%s", history_stream(h));
	add(h, 1, clock_epoch_ms());
	add(h, 2, clock_epoch_ms());
	assert_int_equal(history_flush(h), 0);
	add(h, 3, clock_epoch_ms());   /* queued, never flushed: lost with the crash */

	h2 = open_h();                 /* the next run, while the old handle is "dead" */
	assert_false(history_resumed(h2));
	assert_string_not_equal(history_stream(h2), first);
	assert_int_equal(history_last_seq(h2), 2);
	assert_int_equal(history_recent(h2, 10, collect, &s), 2);
	history_close(h2);
	/* the dead run's handle: freed without writing anything more */
	{
		struct history_counts c;

		history_counts(h, &c);
		assert_int_equal(c.written, 2);
		assert_int_equal(c.pending, 1);
	}
	history_close(h);   /* (it may write seq 3 now; harmless for this test) */
}

static void test_recent_newest_consecutive_run(void **state)
{
	struct history *h = open_h();
	struct seen s = { .n = 0 };

	(void)state;
	for (uint64_t q = 1; q <= 4; q++)
		add(h, q, clock_epoch_ms());
	for (uint64_t q = 10; q <= 12; q++)   /* a hole: 5..9 were never kept */
		add(h, q, clock_epoch_ms());
	assert_int_equal(history_flush(h), 0);
	assert_int_equal(history_recent(h, 100, collect, &s), 3);
	assert_int_equal(s.seqs[0], 10);
	assert_int_equal(s.seqs[2], 12);
	assert_int_equal(history_last_seq(h), 12);
	history_close(h);
}

/* Another connection holds a write lock: writes fail, events wait, then go in. */
static void test_write_failure_kept_and_retried(void **state)
{
	struct history *h = open_h();
	struct history_counts c;
	char path[128];
	sqlite3 *other;
	struct seen s = { .n = 0 };

	(void)state;
	snprintf(path, sizeof(path), "%s/%s", dir, HISTORY_FILE);
	assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	add(h, 1, clock_epoch_ms());
	add(h, 2, clock_epoch_ms());
	assert_int_equal(history_flush(h), -1);
	assert_string_equal(history_problem(h), "the database is busy");
	history_counts(h, &c);
	assert_int_equal(c.pending, 2);
	assert_int_equal(c.written, 0);
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	add(h, 3, clock_epoch_ms());
	assert_int_equal(history_flush(h), 0);
	assert_null(history_problem(h));
	history_counts(h, &c);
	assert_int_equal(c.written, 3);
	assert_int_equal(c.pending, 0);
	assert_int_equal(history_recent(h, 10, collect, &s), 3);
	history_close(h);
}

/* The queue is bounded: while writing fails, the oldest are dropped and counted. */
static void test_pending_bounded(void **state)
{
	struct history *h = open_h();
	struct history_counts c;
	char path[128];
	sqlite3 *other;

	(void)state;
	snprintf(path, sizeof(path), "%s/%s", dir, HISTORY_FILE);
	assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	for (uint64_t q = 1; q <= HISTORY_MAX_PENDING + 10; q++)
		add(h, q, clock_epoch_ms());
	history_counts(h, &c);
	assert_int_equal(c.pending, HISTORY_MAX_PENDING);
	assert_int_equal(c.dropped, 10);
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	assert_int_equal(history_flush(h), 0);
	history_counts(h, &c);
	assert_int_equal(c.written, HISTORY_MAX_PENDING);
	history_close(h);
}

/* The queued JSON texts live in one ring of bytes: texts of every length wrap around it
 * and make it grow while writing fails, and every one comes back whole, queued and
 * written. */
static int var_json(char *buf, size_t size, uint64_t seq)
{
	return snprintf(buf, size, "{\"seq\":%llu,\"pad\":\"%.*s\"}", (unsigned long long)seq,
			(int)(seq * 37 % 500), PAD);
}

static void check_json(struct history *h, uint64_t seq)
{
	char want[600];
	char *got = history_event_json(h, seq);

	var_json(want, sizeof(want), seq);
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void test_queued_texts_ring(void **state)
{
	struct history *h = open_h();
	struct history_counts c;
	char path[128], json[600];
	sqlite3 *other;
	uint64_t q, last = HISTORY_MAX_PENDING + 3000;

	(void)state;
	/* wrapping without growing: flushed every 100 events */
	for (q = 1; q <= 1000; q++) {
		int n = var_json(json, sizeof(json), q);

		history_add_event(h, q, clock_epoch_ms(), "crack", "", json, (size_t)n);
		if (q % 100 == 0)
			assert_int_equal(history_flush(h), 0);
	}
	check_json(h, 1);
	check_json(h, 1000);
	/* writing fails: the ring grows and wraps while the oldest are dropped */
	snprintf(path, sizeof(path), "%s/%s", dir, HISTORY_FILE);
	assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
	assert_int_equal(sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL), SQLITE_OK);
	for (q = 1001; q <= last; q++) {
		int n = var_json(json, sizeof(json), q);

		history_add_event(h, q, clock_epoch_ms(), "crack", "", json, (size_t)n);
	}
	history_counts(h, &c);
	assert_int_equal(c.pending, HISTORY_MAX_PENDING);
	for (q = last - HISTORY_MAX_PENDING + 1; q <= last; q += 997)
		check_json(h, q);
	check_json(h, last);
	assert_int_equal(sqlite3_exec(other, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(other);
	assert_int_equal(history_flush(h), 0);
	for (q = last - HISTORY_MAX_PENDING + 1; q <= last; q += 997)
		check_json(h, q);
	check_json(h, last);
	history_close(h);
}

static int64_t count_rows(const char *sql)
{
	char path[128];
	sqlite3 *db;
	sqlite3_stmt *st;
	int64_t n = -1;

	snprintf(path, sizeof(path), "%s/%s", dir, HISTORY_FILE);
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		n = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* Events older than event_days and days older than daily_days go, a step at a time. */
static void test_prune_old_events_and_days(void **state)
{
	struct history_config cfg = { .event_days = 90, .daily_days = 730 };
	char err[128];
	struct history *h = history_open(dir, &cfg, err, sizeof(err));
	int64_t now = clock_epoch_ms();
	struct history_counts c;

	(void)state;
	assert_non_null(h);
	for (uint64_t q = 1; q <= 1200; q++)   /* 1200 events 100 days old */
		add(h, q, now - 100 * DAY_MS);
	for (uint64_t q = 1201; q <= 1210; q++)
		add(h, q, now - DAY_MS);
	assert_int_equal(history_flush(h), 0);
	assert_int_equal(history_save_days(h, "{\"v\":1,\"sensors\":[{\"sensor\":\"S\",\"days\":["
					   "{\"date\":\"2001-01-01\"},{\"date\":\"2999-01-01\"}]}]}"),
			 0);
	assert_int_equal(count_rows("SELECT count(*) FROM events"), 1210);
	assert_int_equal(history_prune_step(h), HISTORY_PRUNE_STEP);
	assert_int_equal(history_prune_step(h), HISTORY_PRUNE_STEP);
	assert_int_equal(history_prune_step(h), 200 + 1);   /* the last old events, the old day */
	assert_int_equal(history_prune_step(h), 0);
	assert_int_equal(count_rows("SELECT count(*) FROM events"), 10);
	assert_int_equal(count_rows("SELECT min(seq) FROM events"), 1201);
	assert_int_equal(count_rows("SELECT count(*) FROM daily"), 1);
	history_counts(h, &c);
	assert_int_equal(c.pruned, 1201);
	/* a shorter retention takes the rest */
	cfg.event_days = 0;
	history_set_config(h, &cfg);
	assert_int_equal(history_prune_step(h), 10);
	history_close(h);
}

static void test_days_round_trip(void **state)
{
	struct history *h = open_h();
	const char *rec =
		"{\"v\":1,\"sensors\":[{\"sensor\":\"C0:FF:EE:00:00:02\",\"days\":["
		"{\"date\":\"2026-11-30\",\"pop\":1},{\"date\":\"2026-12-01\",\"pop\":2}]},"
		"{\"sensor\":\"C0:FF:EE:00:00:01\",\"days\":[{\"date\":\"2026-12-01\",\"pop\":3}]}]}";
	char *text;

	(void)state;
	assert_int_equal(history_save_days(h, rec), 0);
	/* an update of one day replaces it */
	assert_int_equal(history_save_days(h, "{\"v\":1,\"sensors\":[{\"sensor\":"
					   "\"C0:FF:EE:00:00:02\",\"days\":[{\"date\":"
					   "\"2026-12-01\",\"pop\":5}]}]}"), 0);
	text = history_days(h, "2026-12-01");
	assert_string_equal(text, "{\"v\":1,\"sensors\":[{\"sensor\":\"C0:FF:EE:00:00:01\","
			    "\"days\":[{\"date\":\"2026-12-01\",\"pop\":3}]},{\"sensor\":"
			    "\"C0:FF:EE:00:00:02\",\"days\":[{\"date\":\"2026-12-01\",\"pop\":5}]}]}");
	free(text);
	text = history_days(h, "2026-01-01");
	assert_non_null(strstr(text, "\"2026-11-30\""));
	free(text);
	text = history_days(h, "2030-01-01");
	assert_string_equal(text, "{\"v\":1,\"sensors\":[]}");
	free(text);
	assert_int_equal(history_save_days(h, "not json"), -1);
	history_close(h);
}

static void test_calibration(void **state)
{
	struct history *h = open_h();
	char *line;

	(void)state;
	assert_null(history_calibration(h, "C0:FF:EE:00:00:01"));
	assert_int_equal(history_set_calibration(h, "C0:FF:EE:00:00:01", "v1 0 0.3 0.95", 1), 0);
	assert_int_equal(history_set_calibration(h, "C0:FF:EE:00:00:01", "v1 0 0.2 0.97", 2), 0);
	history_close(h);
	h = open_h();
	line = history_calibration(h, "C0:FF:EE:00:00:01");
	assert_string_equal(line, "v1 0 0.2 0.97");
	free(line);
	history_close(h);
}

static void test_damaged_file_set_aside(void **state)
{
	char path[128], bad[140];
	struct history *h;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/%s", dir, HISTORY_FILE);
	snprintf(bad, sizeof(bad), "%s.bad", path);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("this is not a database, but it is long enough to have a header of sorts.....\n", f);
	fclose(f);
	h = open_h();
	assert_int_equal(history_last_seq(h), 0);
	assert_int_equal(access(bad, F_OK), 0);
	add(h, 1, clock_epoch_ms());
	history_close(h);
	assert_int_equal(count_rows("SELECT count(*) FROM events"), 1);
}

static void test_no_state_dir(void **state)
{
	char err[128] = "";

	(void)state;
	assert_null(history_open("", NULL, err, sizeof(err)));
	assert_string_equal(err, "no state directory");
	assert_null(history_open("/proc/no/such/dir", NULL, err, sizeof(err)));
	assert_non_null(strstr(err, "cannot make"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_stream_kept_on_clean_close, setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_crash_new_stream, setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_recent_newest_consecutive_run, setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_write_failure_kept_and_retried, setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_pending_bounded, setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_queued_texts_ring, setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_prune_old_events_and_days, setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_days_round_trip, setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_calibration, setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_damaged_file_set_aside, setup, scratch_teardown),
		cmocka_unit_test_setup_teardown(test_no_state_dir, setup, scratch_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
