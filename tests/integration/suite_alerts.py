"""Alert and calibration tests (issue 4): the calibrate command, its stored baseline reused at
start, alerts raised, acknowledged and cleared through the feed, and the alert hook. Registered
in suite.TESTS like suite.py's tests."""

import asyncio
import json
import math
import os

import statedb
from feed import Feed, hello
from procs import check
from suite import READY, sensor_event, test

STATE = '{tmpdir}/state'


def tilted(deg):
    """A gravity vector (mg) leaning `deg` forward from upright (+Z), about the X axis."""
    r = math.radians(deg)
    return 0, round(1000 * math.sin(r)), round(1000 * math.cos(r))


async def command(f, msg):
    """Send one command, return its reply (other messages stay queued on f)."""
    await f.ws.send(json.dumps(msg))
    return await f.wait_for(lambda m: m['type'] == 'reply' and m.get('id') == msg.get('id'), 5,
                            f'the reply to {msg}')


async def hold(env, sensor, deg, seconds, period=0.1):
    for _ in range(int(seconds / period)):
        env.fake.send_gravity(sensor, *tilted(deg))
        await asyncio.sleep(period)


@test('calibrate-command', daemon_args=('--state-dir', STATE, '--calibration', '0.5'))
async def t_calibrate(env):
    fake, clip, sound = env.fake, env.clip, env.sound
    await env.streaming()
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        r = await command(f, {'type': 'calibrate', 'sensor': 'C0:FF:EE:00:00:77', 'id': 1})
        check(r == {'type': 'reply', 'id': 1, 'ok': False, 'code': 'unknown-sensor',
                    'message': 'no sensor with that address'}, f'unknown sensor: {r}')
        r = await command(f, {'type': 'calibrate', 'sensor': sound.address, 'id': 2})
        check(not r['ok'] and r['code'] == 'not-a-posture-sensor', f'a sound sensor: {r}')
        r = await command(f, {'type': 'ack', 'alert': 999, 'id': 'x'})
        check(not r['ok'] and r['code'] == 'unknown-alert', f'ack of an unknown alert: {r}')
        # the wearer sits still, leaning 30 degrees: that becomes upright
        await hold(env, clip, 30, 0.6)
        r = await command(f, {'type': 'calibrate', 'sensor': clip.address.lower(), 'id': 'c'})
        check(r == {'type': 'reply', 'id': 'c', 'ok': True, 'result': 'started'},
              f'calibrate: {r}')
        r = await command(f, {'type': 'calibrate', 'sensor': clip.address, 'id': 'c2'})
        check(not r['ok'] and r['code'] == 'busy', f'a second calibrate while one runs: {r}')
        hold_task = asyncio.ensure_future(hold(env, clip, 30, 3.0))
        try:
            ev = await f.wait_for(lambda m: m['type'] == 'event' and
                                  m.get('kind') == 'calibration', 8, 'the calibration event')
        finally:
            await hold_task
        check(ev.get('sensor') == clip.address and ev.get('result') == 'done'
              and 'reason' not in ev, f'calibration event {ev}')
        # the same lean now reads as upright
        await hold(env, clip, 30, 1.2)
        await f.drain(0.7)
        last = [m for m in f.messages if m['type'] == 'posture' and m['sensor'] == clip.address][-1]
        check(abs(last['angle']) < 2, f'angle {last["angle"]} at the calibrated lean')
    line = statedb.read_calibration(os.path.join(env.tmpdir, 'state'), clip.address)
    parts = (line or '').split()
    check(len(parts) == 4 and parts[0] == 'v1', f'stored calibration {line!r}')
    y, z = float(parts[2]), float(parts[3])
    check(abs(math.degrees(math.atan2(y, z)) - 30) < 1, f'stored baseline {line!r}')


def stored_calibration(env):
    y, z = math.sin(math.radians(20)), math.cos(math.radians(20))
    statedb.write_calibration(os.path.join(env.tmpdir, 'state'), env.clip.address,
                              f'v1 0.000000 {y:.6f} {z:.6f}')


@test('calibration-reused-at-start', prepare=stored_calibration,
      daemon_args=('--state-dir', STATE))
async def t_calibration_stored(env):
    fake, clip = env.fake, env.clip
    fake.wait_notifying([clip], 15)
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        # no automatic calibration: the very first samples are judged against the stored
        # baseline (20 degrees forward), so 20 reads as upright and 50 as 30 forward
        await hold(env, clip, 20, 0.3)
        first = await f.wait_for(lambda m: m['type'] == 'posture' and m['sensor'] == clip.address,
                                 5, 'a posture message')
        check(first['calibrating'] is False and abs(first['angle']) < 2,
              f'first posture with a stored baseline: {first}')
        await hold(env, clip, 50, 1.2)
        await f.drain(0.7)
        last = [m for m in f.messages if m['type'] == 'posture' and m['sensor'] == clip.address][-1]
        check(abs(last['angle'] - 30) < 2, f'angle at 50 degrees against a 20-degree baseline: {last}')
    check('upright baseline from' in env.daemon.stderr_text(), 'the log names the stored baseline')


def alert_settings(env):
    with open(os.path.join(env.tmpdir, 'alerts.conf'), 'w') as fh:
        fh.write('[alerts]\nsensor_lost_s = 1\ncooldown_min = 0\n'
                 f'hook = /bin/sh -c cat>>{env.tmpdir}/hooks.jsonl\n'
                 '[sensors]\nbackoff_min_ms = 1500\nbackoff_max_ms = 1500\n')
    env.fake.fail_connects(env.sound, 0)


