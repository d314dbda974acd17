"""The notifications page: channels (create, test, enable, delete), the outbound allow-list, and deliveries."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi.responses import RedirectResponse
from nicegui import ui

from app.components.channel_form import open_channel_dialog, open_routing_dialog
from app.components.formatting import utc_time
from app.components.frame import TOUCH, frame
from app.models.notifications import ChannelPublic, ChannelUpdate, DeliveryPublic, OutboundSettings
from app.models.schemas import Principal
from app.pages import session
from app.platform import Platform
from app.services.errors import DomainError

STATUS_COLORS = {'pending': 'grey', 'failed': 'orange', 'sent': 'positive', 'dead': 'negative'}
STATUS_FILTERS = {'': 'All', 'pending': 'Pending', 'failed': 'Failed', 'sent': 'Sent', 'dead': 'Dead'}


class NotificationsView:
    def __init__(self, platform: Platform, principal: Principal) -> None:
        self.channels_api = platform.notifications.channels
        self.deliveries_api = platform.notifications.deliveries
        self.rules_api = platform.rules
        self.rules: dict[str, str] = {}
        self.principal = principal
        self.admin = principal.role == 'admin'
        with ui.row().classes('w-full items-center'):
            ui.label('Notification channels').classes('text-2xl font-semibold')
            ui.space()
            if self.admin:
                ui.button('Add channel', icon='add', on_click=self.add).classes(TOUCH).mark('add-channel')
        self.dialogs = ui.element('div')
        self.channel_list = ui.column().classes('w-full gap-2').mark('channel-list')
        self.allow_box = ui.column().classes('w-full')
        with ui.row().classes('w-full items-center'):
            ui.label('Deliveries').classes('text-2xl font-semibold')
            ui.space()
            self.status = ui.toggle(STATUS_FILTERS, value='', on_change=self.show_deliveries).props('no-caps') \
                .mark('delivery-filter')
        self.delivery_list = ui.column().classes('w-full gap-1').mark('delivery-list')
        ui.timer(0.1, self.refresh, once=True)
        ui.timer(5.0, self.show_deliveries)

    async def refresh(self) -> None:
        self.rules = {str(rule.id): rule.name for rule in await self.rules_api.all(self.principal)}
        await self.show_channels()
        await self.show_allow_list()
        await self.show_deliveries()

    async def act(self, work: Callable[[], Awaitable[Any]], done: str | None = None) -> None:
        try:
            await work()
        except DomainError as error:
            ui.notify(str(error), type='negative')
            return
        if done:
            ui.notify(done, type='positive')
        await self.refresh()

    def add(self) -> None:
        open_channel_dialog(lambda data: self.channels_api.create(self.principal, data), self.refresh,
                            host=self.dialogs, rules=self.rules)

    def route(self, channel: ChannelPublic) -> None:
        async def save(update: ChannelUpdate) -> None:
            await self.channels_api.update(self.principal, channel.id, update)
            ui.notify('Routing saved', type='positive')
            await self.refresh()

        open_routing_dialog(channel, self.rules, save, host=self.dialogs)

    async def attempts(self, delivery: DeliveryPublic) -> None:
        detail = await self.deliveries_api.get(self.principal, delivery.id)
        with self.dialogs, ui.dialog() as dialog, ui.card().classes('w-full max-w-2xl gap-1'):
            ui.label(f'Attempts: {detail.channel_name} · {detail.summary}').classes('text-lg font-semibold')
            if not detail.attempt_log:
                ui.label('Not attempted yet.').classes('text-grey-8')
            for attempt in detail.attempt_log:
                code = f'HTTP {attempt.response_code}' if attempt.response_code is not None else 'no response'
                outcome = 'ok' if attempt.ok else f'failed: {attempt.error or code}'
                ui.label(f'{utc_time(attempt.attempted_at)} · {code} · {attempt.duration_ms} ms · {outcome}') \
                    .classes('text-sm break-all').mark('attempt-row')
            with ui.row().classes('w-full justify-end'):
                ui.button('Close', on_click=dialog.close).props('flat').classes(TOUCH)
        dialog.open()

    async def show_channels(self) -> None:
        channels = await self.channels_api.list(self.principal)
        self.channel_list.clear()
        with self.channel_list:
            if not channels:
                ui.label('No channel yet: alarms notify nobody.').classes('text-grey-8').mark('no-channels')
            for channel in channels:
                self.channel_row(channel)

    def channel_row(self, channel: ChannelPublic) -> None:
        target = ', '.join(channel.recipients) if channel.kind == 'email' else channel.url or ''
        events = (['raise'] if channel.on_raise else []) + (['acknowledge'] if channel.on_acknowledge else []) + \
            (['clear'] if channel.on_clear else [])
        rules = 'every rule' if channel.rule_ids is None else ', '.join(
            sorted(self.rules.get(str(rule), '(deleted rule)') for rule in channel.rule_ids)) or 'no rule'

        with ui.card().classes('w-full p-3'), ui.row().classes('w-full items-center gap-3 flex-wrap'):
            ui.label(channel.name).classes('font-semibold').mark('channel-row-name')
            ui.badge(channel.kind)
            ui.label(target).classes('text-grey-8 break-all')
            ui.label(f'{", ".join(channel.severities)} · {rules} · on {", ".join(events) or "nothing"}') \
                .classes('text-sm text-grey-8').mark(f'routing-of-{channel.name}')
            if not channel.enabled:
                ui.badge('disabled', color='grey')
            ui.space()
            if self.admin:
                ui.button('Send test', icon='send', on_click=lambda c=channel: self.test(c)).props('flat no-caps') \
                    .classes(TOUCH).mark(f'test-{channel.name}')
                ui.button('Routing', icon='alt_route', on_click=lambda c=channel: self.route(c)) \
                    .props('flat no-caps').classes(TOUCH).mark(f'route-{channel.name}')
                flip = ChannelUpdate(enabled=not channel.enabled)
                ui.button('Disable' if channel.enabled else 'Enable', on_click=lambda c=channel, f=flip: self.act(
                    lambda: self.channels_api.update(self.principal, c.id, f))).props('flat no-caps').classes(TOUCH)
                ui.button(icon='delete', on_click=lambda c=channel: self.act(
                    lambda: self.channels_api.delete(self.principal, c.id), 'Channel deleted')) \
                    .props('flat color=negative').classes(TOUCH).mark(f'delete-{channel.name}')

    async def test(self, channel: ChannelPublic) -> None:
        try:
            delivery = await self.deliveries_api.send_test(self.principal, channel.id)
        except DomainError as error:
            ui.notify(str(error), type='negative')
            return
        if delivery.status == 'sent':
            ui.notify('Test message sent', type='positive')
        else:
            ui.notify(f'Test message failed: {delivery.last_error}', type='negative')
        await self.show_deliveries()

    async def show_allow_list(self) -> None:
        self.allow_box.clear()
        if not self.admin:
            return
        current = await self.channels_api.outbound_settings(self.principal)
        with self.allow_box, ui.expansion('Private network targets', icon='lan').classes('w-full'):
            ui.label('Webhooks and Slack may only reach public addresses, unless you allow private ranges here '
                     '(on-premises receivers). Cloud metadata addresses stay blocked.').classes('text-grey-8')
            cidrs = ui.input('Allowed ranges (comma-separated, e.g. 10.0.0.0/8)',
                             value=', '.join(current.allowed_cidrs)).props('outlined dense').classes('w-full') \
                .mark('allowed-cidrs')

            async def save() -> None:
                values = [v.strip() for v in (cidrs.value or '').split(',') if v.strip()]
                await self.act(lambda: self.channels_api.set_outbound_settings(
                    self.principal, OutboundSettings(allowed_cidrs=values)), 'Saved')

            ui.button('Save', on_click=save).classes(TOUCH).mark('save-cidrs')

    async def show_deliveries(self) -> None:
        status = self.status.value or None
        deliveries = await self.deliveries_api.list(self.principal, status=status, limit=200)
        self.delivery_list.clear()
        with self.delivery_list:
            if not deliveries:
                ui.label('No deliveries.').classes('text-grey-8').mark('no-deliveries')
            for delivery in deliveries:
                self.delivery_row(delivery)

    def delivery_row(self, delivery: DeliveryPublic) -> None:
        with ui.row().classes('w-full items-center gap-3 flex-wrap border-b py-1').mark('delivery-row'):
            ui.badge(delivery.status, color=STATUS_COLORS[delivery.status]).mark('delivery-status')
            ui.label(delivery.created_at.strftime('%Y-%m-%d %H:%M:%S')).classes('text-sm text-grey-8')
            ui.label(delivery.channel_name).classes('font-medium')
            ui.label(delivery.summary)
            ui.button(f'{delivery.attempts} attempt(s)', on_click=lambda d=delivery: self.attempts(d)) \
                .props('flat dense no-caps').classes('text-sm').mark('delivery-attempts')
            if delivery.last_error:
                ui.label(delivery.last_error).classes('text-sm text-negative break-all').mark('delivery-error')
            ui.space()
            if delivery.status != 'sent':
                ui.button('Retry now', icon='replay', on_click=lambda d=delivery: self.act(
                    lambda: self.deliveries_api.retry_now(self.principal, d.id))).props('flat no-caps') \
                    .classes(TOUCH).mark('retry-now')


def register(platform: Platform) -> None:
    @ui.page('/notifications')
    async def notifications_page() -> RedirectResponse | None:
        principal = await session.signed_in(platform)
        if isinstance(principal, RedirectResponse):
            return principal
        tenant = await platform.tenants.get(principal)
        with frame(title='Notifications', tenant_name=tenant.name, email=principal.email, link=platform.link,
                   role=principal.role):
            if principal.role in ('admin', 'operator'):
                NotificationsView(platform, principal)
            else:
                ui.label('Only admins and operators can see notifications.').classes('text-grey-8')
        return None
