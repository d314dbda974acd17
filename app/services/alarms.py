"""Alarm lifecycle: raise (one open per rule and device), repeat, acknowledge, clear, comment, assign.

Every transition writes an `alarm_events` row and hands an `AlarmNotice` to the notifier in the same
transaction (the transactional outbox); bus events are published only after the commit.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid4

import orjson
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.bus import AlarmChanged, EventBus
from app.db import Database
from app.models.alarm_notice import AlarmNotice, AlarmNotifier, AlarmTransition, Severity
from app.models.alarms import Alarm, AlarmDetail, AlarmEventPublic, AlarmEventRow, AlarmFilter, AlarmPublic
from app.models.rules import format_scalar
from app.models.schemas import Principal
from app.models.tables import User
from app.services.errors import Conflict, InvalidInput, NotFound
from app.services.permissions import ROLE_PERMISSIONS, Permission, require

log = logging.getLogger(__name__)

UPSERT = text("""
INSERT INTO alarms (id, tenant_id, rule_id, device_id, rule_name, device_name, severity, status, count,
                    first_seen, last_seen, key, value, threshold)
VALUES (:id, :tenant_id, :rule_id, :device_id, :rule_name, :device_name, :severity, 'active', 1,
        :at, :at, :key, :value, :threshold)
ON CONFLICT (rule_id, device_id) WHERE status <> 'cleared' DO UPDATE SET
    count = alarms.count + 1, last_seen = greatest(alarms.last_seen, EXCLUDED.last_seen), value = EXCLUDED.value
