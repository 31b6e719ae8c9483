"""Who gets in (README "Security", protocol/http-api.md "Access"): the Host check against DNS
rebinding on files, API and feed; the Origin check on upgrades (foreign, same-origin, behind a
reverse proxy, configured origins); access tokens from a token file (Bearer header and token=
argument; read and control roles; wrong tokens; loopback = none, the setting that makes a
loopback client count as remote, since tests may only listen on loopback); the token file's
mode; reloading tokens; listening beyond loopback without tokens refused; a client sending
commands too fast; a client that stops reading, dropped after the client timeout while a
reader loses nothing; https and wss with a certificate. Registered in suite.TESTS like
suite.py's tests."""

import asyncio
import json
import os
import signal
import socket
import ssl
import subprocess
import textwrap
import time
import http.client

import websockets

from feed import SUBPROTOCOL, Feed
from procs import TestFailure, check
from suite import test
from suite_alerts import command
from suite_cli import cli
from suite_http import request

READ_TOKEN = 'read-token-4f2a9c1e7b3d5a60'
CONTROL_TOKEN = 'control-token-e1d2c3b4a5968778'


def upgrade(port, path='/ws', headers=None, host=None, timeout=5):
    """A raw WebSocket upgrade: (status, lower-cased headers, body) of the answer."""
    lines = [f'GET {path} HTTP/1.1', f'Host: {host or f"127.0.0.1:{port}"}',
             'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Version: 13',
             'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
             f'Sec-WebSocket-Protocol: {SUBPROTOCOL}']
    lines += [f'{k}: {v}' for k, v in (headers or {}).items()]
    with socket.create_connection(('127.0.0.1', port), timeout=timeout) as s:
        s.sendall(('\r\n'.join(lines) + '\r\n\r\n').encode())
        data = b''
        deadline = time.monotonic() + timeout
        while b'\r\n\r\n' not in data and time.monotonic() < deadline:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b'\r\n\r\n')
        check(head.startswith(b'HTTP/1.'), f'upgrade {path}: answer {data[:200]!r}')
        status = int(head.split()[1])
        hdrs = {}
        for line in head.split(b'\r\n')[1:]:
            k, _, v = line.decode('latin-1').partition(':')
            hdrs[k.strip().lower()] = v.strip()
        if status != 101:
            want = int(hdrs.get('content-length', 0))
            while len(body) < want and time.monotonic() < deadline:
                chunk = s.recv(4096)
                if not chunk:
                    break
                body += chunk
        return status, hdrs, body


def refused(answer, status, code, what):
    """answer = (status, headers, body) must be the gate's JSON refusal."""
    got, hdrs, body = answer
    check(got == status, f'{what}: {got} (expected {status}): {body[:200]!r}')
    check(hdrs.get('content-type') == 'application/json', f'{what}: content-type {hdrs}')
    try:
        err = json.loads(body)
    except ValueError:
        raise TestFailure(f'{what}: not JSON: {body[:200]!r}') from None
    check(err.get('type') == 'error' and err.get('code') == code and err.get('message'),
          f'{what}: {err} (expected code {code})')
    if status == 401:
        check(hdrs.get('www-authenticate', '').startswith('Bearer'),
              f'{what}: no WWW-Authenticate: Bearer in {hdrs}')


def get(port, path, headers=None, host=None):
    h = dict(headers or {})
    if host:
        h['Host'] = host
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=10)
    try:
        conn.putrequest('GET', path, skip_host=bool(host))
        for k, v in h.items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def metric(port, name, headers=None):
    _, _, body = request(port, '/metrics', headers=headers)
    for line in body.decode().splitlines():
        if line.startswith(name + ' ') or line.startswith(name + '{'):
            return line
    raise TestFailure(f'/metrics has no {name}')


def metric_value(port, name, headers=None):
    return float(metric(port, name, headers).rsplit(' ', 1)[1])


def token_file(env, text, mode=0o600, name='tokens'):
    path = os.path.join(env.tmpdir, name)
    with open(path, 'w') as fh:
        fh.write(text)
    os.chmod(path, mode)
    return path


# --- Host and Origin ---

def hosts_settings(env):
    with open(os.path.join(env.tmpdir, 'access.conf'), 'w') as fh:
        fh.write('[access]\nhosts = spine.example.org\norigins = https://dash.example.net\n')


