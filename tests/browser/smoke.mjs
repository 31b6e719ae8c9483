// tests/browser/smoke.mjs - headless-Chromium test of the spinewatch
// dashboard (web/). Loads the page from a running spinewatchd, checks that it
// goes live, shows the sensors, events, live posture angles and the Chart.js
// charts (Chart.js from Debian's libjs-chart.js, served by the daemon), that a
// simulated crack appears within a second, that a long slouch raises an alert
// banner and acknowledging it reaches the daemon, that calibration shows its
// result, that notifications are asked for only on a click and the sound
// choice is kept, that a crack can be annotated from the page with the
// keyboard (the note reaches the daemon and every client, a refusal shows the
// daemon's reason, a later note replaces the earlier one, and the note is
// still there after a reload), that the controls are reachable with the keyboard, that it
// survives a dropped connection (reconnecting, resume with ?since=), repeated
// failures (offline, then live again) and a reload, raises no console error or
// CSP violation, and saves desktop (1280x800), phone (390x844) and dark
// screenshots to the output folder.
//
//   node smoke.mjs URL [--out DIR] [--bus ADDRESS] [--sensor ADDR]... [--posture ADDR]...
//                  [--sound ADDR]... [--audio ADDR]... [--slouch ADDR]... [--calibrate ADDR]
//
// --sensor: must be listed as streaming; --posture: its angle must be a number
// that updates; --sound: a crack from it must appear in the event list;
// --audio: a microphone (Thingy:52): a pop played into its audio must be listed
// with its level (dBFS) and dominant frequency;
// --slouch: a slouch from it must be shown (event, card state, today's count)
// and, as it lasts longer than the daemon's [alerts] slouch_long_min, raise a
// slouch-long alert; --bus: the simulator's D-Bus address (tests/sim), used to
// inject a crack into the first --sound sensor and to hold the --calibrate
// sensor still while the page calibrates it; --out: where screenshots go
// (default build/browser of the repository).
// Prints one line per check and "N passed, N failed"; exits 1 on any failure.

import { chromium } from 'playwright-core';
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOTAL_TIMEOUT_MS = 170000;
const SIM = ['org.bluez', '/io/spinewatch/sim', 'io.spinewatch.Sim1'];

function parseArgs(argv) {
  const opts = {
    url: null, out: path.join(HERE, '..', '..', 'build', 'browser'), bus: null, calibrate: null,
    sensors: [], posture: [], sound: [], audio: [], slouch: [],
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--out') opts.out = next();
    else if (a === '--bus') opts.bus = next();
    else if (a === '--calibrate') opts.calibrate = next();
    else if (a === '--daemon-pidfile') opts.daemonPidfile = next();
    else if (a === '--sensor') opts.sensors.push(next());
    else if (a === '--posture') opts.posture.push(next());
    else if (a === '--sound') opts.sound.push(next());
    else if (a === '--audio') opts.audio.push(next());
    else if (a === '--slouch') opts.slouch.push(next());
    else if (!opts.url && !a.startsWith('--')) opts.url = a;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.url) {
    throw new Error('usage: node smoke.mjs URL [--out DIR] [--bus ADDRESS] [--sensor ADDR]... [--posture ADDR]... ' +
      '[--sound ADDR]... [--audio ADDR]... [--slouch ADDR]... [--calibrate ADDR]');
  }
  // not --audio: a microphone starts streaming later (its config is written first), and the
  // checks that follow the scenario's clock (slouches, alerts) must not wait for it
  for (const a of [...opts.posture, ...opts.sound]) if (!opts.sensors.includes(a)) opts.sensors.push(a);
  return opts;
}

