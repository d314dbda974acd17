"""A flush of latest values and device counters that cannot be written is put back, under what came since."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from app.bus import EventBus
from app.ingest.device_tallies import DeviceTally
from app.ingest.state_flush import StateFlush

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
