/*
 * dbus_util.c - libdbus helpers (see dbus_util.h).
 */
#include "dbus_util.h"

#include <stdlib.h>
#include <string.h>

bool du_var_string(DBusMessageIter *v, const char **out)
{
	int t = dbus_message_iter_get_arg_type(v);

	if (t != DBUS_TYPE_STRING && t != DBUS_TYPE_OBJECT_PATH)
		return false;
	dbus_message_iter_get_basic(v, out);
	return true;
}

bool du_var_bool(DBusMessageIter *v, bool *out)
{
	dbus_bool_t b;

	if (dbus_message_iter_get_arg_type(v) != DBUS_TYPE_BOOLEAN)
		return false;
	dbus_message_iter_get_basic(v, &b);
	*out = b;
	return true;
}

bool du_var_bytes(DBusMessageIter *v, const uint8_t **data, int *len)
{
	DBusMessageIter a;

	if (dbus_message_iter_get_arg_type(v) != DBUS_TYPE_ARRAY ||
	    dbus_message_iter_get_element_type(v) != DBUS_TYPE_BYTE)
		return false;
	dbus_message_iter_recurse(v, &a);
	dbus_message_iter_get_fixed_array(&a, data, len);
	return true;
}

bool du_var_int(DBusMessageIter *v, int64_t *out)
{
	DBusBasicValue b;

	switch (dbus_message_iter_get_arg_type(v)) {
	case DBUS_TYPE_BYTE: dbus_message_iter_get_basic(v, &b); *out = b.byt; return true;
	case DBUS_TYPE_INT16: dbus_message_iter_get_basic(v, &b); *out = b.i16; return true;
	case DBUS_TYPE_UINT16: dbus_message_iter_get_basic(v, &b); *out = b.u16; return true;
	case DBUS_TYPE_INT32: dbus_message_iter_get_basic(v, &b); *out = b.i32; return true;
	case DBUS_TYPE_UINT32: dbus_message_iter_get_basic(v, &b); *out = b.u32; return true;
	case DBUS_TYPE_INT64: dbus_message_iter_get_basic(v, &b); *out = b.i64; return true;
	default: return false;
	}
}

bool du_is_dict(DBusMessageIter *it)
{
	return dbus_message_iter_get_arg_type(it) == DBUS_TYPE_ARRAY &&
	       dbus_message_iter_get_element_type(it) == DBUS_TYPE_DICT_ENTRY;
}

bool du_dict_next(DBusMessageIter *dict, const char **key, DBusMessageIter *val)
{
	DBusMessageIter entry;

	while (dbus_message_iter_get_arg_type(dict) == DBUS_TYPE_DICT_ENTRY) {
		dbus_message_iter_recurse(dict, &entry);
		dbus_message_iter_next(dict);
		if (dbus_message_iter_get_arg_type(&entry) != DBUS_TYPE_STRING)
			continue;
		dbus_message_iter_get_basic(&entry, key);
		if (!dbus_message_iter_next(&entry) ||
		    dbus_message_iter_get_arg_type(&entry) != DBUS_TYPE_VARIANT)
			continue;
		dbus_message_iter_recurse(&entry, val);
		return true;
	}
	return false;
}

bool du_dict_open(DBusMessageIter *it, DBusMessageIter *dict)
{
	return dbus_message_iter_open_container(it, DBUS_TYPE_ARRAY, "{sv}", dict);
}

static bool entry_open(DBusMessageIter *dict, const char *key, const char *sig,
		       DBusMessageIter *entry, DBusMessageIter *var)
{
	return dbus_message_iter_open_container(dict, DBUS_TYPE_DICT_ENTRY, NULL, entry) &&
	       dbus_message_iter_append_basic(entry, DBUS_TYPE_STRING, &key) &&
	       dbus_message_iter_open_container(entry, DBUS_TYPE_VARIANT, sig, var);
}

static bool entry_close(DBusMessageIter *dict, DBusMessageIter *entry, DBusMessageIter *var)
{
	return dbus_message_iter_close_container(entry, var) &&
	       dbus_message_iter_close_container(dict, entry);
}

bool du_dict_add_string(DBusMessageIter *dict, const char *key, const char *val)
{
	DBusMessageIter entry, var;

	return entry_open(dict, key, "s", &entry, &var) &&
	       dbus_message_iter_append_basic(&var, DBUS_TYPE_STRING, &val) &&
	       entry_close(dict, &entry, &var);
}

bool du_dict_add_strings(DBusMessageIter *dict, const char *key, const char *const *vals, int n)
{
	DBusMessageIter entry, var, arr;
	int i;

	if (!entry_open(dict, key, "as", &entry, &var) ||
	    !dbus_message_iter_open_container(&var, DBUS_TYPE_ARRAY, "s", &arr))
		return false;
	for (i = 0; i < n; i++)
		if (!dbus_message_iter_append_basic(&arr, DBUS_TYPE_STRING, &vals[i]))
			return false;
	return dbus_message_iter_close_container(&var, &arr) && entry_close(dict, &entry, &var);
}

bool du_dict_close(DBusMessageIter *it, DBusMessageIter *dict)
{
	return dbus_message_iter_close_container(it, dict);
}

const char *du_error_name(DBusMessage *r)
{
	if (dbus_message_get_type(r) != DBUS_MESSAGE_TYPE_ERROR)
		return NULL;
	return dbus_message_get_error_name(r);
}

const char *du_error_text(DBusMessage *r)
{
	const char *s = NULL;

	if (!dbus_message_get_args(r, NULL, DBUS_TYPE_STRING, &s, DBUS_TYPE_INVALID))
		return "";
	return s;
}

struct pending {
	du_reply_fn fn;
	struct du_call call;   /* last: flexible path */
};

static void pending_notify(DBusPendingCall *pc, void *data)
{
	struct pending *p = data;
	DBusMessage *r = dbus_pending_call_steal_reply(pc);

	if (!r)
		return;
	if (*p->call.gen == p->call.sent_gen)
		p->fn(&p->call, r);
	dbus_message_unref(r);
}

bool du_call_async(DBusConnection *conn, DBusMessage *m, int timeout_ms, du_reply_fn fn,
		   void *owner, const unsigned *gen, const char *path, intptr_t tag)
{
	DBusPendingCall *pc = NULL;
	struct pending *p;

	if (!m)
		return false;
	p = malloc(sizeof(*p) + strlen(path) + 1);
	if (!p) {
		dbus_message_unref(m);
		return false;
	}
	p->fn = fn;
	p->call.owner = owner;
	p->call.gen = gen;
	p->call.sent_gen = *gen;
	p->call.tag = tag;
	strcpy(p->call.path, path);
	if (!dbus_connection_send_with_reply(conn, m, &pc, timeout_ms) || !pc) {
		dbus_message_unref(m);
		free(p);
		return false;
	}
	dbus_message_unref(m);
	if (!dbus_pending_call_set_notify(pc, pending_notify, p, free)) {
		dbus_pending_call_cancel(pc);
		dbus_pending_call_unref(pc);
		free(p);
		return false;
	}
	/* the connection holds its own reference until the reply comes */
	dbus_pending_call_unref(pc);
	return true;
}
