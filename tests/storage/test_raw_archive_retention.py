"""The raw archive's disk: daily partitions created ahead, each tenant's days kept, older days dropped whole."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from app.models.raw_archive import RawArchiveSettings
from app.platform import Platform
from tests.conftest import NewTenant
from tests.storage.conftest import new_device, owner_scalar

RAW_PARTITIONS = """SELECT coalesce(array_agg(c.relname ORDER BY c.relname), '{}')::text[] FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'raw_messages'::regclass"""


async def raw_partitions(platform: Platform) -> list[str]:
    names = await owner_scalar(platform, RAW_PARTITIONS)
    assert isinstance(names, list)
    return [str(name) for name in names]


async def archive(platform: Platform, tenant_id: UUID, device_id: UUID, at: datetime, payload: bytes) -> None:
    await owner_scalar(platform, """
        INSERT INTO raw_messages (tenant_id, device_id, received_at, transport, kind, accepted, payload)
        VALUES (:t, :d, :at, 'mqtt', 'telemetry', true, :p) RETURNING 1""", t=tenant_id, d=device_id, at=at, p=payload)


async def kept(platform: Platform, device_id: UUID) -> list[bytes]:
    rows = await owner_scalar(platform, """SELECT coalesce(array_agg(payload ORDER BY received_at), '{}')
        FROM raw_messages WHERE device_id = :d""", d=device_id)
    assert isinstance(rows, list)
    return [bytes(row) for row in rows]


async def test_raw_partitions_are_created_ahead_and_parked_rows_moved_in(
    storage: Platform, new_tenant: NewTenant,
) -> None:
    admin = (await new_tenant()).principal
    device = await new_device(storage, admin)
    today = datetime.now(UTC).date() + timedelta(days=500)  # days no other test touches
    parked_at = datetime(today.year, today.month, today.day, 12, tzinfo=UTC)
    await archive(storage, admin.tenant_id, device.id, parked_at, b'{"early": 1}')  # no partition yet: default
    assert await owner_scalar(storage, 'SELECT count(*) FROM raw_messages_default WHERE device_id = :d',
                              d=device.id) == 1
    await storage.storage_jobs.ensure_partitions(today=today)
    names = await raw_partitions(storage)
    assert {f'raw_messages_p{(today + timedelta(days=d)):%Y%m%d}' for d in range(-1, 8)} <= set(names)
    assert await owner_scalar(storage, 'SELECT count(*) FROM raw_messages_default WHERE device_id = :d',
                              d=device.id) == 0
    assert await owner_scalar(storage, f'SELECT count(*) FROM raw_messages_p{today:%Y%m%d} WHERE device_id = :d',
                              d=device.id) == 1
    assert await kept(storage, device.id) == [b'{"early": 1}']


async def test_each_tenant_keeps_its_days_and_older_days_are_dropped(storage: Platform, new_tenant: NewTenant) -> None:
    short, default = (await new_tenant()).principal, (await new_tenant()).principal
    await storage.raw_archive.update_settings(short, RawArchiveSettings(enabled=True, days=2))
    now = datetime.now(UTC)
    devices = {}
    for principal in (short, default):
        device = await new_device(storage, principal)
        devices[principal.tenant_id] = device.id
        for days in (0.5, 3, 6):
            await archive(storage, principal.tenant_id, device.id, now - timedelta(days=days), f'{days}'.encode())
    ancient = (now - timedelta(days=400)).date()  # past any tenant's days (at most 365)
    await owner_scalar(storage, "SELECT gito_day_partition('raw_messages', 'received_at', :day)", day=ancient)
    assert f'raw_messages_p{ancient:%Y%m%d}' in await raw_partitions(storage)

    run = await storage.storage_jobs.apply_retention()

    assert f'raw_messages_p{ancient:%Y%m%d}' in run.dropped_partitions
    assert f'raw_messages_p{ancient:%Y%m%d}' not in await raw_partitions(storage)
    assert await kept(storage, devices[short.tenant_id]) == [b'0.5']  # 2 days
    assert await kept(storage, devices[default.tenant_id]) == [b'6', b'3', b'0.5']  # 7 by default
