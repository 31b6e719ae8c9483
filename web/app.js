// web/app.js - the spinewatch dashboard's behaviour: connects to the daemon's
// WebSocket feed (protocol/websocket-feed.md), keeps a bounded picture of the
// sensors, the live posture angles, recent events and today's counts, and
// renders it into index.html. No framework, no build step; all data goes into
// the page through textContent (never innerHTML) and styles through classes or
// element.style, so the daemon's strict CSP holds.

const SUBPROTOCOL = 'spinewatch.v1';
const MAX_EVENTS = 200;            // events kept in the list
const MAX_SENSORS = 64;            // sensors tracked (the daemon knows its own bound)
const MAX_DAYS = 8;                // days of counts kept
const CHART_WINDOW_MS = 120000;    // posture chart: last two minutes
const MAX_SAMPLES = 1600;          // per posture sensor: 10 Hz x 120 s, with room
const STALE_MS = 5000;             // no posture message for this long: "no recent data"
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
const CONNECT_TIMEOUT_MS = 10000;
const STABLE_MS = 10000;           // a connection that lasted this long resets the backoff
const ANNOUNCE_EVERY_MS = 2000;
const STATS_REFRESH_MS = 1500;     // after a live crack or slouch, ask for the record again
const STATS_REPLY_ID = 'dashboard-stats';

const SENSOR_STATE_TEXT = {
  discovered: 'found nearby',
  connecting: 'connecting',
  pairing: 'pairing',
  resolving: 'connected, setting up',
  subscribed: 'connected, no data yet',
  streaming: 'streaming',
  lost: 'connection lost',
  waiting: 'out of reach, retrying',
  gone: 'gone',
};
const SENSOR_STATES = Object.keys(SENSOR_STATE_TEXT);
const NOTIFY_TEXT = { acquire: 'fast path (AcquireNotify)', start: 'D-Bus notifications (StartNotify)' };
const CRACK_KINDS = ['pop', 'click', 'grind'];
const ALERT_STATES = ['raised', 'acknowledged', 'cleared'];
const CRACK_TEXT = { pop: 'Pop', click: 'Click', grind: 'Grind' };

// ---------------------------------------------------------------- state

const state = {
  stream: null,          // hello.stream of the run the cursor belongs to
  cursor: 0,             // last event seq processed (resume point)
  liveFrom: 0,           // hello.last_seq of this connection: events at or below it are replayed history
  detector: { threshold_deg: 15, hysteresis_deg: 5, delay_ms: 30000, calibration_ms: 3000 },
  haveHello: false,
  sensors: new Map(),    // address -> sensor record
  events: [],            // newest first, at most MAX_EVENTS
  pendingEvents: [],     // added since the last render, oldest first, at most MAX_EVENTS
  resetEvents: false,
  days: new Map(),       // local day key -> counts
  openSlouches: new Map(), // sensor address -> onset_ts of a slouch not ended yet
  slouchOnset: null,     // onset of the wearer's current slouch (any sensor), or null
  lastCrack: null,       // {ts, crack}
  stats: null,           // the daemon's per-day record (hello.stats, stats replies)
};

const dirty = { sensors: false, today: false, posture: new Set(), settings: false };

// ---------------------------------------------------------------- helpers

const $ = (sel) => document.querySelector(sel);
const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const str = (v) => (typeof v === 'string' ? v : null);
const isSeq = (v) => Number.isSafeInteger(v) && v >= 0;

