"""MQTT out (issue 9): a real Mosquitto broker of the test's own on a free 127.0.0.1 port, and
mosquitto_sub as the reader. Events from the fake sensors arrive on the documented topics with
the feed's bytes, Home Assistant discovery configs are valid and complete, a broker killed and
restarted mid-stream (and a daemon restarted while the broker is away) loses no event, alerts
are retained while raised and removed on clear, and bad broker settings leave a clear log line
while the rest of the daemon keeps working. Registered in suite.TESTS like suite.py's tests."""

import asyncio
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time

from feed import Feed
from procs import TestFailure, check, free_port, listening, stop_process, wait_until
from suite import test
from suite_http import metric, request, scrape
from suite_schema import Schemas, violations

MOSQUITTO = shutil.which('mosquitto') or '/usr/sbin/mosquitto'
SOUND_NODE = 'c0ffee000002'
CLIP_NODE = 'c0ffee000001'
ENTITIES = {'posture_angle', 'slouching', 'cracks_today', 'last_crack', 'battery', 'signal',
            'link', 'alerts'}


def hub_name():
    """The hub's name as the daemon makes it from the host name."""
    name = re.sub(r'[^A-Za-z0-9_-]', '_', socket.gethostname()[:63])
    return name or 'spinewatch'


class Broker:
    """mosquitto on 127.0.0.1:port with its own config (anonymous, persistence on every change so
    that a SIGKILL keeps the reader's session), stopped by PID."""

    def __init__(self, tmpdir, port=None, auth=False, tls=None, client_cert=False):
        self.port = port or free_port()
        self.dir = os.path.join(tmpdir, 'broker')
        os.makedirs(self.dir, exist_ok=True)
        self.conf = os.path.join(self.dir, 'mosquitto.conf')
        access = 'allow_anonymous true\n'
        if auth:   # one user, hub / s3cret
            passwd = os.path.join(self.dir, 'passwd')
            subprocess.run(['mosquitto_passwd', '-c', '-b', passwd, 'hub', 's3cret'], check=True,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=10)
            access = f'allow_anonymous false\npassword_file {passwd}\n'
        if tls:    # certificates in that directory (see tls_broker)
            access += (f'cafile {tls}/ca.pem\ncertfile {tls}/server.pem\n'
                       f'keyfile {tls}/server.key\n')
            if client_cert:
                access += 'require_certificate true\n'
        with open(self.conf, 'w') as f:
            f.write(f'listener {self.port} 127.0.0.1\n{access}'
                    f'persistence true\npersistence_location {self.dir}/\n'
                    'autosave_interval 1\nautosave_on_changes true\n'
                    'max_queued_messages 10000\n'
                    # as root it would switch to the mosquitto user, who cannot write here
                    + ('user root\n' if os.geteuid() == 0 else ''))
        self.proc = None
        self.start()

    def start(self):
        log = open(os.path.join(self.dir, 'mosquitto.log'), 'ab')
        self.proc = subprocess.Popen([MOSQUITTO, '-c', self.conf], stdin=subprocess.DEVNULL,
                                     stdout=log, stderr=log)
        log.close()
        wait_until(self._listening, 10, f'mosquitto to listen on port {self.port}')

    def _listening(self):
        if self.proc.poll() is not None:
            raise TestFailure(f'mosquitto exited with {self.proc.returncode}')
        try:
            with socket.create_connection(('127.0.0.1', self.port), timeout=1):
                return True
        except OSError:
            return False

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)

    def stop(self):
        if self.proc is not None:
            stop_process(self.proc)


