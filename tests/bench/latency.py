#!/usr/bin/python3
# tests/bench/latency.py - notification -> feed client latency, daemon CPU and fan-out, each
# figure against a floor measured in the same run (issue 11).
#
# Per notify path (start: StartNotify + PropertiesChanged signals; acquire: AcquireNotify
# socket), on one private bus + simulated BlueZ (tests/sim/fake_bluez.py --scenario idle):
#   1. intake floor, before the daemon starts: build/bench/floor_notify subscribes to the Spine
#      Mic's crack characteristic itself (StartNotify + the daemon's match rule, or
#      AcquireNotify + read()) and timestamps each of a Sim1.BurstCracks burst, per rate;
#   2. per client count and rate: the WebSocket hop's floor (build/bench/floor_ws, a bare
#      libwebsockets fan-out, one lws_write per message per client, to the same raw clients),
#      then spinewatchd (--notify-path start|auto) with the same clients and the same burst.
# Crack i carries duration_ms = i + 1: each arrival is matched to the simulator's send time
# (Sim1.GetBurstLog, CLOCK_MONOTONIC). The floor's latency distribution is the intake floor's
# plus the WebSocket floor's (sample-wise sums of random pairs). CPU is on-CPU time
# (/proc/PID/task/*/schedstat for the daemon, getrusage in the floors) per 1000 notifications.
# Then the fan-out target: 1000 clients at 200 events/s, every client must get every event.
#
# Clients are raw non-blocking sockets on one epoll loop in one process: by default
# build/bench/ws_swarm (tests/bench/ws_swarm.c, --client c), or this script's own Python loop
# (--client py, as load.py; one Python process parsing 100,000 frames/s was the limit at 100
# clients and 1000/s). A sample of them (up to 10) timestamps every frame (once per recv), all
# of them count frames, so a lost event is seen anywhere. `--client c,py` runs every cell with
# both.
# A benchmark: no timing is asserted. Exit status 1 if a client that kept up lost an event
# (at --smoke sizes all of them keep up), a client was refused or closed, the daemon died or
# did not exit 0, or a run could not be made. Prints a table and one line `LATENCY {json}`.
#
#   /usr/bin/python3 tests/bench/latency.py --daemon build/spinewatchd [--smoke] [--client c|py]

import argparse
import base64
import json
import os
import random
import resource
import selectors
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "sim"))
from daemon_harness import (MIC, DaemonEnv, Failure, dev_path, free_port,  # noqa: E402
                            wait_until)
sys.path.insert(0, HERE)
from notify_paths import percentile  # noqa: E402

SIM_ARGS = ["--scenario", "idle", "--require-pairing", "none", "--battery-drain", "0"]
CRACK_UUID = "5370696e-0102-4177-a174-636857617463"
EVENT_PREFIX = b'{"type":"event"'
SEQ_KEY = b'"seq":'
DUR_KEY = b'"duration_ms":'
T_KEY = b'"t":'
CRACK_KEY = b'"kind":"crack"'
MSG_SIZE = 140          # bytes of a crack event on the feed; floor_ws pads to this


def summary(lat_ms):
    s = sorted(lat_ms)
    return {"n": len(s), "p50": percentile(s, 50), "p99": percentile(s, 99),
            "max": s[-1] if s else float("nan")}


def task_cpu(pid):
    """On-CPU seconds of every thread of a process (/proc/PID/task/*/schedstat, ns)."""
    total = 0
    try:
        for tid in os.listdir("/proc/%d/task" % pid):
            try:
                with open("/proc/%d/task/%s/schedstat" % (pid, tid)) as f:
                    total += int(f.read().split()[0])
            except OSError:
                pass
    except OSError:
        pass
    return total / 1e9


def raise_nofile(want):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(hard, max(soft, want)) if hard != resource.RLIM_INFINITY else max(soft, want)
    if new > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


# ---------------------------------------------------------------- raw WebSocket clients

