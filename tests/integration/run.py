#!/usr/bin/python3
"""
tests/integration/run.py - runs the integration suite (tests/integration/suite.py and
suite_real_world.py; the docs test last, as it checks what all others received) against one
spinewatchd binary: for every test a private dbus-daemon, python-dbusmock's bluez5 template with
our fake sensors (fakebluez.py) and a fresh daemon on a free 127.0.0.1 port, each test under a
hard deadline, everything stopped by PID afterwards. A test also fails if the daemon dies, does
not exit 0 on SIGTERM, or prints a sanitizer report.

    /usr/bin/python3 tests/integration/run.py --daemon build/spinewatchd [--only NAME] [--keep]
    /usr/bin/python3 tests/integration/run.py --self-test    # the fake BlueZ alone, no daemon
    /usr/bin/python3 tests/integration/run.py --daemon build/spinewatchd \
        --wrap 'valgrind --error-exitcode=99 ...' --time-factor 4 --only NAME   # under valgrind
"""

import argparse
import asyncio
import os
import shutil
import signal
import sys
import tempfile
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.dont_write_bytecode = True  # keep the source tree clean

import shlex  # noqa: E402

import fakebluez  # noqa: E402
import procs  # noqa: E402
import feed  # noqa: E402
import suite  # noqa: E402
import suite_real_world  # noqa: E402,F401  (registers its tests in suite.TESTS)
import suite_settings  # noqa: E402,F401  (likewise)
import suite_alerts  # noqa: E402,F401  (likewise)
import suite_stats  # noqa: E402,F401  (likewise)
import suite_web  # noqa: E402,F401  (likewise)
import suite_service  # noqa: E402,F401  (likewise)
import suite_history  # noqa: E402,F401  (likewise)
import suite_protocol  # noqa: E402,F401  (likewise)
import suite_cli  # noqa: E402,F401  (likewise)
import suite_access  # noqa: E402,F401  (likewise)
import suite_http  # noqa: E402,F401  (likewise)
import suite_schema  # noqa: E402,F401  (likewise)
import suite_examples  # noqa: E402,F401  (likewise)
import suite_mqtt  # noqa: E402,F401  (likewise)
import suite_faults  # noqa: E402,F401  (likewise)
from procs import Daemon, PrivateBus, TestFailure, check  # noqa: E402

REPO = os.path.dirname(os.path.dirname(HERE))
SETUP_SLACK = 60  # seconds on top of a test's own deadline for setup and teardown


class HardDeadline(BaseException):
    """Raised by the watchdog alarm when a test (setup and teardown included) overran."""


def _alarm(_signum, _frame):
    raise HardDeadline()