function el(tag, className, text) {
  const e = document.createElement(tag);
  if (className) e.className = className;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

function dayKey(ts) {
  const d = new Date(ts);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

function dayStart(ts) {
  const d = new Date(ts);
  d.setHours(0, 0, 0, 0);
  return d.getTime();
}

function nextDayStart(ts) {
  const d = new Date(dayStart(ts));
  d.setDate(d.getDate() + 1);
  return d.getTime();
}

const NBSP = '\u00a0';

function formatDuration(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}${NBSP}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}${NBSP}min ${String(s % 60).padStart(2, '0')}${NBSP}s`;
  return `${Math.floor(m / 60)}${NBSP}h ${String(m % 60).padStart(2, '0')}${NBSP}min`;
}

function formatAgo(ms) {
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 45) return 'just now';
  const m = Math.round(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  return `${h} h ${m % 60} min ago`;
}

const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

function formatTime(ts) {
  return dayKey(ts) === dayKey(Date.now()) ? timeFmt.format(ts) : dateTimeFmt.format(ts);
}

function formatAngle(a) {
  return a.toFixed(1);
}

// ---------------------------------------------------------------- sensors

function sensorFor(address, create) {
  let s = state.sensors.get(address);
  if (!s && create && state.sensors.size < MAX_SENSORS) {
    s = {
      address, name: null, profile: null, roles: new Set(), state: null, lost: null, rejected: null,
      reason: null, battery: null, rssi: null, received: null, notify: null, posture: null,
    };
    state.sensors.set(address, s);
  }
  return s || null;
}

function profileText(profile) {
  if (profile === 'microbit') return 'micro:bit';
  if (profile === 'thingy52') return 'Thingy:52';
  return profile || 'unknown profile';
}

function sensorLabel(address) {
  const s = state.sensors.get(address);
  return (s && s.name) || address;
}

function applySensorInfo(s, info) {
  const name = str(info.name);
  if (name) s.name = name;
  const profile = str(info.profile);
  if (profile) s.profile = profile;
  if (SENSOR_STATES.includes(info.state)) s.state = info.state;
  if (Array.isArray(info.roles)) {
    s.roles = new Set(info.roles.filter((r) => r === 'posture' || r === 'sound'));
  }
  if (typeof info.reason === 'string') s.reason = info.reason.slice(0, 200);
  applyHealth(s, info);
}

// Health members of a hello sensor entry or a status message.
function applyHealth(s, m) {
  if (isSeq(m.lost)) s.lost = m.lost;
  if (isSeq(m.rejected)) s.rejected = m.rejected;
  if (isSeq(m.received)) s.received = m.received;
  if ('battery' in m) s.battery = Number.isInteger(m.battery) && m.battery >= 0 && m.battery <= 100 ? m.battery : null;
  if ('rssi' in m) s.rssi = Number.isInteger(m.rssi) && m.rssi >= -127 && m.rssi <= 20 ? m.rssi : null;
  if ('notify' in m) s.notify = NOTIFY_TEXT[m.notify] ? m.notify : null;
}

function handleStatus(m) {
  if (typeof m.sensor !== 'string') return;
  const s = sensorFor(m.sensor, false);
  if (!s) return;
  if (SENSOR_STATES.includes(m.state)) s.state = m.state;
  applyHealth(s, m);
  requestRender();
}

// Posture data of one sensor: the latest message and a ring of samples for the chart.
function postureOf(s) {
  if (!s.posture) {
    s.posture = {
      angle: null, calibrating: false, beyondMs: 0, slouching: false,
      receivedAt: 0, count: 0,
      times: new Float64Array(MAX_SAMPLES), angles: new Float32Array(MAX_SAMPLES), head: 0, len: 0,
      view: null,
    };
  }
  return s.posture;
}

function pushSample(p, t, angle) {
  const i = (p.head + p.len) % MAX_SAMPLES;
  p.times[i] = t;
  p.angles[i] = angle;
  if (p.len < MAX_SAMPLES) p.len++;
  else p.head = (p.head + 1) % MAX_SAMPLES;
  // drop what has scrolled out of the chart
  while (p.len > 0 && t - p.times[p.head] > CHART_WINDOW_MS + 2000) {
    p.head = (p.head + 1) % MAX_SAMPLES;
    p.len--;
  }
}

// ---------------------------------------------------------------- today's counts

function dayCounts(ts) {
  const key = dayKey(ts);
  let d = state.days.get(key);
  if (!d) {
    d = { start: dayStart(ts), cracks: 0, pop: 0, click: 0, grind: 0, slouches: 0, slouchMs: 0, hours: new Array(24).fill(0) };
    state.days.set(key, d);
    if (state.days.size > MAX_DAYS) {
      const oldest = [...state.days.entries()].sort((a, b) => a[1].start - b[1].start)[0][0];
      state.days.delete(oldest);
    }
  }
  return d;
}

// Adds slouched time from..to, split at local midnights.
function addSlouchTime(from, to) {
  let t = from;
  for (let i = 0; t < to && i < MAX_DAYS + 2; i++) {
    const end = Math.min(to, nextDayStart(t));
    dayCounts(t).slouchMs += end - t;
    t = end;
  }
}

function countEvent(ev) {
  if (ev.kind === 'crack') {
    const d = dayCounts(ev.ts);
    d.cracks++;
    d[ev.crack]++;
    d.hours[new Date(ev.ts).getHours()]++;
    if (!state.lastCrack || ev.ts >= state.lastCrack.ts) state.lastCrack = { ts: ev.ts, crack: ev.crack };
  } else if (ev.kind === 'slouch') {
    // Counted for the wearer: while several posture sensors slouch at once it
    // is one slouch, and its minutes count once.
    const dur = num(ev.duration_ms);
    const onset = num(ev.onset_ts) ?? (dur !== null ? ev.ts - dur : ev.ts);
    if (ev.phase === 'start') {
      if (state.slouchOnset === null) {
        dayCounts(ev.ts).slouches++;
        state.slouchOnset = onset;
      } else {
        state.slouchOnset = Math.min(state.slouchOnset, onset);
      }
      state.openSlouches.set(ev.sensor, onset);
    } else if (ev.phase === 'end') {
      if (!state.openSlouches.has(ev.sensor)) {
        // its start is older than what we received (a gap): count what we know
        if (state.slouchOnset === null) addSlouchTime(onset, ev.ts);
      } else {
        state.openSlouches.delete(ev.sensor);
        if (state.openSlouches.size === 0) {
          addSlouchTime(state.slouchOnset, ev.ts);
          state.slouchOnset = null;
        }
      }
    }
  }
  dirty.today = true;
}

// ---------------------------------------------------------------- messages

function handleHello(m, conn) {
  const stream = str(m.stream) ?? '';
  const lastSeq = isSeq(m.last_seq) ? m.last_seq : 0;
  // Sequence numbers belong to one run of the daemon: a new stream (or a seq
  // that went backwards) means our cursor and history are meaningless.
  if (state.stream !== null && (stream !== state.stream || lastSeq < state.cursor)) {
    const askedFrom = conn.since;
    resetHistory();
    state.stream = stream;
    if (askedFrom > 0) {
      conn.restartNow = true;   // ask again from 0, at once
      conn.ws.close(1000, 'new stream');
      return;
    }
  }
  state.stream = stream;
  state.liveFrom = lastSeq;
  state.haveHello = true;

  const det = m.detector && typeof m.detector === 'object' ? m.detector : {};
  for (const k of ['threshold_deg', 'hysteresis_deg', 'delay_ms', 'calibration_ms']) {
    if (num(det[k]) !== null) state.detector[k] = det[k];
  }
  dirty.settings = true;

  // hello.sensors is the current truth: replace the table, keeping posture history.
  const list = Array.isArray(m.sensors) ? m.sensors : [];
  const keep = new Map();
  for (const info of list) {
    const address = info && str(info.address);
    if (!address || keep.size >= MAX_SENSORS) continue;
    const s = state.sensors.get(address) || { address, name: null, profile: null, roles: new Set(), state: null, lost: null, rejected: null, posture: null };
    applySensorInfo(s, info);
    keep.set(address, s);
  }
  for (const [address, s] of state.sensors) {
    if (!keep.has(address) && s.posture && s.posture.view) s.posture.view.card.remove();
  }
  state.sensors = keep;
  dirty.sensors = true;
  for (const s of keep.values()) if (s.roles.has('posture') || s.posture) dirty.posture.add(s.address);

  if (m.stats && typeof m.stats === 'object' && Array.isArray(m.stats.sensors)) {
    state.stats = m.stats;
    dirty.today = true;
  }

  conn.helloAt = Date.now();
  setConn('connected', 'Live');
}

// The record (cracks per day, usual rate, week over week) changes with every
// crack and slouch: ask for it again a little after the last one.
let statsTimer = 0;

function refreshStatsSoon() {
  if (statsTimer) return;
  statsTimer = setTimeout(() => {
    statsTimer = 0;
    const ws = connection.ws;
    if (ws && ws.readyState === WebSocket.OPEN) ws.send(JSON.stringify({ type: 'stats', id: STATS_REPLY_ID }));
  }, STATS_REFRESH_MS);
}

function handleReply(m) {
  if (m.id !== STATS_REPLY_ID || m.ok !== true || !m.stats || !Array.isArray(m.stats.sensors)) return;
  state.stats = m.stats;
  dirty.today = true;
}

function handleEvent(m) {
  if (!isSeq(m.seq) || m.seq <= state.cursor) return; // duplicate or malformed
  state.cursor = m.seq;
  const live = m.seq > state.liveFrom;
  const ts = num(m.ts);
  const sensor = str(m.sensor);
  if (ts === null || (!sensor && m.kind !== 'alert')) return; // alerts may concern no sensor
  let ev = null;

  if (m.kind === 'crack' && CRACK_KINDS.includes(m.crack)) {
    ev = { seq: m.seq, ts, sensor, kind: 'crack', crack: m.crack, intensity: num(m.intensity), duration_ms: num(m.duration_ms), count: num(m.count) };
    const s = sensorFor(sensor, true);
    if (s && !s.roles.has('sound')) { s.roles.add('sound'); dirty.sensors = true; }
  } else if (m.kind === 'slouch' && (m.phase === 'start' || m.phase === 'end')) {
    ev = {
      seq: m.seq, ts, sensor, kind: 'slouch', phase: m.phase, angle: num(m.angle),
      threshold_deg: num(m.threshold_deg), onset_ts: num(m.onset_ts), duration_ms: num(m.duration_ms), reason: str(m.reason),
    };
  } else if (m.kind === 'sensor' && SENSOR_STATES.includes(m.state)) {
    ev = { seq: m.seq, ts, sensor, kind: 'sensor', state: m.state, name: str(m.name), profile: str(m.profile) };
    // Replayed history must not overwrite the current state given by hello.
    const s = sensorFor(sensor, live);
    if (s) {
      if (live) applySensorInfo(s, m);
      else if (!s.name && ev.name) s.name = ev.name;
      dirty.sensors = true;
      if (s.posture) dirty.posture.add(sensor);
    }
  } else if (m.kind === 'alert' && ALERT_STATES.includes(m.state)) {
    ev = {
      seq: m.seq, ts, sensor, kind: 'alert', state: m.state, id: num(m.id), rule: str(m.rule),
      severity: m.severity === 'warning' ? 'warning' : 'info', message: str(m.message),
    };
  } else if (m.kind === 'calibration' && (m.result === 'done' || m.result === 'refused')) {
    ev = { seq: m.seq, ts, sensor, kind: 'calibration', result: m.result, reason: str(m.reason) };
  } else {
    return; // a kind this page does not know
  }

  countEvent(ev);
  addToList(ev);
  if (live) announce(describe(ev).spoken);
  if (live && (ev.kind === 'crack' || (ev.kind === 'slouch' && ev.phase === 'end'))) refreshStatsSoon();
}

function handlePosture(m) {
  const address = str(m.sensor);
  if (!address) return;
  const s = sensorFor(address, true);
  if (!s) return;
  if (!s.roles.has('posture')) { s.roles.add('posture'); dirty.sensors = true; }
  const p = postureOf(s);
  const calibrating = m.calibrating === true;
  const angle = num(m.angle);
  const wasSlouching = p.slouching;
  p.calibrating = calibrating;
  p.angle = calibrating ? null : angle;
  p.beyondMs = num(m.beyond_ms) ?? 0;
  p.slouching = m.slouching === true;
  p.receivedAt = performance.now();
  p.count++;
  pushSample(p, p.receivedAt, p.angle === null ? NaN : p.angle);
  dirty.posture.add(address);
  if (wasSlouching !== p.slouching) updateTitle();
}

function handleGap(m) {
  if (!isSeq(m.from) || !isSeq(m.to) || m.to < m.from) return;
  if (m.to > state.cursor) state.cursor = m.to;
  addToList({ kind: 'gap', from: m.from, to: m.to, ts: Date.now() });
}

function handleError(m, conn) {
  const code = str(m.code) ?? 'error';
  if (code === 'bad-since') state.cursor = 0;
  conn.serverError = str(m.message) || code;
}

function onMessage(conn, data) {
  if (typeof data !== 'string') return;
  let m;
  try { m = JSON.parse(data); } catch { return; }
  if (!m || typeof m !== 'object') return;
  switch (m.type) {
    case 'hello': handleHello(m, conn); break;
    case 'event': if (state.haveHello) handleEvent(m); break;
    case 'posture': handlePosture(m); break;
    case 'status': handleStatus(m); break;
    case 'gap': handleGap(m); break;
    case 'error': handleError(m, conn); break;
    case 'reply': handleReply(m); break;
    default: return; // unknown message types are ignored
  }
  requestRender();
}

function resetHistory() {
  state.cursor = 0;
  state.liveFrom = 0;
  state.events = [];
  state.pendingEvents = [];
  state.resetEvents = true;
  state.days.clear();
  state.openSlouches.clear();
  state.slouchOnset = null;
  state.lastCrack = null;
  dirty.today = true;
}

function addToList(ev) {
  state.events.unshift(ev);
  if (state.events.length > MAX_EVENTS) state.events.length = MAX_EVENTS;
  state.pendingEvents.push(ev);
  if (state.pendingEvents.length > MAX_EVENTS) state.pendingEvents.splice(0, state.pendingEvents.length - MAX_EVENTS);
}

// ---------------------------------------------------------------- connection

const connection = { ws: null, attempt: 0, timer: 0, since: 0, helloAt: 0, restartNow: false, serverError: null };

function feedUrl() {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/ws?since=${state.cursor}`;
}

