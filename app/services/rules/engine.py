"""The stream rule engine: evaluates every committed batch against the tenant's enabled rules.

Per (rule, device) a `Tracker` remembers debounce, hysteresis, auto-clear and cooldown state; the last known
value of each key of a device fills in conditions over several keys. The index of a tenant reloads when one of
its rules changes (locally, or in another process through PostgreSQL NOTIFY); device names and types are cached
and dropped on `device_changed`; a person clearing an alarm resets its tracker (via `alarm_changed`).
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import text

from app.bus import EventBus, TelemetryStored
from app.db import Database
from app.models.maintenance import MaintenancePublic
from app.models.rules import Scalar
from app.services.alarms import AlarmService, Firing
from app.services.rules.evaluator import Tracker, evaluate
from app.services.rules.index import CompiledRule, TenantRules
from app.services.rules.maintenance import MaintenanceService
from app.services.rules.service import RuleService

log = logging.getLogger(__name__)
HISTORY_POINTS = 1000  # per device and key, for rate-of-change rules
HISTORY_S = 3600
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC)


class RuleEngine:
    def __init__(self, db: Database, bus: EventBus, rules: RuleService, alarms: AlarmService,
                 maintenance: MaintenanceService) -> None:
        self._db = db
        self._rules = rules
        self._maintenance = maintenance
        self._alarms = alarms
        self._index: dict[UUID, TenantRules] = {}
        self._devices: dict[UUID, tuple[str, str]] = {}  # id → (type, name)
        self._values: dict[UUID, dict[str, Scalar]] = defaultdict(dict)
        self._history: dict[UUID, dict[str, deque[tuple[datetime, float]]]] = defaultdict(dict)
        self._trackers: dict[tuple[UUID, UUID], Tracker] = {}
        self._device_changes = bus.device_changed.subscribe(maxsize=10_000)
        self._alarm_changes = bus.alarm_changed.subscribe(
            maxsize=10_000, where=lambda event: event.transition == 'cleared')
        rules.on_changed(self.invalidate)
        maintenance.on_changed(self.invalidate)

    def invalidate(self, tenant_id: UUID) -> None:
        self._index.pop(tenant_id, None)

    def invalidate_all(self) -> None:
        """Reload every tenant's rules lazily: after the change listener reconnects, changes may have been missed."""
        self._index.clear()

    def close(self) -> None:
        self._device_changes.close()
        self._alarm_changes.close()

    async def on_committed(self, batch: list[TelemetryStored]) -> None:
        """The batch writer's commit listener."""
        self._catch_up()
        by_tenant: dict[UUID, list[TelemetryStored]] = defaultdict(list)
        for stored in batch:
            by_tenant[stored.tenant_id].append(stored)
        for tenant_id, events in by_tenant.items():
            try:
                firings = await self.evaluate(tenant_id, events)
                if firings:
                    await self._alarms.apply(tenant_id, firings)
            except Exception:
                log.exception('rule evaluation failed', extra={'tenant_id': str(tenant_id)})

    def _catch_up(self) -> None:
        for change in self._device_changes.drain():
            self._devices.pop(change.device_id, None)
            if change.change == 'deleted':
                self._values.pop(change.device_id, None)
                self._history.pop(change.device_id, None)
        for cleared in self._alarm_changes.drain():
            tracker = self._trackers.get((cleared.rule_id, cleared.device_id))
            if tracker is not None and tracker.open:
                tracker.open, tracker.cleared_at = False, utcnow()

    async def evaluate(self, tenant_id: UUID, events: list[TelemetryStored]) -> list[Firing]:
        index = await self._tenant(tenant_id)
        if index.empty:
            for stored in events:
                self._remember(stored)
            return []
        await self._ensure_devices(tenant_id, [stored.device_id for stored in events])
        firings: list[Firing] = []
        for stored in events:
            device_type, device_name = self._devices.get(stored.device_id, (None, ''))
            rules = index.for_device(stored.device_id, device_type)
            if not rules:
                self._remember(stored)
                continue
            firings += self._run(rules, stored, device_name, index)
        return firings

    def _remember(self, stored: TelemetryStored) -> None:
        values = self._values[stored.device_id]
        for message in stored.messages:  # not `readings`: that would build a tuple per reading for nothing
            for key, value in message.readings:
                if isinstance(value, float | int | str | bool):
                    values[key] = value

    def _run(self, rules: list[CompiledRule], stored: TelemetryStored, device_name: str,
             index: TenantRules) -> list[Firing]:
        values = self._values[stored.device_id]
        history = self._history[stored.device_id]
        last: dict[UUID, Firing] = {}
        out: list[Firing] = []
        for reading in sorted(stored.readings, key=lambda r: r.ts):
            if not isinstance(reading.value, float | int | str | bool):
                continue
            values[reading.key] = reading.value
            if reading.key in index.rate_keys and isinstance(reading.value, int | float):
                keep_recent(history.setdefault(reading.key, deque(maxlen=HISTORY_POINTS)), reading.ts, reading.value)
            for rule in rules:
                if reading.key not in rule.keys:
                    continue
                tracker = self._trackers.setdefault((rule.id, stored.device_id), Tracker())
                truth = evaluate(rule.condition, values, active=tracker.open, history=history)
                if truth is None:
                    continue
                if truth and not tracker.open and not may_raise(rule, stored.device_id, reading.ts, index.maintenance):
                    tracker.true_since = None  # outside the schedule or in maintenance: nothing builds up
                    continue
                decision = tracker.step(truth, reading.ts, rule.options)
                if decision is None:
                    continue
                firing = Firing(rule_id=rule.id, rule_name=rule.name, severity=rule.severity,
                                threshold=rule.description, device_id=stored.device_id, device_name=device_name,
                                action='clear' if decision == 'clear' else 'raise', at=reading.ts,
                                key=reading.key, value=reading.value)
                if decision == 'repeat' and rule.id in last and last[rule.id].action == 'raise':
                    out[out.index(last[rule.id])] = firing  # one repeat per batch: the latest value
                else:
                    out.append(firing)
                last[rule.id] = firing
        return out

    async def _tenant(self, tenant_id: UUID) -> TenantRules:
        index = self._index.get(tenant_id)
        if index is not None:
            return index
        rules = await self._rules.list_for_engine(tenant_id)
        index = TenantRules.build(rules)
        index.maintenance = await self._maintenance.for_engine(tenant_id)
        live = {rule.id for rule in rules if rule.enabled}
        async with self._db.tenant(tenant_id) as session:
            rows = await session.execute(text(
                "SELECT rule_id, device_id FROM alarms WHERE tenant_id = :t AND status <> 'cleared'"),
                {'t': tenant_id})
            open_now = {(rule_id, device_id) for rule_id, device_id in rows}
        disabled = {rule.id for rule in rules} - live
        for key in [key for key in self._trackers if key[0] in disabled]:
            del self._trackers[key]
        for key in open_now:
            self._trackers.setdefault(key, Tracker()).open = True
        self._index[tenant_id] = index
        return index

    async def _ensure_devices(self, tenant_id: UUID, device_ids: list[UUID]) -> None:
        missing = [device_id for device_id in device_ids if device_id not in self._devices]
        if not missing:
            return
        async with self._db.tenant(tenant_id) as session:
            rows = await session.execute(text('SELECT id, type, name FROM devices WHERE id = ANY(:ids)'),
                                         {'ids': missing})
            for device_id, device_type, name in rows:
                self._devices[device_id] = (device_type, name)


def may_raise(rule: CompiledRule, device_id: UUID, at: datetime, maintenance: list[MaintenancePublic]) -> bool:
    return rule.options.active_at(at) and not any(window.covers(device_id, at) for window in maintenance)


def keep_recent(points: deque[tuple[datetime, float]], at: datetime, value: float) -> None:
    if points and at < points[-1][0]:
        return  # out of order: the rate is computed over readings in time order
    points.append((at, float(value)))
    while points and at - points[0][0] > timedelta(seconds=HISTORY_S):
        points.popleft()
