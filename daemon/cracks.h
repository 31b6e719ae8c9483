/*
 * cracks.h - crack episodes and crack patterns for one sound sensor: merges
 * crack reports (from the sensor's own events or, later, host audio
 * detection) into episodes, and watches closed episodes for the
 * self-manipulation and repeated-grinding patterns. Pure logic: the caller
 * passes the clock (monotonic ms), arms a timer at cracks_next_deadline() and
 * drains the results with cracks_next().
 *
 * Episodes: a pop report opens an episode; later pop reports whose onset is
 * at most merge_ms after the opening report's onset merge into it (pops
 * summed, the highest intensity, from the earliest onset to the latest
 * onset + duration). It stays open until report_delay_ms after its window
 * (so a notification that arrives late still merges) and is emitted by the
 * first cracks_tick() or cracks_feed() with now > onset + merge_ms +
 * report_delay_ms. Clicks and grinds do not merge: each report is an episode
 * of its own; one whose onset falls inside an open pop episode's window is
 * held back and emitted right after that episode, so episodes come out in
 * onset order. A report whose onset is past the window closes the open
 * episode first.
 *
 * Patterns (each fires once per occurrence; onsets are episode starts):
 *  - self-manipulation: manip_count episodes of a kind in manip_kinds (pops
 *    and clicks by default; grinds never look like forcing a joint) within
 *    manip_window_ms of each other (last - first <= window). The occurrence
 *    lasts while such episodes keep coming at most manip_window_ms apart; only
 *    after a longer quiet can it fire again.
 *  - repeated grinding: grind_count grind episodes in one movement session:
 *    consecutive grinds at most grind_gap_ms apart, all of them within
 *    grind_session_ms. The occurrence lasts while grinds keep coming at most
 *    grind_gap_ms apart (the session goes on).
 * A pattern is reported right after the episode that completes it.
 */
#ifndef SW_CRACKS_H
#define SW_CRACKS_H

#include <stdbool.h>
#include <stdint.h>

#include "spine_profile.h"

#define CRACKS_KIND_BIT(kind) (1u << (unsigned)(kind))

struct cracks_config {
	int64_t merge_ms;          /* default 150 */
	int64_t report_delay_ms;   /* default 100 */
	unsigned manip_count;      /* default 3 */
	int64_t manip_window_ms;   /* default 60000 */
	unsigned manip_kinds;      /* default pop | click (CRACKS_KIND_BIT) */
	unsigned grind_count;      /* default 3 */
	int64_t grind_session_ms;  /* default 600000 (10 min) */
	int64_t grind_gap_ms;      /* default 120000 (2 min) */
};

#define CRACKS_DEFAULT_MERGE_MS 150
#define CRACKS_DEFAULT_REPORT_DELAY_MS 100
#define CRACKS_DEFAULT_MANIP_COUNT 3
#define CRACKS_DEFAULT_MANIP_WINDOW_MS 60000
#define CRACKS_DEFAULT_MANIP_KINDS \
	(CRACKS_KIND_BIT(SPINE_CRACK_POP) | CRACKS_KIND_BIT(SPINE_CRACK_CLICK))
#define CRACKS_DEFAULT_GRIND_COUNT 3
#define CRACKS_DEFAULT_GRIND_SESSION_MS (10 * 60 * 1000)
#define CRACKS_DEFAULT_GRIND_GAP_MS (2 * 60 * 1000)
/* the largest manip_count / grind_count */
#define CRACKS_PATTERN_MAX 32

void cracks_config_default(struct cracks_config *cfg);
/* NULL if valid, else a message naming the bad setting */
const char *cracks_config_check(const struct cracks_config *cfg);

/* One crack report. ts_ms is its onset on the caller's monotonic clock
 * (for a spine profile notification: now - age_ms). */
