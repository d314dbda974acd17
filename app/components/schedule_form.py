"""The rule editor's schedule: any number of weekly windows (days, from, to) in one time zone, row by row."""

from __future__ import annotations

from typing import Any

from nicegui import ui

from app.components.time_zone import ZONES, chosen_zone

DAYS = {0: 'Mon', 1: 'Tue', 2: 'Wed', 3: 'Thu', 4: 'Fri', 5: 'Sat', 6: 'Sun'}


class ScheduleRows:
    def __init__(self, windows: list[dict[str, Any]], zone: str | None) -> None:
        self.rows: list[tuple[ui.row, dict[str, ui.select | ui.input]]] = []
        self.added = 0
        self.zone = ui.select(ZONES, value=zone or chosen_zone(), label='Time zone', with_input=True) \
            .props('outlined dense').classes('w-56').mark('timezone')
        self.column = ui.column().classes('w-full gap-2').mark('schedule-windows')
        for window in windows or [{}]:
            self.add(window)
        ui.button('Add time window', icon='add', on_click=lambda: self.add({})).props('outline') \
            .classes('min-h-[44px]').mark('add-window')

    def add(self, window: dict[str, Any]) -> None:
        mark = f'schedule-{self.added}'
        self.added += 1
        with self.column, ui.row().classes('items-center gap-3') as row:
            fields: dict[str, ui.select | ui.input] = {
                'days': ui.select(DAYS, multiple=True, value=window.get('days', [0, 1, 2, 3, 4]), label='Days')
                .props('outlined dense use-chips').classes('w-64').mark(f'{mark}-days'),
                'start': ui.input('From (HH:MM)', value=str(window.get('start', '08:00'))[:5])
                .props('outlined dense').classes('w-36').mark(f'{mark}-start'),
                'end': ui.input('To (HH:MM)', value=str(window.get('end', '18:00'))[:5])
                .props('outlined dense').classes('w-36').mark(f'{mark}-end'),
            }
            entry = (row, fields)
            ui.button(icon='delete', on_click=lambda: self.remove(entry)).props('flat round') \
                .tooltip('Remove this time window').mark(f'{mark}-remove')
        self.rows.append(entry)

    def remove(self, entry: tuple[ui.row, dict[str, ui.select | ui.input]]) -> None:
        self.rows.remove(entry)
        self.column.remove(entry[0])

    def data(self) -> list[dict[str, Any]]:
        return [{'days': fields['days'].value or [], 'start': fields['start'].value, 'end': fields['end'].value}
                for _, fields in self.rows]

    def clear_errors(self) -> None:
        for _, fields in self.rows:
            for element in fields.values():
                element.props(remove='error error-message')
        self.zone.props(remove='error error-message')

    def show_error(self, index: int | None, name: str, message: str) -> bool:
        element = self.zone if index is None else \
            self.rows[index][1].get(name) if 0 <= index < len(self.rows) else None
        if element is None:
            return False
        element.props(f'error error-message="{message.replace(chr(34), chr(39))}"')
        return True
