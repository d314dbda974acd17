"""The stream rule engine: evaluates every committed batch against the tenant's enabled rules.

Per (rule, device) a `Tracker` remembers debounce, hysteresis, auto-clear and cooldown state; the last known
value of each key of a device fills in conditions over several keys (kept for devices that rules watch, read
from latest_values when the engine first needs them). The index of a tenant reloads when one of
its rules changes (locally, or in another process through PostgreSQL NOTIFY); device names and types are cached
and dropped on `device_changed`; a person clearing an alarm resets its tracker (via `alarm_changed`).
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby
from operator import attrgetter
from uuid import UUID

from sqlalchemy import text

from app.bus import EventBus, TelemetryStored
from app.db import Database
from app.models.maintenance import MaintenancePublic
from app.models.rules import Scalar
from app.services.alarms import AlarmService, Firing
from app.services.rules.alarm_queue import AlarmQueue
from app.services.rules.backlog import Backlog
from app.services.rules.evaluator import Tracker
from app.services.rules.index import CompiledRule, TenantRules
from app.services.rules.maintenance import MaintenanceService
from app.services.rules.service import RuleService

log = logging.getLogger(__name__)
HISTORY_POINTS = 1000  # per device and key, for rate-of-change rules
HISTORY = timedelta(seconds=3600)
SCALAR_TYPES = frozenset((float, int, str, bool))  # exact types, as decoded (`payload.py`)
NUMBERS = frozenset({float, int})
BY_TS = attrgetter('ts')
Clock = Callable[[], datetime]
Values = dict[str, Scalar]
History = dict[str, deque[tuple[datetime, float]]]


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(slots=True)
class DeviceState:
    """What the engine remembers of one device: one look-up per device and batch on the hot path."""

    tenant_id: UUID
    values: Values = field(default_factory=dict)  # last value per key, while `values_current`
    values_current: bool = False  # kept up to date only while the device has rules, else read again from
    # latest_values when it gets some (remembering every reading of devices no rule watches cost ~6% of ingest)
    history: History = field(default_factory=dict)  # recent readings of the keys rate-of-change rules watch
    trackers: dict[int, Tracker] = field(default_factory=dict)  # by rule id (as int: cheaper to hash than a UUID)
    described: tuple[str, str] | None = None  # (type, name), once looked up
    rules: list[CompiledRule] = field(default_factory=list)
    rules_of: TenantRules | None = None  # the index `rules` was taken from


class RuleEngine:
    def __init__(self, db: Database, bus: EventBus, rules: RuleService, alarms: AlarmService,
                 maintenance: MaintenanceService) -> None:
        self._db = db
        self._rules = rules
        self._maintenance = maintenance
        self._batches: Backlog[list[TelemetryStored]] = Backlog(self._evaluate_batches, limit=50,
                                                                name='rule evaluation')
        self._written = AlarmQueue(alarms)  # alarm rows are written off the evaluation's path too
        self._index: dict[UUID, TenantRules] = {}
        self._changes: dict[UUID, int] = {}  # per tenant, how often its rules were invalidated...
        self._resets = 0  # ...and how often all were: an index loaded across a change is not kept
        self._state: dict[UUID, DeviceState] = {}
        self._device_changes = bus.device_changed.subscribe(  # names and types: online/offline changes neither
            maxsize=10_000, where=lambda event: event.change in ('updated', 'deleted'))
        self._alarm_changes = bus.alarm_changed.subscribe(
            maxsize=10_000, where=lambda event: event.transition == 'cleared')
        rules.on_changed(self.invalidate)
        maintenance.on_changed(self.invalidate)

    def invalidate(self, tenant_id: UUID) -> None:
        self._index.pop(tenant_id, None)
        self._changes[tenant_id] = self._changes.get(tenant_id, 0) + 1

    def invalidate_all(self) -> None:
        """Reload every tenant's rules lazily: after the change listener reconnects, changes may have been missed."""
        self._index.clear()
        self._resets += 1

    async def settled(self) -> None:
        """Wait until the alarm changes of every batch evaluated so far are written."""
        await self._batches.settled()
        await self._written.settled()

    async def stop(self) -> None:
        """Write what is queued and end the task writing it (the next firing starts it again)."""
        await self._batches.stop()
        await self._written.stop()

    def close(self) -> None:
        self._device_changes.close()
        self._alarm_changes.close()

    async def on_committed(self, batch: list[TelemetryStored]) -> None:
        """The batch writer's commit listener: the batch is evaluated by a task of the engine's own, in order,
        so the writer goes on while it is (a full backlog makes the writer wait)."""
        await self._batches.put(batch)

    async def _evaluate_batches(self, batches: list[list[TelemetryStored]]) -> None:
        self._catch_up()
        by_tenant: dict[UUID, list[TelemetryStored]] = defaultdict(list)
        for batch in batches:
            for stored in batch:
                by_tenant[stored.tenant_id].append(stored)
        for tenant_id, events in by_tenant.items():
            try:
                firings = await self.evaluate(tenant_id, events)
                if firings:
                    await self._written.put(tenant_id, firings)
            except Exception:
                log.exception('rule evaluation failed', extra={'tenant_id': str(tenant_id)})

    def _catch_up(self) -> None:
        for change in self._device_changes.drain():
            if change.change == 'deleted':
                self._state.pop(change.device_id, None)
            elif (state := self._state.get(change.device_id)) is not None:
                state.described, state.rules_of = None, None  # its name or type may have changed
        for cleared in self._alarm_changes.drain():
            state = self._state.get(cleared.device_id)
            tracker = None if state is None else state.trackers.get(cleared.rule_id.int)
            if tracker is not None and tracker.open:
                tracker.open, tracker.cleared_at = False, utcnow()

    def _device(self, tenant_id: UUID, device_id: UUID) -> DeviceState:
        state = self._state.get(device_id)
        if state is None:
            state = self._state[device_id] = DeviceState(tenant_id)
        return state

    async def evaluate(self, tenant_id: UUID, events: list[TelemetryStored]) -> list[Firing]:
        index = await self._tenant(tenant_id)
        if index.empty:
            return []  # nothing remembered: a device's last values are read from latest_values once it has rules
        states = [self._device(tenant_id, stored.device_id) for stored in events]
        await self._describe(tenant_id, [(stored.device_id, state) for stored, state in zip(events, states, strict=True)
                                         if state.described is None])
        watched: list[tuple[TelemetryStored, DeviceState]] = []
        for stored, state in zip(events, states, strict=True):
            if state.rules_of is not index:
                state.rules = index.for_device(stored.device_id, state.described[0] if state.described else None)
                state.rules_of = index
            if state.rules:
                watched.append((stored, state))
            else:
                state.values_current = False
        await self._recall(tenant_id, {stored.device_id: state for stored, state in watched
                                       if not state.values_current})
        firings: list[Firing] = []
        for stored, state in watched:
            firings += self._run(state, stored, index)
        return firings

    def _run(self, state: DeviceState, stored: TelemetryStored, index: TenantRules) -> list[Firing]:
        """Readings in time order; those sharing a timestamp (one message) are taken in together, then each rule
        over any of their keys is evaluated once, so a condition over several keys sees the whole message."""
        device_id, values, history, trackers = stored.device_id, state.values, state.history, state.trackers
        device_name = state.described[1] if state.described else ''
        rate_keys = index.rate_keys
        readings = stored.readings
        if not readings:
            return []
        if readings[0].ts != readings[-1].ts and any(readings[i].ts < readings[i - 1].ts
                                                     for i in range(1, len(readings))):
            readings = tuple(sorted(readings, key=lambda r: r.ts))
        last: dict[UUID, int] = {}  # rule → position in `out` of its latest raise or repeat in this batch
        out: list[Firing] = []
        for ts, group in groupby(readings, key=BY_TS):
            changed: set[str] = set()
            for reading in group:
                value = reading.value
                if type(value) not in SCALAR_TYPES:
                    continue
                key = reading.key
                values[key] = value  # type: ignore[assignment]  # a scalar: checked just above
                changed.add(key)
                if key in rate_keys and type(value) in NUMBERS:
                    keep_recent(history.setdefault(key, deque(maxlen=HISTORY_POINTS)), ts, value)  # type: ignore[arg-type]
            for rule in state.rules:
                if rule.keys.isdisjoint(changed):
                    continue
                tracker = trackers.get(rule.number)
                truth = rule.test(values, tracker is not None and tracker.open, history)
                if truth is None or (not truth and tracker is None):
                    continue  # a fresh tracker would decide nothing on a false reading
                if truth and (tracker is None or not tracker.open) and not may_raise(rule, device_id, ts,
                                                                                       index.maintenance):
                    if tracker is not None:
                        tracker.true_since = None  # outside the schedule or in maintenance: nothing builds up
                    continue
                if tracker is None:
                    tracker = trackers[rule.number] = Tracker()
                decision = tracker.step(truth, ts, rule.options)
                if decision is None:
                    continue
                key = next(key for key in rule.key_order if key in changed)
                firing = Firing(rule_id=rule.id, rule_name=rule.name, severity=rule.severity,
                                threshold=rule.description, device_id=device_id, device_name=device_name,
                                action='clear' if decision == 'clear' else 'raise', at=ts,
                                key=key, value=values[key])
                earlier = last.get(rule.id)
                if decision == 'repeat' and earlier is not None and out[earlier].action == 'raise':
                    out[earlier] = firing  # one repeat per batch: the latest value
                else:
                    last[rule.id] = len(out)
                    out.append(firing)
        return out

    async def _tenant(self, tenant_id: UUID) -> TenantRules:
        index = self._index.get(tenant_id)
        if index is not None:
            return index
        loading = (self._resets, self._changes.get(tenant_id, 0))
        rules = await self._rules.list_for_engine(tenant_id)
        index = TenantRules.build(rules)
        index.maintenance = await self._maintenance.for_engine(tenant_id)
        async with self._db.tenant(tenant_id) as session:
            rows = await session.execute(text(
                "SELECT rule_id, device_id FROM alarms WHERE tenant_id = :t AND status <> 'cleared'"),
                {'t': tenant_id})
            open_now = list(rows)
        live = {rule.id.int for rule in rules if rule.enabled}
        for state in self._state.values():  # trackers of disabled and deleted rules go
            if state.tenant_id == tenant_id and any(number not in live for number in state.trackers):
                state.trackers = {number: tracker for number, tracker in state.trackers.items() if number in live}
        for rule_id, device_id in open_now:
            trackers = self._device(tenant_id, device_id).trackers
            trackers.setdefault(rule_id.int, Tracker()).open = True
        if loading == (self._resets, self._changes.get(tenant_id, 0)):
            self._index[tenant_id] = index  # else a rule changed while this was read: the next batch reads again
        return index

    async def _describe(self, tenant_id: UUID, missing: list[tuple[UUID, DeviceState]]) -> None:
        """Names and types of devices not seen since they (or the engine) changed."""
        if not missing:
            return
        states = dict(missing)
        async with self._db.tenant(tenant_id) as session:
            rows = await session.execute(text('SELECT id, type, name FROM devices WHERE id = ANY(:ids)'),
                                         {'ids': list(states)})
            for device_id, device_type, name in rows:
                states[device_id].described = (device_type, name)
                states[device_id].rules_of = None

    async def _recall(self, tenant_id: UUID, states: dict[UUID, DeviceState]) -> None:
        """The last value of every key of devices whose values were not kept (new to the engine, or without rules
        until now), so that a condition over several keys has them before each key is reported again. A batch
        written since the one being evaluated may already show there: its values are newer still."""
        if not states:
            return
        for state in states.values():
            state.values = {}
        async with self._db.tenant(tenant_id) as session:
            rows = await session.execute(text(
                'SELECT l.device_id, k.name, l.value, l.text_value, l.bool_value FROM latest_values l '
                'JOIN telemetry_keys k ON k.id = l.key_id WHERE l.device_id = ANY(:ids)'), {'ids': list(states)})
            for device_id, key, number, text_value, flag in rows:
                value = number if number is not None else text_value if text_value is not None else flag
                if value is not None:  # JSON values are not compared by rules
                    states[device_id].values[key] = value
        for state in states.values():
            state.values_current = True


def may_raise(rule: CompiledRule, device_id: UUID, at: datetime, maintenance: list[MaintenancePublic]) -> bool:
    return rule.options.active_at(at) and not any(window.covers(device_id, at) for window in maintenance)


def keep_recent(points: deque[tuple[datetime, float]], at: datetime, value: float) -> None:
    if points and at < points[-1][0]:
        return  # out of order: the rate is computed over readings in time order
    points.append((at, float(value)))
    while points and at - points[0][0] > HISTORY:
        points.popleft()
