/*
 * bluez.c - BlueZ client over libdbus: match rules first, then the owner of
 * org.bluez and a GetManagedObjects snapshot; InterfacesAdded/Removed and
 * PropertiesChanged keep adapters, devices, batteries, GATT services and
 * characteristics current, keyed by object path (idempotent upserts).
 *
 * Each adopted device runs a small state machine, driven by device_update()
 * after every change: connect (with backoff and jitter after failures),
 * pair when BlueZ says the sensor demands it, wait for the characteristic
 * objects, configure the sample period, subscribe (AcquireNotify, else
 * StartNotify), stream. Discovery runs while a wanted sensor is missing.
 * All method calls are asynchronous; replies are matched to objects by path
 * and to the owner generation they were sent under, so nothing stale is
 * applied after bluetoothd restarts.
 */
#include "bluez.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "backoff.h"
#include "bluez_agent.h"
#include "dbus_util.h"
#include "log.h"
#include "microbit.h"
#include "thingy52.h"
#include "thingy52_sound.h"

#define BLUEZ_SERVICE "org.bluez"
#define IFACE_ADAPTER "org.bluez.Adapter1"
#define IFACE_DEVICE "org.bluez.Device1"
#define IFACE_BATTERY "org.bluez.Battery1"
#define IFACE_SERVICE "org.bluez.GattService1"
#define IFACE_CHAR "org.bluez.GattCharacteristic1"
#define IFACE_OM "org.freedesktop.DBus.ObjectManager"
#define IFACE_PROPS "org.freedesktop.DBus.Properties"
#define ERR(x) "org.bluez.Error." x

#define MAX_OBJECTS 4096          /* adapters + devices + services + chars */
#define NAME_MAX_BYTES 64
#define CONNECT_TIMEOUT_MS 35000
#define PAIR_TIMEOUT_MS 60000
#define CALL_TIMEOUT_MS 10000
#define RESOLVE_TIMEOUT_MS 15000  /* connected, no sensor characteristic yet */
#define NOTIFY_BATCH 64           /* packets read per wake-up from a notify fd */
#define NOTIFY_MAX_LEN 517        /* largest ATT value */

enum sub_state { SUB_NONE, SUB_PENDING, SUB_ACQUIRED, SUB_NOTIFYING };
enum call_tag { TAG_ACQUIRE = 1, TAG_START, TAG_WRITE_PERIOD, TAG_READ_PERIOD,
		TAG_READ_CONFIG, TAG_WRITE_CONFIG, TAG_READ_SOUND, TAG_WRITE_SOUND };

struct bz_adapter {
	struct bluez *bz;
	char *path;
	bool powered;
	bool disc_on, disc_pending;   /* our discovery session */
	struct bz_adapter *next;
};

struct bz_char {
	struct bluez *bz;
	char *path, *service_path;
	enum sw_char_role role;
	bool can_notify, can_indicate;
	enum sub_state sub;
	bool acquire_refused;     /* use StartNotify on this connection */
	struct loop_fd *fd;       /* AcquireNotify socket */
	struct bz_char *next;
};

struct bz_device {
	struct bluez *bz;
	char *path;
	char address[18];
	char *alias, *name;
	enum sw_profile adv_profile;  /* from advertised UUIDs or name */
	bool connected, resolved, paired, trusted;
	bool unsupported;         /* resolved without any supported GATT service */
	bool connect_pending, pair_pending, config_started;
	bool sound_config_started;    /* the Thingy's microphone set to ADPCM */
	bool got_data;            /* a notification since this connection's subscribe */
	unsigned link;            /* bumped on every link loss: tags subscribe calls */
	bool retry_due;
	int battery, rssi;
	unsigned period_ms, asked_period_ms;
	const char *notify;       /* "acquire" / "start" / NULL */
	struct backoff backoff;
	struct loop_timer retry, resolve;
	char reason[160];
	/* what was last reported */
	bool reported;
	enum bluez_dev_state last_state;
	char last_reason[160];
	unsigned last_roles, last_period;
	int last_battery, last_rssi;
	const char *last_notify;
	struct bz_device *next;
};

struct bz_service {
	char *path, *device_path;
	char uuid[40];
	struct bz_service *next;
};

struct bluez {
	DBusConnection *conn;
	struct loop *loop;
	struct bluez_config cfg;
	struct bluez_callbacks cb;
	void *user;
	struct bluez_agent *agent;
	char owner[256];          /* unique name of org.bluez's owner, "" if none */
	unsigned gen;             /* bumped on every owner change */
	bool filter_added;
	struct bz_adapter *adapters;
	struct bz_device *devices;
	struct bz_service *services;
	struct bz_char *chars;
	unsigned n_objects;
	uint64_t seed;
	struct bluez_stats stats;
	struct log_ratelimit rl_spoof, rl_bad, rl_call, rl_full;
};

static void device_update(struct bz_device *d);
static void discovery_update(struct bluez *bz);

/* ---- configuration -------------------------------------------------------- */

void bluez_config_defaults(struct bluez_config *c)
{
	memset(c, 0, sizeof(*c));
	c->profiles = SW_PROFILES_ALL;
	c->discovery = true;
	c->acquire = true;
	c->backoff_min_ms = 1000;
	c->backoff_max_ms = 60000;
	c->sensor_period_ms = 80;
}

bool bluez_valid_address(const char *s)
{
	int i;

	if (!s || strlen(s) != 17)
		return false;
	for (i = 0; i < 17; i++)
		if (i % 3 == 2 ? s[i] != ':' : !isxdigit((unsigned char)s[i]))
			return false;
	return true;
}

static int list_add(char list[][18], unsigned *n, const char *addr)
{
	int i;

	if (!bluez_valid_address(addr) || *n >= BLUEZ_MAX_LISTED)
		return -1;
	for (i = 0; i < 17; i++)
		list[*n][i] = (char)toupper((unsigned char)addr[i]);
	list[*n][17] = '\0';
	(*n)++;
	return 0;
}

int bluez_config_allow(struct bluez_config *c, const char *addr)
{
	return list_add(c->allow, &c->n_allow, addr);
}

int bluez_config_deny(struct bluez_config *c, const char *addr)
{
	return list_add(c->deny, &c->n_deny, addr);
}

int bluez_config_profiles(struct bluez_config *c, const char *list)
{
	char buf[128], *tok, *save = NULL;
	unsigned mask = 0;
	enum sw_profile p;

	if (snprintf(buf, sizeof(buf), "%s", list) >= (int)sizeof(buf))
		return -1;
	for (tok = strtok_r(buf, ", ", &save); tok; tok = strtok_r(NULL, ", ", &save)) {
		if ((p = sw_profile_by_name(tok)) == SW_PROFILE_NONE)
			return -1;
		mask |= SW_PROFILE_BIT(p);
	}
	if (!mask)
		return -1;
	c->profiles = mask;
	return 0;
}

static bool in_list(const char list[][18], unsigned n, const char *addr)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (!strcasecmp(list[i], addr))
			return true;
	return false;
}

/* ---- small helpers ------------------------------------------------------ */

