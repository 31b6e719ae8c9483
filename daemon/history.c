/*
 * history.c - the durable store in SQLite (see history.h): schema, the
 * batched event writer with its retry, pruning, refill, per-day rows and
 * calibrations.
 */
#include "history.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include <jansson.h>
#include <sqlite3.h>

#include "log.h"

#define SCHEMA_VERSION "1"
#define DAY_MS (24LL * 3600 * 1000)

struct pending {
	uint64_t seq;
	int64_t ts;
	char kind[16];
	char sensor[24];
	size_t off;              /* its JSON text: h->text + off, len bytes and a NUL */
	size_t len;
};

struct history {
	sqlite3 *db;
	char path[PATH_MAX];
	struct history_config cfg;
	struct loop *loop;
	struct loop_timer flush_timer, prune_timer;
	char stream[17];
	bool resumed;
	uint64_t last_seq;
	/* the queue: a ring of HISTORY_MAX_PENDING */
	struct pending *q;
	size_t q_head, q_len;
	/* their JSON texts, in queue order, in one ring of bytes (no allocation per event:
	 * it only grows, by doubling, when a second's worth does not fit) */
	char *text;
	size_t text_cap, text_tail;
	/* writing */
	const char *problem;     /* NULL while writing works */
	int64_t retry_ms;
	int64_t problem_since;   /* monotonic ms */
	int64_t last_prune;      /* monotonic ms, 0: never */
	bool pruning;
	struct history_counts counts;
	struct log_ratelimit rl;
};

/* ---- helpers --------------------------------------------------------------- */

static const char *problem_of(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_FULL: return "the disk is full";
	case SQLITE_READONLY: return "the state directory is read-only";
	case SQLITE_CANTOPEN: return "the database cannot be opened";
	case SQLITE_IOERR: return "an I/O error";
	case SQLITE_CORRUPT: case SQLITE_NOTADB: return "the database is damaged";
	case SQLITE_BUSY: case SQLITE_LOCKED: return "the database is busy";
	default: return "the database refused a write";
	}
}

static int meta_get(struct history *h, const char *key, char *out, size_t len)
{
	sqlite3_stmt *st;
	int found = -1;

	if (sqlite3_prepare_v2(h->db, "SELECT value FROM meta WHERE key = ?", -1, &st, NULL))
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		snprintf(out, len, "%s", (const char *)sqlite3_column_text(st, 0));
		found = 0;
	}
	sqlite3_finalize(st);
	return found;
}

static int meta_set(struct history *h, const char *key, const char *value)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(h->db, "INSERT OR REPLACE INTO meta(key, value) VALUES(?, ?)", -1,
			       &st, NULL))
		return -1;
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : -1;
}

void history_new_stream_id(char out[17])
{
	uint64_t r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
		r = (uint64_t)clock_epoch_ms() * 0x9e3779b97f4a7c15ULL ^ (uint64_t)clock_mono_ms();
	snprintf(out, 17, "%016llx", (unsigned long long)r);
}

static bool stream_ok(const char *s)
{
	size_t n = strspn(s, "0123456789abcdef");

	return n == 16 && !s[16];
}

/* ---- open / close ------------------------------------------------------------ */

