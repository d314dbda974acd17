"""Storage tests: the batch writer running (no MQTT), the storage jobs driven explicitly; the API and page
fixtures for the settings and export tests."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime
from uuid import UUID

import pytest
from sqlalchemy import text

from app.ingest.payload import Message, Reading
from app.ingest.writer import Inbound
from app.models.schemas import DeviceCreate, DevicePublic, Principal
from app.platform import Platform
from tests.api.conftest import api, sign_in
from tests.pages.conftest import make_account, make_device

__all__ = ['api', 'make_account', 'make_device', 'sign_in']


@pytest.fixture
async def storage(platform: Platform) -> AsyncIterator[Platform]:
    await platform.writer.start()
    await platform.storage_jobs.start(loop=False)
    yield platform
    await platform.writer.stop()


async def store(platform: Platform, principal: Principal, device_id: UUID,
                readings: Sequence[tuple[datetime, str, float | str]]) -> None:
    """Write through the real batch writer and wait for the commit."""
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    messages = [Message(ts=ts, seq=None, readings=(Reading(key, value),)) for ts, key, value in readings]
    await platform.writer.submit(Inbound(principal.tenant_id, device_id, messages, datetime.now(UTC), done=done))
    await asyncio.wait_for(done, timeout=30)


async def new_device(platform: Platform, principal: Principal, name: str = 'Meter') -> DevicePublic:
    device, _ = await platform.devices.create(principal, DeviceCreate(name=name))
    return device


async def owner_scalar(platform: Platform, sql: str, **params: object) -> object:
    async with platform.db.system() as session:
        return await session.scalar(text(sql), params)
