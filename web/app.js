// web/app.js - the spinewatch dashboard's behaviour: connects to the daemon's
// WebSocket feed (protocol/websocket-feed.md, through feed.js), keeps a
// bounded picture of the sensors, the live posture angles, recent events,
// alerts and the per-day record, and renders it into index.html:
//   Now     a card per posture sensor (angle gauge against the threshold,
//           slouch timer, time since the last break, calibrate button,
//           two-minute trend) and a card per sensor (state and why, battery,
//           signal, notifications lost)
//   Today   cracks by kind, slouches, minutes slouched, breaks; a timeline of
//           the day with every crack and slouch; cracks per hour against the
//           wearer's usual rate
//   Weeks   cracks and minutes slouched per day for the last 8 weeks
//   Alerts  banners (alerts.js)
//   Events  the recent events, newest first; cracks, slouches and alerts
//           take the wearer's note (pain, stiffness, what they were doing;
//           notes.js), shown on the event's item
// No framework, no build step; all data goes into the page through
// textContent (never innerHTML) and styles through classes or element.style,
// so the daemon's strict CSP holds. Charts are Chart.js (charts.js).

import {
  $, el, num, str, isSeq, dayKey, isoDate, dayStart, nextDayStart, daysBefore, formatDuration, formatMinutes,
  formatAgo, formatTime, formatClock, formatLongDay, plural,
} from './util.js';
import { Feed } from './feed.js';
import { probe, saveToken, takeTokenFromUrl, token, validToken } from './access.js';
import { Alerts } from './alerts.js';
import { Notes } from './notes.js';
import {
  loadCharts, chartsFailed, retheme, TrendChart, HoursChart, TimelineChart, WeeksCracksChart, WeeksSlouchChart,
} from './charts.js';

const MAX_EVENTS = 200;            // events kept in the list
const MAX_SENSORS = 64;            // sensors tracked (the daemon knows its own bound)
const MAX_DAYS = 8;                // days of counts kept from events
const MAX_MARKS = 5000;            // cracks and slouches kept for today's timeline
const TREND_MS = 120000;           // posture trend: last two minutes
const STALE_MS = 5000;             // no posture message for this long: "no recent data"
const ANNOUNCE_EVERY_MS = 2000;
const STATS_REFRESH_MS = 1500;     // after a live crack or slouch, ask for the record again
const STATS_REPLY_ID = 'dashboard-stats';
const CALIBRATE_TIMEOUT_MS = 20000;
const WEEK_DAYS = 56;              // the record keeps 8 weeks
const TIMELINE_MIN_MS = 5 * 60000;  // the timeline spans at least this

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
const CALIB_REASON_TEXT = {
  moving: 'the sensor was moving',
  'no samples': 'no data came from the sensor',
  'not a gravity vector': 'the sensor sent readings that are not a steady position',
  'timed out': 'it took too long to find a still moment',
  'sensor lost': 'the sensor connection was lost',
};

// ---------------------------------------------------------------- state

const state = {
  stream: null,          // hello.stream of the run the cursor belongs to
  cursor: 0,             // last event seq processed (resume point)
  liveFrom: 0,           // hello.last_seq of this connection: events at or below it are replayed history
  detector: { threshold_deg: 15, hysteresis_deg: 5, delay_ms: 60000, calibration_ms: 3000 },
  haveHello: false,
  sensors: new Map(),    // address -> sensor record
  events: [],            // newest first, at most MAX_EVENTS
  pendingEvents: [],     // added since the last render, oldest first, at most MAX_EVENTS
  resetEvents: false,
  days: new Map(),       // local day key -> counts from events
  openSlouches: new Map(), // sensor address -> onset_ts of a slouch not ended yet
  slouchOnset: null,     // onset of the wearer's current slouch (any sensor), or null
  lastCrack: null,       // {ts, crack}
  marks: { cracks: [], slouches: [] },  // for the timeline: {ts, crack, intensity}, {sensor, start, end}
  stats: null,           // the daemon's per-day record (hello.stats, stats replies)
  calib: new Map(),      // address -> {phase: running|done|refused|error, text, timer}
  calibCmds: new Map(),  // command id -> address
  nextCmd: 1,
};

const dirty = { sensors: false, today: false, weeks: false, posture: new Set(), settings: false, alerts: false };

takeTokenFromUrl();

const feed = new Feed({
  cursor: () => state.cursor,
  onMessage,
  onState: setConn,
  token,
  onRefused: () => { checkAccess(); },
});

const alerts = new Alerts({
  send: (cmd) => feed.send(cmd),
  label: (address) => sensorLabel(address),
  onChange: () => { dirty.alerts = true; requestRender(); },
});

const notes = new Notes({
  send: (cmd) => feed.send(cmd),
  label: (ev) => `${describe(ev).title} at ${formatTime(ev.ts)}`,
  onChange: () => requestRender(),
  announce: (text) => announce(text),
});

