"""A message's numbers stored as one row (`telemetry_rows`), its other readings and later keys at a stored timestamp
as rows of `telemetry_points`: every reader sees each reading once, whichever table holds it."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from app.ingest.latest import recover_latest
from app.ingest.payload import Message, Value
from app.ingest.writer import Inbound
from app.models.schemas import Principal
from app.platform import Platform
from tests.conftest import NewTenant
from tests.ingest.conftest import copy_path
from tests.storage.conftest import new_device, owner_scalar
from tests.support import roll_up

pytestmark = pytest.mark.native_storage
__all__ = ['copy_path']

PLACES = """
SELECT 'rows' AS home, count(*) FROM telemetry_rows r JOIN telemetry_series s ON s.id = r.series_id
WHERE s.device_id = :d
UNION ALL
SELECT 'points', count(*) FROM telemetry_points p JOIN telemetry_series s ON s.id = p.series_id
WHERE s.device_id = :d"""


async def send(platform: Platform, principal: Principal, device_id: object, *messages: Message) -> None:
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    await platform.writer.submit(Inbound(principal.tenant_id, device_id, list(messages),  # type: ignore[arg-type]
                                         datetime.now(UTC), done=done))
    await asyncio.wait_for(done, timeout=30)


async def places(platform: Platform, device_id: object) -> dict[str, int]:
    async with platform.db.system() as session:
        return {str(home): int(count) for home, count in await session.execute(text(PLACES), {'d': device_id})}


async def test_numbers_are_a_row_per_message_and_every_reader_sees_each_reading_once(
        copy_path: bool, storage: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    await send(storage, admin, device.id, *[
        Message(minute + timedelta(seconds=10 * i), None,
                {'temperature': 20.0 + i, 'humidity': 40 + i, 'door': 'open' if i % 2 else 'closed', 'ok': True})
        for i in range(3)])
    assert await places(storage, device.id) == {'rows': 3, 'points': 6}  # text and boolean: a row per reading
    assert storage.writer.copies_directly is copy_path
    # a later message at a stored timestamp with one key new and one stored: the new one lands beside the row
    await send(storage, admin, device.id, Message(minute, None, {'pressure': 1013.0, 'temperature': 99.0}))
    assert await places(storage, device.id) == {'rows': 3, 'points': 7}
    state = await storage.devices.get(admin, device.id)
    assert (state.readings_stored, state.readings_duplicate) == (13, 1)
    page = await storage.telemetry.raw(admin, device.id, start=minute, end=minute + timedelta(minutes=1))
    # key ids in the order the keys came: the first four sorted by name, then pressure
    expected: list[tuple[timedelta, str, object]] = [(timedelta(0), 'pressure', 1013.0)]
    for i, door in enumerate(('closed', 'open', 'closed')):
        expected[i * 5:i * 5] = [(timedelta(seconds=10 * i), key, value) for key, value in (
            ('door', door), ('humidity', 40.0 + i), ('ok', True), ('temperature', 20.0 + i))]
    assert [(p.ts - minute, p.key, p.value) for p in page.points] == expected
    paged, cursor = [], None  # the same page by page, two readings at a time: the cursor falls inside a row
    while True:
        part = await storage.telemetry.raw(admin, device.id, start=minute, end=minute + timedelta(minutes=1),
                                           limit=2, cursor=cursor)
        paged += part.points
        cursor = part.next_cursor
        if cursor is None:
            break
    assert paged == page.points
    lines = [line async for chunk in await storage.export.csv(
        admin, device.id, start=minute, end=minute + timedelta(minutes=1), keys=['humidity', 'pressure'])
        for line in chunk.decode().splitlines()]
    assert [line.split(',')[1:] for line in lines[1:]] == [['humidity', '40.0'], ['pressure', '1013.0'],
                                                           ['humidity', '41.0'], ['humidity', '42.0']]
    async with storage.db.tenant(admin.tenant_id) as session:  # through the view, as a tenant
        counted: dict[str, int] = dict((await session.execute(text(
            'SELECT k.name, count(*) FROM telemetry t JOIN telemetry_keys k ON k.id = t.key_id '
            'WHERE t.device_id = :d GROUP BY 1'), {'d': device.id})).all())
    assert counted == {'temperature': 3, 'humidity': 3, 'door': 3, 'ok': 3, 'pressure': 1}
    await roll_up(storage)
    rolled = await storage.telemetry.aggregate(admin, device.id, start=minute, end=minute + timedelta(minutes=1),
                                               bucket_s=60, function='avg', keys=['temperature', 'pressure'])
    assert [(p.key, p.value) for p in rolled] == [('pressure', 1013.0), ('temperature', 21.0)]
    async with storage.db.system() as session:
        rollup = (await session.execute(text(
            "SELECT count, sum, min, max, last FROM telemetry_1m m JOIN telemetry_keys k ON k.id = m.key_id "
            "WHERE m.device_id = :d AND k.name = 'humidity'"), {'d': device.id})).one()
    assert tuple(rollup) == (3, 123.0, 40.0, 42.0, 42.0)


async def test_a_key_stored_in_both_tables_in_one_minute_rolls_up_once(
        storage: Platform, new_tenant: NewTenant) -> None:
    """One key's minute with readings in a device's rows and beside them (a later message at a stored timestamp):
    one rollup row, with the newest reading as `last` whichever table holds it."""
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    await send(storage, admin, device.id, Message(minute, None, {'a': 1.0}),
               Message(minute + timedelta(seconds=30), None, {'a': 2.0, 'b': 5.0}))
    await send(storage, admin, device.id, Message(minute + timedelta(seconds=30), None, {'b': 6.0, 'c': 7.0}),
               Message(minute, None, {'b': 4.0}))
    assert await places(storage, device.id) == {'rows': 2, 'points': 2}  # c at :30 and b at :00, beside the rows
    await roll_up(storage)
    async with storage.db.system() as session:
        rolled = {name: tuple(values) for name, *values in await session.execute(text(
            'SELECT k.name, m.count, m.sum, m.min, m.max, m.last FROM telemetry_1m m '
            'JOIN telemetry_keys k ON k.id = m.key_id WHERE m.device_id = :d'), {'d': device.id})}
    assert rolled == {'a': (2, 3.0, 1.0, 2.0, 2.0), 'b': (2, 9.0, 4.0, 5.0, 5.0), 'c': (1, 7.0, 7.0, 7.0, 7.0)}


async def test_a_device_switching_between_payloads_keeps_every_value_at_its_key(
        copy_path: bool, storage: Platform, new_tenant: NewTenant) -> None:
    """Rows of one device with different key sets, in turn and in other orders, in one batch and across batches (the
    encoder keeps a row start per key set): each value read back at its own key."""
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    minute = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=10)
    shapes: list[dict[str, float | str]] = [{'t': 1.0, 'h': 2.0}, {'t': 1.0, 'h': 2.0, 'battery': 3.0},
                                            {'h': 2.0, 't': 1.0}, {'t': 1.0, 'mode': 'eco'}, {'battery': 3.0}]
    sent: list[tuple[timedelta, str, Value]] = []
    for batch in range(2):
        messages = []
        for turn in range(10):
            at = timedelta(seconds=batch * 100 + turn * 5)
            readings: dict[str, Value] = {
                key: value if isinstance(value, str) else value + 10 * turn + 1000 * batch
                for key, value in shapes[(turn + batch) % len(shapes)].items()}
            messages.append(Message(minute + at, None, readings))
            sent += [(at, key, value) for key, value in readings.items()]
        await send(storage, admin, device.id, *messages)
    page = await storage.telemetry.raw(admin, device.id, start=minute, end=minute + timedelta(minutes=5))
    assert sorted((p.ts - minute, p.key, p.value) for p in page.points) == sorted(sent)
    assert await places(storage, device.id) == {'rows': 20, 'points': 4}  # the text ones beside the rows


async def test_latest_values_are_recovered_from_rows_for_a_key_the_newest_row_lacks(
        storage: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    now = datetime.now(UTC).replace(microsecond=0)
    await send(storage, admin, device.id, Message(now - timedelta(minutes=3), None, {'load': 1.0, 'rare': 9.0}),
               Message(now - timedelta(minutes=2), None, {'load': 2.0}),
               Message(now - timedelta(minutes=1), None, {'load': 3.0, 'mode': 'eco'}))
    await storage.writer.stop()  # everything written, latest values too
    async with storage.db.system() as session:
        await session.execute(text('DELETE FROM latest_values WHERE device_id = :d'), {'d': device.id})
    await recover_latest(storage.db)
    latest = {value.key: value.value for value in await storage.telemetry.latest(admin, device.id)}
    assert latest == {'load': 3.0, 'rare': 9.0, 'mode': 'eco'}
    await storage.writer.start()


async def test_readings_written_through_the_view_keep_one_place_each(
        storage: Platform, new_tenant: NewTenant) -> None:
    """Hand-written SQL and imports insert and delete through the `telemetry` view, one reading at a time."""
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=1)
    insert = text('INSERT INTO telemetry (tenant_id, device_id, key_id, ts, value, text_value) '
                  'VALUES (:t, :d, (SELECT id FROM telemetry_keys WHERE tenant_id = :t AND name = :k), :ts, :v, :s)')
    async with storage.db.tenant(admin.tenant_id) as session:
        await session.execute(text("INSERT INTO telemetry_keys (tenant_id, name) VALUES (:t, 'x'), (:t, 'y'), "
                                   "(:t, 'z')"), {'t': admin.tenant_id})
        for key, value, label in (('x', 1.0, None), ('y', 2.0, None), ('z', None, 'on')):
            await session.execute(insert, {'t': admin.tenant_id, 'd': device.id, 'k': key, 'ts': ts, 'v': value,
                                           's': label})
    assert await places(storage, device.id) == {'rows': 1, 'points': 2}  # x's row; y beside it; z a text
    with pytest.raises(Exception, match='duplicate'):
        async with storage.db.tenant(admin.tenant_id) as session:
            await session.execute(insert, {'t': admin.tenant_id, 'd': device.id, 'k': 'x', 'ts': ts, 'v': 5.0,
                                           's': None})
    await send(storage, admin, device.id, Message(ts, None, {'x': 7.0, 'y': 8.0, 'w': 3.0}))
    assert (await storage.devices.get(admin, device.id)).readings_duplicate == 2  # only w is new
    async with storage.db.tenant(admin.tenant_id) as session:
        await session.execute(text(
            "DELETE FROM telemetry WHERE device_id = :d AND key_id IN (SELECT id FROM telemetry_keys WHERE name "
            "IN ('x', 'y'))"), {'d': device.id})
        left: dict[str, str] = dict((await session.execute(text(
            'SELECT k.name, coalesce(t.value::text, t.text_value) FROM telemetry t JOIN telemetry_keys k '
            'ON k.id = t.key_id WHERE t.device_id = :d'), {'d': device.id})).all())
    assert left == {'z': 'on', 'w': '3'}


async def test_numbers_as_old_as_the_previous_layout_are_checked_against_it(
        storage: Platform, new_tenant: NewTenant) -> None:
    """After the upgrade to `telemetry_rows` a redelivered message may duplicate readings stored one per row: up to
    the moment the migration recorded, numbers are checked against `telemetry_points` too."""
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    ts = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
    await storage.writer.stop()
    async with storage.db.system() as session:
        await session.execute(text("INSERT INTO telemetry_keys (tenant_id, name) VALUES (:t, 'old')"),
                              {'t': admin.tenant_id})
        await session.execute(text("""
            WITH s AS (INSERT INTO telemetry_series (tenant_id, device_id, key_id)
                       SELECT :t, :d, id FROM telemetry_keys WHERE tenant_id = :t AND name = 'old' RETURNING id)
            INSERT INTO telemetry_points (tenant_id, series_id, ts, value) SELECT :t, id, :ts, 1.0 FROM s"""),
            {'t': admin.tenant_id, 'd': device.id, 'ts': ts})
        await session.execute(text('INSERT INTO telemetry_rows_since VALUES (now())'))
    try:
        await storage.writer.start()  # reads the moment at connecting
        await send(storage, admin, device.id, Message(ts, None, {'old': 1.5, 'new': 2.0}),
                   Message(ts + timedelta(seconds=1), None, {'old': 3.0}))
        state = await storage.devices.get(admin, device.id)
        assert (state.readings_stored, state.readings_duplicate) == (2, 1)
        page = await storage.telemetry.raw(admin, device.id, start=ts, end=ts + timedelta(minutes=1))
        assert [(p.ts - ts, p.key, p.value) for p in page.points] == [
            (timedelta(0), 'old', 1.0), (timedelta(0), 'new', 2.0), (timedelta(seconds=1), 'old', 3.0)]
    finally:
        await owner_scalar(storage, 'DELETE FROM telemetry_rows_since RETURNING 1')
