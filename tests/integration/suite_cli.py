"""Command-line client tests (build/spinewatch, next to the daemon under test, so the ASan run
uses build/asan/spinewatch): ack, calibrate and stats against the daemon, its exit statuses
(0 done, 1 refused, 2 usage, 3 unreachable or misbehaving), help and usage errors, a daemon
that is down or silent. The client runs as a subprocess (asyncio, so the test's feed client and
fake sensors keep going) under a deadline, and its stderr is checked for sanitizer reports.
Registered in suite.TESTS like suite.py's tests."""

import asyncio
import datetime
import json
import math
import os
import re
import socket
import time
from collections import namedtuple

import statedb
from feed import Feed
from procs import SANITIZER_REPORT, TestFailure, check, free_port
from suite import READY, sensor_event, test

STATE = '{tmpdir}/state'
CliResult = namedtuple('CliResult', 'status out err took')


def cli_path(env):
    path = os.path.join(os.path.dirname(env.binary), 'spinewatch')
    check(os.access(path, os.X_OK), f'{path} is missing: build it (make all, or '
          f'make {os.path.relpath(path, env.repo)})')
    return path


def url(env):
    return f'ws://127.0.0.1:{env.port}/ws'


async def cli(env, *args, timeout=30, extra_env=None):
    """Run spinewatch with `args`; returns its exit status, stdout, stderr and run time. Fails
    if it outlives `timeout` or prints a sanitizer report."""
    e = dict(os.environ)
    e.pop('SPINEWATCH_URL', None)
    e.setdefault('ASAN_OPTIONS', 'detect_leaks=1')
    e.setdefault('UBSAN_OPTIONS', 'print_stacktrace=1:halt_on_error=1')
    e.update(extra_env or {})
    start = time.monotonic()
    proc = await asyncio.create_subprocess_exec(
        cli_path(env), *args, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=e)
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except asyncio.TimeoutError:
        raise TestFailure(f'spinewatch {" ".join(args)} still running after {timeout} s') \
            from None
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    took = time.monotonic() - start
    out, err = out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')
    check(not SANITIZER_REPORT.search(err),
          f'sanitizer report from spinewatch {" ".join(args)}:\n{err[:3000]}')
    return CliResult(proc.returncode, out, err, took)


def expect(r, status, what):
    check(r.status == status, f'{what}: exit status {r.status}, expected {status}; '
          f'stdout {r.out!r}, stderr {r.err!r}')


def tilted(deg):
    r = math.radians(deg)
    return 0, round(1000 * math.sin(r)), round(1000 * math.cos(r))


async def keep_sending(env, sensor, angles, period=0.1):
    """Gravity samples cycling through `angles` (degrees forward) until cancelled."""
    i = 0
    while True:
        env.fake.send_gravity(sensor, *tilted(angles[i % len(angles)]))
        i += 1
        await asyncio.sleep(period)


async def while_sending(env, sensor, angles, coro):
    task = asyncio.ensure_future(keep_sending(env, sensor, angles))
    try:
        return await coro
    finally:
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            pass


