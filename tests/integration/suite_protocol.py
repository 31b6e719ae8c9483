"""Feed protocol v1 (issue 6): filters on connect (?kinds=, ?sensors=), the subscribe command
(new filters, resume from a seq), ping, and clear errors for bad filters. Registered in
suite.TESTS like suite.py's tests."""

from feed import Feed
from procs import check
from suite import test
from suite_alerts import command, hold


def kinds_of(msgs):
    return {(m['type'], m.get('kind')) for m in msgs}


@test('feed-filters-subscribe-ping')
async def t_filters(env):
    fake, clip, sound = env.fake, env.clip, env.sound
    await env.streaming()
    q = f'?kinds=crack&sensors={sound.address.lower()}'
    async with await Feed.open(env.port, q) as cracks_only, await Feed.open(env.port) as all_:
        await cracks_only.next(what='hello')
        start = (await all_.next(what='hello'))['last_seq']
        await hold(env, clip, 0, 0.6)                  # posture samples and maybe status
        fake.send_crack(sound, intensity=41)
        await all_.wait_for(lambda m: m.get('intensity') == 41, 5, 'the crack on the open feed')
        got = await cracks_only.wait_for(lambda m: m['type'] == 'event', 5, 'the crack')
        check(got.get('kind') == 'crack' and got.get('intensity') == 41, f'filtered: {got}')
        await cracks_only.drain(0.5)
        check(kinds_of(cracks_only.messages) <= {('hello', None), ('event', 'crack')},
              f'a crack-only client got {kinds_of(cracks_only.messages)}')
        check(any(m['type'] == 'posture' for m in all_.messages),
              'the unfiltered client gets posture samples')
        # ping
        r = await command(cracks_only, {'type': 'ping', 'id': 'p'})
        check(r == {'type': 'reply', 'id': 'p', 'ok': True, 'result': 'pong'}, f'ping: {r}')
        # subscribe: posture of the clip only, and replay from before the crack
        r = await command(cracks_only, {'type': 'subscribe', 'id': 's', 'since': start,
                                        'kinds': ['crack', 'posture'],
                                        'sensors': [clip.address, sound.address]})
        check(r == {'type': 'reply', 'id': 's', 'ok': True, 'result': 'ok'}, f'subscribe: {r}')
        cracks_only.last_seq = start   # asked for again: the numbering restarts at since
        again = await cracks_only.wait_for(lambda m: m['type'] == 'event' and
                                           m.get('intensity') == 41, 5, 'the crack replayed')
        check(again['seq'] == got['seq'], f'replayed from since: {again} vs {got}')
        await hold(env, clip, 0, 0.6)
        post = await cracks_only.wait_for(lambda m: m['type'] == 'posture', 5, 'a posture sample')
        check(post['sensor'] == clip.address, f'posture of the subscribed sensor: {post}')
        # bad subscribe: refused, the old filter stays
        r = await command(cracks_only, {'type': 'subscribe', 'id': 'b', 'kinds': ['nope']})
        check(r.get('ok') is False and r.get('code') == 'bad-command', f'bad kinds: {r}')
        r = await command(cracks_only, {'type': 'subscribe', 'id': 'c', 'sensors': 'x'})
        check(r.get('code') == 'bad-command', f'bad sensors: {r}')
    # bad filters on connect: an error naming them, then the close
    for query, code in (('?kinds=crack,bogus', 'bad-kinds'), ('?kinds=', 'bad-kinds'),
                        ('?sensors=C0:FF:EE', 'bad-sensors')):
        async with await Feed.open(env.port, query) as f:
            got = await f.expect_closed(5)
            errors = [m for m in got if m['type'] == 'error']
            check(len(errors) == 1 and errors[0]['code'] == code, f'{query}: {got}')
