"""Rules of a tenant: create, list, read, change, delete. Every change tells the rule engines to reload.

Changes run `pg_notify('gito_rule_changed', tenant_id)` in their transaction, so every Gito process reloads its
index (and the local one is told directly after the commit, without waiting for the round trip).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from uuid import UUID

from pydantic import TypeAdapter
from sqlalchemy import func, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.bus import AlarmChanged, EventBus
from app.db import Database
from app.models.rules import SCHEDULED_TYPES, Condition, Rule, RuleCreate, RuleOptions, RulePublic, Scope
from app.models.schemas import Principal
from app.models.tables import Device
from app.services.alarms import AlarmService
from app.services.errors import InvalidInput, NotFound
from app.services.permissions import Permission, require

RULE_CHANNEL = 'gito_rule_changed'
_CONDITION: TypeAdapter[Condition] = TypeAdapter(Condition)


def to_public(rule: Rule) -> RulePublic:
    return RulePublic(
        id=rule.id, tenant_id=rule.tenant_id, name=rule.name, enabled=rule.enabled,
        severity=rule.severity,
        scope=Scope.model_validate(rule.scope), condition=_CONDITION.validate_python(rule.condition),
        options=RuleOptions.model_validate(rule.options), created_at=rule.created_at, updated_at=rule.updated_at)


class RuleService:
    def __init__(self, db: Database, bus: EventBus, alarms: AlarmService) -> None:
        self._db = db
        self._bus = bus
        self._alarms = alarms
        self._listeners: list[Callable[[UUID], None]] = []

    def on_changed(self, listener: Callable[[UUID], None]) -> None:
        """Called with the tenant id after a rule of that tenant changed in this process."""
        self._listeners.append(listener)

    async def all(self, principal: Principal) -> list[RulePublic]:
        require(principal, Permission.VIEW)
        statement = select(Rule).where(col(Rule.tenant_id) == principal.tenant_id) \
            .order_by(func.lower(col(Rule.name)), col(Rule.id))
        async with self._db.tenant(principal.tenant_id) as session:
            return [to_public(rule) for rule in await session.scalars(statement)]

    async def list_for_engine(self, tenant_id: UUID) -> list[RulePublic]:
        """Every rule of a tenant, for the rule engine (no principal: the engine acts for the system)."""
        async with self._db.tenant(tenant_id) as session:
            return [to_public(rule) for rule in await session.scalars(
                select(Rule).where(col(Rule.tenant_id) == tenant_id))]

    async def get(self, principal: Principal, rule_id: UUID) -> RulePublic:
        require(principal, Permission.VIEW)
        async with self._db.tenant(principal.tenant_id) as session:
            return to_public(await _load(session, principal, rule_id))

    async def create(self, principal: Principal, data: RuleCreate) -> RulePublic:
        require(principal, Permission.MANAGE_RULES)
        now = datetime.now(UTC)
        async with self._db.tenant(principal.tenant_id) as session:
            await _check_scope(session, principal, data.scope)
            rule = Rule(tenant_id=principal.tenant_id, created_at=now, updated_at=now, name='', scope={},
                        condition={}, options={})
            for name, value in _columns(data).items():
                setattr(rule, name, value)
            session.add(rule)
            await session.flush()
            await notify_rules_changed(session, principal.tenant_id)
            public = to_public(rule)
        self._changed(principal.tenant_id)
        return public

    async def update(self, principal: Principal, rule_id: UUID, data: RuleCreate) -> RulePublic:
        require(principal, Permission.MANAGE_RULES)
        events: list[AlarmChanged] = []
        async with self._db.tenant(principal.tenant_id) as session:
            rule = await _load(session, principal, rule_id, lock=True)
            await _check_scope(session, principal, data.scope)
            severity_changed = rule.severity != data.severity
            for name, value in _columns(data).items():
                setattr(rule, name, value)
            rule.updated_at = datetime.now(UTC)
            await session.flush()
            if severity_changed:
                events = await self._alarms.change_severity(session, principal.tenant_id, rule.id, data.severity,
                                                            actor=principal.email)
            await notify_rules_changed(session, principal.tenant_id)
            public = to_public(rule)
        self._changed(principal.tenant_id)
        for event in events:
            self._bus.alarm_changed.publish(event)
        return public

    async def delete(self, principal: Principal, rule_id: UUID) -> None:
        """The rule and its alarms."""
        require(principal, Permission.MANAGE_RULES)
        async with self._db.tenant(principal.tenant_id) as session:
            await session.delete(await _load(session, principal, rule_id))
            await notify_rules_changed(session, principal.tenant_id)
        self._changed(principal.tenant_id)

    def _changed(self, tenant_id: UUID) -> None:
        for listener in self._listeners:
            listener(tenant_id)


NOT_FOR_SCHEDULED = ('debounce_s', 'clear_after_s', 'clear_after_readings', 'cooldown_s')


def _columns(data: RuleCreate) -> dict[str, object]:
    name = data.name.strip()
    if not name:
        raise InvalidInput('A rule needs a name.', field='name')
    if data.condition.type in SCHEDULED_TYPES:
        for option in NOT_FOR_SCHEDULED:  # refused rather than silently ignored
            if getattr(data.options, option):
                raise InvalidInput('Window and no-data rules raise and clear at each evaluation: debounce, '
                                   'clear-after and cooldown do not apply to them.', field=f'options.{option}')
    return {'name': name, 'enabled': data.enabled, 'severity': data.severity,
            'scope': data.scope.model_dump(mode='json'), 'condition': data.condition.model_dump(mode='json'),
            'options': data.options.model_dump(mode='json')}


async def _check_scope(session: AsyncSession, principal: Principal, scope: Scope) -> None:
    if scope.kind != 'device':
        return
    device = await session.get(Device, scope.device_id)
    if device is None or device.tenant_id != principal.tenant_id:
        raise InvalidInput('Unknown device.', field='scope.device_id')


async def _load(session: AsyncSession, principal: Principal, rule_id: UUID, *, lock: bool = False) -> Rule:
    statement = select(Rule).where(col(Rule.id) == rule_id, col(Rule.tenant_id) == principal.tenant_id)
    rule = (await session.scalars(statement.with_for_update() if lock else statement)).first()
    if rule is None:
        raise NotFound(f'Unknown rule {rule_id}.')
    return rule


async def notify_rules_changed(session: AsyncSession, tenant_id: UUID) -> None:
    """Tell every process (in this transaction) to reload the tenant's rules and maintenance windows."""
    await session.execute(text('SELECT pg_notify(:channel, :payload)'),
                          {'channel': RULE_CHANNEL, 'payload': str(tenant_id)})
