"""A plotly chart of a device's numeric series with a time-range choice, growing live from bus readings.

The browser never holds more than `max_points` points per series: live points are appended with plotly's
`extendTraces` (only the new points travel), points older than the range are dropped, and a series that would
grow past the cap is halved by averaging neighbours. The page calls `flush()` from its timer (1 or 2 Hz).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from nicegui import ui

from app.bus import ReadingValue
from app.components.formatting import is_number, plot_time
from app.models.schemas import Series

MAX_POINTS = 2000
RANGES: dict[str, timedelta] = {
    '15 min': timedelta(minutes=15), '1 h': timedelta(hours=1), '24 h': timedelta(hours=24), '7 d': timedelta(days=7),
    '30 d': timedelta(days=30),
}
DEFAULT_RANGE = '1 h'
PLOTLY_LOAD_S = 3.0  # before this, a full render instead of extendTraces (plotly.js may still be loading)
Loader = Callable[[datetime, datetime], Awaitable[list[Series]]]


def _trace(key: str, x: list[str], y: list[float | None]) -> dict[str, Any]:
    return {'type': 'scatter', 'mode': 'lines+markers', 'name': key, 'x': x, 'y': y, 'marker': {'size': 4}}


def halve(x: list[str], y: list[float | None]) -> tuple[list[str], list[float | None]]:
    """Average neighbouring points: half the points, same shape."""
    new_x, new_y = [], []
    for index in range(0, len(x), 2):
        pair = [value for value in y[index:index + 2] if value is not None]
        new_x.append(x[index])
        new_y.append(sum(pair) / len(pair) if pair else None)
    return new_x, new_y


class LiveChart:
    def __init__(self, load: Loader, *, max_points: int = MAX_POINTS) -> None:
        self._load = load
        self.max_points = max_points
        self.span = RANGES[DEFAULT_RANGE]
        self.pending: dict[str, list[tuple[datetime, float]]] = {}
        self.figure: dict[str, Any] = {
            'data': [],
            'layout': {'margin': {'l': 50, 'r': 20, 't': 10, 'b': 40}, 'uirevision': 'keep', 'autosize': True,
                       'xaxis': {'type': 'date', 'title': {'text': 'time (UTC)'}},
                       'legend': {'orientation': 'h', 'y': -0.25}},
            'config': {'displaylogo': False, 'responsive': True},
        }
        with ui.card().classes('w-full gap-2').mark('chart-panel'):
            with ui.row().classes('w-full items-center gap-3 flex-wrap'):
                ui.label('History').classes('text-lg font-semibold')
                ui.space()
                self.range = ui.toggle(list(RANGES), value=DEFAULT_RANGE, on_change=self.reload) \
                    .props('no-caps').classes('min-h-[44px]').mark('chart-range')
            self.empty = ui.label('No numeric data in this range.').classes('text-grey-8').mark('chart-empty')
            self.plot = ui.plotly(self.figure).classes('w-full h-96').mark('live-chart')
        self._created = time.monotonic()
        self._loading = False

    @property
    def traces(self) -> list[dict[str, Any]]:
        return self.figure['data']  # type: ignore[no-any-return]

    async def reload(self) -> None:
        self.span = RANGES.get(str(self.range.value), RANGES[DEFAULT_RANGE])
        end = datetime.now(UTC) + timedelta(seconds=1)
        self._loading = True  # live points wait in `pending` meanwhile, so none lands in the figure being replaced
        try:
            series = await self._load(end - self.span, end)
        finally:
            self._loading = False
        self.figure['data'] = [_trace(s.key, [plot_time(ts) for ts in s.ts], list(s.values)) for s in series]
        self._trim(plot_time(end - self.span), plot_time(end - self.span))
        self._render()

    def add(self, readings: Iterable[ReadingValue]) -> None:
        """Queue numeric readings; shown at the next `flush()`."""
        for reading in readings:
            if is_number(reading.value):
                self.pending.setdefault(reading.key, []).append((reading.ts, float(reading.value)))

    def flush(self, *, now: datetime | None = None) -> None:
        """Show what was queued: new points only (extendTraces), or the whole figure when its shape changed."""
        if self._loading:
            return
        since = (now or datetime.now(UTC)) - self.span
        start = plot_time(since)
        by_key = {trace['name']: index for index, trace in enumerate(self.traces)}
        full = False
        extend: dict[int, tuple[list[str], list[float | None]]] = {}
        for key, points in sorted(self.pending.items()):
            index = by_key.get(key)
            last = self.traces[index]['x'][-1] if index is not None and self.traces[index]['x'] else ''
            fresh = sorted((x, value) for x, value in ((plot_time(ts), value) for ts, value in points)
                           if x > max(last, start))
            if not fresh:
                continue
            if index is None:
                index = by_key[key] = len(self.traces)
                self.traces.append(_trace(key, [], []))
                full = True
            xs = [x for x, _ in fresh]
            ys: list[float | None] = [y for _, y in fresh]
            self.traces[index]['x'].extend(xs)
            self.traces[index]['y'].extend(ys)
            extend[index] = (xs, ys)
        self.pending.clear()
        full = self._trim(start, plot_time(since - self.span / 20)) or full
        if full or (extend and time.monotonic() - self._created < PLOTLY_LOAD_S):
            self._render()
        elif extend:
            indices = sorted(extend)
            self.plot.run_plot_method('extendTraces', {'x': [extend[i][0] for i in indices],
                                                       'y': [extend[i][1] for i in indices]}, indices)

    def _trim(self, start: str, slack: str) -> bool:
        """Drop points before `start` once the oldest is before `slack` (so this is rare); halve series over the cap."""
        changed = False
        for trace in self.traces:
            if trace['x'] and trace['x'][0] < slack:
                keep = next((i for i, x in enumerate(trace['x']) if x >= start), len(trace['x']))
                trace['x'], trace['y'] = trace['x'][keep:], trace['y'][keep:]
                changed = True
            while len(trace['x']) > self.max_points:
                trace['x'], trace['y'] = halve(trace['x'], trace['y'])
                changed = True
        return changed

    def _render(self) -> None:
        self.empty.set_visibility(not any(trace['x'] for trace in self.traces))
        self.plot.update()