function connect() {
  clearTimeout(connection.timer);
  connection.timer = 0;
  connection.restartNow = false;
  connection.serverError = null;
  connection.helloAt = 0;
  connection.since = state.cursor;
  state.haveHello = false;
  setConn('connecting', connection.attempt ? 'Reconnecting…' : 'Connecting…');
  let ws;
  try {
    ws = new WebSocket(feedUrl(), SUBPROTOCOL);
  } catch {
    scheduleReconnect();
    return;
  }
  connection.ws = ws;
  const openTimer = setTimeout(() => { if (ws.readyState !== WebSocket.OPEN) ws.close(); }, CONNECT_TIMEOUT_MS);
  ws.onopen = () => clearTimeout(openTimer);
  ws.onmessage = (e) => { if (connection.ws === ws) onMessage(connection, e.data); };
  ws.onclose = () => {
    clearTimeout(openTimer);
    if (connection.ws !== ws) return;
    connection.ws = null;
    if (connection.restartNow) { connect(); return; }
    // back off from scratch only after a connection that held for a while
    if (connection.helloAt && Date.now() - connection.helloAt > STABLE_MS) connection.attempt = 0;
    scheduleReconnect();
  };
  ws.onerror = () => { /* a close event follows */ };
}

function scheduleReconnect() {
  const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** connection.attempt);
  const delay = Math.round(base * (0.75 + Math.random() * 0.5));
  connection.attempt = Math.min(connection.attempt + 1, 10);
  connection.timer = setTimeout(connect, delay);
  showRetry();
}

