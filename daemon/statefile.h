/*
 * statefile.h - files under the state directory: read one whole (bounded),
 * and replace one atomically (write a temporary file, fsync, rename), so a
 * crash or power cut leaves either the old file or the new one, never half.
 * Directories are created owner+group only (0750), files 0640.
 */
#ifndef SW_STATEFILE_H
#define SW_STATEFILE_H

#include <stddef.h>

/*
 * Writes len bytes to DIR/NAME (NAME may hold one "sub/" level: both
 * directories are created as needed). 0, or -1 with errno set.
 */
int statefile_write(const char *dir, const char *name, const void *data, size_t len);

/*
 * Reads DIR/NAME whole, NUL-terminated, malloc'd (free()); *len_out (if not
 * NULL) is its length. NULL with errno set: ENOENT if it does not exist,
 * EFBIG if it is larger than max bytes.
 */
char *statefile_read(const char *dir, const char *name, size_t max, size_t *len_out);

#endif
