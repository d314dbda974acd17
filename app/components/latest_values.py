"""One card per telemetry key: the newest value and when it was measured."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from nicegui import ui

from app.components.formatting import format_value, relative_time, utc_time
from app.models.schemas import Value


class _ValueCard:
    def __init__(self, key: str) -> None:
        self.ts: datetime | None = None
        with ui.card().classes('p-3 gap-0 min-w-[10rem]').mark('latest-card', f'latest-{key}') as self.card:
            ui.label(key).classes('text-sm text-grey-7 break-all')
            self.value = ui.label().classes('text-2xl font-semibold break-all').mark('latest-value')
            self.time = ui.label().classes('text-xs text-grey-7').mark('latest-time')

    def show(self, ts: datetime, value: Value) -> None:
        self.ts = ts
        self.value.set_text(format_value(value))
        self.tick()

    def tick(self) -> None:
        text = f'{relative_time(self.ts)} · {utc_time(self.ts)}'
        if self.time.text != text:
            self.time.set_text(text)


class LatestValues:
    def __init__(self) -> None:
        self.cards: dict[str, _ValueCard] = {}
        with ui.column().classes('w-full gap-2'):
            ui.label('Latest values').classes('text-lg font-semibold')
            self.empty = ui.label('No telemetry yet.').classes('text-grey-8').mark('latest-empty')
            self.row = ui.row().classes('w-full gap-3').mark('latest-values')

    def update(self, values: Iterable[tuple[str, datetime, Value]]) -> None:
        """Newest timestamp per key wins; cards appear for keys seen for the first time."""
        for key, ts, value in values:
            card = self.cards.get(key)
            if card is None:
                with self.row:
                    card = self.cards[key] = _ValueCard(key)
                ordered = sorted(self.cards)
                card.card.move(self.row, target_index=ordered.index(key))
            if card.ts is None or card.ts <= ts:
                card.show(ts, value)
        self.empty.set_visibility(not self.cards)

    def tick(self) -> None:
        for card in self.cards.values():
            card.tick()
