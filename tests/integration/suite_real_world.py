"""
tests/integration/suite_real_world.py - issue 3 ("sensors in the real world") against the
independent fake BlueZ (python-dbusmock's bluez5 template + fakebluez.py): bluetoothd killed and
restarted mid-stream, adapter removed and re-added and powered off and on, disconnect/reconnect
loops without duplicate subscriptions, 8 sensors at once, the AcquireNotify path and its
fallbacks, the pairing flow through our Agent1, garbage between valid notifications, discovery
(filter, adoption by name, allow and deny lists), battery and RSSI in the sensor status.

Registered in suite.TESTS (run.py imports this module). Every feed connection checks that event
seqs are strictly increasing (feed.Feed); tests also assert it explicitly with check_seqs().
"""

import asyncio
import time

import dbus

import payloads
from fakebluez import DEVICE_IFACE
from feed import (Feed, check_same_events, check_seqs, hello, sensor_entry, summary,
                  wait_sensor_states)
from procs import TestFailure, check
from suite import READY, poll, sensor_event, test

# quick retries so that reconnect tests stay short (contract options)
FAST = ['--backoff-min', '200', '--backoff-max', '1000']
AGENT_PATH = '/io/spinewatch/agent'
STATES = {'discovered', 'connecting', 'pairing', 'resolving', 'subscribed', 'streaming', 'lost',
          'waiting', 'gone'}
HEADSET_UUIDS = ['0000110b-0000-1000-8000-00805f9b34fb', '0000110e-0000-1000-8000-00805f9b34fb']


# --- helpers -------------------------------------------------------------------------------------

class Tags:
    """Unique crack tags (sent as duration_ms) so that every event names its notification."""

    def __init__(self, start=1000):
        self.next = start

    def __call__(self):
        self.next += 1
        return self.next


def crack_events(f, since=0):
    return [m for m in f.messages[since:] if m['type'] == 'event' and m.get('kind') == 'crack']


def sensor_state_events(f, address=None):
    return [m for m in f.messages if m['type'] == 'event' and m.get('kind') == 'sensor'
            and (address is None or m.get('sensor') == address)]


def check_sensor_events(f):
    """Every sensor event has a known state and the reason (a string) of the change."""
    for m in sensor_state_events(f):
        check(m.get('state') in STATES and isinstance(m.get('reason'), str),
              f'sensor event with an unknown state or without a reason string: {m}')


def check_status(msg):
    """A `status` message as in the contract."""
    check(isinstance(msg.get('ts'), int) and isinstance(msg.get('sensor'), str)
          and msg.get('state') in STATES
          and all(isinstance(msg.get(k), int) for k in ('received', 'lost', 'rejected'))
          and msg.get('notify') in ('acquire', 'start', None)
          and (msg.get('battery') is None or isinstance(msg.get('battery'), int))
          and (msg.get('rssi') is None or isinstance(msg.get('rssi'), int))
          and {'battery', 'rssi', 'notify'} <= set(msg),
          f'status message does not match the contract: {msg}')


async def send_cracks(env, f, sensors, tags, timeout=5, fake=None):
    """One crack per entry of `sensors` (in that order, tagged), then wait for all of them:
    each exactly once as a crack event of the right sensor, each sensor's in the order sent.
    (Different sensors' notifications arrive on different sockets or signals, which BlueZ does
    not order among themselves: only each sensor's own order is a contract.) Returns the
    events."""
    fake = fake or env.fake
    mark = len(f.messages)
    sent = []
    for s in sensors:
        tag = tags()
        fake.send_crack(s, intensity=tag % 101, duration_ms=tag)
        sent.append((s.address, tag))
    want = {tag for _, tag in sent}

    def seen():
        return {m.get('duration_ms') for m in crack_events(f, mark)}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not want <= seen():
        remaining = deadline - loop.time()
        if remaining <= 0:
            missing = sorted(want - seen())
            raise TestFailure(f'{len(missing)} of {len(sent)} cracks never arrived as events '
                              f'(tags {missing[:10]}); received {summary(f.messages, 20)}')
        await f.drain(min(remaining, 0.05))
    await f.drain(0.05)  # a duplicate would come right behind
    got = [m for m in crack_events(f, mark) if m.get('duration_ms') in want]
    check(len(got) == len(sent),
          f'{len(sent)} cracks sent, {len(got)} events: duplicates? {summary(got, 20)}')
    def per_sensor(pairs):
        out = {}
        for address, tag in pairs:
            out.setdefault(address, []).append(tag)
        return out
    got_pairs = [(m.get('sensor'), m.get('duration_ms')) for m in got]
    check(per_sensor(got_pairs) == per_sensor(sent),
          f'crack events {got_pairs} do not match what was sent {sent} (per sensor, in order)')
    check_seqs(f.messages, f'{f.label} events')
    return got


def subscription_counts(fake, sensor):
    """{connection number: {role: successful StartNotify/AcquireNotify calls}}."""
    out = {}
    for conn, role, call, result in fake.subscriptions(sensor):
        if call in ('StartNotify', 'AcquireNotify') and result == 'ok':
            out.setdefault(conn, {}).setdefault(role, 0)
            out[conn][role] += 1
    return out