const char *bluez_state_name(enum bluez_dev_state s)
{
	switch (s) {
	case BLUEZ_DEV_DISCOVERED: return "discovered";
	case BLUEZ_DEV_CONNECTING: return "connecting";
	case BLUEZ_DEV_PAIRING: return "pairing";
	case BLUEZ_DEV_RESOLVING: return "resolving";
	case BLUEZ_DEV_SUBSCRIBED: return "subscribed";
	case BLUEZ_DEV_STREAMING: return "streaming";
	case BLUEZ_DEV_LOST: return "lost";
	case BLUEZ_DEV_WAITING: return "waiting";
	case BLUEZ_DEV_GONE: return "gone";
	}
	return "unknown";
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

static void replace_str(char **dst, const char *src)
{
	char *n = name_dup(src);

	if (n) {
		free(*dst);
		*dst = n;
	}
}

static void replace_path(char **dst, const char *src)
{
	char *p = strdup(src);

	if (p) {
		free(*dst);
		*dst = p;
	}
}

static bool path_under(const char *path, const char *parent)
{
	size_t n = strlen(parent);

	return strncmp(path, parent, n) == 0 && path[n] == '/';
}

static bool call(struct bluez *bz, DBusMessage *m, int timeout_ms, du_reply_fn fn,
		 const char *path, intptr_t tag)
{
	return du_call_async(bz->conn, m, timeout_ms, fn, bz, &bz->gen, path, tag);
}

static DBusMessage *method(const char *path, const char *iface, const char *member)
{
	return dbus_message_new_method_call(BLUEZ_SERVICE, path, iface, member);
}

/* Append an empty a{sv} (the options argument of GATT calls). */
static bool append_empty_dict(DBusMessage *m)
{
	DBusMessageIter it, d;

	dbus_message_iter_init_append(m, &it);
	return du_dict_open(&it, &d) && du_dict_close(&it, &d);
}

static bool is_error(const char *err, const char *name)
{
	return err && !strcmp(err, name);
}

/* BlueZ's ways of saying "this needs pairing/encryption first" */
static bool is_auth_error(const char *err, bool not_permitted_counts)
{
	return is_error(err, ERR("NotAuthorized")) || is_error(err, ERR("AuthenticationFailed")) ||
	       is_error(err, ERR("AuthenticationRejected")) ||
	       (not_permitted_counts && is_error(err, ERR("NotPermitted")));
}

/* ---- lookups -------------------------------------------------------------- */

static struct bz_adapter *adapter_lookup(struct bluez *bz, const char *path)
{
	struct bz_adapter *a;

	for (a = bz->adapters; a; a = a->next)
		if (!strcmp(a->path, path))
			return a;
	return NULL;
}

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

/* The device's adapter: the one whose path its path nests under. */
static struct bz_adapter *device_adapter(struct bz_device *d)
{
	struct bz_adapter *a;

	for (a = d->bz->adapters; a; a = a->next)
		if (path_under(d->path, a->path))
			return a;
	return NULL;
}

static struct bz_char *device_char(struct bz_device *d, enum sw_char_role role)
{
	struct bz_char *c;

	for (c = d->bz->chars; c; c = c->next)
		if (c->role == role && char_device(d->bz, c) == d)
			return c;
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

/* ---- what a device is ---------------------------------------------------- */

static unsigned device_roles(struct bz_device *d)
{
	struct bz_char *c;
	unsigned roles = 0;

	for (c = d->bz->chars; c; c = c->next) {
		if (!sw_char_role_notifies(c->role) || char_device(d->bz, c) != d)
			continue;
		roles |= sw_char_role_is_crack(c->role) ? BLUEZ_ROLE_SOUND : BLUEZ_ROLE_POSTURE;
	}
	return roles;
}

/* Resolved characteristics confirm the profile; before that, advertising. */
static enum sw_profile device_profile(struct bz_device *d)
{
	struct bz_char *c;

	for (c = d->bz->chars; c; c = c->next)
		if (sw_char_role_notifies(c->role) && char_device(d->bz, c) == d)
			return sw_char_role_profile(c->role);
	return d->adv_profile;
}

static bool profile_enabled(struct bluez *bz, enum sw_profile p)
{
	return p != SW_PROFILE_NONE && (bz->cfg.profiles & SW_PROFILE_BIT(p));
}

/* Is this a device we adopt? */
static bool device_wanted(struct bz_device *d)
{
	struct bluez *bz = d->bz;

	if (!d->address[0] || d->unsupported ||
	    in_list(bz->cfg.deny, bz->cfg.n_deny, d->address))
		return false;
	if (bz->cfg.n_allow)
		return in_list(bz->cfg.allow, bz->cfg.n_allow, d->address);
	return profile_enabled(bz, device_profile(d));
}

static const char *device_display_name(struct bz_device *d)
{
	return d->alias ? d->alias : d->name ? d->name : "";
}

static void device_set_adv_profile(struct bz_device *d, enum sw_profile p)
{
	if (p != SW_PROFILE_NONE)
		d->adv_profile = p;
}

static bool char_active(const struct bz_char *c)
{
	return c->sub == SUB_ACQUIRED || c->sub == SUB_NOTIFYING;
}

static bool device_any_subscribed(struct bz_device *d)
{
	struct bz_char *c;

	for (c = d->bz->chars; c; c = c->next)
		if (char_active(c) && char_device(d->bz, c) == d)
			return true;
	return false;
}

static enum bluez_dev_state device_state(struct bz_device *d)
{
	if (d->pair_pending)
		return BLUEZ_DEV_PAIRING;
	if (!d->connected) {
		struct bz_adapter *a = device_adapter(d);

		if (d->connect_pending)
			return BLUEZ_DEV_CONNECTING;
		return d->retry.armed || (a && !a->powered) ? BLUEZ_DEV_WAITING :
			BLUEZ_DEV_DISCOVERED;
	}
	if (device_any_subscribed(d))
		return d->got_data ? BLUEZ_DEV_STREAMING : BLUEZ_DEV_SUBSCRIBED;
	return d->retry.armed ? BLUEZ_DEV_WAITING : BLUEZ_DEV_RESOLVING;
}

static void fill_info(struct bz_device *d, struct bluez_device_info *info,
		      enum bluez_dev_state state)
{
	info->address = d->address;
	info->name = device_display_name(d);
	info->profile = device_profile(d);
	info->roles = device_roles(d);
	info->state = state;
	info->reason = d->reason;
	info->battery = d->battery;
	info->rssi = d->rssi;
	info->notify = d->notify;
	info->period_ms = d->period_ms;
}

/* Tell the user about a state/reason change, and separately about health. */
static void device_report_state(struct bz_device *d, enum bluez_dev_state state)
{
	struct bluez *bz = d->bz;
	struct bluez_device_info info;
	bool state_changed, health_changed;
	unsigned roles;

	if (!d->address[0] || !device_wanted(d))
		return;
	roles = device_roles(d);
	state_changed = !d->reported || d->last_state != state ||
			strcmp(d->last_reason, d->reason) || d->last_roles != roles;
	health_changed = d->reported && (d->last_battery != d->battery ||
					  d->last_rssi != d->rssi || d->last_notify != d->notify ||
					  d->last_period != d->period_ms);
	if (!state_changed && !health_changed)
		return;
	if (!d->reported || d->last_state != state || strcmp(d->last_reason, d->reason))
		log_info("sensor %s (%s): %s: %s", d->address, device_display_name(d),
			 bluez_state_name(state), d->reason);
	d->reported = true;
	d->last_state = state;
	snprintf(d->last_reason, sizeof(d->last_reason), "%s", d->reason);
	d->last_roles = roles;
	d->last_battery = d->battery;
	d->last_rssi = d->rssi;
	d->last_notify = d->notify;
	d->last_period = d->period_ms;
	fill_info(d, &info, state);
	if (state_changed && bz->cb.device_state)
		bz->cb.device_state(bz->user, &info);
	else if (health_changed && bz->cb.device_health)
		bz->cb.device_health(bz->user, &info);
}

static void device_report(struct bz_device *d)
{
	device_report_state(d, device_state(d));
}

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void set_reason(struct bz_device *d, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(d->reason, sizeof(d->reason), fmt, ap);
	va_end(ap);
}

/* A failed step: wait (with backoff and jitter) before the next attempt. */
static void device_fail(struct bz_device *d, const char *what, const char *err)
{
	int64_t delay = backoff_next(&d->backoff);

	set_reason(d, "%s%s%s; retry in %.1f s", what, err ? ": " : "", err ? err : "",
		   (double)delay / 1000.0);
	loop_timer_cancel(&d->retry);
	loop_timer_start(&d->retry, delay);
	d->retry_due = false;
}

/* ---- subscribing ---------------------------------------------------------- */

static void char_unsubscribe_local(struct bz_char *c)
{
	if (c->fd) {
		loop_fd_close(c->fd);
		c->fd = NULL;
	}
	c->sub = SUB_NONE;
}

static void deliver(struct bz_device *d, struct bz_char *c, const uint8_t *data, size_t len)
{
	struct bluez *bz = d->bz;

	bz->stats.notifications++;
	if (!d->got_data) {
		d->got_data = true;
		backoff_reset(&d->backoff);   /* a working link: the next loss starts afresh */
		set_reason(d, "data flowing (%s)", d->notify ? d->notify : "notify");
		device_report(d);
	}
	if (bz->cb.notification)
		bz->cb.notification(bz->user, d->address, c->role, data, len);
}

/* Has the other end of a SOCK_SEQPACKET socket closed? */
static bool peer_hung_up(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };

	return poll(&p, 1, 0) > 0 && (p.revents & (POLLHUP | POLLRDHUP | POLLERR));
}

static void char_fd_event(struct loop_fd *f, int fd, unsigned events, void *user)
{
	struct bz_char *c = user;
	struct bluez *bz = c->bz;
	struct bz_device *d = char_device(bz, c);
	uint8_t buf[NOTIFY_MAX_LEN];
	ssize_t n;
	int i;

	(void)f;
	if (events & LOOP_FD_HUP) {
		c->fd = NULL;   /* the loop has closed it */
		c->sub = SUB_NONE;
		if (d && d->connected) {
			/* closed under a live link: don't loop on it, use StartNotify */
			c->acquire_refused = true;
			log_rl(&bz->rl_call, LOG_NOTICE,
			       "bluez: notify socket of %s closed; using StartNotify", c->path);
			device_update(d);
		}
		return;
	}
	for (i = 0; i < NOTIFY_BATCH; i++) {
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
		/* an empty notification is a zero-length packet, not the end */
		if (n > 0 || (n == 0 && !peer_hung_up(fd))) {
			if (d && d->address[0])
				deliver(d, c, buf, (size_t)n);
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
			return;
		/* EOF or error: BlueZ ended the session */
		loop_fd_close(c->fd);
		c->fd = NULL;
		c->sub = SUB_NONE;
		if (d && d->connected) {
			c->acquire_refused = true;
			device_update(d);
		}
		return;
	}
}

static void device_pair(struct bz_device *d, const char *why);

static void subscribe_reply(struct du_call *cl, DBusMessage *r)
{
	struct bluez *bz = cl->owner;
	struct bz_char *c = char_lookup(bz, cl->path);
	struct bz_device *d = c ? char_device(bz, c) : NULL;
	const char *err = du_error_name(r);
	bool acquire = (cl->tag & 0xff) == TAG_ACQUIRE;
	int fd = -1;
	uint16_t mtu = 0;

	/* a reply for an earlier link of this device is stale */
	if (!c || c->sub != SUB_PENDING || !d || (unsigned)(cl->tag >> 8) != (d->link & 0xffffff))
		return;
	c->sub = SUB_NONE;
	if (!d || !d->connected) {
		if (!err && acquire &&
		    dbus_message_get_args(r, NULL, DBUS_TYPE_UNIX_FD, &fd, DBUS_TYPE_UINT16, &mtu,
					  DBUS_TYPE_INVALID))
			close(fd);
		return;
	}
	if (!err && acquire) {
		if (!dbus_message_get_args(r, NULL, DBUS_TYPE_UNIX_FD, &fd, DBUS_TYPE_UINT16, &mtu,
					   DBUS_TYPE_INVALID) || fd < 0) {
			err = "malformed AcquireNotify reply";
		} else {
			fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
			fcntl(fd, F_SETFD, FD_CLOEXEC);
			c->fd = loop_fd_add(bz->loop, fd, char_fd_event, c);
			if (!c->fd)
				err = "cannot watch the notify socket";
		}
		if (err) {
			c->acquire_refused = true;
			log_rl(&bz->rl_call, LOG_WARNING, "bluez: AcquireNotify %s: %s", c->path, err);
			device_update(d);
			return;
		}
		c->sub = SUB_ACQUIRED;
		d->notify = "acquire";
		log_debug("bluez: acquired notify socket of %s (mtu %u)", c->path, mtu);
		if (c->role == SW_CHAR_THINGY_MIC && mtu < THINGY52_MIC_MIN_MTU)
			log_rl(&bz->rl_bad, LOG_WARNING, "sensor %s: ATT MTU %u is below the %u a "
			       "microphone frame needs; its frames arrive cut short and are rejected",
			       d->address, (unsigned)mtu, (unsigned)THINGY52_MIC_MIN_MTU);
	} else if (!err || (!acquire && is_error(err, ERR("InProgress")))) {
		/* InProgress: our session is already being set up by BlueZ */
		c->sub = SUB_NOTIFYING;
		d->notify = "start";
		log_debug("bluez: notifying on %s", c->path);
	} else if (is_auth_error(err, !acquire) && !d->paired) {
		device_pair(d, err);
		return;
	} else if (acquire) {
		/* NotPermitted, InProgress, NotSupported, Failed, UnknownMethod... */
		log_info("bluez: AcquireNotify on %s refused (%s); falling back to StartNotify",
			 c->path, err);
		c->acquire_refused = true;
	} else {
		log_rl(&bz->rl_call, LOG_WARNING, "bluez: StartNotify %s failed: %s %s",
		       c->path, err, du_error_text(r));
		device_fail(d, "StartNotify failed", err);
		device_report(d);
		return;
	}
	if (char_active(c))
		set_reason(d, "subscribed (%s)", d->notify);
	device_update(d);
	discovery_update(bz);
}

static void char_subscribe(struct bz_device *d, struct bz_char *c)
{
	struct bluez *bz = d->bz;
	bool acquire = bz->cfg.acquire && !c->acquire_refused && c->can_notify;
	DBusMessage *m = method(c->path, IFACE_CHAR, acquire ? "AcquireNotify" : "StartNotify");

	if (m && acquire && !append_empty_dict(m)) {
		dbus_message_unref(m);
		m = NULL;
	}
	if (!call(bz, m, CALL_TIMEOUT_MS, subscribe_reply, c->path,
		  (acquire ? TAG_ACQUIRE : TAG_START) | (intptr_t)(d->link & 0xffffff) << 8)) {
		log_rl(&bz->rl_call, LOG_ERR, "bluez: cannot send %s to %s",
		       acquire ? "AcquireNotify" : "StartNotify", c->path);
		device_fail(d, "cannot send subscribe call", NULL);
		return;
	}
	c->sub = SUB_PENDING;
}

/* ---- configuring the sample period ---------------------------------------- */

static void config_reply(struct du_call *cl, DBusMessage *r);

static bool send_gatt_cb(struct bz_device *d, struct bz_char *c, const uint8_t *data, size_t len,
			 enum call_tag tag)
{
	DBusMessage *m = method(c->path, IFACE_CHAR, data ? "WriteValue" : "ReadValue");
	DBusMessageIter it, arr, dict;
	bool ok = m != NULL;

	if (ok) {
		dbus_message_iter_init_append(m, &it);
		if (data)
			ok = dbus_message_iter_open_container(&it, DBUS_TYPE_ARRAY, "y", &arr) &&
			     dbus_message_iter_append_fixed_array(&arr, DBUS_TYPE_BYTE, &data,
								  (int)len) &&
			     dbus_message_iter_close_container(&it, &arr);
		ok = ok && du_dict_open(&it, &dict) && du_dict_close(&it, &dict);
	}
	if (!ok) {
		if (m)
			dbus_message_unref(m);
		return false;
	}
	return call(d->bz, m, CALL_TIMEOUT_MS, config_reply, c->path, tag);
}

static void config_reply(struct du_call *cl, DBusMessage *r)
{
	struct bluez *bz = cl->owner;
	struct bz_char *c = char_lookup(bz, cl->path);
	struct bz_device *d = c ? char_device(bz, c) : NULL;
	const char *err = du_error_name(r);
	const uint8_t *data = NULL;
	int len = 0;
	DBusMessageIter it;

	if (!d || !d->connected)
		return;
	if (err) {
		if (is_auth_error(err, true) && !d->paired) {
			d->config_started = false;   /* again after pairing */
			d->sound_config_started = false;
			device_pair(d, err);
			return;
		}
		log_rl(&bz->rl_call, LOG_WARNING, "bluez: %s on %s failed: %s %s",
		       cl->tag == TAG_WRITE_PERIOD || cl->tag == TAG_WRITE_CONFIG ||
		       cl->tag == TAG_WRITE_SOUND ?
		       "WriteValue" : "ReadValue", c->path, err, du_error_text(r));
		return;   /* the sensor streams at its own rate */
	}
	if (cl->tag == TAG_READ_PERIOD || cl->tag == TAG_READ_CONFIG || cl->tag == TAG_READ_SOUND) {
		if (!dbus_message_iter_init(r, &it) || !du_var_bytes(&it, &data, &len)) {
			log_rl(&bz->rl_bad, LOG_WARNING, "bluez: ReadValue %s: not a byte array",
			       c->path);
			return;
		}
	}
	switch (cl->tag) {
	case TAG_WRITE_PERIOD:
		if (!send_gatt_cb(d, c, NULL, 0, TAG_READ_PERIOD))
			log_rl(&bz->rl_call, LOG_ERR, "bluez: cannot read back %s", c->path);
		break;
	case TAG_READ_PERIOD: {
		uint16_t ms;

		if (microbit_period_decode(data, (size_t)len, &ms) == SPINE_OK) {
			d->period_ms = ms;
			log_info("sensor %s: accelerometer period %u ms (asked for %u)", d->address,
				 (unsigned)ms, bz->cfg.sensor_period_ms);
		} else {
			log_rl(&bz->rl_bad, LOG_WARNING, "sensor %s: bad accelerometer period (%d bytes)",
			       d->address, len);
		}
		break;
	}
	case TAG_READ_CONFIG: {
		struct thingy52_motion_config mc;
		uint8_t out[THINGY52_MOTION_CONFIG_LEN];
		enum thingy52_err e = thingy52_motion_config_decode(data, (size_t)len, &mc);
		unsigned hz;

		if (e == THINGY52_ERR_LENGTH) {
			log_rl(&bz->rl_bad, LOG_WARNING, "sensor %s: motion configuration is %d bytes; "
			       "it keeps its own rate", d->address, len);
			break;
		}
		/* the firmware refuses a write with any field out of range */
		if (e != THINGY52_OK && thingy52_motion_config_clamp(&mc))
			log_info("sensor %s: motion configuration had %s out of range; clamped",
				 d->address, thingy52_err_name(e));
		hz = thingy52_config_set_rate(&mc, bz->cfg.sensor_period_ms);
		d->asked_period_ms = hz ? (1000u + hz / 2) / hz : 0;
		if (thingy52_motion_config_encode(&mc, out) != THINGY52_OK ||
		    !send_gatt_cb(d, c, out, sizeof(out), TAG_WRITE_CONFIG))
			log_rl(&bz->rl_call, LOG_ERR, "bluez: cannot write %s", c->path);
		break;
	}
	case TAG_WRITE_CONFIG:
		d->period_ms = d->asked_period_ms;
		log_info("sensor %s: motion processing at %u ms per sample", d->address, d->period_ms);
		break;
	case TAG_READ_SOUND: {
		struct thingy52_sound_config sc;
		uint8_t out[THINGY52_SOUND_CONFIG_LEN];

		if (thingy52_sound_config_decode(data, (size_t)len, &sc) == THINGY52_SOUND_ERR_LENGTH) {
			log_rl(&bz->rl_bad, LOG_WARNING, "sensor %s: sound configuration is %d bytes; "
			       "its microphone mode is left alone", d->address, len);
			break;
		}
		if (sc.mic_mode == THINGY52_MIC_MODE_ADPCM &&
		    sc.speaker_mode >= THINGY52_SPEAKER_MODE_MIN &&
		    sc.speaker_mode <= THINGY52_SPEAKER_MODE_MAX) {
			log_info("sensor %s: microphone streams ADPCM", d->address);
			break;
		}
		thingy52_sound_config_for_adpcm(&sc);
		if (thingy52_sound_config_encode(&sc, out) != THINGY52_SOUND_OK ||
		    !send_gatt_cb(d, c, out, sizeof(out), TAG_WRITE_SOUND))
			log_rl(&bz->rl_call, LOG_ERR, "bluez: cannot write %s", c->path);
		break;
	}
	case TAG_WRITE_SOUND:
		log_info("sensor %s: microphone set to ADPCM", d->address);
		break;
	default:
		break;
	}
	device_report(d);
}

/* Once per connection: ask the sensor for the configured sample period,
 * and a Thingy's microphone for ADPCM. */
static void device_configure(struct bz_device *d)
{
	struct bz_char *c;
	uint8_t buf[2];

	if (!d->sound_config_started && (c = device_char(d, SW_CHAR_THINGY_SOUND_CONFIG))) {
		d->sound_config_started = true;
		if (!send_gatt_cb(d, c, NULL, 0, TAG_READ_SOUND))
			log_rl(&d->bz->rl_call, LOG_ERR, "bluez: cannot read %s", c->path);
	}
	if (d->config_started)
		return;
	if ((c = device_char(d, SW_CHAR_MICROBIT_PERIOD))) {
		d->config_started = true;
		microbit_period_encode(d->bz->cfg.sensor_period_ms, buf);
		if (!send_gatt_cb(d, c, buf, sizeof(buf), TAG_WRITE_PERIOD))
			log_rl(&d->bz->rl_call, LOG_ERR, "bluez: cannot write %s", c->path);
	} else if ((c = device_char(d, SW_CHAR_THINGY_CONFIG))) {
		d->config_started = true;
		if (!send_gatt_cb(d, c, NULL, 0, TAG_READ_CONFIG))
			log_rl(&d->bz->rl_call, LOG_ERR, "bluez: cannot read %s", c->path);
	}
}

/* ---- connecting and pairing ------------------------------------------------ */

static void set_trusted(struct bz_device *d)
{
	DBusMessage *m = method(d->path, IFACE_PROPS, "Set");
	const char *iface = IFACE_DEVICE, *prop = "Trusted";
	DBusMessageIter it, var;
	dbus_bool_t yes = TRUE;

	if (!m)
		return;
	dbus_message_iter_init_append(m, &it);
	if (!dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &iface) ||
	    !dbus_message_iter_append_basic(&it, DBUS_TYPE_STRING, &prop) ||
	    !dbus_message_iter_open_container(&it, DBUS_TYPE_VARIANT, "b", &var) ||
	    !dbus_message_iter_append_basic(&var, DBUS_TYPE_BOOLEAN, &yes) ||
	    !dbus_message_iter_close_container(&it, &var)) {
		dbus_message_unref(m);
		return;
	}
	dbus_message_set_no_reply(m, TRUE);
	dbus_connection_send(d->bz->conn, m, NULL);
	dbus_message_unref(m);
	log_info("sensor %s: marked Trusted", d->address);
}

static void pair_reply(struct du_call *cl, DBusMessage *r)
{
	struct bz_device *d = device_lookup(cl->owner, cl->path);
	const char *err = du_error_name(r);
	struct bz_char *c;

	if (!d || !d->pair_pending)
		return;
	d->pair_pending = false;
	if (err && !is_error(err, ERR("AlreadyExists"))) {
		log_rl(&d->bz->rl_call, LOG_WARNING, "bluez: Pair %s failed: %s %s", d->address,
		       err, du_error_text(r));
		device_fail(d, "pairing failed", err);
		device_report(d);
		return;
	}
	d->paired = true;
	log_info("sensor %s: paired", d->address);
	set_reason(d, "paired");
	if (!d->trusted)
		set_trusted(d);
	/* subscriptions refused before pairing are tried again now */
	for (c = d->bz->chars; c; c = c->next)
		if (char_device(d->bz, c) == d && c->sub == SUB_NONE)
			c->acquire_refused = false;
	device_update(d);
}

static void device_pair(struct bz_device *d, const char *why)
{
	DBusMessage *m;

	if (d->pair_pending)
		return;
	m = method(d->path, IFACE_DEVICE, "Pair");
	if (!call(d->bz, m, PAIR_TIMEOUT_MS, pair_reply, d->path, 0)) {
		device_fail(d, "cannot send Pair", NULL);
		device_report(d);
		return;
	}
	d->pair_pending = true;
	set_reason(d, "pairing (BlueZ answered %s)", why);
	device_report(d);
}

static void connect_reply(struct du_call *cl, DBusMessage *r)
{
	struct bz_device *d = device_lookup(cl->owner, cl->path);
	const char *err = du_error_name(r);

	if (!d || !d->connect_pending)
		return;
	d->connect_pending = false;
	if (err && is_auth_error(err, false) && !d->paired) {
		device_pair(d, err);
		return;
	}
	if (err && !is_error(err, ERR("AlreadyConnected"))) {
		log_rl(&d->bz->rl_call, LOG_WARNING, "bluez: Connect %s failed: %s %s",
		       d->address, err, du_error_text(r));
		device_fail(d, "connect failed", err);
	}
	device_update(d);
}

static void device_connect(struct bz_device *d)
{
	DBusMessage *m = method(d->path, IFACE_DEVICE, "Connect");

	if (!call(d->bz, m, CONNECT_TIMEOUT_MS, connect_reply, d->path, 0)) {
		log_rl(&d->bz->rl_call, LOG_ERR, "bluez: cannot send Connect to %s", d->path);
		device_fail(d, "cannot send Connect", NULL);
		return;
	}
	d->connect_pending = true;
	set_reason(d, d->backoff.failures ? "connecting (attempt %u)" : "connecting",
		   d->backoff.failures + 1);
}

static void disconnect_device(struct bz_device *d)
{
	DBusMessage *m = method(d->path, IFACE_DEVICE, "Disconnect");

	if (!m)
		return;
	dbus_message_set_no_reply(m, TRUE);
	dbus_connection_send(d->bz->conn, m, NULL);
	dbus_message_unref(m);
}

static void retry_fire(struct loop_timer *t)
{
	struct bz_device *d = t->user;

	d->retry_due = true;
	device_update(d);
}

static void resolve_fire(struct loop_timer *t)
{
	struct bz_device *d = t->user;

	if (!d->connected || device_any_subscribed(d))
		return;
	if (d->resolved && !device_roles(d)) {
		/* adopted by its name or advertising, but it has none of our services */
		log_warn("sensor %s (%s): services resolved, none of them a supported sensor "
			 "service; leaving it alone", d->address, device_display_name(d));
		set_reason(d, "no supported sensor service; ignored until BlueZ forgets it");
		device_report_state(d, BLUEZ_DEV_GONE);
		d->unsupported = true;
		loop_timer_cancel(&d->retry);
		disconnect_device(d);
		discovery_update(d->bz);
		return;
	}
	log_rl(&d->bz->rl_call, LOG_WARNING, "sensor %s: no sensor characteristic %d s after "
	       "connecting; disconnecting", d->address, RESOLVE_TIMEOUT_MS / 1000);
	device_fail(d, "no sensor characteristic after connecting", NULL);
	disconnect_device(d);
	device_report(d);
}

/* The link went down (or never came up): forget per-connection state. */
static void device_link_down(struct bz_device *d)
{
	struct bz_char *c;

	for (c = d->bz->chars; c; c = c->next)
		if (char_device(d->bz, c) == d) {
			char_unsubscribe_local(c);
			c->acquire_refused = false;
		}
	d->got_data = false;
	d->config_started = false;
	d->sound_config_started = false;
	d->notify = NULL;
	loop_timer_cancel(&d->resolve);
}

/* Drive one device towards streaming; report its state. */
static void device_update(struct bz_device *d)
{
	struct bluez *bz = d->bz;
	struct bz_adapter *a = device_adapter(d);
	struct bz_char *c;

	if (!bz->owner[0] || !device_wanted(d))
		return;
	if (d->pair_pending || d->connect_pending) {
		device_report(d);
		return;
	}
	if (!d->connected) {
		device_link_down(d);
		if (a && !a->powered) {
			loop_timer_cancel(&d->retry);
			set_reason(d, "adapter %s is powered off", a->path);
		} else if (!d->retry.armed) {
			/* first contact: now; after a failure or a loss: when the timer says */
			if (d->retry_due || d->backoff.failures == 0) {
				d->retry_due = false;
				device_connect(d);
			} else {
				device_fail(d, "link down", NULL);
			}
		}
		device_report(d);
		return;
	}
	if (d->retry.armed) {   /* a step failed on a live link: wait */
		device_report(d);
		return;
	}
	d->retry_due = false;
	device_configure(d);
	for (c = bz->chars; c; c = c->next)
		if (sw_char_role_notifies(c->role) && c->sub == SUB_NONE && char_device(bz, c) == d)
			char_subscribe(d, c);
	if (!device_any_subscribed(d)) {
		if (!d->resolve.armed)
			loop_timer_start(&d->resolve, RESOLVE_TIMEOUT_MS);
		set_reason(d, "connected; resolving GATT characteristics");
	} else {
		loop_timer_cancel(&d->resolve);
	}
	device_report(d);
}

static void update_all(struct bluez *bz)
{
	struct bz_device *d;

	for (d = bz->devices; d; d = d->next)
		device_update(d);
	discovery_update(bz);
}

/* ---- discovery ------------------------------------------------------------ */

/* Is a wanted sensor missing (unknown, or not subscribed: a quiet crack
 * sensor sends nothing until a crack, and is not missing for that)? */
static bool sensor_missing(struct bluez *bz)
{
	struct bz_device *d;
	unsigned i, streaming = 0;

	if (bz->cfg.n_allow) {
		for (i = 0; i < bz->cfg.n_allow; i++) {
			for (d = bz->devices; d; d = d->next)
				if (!strcasecmp(d->address, bz->cfg.allow[i]))
					break;
			if (!d || !d->connected || !device_any_subscribed(d))
				return true;
		}
		return false;
	}
	for (d = bz->devices; d; d = d->next) {
		if (!device_wanted(d))
			continue;
		if (!d->connected || !device_any_subscribed(d))
			return true;
		streaming++;
	}
	return streaming == 0;
}

static void discovery_reply(struct du_call *cl, DBusMessage *r)
{
	struct bz_adapter *a = adapter_lookup(cl->owner, cl->path);
	const char *err = du_error_name(r);
	bool start = cl->tag == 1;

	if (!a)
		return;
	a->disc_pending = false;
	if (err && !(start && is_error(err, ERR("InProgress")))) {
		log_rl(&a->bz->rl_call, LOG_WARNING, "bluez: %s on %s failed: %s %s",
		       start ? "StartDiscovery" : "StopDiscovery", a->path, err, du_error_text(r));
		if (!start)
			a->disc_on = false;   /* nothing of ours is running */
		return;
	}
	a->disc_on = start;
	log_info("bluez: discovery %s on %s", start ? "started" : "stopped", a->path);
	discovery_update(a->bz);
}

static void filter_reply(struct du_call *cl, DBusMessage *r)
{
	struct bz_adapter *a = adapter_lookup(cl->owner, cl->path);
	const char *err = du_error_name(r);

	if (!a)
		return;
	if (err)   /* discover unfiltered rather than not at all */
		log_rl(&a->bz->rl_call, LOG_WARNING, "bluez: SetDiscoveryFilter on %s failed: %s %s",
		       a->path, err, du_error_text(r));
	if (!call(a->bz, method(a->path, IFACE_ADAPTER, "StartDiscovery"), CALL_TIMEOUT_MS,
		  discovery_reply, a->path, 1))
		a->disc_pending = false;
}

/* Transport "le"; service UUIDs only if every enabled profile advertises one. */
static DBusMessage *discovery_filter(struct bluez *bz, const char *path)
{
	DBusMessage *m = method(path, IFACE_ADAPTER, "SetDiscoveryFilter");
	const char *uuids[SW_PROFILE_COUNT];
	DBusMessageIter it, dict;
	int p, n = 0;
	bool all_advertise = true;

	if (!m)
		return NULL;
	for (p = SW_PROFILE_NONE + 1; p < SW_PROFILE_COUNT; p++) {
		const struct sw_profile_info *pi = sw_profile_info((enum sw_profile)p);

		if (!profile_enabled(bz, (enum sw_profile)p))
			continue;
		if (pi->advertised_uuid)
			uuids[n++] = pi->advertised_uuid;
		else
			all_advertise = false;
	}
	dbus_message_iter_init_append(m, &it);
	if (!du_dict_open(&it, &dict) || !du_dict_add_string(&dict, "Transport", "le") ||
	    (all_advertise && !bz->cfg.n_allow && n && !du_dict_add_strings(&dict, "UUIDs", uuids, n)) ||
	    !du_dict_close(&it, &dict)) {
		dbus_message_unref(m);
		return NULL;
	}
	return m;
}

static void discovery_update(struct bluez *bz)
{
	bool want = bz->cfg.discovery && bz->owner[0] && sensor_missing(bz);
	struct bz_adapter *a;

	for (a = bz->adapters; a; a = a->next) {
		if (a->disc_pending)
			continue;
		if (want && a->powered && !a->disc_on) {
			a->disc_pending = call(bz, discovery_filter(bz, a->path), CALL_TIMEOUT_MS,
					       filter_reply, a->path, 0);
		} else if (!want && a->disc_on) {
			a->disc_pending = call(bz, method(a->path, IFACE_ADAPTER, "StopDiscovery"),
					       CALL_TIMEOUT_MS, discovery_reply, a->path, 0);
		}
	}
}

/* ---- object upserts --------------------------------------------------- */

static void adapter_upsert(struct bluez *bz, const char *path, DBusMessageIter *props)
{
	struct bz_adapter *a = adapter_lookup(bz, path);
	DBusMessageIter v;
	const char *key;
	bool was_powered, b;

	if (!a) {
		if (!room_for_object(bz, path) || !(a = calloc(1, sizeof(*a))) ||
		    !(a->path = strdup(path))) {
			free(a);
			return;
		}
		a->bz = bz;
		a->next = bz->adapters;
		bz->adapters = a;
		bz->n_objects++;
		log_info("bluez: adapter %s", path);
	}
	was_powered = a->powered;
	while (du_dict_next(props, &key, &v)) {
		if (!strcmp(key, "Powered") && du_var_bool(&v, &b)) {
			a->powered = b;
		} else if (!strcmp(key, "Discovering") && du_var_bool(&v, &b) && !b) {
			a->disc_on = false;   /* whoever ran it, it has stopped */
		}
	}
	if (a->powered != was_powered) {
		struct bz_device *d;

		log_info("bluez: adapter %s powered %s", path, a->powered ? "on" : "off");
		if (!a->powered)
			a->disc_on = false;
		for (d = bz->devices; d; d = d->next)
			if (path_under(d->path, a->path)) {
				if (a->powered) {   /* a fresh start for its sensors */
					backoff_reset(&d->backoff);
					loop_timer_cancel(&d->retry);
				}
				device_update(d);
			}
	}
}

static void device_set_uuids(struct bz_device *d, DBusMessageIter *v)
{
	DBusMessageIter a;
	const char *u;

	if (dbus_message_iter_get_arg_type(v) != DBUS_TYPE_ARRAY ||
	    dbus_message_iter_get_element_type(v) != DBUS_TYPE_STRING)
		return;
	dbus_message_iter_recurse(v, &a);
	while (dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_STRING) {
		dbus_message_iter_get_basic(&a, &u);
		device_set_adv_profile(d, sw_profile_for_service_uuid(u));
		dbus_message_iter_next(&a);
	}
}

static void device_apply(struct bz_device *d, DBusMessageIter *props)
{
	DBusMessageIter v;
	const char *key, *s;
	int64_t i;
	bool b;

	while (du_dict_next(props, &key, &v)) {
		if (!strcmp(key, "Address") && du_var_string(&v, &s)) {
			if (bluez_valid_address(s))
				snprintf(d->address, sizeof(d->address), "%s", s);
			else
				log_rl(&d->bz->rl_bad, LOG_WARNING,
				       "bluez: %s has an invalid Address", d->path);
		} else if (!strcmp(key, "Alias") && du_var_string(&v, &s)) {
			replace_str(&d->alias, s);
			device_set_adv_profile(d, sw_profile_for_name(s));
		} else if (!strcmp(key, "Name") && du_var_string(&v, &s)) {
			replace_str(&d->name, s);
			device_set_adv_profile(d, sw_profile_for_name(s));
		} else if (!strcmp(key, "UUIDs")) {
			device_set_uuids(d, &v);
		} else if (!strcmp(key, "Connected") && du_var_bool(&v, &b)) {
			if (b && !d->connected) {
				loop_timer_cancel(&d->retry);
				set_reason(d, "connected; resolving GATT characteristics");
				d->connected = true;
			} else if (!b && d->connected) {
				d->connected = false;
				d->link++;
				set_reason(d, "link lost");
				device_report_state(d, BLUEZ_DEV_LOST);
				device_link_down(d);
				/* a flapping link must not turn into a reconnect storm */
				if (!d->retry.armed)
					device_fail(d, "link lost", NULL);
			}
		} else if (!strcmp(key, "ServicesResolved") && du_var_bool(&v, &b)) {
			d->resolved = b;
		} else if (!strcmp(key, "Paired") && du_var_bool(&v, &b)) {
			d->paired = b;
		} else if (!strcmp(key, "Trusted") && du_var_bool(&v, &b)) {
			d->trusted = b;
		} else if (!strcmp(key, "RSSI") && du_var_int(&v, &i)) {
			d->rssi = i >= -127 && i <= 20 ? (int)i : BLUEZ_NO_RSSI;
		}
	}
}

static void device_invalidate(struct bz_device *d, DBusMessageIter *names)
{
	DBusMessageIter a;
	const char *n;

	if (dbus_message_iter_get_arg_type(names) != DBUS_TYPE_ARRAY ||
	    dbus_message_iter_get_element_type(names) != DBUS_TYPE_STRING)
		return;
	dbus_message_iter_recurse(names, &a);
	for (; dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_STRING; dbus_message_iter_next(&a)) {
		dbus_message_iter_get_basic(&a, &n);
		if (!strcmp(n, "RSSI"))
			d->rssi = BLUEZ_NO_RSSI;
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
		d->battery = BLUEZ_NO_BATTERY;
		d->rssi = BLUEZ_NO_RSSI;
		loop_timer_init(&d->retry, bz->loop, retry_fire, d);
		loop_timer_init(&d->resolve, bz->loop, resolve_fire, d);
		backoff_init(&d->backoff, bz->cfg.backoff_min_ms, bz->cfg.backoff_max_ms,
			     bz->seed + (uintptr_t)d);
		set_reason(d, "found");
		d->next = bz->devices;
		bz->devices = d;
		bz->n_objects++;
	}
	if (props)
		device_apply(d, props);
	return d;
}

static void battery_apply(struct bluez *bz, const char *path, DBusMessageIter *props)
{
	struct bz_device *d = device_lookup(bz, path);
	DBusMessageIter v;
	const char *key;
	int64_t i;

	if (!d)
		return;
	while (du_dict_next(props, &key, &v))
		if (!strcmp(key, "Percentage") && du_var_int(&v, &i))
			d->battery = i >= 0 && i <= 100 ? (int)i : BLUEZ_NO_BATTERY;
	device_report(d);
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
	while (du_dict_next(props, &key, &v)) {
		if (!strcmp(key, "UUID") && du_var_string(&v, &str))
			snprintf(s->uuid, sizeof(s->uuid), "%s", str);
		else if (!strcmp(key, "Device") && du_var_string(&v, &str))
			replace_path(&s->device_path, str);
	}
}

static void char_notification(struct bluez *bz, struct bz_char *c, DBusMessageIter *v)
{
	struct bz_device *d = char_device(bz, c);
	const uint8_t *data = NULL;
	int len = 0;

	if (!du_var_bytes(v, &data, &len)) {
		bz->stats.bad_signals++;
		log_rl(&bz->rl_bad, LOG_WARNING, "bluez: %s: Value is not a byte array", c->path);
		return;
	}
	/* with a notify socket, values arrive there; a Value here is a read's echo */
	if (!d || !d->address[0] || !sw_char_role_notifies(c->role) || c->sub == SUB_ACQUIRED ||
	    !d->connected || !device_wanted(d))
		return;
	deliver(d, c, data, (size_t)len);
}

static void char_flags(struct bz_char *c, DBusMessageIter *v)
{
	DBusMessageIter a;
	const char *f;

	if (dbus_message_iter_get_arg_type(v) != DBUS_TYPE_ARRAY ||
	    dbus_message_iter_get_element_type(v) != DBUS_TYPE_STRING)
		return;
	c->can_notify = c->can_indicate = false;
	dbus_message_iter_recurse(v, &a);
	for (; dbus_message_iter_get_arg_type(&a) == DBUS_TYPE_STRING; dbus_message_iter_next(&a)) {
		dbus_message_iter_get_basic(&a, &f);
		if (!strcmp(f, "notify"))
			c->can_notify = true;
		else if (!strcmp(f, "indicate"))
			c->can_indicate = true;
	}
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
		c->bz = bz;
		c->can_notify = true;   /* until Flags say otherwise */
		c->next = bz->chars;
		bz->chars = c;
		bz->n_objects++;
	}
	while (du_dict_next(props, &key, &v)) {
		if (!strcmp(key, "UUID") && du_var_string(&v, &str))
			c->role = sw_char_role_for_uuid(str);
		else if (!strcmp(key, "Service") && du_var_string(&v, &str))
			replace_path(&c->service_path, str);
		else if (!strcmp(key, "Flags"))
			char_flags(c, &v);
		else if (!strcmp(key, "Value") && values_are_notifications)
			char_notification(bz, c, &v);
	}
	return c;
}

