"""Maintenance windows: while one covers a device, rules raise no alarm for it. List, plan, end early, delete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

from fastapi.responses import RedirectResponse
from nicegui import ui
from pydantic import ValidationError

from app.components.device_form import confirm
from app.components.frame import TOUCH, frame
from app.components.time_zone import chosen_zone, input_value, local_time, parse_local, zone_select
from app.models.maintenance import MaintenanceCreate, MaintenancePublic
from app.models.schemas import Principal
from app.pages import session
from app.platform import Platform
from app.services.errors import DomainError
from app.services.permissions import Permission, can


def window_state(window: MaintenancePublic, now: datetime) -> str:
    if window.ends_at <= now:
        return 'ended'
    return 'running' if window.starts_at <= now else 'planned'


class MaintenancePage:
    def __init__(self, platform: Platform, principal: Principal, devices: dict[str, str]) -> None:
        self.platform = platform
        self.principal = principal
        self.devices = devices
        self.editable = can(principal, Permission.MANAGE_RULES)
        ui.link('← Rules', '/rules').classes('text-base min-h-[32px]')
        with ui.row().classes('w-full items-center gap-3 flex-wrap'):
            ui.label('Maintenance windows').classes('text-2xl font-semibold')
            ui.space()
            self.zone = zone_select(on_change=self.refresh)
        ui.label('No alarm is raised for the chosen devices while a window runs.').classes('text-grey-8')
        if self.editable:
            self.form()
        self.listing = ui.column().classes('w-full gap-2').mark('maintenance-list')

    def form(self) -> None:
        now = datetime.now(UTC).replace(second=0, microsecond=0)
        zone = chosen_zone()
        with ui.card().classes('w-full p-4 gap-3').mark('maintenance-form'):
            ui.label('Plan a window').classes('text-lg font-medium')
            self.reason = ui.input('Reason', placeholder='Boiler service visit').props('outlined') \
                .classes('w-full').mark('maintenance-reason')
            with ui.row().classes('w-full items-start gap-3 flex-wrap'):
                self.starts = ui.input('Starts', value=input_value(now, zone)).props('outlined type=datetime-local') \
                    .mark('maintenance-starts')
                self.ends = ui.input('Ends', value=input_value(now + timedelta(hours=2), zone)) \
                    .props('outlined type=datetime-local').mark('maintenance-ends')
            self.everywhere = ui.checkbox('All devices', value=True).classes(TOUCH).mark('maintenance-all')
            self.chosen = ui.select(self.devices, multiple=True, label='Devices').props('outlined use-chips') \
                .classes('w-full').mark('maintenance-devices')
            self.chosen.bind_visibility_from(self.everywhere, 'value', backward=lambda all_: not all_)
            ui.button('Add window', icon='add', on_click=self.create).classes(TOUCH).mark('add-maintenance')

    def _field_error(self, field: str | None, message: str) -> None:
        targets = {'name': self.reason, 'starts_at': self.starts, 'ends_at': self.ends, 'device_ids': self.chosen}
        for name, element in targets.items():
            element.props(remove='error error-message')
            if name == field:
                element.props(f'error error-message="{message}"')
        ui.notify(message, type='negative')

    async def create(self) -> None:
        zone = str(self.zone.value or 'UTC')
        try:
            starts = parse_local(str(self.starts.value or ''), zone)
        except ValueError as error:
            return self._field_error('starts_at', str(error))
        try:
            ends = parse_local(str(self.ends.value or ''), zone)
        except ValueError as error:
            return self._field_error('ends_at', str(error))
        devices = None if self.everywhere.value else [UUID(d) for d in self.chosen.value or []]
        try:
            data = MaintenanceCreate(name=str(self.reason.value or ''), starts_at=starts, ends_at=ends,
                                     device_ids=devices)
            await self.platform.maintenance.create(self.principal, data)
        except ValidationError as error:
            first = error.errors()[0]
            field = str(first['loc'][0]) if first['loc'] else 'ends_at'  # the model's own check: end after start
            message = 'Say why the devices are in maintenance.' if field == 'name' else \
                str(first['msg']).removeprefix('Value error, ')
            return self._field_error(field, message)
        except DomainError as error:
            return self._field_error(error.field, str(error))
        self._field_error(None, '')
        ui.notify('Maintenance window added', type='positive')
        self.reason.set_value('')
        await self.refresh()

    async def refresh(self) -> None:
        windows = await self.platform.maintenance.recent(self.principal)
        zone, now = str(self.zone.value or 'UTC'), datetime.now(UTC)
        self.listing.clear()
        with self.listing:
            if not windows:
                ui.label('No maintenance windows in the last 7 days or planned.').classes('text-grey-8') \
                    .mark('maintenance-empty')
            for window in windows:
                self.row(window, window_state(window, now), zone)

    def row(self, window: MaintenancePublic, state: str, zone: str) -> None:
        names = 'all devices' if window.device_ids is None else \
            ', '.join(sorted(self.devices.get(str(d), '(deleted device)') for d in window.device_ids))
        with ui.card().classes('w-full p-3').mark(f'maintenance-{window.id}'), \
                ui.row().classes('w-full items-center gap-3 flex-wrap'):
            ui.badge(state).props(f'color={"positive" if state == "running" else "grey-7"}') \
                .classes('text-sm px-2 py-1')
            with ui.column().classes('gap-0 grow'):
                ui.label(window.name).classes('text-base font-medium')
                ui.label(f'{local_time(window.starts_at, zone)} → {local_time(window.ends_at, zone)} · {names}') \
                    .classes('text-sm text-grey-8')
            if self.editable and state == 'running':
                ui.button('End now', icon='stop', on_click=lambda w=window.id: self.end(w)).props('outline') \
                    .classes(TOUCH).mark(f'end-{window.id}')
            if self.editable:
                ui.button('Delete', icon='delete', color='negative', on_click=lambda w=window: self.delete(w)) \
                    .props('outline').classes(TOUCH).mark(f'delete-{window.id}')

    async def end(self, window_id: UUID) -> None:
        try:
            await self.platform.maintenance.end_now(self.principal, window_id)
        except DomainError as error:
            ui.notify(str(error), type='negative')
        await self.refresh()

    async def delete(self, window: MaintenancePublic) -> None:
        if not await confirm(f'Delete “{window.name}”?', action='Delete window', marker='confirm-delete-window'):
            return
        try:
            await self.platform.maintenance.delete(self.principal, window.id)
        except DomainError as error:
            ui.notify(str(error), type='negative')
        await self.refresh()


def register(platform: Platform) -> None:
    @ui.page('/maintenance')
    async def maintenance_page() -> RedirectResponse | None:
        principal = await session.signed_in(platform)
        if isinstance(principal, RedirectResponse):
            return principal
        tenant = await platform.tenants.get(principal)
        devices = {str(d.id): d.name for d in await platform.devices.list(principal, limit=500)}
        with frame(title='Maintenance', tenant_name=tenant.name, email=principal.email, link=platform.link,
                   role=principal.role):
            page = MaintenancePage(platform, principal, devices)
        await page.refresh()
        return None

