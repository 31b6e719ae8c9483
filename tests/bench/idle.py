#!/usr/bin/python3
# tests/bench/idle.py - spinewatchd at rest (issue 11): wake-ups while nothing happens, time from
# exec to READY=1, and resident size (at start, with 8 sensors, 10 and 1000 idle feed clients,
# and over a long run at 1000 notifications/s).
#
#   wakeups   8 simulated sensors connected and silent (fake_bluez.py --silent), N feed clients
#             connected: the daemon's context switches (/proc/PID/task/*/status) over a window,
#             without and with a watchdog (NOTIFY_SOCKET + WATCHDOG_USEC), and what wakes it
#             (strace -tt of the loop's system calls, each wake-up classified and grouped by
#             period)
#   startup   exec to READY=1 (our own NOTIFY_SOCKET listener), with an empty state directory
#             and with a history database of --history-events events
#   memory    VmRSS at start (READY), with 8 sensors, with 10 clients, with 1000 idle clients
#             (per-client slope), and over --long seconds at --long-rate notifications/s (RSS
#             sampled, growth reported)
#
# A benchmark: figures are printed (a table and one `IDLE {...}` JSON line), never judged. Exit
# status 1 only if the daemon dies, a run cannot be made, or it does not exit 0 on SIGTERM.
# `--smoke` runs small sizes (make bench-smoke).
#
#   /usr/bin/python3 tests/bench/idle.py --daemon build/spinewatchd [--smoke] [--only NAME]
#   /usr/bin/python3 tests/bench/idle.py --daemon build/spinewatchd --only memory --long 3600

import argparse
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "sim"))
sys.path.insert(0, HERE)
import simbus  # noqa: E402
from daemon_harness import MIC, Failure, free_port, stop_pid, wait_until, _hello  # noqa: E402
import load  # noqa: E402
from load import EVENT_PREFIX, Loop, raise_nofile, rss_kb  # noqa: E402

import asyncio  # noqa: E402

# 8 sensors: the Spine Clip, the Spine Mic, the micro:bit (no pairing), the Thingy:52 and 4 more
# clips; --silent: connected, and they send nothing unless told to
EXTRA_CLIPS = 4
SIM_ARGS = ["--scenario", "idle", "--require-pairing", "none", "--battery-drain", "0",
            "--extra-clips", str(EXTRA_CLIPS), "--silent"]
N_SENSORS = 4 + EXTRA_CLIPS


def task_switches(pid):
    """(voluntary, involuntary) context switches summed over the process's threads."""
    vol = inv = 0
    try:
        tasks = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return None
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/status" % (pid, t)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        vol += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        inv += int(line.split()[1])
        except OSError:
            pass
    return vol, inv


def threads(pid):
    try:
        return len(os.listdir("/proc/%d/task" % pid))
    except OSError:
        return 0


