/*
 * store.c - the event store: event ring, live posture ring, listener.
 */
#include "store.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "log.h"

/* what a ring record is about, kept beside the ring (slot seq % (capacity + 1)) */
struct tag {
	unsigned kind_bit;
	char sensor[FEED_ADDRESS_LEN];
};

struct store {
	struct ring *events;
	struct ring *postures;
	struct tag *event_tags, *live_tags;
	size_t n_event_tags, n_live_tags;
	store_listener_fn listener;
	void *listener_user;
	struct {
		store_listener_fn fn;
		void *user;
	} more[STORE_LISTENERS];   /* store_add_listener()'s */
	store_sink_fn sink;
	void *sink_user;
	uint64_t encode_failures;
	struct log_ratelimit rl;
	struct store_event_count counts[STORE_COUNTED_SENSORS + 1];   /* the last: "other" */
	size_t n_counts;
};

/* The ring keeps the newest records that add up to its area less two of the
 * largest (ring.h): with these two added, the newest capacity records of
 * STORE_RECORD_BYTES on average. */
static size_t store_ring_bytes(size_t capacity)
{
	size_t extra = 2 * (RING_PRE + STORE_FRAME_MAX + 8);

	if (capacity > (SIZE_MAX - extra) / STORE_RECORD_BYTES)
		return SIZE_MAX;   /* ring_new() will fail */
	return capacity * STORE_RECORD_BYTES + extra;
}

struct store *store_new(size_t event_capacity)
{
	struct store *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->events = ring_new(event_capacity, STORE_FRAME_MAX, store_ring_bytes(event_capacity));
	s->postures = ring_new(STORE_POSTURE_CAPACITY, STORE_FRAME_MAX,
			       store_ring_bytes(STORE_POSTURE_CAPACITY));
	s->n_event_tags = event_capacity + 1;
	s->n_live_tags = STORE_POSTURE_CAPACITY + 1;
	s->event_tags = event_capacity < SIZE_MAX / sizeof(struct tag) - 1 ?
			calloc(s->n_event_tags, sizeof(struct tag)) : NULL;
	s->live_tags = calloc(s->n_live_tags, sizeof(struct tag));
	if (!s->events || !s->postures || !s->event_tags || !s->live_tags) {
		store_free(s);
		return NULL;
	}
	return s;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	ring_free(s->events);
	ring_free(s->postures);
	free(s->event_tags);
	free(s->live_tags);
	free(s);
}

void store_set_listener(struct store *s, store_listener_fn fn, void *user)
{
	s->listener = fn;
	s->listener_user = user;
}

int store_add_listener(struct store *s, store_listener_fn fn, void *user)
{
	size_t i;

	for (i = 0; i < STORE_LISTENERS; i++)
		if (!s->more[i].fn) {
			s->more[i].fn = fn;
			s->more[i].user = user;
			return 0;
		}
	return -1;
}

void store_remove_listener(struct store *s, store_listener_fn fn, void *user)
{
	size_t i;

	for (i = 0; i < STORE_LISTENERS; i++)
		if (s->more[i].fn == fn && s->more[i].user == user)
			s->more[i].fn = NULL;
}

static void set_tag(struct tag *tags, size_t n, uint64_t seq, unsigned kind_bit,
		    const char *sensor)
{
	struct tag *t = &tags[seq % n];

	t->kind_bit = kind_bit;
	snprintf(t->sensor, sizeof(t->sensor), "%s", sensor ? sensor : "");
}

void store_set_sink(struct store *s, store_sink_fn fn, void *user)
{
	s->sink = fn;
	s->sink_user = user;
}

int store_start_at(struct store *s, uint64_t seq)
{
	return ring_start_at(s->events, seq);
}

int store_refill(struct store *s, uint64_t seq, const char *json, size_t len)
{
	if (ring_last_seq(s->events) == 0 && ring_start_at(s->events, seq) < 0)
		return -1;
	if (seq != ring_last_seq(s->events) + 1 || len > ring_payload_max(s->events))
		return -1;
	{
		json_t *o = json_loadb(json, len, 0, NULL);
		const char *kind = json_string_value(json_object_get(o, "kind"));

		set_tag(s->event_tags, s->n_event_tags, seq, kind ? feed_kind_bit(kind) : 0,
			json_string_value(json_object_get(o, "sensor")));
		json_decref(o);
	}
	return ring_append(s->events, json, len) == seq ? 0 : -1;
}

