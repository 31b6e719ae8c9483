/*
 * sensors.c - sensor registry: decode -> count -> detect -> store; state
 * changes become sequenced events, health (battery, RSSI, counters) becomes
 * unsequenced status updates, at most one per sensor per second.
 */
#include "sensors.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "spine_profile.h"
#include "thingy52.h"

struct sensor {
	char address[FEED_ADDRESS_LEN];
	char name[72];
	enum sw_profile profile;
	unsigned roles;
	const char *state;          /* feed state name */
	char reason[160];
	struct feed_health health;
	bool status_dirty;
	int64_t status_mono;        /* when the last status went out */
	bool have_seq[2];           /* 0: posture, 1: crack */
	uint16_t last_seq[2];
	struct detector det;
	int64_t last_posture_ms;
	bool last_calibrating, last_slouching;
	int64_t onset_mono, onset_epoch;
	struct log_ratelimit rl;
};

struct sensors {
	struct store *store;
	struct loop_timer status_timer;
	struct detector_config cfg;
	struct sensor *list[SENSORS_MAX];
	size_t n;
	struct log_ratelimit rl_full, rl_unknown;
};

static void cb_device_state(void *user, const struct bluez_device_info *info)
{
	sensors_device_state(user, info);
}

static void cb_device_health(void *user, const struct bluez_device_info *info)
{
	sensors_device_health(user, info);
}

static void cb_notification(void *user, const char *address, enum sw_char_role role,
			    const uint8_t *data, size_t len)
{
	sensors_notification(user, address, role, data, len);
}

const struct bluez_callbacks sensors_bluez_callbacks = {
	.device_state = cb_device_state,
	.device_health = cb_device_health,
	.notification = cb_notification,
};

static void status_fire(struct loop_timer *t);

void sensors_attach_loop(struct sensors *s, struct loop *loop)
{
	loop_timer_init(&s->status_timer, loop, status_fire, s);
}

void sensors_set_detector_config(struct sensors *s, const struct detector_config *cfg)
{
	size_t i;

	s->cfg = *cfg;
	for (i = 0; i < s->n; i++)
		s->list[i]->det.cfg = *cfg;
}

struct sensors *sensors_new(struct store *store, const struct detector_config *cfg)
{
	struct sensors *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->store = store;
	s->cfg = *cfg;
	return s;
}

void sensors_free(struct sensors *s)
{
	size_t i;

	if (!s)
		return;
	loop_timer_cancel(&s->status_timer);
	for (i = 0; i < s->n; i++)
		free(s->list[i]);
	free(s);
}

static struct sensor *lookup(struct sensors *s, const char *address)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->list[i]->address, address))
			return s->list[i];
	return NULL;
}

static struct sensor *add(struct sensors *s, const char *address)
{
	struct sensor *x;

	if (s->n >= SENSORS_MAX) {
		log_rl(&s->rl_full, LOG_WARNING, "more than %d sensors, ignoring %s",
		       SENSORS_MAX, address);
		return NULL;
	}
	x = calloc(1, sizeof(*x));
	if (!x)
		return NULL;
	snprintf(x->address, sizeof(x->address), "%s", address);
	x->state = "discovered";
	x->health.battery = FEED_NO_BATTERY;
	x->health.rssi = FEED_NO_RSSI;
	detector_init(&x->det, &s->cfg);
	s->list[s->n++] = x;
	return x;
}

static void event_init(struct feed_event *ev, const struct sensor *x, enum feed_event_kind kind,
		       int64_t ts)
{
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->ts_ms = ts;
	memcpy(ev->sensor, x->address, sizeof(ev->sensor));
}

static void emit_slouch_end(struct sensors *s, struct sensor *x, int64_t mono, const char *reason)
{
	struct feed_event ev;
	int64_t duration = mono - x->onset_mono;

	/* ts, onset_ts and duration_ms agree exactly: ts = onset_ts + duration_ms */
	event_init(&ev, x, FEED_EV_SLOUCH, x->onset_epoch + duration);
	ev.slouch.start = false;
	ev.slouch.angle = x->det.angle;
	ev.slouch.threshold_deg = s->cfg.threshold_deg;
	ev.slouch.onset_ts = x->onset_epoch;
	ev.slouch.duration_ms = duration;
	ev.slouch.reason = reason;
	store_add_event(s->store, &ev);
}

static void emit_status(struct sensors *s, struct sensor *x)
{
	struct feed_status st;

	x->status_dirty = false;
	x->status_mono = clock_mono_ms();
	st.ts_ms = clock_epoch_ms();
	st.sensor = x->address;
	st.state = x->state;
	st.health = x->health;
	store_add_status(s->store, &st);
}

