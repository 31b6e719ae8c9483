"""Command-line client tests (build/spinewatch, next to the daemon under test, so the ASan run
uses build/asan/spinewatch): tail, status, sensors, alerts, ack, calibrate, stats and annotate
against the daemon, its exit statuses (0 done, 1 refused, 2 usage, 3 unreachable or
misbehaving), help and usage errors, a daemon that is down or silent. tail is also followed
across daemon restarts (clean and kill -9) on the same port, and against a scripted stand-in
for the feed (closes 1001, dropped connections, duplicates, gaps, a new stream, refusals). The
client runs as a subprocess (asyncio, so the test's feed client and fake sensors keep going)
under a deadline, and its stderr is checked for sanitizer reports. Registered in suite.TESTS
like suite.py's tests."""

import asyncio
import datetime
import json
import math
import os
import re
import signal
import socket
import time
from collections import namedtuple

import websockets

import procs
import statedb
from feed import Feed, hello
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


def cli_env(extra_env=None):
    e = dict(os.environ)
    e.pop('SPINEWATCH_URL', None)
    e.setdefault('ASAN_OPTIONS', 'detect_leaks=1')
    e.setdefault('UBSAN_OPTIONS', 'print_stacktrace=1:halt_on_error=1')
    e.update(extra_env or {})
    return e


async def cli(env, *args, timeout=30, extra_env=None):
    """Run spinewatch with `args`; returns its exit status, stdout, stderr and run time. Fails
    if it outlives `timeout` or prints a sanitizer report."""
    e = cli_env(extra_env)
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
    r = await cli(env, '--help')
    for word in ('tail [--since N] [--kind K]... [--sensor ADDR]... [--count N] [--no-follow]',
                 '\n  status ', '\n  sensors ', '\n  alerts ', 'spinewatch tail --kind crack | jq'):
        check(word in r.out, f'--help does not mention {word!r}: {r.out}')
    for name, words in (
            ('tail', ('--since N', '--kind K', '--sensor ADDR', '--count N', '--no-follow',
                      'crack, slouch, sensor, alert,', 'posture', 'status', 'reconnects',
                      'gap', '| jq')),
            ('status', ('--json', '"by_state"', '"today"')),
            ('sensors', ('battery', 'rejected', '"sensors"')),
            ('alerts', ('ack ID', '"alerts"'))):
        for args in (('help', name), (name, '--help'), ('-h', name)):
            r = await cli(env, *args)
            expect(r, 0, ' '.join(args))
            check(r.out.startswith(f'Usage: spinewatch [OPTION]... {name}') and
                  all(w in r.out for w in words) and 'Exit status' in r.out,
                  f'{args}: {r.out}')
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
            (('ack', '3', '--sensor', 'C0:FF:EE:00:00:01'), '--sensor is for stats and tail only'),
            (('--bogus', 'stats'), "unknown option '--bogus'"),
            (('stats', '--url'), "'--url' needs a value"),
            (('--timeout', '0', 'stats'), '--timeout'),
            (('--timeout', 'soon', 'stats'), '--timeout'),
            (('--url', 'http://127.0.0.1:8421/ws', 'stats'), 'must start with ws:// or wss://'),
            (('--token-file', '/nonexistent/token', 'stats'), '--token-file /nonexistent/token: '),
            (('--url', 'ws://127.0.0.1:99999/ws', 'stats'), 'port'),
            (('--url', 'ws:///ws', 'stats'), 'no host'),
            (('stats', '--sensor', 'C0:FF:EE:00:00:01', '--sensor', 'C0:FF:EE:00:00:02'),
             'stats takes one --sensor'),
            (('status', 'now'), 'status takes no arguments'),
            (('sensors', 'C0:FF:EE:00:00:01'), 'sensors takes no arguments'),
            (('alerts', '3'), 'alerts takes no arguments'),
            (('status', '--sensor', 'C0:FF:EE:00:00:01'), '--sensor is for stats and tail only'),
            (('tail', 'crack'), 'tail takes no arguments'),
            (('tail', '--kind', 'pop'), "'pop' is not a kind (crack, slouch, sensor, alert, "
             'calibration, annotation, posture, status)'),
            (('tail', '--kind', 'crack,'), "'' is not a kind"),
            (('tail', '--kind', 'crack', '--kind', 'Crack'), "'Crack' is not a kind"),
            (('tail', '--kind', ''), "'' is not a kind"),
            (('tail', '--sensor', 'C0:FF:EE:00:00'), "'C0:FF:EE:00:00' is not a sensor address"),
            (('tail', '--sensor', 'C0:FF:EE:00:00:01,nope'), "'nope' is not a sensor address"),
            (('tail', '--sensor', ','.join(f'C0:FF:EE:00:01:{i:02X}' for i in range(17))),
             'at most 16 sensors'),
            (('tail', '--since', '-1'), '--since takes a seq'),
            (('tail', '--since', 'x'), '--since takes a seq'),
            (('tail', '--since', '99999999999999999999'), '--since takes a seq'),
            (('tail', '--since', '1', '--since', '2'), "'--since' given twice"),
            (('tail', '--count', '0'), '--count takes a positive whole number'),
            (('tail', '--count', '1.5'), '--count takes a positive whole number'),
            (('tail', '--kind'), "'--kind' needs a value"),
            (('ack', '3', '--kind', 'crack'), '--kind is for tail only'),
            (('stats', '--since', '3'), '--since is for tail only'),
            (('status', '--count', '3'), '--count is for tail only'),
            (('alerts', '--no-follow'), '--no-follow is for tail only'),
            (('--url', 'ws://127.0.0.1:8421/ws?since=3', 'tail'), 'leave it out'),
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
                 ('--url', closed, 'calibrate', 'C0:FF:EE:00:00:01'),
                 ('--url', closed, 'status'), ('--url', closed, 'sensors', '--json'),
                 ('--url', closed, 'alerts'), ('--url', closed, 'tail'),
                 ('--url', closed, 'tail', '--since', '0', '--kind', 'crack'),
                 ('--url', closed, 'tail', '--no-follow')):
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
        for args in (('status',), ('tail', '--kind', 'crack')):
            r = await cli(env, '--url', silent, '--timeout', '0.5', *args, timeout=20)
            expect(r, 3, f'{args[0]} against a server that never answers')
            check(r.out == '' and silent in r.err and 'within 0.5 s' in r.err,
                  f'{args[0]}: the timeout message should name {silent}: {r.err!r}')
    # not the feed's path: the daemon refuses the upgrade
    for args in (('stats',), ('status',), ('tail',)):
        r = await cli(env, '--url', f'ws://127.0.0.1:{env.port}/nothere', *args, timeout=20)
        expect(r, 3, f'{args[0]}: a path that is not the feed')
        check(f'ws://127.0.0.1:{env.port}/nothere did not accept a WebSocket connection'
              in r.err, f'message {r.err!r}')


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


