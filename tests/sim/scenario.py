# tests/sim/scenario.py - the simulator's scenario engine: what the simulated wearers do.
#
# Pure Python, no D-Bus. A Track is one wearer as seen by one sensor: the forward flexion
# angle of the upper back over scenario time, whether they are moving (more sensor noise),
# and the cracks that happen. A Mount turns an angle into the gravity vector in a sensor's
# own axes. Everything is a deterministic function of (scenario, seed, stream, time):
# each loop of a scenario draws its variations from its own seeded random generator, so
# the same seed gives the same day at any speed and any sampling jitter.

import bisect
import math
import random
from collections import namedtuple

SCENARIOS = ("desk-day", "quick", "idle")

# onset: scenario seconds; the sensor notifies when the sound has ended (onset + duration)
CrackEvent = namedtuple("CrackEvent", "onset kind intensity duration_ms count")


class LoopPlan:
    """One loop of a scenario: angle keyframes, moving intervals, cracks (loop-relative)."""

    def __init__(self, keyframes, moving, cracks):
        self.keyframes = keyframes            # [(t, deg)], t ascending, first t == 0
        self.key_t = [k[0] for k in keyframes]
        self.moving = moving                  # [(t0, t1)]
        self.cracks = sorted(cracks, key=lambda c: c.onset)

    def angle(self, t):
        i = bisect.bisect_right(self.key_t, t) - 1
        if i >= len(self.keyframes) - 1:
            return self.keyframes[-1][1]
        (t0, a0), (t1, a1) = self.keyframes[i], self.keyframes[i + 1]
        u = (t - t0) / (t1 - t0)
        return a0 + (a1 - a0) * (1 - math.cos(math.pi * u)) / 2   # ease in and out

    def is_moving(self, t):
        return any(t0 <= t < t1 for t0, t1 in self.moving)


def _pops(rng, onset, lo, hi, intensity):
    """A burst of lo..hi pops heard as one crack: ~5-6 ms each, within ~150 ms."""
    count = rng.randint(lo, hi)
    duration = 6 if count == 1 else min(150, 6 + (count - 1) * rng.randint(18, 32))
    return CrackEvent(onset, "pop", rng.randint(*intensity), duration, count)


def _click(rng, onset):
    return CrackEvent(onset, "click", rng.randint(15, 40), rng.randint(4, 12), 1)


def _grind(rng, onset, longest=1500):
    return CrackEvent(onset, "grind", rng.randint(20, 45), rng.randint(400, longest), 1)


def _plan_desk_day(rng):
    """120 s: sit upright, drift into a slouch held > 30 s, sit up, stand up with a crack
    burst, walk about (maybe grinding), sit down again."""
    u = rng.uniform
    slouch = u(20.0, 25.0)
    keyframes = [
        (0.0, 2.0),
        (u(15.0, 19.0), 2.0),          # upright sitting, then the drift forward starts
        (33.0, slouch - 2.0),          # past 15 degrees at about 28-31 s
        (45.0, slouch),
        (60.0, slouch + u(-1.5, 1.5)),
        (75.0, slouch - 1.0),
        (78.0, 3.0),                   # sits up: below 10 degrees, the slouch ends
        (88.0, 3.0),
        (89.5, 38.0),                  # leans forward to stand up
        (91.0, 1.0),                   # standing
        (103.5, 1.5),
        (105.0, 30.0),                 # sits down again (too short to be a slouch)
        (106.5, 3.5),
        (120.0, 2.0),
    ]
    moving = [(88.5, 107.0)]
    cracks = [_pops(rng, 90.0 + u(0.0, 0.6), 2, 5, (45, 90))]       # standing up
    if rng.random() < 0.35:                                          # leaning back
        cracks.append(_pops(rng, 77.0 + u(0.0, 1.0), 1, 3, (30, 70)))
    for _ in range(rng.randint(1, 2)):                               # after sitting still
        cracks.append(_click(rng, rng.choice((u(5.0, 15.0), u(50.0, 70.0)))))
    if rng.random() < 0.5:                                           # moving about
        cracks.append(_grind(rng, u(94.0, 101.0)))
    if rng.random() < 0.25:                                          # sitting down
        cracks.append(_grind(rng, 104.5, 1000))
    return 120.0, LoopPlan(keyframes, moving, cracks)


def _plan_quick(rng):
    """60 s for smoke tests: upright 4 s (calibration), then slouched ~40 s; a crack 1 s
    after the start and then every 3 s (pop, click, pop, grind, ...)."""
    slouch = rng.uniform(24.0, 27.0)
    keyframes = [(0.0, 2.0), (4.0, 2.0), (6.0, slouch), (44.0, slouch + rng.uniform(-1, 1)),
                 (46.0, 2.0), (60.0, 2.0)]
    cracks = []
    for k in range(20):
        onset = 1.0 + 3.0 * k
        kind = ("pop", "click", "pop", "grind")[k % 4]
        if kind == "pop":
            cracks.append(_pops(rng, onset, 2, 5, (40, 95)))
        elif kind == "click":
            cracks.append(_click(rng, onset))
        else:
            cracks.append(_grind(rng, onset, 1200))
    return 60.0, LoopPlan(keyframes, [(4.0, 6.0), (44.0, 46.0)], cracks)


