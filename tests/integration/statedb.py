"""Reading and writing the daemon's history database (STATE_DIR/history.db, daemon/history.c)
from tests, with Python's own sqlite3: stored per-day records and calibrations before a start,
and what the daemon kept after a stop. The tables made here are the daemon's (history.c's
schema 1); the daemon adds the others itself."""

import json
import os
import sqlite3

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS daily(sensor TEXT NOT NULL, date TEXT NOT NULL, json TEXT NOT NULL,
                                 PRIMARY KEY(sensor, date));
CREATE TABLE IF NOT EXISTS calibration(sensor TEXT PRIMARY KEY, line TEXT NOT NULL,
                                       ts INTEGER NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES('schema', '1');
"""


def path(state_dir):
    return os.path.join(state_dir, 'history.db')


def _open(state_dir):
    os.makedirs(state_dir, exist_ok=True)
    db = sqlite3.connect(path(state_dir))
    db.executescript(SCHEMA)
    return db


def write_days(state_dir, record):
    """record: {'v': 1, 'sensors': [{'sensor': ADDR, 'days': [day, ...]}, ...]} as stats_save."""
    db = _open(state_dir)
    with db:
        for s in record['sensors']:
            for day in s['days']:
                db.execute('INSERT OR REPLACE INTO daily(sensor, date, json) VALUES(?, ?, ?)',
                           (s['sensor'], day['date'], json.dumps(day, separators=(',', ':'))))
    db.close()


def read_days(state_dir):
    """The stored record in stats_save's shape, sensors and days in order."""
    db = sqlite3.connect(path(state_dir))
    out = {}
    for sensor, text in db.execute('SELECT sensor, json FROM daily ORDER BY sensor, date'):
        out.setdefault(sensor, []).append(json.loads(text))
    db.close()
    return {'v': 1, 'sensors': [{'sensor': s, 'days': d} for s, d in out.items()]}


def write_calibration(state_dir, address, line):
    db = _open(state_dir)
    with db:
        db.execute('INSERT OR REPLACE INTO calibration(sensor, line, ts) VALUES(?, ?, 0)',
                   (address, line))
    db.close()


def read_calibration(state_dir, address):
    if not os.path.exists(path(state_dir)):
        return None
    db = sqlite3.connect(path(state_dir))
    row = db.execute('SELECT line FROM calibration WHERE sensor = ?', (address,)).fetchone()
    db.close()
    return row[0] if row else None


def events(state_dir):
    """[(seq, kind, sensor, message dict), ...] oldest first."""
    db = sqlite3.connect(path(state_dir))
    rows = [(seq, kind, sensor, json.loads(text)) for seq, kind, sensor, text in
            db.execute('SELECT seq, kind, sensor, json FROM events ORDER BY seq')]
    db.close()
    return rows


def integrity(state_dir):
    db = sqlite3.connect(path(state_dir))
    result = db.execute('PRAGMA integrity_check').fetchone()[0]
    db.close()
    return result
