"""The raw archive: every inbound payload as received, for tenants that switch it on (admins), kept `days` days.

The batch writer stores the payloads in the same transaction as their readings (`app/ingest/raw_rows.py`);
this service reads them (a device's last messages, a streamed export) and replays a time range into the
pipeline: decoded again at their original receive time, written by the batch writer (readings already stored
are dropped as duplicates of the same device, key and timestamp) and evaluated by the rules like new data.
"""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
from pydantic import ValidationError
from sqlalchemy import text

from app.db import Database
from app.ingest.batch_items import Inbound
from app.ingest.payload import MAX_PAYLOAD_BYTES, PayloadError, decode
from app.ingest.writer import BatchWriter
from app.models.raw_archive import RawArchiveSettings, RawMessage, ReplayResult
from app.models.schemas import Principal
from app.services import audit
from app.services.errors import InvalidInput, Unavailable
from app.services.periodic import PeriodicTask
from app.services.permissions import Permission, require
from app.services.telemetry import check_device, check_range

READ_SETTINGS = 'SELECT enabled, days FROM raw_archive_settings WHERE tenant_id = :tenant'
WRITE_SETTINGS = """
INSERT INTO raw_archive_settings (tenant_id, enabled, days) VALUES (:tenant, :enabled, :days)
ON CONFLICT (tenant_id) DO UPDATE SET enabled = :enabled, days = :days, updated_at = now()"""
ARCHIVING = 'SELECT tenant_id FROM raw_archive_settings WHERE enabled'
RECENT = """
SELECT received_at, transport, kind, accepted, reason, substring(payload FROM 1 FOR :max_bytes) AS payload,
       octet_length(payload) AS size FROM raw_messages
WHERE tenant_id = :tenant AND device_id = :device AND received_at < :before
ORDER BY received_at DESC LIMIT :limit"""
# Pages in (received_at, ctid) order: rows with one receive time are in one daily partition, where ctid is
# stable (archived rows are never updated), so the keyset neither skips nor repeats a row.
PAGE = """
SELECT received_at, ctid::text, transport, kind, accepted, reason, payload FROM raw_messages
WHERE tenant_id = :tenant AND device_id = :device AND received_at >= :start AND received_at < :end
  AND (received_at, ctid) > (:after, CAST(CAST(:after_ctid AS text) AS tid))
ORDER BY received_at, ctid LIMIT :limit"""
FIRST_CTID = '(0,0)'
MAX_RECENT = 200
PAGE_ROWS = 2000
MAX_REPLAY = 100_000
REPLAY_TIMEOUT_S = 300.0
NOT_WRITTEN = ('Telemetry storage is not accepting writes right now; what was replayed so far is written once it '
               'is back. Replay again later: readings already stored are skipped.')


def to_message(row: Any) -> RawMessage:
    return RawMessage(received_at=row.received_at, transport=row.transport, kind=row.kind, accepted=row.accepted,
                      reason=row.reason, payload=bytes(row.payload).decode('utf-8', errors='replace'), size=row.size)


def export_line(row: Any) -> bytes:
    """One NDJSON line; a payload that is not UTF-8 is given in base64 instead."""
    payload = bytes(row.payload)
    document: dict[str, Any] = {
        'received_at': row.received_at.isoformat(), 'transport': row.transport, 'kind': row.kind,
        'accepted': row.accepted, 'reason': row.reason}
    try:
        document['payload'] = payload.decode()
    except UnicodeDecodeError:
        document['payload_base64'] = base64.b64encode(payload).decode()
    return orjson.dumps(document) + b'\n'


class RawArchivePolicy:
    """Which tenants keep an archive, for the batch writer: read at start, after a change here, and every
    `every_s` (a change made through another instance; one small query)."""

    def __init__(self, db: Database, writer: BatchWriter, *, every_s: float = 2.0) -> None:
        self._db = db
        self._writer = writer
        self.job = PeriodicTask(self.refresh, every_s=every_s, name='raw-archive-policy')

    async def refresh(self) -> None:
        async with self._db.system() as session:
            self._writer.archiving = frozenset((await session.scalars(text(ARCHIVING))).all())


