"""How times and values read on screen: relative ages, UTC timestamps, compact values."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import TypeGuard

from app.models.schemas import Value

MAX_TEXT = 40


def relative_time(moment: datetime | None, *, now: datetime | None = None) -> str:
    """'3 s ago', '5 min ago', '2 h ago', '4 d ago' or 'never'."""
    if moment is None:
        return 'never'
    seconds = int(((now or datetime.now(UTC)) - moment).total_seconds())
    if seconds < 1:
        return 'just now'
    if seconds < 60:
        return f'{seconds} s ago'
    if seconds < 3600:
        return f'{seconds // 60} min ago'
    if seconds < 86400:
        return f'{seconds // 3600} h ago'
    return f'{seconds // 86400} d ago'


def utc_time(moment: datetime | None) -> str:
    if moment is None:
        return '—'
    return moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S UTC')


def plot_time(moment: datetime) -> str:
    """A UTC wall-clock string plotly reads as a date (it ignores time-zone offsets)."""
    return moment.astimezone(UTC).strftime('%Y-%m-%d %H:%M:%S.%f')[:-3]


def format_value(value: Value) -> str:
    if isinstance(value, bool):
        return 'true' if value else 'false'
    if isinstance(value, int | float):
        if abs(value) >= 1e6 or (value != 0 and abs(value) < 1e-3):
            return f'{value:.4g}'
        return f'{value:.3f}'.rstrip('0').rstrip('.')
    if value is None:
        return '—'
    text = value if isinstance(value, str) else json.dumps(value, separators=(',', ':'))
    return text if len(text) <= MAX_TEXT else text[:MAX_TEXT - 1] + '…'


def compact_values(values: Iterable[tuple[str, Value]], *, limit: int = 4) -> str:
    """'humidity 40 · temperature 21.5', keys sorted, at most `limit` of them."""
    items = sorted(values, key=lambda item: item[0])
    text = ' · '.join(f'{key} {format_value(value)}' for key, value in items[:limit])
    if len(items) > limit:
        text += f' · +{len(items) - limit} more'
    return text or 'no data yet'


def is_number(value: Value) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)
