// web/alerts.js - alert banners, browser notifications and the optional alert
// sound. The daemon words every alert for the wearer (never diagnosing); the
// page shows its message as it is. A raised alert appears at once as a
// banner in an ARIA live region; its "Got it" button sends an `ack` command
// (protocol/websocket-feed.md), the daemon answers and emits an `alert` event
// with state `acknowledged`, and the banner goes quiet; it goes away when the
// daemon clears the alert.
//
// Notifications are asked for only when the wearer clicks "Enable
// notifications", never on load; the sound (a short soft WebAudio chime) is
// off until switched on. Both choices are kept in localStorage.

import { $, el, num, str, formatClock, loadPref, savePref } from './util.js';

const RULE_TEXT = {
  'slouch-long': 'Long slouch',
  'no-break': 'Break reminder',
  'crack-rate': 'Cracking more than usual',
  grinding: 'Repeated grinding',
  'self-manipulation': 'Cracking on purpose?',
  'sensor-lost': 'Sensor out of reach',
  'battery-low': 'Battery low',
};
const ACK_TIMEOUT_MS = 8000;
const PREF_NOTIFY = 'spinewatch.notifications';
const PREF_SOUND = 'spinewatch.sound';

export class Alerts {
  // send(obj) -> bool sends a command; label(address) names a sensor;
  // onChange() is called when the banners need drawing again.
  constructor({ send, label, onChange }) {
    this.send = send;
    this.label = label;
    this.onChange = onChange;
    this.active = new Map();    // id -> alert
    this.pending = new Map();   // command id -> alert id
    this.nextCmd = 1;
    this.notifier = new Notifier();
  }

  static parse(m) {
    const id = num(m.id);
    if (id === null || !['raised', 'acknowledged', 'cleared'].includes(m.state)) return null;
    return {
      id, state: m.state, rule: str(m.rule) || 'alert', sensor: str(m.sensor) || '',
      severity: m.severity === 'warning' ? 'warning' : 'info',
      message: (str(m.message) || '').slice(0, 500),
      raisedTs: num(m.raised_ts) ?? num(m.ts) ?? Date.now(),
      ackSending: false, error: null,
    };
  }

  // hello.alerts: the active alerts now, replacing what we had.
  replaceAll(list) {
    const next = new Map();
    for (const m of Array.isArray(list) ? list : []) {
      const a = m && typeof m === 'object' ? Alerts.parse(m) : null;
      if (a && a.state !== 'cleared') next.set(a.id, a);
    }
    this.active = next;
    this.onChange();
  }

  // An alert event. Replayed ones (live false) are history: hello already
  // said which alerts are active.
  event(m, live) {
    if (!live) return;
    const a = Alerts.parse(m);
    if (!a) return;
    if (a.state === 'cleared') {
      this.active.delete(a.id);
    } else {
      const had = this.active.get(a.id);
      this.active.set(a.id, a);
      if (a.state === 'raised' && !had) this.notifier.alert(a, this.label(a.sensor));
    }
    this.onChange();
  }

  acknowledge(id) {
    const a = this.active.get(id);
    if (!a || a.state !== 'raised' || a.ackSending) return;
    const cmd = `ack-${id}-${this.nextCmd++}`;
    a.error = null;
    if (!this.send({ type: 'ack', alert: id, id: cmd })) {
      a.error = 'Not connected to spinewatch right now; try again in a moment.';
      this.onChange();
      return;
    }
    a.ackSending = true;
    this.pending.set(cmd, id);
    setTimeout(() => {
      if (!this.pending.delete(cmd)) return;
      const b = this.active.get(id);
      if (b && b.ackSending) { b.ackSending = false; b.error = 'No answer from spinewatch; try again.'; this.onChange(); }
    }, ACK_TIMEOUT_MS);
    this.onChange();
  }

  // A reply to one of our ack commands: true if it was one.
  reply(m) {
    if (typeof m.id !== 'string' || !this.pending.has(m.id)) return false;
    const id = this.pending.get(m.id);
    this.pending.delete(m.id);
    const a = this.active.get(id);
    if (!a) return true;
    a.ackSending = false;
    if (m.ok === true) {
      a.state = 'acknowledged';   // the acknowledged event follows
    } else if (m.code === 'alert-cleared' || m.code === 'unknown-alert') {
      this.active.delete(id);
    } else {
      a.error = `spinewatch said: ${str(m.message) || str(m.code) || 'no'}.`;
    }
    this.onChange();
    return true;
  }

