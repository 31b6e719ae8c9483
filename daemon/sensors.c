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
#include "thingy52_sound.h"
#include "audio_cracks.h"
#include "alert_center.h"
#include "cracks.h"
#include "history.h"
#include "stats_keeper.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <unistd.h>

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
	struct breaks brk;
	struct cracks cracks;       /* crack reports -> episodes and patterns */
	struct thingy52_adpcm adpcm;   /* microphone frames -> samples */
	struct audio_cracks *audio; /* samples -> crack reports; made at the first frame */
	struct loop_timer crack_timer;
	struct calibration calib;   /* a capture asked for by a client */
	bool calibrating;
	struct loop_timer calib_timer;
	struct sensors *owner;
	int64_t last_posture_ms;
	struct feed_posture live;   /* the newest sample held back by the rate limit */
	bool live_pending;
	bool last_calibrating, last_slouching;
	int64_t onset_mono, onset_epoch;
	int64_t sit_epoch;          /* the last posture sample's time, for sitting spans */
	struct log_ratelimit rl;
};

struct sensors {
	struct store *store;
	struct loop *loop;
	struct loop_timer status_timer;
	int64_t flush_due;          /* when status_timer fires (mono), while armed */
	struct alert_center *alerts;
	struct stats_keeper *stats;
	struct history *history;    /* calibrations are kept there; NULL: not kept */
	struct breaks_config breaks_cfg;
	struct calibration_config calib_cfg;
	struct cracks_config cracks_cfg;
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
	s->loop = loop;
	loop_timer_init(&s->status_timer, loop, status_fire, s);
}

void sensors_attach_stats(struct sensors *s, struct stats_keeper *k)
{
	s->stats = k;
}

void sensors_attach_alerts(struct sensors *s, struct alert_center *ac)
{
	s->alerts = ac;
}

void sensors_set_history(struct sensors *s, struct history *h)
{
	s->history = h;
}

void sensors_set_breaks_config(struct sensors *s, const struct breaks_config *cfg)
{
	size_t i;

	s->breaks_cfg = *cfg;
	for (i = 0; i < s->n; i++)
		s->list[i]->brk.cfg = *cfg;
}

static void cracks_drain(struct sensors *s, struct sensor *x);

void sensors_set_cracks_config(struct sensors *s, const struct cracks_config *cfg)
{
	size_t i;

	s->cracks_cfg = *cfg;
	for (i = 0; i < s->n; i++) {
		/* a new configuration starts over: what is open goes out first */
		cracks_flush(&s->list[i]->cracks);
		cracks_drain(s, s->list[i]);
		if (cfg->merge_ms)
			cracks_init(&s->list[i]->cracks, cfg);
	}
}

/* ---- stored calibrations: rows of the history database --------------------- */

static void calib_load(struct sensors *s, struct sensor *x)
{
	double unit[3];
	const char *bad;
	char *line;

	if (!s->history || !(line = history_calibration(s->history, x->address)))
		return;
	bad = calibration_parse(line, unit);
	free(line);
	if (bad || !detector_set_baseline(&x->det, unit)) {
		log_warn("sensor %s: ignoring its stored calibration (%s)", x->address,
			 bad ? bad : "not a unit vector");
		return;
	}
	log_info("sensor %s: upright baseline from its stored calibration", x->address);
}

static bool calib_save(struct sensors *s, struct sensor *x, const double unit[3])
{
	char line[CALIBRATION_LINE_MAX];
	size_t n = calibration_format(unit, line, sizeof(line));

	if (!s->history || !n)
		return false;
	line[strcspn(line, "\n")] = '\0';
	if (history_set_calibration(s->history, x->address, line, clock_epoch_ms()) == 0)
		return true;
	log_warn("sensor %s: calibration applied but not stored (it is lost at the next start)",
		 x->address);
	return false;
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
	breaks_config_default(&s->breaks_cfg);
	calibration_config_default(&s->calib_cfg);
	cracks_config_default(&s->cracks_cfg);
	return s;
}

