/*
 * ring.c - the event store's in-memory ring (see ring.h).
 *
 * Records are packed one after another in a byte area of `size` bytes, each
 * taking RING_PRE + its length (rounded up to 8), and never split at the end
 * of the area: a record that would not fit before the end starts the next lap
 * at offset 0. Positions are logical (they only grow); a position's place in
 * the area is pos % size. Record seq s is described by slot s % (capacity + 1).
 *
 * After every commit the window [head, head + window) - room for the largest
 * record - holds nothing readable, so the buffer handed out by ring_reserve()
 * never belongs to a record that can still be read: an uncommitted reserve
 * cannot damage the oldest record, and committing needs no eviction of its
 * own. Records are retired oldest first, when they are more than capacity or
 * when they lie in that window. Every operation is O(1) amortized; all memory
 * is allocated in ring_new().
 */
#include "ring.h"

#include <stdlib.h>
#include <string.h>

#define RING_ALIGN 8

struct ring_slot {
	uint64_t pos;         /* logical position of the record's RING_PRE headroom */
	size_t len;           /* payload bytes */
};

struct ring {
	size_t capacity;      /* readable records held at most */
	size_t payload_max;
	size_t nslots;        /* capacity + 1 */
	size_t window;        /* bytes of the largest record: RING_PRE + payload_max, aligned */
	size_t size;          /* bytes in the area */
	uint64_t head;        /* logical position where the next record goes */
	uint64_t last;        /* newest committed seq; first - 1 while empty */
	uint64_t first;       /* the first seq this ring holds or will hold (1, or ring_start_at) */
	uint64_t oldest;      /* oldest readable seq; last + 1 while empty */
	int reserved;         /* a reserve for seq last + 1 is open */
	struct ring_slot *slots;
	unsigned char *bytes;
};

static size_t ring_align(size_t n)
{
	return (n + RING_ALIGN - 1) & ~(size_t)(RING_ALIGN - 1);
}

struct ring *ring_new(size_t capacity, size_t payload_max, size_t bytes)
{
	struct ring *r;
	size_t window, least;

	if (capacity == 0 || payload_max == 0)
		return NULL;
	if (capacity > SIZE_MAX / sizeof(struct ring_slot) - 1 ||
	    payload_max > SIZE_MAX / 4 - RING_PRE - RING_ALIGN)
		return NULL;
	window = ring_align(RING_PRE + payload_max);
	/* the window, a record before it and the waste of one lap's end */
	least = 3 * window;
	if (bytes == 0) {   /* room for capacity records of payload_max */
		if (capacity > SIZE_MAX / window - 2)
			return NULL;
		bytes = (capacity + 2) * window;
	}
	if (bytes < least)
		bytes = least;
	if (bytes > SIZE_MAX - RING_ALIGN)
		return NULL;

	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->capacity = capacity;
	r->payload_max = payload_max;
	r->nslots = capacity + 1;
	r->window = window;
	r->size = ring_align(bytes);
	r->first = 1;
	r->oldest = 1;
	r->slots = calloc(r->nslots, sizeof(*r->slots));
	r->bytes = malloc(r->size);
	if (!r->slots || !r->bytes) {
		ring_free(r);
		return NULL;
	}
	return r;
}

void ring_free(struct ring *r)
{
	if (!r)
		return;
	free(r->slots);
	free(r->bytes);
	free(r);
}

size_t ring_capacity(const struct ring *r)
{
	return r->capacity;
}

size_t ring_payload_max(const struct ring *r)
{
	return r->payload_max;
}

size_t ring_bytes(const struct ring *r)
{
	return r->size;
}

uint64_t ring_last_seq(const struct ring *r)
{
	return r->last;
}

uint64_t ring_oldest_seq(const struct ring *r)
{
	return r->oldest > r->last ? 0 : r->oldest;
}

int ring_start_at(struct ring *r, uint64_t seq)
{
	if (seq == 0 || r->last >= r->first || seq == UINT64_MAX)
		return -1;   /* only an empty ring, and seq 1.. */
	r->first = seq;
	r->last = seq - 1;
	r->oldest = seq;
	r->reserved = 0;
	return 0;
}

static struct ring_slot *ring_slot(const struct ring *r, uint64_t seq)
{
	return &r->slots[seq % r->nslots];
}

static unsigned char *ring_at(const struct ring *r, uint64_t pos)
{
	return r->bytes + pos % r->size;
}

unsigned char *ring_reserve(struct ring *r, uint64_t *seq)
{
	r->reserved = 1;
	if (seq)
		*seq = r->last + 1;
	return ring_at(r, r->head) + RING_PRE;
}

/* Fails (and drops the reserve) without an open reserve or when too long. */
int ring_commit(struct ring *r, size_t len)
{
	struct ring_slot *s;
	size_t off;

	if (!r->reserved || len > r->payload_max) {
		r->reserved = 0;
		return -1;
	}
	r->reserved = 0;
	s = ring_slot(r, r->last + 1);
	s->pos = r->head;
	s->len = len;
	r->last++;
	r->head += ring_align(RING_PRE + len);
	off = (size_t)(r->head % r->size);
	if (off + r->window > r->size)   /* the next record starts the next lap */
		r->head += r->size - off;

	if (r->last - r->oldest + 1 > r->capacity)
		r->oldest = r->last - r->capacity + 1;
	while (r->oldest <= r->last && ring_slot(r, r->oldest)->pos + r->size < r->head + r->window)
		r->oldest++;
	return 0;
}

uint64_t ring_append(struct ring *r, const void *data, size_t len)
{
	unsigned char *buf;
	uint64_t seq;

	if (len > r->payload_max)
		return 0;
	buf = ring_reserve(r, &seq);
	if (len)
		memcpy(buf, data, len);
	if (ring_commit(r, len) < 0)
		return 0;
	return seq;
}

enum ring_read_result ring_read(const struct ring *r, uint64_t *cursor,
				const unsigned char **data, size_t *len,
				struct ring_gap *gap)
{
	const struct ring_slot *s;
	uint64_t seq;

	if (*cursor > r->last) /* e.g. since=N from an earlier run */
		*cursor = r->last;
	if (*cursor == r->last)
		return RING_EMPTY;

	/* r->oldest is r->first while nothing was ever held (an earlier run's events) */
	if (*cursor + 1 < r->oldest) {
		if (gap) {
			gap->from = *cursor + 1;
			gap->to = r->oldest - 1;
		}
		*cursor = r->oldest - 1;
		return RING_GAP;
	}

	seq = *cursor + 1;
	s = ring_slot(r, seq);
	if (data)
		*data = ring_at(r, s->pos) + RING_PRE;
	if (len)
		*len = s->len;
	*cursor = seq;
	return RING_DATA;
}

/* Records still held after cursor; those already overwritten do not count. */
uint64_t ring_pending(const struct ring *r, uint64_t cursor)
{
	if (cursor >= r->last || r->oldest > r->last)
		return 0;
	if (cursor + 1 < r->oldest)
		cursor = r->oldest - 1;
	return r->last - cursor;
}
