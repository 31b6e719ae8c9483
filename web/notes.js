// web/notes.js - the wearer's notes on events (protocol/websocket-feed.md:
// the `annotate` command and the `annotation` event). Each crack, slouch and
// alert in the event list gets an "Add note" button that opens a small form:
// pain and stiffness from 0 (none) to 10 (worst), both optional, and what the
// wearer was doing, up to 280 bytes of text (counted in UTF-8 bytes, as the
// daemon counts them). Saving sends `annotate`; a refusal shows the daemon's
// reason in the form. The note itself comes back as an `annotation` event, to
// this page and every other client, and is shown on the event's item: the
// newest annotation of an event wins. Annotation events are not list items of
// their own; they are kept in a bounded map keyed by the annotated event's
// seq, so a note whose event is not (yet) in the list shows once it is.
// Everything goes into the page as text (textContent), never as markup.

import { el, num, str, isSeq } from './util.js';

export const NOTE_MAX_BYTES = 280;
const SCALE_MAX = 10;
const MAX_NOTES = 1000;            // annotations kept (the list holds 200 events)
const REPLY_TIMEOUT_MS = 8000;
const ANNOTATABLE = new Set(['crack', 'slouch', 'alert']);
const REFUSED_TEXT = {
  'unknown-event': 'spinewatch no longer keeps this event, so it cannot take a note.',
  'not-annotatable': 'This event cannot take a note.',
};

const encoder = new TextEncoder();
export const byteLength = (text) => encoder.encode(text).length;

const scale = (v) => (Number.isInteger(v) && v >= 0 && v <= SCALE_MAX ? v : null);

// "Pain 3/10 · stiffness 6/10 · “stood up after a long call”" (the parts given).
export function noteText(a) {
  const parts = [];
  if (a.pain !== null) parts.push(`pain ${a.pain}/10`);
  if (a.stiffness !== null) parts.push(`stiffness ${a.stiffness}/10`);
  if (a.note) parts.push(`\u201c${a.note}\u201d`);
  const text = parts.join(' \u00b7 ');
  return text.charAt(0).toUpperCase() + text.slice(1);
}

export class Notes {
  // send(obj) -> bool sends a command; label(ev) names an event for people
  // ("Pop at 10:42:03"); onChange() asks for a render; announce(text) speaks.
  constructor({ send, label, onChange, announce }) {
    this.send = send;
    this.label = label;
    this.onChange = onChange;
    this.announce = announce;
    this.byEvent = new Map();   // annotated event's seq -> newest annotation, oldest first
    this.dirty = new Set();     // event seqs whose items need showing again
    this.pending = new Map();   // command id -> { seq, li, form, timer, busy, say }
    this.items = new WeakMap(); // event item (li) -> { ev, shown, btn }
    this.nextCmd = 1;
  }

  // A new daemon run: sequence numbers start over, so do the notes.
  reset() {
    this.byEvent.clear();
    this.dirty.clear();
    for (const p of this.pending.values()) clearTimeout(p.timer);
    this.pending.clear();
  }

  get(seq) {
    return this.byEvent.get(seq) || null;
  }

  // An annotation event (live or replayed): it replaces older ones of its event.
  event(m) {
    if (!isSeq(m.event) || !isSeq(m.seq)) return;
    const old = this.byEvent.get(m.event);
    if (old && old.seq > m.seq) return;
    const note = str(m.note);
    const a = {
      seq: m.seq, event: m.event, of: str(m.of), ts: num(m.ts),
      pain: scale(m.pain), stiffness: scale(m.stiffness), note: note ? note.slice(0, 1000) : null,
    };
    this.byEvent.delete(m.event);
    this.byEvent.set(m.event, a);
    while (this.byEvent.size > MAX_NOTES) this.byEvent.delete(this.byEvent.keys().next().value);
    this.dirty.add(m.event);
    this.onChange();
  }

