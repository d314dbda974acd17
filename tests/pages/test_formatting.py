"""How values and times read on screen, and the chart's downsampling."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from app.components.formatting import compact_values, format_value, relative_time
from app.components.live_chart import halve


def test_relative_time() -> None:
    now = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert relative_time(None, now=now) == 'never'
    assert relative_time(now - timedelta(seconds=3), now=now) == '3 s ago'
    assert relative_time(now - timedelta(minutes=5, seconds=10), now=now) == '5 min ago'
    assert relative_time(now - timedelta(hours=2), now=now) == '2 h ago'
    assert relative_time(now - timedelta(days=3), now=now) == '3 d ago'
    assert relative_time(now + timedelta(seconds=5), now=now) == 'just now'


def test_values_read_compactly() -> None:
    assert format_value(21.5) == '21.5'
    assert format_value(40.0) == '40'
    assert format_value(True) == 'true'
    assert format_value({'a': 1}) == '{"a":1}'
    assert format_value('x' * 100).endswith('…')
    assert compact_values([('temperature', 21.5), ('humidity', 40.0)]) == 'humidity 40 · temperature 21.5'
    assert compact_values([]) == 'no data yet'
    assert compact_values([(f'k{i}', 1.0) for i in range(6)], limit=4).endswith('+2 more')


def test_halving_averages_neighbours() -> None:
    x, y = halve(['a', 'b', 'c', 'd', 'e'], [1.0, 3.0, None, 4.0, 5.0])
    assert x == ['a', 'c', 'e']
    assert y == [2.0, 4.0, 5.0]
