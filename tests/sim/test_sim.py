#!/usr/bin/python3
# tests/sim/test_sim.py - self-check of the simulated BlueZ, without spinewatchd.
#
# Starts a private bus and fake_bluez.py, then acts as a BlueZ client with dbus-python:
# enumerates, connects, subscribes, decodes notifications (with its own decoder, checked
# against the vectors in protocol/spine-sensor-profile.md), checks per-sender notify
# accounting, link loss, error names, and the scenario engine. Prints "N passed, N failed";
# exits non-zero on any failure. Run: /usr/bin/python3 tests/sim/test_sim.py [-v] [-k NAME]

import argparse
import math
import os
import random
import re
import struct
import subprocess
import sys
import time
import traceback

import dbus
import dbus.bus
import dbus.mainloop.glib
from gi.repository import GLib

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import payloads as P  # noqa: E402
import scenario as S  # noqa: E402
import simbus  # noqa: E402

dbus.mainloop.glib.DBusGMainLoop(set_as_default=True)

OM = "org.freedesktop.DBus.ObjectManager"
PROPS = "org.freedesktop.DBus.Properties"
ADAPTER = "/org/bluez/hci0"
CLIP, MIC, MICROBIT = "C0:FF:EE:00:00:01", "C0:FF:EE:00:00:02", "C0:FF:EE:00:00:03"
THINGY = "C0:FF:EE:00:00:04"
CHRC = "org.bluez.GattCharacteristic1"
DEV = "org.bluez.Device1"
SIM_PATH, SIM_IFACE = "/io/spinewatch/sim", "io.spinewatch.Sim1"


def dev_path(address):
    return "%s/dev_%s" % (ADAPTER, address.replace(":", "_"))


class Failure(Exception):
    pass


def check(cond, message):
    if not cond:
        raise Failure(message)


# ------------------------------------------------------------------ decoders (our own)

def decode_posture(b):
    check(len(b) >= 9, "posture payload of %d bytes" % len(b))
    ver, seq, x, y, z = struct.unpack_from("<BHhhh", b)
    check(ver == 1, "posture version %d" % ver)
    return seq, (x, y, z)


def decode_crack(b):
    check(len(b) >= 10, "crack payload of %d bytes" % len(b))
    ver, seq, kind, intensity, duration, count, age = struct.unpack_from("<BHBBHBH", b)
    check(ver == 1, "crack version %d" % ver)
    check(kind <= 2 and intensity <= 100 and count >= 1,
          "crack fields out of range: kind=%d intensity=%d count=%d" % (kind, intensity, count))
    return dict(seq=seq, kind=("pop", "click", "grind")[kind], intensity=intensity,
                duration_ms=duration, count=count, age_ms=age)


def decode_microbit(b):
    check(len(b) == 6, "micro:bit payload of %d bytes" % len(b))
    return struct.unpack("<hhh", b)


def magnitude(v):
    return math.sqrt(sum(c * c for c in v))


# --------------------------------------------------------------------------- client

class Client:
    """A D-Bus client on the private bus that records every signal it sees."""

    def __init__(self, address):
        self.bus = dbus.bus.BusConnection(address)
        self.signals = []
        self.bus.add_signal_receiver(self._on_signal, sender_keyword="sender",
                                     path_keyword="path", interface_keyword="iface",
                                     member_keyword="member", byte_arrays=True)

    def _on_signal(self, *args, sender=None, path=None, iface=None, member=None):
        self.signals.append((time.monotonic(), sender, str(path), str(iface), str(member), args))

    def close(self):
        self.bus.close()

    def pump(self, seconds=0.0, until=None):
        """Run the main context until `until()` is true or `seconds` pass. Returns
        whether `until` became true (or True if there is none)."""
        ctx = GLib.MainContext.default()
        deadline = time.monotonic() + seconds
        while True:
            while ctx.iteration(False):
                pass
            if until is not None and until():
                return True
            if time.monotonic() >= deadline:
                return until is None
            time.sleep(0.005)

    def call(self, path, iface, method, signature=None, *args, timeout=10.0):
        return self.bus.call_blocking("org.bluez", path, iface, method, signature, args,
                                      timeout=timeout, byte_arrays=True)

    def call_async(self, path, iface, method, signature=None, *args):
        box = {}
        self.bus.call_async("org.bluez", path, iface, method, signature, args,
                            lambda *r: box.setdefault("reply", r),
                            lambda e: box.setdefault("error", e), byte_arrays=True)
        return box

    def expect_error(self, name, path, iface, method, signature=None, *args):
        try:
            self.call(path, iface, method, signature, *args)
        except dbus.DBusException as e:
            check(e.get_dbus_name() == name, "%s.%s raised %s (%s), expected %s" % (
                iface, method, e.get_dbus_name(), e.get_dbus_message(), name))
            return
        raise Failure("%s.%s succeeded, expected %s" % (iface, method, name))

    def objects(self):
        return self.call("/", OM, "GetManagedObjects")

    def prop(self, path, iface, name):
        return self.call(path, PROPS, "Get", "ss", iface, name)

    def mark(self):
        return len(self.signals)

    def since(self, mark, member=None, path=None, iface=None):
        return [s for s in self.signals[mark:]
                if (member is None or s[4] == member) and (path is None or s[2] == path)
                and (iface is None or s[3] == iface)]

    def values(self, mark, path):
        """Value payloads notified from `path` since `mark`: (sender, bytes)."""
        out = []
        for s in self.since(mark, "PropertiesChanged", path):
            iface, changed, _ = s[5]
            if iface == "org.bluez.GattCharacteristic1" and "Value" in changed:
                out.append((s[1], bytes(changed["Value"])))
        return out

    def owner(self):
        return self.bus.get_name_owner("org.bluez")

    def sim(self, method, signature=None, *args):
        return self.call(SIM_PATH, SIM_IFACE, method, signature, *args)

    # -- device helpers
    def gatt_paths(self, address):
        prefix = dev_path(address) + "/"
        return {str(p): i for p, i in self.objects().items() if str(p).startswith(prefix)}

    def char_path(self, address, uuid):
        for p, ifaces in self.gatt_paths(address).items():
            c = ifaces.get("org.bluez.GattCharacteristic1")
            if c and c["UUID"] == uuid:
                return p
        return None

    def connect(self, address, uuid):
        """Connect (if needed) and return the path of the characteristic `uuid`."""
        if not self.prop(dev_path(address), "org.bluez.Device1", "ServicesResolved"):
            self.call(dev_path(address), "org.bluez.Device1", "Connect")
        path = self.char_path(address, uuid)
        check(path is not None, "%s has no characteristic %s after Connect" % (address, uuid))
        return path


# ----------------------------------------------------------------------------- tests

TESTS = []
VERBOSE = False


def test(fn):
    TESTS.append(fn)
    return fn


@test
def encoders_match_spec_vectors(c):
    """Our payload encoders reproduce every valid vector of the profile spec."""
    text = open(os.path.join(ROOT, "protocol", "spine-sensor-profile.md")).read()
    block = re.search(r"```vectors\n(.*?)```", text, re.S)
    check(block, "no vectors block in the spec")
    n = 0
    for line in block.group(1).splitlines():
        m = re.match(r"(\w+)\s+([0-9a-f ]*?)\s*=>\s*(.*)$", line)
        if not m or "error=" in m.group(3):
            continue
        kind, hexbytes = m.group(1), bytes.fromhex(m.group(2))
        f = dict(kv.split("=") for kv in m.group(3).split())
        if kind == "posture":
            got = P.encode_posture(int(f["seq"]), int(f["x"]), int(f["y"]), int(f["z"]))
        elif kind == "crack":
            got = P.encode_crack(int(f["seq"]), f["kind"], int(f["intensity"]),
                                 int(f["duration_ms"]), int(f["count"]), int(f["age_ms"]))
        else:
            got = P.encode_microbit(int(f["x"]), int(f["y"]), int(f["z"]))
        # vectors with trailing bytes test the host; the encoder writes the minimum
        check(hexbytes[:len(got)] == got, "%s: encoded %s, spec %s" % (line, got.hex(), hexbytes.hex()))
        n += 1
    check(n >= 8, "only %d vectors checked" % n)


@test
def thingy_mic_frames(c):
    """The microphone frames the simulator sends: its decoder agrees with sox on the frames
    sox made (tests/unit/vectors), and what its encoder writes decodes back close to the
    input, frame after frame, each header continuing the previous frame."""
    n = 0
    with open(os.path.join(ROOT, "tests", "unit", "vectors", "thingy52_sound_sox.txt")) as f:
        frame = None
        for line in f:
            if line.startswith("frame "):
                frame = bytes.fromhex(line.split()[2])
            elif line.startswith("pcm "):
                want = [int(v) for v in line.split()[1:]]
                check(P.decode_thingy_mic_frame(frame) == want, "sox frame %d decodes differently" % n)
                n += 1
    check(n >= 16, "only %d sox frames" % n)
    rng = random.Random(3)
    state = (0, 0)
    for k in range(20):
        pcm = [int(8000 * math.sin((k * 256 + i) / 9.0) + rng.gauss(0, 300)) for i in range(256)]
        frame, pred, index = P.encode_thingy_mic_frame(pcm, *state)
        check(len(frame) == 131 and struct.unpack(">hB", frame[:3]) == state, "frame header")
        out = P.decode_thingy_mic_frame(frame)
        if k > 0:   # the first frame starts from silence and needs a few ms to adapt
            err = max(abs(a - b) for a, b in zip(out, pcm))
            check(err < 2500, "frame %d decodes %d away from its input" % (k, err))
        check(out[-1] == pred, "the encoder's state is the decoder's")
        state = (pred, index)
    for kind, count in (("pop", 3), ("click", 1), ("grind", 1)):
        snd = P.crack_sound(rng, kind, 70, 800, count)
        check(snd and max(abs(v) for v in snd) < 32768, "%s sound" % kind)


