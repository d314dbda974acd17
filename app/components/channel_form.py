"""The dialogs that create a notification channel, change its routing, and show a webhook secret once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

from app.components.frame import TOUCH
from app.models.alarm_notice import SEVERITIES
from app.models.notifications import ChannelCreate, ChannelCreated, ChannelPublic, ChannelRouting, ChannelUpdate
from app.services.errors import DomainError

KINDS = {'email': 'Email', 'slack': 'Slack incoming webhook', 'webhook': 'Webhook (signed)'}


class RoutingFields:
    """Which alarms go to a channel: severities, rules (none chosen: every rule), and which transitions."""

    def __init__(self, rules: dict[str, str], routing: ChannelRouting | None = None) -> None:
        routing = routing or ChannelRouting()
        self.severities = ui.select(list(SEVERITIES), value=list(routing.severities), multiple=True,
                                    label='Severities').props('outlined dense use-chips').classes('w-full') \
            .mark('channel-severities')
        self.rules = ui.select(rules, value=[str(r) for r in routing.rule_ids or [] if str(r) in rules],
                               multiple=True, label='Rules (none chosen: every rule)') \
            .props('outlined dense use-chips').classes('w-full').mark('channel-rules')
        with ui.row().classes('gap-4'):
            self.on_raise = ui.checkbox('On raise', value=routing.on_raise).mark('channel-on-raise')
            self.on_ack = ui.checkbox('Also on acknowledge', value=routing.on_acknowledge).mark('channel-on-ack')
            self.on_clear = ui.checkbox('Also on clear', value=routing.on_clear).mark('channel-on-clear')

    def values(self) -> dict[str, object]:
        chosen = [str(rule) for rule in self.rules.value or []]
        return {'severities': self.severities.value or [], 'rule_ids': chosen or None,
                'on_raise': self.on_raise.value, 'on_acknowledge': self.on_ack.value, 'on_clear': self.on_clear.value}


def open_routing_dialog(channel: ChannelPublic, rules: dict[str, str],
                        save: Callable[[ChannelUpdate], Awaitable[object]], *, host: ui.element) -> None:
    """Change where an existing channel's notifications come from."""
    with host, ui.dialog() as dialog, ui.card().classes('w-full max-w-lg gap-2'):
        ui.label(f'Routing of {channel.name}').classes('text-lg font-semibold')
        fields = RoutingFields(rules, channel)

        async def apply() -> None:
            values = fields.values()
            try:
                await save(ChannelUpdate.model_validate({**values, 'all_rules': values['rule_ids'] is None}))
            except (DomainError, ValueError) as error:
                ui.notify(_message(error), type='negative')
                return
            _discard(dialog)

        with ui.row().classes('w-full justify-end'):
            ui.button('Cancel', on_click=dialog.close).props('flat').classes(TOUCH)
            ui.button('Save', on_click=apply).classes(TOUCH).mark('routing-save')
    dialog.open()


def open_channel_dialog(create: Callable[[ChannelCreate], Awaitable[ChannelCreated]],
                        done: Callable[[], Awaitable[None]], *, host: ui.element, rules: dict[str, str]) -> None:
    """The dialogs live in `host`, a container of the page that outlives them."""
    with host, ui.dialog() as dialog, ui.card().classes('w-full max-w-lg gap-2'):
        ui.label('New notification channel').classes('text-lg font-semibold')
        name = ui.input('Name').props('outlined dense').classes('w-full').mark('channel-name')
        kind = ui.select(KINDS, value='email', label='Kind').props('outlined dense').classes('w-full') \
            .mark('channel-kind')
        recipients = ui.input('Recipients (comma-separated emails)').props('outlined dense').classes('w-full') \
            .mark('channel-recipients')
        recipients.bind_visibility_from(kind, 'value', backward=lambda k: k == 'email')
        url = ui.input('URL').props('outlined dense').classes('w-full').mark('channel-url')
        url.bind_visibility_from(kind, 'value', backward=lambda k: k != 'email')
        routing = RoutingFields(rules)

        async def save() -> None:
            try:
                created = await create(ChannelCreate.model_validate({
                    'name': name.value or ' ', 'kind': kind.value, **routing.values(),
                    'recipients': [r for r in (recipients.value or '').split(',') if r.strip()],
                    'url': url.value or None,
                }))
            except (DomainError, ValueError) as error:
                ui.notify(_message(error), type='negative')
                return
            _discard(dialog)
            if created.signing_secret:
                show_secret(created.signing_secret, host=host)
            await done()

        with ui.row().classes('w-full justify-end'):
            ui.button('Cancel', on_click=dialog.close).props('flat').classes(TOUCH)
            ui.button('Create', on_click=save).classes(TOUCH).mark('channel-save')
    dialog.open()


def show_secret(secret: str, *, host: ui.element) -> None:
    with host, ui.dialog().props('persistent') as dialog, ui.card().classes('w-full max-w-lg gap-2'):
        ui.label('Signing secret').classes('text-lg font-semibold')
        ui.label('Copy it now: it will not be shown again. Receivers verify the webhook-signature header '
                 'with it (Standard Webhooks).').classes('text-grey-8')
        ui.label(secret).classes('font-mono break-all').mark('signing-secret')
        with ui.row().classes('w-full justify-end'):
            ui.button('Copy', icon='content_copy', on_click=lambda: ui.clipboard.write(secret)).props('flat') \
                .classes(TOUCH)
            ui.button('Done', on_click=lambda: _discard(dialog)).classes(TOUCH).mark('secret-done')
    dialog.open()


def _discard(dialog: ui.dialog) -> None:
    """Close and remove: the secret must not stay in the page."""
    dialog.close()
    dialog.delete()


def _message(error: Exception) -> str:
    if isinstance(error, DomainError):
        return str(error)
    return 'Check the form: a name, a kind and at least one severity are needed.'
