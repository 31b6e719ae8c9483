"""
tests/integration/suite_schema.py - the feed's JSON Schemas (protocol/schema/, draft 2020-12)
against the daemon and the feed document: every message any test of the run received
(feed.RECEIVED) and every example of protocol/websocket-feed.md validate against the schema of
their type; the schemas also declare every member those carry (checked with the schemas
closed: unevaluatedProperties false on every object); deliberately broken messages must be
rejected for the member that is wrong (a schema that accepts everything does not pass), and a
few unusual but valid ones accepted. The test is 'docs-schemas'; run.py runs it last, after
'docs-examples-and-keys', so that RECEIVED holds what all the others received. Registered in
suite.TESTS like suite.py's tests.
"""

import copy
import json
import os
import re

import jsonschema
from jsonschema import Draft202012Validator

from feed import RECEIVED, Feed, documented_examples
from procs import TestFailure, check
from suite import test
from suite_alerts import command, hold

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCHEMA_DIR = os.path.join(REPO, 'protocol', 'schema')
DOC = os.path.join(REPO, 'protocol', 'websocket-feed.md')
BASE_URI = 'https://spinewatch.invalid/schema/feed/1/'

# The schema of each message type. Server messages and client commands share no type (the
# stats command's schema is stats-request.json: the record it asks for is common.json's stats).
SERVER_SCHEMAS = {t: f'{t}.json' for t in
                  ('hello', 'event', 'posture', 'status', 'gap', 'error', 'reply')}
CLIENT_SCHEMAS = {t: f'{t}.json' for t in ('ack', 'calibrate', 'annotate', 'subscribe', 'ping')}
CLIENT_SCHEMAS['stats'] = 'stats-request.json'
SCHEMA_OF_TYPE = {**SERVER_SCHEMAS, **CLIENT_SCHEMAS}
# the other files: shared definitions and the two schemas that dispatch on type
OTHER_FILES = {'common.json', 'server-message.json', 'client-command.json'}


def _no_fetch(uri):
    raise jsonschema.RefResolutionError(f'{uri} is not one of the files in {SCHEMA_DIR}')