/* ---- removal ------------------------------------------------------------ */

static void char_free(struct bz_char *c)
{
	char_unsubscribe_local(c);
	free(c->path);
	free(c->service_path);
	free(c);
}

static void device_free(struct bz_device *d)
{
	loop_timer_cancel(&d->retry);
	loop_timer_cancel(&d->resolve);
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

static void remove_device(struct bluez *bz, const char *path, const char *why)
{
	struct bz_device **pp, *d;
	struct bz_char **cp, *c;

	for (pp = &bz->devices; (d = *pp); pp = &d->next)
		if (!strcmp(d->path, path)) {
			/* its GATT objects go with it, whatever BlueZ said about them */
			for (cp = &bz->chars; (c = *cp);) {
				if (char_device(bz, c) == d || path_under(c->path, d->path)) {
					*cp = c->next;
					char_free(c);
					bz->n_objects--;
				} else {
					cp = &c->next;
				}
			}
			if (d->reported) {
				set_reason(d, "%s", why);
				device_report_state(d, BLUEZ_DEV_GONE);
			}
			*pp = d->next;
			device_free(d);
			bz->n_objects--;
			return;
		}
}

static void remove_adapter(struct bluez *bz, const char *path)
{
	struct bz_adapter **pp, *a;
	struct bz_device *d, *next;

	for (d = bz->devices; d; d = next) {
		next = d->next;
		if (path_under(d->path, path))
			remove_device(bz, d->path, "adapter removed");
	}
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
static void flush_all(struct bluez *bz, const char *why)
{
	while (bz->chars) {
		struct bz_char *c = bz->chars;

		bz->chars = c->next;
		char_free(c);
	}
	while (bz->services)
		remove_service(bz, bz->services->path);
	while (bz->devices)
		remove_device(bz, bz->devices->path, why);
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
	bool adapter = false;

	if (!du_is_dict(ifaces))
		goto bad;
	dbus_message_iter_recurse(ifaces, &entry);
	for (; dbus_message_iter_get_arg_type(&entry) == DBUS_TYPE_DICT_ENTRY;
	     dbus_message_iter_next(&entry)) {
		DBusMessageIter kv;

		dbus_message_iter_recurse(&entry, &kv);
		if (dbus_message_iter_get_arg_type(&kv) != DBUS_TYPE_STRING)
			goto bad;
		dbus_message_iter_get_basic(&kv, &iface);
		if (!dbus_message_iter_next(&kv) || !du_is_dict(&kv))
			goto bad;
		dbus_message_iter_recurse(&kv, &props);
		if (!strcmp(iface, IFACE_ADAPTER)) {
			adapter_upsert(bz, path, &props);
			adapter = true;
		} else if (!strcmp(iface, IFACE_DEVICE)) {
			d = device_upsert(bz, path, &props);
		} else if (!strcmp(iface, IFACE_BATTERY)) {
			if (!device_lookup(bz, path))
				device_upsert(bz, path, NULL);
			battery_apply(bz, path, &props);
		} else if (!strcmp(iface, IFACE_SERVICE)) {
			service_upsert(bz, path, &props);
		} else if (!strcmp(iface, IFACE_CHAR)) {
			c = char_upsert(bz, path, &props, false);
		}
	}
	if (d)
		device_update(d);
	if (c && c->role != SW_CHAR_NONE && (d = char_device(bz, c)))
		device_update(d);
	if (adapter || d)
		discovery_update(bz);
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
	struct bz_device *d;

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
			remove_device(bz, path, "removed by BlueZ");
		else if (!strcmp(iface, IFACE_ADAPTER))
			remove_adapter(bz, path);
		else if (!strcmp(iface, IFACE_BATTERY) && (d = device_lookup(bz, path))) {
			d->battery = BLUEZ_NO_BATTERY;
			device_report(d);
		}
	}
	discovery_update(bz);
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
	if (!dbus_message_iter_next(&it) || !du_is_dict(&it))
		goto bad;
	dbus_message_iter_recurse(&it, &props);
	if (!strcmp(iface, IFACE_CHAR)) {
		if (!(c = char_lookup(bz, path)))
			return;
		while (du_dict_next(&props, &key, &v))
			if (!strcmp(key, "Value"))
				char_notification(bz, c, &v);
	} else if (!strcmp(iface, IFACE_DEVICE)) {
		if (!(d = device_lookup(bz, path)))
			return;
		device_apply(d, &props);
		if (dbus_message_iter_next(&it))
			device_invalidate(d, &it);
		device_update(d);
		discovery_update(bz);
	} else if (!strcmp(iface, IFACE_BATTERY)) {
		battery_apply(bz, path, &props);
	} else if (!strcmp(iface, IFACE_ADAPTER)) {
		if (adapter_lookup(bz, path)) {
			adapter_upsert(bz, path, &props);
			discovery_update(bz);
		}
	}
	return;
bad:
	bz->stats.bad_signals++;
	log_rl(&bz->rl_bad, LOG_WARNING, "bluez: malformed PropertiesChanged on %s",
	       path ? path : "?");
}

static void managed_objects_reply(struct du_call *cl, DBusMessage *r)
{
	struct bluez *bz = cl->owner;
	DBusMessageIter it, objs, kv;
	const char *path, *err;
	unsigned n = 0;

	if ((err = du_error_name(r))) {
		log_warn("bluez: GetManagedObjects failed: %s %s", err, du_error_text(r));
		return;
	}
	if (!dbus_message_iter_init(r, &it) || !du_is_dict(&it))
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
		apply_interfaces(bz, path, &kv);
		n++;
	}
	log_info("bluez: %u objects from %s", n, bz->owner);
	update_all(bz);
	return;
bad:
	bz->stats.bad_signals++;
	log_warn("bluez: malformed GetManagedObjects reply");
}