def check_one_subscription_each(fake, sensor, connections):
    """Exactly one successful subscription per characteristic in each of `connections`
    (numbers of the fake's successful Connects) and none in any other."""
    counts = subscription_counts(fake, sensor)
    want = {c: {role: 1 for role in sensor.chars} for c in connections}
    check(counts == want, f'{sensor.address}: successful subscriptions per connection '
          f'{counts}, expected one per characteristic per connection {want}; log '
          f'{fake.subscriptions(sensor)}')


async def wait_states(env, sensors, state='streaming', timeout=15):
    return await wait_sensor_states(env.port, [s.address for s in sensors], state, timeout)


async def all_streaming(env, sensors=None, timeout=15, fake=None):
    """Every sensor subscribed at the fake and READY (subscribed, or streaming if data came)
    per a hello; returns the hello."""
    sensors = env.sensors if sensors is None else sensors
    fake = fake or env.fake
    t0 = time.monotonic()
    await poll(lambda: all(fake.notifying(s, r) for s in sensors for r in s.chars), timeout,
               'spinewatchd to subscribe to every characteristic '
               f'({[s.address for s in sensors]})')
    return await wait_states(env, sensors, READY,
                             max(1.0, timeout - (time.monotonic() - t0)))


def agent_registrations(fake, daemon_name):
    regs = fake.agents()['agents']
    return [r for r in regs if r['sender'] == daemon_name]


def check_agent(fake, daemon_name):
    regs = fake.agents()['agents']
    mine = [r for r in regs if r['sender'] == daemon_name]
    check(len(mine) == 1 and mine[0]['path'] == AGENT_PATH
          and mine[0]['capability'] == 'NoInputNoOutput',
          f'expected one RegisterAgent({AGENT_PATH}, NoInputNoOutput) from spinewatchd '
          f'({daemon_name}), got {regs}')
    check(not fake.method_calls('/org/bluez', 'RequestDefaultAgent'),
          'spinewatchd called RequestDefaultAgent (the contract says it does not)')


def daemon_bus_name(env):
    """spinewatchd's unique name on the bus. It listens on its port before it connects to
    the bus, so right after start it may not be there yet: wait up to 5 s."""
    from fakebluez import connection_of_pid
    name = None
    for _ in range(250):
        name = connection_of_pid(env.fake.bus, env.daemon.proc.pid)
        if name:
            break
        time.sleep(0.02)
    check(name, 'no bus connection of spinewatchd found')
    return name


# --- 1. bluetoothd killed and restarted mid-stream -----------------------------------------------

def no_devices(_env, _fake):
    return []


@test('rw-bluetoothd-restart-midstream', daemon_args=FAST)
async def t_restart_midstream(env):
    old, sound = env.fake, env.sound
    addresses = [s.address for s in env.sensors]
    tags = Tags()
    await all_streaming(env)
    daemon_name = daemon_bus_name(env)
    check_agent(old, daemon_name)
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        await send_cracks(env, f, [sound] * 3, tags)

        # a steady stream of cracks (every 20 ms) while bluetoothd dies and comes back
        sent = []  # (tag, time, how) of every crack the current fake accepted
        stop = asyncio.Event()

        async def stream():
            while not stop.is_set():
                tag = tags()
                try:
                    how = env.fake.send_crack(sound, intensity=tag % 101, duration_ms=tag)
                    sent.append((tag, time.monotonic(), how))
                except dbus.exceptions.DBusException:
                    pass  # bluetoothd is down or the sensor not connected yet
                await asyncio.sleep(0.02)
        streamer = asyncio.ensure_future(stream())
        try:
            await asyncio.sleep(0.4)
            killed = time.monotonic()
            old.kill()
            for a in addresses:
                await f.wait_for(lambda m, a=a: m['type'] == 'event' and m.get('kind') == 'sensor'
                                 and m.get('sensor') == a and m.get('state') in ('lost', 'gone'),
                                 5, f'{a} lost or gone when bluetoothd died')
            after_loss = max(m['seq'] for m in sensor_state_events(f))

            # the new bluetoothd knows no devices until discovery finds them (what a restarted
            # bluetoothd does with unpaired LE devices)
            new = env.start_bluez(no_devices)
            await poll(lambda: new.adapter_calls('StartDiscovery'), 10,
                       'spinewatchd to start discovery on the new bluetoothd')
            env.sensors = type(env).standard_devices(env, new)
            for a in addresses:
                await sensor_event(f, a, READY, 15, after_seq=after_loss)
            resumed = time.monotonic()
            await poll(lambda: [t for t, when, how in sent if when > resumed + 0.3], 5,
                       'cracks sent through the new bluetoothd')
            await asyncio.sleep(0.3)
        finally:
            stop.set()
            await streamer
        last_tag = tags()
        new.send_crack(sound, intensity=7, duration_ms=last_tag)
        await f.wait_for(lambda m: m.get('kind') == 'crack' and m.get('duration_ms') == last_tag,
                         5, 'the last crack through the new bluetoothd')
        await f.drain(0.2)

        got = [m.get('duration_ms') for m in crack_events(f)]
        dups = sorted({t for t in got if got.count(t) > 1})
        check(not dups, f'cracks delivered twice across the restart: tags {dups}')
        must = [t for t, when, how in sent
                if when < killed - 0.3 or when > resumed + 0.1]
        missing = [t for t in must if t not in got]
        check(not missing, f'{len(missing)} cracks sent while everything was up never arrived '
              f'(tags {missing[:10]}); sent {len(sent)}, got {len(got)}')
        check_seqs(f.messages, 'events across the bluetoothd restart')
        check_sensor_events(f)
        # the new bluetoothd: agent registered again, one Connect and one subscription each
        check_agent(new, daemon_name)
        for s in env.sensors:
            check(len(new.connect_times(s)) == 1,
                  f'{s.address}: Connect calls on the new bluetoothd {new.connect_times(s)}')
            check_one_subscription_each(new, s, [1])
        await poll(lambda: not new.discovering(), 5,
                   'spinewatchd to stop discovery once every sensor streams again')
        h = await hello(env.port)
        check(all(sensor_entry(h, a).get('state') in READY for a in addresses)
              and sensor_entry(h, sound.address).get('state') == 'streaming',
              f'hello.sensors after the restart: {h["sensors"]}')
    print(f'[{len(sent)} cracks streamed across the restart]', end=' ')


