#!/usr/bin/python3
# tests/bench/allocs.py - heap allocations per notification in spinewatchd (issue 11: "no
# allocation per event on the hot path"). The daemon runs with tests/bench/malloc_count.so
# preloaded, which counts malloc/calloc/realloc into a mapped file; for each notification path
# (AcquireNotify, StartNotify) a warm-up burst of cracks, then N cracks through one sensor with
# one feed client connected; the allocations made during the burst, per notification, are
# printed (a table and a JSON line). Everything the daemon does meanwhile counts too: the 1 s
# history flush (SQLite), status messages, the feed client's frames, and on the StartNotify path
# libdbus's message per notification (that is the bus's cost, the reason AcquireNotify exists).
#
# --max-per-notification X makes it fail (exit 1) when the AcquireNotify path allocates more
# than X per notification: a count, not a time (bench-smoke uses it to catch an allocation per
# event creeping back).
#
#   /usr/bin/python3 tests/bench/allocs.py --daemon build/spinewatchd --preload build/bench/malloc_count.so

import argparse
import json
import os
import struct
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "sim"))
sys.path.insert(0, HERE)
from daemon_harness import MIC, DaemonEnv, Failure, wait_until  # noqa: E402
from notify_paths import burst  # noqa: E402


def read_counts(path):
    with open(path, "rb") as fh:
        allocs, frees, nbytes = struct.unpack("<3Q", fh.read(24))
    return allocs, frees, nbytes


def run_path(args, path):
    fd, counts = tempfile.mkstemp(prefix="spinewatch-allocs-")
    os.close(fd)
    saved = dict(os.environ)

    def preload(_env):
        os.environ["LD_PRELOAD"] = os.path.abspath(args.preload)
        os.environ["MALLOC_COUNT_FILE"] = counts

    env = DaemonEnv(args.daemon, sim_args=["--scenario", "idle", "--require-pairing", "none",
                                           "--battery-drain", "0"],
                    daemon_args=["--allow", MIC, "--notify-path", path, "-q"] +
                    (["--state-dir", "/dev/null/none"] if args.no_history else []),
                    before_daemon=preload, verbose=args.verbose, label=path)
    try:
        with env:
            os.environ.clear()
            os.environ.update(saved)
            wait_until(lambda: (env.sensors().get(MIC) or {}).get("notify") is not None, 20,
                       "the Spine Mic to be subscribed (%s)" % path)
            burst(env, min(1000, args.count), args.rate, 20)     # warm-up
            time.sleep(1.5)
            a0, f0, b0 = read_counts(counts)
            log, got, _ = burst(env, args.count, args.rate, args.timeout)
            a1, f1, b1 = read_counts(counts)
            sent = sum(1 for e in log if bool(e[3]))
            if a0 == 0:
                raise Failure("no allocation counted: is %s preloaded?" % args.preload)
            return {"path": path, "notify": env.sensors()[MIC]["notify"], "sent": sent,
                    "received": len(got), "allocs": a1 - a0, "frees": f1 - f0,
                    "bytes": b1 - b0, "per_notification": (a1 - a0) / max(1, sent),
                    "bytes_per_notification": (b1 - b0) / max(1, sent)}
    finally:
        os.environ.clear()
        os.environ.update(saved)
        os.unlink(counts)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--daemon", default="build/spinewatchd")
    ap.add_argument("--preload", default="build/bench/malloc_count.so")
    ap.add_argument("-n", "--count", type=int, default=10000)
    ap.add_argument("--rate", type=int, default=2000)
    ap.add_argument("--timeout", type=float, default=25.0)
    ap.add_argument("--max-per-notification", type=float, default=None)
    ap.add_argument("--no-history", action="store_true",
                    help="run the daemon without a history database (its state directory unusable)")
    ap.add_argument("-v", "--verbose", action="store_true")
    args = ap.parse_args()
    results = []
    for path in ("auto", "start"):
        try:
            results.append(run_path(args, path))
        except Failure as e:
            print("allocs: %s path could not run: %s" % (path, e))
            return 1
    print("heap allocations in spinewatchd during %d crack notifications at %d/s, one client"
          % (args.count, args.rate))
    print("%-18s %7s %9s %9s %9s %12s %12s" % ("path (notify)", "sent", "received", "allocs",
                                               "frees", "per notif.", "bytes/notif."))
    for r in results:
        print("%-18s %7d %9d %9d %9d %12.3f %12.1f" % (
            "%s (%s)" % (r["path"], r["notify"]), r["sent"], r["received"], r["allocs"],
            r["frees"], r["per_notification"], r["bytes_per_notification"]))
    print("ALLOCS " + json.dumps({"count": args.count, "rate": args.rate, "paths": results},
                                 sort_keys=True))
    acquire = results[0]
    if acquire["received"] < acquire["sent"]:
        print("FAIL: %d of %d notifications did not reach the client"
              % (acquire["sent"] - acquire["received"], acquire["sent"]))
        return 1
    if args.max_per_notification is not None and \
            acquire["per_notification"] > args.max_per_notification:
        print("FAIL: %.3f allocations per notification on the AcquireNotify path (at most %g)"
              % (acquire["per_notification"], args.max_per_notification))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