class Stack:
    """A private bus, the simulator (8 silent sensors) and spinewatchd with a notify socket of
    ours. t_exec: monotonic time just before the daemon's exec; t_ready: when READY=1 came."""

    def __init__(self, args, watchdog_usec=0, state_dir=None, daemon_args=(), sim_args=()):
        self.args = args
        self.sb = simbus.SimBus(SIM_ARGS + list(sim_args),
                                stderr=None if args.verbose else subprocess.DEVNULL)
        self.watchdog_usec = watchdog_usec
        self.state_dir = state_dir
        self.daemon_args = list(daemon_args)
        self.proc = None
        self.notify = None
        self.msgs = []
        self.t_exec = self.t_ready = None

    def __enter__(self):
        try:
            self.sb.start()
            self.start_daemon()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc):
        self.stop()
        return False

    def start_daemon(self):
        tmp = self.sb.tmpdir
        path = os.path.join(tmp, "notify.sock")
        if os.path.exists(path):
            os.unlink(path)
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(path)
        self.notify.setblocking(False)
        self.port = free_port()
        env = dict(os.environ, DBUS_SYSTEM_BUS_ADDRESS=self.sb.address, NOTIFY_SOCKET=path)
        env.pop("WATCHDOG_USEC", None)
        env.pop("WATCHDOG_PID", None)
        if self.watchdog_usec:
            env["WATCHDOG_USEC"] = str(self.watchdog_usec)
        self.mc_file = None
        if self.args.malloc_count:
            self.mc_file = os.path.join(tmp, "malloc_count")
            env["LD_PRELOAD"] = os.path.abspath(self.args.malloc_count)
            env["MALLOC_COUNT_FILE"] = self.mc_file
        self.log = os.path.join(tmp, "daemon.log")
        state = self.state_dir or os.path.join(tmp, "state")
        argv = [os.path.abspath(self.args.daemon), "--config", "/dev/null",
                "--listen", "127.0.0.1:%d" % self.port, "--state-dir", state,
                "--crack-merge-ms", "0", "--disable-alerts", "crack-rate", "-q"] + self.daemon_args
        with open(self.log, "ab") as logf:
            self.t_exec = time.monotonic()
            self.proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf)
        self.pid = self.proc.pid
        self.t_ready = None
        self.rss_ready = None
        deadline = time.monotonic() + 15
        while self.t_ready is None:
            self.check_alive()
            if time.monotonic() > deadline:
                raise Failure("no READY=1 within 15 s")
            self.poll_notify(0.002)
        return self.t_ready - self.t_exec

    def poll_notify(self, sleep=0.0):
        got = False
        while True:
            try:
                data = self.notify.recv(4096)
            except BlockingIOError:
                break
            now = time.monotonic()
            got = True
            msg = dict(ln.split("=", 1) for ln in data.decode().splitlines() if "=" in ln)
            msg["at"] = now
            self.msgs.append(msg)
            if msg.get("READY") == "1" and self.t_ready is None:
                self.t_ready = now
                self.rss_ready = rss_kb(self.pid)[0]
        if not got and sleep:
            time.sleep(sleep)

    def mallocs(self):
        """(allocations, frees) so far, if counted (build/bench/malloc_count.so)."""
        if not self.mc_file:
            return None
        try:
            with open(self.mc_file, "rb") as f:
                return struct.unpack("<4Q", f.read(32))[:2]
        except (OSError, struct.error):
            return None

    def check_alive(self):
        if self.proc.poll() is not None:
            raise Failure("spinewatchd exited with %s:\n%s" % (self.proc.returncode,
                                                                 self.log_tail()))

    def log_tail(self, n=30):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except OSError:
            return ""

    def hello(self):
        return asyncio.run(_hello(self.port))

    def sensors(self):
        return {s["address"]: s for s in self.hello().get("sensors", [])}

    def wait_subscribed(self, n=N_SENSORS, timeout=30):
        def ok():
            self.check_alive()
            return sum(1 for s in self.sensors().values() if s.get("notify")) >= n
        wait_until(ok, timeout, "%d sensors to be subscribed" % n, 0.2)

    def sim(self, method, signature=None, *a, timeout=10.0):
        import dbus.bus
        if not hasattr(self, "conn"):
            self.conn = dbus.bus.BusConnection(self.sb.address)
        return self.conn.call_blocking("org.bluez", "/io/spinewatch/sim", "io.spinewatch.Sim1",
                                       method, signature, a, timeout=timeout)

    def stop_daemon(self):
        """SIGTERM; returns the exit status (None if it had to be killed)."""
        if self.proc is None:
            return 0
        st = stop_pid(self.proc, 10)
        self.proc = None
        if self.notify is not None:
            self.notify.close()
            self.notify = None
        return st

    def stop(self):
        st = None
        try:
            st = self.stop_daemon()
        finally:
            if getattr(self, "conn", None) is not None:
                try:
                    self.conn.close()
                except Exception:
                    pass
                self.conn = None
            self.sb.stop()
        return st


# ------------------------------------------------------------------------ what wakes it

STRACE_LINE = re.compile(r"^(?:(\d+)\s+)?(\d+):(\d+):(\d+\.\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+|\?)")