class RawArchive:
    def __init__(self, db: Database, writer: BatchWriter, policy: RawArchivePolicy) -> None:
        self._db = db
        self._writer = writer
        self._policy = policy

    async def settings(self, principal: Principal) -> RawArchiveSettings:
        require(principal, Permission.VIEW)
        async with self._db.tenant(principal.tenant_id) as session:
            row = (await session.execute(text(READ_SETTINGS), {'tenant': principal.tenant_id})).first()
        return RawArchiveSettings() if row is None else RawArchiveSettings(enabled=row[0], days=row[1])

    async def update_settings(self, principal: Principal, settings: RawArchiveSettings) -> RawArchiveSettings:
        """Archiving starts or stops at once on this instance (within two seconds on others); what is archived is
        kept for `days` either way and deleted by the storage job."""
        require(principal, Permission.MANAGE_STORAGE)
        try:  # pages build it unvalidated
            settings = RawArchiveSettings.model_validate(settings.model_dump())
        except ValidationError as error:
            raise InvalidInput('Raw archive: keep between 1 and 365 days.', field='days') from error
        before = await self.settings(principal)
        async with self._db.tenant(principal.tenant_id) as session:
            await session.execute(text(WRITE_SETTINGS), {'tenant': principal.tenant_id, 'enabled': settings.enabled,
                                                         'days': settings.days})
            await audit.record(session, principal, 'storage.raw_archive.update', 'tenant', principal.tenant_id,
                               before=before.model_dump(), after=settings.model_dump())
        await self._policy.refresh()
        return settings

    async def recent(self, principal: Principal, device_id: UUID, *, limit: int = 50, before: datetime | None = None,
                     max_bytes: int = MAX_PAYLOAD_BYTES) -> list[RawMessage]:
        """The device's newest archived messages, newest first (`before`: older than that, to page back); each
        payload cut at `max_bytes` (`size` is the whole)."""
        require(principal, Permission.VIEW)
        if not 1 <= limit <= MAX_RECENT:
            raise InvalidInput(f'limit must be between 1 and {MAX_RECENT}.', field='limit')
        if before is not None and before.tzinfo is None:
            raise InvalidInput('Times need a time zone (e.g. 2026-01-01T00:00:00Z).', field='before')
        async with self._db.tenant(principal.tenant_id) as session:
            await check_device(session, principal, device_id)
            rows = (await session.execute(text(RECENT), {
                'tenant': principal.tenant_id, 'device': device_id, 'limit': limit, 'max_bytes': max_bytes,
                'before': before or datetime.max.replace(tzinfo=UTC)})).all()
        return [to_message(row) for row in rows]

    async def export(self, principal: Principal, device_id: UUID, *, start: datetime,
                     end: datetime) -> AsyncIterator[bytes]:
        """Checked now; the iterator yields NDJSON lines, oldest first, a page (its own transaction) at a time."""
        require(principal, Permission.VIEW)
        check_range(start, end)
        async with self._db.tenant(principal.tenant_id) as session:
            await check_device(session, principal, device_id)
        return self._lines(principal, device_id, start, end)

    async def _lines(self, principal: Principal, device_id: UUID, start: datetime,
                     end: datetime) -> AsyncIterator[bytes]:
        async for rows in self._pages(principal, device_id, start, end):
            yield b''.join(export_line(row) for row in rows)

    async def _pages(self, principal: Principal, device_id: UUID, start: datetime, end: datetime,
                     page_rows: int = PAGE_ROWS) -> AsyncIterator[list[Any]]:
        after, after_ctid = start, FIRST_CTID
        while True:
            async with self._db.tenant(principal.tenant_id) as session:
                rows = list((await session.execute(text(PAGE), {
                    'tenant': principal.tenant_id, 'device': device_id, 'start': start, 'end': end,
                    'after': after, 'after_ctid': after_ctid, 'limit': page_rows})).all())
            if rows:
                yield rows
            if len(rows) < page_rows:
                return
            after, after_ctid = rows[-1].received_at, rows[-1].ctid

    async def replay(self, principal: Principal, device_id: UUID, *, start: datetime,
                     end: datetime) -> ReplayResult:
        """Telemetry archived in [start, end) through the pipeline again, oldest first; waits for the commits."""
        require(principal, Permission.REPLAY_DATA)
        check_range(start, end)
        async with self._db.tenant(principal.tenant_id) as session:
            await check_device(session, principal, device_id)
        if not self._writer.healthy:
            raise Unavailable(NOT_WRITTEN)
        messages = replayed = readings = rejected = 0
        waits: list[asyncio.Future[None]] = []
        async for rows in self._pages(principal, device_id, start, end):
            for row in rows:
                if row.kind != 'telemetry':
                    continue
                if messages == MAX_REPLAY:
                    break
                messages += 1
                try:
                    decoded = decode(bytes(row.payload), received_at=row.received_at)
                except PayloadError:
                    rejected += 1
                    continue
                done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
                await self._writer.submit(Inbound(principal.tenant_id, device_id, decoded, row.received_at,
                                                  done=done, transport='replay'))
                waits.append(done)
                replayed += 1
                readings += sum(len(message.readings) for message in decoded)
            if messages == MAX_REPLAY:
                break
        if waits:
            try:
                await asyncio.wait_for(asyncio.gather(*waits), REPLAY_TIMEOUT_S)
            except TimeoutError:
                raise Unavailable(NOT_WRITTEN) from None
        result = ReplayResult(messages=messages, replayed=replayed, readings=readings, rejected=rejected,
                              truncated=messages == MAX_REPLAY)
        async with self._db.tenant(principal.tenant_id) as session:
            await audit.record(session, principal, 'device.raw.replay', 'device', device_id,
                               after={'start': start.isoformat(), 'end': end.isoformat(), **result.model_dump()})
        return result