# ---- tail ----------------------------------------------------------------------------------

def ndjson_line(line, what):
    """One line of tail's output: one compact JSON object with a string "type"."""
    check(line.endswith('\n') and '\n' not in line[:-1] and '\r' not in line,
          f'{what}: not one line: {line!r}')
    try:
        m = json.loads(line)
    except ValueError as e:
        raise TestFailure(f'{what}: a line that is not JSON ({e}): {line!r}') from None
    check(isinstance(m, dict) and isinstance(m.get('type'), str),
          f'{what}: a line that is not an object with a "type": {line!r}')
    check(line[:-1] == line.strip() and ': ' not in line[:2] and line[:2] != '{ ',
          f'{what}: not compact: {line!r}')
    return m


def ndjson(text, what):
    """Every line of `text` (tail's whole output), parsed."""
    check(text == '' or text.endswith('\n'), f'{what}: the output does not end a line: '
          f'{text[-200:]!r}')
    return [ndjson_line(line + '\n', what) for line in text[:-1].split('\n')] if text else []


def crack_tagged(tag):
    return lambda m: (m.get('type') == 'event' and m.get('kind') == 'crack'
                      and m.get('duration_ms') == tag)


def seqs_of(lines):
    return [m['seq'] for m in lines if m.get('type') == 'event']


