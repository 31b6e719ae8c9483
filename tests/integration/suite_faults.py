"""Faults (issue 8): the daemon killed with SIGKILL while it writes its history; the wall clock
jumping under the daemon. Durations and timers run on
CLOCK_MONOTONIC, timestamps on real time: libfaketime (Debian `faketime`) moves the daemon's
CLOCK_REALTIME forwards and backwards mid-slouch and mid-stream (FAKETIME_TIMESTAMP_FILE, read
on every call with FAKETIME_NO_CACHE; FAKETIME_DONT_FAKE_MONOTONIC leaves the monotonic clock
alone). Registered in suite.TESTS like suite.py's tests."""

import asyncio
import glob
import os
import signal
import threading
import time

import statedb
from feed import check_seqs, hello, summary
from feed import Feed
from procs import check
from suite import POSTURE_ARGS, clip_posture_until, slouch_events, test

HOUR_MS = 3600 * 1000
TS_SLACK_MS = 2000      # a timestamp "follows wall time" within this


def libfaketime():
    found = sorted(glob.glob('/usr/lib/*/faketime/libfaketime.so.1'))
    check(found, 'this test needs libfaketime (Debian package faketime; make deps)')
    return found[0]


def fake_clock(env):
    """The daemon's wall clock, offset by what env.set_clock() writes; an alert rule with a
    3 s limit (slouch-long) and no cooldown, to watch a timer."""
    env.clock_file = os.path.join(env.tmpdir, 'faketime')
    env.clock_offset_s = 0

    def set_clock(offset_s):
        tmp = env.clock_file + '.new'
        with open(tmp, 'w') as f:
            f.write('%+d\n' % offset_s)
        os.replace(tmp, env.clock_file)
        env.clock_offset_s = offset_s
    env.set_clock = set_clock
    set_clock(0)
    with open(os.path.join(env.tmpdir, 'spinewatchd.conf'), 'w') as f:
        f.write('[alerts]\nslouch_long_min = 0.05\ncooldown_min = 0\n')
    env.daemon_env = {
        'LD_PRELOAD': libfaketime(),
        'FAKETIME_TIMESTAMP_FILE': env.clock_file,
        'FAKETIME_NO_CACHE': '1',
        'FAKETIME_DONT_FAKE_MONOTONIC': '1',
        # the ASan build: libfaketime is preloaded ahead of the ASan runtime
        'ASAN_OPTIONS': 'detect_leaks=1:verify_asan_link_order=0',
    }


def wall_ms(env):
    """What the daemon's wall clock reads now."""
    return time.time() * 1000 + env.clock_offset_s * 1000


def check_wall(env, ts, what, since=None):
    """ts is the daemon's wall clock now (or between `since`, a wall_ms(), and now)."""
    now = wall_ms(env)
    lo = (now if since is None else since) - TS_SLACK_MS
    check(isinstance(ts, int) and lo <= ts <= now + TS_SLACK_MS,
          f'{what}: ts {ts} does not follow the daemon\'s wall clock (offset '
          f'{env.clock_offset_s:+d} s): {ts - now:+.0f} ms off')


async def crack_now(env, f, tag, what):
    """A crack with age 0; its event's ts must be the daemon's wall clock now."""
    env.fake.send_crack(env.sound, intensity=40, duration_ms=tag)
    ev = await f.wait_for(lambda m: m['type'] == 'event' and m.get('kind') == 'crack'
                          and m.get('duration_ms') == tag, 5, f'{what}: the crack tagged {tag}')
    check_wall(env, ev['ts'], f'{what}: crack event')
    return ev


def alert_events(f, rule, state):
    return [m for m in f.messages if m['type'] == 'event' and m.get('kind') == 'alert'
            and m.get('rule') == rule and m.get('state') == state]


async def slouch(env, f, what):
    """Tilt the clip until a slouch starts; returns (start event, its arrival, monotonic)."""
    n = len(slouch_events(f, env.clip.address, 'start'))
    await clip_posture_until(env, f, 30, lambda: len(slouch_events(f, env.clip.address,
                                                                   'start')) > n,
                             10, f'{what}: a slouch start')
    return slouch_events(f, env.clip.address, 'start')[-1], time.monotonic()


async def slouch_long_alert(env, f, started, what):
    """Keep slouching until the slouch-long alert (3 s after the onset, i.e. ~2 s after the
    start event); it must come on the monotonic clock's time, neither at once (a forward
    jump) nor an hour late (a backward one)."""
    n = len(alert_events(f, 'slouch-long', 'raised'))
    await clip_posture_until(env, f, 30, lambda: len(alert_events(f, 'slouch-long',
                                                                  'raised')) > n,
                             8, f'{what}: the slouch-long alert (3 s limit)')
    after = time.monotonic() - started
    alert = alert_events(f, 'slouch-long', 'raised')[-1]
    # (a wall-clock timer would fire at once after the step forward, an hour late after the
    # step back; the margins are for a slow machine)
    check(0.8 <= after <= 5.0, f'{what}: the slouch-long alert came {after:.1f} s after the '
          f'slouch start; 2 s expected (monotonic timer)')
    check_wall(env, alert['ts'], f'{what}: slouch-long alert')
    return alert