const charts = {
  hours: new HoursChart($('[data-testid="today-hours"]')),
  timeline: new TimelineChart($('[data-testid="today-timeline"]')),
  weeksCracks: new WeeksCracksChart($('[data-testid="weeks-cracks"]')),
  weeksSlouch: new WeeksSlouchChart($('[data-testid="weeks-slouch"]')),
};

// ---------------------------------------------------------------- sensors

function newSensor(address) {
  return {
    address, name: null, profile: null, roles: new Set(), state: null, reason: null, lost: null, rejected: null,
    battery: null, rssi: null, received: null, notify: null, posture: null,
  };
}

function sensorFor(address, create) {
  let s = state.sensors.get(address);
  if (!s && create && state.sensors.size < MAX_SENSORS) {
    s = newSensor(address);
    state.sensors.set(address, s);
  }
  return s || null;
}

function profileText(profile) {
  if (profile === 'microbit') return 'micro:bit';
  if (profile === 'thingy52') return 'Thingy:52';
  if (profile === 'spinewatch') return 'Spine Sensor Profile';
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
  dirty.sensors = true;
  if (s.posture) dirty.posture.add(s.address);
}

// Posture data of one sensor: the latest message and the samples of the trend.
function postureOf(s) {
  if (!s.posture) {
    s.posture = {
      angle: null, calibrating: false, beyondMs: 0, slouching: false, sittingMs: null,
      receivedAt: 0, count: 0, samples: [], view: null,
    };
  }
  return s.posture;
}

// ---------------------------------------------------------------- counts from events

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

function keepMarks(list) {
  if (list.length > MAX_MARKS) list.splice(0, list.length - MAX_MARKS);
}

