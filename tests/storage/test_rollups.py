"""1-minute and 1-hour rollups: incremental, exact, and right about late, out-of-order and duplicate rows."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import text

from app.models.storage import RetentionSettings
from app.platform import Platform
from app.services.storage.maintenance import StorageMaintenance
from app.services.storage.native_sql import ROWS_TABLE
from app.services.storage.rollups import BY_BLOCKS, NEW_PARTS, PART, RollupRun, Steps
from tests.conftest import NewTenant
from tests.storage.conftest import new_device, store
from tests.support import roll_up

ROLLUP = 'SELECT bucket, count, sum, min, max, last FROM {table} WHERE device_id = :device ORDER BY bucket'


async def rollup(platform: Platform, table: str, device_id: UUID) -> list[tuple[object, ...]]:
    async with platform.db.system() as session:
        return [tuple(row) for row in await session.execute(text(ROLLUP.format(table=table)), {'device': device_id})]


async def test_rollups_follow_new_late_and_duplicate_rows(storage: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    await store(storage, admin, device.id, [(hour + timedelta(seconds=i), 'power', float(i)) for i in range(120)]
                + [(hour, 'mode', 'eco')])  # text: not rolled up
    await roll_up(storage)
    assert await rollup(storage, 'telemetry_1m', device.id) == [
        (hour, 60, sum(range(60)), 0.0, 59.0, 59.0),
        (hour + timedelta(minutes=1), 60, sum(range(60, 120)), 60.0, 119.0, 119.0)]
    assert await rollup(storage, 'telemetry_1h', device.id) == [(hour, 120, sum(range(120)), 0.0, 119.0, 119.0)]

    # Out of order (inside minute 0, after minute 1 was stored), a duplicate, and a row two days late.
    late = hour - timedelta(days=2)
    await store(storage, admin, device.id, [(hour + timedelta(seconds=30.5), 'power', 1000.0),
                                            (hour + timedelta(seconds=5), 'power', -1.0), (late, 'power', 4.0)])
    await roll_up(storage)
    minutes = await rollup(storage, 'telemetry_1m', device.id)
    assert minutes[0] == (late, 1, 4.0, 4.0, 4.0, 4.0)
    assert minutes[1] == (hour, 61, sum(range(60)) + 1000.0, 0.0, 1000.0, 59.0)  # last is by timestamp
    assert await rollup(storage, 'telemetry_1h', device.id) == [
        (late, 1, 4.0, 4.0, 4.0, 4.0), (hour, 121, sum(range(120)) + 1000.0, 0.0, 1000.0, 119.0)]
    assert await storage.storage_jobs.refresh_rollups() == RollupRun(minutes=0, hours=0)  # nothing new


async def test_rows_months_late_are_still_rolled_up(storage: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    await storage.storage.update_retention(admin, RetentionSettings(raw_days=60, minute_days=90, hour_days=400))
    await storage.storage_jobs.apply_retention()  # TimescaleDB: its policy would drop the rows before the roll-up
    device = await new_device(storage, admin)
    ancient = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(days=45)  # past the default retention
    await store(storage, admin, device.id, [(ancient, 'power', 1.0), (ancient + timedelta(seconds=10), 'power', 3.0)])
    await roll_up(storage)
    await store(storage, admin, device.id, [(ancient + timedelta(seconds=5), 'power', 7.0)])  # later still
    await roll_up(storage)
    assert await rollup(storage, 'telemetry_1m', device.id) == [(ancient, 3, 11.0, 1.0, 7.0, 3.0)]


RAW_MINUTES = """
SELECT device_id, key_id, date_bin(interval '{width}', ts, timestamptz '2000-01-01 00:00:00+00') AS bucket,
       count(*), sum(value), min(value), max(value), (array_agg(value ORDER BY ts DESC))[1]
