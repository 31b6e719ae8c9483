/*
 * fuzz_config.c - libFuzzer target for spinewatchd's settings parser
 * (daemon/config.c; the settings are in systemd/spinewatchd.conf and the
 * spinewatchd(8) page).
 *
 * An input starting with byte 0x01 is "section\0key\0value" for
 * config_set(), the path the command line takes; any other input is a whole
 * INI file for config_load() (libinih), handed over as an in-memory file
 * (memfd) so the parser runs unchanged. Checks: an error has a message and,
 * for a file, leaves the settings untouched; accepted settings keep their
 * strings terminated, pass or fail config_check() with a message, and split
 * into at most 16 hook words.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static void check_settings(const struct sw_config *c)
{
	char buf[CONFIG_PATH_MAX];
	const char *argv[CONFIG_HOOK_ARGS + 1], *why;
	int n, i;

	CHECK(memchr(c->listen, '\0', sizeof(c->listen)));
	CHECK(memchr(c->web_root, '\0', sizeof(c->web_root)));
	CHECK(memchr(c->state_dir, '\0', sizeof(c->state_dir)));
	CHECK(memchr(c->hook, '\0', sizeof(c->hook)));
	CHECK(c->bz.n_allow <= BLUEZ_MAX_LISTED && c->bz.n_deny <= BLUEZ_MAX_LISTED);
	why = config_check(c);
	CHECK(!why || *why);
	n = config_hook_argv(c, buf, sizeof(buf), argv);
	CHECK(n >= -1 && n <= CONFIG_HOOK_ARGS);
	if (n >= 0) {
		CHECK(argv[n] == NULL);
		for (i = 0; i < n; i++)
			CHECK(argv[i][0] && !strpbrk(argv[i], " \t"));
	}
}

static void fuzz_set(const uint8_t *data, size_t size)
{
	struct sw_config c;
	char *text = malloc(size + 3), *section, *key, *value, err[256];
	int rc;

	if (!text)
		return;
	memcpy(text, data, size);
	memset(text + size, 0, 3);
	/* three zeros after the input: key and value are at worst empty */
	section = text;
	key = section + strlen(section) + 1;
	value = key + strlen(key) + 1;
	config_defaults(&c, "127.0.0.1:8421", "/usr/share/spinewatch/web");
	err[0] = '\0';
	rc = config_set(&c, section, key, value, err, sizeof(err));
	CHECK(rc == 0 || rc == -1);
	CHECK(rc == 0 || err[0]);
	check_settings(&c);
	free(text);
}

static void fuzz_file(const uint8_t *data, size_t size)
{
	struct sw_config c, before;
	char path[64], err[512];
	int fd = memfd_create("fuzz-config", MFD_CLOEXEC), rc;

	if (fd < 0)
		return;
	if (write(fd, data, size) != (ssize_t)size) {
		close(fd);
		return;
	}
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	config_defaults(&c, "127.0.0.1:8421", "/usr/share/spinewatch/web");
	before = c;
	err[0] = '\0';
	rc = config_load(&c, path, false, err, sizeof(err));
	close(fd);
	CHECK(rc == 0 || rc == -1);
	if (rc) {
		/* "PATH:LINE: why" (or "PATH: why"), and nothing changed */
		CHECK(!strncmp(err, path, strlen(path)) && err[strlen(path)] == ':');
		CHECK(!memcmp(&c, &before, sizeof(c)));
	}
	check_settings(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size && data[0] == 0x01)
		fuzz_set(data + 1, size - 1);
	else
		fuzz_file(data, size);
	return 0;
}
