// web/access.js - the dashboard's access token (README "Security"): a
// spinewatch reached from another machine asks for one. Opening the page
// as http://HOST:8421/#token=TOKEN stores it (the #fragment never reaches
// the server or its logs) and takes it out of the address bar; it is kept in
// this browser's localStorage and sent as `token=` on the feed's URL (a
// browser cannot put headers on a WebSocket). When the feed will not open,
// probe() asks the HTTP API why: a missing or refused token, or a host name
// the server does not answer to.

const KEY = 'spinewatch.token';
const TOKEN_RE = /^[A-Za-z0-9._~-]{16,128}$/;

export function validToken(t) {
  return TOKEN_RE.test(t);
}

export function token() {
  try {
    return localStorage.getItem(KEY) || '';
  } catch {
    return '';
  }
}

export function saveToken(t) {
  try {
    if (t) localStorage.setItem(KEY, t);
    else localStorage.removeItem(KEY);
  } catch { /* private mode: this page only */ }
}

// #token=... on the address: keep it, and take it off the address bar
export function takeTokenFromUrl() {
  const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
  if (!m) return;
  const t = decodeURIComponent(m[1]);
  if (validToken(t)) saveToken(t);
  const rest = location.hash.replace(/(^#|&)token=[^&]*/, '$1').replace(/^#&/, '#');
  history.replaceState(null, '', location.pathname + location.search + (rest === '#' ? '' : rest));
}

// Why the feed does not open: {kind: 'ok'|'token'|'bad-token'|'host'|'down', text}
export async function probe() {
  const t = token();
  let r;
  try {
    r = await fetch('api/v1/sensors', {
      headers: t ? { Authorization: `Bearer ${t}` } : {},
      cache: 'no-store',
    });
  } catch {
    return { kind: 'down', text: '' };
  }
  if (r.ok) return { kind: 'ok', text: '' };
  let code = '';
  try {
    const body = await r.json();
    code = (body && (body.code || (body.error && body.error.code))) || '';
  } catch { /* not JSON */ }
  if (r.status === 401) return { kind: code === 'bad-token' ? 'bad-token' : 'token', text: code };
  if (r.status === 421) return { kind: 'host', text: location.hostname };
  return { kind: 'down', text: String(r.status) };
}
