/*
 * dbus_util.h - small libdbus helpers shared by the BlueZ client and its
 * agent: type-checked readers for variants and a{sv} dictionaries (every
 * input is checked, nothing is trusted), and asynchronous method calls
 * whose replies carry the object path they were for and the "generation"
 * (org.bluez owner) they were sent under, so a reply from a bluetoothd
 * that has since gone away is dropped instead of applied.
 */
#ifndef SW_DBUS_UTIL_H
#define SW_DBUS_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include <dbus/dbus.h>

bool du_var_string(DBusMessageIter *v, const char **out);   /* s or o */
bool du_var_bool(DBusMessageIter *v, bool *out);
bool du_var_bytes(DBusMessageIter *v, const uint8_t **data, int *len);   /* ay */
bool du_var_int(DBusMessageIter *v, int64_t *out);   /* y n q i u x */
/* Is *it an a{s?} dictionary (possibly empty)? */
bool du_is_dict(DBusMessageIter *it);
/* Walk an a{sv}: sets *key and *val to the next entry; false at the end. */
bool du_dict_next(DBusMessageIter *dict, const char **key, DBusMessageIter *val);
/* Append a{sv} entries: begin, add, close. */
bool du_dict_open(DBusMessageIter *it, DBusMessageIter *dict);
bool du_dict_add_string(DBusMessageIter *dict, const char *key, const char *val);
bool du_dict_add_strings(DBusMessageIter *dict, const char *key, const char *const *vals, int n);
bool du_dict_close(DBusMessageIter *it, DBusMessageIter *dict);

/* The error name of a reply, NULL if it is not an error; and its text. */
const char *du_error_name(DBusMessage *r);
const char *du_error_text(DBusMessage *r);

/* An asynchronous call's context, handed to its reply function. */
struct du_call {
	void *owner;          /* what issued it (struct bluez *) */
	const unsigned *gen;  /* the owner's live generation counter */
	unsigned sent_gen;
	intptr_t tag;         /* caller's extra word */
	char path[];
};
typedef void (*du_reply_fn)(struct du_call *c, DBusMessage *reply);

/*
 * Send m (consumed) and call fn with the reply, unless *gen has changed
 * by then. Returns false if it could not be sent (fn is not called).
 */
bool du_call_async(DBusConnection *conn, DBusMessage *m, int timeout_ms, du_reply_fn fn,
		   void *owner, const unsigned *gen, const char *path, intptr_t tag);

#endif