  // Drops everything (a new daemon run: its alert ids are new).
  reset() {
    this.active.clear();
    this.pending.clear();
    this.onChange();
  }

  // Draws the banners into list (raised first, newest first). Only the first
  // few show at once (one on a phone); a button shows the others.
  render(list, more) {
    const alerts = [...this.active.values()].sort((a, b) =>
      (a.state === 'raised' ? 0 : 1) - (b.state === 'raised' ? 0 : 1) || b.raisedTs - a.raisedTs);
    const keep = new Set();
    let prev = null;
    const shown = this.expanded ? Infinity : window.matchMedia('(max-width: 520px)').matches ? 1 : 4;
    alerts.forEach((a, i) => {
      keep.add(String(a.id));
      let li = list.querySelector(`li[data-alert-id="${a.id}"]`);
      if (!li) li = this.banner(a);
      this.fill(li, a);
      li.hidden = i >= shown;
      // move only what is out of place (keeps focus on a button)
      const want = prev ? prev.nextElementSibling : list.firstElementChild;
      if (want !== li) list.insertBefore(li, want);
      prev = li;
    });
    for (const li of [...list.children]) if (!keep.has(li.dataset.alertId)) li.remove();
    if (!this.moreBtn) {
      this.moreBtn = more;
      more.addEventListener('click', () => { this.expanded = !this.expanded; this.onChange(); });
    }
    const hiddenN = Math.max(0, alerts.length - shown);
    more.hidden = (!this.expanded && hiddenN === 0) || alerts.length <= 1;
    more.setAttribute('aria-expanded', String(!!this.expanded));
    more.textContent = this.expanded ? 'Show fewer alerts' : `Show ${hiddenN} more alert${hiddenN === 1 ? '' : 's'}`;
  }

  banner(a) {
    const li = el('li', 'alert-banner');
    li.dataset.alertId = String(a.id);
    li.dataset.testid = `alert-${a.id}`;
    li.dataset.rule = a.rule;
    li.dataset.sensor = a.sensor;
    li.dataset.severity = a.severity;
    const icon = el('span', 'alert-icon', a.severity === 'warning' ? '!' : 'i');
    icon.setAttribute('aria-hidden', 'true');
    const body = el('div', 'alert-body');
    const text = el('p', 'alert-text');
    const msg = el('span', 'alert-message', a.message);
    msg.dataset.testid = `alert-message-${a.id}`;
    text.append(el('strong', 'alert-title', RULE_TEXT[a.rule] || 'Alert'), ' ', msg);
    const meta = el('p', 'alert-meta');
    body.append(text, meta);
    const btn = el('button', 'btn btn-small alert-ack', 'Got it');
    btn.type = 'button';
    btn.dataset.testid = `ack-${a.id}`;
    btn.setAttribute('aria-label', `Acknowledge: ${RULE_TEXT[a.rule] || 'alert'}`);
    btn.addEventListener('click', () => this.acknowledge(a.id));
    li.append(icon, body, btn);
    li.view = { meta, btn };
    return li;
  }

  fill(li, a) {
    li.dataset.state = a.state;
    const who = a.sensor ? this.label(a.sensor) : '';
    const parts = [];
    if (who) parts.push(who);
    parts.push(`since ${formatClock(a.raisedTs)}`);
    if (a.state === 'acknowledged') parts.push('acknowledged; it goes away when it is over');
    if (a.error) parts.push(a.error);
    li.view.meta.textContent = parts.join(' · ');
    const { btn } = li.view;
    btn.hidden = a.state !== 'raised';
    btn.disabled = a.ackSending;
    btn.textContent = a.ackSending ? 'Sending…' : 'Got it';
  }
}

// ---------------------------------------------------------------- notifications and sound

class Notifier {
  constructor() {
    this.notifyBtn = $('[data-testid="notify-toggle"]');
    this.soundBtn = $('[data-testid="sound-toggle"]');
    this.notifyOn = loadPref(PREF_NOTIFY, 'off') === 'on';
    this.soundOn = loadPref(PREF_SOUND, 'off') === 'on';
    this.audio = null;
    this.notifyBtn.addEventListener('click', () => this.toggleNotify());
    this.soundBtn.addEventListener('click', () => this.toggleSound());
    // browsers start audio only after a gesture: wake it with the first one
    const wake = () => { if (this.soundOn) this.context(); };
    document.addEventListener('pointerdown', wake, { once: true });
    document.addEventListener('keydown', wake, { once: true });
    this.renderButtons();
  }