def close(schema):
    """A copy of `schema` where every object schema ("type": "object") that does not say
    otherwise has "unevaluatedProperties": false, so that members the schema does not
    declare are errors."""
    if isinstance(schema, list):
        return [close(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: close(v) for k, v in schema.items()}
    if schema.get('type') == 'object' and 'additionalProperties' not in schema:
        out['unevaluatedProperties'] = False
    return out


class Schemas:
    """Validators for the files of protocol/schema/, their $refs resolved among themselves
    (nothing is fetched). With closed=True, undeclared members are errors."""

    def __init__(self, directory=SCHEMA_DIR, closed=False):
        self.raw = {}
        for name in sorted(os.listdir(directory)):
            if name.endswith('.json'):
                with open(os.path.join(directory, name), encoding='utf-8') as f:
                    try:
                        self.raw[name] = json.load(f)
                    except ValueError as e:
                        raise TestFailure(f'{directory}/{name} is not JSON: {e}') from None
        schemas = {n: close(s) if closed else s for n, s in self.raw.items()}
        store = {s.get('$id', n): s for n, s in schemas.items()}
        self.validators = {}
        for name, schema in schemas.items():
            resolver = jsonschema.RefResolver.from_schema(
                schema, store=store, handlers={'http': _no_fetch, 'https': _no_fetch,
                                               'file': _no_fetch})
            self.validators[name] = Draft202012Validator(schema, resolver=resolver)

    def errors(self, name, msg):
        """The errors of `msg` against schema file `name`, the nested ones (under anyOf,
        oneOf) flattened."""
        out = []
        pending = list(self.validators[name].iter_errors(msg))
        while pending:
            e = pending.pop(0)
            out.append(e)
            pending.extend(e.context or [])
        return out

    def schema_for(self, msg):
        """The schema file for a message (by its type), or None."""
        return SCHEMA_OF_TYPE.get(msg.get('type')) if isinstance(msg, dict) else None


def where(error):
    return '/'.join(str(p) for p in error.absolute_path) or '(message)'


def describe(error):
    return f'{where(error)}: {error.message[:200]}'


def _label(msg):
    """hello, event/crack, event/slouch/start..."""
    label = [str(msg.get('type'))]
    for key in ('kind', 'phase'):
        if msg.get('type') == 'event' and isinstance(msg.get(key), str):
            label.append(msg[key])
    return '/'.join(label)


def violations(schemas, name, msg):
    """The distinct errors of msg against schema `name`, as text (the top level ones: the
    nested ones only explain an anyOf or oneOf)."""
    return sorted({describe(e) for e in schemas.validators[name].iter_errors(msg)})


def inline_examples(markdown_path):
    """The JSON objects written inline (`{"type":...}`) in the document's text."""
    with open(markdown_path, encoding='utf-8') as f:
        text = f.read()
    out = []
    for span in re.findall(r'`(\{"type".*?\})`', text):
        try:
            out.append(json.loads(span))
        except ValueError:
            pass  # a fragment, not a whole message
    return out


def check_files(schemas, readme):
    """Every file is a valid draft 2020-12 schema with its own $id, every message type has its
    file, and the README names every file."""
    problems = []
    for name, schema in schemas.raw.items():
        try:
            Draft202012Validator.check_schema(schema)
        except jsonschema.SchemaError as e:
            problems.append(f'{name} is not a valid draft 2020-12 schema: {e.message}')
        if schema.get('$schema') != 'https://json-schema.org/draft/2020-12/schema':
            problems.append(f'{name}: $schema is not draft 2020-12')
        if schema.get('$id') != BASE_URI + name:
            problems.append(f'{name}: $id is not {BASE_URI + name}')
    expected = set(SCHEMA_OF_TYPE.values()) | OTHER_FILES
    for name in sorted(expected - set(schemas.raw)):
        problems.append(f'{name} is missing from {SCHEMA_DIR}')
    for name in sorted(set(schemas.raw) - expected):
        problems.append(f'{name} in {SCHEMA_DIR} is used by no message type (add it to '
                        'suite_schema.py)')
    with open(readme, encoding='utf-8') as f:
        text = f.read()
    for name in sorted(schemas.raw):
        if f'`{name}`' not in text:
            problems.append(f'{readme} does not name `{name}`')
    return problems


def check_examples(schemas, closed, examples):
    """Every documented example validates against its type's schema and the dispatching one,
    and its schema declares all its members; every message type and event kind has an
    example."""
    problems = []
    seen = set()
    for i, ex in enumerate(examples, 1):
        name = schemas.schema_for(ex)
        text = json.dumps(ex)[:160]
        if not name:
            problems.append(f'example {i} has no schema for its type: {text}')
            continue
        seen.add(name)
        if ex.get('type') == 'event':
            seen.add(('event', ex.get('kind')))
        for v in violations(schemas, name, ex):
            problems.append(f'example {i} ({_label(ex)}) against {name}: {v}; in {text}')
        for v in violations(closed, name, ex):
            problems.append(f'example {i} ({_label(ex)}): {name} does not declare {v}')
        whole = 'server-message.json' if ex['type'] in SERVER_SCHEMAS else 'client-command.json'
        if not schemas.validators[whole].is_valid(ex):
            problems.append(f'example {i} ({_label(ex)}) is refused by {whole}')
    for name in sorted(set(SCHEMA_OF_TYPE.values()) - seen):
        problems.append(f'no example in the document is checked against {name}')
    for kind in ('crack', 'slouch', 'sensor', 'alert', 'calibration', 'annotation'):
        if ('event', kind) not in seen:
            problems.append(f'no example of an event of kind {kind}')
    return problems


def _find(examples, **match):
    for ex in examples:
        if all(ex.get(k) == v for k, v in match.items()):
            return copy.deepcopy(ex)
    raise TestFailure(f'{DOC}: no example with {match} to derive the schema checks from')


def _set(msg, path, value):
    """msg with the member at `path` (a tuple of keys and indices) set to value, or removed if
    value is DELETE."""
    target = msg
    for p in path[:-1]:
        target = target[p]
    if value is DELETE:
        del target[path[-1]]
    else:
        target[path[-1]] = value
    return msg


DELETE = object()


def broken_cases(examples):
    """(what, message, path): messages derived from the documented examples with one thing
    wrong, at `path` (an instance path: a member that is wrong or missing)."""
    ex = lambda **m: _find(examples, **m)  # noqa: E731
    crack = ex(type='event', kind='crack')
    start = ex(type='event', kind='slouch', phase='start')
    end = ex(type='event', kind='slouch', phase='end')
    sensor = ex(type='event', kind='sensor')
    alert = ex(type='event', kind='alert')
    done = ex(type='event', kind='calibration', result='done')
    refused = ex(type='event', kind='calibration', result='refused')
    note = ex(type='event', kind='annotation', of='crack')
    hello = ex(type='hello')
    posture = ex(type='posture')
    status = ex(type='status')
    gap = ex(type='gap')
    error = ex(type='error')
    ok = ex(type='reply', ok=True, result='ok', id='a1')
    refusal = ex(type='reply', ok=False, id=7)
    stats_reply = ex(type='reply', id='st')
    ack = ex(type='ack')
    calibrate = ex(type='calibrate')
    annotate = ex(type='annotate')
    stats = ex(type='stats')
    subscribe = ex(type='subscribe')
    ping = ex(type='ping')
    c = copy.deepcopy
    cases = [
        # the ones the issue names
        ('an event without seq', crack, ('seq',), DELETE),
        ('crack kind "boom"', crack, ('crack',), 'boom'),
        ('pain 11', note, ('pain',), 11),
        ('a bad sensor address', crack, ('sensor',), 'C0:FF:EE:00:00'),
        # events
        ('a lower-case address sent by the daemon', crack, ('sensor',), 'c0:ff:ee:00:00:02'),
        ('seq 0', crack, ('seq',), 0),
        ('seq as a string', crack, ('seq',), '43'),
        ('ts negative', crack, ('ts',), -1),
        ('event kind "sneeze"', crack, ('kind',), 'sneeze'),
        ('intensity 101', crack, ('intensity',), 101),
        ('intensity not whole', crack, ('intensity',), 80.5),
        ('a crack of 0 pops', crack, ('count',), 0),
        ('a crack without duration_ms', crack, ('duration_ms',), DELETE),
        ('a crack with no sensor ("")', crack, ('sensor',), ''),
        ('slouch phase "middle"', start, ('phase',), 'middle'),
        ('a slouch start with an end\'s reason', start, ('reason',), 'upright'),
        ('a slouch start without onset_ts', start, ('onset_ts',), DELETE),
        ('a slouch end without peak_deg', end, ('peak_deg',), DELETE),
        ('a slouch end with reason "bored"', end, ('reason',), 'bored'),
        ('an angle of 181 degrees', end, ('angle',), 181.0),
        ('a negative threshold', start, ('threshold_deg',), -15.0),
        ('sensor state "asleep"', sensor, ('state',), 'asleep'),
        ('sensor profile "fitbit"', sensor, ('profile',), 'fitbit'),
        ('a sensor event without name', sensor, ('name',), DELETE),
        ('alert rule "posture-police"', alert, ('rule',), 'posture-police'),
        ('alert severity "critical"', alert, ('severity',), 'critical'),
        ('alert state "snoozed"', alert, ('state',), 'snoozed'),
        ('alert id 0', alert, ('id',), 0),
        ('an alert with an empty message', alert, ('message',), ''),
        ('an alert without raised_ts', alert, ('raised_ts',), DELETE),
        ('calibration result "meh"', done, ('result',), 'meh'),
        ('a calibration done with a reason', done, ('reason',), 'moving'),
        ('a calibration refused without a reason', refused, ('reason',), DELETE),
        ('calibration refused for "tired"', refused, ('reason',), 'tired'),
        ('stiffness -1', note, ('stiffness',), -1),
        ('pain as text', note, ('pain',), '3'),
        ('a note of 281 characters', note, ('note',), 'x' * 281),
        ('a note with a NUL', note, ('note',), 'a\u0000b'),
        ('an annotation of an annotation', note, ('of',), 'annotation'),
        ('an annotation without stiffness', note, ('stiffness',), DELETE),
        ('an annotation of nothing', _set(_set(c(note), ('pain',), None), ('note',), None),
         (), None),
        # hello
        ('hello protocol 2', hello, ('protocol',), 2),
        ('hello from another server', hello, ('server',), 'nginx'),
        ('hello without stats', hello, ('stats',), DELETE),
        ('hello last_seq negative', hello, ('last_seq',), -1),
        ('hello without a detector delay', hello, ('detector', 'delay_ms'), DELETE),
        ('hello sensors not a list', hello, ('sensors',), {}),
        ('a sensor battery of 101 %', hello, ('sensors', 0, 'battery'), 101),
        ('a sensor notify "poll"', hello, ('sensors', 0, 'notify'), 'poll'),
        ('a sensor role "camera"', hello, ('sensors', 0, 'roles'), ['camera']),
        ('a sensor role twice', hello, ('sensors', 0, 'roles'), ['posture', 'posture']),
        ('a sensor period of 0 ms', hello, ('sensors', 1, 'period_ms'), 0),
        ('a sensor without lost', hello, ('sensors', 0, 'lost'), DELETE),
        ('a sensor address "nowhere"', hello, ('sensors', 0, 'address'), 'nowhere'),
        ('a cleared alert in hello', hello, ('alerts', 0, 'state'), 'cleared'),
        ('stats without sensors', hello, ('stats', 'sensors'), DELETE),
        # the record (the stats reply's)
        ('a record of 23 hours', stats_reply, ('stats', 'sensors', 0, 'baseline_per_hour'),
         [0.0] * 23),
        ('a baseline mixing numbers and nulls',
         stats_reply, ('stats', 'sensors', 0, 'baseline_per_hour'), [0.0] * 23 + [None]),
        ('today without hours', stats_reply, ('stats', 'sensors', 0, 'today', 'hours'), DELETE),
        ('hours of 25 buckets', stats_reply,
         ('stats', 'sensors', 0, 'today', 'hours', 'cracks'), [0] * 25),
        ('a day of the list with hours', stats_reply, ('stats', 'sensors', 0, 'days', 0, 'hours'),
         {'cracks': [0] * 24, 'slouch_min': [0.0] * 24}),
        ('a date "25/11/2025"', stats_reply, ('stats', 'sensors', 0, 'days', 1, 'date'),
         '25/11/2025'),
        ('negative cracks in a day', stats_reply, ('stats', 'sensors', 0, 'days', 0, 'cracks'),
         -1),
        ('a week of 8 days', stats_reply, ('stats', 'sensors', 0, 'week', 'days'), 8),
        ('a change of -150 %', stats_reply,
         ('stats', 'sensors', 0, 'week', 'cracks_change_pct'), -150.0),
        ('a record of more than 8 weeks', stats_reply, ('stats', 'sensors', 0, 'days'),
         stats_reply['stats']['sensors'][0]['days'] * 12),
        ('a record of a sensor "all"', stats_reply, ('stats', 'sensors', 0, 'sensor'), 'all'),
        ('a stats reply with result "pong"', stats_reply, ('result',), 'pong'),
        # live messages
        ('posture angle while calibrating', _set(c(posture), ('calibrating',), True),
         ('angle',), 12.5),
        ('posture slouching as 1', posture, ('slouching',), 1),
        ('posture without sitting_ms', posture, ('sitting_ms',), DELETE),
        ('status notify "poll"', status, ('notify',), 'poll'),
        ('status rejected -1', status, ('rejected',), -1),
        ('status without period_ms', status, ('period_ms',), DELETE),
        ('a gap from 0', gap, ('from',), 0),
        ('a gap without to', gap, ('to',), DELETE),
        ('error code "oops"', error, ('code',), 'oops'),
        ('an error without message', error, ('message',), DELETE),
        # replies
        ('a reply without id', ok, ('id',), DELETE),
        ('a reply id of 65 characters', ok, ('id',), 'i' * 65),
        ('a reply id 1.5', ok, ('id',), 1.5),
        ('reply ok as "yes"', ok, ('ok',), 'yes'),
        ('reply result "maybe"', ok, ('result',), 'maybe'),
        ('an ok reply with a code', ok, ('code',), 'busy'),
        ('an ok reply without result', ok, ('result',), DELETE),
        ('a refusal with code "nope"', refusal, ('code',), 'nope'),
        ('a refusal without message', refusal, ('message',), DELETE),
        ('a refusal with a result', refusal, ('result',), 'ok'),
        # client commands
        ('ack alert 0', ack, ('alert',), 0),
        ('ack without alert', ack, ('alert',), DELETE),
        ('ack with an id of 65 characters', ack, ('id',), 'i' * 65),
        ('ack with an id that is an object', ack, ('id',), {'n': 1}),
        ('calibrate sensor "C0FFEE000001"', calibrate, ('sensor',), 'C0FFEE000001'),
        ('calibrate without sensor', calibrate, ('sensor',), DELETE),
        ('calibrate with a typo ("sensors")', _set(c(calibrate), ('sensor',), DELETE),
         ('sensors',), 'C0:FF:EE:00:00:01'),
        ('annotate pain 11', annotate, ('pain',), 11),
        ('annotate event 0', annotate, ('event',), 0),
        ('annotate a typo ("stifness")', annotate, ('stifness',), 3),
        ('annotate nothing', _set(_set(c(annotate), ('pain',), DELETE), ('note',), DELETE),
         (), None),
        ('annotate only nulls', _set(_set(c(annotate), ('pain',), None), ('note',), None),
         (), None),
        ('stats of sensor "everything"', stats, ('sensor',), 'everything'),
        ('subscribe kinds ["boom"]', subscribe, ('kinds', 0), 'boom'),
        ('subscribe kinds []', subscribe, ('kinds',), []),
        ('subscribe kinds as text', subscribe, ('kinds',), 'crack,alert'),
        ('subscribe to 17 sensors', subscribe, ('sensors',),
         [f'C0:FF:EE:00:00:{i:02X}' for i in range(17)]),
        ('subscribe to sensor "x"', subscribe, ('sensors', 0), 'x'),
        ('subscribe since -1', subscribe, ('since',), -1),
        ('ping id 1.5', ping, ('id',), 1.5),
        ('ping with a payload', ping, ('payload',), 'x'),
    ]
    out = []
    for what, base, path, value in cases:
        msg = copy.deepcopy(base)
        if path:
            _set(msg, path, value)
        out.append((what, msg, path))
    return out


def accepted_cases(examples):
    """(what, message): unusual messages that are right and must be accepted."""
    ex = lambda **m: copy.deepcopy(_find(examples, **m))  # noqa: E731
    alert = ex(type='event', kind='alert')
    alert.update(sensor='', rule='crack-rate', state='cleared', severity='warning')
    note = ex(type='event', kind='annotation', of='alert')
    note.update(sensor='', pain=0, stiffness=10, note='')
    hello = ex(type='hello')
    hello.update(future_member={'added': 'later'}, last_seq=0, oldest_seq=0, alerts=[],
                 stats={'ts': 0, 'sensors': []})
    hello['sensors'][0].update(roles=[], state='resolving', battery=0, notify='start',
                               profile='thingy52')
    hello['sensors'][1].update(roles=['sound', 'posture'], rssi=-127)
    posture = ex(type='posture')
    posture.update(calibrating=True, angle=0, slouching=True)
    stats_reply = ex(type='reply', id='st1')
    stats_reply['stats']['sensors'][0]['baseline_per_hour'] = [0] * 24
    stats_reply['stats']['sensors'][0]['week']['cracks_change_pct'] = -100.0
    return [
        ('a server message with a member protocol 1 does not have', hello),
        ('an event with a member protocol 1 does not have',
         dict(ex(type='event', kind='crack'), confidence=0.9)),
        ('a cleared alert about no sensor in particular', alert),
        ('an annotation of such an alert, with the scale\'s ends and an empty note', note),
        ('a hello with nothing yet and sensors in other states', hello),
        ('a posture sample while calibrating', posture),
        ('a record whose baseline is whole numbers', stats_reply),
        ('a reply to a command without id', {'type': 'reply', 'id': None, 'ok': True,
                                             'result': 'pong'}),
        ('a reply with a negative integer id', {'type': 'reply', 'id': -5, 'ok': False,
                                                'code': 'unknown-alert', 'message': 'no'}),
        ('calibrate with a lower-case address', {'type': 'calibrate',
                                                 'sensor': 'c0:ff:ee:00:00:0a'}),
        ('annotate with stiffness only and nulls', {'type': 'annotate', 'event': 1,
                                                    'pain': None, 'stiffness': 0,
                                                    'note': None}),
        ('annotate with a note of 280 characters', {'type': 'annotate', 'event': 1,
                                                    'note': 'x' * 280}),
        ('subscribe to everything again', {'type': 'subscribe', 'kinds': None,
                                           'sensors': None, 'since': 0, 'id': ''}),
        ('subscribe to posture and status', {'type': 'subscribe',
                                             'kinds': ['posture', 'status']}),
        ('stats of every sensor, no id', {'type': 'stats'}),
        ('ping with an id of 64 characters', {'type': 'ping', 'id': 'i' * 64}),
    ]


def _hits(error, path):
    """Does `error` point at the instance path `path`, or inside it, or at its parent for a
    required, additionalProperties or unevaluatedProperties error naming its last member?"""
    at = tuple(error.absolute_path)
    if at == path or (path and at[:len(path)] == path):
        return True
    return bool(path) and at == path[:-1] and repr(path[-1]) in error.message


def check_broken(schemas, examples):
    problems = []
    for what, msg, path in broken_cases(examples):
        name = schemas.schema_for(msg)
        errors = schemas.errors(name, msg)
        shown = '/'.join(str(p) for p in path) or '(message)'
        if not errors:
            problems.append(f'{name} accepts {what}: {json.dumps(msg)[:200]}')
        elif not any(_hits(e, path) for e in errors):
            problems.append(f'{name} refuses {what}, but not for {shown}: '
                            + '; '.join(sorted({describe(e) for e in errors}))[:300])
        whole = 'server-message.json' if msg['type'] in SERVER_SCHEMAS else 'client-command.json'
        if schemas.validators[whole].is_valid(msg):
            problems.append(f'{whole} accepts {what}')
    return problems


def check_accepted(schemas, examples):
    problems = []
    for what, msg in accepted_cases(examples):
        name = schemas.schema_for(msg)
        for v in violations(schemas, name, msg):
            problems.append(f'{name} refuses {what}: {v}')
    return problems


def shape(value):
    """The members and JSON types of a value, recursively (not the values)."""
    if isinstance(value, dict):
        return tuple(sorted((k, shape(v)) for k, v in value.items()))
    if isinstance(value, list):
        return ('[]', frozenset(shape(v) for v in value))
    return type(value).__name__


def check_received(schemas, closed, received):
    """Each received message against its type's schema (open, then closed: which members a
    schema declares depends only on the shape of a valid message and on the members it
    dispatches on, so the closed check runs once per such shape). Returns problem strings, one
    per kind of problem (message label, schema, member, keyword), each with how many messages
    show it and the first of them."""
    found = {}  # key -> [text, count, test, message]
    shapes = set()

    def note(key, text, test_name, msg):
        entry = found.setdefault(key, [text, 0, test_name, msg])
        entry[1] += 1

    for test_name, msg in received:
        name = schemas.schema_for(msg)
        if not name or name not in SERVER_SCHEMAS.values():
            text = f'message type {msg.get("type")!r} has no server message schema'
            note(text, text, test_name, msg)
            continue
        errors = list(schemas.validators[name].iter_errors(msg))
        for e in errors:
            path = re.sub(r'(?<=/)\d+(?=/|$)', '*', where(e))
            note((_label(msg), name, path, e.validator),
                 f'{_label(msg)} against {name}: {describe(e)}', test_name, msg)
        key = (shape(msg), *(str(msg.get(k)) for k in ('type', 'kind', 'phase', 'result',
                                                         'ok', 'calibrating')))
        if not errors and key not in shapes:
            shapes.add(key)
            for e in closed.validators[name].iter_errors(msg):
                note((_label(msg), name, where(e), 'closed', e.message),
                     f'{_label(msg)}: {name} does not declare a member of {where(e)}: '
                     f'{e.message}', test_name, msg)
    return [f'{text} (seen {count} time{"s" if count > 1 else ""}; first in test {t}: '
            f'{json.dumps(m)[:300]})'
            for text, count, t, m in sorted(found.values(), key=lambda v: v[0])]


def report(title, problems, limit=40):
    more = f'\n  ... and {len(problems) - limit} more' if len(problems) > limit else ''
    return f'{title} ({len(problems)}):\n  ' + '\n  '.join(problems[:limit]) + more


@test('docs-schemas', deadline=120)
async def t_schemas(env):
    schemas, closed = Schemas(), Schemas(closed=True)
    examples = documented_examples(DOC) + inline_examples(DOC)
    sections = [
        ('schema files', check_files(schemas, os.path.join(SCHEMA_DIR, 'README.md'))),
        (f'examples of {DOC} against the schemas', check_examples(schemas, closed, examples)),
        ('broken messages the schemas accept', check_broken(schemas, examples)),
        ('valid messages the schemas refuse', check_accepted(schemas, examples)),
    ]
    # traffic of our own, so this test never checks an empty set (with --only): a hello, a
    # replay, a crack, live posture samples, replies (one to stats, with the record)
    await env.streaming()
    env.fake.send_crack(env.sound)
    async with await Feed.open(env.port, '?since=0') as f:
        await f.next(what='hello')
        await f.wait_for(lambda m: m.get('kind') == 'crack', 5, 'the crack')
        await hold(env, env.clip, 0, 0.6)
        await f.wait_for(lambda m: m['type'] == 'posture', 5, 'a posture sample')
        r = await command(f, {'type': 'stats', 'id': 'schema-stats'})
        check('stats' in r, f'the reply to stats has no record: {r}')
        await command(f, {'type': 'ping', 'id': 7})
        await command(f, {'type': 'ack', 'alert': 999999, 'id': 'schema-ack'})
        await f.drain(0.3)
    sections.append((f'received messages against the schemas ({len(RECEIVED)} checked)',
                     check_received(schemas, closed, RECEIVED)))
    failed = [report(title, problems) for title, problems in sections if problems]
    check(not failed, '\n'.join(failed))
    types = sorted({_label(m) for _, m in RECEIVED})
    print(f'[{len(RECEIVED)} messages and {len(examples)} examples valid; types '
          f'{", ".join(types)}; {len(broken_cases(examples))} broken ones refused]', end=' ')
