/*
 * stats_keeper.c - the daemon's aggregation record, its sitting-span joiner
 * and its rows in the history database (see stats_keeper.h).
 */
#include "stats_keeper.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "history.h"
#include "stats.h"

#define DAY_MS (24LL * 3600 * 1000)

/* a sitting span not yet handed to stats.h */
struct span {
	char sensor[STATS_SENSOR_LEN];
	int64_t from, to;
};

struct stats_keeper {
	struct stats *st;
	struct history *history;   /* NULL: the record lives in memory only */
	struct loop *loop;
	struct loop_timer save_timer;
	bool dirty;
	size_t n_spans;
	struct span spans[STATS_MAX_SENSORS];
	uint64_t dropped;
	struct log_ratelimit rl;
};

static void note(struct stats_keeper *k, int r, const char *what, const char *sensor)
{
	if (r == STATS_OK) {
		if (!k->dirty && k->loop)
			loop_timer_start(&k->save_timer, STATS_KEEPER_SAVE_DELAY_MS);
		k->dirty = true;
		return;
	}
	k->dropped++;
	log_rl(&k->rl, LOG_INFO, "stats: dropped a %s of sensor %s (%s; %llu dropped so far)", what,
	       sensor ? sensor : "?",
	       r == STATS_EOLD ? "older than the days kept" :
	       r == STATS_EFULL ? "too many sensors" :
	       r == STATS_ENOMEM ? "out of memory" : "bad input",
	       (unsigned long long)k->dropped);
	if (r == STATS_EOLD)   /* part of a span may have gone in */
		k->dirty = true;
}

/* The last STATS_MAX_DAYS local days from the history database. */
static void load(struct stats_keeper *k)
{
	char err[256], from[16];
	time_t t = (time_t)((clock_epoch_ms() - (STATS_MAX_DAYS - 1) * DAY_MS) / 1000);
	struct tm tm;
	char *text;

	if (!k->history || !localtime_r(&t, &tm) || !strftime(from, sizeof(from), "%Y-%m-%d", &tm))
		return;
	text = history_days(k->history, from);
	if (!text) {
		log_warn("stats: cannot read the per-day record; starting a new one");
		return;
	}
	if (stats_load(k->st, text, err, sizeof(err)) == 0)
		log_info("stats: %zu sensor(s) of history since %s", stats_sensor_count(k->st), from);
	else
		log_warn("stats: the stored per-day record is unusable (%s); starting a new one "
			 "(the stored days are kept)", err);
	free(text);
}

static void save_timer_fire(struct loop_timer *t)
{
	stats_keeper_save(t->user);
}

struct stats_keeper *stats_keeper_new(struct history *history)
{
	struct stats_keeper *k = calloc(1, sizeof(*k));

	if (!k)
		return NULL;
	k->st = stats_new();
	if (!k->st) {
		free(k);
		return NULL;
	}
	k->history = history;
	load(k);
	return k;
}

void stats_keeper_attach_loop(struct stats_keeper *k, struct loop *loop)
{
	k->loop = loop;
	loop_timer_init(&k->save_timer, loop, save_timer_fire, k);
	if (k->dirty)
		loop_timer_start(&k->save_timer, STATS_KEEPER_SAVE_DELAY_MS);
}

static void flush_span(struct stats_keeper *k, size_t i)
{
	struct span *sp = &k->spans[i];

	if (sp->to > sp->from)
		note(k, stats_sitting(k->st, sp->sensor, sp->from, sp->to), "sitting span",
		     sp->sensor);
	k->spans[i] = k->spans[--k->n_spans];
}

static void flush_spans(struct stats_keeper *k)
{
	while (k->n_spans)
		flush_span(k, k->n_spans - 1);
}

int stats_keeper_save(struct stats_keeper *k)
{
	char *text;
	int r;

	if (!k)
		return -1;
	flush_spans(k);
	if (k->loop)
		loop_timer_cancel(&k->save_timer);
	if (!k->dirty || !k->history)
		return 0;
	stats_forget_before(k->st, clock_epoch_ms() - STATS_MAX_DAYS * DAY_MS);
	text = stats_save(k->st);
	if (!text) {
		log_warn("stats: out of memory while saving");
		return -1;
	}
	r = history_save_days(k->history, text);   /* logs its own errors */
	if (r == 0)
		k->dirty = false;
	free(text);
	if (r < 0 && k->loop)   /* try again later, do not lose the day */
		loop_timer_start(&k->save_timer, STATS_KEEPER_SAVE_DELAY_MS);
	return r;
}

void stats_keeper_free(struct stats_keeper *k)
{
	if (!k)
		return;
	stats_keeper_save(k);
	if (k->loop)
		loop_timer_cancel(&k->save_timer);
	stats_free(k->st);
	free(k);
}

void stats_keeper_crack(struct stats_keeper *k, const char *sensor, int64_t ts_ms,
			const char *kind, unsigned pops)
{
	if (pops > STATS_MAX_POPS)
		pops = STATS_MAX_POPS;
	note(k, stats_crack(k->st, sensor, ts_ms, kind, pops), "crack", sensor);
}

void stats_keeper_slouch(struct stats_keeper *k, const char *sensor, int64_t onset_ms,
			 int64_t end_ms)
{
	note(k, stats_slouch(k->st, sensor, onset_ms, end_ms), "slouch", sensor);
}

void stats_keeper_break(struct stats_keeper *k, const char *sensor, int64_t ts_ms)
{
	note(k, stats_break(k->st, sensor, ts_ms), "break", sensor);
}

void stats_keeper_sitting(struct stats_keeper *k, const char *sensor, int64_t from_ms,
			  int64_t to_ms)
{
	size_t i;
	struct span *sp;

	if (!sensor || strlen(sensor) >= STATS_SENSOR_LEN || to_ms <= from_ms) {
		note(k, STATS_EINVAL, "sitting span", sensor);
		return;
	}
	for (i = 0; i < k->n_spans; i++)
		if (!strcmp(k->spans[i].sensor, sensor))
			break;
	if (i < k->n_spans && k->spans[i].to != from_ms)
		flush_span(k, i);   /* not contiguous: the old one goes in */
	else if (i < k->n_spans) {
		sp = &k->spans[i];
		sp->to = to_ms;
		if (sp->to - sp->from >= STATS_KEEPER_SITTING_FLUSH_MS)
			flush_span(k, i);
		return;
	}
	if (k->n_spans == STATS_MAX_SENSORS)
		flush_span(k, 0);
	sp = &k->spans[k->n_spans++];
	snprintf(sp->sensor, sizeof(sp->sensor), "%s", sensor);
	sp->from = from_ms;
	sp->to = to_ms;
}

double stats_keeper_baseline(struct stats_keeper *k, const char *sensor, int64_t now_ms)
{
	return stats_baseline(k->st, sensor, now_ms);
}

json_t *stats_keeper_json(struct stats_keeper *k, int64_t now_ms, const char *sensor_or_NULL)
{
	flush_spans(k);
	return stats_json(k->st, now_ms, sensor_or_NULL);
}

char *stats_keeper_days_text(struct stats_keeper *k)
{
	flush_spans(k);
	return stats_save(k->st);
}