void sensors_free(struct sensors *s)
{
	size_t i;

	if (!s)
		return;
	loop_timer_cancel(&s->status_timer);
	for (i = 0; i < s->n; i++) {
		if (s->list[i]->calibrating)
			loop_timer_cancel(&s->list[i]->calib_timer);
		if (s->list[i]->crack_timer.loop)
			loop_timer_cancel(&s->list[i]->crack_timer);
		free(s->list[i]->audio);
		free(s->list[i]);
	}
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
	breaks_init(&x->brk, &s->breaks_cfg);
	if (s->cracks_cfg.merge_ms)
		cracks_init(&x->cracks, &s->cracks_cfg);
	else
		cracks_init(&x->cracks, NULL);
	x->owner = s;
	calib_load(s, x);
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
	int64_t duration = mono - x->onset_mono, ts = x->onset_epoch + duration;
	int64_t now = clock_epoch_ms();

	/* ts, onset_ts and duration_ms agree exactly: ts = onset_ts + duration_ms, unless the
	 * wall clock was set meanwhile (NTP, by hand): then ts is the wall clock's time now and
	 * duration_ms still the time that really passed (monotonic) */
	if (now - ts > SENSORS_CLOCK_STEP_MS || ts - now > SENSORS_CLOCK_STEP_MS)
		ts = now;
	event_init(&ev, x, FEED_EV_SLOUCH, ts);
	ev.slouch.start = false;
	ev.slouch.angle = x->det.angle;
	ev.slouch.threshold_deg = s->cfg.threshold_deg;
	ev.slouch.onset_ts = x->onset_epoch;
	ev.slouch.duration_ms = duration;
	ev.slouch.peak_deg = x->det.peak;
	ev.slouch.reason = reason;
	store_add_event(s->store, &ev);
	if (s->stats)
		stats_keeper_slouch(s->stats, x->address, x->onset_epoch, x->onset_epoch + duration);
	if (s->alerts)
		alert_center_slouch(s->alerts, x->address, false, 0);
}

/* A crack event: stored, counted in the day's record, judged against the
 * wearer's usual rate for this hour. */