// Said once per attempt (the state is a live region: no ticking countdown).
function showRetry() {
  const why = connection.serverError ? `The service said: ${connection.serverError}.` : 'Not connected.';
  setConn('disconnected', `${why} Trying again…`);
}

function retryNow() {
  if (connection.ws || !connection.timer) return;
  connect();
}

function setConn(kind, text) {
  const box = $('[data-testid="conn-state"]');
  box.dataset.state = kind;
  box.querySelector('.conn-text').textContent = text;
}

// ---------------------------------------------------------------- announcements

let announceQueue = [];
let announceTimer = 0;

function announce(text) {
  if (!text) return;
  announceQueue.push(text);
  if (announceQueue.length > 3) announceQueue = announceQueue.slice(-3);
  if (!announceTimer) {
    announceTimer = setTimeout(() => {
      announceTimer = 0;
      $('[data-testid="announcer"]').textContent = announceQueue.join(' ');
      announceQueue = [];
    }, ANNOUNCE_EVERY_MS);
  }
}

function updateTitle() {
  let slouching = false;
  for (const s of state.sensors.values()) if (s.posture && s.posture.slouching) slouching = true;
  document.title = slouching ? 'Slouching · spinewatch' : 'spinewatch';
}

// ---------------------------------------------------------------- event list