# --- 2. adapter removed and re-added; powered off and on -----------------------------------------

@test('rw-adapter-removed-readded', daemon_args=FAST)
async def t_adapter_removed(env):
    fake, sound = env.fake, env.sound
    addresses = [s.address for s in env.sensors]
    tags = Tags()
    await all_streaming(env)
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        await send_cracks(env, f, [sound, sound], tags)
        fake.remove_adapter('hci0')
        for a in addresses:
            await f.wait_for(lambda m, a=a: m['type'] == 'event' and m.get('kind') == 'sensor'
                             and m.get('sensor') == a and m.get('state') in ('lost', 'gone'),
                             5, f'{a} lost or gone when its adapter went away')
        mark = max(m['seq'] for m in sensor_state_events(f))
        h = await hello(env.port)
        streaming = [s for s in h['sensors'] if s.get('state') in READY]
        check(not streaming, f'sensors still streaming without an adapter: {streaming}')
        await asyncio.sleep(0.5)
        check(env.daemon.alive(), 'spinewatchd died when the adapter went away')

        # plugged in again: the adapter, then the devices as bluetoothd re-creates them
        fake.add_adapter('hci0')
        for s in env.sensors:
            fake.readd_sensor(s)
        for a in addresses:
            await sensor_event(f, a, READY, 15, after_seq=mark)
        await all_streaming(env)
        await send_cracks(env, f, [sound, sound, sound], tags)
        for s in env.sensors:
            check(len(fake.connect_times(s)) == 1,
                  f'{s.address}: Connect calls on the re-created device {fake.connect_times(s)}')
            check_one_subscription_each(fake, s, [1])
        check_sensor_events(f)
        check_seqs(f.messages)


@test('rw-adapter-power-cycle', daemon_args=FAST)
async def t_power_cycle(env):
    fake, sound = env.fake, env.sound
    addresses = [s.address for s in env.sensors]
    tags = Tags()
    await all_streaming(env)
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        await send_cracks(env, f, [sound], tags)
        fake.set_powered(False)
        for a in addresses:
            await sensor_event(f, a, 'lost', 5)
        mark = max(m['seq'] for m in sensor_state_events(f))
        await asyncio.sleep(1.0)  # off for a while: retries (if any) fail with NotReady
        h = await hello(env.port)
        check(not [s for s in h['sensors'] if s.get('state') in READY],
              f'sensors streaming while the adapter is off: {h["sensors"]}')
        fake.set_powered(True)
        for a in addresses:
            await sensor_event(f, a, READY, 10, after_seq=mark)
        await all_streaming(env)
        await send_cracks(env, f, [sound, sound], tags)
        for s in env.sensors:
            counts = subscription_counts(fake, s)
            last = max(counts)
            check(set(counts) == {1, last} and counts[1] == counts[last] == {r: 1 for r in s.chars},
                  f'{s.address}: subscriptions per connection after the power cycle {counts}')
        check_sensor_events(f)
        check_seqs(f.messages)


# --- 3. disconnect/reconnect loops ---------------------------------------------------------------

@test('rw-reconnect-loops', daemon_args=FAST, deadline=90)
async def t_reconnect_loops(env):
    fake, sound, clip = env.fake, env.sound, env.clip
    tags = Tags()
    await all_streaming(env)
    cycles = 5
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        await send_cracks(env, f, [sound], tags)
        for cycle in range(cycles):
            after = f.last_seq or 0
            # alternate link loss and bluetoothd-side disconnects, on two sensors at once
            if cycle % 2 == 0:
                fake.drop_link(sound)
            else:
                fake.obj(sound.path).Disconnect(dbus_interface=DEVICE_IFACE, timeout=5)
            fake.drop_link(clip)
            for s in (sound, clip):
                lost = await sensor_event(f, s.address, 'lost', 5, after_seq=after)
                await sensor_event(f, s.address, READY, 10, after_seq=lost['seq'])
            await poll(lambda: fake.notifying(sound, 'crack') and fake.notifying(clip, 'posture'),
                       5, 'the subscriptions after the reconnect')
            await send_cracks(env, f, [sound, sound], tags)
        for s in (sound, clip):
            check(len(fake.connect_times(s)) == cycles + 1,
                  f'{s.address}: {len(fake.connect_times(s))} Connect calls for {cycles} '
                  f'reconnects')
            check_one_subscription_each(fake, s, range(1, cycles + 2))
        # the other sensor was not disturbed
        others = sensor_state_events(f, env.microbit.address)
        check(not others, f'the micro:bit changed state: {others}')
        check_sensor_events(f)
        check_seqs(f.messages)
        states = [m['state'] for m in sensor_state_events(f, sound.address)]
        check(states.count('lost') == cycles and states[-1] in READY,
              f'sound sensor states over {cycles} cycles: {states}')


