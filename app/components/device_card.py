"""One device on the fleet page: a touch-friendly card that updates in place."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from nicegui import ui

from app.components.formatting import compact_values, relative_time
from app.components.status_badge import StatusBadge
from app.models.schemas import DevicePublic, DeviceStatus, Value


class DeviceCard(ui.card):
    def __init__(self, device: DevicePublic) -> None:
        super().__init__()
        self.device = device
        self.latest: dict[str, tuple[datetime, Value]] = {}
        self.classes('w-full p-3 gap-1').mark('device-card', f'device-{device.id}')
        with self:
            with ui.row().classes('w-full items-center no-wrap gap-2'):
                self.name = ui.link(device.name, f'/devices/{device.id}') \
                    .classes('text-lg font-semibold truncate min-h-[32px] flex-grow').mark('device-link')
                self.disabled = ui.badge('disabled', color='negative').classes('text-sm px-2 py-1') \
                    .mark('device-disabled-badge')
                self.disabled.set_visibility(device.disabled)
                self.badge = StatusBadge(device.status)
            with ui.row().classes('w-full items-center gap-2 text-sm text-grey-8'):
                self.type = ui.label(device.type).mark('device-type')
                ui.label('·')
                self.last_seen = ui.label(relative_time(device.last_seen)).mark('last-seen')
            self.values = ui.label(compact_values([])).classes('text-sm font-mono break-words') \
                .mark('latest-values')

    @property
    def status(self) -> DeviceStatus:
        return self.device.status

    def show(self, device: DevicePublic) -> None:
        self.device = device
        self.name.set_text(device.name)
        self.type.set_text(device.type)
        self.badge.show(device.status)
        self.disabled.set_visibility(device.disabled)
        self.tick()

    def add_values(self, values: Iterable[tuple[str, datetime, Value]]) -> None:
        """Newest timestamp per key wins, as in the latest-values table."""
        for key, ts, value in values:
            known = self.latest.get(key)
            if known is None or known[0] <= ts:
                self.latest[key] = (ts, value)
        self.values.set_text(compact_values((key, value) for key, (_, value) in self.latest.items()))

    def seen(self, moment: datetime) -> None:
        if self.device.last_seen is None or moment > self.device.last_seen:
            self.device = self.device.model_copy(update={'last_seen': moment})
        self.tick()

    def tick(self) -> None:
        text = relative_time(self.device.last_seen)
        if self.last_seen.text != text:
            self.last_seen.set_text(text)

    def matches(self, search: str, status: str) -> bool:
        needle = search.strip().lower()
        if status != 'all' and self.device.status != status:
            return False
        return not needle or needle in self.device.name.lower() or needle in self.device.type.lower()
