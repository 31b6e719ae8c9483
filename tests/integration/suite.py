"""
tests/integration/suite.py - the integration tests of spinewatchd against the fake BlueZ
(python-dbusmock) and its WebSocket feed: notifications to events, posture and slouches, `since`
replay and gaps, spoofed signals (broadcast and unicast), hostile payloads, bluetoothd crashing
and coming back, starting without it, link loss and failed connects, the feed document's
examples, and bad requests. Each test is an async function of an Env (see run.py) registered
with @test.
"""

import asyncio
import http.client
import os
import re
import time
from collections import namedtuple

import dbus
import websockets

import payloads
from fakebluez import (CHAR_IFACE, DEVICE_IFACE, OM_IFACE, PlainOwner, connection_of_pid,
                       forge_changed, forge_interfaces_added, forge_interfaces_removed)
from feed import (RECEIVED, Feed, documented_examples, hello, sensor_entry, summary,
                  undocumented_keys)
from procs import TestFailure, check

Test = namedtuple('Test', 'name func daemon_args deadline prepare bluez_at_start populate')
TESTS = []


def test(name, daemon_args=(), deadline=60, prepare=None, bluez_at_start=True, populate=None):
    """Register a test. prepare(env) runs before the daemon starts; bluez_at_start=False
    starts the daemon with no org.bluez on the bus (env.fake is None until env.start_bluez()).
    populate(env, fake) adds the devices of each fake BlueZ the test starts and returns its
    sensors (default: the standard clip, sound sensor, micro:bit and headset; see run.Env)."""
    def register(func):
        TESTS.append(Test(name, func, list(daemon_args), deadline, prepare, bluez_at_start,
                          populate))
        return func
    return register


# The daemon subscribed to a sensor: `subscribed` (no data yet) or `streaming` (data arrives).
READY = ('subscribed', 'streaming')
# A sensor bluetoothd no longer offers: its link went down, or its device object is gone (as
# when bluetoothd itself went away).
GONE = ('lost', 'gone')


def now_ms():
    return time.time() * 1000


def check_hello(msg):
    check(msg['type'] == 'hello', f'first message is not hello: {msg}')
    for key, kind in (('server', str), ('version', str), ('protocol', int), ('stream', str),
                      ('ts', int), ('last_seq', int), ('oldest_seq', int), ('detector', dict),
                      ('sensors', list)):
        check(isinstance(msg.get(key), kind) and not isinstance(msg.get(key), bool),
              f'hello.{key} is not {kind.__name__}: {msg}')
    check(msg['server'] == 'spinewatchd' and msg['protocol'] == 1, f'hello: {msg}')
    check(abs(msg['ts'] - now_ms()) < 5000, f'hello.ts {msg["ts"]} is not now')
    check(msg['oldest_seq'] <= msg['last_seq'], f'hello oldest_seq > last_seq: {msg}')


def check_crack(event, sensor, seq, crack, intensity, duration_ms, count, ts_range):
    expected = {'type': 'event', 'kind': 'crack', 'sensor': sensor.address, 'seq': seq,
                'crack': crack, 'intensity': intensity, 'duration_ms': duration_ms,
                'count': count}
    wrong = {k: (event.get(k), v) for k, v in expected.items() if event.get(k) != v}
    check(not wrong, f'crack event {event}: (got, expected) {wrong}')
    lo, hi = ts_range
    check(isinstance(event.get('ts'), int) and lo <= event['ts'] <= hi,
          f'crack event ts {event.get("ts")} not within [{lo:.0f}, {hi:.0f}]: {event}')


async def sensor_streaming(f, address, first, timeout=15):
    """The daemon subscribed to the sensor (READY) per the hello `first` or a later `sensor`
    event on feed f."""
    entry = next((s for s in first['sensors'] if s.get('address') == address), None)
    if entry and entry.get('state') in READY:
        return entry
    return await f.wait_for(lambda m: m['type'] == 'event' and m.get('kind') == 'sensor'
                            and m.get('sensor') == address and m.get('state') in READY,
                            timeout, f'sensor {address} to be subscribed or streaming')


# --- 1. notification -> event ---

