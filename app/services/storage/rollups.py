"""1-minute and 1-hour rollups of the plain-PostgreSQL path, maintained incrementally from an insertion watermark.

Every telemetry row carries `ingest_xid`, the id of the transaction that inserted it (a column default: no
extra work in the writer, and a BRIN index that costs next to nothing because ids grow with insertion order).
A run reads the watermark W and the oldest transaction still running, X = txid_snapshot_xmin(snapshot): every
transaction below X has ended, so the rows with W ≤ ingest_xid < X are exactly the rows committed since the
last run — whatever their timestamps — and each committed row falls in exactly one such window. The run
aggregates just those rows per series (tenant, device, key) and minute, merges them into `telemetry_1m` (count and
sum added, min/max widened, `last` kept by timestamp), merges their hourly totals into `telemetry_1h` the same way,
and moves W to X, all in one transaction: a crash repeats a run, never skips or doubles one. Telemetry rows are
never updated, and duplicates are never inserted (`ON CONFLICT DO NOTHING`), so merging is exact; each run costs
one pass over the new rows only, however many rows their buckets already hold. The new rows are read in slices of
blocks and merged in slices of series, with pauses between them, so that a run never takes a whole core for long
(docs/ARCHITECTURE.md, "Rollups at a fifth of a core").

Lateness bound: none. A row arriving hours or months late is merged into its bucket when it commits (if that
bucket is older than the tenant's 1-minute or 1-hour retention, the next retention run deletes it again).
"""

from __future__ import annotations

import asyncio
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from app.services.storage.lock_wait import SHORT_LOCK_WAIT, lock_not_available
from app.services.storage.native_sql import POINTS_TABLE, RAW_TABLES, ROWS_TABLE

ORIGIN = "timestamptz '2000-01-01 00:00:00+00'"
WATERMARK = "SELECT xid, blocks FROM storage_watermarks WHERE name = 'rollups' FOR UPDATE"
SNAPSHOT_XMIN = 'SELECT txid_snapshot_xmin(txid_current_snapshot())'
# The new rows are aggregated per series and minute in parts, then the parts combined into `new_minutes` (all
# but `last`). Where the last run left a partition is known (its size in blocks then, kept with the watermark), the
# blocks added since are read in slices of `Steps.scan_blocks` by TID range, each a short statement; the blocks
# before them are read by the `ingest_xid` BRIN index (rows of transactions still running at the last run's
# snapshot, or written into free space), which finds a few ranges there. A partition whose size is not known (made
# since the last run: days are made ahead; all of them at the first run after the upgrade that keeps sizes) is
# read by the index alone, in one statement. (Slices of transaction ids were tried first: their span could only be
# guessed, and after a stretch of ids without rows a doubled span met a dense stretch and one statement read
# millions of rows. Blocks are exact.)
# Both raw tables are read: a part of `telemetry_points` is a key's series (`key_id` NULL), one of `telemetry_rows`
# a device's series and a key of its rows (unnested).
NEW_PARTS = """
CREATE TEMP TABLE new_parts (
    series_id integer, key_id integer, bucket timestamptz, count bigint, sum double precision,
    min double precision, max double precision, last_ts timestamptz
) ON COMMIT DROP"""
# Every partition held (as the scan of the parent used to hold them) before their sizes are read: a partition that
# retention drops between the two would fail the run.
HOLD_PARTITIONS = f'LOCK TABLE {", ".join(RAW_TABLES)} IN ACCESS SHARE MODE'
PARTITION_BLOCKS = f"""
SELECT h.inhrelid::regclass::text, h.inhparent::regclass::text,
       pg_relation_size(h.inhrelid) / current_setting('block_size')::integer
FROM pg_inherits h WHERE h.inhparent IN ({", ".join(f"'{table}'::regclass" for table in RAW_TABLES)})"""
PART = {
    POINTS_TABLE: f"""
INSERT INTO new_parts
SELECT t.series_id, NULL, date_bin(interval '1 minute', t.ts, {ORIGIN}), count(*), sum(t.value), min(t.value),
       max(t.value), max(t.ts)
FROM {{partition}} t
WHERE t.ingest_xid >= :low AND t.ingest_xid < :high AND t.value IS NOT NULL{{blocks}}
GROUP BY 1, 3""",
    ROWS_TABLE: f"""
INSERT INTO new_parts
SELECT t.series_id, u.key_id, date_bin(interval '1 minute', t.ts, {ORIGIN}), count(*), sum(u.value), min(u.value),
       max(u.value), max(t.ts)
FROM {{partition}} t CROSS JOIN LATERAL unnest(t.key_ids, t.vals) AS u(key_id, value)
WHERE t.ingest_xid >= :low AND t.ingest_xid < :high{{blocks}}
GROUP BY 1, 2, 3""",
}
# Scans that must go by the index and those that must go by TID range (without statistics on a partition the
# planner could pick a TID range over the blocks before a slice, or a bitmap over a slice's).
BY_INDEX = "SELECT set_config('enable_tidscan', 'off', true), set_config('enable_bitmapscan', 'on', true)"
BY_BLOCKS = "SELECT set_config('enable_tidscan', 'on', true), set_config('enable_bitmapscan', 'off', true)"
NEW_MINUTES = """
CREATE TEMP TABLE new_minutes ON COMMIT DROP AS
SELECT series_id, key_id, bucket, sum(count)::bigint AS count, sum(sum) AS sum, min(min) AS min, max(max) AS max,
       max(last_ts) AS last_ts
FROM new_parts GROUP BY 1, 2, 3"""
GROUPS = 'SELECT count(*) FROM new_minutes'
# All of a run in its own (reniced) backend: parallel workers would be other processes at normal priority. Memory
# for the aggregation of a busy interval (40k series: ~20 MB) so that it does not spill to disk. No JIT: a busy
# interval's estimates pass its thresholds, and compiling the three statements took ~0.5 s of a 1.9 s run (15 s of
# 40,000 series at 4 rows/s; 1.35 s without) for plans that run once.
RUN_SETTINGS = ("SELECT set_config('max_parallel_workers_per_gather', '0', true), "
                "set_config('work_mem', '64MB', true), set_config('jit', 'off', true)")