async def upright(env, f, start, started, what):
    """Sit up; the slouch end: duration_ms as really elapsed (monotonic), ts on the wall clock
    now, onset_ts as the start said."""
    n = len(slouch_events(f, env.clip.address, 'end'))
    await clip_posture_until(env, f, 0, lambda: len(slouch_events(f, env.clip.address,
                                                                  'end')) > n,
                             5, f'{what}: the slouch end')
    end = slouch_events(f, env.clip.address, 'end')[-1]
    # the start event came when the 1 s slouch delay ran out after the onset
    real = (time.monotonic() - started) * 1000 + 1000
    check(end.get('onset_ts') == start['onset_ts'], f'{what}: onset_ts changed: {start} -> {end}')
    check(isinstance(end.get('duration_ms'), int) and abs(end['duration_ms'] - real) <= 1500,
          f'{what}: duration_ms {end.get("duration_ms")} but about {real:.0f} ms really '
          f'passed (a wall-clock duration would be off by the jump): {end}')
    check_wall(env, end['ts'], f'{what}: slouch end')
    return end


async def timers_run(env, f, seconds, what):
    """For `seconds`: posture samples flow; the 1 s status messages and the 1 s history flush
    must keep coming (loop timers on the monotonic clock)."""
    mark, since = len(f.messages), wall_ms(env)
    tag = 7000 + len(f.messages) % 1000
    ev = await crack_now(env, f, tag, what)
    until = time.monotonic() + seconds
    await clip_posture_until(env, f, 0, lambda: time.monotonic() >= until, seconds + 5, what)
    status = [m for m in f.messages[mark:] if m['type'] == 'status'
              and m.get('sensor') == env.clip.address]
    check(len(status) >= seconds - 1, f'{what}: {len(status)} status messages for the '
          f'streaming clip in {seconds} s (one a second expected): {summary(f.messages)}')
    for m in status:
        check_wall(env, m['ts'], f'{what}: status message', since)
    kept = [e for e in statedb.events(os.path.join(env.tmpdir, 'state')) if e[0] == ev['seq']]
    check(kept, f'{what}: the crack (seq {ev["seq"]}) is not in the history {seconds} s later '
          f'(the flush timer runs every second)')


@test('clock-jumps', prepare=fake_clock, deadline=90,
      daemon_args=[*POSTURE_ARGS, '--config', '{tmpdir}/spinewatchd.conf'])
async def t_clock_jumps(env):
    await env.streaming()
    async with await Feed.open(env.port) as f:
        h = await f.next(what='hello')
        check_wall(env, h['ts'], 'hello')
        await clip_posture_until(env, f, 0, lambda: any(
            m['type'] == 'posture' and m.get('sensor') == env.clip.address
            and m.get('calibrating') is False for m in f.messages), 10, 'the clip calibrated')
        await crack_now(env, f, 101, 'before any jump')

        # forward an hour in the middle of a slouch
        start, started = await slouch(env, f, 'first slouch')
        check_wall(env, start['ts'], 'slouch start')
        env.set_clock(3600)
        await asyncio.sleep(0.1)
        await crack_now(env, f, 102, 'an hour forward, mid-slouch')
        await slouch_long_alert(env, f, started, 'an hour forward')
        await upright(env, f, start, started, 'an hour forward')
        await timers_run(env, f, 3, 'an hour forward')

        # back two hours (an hour behind real time) in the middle of a slouch
        start, started = await slouch(env, f, 'second slouch')
        env.set_clock(-3600)
        await asyncio.sleep(0.1)
        await crack_now(env, f, 103, 'two hours back, mid-slouch')
        await slouch_long_alert(env, f, started, 'two hours back')
        await upright(env, f, start, started, 'two hours back')
        await timers_run(env, f, 3, 'two hours back')

        # and back to real time
        env.set_clock(0)
        await asyncio.sleep(0.1)
        await crack_now(env, f, 104, 'real time again')
        await f.drain(0.3)
        seqs = check_seqs(f.messages, 'events across the clock jumps')
        check(seqs == list(range(seqs[0], seqs[0] + len(seqs))),
              f'events across the clock jumps: seqs not consecutive: {seqs}')
    h = await hello(env.port)
    check(h['last_seq'] == seqs[-1], f'hello.last_seq {h["last_seq"]} after the last event '
          f'{seqs[-1]}')
    check_wall(env, h['ts'], 'hello at the end')


# --- kill -9 while the history is being written ---