@test('crack-notification-to-event')
async def t_crack(env):
    fake, sound = env.fake, env.sound
    await env.streaming()
    async with await Feed.open(env.port) as a:
        check(a.ws.subprotocol == 'spinewatch.v1',
              f'server did not select the offered subprotocol (got {a.ws.subprotocol!r})')
        first = await a.next(what='hello')
        check_hello(first)
        for s in env.sensors:
            await sensor_streaming(a, s.address, first)
        fake.wait_notifying(env.sensors)
        h = await hello(env.port)
        entry = sensor_entry(h, sound.address)
        check(entry.get('profile') == 'spinewatch' and entry.get('roles') == ['sound']
              and entry.get('name') == 'Spine Sound', f'sound sensor in hello: {entry}')
        mb = sensor_entry(h, env.microbit.address)
        check(mb.get('profile') == 'microbit' and mb.get('roles') == ['posture'],
              f'micro:bit in hello: {mb}')
        check(not fake.method_calls(env.headset, 'Connect'),
              'spinewatchd called Connect on a device without a sensor service UUID')

        async with await Feed.open(env.port, subprotocol=False) as b:
            check(b.ws.subprotocol is None, f'subprotocol {b.ws.subprotocol!r} without offer')
            hb = await b.next(what='hello')
            check_hello(hb)
            last = hb['last_seq']
            before = now_ms()
            fake.send_crack(sound, kind='pop', intensity=80, duration_ms=120, count=4,
                            age_ms=20000)
            fake.send_crack(sound, kind='grind', intensity=35, duration_ms=1500, count=1,
                            age_ms=0)
            # a longer payload (trailing byte) is accepted; seq jumps forward on purpose
            # (a small step back would be a stale notification, dropped)
            sound.seq['crack'] = (sound.seq['crack'] + 1000) & 0xFFFF
            fake.notify(sound, 'crack', payloads.crack(fake.next_seq(sound, 'crack'), 'click',
                                                       100, 6, 1, 1000) + b'\x00')
            got_b = await b.events(3)
            after = now_ms()
            check_crack(got_b[0], sound, last + 1, 'pop', 80, 120, 4,
                        (before - 20000 - 1000, after - 20000 + 1000))
            check_crack(got_b[1], sound, last + 2, 'grind', 35, 1500, 1,
                        (before - 1000, after + 1000))
            check_crack(got_b[2], sound, last + 3, 'click', 100, 6, 1,
                        (before - 1000 - 1000, after - 1000 + 1000))
            got_a = await a.events(3, kinds={'crack'})
            check(got_a == got_b, f'the two clients got different events: {got_a} vs {got_b}')
            # exactly one event per notification: the next event is the next notification's
            fake.send_crack(sound, kind='pop', intensity=1, duration_ms=5, count=1)
            nxt = await b.events(1)
            check(nxt[0].get('seq') == last + 4 and nxt[0].get('intensity') == 1,
                  f'after three notifications the next event is {nxt[0]}')
        h2 = await hello(env.port)
        check(h2['last_seq'] == last + 4 and h2['stream'] == hb['stream'],
              f'hello after 4 cracks: last_seq {h2["last_seq"]}, expected {last + 4}')


# --- 2. posture and slouches ---

POSTURE_ARGS = ['--calibration', '0.5', '--slouch-delay', '1', '--slouch-threshold', '15',
                '--slouch-hysteresis', '5']


@test('posture-and-slouch', daemon_args=POSTURE_ARGS, deadline=90)
async def t_posture(env):
    fake = env.fake
    # per sensor: upright baseline, direction of the forward tilt, tilt in degrees
    plan = {env.clip.address: (env.clip, (0, 0, 1), (0, 1, 0), 30.0),
            env.microbit.address: (env.microbit, (0, -1, 0), (1, 0, 0), 40.0)}
    await env.streaming(prime=False)  # samples would start calibration

    async def send_all(tilt, period=0.04):
        for sensor, base, axis, deg in plan.values():
            fake.send_gravity(sensor, *payloads.tilted(base, axis, deg if tilt else 0.0))
        await asyncio.sleep(period)  # paces the samples (25 Hz); not a synchronisation

    def posture_of(f, address):
        return [m for m in f.messages if m['type'] == 'posture' and m.get('sensor') == address]

    async def feed_until(f, tilt, done, timeout, what):
        deadline = time.monotonic() + timeout
        while not done():
            check(time.monotonic() < deadline,
                  f'{what} within {timeout} s; received {summary(f.messages, 20)}')
            await send_all(tilt)
            await f.drain()

    def slouch(f, address, phase):
        return [m for m in f.messages if m['type'] == 'event' and m.get('kind') == 'slouch'
                and m.get('sensor') == address and m.get('phase') == phase]

    async with await Feed.open(env.port) as f:
        h = await f.next(what='hello')
        check_hello(h)
        det = h['detector']
        check(det.get('delay_ms') == 1000 and det.get('calibration_ms') == 500
              and det.get('threshold_deg') == 15 and det.get('hysteresis_deg') == 5,
              f'hello.detector does not reflect the command line: {det}')

        # calibration: upright samples until both report calibrating false
        await feed_until(f, False, lambda: all(
            any(m.get('calibrating') is False for m in posture_of(f, a)) for a in plan),
            10, 'calibration to end')
        for a in plan:
            ps = posture_of(f, a)
            calibrating = [m for m in ps if m.get('calibrating') is True]
            check(calibrating and all(m.get('angle') == 0 for m in calibrating),
                  f'{a}: no posture message with calibrating=true and angle 0 during the '
                  f'0.5 s calibration: {summary(ps)}')
            done = [m for m in ps if m.get('calibrating') is False]
            check(all(abs(m.get('angle', 99)) < 2 and m.get('slouching') is False
                      and m.get('beyond_ms') == 0 for m in done),
                  f'{a}: upright after calibration: {done[:3]}')

        # tilt: held beyond the threshold for longer than the delay -> slouch start
        tilt_start = now_ms()
        await feed_until(f, True, lambda: all(slouch(f, a, 'start') for a in plan), 10,
                         'slouch start events for both sensors')
        for a, (_sensor, _base, _axis, deg) in plan.items():
            starts = slouch(f, a, 'start')
            check(len(starts) == 1, f'{a}: {len(starts)} slouch start events: {starts}')
            s = starts[0]
            check(abs(s.get('angle', -99) - deg) < 2.5 and s.get('threshold_deg') == 15,
                  f'{a}: slouch start angle/threshold (tilted {deg} deg): {s}')
            check(tilt_start - 500 <= s['onset_ts'] <= s['ts'] and
                  950 <= s['ts'] - s['onset_ts'] <= 2000,
                  f'{a}: slouch start ts/onset_ts do not fit a 1 s delay: {s}')
            check(s['ts'] - tilt_start >= 900,
                  f'{a}: slouch started {s["ts"] - tilt_start:.0f} ms after the tilt began')
            tilted = [m for m in posture_of(f, a) if m['ts'] >= s['onset_ts'] + 200]
            check(tilted and all(abs(m['angle'] - deg) < 2.5 for m in tilted),
                  f'{a}: posture angle while tilted {deg} deg: {summary(tilted)}')
            beyond = [m.get('beyond_ms') for m in tilted if not m.get('slouching')]
            check(all(isinstance(b, int) and 0 < b < 1100 for b in beyond),
                  f'{a}: beyond_ms before the slouch started: {beyond}')

        # keep slouching a little so that posture reports slouching=true, then sit up
        await feed_until(f, True, lambda: all(
            any(m.get('slouching') is True for m in posture_of(f, a)) for a in plan),
            5, 'posture messages with slouching=true')
        await feed_until(f, False, lambda: all(slouch(f, a, 'end') for a in plan), 10,
                         'slouch end events for both sensors')
        for a, (_sensor, _base, _axis, deg) in plan.items():
            start, ends = slouch(f, a, 'start')[0], slouch(f, a, 'end')
            check(len(ends) == 1, f'{a}: {len(ends)} slouch end events: {ends}')
            e = ends[0]
            check(e.get('reason') == 'upright' and e.get('angle', 99) < 10
                  and e.get('onset_ts') == start['onset_ts']
                  and e.get('duration_ms') == e['ts'] - e['onset_ts']
                  and e['duration_ms'] >= 1000 and e['seq'] > start['seq'],
                  f'{a}: slouch end {e} after start {start}')
            # at most 2 posture messages per second per sensor, plus one at each change of
            # calibrating or slouching (websocket-feed.md)
            msgs = posture_of(f, a)
            stamps = [m['ts'] for m in msgs]
            changes = sum(1 for p, q in zip(msgs, msgs[1:])
                          if (p.get('calibrating'), p.get('slouching')) !=
                          (q.get('calibrating'), q.get('slouching')))
            worst = max((sum(1 for t in stamps if t0 <= t < t0 + 1000) for t0 in stamps),
                        default=0)
            check(len(stamps) >= 4 and worst <= 2 + changes,
                  f'{a}: {len(stamps)} posture messages, up to {worst} within one second '
                  f'({changes} state changes)')


