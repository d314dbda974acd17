"""The batch writer: the one hot-path writer outside the services.

Accepted messages are grouped into batches (by row count or a few tens of milliseconds, whichever first),
copied into a per-connection staging table with binary COPY and moved into `telemetry` per tenant, with
`app.tenant_id` set for each tenant's rows so row-level security checks every insert. Latest values (newest
timestamp wins, not newest arrival) and the devices' last_seen, status and counters are collapsed in memory and
written in a batch's transaction when the queue is idle or at least every second (see `latest.py` and
`device_tallies.py`). Only after the commit are waiters released (HTTP answers, MQTT acks) and events published.
When PostgreSQL is unreachable the batch is retried until it commits; the bounded queue in front makes
producers wait instead of piling up memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from app.bus import DeviceChanged, EventBus, ReadingValue, TelemetryStored
from app.ingest.device_tallies import DeviceTally, Tallies, add_tallies, merged, write_tallies
from app.ingest.latest import LatestBuffer
from app.ingest.payload import Message

log = logging.getLogger(__name__)

STAGE_COLUMNS = ('tenant_id', 'device_id', 'key_id', 'ts', 'value', 'text_value', 'bool_value', 'json_value')
CREATE_STAGE = """
CREATE TEMP TABLE IF NOT EXISTS ingest_stage (
    tenant_id uuid, device_id uuid, key_id integer, ts timestamptz,
    value double precision, text_value text, bool_value boolean, json_value jsonb
) ON COMMIT DELETE ROWS"""
MOVE_ROWS = """
INSERT INTO telemetry (tenant_id, device_id, key_id, ts, value, text_value, bool_value, json_value)
SELECT tenant_id, device_id, key_id, ts, value, text_value, bool_value, json_value
FROM ingest_stage WHERE tenant_id = $1
ON CONFLICT DO NOTHING"""


@dataclass
class Inbound:
    """What one device sent in one MQTT message or HTTP request. No messages: a sign of life only."""

    tenant_id: UUID
    device_id: UUID
    messages: list[Message]
    received_at: datetime
    done: asyncio.Future[None] | None = None
    ack: Callable[[], None] | None = None  # called once the batch holding it is committed (MQTT PUBACK)


@dataclass(frozen=True)
class Rejection:
    tenant_id: UUID
    device_id: UUID
    reason: str
    excerpt: str
    at: datetime
    ack: Callable[[], None] | None = None


CommitListener = Callable[[list[TelemetryStored]], Awaitable[None]]


@dataclass
class WriterStats:
    batches: int = 0
    rows: int = 0
    messages: int = 0
    rejected: int = 0
    last_commit_ms: float = 0.0
    commit_s: float = 0.0  # cumulative time in PostgreSQL transactions
    listeners_s: float = 0.0  # cumulative time in commit listeners (the rule engine): it is ingest time too
    failures: int = 0


class BatchWriter:
    def __init__(
        self, dsn: str, bus: EventBus, *, max_rows: int = 5000, max_delay_s: float = 0.05, queue_limit: int = 50_000,
        latest_interval_s: float = 1.0,
    ) -> None:
        self.latest = LatestBuffer(interval_s=latest_interval_s)
        self._tallies: Tallies = {}  # committed batches' device counters not yet written
        self._stopping = False
        self._dsn = dsn
        self._bus = bus
        self._max_rows = max_rows
        self._max_delay_s = max_delay_s
        self._queue: asyncio.Queue[Inbound | Rejection] = asyncio.Queue(maxsize=queue_limit)
        self._keys: dict[tuple[UUID, str], int] = {}
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

    async def start(self) -> None:
        self._stopping = False
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Write what is queued, then close."""
        self._stopping = True
        if self._task is not None:
            await self._queue.put(_STOP)
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(self._task, timeout=10)
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.close()

    async def submit(self, item: Inbound) -> None:
        await self._queue.put(item)

    async def reject(self, rejection: Rejection) -> None:
        await self._queue.put(rejection)

    @property
    def backlog(self) -> int:
        return self._queue.qsize()

    async def _run(self) -> None:
        while True:
            batch = await self._collect()
            if batch is None:
                if len(self.latest) or self._tallies:
                    await self._commit_until_done([])  # latest values still pending: write them before closing
                return
            items, stop = batch
            await self._commit_until_done(items)
            if stop:
                return

    async def _collect(self) -> tuple[list[Inbound | Rejection], bool] | None:
        first = await self._queue.get()
        if first is _STOP:
            return None
        items = [first]
        rows = _rows_in(first)
        deadline = time.monotonic() + self._max_delay_s
        while rows < self._max_rows:
            try:
                item = self._queue.get_nowait()
            except asyncio.QueueEmpty:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                try:
                    item = await asyncio.wait_for(self._queue.get(), remaining)
                except TimeoutError:
                    break
            if item is _STOP:
                return items, True
            items.append(item)
            rows += _rows_in(item)
        return items, False

    async def _commit_until_done(self, items: list[Inbound | Rejection]) -> None:
        delay = 0.2
        while True:
            try:
                started = time.perf_counter()
                changes = await self._commit(items)
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
                    'error': type(error).__name__, 'retry_s': delay, 'items': len(items)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
            except Exception:
                self.stats.failures += 1
                await self._drop_connection()
                log.exception('batch failed, retrying', extra={'items': len(items)})
                await asyncio.sleep(delay)
                delay = min(delay * 2, 5.0)
        stored = self._after_commit(items, changes)
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

    async def _commit(self, items: list[Inbound | Rejection]) -> list[tuple[UUID, UUID, str]]:
        connection = await self._connect()
        by_tenant: dict[UUID, list[Inbound | Rejection]] = defaultdict(list)
        for item in items:
            by_tenant[item.tenant_id].append(item)
        changes: list[tuple[UUID, UUID, str]] = []
        new_keys: dict[tuple[UUID, str], int] = {}
        async with connection.transaction():
            for tenant_id, tenant_items in by_tenant.items():
                await connection.execute("SELECT set_config('app.tenant_id', $1, true)", str(tenant_id))
                keys = await self._key_ids(connection, tenant_id, tenant_items, new_keys)
                records = _records(tenant_id, tenant_items, keys)
                if records:
                    await connection.copy_records_to_table('ingest_stage', records=records, columns=STAGE_COLUMNS)
                    await connection.execute(MOVE_ROWS, tenant_id)
                    self.latest.merge(records)
                    self.stats.rows += len(records)
            batch_tallies = _tally(items)
            idle = self._stopping or self._queue.empty()
            flush = self.latest.due(idle=idle) or (
                bool(self._tallies or batch_tallies) and (idle or self.latest.interval_elapsed()))
            if flush:
                if len(self.latest):
                    await self.latest.write(connection)
                changes = await write_tallies(connection, merged(self._tallies, batch_tallies))
        if flush:
            self.latest.written()
            self._tallies = {}
        else:
            add_tallies(self._tallies, batch_tallies)
        self._keys.update(new_keys)
        return changes

    async def _key_ids(
        self, connection: asyncpg.Connection, tenant_id: UUID, items: list[Inbound | Rejection],
        new_keys: dict[tuple[UUID, str], int],
    ) -> dict[str, int]:
        names = {reading.key for item in items if isinstance(item, Inbound)
                 for message in item.messages for reading in message.readings}
        known = {name: self._keys[(tenant_id, name)] for name in names if (tenant_id, name) in self._keys}
        missing = sorted(names - known.keys())
        if missing:
            await connection.execute(
                'INSERT INTO telemetry_keys (tenant_id, name) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING',
                tenant_id, missing,
            )
            for row in await connection.fetch(
                'SELECT id, name FROM telemetry_keys WHERE tenant_id = $1 AND name = ANY($2::text[])',
                tenant_id, missing,
            ):
                known[row['name']] = row['id']
                new_keys[(tenant_id, row['name'])] = row['id']
        return known

    def _after_commit(
        self, items: list[Inbound | Rejection], changes: list[tuple[UUID, UUID, str]],
    ) -> list[TelemetryStored]:
        self.stats.batches += 1
        rejected: set[tuple[UUID, UUID]] = set()
        stored: dict[tuple[UUID, UUID], tuple[list[ReadingValue], datetime]] = {}
        for item in items:
            if item.ack is not None:
                item.ack()
            if isinstance(item, Rejection):
                self.stats.rejected += 1
                rejected.add((item.tenant_id, item.device_id))
                continue
            self.stats.messages += 1
            if item.done is not None and not item.done.done():
                item.done.set_result(None)
            if item.messages:
                readings, last_seen = stored.setdefault((item.tenant_id, item.device_id), ([], item.received_at))
                readings.extend(ReadingValue(key=r.key, ts=m.ts, value=r.value)
                                for m in item.messages for r in m.readings)
                stored[(item.tenant_id, item.device_id)] = (readings, max(last_seen, item.received_at))
        events = [
            TelemetryStored(tenant_id=tenant_id, device_id=device_id, readings=tuple(readings), last_seen=last_seen)
            for (tenant_id, device_id), (readings, last_seen) in stored.items()
        ]
        for event in events:
            self._bus.telemetry_stored.publish(event)
        for tenant_id, device_id, _ in changes:
            self._bus.device_changed.publish(DeviceChanged(tenant_id=tenant_id, device_id=device_id, change='online'))
        for tenant_id, device_id in rejected:
            self._bus.device_changed.publish(DeviceChanged(tenant_id=tenant_id, device_id=device_id, change='rejected'))
        return events


