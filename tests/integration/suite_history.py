"""The durable store (issue 7): events outlive a restart with their numbers, a clean restart
keeps the stream, a kill -9 loses at most the last second and leaves a sound database, and a
full disk lets events stream live while writing waits, then catches up. Registered in
suite.TESTS like suite.py's tests."""

import asyncio
import os
import subprocess
import time

import statedb
from feed import Feed
from procs import check, wait_until
from suite import test
from suite_service import notify_socket, received

STATE = '{tmpdir}/state'


async def cracks(env, f, tags, what):
    """Send one crack per tag (its duration_ms) and return their events, in order."""
    last = max([m['seq'] for m in f.messages if 'seq' in m] or [0])
    for tag in tags:
        env.fake.send_crack(env.sound, intensity=50, duration_ms=tag)
    got = []
    for tag in tags:
        got.append(await f.wait_for(lambda m, t=tag: m['type'] == 'event'
                                    and m.get('kind') == 'crack' and m.get('duration_ms') == t
                                    and m['seq'] > last, 5, f'{what}: the crack tagged {tag}'))
    return got


@test('history-restart-keeps-events-and-numbers', daemon_args=('--state-dir', STATE))
async def t_restart(env):
    await env.streaming()
    async with await Feed.open(env.port) as f:
        first = await f.next(what='hello')
        before = await cracks(env, f, [701, 702, 703], 'before the restart')
    env.restart_daemon()
    async with await Feed.open(env.port) as f:
        h = await f.next(what='hello')
        check(h['stream'] == first['stream'], f'a clean restart keeps the stream: '
              f'{first["stream"]} -> {h["stream"]}')
        check(h['oldest_seq'] <= before[0]['seq'] < before[-1]['seq'] <= h['last_seq'],
              f'the ring holds the events before the restart: hello {h["oldest_seq"]}..'
              f'{h["last_seq"]}, cracks {[m["seq"] for m in before]}')
    # a client of the first run resumes where it was, across the restart
    async with await Feed.open(env.port, f'?since={before[0]["seq"] - 1}') as f:
        await f.next(what='hello')
        again = [m for m in await f.events(3) if m.get('kind') == 'crack']
        check(again == before, f'the same events after the restart: {again} vs {before}')
        await env.streaming(prime=False)
        after = await cracks(env, f, [704], 'after the restart')
        check(after[0]['seq'] > h['last_seq'], f'numbering continues: {after[0]["seq"]} after '
              f'{h["last_seq"]}')
        await f.drain(0.2)
        seqs = [m['seq'] for m in f.messages if 'seq' in m]
        check(seqs == sorted(set(seqs)), f'no duplicate or reordered seq: {seqs}')
    check('history: ' in env.daemon.stderr_text() and 'continuing stream' in
          env.daemon.stderr_text(), 'the log says the stream continues')


@test('history-kill-9', daemon_args=('--state-dir', STATE))
async def t_kill(env):
    state = os.path.join(env.tmpdir, 'state')
    await env.streaming()
    async with await Feed.open(env.port) as f:
        first = await f.next(what='hello')
        kept = await cracks(env, f, [801, 802, 803], 'before the kill')
        await asyncio.sleep(1.5)   # more than HISTORY_FLUSH_MS: these are on disk
        maybe = await cracks(env, f, [804], 'just before the kill')
    env.restart_daemon(kill=True)
    check(statedb.integrity(state) == 'ok', 'the database is sound after kill -9')
    async with await Feed.open(env.port, '?since=0') as f:
        h = await f.next(what='hello')
        check(h['stream'] != first['stream'], 'after a crash the stream id is a new one')
        await f.drain(0.3)
        got = [m for m in f.messages if m.get('kind') == 'crack']
        tags = [m['duration_ms'] for m in got]
        check(all(m in got for m in kept), f'events older than a second survive kill -9: '
              f'{tags}')
        lost = [m for m in maybe if m not in got]
        print(f'[the last crack, sent just before the kill, was '
              f'{"lost" if lost else "kept"}]', end=' ')
        await env.streaming(prime=False)
        new = await cracks(env, f, [805], 'after the crash')
        check(new[0]['seq'] > max(m['seq'] for m in got), 'numbering continues after the crash')


def full_disk(env):
    """The state directory on a 2 MB file system of its own, and a notify socket."""
    state = os.path.join(env.tmpdir, 'state')
    os.makedirs(state)
    r = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=2m,mode=0750', 'tmpfs', state],
                       capture_output=True, text=True)
    check(r.returncode == 0, f'this test mounts a small tmpfs (needs root): {r.stderr.strip()}')
    env.mounted = state
    notify_socket(env)


