"""The in-memory index of a tenant's enabled rules: by device, by device type and for all devices, with keys."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

from app.models.alarm_notice import Severity
from app.models.maintenance import MaintenancePublic
from app.models.rules import Comparison, Composite, RateOfChange, RuleOptions, RulePublic, Threshold, describe
from app.models.rules import Range as RangeCondition
from app.services.rules.evaluator import AnyCondition, Predicate, compile_condition, keys_of

STREAM = (Threshold, RangeCondition, Comparison, RateOfChange, Composite)


def rate_keys(condition: AnyCondition) -> set[str]:
    if isinstance(condition, RateOfChange):
        return {condition.key}
    if isinstance(condition, Composite):
        return set().union(*(rate_keys(part) for part in condition.conditions))
    return set()


@dataclass(frozen=True)
class CompiledRule:
    id: UUID
    name: str
    severity: Severity
    condition: AnyCondition
    options: RuleOptions
    keys: frozenset[str]
    description: str
    number: int  # the id as an int: the engine's per-device trackers are keyed by it
    test: Predicate  # the condition compiled once
    key_order: tuple[str, ...]  # the condition's keys as written: an alarm shows the first one that changed

    @classmethod
    def of(cls, rule: RulePublic) -> CompiledRule:
        assert isinstance(rule.condition, STREAM)
        return cls(id=rule.id, name=rule.name, severity=rule.severity, condition=rule.condition,
                   options=rule.options, keys=keys_of(rule.condition), description=describe(rule.condition),
                   number=rule.id.int, test=compile_condition(rule.condition), key_order=ordered_keys(rule.condition))


def ordered_keys(condition: AnyCondition) -> tuple[str, ...]:
    if isinstance(condition, Comparison):
        return (condition.left, condition.right)
    if isinstance(condition, Composite):
        return tuple(dict.fromkeys(key for part in condition.conditions for key in ordered_keys(part)))
    return (condition.key,)


@dataclass
class TenantRules:
    by_device: dict[UUID, list[CompiledRule]] = field(default_factory=lambda: defaultdict(list))
    by_type: dict[str, list[CompiledRule]] = field(default_factory=lambda: defaultdict(list))
    everywhere: list[CompiledRule] = field(default_factory=list)
    maintenance: list[MaintenancePublic] = field(default_factory=list)
    rate_keys: set[str] = field(default_factory=set)  # keys whose recent readings the engine keeps
    _per_device: dict[tuple[UUID, str | None], list[CompiledRule]] = field(default_factory=dict)

    @classmethod
    def build(cls, rules: list[RulePublic]) -> TenantRules:
        index = cls()
        for rule in rules:
            if not rule.enabled or not isinstance(rule.condition, STREAM):
                continue
            compiled = CompiledRule.of(rule)
            index.rate_keys |= rate_keys(rule.condition)
            if rule.scope.kind == 'device' and rule.scope.device_id is not None:
                index.by_device[rule.scope.device_id].append(compiled)
            elif rule.scope.kind == 'device_type' and rule.scope.device_type:
                index.by_type[rule.scope.device_type.strip()].append(compiled)
            elif rule.scope.kind == 'all':
                index.everywhere.append(compiled)
        return index

    @property
    def empty(self) -> bool:
        return not (self.by_device or self.by_type or self.everywhere)

    @property
    def needs_device_type(self) -> bool:
        return bool(self.by_type)

    def for_device(self, device_id: UUID, device_type: str | None) -> list[CompiledRule]:
        """The rules watching one device (kept: the index is rebuilt, not changed, when rules change)."""
        found = self._per_device.get((device_id, device_type))
        if found is None:
            found = list(self.by_device.get(device_id, ()))
            if device_type is not None:
                found += self.by_type.get(device_type, ())
            found += self.everywhere
            self._per_device[(device_id, device_type)] = found
        return found
