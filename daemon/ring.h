/*
 * ring.h - the event store's in-memory ring: records of any length up to a
 * maximum, each holding one already-encoded message, packed in a byte area of
 * fixed size and numbered by a 64-bit sequence number that starts at 1.
 * Appending never blocks and never grows memory: the oldest records are
 * overwritten, when the ring holds its capacity of records or when their bytes
 * are needed. Readers keep their own cursor (the last sequence
 * number they consumed); a reader that fell behind gets a gap and skips
 * ahead. The ring knows nothing about clients, JSON or sockets.
 *
 * Each record reserves RING_PRE bytes in front of its payload so that the
 * WebSocket layer can write the frame header in place (lws' LWS_PRE).
 */
#ifndef SW_RING_H
#define SW_RING_H

#include <stddef.h>
#include <stdint.h>

#define RING_PRE 16

struct ring;

/*
 * At most capacity records of at most payload_max bytes each, in an area of
 * bytes bytes (0: room for capacity records of payload_max bytes). Each record
 * takes RING_PRE + its length, rounded up to 8. The newest records whose sizes
 * add up to at most bytes - 2 * (RING_PRE + payload_max) are always held.
 */
struct ring *ring_new(size_t capacity, size_t payload_max, size_t bytes);
void ring_free(struct ring *r);

size_t ring_capacity(const struct ring *r);
size_t ring_payload_max(const struct ring *r);
size_t ring_bytes(const struct ring *r);   /* the area's size */
/* newest sequence number (0 while empty; seq - 1 after ring_start_at(seq)) */
uint64_t ring_last_seq(const struct ring *r);
/* oldest sequence number still held, 0 while empty */
uint64_t ring_oldest_seq(const struct ring *r);
/*
 * An empty ring numbers its records from seq instead of 1 (the durable store
 * continues an earlier run's numbering); readers asking for anything before
 * seq get a gap. 0, or -1 if the ring is not empty or seq is 0.
 */
int ring_start_at(struct ring *r, uint64_t seq);

/*
 * Two-step append, so the payload can contain its own sequence number:
 * ring_reserve() returns the buffer of the next record (payload_max bytes,
 * with RING_PRE writable bytes before it) and its sequence number;
 * ring_commit() publishes it with the payload's length. A reserve that is
 * not committed is simply discarded by the next reserve.
 */
unsigned char *ring_reserve(struct ring *r, uint64_t *seq);
int ring_commit(struct ring *r, size_t len);

/* Convenience: reserve + copy + commit. Returns the seq, 0 if len too big. */
uint64_t ring_append(struct ring *r, const void *data, size_t len);

enum ring_read_result {
	RING_EMPTY = 0, /* nothing after *cursor */
	RING_DATA,      /* data and len hold record cursor+1; cursor advanced */
	RING_GAP,       /* records gap_from..gap_to are gone; cursor moved to gap_to */
};

struct ring_gap {
	uint64_t from, to;
};

/*
 * Read the record after *cursor. *data points into the ring and stays valid
 * until the next append (the caller writes it out before going back to the
 * loop). A cursor beyond the last seq is treated as the last seq.
 */
enum ring_read_result ring_read(const struct ring *r, uint64_t *cursor,
				const unsigned char **data, size_t *len,
				struct ring_gap *gap);

/* How many records lie after cursor (what a reader has still to read). */
uint64_t ring_pending(const struct ring *r, uint64_t cursor);

#endif