class Reader:
    """mosquitto_sub on the broker (QoS 1, a persistent session named `ident`), its lines
    parsed into (retained, qos, topic, payload) tuples."""

    def __init__(self, tmpdir, port, topics=('spinewatch/#', 'homeassistant/#'), ident='it-reader',
                 clean=False):
        self.path = os.path.join(tmpdir, f'{ident}.out')
        argv = ['mosquitto_sub', '-h', '127.0.0.1', '-p', str(port), '-q', '1', '-i', ident,
                '-F', '%r %q %t %p']
        if not clean:
            argv.append('-c')
        for t in topics:
            argv += ['-t', t]
        self.out = open(self.path, 'wb')
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.out,
                                     stderr=subprocess.STDOUT)

    def messages(self):
        with open(self.path, 'rb') as f:
            lines = f.read().decode('utf-8', 'replace').split('\n')
        got = []
        for line in lines[:-1]:   # the last may be half-written
            parts = line.split(' ', 3)
            if len(parts) >= 3:
                got.append((parts[0] == '1', int(parts[1]), parts[2],
                            parts[3] if len(parts) == 4 else ''))
        return got

    def on(self, topic):
        return [m for m in self.messages() if m[2] == topic]

    async def wait(self, predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while True:
            value = predicate(self.messages())
            if value:
                return value
            if self.proc.poll() is not None:
                raise TestFailure(f'mosquitto_sub exited: {open(self.path).read()[-500:]}')
            if time.monotonic() >= deadline:
                raise TestFailure(f'timed out after {timeout} s waiting for {what}; '
                                  f'got {[m[2] for m in self.messages()][-20:]}')
            await asyncio.sleep(0.05)

    def stop(self):
        stop_process(self.proc)
        self.out.close()


def crack_events(messages, prefix):
    """The crack events on the sound sensor's event topic, as dicts, in arrival order."""
    topic = f'{prefix}/{SOUND_NODE}/event/crack'
    return [json.loads(m[3]) for m in messages if m[2] == topic]


def cpu_seconds(pid):
    with open(f'/proc/{pid}/stat') as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def mqtt_config(env, port, extra='', host='127.0.0.1'):
    path = os.path.join(env.tmpdir, 'spinewatchd.conf')
    with open(path, 'w') as f:
        f.write(f'[mqtt]\nenabled = true\nhost = {host}\nport = {port}\nkeepalive = 10\n'
                + extra)
    return path


def with_broker(extra='', reader=True):
    """prepare(): a broker (env.broker), the daemon's settings file pointing at it, and a reader
    (env.reader) subscribed before the daemon starts; all stopped after the test."""
    def prepare(env):
        env.broker = Broker(env.tmpdir)
        env.cleanups.append(env.broker.stop)
        mqtt_config(env, env.broker.port, extra)
        env.reader = None
        if reader:
            env.reader = Reader(env.tmpdir, env.broker.port)
            env.cleanups.insert(0, env.reader.stop)
            # the reader's session exists before anything is published
            wait_until(lambda: 'it-reader' in open(os.path.join(env.broker.dir,
                                                                'mosquitto.log')).read()
                       or True, 5, 'the reader')
            time.sleep(0.3)
    return prepare


CONF = ('--config', '{tmpdir}/spinewatchd.conf', '--state-dir', '{tmpdir}/state')


async def feed_cracks(env, f, tags, one_by_one=False):
    """Send one crack per tag (as its duration_ms); return their feed events in order. With a
    tiny ring, one_by_one waits for each before sending the next (the feed client would get a
    gap otherwise)."""
    if one_by_one:
        return [(await feed_cracks(env, f, [tag]))[0] for tag in tags]
    for tag in tags:
        env.fake.send_crack(env.sound, intensity=50, duration_ms=tag)
    got = []
    for tag in tags:
        got.append(await f.wait_for(lambda m, t=tag: m.get('kind') == 'crack'
                                    and m.get('duration_ms') == t, 5, f'crack {tag} on the feed'))
    return got


@test('mqtt-events-and-discovery', daemon_args=CONF, prepare=with_broker())
async def t_events(env):
    prefix = f'spinewatch/{hub_name()}'
    r = env.reader
    await env.streaming()
    status = await r.wait(lambda ms: [m for m in ms if m[2] == f'{prefix}/status'
                                      and m[3] == 'online'], 10, 'online on .../status')
    check(status, 'online')
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        sent = await feed_cracks(env, f, [911, 912, 913])
    got = await r.wait(lambda ms: [e for e in crack_events(ms, prefix)
                                   if e.get('duration_ms') in (911, 912, 913)]
                       if len([e for e in crack_events(ms, prefix)
                               if e.get('duration_ms') in (911, 912, 913)]) >= 3 else None,
                       10, 'the three cracks on .../event/crack')
    check(got == sent, f'MQTT payloads are the feed events: {got} vs {sent}')
    on_topic = [m for m in r.on(f'{prefix}/{SOUND_NODE}/event/crack')
                if json.loads(m[3]).get('duration_ms') in (911, 912, 913)]
    check(all(m[1] == 1 for m in on_topic), f'events come with QoS 1: {on_topic}')
    # the payload bytes are the feed's own (compact JSON, members in the documented order)
    check(all(m[3].startswith('{"type":"event","seq":') for m in on_topic), f'{on_topic[:1]}')

    # connected and idle, the client costs nothing: no busy loop, no polling
    cpu = cpu_seconds(env.daemon.proc.pid)
    await asyncio.sleep(2)
    used = cpu_seconds(env.daemon.proc.pid) - cpu
    check(used < 0.2, f'{used:.2f} s of CPU in 2 s idle with MQTT connected')

    # retained state: a fresh reader gets status, sensor state, posture and discovery at once
    late = Reader(env.tmpdir, env.broker.port, ident='it-late', clean=True)
    try:
        need = [f'{prefix}/status', f'{prefix}/{SOUND_NODE}/state',
                f'{prefix}/{CLIP_NODE}/posture', f'{prefix}/{SOUND_NODE}/stats',
                f'{prefix}/{SOUND_NODE}/alerts']
        await late.wait(lambda ms: all(any(m[2] == t and m[0] for m in ms) for t in need), 10,
                        f'retained {need}')
        await late.wait(lambda ms: json.loads(late.on(f'{prefix}/{SOUND_NODE}/state')[-1][3])
                        .get('state') == 'streaming', 5, 'the sound sensor streaming')
        msgs = late.messages()
        state = json.loads(late.on(f'{prefix}/{SOUND_NODE}/state')[-1][3])
        check(state.get('type') == 'status' and state.get('sensor') == 'C0:FF:EE:00:00:02'
              and state.get('state') == 'streaming', f'sensor state: {state}')
        posture = json.loads(late.on(f'{prefix}/{CLIP_NODE}/posture')[-1][3])
        check(posture.get('type') == 'posture' and 'angle' in posture, f'posture: {posture}')
        check(late.on(f'{prefix}/{SOUND_NODE}/alerts')[-1][3] == '[]', 'no active alerts')
        # cracks today counts the three (the per-day record goes out within 2 s of a change)
        await late.wait(lambda ms: any(
            m[2] == f'{prefix}/{SOUND_NODE}/stats' and
            json.loads(m[3])['sensors'] and
            json.loads(m[3])['sensors'][0]['today']['cracks'] >= 3 for m in ms), 10,
            'stats with today.cracks >= 3')
        check(not any(m[2].endswith('/event/crack') for m in msgs if m[0]),
              'events are not retained')

        # Home Assistant discovery: every entity of the sound sensor, valid and complete (the
        # broker sends the retained configs after those of spinewatch/#: wait for them)
        def discovery(ms):
            disc = {}
            for m in ms:
                mt = re.fullmatch(rf'homeassistant/(sensor|binary_sensor)/spinewatch_'
                                  rf'{re.escape(hub_name())}_{SOUND_NODE}_([a-z_]+)/config', m[2])
                if mt and m[0]:
                    disc[mt.group(2)] = (mt.group(1), json.loads(m[3]))
            return disc
        try:
            await late.wait(lambda ms: set(discovery(ms)) >= ENTITIES, 10, 'every discovery config')
        except TestFailure:
            pass   # the check below says which are missing
        disc = discovery(late.messages())
        check(set(disc) == ENTITIES, f'discovery entities: {sorted(disc)}')
        uids = set()
        for entity, (component, cfg) in disc.items():
            for key in ('name', 'unique_id', 'state_topic', 'availability_topic', 'device',
                        'value_template'):
                check(key in cfg, f'{entity}: no {key}: {cfg}')
            check(cfg['availability_topic'] == f'{prefix}/status'
                  and cfg['payload_available'] == 'online'
                  and cfg['payload_not_available'] == 'offline', f'{entity} availability: {cfg}')
            check(cfg['state_topic'].startswith(f'{prefix}/{SOUND_NODE}/'),
                  f'{entity} state_topic: {cfg["state_topic"]}')
            dev = cfg['device']
            check(isinstance(dev.get('identifiers'), list) and dev['identifiers']
                  and dev.get('name') == 'Spine Sound', f'{entity} device: {dev}')
            uids.add(cfg['unique_id'])
            if component == 'binary_sensor':
                check(cfg.get('payload_on') == 'ON' and cfg.get('payload_off') == 'OFF', f'{cfg}')
        check(len(uids) == len(ENTITIES), f'unique_id values are unique: {uids}')
        check(disc['battery'][1].get('device_class') == 'battery'
              and disc['battery'][1].get('unit_of_measurement') == '%', f'{disc["battery"]}')
        check(disc['slouching'][0] == 'binary_sensor', 'slouching is a binary_sensor')
    finally:
        late.stop()

    # every event, state and posture payload is a feed message valid against its schema
    schemas, checked = Schemas(), 0
    for m in r.messages():
        if re.search(r'/(event/[a-z]+|state|posture|alert/[a-z-]+)$', m[2]) and m[3]:
            msg = json.loads(m[3])
            name = schemas.schema_for(msg)
            check(name, f'{m[2]}: no schema for {msg}')
            bad = violations(schemas, name, msg)
            check(not bad, f'{m[2]}: {msg} against {name}: {bad}')
            checked += 1
    check(checked >= 10, f'only {checked} payloads checked against the schemas')

    # a clean stop says offline (retained)
    env.daemon.stop()
    env.daemon = None
    await r.wait(lambda ms: ms and [m for m in ms if m[2] == f'{prefix}/status'][-1][3] ==
                 'offline', 10, 'offline after a clean stop')


@test('mqtt-broker-restart-loses-nothing', daemon_args=CONF, prepare=with_broker(),
      deadline=90)
async def t_broker_restart(env):
    prefix = f'spinewatch/{hub_name()}'
    r = env.reader
    await env.streaming()
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        before = await feed_cracks(env, f, [921, 922, 923])
        await r.wait(lambda ms: len([e for e in crack_events(ms, prefix)
                                     if e['duration_ms'] in (921, 922, 923)]) == 3, 10,
                     'the cracks before the broker goes')
        env.broker.kill()
        # more than the 32 the daemon keeps in flight
        during = await feed_cracks(env, f, list(range(924, 974)))
        await asyncio.sleep(1.0)
        env.broker.start()

        def complete(ms, wanted):
            got = [e for e in crack_events(ms, prefix) if e['seq'] in wanted]
            return got if {e['seq'] for e in got} == wanted else None

        # the whole backlog, with nothing new coming to push it along
        await r.wait(lambda ms: complete(ms, {e['seq'] for e in before + during}), 30,
                     'the backlog after the broker restart')
        after = await feed_cracks(env, f, [974, 975])
    want = before + during + after
    wanted = {e['seq'] for e in want}
    got = await r.wait(lambda ms: complete(ms, wanted), 30, 'every crack after the restart')
    first = []
    for e in got:   # at least once: duplicates allowed, order and content not negotiable
        if e['seq'] not in [x['seq'] for x in first]:
            first.append(e)
    check([e['seq'] for e in first] == sorted(wanted), f'in seq order: {[e["seq"] for e in got]}')
    check(first == want, 'the same events as the feed')
    dups = len(got) - len(first)
    check(dups <= 32, f'duplicates stay within the in-flight window: {dups}')
    check('mqtt: 127.0.0.1:' in env.daemon.stderr_text(), 'the lost connection is logged')
    # /metrics tells the same story: connected again, one connection lost, nothing waiting
    top = max(wanted)

    def caught_up():
        series, _ = scrape(env.port)
        return series if metric(series, 'spinewatch_mqtt_acked_seq') >= top else None
    series = wait_until(caught_up, 10, 'the acknowledged seq on /metrics')
    check(metric(series, 'spinewatch_mqtt_connected') == 1
          and metric(series, 'spinewatch_mqtt_connections_total') >= 2
          and metric(series, 'spinewatch_mqtt_drops_total') >= 1
          and metric(series, 'spinewatch_mqtt_events_acked_total') >= len(wanted)
          and metric(series, 'spinewatch_mqtt_backlog_events')
          == metric(series, 'spinewatch_ring_last_seq')
          - metric(series, 'spinewatch_mqtt_acked_seq'),
          f'MQTT on /metrics: {sorted((k[0], v) for k, v in series.items() if "mqtt" in k[0])}')


@test('mqtt-resume-after-daemon-restart',
      daemon_args=CONF + ('--ring-size', '4'), prepare=with_broker(), deadline=90)
async def t_daemon_restart(env):
    """The broker goes away, the daemon restarts (a ring of 4: the backlog comes from the
    history database), then the broker comes back: every event arrives."""
    prefix = f'spinewatch/{hub_name()}'
    r = env.reader
    await env.streaming()
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        first = await feed_cracks(env, f, [941])
        await r.wait(lambda ms: any(e['duration_ms'] == 941 for e in crack_events(ms, prefix)),
                     10, 'the first crack')
        env.broker.kill()
        during = await feed_cracks(env, f, list(range(942, 950)), one_by_one=True)
    env.restart_daemon()
    await env.streaming(prime=False)
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        later = await feed_cracks(env, f, [950, 951], one_by_one=True)
    state = open(os.path.join(env.tmpdir, 'state', 'mqtt.state')).read()
    check('acked ' in state, f'mqtt.state: {state!r}')
    env.broker.start()
    want = first + during + later
    wanted = {e['seq'] for e in want}
    got = await r.wait(lambda ms: [e for e in crack_events(ms, prefix) if e['seq'] in wanted]
                       if {e['seq'] for e in crack_events(ms, prefix)} >= wanted else None,
                       30, 'every crack, across the daemon restart')
    seqs = []
    for e in got:
        if e['seq'] not in seqs:
            seqs.append(e['seq'])
    check(seqs == sorted(wanted), f'in order: {[e["seq"] for e in got]}')
    check('from the history database' in env.daemon.stderr_text(),
          'the backlog beyond the ring came from the history database')


def battery_devices(env, fake):
    env.clip = fake.add_sensor('C0:FF:EE:00:00:01', 'Spine Clip', 'posture-clip')
    env.sound = fake.add_sensor('C0:FF:EE:00:00:02', 'Spine Sound', 'sound', battery=80)
    return [env.clip, env.sound]


@test('mqtt-alerts-retained-while-raised', daemon_args=CONF, prepare=with_broker(),
      populate=battery_devices)
async def t_alerts(env):
    prefix = f'spinewatch/{hub_name()}'
    r = env.reader
    topic = f'{prefix}/{SOUND_NODE}/alert/battery-low'
    await env.streaming()
    env.fake.set_battery(env.sound, 5)
    raised = await r.wait(lambda ms: [m for m in ms if m[2] == topic and m[3]], 15,
                          'the battery-low alert on .../alert/battery-low')
    alert = json.loads(raised[-1][3])
    check(alert.get('kind') == 'alert' and alert.get('state') == 'raised'
          and alert.get('rule') == 'battery-low', f'{alert}')
    summary = await r.wait(lambda ms: [m for m in ms if m[2] == f'{prefix}/{SOUND_NODE}/alerts'
                                       and m[3] != '[]'], 10, 'the active alerts list')
    active = json.loads(summary[-1][3])
    check(len(active) == 1 and active[0]['id'] == alert['id'], f'active alerts: {active}')
    late = Reader(env.tmpdir, env.broker.port, ident='it-late', clean=True)
    try:
        await late.wait(lambda ms: any(m[2] == topic and m[0] and m[3] for m in ms), 10,
                        'the raised alert retained')
    finally:
        late.stop()
    env.fake.set_battery(env.sound, 60)
    await r.wait(lambda ms: [m for m in ms if m[2] == topic][-1][3] == '', 15,
                 'the retained alert removed on clear')
    cleared = [json.loads(m[3]) for m in r.on(f'{prefix}/{SOUND_NODE}/event/alert')]
    check(cleared and cleared[-1]['state'] == 'cleared', f'alert events: {cleared}')
    late = Reader(env.tmpdir, env.broker.port, ident='it-late2', clean=True)
    try:
        await late.wait(lambda ms: any(m[2] == f'{prefix}/{SOUND_NODE}/alerts' and m[0]
                                       for m in ms), 10, 'the alerts list')
        await asyncio.sleep(0.5)
        check(not late.on(topic), f'no retained alert after the clear: {late.on(topic)}')
        check(late.on(f'{prefix}/{SOUND_NODE}/alerts')[-1][3] == '[]', 'no active alerts')
    finally:
        late.stop()


def unreachable(env):
    mqtt_config(env, free_port())


def bad_ca(env):
    env.broker = Broker(env.tmpdir)
    env.cleanups.append(env.broker.stop)
    mqtt_config(env, env.broker.port, 'ca_file = /nonexistent/ca.pem\n')


async def daemon_still_works(env):
    await env.streaming()
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        await feed_cracks(env, f, [961])


@test('mqtt-unreachable-broker', daemon_args=CONF, prepare=unreachable)
async def t_unreachable(env):
    await daemon_still_works(env)
    text = wait_until(lambda: re.findall(r'mqtt: 127\.0\.0\.1:\d+: .*retrying in [\d.]+ s',
                                         env.daemon.stderr_text()), 10, 'the failure logged')
    check(any('refused' in t.lower() for t in text), f'says why: {text}')
    await asyncio.sleep(2.5)
    again = re.findall(r'mqtt: 127\.0\.0\.1:\d+: .*retrying in', env.daemon.stderr_text())
    check(len(again) >= 2, f'it retries with backoff: {again}')
    series, _ = scrape(env.port)
    check(metric(series, 'spinewatch_mqtt_connected') == 0
          and metric(series, 'spinewatch_mqtt_connections_total') == 0
          and metric(series, 'spinewatch_mqtt_drops_total') >= 2,
          f'MQTT on /metrics: {sorted((k[0], v) for k, v in series.items() if "mqtt" in k[0])}')


@test('mqtt-settings-reload', daemon_args=CONF, prepare=unreachable, deadline=60)
async def t_reload(env):
    """SIGHUP with new [mqtt] settings: the publisher starts over with them (no restart), and
    settings without [mqtt] stop it, saying offline."""
    prefix = f'spinewatch/{hub_name()}'
    await env.streaming()
    wait_until(lambda: 'retrying in' in env.daemon.stderr_text(), 10, 'the first broker failing')
    env.broker = Broker(env.tmpdir)
    env.cleanups.append(env.broker.stop)
    r = Reader(env.tmpdir, env.broker.port)
    env.cleanups.insert(0, r.stop)
    # by name this time: looked up on the loop (/etc/hosts), then connected
    mqtt_config(env, env.broker.port, host='localhost')
    env.daemon.proc.send_signal(signal.SIGHUP)
    wait_until(lambda: 'mqtt: settings changed: reconnecting' in env.daemon.stderr_text(), 5,
               'the reload logged')
    await r.wait(lambda ms: [m for m in ms if m[2] == f'{prefix}/status' and m[3] == 'online'],
                 10, 'online on the new broker')
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        sent = await feed_cracks(env, f, [981, 982])
    want = {s['seq'] for s in sent}

    def both(ms):
        got = [e for e in crack_events(ms, prefix) if e['seq'] in want]
        return got if {e['seq'] for e in got} == want else None
    got = await r.wait(both, 10, 'the cracks')
    check(all(e in sent for e in got), f'the cracks as the feed sent them: {got}')
    series, _ = scrape(env.port)
    check(metric(series, 'spinewatch_mqtt_connected') == 1
          and metric(series, 'spinewatch_mqtt_connections_total') == 1,
          'a new publisher, connected once')
    # no [mqtt] any more: offline, and no MQTT families
    with open(os.path.join(env.tmpdir, 'spinewatchd.conf'), 'w') as fh:
        fh.write('# no broker\n')
    env.daemon.proc.send_signal(signal.SIGHUP)
    await r.wait(lambda ms: [m for m in ms if m[2] == f'{prefix}/status'][-1][3] == 'offline',
                 10, 'offline after [mqtt] went')
    series, _ = scrape(env.port)
    check(not [k for k in series if k[0].startswith('spinewatch_mqtt_')],
          'MQTT families after [mqtt] went')
    check(env.daemon.alive(), 'the daemon lives on')


@test('mqtt-dns-that-never-answers', bluez_at_start=False, deadline=60)
async def t_dns_black_hole(env):
    """A broker named by a host name whose DNS server never answers: the daemon keeps serving
    (the lookup runs on the loop, not in a blocking getaddrinfo()), gives up on it, says so and
    tries again later. The daemon runs in its own mount namespace whose /etc/resolv.conf names
    a UDP socket of ours on 127.0.0.1:53 that reads and never answers."""
    black_hole = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        black_hole.bind(('127.0.0.1', 53))
    except OSError as e:
        raise TestFailure(f'cannot bind 127.0.0.1:53 for the silent DNS server ({e}): '
                          'the integration tests run as root')
    env.cleanups.append(black_hole.close)
    resolv = os.path.join(env.tmpdir, 'resolv.conf')
    with open(resolv, 'w') as fh:
        fh.write('nameserver 127.0.0.1\noptions timeout:5 attempts:2\n')
    conf = mqtt_config(env, 1883, host='broker.spinewatch.test')
    port = free_port()
    err = open(os.path.join(env.tmpdir, 'dns.stderr'), 'w+b')
    script = ('mount --bind "$1" /etc/resolv.conf && shift && exec "$@"')
    proc = subprocess.Popen(
        ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', script, 'sh', resolv,
         env.daemon.argv[0], '--config', conf, '--listen', f'127.0.0.1:{port}', '-v',
         '--state-dir', os.path.join(env.tmpdir, 'dns-state')],
        env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.bus.address),
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err)

    def log():
        err.seek(0)
        return err.read().decode('utf-8', 'replace')
    try:
        wait_until(lambda: listening(proc, port, lambda: log()[-2000:]), 15,
                   'the daemon in its own namespace to listen')
        # the lookup is on: a blocking one would hold the loop 5 s x 2 tries; the daemon keeps
        # answering throughout (each request on a fresh connection, 3 s allowed)
        black_hole.settimeout(10)
        try:
            black_hole.recv(512)
        except OSError:
            raise TestFailure(f'no DNS query came in 10 s: {log()[-2000:]}')
        answered = 0
        end = time.monotonic() + 4.0
        while time.monotonic() < end:
            try:
                code, _, _ = request(port, '/api/v1/sensors', timeout=3)
            except OSError as e:
                raise TestFailure(f'the daemon did not answer while looking the broker up: {e}')
            check(code == 200, f'/api/v1/sensors -> {code}')
            answered += 1
            await asyncio.sleep(0.2)
        check(answered >= 10, f'only {answered} answers in 4 s')
        text = wait_until(lambda: re.findall(r'mqtt: broker\.spinewatch\.test:1883: the host name '
                                             r'(?:does not resolve|did not resolve)[^;]*; retrying',
                                             log()), 15, 'the failed lookup logged')
        check(text, 'the failed lookup logged')
    finally:
        status = stop_process(proc)
        err.close()
    check(status == 0, f'exit status {status} on SIGTERM')


