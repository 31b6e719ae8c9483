/*
 * ring.c - the event store's in-memory ring (see ring.h).
 *
 * Record seq s lives in slot s % nslots. There is one slot more than the
 * capacity, so the buffer handed out by ring_reserve() never belongs to a
 * record that is still readable: an uncommitted reserve cannot damage the
 * oldest record, and committing simply retires it. Every operation is O(1);
 * all memory is allocated in ring_new().
 */
#include "ring.h"

#include <stdlib.h>
#include <string.h>

struct ring {
	size_t capacity;      /* readable records held at most */
	size_t payload_max;
	size_t nslots;        /* capacity + 1 */
	size_t stride;        /* RING_PRE + payload_max */
	uint64_t last;        /* newest committed seq; first - 1 while empty */
	uint64_t first;       /* the first seq this ring holds or will hold (1, or ring_start_at) */
	int reserved;         /* a reserve for seq last + 1 is open */
	size_t *lens;         /* payload length per slot */
	unsigned char *bytes; /* nslots * stride */
};

struct ring *ring_new(size_t capacity, size_t payload_max)
{
	struct ring *r;

	if (capacity == 0 || payload_max == 0)
		return NULL;
	if (capacity > SIZE_MAX / sizeof(size_t) - 1 ||
	    payload_max > SIZE_MAX - RING_PRE ||
	    capacity + 1 > SIZE_MAX / (payload_max + RING_PRE))
		return NULL;

	r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	r->capacity = capacity;
	r->payload_max = payload_max;
	r->nslots = capacity + 1;
	r->stride = RING_PRE + payload_max;
	r->first = 1;
	r->lens = calloc(r->nslots, sizeof(*r->lens));
	r->bytes = malloc(r->nslots * r->stride);
	if (!r->lens || !r->bytes) {
		ring_free(r);
		return NULL;
	}
	return r;
}

void ring_free(struct ring *r)
{
	if (!r)
		return;
	free(r->lens);
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

uint64_t ring_last_seq(const struct ring *r)
{
	return r->last;
}

uint64_t ring_oldest_seq(const struct ring *r)
{
	if (r->last < r->first)
		return 0;
	return r->last - r->first + 1 > r->capacity ? r->last - r->capacity + 1 : r->first;
}

int ring_start_at(struct ring *r, uint64_t seq)
{
	if (seq == 0 || r->last >= r->first || seq == UINT64_MAX)
		return -1;   /* only an empty ring, and seq 1.. */
	r->first = seq;
	r->last = seq - 1;
	r->reserved = 0;
	return 0;
}

static size_t ring_slot_index(const struct ring *r, uint64_t seq)
{
	return (size_t)(seq % r->nslots);
}

/* start of the record's RING_PRE headroom */
static unsigned char *ring_slot_bytes(const struct ring *r, uint64_t seq)
{
	return r->bytes + ring_slot_index(r, seq) * r->stride;
}

unsigned char *ring_reserve(struct ring *r, uint64_t *seq)
{
	uint64_t next = r->last + 1;

	r->reserved = 1;
	if (seq)
		*seq = next;
	return ring_slot_bytes(r, next) + RING_PRE;
}

/* Fails (and drops the reserve) without an open reserve or when too long. */
int ring_commit(struct ring *r, size_t len)
{
	uint64_t next = r->last + 1;

	if (!r->reserved || len > r->payload_max) {
		r->reserved = 0;
		return -1;
	}
	r->lens[ring_slot_index(r, next)] = len;
	r->last = next;
	r->reserved = 0;
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
	uint64_t oldest, seq;

	if (*cursor > r->last) /* e.g. since=N from an earlier run */
		*cursor = r->last;
	if (*cursor == r->last)
		return RING_EMPTY;

	oldest = ring_oldest_seq(r);
	if (oldest == 0)   /* empty, started after an earlier run's events */
		oldest = r->first;
	if (*cursor + 1 < oldest) {
		if (gap) {
			gap->from = *cursor + 1;
			gap->to = oldest - 1;
		}
		*cursor = oldest - 1;
		return RING_GAP;
	}

	seq = *cursor + 1;
	if (data)
		*data = ring_slot_bytes(r, seq) + RING_PRE;
	if (len)
		*len = r->lens[ring_slot_index(r, seq)];
	*cursor = seq;
	return RING_DATA;
}

/* Records still held after cursor; those already overwritten do not count. */
uint64_t ring_pending(const struct ring *r, uint64_t cursor)
{
	uint64_t oldest = ring_oldest_seq(r);

	if (cursor >= r->last || oldest == 0)
		return 0;
	if (cursor + 1 < oldest)
		cursor = oldest - 1;
	return r->last - cursor;
}
