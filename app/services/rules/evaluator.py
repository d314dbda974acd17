"""Pure evaluation of one condition against a device's current values, and the per-(rule, device) state machine.

`Tracker.step` turns a sequence of truth values at given times into raise / repeat / clear decisions, honouring
debounce, auto-clear (a duration or a number of false readings) and cooldown. It takes the time explicitly, so
tests drive it with a clock of their own and the backtest replays stored readings through the same code.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from app.models.rules import Comparison, Composite, Op, RateOfChange, RuleOptions, Scalar, Threshold
from app.models.rules import Range as RangeCondition

Values = Mapping[str, Scalar]
History = Mapping[str, Sequence[tuple[datetime, float]]]  # recent numeric readings per key, oldest first
AnyCondition = Threshold | RangeCondition | Comparison | RateOfChange | Composite
Decision = Literal['raise', 'repeat', 'clear'] | None

OPS: dict[Op, Callable[[float, float], bool]] = {
    '>': operator.gt, '>=': operator.ge, '<': operator.lt, '<=': operator.le, '==': operator.eq, '!=': operator.ne,
}


def _number(value: Scalar | None) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def _compare(left: Scalar, op: Op, right: Scalar) -> bool | None:
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return OPS[op](a, b)
    if op in ('==', '!='):
        return (str(left) == str(right)) == (op == '==')
    return None


def keys_of(condition: AnyCondition) -> frozenset[str]:
    if isinstance(condition, Threshold | RangeCondition | RateOfChange):
        return frozenset({condition.key})
    if isinstance(condition, Comparison):
        return frozenset({condition.left, condition.right})
    return frozenset().union(*(keys_of(part) for part in condition.conditions))


def rate_per_minute(points: Sequence[tuple[datetime, float]], window_s: int) -> float | None:
    """(newest - oldest) / minutes over the readings of the last `window_s` seconds; None under two readings."""
    if len(points) < 2:
        return None
    newest_at, newest = points[-1]
    inside = [(at, value) for at, value in points if newest_at - at <= timedelta(seconds=window_s)]
    oldest_at, oldest = inside[0]
    minutes = (newest_at - oldest_at).total_seconds() / 60
    return None if minutes <= 0 else (newest - oldest) / minutes


def evaluate(condition: AnyCondition, values: Values, *, active: bool, history: History | None = None) -> bool | None:
    """True / False, or None when a needed value is missing or not comparable. `active`: hysteresis state."""
    if isinstance(condition, RateOfChange):
        rate = rate_per_minute((history or {}).get(condition.key, ()), condition.window_s)
        return None if rate is None else OPS[condition.op](rate, condition.per_minute)
    if isinstance(condition, Threshold):
        value = values.get(condition.key)
        return None if value is None else _compare(value, condition.op, condition.value)
    if isinstance(condition, RangeCondition):
        number = _number(values.get(condition.key))
        if number is None:
            return None
        high = condition.direction == 'high'
        if active:
            return number > condition.clear_at if high else number < condition.clear_at
        return number > condition.raise_at if high else number < condition.raise_at
    if isinstance(condition, Comparison):
        left, right = _number(values.get(condition.left)), _number(values.get(condition.right))
        if left is None or right is None:
            return None
        return OPS[condition.op](left, right + condition.offset)
    results = [evaluate(part, values, active=active, history=history) for part in condition.conditions]
    if condition.mode == 'weighted':
        if all(result is None for result in results):
            return None
        weights = condition.weights or []
        return sum(w for w, result in zip(weights, results, strict=True) if result) >= condition.min_score
    known = [result for result in results if result is not None]
    if condition.mode == 'and':
        return False if False in known else (None if len(known) < len(results) else True)
    return True if True in known else (None if len(known) < len(results) else False)


@dataclass
class Tracker:
    """What the engine remembers about one (rule, device) between readings."""

    open: bool = False
    true_since: datetime | None = None
    false_since: datetime | None = None
    false_count: int = 0
    cleared_at: datetime | None = None

    def step(self, truth: bool, at: datetime, options: RuleOptions) -> Decision:
        if truth:
            self.false_since, self.false_count = None, 0
            if self.open:
                return 'repeat'
            if self.true_since is None:
                self.true_since = at
            if at - self.true_since < timedelta(seconds=options.debounce_s):
                return None
            cooling = self.cleared_at is not None and at - self.cleared_at < timedelta(seconds=options.cooldown_s)
            if options.cooldown_s and cooling:
                return None
            self.open, self.true_since = True, None
            return 'raise'
        self.true_since = None
        if not self.open or not options.auto_clear:
            return None
        self.false_count += 1
        if self.false_since is None:
            self.false_since = at
        by_time = at - self.false_since >= timedelta(seconds=options.clear_after_s)
        by_count = options.clear_after_readings > 0 and self.false_count >= options.clear_after_readings
        if (options.clear_after_readings == 0 and by_time) or by_count or (options.clear_after_s and by_time):
            self.open, self.false_since, self.false_count, self.cleared_at = False, None, 0, at
            return 'clear'
        return None
