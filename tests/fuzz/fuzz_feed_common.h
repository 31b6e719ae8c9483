/*
 * fuzz_feed_common.h - what the feed's two fuzz targets (fuzz_feed_command.c,
 * fuzz_feed_filter.c) check alike: the kind names a filter may hold, that a
 * filter's sensors are upper-case addresses, and that a parsed filter stays
 * within its documented bounds.
 */
#ifndef SW_FUZZ_FEED_COMMON_H
#define SW_FUZZ_FEED_COMMON_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "feed_json.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

/* websocket-feed.md, "Filters" */
static const char *const kind_names[] = {
	"crack", "slouch", "sensor", "alert", "calibration", "annotation", "posture", "status",
};
#define N_KINDS (sizeof(kind_names) / sizeof(kind_names[0]))

static inline unsigned known_kinds(void)
{
	unsigned known = 0;
	size_t i;

	for (i = 0; i < N_KINDS; i++)
		known |= feed_kind_bit(kind_names[i]);
	return known;
}

static inline bool is_upper_address(const char *s)
{
	size_t i;

	if (strlen(s) != 17)
		return false;
	for (i = 0; i < 17; i++) {
		char c = s[i];

		if (i % 3 == 2 ? c != ':' : !((c >= '0' && c <= '9') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return true;
}

/* Only known kinds, at most FEED_FILTER_SENSORS sensors, each an upper-case address. */
static inline void check_filter(const struct feed_filter *f)
{
	size_t i;

	CHECK(!(f->kinds & ~known_kinds()));
	CHECK(f->n_sensors <= FEED_FILTER_SENSORS);
	for (i = 0; i < f->n_sensors; i++)
		CHECK(is_upper_address(f->sensors[i]));
}

#endif
