"""Aggregation tests (issue 4): the per-day record in hello and the stats command, the stored
history giving the crack-rate baseline, the record written to the state directory's database
and read again after a restart, and a damaged database set aside. Registered in suite.TESTS
like suite.py's tests."""

import asyncio
import datetime
import json
import os

import statedb
from feed import Feed
from procs import check
from suite import test
from suite_alerts import command, hold

STATE = '{tmpdir}/state'
HISTORY_DAYS = 7
PER_HOUR = 2          # cracks in every hour of each stored day: the baseline is 2 per hour


def local_date(days_ago):
    return (datetime.date.today() - datetime.timedelta(days=days_ago)).isoformat()


def stored_day(date, per_hour=0, slouch_ms_per_hour=0):
    return {'date': date, 'pop': per_hour * 24, 'click': 0, 'grind': 0, 'pops': per_hour * 24,
            'breaks': 3, 'slouch_ms': slouch_ms_per_hour * 24, 'sitting_ms': 4 * 3600 * 1000,
            'hour_cracks': [per_hour] * 24, 'hour_slouch_ms': [slouch_ms_per_hour] * 24}


def history(env):
    """Seven earlier days of the sound sensor with 2 cracks in every hour, and one day of a
    sensor that is not around (kept all the same)."""
    record = {'v': 1, 'sensors': [
        {'sensor': 'AA:00:00:00:00:09', 'days': [stored_day(local_date(3), 1)]},
        {'sensor': env.sound.address,
         'days': [stored_day(local_date(d), PER_HOUR) for d in range(HISTORY_DAYS, 0, -1)]},
    ]}
    statedb.write_days(os.path.join(env.tmpdir, 'state'), record)


def entry(stats, address):
    found = [s for s in stats['sensors'] if s['sensor'] == address]
    check(len(found) == 1, f'{address} {len(found)} times in stats {stats}')
    return found[0]


def read_record(env):
    return statedb.read_days(os.path.join(env.tmpdir, 'state'))


def record_day(record, address, date):
    s = [x for x in record['sensors'] if x['sensor'] == address]
    check(len(s) == 1, f'{address} in the stored record: {record}')
    d = [x for x in s[0]['days'] if x['date'] == date]
    check(len(d) == 1, f'{date} of {address} in the stored record: {s[0]["days"]}')
    return d[0]


@test('stats-baseline-and-persistence', prepare=history, deadline=90,
      daemon_args=('--state-dir', STATE, '--disable-alerts', '', '--slouch-delay', '0.5',
                   '--calibration', '0.3'))
