#!/usr/bin/python3
# tests/sim/test_daemon.py - spinewatchd against the simulated BlueZ (issue 3).
#
# Each test starts its own private dbus-daemon, fake_bluez.py and spinewatchd on 127.0.0.1 with
# a free port (daemon_harness.DaemonEnv), drives the simulator through io.spinewatch.Sim1,
# watches the daemon through its WebSocket feed and the simulator's record of BlueZ calls,
# and stops everything by PID. Every test also checks that feed event `seq` numbers are
# strictly increasing with no duplicates. Follows the daemon contract of issue 3 (options
# --notify-path, --sensor-period, --profiles, --backoff-*; agent at /io/spinewatch/agent).
#
#   /usr/bin/python3 tests/sim/test_daemon.py --daemon build/spinewatchd [-v] [-k NAME]
#
# Prints "N passed, M failed"; exits non-zero on any failure.

import argparse
import math
import os
import struct
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import payloads as P  # noqa: E402
from daemon_harness import (ALL4, CLIP, MIC, MICROBIT, THINGY, DaemonEnv, Failure,  # noqa: E402
                            check, dev_path, wait_until)

STREAMING = "streaming"
# a sound sensor is "subscribed" until its first crack; the quick scenario cracks every 3 s
LIVE = ("subscribed", "streaming")
FAST = ["--backoff-min", "200", "--backoff-max", "2000"]
ALL_LIVE = {CLIP: STREAMING, MIC: LIVE, MICROBIT: STREAMING, THINGY: STREAMING}

TESTS = []
OPTS = None


def test(fn):
    TESTS.append(fn)
    return fn


def env(sim_args=("--scenario", "quick"), daemon_args=(), before=None):
    return DaemonEnv(OPTS.daemon, sim_args=list(sim_args), daemon_args=FAST + list(daemon_args),
                     before_daemon=before, verbose=OPTS.verbose)


def sessions_ok(e, addresses):
    """Exactly one notify session per data characteristic (no duplicate subscriptions)."""
    for a in addresses:
        st = e.device(a)
        sess = [str(s) for s in st["Sessions"]]
        check(len(sess) == 1, "%s has notify sessions %r (expected exactly one)" % (a, sess))


def posture_after(e, mark, address, n=3, timeout=8):
    wait_until(lambda: len(e.feed.of_type("posture", mark, sensor=address)) >= n, timeout,
               "posture messages from %s" % address)


def sensor_states_seen(e, address, since=0):
    return [m.get("state") for m in e.feed.events(since, kind="sensor", sensor=address)]


# ------------------------------------------------------------------------------ tests

@test
def all_profiles_stream_via_acquire(e=None):
    """Default run: the four sensors stream, each through AcquireNotify."""
    with env() as e:
        s = e.wait_states(ALL_LIVE, 20)
        for a in (CLIP, MICROBIT, THINGY):
            check(s[a].get("notify") == "acquire", "%s notify %r" % (a, s[a].get("notify")))
            check(e.device(a)["NotifyPath"] == "acquire", "sim says %s path %r"
                  % (a, e.device(a)["NotifyPath"]))
        check(s[CLIP]["profile"] == "spinewatch" and s[MICROBIT]["profile"] == "microbit"
              and s[THINGY]["profile"] == "thingy52", "profiles %r" %
              {a: s[a].get("profile") for a in ALL4})
        check(s[CLIP].get("battery") in range(1, 101) and s[THINGY].get("battery") in range(1, 101),
              "battery %r / %r" % (s[CLIP].get("battery"), s[THINGY].get("battery")))
        check(s[MICROBIT].get("battery") is None, "micro:bit battery %r" % s[MICROBIT].get("battery"))
        check(e.sim("InjectCrack", "ssyqy", MIC, "pop", 70, 40, 2), "crack not sent")
        wait_until(lambda: e.feed.events(kind="crack", sensor=MIC), 5, "the injected crack")
        s = e.wait_states({MIC: STREAMING}, 5)
        check(s[MIC].get("notify") == "acquire", "mic notify %r" % s[MIC].get("notify"))
        e.sim("SetBattery", "sy", CLIP, 33)
        wait_until(lambda: e.sensors()[CLIP].get("battery") == 33, 5, "battery 33 in hello")
        wait_until(lambda: any(m.get("battery") == 33 for m in e.feed.of_type("status", sensor=CLIP)),
                   3, "a status message with battery 33")
        sessions_ok(e, ALL4)
        e.feed.check_sequence()