MERGE = """
ON CONFLICT (tenant_id, device_id, key_id, bucket) DO UPDATE SET
    count = {table}.count + EXCLUDED.count, sum = {table}.sum + EXCLUDED.sum,
    min = least({table}.min, EXCLUDED.min), max = greatest({table}.max, EXCLUDED.max),
    last = CASE WHEN EXCLUDED.last_ts > {table}.last_ts THEN EXCLUDED.last ELSE {table}.last END,
    last_ts = greatest({table}.last_ts, EXCLUDED.last_ts)"""
# One slice of the new minutes (the series with `series_id % :slices = :slice`) merged into both rollups. `last` is
# looked up by primary key once per bucket (the row at the bucket's newest timestamp is unique) rather than
# aggregated with `array_agg(value ORDER BY ts DESC)`: that sorted every new row (on disk past work_mem) and was
# 60% of a run's time; the scalar subquery is always a per-row index probe, whatever the table's size. A key's
# bucket may have parts from both tables (a number stored in `telemetry_points` beside the device's rows): they are
# combined first, since one INSERT … ON CONFLICT may not update a row twice (in two slices they merge as two runs do).
ROLL_SLICE = f"""
WITH parts AS (
    SELECT s.tenant_id, s.device_id, coalesce(n.key_id, s.key_id) AS key_id, n.bucket, n.count, n.sum, n.min,
           n.max, n.last_ts,
           CASE WHEN n.key_id IS NULL
                THEN (SELECT l.value FROM {POINTS_TABLE} l WHERE l.series_id = n.series_id AND l.ts = n.last_ts)
                ELSE (SELECT l.vals[array_position(l.key_ids, n.key_id)] FROM {ROWS_TABLE} l
                      WHERE l.series_id = n.series_id AND l.ts = n.last_ts) END AS last
    FROM new_minutes n JOIN telemetry_series s ON s.id = n.series_id
    WHERE n.series_id % :slices = :slice
), m AS (
    SELECT tenant_id, device_id, key_id, bucket, sum(count)::bigint AS count, sum(sum) AS sum, min(min) AS min,
           max(max) AS max, max(last_ts) AS last_ts, (array_agg(last ORDER BY last_ts DESC))[1] AS last
    FROM parts GROUP BY 1, 2, 3, 4
), minutes AS (
    INSERT INTO telemetry_1m (tenant_id, device_id, key_id, bucket, count, sum, min, max, last, last_ts)
    SELECT tenant_id, device_id, key_id, bucket, count, sum, min, max, last, last_ts FROM m{MERGE.format(
        table='telemetry_1m')}
    RETURNING 1
), hours AS (
    INSERT INTO telemetry_1h (tenant_id, device_id, key_id, bucket, count, sum, min, max, last, last_ts)
    SELECT tenant_id, device_id, key_id, date_bin(interval '1 hour', bucket, {ORIGIN}), sum(count)::bigint, sum(sum),
           min(min), max(max), (array_agg(last ORDER BY last_ts DESC))[1], max(last_ts)
    FROM m GROUP BY 1, 2, 3, 4{MERGE.format(table='telemetry_1h')}
    RETURNING 1
)
SELECT (SELECT count(*) FROM minutes), (SELECT count(*) FROM hours)"""
# A BRIN index summarizes page ranges only when told (VACUUM, or autovacuum with `autosummarize`): a range not
# summarized matches every scan, so without this the scan of the new rows read the whole of today's partition at
# every run (checked: a 3-transaction window of a 9.35M-row day, 79,160 pages read, 8.44M rows rechecked away,
# 885 ms). Summarizing reads each new range once, including the last, partly filled one; inserts then keep a
# summarized range's bounds up to date themselves.
SUMMARIZE_NEW_RANGES = f"""
SELECT coalesce(sum(brin_summarize_new_values(h.inhrelid)), 0) FROM pg_inherits h
WHERE h.inhparent IN ({", ".join(f"'{table}_ingest_xid_idx'::regclass" for table in RAW_TABLES)})"""
MOVE_WATERMARK = """
UPDATE storage_watermarks SET xid = :high, blocks = CAST(:blocks AS jsonb), updated_at = now() WHERE name = 'rollups'"""
SLICE_GROUPS = 4000  # minute buckets merged per statement: ~0.1 s of CPU here
SCAN_BLOCKS = 6000  # blocks of new rows read per statement: ~640k rows, ~0.3 s of CPU here


