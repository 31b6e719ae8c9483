/*
 * alerts.c - the alert engine (see alerts.h): per sensor, one slot per rule
 * holding the rule's condition inputs, its active alert and its cooldown.
 * Owns the rule logic and the message wording; no I/O.
 *
 * Every change goes through eval_slot(): it computes the rule's condition at
 * a time (latching the ones with hysteresis), then raises, clears or leaves
 * the slot's alert. slot_deadline() is its mirror: the earliest time at
 * which eval_slot() would do something without a new input.
 */
#include "alerts.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIN_MS (60 * 1000LL)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)

struct slot {
	uint64_t active_id;        /* 0: no active alert */
	bool cooling;
	int64_t cooldown_until;    /* mono ms, while cooling */
	bool latched;              /* crack-rate, battery-low: hysteresis state */
	bool cond;                 /* the condition at the last evaluation */
	int64_t evaluated_at;      /* mono ms of the last evaluation */
};

struct sensor {
	char addr[ALERT_SENSOR_LEN];
	struct slot slot[ALERT_RULE_COUNT];
	/* slouch-long */
	bool slouching;
	int64_t slouch_since;
	/* no-break */
	bool break_due;
	int64_t sitting_ms;
	/* crack-rate: the newest cracks' mono stamps, a ring of crack_cap */
	double baseline;
	int64_t *cracks;
	unsigned crack_cap, crack_n, crack_head;  /* head: next write */
	/* grinding, self-manipulation */
	bool pattern_seen[2];
	int64_t pattern_last[2];
	/* sensor-lost */
	bool lost;
	int64_t lost_since;
	/* battery-low */
	int battery;
	struct sensor *next;
};

struct alerts {
	struct alerts_config cfg;
	alerts_emit_fn emit;
	void *user;
	uint64_t next_id;
	struct sensor *sensors;            /* in order of first mention */
	struct alert *active;              /* ordered by id */
	size_t n_active, cap_active;
};

/* ---- names -------------------------------------------------------------- */

static const char *const rule_names[ALERT_RULE_COUNT] = {
	[ALERT_SLOUCH_LONG] = "slouch-long",
	[ALERT_NO_BREAK] = "no-break",
	[ALERT_CRACK_RATE] = "crack-rate",
	[ALERT_GRINDING] = "grinding",
	[ALERT_SELF_MANIPULATION] = "self-manipulation",
	[ALERT_SENSOR_LOST] = "sensor-lost",
	[ALERT_BATTERY_LOW] = "battery-low",
};

const char *alert_rule_name(enum alert_rule r)
{
	return (unsigned)r < ALERT_RULE_COUNT ? rule_names[r] : NULL;
}

int alert_rule_from_name(const char *name)
{
	int i;

	for (i = 0; name && i < ALERT_RULE_COUNT; i++)
		if (!strcmp(rule_names[i], name))
			return i;
	return -1;
}

const char *alert_severity_name(enum alert_severity s)
{
	return s == ALERT_WARNING ? "warning" : "info";
}

const char *alert_state_name(enum alert_state s)
{
	switch (s) {
	case ALERT_RAISED: return "raised";
	case ALERT_ACKNOWLEDGED: return "acknowledged";
	default: return "cleared";
	}
}

const char *alerts_ack_result_name(enum alerts_ack_result r)
{
	switch (r) {
	case ALERTS_ACK_OK: return "ok";
	case ALERTS_ACK_ALREADY: return "already-acknowledged";
	case ALERTS_ACK_CLEARED: return "cleared";
	default: return "unknown";
	}
}

/* ---- configuration ------------------------------------------------------ */

void alerts_config_default(struct alerts_config *c)
{
	int i;

	memset(c, 0, sizeof(*c));
	for (i = 0; i < ALERT_RULE_COUNT; i++) {
		c->enabled[i] = true;
		c->cooldown_ms[i] = 15 * MIN_MS;
	}
	c->slouch_long_ms = 20 * MIN_MS;
	c->sensor_lost_ms = 60 * 1000;
	c->battery_low_pct = 15;
	c->battery_clear_pct = 20;
	c->crack_floor = 6;
	c->crack_factor = 3.0;
	c->crack_cap = 20;
	c->pattern_hold_ms = 10 * MIN_MS;
}

