"""Storage tests: the batch writer running (no MQTT), the storage jobs driven explicitly; the API and page
fixtures for the settings and export tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from uuid import UUID

import asyncpg
import pytest
from sqlalchemy import text

from app.config import Settings
from app.ingest.payload import Message
from app.ingest.writer import Inbound
from app.models.schemas import DeviceCreate, DevicePublic, Principal
from app.platform import Platform, app_role_password
from tests.api.conftest import api, sign_in
from tests.pages.conftest import make_account, make_device

__all__ = ['api', 'make_account', 'make_device', 'sign_in']


BACKEND_MARKERS = (  # marker, the storage backend it needs, why a test is skipped elsewhere
    ('native_storage', 'native',
     'plain-PostgreSQL storage; on TimescaleDB chunks, policies and continuous aggregates do this'),
    ('timescale_storage', 'timescaledb',
     'needs a PostgreSQL server with TimescaleDB preloaded (GITO_TEST_DATABASE_URL)'),
)


@pytest.fixture
async def storage(platform: Platform, request: pytest.FixtureRequest) -> AsyncIterator[Platform]:
    await platform.writer.start()
    await platform.storage_jobs.start(loop=False)
    for marker, backend, reason in BACKEND_MARKERS:
        if request.node.get_closest_marker(marker) and platform.storage_jobs.backend != backend:
            await platform.writer.stop()
            pytest.skip(reason)
    yield platform
    await platform.writer.stop()


async def store(platform: Platform, principal: Principal, device_id: UUID,
                readings: Sequence[tuple[datetime, str, float | str]]) -> None:
    """Write through the real batch writer and wait for the commit."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    messages = [Message(ts=ts, seq=None, readings={key: value}) for ts, key, value in readings]
    await platform.writer.submit(Inbound(principal.tenant_id, device_id, messages, datetime.now(UTC), done=done))
    await asyncio.wait_for(done, timeout=30)


async def new_device(platform: Platform, principal: Principal, name: str = 'Meter') -> DevicePublic:
    device, _ = await platform.devices.create(principal, DeviceCreate(name=name))
    return device


async def app_connection(platform: Platform) -> asyncpg.Connection:
    """A connection of the app role (the one every tenant request uses), outside the service layer."""
    dsn = platform.db.app.url.set(drivername='postgresql', password=app_role_password(Settings()))
    return await asyncpg.connect(dsn.render_as_string(hide_password=False))


async def insert_as(connection: asyncpg.Connection, tenant_id: UUID, row_tenant_id: UUID, device_id: UUID) -> None:
    """On an app-role connection acting for `tenant_id`, insert a telemetry row that belongs to `row_tenant_id`."""
    async with connection.transaction():
        await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
        await connection.execute(
            'INSERT INTO telemetry (tenant_id, device_id, key_id, ts, value) VALUES ($1, $2, 1, now(), 1)',
            row_tenant_id, device_id)


async def owner_scalar(platform: Platform, sql: str, **params: object) -> object:
    async with platform.db.system() as session:
        return await session.scalar(text(sql), params)