# --- 3. since replay and gaps ---

@test('since-replay')
async def t_since(env):
    fake, sound = env.fake, env.sound
    await env.streaming()
    async with await Feed.open(env.port) as live:
        h0 = await live.next(what='hello')
        check_hello(h0)
        for i in range(6):
            fake.send_crack(sound, intensity=10 + i)
        sent = await live.events(6)
        k = sent[-1]['seq']
        check([e['seq'] for e in sent] == list(range(h0['last_seq'] + 1, k + 1)),
              f'live seqs after last_seq {h0["last_seq"]}: {[e["seq"] for e in sent]}')
        n = sent[1]['seq']

        async with await Feed.open(env.port, f'?since={n}') as r:
            h = await r.next(what='hello')
            check_hello(h)
            check(h['last_seq'] == k, f'hello.last_seq {h["last_seq"]}, expected {k}')
            replay = await r.events(k - n)
            check(replay == sent[2:], f'since={n} replayed {replay}, expected {sent[2:]}')
            for i in range(2):
                fake.send_crack(sound, intensity=50 + i)
            more = await r.events(2)
            check([e['seq'] for e in more] == [k + 1, k + 2] and
                  [e['intensity'] for e in more] == [50, 51],
                  f'live events after the replay: {more}')
            check(await live.events(2) == more, 'replaying client and live client differ')
            check(not [m for m in r.messages if m['type'] == 'gap'], 'gap without reason')

        # since=0 replays the whole ring: 1..k+2, in order
        async with await Feed.open(env.port, '?since=0') as r0:
            h = await r0.next(what='hello')
            check(h['oldest_seq'] == 1, f'hello.oldest_seq with a large ring: {h}')
            everything = await r0.events(k + 2)
            check([e['seq'] for e in everything] == list(range(1, k + 3)),
                  f'since=0 replay seqs: {[e["seq"] for e in everything]}')
            check(everything[-8:] == sent[-6:] + more, 'since=0 replay differs from live events')

        # a since beyond the newest seq means "from now on"
        async with await Feed.open(env.port, f'?since={k + 1000}') as rf:
            await rf.next(what='hello')
            fake.send_crack(sound, intensity=77)
            ev = await rf.events(1)
            check(ev[0]['seq'] == k + 3 and ev[0]['intensity'] == 77,
                  f'since beyond last_seq: first event {ev[0]}')


@test('since-gap-small-ring', daemon_args=['--ring-size', '8'])
async def t_gap(env):
    fake, sound = env.fake, env.sound
    await env.streaming()
    async with await Feed.open(env.port) as live:
        h0 = await live.next(what='hello')
        check_hello(h0)
        for i in range(20):
            fake.send_crack(sound, intensity=i)
        sent = await live.events(20)
        k = sent[-1]['seq']

        async with await Feed.open(env.port, '?since=0') as r:
            h = await r.next(what='hello')
            check(h['last_seq'] == k and h['oldest_seq'] == k - 7,
                  f'ring of 8 after seq {k}: hello last_seq {h["last_seq"]}, '
                  f'oldest_seq {h["oldest_seq"]}')
            gap = await r.next(what='gap')
            check(gap == {'type': 'gap', 'from': 1, 'to': k - 8},
                  f'since=0 on a ring of 8 holding {k - 7}..{k}: got {gap}, expected gap 1..{k - 8}')
            rest = await r.events(8)
            check(rest == sent[-8:], f'after the gap: {rest}, expected {sent[-8:]}')
            fake.send_crack(sound, intensity=99)
            ev = await r.events(1)
            check(ev[0]['seq'] == k + 1 and ev[0]['intensity'] == 99, f'live after gap: {ev}')
            check(sum(1 for m in r.messages if m['type'] == 'gap') == 1, 'more than one gap')

        # a cursor inside the overwritten part: gap from since+1
        async with await Feed.open(env.port, '?since=2') as r:
            await r.next(what='hello')
            gap = await r.next(what='gap')
            check(gap == {'type': 'gap', 'from': 3, 'to': k + 1 - 8},
                  f'since=2: got {gap}, expected gap 3..{k + 1 - 8}')
            rest = await r.events(8)
            check([e['seq'] for e in rest] == list(range(k - 6, k + 2)), f'after gap: {rest}')

        # a cursor still in the ring: no gap
        async with await Feed.open(env.port, f'?since={k - 3}') as r:
            await r.next(what='hello')
            rest = await r.events(4)
            check([e['seq'] for e in rest] == list(range(k - 2, k + 2)) and
                  not [m for m in r.messages if m['type'] == 'gap'],
                  f'since={k - 3} on a ring holding {k - 6}..{k + 1}: {summary(r.messages)}')


