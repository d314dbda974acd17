"""With an external Mosquitto, Gito keeps its password and ACL files in step with the device table."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.config import Settings
from app.models.schemas import DeviceCreate
from app.platform import Platform, Resolved
from app.services.credentials import mosquitto_verify
from tests.conftest import NewTenant
from tests.support import stop_platform


def entries(path: Path) -> dict[str, str]:
    return dict(line.split(':', 1) for line in path.read_text().splitlines() if line)


async def test_auth_files_follow_devices(
    settings_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, new_tenant: NewTenant,
) -> None:
    monkeypatch.setenv('GITO_MQTT_AUTH_DIR', str(tmp_path / 'mqtt-auth'))
    settings = Settings()
    platform = Platform(settings, Resolved(database_url=settings.database_url or '', mqtt_url=settings.mqtt_url))
    await platform.start()
    try:
        admin = (await new_tenant()).principal
        device, credentials = await platform.devices.create(admin, DeviceCreate(name='External'))
        passwd, acl = tmp_path / 'mqtt-auth' / 'passwd', tmp_path / 'mqtt-auth' / 'acl'
        for _ in range(100):
            if passwd.exists() and str(device.id) in passwd.read_text():
                break
            await asyncio.sleep(0.05)
        stored = entries(passwd)[str(device.id)]
        assert mosquitto_verify(stored, credentials.token)
        assert credentials.token not in passwd.read_text() + acl.read_text()
        assert f'user {device.id}\ntopic readwrite {admin.tenant_id}/devices/{device.id}/#' in acl.read_text()
        assert passwd.stat().st_mode & 0o777 == 0o600
        await platform.devices.delete(admin, device.id)
        for _ in range(100):
            if str(device.id) not in passwd.read_text():
                break
            await asyncio.sleep(0.05)
        assert str(device.id) not in passwd.read_text()
    finally:
        await stop_platform(platform)