static int open_db(struct history *h, char *err, size_t errlen)
{
	static const char *const schema =
		"PRAGMA journal_mode=WAL;"
		"PRAGMA synchronous=NORMAL;"
		/* events are appended and read back newest first: a 512 KiB page cache does;
		 * SQLite's default 2 MiB was 1.7 MiB of resident size after a few minutes */
		"PRAGMA cache_size=-512;"
		"CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);"
		"CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY, ts INTEGER NOT NULL,"
		" kind TEXT NOT NULL, sensor TEXT, json TEXT NOT NULL);"
		"CREATE INDEX IF NOT EXISTS events_ts ON events(ts);"
		"CREATE INDEX IF NOT EXISTS events_kind ON events(kind, seq);"
		"CREATE INDEX IF NOT EXISTS events_sensor ON events(sensor, seq);"
		"CREATE TABLE IF NOT EXISTS daily(sensor TEXT NOT NULL, date TEXT NOT NULL,"
		" json TEXT NOT NULL, PRIMARY KEY(sensor, date));"
		"CREATE TABLE IF NOT EXISTS calibration(sensor TEXT PRIMARY KEY,"
		" line TEXT NOT NULL, ts INTEGER NOT NULL);";
	char version[16] = "";
	char *msg = NULL;
	int rc;

	rc = sqlite3_open_v2(h->path, &h->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(h->db, schema, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		snprintf(err, errlen, "%s", msg ? msg : h->db ? sqlite3_errmsg(h->db) :
			 sqlite3_errstr(rc));
		sqlite3_free(msg);
		sqlite3_close(h->db);
		h->db = NULL;
		return rc;
	}
	if (meta_get(h, "schema", version, sizeof(version)) != 0) {
		meta_set(h, "schema", SCHEMA_VERSION);
	} else if (strcmp(version, SCHEMA_VERSION)) {
		snprintf(err, errlen, "schema version %s, this spinewatchd knows %s", version,
			 SCHEMA_VERSION);
		sqlite3_close(h->db);
		h->db = NULL;
		return SQLITE_MISMATCH;
	}
	return SQLITE_OK;
}

static void start_run(struct history *h)
{
	char clean[8] = "", stream[32] = "";
	sqlite3_stmt *st;

	if (meta_get(h, "clean", clean, sizeof(clean)) == 0 && !strcmp(clean, "1") &&
	    meta_get(h, "stream", stream, sizeof(stream)) == 0 && stream_ok(stream)) {
		snprintf(h->stream, sizeof(h->stream), "%s", stream);
		h->resumed = true;
	} else {
		history_new_stream_id(h->stream);
		meta_set(h, "stream", h->stream);
	}
	meta_set(h, "clean", "0");   /* until history_close() */
	if (sqlite3_prepare_v2(h->db, "SELECT max(seq) FROM events", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			h->last_seq = (uint64_t)sqlite3_column_int64(st, 0);
		sqlite3_finalize(st);
	}
}

struct history *history_open(const char *state_dir, const struct history_config *cfg,
			     char *err, size_t errlen)
{
	struct history *h;
	char bad[PATH_MAX + 8];
	int rc;

	if (!state_dir || !state_dir[0]) {
		snprintf(err, errlen, "no state directory");
		return NULL;
	}
	if (mkdir(state_dir, 0750) < 0 && errno != EEXIST) {
		snprintf(err, errlen, "cannot make %s: %s", state_dir, strerror(errno));
		return NULL;
	}
	h = calloc(1, sizeof(*h));
	if (!h || !(h->q = calloc(HISTORY_MAX_PENDING, sizeof(*h->q)))) {
		free(h);
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	if (snprintf(h->path, sizeof(h->path), "%s/%s", state_dir, HISTORY_FILE) >=
	    (int)sizeof(h->path)) {
		snprintf(err, errlen, "the state directory's path is too long");
		goto fail;
	}
	h->cfg.event_days = HISTORY_DEFAULT_EVENT_DAYS;
	h->cfg.daily_days = HISTORY_DEFAULT_DAILY_DAYS;
	if (cfg)
		h->cfg = *cfg;
	h->retry_ms = HISTORY_RETRY_MIN_MS;
	rc = open_db(h, err, errlen);
	if (rc == SQLITE_NOTADB || rc == SQLITE_CORRUPT) {
		/* not ours to repair: keep it for a person, start a new one */
		snprintf(bad, sizeof(bad), "%s.bad", h->path);
		log_warn("history: %s is damaged (%s); moved to %s, starting a new one", h->path,
			 err, bad);
		if (rename(h->path, bad) == 0)
			rc = open_db(h, err, errlen);
	}
	if (rc != SQLITE_OK)
		goto fail;
	start_run(h);
	log_info("history: %s, %s stream %s, last event %llu", h->path,
		 h->resumed ? "continuing" : "a new", h->stream, (unsigned long long)h->last_seq);
	return h;
fail:
	free(h->q);
	free(h);
	return NULL;
}

static void flush_fire(struct loop_timer *t);
static void prune_fire(struct loop_timer *t);

void history_attach_loop(struct history *h, struct loop *loop)
{
	h->loop = loop;
	loop_timer_init(&h->flush_timer, loop, flush_fire, h);
	loop_timer_init(&h->prune_timer, loop, prune_fire, h);
	if (h->q_len)
		loop_timer_start(&h->flush_timer, HISTORY_FLUSH_MS);
}

void history_set_config(struct history *h, const struct history_config *cfg)
{
	h->cfg = *cfg;
	h->last_prune = 0;   /* apply new retention with the next flush */
}

static const char *pending_json(const struct history *h, const struct pending *p)
{
	return h->text + p->off;
}

/* Room for `need` contiguous bytes after the newest queued text (or from the start of
 * the ring when that end is too short); grows the ring, oldest text first, when neither
 * fits. Returns the offset, or (size_t)-1 when out of memory. */
static size_t text_reserve(struct history *h, size_t need)
{
	size_t head, used = 0, cap, pos = 0, i;
	char *bigger;

	if (!h->q_len)
		h->text_tail = 0;
	head = h->q_len ? h->q[h->q_head].off : 0;
	if (h->text_tail >= head) {          /* used: [head, tail) */
		if (h->text_cap - h->text_tail >= need)
			return h->text_tail;
		if (head > need)             /* wrap; never catch up with head */
			return 0;
	} else if (head - h->text_tail > need) {   /* used: [head, cap) and [0, tail) */
		return h->text_tail;
	}
	for (i = 0; i < h->q_len; i++)
		used += h->q[(h->q_head + i) % HISTORY_MAX_PENDING].len + 1;
	for (cap = h->text_cap ? h->text_cap * 2 : HISTORY_TEXT_MIN; cap < 2 * (used + need);)
		cap *= 2;
	if (!(bigger = malloc(cap)))
		return (size_t)-1;
	for (i = 0; i < h->q_len; i++) {     /* oldest first, from 0 */
		struct pending *p = &h->q[(h->q_head + i) % HISTORY_MAX_PENDING];

		memcpy(bigger + pos, h->text + p->off, p->len + 1);
		p->off = pos;
		pos += p->len + 1;
	}
	free(h->text);
	h->text = bigger;
	h->text_cap = cap;
	h->text_tail = pos;
	return pos;
}

/* An empty queue starts over at its first entry: the ring of HISTORY_MAX_PENDING
 * (1.4 MiB) is there for a database that cannot be written, and written round
 * in normal running, a batch at a time, it would all become resident. */
static void drop_oldest(struct history *h)
{
	h->q_head = (h->q_head + 1) % HISTORY_MAX_PENDING;
	if (!--h->q_len)
		h->q_head = 0;
}

void history_close(struct history *h)
{
	if (!h)
		return;
	if (history_flush(h) == 0 && meta_set(h, "clean", "1") == 0)
		log_info("history: closed cleanly at event %llu", (unsigned long long)h->last_seq);
	else
		log_warn("history: %llu events could not be written before stopping (%s)",
			 (unsigned long long)h->q_len, h->problem ? h->problem : "error");
	/* after the last flush: it may arm the prune timer (or the retry timer), which must
	 * not stay in the loop's timer list once h is freed */
	if (h->loop) {
		loop_timer_cancel(&h->flush_timer);
		loop_timer_cancel(&h->prune_timer);
	}
	while (h->q_len)
		drop_oldest(h);
	sqlite3_close(h->db);
	free(h->text);
	free(h->q);
	free(h);
}

const char *history_stream(const struct history *h)
{
	return h->stream;
}

bool history_resumed(const struct history *h)
{
	return h->resumed;
}

uint64_t history_last_seq(const struct history *h)
{
	return h->last_seq;
}

const char *history_problem(const struct history *h)
{
	return h->problem;
}

void history_counts(const struct history *h, struct history_counts *out)
{
	*out = h->counts;
	out->pending = h->q_len;
}

/* ---- refill ------------------------------------------------------------------ */

long history_recent(struct history *h, size_t limit, history_event_fn fn, void *user)
{
	sqlite3_stmt *st;
	struct row { uint64_t seq; char *json; size_t len; } *rows;
	size_t n = 0, i, start;
	long out;

	if (!limit)
		return 0;
	rows = calloc(limit, sizeof(*rows));
	if (!rows)
		return -1;
	if (sqlite3_prepare_v2(h->db, "SELECT seq, json FROM events ORDER BY seq DESC LIMIT ?", -1,
			       &st, NULL)) {
		free(rows);
		return -1;
	}
	sqlite3_bind_int64(st, 1, (sqlite3_int64)(limit > INT64_MAX ? INT64_MAX : limit));
	while (n < limit && sqlite3_step(st) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
		const char *json = (const char *)sqlite3_column_text(st, 1);
		size_t len = (size_t)sqlite3_column_bytes(st, 1);

		if (n && seq != rows[n - 1].seq - 1)
			break;   /* a hole: only the newest consecutive run */
		rows[n].seq = seq;
		rows[n].json = malloc(len + 1);
		if (!rows[n].json)
			break;
		memcpy(rows[n].json, json ? json : "", len);
		rows[n].json[len] = '\0';
		rows[n].len = len;
		n++;
	}
	sqlite3_finalize(st);
	start = n;
	for (i = start; i-- > 0;)
		fn(user, rows[i].seq, rows[i].json, rows[i].len);
	for (i = 0; i < n; i++)
		free(rows[i].json);
	free(rows);
	out = (long)n;
	return out;
}

/* ---- queries for the HTTP API ---------------------------------------------------- */

/* Fixed statements, one per filter combination and order: nothing from a
 * request is ever part of the SQL text, only bound. ?1 since, ?2 before,
 * ?3 kind, ?4 sensor, ?5 limit. */
#define Q_SELECT "SELECT seq, json FROM events WHERE seq > ?1 AND seq < ?2"
#define Q_KIND " AND kind = ?3"
#define Q_SENSOR " AND sensor = ?4"
static const char *const query_sql[2][4] = {
	{ Q_SELECT " ORDER BY seq LIMIT ?5",
	  Q_SELECT Q_KIND " ORDER BY seq LIMIT ?5",
	  Q_SELECT Q_SENSOR " ORDER BY seq LIMIT ?5",
	  Q_SELECT Q_KIND Q_SENSOR " ORDER BY seq LIMIT ?5" },
	{ Q_SELECT " ORDER BY seq DESC LIMIT ?5",
	  Q_SELECT Q_KIND " ORDER BY seq DESC LIMIT ?5",
	  Q_SELECT Q_SENSOR " ORDER BY seq DESC LIMIT ?5",
	  Q_SELECT Q_KIND Q_SENSOR " ORDER BY seq DESC LIMIT ?5" },
};

static bool pending_matches(const struct pending *p, const struct history_query *q,
			    uint64_t above, uint64_t below)
{
	return p->seq > above && p->seq < below && (!q->kind || !strcmp(p->kind, q->kind)) &&
	       (!q->sensor || !strcmp(p->sensor, q->sensor));
}

/* Written events in (above, below): at most limit. -1 on error. */
static long query_db(struct history *h, const struct history_query *q, uint64_t above,
		     uint64_t below, size_t limit, uint64_t *edge, history_event_fn fn,
		     void *user)
{
	sqlite3_stmt *st;
	long n = 0;
	int rc;

	if (!limit || above >= below || above >= (uint64_t)INT64_MAX)
		return 0;
	if (sqlite3_prepare_v2(h->db, query_sql[q->newest_first][(q->kind ? 1 : 0) |
				(q->sensor ? 2 : 0)], -1, &st, NULL))
		return -1;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)above);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)(below > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX :
						     below));
	if (q->kind)
		sqlite3_bind_text(st, 3, q->kind, -1, SQLITE_STATIC);
	if (q->sensor)
		sqlite3_bind_text(st, 4, q->sensor, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 5, (sqlite3_int64)limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		uint64_t seq = (uint64_t)sqlite3_column_int64(st, 0);
		const char *json = (const char *)sqlite3_column_text(st, 1);

		if (!json)
			continue;
		fn(user, seq, json, (size_t)sqlite3_column_bytes(st, 1));
		*edge = seq;
		n++;
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? n : -1;
}

