"""The storage job: partitions ahead, rollups, retention; one instance at a time (PostgreSQL advisory locks).

Detects the backend at start: TimescaleDB (migration 0007 found the extension: `gito_ts.telemetry` exists)
runs its own policies, so only the per-tenant retention trim and the refresh of late rows' aggregates run here;
plain PostgreSQL gets everything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, timedelta
from typing import Literal

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Database
from app.services.storage import timescale
from app.services.storage.backend_priority import backend_clock, lower_priority
from app.services.storage.lock_wait import SHORT_LOCK_WAIT, lock_not_available
from app.services.storage.native_sql import POINTS_TABLE, ROWS_TABLE
from app.services.storage.raw_retention import apply_raw_retention, ensure_raw_partitions
from app.services.storage.retention import (
    DEFAULT_RETENTION,
    Retention,
    RetentionRun,
    apply_native_retention,
    create_day_partitions,
    create_month_partitions,
    longest_retention,
    parked_days,
    tenant_retentions,
)
from app.services.storage.rollups import RollupRun, Steps, refresh_rollups, summarize_new_ranges

log = logging.getLogger(__name__)
ROLLUP_LOCK_ID = 0x6710_0020
HOUSEKEEPING_LOCK_ID = 0x6710_0021
DAYS_AHEAD = 7
# A rollup run pauses 4 times as long as each of its steps took: at most a fifth of a core at any moment. Where
# Gito, the broker and PostgreSQL share a machine, a run at full speed slowed ingest for as long as it ran, even at
# the lowest CPU priority (a busy loop at nice 19 did the same; the same loop at a fifth of a core did not):
# docs/ARCHITECTURE.md, "Rollups at a fifth of a core".
# Paced by the backend's own CPU time where it is a process here (by wall time elsewhere), and for its first minute
# only: on a saturated machine the reniced backend gets little CPU, and pauses scaled by wall time stretched a run
# past five minutes (rollups then stand that far behind; charts fill the gap from raw rows).
PACED_ROLLUPS = Steps(rest=4.0, paced_for_s=60.0)
Backend = Literal['timescaledb', 'native']
TRY_LOCK = 'SELECT pg_try_advisory_xact_lock(:id)'


async def detect_backend(db: Database) -> Backend:
    async with db.system() as session:
        found = await session.scalar(text(timescale.IN_USE))
    return 'timescaledb' if found else 'native'


class StorageMaintenance:
    def __init__(self, db: Database, *, rollup_every_s: float = 15.0, housekeeping_every_s: float = 600.0,
                 rollup_steps: Steps = PACED_ROLLUPS) -> None:
        self._db = db
        self._rollup_steps = rollup_steps
        self._rollup_every_s = rollup_every_s
        self._housekeeping_every_s = housekeeping_every_s
        self._policies: Retention | None = None  # TimescaleDB drop-after intervals last set by this process
        self.backend: Backend = 'native'
        self._task: asyncio.Task[None] | None = None
        self.low_priority_backend: int | None = None  # the last rollup run's reniced backend (`backend_priority.py`)
        self.rollup_runs = 0  # runs that rolled new rows up, and the seconds their steps took
        self.rollup_steps_s = {'summarize': 0.0, 'scan': 0.0, 'merge': 0.0}

    async def start(self, *, loop: bool = True) -> None:
        """Detect the backend; with `loop`, run the jobs in the background until `stop`."""
        self.backend = await detect_backend(self._db)
        log.info('storage backend', extra={'backend': self.backend})
        if loop:
            self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            self._task = None

    async def ensure_partitions(self, *, today: date | None = None, ahead: int = DAYS_AHEAD) -> list[date]:
        """Daily partitions from yesterday to `ahead` days on, and for the days of rows parked in the default
        partition (within the longest retention); returns the days created of telemetry (on plain PostgreSQL:
        TimescaleDB makes its own chunks). Also, on plain PostgreSQL, the same days of the 1-minute rollups and
        this month and the next of the 1-hour rollups; and on both backends the days of the raw archive."""
        today = today or datetime.now(UTC).date()
        days = {today + timedelta(days=offset) for offset in range(-1, ahead + 1)}
        created: list[date] = []
        rollups: list[date] = []
        async with self._db.system() as session:
            if not await session.scalar(text(TRY_LOCK), {'id': HOUSEKEEPING_LOCK_ID}):
                return []
            await session.execute(text(SHORT_LOCK_WAIT))  # see lock_wait.py: else given up, tried again
            if self.backend == 'native':
                longest = longest_retention(await tenant_retentions(session))
                parked = await parked_days(session, POINTS_TABLE, 'ts', within_days=longest.raw_days)
                created = await create_day_partitions(session, POINTS_TABLE, 'ts', days | set(parked))
                parked = await parked_days(session, ROWS_TABLE, 'ts', within_days=longest.raw_days)
                created = sorted({*created, *await create_day_partitions(session, ROWS_TABLE, 'ts',
                                                                         days | set(parked))})
                parked = await parked_days(session, 'telemetry_1m', 'bucket', within_days=longest.minute_days)
                rollups = await create_day_partitions(session, 'telemetry_1m', 'bucket', days | set(parked))
                next_month = (today.replace(day=1) + timedelta(days=32)).replace(day=1)
                parked = await parked_days(session, 'telemetry_1h', 'bucket', within_days=longest.hour_days)
                rollups += await create_month_partitions(session, 'telemetry_1h', 'bucket',
                                                         {today, next_month, *parked})
            raw_created = await ensure_raw_partitions(session, sorted(days))
        if created or rollups or raw_created:
            log.info('partitions created', extra={'telemetry': [d.isoformat() for d in created],
                                                   'rollups': [d.isoformat() for d in rollups],
                                                   'raw_archive': [d.isoformat() for d in raw_created]})
        return created

    async def refresh_rollups(self) -> RollupRun:
        if self.backend != 'native':
            return RollupRun(minutes=0, hours=0)  # continuous aggregates refresh themselves
        async with self._db.owner.connect() as connection:
            self.low_priority_backend = await lower_priority(connection)
            clock = backend_clock(self.low_priority_backend)
            try:
                started = clock()
                await summarize_new_ranges(connection)  # what came since the last run's end: its scan reads no more
                summarized_s = clock() - started
                await asyncio.sleep(self._rollup_steps.rest * summarized_s)
                async with AsyncSession(connection, expire_on_commit=False) as session, session.begin():
                    if not await session.scalar(text(TRY_LOCK), {'id': ROLLUP_LOCK_ID}):
                        return RollupRun(minutes=0, hours=0)
                    run = await refresh_rollups(session, self._rollup_steps, clock)
                started = clock()
                await summarize_new_ranges(connection)  # what came during the run (paced: most of its length)
                summarized_s += clock() - started
                if run.minutes:
                    self.rollup_runs += 1
                    for step, seconds in zip(('summarize', 'scan', 'merge'), (summarized_s, *run.steps_s),
                                             strict=True):
                        self.rollup_steps_s[step] += seconds
                return run
            finally:
                if self.low_priority_backend is not None:
                    await connection.invalidate()  # its backend ends: nothing else is served at that priority

    async def refresh_late_aggregates(self, *, shortest_raw_days: int | None = None) -> int:
        """TimescaleDB: late rows into the continuous aggregates (`timescale.late_refresh_statements`); returns
        the refreshes run. `shortest_raw_days`: the shortest raw retention of any tenant (read when None)."""
        if self.backend != 'timescaledb':
            return 0
        if shortest_raw_days is None:
            async with self._db.system() as session:
                retentions = await tenant_retentions(session)
            shortest_raw_days = min((r.raw_days for r in retentions.values()), default=DEFAULT_RETENTION.raw_days)
        statements = timescale.late_refresh_statements(shortest_raw_days=shortest_raw_days)
        async with self._db.owner.connect() as connection:
            connection = await connection.execution_options(isolation_level='AUTOCOMMIT')  # CALL refuses a transaction
            for statement in statements:
                await connection.execute(text(statement))
        return len(statements)

    async def apply_retention(self, *, now: datetime | None = None) -> RetentionRun:
        now = now or datetime.now(UTC)
        policies = self._policies
        async with self._db.system() as session:
            if not await session.scalar(text(TRY_LOCK), {'id': HOUSEKEEPING_LOCK_ID}):
                return RetentionRun(dropped_partitions=(), deleted_rows=0)
            await session.execute(text(SHORT_LOCK_WAIT))  # see lock_wait.py: else given up, tried again
            if self.backend == 'native':
                run = await apply_native_retention(session, now=now)
            else:
                run, policies = await timescale_retention(session, policies)
            raw = await apply_raw_retention(session, now=now)
        self._policies = policies  # committed
        run = RetentionRun(dropped_partitions=run.dropped_partitions + raw.dropped_partitions,
                           deleted_rows=run.deleted_rows + raw.deleted_rows)
        if run.dropped_partitions or run.deleted_rows:
            log.info('retention applied', extra={'dropped': list(run.dropped_partitions), 'deleted': run.deleted_rows})
        return run

    async def _loop(self) -> None:
        housekept = 0.0
        while True:
            if time.monotonic() - housekept >= self._housekeeping_every_s and await self._guarded(self._housekeeping):
                housekept = time.monotonic()
            await self._guarded(self.refresh_rollups)
            await asyncio.sleep(self._rollup_every_s)

    async def _housekeeping(self) -> None:
        await self.ensure_partitions()
        await self.apply_retention()
        await self.refresh_late_aggregates()

    async def _guarded(self, job: Callable[[], Awaitable[object]]) -> bool:
        """Run `job`; False, logged, when it failed (it is tried again at the next tick)."""
        try:
            await job()
        except DBAPIError as error:
            if not lock_not_available(error):
                log.exception('storage maintenance failed')
            else:
                log.warning('storage housekeeping postponed: a partitioned table is in use',
                            extra={'retry_s': self._rollup_every_s})
            return False
        except Exception:
            log.exception('storage maintenance failed')
            return False
        return True


async def set_timescale_policies(session: AsyncSession, longest: Retention) -> None:
    for statement in timescale.retention_statements(raw_days=longest.raw_days, minute_days=longest.minute_days,
                                                    hour_days=longest.hour_days):
        await session.execute(text(statement))


async def lengthen_timescale_policies(db: Database) -> None:
    """TimescaleDB's own retention jobs drop chunks past the policies' horizon whenever they run: after a tenant
    keeps its data longer, the policies must follow at once, not at the next housekeeping (up to ten minutes in
    which a job would drop what the tenant just asked to keep). Shorter retentions wait for housekeeping."""
    async with db.system() as session:
        await session.execute(text('SELECT pg_advisory_xact_lock(:id)'), {'id': HOUSEKEEPING_LOCK_ID})
        await set_timescale_policies(session, longest_retention(await tenant_retentions(session)))


async def materialized_aggregates(session: AsyncSession) -> dict[str, str]:
    """Each continuous aggregate's materialization hypertable (TimescaleDB)."""
    return dict((await session.execute(text(timescale.MATERIALIZATION_TABLES))).all())


async def timescale_retention(session: AsyncSession, applied: Retention | None) -> tuple[RetentionRun, Retention]:
    """Policies at the longest retentions (replaced only when they change), then per-tenant trims."""
    retentions = await tenant_retentions(session)
    longest = longest_retention(retentions)
    if longest != applied:
        await set_timescale_policies(session, longest)
    materialized = await materialized_aggregates(session)
    deleted = 0
    for tenant_id, retention in retentions.items():
        for statement in timescale.tenant_trim_statements(materialized):
            result = await session.execute(text(statement), {
                'tenant': tenant_id, 'raw': retention.raw_days, 'minute': retention.minute_days,
                'hour': retention.hour_days})
            deleted += int(result.rowcount)  # type: ignore[attr-defined]
    return RetentionRun(dropped_partitions=(), deleted_rows=deleted), longest
