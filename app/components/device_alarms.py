"""A device's open alarms and its recent alarm history, live, for the device page."""

from __future__ import annotations

from uuid import UUID

from nicegui import ui

from app.bus import AlarmChanged
from app.components.alarm_table import AlarmTable
from app.models.alarms import AlarmFilter, AlarmPublic
from app.models.schemas import Principal
from app.platform import Platform

HISTORY = 20


class DeviceAlarms:
    def __init__(self, platform: Platform, principal: Principal, device_id: UUID) -> None:
        self.platform = platform
        self.principal = principal
        self.device_id = device_id
        with ui.column().classes('w-full gap-2').mark('device-alarms'):
            ui.label('Open alarms').classes('text-lg font-semibold')
            with ui.element('div').classes('w-full').mark('device-open-alarms'):
                self.open = AlarmTable(platform, principal, load=self.load_open, empty='No open alarms.',
                                       where=self.is_mine)
            ui.label('Alarm history').classes('text-lg font-semibold')
            with ui.element('div').classes('w-full').mark('device-alarm-history'):
                self.history = AlarmTable(platform, principal, load=self.load_history, empty='No cleared alarms.',
                                          where=self.is_mine)

    def is_mine(self, event: AlarmChanged) -> bool:
        return event.device_id == self.device_id

    async def load_open(self) -> list[AlarmPublic]:
        return await self.platform.alarms.find(self.principal, AlarmFilter(status='open', device_id=self.device_id))

    async def load_history(self) -> list[AlarmPublic]:
        return await self.platform.alarms.find(
            self.principal, AlarmFilter(status='cleared', device_id=self.device_id, limit=HISTORY))

    def close(self) -> None:
        self.open.close()
        self.history.close()