# --- 4. eight sensors ----------------------------------------------------------------------------

def eight_sensors(env, fake):
    sensors = []
    for i in range(8):
        kind = 'sound' if i % 2 == 0 else 'combined'
        sensors.append(fake.add_sensor(f'C0:FF:EE:00:08:{i + 1:02X}', f'Spine {i + 1}', kind))
    env.headset = fake.add_device('11:22:33:44:55:66', 'Headphones', HEADSET_UUIDS)
    return sensors


@test('rw-eight-sensors', populate=eight_sensors)
async def t_eight(env):
    tags = Tags()
    h = await all_streaming(env, timeout=20)
    entries = [sensor_entry(h, s.address) for s in env.sensors]
    check(len([e for e in h['sensors'] if e.get('state') in READY]) == 8
          and all(e.get('profile') == 'spinewatch' for e in entries),
          f'hello.sensors with 8 sensors: {h["sensors"]}')
    check(all(e.get('notify') == 'acquire' for e in entries),
          f'notify paths of the 8 sensors: {[e.get("notify") for e in entries]}')
    async with await Feed.open(env.port) as f, await Feed.open(env.port) as g:
        await f.next(what='hello')
        await g.next(what='hello')
        # interleaved bursts: 5 cracks from each of the 8
        order = [s for _ in range(5) for s in env.sensors]
        await send_cracks(env, f, order, tags)
        h = await wait_states(env, env.sensors, 'streaming', 5)
        check(len([e for e in h['sensors'] if e.get('state') == 'streaming']) == 8,
              f'hello.sensors after cracks from all 8: {h["sensors"]}')
        await g.drain(0.3)
        check([m.get('duration_ms') for m in crack_events(g)] ==
              [m.get('duration_ms') for m in crack_events(f)],
              'the two clients got different crack events')
        check_same_events(f, g)
        # posture from the four combined sensors
        combined = [s for s in env.sensors if 'posture' in s.chars]
        mark = len(f.messages)
        deadline = time.monotonic() + 5
        while {m.get('sensor') for m in f.messages[mark:] if m['type'] == 'posture'} != \
                {s.address for s in combined}:
            check(time.monotonic() < deadline, f'posture from the combined sensors: '
                  f'{summary(f.messages[mark:], 20)}')
            for s in combined:
                env.fake.send_gravity(s, 0, 0, 1000)
            await f.drain(0.04)
        check(not env.fake.method_calls(env.headset, 'Connect'), 'Connect on the headset')
        changes = [m for m in sensor_state_events(f) if m.get('state') != 'streaming']
        check(not changes, f'state changes while 8 sensors streamed: {changes}')
        check_seqs(f.messages)


# --- 5. AcquireNotify and its fallbacks ----------------------------------------------------------

def notify_variants(env, fake):
    env.acq = fake.add_sensor('C0:FF:EE:00:05:01', 'Spine Acquire', 'sound', acquire='ok')
    env.nosup = fake.add_sensor('C0:FF:EE:00:05:02', 'Spine NotSupported', 'sound',
                                acquire='NotSupported')
    env.noperm = fake.add_sensor('C0:FF:EE:00:05:03', 'Spine NotPermitted', 'sound',
                                 acquire='NotPermitted')
    env.indicate = fake.add_sensor('C0:FF:EE:00:05:04', 'Spine Indicate', 'sound',
                                   flags={'crack': ['indicate']})
    env.nomethod = fake.add_sensor('C0:FF:EE:00:05:05', 'Spine Old BlueZ', 'sound',
                                   acquire='absent')
    env.clip = fake.add_sensor('C0:FF:EE:00:05:06', 'Spine Clip', 'posture-clip')
    return [env.acq, env.nosup, env.noperm, env.indicate, env.nomethod, env.clip]


def calls_of(fake, sensor, call):
    return [e for e in fake.subscriptions(sensor) if e[2] == call]