@test('alerts-raise-ack-clear-and-hook', prepare=alert_settings,
      daemon_args=('--config', '{tmpdir}/alerts.conf'))
async def t_alerts(env):
    fake, sound = env.fake, env.sound
    await env.streaming()
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        # out of reach: the link drops and the first reconnect fails; 1 s later, an alert
        fake.fail_connects(sound, 1)
        fake.drop_link(sound)
        raised = await f.wait_for(lambda m: m['type'] == 'event' and m.get('kind') == 'alert',
                                  6, 'a sensor-lost alert')
        check(raised.get('rule') == 'sensor-lost' and raised.get('state') == 'raised'
              and raised.get('sensor') == sound.address and raised.get('severity') == 'warning'
              and raised.get('message') and raised.get('raised_ts') == raised.get('ts'),
              f'alert event {raised}')
        h = await hello(env.port)
        check([a['id'] for a in h['alerts']] == [raised['id']]
              and h['alerts'][0]['state'] == 'raised', f'hello.alerts {h["alerts"]}')
        r = await command(f, {'type': 'ack', 'alert': raised['id'], 'id': 'a'})
        check(r == {'type': 'reply', 'id': 'a', 'ok': True, 'result': 'ok'}, f'ack: {r}')
        acked = await f.wait_for(lambda m: m['type'] == 'event' and m.get('kind') == 'alert'
                                 and m.get('state') == 'acknowledged', 5, 'the acknowledged event')
        check(acked['id'] == raised['id'], f'acknowledged {acked} for {raised}')
        r = await command(f, {'type': 'ack', 'alert': raised['id'], 'id': 'b'})
        check(r.get('ok') and r.get('result') == 'already-acknowledged', f'second ack: {r}')
        # back in reach: cleared
        await sensor_event(f, sound.address, READY, 10)
        cleared = await f.wait_for(lambda m: m['type'] == 'event' and m.get('kind') == 'alert'
                                   and m.get('state') == 'cleared', 5, 'the cleared event')
        check(cleared['id'] == raised['id'], f'cleared {cleared}')
        r = await command(f, {'type': 'ack', 'alert': raised['id'], 'id': 'c'})
        check(not r['ok'] and r['code'] == 'alert-cleared', f'ack of a cleared alert: {r}')
        check((await hello(env.port))['alerts'] == [], 'hello.alerts after the clear')
    # the hook got the raised alert as one JSON line on stdin
    path = os.path.join(env.tmpdir, 'hooks.jsonl')
    for _ in range(50):
        if os.path.exists(path) and open(path).read().endswith('\n'):
            break
        await asyncio.sleep(0.1)
    lines = open(path).read().splitlines()
    check(len(lines) == 1, f'hook input: {lines}')
    got = json.loads(lines[0])
    check(got.get('type') == 'alert' and got.get('id') == raised['id']
          and got.get('rule') == 'sensor-lost' and got.get('state') == 'raised'
          and got.get('sensor') == sound.address, f'hook input {got}')


@test('crack-episodes-and-patterns',
      daemon_args=('--crack-merge-ms', '150', '--disable-alerts', ''))
async def t_crack_episodes(env):
    """The defaults: pop reports within 150 ms are one crack with their pops summed; three
    crack episodes within a minute raise the self-manipulation alert, once."""
    fake, sound = env.fake, env.sound
    await env.streaming()
    await asyncio.sleep(0.5)   # the priming cracks' episode is closed
    async with await Feed.open(env.port) as f:
        last = (await f.next(what='hello'))['last_seq']
        for intensity, count in ((30, 1), (70, 2), (50, 1)):
            fake.send_crack(sound, kind='pop', intensity=intensity, duration_ms=20, count=count)
            await asyncio.sleep(0.03)
        ev = await f.wait_for(lambda m: m['type'] == 'event' and m.get('kind') == 'crack'
                              and m['seq'] > last, 3, 'the merged crack')
        check(ev['crack'] == 'pop' and ev['intensity'] == 70 and ev['count'] == 4
              and ev['sensor'] == sound.address and 40 <= ev['duration_ms'] <= 400,
              f'three pop reports within 150 ms should be one crack of 4 pops: {ev}')
        await f.drain(0.4)
        cracks = [m for m in f.messages if m['type'] == 'event' and m.get('kind') == 'crack'
                  and m['seq'] > last]
        check(len(cracks) == 1, f'{len(cracks)} crack events for one burst: {cracks}')
        # two more episodes a little apart: a click, then a pop
        fake.send_crack(sound, kind='click', intensity=40, duration_ms=10, count=1)
        await asyncio.sleep(0.4)
        fake.send_crack(sound, kind='pop', intensity=60, duration_ms=15, count=1)
        alert = await f.wait_for(lambda m: m['type'] == 'event' and m.get('kind') == 'alert'
                                 and m.get('rule') == 'self-manipulation', 3,
                                 'a self-manipulation alert')
        check(alert['state'] == 'raised' and alert['sensor'] == sound.address
              and 'diagnos' not in alert['message'].lower(), f'alert {alert}')
        await f.drain(0.5)
        kinds = [(m.get('kind'), m.get('crack')) for m in f.messages
                 if m['type'] == 'event' and m['seq'] > last and m.get('kind') != 'sensor']
        check(kinds.count(('crack', 'click')) == 1 and kinds.count(('crack', 'pop')) == 2,
              f'events after the burst: {kinds}')
        raised = [m for m in f.messages if m['type'] == 'event' and m.get('kind') == 'alert'
                  and m.get('state') == 'raised']
        check(len(raised) == 1, f'the pattern raised {len(raised)} alerts: {raised}')