class Env:
    """What a test gets: the fake BlueZ with the test's devices (env.fake, env.sensors; the
    standard sensors unless the test has a populate function; no fake if the test asked for
    none at start), the daemon, its port. test.prepare(env), if given, runs after the fake BlueZ
    was set up and before the daemon starts."""

    def __init__(self, binary, test, tmpdir):
        self.tmpdir = tmpdir
        self.repo = REPO
        self.binary = binary
        self.daemon_args = test.daemon_args
        self.daemon = None
        self.fake = None
        self.fakes = []  # every fake BlueZ started, the current one last
        self.clip = self.sound = self.microbit = self.headset = None
        self.sensors = []
        self.populate = test.populate or Env.standard_devices
        self.cleanups = []  # stop functions a test's prepare adds (a broker), run after all else
        self.bus = PrivateBus(tmpdir)
        try:
            if test.bluez_at_start:
                self.start_bluez()
            if test.prepare:
                test.prepare(self)
            self.daemon = Daemon(binary, self.bus.address, tmpdir, os.path.join(REPO, 'web'),
                                 test.daemon_args, getattr(self, 'daemon_env', None))
            self.port = self.daemon.port
        except BaseException:
            self.close()
            raise

    def restart_daemon(self, kill=False):
        """Stop the daemon with SIGTERM (it must shut down cleanly), or with kill=True SIGKILL
        it (a crash), and start it again with the same arguments; env.port is the new one's."""
        if kill:
            self.daemon.proc.kill()
            self.daemon.proc.wait(10)
            problems = []
        else:
            problems = self.daemon.stop()
        self.daemon = None
        check(not problems, 'restarting spinewatchd: ' + '; '.join(problems))
        self.daemon = Daemon(self.binary, self.bus.address, self.tmpdir,
                             os.path.join(REPO, 'web'), self.daemon_args,
                             getattr(self, 'daemon_env', None))
        self.port = self.daemon.port

    def start_bluez(self, populate=None):
        """Start a fake BlueZ (a new process, so a new unique name; it takes org.bluez over if
        someone holds it) with the test's devices (`populate`, else the test's populate, else
        the standard ones); it becomes env.fake, and env.sensors its sensors. Returns it."""
        label = 'dbusmock' if not self.fakes else f'dbusmock-{len(self.fakes) + 1}'
        fake = fakebluez.FakeBluez(self.bus.address, self.tmpdir, label)
        self.fakes.append(fake)
        self.fake = fake
        self.sensors = (populate or self.populate)(self, fake)
        return fake

    @staticmethod
    def standard_devices(env, fake):
        """The standard sensors (env.clip, env.sound, env.microbit) and a headset (env.headset)
        that the daemon must leave alone."""
        env.clip = fake.add_sensor('C0:FF:EE:00:00:01', 'Spine Clip', 'posture-clip')
        env.sound = fake.add_sensor('C0:FF:EE:00:00:02', 'Spine Sound', 'sound')
        env.microbit = fake.add_sensor('C0:FF:EE:00:00:03', 'BBC micro:bit [zotiv]', 'microbit')
        # not a sensor: the daemon must leave it alone
        env.headset = fake.add_device('11:22:33:44:55:66', 'Headphones', [
            '0000110b-0000-1000-8000-00805f9b34fb', '0000110e-0000-1000-8000-00805f9b34fb'])
        return [env.clip, env.sound, env.microbit]

    async def streaming(self, timeout=15, prime=True):
        """Wait until the daemon subscribed to every sensor; with `prime`, then send each
        sensor valid data (a crack of intensity 1, an upright gravity sample) until every one is
        `streaming` (the state the first data brings), else until each is subscribed or
        streaming. Returns the last hello."""
        self.fake.wait_notifying(self.sensors, timeout)
        addresses = [s.address for s in self.sensors]
        if not prime:
            return await feed.wait_sensor_states(self.port, addresses, suite.READY, timeout)
        deadline = time.monotonic() + timeout
        while True:
            msg = await feed.hello(self.port)
            states = {s.get('address'): s.get('state') for s in msg.get('sensors', [])}
            waiting = [s for s in self.sensors if states.get(s.address) != 'streaming']
            if not waiting:
                return msg
            if time.monotonic() >= deadline:
                raise TestFailure(f'sensors not all streaming {timeout:g} s after data was '
                                  f'sent: hello.sensors = {msg.get("sensors")}')
            for s in waiting:
                if 'crack' in s.chars:
                    self.fake.send_crack(s, intensity=1)
                if 'posture' in s.chars or 'microbit' in s.chars:
                    self.fake.send_gravity(s, 0, 0, 1000)
            await asyncio.sleep(0.1)

    def close(self):
        """Stop everything; returns the daemon's shutdown problems (empty if clean)."""
        problems = []
        try:
            if self.daemon is not None:
                problems = self.daemon.stop()
        finally:
            try:
                for fake in self.fakes:
                    try:
                        fake.stop()
                    except Exception as e:  # stop the others and the bus all the same
                        problems.append(f'stopping a fake BlueZ: {e!r}')
            finally:
                try:
                    self.bus.stop()
                finally:
                    for stop in self.cleanups:
                        try:
                            stop()
                        except Exception as e:  # stop the others all the same
                            problems.append(f'stopping a helper: {e!r}')
        return problems