class Client:
    """One WebSocket client on the shared epoll loop. Counts events (and, for the daemon,
    crack events); a sampled client keeps (receive time, key) per event: key is the crack's
    duration_ms (daemon) or the floor's send time (floor_ws)."""

    __slots__ = ("sock", "state", "buf", "hello", "events", "cracks", "gaps", "disorder",
                 "last", "sample", "floor", "stamps", "last_rx", "request")

    def __init__(self, port, path, sample, floor):
        self.state = "connecting"
        self.buf = bytearray()
        self.hello = None
        self.events = self.cracks = self.gaps = self.disorder = 0
        self.last = None
        self.sample, self.floor = sample, floor
        self.stamps = []
        self.last_rx = 0.0
        key = base64.b64encode(os.urandom(16)).decode()
        self.request = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                        "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                        "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: spinewatch.v1\r\n"
                        "\r\n" % (path, port, key)).encode()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.sock.connect_ex(("127.0.0.1", port))

    def on_event(self, t):
        if self.state == "connecting":
            if self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR):
                self.state = "refused"
                return 0
            self.sock.send(self.request)
            self.state = "upgrading"
            return selectors.EVENT_READ
        try:
            data = self.sock.recv(1 << 18)
        except (BlockingIOError, InterruptedError):
            return selectors.EVENT_READ
        except OSError:
            data = b""
        if not data:
            self.state = "refused" if self.state == "upgrading" else "closed"
            return 0
        self.buf += data
        if self.state == "upgrading":
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return selectors.EVENT_READ
            ok = self.buf[:end].split(b"\r\n", 1)[0].split()[1:2] == [b"101"]
            del self.buf[:end + 4]
            if not ok:
                self.state = "refused"
                return 0
            self.state = "open"
            if self.floor:
                self.hello = 0
        self.last_rx = t
        self._frames(t)
        return selectors.EVENT_READ if self.state == "open" else 0

    def _frames(self, t):
        buf = self.buf
        n = len(buf)
        i = 0
        while n - i >= 2:
            b1 = buf[i + 1]
            ln = b1 & 0x7F
            hdr = 2
            if ln == 126:
                if n - i < 4:
                    break
                ln = (buf[i + 2] << 8) | buf[i + 3]
                hdr = 4
            elif ln == 127:
                if n - i < 10:
                    break
                ln = int.from_bytes(buf[i + 2:i + 10], "big")
                hdr = 10
            if n - i < hdr + ln:
                break
            op = buf[i] & 0x0F
            p = bytes(buf[i + hdr:i + hdr + ln])
            i += hdr + ln
            if op == 0x8:
                self.state = "closed"
                break
            if op == 0x9:
                try:
                    self.sock.send(bytes([0x8A, 0x80 | len(p)]) + b"\0\0\0\0" + p)
                except OSError:
                    pass
                continue
            if op == 0x1:
                self._message(p, t)
        del buf[:i]

    def _message(self, p, t):
        if p.startswith(EVENT_PREFIX):
            j = p.find(SEQ_KEY) + 6
            seq = int(p[j:p.find(b",", j)])
            if self.last is not None and seq != self.last + 1:
                self.disorder += 1
            self.last = seq
            self.events += 1
            if self.floor:
                self.cracks += 1
                if self.sample:
                    j = p.find(T_KEY) + 4
                    self.stamps.append((t, float(p[j:p.find(b",", j)])))
            elif CRACK_KEY in p:
                self.cracks += 1
                if self.sample:
                    j = p.find(DUR_KEY) + 14
                    k = j
                    while 48 <= p[k] <= 57:
                        k += 1
                    self.stamps.append((t, int(p[j:k])))
        elif p.startswith(b'{"type":"hello"'):
            self.hello = json.loads(p)["last_seq"]
            self.last = self.hello
        elif p.startswith(b'{"type":"gap"'):
            g = json.loads(p)
            self.gaps += 1
            self.last = g["to"]


