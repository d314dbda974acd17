"""A flush of latest values and device counters that cannot be written is put back, under what came since."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import asyncpg
import orjson

from app.bus import EventBus
from app.ingest.device_tallies import DeviceTally
from app.ingest.quality import SeqState
from app.ingest.state_flush import StateFlush
from app.platform import Platform
from tests.conftest import NewTenant
from tests.ingest.test_mqtt_ingest import make_device

T0 = datetime(2026, 1, 1, tzinfo=UTC)


async def test_a_failed_flush_is_put_back_newest_value_winning_and_counts_added() -> None:
    tenant, device = uuid4(), uuid4()
    state = StateFlush('postgresql://postgres@127.0.0.1:1/unreachable', EventBus(), {}, lambda _: None,
                       interval_s=0)
    state.latest.for_device(tenant, device).update({'load': (T0, 1.0), 'mode': (T0, 'auto')})
    state.tallies[device] = DeviceTally(tenant, received=3, stored=3, at=T0, live=True)
    state.start_aside()
    # while it is being written (and fails): newer data for one key, older for the other, more messages
    state.latest.for_device(tenant, device).update({'load': (T0 + timedelta(seconds=5), 2.0),
                                                    'mode': (T0 - timedelta(seconds=5), 'manual')})
    state.tallies[device] = DeviceTally(tenant, received=2, stored=1, duplicate=1, at=T0 + timedelta(seconds=5))
    await state.wait()
    assert state.failures == 1
    assert state.latest.take().values == {device: {'load': (T0 + timedelta(seconds=5), 2.0), 'mode': (T0, 'auto')}}
    tally = state.tallies[device]
    assert (tally.received, tally.stored, tally.duplicate, tally.at, tally.live) == (5, 4, 1, T0 + timedelta(seconds=5),
                                                                                   True)
    await state.close()


async def test_a_flush_writes_the_sequence_mark_as_it_stood_when_taken_not_the_next_batch_s(
    platform: Platform, new_tenant: NewTenant,
) -> None:
    """The next batch moves the live sequence state while a flush aside is still being written. Were its marks
    written before it commits and Gito then crashed, the broker's redelivery of it would be dropped as duplicates."""
    admin = (await new_tenant()).principal
    device = await make_device(platform, admin)
    live = {device.id: SeqState(highest=3, seen=0b111, gaps=[[1, 1]])}
    state = StateFlush(platform.writer._dsn, EventBus(), {}, live.get, interval_s=0)
    state.tallies[device.id] = DeviceTally(admin.tenant_id, received=3, stored=3, at=T0, live=True)
    snapshot = state.take()
    live[device.id].highest = 9  # the next batch, prepared and not yet committed: seq 9, a gap of 4..8
    live[device.id].gaps.append([4, 8])
    connection = await asyncpg.connect(platform.writer._dsn)
    try:
        async with connection.transaction():
            await state.write(connection, snapshot, {})  # sets the tenant for the rest of the transaction
            row = await connection.fetchrow('SELECT last_seq, seq_gaps, readings_stored FROM devices WHERE id = $1',
                                            device.id)
    finally:
        await connection.close()
    assert (row['last_seq'], orjson.loads(row['seq_gaps']), row['readings_stored']) == (3, [[1, 1]], 3)