function countEvent(ev) {
  if (ev.kind === 'crack') {
    const d = dayCounts(ev.ts);
    d.cracks++;
    d[ev.crack]++;
    d.hours[new Date(ev.ts).getHours()]++;
    if (!state.lastCrack || ev.ts >= state.lastCrack.ts) state.lastCrack = { ts: ev.ts, crack: ev.crack };
    state.marks.cracks.push({ ts: ev.ts, crack: ev.crack, intensity: ev.intensity });
    keepMarks(state.marks.cracks);
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
      state.marks.slouches.push({ sensor: ev.sensor, start: onset, end: null });
      keepMarks(state.marks.slouches);
    } else if (ev.phase === 'end') {
      const mark = state.marks.slouches.findLast((x) => x.sensor === ev.sensor && x.end === null);
      if (mark) mark.end = ev.ts;
      else state.marks.slouches.push({ sensor: ev.sensor, start: onset, end: ev.ts });
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

function handleHello(m) {
  const stream = str(m.stream) ?? '';
  const lastSeq = isSeq(m.last_seq) ? m.last_seq : 0;
  // Sequence numbers belong to one run of the daemon: a new stream (or a seq
  // that went backwards) means our cursor and history are meaningless.
  if (state.stream !== null && (stream !== state.stream || lastSeq < state.cursor)) {
    const askedFrom = feed.since;
    resetHistory();
    state.stream = stream;
    if (askedFrom > 0) {
      feed.restartFromZero();
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
    const s = state.sensors.get(address) || newSensor(address);
    applySensorInfo(s, info);
    keep.set(address, s);
  }
  for (const [address, s] of state.sensors) {
    if (!keep.has(address) && s.posture && s.posture.view) {
      s.posture.view.card.remove();
      s.posture.view.chart.destroy();
    }
  }
  state.sensors = keep;
  dirty.sensors = true;
  for (const s of keep.values()) if (s.roles.has('posture') || s.posture) dirty.posture.add(s.address);

  alerts.replaceAll(m.alerts);
  if (m.stats && typeof m.stats === 'object' && Array.isArray(m.stats.sensors)) {
    state.stats = m.stats;
    dirty.today = true;
    dirty.weeks = true;
  }
  feed.markLive();
}

// The record (cracks per day, usual rate, week over week) changes with every
// crack and slouch: ask for it again a little after the last one.
let statsTimer = 0;

function refreshStatsSoon() {
  if (statsTimer) return;
  statsTimer = setTimeout(() => {
    statsTimer = 0;
    feed.send({ type: 'stats', id: STATS_REPLY_ID });
  }, STATS_REFRESH_MS);
}

function handleReply(m) {
  if (alerts.reply(m)) return;
  if (notes.reply(m)) return;
  if (typeof m.id === 'string' && state.calibCmds.has(m.id)) {
    calibrateReply(m);
    return;
  }
  if (m.id !== STATS_REPLY_ID || m.ok !== true || !m.stats || !Array.isArray(m.stats.sensors)) return;
  state.stats = m.stats;
  dirty.today = true;
  dirty.weeks = true;
}

function handleEvent(m) {
  if (!isSeq(m.seq) || m.seq <= state.cursor) return; // duplicate or malformed
  state.cursor = m.seq;
  if (m.kind === 'annotation') {
    // not a list item: it decorates the event it names (notes.js)
    notes.event(m);
    return;
  }
  const live = m.seq > state.liveFrom;
  const ts = num(m.ts);
  const sensor = str(m.sensor);
  if (ts === null || (!sensor && m.kind !== 'alert')) return; // alerts may concern no sensor
  let ev = null;

  if (m.kind === 'crack' && CRACK_KINDS.includes(m.crack)) {
    ev = {
      seq: m.seq, ts, sensor, kind: 'crack', crack: m.crack, intensity: num(m.intensity), duration_ms: num(m.duration_ms), count: num(m.count),
      level_dbfs: num(m.level_dbfs), freq_hz: num(m.freq_hz), // heard in audio (a Thingy:52's microphone)
    };
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
    alerts.event(m, live);
  } else if (m.kind === 'calibration' && (m.result === 'done' || m.result === 'refused')) {
    ev = { seq: m.seq, ts, sensor, kind: 'calibration', result: m.result, reason: str(m.reason) };
    if (live) calibrationResult(ev);
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
  p.sittingMs = num(m.sitting_ms);
  p.receivedAt = performance.now();
  p.count++;
  p.samples.push({ t: p.receivedAt, a: p.angle });
  while (p.samples.length && p.receivedAt - p.samples[0].t > TREND_MS + 2000) p.samples.shift();
  dirty.posture.add(address);
  if (wasSlouching !== p.slouching) updateTitle();
}

function handleGap(m) {
  if (!isSeq(m.from) || !isSeq(m.to) || m.to < m.from) return;
  if (m.to > state.cursor) state.cursor = m.to;
  addToList({ kind: 'gap', from: m.from, to: m.to, ts: Date.now() });
}

function handleError(m) {
  const code = str(m.code) ?? 'error';
  if (code === 'bad-since') state.cursor = 0;
  feed.serverSaid(str(m.message) || code);
}

function onMessage(data) {
  let m;
  try { m = JSON.parse(data); } catch { return; }
  if (!m || typeof m !== 'object') return;
  switch (m.type) {
    case 'hello': handleHello(m); break;
    case 'event': if (state.haveHello) handleEvent(m); break;
    case 'posture': handlePosture(m); break;
    case 'status': handleStatus(m); break;
    case 'gap': handleGap(m); break;
    case 'error': handleError(m); break;
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
  state.marks = { cracks: [], slouches: [] };
  alerts.reset();
  notes.reset();
  dirty.today = true;
}

function addToList(ev) {
  state.events.unshift(ev);
  if (state.events.length > MAX_EVENTS) state.events.length = MAX_EVENTS;
  state.pendingEvents.push(ev);
  if (state.pendingEvents.length > MAX_EVENTS) state.pendingEvents.splice(0, state.pendingEvents.length - MAX_EVENTS);
}

// ---------------------------------------------------------------- connection state

function setConn(kind, text) {
  const box = $('[data-testid="conn-state"]');
  box.dataset.state = kind;
  box.querySelector('.conn-text').textContent = text;
  document.body.dataset.conn = kind;
  $('[data-testid="retry-now"]').hidden = kind !== 'offline';
  if (kind !== 'live') state.haveHello = false;
}

// ---------------------------------------------------------------- access token

let probing = false;

// The feed closed before it opened: ask the HTTP API why. A token is needed or
// was refused: stop retrying and ask for one. A host name the server does not
// answer to: say so (retrying cannot help, but the admin may fix it).
async function checkAccess() {
  if (probing) return;
  probing = true;
  try {
    const r = await probe();
    if (r.kind === 'token' || r.kind === 'bad-token') {
      if (r.kind === 'bad-token') saveToken('');
      feed.pause();
      showAccess(r.kind === 'bad-token'
        ? 'The access token this browser had was refused. Enter a current one.'
        : 'Seeing this dashboard from another machine needs an access token.');
    } else if (r.kind === 'host') {
      setConn('offline', `This spinewatch does not answer to the name ${r.text}. Its admin can add it to [access] hosts.`);
    }
  } finally {
    probing = false;
  }
}

function showAccess(why) {
  const panel = $('[data-testid="access-panel"]');
  panel.querySelector('[data-testid="access-why"]').textContent = why;
  const wasHidden = panel.hidden;
  panel.hidden = false;
  setConn('locked', 'Access token needed');
  if (wasHidden) panel.querySelector('input').focus();
}

$('[data-testid="access-form"]').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = e.target.querySelector('input');
  const t = input.value.trim();
  const err = $('[data-testid="access-error"]');
  if (!validToken(t)) {
    err.textContent = 'A token is 16 to 128 letters, digits and - . _ ~';
    err.hidden = false;
    input.setAttribute('aria-invalid', 'true');
    input.focus();
    return;
  }
  err.hidden = true;
  input.removeAttribute('aria-invalid');
  input.value = '';
  saveToken(t);
  $('[data-testid="access-panel"]').hidden = true;
  feed.resume();
});

// ---------------------------------------------------------------- calibration

function setCalib(address, phase, text) {
  const old = state.calib.get(address);
  if (old && old.timer) clearTimeout(old.timer);
  const c = { phase, text, timer: 0 };
  if (phase === 'running') {
    c.timer = setTimeout(() => {
      const now = state.calib.get(address);
      if (now === c) setCalib(address, 'error', 'No result came from the sensor. Sit upright and still, then try again.');
    }, CALIBRATE_TIMEOUT_MS);
  }
  state.calib.set(address, c);
  dirty.posture.add(address);
  requestRender();
}

function calibrate(address) {
  const id = `cal-${state.nextCmd++}`;
  if (!feed.send({ type: 'calibrate', sensor: address, id })) {
    setCalib(address, 'error', 'Not connected to spinewatch right now; try again in a moment.');
    return;
  }
  state.calibCmds.set(id, address);
  setCalib(address, 'running', 'Sit upright and still…');
}

function calibrateReply(m) {
  const address = state.calibCmds.get(m.id);
  state.calibCmds.delete(m.id);
  if (m.ok === true) return;    // started: the calibration event tells the result
  if (m.code === 'busy') return; // one is running already: its event will come
  const text = {
    'not-streaming': 'The sensor is not sending data right now, so it cannot be calibrated.',
    'not-a-posture-sensor': 'Only posture sensors can be calibrated.',
    'unknown-sensor': 'spinewatch does not know this sensor any more.',
  }[m.code] || `Could not calibrate: ${str(m.message) || str(m.code) || 'refused'}.`;
  setCalib(address, 'error', text);
}

function calibrationResult(ev) {
  if (ev.result === 'done') {
    setCalib(ev.sensor, 'done', `Calibrated at ${formatClock(ev.ts)}: this position is your upright now.`);
  } else {
    const why = CALIB_REASON_TEXT[ev.reason] || ev.reason || 'refused';
    setCalib(ev.sensor, 'refused', `Not calibrated: ${why}. Sit upright and still, then try again.`);
  }
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
  const raised = [...alerts.active.values()].filter((a) => a.state === 'raised').length;
  document.title = `${raised ? `(${raised}) ` : ''}${slouching ? 'Slouching · ' : ''}spinewatch`;
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
    if (ev.level_dbfs !== null) meta.push(`${ev.level_dbfs.toFixed(1)} dBFS`);
    if (ev.freq_hz !== null) meta.push(`around ${Math.round(ev.freq_hz)} Hz`);
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
    // raised alerts are read out by the banner area (a live region)
    return { title, detail: '', meta: [ev.message, who].filter(Boolean).join(' · '), spoken: '' };
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
  if (ev.kind === 'crack') {
    li.classList.add(`ev-${ev.crack}`);
    li.dataset.crack = ev.crack;
    if (ev.intensity !== null) li.dataset.intensity = String(ev.intensity);
  }
  if (ev.kind === 'slouch') { li.classList.add(`ev-slouch-${ev.phase}`); li.dataset.phase = ev.phase; }
  if (ev.kind === 'sensor') li.classList.add(`ev-state-${ev.state}`);
  if (ev.kind === 'alert') { li.classList.add(`ev-alert-${ev.state}`, `ev-${ev.severity}`); li.dataset.rule = ev.rule || ''; li.dataset.state = ev.state; }
  if (ev.kind === 'calibration') li.classList.add(`ev-calibration-${ev.result}`);

  const icon = el('span', 'ev-icon');
  icon.setAttribute('aria-hidden', 'true');
  li.append(icon);
  const body = el('div', 'ev-body');
  const title = el('p', 'ev-title', d.title);
  if (d.detail) title.append(' ', el('span', 'ev-detail', d.detail));
  body.append(title);
  body.append(el('p', 'ev-meta', d.meta));
  if (ev.kind === 'crack' && ev.intensity !== null) {
    const bar = el('span', 'ev-intensity');
    bar.setAttribute('aria-hidden', 'true');
    const fill = el('span', 'ev-intensity-fill');
    fill.style.width = `${Math.max(0, Math.min(100, ev.intensity))}%`;
    bar.append(fill);
    body.append(bar);
  }
  notes.decorate(li, body, ev);
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
  notes.refresh(list);
  $('[data-testid="events-empty"]').hidden = list.childElementCount > 0;
}

// ---------------------------------------------------------------- sensor cards

function signalWord(rssi) {
  if (rssi >= -60) return 'strong';
  if (rssi >= -75) return 'fair';
  return 'weak';
}

function fact(label, value, cls, title) {
  const div = el('div', `fact${cls ? ` ${cls}` : ''}`);
  div.append(el('dt', '', label), el('dd', '', value));
  if (title) div.title = title;
  return div;
}

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
    head.append(badge);
    li.append(head);
    const roles = [...s.roles].sort().join(' + ') || 'role unknown';
    li.append(el('p', 'sensor-meta', `${s.address} · ${profileText(s.profile)} · ${roles}`));
    if (s.reason) {
      const why = el('p', 'sensor-reason', `Why: ${s.reason}`);
      why.dataset.testid = `sensor-reason-${s.address}`;
      li.append(why);
    }
    const facts = el('dl', 'sensor-facts');
    facts.dataset.testid = `sensor-health-${s.address}`;
    facts.append(
      fact('Battery', s.battery === null ? '–' : `${s.battery}${'\u00a0'}%`, s.battery !== null && s.battery < 20 ? 'fact-warn' : '',
        s.battery === null ? 'This sensor does not report its battery.' : ''),
      fact('Signal', s.rssi === null ? '–' : `${s.rssi}${'\u00a0'}dBm, ${signalWord(s.rssi)}`, s.rssi !== null && s.rssi < -75 ? 'fact-warn' : '',
        'Signal strength; known while spinewatch is scanning for sensors.'),
      fact('Lost', s.lost === null ? '–' : String(s.lost), s.lost ? 'fact-warn' : '', 'Notifications lost on the way (from the sensor’s counters).'),
      fact('Rejected', s.rejected === null ? '–' : String(s.rejected), s.rejected ? 'fact-warn' : '', 'Payloads that could not be read.'),
    );
    li.append(facts);
    if (s.notify) li.append(el('p', 'sensor-meta', `Data path: ${NOTIFY_TEXT[s.notify]}${s.received !== null ? ` · ${s.received} received` : ''}`));
    return li;
  });
  list.replaceChildren(...items);
  $('[data-testid="sensors-empty"]').hidden = items.length > 0;
}