static void emit_crack(struct sensors *s, struct sensor *x, int64_t ts, enum spine_crack_kind kind,
		       unsigned intensity, unsigned duration_ms, unsigned count,
		       const struct cracks_heard *heard)
{
	struct feed_event ev;
	int64_t now = clock_epoch_ms();

	event_init(&ev, x, FEED_EV_CRACK, ts);
	ev.crack.kind = spine_crack_kind_name(kind);
	ev.crack.intensity = intensity;
	ev.crack.duration_ms = duration_ms;
	ev.crack.count = count;
	if (heard && heard->heard) {
		ev.crack.heard = true;
		ev.crack.level_dbfs = heard->dbfs;
		ev.crack.freq_hz = heard->freq_hz;
	}
	store_add_event(s->store, &ev);
	if (s->stats)
		stats_keeper_crack(s->stats, x->address, ts, ev.crack.kind, count);
	if (s->alerts)
		alert_center_crack(s->alerts, x->address, s->stats ?
				   stats_keeper_baseline(s->stats, x->address, now) :
				   ALERTS_NO_BASELINE);
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

static void emit_posture(struct sensors *s, struct sensor *x, const struct feed_posture *live,
			 int64_t mono)
{
	x->last_posture_ms = mono;
	x->last_calibrating = live->calibrating;
	x->last_slouching = live->slouching;
	x->live_pending = false;
	store_add_posture(s->store, live);
}

/* The one rate-limit timer (status updates and held-back posture samples),
 * armed for the earliest thing due. */
static void arm_flush(struct sensors *s, int64_t delay_ms)
{
	int64_t due = clock_mono_ms() + delay_ms;

	if (!s->status_timer.loop)
		return;
	if (s->status_timer.armed && s->flush_due <= due)
		return;
	s->flush_due = due;
	loop_timer_start(&s->status_timer, delay_ms);
}

/* Send pending status updates and posture samples that are due; re-arm for the rest. */
static void status_flush(struct sensors *s)
{
	int64_t now = clock_mono_ms(), next = -1, due;
	size_t i;

	for (i = 0; i < s->n; i++) {
		struct sensor *x = s->list[i];

		if (x->live_pending) {
			due = x->last_posture_ms + SENSORS_POSTURE_INTERVAL_MS;
			if (due <= now) {
				emit_posture(s, x, &x->live, now);
			} else if (next < 0 || due < next) {
				next = due;
			}
		}
		if (!x->status_dirty)
			continue;
		due = x->status_mono + SENSORS_STATUS_INTERVAL_MS;
		if (!x->status_mono || due <= now)
			emit_status(s, x);
		else if (next < 0 || due < next)
			next = due;
	}
	if (next >= 0)
		arm_flush(s, next - now);
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
	else
		arm_flush(s, x->status_mono + SENSORS_STATUS_INTERVAL_MS - now);
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

	if (!x)
		return;
	status_changed(s, x);
	if (s->alerts && x->health.battery != FEED_NO_BATTERY)
		alert_center_battery(s->alerts, x->address, x->health.battery);
}

static void calibration_end(struct sensors *s, struct sensor *x, const char *refused);
static void cracks_drain(struct sensors *s, struct sensor *x);
static void audio_end(struct sensors *s, struct sensor *x);

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
	if (info->state != BLUEZ_DEV_STREAMING) {
		x->have_seq[0] = x->have_seq[1] = false;  /* counters restart per connection */
		audio_end(s, x);                          /* so does the audio stream */
	}
	if (info->state == BLUEZ_DEV_LOST || info->state == BLUEZ_DEV_GONE) {
		if (detector_lost(&x->det, clock_mono_ms()) == DETECTOR_SLOUCH_END)
			emit_slouch_end(s, x, clock_mono_ms(), "sensor-lost");
		breaks_lost(&x->brk, clock_mono_ms());
		cracks_flush(&x->cracks);
		cracks_drain(s, x);
		if (x->calibrating)
			calibration_end(s, x, "sensor lost");
	}
	event_init(&ev, x, FEED_EV_SENSOR, clock_epoch_ms());
	ev.dev.state = state;
	ev.dev.reason = x->reason;
	ev.dev.name = x->name;
	ev.dev.profile = sw_profile_name(x->profile);
	store_add_event(s->store, &ev);
	status_changed(s, x);
	/* a quiet crack sensor is subscribed, not lost */
	if (s->alerts)
		alert_center_streaming(s->alerts, x->address, info->state == BLUEZ_DEV_STREAMING ||
				       info->state == BLUEZ_DEV_SUBSCRIBED);
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

/* ---- calibration asked for by a client ------------------------------------- */

static void calibration_end(struct sensors *s, struct sensor *x, const char *refused)
{
	struct feed_event ev;

	x->calibrating = false;
	loop_timer_cancel(&x->calib_timer);
	if (!refused) {
		detector_set_baseline(&x->det, x->calib.baseline);
		calib_save(s, x, x->calib.baseline);
		log_info("sensor %s: calibrated: this is upright now", x->address);
	} else {
		log_info("sensor %s: calibration refused: %s", x->address, refused);
	}
	event_init(&ev, x, FEED_EV_CALIBRATION, clock_epoch_ms());
	ev.calibration.result = refused ? "refused" : "done";
	ev.calibration.reason = refused;
	store_add_event(s->store, &ev);
}

static void calib_timer_fire(struct loop_timer *t)
{
	struct sensor *x = t->user;

	if (x->calibrating && calibration_tick(&x->calib, clock_mono_ms()) == CALIBRATION_FAILED)
		calibration_end(x->owner, x, calibration_reason_name(x->calib.reason));
}

bool sensors_calibrate(struct sensors *s, const char *address, const char **code,
		       const char **message)
{
	struct sensor *x = lookup(s, address);
	int64_t now = clock_mono_ms();

	if (!x) {
		*code = "unknown-sensor";
		*message = "no sensor with that address";
		return false;
	}
	if (!(x->roles & FEED_ROLE_POSTURE)) {
		*code = "not-a-posture-sensor";
		*message = "only posture sensors have an upright baseline";
		return false;
	}
	if (strcmp(x->state, "streaming")) {
		*code = "not-streaming";
		*message = "the sensor sends no data right now";
		return false;
	}
	if (x->calibrating) {
		*code = "busy";
		*message = "a calibration of this sensor is running";
		return false;
	}
	calibration_init(&x->calib, &s->calib_cfg);
	calibration_start(&x->calib, now);
	x->calibrating = true;
	if (s->loop) {
		loop_timer_init(&x->calib_timer, s->loop, calib_timer_fire, x);
		loop_timer_start(&x->calib_timer, calibration_deadline(&x->calib) - now);
	}
	log_info("sensor %s: calibrating: sit upright and still", x->address);
	return true;
}

static void posture_sample(struct sensors *s, struct sensor *x, const struct spine_posture *p)
{
	int64_t mono = clock_mono_ms(), now = clock_epoch_ms();
	enum detector_output out;
	struct feed_posture live;
	bool calibrating, slouching, was_sitting;
	enum breaks_output brk;

	if (x->calibrating) {
		enum calibration_status cs = calibration_feed(&x->calib, mono, p->x, p->y, p->z);

		if (cs == CALIBRATION_DONE)
			calibration_end(s, x, NULL);
		else if (cs == CALIBRATION_FAILED)
			calibration_end(s, x, calibration_reason_name(x->calib.reason));
	}
	out = detector_feed(&x->det, mono, p->x, p->y, p->z);

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
		if (s->alerts)
			alert_center_slouch(s->alerts, x->address, true, x->det.onset_ms);
	} else if (out == DETECTOR_SLOUCH_END) {
		emit_slouch_end(s, x, mono, "upright");
	}
	calibrating = x->det.state == DETECTOR_CALIBRATING;
	/* sitting time: from the previous sample while the sitting timer ran on */
	was_sitting = x->brk.state == BREAKS_SITTING && mono - x->brk.last_ms < x->brk.cfg.gap_ms;
	brk = breaks_feed(&x->brk, mono, p->x, p->y, p->z, calibrating ? NAN : x->det.angle);
	if (s->stats && brk != BREAKS_DROPPED) {
		if (was_sitting && x->sit_epoch && now > x->sit_epoch)
			stats_keeper_sitting(s->stats, x->address, x->sit_epoch, now);
		if (brk == BREAKS_START)
			stats_keeper_break(s->stats, x->address, now);
	}
	if (brk != BREAKS_DROPPED)
		x->sit_epoch = now;
	if (s->alerts && (brk == BREAKS_DUE || brk == BREAKS_START))
		alert_center_break_due(s->alerts, x->address, brk == BREAKS_DUE,
				       breaks_sitting_ms(&x->brk, mono));
	slouching = x->det.state == DETECTOR_SLOUCHING;
	live.ts_ms = now;
	live.sensor = x->address;
	live.angle = x->det.angle;
	live.calibrating = calibrating;
	live.slouching = slouching;
	live.beyond_ms = detector_beyond_ms(&x->det, mono);
	live.sitting_ms = breaks_sitting_ms(&x->brk, mono);
	if (x->last_posture_ms && mono - x->last_posture_ms < SENSORS_POSTURE_INTERVAL_MS &&
	    calibrating == x->last_calibrating && slouching == x->last_slouching) {
		/* too soon: the newest sample goes out when the interval is up */
		x->live = live;
		x->live_pending = true;
		arm_flush(s, x->last_posture_ms + SENSORS_POSTURE_INTERVAL_MS - mono);
		return;
	}
	emit_posture(s, x, &live, mono);
}

