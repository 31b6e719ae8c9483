/*
 * cracks.c - crack episodes (merging pop bursts) and the self-manipulation
 * and repeated-grinding patterns (see cracks.h). No I/O, no clock of its own.
 */
#include "cracks.h"

#include <string.h>

void cracks_config_default(struct cracks_config *cfg)
{
	cfg->merge_ms = CRACKS_DEFAULT_MERGE_MS;
	cfg->report_delay_ms = CRACKS_DEFAULT_REPORT_DELAY_MS;
	cfg->manip_count = CRACKS_DEFAULT_MANIP_COUNT;
	cfg->manip_window_ms = CRACKS_DEFAULT_MANIP_WINDOW_MS;
	cfg->manip_kinds = CRACKS_DEFAULT_MANIP_KINDS;
	cfg->grind_count = CRACKS_DEFAULT_GRIND_COUNT;
	cfg->grind_session_ms = CRACKS_DEFAULT_GRIND_SESSION_MS;
	cfg->grind_gap_ms = CRACKS_DEFAULT_GRIND_GAP_MS;
}

#define ALL_KINDS (CRACKS_KIND_BIT(SPINE_CRACK_POP) | CRACKS_KIND_BIT(SPINE_CRACK_CLICK) | \
		   CRACKS_KIND_BIT(SPINE_CRACK_GRIND))

const char *cracks_config_check(const struct cracks_config *cfg)
{
	if (!cfg)
		return "no crack configuration";
	if (cfg->merge_ms < 0 || cfg->merge_ms > 1000)
		return "crack merge window must be between 0 and 1000 ms";
	if (cfg->report_delay_ms < 0 || cfg->report_delay_ms > 2000)
		return "crack report delay must be between 0 and 2000 ms";
	if (cfg->manip_count < 2 || cfg->manip_count > CRACKS_PATTERN_MAX)
		return "self-manipulation count must be between 2 and 32 episodes";
	if (cfg->manip_window_ms < 1000 || cfg->manip_window_ms > 3600 * 1000)
		return "self-manipulation window must be between 1 second and 1 hour";
	if (cfg->manip_kinds == 0 || (cfg->manip_kinds & ~ALL_KINDS))
		return "self-manipulation kinds must be a non-empty set of pop, click and grind";
	if (cfg->grind_count < 2 || cfg->grind_count > CRACKS_PATTERN_MAX)
		return "grinding count must be between 2 and 32 episodes";
	if (cfg->grind_gap_ms < 1000 || cfg->grind_gap_ms > 3600 * 1000)
		return "grinding session gap must be between 1 second and 1 hour";
	if (cfg->grind_session_ms < cfg->grind_gap_ms || cfg->grind_session_ms > 24LL * 3600 * 1000)
		return "grinding session length must be at least the session gap and at most 24 hours";
	return NULL;
}

void cracks_init(struct cracks *c, const struct cracks_config *cfg)
{
	memset(c, 0, sizeof(*c));
	if (cfg)
		c->cfg = *cfg;
	else
		cracks_config_default(&c->cfg);
}

static struct cracks_event *push(struct cracks *c, enum cracks_event_type type,
				 const struct cracks_episode *e)
{
	struct cracks_event *ev;

	if (c->qlen == CRACKS_QUEUE_MAX) {
		c->overflow++;
		return NULL;
	}
	ev = &c->queue[(c->qhead + c->qlen++) % CRACKS_QUEUE_MAX];
	memset(ev, 0, sizeof(*ev));
	ev->type = type;
	ev->episode = *e;
	return ev;
}

bool cracks_next(struct cracks *c, struct cracks_event *ev)
{
	if (c->qlen == 0)
		return false;
	*ev = c->queue[c->qhead];
	c->qhead = (c->qhead + 1) % CRACKS_QUEUE_MAX;
	c->qlen--;
	return true;
}

/*
 * Adds a qualifying onset t to a pattern. Returns true when this completes
 * an occurrence: the newest `count` onsets span at most span_ms with no gap
 * above gap_ms, and the pattern was not active (an occurrence lapses once an
 * onset comes more than gap_ms after the newest one). *first_ms gets the
 * first of them.
 */
static bool pattern_add(struct cracks_pattern *p, int64_t t, unsigned count,
			int64_t span_ms, int64_t gap_ms, int64_t *first_ms)
{
	unsigned i;

	if (p->active && t > p->last_ms + gap_ms)
		p->active = false;
	if (p->n == 0 || t > p->last_ms)
		p->last_ms = t;
	/* sorted insert (n <= count <= CRACKS_PATTERN_MAX, one slot spare);
	 * the oldest falls out beyond count */
	for (i = p->n; i > 0 && p->onset[i - 1] > t; i--)
		p->onset[i] = p->onset[i - 1];
	p->onset[i] = t;
	p->n++;
	if (p->n > count) {
		memmove(p->onset, p->onset + (p->n - count), count * sizeof(p->onset[0]));
		p->n = count;
	}
	if (p->active || p->n < count)
		return false;
	if (p->onset[count - 1] - p->onset[0] > span_ms)
		return false;
	for (i = 1; i < count; i++)
		if (p->onset[i] - p->onset[i - 1] > gap_ms)
			return false;
	p->active = true;
	*first_ms = p->onset[0];
	return true;
}