// ---------------------------------------------------------------- posture cards

function postureView(s) {
  const p = postureOf(s);
  if (p.view) return p.view;
  const a = s.address;
  const card = el('article', 'posture-card');
  card.dataset.testid = `posture-${a}`;
  card.setAttribute('aria-label', 'Posture sensor');

  const head = el('header', 'posture-head');
  const titles = el('div', 'posture-titles');
  const name = el('h3', 'posture-name');
  titles.append(name, el('span', 'muted small', a));
  const calBtn = el('button', 'btn btn-small calibrate', 'Calibrate');
  calBtn.type = 'button';
  calBtn.dataset.testid = `calibrate-${a}`;
  calBtn.title = 'Sit upright and still, then press: this position becomes your upright baseline.';
  calBtn.addEventListener('click', () => calibrate(a));
  head.append(titles, calBtn);

  const row = el('div', 'angle-row');
  const big = el('p', 'angle');
  const value = el('span', 'angle-value', '–');
  value.dataset.testid = `angle-${a}`;
  value.dataset.samples = '0';
  big.append(value, el('span', 'angle-unit', '°'));
  const side = el('div', 'angle-side');
  const status = el('p', 'posture-status');
  status.dataset.testid = `slouch-${a}`;
  const timer = el('div', 'timer');
  timer.setAttribute('aria-hidden', 'true');
  const timerFill = el('span', 'timer-fill');
  timer.append(timerFill);
  const hint = el('p', 'muted small posture-hint');
  side.append(status, timer);
  row.append(big, side);

  // the gauge: the angle against the threshold (the shaded zone is beyond it)
  const gauge = el('div', 'gauge');
  gauge.setAttribute('role', 'meter');
  gauge.setAttribute('aria-label', 'Forward lean');
  gauge.setAttribute('aria-valuemin', '0');
  gauge.dataset.testid = `gauge-${a}`;
  const zone = el('span', 'gauge-zone');
  const fill = el('span', 'gauge-fill');
  const mark = el('span', 'gauge-mark');
  gauge.append(zone, fill, mark);
  const scale = el('div', 'gauge-scale');
  scale.setAttribute('aria-hidden', 'true');
  const scaleThr = el('span', 'gauge-thr');
  const scaleMax = el('span', 'gauge-max');
  scale.append(el('span', 'gauge-min', '0°'), scaleThr, scaleMax);

  const facts = el('dl', 'posture-facts');
  const sitting = el('dd', '', '–');
  sitting.dataset.testid = `sitting-${a}`;
  const sitDiv = el('div', 'fact');
  sitDiv.append(el('dt', '', 'Since the last break'), sitting);
  facts.append(sitDiv);

  const calib = el('p', 'calib-status small');
  calib.dataset.testid = `calib-${a}`;
  calib.setAttribute('role', 'status');

  const box = el('div', 'chart-box chart-trend');
  const canvas = el('canvas');
  canvas.dataset.testid = `chart-${a}`;
  canvas.setAttribute('role', 'img');
  canvas.setAttribute('aria-label', 'Forward lean over the last two minutes, with the slouch threshold');
  box.append(canvas);

  card.append(head, row, hint, gauge, scale, facts, calib, box);
  $('[data-testid="posture-list"]').append(card);
  p.view = {
    card, name, value, status, timerFill, hint, gauge, zone, fill, mark, scaleThr, scaleMax, sitting, calib, calBtn,
    chart: new TrendChart(canvas),
  };
  return p.view;
}

