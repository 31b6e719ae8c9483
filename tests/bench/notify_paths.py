#!/usr/bin/python3
# tests/bench/notify_paths.py - compare spinewatchd's two notification paths on the simulator:
# AcquireNotify (one SOCK_SEQPACKET packet per notification; `--notify-path auto`) and
# StartNotify (a D-Bus PropertiesChanged signal per notification; `--notify-path start`).
#
# For each path: a private bus + tests/sim/fake_bluez.py + spinewatchd adopting only the Spine
# Mic, a warm-up burst, then N crack notifications at a fixed rate (Sim1.BurstCracks). It
# reports the daemon's CPU time (utime+stime from /proc/PID/stat) per 1000 notifications, the
# dbus-daemon's too, and notification-to-client latency: the simulator records the
# CLOCK_MONOTONIC send time of every crack, a WebSocket client records the receive time of every
# crack event; they are matched by duration_ms, which carries the crack's index.
# A benchmark, not a test: no timing assertions. Exit status 1 only if a run could not be done.
#
#   /usr/bin/python3 tests/bench/notify_paths.py --daemon build/spinewatchd [-n 20000] [--rate 2000]

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "sim"))
from daemon_harness import MIC, DaemonEnv, Failure, cpu_seconds, wait_until  # noqa: E402


def percentile(sorted_values, p):
    if not sorted_values:
        return float("nan")
    k = (len(sorted_values) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (k - lo)


def burst(env, count, rate, timeout):
    """Send `count` cracks at `rate`; wait for their feed events. Returns
    (send log, {index: receive time}, elapsed)."""
    mark = env.feed.mark()
    t0 = time.monotonic()
    if not env.sim("BurstCracks", "suu", MIC, count, rate):
        raise Failure("BurstCracks: nobody subscribed")

    def received():
        return [(t, m) for t, m in env.feed.snapshot(mark)
                if m.get("type") == "event" and m.get("kind") == "crack"]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(received()) >= count:
            break
        time.sleep(0.05)
    wait_until(lambda: not env.sim("BurstRunning"), 10, "the burst to end")
    time.sleep(0.3)                      # stragglers
    elapsed = time.monotonic() - t0
    log = env.sim("GetBurstLog")
    got = {}
    for t, m in received():
        got.setdefault(int(m["duration_ms"]) - 1, t)
    return log, got, elapsed


def run_path(args, path):
    env = DaemonEnv(args.daemon, sim_args=["--scenario", "idle", "--require-pairing", "none",
                                           "--battery-drain", "0"],
                    daemon_args=["--allow", MIC, "--notify-path", path, "-q"],
                    verbose=args.verbose, label=path)
    with env:
        wait_until(lambda: (env.sensors().get(MIC) or {}).get("notify") is not None, 20,
                   "the Spine Mic to be subscribed (%s)" % path)
        notify = env.sensors()[MIC]["notify"]
        burst(env, min(1000, args.count), args.rate, 20)            # warm-up
        time.sleep(0.5)
        d0, b0 = cpu_seconds(env.daemon.pid), cpu_seconds(env.sb.bus.pid)
        log, got, elapsed = burst(env, args.count, args.rate, args.timeout)
        d1, b1 = cpu_seconds(env.daemon.pid), cpu_seconds(env.sb.bus.pid)
        sent = [e for e in log if bool(e[3])]
        lat = sorted((got[int(e[0])] - float(e[2])) * 1000.0 for e in sent if int(e[0]) in got)
        n = len(sent)
        seq_events = env.feed.check_sequence()
        return {
            "path": path, "notify": notify, "sent": n, "received": len(lat),
            "elapsed": elapsed,
            "cpu_per_1000": (d1 - d0) * 1000.0 / max(1, n),
            "bus_cpu_per_1000": (b1 - b0) * 1000.0 / max(1, n),
            "p50": percentile(lat, 50), "p95": percentile(lat, 95), "p99": percentile(lat, 99),
            "max": lat[-1] if lat else float("nan"), "events": seq_events,
        }


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--daemon", default="build/spinewatchd")
    ap.add_argument("-n", "--count", type=int, default=20000, help="notifications per path")
    ap.add_argument("--rate", type=int, default=2000, help="notifications per second")
    ap.add_argument("--timeout", type=float, default=25.0, help="per burst, seconds")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    if not 1 <= args.count <= 60000:
        ap.error("--count must be 1..60000 (duration_ms carries the index)")
    results = []
    for path in ("auto", "start"):
        try:
            results.append(run_path(args, path))
        except Failure as e:
            print("notify path %s: could not run: %s" % (path, e))
            return 1
    print("%d crack notifications at %d/s through one sensor, per path" % (args.count, args.rate))
    print("%-22s %8s %9s %12s %12s %8s %8s %8s %8s" % (
        "path (hello notify)", "sent", "received", "daemon CPU", "bus CPU", "p50", "p95", "p99",
        "max"))
    print("%-22s %8s %9s %12s %12s %8s %8s %8s %8s" % (
        "", "", "", "s/1000", "s/1000", "ms", "ms", "ms", "ms"))
    for r in results:
        print("%-22s %8d %9d %12.4f %12.4f %8.2f %8.2f %8.2f %8.2f" % (
            "%s (%s)" % (r["path"], r["notify"]), r["sent"], r["received"], r["cpu_per_1000"],
            r["bus_cpu_per_1000"], r["p50"], r["p95"], r["p99"], r["max"]))
    a, s = results
    def ratio(x, y):
        return x / y if y else float("inf")
    print("start/acquire ratio: daemon CPU %.2fx, latency p50 %.2fx, p95 %.2fx, p99 %.2fx"
          % (ratio(s["cpu_per_1000"], a["cpu_per_1000"]), ratio(s["p50"], a["p50"]),
             ratio(s["p95"], a["p95"]), ratio(s["p99"], a["p99"])))
    for r in results:
        if r["received"] < r["sent"]:
            print("note: %s path: %d of %d notifications did not reach the client"
                  % (r["path"], r["sent"] - r["received"], r["sent"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