@test
def scenario_desk_day_shape(c):
    """desk-day: each loop holds > 15 degrees for > 30 s, sits up below 10, has a 2-5 pop
    burst on standing up; deterministic per seed; the micro:bit hangs along -Y."""
    tr = S.Track("desk-day", 5, "wearer")
    for loop in range(3):
        base = loop * tr.period
        run = best = 0.0
        low_after = False
        for i in range(int(tr.period * 10)):
            a = tr.flexion(base + i / 10.0)
            run = run + 0.1 if a > 15.0 else 0.0
            best = max(best, run)
            if best > 30.0 and a < 10.0:
                low_after = True
        check(best > 32.0, "loop %d: longest stretch above 15 deg is %.1f s" % (loop, best))
        check(low_after, "loop %d: never back below 10 deg after the slouch" % loop)
        cracks = tr.cracks_due(base, base + tr.period)
        pops = [k for k in cracks if k.kind == "pop" and 88.0 <= k.onset - base <= 92.0]
        check(pops and 2 <= pops[0].count <= 5, "loop %d: no 2-5 pop burst on standing" % loop)
        for k in cracks:
            check(k.kind in P.CRACK_KINDS and 0 <= k.intensity <= 100 and k.count >= 1,
                  "bad crack %r" % (k,))
    again = S.Track("desk-day", 5, "wearer").cracks_due(0, 360)
    check(again == tr.cracks_due(0, 360), "same seed gave different cracks")
    other = S.Track("desk-day", 6, "wearer").cracks_due(0, 360)
    check(other != again, "different seeds gave the same cracks")
    g = S.MICROBIT_MOUNT.gravity(0.0)
    check(g[1] / magnitude(g) < -0.95, "micro:bit rest vector %r is not along -Y" % (g,))
    for deg in (5.0, 15.0, 30.0):
        got = S.angle_between(S.CLIP_MOUNT.gravity(0.0), S.CLIP_MOUNT.gravity(deg))
        check(abs(got - deg) < 0.01, "clip mount: %g deg came out as %.3f" % (deg, got))


@test
def quick_scenario_cracks_early(c):
    """quick: first crack sent within 1.5 s of scenario time, then one every 3 s."""
    tr = S.Track("quick", 1, "wearer")
    first = tr.cracks_due(0.0, 1.5)
    check(len(first) == 1, "quick: %d cracks in the first 1.5 s" % len(first))
    check(len(tr.cracks_due(0.0, 15.0)) == 5, "quick: not a crack every 3 s")


@test
def managed_objects_before_connect(c):
    objs = c.objects()
    check(ADAPTER in objs and "org.bluez.Adapter1" in objs[ADAPTER], "no adapter hci0")
    a = objs[ADAPTER]["org.bluez.Adapter1"]
    check(a["Powered"] is not None and bool(a["Powered"]), "adapter not powered")
    check(re.fullmatch(r"([0-9A-F]{2}:){5}[0-9A-F]{2}", str(a["Address"])), "adapter address")
    want = {CLIP: ("Spine Clip", P.SPINE_SERVICE_UUID), MIC: ("Spine Mic", P.SPINE_SERVICE_UUID),
            MICROBIT: ("BBC micro:bit [zotiv]", None),
            THINGY: ("Thingy", P.THINGY_CONFIG_SERVICE_UUID)}
    for addr, (name, uuid) in want.items():
        d = objs.get(dev_path(addr), {}).get("org.bluez.Device1")
        check(d is not None, "no device %s" % addr)
        check(d["Address"] == addr and d["Name"] == name and d["Alias"] == name, "%s names" % addr)
        if uuid is None:   # a real micro:bit advertises its name only
            check(len(d["UUIDs"]) == 0, "%s advertises %r" % (addr, list(d["UUIDs"])))
        else:
            check(uuid in d["UUIDs"], "%s does not advertise %s" % (addr, uuid))
        check(d["Adapter"] == ADAPTER and not d["Connected"] and not d["ServicesResolved"],
              "%s state" % addr)
        check(isinstance(d["RSSI"], dbus.Int16), "%s RSSI is not an int16" % addr)
        check(not c.gatt_paths(addr), "%s has GATT objects before Connect" % addr)
    check(SIM_PATH not in objs, "the control object leaks into GetManagedObjects")
    devs = [p for p, i in objs.items() if "org.bluez.Device1" in i]
    check(len(devs) == 4, "default devices: %r" % devs)


@test
def properties_get_set(c):
    path = dev_path(MIC)
    check(c.prop(path, "org.bluez.Device1", "Name") == "Spine Mic", "Get Name")
    allp = c.call(path, PROPS, "GetAll", "s", "org.bluez.Device1")
    check(allp["Address"] == MIC and "Connected" in allp, "GetAll")
    mark = c.mark()
    c.call(path, PROPS, "Set", "ssv", "org.bluez.Device1", "Alias", "Back mic")
    check(c.prop(path, "org.bluez.Device1", "Alias") == "Back mic", "Set Alias")
    check(c.pump(2, lambda: any(s[5][1].get("Alias") == "Back mic"
                                for s in c.since(mark, "PropertiesChanged", path))),
          "no PropertiesChanged for Alias")
    c.call(path, PROPS, "Set", "ssv", "org.bluez.Device1", "Alias", "")
    check(c.prop(path, "org.bluez.Device1", "Alias") == "Spine Mic", "empty Alias resets to Name")
    c.expect_error("org.freedesktop.DBus.Error.PropertyReadOnly", path, PROPS, "Set", "ssv",
                   "org.bluez.Device1", "Address", "00:00:00:00:00:00")
    c.expect_error("org.bluez.Error.InvalidArguments", path, PROPS, "Set", "ssv",
                   "org.bluez.Device1", "Trusted", "yes")
    c.expect_error("org.freedesktop.DBus.Error.InvalidArgs", path, PROPS, "Get", "ss",
                   "org.bluez.Device1", "NoSuchThing")
    c.expect_error("org.freedesktop.DBus.Error.InvalidArgs", path, PROPS, "GetAll", "s",
                   "org.bluez.Nope1")


@test
def connect_exports_gatt_in_order(c):
    """Connected=true, then the GATT objects (InterfacesAdded), then ServicesResolved."""
    path = dev_path(CLIP)
    mark = c.mark()
    c.call(path, "org.bluez.Device1", "Connect")
    c.pump(0.2)
    events = []
    for s in c.since(mark):
        if s[4] == "PropertiesChanged" and s[2] == path:
            for k in ("Connected", "ServicesResolved"):
                if k in s[5][1]:
                    events.append((k, bool(s[5][1][k])))
        elif s[4] == "InterfacesAdded" and str(s[5][0]).startswith(path + "/"):
            events.append(("added", str(s[5][0])))
    kinds = [e[0] for e in events]
    check(kinds and kinds[0] == "Connected" and events[0][1], "first event %r" % events[:1])
    check(kinds[-1] == "ServicesResolved" and events[-1][1], "last event %r" % events[-1:])
    check(kinds.count("added") >= 3, "only %d GATT objects added" % kinds.count("added"))
    objs = c.gatt_paths(CLIP)
    chr_path = c.char_path(CLIP, P.POSTURE_UUID)
    check(chr_path is not None, "no Posture characteristic")
    ch = objs[chr_path]["org.bluez.GattCharacteristic1"]
    check(set(ch["Flags"]) == {"read", "notify"}, "Posture flags %r" % ch["Flags"])
    check(not ch["Notifying"], "Notifying before StartNotify")
    svc = objs[str(ch["Service"])]["org.bluez.GattService1"]
    check(svc["UUID"] == P.SPINE_SERVICE_UUID and svc["Device"] == path and svc["Primary"],
          "Posture's service %r" % svc)
    check(c.char_path(CLIP, P.CRACK_UUID) is None, "the clip must not have a Crack characteristic")
    descs = [i["org.bluez.GattDescriptor1"] for i in objs.values() if "org.bluez.GattDescriptor1" in i]
    check(any(d["UUID"] == P.CCCD_UUID and d["Characteristic"] == chr_path for d in descs),
          "no CCCD under Posture")
    check(re.fullmatch(re.escape(path) + r"/service[0-9a-f]{4}/char[0-9a-f]{4}", chr_path),
          "characteristic path %s does not look like BlueZ's" % chr_path)