function renderPosture(s) {
  const p = postureOf(s);
  const v = postureView(s);
  const det = state.detector;
  v.name.textContent = s.name || 'Posture sensor';
  v.card.setAttribute('aria-label', `Posture: ${s.name || s.address}`);
  v.value.dataset.samples = String(p.count);

  const now = performance.now();
  const fresh = p.count > 0 && now - p.receivedAt < STALE_MS;
  let mode;
  if (s.state === 'lost' || s.state === 'waiting' || s.state === 'gone') mode = 'lost';
  else if (!fresh) mode = 'waiting';
  else if (p.calibrating) mode = 'calibrating';
  else if (p.slouching) mode = 'slouching';
  else if (p.beyondMs > 0) mode = 'beyond';
  else mode = 'upright';
  v.card.dataset.state = mode;

  const showAngle = p.angle !== null && mode !== 'calibrating' && mode !== 'lost';
  v.value.textContent = showAngle ? p.angle.toFixed(1) : '–';
  v.value.dataset.calibrating = String(p.calibrating);
  let status = '';
  let hint = '';
  let fill = 0;
  switch (mode) {
    case 'lost': status = 'Sensor out of reach'; hint = 'spinewatch keeps trying to reconnect.'; break;
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
      status = p.beyondMs < 1000 ? 'Leaning forward' : `Leaning forward for ${formatDuration(p.beyondMs)}`;
      fill = det.delay_ms > 0 ? Math.min(1, p.beyondMs / det.delay_ms) : 1;
      break;
    default: status = 'Upright';
  }
  v.status.textContent = status;
  v.hint.textContent = hint;
  v.hint.hidden = !hint;
  v.timerFill.style.width = `${Math.round(fill * 100)}%`;

  // gauge scale: at least 45°, and twice the threshold
  const max = Math.max(45, Math.ceil((det.threshold_deg * 2) / 5) * 5);
  const pct = (a) => `${(Math.max(0, Math.min(max, a)) / max) * 100}%`;
  v.zone.style.left = pct(det.threshold_deg);
  v.mark.style.left = pct(det.threshold_deg);
  v.fill.style.width = showAngle ? pct(p.angle) : '0%';
  v.scaleThr.style.left = pct(det.threshold_deg);
  v.scaleThr.textContent = `${det.threshold_deg}°`;
  v.scaleMax.textContent = `${max}°`;
  v.gauge.setAttribute('aria-valuemax', String(max));
  if (showAngle) {
    v.gauge.setAttribute('aria-valuenow', p.angle.toFixed(1));
    v.gauge.setAttribute('aria-valuetext', `${p.angle.toFixed(0)}°, ${p.angle > det.threshold_deg ? 'beyond' : 'within'} the ${det.threshold_deg}° limit`);
  } else {
    v.gauge.removeAttribute('aria-valuenow');
    v.gauge.setAttribute('aria-valuetext', 'no reading');
  }

  // time since the last break (sitting_ms: 0 while on a break)
  if (!fresh || p.sittingMs === null) v.sitting.textContent = '–';
  else if (p.sittingMs === 0) v.sitting.textContent = 'on a break now';
  else v.sitting.textContent = formatMinutes(p.sittingMs);

  const c = state.calib.get(s.address);
  v.calib.textContent = c ? c.text : '';
  v.calib.dataset.state = c ? c.phase : '';
  v.calib.hidden = !c;
  const running = !!c && c.phase === 'running';
  v.calBtn.disabled = running || mode === 'lost' || s.state !== 'streaming';
  v.calBtn.textContent = running ? 'Calibrating…' : 'Calibrate';

  v.chart.update(p.samples, det.threshold_deg, now);
}