# --- 4. spoofing ---

@test('spoofed-signals-ignored')
async def t_spoof(env):
    fake, sound = env.fake, env.sound
    await env.streaming()
    async with await Feed.open(env.port) as f:
        h = await f.next(what='hello')
        last = h['last_seq']
        lost0 = sensor_entry(h, sound.address).get('lost')
        char = sound.chars['crack']
        genuine_seq = sound.seq['crack']
        # the test's own connection (not org.bluez's owner) forges a valid notification with
        # a far-off sequence number, a disconnect and the removal of the characteristic
        fake.forge(char, CHAR_IFACE, {'Value': dbus.Array(
            payloads.crack(genuine_seq + 100, 'grind', 11, 900, 1), signature='y')})
        fake.forge(sound.path, DEVICE_IFACE, {'Connected': dbus.Boolean(False)})
        msg = dbus.lowlevel.SignalMessage('/', OM_IFACE, 'InterfacesRemoved')
        msg.append(dbus.ObjectPath(char), dbus.Array([CHAR_IFACE], signature='s'),
                   signature='oas')
        fake.bus.send_message(msg)
        fake.bus.flush()
        # then two genuine ones from the mock
        fake.send_crack(sound, kind='pop', intensity=22)
        fake.send_crack(sound, kind='pop', intensity=33)
        got = await f.events(2)
        check([(e.get('kind'), e.get('intensity'), e.get('seq')) for e in got] ==
              [('crack', 22, last + 1), ('crack', 33, last + 2)],
              f'after a forged notification and two genuine ones the events are {got}')
        h2 = await hello(env.port)
        entry = sensor_entry(h2, sound.address)
        check(entry.get('state') == 'streaming' and entry.get('lost') == lost0,
              f'forged signals changed the sensor: {entry} (lost was {lost0})')
        check(h2['last_seq'] == last + 2, f'hello.last_seq {h2["last_seq"]} != {last + 2}')


# --- 5. hostile payloads ---

@test('hostile-payloads')
async def t_hostile(env):
    fake, sound, clip, mb = env.fake, env.sound, env.clip, env.microbit
    h0 = await env.streaming()
    rejected0 = {s.address: sensor_entry(h0, s.address).get('rejected') for s in env.sensors}
    check(all(isinstance(v, int) for v in rejected0.values()), f'rejected counters: {rejected0}')
    async with await Feed.open(env.port) as f:
        h = await f.next(what='hello')
        last = h['last_seq']
        good = payloads.crack(0, 'pop', 80, 120, 4, 35)
        bad_cracks = [
            good[:9],                                   # too short
            b'',                                        # empty
            b'\x00' + good[1:],                         # version 0
            b'\x02' + good[1:],                         # version 2
            good[:3] + b'\x03' + good[4:],              # kind 3
            good[:4] + b'\x65' + good[5:],              # intensity 101
            good[:7] + b'\x00' + good[8:],              # count 0
        ]
        for p in bad_cracks:
            fake.notify(sound, 'crack', p)
        bad_posture = [payloads.posture(1, 0, 0, 1000)[:8],
                       payloads.posture(1, 0, 0, 1000, version=2), b'\x01']
        for p in bad_posture:
            fake.notify(clip, 'posture', p)
        bad_microbit = [payloads.microbit(0, 0, 1000)[:5], payloads.microbit(0, 0, 1000) + b'\0']
        for p in bad_microbit:
            fake.notify(mb, 'microbit', p)
        # Values of the wrong D-Bus type (not ay) on the posture clip
        wrong_types = [dbus.String('01020304050607080910', variant_level=1),
                       dbus.Array([1, 2, 3, 4, 5, 6, 7, 8, 9], signature='i'),
                       dbus.Array([dbus.Array(b'\x01' * 9, signature='y')], signature='ay'),
                       dbus.Int32(1)]
        for v in wrong_types:
            fake.notify_value(clip, 'posture', v)
        # the daemon is alive and still decodes: a valid crack (512 bytes: version 1 payloads
        # may grow; trailing bytes are ignored) is the only event
        fake.send_crack(sound, kind='click', intensity=44, duration_ms=10, count=1)
        long = payloads.crack(fake.next_seq(sound, 'crack'), 'grind', 45, 300, 1)
        fake.notify(sound, 'crack', long + bytes(range(251)) * 2)
        got = await f.events(2)
        check([(e.get('crack'), e.get('intensity'), e.get('seq')) for e in got] ==
              [('click', 44, last + 1), ('grind', 45, last + 2)],
              f'after hostile payloads the events are {got}')
        check(env.daemon.alive(), 'spinewatchd died')

        # a jump in the sequence counter counts lost notifications
        lost0 = sensor_entry(await hello(env.port), sound.address).get('lost')
        sound.seq['crack'] = (sound.seq['crack'] + 3) & 0xFFFF
        dup_seq = fake.send_crack(sound, intensity=46)
        await f.events(1)

        # the same seq again is a duplicate (e.g. a cached value re-sent): dropped, not counted
        fake.notify(sound, 'crack', payloads.crack(dup_seq, 'pop', 46, 120, 1))
        fake.send_crack(sound, intensity=47)
        got = await f.events(1)
        check(got[0].get('intensity') == 47,
              f'a repeated seq {dup_seq} was not dropped as a duplicate: next event {got[0]}')

    h1 = await hello(env.port)
    counts = {s.address: sensor_entry(h1, s.address) for s in env.sensors}
    sd = counts[sound.address]
    check(sd.get('rejected') == rejected0[sound.address] + len(bad_cracks),
          f'sound sensor rejected {sd.get("rejected")}, expected '
          f'{rejected0[sound.address]} + {len(bad_cracks)}')
    check(sd.get('lost') == lost0 + 3, f'sound sensor lost {sd.get("lost")} after a jump of 3 '
          f'(was {lost0})')
    cd = counts[clip.address]
    check(rejected0[clip.address] + len(bad_posture) <= cd.get('rejected', -1) <=
          rejected0[clip.address] + len(bad_posture) + len(wrong_types),
          f'posture clip rejected {cd.get("rejected")} after {len(bad_posture)} bad payloads '
          f'and {len(wrong_types)} wrongly typed values (was {rejected0[clip.address]})')
    md = counts[mb.address]
    check(md.get('rejected') == rejected0[mb.address] + len(bad_microbit),
          f'micro:bit rejected {md.get("rejected")}, expected +{len(bad_microbit)}')
    check(all(e.get('state') in READY for e in counts.values()),
          f'sensors after hostile payloads: {list(counts.values())}')