// Text for one event: a title, details and what a screen reader hears.
function describe(ev) {
  const who = ev.sensor ? sensorLabel(ev.sensor) : '';
  if (ev.kind === 'crack') {
    const name = CRACK_TEXT[ev.crack];
    const burst = ev.count !== null && ev.count > 1 ? `burst of ${ev.count}` : '';
    const meta = [who];
    if (ev.intensity !== null) meta.push(`intensity ${ev.intensity}`);
    if (ev.duration_ms !== null) meta.push(`${ev.duration_ms} ms`);
    return { title: name, detail: burst, meta: meta.join(' · '), spoken: `${name} heard${burst ? `, ${burst}` : ''}.` };
  }
  if (ev.kind === 'slouch' && ev.phase === 'start') {
    const angle = ev.angle !== null ? `, leaning ${Math.round(ev.angle)}°` : '';
    const since = ev.onset_ts !== null ? ` · forward since ${formatTime(ev.onset_ts)}` : '';
    return {
      title: 'Slouch noticed', detail: angle.slice(2), meta: `${who}${since}`,
      spoken: 'Slouch noticed. A good moment to sit up or take a short break.',
    };
  }
  if (ev.kind === 'slouch') {
    const dur = ev.duration_ms !== null ? formatDuration(ev.duration_ms) : '';
    const lost = ev.reason === 'sensor-lost';
    return {
      title: lost ? 'Slouch timer stopped' : 'Upright again',
      detail: dur ? `after ${dur}` : '',
      meta: lost ? `${who} · sensor connection lost` : who,
      spoken: lost ? 'Slouch timer stopped: sensor connection lost.' : 'Upright again. Nicely done.',
    };
  }
  if (ev.kind === 'sensor') {
    const name = ev.name || who;
    const text = SENSOR_STATE_TEXT[ev.state];
    return {
      title: name, detail: text, meta: ev.profile ? `${ev.sensor} · ${profileText(ev.profile)}` : ev.sensor,
      spoken: ev.state === 'lost' || ev.state === 'streaming' ? `${name}: ${text}.` : '',
    };
  }
  if (ev.kind === 'alert') {
    const title = { raised: 'Alert', acknowledged: 'Alert acknowledged', cleared: 'Alert over' }[ev.state];
    return {
      title, detail: '', meta: [ev.message, who].filter(Boolean).join(' · '),
      spoken: ev.state === 'raised' && ev.message ? ev.message : '',
    };
  }
  if (ev.kind === 'calibration') {
    const done = ev.result === 'done';
    return {
      title: done ? 'Calibrated' : 'Calibration refused',
      detail: done ? '' : ev.reason || '',
      meta: done ? `${who} · this position is upright now` : `${who} · sit upright and still, then try again`,
      spoken: done ? `${who} calibrated.` : `Calibration refused: ${ev.reason || 'try again'}.`,
    };
  }
  // gap
  const n = ev.to - ev.from + 1;
  return {
    title: `${n} older event${n === 1 ? '' : 's'} skipped`, detail: '',
    meta: 'No longer held by the service; counts above may be incomplete.', spoken: '',
  };
}

function eventItem(ev) {
  const d = describe(ev);
  const li = el('li', `ev ev-${ev.kind}`);
  li.dataset.kind = ev.kind;
  if (ev.seq !== undefined) li.dataset.seq = String(ev.seq);
  if (ev.sensor) li.dataset.sensor = ev.sensor;
  if (ev.kind === 'crack') { li.classList.add(`ev-${ev.crack}`); li.dataset.crack = ev.crack; }
  if (ev.kind === 'slouch') { li.classList.add(`ev-slouch-${ev.phase}`); li.dataset.phase = ev.phase; }
  if (ev.kind === 'sensor') li.classList.add(`ev-state-${ev.state}`);
  if (ev.kind === 'alert') { li.classList.add(`ev-alert-${ev.state}`, `ev-${ev.severity}`); li.dataset.rule = ev.rule || ''; }

  li.append(el('span', 'ev-icon'));
  li.firstChild.setAttribute('aria-hidden', 'true');
  const body = el('div', 'ev-body');
  const title = el('p', 'ev-title', d.title);
  if (d.detail) title.append(' ', el('span', 'ev-detail', d.detail));
  body.append(title);
  const meta = el('p', 'ev-meta', d.meta);
  body.append(meta);
  if (ev.kind === 'crack' && ev.intensity !== null) {
    const bar = el('span', 'ev-intensity');
    bar.setAttribute('aria-hidden', 'true');
    const fill = el('span', 'ev-intensity-fill');
    fill.style.width = `${Math.max(0, Math.min(100, ev.intensity))}%`;
    bar.append(fill);
    body.append(bar);
  }
  li.append(body);
  if (ev.kind !== 'gap') {
    const time = el('time', 'ev-time', formatTime(ev.ts));
    time.dateTime = new Date(ev.ts).toISOString();
    li.append(time);
  }
  return li;
}

