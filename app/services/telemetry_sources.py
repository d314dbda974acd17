"""Which stored resolution answers a time range: raw rows, the 1-minute or the 1-hour rollup.

Both backends expose the rollups under the same names and columns (`telemetry_1m`, `telemetry_1h`: tenant_id,
device_id, key_id, bucket, count, sum, min, max, last, last_ts), tables on plain PostgreSQL and guarded views of
continuous aggregates on TimescaleDB, so one query serves both.

A chart of span S with at most P points per series needs buckets of at least S / P:
- S ≤ P minutes: raw rows as they are when there are at most P; more: the 1-minute rollup when S ≥ 2 hours,
  else raw rows averaged into S / P buckets;
- S ≤ 6 P minutes (8.3 days at P = 2,000): 1-minute rollups, regrouped into buckets of whole minutes;
- longer: 1-hour rollups, regrouped into buckets of whole hours (a 30-day chart: 720 points per key).
So a query reads at most 6 P rollup rows per key up to 8 days, one per hour beyond (8,760 a year). (With the
1-minute rollup up to 33 days a 30-day chart has 1,964 points but reads 60 times more rows: about 200 ms
instead of 20 here, for a resolution no screen shows.) The rollups lag
the newest rows by the storage job's interval (15 s) and a run's length (up to about a minute under heavy ingest,
see `maintenance.PACED_ROLLUPS`); the newest part of a rollup-backed chart comes from
raw rows after the rollup's last timestamp for that key, so a long chart still ends at the newest reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

Source = Literal['raw', '1m', '1h']
ROLLUP_TABLE: dict[Source, str] = {'1m': 'telemetry_1m', '1h': 'telemetry_1h'}
SOURCE_S: dict[Source, int] = {'raw': 1, '1m': 60, '1h': 3600}
MIN_MINUTE_BUCKETS = 120  # a dense range of 2 hours or more reads the 1-minute rollup instead of raw rows
MINUTE_ROWS_PER_POINT = 6  # longest span read from the 1-minute rollup, in points' worth of minutes
ORIGIN = "timestamptz '2000-01-01 00:00:00+00'"


@dataclass(frozen=True)
class Plan:
    source: Source
    bucket_s: int  # 0: raw points, no bucketing


def plan(start: datetime, end: datetime, max_points: int) -> Plan:
    """The coarsest-enough source; its bucket is a whole number of the source's own buckets."""
    span_s = (end - start).total_seconds()
    needed = max(1, math.ceil(span_s / max_points))
    if span_s <= max_points * 60:
        return Plan('raw', needed)
    return rollup_plan('1m' if span_s <= max_points * 60 * MINUTE_ROWS_PER_POINT else '1h', span_s, max_points)


def dense_raw_plan(start: datetime, end: datetime, max_points: int) -> Plan:
    """When a short range holds more raw rows than points: the 1-minute rollup if its buckets are fine enough to
    draw (at least MIN_MINUTE_BUCKETS of them), else averages of raw rows."""
    span_s = (end - start).total_seconds()
    if span_s >= MIN_MINUTE_BUCKETS * 60:
        return rollup_plan('1m', span_s, max_points)
    return Plan('raw', max(1, math.ceil(span_s / max_points)))


def rollup_plan(source: Source, span_s: float, max_points: int) -> Plan:
    unit = SOURCE_S[source]
    # Rollup buckets sit on a fixed grid, so the range may cut one at each end: one bucket to spare.
    needed = max(1, math.ceil(span_s / max(1, max_points - 1)))
    return Plan(source, math.ceil(needed / unit) * unit)


def rollup_for_bucket(start: datetime, end: datetime, bucket_s: int) -> Source:
    """For an explicit bucket: a rollup when the range is long (over 33 hours) and the bucket a whole number of
    its buckets; raw rows otherwise (exact, and fresh to the last row)."""
    if (end - start).total_seconds() <= 2000 * 60:
        return 'raw'
    if bucket_s % 3600 == 0:
        return '1h'
    return '1m' if bucket_s % 60 == 0 else 'raw'


ROLLUP_MEASURES = {
    'avg': 'sum(r.sum) / nullif(sum(r.count), 0)', 'min': 'min(r.min)', 'max': 'max(r.max)',
    'last': '(array_agg(r.last ORDER BY r.last_ts DESC))[1]', 'count': 'sum(r.count)::double precision',
}
RAW_MEASURES = {
    'avg': 'avg(t.value)', 'min': 'min(t.value)', 'max': 'max(t.value)',
    'last': '(array_agg(t.value ORDER BY t.ts DESC))[1]', 'count': 'count(t.value)::double precision',
}


def rolled_sql(source: Source, function: str, *, origin: str = ORIGIN) -> str:
    """Buckets of :bucket seconds from a rollup. Parameters: :tenant, :device, :keys (key ids), :start, :end."""
    return f"""
SELECT r.key_id, date_bin(make_interval(secs => :bucket), r.bucket, {origin}) AS b, {ROLLUP_MEASURES[function]}
FROM {ROLLUP_TABLE[source]} r
WHERE r.tenant_id = :tenant AND r.device_id = :device AND r.key_id = ANY(CAST(:keys AS integer[]))
  AND r.bucket >= :start AND r.bucket < :end
GROUP BY 1, 2 ORDER BY 1, 2"""


def rolled_until_sql(source: Source) -> str:
    """Per key, the newest timestamp the rollup holds within the range."""
    return f"""
SELECT k.key_id, (SELECT r.last_ts FROM {ROLLUP_TABLE[source]} r
                  WHERE r.tenant_id = :tenant AND r.device_id = :device AND r.key_id = k.key_id
                    AND r.bucket >= :start AND r.bucket < :end ORDER BY r.bucket DESC LIMIT 1)
FROM unnest(CAST(:keys AS integer[])) AS k(key_id)"""


def tail_sql(function: str, *, origin: str = ORIGIN) -> str:
    """Buckets from raw rows of one key after :after (constant bounds: the planner prunes partitions)."""
    return f"""
SELECT t.key_id, date_bin(make_interval(secs => :bucket), t.ts, {origin}) AS b, {RAW_MEASURES[function]}
FROM telemetry t
WHERE t.tenant_id = :tenant AND t.device_id = :device AND t.key_id = :key AND t.ts > :after AND t.ts < :end
  AND t.value IS NOT NULL
GROUP BY 1, 2 ORDER BY 1, 2"""