@test
def posture_notifications(c):
    chr_path = c.connect(CLIP, P.POSTURE_UUID)
    mark = c.mark()
    c.call(chr_path, "org.bluez.GattCharacteristic1", "StartNotify")
    check(c.prop(chr_path, "org.bluez.GattCharacteristic1", "Notifying"), "Notifying not true")
    t0 = time.monotonic()
    c.pump(2.0)
    got = c.values(mark, chr_path)
    elapsed = time.monotonic() - t0
    rate = len(got) / elapsed
    check(12.0 <= rate <= 40.0, "%.1f posture notifications/s, expected about 20" % rate)
    owner = c.owner()
    check(all(sender == owner for sender, _ in got), "a notification not sent by the org.bluez owner")
    seqs = []
    for _, b in got:
        check(len(b) == 9, "posture payload of %d bytes" % len(b))
        seq, v = decode_posture(b)
        check(800 < magnitude(v) < 1200, "posture magnitude %.0f mg" % magnitude(v))
        seqs.append(seq)
    for a, b in zip(seqs, seqs[1:]):
        check(b == (a + 1) & 0xFFFF, "seq went %d -> %d" % (a, b))
    c.call(chr_path, "org.bluez.GattCharacteristic1", "StopNotify")


@test
def read_value(c):
    chr_path = c.connect(CLIP, P.POSTURE_UUID)
    b = bytes(c.call(chr_path, "org.bluez.GattCharacteristic1", "ReadValue", "a{sv}", {}))
    seq, v = decode_posture(b)
    check(len(b) == 9 and 800 < magnitude(v) < 1200, "read %s" % b.hex())
    tail = bytes(c.call(chr_path, "org.bluez.GattCharacteristic1", "ReadValue", "a{sv}",
                        {"offset": dbus.UInt16(3)}))
    check(len(tail) == 6, "read at offset 3 gave %d bytes" % len(tail))
    c.expect_error("org.bluez.Error.InvalidOffset", chr_path, "org.bluez.GattCharacteristic1",
                   "ReadValue", "a{sv}", {"offset": dbus.UInt16(40)})
    dis = c.char_path(CLIP, P.MANUFACTURER_NAME_UUID)
    check(dis and bytes(c.call(dis, "org.bluez.GattCharacteristic1", "ReadValue", "a{sv}", {}))
          == b"spinewatch", "Manufacturer Name String")


@test
def crack_notifications(c):
    chr_path = c.connect(MIC, P.CRACK_UUID)
    check(c.char_path(MIC, P.POSTURE_UUID) is None, "the mic must not have a Posture characteristic")
    mark = c.mark()
    check(not c.sim("InjectCrack", "ssyqy", MIC, "pop", 80, 120, 4),
          "InjectCrack reported a send with nobody subscribed")
    c.call(chr_path, "org.bluez.GattCharacteristic1", "StartNotify")
    check(c.sim("InjectCrack", "ssyqy", MIC, "pop", 80, 120, 4), "InjectCrack not sent")
    check(c.pump(2, lambda: c.values(mark, chr_path)), "injected crack not notified")
    first = decode_crack(c.values(mark, chr_path)[0][1])
    check((first["kind"], first["intensity"], first["duration_ms"], first["count"], first["age_ms"])
          == ("pop", 80, 120, 4, 0), "injected crack decoded as %r" % first)
    c.sim("InjectCrackAged", "ssyqyq", MIC, "grind", 30, 900, 1, 1200)
    check(c.pump(2, lambda: len(c.values(mark, chr_path)) >= 2), "aged crack not notified")
    aged = decode_crack(c.values(mark, chr_path)[1][1])
    check(aged["kind"] == "grind" and aged["age_ms"] == 1200 and aged["seq"] == (first["seq"] + 1) & 0xFFFF,
          "aged crack decoded as %r" % aged)
    # the quick scenario sends a crack every 3 s of scenario time
    check(c.pump(8, lambda: len(c.values(mark, chr_path)) >= 4), "no scripted cracks in 8 s")
    got = [decode_crack(b) for _, b in c.values(mark, chr_path)]
    for a, b in zip(got, got[1:]):
        check(b["seq"] == (a["seq"] + 1) & 0xFFFF, "crack seq went %d -> %d" % (a["seq"], b["seq"]))
    check(all(len(b) == 10 for _, b in c.values(mark, chr_path)), "crack payload length")
    check(any(g["age_ms"] >= g["duration_ms"] for g in got[2:]),
          "scripted cracks should be reported after they end (age_ms >= duration_ms)")
    c.expect_error("org.bluez.Error.NotPermitted", chr_path, "org.bluez.GattCharacteristic1",
                   "ReadValue", "a{sv}", {})


@test
def microbit_notifications(c):
    chr_path = c.connect(MICROBIT, P.MICROBIT_ACCEL_DATA_UUID)
    uuids = c.prop(dev_path(MICROBIT), "org.bluez.Device1", "UUIDs")
    check(P.MICROBIT_ACCEL_SERVICE_UUID in uuids, "resolved services not added to UUIDs: %r" % uuids)
    # the micro:bit's standard profile needs pairing (tested in pairing_*); not here
    c.expect_error("org.bluez.Error.NotAuthorized", chr_path, "org.bluez.GattCharacteristic1",
                   "StartNotify")
    c.sim("SetPairingRequired", "sb", MICROBIT, False)
    mark = c.mark()
    c.call(chr_path, "org.bluez.GattCharacteristic1", "StartNotify")
    check(c.pump(3, lambda: len(c.values(mark, chr_path)) >= 10), "fewer than 10 micro:bit samples")
    for _, b in c.values(mark, chr_path):
        x, y, z = decode_microbit(b)
        check(850 < magnitude((x, y, z)) < 1150, "micro:bit magnitude %.0f" % magnitude((x, y, z)))
        check(y < -700 and abs(y) > abs(x) and abs(y) > abs(z), "micro:bit not along -Y: %r" % ((x, y, z),))
    c.call(chr_path, "org.bluez.GattCharacteristic1", "StopNotify")


@test
def set_angle_and_resume(c):
    chr_path = c.connect(CLIP, P.POSTURE_UUID)
    c.call(chr_path, "org.bluez.GattCharacteristic1", "StartNotify")

    def mean_vector(seconds):
        c.pump(0.25)                      # samples already in flight
        mark = c.mark()
        c.pump(seconds)
        vs = [decode_posture(b)[1] for _, b in c.values(mark, chr_path)]
        check(len(vs) >= 5, "only %d samples" % len(vs))
        return [sum(v[i] for v in vs) / len(vs) for i in range(3)]

    c.sim("SetAngle", "sd", CLIP, 0.0)
    upright = mean_vector(0.6)
    c.sim("SetAngle", "sd", CLIP, 30.0)
    bent = mean_vector(0.6)
    angle = S.angle_between(upright, bent)
    check(abs(angle - 30.0) < 2.0, "SetAngle 30 measured as %.1f deg" % angle)
    c.sim("Pause")
    st = c.sim("GetStatus")
    check(st["Paused"] and st["Started"] and st["Scenario"] == "quick", "GetStatus %r" % dict(st))
    t_paused = float(st["Time"])
    c.pump(0.3)
    check(float(c.sim("GetStatus")["Time"]) == t_paused, "scenario time moved while paused")
    c.sim("Resume")
    c.pump(0.3)
    check(float(c.sim("GetStatus")["Time"]) > t_paused, "scenario time frozen after Resume")
    c.expect_error("io.spinewatch.Sim1.Error.NotSupported", SIM_PATH, SIM_IFACE, "SetAngle", "sd",
                   MIC, 10.0)
    c.call(chr_path, "org.bluez.GattCharacteristic1", "StopNotify")


@test
def notify_is_counted_per_sender(c):
    chr_path = c.connect(CLIP, P.POSTURE_UUID)
    chrc = "org.bluez.GattCharacteristic1"
    other = Client(c.bus_address)
    try:
        c.call(chr_path, chrc, "StartNotify")
        c.call(chr_path, chrc, "StartNotify")                 # again: a no-op, like BlueZ 5.66
        other.call(chr_path, chrc, "StartNotify")
    finally:
        other.close()                                          # leaves without StopNotify
    c.pump(0.5)
    check(c.prop(chr_path, chrc, "Notifying"), "Notifying dropped while we are still subscribed")
    mark = c.mark()
    check(c.pump(1, lambda: c.values(mark, chr_path)), "notifications stopped when the other left")
    c.call(chr_path, chrc, "StopNotify")
    check(not c.prop(chr_path, chrc, "Notifying"), "Notifying still true after the last StopNotify")
    c.expect_error("org.bluez.Error.Failed", chr_path, chrc, "StopNotify")
    c.pump(0.2)
    mark = c.mark()
    c.pump(0.5)
    check(not c.values(mark, chr_path), "notifications after StopNotify")
    # a client that subscribes alone and then vanishes: BlueZ stops notifying
    third = Client(c.bus_address)
    third.call(chr_path, chrc, "StartNotify")
    check(c.prop(chr_path, chrc, "Notifying"), "Notifying false after the third client subscribed")
    third.close()
    check(c.pump(3, lambda: not c.prop(chr_path, chrc, "Notifying")),
          "Notifying stayed true after its only subscriber left the bus")