@test
def bluetoothd_restart_mid_stream(e=None):
    """bluetoothd killed (SIGKILL) and later stopped (TERM) and restarted: everything is
    flushed and comes back, with one subscription each."""
    with env() as e:
        e.wait_states(ALL_LIVE, 20)
        for kill in (True, False):
            mark = e.feed.mark()
            e.restart_sim(kill=kill, pause=1.0)
            e.wait_states(ALL_LIVE, 25, "all streaming after bluetoothd %s"
                          % ("was killed" if kill else "restarted"))
            check({"gone", "lost", "waiting"} & set(sensor_states_seen(e, CLIP, mark)),
                  "no gone/lost state for the clip in %r" % sensor_states_seen(e, CLIP, mark))
            posture_after(e, e.feed.mark(), CLIP)
            posture_after(e, e.feed.mark(), THINGY)
            sessions_ok(e, (CLIP, MICROBIT, THINGY, MIC))
        e.wait_received_grows((CLIP, MICROBIT, THINGY))
        e.feed.check_sequence()


@test
def adapter_removed_and_readded(e=None):
    with env() as e:
        e.wait_states(ALL_LIVE, 20)
        mark = e.feed.mark()
        e.sim("RemoveAdapter")
        wait_until(lambda: all(s.get("state") not in LIVE for a, s in e.sensors().items()
                               if a in ALL4), 8, "sensors to leave streaming")
        time.sleep(1.0)
        e.sim("AddAdapter")
        e.wait_states(ALL_LIVE, 25, "all streaming after the adapter came back")
        check("gone" in sensor_states_seen(e, CLIP, mark), "no gone state for the clip: %r"
              % sensor_states_seen(e, CLIP, mark))
        posture_after(e, e.feed.mark(), CLIP)
        sessions_ok(e, ALL4)
        e.feed.check_sequence()


@test
def power_off_and_on(e=None):
    with env() as e:
        e.wait_states(ALL_LIVE, 20)
        e.set_powered(False)
        wait_until(lambda: all(s.get("state") not in LIVE for a, s in e.sensors().items()
                               if a in ALL4), 8, "sensors to leave streaming at power off")
        time.sleep(1.5)
        check(all(e.device(a)["State"] == "disconnected" for a in ALL4), "connected while off")
        e.set_powered(True)
        e.wait_states(ALL_LIVE, 25, "all streaming after power on")
        posture_after(e, e.feed.mark(), MICROBIT)
        sessions_ok(e, ALL4)
        e.feed.check_sequence()


@test
def disconnect_reconnect_loops(e=None):
    """DropLink the clip and the Thingy again and again: they come back each time, one
    subscription each, and the feed stays consistent."""
    with env() as e:
        e.wait_states(ALL_LIVE, 20)
        for i in range(6):
            for a in (CLIP, THINGY):
                e.sim("DropLink", "s", a)
            wait_until(lambda: all(e.sensors()[a]["state"] != STREAMING for a in (CLIP, THINGY)),
                       5, "loop %d: the link loss to show" % i)
            e.wait_states({CLIP: STREAMING, THINGY: STREAMING}, 15, "loop %d: streaming again" % i)
            sessions_ok(e, (CLIP, THINGY))
        check(int(e.device(CLIP)["Counters"]["links_down"]) == 6, "links_down %r"
              % e.device(CLIP)["Counters"].get("links_down"))
        check(e.sensors()[MICROBIT]["state"] == STREAMING, "the micro:bit suffered")
        e.wait_received_grows((CLIP, THINGY))
        e.feed.check_sequence()