# --- 8. BlueZ coming and going, link loss, failed connects ---

async def poll(predicate, timeout, what, interval=0.05):
    """Like procs.wait_until, without blocking the event loop."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TestFailure(f'timed out after {timeout:g} s waiting for {what}')
        await asyncio.sleep(interval)


def is_sensor_event(m, address, state, after_seq=0):
    """`state`: one state, or a tuple of states (e.g. READY)."""
    states = state if isinstance(state, tuple) else (state,)
    return (m['type'] == 'event' and m.get('kind') == 'sensor' and m.get('sensor') == address
            and m.get('state') in states and m.get('seq', 0) > after_seq)


def sensor_events(f, address, state):
    return [m for m in f.messages if is_sensor_event(m, address, state)]


async def first_message(f, predicate, timeout, what):
    """The first message on f, already received or still to come, satisfying `predicate`."""
    seen = [m for m in f.messages if predicate(m)]
    if seen:
        return seen[0]
    return await f.wait_for(predicate, timeout, what)


async def sensor_event(f, address, state, timeout, after_seq=0):
    """The first `sensor` event on f for `address` with `state` and a seq above `after_seq`."""
    return await first_message(f, lambda m: is_sensor_event(m, address, state, after_seq),
                               timeout, f'a sensor event {address} {state} after seq {after_seq}')


async def event_after(f, last, what, timeout=5):
    """The first event after seq `last` that is not a sensor becoming `streaming` (which the
    first data after a (re)subscription causes). With `last` the last_seq of a hello taken
    before some signals were sent, that is the first event they caused: a test sends spoofs,
    then one genuine notification, and expects the genuine one here."""
    def first_after(m):
        return (m['type'] == 'event' and m.get('seq', 0) > last
                and not (m.get('kind') == 'sensor' and m.get('state') == 'streaming'))
    return await first_message(f, first_after, timeout,
                               f'the first event after seq {last} ({what})')


def ignored_in_log(env, sender):
    """The members of the signals that spinewatchd's log says it ignored from `sender`:
    evidence that forged signals did reach its connection."""
    pattern = re.compile(r'ignoring (\w+) on \S+ from ' + re.escape(sender) + r'(?![\w.])')
    return {m.group(1) for m in pattern.finditer(env.daemon.stderr_text())}


def check_crack_event(ev, sensor, intensity, what):
    check(ev.get('kind') == 'crack' and ev.get('sensor') == sensor.address
          and ev.get('intensity') == intensity,
          f'{what}: expected the crack of intensity {intensity} from {sensor.address}, got {ev}')


@test('unicast-spoof-ignored')
async def t_unicast_spoof(env):
    fake, sound, clip = env.fake, env.sound, env.clip
    await env.streaming()
    me = fake.bus.get_unique_name()
    daemon_name = connection_of_pid(fake.bus, env.daemon.proc.pid)
    check(daemon_name and me != fake.owner,
          f'bus names: spinewatchd {daemon_name}, test {me}, org.bluez {fake.owner}')
    # a device the mock has (so that a Connect on it would be recorded) but never announced
    impostor_address = 'C0:FF:EE:00:00:99'
    impostor = fake.add_hidden_device(impostor_address, 'Spine Impostor')
    async with await Feed.open(env.port) as f:
        last = (await f.next(what='hello'))['last_seq']
        # signals from the test's connection addressed to spinewatchd's, which the bus
        # delivers whatever its match rules say: a valid crack notification, a new "sensor"
        # and the removal of a real sensor and of a real characteristic
        fake.forge(sound.chars['crack'], CHAR_IFACE, {'Value': dbus.Array(
            payloads.crack(sound.seq['crack'] + 100, 'grind', 11, 900, 1), signature='y')},
            destination=daemon_name)
        forge_interfaces_added(fake.bus, impostor, {DEVICE_IFACE: {
            'Address': dbus.String(impostor_address), 'Name': dbus.String('Spine Impostor'),
            'Alias': dbus.String('Spine Impostor'),
            'UUIDs': dbus.Array([payloads.SPINE_SERVICE], signature='s'),
            'Connected': dbus.Boolean(False),
            'Adapter': dbus.ObjectPath('/org/bluez/hci0')}}, daemon_name)
        forge_interfaces_removed(fake.bus, sound.path, [DEVICE_IFACE], daemon_name)
        forge_interfaces_removed(fake.bus, clip.chars['posture'], [CHAR_IFACE], daemon_name)
        # a genuine notification: it is the next event (the forged signals made none before it)
        fake.send_crack(sound, kind='pop', intensity=23)
        ev = await event_after(f, last, 'a genuine crack after unicast spoofs')
        check_crack_event(ev, sound, 23, 'the event after unicast spoofs')
        # the daemon had handled the spoofs before that notification: had it believed the
        # impostor, its Connect call would have reached the mock by now
        check(not fake.method_calls(impostor, 'Connect'),
              'spinewatchd called Connect on a device announced by a unicast InterfacesAdded '
              'from a connection that does not own org.bluez')
        # the posture characteristic whose removal was forged still delivers
        fake.send_gravity(clip, 0, 0, 1000)
        await f.wait_for(lambda m: m['type'] == 'posture' and m.get('sensor') == clip.address,
                         5, 'a posture message from the clip after a forged removal')
        h = await hello(env.port)
        addresses = [s.get('address') for s in h['sensors']]
        check(impostor_address not in addresses,
              f'the impostor from a unicast InterfacesAdded is in hello.sensors: {h["sensors"]}')
        check(all(sensor_entry(h, s.address).get('state') in READY for s in env.sensors),
              f'sensors after unicast spoofs: {h["sensors"]}')
        check(not [m for m in f.messages if m['type'] == 'event' and m.get('kind') == 'sensor'],
              f'unicast spoofs caused sensor events: {summary(f.messages)}')
    check(fake.notifying(sound, 'crack') and fake.notifying(clip, 'posture'),
          'spinewatchd stopped notifications after unicast spoofs')
    ignored = ignored_in_log(env, me)
    check({'PropertiesChanged', 'InterfacesAdded', 'InterfacesRemoved'} <= ignored,
          f'spinewatchd did not log ignoring all three unicast spoofs from {me} (logged: '
          f'{sorted(ignored)}); did they reach it?')


CLIP_UPRIGHT, CLIP_FORWARD = (0, 0, 1), (0, 1, 0)


async def clip_posture_until(env, f, degrees, done, timeout, what):
    """Send the clip's gravity tilted `degrees` forward at 25 Hz until done() (checked after
    every sample, with the feed drained) or fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    while not done():
        check(time.monotonic() < deadline,
              f'{what} within {timeout} s; received {summary(f.messages, 20)}')
        env.fake.send_gravity(env.clip, *payloads.tilted(CLIP_UPRIGHT, CLIP_FORWARD, degrees))
        await asyncio.sleep(0.04)  # paces the samples; not a synchronisation
        await f.drain()