@test('access-host-and-origin', prepare=hosts_settings,
      daemon_args=('--config', '{tmpdir}/access.conf'))
async def t_host_origin(env):
    port = env.port
    # DNS rebinding: a name we do not answer to, on files, API, metrics and the feed
    for path in ('/', '/index.html', '/api/v1/sensors', '/metrics'):
        ans = get(port, path, host=f'evil.example:{port}')
        refused(ans, 421, 'unknown-host', f'GET {path} with Host evil.example')
    refused(upgrade(port, host=f'evil.example:{port}'), 421, 'unknown-host',
            'upgrade with Host evil.example')
    # names we answer to: addresses, localhost, this machine, configured ones
    for host in (f'127.0.0.1:{port}', f'localhost:{port}', f'{socket.gethostname()}:{port}',
                 'spine.example.org'):
        code, _, _ = get(port, '/', host=host)
        check(code == 200, f'GET / with Host {host}: {code}')
        code, _, _ = get(port, '/api/v1/sensors', host=host)
        check(code == 200, f'GET /api/v1/sensors with Host {host}: {code}')
    # cross-site WebSocket hijacking: a foreign page may not open the feed
    refused(upgrade(port, headers={'Origin': 'http://evil.example'}), 403, 'foreign-origin',
            'upgrade from a foreign origin')
    refused(upgrade(port, headers={'Origin': 'null'}), 403, 'foreign-origin', 'Origin null')
    refused(upgrade(port, headers={'Origin': f'http://127.0.0.1:{port + 1}'}), 403,
            'foreign-origin', 'same host, another port')
    # the dashboard's own origin, a reverse proxy's public name, a configured origin
    for origin, extra in ((f'http://127.0.0.1:{port}', {}),
                          ('https://spine.example.org', {'X-Forwarded-Host': 'spine.example.org'}),
                          ('https://dash.example.net', {})):
        status, _, _ = upgrade(port, headers={'Origin': origin, **extra})
        check(status == 101, f'upgrade from {origin} {extra}: {status}')
    # HTTP/2 with prior knowledge (h2c) gets no way around the Host check
    p = subprocess.run(['curl', '-s', '--http2-prior-knowledge', '-o', '/dev/null', '-w',
                        '%{http_version} %{http_code}', '-H', f'Host: evil.example:{port}',
                        f'http://127.0.0.1:{port}/api/v1/sensors'],
                       capture_output=True, text=True, timeout=20)
    check(not p.stdout.endswith(' 200'), f'h2c with a foreign Host: {p.stdout!r}')
    # not the feed's path: a 404 answer, not a silent close
    refused(upgrade(port, path='/other'), 404, 'not-found', 'upgrade on /other')
    check(metric_value(port, 'spinewatch_http_refused_total{reason="unknown-host"}') >= 5,
          'unknown-host refusals counted')
    check(metric_value(port, 'spinewatch_http_refused_total{reason="foreign-origin"}') == 3,
          'foreign-origin refusals counted: ' +
          metric(port, 'spinewatch_http_refused_total{reason="foreign-origin"}'))


# --- tokens ---

def token_settings(env):
    token_file(env, f'# test tokens\n{READ_TOKEN} read hall display\n'
                    f'{CONTROL_TOKEN} control physio laptop\n', 0o640)
    with open(os.path.join(env.tmpdir, 'access.conf'), 'w') as fh:
        fh.write(f'[access]\ntoken_file = {env.tmpdir}/tokens\nloopback = none\n')


def bearer(token):
    return {'Authorization': f'Bearer {token}'}


@test('access-tokens-roles', prepare=token_settings, deadline=60,
      daemon_args=('--config', '{tmpdir}/access.conf'))