function renderEvents() {
  const list = $('[data-testid="event-list"]');
  if (state.resetEvents) {
    list.replaceChildren();
    state.resetEvents = false;
  }
  if (state.pendingEvents.length) {
    const frag = document.createDocumentFragment();
    for (let i = state.pendingEvents.length - 1; i >= 0; i--) frag.append(eventItem(state.pendingEvents[i]));
    state.pendingEvents = [];
    list.prepend(frag);
    while (list.childElementCount > MAX_EVENTS) list.lastElementChild.remove();
  }
  $('[data-testid="events-empty"]').hidden = list.childElementCount > 0;
}

// ---------------------------------------------------------------- sensor list

function renderSensors() {
  const list = $('[data-testid="sensor-list"]');
  const sensors = [...state.sensors.values()].sort((a, b) => a.address.localeCompare(b.address));
  const items = sensors.map((s) => {
    const li = el('li', 'sensor');
    li.dataset.testid = `sensor-${s.address}`;
    li.dataset.state = s.state || 'unknown';
    const head = el('div', 'sensor-head');
    head.append(el('span', 'sensor-name', s.name || 'Unnamed sensor'));
    const badge = el('span', `badge state-${s.state || 'unknown'}`, s.state ? SENSOR_STATE_TEXT[s.state] : 'unknown');
    badge.dataset.testid = `sensor-state-${s.address}`;
    if (s.reason) badge.title = s.reason;
    head.append(badge);
    li.append(head);
    const roles = [...s.roles].sort().join(' + ') || 'role unknown';
    li.append(el('p', 'sensor-meta', `${s.address} · ${profileText(s.profile)} · ${roles}`));
    const counters = el('p', 'sensor-meta sensor-counters');
    counters.append(counter('lost', s.lost, 'notifications lost on the way'),
      ' · ', counter('rejected', s.rejected, 'payloads that could not be read'));
    li.append(counters);
    const health = [];
    if (s.battery !== null) health.push(`battery ${s.battery}%`);
    if (s.rssi !== null) health.push(`signal ${s.rssi} dBm`);
    if (s.notify) health.push(NOTIFY_TEXT[s.notify]);
    if (health.length) {
      const p = el('p', 'sensor-meta sensor-health', health.join(' · '));
      p.dataset.testid = `sensor-health-${s.address}`;
      li.append(p);
    }
    return li;
  });
  list.replaceChildren(...items);
  $('[data-testid="sensors-empty"]').hidden = items.length > 0;
}

function counter(label, value, title) {
  const span = el('span', value ? 'counter counter-nonzero' : 'counter', `${label} ${value ?? '–'}`);
  span.title = title;
  return span;
}

// ---------------------------------------------------------------- posture cards

function postureView(s) {
  const p = postureOf(s);
  if (p.view) return p.view;
  const card = el('article', 'posture-card');
  card.dataset.testid = `posture-${s.address}`;
  const head = el('header', 'posture-head');
  const name = el('h3', 'posture-name');
  head.append(name, el('span', 'muted small', s.address));
  const row = el('div', 'angle-row');
  const big = el('p', 'angle');
  const value = el('span', 'angle-value', '–');
  value.dataset.testid = `angle-${s.address}`;
  value.dataset.samples = '0';
  big.append(value, el('span', 'angle-unit', '°'));
  const side = el('div', 'angle-side');
  const status = el('p', 'posture-status');
  status.dataset.testid = `slouch-${s.address}`;
  const timer = el('div', 'timer');
  timer.setAttribute('aria-hidden', 'true');
  const timerFill = el('span', 'timer-fill');
  timer.append(timerFill);
  const hint = el('p', 'muted small posture-hint');
  side.append(status, timer, hint);
  row.append(big, side);
  const canvas = el('canvas', 'chart');
  canvas.dataset.testid = `chart-${s.address}`;
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', 'Forward lean over the last two minutes, with the slouch threshold');
  const axis = el('p', 'chart-axis muted small');
  axis.setAttribute('aria-hidden', 'true');
  axis.append(el('span', '', '2 min ago'), el('span', '', '1 min'), el('span', '', 'now'));
  card.append(head, row, canvas, axis);
  $('[data-testid="posture-list"]').append(card);
  p.view = { card, name, value, status, timer, timerFill, hint, canvas };
  return p.view;
}

function renderPosture(s) {
  const p = postureOf(s);
  const v = postureView(s);
  const det = state.detector;
  v.name.textContent = s.name || 'Posture sensor';
  v.value.dataset.samples = String(p.count);

  const fresh = p.count > 0 && performance.now() - p.receivedAt < STALE_MS;
  let mode;
  if (s.state === 'lost') mode = 'lost';
  else if (!fresh) mode = 'waiting';
  else if (p.calibrating) mode = 'calibrating';
  else if (p.slouching) mode = 'slouching';
  else if (p.beyondMs > 0) mode = 'beyond';
  else mode = 'upright';
  v.card.dataset.state = mode;

  v.value.textContent = p.angle !== null && mode !== 'calibrating' ? formatAngle(p.angle) : '–';
  v.value.dataset.calibrating = String(p.calibrating);
  let status = '';
  let hint = `Slouch: more than ${det.threshold_deg}° for ${formatDuration(det.delay_ms)}`;
  let fill = 0;
  switch (mode) {
    case 'lost': status = 'Sensor connection lost'; hint = 'spinewatch keeps trying to reconnect.'; break;
    case 'waiting': status = p.count ? 'No recent data' : 'Waiting for data'; break;
    case 'calibrating':
      status = 'Calibrating';
      hint = 'Sit upright for a moment: this sets your upright baseline.';
      break;
    case 'slouching':
      status = `Slouching for ${formatDuration(p.beyondMs)}`;
      hint = 'A good moment to sit up, or stand and stretch for a minute.';
      fill = 1;
      break;
    case 'beyond':
      status = `Leaning forward for ${formatDuration(p.beyondMs)}`;
      fill = det.delay_ms > 0 ? Math.min(1, p.beyondMs / det.delay_ms) : 1;
      break;
    default: status = 'Upright';
  }
  v.status.textContent = status;
  v.hint.textContent = hint;
  v.timerFill.style.width = `${Math.round(fill * 100)}%`;
  drawChart(p, v.canvas);
}

