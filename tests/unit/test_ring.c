/*
 * test_ring.c - unit tests for daemon/ring.c: ordering, wrap-around and
 * overwrite, gap notices, independent cursors, the reserve/commit protocol,
 * RING_PRE headroom, an area smaller than capacity records of the largest
 * size, and long randomized runs checked against a model.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ring.h"

/* The payload of record seq: len bytes that depend on seq and position. */
static unsigned char pattern_byte(uint64_t seq, size_t i)
{
	return (unsigned char)(seq * 31u + i * 7u + 1u);
}

static uint64_t append_pattern(struct ring *r, size_t len)
{
	unsigned char buf[256];
	uint64_t next = ring_last_seq(r) + 1;

	assert_true(len <= sizeof(buf));
	for (size_t i = 0; i < len; i++)
		buf[i] = pattern_byte(next, i);
	return ring_append(r, buf, len);
}

static void assert_pattern(const unsigned char *data, size_t len,
			   uint64_t seq, size_t want_len)
{
	assert_int_equal(len, want_len);
	for (size_t i = 0; i < len; i++)
		if (data[i] != pattern_byte(seq, i))
			fail_msg("record %llu byte %zu: got %u want %u",
				 (unsigned long long)seq, i, data[i],
				 pattern_byte(seq, i));
}

/* Length used for record seq in the deterministic tests. */
static size_t len_for(uint64_t seq, size_t payload_max)
{
	return (size_t)(seq * 5u % (payload_max + 1));
}

/* The next read is record seq, want_len bytes of its pattern. */
static void expect_record(struct ring *r, uint64_t *cursor, uint64_t seq, size_t want_len)
{
	const unsigned char *data = NULL;
	size_t len = 0;
	struct ring_gap gap = { 0, 0 };

	assert_int_equal(ring_read(r, cursor, &data, &len, &gap), RING_DATA);
	assert_int_equal(*cursor, seq);
	assert_non_null(data);
	assert_pattern(data, len, seq, want_len);
}

static void expect_data(struct ring *r, uint64_t *cursor, uint64_t seq)
{
	expect_record(r, cursor, seq, len_for(seq, ring_payload_max(r)));
}

static void expect_gap(struct ring *r, uint64_t *cursor, uint64_t from,
		       uint64_t to)
{
	const unsigned char *data = NULL;
	size_t len = 0;
	struct ring_gap gap = { 0, 0 };

	assert_int_equal(ring_read(r, cursor, &data, &len, &gap), RING_GAP);
	assert_int_equal(gap.from, from);
	assert_int_equal(gap.to, to);
	assert_int_equal(*cursor, to);
}

static void expect_empty(struct ring *r, uint64_t *cursor)
{
	const unsigned char *data = NULL;
	size_t len = 0;
	struct ring_gap gap = { 0, 0 };

	assert_int_equal(ring_read(r, cursor, &data, &len, &gap), RING_EMPTY);
}

static void fill(struct ring *r, uint64_t upto)
{
	while (ring_last_seq(r) < upto) {
		uint64_t next = ring_last_seq(r) + 1;

		assert_int_equal(append_pattern(r, len_for(next, ring_payload_max(r))),
				 next);
	}
}

static void test_new_rejects_bad_sizes(void **state)
{
	(void)state;
	assert_null(ring_new(0, 16, 0));
	assert_null(ring_new(16, 0, 0));
	assert_null(ring_new(0, 0, 0));
	/* sizes whose byte count overflows size_t: refused, not truncated */
	assert_null(ring_new(SIZE_MAX, 1, 0));
	assert_null(ring_new(SIZE_MAX / 64, 64, 0));
	assert_null(ring_new(4, SIZE_MAX, 0));
	assert_null(ring_new(4, 16, SIZE_MAX));
	ring_free(NULL);
}

static void test_empty(void **state)
{
	struct ring *r = ring_new(8, 32, 0);
	uint64_t cursor = 0;

	(void)state;
	assert_non_null(r);
	assert_int_equal(ring_capacity(r), 8);
	assert_int_equal(ring_payload_max(r), 32);
	assert_int_equal(ring_last_seq(r), 0);
	assert_int_equal(ring_oldest_seq(r), 0);
	assert_int_equal(ring_pending(r, 0), 0);
	expect_empty(r, &cursor);
	assert_int_equal(cursor, 0);

	/* a cursor from an earlier run is treated as the last seq (0) */
	cursor = 42;
	expect_empty(r, &cursor);
	assert_int_equal(cursor, 0);
	assert_int_equal(ring_pending(r, 42), 0);
	ring_free(r);
}

