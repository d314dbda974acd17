"""Per-tenant retention settings (admins edit them, audited) and the disk each tenant uses."""

from __future__ import annotations

from uuid import UUID

from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.models.schemas import Principal
from app.models.storage import RetentionSettings, StorageUsage, TableUsage
from app.services import audit
from app.services.errors import InvalidInput
from app.services.permissions import Permission, require
from app.services.storage.maintenance import detect_backend, lengthen_timescale_policies
from app.services.storage.native_sql import POINTS_TABLE, ROWS_TABLE
from app.services.storage.retention import DEFAULT_RETENTION
from app.services.storage.timescale import SCHEMA

READ = 'SELECT raw_days, minute_days, hour_days FROM storage_settings WHERE tenant_id = :tenant'
WRITE = """
INSERT INTO storage_settings (tenant_id, raw_days, minute_days, hour_days) VALUES (:tenant, :raw, :minute, :hour)
ON CONFLICT (tenant_id) DO UPDATE SET raw_days = :raw, minute_days = :minute, hour_days = :hour, updated_at = now()"""
TENANT_ROWS = """
SELECT (SELECT coalesce(sum(count), 0) FROM telemetry_1h WHERE tenant_id = :tenant),
       (SELECT count(*) FROM telemetry_1m WHERE tenant_id = :tenant),
       (SELECT count(*) FROM telemetry_1h WHERE tenant_id = :tenant)"""
# Installation-wide bytes per row of each table from the catalog statistics (no tenant data: a system path).
NATIVE_ROW_BYTES = """
SELECT relation, coalesce(sum(pg_total_relation_size(c.oid))::float8 / nullif(sum(greatest(c.reltuples, 0)), 0), 0)
FROM (SELECT CASE inhparent WHEN 'telemetry_1m'::regclass THEN 'minute' ELSE 'hour' END AS relation, inhrelid AS oid
      FROM pg_inherits WHERE inhparent IN ('telemetry_1m'::regclass, 'telemetry_1h'::regclass)
     ) r
JOIN pg_class c ON c.oid = r.oid GROUP BY relation"""
# Raw readings: both tables' bytes over their readings, a row of `telemetry_rows` holding several (a message's).
RAW_SIZE = f"""
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::float8,
       coalesce(sum(greatest(c.reltuples, 0)) FILTER (WHERE i.inhparent = '{POINTS_TABLE}'::regclass), 0)::float8,
       coalesce(sum(greatest(c.reltuples, 0)) FILTER (WHERE i.inhparent = '{ROWS_TABLE}'::regclass), 0)::float8
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent IN ('{POINTS_TABLE}'::regclass, '{ROWS_TABLE}'::regclass)"""
# Readings per row of numbers: counted while the table is small, else from a 1% sample of its pages.
READINGS_PER_ROW = f'SELECT avg(cardinality(key_ids)) FROM {ROWS_TABLE}'
READINGS_PER_ROW_SAMPLED = READINGS_PER_ROW + ' TABLESAMPLE SYSTEM (1)'
TIMESCALE_ROW_BYTES = f"""
SELECT relation, coalesce(hypertable_size(name)::float8 / nullif(approximate_row_count(name), 0), 0)
FROM (VALUES ('raw', '{SCHEMA}.telemetry'::regclass), ('minute', '{SCHEMA}.telemetry_1m'::regclass),
             ('hour', '{SCHEMA}.telemetry_1h'::regclass)) v(relation, name)"""
ARCHIVE_SIZE = """
SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0), coalesce(sum(greatest(c.reltuples, 0)), 0)
FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = 'raw_messages'::regclass"""
# The tenant's share of the archive: counted exactly while it is small, else from a 1% sample of its pages.
ARCHIVE_SHARE = 'SELECT count(*) FILTER (WHERE tenant_id = :tenant), count(*) FROM raw_messages'
ARCHIVE_SHARE_SAMPLED = f'{ARCHIVE_SHARE} TABLESAMPLE SYSTEM (1)'
EXACT_ROWS = 1_000_000  # above it, the archive's share and readings per row are sampled
LABELS = {'raw_days': 'Raw readings', 'minute_days': '1-minute rollups', 'hour_days': '1-hour rollups'}
FALLBACK_ROW_BYTES = {'raw': 100.0, 'minute': 120.0, 'hour': 120.0}  # before the first ANALYZE


async def raw_bytes_per_reading(session: AsyncSession) -> float | None:
    """Plain PostgreSQL: the installation's bytes per raw reading (None before the first ANALYZE)."""
    size, points, rows = (await session.execute(text(RAW_SIZE))).one()
    per_row = None
    if rows > EXACT_ROWS:  # a sample of an emptied table may find no row: then counted
        per_row = await session.scalar(text(READINGS_PER_ROW_SAMPLED))
    if rows and per_row is None:
        per_row = await session.scalar(text(READINGS_PER_ROW))
    readings = points + rows * float(per_row or 0)
    return size / readings if readings else None


