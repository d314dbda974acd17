"""Backtest: how many alarms an unsaved rule would have raised per device in the last 24 h and 7 days.

Stored readings are replayed, per device in time order, through the same evaluator and tracker as the live
engine (debounce, auto-clear, cooldown, schedule and maintenance windows included). Work is capped: at most
`max_readings` readings are replayed, and the answer says when the cap cut the replay short. Window and
no-data rules are replayed as the scheduler evaluates them (`backtest_scheduled.py`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from itertools import groupby
from typing import cast
from uuid import UUID

from pydantic import BaseModel
from sqlalchemy import text

from app.db import Database
from app.models.maintenance import MaintenancePublic
from app.models.rules import NoData, RuleCreate, RulePublic, Scalar, Window
from app.models.schemas import Principal
from app.services.errors import InvalidInput
from app.services.permissions import Permission, require
from app.services.rules.backtest_scheduled import scheduled_raises, silence_truths, window_truths
from app.services.rules.engine import HISTORY_POINTS, keep_recent, may_raise
from app.services.rules.evaluator import Tracker
from app.services.rules.index import STREAM, CompiledRule, rate_keys
from app.services.rules.maintenance import MaintenanceService

DEVICES = text("""
SELECT id, name FROM devices WHERE tenant_id = :tenant
  AND (:kind = 'all' OR (:kind = 'device' AND id = :device_id) OR (:kind = 'device_type' AND type = :device_type))
ORDER BY lower(name) LIMIT 1000""")
READINGS = text("""
SELECT t.device_id, t.ts, k.name, t.value, t.text_value, t.bool_value
FROM telemetry t JOIN telemetry_keys k ON k.id = t.key_id
WHERE t.tenant_id = :tenant AND k.tenant_id = :tenant AND t.device_id = ANY(:ids)
  AND (CAST(:keys AS text[]) IS NULL OR k.name = ANY(:keys))
  AND t.ts > :since AND t.ts <= :now
ORDER BY t.device_id, t.ts
LIMIT :cap""")


Row = tuple[UUID, datetime, str, float | None, str | None, bool | None]  # device, ts, key, value, text, bool


class BacktestDevice(BaseModel):
    device_id: UUID
    device_name: str
    last_24h: int
    last_7d: int


class BacktestResult(BaseModel):
    devices: list[BacktestDevice]  # devices that would have had at least one alarm
    total_24h: int
    total_7d: int
    readings: int
    truncated: bool


class Backtester:
    def __init__(self, db: Database, maintenance: MaintenanceService, *, max_readings: int = 200_000,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._db = db
        self._maintenance = maintenance
        self._max = max_readings
        self._clock = clock

    async def run(self, principal: Principal, data: RuleCreate) -> BacktestResult:
        require(principal, Permission.VIEW)
        now = self._clock()
        if isinstance(data.condition, Window | NoData):
            return await self._scheduled(principal, data, data.condition, now)
        if not isinstance(data.condition, STREAM):
            raise InvalidInput('This kind of rule cannot be backtested.', field='condition')
        rule = CompiledRule.of(RulePublic(**data.model_dump(), id=UUID(int=0), tenant_id=principal.tenant_id,
                                          created_at=now, updated_at=now))
        windows = await self._maintenance.for_engine(principal.tenant_id, since=now - timedelta(days=7))
        devices, rows, truncated = await self._readings(principal, data, sorted(rule.keys), now - timedelta(days=7),
                                                        now)
        raises = {device_id: _replay(rule, device_id, list(device_rows), windows)
                  for device_id, device_rows in groupby(rows, key=lambda row: row[0])}
        return _result(devices, raises, now, readings=len(rows), truncated=truncated)

    async def _scheduled(self, principal: Principal, data: RuleCreate, condition: Window | NoData,
                         now: datetime) -> BacktestResult:
        """Window and no-data rules: see backtest_scheduled.py."""
        since = now - timedelta(days=7)
        windows = await self._maintenance.for_engine(principal.tenant_id, since=since)
        keys = [condition.key] if condition.key else None  # no-data without a key: any reading of the device
        devices, rows, truncated = await self._readings(principal, data, keys, since - timedelta(
            minutes=condition.minutes), now)
        raises = {}
        for device_id, device_rows in groupby(rows, key=lambda row: row[0]):
            points = [(row[1], row[3]) for row in device_rows]
            truths = window_truths(condition, points, now) if isinstance(condition, Window) else \
                silence_truths(condition, sorted({at for at, _ in points}), now)
            raises[device_id] = scheduled_raises(truths, device_id=device_id, options=data.options, windows=windows,
                                                 since=since)
        return _result(devices, raises, now, readings=len(rows), truncated=truncated)

    async def _readings(self, principal: Principal, data: RuleCreate, keys: list[str] | None, since: datetime,
                        now: datetime) -> tuple[dict[UUID, str], list[Row], bool]:
        async with self._db.tenant(principal.tenant_id) as session:
            devices = {row.id: row.name for row in await session.execute(DEVICES, {
                'tenant': principal.tenant_id, 'kind': data.scope.kind, 'device_id': data.scope.device_id,
                'device_type': data.scope.device_type})}
            rows = [cast(Row, tuple(row)) for row in await session.execute(READINGS, {
                'tenant': principal.tenant_id, 'keys': keys, 'ids': list(devices), 'since': since, 'now': now,
                'cap': self._max + 1})]
        return devices, rows[:self._max], len(rows) > self._max


def _result(devices: dict[UUID, str], raises: dict[UUID, list[datetime]], now: datetime, *, readings: int,
            truncated: bool) -> BacktestResult:
    day_ago = now - timedelta(days=1)
    found = [BacktestDevice(device_id=device_id, device_name=devices[device_id],
                            last_24h=sum(at > day_ago for at in times), last_7d=len(times))
             for device_id, times in raises.items() if times]
    found.sort(key=lambda d: (-d.last_7d, d.device_name.lower()))
    return BacktestResult(devices=found, total_24h=sum(d.last_24h for d in found),
                          total_7d=sum(d.last_7d for d in found), readings=readings, truncated=truncated)


def _replay(rule: CompiledRule, device_id: UUID, rows: list[Row],
            windows: list[MaintenancePublic]) -> list[datetime]:
    tracker = Tracker()
    values: dict[str, Scalar] = {}
    history: dict[str, deque[tuple[datetime, float]]] = {}
    wanted_history = rate_keys(rule.condition)
    raises: list[datetime] = []
    for at, same_time in groupby(rows, key=lambda row: row[1]):
        assert isinstance(at, datetime)
        for _device, _ts, key, number, text_value, bool_value in same_time:
            value = number if number is not None else bool_value if bool_value is not None else text_value
            if isinstance(value, float | bool | str) and isinstance(key, str):
                values[key] = value
                if key in wanted_history and isinstance(number, float):
                    keep_recent(history.setdefault(key, deque(maxlen=HISTORY_POINTS)), at, number)
        truth = rule.test(values, tracker.open, history)
        if truth is None:
            continue
        if truth and not tracker.open and not may_raise(rule, device_id, at, windows):
            tracker.true_since = None
            continue
        if tracker.step(truth, at, rule.options) == 'raise':
            raises.append(at)
    return raises