static void test_in_order(void **state)
{
	struct ring *r = ring_new(8, 32, 0);
	uint64_t cursor = 0;

	(void)state;
	fill(r, 5);
	assert_int_equal(ring_last_seq(r), 5);
	assert_int_equal(ring_oldest_seq(r), 1);
	assert_int_equal(ring_pending(r, 0), 5);
	for (uint64_t s = 1; s <= 5; s++) {
		expect_data(r, &cursor, s);
		assert_int_equal(ring_pending(r, cursor), 5 - s);
	}
	expect_empty(r, &cursor);
	assert_int_equal(cursor, 5);

	/* a zero-length record is a record */
	assert_int_equal(ring_append(r, NULL, 0), 6);
	{
		const unsigned char *data = NULL;
		size_t len = 99;

		assert_int_equal(ring_read(r, &cursor, &data, &len, NULL), RING_DATA);
		assert_int_equal(cursor, 6);
		assert_int_equal(len, 0);
		assert_non_null(data);
	}
	ring_free(r);
}

static void test_wrap_and_overwrite(void **state)
{
	struct ring *r = ring_new(4, 24, 0);
	uint64_t cursor = 6;

	(void)state;
	fill(r, 10); /* 10 records through 4 slots: 7..10 remain */
	assert_int_equal(ring_last_seq(r), 10);
	assert_int_equal(ring_oldest_seq(r), 7);
	for (uint64_t s = 7; s <= 10; s++)
		expect_data(r, &cursor, s);
	expect_empty(r, &cursor);

	/* keep wrapping many times; the newest 4 are always intact */
	fill(r, 1003);
	assert_int_equal(ring_oldest_seq(r), 1000);
	cursor = 999;
	for (uint64_t s = 1000; s <= 1003; s++)
		expect_data(r, &cursor, s);
	expect_empty(r, &cursor);
	ring_free(r);
}

static void test_gap_exact(void **state)
{
	struct ring *r = ring_new(4, 16, 0);
	uint64_t cursor = 0;

	(void)state;
	fill(r, 10);
	/* from the start: 1..6 are gone */
	expect_gap(r, &cursor, 1, 6);
	expect_data(r, &cursor, 7);

	/* a cursor that consumed 3 misses 4..6 */
	cursor = 3;
	assert_int_equal(ring_pending(r, cursor), 4);
	expect_gap(r, &cursor, 4, 6);
	for (uint64_t s = 7; s <= 10; s++)
		expect_data(r, &cursor, s);
	expect_empty(r, &cursor);

	/* exactly oldest - 1 is not behind: no gap */
	cursor = 6;
	expect_data(r, &cursor, 7);

	/* one record behind the oldest: a gap of exactly one */
	cursor = 5;
	expect_gap(r, &cursor, 6, 6);
	expect_data(r, &cursor, 7);

	/* gap struct may be omitted */
	cursor = 1;
	assert_int_equal(ring_read(r, &cursor, NULL, NULL, NULL), RING_GAP);
	assert_int_equal(cursor, 6);
	ring_free(r);
}

static void test_independent_cursors(void **state)
{
	struct ring *r = ring_new(5, 40, 0);
	uint64_t a = 0, b = 0, c = 0;

	(void)state;
	fill(r, 3);
	expect_data(r, &a, 1);
	expect_data(r, &a, 2);
	expect_data(r, &a, 3);
	expect_data(r, &b, 1);
	/* c reads nothing yet */

	fill(r, 8); /* oldest is now 4 */
	assert_int_equal(ring_oldest_seq(r), 4);
	assert_int_equal(ring_pending(r, a), 5);
	assert_int_equal(ring_pending(r, b), 5); /* 2..3 are gone */
	assert_int_equal(ring_pending(r, c), 5);

	/* a is exactly at the edge: no gap */
	expect_data(r, &a, 4);
	/* b and c fell behind by different amounts */
	expect_gap(r, &b, 2, 3);
	expect_gap(r, &c, 1, 3);
	expect_data(r, &b, 4);
	expect_data(r, &b, 5);
	/* reading with one cursor does not move another */
	assert_int_equal(a, 4);
	assert_int_equal(c, 3);
	expect_data(r, &c, 4);
	for (uint64_t s = 5; s <= 8; s++)
		expect_data(r, &a, s);
	expect_empty(r, &a);
	assert_int_equal(ring_pending(r, a), 0);
	assert_int_equal(ring_pending(r, b), 3);
	assert_int_equal(ring_pending(r, c), 4);
	ring_free(r);
}