// ---------------------------------------------------------------- today

// Today from the daemon's record, summed over the sensors (one wearer), or
// null when the record has nothing for today.
function recordToday(now) {
  const list = state.stats ? state.stats.sensors.filter((x) => x && typeof x === 'object') : [];
  const date = isoDate(now);
  const t = { cracks: 0, pop: 0, click: 0, grind: 0, slouch_min: 0, breaks: 0, hours: new Array(24).fill(0) };
  let any = false;
  for (const x of list) {
    const d = x.today;
    if (!d || typeof d !== 'object' || d.date !== date) continue;
    any = true;
    for (const k of ['cracks', 'pop', 'click', 'grind', 'slouch_min', 'breaks']) t[k] += num(d[k]) ?? 0;
    const h = d.hours && Array.isArray(d.hours.cracks) ? d.hours.cracks : [];
    for (let i = 0; i < 24; i++) t.hours[i] += num(h[i]) ?? 0;
  }
  return any ? t : null;
}

// The wearer's usual cracks per hour of day (summed over sensors), or null
// until the daemon knows it (3 worn days).
function usualPerHour() {
  const list = state.stats ? state.stats.sensors.filter((x) => x && typeof x === 'object') : [];
  const usual = new Array(24).fill(null);
  let any = false;
  for (const x of list) {
    if (!Array.isArray(x.baseline_per_hour)) continue;
    for (let i = 0; i < 24; i++) {
      const b = num(x.baseline_per_hour[i]);
      if (b !== null) { usual[i] = (usual[i] ?? 0) + b; any = true; }
    }
  }
  return any ? usual : null;
}

