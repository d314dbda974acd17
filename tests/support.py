"""Shared test plumbing: the test databases and broker, and the app the NiceGUI `user` fixture runs."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
import uuid
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url

from app.config import Settings
from app.platform import Platform, Resolved

PLATFORM: Platform | None = None
SECRET = 'test-secret-key-not-for-production'


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(('127.0.0.1', 0))
        return int(probe.getsockname()[1])


def create_database(server_url: str | None) -> tuple[str, object]:
    """A fresh database: in the server named by GITO_TEST_DATABASE_URL, else in an embedded PostgreSQL."""
    if server_url is None:
        import pgserver

        server = pgserver.get_server(Path(tempfile.mkdtemp(prefix='gito-test-pg-')), cleanup_mode='stop')
        server_url = server.get_uri(database='postgres')
    else:
        server = None
    name = f'gito_test_{uuid.uuid4().hex[:10]}'
    url = make_url(server_url)

    async def create() -> None:
        connection = await asyncpg.connect(url.render_as_string(hide_password=False))
        try:
            await connection.execute(f'CREATE DATABASE {name}')
        finally:
            await connection.close()

    asyncio.run(create())
    return url.set(database=name).render_as_string(hide_password=False), (server, server_url, name)


def drop_database(handle: object) -> None:
    server, server_url, name = handle  # type: ignore[misc]

    async def drop() -> None:
        connection = await asyncpg.connect(server_url)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS {name} WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(drop())


def make_settings(*, database_url: str, mqtt_url: str | None, data_dir: Path, **extra: object) -> Settings:
    return Settings(
        database_url=database_url, mqtt_url=mqtt_url, secret_key=SECRET, data_dir=data_dir,
        redis_url=extra.pop('redis_url', None), port=extra.pop('port', free_port()), **extra,
    )


def build_test_app() -> None:
    """Run by the NiceGUI `user` fixture (as its main file): the real app, configured from the environment."""
    global PLATFORM
    from nicegui import ui

    from app.main import build

    settings = Settings()
    PLATFORM = Platform(settings, Resolved(database_url=os.environ['DATABASE_URL'], mqtt_url=os.environ['MQTT_URL']))
    build(PLATFORM)
    ui.run(storage_secret=SECRET, title='Gito')
