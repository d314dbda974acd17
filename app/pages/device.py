"""The device page: details, edit/delete/rotate, data quality, latest values, a live chart, alarms and the
last raw messages."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from urllib.parse import urlencode
from uuid import UUID

from fastapi.responses import PlainTextResponse, RedirectResponse, Response, StreamingResponse
from nicegui import Client, app, ui

from app.bus import DeviceChanged, TelemetryStored
from app.components.credentials_panel import show_credentials
from app.components.device_alarms import DeviceAlarms
from app.components.device_details import DeviceDetails
from app.components.device_form import DeviceFields, confirm, open_device_dialog
from app.components.frame import TOUCH, frame
from app.components.latest_values import LatestValues
from app.components.live_chart import LiveChart
from app.components.raw_messages import RawMessages
from app.models.schemas import DeviceCredentials, DevicePublic, DeviceUpdate, Principal, Series
from app.pages import session
from app.platform import Platform
from app.services.errors import DomainError, NotFound

REFETCH_EVERY_S = 2.0  # counters and last-seen from the database while telemetry flows


class DeviceView:
    def __init__(self, platform: Platform, principal: Principal, device: DevicePublic) -> None:
        self.platform = platform
        self.principal = principal
        self.device = device
        self.deleted = False
        self._refetched = time.monotonic()
        self._stale = False  # data arrived since the last refetch of counters and raw messages
        with ui.row().classes('w-full items-center gap-2 flex-wrap'):
            ui.link('← Fleet', '/').classes('text-base min-h-[32px]').mark('back-to-fleet')
            ui.space()
            if principal.can_write:
                ui.button('Edit', icon='edit', on_click=self.edit).classes(TOUCH).mark('edit-device')
                ui.button('Rotate token', icon='key', on_click=self.rotate).props('outline') \
                    .classes(TOUCH).mark('rotate-token')
                self.toggle_button = ui.button(on_click=self.toggle_disabled).props('outline') \
                    .classes(TOUCH).mark('toggle-device')
                ui.button('Delete', icon='delete', color='negative', on_click=self.delete) \
                    .props('outline').classes(TOUCH).mark('delete-device')
        self.gone = ui.label('This device has been deleted.').classes('text-negative text-lg').mark('device-deleted')
        self.gone.set_visibility(False)
        self.disabled_note = ui.label('Disabled: its data is refused and it cannot connect to the broker.') \
            .classes('text-negative text-lg').mark('device-disabled')
        self.show_disabled()
        self.details = DeviceDetails(device, default_offline_after_s=platform.settings.device_offline_after_s)
        self.latest = LatestValues()
        self.chart = LiveChart(self.load_series)
        with ui.row().classes('w-full justify-end'):
            ui.button('Download CSV', icon='download', on_click=self.download).props('outline') \
                .classes(TOUCH).mark('download-csv')
        self.alarms = DeviceAlarms(platform, principal, device.id)
        self.raw = RawMessages(platform, principal, device.id)
        bus = platform.bus
        self.stored = bus.telemetry_stored.subscribe(maxsize=2000, where=self.is_mine, device_id=device.id)
        self.changed = bus.device_changed.subscribe(maxsize=100, where=self.is_mine, device_id=device.id)
        ui.timer(0.1, self.load, once=True)
        ui.timer(0.5, self.drain)
        ui.timer(1.0, self.tick)

    def is_mine(self, event: TelemetryStored | DeviceChanged) -> bool:
        return event.tenant_id == self.principal.tenant_id and event.device_id == self.device.id

    def close(self) -> None:
        self.stored.close()
        self.changed.close()
        self.alarms.close()

    async def load_series(self, start: datetime, end: datetime) -> list[Series]:
        return await self.platform.telemetry.chart(self.principal, self.device.id, start=start, end=end)

    def download(self) -> None:
        """Every reading of the chart's range, streamed by the export route (the session cookie signs it)."""
        end = datetime.now(UTC)
        query = urlencode({'start': (end - self.chart.span).isoformat(), 'end': end.isoformat()})
        ui.download.from_url(f'/devices/{self.device.id}/export.csv?{query}', f'{self.device.name}.csv')

    async def load(self) -> None:
        try:
            latest = await self.platform.telemetry.latest(self.principal, self.device.id)
            self.latest.update((value.key, value.ts, value.value) for value in latest)
            await self.chart.reload()
            await self.raw.load()
        except NotFound:
            self.mark_deleted()

    async def drain(self) -> None:
        if self.deleted:
            return
        changes = self.changed.drain()
        stored = self.stored.drain()
        for event in stored:
            self.latest.update((reading.key, reading.ts, reading.value) for reading in event.readings)
            self.chart.add(event.readings)
        self.chart.flush()
        if any(change.change == 'deleted' for change in changes):
            self.mark_deleted()
        elif changes or ((stored or self._stale) and time.monotonic() - self._refetched >= REFETCH_EVERY_S):
            await self.refetch()
        elif stored:
            self._stale = True  # the last of a burst is shown once the interval is up, even if nothing follows

    async def refetch(self) -> None:
        self._refetched = time.monotonic()
        self._stale = False
        try:
            self.device = await self.platform.devices.get(self.principal, self.device.id)
        except NotFound:
            self.mark_deleted()
            return
        self.details.show(self.device)
        self.show_disabled()
        await self.raw.load()

    def show_disabled(self) -> None:
        self.disabled_note.set_visibility(self.device.disabled)
        if self.principal.can_write:
            self.toggle_button.set_text('Enable' if self.device.disabled else 'Disable')
            self.toggle_button.props(f'icon={"play_arrow" if self.device.disabled else "block"}')

    async def toggle_disabled(self) -> None:
        disable = not self.device.disabled
        if disable and not await confirm(f'Disable “{self.device.name}”?', action='Disable device',
                                         marker='confirm-disable',
                                         detail='Its data is refused and it is disconnected until you enable it.'):
            return
        try:
            self.device = await self.platform.devices.set_disabled(self.principal, self.device.id, disable)
        except DomainError as error:
            ui.notify(str(error), type='negative')
            return
        self.show_disabled()
        ui.notify('Device disabled' if disable else 'Device enabled', type='positive')

    def tick(self) -> None:
        self.details.tick()
        self.latest.tick()

    def mark_deleted(self) -> None:
        self.deleted = True
        self.gone.set_visibility(True)
        self.close()

    def edit(self) -> None:
        async def save(fields: DeviceFields) -> DeviceCredentials | None:
            update = DeviceUpdate(name=fields.name, type=fields.type, offline_after_s=fields.offline_after_s)
            self.device = await self.platform.devices.update(self.principal, self.device.id, update)
            self.details.show(self.device)
            ui.notify('Device saved', type='positive')
            return None

        current = DeviceFields(name=self.device.name, type=self.device.type,
                               offline_after_s=self.device.offline_after_s)
        open_device_dialog(title='Edit device', action='Save', submit=save, initial=current, with_timeout=True)

    async def delete(self) -> None:
        if not await confirm(f'Delete “{self.device.name}”?', action='Delete device', marker='confirm-delete',
                             detail='Its telemetry is deleted too and it can no longer connect.'):
            return
        try:
            await self.platform.devices.delete(self.principal, self.device.id)
        except DomainError as error:
            ui.notify(str(error), type='negative')
            return
        ui.notify('Device deleted', type='positive')
        ui.navigate.to('/')

    async def rotate(self) -> None:
        if not await confirm('Rotate the token?', action='Rotate token', marker='confirm-rotate',
                             detail='The current token stops working at once; the device needs the new one.'):
            return
        try:
            credentials = await self.platform.devices.rotate_token(self.principal, self.device.id)
        except DomainError as error:
            ui.notify(str(error), type='negative')
            return
        show_credentials(credentials, title='New credentials')