@test
def many_sensors_at_once(e=None):
    """--extra-clips 6: ten sensors (nine posture sources) stream together."""
    extra = ["C0:FF:EE:00:01:%02X" % i for i in range(1, 7)]
    with env(["--scenario", "quick", "--extra-clips", "6"]) as e:
        want = dict(ALL_LIVE, **{a: STREAMING for a in extra})
        s = e.wait_states(want, 30)
        check(len([a for a in s if s[a]["state"] == STREAMING]) >= 8, "fewer than 8 streaming")
        mark = e.feed.mark()
        for a in extra + [CLIP, MICROBIT, THINGY]:
            posture_after(e, mark, a, n=3, timeout=10)
        e.wait_received_grows(extra + [CLIP, THINGY, MICROBIT], timeout=10, by=10)
        sessions_ok(e, extra)
        e.feed.check_sequence()


@test
def acquire_refused_falls_back_to_start(e=None):
    """AcquireNotify refused (NotSupported / NotPermitted / InProgress / UnknownMethod) or an
    indicate-only characteristic: StartNotify, data flows, hello says "start"."""
    def before(e):
        e.sim("SetAcquireNotify", "sss", CLIP, "", "NotSupported")
        e.sim("SetAcquireNotify", "sss", MIC, "", "NotPermitted")
        e.sim("SetAcquireNotify", "sss", THINGY, "thingy-gravity", "InProgress")
        e.sim("SetIndicateOnly", "sb", MICROBIT, True)
    with env(before=before) as e:
        s = e.wait_states(ALL_LIVE, 20)
        for a in (CLIP, MICROBIT, THINGY):
            check(s[a].get("notify") == "start", "%s notify %r" % (a, s[a].get("notify")))
            check(e.device(a)["NotifyPath"] == "start", "sim says %s %r" % (a, e.device(a)["NotifyPath"]))
        e.sim("InjectCrack", "ssyqy", MIC, "click", 30, 8, 1)
        wait_until(lambda: e.feed.events(kind="crack", sensor=MIC), 5, "crack via StartNotify")
        check(e.sensors()[MIC].get("notify") == "start", "mic not on start")
        acq = [c for c in e.calls("GattCharacteristic1.AcquireNotify") if dev_path(CLIP) in c[2]]
        check(acq, "the daemon never tried AcquireNotify on the clip")
        posture_after(e, e.feed.mark(), CLIP)
        sessions_ok(e, ALL4)
        # an old BlueZ without AcquireNotify at all, after a reconnect
        e.sim("SetAcquireNotify", "sss", CLIP, "", "UnknownMethod")
        e.sim("DropLink", "s", CLIP)
        time.sleep(0.5)
        s = e.wait_states({CLIP: STREAMING}, 15)
        check(s[CLIP].get("notify") == "start", "clip notify %r after UnknownMethod" % s[CLIP].get("notify"))
        # AcquireNotify allowed again: re-acquired after the next reconnect
        e.sim("SetAcquireNotify", "sss", CLIP, "", "")
        e.sim("DropLink", "s", CLIP)
        time.sleep(0.5)
        s = e.wait_states({CLIP: STREAMING}, 15)
        check(s[CLIP].get("notify") == "acquire", "clip not re-acquired: %r" % s[CLIP].get("notify"))
        sessions_ok(e, (CLIP,))
        e.feed.check_sequence()


@test
def notify_path_start_option(e=None):
    with env(daemon_args=["--notify-path", "start"]) as e:
        s = e.wait_states(ALL_LIVE, 20)
        for a in (CLIP, MICROBIT, THINGY):
            check(s[a].get("notify") == "start", "%s notify %r" % (a, s[a].get("notify")))
        check(not e.calls("GattCharacteristic1.AcquireNotify"),
              "AcquireNotify called with --notify-path start")
        e.wait_received_grows((CLIP, MICROBIT, THINGY))
        e.feed.check_sequence()