async def t_tokens(env):
    port = env.port
    # the dashboard's files need no token (the page asks for one)
    code, _, body = get(port, '/')
    check(code == 200 and b'<html' in body.lower(), f'GET / without a token: {code}')
    # the API, metrics and feed do
    for path in ('/api/v1/sensors', '/api/v1/events', '/metrics'):
        refused(get(port, path), 401, 'token-required', f'GET {path} without a token')
        refused(get(port, path, bearer('not-a-token-at-all-xx')), 401, 'bad-token',
                f'GET {path} with a wrong token')
        refused(get(port, path, {'Authorization': f'Basic {READ_TOKEN}'}), 401, 'bad-token',
                f'GET {path} with another scheme')
        refused(get(port, f'{path}?token=wrong-token-0123456789'), 401, 'bad-token',
                f'GET {path}?token=wrong')
        for headers, query in ((bearer(READ_TOKEN), ''), ({}, f'?token={READ_TOKEN}'),
                               (bearer(CONTROL_TOKEN), '')):
            code, hdrs, _ = get(port, path + query, headers)
            check(code == 200, f'GET {path}{query} {headers}: {code}')
    refused(upgrade(port), 401, 'token-required', 'feed upgrade without a token')
    refused(upgrade(port, path='/ws?token=nope-nope-nope-nope'), 401, 'bad-token',
            'feed upgrade with a wrong token')
    # a reader: the feed, ping, subscribe, stats; no commands that change state
    async with await Feed.open(port, query=f'?token={READ_TOKEN}') as f:
        hello = await f.next(what='hello')
        check(hello['type'] == 'hello', f'hello: {hello}')
        r = await command(f, {'type': 'ping', 'id': 1})
        check(r['ok'], f'ping as a reader: {r}')
        r = await command(f, {'type': 'stats', 'id': 2})
        check(r['ok'], f'stats as a reader: {r}')
        r = await command(f, {'type': 'subscribe', 'id': 3, 'kinds': ['crack']})
        check(r['ok'], f'subscribe as a reader: {r}')
        for i, cmd in enumerate(({'type': 'ack', 'alert': 1},
                                 {'type': 'calibrate', 'sensor': 'C0:FF:EE:00:00:01'},
                                 {'type': 'annotate', 'event': 1, 'pain': 2})):
            r = await command(f, dict(cmd, id=10 + i))
            check(r == {'type': 'reply', 'id': 10 + i, 'ok': False, 'code': 'forbidden',
                        'message': r.get('message')} and r.get('message'),
                  f'{cmd["type"]} as a reader: {r}')
    # control, with the header (scripts): commands run (an unknown sensor, but not forbidden)
    ws = await websockets.connect(f'ws://127.0.0.1:{port}/ws', subprotocols=[SUBPROTOCOL],
                                  extra_headers=bearer(CONTROL_TOKEN), open_timeout=5)
    async with Feed(ws, 'control') as f:
        await f.next(what='hello')
        r = await command(f, {'type': 'calibrate', 'sensor': 'C0:FF:EE:00:00:77', 'id': 1})
        check(r['ok'] is False and r['code'] == 'unknown-sensor', f'calibrate as control: {r}')
    check(metric_value(port, 'spinewatch_feed_commands_forbidden_total',
                       bearer(READ_TOKEN)) == 3, 'forbidden commands counted')
    log = env.daemon.stderr_text()
    check('a client with the token "hall display" (read)' in log and
          'a client with the token "physio laptop" (control)' in log,
          'the log names the tokens clients came in with, by label')
    check(READ_TOKEN not in log and CONTROL_TOKEN not in log, 'a token secret in the log')

    # reload: a new token file replaces the old tokens without a restart
    token_file(env, f'{CONTROL_TOKEN}-rotated control\n', 0o600)
    env.daemon.proc.send_signal(signal.SIGHUP)
    deadline = time.monotonic() + 10
    while get(port, '/api/v1/sensors', bearer(READ_TOKEN))[0] != 401:
        check(time.monotonic() < deadline, 'the old token still works 10 s after the reload')
        await asyncio.sleep(0.1)
    code, _, _ = get(port, '/api/v1/sensors', bearer(CONTROL_TOKEN + '-rotated'))
    check(code == 200, f'the new token after the reload: {code}')
    # a broken file on reload: the tokens in use stay
    token_file(env, 'short\n', 0o600)
    env.daemon.proc.send_signal(signal.SIGHUP)
    await asyncio.sleep(1)
    code, _, _ = get(port, '/api/v1/sensors', bearer(CONTROL_TOKEN + '-rotated'))
    check(code == 200, f'tokens after a reload with a broken file: {code}')
    check(env.daemon.alive(), 'the daemon survives a broken token file on reload')


