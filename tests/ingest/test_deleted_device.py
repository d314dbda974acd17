"""A device or tenant deleted after its messages were taken in: those are dropped, ingest goes on."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from uuid import UUID

import pytest
from sqlalchemy import text

from app.ingest.payload import Message
from app.ingest.writer import Inbound
from app.platform import Platform
from tests.conftest import NewTenant
from tests.ingest.conftest import copy_target
from tests.ingest.test_mqtt_ingest import make_device


async def one_batch(platform: Platform, senders: list[tuple[UUID, UUID]], key: str, value: float) -> None:
    """One reading from each (tenant, device), offered at once (one batch), awaited until committed."""
    done: list[asyncio.Future[None]] = []
    for tenant_id, device_id in senders:
        inbound = Inbound(tenant_id, device_id, [Message(datetime.now(UTC), None, {key: value})],
                          datetime.now(UTC))
        inbound.done = asyncio.get_running_loop().create_future()
        done.append(inbound.done)
        platform.writer.offer([inbound])
    await asyncio.wait_for(asyncio.gather(*done), 10)


async def test_a_message_of_a_device_deleted_meanwhile_does_not_stop_ingest(
    platform: Platform, new_tenant: NewTenant,
) -> None:
    admin = (await new_tenant()).principal
    gone, staying = await make_device(platform, admin), await make_device(platform, admin)
    await platform.devices.delete(admin, gone.id)
    await platform.writer.start()
    try:
        await one_batch(platform, [(admin.tenant_id, gone.id), (admin.tenant_id, staying.id)], 'load', 1.0)
    finally:
        await platform.writer.stop()
    assert [v.value for v in await platform.telemetry.latest(admin, staying.id)] == [1.0]
    async with platform.db.system() as session:  # nothing of the deleted device's is left behind
        for table in ('telemetry', 'telemetry_series'):
            assert await session.scalar(text(f'SELECT count(*) FROM {table} WHERE device_id = :d'), {'d': gone.id}) == 0


async def test_a_message_of_a_tenant_deleted_meanwhile_does_not_stop_ingest(
    platform: Platform, new_tenant: NewTenant, caplog: pytest.LogCaptureFixture,
) -> None:
    leaving, staying = (await new_tenant()).principal, (await new_tenant()).principal
    gone, kept = await make_device(platform, leaving), await make_device(platform, staying)
    await platform.platform_admin.delete(leaving.tenant_id)
    await platform.writer.start()
    try:
        await one_batch(platform, [(leaving.tenant_id, gone.id), (staying.tenant_id, kept.id)], 'fresh-key', 2.0)
    finally:
        await platform.writer.stop()
    assert [v.value for v in await platform.telemetry.latest(staying, kept.id)] == [2.0]
    dropped = [r for r in caplog.records if r.getMessage() == 'messages of deleted devices dropped']
    assert [(r.levelno, getattr(r, 'tenant_id', None)) for r in dropped] == [(logging.WARNING, str(leaving.tenant_id))]


async def test_a_deleted_device_s_series_are_forgotten_by_the_writer(
    platform: Platform, new_tenant: NewTenant, database_url: str,
) -> None:
    """The writer caches series numbers; a device deleted after its series were numbered, and a message of it still
    in flight, must not store rows under the deleted series' number (rows no reader would ever see)."""
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    await platform.writer.start()
    try:
        await one_batch(platform, [(admin.tenant_id, device.id)], 'load', 1.0)
        async with platform.db.system() as session:
            series_id = await session.scalar(text('SELECT id FROM telemetry_series WHERE device_id = :d'),
                                             {'d': device.id})
        await platform.devices.delete(admin, device.id)
        await one_batch(platform, [(admin.tenant_id, device.id)], 'load', 2.0)
    finally:
        await platform.writer.stop()
    points, target = await copy_target(database_url)
    column, value = ('series_id', series_id) if points else ('device_id', device.id)
    async with platform.db.system() as session:
        assert await session.scalar(text(f'SELECT count(*) FROM {target} WHERE {column} = :v'), {'v': value}) == 0
        assert await session.scalar(text('SELECT count(*) FROM telemetry_series WHERE device_id = :d'),
                                    {'d': device.id}) == 0