static void get_managed_objects(struct bluez *bz)
{
	DBusMessage *m = dbus_message_new_method_call(BLUEZ_SERVICE, "/", IFACE_OM,
						      "GetManagedObjects");

	if (!call(bz, m, CALL_TIMEOUT_MS, managed_objects_reply, "/", 0))
		log_error("bluez: cannot send GetManagedObjects");
}

static void set_owner(struct bluez *bz, const char *owner)
{
	if (!strcmp(bz->owner, owner))
		return;
	if (bz->owner[0]) {
		log_warn("bluez: org.bluez (%s) went away", bz->owner);
		flush_all(bz, "bluetoothd went away");
	}
	snprintf(bz->owner, sizeof(bz->owner), "%s", owner);
	bz->gen++;
	if (owner[0]) {
		log_info("bluez: org.bluez is %s", owner);
		if (bz->agent)
			bluez_agent_register(bz->agent, &bz->gen);
		get_managed_objects(bz);
	} else {
		log_info("bluez: waiting for org.bluez (bluetoothd)");
	}
}

static void name_owner_reply(struct du_call *cl, DBusMessage *r)
{
	const char *owner = NULL;

	if (!du_error_name(r) &&
	    dbus_message_get_args(r, NULL, DBUS_TYPE_STRING, &owner, DBUS_TYPE_INVALID))
		set_owner(cl->owner, owner);
	else
		log_info("bluez: waiting for org.bluez (bluetoothd)");
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

/* ---- the agent's view ----------------------------------------------------- */

static const char *agent_owner(void *user)
{
	return ((struct bluez *)user)->owner;
}

static bool agent_accept(void *user, const char *device_path)
{
	struct bz_device *d = device_lookup(user, device_path);

	return d && device_wanted(d);
}

static const struct bluez_agent_ops agent_ops = { agent_owner, agent_accept };

/* ---- public --------------------------------------------------------------- */

struct bluez *bluez_new(DBusConnection *conn, struct loop *loop, const struct bluez_config *cfg,
			const struct bluez_callbacks *cb, void *user)
{
	struct bluez *bz = calloc(1, sizeof(*bz));
	struct timespec ts;

	if (!bz)
		return NULL;
	bz->conn = conn;
	bz->loop = loop;
	bz->cfg = *cfg;
	bz->cb = *cb;
	bz->user = user;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	bz->seed = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32);
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
	bz->agent = bluez_agent_new(bz->conn, &agent_ops, bz);
	if (!bz->agent)
		log_warn("bluez: cannot export the pairing agent; pair sensors by hand");
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
	return call(bz, m, CALL_TIMEOUT_MS, name_owner_reply, "/", 0) ? 0 : -1;
}