const char *alerts_config_check(const struct alerts_config *c)
{
	static const char *const cooldown_msg[ALERT_RULE_COUNT] = {
		[ALERT_SLOUCH_LONG] = "cooldown_ms[slouch-long]: must be 0 to 24 hours",
		[ALERT_NO_BREAK] = "cooldown_ms[no-break]: must be 0 to 24 hours",
		[ALERT_CRACK_RATE] = "cooldown_ms[crack-rate]: must be 0 to 24 hours",
		[ALERT_GRINDING] = "cooldown_ms[grinding]: must be 0 to 24 hours",
		[ALERT_SELF_MANIPULATION] = "cooldown_ms[self-manipulation]: must be 0 to 24 hours",
		[ALERT_SENSOR_LOST] = "cooldown_ms[sensor-lost]: must be 0 to 24 hours",
		[ALERT_BATTERY_LOW] = "cooldown_ms[battery-low]: must be 0 to 24 hours",
	};
	int i;

	if (!c)
		return "alerts: no configuration";
	for (i = 0; i < ALERT_RULE_COUNT; i++)
		if (c->cooldown_ms[i] < 0 || c->cooldown_ms[i] > DAY_MS)
			return cooldown_msg[i];
	if (c->slouch_long_ms < 3000 || c->slouch_long_ms > 8 * HOUR_MS)
		return "slouch_long_ms: must be 3 seconds to 8 hours";
	if (c->sensor_lost_ms < 1000 || c->sensor_lost_ms > DAY_MS)
		return "sensor_lost_ms: must be 1 second to 24 hours";
	if (c->battery_low_pct < 1 || c->battery_low_pct > 99)
		return "battery_low_pct: must be 1 to 99";
	if (c->battery_clear_pct <= c->battery_low_pct || c->battery_clear_pct > 100)
		return "battery_clear_pct: must be above battery_low_pct and at most 100";
	if (c->crack_cap < 1 || c->crack_cap > ALERTS_CRACK_CAP_MAX)
		return "crack_cap: must be 1 to 1000 cracks per hour";
	if (c->crack_floor < 1 || c->crack_floor > c->crack_cap)
		return "crack_floor: must be 1 to crack_cap cracks per hour";
	if (!isfinite(c->crack_factor) || c->crack_factor < 1.0 || c->crack_factor > 100.0)
		return "crack_factor: must be 1 to 100";
	if (c->pattern_hold_ms < 1000 || c->pattern_hold_ms > DAY_MS)
		return "pattern_hold_ms: must be 1 second to 24 hours";
	return NULL;
}

/* ---- helpers -------------------------------------------------------------- */

/* "45 seconds", "1 minute", "25 minutes", "2 hours", "over 2 hours" */
static void fmt_duration(char *buf, size_t cap, int64_t ms)
{
	long long s = ms > 0 ? ms / 1000 : 0, m = s / 60, h = m / 60;

	if (s < 60)
		snprintf(buf, cap, "%lld second%s", s, s == 1 ? "" : "s");
	else if (m < 120)
		snprintf(buf, cap, "%lld minute%s", m, m == 1 ? "" : "s");
	else
		snprintf(buf, cap, "%s%lld hours", m % 60 ? "over " : "", h);
}

static unsigned crack_threshold(const struct alerts *e, const struct sensor *s)
{
	double t;

	if (s->baseline < 0)
		return e->cfg.crack_cap;
	t = ceil(e->cfg.crack_factor * s->baseline);
	if (t < e->cfg.crack_floor)
		t = e->cfg.crack_floor;
	return t < e->cfg.crack_cap ? (unsigned)t : e->cfg.crack_cap;
}

/* the i-th newest crack stamp, i < crack_n */
static int64_t crack_newest(const struct sensor *s, unsigned i)
{
	return s->cracks[(s->crack_head + s->crack_cap - 1 - i) % s->crack_cap];
}

/* drop cracks that left the hour: window is (now - 1 h, now] */
static void crack_prune(struct sensor *s, int64_t now)
{
	while (s->crack_n && crack_newest(s, s->crack_n - 1) <= now - ALERTS_CRACK_WINDOW_MS)
		s->crack_n--;
}