  // Adds the note (if any) and, for events that take one, the "Add note"
  // button to a new event item: `body` is its text column.
  decorate(li, body, ev) {
    if (!isSeq(ev.seq)) return;
    const shown = el('p', 'ev-note');
    shown.dataset.testid = `note-${ev.seq}`;
    shown.append(el('span', 'visually-hidden', 'Your note: '), el('span', 'ev-note-text'));
    body.append(shown);
    let btn = null;
    if (ANNOTATABLE.has(ev.kind)) {
      btn = el('button', 'note-btn', 'Add note');
      btn.type = 'button';
      btn.dataset.testid = `note-btn-${ev.seq}`;
      btn.setAttribute('aria-expanded', 'false');
      btn.setAttribute('aria-controls', `note-form-${ev.seq}`);
      btn.addEventListener('click', () => this.toggle(li, ev, btn));
      body.append(btn);
    }
    this.items.set(li, { ev, shown, btn });
    this.show(li);
  }

  // Shows the current note of each event that changed (list: the <ol>).
  refresh(list) {
    for (const seq of this.dirty) {
      const li = list.querySelector(`:scope > li[data-seq="${seq}"]`);
      if (li) this.show(li);
    }
    this.dirty.clear();
  }

  // Shows an item's current note (or none) and words its button to match.
  show(li) {
    const item = this.items.get(li);
    if (!item) return;
    const { ev, shown, btn } = item;
    const a = this.get(ev.seq);
    shown.lastElementChild.textContent = a ? noteText(a) : '';
    shown.hidden = !a;
    li.dataset.annotated = a ? 'true' : 'false';
    if (btn) {
      btn.textContent = a ? 'Edit note' : 'Add note';
      // the visible words first, so voice control finds the button by them
      btn.setAttribute('aria-label', `${btn.textContent}: ${this.label(ev)}`);
    }
  }

  // ---------------------------------------------------------------- the form

  toggle(li, ev, btn) {
    const open = li.querySelector('.note-form');
    if (open) this.close(li, true);
    else this.open(li, ev, btn);
  }

