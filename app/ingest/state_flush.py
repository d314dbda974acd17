"""Latest values and device counters of committed batches, written collapsed: inline when idle, else aside.

When the writer's queue is idle they are written in the transaction of the batch that was just taken, so at light
load a reading, its latest value and the device's counters commit together. Under load they are taken out (between
two batches, so that they hold only committed batches) and written in a transaction of their own on a second
connection while the next batches go on: a batch never waits for the flush, which is what kept p99 up when one
batch in every second carried the upsert of every device. One flush at a time; one that fails is put back under
what arrived since and written with the next.

How far the written state stands behind is tracked too (`flushed_through`): jobs that judge a device silent by its
`last_seen` must not take news still held here for silence (see `state_mark.py`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import asyncpg

from app.bus import DeviceChanged, EventBus
from app.ingest.device_tallies import Tallies, restore, write_tallies
from app.ingest.latest import LatestBuffer, LatestSnapshot, write_latest
from app.ingest.quality import SeqMark, SeqState

log = logging.getLogger(__name__)

Changes = list[tuple[UUID, UUID, str]]  # (tenant, device, 'online')


CHUNK_DEVICES = 1000  # per transaction of a flush aside
# At most this many devices' latest values and counters go inline, in a batch's transaction; more go aside. Inline,
# 10,000 devices held that batch (and everything queued behind it) for 0.3-0.5 s: at 10,000 msg/s, whenever the
# queue happened to be empty at the check, p99 publish→commit went from ~90 ms to ~250 ms (3 runs of 7).
INLINE_DEVICES = 200


@dataclass
class StateSnapshot:
    latest: LatestSnapshot
    tallies: Tallies
    # sequence marks copied when taken: the live state moves on with the next batch, which may not commit yet,
    # and a mark written ahead of its batch would have the broker's redelivery dropped as duplicates
    marks: dict[UUID, SeqMark]
    cutoff: float = 0.0  # wall-clock time: everything received before it is counted in this snapshot or an older one

    def chunks(self, size: int) -> list[StateSnapshot]:
        """The same in parts of at most `size` devices each."""
        devices = list(self.latest.values.keys() | self.tallies.keys())
        parts = []
        for start in range(0, len(devices), size):
            part = devices[start:start + size]
            values = {d: self.latest.values[d] for d in part if d in self.latest.values}
            parts.append(StateSnapshot(LatestSnapshot(values, {d: self.latest.tenants[d] for d in values}),
                                       {d: self.tallies[d] for d in part if d in self.tallies},
                                       {d: self.marks[d] for d in part if d in self.marks}))
        return parts


class StateFlush:
    def __init__(self, dsn: str, bus: EventBus, key_ids: dict[tuple[UUID, str], int],
                 sequence: Callable[[UUID], SeqState | None], *, interval_s: float,
                 uncounted_since: Callable[[], float | None] = lambda: None) -> None:
        self.latest = LatestBuffer(interval_s=interval_s)
        self.tallies: Tallies = {}  # device counters of prepared batches not yet written
        self._dsn = dsn
        self._bus = bus
        self._key_ids = key_ids
        self._sequence = sequence
        # monotonic: when the oldest item not yet counted arrived (or the broker began holding messages back), if any
        self._uncounted_since = uncounted_since
        self._through = time.time()  # the cutoff of the last snapshot written
        self._writing: list[StateSnapshot] = []  # taken and not yet written (aside, or inline with a batch)
        self._connection: asyncpg.Connection | None = None
        self._aside: asyncio.Task[None] | None = None
        self.seconds = 0.0  # cumulative time writing
        self.aside_writes = 0
        self.failures = 0

    @property
    def pending(self) -> bool:
        return bool(len(self.latest) or self.tallies)

    @property
    def small(self) -> bool:
        """Little enough to be written inline without holding a batch up noticeably."""
        return max(len(self.latest), len(self.tallies)) <= INLINE_DEVICES

    @property
    def busy(self) -> bool:
        """A flush is being written aside."""
        return self._aside is not None and not self._aside.done()

    def take(self) -> StateSnapshot:
        """What is pending, with the sequence marks as they stand: taken only where every batch prepared so far
        is committed, or commits in the transaction that writes it."""
        marks: dict[UUID, SeqMark] = {}
        for device_id in self.tallies:
            state = self._sequence(device_id)
            if state is not None and state.highest is not None:
                marks[device_id] = (state.highest, [gap[:] for gap in state.gaps])
        snapshot = StateSnapshot(self.latest.take(), self.tallies, marks, self._cutoff())
        self.tallies = {}
        self._writing.append(snapshot)
        return snapshot

    def unwritten_latest(self, tenant_id: UUID, device_id: UUID) -> dict[str, tuple[datetime, Any]]:
        """A device's latest values taken in and not yet in `latest_values` (newest timestamp per key): readers
        merge them over the table's, which stands up to a flush interval behind under load."""
        merged: dict[str, tuple[datetime, Any]] = {}
        sources = [snapshot.latest.held(tenant_id, device_id) for snapshot in self._writing]
        for values in (*sources, self.latest.held(tenant_id, device_id)):
            for key, held in values.items():
                newer = merged.get(key)
                if newer is None or newer[0] < held[0]:
                    merged[key] = held
        return merged

    def _done_with(self, snapshot: StateSnapshot) -> None:
        with contextlib.suppress(ValueError):
            self._writing.remove(snapshot)

    def _cutoff(self) -> float:
        """Wall-clock time before which everything received is counted (in the tallies or written already)."""
        now = time.time()
        since = self._uncounted_since()
        return now if since is None else now - max(0.0, time.monotonic() - since)

    def flushed_through(self) -> datetime:
        """Everything received before this is written to `devices` and `latest_values`."""
        through = self._cutoff() if not (self.pending or self.busy or self._writing) else self._through
        return datetime.fromtimestamp(through, UTC)

    def put_back(self, snapshot: StateSnapshot) -> None:
        self.latest.restore(snapshot.latest)
        restore(self.tallies, snapshot.tallies)
        self._done_with(snapshot)

    async def write(self, connection: asyncpg.Connection, snapshot: StateSnapshot,
                    duplicates: dict[UUID, int]) -> Changes:
        """Inside the caller's transaction; `duplicates` are corrections of the current batch not yet in the tallies.
        Returns the devices that came online. Counters first: their update locks the rows of the devices that still
        exist, so none of them can be deleted before the latest values (which reference them) are written too."""
        changes = await write_tallies(connection, snapshot.tallies, duplicates, snapshot.marks.get)
        if len(snapshot.latest):
            await write_latest(connection, snapshot.latest, self._key_ids)
        return changes

    def written(self, seconds: float, snapshot: StateSnapshot) -> None:
        self.seconds += seconds
        self.latest.written(seconds)
        self._through = max(self._through, snapshot.cutoff)
        self._done_with(snapshot)

    def start_aside(self) -> None:
        """Take what is pending now and write it on the second connection, in the background."""
        snapshot = self.take()
        self._aside = asyncio.get_running_loop().create_task(self._write_aside(snapshot))

    async def wait(self) -> None:
        if self._aside is not None:
            with contextlib.suppress(Exception):
                await self._aside
            self._aside = None

    async def close(self) -> None:
        await self.wait()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()
            self._connection = None

    async def _write_aside(self, snapshot: StateSnapshot) -> None:
        """A chunk of devices per transaction, each followed by a pause as long as it took: at most half of a
        core of PostgreSQL, and the event loop (which builds each chunk's rows) free between chunks."""
        try:
            await self._write_parts(snapshot)
        finally:
            self._done_with(snapshot)

    async def _write_parts(self, snapshot: StateSnapshot) -> None:
        busy = 0.0
        parts = snapshot.chunks(CHUNK_DEVICES)
        for index, part in enumerate(parts):
            chunk_started = time.perf_counter()
            try:
                if self._connection is None or self._connection.is_closed():
                    self._connection = await asyncpg.connect(self._dsn, timeout=5)
                async with self._connection.transaction():
                    changes = await self.write(self._connection, part, {})
            except Exception as error:
                self.failures += 1
                for unwritten in parts[index:]:
                    self.put_back(unwritten)
                if self._connection is not None:
                    with contextlib.suppress(Exception):
                        self._connection.terminate()
                    self._connection = None
                log.warning('latest values and device counters not written, kept for the next flush',
                            extra={'error': type(error).__name__})
                return
            publish_online(self._bus, changes)
            took = time.perf_counter() - chunk_started
            busy += took
            if index + 1 < len(parts):
                await asyncio.sleep(took)
        self.written(busy, snapshot)
        self.aside_writes += 1


def publish_online(bus: EventBus, changes: Changes) -> None:
    for tenant_id, device_id, change in changes:
        bus.device_changed.publish(DeviceChanged(tenant_id=tenant_id, device_id=device_id, change=change))
