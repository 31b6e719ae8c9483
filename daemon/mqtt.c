/*
 * mqtt.c - the MQTT publisher (see mqtt.h): libmosquitto on the daemon's
 * loop, the publish window and the acknowledged seq.
 *
 * The loop: a host name is looked up first on the loop (resolver.h: the
 * lookup inside libmosquitto blocks, and an unanswering DNS server would hold
 * the daemon for as long as it takes); once it resolves,
 * mosquitto_connect_async() (the TCP connect does not block; its own lookup
 * of the name, just answered, is quick), then
 * a dup() of mosquitto_socket() becomes a loop fd: readable calls
 * mosquitto_loop_read(), writable (asked for while mosquitto_want_write())
 * calls mosquitto_loop_write(), and a timer at half the keepalive calls
 * mosquitto_loop_misc() for the pings. Callbacks only take notes; the
 * connection is torn down (mosquitto_destroy) and a reconnect scheduled with
 * backoff after the libmosquitto call returns, never inside it. Every
 * connection is a new client object, so nothing libmosquitto queued for an
 * earlier one is sent again behind our back: after a reconnect publishing
 * starts over after the acknowledged seq, in order.
 */
#include "mqtt.h"

#include <errno.h>
#include <fcntl.h>
#include <mosquitto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "alert_center.h"
#include "resolver.h"
#include "backoff.h"
#include "history.h"
#include "log.h"
#include "mqtt_topics.h"
#include "ring.h"
#include "sensors.h"
#include "stats_keeper.h"

enum mqtt_state { M_WAITING, M_RESOLVING, M_CONNECTING, M_CONNECTED };

struct inflight {
	uint64_t seq;
	int mid[MQTT_EVENT_PUBS];   /* 0: acknowledged or none */
	int pending;
};

struct mqtt {
	struct mqtt_config cfg;
	struct mqtt_sources src;
	struct mqtt_names names;
	char client_id[MQTT_STR_MAX];
	char status_topic[MQTT_TOPIC_MAX];
	char state_path[MQTT_PATH_MAX + 32];
	char state_key[MQTT_STR_MAX + MQTT_PREFIX_MAX + 16];
	struct loop *loop;
	struct mosquitto *mosq;
	struct loop_fd *fd;
	enum mqtt_state state;
	bool broken, connack;       /* notes from libmosquitto's callbacks */
	char why[4 * MQTT_PATH_MAX];
	struct backoff backoff;
	struct loop_timer retry, connect_timeout, keepalive, pump, save, stats, midnight;
	struct resolver *resolver;  /* NULL: host is an address */
	bool resolved;              /* the lookup for this attempt answered */
	uint64_t acked;             /* every event up to this one was acknowledged */
	struct mqtt_counts counts;
	uint64_t saved;             /* what mqtt.state holds */
	uint64_t cursor;            /* the last event handed to this connection */
	uint64_t live_cursor;       /* the live ring (posture, status) */
	struct inflight win[MQTT_WINDOW];
	size_t win_head, win_n;
	char stats_dirty[SENSORS_MAX][FEED_ADDRESS_LEN];
	size_t n_stats_dirty;
	char announced[SENSORS_MAX][FEED_ADDRESS_LEN];
	size_t n_announced;
	int64_t connected_ms;       /* when this connection was accepted (monotonic) */
	struct log_ratelimit rl_event, rl_lib, rl_save;
};

/* ---- the acknowledged seq, kept across restarts --------------------------- */

/*
 * STATE_DIR/mqtt.state: "spinewatch-mqtt 1", "broker HOST:PORT PREFIX",
 * "acked SEQ". A small file of its own (not a history.db table): it must work
 * when the history database does not (a read-only or full disk, no history
 * kept) and it is written whole, atomically (a temp file, fsync, rename), at
 * most once per MQTT_SAVE_DELAY_MS. A kill -9 may lose the last second's
 * acknowledgements: those events are published again (at least once).
 */
static bool load_state(struct mqtt *m, uint64_t *acked)
{
	FILE *f = fopen(m->state_path, "re");
	char line[MQTT_STR_MAX * 2 + 64], key[sizeof(m->state_key) + 8];
	unsigned long long seq;
	bool magic = false, same = false, have = false;

	if (!f)
		return false;
	snprintf(key, sizeof(key), "broker %s\n", m->state_key);
	while (fgets(line, sizeof(line), f)) {
		if (!strcmp(line, "spinewatch-mqtt 1\n"))
			magic = true;
		else if (!strncmp(line, "broker ", 7))
			same = !strcmp(line, key);
		else if (sscanf(line, "acked %llu", &seq) == 1)
			have = true;
	}
	fclose(f);
	if (magic && same && have) {
		*acked = seq;
		return true;
	}
	if (magic && !same)
		log_info("mqtt: %s was about another broker or prefix; starting with new events",
			 m->state_path);
	return false;
}

