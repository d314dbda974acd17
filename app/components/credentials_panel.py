"""A device's new credentials, shown once: id, token and ready-to-paste commands with copy buttons."""

from __future__ import annotations

from nicegui import ui

from app.components.frame import TOUCH
from app.models.schemas import DeviceCredentials


def _copyable(label: str, text: str, *, marker: str) -> None:
    def copy() -> None:
        ui.clipboard.write(text)
        ui.notify(f'{label} copied', type='positive')

    with ui.column().classes('w-full gap-1'):
        with ui.row().classes('w-full items-center justify-between no-wrap'):
            ui.label(label).classes('text-sm font-semibold')
            ui.button('Copy', icon='content_copy', on_click=copy).props('flat dense no-caps') \
                .classes(TOUCH).mark(f'copy-{marker}')
        ui.label(text).classes('w-full font-mono text-sm break-all bg-grey-2 rounded p-2 select-all').mark(marker)


def credentials_panel(credentials: DeviceCredentials) -> None:
    with ui.row().classes('w-full items-center no-wrap gap-2 bg-amber-1 text-amber-10 rounded p-2') \
            .mark('token-warning'):
        ui.icon('warning', color='warning')
        ui.label('Copy the token now: it will not be shown again. '
                 'If it is lost, rotate the token on the device page.').classes('text-sm')
    _copyable('Device id', str(credentials.device_id), marker='device-id')
    _copyable('Token', credentials.token, marker='device-token')
    ui.label(f'MQTT {credentials.mqtt_host}:{credentials.mqtt_port} · user {credentials.mqtt_username} · '
             f'topic {credentials.telemetry_topic}').classes('text-sm text-grey-8 break-all')
    _copyable('Publish with mosquitto_pub', credentials.mosquitto_pub, marker='mosquitto-pub')
    _copyable('Send over HTTP with curl', credentials.curl, marker='curl-command')


def show_credentials(credentials: DeviceCredentials, *, title: str) -> ui.dialog:
    """A dialog with the credentials; deleted from the page (token included) when closed."""
    with ui.dialog().props('persistent') as dialog, ui.card().classes('w-full max-w-2xl gap-3'):
        ui.label(title).classes('text-lg font-semibold')
        credentials_panel(credentials)
        with ui.row().classes('w-full justify-end'):
            ui.button('Done', on_click=dialog.delete).classes(TOUCH).mark('credentials-done')
    dialog.open()
    return dialog