@test
def pairing_flow_microbit(e=None):
    """The micro:bit demands pairing: the daemon's NoInputNoOutput agent is asked, the
    device ends Paired and Trusted, data flows; after the bond is forgotten it pairs again."""
    with env() as e:
        s = e.wait_states({MICROBIT: STREAMING}, 20)
        reg = e.calls("AgentManager1.RegisterAgent")
        check(reg and str(reg[0][4][0]) == "/io/spinewatch/agent" and str(reg[0][4][1]) == "NoInputNoOutput",
              "RegisterAgent calls %r" % reg)
        daemon_name = reg[0][1]
        pair = [c for c in e.calls("Device1.Pair") if c[2] == dev_path(MICROBIT)]
        check(len(pair) == 1 and pair[0][1] == daemon_name, "Pair calls %r" % pair)
        check(e.calls("Agent1.RequestAuthorization:reply"), "agent did not accept: %r"
              % [c[3] for c in e.calls() if c[3].startswith("Agent1")])
        trusted = [c for c in e.calls("Properties.Set") if c[2] == dev_path(MICROBIT)
                   and str(c[4][1]) == "Trusted" and bool(c[4][2])]
        check(trusted and trusted[0][0] > pair[0][0], "Trusted not set after Pair: %r" % trusted)
        st = e.device(MICROBIT)
        check(st["Paired"] and st["Trusted"], "sim: Paired %s Trusted %s" % (st["Paired"], st["Trusted"]))
        check("pairing" in sensor_states_seen(e, MICROBIT), "no pairing state: %r"
              % sensor_states_seen(e, MICROBIT))
        check(not [c for c in e.calls("Device1.Pair") if c[2] != dev_path(MICROBIT)],
              "the daemon paired devices that did not ask for it")
        posture_after(e, e.feed.mark(), MICROBIT)
        # bond forgotten on both sides: NotAuthorized again after the reconnect, pairs again
        e.sim("ForgetBond", "s", MICROBIT)
        e.sim("DropLink", "s", MICROBIT)
        time.sleep(0.5)
        e.wait_states({MICROBIT: STREAMING}, 20, "micro:bit streaming after re-pairing")
        check(len([c for c in e.calls("Device1.Pair") if c[2] == dev_path(MICROBIT)]) == 2,
              "not paired a second time")
        check(e.device(MICROBIT)["Paired"], "not Paired again")
        sessions_ok(e, (MICROBIT,))
        e.feed.check_sequence()


@test
def garbage_between_valid_notifications(e=None):
    """Garbage between valid notifications: rejected counters rise, valid data keeps flowing,
    the daemon survives."""
    def before(e):
        for a in (CLIP, MICROBIT, THINGY):
            e.sim("SetGarbage", "sd", a, 0.3)
        e.sim("SetGarbage", "sd", MIC, 1.0)      # cracks are rare: garbage after each
    with env(before=before) as e:
        e.wait_states({CLIP: STREAMING, MICROBIT: STREAMING, THINGY: STREAMING}, 20)
        e.wait_received_grows((CLIP, MICROBIT, THINGY), timeout=10, by=20)
        for _ in range(6):
            e.sim("InjectCrack", "ssyqy", MIC, "pop", 60, 30, 2)
            time.sleep(0.05)

        def rejected_all():
            s = e.sensors()
            return all((s[a].get("rejected") or 0) >= 3 for a in (CLIP, MICROBIT, THINGY, MIC))
        wait_until(rejected_all, 10, "rejected counters to rise on all four: %r" %
                   ({a: e.sensors()[a].get("rejected") for a in ALL4},))
        check(len(e.feed.events(kind="crack", sensor=MIC)) >= 6, "valid cracks dropped")
        for a in (CLIP, THINGY, MICROBIT):
            posture_after(e, e.feed.mark(), a)
        # the Thingy's NaN and infinities in particular
        e.sim("SetGarbageKinds", "sas", THINGY, ["nan", "inf"])
        before_rej = e.sensors()[THINGY]["rejected"]
        wait_until(lambda: e.sensors()[THINGY]["rejected"] >= before_rej + 5, 10,
                   "NaN/inf rejections on the Thingy")
        angles = [m.get("angle") for m in e.feed.of_type("posture", sensor=THINGY)]
        check(all(isinstance(x, (int, float)) and math.isfinite(x) for x in angles),
              "non-finite Thingy angle in the feed")
        check(e.daemon_alive(), "the daemon died")
        e.feed.check_sequence()