static int save_state(struct mqtt *m)
{
	char tmp[sizeof(m->state_path) + 8];
	FILE *f;
	int ok;

	if (m->saved == m->acked)
		return 0;
	snprintf(tmp, sizeof(tmp), "%s.tmp", m->state_path);
	f = fopen(tmp, "we");
	if (!f) {
		log_rl(&m->rl_save, LOG_WARNING, "mqtt: cannot write %s: %s (the acknowledged "
		       "seq is not kept across restarts)", tmp, strerror(errno));
		return -1;
	}
	ok = fprintf(f, "spinewatch-mqtt 1\nbroker %s\nacked %llu\n", m->state_key,
		     (unsigned long long)m->acked) > 0;
	ok &= fflush(f) == 0 && fsync(fileno(f)) == 0;
	ok &= fclose(f) == 0;
	if (!ok || rename(tmp, m->state_path) != 0) {
		log_rl(&m->rl_save, LOG_WARNING, "mqtt: cannot write %s: %s", m->state_path,
		       strerror(errno));
		unlink(tmp);
		return -1;
	}
	m->saved = m->acked;
	return 0;
}

static void save_fire(struct loop_timer *t)
{
	save_state(t->user);
}

/* ---- the publish window --------------------------------------------------- */

static struct inflight *win_at(struct mqtt *m, size_t i)
{
	return &m->win[(m->win_head + i) % MQTT_WINDOW];
}

/* Acknowledged events at the head of the window move the acked seq on. */
static void advance(struct mqtt *m)
{
	bool moved = false;

	while (m->win_n && win_at(m, 0)->pending == 0) {
		m->acked = win_at(m, 0)->seq;
		m->counts.events_acked++;
		m->win_head = (m->win_head + 1) % MQTT_WINDOW;
		m->win_n--;
		moved = true;
	}
	if (!moved)
		return;
	if (!m->save.armed)
		loop_timer_start(&m->save, MQTT_SAVE_DELAY_MS);
	/* room in the window again: carry on with what waits */
	if (m->state == M_CONNECTED && !m->pump.armed &&
	    ring_pending(store_events(m->src.store), m->cursor))
		loop_timer_start(&m->pump, 0);
}

static void on_publish(struct mosquitto *mosq, void *user, int mid)
{
	struct mqtt *m = user;
	size_t i;
	int j;

	if (mosq != m->mosq || mid == 0)
		return;
	for (i = 0; i < m->win_n; i++) {
		struct inflight *e = win_at(m, i);

		for (j = 0; j < MQTT_EVENT_PUBS; j++)
			if (e->mid[j] == mid) {
				e->mid[j] = 0;
				e->pending--;
				advance(m);
				return;
			}
	}
}

/* ---- publishing ------------------------------------------------------------ */

static void set_broken(struct mqtt *m, const char *fmt, const char *what)
{
	if (m->broken)
		return;
	m->broken = true;
	snprintf(m->why, sizeof(m->why), fmt, what);
}

static const char *mosq_error(int rc)
{
	return rc == MOSQ_ERR_ERRNO ? strerror(errno) : mosquitto_strerror(rc);
}

static int publish(struct mqtt *m, int *mid, const char *topic, const void *payload, size_t len,
		   int qos, bool retain)
{
	int rc;

	if (!m->mosq || m->broken)
		return -1;
	rc = mosquitto_publish(m->mosq, mid, topic, (int)len, payload, qos, retain);
	if (rc != MOSQ_ERR_SUCCESS) {
		if (rc == MOSQ_ERR_PAYLOAD_SIZE || rc == MOSQ_ERR_MALFORMED_UTF8 ||
		    rc == MOSQ_ERR_INVAL) {
			log_rl(&m->rl_event, LOG_WARNING, "mqtt: not published to %s: %s", topic,
			       mosquitto_strerror(rc));
			return 1;   /* this message only */
		}
		set_broken(m, "publishing failed: %s", mosq_error(rc));
		return -1;
	}
	return 0;
}

