"""A batch made ready once, before its first transaction: `seq` duplicates out, data-quality counters taken.

It is then retried until it commits, so nothing here may run twice for one batch.
"""

from __future__ import annotations

from uuid import UUID

from app.ingest.batch_items import Inbound, Item, Prepared, Rejection
from app.ingest.device_tallies import DeviceTally, Tallies
from app.ingest.payload import Message
from app.ingest.quality import QualityDelta, SeqState, next_in_order, skew_ms, take


def prepare(items: list[Item], tallies: Tallies, sequences: dict[UUID, SeqState]) -> Prepared:
    """Sequence duplicates out, counters taken: once per batch (it is then retried until it commits)."""
    prepared = Prepared(items)
    for item in items:
        device_id = item.device_id
        tally = tallies.get(device_id)
        if tally is None:
            tally = tallies[device_id] = DeviceTally(item.tenant_id)
        if isinstance(item, Rejection):
            tally.received += 1
            tally.malformed += 1
            tally.live = True
            tally.reason, tally.excerpt = item.reason, item.excerpt
            if item.at > tally.at:
                tally.at = item.at
            continue
        replayed = item.replayed
        if not replayed:
            tally.received += len(item.messages)
            tally.live = True
            if item.received_at > tally.at:
                tally.at = item.received_at
        if not item.messages:
            continue
        accepted = prepared.messages.get(item.tenant_id)
        if accepted is None:
            accepted = prepared.messages[item.tenant_id] = []
        if replayed:  # old data: its seq is not news; duplicates are caught by (device, key, ts)
            prepared.replayed.add(device_id)
            accepted += [(device_id, message) for message in item.messages]
            offered = sum(len(message.readings) for message in item.messages)
        else:
            offered = take_sequenced(item, accepted, tally, sequences)
        if offered:
            tally.stored += offered
            held = prepared.offered.get(device_id)
            prepared.offered[device_id] = (item.tenant_id, offered + (held[1] if held else 0))
    return prepared

def take_sequenced(item: Inbound, accepted: list[tuple[UUID, Message]], tally: DeviceTally,
                   sequences: dict[UUID, SeqState]) -> int:
    """Messages taken (not `seq` duplicates) into `accepted`; the readings they hold. The clock skew is the last
    message's that gave `ts`."""
    device_id = item.device_id
    state = sequences.get(device_id)
    if state is None:
        state = sequences[device_id] = SeqState()
    delta = None  # made only when there is something to count
    offered = 0
    sent_ts = None
    for message in item.messages:
        if not next_in_order(state, message.seq, message.ts):
            if delta is None:
                delta = QualityDelta()
            if not take(state, delta, seq=message.seq, ts=message.ts, readings=len(message.readings)):
                continue
        accepted.append((device_id, message))
        offered += len(message.readings)
        if message.ts_sent:
            sent_ts = message.ts
    if sent_ts is not None:
        tally.add_skew(skew_ms(sent_ts, item.received_at))
    if delta is not None:
        tally.add_quality(delta)
    return offered