@test('rw-acquire-notify-and-fallbacks', daemon_args=FAST, populate=notify_variants)
async def t_acquire(env):
    fake = env.fake
    tags = Tags()
    h = await all_streaming(env)
    want = {env.acq: 'acquire', env.clip: 'acquire', env.nosup: 'start', env.noperm: 'start',
            env.indicate: 'start', env.nomethod: 'start'}
    got = {s.address: sensor_entry(h, s.address).get('notify') for s in want}
    check(got == {s.address: w for s, w in want.items()},
          f'hello notify per sensor {got}, expected {[(s.name, w) for s, w in want.items()]}')
    for s, path in want.items():
        check(fake.notify_path(s, next(iter(s.chars))) == path,
              f'{s.name}: the fake sees notify path {fake.notify_path(s, next(iter(s.chars)))}')
    # the fast path: AcquireNotify once, never StartNotify
    for s in (env.acq, env.clip):
        check(len(calls_of(fake, s, 'AcquireNotify')) == 1 and not calls_of(fake, s, 'StartNotify'),
              f'{s.name}: subscription calls {fake.subscriptions(s)}')
    # the fallbacks: AcquireNotify failed (or was skipped for indicate-only), then StartNotify
    for s, err in ((env.nosup, 'NotSupported'), (env.noperm, 'NotPermitted')):
        check([e[2:] for e in fake.subscriptions(s)] ==
              [['AcquireNotify', f'org.bluez.Error.{err}'], ['StartNotify', 'ok']],
              f'{s.name}: subscription calls {fake.subscriptions(s)}')
    check([e[2:] for e in fake.subscriptions(env.indicate)] in
          ([['StartNotify', 'ok']],
           [['AcquireNotify', 'org.bluez.Error.NotSupported'], ['StartNotify', 'ok']]),
          f'indicate-only: subscription calls {fake.subscriptions(env.indicate)}')
    check([e[2:] for e in fake.subscriptions(env.nomethod)] == [['StartNotify', 'ok']],
          f'no AcquireNotify method: subscription calls {fake.subscriptions(env.nomethod)}')

    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        sounds = [env.acq, env.nosup, env.noperm, env.indicate, env.nomethod]
        await send_cracks(env, f, sounds * 2, tags)
        check(fake.notify(env.acq, 'crack', payloads.crack(fake.next_seq(env.acq, 'crack'),
                                                           duration_ms=tags())) == 'fd',
              'the fake did not deliver through the acquired fd')
        # a burst on the fd: one event per packet, in order
        await send_cracks(env, f, [env.acq] * 30, tags)
        # posture through the fd too
        mark = len(f.messages)
        deadline = time.monotonic() + 5
        while not [m for m in f.messages[mark:] if m['type'] == 'posture']:
            check(time.monotonic() < deadline, 'no posture message through the acquired fd')
            fake.send_gravity(env.clip, 0, 0, 1000)
            await f.drain(0.04)

        # re-acquired after a reconnect, on the new characteristic object
        after = f.last_seq or 0
        fake.drop_link(env.acq)
        lost = await sensor_event(f, env.acq.address, 'lost', 5, after_seq=after)
        await sensor_event(f, env.acq.address, READY, 10, after_seq=lost['seq'])
        await poll(lambda: fake.notify_path(env.acq, 'crack') == 'acquire', 5,
                   'AcquireNotify again after the reconnect')
        await send_cracks(env, f, [env.acq] * 3, tags)
        check_one_subscription_each(fake, env.acq, [1, 2])
        check(not calls_of(fake, env.acq, 'StartNotify'),
              f'StartNotify on a sensor whose AcquireNotify works: {fake.subscriptions(env.acq)}')
        check(sensor_entry(await hello(env.port), env.acq.address).get('notify') == 'acquire',
              'hello notify after the reconnect')
        statuses = [m for m in f.messages if m['type'] == 'status']
        for m in statuses:
            check_status(m)
        check(any(m.get('sensor') == env.acq.address and m.get('notify') == 'acquire'
                  for m in statuses) or
              await status_for(f, env.acq.address, lambda m: m.get('notify') == 'acquire', 3),
              'no status message with notify "acquire"')
        check_sensor_events(f)
        check_seqs(f.messages)


async def status_for(f, address, predicate, timeout):
    """The first status message (already received or to come) for `address` satisfying
    `predicate`."""
    def match(m):
        return m['type'] == 'status' and m.get('sensor') == address and predicate(m)
    seen = [m for m in f.messages if match(m)]
    if seen:
        return seen[0]
    msg = await f.wait_for(match, timeout, f'a status message for {address}')
    check_status(msg)
    return msg


@test('rw-notify-path-start', daemon_args=['--notify-path', 'start'])
async def t_notify_start(env):
    tags = Tags()
    h = await all_streaming(env)
    for s in env.sensors:
        check(sensor_entry(h, s.address).get('notify') == 'start',
              f'{s.address}: notify {sensor_entry(h, s.address).get("notify")} with '
              '--notify-path start')
        check(not calls_of(env.fake, s, 'AcquireNotify'),
              f'{s.address}: AcquireNotify with --notify-path start: {env.fake.subscriptions(s)}')
        check_one_subscription_each(env.fake, s, [1])
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        await send_cracks(env, f, [env.sound] * 3, tags)


# --- 6. pairing ----------------------------------------------------------------------------------