static void episode_closed(struct cracks *c, const struct cracks_episode *e)
{
	const struct cracks_config *cfg = &c->cfg;
	struct cracks_event *ev;
	int64_t first;

	c->episodes++;
	push(c, CRACKS_EPISODE, e);
	if ((cfg->manip_kinds & CRACKS_KIND_BIT(e->kind)) &&
	    pattern_add(&c->manip, e->start_ms, cfg->manip_count, cfg->manip_window_ms,
			cfg->manip_window_ms, &first) &&
	    (ev = push(c, CRACKS_SELF_MANIPULATION, e))) {
		ev->episodes = cfg->manip_count;
		ev->first_ms = first;
	}
	if (e->kind == SPINE_CRACK_GRIND &&
	    pattern_add(&c->grind, e->start_ms, cfg->grind_count, cfg->grind_session_ms,
			cfg->grind_gap_ms, &first) &&
	    (ev = push(c, CRACKS_GRINDING, e))) {
		ev->episodes = cfg->grind_count;
		ev->first_ms = first;
	}
}

void cracks_flush(struct cracks *c)
{
	if (!c->open)
		return;
	c->open = false;
	episode_closed(c, &c->cur);
	for (unsigned i = 0; i < c->npending; i++)
		episode_closed(c, &c->pending[i]);
	c->npending = 0;
}

int64_t cracks_next_deadline(const struct cracks *c)
{
	if (!c->open)
		return CRACKS_NO_DEADLINE;
	return c->anchor_ms + c->cfg.merge_ms + c->cfg.report_delay_ms + 1;
}

void cracks_tick(struct cracks *c, int64_t now_ms)
{
	if (c->open && now_ms >= cracks_next_deadline(c))
		cracks_flush(c);
}

static void episode_from(struct cracks_episode *e, const struct cracks_report *r)
{
	e->kind = r->kind;
	e->start_ms = r->ts_ms;
	e->end_ms = r->ts_ms + r->duration_ms;
	e->intensity = r->intensity;
	e->count = r->count;
	e->reports = 1;
	e->heard = r->heard;
}

static void merge(struct cracks_episode *e, const struct cracks_report *r)
{
	if (r->ts_ms < e->start_ms)
		e->start_ms = r->ts_ms;
	if (r->ts_ms + (int64_t)r->duration_ms > e->end_ms)
		e->end_ms = r->ts_ms + r->duration_ms;
	if (r->intensity > e->intensity)
		e->intensity = r->intensity;
	if (r->heard.heard && (!e->heard.heard || r->heard.dbfs > e->heard.dbfs))
		e->heard = r->heard;
	e->count += r->count;
	e->reports++;
}

const char *cracks_feed(struct cracks *c, int64_t now_ms, const struct cracks_report *r)
{
	struct cracks_episode e;
	bool in_window;

	if (!r)
		return "no crack report";
	if (r->kind != SPINE_CRACK_POP && r->kind != SPINE_CRACK_CLICK &&
	    r->kind != SPINE_CRACK_GRIND)
		return "unknown crack kind";
	if (r->intensity > 100)
		return "crack intensity above 100";
	if (r->count == 0)
		return "crack count 0";
	if (r->duration_ms > 65535)
		return "crack duration above 65535 ms";
	if (r->ts_ms > now_ms)
		return "crack onset after now";

	cracks_tick(c, now_ms);
	/* within merge_ms of the opening pop, on either side: a report can arrive
	 * late with an onset before the one that opened the episode */
	in_window = c->open && r->ts_ms <= c->anchor_ms + c->cfg.merge_ms &&
		    r->ts_ms >= c->anchor_ms - c->cfg.merge_ms;
	if (r->kind == SPINE_CRACK_POP) {
		if (in_window) {
			merge(&c->cur, r);
			return NULL;
		}
		cracks_flush(c);
		episode_from(&c->cur, r);
		c->anchor_ms = r->ts_ms;
		c->open = true;
		return NULL;
	}
	episode_from(&e, r);
	if (in_window && c->npending < CRACKS_PENDING_MAX) {
		c->pending[c->npending++] = e;
		return NULL;
	}
	cracks_flush(c);
	episode_closed(c, &e);
	return NULL;
}

bool cracks_pattern_active(const struct cracks *c, enum cracks_event_type type,
			   int64_t now_ms)
{
	const struct cracks_pattern *p;
	int64_t gap;

	if (type == CRACKS_SELF_MANIPULATION) {
		p = &c->manip;
		gap = c->cfg.manip_window_ms;
	} else if (type == CRACKS_GRINDING) {
		p = &c->grind;
		gap = c->cfg.grind_gap_ms;
	} else {
		return false;
	}
	return p->active && now_ms <= p->last_ms + gap;
}