static void publish_stats(struct mqtt *m, const char *sensor)
{
	char topic[MQTT_TOPIC_MAX], node[MQTT_NODE_LEN], *text;
	json_t *o;

	if (!m->src.stats)
		return;
	mqtt_node(sensor, node);
	o = stats_keeper_json(m->src.stats, clock_epoch_ms(), sensor);
	if (!o)
		return;
	json_object_del(o, "type");
	text = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
	json_decref(o);
	if (text && !mqtt_topic(&m->names, node, MQTT_LEAF_STATS, topic, sizeof(topic)))
		publish(m, NULL, topic, text, strlen(text), 1, true);
	free(text);
}

static void publish_alerts(struct mqtt *m, const char *sensor)
{
	struct feed_alert_info a[64];
	char topic[MQTT_TOPIC_MAX], node[MQTT_NODE_LEN], *text;
	size_t n = 0, len = 0;

	if (!m->src.alerts)
		return;
	n = alert_center_active(m->src.alerts, a, sizeof(a) / sizeof(a[0]));
	mqtt_node(sensor, node);
	text = mqtt_alerts_payload(a, n, sensor, &len);
	if (text && !mqtt_topic(&m->names, node, MQTT_LEAF_ALERTS, topic, sizeof(topic)))
		publish(m, NULL, topic, text, len, 1, true);
	free(text);
}

static void publish_status(struct mqtt *m, const struct feed_sensor_info *s)
{
	char topic[MQTT_TOPIC_MAX], node[MQTT_NODE_LEN], buf[STORE_FRAME_MAX];
	int n = feed_encode_status(&(struct feed_status){
		.ts_ms = clock_epoch_ms(), .sensor = s->address, .state = s->state,
		.health = s->health }, buf, sizeof(buf));

	mqtt_node(s->address, node);
	if (n > 0 && !mqtt_topic(&m->names, node, MQTT_LEAF_STATE, topic, sizeof(topic)))
		publish(m, NULL, topic, buf, (size_t)n, 0, true);
}

static bool in_list(char (*list)[FEED_ADDRESS_LEN], size_t n, const char *sensor)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(list[i], sensor))
			return true;
	return false;
}

/* A sensor's first appearance on this connection: discovery, alerts, stats. */
static void announce(struct mqtt *m, const struct feed_sensor_info *s)
{
	struct mqtt_discovery d[MQTT_ENTITIES];
	int n, i;

	if (!s->address || !s->address[0] || in_list(m->announced, m->n_announced, s->address) ||
	    m->n_announced >= SENSORS_MAX)
		return;
	snprintf(m->announced[m->n_announced++], FEED_ADDRESS_LEN, "%s", s->address);
	n = mqtt_discovery_configs(&m->names, s, m->src.version, d);
	for (i = 0; i < n; i++)
		publish(m, NULL, d[i].topic, d[i].payload, d[i].len, 1, true);
	if (n > 0)
		mqtt_discovery_free(d, n);
	publish_alerts(m, s->address);
	publish_stats(m, s->address);
}

/* A sensor the registry knows: announce it (first time) and/or publish its state. */
static void sensor_update(struct mqtt *m, const char *sensor, bool state)
{
	struct feed_sensor_info all[SENSORS_MAX];
	size_t n, i;

	if (!sensor[0] || !m->src.sensors ||
	    (!state && in_list(m->announced, m->n_announced, sensor)))
		return;
	n = sensors_snapshot(m->src.sensors, all, SENSORS_MAX);
	for (i = 0; i < n; i++)
		if (all[i].address && !strcmp(all[i].address, sensor)) {
			if (state)
				publish_status(m, &all[i]);
			announce(m, &all[i]);
			return;
		}
}

static void after_io(struct mqtt *m, int rc);

static void stats_fire(struct loop_timer *t)
{
	struct mqtt *m = t->user;
	size_t i;

	if (m->state != M_CONNECTED)
		return;
	for (i = 0; i < m->n_stats_dirty; i++)
		publish_stats(m, m->stats_dirty[i]);
	m->n_stats_dirty = 0;
	after_io(m, MOSQ_ERR_SUCCESS);
}

static void stats_changed(struct mqtt *m, const char *sensor)
{
	if (!m->src.stats || !sensor[0])
		return;
	if (!in_list(m->stats_dirty, m->n_stats_dirty, sensor) && m->n_stats_dirty < SENSORS_MAX)
		snprintf(m->stats_dirty[m->n_stats_dirty++], FEED_ADDRESS_LEN, "%s", sensor);
	if (!m->stats.armed)
		loop_timer_start(&m->stats, MQTT_STATS_DELAY_MS);
}