  permission() {
    if (!('Notification' in window)) return 'unsupported';
    if (!window.isSecureContext) return 'insecure';
    return Notification.permission;   // default, granted, denied
  }

  renderButtons() {
    const b = this.notifyBtn;
    const perm = this.permission();
    b.hidden = perm === 'unsupported';
    b.disabled = perm === 'denied' || perm === 'insecure';
    const on = perm === 'granted' && this.notifyOn;
    b.setAttribute('aria-pressed', String(on));
    b.dataset.state = on ? 'on' : perm;
    b.textContent = perm === 'denied' ? 'Notifications blocked'
      : perm === 'insecure' ? 'Notifications need https'
        : on ? 'Notifications on' : 'Enable notifications';
    b.title = perm === 'denied' ? 'The browser blocks notifications for this page: allow them in its site settings.'
      : perm === 'insecure' ? 'Browsers show notifications only for pages on https or localhost.'
        : on ? 'Alerts also show as browser notifications while this page is in the background. Click to turn off.'
          : 'Show alerts as browser notifications while this page is in the background.';
    const s = this.soundBtn;
    s.setAttribute('aria-pressed', String(this.soundOn));
    s.dataset.state = this.soundOn ? 'on' : 'off';
    s.textContent = this.soundOn ? 'Sound on' : 'Sound off';
    s.title = this.soundOn ? 'A short chime plays when an alert is raised. Click to turn off.' : 'Play a short chime when an alert is raised.';
  }

  async toggleNotify() {
    const perm = this.permission();
    if (perm === 'granted' && this.notifyOn) {
      this.notifyOn = false;
    } else if (perm === 'granted') {
      this.notifyOn = true;
    } else if (perm === 'default') {
      let got = 'default';
      try { got = await Notification.requestPermission(); } catch { /* old callback form: treat as refused */ }
      this.notifyOn = got === 'granted';
    }
    savePref(PREF_NOTIFY, this.notifyOn ? 'on' : 'off');
    this.renderButtons();
  }

  toggleSound() {
    this.soundOn = !this.soundOn;
    savePref(PREF_SOUND, this.soundOn ? 'on' : 'off');
    this.renderButtons();
    if (this.soundOn) this.chime();   // so the wearer hears what it sounds like
  }

  context() {
    const AC = window.AudioContext || window.webkitAudioContext;
    if (!AC) return null;
    if (!this.audio) this.audio = new AC();
    if (this.audio.state === 'suspended') this.audio.resume().catch(() => {});
    return this.audio;
  }

  // Two soft notes, a third apart, about 0.4 s in all.
  chime() {
    const ctx = this.context();
    if (!ctx) return;
    const t0 = ctx.currentTime + 0.02;
    [659.25, 830.61].forEach((f, i) => {
      const t = t0 + i * 0.16;
      const osc = ctx.createOscillator();
      const gain = ctx.createGain();
      osc.type = 'sine';
      osc.frequency.value = f;
      gain.gain.setValueAtTime(0.0001, t);
      gain.gain.exponentialRampToValueAtTime(0.12, t + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, t + 0.22);
      osc.connect(gain).connect(ctx.destination);
      osc.start(t);
      osc.stop(t + 0.25);
    });
    this.soundBtn.dataset.played = String(Number(this.soundBtn.dataset.played || 0) + 1);
  }

  // A newly raised alert (live, not replayed).
  alert(a, who) {
    if (this.soundOn) this.chime();
    if (!this.notifyOn || this.permission() !== 'granted') return;
    // the banner is in view when the page is: notify only when it is not
    if (document.visibilityState === 'visible' && document.hasFocus()) return;
    try {
      const n = new Notification(`spinewatch: ${RULE_TEXT[a.rule] || 'alert'}`, {
        body: who ? `${a.message} (${who})` : a.message,
        tag: `spinewatch-alert-${a.id}`,
        icon: 'favicon.svg',
      });
      n.onclick = () => { window.focus(); n.close(); };
    } catch {
      // some mobile browsers allow notifications only from a service worker
    }
  }
}