_STOP: Any = object()


def _rows_in(item: Inbound | Rejection) -> int:
    if isinstance(item, Rejection):
        return 1
    return max(1, sum(len(message.readings) for message in item.messages))


def _records(tenant_id: UUID, items: list[Inbound | Rejection], keys: dict[str, int]) -> list[tuple[Any, ...]]:
    records: list[tuple[Any, ...]] = []
    for item in items:
        if not isinstance(item, Inbound):
            continue
        for message in item.messages:
            for reading in message.readings:
                value = reading.value
                records.append((
                    tenant_id, item.device_id, keys[reading.key], message.ts,
                    value if isinstance(value, float) else None,
                    value if isinstance(value, str) else None,
                    value if isinstance(value, bool) else None,
                    orjson.dumps(value).decode() if isinstance(value, dict | list) else None,
                ))
    return records


def _tally(items: list[Inbound | Rejection]) -> Tallies:
    tallies: Tallies = defaultdict(DeviceTally)
    for item in items:
        tally = tallies[(item.tenant_id, item.device_id)]
        if isinstance(item, Rejection):
            tally.received += 1
            tally.malformed += 1
            tally.reason, tally.excerpt = item.reason, item.excerpt
            tally.at = max(tally.at, item.at)
        else:
            tally.received += len(item.messages)
            tally.at = max(tally.at, item.received_at)
    return tallies
