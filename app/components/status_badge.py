"""A device's status as a coloured badge: new (grey), online (green), offline (red)."""

from __future__ import annotations

from nicegui import ui

from app.models.schemas import DeviceStatus

COLOURS: dict[str, str] = {'new': 'grey-7', 'online': 'positive', 'offline': 'negative'}


class StatusBadge(ui.badge):
    def __init__(self, status: DeviceStatus) -> None:
        super().__init__('', color=COLOURS['new'])
        self.classes('text-sm px-2 py-1').mark('status-badge')
        self.status: DeviceStatus = 'new'
        self.show(status)

    def show(self, status: DeviceStatus) -> None:
        self.status = status
        self.set_text(status)
        self.props(f'color={COLOURS.get(status, "grey-7")}')