static void test_cursor_beyond_last(void **state)
{
	struct ring *r = ring_new(4, 16, 0);
	uint64_t cursor = 1000;

	(void)state;
	fill(r, 6);
	assert_int_equal(ring_pending(r, cursor), 0);
	expect_empty(r, &cursor);
	assert_int_equal(cursor, 6);
	fill(r, 7);
	expect_data(r, &cursor, 7);

	cursor = UINT64_MAX;
	expect_empty(r, &cursor);
	assert_int_equal(cursor, 7);
	assert_int_equal(ring_pending(r, UINT64_MAX), 0);
	ring_free(r);
}

static void test_oversize_commit_rejected(void **state)
{
	struct ring *r = ring_new(4, 16, 0);
	unsigned char big[17];
	uint64_t seq = 0, cursor = 0;
	unsigned char *buf;

	(void)state;
	memset(big, 0x5a, sizeof(big));
	fill(r, 2);

	buf = ring_reserve(r, &seq);
	assert_non_null(buf);
	assert_int_equal(seq, 3);
	assert_int_equal(ring_commit(r, 17), -1);
	assert_int_equal(ring_last_seq(r), 2);
	/* the failed commit also closed the reserve */
	assert_int_equal(ring_commit(r, 1), -1);
	assert_int_equal(ring_last_seq(r), 2);

	assert_int_equal(ring_append(r, big, sizeof(big)), 0);
	assert_int_equal(ring_last_seq(r), 2);
	/* exactly payload_max fits */
	assert_int_equal(ring_append(r, big, 16), 3);

	expect_data(r, &cursor, 1);
	expect_data(r, &cursor, 2);
	{
		const unsigned char *data;
		size_t len;

		assert_int_equal(ring_read(r, &cursor, &data, &len, NULL), RING_DATA);
		assert_int_equal(cursor, 3);
		assert_int_equal(len, 16);
		assert_memory_equal(data, big, 16);
	}
	expect_empty(r, &cursor);
	ring_free(r);
}

static void test_uncommitted_reserve_discarded(void **state)
{
	struct ring *r = ring_new(3, 8, 0);
	uint64_t seq = 0, cursor = 0;
	unsigned char *buf;

	(void)state;
	/* commit without reserve fails */
	assert_int_equal(ring_commit(r, 0), -1);
	assert_int_equal(ring_last_seq(r), 0);

	buf = ring_reserve(r, &seq);
	assert_int_equal(seq, 1);
	memset(buf - RING_PRE, 0xee, RING_PRE + 8);
	assert_int_equal(ring_last_seq(r), 0);
	assert_int_equal(ring_pending(r, 0), 0);
	expect_empty(r, &cursor);

	/* the next reserve hands out the same seq again */
	buf = ring_reserve(r, &seq);
	assert_int_equal(seq, 1);
	fill(r, 3); /* full */
	assert_int_equal(ring_oldest_seq(r), 1);

	/* scribbling over a reserve on a full ring must not touch the oldest */
	buf = ring_reserve(r, &seq);
	assert_int_equal(seq, 4);
	memset(buf - RING_PRE, 0xee, RING_PRE + 8);
	assert_int_equal(ring_oldest_seq(r), 1);
	for (uint64_t s = 1; s <= 3; s++)
		expect_data(r, &cursor, s);
	expect_empty(r, &cursor);

	/* a reserve written in two steps, with its own seq in the payload */
	buf = ring_reserve(r, &seq);
	assert_int_equal(seq, 4);
	for (size_t i = 0; i < len_for(seq, 8); i++)
		buf[i] = pattern_byte(seq, i);
	assert_int_equal(ring_commit(r, len_for(seq, 8)), 0);
	expect_data(r, &cursor, 4);
	ring_free(r);
}