void bluez_free(struct bluez *bz)
{
	if (!bz)
		return;
	if (bz->filter_added)
		dbus_connection_remove_filter(bz->conn, filter, bz);
	bz->cb.device_state = NULL;
	bz->cb.device_health = NULL;
	bz->cb.notification = NULL;
	flush_all(bz, "shutting down");
	bluez_agent_free(bz->agent);
	bz->gen++;
	free(bz);
}

void bluez_set_config(struct bluez *bz, const struct bluez_config *cfg)
{
	struct bz_device *d;

	for (d = bz->devices; d; d = d->next) {
		bool was = device_wanted(d);

		d->backoff.min_ms = cfg->backoff_min_ms;
		d->backoff.max_ms = cfg->backoff_max_ms;
		if (was) {
			struct bluez_config old = bz->cfg;

			bz->cfg = *cfg;
			if (!device_wanted(d)) {
				bz->cfg = old;
				set_reason(d, "no longer adopted (settings reloaded)");
				device_report_state(d, BLUEZ_DEV_GONE);
				loop_timer_cancel(&d->retry);
				loop_timer_cancel(&d->resolve);
				if (d->connected || d->connect_pending)
					disconnect_device(d);
			}
			bz->cfg = old;
		}
	}
	bz->cfg = *cfg;
	update_all(bz);
}

void bluez_get_stats(const struct bluez *bz, struct bluez_stats *st)
{
	const struct bz_device *d;
	const struct bz_char *c;
	const struct bz_adapter *a;

	*st = bz->stats;
	st->devices = st->characteristics = 0;
	st->discovering = false;
	for (d = bz->devices; d; d = d->next)
		st->devices++;
	for (c = bz->chars; c; c = c->next)
		st->characteristics++;
	for (a = bz->adapters; a; a = a->next)
		st->discovering |= a->disc_on;
}