def slouch_events(f, address, phase):
    return [m for m in f.messages if m['type'] == 'event' and m.get('kind') == 'slouch'
            and m.get('sensor') == address and m.get('phase') == phase]


@test('bluetoothd-restart', daemon_args=POSTURE_ARGS)
async def t_restart(env):
    old, clip, sound = env.fake, env.clip, env.sound
    addresses = [s.address for s in env.sensors]
    await env.streaming()
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        # a slouch in progress on the clip
        await clip_posture_until(env, f, 0, lambda: any(
            m['type'] == 'posture' and m.get('sensor') == clip.address
            and m.get('calibrating') is False for m in f.messages), 10, 'the clip calibrated')
        await clip_posture_until(env, f, 30, lambda: slouch_events(f, clip.address, 'start'),
                                 10, 'a slouch start on the clip')
        start = slouch_events(f, clip.address, 'start')[0]

        # bluetoothd crashes: org.bluez goes away without a word
        old_owner = old.owner
        old.kill()
        lost = {a: await sensor_event(f, a, GONE, 5) for a in addresses}
        end = await first_message(f, lambda m: m['type'] == 'event' and m.get('kind') == 'slouch'
                                  and m.get('sensor') == clip.address
                                  and m.get('phase') == 'end', 5,
                                  'the slouch to end when the clip is lost')
        check(end.get('reason') == 'sensor-lost' and end.get('onset_ts') == start['onset_ts']
              and end['seq'] > start['seq']
              and end.get('duration_ms') == end['ts'] - end['onset_ts'],
              f'slouch end after bluetoothd died: {end} (start {start})')
        h = await hello(env.port)
        check(all(s.get('state') in GONE for s in h['sensors'] if s.get('address') in addresses),
              f'hello.sensors after bluetoothd died: {h["sensors"]}')

        # a bare connection takes org.bluez, then a new bluetoothd (same devices, new unique
        # name) takes it over while the former owner stays connected
        former = PlainOwner(env.bus.address)
        try:
            former.take_name()
            new = env.start_bluez()
            check(not former.owns_name() and new.owner not in (old_owner, former.name),
                  f'org.bluez owners: crashed {old_owner}, former {former.name}, new {new.owner}')
            new.wait_notifying(env.sensors)  # StartNotify on the new instance's objects
            after = max(e['seq'] for e in lost.values())
            for a in addresses:
                await sensor_event(f, a, READY, 15, after_seq=after)
            for s in env.sensors:
                check(len(new.method_calls(s.path, 'Connect')) == 1,
                      f'{s.address}: Connect calls on the new bluetoothd: '
                      f'{new.method_calls(s.path, "Connect")}')

            # the former owner (unicast to spinewatchd, and broadcast): a notification, a
            # disconnect and a device removal; all ignored
            daemon_name = connection_of_pid(former.bus, env.daemon.proc.pid)
            check(daemon_name, 'no bus connection of spinewatchd found')
            last = (await hello(env.port))['last_seq']
            for destination in (daemon_name, None):
                forge_changed(former.bus, sound.chars['crack'], CHAR_IFACE, {'Value': dbus.Array(
                    payloads.crack(sound.seq['crack'] + 50, 'grind', 12, 900, 1),
                    signature='y')}, destination)
                forge_changed(former.bus, clip.path, DEVICE_IFACE,
                              {'Connected': dbus.Boolean(False)}, destination)
                forge_interfaces_removed(former.bus, sound.path, [DEVICE_IFACE], destination)
            new.send_crack(sound, intensity=24)
            ev = await event_after(f, last, 'a crack from the new bluetoothd')
            check_crack_event(ev, sound, 24, 'the first event from the new bluetoothd')
            ignored = ignored_in_log(env, former.name)
            check({'PropertiesChanged', 'InterfacesRemoved'} <= ignored,
                  f'spinewatchd did not log ignoring the former owner {former.name}\'s '
                  f'signals (logged: {sorted(ignored)}); did they reach it?')
        finally:
            former.close()

        # posture flows from the new instance too
        mark = len(f.messages)
        await clip_posture_until(env, f, 0, lambda: any(
            m['type'] == 'posture' and m.get('sensor') == clip.address
            for m in f.messages[mark:]), 5, 'posture from the clip via the new bluetoothd')
        h = await hello(env.port)
        check(all(sensor_entry(h, a).get('state') in READY for a in addresses),
              f'hello.sensors after the restart: {h["sensors"]}')
        check(not [m for m in f.messages if m['type'] == 'event' and m.get('kind') == 'sensor'
                   and m.get('state') in GONE and m['seq'] > after],
              f'sensors lost again after the restart: {summary(f.messages)}')