const char *store_kind_name(enum feed_event_kind kind)
{
	switch (kind) {
	case FEED_EV_CRACK: return "crack";
	case FEED_EV_SLOUCH: return "slouch";
	case FEED_EV_SENSOR: return "sensor";
	case FEED_EV_ALERT: return "alert";
	case FEED_EV_CALIBRATION: return "calibration";
	case FEED_EV_ANNOTATION: return "annotation";
	}
	return "unknown";
}

void store_event_tag(const struct store *s, uint64_t seq, unsigned *kind_bit,
		     const char **sensor)
{
	const struct tag *t = &s->event_tags[seq % s->n_event_tags];

	*kind_bit = t->kind_bit;
	*sensor = t->sensor;
}

void store_live_tag(const struct store *s, uint64_t seq, unsigned *kind_bit,
		    const char **sensor)
{
	const struct tag *t = &s->live_tags[seq % s->n_live_tags];

	*kind_bit = t->kind_bit;
	*sensor = t->sensor;
}

static void count_event(struct store *s, const struct feed_event *ev)
{
	struct store_event_count *c = NULL;
	size_t i;

	if ((unsigned)ev->kind >= STORE_KINDS)
		return;
	for (i = 0; i < s->n_counts && !c; i++)
		if (!strcmp(s->counts[i].sensor, ev->sensor))
			c = &s->counts[i];
	if (!c && s->n_counts < STORE_COUNTED_SENSORS) {
		c = &s->counts[s->n_counts++];
		snprintf(c->sensor, sizeof(c->sensor), "%s", ev->sensor);
	} else if (!c) {
		c = &s->counts[STORE_COUNTED_SENSORS];
		if (s->n_counts == STORE_COUNTED_SENSORS) {
			snprintf(c->sensor, sizeof(c->sensor), "other");
			s->n_counts++;
		}
	}
	c->by_kind[ev->kind]++;
}

size_t store_event_counts(const struct store *s, const struct store_event_count **out)
{
	*out = s->counts;
	return s->n_counts;
}

static void notify(struct store *s)
{
	size_t i;

	if (s->listener)
		s->listener(s->listener_user);
	for (i = 0; i < STORE_LISTENERS; i++)
		if (s->more[i].fn)
			s->more[i].fn(s->more[i].user);
}

uint64_t store_add_event(struct store *s, struct feed_event *ev)
{
	uint64_t seq;
	unsigned char *buf = ring_reserve(s->events, &seq);
	int n;

	ev->seq = seq;
	set_tag(s->event_tags, s->n_event_tags, seq, 1u << ev->kind, ev->sensor);
	n = feed_encode_event(ev, (char *)buf, ring_payload_max(s->events));
	if (n < 0 || ring_commit(s->events, (size_t)n) < 0) {
		s->encode_failures++;
		log_rl(&s->rl, LOG_ERR, "cannot encode event from %s (kind %d)", ev->sensor, ev->kind);
		return 0;
	}
	count_event(s, ev);
	if (s->sink)
		s->sink(s->sink_user, ev, (const char *)buf, (size_t)n);
	notify(s);
	return seq;
}

int store_add_posture(struct store *s, const struct feed_posture *p)
{
	uint64_t seq;
	unsigned char *buf = ring_reserve(s->postures, &seq);
	int n = feed_encode_posture(p, (char *)buf, ring_payload_max(s->postures));

	set_tag(s->live_tags, s->n_live_tags, seq, FEED_KIND_POSTURE, p->sensor);

	if (n < 0 || ring_commit(s->postures, (size_t)n) < 0) {
		s->encode_failures++;
		log_rl(&s->rl, LOG_ERR, "cannot encode posture sample from %s", p->sensor);
		return -1;
	}
	notify(s);
	return 0;
}

int store_add_status(struct store *s, const struct feed_status *st)
{
	uint64_t seq;
	unsigned char *buf = ring_reserve(s->postures, &seq);
	int n = feed_encode_status(st, (char *)buf, ring_payload_max(s->postures));

	set_tag(s->live_tags, s->n_live_tags, seq, FEED_KIND_STATUS, st->sensor);

	if (n < 0 || ring_commit(s->postures, (size_t)n) < 0) {
		s->encode_failures++;
		log_rl(&s->rl, LOG_ERR, "cannot encode status of %s", st->sensor);
		return -1;
	}
	notify(s);
	return 0;
}

const struct ring *store_events(const struct store *s)
{
	return s->events;
}

const struct ring *store_postures(const struct store *s)
{
	return s->postures;
}

uint64_t store_encode_failures(const struct store *s)
{
	return s->encode_failures;
}