@test('cli-help-and-usage-errors')
async def t_cli_usage(env):
    r = await cli(env, '--help')
    expect(r, 0, '--help')
    for word in ('ack ID', 'calibrate ADDR', 'stats', '--url', '--json', '--timeout',
                 'SPINEWATCH_URL', 'Exit status', 'unreachable'):
        check(word in r.out, f'--help does not mention {word!r}: {r.out}')
    for args in (('help', 'ack'), ('ack', '--help'), ('--help', 'ack')):
        r = await cli(env, *args)
        expect(r, 0, ' '.join(args))
        check(r.out.startswith('Usage: spinewatch [OPTION]... ack ID'), f'{args}: {r.out}')
    r = await cli(env, 'stats', '-h')
    expect(r, 0, 'stats -h')
    check('--sensor ADDR' in r.out, f'stats help: {r.out}')
    r = await cli(env, '--version')
    expect(r, 0, '--version')
    check(re.fullmatch(r'spinewatch \d+\.\d+\.\d+\n', r.out), f'--version: {r.out!r}')
    u = url(env)
    for args, says in (
            ((), 'no command'),
            (('frobnicate',), "unknown command 'frobnicate'"),
            (('help', 'frobnicate'), "unknown command 'frobnicate'"),
            (('ack',), 'ack takes one argument'),
            (('ack', '1', '2'), 'ack takes one argument'),
            (('ack', 'four'), 'positive integer'),
            (('ack', '0'), 'positive integer'),
            (('calibrate',), 'calibrate takes one argument'),
            (('calibrate', 'C0:FF:EE:00:00'), 'not a sensor address'),
            (('stats', 'today'), 'stats takes no arguments'),
            (('stats', '--sensor', 'nope'), 'not a sensor address'),
            (('ack', '3', '--sensor', 'C0:FF:EE:00:00:01'), '--sensor is for stats only'),
            (('--bogus', 'stats'), "unknown option '--bogus'"),
            (('stats', '--url'), "'--url' needs a value"),
            (('--timeout', '0', 'stats'), '--timeout'),
            (('--timeout', 'soon', 'stats'), '--timeout'),
            (('--url', 'wss://127.0.0.1:8421/ws', 'stats'), 'wss:// is not supported'),
            (('--url', 'http://127.0.0.1:8421/ws', 'stats'), 'must start with ws://'),
            (('--url', 'ws://127.0.0.1:99999/ws', 'stats'), 'port'),
            (('--url', 'ws:///ws', 'stats'), 'no host'),
    ):
        r = await cli(env, '--url', u, *args) if '--url' not in args else await cli(env, *args)
        expect(r, 2, f'spinewatch {" ".join(args)}')
        check(r.out == '' and r.err.startswith('spinewatch: ') and says in r.err
              and 'Try \'spinewatch ' in r.err,
              f'spinewatch {" ".join(args)}: stderr {r.err!r} should say {says!r}')
    r = await cli(env, 'stats', extra_env={'SPINEWATCH_URL': 'http://x'})
    expect(r, 2, 'a bad $SPINEWATCH_URL')
    check('SPINEWATCH_URL' in r.err, f'a bad $SPINEWATCH_URL: {r.err!r}')


@test('cli-daemon-down-or-silent')
async def t_cli_down(env):
    # nothing listens on that port: connection refused, at once
    closed = f'ws://127.0.0.1:{free_port()}/ws'
    for args in (('--url', closed, 'stats'), ('--url', closed, 'ack', '1'),
                 ('--url', closed, 'calibrate', 'C0:FF:EE:00:00:01')):
        r = await cli(env, *args, timeout=20)
        expect(r, 3, f'spinewatch {" ".join(args)} with the daemon down')
        check(r.out == '' and closed in r.err and 'cannot connect' in r.err,
              f'the message should name {closed}: {r.err!r}')
        check(r.took < 10, f'took {r.took:.1f} s with the daemon down')
    # the URL from the environment, named in the message too; --url wins over it
    r = await cli(env, 'stats', extra_env={'SPINEWATCH_URL': closed})
    expect(r, 3, '$SPINEWATCH_URL of a closed port')
    check(closed in r.err, f'the message should name {closed}: {r.err!r}')
    r = await cli(env, '--url', url(env), 'stats', '--json', extra_env={'SPINEWATCH_URL': closed})
    expect(r, 0, '--url over $SPINEWATCH_URL')
    # something listens but never answers: the timeout, with the URL named
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        s.listen(8)
        silent = f'ws://127.0.0.1:{s.getsockname()[1]}/ws'
        for timeout in ('1', '0.5'):
            r = await cli(env, '--url', silent, '--timeout', timeout, 'ack', '4', timeout=20)
            expect(r, 3, 'a server that never answers')
            check(silent in r.err and f'within {timeout} s' in r.err,
                  f'the timeout message should name {silent}: {r.err!r}')
            check(float(timeout) - 0.05 <= r.took < float(timeout) + 4,
                  f'--timeout {timeout} took {r.took:.2f} s')
    # not the feed's path: the daemon refuses the upgrade
    r = await cli(env, '--url', f'ws://127.0.0.1:{env.port}/nothere', 'stats', timeout=20)
    expect(r, 3, 'a path that is not the feed')
    check(f'ws://127.0.0.1:{env.port}/nothere did not accept a WebSocket connection' in r.err,
          f'message {r.err!r}')


