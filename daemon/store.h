/*
 * store.h - the event store: where detected events and live posture samples
 * land before the feed sends them. Events are numbered and encoded once into
 * the event ring; posture samples and sensor status updates go to a smaller,
 * unsequenced live ring.
 * Listeners (the feed, the MQTT publisher) are told when something new is there.
 */
#ifndef SW_STORE_H
#define SW_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "feed_json.h"
#include "ring.h"

#define STORE_FRAME_MAX 1024     /* bytes of one encoded event or posture (a note, escaped) */
#define STORE_POSTURE_CAPACITY 256
/*
 * The rings' areas: this many bytes per record (a record takes 16 + its
 * length; events are 110-300 bytes, postures about 190), so a ring of 4096
 * events is 1.3 MiB where 4096 records of the largest size would be 4.3 MiB.
 * Records longer than this on average (many long notes) hold fewer than the
 * ring's size; a reader who falls behind them gets a gap, as ever.
 */
#define STORE_RECORD_BYTES 320

struct store;

typedef void (*store_listener_fn)(void *user);
/* Told every event as it was encoded (the durable store keeps these bytes). */
typedef void (*store_sink_fn)(void *user, const struct feed_event *ev, const char *json,
			      size_t len);

struct store *store_new(size_t event_capacity);
void store_free(struct store *s);

void store_set_listener(struct store *s, store_listener_fn fn, void *user);
/* Further listeners (the MQTT publisher), told after the one above: 0, or
 * -1 when STORE_LISTENERS are set already. */
#define STORE_LISTENERS 4
int store_add_listener(struct store *s, store_listener_fn fn, void *user);
void store_remove_listener(struct store *s, store_listener_fn fn, void *user);
void store_set_sink(struct store *s, store_sink_fn fn, void *user);

/*
 * Before any event: continue an earlier run. store_refill() puts back one
 * kept event with its own seq (consecutive, oldest first); store_start_at()
 * makes the next new event seq (when nothing was refilled). 0 or -1.
 */
int store_refill(struct store *s, uint64_t seq, const char *json, size_t len);
int store_start_at(struct store *s, uint64_t seq);
/* The name of an event kind as in the feed ("crack", ...). */
const char *store_kind_name(enum feed_event_kind kind);

/* Assigns ev->seq, encodes and appends. Returns the seq, 0 on failure. */
uint64_t store_add_event(struct store *s, struct feed_event *ev);
int store_add_posture(struct store *s, const struct feed_posture *p);
/* a sensor status update: unsequenced, like posture, on the live ring */
int store_add_status(struct store *s, const struct feed_status *st);

/*
 * What a record is about, without parsing it (for client filters): its kind
 * bit (1 << enum feed_event_kind for events; FEED_KIND_POSTURE or
 * FEED_KIND_STATUS for the live ring) and its sensor ("" for none). Valid
 * while the record is readable in its ring.
 */
void store_event_tag(const struct store *s, uint64_t seq, unsigned *kind_bit,
		     const char **sensor);
void store_live_tag(const struct store *s, uint64_t seq, unsigned *kind_bit,
		    const char **sensor);

const struct ring *store_events(const struct store *s);
const struct ring *store_postures(const struct store *s);

uint64_t store_encode_failures(const struct store *s);

/* Counters for /metrics: events added since start by sensor and kind. The
 * first STORE_COUNTED_SENSORS sensors ("" for events of no sensor) are
 * counted by name, any further ones together under "other". */
#define STORE_KINDS (FEED_EV_ANNOTATION + 1)
#define STORE_COUNTED_SENSORS 64
struct store_event_count {
	char sensor[FEED_ADDRESS_LEN];
	uint64_t by_kind[STORE_KINDS];   /* index: enum feed_event_kind */
};
/* Points *out at the counters; returns how many entries there are. */
size_t store_event_counts(const struct store *s, const struct store_event_count **out);

#endif
