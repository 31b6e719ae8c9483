# tests/sim/payloads.py - UUIDs and payload encoders of the Spine Sensor Profile
# (version 1), the BBC micro:bit Accelerometer Service and the Nordic Thingy:52 Motion
# Service, as specified in protocol/spine-sensor-profile.md (and Nordic's Thingy:52 API).
# Used by the simulated BlueZ (fake_bluez.py); test_sim.py checks these encoders against
# the spec's test vectors.

import struct

SPINE_SERVICE_UUID = "5370696e-0100-4177-a174-636857617463"
POSTURE_UUID = "5370696e-0101-4177-a174-636857617463"
CRACK_UUID = "5370696e-0102-4177-a174-636857617463"

MICROBIT_ACCEL_SERVICE_UUID = "e95d0753-251d-470a-a062-fa1922dfa9a8"
MICROBIT_ACCEL_DATA_UUID = "e95dca4b-251d-470a-a062-fa1922dfa9a8"
MICROBIT_ACCEL_PERIOD_UUID = "e95dfb24-251d-470a-a062-fa1922dfa9a8"
# Accelerometer periods (ms) the micro:bit's accelerometer supports; a write picks the nearest.
MICROBIT_PERIODS = (1, 2, 5, 10, 20, 80, 160, 640)
MICROBIT_DEFAULT_PERIOD = 20

THINGY_BASE = "ef68%04x-9b35-4933-9b10-52ffa9740042"
THINGY_CONFIG_SERVICE_UUID = THINGY_BASE % 0x0100      # advertised
THINGY_DEVICE_NAME_UUID = THINGY_BASE % 0x0101
THINGY_FIRMWARE_UUID = THINGY_BASE % 0x0107
THINGY_MOTION_SERVICE_UUID = THINGY_BASE % 0x0400
THINGY_MOTION_CONFIG_UUID = THINGY_BASE % 0x0401
THINGY_QUATERNION_UUID = THINGY_BASE % 0x0404
THINGY_PEDOMETER_UUID = THINGY_BASE % 0x0405
THINGY_HEADING_UUID = THINGY_BASE % 0x0409
THINGY_GRAVITY_UUID = THINGY_BASE % 0x040a
# Motion configuration: step counter interval ms, temperature compensation interval ms,
# magnetometer compensation interval ms, motion processing unit frequency Hz, wake on motion.
THINGY_CONFIG_FORMAT = "<HHHHB"
THINGY_DEFAULT_CONFIG = (1000, 500, 500, 10, 1)   # the firmware's factory default
THINGY_FREQ_MIN, THINGY_FREQ_MAX = 5, 200
STANDARD_GRAVITY = 9.80665

GAP_SERVICE_UUID = "00001800-0000-1000-8000-00805f9b34fb"
GATT_SERVICE_UUID = "00001801-0000-1000-8000-00805f9b34fb"
BATTERY_SERVICE_UUID = "0000180f-0000-1000-8000-00805f9b34fb"

DEVICE_INFO_SERVICE_UUID = "0000180a-0000-1000-8000-00805f9b34fb"
MANUFACTURER_NAME_UUID = "00002a29-0000-1000-8000-00805f9b34fb"
FIRMWARE_REVISION_UUID = "00002a26-0000-1000-8000-00805f9b34fb"
CCCD_UUID = "00002902-0000-1000-8000-00805f9b34fb"

PROFILE_VERSION = 1

CRACK_KINDS = {"pop": 0, "click": 1, "grind": 2}


def _i16(value):
    """Round and clamp to the i16 range (a sensor saturates, it does not wrap)."""
    return max(-32768, min(32767, int(round(value))))


def encode_posture(seq, x, y, z):
    """Posture characteristic (0101): version, u16 seq, i16 x/y/z in milli-g."""
    return struct.pack("<BHhhh", PROFILE_VERSION, seq & 0xFFFF, _i16(x), _i16(y), _i16(z))