@test('access-cli-tokens-and-tls', prepare=lambda env: (token_settings(env), tls_settings(env)),
      daemon_args=('--config', '{tmpdir}/access.conf', '--tls-cert', '{tmpdir}/cert.pem',
                   '--tls-key', '{tmpdir}/key.pem'))
async def t_cli(env):
    url = f'wss://127.0.0.1:{env.port}/ws'
    cert = os.path.join(env.tmpdir, 'cert.pem')
    # the token from a file (the daemon's own token file works: its first token), over wss
    r = await cli(env, '--url', url, '--cacert', cert, '--token-file',
                  os.path.join(env.tmpdir, 'tokens'), '--json', 'status')
    check(r.status == 0 and json.loads(r.out)['stream'], f'status with a token file: {r}')
    # or from the environment; a read token may not calibrate
    r = await cli(env, '--url', url, '--cacert', cert, 'calibrate', 'C0:FF:EE:00:00:01',
                  extra_env={'SPINEWATCH_TOKEN': READ_TOKEN})
    check(r.status == 1 and 'forbidden' in r.err, f'calibrate with a read token: {r}')
    r = await cli(env, '--url', url, '--cacert', cert, '--json', 'sensors',
                  extra_env={'SPINEWATCH_TOKEN': CONTROL_TOKEN})
    check(r.status == 0, f'sensors with the control token: {r}')
    # no token, a wrong one, an untrusted certificate: refused, with the URL and the reason
    # named (a refused token says 401 and where a token goes, for status and tail alike)
    for extra, args, why in (
            ({}, ('--cacert', cert), 'refused: it wants a token (401); give a token with '
                                     '--token-file or $SPINEWATCH_TOKEN'),
            ({'SPINEWATCH_TOKEN': 'wrong-token-000000000'}, ('--cacert', cert),
             'refused: the token is not one it knows (401)'),
            ({'SPINEWATCH_TOKEN': CONTROL_TOKEN}, (), 'the TLS handshake failed')):
        for command in (('status',), ('--no-follow', 'tail')):
            r = await cli(env, '--url', url, *args, *command, extra_env=extra, timeout=30)
            check(r.status == 3 and url in r.err and why in r.err,
                  f'{command} {args} {extra}: {r}; expected status 3 and "{why}"')
    # tail follows over wss with a token
    r = await cli(env, '--url', url, '--cacert', cert, '--no-follow', '--since', '0', 'tail',
                  extra_env={'SPINEWATCH_TOKEN': READ_TOKEN})
    check(r.status == 0, f'tail --no-follow over wss: {r}')


@test('access-refused-settings')
async def t_refused_settings(env):
    """Settings that would expose the daemon are refused before it listens, with the reason."""
    def run(*args):
        p = subprocess.run([env.binary, '--config', '/dev/null', *args], capture_output=True,
                           text=True, timeout=10)
        return p.returncode, p.stderr

    rc, err = run('--check-config', '--listen', '0.0.0.0:8421')
    check(rc == 1 and 'listening beyond loopback needs access tokens' in err,
          f'0.0.0.0 without tokens: {rc} {err!r}')
    rc, err = run('--check-config', '--listen', '[::]:8421')
    check(rc == 1 and 'needs access tokens' in err, f'[::] without tokens: {rc} {err!r}')
    # the daemon itself refuses too, before it listens (on loopback here, with loopback = none)
    conf = os.path.join(env.tmpdir, 'none.conf')
    with open(conf, 'w') as fh:
        fh.write('[access]\nloopback = none\n')
    p = subprocess.run([env.binary, '--config', conf, '--listen', '127.0.0.1:1',
                        '--state-dir', os.path.join(env.tmpdir, 's2')],
                       capture_output=True, text=True, timeout=10)
    check(p.returncode == 1 and 'loopback = none needs access tokens' in p.stderr,
          f'starting with loopback = none and no tokens: {p.returncode} {p.stderr!r}')
    path = token_file(env, f'{READ_TOKEN}\n', 0o644)
    rc, err = run('--check-config', '--token-file', path)
    check(rc == 1 and 'can be read or written by everyone' in err and 'chmod o-rw' in err,
          f'a world-readable token file: {rc} {err!r}')
    os.chmod(path, 0o640)
    rc, err = run('--check-config', '--listen', '0.0.0.0:8421', '--token-file', path)
    check(rc == 0, f'0.0.0.0 with tokens: {rc} {err!r}')
    rc, err = run('--check-config', '--token-file', os.path.join(env.tmpdir, 'missing'))
    check(rc == 1 and 'cannot open the token file' in err, f'a missing token file: {rc} {err!r}')
    rc, err = run('--check-config', '--tls-cert', path)
    check(rc == 1 and 'tls_certificate and tls_key go together' in err, f'cert alone: {err!r}')
    # the README's settings for opening it to a LAN are valid as written (paths made ours)
    with open(os.path.join(env.repo, 'README.md')) as fh:
        readme = fh.read()
    section = readme[readme.index('\n## Security'):]
    section = section[:section.find('\n## ', 1)]
    ini = section[section.index('```ini\n') + 7:]
    ini = textwrap.dedent(ini[:ini.index('```')])   # it is indented in a list
    check('token_file = /etc/spinewatch/tokens' in ini and 'listen = 0.0.0.0:8421' in ini,
          f'the README\'s Security settings: {ini!r}')
    conf = os.path.join(env.tmpdir, 'readme.conf')
    with open(conf, 'w') as fh:
        fh.write(ini.replace('/etc/spinewatch/tokens', path))
    p = subprocess.run([env.binary, '--config', conf, '--check-config'], capture_output=True,
                       text=True, timeout=10)
    check(p.returncode == 0, f'the README\'s Security settings: {p.returncode} {p.stderr!r}')