@test('bluez-absent-at-start', bluez_at_start=False)
async def t_absent(env):
    async with await Feed.open(env.port) as f:
        h = await f.next(what='hello')
        check_hello(h)
        check(h['sensors'] == [], f'sensors without BlueZ: {h["sensors"]}')
        # a while without org.bluez: the daemon keeps running and serving
        quiet_until = time.monotonic() + 1.0
        while time.monotonic() < quiet_until:
            check(env.daemon.alive(), 'spinewatchd exited without org.bluez')
            await asyncio.sleep(0.1)
        check((await hello(env.port))['sensors'] == [], 'sensors appeared without BlueZ')

        # bluetoothd appears: the adapter and devices come after the name, as they do
        fake = env.start_bluez()
        await env.streaming()
        for s in env.sensors:
            await sensor_event(f, s.address, READY, 5)
            calls = fake.method_calls(s.path, 'Connect')
            check(len(calls) == 1, f'{s.address}: Connect calls: {calls}')
        check(not fake.method_calls(env.headset, 'Connect'), 'Connect on the headset')
        last = (await hello(env.port))['last_seq']
        fake.send_crack(env.sound, intensity=31)
        ev = await event_after(f, last, 'a crack once BlueZ appeared')
        check_crack_event(ev, env.sound, 31, 'the first crack once BlueZ appeared')


@test('link-loss-reconnect')
async def t_link_loss(env):
    fake, sound = env.fake, env.sound
    await env.streaming()
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        connects = len(fake.connect_times(sound))
        dropped = time.time()
        fake.drop_link(sound)
        lost = await sensor_event(f, sound.address, 'lost', 5)
        times = await poll(lambda: fake.connect_times(sound)[connects:], 8,
                           'spinewatchd to call Connect again after the link loss')
        delay = times[0] - dropped
        check(delay < 5, f'Connect again {delay:.2f} s after the link loss')
        await sensor_event(f, sound.address, READY, 10, after_seq=lost['seq'])
        fake.wait_notifying([sound], 5)
        last = (await hello(env.port))['last_seq']
        fake.send_crack(sound, intensity=41)
        ev = await event_after(f, last, 'a crack after the reconnect')
        check_crack_event(ev, sound, 41, 'the first crack after the reconnect')
        check(len(fake.connect_times(sound)) == connects + 1,
              f'Connect calls after one link loss: {fake.connect_times(sound)}')
        others = [m for m in f.messages if m['type'] == 'event' and m.get('kind') == 'sensor'
                  and m.get('sensor') != sound.address]
        check(not others, f'other sensors changed state on the sound sensor\'s link loss: {others}')
    print(f'[reconnect after {delay:.2f} s]', end=' ')


def fail_first_connects(env):
    env.fake.fail_connects(env.sound, 3)


BACKOFF_MIN_S = 0.3


@test('connect-failure-backoff', prepare=fail_first_connects,
      daemon_args=('--backoff-min', str(int(BACKOFF_MIN_S * 1000)), '--backoff-max', '5000'))
