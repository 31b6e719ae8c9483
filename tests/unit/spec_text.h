/*
 * spec_text.h - for the unit tests that check code against the vectors in a
 * spec (a protocol/ document) or a vectors file: reading the whole file, and hex
 * digits.
 */
#ifndef SW_TEST_SPEC_TEXT_H
#define SW_TEST_SPEC_TEXT_H

#include <stdio.h>
#include <stdlib.h>

#define SPEC_TEXT_MAX (1024 * 1024)

/* The whole file (at most SPEC_TEXT_MAX bytes), NUL-terminated; NULL on failure. */
static inline char *read_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf;
	size_t n;

	if (!f)
		return NULL;
	buf = malloc(SPEC_TEXT_MAX + 1);
	if (!buf) {
		fclose(f);
		return NULL;
	}
	n = fread(buf, 1, SPEC_TEXT_MAX, f);
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* 0-15, or -1 if c is not a hex digit. */
static inline int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

#endif
