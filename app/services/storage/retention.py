"""Retention: whole daily partitions dropped past the longest tenant retention, per-tenant deletes below it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.storage.native_sql import PARTITION_PREFIX


@dataclass(frozen=True)
class Retention:
    """Days kept of raw readings, 1-minute and 1-hour rollups."""

    raw_days: int
    minute_days: int
    hour_days: int


DEFAULT_RETENTION = Retention(raw_days=30, minute_days=180, hour_days=730)
PARTITION_NAME = re.compile(rf'^{PARTITION_PREFIX}(\d{{8}})$')

TENANT_RETENTION = f"""
SELECT t.id, coalesce(s.raw_days, {DEFAULT_RETENTION.raw_days}),
       coalesce(s.minute_days, {DEFAULT_RETENTION.minute_days}), coalesce(s.hour_days, {DEFAULT_RETENTION.hour_days})
FROM tenants t LEFT JOIN storage_settings s ON s.tenant_id = t.id"""
PARTITIONS = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'telemetry'::regclass ORDER BY 1"""
TRIM = {
    'raw': 'DELETE FROM telemetry WHERE tenant_id = :tenant AND ts < :cutoff',
    'minute': 'DELETE FROM telemetry_1m WHERE tenant_id = :tenant AND bucket < :cutoff',
    'hour': 'DELETE FROM telemetry_1h WHERE tenant_id = :tenant AND bucket < :cutoff',
}


@dataclass(frozen=True)
class RetentionRun:
    dropped_partitions: tuple[str, ...]
    deleted_rows: int


def partition_day(name: str) -> date | None:
    match = PARTITION_NAME.match(name)
    return datetime.strptime(match.group(1), '%Y%m%d').date() if match else None


async def tenant_retentions(session: AsyncSession) -> dict[UUID, Retention]:
    rows = await session.execute(text(TENANT_RETENTION))
    return {row[0]: Retention(raw_days=row[1], minute_days=row[2], hour_days=row[3]) for row in rows}


async def apply_native_retention(session: AsyncSession, *, now: datetime) -> RetentionRun:
    """In the caller's owner transaction (under the job's advisory lock)."""
    retentions = await tenant_retentions(session)
    longest = max((r.raw_days for r in retentions.values()), default=DEFAULT_RETENTION.raw_days)
    horizon = now - timedelta(days=longest)
    dropped = []
    for name in (await session.scalars(text(PARTITIONS))).all():
        day = partition_day(name)
        if day is not None and datetime(day.year, day.month, day.day, tzinfo=now.tzinfo) + timedelta(days=1) <= horizon:
            await session.execute(text(f'DROP TABLE "{name}"'))
            dropped.append(name)
    deleted = 0
    for tenant_id, retention in retentions.items():
        for kind, days in (('raw', retention.raw_days), ('minute', retention.minute_days),
                           ('hour', retention.hour_days)):
            cutoff = now - timedelta(days=days)
            result = await session.execute(text(TRIM[kind]), {'tenant': tenant_id, 'cutoff': cutoff})
            deleted += int(result.rowcount)  # type: ignore[attr-defined]
    return RetentionRun(dropped_partitions=tuple(dropped), deleted_rows=deleted)
