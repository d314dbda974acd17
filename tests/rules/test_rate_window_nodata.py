"""Rate of change (stream), statistical window and no-data (scheduled, SQL over stored telemetry)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from app.services.rules.scheduled import ScheduledRules
from tests.rules.conftest import Rig, at


async def test_rate_of_change_per_minute_over_a_window(rig: Rig) -> None:
    await rig.rule(condition={'type': 'rate', 'key': 'level', 'op': '>', 'per_minute': 5, 'window_s': 120})
    await rig.send(0, level=10)
    await rig.send(60, level=14)  # 4/min
    assert await rig.statuses() == []
    await rig.send(120, level=22)  # (22 - 10) / 2 min = 6/min
    assert await rig.statuses() == ['active']
    await rig.send(180, level=23)  # (23 - 14) / 2 min = 4.5/min
    assert await rig.statuses() == ['cleared']


async def store(rig: Rig, key: str, points: list[tuple[datetime, float]]) -> None:
    """Stored telemetry as the batch writer leaves it (telemetry, key dictionary, latest values, last seen)."""
    tenant, device = rig.principal.tenant_id, rig.device.id
    async with rig.platform.db.system() as session:
        key_id = await session.scalar(text(
            'INSERT INTO telemetry_keys (tenant_id, name) VALUES (:t, :k) '
            'ON CONFLICT (tenant_id, name) DO UPDATE SET name = EXCLUDED.name RETURNING id'), {'t': tenant, 'k': key})
        for ts, value in points:
            await session.execute(text('INSERT INTO telemetry (tenant_id, device_id, key_id, ts, value) '
                                       'VALUES (:t, :d, :k, :ts, :v)'), {'t': tenant, 'd': device, 'k': key_id,
                                                                         'ts': ts, 'v': value})
        newest = max(ts for ts, _ in points)
        await session.execute(text(
            'INSERT INTO latest_values (tenant_id, device_id, key_id, ts, value) VALUES (:t, :d, :k, :ts, 0) '
            'ON CONFLICT (device_id, key_id) DO UPDATE SET ts = EXCLUDED.ts'),
            {'t': tenant, 'd': device, 'k': key_id, 'ts': newest})
        await session.execute(text('UPDATE devices SET last_seen = :ts WHERE id = :d'), {'ts': newest, 'd': device})


def scheduler(rig: Rig, now: list[datetime]) -> ScheduledRules:
    return ScheduledRules(rig.platform.db, rig.alarms, rig.maintenance, clock=lambda: now[0])


async def test_window_average_raises_and_clears(rig: Rig) -> None:
    await rig.rule(condition={'type': 'window', 'key': 'temp', 'stat': 'avg', 'minutes': 10, 'op': '>',
                              'value': 50})
    await store(rig, 'temp', [(at(-300), 40), (at(-200), 60), (at(-100), 70)])  # avg 56.7 in the last 10 min
    now = [at(0)]
    job = scheduler(rig, now)
    await job.run_once()
    (alarm,) = await rig.alarms.find(rig.principal)
    assert (alarm.status, alarm.threshold, alarm.value) == ('active', 'avg(temp, 10 min) > 50', '56.6667')
    now[0] = at(500)  # only the 70 at -100 s... and later readings: add a cool one
    await store(rig, 'temp', [(at(450), 10)])  # window (-100, 500]: 70 and 10, avg 40
    await job.run_once()
    assert await rig.statuses() == ['cleared']


async def test_count_window_sees_silence_as_zero(rig: Rig) -> None:
    await rig.rule(condition={'type': 'window', 'key': 'pulse', 'stat': 'count', 'minutes': 5, 'op': '<',
                              'value': 2})
    await store(rig, 'pulse', [(at(-1000), 1)])
    await scheduler(rig, [at(0)]).run_once()
    assert await rig.statuses() == ['active']


async def test_no_data_for_the_device_and_for_one_key(rig: Rig) -> None:
    silent_device = await rig.rule(name='Device silent', condition={'type': 'no_data', 'minutes': 15})
    silent_key = await rig.rule(name='Key silent', condition={'type': 'no_data', 'key': 'door', 'minutes': 5})
    await store(rig, 'door', [(at(-600), 1)])
    await store(rig, 'temp', [(at(-60), 20)])
    now = [at(0)]
    job = scheduler(rig, now)
    await job.run_once()
    status = {alarm.rule_id: alarm.status for alarm in await rig.alarms.find(rig.principal)}
    assert status == {silent_key: 'active'}
    now[0] = at(16 * 60)
    await job.run_once()
    status = {alarm.rule_id: alarm.status for alarm in await rig.alarms.find(rig.principal)}
    assert status == {silent_key: 'active', silent_device: 'active'}
    await store(rig, 'door', [(at(16 * 60 - 1), 0)])
    await job.run_once()
    status = {alarm.rule_id: alarm.status for alarm in await rig.alarms.find(rig.principal)}
    assert status == {silent_key: 'cleared', silent_device: 'cleared'}


async def test_two_instances_do_not_double_fire(rig: Rig) -> None:
    await rig.rule(condition={'type': 'no_data', 'minutes': 1})
    await store(rig, 'temp', [(at(-600), 20)])
    now = [at(0)]
    await asyncio.gather(*(scheduler(rig, now).run_once() for _ in range(4)))
    assert [status for status, _ in await rig.open_alarms()] == ['active']
    mine = [n.transition for n in rig.notifier.committed if n.tenant_id == rig.principal.tenant_id]
    assert mine == ['raised']


async def test_a_condition_that_holds_round_after_round_is_one_raise(rig: Rig) -> None:
    await rig.rule(name='Silent', condition={'type': 'no_data', 'minutes': 5})
    await rig.rule(name='Warm', condition={'type': 'window', 'key': 'temp', 'stat': 'max', 'minutes': 60, 'op': '>',
                                           'value': 50})
    await store(rig, 'temp', [(at(-900), 60)])
    now = [at(0)]
    job = scheduler(rig, now)
    for step in range(4):  # four rounds, 10 s apart, the conditions unchanged
        now[0] = at(10 * step)
        await job.run_once()
    await store(rig, 'temp', [(at(35), 80)])  # still silent? no: it spoke; and warmer
    now[0] = at(40)
    await job.run_once()
    alarms = {alarm.rule_name: alarm for alarm in await rig.alarms.find(rig.principal)}
    assert (alarms['Silent'].status, alarms['Silent'].count, alarms['Silent'].last_seen) == ('cleared', 1, at(30))
    assert (alarms['Warm'].status, alarms['Warm'].count, alarms['Warm'].value) == ('active', 1, '80')
    assert alarms['Warm'].last_seen == at(40)
    mine = [n.transition for n in rig.notifier.committed]
    assert sorted(mine) == ['cleared', 'raised', 'raised']


async def test_no_data_waits_for_the_device_state_to_be_written(rig: Rig, database_url: str) -> None:
    """Last-seen times and latest values written 2 minutes behind (a slow flush of many devices): a device heard
    from 90 s ago by that state may have spoken since, so a 1-minute no-data rule waits."""
    from tests.ingest.test_state_mark import instance_row

    silent = await rig.rule(name='Silent', condition={'type': 'no_data', 'minutes': 1})
    await store(rig, 'temp', [(at(-90), 20)])
    job = scheduler(rig, [at(0)])
    async with instance_row(database_url, 'slow-flush', datetime.now(UTC) - timedelta(seconds=120)):
        await job.run_once()
        assert await rig.alarms.find(rig.principal) == []
    await job.run_once()
    assert [(alarm.rule_id, alarm.status) for alarm in await rig.alarms.find(rig.principal)] == [(silent, 'active')]


async def test_no_data_is_held_while_this_instances_state_report_is_not_current(rig: Rig) -> None:
    """After a database outage, until this instance has reported again, its unwritten news is nowhere in the lag:
    a no-data rule neither raises nor clears meanwhile."""
    silent = await rig.rule(name='Silent', condition={'type': 'no_data', 'minutes': 1})
    await store(rig, 'temp', [(at(-90), 20)])
    current = [False]
    job = ScheduledRules(rig.platform.db, rig.alarms, rig.maintenance, clock=lambda: at(0),
                         state_current=lambda: current[0])
    await job.run_once()
    assert await rig.alarms.find(rig.principal) == []
    current[0] = True
    await job.run_once()
    assert [(alarm.rule_id, alarm.status) for alarm in await rig.alarms.find(rig.principal)] == [(silent, 'active')]