/* Send pending status updates that are due; re-arm for the rest. */
static void status_flush(struct sensors *s)
{
	int64_t now = clock_mono_ms(), next = -1, due;
	size_t i;

	for (i = 0; i < s->n; i++) {
		struct sensor *x = s->list[i];

		if (!x->status_dirty)
			continue;
		due = x->status_mono + SENSORS_STATUS_INTERVAL_MS;
		if (!x->status_mono || due <= now)
			emit_status(s, x);
		else if (next < 0 || due < next)
			next = due;
	}
	if (next >= 0 && s->status_timer.loop && !s->status_timer.armed)
		loop_timer_start(&s->status_timer, next - now);
}

static void status_fire(struct loop_timer *t)
{
	status_flush(t->user);
}

/* Something in x's status changed: send it now, or within the second. */
static void status_changed(struct sensors *s, struct sensor *x)
{
	int64_t now = clock_mono_ms();

	x->status_dirty = true;
	if (!x->status_mono || now - x->status_mono >= SENSORS_STATUS_INTERVAL_MS)
		emit_status(s, x);
	else if (s->status_timer.loop && !s->status_timer.armed)
		loop_timer_start(&s->status_timer,
				 x->status_mono + SENSORS_STATUS_INTERVAL_MS - now);
}

static struct sensor *apply_info(struct sensors *s, const struct bluez_device_info *info)
{
	struct sensor *x = lookup(s, info->address);
	const char *notify = info->notify;

	if (!x && !(x = add(s, info->address)))
		return NULL;
	snprintf(x->name, sizeof(x->name), "%s", info->name);
	if (info->profile != SW_PROFILE_NONE)
		x->profile = info->profile;
	x->roles |= info->roles;
	x->health.battery = info->battery;
	x->health.rssi = info->rssi;
	/* string literals owned by the BlueZ client */
	x->health.notify = notify && !strcmp(notify, "acquire") ? "acquire" :
			   notify && !strcmp(notify, "start") ? "start" : NULL;
	x->health.period_ms = info->period_ms;
	return x;
}

void sensors_device_health(struct sensors *s, const struct bluez_device_info *info)
{
	struct sensor *x = apply_info(s, info);

	if (x)
		status_changed(s, x);
}

void sensors_device_state(struct sensors *s, const struct bluez_device_info *info)
{
	struct sensor *x = apply_info(s, info);
	const char *state = bluez_state_name(info->state);
	struct feed_event ev;

	if (!x)
		return;
	if (x->state == state && !strcmp(x->reason, info->reason ? info->reason : ""))
		return;
	x->state = state;
	snprintf(x->reason, sizeof(x->reason), "%s", info->reason ? info->reason : "");
	if (info->state != BLUEZ_DEV_STREAMING)
		x->have_seq[0] = x->have_seq[1] = false;  /* counters restart per connection */
	if ((info->state == BLUEZ_DEV_LOST || info->state == BLUEZ_DEV_GONE) &&
	    detector_lost(&x->det, clock_mono_ms()) == DETECTOR_SLOUCH_END)
		emit_slouch_end(s, x, clock_mono_ms(), "sensor-lost");
	event_init(&ev, x, FEED_EV_SENSOR, clock_epoch_ms());
	ev.dev.state = state;
	ev.dev.reason = x->reason;
	ev.dev.name = x->name;
	ev.dev.profile = sw_profile_name(x->profile);
	store_add_event(s->store, &ev);
	status_changed(s, x);
}

/*
 * Count lost notifications. Returns NULL to accept this one, or why it is
 * dropped: it repeats the previous seq (a duplicate, e.g. a cached value
 * re-sent after someone's ReadValue), or the counter went backwards by less
 * than SENSORS_SEQ_BACKWARDS (a stale or replayed notification). A larger
 * jump back is taken as the sensor restarting its counter.
 */
static const char *count_seq(struct sensor *x, int idx, uint16_t seq)
{
	uint16_t back;

	if (x->have_seq[idx]) {
		if (x->last_seq[idx] == seq)
			return "duplicate";
		back = (uint16_t)(x->last_seq[idx] - seq);
		if (back < SENSORS_SEQ_BACKWARDS)
			return "counter went backwards";
		x->health.lost += spine_seq_lost(x->last_seq[idx], seq);
	}
	x->have_seq[idx] = true;
	x->last_seq[idx] = seq;
	return NULL;
}

