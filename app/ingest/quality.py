"""Data quality per device, tracked in memory as messages are prepared for a batch.

- `seq` duplicates: a message whose `seq` was already taken within the last `WINDOW` sequence numbers is dropped
  (and its readings counted as duplicates). Older numbers than the window cannot be told apart from a device
  that restarted its counter: a `seq` more than `WINDOW` below the highest seen starts the tracking afresh.
- sequence gaps: a jump forward opens a missing range; a late arrival inside it closes that part (and counts as
  out of order). The newest `MAX_RANGES` open ranges are kept with their count of missing messages.
- out of order: a message older (by its own timestamp) than the newest one already taken from that device.
- clock skew: device `ts` minus server receive time, for messages that carry `ts`.

The state lives in memory and is written with the device counters (see `device_tallies.py`); after a restart
the highest `seq` and the open ranges are read back, the duplicate window starts empty (a crash's redelivered
messages are then caught by the (device, key, ts) primary key, as long as the device sends `ts`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

WINDOW = 1024
MAX_RANGES = 20
_MASK = (1 << WINDOW) - 1


SeqMark = tuple[int, list[list[int]]]  # a device's highest `seq` and open gaps, as written with its counters


@dataclass
class SeqState:
    highest: int | None = None
    seen: int = 0  # bit i set: `highest - i` was taken (bit 0 is `highest` itself)
    gaps: list[list[int]] = field(default_factory=list)  # open missing ranges [first, last], oldest first
    newest_ts: datetime | None = None

    def missing(self) -> int:
        return sum(last - first + 1 for first, last in self.gaps)


@dataclass(slots=True)
class QualityDelta:
    """What one batch changed for one device; added to the device counters after the batch commits."""

    duplicates: int = 0  # readings dropped
    out_of_order: int = 0
    gaps_opened: int = 0  # missing sequence numbers found in this batch (net of those filled late)


def next_in_order(state: SeqState, seq: int | None, ts: datetime) -> bool:
    """The common case, taken without a delta (nothing to count): newer than any message taken, and the next `seq`
    (or none). False, with nothing changed, leaves the message to `take`."""
    newest = state.newest_ts
    if newest is None or ts <= newest:
        return False
    if seq is not None:
        highest = state.highest
        if highest is None or seq != highest + 1:
            return False
        state.seen = ((state.seen << 1) | 1) & _MASK
        state.highest = seq
    state.newest_ts = ts
    return True


def take(state: SeqState, delta: QualityDelta, *, seq: int | None, ts: datetime, readings: int) -> bool:
    """Account one message; False when it is a duplicate to drop."""
    if state.newest_ts is not None and ts < state.newest_ts:
        delta.out_of_order += 1
    elif state.newest_ts is None or ts > state.newest_ts:
        state.newest_ts = ts
    if seq is None:
        return True
    highest = state.highest
    if highest is None or seq > highest:
        if highest is not None and seq > highest + 1:
            _open_gap(state, delta, highest + 1, seq - 1)
        shift = seq - highest if highest is not None else WINDOW
        state.seen = ((state.seen << shift) | 1) & _MASK if shift < WINDOW else 1
        state.highest = seq
        return True
    behind = highest - seq
    if behind >= WINDOW:  # the device restarted its counter
        state.highest, state.seen, state.gaps = seq, 1, []
        return True
    if state.seen >> behind & 1:
        delta.duplicates += readings
        return False
    state.seen |= 1 << behind
    if _close_gap(state, seq):
        delta.gaps_opened -= 1
    return True


def _open_gap(state: SeqState, delta: QualityDelta, first: int, last: int) -> None:
    state.gaps.append([first, last])
    delta.gaps_opened += last - first + 1
    if len(state.gaps) > MAX_RANGES:
        del state.gaps[0]


def _close_gap(state: SeqState, seq: int) -> bool:
    for index, (first, last) in enumerate(state.gaps):
        if first <= seq <= last:
            pieces = [[first, seq - 1]] if first < seq else []
            if seq < last:
                pieces.append([seq + 1, last])
            state.gaps[index:index + 1] = pieces
            return True
    return False


def skew_ms(ts: datetime, received_at: datetime) -> int:
    """Device `ts` minus receive time."""
    return round((ts - received_at).total_seconds() * 1000)
