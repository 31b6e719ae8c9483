# tests/sim/daemon_harness.py - run spinewatchd against the simulated BlueZ: a private bus,
# fake_bluez.py and the daemon on 127.0.0.1 with a free port, a WebSocket feed recorder, and a
# blocking client for the simulator's control interface. Used by test_daemon.py and
# tests/bench/notify_paths.py. Every process is ours, stopped by its PID; every wait is bounded.
#
#     with DaemonEnv("build/spinewatchd", sim_args=["--scenario", "quick"]) as env:
#         env.wait_states({CLIP: "streaming"}, 15)
#         env.sim("DropLink", "s", CLIP)
#         env.feed.events()      # every sequenced event received so far

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import dbus
import dbus.bus

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import simbus  # noqa: E402

import websockets  # noqa: E402

SUBPROTOCOL = "spinewatch.v1"
SIM_PATH, SIM_IFACE = "/io/spinewatch/sim", "io.spinewatch.Sim1"
ADAPTER = "/org/bluez/hci0"
PROPS = "org.freedesktop.DBus.Properties"

CLIP, MIC, MICROBIT, THINGY = ("C0:FF:EE:00:00:01", "C0:FF:EE:00:00:02", "C0:FF:EE:00:00:03",
                               "C0:FF:EE:00:00:04")
ALL4 = (CLIP, MIC, MICROBIT, THINGY)


class Failure(AssertionError):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


def dev_path(address):
    return "%s/dev_%s" % (ADAPTER, address.replace(":", "_"))


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, timeout, what, interval=0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise Failure("timed out after %g s waiting for %s" % (timeout, what))
        time.sleep(interval)


def stop_pid(proc, timeout=5.0):
    """TERM by PID, wait, then KILL. Returns the exit status."""
    if proc is None:
        return None
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