// ---------------------------------------------------------------- chart

let palette = null;

function readPalette() {
  const cs = getComputedStyle(document.documentElement);
  const get = (n) => cs.getPropertyValue(n).trim();
  palette = {
    line: get('--chart-line'), grid: get('--chart-grid'), text: get('--muted'),
    threshold: get('--chart-threshold'), zone: get('--chart-zone'), font: getComputedStyle(document.body).fontFamily,
  };
}

function drawChart(p, canvas) {
  if (!palette) readPalette();
  const dpr = window.devicePixelRatio || 1;
  const cssW = canvas.clientWidth;
  const cssH = canvas.clientHeight;
  if (!cssW || !cssH) return;
  const w = Math.round(cssW * dpr);
  const h = Math.round(cssH * dpr);
  if (canvas.width !== w) canvas.width = w;
  if (canvas.height !== h) canvas.height = h;
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssW, cssH);

  const now = performance.now();
  const threshold = state.detector.threshold_deg;
  let maxAngle = 0;
  for (let k = 0; k < p.len; k++) {
    const i = (p.head + k) % MAX_SAMPLES;
    const a = p.angles[i];
    if (now - p.times[i] <= CHART_WINDOW_MS && a > maxAngle) maxAngle = a;
  }
  const top = Math.max(30, Math.ceil((Math.max(threshold * 2, maxAngle + 5)) / 10) * 10);
  const left = 30;
  const right = cssW - 4;
  const plotTop = 6;
  const plotBottom = cssH - 4;
  const y = (a) => plotBottom - (Math.max(0, Math.min(top, a)) / top) * (plotBottom - plotTop);
  const x = (t) => right - ((now - t) / CHART_WINDOW_MS) * (right - left);

  // the zone beyond the threshold
  ctx.fillStyle = palette.zone;
  ctx.fillRect(left, plotTop, right - left, y(threshold) - plotTop);

  // grid and labels
  ctx.font = `11px ${palette.font}`;
  ctx.textBaseline = 'middle';
  ctx.textAlign = 'right';
  ctx.lineWidth = 1;
  const step = top <= 40 ? 10 : top <= 90 ? 20 : 45;
  for (let a = 0; a <= top; a += step) {
    const yy = Math.round(y(a)) + 0.5;
    ctx.strokeStyle = palette.grid;
    ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(right, yy); ctx.stroke();
    ctx.fillStyle = palette.text;
    ctx.fillText(`${a}°`, left - 4, Math.min(plotBottom - 5, Math.max(plotTop + 5, yy)));
  }

  // threshold
  const ty = Math.round(y(threshold)) + 0.5;
  ctx.strokeStyle = palette.threshold;
  ctx.lineWidth = 1.5;
  ctx.setLineDash([5, 4]);
  ctx.beginPath(); ctx.moveTo(left, ty); ctx.lineTo(right, ty); ctx.stroke();
  ctx.setLineDash([]);

  // the angle: broken where calibrating or where data stopped for a while
  ctx.strokeStyle = palette.line;
  ctx.lineWidth = 2;
  ctx.lineJoin = 'round';
  ctx.beginPath();
  let pen = false;
  let prevT = 0;
  for (let k = 0; k < p.len; k++) {
    const i = (p.head + k) % MAX_SAMPLES;
    const t = p.times[i];
    const a = p.angles[i];
    if (now - t > CHART_WINDOW_MS || Number.isNaN(a)) { pen = false; continue; }
    if (pen && t - prevT > 2000) pen = false;
    if (pen) ctx.lineTo(x(t), y(a)); else ctx.moveTo(x(t), y(a));
    pen = true;
    prevT = t;
  }
  ctx.stroke();
}

// ---------------------------------------------------------------- today