async def summarize_new_ranges(connection: AsyncConnection) -> int:
    """Summarize the page ranges of telemetry's `ingest_xid` index that are not yet (every partition's), in a short
    transaction of its own; returns how many. Skipped (0) when a partition is locked (a vacuum, DDL): the scan
    then reads more pages, it misses none."""
    try:
        async with connection.begin():
            await connection.execute(text(SHORT_LOCK_WAIT))
            return int(await connection.scalar(text(SUMMARIZE_NEW_RANGES)) or 0)
    except DBAPIError as error:
        if lock_not_available(error):
            return 0
        raise


@dataclass(frozen=True)
class Steps:
    """How a run divides its work (see the constants above) and how long it pauses after each step: `rest` times
    as long as the step took, by the run's clock, for the first `paced_for_s` seconds of the run (then no more:
    where the machine is saturated and the backend gets little CPU, pauses would stretch a run without end)."""

    rest: float = 0.0
    paced_for_s: float = math.inf
    slice_groups: int = SLICE_GROUPS
    scan_blocks: int = SCAN_BLOCKS


@dataclass(frozen=True)
class RollupRun:
    minutes: int
    hours: int
    steps_s: tuple[float, float] = field(default=(0.0, 0.0), compare=False)  # the new minutes, their merges


async def scan_new_rows(session: AsyncSession, low: int, high: int, steps: Steps, pace: Pace,
                        scanned: dict[str, int]) -> tuple[dict[str, int], float]:
    """`new_minutes` from the rows with `low <= ingest_xid < high`, in parts (see `NEW_PARTS`); returns each
    partition's size in blocks, read after the caller's snapshot (every row of the window lies below it), and the
    seconds the statements took by the run's clock."""
    await session.execute(text(NEW_PARTS))
    await session.execute(text(HOLD_PARTITIONS))
    parents: dict[str, str] = {}
    sizes: dict[str, int] = {}
    for name, parent, blocks in await session.execute(text(PARTITION_BLOCKS)):
        parents[str(name)], sizes[str(name)] = str(parent), int(blocks)
    window = {'low': low, 'high': high}
    await session.execute(text(BY_INDEX))
    slices: list[tuple[str, int, int]] = []
    for partition, size in sizes.items():
        start = min(scanned.get(partition, size), size)  # not known: all of it by the index, no slices
        before = f" AND t.ctid < '({start},0)'::tid" if start < size else ''
        await session.execute(text(PART[parents[partition]].format(partition=partition, blocks=before)), window)
        slices += [(partition, first, min(first + steps.scan_blocks, size))
                   for first in range(start, size, steps.scan_blocks)]
    spent = pace.took()
    if slices:
        await session.execute(text(BY_BLOCKS))
    for partition, first, end in slices:
        await pace.rest()
        blocks = f" AND t.ctid >= '({first},0)'::tid AND t.ctid < '({end},0)'::tid"
        await session.execute(text(PART[parents[partition]].format(partition=partition, blocks=blocks)), window)
        spent += pace.took()
    await pace.rest()
    await session.execute(text(NEW_MINUTES))
    spent += pace.took()
    for setting in ('enable_tidscan', 'enable_bitmapscan'):  # the merges are planned as the server would
        await session.execute(text(f'RESET {setting}'))
    return sizes, spent