@test
def bluez_errors(c):
    dev, adapter = "org.bluez.Device1", "org.bluez.Adapter1"
    mic = c.connect(MIC, P.CRACK_UUID)
    c.expect_error("org.bluez.Error.NotSupported", c.char_path(MIC, P.MANUFACTURER_NAME_UUID),
                   "org.bluez.GattCharacteristic1", "StartNotify")
    c.call(dev_path(MIC), dev, "Disconnect")
    check(c.char_path(MIC, P.CRACK_UUID) is None and mic not in c.objects(), "GATT left after Disconnect")
    c.expect_error("org.bluez.Error.NotConnected", dev_path(MIC), dev, "Disconnect")
    box = c.call_async(dev_path(MIC), dev, "Connect")
    c.expect_error("org.bluez.Error.InProgress", dev_path(MIC), dev, "Connect")
    check(c.pump(5, lambda: box), "Connect never answered")
    check("reply" in box, "Connect failed: %r" % box.get("error"))
    c.expect_error("org.bluez.Error.DoesNotExist", ADAPTER, adapter, "RemoveDevice", "o",
                   dev_path("C0:FF:EE:00:00:99"))
    c.expect_error("org.bluez.Error.Failed", ADAPTER, adapter, "StopDiscovery")
    c.expect_error("org.bluez.Error.InvalidArguments", ADAPTER, adapter, "SetDiscoveryFilter",
                   "a{sv}", {"Bogus": dbus.Boolean(True)})
    c.expect_error("org.bluez.Error.InvalidArguments", ADAPTER, adapter, "SetDiscoveryFilter",
                   "a{sv}", {"Transport": "carrier-pigeon"})
    c.call(ADAPTER, adapter, "SetDiscoveryFilter", "a{sv}",
           {"Transport": "le", "UUIDs": dbus.Array([P.SPINE_SERVICE_UUID], signature="s")})
    c.call(ADAPTER, adapter, "StartDiscovery")
    c.expect_error("org.bluez.Error.InProgress", ADAPTER, adapter, "StartDiscovery")
    check(c.prop(ADAPTER, adapter, "Discovering"), "Discovering false after StartDiscovery")
    c.call(ADAPTER, adapter, "StopDiscovery")
    check(not c.prop(ADAPTER, adapter, "Discovering"), "Discovering true after StopDiscovery")
    c.expect_error("io.spinewatch.Sim1.Error.InvalidArguments", SIM_PATH, SIM_IFACE, "InjectCrack",
                   "ssyqy", MIC, "snap", 50, 10, 1)
    c.expect_error("io.spinewatch.Sim1.Error.UnknownDevice", SIM_PATH, SIM_IFACE, "InjectCrack",
                   "ssyqy", "C0:FF:EE:00:00:99", "pop", 50, 10, 1)
    # powering the adapter off drops every link; Connect then says NotReady
    c.call(ADAPTER, PROPS, "Set", "ssv", adapter, "Powered", dbus.Boolean(False))
    check(not c.prop(dev_path(MIC), dev, "Connected"), "still connected with the adapter off")
    c.expect_error("org.bluez.Error.NotReady", dev_path(MIC), dev, "Connect")
    c.call(ADAPTER, PROPS, "Set", "ssv", adapter, "Powered", dbus.Boolean(True))
    c.call(dev_path(MIC), dev, "Connect")
    check(c.char_path(MIC, P.CRACK_UUID), "no Crack characteristic after power cycle + Connect")


@test
def drop_link_removes_gatt(c):
    chr_path = c.connect(CLIP, P.POSTURE_UUID)
    c.call(chr_path, "org.bluez.GattCharacteristic1", "StartNotify")
    before = set(c.gatt_paths(CLIP))
    check(len(before) >= 3, "GATT objects before DropLink: %r" % before)
    c.pump(0.3)
    mark = c.mark()
    c.sim("DropLink", "s", CLIP)
    removed = lambda: {str(s[5][0]) for s in c.since(mark, "InterfacesRemoved")}  # noqa: E731
    check(c.pump(2, lambda: before <= removed()), "InterfacesRemoved missing for %r" % (before - removed()))
    check(not c.gatt_paths(CLIP), "GATT objects still in GetManagedObjects")
    d = c.call(dev_path(CLIP), PROPS, "GetAll", "s", "org.bluez.Device1")
    check(not d["Connected"] and not d["ServicesResolved"], "device still connected after DropLink")
    check(any(s[5][1].get("Connected") is not None and not s[5][1]["Connected"]
              for s in c.since(mark, "PropertiesChanged", dev_path(CLIP))), "no Connected=false signal")
    check(c.since(mark, "Disconnected", dev_path(CLIP)), "no Device1.Disconnected signal")
    mark2 = c.mark()
    c.pump(0.5)
    check(not c.values(mark2, chr_path), "notifications after the link dropped")
    c.expect_error("io.spinewatch.Sim1.Error.NotConnected", SIM_PATH, SIM_IFACE, "DropLink", "s", CLIP)
    # reconnect: new objects, notifications again
    chr_path = c.connect(CLIP, P.POSTURE_UUID)
    mark = c.mark()
    c.call(chr_path, "org.bluez.GattCharacteristic1", "StartNotify")
    check(c.pump(2, lambda: len(c.values(mark, chr_path)) >= 5), "no notifications after reconnect")
    # out of range: the link drops and Connect fails after a timeout
    c.sim("SetReachable", "sb", CLIP, False)
    check(not c.prop(dev_path(CLIP), "org.bluez.Device1", "Connected"), "connected while unreachable")
    c.expect_error("org.bluez.Error.Failed", dev_path(CLIP), "org.bluez.Device1", "Connect")
    c.sim("SetReachable", "sb", CLIP, True)
    check(c.connect(CLIP, P.POSTURE_UUID), "Connect failed once reachable again")


@test
def loss_is_counted_in_seq(c):
    chr_path = c.connect(CLIP, P.POSTURE_UUID)
    c.sim("SetLoss", "sd", CLIP, 0.5)
    mark = c.mark()
    c.call(chr_path, "org.bluez.GattCharacteristic1", "StartNotify")
    c.pump(2.0)
    seqs = [decode_posture(b)[0] for _, b in c.values(mark, chr_path)]
    c.sim("SetLoss", "sd", CLIP, 0.0)
    gaps = sum(((b - a) & 0xFFFF) - 1 for a, b in zip(seqs, seqs[1:]))
    check(len(seqs) >= 5 and gaps >= 5, "%d samples, %d lost: loss not visible in seq" % (len(seqs), gaps))
    c.call(chr_path, "org.bluez.GattCharacteristic1", "StopNotify")


@test
def remove_device_and_rediscover(c):
    adapter = "org.bluez.Adapter1"
    mark = c.mark()
    c.call(ADAPTER, adapter, "RemoveDevice", "o", dev_path(MICROBIT))
    check(dev_path(MICROBIT) not in c.objects(), "device still exported after RemoveDevice")
    check(c.pump(2, lambda: any(str(s[5][0]) == dev_path(MICROBIT)
                                for s in c.since(mark, "InterfacesRemoved"))),
          "no InterfacesRemoved for the device")
    c.call(ADAPTER, adapter, "StartDiscovery")
    try:
        check(c.pump(4, lambda: any(str(s[5][0]) == dev_path(MICROBIT)
                                    for s in c.since(mark, "InterfacesAdded"))),
              "removed device not found again while discovering")
    finally:
        c.call(ADAPTER, adapter, "StopDiscovery")
    check(dev_path(MICROBIT) in c.objects(), "rediscovered device not in GetManagedObjects")


@test
def survives_clients_vanishing(c):
    """A client that subscribes and dies mid-call leaves the simulator healthy."""
    chr_path = c.connect(MICROBIT, P.MICROBIT_ACCEL_DATA_UUID)
    code = ("import dbus,dbus.bus,os;b=dbus.bus.BusConnection(%r);"
            "b.call_async('org.bluez',%r,'org.bluez.GattCharacteristic1','StartNotify','',(),"
            "None,None);b.flush();os._exit(0)") % (c.bus_address, chr_path)
    for _ in range(5):
        subprocess.run([simbus.PYTHON, "-c", code], timeout=10, check=True)
    check(c.pump(3, lambda: not c.prop(chr_path, "org.bluez.GattCharacteristic1", "Notifying")),
          "Notifying stuck true after vanished clients")
    check(c.prop(dev_path(MICROBIT), "org.bluez.Device1", "Connected"), "simulator state broken")


@test
def cli_refuses_second_owner_and_honours_duration(c):
    r = subprocess.run([simbus.PYTHON, simbus.FAKE_BLUEZ, "--bus", c.bus_address],
                       capture_output=True, text=True, timeout=15)
    check(r.returncode != 0 and "already owned" in r.stderr,
          "second simulator: rc=%d stderr=%r" % (r.returncode, r.stderr[-300:]))
    t0 = time.monotonic()
    with simbus.SimBus(["--duration", "1", "--scenario", "idle"], stderr=subprocess.DEVNULL) as sb:
        try:
            rc = sb.sim.wait(8)
        except subprocess.TimeoutExpired:
            rc = None
    check(rc == 0 and time.monotonic() - t0 < 8, "--duration 1: rc=%r" % rc)


@test
def restart_gives_new_owner_and_fresh_state(c):
    """Stopping and starting the simulator looks like a bluetoothd restart."""
    c.connect(CLIP, P.POSTURE_UUID)
    old = c.owner()
    mark = c.mark()
    c.simbus.stop_sim()
    c.simbus.start_sim()
    new = c.owner()
    check(new != old, "same unique name after a restart")
    check(c.pump(2, lambda: any(s[5][0] == "org.bluez" and s[5][2] == new
                                for s in c.since(mark, "NameOwnerChanged"))),
          "no NameOwnerChanged for the new org.bluez owner")
    check(not c.prop(dev_path(CLIP), "org.bluez.Device1", "Connected"), "connected after restart")
    check(not c.gatt_paths(CLIP), "GATT objects survived the restart")