static void crack_timer_fire(struct loop_timer *t);

/* Closed crack episodes become crack events; patterns go to the alerts. */
static void cracks_drain(struct sensors *s, struct sensor *x)
{
	int64_t mono = clock_mono_ms(), epoch = clock_epoch_ms(), d;
	struct cracks_event ce;

	while (cracks_next(&x->cracks, &ce)) {
		if (ce.type == CRACKS_EPISODE) {
			emit_crack(s, x, epoch - (mono - ce.episode.start_ms), ce.episode.kind,
				   ce.episode.intensity,
				   (unsigned)(ce.episode.end_ms - ce.episode.start_ms), ce.episode.count,
				   &ce.episode.heard);
		} else if (s->alerts) {
			log_info("sensor %s: %u crack episodes since %.0f s ago: %s pattern", x->address,
				 ce.episodes, (double)(mono - ce.first_ms) / 1000.0,
				 ce.type == CRACKS_GRINDING ? "repeated grinding" : "self-manipulation");
			alert_center_pattern(s->alerts, x->address, ce.type == CRACKS_GRINDING ?
					     ALERT_GRINDING : ALERT_SELF_MANIPULATION);
		}
	}
	if (!s->loop)
		return;
	if (!x->crack_timer.loop)
		loop_timer_init(&x->crack_timer, s->loop, crack_timer_fire, x);
	d = cracks_next_deadline(&x->cracks);
	if (d == CRACKS_NO_DEADLINE)
		loop_timer_cancel(&x->crack_timer);
	else
		loop_timer_start(&x->crack_timer, d - mono);
}

