"""Faults during ingest, against the real services: PostgreSQL unreachable, Gito killed with SIGKILL.

Nothing the broker accepted is lost and nothing is stored twice. The long variants are marked slow; the default
suite runs a short one of each.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from uuid import UUID

import aiomqtt
import asyncpg
import orjson
import pytest
from sqlalchemy.exc import SQLAlchemyError

from app.ingest.mqtt_consumer import parse_mqtt_url
from app.models.schemas import DeviceCreate
from app.platform import Platform
from tests.conftest import NewTenant
from tests.faults import CuttableProxy, proxied_url, proxy_for
from tests.ingest.test_mqtt_ingest import eventually
from tests.support import free_port, serve, stop_platform

NOW_MS = int(time.time() * 1000) - 600_000  # every message has its own ts, ten minutes back and counting up


@pytest.fixture
async def pg_proxy(database_url: str, settings_env: None, monkeypatch: pytest.MonkeyPatch,
                   ) -> AsyncIterator[CuttableProxy]:
    """Gito's DATABASE_URL goes through a proxy the test can cut (request it before `platform`)."""
    proxy = proxy_for(database_url)
    await proxy.start()
    monkeypatch.setenv('DATABASE_URL', proxied_url(database_url, proxy))
    yield proxy
    await proxy.stop()


async def publish_series(mqtt_url: str, topic: str, count: int, *, per_second: float) -> None:
    target = parse_mqtt_url(mqtt_url, client_id=f'fault-pub-{os.getpid()}-{time.monotonic_ns()}')
    async with aiomqtt.Client(target.host, target.port, username=target.username, password=target.password,
                              identifier=target.client_id) as client:
        started = time.monotonic()
        for seq in range(count):
            payload = orjson.dumps({'level': float(seq), 'seq': seq, 'ts': NOW_MS + seq})
            await client.publish(topic, payload, qos=1)
            delay = started + (seq + 1) / per_second - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)


async def stored_levels(database_url: str, device_id: UUID) -> list[float]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch('SELECT value FROM telemetry WHERE device_id = $1 ORDER BY ts', device_id)
        return [row[0] for row in rows]
    finally:
        await connection.close()


async def wait_for_count(database_url: str, device_id: UUID, count: int, *, seconds: float) -> list[float]:
    deadline = time.monotonic() + seconds
    while True:
        levels = await stored_levels(database_url, device_id)
        if len(levels) >= count or time.monotonic() > deadline:
            return levels
        await asyncio.sleep(0.5)


async def publish_when_connected(platform: Platform, mqtt_url: str, tenant_id: UUID, device_id: UUID, count: int, *,
                                 per_second: float) -> asyncio.Task[None]:
    """Once Gito's consumer is connected, a task publishing `count` readings of the device."""
    for _ in range(100):
        if platform.link.connected:
            break
        await asyncio.sleep(0.05)
    topic = f'{tenant_id}/devices/{device_id}/telemetry'
    return asyncio.create_task(publish_series(mqtt_url, topic, count, per_second=per_second))


async def outage(pg_proxy: CuttableProxy, platform: Platform, new_tenant: NewTenant, database_url: str,
                 mqtt_url: str, *, cut_s: float, count: int) -> None:
    admin = (await new_tenant()).principal
    device, _ = await platform.devices.create(admin, DeviceCreate(name='Through the outage'))
    await platform.start()
    try:
        publishing = await publish_when_connected(platform, mqtt_url, admin.tenant_id, device.id, count,
                                                  per_second=count / (cut_s + 3))
        await asyncio.sleep(1)
        await pg_proxy.cut()
        cut_at = time.monotonic()
        while (await platform.ready())['database']:
            assert time.monotonic() - cut_at < 5, '/readyz still says the database is fine 5 s into the outage'
            await asyncio.sleep(0.2)
        await asyncio.sleep(max(0.0, cut_s - (time.monotonic() - cut_at)))
        assert not platform.writer.healthy
        await pg_proxy.restore()
        await publishing
        levels = await wait_for_count(database_url, device.id, count, seconds=30)
        assert levels == [float(seq) for seq in range(count)]  # 0 lost, 0 stored twice, in order
        assert (await platform.ready())['database']
    finally:
        await pg_proxy.restore()  # a failure while the database was cut must not leave the stop retrying forever
        await stop_platform(platform)


async def test_postgres_unreachable_for_a_few_seconds_loses_nothing(
    pg_proxy: CuttableProxy, platform: Platform, new_tenant: NewTenant, database_url: str, mqtt_url: str,
) -> None:
    await outage(pg_proxy, platform, new_tenant, database_url, mqtt_url, cut_s=5, count=300)