@test('mqtt-bad-ca-file', daemon_args=CONF, prepare=bad_ca)
async def t_bad_ca(env):
    await daemon_still_works(env)
    wait_until(lambda: '/nonexistent/ca.pem' in env.daemon.stderr_text()
               and 'retrying in' in env.daemon.stderr_text(), 10, 'the bad ca_file logged')


def silent_broker(env):
    """A port that accepts TCP connections and never says a word."""
    env.silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    env.silent.bind(('127.0.0.1', 0))
    env.silent.listen(8)
    env.cleanups.append(env.silent.close)
    mqtt_config(env, env.silent.getsockname()[1])


@test('mqtt-silent-broker-times-out', daemon_args=CONF, prepare=silent_broker, deadline=60)
async def t_silent(env):
    await daemon_still_works(env)
    cpu = cpu_seconds(env.daemon.proc.pid)
    start = time.monotonic()
    await asyncio.to_thread(wait_until, lambda: 'no answer from the broker within 10 s' in
                            env.daemon.stderr_text(), 20, 'the connect timeout')
    used = cpu_seconds(env.daemon.proc.pid) - cpu
    check(used < 0.1 * (time.monotonic() - start) + 0.1,
          f'{used:.2f} s of CPU while waiting for a silent broker (a busy loop?)')