def run_one(test, binary, keep):
    """Run one test; returns (ok, message)."""
    tmpdir = tempfile.mkdtemp(prefix=f'spinewatch-it-{test.name}-')
    env = None
    ok, message = False, ''
    signal.signal(signal.SIGALRM, _alarm)
    # under a slow wrapper (valgrind) the daemon needs longer for everything
    deadline = int(test.deadline * procs.TIME_FACTOR)
    signal.alarm(deadline + SETUP_SLACK)
    try:
        try:
            env = Env(binary, test, tmpdir)
            asyncio.run(asyncio.wait_for(test.func(env), deadline))
            ok = True
        except asyncio.TimeoutError:
            message = f'deadline of {deadline} s exceeded'
        except TestFailure as e:
            message = str(e)
        except HardDeadline:
            message = f'hard deadline of {deadline + SETUP_SLACK} s exceeded'
        except Exception:  # a bug in the test or an unexpected error: report it in full
            message = traceback.format_exc()
        finally:
            if env is not None:
                problems = env.close()
                if problems:
                    ok = False
                    message = '\n'.join(filter(None, [message, *problems]))
                if not ok and env.daemon is not None:
                    message += '\n--- spinewatchd stderr (tail) ---\n' + env.daemon.stderr_tail()
    except HardDeadline:
        ok, message = False, message + '\nhard deadline exceeded during teardown'
    finally:
        signal.alarm(0)
    if ok and not keep:
        shutil.rmtree(tmpdir, ignore_errors=True)
    else:
        message += f'\n(files kept in {tmpdir})'
    return ok, message


def self_test():
    tmpdir = tempfile.mkdtemp(prefix='spinewatch-it-selftest-')
    bus = PrivateBus(tmpdir)
    try:
        fakebluez.self_test(bus.address, tmpdir)
    finally:
        bus.stop()
    shutil.rmtree(tmpdir, ignore_errors=True)
    print('fake BlueZ self-test: ok')


def main():
    parser = argparse.ArgumentParser(description='spinewatchd integration tests')
    parser.add_argument('--daemon', help='path of the spinewatchd binary to test')
    parser.add_argument('--only', action='append', default=[],
                        help='run only tests whose name contains this (repeatable)')
    parser.add_argument('--exact', action='store_true',
                        help='--only names whole test names, not parts of them')
    parser.add_argument('--keep', action='store_true', help='keep temp dirs of passed tests')
    parser.add_argument('--self-test', action='store_true',
                        help='only check the fake BlueZ (no daemon needed)')
    parser.add_argument('--wrap', default='',
                        help='run the daemon under this command (shell words; {tmpdir} is the '
                        'test\'s temp dir), e.g. valgrind')
    parser.add_argument('--time-factor', type=float, default=1.0,
                        help='stretch test deadlines and daemon start/stop waits (slow wrappers)')
    args = parser.parse_args()
    procs.WRAP = shlex.split(args.wrap)
    procs.TIME_FACTOR = max(1.0, args.time_factor)

    if args.self_test:
        self_test()
        return 0
    if not args.daemon:
        parser.error('--daemon is required')
    binary = os.path.abspath(args.daemon)
    if not os.access(binary, os.X_OK):
        print(f'error: {args.daemon} is not an executable file', file=sys.stderr)
        return 2

    # the docs test checks every message the others received: it runs last
    ordered = sorted(suite.TESTS,
                     key=lambda t: t.name in ('docs-examples-and-keys', 'docs-schemas'))
    tests = [t for t in ordered if not args.only
             or any(o == t.name if args.exact else o in t.name for o in args.only)]
    print(f'spinewatchd integration tests: {binary}', flush=True)
    passed = failed = 0
    for test in tests:
        feed.CURRENT_TEST[0] = test.name
        start = time.monotonic()
        print(f'{test.name} ...', end=' ', flush=True)
        ok, message = run_one(test, binary, args.keep)
        took = time.monotonic() - start
        if ok:
            passed += 1
            print(f'ok ({took:.1f} s)', flush=True)
        else:
            failed += 1
            print(f'FAIL ({took:.1f} s)\n    ' + message.replace('\n', '\n    '), flush=True)
    print(f'{passed} passed, {failed} failed')
    return 1 if failed or not tests else 0


if __name__ == '__main__':
    sys.exit(main())
