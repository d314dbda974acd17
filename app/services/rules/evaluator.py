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
    if isinstance(value, (int, float)):  # a tuple: several times faster than `int | float` here
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
    window = timedelta(seconds=window_s)
    oldest_at, oldest = next((at, value) for at, value in points if newest_at - at <= window)
    minutes = (newest_at - oldest_at).total_seconds() / 60
    return None if minutes <= 0 else (newest - oldest) / minutes


Predicate = Callable[[Values, bool, History | None], bool | None]


def evaluate(condition: AnyCondition, values: Values, *, active: bool, history: History | None = None) -> bool | None:
    """True / False, or None when a needed value is missing or not comparable. `active`: hysteresis state."""
    return compile_condition(condition)(values, active, history)


def compile_condition(condition: AnyCondition) -> Predicate:
    """The condition as a closure, built once per rule: the engine calls it for every reading that concerns it."""
    if isinstance(condition, RateOfChange):
        return _rate(condition)
    if isinstance(condition, Threshold):
        return _threshold(condition)
    if isinstance(condition, RangeCondition):
        return _range(condition)
    if isinstance(condition, Comparison):
        return _comparison(condition)
    return _composite(condition)


def _rate(condition: RateOfChange) -> Predicate:
    key, test, limit, window_s = condition.key, OPS[condition.op], condition.per_minute, condition.window_s

    def predicate(values: Values, active: bool, history: History | None) -> bool | None:
        rate = rate_per_minute((history or {}).get(key, ()), window_s)
        return None if rate is None else test(rate, limit)
    return predicate


def _threshold(condition: Threshold) -> Predicate:
    key, op, limit = condition.key, condition.op, condition.value
    number, test = _number(limit), OPS[op]

    def predicate(values: Values, active: bool, history: History | None) -> bool | None:
        value = values.get(key)
        if value is None:
            return None
        if number is not None and type(value) is float:
            return test(value, number)  # the common case, without the generic comparison
        return _compare(value, op, limit)
    return predicate


def _range(condition: RangeCondition) -> Predicate:
    key, raise_at, clear_at = condition.key, condition.raise_at, condition.clear_at
    high = condition.direction == 'high'

    def predicate(values: Values, active: bool, history: History | None) -> bool | None:
        number = _number(values.get(key))
        if number is None:
            return None
        limit = clear_at if active else raise_at
        return number > limit if high else number < limit
    return predicate


def _comparison(condition: Comparison) -> Predicate:
    left_key, right_key, test, offset = condition.left, condition.right, OPS[condition.op], condition.offset

    def predicate(values: Values, active: bool, history: History | None) -> bool | None:
        left, right = _number(values.get(left_key)), _number(values.get(right_key))
        if left is None or right is None:
            return None
        return test(left, right + offset)
    return predicate


def _composite(condition: Composite) -> Predicate:
    parts = [compile_condition(part) for part in condition.conditions]
    mode, weights, min_score = condition.mode, condition.weights or [], condition.min_score

    def predicate(values: Values, active: bool, history: History | None) -> bool | None:
        results = [part(values, active, history) for part in parts]
        if mode == 'weighted':
            if all(result is None for result in results):
                return None
            return sum(w for w, result in zip(weights, results, strict=True) if result) >= min_score
        known = [result for result in results if result is not None]
        if mode == 'and':
            return False if False in known else (None if len(known) < len(results) else True)
        return True if True in known else (None if len(known) < len(results) else False)
    return predicate


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