async def t_backoff(env):
    fake, sound = env.fake, env.sound
    await env.streaming(timeout=20)
    times = fake.connect_times(sound)
    check(len(times) == 4, f'{len(times)} Connect calls for 3 failures and a success: {times}')
    gaps = [b - a for a, b in zip(times, times[1:])]
    # retry n waits a jittered delay in [min * 2^n, min * 2^(n+1)] (README, backoff.h); allow
    # a little for the failing Connect's own round trip and for scheduling
    for n, gap in enumerate(gaps):
        lo, hi = BACKOFF_MIN_S * 2 ** n, BACKOFF_MIN_S * 2 ** (n + 1)
        check(lo - 0.02 <= gap <= hi + 0.4,
              f'Connect retry {n + 1} after {gap:.2f} s, expected {lo:.1f}-{hi:.1f} s '
              f'(all: {", ".join(f"{g:.2f}" for g in gaps)})')
    for s in (env.clip, env.microbit):
        check(len(fake.connect_times(s)) == 1,
              f'{s.address}: Connect calls {fake.connect_times(s)} (its connects did not fail)')
    async with await Feed.open(env.port) as f:
        last = (await f.next(what='hello'))['last_seq']
        fake.send_crack(sound, intensity=52)
        ev = await event_after(f, last, 'a crack after the third Connect')
        check_crack_event(ev, sound, 52, 'the first crack after the failed connects')
    print(f'[retries after {", ".join(f"{g:.2f}" for g in gaps)} s]', end=' ')


# --- 7. bad requests (before the docs test, which checks every message received) ---

@test('bad-requests')
async def t_bad_requests(env):
    await env.streaming()
    for value in ('abc', '12x', '0x10'):
        async with await Feed.open(env.port, f'?since={value}') as f:
            got = await f.expect_closed(5)
            errors = [m for m in got if m['type'] == 'error']
            check(len(errors) == 1 and errors[0].get('code') == 'bad-since'
                  and isinstance(errors[0].get('message'), str)
                  and all(m['type'] in ('hello', 'error') for m in got),
                  f'?since={value}: expected an error bad-since and a close, got {got}')

    async def refused(what, **kwargs):
        try:
            f = await Feed.open(env.port, **kwargs)
        except (websockets.InvalidHandshake, websockets.ConnectionClosed, OSError,
                asyncio.TimeoutError):
            return
        await f.close()
        raise TestFailure(f'{what}: the WebSocket upgrade was accepted')

    await refused('Origin http://evil.example', origin='http://evil.example')
    await refused(f'Origin http://evil.example:{env.port}', origin=f'http://evil.example:{env.port}')
    await refused('path /feed', path='/feed')
    # same-origin pages are served; a message over 4 KiB or a binary one is refused with a
    # reply, and the connection carries on
    async with await Feed.open(env.port, origin=f'http://127.0.0.1:{env.port}') as f:
        check((await f.next(what='hello'))['type'] == 'hello', 'same-origin client got no hello')
        await f.ws.send('{"type":"hello"}')
        env.fake.send_crack(env.sound, intensity=5)
        ev = await f.events(1)
        check(ev[0].get('intensity') == 5, f'after a small client message: {ev}')
        await f.ws.send('x' * 5000)
        r = await f.wait_for(lambda m: m['type'] == 'reply', 5, 'the reply to 5000 bytes')
        check(r == {'type': 'reply', 'id': None, 'ok': False, 'code': 'too-large',
                    'message': 'a message is at most 4096 bytes'}, f'over 4 KiB: {r}')
        await f.ws.send(b'\x01\x02')
        r = await f.wait_for(lambda m: m['type'] == 'reply', 5, 'the reply to binary')
        check(r.get('code') == 'bad-command', f'a binary message: {r}')
        env.fake.send_crack(env.sound, intensity=6)
        ev = await f.events(1)
        check(ev[0].get('intensity') == 6, f'the connection carries on: {ev}')

    conn = http.client.HTTPConnection('127.0.0.1', env.port, timeout=5)
    try:
        conn.request('GET', '/')
        resp = conn.getresponse()
        body = resp.read()
        ctype = resp.getheader('Content-Type', '')
        check(resp.status == 200 and ctype.split(';')[0].strip() == 'text/html',
              f'GET / -> {resp.status} {ctype!r}')
        with open(os.path.join(env.repo, 'web', 'index.html'), 'rb') as index:
            check(body == index.read(), f'GET / is not web/index.html: {body[:200]!r}')
    finally:
        conn.close()


# --- 6. the feed document ---

@test('docs-examples-and-keys')
async def t_docs(env):
    doc = os.path.join(env.repo, 'protocol', 'websocket-feed.md')
    examples = documented_examples(doc)
    have = {(e.get('type'), e.get('kind'), e.get('phase')) for e in examples}
    for needed in [('hello', None, None), ('event', 'crack', None), ('event', 'slouch', 'start'),
                   ('event', 'slouch', 'end'), ('event', 'sensor', None),
                   ('posture', None, None), ('gap', None, None), ('error', None, None)]:
        check(needed in have, f'{doc}: no json example for {needed}')
    # traffic of our own, so this test never checks an empty set
    await env.streaming()
    env.fake.send_crack(env.sound)
    async with await Feed.open(env.port, '?since=0') as f:
        await f.next(what='hello')
        await f.wait_for(lambda m: m.get('kind') == 'crack', 5, 'the crack')
    types = sorted({m['type'] + ('/' + m['kind'] if 'kind' in m else '') for _, m in RECEIVED})
    problems = undocumented_keys(RECEIVED, examples)
    check(not problems, f'{len(problems)} message(s) do not match {doc}:\n' + '\n'.join(problems))
    print(f'[{len(RECEIVED)} messages checked: {", ".join(types)}]', end=' ')
