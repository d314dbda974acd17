"""Backtest of window and no-data rules: when stored readings say the scheduler would have raised them.

The scheduler checks these rules every few seconds, but their truth only changes at known instants: a window's
statistic when a reading enters it (its time) or leaves it (its time plus the window); silence when it reaches
N minutes after a reading, and again at the next reading. The replay evaluates the condition at those instants
(and when a maintenance window ends) and raises and clears as the scheduler does: at once, without debounce,
quiet outside the rule's schedule or inside maintenance. Schedule boundaries are not instants of their own.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime, timedelta
from uuid import UUID

from app.models.maintenance import MaintenancePublic
from app.models.rules import NoData, RuleOptions, Window
from app.services.rules.evaluator import OPS

Point = tuple[datetime, float | None]  # a reading's time and numeric value (None: not a number)


def window_truths(condition: Window, points: Sequence[Point], now: datetime) -> list[tuple[datetime, bool]]:
    """`points` in time order; the statistic at each instant it can change, sliding over the readings."""
    span = timedelta(minutes=condition.minutes)
    instants = sorted({at for at, _ in points} | {at + span for at, _ in points if at + span <= now})
    truths: list[tuple[datetime, bool]] = []
    first = last = 0
    for instant in instants:
        while last < len(points) and points[last][0] <= instant:
            last += 1
        while first < last and points[first][0] <= instant - span:
            first += 1
        stat = _stat(condition.stat, points[first:last])
        if stat is not None:
            truths.append((instant, OPS[condition.op](stat, condition.value)))
    return truths


def _stat(kind: str, inside: Sequence[Point]) -> float | None:
    if kind == 'count':
        return float(len(inside))
    numbers = [value for _, value in inside if value is not None]
    if not numbers or (kind == 'stddev' and len(numbers) < 2):
        return None
    if kind == 'avg':
        return statistics.fmean(numbers)
    if kind == 'min':
        return min(numbers)
    if kind == 'max':
        return max(numbers)
    return statistics.stdev(numbers)


def silence_truths(condition: NoData, times: Sequence[datetime], now: datetime) -> list[tuple[datetime, bool]]:
    span = timedelta(minutes=condition.minutes)
    truths: list[tuple[datetime, bool]] = []
    for at, following in zip(times, [*times[1:], None], strict=True):
        truths.append((at, False))
        silent_from = at + span
        if (following is None and silent_from <= now) or (following is not None and silent_from < following):
            truths.append((silent_from, True))
    return truths


def scheduled_raises(truths: list[tuple[datetime, bool]], *, device_id: UUID, options: RuleOptions,
                     windows: list[MaintenancePublic], since: datetime) -> list[datetime]:
    """Raise and clear at once, as ScheduledRules does; the raises after `since`."""
    instants = sorted(truths + _maintenance_ends(truths, device_id, windows), key=lambda pair: pair[0])
    raises: list[datetime] = []
    open_ = False
    for at, truth in instants:
        quiet = not options.active_at(at) or any(window.covers(device_id, at) for window in windows)
        if truth and not open_ and not quiet:
            open_ = True
            if at > since:
                raises.append(at)
        elif not truth and open_ and options.auto_clear:
            open_ = False
    return raises


def _maintenance_ends(truths: list[tuple[datetime, bool]], device_id: UUID,
                      windows: list[MaintenancePublic]) -> list[tuple[datetime, bool]]:
    """At a window's end the condition is what it last was: a raise held back by maintenance happens then."""
    out = []
    for window in windows:
        if window.device_ids is not None and device_id not in window.device_ids:
            continue
        before = [truth for at, truth in truths if at <= window.ends_at]
        if before:
            out.append((window.ends_at, before[-1]))
    return out