def alert_settings(env):
    with open(os.path.join(env.tmpdir, 'alerts.conf'), 'w') as fh:
        fh.write('[alerts]\nsensor_lost_s = 1\ncooldown_min = 0\n'
                 '[sensors]\nbackoff_min_ms = 1500\nbackoff_max_ms = 1500\n')
    env.fake.fail_connects(env.sound, 0)


@test('cli-ack', prepare=alert_settings, daemon_args=('--config', '{tmpdir}/alerts.conf'))
async def t_cli_ack(env):
    fake, sound = env.fake, env.sound
    await env.streaming()
    r = await cli(env, '--url', url(env), 'ack', '999')
    expect(r, 1, 'ack of an unknown alert')
    check(r.out == '' and r.err == 'spinewatch: unknown-alert: no alert with that id\n',
          f'ack of an unknown alert: stderr {r.err!r}')
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        # out of reach: the link drops and the first reconnect fails; 1 s later, an alert
        fake.fail_connects(sound, 1)
        fake.drop_link(sound)
        raised = await f.wait_for(lambda m: m['type'] == 'event' and m.get('kind') == 'alert'
                                  and m.get('state') == 'raised', 6, 'a sensor-lost alert')
        aid = str(raised['id'])
        r = await cli(env, '--url', url(env), 'ack', aid)
        expect(r, 0, f'ack {aid}')
        check(r.out == f'Alert {aid} acknowledged.\n' and r.err == '', f'ack: {r}')
        acked = await f.wait_for(lambda m: m['type'] == 'event' and m.get('kind') == 'alert'
                                 and m.get('state') == 'acknowledged', 5,
                                 'the acknowledged event')
        check(acked['id'] == raised['id'], f'acknowledged {acked} for {raised}')
        # a second time: not an error; --json prints the reply as one line
        r = await cli(env, 'ack', '--json', aid, extra_env={'SPINEWATCH_URL': url(env)})
        expect(r, 0, 'a second ack')
        reply = json.loads(r.out)
        check(r.out.count('\n') == 1 and reply.get('type') == 'reply' and reply.get('ok') is True
              and reply.get('result') == 'already-acknowledged', f'ack --json: {r.out!r}')
        # back in reach: cleared; an ack now is refused
        await sensor_event(f, sound.address, READY, 10)
        await f.wait_for(lambda m: m['type'] == 'event' and m.get('kind') == 'alert'
                         and m.get('state') == 'cleared', 5, 'the cleared event')
    r = await cli(env, '--url', url(env), 'ack', aid)
    expect(r, 1, 'ack of a cleared alert')
    check(r.err.startswith('spinewatch: alert-cleared: '), f'ack of a cleared alert: {r.err!r}')


@test('cli-calibrate', deadline=90, daemon_args=('--state-dir', STATE, '--calibration', '0.5'))
async def t_cli_calibrate(env):
    clip, sound = env.clip, env.sound
    await env.streaming()
    u = url(env)
    r = await cli(env, '--url', u, 'calibrate', 'C0:FF:EE:00:00:77')
    expect(r, 1, 'calibrate of an unknown sensor')
    check(r.err == 'spinewatch: unknown-sensor: no sensor with that address\n',
          f'calibrate of an unknown sensor: {r.err!r}')
    r = await cli(env, '--url', u, 'calibrate', sound.address)
    expect(r, 1, 'calibrate of a sound sensor')
    check(r.err.startswith('spinewatch: not-a-posture-sensor: '), f'a sound sensor: {r.err!r}')
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        # sitting still, leaning 30 degrees: that becomes upright (address in lower case)
        r = await while_sending(env, clip, [30], cli(env, '--url', u, 'calibrate',
                                                     clip.address.lower(), timeout=30))
        expect(r, 0, 'calibrate while still')
        check('sit upright and still' in r.out and
              r.out.rstrip().endswith(f'Calibrated: this position is now upright for '
                                      f'{clip.address.lower()}.') and r.err == '',
              f'calibrate: {r}')
        ev = await f.wait_for(lambda m: m['type'] == 'event' and m.get('kind') == 'calibration',
                              5, 'the calibration event')
        check(ev['sensor'] == clip.address and ev['result'] == 'done', f'event {ev}')
    check(statedb.read_calibration(os.path.join(env.tmpdir, 'state'), clip.address),
          'the calibration was not stored')
    # moving all along: refused once the daemon's calibration time (10 s) is up
    r = await while_sending(env, clip, [0, 20], cli(env, '--url', u, '--json', '--timeout',
                                                    '20', 'calibrate', clip.address,
                                                    timeout=40))
    expect(r, 1, 'calibrate while moving')
    ev = json.loads(r.out)
    check(r.out.count('\n') == 1 and ev.get('kind') == 'calibration'
          and ev.get('result') == 'refused' and ev.get('reason') == 'moving'
          and ev.get('sensor') == clip.address, f'calibrate --json while moving: {r.out!r}')
    check('sit upright and still' in r.err and
          f'spinewatch: calibration of {clip.address} refused: moving' in r.err,
          f'calibrate while moving: stderr {r.err!r}')
    # a calibration that outlasts --timeout: the daemon misbehaves as far as we know
    r = await while_sending(env, clip, [0, 20], cli(env, '--url', u, '--timeout', '1.5',
                                                    'calibrate', clip.address))
    expect(r, 3, 'calibrate with a short timeout')
    check(f'no calibration result from {u} within 1.5 s' in r.err, f'stderr {r.err!r}')


