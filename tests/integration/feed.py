"""
tests/integration/feed.py - the test side of the WebSocket feed: an asyncio client (websockets)
that checks every frame is one JSON object with a `type` and records it, helpers to wait for
particular messages with a deadline, and the documented examples of protocol/websocket-feed.md
against which every recorded message's keys are checked.
"""

import asyncio
import json
import re

import websockets

from procs import TestFailure, check

SUBPROTOCOL = 'spinewatch.v1'

# Every message any test received: (test name, message). The docs test checks them all.
RECEIVED = []
CURRENT_TEST = ['']


class FeedTimeout(TestFailure):
    """Nothing (or not the awaited message) arrived in time."""


class Feed:
    """One WebSocket connection to the daemon's feed."""

    def __init__(self, ws, label):
        self.ws = ws
        self.label = label
        self.messages = []   # everything received so far, in order
        self.pending = []    # received but not yet returned by next()
        self.last_seq = None  # of the last event received: each must be above it

    @classmethod
    async def open(cls, port, query='', subprotocol=True, origin=None, path='/ws', timeout=5):
        uri = f'ws://127.0.0.1:{port}{path}{query}'
        ws = await websockets.connect(
            uri, subprotocols=[SUBPROTOCOL] if subprotocol else None, origin=origin,
            open_timeout=timeout, close_timeout=2, max_size=1 << 20, compression=None)
        return cls(ws, uri)

    async def close(self):
        await self.ws.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        await self.close()

    async def _receive(self, timeout, what):
        try:
            frame = await asyncio.wait_for(self.ws.recv(), timeout)
        except asyncio.TimeoutError:
            raise FeedTimeout(f'{self.label}: no message within {timeout:g} s while waiting for '
                              f'{what}; received so far: {summary(self.messages)}') from None
        check(isinstance(frame, str), f'{self.label}: binary frame {frame[:60]!r}')
        try:
            msg = json.loads(frame)
        except ValueError as e:
            raise TestFailure(f'{self.label}: frame is not JSON ({e}): {frame[:200]!r}') from None
        check(isinstance(msg, dict) and isinstance(msg.get('type'), str),
              f'{self.label}: message is not an object with a string "type": {frame[:200]}')
        self.messages.append(msg)
        RECEIVED.append((CURRENT_TEST[0], msg))
        if msg['type'] == 'event':
            seq = msg.get('seq')
            check(isinstance(seq, int) and not isinstance(seq, bool)
                  and (self.last_seq is None or seq > self.last_seq),
                  f'{self.label}: event seq {seq!r} after seq {self.last_seq}: sequence numbers '
                  f'must be strictly increasing with no duplicates; received '
                  f'{summary(self.messages)}')
            self.last_seq = seq
        return msg

    async def next(self, timeout=5, what='a message'):
        """The next message (of any type)."""
        if self.pending:
            return self.pending.pop(0)
        return await self._receive(timeout, what)

    async def wait_for(self, predicate, timeout=5, what='a message', keep_others=True):
        """The first message satisfying `predicate`; the messages before it are returned by
        later next() calls if keep_others, else dropped."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        skipped = []
        try:
            while True:
                for i, msg in enumerate(self.pending):
                    if predicate(msg):
                        del self.pending[i]
                        return msg
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise FeedTimeout(f'{self.label}: timed out after {timeout:g} s waiting for '
                                      f'{what}; received: {summary(self.messages)}')
                msg = await self._receive(remaining, what)
                if predicate(msg):
                    return msg
                skipped.append(msg)
        finally:
            if keep_others:
                self.pending.extend(skipped)

    async def drain(self, timeout=0.001):
        """Take in whatever arrives within `timeout` seconds (for next() and .messages)."""
        while True:
            try:
                self.pending.append(await self._receive(timeout, 'anything'))
            except FeedTimeout:
                return

    async def events(self, count, timeout=5, kinds=None):
        """The next `count` events (optionally only those of `kinds`), other messages skipped."""
        out = []
        for _ in range(count):
            out.append(await self.wait_for(
                lambda m: m['type'] == 'event' and (kinds is None or m.get('kind') in kinds),
                timeout, f'event {len(out) + 1} of {count}', keep_others=False))
        return out

    async def expect_closed(self, timeout=5):
        """Wait for the server to close the connection; returns the messages before the close."""
        got = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TestFailure(f'{self.label}: still open {timeout:g} s later; received '
                                  f'{summary(got)}')
            try:
                got.append(await self._receive(remaining, 'the server to close'))
            except websockets.ConnectionClosed:
                return got


def check_seqs(messages, what='events'):
    """The events among `messages` (one connection's, in order) have integer seqs, strictly
    increasing, no duplicates. (Feed checks this on every connection as messages arrive; tests
    call it on their lists too, to say so.) Returns the seqs."""
    seqs = [m.get('seq') for m in messages if m.get('type') == 'event']
    bad = [(a, b) for a, b in zip(seqs, seqs[1:])
           if not (isinstance(a, int) and isinstance(b, int) and b > a)]
    check(all(isinstance(q, int) and not isinstance(q, bool) for q in seqs) and not bad,
          f'{what}: seqs not strictly increasing (first offending pairs {bad[:5]}): {seqs[:60]}')
    return seqs


def check_same_events(*feeds):
    """Across connections to one daemon (one stream), a seq always names the same event."""
    by_seq = {}
    for f in feeds:
        for m in f.messages:
            if m.get('type') == 'event':
                other = by_seq.setdefault(m['seq'], m)
                check(other == m, f'seq {m["seq"]} is two different events: {other} and {m}')


def summary(messages, limit=12):
    """Short text of the last messages for failure reports (posture messages abbreviated)."""
    out = []
    for m in messages[-limit:]:
        if m.get('type') == 'posture':
            out.append(f"posture({m.get('sensor')},{m.get('angle')})")
        else:
            out.append(json.dumps(m, separators=(',', ':')))
    more = f'{len(messages) - limit} earlier, ' if len(messages) > limit else ''
    return f'[{more}' + ', '.join(out) + ']'


async def hello(port, query=''):
    """Connect, return the hello, close."""
    async with await Feed.open(port, query) as f:
        msg = await f.next(what='hello')
        check(msg['type'] == 'hello', f'first message is not hello: {msg}')
        return msg


async def wait_sensor_states(port, addresses, state='streaming', timeout=15):
    """Poll fresh hellos until every sensor in `addresses` has `state` (or one of the tuple
    `state`); returns that hello."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    states_ok = state if isinstance(state, tuple) else (state,)
    while True:
        msg = await hello(port)
        states = {s.get('address'): s.get('state') for s in msg.get('sensors', [])}
        if all(states.get(a) in states_ok for a in addresses):
            return msg
        if loop.time() >= deadline:
            raise TestFailure(f'sensors not all {state} after {timeout:g} s: hello.sensors = '
                              f'{msg.get("sensors")}')
        await asyncio.sleep(0.1)


def sensor_entry(hello_msg, address):
    for s in hello_msg.get('sensors', []):
        if s.get('address') == address:
            return s
    raise TestFailure(f'sensor {address} missing from hello.sensors: {hello_msg.get("sensors")}')


# --- the documented examples ---

def documented_examples(markdown_path):
    """Every ```json block of the feed document, parsed. Raises TestFailure naming the first
    block that does not parse."""
    with open(markdown_path, encoding='utf-8') as f:
        text = f.read()
    blocks = re.findall(r'^```json[ \t]*\n(.*?)^```', text, re.S | re.M)
    examples = []
    for i, block in enumerate(blocks, 1):
        try:
            examples.append(json.loads(block))
        except ValueError as e:
            raise TestFailure(f'{markdown_path}: json block {i} does not parse ({e}):\n{block}') \
                from None
    return examples


def _example_key(msg):
    key = [msg.get('type')]
    if msg.get('type') == 'event':
        key.append(msg.get('kind'))
        if 'phase' in msg:
            key.append(msg.get('phase'))
    return tuple(key)


def _json_kind(value):
    if isinstance(value, bool):
        return 'boolean'
    if isinstance(value, (int, float)):
        return 'number'
    return {str: 'string', list: 'array', dict: 'object'}.get(type(value), 'null')


def _merge(examples):
    """key -> every value the documented examples give it (a key documented both as a number
    and as null, say, is nullable)."""
    merged = {}
    for ex in examples:
        for key, value in ex.items():
            merged.setdefault(key, []).append(value)
    return merged


def _undocumented(msg, alternatives, where):
    """Keys of `msg` that the examples do not have, or have with no value of the same JSON type,
    recursing into objects and arrays of objects. `alternatives` is _merge() of the examples."""
    problems = []
    for key, value in msg.items():
        path = f'{where}.{key}'
        if key not in alternatives:
            problems.append(f'undocumented key {path}')
            continue
        docs = alternatives[key]
        kinds = sorted({_json_kind(d) for d in docs})
        if _json_kind(value) not in kinds:
            problems.append(f'{path} is a {_json_kind(value)}, documented as a {" or ".join(kinds)}')
        elif isinstance(value, dict):
            problems += _undocumented(value, _merge([d for d in docs if isinstance(d, dict)]), path)
        elif isinstance(value, list):
            items = [i for d in docs if isinstance(d, list) for i in d if isinstance(i, dict)]
            if items:
                merged = _merge(items)
                for i, item in enumerate(value):
                    if isinstance(item, dict):
                        problems += _undocumented(item, merged, f'{path}[{i}]')
    return problems


def undocumented_keys(messages, examples):
    """For each message, the keys not in the documented example of the same type (and kind and
    phase for events), or there with another JSON type. Returns a sorted list of problem
    strings, one per distinct problem."""
    by_key = {}
    for ex in examples:
        if isinstance(ex, dict) and 'type' in ex:
            by_key.setdefault(_example_key(ex), []).append(ex)
    problems = {}
    for test, msg in messages:
        key = _example_key(msg)
        docs = by_key.get(key)
        name = '/'.join(str(k) for k in key)
        if not docs:
            problems.setdefault(f'message {name} has no documented example', (test, msg))
            continue
        for problem in _undocumented(msg, _merge(docs), name):
            problems.setdefault(problem, (test, msg))
    return [f'{p} (in test {t}: {json.dumps(m)[:300]})' for p, (t, m) in sorted(problems.items())]