async def refresh_rollups(session: AsyncSession, steps: Steps = Steps(),
                          clock: Callable[[], float] = time.perf_counter) -> RollupRun:
    """One incremental run in the caller's (owner) transaction; the caller holds the job's advisory lock.

    The new rows are read in slices of `steps.scan_blocks` blocks past where the last run left each partition
    (kept with the watermark; where unknown, in one statement), then merged in slices of about
    `steps.slice_groups` minute buckets, each step after a pause `steps.rest` times as long as the step before
    took by `clock` (the backend's CPU time where the caller can read it): a run then takes at most 1 / (1 + rest)
    of a core, not a whole core for seconds."""
    low, scanned = (await session.execute(text(WATERMARK))).one()
    if isinstance(scanned, str):  # a driver without a jsonb codec
        scanned = json.loads(scanned)
    high = int(await session.scalar(text(SNAPSHOT_XMIN)) or 0)
    if high <= low:
        return RollupRun(minutes=0, hours=0)
    await session.execute(text(RUN_SETTINGS))
    pace = Pace(steps, clock)
    sizes, scan_s = await scan_new_rows(session, low, high, steps, pace, scanned)
    slices = max(1, math.ceil(int(await session.scalar(text(GROUPS)) or 0) / steps.slice_groups))
    minutes = hours = 0
    merging_s = 0.0
    for index in range(slices):
        await pace.rest()
        rolled_minutes, rolled_hours = (await session.execute(
            text(ROLL_SLICE), {'slices': slices, 'slice': index})).one()
        minutes += int(rolled_minutes)
        hours += int(rolled_hours)
        merging_s += pace.took()
    await session.execute(text(MOVE_WATERMARK), {'high': high, 'blocks': json.dumps(sizes)})
    return RollupRun(minutes=minutes, hours=hours, steps_s=(scan_s, merging_s))


class Pace:
    """Between steps, a pause `rest` times as long as the step before took by `clock`, while the run is young."""

    def __init__(self, steps: Steps, clock: Callable[[], float]) -> None:
        self._rest = steps.rest
        self._until = time.monotonic() + steps.paced_for_s
        self._clock = clock
        self._started = clock()
        self._took = 0.0

    async def rest(self) -> None:
        if self._rest and self._took and time.monotonic() < self._until:
            await asyncio.sleep(self._rest * self._took)
        self._started = self._clock()

    def took(self) -> float:
        self._took = self._clock() - self._started
        return self._took