# ------------------------------------------------------------ issue 3 behaviour: helpers

import socket  # noqa: E402
import dbus.service  # noqa: E402


def call_wait(c, path, iface, method, signature=None, *args, timeout=10.0):
    """Call asynchronously and pump our main loop meanwhile (so that objects we export,
    such as an agent, can answer the simulator). Returns the reply tuple or raises the
    DBusException."""
    box = c.call_async(path, iface, method, signature, *args)
    check(c.pump(timeout, lambda: box), "%s.%s: no answer in %g s" % (iface, method, timeout))
    if "error" in box:
        raise box["error"]
    return box["reply"]


def expect_error_wait(c, name, path, iface, method, signature=None, *args, timeout=10.0):
    try:
        call_wait(c, path, iface, method, signature, *args, timeout=timeout)
    except dbus.DBusException as e:
        check(e.get_dbus_name() == name, "%s.%s raised %s (%s), expected %s" % (
            iface, method, e.get_dbus_name(), e.get_dbus_message(), name))
        return
    raise Failure("%s.%s succeeded, expected %s" % (iface, method, name))


def acquire(c, chr_path):
    """AcquireNotify: (socket, mtu)."""
    fd, mtu = c.call(chr_path, CHRC, "AcquireNotify", "a{sv}", {})
    sock = socket.socket(fileno=fd.take())
    sock.settimeout(0)
    return sock, int(mtu)


def read_packets(sock, seconds, want=None):
    """Packets from an AcquireNotify socket within `seconds` (or until `want` of them);
    b'' marks end of file."""
    out = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and (want is None or len(out) < want):
        try:
            pkt = sock.recv(1024)
        except BlockingIOError:
            time.sleep(0.002)
            continue
        out.append(pkt)
        if pkt == b"":
            break
    return out


def calls(c, member=None, since=0.0):
    return [(t, s, p, m, a) for t, s, p, m, a in c.sim("GetCalls")
            if (member is None or m == member) and t >= since]


class Agent(dbus.service.Object):
    """An org.bluez.Agent1 on the client's connection. `answer`: None (accept) or the
    D-Bus error name to answer with; `delay`: seconds before answering."""

    def __init__(self, bus, path="/test/agent", answer=None, delay=0.0):
        super().__init__(bus, path)
        self.path, self.answer, self.delay = path, answer, delay
        self.requests = []

    def _answer(self, reply, error, value=None):
        def go():
            if self.answer:
                error(dbus.DBusException("no", name=self.answer))
            elif value is None:
                reply()
            else:
                reply(value)
            return False
        GLib.timeout_add(int(self.delay * 1000), go)

    @dbus.service.method("org.bluez.Agent1", in_signature="o", out_signature="",
                         async_callbacks=("reply", "error"))
    def RequestAuthorization(self, device, reply, error):
        self.requests.append(("RequestAuthorization", str(device)))
        self._answer(reply, error)

    @dbus.service.method("org.bluez.Agent1", in_signature="ou", out_signature="",
                         async_callbacks=("reply", "error"))
    def RequestConfirmation(self, device, passkey, reply, error):
        self.requests.append(("RequestConfirmation", str(device), int(passkey)))
        self._answer(reply, error)

    @dbus.service.method("org.bluez.Agent1", in_signature="o", out_signature="u",
                         async_callbacks=("reply", "error"))
    def RequestPasskey(self, device, reply, error):
        self.requests.append(("RequestPasskey", str(device)))
        self._answer(reply, error, dbus.UInt32(123456))

    @dbus.service.method("org.bluez.Agent1", in_signature="", out_signature="")
    def Cancel(self):
        self.requests.append(("Cancel",))

    @dbus.service.method("org.bluez.Agent1", in_signature="", out_signature="")
    def Release(self):
        self.requests.append(("Release",))


class OwnSim:
    """A private bus + simulator with other options, and a client on it."""

    def __init__(self, args, verbose=False):
        self.sb = simbus.SimBus(args, stderr=None if verbose else subprocess.DEVNULL)

    def __enter__(self):
        self.sb.start()
        self.c = Client(self.sb.address)
        self.c.bus_address = self.sb.address
        self.c.simbus = self.sb
        return self.c

    def __exit__(self, *exc):
        try:
            self.c.close()
        finally:
            self.sb.stop()
        return False


def devices_exported(c):
    return sorted(str(i["org.bluez.Device1"]["Address"]) for i in c.objects().values()
                  if "org.bluez.Device1" in i)


# ------------------------------------------------------------- issue 3 behaviour: tests

@test
def discovery_gating(c):
    """--require-discovery: no devices until StartDiscovery, then after ~300 ms with RSSI
    (updated every ~2 s); RSSI invalidated at StopDiscovery; calls are recorded."""
    with OwnSim(["--require-discovery", "--scenario", "idle"], VERBOSE) as c2:
        check(devices_exported(c2) == [], "devices before discovery: %r" % devices_exported(c2))
        check(c2.sim("GetStatus")["RequireDiscovery"], "GetStatus RequireDiscovery false")
        # a UUID filter hides the micro:bit, which advertises its name only
        c2.call(ADAPTER, "org.bluez.Adapter1", "SetDiscoveryFilter", "a{sv}",
                {"Transport": "le", "UUIDs": dbus.Array([P.SPINE_SERVICE_UUID], signature="s")})
        t0 = time.monotonic()
        c2.call(ADAPTER, "org.bluez.Adapter1", "StartDiscovery")
        check(c2.pump(3, lambda: CLIP in devices_exported(c2) and MIC in devices_exported(c2)),
              "spine devices not found: %r" % devices_exported(c2))
        check(time.monotonic() - t0 >= 0.25, "found after only %.2f s" % (time.monotonic() - t0))
        c2.pump(0.8)
        found = devices_exported(c2)
        check(MICROBIT not in found and THINGY not in found,
              "UUID filter did not hide the others: %r" % found)
        c2.call(ADAPTER, "org.bluez.Adapter1", "StopDiscovery")
        # the filter of the last session went with it: a plain LE scan finds everything
        c2.call(ADAPTER, "org.bluez.Adapter1", "SetDiscoveryFilter", "a{sv}", {"Transport": "le"})
        mark = c2.mark()
        c2.call(ADAPTER, "org.bluez.Adapter1", "StartDiscovery")
        check(c2.pump(3, lambda: len(devices_exported(c2)) == 4), "not all 4 found: %r"
              % devices_exported(c2))
        rssi = c2.prop(dev_path(MICROBIT), DEV, "RSSI")
        check(isinstance(rssi, dbus.Int16) and -100 < rssi < 0, "RSSI %r" % rssi)
        check(c2.pump(3.5, lambda: any("RSSI" in s[5][1] for s in
                                       c2.since(mark, "PropertiesChanged", dev_path(CLIP)))),
              "no RSSI update within 3.5 s of discovering")
        mark = c2.mark()
        c2.call(ADAPTER, "org.bluez.Adapter1", "StopDiscovery")
        check(c2.pump(2, lambda: any("RSSI" in s[5][2] for s in
                                     c2.since(mark, "PropertiesChanged", dev_path(CLIP)))),
              "RSSI not invalidated at StopDiscovery")
        check("RSSI" not in c2.call(dev_path(CLIP), PROPS, "GetAll", "s", DEV),
              "RSSI still there after StopDiscovery")
        log = calls(c2)
        names = [m for _, _, _, m, _ in log]
        check(names.count("Adapter1.StartDiscovery") == 2 and names.count("Adapter1.StopDiscovery") == 2,
              "call log %r" % names)
        filters = [a[0] for _, _, _, m, a in log if m == "Adapter1.SetDiscoveryFilter"]
        check(filters[0]["Transport"] == "le" and list(filters[0]["UUIDs"]) == [P.SPINE_SERVICE_UUID]
              and "UUIDs" not in filters[1], "recorded filters %r" % filters)
        check(all(s == c2.bus.get_unique_name() for _, s, _, _, _ in log), "senders not recorded")
        c2.sim("ClearCalls")
        check(len(c2.sim("GetCalls")) == 0, "ClearCalls")


