"""The raw archive's share of the storage job: daily partitions ahead, whole days dropped past the longest
tenant's archive days, and per-tenant deletes below that (on either storage backend: `raw_messages` is always
natively partitioned)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.raw_archive import DEFAULT_ARCHIVE_DAYS
from app.services.storage.retention import RetentionRun, create_day_partitions, drop_partitions_before

PARENT = 'raw_messages'
TENANT_DAYS = f"""
SELECT t.id, coalesce(s.days, {DEFAULT_ARCHIVE_DAYS})
FROM tenants t LEFT JOIN raw_archive_settings s ON s.tenant_id = t.id"""
PARKED_DAYS = f"""
SELECT DISTINCT (received_at AT TIME ZONE 'UTC')::date FROM {PARENT}_default ORDER BY 1"""
TRIM = f'DELETE FROM {PARENT} WHERE tenant_id = :tenant AND received_at < :cutoff'


async def ensure_raw_partitions(session: AsyncSession, days: list[date]) -> list[date]:
    """Partitions for `days` and for the days of rows parked in the default partition; the days created."""
    parked = (await session.scalars(text(PARKED_DAYS))).all()
    return await create_day_partitions(session, PARENT, 'received_at', set(days) | set(parked))


async def apply_raw_retention(session: AsyncSession, *, now: datetime) -> RetentionRun:
    days: dict[UUID, int] = {row[0]: row[1] for row in await session.execute(text(TENANT_DAYS))}
    longest = max(days.values(), default=DEFAULT_ARCHIVE_DAYS)
    dropped = await drop_partitions_before(session, PARENT, now - timedelta(days=longest))
    deleted = 0
    for tenant_id, kept in days.items():
        result = await session.execute(text(TRIM), {'tenant': tenant_id, 'cutoff': now - timedelta(days=kept)})
        deleted += int(result.rowcount)  # type: ignore[attr-defined]
    return RetentionRun(dropped_partitions=tuple(dropped), deleted_rows=deleted)
