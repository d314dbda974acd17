"""Window and no-data rules: evaluated every few seconds with SQL over stored telemetry, by one instance at a time.

The round runs under `pg_try_advisory_xact_lock`, so several instances never double-fire; the open alarms in the
database (not memory) say what is raised, so whichever instance holds the lock continues where another left off.
An alarm's count is the number of times its condition was found true anew: a stream rule's readings beyond the
limit, but for these rules one per raise — a later round that still finds the condition true only moves the
alarm's last-seen time and value on (silence for 3 hours is one event, not 1,080 of them).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Literal
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.db import Database
from app.ingest.state_mark import STATE_LAG_S
from app.models.rules import NoData, Rule, RulePublic, Window, describe
from app.services.alarms import AlarmService, Firing
from app.services.rules.evaluator import OPS
from app.services.rules.maintenance import MaintenanceService
from app.services.rules.service import to_public

log = logging.getLogger(__name__)
LOCK_ID = 0x6710_0004
SCHEDULED_TYPES = text("condition->>'type' IN ('window', 'no_data')")
DEVICES = text("""
SELECT id, name, last_seen FROM devices WHERE tenant_id = :tenant
  AND (:kind = 'all' OR (:kind = 'device' AND id = :device_id) OR (:kind = 'device_type' AND type = :device_type))""")
STATS = {'avg': 'avg(t.value)', 'min': 'min(t.value)', 'max': 'max(t.value)', 'stddev': 'stddev_samp(t.value)',
         'count': 'count(*)'}
KEY_LAST = text("""
SELECT l.device_id, l.ts FROM latest_values l JOIN telemetry_keys k ON k.id = l.key_id
WHERE l.tenant_id = :tenant AND k.tenant_id = :tenant AND k.name = :key AND l.device_id = ANY(:ids)""")
OPEN = text("SELECT device_id FROM alarms WHERE rule_id = :rule AND status <> 'cleared'")


def _window_sql(stat: str) -> str:
    return f"""
SELECT t.device_id, {STATS[stat]} FROM telemetry t JOIN telemetry_keys k ON k.id = t.key_id
WHERE t.tenant_id = :tenant AND k.tenant_id = :tenant AND k.name = :key AND t.device_id = ANY(:ids)
  AND t.ts > :since AND t.ts <= :now AND (:stat = 'count' OR t.value IS NOT NULL)
GROUP BY t.device_id"""


class ScheduledRules:
    def __init__(self, db: Database, alarms: AlarmService, maintenance: MaintenanceService, *,
                 every_s: float = 10.0, clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 state_current: Callable[[], bool] = lambda: True) -> None:
        """`state_current`: as for the presence sweep (`StateMark.current`): no-data rules wait for it."""
        self._db = db
        self._state_current = state_current
        self._alarms = alarms
        self._maintenance = maintenance
        self._every_s = every_s
        self._clock = clock
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:
                log.exception('scheduled rule round failed')
            await asyncio.sleep(self._every_s)

    async def run_once(self) -> int:
        """One round over every tenant; the number of alarm changes, or -1 when another instance holds the lock."""
        now = self._clock()
        changes = 0
        async with self._db.system() as session:
            if not await session.scalar(text('SELECT pg_try_advisory_xact_lock(:id)'), {'id': LOCK_ID}):
                return -1
            statement = select(Rule).where(col(Rule.enabled), SCHEDULED_TYPES)
            rules = [to_public(rule) for rule in await session.scalars(statement)]
            for rule in rules:
                firings = await self._rule(session, rule, now)
                if firings:
                    changes += len(await self._alarms.apply(rule.tenant_id, firings))
        return changes

    async def _rule(self, session: AsyncSession, rule: RulePublic, now: datetime) -> list[Firing]:
        condition = rule.condition
        assert isinstance(condition, Window | NoData)
        scope = rule.scope
        devices = {row.id: (row.name, row.last_seen) for row in await session.execute(DEVICES, {
            'tenant': rule.tenant_id, 'kind': scope.kind, 'device_id': scope.device_id,
            'device_type': scope.device_type})}
        if not devices:
            return []
        ids = list(devices)
        params = {'tenant': rule.tenant_id, 'ids': ids, 'now': now}
        truths: dict[UUID, tuple[bool, float | None]] = {}
        if isinstance(condition, Window):
            rows = await session.execute(text(_window_sql(condition.stat)), {
                **params, 'key': condition.key, 'stat': condition.stat,
                'since': now - timedelta(minutes=condition.minutes)})
            stats = {device_id: value for device_id, value in rows}
            for device_id in ids:
                value = stats.get(device_id, 0 if condition.stat == 'count' else None)
                if value is not None:
                    truths[device_id] = (OPS[condition.op](float(value), condition.value), float(value))
        else:  # judged where last-seen times and latest values are written up to (`app/ingest/state_mark.py`)
            if not self._state_current():
                return []  # held this round: neither raised nor cleared
            written = now - timedelta(seconds=float(await session.scalar(text(f'SELECT {STATE_LAG_S}')) or 0))
            last = {device_id: seen for device_id, (_, seen) in devices.items()}
            if condition.key:
                last = {device_id: ts for device_id, ts in await session.execute(KEY_LAST, {
                    **params, 'key': condition.key})}
            for device_id in ids:
                seen = last.get(device_id)
                if seen is not None:
                    truths[device_id] = (written - seen >= timedelta(minutes=condition.minutes), None)
        open_now = {device_id for (device_id,) in await session.execute(OPEN, {'rule': rule.id})}
        windows = await self._maintenance.for_engine(rule.tenant_id)
        firings = []
        for device_id, (truth, value) in truths.items():
            quiet = not rule.options.active_at(now) or any(w.covers(device_id, now) for w in windows)
            action: Literal['raise', 'clear', 'hold']
            if truth and device_id in open_now:
                action = 'hold'  # the same condition, seen again by the next round: not a new raise
            elif truth and not quiet:
                action = 'raise'
            elif not truth and device_id in open_now and rule.options.auto_clear:
                action = 'clear'
            else:
                continue
            firings.append(Firing(
                rule_id=rule.id, rule_name=rule.name, severity=rule.severity, threshold=describe(condition),
                device_id=device_id, device_name=devices[device_id][0], action=action, at=now,
                key=condition.key, value=value))
        return firings
