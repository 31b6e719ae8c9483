/*
 * statefile.c - bounded whole-file reads and atomic replacement of files
 * under the state directory (see statefile.h).
 */
#include "statefile.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int join(char *out, size_t cap, const char *dir, const char *name, const char *suffix)
{
	int n = snprintf(out, cap, "%s/%s%s", dir, name, suffix);

	if (n < 0 || (size_t)n >= cap) {
		errno = ENAMETOOLONG;
		return -1;
	}
	return 0;
}

static int mkdir_ok(const char *path)
{
	return mkdir(path, 0750) == 0 || errno == EEXIST ? 0 : -1;
}

int statefile_write(const char *dir, const char *name, const void *data, size_t len)
{
	char path[PATH_MAX], tmp[PATH_MAX], sub[PATH_MAX];
	const char *slash = strchr(name, '/');
	const char *p = data;
	size_t done = 0;
	int fd, saved;

	if (!dir || !dir[0] || !name || !name[0]) {
		errno = EINVAL;
		return -1;
	}
	if (join(path, sizeof(path), dir, name, "") || join(tmp, sizeof(tmp), dir, name, ".tmp"))
		return -1;
	if (mkdir_ok(dir) < 0)
		return -1;
	if (slash) {
		int n = snprintf(sub, sizeof(sub), "%s/%.*s", dir, (int)(slash - name), name);

		if (n < 0 || (size_t)n >= sizeof(sub) || strchr(slash + 1, '/')) {
			errno = EINVAL;
			return -1;
		}
		if (mkdir_ok(sub) < 0)
			return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
	if (fd < 0)
		return -1;
	while (done < len) {
		ssize_t n = write(fd, p + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			goto fail;
		done += (size_t)n;
	}
	if (fsync(fd) < 0)
		goto fail;
	if (close(fd) < 0) {
		fd = -1;
		goto fail;
	}
	fd = -1;
	if (rename(tmp, path) < 0)
		goto fail;
	return 0;
fail:
	saved = errno ? errno : EIO;
	if (fd >= 0)
		close(fd);
	unlink(tmp);
	errno = saved;
	return -1;
}

char *statefile_read(const char *dir, const char *name, size_t max, size_t *len_out)
{
	char path[PATH_MAX], *buf;
	size_t n;
	FILE *f;

	if (!dir || !dir[0] || !name || !name[0]) {
		errno = EINVAL;
		return NULL;
	}
	if (join(path, sizeof(path), dir, name, ""))
		return NULL;
	f = fopen(path, "re");
	if (!f)
		return NULL;
	buf = malloc(max + 2);
	if (!buf) {
		fclose(f);
		errno = ENOMEM;
		return NULL;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		int saved = errno ? errno : EIO;

		fclose(f);
		free(buf);
		errno = saved;
		return NULL;
	}
	fclose(f);
	if (n > max) {
		free(buf);
		errno = EFBIG;
		return NULL;
	}
	buf[n] = '\0';
	if (len_out)
		*len_out = n;
	return buf;
}
