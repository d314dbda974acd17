"""Ingest fixtures: a broker with deep queues, and `gito serve` as a child process."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest

from app.ingest.direct_copy import COPY_TARGETS, TELEMETRY_LAYOUT
from tests.support import broker_process, free_port


@pytest.fixture
def deep_broker(mqtt_url: str, tmp_path: Path) -> Iterator[str]:
    """A Mosquitto configured like Gito's managed broker (deep queues, no in-flight cap): a default-configured one
    drops QoS 1 messages past 1,000 queued for an offline session, which is the broker losing them, not Gito."""
    if not shutil.which('mosquitto'):
        yield mqtt_url
        return
    port = free_port()
    config = tmp_path / 'mosquitto.conf'
    config.write_text('\n'.join(['allow_anonymous true', 'max_inflight_messages 0', 'max_queued_messages 1000000',
                                 'max_queued_bytes 0', 'persistence false', f'listener {port} 127.0.0.1', '']))
    with broker_process(['mosquitto', '-c', str(config)], port) as url:
        yield url


async def telemetry_is_partitioned(database_url: str) -> bool:
    """The plain-PostgreSQL layout (`telemetry_points` partitioned), not TimescaleDB's (a hypertable behind views)."""
    connection = await asyncpg.connect(database_url)
    try:
        kind = await connection.fetchval(TELEMETRY_LAYOUT)
    finally:
        await connection.close()
    return bool(kind == 'p')


async def copy_target(database_url: str) -> tuple[bool, str]:
    """The layout (True: plain PostgreSQL) and the relation the ingest role copies into, schema-qualified."""
    points = await telemetry_is_partitioned(database_url)
    schema, table, _ = COPY_TARGETS[points]
    return points, f'{schema}.{table}'


@pytest.fixture(params=[True, False], ids=['direct-copy', 'staged'])
async def copy_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> bool:
    """Both ways the writer stores rows: COPY as the ingest role, or through the staging table (servers whose
    owner may not create a BYPASSRLS role). Ask for it before `platform`."""
    direct: bool = request.param
    monkeypatch.setenv('GITO_INGEST_DIRECT_COPY', '1' if direct else '0')
    return direct
