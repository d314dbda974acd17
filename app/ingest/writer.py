"""The batch writer: the one hot-path writer outside the services.

Accepted messages are grouped into batches (by row count or a few tens of milliseconds, whichever first). Each
batch is prepared once in memory (sequence duplicates dropped, data-quality counters taken, rows built), then
copied into `telemetry` with one binary COPY as the ingest role (`direct_copy.py`). Where there is no such role,
or when a row is a duplicate, the rows are copied into a per-connection staging table and moved into `telemetry`
per tenant instead, with `app.tenant_id` set for each tenant's rows; then the rows a tenant's insert
really added are counted per device (the rest were duplicates of the same device, key and timestamp). The payloads
of tenants that keep a raw archive are stored as received in the same transaction (`raw_rows.py`). Latest values
and the devices' last_seen, status and counters are collapsed in memory and written with a batch when the queue
is idle, else aside at least every second (`state_flush.py`). Only after the commit are waiters released (HTTP
answers, MQTT acks, in bulk) and events published.

When PostgreSQL is unreachable the batch is retried until it commits. The queue in front is bounded in rows:
`offer` (the MQTT reader, synchronous) always takes what it is given and reports `full`, so the reader pauses its
socket; `submit` (HTTP) waits for room. `on_drained` callbacks run when the queue is below half its limit again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

from app.bus import DeviceChanged, EventBus, TelemetryStored
from app.ingest.batch_items import Acknowledge, Inbound, Item, Prepared, Rejection, WriterStats, rows_in
from app.ingest.batch_prepare import prepare
from app.ingest.copy_rows import EMPTY, joined, micros
from app.ingest.device_tallies import correct
from app.ingest.direct_copy import (
    COPY_TARGETS,
    POINTS_TARGET,
    ROLE_GONE,
    TELEMETRY_LAYOUT,
    DirectCopier,
    RoleUnusable,
    quote_ident,
    usable_role,
)
from app.ingest.latest import LatestBuffer
from app.ingest.payload import Message
from app.ingest.quality import SeqState
from app.ingest.raw_rows import CREATE_RAW_STAGE, INSERT_RAW, RAW_COLUMNS, archive_rows
from app.ingest.row_encoder import RowEncoder
from app.ingest.staged_rows import CREATE_STAGES, move_staged
from app.ingest.state_flush import Changes, StateFlush, StateSnapshot, publish_online

__all__ = ['Acknowledge', 'BatchWriter', 'Inbound', 'Item', 'Rejection']

log = logging.getLogger(__name__)

# Numbers older than this may have been stored in `telemetry_points` before `telemetry_rows` (migration 0017).
ROWS_SINCE = 'SELECT max(since) FROM telemetry_rows_since'
SPEND_KEYS = """
UPDATE ingest_keys SET state = 'stored'
FROM unnest($2::uuid[], $3::text[]) AS spent(device_id, key)
WHERE ingest_keys.tenant_id = $1 AND ingest_keys.device_id = spent.device_id AND ingest_keys.key = spent.key"""

CommitListener = Callable[[list[TelemetryStored]], Awaitable[None]]


class BatchWriter:
    def __init__(
        self, dsn: str, bus: EventBus, *, max_rows: int = 10_000, max_delay_s: float = 0.05,
        queue_limit: int = 100_000, latest_interval_s: float = 1.0, direct_copy: bool = True,
    ) -> None:
        self._sequences: dict[UUID, SeqState] = {}
        key_ids: dict[tuple[UUID, str], int] = {}  # (tenant, key name) → key id, shared by encoder and flushes
        self.state = StateFlush(dsn, bus, key_ids, self._sequences.get, interval_s=latest_interval_s,
                                uncounted_since=self._uncounted_since)
        self._encoder = RowEncoder(self.state.latest, key_ids)
        self.archiving: frozenset[UUID] = frozenset()  # tenants keeping a raw archive (see RawArchivePolicy)
        self._stopping = False
        self._dsn = dsn
        self._bus = bus
        self._max_rows = max_rows
        self._max_delay_s = max_delay_s
        self._limit = queue_limit  # rows waiting before `full`
        self._pending: deque[tuple[list[Item], int, float]] = deque()  # as offered: (items, their rows, when)
        self._pending_rows = 0
        self._collecting_since: float | None = None  # arrival of the oldest item taken for the next batch
        self._prepared_number = 0  # the last batch numbered (`Prepared.number`)
        self._committed_number = 0  # the last one committed: batches commit in the order they were numbered
        self._commit_seen = asyncio.Event()  # set (and replaced) at every commit
        self._has_items = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._drained: list[Callable[[], None]] = []
        # since when (monotonic) messages for this writer may be held upstream, unreceived: the MQTT consumer's
        # `BrokerHold.since`. Device state is not counted as written past that (`StateFlush.flushed_through`).
        self.held_upstream: Callable[[], float | None] = lambda: None
        self._connection: asyncpg.Connection | None = None
        self._direct = direct_copy
        self._points = True  # the plain-PostgreSQL layout (`telemetry_rows`, `telemetry_points`), else TimescaleDB's
        self._rows_since: datetime | None = None  # see ROWS_SINCE
        self._ingest_role: str | None = None
        self._copier: DirectCopier | None = None  # batches that need no transaction of their own
        self._task: asyncio.Task[None] | None = None
        self._ahead: Prepared | None = None  # prepared while the batch before it commits
        self.healthy = True
        self.stats = WriterStats()
        self._listeners: list[CommitListener] = []
        # what this process keeps per device goes with the device (its series numbers would be stale)
        self._deleted = bus.device_changed.subscribe(maxsize=10_000, where=lambda event: event.change == 'deleted')

    @property
    def copies_directly(self) -> bool:
        """Whether the current connection copies rows straight into telemetry as the ingest role."""
        return self._ingest_role is not None

    @property
    def latest(self) -> LatestBuffer:
        return self.state.latest

    async def unwritten_latest(self, tenant_id: UUID, device_ids: list[UUID], wait_s: float,
                               ) -> dict[UUID, dict[str, tuple[datetime, Any]]]:
        """Per device, its latest values of committed batches not yet in `latest_values` (see
        `StateFlush.unwritten_latest`). Values are taken in when their batch is encoded, before it commits: a device
        whose newest values are in a batch not yet committed is waited for (at most `wait_s`, a batch's commit),
        else left out (its stored values stand), so a reader never sees a value its history does not hold yet."""
        touched = self.latest.touched
        deadline = time.monotonic() + wait_s
        while True:
            waiting = [d for d in device_ids if touched.get(d, 0) > self._committed_number]
            remaining = deadline - time.monotonic()
            if not waiting or remaining <= 0:
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._commit_seen.wait(), remaining)
        left_out = set(waiting)
        return {device_id: self.state.unwritten_latest(tenant_id, device_id)
                for device_id in device_ids if device_id not in left_out}

    def _uncounted_since(self) -> float | None:
        """Since when (monotonic) something received or sent may be uncounted: the arrival of the oldest item not
        yet prepared, or, if earlier, the moment the broker may have begun holding messages back (not received)."""
        since = self._collecting_since
        if since is None and self._pending:
            since = self._pending[0][2]
        held = self.held_upstream()
        return held if since is None or (held is not None and held < since) else since

    def on_committed(self, listener: CommitListener) -> None:
        """Call `listener` with each committed batch's readings (per device), before the next batch commits.

        Unlike bus subscribers, listeners miss nothing: the rule engine evaluates every batch this way. A slow
        listener slows ingest (that is the backpressure), and one that raises is logged and does not stop it.
        """
        self._listeners.append(listener)

    def on_drained(self, callback: Callable[[], None]) -> None:
        """`callback` runs whenever the queue falls below half its limit after having been full."""
        self._drained.append(callback)

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Write what is queued, then close."""
        self._stopping = True
        self._has_items.set()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                await asyncio.wait_for(self._task, timeout=10)
        await self.state.close()
        if self._copier is not None:
            await self._copier.close()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()

    def offer(self, items: list[Item]) -> None:
        """Queue items without waiting (the caller checks `full` and stops reading)."""
        rows = 0
        for item in items:
            rows += rows_in(item)
        self._pending.append((items, rows, time.monotonic()))
        self._pending_rows += rows
        self._has_items.set()
        if self._pending_rows >= self._limit:
            self._room.clear()

    @property
    def full(self) -> bool:
        return self._pending_rows >= self._limit

    async def submit(self, item: Item) -> None:
        """Queue one item (data or a rejection to count), waiting while the queue is full."""
        while self.full:
            self._room.clear()
            await self._room.wait()
        self.offer([item])

    @property
    def backlog(self) -> int:
        return sum(len(items) for items, _, _ in self._pending)

    def discard_pending(self) -> int:
        """Forget what is queued and not yet taken (a crash, in tests); returns how many items."""
        count = self.backlog
        self._pending.clear()
        self._collecting_since = None
        self._pending_rows = 0
        self._room.set()
        return count

    async def _run(self) -> None:
        """Collect, prepare and encode the next batch while the one before it is being committed (PostgreSQL's work
        and Python's overlap), then commit it once that one is done: batches still commit, and are acknowledged,
        strictly one after another and in order."""
        committing: asyncio.Task[None] | None = None
        try:
            while True:
                if committing is not None and self._flush_due():
                    await committing  # a flush aside may hold committed batches only: prepare nothing ahead of it
                    committing = None
                items = await self._collect()
                if items:
                    prepared = self._prepare(items)
                    self._collecting_since = None
                    if committing is not None:
                        self._ahead = prepared  # set before any await: no flush may be taken while it is prepared
                        await committing
                    self._ahead = None
                    committing = asyncio.create_task(self._commit_until_done(prepared))
                    await asyncio.sleep(0)  # its COPY goes out now, before the next batch is prepared
                    continue
                if committing is not None:
                    await committing
                    committing = None
                if self._stopping:
                    await self.state.wait()
                    if self.state.pending:
                        await self._commit_until_done(Prepared([]))  # pending latest values: write them first
                    return
                if not self.state.busy and self.state.pending:  # idle (again): the rest now
                    if self.state.small:
                        await self._commit_until_done(Prepared([]))
                    else:
                        self.state.start_aside()  # a long write: what arrives meanwhile must not wait for it
        finally:
            self._ahead = None
            self._collecting_since = None
            if committing is not None and not committing.done():
                committing.cancel()  # the writer itself was cancelled (a crash, in tests): so is its batch

    def _prepare(self, items: list[Item]) -> Prepared:
        """Sequence duplicates out, counters taken, rows encoded where every key is known already (new keys are
        added at commit, on the writer's connection)."""
        started = time.perf_counter()
        for event in self._deleted.drain():
            self._sequences.pop(event.device_id, None)
            self._encoder.forget(event.device_id)
        prepared = prepare(items, self.state.tallies, self._sequences)
        self._prepared_number += 1
        prepared.number = self._prepared_number
        encoding = time.perf_counter()
        self.stats.prepare_s += encoding - started
        try:
            if self._encoder.encode_known(prepared):
                prepared.archive, prepared.archived = archive_rows(prepared.items, self.archiving)
        except Exception:  # left to the commit, which retries and logs; the writer's loop must not die of it
            log.exception('encoding a batch ahead failed', extra={'items': len(items)})
            prepared.copies = prepared.archive = None
        self.stats.encode_s += time.perf_counter() - encoding
        return prepared

    def _flush_due(self) -> bool:
        return not self.state.busy and self.state.pending and self.latest.interval_elapsed()

    async def _collect(self) -> list[Item]:
        """The next batch: whole offers up to `max_rows` rows (one larger offer alone), closed at the latest
        `max_delay_s` after the oldest of them arrived. What queued during the last commit has waited already, so
        it goes at once rather than after another full delay.
        Empty when stopping, or when idle with latest values left to write."""
        pending = self._pending
        while not pending:
            if self._stopping:
                return []
            self._has_items.clear()
            if self.state.pending:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._has_items.wait(), self._max_delay_s)
                if not pending:
                    return []
            else:
                await self._has_items.wait()
        items: list[Item] = []
        rows = 0
        deadline = pending[0][2] + self._max_delay_s
        while rows < self._max_rows:
            if not pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping:
                    break
                self._has_items.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._has_items.wait(), remaining)
                continue
            offered, weight, arrived = pending[0]
            if items and rows + weight > self._max_rows:
                break  # the next batch takes it whole
            if not items:
                self._collecting_since = arrived
            pending.popleft()
            items += offered
            rows += weight
        self._pending_rows -= rows
        if not self._room.is_set() and self._pending_rows < self._limit // 2:
            self._room.set()
            for callback in self._drained:
                callback()
        return items

    async def _commit_until_done(self, prepared: Prepared) -> None:
        delay = 0.2
        while True:
            try:
                started = time.perf_counter()
                changes, duplicates = await self._commit(prepared)
                self.stats.last_commit_ms = (time.perf_counter() - started) * 1000
                self.stats.commit_s += self.stats.last_commit_ms / 1000
                self.healthy = True
                break
            except (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError,
                    asyncpg.CannotConnectNowError, asyncpg.AdminShutdownError) as error:
                self.healthy = False
                self.stats.failures += 1
                await self._drop_connection()
                log.warning('database unreachable, batch kept for retry', extra={
                    'error': type(error).__name__, 'retry_s': delay, 'items': len(prepared.items)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception:
                self.stats.failures += 1
                await self._drop_connection()
                log.exception('batch failed, retrying', extra={'items': len(prepared.items)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        self._committed_number = max(self._committed_number, prepared.number)
        self._commit_seen.set()
        self._commit_seen = asyncio.Event()
        stored = self._after_commit(prepared, changes, duplicates)
        if ((self._pending or not self.state.small) and not self._stopping and self._ahead is None
                and self._flush_due()):
            self.state.start_aside()
        started = time.perf_counter()
        for listener in self._listeners:
            try:
                await listener(stored)
            except Exception:
                log.exception('commit listener failed', extra={'listener': getattr(listener, '__qualname__', '?')})
        self.stats.listeners_s += time.perf_counter() - started

    async def _drop_connection(self) -> None:
        if self._copier is not None:
            self._copier.terminate()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.terminate()
        self._connection = None

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            connection = await asyncpg.connect(self._dsn, timeout=5)
            self._points = await connection.fetchval(TELEMETRY_LAYOUT) == 'p'
            self._encoder.use_layout(points=self._points)
            self._rows_since = await connection.fetchval(ROWS_SINCE) if self._points else None
            for create in CREATE_STAGES[self._points]:
                await connection.execute(create)
            await connection.execute(CREATE_RAW_STAGE)
            self._ingest_role = await usable_role(connection) if self._direct else None
            if self._copier is not None and self._copier.role != self._ingest_role:
                await self._copier.close()
                self._copier = None
            if self._copier is None and self._ingest_role is not None:
                self._copier = DirectCopier(self._dsn, self._ingest_role, points=self._points)
            self._connection = connection
        return self._connection

    async def _commit(self, prepared: Prepared) -> tuple[Changes, dict[UUID, int]]:
        """One transaction; returns the devices that came online and, per device, readings found to be duplicates."""
        connection = await self._connect()
        if prepared.copies is None:  # keys never seen before, or the idle batch
            started = time.perf_counter()
            await self._encoder.encode(connection, prepared)
            prepared.archive, prepared.archived = archive_rows(prepared.items, self.archiving)
            self.stats.encode_s += time.perf_counter() - started
        assert prepared.copies is not None
        assert prepared.archive is not None
        copies = {tenant_id: rows for tenant_id, rows in prepared.copies.items()
                  if len(rows) > EMPTY}
        # numbers as old as the layout's start may duplicate readings stored the old way: sorted out one by one
        check_all = self._rows_since is not None and _older_than(prepared, self._rows_since)
        direct = not check_all  # worth trying: the lone COPY did not just fail (a duplicate, the role)
        if direct and copies and self._copier is not None and not self._needs_transaction(prepared):
            started = time.perf_counter()
            direct = await self._copy_alone(self._copier, copies)
            self.stats.insert_s += time.perf_counter() - started
            if direct:
                self.stats.copied_alone += 1
                return [], {}
        changes: Changes = []
        duplicates: dict[UUID, int] = {}
        inserted: dict[UUID, set[tuple[int, int]]] = {}
        snapshot: StateSnapshot | None = None
        try:
            async with connection.transaction():
                started = time.perf_counter()
                others = prepared.point_copies
                if (not copies and not others) or not direct or not await self._copy_directly(
                        connection, copies, others):
                    for tenant_id in copies.keys() | others.keys():
                        await self._insert_rows(connection, tenant_id, copies.get(tenant_id), prepared,
                                                duplicates, inserted, check_all=check_all)
                for tenant_id, rows in prepared.archive.items():
                    await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
                    await connection.copy_to_table('raw_stage', source=rows, columns=RAW_COLUMNS, format='binary')
                    await connection.execute(INSERT_RAW, tenant_id)
                self.stats.insert_s += time.perf_counter() - started
                for tenant_id, keys in _idempotency_keys(prepared.items).items():
                    await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
                    await connection.execute(SPEND_KEYS, tenant_id, [device for device, _ in keys],
                                             [k for _, k in keys])
                if self._inline_flush_due():
                    started = time.perf_counter()
                    snapshot = self.state.take()
                    changes = await self.state.write(connection, snapshot, duplicates)
                    flush_s = time.perf_counter() - started
                started = time.perf_counter()
        except BaseException:
            if snapshot is not None:
                self.state.put_back(snapshot)
            raise
        self.stats.finish_s += time.perf_counter() - started  # COMMIT itself: the WAL written and flushed
        prepared.inserted = inserted
        if snapshot is not None:
            self.state.written(flush_s, snapshot)
        else:
            correct(self.state.tallies, duplicates)
        return changes, duplicates

    def _inline_flush_due(self) -> bool:
        """Latest values and counters go with this batch when nothing waits behind it (and none is prepared ahead)
        and they are few (`state_flush.INLINE_DEVICES`); when stopping, all of them."""
        idle = (self._stopping or not self._pending) and self._ahead is None
        return idle and not self.state.busy and self.state.pending and (self._stopping or self.state.small)

    def _needs_transaction(self, prepared: Prepared) -> bool:
        """Whether anything but the telemetry rows must commit with this batch."""
        return (bool(prepared.archive) or bool(prepared.point_copies) or self._inline_flush_due()
                or bool(_idempotency_keys(prepared.items)))

    async def _copy_alone(self, copier: DirectCopier, copies: dict[UUID, bytearray]) -> bool:
        """The batch as one COPY in autocommit (`DirectCopier`); False, with nothing written, when a row is a
        duplicate or the role is no longer usable: then a transaction of its own sorts them out."""
        try:
            return await copier.copy(copies.values())
        except RoleUnusable as error:
            self._role_gone(error)
            return False

    def _role_gone(self, error: Exception) -> None:
        log.warning('ingest role no longer usable, copying through the staging table',
                    extra={'role': self._ingest_role, 'error': str(error)})
        self._ingest_role = None  # until the next connection looks again
        if self._copier is not None:
            self._copier.terminate()
            self._copier = None

    async def _copy_directly(self, connection: asyncpg.Connection, copies: dict[UUID, bytearray],
                             others: dict[UUID, bytearray]) -> bool:
        """Every tenant's rows in one COPY per table as the ingest role (`direct_copy.py`); False, with nothing
        written, when there is no such role or a row is a duplicate: then the staging path sorts them out."""
        if self._ingest_role is None:
            return False
        try:
            async with connection.transaction():
                await connection.execute(f'SET LOCAL ROLE {quote_ident(self._ingest_role)}')
                for (schema, table, columns), streams in ((COPY_TARGETS[self._points], copies),
                                                          (POINTS_TARGET, others)):
                    if streams:
                        await connection.copy_to_table(table, schema_name=schema, source=joined(streams.values()),
                                                       columns=columns, format='binary')
                await connection.execute('SET LOCAL ROLE NONE')
        except asyncpg.UniqueViolationError:
            return False
        except ROLE_GONE as error:  # the role was changed, dropped or its grant revoked
            self._role_gone(error)
            return False
        return True

    async def _insert_rows(self, connection: asyncpg.Connection, tenant_id: UUID, rows: bytearray | None,
                           prepared: Prepared, duplicates: dict[UUID, int],
                           inserted: dict[UUID, set[tuple[int, int]]], *, check_all: bool) -> None:
        await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
        added = await move_staged(connection, tenant_id, rows, prepared.point_copies.get(tenant_id),
                                  layout_points=self._points,
                                  check_all=check_all)
        if added is None:
            return
        for device_id, (tenant, offered) in prepared.offered.items():
            kept = added.get(device_id, set())
            if tenant == tenant_id and offered != len(kept):
                duplicates[device_id] = offered - len(kept)
                if device_id not in prepared.replayed:  # a replay is asked for: its rules run again
                    inserted[device_id] = kept

    def restore_sequences(self, states: dict[UUID, SeqState]) -> None:
        """Sequence state as the last flush left it (see `latest.load_sequences`), before `start`."""
        for device_id, state in states.items():
            self._sequences.setdefault(device_id, state)

    def _after_commit(self, prepared: Prepared, changes: Changes, duplicates: dict[UUID, int]) -> list[TelemetryStored]:
        self.stats.batches += 1
        acks: dict[Acknowledge, list[bytes]] = {}
        rejected: set[tuple[UUID, UUID]] = set()
        last_seen: dict[UUID, datetime] = {}
        for item in prepared.items:
            if item.ack is not None:
                acknowledge, packet_id = item.ack
                ids = acks.get(acknowledge)
                if ids is None:
                    acks[acknowledge] = [packet_id]
                else:
                    ids.append(packet_id)
            if isinstance(item, Rejection):
                self.stats.rejected += 1
                rejected.add((item.tenant_id, item.device_id))
                continue
            self.stats.messages += 1
            if item.done is not None and not item.done.done():
                item.done.set_result(None)
            if item.messages:
                seen = last_seen.get(item.device_id)
                if seen is None or item.received_at > seen:
                    last_seen[item.device_id] = item.received_at
        for acknowledge, ids in acks.items():
            acknowledge(ids)
        dropped = sum(duplicates.values())
        self.stats.rows += sum(offered for _, offered in prepared.offered.values()) - dropped
        self.stats.duplicates += dropped
        self.stats.archived += prepared.archived
        events = self._stored_events(prepared, last_seen)
        for event in events:
            self._bus.telemetry_stored.publish(event)
        publish_online(self._bus, changes)
        for tenant_id, device_id in rejected:
            self._bus.device_changed.publish(DeviceChanged(tenant_id=tenant_id, device_id=device_id, change='rejected'))
        return events

    def _stored_events(self, prepared: Prepared, last_seen: dict[UUID, datetime]) -> list[TelemetryStored]:
        """Per device, the messages whose readings were stored: `seq` duplicates were left out by `prepare`, and
        readings found to be duplicates at insert are left out here (a retransmission must not re-run rules)."""
        events = []
        inserted = prepared.inserted
        for tenant_id, entries in prepared.messages.items():
            per_device: dict[UUID, list[Message]] = {}
            for device_id, message in entries:
                held = per_device.get(device_id)
                if held is None:
                    held = per_device[device_id] = []
                held.append(message)
            for device_id, messages in per_device.items():
                kept = inserted.get(device_id)
                if kept is not None:
                    messages = self._only_inserted(device_id, messages, kept)
                    if not messages:
                        continue
                events.append(TelemetryStored(tenant_id, device_id, tuple(messages), last_seen[device_id]))
        return events

    def _only_inserted(self, device_id: UUID, messages: list[Message], kept: set[tuple[int, int]]) -> list[Message]:
        series_id = self._encoder.series_id
        unclaimed = set(kept)  # one key and timestamp twice in this batch: the first was stored, not the second
        out = []
        for message in messages:
            ts_us = micros(message.ts)
            readings = {}
            for key, value in message.readings.items():
                series = (series_id(device_id, key), ts_us)
                if series in unclaimed:
                    unclaimed.discard(series)
                    readings[key] = value
            if readings:
                out.append(message._replace(readings=readings))
        return out


def _older_than(prepared: Prepared, since: datetime) -> bool:
    return any(message.ts < since for entries in prepared.messages.values() for _, message in entries)


def _idempotency_keys(items: list[Item]) -> dict[UUID, list[tuple[UUID, str]]]:
    keys: dict[UUID, list[tuple[UUID, str]]] = {}
    for item in items:
        if isinstance(item, Inbound) and item.idempotency_key is not None:
            keys.setdefault(item.tenant_id, []).append((item.device_id, item.idempotency_key))
    return keys