def broker_with_password(env):
    env.broker = Broker(env.tmpdir, auth=True)
    env.cleanups.append(env.broker.stop)
    mqtt_config(env, env.broker.port, 'username = hub\npassword_file = '
                f'{env.tmpdir}/mqtt-password\n')
    with open(os.path.join(env.tmpdir, 'mqtt-password'), 'w') as f:
        f.write('Xy9-not-it\n')


@test('mqtt-wrong-password', daemon_args=CONF, prepare=broker_with_password, deadline=60)
async def t_password(env):
    await daemon_still_works(env)
    await asyncio.to_thread(wait_until, lambda: re.search(
        r'mqtt: 127\.0\.0\.1:\d+: the broker refused the connection: .*retrying in',
        env.daemon.stderr_text()), 10, 'the refusal logged')
    check('Xy9-not-it' not in env.daemon.stderr_text(), 'the password is never logged')
    # the right password (the file is read again at every attempt) gets in
    with open(os.path.join(env.tmpdir, 'mqtt-password'), 'w') as f:
        f.write('s3cret\n')
    await asyncio.to_thread(wait_until, lambda: 'mqtt: connected to' in env.daemon.stderr_text(),
                            20, 'a connection with the right password')


def tls_broker(env, client_cert=False):
    """A broker speaking TLS only, with a certificate from a CA made for the test; with
    client_cert it also wants the client's certificate (from the same CA)."""
    d = os.path.join(env.tmpdir, 'tls')
    os.makedirs(d)

    def ssl(*args):
        subprocess.run(['openssl', *args], cwd=d, check=True, timeout=30,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=it-ca',
        '-keyout', 'ca.key', '-out', 'ca.pem')
    ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout',
        'server.key', '-out', 'server.csr')
    with open(os.path.join(d, 'ext'), 'w') as f:
        f.write('subjectAltName=DNS:localhost,IP:127.0.0.1\n')
    ssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
        '-CAcreateserial', '-days', '2', '-extfile', 'ext', '-out', 'server.pem')
    extra = f'ca_file = {d}/ca.pem\n'
    if client_cert:
        ssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=hub', '-keyout',
            'client.key', '-out', 'client.csr')
        ssl('x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
            '-CAcreateserial', '-days', '2', '-out', 'client.pem')
        extra += f'cert_file = {d}/client.pem\nkey_file = {d}/client.key\n'
    for name in os.listdir(d):
        os.chmod(os.path.join(d, name), 0o644)
    env.broker = Broker(env.tmpdir, tls=d, client_cert=client_cert)
    env.cleanups.append(env.broker.stop)
    mqtt_config(env, env.broker.port, extra)