async def archive_usage(session: AsyncSession, tenant_id: UUID) -> TableUsage:
    """One tenant's rows and bytes of the raw archive: the archive's size times the tenant's share of its rows
    (a system path: only the share leaves it)."""
    size, estimated_rows = (await session.execute(text(ARCHIVE_SIZE))).one()
    sampled = float(estimated_rows) > EXACT_ROWS
    own, seen = (await session.execute(text(ARCHIVE_SHARE_SAMPLED if sampled else ARCHIVE_SHARE),
                                       {'tenant': tenant_id})).one()
    if not seen:
        return TableUsage(rows=0, bytes=0)
    share = own / seen
    rows = round(share * float(estimated_rows)) if sampled else int(own)
    return TableUsage(rows=rows, bytes=round(share * float(size)))


class StorageService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def retention(self, principal: Principal) -> RetentionSettings:
        require(principal, Permission.VIEW)
        async with self._db.tenant(principal.tenant_id) as session:
            row = (await session.execute(text(READ), {'tenant': principal.tenant_id})).first()
        if row is None:
            return RetentionSettings(raw_days=DEFAULT_RETENTION.raw_days, minute_days=DEFAULT_RETENTION.minute_days,
                                     hour_days=DEFAULT_RETENTION.hour_days)
        return RetentionSettings(raw_days=row[0], minute_days=row[1], hour_days=row[2])

    async def update_retention(self, principal: Principal, settings: RetentionSettings) -> RetentionSettings:
        """Shorter retention takes effect at the storage job's next run (within about ten minutes); longer at once."""
        require(principal, Permission.MANAGE_STORAGE)
        try:  # pages build it unvalidated
            settings = RetentionSettings.model_validate(settings.model_dump())
        except ValidationError as error:
            first = error.errors()[0]
            field = str(first['loc'][0]) if first['loc'] else 'raw_days'
            raise InvalidInput(f'{LABELS.get(field, field)}: keep between 2 and 3650 days.', field=field) from error
        if settings.minute_days < settings.raw_days:
            raise InvalidInput('Keep 1-minute rollups at least as long as raw data.', field='minute_days')
        if settings.hour_days < settings.minute_days:
            raise InvalidInput('Keep 1-hour rollups at least as long as 1-minute rollups.', field='hour_days')
        before = await self.retention(principal)
        async with self._db.tenant(principal.tenant_id) as session:
            await session.execute(text(WRITE), {'tenant': principal.tenant_id, 'raw': settings.raw_days,
                                                'minute': settings.minute_days, 'hour': settings.hour_days})
            await audit.record(session, principal, 'storage.retention.update', 'tenant', principal.tenant_id,
                               before=before.model_dump(), after=settings.model_dump())
        longer = (settings.raw_days > before.raw_days or settings.minute_days > before.minute_days
                  or settings.hour_days > before.hour_days)
        if longer and await detect_backend(self._db) == 'timescaledb':
            await lengthen_timescale_policies(self._db)
        return settings

    async def usage(self, principal: Principal) -> StorageUsage:
        """Rows: raw = numeric readings counted by the 1-hour rollup (text/JSON values and the last few seconds
        not included); rollups exactly. Bytes: rows times the installation's average bytes per row of that table."""
        require(principal, Permission.MANAGE_STORAGE)
        async with self._db.tenant(principal.tenant_id) as session:
            raw, minute, hour = (await session.execute(text(TENANT_ROWS), {'tenant': principal.tenant_id})).one()
        backend = await detect_backend(self._db)
        async with self._db.system() as session:
            sizes: dict[str, float | None] = dict((await session.execute(text(
                TIMESCALE_ROW_BYTES if backend == 'timescaledb' else NATIVE_ROW_BYTES))).all())
            if backend != 'timescaledb':
                sizes['raw'] = await raw_bytes_per_reading(session)
            archive = await archive_usage(session, principal.tenant_id)
        per_row = {name: float(sizes.get(name) or FALLBACK_ROW_BYTES[name]) for name in FALLBACK_ROW_BYTES}
        return StorageUsage(
            archive=archive,
            backend=backend,
            raw=TableUsage(rows=int(raw), bytes=int(int(raw) * per_row['raw'])),
            minute=TableUsage(rows=int(minute), bytes=int(int(minute) * per_row['minute'])),
            hour=TableUsage(rows=int(hour), bytes=int(int(hour) * per_row['hour'])),
        )