FROM telemetry WHERE device_id = ANY(:devices) AND value IS NOT NULL GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"""
ROLLED = """
SELECT device_id, key_id, bucket, count, sum, min, max, last FROM {table}
WHERE device_id = ANY(:devices) ORDER BY 1, 2, 3"""


@pytest.mark.native_storage
async def test_a_run_merged_in_many_slices_equals_the_raw_rows_aggregated(
        storage: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    devices = [await new_device(storage, admin, f'Meter {n}') for n in range(3)]
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    job = StorageMaintenance(storage.db, rollup_steps=Steps(rest=1, slice_groups=1))  # a slice per series and minute
    for round_ in range(2):  # the second round lands in buckets the first one created, some of it out of order
        for n, device in enumerate(devices):
            for half in (range(0, 40, 2), range(1, 40, 2)):  # a bucket's rows in two transactions
                await store(storage, admin, device.id, [
                    (hour + timedelta(minutes=58, seconds=7 * i + round_ * 3), key, float(i * (n + 1) - round_ * 50))
                    for i in half for key in ('power', 'temp')])
        await roll_up(storage, job=job)
    ids = {'devices': [device.id for device in devices]}
    async with storage.db.system() as session:
        for table, width in (('telemetry_1m', '1 minute'), ('telemetry_1h', '1 hour')):
            expected = [tuple(row) for row in await session.execute(text(RAW_MINUTES.format(width=width)), ids)]
            rolled = [tuple(row) for row in await session.execute(text(ROLLED.format(table=table)), ids)]
            assert rolled == expected
    assert len({row[2] for row in expected}) == 2  # the readings spanned an hour's end: two 1-hour buckets
    assert job.rollup_runs >= 1


@pytest.mark.native_storage
async def test_new_blocks_read_in_slices_and_rows_below_them_are_all_rolled_up(
        storage: Platform, new_tenant: NewTenant) -> None:
    """A run reads the blocks added since the last run a block at a time here (from the sizes kept with the
    watermark: a new job, as after a restart, goes on from them), and the blocks before them by the index: rows of
    a transaction still open during the last run lie there, and count once."""
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    hour = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
    steps = Steps(slice_groups=1, scan_blocks=1)
    await store(storage, admin, device.id, [(hour + timedelta(seconds=i), 'power', float(i)) for i in range(300)])
    async with storage.db.system() as held_open:
        key_id = await held_open.scalar(text(
            "SELECT id FROM telemetry_keys WHERE tenant_id = :t AND name = 'power'"), {'t': admin.tenant_id})
        await held_open.execute(text(
            'INSERT INTO telemetry (tenant_id, device_id, key_id, ts, value) '
            "SELECT :t, :d, :k, CAST(:hour AS timestamptz) + i * interval '1 second' + interval '0.5 second', -i "
            'FROM generate_series(0, 299) i'), {'t': admin.tenant_id, 'd': device.id, 'k': key_id, 'hour': hour})
        await StorageMaintenance(storage.db, rollup_steps=steps).refresh_rollups()  # not the open rows yet
    await store(storage, admin, device.id, [(hour + timedelta(seconds=i + 0.25), 'power', i * 2.0)
                                            for i in range(3000)])
    await roll_up(storage, job=StorageMaintenance(storage.db, rollup_steps=steps))
    ids = {'devices': [device.id]}
    async with storage.db.system() as session:
        for table, width in (('telemetry_1m', '1 minute'), ('telemetry_1h', '1 hour')):
            expected = [tuple(row) for row in await session.execute(text(RAW_MINUTES.format(width=width)), ids)]
            assert [tuple(row) for row in await session.execute(text(ROLLED.format(table=table)), ids)] == expected
    assert sum(row[3] for row in expected) == 3600
    async with storage.db.system() as session:  # a slice is read by TID range, whatever the planner knows
        blocks = await session.scalar(text("SELECT blocks FROM storage_watermarks WHERE name = 'rollups'"))
        partition = f'{ROWS_TABLE}_p{hour:%Y%m%d}'  # where this device's numbers are
        size = blocks[partition]
        await session.execute(text(NEW_PARTS))
        await session.execute(text(BY_BLOCKS))
        plan = await session.scalar(text('EXPLAIN (FORMAT JSON) ' + PART[ROWS_TABLE].format(
            partition=partition, blocks=f" AND t.ctid >= '({size // 2},0)'::tid AND t.ctid < '({size},0)'::tid")),
            {'low': 0, 'high': 2**62})
    assert list(nodes(plan[0]['Plan'], 'Tid Range Scan'))


@pytest.mark.native_storage
async def test_a_run_reads_the_pages_of_new_rows_not_the_whole_day(storage: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    now = datetime.now(UTC)
    await store(storage, admin, device.id, [(now - timedelta(seconds=i), 'power', float(i)) for i in range(30_000)])
    await roll_up(storage)
    await store(storage, admin, device.id, [(now + timedelta(seconds=1), 'power', -1.0)])
    await roll_up(storage)
    async with storage.db.system() as session:
        newest = await session.scalar(text(f'SELECT max(ingest_xid) FROM {ROWS_TABLE}'))
        await session.execute(text('SET LOCAL max_parallel_workers_per_gather = 0'))
        await session.execute(text('SET LOCAL enable_seqscan = off'))  # as over a day of rows: by the index
        plan = await session.scalar(text(f"""EXPLAIN (ANALYZE, FORMAT JSON)
            SELECT count(*) FROM {ROWS_TABLE} WHERE ingest_xid >= {newest}"""))
    scans = list(nodes(plan[0]['Plan'], 'Bitmap Heap Scan'))
    assert scans, 'the scan of new rows goes by the ingest_xid index'
    read = sum(scan.get('Lossy Heap Blocks', 0) + scan.get('Exact Heap Blocks', 0) for scan in scans)
    assert read <= 2 * 32  # a range or two of 32 pages around the new row, not the 200+ pages of the day's rows


def nodes(plan: dict[str, Any], node_type: str) -> Iterator[dict[str, Any]]:
    if plan['Node Type'] == node_type:
        yield plan
    for child in plan.get('Plans', []):
        yield from nodes(child, node_type)


@pytest.mark.native_storage
async def test_the_background_job_keeps_rollups_current(storage: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    job = StorageMaintenance(storage.db, rollup_every_s=0.1)
    await job.start()
    try:
        await store(storage, admin, device.id, [(datetime.now(UTC), 'power', 3.0)])
        for _ in range(300):
            if await rollup(storage, 'telemetry_1h', device.id):
                break
            await asyncio.sleep(0.1)
        assert [row[1:] for row in await rollup(storage, 'telemetry_1h', device.id)] == [(1, 3.0, 3.0, 3.0, 3.0)]
    finally:
        await job.stop()