RETURNING id, status, severity, (xmax = 0) AS inserted""")
INSERT_EVENT = text("""
INSERT INTO alarm_events (tenant_id, alarm_id, at, kind, actor, note, data)
VALUES (:tenant_id, :alarm_id, :at, :kind, :actor, :note, CAST(:data AS jsonb))""")
HOLD = text("""
UPDATE alarms SET last_seen = greatest(last_seen, :at), value = :value
WHERE rule_id = :rule_id AND device_id = :device_id AND status <> 'cleared'
RETURNING id""")
AUTO_CLEAR = text("""
UPDATE alarms SET status = 'cleared', cleared_at = :at, clear_reason = :reason
WHERE rule_id = :rule_id AND device_id = :device_id AND status <> 'cleared'
RETURNING id, severity""")


@dataclass(frozen=True)
class Assignee:
    id: UUID
    email: str
    name: str


def can_act(role: str) -> bool:
    """Whether a user of this role can acknowledge (and so be given) an alarm."""
    return any(name == role and Permission.ACKNOWLEDGE_ALARMS in granted for name, granted in ROLE_PERMISSIONS.items())


@dataclass(frozen=True)
class Firing:
    """One decision of the rule engine for one (rule, device)."""

    rule_id: UUID
    rule_name: str
    severity: Severity
    threshold: str
    device_id: UUID
    device_name: str
    action: Literal['raise', 'clear', 'hold']  # hold: still true, as already raised (last seen and value only)
    at: datetime
    key: str | None = None
    value: float | str | bool | None = None


class AlarmService:
    def __init__(self, db: Database, bus: EventBus, *, notifier: AlarmNotifier) -> None:
        self._db = db
        self._bus = bus
        self._notifier = notifier

    async def apply(self, tenant_id: UUID, firings: list[Firing]) -> list[AlarmChanged]:
        """The engine's raises and clears for one tenant, in one transaction."""
        events: list[AlarmChanged] = []
        try:
            async with self._db.tenant(tenant_id) as session:
                for firing in firings:
                    event = await self.apply_in(session, tenant_id, firing)
                    if event is not None:
                        events.append(event)
        except IntegrityError:  # the rule or device was deleted meanwhile: nothing left to alarm about
            log.warning('alarm changes dropped', extra={'tenant_id': str(tenant_id), 'firings': len(firings)})
            return []
        for event in events:
            self._bus.alarm_changed.publish(event)
        return events

    async def apply_in(self, session: AsyncSession, tenant_id: UUID, firing: Firing) -> AlarmChanged | None:
        base = {'rule_id': firing.rule_id, 'device_id': firing.device_id}
        if firing.action == 'clear':
            row = (await session.execute(AUTO_CLEAR, {**base, 'at': firing.at,
                                                      'reason': 'Condition no longer true'})).first()
            if row is None:
                return None
            alarm_id, severity = row
            await _history(session, tenant_id, alarm_id, 'cleared', at=firing.at, note='Condition no longer true')
            await self._notify(session, tenant_id, alarm_id, firing, 'cleared', severity)
            return _changed(tenant_id, alarm_id, firing, severity, 'cleared', 'cleared')
        value = None if firing.value is None else format_scalar(firing.value)
        if firing.action == 'hold':
            await session.execute(HOLD, {**base, 'at': firing.at, 'value': value})
            return None  # no count, no history, no notice: nothing new happened
        row = (await session.execute(UPSERT, {
            **base, 'id': uuid4(), 'tenant_id': tenant_id, 'rule_name': firing.rule_name,
            'device_name': firing.device_name, 'severity': firing.severity, 'at': firing.at, 'key': firing.key,
            'value': value, 'threshold': firing.threshold,
        })).one()
        alarm_id, status, severity, inserted = row
        if not inserted:
            return _changed(tenant_id, alarm_id, firing, severity, status, 'repeated')
        await _history(session, tenant_id, alarm_id, 'raised', at=firing.at,
                       data={'key': firing.key, 'value': value, 'threshold': firing.threshold})
        await self._notify(session, tenant_id, alarm_id, firing, 'raised', severity)
        return _changed(tenant_id, alarm_id, firing, severity, 'active', 'raised')

    async def _notify(self, session: AsyncSession, tenant_id: UUID, alarm_id: UUID, firing: Firing,
                      transition: AlarmTransition, severity: Severity) -> None:
        await self._notifier.enqueue(session, AlarmNotice(
            tenant_id=tenant_id, alarm_id=alarm_id, rule_id=firing.rule_id, rule_name=firing.rule_name,
            device_id=firing.device_id, device_name=firing.device_name, severity=severity,
            transition=transition, at=firing.at, key=firing.key, value=firing.value, threshold=firing.threshold))

    async def find(self, principal: Principal, query: AlarmFilter | None = None) -> list[AlarmPublic]:
        require(principal, Permission.VIEW)
        query = query or AlarmFilter()
        statement = select(Alarm).where(col(Alarm.tenant_id) == principal.tenant_id)
        if query.status == 'open':
            statement = statement.where(col(Alarm.status) != 'cleared')
        elif query.status is not None:
            statement = statement.where(col(Alarm.status) == query.status)
        if query.severity is not None:
            statement = statement.where(col(Alarm.severity) == query.severity)
        if query.device_id is not None:
            statement = statement.where(col(Alarm.device_id) == query.device_id)
        if query.unassigned:
            statement = statement.where(col(Alarm.assignee_id).is_(None))
        elif query.assignee_id is not None:
            statement = statement.where(col(Alarm.assignee_id) == query.assignee_id)
        if query.since is not None:
            statement = statement.where(col(Alarm.last_seen) >= query.since)
        if query.until is not None:
            statement = statement.where(col(Alarm.first_seen) <= query.until)
        statement = statement.order_by(col(Alarm.first_seen).desc(), col(Alarm.id)).limit(query.limit)
        async with self._db.tenant(principal.tenant_id) as session:
            return [AlarmPublic.model_validate(alarm) for alarm in await session.scalars(statement)]

    async def open_counts(self, principal: Principal) -> dict[str, int]:
        require(principal, Permission.VIEW)
        async with self._db.tenant(principal.tenant_id) as session:
            rows = await session.execute(text(
                "SELECT severity, count(*) FROM alarms WHERE tenant_id = :t AND status <> 'cleared' GROUP BY 1"),
                {'t': principal.tenant_id})
            return {str(severity): int(count) for severity, count in rows}

    async def get(self, principal: Principal, alarm_id: UUID) -> AlarmDetail:
        require(principal, Permission.VIEW)
        async with self._db.tenant(principal.tenant_id) as session:
            alarm = await _load(session, principal, alarm_id)
            rows = await session.scalars(select(AlarmEventRow).where(col(AlarmEventRow.alarm_id) == alarm_id)
                                         .order_by(col(AlarmEventRow.id)))
            history = [AlarmEventPublic.model_validate(row) for row in rows]
            return AlarmDetail(**AlarmPublic.model_validate(alarm).model_dump(), history=history)

    async def acknowledge(self, principal: Principal, alarm_id: UUID, *, note: str = '') -> AlarmPublic:
        require(principal, Permission.ACKNOWLEDGE_ALARMS)
        return await self._transition(principal, alarm_id, 'acknowledged', note.strip())

    async def clear(self, principal: Principal, alarm_id: UUID, *, reason: str = '') -> AlarmPublic:
        require(principal, Permission.MANAGE_ALARMS)
        return await self._transition(principal, alarm_id, 'cleared', reason.strip())

    async def comment(self, principal: Principal, alarm_id: UUID, *, text_: str) -> AlarmPublic:
        require(principal, Permission.ACKNOWLEDGE_ALARMS)
        if not text_.strip():
            raise InvalidInput('A comment needs some text.', field='text')
        async with self._db.tenant(principal.tenant_id) as session:
            alarm = await _load(session, principal, alarm_id)
            await _history(session, principal.tenant_id, alarm_id, 'commented', actor=principal.email,
                           note=text_.strip())
            public = AlarmPublic.model_validate(alarm)
        self._publish(public, 'commented')
        return public

    async def assign(self, principal: Principal, alarm_id: UUID, *, user_id: UUID | None) -> AlarmPublic:
        require(principal, Permission.MANAGE_ALARMS)
        async with self._db.tenant(principal.tenant_id) as session:
            alarm = await _load(session, principal, alarm_id)
            email: str | None = None
            if user_id is not None:
                assignee = await session.get(User, user_id)
                if assignee is None or assignee.tenant_id != principal.tenant_id:
                    raise InvalidInput('No such user in this organisation.', field='user_id')
                if assignee.disabled or not can_act(assignee.role):
                    raise InvalidInput(f'{assignee.email} cannot act on alarms.', field='user_id')
                email = assignee.email
            if alarm.assignee_id == user_id:
                raise Conflict('The alarm is already assigned so.' if user_id else 'The alarm is not assigned.')
            alarm.assignee_id = user_id
            await _history(session, principal.tenant_id, alarm_id, 'assigned', actor=principal.email,
                           data={'user_id': None if user_id is None else str(user_id), 'email': email})
            await session.flush()
            public = AlarmPublic.model_validate(alarm)
        self._publish(public, 'assigned')
        return public

    async def assignees(self, principal: Principal) -> list[Assignee]:
        """The people an alarm can be given to: enabled users of the tenant whose role may act on alarms."""
        require(principal, Permission.VIEW)
        statement = select(User).where(col(User.tenant_id) == principal.tenant_id, col(User.disabled).is_(False)) \
            .order_by(col(User.email))
        async with self._db.tenant(principal.tenant_id) as session:
            return [Assignee(id=user.id, email=user.email, name=user.display_name or user.email)
                    for user in await session.scalars(statement) if can_act(user.role)]

    async def change_severity(self, session: AsyncSession, tenant_id: UUID, rule_id: UUID,
                              severity: Severity, *, actor: str) -> list[AlarmChanged]:
        """A rule's severity changed: its open alarms follow, recorded and notified (caller's transaction)."""
        alarms = list(await session.scalars(select(Alarm).where(
            col(Alarm.rule_id) == rule_id, col(Alarm.status) != 'cleared', col(Alarm.severity) != severity)))
        events = []
        now = datetime.now(UTC)
        for alarm in alarms:
            before, alarm.severity = alarm.severity, severity
            await _history(session, tenant_id, alarm.id, 'severity_changed', actor=actor,
                           data={'from': before, 'to': severity})
            await self._notifier.enqueue(session, _notice(alarm, 'severity_changed', now, actor=actor))
            events.append(AlarmChanged(tenant_id=tenant_id, alarm_id=alarm.id, device_id=alarm.device_id,
                                       rule_id=alarm.rule_id, severity=severity, status=alarm.status,
                                       transition='severity_changed'))
        await session.flush()
        return events

    async def _transition(self, principal: Principal, alarm_id: UUID,
                          to: Literal['acknowledged', 'cleared'], note: str) -> AlarmPublic:
        now = datetime.now(UTC)
        async with self._db.tenant(principal.tenant_id) as session:
            alarm = await _load(session, principal, alarm_id, lock=True)
            if alarm.status == 'cleared' or alarm.status == to:
                raise Conflict(f'This alarm is already {alarm.status}.')
            alarm.status = to
            if to == 'acknowledged':
                alarm.acknowledged_by, alarm.acknowledged_at, alarm.ack_note = principal.email, now, note or None
            else:
                alarm.cleared_by, alarm.cleared_at, alarm.clear_reason = principal.email, now, note or None
            await _history(session, principal.tenant_id, alarm_id, to, actor=principal.email, note=note or None)
            await session.flush()
            await self._notifier.enqueue(session, _notice(alarm, to, now, actor=principal.email, note=note))
            public = AlarmPublic.model_validate(alarm)
        self._publish(public, to)
        return public

    def _publish(self, alarm: AlarmPublic, transition: str) -> None:
        self._bus.alarm_changed.publish(AlarmChanged(
            tenant_id=alarm.tenant_id, alarm_id=alarm.id, device_id=alarm.device_id, rule_id=alarm.rule_id,
            severity=alarm.severity, status=alarm.status, transition=transition))