long history_query_events(struct history *h, const struct history_query *q,
			  history_event_fn fn, void *user)
{
	uint64_t below = q->before ? q->before : UINT64_MAX, edge;
	size_t limit = q->limit > HISTORY_QUERY_MAX ? HISTORY_QUERY_MAX : q->limit, i;
	long n = 0, got;

	if (!limit)
		return 0;
	if (!q->newest_first) {
		/* written ones first: everything queued is newer */
		edge = q->since;
		got = query_db(h, q, q->since, below, limit, &edge, fn, user);
		if (got < 0)
			return -1;
		n = got;
		for (i = 0; i < h->q_len && (size_t)n < limit; i++) {
			const struct pending *p = &h->q[(h->q_head + i) % HISTORY_MAX_PENDING];

			if (pending_matches(p, q, edge, below)) {
				fn(user, p->seq, pending_json(h, p), p->len);
				edge = p->seq;
				n++;
			}
		}
		return n;
	}
	edge = below;
	for (i = h->q_len; i-- > 0 && (size_t)n < limit;) {
		const struct pending *p = &h->q[(h->q_head + i) % HISTORY_MAX_PENDING];

		if (pending_matches(p, q, q->since, edge)) {
			fn(user, p->seq, pending_json(h, p), p->len);
			edge = p->seq;
			n++;
		}
	}
	got = query_db(h, q, q->since, edge, limit - (size_t)n, &edge, fn, user);
	return got < 0 ? -1 : n + got;
}

