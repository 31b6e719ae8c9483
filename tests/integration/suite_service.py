"""The daemon under a service manager (issue 7), with a notify socket of our own in place of
systemd's: READY=1 with a status line, WATCHDOG=1 pings from the event loop, RELOADING=1 and
READY=1 around SIGHUP, STOPPING=1 and a WebSocket close 1001 "going away" on SIGTERM, and a
clean exit. (The real systemd runs it in tests/systemd/.) Registered in suite.TESTS like
suite.py's tests."""

import asyncio
import os
import signal
import socket
import time

import websockets

from feed import Feed
from procs import check
from suite import test


def notify_socket(env):
    """A datagram socket where the daemon's sd_notify() messages arrive; a 1 s watchdog."""
    path = os.path.join(env.tmpdir, 'notify.sock')
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.setblocking(False)
    env.notify = sock
    env.daemon_env = {'NOTIFY_SOCKET': path, 'WATCHDOG_USEC': '1000000'}


def received(env, timeout, until=None):
    """The notify messages (each a dict of its KEY=VALUE lines, with its arrival time) that
    arrive within `timeout` seconds, or until one satisfies `until`."""
    out = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            data = env.notify.recv(4096)
        except BlockingIOError:
            time.sleep(0.01)
            continue
        msg = dict(line.split('=', 1) for line in data.decode().splitlines() if '=' in line)
        msg['at'] = time.monotonic()
        out.append(msg)
        if until and until(msg):
            break
    return out


@test('service-notify-watchdog-and-going-away', prepare=notify_socket)
async def t_service(env):
    msgs = received(env, 10, until=lambda m: m.get('READY') == '1')
    check(msgs and msgs[-1].get('READY') == '1' and 'STATUS' in msgs[-1],
          f'READY=1 with a status line: {msgs}')
    await env.streaming()
    # pings every 500 ms (half of WATCHDOG_USEC) from the loop, and the status follows
    msgs = received(env, 2.2)
    pings = [m for m in msgs if m.get('WATCHDOG') == '1']
    check(3 <= len(pings) <= 6, f'{len(pings)} watchdog pings in 2.2 s: {msgs}')
    gaps = [b['at'] - a['at'] for a, b in zip(pings, pings[1:])]
    check(all(0.3 < g < 0.8 for g in gaps), f'pings {gaps} s apart, not every 0.5 s')
    status = [m['STATUS'] for m in msgs if 'STATUS' in m]
    check(any('3 sensors streaming' in s for s in status),
          f'the status line counts the streaming sensors: {status}')
    check('watchdog ping every 500 ms' in env.daemon.stderr_text(), 'the log names the watchdog')

    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        msgs = received(env, 1.2)
        check(any('1 client' in m.get('STATUS', '') for m in msgs),
              f'the status line counts the client: {msgs}')
        env.daemon.proc.send_signal(signal.SIGHUP)
        msgs = received(env, 5, until=lambda m: m.get('READY') == '1')
        kinds = [k for m in msgs for k in ('RELOADING', 'READY') if m.get(k) == '1']
        check(kinds == ['RELOADING', 'READY'], f'around SIGHUP: {msgs}')

        # SIGTERM: STOPPING=1, the client is told the server goes away, a clean exit
        start = time.monotonic()
        problems = env.daemon.stop()
        took = time.monotonic() - start
        env.daemon = None   # stopped here; nothing left for the harness to stop
        check(not problems, 'stopping: ' + '; '.join(problems))
        check(took < 3, f'SIGTERM took {took:.1f} s with a client connected')
        msgs = received(env, 0.5)
        check(any(m.get('STOPPING') == '1' for m in msgs), f'STOPPING=1: {msgs}')
        try:
            while True:
                await asyncio.wait_for(f.ws.recv(), 2)
        except websockets.ConnectionClosed as closed:
            code = closed.rcvd.code if closed.rcvd else None
            reason = closed.rcvd.reason if closed.rcvd else None
            check(code == 1001 and reason == 'going away',
                  f'the client got close {code} {reason!r}, not 1001 "going away"')
    env.notify.close()
