"""The device directory (ingest's cache of device, tenant and token hash) never keeps what a change replaced."""

from __future__ import annotations

import asyncio
from typing import Any

from app.ingest.directory import DeviceDirectory
from app.models.schemas import DeviceCreate
from app.platform import Platform
from tests.conftest import NewTenant


async def test_a_token_rotated_while_the_device_is_being_read_is_not_cached_old(
    platform: Platform, new_tenant: NewTenant,
) -> None:
    admin = (await new_tenant()).principal
    device, old = await platform.devices.create(admin, DeviceCreate(name='Meter'))
    directory = DeviceDirectory(platform.db, platform.bus)
    read, go_on = asyncio.Event(), asyncio.Event()
    read_row = directory._read
    reads = 0

    async def slow_read(device_id: Any) -> Any:
        nonlocal reads
        reads += 1
        entry = await read_row(device_id)  # the row before the rotation commits
        read.set()
        await go_on.wait()
        return entry

    directory._read = slow_read  # type: ignore[method-assign]
    first_message = asyncio.create_task(directory.authenticate(device.id, old.token))
    await read.wait()
    new = await platform.devices.rotate_token(admin, device.id)
    directory.invalidate(device.id)  # what the change notification does on every instance
    go_on.set()
    await first_message
    assert reads == 2  # read again: a change came in while it was read
    assert await directory.authenticate(device.id, old.token) is None
    assert await directory.authenticate(device.id, new.token) is not None