static int crack_resize(struct sensor *s, unsigned cap)
{
	int64_t *r = malloc(sizeof(*r) * cap);
	unsigned n = s->crack_n < cap ? s->crack_n : cap, i;

	if (!r)
		return -1;
	for (i = 0; i < n; i++)   /* oldest kept first */
		r[i] = crack_newest(s, n - 1 - i);
	free(s->cracks);
	s->cracks = r;
	s->crack_cap = cap;
	s->crack_n = n;
	s->crack_head = n % cap;
	return 0;
}

static int pattern_index(enum alert_rule r)
{
	return r == ALERT_GRINDING ? 0 : 1;
}

/* ---- active alerts ------------------------------------------------------- */

static struct alert *active_find(const struct alerts *e, uint64_t id)
{
	size_t lo = 0, hi = e->n_active;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (e->active[mid].id == id)
			return &e->active[mid];
		if (e->active[mid].id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void emit(struct alerts *e, const struct alert *a)
{
	struct alert_transition t = { a, a->state };

	if (e->emit)
		e->emit(&t, e->user);
}

/* ---- conditions -------------------------------------------------------- */

/* The rule's condition at now, updating the latched ones. */
static bool condition(struct alerts *e, struct sensor *s, enum alert_rule r, int64_t now)
{
	const struct alerts_config *c = &e->cfg;
	struct slot *sl = &s->slot[r];
	unsigned t;

	switch (r) {
	case ALERT_SLOUCH_LONG:
		return s->slouching && now - s->slouch_since >= c->slouch_long_ms;
	case ALERT_NO_BREAK:
		return s->break_due;
	case ALERT_CRACK_RATE:
		crack_prune(s, now);
		t = crack_threshold(e, s);
		if (!sl->latched && s->crack_n >= t)
			sl->latched = true;
		else if (sl->latched && s->crack_n <= t / 2)
			sl->latched = false;
		return sl->latched;
	case ALERT_GRINDING:
	case ALERT_SELF_MANIPULATION:
		return s->pattern_seen[pattern_index(r)] &&
		       now < s->pattern_last[pattern_index(r)] + c->pattern_hold_ms;
	case ALERT_SENSOR_LOST:
		return s->lost && now - s->lost_since >= c->sensor_lost_ms;
	case ALERT_BATTERY_LOW:
		return sl->latched;
	default:
		return false;
	}
}

/* When the condition would change with no new input, or ALERTS_NO_DEADLINE
 * (state as left by condition()). */
static int64_t condition_flip(const struct alerts *e, const struct sensor *s, enum alert_rule r)
{
	const struct alerts_config *c = &e->cfg;
	unsigned k;

	switch (r) {
	case ALERT_SLOUCH_LONG:
		return s->slouching ? s->slouch_since + c->slouch_long_ms : ALERTS_NO_DEADLINE;
	case ALERT_CRACK_RATE:
		/* latched: clears once only t/2 remain, i.e. when the (t/2+1)-th
		 * newest leaves the hour */
		k = crack_threshold(e, s) / 2;
		if (!s->slot[r].latched || s->crack_n <= k)
			return ALERTS_NO_DEADLINE;
		return crack_newest(s, k) + ALERTS_CRACK_WINDOW_MS;
	case ALERT_GRINDING:
	case ALERT_SELF_MANIPULATION:
		return s->pattern_seen[pattern_index(r)] ?
		       s->pattern_last[pattern_index(r)] + c->pattern_hold_ms : ALERTS_NO_DEADLINE;
	case ALERT_SENSOR_LOST:
		return s->lost ? s->lost_since + c->sensor_lost_ms : ALERTS_NO_DEADLINE;
	default:
		return ALERTS_NO_DEADLINE;
	}
}

/* ---- messages ------------------------------------------------------------ */

static enum alert_severity compose(const struct alerts *e, const struct sensor *s,
				   enum alert_rule r, int64_t now, char *msg, size_t cap)
{
	char dur[32];
	const char *who = s->addr[0] ? s->addr : "";

	switch (r) {
	case ALERT_SLOUCH_LONG:
		fmt_duration(dur, sizeof(dur), now - s->slouch_since);
		snprintf(msg, cap, "You've been leaning forward for %s. A good moment to sit up "
			 "tall, or to stand and stretch for a minute.", dur);
		return ALERT_INFO;
	case ALERT_NO_BREAK:
		if (s->sitting_ms > 0) {
			fmt_duration(dur, sizeof(dur), s->sitting_ms);
			snprintf(msg, cap, "You've been sitting for %s without a break. Standing "
				 "up and moving around for a minute or two does your back good.", dur);
		} else {
			snprintf(msg, cap, "Time for a short break: standing up and moving around "
				 "for a minute or two does your back good.");
		}
		return ALERT_INFO;
	case ALERT_CRACK_RATE:
		if (s->crack_n >= e->cfg.crack_cap) {
			snprintf(msg, cap, "Your back has cracked %u times in the last hour, which "
				 "is a lot. Some gentle movement may help. If it comes with pain or "
				 "stiffness, consider talking to a physiotherapist or doctor.",
				 s->crack_n);
			return ALERT_WARNING;
		}
		snprintf(msg, cap, "Your back has cracked %u times in the last hour, more than "
			 "usual for you at this time of day. Changing position or some gentle "
			 "movement may help.", s->crack_n);
		return ALERT_INFO;
	case ALERT_GRINDING:
		snprintf(msg, cap, "Grinding sounds keep coming back as you move. If they come "
			 "with pain, stiffness or swelling, it's worth talking to a "
			 "physiotherapist or doctor.");
		return ALERT_WARNING;
	case ALERT_SELF_MANIPULATION:
		snprintf(msg, cap, "Several cracks in quick succession, as when a back is "
			 "cracked on purpose. Try letting it be for a while: gentle stretching "
			 "or a short walk is kinder to your joints. If stiffness keeps prompting "
			 "it, a physiotherapist can help.");
		return ALERT_INFO;
	case ALERT_SENSOR_LOST:
		fmt_duration(dur, sizeof(dur), now - s->lost_since);
		snprintf(msg, cap, "Sensor %s%shasn't sent data for %s. It may be out of range, "
			 "switched off or out of charge; tracking resumes when it's back.",
			 who, who[0] ? " " : "", dur);
		return ALERT_WARNING;
	case ALERT_BATTERY_LOW:
		snprintf(msg, cap, "The battery of sensor %s%sis at %d%%. Charging it soon keeps "
			 "tracking going.", who, who[0] ? " " : "", s->battery);
		return ALERT_INFO;
	default:
		msg[0] = '\0';
		return ALERT_INFO;
	}
}

/* ---- lifecycle ---------------------------------------------------------- */

static void raise_alert(struct alerts *e, struct sensor *s, enum alert_rule r,
			struct alert_clock now)
{
	struct alert *a;

	if (e->n_active == e->cap_active) {
		size_t n = e->cap_active ? e->cap_active * 2 : 8;
		struct alert *p = realloc(e->active, n * sizeof(*p));

		if (!p)
			return;   /* retried at the next evaluation */
		e->active = p;
		e->cap_active = n;
	}
	a = &e->active[e->n_active++];
	memset(a, 0, sizeof(*a));
	a->id = e->next_id++;
	a->rule = r;
	memcpy(a->sensor, s->addr, sizeof(a->sensor));
	a->state = ALERT_RAISED;
	a->severity = compose(e, s, r, now.mono_ms, a->message, sizeof(a->message));
	a->raised_ts = now.epoch_ms;
	s->slot[r].active_id = a->id;
	emit(e, a);
}

static void clear_alert(struct alerts *e, struct sensor *s, enum alert_rule r,
			struct alert_clock now)
{
	struct slot *sl = &s->slot[r];
	struct alert *a = active_find(e, sl->active_id);

	sl->active_id = 0;
	sl->cooling = true;
	sl->cooldown_until = now.mono_ms + e->cfg.cooldown_ms[r];
	if (!a)
		return;
	a->state = ALERT_CLEARED;
	a->cleared_ts = now.epoch_ms;
	emit(e, a);
	memmove(a, a + 1, (size_t)(e->active + e->n_active - (a + 1)) * sizeof(*a));
	e->n_active--;
}

static void eval_slot(struct alerts *e, struct sensor *s, enum alert_rule r,
		      struct alert_clock now)
{
	struct slot *sl = &s->slot[r];
	bool cond = condition(e, s, r, now.mono_ms) && e->cfg.enabled[r];

	sl->cond = cond;
	sl->evaluated_at = now.mono_ms;
	if (sl->cooling && now.mono_ms >= sl->cooldown_until)
		sl->cooling = false;
	if (sl->active_id) {
		if (!cond)
			clear_alert(e, s, r, now);
	} else if (cond && !sl->cooling) {
		raise_alert(e, s, r, now);
	}
}

/* The earliest time after the slot's last evaluation at which evaluating
 * it again would change something: the condition flipping (clearing an
 * active alert, raising an idle one), or the cooldown ending while the
 * condition holds. */
static int64_t slot_deadline(const struct alerts *e, const struct sensor *s, enum alert_rule r)
{
	const struct slot *sl = &s->slot[r];
	int64_t d;

	if (!e->cfg.enabled[r])
		return ALERTS_NO_DEADLINE;
	d = condition_flip(e, s, r);
	if (d <= sl->evaluated_at)
		d = ALERTS_NO_DEADLINE;   /* already taken into account */
	if (!sl->active_id && sl->cooling && sl->cond && sl->cooldown_until < d)
		d = sl->cooldown_until;
	return d;
}

/* ---- engine --------------------------------------------------------------- */

struct alerts *alerts_new(const struct alerts_config *cfg, alerts_emit_fn fn, void *user)
{
	struct alerts *e;

	if (alerts_config_check(cfg))
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->cfg = *cfg;
	e->emit = fn;
	e->user = user;
	e->next_id = 1;
	return e;
}

static void sensor_free(struct sensor *s)
{
	free(s->cracks);
	free(s);
}

void alerts_free(struct alerts *e)
{
	struct sensor *s, *n;

	if (!e)
		return;
	for (s = e->sensors; s; s = n) {
		n = s->next;
		sensor_free(s);
	}
	free(e->active);
	free(e);
}

static bool addr_ok(const char *sensor)
{
	return sensor && strlen(sensor) < ALERT_SENSOR_LEN;
}

static struct sensor *sensor_lookup(const struct alerts *e, const char *addr)
{
	struct sensor *s;

	for (s = e->sensors; s; s = s->next)
		if (!strcmp(s->addr, addr))
			return s;
	return NULL;
}

static struct sensor *sensor_get(struct alerts *e, const char *addr)
{
	struct sensor *s, **pp;
	int r;

	if (!addr_ok(addr))
		return NULL;
	s = sensor_lookup(e, addr);
	if (s)
		return s;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	strcpy(s->addr, addr);
	s->baseline = ALERTS_NO_BASELINE;
	s->battery = -1;
	for (r = 0; r < ALERT_RULE_COUNT; r++)
		s->slot[r].evaluated_at = INT64_MIN;
	if (crack_resize(s, e->cfg.crack_cap)) {
		free(s);
		return NULL;
	}
	for (pp = &e->sensors; *pp; pp = &(*pp)->next)
		;
	*pp = s;
	return s;
}

int alerts_reconfigure(struct alerts *e, const struct alerts_config *cfg, struct alert_clock now)
{
	struct sensor *s;

	if (alerts_config_check(cfg))
		return -1;
	for (s = e->sensors; s; s = s->next)
		if (s->crack_cap != cfg->crack_cap && crack_resize(s, cfg->crack_cap))
			return -1;
	e->cfg = *cfg;
	alerts_tick(e, now);
	return 0;
}

int alerts_slouch(struct alerts *e, struct alert_clock now, const char *sensor,
		  bool slouching, int64_t since_mono_ms)
{
	struct sensor *s = sensor_get(e, sensor);

	if (!s)
		return -1;
	if (slouching && !s->slouching)
		s->slouch_since = since_mono_ms;
	s->slouching = slouching;
	eval_slot(e, s, ALERT_SLOUCH_LONG, now);
	return 0;
}

int alerts_break_due(struct alerts *e, struct alert_clock now, const char *sensor,
		     bool due, int64_t sitting_ms)
{
	struct sensor *s = sensor_get(e, sensor);

	if (!s)
		return -1;
	s->break_due = due;
	s->sitting_ms = sitting_ms;
	eval_slot(e, s, ALERT_NO_BREAK, now);
	return 0;
}

int alerts_crack_baseline(struct alerts *e, struct alert_clock now, const char *sensor,
			  double per_hour)
{
	struct sensor *s = sensor_get(e, sensor);

	if (!s)
		return -1;
	s->baseline = per_hour >= 0 && isfinite(per_hour) ? per_hour : ALERTS_NO_BASELINE;
	eval_slot(e, s, ALERT_CRACK_RATE, now);
	return 0;
}

int alerts_crack(struct alerts *e, struct alert_clock now, const char *sensor)
{
	struct sensor *s = sensor_get(e, sensor);

	if (!s)
		return -1;
	s->cracks[s->crack_head] = now.mono_ms;
	s->crack_head = (s->crack_head + 1) % s->crack_cap;
	if (s->crack_n < s->crack_cap)
		s->crack_n++;
	eval_slot(e, s, ALERT_CRACK_RATE, now);
	return 0;
}

int alerts_pattern(struct alerts *e, struct alert_clock now, const char *sensor,
		   enum alert_rule rule)
{
	struct sensor *s;

	if (rule != ALERT_GRINDING && rule != ALERT_SELF_MANIPULATION)
		return -1;
	s = sensor_get(e, sensor);
	if (!s)
		return -1;
	s->pattern_seen[pattern_index(rule)] = true;
	s->pattern_last[pattern_index(rule)] = now.mono_ms;
	eval_slot(e, s, rule, now);
	return 0;
}

int alerts_sensor_streaming(struct alerts *e, struct alert_clock now, const char *sensor,
			    bool streaming)
{
	struct sensor *s = sensor_get(e, sensor);

	if (!s)
		return -1;
	if (!streaming && !s->lost)
		s->lost_since = now.mono_ms;
	s->lost = !streaming;
	eval_slot(e, s, ALERT_SENSOR_LOST, now);
	return 0;
}

int alerts_battery(struct alerts *e, struct alert_clock now, const char *sensor, int percent)
{
	struct sensor *s = sensor_get(e, sensor);
	struct slot *sl;

	if (!s)
		return -1;
	if (percent < 0)
		return 0;
	if (percent > 100)
		percent = 100;
	s->battery = percent;
	sl = &s->slot[ALERT_BATTERY_LOW];
	if (percent < e->cfg.battery_low_pct)
		sl->latched = true;
	else if (percent > e->cfg.battery_clear_pct)
		sl->latched = false;
	eval_slot(e, s, ALERT_BATTERY_LOW, now);
	return 0;
}

int alerts_forget_sensor(struct alerts *e, struct alert_clock now, const char *sensor)
{
	struct sensor *s, **pp;
	int r;

	if (!addr_ok(sensor))
		return -1;
	for (pp = &e->sensors; *pp; pp = &(*pp)->next)
		if (!strcmp((*pp)->addr, sensor))
			break;
	s = *pp;
	if (!s)
		return -1;
	for (r = 0; r < ALERT_RULE_COUNT; r++)
		if (s->slot[r].active_id)
			clear_alert(e, s, (enum alert_rule)r, now);
	*pp = s->next;
	sensor_free(s);
	return 0;
}

void alerts_tick(struct alerts *e, struct alert_clock now)
{
	struct sensor *s;
	int r;

	for (s = e->sensors; s; s = s->next)
		for (r = 0; r < ALERT_RULE_COUNT; r++)
			eval_slot(e, s, (enum alert_rule)r, now);
}

int64_t alerts_next_deadline(const struct alerts *e)
{
	const struct sensor *s;
	int64_t d = ALERTS_NO_DEADLINE, t;
	int r;

	for (s = e->sensors; s; s = s->next)
		for (r = 0; r < ALERT_RULE_COUNT; r++) {
			t = slot_deadline(e, s, (enum alert_rule)r);
			if (t < d)
				d = t;
		}
	return d;
}

enum alerts_ack_result alerts_ack(struct alerts *e, struct alert_clock now, uint64_t id)
{
	struct alert *a;

	if (id == 0 || id >= e->next_id)
		return ALERTS_ACK_UNKNOWN;
	a = active_find(e, id);
	if (!a)
		return ALERTS_ACK_CLEARED;
	if (a->state == ALERT_ACKNOWLEDGED)
		return ALERTS_ACK_ALREADY;
	a->state = ALERT_ACKNOWLEDGED;
	a->acked_ts = now.epoch_ms;
	emit(e, a);
	return ALERTS_ACK_OK;
}

size_t alerts_list_active(const struct alerts *e, struct alert *out, size_t cap)
{
	size_t n = e->n_active < cap ? e->n_active : cap;

	if (n)
		memcpy(out, e->active, n * sizeof(*out));
	return e->n_active;
}

const struct alert *alerts_find(const struct alerts *e, uint64_t id)
{
	return active_find(e, id);
}
