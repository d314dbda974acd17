"""The dialog that creates a notification channel, and the one that shows a webhook secret once."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from nicegui import ui

from app.components.frame import TOUCH
from app.models.alarm_notice import SEVERITIES
from app.models.notifications import ChannelCreate, ChannelCreated
from app.services.errors import DomainError

KINDS = {'email': 'Email', 'slack': 'Slack incoming webhook', 'webhook': 'Webhook (signed)'}


def open_channel_dialog(create: Callable[[ChannelCreate], Awaitable[ChannelCreated]],
                        done: Callable[[], Awaitable[None]], *, host: ui.element) -> None:
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
        severities = ui.select(list(SEVERITIES), value=list(SEVERITIES), multiple=True, label='Severities') \
            .props('outlined dense use-chips').classes('w-full').mark('channel-severities')
        with ui.row().classes('gap-4'):
            on_ack = ui.checkbox('Also on acknowledge').mark('channel-on-ack')
            on_clear = ui.checkbox('Also on clear').mark('channel-on-clear')

        async def save() -> None:
            try:
                created = await create(ChannelCreate.model_validate({
                    'name': name.value or ' ', 'kind': kind.value, 'severities': severities.value or [],
                    'recipients': [r for r in (recipients.value or '').split(',') if r.strip()],
                    'url': url.value or None, 'on_acknowledge': on_ack.value, 'on_clear': on_clear.value,
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
