"""Retention deletes: per tenant below the longest retention, whole partitions past it."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from uuid import UUID

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.platform import Platform
from app.services.storage.lock_wait import lock_not_available
from app.services.storage.retention import partition_end
from tests.conftest import NewTenant
from tests.storage.conftest import new_device, owner_scalar, store
from tests.storage.test_partitions import partitions
from tests.support import roll_up


async def set_retention(platform: Platform, tenant_id: UUID, raw: int, minute: int, hour: int) -> None:
    async with platform.db.tenant(tenant_id) as session:
        await session.execute(text("""
            INSERT INTO storage_settings (tenant_id, raw_days, minute_days, hour_days) VALUES (:t, :r, :m, :h)
            ON CONFLICT (tenant_id) DO UPDATE SET raw_days = :r, minute_days = :m, hour_days = :h"""),
            {'t': tenant_id, 'r': raw, 'm': minute, 'h': hour})


async def count(platform: Platform, table: str, device_id: UUID) -> int:
    value = await owner_scalar(platform, f'SELECT count(*) FROM {table} WHERE device_id = :d', d=device_id)
    assert isinstance(value, int)
    return value


async def past_every_raw_retention(platform: Platform) -> date:
    """A day whose partition is past the longest raw retention of any tenant in the database (other tests set some)."""
    async with platform.db.system() as session:
        longest = await session.scalar(text('SELECT coalesce(max(raw_days), 30) FROM storage_settings'))
    return (datetime.now(UTC) - timedelta(days=max(int(longest or 30), 30) + 3)).date()


async def test_each_tenant_keeps_its_own_retention(storage: Platform, new_tenant: NewTenant) -> None:
    short, default = (await new_tenant()).principal, (await new_tenant()).principal
    now = datetime.now(UTC)
    devices = {}
    for principal in (short, default):
        device = await new_device(storage, principal)
        devices[principal.tenant_id] = device.id
        await store(storage, principal, device.id, [(now - timedelta(days=days), 'power', float(days))
                                                    for days in (1, 3.5, 5, 20)])
    await roll_up(storage)  # under the default retention: every row rolled up
    await set_retention(storage, short.tenant_id, 2, 3, 4)
    run = await storage.storage_jobs.apply_retention()
    assert run.deleted_rows >= 3 + 3 + 2
    short_device, default_device = devices[short.tenant_id], devices[default.tenant_id]
    async with storage.db.system() as session:
        raw = (await session.scalars(text('SELECT value FROM telemetry WHERE device_id = :d ORDER BY value'),
                                     {'d': short_device})).all()
    assert raw == [1.0]  # 2 days of raw
    assert await count(storage, 'telemetry_1m', short_device) == 1  # 3 days of minutes: 1 day old only
    assert await count(storage, 'telemetry_1h', short_device) == 2  # 4 days of hours: 1 and 3.5 days old
    assert await count(storage, 'telemetry', default_device) == 4  # 30 days by default: all kept
    assert await count(storage, 'telemetry_1h', default_device) == 4


@pytest.mark.native_storage
async def test_partitions_past_the_longest_retention_are_dropped(storage: Platform) -> None:
    old_day = await past_every_raw_retention(storage)
    kept_day = datetime.now(UTC).date() - timedelta(days=1)
    await owner_scalar(storage, 'SELECT gito_telemetry_partition(:day)', day=old_day)
    assert f'telemetry_points_p{old_day:%Y%m%d}' in await partitions(storage)
    run = await storage.storage_jobs.apply_retention()
    assert f'telemetry_points_p{old_day:%Y%m%d}' in run.dropped_partitions
    names = await partitions(storage)
    assert f'telemetry_points_p{old_day:%Y%m%d}' not in names
    assert f'telemetry_points_p{kept_day:%Y%m%d}' in names


@pytest.mark.native_storage
async def test_a_drop_behind_a_long_reader_is_postponed_and_holds_up_no_insert(storage: Platform,
                                                                               new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    old_day = await past_every_raw_retention(storage)
    await owner_scalar(storage, 'SELECT gito_telemetry_partition(:day)', day=old_day)
    old_partition = f'telemetry_points_p{old_day:%Y%m%d}'
    async with storage.db.owner.connect() as export:  # a long read of telemetry, e.g. a CSV export, under way
        await export.execute(text('SELECT count(*) FROM telemetry_points'))
        with pytest.raises(DBAPIError) as postponed:  # waiting for the export would queue every insert behind it
            await asyncio.wait_for(storage.storage_jobs.apply_retention(), timeout=10)
        assert lock_not_available(postponed.value)
        await store(storage, admin, device.id, [(datetime.now(UTC), 'power', 1.0)])  # stored, export still open
        assert old_partition in await partitions(storage)
    run = await storage.storage_jobs.apply_retention()  # the next tick, the export done
    assert old_partition in run.dropped_partitions
    assert await count(storage, 'telemetry', device.id) == 1


@pytest.mark.native_storage
async def test_rollup_partitions_past_the_longest_retention_are_dropped(storage: Platform) -> None:
    async with storage.db.system() as session:
        minute_days, hour_days = (await session.execute(text(
            'SELECT coalesce(max(minute_days), 180), coalesce(max(hour_days), 730) FROM storage_settings'))).one()
    now = datetime.now(UTC)
    old_day = (now - timedelta(days=max(minute_days, 180) + 3)).date()
    old_month = (now - timedelta(days=max(hour_days, 730) + 40)).date().replace(day=1)
    await owner_scalar(storage, "SELECT gito_day_partition('telemetry_1m', 'bucket', :day)", day=old_day)
    await owner_scalar(storage, "SELECT gito_month_partition('telemetry_1h', 'bucket', :month)", month=old_month)
    assert f'telemetry_1m_p{old_day:%Y%m%d}' in await partitions(storage, 'telemetry_1m')
    assert f'telemetry_1h_m{old_month:%Y%m}' in await partitions(storage, 'telemetry_1h')
    run = await storage.storage_jobs.apply_retention()
    assert {f'telemetry_1m_p{old_day:%Y%m%d}', f'telemetry_1h_m{old_month:%Y%m}'} <= set(run.dropped_partitions)
    assert f'telemetry_1m_p{old_day:%Y%m%d}' not in await partitions(storage, 'telemetry_1m')
    assert f'telemetry_1m_p{now:%Y%m%d}' in await partitions(storage, 'telemetry_1m')
    assert f'telemetry_1h_m{old_month:%Y%m}' not in await partitions(storage, 'telemetry_1h')
    assert f'telemetry_1h_m{now:%Y%m}' in await partitions(storage, 'telemetry_1h')


def test_a_partition_name_gives_the_day_after_its_range() -> None:
    assert partition_end('telemetry_points_p20261231', 'telemetry_points') == date(2027, 1, 1)
    assert partition_end('telemetry_1h_m202612', 'telemetry_1h') == date(2027, 1, 1)
    assert partition_end('telemetry_1h_m202602', 'telemetry_1h') == date(2026, 3, 1)
    assert partition_end('telemetry_1m_p20260101', 'telemetry_points') is None  # another table's partition
    assert partition_end('telemetry_points_default', 'telemetry_points') is None