def strace_window(pid, seconds, out):
    """strace -f -tt every system call of pid for `seconds`; returns the parsed calls
    [(t, tid, name, args, ret)]."""
    st = subprocess.Popen(["strace", "-f", "-tt", "-qq", "-s", "64", "-o", out, "-p", str(pid)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(seconds)
    st.send_signal(signal.SIGINT)
    try:
        st.wait(5)
    except subprocess.TimeoutExpired:
        st.kill()
        st.wait()
    calls = []
    with open(out, errors="replace") as f:
        for line in f:
            m = STRACE_LINE.match(line)
            if not m:
                continue
            tid, hh, mm, ss, name, a, ret = m.groups()
            t = int(hh) * 3600 + int(mm) * 60 + float(ss)
            calls.append((t, int(tid or pid), name, a, ret))
    return calls


def fd_names(pid):
    """fd -> a short description (socket inode peers are not resolved: kinds are enough)."""
    out = {}
    try:
        for fd in os.listdir("/proc/%d/fd" % pid):
            try:
                out[int(fd)] = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                pass
    except OSError:
        pass
    return out


def classify(calls, roles):
    """Split the trace into wake-ups (the calls after each poll/epoll_wait that waited
    returns; lws' zero-timeout polls are part of the wake-up they are in) and name each: which fd woke it (roles: fd -> name) or, for a timeout, what it then did."""
    waits = ("poll", "ppoll", "epoll_wait", "epoll_pwait", "select", "pselect6",
             "restart_syscall")
    wakes = []
    cur = None
    for t, tid, name, a, ret in calls:
        if name in waits:
            if name != "restart_syscall" and a.rsplit(",", 1)[-1].strip() == "0" \
                    and cur is not None:
                continue     # a poll that does not wait: the same wake-up goes on
            if cur is not None:
                wakes.append(cur)
            cur = {"t": t, "ret": ret, "args": a, "calls": []}
            continue
        if cur is not None:
            cur["calls"].append((name, a))
    if cur is not None:
        wakes.append(cur)
    out = []
    for w in wakes:
        if w["ret"] == "0":
            what = "timeout: " + describe_work(w["calls"], roles)
        else:
            fds = re.findall(r"\{fd=(\d+), revents=(\w+(?:\|\w+)*)\}", w["args"].split("=>")[-1]
                             if "=>" in w["args"] else w["args"])
            if not fds:      # poll's revents are after the result in strace's output
                fds = []
            names = sorted({roles.get(int(fd), "fd %s" % fd) for fd, _ in fds})
            what = "fd: " + (", ".join(names) or "?") + " -> " + describe_work(w["calls"], roles)
        out.append((w["t"], what))
    return out


def describe_work(calls, roles):
    """A short name for what the daemon did in one wake-up."""
    did = []
    for name, a in calls:
        m = re.match(r"(\d+)", a)
        fd = int(m.group(1)) if m else None
        role = roles.get(fd, None)
        if name in ("sendmsg", "sendto") and "notify.sock" in a:
            m = re.search(r'iov_base="([A-Z_]+=[^\\"]*)', a) or re.search(r', "([A-Z_]+=[^\\"]*)', a)
            did.append("sd_notify " + (m.group(1) if m else "?"))
        elif name in ("sendmsg", "sendto", "write", "writev", "send") and role:
            did.append("%s %s" % (name, role))
        elif name in ("pwrite64", "fdatasync", "fsync"):
            did.append("sqlite " + name)
        elif name in ("read", "recvmsg", "recvfrom") and role:
            did.append("%s %s" % (name, role))
        elif name in ("rename", "renameat", "openat"):
            did.append(name)
    seen = []
    for d in did:
        if d not in seen:
            seen.append(d)
    return ", ".join(seen) or "nothing"


def periods(events):
    """Group wake-ups by what they were; each group: count, median interval between them."""
    groups = {}
    for t, what in events:
        groups.setdefault(what, []).append(t)
    out = []
    for what, ts in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        gaps = sorted(b - a for a, b in zip(ts, ts[1:]))
        med = gaps[len(gaps) // 2] if gaps else None
        out.append({"what": what, "count": len(ts),
                    "period_s": round(med, 2) if med is not None else None})
    return out


def socket_roles(pid):
    """fd -> role, from /proc/PID/fd and the kernel's socket tables."""
    inodes = {}
    for fd, target in fd_names(pid).items():
        m = re.match(r"socket:\[(\d+)\]", target)
        if m:
            inodes[m.group(1)] = fd
    roles = {}
    for table, kind in (("/proc/net/tcp", "tcp"), ("/proc/net/tcp6", "tcp")):
        try:
            with open(table) as f:
                next(f)
                for line in f:
                    p = line.split()
                    if p[9] in inodes:
                        roles[inodes[p[9]]] = "listen" if p[3] == "0A" else "feed client"
        except OSError:
            pass
    try:
        with open("/proc/net/unix") as f:
            next(f)
            for line in f:
                p = line.split()
                if p[6] in inodes:
                    typ = {"0001": "D-Bus", "0002": "datagram", "0005": "AcquireNotify"}.get(
                        p[4], "unix " + p[4])
                    roles[inodes[p[6]]] = typ
    except OSError:
        pass
    for fd, target in fd_names(pid).items():
        if fd not in roles:
            if target.endswith((".db", ".db-wal", ".db-journal", ".db-shm")):
                roles[fd] = "sqlite"
            elif "eventfd" in target or target.startswith("pipe:"):
                roles[fd] = "lws wake pipe"
            elif "timerfd" in target:
                roles[fd] = "timerfd"
    return roles


# ------------------------------------------------------------------------------ clients

def connect_clients(loop, port, n, timeout=60):
    cs = loop.connect(port, n, "reader", timeout)
    ok = [c for c in cs if c.state == "open"]
    if len(ok) != n:
        raise Failure("%d of %d feed clients connected" % (len(ok), n))
    return cs


OTHER = {}                      # message type -> count, for messages that are not events
_message = load.Client._message


def _counting_message(self, p):
    if not p.startswith(EVENT_PREFIX) and not p.startswith(b'{"type":"hello"'):
        t = p[9:p.find(b'"', 9)].decode(errors="replace") if p.startswith(b'{"type":"') else "?"
        OTHER[t] = OTHER.get(t, 0) + 1
    _message(self, p)


load.Client._message = _counting_message


# ---------------------------------------------------------------------------- scenarios

def run_wakeups(args, res):
    """Context switches over a window with 8 silent sensors and args.clients feed clients,
    without and with a watchdog; then what wakes it (strace)."""
    out = res["wakeups"] = {}
    for wd in ((0, args.watchdog_s) if args.watchdog_s else (0,)):
        label = "watchdog %g s" % wd if wd else "no watchdog"
        with Stack(args, watchdog_usec=int(wd * 1e6),
                   daemon_args=["--max-clients", str(args.clients + 10)]) as st:
            st.wait_subscribed()
            loop = Loop(st.pid)
            clients = connect_clients(loop, st.port, args.clients)
            loop.run_until(lambda: False, args.settle)       # status messages settle
            st.check_alive()
            r = out[label] = {"sensors": sum(1 for s in st.sensors().values() if s.get("notify")),
                              "clients": args.clients, "window_s": args.window,
                              "threads": threads(st.pid)}
            # the hello above woke it: settle again before counting
            loop.run_until(lambda: False, 1.0)
            frames0 = sum(c.events for c in clients)
            msgs0 = len(st.msgs)
            OTHER.clear()
            m0 = st.mallocs()
            s0, t0 = task_switches(st.pid), time.monotonic()
            loop.run_until(lambda: False, args.window)
            s1, t1 = task_switches(st.pid), time.monotonic()
            m1 = st.mallocs()
            if m0 and m1:
                r["allocations"] = m1[0] - m0[0]
            st.poll_notify()
            st.check_alive()
            r["voluntary"] = s1[0] - s0[0]
            r["involuntary"] = s1[1] - s0[1]
            r["per_s"] = round((r["voluntary"] + r["involuntary"]) / (t1 - t0), 3)
            r["events_to_clients"] = sum(c.events for c in clients) - frames0
            r["other_msgs"] = dict(OTHER)
            r["watchdog_pings"] = sum(1 for m in st.msgs[msgs0:] if m.get("WATCHDOG") == "1")
            if args.strace_window:
                roles = socket_roles(st.pid)
                trace = os.path.join(st.sb.tmpdir, "strace.out")
                calls = []
                t_s = time.monotonic()
                th = threading.Thread(target=lambda: calls.extend(
                    strace_window(st.pid, args.strace_window, trace)))
                th.start()
                while th.is_alive():
                    loop.step(0.05)
                    st.poll_notify()
                r["strace_s"] = round(time.monotonic() - t_s, 1)
                if args.keep_trace:
                    shutil.copy(trace, args.keep_trace)
                wakes = classify(calls, roles)
                r["strace_wakeups"] = len(wakes)
                r["what"] = periods(wakes)
            st.check_alive()
            status = st.stop_daemon()
            if status != 0:
                res.setdefault("problems", []).append("%s: exit status %s on SIGTERM"
                                                      % (label, status))
        if args.smoke:
            break


def fill_history(st, n):
    """n crack events through the running daemon into its history (then it is stopped):
    returns the events in it."""
    st.wait_subscribed()
    rate = min(5000, max(100, n // 4))
    if not st.sim("BurstCracks", "suu", MIC, n, rate):
        raise Failure("BurstCracks: nobody subscribed")
    wait_until(lambda: not st.sim("BurstRunning"), n / rate + 60, "the burst to end", 0.2)
    seen = [-1]

    def stable():
        last = st.hello()["last_seq"]
        done, seen[0] = last == seen[0], last
        return done
    wait_until(stable, 30, "the events to arrive", 0.5)
    if st.stop_daemon() != 0:
        raise Failure("the daemon did not exit 0 after filling the history")
    return seen[0]


def dir_bytes(path):
    size = 0
    for dp, _, files in os.walk(path):
        for f in files:
            size += os.path.getsize(os.path.join(dp, f))
    return size


def run_startup(args, res):
    """Exec to READY=1, --startups times with a new empty state directory each, then as
    often with one history database of --history-events events; one bus and simulator."""
    out = res["startup"] = {}
    base = tempfile.mkdtemp(prefix="spinewatch-idle-")
    try:
        hist = os.path.join(base, "hist")
        with Stack(args, state_dir=os.path.join(base, "e0")) as st:
            for label in ("empty", "history"):
                times, rss = [], []
                for i in range(args.startups):
                    if i or label == "history":
                        st.state_dir = os.path.join(base, "e%d" % i) if label == "empty" \
                            else hist
                        st.start_daemon()
                    times.append(st.t_ready - st.t_exec)
                    rss.append(st.rss_ready)
                    if st.stop_daemon() != 0:
                        raise Failure("%s: not exit 0 on SIGTERM" % label)
                    if label == "empty" and i == args.startups - 1:
                        st.state_dir = hist      # the history to start with, made here
                        st.start_daemon()
                        out["history_events"] = fill_history(st, args.history_events)
                        out["history_bytes"] = dir_bytes(hist)
                times.sort()
                out[label] = {"runs": len(times), "ready_ms_min": round(times[0] * 1000, 1),
                              "ready_ms_median": round(times[len(times) // 2] * 1000, 1),
                              "ready_ms_max": round(times[-1] * 1000, 1),
                              "rss_ready_kib": max(rss)}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def rollup_kb(pid):
    """/proc/PID/smaps_rollup in KiB: Rss, Pss, the private pages (Private_Clean +
    Private_Dirty: what the process alone costs) and Anonymous; {} if unreadable."""
    out = {}
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                key, _, rest = line.partition(":")
                if key in ("Rss", "Pss", "Private_Clean", "Private_Dirty", "Anonymous"):
                    out[key] = int(rest.split()[0])
    except OSError:
        return {}
    if "Private_Clean" in out and "Private_Dirty" in out:
        out["Private"] = out.pop("Private_Clean") + out.pop("Private_Dirty")
    return out


def settle_rss(st, loop, seconds):
    loop.run_until(lambda: False, seconds)
    st.check_alive()
    return rss_kb(st.pid)[0]


def floor_ws_rss(args):
    """VmRSS (KiB) of a bare libwebsockets server (build/bench/floor_ws, listening and waiting
    for its first client): what libwebsockets, OpenSSL and libc cost any program that serves
    WebSockets with Debian's libwebsockets. None if it is not built."""
    path = os.path.join(args.bench_dir, "floor_ws")
    if not os.access(path, os.X_OK):
        return None
    port = free_port()
    proc = subprocess.Popen([path, "--port", str(port), "--clients", "1", "--rate", "1",
                             "--count", "1"], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        def up():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    return True
            except OSError:
                return False
        wait_until(up, 10, "floor_ws to listen")
        time.sleep(args.settle)
        return rss_kb(proc.pid)[0]
    finally:
        stop_pid(proc)


def run_memory(args, res):
    out = res["memory"] = {}
    n_many = args.many_clients
    raise_nofile(n_many + 200)
    out["floor_ws_rss_kib"] = floor_ws_rss(args)
    with Stack(args, daemon_args=["--max-clients", str(n_many + 20)]) as st:
        out["rss_ready_kib"] = st.rss_ready
        st.wait_subscribed()
        loop = Loop(st.pid)
        out["rss_8_sensors_kib"] = settle_rss(st, loop, args.settle)
        few = connect_clients(loop, st.port, 10)
        out["rss_10_clients_kib"] = settle_rss(st, loop, args.settle)
        out["rollup_10_clients_kib"] = rollup_kb(st.pid)
        many = connect_clients(loop, st.port, n_many - 10)
        out["rss_many_clients_kib"] = settle_rss(st, loop, args.settle)
        out["many_clients"] = n_many
        out["kib_per_client"] = round((out["rss_many_clients_kib"] - out["rss_10_clients_kib"])
                                      / (n_many - 10), 2)
        for c in many:
            loop.drop(c)
        out["rss_after_close_kib"] = settle_rss(st, loop, args.settle)
        if args.long:
            # the long run: --long-rate notifications/s for --long seconds, 10 readers following
            n = int(args.long * args.long_rate)
            loop.samples = []
            seq0 = st.hello()["last_seq"]
            m0 = st.mallocs()
            t0 = time.monotonic()
            if not st.sim("BurstCracks", "suu", MIC, n, int(args.long_rate)):
                raise Failure("BurstCracks: nobody subscribed")
            loop.run_until(lambda: not st.sim("BurstRunning") or not st.proc
                           or st.proc.poll() is not None, args.long * 1.5 + 60)
            st.check_alive()
            loop.run_until(lambda: False, 2.0)
            t1 = time.monotonic()
            m1 = st.mallocs()
            samples = [(t - t0, kb) for t, kb in loop.samples if kb]
            # warm-up: the ring, the history's statement cache and sqlite's page cache fill in
            # the first part of the run; growth is measured after it
            warm = max(10.0, 0.1 * (t1 - t0))
            after = [s for s in samples if s[0] >= warm] or samples
            first, last = after[0][1], after[-1][1]
            last_seq = st.hello()["last_seq"]
            # a reader is complete when it has every event the daemon made, without a gap;
            # notifications the simulator could not hand over (the AcquireNotify socket full,
            # as BlueZ drops them) are not events, counted apart
            out["long"] = {"seconds": round(t1 - t0, 1), "rate": args.long_rate,
                           "notifications": n, "last_seq": last_seq,
                           "events": last_seq - seq0,
                           "reader_gaps": sum(c.gaps for c in few),
                           "rss_before_kib": out["rss_after_close_kib"],
                           "rss_after_warmup_kib": first, "rss_end_kib": last,
                           "rss_max_kib": max(kb for _, kb in samples),
                           "growth_after_warmup_kib": last - first,
                           "vmhwm_kib": rss_kb(st.pid)[1],
                           "readers_complete": sum(1 for c in few
                                                   if c.complete_to(last_seq) and not c.gaps)}
            if m0 and m1:
                out["long"]["allocations"] = m1[0] - m0[0]
                out["long"]["allocations_per_notification"] = round((m1[0] - m0[0]) / n, 3)
                out["long"]["allocations_live_growth"] = (m1[0] - m1[1]) - (m0[0] - m0[1])
            # growth over the second half, per hour (a straight-line fit)
            half = [s for s in samples if s[0] >= (t1 - t0) / 2]
            if len(half) > 2 and t1 - t0 >= 60:
                mx = sum(x for x, _ in half) / len(half)
                my = sum(y for _, y in half) / len(half)
                sxx = sum((x - mx) ** 2 for x, _ in half)
                slope = sum((x - mx) * (y - my) for x, y in half) / sxx if sxx else 0.0
                out["long"]["slope_kib_per_hour"] = round(slope * 3600, 1)
        status = st.stop_daemon()
        if status != 0:
            res.setdefault("problems", []).append("memory: exit status %s on SIGTERM" % status)


SCENARIOS = {"wakeups": run_wakeups, "startup": run_startup, "memory": run_memory}


def mib(kb):
    return "%.1f MiB" % (kb / 1024.0) if kb else "-"


def report(res, args):
    print("spinewatchd at rest: %d silent sensors (fake_bluez.py --silent)" % N_SENSORS)
    w = res.get("wakeups")
    if w:
        print("\nwake-ups while idle (%d feed clients, %g s windows)" % (args.clients, args.window))
        print("%-18s %8s %10s %12s %10s %8s %8s" % ("", "sensors", "voluntary", "involuntary",
                                                  "per s", "pings", "msgs"))
        for label, r in w.items():
            print("%-18s %8d %10d %12d %10.3f %8d %8d" % (
                label, r["sensors"], r["voluntary"], r["involuntary"], r["per_s"],
                r["watchdog_pings"], sum(r["other_msgs"].values()) + r["events_to_clients"]))
            if "allocations" in r:
                print("%-18s allocations in the window: %d" % ("", r["allocations"]))
            if r["other_msgs"]:
                print("%-18s messages to the clients: %s" % ("", r["other_msgs"]))
        for label, r in w.items():
            if "what" in r:
                print("what woke it (%s, strace %g s, %d wake-ups):" % (
                    label, r["strace_s"], r["strace_wakeups"]))
                for g in r["what"]:
                    if g["what"] == "timeout: nothing" and 29 <= (g["period_s"] or 0) <= 31:
                        g["what"] += " (libwebsockets' own 30 s timer, sul_plat)"
                    print("  %5d x  every %-8s %s" % (
                        g["count"], ("%.2f s" % g["period_s"]) if g["period_s"] else "-",
                        g["what"]))
    s = res.get("startup")
    if s:
        print("\nexec to READY=1 (%s; history: %d events, %.1f MiB on disk)" % (
            "runs: %d each" % s["empty"]["runs"], s["history_events"],
            s["history_bytes"] / 1048576.0))
        print("%-10s %8s %8s %8s %10s" % ("state", "min ms", "median", "max", "RSS"))
        for label in ("empty", "history"):
            r = s[label]
            print("%-10s %8.1f %8.1f %8.1f %10s" % (label, r["ready_ms_min"],
                                                  r["ready_ms_median"], r["ready_ms_max"],
                                                  mib(r["rss_ready_kib"])))
    m = res.get("memory")
    if m:
        print("\nresident size (VmRSS)")
        rows = [("at READY", m["rss_ready_kib"]), ("8 sensors", m["rss_8_sensors_kib"]),
                ("+10 clients", m["rss_10_clients_kib"]),
                ("+%d clients" % m["many_clients"], m["rss_many_clients_kib"]),
                ("after closing", m["rss_after_close_kib"])]
        for label, kb in rows:
            print("  %-16s %10s" % (label, mib(kb)))
        if m.get("floor_ws_rss_kib"):
            print("  floor: a bare libwebsockets server (floor_ws) %s; spinewatchd with 8 sensors "
                  "and 10 clients is %.2fx that" % (mib(m["floor_ws_rss_kib"]),
                                                     m["rss_10_clients_kib"] / m["floor_ws_rss_kib"]))
        ru = m.get("rollup_10_clients_kib") or {}
        if "Private" in ru:
            print("  with 10 clients: %s private (%s anonymous), %s proportional (Pss); the rest "
                  "of VmRSS is pages of shared libraries other processes map too" % (
                      mib(ru["Private"]), mib(ru.get("Anonymous", 0)), mib(ru.get("Pss", 0))))
        print("  %.2f KiB per additional idle client" % m["kib_per_client"])
        lg = m.get("long")
        if lg:
            print("  long run: %d notifications at %g/s over %.0f s: RSS %s after warm-up, %s at"
                  " the end (%+d KiB), max %s, VmHWM %s; %s KiB/h over the second half; "
                  "%d/10 readers complete (%d events from the notifications, %d reader gaps)" % (
                      lg["notifications"], lg["rate"], lg["seconds"],
                      mib(lg["rss_after_warmup_kib"]), mib(lg["rss_end_kib"]),
                      lg["growth_after_warmup_kib"], mib(lg["rss_max_kib"]),
                      mib(lg["vmhwm_kib"]), lg.get("slope_kib_per_hour", "-"),
                      lg["readers_complete"], lg.get("events", -1), lg.get("reader_gaps", -1)))
            if "allocations" in lg:
                print("  long run: %d allocations, %.3f per notification; %+d blocks live at the "
                      "end" % (lg["allocations"], lg["allocations_per_notification"],
                               lg["allocations_live_growth"]))
    for p in res.get("problems", []):
        print("PROBLEM: " + p)
    print("IDLE " + json.dumps(res, sort_keys=True))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--daemon", default="build/spinewatchd")
    ap.add_argument("--bench-dir", help="where floor_ws is (default: bench/ beside the daemon)")
    ap.add_argument("--smoke", action="store_true", help="small sizes, a few seconds in all")
    ap.add_argument("--only", action="append", choices=sorted(SCENARIOS))
    ap.add_argument("--window", type=float, help="counting window, s (30; smoke 1.5)")
    ap.add_argument("--strace-window", type=float, help="strace window, s (65; smoke 1; 0: none)")
    ap.add_argument("--clients", type=int, help="feed clients while counting (10; smoke 2)")
    ap.add_argument("--watchdog-s", type=float, default=30.0,
                    help="WATCHDOG_USEC for the second run, s (30, as systemd/spinewatchd.service)")
    ap.add_argument("--settle", type=float, help="wait before each measure, s (3; smoke 0.5)")
    ap.add_argument("--startups", type=int, help="starts measured per state (5; smoke 1)")
    ap.add_argument("--history-events", type=int, help="events in the history (50000; smoke 500)")
    ap.add_argument("--many-clients", type=int, help="idle clients for the slope (1000; smoke 60)")
    ap.add_argument("--long", type=float, help="long run, s (60; smoke 1.5; 3600: the issue's hour)")
    ap.add_argument("--long-rate", type=float, default=1000.0, help="notifications/s there")
    ap.add_argument("--malloc-count", metavar="SO",
                    help="LD_PRELOAD this allocation counter into the daemon "
                         "(build/bench/malloc_count.so when it exists; '' : none)")
    ap.add_argument("--keep-trace", metavar="FILE", help="copy strace's output there")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    args.bench_dir = args.bench_dir or os.path.join(os.path.dirname(
        os.path.abspath(args.daemon)), "bench")
    sm = args.smoke
    for name, full, small in (("window", 30.0, 1.5), ("strace_window", 65.0, 1.0),
                              ("clients", 10, 2), ("settle", 3.0, 0.5), ("startups", 5, 1),
                              ("history_events", 50000, 500), ("many_clients", 1000, 60),
                              ("long", 60.0, 1.5)):
        if getattr(args, name) is None:
            setattr(args, name, small if sm else full)
    if args.malloc_count is None:
        so = os.path.join(os.path.dirname(os.path.abspath(args.daemon)), "bench",
                          "malloc_count.so")
        args.malloc_count = so if os.path.exists(so) else ""
    if not shutil.which("strace"):
        args.strace_window = 0
    res = {}
    failed = None
    t0 = time.monotonic()
    for name in args.only or ("startup", "wakeups", "memory"):
        try:
            SCENARIOS[name](args, res)
        except Failure as e:
            failed = "%s: %s" % (name, e)
            break
    res["seconds"] = round(time.monotonic() - t0, 1)
    report(res, args)
    if failed or res.get("problems"):
        print("FAILED: " + (failed or "; ".join(res["problems"])))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