# --- bounds: commands per second, a client that stops reading ---

@test('access-command-rate-limit')
async def t_rate(env):
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        n = 100
        for i in range(n):   # all at once, replies read as they come
            await f.ws.send(json.dumps({'type': 'ping', 'id': i}))
        replies = [await f.wait_for(lambda m, i=i: m['type'] == 'reply' and m.get('id') == i, 10,
                                    f'the reply to ping {i}') for i in range(n)]
        ok = sum(1 for r in replies if r['ok'])
        limited = [r for r in replies if not r['ok']]
        check(40 <= ok < n and limited, f'{ok} of {n} pings at once answered, {len(limited)} refused')
        check(all(r['code'] == 'rate-limited' and r['message'] for r in limited),
              f'refusals: {limited[:2]}')
        await asyncio.sleep(1.1)
        r = await command(f, {'type': 'ping', 'id': 'later'})
        check(r['ok'], f'a ping a second later: {r}')
    check(metric_value(env.port, 'spinewatch_feed_commands_rate_limited_total') == len(limited),
          'rate-limited commands counted')


@test('access-stalled-client-dropped', daemon_args=('--client-timeout', '2'), deadline=90)
async def t_stalled(env):
    await env.streaming()
    port = env.port
    # a client that upgrades and then never reads, with a tiny receive window
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
    s.settimeout(5)
    s.connect(('127.0.0.1', port))
    s.sendall((f'GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n'
               'Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n'
               'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n'
               f'Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n').encode())
    try:
        async with await Feed.open(port) as reader:
            await reader.next(what='hello')
            before = metric_value(port, 'spinewatch_feed_clients')
            check(before == 2, f'two clients: {before}')
            n = 2500   # ~500 KB: more than the daemon's send buffer for one client
            events = []
            for b in range(0, n, 100):   # paced, so that the sensor's own socket keeps up
                for i in range(b, b + 100):
                    env.fake.send_crack(env.sound, intensity=50, duration_ms=1000 + i)
                events += await reader.events(100, kinds=('crack',), timeout=30)
            durations = [e['duration_ms'] for e in events]
            check(durations == list(range(1000, 1000 + n)),
                  f'the reader got {len(events)} cracks, in order: {durations[:5]}..')
            deadline = time.monotonic() + 15
            while metric_value(port, 'spinewatch_feed_clients_timed_out_total') < 1:
                check(time.monotonic() < deadline,
                      'the client that reads nothing is still there 15 s after it stalled')
                await asyncio.sleep(0.2)
            check(metric_value(port, 'spinewatch_feed_clients') == 1,
                  'one client left (the reader)')
            # the reader is still served
            env.fake.send_crack(env.sound, intensity=50, duration_ms=5000)
            more = await reader.events(1, kinds=('crack',), timeout=10)
            check(more[0]['duration_ms'] == 5000, f'after the drop: {more}')
        # the dropped one finds its connection closed once it reads what was sent
        closed = False
        end = time.monotonic() + 10
        while time.monotonic() < end:
            try:
                if not s.recv(65536):
                    closed = True
                    break
            except (ConnectionResetError, BrokenPipeError):
                closed = True
                break
            except socket.timeout:
                break
        check(closed, 'the stalled client\'s connection was closed')
    finally:
        s.close()
    check(env.daemon.alive(), 'the daemon is alive')


