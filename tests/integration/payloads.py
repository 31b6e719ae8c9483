"""
tests/integration/payloads.py - encoders for the notifications the fake sensors send, written
from protocol/spine-sensor-profile.md alone (independent of the daemon's decoder): the UUIDs,
Posture and Crack version 1 payloads, micro:bit Accelerometer Data, and gravity vectors for a
given forward tilt.
"""

import math
import struct

SPINE_SERVICE = '5370696e-0100-4177-a174-636857617463'
SPINE_POSTURE = '5370696e-0101-4177-a174-636857617463'
SPINE_CRACK = '5370696e-0102-4177-a174-636857617463'
MICROBIT_ACCEL_SERVICE = 'e95d0753-251d-470a-a062-fa1922dfa9a8'
MICROBIT_ACCEL_DATA = 'e95dca4b-251d-470a-a062-fa1922dfa9a8'

CRACK_KINDS = {'pop': 0, 'click': 1, 'grind': 2}


def posture(seq, x, y, z, version=1):
    """Posture characteristic: u8 version, u16 seq, i16 x, y, z (milli-g), little-endian."""
    return struct.pack('<BHhhh', version, seq & 0xFFFF, x, y, z)


def crack(seq, kind='pop', intensity=80, duration_ms=120, count=1, age_ms=0, version=1):
    """Crack characteristic: u8 version, u16 seq, u8 kind, u8 intensity, u16 duration_ms,
    u8 count, u16 age_ms. `kind` is a name from CRACK_KINDS or a raw number."""
    kind_code = CRACK_KINDS[kind] if isinstance(kind, str) else kind
    return struct.pack('<BHBBHBH', version, seq & 0xFFFF, kind_code, intensity,
                       duration_ms, count, age_ms)


def microbit(x, y, z):
    """micro:bit Accelerometer Data: i16 x, y, z in milli-g, exactly 6 bytes."""
    return struct.pack('<hhh', x, y, z)


def tilted(baseline, axis, degrees):
    """Gravity (milli-g, rounded) after rotating the unit vector `baseline` by `degrees`
    towards the unit vector `axis` (which must be perpendicular to it)."""
    a = math.radians(degrees)
    return tuple(round(1000 * (b * math.cos(a) + t * math.sin(a)))
                 for b, t in zip(baseline, axis))