async def t_stats(env):
    fake, clip, sound = env.fake, env.clip, env.sound
    today = local_date(0)
    await env.streaming()
    async with await Feed.open(env.port) as f:
        first = await f.next(what='hello')
        st = first.get('stats')
        check(isinstance(st, dict) and isinstance(st.get('ts'), int) and 'type' not in st,
              f'hello.stats {st}')
        other = entry(st, 'AA:00:00:00:00:09')
        check([d['date'] for d in other['days']] == [local_date(3)], f'other sensor {other}')
        s = entry(st, sound.address)
        check(s['baseline_per_hour'] == [float(PER_HOUR)] * 24,
              f'baseline from 7 stored days of 2 per hour: {s["baseline_per_hour"]}')
        dates = [d['date'] for d in s['days']]
        check(dates[-HISTORY_DAYS:] == [local_date(d) for d in range(1, HISTORY_DAYS + 1)],
              f'stored days, newest first: {dates}')
        w = s['week']
        check(w['previous_cracks'] == 48 and w['previous_days'] == 1
              and w['cracks'] >= 6 * 48 and w['cracks_change_pct'] is not None,
              f'week over week {w}')
        primed = s['today']['cracks']

        # crack by crack: the rate alert comes at 3 x the usual 2 per hour = 6 in the hour
        kinds = ['pop', 'click', 'grind']
        alert = None
        for i in range(8):
            fake.send_crack(sound, kind=kinds[i % 3], intensity=50, duration_ms=20, count=i % 2 + 1)
            await asyncio.sleep(0.05)
            await f.drain(0.05)
            alerts = [m for m in f.messages if m['type'] == 'event' and m.get('kind') == 'alert'
                      and m.get('rule') == 'crack-rate']
            if alerts:
                alert = alerts[0]
                break
        check(alert is not None and alert['state'] == 'raised'
              and 'more than usual' in alert['message'], f'crack-rate alert {alert}')
        cracks = [m for m in f.messages if m['type'] == 'event' and m.get('kind') == 'crack'
                  and m['seq'] < alert['seq']]
        check(primed + len(cracks) == 6,
              f'the alert came after {primed} priming + {len(cracks)} cracks, not at 6')
        sent = {k: sum(1 for m in cracks if m['crack'] == k) for k in kinds}

        # a slouch of about 2 s, then a posture break (leaning far forward for 3.5 s)
        await hold(env, clip, 0, 1.0)
        await hold(env, clip, 28, 2.5)
        await hold(env, clip, 0, 1.0)
        await hold(env, clip, 60, 3.6)
        await hold(env, clip, 0, 1.0)
        # both leans are forward beyond the threshold: two slouches
        def ends():
            return [m for m in f.messages if m['type'] == 'event' and m.get('kind') == 'slouch'
                    and m.get('phase') == 'end']
        for _ in range(30):
            if len(ends()) >= 2:
                break
            await f.drain(0.1)
        check(len(ends()) == 2, f'slouch ends: {ends()}')
        slouched = sum(m['duration_ms'] for m in f.messages if m['type'] == 'event'
                       and m.get('kind') == 'slouch' and m.get('phase') == 'end')

        r = await command(f, {'type': 'stats', 'id': 'all'})
        check(r.get('ok') is True and r.get('result') == 'ok' and 'stats' in r, f'stats reply {r}')
        t = entry(r['stats'], sound.address)['today']
        check(t['date'] == today and t['pop'] + t['click'] + t['grind'] == t['cracks']
              and t['cracks'] == primed + len(cracks)
              and t['click'] == sent['click'] and t['grind'] == sent['grind']
              and sum(t['hours']['cracks']) == t['cracks'], f'sound sensor today {t}')
        c = entry(r['stats'], clip.address)['today']
        check(c['breaks'] == 1, f'one posture break: {c}')
        r = await command(f, {'type': 'stats', 'id': 2, 'sensor': clip.address.lower()})
        check(r['ok'] and [x['sensor'] for x in r['stats']['sensors']] == [clip.address],
              f'stats of one sensor: {r}')
        r = await command(f, {'type': 'stats', 'id': 3, 'sensor': '00:00:00:00:00:01'})
        check(r['ok'] and r['stats']['sensors'] == [], f'stats of a sensor never seen: {r}')
        r = await command(f, {'type': 'stats', 'id': 4, 'sensor': 'clip'})
        check(r == {'type': 'reply', 'id': 4, 'ok': False, 'code': 'bad-command',
                    'message': 'stats takes an optional "sensor": AA:BB:CC:DD:EE:FF'},
              f'a bad sensor: {r}')

    # SIGTERM writes the record; the next start reads it
    env.restart_daemon()
    record = read_record(env)
    day = record_day(record, clip.address, today)
    check(day['slouch_ms'] == slouched and 3000 <= slouched <= 9000,
          f'slouch_ms {day["slouch_ms"]} for slouches of {slouched} ms in all')
    check(day['breaks'] == 1 and day['sitting_ms'] >= 5000
          and sum(day['hour_slouch_ms']) == day['slouch_ms'], f'clip today, stored: {day}')
    sday = record_day(record, sound.address, today)
    check(sday['click'] == sent['click'] and sday['grind'] == sent['grind'],
          f'sound today, stored: {sday} (sent {sent})')
    check(record_day(record, sound.address, local_date(HISTORY_DAYS))['pop'] == 48
          and record_day(record, 'AA:00:00:00:00:09', local_date(3))['pop'] == 24,
          'the stored history is kept')
    await env.streaming(prime=False)
    async with await Feed.open(env.port) as f:
        st = (await f.next(what='hello'))['stats']
        t = entry(st, sound.address)['today']
        check(t['click'] == sent['click'] and t['grind'] == sent['grind'],
              f'today after the restart {t}')
        check(entry(st, clip.address)['today']['breaks'] == 1, 'breaks after the restart')
    check('stats: 3 sensor(s) of history since' in env.daemon.stderr_text(),
          'the log names the history read at start')


def broken_database(env):
    os.makedirs(os.path.join(env.tmpdir, 'state'))
    with open(os.path.join(env.tmpdir, 'state', 'history.db'), 'w') as fh:
        fh.write('{"v":1,"sensors":[{"sensor":"AA:00:00:00:00:09","days":[{"date":"2025-13-01"'
                 ' and this is not a database either, whatever its length')


@test('stats-damaged-database-set-aside', prepare=broken_database,
      daemon_args=('--state-dir', STATE))
async def t_stats_broken(env):
    fake, sound = env.fake, env.sound
    await env.streaming()
    async with await Feed.open(env.port) as f:
        st = (await f.next(what='hello'))['stats']
        check('AA:00:00:00:00:09' not in [s['sensor'] for s in st['sensors']],
              f'a damaged database is not used: {st}')
    state = os.path.join(env.tmpdir, 'state')
    check(os.path.exists(os.path.join(state, 'history.db.bad')),
          f'the damaged database is moved aside: {os.listdir(state)}')
    check('history.db is damaged (file is not a database)' in env.daemon.stderr_text(),
          'the log says why the database was not used')
    fake.send_crack(sound, kind='click', intensity=10)
    env.restart_daemon()
    day = record_day(read_record(env), sound.address, local_date(0))
    check(day['click'] == 1, f'a new database is written: {day}')
