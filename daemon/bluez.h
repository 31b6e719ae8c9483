/*
 * bluez.h - the BlueZ client: tracks org.bluez's adapters, devices, GATT
 * services and characteristics over D-Bus; discovers, adopts, pairs,
 * connects and subscribes to sensors (AcquireNotify, else StartNotify),
 * reconnects with backoff, and hands every notification's bytes, undecoded,
 * to its user together with each sensor's state and health. Only signals
 * from the current unique-name owner of org.bluez are believed.
 */
#ifndef SW_BLUEZ_H
#define SW_BLUEZ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <dbus/dbus.h>

#include "loop.h"
#include "profiles.h"

enum bluez_dev_state {
	BLUEZ_DEV_DISCOVERED,  /* known, not connected, nothing under way */
	BLUEZ_DEV_CONNECTING,
	BLUEZ_DEV_PAIRING,
	BLUEZ_DEV_RESOLVING,   /* connected, waiting for GATT characteristics */
	BLUEZ_DEV_SUBSCRIBED,  /* subscribed, no data yet */
	BLUEZ_DEV_STREAMING,   /* data arrives */
	BLUEZ_DEV_LOST,        /* the link went down */
	BLUEZ_DEV_WAITING,     /* waiting to retry */
	BLUEZ_DEV_GONE,        /* the device object disappeared */
};

#define BLUEZ_ROLE_POSTURE (1u << 0)
#define BLUEZ_ROLE_SOUND   (1u << 1)

#define BLUEZ_NO_BATTERY (-1)
#define BLUEZ_NO_RSSI    INT16_MIN

struct bluez_device_info {
	const char *address;   /* "AA:BB:CC:DD:EE:FF" */
	const char *name;      /* Alias, else Name, else "" */
	enum sw_profile profile;
	unsigned roles;        /* BLUEZ_ROLE_* from the characteristics seen */
	enum bluez_dev_state state;
	const char *reason;    /* why the last state change happened */
	int battery;           /* 0-100 or BLUEZ_NO_BATTERY */
	int rssi;              /* dBm or BLUEZ_NO_RSSI */
	const char *notify;    /* "acquire", "start" or NULL */
	unsigned period_ms;    /* sample period the device reported, 0 unknown */
};

struct bluez_callbacks {
	/* state or reason changed (a feed event) */
	void (*device_state)(void *user, const struct bluez_device_info *info);
	/* battery, RSSI, notify path or period changed (a status update) */
	void (*device_health)(void *user, const struct bluez_device_info *info);
	void (*notification)(void *user, const char *address, enum sw_char_role role,
			     const uint8_t *data, size_t len);
};

#define BLUEZ_MAX_LISTED 32

struct bluez_config {
	char allow[BLUEZ_MAX_LISTED][18];   /* empty: adopt by profile */
	unsigned n_allow;
	char deny[BLUEZ_MAX_LISTED][18];
	unsigned n_deny;
	unsigned profiles;        /* SW_PROFILE_BIT mask */
	bool discovery;           /* discover while a wanted sensor is missing */
	bool acquire;             /* try AcquireNotify first */
	unsigned backoff_min_ms, backoff_max_ms;
	unsigned sensor_period_ms;   /* micro:bit / Thingy sample period */
};

void bluez_config_defaults(struct bluez_config *c);
/* "AA:BB:..." (any case) into the allow/deny list; -1 if invalid or full */
int bluez_config_allow(struct bluez_config *c, const char *addr);
int bluez_config_deny(struct bluez_config *c, const char *addr);
/* "spinewatch,microbit" -> mask; -1 on an unknown name */
int bluez_config_profiles(struct bluez_config *c, const char *list);

struct bluez;

struct bluez *bluez_new(DBusConnection *conn, struct loop *loop, const struct bluez_config *cfg,
			const struct bluez_callbacks *cb, void *user);
/* Adds match rules, exports the agent, then looks for org.bluez's owner. */
int bluez_start(struct bluez *bz);
void bluez_free(struct bluez *bz);
/*
 * New settings at run time (SIGHUP): adoption is decided again (a sensor no
 * longer wanted is disconnected and dropped from the feed), discovery
 * follows, backoff limits apply to the next retry, the notify path and
 * sample period to the next connection.
 */
void bluez_set_config(struct bluez *bz, const struct bluez_config *cfg);

const char *bluez_state_name(enum bluez_dev_state s);
bool bluez_valid_address(const char *s);

/* counters for logs/metrics */
struct bluez_stats {
	uint64_t spoofed_signals;   /* signals from someone not owning org.bluez */
	uint64_t bad_signals;       /* malformed signals from the owner */
	uint64_t notifications;
	unsigned devices, characteristics;
	bool discovering;
};
void bluez_get_stats(const struct bluez *bz, struct bluez_stats *st);

#endif
