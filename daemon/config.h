/*
 * config.h - spinewatchd's settings: their defaults, the INI config file
 * (read with libinih), and the one table that maps every setting to its
 * [section] key and its command-line option, so the file and the command
 * line are validated by the same code and report errors the same way
 * (file:line for the file, --option for the command line).
 */
#ifndef SW_CONFIG_H
#define SW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "access.h"
#include "alerts.h"
#include "history.h"
#include "bluez.h"
#include "breaks.h"
#include "cracks.h"
#include "detector.h"
#include "mqtt_config.h"

#define CONFIG_DEFAULT_PATH "/etc/spinewatch/spinewatchd.conf"
#define CONFIG_DEFAULT_STATE_DIR "/var/lib/spinewatch"
#define CONFIG_PATH_MAX 512

struct sw_config {
	char listen[128];
	char web_root[CONFIG_PATH_MAX];
	char state_dir[CONFIG_PATH_MAX];
	size_t ring_size;
	unsigned max_clients;
	struct history_config history; /* retention of events and of days */
	int log_level;                 /* LOG_WARNING, LOG_INFO or LOG_DEBUG */
	struct detector_config det;
	struct bluez_config bz;
	struct alerts_config alerts;
	struct breaks_config breaks;
	struct cracks_config cracks;   /* merge_ms 0: no episodes, no patterns */
	char tls_cert[CONFIG_PATH_MAX]; /* PEM certificate (chain) for https/wss, "" for none */
	char tls_key[CONFIG_PATH_MAX];  /* its private key */
	unsigned client_timeout_s;      /* a feed client taking nothing this long is dropped */
	struct access_config access;    /* tokens, loopback role, accepted hosts and origins */
	char hook[CONFIG_PATH_MAX];    /* alert hook command line, "" for none */
	int64_t hook_timeout_ms;
	struct mqtt_config mqtt;       /* [mqtt]: off unless enabled */
};

#define CONFIG_HOOK_ARGS 16
/* Split c->hook on blanks into argv (NULL-terminated, pointing into buf);
 * returns the count, 0 for no hook. No shell, no quoting. */
int config_hook_argv(const struct sw_config *c, char *buf, size_t buflen,
		     const char *argv[CONFIG_HOOK_ARGS + 1]);

/* Defaults; web_root and listen are given by the caller (build-time paths). */
void config_defaults(struct sw_config *c, const char *listen, const char *web_root);

/*
 * Set one setting from text. section/key as in the file ("posture",
 * "threshold_deg"). Returns 0, or -1 with a message for people in err
 * (without the file/option prefix). List settings (allow, deny) add to the
 * list; the caller decides whether a scalar may be set twice.
 */
int config_set(struct sw_config *c, const char *section, const char *key, const char *value,
	       char *err, size_t errlen);

/* The [section] key a long command-line option sets, or NULL. */
bool config_option_key(const char *option, const char **section, const char **key);

/*
 * Read an INI file over c (settings not in the file keep their values).
 * Unknown sections and keys, bad values, a scalar set twice, and syntax
 * errors fail with "PATH:LINE: ..." in err. If missing_ok and the file does
 * not exist, returns 1 and leaves c alone. 0 on success, -1 on error.
 */
int config_load(struct sw_config *c, const char *path, bool missing_ok, char *err, size_t errlen);

/* Checks across settings (backoff-max >= backoff-min, detector); NULL if fine. */
const char *config_check(const struct sw_config *c);

#endif