def pairing_sensors(env, fake):
    # the micro:bit's standard profile: subscriptions refused until paired
    env.locked = fake.add_sensor('C0:FF:EE:00:06:01', 'Spine Locked', 'sound',
                                 pairing={'default': 'NotAuthorized'})
    # NotPermitted from both subscription calls: the AcquireNotify fallback leads to a
    # StartNotify refusal, which means pairing (contract)
    env.strict = fake.add_sensor('C0:FF:EE:00:06:02', 'Spine Strict', 'posture-clip',
                                 pairing={'default': 'NotPermitted',
                                          'agent': 'RequestAuthorization'})
    env.open_sensor = fake.add_sensor('C0:FF:EE:00:06:03', 'Spine Open', 'sound')
    env.headset = fake.add_device('11:22:33:44:55:66', 'Headphones', HEADSET_UUIDS)
    return [env.locked, env.strict, env.open_sensor]


@test('rw-pairing-flow', daemon_args=FAST, populate=pairing_sensors)
async def t_pairing(env):
    fake = env.fake
    tags = Tags()
    daemon_name = daemon_bus_name(env)
    await poll(lambda: agent_registrations(fake, daemon_name), 5, 'RegisterAgent from spinewatchd')
    check_agent(fake, daemon_name)
    await all_streaming(env, timeout=20)
    for s in (env.locked, env.strict):
        props = fake.device_props(s)
        check(props['Paired'] and fake.pair_calls(s) == 1,
              f'{s.name}: Paired {bool(props["Paired"])}, Pair calls {fake.pair_calls(s)}')
        await poll(lambda s=s: fake.device_props(s)['Trusted'], 5, f'{s.name} to be Trusted')
        log = fake.subscriptions(s)
        check([e[3] for e in log if e[2] in ('AcquireNotify', 'StartNotify')][-1] == 'ok'
              and sum(1 for e in log if e[3] == 'ok') == len(s.chars),
              f'{s.name}: subscription calls {log}')
    check(fake.pair_calls(env.open_sensor) == 0
          and not fake.device_props(env.open_sensor)['Paired'],
          'spinewatchd paired a sensor that did not ask for it')
    calls = fake.agents()['calls']
    check(sorted(map(tuple, calls)) ==
          sorted([('RequestConfirmation', env.locked.path, ''),
                  ('RequestAuthorization', env.strict.path, '')]),
          f'agent calls during pairing (method, device, error): {calls}')

    async with await Feed.open(env.port, '?since=0') as f:
        await f.next(what='hello')
        await f.drain(0.3)
        for s in (env.locked, env.strict):
            states = [m['state'] for m in sensor_state_events(f, s.address)]
            check('pairing' in states and states[-1] in READY
                  and states.index('pairing') < len(states) - 1,
                  f'{s.name}: sensor states {states} (expected pairing before streaming)')
        await send_cracks(env, f, [env.locked, env.open_sensor, env.locked], tags)
        mark = len(f.messages)
        deadline = time.monotonic() + 5
        while not [m for m in f.messages[mark:] if m['type'] == 'posture'
                   and m.get('sensor') == env.strict.address]:
            check(time.monotonic() < deadline, 'no posture from the paired clip')
            fake.send_gravity(env.strict, 0, 0, 1000)
            await f.drain(0.04)

        # the agent answers org.bluez's owner only, and only as the contract says
        for method, device, want in (
                ('RequestConfirmation', env.locked.path, ''),
                ('RequestAuthorization', env.locked.path, ''),
                ('AuthorizeService', env.locked.path, ''),
                ('RequestPinCode', env.locked.path, 'org.bluez.Error.Rejected'),
                ('RequestPasskey', env.locked.path, 'org.bluez.Error.Rejected'),
                ('RequestConfirmation', env.headset, 'an error')):  # not a sensor of ours
            err, _reply = fake.call_agent(method, device)
            check(err == want or (want == 'an error' and err),
                  f'agent {method} for {device}, called by org.bluez: expected '
                  f'{want or "success"}, got {err or "success"}')
        stranger = fake.bus  # the test's own connection: not org.bluez's owner
        agent = stranger.get_object(daemon_name, AGENT_PATH, introspect=False)
        for method, args in (('RequestConfirmation', (dbus.ObjectPath(env.locked.path),
                                                      dbus.UInt32(1))),
                             ('RequestAuthorization', (dbus.ObjectPath(env.locked.path),)),
                             ('AuthorizeService', (dbus.ObjectPath(env.locked.path),
                                                   payloads.SPINE_SERVICE))):
            try:
                agent.get_dbus_method(method, 'org.bluez.Agent1')(*args, timeout=5)
            except dbus.exceptions.DBusException as e:
                check('NoReply' not in (e.get_dbus_name() or ''),
                      f'agent {method} from a stranger: no answer ({e})')
                continue
            raise TestFailure(f'spinewatchd\'s agent accepted {method} from '
                              f'{stranger.get_unique_name()}, which does not own org.bluez')
        check(env.daemon.alive(), 'spinewatchd died')
        check_sensor_events(f)
        check_seqs(f.messages)


# --- 7. garbage between valid notifications ------------------------------------------------------

