"""Settings tests: the settings file, --check-config, refusing to start on a bad file, and
SIGHUP reloading it without dropping feed clients (issue 4's Configuration). Registered in
suite.TESTS like suite.py's tests."""

import os
import resource
import signal
import subprocess

from feed import Feed, hello
import procs
from procs import TestFailure, check, free_port, listening, stop_process, wait_until
from suite import poll, test


def write(path, text):
    with open(path, 'w') as f:
        f.write(text)


def conf_path(env):
    return os.path.join(env.tmpdir, 'spinewatchd.conf')


def first_settings(env):
    write(conf_path(env), '# test settings\n[posture]\nthreshold_deg = 20\ndelay_s = 45\n'
          '[sensors]\ndeny = 11:22:33:44:55:66\n')


@test('settings-file-and-reload', prepare=first_settings,
      daemon_args=('--config', '{tmpdir}/spinewatchd.conf', '--slouch-hysteresis', '4'))
async def t_settings_reload(env):
    h = await hello(env.port)
    det = h['detector']
    check(det['threshold_deg'] == 20.0 and det['delay_ms'] == 45000,
          f'hello.detector {det}: expected the file\'s threshold 20 and delay 45 s')
    check(det['hysteresis_deg'] == 4.0, f'hello.detector {det}: the command line\'s hysteresis 4 '
          'must override the default')
    async with await Feed.open(env.port) as f:
        await f.next(what='hello')
        # a reload with new values: the client stays connected, new clients see them
        write(conf_path(env), '[posture]\nthreshold_deg = 25\ndelay_s = 10\n')
        env.daemon.proc.send_signal(signal.SIGHUP)
        await poll(lambda: 'settings reloaded' in env.daemon.stderr_text(), 5,
                   'the daemon to log "settings reloaded"')
        det = (await hello(env.port))['detector']
        check(det['threshold_deg'] == 25.0 and det['delay_ms'] == 10000,
              f'after SIGHUP hello.detector is {det}: expected threshold 25, delay 10 s')
        check(det['hysteresis_deg'] == 4.0, f'after SIGHUP the command line\'s hysteresis 4 '
              f'must still override: {det}')
        # a bad file: refused with FILE:LINE, the old settings stay, the daemon lives on
        write(conf_path(env), '[posture]\nthreshold_deg = 30\nloudness = 11\n')
        env.daemon.proc.send_signal(signal.SIGHUP)
        want = f'{conf_path(env)}:3: unknown key \'loudness\' in [posture]'
        await poll(lambda: want in env.daemon.stderr_text(), 5, f'the log to say "{want}"')
        check('settings not reloaded' in env.daemon.stderr_text(),
              'a refused reload must say the old settings stay')
        check(env.daemon.alive(), 'the daemon died on a bad settings file at reload')
        det = (await hello(env.port))['detector']
        check(det['threshold_deg'] == 25.0, f'a refused reload changed the settings: {det}')
        # the first client saw no close and still gets messages
        check(not f.ws.closed if hasattr(f.ws, 'closed') else True,
              'the feed client was disconnected by the reloads')
        pong = await f.ws.ping()
        await pong