def local_date(days_ago):
    return (datetime.date.today() - datetime.timedelta(days=days_ago)).isoformat()


def history(env):
    """Seven earlier days of the sound sensor with 2 cracks in every hour (a usual rate of 2
    per hour), the day before yesterday left out."""
    days = [{'date': local_date(d), 'pop': 48, 'click': 0, 'grind': 0, 'pops': 48,
             'breaks': 3, 'slouch_ms': 24 * 60000, 'sitting_ms': 4 * 3600 * 1000,
             'hour_cracks': [2] * 24, 'hour_slouch_ms': [60000] * 24}
            for d in (8, 7, 6, 5, 4, 3, 1)]
    statedb.write_days(os.path.join(env.tmpdir, 'state'),
                       {'v': 1, 'sensors': [{'sensor': env.sound.address, 'days': days}]})


@test('cli-stats', prepare=history, daemon_args=('--state-dir', STATE))
async def t_cli_stats(env):
    sound = env.sound
    await env.streaming()      # a crack of intensity 1 from the sound sensor: today's
    u = url(env)
    r = await cli(env, '--url', u, 'stats', '--json')
    expect(r, 0, 'stats --json')
    check(r.out.count('\n') == 1, f'stats --json is not one line: {r.out[:300]!r}')
    st = json.loads(r.out)
    check(isinstance(st, dict) and isinstance(st.get('sensors'), list)
          and isinstance(st.get('ts'), int) and 'type' not in st, f'stats --json: {st}')
    s = [x for x in st['sensors'] if x['sensor'] == sound.address]
    check(len(s) == 1, f'the sound sensor in {st}')
    s = s[0]
    check(s['today']['date'] == local_date(0) and s['today']['cracks'] >= 1,
          f'today {s["today"]}')
    check(s['baseline_per_hour'] == [2.0] * 24, f'baseline {s["baseline_per_hour"]}')
    r = await cli(env, '--url', u, 'stats', '--sensor', sound.address.lower(), '--json')
    expect(r, 0, 'stats --sensor --json')
    one = json.loads(r.out)
    check([x['sensor'] for x in one['sensors']] == [sound.address], f'one sensor: {one}')

    r = await cli(env, '--url', u, 'stats')
    expect(r, 0, 'stats')
    text = r.out
    today = datetime.date.today()
    check(f'Today ({today.strftime("%a")} {local_date(0)}): ' in text and sound.address in text,
          f'stats does not mention today: {text}')
    check(re.search(r'Usual cracks \d\d:00-\d\d:00: 2\.0 \(this hour today: \d+\)', text),
          f'the usual cracks for this hour: {text}')
    check('Last 7 days:' in text and 'Week over week (' in text, f'stats: {text}')
    block = text[text.index(sound.address):]
    lines = [ln.strip() for ln in block.splitlines()]
    for d in range(7):
        date = local_date(d)
        line = [ln for ln in lines if ln[4:14] == date]
        check(len(line) == 1, f'{date}: one line in the last 7 days: {block}')
        if d == 2:
            check(line[0].endswith('no data'), f'{date} has no data: {line[0]}')
        elif d > 0:
            check('48 cracks (48 pop, 0 click, 0 grind)' in line[0] and 'slouched   24.0 min'
                  in line[0] and 'sitting  240.0 min' in line[0] and '3 breaks' in line[0],
                  f'{date}: {line[0]}')
    check(local_date(7) not in block.split('Week over week')[0].split('Last 7 days:')[1],
          f'only 7 days: {block}')
    week = block[block.index('Week over week ('):]
    check(re.search(r'Week over week \(6 days with data, 2 the week before\):\n'
                    r'\s+cracks\s+\d+ against 96 \(\+\d+\.\d %\)\n'
                    r'\s+slouched\s+\d+\.\d min against 48\.0 min \(', week),
          f'week over week: {week}')
    r = await cli(env, '--url', u, 'stats', '--sensor', 'AA:BB:CC:DD:EE:99')
    expect(r, 0, 'stats of a sensor never seen')
    check('No record for AA:BB:CC:DD:EE:99 yet.' in r.out, f'stats of an unseen sensor: {r.out}')


