"""A device's last messages from the raw archive, as received: what it really sent, and why any was refused.

Operators can download the archive (NDJSON) and replay a time range into the pipeline from here.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import urlencode
from uuid import UUID

from nicegui import ui

from app.components.formatting import utc_time
from app.components.frame import TOUCH
from app.models.raw_archive import RawArchiveSettings, RawMessage
from app.models.schemas import Principal
from app.platform import Platform
from app.services.errors import DomainError
from app.services.permissions import Permission, can

SHOWN = 50
PREVIEW_CHARS = 240
SHOWN_BYTES = 8192  # of each payload on the page (refreshed every few seconds while data flows); Download has all
REPLAY_SPANS = {'Last hour': timedelta(hours=1), 'Last 24 hours': timedelta(days=1),
                'Last 7 days': timedelta(days=7)}


def archive_note(settings: RawArchiveSettings, shown: int) -> str:
    if settings.enabled:
        return f'Every payload is kept as received for {settings.days} days.' + ('' if shown else
                                                                               ' Nothing received yet.')
    return ('The raw archive is off for this organisation: payloads are not kept. '
            'An admin can turn it on on the Storage page.') + (' Older archived messages are shown.' if shown else '')


class RawMessages:
    def __init__(self, platform: Platform, principal: Principal, device_id: UUID) -> None:
        self.platform = platform
        self.principal = principal
        self.device_id = device_id
        self.settings = RawArchiveSettings()
        with ui.card().classes('w-full gap-2').mark('raw-messages'):
            with ui.row().classes('w-full items-center gap-2 flex-wrap'):
                ui.label(f'Last {SHOWN} messages').classes('text-lg font-semibold')
                ui.space()
                ui.button('Refresh', icon='refresh', on_click=self.load).props('outline').classes(TOUCH) \
                    .mark('raw-refresh')
                ui.button('Download', icon='download', on_click=self.download).props('outline').classes(TOUCH) \
                    .mark('raw-download')
                if can(principal, Permission.REPLAY_DATA):
                    ui.button('Replay…', icon='replay', on_click=self.ask_replay).props('outline') \
                        .classes(TOUCH).mark('raw-replay')
            self.note = ui.label().classes('text-sm text-grey-8').mark('raw-archive-note')
            self.rows = ui.column().classes('w-full gap-1').mark('raw-list')

    async def load(self) -> None:
        self.settings = await self.platform.raw_archive.settings(self.principal)
        messages = await self.platform.raw_archive.recent(self.principal, self.device_id, limit=SHOWN,
                                                          max_bytes=SHOWN_BYTES)
        self.note.set_text(archive_note(self.settings, len(messages)))
        self.rows.clear()
        with self.rows:
            for message in messages:
                message_row(message)

    def download(self) -> None:
        """Everything kept (the archive's days), streamed by the page's export route (the session cookie signs it)."""
        end = datetime.now(UTC)
        query = urlencode({'start': (end - timedelta(days=self.settings.days)).isoformat(), 'end': end.isoformat()})
        ui.download.from_url(f'/devices/{self.device_id}/raw.ndjson?{query}', f'raw-{self.device_id}.ndjson')

    async def ask_replay(self) -> None:
        with ui.dialog() as dialog, ui.card().classes('max-w-md gap-3').mark('replay-dialog'):
            ui.label('Replay archived messages').classes('text-lg font-semibold')
            ui.label('They are decoded again and written as if they had just arrived at their original time; rules '
                     'evaluate them. Readings already stored are skipped, so replaying twice is harmless.') \
                .classes('text-grey-8')
            span = ui.select(list(REPLAY_SPANS), value='Last hour', label='Messages received').props('outlined') \
                .classes('w-full').mark('replay-span')
            with ui.row().classes('w-full justify-end gap-2'):
                ui.button('Cancel', on_click=lambda: dialog.submit(None)).props('flat').classes(TOUCH)
                ui.button('Replay', icon='replay', on_click=lambda: dialog.submit(span.value)).classes(TOUCH) \
                    .mark('replay-confirm')
        chosen = await dialog
        if not dialog.is_deleted:
            dialog.delete()
        if chosen in REPLAY_SPANS:
            await self.replay(REPLAY_SPANS[chosen])

    async def replay(self, span: timedelta) -> None:
        end = datetime.now(UTC)
        try:
            result = await self.platform.raw_archive.replay(self.principal, self.device_id, start=end - span, end=end)
        except DomainError as error:
            ui.notify(str(error), type='negative')
            return
        text = (f'Replayed {result.replayed:,} of {result.messages:,} messages ({result.readings:,} readings; '
                f'those already stored were skipped)')
        if result.rejected:
            text += f'; {result.rejected:,} still refused'
        if result.truncated:
            text += '; more remain: replay again for the rest'
        ui.notify(text, type='positive', multi_line=True)


def message_row(message: RawMessage) -> None:
    with ui.column().classes('w-full gap-0 border-b border-gray-200 py-1').mark('raw-message'):
        with ui.row().classes('w-full items-center gap-2 flex-wrap text-sm'):
            ui.label(utc_time(message.received_at)).classes('text-grey-8')
            ui.badge(message.transport.upper(), color='grey-7')
            if message.kind == 'status':
                ui.badge('status', color='blue-grey-6')
            if message.accepted:
                ui.label('accepted').classes('text-positive')
            else:
                ui.label(f'rejected: {message.reason}').classes('text-negative').mark('raw-rejected')
            ui.label(f'{message.size:,} B').classes('text-grey-7')
        preview = message.payload if len(message.payload) <= PREVIEW_CHARS else message.payload[:PREVIEW_CHARS] + '…'
        ui.label(preview).classes('font-mono text-sm break-all whitespace-pre-wrap').mark('raw-payload')
        if len(message.payload) > PREVIEW_CHARS:
            cut = message.size > SHOWN_BYTES
            with ui.expansion(f'First {SHOWN_BYTES // 1024} KB' if cut else 'Whole payload').classes('w-full text-sm'):
                ui.label(message.payload).classes('font-mono text-sm break-all whitespace-pre-wrap')