/* One event into the window (the caller checked there is room). */
static void publish_event(struct mqtt *m, uint64_t seq, const char *json, size_t len)
{
	struct mqtt_event_info info;
	struct mqtt_pub pubs[MQTT_EVENT_PUBS];
	struct inflight *e = win_at(m, m->win_n);
	int n = mqtt_event_pubs(&m->names, json, len, &info, pubs), i;

	memset(e, 0, sizeof(*e));
	e->seq = seq;
	m->win_n++;
	m->cursor = seq;
	if (n < 0 || info.seq != seq) {
		log_rl(&m->rl_event, LOG_WARNING, "mqtt: event %llu is not an event the topics "
		       "know; skipped", (unsigned long long)seq);
		advance(m);
		return;
	}
	for (i = 0; i < n; i++) {
		int mid = 0, r = publish(m, &mid, pubs[i].topic, pubs[i].payload, pubs[i].len,
					 pubs[i].qos, pubs[i].retain);

		if (r < 0)
			return;
		if (r == 0 && mid) {
			e->mid[i] = mid;
			e->pending++;
		}
	}
	if (!strcmp(info.kind, "alert"))
		publish_alerts(m, info.sensor);
	else if (!strcmp(info.kind, "sensor"))   /* a new state: no need to wait for a status */
		sensor_update(m, info.sensor, true);
	else if (!strcmp(info.kind, "crack") || !strcmp(info.kind, "slouch"))
		stats_changed(m, info.sensor);
	advance(m);
}

struct backlog {
	struct mqtt *m;
	long got;
	uint64_t first;
};

static void backlog_one(void *user, uint64_t seq, const char *json, size_t len)
{
	struct backlog *b = user;
	struct mqtt *m = b->m;

	if (m->broken || m->win_n >= MQTT_WINDOW || seq <= m->cursor)
		return;
	if (seq != m->cursor + 1)
		log_warn("mqtt: events %llu..%llu are no longer kept; not published",
			 (unsigned long long)m->cursor + 1, (unsigned long long)seq - 1);
	if (!b->got++)
		b->first = seq;
	publish_event(m, seq, json, len);
}

/*
 * Events the ring no longer holds, from the history database. False when
 * the database could not be read: nothing is skipped, the pump tries again
 * a little later.
 */
static bool publish_backlog(struct mqtt *m, const struct ring_gap *gap)
{
	struct backlog b = { m, 0, 0 };
	long r = 0;

	if (m->src.history)
		r = history_query_events(m->src.history, &(struct history_query){
			.since = m->cursor, .before = gap->to + 1,
			.limit = MQTT_WINDOW - m->win_n }, backlog_one, &b);
	if (r < 0 && b.got == 0) {
		log_rl(&m->rl_event, LOG_WARNING, "mqtt: cannot read events %llu..%llu from the "
		       "history database; trying again", (unsigned long long)m->cursor + 1,
		       (unsigned long long)gap->to);
		if (!m->pump.armed)
			loop_timer_start(&m->pump, MQTT_HISTORY_RETRY_MS);
		return false;
	}
	if (b.got > 0) {
		log_debug("mqtt: events %llu..%llu from the history database (the ring holds no "
			  "more)", (unsigned long long)b.first, (unsigned long long)m->cursor);
		return true;
	}
	log_warn("mqtt: events %llu..%llu are no longer kept; not published",
		 (unsigned long long)m->cursor + 1, (unsigned long long)gap->to);
	/* nothing in flight for them: they count as done */
	if (m->win_n == 0 && m->acked < gap->to) {
		m->acked = gap->to;
		if (!m->save.armed)
			loop_timer_start(&m->save, MQTT_SAVE_DELAY_MS);
	}
	m->cursor = gap->to;
	return true;
}

static void publish_live(struct mqtt *m)
{
	const struct ring *live = store_postures(m->src.store);
	const unsigned char *data;
	size_t len;
	struct ring_gap gap;
	enum ring_read_result r;
	unsigned budget = 2 * STORE_POSTURE_CAPACITY;

	while (budget-- && !m->broken &&
	       (r = ring_read(live, &m->live_cursor, &data, &len, &gap)) != RING_EMPTY) {
		char topic[MQTT_TOPIC_MAX], node[MQTT_NODE_LEN], sensor[FEED_ADDRESS_LEN];
		unsigned kind = 0;
		const char *s = "";

		if (r == RING_GAP)
			continue;
		store_live_tag(m->src.store, m->live_cursor, &kind, &s);
		snprintf(sensor, sizeof(sensor), "%s", s ? s : "");
		if (!sensor[0] || (kind != FEED_KIND_POSTURE && kind != FEED_KIND_STATUS))
			continue;
		mqtt_node(sensor, node);
		if (mqtt_topic(&m->names, node, kind == FEED_KIND_POSTURE ? MQTT_LEAF_POSTURE :
			       MQTT_LEAF_STATE, topic, sizeof(topic)))
			continue;
		/* live, unsequenced: QoS 0; retained, the latest is what counts */
		publish(m, NULL, topic, data, len, 0, true);
		sensor_update(m, sensor, false);
	}
}

