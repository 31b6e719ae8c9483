"""The HTTP API and metrics (protocol/http-api.md): every `curl` example of the document and of
the README's "HTTP API and metrics" section run as written (on the test's port) and checked
against the example answer shown after it; /api/v1/events against the feed (paging, filters,
the history database and the ring, a 1000-event answer while the feed keeps streaming);
sensors, alerts and the per-day record; hostile requests; and /metrics through the Prometheus
text parser (python3-prometheus-client) and a stricter check of our own. Registered in
suite.TESTS like suite.py's tests."""

import asyncio
import datetime
import http.client
import json
import os
import re
import shlex
import socket
import sqlite3
import subprocess
import time

from prometheus_client.parser import text_string_to_metric_families

import statedb
from feed import (CURRENT_TEST, RECEIVED, Feed, _merge, _undocumented, documented_examples,
                  hello, undocumented_keys)
from procs import TestFailure, check
from suite import test
from suite_alerts import command
from suite_stats import local_date, stored_day

STATE = '{tmpdir}/state'
DOC_PORT = '127.0.0.1:8421'
METRICS_TYPE = 'text/plain; version=0.0.4; charset=utf-8'


# --- requests ---

def request(port, path, method='GET', body=None, headers=None, timeout=10):
    """(status, lower-cased headers, body bytes) of one request on a new connection."""
    conn = http.client.HTTPConnection('127.0.0.1', port, timeout=timeout)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def get_json(port, path, status=200):
    """GET path: its JSON answer, which must come with `status` and as application/json."""
    code, headers, body = request(port, path)
    check(code == status, f'GET {path} -> {code} (expected {status}): {body[:300]!r}')
    check(headers.get('content-type') == 'application/json',
          f'GET {path}: content-type {headers.get("content-type")!r}')
    check(headers.get('cache-control') == 'no-store', f'GET {path}: cache-control {headers}')
    check(int(headers.get('content-length', -1)) == len(body),
          f'GET {path}: content-length {headers.get("content-length")} for {len(body)} bytes')
    try:
        return json.loads(body)
    except ValueError as e:
        raise TestFailure(f'GET {path}: not JSON ({e}): {body[:300]!r}') from None


def get_error(port, path, status, code, method='GET', body=None):
    """A refused request: `status` and {"error":{"code":code,"message":...}}; returns the message."""
    got, headers, data = request(port, path, method, body)
    check(got == status, f'{method} {path} -> {got} (expected {status}): {data[:300]!r}')
    if method == 'HEAD':
        return ''
    check(headers.get('content-type') == 'application/json',
          f'{method} {path}: content-type {headers.get("content-type")!r}')
    try:
        err = json.loads(data)
    except ValueError:
        raise TestFailure(f'{method} {path}: error body is not JSON: {data[:300]!r}') from None
    check(isinstance(err, dict) and list(err) == ['error'] and isinstance(err['error'], dict)
          and err['error'].get('code') == code and isinstance(err['error'].get('message'), str)
          and err['error']['message'] and set(err['error']) == {'code', 'message'},
          f'{method} {path}: error {err} (expected code {code})')
    if status == 405:
        check(headers.get('allow') == 'GET', f'{method} {path}: Allow {headers.get("allow")!r}')
    return err['error']['message']


def all_events(port, query=''):
    """Every event /api/v1/events gives, page by page (limit 1000), and the last answer."""
    since, out = 0, []
    while True:
        r = get_json(port, f'/api/v1/events?since={since}&limit=1000{query}')
        out += r['events']
        check(r['next_since'] >= since, f'next_since went back: {since} -> {r["next_since"]}')
        if r['next_since'] == since or r['next_since'] == r['last_seq']:
            return out, r
        since = r['next_since']


def feed_doc(env):
    return documented_examples(os.path.join(env.repo, 'protocol', 'websocket-feed.md'))


def check_feed_events(env, events, what, record=True):
    """Items are the feed's own event objects: every key as websocket-feed.md documents it.
    With `record`, they also join what the feed tests received (feed.RECEIVED), so the docs
    tests that run last check them too (websocket-feed.md's examples, the JSON Schemas)."""
    check(all(e.get('type') == 'event' for e in events), f'{what}: not all events: {events[:3]}')
    problems = undocumented_keys([('http', e) for e in events], feed_doc(env))
    check(not problems, f'{what}: {len(problems)} problem(s) against websocket-feed.md:\n'
          + '\n'.join(problems))
    if record:
        RECEIVED.extend((CURRENT_TEST[0], e) for e in events)


async def cracks(env, n, first_tag, sensor=None):
    """Send n cracks tagged by duration_ms first_tag.. and wait until the feed has them all;
    returns their events."""
    sensor = sensor or env.sound
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        for i in range(n):
            env.fake.send_crack(sensor, intensity=10 + i % 80, duration_ms=first_tag + i)
        return await f.events(n, kinds=('crack',))


# --- /metrics ---

