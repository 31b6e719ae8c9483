// web/feed.js - the WebSocket connection to spinewatchd's feed
// (protocol/websocket-feed.md): connects to /ws?since=<cursor>, reconnects
// with exponential backoff and jitter, and reports a state for people:
//   connecting    the first attempt
//   live          the hello arrived; events stream
//   reconnecting  the connection dropped; trying again (resuming from the
//                 last sequence number seen, so nothing is lost or repeated)
//   offline       several attempts in a row failed; still trying, slower
// The page owns the cursor (cursor()) and decides when a connection is live
// (markLive() after its hello).

const SUBPROTOCOL = 'spinewatch.v1';
const BACKOFF_MIN_MS = 500;
const BACKOFF_MAX_MS = 15000;
const CONNECT_TIMEOUT_MS = 10000;
const STABLE_MS = 10000;           // a connection that lasted this long resets the backoff
const OFFLINE_AFTER = 3;           // failed attempts in a row before saying "offline"

export class Feed {
  // cursor() -> last seq processed; onMessage(text); onState(kind, text);
  // token() -> the access token or ''; onRefused() when a connection closed
  // before it opened (the page finds out why)
  constructor({ cursor, onMessage, onState, token, onRefused }) {
    this.cursor = cursor;
    this.onMessage = onMessage;
    this.onState = onState;
    this.token = token || (() => '');
    this.onRefused = onRefused || (() => {});
    this.ws = null;
    this.attempt = 0;       // for the backoff
    this.failures = 0;      // attempts since the last hello
    this.timer = 0;
    this.since = 0;         // the cursor this connection asked from
    this.liveAt = 0;
    this.everLive = false;
    this.restartNow = false;
    this.serverError = null;
  }

  start() {
    this.connect();
    window.addEventListener('online', () => this.retryNow());
    document.addEventListener('visibilitychange', () => { if (!document.hidden) this.retryNow(); });
  }

  url() {
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    const base = location.pathname.replace(/[^/]*$/, '');
    const t = this.token();
    const auth = t ? `&token=${encodeURIComponent(t)}` : '';
    return `${proto}//${location.host}${base}ws?since=${this.cursor()}${auth}`;
  }

  connect() {
    clearTimeout(this.timer);
    this.timer = 0;
    this.restartNow = false;
    this.serverError = null;
    this.liveAt = 0;
    this.since = this.cursor();
    if (!this.everLive && this.failures === 0) this.onState('connecting', 'Connecting…');
    let ws;
    try {
      ws = new WebSocket(this.url(), SUBPROTOCOL);
    } catch {
      this.scheduleReconnect();
      return;
    }
    this.ws = ws;
    const openTimer = setTimeout(() => { if (ws.readyState !== WebSocket.OPEN) ws.close(); }, CONNECT_TIMEOUT_MS);
    let opened = false;
    ws.onopen = () => { opened = true; clearTimeout(openTimer); };
    ws.onmessage = (e) => { if (this.ws === ws && typeof e.data === 'string') this.onMessage(e.data); };
    ws.onclose = () => {
      clearTimeout(openTimer);
      if (this.ws !== ws) return;
      this.ws = null;
      if (this.restartNow) { this.connect(); return; }
      if (!opened) this.onRefused();
      // back off from scratch only after a connection that held for a while
      if (this.liveAt && Date.now() - this.liveAt > STABLE_MS) this.attempt = 0;
      this.scheduleReconnect();
    };
    ws.onerror = () => { /* a close event follows */ };
  }

  // The page got this connection's hello.
  markLive() {
    this.liveAt = Date.now();
    this.everLive = true;
    this.failures = 0;
    this.onState('live', 'Live');
  }

  // A new daemon run: ask again from 0, at once.
  restartFromZero() {
    if (!this.ws) return;
    this.restartNow = true;
    this.ws.close(1000, 'new stream');
  }

  serverSaid(message) {
    this.serverError = message;
  }

  send(obj) {
    if (!this.ws || this.ws.readyState !== WebSocket.OPEN || !this.liveAt) return false;
    this.ws.send(JSON.stringify(obj));
    return true;
  }

  isLive() {
    return !!(this.ws && this.liveAt);
  }

  // Stop trying until resume(): the page waits for the user (an access token).
  pause() {
    clearTimeout(this.timer);
    this.timer = 0;
    this.paused = true;
  }

  resume() {
    this.paused = false;
    this.attempt = 0;
    this.failures = 0;
    clearTimeout(this.timer);
    this.timer = 0;
    if (!this.ws) this.connect();
  }

  scheduleReconnect() {
    if (this.paused) return;
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** this.attempt);
    const delay = Math.round(base * (0.75 + Math.random() * 0.5));
    this.attempt = Math.min(this.attempt + 1, 10);
    this.failures++;
    this.timer = setTimeout(() => this.connect(), delay);
    // said once per attempt (the state is a live region: no ticking countdown)
    const why = this.serverError ? ` The service said: ${this.serverError}.` : '';
    if (this.failures >= OFFLINE_AFTER || navigator.onLine === false) {
      this.onState('offline', `Offline: spinewatch is not answering.${why} Still trying.`);
    } else {
      this.onState('reconnecting', `Reconnecting…${why}`);
    }
  }

  retryNow() {
    if (this.ws || !this.timer) return;
    this.connect();
  }
}