def cpu_seconds(pid):
    """utime + stime of a process from /proc/PID/stat, in seconds."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks     # fields 14 and 15 of stat(5)


# ------------------------------------------------------------------------- the feed

class FeedRecorder(threading.Thread):
    """One WebSocket connection to the daemon's feed in a thread of its own, recording
    every message with its CLOCK_MONOTONIC receive time."""

    def __init__(self, port, query="?since=0"):
        super().__init__(daemon=True)
        self.uri = "ws://127.0.0.1:%d/ws%s" % (port, query)
        self.lock = threading.Lock()
        self.messages = []            # (monotonic receive time, message)
        self.error = None
        self.closed = False
        self.ready = threading.Event()
        self._stopping = False

    def run(self):
        try:
            asyncio.run(self._main())
        except Exception as e:        # recorded, reported by the test
            self.error = "%s: %s" % (type(e).__name__, e)
        finally:
            self.closed = True
            self.ready.set()

    async def _main(self):
        async with websockets.connect(self.uri, subprotocols=[SUBPROTOCOL], open_timeout=5,
                                      close_timeout=1, max_size=1 << 22, max_queue=None,
                                      compression=None) as ws:
            self.ready.set()
            while not self._stopping:
                try:
                    frame = await asyncio.wait_for(ws.recv(), 0.2)
                except asyncio.TimeoutError:
                    continue
                t = time.monotonic()
                msg = json.loads(frame)
                with self.lock:
                    self.messages.append((t, msg))

    def stop(self):
        self._stopping = True
        self.join(3)

    def snapshot(self, since=0):
        with self.lock:
            return self.messages[since:]

    def mark(self):
        with self.lock:
            return len(self.messages)

    def of_type(self, type_, since=0, **match):
        return [m for _, m in self.snapshot(since) if m.get("type") == type_
                and all(m.get(k) == v for k, v in match.items())]

    def events(self, since=0, **match):
        return self.of_type("event", since, **match)

    def check_sequence(self):
        """Event seq strictly increasing, no duplicates, consecutive except where a `gap`
        message says so. Returns the number of events."""
        check(self.error is None or self.closed, "feed error: %s" % self.error)
        last = None
        n = 0
        for _, m in self.snapshot():
            if m.get("type") == "gap":
                check(last is None or m["from"] == last + 1, "gap %r after seq %r" % (m, last))
                last = m["to"]
            elif m.get("type") == "event":
                seq = m.get("seq")
                check(isinstance(seq, int), "event without integer seq: %r" % m)
                check(last is None or seq > last, "seq went %r -> %r (duplicate or backwards)"
                      % (last, seq))
                check(last is None or seq == last + 1, "seq jumped %r -> %r without a gap"
                      % (last, seq))
                last = seq
                n += 1
        return n


async def _hello(port):
    async with websockets.connect("ws://127.0.0.1:%d/ws" % port, subprotocols=[SUBPROTOCOL],
                                  open_timeout=5, close_timeout=1, max_size=1 << 22,
                                  compression=None) as ws:
        msg = json.loads(await asyncio.wait_for(ws.recv(), 5))
        check(msg.get("type") == "hello", "first message is not hello: %r" % msg)
        return msg


def sensor_entry(hello, address):
    for s in hello.get("sensors", []):
        if s.get("address") == address:
            return s
    return None


# ---------------------------------------------------------------------- environment

class DaemonEnv:
    """A private bus, the simulator and spinewatchd. `before_daemon(env)` runs after the
    simulator is up and before the daemon starts (to set simulator controls)."""

    def __init__(self, daemon, sim_args=(), daemon_args=(), before_daemon=None,
                 verbose=False, feed=True, label="test"):
        self.daemon_path = os.path.abspath(daemon)
        self.sim_args = list(sim_args)
        self.daemon_args = list(daemon_args)
        self.before_daemon = before_daemon
        self.verbose = verbose
        self.want_feed = feed
        self.label = label
        self.sb = None
        self.daemon = None
        self.feed = None
        self.port = None
        self.conn = None
        self.daemon_log = None

    # -- lifecycle
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        self.sb = simbus.SimBus(self.sim_args, stderr=None if self.verbose else subprocess.DEVNULL)
        self.sb.start()
        self.conn = dbus.bus.BusConnection(self.sb.address)
        if self.before_daemon:
            self.before_daemon(self)
        self.start_daemon()

    def start_daemon(self):
        self.port = free_port()
        self.daemon_log = os.path.join(self.sb.tmpdir, "daemon.log")
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.sb.address)
        logf = open(self.daemon_log, "ab")
        # one crack event per report (no merging into episodes, no crack-rate alerts): the
        # tests and the benchmark count them; tests/integration/suite_alerts.py covers those
        extra = []
        if "--crack-merge-ms" not in self.daemon_args:
            extra += ["--crack-merge-ms", "0"]
        if "--disable-alerts" not in self.daemon_args:
            extra += ["--disable-alerts", "crack-rate"]
        # state kept across restarts of this daemon, never the machine's
        if "--state-dir" not in self.daemon_args:
            extra += ["--state-dir", os.path.join(self.sb.tmpdir, "state")]
        args = [self.daemon_path, "--config", "/dev/null", "--listen", "127.0.0.1:%d" % self.port] + extra + self.daemon_args
        self.daemon = subprocess.Popen(args, env=env, stdin=subprocess.DEVNULL,
                                       stdout=logf, stderr=logf)
        logf.close()

        def listening():
            check(self.daemon.poll() is None, "spinewatchd exited with %s:\n%s"
                  % (self.daemon.returncode, self.log_tail()))
            try:
                with socket.create_connection(("127.0.0.1", self.port), 0.2):
                    return True
            except OSError:
                return False
        wait_until(listening, 10, "spinewatchd to listen on port %d" % self.port)
        if self.want_feed:
            self.feed = FeedRecorder(self.port)
            self.feed.start()
            self.feed.ready.wait(5)
            check(self.feed.error is None and not self.feed.closed,
                  "feed connection failed: %s" % self.feed.error)

    def stop(self):
        """Stop everything we started, by PID, whatever fails on the way."""
        status = None
        try:
            if self.feed is not None:
                self.feed.stop()
        finally:
            try:
                status = stop_pid(self.daemon, 10) if self.daemon is not None else None
            finally:
                if self.conn is not None:
                    try:
                        self.conn.close()
                    except Exception:
                        pass
                    self.conn = None
                if self.sb is not None:
                    if self.verbose and self.daemon_log and os.path.exists(self.daemon_log):
                        sys.stderr.write(self.log_tail(200))
                    self.sb.stop()
                    self.sb = None
        return status

    def log_tail(self, lines=40):
        try:
            with open(self.daemon_log, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except (OSError, TypeError):
            return ""

    def daemon_alive(self):
        return self.daemon is not None and self.daemon.poll() is None

    # -- the simulator
    def sim(self, method, signature=None, *args, timeout=10.0):
        return self.conn.call_blocking("org.bluez", SIM_PATH, SIM_IFACE, method, signature,
                                       args, timeout=timeout)

    def bluez(self, path, iface, method, signature=None, *args, timeout=10.0):
        return self.conn.call_blocking("org.bluez", path, iface, method, signature, args,
                                       timeout=timeout)

    def set_powered(self, on):
        self.bluez(ADAPTER, PROPS, "Set", "ssv", "org.bluez.Adapter1", "Powered",
                   dbus.Boolean(on))

    def device(self, address):
        return self.sim("GetDevice", "s", address)

    def calls(self, member=None):
        return [(float(t), str(s), str(p), str(m), list(a)) for t, s, p, m, a in self.sim("GetCalls")
                if member is None or m == member]

    def restart_sim(self, kill=True, pause=0.5):
        """bluetoothd dies (SIGKILL, or TERM) and comes back `pause` s later. The bus
        connection of ours stays (it is to the dbus-daemon)."""
        if kill:
            self.sb.kill_sim()
        else:
            self.sb.stop_sim()
        time.sleep(pause)
        self.sb.start_sim()

    # -- the feed
    def hello(self):
        return asyncio.run(_hello(self.port))

    def sensors(self):
        return {s["address"]: s for s in self.hello().get("sensors", [])}

    def wait_states(self, want, timeout, what=None):
        """Poll hello until every address in `want` has one of the wanted states (a string or
        a tuple of them). Returns the sensors dict."""
        last = {}

        def ok():
            check(self.daemon_alive(), "spinewatchd died:\n%s" % self.log_tail())
            last.clear()
            last.update(self.sensors())
            for addr, states in want.items():
                states = (states,) if isinstance(states, str) else states
                if last.get(addr, {}).get("state") not in states:
                    return False
            return True
        try:
            wait_until(ok, timeout, what or "sensor states %r" % (want,), 0.2)
        except Failure as e:
            summary = {a: (s.get("state"), s.get("reason")) for a, s in last.items()}
            raise Failure("%s; sensors: %r\n--- daemon log:\n%s" % (e, summary, self.log_tail(25)))
        return dict(last)

    def wait_received_grows(self, addresses, timeout=10, by=5):
        """Every sensor's `received` counter grows by at least `by` (from now)."""
        start = {a: self.sensors().get(a, {}).get("received") or 0 for a in addresses}

        def grown():
            now = self.sensors()
            return all((now.get(a, {}).get("received") or 0) >= start[a] + by for a in addresses)
        wait_until(grown, timeout, "received counters of %s to grow" % (list(addresses),), 0.2)
