/*
 * history.h - the durable store under the state directory: one SQLite
 * database, STATE_DIR/history.db (WAL), holding
 *  - every sequenced event (alerts and calibrations included), exactly the
 *    bytes the feed sent, so that after a restart the ring is refilled and
 *    the numbering continues;
 *  - the stream id, kept across a clean restart (a crash starts a new one:
 *    the last second's numbers may have been seen by clients but not kept);
 *  - the per-day record (daily aggregates, one row per sensor and day);
 *  - each posture sensor's calibration.
 * Events are queued in memory and written in one transaction at most
 * HISTORY_FLUSH_MS after the first of them, so a kill -9 loses at most that
 * much, or as soon as HISTORY_FLUSH_BATCH are waiting (at 10,000 events/s
 * one transaction a second held the loop, and the feed, for 40-80 ms); WAL
 * with synchronous=NORMAL never leaves a corrupt database after a crash of
 * the daemon. When writing fails (disk full, read-only directory,
 * I/O error) events keep streaming live, up to HISTORY_MAX_PENDING of them
 * wait in memory (older ones are dropped and counted), the error is logged
 * (rate-limited) and reported by history_problem(), and writing is retried
 * with backoff until it works again. Old events and days are pruned a few
 * hundred rows at a time after a flush, so the loop never pauses long.
 */
#ifndef SW_HISTORY_H
#define SW_HISTORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "loop.h"

#define HISTORY_FILE "history.db"
#define HISTORY_FLUSH_MS 1000          /* the most a kill -9 can lose */
#define HISTORY_FLUSH_BATCH 500        /* this many waiting: write them on the next loop turn */
#define HISTORY_MAX_PENDING 20000      /* events waiting while writing fails */
#define HISTORY_TEXT_MIN 65536         /* the queued JSON texts' ring starts this big */
#define HISTORY_RETRY_MIN_MS 1000
#define HISTORY_RETRY_MAX_MS 30000
#define HISTORY_PRUNE_EVERY_MS (60LL * 60 * 1000)
#define HISTORY_PRUNE_STEP 500         /* rows deleted per step */
#define HISTORY_DEFAULT_EVENT_DAYS 90
#define HISTORY_DEFAULT_DAILY_DAYS 730

struct history;

struct history_config {
	unsigned event_days;   /* events older than this are pruned (1..36500) */
	unsigned daily_days;   /* per-day rows older than this are pruned (1..36500) */
};

/*
 * Opens (or creates) STATE_DIR/history.db. A file that is not a usable
 * database is moved aside (history.db.bad) and a new one is made. NULL with
 * a message in err if the state directory cannot hold a database at all
 * (the daemon then runs without history).
 */
struct history *history_open(const char *state_dir, const struct history_config *cfg,
			     char *err, size_t errlen);
/* With a loop, queued events are flushed by a timer; without, by history_flush(). */
void history_attach_loop(struct history *h, struct loop *loop);
void history_set_config(struct history *h, const struct history_config *cfg);
/* Flushes, marks the shutdown clean (the stream id is kept) and closes. */
void history_close(struct history *h);

/* A new random stream id (16 hex digits). */
void history_new_stream_id(char out[17]);
/* The stream id (16 hex digits) this run continues or starts. */
const char *history_stream(const struct history *h);
/* Whether the last run ended cleanly (its stream id is continued). */
bool history_resumed(const struct history *h);
/* The highest event seq kept (0: none). */
uint64_t history_last_seq(const struct history *h);

/*
 * The newest run of consecutive kept events, at most limit of them, oldest
 * first: fn(user, seq, json, len) for each. Returns how many, or -1.
 */
typedef void (*history_event_fn)(void *user, uint64_t seq, const char *json, size_t len);
long history_recent(struct history *h, size_t limit, history_event_fn fn, void *user);

/*
 * Kept events (written or still queued) for the HTTP API: those with
 * seq > since (and seq < before, if before is not 0), of one kind and/or
 * one sensor if given, oldest first (newest first with newest_first), at
 * most limit (1..HISTORY_QUERY_MAX): fn(user, seq, json, len) for each.
 * Bind parameters only; indexed by seq, kind and sensor. Returns how many,
 * or -1 on a database error.
 */
#define HISTORY_QUERY_MAX 1000
struct history_query {
	uint64_t since, before;     /* before 0: no upper bound */
	size_t limit;
	const char *kind;           /* NULL: any */
	const char *sensor;         /* NULL: any */
	bool newest_first;
};
long history_query_events(struct history *h, const struct history_query *q,
			  history_event_fn fn, void *user);

/* One kept event's JSON (malloc'd), queued or written; NULL if there is none. */
char *history_event_json(struct history *h, uint64_t seq);

/* Queues one encoded event (copied). */
void history_add_event(struct history *h, uint64_t seq, int64_t ts_ms, const char *kind,
		       const char *sensor, const char *json, size_t len);
/* Writes what is queued now: 0, or -1 (kept queued, retried later). */
int history_flush(struct history *h);

/* One pruning step: deletes up to HISTORY_PRUNE_STEP events older than
 * event_days, then days older than daily_days; returns how many rows. (With a
 * loop, steps run by themselves after a flush, at most hourly.) */
int history_prune_step(struct history *h);

/* NULL while writing works; else what went wrong ("disk full", ...). */
const char *history_problem(const struct history *h);
/* Counters: events written, dropped while writing failed, pending now. */
struct history_counts {
	uint64_t written, dropped, pending, pruned;
};
void history_counts(const struct history *h, struct history_counts *out);

/*
 * The per-day record: stats_save() text (stats.h) is split into one row per
 * sensor and day and upserted; history_days() gives back the days since
 * from_date ("YYYY-MM-DD", local) in the same format for stats_load(), as a
 * malloc'd string (NULL on error; an empty record is {"v":1,"sensors":[]}).
 * 0 or -1.
 */
int history_save_days(struct history *h, const char *stats_text);
char *history_days(struct history *h, const char *from_date);
/*
 * The per-day rows (stats_save()'s day objects, as text) with
 * from_date <= date <= to_date, of one sensor if not NULL, by sensor then
 * date: fn(user, sensor, date, json) for each, at most max_rows of them.
 * Returns how many, -1 on a database error, -2 if more than max_rows match
 * (none are given then).
 */
typedef void (*history_day_fn)(void *user, const char *sensor, const char *date,
			       const char *json);
long history_query_days(struct history *h, const char *from_date, const char *to_date,
			const char *sensor, size_t max_rows, history_day_fn fn, void *user);

/* A sensor's stored calibration line (calibration.h's text form), or NULL;
 * malloc'd. */
char *history_calibration(struct history *h, const char *sensor);
int history_set_calibration(struct history *h, const char *sensor, const char *line,
			    int64_t ts_ms);

#endif