def _plan_idle(rng):
    """60 s of upright sitting, no cracks: for tests that inject everything themselves."""
    return 60.0, LoopPlan([(0.0, 2.0), (60.0, 2.0)], [], [])


_PLANNERS = {"desk-day": _plan_desk_day, "quick": _plan_quick, "idle": _plan_idle}


class Track:
    """One wearer's pattern as one sensor sees it, offset in time by `lag` seconds."""

    def __init__(self, scenario, seed, stream, lag=0.0):
        if scenario not in _PLANNERS:
            raise ValueError("unknown scenario %r (one of %s)" % (scenario, ", ".join(SCENARIOS)))
        self.scenario, self.seed, self.stream, self.lag = scenario, seed, stream, lag
        self.period, _ = _PLANNERS[scenario](random.Random(0))
        self._plans = {}
        sway = random.Random("%s/%s/sway" % (seed, stream))
        self._sway = [(sway.uniform(0.3, 0.7), sway.uniform(0.03, 0.09), sway.uniform(0, 2 * math.pi))
                      for _ in range(3)]

    def plan(self, n):
        """The plan of loop n (n may be negative: the time before a lagged track starts)."""
        plan = self._plans.get(n)
        if plan is None:
            if len(self._plans) > 8:
                self._plans.clear()
            rng = random.Random("%s/%s/%s/%d" % (self.scenario, self.seed, self.stream, n))
            _, plan = _PLANNERS[self.scenario](rng)
            self._plans[n] = plan
        return plan

    def _split(self, t):
        t -= self.lag
        n = math.floor(t / self.period)
        return n, t - n * self.period

    def flexion(self, t):
        """Forward flexion in degrees at scenario time t, including slow sway."""
        n, lt = self._split(t)
        a = self.plan(n).angle(lt)
        (amp, freq, ph) = self._sway[0]
        return a + amp * math.sin(2 * math.pi * freq * t + ph)

    def lateral(self, t):
        """Small side-to-side lean in degrees."""
        amp, freq, ph = self._sway[1]
        return 0.8 * amp * math.sin(2 * math.pi * freq * t + ph)

    def moving(self, t):
        n, lt = self._split(t)
        return self.plan(n).is_moving(lt)

    def cracks_due(self, t0, t1):
        """Cracks whose sound ends (the sensor notifies) in scenario time [t0, t1),
        with onset in absolute scenario time."""
        if t1 <= t0:
            return []
        out = []
        n0, _ = self._split(t0 - 2.0)        # nothing lasts longer than 2 s
        n1, _ = self._split(t1)
        for n in range(n0, n1 + 1):
            base = n * self.period + self.lag
            for c in self.plan(n).cracks:
                onset = base + c.onset
                due = onset + c.duration_ms / 1000.0
                if t0 <= due < t1:
                    out.append(c._replace(onset=onset))
        out.sort(key=lambda c: c.onset + c.duration_ms / 1000.0)
        return out


def _unit(v):
    n = math.sqrt(sum(c * c for c in v))
    return tuple(c / n for c in v)


def _cross(a, b):
    return (a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0])


class Mount:
    """How a sensor sits on the wearer: the direction of gravity in its axes when upright
    (`rest`), the direction gravity tips towards when leaning forward (`forward`, made
    orthogonal to rest) and the sensor's gain (1.0 = exactly 1000 mg per g)."""

    def __init__(self, rest, forward, gain=1.0):
        self.rest = _unit(rest)
        lateral = _unit(_cross(self.rest, forward))
        self.forward = _unit(_cross(lateral, self.rest))
        self.lateral = lateral
        self.gain = gain

    def gravity(self, flexion_deg, lateral_deg=0.0):
        """Gravity in milli-g in the sensor's axes; its angle to the upright vector is
        exactly hypot(flexion, lateral) degrees."""
        theta = math.radians(math.hypot(flexion_deg, lateral_deg))
        phi = math.atan2(lateral_deg, flexion_deg)
        c, s = math.cos(theta), math.sin(theta)
        dx = [c * r + s * (math.cos(phi) * f + math.sin(phi) * l)
              for r, f, l in zip(self.rest, self.forward, self.lateral)]
        return tuple(1000.0 * self.gain * d for d in dx)


# A clip on the upper back: gravity mostly along +Z, tilted a little towards X.
CLIP_MOUNT = Mount(rest=(0.17, 0.0, 0.985), forward=(0.0, 1.0, 0.0))
# A micro:bit in a vertical holder: gravity mostly along -Y; its accelerometer reads ~1.5% low.
MICROBIT_MOUNT = Mount(rest=(0.10, -0.99, 0.05), forward=(0.0, 0.0, 1.0), gain=0.985)
# A Thingy:52 flat on the upper back, face out: gravity mostly along -Z, leaning forward
# tips it towards +Y. Its motion processor reports gravity ~0.5% high.
THINGY_MOUNT = Mount(rest=(0.04, 0.12, -0.99), forward=(0.0, 1.0, 0.0), gain=1.005)


def angle_between(a, b):
    """Angle in degrees between two vectors (what the daemon measures)."""
    dot = sum(x * y for x, y in zip(a, b))
    na = math.sqrt(sum(x * x for x in a))
    nb = math.sqrt(sum(x * x for x in b))
    return math.degrees(math.acos(max(-1.0, min(1.0, dot / (na * nb)))))