class Loop:
    def __init__(self):
        self.sel = selectors.EpollSelector()

    def step(self, timeout):
        events = self.sel.select(timeout)
        t = time.monotonic()
        for key, mask in events:
            c = key.data
            want = c.on_event(t)
            if want != key.events:
                if want:
                    self.sel.modify(c.sock, want, c)
                else:
                    self.sel.unregister(c.sock)

    def run_until(self, pred, timeout):
        deadline = time.monotonic() + timeout
        nxt = 0.0
        while True:
            now = time.monotonic()
            if now >= nxt:
                if pred():
                    return True
                nxt = now + 0.02
            if now >= deadline:
                return bool(pred())
            self.step(0.01)

    def connect(self, port, path, n, floor, timeout=60):
        nsample = min(n, 10)
        picks = set(int(k * n / nsample) for k in range(nsample))
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n and time.monotonic() < deadline:
            wave = [Client(port, path, len(out) + k in picks, floor)
                    for k in range(min(200, n - len(out)))]
            for c in wave:
                self.sel.register(c.sock, selectors.EVENT_WRITE, c)
            out += wave
            self.run_until(lambda: all(c.hello is not None or c.state in ("refused", "closed")
                                       for c in wave), max(0.1, deadline - time.monotonic()))
        return out

    def drop(self, clients):
        for c in clients:
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
            c.sock.close()

    def reset(self, clients):
        for c in clients:
            c.stamps, c.cracks, c.gaps, c.disorder = [], 0, 0, 0

    def drain(self, clients, expect, quiet=1.5, timeout=120):
        return drain(self, clients, expect, quiet, timeout)

    def refresh(self, clients):
        pass

    def cpu(self):
        """CPU seconds of this process (all its threads: the loop, and the floors' readers)."""
        return time.process_time()

    def close(self):
        pass


class SwarmClient:
    """What ws_swarm last reported of one client (the fields of Client the driver reads)."""

    __slots__ = ("hello", "state", "events", "cracks", "gaps", "disorder", "last_rx", "stamps")

    def __init__(self):
        self.hello, self.state, self.last_rx, self.stamps = None, "connecting", 0.0, []
        self.events = self.cracks = self.gaps = self.disorder = 0


class Swarm:
    """The clients in build/bench/ws_swarm (tests/bench/ws_swarm.c), which reads them on its own
    epoll loop all the time; a command line on its stdin, a reply line on its stdout. Same
    interface as Loop."""

    def __init__(self, path):
        self.proc = subprocess.Popen([path], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)

    def _cmd(self, line):
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
            reply = self.proc.stdout.readline()
        except OSError as e:
            raise Failure("ws_swarm: %s" % e)
        if not reply:
            raise Failure("ws_swarm exited (%s) on %r" % (self.proc.poll(), line))
        return reply

    def run_until(self, pred, timeout):
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def connect(self, port, path, n, floor):
        self._cmd("connect %d %s %d %s" % (port, path, n, "floor" if floor else "daemon"))
        clients = [SwarmClient() for _ in range(n)]
        self.refresh(clients)
        return clients

    def refresh(self, clients):
        rep = json.loads(self._cmd("report"))["clients"]
        for c, (ev, cr, gaps, dis, state, last_rx, hello, stamps) in zip(clients, rep):
            c.events, c.cracks, c.gaps, c.disorder = ev, cr, gaps, dis
            c.state, c.last_rx, c.hello = state, last_rx, hello
            c.stamps = [tuple(x) for x in stamps]

    def reset(self, clients):
        self._cmd("reset")
        Loop.reset(self, clients)

    def drain(self, clients, expect, quiet=1.5, timeout=120):
        ok = self._cmd("wait-count %d %g %g" % (expect, quiet, timeout)).split()[-1] == "1"
        self.refresh(clients)
        return ok

    def drop(self, clients):
        self._cmd("drop")

    def cpu(self):
        return float(self._cmd("cpu").split()[1])

    def close(self):
        if self.proc.poll() is None:
            try:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.flush()
                self.proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(5)


