"""Daily partitions: created ahead, late rows kept (default partition, then moved), no way around RLS."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
from sqlalchemy import text

from app.models.storage import RetentionSettings
from app.platform import Platform
from tests.conftest import NewTenant
from tests.storage.conftest import app_connection, insert_as, new_device, owner_scalar, store
from tests.support import roll_up

PARTITIONS = """SELECT coalesce(array_agg(c.relname ORDER BY c.relname), '{}')::text[] FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = CAST(:parent AS regclass)"""


async def partitions(platform: Platform, parent: str = 'telemetry_points') -> list[str]:
    names = await owner_scalar(platform, PARTITIONS, parent=parent)
    assert isinstance(names, list)
    return [str(name) for name in names]


@pytest.mark.native_storage
async def test_partitions_are_created_ahead(storage: Platform) -> None:
    today = datetime.now(UTC).date() + timedelta(days=400)  # days no other test touches
    created = await storage.storage_jobs.ensure_partitions(today=today)
    names = await partitions(storage)
    expected = [f'telemetry_points_p{(today + timedelta(days=d)):%Y%m%d}' for d in range(-1, 8)]
    assert set(expected) <= set(names)
    rows = [f'telemetry_rows_p{(today + timedelta(days=d)):%Y%m%d}' for d in range(-1, 8)]
    assert set(rows) <= set(await partitions(storage, 'telemetry_rows'))
    assert {today + timedelta(days=d) for d in range(-1, 8)} <= set(created)  # (and days parked in the default)
    assert await storage.storage_jobs.ensure_partitions(today=today) == []  # idempotent
    minutes = await partitions(storage, 'telemetry_1m')
    assert {f'telemetry_1m_p{(today + timedelta(days=d)):%Y%m%d}' for d in range(-1, 8)} <= set(minutes)
    next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
    hours = await partitions(storage, 'telemetry_1h')
    assert {f'telemetry_1h_m{today:%Y%m}', f'telemetry_1h_m{next_month:%Y%m}'} <= set(hours)


# A message's numbers: a row of `telemetry_rows` in the device's series.
PARKED = """SELECT count(*) FROM telemetry_rows_default p JOIN telemetry_series s ON s.id = p.series_id
WHERE s.device_id = :d"""
ROLLUP_HOMES = "SELECT array_agg(tableoid::regclass::text ORDER BY bucket) FROM {table} WHERE device_id = :d"


@pytest.mark.native_storage
async def test_rollups_land_in_their_partitions_and_late_ones_are_moved(storage: Platform,
                                                                        new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    await storage.storage.update_retention(admin, RetentionSettings(raw_days=120, minute_days=120, hour_days=120))
    device = await new_device(storage, admin)
    now = datetime.now(UTC).replace(microsecond=0)
    late = now - timedelta(days=100, hours=5)  # a day no other test uses: no 1-minute partition of its own yet
    await store(storage, admin, device.id, [(now, 'power', 2.0), (late, 'power', 3.0)])
    await roll_up(storage)
    minutes = ROLLUP_HOMES.format(table='telemetry_1m')
    assert await owner_scalar(storage, minutes, d=device.id) == ['telemetry_1m_default', f'telemetry_1m_p{now:%Y%m%d}']
    await storage.storage_jobs.ensure_partitions()
    assert await owner_scalar(storage, minutes, d=device.id) == [f'telemetry_1m_p{late:%Y%m%d}',
                                                                 f'telemetry_1m_p{now:%Y%m%d}']
    assert await owner_scalar(storage, ROLLUP_HOMES.format(table='telemetry_1h'), d=device.id) == [
        f'telemetry_1h_m{late:%Y%m}', f'telemetry_1h_m{now:%Y%m}']
    hourly = await storage.telemetry.aggregate(admin, device.id, start=late - timedelta(hours=1), end=now,
                                               bucket_s=86_400 * 30, function='max', keys=['power'])
    assert sorted(float(point.value or 0) for point in hourly) == [2.0, 3.0]  # through the parent, as the tenant


@pytest.mark.native_storage
async def test_late_rows_are_kept_and_moved_into_their_partition(storage: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    await storage.storage.update_retention(admin, RetentionSettings(raw_days=90, minute_days=90, hour_days=90))
    device = await new_device(storage, admin)
    late = datetime.now(UTC).replace(microsecond=0) - timedelta(days=75, hours=3)  # a day no other test uses
    day = f'telemetry_rows_p{late:%Y%m%d}'
    assert day not in await partitions(storage, 'telemetry_rows')
    await store(storage, admin, device.id, [(late, 'power', 1.5), (late, 'power', 9.9)])  # the second: a duplicate
    parked = await owner_scalar(storage, PARKED, d=device.id)
    assert parked == 1
    await storage.storage_jobs.ensure_partitions()
    assert day in await partitions(storage, 'telemetry_rows')
    assert await owner_scalar(storage, PARKED, d=device.id) == 0
    page = await storage.telemetry.raw(admin, device.id, start=late - timedelta(hours=1), end=late + timedelta(hours=1))
    assert [(p.ts, p.value) for p in page.points] == [(late, 1.5)]
    await store(storage, admin, device.id, [(late, 'power', 7.0)])  # the key still dedupes inside the partition
    page = await storage.telemetry.raw(admin, device.id, start=late - timedelta(hours=1), end=late + timedelta(hours=1))
    assert [p.value for p in page.points] == [1.5]


@pytest.mark.native_storage
async def test_the_app_role_cannot_reach_a_partition_directly(storage: Platform, new_tenant: NewTenant,
                                                              database_url: str) -> None:
    admin, stranger = (await new_tenant()).principal, (await new_tenant()).principal
    device = await new_device(storage, admin)
    now = datetime.now(UTC)
    await store(storage, admin, device.id, [(now, 'power', 1.0)])
    tables = [f'{parent}{suffix}' for parent in ('telemetry_points', 'telemetry_rows')
              for suffix in (f'_p{now:%Y%m%d}', '_default')]
    for table in tables:
        forced = await owner_scalar(storage, 'SELECT relforcerowsecurity FROM pg_class WHERE relname = :p', p=table)
        assert forced is True, table
    connection = await app_connection(storage)
    try:
        for table in tables:
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await connection.fetch(f'SELECT * FROM {table}')
        async with connection.transaction():
            await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(stranger.tenant_id))
            assert await connection.fetchval('SELECT count(*) FROM telemetry WHERE device_id = $1', device.id) == 0
        with pytest.raises(asyncpg.InsufficientPrivilegeError):  # RLS WITH CHECK on the parent
            await insert_as(connection, stranger.tenant_id, admin.tenant_id, device.id)
    finally:
        await connection.close()
    async with storage.db.tenant(admin.tenant_id) as session:
        assert await session.scalar(text('SELECT count(*) FROM telemetry WHERE device_id = :d'), {'d': device.id}) == 1
