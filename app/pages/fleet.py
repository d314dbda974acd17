"""The fleet page: every device of the tenant as a card, searchable, filterable and live."""

from __future__ import annotations

from uuid import UUID

from fastapi.responses import RedirectResponse
from nicegui import Client, ui

from app.bus import DeviceChanged, TelemetryStored
from app.components.device_card import DeviceCard
from app.components.device_form import DeviceFields, open_device_dialog
from app.components.frame import TOUCH, frame
from app.models.schemas import DeviceCreate, DeviceCredentials, DevicePublic, Principal
from app.pages import session
from app.platform import Platform
from app.services.errors import NotFound

FLEET_LIMIT = 500
STATUS_FILTERS = {'all': 'All', 'new': 'New', 'online': 'Online', 'offline': 'Offline'}


class FleetView:
    """The card grid and its live wiring; one per open page."""

    def __init__(self, platform: Platform, principal: Principal, devices: list[DevicePublic]) -> None:
        self.platform = platform
        self.principal = principal
        self.cards: dict[UUID, DeviceCard] = {}
        with ui.row().classes('w-full items-center gap-3 flex-wrap'):
            ui.label('Fleet').classes('text-2xl font-semibold')
            self.count = ui.label().classes('text-grey-8').mark('device-count')
            ui.space()
            if principal.can_write:
                ui.button('Add device', icon='add', on_click=self.add_device).classes(TOUCH).mark('add-device')
        with ui.row().classes('w-full items-center gap-3 flex-wrap'):
            self.search = ui.input('Search name or type', on_change=self.apply_filter) \
                .props('clearable outlined dense').classes('w-72 max-w-full').mark('search')
            self.status = ui.toggle(STATUS_FILTERS, value='all', on_change=self.apply_filter) \
                .props('no-caps').classes(TOUCH).mark('status-filter')
        self.empty = ui.label().classes('text-grey-8').mark('fleet-empty')
        self.grid = ui.element('div').classes('w-full grid gap-3 grid-cols-1 sm:grid-cols-2 lg:grid-cols-3') \
            .mark('device-grid')
        for device in devices:
            self.place(device)
        self.apply_filter()
        tenant = self.principal.tenant_id
        self.stored = platform.bus.telemetry_stored.subscribe(maxsize=5000, where=self.is_mine, tenant_id=tenant)
        self.changed = platform.bus.device_changed.subscribe(maxsize=5000, where=self.is_mine, tenant_id=tenant)
        ui.timer(0.1, self.load_latest, once=True)
        ui.timer(0.5, self.drain)
        ui.timer(1.0, self.tick)

    def is_mine(self, event: TelemetryStored | DeviceChanged) -> bool:
        return event.tenant_id == self.principal.tenant_id

    def close(self) -> None:
        self.stored.close()
        self.changed.close()

    def place(self, device: DevicePublic) -> DeviceCard:
        card = self.cards.get(device.id)
        if card is not None:
            card.show(device)
            return card
        with self.grid:
            card = DeviceCard(device)
        self.cards[device.id] = card
        ordered = sorted(self.cards.values(), key=lambda c: (c.device.name.lower(), str(c.device.id)))
        card.move(self.grid, target_index=ordered.index(card))
        return card

    def remove(self, device_id: UUID) -> None:
        card = self.cards.pop(device_id, None)
        if card is not None:
            card.delete()

    def apply_filter(self) -> None:
        search, status = self.search.value or '', str(self.status.value or 'all')
        shown = 0
        for card in self.cards.values():
            visible = card.matches(search, status)
            card.set_visibility(visible)
            shown += visible
        total = len(self.cards)
        self.count.set_text(f'{total} device{"s" if total != 1 else ""}' if shown == total
                            else f'{shown} of {total} devices')
        self.empty.set_text('' if shown else 'No devices yet.' if not total else 'No device matches the filter.')
        self.empty.set_visibility(not shown)

    async def load_latest(self) -> None:
        latest = await self.platform.telemetry.latest_for_devices(self.principal, list(self.cards))
        for device_id, values in latest.items():
            card = self.cards.get(device_id)
            if card is not None:
                card.add_values((value.key, value.ts, value.value) for value in values)

    async def drain(self) -> None:
        refetch: set[UUID] = set()
        for change in self.changed.drain():
            if change.change == 'deleted':
                self.remove(change.device_id)
                refetch.discard(change.device_id)
            else:
                refetch.add(change.device_id)
        for stored in self.stored.drain():
            card = self.cards.get(stored.device_id)
            if card is None:
                if len(self.cards) < FLEET_LIMIT:
                    refetch.add(stored.device_id)
                continue
            card.add_values((reading.key, reading.ts, reading.value) for reading in stored.readings)
            card.seen(stored.last_seen)
        for device_id in refetch:
            await self.refresh(device_id)
        if refetch:
            self.apply_filter()

    async def refresh(self, device_id: UUID) -> None:
        try:
            device = await self.platform.devices.get(self.principal, device_id)
        except NotFound:
            self.remove(device_id)
            return
        if device_id not in self.cards and len(self.cards) >= FLEET_LIMIT:
            return
        self.place(device)

    def tick(self) -> None:
        for card in self.cards.values():
            card.tick()

    def add_device(self) -> None:
        async def create(fields: DeviceFields) -> DeviceCredentials:
            device, credentials = await self.platform.devices.create(
                self.principal, DeviceCreate(name=fields.name, type=fields.type))
            self.place(device)
            self.apply_filter()
            return credentials

        open_device_dialog(title='Add device', action='Create', submit=create)


def register(platform: Platform) -> None:
    @ui.page('/')
    async def fleet_page(client: Client) -> RedirectResponse | None:
        principal = await session.signed_in(platform)
        if isinstance(principal, RedirectResponse):
            return principal
        tenant = await platform.tenants.get(principal)
        devices = await platform.devices.list(principal, limit=FLEET_LIMIT)
        with frame(title='Fleet', tenant_name=tenant.name, email=principal.email, link=platform.link,
                   role=principal.role):
            view = FleetView(platform, principal, devices)
        client.on_delete(view.close)
        return None