/* What the host heard of a crack in a microphone's audio (audio_cracks.h). */
struct cracks_heard {
	bool heard;             /* false: the sensor reported the crack itself */
	double dbfs;            /* its level */
	unsigned freq_hz;       /* its dominant frequency */
};

struct cracks_report {
	int64_t ts_ms;
	enum spine_crack_kind kind;
	unsigned intensity;     /* 0-100 */
	unsigned duration_ms;   /* at most 65535 */
	unsigned count;         /* pops in the report, >= 1 */
	struct cracks_heard heard;
};

struct cracks_episode {
	enum spine_crack_kind kind;
	int64_t start_ms, end_ms;   /* duration is end_ms - start_ms */
	unsigned intensity;         /* the highest */
	unsigned count;             /* pops (the reports' counts summed) */
	unsigned reports;           /* reports merged */
	struct cracks_heard heard;  /* the loudest heard report's, if any was heard */
};

enum cracks_event_type {
	CRACKS_EPISODE = 1,
	CRACKS_SELF_MANIPULATION,
	CRACKS_GRINDING,
};

struct cracks_event {
	enum cracks_event_type type;
	/* CRACKS_EPISODE: the closed episode; a pattern: the episode that
	 * completed it */
	struct cracks_episode episode;
	/* a pattern: how many episodes make it (manip_count or grind_count)
	 * and the onset of the first of them */
	unsigned episodes;
	int64_t first_ms;
};

#define CRACKS_PENDING_MAX 4
#define CRACKS_QUEUE_MAX 32
#define CRACKS_NO_DEADLINE INT64_MAX

struct cracks_pattern {
	int64_t onset[CRACKS_PATTERN_MAX + 1];  /* newest qualifying onsets, oldest first */
	unsigned n;
	bool active;                        /* fired; not lapsed yet */
	int64_t last_ms;                    /* newest qualifying onset */
};

struct cracks {
	struct cracks_config cfg;
	bool open;                          /* a pop episode is open */
	int64_t anchor_ms;                  /* onset of its opening report */
	struct cracks_episode cur;
	struct cracks_episode pending[CRACKS_PENDING_MAX];  /* held clicks/grinds */
	unsigned npending;
	struct cracks_event queue[CRACKS_QUEUE_MAX];
	unsigned qhead, qlen;
	struct cracks_pattern manip, grind;
	uint64_t episodes;                  /* episodes closed */
	uint64_t overflow;                  /* events lost: the queue was not drained */
};

/* cfg NULL means the defaults. */
void cracks_init(struct cracks *c, const struct cracks_config *cfg);

/*
 * Feeds one report received at now_ms (closing first an episode whose time
 * is up). Returns NULL, or why the report is refused (unknown kind,
 * intensity above 100, count 0, duration above 65535 ms, onset after
 * now_ms); a refused report changes nothing.
 */
const char *cracks_feed(struct cracks *c, int64_t now_ms, const struct cracks_report *r);

/* Closes the open episode if now_ms is past its time (see above). */
void cracks_tick(struct cracks *c, int64_t now_ms);

/* The first now_ms at which cracks_tick() closes the open episode, or
 * CRACKS_NO_DEADLINE if none is open. */
int64_t cracks_next_deadline(const struct cracks *c);

/* Closes the open episode at once (the sensor went away, shutdown). */
void cracks_flush(struct cracks *c);

/* Takes the oldest result (episodes, then the patterns each one completed,
 * in order); false when there is none. Drain after every feed, tick and
 * flush: at most CRACKS_QUEUE_MAX are held, later ones are counted in
 * overflow and lost. */
bool cracks_next(struct cracks *c, struct cracks_event *ev);

/* Whether a pattern's occurrence is still going on at now_ms (fired and no
 * quiet longer than its window or gap since the last qualifying episode);
 * type is CRACKS_SELF_MANIPULATION or CRACKS_GRINDING. */
bool cracks_pattern_active(const struct cracks *c, enum cracks_event_type type,
			   int64_t now_ms);

#endif