const results = [];
async function check(name, fn) {
  try {
    const detail = await fn();
    results.push({ name, ok: true });
    console.log(`ok   - ${name}${detail ? ` (${detail})` : ''}`);
  } catch (err) {
    results.push({ name, ok: false });
    console.log(`FAIL - ${name}: ${String(err && err.message ? err.message : err).split('\n')[0]}`);
  }
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const tid = (id) => `[data-testid="${id}"]`;

// Calls a method of the simulator's control interface (tests/sim/README.md)
// with dbus-send; args are dbus-send's TYPE:VALUE strings.
function sim(bus, method, ...args) {
  return new Promise((resolve, reject) => {
    execFile('dbus-send', [`--bus=${bus}`, '--print-reply', `--dest=${SIM[0]}`, SIM[1], `${SIM[2]}.${method}`, ...args],
      { timeout: 10000 }, (err, stdout, stderr) => (err ? reject(new Error(`${method}: ${stderr || err.message}`.trim())) : resolve(stdout)));
  });
}

// Opens a feed client of its own in the page and returns its hello.
function feedHello(page) {
  return page.evaluate(() => new Promise((resolve, reject) => {
    const ws = new window.__smoke.Native(`ws://${location.host}/ws`, 'spinewatch.v1');
    const timer = setTimeout(() => { ws.close(); reject(new Error('no hello within 5 s')); }, 5000);
    ws.onmessage = (e) => { clearTimeout(timer); ws.close(); resolve(JSON.parse(e.data)); };
    ws.onerror = () => { clearTimeout(timer); reject(new Error('feed socket failed')); };
  }));
}

// Opens a feed client of its own in the page that records every annotation
// event into window.__smoke.annotations; resolves once its hello arrived.
function watchAnnotations(page) {
  return page.evaluate(() => new Promise((resolve, reject) => {
    const ws = new window.__smoke.Native(`ws://${location.host}/ws`, 'spinewatch.v1');
    window.__smoke.annotations = [];
    window.__smoke.watcher = ws;
    const timer = setTimeout(() => { ws.close(); reject(new Error('no hello within 5 s')); }, 5000);
    ws.onmessage = (e) => {
      const m = JSON.parse(e.data);
      if (m.type === 'hello') { clearTimeout(timer); resolve(); }
      if (m.type === 'event' && m.kind === 'annotation') window.__smoke.annotations.push(m);
    };
    ws.onerror = () => { clearTimeout(timer); reject(new Error('feed socket failed')); };
  }));
}

// Waits until the watcher saw an annotation of event `seq` matching `want`.
function annotationArrives(page, seq, want) {
  return page.waitForFunction(([s, w]) => window.__smoke.annotations.some((m) => m.event === s
    && Object.entries(w).every(([k, v]) => m[k] === v)), [seq, want], { timeout: 5000, polling: 50 })
    .catch(async () => {
      const got = await page.evaluate(() => window.__smoke.annotations);
      throw new Error(`no annotation ${JSON.stringify(want)} of event ${seq} on another client (got ${JSON.stringify(got).slice(0, 300)})`);
    });
}

async function paintedPixels(page, testid) {
  return page.$eval(tid(testid), (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
    return { n, w: c.width, h: c.height, points: Number(c.dataset.points || 0) };
  });
}

// Records every WebSocket the page opens (URL and the object, to drop it
// from the test) and every CSP violation. Runs before the page's scripts;
// DevTools-injected scripts are exempt from the page's CSP.
// Notification is a stand-in that records what the page asks for and shows
// (headless Chromium has no notification UI), and the page is told it does
// not have the focus (as in a background tab), when it notifies.
function instrument() {
  const Native = window.WebSocket;
  window.__smoke = { sockets: [], urls: [], csp: [], Native, permissionRequests: 0, notifications: [], connStates: [] };
  // the permission outlives a reload, as the browser's own does
  let permission = sessionStorage.getItem('smoke.permission') || 'default';
  window.Notification = class {
    constructor(title, options = {}) {
      window.__smoke.notifications.push({ title, body: options.body, tag: options.tag });
    }

    close() {}

    static get permission() { return permission; }

    static requestPermission() {
      window.__smoke.permissionRequests++;
      permission = 'granted';
      sessionStorage.setItem('smoke.permission', permission);
      return Promise.resolve(permission);
    }
  };
  document.hasFocus = () => false;
  document.addEventListener('DOMContentLoaded', () => {
    const conn = document.querySelector('[data-testid="conn-state"]');
    if (!conn) return;
    new MutationObserver(() => {
      const s = window.__smoke.connStates;
      if (s[s.length - 1] !== conn.dataset.state) s.push(conn.dataset.state);
    }).observe(conn, { attributes: true, attributeFilter: ['data-state'] });
  });
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      window.__smoke.sockets.push(this);
      window.__smoke.urls.push(String(args[0]));
    }
  };
  document.addEventListener('securitypolicyviolation', (e) => {
    const what = `${e.violatedDirective} ${e.blockedURI}`;
    window.__smoke.csp.push(what);
    if (typeof window.smokeReportCsp === 'function') window.smokeReportCsp(what);
  });
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const OUT = path.resolve(opts.out);
  fs.mkdirSync(OUT, { recursive: true });
  const shot = (name) => path.join(OUT, name);
  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'spinewatch-chromium-'));
  let context = null;
  const watchdog = setTimeout(() => {
    console.log(`FAIL - whole smoke test took over ${TOTAL_TIMEOUT_MS / 1000} s`);
    console.log(`${results.filter((r) => r.ok).length} passed, ${results.filter((r) => !r.ok).length + 1} failed`);
    process.exit(1);
  }, TOTAL_TIMEOUT_MS);

  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      timeout: 30000,
      viewport: { width: 1280, height: 800 },
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
    context.setDefaultTimeout(15000);
    await context.addInitScript(instrument);
    const page = context.pages()[0] || await context.newPage();

    const consoleErrors = [];
    page.on('console', (msg) => { if (msg.type() === 'error') consoleErrors.push(msg.text()); });
    page.on('pageerror', (err) => consoleErrors.push(`uncaught: ${err.message}`));
    const cspViolations = [];
    await page.exposeFunction('smokeReportCsp', (what) => { cspViolations.push(what); });
    const failedRequests = [];
    page.on('requestfailed', (req) => {
      if (req.resourceType() !== 'websocket') failedRequests.push(`${req.url()} ${req.failure()?.errorText}`);
    });
    const scripts = new Map();   // URL path -> content type, of what the page loaded
    const origins = new Set();   // of every request
    page.on('request', (req) => { if (/^https?:/.test(req.url())) origins.add(new URL(req.url()).origin); });
    page.on('response', (res) => {
      if (res.status() >= 400) failedRequests.push(`${res.url()} HTTP ${res.status()}`);
      else if (res.request().resourceType() === 'script') scripts.set(new URL(res.url()).pathname, res.headers()['content-type']);
    });

    let response = null;
    await check('dashboard loads with a strict CSP', async () => {
      response = await page.goto(opts.url, { waitUntil: 'load', timeout: 15000 });
      assert(response && response.status() === 200, `HTTP ${response && response.status()}`);
      const csp = response.headers()['content-security-policy'] || '';
      assert(/script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp), `CSP header is "${csp}"`);
      assert(await page.title() !== '', 'page has no title');
      return `HTTP ${response.status()}`;
    });

    await check('connection state becomes live', async () => {
      await page.waitForSelector(`${tid('conn-state')}[data-state="live"]`, { timeout: 10000 });
      const url = await page.evaluate(() => window.__smoke.urls[0]);
      assert(/\/ws\?since=0$/.test(url), `first feed URL is ${url}`);
      const text = (await page.textContent(tid('conn-state'))).trim();
      assert(text === 'Live', `state reads "${text}"`);
      return text;
    });

    await check('notifications: not asked on load, asked once on "Enable notifications"', async () => {
      const before = await page.evaluate(() => window.__smoke.permissionRequests);
      assert(before === 0, `the page asked for notification permission ${before} time(s) on load`);
      const btn = page.locator(tid('notify-toggle'));
      assert(await btn.getAttribute('aria-pressed') === 'false', 'notifications are on before anyone asked');
      await btn.click();
      await page.waitForSelector(`${tid('notify-toggle')}[aria-pressed="true"]`, { timeout: 3000 });
      const after = await page.evaluate(() => window.__smoke.permissionRequests);
      assert(after === 1, `${after} permission request(s) after the click`);
      return (await btn.textContent()).trim();
    });

    await check('alert sound: off by default, switched on, kept in localStorage', async () => {
      const btn = page.locator(tid('sound-toggle'));
      assert(await btn.getAttribute('aria-pressed') === 'false', 'the sound is on by default');
      await btn.click();
      await page.waitForSelector(`${tid('sound-toggle')}[aria-pressed="true"]`, { timeout: 3000 });
      const kept = await page.evaluate(() => localStorage.getItem('spinewatch.sound'));
      assert(kept === 'on', `localStorage has ${kept}`);
      const played = Number(await btn.getAttribute('data-played'));
      assert(played >= 1, 'no chime was played when switching it on');
      return 'on, chime played';
    });

    await check('Chart.js is loaded from the daemon (/vendor/chart.js/, JavaScript MIME types)', async () => {
      await page.waitForFunction(() => document.querySelector('[data-testid="today-hours"]').width > 0
        && document.querySelector('[data-testid="today-hours"]').dataset.points !== undefined, null, { timeout: 10000 });
      for (const p of ['/vendor/chart.js/chart.mjs', '/vendor/chart.js/chunks/helpers.segment.mjs']) {
        assert(scripts.has(p), `${p} was not loaded (${[...scripts.keys()].join(', ')})`);
        assert(/javascript/.test(scripts.get(p)), `${p} came as ${scripts.get(p)}`);
      }
      const foreign = [...origins].filter((o) => o !== new URL(opts.url).origin);
      assert(!foreign.length, `requests to other sites (no CDN allowed): ${foreign.join(', ')}`);
      return [...scripts.keys()].join(' ');
    });

    await check(`sensor list shows ${opts.sensors.length} sensor(s) streaming`, async () => {
      assert(opts.sensors.length > 0, 'no --sensor given');
      for (const addr of opts.sensors) {
        await page.waitForSelector(`${tid('sensor-list')} ${tid(`sensor-${addr}`)}[data-state="streaming"]`, { timeout: 20000 })
          .catch(async () => {
            const st = await page.getAttribute(tid(`sensor-${addr}`), 'data-state', { timeout: 100 }).catch(() => 'absent');
            throw new Error(`${addr} is ${st}`);
          });
      }
      return opts.sensors.join(', ');
    });

    for (const addr of opts.sound) {
      await check(`a crack from ${addr} appears in the event list`, async () => {
        const sel = `${tid('event-list')} li[data-kind="crack"][data-sensor="${addr}"]`;
        await page.waitForSelector(sel, { timeout: 20000 });
        const first = await page.$eval(sel, (li) => ({ crack: li.dataset.crack, seq: li.dataset.seq, text: li.textContent }));
        assert(['pop', 'click', 'grind'].includes(first.crack), `crack kind ${first.crack}`);
        assert(/^\d+$/.test(first.seq), `seq ${first.seq}`);
        const n = Number(await page.textContent(tid('today-cracks')));
        assert(n >= 1, `today's crack count is ${n}`);
        return `${first.crack} #${first.seq}, ${n} today`;
      });
    }
    if (opts.sound.length) {
      await check('the record of the last 7 days follows the cracks (stats command)', async () => {
        // the page asks the daemon for its record after a crack; the week counts it
        await page.waitForFunction((sel) => {
          const m = /^Last 7 days: (\d+) cracks?/.exec(document.querySelector(sel).textContent);
          return m && Number(m[1]) >= 1;
        }, tid('week-summary'), { timeout: 10000, polling: 200 });
        const usual = await page.textContent(tid('today-usual'));
        assert(/learned over a few days/.test(usual), `no baseline on a first day: ${usual}`);
        return page.textContent(tid('week-summary'));
      });
    }
    if (opts.sound.length && opts.bus) {
      await check('a simulated crack appears within a second (event list and timeline)', async () => {
        const addr = opts.sound[0];
        // intensity 100: the scenario's own cracks stay below it
        const sel = `${tid('event-list')} li[data-kind="crack"][data-sensor="${addr}"][data-intensity="100"]`;
        assert(!(await page.$(sel)), 'an intensity-100 crack is listed before the injection');
        const marks = Number(await page.getAttribute(tid('today-timeline'), 'data-cracks')) || 0;
        await sim(opts.bus, 'InjectCrack', `string:${addr}`, 'string:pop', 'byte:100', 'uint16:40', 'byte:3');
        const t0 = Date.now();
        await page.waitForSelector(sel, { timeout: 1000 });
        const ms = Date.now() - t0;
        await page.waitForFunction(([s, n]) => Number(document.querySelector(s).dataset.cracks) > n,
          [tid('today-timeline'), marks], { timeout: 1000 - Math.min(ms, 900), polling: 50 });
        return `listed after ${ms} ms, timeline ${marks} -> ${await page.getAttribute(tid('today-timeline'), 'data-cracks')} cracks`;
      });
    }

    const readAngle = (addr) => page.$eval(tid(`angle-${addr}`), (e) => ({
      text: e.textContent, samples: Number(e.dataset.samples),
    }));
    async function angleUpdates(addr) {
      // calibration takes the first few seconds: wait for a number
      await page.waitForFunction((sel) => {
        const e = document.querySelector(sel);
        return e && Number.isFinite(parseFloat(e.textContent));
      }, tid(`angle-${addr}`), { timeout: 20000, polling: 100 });
      const a = await readAngle(addr);
      await page.waitForFunction(([sel, n]) => {
        const e = document.querySelector(sel);
        return e && Number(e.dataset.samples) >= n + 3 && Number.isFinite(parseFloat(e.textContent));
      }, [tid(`angle-${addr}`), a.samples], { timeout: 10000, polling: 100 });
      const b = await readAngle(addr);
      const deg = parseFloat(b.text);
      assert(deg >= 0 && deg <= 180, `angle ${b.text} out of range`);
      return `${a.text}° -> ${b.text}°, ${b.samples - a.samples} new samples`;
    }
    for (const addr of opts.posture) {
      await check(`posture angle of ${addr} is a number and updates`, () => angleUpdates(addr));
      await check(`posture chart of ${addr} is drawn`, async () => {
        const painted = await page.$eval(tid(`chart-${addr}`), (c) => {
          const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
          let n = 0;
          for (let i = 3; i < d.length; i += 4) if (d[i]) n++;
          return { n, w: c.width, h: c.height };
        });
        assert(painted.w > 0 && painted.h > 0 && painted.n > 500, `canvas ${painted.w}x${painted.h}, ${painted.n} painted pixels`);
        return `${painted.w}x${painted.h}`;
      });
    }

    for (const addr of opts.slouch) {
      await check(`a slouch of ${addr} is shown`, async () => {
        await page.waitForSelector(`${tid('event-list')} li[data-kind="slouch"][data-phase="start"][data-sensor="${addr}"]`, { timeout: 30000 });
        const n = Number(await page.textContent(tid('today-slouches')));
        assert(n >= 1, `today's slouch count is ${n}`);
        // the card shows it too, unless the wearer already sat up again
        const ended = await page.$(`${tid('event-list')} li[data-kind="slouch"][data-phase="end"][data-sensor="${addr}"]`);
        if (!ended) {
          await page.waitForSelector(`${tid(`posture-${addr}`)}[data-state="slouching"]`, { timeout: 5000 });
          const status = await page.textContent(tid(`slouch-${addr}`));
          assert(/^Slouching for \d/.test(status), `status reads "${status}"`);
          return `${status}; ${n} today`;
        }
        return `already ended; ${n} today`;
      });
    }

    let alertId = null;
    const slouchAddr = opts.slouch[0];
    if (slouchAddr) {
      await check(`the long slouch of ${slouchAddr} raises an alert banner (daemon's words, live region)`, async () => {
        const sel = `${tid('alert-list')} li[data-rule="slouch-long"][data-sensor="${slouchAddr}"]`;
        await page.waitForSelector(`${sel}[data-state="raised"]`, { timeout: 30000 });
        alertId = Number(await page.getAttribute(sel, 'data-alert-id'));
        const shown = (await page.textContent(tid(`alert-message-${alertId}`))).trim();
        const hello = await feedHello(page);
        const daemon = (hello.alerts || []).find((a) => a.id === alertId);
        assert(daemon, `alert ${alertId} is not active in a new client's hello`);
        assert(shown === daemon.message, `banner says "${shown}", the daemon "${daemon.message}"`);
        const live = await page.$eval(tid('alert-list'), (ul) => ul.getAttribute('aria-live'));
        assert(live === 'polite' || live === 'assertive', `alert list aria-live=${live}`);
        assert(/^\(\d+\) /.test(await page.title()), `title "${await page.title()}" does not count raised alerts`);
        const notes = await page.evaluate(() => window.__smoke.notifications);
        assert(notes.some((n) => n.body && n.body.includes(daemon.message)), `no browser notification for it (${JSON.stringify(notes).slice(0, 200)})`);
        return `#${alertId}: ${shown.slice(0, 60)}…; ${notes.length} notification(s)`;
      });

      await check('keyboard: Tab reaches the toggles, the alert button and the calibrate buttons', async () => {
        await page.evaluate(() => { document.activeElement && document.activeElement.blur(); window.scrollTo(0, 0); });
        const seen = [];
        for (let i = 0; i < 80; i++) {
          await page.keyboard.press('Tab');
          const id = await page.evaluate(() => (document.activeElement && document.activeElement.dataset.testid) || document.activeElement.tagName);
          seen.push(id);
        }
        for (const want of ['notify-toggle', 'sound-toggle', `ack-${alertId}`, ...opts.posture.map((a) => `calibrate-${a}`)]) {
          assert(seen.includes(want), `Tab never reached ${want} (reached ${[...new Set(seen)].join(', ')})`);
        }
        return `${new Set(seen).size} stops`;
      });

      await check('acknowledging the alert reaches the daemon', async () => {
        await page.click(tid(`ack-${alertId}`));
        // attached, not visible: an acknowledged banner sorts after the raised ones, and with
        // more than four alerts it is behind "Show N more alerts"
        await page.waitForSelector(`${tid(`alert-${alertId}`)}[data-state="acknowledged"]`, { state: 'attached', timeout: 3000 });
        await page.waitForSelector(`${tid('event-list')} li[data-kind="alert"][data-state="acknowledged"]`, { timeout: 3000 });
        const hello = await feedHello(page);
        const daemon = (hello.alerts || []).find((a) => a.id === alertId);
        assert(daemon && daemon.state === 'acknowledged', `a new client's hello lists ${JSON.stringify(daemon)}`);
        return `alert ${alertId} acknowledged in the daemon`;
      });
    }

    if (opts.calibrate && opts.bus) {
      await check(`calibrate ${opts.calibrate}: "sit upright and still", then the result`, async () => {
        const addr = opts.calibrate;
        await sim(opts.bus, 'SetAngle', `string:${addr}`, 'double:2');   // held still
        try {
          await page.waitForTimeout(1000);
          await page.click(tid(`calibrate-${addr}`));
          await page.waitForSelector(`${tid(`calib-${addr}`)}[data-state="running"]`, { timeout: 1000 })
            .catch(() => { throw new Error('no "running" state after the click'); });
          const during = await page.textContent(tid(`calib-${addr}`));
          assert(/sit upright and still/i.test(during), `while calibrating: "${during}"`);
          assert(await page.isDisabled(tid(`calibrate-${addr}`)), 'the button can be pressed again while it runs');
          await page.waitForSelector(`${tid(`calib-${addr}`)}:is([data-state="done"], [data-state="refused"], [data-state="error"])`, { timeout: 15000 });
          const st = await page.getAttribute(tid(`calib-${addr}`), 'data-state');
          const text = await page.textContent(tid(`calib-${addr}`));
          assert(st === 'done' && /^Calibrated at/.test(text), `result ${st}: "${text}"`);
          return text;
        } finally {
          await sim(opts.bus, 'Resume').catch(() => {});
        }
      });
    }

    let notedSeq = null;
    const FINAL_NOTE = 'stood up after a long call';
    const FINAL_TEXT = `Pain 3/10 \u00b7 stiffness 6/10 \u00b7 \u201c${FINAL_NOTE}\u201d`;
    if (opts.sound.length) {
      await check('a crack can be annotated from the page with the keyboard; the note reaches another client', async () => {
        const addr = opts.sound[0];
        const item = `${tid('event-list')} > li[data-kind="crack"][data-sensor="${addr}"]`;
        notedSeq = Number(await page.getAttribute(item, 'data-seq'));
        const seq = notedSeq;
        // cracks, slouches and alerts take a note; other items do not
        const kinds = await page.$$eval(`${tid('event-list')} > li[data-seq]`, (lis) => lis.map((li) => ({
          kind: li.dataset.kind, button: !!li.querySelector('.note-btn'),
        })));
        for (const k of kinds) {
          assert(k.button === ['crack', 'slouch', 'alert'].includes(k.kind), `a ${k.kind} item ${k.button ? 'has' : 'lacks'} the note button`);
        }
        const shownEmpty = await page.$$eval(`${tid('event-list')} > li[data-seq] .ev-note`, (ns) => ns.filter((n) => n.offsetHeight > 0).length);
        assert(shownEmpty === 0, `${shownEmpty} item(s) without a note show a note box`);
        const btn = tid(`note-btn-${seq}`);
        assert((await page.textContent(btn)).trim() === 'Add note', `button reads "${await page.textContent(btn)}"`);
        await watchAnnotations(page);
        await page.focus(btn);
        await page.keyboard.press('Enter');
        await page.waitForSelector(tid(`note-form-${seq}`), { timeout: 2000 });
        assert(await page.getAttribute(btn, 'aria-expanded') === 'true', 'the button does not say the form is open');
        // labelled controls, in a sensible Tab order, starting on the pain score
        const form = await page.$eval(tid(`note-form-${seq}`), (f) => ({
          labels: [...f.querySelectorAll('select, textarea')].map((c) => [...c.labels].map((l) => l.textContent.trim()).join(' ')),
          focused: document.activeElement.dataset.testid,
        }));
        assert(form.labels.length === 3 && form.labels.every(Boolean), `form controls and their labels: ${JSON.stringify(form.labels)}`);
        assert(form.focused === `note-pain-${seq}`, `focus went to ${form.focused}`);
        const order = [];
        for (let i = 0; i < 4; i++) {
          await page.keyboard.press('Tab');
          order.push(await page.evaluate(() => document.activeElement.dataset.testid));
        }
        assert(order.join() === [`note-stiffness-${seq}`, `note-text-${seq}`, `note-save-${seq}`, `note-cancel-${seq}`].join(),
          `Tab order in the form: ${order.join(', ')}`);
        // pain 2 (with the keyboard), no stiffness, a note; the byte count shows the limit
        await page.focus(tid(`note-pain-${seq}`));
        await page.keyboard.press('2');
        assert(await page.inputValue(tid(`note-pain-${seq}`)) === '2', `pain is "${await page.inputValue(tid(`note-pain-${seq}`))}"`);
        await page.focus(tid(`note-text-${seq}`));
        await page.keyboard.type('after lunch');
        const count = (await page.textContent(tid(`note-count-${seq}`))).trim();
        assert(count === '11 of 280 bytes', `count reads "${count}"`);
        await page.focus(tid(`note-save-${seq}`));
        await page.keyboard.press('Enter');
        await annotationArrives(page, seq, { of: 'crack', sensor: addr, pain: 2, stiffness: null, note: 'after lunch' });
        await page.waitForSelector(tid(`note-form-${seq}`), { state: 'detached', timeout: 3000 });
        await page.waitForSelector(`${tid('event-list')} > li[data-seq="${seq}"][data-annotated="true"]`, { timeout: 3000 });
        const shown = (await page.textContent(`${tid(`note-${seq}`)} .ev-note-text`)).trim();
        assert(shown === 'Pain 2/10 \u00b7 \u201cafter lunch\u201d', `the item shows "${shown}"`);
        assert((await page.textContent(btn)).trim() === 'Edit note', `button reads "${await page.textContent(btn)}" after saving`);
        assert(await page.evaluate(() => document.activeElement.dataset.testid) === `note-btn-${seq}`, 'focus did not go back to the note button');
        assert(!(await page.$(`${tid('event-list')} > li[data-kind="annotation"]`)), 'the annotation is listed as an event of its own');
        return `crack #${seq}: ${shown}`;
      });

      await check('the note form checks its input, shows a refusal, and a later note replaces the earlier one', async () => {
        const seq = notedSeq;
        assert(seq, 'no annotated crack from the check before');
        await page.click(tid(`note-btn-${seq}`));
        await page.waitForSelector(tid(`note-form-${seq}`), { timeout: 2000 });
        // filled in with the current note
        assert(await page.inputValue(tid(`note-pain-${seq}`)) === '2' && await page.inputValue(tid(`note-stiffness-${seq}`)) === ''
          && await page.inputValue(tid(`note-text-${seq}`)) === 'after lunch', 'the form does not start from the current note');
        const error = tid(`note-error-${seq}`);
        // nothing given
        await page.selectOption(tid(`note-pain-${seq}`), '');
        await page.fill(tid(`note-text-${seq}`), '');
        await page.click(tid(`note-save-${seq}`));
        await page.waitForSelector(`${error}:not([hidden])`, { timeout: 1000 });
        assert(/pain or stiffness/.test(await page.textContent(error)), `error "${await page.textContent(error)}"`);
        // over 280 bytes (two bytes a letter), though under 280 characters
        await page.fill(tid(`note-text-${seq}`), '\u00e9'.repeat(141));
        const count = (await page.textContent(tid(`note-count-${seq}`))).trim();
        assert(count === '282 of 280 bytes: 2 too many', `count reads "${count}"`);
        await page.click(tid(`note-save-${seq}`));
        await page.waitForFunction((sel) => /282 bytes/.test(document.querySelector(sel).textContent), error, { timeout: 1000 });
        const sent = await page.evaluate(() => window.__smoke.annotations.length);
        // the daemon's refusal: the page's command names an event the daemon does not keep
        await page.evaluate(() => {
          const ws = window.__smoke.sockets.at(-1);
          ws.send = function send(data) {
            const m = JSON.parse(data);
            if (m.type === 'annotate') m.event = 999999999;
            return Object.getPrototypeOf(this).send.call(this, JSON.stringify(m));
          };
        });
        try {
          await page.fill(tid(`note-text-${seq}`), 'x');
          await page.click(tid(`note-save-${seq}`));
          await page.waitForFunction((sel) => /no longer keeps this event/.test(document.querySelector(sel).textContent), error, { timeout: 3000 })
            .catch(async () => { throw new Error(`refusal not shown: "${await page.textContent(error)}"`); });
        } finally {
          await page.evaluate(() => { delete window.__smoke.sockets.at(-1).send; });
        }
        assert(await page.isVisible(tid(`note-form-${seq}`)), 'the form closed on a refusal');
        assert(await page.evaluate(() => window.__smoke.annotations.length) === sent, 'a refused or invalid note reached the daemon');
        // screenshots of the open form with the refusal: desktop, phone (must fit), dark
        const panel = '.events-panel';
        await page.$eval(tid(`note-form-${seq}`), (f) => f.scrollIntoView({ block: 'center' }));
        await page.locator(panel).screenshot({ path: shot('note-form.png') });
        await page.setViewportSize({ width: 390, height: 844 });
        await page.waitForTimeout(300);
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert(overflow <= 0, `with the note form open the page is ${overflow} px wider than the phone screen`);
        await page.$eval(tid(`note-form-${seq}`), (f) => f.scrollIntoView({ block: 'center' }));
        await page.screenshot({ path: shot('note-form-phone.png') });
        await page.emulateMedia({ colorScheme: 'dark' });
        await page.waitForTimeout(200);
        await page.screenshot({ path: shot('note-form-phone-dark.png') });
        await page.emulateMedia({ colorScheme: 'light' });
        await page.setViewportSize({ width: 1280, height: 800 });
        // Escape closes the form without saving, and focus returns to the button
        await page.focus(tid(`note-text-${seq}`));
        await page.keyboard.press('Escape');
        await page.waitForSelector(tid(`note-form-${seq}`), { state: 'detached', timeout: 1000 });
        assert(await page.evaluate(() => document.activeElement.dataset.testid) === `note-btn-${seq}`, 'Escape did not return focus to the button');
        // a later note replaces the earlier one (newest wins)
        await page.click(tid(`note-btn-${seq}`));
        await page.waitForSelector(tid(`note-form-${seq}`), { timeout: 2000 });
        assert(await page.isHidden(tid(`note-error-${seq}`)), 'a new form still shows the old error');
        await page.selectOption(tid(`note-pain-${seq}`), '3');
        await page.selectOption(tid(`note-stiffness-${seq}`), '6');
        await page.fill(tid(`note-text-${seq}`), FINAL_NOTE);
        await page.click(tid(`note-save-${seq}`));
        await annotationArrives(page, seq, { pain: 3, stiffness: 6, note: FINAL_NOTE });
        await page.waitForFunction(([sel, want]) => document.querySelector(sel).textContent.trim() === want,
          [`${tid(`note-${seq}`)} .ev-note-text`, FINAL_TEXT], { timeout: 3000 })
          .catch(async () => { throw new Error(`the item shows "${await page.textContent(`${tid(`note-${seq}`)} .ev-note-text`)}"`); });
        await page.evaluate(() => window.__smoke.watcher.close());
        await page.$eval(tid(`note-${seq}`), (n) => n.scrollIntoView({ block: 'center' }));
        await page.locator(panel).screenshot({ path: shot('note-shown.png') });
        await page.$eval(tid('event-list'), (list) => { list.scrollTop = 0; });
        return FINAL_TEXT;
      });
    }

    for (const addr of opts.audio) {
      if (!opts.bus) break;
      await check(`a crack heard in ${addr}'s audio shows its level and pitch`, async () => {
        // a pop played into the Thingy:52's microphone stream: the daemon hears it in the audio
        // (after the slouch checks, which follow the scenario's clock)
        const sel = `${tid('event-list')} li[data-kind="crack"][data-sensor="${addr}"]`;
        const before = (await page.$$(sel)).length;
        await sim(opts.bus, 'InjectCrack', `string:${addr}`, 'string:pop', 'byte:90', 'uint16:20', 'byte:1');
        await page.waitForFunction(([s, n]) => document.querySelectorAll(s).length > n, [sel, before],
          { timeout: 10000, polling: 100 });
        const meta = await page.$eval(sel, (li) => li.querySelector('.ev-meta').textContent);
        assert(/-?\d+\.\d dBFS/.test(meta), `no level in "${meta}"`);
        assert(/around \d+ Hz/.test(meta), `no dominant frequency in "${meta}"`);
        return meta;
      });
    }

    await check('Chart.js charts: timeline, cracks per hour, 8 weeks of cracks and slouch minutes', async () => {
      // the 8-week charts follow the record (stats replies after cracks)
      await page.waitForFunction(() => Number(document.querySelector('[data-testid="weeks-cracks"]').dataset.points) >= 1,
        null, { timeout: 10000, polling: 200 });
      const out = [];
      for (const id of ['today-timeline', 'today-hours', 'weeks-cracks', 'weeks-slouch']) {
        const p = await paintedPixels(page, id);
        assert(p.w > 0 && p.h > 0 && p.n > 500, `${id}: canvas ${p.w}x${p.h}, ${p.n} painted pixels`);
        out.push(`${id} ${p.points}`);
      }
      const label = await page.getAttribute(tid('today-timeline'), 'aria-label');
      assert(/pops/.test(label), `timeline aria-label "${label}"`);
      return out.join(', ');
    });

    await check("today's crack counts match the feed", async () => {
      // An independent client replays the ring and counts today's cracks by kind.
      const feed = await page.evaluate(() => new Promise((resolve, reject) => {
        const ws = new window.__smoke.Native(`ws://${location.host}/ws?since=0`, 'spinewatch.v1');
        const today = new Date().toDateString();
        const n = { crack: 0, pop: 0, click: 0, grind: 0 };
        let last = null;
        const timer = setTimeout(() => { ws.close(); reject(new Error('feed replay took over 5 s')); }, 5000);
        const done = () => { clearTimeout(timer); ws.close(); resolve({ n, last }); };
        ws.onmessage = (e) => {
          const m = JSON.parse(e.data);
          if (m.type === 'hello') { last = m.last_seq; if (last === 0) done(); return; }
          if (m.type !== 'event') return;
          if (m.kind === 'crack' && new Date(m.ts).toDateString() === today) { n.crack++; n[m.crack]++; }
          if (m.seq >= last) done();
        };
        ws.onerror = () => { clearTimeout(timer); reject(new Error('feed socket failed')); };
      }));
      const read = () => page.evaluate(() => Object.fromEntries(['cracks', 'pops', 'clicks', 'grinds']
        .map((k) => [k, Number(document.querySelector(`[data-testid="today-${k}"]`).textContent)])));
      // the page has seen at least the events up to feed.last (it may have more by now)
      await page.waitForFunction((min) => Number(document.querySelector('[data-testid="today-cracks"]').textContent) >= min,
        feed.n.crack, { timeout: 5000 }).catch(() => {});
      const c = await read();
      assert(c.cracks >= feed.n.crack && c.pops >= feed.n.pop && c.clicks >= feed.n.click && c.grinds >= feed.n.grind,
        `page ${JSON.stringify(c)}, feed up to seq ${feed.last} ${JSON.stringify(feed.n)}`);
      assert(c.cracks === c.pops + c.clicks + c.grinds, `kinds do not add up: ${JSON.stringify(c)}`);
      assert(c.cracks <= feed.n.crack + 3, `page counts ${c.cracks} cracks, the feed had ${feed.n.crack} moments ago`);
      return `${c.cracks} = ${c.pops} pops + ${c.clicks} clicks + ${c.grinds} grinds`;
    });

    await check('desktop screenshot (1280x800)', async () => {
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.evaluate(() => window.scrollTo(0, 0));
      await page.waitForTimeout(600);
      await page.screenshot({ path: shot('desktop.png') });
      await page.screenshot({ path: shot('desktop-full.png'), fullPage: true });
      return shot('desktop.png');
    });

    await check('phone layout fits 390 px and screenshot (390x844)', async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.waitForTimeout(400);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert(overflow <= 0, `page is ${overflow} px wider than the phone screen`);
      await page.screenshot({ path: shot('phone.png') });
      await page.screenshot({ path: shot('phone-full.png'), fullPage: true });
      return shot('phone.png');
    });

    await check('dark colour scheme screenshot', async () => {
      await page.emulateMedia({ colorScheme: 'dark' });
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.waitForTimeout(400);
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert(bg !== 'rgb(244, 246, 248)', `background stayed light (${bg})`);
      await page.screenshot({ path: shot('desktop-dark.png') });
      await page.setViewportSize({ width: 390, height: 844 });
      await page.waitForTimeout(400);
      await page.screenshot({ path: shot('phone-dark.png') });
      await page.emulateMedia({ colorScheme: 'light' });
      await page.setViewportSize({ width: 1280, height: 800 });
      return shot('desktop-dark.png');
    });

    await check('dropped connection: reconnecting, then live, resuming with ?since=<last seq>, no duplicates', async () => {
      const before = await page.evaluate(() => {
        const seqs = [...document.querySelectorAll('[data-testid="event-list"] li[data-seq]')].map((li) => Number(li.dataset.seq));
        window.__smoke.connStates = [];
        return { max: Math.max(0, ...seqs), sockets: window.__smoke.sockets.length };
      });
      assert(before.max > 0, 'no event with a seq in the list');
      await page.evaluate(() => window.__smoke.sockets.at(-1).close());
      await page.waitForFunction((n) => window.__smoke.urls.length > n, before.sockets, { timeout: 10000 });
      const url = await page.evaluate(() => window.__smoke.urls.at(-1));
      const since = Number(new URL(url).searchParams.get('since'));
      assert(since >= before.max, `reconnected with ${url}, but the list already had seq ${before.max}`);
      await page.waitForSelector(`${tid('conn-state')}[data-state="live"]`, { timeout: 10000 });
      const states = await page.evaluate(() => window.__smoke.connStates);
      assert(states[0] === 'reconnecting' && states.at(-1) === 'live', `states after the drop: ${states.join(' -> ')}`);
      // let a few more messages arrive, then look for duplicates
      await page.waitForTimeout(1500);
      const seqs = await page.$$eval(`${tid('event-list')} li[data-seq]`, (lis) => lis.map((li) => Number(li.dataset.seq)));
      assert(new Set(seqs).size === seqs.length, 'an event is listed twice');
      for (let i = 1; i < seqs.length; i++) assert(seqs[i - 1] > seqs[i], `list not newest-first at ${seqs[i - 1]}, ${seqs[i]}`);
      return `${states.join(' -> ')}, since=${since}`;
    });

    if (opts.daemonPidfile) {
      await check('a daemon restart: the page resumes the same stream, no event lost or listed twice', async () => {
        const { readFileSync } = await import('node:fs');
        const pid = Number(readFileSync(opts.daemonPidfile, 'utf8'));
        const before = await page.evaluate(() => {
          const seqs = [...document.querySelectorAll('[data-testid="event-list"] li[data-seq]')].map((li) => Number(li.dataset.seq));
          window.__smoke.connStates = [];
          return { max: Math.max(0, ...seqs), sockets: window.__smoke.sockets.length };
        });
        process.kill(pid, 'SIGTERM');   /* run.sh's supervisor starts it again */
        await page.waitForFunction((n) => window.__smoke.urls.length > n, before.sockets, { timeout: 15000 });
        await page.waitForSelector(`${tid('conn-state')}[data-state="live"]`, { timeout: 20000 });
        const newPid = Number(readFileSync(opts.daemonPidfile, 'utf8'));
        assert(newPid !== pid, 'the daemon was not restarted');
        const url = await page.evaluate(() => window.__smoke.urls.at(-1));
        const since = Number(new URL(url).searchParams.get('since'));
        assert(since >= before.max, `reconnected with ${url} after the list had seq ${before.max}`);
        // the shutdown's own events (sensors going away) and the new run's arrive after it
        await page.waitForFunction((max) => [...document.querySelectorAll('[data-testid="event-list"] li[data-seq]')]
          .some((li) => Number(li.dataset.seq) > max), before.max, { timeout: 15000 });
        const seqs = await page.$$eval(`${tid('event-list')} li[data-seq]`, (lis) => lis.map((li) => Number(li.dataset.seq)));
        assert(new Set(seqs).size === seqs.length, 'an event is listed twice');
        assert(seqs.includes(before.max), `the last event before the restart (${before.max}) is gone from the list`);
        for (let i = 1; i < seqs.length; i++) assert(seqs[i - 1] > seqs[i], `list not newest-first at ${seqs[i - 1]}, ${seqs[i]}`);
        return `pid ${pid} -> ${newPid}, resumed with since=${since}, newest seq now ${seqs[0]}`;
      });
    }

    await check('reload reconnects and shows the history again', async () => {
      const counts = await page.textContent(tid('today-cracks'));
      await page.reload({ waitUntil: 'load', timeout: 15000 });
      await page.waitForSelector(`${tid('conn-state')}[data-state="live"]`, { timeout: 10000 });
      assert(await page.getAttribute(tid('sound-toggle'), 'aria-pressed') === 'true', 'the sound choice was not kept');
      assert(await page.getAttribute(tid('notify-toggle'), 'aria-pressed') === 'true', 'the notification choice was not kept');
      assert(await page.evaluate(() => window.__smoke.permissionRequests) === 0, 'the reloaded page asked for permission');
      if (opts.sound.length) {
        await page.waitForSelector(`${tid('event-list')} li[data-kind="crack"]`, { timeout: 10000 });
        const after = Number(await page.textContent(tid('today-cracks')));
        assert(after >= Number(counts), `crack count went from ${counts} to ${after}`);
      }
      for (const addr of opts.posture) await angleUpdates(addr);
      return `cracks today ${counts} -> ${await page.textContent(tid('today-cracks'))}; sound and notification choices kept`;
    });

    if (notedSeq) {
      await check('the note is still on its crack after the reload (the annotation event is replayed)', async () => {
        const sel = `${tid('event-list')} > li[data-seq="${notedSeq}"][data-annotated="true"]`;
        await page.waitForSelector(sel, { timeout: 10000 })
          .catch(() => { throw new Error(`crack #${notedSeq} is not listed with its note after the reload`); });
        const shown = (await page.textContent(`${tid(`note-${notedSeq}`)} .ev-note-text`)).trim();
        assert(shown === FINAL_TEXT, `the item shows "${shown}", not the newest note`);
        assert((await page.textContent(tid(`note-btn-${notedSeq}`))).trim() === 'Edit note', 'the button does not offer to edit the note');
        return `crack #${notedSeq}: ${shown}`;
      });
    }

    await check('offline after repeated failures, "Retry now", then live again', async () => {
      // every new feed connection is refused until unblocked, then passed through
      let blocked = true;
      await page.routeWebSocket(/\/ws(\?|$)/, (ws) => { if (blocked) ws.close(); else ws.connectToServer(); });
      await page.evaluate(() => { window.__smoke.connStates = []; window.__smoke.sockets.at(-1).close(); });
      await page.waitForSelector(`${tid('conn-state')}[data-state="offline"]`, { timeout: 20000 });
      const text = (await page.textContent(tid('conn-state'))).trim();
      assert(/^Offline/.test(text), `offline state reads "${text}"`);
      assert(await page.isVisible(tid('retry-now')), 'no Retry now button while offline');
      blocked = false;
      await page.click(tid('retry-now'));
      await page.waitForSelector(`${tid('conn-state')}[data-state="live"]`, { timeout: 10000 });
      assert(!(await page.isVisible(tid('retry-now'))), 'Retry now still shown when live');
      const states = await page.evaluate(() => window.__smoke.connStates);
      return states.join(' -> ');
    });

    await check('no console errors, failed requests or CSP violations', async () => {
      const problems = [...consoleErrors, ...failedRequests, ...cspViolations.map((c) => `CSP: ${c}`)];
      assert(problems.length === 0, problems.slice(0, 3).join(' | '));
    });
  } catch (err) {
    await check('smoke test ran to the end', () => { throw err; });
  } finally {
    clearTimeout(watchdog);
    if (context) await context.close().catch(() => {});
    fs.rmSync(profile, { recursive: true, force: true });
  }

  const passed = results.filter((r) => r.ok).length;
  const failed = results.length - passed;
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

main().catch((err) => {
  console.log(`FAIL - ${err.message}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
});