METRIC_NAME = re.compile(r'[a-zA-Z_:][a-zA-Z0-9_:]*$')
SAMPLE = re.compile(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"(,|$)')


def unescape(value):
    return re.sub(r'\\(.)', lambda m: {'n': '\n'}.get(m.group(1), m.group(1)), value)


def strict_metrics(text):
    """Our own reading of the text format 0.0.4, stricter than the client library: every family
    has one HELP and one TYPE (a known type) before its samples, its samples together and named
    as the family, counters end in _total, label values escaped only as the format allows, no
    series twice, a newline at the end. Returns {(name, ((label, value), ...)): value}."""
    check(text.endswith('\n'), '/metrics does not end with a newline')
    series, families, current = {}, {}, None
    for n, line in enumerate(text.split('\n')[:-1], 1):
        where = f'/metrics line {n}: {line[:160]!r}'
        if line.startswith('# HELP '):
            name = line.split(' ', 3)[2]
            check(METRIC_NAME.match(name) and name not in families, f'{where}: HELP twice or bad')
            check(len(line.split(' ', 3)) == 4 and line.split(' ', 3)[3].strip(),
                  f'{where}: HELP without text')
            families[name] = None
            current = name
        elif line.startswith('# TYPE '):
            parts = line.split(' ')
            check(len(parts) == 4 and parts[2] == current and families[current] is None
                  and parts[3] in ('counter', 'gauge', 'summary', 'histogram', 'untyped'),
                  f'{where}: TYPE must follow its HELP, once, with a known type')
            families[current] = parts[3]
            if parts[3] == 'counter':
                check(current.endswith('_total'), f'{where}: a counter not named *_total')
        else:
            check(not line.startswith('#') and line, f'{where}: a stray comment or empty line')
            m = SAMPLE.match(line)
            check(m, f'{where}: not a sample line')
            name, labels_text, value = m.group(1), m.group(3), m.group(4)
            check(name == current and families.get(current),
                  f'{where}: sample outside its family (HELP/TYPE of {name} first, together)')
            labels = []
            rest = labels_text or ''
            while rest:
                lm = LABEL.match(rest)
                check(lm, f'{where}: bad label syntax or escape at {rest[:60]!r}')
                labels.append((lm.group(1), unescape(lm.group(2))))
                rest = rest[lm.end():]
            check(len({k for k, _ in labels}) == len(labels), f'{where}: a label twice')
            key = (name, tuple(sorted(labels)))
            check(key not in series, f'{where}: the same series twice')
            try:
                series[key] = float(value)
            except ValueError:
                raise TestFailure(f'{where}: value {value!r} is not a number') from None
    return series, families


def scrape(port):
    """GET /metrics: checked by the Prometheus client's parser and by strict_metrics; returns
    ({(name, labels): value}, {family: type})."""
    code, headers, body = request(port, '/metrics')
    check(code == 200, f'GET /metrics -> {code}: {body[:200]!r}')
    check(headers.get('content-type') == METRICS_TYPE,
          f'/metrics content-type {headers.get("content-type")!r}')
    text = body.decode('utf-8')
    parsed = {}
    try:
        for fam in text_string_to_metric_families(text):
            for s in fam.samples:
                parsed[(s.name, tuple(sorted(s.labels.items())))] = s.value
    except Exception as e:  # the parser raises ValueError and friends on bad input
        raise TestFailure(f'/metrics does not parse as Prometheus text: {e!r}') from None
    series, families = strict_metrics(text)
    check(parsed == series, f'the client parser and ours disagree: '
          f'{set(parsed.items()) ^ set(series.items())}')
    return series, families


def metric(series, family, **labels):
    key = (family, tuple(sorted(labels.items())))
    check(key in series, f'/metrics has no {family}{labels}: '
          f'{sorted(k for k in series if k[0] == family)[:20]}')
    return series[key]


# --- the documented examples, run as written ---

def doc_blocks(path, section=None):
    """The fenced code blocks of a markdown file (within `section`, a '## ' heading, if given)
    as (language, text), in order."""
    with open(path, encoding='utf-8') as fh:
        text = fh.read()
    if section:
        start = text.index(section + '\n')
        end = text.find('\n## ', start + len(section))
        text = text[start:end if end > 0 else len(text)]
    return re.findall(r'^```(\w*)[ \t]*\n(.*?)^```', text, re.S | re.M)


def curl_examples(path, section=None):
    """[(curl command line, the example answer block (language, text) after it or None)]."""
    blocks = doc_blocks(path, section)
    out = []
    for i, (lang, text) in enumerate(blocks):
        if lang != 'sh':
            continue
        lines = [ln for ln in text.splitlines() if ln.startswith('curl ')]
        answer = blocks[i + 1] if i + 1 < len(blocks) and blocks[i + 1][0] in ('json', 'text') \
            else None
        for ln in lines:
            out.append((ln, answer if len(lines) == 1 else None))
    return out


def run_curl(line, port):
    """Run one documented command line as written but for the port (no shell: the examples
    have no pipes). Returns its standard output."""
    check(DOC_PORT in line, f'example {line!r} does not use {DOC_PORT}')
    argv = shlex.split(line.replace(DOC_PORT, f'127.0.0.1:{port}'))
    check(not any(a in ('|', '>', '<', '&&', ';') for a in argv), f'{line!r} needs a shell')
    done = subprocess.run(argv + ['-w', '\n%{http_code} %{content_type}'], capture_output=True,
                          timeout=20, check=False)
    check(done.returncode == 0, f'{line!r} exited {done.returncode}: {done.stderr[:300]!r}')
    out = done.stdout.decode('utf-8')
    body, _, status = out.rpartition('\n')
    code, _, ctype = status.partition(' ')
    check(code == '200', f'{line!r} -> HTTP {code}: {body[:300]!r}')
    return body, ctype


def check_against_example(line, got, example):
    """The live answer has every member of the documented one and nothing undocumented, each of
    the same JSON type, recursively (as the feed's docs test does). Event items are the feed's
    (checked against websocket-feed.md by check_feed_events), not compared here."""
    def without_events(o):
        return {k: ([] if k in ('events', 'recent') else v) for k, v in o.items()}
    problems = _undocumented(without_events(got), _merge([without_events(example)]), 'answer')
    missing = [k for k in example if k not in got]
    check(not problems and not missing, f'{line}: the answer does not match the example after '
          f'it: {problems} missing {missing}\nanswer: {json.dumps(got)[:600]}')


def nested_items(value):
    """Every object inside value (to find empty lists the example fills)."""
    if isinstance(value, dict):
        yield value
        for v in value.values():
            yield from nested_items(v)
    elif isinstance(value, list):
        for v in value:
            yield from nested_items(v)


def docs_settings(env):
    """A sensor-lost alert one second after the micro:bit drops (for /alerts' example), and
    stored days in the document's example range (for /stats')."""
    with open(os.path.join(env.tmpdir, 'docs.conf'), 'w') as fh:
        fh.write('[alerts]\nsensor_lost_s = 1\ncooldown_min = 0\n'
                 '[sensors]\nbackoff_min_ms = 60000\nbackoff_max_ms = 60000\n')
    day = stored_day('2025-11-24', 1, 60000)
    statedb.write_days(os.path.join(env.tmpdir, 'state'), {'v': 1, 'sensors': [
        {'sensor': env.sound.address, 'days': [day, dict(day, date='2025-11-25')]}]})


@test('http-docs-curl-examples', prepare=docs_settings, deadline=90,
      daemon_args=('--config', '{tmpdir}/docs.conf', '--state-dir', STATE))
async def t_docs_examples(env):
    doc = os.path.join(env.repo, 'protocol', 'http-api.md')
    readme = os.path.join(env.repo, 'README.md')
    examples = curl_examples(doc) + curl_examples(readme, '## HTTP API and metrics')
    check(len(curl_examples(readme, '## HTTP API and metrics')) >= 4,
          'the README has no curl examples of the HTTP API')
    paths = {re.search(r'8421(/[a-z0-9/]*)', line).group(1) for line, _ in examples}
    for needed in ('/api/v1/events', '/api/v1/sensors', '/api/v1/alerts', '/api/v1/stats',
                   '/metrics'):
        check(needed in paths, f'no curl example of {needed} in {doc} or the README')
    # the document's error example is an error the API gives
    errors = [json.loads(t) for lang, t in doc_blocks(doc) if lang == 'json' and '"error"' in t]
    check(errors, f'{doc}: no error example')
    msg = get_error(env.port, '/api/v1/events?limit=0', 400, 'bad-parameter')
    check(errors[0] == {'error': {'code': 'bad-parameter', 'message': msg}},
          f'{doc}: the error example {errors[0]} is not what limit=0 gets ({msg!r})')

    # traffic, so that every list of the examples has items: 50 events, an alert, today's cracks
    await env.streaming()
    await cracks(env, 48, 400)
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        env.fake.fail_connects(env.microbit, 5)
        env.fake.drop_link(env.microbit)
        await f.wait_for(lambda m: m.get('kind') == 'alert' and m.get('state') == 'raised', 8,
                         'the sensor-lost alert of the micro:bit')
    await asyncio.sleep(0.3)

    ran = 0
    for line, answer in examples:
        body, ctype = await asyncio.to_thread(run_curl, line, env.port)
        ran += 1
        if '/metrics' in line:
            check(ctype == METRICS_TYPE, f'{line}: content type {ctype!r}')
            got = {fam.name for fam in text_string_to_metric_families(body)}
            if answer:
                check(answer[0] == 'text', f'{line}: the example after it is not a text block')
                shown = {fam.name for fam in text_string_to_metric_families(answer[1])}
                check(shown <= got, f'{line}: documented families not served: {shown - got}')
            continue
        check(ctype == 'application/json', f'{line}: content type {ctype!r}')
        got = json.loads(body)
        check('error' not in got, f'{line}: {got}')
        if answer:
            check(answer[0] == 'json', f'{line}: the example after it is not a json block')
            example = json.loads(answer[1])
            check_against_example(line, got, example)
            # lists the example fills are filled here too (so their items were checked)
            for key in ('events', 'sensors', 'alerts', 'recent', 'days'):
                for ex, live in ((e, g) for e in nested_items(example) for g in nested_items(got)
                                 if key in e and key in g):
                    if ex[key] and isinstance(live[key], list):
                        check(live[key], f'{line}: "{key}" is empty here, so its items went '
                              f'unchecked: {json.dumps(got)[:300]}')
        for key in ('events', 'recent'):
            if isinstance(got.get(key), list):
                check_feed_events(env, got[key], line)
    print(f'[{ran} curl examples run]', end=' ')


# --- events ---

@test('http-events-pages-and-filters', daemon_args=('--state-dir', STATE), deadline=90)
async def t_events(env):
    await env.streaming()
    async with await Feed.open(env.port, '?since=0') as f:
        await f.next(what='hello')
        for i in range(20):
            env.fake.send_crack(env.sound, intensity=20 + i, duration_ms=500 + i)
        await f.wait_for(lambda m: m.get('duration_ms') == 519, 5, 'the 20th crack')
        await f.drain(0.3)
        fed = [m for m in f.messages if m['type'] == 'event']
    last = fed[-1]['seq']

    # at once (still queued for the database) and after the write: the feed's events
    for when in ('queued', 'written'):
        r = get_json(env.port, '/api/v1/events?limit=1000')
        check(r['events'][:len(fed)] == fed and r['last_seq'] >= last
              and r['next_since'] == r['last_seq'] and r['stream'] == (await hello(env.port))['stream'],
              f'{when}: the API\'s events are not the feed\'s: {r["events"][-3:]} vs {fed[-3:]}')
        check(list(r) == ['stream', 'last_seq', 'next_since', 'events'], f'members {list(r)}')
        await asyncio.sleep(1.5)
    check_feed_events(env, r['events'], 'events')
    everything = r['events']

    # default limit 100, pages of 7 add up to the same
    check(get_json(env.port, '/api/v1/events')['events'] == everything[:100], 'default page')
    since, paged = 0, []
    while True:
        p = get_json(env.port, f'/api/v1/events?since={since}&limit=7')
        check(len(p['events']) <= 7, f'limit 7: {len(p["events"])}')
        paged += p['events']
        if len(p['events']) == 7:
            check(p['next_since'] == p['events'][-1]['seq'], f'a full page: next_since {p}')
        if p['next_since'] == p['last_seq']:
            break
        since = p['next_since']
    check(paged == everything, f'pages of 7: {[e["seq"] for e in paged]} vs '
          f'{[e["seq"] for e in everything]}')

    # filters: kind, sensor (either case), both
    crack_events = [e for e in everything if e['kind'] == 'crack']
    got = get_json(env.port, '/api/v1/events?kind=crack&limit=1000')['events']
    check(got == crack_events, f'kind=crack: {len(got)} vs {len(crack_events)}')
    clip = [e for e in everything if e['sensor'] == env.clip.address]
    got = get_json(env.port, f'/api/v1/events?sensor={env.clip.address.lower()}&limit=1000')
    check(got['events'] == clip and clip and got['next_since'] == got['last_seq'],
          f'sensor=clip: {got}')
    got = get_json(env.port, f'/api/v1/events?kind=sensor&sensor={env.sound.address}')['events']
    check(got == [e for e in everything if e['kind'] == 'sensor'
                  and e['sensor'] == env.sound.address] and got, f'kind+sensor: {got}')
    got = get_json(env.port, '/api/v1/events?kind=annotation')
    check(got['events'] == [] and got['next_since'] == got['last_seq'], f'no annotation: {got}')
    # a crack in the middle: since and limit
    mid = crack_events[5]['seq']
    got = get_json(env.port, f'/api/v1/events?since={mid}&limit=2&kind=crack')
    check(got['events'] == crack_events[6:8] and got['next_since'] == crack_events[7]['seq'],
          f'since={mid}&limit=2: {got}')
    # beyond the newest: nothing, next_since is the newest (as the feed treats since)
    for beyond in (r['last_seq'], r['last_seq'] + 5, 18446744073709551615):
        got = get_json(env.port, f'/api/v1/events?since={beyond}')
        check(got['events'] == [] and got['next_since'] == got['last_seq'],
              f'since={beyond}: {got}')

    # across a restart the numbers and the events are the same, from the database
    env.restart_daemon()
    again, _ = all_events(env.port)
    check(again[:len(everything)] == everything, 'the same events after a restart')


@test('http-events-without-history', daemon_args=('--state-dir', '/dev/null/none',
                                                  '--ring-size', '8'))
async def t_ring(env):
    check('history: none kept this run' in env.daemon.stderr_text(), 'runs without history')
    await env.streaming()
    sent = await cracks(env, 12, 600)
    r = get_json(env.port, '/api/v1/events?limit=1000')
    check(r['events'] == sent[-8:] and r['next_since'] == r['last_seq'] == sent[-1]['seq'],
          f'the ring\'s last 8 events: {[e["seq"] for e in r["events"]]} vs '
          f'{[e["seq"] for e in sent]}')
    # older ones are gone: since before the ring's oldest gives what there is
    r2 = get_json(env.port, f'/api/v1/events?since={sent[0]["seq"]}&limit=3')
    check(r2['events'] == sent[-8:-5] and r2['next_since'] == sent[-6]['seq'],
          f'paging the ring: {r2}')
    r3 = get_json(env.port, f'/api/v1/events?since={r2["next_since"]}&limit=1000&'
                  f'sensor={env.sound.address}&kind=crack')
    check(r3['events'] == sent[-5:] and r3['next_since'] == r3['last_seq'], f'rest: {r3}')
    check(get_json(env.port, f'/api/v1/events?sensor={env.clip.address}')['events'] == [],
          'the clip has no event in the ring')
    # a feed client asking for the whole ring gets a gap: counted
    async with await Feed.open(env.port, '?since=0') as f:
        await f.next(what='hello')
        gap = await f.wait_for(lambda m: m['type'] == 'gap', 5, 'a gap')
    series, families = scrape(env.port)
    check(not [f for f in families if f.startswith('spinewatch_history_')],
          f'history families without a history: {families}')
    check(metric(series, 'spinewatch_ring_capacity') == 8
          and metric(series, 'spinewatch_ring_events') == 8
          # 320 bytes an event and two of the largest (1024 + 16 + 8): 4656, not 8 x 1040
          and metric(series, 'spinewatch_ring_bytes') == 8 * 320 + 2 * 1048
          and metric(series, 'spinewatch_ring_last_seq') == sent[-1]['seq']
          and metric(series, 'spinewatch_feed_gaps_total') >= 1
          and metric(series, 'spinewatch_feed_events_skipped_total') >= gap['to'] - gap['from'] + 1,
          'ring and gap metrics')
    # the alerts and stats endpoints work without a database too
    a = get_json(env.port, '/api/v1/alerts?recent=100')
    check(a['alerts'] == [] and a['recent'] == [], f'alerts: {a}')
    s = get_json(env.port, f'/api/v1/stats?sensor={env.sound.address}')
    check([x['sensor'] for x in s['sensors']] == [env.sound.address]
          and s['sensors'][0]['total']['cracks'] >= 12, f'stats from memory: {s}')


BIG = 1200
NOTE = ('stood up after a long call, "careful" \\ then é—' * 10)[:200]


def big_history(env):
    """BIG kept annotation events with long notes (a 1000-event answer is about 450 KB)."""
    state = os.path.join(env.tmpdir, 'state')
    os.makedirs(state, exist_ok=True)
    db = sqlite3.connect(statedb.path(state))
    db.executescript(statedb.SCHEMA + 'CREATE TABLE IF NOT EXISTS events(seq INTEGER PRIMARY KEY,'
                     ' ts INTEGER NOT NULL, kind TEXT NOT NULL, sensor TEXT, json TEXT NOT NULL);')
    ts = int(time.time() * 1000) - 3600 * 1000
    rows = []
    for seq in range(1, BIG + 1):
        note = (NOTE + f' #{seq:05d} ' + 'x' * 280)
        while len(note.encode()) > 280:
            note = note[:-1]
        ev = {'type': 'event', 'seq': seq, 'ts': ts + seq, 'sensor': env.sound.address,
              'kind': 'annotation', 'event': seq - 1, 'of': 'crack', 'pain': seq % 11,
              'stiffness': None, 'note': note}
        rows.append((seq, ts + seq, 'annotation', env.sound.address,
                     json.dumps(ev, separators=(',', ':'), ensure_ascii=False)))
    with db:
        db.executemany('INSERT INTO events(seq, ts, kind, sensor, json) VALUES(?, ?, ?, ?, ?)',
                       rows)
    db.close()
    env.big = [json.loads(r[4]) for r in rows]


def read_all(sock, timeout=10):
    sock.settimeout(timeout)
    data = b''
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


@test('http-large-answers-keep-the-feed-going', prepare=big_history, deadline=90,
      daemon_args=('--state-dir', STATE))
async def t_large(env):
    big = env.big
    code, headers, body = await asyncio.to_thread(request, env.port, '/api/v1/events?limit=1000')
    check(code == 200 and int(headers['content-length']) == len(body) > 400000,
          f'a 1000-event answer: {code}, {len(body)} bytes, {headers.get("content-length")}')
    r = json.loads(body)
    check(r['events'] == big[:1000] and r['next_since'] == 1000, 'the 1000 kept events as stored')
    check_feed_events(env, r['events'][:5], 'kept annotations', record=False)   # made here
    r = get_json(env.port, '/api/v1/events?since=1000&limit=1000')
    check(r['events'][:BIG - 1000] == big[1000:], 'the next page')
    get_error(env.port, '/api/v1/events?limit=1001', 400, 'bad-parameter')

    await env.streaming()
    # a client that asks for a big answer and does not read it, 8 others reading big answers,
    # and meanwhile the feed delivers a crack at once and small answers come quickly
    stalled = socket.create_connection(('127.0.0.1', env.port))
    stalled.sendall(b'GET /api/v1/events?limit=1000 HTTP/1.1\r\nHost: localhost\r\n'
                    b'Connection: close\r\n\r\n')
    readers = [asyncio.to_thread(request, env.port, f'/api/v1/events?since={i}&limit=1000')
               for i in range(8)]
    task = asyncio.gather(*readers)
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        start = time.monotonic()
        env.fake.send_crack(env.sound, intensity=77, duration_ms=4321)
        await f.wait_for(lambda m: m.get('duration_ms') == 4321, 3, 'the crack during big answers')
        took = time.monotonic() - start
        t0 = time.monotonic()
        get_json(env.port, '/api/v1/sensors')
        small = time.monotonic() - t0
    results = await task
    check(all(c == 200 and json.loads(b)['events'][0]['seq'] == i + 1
              for i, (c, _, b) in enumerate(results)), 'the 8 big answers')
    check(took < 1.0 and small < 1.0, f'the feed took {took:.2f} s, a small answer {small:.2f} s '
          'while big answers were being sent')
    data = await asyncio.to_thread(read_all, stalled)
    stalled.close()
    head, _, rest = data.partition(b'\r\n\r\n')
    check(head.startswith(b'HTTP/1.1 200') and json.loads(rest)['events'] == big[:1000],
          f'the stalled client gets its whole answer in the end: {head[:200]!r}')
    # keep-alive: several answers on one connection
    conn = http.client.HTTPConnection('127.0.0.1', env.port, timeout=10)
    try:
        for path in ('/api/v1/sensors', '/api/v1/events?limit=1000', '/metrics',
                     '/api/v1/nope', '/api/v1/alerts'):
            conn.request('GET', path)
            resp = conn.getresponse()
            data = resp.read()
            check(resp.status in (200, 404) and int(resp.getheader('content-length')) == len(data),
                  f'keep-alive {path}: {resp.status}')
    finally:
        conn.close()


# --- sensors and alerts ---

def alert_settings(env):
    with open(os.path.join(env.tmpdir, 'alerts.conf'), 'w') as fh:
        fh.write('[alerts]\nsensor_lost_s = 1\ncooldown_min = 0\n'
                 '[sensors]\nbackoff_min_ms = 1500\nbackoff_max_ms = 1500\n')


@test('http-sensors-and-alerts', prepare=alert_settings, deadline=90,
      daemon_args=('--config', '{tmpdir}/alerts.conf', '--state-dir', STATE))
async def t_sensors_alerts(env):
    await env.streaming()
    h = await hello(env.port)
    s = get_json(env.port, '/api/v1/sensors')
    check(list(s) == ['ts', 'sensors'] and abs(s['ts'] - time.time() * 1000) < 5000, f'{s}')
    volatile = ('received', 'lost', 'rejected', 'reason', 'rssi', 'battery')

    def stable(lst):
        return [{k: v for k, v in x.items() if k not in volatile} for x in lst]
    check(stable(s['sensors']) == stable(h['sensors']) and
          [list(x) for x in s['sensors']] == [list(x) for x in h['sensors']],
          f'/sensors is hello.sensors: {s["sensors"]} vs {h["sensors"]}')
    a = get_json(env.port, '/api/v1/alerts')
    check(a['alerts'] == [] and a['recent'] == [] and list(a) == ['ts', 'alerts', 'recent'], f'{a}')

    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        env.fake.fail_connects(env.sound, 1)
        env.fake.drop_link(env.sound)
        raised = await f.wait_for(lambda m: m.get('kind') == 'alert', 6, 'a sensor-lost alert')
        await asyncio.sleep(0.2)
        a = get_json(env.port, '/api/v1/alerts')
        check(a['alerts'] == (await hello(env.port))['alerts'] and len(a['alerts']) == 1
              and a['alerts'][0]['id'] == raised['id'] and a['recent'] == [raised],
              f'/alerts with one raised: {a}')
        r = await command(f, {'type': 'ack', 'alert': raised['id'], 'id': 'a'})
        check(r['ok'], f'ack {r}')
        acked = await f.wait_for(lambda m: m.get('kind') == 'alert'
                                 and m.get('state') == 'acknowledged', 5, 'acknowledged')
        cleared = await f.wait_for(lambda m: m.get('kind') == 'alert'
                                   and m.get('state') == 'cleared', 10, 'cleared')
    a = get_json(env.port, '/api/v1/alerts')
    check(a['alerts'] == [] and a['recent'] == [cleared, acked, raised], f'newest first: {a}')
    check(get_json(env.port, '/api/v1/alerts?recent=1')['recent'] == [cleared], 'recent=1')
    check(get_json(env.port, '/api/v1/alerts?recent=0')['recent'] == [], 'recent=0')
    check_feed_events(env, a['recent'], 'recent alerts')
    series, _ = scrape(env.port)
    check(metric(series, 'spinewatch_alerts_raised_total', rule='sensor-lost') == 1
          and metric(series, 'spinewatch_alerts_raised_total', rule='slouch-long') == 0
          and metric(series, 'spinewatch_alerts_active', state='raised') == 0
          and metric(series, 'spinewatch_events_total', kind='alert', sensor=env.sound.address)
          == 3, 'alert metrics')


# --- stats ---

OLD = 100  # days ago: only in the database (memory holds 56 days)


def stats_history(env):
    statedb.write_days(os.path.join(env.tmpdir, 'state'), {'v': 1, 'sensors': [
        {'sensor': 'AA:00:00:00:00:09', 'days': [stored_day(local_date(3), 1)]},
        {'sensor': env.sound.address, 'days': [
            stored_day(local_date(OLD), 1, 60000), stored_day(local_date(3), 2, 30000),
            stored_day(local_date(2), 3)]},
    ]})


def day_totals(d):
    return {'cracks': d['pop'] + d['click'] + d['grind'], 'pop': d['pop'], 'click': d['click'],
            'grind': d['grind'], 'pops': d['pops'],
            'slouch_min': round(d['slouch_ms'] / 60000, 1),
            'sitting_min': round(d['sitting_ms'] / 60000, 1), 'breaks': d['breaks']}


@test('http-stats-days-and-hours', prepare=stats_history, deadline=60,
      daemon_args=('--state-dir', STATE))
async def t_stats(env):
    sound = env.sound.address
    await env.streaming()
    live = await cracks(env, 3, 700)   # today's, in memory only (saved within a minute)
    hour = datetime.datetime.fromtimestamp(live[-1]['ts'] / 1000).hour
    today = local_date(0)
    h = await hello(env.port)
    today_cracks = [x for x in h['stats']['sensors'] if x['sensor'] == sound][0]['today']['cracks']

    r = get_json(env.port, '/api/v1/stats')
    check(r['from'] == local_date(6) and r['to'] == today and r['bucket'] == 'day'
          and list(r) == ['ts', 'from', 'to', 'bucket', 'sensors'], f'defaults: {r}')
    names = [x['sensor'] for x in r['sensors']]
    check(names == sorted(names) and 'AA:00:00:00:00:09' in names and sound in names,
          f'sensors by address: {names}')
    s = [x for x in r['sensors'] if x['sensor'] == sound][0]
    check([d['date'] for d in s['days']] == [local_date(3), local_date(2), today]
          and s['days_with_data'] == 3, f'days oldest first: {s}')
    d3 = stored_day(local_date(3), 2, 30000)
    check(s['days'][0] == dict(date=local_date(3), **day_totals(d3)), f'a stored day: {s["days"][0]}')
    check(s['days'][2]['cracks'] == today_cracks >= 3, f'today counts at once: {s["days"][2]} '
          f'vs hello {today_cracks}')
    total = {k: sum(d[k] for d in s['days']) for k in s['total']}
    check(all(abs(total[k] - s['total'][k]) < 0.11 for k in total) and list(s) ==
          ['sensor', 'days_with_data', 'total', 'days'], f'total {s["total"]} vs {total}')

    # the old day comes from the database only
    r = get_json(env.port, f'/api/v1/stats?from={local_date(OLD)}&to={local_date(OLD)}')
    check(r['sensors'] == [{'sensor': sound, 'days_with_data': 1,
                            'total': day_totals(stored_day('x', 1, 60000)),
                            'days': [dict(date=local_date(OLD),
                                          **day_totals(stored_day('x', 1, 60000)))]}],
          f'a day kept only in the database: {r}')
    # hours, summed over the range, one sensor (either case)
    r = get_json(env.port, f'/api/v1/stats?from={local_date(OLD + 10)}&bucket=hour&'
                 f'sensor={sound.lower()}')
    s = r['sensors'][0]
    want = [1 + 2 + 3 + (today_cracks if h_ == hour else 0) for h_ in range(24)]
    check(len(r['sensors']) == 1 and s['hours']['cracks'] == want and s['days_with_data'] == 4
          and s['hours']['slouch_min'] == [1.5] * 24 and list(s) ==
          ['sensor', 'days_with_data', 'total', 'hours'] and r['bucket'] == 'hour',
          f'hour buckets {s} (want cracks {want})')
    check(get_json(env.port, '/api/v1/stats?sensor=C0:FF:EE:00:00:77')['sensors'] == [],
          'an unknown sensor')
    # bounds
    far = (datetime.date.today() - datetime.timedelta(days=730)).isoformat()
    check(get_json(env.port, f'/api/v1/stats?from={far}')['from'] == far, '731 days')
    farther = (datetime.date.today() - datetime.timedelta(days=731)).isoformat()
    get_error(env.port, f'/api/v1/stats?from={farther}', 400, 'bad-parameter')
    get_error(env.port, f'/api/v1/stats?from={today}&to={local_date(1)}', 400, 'bad-parameter')


# --- hostile requests ---

BAD = [
    ('/api/v1/events?since=abc', 400, 'bad-parameter'),
    ('/api/v1/events?since=-1', 400, 'bad-parameter'),
    ('/api/v1/events?since=+1', 400, 'bad-parameter'),
    ('/api/v1/events?since=%2B1', 400, 'bad-parameter'),
    ('/api/v1/events?since=1.0', 400, 'bad-parameter'),
    ('/api/v1/events?since=0x10', 400, 'bad-parameter'),
    ('/api/v1/events?since=%201', 400, 'bad-parameter'),
    ('/api/v1/events?since=18446744073709551616', 400, 'bad-parameter'),
    ('/api/v1/events?since=99999999999999999999', 400, 'bad-parameter'),
    ('/api/v1/events?since=', 400, 'bad-parameter'),
    ('/api/v1/events?since', 400, 'bad-parameter'),
    ('/api/v1/events?since=1&since=2', 400, 'bad-parameter'),
    ('/api/v1/events?limit=0', 400, 'bad-parameter'),
    ('/api/v1/events?limit=1001', 400, 'bad-parameter'),
    ('/api/v1/events?limit=1e3', 400, 'bad-parameter'),
    ('/api/v1/events?kind=pop', 400, 'bad-parameter'),
    ('/api/v1/events?kind=CRACK', 400, 'bad-parameter'),
    ('/api/v1/events?kind=crack%27%20OR%201=1--', 400, 'bad-parameter'),
    ('/api/v1/events?sensor=C0:FF:EE:00:00', 400, 'bad-parameter'),
    ('/api/v1/events?sensor=C0:FF:EE:00:00:0G', 400, 'bad-parameter'),
    ("/api/v1/events?sensor=C0:FF:EE:00:00:01'--", 400, 'bad-parameter'),
    ('/api/v1/events?sensor=C0-FF-EE-00-00-01', 400, 'bad-parameter'),
    ('/api/v1/events?foo=1', 400, 'unknown-parameter'),
    ('/api/v1/events?%ff%fe=1', 400, 'unknown-parameter'),
    ('/api/v1/events?a=1&b=2&c=3&d=4&e=5&f=6&g=7&h=8&i=9', 400, 'bad-parameter'),
    ('/api/v1/events?since=' + '1' * 100, 400, 'bad-parameter'),
    ('/api/v1/sensors?x=1', 400, 'unknown-parameter'),
    ('/api/v1/alerts?recent=101', 400, 'bad-parameter'),
    ('/api/v1/alerts?recent=-1', 400, 'bad-parameter'),
    ('/api/v1/stats?from=2025-02-30', 400, 'bad-parameter'),
    ('/api/v1/stats?from=2025-2-3', 400, 'bad-parameter'),
    ('/api/v1/stats?to=2025-13-01', 400, 'bad-parameter'),
    ('/api/v1/stats?to=1969-12-31', 400, 'bad-parameter'),
    ('/api/v1/stats?to=2100-01-01', 400, 'bad-parameter'),
    ('/api/v1/stats?from=2020-01-01&to=2025-01-01', 400, 'bad-parameter'),
    ('/api/v1/stats?bucket=week', 400, 'bad-parameter'),
    ('/api/v1/stats?bucket=Day', 400, 'bad-parameter'),
    ('/metrics?x=1', 400, 'unknown-parameter'),
    ('/api/v1', 404, 'not-found'),
    ('/api/v1/', 404, 'not-found'),
    ('/api/v1/events/', 404, 'not-found'),
    ('/api/v1/Events', 404, 'not-found'),
    ('/api/v1/events/1', 404, 'not-found'),
    ('/api/v1/' + 'x' * 300, 404, 'not-found'),
    ('/metrics/x', 404, 'not-found'),
]


@test('http-hostile-requests', daemon_args=('--state-dir', STATE), deadline=60)
async def t_hostile(env):
    await env.streaming()
    await cracks(env, 3, 800)
    for path, status, code in BAD:
        get_error(env.port, path, status, code)
    # allowed forms: empty fragments, a trailing &, lower-case addresses
    get_json(env.port, '/api/v1/events?&limit=5&')
    get_json(env.port, f'/api/v1/events?sensor={env.sound.address.lower()}&kind=crack')
    get_json(env.port, '/api/v1/stats?from=2024-02-29&to=2024-03-01')
    # methods: only GET
    for method, body in (('POST', b'x=1'), ('PUT', b'{}'), ('DELETE', None), ('PATCH', b'{}'),
                         ('OPTIONS', None)):
        for path in ('/api/v1/events', '/metrics'):
            get_error(env.port, path, 405, 'method-not-allowed', method, body)
    code, headers, body = request(env.port, '/api/v1/events', 'HEAD')
    check(code == 405 and body == b'' and headers.get('allow') == 'GET', f'HEAD: {code} {body!r}')
    # a big body with a refused method: no more than the bound is read (the connection may
    # close under the sender), and nothing else happens
    try:
        code = request(env.port, '/api/v1/events', 'POST', b'x' * 200000)[0]
    except (ConnectionError, http.client.HTTPException):
        code = 405
    check(code == 405, f'POST with a 200 KB body: {code}')
    # raw bytes: a NUL in a parameter, an enormous URL, garbage, a request cut short
    for raw in (b'GET /api/v1/events?since=1%00 HTTP/1.1\r\nHost: localhost\r\n\r\n',
                b'GET /api/v1/events?' + b'a=1&' * 4000 + b' HTTP/1.1\r\nHost: localhost\r\n\r\n',
                b'GET /api/v1/events?sensor=\xff\xfe HTTP/1.1\r\nHost: localhost\r\n\r\n',
                b'\x00\x01\x02 garbage\r\n\r\n',
                b'GET /api/v1/events?limit=5 HTTP/1.1\r\nHost: localhost\r\n'):
        with socket.create_connection(('127.0.0.1', env.port), timeout=5) as s:
            try:   # the daemon may answer and close before all of it is sent
                s.sendall(raw)
                s.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            try:
                answer = read_all(s, 5)
            except OSError:   # reset, timed out
                answer = b''
            check(not answer or re.match(rb'HTTP/1\.[01] (4\d\d|200) ', answer),
                  f'{raw[:40]!r} -> {answer[:100]!r}')
    check(env.daemon.alive(), 'the daemon survives hostile requests')
    # and still answers, and the dashboard and the feed are where they were
    get_json(env.port, '/api/v1/events?kind=crack')
    code, headers, _ = request(env.port, '/')
    check(code == 200 and headers.get('content-type', '').startswith('text/html'), f'/ -> {code}')
    await hello(env.port)
    check(request(env.port, '/api/v1x')[0] == 404, '/api/v1x is not the API')


# --- metrics ---

EVIL_NAME = 'Clip "quoted" \\ back\nslash\ttab \u00e9'


def with_evil_sensor(env, fake):
    sensors = env.standard_devices(env, fake)
    env.evil = fake.add_sensor('C0:FF:EE:00:00:07', EVIL_NAME, 'posture-clip')
    return sensors + [env.evil]


@test('metrics-prometheus-format', populate=with_evil_sensor, deadline=60,
      daemon_args=('--state-dir', STATE))
async def t_metrics(env):
    series, families = scrape(env.port)   # before any sensor streams
    for name in ('spinewatch_events_total', 'spinewatch_sensors', 'spinewatch_feed_clients',
                 'spinewatch_ring_events', 'spinewatch_feed_gaps_total',
                 'spinewatch_alerts_raised_total', 'spinewatch_notifications_lost_total',
                 'spinewatch_history_pending', 'spinewatch_history_written_total'):
        check(name in families, f'/metrics has no family {name}')
    await env.streaming()
    sent = await cracks(env, 7, 900)
    async with await Feed.open(env.port) as a, await Feed.open(env.port) as b:
        await a.next(what='hello')
        await b.next(what='hello')
        env.fake.send_crack(env.sound, intensity=9, duration_ms=999, kind='grind')
        await a.wait_for(lambda m: m.get('duration_ms') == 999, 5, 'the grind')
        await asyncio.sleep(1.3)   # written to the database, status counters sent
        series, families = scrape(env.port)
        check(metric(series, 'spinewatch_feed_clients') == 2, 'two feed clients')
    h = await hello(env.port)
    series, families = scrape(env.port)
    check(families['spinewatch_events_total'] == 'counter'
          and families['spinewatch_sensors'] == 'gauge', f'types {families}')
    cracks_fed = [e for e in all_events(env.port, '&kind=crack')[0]
                  if e['sensor'] == env.sound.address]
    check(metric(series, 'spinewatch_events_total', kind='crack', sensor=env.sound.address)
          == len(cracks_fed) >= len(sent) + 1, 'crack events counted')
    all_kinds = {k[1] for k in series if k[0] == 'spinewatch_events_total'}
    check(all(dict(labels)['kind'] in ('crack', 'slouch', 'sensor', 'alert', 'calibration',
                                       'annotation') for labels in all_kinds), f'{all_kinds}')
    sensor_events, _ = all_events(env.port, '&kind=sensor')
    for s in env.sensors:
        check(metric(series, 'spinewatch_events_total', kind='sensor', sensor=s.address)
              == len([e for e in sensor_events if e['sensor'] == s.address]),
              f'sensor events of {s.address}')
    check(metric(series, 'spinewatch_sensors', state='streaming') == 4
          and metric(series, 'spinewatch_sensors', state='waiting') == 0
          and sum(v for k, v in series.items() if k[0] == 'spinewatch_sensors')
          == len(h['sensors']), 'sensors by state')
    for s in h['sensors']:
        got = metric(series, 'spinewatch_notifications_received_total', sensor=s['address'])
        check(got >= s['received'] > 0 or (got == s['received']),
              f'received of {s["address"]}: {got} vs hello {s["received"]}')
        check(metric(series, 'spinewatch_notifications_lost_total', sensor=s['address'])
              == s['lost'] and metric(series, 'spinewatch_notifications_rejected_total',
                                      sensor=s['address']) == s['rejected'], 'lost, rejected')
    # the hostile name comes back exactly, through the escaping
    check(metric(series, 'spinewatch_sensor_info', sensor=env.evil.address,
                 name=EVIL_NAME.replace('\t', '?'), profile='spinewatch') == 1,
          f'the escaped sensor name: {[k for k in series if k[0] == "spinewatch_sensor_info"]}')
    check(metric(series, 'spinewatch_ring_capacity') == 4096
          and metric(series, 'spinewatch_ring_bytes') == 4096 * 320 + 2 * 1048
          and metric(series, 'spinewatch_ring_events') == metric(series, 'spinewatch_ring_last_seq')
          == h['last_seq'], 'ring fill')
    check(metric(series, 'spinewatch_history_written_total') >= h['last_seq'] - 2
          and metric(series, 'spinewatch_history_pending') <= 2
          and metric(series, 'spinewatch_history_write_ok') == 1
          and metric(series, 'spinewatch_feed_clients_accepted_total') >= 3, 'history, feed')
    check(metric(series, 'spinewatch_build_info', version=h['version']) == 1
          and abs(metric(series, 'spinewatch_start_time_seconds') - time.time()) < 120,
          'build info and start time')
    check(metric(series, 'spinewatch_alerts_raised_total', rule='battery-low') == 0, 'alerts')
    # a bad request does not count as anything, and /metrics stays parseable after hostile input
    request(env.port, '/metrics?%22=1')
    scrape(env.port)
