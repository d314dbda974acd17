"""How far behind the database's device state stands: each ingest instance says so in `ingest_instances`.

`last_seen`, the device counters and latest values are written collapsed: every second at light load, but when a
flush of many devices is slow, only every ten times as long as it takes (`latest.LatestBuffer.interval_elapsed`):
tens of seconds for tens of thousands of devices. Jobs that judge silence from them (the presence sweep, no-data
rules) would take news still held in memory for silence and turn a talking device offline, or raise no-data for
it. So every instance reports, every couple of seconds, the time up to which everything it received is written
(`StateFlush.flushed_through`), and those jobs judge silence `STATE_LAG_S` seconds later than they otherwise would:
a device goes offline as many seconds late as the state is behind, never while its news is unwritten.

An instance counts while the connection it reports on is open (`backend_pid` in `pg_stat_activity`): a process
killed with -9 stops counting at once instead of holding every other instance's sweeps back. After a restart of
the server, the instances it cut off count for a grace period (`RESTART_GRACE_S`) until they report again. While the
broker may be holding messages back (Gito's link down, or reading paused by backpressure), the time reported stands
no later than when that began (`broker_hold.py`): what Gito has not received yet is not silence either.

An outage ends that connection, and until the next round has reconnected and reported, PostgreSQL's lag leaves
this instance out while its writer still holds everything received meanwhile: the instance's own jobs that judge
silence wait for `current()` (a presence sweep run first thing after the database came back turned every device
talking through the outage offline).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import Callable
from datetime import datetime

import asyncpg

from app.services.periodic import PeriodicTask

log = logging.getLogger(__name__)

REPORT = """
INSERT INTO ingest_instances (id, backend_pid, flushed_through, updated_at)
VALUES ($1, pg_backend_pid(), $2, now())
ON CONFLICT (id) DO UPDATE SET backend_pid = EXCLUDED.backend_pid, flushed_through = EXCLUDED.flushed_through,
    updated_at = EXCLUDED.updated_at"""
# Rows of instances that are gone: kept a while (they say when an instance last reported), then deleted.
FORGET_GONE = """
DELETE FROM ingest_instances i
WHERE i.updated_at < now() - interval '1 day'
  AND NOT EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.pid = i.backend_pid)"""
# Seconds the device state stands behind now: as far as the instance furthest behind (0 with none running), at
# most STATE_LAG_MAX_S: an instance whose writer is stuck must not keep every device online everywhere forever.
STATE_LAG_MAX_S = 600
# A restart of the server ends every instance's connection at once; until an instance has reconnected and reported,
# its row would not count, and another instance's sweep would take the news it still holds for silence. So a row
# last updated before the server started (by at most STATE_LAG_MAX_S: its instance was alive then, cut off by the
# outage) counts with what it last reported for RESTART_GRACE_S after the start: ample for a live instance to
# report again (every 2 s); one that died meanwhile stops holding the others back then. A live backend must have
# started before the row's report, or the pid is another's (pids are reused, across a restart too).
RESTART_GRACE_S = 60
STATE_LAG_S = f"""
(SELECT least(coalesce(greatest(0, extract(epoch FROM now() - min(i.flushed_through))), 0), {STATE_LAG_MAX_S})::float8
 FROM ingest_instances i
 WHERE EXISTS (SELECT 1 FROM pg_stat_activity a
               WHERE a.pid = i.backend_pid AND (a.backend_start IS NULL OR a.backend_start <= i.updated_at))
    OR (i.updated_at BETWEEN pg_postmaster_start_time() - make_interval(secs => {STATE_LAG_MAX_S})
                         AND pg_postmaster_start_time()
        AND now() < pg_postmaster_start_time() + make_interval(secs => {RESTART_GRACE_S})))"""


class StateMark:
    """Reports `flushed_through()` for this process every `every_s` seconds on a connection of its own."""

    def __init__(self, dsn: str, flushed_through: Callable[[], datetime], *, every_s: float = 2.0) -> None:
        self.id = uuid.uuid4().hex
        self._dsn = dsn
        self._flushed_through = flushed_through
        self._connection: asyncpg.Connection | None = None
        self._failing = False
        self._reported = False  # the last round's report went through
        self._job = PeriodicTask(self.report, every_s=every_s, name='device state mark')

    def start(self) -> None:
        self._job.start()

    def current(self) -> bool:
        """This instance counts in `STATE_LAG_S` now: its last report went through on a connection still open (or
        it does not report at all: not ingesting, nothing of it to wait for)."""
        if not self._job.running:
            return True
        return self._reported and self._connection is not None and not self._connection.is_closed()

    async def stop(self) -> None:
        """No longer counted: the row goes with the connection."""
        await self._job.stop()
        if self._connection is not None:
            with contextlib.suppress(Exception):
                await self._connection.execute('DELETE FROM ingest_instances WHERE id = $1', self.id)
                await self._connection.close()
            self._connection = None

    async def report(self) -> None:
        try:
            if self._connection is None or self._connection.is_closed():
                self._connection = await asyncpg.connect(self._dsn, timeout=5)
                await self._connection.execute(FORGET_GONE)
            await self._connection.execute(REPORT, self.id, self._flushed_through())
            self._failing, self._reported = False, True
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:  # away: the next round reconnects
            if not self._failing:  # once per outage, not every round
                log.warning('could not report how far device state is written',
                            extra={'error': type(error).__name__})
            self._failing, self._reported = True, False
            if self._connection is not None:
                self._connection.terminate()
                self._connection = None