static void sync_write(struct mqtt *m)
{
	if (m->fd && m->mosq)
		loop_fd_want_write(m->fd, mosquitto_want_write(m->mosq));
}

static void pump(struct mqtt *m)
{
	const struct ring *events = store_events(m->src.store);
	const unsigned char *data;
	size_t len;
	struct ring_gap gap;
	unsigned budget = 4 * MQTT_WINDOW;

	if (m->state != M_CONNECTED || m->broken)
		return;
	publish_live(m);
	while (budget-- && m->win_n < MQTT_WINDOW && !m->broken) {
		uint64_t cur = m->cursor;
		enum ring_read_result r = ring_read(events, &cur, &data, &len, &gap);

		if (r == RING_EMPTY)
			break;
		if (r == RING_DATA)
			publish_event(m, cur, (const char *)data, len);
		else if (!publish_backlog(m, &gap))
			return;
	}
	/* stopped by the budget with room left: carry on next turn */
	if (!m->broken && m->win_n < MQTT_WINDOW &&
	    ring_pending(events, m->cursor) && !m->pump.armed)
		loop_timer_start(&m->pump, 0);
}

static void pump_fire(struct loop_timer *t)
{
	struct mqtt *m = t->user;

	if (m->state != M_CONNECTED)
		return;
	pump(m);
	after_io(m, MOSQ_ERR_SUCCESS);
}

static void on_store(void *user)
{
	struct mqtt *m = user;

	if (m->state == M_CONNECTED && !m->pump.armed)
		loop_timer_start(&m->pump, 0);
}

/* ---- the connection ------------------------------------------------------- */

static void attempt(struct mqtt *m);

static void retry_fire(struct loop_timer *t)
{
	attempt(t->user);
}

static void drop(struct mqtt *m)
{
	int64_t delay;

	m->counts.drops++;
	resolver_cancel(m->resolver);
	loop_timer_cancel(&m->connect_timeout);
	loop_timer_cancel(&m->keepalive);
	loop_timer_cancel(&m->pump);
	loop_timer_cancel(&m->stats);
	loop_timer_cancel(&m->midnight);
	if (m->fd) {
		loop_fd_close(m->fd);
		m->fd = NULL;
	}
	if (m->mosq) {
		mosquitto_destroy(m->mosq);
		m->mosq = NULL;
	}
	/* what was in flight goes again on the next connection, from acked + 1 */
	m->win_n = 0;
	m->n_stats_dirty = 0;
	/* a connection that lasted starts the delays over; one dropped at once does not
	 * (a broker that accepts and hangs up is not hammered every second) */
	if (m->state == M_CONNECTED && clock_mono_ms() - m->connected_ms >= MQTT_STABLE_MS)
		backoff_reset(&m->backoff);
	delay = backoff_next(&m->backoff);
	log_warn("mqtt: %s:%u: %s; %s in %.1f s", m->cfg.host, m->cfg.port,
		 m->why[0] ? m->why : "connection lost",
		 m->state == M_CONNECTED ? "reconnecting" : "retrying", (double)delay / 1000.0);
	m->state = M_WAITING;
	m->broken = m->connack = false;
	m->why[0] = '\0';
	loop_timer_start(&m->retry, delay);
	save_state(m);
}

static int64_t ms_to_midnight(void)
{
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	tm.tm_sec = 1;   /* just after midnight */
	tm.tm_min = 0;
	tm.tm_hour = 0;
	tm.tm_mday++;
	tm.tm_isdst = -1;
	return ((int64_t)mktime(&tm) - (int64_t)now) * 1000;
}

static void midnight_fire(struct loop_timer *t)
{
	struct mqtt *m = t->user;
	size_t i;

	if (m->state != M_CONNECTED)
		return;
	for (i = 0; i < m->n_announced; i++)
		publish_stats(m, m->announced[i]);
	loop_timer_start(&m->midnight, ms_to_midnight());
	after_io(m, MOSQ_ERR_SUCCESS);
}

static void keepalive_fire(struct loop_timer *t)
{
	struct mqtt *m = t->user;

	if (m->state != M_CONNECTED || !m->mosq)
		return;
	loop_timer_start(&m->keepalive, (int64_t)m->cfg.keepalive * 500);
	after_io(m, mosquitto_loop_misc(m->mosq));
}