def drain(loop, clients, expect, quiet=1.5, timeout=120):
    """Step until every client has `expect` events, or nothing arrived for `quiet` s."""
    deadline = time.monotonic() + timeout
    last_total, last_change = -1, time.monotonic()
    while time.monotonic() < deadline:
        loop.run_until(lambda: False, 0.05)
        if all(c.cracks >= expect or c.state != "open" for c in clients):
            return True
        total = sum(c.cracks for c in clients)
        if total != last_total:
            last_total, last_change = total, time.monotonic()
        elif time.monotonic() - last_change > quiet:
            return False
    return False


def delivery(clients, expect, t0):
    frames = sum(c.cracks for c in clients)
    t_last = max([c.last_rx for c in clients] + [t0])
    lost = sum(max(0, expect - c.cracks) for c in clients)
    return {"frames": frames, "frames_per_s": round(frames / (t_last - t0), 1)
            if t_last > t0 else None, "lost": lost,
            "clients_lost": sum(1 for c in clients if c.cracks < expect),
            "gaps": sum(c.gaps for c in clients),
            "disorder": sum(c.disorder for c in clients),
            "closed": sum(1 for c in clients if c.state != "open")}


# --------------------------------------------------------------------------- floors

class Floor:
    """A floor program with its stdout lines collected by a thread."""

    def __init__(self, args):
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stdin=subprocess.DEVNULL,
                                     text=True)
        self.lines = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append((time.monotonic(), line.split()))

    def first(self, word):
        for t, w in self.lines:
            if w and w[0] == word:
                return t, w
        return None

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.t.join(5)


def send_times(env):
    """{crack index: CLOCK_MONOTONIC send time} of the last burst's cracks that went out."""
    return {int(i): float(t) for i, s, t, ok in env.sim("GetBurstLog") if ok}


def burst(env, count, rate):
    if not env.sim("BurstCracks", "suu", MIC, count, rate):
        raise Failure("BurstCracks: nobody subscribed")


def intake_floor(args, env, char_path, mode, rate, count):
    """floor_notify receives one burst: latencies (ms) and CPU s per 1000."""
    for attempt in range(20):
        fl = Floor([os.path.join(args.bench_dir, "floor_notify"), "--address", env.sb.address,
                    "--path", char_path, "--mode", mode, "--count", str(count),
                    "--timeout", str(count / rate + 15)])
        if wait_until(lambda: fl.first("ready") or fl.proc.poll() is not None, 10,
                      "floor_notify to subscribe") and fl.first("ready"):
            break
        fl.stop()               # the previous floor's AcquireNotify still being torn down
        time.sleep(0.2)
    else:
        raise Failure("floor_notify could not subscribe (%s)" % mode)
    try:
        burst(env, count, rate)
        wait_until(lambda: fl.proc.poll() is not None or not env.sim("BurstRunning"),
                   count / rate + 20, "the burst")
        deadline = time.monotonic() + 2.0
        while fl.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        fl.stop()
    sent = send_times(env)
    cpu = next((float(w[1]) for _, w in fl.lines if w and w[0] == "cpu"), float("nan"))
    lat = [(float(w[2]) - sent[int(w[1]) - 1]) * 1000.0 for _, w in fl.lines
           if w and w[0] == "n" and int(w[1]) - 1 in sent]
    return {"lat": lat, "cpu_per_1000": cpu * 1000.0 / max(1, len(sent)),
            "sent": len(sent), "received": len(lat)}