long history_query_days(struct history *h, const char *from_date, const char *to_date,
			const char *sensor, size_t max_rows, history_day_fn fn, void *user)
{
	static const char *const sql[2] = {
		"SELECT sensor, date, json FROM daily WHERE date >= ?1 AND date <= ?2"
		" ORDER BY sensor, date LIMIT ?3",
		"SELECT sensor, date, json FROM daily WHERE date >= ?1 AND date <= ?2"
		" AND sensor = ?4 ORDER BY sensor, date LIMIT ?3",
	};
	sqlite3_stmt *st;
	long n = 0;
	int rc;

	/* count first, so that a caller gets all the rows or none */
	if (sqlite3_prepare_v2(h->db, sensor ?
			       "SELECT count(*) FROM (SELECT 1 FROM daily WHERE date >= ?1 AND"
			       " date <= ?2 AND sensor = ?4 LIMIT ?3)" :
			       "SELECT count(*) FROM (SELECT 1 FROM daily WHERE date >= ?1 AND"
			       " date <= ?2 LIMIT ?3)", -1, &st, NULL))
		return -1;
	sqlite3_bind_text(st, 1, from_date, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, to_date, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max_rows + 1);
	if (sensor)
		sqlite3_bind_text(st, 4, sensor, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		n = (long)sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return -1;
	if ((size_t)n > max_rows)
		return -2;
	n = 0;
	if (sqlite3_prepare_v2(h->db, sql[sensor ? 1 : 0], -1, &st, NULL))
		return -1;
	sqlite3_bind_text(st, 1, from_date, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, to_date, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)max_rows);
	if (sensor)
		sqlite3_bind_text(st, 4, sensor, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		const char *date = (const char *)sqlite3_column_text(st, 1);
		const char *json = (const char *)sqlite3_column_text(st, 2);

		if (name && date && json) {
			fn(user, name, date, json);
			n++;
		}
	}
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? n : -1;
}

