"""A batch closes `GITO_INGEST_BATCH_MS` after its oldest message arrived, not that long after the writer got to it."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest

from app.bus import TelemetryStored
from app.ingest.payload import Message
from app.ingest.writer import Inbound
from app.platform import Platform
from tests.conftest import NewTenant
from tests.ingest.test_mqtt_ingest import make_device

BATCH_S = 0.5
BUSY_S = 0.6  # the first batch's commit listener holds the writer this long


@pytest.fixture
def slow_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv('GITO_INGEST_BATCH_MS', str(int(BATCH_S * 1000)))


async def test_what_queued_while_the_writer_was_busy_is_not_held_another_full_delay(
    slow_batches: None, platform: Platform, new_tenant: NewTenant,
) -> None:
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    batches = 0

    async def busy_first_time(events: list[TelemetryStored]) -> None:
        nonlocal batches
        batches += 1
        if batches == 1:
            await asyncio.sleep(BUSY_S)

    platform.writer.on_committed(busy_first_time)
    await platform.writer.start()
    loop = asyncio.get_running_loop()

    def offer(value: float) -> asyncio.Future[None]:
        done: asyncio.Future[None] = loop.create_future()
        platform.writer.offer([Inbound(admin.tenant_id, device.id, [Message(datetime.now(UTC), None,
                                                                            {'t': value})],
                                       datetime.now(UTC), done=done)])
        return done

    try:
        first = offer(1.0)
        await asyncio.wait_for(first, timeout=10)
        await asyncio.sleep(0.05)  # the writer is in the first batch's listener now
        offered_at = time.monotonic()
        await asyncio.wait_for(offer(2.0), timeout=10)
        waited = time.monotonic() - offered_at
    finally:
        await platform.writer.stop()
    # It waited out the listener (~0.55 s) and then went at once: its delay was spent while it queued. Holding it
    # another full delay after the listener would make this ~1.05 s.
    assert BUSY_S - 0.1 < waited < BUSY_S + BATCH_S * 0.6, waited
    assert batches == 2
