"""Messages without `ts` take their receive time: two of one device in one socket read are two readings, not one."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any
from uuid import UUID

import pytest

from app.ingest.mqtt_consumer import TURN_MESSAGES, LinkStatus, MqttConsumer
from app.ingest.mqtt_wire import Publish
from app.models.schemas import Principal
from app.platform import Platform
from tests.conftest import NewTenant
from tests.ingest.test_faults import stored_levels, wait_for_count
from tests.ingest.test_mqtt_ingest import eventually, make_device


class QuietLink:
    """Stands in for the broker connection: the consumer only acknowledges and pauses through it."""

    open = True

    def __init__(self) -> None:
        self.acked: list[bytes] = []
        self.paused = False

    def ack(self, packet_ids: list[bytes]) -> None:
        self.acked += packet_ids

    def pause(self) -> None:
        self.paused = True

    def resume(self) -> None:
        self.paused = False


@dataclass
class Rig:
    admin: Principal
    device_id: UUID
    topic: bytes
    consumer: MqttConsumer
    link: Any


@asynccontextmanager
async def consuming(platform: Platform, new_tenant: NewTenant, *, max_inflight: int = 20_000) -> AsyncIterator[Rig]:
    """A consumer handed socket reads directly (no broker), with the writer running behind it."""
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    await platform.bus.start()
    await platform.directory.start()
    await platform.writer.start()
    try:
        consumer = MqttConsumer(platform.mqtt_target, platform.directory, platform.writer, LinkStatus(),
                                max_inflight=max_inflight)
        await platform.directory.get(device.id)  # known: its messages are handled in the very call
        yield Rig(admin, device.id, f'{admin.tenant_id}/devices/{device.id}/telemetry'.encode(), consumer,
                  QuietLink())
    finally:
        await platform.writer.stop()
        await platform.directory.stop()


async def test_two_messages_in_one_read_are_both_stored(platform: Platform, new_tenant: NewTenant) -> None:
    async with consuming(platform, new_tenant) as rig:
        topic, link = rig.topic, rig.link
        rig.consumer._on_messages([(topic, b'{"level": 1}', b'\x00\x01'), (topic, b'{"level": 2}', b'\x00\x02')], link)
        rig.consumer._on_messages([(topic, b'{"level": 3}', b'\x00\x03')], link)
        await eventually(lambda: asyncio.sleep(0, link.acked), lambda acked: len(acked) == 3)
        page = await platform.telemetry.latest(rig.admin, rig.device_id)
        assert [(value.key, value.value) for value in page] == [('level', 3.0)]
        stored = await platform.devices.get(rig.admin, rig.device_id)
        assert (stored.readings_stored, stored.readings_duplicate) == (3, 0)


async def test_a_large_read_is_taken_in_turns_and_in_order(
    platform: Platform, new_tenant: NewTenant, database_url: str,
) -> None:
    """A socket read of 1,200 messages is decoded `TURN_MESSAGES` at a time, so the loop gets to other work (the
    writer's COPY) in between; a read arriving meanwhile waits behind it; every message is stored, in order of
    receipt (they carry no `ts`: their receive times keep rising across turns)."""
    async with consuming(platform, new_tenant) as rig:
        def read(numbers: range) -> list[Publish]:
            return [(rig.topic, b'{"level": %d, "seq": %d}' % (n, n), n.to_bytes(2, 'big')) for n in numbers]

        rig.consumer._on_messages(read(range(1, 1201)), rig.link)
        assert rig.consumer.received == TURN_MESSAGES  # the rest waits for the loop's next turns...
        rig.consumer._on_messages(read(range(1201, 1206)), rig.link)
        assert rig.consumer.received == TURN_MESSAGES  # ...and so does the next read, behind it
        await eventually(lambda: asyncio.sleep(0, rig.link.acked), lambda acked: len(acked) == 1205, seconds=15)
        assert rig.link.acked == [n.to_bytes(2, 'big') for n in range(1, 1206)]
        assert await stored_levels(database_url, rig.device_id) == [float(n) for n in range(1, 1206)]


async def test_messages_waiting_their_turn_count_towards_pausing(platform: Platform, new_tenant: NewTenant) -> None:
    """Received but not yet decoded is in flight too: a broker that sends past Receive Maximum (Mosquitto with
    `max_inflight_messages 0` does) must be paused, not buffered in memory without end (1.7 GB in 5 minutes at
    30,000 msg/s before this was counted)."""
    async with consuming(platform, new_tenant, max_inflight=1000) as rig:
        numbers = range(1, 1201)
        rig.consumer._on_messages([(rig.topic, b'{"level": %d}' % n, n.to_bytes(2, 'big')) for n in numbers], rig.link)
        assert rig.consumer.received == TURN_MESSAGES and rig.link.paused
        await eventually(lambda: asyncio.sleep(0, rig.link.acked), lambda acked: len(acked) == 1200, seconds=15)
        assert len(rig.link.acked) == 1200  # nothing lost for the pause


async def test_messages_of_a_closed_connection_waiting_their_turn_are_left_to_the_redelivery(
    platform: Platform, new_tenant: NewTenant, database_url: str,
) -> None:
    """Not acknowledged on a closed connection, they come again on the next one: taken as well, those without `ts`
    would be stored twice."""
    async with consuming(platform, new_tenant) as rig:
        numbers = range(1, 1201)
        rig.consumer._on_messages([(rig.topic, b'{"level": %d}' % n, n.to_bytes(2, 'big')) for n in numbers], rig.link)
        rig.link.open = False  # the connection drops before the rest's turn
        await wait_for_count(database_url, rig.device_id, TURN_MESSAGES, seconds=10)
        await asyncio.sleep(0.5)  # time for the rest, were they taken
        assert rig.consumer.received == TURN_MESSAGES
        assert await stored_levels(database_url, rig.device_id) == [float(n) for n in range(1, TURN_MESSAGES + 1)]


async def test_a_pause_for_unread_messages_that_are_all_ignored_ends(platform: Platform, new_tenant: NewTenant,
                                                                     caplog: pytest.LogCaptureFixture) -> None:
    """Messages on a topic that names no device are acknowledged and dropped, never in flight: a pause they caused
    must end once they are read, or the consumer would stop reading for good. Each is counted; the log gets one
    line for the flood, not one per message."""
    caplog.set_level(logging.WARNING, logger='app.ingest.mqtt_consumer')
    async with consuming(platform, new_tenant, max_inflight=1000) as rig:
        rig.consumer._reader = SimpleNamespace(link=rig.link)  # type: ignore[assignment]  # the reader's current link
        stranger = f'{rig.admin.tenant_id}/devices/not-a-device/telemetry'.encode()  # matches the subscription
        rig.consumer._on_messages([(stranger, b'{"level": 1}', n.to_bytes(2, 'big')) for n in range(1, 2001)],
                                  rig.link)
        assert rig.link.paused
        await eventually(lambda: asyncio.sleep(0, rig.consumer.ignored), lambda ignored: ignored == 2000)
        assert rig.consumer.ignored == 2000 and not rig.link.paused
    warnings = [r for r in caplog.records if r.getMessage() == 'message for unknown device ignored']
    assert len(warnings) == 1 and 'not-a-device' in vars(warnings[0])['topic']