def ws_floor(args, loop, nclients, rate, count):
    """floor_ws fans `count` messages at `rate` out to `nclients` raw clients."""
    port = free_port()
    fl = Floor([os.path.join(args.bench_dir, "floor_ws"), "--port", str(port), "--clients",
                str(nclients), "--rate", str(rate), "--count", str(count), "--size",
                str(MSG_SIZE)])
    clients = []
    try:
        wait_until(lambda: fl.first("listening") or fl.proc.poll() is not None, 10,
                   "floor_ws to listen")
        clients = loop.connect(port, "/", nclients, floor=True)
        if not loop.run_until(lambda: fl.first("go") is not None, 10):
            raise Failure("floor_ws did not start (%d clients)" % nclients)
        t0 = fl.first("go")[0]
        loop.drain(clients, count, timeout=count / rate + 120)
        loop.run_until(lambda: fl.first("done") is not None, 5)
        loop.refresh(clients)
        go, done = fl.first("go"), fl.first("done")
        res = delivery(clients, count, t0)
        res["cpu_per_1000"] = ((float(done[1][1]) - float(go[1][1])) * 1000.0 / count
                               if done else float("nan"))
        res["lat"] = [(t - ts) * 1000.0 for c in clients for t, ts in c.stamps]
        return res
    finally:
        loop.drop(clients)
        fl.stop()


def daemon_cell(args, env, loop, kind, clients, rate, count):
    loop.reset(clients)
    cpu0, ccpu0 = task_cpu(env.daemon.pid), loop.cpu()
    t0 = time.monotonic()
    burst(env, count, rate)
    loop.drain(clients, count, timeout=count / rate + 120)
    cpu1, ccpu1 = task_cpu(env.daemon.pid), loop.cpu()
    if not env.daemon_alive():
        raise Failure("spinewatchd died:\n" + env.log_tail(20))
    sent = send_times(env)
    res = delivery(clients, len(sent), t0)
    res["sent"] = len(sent)
    res["cpu_per_1000"] = (cpu1 - cpu0) * 1000.0 / max(1, len(sent))
    res["client_cpu_per_1000"] = (ccpu1 - ccpu0) * 1000.0 / max(1, len(sent))
    res["lat"] = [(t - sent[d - 1]) * 1000.0 for c in clients for t, d in c.stamps
                  if d - 1 in sent]
    if args.dump:
        with open(args.dump, "a") as f:
            f.write(json.dumps({"path": env.label, "client": kind, "clients": len(clients),
                                "rate": rate,
                                "t0": t0, "arrivals": [(sent[d - 1], t) for c in clients
                                                       for t, d in c.stamps if d - 1 in sent]})
                    + "\n")
    return res


def combine(a, b, rng):
    """The distribution of A + B for independent A, B: sums of random pairs."""
    if not a or not b:
        return []
    n = min(200000, max(len(a), len(b)))
    return [a[k % len(a)] + b[rng.randrange(len(b))] for k in range(n)]


# --------------------------------------------------------------------------- runs

