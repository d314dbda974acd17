"""Latest values: collapsed in memory (newest timestamp wins), written with idle batches, recovered after a crash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from sqlalchemy import text

from app.ingest.latest import LatestBuffer, recover_latest
from app.platform import Platform
from tests.conftest import NewTenant
from tests.ingest.test_mqtt_ingest import make_device

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def record(device: object, key: int, seconds: int, value: float) -> tuple[object, ...]:
    return ('tenant', device, key, T0 + timedelta(seconds=seconds), value, None, None, None)


def test_buffer_keeps_the_newest_reading_per_device_and_key_whatever_the_arrival_order() -> None:
    buffer = LatestBuffer(interval_s=60)
    device = uuid4()
    buffer.merge([record(device, 1, 10, 1.0), record(device, 2, 5, 7.0)])
    buffer.merge([record(device, 1, 3, 2.0)])  # late: older than what is held
    buffer.merge([record(device, 1, 11, 3.0)])
    assert len(buffer) == 2
    assert sorted((r[2], r[4]) for r in buffer._pending.values()) == [(1, 3.0), (2, 7.0)]
    assert buffer.due(idle=True) and not buffer.due(idle=False)  # busy: wait for the interval
    buffer.written()
    assert len(buffer) == 0 and not buffer.due(idle=True)


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