@test('mqtt-tls', daemon_args=CONF, prepare=tls_broker)
async def t_tls(env):
    await daemon_still_works(env)
    await asyncio.to_thread(wait_until, lambda: 'mqtt: connected to' in env.daemon.stderr_text(),
                            15, 'a TLS connection')
    check('(TLS)' in env.daemon.stderr_text(), 'the log says TLS')


@test('mqtt-tls-client-certificate', daemon_args=CONF,
      prepare=lambda env: tls_broker(env, client_cert=True))
async def t_tls_client(env):
    await daemon_still_works(env)
    await asyncio.to_thread(wait_until, lambda: 'mqtt: connected to' in env.daemon.stderr_text(),
                            15, 'a TLS connection with a client certificate')
    log = open(os.path.join(env.broker.dir, 'mosquitto.log')).read()
    check('as spinewatch-' in log, f'the broker saw the hub connect: {log[-800:]}')
    # the broker does insist: a client without a certificate is turned away
    d = os.path.join(env.tmpdir, 'tls')
    p = await asyncio.to_thread(subprocess.run, [
        'mosquitto_sub', '-h', '127.0.0.1', '-p', str(env.broker.port), '--cafile',
        f'{d}/ca.pem', '-t', 'spinewatch/#', '-C', '1', '-W', '3'], capture_output=True,
        timeout=10)
    check(p.returncode != 0, f'a client without a certificate got in: {p.returncode}')