static void test_pending(void **state)
{
	struct ring *r = ring_new(10, 8, 0);

	(void)state;
	fill(r, 4);
	assert_int_equal(ring_pending(r, 0), 4);
	assert_int_equal(ring_pending(r, 1), 3);
	assert_int_equal(ring_pending(r, 4), 0);
	assert_int_equal(ring_pending(r, 5), 0);
	fill(r, 25); /* held: 16..25 */
	assert_int_equal(ring_pending(r, 0), 10);
	assert_int_equal(ring_pending(r, 14), 10);
	assert_int_equal(ring_pending(r, 15), 10);
	assert_int_equal(ring_pending(r, 16), 9);
	assert_int_equal(ring_pending(r, 24), 1);
	assert_int_equal(ring_pending(r, 25), 0);
	ring_free(r);
}

/* Every record's RING_PRE headroom and full payload are writable, and
 * writing them does not disturb any other record. */
static void test_headroom_writable(void **state)
{
	const size_t cap = 6, max = 20;
	struct ring *r = ring_new(cap, max, 0);
	uint64_t cursor, seq;

	(void)state;
	for (uint64_t s = 1; s <= 2 * cap + 1; s++) {
		unsigned char *buf = ring_reserve(r, &seq);

		assert_int_equal(seq, s);
		memset(buf - RING_PRE, 0xcc, RING_PRE + max);
		for (size_t i = 0; i < max; i++)
			buf[i] = pattern_byte(seq, i);
		assert_int_equal(ring_commit(r, max), 0);
	}

	/* a sender writes its frame header in front of each record in place */
	cursor = ring_oldest_seq(r) - 1;
	for (seq = ring_oldest_seq(r); seq <= ring_last_seq(r); seq++) {
		const unsigned char *data;
		size_t len;

		assert_int_equal(ring_read(r, &cursor, &data, &len, NULL), RING_DATA);
		assert_pattern(data, len, seq, max);
		memset((unsigned char *)data - RING_PRE, 0x81, RING_PRE);
	}
	cursor = ring_oldest_seq(r) - 1;
	for (seq = ring_oldest_seq(r); seq <= ring_last_seq(r); seq++) {
		const unsigned char *data;
		size_t len;

		assert_int_equal(ring_read(r, &cursor, &data, &len, NULL), RING_DATA);
		assert_pattern(data, len, seq, max);
	}
	ring_free(r);
}

/* xorshift64*: deterministic, so a failure is reproducible */
static uint64_t rng_state;

static uint64_t rng_next(void)
{
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 2685821657736338717ull;
}

static size_t rng_below(size_t n)
{
	return (size_t)(rng_next() % n);
}

#define MODEL_OPS 60000
#define MODEL_CURSORS 6

/* what record seq of len bytes takes of the ring's area */
static size_t record_bytes(size_t len)
{
	return (RING_PRE + len + 7) & ~(size_t)7;
}

/*
 * The oldest record a ring of capacity cap and area bytes (0: room for cap
 * records of max) must hold: the model's "newest cap records", and with an
 * area, the ring's promise that the newest records adding up to at most
 * bytes - 2 * record_bytes(max) are held. Where the area ends the oldest
 * records, the ring itself says; the model bounds it: at least that newest
 * run is held, at most as many as fit in the area, never more than cap.
 */
static uint64_t model_oldest(const struct ring *r, const size_t *lens, uint64_t last,
			     size_t cap, size_t max, size_t bytes, uint64_t prev)
{
	uint64_t count_oldest = last > cap ? last - cap + 1 : 1;
	uint64_t got = ring_oldest_seq(r), sure = last + 1;
	size_t sum = 0, area = ring_bytes(r);

	if (last == 0)
		return 0;
	if (bytes == 0)
		return count_oldest;
	/* the newest run the ring promises to keep */
	while (sure > count_oldest && sum + record_bytes(lens[sure - 1]) <= area - 2 * record_bytes(max))
		sum += record_bytes(lens[--sure]);
	assert_true(got >= count_oldest);
	assert_true(got <= sure);
	assert_true(got >= prev);   /* never back in time */
	sum = 0;
	for (uint64_t s = got; s <= last; s++)
		sum += record_bytes(lens[s]);
	assert_true(sum <= area);
	return got;
}

/*
 * Model: every record ever appended (its length; its bytes follow from the
 * pattern), and the rule "the newest capacity records are held" - or, with
 * an area of bytes bytes, the bounds model_oldest() checks.
 */
