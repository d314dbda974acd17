"""Disabling a device: refused over HTTP (403) and MQTT, disconnected from the managed broker and kept out."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import aiomqtt
import pytest
from nicegui.testing import User

from app.config import Settings
from app.models.schemas import DeviceCreate, Principal
from app.platform import Platform, Resolved
from app.services.audit import AuditQuery
from app.services.errors import PermissionDenied
from tests.api.conftest import Api, SignIn
from tests.conftest import NewTenant
from tests.ingest.test_broker import Running, running
from tests.pages.conftest import MakeAccount, MakeDevice, sign_in
from tests.support import free_port, stop_platform

__all__ = ['running']


async def disconnected_within(client: aiomqtt.Client, seconds: float) -> bool:
    """Whether the broker closes the client's connection within `seconds` (the client only listens)."""
    try:
        async with asyncio.timeout(seconds):
            async for _message in client.messages:
                pass
    except aiomqtt.MqttError:
        return True
    except TimeoutError:
        return False
    return True


async def test_the_broker_disconnects_a_client_whose_credentials_are_removed(running: Running) -> None:
    async with running.as_device() as device:
        await device.subscribe(running.device.telemetry, qos=1)
        assert not await disconnected_within(device, 0.5)  # control: a valid client stays
        await running.broker.update_credentials(running.credentials()[:1])  # only the service account left
        assert await disconnected_within(device, 3)
    with pytest.raises(aiomqtt.MqttError):
        async with running.as_device():
            pass


@pytest.fixture
async def managed_platform(settings_env: None, monkeypatch: pytest.MonkeyPatch,
                           tmp_path: Path) -> AsyncIterator[Platform]:
    """The platform with its own managed (Mosquitto) broker enforcing device credentials."""
    monkeypatch.setenv('GITO_MQTT_PORT', str(free_port()))
    monkeypatch.setenv('GITO_MQTT_BROKER', 'mosquitto')
    monkeypatch.setenv('GITO_DATA_DIR', str(tmp_path))
    settings = Settings()
    platform = Platform(settings, Resolved(database_url=settings.database_url or '', mqtt_url=None))
    await platform.start()
    yield platform
    await stop_platform(platform)


async def test_a_disabled_device_is_disconnected_and_cannot_reconnect(managed_platform: Platform,
                                                                      new_tenant: NewTenant) -> None:
    platform = managed_platform
    admin = (await new_tenant()).principal
    device, credentials = await platform.devices.create(admin, DeviceCreate(name='Pump'))

    def client() -> aiomqtt.Client:
        return aiomqtt.Client('127.0.0.1', platform.mqtt_target.port, username=str(device.id),
                              password=credentials.token)

    for _ in range(50):  # the new device's credentials reach the broker
        try:
            async with client():
                break
        except aiomqtt.MqttError:
            await asyncio.sleep(0.1)
    async with client() as connected:
        await connected.subscribe(f'{device.tenant_id}/devices/{device.id}/commands', qos=1)
        assert (await platform.devices.set_disabled(admin, device.id, True)).disabled
        assert await disconnected_within(connected, 5)
    with pytest.raises(aiomqtt.MqttError):
        async with client():
            pass
    entry = await platform.directory.get(device.id)
    assert entry is not None and not entry.accepts_data  # what slipped through is dropped by the consumer

    await platform.devices.set_disabled(admin, device.id, False)
    for _ in range(50):
        try:
            async with client():
                return
        except aiomqtt.MqttError:
            await asyncio.sleep(0.1)
    raise AssertionError('the enabled device could not connect again')


async def test_disabling_is_role_checked_and_audited(platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device, _ = await platform.devices.create(admin, DeviceCreate(name='Valve'))
    viewer = Principal(tenant_id=admin.tenant_id, user_id=None, role='viewer')
    with pytest.raises(PermissionDenied):
        await platform.devices.set_disabled(viewer, device.id, True)
    await platform.devices.set_disabled(admin, device.id, True)
    await platform.devices.set_disabled(admin, device.id, False)
    entries = await platform.audit.search(admin, AuditQuery(action='device.'))
    assert [(entry.action, entry.after) for entry in entries[:2]] == [
        ('device.enable', {'disabled': False}), ('device.disable', {'disabled': True})]


async def test_http_ingest_of_a_disabled_device_gets_a_clear_403(api: Api, sign_in: SignIn) -> None:
    caller = await sign_in('technician')
    created = (await api.client.post('/api/v1/devices', json={'name': 'Meter'}, headers=caller.headers)).json()
    device, credentials = created['device'], created['credentials']
    headers = {'Authorization': f'Bearer {credentials["token"]}'}
    url = f'/api/v1/devices/{device["id"]}'
    disabled = await api.client.post(f'{url}/disable', headers=caller.headers)
    assert (disabled.status_code, disabled.json()['disabled']) == (200, True)
    refused = await api.client.post(f'{url}/telemetry', json={'t': 1}, headers=headers)
    assert refused.status_code == 403 and 'disabled' in refused.json()['detail']
    assert (await api.client.post(f'{url}/enable', headers=caller.headers)).json()['disabled'] is False
    assert (await api.client.post(f'{url}/telemetry', json={'t': 1}, headers=headers)).status_code == 202


async def test_device_page_disables_and_enables(user: User, app_platform: Platform, make_account: MakeAccount,
                                                make_device: MakeDevice) -> None:
    account = await make_account('operator')
    device = await make_device(account, name='Boiler')
    await sign_in(user, account)
    await user.open(f'/devices/{device.id}')
    await user.should_not_see(marker='device-disabled')
    user.find('Disable').click()
    await user.should_see('Disable “Boiler”?')
    user.find(marker='confirm-disable').click()
    await user.should_see(marker='device-disabled', retries=30)
    assert (await app_platform.devices.get(account.principal, device.id)).disabled
    await user.open('/')
    await user.should_see(marker='device-disabled-badge')  # the fleet shows it too
    await user.open(f'/devices/{device.id}')
    user.find('Enable').click()
    await user.should_not_see(marker='device-disabled', retries=30)
    assert not (await app_platform.devices.get(account.principal, device.id)).disabled