@test('cli-annotate', daemon_args=('--state-dir', STATE))
async def t_cli_annotate(env):
    """spinewatch annotate SEQ [--pain N] [--stiffness N] [--note TEXT]: a note on a crack
    reaches every feed client as an annotation event with the values given; a later one
    replaces it; refusals exit 1 with the daemon's code; bad values exit 2 before connecting."""
    sound = env.sound
    await env.streaming()
    u = url(env)
    r = await cli(env, '--help')
    expect(r, 0, '--help')
    check('annotate SEQ [--pain N] [--stiffness N] [--note TEXT]' in r.out,
          f'--help does not list annotate: {r.out}')
    for args in (('help', 'annotate'), ('annotate', '--help')):
        r = await cli(env, *args)
        expect(r, 0, ' '.join(args))
        check(r.out.startswith('Usage: spinewatch [OPTION]... annotate SEQ [--pain N] '
                               '[--stiffness N] [--note TEXT]')
              and all(w in r.out for w in ('--pain N', '--stiffness N', '--note TEXT',
                                           '280 bytes', 'replaces')),
              f'{args}: {r.out}')

    def annotation_of(seq, after=0):
        return lambda m: (m['type'] == 'event' and m.get('kind') == 'annotation'
                          and m.get('event') == seq and m['seq'] > after)

    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        env.fake.send_crack(sound, intensity=50, duration_ms=733)
        crack = await f.wait_for(lambda m: m['type'] == 'event' and m.get('kind') == 'crack'
                                 and m.get('duration_ms') == 733, 5, 'the crack to annotate')
        seq = str(crack['seq'])
        note = 'stood up after a long call \u2014 "ouch"'
        r = await cli(env, '--url', u, 'annotate', seq, '--pain', '3', '--note', note)
        expect(r, 0, f'annotate {seq} --pain 3 --note')
        check(r.out == 'Noted.\n' and r.err == '', f'annotate: {r}')
        ev = await f.wait_for(annotation_of(crack['seq']), 5, 'the annotation event')
        check(ev['of'] == 'crack' and ev['pain'] == 3 and ev['stiffness'] is None
              and ev['note'] == note and ev['sensor'] == sound.address,
              f'annotation event {ev}')
        # options before the command, the URL from the environment, --json: the reply;
        # stiffness alone replaces the earlier note
        r = await cli(env, '--json', '--stiffness', '6', 'annotate', seq,
                      extra_env={'SPINEWATCH_URL': u})
        expect(r, 0, f'annotate --json --stiffness 6 {seq}')
        reply = json.loads(r.out)
        check(r.out.count('\n') == 1 and reply.get('type') == 'reply' and reply.get('ok') is True
              and reply.get('result') == 'ok' and r.err == '', f'annotate --json: {r}')
        ev2 = await f.wait_for(annotation_of(crack['seq'], ev['seq']), 5,
                               'the second annotation event')
        check(ev2['pain'] is None and ev2['stiffness'] == 6 and ev2['note'] is None,
              f'second annotation event {ev2}')
        # all three, the longest note (280 bytes of two-byte characters), the extremes
        long_note = '\u00e9' * 140
        r = await cli(env, '--url', u, 'annotate', seq, '--pain', '0', '--stiffness', '10',
                      '--note', long_note)
        expect(r, 0, 'annotate with a 280-byte note')
        ev3 = await f.wait_for(annotation_of(crack['seq'], ev2['seq']), 5,
                               'the third annotation event')
        check(ev3['pain'] == 0 and ev3['stiffness'] == 10 and ev3['note'] == long_note,
              f'third annotation event {ev3}')
        # an annotation itself cannot be annotated
        r = await cli(env, '--url', u, 'annotate', str(ev['seq']), '--pain', '1')
        expect(r, 1, 'annotate of an annotation')
        check(r.out == '' and r.err.startswith('spinewatch: not-annotatable: '),
              f'annotate of an annotation: {r}')
    r = await cli(env, '--url', u, 'annotate', '999999', '--pain', '1')
    expect(r, 1, 'annotate of an unknown event')
    check(r.out == '' and r.err == 'spinewatch: unknown-event: no event with that seq is kept\n',
          f'annotate of an unknown event: {r}')
    r = await cli(env, '--url', u, '--json', 'annotate', '999999', '--note', 'x')
    expect(r, 1, 'annotate --json of an unknown event')
    check(r.out == '' and r.err.startswith('spinewatch: unknown-event: '), f'--json: {r}')

    # bad values: usage errors, found before connecting (nothing listens on that port, so
    # a connection attempt would exit 3)
    closed = f'ws://127.0.0.1:{free_port()}/ws'
    for args, says in (
            (('annotate',), 'annotate takes one argument: SEQ'),
            (('annotate', seq), 'needs --pain, --stiffness or --note'),
            (('annotate', seq, '7', '--pain', '1'), 'annotate takes one argument'),
            (('annotate', '0', '--pain', '1'), 'positive integer'),
            (('annotate', 'last', '--pain', '1'), 'positive integer'),
            (('annotate', '-5', '--pain', '1'), ''),
            (('annotate', seq, '--pain', '11'), '--pain takes a whole number from 0 to 10'),
            (('annotate', seq, '--pain', '-1'), '--pain takes a whole number from 0 to 10'),
            (('annotate', seq, '--pain', '2.5'), '--pain takes a whole number from 0 to 10'),
            (('annotate', seq, '--pain', ''), '--pain takes a whole number from 0 to 10'),
            (('annotate', seq, '--stiffness', 'stiff'), '--stiffness takes a whole number'),
            (('annotate', seq, '--stiffness', '100'), '--stiffness takes a whole number'),
            (('annotate', seq, '--note', ''), '--note is empty'),
            (('annotate', seq, '--note', 'x' * 281), 'up to 280 bytes of text, not 281'),
            (('annotate', seq, '--note', '\u00e9' * 141), 'up to 280 bytes of text, not 282'),
            (('annotate', seq, '--pain', '1', '--pain', '2'), "'--pain' given twice"),
            (('annotate', seq, '--pain'), "'--pain' needs a value"),
            (('stats', '--note', 'hi'), '--note is for annotate only'),
            (('ack', '3', '--pain', '2'), '--pain is for annotate only'),
    ):
        r = await cli(env, '--url', closed, *args)
        expect(r, 2, f'spinewatch {" ".join(args)[:80]}')
        check(r.out == '' and r.err.startswith('spinewatch: ') and says in r.err
              and "Try 'spinewatch " in r.err,
              f'spinewatch {" ".join(args)[:80]}: stderr {r.err!r} should say {says!r}')
    # a note that is not UTF-8 (bytes on the command line)
    e = dict(os.environ)
    e.pop('SPINEWATCH_URL', None)
    proc = await asyncio.create_subprocess_exec(
        cli_path(env), '--url', closed, 'annotate', seq, '--note', b'caf\xe9',
        stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=e)
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    check(proc.returncode == 2 and out == b'' and b'--note is not UTF-8 text' in err
          and not SANITIZER_REPORT.search(err.decode('utf-8', 'replace')),
          f'a note that is not UTF-8: exit {proc.returncode}, stderr {err!r}')
    # the daemon is down: unreachable
    r = await cli(env, '--url', closed, 'annotate', seq, '--pain', '2', timeout=20)
    expect(r, 3, 'annotate with the daemon down')
    check(closed in r.err and 'cannot connect' in r.err, f'daemon down: {r.err!r}')