def run_daemon(binary, *args, timeout=10):
    env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS='unix:path=/nonexistent')
    return subprocess.run([binary, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)


@test('settings-check-and-refuse', bluez_at_start=False)
async def t_settings_check(env):
    binary = env.daemon.argv[0]
    good = os.path.join(env.tmpdir, 'good.conf')
    bad = os.path.join(env.tmpdir, 'bad.conf')
    write(good, '[server]\nring_size = 100\n[sensors]\nallow = C0:FF:EE:00:00:01\n')
    write(bad, '[server]\nring_size = 100\n\n[posture]\ndelay_s = a while\n')
    r = run_daemon(binary, '--config', good, '--check-config')
    check(r.returncode == 0 and 'settings OK' in r.stdout,
          f'--check-config on a good file: status {r.returncode}, stdout {r.stdout!r}, '
          f'stderr {r.stderr!r}')
    r = run_daemon(binary, '--config', bad, '--check-config')
    want = f'{bad}:5: [posture] delay_s: \'a while\' is not a number from 0 to 86400'
    check(r.returncode == 1 and want in r.stderr,
          f'--check-config on a bad file: status {r.returncode}, stderr {r.stderr!r}; expected '
          f'status 1 and "{want}"')
    # not only checked: it refuses to start (before listening or touching D-Bus)
    r = run_daemon(binary, '--config', bad, '--listen', '127.0.0.1:1')
    check(r.returncode == 1 and want in r.stderr,
          f'starting with a bad file: status {r.returncode}, stderr {r.stderr!r}')
    r = run_daemon(binary, '--config', os.path.join(env.tmpdir, 'missing.conf'), '--check-config')
    check(r.returncode == 1 and 'No such file' in r.stderr,
          f'an explicit --config that does not exist: status {r.returncode}, {r.stderr!r}')
    r = run_daemon(binary, '--config', good, '--check-config', '--backoff-max', '200')
    check(r.returncode == 1 and 'backoff_max_ms must not be below' in r.stderr,
          f'options are checked with the file: status {r.returncode}, {r.stderr!r}')
    r = run_daemon(binary, '--check-config', '--no-such-option')
    check(r.returncode == 2, f'an unknown option: status {r.returncode} (expected 2, usage)')
    if not env.daemon.alive():
        raise TestFailure('the daemon under test died')


def open_file_limit(pid):
    """(soft, hard) RLIMIT_NOFILE of a process, from /proc/PID/limits."""
    with open(f'/proc/{pid}/limits') as f:
        for line in f:
            if line.startswith('Max open files'):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise TestFailure(f'no open-file limit in /proc/{pid}/limits')


@test('settings-open-file-limit')
async def t_open_file_limit(env):
    # the daemon sets its open-file limit to what max_clients needs (2 a client and 256), so
    # libwebsockets' socket tables do not grow with an inherited 1,048,576, and 1000 clients fit
    # under systemd's default soft limit of 1024
    soft, _ = open_file_limit(env.daemon.proc.pid)
    check(soft == 2 * 64 + 256, f'default max_clients 64: open-file limit {soft}, expected 384')

    def start(max_clients, limits):
        port = free_port()
        err = open(os.path.join(env.tmpdir, f'limit-{max_clients}.stderr'), 'w+b')
        proc = subprocess.Popen(
            [env.daemon.argv[0], '--config', '/dev/null', '--listen', f'127.0.0.1:{port}',
             '--state-dir', os.path.join(env.tmpdir, f'state-{max_clients}'),
             '--max-clients', str(max_clients)],
            env=dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=env.bus.address),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
            preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, limits))
        return proc, port, err

    for max_clients, limits, want, warns in ((1000, (1024, 4096), 2256, False),
                                              (5000, (1024, 4096), 4096, True)):
        proc, port, err = start(max_clients, limits)
        try:
            wait_until(lambda: listening(proc, port), 15 * procs.TIME_FACTOR,
                       f'spinewatchd --max-clients {max_clients} to listen')
            soft, hard = open_file_limit(proc.pid)
            err.seek(0)
            text = err.read().decode('utf-8', 'replace')
        finally:
            status = stop_process(proc, timeout=15 * procs.TIME_FACTOR)
            err.close()
        check(status == 0, f'--max-clients {max_clients}: exit status {status} on SIGTERM')
        check((soft, hard) == (want, 4096),
              f'--max-clients {max_clients} under (1024, 4096): limit ({soft}, {hard}), '
              f'expected ({want}, 4096)')
        warned = 'only 4096 files may be open (hard limit), 10256 wanted' in text
        check(warned == warns, f'--max-clients {max_clients}: warning about the hard limit '
              f'{"missing" if warns else "unexpected"}: {text[-2000:]!r}')
