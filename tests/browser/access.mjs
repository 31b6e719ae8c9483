// tests/browser/access.mjs - headless-Chromium test of the dashboard's access
// token flow (web/access.js) against a spinewatchd that wants a token
// ([access] loopback = none, a token file): the page asks for a token instead
// of retrying forever, says why, refuses a malformed one in the form, reports
// a refused one, goes live with a good one and keeps it across a reload, takes
// a token from the address's #token= and removes it from the address bar.
// Saves a screenshot of the token panel. No console error or CSP violation.
//
//   node access.mjs URL --token CONTROL_TOKEN --read-token READ_TOKEN [--out DIR]
// Prints one line per check and "N passed, N failed"; exits 1 on any failure.

import { chromium } from 'playwright-core';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

const opts = { url: null, token: null, readToken: null, out: path.join(HERE, '..', '..', 'build', 'browser') };
for (let i = 2; i < process.argv.length; i++) {
  const a = process.argv[i];
  if (a === '--token') opts.token = process.argv[++i];
  else if (a === '--read-token') opts.readToken = process.argv[++i];
  else if (a === '--out') opts.out = process.argv[++i];
  else opts.url = a;
}
if (!opts.url || !opts.token || !opts.readToken) {
  console.error('usage: node access.mjs URL --token TOKEN --read-token TOKEN [--out DIR]');
  process.exit(2);
}

const results = [];
async function check(name, fn) {
  try {
    const detail = await fn();
    results.push(true);
    console.log(`ok   - ${name}${detail ? ` (${detail})` : ''}`);
  } catch (err) {
    results.push(false);
    console.log(`FAIL - ${name}: ${String(err && err.message ? err.message : err).split('\n')[0]}`);
  }
}

async function waitFor(fn, ms, what) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) { last = e; }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${ms} ms waiting for ${what} (last: ${last})`);
}

const connState = (page) => page.$eval('[data-testid="conn-state"]', (e) => e.dataset.state);
const panelShown = (page) => page.$eval('[data-testid="access-panel"]', (e) => !e.hidden);

const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
const errors = [];
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  page.on('console', (m) => {
    // a refused WebSocket upgrade and the probe's 401 are logged by Chromium itself
    if (m.type() === 'error' && !/WebSocket|401|Unauthorized/.test(m.text())) errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(String(e)));

  await page.goto(opts.url);
  await check('without a token the page asks for one and stops retrying', async () => {
    await waitFor(() => panelShown(page), 15000, 'the token panel');
    const state = await connState(page);
    if (state !== 'locked') throw new Error(`connection state ${state}`);
    const why = await page.textContent('[data-testid="access-why"]');
    if (!/needs an access token/.test(why)) throw new Error(`why: ${why}`);
    const focused = await page.evaluate(() => document.activeElement && document.activeElement.id);
    if (focused !== 'access-token') throw new Error(`focus on ${focused}`);
    await page.screenshot({ path: path.join(opts.out, 'access-token.png') });
    return why;
  });
  await check('a malformed token is refused by the form', async () => {
    await page.fill('#access-token', 'short');
    await page.keyboard.press('Enter');
    const err = await waitFor(() => page.$eval('[data-testid="access-error"]', (e) => !e.hidden && e.textContent), 3000, 'the error');
    const invalid = await page.getAttribute('#access-token', 'aria-invalid');
    if (invalid !== 'true') throw new Error('aria-invalid not set');
    return err;
  });
  await check('a refused token is reported and forgotten', async () => {
    await page.fill('#access-token', 'wrong-token-0000000000');
    await page.keyboard.press('Enter');
    await waitFor(async () => (await panelShown(page)) &&
      /was refused/.test(await page.textContent('[data-testid="access-why"]')), 15000, 'the refusal');
    const kept = await page.evaluate(() => localStorage.getItem('spinewatch.token'));
    if (kept) throw new Error(`the refused token is still stored: ${kept}`);
  });
  await check('a good token opens the feed, and survives a reload', async () => {
    await page.fill('#access-token', opts.token);
    await page.click('[data-testid="access-form"] button[type="submit"]');
    await waitFor(async () => (await connState(page)) === 'live', 15000, 'live');
    if (await panelShown(page)) throw new Error('the panel is still shown');
    await page.reload();
    await waitFor(async () => (await connState(page)) === 'live', 15000, 'live after the reload');
    if (await panelShown(page)) throw new Error('the panel came back after the reload');
  });

  const ctx2 = await browser.newContext();
  const page2 = await ctx2.newPage();
  page2.on('pageerror', (e) => errors.push(String(e)));
  await check('#token= in the address is taken, kept and removed from the address bar', async () => {
    await page2.goto(`${opts.url}#token=${opts.readToken}`);
    await waitFor(async () => (await connState(page2)) === 'live', 15000, 'live');
    const url = page2.url();
    if (url.includes('token')) throw new Error(`the address still has the token: ${url}`);
    const kept = await page2.evaluate(() => localStorage.getItem('spinewatch.token'));
    if (kept !== opts.readToken) throw new Error(`stored: ${kept}`);
    return url;
  });
  await check('no console errors or CSP violations', async () => {
    if (errors.length) throw new Error(errors.join(' | '));
  });
} finally {
  await browser.close();
}
const failed = results.filter((r) => !r).length;
console.log(`${results.length - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