def fill(path):
    """Fill the file system holding path; returns the filler file."""
    filler = os.path.join(path, 'filler')
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        for size in (65536, 4096, 512, 1):   # down to the last byte
            try:
                while True:
                    os.write(fd, b'\0' * size)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


@test('history-disk-full', prepare=full_disk, deadline=90,
      daemon_args=('--state-dir', STATE))
async def t_disk_full(env):
    state = env.mounted
    try:
        await env.streaming()
        filler = fill(state)
        async with await Feed.open(env.port) as f:
            await f.next(what='hello')
            live = await cracks(env, f, [901, 902, 903], 'with the disk full')
            check(len(live) == 3, 'events still stream live with the disk full')
            wait_until(lambda: 'history: cannot write' in env.daemon.stderr_text(), 10,
                       'the log to say the history cannot be written')
            check('the disk is full' in env.daemon.stderr_text(), 'the log says why')
            msgs = received(env, 3, until=lambda m: 'the disk is full' in m.get('STATUS', ''))
            check(any('history not written: the disk is full' in m.get('STATUS', '')
                      for m in msgs), f'the service status says so: {msgs}')
            os.unlink(filler)
            start = time.monotonic()
            wait_until(lambda: 'history: writing again' in env.daemon.stderr_text(), 40,
                       'writing to resume once space returns')
            print(f'[writing resumed {time.monotonic() - start:.1f} s after space returned]',
                  end=' ')
            msgs = received(env, 2)
        problems = env.daemon.stop()
        env.daemon = None
        check(not problems, '; '.join(problems))
        kept = [e[3] for e in statedb.events(state) if e[1] == 'crack']
        check(all(m in kept for m in live), 'the events from while the disk was full are kept')
    finally:
        if env.daemon is not None:
            env.daemon.stop()
            env.daemon = None
        subprocess.run(['umount', '-l', state], capture_output=True)


@test('annotate-events', daemon_args=('--state-dir', STATE, '--ring-size', '8'))
async def t_annotate(env):
    """The annotate command: a note on a crack becomes an annotation event for every client,
    also for an event the ring no longer holds (found in the history database); it is kept
    across a restart; bad requests get clear errors."""
    from suite_alerts import command
    await env.streaming()
    async with await Feed.open(env.port) as f, await Feed.open(env.port) as other:
        await f.next(what='hello')
        await other.next(what='hello')
        first = (await cracks(env, f, [611], 'the crack to annotate'))[0]
        r = await command(f, {'type': 'annotate', 'event': first['seq'], 'pain': 3,
                              'note': 'stood up after a long call', 'id': 'a1'})
        check(r == {'type': 'reply', 'id': 'a1', 'ok': True, 'result': 'ok'}, f'annotate: {r}')
        ev = await other.wait_for(lambda m: m.get('kind') == 'annotation', 5,
                                  'the annotation event on another client')
        check(ev['event'] == first['seq'] and ev['of'] == 'crack' and ev['pain'] == 3
              and ev['stiffness'] is None and ev['note'] == 'stood up after a long call'
              and ev['sensor'] == env.sound.address, f'annotation event {ev}')
        # push the crack out of the 8-event ring: it is still found in the database
        await cracks(env, f, list(range(612, 622)), 'ten more cracks')
        h = await Feed.open(env.port)
        hello = await h.next(what='hello')
        await h.close()
        check(hello['oldest_seq'] > first['seq'], f'the ring moved on: {hello["oldest_seq"]}')
        r = await command(f, {'type': 'annotate', 'event': first['seq'], 'stiffness': 6, 'id': 2})
        check(r.get('ok') is True, f'annotating an event no longer in the ring: {r}')
        r = await command(f, {'type': 'annotate', 'event': 10 ** 9, 'pain': 1, 'id': 3})
        check(r.get('code') == 'unknown-event', f'an unknown event: {r}')
        r = await command(f, {'type': 'annotate', 'event': ev['seq'], 'pain': 1, 'id': 4})
        check(r.get('code') == 'not-annotatable', f'annotating an annotation: {r}')
        r = await command(f, {'type': 'annotate', 'event': first['seq'], 'pain': 12, 'id': 5})
        check(r.get('code') == 'bad-command', f'pain 12: {r}')
    env.restart_daemon()
    notes = [e[3] for e in statedb.events(os.path.join(env.tmpdir, 'state'))
             if e[1] == 'annotation']
    check([(n['event'], n['pain'], n['stiffness']) for n in notes] ==
          [(first['seq'], 3, None), (first['seq'], None, 6)], f'annotations kept: {notes}')