@test('rw-garbage-between-valid', daemon_args=FAST)
async def t_garbage(env):
    fake, sound, clip = env.fake, env.sound, env.clip
    tags = Tags()
    h0 = await all_streaming(env)
    rejected0 = sensor_entry(h0, sound.address).get('rejected')
    check(isinstance(rejected0, int),
          f'rejected counter in hello: {sensor_entry(h0, sound.address)}')
    good = payloads.crack(0, 'pop', 50, 100, 1)

    async def garbage_between(f, kinds):
        """valid, garbage, valid, garbage, ..., valid: the valid ones are the crack events
        (in order), the sensor's state does not change; returns how many were garbage."""
        mark = len(f.messages)
        expected = []
        for kind in kinds + [None]:
            tag = tags()
            seq = fake.send_crack(sound, intensity=tag % 101, duration_ms=tag)
            expected.append(tag)
            if kind is None:
                break
            fake.notify(sound, 'crack', {
                'short': good[:5],                                                # wrong length
                'version': b'\x07' + payloads.crack(seq + 1, duration_ms=tags())[1:],
                'backwards': payloads.crack((seq - 3) & 0xFFFF, duration_ms=tags()),
                'empty': b'',
            }[kind])
        await f.wait_for(lambda m: m.get('duration_ms') == expected[-1], 5,
                         f'the last valid crack after garbage {kinds}')
        await f.drain(0.2)
        changes = [m for m in sensor_state_events(f, sound.address)
                   if m.get('state') != 'streaming' and m in f.messages[mark:]]
        check(not changes, f'garbage {kinds} changed the sensor\'s state: {changes}' +
              (' (an empty notification is a zero-length packet on the AcquireNotify socket, '
               'not a hang-up)' if 'empty' in kinds else ''))
        got = [m.get('duration_ms') for m in crack_events(f, mark)]
        check(got == expected, f'crack events around garbage {kinds}: tags {got}, expected '
              f'{expected} (a notification whose counter went backwards is dropped, issue 3)')
        return len(kinds)

    async def rejected_is(f, want, what):
        st = await status_for(f, sound.address, lambda m: m.get('rejected', -1) >= want, 3)
        check(st.get('rejected') == want, f'status after {what}: {st}, expected rejected {want}')
        entry = sensor_entry(await hello(env.port), sound.address)
        check(entry.get('rejected') == want and entry.get('state') == 'streaming',
              f'hello after {what}: {entry} (rejected was {rejected0})')

    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        await send_cracks(env, f, [sound], tags)
        n = await garbage_between(f, ['short', 'version', 'backwards'])
        # garbage on the posture clip as well: valid samples still give posture messages
        fake.notify(clip, 'posture', payloads.posture(1, 0, 0, 1000)[:7])
        fake.notify(clip, 'posture', payloads.posture(2, 0, 0, 1000, version=9))
        mark = len(f.messages)
        deadline = time.monotonic() + 5
        while not [m for m in f.messages[mark:] if m['type'] == 'posture']:
            check(time.monotonic() < deadline, 'no posture after garbage')
            fake.send_gravity(clip, 0, 0, 1000)
            await f.drain(0.04)
        await rejected_is(f, rejected0 + n, f'{n} garbage notifications')
        check(sensor_entry(await hello(env.port), clip.address).get('rejected', 0) >= 2,
              'posture clip rejected counter after 2 garbage samples')

        # an empty notification (a zero-length packet on the socket) is garbage too
        n += await garbage_between(f, ['empty', 'short'])
        await rejected_is(f, rejected0 + n, f'{n} garbage notifications (2 of them last)')
        check(env.daemon.alive(), 'spinewatchd died')
        check_seqs(f.messages)


# --- 8. discovery, adoption by name, allow and deny ----------------------------------------------

@test('rw-discovery-and-adoption', daemon_args=FAST, populate=no_devices)
async def t_discovery(env):
    fake = env.fake
    tags = Tags()
    await poll(lambda: fake.adapter_calls('StartDiscovery'), 10,
               'spinewatchd to start discovery with no sensor around')
    check(fake.discovering(), 'StartDiscovery did not leave the adapter discovering')
    filt = fake.discovery_filter()
    check(filt is not None and filt.get('Transport') == 'le' and not filt.get('UUIDs'),
          f'discovery filter {filt}: expected Transport "le" and no UUIDs (a micro:bit '
          'advertises none)')
    # found by the scan: a sound sensor, a micro:bit that advertises only its name, a headset
    env.sound = fake.add_sensor('C0:FF:EE:00:07:01', 'Spine Sound', 'sound')
    env.microbit = fake.add_sensor('C0:FF:EE:00:07:02', 'BBC micro:bit [abcde]', 'microbit',
                                   advertise=[])
    env.headset = fake.add_device('11:22:33:44:55:66', 'Headphones', HEADSET_UUIDS)
    env.sensors = [env.sound, env.microbit]
    h = await all_streaming(env)
    check(sensor_entry(h, env.microbit.address).get('profile') == 'microbit',
          f'the micro:bit adopted by name: {sensor_entry(h, env.microbit.address)}')
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        await send_cracks(env, f, [env.sound], tags)
        mark = len(f.messages)
        deadline = time.monotonic() + 5
        while not [m for m in f.messages[mark:] if m['type'] == 'posture'
                   and m.get('sensor') == env.microbit.address]:
            check(time.monotonic() < deadline, 'no posture from the micro:bit')
            fake.send_gravity(env.microbit, 0, 0, 1000)
            await f.drain(0.04)
        await poll(lambda: fake.adapter_calls('StopDiscovery'), 5,
                   'StopDiscovery once every sensor streams')
        await asyncio.sleep(0.5)
        check(len(fake.adapter_calls('StopDiscovery')) == 1 and not fake.discovering(),
              f'StopDiscovery calls {len(fake.adapter_calls("StopDiscovery"))}, discovering '
              f'{fake.discovering()}')
        check(len(fake.adapter_calls('StartDiscovery')) == 1,
              f'StartDiscovery calls {len(fake.adapter_calls("StartDiscovery"))}')
        check(not fake.method_calls(env.headset, 'Connect'), 'Connect on the headset')

        # an adopted sensor lost: discovery again until it streams again
        after = f.last_seq or 0
        fake.drop_link(env.sound)
        lost = await sensor_event(f, env.sound.address, 'lost', 5, after_seq=after)
        await sensor_event(f, env.sound.address, READY, 10, after_seq=lost['seq'])
        await send_cracks(env, f, [env.sound], tags)
        await poll(lambda: len(fake.adapter_calls('StopDiscovery')) == 2
                   and not fake.discovering(), 5,
                   'discovery to run again while the sound sensor was lost, and stop after')
        check(len(fake.adapter_calls('StartDiscovery')) == 2,
              f'StartDiscovery calls {len(fake.adapter_calls("StartDiscovery"))}')
        check_sensor_events(f)
        check_seqs(f.messages)


