"""Publish with a real MQTT client; read back what PostgreSQL stored."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import TypeVar
from uuid import UUID, uuid4

import aiomqtt
import orjson

from app.ingest.mqtt_consumer import hashed_uuid, parse_mqtt_url
from app.models.schemas import DeviceCreate, DevicePublic, Principal
from app.platform import Platform
from tests.conftest import NewTenant

T = TypeVar('T')


async def eventually(probe: Callable[[], Awaitable[T]], check: Callable[[T], bool], *, seconds: float = 5) -> T:
    deadline = asyncio.get_running_loop().time() + seconds
    while True:
        value = await probe()
        if check(value) or asyncio.get_running_loop().time() > deadline:
            return value
        await asyncio.sleep(0.05)


async def publish(platform: Platform, topic: str, *payloads: bytes, url: str | None = None) -> None:
    """As a device would, to the platform's broker (or to the one at `url`, where Gito's own link goes elsewhere)."""
    target = parse_mqtt_url(url or platform.resolved.mqtt_url or '', client_id='test-publisher')
    async with aiomqtt.Client(target.host, target.port, username=target.username, password=target.password) as client:
        for payload in payloads:
            await client.publish(topic, payload, qos=1)


async def make_device(platform: Platform, principal: Principal) -> DevicePublic:
    device, _ = await platform.devices.create(principal, DeviceCreate(name='Sensor'))
    return device


def test_ids_taken_from_topics_match_the_same_ids_read_elsewhere() -> None:
    """Topic ids are asyncpg's UUIDs (hashed in C); the writer's dicts mix them with ids from the database and API."""
    plain = uuid4()
    for text in (str(plain), str(plain).upper(), f'{{{plain}}}', f'urn:uuid:{plain}', plain.hex):
        parsed = hashed_uuid(text)
        assert parsed == plain and plain == parsed and hash(parsed) == hash(plain) and str(parsed) == str(plain)
        assert {plain: 'found'}[parsed] == 'found' and {parsed: 'found'}[plain] == 'found'
    assert type(hashed_uuid(str(plain))).__hash__ is not UUID.__hash__  # no Python call per look-up


async def test_published_telemetry_is_stored_and_latest_is_newest_by_timestamp(
    running_platform: Platform, new_tenant: NewTenant,
) -> None:
    platform = running_platform
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    topic = f'{admin.tenant_id}/devices/{device.id}/telemetry'
    now = datetime.now(UTC)
    newer, older = int(now.timestamp() * 1000), int((now - timedelta(minutes=5)).timestamp() * 1000)
    stored = platform.bus.telemetry_stored.subscribe(where=lambda event: event.device_id == device.id)
    await publish(platform, topic,
                  orjson.dumps({'temperature': 22.5, 'door': 'open', 'ts': newer, 'seq': 2}),
                  orjson.dumps({'temperature': 19.0, 'door': 'closed', 'ts': older, 'seq': 1}))
    latest = await eventually(lambda: platform.telemetry.latest(admin, device.id),
                              lambda values: len(values) == 2 and values[1].value == 22.5)
    assert {v.key: v.value for v in latest} == {'door': 'open', 'temperature': 22.5}
    page = await platform.telemetry.raw(admin, device.id, start=now - timedelta(hours=1),
                                        end=now + timedelta(minutes=1), keys=['temperature'])
    assert [p.value for p in page.points] == [19.0, 22.5]
    seen = await platform.devices.get(admin, device.id)
    assert seen.status == 'online' and seen.messages_received == 2
    event = await stored.get(timeout=5)
    assert event.tenant_id == admin.tenant_id and {r.key for r in event.readings} == {'temperature', 'door'}


async def test_malformed_payload_is_counted_and_explained(running_platform: Platform, new_tenant: NewTenant) -> None:
    platform = running_platform
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    topic = f'{admin.tenant_id}/devices/{device.id}/telemetry'
    await publish(platform, topic, b'{"temperature": NaN}', b'{"temperature": 20}')
    seen = await eventually(lambda: platform.devices.get(admin, device.id), lambda d: d.messages_received == 2)
    assert seen.messages_malformed == 1
    assert seen.last_malformed_reason is not None and 'not valid JSON' in seen.last_malformed_reason
    assert seen.last_malformed_excerpt == '{"temperature": NaN}'
    assert [v.value for v in await platform.telemetry.latest(admin, device.id)] == [20.0]


async def test_topic_of_another_tenant_is_ignored(running_platform: Platform, new_tenant: NewTenant) -> None:
    platform = running_platform
    owner, intruder = (await new_tenant()).principal, (await new_tenant()).principal
    device = await make_device(platform, owner)
    await publish(platform, f'{intruder.tenant_id}/devices/{device.id}/telemetry', b'{"spoofed": 1}')
    await publish(platform, f'{owner.tenant_id}/devices/{device.id}/telemetry', b'{"real": 1}')
    latest = await eventually(lambda: platform.telemetry.latest(owner, device.id), lambda values: bool(values))
    assert [v.key for v in latest] == ['real']


async def test_heartbeat_marks_online_and_silence_turns_offline(
    running_platform: Platform, new_tenant: NewTenant,
) -> None:
    platform = running_platform
    admin = (await new_tenant()).principal
    device, _ = await platform.devices.create(admin, DeviceCreate(name='Quiet', offline_after_s=5))
    changes = platform.bus.device_changed.subscribe(where=lambda event: event.device_id == device.id)
    await publish(platform, f'{admin.tenant_id}/devices/{device.id}/status', b'{"state": "hello"}')
    online = await eventually(lambda: platform.devices.get(admin, device.id), lambda d: d.status == 'online')
    assert online.status == 'online' and online.messages_received == 0
    offline = await eventually(lambda: platform.devices.get(admin, device.id), lambda d: d.status == 'offline',
                               seconds=12)
    assert offline.status == 'offline'
    kinds = [event.change for event in changes.drain()]
    assert kinds[-2:] == ['online', 'offline']


async def test_commit_listeners_see_every_batch_even_when_one_fails(
    running_platform: Platform, new_tenant: NewTenant,
) -> None:
    from app.bus import TelemetryStored

    platform = running_platform
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    seen: list[TelemetryStored] = []

    async def broken(_events: list[TelemetryStored]) -> None:
        raise RuntimeError('listener bug')

    async def record(events: list[TelemetryStored]) -> None:
        seen.extend(event for event in events if event.device_id == device.id)

    platform.writer.on_committed(broken)
    platform.writer.on_committed(record)
    topic = f'{admin.tenant_id}/devices/{device.id}/telemetry'
    await publish(platform, topic, *(orjson.dumps({'n': i}) for i in range(20)))
    await eventually(lambda: asyncio.sleep(0, len(seen)), lambda _: sum(len(e.readings) for e in seen) == 20)
    assert sorted(r.value for e in seen for r in e.readings) == [float(i) for i in range(20)]  # type: ignore[type-var]
