"""Page-test fixtures: tenants and devices made through the running app's services, sign-in, MQTT publishing."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from uuid import uuid4

import aiomqtt
import pytest
from nicegui.testing import User

from app.config import Settings
from app.db import migrate
from app.ingest.mqtt_consumer import parse_mqtt_url
from app.models.schemas import DeviceCreate, DevicePublic, Principal, Role
from app.platform import Platform, app_role_password
from tests.support import SECRET, create_database, drop_database

PASSWORD = 'correct horse battery'


@dataclass(frozen=True)
class Account:
    principal: Principal
    email: str
    password: str
    tenant_name: str


MakeAccount = Callable[..., Awaitable[Account]]
MakeDevice = Callable[..., Awaitable[DevicePublic]]


@pytest.fixture
def fresh_install(settings_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """An empty installation: the app the `user` fixture starts runs on a new, migrated database.

    Request it before `user` (the app reads DATABASE_URL when it starts)."""
    database = create_database(os.environ.get('GITO_TEST_DATABASE_URL'))
    settings = Settings(secret_key=SECRET)
    asyncio.run(migrate(database.url, role=settings.app_db_role, password=app_role_password(settings)))
    monkeypatch.setenv('DATABASE_URL', database.url)
    yield database.url
    drop_database(database)


@pytest.fixture
def make_account(user: User, app_platform: Platform) -> MakeAccount:
    """Each call: a new tenant with one user of the given role (or a user added to `tenant_of`'s tenant)."""

    async def make(role: Role = 'admin', *, tenant_of: Account | None = None) -> Account:
        if tenant_of is None:
            tenant_name = f'Org {uuid4().hex[:8]}'
            tenant_id = (await app_platform.tenants.create(tenant_name)).id
        else:
            tenant_name, tenant_id = tenant_of.tenant_name, tenant_of.principal.tenant_id
        email = f'{uuid4().hex[:10]}@example.com'
        created = await app_platform.users.create_in_tenant(tenant_id, email=email, password=PASSWORD, role=role)
        principal = Principal(tenant_id=tenant_id, user_id=created.id, role=role, email=created.email)
        return Account(principal, created.email, PASSWORD, tenant_name)

    return make


@pytest.fixture
def make_device(app_platform: Platform) -> MakeDevice:
    async def make(account: Account, name: str = 'Sensor', type_: str = 'generic') -> DevicePublic:
        owner = account.principal
        if not owner.can_write:
            owner = Principal(tenant_id=owner.tenant_id, user_id=None, role='admin')
        device, _ = await app_platform.devices.create(owner, DeviceCreate(name=name, type=type_))
        return device

    return make


async def sign_in(user: User, account: Account) -> None:
    await user.open('/login')
    user.find(marker='email').type(account.email)
    user.find(marker='password').type(account.password)
    user.find(marker='sign-in').click()
    await user.should_see(marker='device-grid', retries=50)


async def publish(platform: Platform, device: DevicePublic, payload: bytes, *, channel: str = 'telemetry') -> None:
    """Publish as the device would, to the broker the app's consumer reads."""
    assert platform.resolved.mqtt_url is not None
    target = parse_mqtt_url(platform.resolved.mqtt_url, client_id=f'test-{uuid4().hex[:8]}')
    async with aiomqtt.Client(target.host, target.port, username=target.username, password=target.password,
                              identifier=target.client_id) as client:
        await client.publish(f'{device.tenant_id}/devices/{device.id}/{channel}', payload, qos=1)


async def broker_connected(platform: Platform, *, seconds: float = 10) -> None:
    for _ in range(int(seconds / 0.05)):
        if platform.link.connected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError('the app never connected to the MQTT broker')
