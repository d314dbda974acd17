from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from uuid import uuid4

from app.bus import DeviceChanged, EventBus, RedisEventBus, TelemetryStored
from app.models.telemetry import Message


def changed(tenant: object = None) -> DeviceChanged:
    return DeviceChanged(tenant_id=tenant or uuid4(), device_id=uuid4(), change='updated')


async def test_subscribers_get_events_filtered_and_bounded() -> None:
    bus = EventBus()
    tenant = uuid4()
    mine = bus.device_changed.subscribe(maxsize=3, where=lambda event: event.tenant_id == tenant)
    everyone = bus.device_changed.subscribe()
    events = [changed(tenant) for _ in range(5)]
    for event in events:
        bus.device_changed.publish(event)
    bus.device_changed.publish(changed())
    assert mine.drain() == events[2:]
    assert mine.dropped == 2
    assert len(everyone.drain()) == 6
    mine.close()
    assert bus.device_changed.subscriber_count == 1


async def test_subscribers_routed_by_tenant_or_device_get_only_theirs() -> None:
    bus = EventBus()
    tenant, other = uuid4(), uuid4()
    device = DeviceChanged(tenant_id=tenant, device_id=uuid4(), change='online')
    sibling = DeviceChanged(tenant_id=tenant, device_id=uuid4(), change='online')
    foreign = DeviceChanged(tenant_id=other, device_id=uuid4(), change='online')
    page = bus.device_changed.subscribe(device_id=device.device_id)
    fleet = bus.device_changed.subscribe(tenant_id=tenant)
    offline_only = bus.device_changed.subscribe(tenant_id=tenant, where=lambda event: event.change == 'offline')
    second_page = bus.device_changed.subscribe(device_id=device.device_id)
    for event in (device, sibling, foreign):
        bus.device_changed.publish(event)
    assert page.drain() == [device]
    assert second_page.drain() == [device]
    assert fleet.drain() == [device, sibling]
    assert offline_only.drain() == []
    assert bus.device_changed.subscriber_count == 4
    page.close()
    bus.device_changed.publish(device)
    assert page.drain() == []
    assert second_page.drain() == [device]
    for subscription in (second_page, fleet, offline_only):
        subscription.close()
    assert bus.device_changed.subscriber_count == 0


async def test_redis_bus_fans_events_out_across_instances(redis_url: str) -> None:
    prefix = f'gito:test:{uuid4().hex}:'
    first, second = RedisEventBus(redis_url, prefix=prefix), RedisEventBus(redis_url, prefix=prefix)
    await first.start()
    await second.start()
    try:
        on_first = first.device_changed.subscribe()
        on_second = second.device_changed.subscribe()
        await asyncio.sleep(0.1)
        event = changed()
        first.device_changed.publish(event)
        assert await on_second.get(timeout=5) == event
        assert await on_first.get(timeout=1) == event
        await asyncio.sleep(0.3)
        assert on_first.drain() == []  # its own event is not delivered twice
    finally:
        await first.stop()
        await second.stop()


async def test_redis_bus_carries_a_whole_batch_of_telemetry_events(redis_url: str) -> None:
    prefix = f'gito:test:{uuid4().hex}:'
    first, second = RedisEventBus(redis_url, prefix=prefix), RedisEventBus(redis_url, prefix=prefix)
    await first.start()
    await second.start()
    try:
        on_second = second.telemetry_stored.subscribe(maxsize=5000)
        await asyncio.sleep(0.1)
        now = datetime.now(UTC)
        sent = [TelemetryStored(uuid4(), uuid4(),
                                (Message(now, i, {'t': float(i), 'mode': 'eco', 'cfg': {'a': [1, 2]}}),), now)
                for i in range(3000)]
        for event in sent:
            first.telemetry_stored.publish(event)
        received: list[TelemetryStored] = []
        while len(received) < len(sent):
            received.append(await on_second.get(timeout=5))
        assert received == sent
        assert received[7].readings[2].value == {'a': [1, 2]} and received[7].readings[0].ts == now
    finally:
        await first.stop()
        await second.stop()