JUNK = [
    b'\xff' * 32,                                  # no such packet type
    b'\x20\x02\x00\x00' + b'\x30\x05\x00',         # CONNACK, then a publish cut short
    b'\x20\x02\x00\x00' + b'\x40\x02\x99\x99' * 4,  # PUBACKs for nothing we sent
    b'\x20\x05\x00\x00\x01\x02\x03',               # a CONNACK of the wrong length
    b'\x20\x02\x00\x05',                           # refused: not authorised
]


def junk_broker(env):
    """A "broker" that answers every connection with a different kind of nonsense."""
    import threading
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.bind(('127.0.0.1', 0))
    srv.listen(8)
    srv.settimeout(0.2)
    env.junk_served = []
    stop = threading.Event()

    def serve():
        deadline = time.monotonic() + 120
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                conn, _ = srv.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    conn.recv(1024)   # the CONNECT
                    conn.sendall(JUNK[len(env.junk_served) % len(JUNK)])
                    env.junk_served.append(True)
                    time.sleep(0.2)
                except OSError:
                    pass
        srv.close()
    thread = threading.Thread(target=serve, daemon=True)
    thread.start()

    def stop_it():
        stop.set()
        thread.join(5)
    env.cleanups.append(stop_it)
    mqtt_config(env, srv.getsockname()[1])


