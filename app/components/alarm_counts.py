"""The header's live count of open alarms by severity, e.g. '2 critical · 1 major', linking to /alarms.

The frame knows no platform, so `install` (called when the pages are registered) tells this module where to
count and who is signed in; every header then shows the count of its own tenant, refreshed on `alarm_changed`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from nicegui import ui

from app.models.alarm_notice import SEVERITIES
from app.models.schemas import Principal
from app.platform import Platform


@dataclass(frozen=True)
class CountSource:
    platform: Platform
    principal: Callable[[], Awaitable[Principal | None]]


_source: list[CountSource] = []  # the app's current platform; replaced each time the pages are registered


def install(platform: Platform, principal: Callable[[], Awaitable[Principal | None]]) -> None:
    _source[:] = [CountSource(platform, principal)]


def summary(counts: dict[str, int]) -> str:
    parts = [f'{counts[severity]} {severity}' for severity in SEVERITIES if counts.get(severity)]
    return ' · '.join(parts) if parts else 'No open alarms'


def alarm_counts() -> None:
    """Place the live count here (in the header); nothing when no platform is installed."""
    if not _source:
        return
    source = _source[0]
    with ui.link(target='/alarms').classes('no-underline text-white').mark('alarm-counts'), \
            ui.row().classes('items-center gap-1 no-wrap'):
        ui.icon('notifications_active', size='sm')
        label = ui.label('').classes('text-sm').mark('alarm-counts-text')

    client = ui.context.client
    started = False

    async def start() -> None:
        """Runs when the browser connects (a timer made while an async page is still being built would make
        NiceGUI send the page before the rest of it exists); once, though `on_connect` fires on reconnects."""
        nonlocal started
        if started:
            return
        started = True
        principal = await source.principal()
        if principal is None:
            return
        tenant = principal.tenant_id
        changes = source.platform.bus.alarm_changed.subscribe(maxsize=100, tenant_id=tenant)
        client.on_delete(changes.close)

        async def refresh() -> None:
            label.set_text(summary(await source.platform.alarms.open_counts(principal)))

        async def drain() -> None:
            if changes.drain():
                await refresh()

        await refresh()
        with client:
            ui.timer(1.0, drain)

    client.on_connect(start)
