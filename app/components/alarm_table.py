"""A live list of alarms with touch-sized Acknowledge / Clear buttons and a note dialog; used on /alarms and
on the device page. It reloads (through the service) whenever an alarm of the tenant changes."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from nicegui import ui

from app.bus import AlarmChanged
from app.components.formatting import relative_time, utc_time
from app.components.frame import TOUCH
from app.models.alarms import AlarmPublic
from app.models.schemas import Principal
from app.platform import Platform
from app.services.errors import DomainError
from app.services.permissions import Permission, can

SEVERITY_COLOURS = {'critical': 'red-9', 'major': 'deep-orange-8', 'minor': 'amber-9', 'warning': 'yellow-9',
                    'info': 'blue-7'}
STATUS_COLOURS = {'active': 'negative', 'acknowledged': 'warning', 'cleared': 'positive'}


async def ask_note(title: str, *, label: str, action: str, host: ui.element) -> str | None:
    """A dialog with one text area; the text, or None when cancelled."""
    with host, ui.dialog() as dialog, ui.card().classes('w-full max-w-md gap-3'):
        ui.label(title).classes('text-lg font-semibold')
        note = ui.textarea(label).props('outlined autogrow').classes('w-full').mark('alarm-note')
        with ui.row().classes('w-full justify-end gap-2'):
            ui.button('Cancel', on_click=lambda: dialog.submit(None)).props('flat').classes(TOUCH)
            ui.button(action, on_click=lambda: dialog.submit(note.value or '')).classes(TOUCH).mark('confirm-note')
    result = await dialog
    if not dialog.is_deleted:
        dialog.delete()
    return result if isinstance(result, str) else None


class AlarmActions:
    """Acknowledge and clear with a note, reporting errors as notifications.

    Its dialogs live in a container made where it is made, not in the alarm's row: a live reload clears the rows,
    and would take an open dialog (and the person's half-typed note) with them."""

    def __init__(self, platform: Platform, principal: Principal) -> None:
        self.platform = platform
        self.principal = principal
        self._people: dict[UUID, str] | None = None
        self._dialogs = ui.element('div')

    @property
    def may_acknowledge(self) -> bool:
        return can(self.principal, Permission.ACKNOWLEDGE_ALARMS)

    @property
    def may_clear(self) -> bool:
        return can(self.principal, Permission.MANAGE_ALARMS)

    may_assign = may_clear

    async def people(self) -> dict[UUID, str]:
        """Who an alarm can be given to, by id (loaded once per page)."""
        if self._people is None:
            self._people = {person.id: person.name for person in await self.platform.alarms.assignees(self.principal)}
        return self._people

    async def assign(self, alarm: AlarmPublic) -> None:
        people = await self.people()
        choices = {'': 'Nobody', **{str(person): name for person, name in people.items()}}
        current = str(alarm.assignee_id or '')
        with self._dialogs, ui.dialog() as dialog, ui.card().classes('w-full max-w-md gap-3'):
            ui.label('Assign alarm').classes('text-lg font-semibold')
            chosen = ui.select(choices, value=current if current in choices else '', label='Assign to') \
                .props('outlined').classes('w-full').mark('assignee-choice')
            with ui.row().classes('w-full justify-end gap-2'):
                ui.button('Cancel', on_click=lambda: dialog.submit(None)).props('flat').classes(TOUCH)
                ui.button('Assign', on_click=lambda: dialog.submit(chosen.value or '')).classes(TOUCH) \
                    .mark('confirm-assign')
        result = await dialog
        if not dialog.is_deleted:
            dialog.delete()
        if isinstance(result, str):
            user_id = UUID(result) if result else None
            await self._run(self.platform.alarms.assign(self.principal, alarm.id, user_id=user_id),
                            f'Assigned to {people[user_id]}' if user_id in people else 'Unassigned')

    async def acknowledge(self, alarm_id: UUID) -> None:
        note = await ask_note('Acknowledge alarm', label='Note (optional)', action='Acknowledge',
                              host=self._dialogs)
        if note is not None:
            await self._run(self.platform.alarms.acknowledge(self.principal, alarm_id, note=note), 'Acknowledged')

    async def clear(self, alarm_id: UUID) -> None:
        reason = await ask_note('Clear alarm', label='Why (optional)', action='Clear', host=self._dialogs)
        if reason is not None:
            await self._run(self.platform.alarms.clear(self.principal, alarm_id, reason=reason), 'Cleared')

    async def _run(self, work: Awaitable[AlarmPublic], done: str) -> None:
        try:
            await work
            ui.notify(done, type='positive')
        except DomainError as error:
            ui.notify(str(error), type='negative')


class AlarmTable:
    def __init__(self, platform: Platform, principal: Principal, *,
                 load: Callable[[], Awaitable[list[AlarmPublic]]], empty: str = 'No alarms.',
                 where: Callable[[AlarmChanged], bool] | None = None) -> None:
        self.actions = AlarmActions(platform, principal)
        self._load = load
        self._empty = empty
        self.column = ui.column().classes('w-full gap-2').mark('alarm-table')
        tenant = principal.tenant_id
        self.changes = platform.bus.alarm_changed.subscribe(maxsize=1000, where=where, tenant_id=tenant)
        ui.timer(0.05, self.reload, once=True)
        ui.timer(0.5, self.drain)

    def close(self) -> None:
        self.changes.close()

    async def drain(self) -> None:
        if self.changes.drain():
            await self.reload()

    async def reload(self) -> None:
        alarms = await self._load()
        people = await self.actions.people() if any(alarm.assignee_id for alarm in alarms) else {}
        self.column.clear()
        with self.column:
            if not alarms:
                ui.label(self._empty).classes('text-grey-8').mark('alarms-empty')
            for alarm in alarms:
                self._row(alarm, people)

    def _row(self, alarm: AlarmPublic, people: dict[UUID, str]) -> None:
        with ui.card().classes('w-full p-3').mark(f'alarm-{alarm.id}'), \
                ui.row().classes('w-full items-center gap-3 flex-wrap'):
            ui.badge(alarm.severity, color=SEVERITY_COLOURS.get(alarm.severity, 'grey-7')) \
                .classes('text-sm px-2 py-1').mark('alarm-severity')
            ui.badge(alarm.status, color=STATUS_COLOURS.get(alarm.status, 'grey-7')) \
                .classes('text-sm px-2 py-1').mark(f'alarm-status-{alarm.id}')
            with ui.column().classes('gap-0 grow min-w-[12rem]'):
                ui.link(f'{alarm.rule_name} · {alarm.device_name}', f'/alarms/{alarm.id}') \
                    .classes('text-base font-medium').mark('alarm-link')
                times = f'{alarm.count} time{"s" if alarm.count != 1 else ""}'
                detail = f'{alarm.threshold or ""} · value {alarm.value} · seen {times}'
                ui.label(detail).classes('text-sm text-grey-8')
                ui.label(f'last {relative_time(alarm.last_seen)}').classes('text-sm text-grey-7') \
                    .tooltip(utc_time(alarm.last_seen))
                if alarm.assignee_id is not None:
                    ui.label(f'Assigned to {people.get(alarm.assignee_id, "a former user")}') \
                        .classes('text-sm').mark(f'assignee-{alarm.id}')
            if alarm.status == 'active' and self.actions.may_acknowledge:
                ui.button('Acknowledge', icon='done', on_click=lambda a=alarm.id: self.actions.acknowledge(a)) \
                    .props('outline').classes(TOUCH).mark(f'ack-{alarm.id}')
            if alarm.status != 'cleared' and self.actions.may_assign:
                ui.button('Assign', icon='person', on_click=lambda a=alarm: self.actions.assign(a)) \
                    .props('outline').classes(TOUCH).mark(f'assign-{alarm.id}')
            if alarm.status != 'cleared' and self.actions.may_clear:
                ui.button('Clear', icon='check_circle', on_click=lambda a=alarm.id: self.actions.clear(a)) \
                    .props('outline color=positive').classes(TOUCH).mark(f'clear-{alarm.id}')
