/*
 * fuzz_feed_filter.c - libFuzzer target for the feed's filter parsers,
 * feed_filter_parse_kinds() and feed_filter_parse_sensors()
 * (protocol/feed_json.c; /ws?kinds=..&sensors=.., websocket-feed.md
 * "Filters"). The input, as a C string, goes to both; a parsed list is
 * within its documented bounds, written back as a list it parses to the same
 * filter, and feed_filter_match() lets through what the filter names.
 */
#include <ctype.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "feed_json.h"
#include "fuzz_feed_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct feed_filter f, g;
	const char *message;
	char *csv = malloc(size + 1), list[FEED_FILTER_SENSORS * FEED_ADDRESS_LEN + 256];
	size_t i;
	int rc;

	if (!csv)
		return 0;
	memcpy(csv, data, size);
	csv[size] = '\0';
	/* kinds */
	memset(&f, 0, sizeof(f));
	message = NULL;
	rc = feed_filter_parse_kinds(&f, csv, &message);
	CHECK(rc == 0 || rc == -1);
	CHECK(rc == 0 || (message && *message));
	check_filter(&f);
	CHECK(f.n_sensors == 0);
	if (rc == 0) {
		CHECK(f.kinds != 0);
		list[0] = '\0';
		for (i = 0; i < N_KINDS; i++) {
			if (!(f.kinds & feed_kind_bit(kind_names[i])))
				continue;
			if (list[0])
				strcat(list, ",");
			strcat(list, kind_names[i]);
			CHECK(feed_filter_match(&f, feed_kind_bit(kind_names[i]), ""));
		}
		memset(&g, 0, sizeof(g));
		CHECK(feed_filter_parse_kinds(&g, list, &message) == 0 && g.kinds == f.kinds);
		CHECK(feed_filter_match(&f, 0, "") == false);
	}

	/* sensors */
	memset(&f, 0, sizeof(f));
	message = NULL;
	rc = feed_filter_parse_sensors(&f, csv, &message);
	CHECK(rc == 0 || rc == -1);
	CHECK(rc == 0 || (message && *message));
	CHECK(f.kinds == 0);
	check_filter(&f);
	if (rc == 0) {
		CHECK(f.n_sensors >= 1);
		list[0] = '\0';
		for (i = 0; i < f.n_sensors; i++) {
			char lower[FEED_ADDRESS_LEN];
			size_t k;

			if (i)
				strcat(list, ",");
			strcat(list, f.sensors[i]);
			for (k = 0; k < FEED_ADDRESS_LEN; k++)
				lower[k] = (char)tolower((unsigned char)f.sensors[i][k]);
			CHECK(feed_filter_match(&f, FEED_KIND_POSTURE, f.sensors[i]));
			CHECK(feed_filter_match(&f, FEED_KIND_POSTURE, lower));
		}
		memset(&g, 0, sizeof(g));
		CHECK(feed_filter_parse_sensors(&g, list, &message) == 0);
		CHECK(!memcmp(&f, &g, sizeof(f)));
		CHECK(feed_filter_match(&f, FEED_KIND_STATUS, ""));
		CHECK(feed_filter_match(&f, FEED_KIND_STATUS, NULL));
	}
	free(csv);
	return 0;
}
