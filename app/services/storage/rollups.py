"""1-minute and 1-hour rollups of the plain-PostgreSQL path, maintained incrementally from an insertion watermark.

Every telemetry row carries `ingest_xid`, the id of the transaction that inserted it (a column default: no
extra work in the writer, and a BRIN index that costs next to nothing because ids grow with insertion order).
A run reads the watermark W and the oldest transaction still running, X = txid_snapshot_xmin(snapshot): every
transaction below X has finished, so the rows with W ≤ ingest_xid < X are exactly the rows committed since the
last run — whatever their timestamps. It recomputes each (tenant, device, key, minute) those rows touch from
the raw rows (so a late or out-of-order row is counted exactly once however late it is), then each hour those
minutes touch from the 1-minute table, and moves W to X, all in one transaction: a crash repeats a run, never
skips one.

Lateness bound: none within the tenant's raw retention. A row older than that is not rolled up (its minute's
raw rows are gone; recomputing would replace a complete bucket with a partial one) and the retention job
deletes it.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.services.storage.retention import DEFAULT_RETENTION

ORIGIN = "timestamptz '2000-01-01 00:00:00+00'"
WATERMARK = "SELECT xid FROM storage_watermarks WHERE name = 'rollups' FOR UPDATE"
SNAPSHOT_XMIN = 'SELECT txid_snapshot_xmin(txid_current_snapshot())'
TOUCHED_MINUTES = f"""
CREATE TEMP TABLE touched_minutes ON COMMIT DROP AS
SELECT DISTINCT t.tenant_id, t.device_id, t.key_id, date_bin(interval '1 minute', t.ts, {ORIGIN}) AS bucket
FROM telemetry t
LEFT JOIN storage_settings s ON s.tenant_id = t.tenant_id
WHERE t.ingest_xid >= :low AND t.ingest_xid < :high AND t.value IS NOT NULL
  AND t.ts >= now() - make_interval(days => coalesce(s.raw_days, {DEFAULT_RETENTION.raw_days}))"""
UPSERT = """
ON CONFLICT (tenant_id, device_id, key_id, bucket) DO UPDATE SET
    count = EXCLUDED.count, sum = EXCLUDED.sum, min = EXCLUDED.min, max = EXCLUDED.max,
    last = EXCLUDED.last, last_ts = EXCLUDED.last_ts"""
ROLL_MINUTES = f"""
INSERT INTO telemetry_1m (tenant_id, device_id, key_id, bucket, count, sum, min, max, last, last_ts)
SELECT m.tenant_id, m.device_id, m.key_id, m.bucket, r.count, r.sum, r.min, r.max, r.last, r.last_ts
FROM touched_minutes m
CROSS JOIN LATERAL (
    SELECT count(*) AS count, sum(t.value) AS sum, min(t.value) AS min, max(t.value) AS max,
           (array_agg(t.value ORDER BY t.ts DESC))[1] AS last, max(t.ts) AS last_ts
    FROM telemetry t
    WHERE t.tenant_id = m.tenant_id AND t.device_id = m.device_id AND t.key_id = m.key_id
      AND t.ts >= m.bucket AND t.ts < m.bucket + interval '1 minute' AND t.value IS NOT NULL
) r
WHERE r.count > 0{UPSERT}"""
ROLL_HOURS = f"""
INSERT INTO telemetry_1h (tenant_id, device_id, key_id, bucket, count, sum, min, max, last, last_ts)
SELECT h.tenant_id, h.device_id, h.key_id, h.bucket, r.count, r.sum, r.min, r.max, r.last, r.last_ts
FROM (SELECT DISTINCT tenant_id, device_id, key_id, date_bin(interval '1 hour', bucket, {ORIGIN}) AS bucket
      FROM touched_minutes) h
CROSS JOIN LATERAL (
    SELECT sum(m.count)::bigint AS count, sum(m.sum) AS sum, min(m.min) AS min, max(m.max) AS max,
           (array_agg(m.last ORDER BY m.last_ts DESC))[1] AS last, max(m.last_ts) AS last_ts
    FROM telemetry_1m m
    WHERE m.tenant_id = h.tenant_id AND m.device_id = h.device_id AND m.key_id = h.key_id
      AND m.bucket >= h.bucket AND m.bucket < h.bucket + interval '1 hour'
) r
WHERE r.count > 0{UPSERT}"""
MOVE_WATERMARK = "UPDATE storage_watermarks SET xid = :high, updated_at = now() WHERE name = 'rollups'"


@dataclass(frozen=True)
class RollupRun:
    minutes: int
    hours: int


async def refresh_rollups(session: AsyncSession) -> RollupRun:
    """One incremental run in the caller's (owner) transaction; the caller holds the job's advisory lock."""
    low = int(await session.scalar(text(WATERMARK)) or 0)
    high = int(await session.scalar(text(SNAPSHOT_XMIN)) or 0)
    if high <= low:
        return RollupRun(minutes=0, hours=0)
    await session.execute(text(TOUCHED_MINUTES), {'low': low, 'high': high})
    await session.execute(text('ANALYZE touched_minutes'))
    minutes = (await session.execute(text(ROLL_MINUTES))).rowcount  # type: ignore[attr-defined]
    hours = (await session.execute(text(ROLL_HOURS))).rowcount  # type: ignore[attr-defined]
    await session.execute(text(MOVE_WATERMARK), {'high': high})
    return RollupRun(minutes=int(minutes), hours=int(hours))