def not_found(device_id: str) -> None:
    with ui.column().classes('w-full items-center gap-3 py-12').mark('device-not-found'):
        ui.icon('search_off', size='xl', color='grey-7')
        ui.label('Device not found').classes('text-2xl font-semibold')
        ui.label(f'No device with id “{device_id[:80]}” in this organisation.').classes('text-grey-8 break-all')
        ui.button('Back to the fleet', on_click=lambda: ui.navigate.to('/')).classes(TOUCH)


Export = Callable[[Principal], Awaitable[AsyncIterator[bytes]]]


async def session_download(platform: Platform, export: Export, *, media_type: str, filename: str) -> Response:
    """A page's download: the browser's sign-in session instead of an API token; errors as plain text."""
    principal = await session.current_principal(platform)
    if principal is None:
        return PlainTextResponse('Sign in first.', status_code=401)
    try:
        body = await export(principal)
    except DomainError as error:
        return PlainTextResponse(str(error), status_code=error.status)
    return StreamingResponse(body, media_type=media_type,
                             headers={'Content-Disposition': f'attachment; filename="{filename}"'})


def register(platform: Platform) -> None:
    @app.get('/devices/{device_id}/export.csv', include_in_schema=False)
    async def export_csv(device_id: UUID, start: datetime, end: datetime) -> Response:
        return await session_download(
            platform, lambda principal: platform.export.csv(principal, device_id, start=start, end=end),
            media_type='text/csv', filename=f'telemetry-{device_id}.csv')

    @app.get('/devices/{device_id}/raw.ndjson', include_in_schema=False)
    async def export_raw(device_id: UUID, start: datetime, end: datetime) -> Response:
        return await session_download(
            platform, lambda principal: platform.raw_archive.export(principal, device_id, start=start, end=end),
            media_type='application/x-ndjson', filename=f'raw-{device_id}.ndjson')

    @ui.page('/devices/{device_id}')
    async def device_page(device_id: str, client: Client) -> RedirectResponse | None:
        principal = await session.signed_in(platform)
        if isinstance(principal, RedirectResponse):
            return principal
        tenant = await platform.tenants.get(principal)
        device: DevicePublic | None = None
        with contextlib.suppress(ValueError, NotFound):
            device = await platform.devices.get(principal, UUID(device_id))
        with frame(title=device.name if device else 'Device not found', tenant_name=tenant.name,
                   email=principal.email, link=platform.link, role=principal.role):
            if device is None:
                not_found(device_id)
                return None
            view = DeviceView(platform, principal, device)
        client.on_delete(view.close)
        return None