def count_for(args, rate, nclients):
    """Notifications per cell: `--seconds` of the rate, at most `--frames` frames in all,
    at least 200 (100 in a smoke run)."""
    return int(max(args.min_count, min(rate * args.seconds, args.frames // nclients)))


def run_path(args, path, rng, rows):
    mode = "start" if path == "start" else "acquire"
    intake = {}

    def floors(env):
        env.bluez(dev_path(MIC), "org.bluez.Device1", "Connect")
        om = env.conn.get_object("org.bluez", "/")

        def crack_path():
            objs = om.GetManagedObjects(dbus_interface="org.freedesktop.DBus.ObjectManager")
            for p, ifs in objs.items():
                ch = ifs.get("org.bluez.GattCharacteristic1")
                if ch and str(ch.get("UUID")) == CRACK_UUID and str(p).startswith(dev_path(MIC)):
                    return str(p)
            return None
        cp = wait_until(crack_path, 10, "the crack characteristic")
        for rate in args.rates:
            count = count_for(args, rate, 1)
            intake[rate] = intake_floor(args, env, cp, mode, rate, count)

    env = DaemonEnv(args.daemon, sim_args=SIM_ARGS, before_daemon=floors, feed=False,
                    daemon_args=["--allow", MIC, "--notify-path",
                                 "start" if path == "start" else "auto", "-q",
                                 "--max-clients",
                                 str(max(args.clients + [args.fanout_clients or 0]) + 64)]
                    + (["--state-dir", "/dev/null/none"] if args.no_history else []),
                    verbose=args.verbose, label=path)
    problems = []
    with env:
        wait_until(lambda: (env.sensors().get(MIC) or {}).get("notify") is not None, 20,
                   "the Spine Mic to be subscribed (%s)" % path)
        notify = env.sensors()[MIC]["notify"]
        loops = {}
        try:
            for kind in args.client:
                loops[kind] = Swarm(args.swarm) if kind == "c" else Loop()
            burst(env, 200, 1000)                      # warm-up
            time.sleep(0.5)
            cells = [(n, r, k) for n in args.clients for r in args.rates for k in args.client]
            if args.fanout_clients and path == args.fanout_path:
                cells += [(args.fanout_clients, "fanout", k) for k in args.client]
            problems += run_cells(args, env, path, notify, loops, cells, intake, rng, rows)
        finally:
            for loop in loops.values():
                loop.close()
        status = env.stop()
        if status != 0:
            problems.append("%s: spinewatchd did not exit 0 on SIGTERM (%s)" % (path, status))
    return problems


def run_cells(args, env, path, notify, loops, cells, intake, rng, rows):
    """Per (clients, rate, client kind): the WebSocket floor, then the daemon."""
    problems = []
    for nclients, rate, kind in cells:
        loop = loops[kind]
        fan = rate == "fanout"
        if fan:
            rate = args.fanout_rate
            count = int(rate * args.fanout_seconds)
        else:
            count = count_for(args, rate, nclients)
        wsf = ws_floor(args, loop, nclients, rate, count)
        clients = loop.connect(env.port, "/ws?kinds=crack", nclients, floor=False)
        bad = [c for c in clients if c.hello is None]
        if bad:
            problems.append("%s, %s client: %d of %d clients did not get in" % (
                path, kind, len(bad), nclients))
        d = daemon_cell(args, env, loop, kind, clients, rate, count)
        loop.drop(clients)
        inf = intake.get(rate)
        if inf is None:                            # the fan-out rate: the nearest rate's
            inf = intake[min(intake, key=lambda r: abs(r - rate))]
        floor_lat = combine(inf["lat"], wsf["lat"], rng)
        row = {"path": path, "client": kind, "notify": notify, "clients": nclients,
               "rate": rate, "fanout": fan, "count": count, "sent": d["sent"]}
        for k in ("frames", "frames_per_s", "lost", "clients_lost", "gaps", "disorder",
                  "closed"):
            row[k] = d[k]
        row["lat"] = summary(d["lat"])
        row["floor_lat"] = summary(floor_lat)
        row["intake_lat"] = summary(inf["lat"])
        row["ws_lat"] = summary(wsf["lat"])
        row["cpu_per_1000"] = d["cpu_per_1000"]
        row["client_cpu_per_1000"] = d["client_cpu_per_1000"]
        row["intake_cpu_per_1000"] = inf["cpu_per_1000"]
        row["ws_cpu_per_1000"] = wsf["cpu_per_1000"]
        row["floor_frames_per_s"] = wsf["frames_per_s"]
        row["floor_lost"] = wsf["lost"]
        rows.append(row)
        print("  %-7s %-2s %5d clients %6s/s: p99 %.2f ms (floor %.2f), CPU %.4f s/1000, "
              "%s frames/s, lost %d" % (path, kind, nclients, rate, row["lat"]["p99"],
                                        row["floor_lat"]["p99"], d["cpu_per_1000"],
                                        d["frames_per_s"], d["lost"]), flush=True)
        # at smoke sizes every client keeps up: any loss is a failure
        if d["closed"] or d["disorder"] or (d["lost"] and (args.smoke or fan)):
            problems.append("%s, %s client, %d clients at %s/s: %d frames lost (%d clients), "
                            "%d gaps, %d out of order, %d closed" % (
                                path, kind, nclients, rate, d["lost"], d["clients_lost"],
                                d["gaps"], d["disorder"], d["closed"]))
        if d["sent"] < count:
            print("  note: the simulator could send %d of %d (socket full)"
                  % (d["sent"], count))
    return problems


def ratio(a, b):
    return a / b if b and b == b and b > 0 else float("nan")


def report(rows):
    kinds = sorted(set(r["client"] for r in rows))

    def name(path, kind):
        return path + ("/" + kind if len(kinds) > 1 else "")
    print()
    print("notification -> feed client latency and daemon CPU, each against its floor "
          "(bare intake + bare WebSocket fan-out, same run)")
    hdr = ("%-10s %7s %6s %6s | %7s %7s %7s | %7s %7s %7s | %5s %5s %5s | %8s %8s %6s %6s | "
           "%9s %6s")
    print(hdr % ("path", "clients", "rate", "sent", "p50", "p99", "max", "fl p50", "fl p99",
                 "fl max", "x p50", "x p99", "x max", "CPU", "floor", "x all", "x in",
                 "frames/s", "lost"))
    print(hdr % ("", "", "/s", "", "ms", "ms", "ms", "ms", "ms", "ms", "", "", "", "s/1000",
                 "s/1000", "", "", "", ""))
    for r in rows:
        L, F = r["lat"], r["floor_lat"]
        fcpu = r["intake_cpu_per_1000"] + r["ws_cpu_per_1000"]
        r["floor_cpu_per_1000"] = fcpu
        r["ratio"] = {"p50": ratio(L["p50"], F["p50"]), "p99": ratio(L["p99"], F["p99"]),
                      "max": ratio(L["max"], F["max"]),
                      "cpu": ratio(r["cpu_per_1000"], fcpu),
                      "cpu_intake": ratio(r["cpu_per_1000"], r["intake_cpu_per_1000"])}
        R = r["ratio"]
        print("%-10s %7d %6s %6d | %7.2f %7.2f %7.2f | %7.2f %7.2f %7.2f | %5.1f %5.1f %5.1f | "
              "%8.4f %8.4f %6.1f %6.1f | %9s %6d" % (
                  name(r["path"], r["client"]) + ("*" if r["fanout"] else ""), r["clients"], r["rate"], r["sent"],
                  L["p50"], L["p99"], L["max"], F["p50"], F["p99"], F["max"], R["p50"],
                  R["p99"], R["max"], r["cpu_per_1000"], fcpu, R["cpu"], R["cpu_intake"],
                  r["frames_per_s"], r["lost"]))
    print("(* the fan-out run; x: daemon / floor; CPU x all: against intake + WebSocket "
          "floors, x in: against the intake floor alone; clients: %s)"
          % ", ".join({"c": "ws_swarm (C)", "py": "Python"}[k] for k in kinds))
    # the targets
    def find(path, clients, rate, kind):
        for r in rows:
            if r["path"] == path and r["clients"] == clients and r["rate"] == rate \
                    and not r["fanout"] and r["client"] == kind:
                return r
        return None
    targets = []
    for path, kind in ((p, k) for p in ("start", "acquire") for k in kinds):
        r = find(path, 100, 1000, kind)
        if r:
            targets.append(("%s: p99 at 1000/s, 100 clients < 1 ms" % name(path, kind),
                            r["lat"]["p99"],
                            "%.2f ms (floor %.2f ms)" % (r["lat"]["p99"],
                                                         r["floor_lat"]["p99"]),
                            r["lat"]["p99"] < 1.0))
    for path, limit, kind in ((p, lim, k) for p, lim in (("start", 3.0), ("acquire", 2.0))
                              for k in kinds):
        r = find(path, 1, 1000, kind)
        if r:
            targets.append(("%s: CPU/notification within %gx of the bare %s floor (1 client, "
                            "1000/s)" % (name(path, kind), limit, "libdbus" if path == "start" else "read"),
                            r["ratio"]["cpu_intake"],
                            "%.1fx (%.4f vs %.4f s/1000; %.1fx of intake + WebSocket floor)" % (
                                r["ratio"]["cpu_intake"], r["cpu_per_1000"],
                                r["intake_cpu_per_1000"], r["ratio"]["cpu"]),
                            r["ratio"]["cpu_intake"] <= limit))
    for r in rows:
        if r["fanout"]:
            targets.append(("%s: %d clients at %d events/s, no loss" % (
                name(r["path"], r["client"]), r["clients"], r["rate"]),
                            r["lost"], "%d lost, %s frames/s (floor %s)" % (
                                r["lost"], r["frames_per_s"], r["floor_frames_per_s"]),
                            r["lost"] == 0))
    print()
    for name, _, text, ok in targets:
        print("target %-70s %-4s %s" % (name, "met" if ok else "MISS", text))
    return [{"target": n, "met": ok, "figure": text} for n, _, text, ok in targets]


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--daemon", default="build/spinewatchd")
    ap.add_argument("--bench-dir", help="where floor_notify and floor_ws are "
                    "(default: bench/ next to the daemon)")
    ap.add_argument("--smoke", action="store_true", help="a few small cells (make bench-smoke)")
    ap.add_argument("--paths", default="start,acquire")
    ap.add_argument("--rates", help="notifications/s, comma-separated (100,1000,10000)")
    ap.add_argument("--clients", help="client counts, comma-separated (1,100,1000)")
    ap.add_argument("--seconds", type=float, help="burst length per cell (2)")
    ap.add_argument("--frames", type=int, help="at most this many frames per cell (500000)")
    ap.add_argument("--fanout-clients", type=int, help="fan-out run: clients (1000; smoke 100)")
    ap.add_argument("--fanout-rate", type=int, default=200)
    ap.add_argument("--fanout-seconds", type=float, help="(5; smoke 1)")
    ap.add_argument("--fanout-path", default="acquire", choices=("start", "acquire"))
    ap.add_argument("--client", default="c", help="the WebSocket clients: c (build/bench/"
                    "ws_swarm), py (this script's loop), or c,py (every cell with both)")
    ap.add_argument("--swarm", help="the ws_swarm binary (default: in the bench dir)")
    ap.add_argument("--no-history", action="store_true",
                    help="the daemon without a state directory: no history database")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dump", help="append each daemon cell's (send, arrival) times to this "
                    "file, one JSON line a cell")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    full = dict(rates="100,1000,10000", clients="1,100,1000", seconds=2, frames=500000,
                fanout_clients=1000, fanout_seconds=5, min_count=200)
    smoke = dict(rates="1000", clients="1,100", seconds=0.3, frames=100000,
                 fanout_clients=0, fanout_seconds=1, min_count=100)
    for k, v in (smoke if args.smoke else full).items():
        if getattr(args, k, None) is None:
            setattr(args, k, v)
    args.rates = [int(x) for x in str(args.rates).split(",")]
    args.clients = [int(x) for x in str(args.clients).split(",")]
    args.bench_dir = args.bench_dir or os.path.join(os.path.dirname(
        os.path.abspath(args.daemon)), "bench")
    args.swarm = args.swarm or os.path.join(args.bench_dir, "ws_swarm")
    args.client = args.client.split(",")
    if not args.client or any(k not in ("c", "py") for k in args.client):
        ap.error("--client: c, py or c,py")
    most = max(args.clients + [args.fanout_clients or 0])
    if raise_nofile(2 * most + 256) < most + 128:
        ap.error("RLIMIT_NOFILE too low for %d clients" % most)
    rng = random.Random(args.seed)
    rows, problems = [], []
    t_start = time.monotonic()
    for path in args.paths.split(","):
        t = time.monotonic()
        try:
            problems += run_path(args, path, rng, rows)
        except Failure as e:
            problems.append("%s: could not run: %s" % (path, e))
        print("%s path: %.1f s" % (path, time.monotonic() - t), flush=True)
    targets = report(rows)
    for p in problems:
        print("FAIL: " + p)
    out = {"smoke": args.smoke, "client": args.client,
           "wall_s": round(time.monotonic() - t_start, 1),
           "targets": targets, "problems": problems, "cells": rows}
    print("LATENCY " + json.dumps(out, sort_keys=True, default=lambda x: None))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
