/*
 * stats_keeper.h - the running daemon's aggregation (stats.h) and where it
 * is kept: sensors.c reports crack episodes, slouches, posture breaks and
 * sitting time here; the record's days are rows of the history database
 * (history.h: the last STATS_MAX_DAYS days are read at start, the changed
 * record is written at most once a minute and at exit, and the database keeps
 * days for two years while memory holds eight weeks); the feed asks for the "stats"
 * object (hello, the stats command) and the alert center gets the wearer's
 * usual crack rate from stats_keeper_baseline().
 *
 * Sitting time comes in as many short spans (one per posture sample); the
 * keeper joins contiguous ones and hands them to stats.h a minute at a time
 * (and before every query or save), so the per-sample cost is a comparison.
 */
#ifndef SW_STATS_KEEPER_H
#define SW_STATS_KEEPER_H

#include <stdint.h>

#include <jansson.h>

#include "loop.h"

#define STATS_KEEPER_SAVE_DELAY_MS 60000    /* after the first unsaved change */
#define STATS_KEEPER_SITTING_FLUSH_MS 60000 /* a joined sitting span goes in at this length */

struct stats_keeper;

/*
 * Reads the last days from the history database (NULL: the record lives in
 * memory only). An unusable stored record is logged and the keeper starts
 * empty (the rows stay for a person to look at). NULL on allocation failure.
 */
struct history;
struct stats_keeper *stats_keeper_new(struct history *history);
/* With a loop, changes are saved after STATS_KEEPER_SAVE_DELAY_MS; without
 * one, only by stats_keeper_save() and at free. */
void stats_keeper_attach_loop(struct stats_keeper *k, struct loop *loop);
/* Saves what is unsaved, then frees. */
void stats_keeper_free(struct stats_keeper *k);
/* Writes the changed record now: 0, or -1 (logged; retried later). */
int stats_keeper_save(struct stats_keeper *k);

/* Inputs; times are epoch ms. Bad or too old input is counted and dropped
 * with a rate-limited log line. */
void stats_keeper_crack(struct stats_keeper *k, const char *sensor, int64_t ts_ms,
			const char *kind, unsigned pops);
void stats_keeper_slouch(struct stats_keeper *k, const char *sensor, int64_t onset_ms,
			 int64_t end_ms);
void stats_keeper_break(struct stats_keeper *k, const char *sensor, int64_t ts_ms);
void stats_keeper_sitting(struct stats_keeper *k, const char *sensor, int64_t from_ms,
			  int64_t to_ms);

/* The usual cracks per hour for the hour of day containing now_ms, or
 * STATS_NO_BASELINE (-1) while there are fewer than 3 earlier days. */
double stats_keeper_baseline(struct stats_keeper *k, const char *sensor, int64_t now_ms);

/* The "stats" object (stats.h) as of now_ms, for every sensor or one: a new
 * reference, NULL on allocation failure. */
json_t *stats_keeper_json(struct stats_keeper *k, int64_t now_ms, const char *sensor_or_NULL);
/* The record in memory (the last STATS_MAX_DAYS days, newer than its rows
 * in the history database until the next save) in stats_save()'s format,
 * malloc'd; NULL on allocation failure. For the HTTP API. */
char *stats_keeper_days_text(struct stats_keeper *k);

#endif