async def _load(session: AsyncSession, principal: Principal, alarm_id: UUID, *, lock: bool = False) -> Alarm:
    statement = select(Alarm).where(col(Alarm.id) == alarm_id, col(Alarm.tenant_id) == principal.tenant_id)
    alarm = (await session.scalars(statement.with_for_update() if lock else statement)).first()
    if alarm is None:
        raise NotFound(f'Unknown alarm {alarm_id}.')
    return alarm


async def _history(session: AsyncSession, tenant_id: UUID, alarm_id: UUID, kind: str, *, at: datetime | None = None,
                   actor: str | None = None, note: str | None = None, data: dict[str, Any] | None = None) -> None:
    # a plain INSERT: the ORM's unit of work costs several times more CPU, and raises come in bursts
    await session.execute(INSERT_EVENT, {'tenant_id': tenant_id, 'alarm_id': alarm_id, 'at': at or datetime.now(UTC),
                                         'kind': kind, 'actor': actor, 'note': note,
                                         'data': orjson.dumps(data or {}).decode()})


def _notice(alarm: Alarm, transition: AlarmTransition, at: datetime, *, actor: str | None = None,
            note: str | None = None) -> AlarmNotice:
    return AlarmNotice(tenant_id=alarm.tenant_id, alarm_id=alarm.id, rule_id=alarm.rule_id, rule_name=alarm.rule_name,
                       device_id=alarm.device_id, device_name=alarm.device_name, severity=alarm.severity,  # type: ignore[arg-type]
                       transition=transition, at=at, key=alarm.key, value=alarm.value, threshold=alarm.threshold,
                       actor=actor, note=note or None)


def _changed(tenant_id: UUID, alarm_id: UUID, firing: Firing, severity: str, status: str,
             transition: str) -> AlarmChanged:
    return AlarmChanged(tenant_id=tenant_id, alarm_id=alarm_id, device_id=firing.device_id, rule_id=firing.rule_id,
                        severity=severity, status=status, transition=transition)
