/*
 * sensors.c - sensor registry: decode -> count -> detect -> store.
 */
#include "sensors.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "spine_profile.h"

struct sensor {
	char address[FEED_ADDRESS_LEN];
	char name[72];
	enum bluez_profile profile;
	unsigned roles;
	const char *state;          /* feed state name */
	uint64_t lost, rejected;
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
	struct detector_config cfg;
	struct sensor *list[SENSORS_MAX];
	size_t n;
	struct log_ratelimit rl_full, rl_unknown;
};

static void cb_device_state(void *user, const struct bluez_device_info *info)
{
	sensors_device_state(user, info);
}

static void cb_notification(void *user, const char *address, enum bluez_char_role role,
			    const uint8_t *data, size_t len)
{
	sensors_notification(user, address, role, data, len);
}

const struct bluez_callbacks sensors_bluez_callbacks = {
	.device_state = cb_device_state,
	.notification = cb_notification,
};

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
	x->state = "found";
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

static const char *feed_state(enum bluez_dev_state st)
{
	return st == BLUEZ_DEV_GONE ? "lost" : bluez_state_name(st);
}

void sensors_device_state(struct sensors *s, const struct bluez_device_info *info)
{
	struct sensor *x = lookup(s, info->address);
	const char *state = feed_state(info->state);
	struct feed_event ev;

	if (!x && !(x = add(s, info->address)))
		return;
	snprintf(x->name, sizeof(x->name), "%s", info->name);
	x->profile = info->profile;
	x->roles |= info->roles;
	if (x->state == state)
		return;
	x->state = state;
	if (info->state != BLUEZ_DEV_STREAMING)
		x->have_seq[0] = x->have_seq[1] = false;  /* counters restart per connection */
	if ((info->state == BLUEZ_DEV_LOST || info->state == BLUEZ_DEV_GONE) &&
	    detector_lost(&x->det, clock_mono_ms()) == DETECTOR_SLOUCH_END)
		emit_slouch_end(s, x, clock_mono_ms(), "sensor-lost");
	event_init(&ev, x, FEED_EV_SENSOR, clock_epoch_ms());
	ev.dev.state = state;
	ev.dev.name = x->name;
	ev.dev.profile = bluez_profile_name(x->profile);
	store_add_event(s->store, &ev);
}

/* Count lost notifications; false if this one repeats the previous seq (a
 * duplicate, e.g. a cached value re-sent after someone's ReadValue). */
static bool count_seq(struct sensor *x, int idx, uint16_t seq)
{
	if (x->have_seq[idx] && x->last_seq[idx] == seq)
		return false;
	if (x->have_seq[idx])
		x->lost += spine_seq_lost(x->last_seq[idx], seq);
	x->have_seq[idx] = true;
	x->last_seq[idx] = seq;
	return true;
}

static void posture_sample(struct sensors *s, struct sensor *x, const struct spine_posture *p)
{
	int64_t mono = clock_mono_ms(), now = clock_epoch_ms();
	enum detector_output out = detector_feed(&x->det, mono, p->x, p->y, p->z);
	struct feed_posture live;
	bool calibrating, slouching;

	if (out == DETECTOR_DROPPED)
		return;
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

void sensors_notification(struct sensors *s, const char *address, enum bluez_char_role role,
			  const uint8_t *data, size_t len)
{
	struct sensor *x = lookup(s, address);
	struct spine_posture p;
	struct spine_crack c;
	enum spine_err err;

	if (!x) {
		log_rl(&s->rl_unknown, LOG_DEBUG, "notification from unknown sensor %s", address);
		return;
	}
	switch (role) {
	case BLUEZ_CHAR_SPINE_POSTURE:
		x->roles |= FEED_ROLE_POSTURE;
		if ((err = spine_posture_decode(data, len, &p)) != SPINE_OK)
			break;
		if (count_seq(x, 0, p.seq))
			posture_sample(s, x, &p);
		return;
	case BLUEZ_CHAR_MICROBIT_ACCEL:
		x->roles |= FEED_ROLE_POSTURE;
		if ((err = microbit_accel_decode(data, len, &p)) != SPINE_OK)
			break;
		posture_sample(s, x, &p);
		return;
	case BLUEZ_CHAR_SPINE_CRACK:
		x->roles |= FEED_ROLE_SOUND;
		if ((err = spine_crack_decode(data, len, &c)) != SPINE_OK)
			break;
		if (count_seq(x, 1, c.seq))
			crack(s, x, &c);
		return;
	default:
		return;
	}
	x->rejected++;
	log_rl(&x->rl, LOG_WARNING, "sensor %s: rejected a %zu-byte payload (%s)",
	       address, len, spine_err_name(err));
}

size_t sensors_snapshot(const struct sensors *s, struct feed_sensor_info *out, size_t max)
{
	size_t i;

	for (i = 0; i < s->n && i < max; i++) {
		const struct sensor *x = s->list[i];

		out[i].address = x->address;
		out[i].name = x->name;
		out[i].profile = bluez_profile_name(x->profile);
		out[i].state = x->state;
		out[i].roles = x->roles;
		out[i].lost = x->lost;
		out[i].rejected = x->rejected;
	}
	return i;
}
