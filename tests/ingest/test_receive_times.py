"""Messages without `ts` take their receive time: two of one device in one socket read are two readings, not one."""

from __future__ import annotations

import asyncio
from typing import Any

from app.ingest.mqtt_consumer import LinkStatus, MqttConsumer
from app.platform import Platform
from tests.conftest import NewTenant
from tests.ingest.test_mqtt_ingest import eventually, make_device


class QuietLink:
    """Stands in for the broker connection: the consumer only acknowledges and pauses through it."""

    open = True

    def __init__(self) -> None:
        self.acked: list[bytes] = []

    def ack(self, packet_ids: list[bytes]) -> None:
        self.acked += packet_ids

    def pause(self) -> None:
        """Nothing to pause."""


async def test_two_messages_in_one_read_are_both_stored(platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    await platform.bus.start()
    await platform.directory.start()
    await platform.writer.start()
    try:
        consumer = MqttConsumer(platform.mqtt_target, platform.directory, platform.writer, LinkStatus())
        topic = f'{admin.tenant_id}/devices/{device.id}/telemetry'.encode()
        link: Any = QuietLink()
        await platform.directory.get(device.id)  # known: both are handled in this very call
        consumer._on_messages([(topic, b'{"level": 1}', b'\x00\x01'), (topic, b'{"level": 2}', b'\x00\x02')], link)
        consumer._on_messages([(topic, b'{"level": 3}', b'\x00\x03')], link)
        await eventually(lambda: asyncio.sleep(0, link.acked), lambda acked: len(acked) == 3)
        page = await platform.telemetry.latest(admin, device.id)
        assert [(value.key, value.value) for value in page] == [('level', 3.0)]
        stored = await platform.devices.get(admin, device.id)
        assert (stored.readings_stored, stored.readings_duplicate) == (3, 0)
    finally:
        await platform.writer.stop()
        await platform.directory.stop()