class Tail:
    """spinewatch tail in the background, its output read line by line as it comes and its
    stderr collected. Always close() it (a finally)."""

    def __init__(self, proc, what):
        self.proc = proc
        self.what = what
        self.lines = []
        self.err = bytearray()
        self._err_task = asyncio.ensure_future(self._read_err())

    @classmethod
    async def start(cls, env, *args, shell=None):
        """spinewatch ARGS..., or with `shell` that bash command line (spinewatch is $CLI)."""
        if shell:
            proc = await asyncio.create_subprocess_exec(
                'bash', '-c', shell, stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env=cli_env({'CLI': cli_path(env)}))
            return cls(proc, shell)
        proc = await asyncio.create_subprocess_exec(
            cli_path(env), *args, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=cli_env())
        return cls(proc, 'spinewatch ' + ' '.join(args))

    async def _read_err(self):
        while True:
            chunk = await self.proc.stderr.read(4096)
            if not chunk:
                return
            self.err += chunk

    @property
    def stderr(self):
        return self.err.decode('utf-8', 'replace')

    def _report(self):
        return (f'{self.what}: printed {len(self.lines)} lines, the last '
                f'{[json.dumps(m)[:160] for m in self.lines[-4:]]}; stderr {self.stderr[-1500:]!r}')

    async def next(self, timeout=10, what='a line'):
        try:
            raw = await asyncio.wait_for(self.proc.stdout.readline(), timeout)
        except asyncio.TimeoutError:
            raise TestFailure(f'no line within {timeout:g} s waiting for {what}; '
                              f'{self._report()}') from None
        if not raw:
            status = await self.proc.wait()
            raise TestFailure(f'tail ended (status {status}) while waiting for {what}; '
                              f'{self._report()}')
        m = ndjson_line(raw.decode('utf-8'), self.what)
        self.lines.append(m)
        return m

    async def until(self, predicate, timeout, what):
        """Lines until one satisfies `predicate` (returned)."""
        deadline = time.monotonic() + timeout
        while True:
            m = await self.next(max(0.01, deadline - time.monotonic()), what)
            if predicate(m):
                return m

    async def says(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            if time.monotonic() > deadline:
                raise TestFailure(f'stderr does not say {text!r} after {timeout:g} s; '
                                  f'{self._report()}')
            await asyncio.sleep(0.05)

    async def wait(self, timeout=10):
        """Wait for the end; the rest of its output is parsed into lines. Returns its status."""
        try:
            rest = await asyncio.wait_for(self.proc.stdout.read(), timeout)
            status = await asyncio.wait_for(self.proc.wait(), timeout)
            await asyncio.wait_for(self._err_task, timeout)
        except asyncio.TimeoutError:
            raise TestFailure(f'still running {timeout:g} s later; {self._report()}') from None
        self.lines += ndjson(rest.decode('utf-8'), self.what)
        check(not SANITIZER_REPORT.search(self.stderr),
              f'sanitizer report from {self.what}:\n{self.stderr[:3000]}')
        return status

    async def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
        return await self.wait(timeout)

    async def close(self):
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()
        self._err_task.cancel()
        try:
            await self._err_task
        except (asyncio.CancelledError, Exception):
            pass


async def ring(env, query='?since=0', upto=None):
    """What the daemon holds (a plain feed client's replay): the events after the query's since,
    up to the hello's last_seq (or, with a filter, to the event `upto`), and that hello."""
    async with await Feed.open(env.port, query) as f:
        h = await f.next(what='hello')
        upto = upto or h['last_seq']
        held = []
        if upto:
            await f.wait_for(lambda m: m.get('seq', 0) >= upto or
                             (m['type'] == 'gap' and m['to'] >= upto), 5,
                             f'the replay up to {upto}')
            held = [m for m in f.messages if m['type'] == 'event' and m['seq'] <= upto]
        return held, h


async def send_cracks(env, tags):
    """Cracks from the sound sensor tagged by their duration_ms; returns once the daemon sent
    them (their events)."""
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        for tag in tags:
            env.fake.send_crack(env.sound, intensity=50, duration_ms=tag)
        return [await f.wait_for(crack_tagged(tag), 5, f'the crack tagged {tag}')
                for tag in tags]


@test('cli-tail', deadline=90, daemon_args=('--state-dir', STATE))
async def t_cli_tail(env):
    """tail --no-follow prints what the ring holds after --since, filtered; tail --count stops
    after N lines; the output is NDJSON, one line per event as the daemon sent it; posture and
    status only when asked for; SIGINT and SIGTERM end it with 0; a reader going away too."""
    clip, sound, microbit = env.clip, env.sound, env.microbit
    await env.streaming()
    u = url(env)
    await send_cracks(env, [611, 612])
    held, h = await ring(env)
    check(held and held[0]['seq'] == 1 and held[-1]['kind'] == 'crack'
          and held[-1]['duration_ms'] == 612, f'the ring: {held}')
    check(any(m['kind'] == 'sensor' for m in held), f'no sensor events in {held}')

    # everything held, as a plain client sees it (--no-follow alone is --since 0)
    for args in (('tail', '--since', '0', '--no-follow'), ('tail', '--no-follow'),
                 ('--json', 'tail', '--no-follow')):
        r = await cli(env, '--url', u, *args)
        expect(r, 0, ' '.join(args))
        got = ndjson(r.out, ' '.join(args))
        check(got == held and r.err == '', f'{args}: printed {seqs_of(got)}, the ring holds '
              f'{seqs_of(held)}; stderr {r.err!r}')
        check(r.out.splitlines()[0] == json.dumps(held[0], separators=(',', ':')),
              f'a line is not the event as the daemon sent it: {r.out.splitlines()[0]!r}')
    # --since replays what comes after it
    mid = held[len(held) // 2]['seq']
    r = await cli(env, '--url', u, 'tail', '--since', str(mid), '--no-follow')
    expect(r, 0, f'tail --since {mid} --no-follow')
    check(ndjson(r.out, 'tail --since') == [m for m in held if m['seq'] > mid],
          f'tail --since {mid}: {r.out}')
    # beyond the last seq: nothing, at once
    r = await cli(env, '--url', u, 'tail', '--since', '999999', '--no-follow')
    expect(r, 0, 'tail --since 999999 --no-follow')
    check(r.out == '' and r.err == '', f'tail --since 999999 --no-follow: {r}')

    # filters (kinds repeated or as a list, addresses in any case, several sensors)
    r = await cli(env, '--url', u, 'annotate', str(held[-1]['seq']), '--pain', '2')
    expect(r, 0, 'annotate the last crack')
    held, h = await ring(env)
    check(held[-1]['kind'] == 'annotation', f'the annotation is held: {held[-1]}')
    for args, want in (
            (('--kind', 'crack', '--kind', 'annotation', '--sensor', sound.address.lower()),
             lambda m: m['kind'] in ('crack', 'annotation') and m['sensor'] == sound.address),
            (('--kind', 'sensor', '--sensor', f'{clip.address},{microbit.address.lower()}'),
             lambda m: m['kind'] == 'sensor' and m['sensor'] in (clip.address,
                                                                  microbit.address)),
            (('--kind', 'crack,sensor', '--kind', 'crack', '--kind', 'posture'),
             lambda m: m['kind'] in ('crack', 'sensor')),
            (('--sensor', clip.address), lambda m: m['sensor'] == clip.address),
            (('--kind', 'slouch'), lambda m: False),
    ):
        r = await cli(env, '--url', u, 'tail', '--no-follow', *args)
        expect(r, 0, f'tail --no-follow {" ".join(args)}')
        want_events = [m for m in held if want(m)]
        check(ndjson(r.out, 'tail --no-follow with filters') == want_events and r.err == '',
              f'tail --no-follow {" ".join(args)}: printed {r.out!r}, expected seqs '
              f'{seqs_of(want_events)}; stderr {r.err!r}')
    r = await cli(env, '--url', u, 'tail', '--no-follow', '--count', '2')
    expect(r, 0, 'tail --no-follow --count 2')
    check(ndjson(r.out, '--count 2') == held[:2], f'tail --no-follow --count 2: {r.out}')

    # following: --count 3 of the sound sensor's cracks, from the last seq on (so it does not
    # matter when it connects); the clip's posture and the sound's second kind stay out
    last = h['last_seq']
    tail = await Tail.start(env, '--url', u, 'tail', '--since', str(last), '--count', '3',
                            '--kind', 'crack', '--sensor', sound.address)
    try:
        env.fake.send_gravity(clip, *tilted(5))
        for tag in (621, 622, 623, 624):
            env.fake.send_crack(sound, intensity=50, duration_ms=tag)
        status = await tail.wait(15)
    finally:
        await tail.close()
    check(status == 0 and [m.get('duration_ms') for m in tail.lines] == [621, 622, 623]
          and all(m['seq'] > last and m['sensor'] == sound.address for m in tail.lines)
          and tail.stderr == '', f'tail --count 3: status {status}; {tail._report()}')

    # posture and status: only when asked for, and only for the sensors asked for
    tail = await Tail.start(env, '--url', u, 'tail', '--kind', 'posture', '--kind', 'status',
                            '--sensor', clip.address, '--count', '4')
    try:
        status = await while_sending(env, clip, [3, 6], tail.wait(20))
    finally:
        await tail.close()
    check(status == 0 and len(tail.lines) == 4 and
          all(m['type'] in ('posture', 'status') and m['sensor'] == clip.address
              for m in tail.lines) and any(m['type'] == 'posture' for m in tail.lines),
          f'tail --kind posture --kind status: status {status}; {tail._report()}')

    # live only (no --since): a crack every 0.2 s until it prints; SIGINT and SIGTERM end it
    for sig in (signal.SIGINT, signal.SIGTERM):
        tail = await Tail.start(env, '--url', u, 'tail', '--kind', 'crack')
        try:
            async def cracks_until_printed():
                tag = 630
                while True:
                    tag += 1
                    env.fake.send_crack(sound, intensity=50, duration_ms=tag)
                    try:
                        return await tail.next(0.2, 'a live crack')
                    except TestFailure as e:
                        if 'tail ended' in str(e):
                            raise
            first = await asyncio.wait_for(cracks_until_printed(), 15)
            check(first['seq'] > last and first['kind'] == 'crack', f'live: {first}')
            start = time.monotonic()
            status = await tail.stop(sig)
            took = time.monotonic() - start
        finally:
            await tail.close()
        check(status == 0 and took < 3, f'tail after {signal.Signals(sig).name}: status '
              f'{status} after {took:.1f} s; {tail._report()}')
        check('spinewatch' not in tail.stderr, f'{signal.Signals(sig).name}: stderr '
              f'{tail.stderr!r}')

    # the reader goes away (| head -n 1): tail ends with 0 at its next line, not by SIGPIPE
    last = (await hello(env.port))['last_seq']
    tail = await Tail.start(env, shell=f'set -o pipefail; "$CLI" --url {u} tail --since {last} '
                            f'--kind crack | head -n 1')
    try:
        async def crack_until_done():
            tag = 640
            while tail.proc.returncode is None:
                tag += 1
                env.fake.send_crack(sound, intensity=50, duration_ms=tag)
                await asyncio.sleep(0.2)
        sender = asyncio.ensure_future(crack_until_done())
        try:
            status = await tail.wait(20)
        finally:
            sender.cancel()
    finally:
        await tail.close()
    check(status == 0 and len(tail.lines) == 1 and tail.lines[0].get('duration_ms') == 641,
          f'tail | head -n 1: pipeline status {status} (141: killed by SIGPIPE); '
          f'{tail._report()}')


@test('cli-tail-gaps', daemon_args=('--ring-size', '8'))
async def t_cli_tail_gaps(env):
    """Events no longer held: a gap notice on stderr, or with --json a gap line in the output;
    then what the ring holds."""
    await env.streaming()
    await send_cracks(env, list(range(651, 661)))
    async with await Feed.open(env.port, '?since=0') as f:
        h = await f.next(what='hello')
        gap = await f.wait_for(lambda m: m['type'] == 'gap', 5, 'the gap')
        await f.wait_for(lambda m: m.get('seq') == h['last_seq'], 5, 'the last event')
        held = [m for m in f.messages if m['type'] == 'event' and m['seq'] <= h['last_seq']]
    check(h['oldest_seq'] > 1 and len(held) == 8, f'hello {h}, held {seqs_of(held)}')
    u = url(env)
    r = await cli(env, '--url', u, 'tail', '--since', '0', '--no-follow')
    expect(r, 0, 'tail --since 0 --no-follow with a gap')
    check(ndjson(r.out, 'tail with a gap') == held, f'printed {r.out}')
    check(r.err == f'spinewatch: gap: events 1 to {gap["to"]} are no longer kept by the daemon '
          f'and will not be printed\n', f'the gap notice: {r.err!r}')
    r = await cli(env, '--url', u, '--json', 'tail', '--since', '0', '--no-follow')
    expect(r, 0, 'tail --json --since 0 --no-follow with a gap')
    got = ndjson(r.out, 'tail --json with a gap')
    check(got == [gap] + held and r.err == '', f'tail --json: printed {r.out}; stderr {r.err!r}')
    # --count counts events only; a since inside the ring has no gap
    r = await cli(env, '--url', u, '--json', 'tail', '--since', '0', '--count', '2')
    expect(r, 0, 'tail --json --since 0 --count 2')
    check(ndjson(r.out, '--count 2') == [gap] + held[:2], f'--count 2: {r.out}')
    r = await cli(env, '--url', u, 'tail', '--since', str(held[3]['seq']), '--no-follow')
    expect(r, 0, 'tail --since inside the ring')
    check(ndjson(r.out, 'tail --since') == held[4:] and r.err == '', f'{r}')


async def restart_on_same_port(env, kill=False):
    """env.restart_daemon() on the port it had, so that a client can reconnect to the URL it
    knows (the harness picks a new free port otherwise; its free_port is swapped meanwhile)."""
    port = env.port
    saved = procs.free_port
    procs.free_port = lambda: port
    try:
        await asyncio.get_running_loop().run_in_executor(None, env.restart_daemon, kill)
    finally:
        procs.free_port = saved
    check(env.port == port, f'the daemon came back on {env.port}, not {port}')


@test('cli-tail-across-restarts', deadline=150, daemon_args=('--state-dir', STATE))
async def t_cli_tail_restarts(env):
    """tail follows across a clean daemon restart on the same port (close 1001, reconnect,
    resume with since: every event once, in order, as a plain client sees them) and across a
    kill -9 (a dropped connection, then a new stream, said on stderr)."""
    sound = env.sound
    await env.streaming()
    u = url(env)
    start = (await hello(env.port))['last_seq']
    tail = await Tail.start(env, '--url', u, 'tail', '--since', str(start), '--kind', 'crack')
    try:
        for tag in (671, 672):
            env.fake.send_crack(sound, intensity=50, duration_ms=tag)
        await tail.until(crack_tagged(672), 10, 'the cracks before the restart')
        stream = (await hello(env.port))['stream']

        await restart_on_same_port(env)
        await tail.says('closed the connection (1001 going away); reconnecting to', 10)
        await env.streaming(prime=False)
        # while it may still be reconnecting: these come with the replay, or live
        env.fake.send_crack(sound, intensity=50, duration_ms=673)
        await tail.says(f'reconnected to {u}; going on after seq ', 20)
        env.fake.send_crack(sound, intensity=50, duration_ms=674)
        last = await tail.until(crack_tagged(674), 10, 'the cracks after the restart')
        check('numbers its events anew' not in tail.stderr and
              (await hello(env.port))['stream'] == stream,
              f'a clean restart keeps the stream; {tail._report()}')
        held, _ = await ring(env, f'?since={start}&kinds=crack', upto=last['seq'])
        check(tail.lines == held, f'tail printed seqs {seqs_of(tail.lines)}, the daemon holds '
              f'{seqs_of(held)} (each once, in order)')
        tags = [m['duration_ms'] for m in tail.lines]
        check(all(tags.count(t) == 1 for t in (671, 672, 673, 674)), f'tags {tags}')

        # a crash: the connection drops without a close; the new run numbers anew
        await asyncio.sleep(1.5)   # the history has what was printed
        printed = len(tail.lines)
        await restart_on_same_port(env, kill=True)
        await tail.says(f'lost the connection to {u}; reconnecting', 10)
        await tail.says('numbers its events anew', 20)
        check((await hello(env.port))['stream'] != stream, 'kill -9: a new stream')
        await env.streaming(prime=False)
        env.fake.send_crack(sound, intensity=50, duration_ms=675)
        await tail.until(crack_tagged(675), 10, 'a crack after the crash')
        after = tail.lines[printed:]
        check(all(m['kind'] == 'crack' for m in after) and
              [m['duration_ms'] for m in after].count(675) == 1 and
              not any(m['duration_ms'] in (671, 672, 673, 674) for m in after),
              f'after the crash: {after}')
        status = await tail.stop(signal.SIGINT)
    finally:
        await tail.close()
    check(status == 0, f'tail after SIGINT: {status}; {tail._report()}')


# ---- tail against a scripted feed -----------------------------------------------------------

def _hello(stream, last_seq):
    return {'type': 'hello', 'server': 'spinewatchd', 'version': '0.1.0', 'protocol': 1,
            'stream': stream, 'ts': 1764064800000, 'last_seq': last_seq,
            'oldest_seq': 1 if last_seq else 0, 'sensors': [], 'alerts': [],
            'stats': {'ts': 1764064800000, 'sensors': []}}


def _crack(seq, sensor='C0:FF:EE:00:00:02'):
    return {'type': 'event', 'seq': seq, 'ts': 1764064800000 + seq, 'sensor': sensor,
            'kind': 'crack', 'crack': 'pop', 'intensity': 50, 'duration_ms': 100, 'count': 1}


class ScriptedFeed:
    """A WebSocket server that plays one script per connection (an async function of the
    connection), recording each connection's path: what the daemon would do, made exact."""

    def __init__(self, scripts):
        self.scripts = list(scripts)
        self.paths = []
        self.server = None
        self.port = None

    async def __aenter__(self):
        async def handler(ws, path=None):
            self.paths.append(ws.path)
            if not self.scripts:
                await ws.close(1013, 'no more')
                return
            await self.scripts.pop(0)(ws)
        self.server = await websockets.serve(handler, '127.0.0.1', 0,
                                             subprotocols=['spinewatch.v1'])
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc):
        self.server.close()
        await self.server.wait_closed()

    @property
    def url(self):
        return f'ws://127.0.0.1:{self.port}/ws'


async def send_all(ws, *messages):
    for m in messages:
        await ws.send(m if isinstance(m, str) else json.dumps(m))


@test('cli-tail-scripted-feed', bluez_at_start=False)
async def t_cli_tail_scripted(env):
    """Against a scripted server: the query of every connection (since = the last seq printed,
    the filters), a close 1001 and a dropped connection both followed by a reconnect, a
    duplicate not printed twice, a gap on stderr, a new stream said and followed, messages
    not asked for left out; refusals (exit 1) and a server that is not the feed (exit 3)."""
    async def first(ws):
        await send_all(ws, _hello('aaaa', 10), _crack(11),
                       {'type': 'posture', 'ts': 1, 'sensor': 'C0:FF:EE:00:00:02', 'angle': 1.0},
                       {'type': 'reply', 'id': None, 'ok': True, 'result': 'pong'},
                       _crack(12), {'type': 'novelty', 'seq': 99})
        await ws.close(1001, 'going away')

    async def second(ws):
        await send_all(ws, _hello('aaaa', 15), _crack(12), _crack(13),
                       {'type': 'gap', 'from': 14, 'to': 15}, _crack(16))
        await asyncio.sleep(0.3)
        ws.transport.abort()   # dropped: no close frame

    async def third(ws):
        # a new stream (the daemon crashed): its last_seq 5 is below what we printed
        await send_all(ws, _hello('bbbb', 5), _crack(3), _crack(6))
        await ws.wait_closed()

    async with ScriptedFeed([first, second, third]) as feed:
        tail = await Tail.start(env, '--url', feed.url, 'tail', '--kind', 'crack', '--sensor',
                                'c0:ff:ee:00:00:02')
        try:
            await tail.until(lambda m: m.get('seq') == 6, 20, 'seq 6 of the new stream')
            await tail.says('numbers its events anew (stream bbbb, was aaaa)', 5)
            status = await tail.stop(signal.SIGTERM)
        finally:
            await tail.close()
        check(status == 0 and seqs_of(tail.lines) == [11, 12, 13, 16, 6]
              and all(m['type'] == 'event' for m in tail.lines),
              f'printed {seqs_of(tail.lines)}; status {status}; {tail._report()}')
        q = '&kinds=crack&sensors=C0:FF:EE:00:00:02'
        check(feed.paths == ['/ws?kinds=crack&sensors=C0:FF:EE:00:00:02', f'/ws?since=12{q}',
                             f'/ws?since=16{q}'], f'the queries: {feed.paths}')
        err = tail.stderr
        for says in (f'{feed.url} closed the connection (1001 going away); reconnecting to '
                     f'{feed.url} to go on after seq 12',
                     f'reconnected to {feed.url}; going on after seq 12',
                     'gap: events 14 to 15 are no longer kept',
                     f'lost the connection to {feed.url}; reconnecting to {feed.url} to go on '
                     f'after seq 16',
                     'numbers its events anew (stream bbbb, was aaaa): it restarted without '
                     'stopping cleanly, so events from around its restart may be missing; '
                     'going on after seq 5'):
            check(says in err, f'stderr does not say {says!r}: {err!r}')

    # --json: gaps are lines; --since goes into the query; --no-follow stops at last_seq
    async def replay(ws):
        await send_all(ws, _hello('cccc', 9), {'type': 'gap', 'from': 1, 'to': 6},
                       _crack(7, 'C0:FF:EE:00:00:09'), _crack(8), _crack(9), _crack(10))
        await ws.wait_closed()

    async with ScriptedFeed([replay]) as feed:
        r = await cli(env, '--url', feed.url, '--json', 'tail', '--no-follow', '--sensor',
                      'C0:FF:EE:00:00:02')
        expect(r, 0, 'tail --no-follow against the script')
        got = ndjson(r.out, 'tail --json --no-follow')
        check([m['type'] for m in got] == ['gap', 'event', 'event'] and seqs_of(got) == [8, 9]
              and r.err == '', f'tail --json --no-follow: {r}')
        check(feed.paths == ['/ws?since=0'], f'--no-follow asks for no filter: {feed.paths}')

    # refused: an error message (exit 1, its code and message); not the feed (exit 3)
    async def refuse(ws):
        await send_all(ws, _hello('dddd', 0), {'type': 'error', 'code': 'bad-kinds',
                                               'message': 'kinds is a comma-separated list'})
        await ws.close(1008, 'bad-kinds')

    async def not_json(ws):
        await send_all(ws, 'hello there')
        await ws.wait_closed()

    async def no_hello(ws):
        await send_all(ws, _crack(1))
        await ws.wait_closed()

    for script, status, says in (
            (refuse, 1, 'spinewatch: bad-kinds: kinds is a comma-separated list\n'),
            (not_json, 3, 'sent a message that is not a JSON object'),
            (no_hello, 3, 'did not start with a hello')):
        async with ScriptedFeed([script]) as feed:
            r = await cli(env, '--url', feed.url, 'tail', '--since', '0', timeout=20)
            expect(r, status, f'tail against {script.__name__}')
            check(r.out == '' and says in r.err, f'{script.__name__}: stderr {r.err!r}')


# ---- status, sensors, alerts ------------------------------------------------------------------

@test('cli-status-sensors-alerts', prepare=alert_settings,
      daemon_args=('--config', '{tmpdir}/alerts.conf'))
async def t_cli_status(env):
    """status (text and --json) from the hello: version, stream, sensors by state, alerts,
    today's cracks and slouch, last seq; sensors and alerts as tables and as the hello's arrays;
    an alert raised and acknowledged shows."""
    fake, sound = env.fake, env.sound
    await env.streaming()
    await asyncio.sleep(0.5)   # a primer crack sent twice is counted by now
    u = url(env)
    h = await hello(env.port)
    today = [s['today'] for s in h['stats']['sensors']]
    cracks = sum(d['cracks'] for d in today)
    check(cracks >= 1, f'the primer crack is counted: {h["stats"]}')

    r = await cli(env, '--url', u, 'status', '--json')
    expect(r, 0, 'status --json')
    check(r.out.count('\n') == 1 and r.err == '', f'status --json: {r}')
    st = json.loads(r.out)
    states = ['discovered', 'connecting', 'pairing', 'resolving', 'subscribed', 'streaming',
              'lost', 'waiting', 'gone']
    want = {'server': 'spinewatchd', 'version': h['version'], 'protocol': 1, 'url': u,
            'stream': h['stream'], 'oldest_seq': 1,
            'sensors': {'known': 3, 'by_state': {s: 3 if s == 'streaming' else 0
                                                 for s in states}},
            'alerts': {'active': 0, 'raised': 0, 'acknowledged': 0},
            'today': {'date': local_date(0), 'cracks': cracks, 'slouch_min': 0.0}}
    check(list(st) == ['server', 'version', 'protocol', 'url', 'stream', 'ts', 'last_seq',
                       'oldest_seq', 'sensors', 'alerts', 'today']
          and {k: v for k, v in st.items() if k not in ('ts', 'last_seq')} == want
          and list(st['sensors']['by_state']) == states
          and st['last_seq'] >= h['last_seq'] and st['ts'] >= h['ts'],
          f'status --json: {st}\nexpected {want}')

    r = await cli(env, '--url', u, 'status')
    expect(r, 0, 'status')
    lines = r.out.splitlines()
    check(len(lines) == 5 and r.err == '' and
          lines[0] == f'spinewatchd {h["version"]} at {u} (stream {h["stream"]})' and
          lines[1] == 'Sensors:  3 known: 3 streaming' and
          lines[2] == 'Alerts:   none active' and
          lines[3] == f'Today:    {cracks} crack{"s" if cracks != 1 else ""}, 0.0 min '
                      f'slouched ({local_date(0)})' and
          re.fullmatch(r'Feed:     last seq \d+, oldest kept 1', lines[4]),
          f'status:\n{r.out}')

    r = await cli(env, '--url', u, 'sensors', '--json')
    expect(r, 0, 'sensors --json')
    got = json.loads(r.out)
    check(r.out.count('\n') == 1 and isinstance(got, list)
          and [(s['address'], s['name'], s['profile']) for s in got] ==
          [(s['address'], s['name'], s['profile']) for s in h['sensors']]
          and all(set(a) == set(b) for a, b in zip(got, h['sensors'])),
          f'sensors --json: {got}\nhello: {h["sensors"]}')
    r = await cli(env, '--url', u, 'sensors')
    expect(r, 0, 'sensors')
    lines = r.out.splitlines()
    heads = ['ADDRESS', 'NAME', 'PROFILE', 'STATE', 'BATTERY', 'RSSI', 'LOST', 'REJECTED',
             'REASON']
    check(lines[0].split() == heads and len(lines) == 4, f'sensors:\n{r.out}')
    cols = [lines[0].index(w) for w in heads]
    for s, line in zip(h['sensors'], lines[1:]):
        check(line.startswith(s['address'] + '  ') and line[cols[1]:].startswith(s['name'])
              and line[cols[2]:].startswith(s['profile'])
              and line[cols[3]:].startswith('streaming ')
              and line[cols[8]:].startswith(s['reason'][:20]),
              f'sensors: the line of {s["address"]}: {line!r}\n{r.out}')
        lost = line[cols[5] + len('RSSI'):cols[7] + len('REJECTED')].split()
        check(lost == [str(s['lost']), str(s['rejected'])], f'lost, rejected: {line!r}')
    check('11:22:33:44:55:66' not in r.out, f'the headset is not a sensor: {r.out}')

    r = await cli(env, '--url', u, 'alerts')
    expect(r, 0, 'alerts')
    check(r.out == 'No active alerts.\n' and r.err == '', f'alerts: {r}')
    r = await cli(env, '--url', u, '--json', 'alerts')
    expect(r, 0, 'alerts --json')
    check(r.out == '[]\n', f'alerts --json: {r.out!r}')

    # an alert: the sound sensor out of reach (and kept so while we look)
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        fake.fail_connects(sound, 1000)
        fake.drop_link(sound)
        raised = await f.wait_for(lambda m: m['type'] == 'event' and m.get('kind') == 'alert'
                                  and m.get('state') == 'raised', 6, 'a sensor-lost alert')
    r = await cli(env, '--url', u, 'alerts', '--json')
    expect(r, 0, 'alerts --json with an alert')
    got = json.loads(r.out)
    check(len(got) == 1 and got[0]['id'] == raised['id'] and got[0]['rule'] == 'sensor-lost'
          and got[0]['state'] == 'raised' and got[0]['sensor'] == sound.address,
          f'alerts --json: {got}')
    r = await cli(env, '--url', u, 'alerts')
    expect(r, 0, 'alerts with an alert')
    lines = r.out.splitlines()
    check(lines[0].split() == ['ID', 'RULE', 'SEVERITY', 'STATE', 'SENSOR', 'SINCE', 'MESSAGE']
          and len(lines) == 2, f'alerts:\n{r.out}')
    since = datetime.datetime.fromtimestamp(raised['raised_ts'] / 1000).strftime('%Y-%m-%d %H:%M')
    check(re.fullmatch(rf'\s*{raised["id"]}  sensor-lost  {raised["severity"]}\s+raised\s+'
                       rf'{sound.address}  {since}  ' + re.escape(raised['message']), lines[1]),
          f'alerts: the line {lines[1]!r}')
    r = await cli(env, '--url', u, 'status', '--json')
    st = json.loads(r.out)
    check(st['alerts'] == {'active': 1, 'raised': 1, 'acknowledged': 0}
          and st['sensors']['known'] == 3 and sum(st['sensors']['by_state'].values()) == 3
          and st['sensors']['by_state']['streaming'] == 2, f'status --json: {st}')
    r = await cli(env, '--url', u, 'ack', str(raised['id']))
    expect(r, 0, 'ack')
    r = await cli(env, '--url', u, 'status')
    check('\nAlerts:   1 active (0 raised, 1 acknowledged): \'spinewatch alerts\' lists them\n'
          in r.out and re.search(r'\nSensors:  3 known: 2 streaming, 1 \w+\n', r.out),
          f'status with an acknowledged alert:\n{r.out}')
    r = await cli(env, '--url', u, 'alerts')
    check(re.search(rf'\n\s*{raised["id"]}  sensor-lost  \w+\s+acknowledged  ', r.out),
          f'alerts with an acknowledged alert:\n{r.out}')
