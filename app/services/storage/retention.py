"""Retention: whole daily partitions dropped past the longest tenant retention, per-tenant deletes below it."""

from __future__ import annotations

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

TENANT_RETENTION = f"""
SELECT t.id, coalesce(s.raw_days, {DEFAULT_RETENTION.raw_days}),
       coalesce(s.minute_days, {DEFAULT_RETENTION.minute_days}), coalesce(s.hour_days, {DEFAULT_RETENTION.hour_days})
FROM tenants t LEFT JOIN storage_settings s ON s.tenant_id = t.id"""
PARTITIONS = """
SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = CAST(:parent AS regclass) ORDER BY 1"""
TRIM = {
    'raw': 'DELETE FROM telemetry WHERE tenant_id = :tenant AND ts < :cutoff',
    'minute': 'DELETE FROM telemetry_1m WHERE tenant_id = :tenant AND bucket < :cutoff',
    'hour': 'DELETE FROM telemetry_1h WHERE tenant_id = :tenant AND bucket < :cutoff',
}


@dataclass(frozen=True)
class RetentionRun:
    dropped_partitions: tuple[str, ...]
    deleted_rows: int


def partition_day(name: str, prefix: str = PARTITION_PREFIX) -> date | None:
    """The UTC day of a partition named `<prefix>YYYYMMDD`."""
    digits = name.removeprefix(prefix)
    if digits == name or len(digits) != 8 or not digits.isdigit():
        return None
    return datetime.strptime(digits, '%Y%m%d').date()


async def create_day_partitions(session: AsyncSession, parent: str, column: str, days: set[date]) -> list[date]:
    """`parent`'s daily partitions for `days` (`gito_day_partition`: rows parked in the default partition are
    moved in); the days created."""
    created = []
    for day in sorted(days):
        if await session.scalar(text('SELECT gito_day_partition(:parent, :column, :day)'),
                                {'parent': parent, 'column': column, 'day': day}):
            created.append(day)
    return created


async def drop_partitions_before(session: AsyncSession, parent: str, horizon: datetime) -> list[str]:
    """Drop `parent`'s daily partitions that end at or before `horizon`; their names."""
    dropped = []
    for name in (await session.scalars(text(PARTITIONS), {'parent': parent})).all():
        day = partition_day(name, f'{parent}_p')
        if day is not None and datetime(day.year, day.month, day.day, tzinfo=horizon.tzinfo) + timedelta(days=1) \
                <= horizon:
            await session.execute(text(f'DROP TABLE "{name}"'))
            dropped.append(name)
    return dropped


async def tenant_retentions(session: AsyncSession) -> dict[UUID, Retention]:
    rows = await session.execute(text(TENANT_RETENTION))
    return {row[0]: Retention(raw_days=row[1], minute_days=row[2], hour_days=row[3]) for row in rows}


async def apply_native_retention(session: AsyncSession, *, now: datetime) -> RetentionRun:
    """In the caller's owner transaction (under the job's advisory lock)."""
    retentions = await tenant_retentions(session)
    longest = max((r.raw_days for r in retentions.values()), default=DEFAULT_RETENTION.raw_days)
    dropped = await drop_partitions_before(session, 'telemetry', now - timedelta(days=longest))
    deleted = 0
    for tenant_id, retention in retentions.items():
        for kind, days in (('raw', retention.raw_days), ('minute', retention.minute_days),
                           ('hour', retention.hour_days)):
            cutoff = now - timedelta(days=days)
            result = await session.execute(text(TRIM[kind]), {'tenant': tenant_id, 'cutoff': cutoff})
            deleted += int(result.rowcount)  # type: ignore[attr-defined]
    return RetentionRun(dropped_partitions=tuple(dropped), deleted_rows=deleted)