@test
def pairing_flow(c):
    """The micro:bit needs pairing: NotAuthorized until Pair, which asks our agent."""
    c.sim("SetPairingRequired", "sb", MICROBIT, True)
    c.sim("ForgetBond", "s", MICROBIT)
    path = dev_path(MICROBIT)
    chr_path = c.connect(MICROBIT, P.MICROBIT_ACCEL_DATA_UUID)
    for method, sig, args in (("StartNotify", None, ()), ("ReadValue", "a{sv}", ({},)),
                              ("AcquireNotify", "a{sv}", ({},))):
        c.expect_error("org.bluez.Error.NotAuthorized", chr_path, CHRC, method, sig, *args)
    period = c.char_path(MICROBIT, P.MICROBIT_ACCEL_PERIOD_UUID)
    c.expect_error("org.bluez.Error.NotAuthorized", period, CHRC, "WriteValue", "aya{sv}",
                   dbus.ByteArray(b"\x50\x00"), {})
    # no agent at all: authentication fails
    expect_error_wait(c, "org.bluez.Error.AuthenticationFailed", path, DEV, "Pair")
    agent = Agent(c.bus, "/test/agent1", answer="org.bluez.Error.Rejected")
    try:
        c.call("/org/bluez", "org.bluez.AgentManager1", "RegisterAgent", "os", agent.path,
               "NoInputNoOutput")
        c.expect_error("org.bluez.Error.AlreadyExists", "/org/bluez", "org.bluez.AgentManager1",
                       "RegisterAgent", "os", agent.path, "NoInputNoOutput")
        expect_error_wait(c, "org.bluez.Error.AuthenticationFailed", path, DEV, "Pair")
        check(agent.requests == [("RequestAuthorization", path)], "agent saw %r" % agent.requests)
        check(not c.prop(path, DEV, "Paired"), "Paired after the agent refused")
        # cancelled while the agent thinks
        agent.answer, agent.delay = None, 1.0
        box = c.call_async(path, DEV, "Pair")
        c.pump(0.5)
        c.call(path, DEV, "CancelPairing")
        check(c.pump(3, lambda: box), "Pair not answered after CancelPairing")
        check("error" in box and box["error"].get_dbus_name() == "org.bluez.Error.AuthenticationCanceled",
              "cancelled Pair: %r" % box)
        check(c.pump(2, lambda: ("Cancel",) in agent.requests), "agent not told to Cancel")
        # accepted
        agent.delay, agent.requests = 0.0, []
        call_wait(c, path, DEV, "Pair")
        check(agent.requests == [("RequestAuthorization", path)], "agent saw %r" % agent.requests)
        check(c.prop(path, DEV, "Paired") and c.prop(path, DEV, "Bonded"), "not Paired/Bonded")
        c.expect_error("org.bluez.Error.AlreadyExists", path, DEV, "Pair")
        c.call(path, PROPS, "Set", "ssv", DEV, "Trusted", dbus.Boolean(True))
        check(c.prop(path, DEV, "Trusted"), "Trusted not set")
        mark = c.mark()
        c.call(chr_path, CHRC, "StartNotify")
        check(c.pump(2, lambda: len(c.values(mark, chr_path)) >= 5), "no data after pairing")
        c.call(chr_path, CHRC, "StopNotify")
        st = c.sim("GetDevice", "s", MICROBIT)
        check(st["Paired"] and st["Trusted"] and st["PairRequired"], "GetDevice %r" % dict(st))
        log = calls(c, "Agent1.RequestAuthorization")
        check(log and log[-1][1] == c.bus.get_unique_name() and log[-1][2] == agent.path,
              "agent request not logged: %r" % log)
        # the bond survives a reconnect; ForgetBond brings NotAuthorized back
        c.call(path, DEV, "Disconnect")
        chr_path = c.connect(MICROBIT, P.MICROBIT_ACCEL_DATA_UUID)
        check(c.prop(path, DEV, "Paired"), "bond lost on reconnect")
        c.call(chr_path, CHRC, "ReadValue", "a{sv}", {})
        c.sim("ForgetBond", "s", MICROBIT)
        c.expect_error("org.bluez.Error.NotAuthorized", chr_path, CHRC, "ReadValue", "a{sv}", {})
        # DisplayYesNo: numeric comparison
        c.call("/org/bluez", "org.bluez.AgentManager1", "UnregisterAgent", "o", agent.path)
        c.call("/org/bluez", "org.bluez.AgentManager1", "RegisterAgent", "os", agent.path,
               "DisplayYesNo")
        agent.requests = []
        call_wait(c, path, DEV, "Pair")
        check(len(agent.requests) == 1 and agent.requests[0][0] == "RequestConfirmation"
              and 0 <= agent.requests[0][2] <= 999999, "agent saw %r" % agent.requests)
    finally:
        try:
            c.call("/org/bluez", "org.bluez.AgentManager1", "UnregisterAgent", "o", agent.path)
        except dbus.DBusException:
            pass
        agent.remove_from_connection()
        c.sim("SetPairingRequired", "sb", MICROBIT, False)
    # the default agent of another client answers for everyone
    other = Client(c.bus_address)
    try:
        a2 = Agent(other.bus, "/other/agent")
        other.call("/org/bluez", "org.bluez.AgentManager1", "RegisterAgent", "os", a2.path, "")
        other.call("/org/bluez", "org.bluez.AgentManager1", "RequestDefaultAgent", "o", a2.path)
        c.sim("ForgetBond", "s", CLIP)
        box = c.call_async(dev_path(CLIP), DEV, "Pair")
        check(c.pump(5, lambda: (other.pump(0.01) and False) or box), "Pair via default agent hung")
        check("reply" in box, "Pair via the default agent: %r" % box)
        check(a2.requests and a2.requests[0][0] == "RequestConfirmation",
              "default agent (KeyboardDisplay) saw %r" % a2.requests)
    finally:
        other.close()
    c.sim("ForgetBond", "s", CLIP)


@test
def acquire_notify(c):
    """AcquireNotify: one notification per SOCK_SEQPACKET packet, no PropertiesChanged,
    BlueZ's error rules, closing ends the session, link loss closes the socket."""
    chr_path = c.connect(CLIP, P.POSTURE_UUID)
    mark = c.mark()
    sock, mtu = acquire(c, chr_path)
    check(mtu >= 23, "mtu %d" % mtu)
    check(sock.getsockopt(socket.SOL_SOCKET, socket.SO_TYPE) == socket.SOCK_SEQPACKET,
          "not a SOCK_SEQPACKET socket")
    check(c.prop(chr_path, CHRC, "NotifyAcquired") and c.prop(chr_path, CHRC, "Notifying"),
          "NotifyAcquired/Notifying not true")
    pkts = read_packets(sock, 1.0)
    check(len(pkts) >= 10 and all(len(p) == 9 for p in pkts), "packets %r" % pkts[:5])
    seqs = [decode_posture(p)[0] for p in pkts]
    check(all(b == (a + 1) & 0xFFFF for a, b in zip(seqs, seqs[1:])), "seqs %r" % seqs)
    check(not c.values(mark, chr_path), "PropertiesChanged(Value) sent while acquired")
    st = c.sim("GetDevice", "s", CLIP)
    check(st["NotifyPath"] == "acquire", "GetDevice NotifyPath %r" % st["NotifyPath"])
    c.expect_error("org.bluez.Error.NotPermitted", chr_path, CHRC, "StartNotify")
    c.expect_error("org.bluez.Error.NotPermitted", chr_path, CHRC, "AcquireNotify", "a{sv}", {})
    sock.close()
    check(c.pump(2, lambda: not c.prop(chr_path, CHRC, "NotifyAcquired")),
          "NotifyAcquired still true after close")
    check(not c.prop(chr_path, CHRC, "Notifying"), "Notifying still true after close")
    # with a StartNotify session, AcquireNotify is InProgress
    c.call(chr_path, CHRC, "StartNotify")
    c.expect_error("org.bluez.Error.InProgress", chr_path, CHRC, "AcquireNotify", "a{sv}", {})
    c.call(chr_path, CHRC, "StopNotify")
    # SendRaw goes through the socket too
    sock, _ = acquire(c, chr_path)
    check(c.sim("SendRaw", "ssay", CLIP, "posture", dbus.ByteArray(b"\x07\x07")), "SendRaw")
    check(b"\x07\x07" in read_packets(sock, 1.0), "SendRaw packet not on the socket")
    # link loss: the simulator closes its end
    c.sim("DropLink", "s", CLIP)
    pkts = read_packets(sock, 2.0)
    check(pkts and pkts[-1] == b"", "no end of file after DropLink")
    sock.close()
    # refusals for the fallback: per characteristic, UnknownMethod, indicate-only
    chr_path = c.connect(CLIP, P.POSTURE_UUID)
    for err in ("NotSupported", "NotPermitted", "InProgress"):
        c.sim("SetAcquireNotify", "sss", CLIP, "posture", err)
        c.expect_error("org.bluez.Error." + err, chr_path, CHRC, "AcquireNotify", "a{sv}", {})
    c.sim("SetAcquireNotify", "sss", CLIP, "", "UnknownMethod")
    c.sim("SetAcquireNotify", "sss", CLIP, "posture", "")
    c.expect_error("org.freedesktop.DBus.Error.UnknownMethod", chr_path, CHRC, "AcquireNotify",
                   "a{sv}", {})
    c.sim("SetAcquireNotify", "sss", CLIP, "", "")
    c.call(chr_path, CHRC, "StartNotify")          # the fallback works
    c.call(chr_path, CHRC, "StopNotify")
    c.sim("SetIndicateOnly", "sb", CLIP, True)
    c.call(dev_path(CLIP), DEV, "Disconnect")
    try:
        chr_path = c.connect(CLIP, P.POSTURE_UUID)
        flags = list(c.prop(chr_path, CHRC, "Flags"))
        check("indicate" in flags and "notify" not in flags, "flags %r" % flags)
        c.expect_error("org.bluez.Error.NotSupported", chr_path, CHRC, "AcquireNotify", "a{sv}", {})
        mark = c.mark()
        c.call(chr_path, CHRC, "StartNotify")
        check(c.pump(2, lambda: len(c.values(mark, chr_path)) >= 5), "no indications")
        c.call(chr_path, CHRC, "StopNotify")
    finally:
        c.sim("SetIndicateOnly", "sb", CLIP, False)
        c.call(dev_path(CLIP), DEV, "Disconnect")
    # a client that acquires and leaves the bus: the session ends
    chr_path = c.connect(CLIP, P.POSTURE_UUID)
    other = Client(c.bus_address)
    fd, _ = other.call(chr_path, CHRC, "AcquireNotify", "a{sv}", {})
    keep = socket.socket(fileno=fd.take())        # the fd outlives its D-Bus connection
    other.close()
    check(c.pump(3, lambda: not c.prop(chr_path, CHRC, "NotifyAcquired")),
          "still acquired after the client left the bus")
    keep.close()


