"""The storage page for admins: how long data is kept (raw, 1-minute, 1-hour), the raw archive, and how much
disk it takes."""

from __future__ import annotations

from fastapi.responses import RedirectResponse
from nicegui import ui

from app.components.frame import TOUCH, frame
from app.models.raw_archive import RawArchiveSettings
from app.models.schemas import Principal
from app.models.storage import RetentionSettings, StorageUsage
from app.pages import session
from app.platform import Platform
from app.services.errors import DomainError
from app.services.permissions import Permission, can


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ('B', 'kB', 'MB', 'GB', 'TB'):
        if size < 1000 or unit == 'TB':
            return f'{size:.0f} {unit}' if unit == 'B' else f'{size:.1f} {unit}'
        size /= 1000
    return f'{size:.1f} TB'


class StorageView:
    def __init__(self, platform: Platform, principal: Principal, retention: RetentionSettings,
                 archive: RawArchiveSettings) -> None:
        self.platform = platform
        self.principal = principal
        with ui.card().classes('w-full max-w-xl gap-3').mark('retention-card'):
            ui.label('Retention (days)').classes('text-lg font-semibold')
            self.raw = ui.number('Raw readings', value=retention.raw_days, min=2, max=3650, precision=0) \
                .props('outlined').mark('raw-days')
            self.minute = ui.number('1-minute rollups', value=retention.minute_days, min=2, max=3650, precision=0) \
                .props('outlined').mark('minute-days')
            self.hour = ui.number('1-hour rollups', value=retention.hour_days, min=2, max=3650, precision=0) \
                .props('outlined').mark('hour-days')
            ui.label('Older data is deleted by the storage job within about ten minutes of a change.') \
                .classes('text-sm text-grey-8')
            ui.button('Save', icon='save', on_click=self.save).classes(TOUCH).mark('save-retention')
        with ui.card().classes('w-full max-w-xl gap-3').mark('raw-archive-card'):
            ui.label('Raw archive').classes('text-lg font-semibold')
            ui.label('Keeps every inbound payload exactly as received, accepted or rejected: shown on each device '
                     'page (last 50 messages), downloadable, and replayable into the pipeline. Costs disk and some '
                     'ingest speed.').classes('text-sm text-grey-8')
            self.archive_on = ui.switch('Keep raw payloads', value=archive.enabled).mark('raw-archive-enabled')
            self.archive_days = ui.number('Days kept', value=archive.days, min=1, max=365, precision=0) \
                .props('outlined').mark('raw-archive-days')
            ui.button('Save', icon='save', on_click=self.save_archive).classes(TOUCH).mark('save-raw-archive')
        with ui.card().classes('w-full max-w-xl gap-1').mark('usage-card'):
            ui.label('Disk used').classes('text-lg font-semibold')
            self.usage = ui.column().classes('gap-1')

    async def save(self) -> None:
        try:
            settings = RetentionSettings.model_construct(
                raw_days=int(self.raw.value or 0), minute_days=int(self.minute.value or 0),
                hour_days=int(self.hour.value or 0))
            await self.platform.storage.update_retention(self.principal, settings)
        except DomainError as error:
            ui.notify(str(error), type='negative')
            return
        ui.notify('Retention saved', type='positive')

    async def save_archive(self) -> None:
        try:
            settings = RawArchiveSettings.model_construct(enabled=bool(self.archive_on.value),
                                                          days=int(self.archive_days.value or 0))
            await self.platform.raw_archive.update_settings(self.principal, settings)
        except DomainError as error:
            ui.notify(str(error), type='negative')
            return
        ui.notify('Raw archive on' if settings.enabled else 'Raw archive off', type='positive')

    async def show_usage(self) -> None:
        usage: StorageUsage = await self.platform.storage.usage(self.principal)
        self.usage.clear()
        with self.usage:
            for label, table, mark in (('Raw readings', usage.raw, 'usage-raw'),
                                       ('1-minute rollups', usage.minute, 'usage-minute'),
                                       ('1-hour rollups', usage.hour, 'usage-hour'),
                                       ('Raw archive', usage.archive, 'usage-archive')):
                ui.label(f'{label}: {table.rows:,} rows, about {human_bytes(table.bytes)}').mark(mark)
            ui.label(f'Total: about {human_bytes(usage.total_bytes)} '
                     f'({"TimescaleDB" if usage.backend == "timescaledb" else "PostgreSQL partitions"})') \
                .classes('font-semibold').mark('usage-total')


def register(platform: Platform) -> None:
    @ui.page('/storage')
    async def storage_page() -> RedirectResponse | None:
        principal = await session.signed_in(platform)
        if isinstance(principal, RedirectResponse):
            return principal
        tenant = await platform.tenants.get(principal)
        with frame(title='Storage', tenant_name=tenant.name, email=principal.email, link=platform.link,
                   role=principal.role):
            ui.label('Storage').classes('text-2xl font-semibold')
            if not can(principal, Permission.MANAGE_STORAGE):
                ui.label('Only an admin can manage data retention.').classes('text-grey-8').mark('not-allowed')
                return None
            view = StorageView(platform, principal, await platform.storage.retention(principal),
                               await platform.raw_archive.settings(principal))
            await view.show_usage()
        return None