static void connected(struct mqtt *m)
{
	struct feed_sensor_info all[SENSORS_MAX];
	size_t n = 0, i;

	m->state = M_CONNECTED;
	m->counts.connections++;
	loop_timer_cancel(&m->connect_timeout);
	m->connected_ms = clock_mono_ms();
	log_info("mqtt: connected to %s:%u as %s; publishing to %s/ from seq %llu", m->cfg.host,
		 m->cfg.port, m->client_id, m->names.prefix, (unsigned long long)m->acked + 1);
	m->cursor = m->acked;
	m->win_n = 0;
	m->live_cursor = ring_last_seq(store_postures(m->src.store));
	m->n_announced = 0;
	publish(m, NULL, m->status_topic, MQTT_ONLINE, strlen(MQTT_ONLINE), 1, true);
	if (m->src.sensors)
		n = sensors_snapshot(m->src.sensors, all, SENSORS_MAX);
	for (i = 0; i < n && !m->broken; i++) {
		publish_status(m, &all[i]);
		announce(m, &all[i]);
	}
	publish_alerts(m, "");
	loop_timer_start(&m->keepalive, (int64_t)m->cfg.keepalive * 500);
	loop_timer_start(&m->midnight, ms_to_midnight());
	pump(m);
}

/* After every call into libmosquitto: act on what its callbacks noted. */
static void after_io(struct mqtt *m, int rc)
{
	if (rc != MOSQ_ERR_SUCCESS && m->mosq)
		set_broken(m, "%s", mosq_error(rc));
	if (!m->broken && m->connack) {
		m->connack = false;
		connected(m);
	}
	if (m->broken) {
		drop(m);
		return;
	}
	sync_write(m);
}

static void on_connect(struct mosquitto *mosq, void *user, int rc)
{
	struct mqtt *m = user;

	if (mosq != m->mosq)
		return;
	if (rc == 0)
		m->connack = true;
	else
		set_broken(m, "the broker refused the connection: %s", mosquitto_connack_string(rc));
}

static void on_disconnect(struct mosquitto *mosq, void *user, int rc)
{
	struct mqtt *m = user;

	if (mosq != m->mosq)
		return;
	set_broken(m, "%s", rc ? mosq_error(rc) : "disconnected");
}

static void on_log(struct mosquitto *mosq, void *user, int level, const char *text)
{
	struct mqtt *m = user;

	(void)mosq;
	if (level & (MOSQ_LOG_ERR | MOSQ_LOG_WARNING))
		log_rl(&m->rl_lib, LOG_WARNING, "mqtt: libmosquitto: %s", text);
}

static void on_fd(struct loop_fd *f, int fd, unsigned events, void *user)
{
	struct mqtt *m = user;

	(void)f; (void)fd;
	if (!m->mosq)
		return;
	if (events & LOOP_FD_HUP) {
		m->fd = NULL;   /* the loop closed it */
		set_broken(m, "%s", "the connection was closed");
		after_io(m, MOSQ_ERR_SUCCESS);
		return;
	}
	if (events & LOOP_FD_IN)
		after_io(m, mosquitto_loop_read(m->mosq, 1));
	else if (events & LOOP_FD_OUT)
		after_io(m, mosquitto_loop_write(m->mosq, 1));
}

static void connect_timeout_fire(struct loop_timer *t)
{
	struct mqtt *m = t->user;

	if (m->state == M_RESOLVING) {
		resolver_cancel(m->resolver);
		set_broken(m, "%s", "the host name did not resolve within 10 s");
	} else {
		set_broken(m, "%s", "no answer from the broker within 10 s");
	}
	after_io(m, MOSQ_ERR_SUCCESS);
}

/* The first line of the password file, or -1 with why. */
static int read_password(struct mqtt *m, char *out, size_t cap)
{
	FILE *f = fopen(m->cfg.password_file, "re");

	if (!f) {
		snprintf(m->why, sizeof(m->why), "cannot read password_file %s: %s",
			 m->cfg.password_file, strerror(errno));
		return -1;
	}
	if (!fgets(out, (int)cap, f))
		out[0] = '\0';
	fclose(f);
	out[strcspn(out, "\r\n")] = '\0';
	return 0;
}

static void looked_up(void *user, bool ok, const char *why)
{
	struct mqtt *m = user;

	if (!ok) {
		loop_timer_cancel(&m->connect_timeout);
		set_broken(m, "the host name does not resolve: %s", why);
		after_io(m, MOSQ_ERR_SUCCESS);
		return;
	}
	m->resolved = true;
	attempt(m);
}

