"""Two Gito processes on one broker with GITO_INGEST_SHARED=1: each message stored once, both take a share, and
one of them killed mid-stream and started again loses nothing."""

from __future__ import annotations

import asyncio
import re
import signal
import time
from uuid import UUID

import aiomqtt
import httpx
import orjson

from app.models.schemas import DeviceCreate
from app.platform import Platform
from tests.conftest import NewTenant
from tests.ingest.test_faults import stored_levels
from tests.support import free_port, serve

NOW_MS = int(time.time() * 1000) - 600_000


def committed(port: str) -> int:
    text = httpx.get(f'http://127.0.0.1:{port}/metrics', timeout=5).text
    match = re.search(r'^gito_ingest_messages_total (\d+)$', text, re.MULTILINE)
    assert match, text
    return int(match.group(1))


async def publish_round(broker: str, topics: list[str], first: int, count: int) -> None:
    host, port = broker.removeprefix('mqtt://').split(':')
    async with aiomqtt.Client(host, int(port), identifier=f'shared-pub-{time.monotonic_ns()}') as client:
        for seq in range(first, first + count):
            payload = orjson.dumps({'n': float(seq), 'seq': seq, 'ts': NOW_MS + seq})
            await client.publish(topics[seq % len(topics)], payload, qos=1)
            if seq % 200 == 0:
                await asyncio.sleep(0.05)


async def all_stored(database_url: str, devices: list[UUID], total: int, *, seconds: float) -> list[float]:
    deadline = time.monotonic() + seconds
    while True:
        values: list[float] = []
        for device in devices:
            values += await stored_levels(database_url, device)
        values.sort()
        if len(values) >= total or time.monotonic() > deadline:
            return values
        await asyncio.sleep(0.5)


async def test_two_instances_share_the_stream_and_survive_one_being_killed(
    platform: Platform, new_tenant: NewTenant, cli_env: dict[str, str], database_url: str, deep_broker: str,
) -> None:
    admin = (await new_tenant()).principal
    devices = [(await platform.devices.create(admin, DeviceCreate(name=f'Shared {i}')))[0].id for i in range(8)]
    topics = [f'{admin.tenant_id}/devices/{device}/telemetry' for device in devices]
    envs = [{**cli_env, 'MQTT_URL': deep_broker, 'GITO_PORT': str(free_port()), 'GITO_INGEST_SHARED': '1',
             'GITO_MQTT_SESSION_EXPIRY_S': '300'} for _ in range(2)]
    first, second = [await asyncio.to_thread(serve, env) for env in envs]
    try:
        await publish_round(deep_broker, topics, 0, 1000)
        values = await all_stored(database_url, devices, 1000, seconds=30)
        assert values == [float(n) for n in range(1000)]  # each exactly once
        shares = [committed(env['GITO_PORT']) for env in envs]
        assert all(share > 0 for share in shares) and sum(shares) >= 1000, shares

        publishing = asyncio.create_task(publish_round(deep_broker, topics, 1000, 2000))
        await asyncio.sleep(0.5)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
        await publishing
        first = await asyncio.to_thread(serve, envs[0])  # its session (and what the broker holds for it) resumes
        values = await all_stored(database_url, devices, 3000, seconds=60)
        assert values == [float(n) for n in range(3000)]  # 0 lost, 0 twice
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.terminate()
                process.wait(timeout=20)
