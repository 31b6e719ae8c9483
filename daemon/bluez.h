/*
 * bluez.h - the BlueZ client: tracks org.bluez's adapters, devices, GATT
 * services and characteristics over D-Bus, connects to devices that offer a
 * supported sensor service, subscribes to their sensor characteristics and
 * hands every notification's bytes, undecoded, to its user. Only signals
 * from the current unique-name owner of org.bluez are believed.
 */
#ifndef SW_BLUEZ_H
#define SW_BLUEZ_H

#include <stddef.h>
#include <stdint.h>

#include <dbus/dbus.h>

#include "loop.h"

enum bluez_char_role {
	BLUEZ_CHAR_NONE = 0,
	BLUEZ_CHAR_SPINE_POSTURE,
	BLUEZ_CHAR_SPINE_CRACK,
	BLUEZ_CHAR_MICROBIT_ACCEL,
};

enum bluez_profile {
	BLUEZ_PROFILE_NONE = 0,
	BLUEZ_PROFILE_SPINE,
	BLUEZ_PROFILE_MICROBIT,
};

enum bluez_dev_state {
	BLUEZ_DEV_FOUND,       /* known, not connected */
	BLUEZ_DEV_CONNECTING,
	BLUEZ_DEV_CONNECTED,   /* waiting for characteristics / subscriptions */
	BLUEZ_DEV_STREAMING,   /* at least one characteristic subscribed */
	BLUEZ_DEV_LOST,        /* was connected, is not; reconnecting */
	BLUEZ_DEV_GONE,        /* the device object disappeared */
};

#define BLUEZ_ROLE_POSTURE (1u << 0)
#define BLUEZ_ROLE_SOUND   (1u << 1)

struct bluez_device_info {
	const char *address;   /* "AA:BB:CC:DD:EE:FF" */
	const char *name;      /* Alias, else Name, else "" */
	enum bluez_profile profile;
	unsigned roles;        /* BLUEZ_ROLE_* from the characteristics seen */
	enum bluez_dev_state state;
};

struct bluez_callbacks {
	void (*device_state)(void *user, const struct bluez_device_info *info);
	void (*notification)(void *user, const char *address, enum bluez_char_role role,
			     const uint8_t *data, size_t len);
};

struct bluez;

struct bluez *bluez_new(DBusConnection *conn, struct loop *loop,
			const struct bluez_callbacks *cb, void *user);
/* Adds match rules, then looks for org.bluez's owner and its objects. */
int bluez_start(struct bluez *bz);
void bluez_free(struct bluez *bz);

const char *bluez_profile_name(enum bluez_profile p);
const char *bluez_state_name(enum bluez_dev_state s);

/* counters for logs/metrics */
struct bluez_stats {
	uint64_t spoofed_signals;   /* signals from someone not owning org.bluez */
	uint64_t bad_signals;       /* malformed signals from the owner */
	uint64_t notifications;
	unsigned devices, characteristics;
};
void bluez_get_stats(const struct bluez *bz, struct bluez_stats *st);

#endif
