# tests/sim/simbus.py - start and stop a private dbus-daemon and the simulated BlueZ
# (fake_bluez.py) for tests. Used by test_sim.py; other Python tests can reuse it:
#
#     with SimBus(extra_args=["--scenario", "quick"]) as sb:
#         env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=sb.address)
#         ...                               # start the daemon with env, talk to sb.address
#
# Every process is started by us and stopped by its PID; every wait has a deadline.

import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FAKE_BLUEZ = os.path.join(HERE, "fake_bluez.py")
PYTHON = "/usr/bin/python3"

BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={path}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""


def stop_process(proc, timeout=3.0):
    """TERM, wait up to `timeout`, then KILL. Returns the exit status."""
    if proc is None:
        return None
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout)


def start_bus(tmpdir, timeout=5.0):
    """A private dbus-daemon listening in tmpdir. Returns (process, address)."""
    conf = os.path.join(tmpdir, "bus.conf")
    with open(conf, "w") as f:
        f.write(BUS_CONFIG.format(path=os.path.join(tmpdir, "bus")))
    proc = subprocess.Popen(["dbus-daemon", "--nofork", "--config-file=" + conf,
                             "--print-address"], stdout=subprocess.PIPE,
                            stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            stop_process(proc)
            raise RuntimeError("dbus-daemon did not start")
        ready, _, _ = select.select([proc.stdout], [], [], left)
        if ready:
            chunk = os.read(proc.stdout.fileno(), 512)
            if not chunk:
                continue
            line += chunk
    return proc, line.decode().strip()


def name_has_owner(address, name="org.bluez"):
    import dbus
    import dbus.bus
    conn = dbus.bus.BusConnection(address)
    try:
        return bool(conn.name_has_owner(name))
    finally:
        conn.close()


class SimBus:
    """A private bus with the simulator on it. `address` is the bus address."""

    def __init__(self, extra_args=(), stderr=None, timeout=10.0):
        self.extra_args = list(extra_args)
        self.stderr = stderr
        self.timeout = timeout
        self.tmpdir = None
        self.bus = None
        self.sim = None
        self.address = None

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start(self):
        self.tmpdir = tempfile.mkdtemp(prefix="spinewatch-sim-")
        try:
            self.bus, self.address = start_bus(self.tmpdir)
            self.start_sim()
        except BaseException:
            self.stop()
            raise

    def start_sim(self, extra_args=None):
        """(Re)start the simulator alone, as if bluetoothd restarted."""
        args = self.extra_args if extra_args is None else list(extra_args)
        self.sim = subprocess.Popen([PYTHON, FAKE_BLUEZ, "--bus", self.address] + args,
                                    stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=self.stderr)
        deadline = time.monotonic() + self.timeout
        while not name_has_owner(self.address):
            if self.sim.poll() is not None:
                raise RuntimeError("fake_bluez.py exited with %d" % self.sim.returncode)
            if time.monotonic() > deadline:
                raise RuntimeError("fake_bluez.py did not own org.bluez in time")
            time.sleep(0.05)

    def stop_sim(self):
        status = stop_process(self.sim)
        self.sim = None
        return status

    def kill_sim(self):
        """SIGKILL the simulator (a crashed bluetoothd: no goodbye, sockets just close)."""
        if self.sim is None:
            return None
        if self.sim.poll() is None:
            self.sim.kill()
        status = self.sim.wait(5)
        self.sim = None
        return status

    def stop(self):
        self.stop_sim()
        stop_process(self.bus)
        self.bus = None
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = None


if __name__ == "__main__":
    # Manual use: python3 tests/sim/simbus.py [fake_bluez args]; prints the address.
    with SimBus(sys.argv[1:]) as sb:
        print("DBUS_SYSTEM_BUS_ADDRESS=%s" % sb.address, flush=True)
        try:
            while sb.sim.poll() is None:
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