static void posture_sample(struct sensors *s, struct sensor *x, const struct spine_posture *p)
{
	int64_t mono = clock_mono_ms(), now = clock_epoch_ms();
	enum detector_output out = detector_feed(&x->det, mono, p->x, p->y, p->z);
	struct feed_posture live;
	bool calibrating, slouching;

	if (out == DETECTOR_DROPPED) {
		/* a gravity vector too short to point anywhere (free fall, a zero
		 * payload): nothing a worn sensor can report */
		x->health.rejected++;
		log_rl(&x->rl, LOG_WARNING, "sensor %s: rejected an impossible gravity vector "
		       "(%d, %d, %d) mg", x->address, p->x, p->y, p->z);
		return;
	}
	if (out == DETECTOR_SLOUCH_START) {
		struct feed_event ev;

		x->onset_mono = x->det.onset_ms;
		x->onset_epoch = now - (mono - x->det.onset_ms);
		event_init(&ev, x, FEED_EV_SLOUCH, now);
		ev.slouch.start = true;
		ev.slouch.angle = x->det.angle;
		ev.slouch.threshold_deg = s->cfg.threshold_deg;
		ev.slouch.onset_ts = x->onset_epoch;
		store_add_event(s->store, &ev);
	} else if (out == DETECTOR_SLOUCH_END) {
		emit_slouch_end(s, x, mono, "upright");
	}
	calibrating = x->det.state == DETECTOR_CALIBRATING;
	slouching = x->det.state == DETECTOR_SLOUCHING;
	if (x->last_posture_ms && mono - x->last_posture_ms < SENSORS_POSTURE_INTERVAL_MS &&
	    calibrating == x->last_calibrating && slouching == x->last_slouching)
		return;
	x->last_posture_ms = mono;
	x->last_calibrating = calibrating;
	x->last_slouching = slouching;
	live.ts_ms = now;
	live.sensor = x->address;
	live.angle = x->det.angle;
	live.calibrating = calibrating;
	live.slouching = slouching;
	live.beyond_ms = detector_beyond_ms(&x->det, mono);
	store_add_posture(s->store, &live);
}

static void crack(struct sensors *s, struct sensor *x, const struct spine_crack *c)
{
	struct feed_event ev;

	event_init(&ev, x, FEED_EV_CRACK, clock_epoch_ms() - c->age_ms);
	ev.crack.kind = spine_crack_kind_name(c->kind);
	ev.crack.intensity = c->intensity;
	ev.crack.duration_ms = c->duration_ms;
	ev.crack.count = c->count;
	store_add_event(s->store, &ev);
}

static void reject(struct sensor *x, size_t len, const char *why)
{
	x->health.rejected++;
	log_rl(&x->rl, LOG_WARNING, "sensor %s: rejected a %zu-byte payload (%s)",
	       x->address, len, why);
}

void sensors_notification(struct sensors *s, const char *address, enum sw_char_role role,
			  const uint8_t *data, size_t len)
{
	struct sensor *x = lookup(s, address);
	struct spine_posture p;
	struct spine_crack c;
	enum spine_err err;
	enum thingy52_err terr;
	const char *drop;

	if (!x) {
		log_rl(&s->rl_unknown, LOG_DEBUG, "notification from unknown sensor %s", address);
		return;
	}
	x->health.received++;
	status_changed(s, x);
	switch (role) {
	case SW_CHAR_SPINE_POSTURE:
		x->roles |= FEED_ROLE_POSTURE;
		if ((err = spine_posture_decode(data, len, &p)) != SPINE_OK)
			return reject(x, len, spine_err_name(err));
		if ((drop = count_seq(x, 0, p.seq))) {
			if (strcmp(drop, "duplicate"))
				reject(x, len, drop);
			return;
		}
		posture_sample(s, x, &p);
		return;
	case SW_CHAR_MICROBIT_ACCEL:
		x->roles |= FEED_ROLE_POSTURE;
		if ((err = microbit_accel_decode(data, len, &p)) != SPINE_OK)
			return reject(x, len, spine_err_name(err));
		posture_sample(s, x, &p);
		return;
	case SW_CHAR_THINGY_GRAVITY:
		x->roles |= FEED_ROLE_POSTURE;
		if ((terr = thingy52_gravity_decode(data, len, &p)) != THINGY52_OK)
			return reject(x, len, thingy52_err_name(terr));
		posture_sample(s, x, &p);
		return;
	case SW_CHAR_SPINE_CRACK:
		x->roles |= FEED_ROLE_SOUND;
		if ((err = spine_crack_decode(data, len, &c)) != SPINE_OK)
			return reject(x, len, spine_err_name(err));
		if ((drop = count_seq(x, 1, c.seq))) {
			if (strcmp(drop, "duplicate"))
				reject(x, len, drop);
			return;
		}
		crack(s, x, &c);
		return;
	default:
		return;
	}
}

size_t sensors_snapshot(const struct sensors *s, struct feed_sensor_info *out, size_t max)
{
	size_t i;

	for (i = 0; i < s->n && i < max; i++) {
		const struct sensor *x = s->list[i];

		out[i].address = x->address;
		out[i].name = x->name;
		out[i].profile = sw_profile_name(x->profile);
		out[i].state = x->state;
		out[i].reason = x->reason;
		out[i].roles = x->roles;
		out[i].health = x->health;
	}
	return i;
}
