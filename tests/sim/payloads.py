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