static void attempt(struct mqtt *m)
{
	char password[MQTT_STR_MAX];
	int rc, fd;

	m->broken = m->connack = false;
	m->why[0] = '\0';
	if (m->resolver && !m->resolved) {   /* first the name, without blocking the loop */
		m->state = M_RESOLVING;
		loop_timer_start(&m->connect_timeout, MQTT_CONNECT_TIMEOUT_MS);
		if (resolver_lookup(m->resolver, m->cfg.host, looked_up, m)) {
			set_broken(m, "%s", "cannot start looking the host name up");
			after_io(m, MOSQ_ERR_SUCCESS);
		}
		return;
	}
	m->resolved = false;   /* the next attempt looks it up again */
	m->mosq = mosquitto_new(m->client_id, true, m);
	if (!m->mosq) {
		set_broken(m, "%s", "cannot make a client (out of memory?)");
		goto fail;
	}
	mosquitto_connect_callback_set(m->mosq, on_connect);
	mosquitto_disconnect_callback_set(m->mosq, on_disconnect);
	mosquitto_publish_callback_set(m->mosq, on_publish);
	mosquitto_log_callback_set(m->mosq, on_log);
	/* our window bounds what is in flight; libmosquitto must not hold any back */
	mosquitto_max_inflight_messages_set(m->mosq, MQTT_WINDOW * MQTT_EVENT_PUBS + 64);
	mosquitto_int_option(m->mosq, MOSQ_OPT_TCP_NODELAY, 1);
	if (m->cfg.username[0]) {
		snprintf(password, sizeof(password), "%s", m->cfg.password);
		if (m->cfg.password_file[0] && read_password(m, password, sizeof(password))) {
			m->broken = true;
			goto fail;
		}
		rc = mosquitto_username_pw_set(m->mosq, m->cfg.username,
					       password[0] ? password : NULL);
		explicit_bzero(password, sizeof(password));
		if (rc) {
			set_broken(m, "username: %s", mosquitto_strerror(rc));
			goto fail;
		}
	}
	if (m->cfg.ca_file[0]) {
		rc = mosquitto_tls_set(m->mosq, m->cfg.ca_file, NULL,
				       m->cfg.cert_file[0] ? m->cfg.cert_file : NULL,
				       m->cfg.key_file[0] ? m->cfg.key_file : NULL, NULL);
		if (rc) {
			snprintf(m->why, sizeof(m->why), "TLS settings (ca_file %s%s%s): %s",
				 m->cfg.ca_file, m->cfg.cert_file[0] ? ", cert_file " : "",
				 m->cfg.cert_file, rc == MOSQ_ERR_INVAL ?
				 "a file is missing or unreadable" : mosquitto_strerror(rc));
			m->broken = true;
			goto fail;
		}
	}
	rc = mosquitto_will_set(m->mosq, m->status_topic, (int)strlen(MQTT_OFFLINE), MQTT_OFFLINE,
				1, true);
	if (rc) {
		set_broken(m, "last will: %s", mosquitto_strerror(rc));
		goto fail;
	}
	errno = 0;
	rc = mosquitto_connect_async(m->mosq, m->cfg.host, (int)m->cfg.port, (int)m->cfg.keepalive);
	if (rc != MOSQ_ERR_SUCCESS && rc != MOSQ_ERR_CONN_PENDING) {
		set_broken(m, "cannot connect: %s", rc == MOSQ_ERR_EAI ?
			   "the host name does not resolve" : mosq_error(rc));
		goto fail;
	}
	fd = mosquitto_socket(m->mosq);
	fd = fd >= 0 ? fcntl(fd, F_DUPFD_CLOEXEC, 3) : -1;
	m->fd = fd >= 0 ? loop_fd_add(m->loop, fd, on_fd, m) : NULL;
	if (!m->fd) {
		set_broken(m, "%s", "cannot watch the socket in the event loop");
		goto fail;
	}
	m->state = M_CONNECTING;
	loop_timer_start(&m->connect_timeout, MQTT_CONNECT_TIMEOUT_MS);
	after_io(m, MOSQ_ERR_SUCCESS);
	return;
fail:
	after_io(m, MOSQ_ERR_SUCCESS);
}

/* ---- public ---------------------------------------------------------------- */

struct mqtt *mqtt_new(const struct mqtt_config *c, const struct mqtt_sources *src,
		      struct loop *loop)
{
	struct mqtt *m;
	char host[256] = "", err[256];
	uint64_t last, stored = 0;

