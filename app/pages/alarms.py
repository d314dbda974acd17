"""The alarms page (live, filterable, acknowledge and clear from the list) and an alarm's detail page."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from uuid import UUID

from fastapi.responses import RedirectResponse
from nicegui import Client, ui

from app.components.alarm_table import AlarmActions, AlarmTable
from app.components.formatting import utc_time
from app.components.frame import TOUCH, frame
from app.models.alarm_notice import SEVERITIES
from app.models.alarms import AlarmDetail, AlarmEventPublic, AlarmFilter, AlarmPublic
from app.models.schemas import Principal
from app.pages import session
from app.platform import Platform
from app.services.errors import DomainError, NotFound

STATUSES = {'open': 'Open', 'active': 'Active', 'acknowledged': 'Acknowledged', 'cleared': 'Cleared', 'all': 'All'}
PERIODS = {'24h': 'Last 24 h', '7d': 'Last 7 days', '30d': 'Last 30 days', 'all': 'Any time'}
PERIOD_DAYS = {'24h': 1, '7d': 7, '30d': 30}
ASSIGNEES = {'': 'Anyone', 'mine': 'Assigned to me', 'none': 'Unassigned'}


class AlarmsView:
    def __init__(self, platform: Platform, principal: Principal, devices: dict[str, str]) -> None:
        self.platform = platform
        self.principal = principal
        ui.label('Alarms').classes('text-2xl font-semibold')
        with ui.row().classes('w-full items-center gap-3 flex-wrap'):
            self.status = ui.toggle(STATUSES, value='open', on_change=self.refresh) \
                .props('no-caps').classes(TOUCH).mark('status-filter')
            self.severity = ui.select({'': 'Any severity', **{s: s for s in SEVERITIES}}, value='',
                                      on_change=self.refresh).props('outlined dense').classes('w-40') \
                .mark('severity-filter')
            self.device = ui.select({'': 'Any device', **devices}, value='', on_change=self.refresh) \
                .props('outlined dense').classes('w-48').mark('device-filter')
            self.period = ui.select(PERIODS, value='7d', on_change=self.refresh) \
                .props('outlined dense').classes('w-40').mark('period-filter')
            self.assignee = ui.select(ASSIGNEES, value='', on_change=self.refresh) \
                .props('outlined dense').classes('w-44').mark('assignee-filter')
        self.table = AlarmTable(platform, principal, load=self.load, empty='No alarms match the filter.')

    def close(self) -> None:
        self.table.close()

    async def refresh(self) -> None:
        await self.table.reload()

    async def load(self) -> list[AlarmPublic]:
        status = str(self.status.value or 'open')
        days = PERIOD_DAYS.get(str(self.period.value))
        query = AlarmFilter(
            status=None if status == 'all' else status,
            severity=self.severity.value or None, device_id=UUID(self.device.value) if self.device.value else None,
            since=datetime.now(UTC) - timedelta(days=days) if days else None,
            assignee_id=self.principal.user_id if self.assignee.value == 'mine' else None,
            unassigned=self.assignee.value == 'none')
        return await self.platform.alarms.find(self.principal, query)


def history_line(event: AlarmEventPublic) -> str:
    """'acknowledged by ana@example.com: On my way', 'assigned to bo@example.com by ana@example.com'."""
    who = f' by {event.actor}' if event.actor else ''
    note = f': {event.note}' if event.note else ''
    if event.kind == 'assigned':
        target = event.data.get('email') or ('a user' if event.data.get('user_id') else None)
        return f'assigned to {target}{who}' if target else f'unassigned{who}'
    return f'{event.kind}{who}{note}'


class AlarmDetailView:
    def __init__(self, platform: Platform, principal: Principal, alarm: AlarmDetail,
                 people: dict[UUID, str]) -> None:
        self.platform = platform
        self.principal = principal
        self.alarm_id = alarm.id
        self.actions = AlarmActions(platform, principal)
        self.people = people
        ui.link('← Alarms', '/alarms').classes('text-base min-h-[32px]')
        self.body = ui.column().classes('w-full gap-3').mark('alarm-detail')
        self.changes = platform.bus.alarm_changed.subscribe(maxsize=100, where=lambda e: e.alarm_id == alarm.id)
        ui.timer(0.5, self.drain)
        self.show(alarm)

    def close(self) -> None:
        self.changes.close()

    async def drain(self) -> None:
        if self.changes.drain():
            await self.reload()

    async def reload(self) -> None:
        with contextlib.suppress(NotFound):
            alarm = await self.platform.alarms.get(self.principal, self.alarm_id)
            self.people = await self.actions.people()
            self.show(alarm)

    def show(self, alarm: AlarmDetail) -> None:
        self.body.clear()
        with self.body:
            ui.label(f'{alarm.rule_name} · {alarm.device_name}').classes('text-2xl font-semibold')
            ui.label(f'{alarm.severity} · {alarm.status} · {alarm.threshold or ""} · value {alarm.value} · '
                     f'seen {alarm.count} times').classes('text-grey-8').mark('alarm-summary')
            with ui.row().classes('gap-2'):
                if alarm.status == 'active' and self.actions.may_acknowledge:
                    ui.button('Acknowledge', icon='done', on_click=self.acknowledge).classes(TOUCH) \
                        .mark('detail-ack')
                if alarm.status != 'cleared' and self.actions.may_clear:
                    ui.button('Clear', icon='check_circle', on_click=self.clear).props('color=positive') \
                        .classes(TOUCH).mark('detail-clear')
                if alarm.status != 'cleared' and self.actions.may_assign:
                    ui.button('Assign', icon='person', on_click=lambda: self.assign(alarm)).props('outline') \
                        .classes(TOUCH).mark('detail-assign')
                ui.link('Device', f'/devices/{alarm.device_id}').classes('self-center')
            assignee = 'nobody' if alarm.assignee_id is None else self.people.get(alarm.assignee_id, 'a former user')
            ui.label(f'Assigned to {assignee}').classes('text-base').mark('detail-assignee')
            ui.label('History').classes('text-lg font-semibold')
            with ui.column().classes('w-full gap-1').mark('alarm-history'):
                for event in alarm.history:
                    ui.label(f'{utc_time(event.at)} · {history_line(event)}').classes('text-sm')
            if self.actions.may_acknowledge:
                with ui.row().classes('w-full items-end gap-2'):
                    self.comment = ui.input('Comment').props('outlined').classes('grow').mark('comment-text')
                    ui.button('Add comment', on_click=self.add_comment).classes(TOUCH).mark('add-comment')

    async def acknowledge(self) -> None:
        await self.actions.acknowledge(self.alarm_id)
        await self.reload()

    async def assign(self, alarm: AlarmDetail) -> None:
        await self.actions.assign(alarm)
        await self.reload()

    async def clear(self) -> None:
        await self.actions.clear(self.alarm_id)
        await self.reload()

    async def add_comment(self) -> None:
        try:
            await self.platform.alarms.comment(self.principal, self.alarm_id, text_=self.comment.value or '')
        except DomainError as error:
            ui.notify(str(error), type='negative')
            return
        await self.reload()


def register(platform: Platform) -> None:
    @ui.page('/alarms')
    async def alarms_page(client: Client) -> RedirectResponse | None:
        principal = await session.signed_in(platform)
        if isinstance(principal, RedirectResponse):
            return principal
        tenant = await platform.tenants.get(principal)
        devices = {str(d.id): d.name for d in await platform.devices.list(principal, limit=500)}
        with frame(title='Alarms', tenant_name=tenant.name, email=principal.email, link=platform.link,
                   role=principal.role):
            view = AlarmsView(platform, principal, devices)
        client.on_delete(view.close)
        return None

    @ui.page('/alarms/{alarm_id}')
    async def alarm_page(alarm_id: str, client: Client) -> RedirectResponse | None:
        principal = await session.signed_in(platform)
        if isinstance(principal, RedirectResponse):
            return principal
        tenant = await platform.tenants.get(principal)
        alarm: AlarmDetail | None = None
        with contextlib.suppress(ValueError, NotFound):
            alarm = await platform.alarms.get(principal, UUID(alarm_id))
        with frame(title='Alarm', tenant_name=tenant.name, email=principal.email, link=platform.link,
                   role=principal.role):
            if alarm is None:
                ui.label('Alarm not found').classes('text-2xl font-semibold').mark('alarm-not-found')
                ui.link('← Alarms', '/alarms')
                return None
            people = {person.id: person.name for person in await platform.alarms.assignees(principal)}
            view = AlarmDetailView(platform, principal, alarm, people)
        client.on_delete(view.close)
        return None
