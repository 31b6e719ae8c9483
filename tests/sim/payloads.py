# tests/sim/payloads.py - UUIDs and payload encoders of the Spine Sensor Profile
# (version 1) and the BBC micro:bit Accelerometer Service, exactly as specified in
# protocol/spine-sensor-profile.md. Used by the simulated BlueZ (fake_bluez.py);
# test_sim.py checks these encoders against the spec's test vectors.

import struct

SPINE_SERVICE_UUID = "5370696e-0100-4177-a174-636857617463"
POSTURE_UUID = "5370696e-0101-4177-a174-636857617463"
CRACK_UUID = "5370696e-0102-4177-a174-636857617463"

MICROBIT_ACCEL_SERVICE_UUID = "e95d0753-251d-470a-a062-fa1922dfa9a8"
MICROBIT_ACCEL_DATA_UUID = "e95dca4b-251d-470a-a062-fa1922dfa9a8"
MICROBIT_ACCEL_PERIOD_UUID = "e95dfb24-251d-470a-a062-fa1922dfa9a8"

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