@test('rw-allow-list', daemon_args=FAST + ['--allow', 'C0:FF:EE:00:00:02'])
async def t_allow(env):
    tags = Tags()
    await all_streaming(env, [env.sound])
    await asyncio.sleep(1.0)  # time enough to connect the others, if it (wrongly) would
    for s in (env.clip, env.microbit):
        check(not env.fake.connect_times(s), f'{s.address} is not on the allow list but was '
              f'connected: {env.fake.connect_times(s)}')
    check(not env.fake.method_calls(env.headset, 'Connect'), 'Connect on the headset')
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        await send_cracks(env, f, [env.sound, env.sound], tags)
    await poll(lambda: not env.fake.discovering(), 5,
               'discovery to stop once the only allowed sensor streams')


@test('rw-deny-list', daemon_args=FAST + ['--deny', 'c0:ff:ee:00:00:01'])
async def t_deny(env):
    tags = Tags()
    await all_streaming(env, [env.sound, env.microbit])
    await asyncio.sleep(1.0)
    check(not env.fake.connect_times(env.clip),
          f'the denied clip was connected: {env.fake.connect_times(env.clip)}')
    h = await hello(env.port)
    streaming = {s['address'] for s in h['sensors'] if s.get('state') in READY}
    check(env.clip.address not in streaming, f'denied clip streaming: {h["sensors"]}')
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        await send_cracks(env, f, [env.sound], tags)


# --- 9. battery and RSSI -------------------------------------------------------------------------

def battery_sensors(env, fake):
    env.sound = fake.add_sensor('C0:FF:EE:00:09:01', 'Spine Sound', 'sound', battery=87)
    fake.set_rssi(env.sound, -61)
    env.clip = fake.add_sensor('C0:FF:EE:00:09:02', 'Spine Clip', 'posture-clip')
    return [env.sound, env.clip]


@test('rw-battery-rssi-status', daemon_args=FAST, populate=battery_sensors)
async def t_battery(env):
    fake, sound, clip = env.fake, env.sound, env.clip
    tags = Tags()
    await all_streaming(env)

    async def entry_of(address, pred, what):
        async def get():
            return sensor_entry(await hello(env.port), address)
        deadline = time.monotonic() + 5
        while True:
            e = await get()
            if pred(e):
                return e
            check(time.monotonic() < deadline, f'{what}: hello entry {e}')
            await asyncio.sleep(0.1)

    e = await entry_of(sound.address, lambda e: e.get('battery') == 87 and e.get('rssi') == -61,
                       'battery 87 and rssi -61 in hello')
    c = sensor_entry(await hello(env.port), clip.address)
    check(c.get('battery') is None and 'battery' in c and isinstance(c.get('rssi'), int),
          f'clip without Battery1 (rssi -79 from the template): {c}')
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        fake.set_battery(sound, 55)
        st = await status_for(f, sound.address, lambda m: m.get('battery') == 55, 3)
        check(st.get('rssi') == -61 and st.get('state') in READY, f'status {st}')
        fake.set_rssi(sound, -70)
        st = await status_for(f, sound.address, lambda m: m.get('rssi') == -70, 3)
        check(st.get('battery') == 55, f'status {st}')
        # at most one status per second per sensor
        await send_cracks(env, f, [sound] * 5, tags)
        fake.set_battery(sound, 54)
        await status_for(f, sound.address, lambda m: m.get('battery') == 54, 3)
        stamps = [m['ts'] for m in f.messages if m['type'] == 'status'
                  and m.get('sensor') == sound.address]
        close = [(a, b) for a, b in zip(stamps, stamps[1:]) if b - a < 900]
        check(not close, f'status messages for one sensor less than a second apart: {close}')
        for m in f.messages:
            if m['type'] == 'status':
                check_status(m)
        e = sensor_entry(await hello(env.port), sound.address)
        check(e.get('battery') == 54 and e.get('rssi') == -70, f'hello after changes: {e}')
        check_seqs(f.messages)