  open(li, ev, btn) {
    const seq = ev.seq;
    const id = (part) => `note-${seq}-${part}`;
    const a = this.get(seq);
    const form = el('form', 'note-form');
    form.id = `note-form-${seq}`;
    form.dataset.testid = `note-form-${seq}`;
    form.noValidate = true;
    form.setAttribute('aria-label', `Note on ${this.label(ev)}`);

    const help = el('p', 'note-help', 'How did it feel, and what were you doing? Any of these will do.');
    help.id = id('help');
    form.setAttribute('aria-describedby', help.id);

    const scales = el('div', 'note-scales');
    const selects = {};
    for (const [key, name] of [['pain', 'Pain'], ['stiffness', 'Stiffness']]) {
      const field = el('div', 'note-field');
      const label = el('label', '', name);
      label.htmlFor = id(key);
      const select = el('select', 'note-select');
      select.id = id(key);
      select.name = key;
      select.dataset.testid = `note-${key}-${seq}`;
      select.append(new Option('not given', ''));
      for (let i = 0; i <= SCALE_MAX; i++) {
        select.append(new Option(i === 0 ? '0 · none' : i === SCALE_MAX ? `${i} · worst` : String(i), String(i)));
      }
      if (a && a[key] !== null) select.value = String(a[key]);
      field.append(label, select);
      scales.append(field);
      selects[key] = select;
    }

    const textField = el('div', 'note-field note-text-field');
    const textLabel = el('label', '', 'What were you doing?');
    textLabel.htmlFor = id('text');
    const text = el('textarea', 'note-text');
    text.id = id('text');
    text.name = 'note';
    text.rows = 2;
    text.maxLength = NOTE_MAX_BYTES;   // characters; the byte limit is checked below
    text.dataset.testid = `note-text-${seq}`;
    text.placeholder = 'e.g. stood up after a long call';
    if (a && a.note) text.value = a.note;
    const count = el('p', 'note-count');
    count.id = id('count');
    count.dataset.testid = `note-count-${seq}`;
    text.setAttribute('aria-describedby', count.id);
    const updateCount = () => {
      const n = byteLength(text.value.trim());
      const over = n - NOTE_MAX_BYTES;
      count.textContent = over > 0
        ? `${n} of ${NOTE_MAX_BYTES} bytes: ${over} too many`
        : `${n} of ${NOTE_MAX_BYTES} bytes`;
      count.dataset.over = String(over > 0);
    };
    text.addEventListener('input', updateCount);
    updateCount();
    textField.append(textLabel, text, count);

    const error = el('p', 'note-error');
    error.setAttribute('role', 'alert');
    error.dataset.testid = `note-error-${seq}`;
    error.hidden = true;

    const actions = el('div', 'note-actions');
    const save = el('button', 'btn btn-small btn-primary', 'Save note');
    save.type = 'submit';
    save.dataset.testid = `note-save-${seq}`;
    const cancel = el('button', 'btn btn-small', 'Cancel');
    cancel.type = 'button';
    cancel.dataset.testid = `note-cancel-${seq}`;
    cancel.addEventListener('click', () => this.close(li, true));
    actions.append(save, cancel);

    form.append(help, scales, textField, error, actions);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit(li, seq, { selects, text, error, save });
    });
    form.addEventListener('keydown', (e) => {
      if (e.key === 'Escape') { e.preventDefault(); this.close(li, true); }
    });
    li.append(form);
    li.classList.add('ev-noting');
    btn.setAttribute('aria-expanded', 'true');
    selects.pain.focus();
  }

  close(li, focusButton) {
    const form = li.querySelector('.note-form');
    if (!form) return;
    for (const [cmd, p] of this.pending) {
      if (p.form === form) { clearTimeout(p.timer); this.pending.delete(cmd); }
    }
    form.remove();
    li.classList.remove('ev-noting');
    const item = this.items.get(li);
    if (item && item.btn) {
      item.btn.setAttribute('aria-expanded', 'false');
      if (focusButton) item.btn.focus();
    }
  }

  submit(li, seq, f) {
    const say = (msg) => {
      f.error.hidden = !msg;
      f.error.textContent = msg || '';
    };
    const pain = f.selects.pain.value === '' ? null : Number(f.selects.pain.value);
    const stiffness = f.selects.stiffness.value === '' ? null : Number(f.selects.stiffness.value);
    const note = f.text.value.trim();
    if (pain === null && stiffness === null && !note) {
      say('Choose a pain or stiffness score, or write what you were doing.');
      f.selects.pain.focus();
      return;
    }
    const bytes = byteLength(note);
    if (bytes > NOTE_MAX_BYTES) {
      say(`The note is ${bytes} bytes long; ${NOTE_MAX_BYTES} at most (letters such as é take 2 bytes). Please shorten it.`);
      f.text.focus();
      return;
    }
    const id = `note-${this.nextCmd++}`;
    const cmd = { type: 'annotate', event: seq, id };
    if (pain !== null) cmd.pain = pain;
    if (stiffness !== null) cmd.stiffness = stiffness;
    if (note) cmd.note = note;
    if (!this.send(cmd)) {
      say('Not connected to spinewatch right now; try again in a moment.');
      return;
    }
    say('');
    const form = li.querySelector('.note-form');
    const busy = (on) => {
      f.save.disabled = on;
      f.save.textContent = on ? 'Saving…' : 'Save note';
      form.setAttribute('aria-busy', String(on));
    };
    // disabling the focused Save button drops the focus to the page: remember that it was
    // in the form, so it comes back to the note button once the note is saved
    const hadFocus = li.contains(document.activeElement);
    busy(true);
    const timer = setTimeout(() => {
      this.pending.delete(id);
      busy(false);
      say('No answer from spinewatch; the note may not be saved. Try again.');
    }, REPLY_TIMEOUT_MS);
    this.pending.set(id, { seq, li, form, timer, busy, say, hadFocus });
  }

  // A reply: true when it answers one of our annotate commands.
  reply(m) {
    const p = typeof m.id === 'string' ? this.pending.get(m.id) : null;
    if (!p) return false;
    clearTimeout(p.timer);
    this.pending.delete(m.id);
    if (!p.form.isConnected) return true;
    if (m.ok === true) {
      // the annotation event shows the note on the item
      const lost = document.activeElement === document.body || !document.activeElement;
      this.close(p.li, p.li.contains(document.activeElement) || (p.hadFocus && lost));
      this.announce('Note saved.');
      return true;
    }
    p.busy(false);
    if (p.hadFocus && (document.activeElement === document.body || !document.activeElement)) {
      p.form.querySelector('button[type="submit"], button')?.focus();
    }
    const code = str(m.code);
    p.say(REFUSED_TEXT[code] || `Not saved: ${str(m.message) || code || 'spinewatch refused it'}.`);
    return true;
  }
}