char *history_event_json(struct history *h, uint64_t seq)
{
	sqlite3_stmt *st;
	char *out = NULL;
	size_t i;

	for (i = 0; i < h->q_len; i++) {   /* not written yet */
		const struct pending *p = &h->q[(h->q_head + i) % HISTORY_MAX_PENDING];

		if (p->seq == seq)
			return strdup(pending_json(h, p));
	}
	if (sqlite3_prepare_v2(h->db, "SELECT json FROM events WHERE seq = ?", -1, &st, NULL))
		return NULL;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)seq);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return out;
}

/* ---- the writer ---------------------------------------------------------------- */

void history_add_event(struct history *h, uint64_t seq, int64_t ts_ms, const char *kind,
		       const char *sensor, const char *json, size_t len)
{
	struct pending *p;
	size_t off;

	if (h->q_len == HISTORY_MAX_PENDING) {
		drop_oldest(h);
		h->counts.dropped++;
		log_rl(&h->rl, LOG_ERR, "history: %llu events dropped unwritten so far (%s)",
		       (unsigned long long)h->counts.dropped, h->problem ? h->problem : "backlog");
	}
	if ((off = text_reserve(h, len + 1)) == (size_t)-1) {
		h->counts.dropped++;
		log_rl(&h->rl, LOG_ERR, "history: out of memory; an event was dropped unwritten");
		return;
	}
	memcpy(h->text + off, json, len);
	h->text[off + len] = '\0';
	h->text_tail = off + len + 1;
	p = &h->q[(h->q_head + h->q_len) % HISTORY_MAX_PENDING];
	p->seq = seq;
	p->ts = ts_ms;
	snprintf(p->kind, sizeof(p->kind), "%s", kind ? kind : "");
	snprintf(p->sensor, sizeof(p->sensor), "%s", sensor ? sensor : "");
	p->off = off;
	p->len = len;
	h->q_len++;
	if (seq > h->last_seq)
		h->last_seq = seq;
	if (h->loop && !h->problem && h->q_len == 1)
		loop_timer_start(&h->flush_timer, HISTORY_FLUSH_MS);
	else if (h->loop && !h->problem && h->q_len == HISTORY_FLUSH_BATCH)
		loop_timer_start(&h->flush_timer, 0);
}