@test
def discovery_with_require_discovery(e=None):
    """Devices only appear while discovering: the daemon sets Transport le without UUIDs
    (the micro:bit advertises none), starts discovery, and stops it once all stream."""
    with env(["--scenario", "quick", "--require-discovery"]) as e:
        e.wait_states(ALL_LIVE, 25)
        filters = e.calls("Adapter1.SetDiscoveryFilter")
        starts = e.calls("Adapter1.StartDiscovery")
        check(filters and starts, "filter %r start %r" % (filters, starts))
        f = filters[0][4][0]
        check(str(f.get("Transport")) == "le" and "UUIDs" not in f, "discovery filter %r" % dict(f))
        check(filters[0][0] <= starts[0][0], "SetDiscoveryFilter after StartDiscovery")
        wait_until(lambda: not e.sim("GetStatus")["Discovering"], 8,
                   "discovery to stop once every sensor streams")
        stops = e.calls("Adapter1.StopDiscovery")
        check(stops and stops[-1][1] == starts[0][1], "StopDiscovery calls %r" % stops)
        # a sensor lost for good: discovery again; back: stopped again
        e.sim("SetReachable", "sb", CLIP, False)
        wait_until(lambda: e.sim("GetStatus")["Discovering"], 15, "discovery to restart")
        e.sim("SetReachable", "sb", CLIP, True)
        e.wait_states({CLIP: STREAMING}, 30)
        wait_until(lambda: not e.sim("GetStatus")["Discovering"], 10, "discovery to stop again")
        e.feed.check_sequence()


@test
def discovery_filter_with_uuid_profiles(e=None):
    """Only profiles that advertise their service: the filter may carry UUIDs."""
    with env(["--scenario", "quick", "--require-discovery"],
             ["--profiles", "spinewatch,thingy52"]) as e:
        e.wait_states({CLIP: STREAMING, THINGY: STREAMING, MIC: LIVE}, 25)
        f = e.calls("Adapter1.SetDiscoveryFilter")[0][4][0]
        uuids = sorted(str(u).lower() for u in f.get("UUIDs", []))
        check(str(f.get("Transport")) == "le" and
              uuids == sorted([P.SPINE_SERVICE_UUID, P.THINGY_CONFIG_SERVICE_UUID]),
              "discovery filter %r" % dict(f))
        check(MICROBIT not in e.sensors(), "the micro:bit was adopted with its profile off")
        e.feed.check_sequence()


@test
def thingy_posture_and_motion_config(e=None):
    with env(daemon_args=["--sensor-period", "50", "--calibration", "1"]) as e:
        e.wait_states({THINGY: STREAMING}, 20)
        cfg = []

        # the frequency becomes 1000/period; the other fields are kept (or, where the
        # device's own default is outside the firmware's documented ranges, clamped)
        def written():
            cfg[:] = [int(v) for v in e.device(THINGY)["MotionConfig"]]
            return cfg[3] == 20 and cfg[4] == 1 and all(100 <= v <= 10000 for v in cfg[:3])
        try:
            wait_until(written, 5, "the motion config write")
        except Failure:
            raise Failure("motion config in the Thingy %r, expected [100, 10000, 1000, 20, 1] "
                          "(or intervals clamped to the firmware's ranges)\n%s"
                          % (cfg, e.log_tail(8)))
        s = e.wait_states({THINGY: STREAMING}, 5)
        wait_until(lambda: e.sensors()[THINGY].get("period_ms") == 50, 3, "period_ms 50 in hello")
        writes = [c for c in e.calls("GattCharacteristic1.WriteValue")
                  if dev_path(THINGY) in c[2]]
        check(writes and bytes(writes[-1][4][0]) == P.encode_thingy_config(*cfg),
              "motion config writes %r" % [bytes(w[4][0]).hex() for w in writes])
        reads = [c for c in e.calls("GattCharacteristic1.ReadValue") if c[2] == writes[-1][2]]
        check(reads and reads[0][0] < writes[-1][0], "motion config not read before the write")
        check(s[THINGY].get("period_ms") == 50, "Thingy period_ms %r" % s[THINGY].get("period_ms"))
        rate = e.device(THINGY)["RateHz"]
        check(rate == 20.0, "sim rate %r" % rate)
        # posture follows the wearer: held upright, then 30 degrees
        e.sim("SetAngle", "sd", THINGY, 0.0)
        time.sleep(2.0)
        mark = e.feed.mark()
        e.sim("SetAngle", "sd", THINGY, 30.0)
        time.sleep(1.5)
        late = [m for m in e.feed.of_type("posture", mark, sensor=THINGY)][-3:]
        check(late and all(abs(m["angle"] - 30.0) < 4.0 for m in late if not m.get("calibrating")),
              "Thingy angles %r, expected ~30" % [m.get("angle") for m in late])
        e.feed.check_sequence()


