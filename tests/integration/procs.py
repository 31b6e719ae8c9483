"""
tests/integration/procs.py - the processes an integration test starts: a private dbus-daemon,
the spinewatchd under test (with its free loopback port and its stderr checked for sanitizer
reports), and the helper that stops any child by its PID with a bounded wait.
"""

import os
import re
import select
import signal
import socket
import subprocess
import time


class TestFailure(AssertionError):
    """An assertion about the daemon's behaviour failed."""


def check(condition, message):
    if not condition:
        raise TestFailure(message)


def wait_until(predicate, timeout, what, interval=0.02):
    """Poll `predicate` until it returns a true value (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TestFailure(f'timed out after {timeout:g} s waiting for {what}')
        time.sleep(interval)


def stop_process(proc, timeout=10.0):
    """SIGTERM the child by PID, wait up to `timeout` s, then SIGKILL it. Returns its exit
    status (negative: killed by that signal)."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(5)
    return proc.returncode


def listening(proc, port, tail=lambda: ''):
    """True once something accepts on 127.0.0.1:port, False while not yet; raises if proc has
    exited meanwhile (with tail(), e.g. the end of its stderr, in the message)."""
    if proc.poll() is not None:
        raise TestFailure(f'spinewatchd exited with status {proc.returncode} at start-up'
                          + (f'; stderr:\n{tail()}' if tail() else ''))
    try:
        with socket.create_connection(('127.0.0.1', port), timeout=1):
            return True
    except OSError:
        return False


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(('127.0.0.1', 0))
        return s.getsockname()[1]


class PrivateBus:
    """A dbus-daemon of our own on a unix socket in `tmpdir` (session policy: anyone may own
    names), in the foreground so that we hold its PID."""

    def __init__(self, tmpdir):
        self.address = None
        self.proc = subprocess.Popen(
            ['dbus-daemon', '--session', '--nofork', '--nopidfile',
             f'--address=unix:path={tmpdir}/bus', '--print-address=1'],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        try:
            ready, _, _ = select.select([self.proc.stdout], [], [], 10)
            check(ready, 'dbus-daemon did not print its address within 10 s')
            self.address = self.proc.stdout.readline().decode().strip()
            check(self.address.startswith('unix:'), f'dbus-daemon printed {self.address!r}')
        except BaseException:
            self.stop()
            raise

    def stop(self):
        stop_process(self.proc)
        self.proc.stdout.close()


# What AddressSanitizer, LeakSanitizer and UBSan print when they find something.
# And valgrind memcheck (run.py --wrap): a non-zero error count.
SANITIZER_REPORT = re.compile(
    r'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:|SUMMARY: (Address|Undefined|Leak)'
    r'|ERROR SUMMARY: [1-9]')


# A command the daemon runs under (run.py --wrap, e.g. valgrind), as a list; `{tmpdir}` in it is
# the test's temp dir. The wrapper must run the daemon in its own process (valgrind does), so
# the PID we signal is the daemon's. TIME_FACTOR stretches start-up and shutdown waits.
WRAP = []
TIME_FACTOR = 1.0


class Daemon:
    """spinewatchd on a free 127.0.0.1 port, its system bus pointed at our private bus; `{tmpdir}`
    in an argument is the test's temp dir. argv is the daemon's own command line (without the
    wrapper)."""

    def __init__(self, binary, bus_address, tmpdir, web_root, args=(), extra_env=None):
        self.port = free_port()
        self.stderr_path = os.path.join(tmpdir, 'spinewatchd.stderr')
        env = dict(os.environ)
        # never inherit a service manager's sockets; a test gives its own in extra_env
        for name in ('NOTIFY_SOCKET', 'WATCHDOG_USEC', 'WATCHDOG_PID', 'JOURNAL_STREAM'):
            env.pop(name, None)
        env.update(extra_env or {})
        env['DBUS_SYSTEM_BUS_ADDRESS'] = bus_address
        env.setdefault('ASAN_OPTIONS', 'detect_leaks=1')
        env.setdefault('UBSAN_OPTIONS', 'print_stacktrace=1:halt_on_error=1')
        args = [a.replace('{tmpdir}', tmpdir) for a in args]
        # hermetic: a settings file installed on this machine must not change the test
        if '--config' not in args:
            args = ['--config', '/dev/null', *args]
        # and so must the state kept across restarts (calibrations, the per-day record)
        if '--state-dir' not in args:
            args = ['--state-dir', os.path.join(tmpdir, 'state'), *args]
        # transport tests count one event per crack report: no merging into episodes, no
        # crack-rate alerts, unless the test asks (suite_alerts.py tests the defaults)
        if '--crack-merge-ms' not in args:
            args = ['--crack-merge-ms', '0', *args]
        if '--disable-alerts' not in args:
            args = ['--disable-alerts', 'crack-rate', *args]
        self.argv = [binary, '--listen', f'127.0.0.1:{self.port}', '--web-root', web_root,
                     '-v', *args]
        wrap = [a.replace('{tmpdir}', tmpdir) for a in WRAP]
        with open(self.stderr_path, 'wb') as err:
            self.proc = subprocess.Popen(wrap + self.argv, env=env, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL, stderr=err)
        try:
            wait_until(self._listening, 15 * TIME_FACTOR,
                       f'spinewatchd to listen on port {self.port}')
        except BaseException:
            self.stop()
            raise

    def _listening(self):
        return listening(self.proc, self.port, self.stderr_tail)

    def alive(self):
        return self.proc.poll() is None

    def stderr_text(self):
        with open(self.stderr_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def stderr_tail(self, lines=40):
        return '\n'.join(self.stderr_text().splitlines()[-lines:])

    def stop(self):
        """Stop it with SIGTERM; returns a list of problems (non-zero exit, death by signal,
        sanitizer report on stderr), empty when it shut down cleanly."""
        was_running = self.alive()
        status = stop_process(self.proc, timeout=15 * TIME_FACTOR)
        problems = []
        if not was_running:
            problems.append(f'spinewatchd had already exited (status {status}) before the '
                            'end of the test')
        elif status != 0:
            how = f'signal {-status}' if status < 0 else f'status {status}'
            problems.append(f'spinewatchd ended with {how} on SIGTERM')
        text = self.stderr_text()
        match = SANITIZER_REPORT.search(text)
        if match:
            start = max(0, text.rfind('\n', 0, max(0, match.start() - 200)))
            problems.append('sanitizer report on spinewatchd stderr:\n' + text[start:start + 3000])
        return problems
