/*
 * metrics.h - the text of /metrics: the daemon's counters and gauges in the
 * Prometheus text exposition format 0.0.4, every family with its HELP and
 * TYPE lines, label values escaped (backslash, double quote, line feed) and
 * kept to valid UTF-8 without other control characters.
 *
 * Owns the metric names, their help texts and labels (listed in
 * protocol/http-api.md). Reads the daemon's state through struct
 * http_sources (http_api.h), which serves the text; writes nothing.
 */
#ifndef SW_METRICS_H
#define SW_METRICS_H

#include <stddef.h>
#include <stdio.h>

#include "http_api.h"

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/* The whole exposition, malloc'd (free()), *len set; NULL if out of memory. */
char *metrics_render(const struct http_sources *src, size_t *len);

/* A label value as it goes between the quotes (for the unit test too):
 * \ " and line feed escaped, bytes that are not valid UTF-8 and other
 * control characters written as '?'. */
void metrics_write_label_value(FILE *out, const char *value);

#endif