static void crack_timer_fire(struct loop_timer *t)
{
	struct sensor *x = t->user;

	cracks_tick(&x->cracks, clock_mono_ms());
	cracks_drain(x->owner, x);
}

/* A crack report: it opens or joins an episode (pops within 150 ms are one). */
static const char *crack(struct sensors *s, struct sensor *x, const struct spine_crack *c,
			 const struct cracks_heard *heard)
{
	int64_t mono = clock_mono_ms();
	struct cracks_report r = {
		.ts_ms = mono - c->age_ms, .kind = c->kind, .intensity = c->intensity,
		.duration_ms = c->duration_ms, .count = c->count,
	};
	const char *bad;

	if (heard)
		r.heard = *heard;
	if (!s->cracks_cfg.merge_ms) {
		/* merging off: the report is the crack */
		emit_crack(s, x, clock_epoch_ms() - c->age_ms, c->kind, c->intensity, c->duration_ms,
			   c->count, heard);
		return NULL;
	}
	bad = cracks_feed(&x->cracks, mono, &r);
	cracks_drain(s, x);
	return bad;
}

/* ---- cracks heard in a microphone's audio (audio_cracks.h) ----------------- */

/* The detector's results become crack reports, like a sound sensor's own. */
static void audio_drain(struct sensors *s, struct sensor *x)
{
	struct audio_crack ac;

	while (audio_cracks_next(x->audio, &ac)) {
		uint64_t age = (x->audio->pos - ac.onset) / (AUDIO_CRACKS_RATE_HZ / 1000);
		struct spine_crack c = {
			.kind = ac.kind,
			.intensity = (uint8_t)audio_cracks_intensity(ac.dbfs),
			.duration_ms = (uint16_t)(ac.duration_ms > UINT16_MAX ? UINT16_MAX : ac.duration_ms),
			.count = (uint8_t)(ac.count > UINT8_MAX ? UINT8_MAX : ac.count),
			.age_ms = (uint16_t)(age > UINT16_MAX ? UINT16_MAX : age),
		};
		struct cracks_heard h = { .heard = true, .dbfs = ac.dbfs, .freq_hz = ac.freq_hz };
		const char *bad;

		log_debug("sensor %s: heard a %s: %.1f dBFS, %u ms, %u pop(s), %u Hz", x->address,
			  spine_crack_kind_name(ac.kind), ac.dbfs, ac.duration_ms, ac.count,
			  ac.freq_hz);
		if ((bad = crack(s, x, &c, &h)))
			log_rl(&x->rl, LOG_WARNING, "sensor %s: heard crack dropped (%s)", x->address, bad);
	}
}

/* The stream ends (link lost, sensor gone): what is open is heard out, and the
 * next connection starts afresh. */
static void audio_end(struct sensors *s, struct sensor *x)
{
	thingy52_adpcm_reset(&x->adpcm);
	if (!x->audio || !x->audio->pos)
		return;
	audio_cracks_flush(x->audio);
	audio_drain(s, x);
	audio_cracks_init(x->audio);
}

static void reject(struct sensor *x, size_t len, const char *why);

static void microphone(struct sensors *s, struct sensor *x, const uint8_t *data, size_t len)
{
	int16_t pcm[THINGY52_MIC_SAMPLES];
	enum thingy52_sound_err err;
	bool lost;

	err = thingy52_mic_decode(&x->adpcm, data, len, pcm, &lost);
	if (err != THINGY52_SOUND_OK)
		return reject(x, len, thingy52_sound_err_name(err));
	if (!x->audio) {
		if (!(x->audio = malloc(sizeof(*x->audio)))) {
			log_rl(&x->rl, LOG_ERR, "sensor %s: no memory for its audio", x->address);
			return;
		}
		audio_cracks_init(x->audio);
	}
	if (lost) {
		/* at least one frame went missing: counted once, the clock skips one */
		x->health.lost++;
		audio_cracks_gap(x->audio, THINGY52_MIC_SAMPLES);
	}
	audio_cracks_feed(x->audio, pcm, THINGY52_MIC_SAMPLES);
	audio_drain(s, x);
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
		if ((drop = crack(s, x, &c, NULL)))
			reject(x, len, drop);
		return;
	case SW_CHAR_THINGY_MIC:
		x->roles |= FEED_ROLE_SOUND;
		microphone(s, x, data, len);
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
