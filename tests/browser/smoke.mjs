// tests/browser/smoke.mjs - headless-Chromium smoke test of the spinewatch
// dashboard (web/). Loads the page from a running spinewatchd, checks that it
// connects, shows the sensors, events and live posture angle, survives a
// dropped connection (resume with ?since=) and a reload, raises no console
// error or CSP violation, and saves desktop and phone screenshots to out/.
//
//   node smoke.mjs URL [--sensor ADDR]... [--posture ADDR]... [--sound ADDR]... [--slouch ADDR]...
//
// --sensor: must be listed as streaming; --posture: its angle must be a number
// that updates; --sound: a crack from it must appear in the event list;
// --slouch: a slouch from it must be shown (event, card state, today's count).
// Prints one line per check and "N passed, N failed"; exits 1 on any failure.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const OUT = path.join(HERE, 'out');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const TOTAL_TIMEOUT_MS = 150000;

function parseArgs(argv) {
  const opts = { url: null, sensors: [], posture: [], sound: [], slouch: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
      return argv[++i];
    };
    if (a === '--sensor') opts.sensors.push(next());
    else if (a === '--posture') opts.posture.push(next());
    else if (a === '--sound') opts.sound.push(next());
    else if (a === '--slouch') opts.slouch.push(next());
    else if (!opts.url && !a.startsWith('--')) opts.url = a;
    else throw new Error(`unknown argument ${a}`);
  }
  if (!opts.url) throw new Error('usage: node smoke.mjs URL [--sensor ADDR]... [--posture ADDR]... [--sound ADDR]... [--slouch ADDR]...');
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

// Records every WebSocket the page opens (URL and the object, to drop it
// from the test) and every CSP violation. Runs before the page's scripts;
// DevTools-injected scripts are exempt from the page's CSP.
function instrument() {
  const Native = window.WebSocket;
  window.__smoke = { sockets: [], urls: [], csp: [], Native };
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
  fs.mkdirSync(OUT, { recursive: true });
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
    page.on('response', (res) => { if (res.status() >= 400) failedRequests.push(`${res.url()} HTTP ${res.status()}`); });

    let response = null;
    await check('dashboard loads with a strict CSP', async () => {
      response = await page.goto(opts.url, { waitUntil: 'load', timeout: 15000 });
      assert(response && response.status() === 200, `HTTP ${response && response.status()}`);
      const csp = response.headers()['content-security-policy'] || '';
      assert(/script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp), `CSP header is "${csp}"`);
      assert(await page.title() !== '', 'page has no title');
      return `HTTP ${response.status()}`;
    });

    await check('connection state becomes connected', async () => {
      await page.waitForSelector(`${tid('conn-state')}[data-state="connected"]`, { timeout: 10000 });
      const url = await page.evaluate(() => window.__smoke.urls[0]);
      assert(/\/ws\?since=0$/.test(url), `first feed URL is ${url}`);
      return (await page.textContent(tid('conn-state'))).trim();
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

    await check('dropped connection resumes with ?since=<last seq>, no duplicates', async () => {
      const before = await page.evaluate(() => {
        const seqs = [...document.querySelectorAll('[data-testid="event-list"] li[data-seq]')].map((li) => Number(li.dataset.seq));
        return { max: Math.max(0, ...seqs), sockets: window.__smoke.sockets.length };
      });
      assert(before.max > 0, 'no event with a seq in the list');
      await page.evaluate(() => window.__smoke.sockets.at(-1).close());
      await page.waitForFunction((n) => window.__smoke.urls.length > n, before.sockets, { timeout: 10000 });
      const url = await page.evaluate(() => window.__smoke.urls.at(-1));
      const since = Number(new URL(url).searchParams.get('since'));
      assert(since >= before.max, `reconnected with ${url}, but the list already had seq ${before.max}`);
      await page.waitForSelector(`${tid('conn-state')}[data-state="connected"]`, { timeout: 10000 });
      // let a few more messages arrive, then look for duplicates
      await page.waitForTimeout(1500);
      const seqs = await page.$$eval(`${tid('event-list')} li[data-seq]`, (lis) => lis.map((li) => Number(li.dataset.seq)));
      assert(new Set(seqs).size === seqs.length, 'an event is listed twice');
      for (let i = 1; i < seqs.length; i++) assert(seqs[i - 1] > seqs[i], `list not newest-first at ${seqs[i - 1]}, ${seqs[i]}`);
      return `since=${since}`;
    });

    await check('reload reconnects and shows the history again', async () => {
      const counts = await page.textContent(tid('today-cracks'));
      await page.reload({ waitUntil: 'load', timeout: 15000 });
      await page.waitForSelector(`${tid('conn-state')}[data-state="connected"]`, { timeout: 10000 });
      if (opts.sound.length) {
        await page.waitForSelector(`${tid('event-list')} li[data-kind="crack"]`, { timeout: 10000 });
        const after = Number(await page.textContent(tid('today-cracks')));
        assert(after >= Number(counts), `crack count went from ${counts} to ${after}`);
      }
      for (const addr of opts.posture) await angleUpdates(addr);
      return `cracks today ${counts} -> ${await page.textContent(tid('today-cracks'))}`;
    });

    await check('desktop screenshot (1280x800)', async () => {
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.waitForTimeout(400);
      await page.screenshot({ path: path.join(OUT, 'desktop.png') });
      return 'out/desktop.png';
    });

    await check('phone layout fits 390 px and screenshot (390x844)', async () => {
      await page.setViewportSize({ width: 390, height: 844 });
      await page.waitForTimeout(400);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert(overflow <= 0, `page is ${overflow} px wider than the phone screen`);
      await page.screenshot({ path: path.join(OUT, 'phone.png') });
      await page.screenshot({ path: path.join(OUT, 'phone-full.png'), fullPage: true });
      return 'out/phone.png';
    });

    await check('dark colour scheme screenshot', async () => {
      await page.emulateMedia({ colorScheme: 'dark' });
      await page.setViewportSize({ width: 1280, height: 800 });
      await page.waitForTimeout(400);
      const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert(bg !== 'rgb(244, 246, 248)', `background stayed light (${bg})`);
      await page.screenshot({ path: path.join(OUT, 'desktop-dark.png') });
      await page.emulateMedia({ colorScheme: 'light' });
      return 'out/desktop-dark.png';
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