static void model_run(size_t cap, size_t max, size_t bytes)
{
	struct ring *r = ring_new(cap, max, bytes);
	size_t *lens = calloc(MODEL_OPS + 1, sizeof(*lens));
	uint64_t cursors[MODEL_CURSORS] = { 0 };
	uint64_t last = 0, reads = 0, gaps = 0, oldest = 0;

	assert_non_null(r);
	assert_non_null(lens);
	for (int op = 0; op < MODEL_OPS; op++) {
		size_t k = rng_below(100);

		oldest = model_oldest(r, lens, last, cap, max, bytes, oldest);
		assert_int_equal(ring_last_seq(r), last);
		assert_int_equal(ring_oldest_seq(r), oldest);

		if (k < 40) { /* append, sometimes oversize */
			size_t len = rng_below(max + 3);
			uint64_t got = append_pattern(r, len);

			if (len > max) {
				assert_int_equal(got, 0);
			} else {
				assert_int_equal(got, last + 1);
				lens[++last] = len;
			}
		} else if (k < 45) { /* reserve, scribble, maybe abandon */
			uint64_t seq;
			unsigned char *buf = ring_reserve(r, &seq);

			assert_int_equal(seq, last + 1);
			memset(buf - RING_PRE, 0xa5, RING_PRE + max);
			if (rng_below(2)) {
				size_t len = rng_below(max + 1);

				for (size_t i = 0; i < len; i++)
					buf[i] = pattern_byte(seq, i);
				assert_int_equal(ring_commit(r, len), 0);
				lens[++last] = len;
			}
		} else if (k < 47) { /* a reader jumps somewhere, maybe beyond */
			cursors[rng_below(MODEL_CURSORS)] = rng_below(last + 5);
		} else { /* read with a random cursor */
			uint64_t *c = &cursors[rng_below(MODEL_CURSORS)];
			uint64_t want_cur = *c > last ? last : *c;
			uint64_t want_pending = 0;
			const unsigned char *data = NULL;
			size_t len = 0;
			struct ring_gap gap = { 0, 0 };
			enum ring_read_result res;

			if (want_cur < last)
				want_pending = last - (want_cur + 1 < oldest ? oldest - 1 : want_cur);
			assert_int_equal(ring_pending(r, *c), want_pending);

			res = ring_read(r, c, &data, &len, &gap);
			if (want_cur == last) {
				assert_int_equal(res, RING_EMPTY);
				assert_int_equal(*c, last);
			} else if (want_cur + 1 < oldest) {
				assert_int_equal(res, RING_GAP);
				assert_int_equal(gap.from, want_cur + 1);
				assert_int_equal(gap.to, oldest - 1);
				assert_int_equal(*c, oldest - 1);
				gaps++;
			} else {
				assert_int_equal(res, RING_DATA);
				assert_int_equal(*c, want_cur + 1);
				assert_pattern(data, len, *c, lens[*c]);
				reads++;
			}
		}
	}
	/* the run must have exercised both paths */
	assert_true(reads > 1000);
	assert_true(gaps > 10);
	free(lens);
	ring_free(r);
}

static void test_randomized_vs_model(void **state)
{
	static const size_t caps[] = { 1, 2, 7, 64 };

	(void)state;
	rng_state = 0x5eed5eed12345678ull;
	for (size_t i = 0; i < sizeof(caps) / sizeof(caps[0]); i++)
		model_run(caps[i], 1 + rng_below(48), 0);
}

/* The same with an area smaller than capacity records of the largest size:
 * the bytes end records too, and the promise about the newest still holds. */
static void test_randomized_area_vs_model(void **state)
{
	static const struct { size_t cap, max, bytes; } runs[] = {
		{ 64, 48, 700 },     /* bytes end records long before the count */
		{ 16, 40, 900 },     /* both, by turns */
		{ 200, 8, 3000 },    /* small records, many laps */
		{ 3, 100, 1 },       /* an area below the least: made 3 windows */
	};

	(void)state;
	rng_state = 0x0ddba11cafef00dull;
	for (size_t i = 0; i < sizeof(runs) / sizeof(runs[0]); i++)
		model_run(runs[i].cap, runs[i].max, runs[i].bytes);
}