// Today's figures: the record's (it outlives daemon restarts) or the ones
// counted from events (they are ahead of the record between two stats
// replies), whichever has seen more cracks; never a mix, so they add up.
function todayFigures(now) {
  const d = state.days.get(dayKey(now));
  const rec = recordToday(now);
  const ongoing = state.slouchOnset !== null ? Math.max(0, now - Math.max(state.slouchOnset, dayStart(now))) : 0;
  const fromEvents = {
    cracks: d ? d.cracks : 0, pop: d ? d.pop : 0, click: d ? d.click : 0, grind: d ? d.grind : 0,
    hours: d ? d.hours.slice() : new Array(24).fill(0),
  };
  const f = rec && rec.cracks >= fromEvents.cracks ? { ...rec } : { ...fromEvents };
  f.slouches = d ? d.slouches : 0;
  f.slouchMs = Math.max(rec ? rec.slouch_min * 60000 : 0, d ? d.slouchMs : 0) + ongoing;
  f.breaks = rec ? rec.breaks : 0;
  return f;
}

function renderToday() {
  const now = Date.now();
  const f = todayFigures(now);
  const set = (id, v) => { $(`[data-testid="${id}"]`).textContent = String(v); };
  set('today-cracks', f.cracks);
  set('today-pops', f.pop);
  set('today-clicks', f.click);
  set('today-grinds', f.grind);
  set('today-slouches', f.slouches);
  set('today-slouch-minutes', Math.floor(f.slouchMs / 60000));
  set('today-breaks', f.breaks);

  const hour = new Date(now).getHours();
  const usual = usualPerHour();
  charts.hours.update(f.hours, usual, hour);

  // the timeline: the part of today with marks (at least the last 5 min) up
  // to now, starting on a round time
  const midnight = dayStart(now);
  let first = now - TIMELINE_MIN_MS;
  for (const c of state.marks.cracks) if (c.ts >= midnight && c.ts < first) first = c.ts;
  for (const s of state.marks.slouches) if ((s.end ?? now) >= midnight && s.start < first) first = Math.max(s.start, midnight);
  const span = now - first;
  const step = span > 4 * 3600000 ? 3600000 : span > 3600000 ? 15 * 60000 : span > 20 * 60000 ? 5 * 60000 : 60000;
  const from = Math.max(midnight, midnight + Math.floor((first - span * 0.03 - midnight) / step) * step);
  charts.timeline.update(state.marks.cracks, state.marks.slouches, from, now + span * 0.02, midnight);

  const last = state.lastCrack && dayKey(state.lastCrack.ts) === dayKey(now) ? state.lastCrack : null;
  set('today-last-crack', last ? `Last crack ${formatAgo(now - last.ts)} (${CRACK_TEXT[last.crack].toLowerCase()}).` : 'No cracks heard today.');
  const u = usual ? num(usual[hour]) : null;
  set('today-usual', u === null
    ? 'Your usual crack rate is learned over a few days of wear (3 days).'
    : `This hour: ${plural(f.hours[hour], 'crack', 'cracks')}; usually about ${Math.round(u * 10) / 10}.`);
}

// ---------------------------------------------------------------- weeks

function pctText(p) {
  if (num(p) === null) return null;
  if (p === 0) return 'the same as the week before';
  return `${Math.abs(p)} % ${p > 0 ? 'more' : 'fewer'} than the week before`;
}

