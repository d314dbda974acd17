"""The device dialog: name, type and (when editing) offline timeout; after creation it shows the credentials."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nicegui import ui
from pydantic import ValidationError

from app.components.credentials_panel import credentials_panel
from app.components.frame import TOUCH
from app.models.schemas import DeviceCredentials
from app.services.errors import DomainError

MAX_TIMEOUT_S = 7 * 24 * 3600


@dataclass(frozen=True)
class DeviceFields:
    name: str
    type: str
    offline_after_s: int | None = None


Submit = Callable[[DeviceFields], Awaitable[DeviceCredentials | None]]


def open_device_dialog(
    *, title: str, action: str, submit: Submit, initial: DeviceFields | None = None, with_timeout: bool = False,
) -> ui.dialog:
    """`submit` saves; when it returns credentials the dialog shows them once, else it closes."""
    initial = initial or DeviceFields(name='', type='generic')
    with ui.dialog().props('persistent') as dialog, ui.card().classes('w-full max-w-2xl gap-3') as card:
        ui.label(title).classes('text-lg font-semibold')
        name = ui.input('Name', value=initial.name).props('autofocus').classes('w-full').mark('device-name')
        kind = ui.input('Type', value=initial.type).classes('w-full').mark('device-type-input')
        timeout = ui.number('Offline after (seconds, empty: platform default)', value=initial.offline_after_s,
                            min=5, max=MAX_TIMEOUT_S, precision=0).classes('w-full').mark('offline-after')
        timeout.set_visibility(with_timeout)
        fields: dict[str, ui.input | ui.number] = {'name': name, 'type': kind, 'offline_after_s': timeout}

        def fail(message: str, field: str | None) -> None:
            ui.notify(message, type='negative')
            if field in fields:
                fields[field].error = message

        async def save() -> None:
            for element in fields.values():
                element.error = None
            if not (name.value or '').strip():
                fail('A device needs a name.', 'name')
                return
            seconds = None if timeout.value is None else int(timeout.value)
            if seconds is not None and not 5 <= seconds <= MAX_TIMEOUT_S:
                fail(f'The offline timeout must be between 5 and {MAX_TIMEOUT_S} seconds.', 'offline_after_s')
                return
            values = DeviceFields(name=(name.value or '').strip(), type=(kind.value or '').strip() or 'generic',
                                  offline_after_s=seconds)
            try:
                credentials = await submit(values)
            except DomainError as error:
                fail(str(error), error.field)
                return
            except ValidationError as error:
                first = error.errors()[0]
                field = str(first['loc'][0]) if first['loc'] else None
                fail(f'{field or "Input"}: {first["msg"]}', field)
                return
            if credentials is None:
                dialog.delete()
                return
            card.clear()
            with card:
                ui.label(f'Device “{values.name}” created').classes('text-lg font-semibold')
                credentials_panel(credentials)
                with ui.row().classes('w-full justify-end'):
                    ui.button('Done', on_click=dialog.delete).classes(TOUCH).mark('credentials-done')

        with ui.row().classes('w-full justify-end gap-2'):
            ui.button('Cancel', on_click=dialog.delete).props('flat').classes(TOUCH).mark('dialog-cancel')
            ui.button(action, on_click=save).classes(TOUCH).mark('dialog-save')
    dialog.open()
    return dialog


async def confirm(question: str, *, detail: str = '', action: str, marker: str) -> bool:
    """A yes/no dialog; True when the person chose `action`."""
    with ui.dialog() as dialog, ui.card().classes('max-w-md gap-3'):
        ui.label(question).classes('text-lg font-semibold')
        if detail:
            ui.label(detail).classes('text-grey-8')
        with ui.row().classes('w-full justify-end gap-2'):
            ui.button('Cancel', on_click=lambda: dialog.submit(False)).props('flat').classes(TOUCH)
            ui.button(action, color='negative', on_click=lambda: dialog.submit(True)).classes(TOUCH).mark(marker)
    result = await dialog
    if not dialog.is_deleted:
        dialog.delete()
    return result is True
