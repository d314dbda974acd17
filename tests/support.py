"""Shared test plumbing: the test databases and broker, and the app the NiceGUI `user` fixture runs."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import httpx
from nicegui.testing import User
from nicegui.testing.user_simulation import user_simulation
from sqlalchemy.engine import make_url

from app.config import Settings
from app.platform import Platform, Resolved
from app.services.storage.maintenance import StorageMaintenance, detect_backend

PLATFORM: Platform | None = None
SECRET = 'test-secret-key-not-for-production'
STOP_WITHIN_S = 60.0  # a platform stops in seconds; a stop that hangs would hold CI up until its time limit


async def stop_platform(platform: Platform) -> None:
    """`platform.stop()`, failing with every task's stack if it has not finished in `STOP_WITHIN_S`."""
    try:
        async with asyncio.timeout(STOP_WITHIN_S):
            await platform.stop()
    except TimeoutError:
        stacks = io.StringIO()
        for task in asyncio.all_tasks():
            task.print_stack(limit=8, file=stacks)
        raise AssertionError(f'platform.stop() still running after {STOP_WITHIN_S:.0f} s; tasks:\n{stacks.getvalue()}'
                             ) from None


@contextmanager
def broker_process(command: list[str], port: int) -> Iterator[str]:
    """An MQTT broker child process, once it listens on `port`; stopped afterwards."""
    broker = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(('127.0.0.1', port)) == 0:
                    break
            time.sleep(0.05)
        yield f'mqtt://127.0.0.1:{port}'
    finally:
        broker.terminate()
        broker.wait(timeout=10)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return int(probe.getsockname()[1])


@dataclass(frozen=True)
class TestDatabase:
    url: str
    server_url: str
    name: str
    embedded: object | None  # keeps an embedded server alive for the session


def create_database(server_url: str | None) -> TestDatabase:
    """A fresh database: in the server named by GITO_TEST_DATABASE_URL, else in an embedded PostgreSQL."""
    embedded = None
    if server_url is None:
        from pgserver.postgres_server import get_server

        embedded = get_server(Path(tempfile.mkdtemp(prefix='gito-test-pg-')), cleanup_mode='stop')
        server_url = str(embedded.get_uri(database='postgres'))
    name = f'gito_test_{uuid.uuid4().hex[:10]}'
    asyncio.run(_execute(server_url, f'CREATE DATABASE {name}'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    return TestDatabase(url=url, server_url=server_url, name=name, embedded=embedded)


def drop_database(database: TestDatabase) -> None:
    asyncio.run(_execute(database.server_url, f'DROP DATABASE IF EXISTS {database.name} WITH (FORCE)'))


def timescale_preloaded(server_url: str | None) -> bool:
    """Whether the test server loads TimescaleDB, so that migrations build the TimescaleDB layout."""
    if server_url is None:
        return False

    async def setting() -> str:
        connection = await asyncpg.connect(server_url)
        try:
            return str(await connection.fetchval('SHOW shared_preload_libraries'))
        finally:
            await connection.close()

    return 'timescaledb' in asyncio.run(setting())


async def _execute(server_url: str, statement: str) -> None:
    connection = await asyncpg.connect(server_url)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


def build_test_app() -> None:
    """Run by the NiceGUI `user` fixture (as its main file): the real app, configured from the environment."""
    global PLATFORM
    from nicegui import ui

    from app.main import build

    settings = Settings()
    PLATFORM = Platform(settings, Resolved(database_url=os.environ['DATABASE_URL'], mqtt_url=os.environ['MQTT_URL']))
    build(PLATFORM)
    ui.run(storage_secret=SECRET, title='Gito')


GITO = [sys.executable, '-m', 'app.cli']


def gito(*args: str, env: dict[str, str], check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*GITO, *args], env=env, capture_output=True, text=True, timeout=120, check=check)


async def roll_up(platform: Platform, *, seconds: float = 30, job: StorageMaintenance | None = None) -> None:
    """Run the rollup job until it has covered every transaction committed so far. The watermark stops at the
    oldest transaction still open anywhere on the server (other test databases too), so it may take a while.
    On TimescaleDB: the continuous aggregates refreshed over all time (outside a transaction, as it requires)."""
    from sqlalchemy import text

    if await detect_backend(platform.db) == 'timescaledb':
        async with platform.db.owner.connect() as connection:
            connection = await connection.execution_options(isolation_level='AUTOCOMMIT')
            for aggregate in ('telemetry_1m', 'telemetry_1h'):  # the hourly one reads the minute one
                await connection.execute(text(f"CALL refresh_continuous_aggregate('gito_ts.{aggregate}', NULL, NULL)"))
        return
    async with platform.db.system() as session:
        target = int(await session.scalar(text('SELECT txid_current()')) or 0)
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        await (job or platform.storage_jobs).refresh_rollups()
        async with platform.db.system() as session:
            watermark = int(await session.scalar(text("SELECT xid FROM storage_watermarks WHERE name = 'rollups'"))
                            or 0)
        if watermark > target:
            return
        assert asyncio.get_running_loop().time() < deadline, 'rollups did not catch up (a transaction held open?)'
        await asyncio.sleep(0.1)


def look_longer_for_page_content(seconds: float = 5.0) -> None:
    """NiceGUI's simulated user looks for what a test expects for 0.3 s by default; a page that shows it after a
    query or a background task can take longer on a busy CI machine (two such flakes failed a CI run). An
    expectation that is met returns at once, so only failing tests get slower."""
    for name, poll_s in (('should_see', 0.1), ('should_not_see', 0.05)):
        getattr(User, name).__kwdefaults__['retries'] = round(seconds / poll_s)


@asynccontextmanager
async def simulated_app(main_file: Path) -> AsyncIterator[User]:
    """NiceGUI's user simulation of `main_file`, leaving nothing behind for the next test.

    FastAPI's `include_router` wraps the app's lifespan around each included router's, and NiceGUI's app is one
    object for the whole test session: without restoring it every test would keep all earlier tests' routers
    (and their platforms) alive and enter their lifespans again, so each test got slower than the last.
    FastAPI's callable-classification caches (up to 4096 entries each) keep endpoints, and so platforms, too.
    """
    from fastapi.dependencies import models
    from nicegui import app

    lifespan = app.router.lifespan_context
    try:
        async with user_simulation(main_file=main_file) as user:
            yield user
    finally:
        app.router.lifespan_context = lifespan
        for cached in vars(models).values():
            if hasattr(cached, 'cache_clear'):
                cached.cache_clear()


def serve(env: dict[str, str]) -> subprocess.Popen[str]:
    """`gito serve` as a child process, once its /readyz answers 200 (on `GITO_PORT` of `env`)."""
    process = subprocess.Popen([*GITO, 'serve'], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read() if process.stderr else ''
        try:
            if httpx.get(f'http://127.0.0.1:{env["GITO_PORT"]}/readyz', timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    process.kill()
    raise AssertionError('gito serve did not become ready within 60 s')