@pytest.mark.slow
async def test_postgres_unreachable_for_30_seconds_loses_nothing(
    pg_proxy: CuttableProxy, platform: Platform, new_tenant: NewTenant, database_url: str, mqtt_url: str,
) -> None:
    await outage(pg_proxy, platform, new_tenant, database_url, mqtt_url, cut_s=30, count=3000)


async def kill_during_ingest(platform: Platform, new_tenant: NewTenant, cli_env: dict[str, str], database_url: str,
                             mqtt_url: str, *, count: int, per_second: float) -> None:
    admin = (await new_tenant()).principal
    device, _ = await platform.devices.create(admin, DeviceCreate(name='Survivor'))
    env = {**cli_env, 'MQTT_URL': mqtt_url, 'GITO_PORT': str(free_port()), 'GITO_MQTT_SESSION_EXPIRY_S': '300'}
    first = await asyncio.to_thread(serve, env)  # the same port on restart: the same MQTT client id and session
    topic = f'{admin.tenant_id}/devices/{device.id}/telemetry'
    publishing = asyncio.create_task(publish_series(mqtt_url, topic, count, per_second=per_second))
    try:
        await asyncio.sleep(count / per_second / 3)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        before = len(await stored_levels(database_url, device.id))
        await publishing  # the broker keeps what Gito did not acknowledge, and what arrives while it is down
        second = await asyncio.to_thread(serve, env)
        try:
            levels = await wait_for_count(database_url, device.id, count, seconds=60)
        finally:
            second.terminate()
            second.wait(timeout=20)
    finally:
        if first.poll() is None:
            first.kill()
    assert 0 < before < count, 'the kill should land in the middle of the stream'
    assert levels == [float(seq) for seq in range(count)]  # 0 lost, 0 duplicated


async def test_gito_killed_during_ingest_loses_and_duplicates_nothing(
    platform: Platform, new_tenant: NewTenant, cli_env: dict[str, str], database_url: str, deep_broker: str,
) -> None:
    await kill_during_ingest(platform, new_tenant, cli_env, database_url, deep_broker, count=1500, per_second=500)


@pytest.mark.slow
async def test_gito_killed_during_heavy_ingest_loses_and_duplicates_nothing(
    platform: Platform, new_tenant: NewTenant, cli_env: dict[str, str], database_url: str, deep_broker: str,
) -> None:
    await kill_during_ingest(platform, new_tenant, cli_env, database_url, deep_broker, count=20_000, per_second=2000)


async def test_a_device_talking_through_an_outage_stays_online_when_the_database_returns(
    pg_proxy: CuttableProxy, platform: Platform, new_tenant: NewTenant, mqtt_url: str,
) -> None:
    """While PostgreSQL is away the writer holds what arrives; the first presence sweep after it is back must not
    take that unwritten news for silence (this instance's state report is gone with its connection until the next
    round reconnects)."""
    admin = (await new_tenant()).principal
    device, _ = await platform.devices.create(admin, DeviceCreate(name='Talker', offline_after_s=5))
    changes = platform.bus.device_changed.subscribe(maxsize=1000, device_id=device.id)
    await platform.start()
    try:
        publishing = await publish_when_connected(platform, mqtt_url, admin.tenant_id, device.id, 60, per_second=5)
        online = await eventually(lambda: platform.devices.get(admin, device.id), lambda d: d.status == 'online')
        assert online.status == 'online'
        await pg_proxy.cut()
        await asyncio.sleep(8)  # longer than its offline_after_s without a written sign of life
        await pg_proxy.restore()
        restored = datetime.now(UTC)
        swept: set[UUID] = set()
        for _ in range(20):  # the sweep that happens to run first once the database is back, here at once
            try:
                swept |= {device_id for _, device_id in await platform.presence.sweep()}
                break
            except (OSError, asyncpg.PostgresError, SQLAlchemyError):
                await asyncio.sleep(0.1)  # a pooled connection the outage closed
        assert device.id not in swept
        await publishing
        written = await eventually(lambda: platform.devices.get(admin, device.id),
                                   lambda d: d.last_seen is not None and d.last_seen > restored, seconds=15)
        assert written.last_seen is not None and written.last_seen > restored
        assert written.status == 'online'
        assert 'offline' not in [change.change for change in changes.drain()]
    finally:
        changes.close()
        await pg_proxy.restore()  # a failure while the database was cut must not leave the stop retrying forever
        await stop_platform(platform)