@test
def adapter_remove_add_and_power(c):
    c.connect(MIC, P.CRACK_UUID)
    gatt = set(c.gatt_paths(MIC))
    mark = c.mark()
    c.sim("RemoveAdapter")
    removed = [str(s[5][0]) for s in c.since(mark, "InterfacesRemoved")]
    c.pump(0.3)
    removed = [str(s[5][0]) for s in c.since(mark, "InterfacesRemoved")]
    check(gatt <= set(removed), "GATT objects not removed: %r" % (gatt - set(removed)))
    for addr in (CLIP, MIC, MICROBIT, THINGY):
        check(dev_path(addr) in removed, "device %s not removed" % addr)
    check(removed[-1] == ADAPTER, "adapter not removed last: %r" % removed[-3:])
    check(max(removed.index(p) for p in gatt) < removed.index(dev_path(MIC)),
          "device removed before its GATT objects")
    objs = c.objects()
    check(list(objs) == ["/org/bluez"], "objects left: %r" % list(objs))
    check(not c.sim("GetStatus")["AdapterPresent"], "GetStatus AdapterPresent")
    c.expect_error("io.spinewatch.Sim1.Error.NotSupported", SIM_PATH, SIM_IFACE, "RemoveAdapter")
    mark = c.mark()
    c.sim("AddAdapter")
    c.pump(0.3)
    added = [str(s[5][0]) for s in c.since(mark, "InterfacesAdded")]
    check(added and added[0] == ADAPTER, "adapter not added first: %r" % added)
    check(len(devices_exported(c)) == 4, "devices after AddAdapter: %r" % devices_exported(c))
    check(not c.prop(dev_path(MIC), DEV, "Connected"), "connected after re-plug")
    check(c.prop(ADAPTER, "org.bluez.Adapter1", "Powered"), "not powered after re-plug")
    # power off / on: links drop, stay down after power on until Connect
    chr_path = c.connect(CLIP, P.POSTURE_UUID)
    sock, _ = acquire(c, chr_path)
    c.call(ADAPTER, PROPS, "Set", "ssv", "org.bluez.Adapter1", "Powered", dbus.Boolean(False))
    check(not c.prop(dev_path(CLIP), DEV, "Connected"), "connected with the adapter off")
    pkts = read_packets(sock, 2.0)
    check(pkts and pkts[-1] == b"", "notify socket not closed at power off")
    sock.close()
    c.call(ADAPTER, PROPS, "Set", "ssv", "org.bluez.Adapter1", "Powered", dbus.Boolean(True))
    c.pump(0.6)
    check(not c.prop(dev_path(CLIP), DEV, "Connected"), "reconnected by itself after power on")
    check(c.connect(CLIP, P.POSTURE_UUID), "no Connect after power on")


@test
def battery(c):
    path = dev_path(MIC)
    if c.prop(path, DEV, "Connected"):
        c.call(path, DEV, "Disconnect")
    check("org.bluez.Battery1" not in c.objects()[path], "Battery1 while disconnected")
    mark = c.mark()
    c.connect(MIC, P.CRACK_UUID)
    check(c.pump(2, lambda: any(str(s[5][0]) == path and "org.bluez.Battery1" in s[5][1]
                                for s in c.since(mark, "InterfacesAdded"))),
          "no InterfacesAdded for Battery1")
    pct = c.prop(path, "org.bluez.Battery1", "Percentage")
    check(isinstance(pct, dbus.Byte) and 0 < pct <= 100, "Percentage %r" % pct)
    mark = c.mark()
    c.sim("SetBattery", "sy", MIC, 12)
    check(c.pump(2, lambda: any(s[5][0] == "org.bluez.Battery1" and s[5][1].get("Percentage") == 12
                                for s in c.since(mark, "PropertiesChanged", path))),
          "no PropertiesChanged(Percentage)")
    check(c.sim("GetDevice", "s", MIC)["Battery"] == 12, "GetDevice Battery")
    c.expect_error("io.spinewatch.Sim1.Error.NotSupported", SIM_PATH, SIM_IFACE, "SetBattery",
                   "sy", MICROBIT, 50)
    c.connect(MICROBIT, P.MICROBIT_ACCEL_DATA_UUID)
    check("org.bluez.Battery1" not in c.objects()[dev_path(MICROBIT)], "micro:bit has Battery1")
    mark = c.mark()
    c.call(path, DEV, "Disconnect")
    check(c.pump(2, lambda: any(str(s[5][0]) == path and list(s[5][1]) == ["org.bluez.Battery1"]
                                for s in c.since(mark, "InterfacesRemoved"))),
          "Battery1 not removed at disconnect")
    c.sim("SetBattery", "sy", MIC, 64)


@test
def thingy52(c):
    chr_path = c.connect(THINGY, P.THINGY_GRAVITY_UUID)
    objs = c.gatt_paths(THINGY)
    svcs = {str(i["org.bluez.GattService1"]["UUID"]) for i in objs.values() if "org.bluez.GattService1" in i}
    check({P.THINGY_CONFIG_SERVICE_UUID, P.THINGY_MOTION_SERVICE_UUID} <= svcs, "services %r" % svcs)
    check(list(c.prop(chr_path, CHRC, "Flags")) == ["notify"], "gravity flags")
    cfg_path = c.char_path(THINGY, P.THINGY_MOTION_CONFIG_UUID)
    cfg = bytes(c.call(cfg_path, CHRC, "ReadValue", "a{sv}", {}))
    check(P.decode_thingy_config(cfg) == P.THINGY_DEFAULT_CONFIG == (1000, 500, 500, 10, 1),
          "default config %r" % cfg.hex())
    for bad in (P.encode_thingy_config(100, 10000, 1000, 201, 1),
                P.encode_thingy_config(100, 10000, 1000, 4, 1), cfg[:8]):
        c.expect_error("org.bluez.Error.NotPermitted", cfg_path, CHRC, "WriteValue", "aya{sv}",
                       dbus.ByteArray(bad), {})
    c.call(cfg_path, CHRC, "WriteValue", "aya{sv}",
           dbus.ByteArray(P.encode_thingy_config(100, 10000, 1000, 25, 1)), {})
    check(P.decode_thingy_config(bytes(c.call(cfg_path, CHRC, "ReadValue", "a{sv}", {})))[3] == 25,
          "frequency not written")
    sock, _ = acquire(c, chr_path)
    read_packets(sock, 0.3)
    t0 = time.monotonic()
    pkts = read_packets(sock, 2.0)
    rate = len(pkts) / (time.monotonic() - t0)
    check(18 <= rate <= 32, "%.1f gravity notifications/s at 25 Hz" % rate)
    for p in pkts:
        check(len(p) == 12, "gravity payload of %d bytes" % len(p))
        v = struct.unpack("<fff", p)
        check(9.0 < magnitude(v) < 10.6, "gravity magnitude %.2f m/s^2" % magnitude(v))
    c.call(cfg_path, CHRC, "WriteValue", "aya{sv}",
           dbus.ByteArray(P.encode_thingy_config(100, 10000, 1000, 100, 1)), {})
    read_packets(sock, 0.3)
    t0 = time.monotonic()
    pkts = read_packets(sock, 1.0)
    rate = len(pkts) / (time.monotonic() - t0)
    check(80 <= rate <= 120, "%.1f gravity notifications/s at 100 Hz" % rate)
    check(c.sim("SendRaw", "ssay", THINGY, "thingy-gravity", dbus.ByteArray(b"\x01\x02\x03")),
          "SendRaw thingy-gravity")
    check(b"\x01\x02\x03" in read_packets(sock, 0.5), "SendRaw not on the socket")
    check(list(c.sim("GetDevice", "s", THINGY)["MotionConfig"]) == [100, 10000, 1000, 100, 1],
          "GetDevice MotionConfig")
    # the same wearer story: SetAngle tilts the gravity vector
    c.sim("SetAngle", "sd", THINGY, 0.0)
    read_packets(sock, 0.2)
    up = [struct.unpack("<fff", p) for p in read_packets(sock, 0.4) if len(p) == 12]
    c.sim("SetAngle", "sd", THINGY, 30.0)
    read_packets(sock, 0.2)
    bent = [struct.unpack("<fff", p) for p in read_packets(sock, 0.4) if len(p) == 12]
    c.sim("Resume")
    mean = lambda vs: [sum(v[i] for v in vs) / len(vs) for i in range(3)]  # noqa: E731
    angle = S.angle_between(mean(up), mean(bent))
    check(abs(angle - 30.0) < 3.0, "Thingy SetAngle 30 measured as %.1f" % angle)
    sock.close()
    c.call(cfg_path, CHRC, "WriteValue", "aya{sv}", dbus.ByteArray(cfg), {})


