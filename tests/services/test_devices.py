from datetime import UTC, datetime
from uuid import uuid4

import pytest
from sqlalchemy import text

from app.ingest.payload import Message
from app.ingest.writer import Inbound
from app.models.schemas import DeviceCreate, DeviceUpdate
from app.platform import Platform
from app.services.credentials import token_matches
from app.services.errors import InvalidInput, NotFound, PermissionDenied
from tests.conftest import NewTenant


async def test_create_device_returns_credentials_once(platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device, credentials = await platform.devices.create(admin, DeviceCreate(name='  Boiler 1 ', type='boiler'))
    assert device.name == 'Boiler 1'
    assert device.status == 'new'
    assert credentials.telemetry_topic == f'{admin.tenant_id}/devices/{device.id}/telemetry'
    assert credentials.token in credentials.mosquitto_pub and credentials.token in credentials.curl
    entry = await platform.directory.get(device.id)
    assert entry is not None and token_matches(entry.token_sha256, credentials.token)
    assert credentials.token not in device.model_dump_json()


async def test_blank_name_is_rejected(platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    with pytest.raises(InvalidInput, match='needs a name') as caught:
        await platform.devices.create(admin, DeviceCreate(name='   '))
    assert caught.value.field == 'name'


async def test_update_list_search_and_delete(platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    first, _ = await platform.devices.create(admin, DeviceCreate(name='Pump north'))
    await platform.devices.create(admin, DeviceCreate(name='Chiller'))
    updated = await platform.devices.update(admin, first.id, DeviceUpdate(name='Pump south', metadata={'site': 'A'}))
    assert updated.metadata == {'site': 'A'}
    assert [d.name for d in await platform.devices.list(admin, search='pump')] == ['Pump south']
    await platform.writer.start()
    await platform.writer.submit(Inbound(admin.tenant_id, first.id, [
        Message(ts=datetime.now(UTC), seq=None, readings={'t': 1.0})], datetime.now(UTC)))
    await platform.writer.stop()
    assert [v.key for v in await platform.telemetry.latest(admin, first.id)] == ['t']
    await platform.devices.delete(admin, first.id)
    with pytest.raises(NotFound):
        await platform.devices.get(admin, first.id)
    async with platform.db.system() as session:
        left = await session.scalar(text('SELECT count(*) FROM telemetry WHERE device_id = :d'), {'d': first.id})
    assert left == 0


async def test_rotated_token_replaces_the_old_one(platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device, old = await platform.devices.create(admin, DeviceCreate(name='Meter'))
    await platform.directory.start()
    new = await platform.devices.rotate_token(admin, device.id)
    await platform.directory.stop()
    platform.directory.invalidate(device.id)
    assert await platform.directory.authenticate(device.id, old.token) is None
    assert await platform.directory.authenticate(device.id, new.token) is not None


async def test_other_tenant_cannot_see_or_touch_a_device(platform: Platform, new_tenant: NewTenant) -> None:
    owner, stranger = (await new_tenant()).principal, (await new_tenant()).principal
    device, _ = await platform.devices.create(owner, DeviceCreate(name='Private'))
    assert await platform.devices.list(stranger) == []
    for action in (
        platform.devices.get(stranger, device.id),
        platform.devices.update(stranger, device.id, DeviceUpdate(name='x')),
        platform.devices.delete(stranger, device.id),
        platform.devices.rotate_token(stranger, device.id),
        platform.telemetry.latest(stranger, device.id),
    ):
        with pytest.raises(NotFound):
            await action
    assert (await platform.devices.get(owner, device.id)).name == 'Private'


async def test_viewer_cannot_create_devices(platform: Platform, new_tenant: NewTenant) -> None:
    viewer = (await new_tenant(role='viewer')).principal
    with pytest.raises(PermissionDenied):
        await platform.devices.create(viewer, DeviceCreate(name='Nope'))
    with pytest.raises(NotFound):
        await platform.devices.get(viewer, uuid4())