# --- TLS ---

def tls_settings(env):
    d = env.tmpdir
    subprocess.run(['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt',
                    'ec_paramgen_curve:prime256v1', '-nodes', '-days', '2', '-subj', '/CN=localhost',
                    '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
                    '-keyout', f'{d}/key.pem', '-out', f'{d}/cert.pem'],
                   check=True, capture_output=True, timeout=30)
    os.chmod(f'{d}/key.pem', 0o600)


@test('access-tls', prepare=tls_settings,
      daemon_args=('--tls-cert', '{tmpdir}/cert.pem', '--tls-key', '{tmpdir}/key.pem'))
async def t_tls(env):
    ctx = ssl.create_default_context(cafile=os.path.join(env.tmpdir, 'cert.pem'))
    conn = http.client.HTTPSConnection('127.0.0.1', env.port, timeout=10, context=ctx)
    try:
        conn.request('GET', '/api/v1/sensors')
        resp = conn.getresponse()
        body = resp.read()
        check(resp.status == 200 and b'sensors' in body, f'https /api/v1/sensors: {resp.status}')
        check(conn.sock.version() in ('TLSv1.2', 'TLSv1.3'), f'TLS version {conn.sock.version()}')
    finally:
        conn.close()
    ws = await websockets.connect(f'wss://127.0.0.1:{env.port}/ws', subprotocols=[SUBPROTOCOL],
                                  ssl=ctx, open_timeout=5)
    async with Feed(ws, 'wss') as f:
        hello = await f.next(what='hello')
        check(hello['type'] == 'hello', f'hello over wss: {hello}')
        # a burst, so that the backlog goes out batched: whole frames over TLS, in order
        env.fake.wait_notifying(env.sensors, 15)   # (env.streaming() speaks ws://)
        for i in range(300):
            env.fake.send_crack(env.sound, intensity=40, duration_ms=2000 + i)
        events = await f.events(300, kinds=('crack',), timeout=30)
        got = [e['duration_ms'] for e in events if e['duration_ms'] >= 2000]
        check(got == list(range(2000, 2300)), f'300 cracks over wss: {got[:5]}.. ({len(got)})')
    conn = http.client.HTTPSConnection('127.0.0.1', env.port, timeout=10, context=ctx)
    try:
        conn.request('GET', '/metrics')
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    batches = [float(line.split()[1]) for line in text.splitlines()
               if line.startswith('spinewatch_feed_batches_total ')]
    print(f'[{batches[0]:.0f} batched writes]', end=' ')
    check(batches and batches[0] > 0, 'the burst went out in batched writes')
    # HTTP/2 is not offered (ALPN http/1.1 only), so no request gets around the gate that way:
    # a client asking for h2 gets HTTP/1.1 and the gate's answers
    cert = os.path.join(env.tmpdir, 'cert.pem')
    base = ['curl', '-s', '--http2', '--cacert', cert, '-o', '/dev/null', '-w',
            '%{http_version} %{http_code}']
    for extra, want in (([], '1.1 200'), (['-H', f'Host: evil.example:{env.port}'], '1.1 421'),
                        (['-H', 'Authorization: Bearer wrong-token-0123456789'], '1.1 401')):
        p = subprocess.run(base + extra + [f'https://127.0.0.1:{env.port}/api/v1/sensors'],
                           capture_output=True, text=True, timeout=20)
        check(p.stdout == want, f'curl --http2 {extra}: {p.stdout!r} (expected {want}) {p.stderr}')
    # plain http on the TLS port gets no answer in the clear
    try:
        code = request(env.port, '/api/v1/sensors', timeout=3)[0]
    except (OSError, http.client.HTTPException):
        code = None
    check(code is None or code >= 400, f'plain http on the TLS port: {code}')
    check(env.daemon.alive(), 'the daemon is alive')
