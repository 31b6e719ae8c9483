"""Dashboard files (the dashboard issue): the page, its ES modules and Chart.js from Debian's
libjs-chart.js are served by the daemon with JavaScript MIME types (browsers refuse modules
served otherwise, and the daemon sends X-Content-Type-Options: nosniff), under the strict
Content-Security-Policy, and nothing outside the two directories is reachable. Registered in
suite.TESTS like suite.py's tests."""

import http.client
import os
import re

from procs import check
from suite import test

CHARTJS_DIR = '/usr/share/javascript/chart.js'   # the daemon's default SPINEWATCH_CHARTJS_DIR
JS_TYPES = ('text/javascript', 'application/javascript')
# static imports and re-exports at the start of a line (import { x } from './util.js';) and
# dynamic imports in code (await import('./vendor/chart.js/chart.mjs')), not in comments
IMPORT_RE = re.compile(r'''^[ \t]*(?:import|export)\b[^'"`;]*?from\s*['"]([^'"]+)['"]'''
                       r'''|^[^/*\n]*?\bimport\(\s*['"]([^'"]+)['"]\s*\)''', re.M)


def get(port, path):
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=5)
    try:
        conn.request('GET', path)
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def mime(headers):
    return headers.get('content-type', '').split(';')[0].strip()


def resolve(base, ref):
    """The URL path of module `ref` imported by the module at URL path `base`."""
    if ref.startswith('/'):
        return os.path.normpath(ref)
    return os.path.normpath(os.path.join(os.path.dirname(base), ref))


@test('dashboard-files')
async def t_dashboard_files(env):
    check(os.path.isfile(os.path.join(CHARTJS_DIR, 'chart.mjs')),
          f'{CHARTJS_DIR}/chart.mjs is missing: install libjs-chart.js (make deps)')

    status, headers, body = get(env.port, '/')
    csp = headers.get('content-security-policy', '')
    check(status == 200 and "script-src 'self'" in csp and 'unsafe-inline' not in csp,
          f"GET / -> {status}, CSP {csp!r}")
    html = body.decode()
    check(not re.search(r'<script(?![^>]*\bsrc=)[^>]*>', html) and ' style=' not in html,
          'index.html has an inline script or style attribute (the CSP forbids them)')

    # Walk the module graph from the page's entry scripts: every module the page imports,
    # ours and Chart.js's, is served as JavaScript and is byte for byte the file on disk.
    todo = ['/' + m for m in re.findall(r'<script[^>]*\bsrc="([^"]+)"', html)]
    check(todo, 'index.html loads no script')
    seen = set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        status, headers, body = get(env.port, path)
        check(status == 200 and mime(headers) in JS_TYPES,
              f'GET {path} -> {status} {headers.get("content-type")!r}')
        if path.startswith('/vendor/chart.js/'):
            disk = os.path.join(CHARTJS_DIR, path[len('/vendor/chart.js/'):])
        else:
            disk = os.path.join(env.repo, 'web', path.lstrip('/'))
        with open(disk, 'rb') as fh:
            check(body == fh.read(), f'GET {path} is not {disk}')
        for m in IMPORT_RE.finditer(body.decode()):
            ref = m.group(1) or m.group(2)
            check(not ref.startswith(('http:', 'https:', '//')),
                  f'{path} imports {ref} from another site (no CDN)')
            todo.append(resolve(path, ref))
    print(f'[{len(seen)} modules: {" ".join(sorted(seen))}]', end=' ')
    check('/vendor/chart.js/chart.mjs' in seen and
          '/vendor/chart.js/chunks/helpers.segment.mjs' in seen,
          f'the page does not load Chart.js from /vendor/chart.js/: {sorted(seen)}')

    # the stylesheet too
    for href in re.findall(r'<link[^>]*rel="stylesheet"[^>]*href="([^"]+)"', html):
        status, headers, _ = get(env.port, '/' + href)
        check(status == 200 and mime(headers) == 'text/css', f'GET /{href} -> {status} {mime(headers)}')

    # nothing else: traversal out of either mount, a missing file
    for path in ('/vendor/chart.js/../../../../etc/passwd', '/vendor/chart.js/%2e%2e/%2e%2e/passwd',
                 '/vendor/chart.js/nope.mjs', '/vendor/chart.jsx', '/../../etc/passwd'):
        status, _, body = get(env.port, path)
        check(status >= 400 and b'root:' not in body, f'GET {path} -> {status}')

    # security headers on the page, and on a file
    for path in ('/', '/app.js', '/favicon.svg'):
        status, headers, _ = get(env.port, path)
        check(status == 200 and headers.get('x-content-type-options') == 'nosniff' and
              headers.get('x-frame-options', '').upper() == 'DENY' and
              headers.get('referrer-policy') == 'no-referrer' and
              "frame-ancestors 'none'" in headers.get('content-security-policy', ''),
              f'GET {path}: security headers {headers}')
    status, headers, _ = get(env.port, '/favicon.svg')
    check(mime(headers) == 'image/svg+xml', f'favicon.svg as {headers.get("content-type")!r}')
    # no directory listings, encoded or doubled slashes included
    for path in ('/vendor/chart.js/', '/vendor/chart.js/chunks/', '/vendor/', '//etc/',
                 '/vendor/chart.js/chunks%2f'):
        status, headers, body = get(env.port, path)
        check(status >= 300 and b'helpers.segment' not in body and b'Index of' not in body,
              f'GET {path} -> {status}: {body[:80]!r}')