function renderToday() {
  const now = Date.now();
  const d = state.days.get(dayKey(now));
  const set = (id, v) => { $(`[data-testid="${id}"]`).textContent = String(v); };
  let slouchMs = d ? d.slouchMs : 0;
  const midnight = dayStart(now);
  if (state.slouchOnset !== null) slouchMs += Math.max(0, now - Math.max(state.slouchOnset, midnight));
  set('today-cracks', d ? d.cracks : 0);
  set('today-pops', d ? d.pop : 0);
  set('today-clicks', d ? d.click : 0);
  set('today-grinds', d ? d.grind : 0);
  set('today-slouches', d ? d.slouches : 0);
  set('today-slouch-minutes', Math.floor(slouchMs / 60000));

  const bars = $('[data-testid="today-hours"]');
  if (bars.childElementCount !== 24) {
    bars.replaceChildren(...Array.from({ length: 24 }, () => el('span', 'hour-bar')));
  }
  const hours = d ? d.hours : new Array(24).fill(0);
  const max = Math.max(1, ...hours);
  const current = new Date(now).getHours();
  hours.forEach((n, i) => {
    const bar = bars.children[i];
    bar.style.height = n ? `${Math.max(8, Math.round((n / max) * 100))}%` : '';
    bar.classList.toggle('hour-empty', n === 0);
    bar.classList.toggle('hour-now', i === current);
  });
  const busy = hours.map((n, i) => (n ? `${n} at ${i}h` : '')).filter(Boolean);
  bars.setAttribute('aria-label', `Cracks by hour today: ${busy.length ? busy.join(', ') : 'none yet'}`);

  const last = state.lastCrack && dayKey(state.lastCrack.ts) === dayKey(now) ? state.lastCrack : null;
  set('today-last-crack', last ? `Last crack ${formatAgo(now - last.ts)} (${CRACK_TEXT[last.crack].toLowerCase()}).` : 'No cracks heard today.');
  renderRecord(now, current);
}

const plural = (n, one, many) => `${n} ${n === 1 ? one : many}`;

function pctText(p) {
  if (num(p) === null) return null;
  if (p === 0) return 'the same as the week before';
  return `${Math.abs(p)} % ${p > 0 ? 'more' : 'fewer'} than the week before`;
}

// From the daemon's record: the usual cracks for this hour, and this week
// against the one before (every sensor together).
function renderRecord(now, hour) {
  const usualEl = $('[data-testid="today-usual"]');
  const weekEl = $('[data-testid="week-summary"]');
  const list = state.stats ? state.stats.sensors.filter((x) => x && typeof x === 'object') : [];
  if (!list.length) {
    usualEl.textContent = 'Your usual crack rate is learned over a few days of wear.';
    weekEl.textContent = '';
    return;
  }
  let usual = null;
  let week = 0;
  let prev = 0;
  let prevDays = 0;
  let slouch = 0;
  for (const x of list) {
    const b = Array.isArray(x.baseline_per_hour) ? num(x.baseline_per_hour[hour]) : null;
    if (b !== null) usual = (usual ?? 0) + b;
    const w = x.week && typeof x.week === 'object' ? x.week : {};
    week += num(w.cracks) ?? 0;
    prev += num(w.previous_cracks) ?? 0;
    prevDays += num(w.previous_days) ?? 0;
    slouch += num(w.slouch_min) ?? 0;
  }
  usualEl.textContent = usual === null
    ? 'Your usual crack rate is learned over a few days of wear.'
    : `Usually about ${plural(Math.round(usual * 10) / 10, 'crack', 'cracks')} in this hour of the day.`;
  const change = prevDays && prev ? pctText(Math.round(((week - prev) / prev) * 1000) / 10) : null;
  weekEl.textContent = `Last 7 days: ${plural(week, 'crack', 'cracks')}${change ? `, ${change}` : ''}; ` +
    `${Math.round(slouch)} min slouched.`;
}

function renderSettings() {
  const det = state.detector;
  $('[data-testid="detector-settings"]').textContent =
    `A slouch is counted after more than ${det.threshold_deg}° of forward lean for ${formatDuration(det.delay_ms)}; ` +
    `it ends below ${det.threshold_deg - det.hysteresis_deg}°.`;
}

// ---------------------------------------------------------------- render loop

let frame = 0;

function requestRender() {
  if (!frame) frame = requestAnimationFrame(render);
}

function render() {
  frame = 0;
  if (dirty.settings) { dirty.settings = false; renderSettings(); }
  if (dirty.sensors) { dirty.sensors = false; renderSensors(); }
  renderEvents();
  if (dirty.today) { dirty.today = false; renderToday(); }
  for (const address of dirty.posture) {
    const s = state.sensors.get(address);
    if (s && (s.posture || s.roles.has('posture'))) renderPosture(s);
  }
  dirty.posture.clear();
  let anyPosture = false;
  for (const s of state.sensors.values()) if (s.posture && s.posture.view) anyPosture = true;
  $('[data-testid="posture-empty"]').hidden = anyPosture;
}

// Once a second: scroll the charts, age "no recent data", tick the slouch minutes.
function tick() {
  for (const s of state.sensors.values()) if (s.posture && s.posture.view) dirty.posture.add(s.address);
  dirty.today = true;
  requestRender();
}

function start() {
  connect();
  setInterval(tick, 1000);
  window.addEventListener('online', retryNow);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) retryNow(); });
  const dark = window.matchMedia('(prefers-color-scheme: dark)');
  dark.addEventListener('change', () => { palette = null; for (const s of state.sensors.values()) if (s.posture) dirty.posture.add(s.address); requestRender(); });
  window.addEventListener('resize', () => { for (const s of state.sensors.values()) if (s.posture) dirty.posture.add(s.address); requestRender(); });
}

start();