	if (!c->enabled)
		return NULL;
	m = calloc(1, sizeof(*m));
	if (!m) {
		log_error("mqtt: out of memory");
		return NULL;
	}
	m->cfg = *c;
	m->src = *src;
	m->loop = loop;
	if (gethostname(host, sizeof(host) - 1))
		host[0] = '\0';
	if (mqtt_names_init(&m->names, host, c->topic_prefix, c->discovery ? c->discovery_prefix : "",
			    err, sizeof(err))) {
		log_error("mqtt: %s; not publishing", err);
		free(m);
		return NULL;
	}
	if (c->client_id[0])
		snprintf(m->client_id, sizeof(m->client_id), "%s", c->client_id);
	else
		snprintf(m->client_id, sizeof(m->client_id), "spinewatch-%s", m->names.hub);
	mqtt_topic(&m->names, NULL, MQTT_LEAF_STATUS, m->status_topic, sizeof(m->status_topic));
	snprintf(m->state_path, sizeof(m->state_path), "%s/%s", src->state_dir ? src->state_dir : ".",
		 MQTT_STATE_FILE);
	snprintf(m->state_key, sizeof(m->state_key), "%s:%u %s", c->host, c->port, m->names.prefix);
	last = ring_last_seq(store_events(src->store));
	if (load_state(m, &stored)) {
		/* numbers above what was kept are new events of this run */
		m->acked = stored < last ? stored : last;
		log_info("mqtt: resuming after event %llu", (unsigned long long)m->acked);
	} else {
		m->acked = last;   /* the first run with MQTT: new events only */
	}
	m->saved = UINT64_MAX;   /* written once now: the file says where we start */
	loop_timer_init(&m->retry, loop, retry_fire, m);
	loop_timer_init(&m->connect_timeout, loop, connect_timeout_fire, m);
	loop_timer_init(&m->keepalive, loop, keepalive_fire, m);
	loop_timer_init(&m->pump, loop, pump_fire, m);
	loop_timer_init(&m->save, loop, save_fire, m);
	loop_timer_init(&m->stats, loop, stats_fire, m);
	loop_timer_init(&m->midnight, loop, midnight_fire, m);
	if (!resolver_is_address(m->cfg.host) && !(m->resolver = resolver_new(loop))) {
		log_error("mqtt: cannot look host names up");
		free(m);
		return NULL;
	}
	backoff_init(&m->backoff, MQTT_BACKOFF_MIN_MS, MQTT_BACKOFF_MAX_MS,
		     (uint64_t)clock_mono_ms() ^ (uint64_t)getpid());
	mosquitto_lib_init();
	if (store_add_listener(src->store, on_store, m)) {
		log_error("mqtt: cannot listen to the event store");
		mosquitto_lib_cleanup();
		free(m);
		return NULL;
	}
	save_state(m);
	log_info("mqtt: publishing to %s:%u%s, topics under %s/%s%s", c->host, c->port,
		 c->ca_file[0] ? " (TLS)" : "", m->names.prefix,
		 m->names.discovery[0] ? ", Home Assistant discovery under " : "",
		 m->names.discovery);
	attempt(m);
	return m;
}

void mqtt_free(struct mqtt *m)
{
	if (!m)
		return;
	store_remove_listener(m->src.store, on_store, m);
	if (m->state == M_CONNECTED && m->mosq && !m->broken) {
		/* a clean goodbye: no will, so say it ourselves */
		mosquitto_publish(m->mosq, NULL, m->status_topic, (int)strlen(MQTT_OFFLINE),
				  MQTT_OFFLINE, 1, true);
		mosquitto_disconnect(m->mosq);
	}
	loop_timer_cancel(&m->retry);
	loop_timer_cancel(&m->connect_timeout);
	loop_timer_cancel(&m->keepalive);
	loop_timer_cancel(&m->pump);
	loop_timer_cancel(&m->save);
	loop_timer_cancel(&m->stats);
	loop_timer_cancel(&m->midnight);
	if (m->fd)
		loop_fd_close(m->fd);
	if (m->mosq)
		mosquitto_destroy(m->mosq);
	resolver_free(m->resolver);
	save_state(m);
	mosquitto_lib_cleanup();
	free(m);
}

bool mqtt_connected(const struct mqtt *m)
{
	return m && m->state == M_CONNECTED;
}

uint64_t mqtt_acked_seq(const struct mqtt *m)
{
	return m ? m->acked : 0;
}

void mqtt_get_counts(const struct mqtt *m, struct mqtt_counts *out)
{
	static const struct mqtt_counts none;

	*out = m ? m->counts : none;
}
