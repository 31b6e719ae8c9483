/*
 * alert_center.c - the alert engine wired to the clock, the loop, the hook
 * and the event store (see alert_center.h).
 */
#include "alert_center.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"

#define ACTIVE_MAX 64

struct alert_center {
	struct alerts *engine;
	struct store *store;
	struct loop *loop;
	struct loop_timer deadline;
	struct alert_hook *hook;
	struct alert active[ACTIVE_MAX];   /* the last snapshot given to hello */
	uint64_t raised[ALERT_RULE_COUNT];  /* since start, for /metrics */
	struct log_ratelimit rl;
};

static struct alert_clock now(void)
{
	struct alert_clock c = { clock_mono_ms(), clock_epoch_ms() };

	return c;
}

static void emit(const struct alert_transition *t, void *user)
{
	struct alert_center *ac = user;
	const struct alert *a = t->alert;
	struct feed_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = FEED_EV_ALERT;
	ev.ts_ms = t->state == ALERT_RAISED ? a->raised_ts :
		   t->state == ALERT_ACKNOWLEDGED ? a->acked_ts : a->cleared_ts;
	snprintf(ev.sensor, sizeof(ev.sensor), "%s", a->sensor);
	ev.alert.id = a->id;
	ev.alert.rule = alert_rule_name(a->rule);
	ev.alert.severity = alert_severity_name(a->severity);
	ev.alert.state = alert_state_name(t->state);
	ev.alert.message = a->message;
	ev.alert.raised_ts = a->raised_ts;
	store_add_event(ac->store, &ev);
	log_info("alert %llu %s %s%s%s: %s", (unsigned long long)a->id, alert_rule_name(a->rule),
		 alert_state_name(t->state), a->sensor[0] ? " for " : "", a->sensor, a->message);
	if (t->state == ALERT_RAISED && (unsigned)a->rule < ALERT_RULE_COUNT)
		ac->raised[a->rule]++;
	if (t->state == ALERT_RAISED && ac->hook)
		alert_hook_run(ac->hook, a);
}

/* After every engine call: one timer for the engine's next deadline. */
static void rearm(struct alert_center *ac)
{
	int64_t d;

	if (!ac->loop)
		return;
	d = alerts_next_deadline(ac->engine);
	if (d == ALERTS_NO_DEADLINE)
		loop_timer_cancel(&ac->deadline);
	else
		loop_timer_start(&ac->deadline, d - clock_mono_ms());
}

static void deadline_fire(struct loop_timer *t)
{
	struct alert_center *ac = t->user;

	alerts_tick(ac->engine, now());
	rearm(ac);
}

struct alert_center *alert_center_new(struct store *store, const struct alerts_config *cfg)
{
	struct alert_center *ac = calloc(1, sizeof(*ac));

	if (!ac)
		return NULL;
	ac->store = store;
	ac->engine = alerts_new(cfg, emit, ac);
	if (!ac->engine) {
		free(ac);
		return NULL;
	}
	return ac;
}

void alert_center_attach(struct alert_center *ac, struct loop *loop,
			 const struct alert_hook_config *hook)
{
	ac->loop = loop;
	loop_timer_init(&ac->deadline, loop, deadline_fire, ac);
	if (hook && hook->argv && !(ac->hook = alert_hook_new(loop, hook)))
		log_warn("alerts: cannot set up the alert hook; alerts still reach the feed");
	rearm(ac);
}

void alert_center_free(struct alert_center *ac)
{
	if (!ac)
		return;
	if (ac->loop)
		loop_timer_cancel(&ac->deadline);
	alert_hook_free(ac->hook);
	alerts_free(ac->engine);
	free(ac);
}

void alert_center_reconfigure(struct alert_center *ac, const struct alerts_config *cfg,
			      const struct alert_hook_config *hook)
{
	alerts_reconfigure(ac->engine, cfg, now());
	if (ac->loop) {
		if (hook && hook->argv) {
			if (ac->hook)
				alert_hook_reconfigure(ac->hook, hook);
			else
				ac->hook = alert_hook_new(ac->loop, hook);
		} else if (ac->hook) {
			/* no hook any more: running ones finish under the old settings' free */
			alert_hook_free(ac->hook);
			ac->hook = NULL;
		}
	}
	rearm(ac);
}

void alert_center_slouch(struct alert_center *ac, const char *sensor, bool slouching,
			 int64_t since_mono)
{
	alerts_slouch(ac->engine, now(), sensor, slouching, since_mono);
	rearm(ac);
}

void alert_center_break_due(struct alert_center *ac, const char *sensor, bool due,
			    int64_t sitting_ms)
{
	alerts_break_due(ac->engine, now(), sensor, due, sitting_ms);
	rearm(ac);
}

void alert_center_crack(struct alert_center *ac, const char *sensor, double baseline_per_hour)
{
	struct alert_clock t = now();

	alerts_crack_baseline(ac->engine, t, sensor, baseline_per_hour);
	alerts_crack(ac->engine, t, sensor);
	rearm(ac);
}

void alert_center_pattern(struct alert_center *ac, const char *sensor, enum alert_rule rule)
{
	alerts_pattern(ac->engine, now(), sensor, rule);
	rearm(ac);
}

void alert_center_streaming(struct alert_center *ac, const char *sensor, bool streaming)
{
	alerts_sensor_streaming(ac->engine, now(), sensor, streaming);
	rearm(ac);
}

void alert_center_battery(struct alert_center *ac, const char *sensor, int percent)
{
	if (percent < 0)
		return;
	alerts_battery(ac->engine, now(), sensor, percent);
	rearm(ac);
}

bool alert_center_ack(struct alert_center *ac, uint64_t id, const char **result,
		      const char **code, const char **message)
{
	enum alerts_ack_result r = alerts_ack(ac->engine, now(), id);

	rearm(ac);
	switch (r) {
	case ALERTS_ACK_OK:
	case ALERTS_ACK_ALREADY:
		*result = alerts_ack_result_name(r);
		return true;
	case ALERTS_ACK_CLEARED:
		*code = "alert-cleared";
		*message = "that alert has already cleared";
		return false;
	default:
		*code = "unknown-alert";
		*message = "no alert with that id";
		return false;
	}
}

size_t alert_center_active(struct alert_center *ac, struct feed_alert_info *out, size_t max)
{
	size_t n = alerts_list_active(ac->engine, ac->active, max < ACTIVE_MAX ? max : ACTIVE_MAX), i;

	for (i = 0; i < n; i++) {
		const struct alert *a = &ac->active[i];

		out[i].id = a->id;
		out[i].rule = alert_rule_name(a->rule);
		out[i].sensor = a->sensor;
		out[i].severity = alert_severity_name(a->severity);
		out[i].state = alert_state_name(a->state);
		out[i].message = a->message;
		out[i].raised_ts = a->raised_ts;
	}
	return n;
}

uint64_t alert_center_raised(const struct alert_center *ac, enum alert_rule rule)
{
	return (unsigned)rule < ALERT_RULE_COUNT ? ac->raised[rule] : 0;
}