@test('mqtt-nonsense-from-the-broker', daemon_args=CONF, prepare=junk_broker, deadline=60)
async def t_junk(env):
    await daemon_still_works(env)
    await asyncio.to_thread(wait_until, lambda: len(env.junk_served) >= 4, 30,
                            'four connections answered with nonsense')
    await asyncio.sleep(0.5)
    check(env.daemon.alive(), 'spinewatchd survives a broker talking nonsense')
    lines = re.findall(r'mqtt: 127\.0\.0\.1:\d+: .*(?:retrying|reconnecting) in ([\d.]+) s',
                       env.daemon.stderr_text())
    check(len(lines) >= 4, f'each is logged and retried: {lines}')
    # connections that drop at once do not start the backoff over: the delays grow
    check(float(lines[3]) > 3.0, f'the delays grow: {lines}')
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        await feed_cracks(env, f, [971])


@test('mqtt-settings-as-documented', bluez_at_start=False)
async def t_settings(env):
    """The README's [mqtt] example passes --check-config (its commented TLS and login lines
    too, once uncommented); settings that cannot work are refused with the reason."""
    with open(os.path.join(env.repo, 'README.md')) as fh:
        readme = fh.read()
    section = readme[readme.index('\n## Several rooms, one view'):]
    section = section[:section.find('\n## ', 1)]
    ini = section[section.index('```ini\n') + 7:]
    ini = ini[:ini.index('```')]
    check('[mqtt]' in ini and 'enabled = true' in ini, f'the README\'s MQTT settings: {ini!r}')

    def check_config(text):
        conf = os.path.join(env.tmpdir, 'check.conf')
        with open(conf, 'w') as fh:
            fh.write(text)
        p = subprocess.run([env.binary, '--config', conf, '--check-config'], capture_output=True,
                           text=True, timeout=10)
        return p.returncode, p.stderr
    rc, err = check_config(ini)
    check(rc == 0, f'the README\'s MQTT settings: {rc} {err!r}')
    rc, err = check_config(re.sub(r'(?m)^#(\w+ = )', r'\1', ini))
    check(rc == 0, f'the README\'s MQTT settings, all uncommented: {rc} {err!r}')
    for text, why in (('[mqtt]\nenabled = true\npassword = x\n', 'a password needs a username'),
                      ('[mqtt]\nenabled = true\nhost =\n', 'host must be set'),
                      ('[mqtt]\ntopic_prefix = a/+/b\n', 'is not a topic prefix'),
                      ('[mqtt]\nenabled = true\ncert_file = /c.pem\n', 'go together')):
        rc, err = check_config(text)
        check(rc == 1 and why in err, f'{text!r}: {rc} {err!r}')
