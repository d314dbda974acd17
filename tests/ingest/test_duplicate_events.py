"""A retransmitted reading is stored once and reported once: rules and open pages do not see it again."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from app.bus import TelemetryStored
from app.ingest.payload import Message
from app.ingest.writer import Inbound
from app.platform import Platform
from tests.conftest import NewTenant
from tests.ingest.test_mqtt_ingest import eventually, make_device

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def test_duplicates_by_timestamp_and_by_seq_are_left_out_of_the_committed_events(
    copy_path: bool, platform: Platform, new_tenant: NewTenant,
) -> None:
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    committed: list[TelemetryStored] = []

    async def listen(events: list[TelemetryStored]) -> None:
        committed.extend(events)

    platform.writer.on_committed(listen)
    page = platform.bus.telemetry_stored.subscribe(where=lambda event: event.device_id == device.id)
    await platform.writer.start()

    async def send(*messages: Message) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        await platform.writer.submit(Inbound(admin.tenant_id, device.id, list(messages), datetime.now(UTC),
                                             done=done))
        await asyncio.wait_for(done, timeout=30)

    def seen() -> list[tuple[str, float, datetime]]:
        readings = [(r.key, r.value, r.ts) for event in committed for r in event.readings]
        committed.clear()
        return readings  # type: ignore[return-value]

    try:
        await send(Message(T0, 1, {'temperature': 20.0, 'humidity': 40.0}))
        assert platform.writer.copies_directly is copy_path
        assert seen() == [('temperature', 20.0, T0), ('humidity', 40.0, T0)]
        # same timestamp again (a device that resends without seq), one key new: only the new one is news
        await send(Message(T0, None, {'temperature': 99.0, 'pressure': 1013.0}))
        assert seen() == [('pressure', 1013.0, T0)]
        # twice the same key and timestamp in one batch: the first is stored and reported, the second neither
        await send(Message(T0 + timedelta(seconds=3), None, {'temperature': 30.0}),
                   Message(T0 + timedelta(seconds=3), None, {'temperature': 31.0}))
        assert seen() == [('temperature', 30.0, T0 + timedelta(seconds=3))]
        # seq 1 again with a later timestamp (a retransmission stamped on arrival): not stored, not reported
        await send(Message(T0 + timedelta(seconds=5), 1, {'temperature': 21.0}),
                   Message(T0 + timedelta(seconds=6), 2, {'temperature': 22.0}))
        assert seen() == [('temperature', 22.0, T0 + timedelta(seconds=6))]
        # nothing new at all: no event
        await send(Message(T0, None, {'humidity': 41.0}))
        assert seen() == []
        events = page.drain()
        assert [[(r.key, r.value) for r in event.readings] for event in events] == [
            [('temperature', 20.0), ('humidity', 40.0)], [('pressure', 1013.0)], [('temperature', 30.0)],
            [('temperature', 22.0)]]
        stored = await eventually(lambda: platform.devices.get(admin, device.id),
                                  lambda state: state.readings_duplicate == 4)
        assert (stored.messages_received, stored.readings_stored, stored.readings_duplicate) == (7, 5, 4)
        latest = {value.key: value.value for value in await platform.telemetry.latest(admin, device.id)}
        assert latest == {'temperature': 22.0, 'humidity': 40.0, 'pressure': 1013.0}
    finally:
        page.close()
        await platform.writer.stop()
