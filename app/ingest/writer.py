"""The batch writer: the one hot-path writer outside the services.

Accepted messages are grouped into batches (by row count or a few tens of milliseconds, whichever first). Each
batch is prepared once in memory (sequence duplicates dropped, data-quality counters taken, rows built), then
copied into a per-connection staging table with binary COPY and moved into `telemetry` per tenant, with
`app.tenant_id` set for each tenant's rows so row-level security checks every insert; the rows a tenant's insert
really added are counted per device (the rest were duplicates of the same device, key and timestamp). Latest
values and the devices' last_seen, status and counters are collapsed in memory and written in a batch's
transaction when the queue is idle or at least every second (see `latest.py` and `device_tallies.py`). Only after
the commit are waiters released (HTTP answers, MQTT acks, in bulk) and events published.

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
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

import asyncpg

from app.bus import DeviceChanged, EventBus, TelemetryStored
from app.ingest.copy_rows import (
    COLUMNS,
    HEADER,
    TRAILER,
    micros,
    number_tail,
    other_tail,
    series_prefix,
    stage_table,
)
from app.ingest.device_tallies import DeviceTally, Tallies, correct, write_tallies
from app.ingest.latest import LatestBuffer
from app.ingest.payload import Message
from app.ingest.quality import QualityDelta, SeqState, skew, take

log = logging.getLogger(__name__)

CREATE_STAGE = stage_table('ingest_stage')
INSERT_ROWS = """
INSERT INTO telemetry (tenant_id, device_id, key_id, ts, value, text_value, bool_value, json_value)
SELECT tenant_id, device_id, key_id, ts, value, text_value, bool_value, json_value
FROM ingest_stage WHERE tenant_id = $1"""
SPEND_KEYS = """
UPDATE ingest_keys SET state = 'stored'
FROM unnest($2::uuid[], $3::text[]) AS spent(device_id, key)
WHERE ingest_keys.tenant_id = $1 AND ingest_keys.device_id = spent.device_id AND ingest_keys.key = spent.key"""
MOVE_ROWS = f"""
WITH added AS ({INSERT_ROWS}
    ON CONFLICT DO NOTHING
    RETURNING device_id
)
SELECT device_id, count(*) AS added FROM added GROUP BY device_id"""

Acknowledge = Callable[[list[bytes]], None]


@dataclass
class Inbound:
    """What one device sent in one MQTT message or HTTP request. No messages: a sign of life only."""

    tenant_id: UUID
    device_id: UUID
    messages: list[Message]
    received_at: datetime
    done: asyncio.Future[None] | None = None
    # (acknowledge, id): once the batch holding it is committed, `acknowledge` is called with the ids of all of its
    # messages that share it (MQTT PUBACKs in one write); b'' for messages that need no PUBACK (QoS 0)
    ack: tuple[Acknowledge, bytes] | None = None
    idempotency_key: str | None = None  # HTTP ingest: marked stored in the same transaction as the rows


@dataclass(frozen=True)
class Rejection:
    tenant_id: UUID
    device_id: UUID
    reason: str
    excerpt: str
    at: datetime
    ack: tuple[Acknowledge, bytes] | None = None


Item = Inbound | Rejection
CommitListener = Callable[[list[TelemetryStored]], Awaitable[None]]


@dataclass
class WriterStats:
    batches: int = 0
    rows: int = 0
    messages: int = 0
    rejected: int = 0
    duplicates: int = 0
    last_commit_ms: float = 0.0
    commit_s: float = 0.0  # cumulative time in PostgreSQL transactions
    listeners_s: float = 0.0  # cumulative time in commit listeners (the rule engine): it is ingest time too
    insert_s: float = 0.0  # of commit_s: COPY and INSERT of telemetry rows
    flush_s: float = 0.0  # of commit_s: latest values and device counters
    prepare_s: float = 0.0  # sequence and quality bookkeeping in Python before the transaction
    encode_s: float = 0.0  # of commit_s: binary COPY rows built in Python
    finish_s: float = 0.0  # of commit_s: the COMMIT
    failures: int = 0


@dataclass
class Prepared:
    """A batch made ready once (duplicates out, counters taken), encoded once, committed as often as it takes."""

    items: list[Item]
    messages: dict[UUID, list[tuple[UUID, Message]]] = field(default_factory=dict)  # per tenant: (device, message)
    offered: dict[UUID, tuple[UUID, int]] = field(default_factory=dict)  # device → (tenant, readings inserted)
    copies: dict[UUID, bytearray] | None = None  # per tenant: its rows in binary COPY format


class BatchWriter:
    def __init__(
        self, dsn: str, bus: EventBus, *, max_rows: int = 5000, max_delay_s: float = 0.05,
        queue_limit: int = 100_000, latest_interval_s: float = 1.0,
    ) -> None:
        self.latest = LatestBuffer(interval_s=latest_interval_s)
        self._tallies: Tallies = {}  # device counters of prepared batches not yet written
        self._sequences: dict[UUID, SeqState] = {}
        self._stopping = False
        self._dsn = dsn
        self._bus = bus
        self._max_rows = max_rows
        self._max_delay_s = max_delay_s
        self._limit = queue_limit  # rows waiting before `full`
        self._pending: deque[Item] = deque()
        self._pending_rows = 0
        self._has_items = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._drained: list[Callable[[], None]] = []
        self._keys: dict[tuple[UUID, str], int] = {}
        self._prefixes: dict[UUID, dict[str, bytes]] = {}  # per device, key name → its rows' first columns
        self._connection: asyncpg.Connection | None = None
        self._task: asyncio.Task[None] | None = None
        self.healthy = True
        self.stats = WriterStats()
        self._listeners: list[CommitListener] = []

    def on_committed(self, listener: CommitListener) -> None:
        """Call `listener` with each committed batch's readings (per device), before the next batch is taken.

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
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()

    def offer(self, items: list[Item]) -> None:
        """Queue items without waiting (the caller checks `full` and stops reading)."""
        rows = 0
        for item in items:
            rows += _rows_in(item)
        self._pending.extend(items)
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
        return len(self._pending)

    def discard_pending(self) -> int:
        """Forget what is queued and not yet taken (a crash, in tests); returns how many items."""
        count = len(self._pending)
        self._pending.clear()
        self._pending_rows = 0
        self._room.set()
        return count

    async def _run(self) -> None:
        while True:
            items = await self._collect()
            if items:
                started = time.perf_counter()
                prepared = self._prepare(items)
                self.stats.prepare_s += time.perf_counter() - started
                await self._commit_until_done(prepared)
            elif self._stopping:
                if len(self.latest) or self._tallies:
                    await self._commit_until_done(Prepared([]))  # pending latest values: write them first
                return

    async def _collect(self) -> list[Item]:
        """The next batch: up to `max_rows` rows, waiting at most `max_delay_s` after the first item."""
        pending = self._pending
        while not pending:
            if self._stopping:
                return []
            self._has_items.clear()
            await self._has_items.wait()
        items: list[Item] = []
        rows = 0
        deadline = time.monotonic() + self._max_delay_s
        while rows < self._max_rows:
            if not pending:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stopping:
                    break
                self._has_items.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._has_items.wait(), remaining)
                continue
            item = pending.popleft()
            items.append(item)
            rows += _rows_in(item)
        self._pending_rows -= rows
        if not self._room.is_set() and self._pending_rows < self._limit // 2:
            self._room.set()
            for callback in self._drained:
                callback()
        return items

    def _prepare(self, items: list[Item]) -> Prepared:
        """Sequence duplicates out, counters taken: once per batch (it is then retried until it commits)."""
        prepared = Prepared(items)
        tallies = self._tallies
        sequences = self._sequences
        for item in items:
            device_id = item.device_id
            tally = tallies.get(device_id)
            if tally is None:
                tally = tallies[device_id] = DeviceTally(item.tenant_id)
            if isinstance(item, Rejection):
                tally.received += 1
                tally.malformed += 1
                tally.reason, tally.excerpt = item.reason, item.excerpt
                if item.at > tally.at:
                    tally.at = item.at
                continue
            tally.received += len(item.messages)
            if item.received_at > tally.at:
                tally.at = item.received_at
            if not item.messages:
                continue
            state = sequences.get(device_id)
            if state is None:
                state = sequences[device_id] = SeqState()
            delta = QualityDelta()
            accepted = prepared.messages.get(item.tenant_id)
            if accepted is None:
                accepted = prepared.messages[item.tenant_id] = []
            offered = 0
            sent_ts = None
            for message in item.messages:
                if take(state, delta, seq=message.seq, ts=message.ts, readings=len(message.readings)):
                    accepted.append((device_id, message))
                    offered += len(message.readings)
                    if message.ts_sent:
                        sent_ts = message.ts
            if sent_ts is not None:
                skew(delta, ts=sent_ts, received_at=item.received_at)
            if offered:
                tally.stored += offered
                held = prepared.offered.get(device_id)
                prepared.offered[device_id] = (item.tenant_id, offered + (held[1] if held else 0))
            tally.add_quality(delta)
        return prepared

    async def _encode(self, connection: asyncpg.Connection, prepared: Prepared) -> None:
        """Every accepted reading as a binary COPY row; latest values updated (once: the batch will commit)."""
        copies: dict[UUID, bytearray] = {}
        for tenant_id, entries in prepared.messages.items():
            encoded = self._encode_tenant(tenant_id, entries)
            if isinstance(encoded, set):  # keys this tenant never sent before: add them, then encode again
                await self._add_keys(connection, tenant_id, sorted(encoded))
                encoded = self._encode_tenant(tenant_id, entries)
                assert not isinstance(encoded, set)
            copies[tenant_id] = encoded
        prepared.copies = copies

    def _encode_tenant(self, tenant_id: UUID, entries: list[tuple[UUID, Message]]) -> bytearray | set[str]:
        out = bytearray(HEADER)
        prefixes = self._prefixes
        keys = self._keys
        missing: set[str] = set()
        for device_id, message in entries:
            device_prefixes = prefixes.get(device_id)
            if device_prefixes is None:
                device_prefixes = prefixes[device_id] = {}
            latest = self.latest.for_device(tenant_id, device_id)
            ts = message.ts
            ts_us = micros(ts)
            for key, value in message.readings:
                prefix = device_prefixes.get(key)
                if prefix is None:
                    key_id = keys.get((tenant_id, key))
                    if key_id is None:
                        missing.add(key)
                        continue
                    prefix = device_prefixes[key] = series_prefix(tenant_id, device_id, key_id)
                out += prefix
                kind = type(value)
                out += number_tail(ts_us, value) if kind is float or kind is int else other_tail(ts_us, value)  # type: ignore[arg-type]
                held = latest.get(key)
                if held is None or held[0] <= ts:
                    latest[key] = (ts, value)
        if missing:
            return missing
        out += TRAILER
        return out

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
        stored = self._after_commit(prepared, changes, duplicates)
        started = time.perf_counter()
        for listener in self._listeners:
            try:
                await listener(stored)
            except Exception:
                log.exception('commit listener failed', extra={'listener': getattr(listener, '__qualname__', '?')})
        self.stats.listeners_s += time.perf_counter() - started

    async def _drop_connection(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):
                self._connection.terminate()
        self._connection = None

    async def _connect(self) -> asyncpg.Connection:
        if self._connection is None or self._connection.is_closed():
            connection = await asyncpg.connect(self._dsn, timeout=5)
            await connection.execute(CREATE_STAGE)
            self._connection = connection
        return self._connection

    async def _commit(self, prepared: Prepared) -> tuple[list[tuple[UUID, UUID, str]], dict[UUID, int]]:
        """One transaction; returns the devices that came online and, per device, readings found to be duplicates."""
        connection = await self._connect()
        if prepared.copies is None:
            started = time.perf_counter()
            await self._encode(connection, prepared)
            self.stats.encode_s += time.perf_counter() - started
        assert prepared.copies is not None
        changes: list[tuple[UUID, UUID, str]] = []
        duplicates: dict[UUID, int] = {}
        async with connection.transaction():
            started = time.perf_counter()
            for tenant_id, rows in prepared.copies.items():
                if len(rows) <= len(HEADER) + len(TRAILER):
                    continue
                await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
                await connection.copy_to_table('ingest_stage', source=rows, columns=COLUMNS, format='binary')
                try:  # duplicates are rare: a plain INSERT first, about a third cheaper than ON CONFLICT
                    async with connection.transaction():
                        await connection.execute(INSERT_ROWS, tenant_id)
                except asyncpg.UniqueViolationError:
                    added = {record[0]: record[1] for record in await connection.fetch(MOVE_ROWS, tenant_id)}
                    for device_id, (tenant, offered) in prepared.offered.items():
                        if tenant == tenant_id and offered != added.get(device_id, 0):
                            duplicates[device_id] = offered - added.get(device_id, 0)
            self.stats.insert_s += time.perf_counter() - started
            for tenant_id, keys in _idempotency_keys(prepared.items).items():
                await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
                await connection.execute(SPEND_KEYS, tenant_id, [device for device, _ in keys], [k for _, k in keys])
            idle = self._stopping or not self._pending
            flush = self.latest.due(idle=idle) or (bool(self._tallies) and (idle or self.latest.interval_elapsed()))
            if flush:
                started = time.perf_counter()
                if len(self.latest):
                    await self.latest.write(connection, self._keys)
                changes = await write_tallies(connection, self._tallies, duplicates, self._sequences.get)
                self.stats.flush_s += time.perf_counter() - started
            started = time.perf_counter()
        self.stats.finish_s += time.perf_counter() - started  # COMMIT itself: the WAL written and flushed
        if flush:
            self.latest.written()
            self._tallies = {}
        else:
            correct(self._tallies, duplicates)
        return changes, duplicates

    async def _add_keys(self, connection: asyncpg.Connection, tenant_id: UUID, names: list[str]) -> None:
        """Add key names to the tenant's key dictionary (a transaction of its own: keys are never taken back)."""
        async with connection.transaction():
            await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
            await connection.execute(
                'INSERT INTO telemetry_keys (tenant_id, name) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING',
                tenant_id, names)
            for record in await connection.fetch(
                'SELECT id, name FROM telemetry_keys WHERE tenant_id = $1 AND name = ANY($2::text[])', tenant_id, names,
            ):
                self._keys[(tenant_id, record['name'])] = record['id']

    def restore_sequences(self, states: dict[UUID, SeqState]) -> None:
        """Sequence state as the last flush left it (see `latest.load_sequences`), before `start`."""
        for device_id, state in states.items():
            self._sequences.setdefault(device_id, state)

    def _after_commit(self, prepared: Prepared, changes: list[tuple[UUID, UUID, str]],
                      duplicates: dict[UUID, int]) -> list[TelemetryStored]:
        self.stats.batches += 1
        acks: dict[Acknowledge, list[bytes]] = {}
        rejected: set[tuple[UUID, UUID]] = set()
        stored: dict[tuple[UUID, UUID], tuple[list[Message], datetime]] = {}
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
                slot = (item.tenant_id, item.device_id)
                held = stored.get(slot)
                if held is None:
                    held = stored[slot] = ([], item.received_at)
                elif item.received_at > held[1]:
                    stored[slot] = held = (held[0], item.received_at)
                held[0].extend(item.messages)
        for acknowledge, ids in acks.items():
            acknowledge(ids)
        dropped = sum(duplicates.values())
        self.stats.rows += sum(offered for _, offered in prepared.offered.values()) - dropped
        self.stats.duplicates += dropped
        events = [
            TelemetryStored(tenant_id, device_id, tuple(messages), last_seen)
            for (tenant_id, device_id), (messages, last_seen) in stored.items()
        ]
        for event in events:
            self._bus.telemetry_stored.publish(event)
        for tenant_id, device_id, _ in changes:
            self._bus.device_changed.publish(DeviceChanged(tenant_id=tenant_id, device_id=device_id, change='online'))
        for tenant_id, device_id in rejected:
            self._bus.device_changed.publish(DeviceChanged(tenant_id=tenant_id, device_id=device_id, change='rejected'))
        return events


def _rows_in(item: Item) -> int:
    if isinstance(item, Rejection):
        return 1
    return max(1, sum(len(message.readings) for message in item.messages))


def _idempotency_keys(items: list[Item]) -> dict[UUID, list[tuple[UUID, str]]]:
    keys: dict[UUID, list[tuple[UUID, str]]] = {}
    for item in items:
        if isinstance(item, Inbound) and item.idempotency_key is not None:
            keys.setdefault(item.tenant_id, []).append((item.device_id, item.idempotency_key))
    return keys
