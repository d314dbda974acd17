"""A device's details and its data-quality panel, updated in place."""

from __future__ import annotations

import json

from nicegui import ui

from app.components.data_quality import DataQuality, detail_field
from app.components.formatting import relative_time, utc_time
from app.components.status_badge import StatusBadge
from app.models.schemas import DevicePublic


class DeviceDetails:
    def __init__(self, device: DevicePublic, *, default_offline_after_s: int) -> None:
        self.device = device
        self._default_offline_s = default_offline_after_s
        with ui.card().classes('w-full gap-2').mark('device-details'):
            with ui.row().classes('w-full items-center gap-3'):
                self.title = ui.label().classes('text-2xl font-semibold').mark('device-title')
                self.badge = StatusBadge(device.status)
            with ui.grid().classes('w-full gap-x-4 gap-y-1 grid-cols-[max-content_1fr]'):
                self.type = detail_field('Type', 'detail-type')
                self.id = detail_field('Id', 'detail-id')
                self.last_seen = detail_field('Last seen', 'detail-last-seen')
                self.created = detail_field('Created', 'detail-created')
                self.timeout = detail_field('Offline after', 'detail-offline-after')
                self.metadata = detail_field('Metadata', 'detail-metadata')
        self.quality = DataQuality(device)
        self.show(device)

    def show(self, device: DevicePublic) -> None:
        self.device = device
        self.title.set_text(device.name)
        self.badge.show(device.status)
        self.type.set_text(device.type)
        self.id.set_text(str(device.id))
        self.created.set_text(utc_time(device.created_at))
        timeout = device.offline_after_s
        self.timeout.set_text(f'{timeout} s' if timeout else f'{self._default_offline_s} s (platform default)')
        self.metadata.set_text(json.dumps(device.metadata, sort_keys=True) if device.metadata else '—')
        self.quality.show(device)
        self.tick()

    def tick(self) -> None:
        seen = self.device.last_seen
        text = f'{relative_time(seen)} ({utc_time(seen)})' if seen else 'never'
        if self.last_seen.text != text:
            self.last_seen.set_text(text)