def encode_crack(seq, kind, intensity, duration_ms, count, age_ms=0):
    """Crack characteristic (0102). kind is 'pop', 'click', 'grind' or 0..2."""
    if isinstance(kind, str):
        kind = CRACK_KINDS[kind]
    if not 0 <= kind <= 2:
        raise ValueError("crack kind must be 0..2")
    if not 0 <= intensity <= 100:
        raise ValueError("intensity must be 0..100")
    if not 1 <= count <= 255:
        raise ValueError("count must be 1..255")
    duration_ms = max(0, min(0xFFFF, int(duration_ms)))
    age_ms = max(0, min(0xFFFF, int(age_ms)))
    return struct.pack("<BHBBHBH", PROFILE_VERSION, seq & 0xFFFF, kind, int(intensity),
                       duration_ms, int(count), age_ms)


def encode_microbit(x, y, z):
    """micro:bit Accelerometer Data: exactly 6 bytes, i16 x/y/z milli-g, no header."""
    return struct.pack("<hhh", _i16(x), _i16(y), _i16(z))


def nearest_microbit_period(ms):
    """The supported accelerometer period nearest to `ms` (ties go to the shorter one)."""
    return min(MICROBIT_PERIODS, key=lambda p: (abs(p - ms), p))


def encode_thingy_gravity(x_mg, y_mg, z_mg):
    """Thingy:52 Gravity Vector: three float32 little-endian in m/s^2 (input in milli-g)."""
    k = STANDARD_GRAVITY / 1000.0
    return struct.pack("<fff", x_mg * k, y_mg * k, z_mg * k)


def encode_thingy_config(step_ms, temp_ms, magnet_ms, freq_hz, wake_on_motion):
    return struct.pack(THINGY_CONFIG_FORMAT, step_ms, temp_ms, magnet_ms, freq_hz, wake_on_motion)


def decode_thingy_config(data):
    """(step_ms, temp_ms, magnet_ms, freq_hz, wake_on_motion) from exactly 9 bytes."""
    if len(data) != struct.calcsize(THINGY_CONFIG_FORMAT):
        raise ValueError("Thingy motion config is 9 bytes, got %d" % len(data))
    return struct.unpack(THINGY_CONFIG_FORMAT, bytes(data))


# ---- Thingy:52 Sound Service (protocol/thingy52-sound.md) -----------------------------

THINGY_SOUND_SERVICE_UUID = THINGY_BASE % 0x0500
THINGY_SOUND_CONFIG_UUID = THINGY_BASE % 0x0501
THINGY_SPEAKER_DATA_UUID = THINGY_BASE % 0x0502
THINGY_SPEAKER_STATUS_UUID = THINGY_BASE % 0x0503
THINGY_MIC_UUID = THINGY_BASE % 0x0504
THINGY_MIC_RATE = 16000
THINGY_MIC_SAMPLES = 256                # per 131-byte frame
THINGY_MIC_MODE_ADPCM, THINGY_MIC_MODE_SPL = 1, 2

# IMA ADPCM (the 1992 recommended practice): step sizes and index changes
IMA_STEPS = (
    7, 8, 9, 10, 11, 12, 13, 14, 16, 17, 19, 21, 23, 25, 28, 31, 34, 37, 41, 45, 50, 55, 60,
    66, 73, 80, 88, 97, 107, 118, 130, 143, 157, 173, 190, 209, 230, 253, 279, 307, 337, 371,
    408, 449, 494, 544, 598, 658, 724, 796, 876, 963, 1060, 1166, 1282, 1411, 1552, 1707,
    1878, 2066, 2272, 2499, 2749, 3024, 3327, 3660, 4026, 4428, 4871, 5358, 5894, 6484, 7132,
    7845, 8630, 9493, 10442, 11487, 12635, 13899, 15289, 16818, 18500, 20350, 22385, 24623,
    27086, 29794, 32767)
IMA_INDEX = (-1, -1, -1, -1, 2, 4, 6, 8)


