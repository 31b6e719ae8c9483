/*
 * bluez.c - BlueZ client over libdbus: match rules first, then the owner of
 * org.bluez and a GetManagedObjects snapshot; InterfacesAdded/Removed and
 * PropertiesChanged keep adapters, devices, GATT services and
 * characteristics current, keyed by object path (idempotent upserts). All
 * method calls are asynchronous; replies are matched to objects by path and
 * to the owner generation they were sent under, so nothing stale is applied
 * after bluetoothd restarts.
 */
#include "bluez.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "spine_profile.h"

#define BLUEZ_SERVICE "org.bluez"
#define IFACE_ADAPTER "org.bluez.Adapter1"
#define IFACE_DEVICE "org.bluez.Device1"
#define IFACE_SERVICE "org.bluez.GattService1"
#define IFACE_CHAR "org.bluez.GattCharacteristic1"
#define IFACE_OM "org.freedesktop.DBus.ObjectManager"
#define IFACE_PROPS "org.freedesktop.DBus.Properties"

#define MAX_OBJECTS 4096          /* adapters + devices + services + chars */
#define NAME_MAX_BYTES 64
#define CONNECT_TIMEOUT_MS 35000
#define CALL_TIMEOUT_MS 10000
#define RETRY_MIN_MS 1000
#define RETRY_MAX_MS 60000

struct bz_adapter {
	char *path;
	bool powered;
	struct bz_adapter *next;
};

struct bz_device {
	struct bluez *bz;
	char *path;
	char address[18];
	char *alias, *name;
	bool uuid_spine, uuid_microbit;
	bool connected, was_connected, connect_pending, retry_due;
	unsigned failures;
	struct loop_timer retry;
	bool reported;
	enum bluez_dev_state last_state;
	unsigned last_roles;
	struct bz_device *next;
};

struct bz_service {
	char *path, *device_path;
	char uuid[40];
	struct bz_service *next;
};

struct bz_char {
	char *path, *service_path;
	enum bluez_char_role role;
	bool subscribed, notify_pending;
	struct bz_char *next;
};

struct bluez {
	DBusConnection *conn;
	struct loop *loop;
	struct bluez_callbacks cb;
	void *user;
	char owner[256];          /* unique name of org.bluez's owner, "" if none */
	unsigned gen;             /* bumped on every owner change */
	bool filter_added;
	struct bz_adapter *adapters;
	struct bz_device *devices;
	struct bz_service *services;
	struct bz_char *chars;
	unsigned n_objects;
	struct bluez_stats stats;
	struct log_ratelimit rl_spoof, rl_bad, rl_call, rl_full;
};

/* Context of an asynchronous call: the object path and owner generation. */
struct call_ctx {
	struct bluez *bz;
	unsigned gen;
	char path[];
};

static void device_update(struct bz_device *d);

/* ---- small helpers ------------------------------------------------------ */

const char *bluez_profile_name(enum bluez_profile p)
{
	switch (p) {
	case BLUEZ_PROFILE_SPINE: return "spinewatch";
	case BLUEZ_PROFILE_MICROBIT: return "microbit";
	default: return "";
	}
}

const char *bluez_state_name(enum bluez_dev_state s)
{
	switch (s) {
	case BLUEZ_DEV_FOUND: return "found";
	case BLUEZ_DEV_CONNECTING: return "connecting";
	case BLUEZ_DEV_CONNECTED: return "connected";
	case BLUEZ_DEV_STREAMING: return "streaming";
	case BLUEZ_DEV_LOST: return "lost";
	case BLUEZ_DEV_GONE: return "gone";
	}
	return "unknown";
}

