/*
 * bluez_agent.c - the pairing agent (see bluez_agent.h). BlueZ calls it
 * during Device1.Pair() that we ask for; with NoInputNoOutput BlueZ uses
 * "just works" pairing and asks at most for a confirmation or an
 * authorization, which we give for sensors we adopt and refuse otherwise.
 */
#include "bluez_agent.h"

#include <stdlib.h>
#include <string.h>

#include "dbus_util.h"
#include "log.h"

#define IFACE_AGENT "org.bluez.Agent1"
#define IFACE_AGENT_MANAGER "org.bluez.AgentManager1"
#define ERR_REJECTED "org.bluez.Error.Rejected"
#define ERR_CANCELED "org.bluez.Error.Canceled"

struct bluez_agent {
	DBusConnection *conn;
	struct bluez_agent_ops ops;
	void *user;
	bool exported;
	struct bluez_agent_stats st;
	struct log_ratelimit rl;
};

static DBusHandlerResult reply(struct bluez_agent *a, DBusMessage *m, const char *error,
			       const char *text)
{
	DBusMessage *r = error ? dbus_message_new_error(m, error, text)
			       : dbus_message_new_method_return(m);

	if (r) {
		dbus_connection_send(a->conn, r, NULL);
		dbus_message_unref(r);
	}
	return DBUS_HANDLER_RESULT_HANDLED;
}

/* The device path argument of a request, checked. */
static const char *device_arg(DBusMessage *m)
{
	DBusMessageIter it;
	const char *path = NULL;

	if (!dbus_message_iter_init(m, &it) ||
	    dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_OBJECT_PATH)
		return NULL;
	dbus_message_iter_get_basic(&it, &path);
	return path;
}

static DBusHandlerResult agent_message(DBusConnection *conn, DBusMessage *m, void *data)
{
	struct bluez_agent *a = data;
	const char *member = dbus_message_get_member(m), *sender = dbus_message_get_sender(m);
	const char *owner = a->ops.owner(a->user), *dev;

	(void)conn;
	if (dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_METHOD_CALL || !member)
		return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
	if (!dbus_message_has_interface(m, IFACE_AGENT))
		return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
	if (!owner[0] || !sender || strcmp(sender, owner)) {
		a->st.foreign++;
		log_rl(&a->rl, LOG_WARNING, "agent: refusing %s from %s, which does not own org.bluez",
		       member, sender ? sender : "?");
		return reply(a, m, ERR_REJECTED, "not org.bluez");
	}
	a->st.requests++;
	if (!strcmp(member, "Release")) {
		a->st.registered = false;
		log_info("agent: released by bluetoothd");
		return reply(a, m, NULL, NULL);
	}
	if (!strcmp(member, "Cancel") || !strcmp(member, "DisplayPasskey"))
		return reply(a, m, NULL, NULL);
	if (!strcmp(member, "RequestConfirmation") || !strcmp(member, "RequestAuthorization") ||
	    !strcmp(member, "AuthorizeService")) {
		dev = device_arg(m);
		if (dev && a->ops.accept(a->user, dev)) {
			a->st.accepted++;
			log_info("agent: %s for %s: accepted", member, dev);
			return reply(a, m, NULL, NULL);
		}
		a->st.refused++;
		log_rl(&a->rl, LOG_NOTICE, "agent: %s for %s: refused (not a sensor we adopt)",
		       member, dev ? dev : "?");
		return reply(a, m, ERR_REJECTED, "not a spinewatch sensor");
	}
	/* RequestPinCode, DisplayPinCode, RequestPasskey: nobody can type or read one */
	a->st.refused++;
	log_rl(&a->rl, LOG_NOTICE, "agent: %s refused: spinewatch pairs without input or display",
	       member);
	return reply(a, m, ERR_REJECTED, "no input or display");
}

static const DBusObjectPathVTable agent_vtable = {
	.message_function = agent_message,
};

struct bluez_agent *bluez_agent_new(DBusConnection *conn, const struct bluez_agent_ops *ops,
				    void *user)
{
	struct bluez_agent *a = calloc(1, sizeof(*a));

	if (!a)
		return NULL;
	a->conn = conn;
	a->ops = *ops;
	a->user = user;
	if (!dbus_connection_register_object_path(conn, BLUEZ_AGENT_PATH, &agent_vtable, a)) {
		free(a);
		return NULL;
	}
	a->exported = true;
	return a;
}

static void register_reply(struct du_call *c, DBusMessage *r)
{
	struct bluez_agent *a = c->owner;
	const char *err = du_error_name(r);

	if (err && strcmp(err, "org.bluez.Error.AlreadyExists")) {
		log_warn("agent: RegisterAgent failed: %s %s (sensors that demand pairing "
			 "must be paired by hand, see README)", err, du_error_text(r));
		return;
	}
	a->st.registered = true;
	log_info("agent: registered (%s)", BLUEZ_AGENT_CAPABILITY);
}

void bluez_agent_register(struct bluez_agent *a, const unsigned *gen)
{
	const char *path = BLUEZ_AGENT_PATH, *cap = BLUEZ_AGENT_CAPABILITY;
	DBusMessage *m = dbus_message_new_method_call("org.bluez", "/org/bluez",
						      IFACE_AGENT_MANAGER, "RegisterAgent");

	a->st.registered = false;
	if (m && !dbus_message_append_args(m, DBUS_TYPE_OBJECT_PATH, &path,
					   DBUS_TYPE_STRING, &cap, DBUS_TYPE_INVALID)) {
		dbus_message_unref(m);
		m = NULL;
	}
	if (!du_call_async(a->conn, m, 10000, register_reply, a, gen, "/org/bluez", 0))
		log_error("agent: cannot send RegisterAgent");
}

void bluez_agent_free(struct bluez_agent *a)
{
	if (!a)
		return;
	if (a->exported)
		dbus_connection_unregister_object_path(a->conn, BLUEZ_AGENT_PATH);
	free(a);
}

void bluez_agent_get_stats(const struct bluez_agent *a, struct bluez_agent_stats *st)
{
	*st = a->st;
}