static int write_queue(struct history *h, size_t *written)
{
	sqlite3_stmt *st = NULL;
	size_t i;
	int rc;

	*written = 0;
	rc = sqlite3_exec(h->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_prepare_v2(h->db, "INSERT OR REPLACE INTO events(seq, ts, kind, sensor, json)"
				" VALUES(?, ?, ?, ?, ?)", -1, &st, NULL);
	for (i = 0; rc == SQLITE_OK && i < h->q_len; i++) {
		const struct pending *p = &h->q[(h->q_head + i) % HISTORY_MAX_PENDING];

		sqlite3_reset(st);
		sqlite3_bind_int64(st, 1, (sqlite3_int64)p->seq);
		sqlite3_bind_int64(st, 2, p->ts);
		sqlite3_bind_text(st, 3, p->kind, -1, SQLITE_STATIC);
		if (p->sensor[0])
			sqlite3_bind_text(st, 4, p->sensor, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 4);
		sqlite3_bind_text(st, 5, pending_json(h, p), (int)p->len, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_DONE)
			rc = SQLITE_OK;
	}
	sqlite3_finalize(st);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	*written = h->q_len;
	return SQLITE_OK;
}

static void prune_soon(struct history *h, int64_t delay_ms)
{
	if (h->loop)
		loop_timer_start(&h->prune_timer, delay_ms);
}

int history_flush(struct history *h)
{
	size_t n;
	int rc;

	if (!h->q_len)
		return 0;
	rc = write_queue(h, &n);
	if (rc != SQLITE_OK) {
		const char *was = h->problem;

		h->problem = problem_of(rc);
		if (!was) {
			h->problem_since = clock_mono_ms();
			h->retry_ms = HISTORY_RETRY_MIN_MS;
		} else if ((h->retry_ms *= 2) > HISTORY_RETRY_MAX_MS) {
			h->retry_ms = HISTORY_RETRY_MAX_MS;
		}
		log_rl(&h->rl, LOG_ERR, "history: cannot write %zu events to %s: %s (%s); they "
		       "still stream live, retrying in %lld s", h->q_len, h->path, h->problem,
		       sqlite3_errmsg(h->db), (long long)(h->retry_ms / 1000));
		if (h->loop)
			loop_timer_start(&h->flush_timer, h->retry_ms);
		return -1;
	}
	if (h->problem) {
		log_info("history: writing again after %.0f s (%s)",
			 (double)(clock_mono_ms() - h->problem_since) / 1000.0, h->problem);
		h->problem = NULL;
	}
	h->counts.written += n;
	while (h->q_len)
		drop_oldest(h);
	if (h->text_cap > 16 * HISTORY_TEXT_MIN) {   /* a backlog made it big: give it back */
		free(h->text);
		h->text = NULL;
		h->text_cap = 0;
	}
	if (!h->last_prune || clock_mono_ms() - h->last_prune >= HISTORY_PRUNE_EVERY_MS) {
		h->last_prune = clock_mono_ms();
		h->pruning = true;
		prune_soon(h, 0);
	}
	return 0;
}

static void flush_fire(struct loop_timer *t)
{
	history_flush(t->user);
}

/* ---- pruning ----------------------------------------------------------------- */

int history_prune_step(struct history *h)
{
	int64_t now = clock_epoch_ms();
	int64_t cut = now - (int64_t)h->cfg.event_days * DAY_MS;
	time_t day_cut = (time_t)((now - (int64_t)h->cfg.daily_days * DAY_MS) / 1000);
	char date[16];
	struct tm tm;
	sqlite3_stmt *st;
	int n = 0;

	if (sqlite3_prepare_v2(h->db, "DELETE FROM events WHERE seq IN (SELECT seq FROM events"
			       " WHERE ts < ? ORDER BY seq LIMIT ?)", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_int64(st, 1, cut);
		sqlite3_bind_int(st, 2, HISTORY_PRUNE_STEP);
		if (sqlite3_step(st) == SQLITE_DONE)
			n += sqlite3_changes(h->db);
		sqlite3_finalize(st);
	}
	if (n < HISTORY_PRUNE_STEP && localtime_r(&day_cut, &tm) &&
	    strftime(date, sizeof(date), "%Y-%m-%d", &tm) &&
	    sqlite3_prepare_v2(h->db, "DELETE FROM daily WHERE rowid IN (SELECT rowid FROM daily"
			       " WHERE date < ? LIMIT ?)", -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, date, -1, SQLITE_STATIC);
		sqlite3_bind_int(st, 2, HISTORY_PRUNE_STEP - n);
		if (sqlite3_step(st) == SQLITE_DONE)
			n += sqlite3_changes(h->db);
		sqlite3_finalize(st);
	}
	h->counts.pruned += (uint64_t)n;
	return n;
}

static void prune_fire(struct loop_timer *t)
{
	struct history *h = t->user;

	if (!h->pruning)
		return;
	if (history_prune_step(h) >= HISTORY_PRUNE_STEP) {
		prune_soon(h, 50);   /* more to do: let the loop breathe in between */
	} else {
		h->pruning = false;
		if (h->counts.pruned)
			log_debug("history: %llu old rows pruned so far",
				  (unsigned long long)h->counts.pruned);
	}
}

/* ---- the per-day record ------------------------------------------------------------ */

int history_save_days(struct history *h, const char *stats_text)
{
	json_t *root = json_loads(stats_text, 0, NULL), *sensors, *s, *days, *d;
	sqlite3_stmt *st = NULL;
	size_t i, k;
	int rc;

	sensors = json_object_get(root, "sensors");
	if (!json_is_array(sensors)) {
		json_decref(root);
		return -1;
	}
	rc = sqlite3_exec(h->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(h->db, "INSERT OR REPLACE INTO daily(sensor, date, json)"
					" VALUES(?, ?, ?)", -1, &st, NULL);
	json_array_foreach(sensors, i, s) {
		const char *name = json_string_value(json_object_get(s, "sensor"));

		days = json_object_get(s, "days");
		json_array_foreach(days, k, d) {
			char *text;

			if (rc != SQLITE_OK)
				break;
			text = json_dumps(d, JSON_COMPACT);
			if (!text || !name || !json_string_value(json_object_get(d, "date"))) {
				free(text);
				rc = SQLITE_MISUSE;
				break;
			}
			sqlite3_reset(st);
			sqlite3_bind_text(st, 1, name, -1, SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 2, json_string_value(json_object_get(d, "date")), -1,
					  SQLITE_TRANSIENT);
			sqlite3_bind_text(st, 3, text, -1, SQLITE_TRANSIENT);
			rc = sqlite3_step(st);
			if (rc == SQLITE_DONE)
				rc = SQLITE_OK;
			free(text);
		}
	}
	sqlite3_finalize(st);
	json_decref(root);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(h->db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_exec(h->db, "ROLLBACK", NULL, NULL, NULL);
		log_rl(&h->rl, LOG_ERR, "history: cannot write the per-day record: %s",
		       problem_of(rc));
		return -1;
	}
	return 0;
}

char *history_days(struct history *h, const char *from_date)
{
	json_t *root = json_pack("{s:i, s:[]}", "v", 1, "sensors"), *sensors, *cur = NULL;
	const char *cur_name = "";
	sqlite3_stmt *st;
	char *out = NULL;
	bool ok = root != NULL;

	sensors = json_object_get(root, "sensors");
	if (!ok || sqlite3_prepare_v2(h->db, "SELECT sensor, json FROM daily WHERE date >= ?"
				      " ORDER BY sensor, date", -1, &st, NULL)) {
		json_decref(root);
		return NULL;
	}
	sqlite3_bind_text(st, 1, from_date, -1, SQLITE_STATIC);
	while (ok && sqlite3_step(st) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(st, 0);
		json_t *day = json_loads((const char *)sqlite3_column_text(st, 1), 0, NULL);

		if (!name || !day) {
			json_decref(day);
			continue;   /* stats_load() reports what is wrong with the rest */
		}
		if (!cur || strcmp(name, cur_name)) {
			cur = json_pack("{s:s, s:[]}", "sensor", name, "days");
			ok = cur && json_array_append_new(sensors, cur) == 0;
			cur_name = ok ? json_string_value(json_object_get(cur, "sensor")) : "";
		}
		ok = ok && json_array_append_new(json_object_get(cur, "days"), day) == 0;
	}
	sqlite3_finalize(st);
	if (ok)
		out = json_dumps(root, JSON_COMPACT);
	json_decref(root);
	return out;
}

/* ---- calibrations ------------------------------------------------------------------ */

char *history_calibration(struct history *h, const char *sensor)
{
	sqlite3_stmt *st;
	char *line = NULL;

	if (sqlite3_prepare_v2(h->db, "SELECT line FROM calibration WHERE sensor = ?", -1, &st,
			       NULL))
		return NULL;
	sqlite3_bind_text(st, 1, sensor, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		line = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return line;
}

int history_set_calibration(struct history *h, const char *sensor, const char *line,
			    int64_t ts_ms)
{
	sqlite3_stmt *st;
	int rc;

	if (sqlite3_prepare_v2(h->db, "INSERT OR REPLACE INTO calibration(sensor, line, ts)"
			       " VALUES(?, ?, ?)", -1, &st, NULL))
		return -1;
	sqlite3_bind_text(st, 1, sensor, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, line, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, ts_ms);
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (rc != SQLITE_DONE) {
		log_rl(&h->rl, LOG_ERR, "history: cannot store the calibration of %s: %s", sensor,
		       problem_of(rc));
		return -1;
	}
	return 0;
}