// The last 8 weeks, oldest first: the record's days summed over sensors,
// today as the page counts it; days without data are marked none.
function weekDays(now) {
  const list = state.stats ? state.stats.sensors.filter((x) => x && typeof x === 'object') : [];
  const byDate = new Map();
  for (const x of list) {
    for (const d of Array.isArray(x.days) ? x.days : []) {
      if (!d || typeof d.date !== 'string') continue;
      const t = byDate.get(d.date) || { cracks: 0, pop: 0, click: 0, grind: 0, slouch_min: 0, breaks: 0 };
      for (const k of Object.keys(t)) t[k] += num(d[k]) ?? 0;
      byDate.set(d.date, t);
    }
  }
  const today = todayFigures(now);
  if (today.cracks || today.slouchMs || byDate.has(isoDate(now))) {
    byDate.set(isoDate(now), {
      cracks: today.cracks, pop: today.pop, click: today.click, grind: today.grind,
      slouch_min: Math.round(today.slouchMs / 6000) / 10, breaks: today.breaks,
    });
  }
  const out = [];
  for (let i = WEEK_DAYS - 1; i >= 0; i--) {
    const ts = daysBefore(now, i);
    const date = isoDate(ts);
    const d = byDate.get(date);
    out.push(d ? { ts, date, ...d } : { ts, date, none: true });
  }
  return out;
}

function renderWeeks() {
  const now = Date.now();
  const days = weekDays(now);
  charts.weeksCracks.update(days);
  charts.weeksSlouch.update(days);

  const tbody = $('[data-testid="weeks-table"] tbody');
  const rows = days.filter((d) => !d.none).reverse().map((d) => {
    const tr = el('tr');
    const th = el('th', '', formatLongDay(d.ts));
    th.scope = 'row';
    tr.append(th, ...[d.cracks, d.pop, d.click, d.grind, d.slouch_min, d.breaks].map((v) => el('td', '', v)));
    return tr;
  });
  if (!rows.length) {
    const tr = el('tr');
    const td = el('td', 'muted', 'No days recorded yet.');
    td.colSpan = 7;
    tr.append(td);
    rows.push(tr);
  }
  tbody.replaceChildren(...rows);

  // this week against the one before, from the record (every sensor together)
  const weekEl = $('[data-testid="week-summary"]');
  const list = state.stats ? state.stats.sensors.filter((x) => x && typeof x === 'object') : [];
  if (!list.length) {
    weekEl.textContent = 'No record yet: it starts with the first crack or slouch.';
    return;
  }
  let week = 0;
  let prev = 0;
  let prevDays = 0;
  let slouch = 0;
  for (const x of list) {
    const w = x.week && typeof x.week === 'object' ? x.week : {};
    week += num(w.cracks) ?? 0;
    prev += num(w.previous_cracks) ?? 0;
    prevDays += num(w.previous_days) ?? 0;
    slouch += num(w.slouch_min) ?? 0;
  }
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
  if (dirty.alerts) { dirty.alerts = false; alerts.render($('[data-testid="alert-list"]'), $('[data-testid="alerts-more"]')); updateTitle(); }
  if (dirty.sensors) { dirty.sensors = false; renderSensors(); }
  renderEvents();
  if (dirty.today) { dirty.today = false; renderToday(); }
  if (dirty.weeks) { dirty.weeks = false; renderWeeks(); }
  for (const address of dirty.posture) {
    const s = state.sensors.get(address);
    if (s && (s.posture || s.roles.has('posture'))) renderPosture(s);
  }
  dirty.posture.clear();
  let anyPosture = false;
  for (const s of state.sensors.values()) if (s.posture && s.posture.view) anyPosture = true;
  $('[data-testid="posture-empty"]').hidden = anyPosture;
}

let lastDay = dayKey(Date.now());

// Once a second: scroll the trends, age "no recent data", tick the slouch minutes.
function tick() {
  for (const s of state.sensors.values()) if (s.posture && s.posture.view) dirty.posture.add(s.address);
  dirty.today = true;
  const day = dayKey(Date.now());
  if (day !== lastDay) { lastDay = day; dirty.weeks = true; refreshStatsSoon(); }
  requestRender();
}

function redrawAll() {
  for (const s of state.sensors.values()) if (s.posture) dirty.posture.add(s.address);
  dirty.today = true;
  dirty.weeks = true;
  requestRender();
}

function start() {
  feed.start();
  $('[data-testid="retry-now"]').addEventListener('click', () => feed.retryNow());
  setInterval(tick, 1000);
  dirty.weeks = true;
  dirty.today = true;
  requestRender();
  loadCharts().then((ok) => {
    if (!ok || chartsFailed()) {
      const note = $('[data-testid="charts-note"]');
      note.textContent = 'Charts are not available: the spinewatch service could not serve Chart.js (Debian package libjs-chart.js).';
      note.hidden = false;
      document.body.classList.add('no-charts');
    }
    redrawAll();
  });
  // phones show fewer alert banners at once
  window.matchMedia('(max-width: 520px)').addEventListener('change', () => { dirty.alerts = true; requestRender(); });
  const dark = window.matchMedia('(prefers-color-scheme: dark)');
  dark.addEventListener('change', () => { retheme(); redrawAll(); });
}

start();
