/*
 * bluez_agent.h - spinewatch's org.bluez.Agent1 (capability NoInputNoOutput),
 * so a sensor that demands pairing pairs with no person present. It answers
 * only the current owner of org.bluez, and only for devices its user says
 * it is adopting; PIN and passkey entry are refused (nobody can type one).
 */
#ifndef SW_BLUEZ_AGENT_H
#define SW_BLUEZ_AGENT_H

#include <stdbool.h>

#include <dbus/dbus.h>

#define BLUEZ_AGENT_PATH "/io/spinewatch/agent"
#define BLUEZ_AGENT_CAPABILITY "NoInputNoOutput"

struct bluez_agent_ops {
	/* unique name of org.bluez's owner, "" if none */
	const char *(*owner)(void *user);
	/* may this device (object path) pair / use this service? */
	bool (*accept)(void *user, const char *device_path);
};

struct bluez_agent;

struct bluez_agent *bluez_agent_new(DBusConnection *conn, const struct bluez_agent_ops *ops,
				    void *user);
/* RegisterAgent with the current owner (call on every new owner). */
void bluez_agent_register(struct bluez_agent *a, const unsigned *gen);
void bluez_agent_free(struct bluez_agent *a);

struct bluez_agent_stats {
	unsigned requests, accepted, refused, foreign;
	bool registered;
};
void bluez_agent_get_stats(const struct bluez_agent *a, struct bluez_agent_stats *st);

#endif