@test
def microbit_period(c):
    c.sim("SetPairingRequired", "sb", MICROBIT, False)
    chr_path = c.connect(MICROBIT, P.MICROBIT_ACCEL_DATA_UUID)
    period = c.char_path(MICROBIT, P.MICROBIT_ACCEL_PERIOD_UUID)
    check(set(c.prop(period, CHRC, "Flags")) == {"read", "write"}, "period flags")
    check(bytes(c.call(period, CHRC, "ReadValue", "a{sv}", {})) == struct.pack("<H", 20),
          "default period is not 20 ms")
    for asked, chosen in ((50, 20), (100, 80), (80, 80), (0, 1), (3, 2), (1000, 640), (60000, 640)):
        c.call(period, CHRC, "WriteValue", "aya{sv}", dbus.ByteArray(struct.pack("<H", asked)),
               {"type": "request"})
        got = struct.unpack("<H", bytes(c.call(period, CHRC, "ReadValue", "a{sv}", {})))[0]
        check(got == chosen, "asked %d ms, read back %d, expected %d" % (asked, got, chosen))
    c.expect_error("org.bluez.Error.InvalidValueLength", period, CHRC, "WriteValue", "aya{sv}",
                   dbus.ByteArray(b"\x50"), {})
    sock, _ = acquire(c, chr_path)
    for ms, lo, hi in ((80, 9.0, 16.0), (20, 40.0, 60.0)):
        c.call(period, CHRC, "WriteValue", "aya{sv}", dbus.ByteArray(struct.pack("<H", ms)), {})
        read_packets(sock, 0.3)
        t0 = time.monotonic()
        n = len(read_packets(sock, 1.5))
        rate = n / (time.monotonic() - t0)
        check(lo <= rate <= hi, "period %d ms: %.1f notifications/s" % (ms, rate))
    sock.close()
    check(c.sim("GetDevice", "s", MICROBIT)["PeriodMs"] == 20, "GetDevice PeriodMs")


@test
def garbage_between_valid(c):
    chr_path = c.connect(CLIP, P.POSTURE_UUID)
    before = c.sim("GetDevice", "s", CLIP)["Counters"].get("garbage", 0)
    c.sim("SetGarbage", "sd", CLIP, 0.5)
    sock, _ = acquire(c, chr_path)
    pkts = read_packets(sock, 2.0)
    c.sim("SetGarbage", "sd", CLIP, 0.0)
    sock.close()
    valid, bad = [], {"short": 0, "version": 0, "backwards": 0}
    for p in pkts:
        if len(p) < 9:
            bad["short"] += 1
        elif p[0] != 1:
            bad["version"] += 1
        else:
            valid.append(decode_posture(p)[0])
    # the good ones count up by one; a backwards packet is a valid-looking seq in between
    ups = [v for a, v in zip(valid, valid[1:]) if v == (a + 1) & 0xFFFF]
    back = [v for a, v in zip(valid, valid[1:]) if ((v - a) & 0xFFFF) > 32768]
    check(len(ups) >= 10 and bad["short"] >= 2 and bad["version"] >= 2 and len(back) >= 2,
          "good %d, short %d, version %d, backwards %d" % (len(ups), bad["short"], bad["version"], len(back)))
    ctr = c.sim("GetDevice", "s", CLIP)["Counters"]
    check(ctr["garbage"] - before >= 6 and ctr["garbage_backwards"] >= 2, "counters %r" % dict(ctr))
    # the Thingy's kinds, chosen explicitly
    chr_path = c.connect(THINGY, P.THINGY_GRAVITY_UUID)
    c.sim("SetGarbageKinds", "sas", THINGY, dbus.Array(["nan", "inf"], signature="s"))
    c.sim("SetGarbage", "sd", THINGY, 1.0)
    sock, _ = acquire(c, chr_path)
    pkts = [struct.unpack("<fff", p) for p in read_packets(sock, 0.6) if len(p) == 12]
    c.sim("SetGarbage", "sd", THINGY, 0.0)
    c.sim("SetGarbageKinds", "sas", THINGY, dbus.Array([], signature="s"))
    sock.close()
    nan = sum(1 for v in pkts if any(math.isnan(x) for x in v))
    inf = sum(1 for v in pkts if any(math.isinf(x) for x in v))
    check(nan >= 2 and inf >= 2 and len(pkts) - nan - inf >= 4, "nan %d inf %d of %d" % (nan, inf, len(pkts)))
    c.expect_error("io.spinewatch.Sim1.Error.InvalidArguments", SIM_PATH, SIM_IFACE,
                   "SetGarbageKinds", "sas", THINGY, dbus.Array(["bogus"], signature="s"))


@test
def burst_cracks(c):
    chr_path = c.connect(MIC, P.CRACK_UUID)
    sock, _ = acquire(c, chr_path)
    t0 = time.monotonic()
    check(c.sim("BurstCracks", "suu", MIC, 1000, 2000), "BurstCracks refused")
    pkts = read_packets(sock, 10.0, want=1000)
    elapsed = time.monotonic() - t0
    sock.close()
    check(len(pkts) == 1000, "%d of 1000 burst cracks arrived" % len(pkts))
    got = [decode_crack(p) for p in pkts]
    check([g["duration_ms"] for g in got] == list(range(1, 1001)), "durations not the index + 1")
    check(elapsed < 5.0, "1000 cracks at 2000 Hz took %.1f s" % elapsed)
    log = c.sim("GetBurstLog")
    check(len(log) == 1000 and all(bool(e[3]) for e in log), "burst log of %d" % len(log))
    check([int(e[1]) for e in log] == [g["seq"] for g in got], "log seqs differ from received")
    check(all(b[2] >= a[2] for a, b in zip(log, log[1:])), "send times not monotonic")
    check(not c.sim("BurstRunning"), "burst still running")


@test
def many_sensors(c):
    """--extra-clips 6: ten sensors, all streaming at once (8 posture-like)."""
    with OwnSim(["--extra-clips", "6", "--scenario", "idle", "--require-pairing", "none"],
                VERBOSE) as c2:
        addrs = devices_exported(c2)
        extra = ["C0:FF:EE:00:01:%02X" % i for i in range(1, 7)]
        check(len(addrs) == 10 and all(a in addrs for a in extra), "devices %r" % addrs)
        check(c2.prop(dev_path(extra[0]), DEV, "Name") == "Spine Clip 2", "extra clip name")
        boxes = {a: c2.call_async(dev_path(a), DEV, "Connect") for a in addrs}
        check(c2.pump(5, lambda: all(boxes.values())), "not all connected")
        check(all("reply" in b for b in boxes.values()), "connect errors %r" % boxes)
        uuid = {MIC: P.CRACK_UUID, MICROBIT: P.MICROBIT_ACCEL_DATA_UUID, THINGY: P.THINGY_GRAVITY_UUID}
        paths = {a: c2.char_path(a, uuid.get(a, P.POSTURE_UUID)) for a in addrs}
        socks = {a: acquire(c2, p)[0] for a, p in paths.items()}
        time.sleep(1.5)
        counts = {a: len(read_packets(s, 0.05)) for a, s in socks.items()}
        for s in socks.values():
            s.close()
        slow = {a: n for a, n in counts.items() if a != MIC and n < 15}
        check(not slow, "sensors streaming too little in 1.5 s: %r" % slow)


@test
def killed_sim_closes_notify_sockets(c):
    """A SIGKILLed bluetoothd: the notify socket reads end of file."""
    with OwnSim(["--scenario", "idle"], VERBOSE) as c2:
        sock, _ = acquire(c2, c2.connect(CLIP, P.POSTURE_UUID))
        check(read_packets(sock, 0.5), "no data before the kill")
        c2.simbus.kill_sim()
        pkts = read_packets(sock, 2.0)
        check(pkts and pkts[-1] == b"", "socket not closed by the kill")
        sock.close()
        c2.simbus.start_sim()
        check(not c2.prop(dev_path(CLIP), DEV, "Connected"), "connected after the restart")


# ------------------------------------------------------------------------------ main

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-v", "--verbose", action="store_true", help="show the simulator's log")
    ap.add_argument("-k", dest="pattern", help="run tests whose name contains this")
    args = ap.parse_args()
    global VERBOSE
    VERBOSE = args.verbose
    tests = [t for t in TESTS if not args.pattern or args.pattern in t.__name__]
    passed = failed = 0
    stderr = None if args.verbose else subprocess.DEVNULL
    with simbus.SimBus(["--scenario", "quick", "--seed", "7"], stderr=stderr) as sb:
        client = Client(sb.address)
        client.bus_address = sb.address
        client.simbus = sb
        for t in tests:
            t0 = time.monotonic()
            try:
                t(client)
            except Exception as e:             # report and go on with the next test
                failed += 1
                detail = str(e) if isinstance(e, Failure) else traceback.format_exc()
                print("FAIL %s: %s" % (t.__name__, detail), flush=True)
            else:
                passed += 1
                print("ok   %s (%.1f s)" % (t.__name__, time.monotonic() - t0), flush=True)
            if sb.sim.poll() is not None:
                print("FAIL the simulator exited with %d" % sb.sim.returncode)
                failed += 1
                break
        client.close()
    print("%d passed, %d failed" % (passed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
