/*
 * scratch_dir.h - a scratch directory for each cmocka test that needs files
 * (a state directory, a database): scratch_make() in the test's setup,
 * scratch_teardown as its teardown; the path is in `dir`.
 */
#ifndef SW_TEST_SCRATCH_DIR_H
#define SW_TEST_SCRATCH_DIR_H

#include <stdio.h>
#include <stdlib.h>

static char dir[64];

/* A new empty directory /tmp/PREFIX-XXXXXX: 0, or -1. */
static int scratch_make(const char *prefix)
{
	snprintf(dir, sizeof(dir), "/tmp/%s-XXXXXX", prefix);
	return mkdtemp(dir) ? 0 : -1;
}

static int scratch_teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

#endif
