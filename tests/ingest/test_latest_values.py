"""Latest values: collapsed in memory (newest timestamp wins), written with idle batches, recovered after a crash."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
from sqlalchemy import text

from app.ingest.batch_items import Item
from app.ingest.latest import recover_latest
from app.ingest.payload import Message
from app.ingest.writer import BatchWriter, Inbound
from app.platform import Platform
from tests.conftest import NewTenant
from tests.ingest.test_mqtt_ingest import make_device

# Within every raw retention: with TimescaleDB its retention policy (a background job) drops older chunks.
T0 = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=1)


async def write_in_turn(platform: Platform, tenant_id: UUID, device_id: UUID, *messages: list[Message]) -> None:
    """Each list of messages as one inbound item, each committed before the next is offered."""
    await platform.writer.start()
    try:
        for batch in messages:
            inbound = Inbound(tenant_id, device_id, batch, datetime.now(UTC))
            inbound.done = asyncio.get_running_loop().create_future()
            await platform.writer.submit(inbound)
            await inbound.done
    finally:
        await platform.writer.stop()


async def test_latest_is_the_newest_reading_by_timestamp_whatever_the_arrival_order(
    platform: Platform, new_tenant: NewTenant,
) -> None:
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    await write_in_turn(platform, admin.tenant_id, device.id, *(  # a late one, then newer, then late
        [Message(T0 + timedelta(seconds=seconds), None, {'load': value, 'mode': 'x'})]
        for seconds, value in ((10, 1.0), (3, 2.0), (11, 3.0), (5, 4.0))))
    latest = {value.key: (value.ts, value.value) for value in await platform.telemetry.latest(admin, device.id)}
    assert latest == {'load': (T0 + timedelta(seconds=11), 3.0), 'mode': (T0 + timedelta(seconds=11), 'x')}
    page = await platform.telemetry.raw(admin, device.id, start=T0, end=T0 + timedelta(minutes=1), keys=['load'])
    assert [point.value for point in page.points] == [2.0, 4.0, 1.0, 3.0]  # every late reading at its own time


async def test_latest_values_lost_in_a_crash_are_recomputed_from_telemetry(
    platform: Platform, new_tenant: NewTenant,
) -> None:
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    now = datetime.now(UTC)
    async with platform.db.system() as session:
        key_id = (await session.execute(text(
            'INSERT INTO telemetry_keys (tenant_id, name) VALUES (:t, :n) RETURNING id'),
            {'t': admin.tenant_id, 'n': 'temperature'})).scalar_one()
        for minutes, value in ((3, 20.0), (1, 23.5), (2, 21.0)):
            await session.execute(text(
                'INSERT INTO telemetry (tenant_id, device_id, key_id, ts, value) VALUES (:t, :d, :k, :ts, :v)'),
                {'t': admin.tenant_id, 'd': device.id, 'k': key_id, 'ts': now - timedelta(minutes=minutes), 'v': value})
        await session.execute(text('UPDATE devices SET last_seen = :at WHERE id = :d'), {'at': now, 'd': device.id})
    assert await platform.telemetry.latest(admin, device.id) == []  # the crash: never written
    await recover_latest(platform.db)
    latest = await platform.telemetry.latest(admin, device.id)
    assert [(v.key, v.value) for v in latest] == [('temperature', 23.5)]


async def test_under_load_latest_values_and_counters_are_written_aside_and_end_exact(
    platform: Platform, new_tenant: NewTenant,
) -> None:
    """A backlog of small batches: the flushes run on the second connection while batches go on, and what they
    leave is exactly what an idle writer would have written."""
    admin = (await new_tenant()).principal
    devices = [await make_device(platform, admin) for _ in range(3)]
    writer = BatchWriter(platform.writer._dsn, platform.bus, max_rows=20, latest_interval_s=0.0)
    items: list[Item] = []
    waits = []
    for index in range(600):
        device = devices[index % 3]
        inbound = Inbound(admin.tenant_id, device.id, [Message(T0 + timedelta(seconds=index), None,
                                                                {'load': float(index)})], datetime.now(UTC))
        inbound.done = asyncio.get_running_loop().create_future()
        waits.append(inbound.done)
        items.append(inbound)
    for start in range(0, len(items), 20):  # one backlog of socket reads: the queue is never idle until the end
        writer.offer(items[start:start + 20])
    await writer.start()
    try:
        await asyncio.wait_for(asyncio.gather(*waits), 60)
    finally:
        await writer.stop()
    assert writer.state.aside_writes > 0
    assert not writer.state.pending
    for offset, device in enumerate(devices):
        latest = await platform.telemetry.latest(admin, device.id)
        newest = max(index for index in range(600) if index % 3 == offset)
        assert [(value.ts, value.value) for value in latest] == [(T0 + timedelta(seconds=newest), float(newest))]
        state = await platform.devices.get(admin, device.id)
        assert (state.messages_received, state.readings_stored, state.status) == (200, 200, 'online')


async def test_every_kind_of_value_is_written_as_latest_with_its_own_timestamp(
    platform: Platform, new_tenant: NewTenant,
) -> None:
    """The flush encodes latest values itself (binary COPY): numbers, text, booleans and JSON, keys of one
    message sharing a timestamp and a key whose newest reading came in another message."""
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    first = Message(T0, None, {'load': 1.5, 'count': 7, 'door': 'open', 'alarm': True,
                               'pos': {'lat': 52.1, 'tags': ['a']}, 'list': [1, 2]})
    later = Message(T0 + timedelta(seconds=30), None, {'alarm': False, 'load': -0.25})
    await write_in_turn(platform, admin.tenant_id, device.id, [first, later])
    latest = {value.key: (value.ts, value.value) for value in await platform.telemetry.latest(admin, device.id)}
    later_ts = T0 + timedelta(seconds=30)
    assert latest == {'load': (later_ts, -0.25), 'count': (T0, 7.0), 'door': (T0, 'open'), 'alarm': (later_ts, False),
                      'pos': (T0, {'lat': 52.1, 'tags': ['a']}), 'list': (T0, [1, 2])}


async def test_latest_values_not_yet_written_are_read_through(platform: Platform, new_tenant: NewTenant) -> None:
    """Under load `latest_values` stands up to a flush interval behind: the API, device and fleet pages merge what
    the writer holds (taken for a flush being written, or still pending) over it, newest timestamp winning."""
    admin, other = (await new_tenant()).principal, (await new_tenant()).principal
    device = await make_device(platform, admin)
    await write_in_turn(platform, admin.tenant_id, device.id,
                        [Message(T0, None, {'load': 1.0, 'mode': 'auto', 'door': 'closed'})])
    state = platform.writer.state
    state.latest.for_device(admin.tenant_id, device.id).update({
        'load': (T0 + timedelta(seconds=10), 2.0), 'mode': (T0 - timedelta(seconds=5), 'manual')})  # a late mode
    being_written = state.take()
    state.latest.for_device(admin.tenant_id, device.id).update({
        'load': (T0 + timedelta(seconds=20), 3.0), 'door': (T0 + timedelta(seconds=5), 'open')})
    expected = {'door': (T0 + timedelta(seconds=5), 'open'), 'load': (T0 + timedelta(seconds=20), 3.0),
                'mode': (T0, 'auto')}
    latest = await platform.telemetry.latest(admin, device.id)
    assert {value.key: (value.ts, value.value) for value in latest} == expected
    assert [value.key for value in latest] == ['door', 'load', 'mode']
    fleet = await platform.telemetry.latest_for_devices(admin, [device.id])
    assert {value.key: (value.ts, value.value) for value in fleet[device.id]} == expected
    assert await platform.telemetry.latest_for_devices(other, [device.id]) == {device.id: []}
    state.put_back(being_written)  # a flush that failed: its values pending again, still read through
    latest = await platform.telemetry.latest(admin, device.id)
    assert {value.key: (value.ts, value.value) for value in latest} == expected
    await write_in_turn(platform, admin.tenant_id, device.id)  # the writer's stop writes them
    assert state.unwritten_latest(admin.tenant_id, device.id) == {}
    latest = await platform.telemetry.latest(admin, device.id)
    assert {value.key: (value.ts, value.value) for value in latest} == expected


async def test_a_value_is_read_once_its_batch_is_committed(
    platform: Platform, new_tenant: NewTenant, database_url: str,
) -> None:
    """Latest values are taken in when a batch is encoded, before it commits: a reader waits (up to a second) for
    the commit of a batch holding the device's newest values, and without it sees the stored ones: it never sees a
    value its history does not hold yet."""
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    await write_in_turn(platform, admin.tenant_id, device.id, [Message(T0, None, {'load': 1.0})])
    lock = await asyncpg.connect(database_url)
    await platform.writer.start()
    try:
        for wait_for_it in (False, True):
            value = 2.0 + wait_for_it
            inbound = Inbound(admin.tenant_id, device.id, [Message(T0 + timedelta(seconds=value), None,
                                                                   {'load': value})], datetime.now(UTC))
            inbound.done = asyncio.get_running_loop().create_future()
            async with lock.transaction():  # the batch's device counters wait for this row: so does its commit
                await lock.execute('SELECT 1 FROM devices WHERE id = $1 FOR UPDATE', device.id)
                await platform.writer.submit(inbound)
                await asyncio.sleep(0.3)
                assert not inbound.done.done()  # encoded, not committed
                reading = asyncio.create_task(platform.telemetry.latest(admin, device.id))
                if not wait_for_it:
                    assert [v.value for v in await reading] == [value - 1]  # a second passed: the stored value
            await asyncio.wait_for(inbound.done, 10)
            if wait_for_it:  # the reader waiting when the lock went: the commit came within its second
                assert [v.value for v in await reading] == [value]
            assert [v.value for v in await platform.telemetry.latest(admin, device.id)] == [value]
    finally:
        await platform.writer.stop()
        await lock.close()