def encode_thingy_mic_frame(samples, pred, index):
    """One Thingy:52 microphone frame from 256 int16 samples, the encoder's state in
    (pred, index) before it: (131 bytes, pred, index after it). The header is the state
    before the frame (int16 big-endian, then the step index), the codes follow two a byte,
    the first in the high nibble; each code is the reference encoder's (which the decoder's
    shift-and-add reconstruction tracks exactly)."""
    out = bytearray(struct.pack(">hB", pred, index))
    steps, adj = IMA_STEPS, IMA_INDEX
    hi = None
    for x in samples:
        step = steps[index]
        diff = x - pred
        code = 0
        if diff < 0:
            code = 8
            diff = -diff
        vp = step >> 3
        if diff >= step:
            code |= 4
            diff -= step
            vp += step
        step >>= 1
        if diff >= step:
            code |= 2
            diff -= step
            vp += step
        step >>= 1
        if diff >= step:
            code |= 1
            vp += step
        pred = pred - vp if code & 8 else pred + vp
        if pred > 32767:
            pred = 32767
        elif pred < -32768:
            pred = -32768
        index += adj[code & 7]
        if index < 0:
            index = 0
        elif index > 88:
            index = 88
        if hi is None:
            hi = code
        else:
            out.append(hi << 4 | code)
            hi = None
    return bytes(out), pred, index


def decode_thingy_mic_frame(frame):
    """The 256 samples of a frame (for the simulator's self-test)."""
    if len(frame) != 3 + THINGY_MIC_SAMPLES // 2:
        raise ValueError("a microphone frame is 131 bytes, got %d" % len(frame))
    pred, index = struct.unpack(">hB", frame[:3])
    if index > 88:
        raise ValueError("step index %d" % index)
    out = []
    for b in frame[3:]:
        for code in (b >> 4, b & 15):
            step = IMA_STEPS[index]
            vp = step >> 3
            if code & 4:
                vp += step
            if code & 2:
                vp += step >> 1
            if code & 1:
                vp += step >> 2
            pred = max(-32768, min(32767, pred - vp if code & 8 else pred + vp))
            index = max(0, min(88, index + IMA_INDEX[code & 7]))
            out.append(pred)
    return out


def crack_sound(rng, kind, intensity, duration_ms, count, rate=THINGY_MIC_RATE):
    """Synthetic crack audio (a list of floats, int16 scale) as a body microphone hears it:
    a pop is ~5 ms of decaying broadband noise (a burst: `count` of them ~18-32 ms apart),
    a click a short ringing at 1.5-3 kHz, a grind `duration_ms` of rough noise below
    ~400 Hz. The level grows with intensity: RMS at intensity/2 - 60 dBFS."""
    import math
    amp = 32768.0 * 10 ** ((intensity / 2.0 - 60.0) / 20.0)
    out = []
    if kind == "pop":
        t = 0
        for _ in range(max(1, count)):
            while len(out) < t:
                out.append(0.0)
            for i in range(int(0.005 * rate)):
                v = rng.gauss(0.0, 1.0) * math.exp(-i / (0.0011 * rate)) * amp * 2.2
                if t + i < len(out):
                    out[t + i] += v
                else:
                    out.append(v)
            t += int(rng.uniform(0.018, 0.032) * rate)
    elif kind == "click":
        f = rng.uniform(1500.0, 3000.0)
        for i in range(int(0.006 * rate)):
            out.append(math.sin(2 * math.pi * f * i / rate) * math.exp(-i / (0.0015 * rate)) *
                       amp * 2.0)
    else:
        n = int(max(300, duration_ms) / 1000.0 * rate)
        a = math.exp(-2 * math.pi * 400.0 / rate)
        y1 = y2 = 0.0
        for i in range(n):
            x = rng.gauss(0.0, 1.0)
            if rng.random() < 0.025:
                x += rng.choice((-6.0, 6.0))
            y1 = a * y1 + (1 - a) * x
            y2 = a * y2 + (1 - a) * y1
            env = math.sin(math.pi * i / n) ** 0.7
            out.append(y2 * env * amp * 4.0)
    return out