@test
def microbit_period_written_and_read_back(e=None):
    with env(daemon_args=["--sensor-period", "50"]) as e:
        e.wait_states({MICROBIT: STREAMING}, 20)
        wait_until(lambda: e.sensors()[MICROBIT].get("period_ms") is not None, 5,
                   "the micro:bit's period_ms in hello")
        s = e.sensors()
        period_uuid_path = [c for c in e.calls("GattCharacteristic1.WriteValue")
                            if dev_path(MICROBIT) in c[2]]
        check(period_uuid_path, "no WriteValue on the micro:bit")
        w = period_uuid_path[-1]
        check(bytes(w[4][0]) == struct.pack("<H", 50), "period written %r" % bytes(w[4][0]).hex())
        reads = [c for c in e.calls("GattCharacteristic1.ReadValue") if c[2] == w[2] and c[0] > w[0]]
        check(reads, "period not read back after the write")
        check(e.device(MICROBIT)["PeriodMs"] == 20, "micro:bit chose %r" % e.device(MICROBIT)["PeriodMs"])
        check(s[MICROBIT].get("period_ms") == 20, "hello period_ms %r (the micro:bit chose 20)"
              % s[MICROBIT].get("period_ms"))
        e.feed.check_sequence()


THINGY_SOUND = "C0:FF:EE:00:00:05"