/* What a byte-limited ring holds, worked out by hand. */
static void test_area_limits(void **state)
{
	struct ring *r = ring_new(100, 64, 800);
	uint64_t cursor = 0;

	(void)state;
	assert_non_null(r);
	assert_int_equal(ring_bytes(r), 800);
	assert_int_equal(ring_capacity(r), 100);
	/* records of 16 bytes take 32, the largest (RING_PRE + 64) 80: after 22
	 * of them the next goes at 704, and 704 + 80 still fits in 800 */
	for (uint64_t seq = 1; seq <= 22; seq++)
		assert_int_equal(append_pattern(r, 16), seq);
	assert_int_equal(ring_oldest_seq(r), 1);
	/* the 23rd ends at 736, where 80 bytes no longer fit: the next lap
	 * starts, and its first 80 bytes held records 1-3 (at 0, 32, 64) */
	assert_int_equal(append_pattern(r, 16), 23);
	assert_int_equal(ring_oldest_seq(r), 4);
	expect_gap(r, &cursor, 1, 3);
	for (uint64_t seq = 4; seq <= 23; seq++)
		expect_record(r, &cursor, seq, 16);
	/* one of the largest at [800, 880): the window after it, [880, 960),
	 * takes records 4 and 5 (at 96 and 128 of this lap) */
	assert_int_equal(append_pattern(r, 64), 24);
	assert_int_equal(ring_oldest_seq(r), 6);
	expect_record(r, &cursor, 24, 64);
	ring_free(r);

	/* the least area is three of the largest records */
	r = ring_new(10, 100, 1);
	assert_non_null(r);
	assert_int_equal(ring_bytes(r), 3 * 120);
	for (uint64_t seq = 1; seq <= 5; seq++)
		assert_int_equal(append_pattern(r, 100), seq);
	/* each record and the window after it: two are held */
	assert_int_equal(ring_oldest_seq(r), 4);
	assert_int_equal(ring_pending(r, 0), 2);
	ring_free(r);
}

/* A ring continuing an earlier run's numbering (the durable store's refill). */
static void test_start_at(void **state)
{
	struct ring *r = ring_new(4, 32, 0);
	uint64_t cursor = 0, late = 0;

	(void)state;
	assert_non_null(r);
	assert_int_equal(ring_start_at(r, 0), -1);
	assert_int_equal(ring_start_at(r, 1001), 0);
	assert_int_equal(ring_last_seq(r), 1000);
	assert_int_equal(ring_oldest_seq(r), 0);
	assert_int_equal(ring_pending(r, 0), 0);
	/* nothing held: a client of the earlier run (cursor 990) is told 991..1000 are gone */
	cursor = 990;
	expect_gap(r, &cursor, 991, 1000);
	assert_int_equal(ring_read(r, &cursor, NULL, NULL, NULL), RING_EMPTY);
	for (uint64_t seq = 1001; seq <= 1003; seq++)
		assert_int_equal(append_pattern(r, len_for(seq, 32)), seq);
	assert_int_equal(ring_start_at(r, 5), -1);   /* not empty any more */
	assert_int_equal(ring_oldest_seq(r), 1001);
	assert_int_equal(ring_pending(r, 0), 3);
	/* from the start: the records before 1001 are not here */
	expect_gap(r, &late, 1, 1000);
	expect_data(r, &late, 1001);
	expect_data(r, &cursor, 1001);
	/* wrap: capacity 4 */
	for (uint64_t seq = 1004; seq <= 1007; seq++)
		assert_int_equal(append_pattern(r, len_for(seq, 32)), seq);
	assert_int_equal(ring_oldest_seq(r), 1004);
	expect_gap(r, &cursor, 1002, 1003);
	expect_data(r, &cursor, 1004);
	ring_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_rejects_bad_sizes),
		cmocka_unit_test(test_empty),
		cmocka_unit_test(test_in_order),
		cmocka_unit_test(test_wrap_and_overwrite),
		cmocka_unit_test(test_gap_exact),
		cmocka_unit_test(test_independent_cursors),
		cmocka_unit_test(test_cursor_beyond_last),
		cmocka_unit_test(test_oversize_commit_rejected),
		cmocka_unit_test(test_uncommitted_reserve_discarded),
		cmocka_unit_test(test_pending),
		cmocka_unit_test(test_headroom_writable),
		cmocka_unit_test(test_randomized_vs_model),
		cmocka_unit_test(test_randomized_area_vs_model),
		cmocka_unit_test(test_area_limits),
		cmocka_unit_test(test_start_at),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
