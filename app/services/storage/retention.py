"""Retention: whole partitions dropped past the longest tenant retention, per-tenant deletes below it.

Partitions are named `<parent>_pYYYYMMDD` (a UTC day: telemetry points, 1-minute rollups, raw archive) or
`<parent>_mYYYYMM` (a UTC month: 1-hour rollups), as `gito_day_partition` / `gito_month_partition` name them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.storage.native_sql import PARTITION_PREFIX, RAW_TABLES


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
    'raw': tuple(f'DELETE FROM {table} WHERE tenant_id = :tenant AND ts < :cutoff' for table in RAW_TABLES),
    'minute': ('DELETE FROM telemetry_1m WHERE tenant_id = :tenant AND bucket < :cutoff',),
    'hour': ('DELETE FROM telemetry_1h WHERE tenant_id = :tenant AND bucket < :cutoff',),
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


def partition_end(name: str, parent: str) -> date | None:
    """The UTC day after the last one a partition of `parent` holds (None: not a day or month partition)."""
    day = partition_day(name, f'{parent}_p')
    if day is not None:
        return day + timedelta(days=1)
    digits = name.removeprefix(f'{parent}_m')
    if digits == name or len(digits) != 6 or not digits.isdigit():
        return None
    year, month = int(digits[:4]), int(digits[4:])
    return date(year + month // 12, month % 12 + 1, 1)


async def create_day_partitions(session: AsyncSession, parent: str, column: str, days: set[date]) -> list[date]:
    """`parent`'s daily partitions for `days` (`gito_day_partition`: rows parked in the default partition are
    moved in); the days created."""
    return await _create_partitions(session, 'gito_day_partition', parent, column, days)


async def create_month_partitions(session: AsyncSession, parent: str, column: str, months: set[date]) -> list[date]:
    """`parent`'s monthly partitions for the months of `months`; the months created (as their first days)."""
    firsts = {month.replace(day=1) for month in months}
    return await _create_partitions(session, 'gito_month_partition', parent, column, firsts)


async def _create_partitions(session: AsyncSession, function: str, parent: str, column: str,
                             starts: set[date]) -> list[date]:
    created = []
    for start in sorted(starts):
        if await session.scalar(text(f'SELECT {function}(:parent, :column, :start)'),
                                {'parent': parent, 'column': column, 'start': start}):
            created.append(start)
    return created


async def parked_days(session: AsyncSession, parent: str, column: str, *, within_days: int) -> list[date]:
    """The UTC days of rows waiting in `parent`'s default partition (no partition of theirs yet), recent ones."""
    rows = await session.scalars(text(f"""
        SELECT DISTINCT ({column} AT TIME ZONE 'UTC')::date FROM {parent}_default
        WHERE {column} >= now() - make_interval(days => :days) ORDER BY 1"""), {'days': within_days})
    return list(rows.all())


async def drop_partitions_before(session: AsyncSession, parent: str, horizon: datetime) -> list[str]:
    """Drop `parent`'s day or month partitions that end at or before `horizon`; their names."""
    dropped = []
    for name in (await session.scalars(text(PARTITIONS), {'parent': parent})).all():
        end = partition_end(name, parent)
        if end is not None and datetime(end.year, end.month, end.day, tzinfo=horizon.tzinfo) <= horizon:
            await session.execute(text(f'DROP TABLE "{name}"'))
            dropped.append(name)
    return dropped


async def tenant_retentions(session: AsyncSession) -> dict[UUID, Retention]:
    rows = await session.execute(text(TENANT_RETENTION))
    return {row[0]: Retention(raw_days=row[1], minute_days=row[2], hour_days=row[3]) for row in rows}


def longest_retention(retentions: dict[UUID, Retention]) -> Retention:
    """What the longest-keeping tenant keeps of each (whole partitions older than that hold nobody's rows)."""
    values = list(retentions.values()) or [DEFAULT_RETENTION]
    return Retention(raw_days=max(r.raw_days for r in values), minute_days=max(r.minute_days for r in values),
                     hour_days=max(r.hour_days for r in values))


async def apply_native_retention(session: AsyncSession, *, now: datetime) -> RetentionRun:
    """In the caller's owner transaction (under the job's advisory lock)."""
    retentions = await tenant_retentions(session)
    longest = longest_retention(retentions)
    dropped = []
    for table in RAW_TABLES:
        dropped += await drop_partitions_before(session, table, now - timedelta(days=longest.raw_days))
    dropped += await drop_partitions_before(session, 'telemetry_1m', now - timedelta(days=longest.minute_days))
    dropped += await drop_partitions_before(session, 'telemetry_1h', now - timedelta(days=longest.hour_days))
    deleted = 0
    for tenant_id, retention in retentions.items():
        for kind, days in (('raw', retention.raw_days), ('minute', retention.minute_days),
                           ('hour', retention.hour_days)):
            cutoff = now - timedelta(days=days)
            for trim in TRIM[kind]:
                result = await session.execute(text(trim), {'tenant': tenant_id, 'cutoff': cutoff})
                deleted += int(result.rowcount)  # type: ignore[attr-defined]
    return RetentionRun(dropped_partitions=tuple(dropped), deleted_rows=deleted)