static bool valid_address(const char *s)
{
	int i;

	if (strlen(s) != 17)
		return false;
	for (i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

/* strdup capped to NAME_MAX_BYTES without splitting a UTF-8 sequence */
static char *name_dup(const char *s)
{
	size_t n = strlen(s);
	char *r;

	if (n > NAME_MAX_BYTES) {
		n = NAME_MAX_BYTES;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	r = malloc(n + 1);
	if (r) {
		memcpy(r, s, n);
		r[n] = '\0';
	}
	return r;
}

static bool path_under(const char *path, const char *parent)
{
	size_t n = strlen(parent);

	return strncmp(path, parent, n) == 0 && path[n] == '/';
}

static enum bluez_char_role role_for_uuid(const char *uuid)
{
	if (!strcasecmp(uuid, SPINE_POSTURE_UUID))
		return BLUEZ_CHAR_SPINE_POSTURE;
	if (!strcasecmp(uuid, SPINE_CRACK_UUID))
		return BLUEZ_CHAR_SPINE_CRACK;
	if (!strcasecmp(uuid, MICROBIT_ACCEL_DATA_UUID))
		return BLUEZ_CHAR_MICROBIT_ACCEL;
	return BLUEZ_CHAR_NONE;
}

/* ---- variant readers (every input is checked for its type) -------------- */

static bool var_string(DBusMessageIter *v, const char **out)
{
	int t = dbus_message_iter_get_arg_type(v);

	if (t != DBUS_TYPE_STRING && t != DBUS_TYPE_OBJECT_PATH)
		return false;
	dbus_message_iter_get_basic(v, out);
	return true;
}

static bool var_bool(DBusMessageIter *v, bool *out)
{
	dbus_bool_t b;

	if (dbus_message_iter_get_arg_type(v) != DBUS_TYPE_BOOLEAN)
		return false;
	dbus_message_iter_get_basic(v, &b);
	*out = b;
	return true;
}

static bool var_bytes(DBusMessageIter *v, const uint8_t **data, int *len)
{
	DBusMessageIter a;

	if (dbus_message_iter_get_arg_type(v) != DBUS_TYPE_ARRAY ||
	    dbus_message_iter_get_element_type(v) != DBUS_TYPE_BYTE)
		return false;
	dbus_message_iter_recurse(v, &a);
	dbus_message_iter_get_fixed_array(&a, data, len);
	return true;
}

/*
 * Walk an a{sv}: on each call, *key and *val are set to the next entry.
 * Returns false at the end or on a malformed entry.
 */
static bool dict_next(DBusMessageIter *dict, const char **key, DBusMessageIter *val)
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

static bool is_dict(DBusMessageIter *it, int value_type)
{
	DBusMessageIter e;

	if (dbus_message_iter_get_arg_type(it) != DBUS_TYPE_ARRAY ||
	    dbus_message_iter_get_element_type(it) != DBUS_TYPE_DICT_ENTRY)
		return false;
	dbus_message_iter_recurse(it, &e);
	if (dbus_message_iter_get_arg_type(&e) == DBUS_TYPE_INVALID)
		return true; /* empty */
	(void)value_type;
	return true;
}

/* ---- asynchronous calls ------------------------------------------------- */

static bool call(struct bluez *bz, DBusMessage *m, int timeout_ms,
		 DBusPendingCallNotifyFunction fn, const char *path)
{
	DBusPendingCall *pc = NULL;
	struct call_ctx *c;

	if (!m)
		return false;
	c = malloc(sizeof(*c) + strlen(path) + 1);
	if (!c) {
		dbus_message_unref(m);
		return false;
	}
	c->bz = bz;
	c->gen = bz->gen;
	strcpy(c->path, path);
	if (!dbus_connection_send_with_reply(bz->conn, m, &pc, timeout_ms) || !pc) {
		dbus_message_unref(m);
		free(c);
		return false;
	}
	dbus_message_unref(m);
	if (!dbus_pending_call_set_notify(pc, fn, c, free)) {
		dbus_pending_call_cancel(pc);
		dbus_pending_call_unref(pc);
		free(c);
		return false;
	}
	/* the connection holds its own reference until the reply comes */
	dbus_pending_call_unref(pc);
	return true;
}

/*
 * Steal the reply of a finished call. Returns NULL (and frees nothing the
 * caller owns) if the call belongs to an earlier owner of org.bluez.
 */
static DBusMessage *take_reply(DBusPendingCall *pc, struct call_ctx *c)
{
	DBusMessage *r = dbus_pending_call_steal_reply(pc);

	if (r && c->gen != c->bz->gen) {
		dbus_message_unref(r);
		return NULL;
	}
	return r;
}

static const char *reply_error(DBusMessage *r)
{
	if (dbus_message_get_type(r) != DBUS_MESSAGE_TYPE_ERROR)
		return NULL;
	return dbus_message_get_error_name(r);
}

static const char *reply_error_text(DBusMessage *r)
{
	const char *s = NULL;

	if (!dbus_message_get_args(r, NULL, DBUS_TYPE_STRING, &s, DBUS_TYPE_INVALID))
		return "";
	return s;
}

/* ---- lookups -------------------------------------------------------------- */

static struct bz_device *device_lookup(struct bluez *bz, const char *path)
{
	struct bz_device *d;

	for (d = bz->devices; d; d = d->next)
		if (!strcmp(d->path, path))
			return d;
	return NULL;
}

static struct bz_service *service_lookup(struct bluez *bz, const char *path)
{
	struct bz_service *s;

	for (s = bz->services; s; s = s->next)
		if (!strcmp(s->path, path))
			return s;
	return NULL;
}

static struct bz_char *char_lookup(struct bluez *bz, const char *path)
{
	struct bz_char *c;

	for (c = bz->chars; c; c = c->next)
		if (!strcmp(c->path, path))
			return c;
	return NULL;
}

/* The device a characteristic belongs to: through its service's Device
 * property, else by object path nesting as BlueZ lays them out. */
static struct bz_device *char_device(struct bluez *bz, const struct bz_char *c)
{
	struct bz_service *s = c->service_path ? service_lookup(bz, c->service_path) : NULL;
	struct bz_device *d;

	if (s && s->device_path && (d = device_lookup(bz, s->device_path)))
		return d;
	for (d = bz->devices; d; d = d->next)
		if (path_under(c->path, d->path))
			return d;
	return NULL;
}

static bool room_for_object(struct bluez *bz, const char *path)
{
	if (bz->n_objects < MAX_OBJECTS)
		return true;
	log_rl(&bz->rl_full, LOG_WARNING,
	       "bluez: more than %d objects, ignoring %s", MAX_OBJECTS, path);
	return false;
}

/* ---- device state ----------------------------------------------------- */

static unsigned device_roles(struct bz_device *d)
{
	struct bz_char *c;
	unsigned roles = 0;

	for (c = d->bz->chars; c; c = c->next) {
		if (c->role == BLUEZ_CHAR_NONE || char_device(d->bz, c) != d)
			continue;
		roles |= c->role == BLUEZ_CHAR_SPINE_CRACK ? BLUEZ_ROLE_SOUND : BLUEZ_ROLE_POSTURE;
	}
	return roles;
}

static enum bluez_profile device_profile(struct bz_device *d)
{
	struct bz_char *c;

	if (d->uuid_spine)
		return BLUEZ_PROFILE_SPINE;
	if (d->uuid_microbit)
		return BLUEZ_PROFILE_MICROBIT;
	for (c = d->bz->chars; c; c = c->next)
		if (c->role != BLUEZ_CHAR_NONE && char_device(d->bz, c) == d)
			return c->role == BLUEZ_CHAR_MICROBIT_ACCEL ?
				BLUEZ_PROFILE_MICROBIT : BLUEZ_PROFILE_SPINE;
	return BLUEZ_PROFILE_NONE;
}

static bool device_any_subscribed(struct bz_device *d)
{
	struct bz_char *c;

	for (c = d->bz->chars; c; c = c->next)
		if (c->subscribed && char_device(d->bz, c) == d)
			return true;
	return false;
}

static enum bluez_dev_state device_state(struct bz_device *d)
{
	if (!d->connected)
		return d->connect_pending ? BLUEZ_DEV_CONNECTING :
			d->was_connected ? BLUEZ_DEV_LOST : BLUEZ_DEV_FOUND;
	return device_any_subscribed(d) ? BLUEZ_DEV_STREAMING : BLUEZ_DEV_CONNECTED;
}

static void device_report(struct bz_device *d, enum bluez_dev_state state)
{
	struct bluez_device_info info;
	unsigned roles = device_roles(d);

	if (!d->address[0] || device_profile(d) == BLUEZ_PROFILE_NONE)
		return;
	if (d->reported && d->last_state == state && d->last_roles == roles)
		return;
	if (!d->reported || d->last_state != state)
		log_info("sensor %s (%s): %s", d->address,
			 d->alias ? d->alias : d->name ? d->name : "", bluez_state_name(state));
	d->reported = true;
	d->last_state = state;
	d->last_roles = roles;
	info.address = d->address;
	info.name = d->alias ? d->alias : d->name ? d->name : "";
	info.profile = device_profile(d);
	info.roles = roles;
	info.state = state;
	if (d->bz->cb.device_state)
		d->bz->cb.device_state(d->bz->user, &info);
}

/* ---- connecting and subscribing ---------------------------------------- */

static void connect_reply(DBusPendingCall *pc, void *data)
{
	struct call_ctx *c = data;
	DBusMessage *r = take_reply(pc, c);
	struct bz_device *d;
	const char *err;

	if (!r)
		return;
	d = device_lookup(c->bz, c->path);
	if (d) {
		d->connect_pending = false;
		if ((err = reply_error(r))) {
			d->failures++;
			log_rl(&c->bz->rl_call, LOG_WARNING, "bluez: Connect %s failed: %s %s",
			       d->address, err, reply_error_text(r));
		}
		device_update(d);
	}
	dbus_message_unref(r);
}

static void device_connect(struct bz_device *d)
{
	DBusMessage *m = dbus_message_new_method_call(BLUEZ_SERVICE, d->path,
						      IFACE_DEVICE, "Connect");

	log_debug("bluez: connecting %s", d->address);
	if (!call(d->bz, m, CONNECT_TIMEOUT_MS, connect_reply, d->path)) {
		log_rl(&d->bz->rl_call, LOG_ERR, "bluez: cannot send Connect to %s", d->path);
		d->failures++;
		return;
	}
	d->connect_pending = true;
}

static void notify_reply(DBusPendingCall *pc, void *data)
{
	struct call_ctx *c = data;
	DBusMessage *r = take_reply(pc, c);
	struct bz_char *ch;
	struct bz_device *d;
	const char *err;

	if (!r)
		return;
	ch = char_lookup(c->bz, c->path);
	if (ch) {
		ch->notify_pending = false;
		d = char_device(c->bz, ch);
		if ((err = reply_error(r))) {
			log_rl(&c->bz->rl_call, LOG_WARNING, "bluez: StartNotify %s failed: %s %s",
			       ch->path, err, reply_error_text(r));
			if (d) {
				d->failures++;
				loop_timer_cancel(&d->retry);
				loop_timer_start(&d->retry, RETRY_MIN_MS);
			}
		} else {
			ch->subscribed = true;
			log_debug("bluez: subscribed to %s", ch->path);
		}
		if (d)
			device_update(d);
	}
	dbus_message_unref(r);
}

static void char_subscribe(struct bluez *bz, struct bz_char *ch)
{
	DBusMessage *m = dbus_message_new_method_call(BLUEZ_SERVICE, ch->path,
						      IFACE_CHAR, "StartNotify");

	if (call(bz, m, CALL_TIMEOUT_MS, notify_reply, ch->path))
		ch->notify_pending = true;
	else
		log_rl(&bz->rl_call, LOG_ERR, "bluez: cannot send StartNotify to %s", ch->path);
}

static int64_t backoff_ms(unsigned failures)
{
	int64_t ms = RETRY_MIN_MS;

	while (failures-- > 1 && ms < RETRY_MAX_MS)
		ms *= 2;
	return ms < RETRY_MAX_MS ? ms : RETRY_MAX_MS;
}

static void retry_fire(struct loop_timer *t)
{
	struct bz_device *d = t->user;

	d->retry_due = true;
	device_update(d);
}

/* Drive one device towards streaming; report its state. */
static void device_update(struct bz_device *d)
{
	struct bluez *bz = d->bz;
	struct bz_char *c;

	if (device_profile(d) == BLUEZ_PROFILE_NONE || !bz->owner[0])
		return;
	if (!d->connected) {
		for (c = bz->chars; c; c = c->next)
			if (char_device(bz, c) == d)
				c->subscribed = false;
		if (!d->connect_pending && !d->retry.armed) {
			/* first contact: now; after a failure or a loss: backoff */
			if (d->retry_due || (d->failures == 0 && !d->was_connected)) {
				d->retry_due = false;
				device_connect(d);
			} else {
				loop_timer_start(&d->retry, backoff_ms(d->failures));
			}
		}
	} else if (!d->retry.armed) {
		d->retry_due = false;
		for (c = bz->chars; c; c = c->next)
			if (c->role != BLUEZ_CHAR_NONE && !c->subscribed && !c->notify_pending &&
			    char_device(bz, c) == d)
				char_subscribe(bz, c);
	}
	device_report(d, device_state(d));
}

/* ---- object upserts --------------------------------------------------- */

static void adapter_upsert(struct bluez *bz, const char *path, DBusMessageIter *props)
{
	struct bz_adapter *a;
	DBusMessageIter v;
	const char *key;

	for (a = bz->adapters; a; a = a->next)
		if (!strcmp(a->path, path))
			break;
	if (!a) {
		if (!room_for_object(bz, path) || !(a = calloc(1, sizeof(*a))) ||
		    !(a->path = strdup(path))) {
			free(a);
			return;
		}
		a->next = bz->adapters;
		bz->adapters = a;
		bz->n_objects++;
		log_info("bluez: adapter %s", path);
	}
	while (dict_next(props, &key, &v))
		if (!strcmp(key, "Powered"))
			var_bool(&v, &a->powered);
}

static void device_set_uuids(struct bz_device *d, DBusMessageIter *v)
{
	DBusMessageIter a;
	const char *u;

	if (dbus_message_iter_get_arg_type(v) != DBUS_TYPE_ARRAY ||
	    dbus_message_iter_get_element_type(v) != DBUS_TYPE_STRING)
		return;
	d->uuid_spine = d->uuid_microbit = false;
	dbus_message_iter_recurse(v, &a);
	while (dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_STRING) {
		dbus_message_iter_get_basic(&a, &u);
		if (!strcasecmp(u, SPINE_SERVICE_UUID))
			d->uuid_spine = true;
		else if (!strcasecmp(u, MICROBIT_ACCEL_SERVICE_UUID))
			d->uuid_microbit = true;
		dbus_message_iter_next(&a);
	}
}

static void replace_str(char **dst, const char *src)
{
	char *n = name_dup(src);

	if (n) {
		free(*dst);
		*dst = n;
	}
}

static void device_apply(struct bz_device *d, DBusMessageIter *props)
{
	DBusMessageIter v;
	const char *key, *s;
	bool b;

	while (dict_next(props, &key, &v)) {
		if (!strcmp(key, "Address") && var_string(&v, &s)) {
			if (valid_address(s))
				snprintf(d->address, sizeof(d->address), "%s", s);
			else
				log_rl(&d->bz->rl_bad, LOG_WARNING,
				       "bluez: %s has an invalid Address", d->path);
		} else if (!strcmp(key, "Alias") && var_string(&v, &s)) {
			replace_str(&d->alias, s);
		} else if (!strcmp(key, "Name") && var_string(&v, &s)) {
			replace_str(&d->name, s);
		} else if (!strcmp(key, "UUIDs")) {
			device_set_uuids(d, &v);
		} else if (!strcmp(key, "Connected") && var_bool(&v, &b)) {
			if (b && !d->connected) {
				d->was_connected = true;
				d->failures = 0;
			}
			d->connected = b;
		}
	}
}

static struct bz_device *device_upsert(struct bluez *bz, const char *path, DBusMessageIter *props)
{
	struct bz_device *d = device_lookup(bz, path);

	if (!d) {
		if (!room_for_object(bz, path) || !(d = calloc(1, sizeof(*d))) ||
		    !(d->path = strdup(path))) {
			free(d);
			return NULL;
		}
		d->bz = bz;
		loop_timer_init(&d->retry, bz->loop, retry_fire, d);
		d->next = bz->devices;
		bz->devices = d;
		bz->n_objects++;
	}
	device_apply(d, props);
	return d;
}

static void service_upsert(struct bluez *bz, const char *path, DBusMessageIter *props)
{
	struct bz_service *s = service_lookup(bz, path);
	DBusMessageIter v;
	const char *key, *str;

	if (!s) {
		if (!room_for_object(bz, path) || !(s = calloc(1, sizeof(*s))) ||
		    !(s->path = strdup(path))) {
			free(s);
			return;
		}
		s->next = bz->services;
		bz->services = s;
		bz->n_objects++;
	}
	while (dict_next(props, &key, &v)) {
		if (!strcmp(key, "UUID") && var_string(&v, &str))
			snprintf(s->uuid, sizeof(s->uuid), "%s", str);
		else if (!strcmp(key, "Device") && var_string(&v, &str)) {
			char *p = strdup(str);

			if (p) {
				free(s->device_path);
				s->device_path = p;
			}
		}
	}
}

static void char_notification(struct bluez *bz, struct bz_char *c, DBusMessageIter *v)
{
	struct bz_device *d = char_device(bz, c);
	const uint8_t *data = NULL;
	int len = 0;

	if (!var_bytes(v, &data, &len)) {
		bz->stats.bad_signals++;
		log_rl(&bz->rl_bad, LOG_WARNING, "bluez: %s: Value is not a byte array", c->path);
		return;
	}
	if (!d || !d->address[0] || c->role == BLUEZ_CHAR_NONE)
		return;
	bz->stats.notifications++;
	if (bz->cb.notification)
		bz->cb.notification(bz->user, d->address, c->role, data, (size_t)len);
}

static struct bz_char *char_upsert(struct bluez *bz, const char *path, DBusMessageIter *props,
				   bool values_are_notifications)
{
	struct bz_char *c = char_lookup(bz, path);
	DBusMessageIter v;
	const char *key, *str;

	if (!c) {
		if (!room_for_object(bz, path) || !(c = calloc(1, sizeof(*c))) ||
		    !(c->path = strdup(path))) {
			free(c);
			return NULL;
		}
		c->next = bz->chars;
		bz->chars = c;
		bz->n_objects++;
	}
	while (dict_next(props, &key, &v)) {
		if (!strcmp(key, "UUID") && var_string(&v, &str)) {
			c->role = role_for_uuid(str);
		} else if (!strcmp(key, "Service") && var_string(&v, &str)) {
			char *p = strdup(str);

			if (p) {
				free(c->service_path);
				c->service_path = p;
			}
		} else if (!strcmp(key, "Value") && values_are_notifications) {
			char_notification(bz, c, &v);
		}
	}
	return c;
}

/* ---- removal ------------------------------------------------------------ */

static void char_free(struct bz_char *c)
{
	free(c->path);
	free(c->service_path);
	free(c);
}

static void device_free(struct bz_device *d)
{
	loop_timer_cancel(&d->retry);
	free(d->path);
	free(d->alias);
	free(d->name);
	free(d);
}

static void remove_char(struct bluez *bz, const char *path)
{
	struct bz_char **pp, *c;
	struct bz_device *d;

	for (pp = &bz->chars; (c = *pp); pp = &c->next)
		if (!strcmp(c->path, path)) {
			d = char_device(bz, c);
			*pp = c->next;
			char_free(c);
			bz->n_objects--;
			if (d)
				device_update(d);
			return;
		}
}

static void remove_service(struct bluez *bz, const char *path)
{
	struct bz_service **pp, *s;

	for (pp = &bz->services; (s = *pp); pp = &s->next)
		if (!strcmp(s->path, path)) {
			*pp = s->next;
			free(s->path);
			free(s->device_path);
			free(s);
			bz->n_objects--;
			return;
		}
}

static void remove_device(struct bluez *bz, const char *path, enum bluez_dev_state final)
{
	struct bz_device **pp, *d;

	for (pp = &bz->devices; (d = *pp); pp = &d->next)
		if (!strcmp(d->path, path)) {
			device_report(d, final);
			*pp = d->next;
			device_free(d);
			bz->n_objects--;
			return;
		}
}

static void remove_adapter(struct bluez *bz, const char *path)
{
	struct bz_adapter **pp, *a;

	for (pp = &bz->adapters; (a = *pp); pp = &a->next)
		if (!strcmp(a->path, path)) {
			log_info("bluez: adapter %s removed", a->path);
			*pp = a->next;
			free(a->path);
			free(a);
			bz->n_objects--;
			return;
		}
}

/* bluetoothd went away (maybe without InterfacesRemoved): forget it all. */
static void flush_all(struct bluez *bz)
{
	while (bz->chars) {
		struct bz_char *c = bz->chars;

		bz->chars = c->next;
		char_free(c);
	}
	while (bz->services)
		remove_service(bz, bz->services->path);
	while (bz->devices) {
		struct bz_device *d = bz->devices;

		d->connected = false;
		remove_device(bz, d->path, d->reported ? BLUEZ_DEV_LOST : BLUEZ_DEV_GONE);
	}
	while (bz->adapters)
		remove_adapter(bz, bz->adapters->path);
	bz->n_objects = 0;
}

/* ---- signals and snapshots --------------------------------------------- */

/* One object's a{sa{sv}} from InterfacesAdded or GetManagedObjects. */
static void apply_interfaces(struct bluez *bz, const char *path, DBusMessageIter *ifaces)
{
	DBusMessageIter entry, props;
	const char *iface;
	struct bz_device *d = NULL;
	struct bz_char *c = NULL;

	if (!is_dict(ifaces, DBUS_TYPE_ARRAY))
		goto bad;
	dbus_message_iter_recurse(ifaces, &entry);
	for (; dbus_message_iter_get_arg_type(&entry) == DBUS_TYPE_DICT_ENTRY;
	     dbus_message_iter_next(&entry)) {
		DBusMessageIter kv;

		dbus_message_iter_recurse(&entry, &kv);
		if (dbus_message_iter_get_arg_type(&kv) != DBUS_TYPE_STRING)
			goto bad;
		dbus_message_iter_get_basic(&kv, &iface);
		if (!dbus_message_iter_next(&kv) || !is_dict(&kv, DBUS_TYPE_VARIANT))
			goto bad;
		dbus_message_iter_recurse(&kv, &props);
		if (!strcmp(iface, IFACE_ADAPTER))
			adapter_upsert(bz, path, &props);
		else if (!strcmp(iface, IFACE_DEVICE))
			d = device_upsert(bz, path, &props);
		else if (!strcmp(iface, IFACE_SERVICE))
			service_upsert(bz, path, &props);
		else if (!strcmp(iface, IFACE_CHAR))
			c = char_upsert(bz, path, &props, false);
	}
	if (d)
		device_update(d);
	if (c && c->role != BLUEZ_CHAR_NONE && (d = char_device(bz, c)))
		device_update(d);
	return;
bad:
	bz->stats.bad_signals++;
	log_rl(&bz->rl_bad, LOG_WARNING, "bluez: malformed interfaces for %s", path);
}

static void on_interfaces_added(struct bluez *bz, DBusMessage *m)
{
	DBusMessageIter it;
	const char *path;

	if (!dbus_message_iter_init(m, &it) ||
	    dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_OBJECT_PATH)
		goto bad;
	dbus_message_iter_get_basic(&it, &path);
	if (!dbus_message_iter_next(&it))
		goto bad;
	apply_interfaces(bz, path, &it);
	return;
bad:
	bz->stats.bad_signals++;
	log_rl(&bz->rl_bad, LOG_WARNING, "bluez: malformed InterfacesAdded");
}

static void on_interfaces_removed(struct bluez *bz, DBusMessage *m)
{
	DBusMessageIter it, a;
	const char *path, *iface;

	if (!dbus_message_iter_init(m, &it) ||
	    dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_OBJECT_PATH)
		goto bad;
	dbus_message_iter_get_basic(&it, &path);
	if (!dbus_message_iter_next(&it) ||
	    dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_ARRAY ||
	    dbus_message_iter_get_element_type(&it) != DBUS_TYPE_STRING)
		goto bad;
	dbus_message_iter_recurse(&it, &a);
	for (; dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_STRING; dbus_message_iter_next(&a)) {
		dbus_message_iter_get_basic(&a, &iface);
		if (!strcmp(iface, IFACE_CHAR))
			remove_char(bz, path);
		else if (!strcmp(iface, IFACE_SERVICE))
			remove_service(bz, path);
		else if (!strcmp(iface, IFACE_DEVICE))
			remove_device(bz, path, BLUEZ_DEV_GONE);
		else if (!strcmp(iface, IFACE_ADAPTER))
			remove_adapter(bz, path);
	}
	return;
bad:
	bz->stats.bad_signals++;
	log_rl(&bz->rl_bad, LOG_WARNING, "bluez: malformed InterfacesRemoved");
}

static void on_properties_changed(struct bluez *bz, DBusMessage *m)
{
	DBusMessageIter it, props, v;
	const char *iface, *path = dbus_message_get_path(m), *key;
	struct bz_device *d;
	struct bz_char *c;

	if (!path || !dbus_message_iter_init(m, &it) ||
	    dbus_message_iter_get_arg_type(&it) != DBUS_TYPE_STRING)
		goto bad;
	dbus_message_iter_get_basic(&it, &iface);
	if (!dbus_message_iter_next(&it) || !is_dict(&it, DBUS_TYPE_VARIANT))
		goto bad;
	dbus_message_iter_recurse(&it, &props);
	if (!strcmp(iface, IFACE_CHAR)) {
		if (!(c = char_lookup(bz, path)))
			return;
		while (dict_next(&props, &key, &v))
			if (!strcmp(key, "Value"))
				char_notification(bz, c, &v);
	} else if (!strcmp(iface, IFACE_DEVICE)) {
		if (!(d = device_lookup(bz, path)))
			return;
		device_apply(d, &props);
		device_update(d);
	} else if (!strcmp(iface, IFACE_ADAPTER)) {
		adapter_upsert(bz, path, &props);
	}
	return;
bad:
	bz->stats.bad_signals++;
	log_rl(&bz->rl_bad, LOG_WARNING, "bluez: malformed PropertiesChanged on %s",
	       path ? path : "?");
}

static void managed_objects_reply(DBusPendingCall *pc, void *data)
{
	struct call_ctx *c = data;
	DBusMessage *r = take_reply(pc, c);
	DBusMessageIter it, objs, kv;
	const char *path, *err;
	unsigned n = 0;

	if (!r)
		return;
	if ((err = reply_error(r))) {
		log_warn("bluez: GetManagedObjects failed: %s %s", err, reply_error_text(r));
		goto out;
	}
	if (!dbus_message_iter_init(r, &it) || !is_dict(&it, DBUS_TYPE_ARRAY))
		goto bad;
	dbus_message_iter_recurse(&it, &objs);
	for (; dbus_message_iter_get_arg_type(&objs) == DBUS_TYPE_DICT_ENTRY;
	     dbus_message_iter_next(&objs)) {
		dbus_message_iter_recurse(&objs, &kv);
		if (dbus_message_iter_get_arg_type(&kv) != DBUS_TYPE_OBJECT_PATH)
			goto bad;
		dbus_message_iter_get_basic(&kv, &path);
		if (!dbus_message_iter_next(&kv))
			goto bad;
		apply_interfaces(c->bz, path, &kv);
		n++;
	}
	log_info("bluez: %u objects from %s", n, c->bz->owner);
	goto out;
bad:
	c->bz->stats.bad_signals++;
	log_warn("bluez: malformed GetManagedObjects reply");
out:
	dbus_message_unref(r);
}

static void get_managed_objects(struct bluez *bz)
{
	DBusMessage *m = dbus_message_new_method_call(BLUEZ_SERVICE, "/", IFACE_OM,
						      "GetManagedObjects");

	if (!call(bz, m, CALL_TIMEOUT_MS, managed_objects_reply, "/"))
		log_error("bluez: cannot send GetManagedObjects");
}

static void set_owner(struct bluez *bz, const char *owner)
{
	if (!strcmp(bz->owner, owner))
		return;
	if (bz->owner[0]) {
		log_warn("bluez: org.bluez (%s) went away", bz->owner);
		flush_all(bz);
	}
	snprintf(bz->owner, sizeof(bz->owner), "%s", owner);
	bz->gen++;
	if (owner[0]) {
		log_info("bluez: org.bluez is %s", owner);
		get_managed_objects(bz);
	} else {
		log_info("bluez: waiting for org.bluez (bluetoothd)");
	}
}

static void name_owner_reply(DBusPendingCall *pc, void *data)
{
	struct call_ctx *c = data;
	DBusMessage *r = take_reply(pc, c);
	const char *owner = NULL;

	if (!r)
		return;
	if (!reply_error(r) &&
	    dbus_message_get_args(r, NULL, DBUS_TYPE_STRING, &owner, DBUS_TYPE_INVALID))
		set_owner(c->bz, owner);
	else
		log_info("bluez: waiting for org.bluez (bluetoothd)");
	dbus_message_unref(r);
}

static DBusHandlerResult filter(DBusConnection *conn, DBusMessage *m, void *data)
{
	struct bluez *bz = data;
	const char *sender = dbus_message_get_sender(m);

	(void)conn;
	if (dbus_message_get_type(m) != DBUS_MESSAGE_TYPE_SIGNAL)
		return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;

	if (dbus_message_is_signal(m, DBUS_INTERFACE_DBUS, "NameOwnerChanged")) {
		const char *name, *old, *new_owner;

		if (!sender || strcmp(sender, DBUS_SERVICE_DBUS) ||
		    !dbus_message_get_args(m, NULL, DBUS_TYPE_STRING, &name, DBUS_TYPE_STRING, &old,
					   DBUS_TYPE_STRING, &new_owner, DBUS_TYPE_INVALID))
			return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
		if (!strcmp(name, BLUEZ_SERVICE))
			set_owner(bz, new_owner);
		return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
	}

	if (!dbus_message_is_signal(m, IFACE_OM, "InterfacesAdded") &&
	    !dbus_message_is_signal(m, IFACE_OM, "InterfacesRemoved") &&
	    !dbus_message_is_signal(m, IFACE_PROPS, "PropertiesChanged"))
		return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;

	if (!bz->owner[0] || !sender || strcmp(sender, bz->owner)) {
		const char *path = dbus_message_get_path(m);

		/* only our own match rules route these here; anything else is spoofed */
		if (path && (!strcmp(path, "/") || !strncmp(path, "/org/bluez", 10))) {
			bz->stats.spoofed_signals++;
			log_rl(&bz->rl_spoof, LOG_WARNING,
			       "bluez: ignoring %s on %s from %s, which does not own org.bluez",
			       dbus_message_get_member(m), path, sender ? sender : "?");
		}
		return DBUS_HANDLER_RESULT_NOT_YET_HANDLED;
	}
	if (dbus_message_is_signal(m, IFACE_OM, "InterfacesAdded"))
		on_interfaces_added(bz, m);
	else if (dbus_message_is_signal(m, IFACE_OM, "InterfacesRemoved"))
		on_interfaces_removed(bz, m);
	else
		on_properties_changed(bz, m);
	return DBUS_HANDLER_RESULT_HANDLED;
}

/* ---- public --------------------------------------------------------------- */

struct bluez *bluez_new(DBusConnection *conn, struct loop *loop,
			const struct bluez_callbacks *cb, void *user)
{
	struct bluez *bz = calloc(1, sizeof(*bz));

	if (!bz)
		return NULL;
	bz->conn = conn;
	bz->loop = loop;
	bz->cb = *cb;
	bz->user = user;
	return bz;
}

static const char *const match_rules[] = {
	"type='signal',sender='" DBUS_SERVICE_DBUS "',interface='" DBUS_INTERFACE_DBUS
	"',member='NameOwnerChanged',arg0='" BLUEZ_SERVICE "'",
	"type='signal',sender='" BLUEZ_SERVICE "',interface='" IFACE_OM "',path='/'",
	"type='signal',sender='" BLUEZ_SERVICE "',interface='" IFACE_PROPS
	"',member='PropertiesChanged',path_namespace='/org/bluez'",
};

int bluez_start(struct bluez *bz)
{
	DBusMessage *m;
	const char *name = BLUEZ_SERVICE;
	size_t i;

	if (!dbus_connection_add_filter(bz->conn, filter, bz, NULL))
		return -1;
	bz->filter_added = true;
	/* match rules first, so nothing between them and the snapshot is missed */
	for (i = 0; i < sizeof(match_rules) / sizeof(match_rules[0]); i++)
		dbus_bus_add_match(bz->conn, match_rules[i], NULL);
	m = dbus_message_new_method_call(DBUS_SERVICE_DBUS, DBUS_PATH_DBUS, DBUS_INTERFACE_DBUS,
					 "GetNameOwner");
	if (!m || !dbus_message_append_args(m, DBUS_TYPE_STRING, &name, DBUS_TYPE_INVALID)) {
		if (m)
			dbus_message_unref(m);
		return -1;
	}
	return call(bz, m, CALL_TIMEOUT_MS, name_owner_reply, "/") ? 0 : -1;
}

void bluez_free(struct bluez *bz)
{
	if (!bz)
		return;
	if (bz->filter_added)
		dbus_connection_remove_filter(bz->conn, filter, bz);
	bz->cb.device_state = NULL;
	bz->cb.notification = NULL;
	flush_all(bz);
	bz->gen++;
	free(bz);
}

void bluez_get_stats(const struct bluez *bz, struct bluez_stats *st)
{
	const struct bz_device *d;
	const struct bz_char *c;

	*st = bz->stats;
	st->devices = st->characteristics = 0;
	for (d = bz->devices; d; d = d->next)
		st->devices++;
	for (c = bz->chars; c; c = c->next)
		st->characteristics++;
}