class WalWatcher(threading.Thread):
    """Watches STATE/history.db-wal (the daemon's SQLite write-ahead log) and SIGKILLs the
    daemon the moment it changes (size or mtime): the daemon is then writing a batch of
    events, or has just written one. Armed after `after` seconds; gives up after `timeout`."""

    def __init__(self, wal, pid, after, timeout):
        super().__init__(daemon=True)
        self.wal, self.pid, self.after, self.timeout = wal, pid, after, timeout
        self.killed_at = None

    def stat(self):
        try:
            st = os.stat(self.wal)
            return st.st_size, st.st_mtime_ns
        except FileNotFoundError:
            return None

    def run(self):
        time.sleep(self.after)
        deadline = time.monotonic() + self.timeout
        before = self.stat()
        while time.monotonic() < deadline:
            now = self.stat()
            if now != before:
                os.kill(self.pid, signal.SIGKILL)
                self.killed_at = time.monotonic()
                return
            time.sleep(0.0001)


async def stream_until_killed(env, f, watcher, first_tag):
    """Send cracks as fast as the fake takes them until the watcher killed the daemon; returns
    {tag: arrival time (monotonic)} of the crack events that came back."""
    arrived = {}
    tag = first_tag
    seen = len(f.messages)
    deadline = time.monotonic() + watcher.after + watcher.timeout + 2
    while watcher.killed_at is None and time.monotonic() < deadline:
        for _ in range(10):
            env.fake.send_crack(env.sound, intensity=30, duration_ms=tag)
            tag += 1
        try:
            await f.drain(0.002)
        except Exception:  # the connection died with the daemon
            break
        now = time.monotonic()
        for m in f.messages[seen:]:
            if m.get('type') == 'event' and m.get('kind') == 'crack':
                arrived.setdefault(m['duration_ms'], now)
        seen = len(f.messages)
    return arrived


@test('history-kill-9-mid-write', deadline=90, daemon_args=('--state-dir', '{tmpdir}/state'))
async def t_kill_mid_write(env):
    state = os.path.join(env.tmpdir, 'state')
    wal = statedb.path(state) + '-wal'
    await env.streaming()
    streams, last_kept, kept_before = [], 0, {}
    for round_ in range(3):
        async with await Feed.open(env.port) as f:
            h = await f.next(what='hello')
            streams.append(h['stream'])
            watcher = WalWatcher(wal, env.daemon.proc.pid, 1.2 + 0.3 * round_, 3.0)
            watcher.start()
            arrived = await stream_until_killed(env, f, watcher, 10000 * (round_ + 1))
            watcher.join(5)
        check(watcher.killed_at is not None, f'round {round_ + 1}: the history was not written '
              f'while cracks streamed (no change of {wal} within 3 s)')
        env.daemon.proc.wait(10)
        check(statedb.integrity(state) == 'ok', f'round {round_ + 1}: the database after kill -9 '
              'mid-write is not sound')
        kept = {e[3].get('duration_ms'): e[0] for e in statedb.events(state)
                if e[1] == 'crack'}
        # HISTORY_FLUSH_MS is 1 s: what arrived longer ago than that (and a margin) is kept
        old = [t for t, at in arrived.items() if at < watcher.killed_at - 1.5]
        missing = [t for t in old if t not in kept]
        check(arrived and not missing, f'round {round_ + 1}: {len(missing)} of {len(old)} '
              f'crack events older than 1.5 s at the kill are not in the history '
              f'(tags {sorted(missing)[:10]}); {len(arrived)} arrived in all')
        gone = [t for t, seq in kept_before.items() if kept.get(t) != seq]
        check(not gone, f'round {round_ + 1}: events kept in earlier rounds are gone or '
              f'renumbered (tags {sorted(gone)[:10]})')
        kept_before = kept
        last_kept = max(kept.values())
        print(f'[round {round_ + 1}: {len(arrived)} streamed, {len(kept)} kept]', end=' ')
        env.restart_daemon(kill=True)   # already dead: starts it again
        await env.streaming(prime=False)
    async with await Feed.open(env.port, '?since=0') as f:
        h = await f.next(what='hello')
        streams.append(h['stream'])
        check(len(set(streams)) == len(streams), f'every crash starts a new stream: {streams}')
        check(h['last_seq'] >= last_kept, f'numbering after the crashes: last_seq '
              f'{h["last_seq"]} below the last kept event {last_kept}')
        env.fake.send_crack(env.sound, intensity=30, duration_ms=99)
        ev = await f.wait_for(lambda m: m.get('kind') == 'crack' and m.get('duration_ms') == 99,
                              5, 'a crack after the last restart')
        check(ev['seq'] > last_kept, f'numbering continues after the crashes: {ev["seq"]} '
              f'after {last_kept}')
        await f.drain(0.2)
        check_seqs(f.messages, 'the replay after three crashes')