@test
def thingy_sound_cracks_heard(e=None):
    """A Thingy:52 streaming its microphone (--thingy-sound): spinewatchd switches the
    microphone to ADPCM, hears the cracks the simulator plays into the audio and publishes
    them as crack events of that sensor (pop with its pops counted, click, grind), nothing
    while only the background plays; lost frames are counted, bad frames rejected."""
    with env(sim_args=("--scenario", "idle", "--thingy-sound"),
             daemon_args=["--allow", THINGY_SOUND]) as e:
        s = e.wait_states({THINGY_SOUND: STREAMING}, 20)
        check(s[THINGY_SOUND]["profile"] == "thingy52", "profile %r" % s[THINGY_SOUND]["profile"])
        check("sound" in (s[THINGY_SOUND].get("roles") or []), "roles %r"
              % s[THINGY_SOUND].get("roles"))
        check(list(e.device(THINGY_SOUND)["SoundConfig"]) == [1, 1],
              "sound config %r, expected ADPCM" % list(e.device(THINGY_SOUND)["SoundConfig"]))
        sessions_ok(e, (THINGY_SOUND,))
        time.sleep(1.5)      # the detector learns the background
        quiet = e.feed.mark()
        time.sleep(2.0)
        check(not e.feed.events(quiet, kind="crack", sensor=THINGY_SOUND),
              "cracks heard in the background: %r" % e.feed.events(quiet, kind="crack"))
        for kind, intensity, duration, count in (("pop", 80, 80, 3), ("click", 80, 6, 1),
                                                 ("grind", 80, 900, 1), ("pop", 60, 6, 1)):
            mark = e.feed.mark()
            check(e.sim("InjectCrack", "ssyqy", THINGY_SOUND, kind, intensity, duration, count),
                  "the simulator did not play the %s" % kind)
            wait_until(lambda: e.feed.events(mark, kind="crack", sensor=THINGY_SOUND), 5,
                       "the %s heard" % kind)
            time.sleep(0.8)  # anything else it caused
            got = e.feed.events(mark, kind="crack", sensor=THINGY_SOUND)
            check([m.get("crack") for m in got] == [kind], "played a %s, heard %r" %
                  (kind, [(m.get("crack"), m.get("count")) for m in got]))
            ev = got[0]
            check(0 < ev.get("intensity", 0) <= 100, "intensity %r" % ev.get("intensity"))
            # heard, so with the level and the dominant frequency
            level = ev.get("level_dbfs")
            check(isinstance(level, (int, float)) and -90 < level <= 0 and
                  abs(ev["intensity"] - max(0, min(100, 100 + level))) <= 1,
                  "level_dbfs %r with intensity %r" % (level, ev.get("intensity")))
            check(isinstance(ev.get("freq_hz"), int) and 0 < ev["freq_hz"] <= 8000,
                  "freq_hz %r" % ev.get("freq_hz"))
            if kind == "grind":
                check(ev["freq_hz"] < 1000, "a grind's dominant frequency %r Hz" % ev["freq_hz"])
            if kind == "pop":
                check(1 <= ev.get("count", 0) <= count, "%d pops heard as %r" % (count, ev.get("count")))
            if kind == "grind":
                check(500 <= ev.get("duration_ms", 0) <= 1300, "a 900 ms grind heard as %r ms"
                      % ev.get("duration_ms"))
        # frames lost over the air: counted (once per gap), no crack from the jumps
        before = e.sensors()[THINGY_SOUND]
        mark = e.feed.mark()
        e.sim("SetLoss", "sd", THINGY_SOUND, 0.1)
        time.sleep(2.0)
        e.sim("SetLoss", "sd", THINGY_SOUND, 0.0)
        e.sim("SetGarbage", "sd", THINGY_SOUND, 0.05)
        time.sleep(2.0)
        e.sim("SetGarbage", "sd", THINGY_SOUND, 0.0)
        time.sleep(1.2)
        after = e.sensors()[THINGY_SOUND]
        check((after.get("lost") or 0) > (before.get("lost") or 0), "lost frames not counted: %r"
              % after.get("lost"))
        check((after.get("rejected") or 0) > (before.get("rejected") or 0),
              "bad frames not rejected: %r" % after.get("rejected"))
        check(not e.feed.events(mark, kind="crack", sensor=THINGY_SOUND),
              "cracks heard from lost or bad frames: %r" % e.feed.events(mark, kind="crack"))
        check(e.daemon_alive(), "spinewatchd died")
        e.feed.check_sequence()


# ------------------------------------------------------------------------------ main

def main():
    global OPTS
    ap = argparse.ArgumentParser()
    ap.add_argument("--daemon", default="build/spinewatchd")
    ap.add_argument("-v", "--verbose", action="store_true", help="simulator and daemon logs")
    ap.add_argument("-k", dest="pattern", help="run tests whose name contains this")
    OPTS = ap.parse_args()
    if not os.access(OPTS.daemon, os.X_OK):
        print("no daemon at %s (build it with make)" % OPTS.daemon)
        return 2
    tests = [t for t in TESTS if not OPTS.pattern or OPTS.pattern in t.__name__]
    passed = failed = 0
    for t in tests:
        t0 = time.monotonic()
        try:
            t()
        except Exception as e:
            failed += 1
            detail = str(e) if isinstance(e, Failure) else traceback.format_exc()
            print("FAIL %s (%.1f s): %s" % (t.__name__, time.monotonic() - t0, detail), flush=True)
        else:
            passed += 1
            print("ok   %s (%.1f s)" % (t.__name__, time.monotonic() - t0), flush=True)
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
