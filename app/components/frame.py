"""The shared page frame: header with brand, tenant, navigation, broker link, user and logout."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from nicegui import ui

from app.components.alarm_counts import alarm_counts
from app.ingest.mqtt_consumer import LinkStatus

TOUCH = 'min-h-[44px]'  # comfortable touch targets on a tablet


def broker_indicator(link: LinkStatus) -> None:
    """Green 'Broker connected' or red 'Broker offline', live from the consumer's link status."""
    with ui.row().classes('items-center gap-1 no-wrap').mark('broker-status'):
        ui.icon('cloud_done', color='positive', size='sm').bind_visibility_from(link, 'connected')
        ui.icon('cloud_off', color='negative', size='sm') \
            .bind_visibility_from(link, 'connected', backward=lambda up: not up)
        ui.label().classes('text-sm').bind_text_from(
            link, 'connected', backward=lambda up: 'Broker connected' if up else 'Broker offline')


@contextmanager
def frame(*, title: str, tenant_name: str, email: str, link: LinkStatus,
          role: str = '') -> Iterator[ui.column]:
    """Header plus a centred content column; use as `with frame(...) as content:`. Admins see Users and Audit."""
    ui.page_title(f'{title} · Gito')
    ui.colors(primary='#1f5f8b')
    with ui.header().classes('items-center gap-x-4 gap-y-1 flex-wrap px-4 py-1 bg-primary'):
        with ui.link(target='/').classes('no-underline text-white'):
            ui.label('Gito').classes('text-2xl font-bold tracking-wide').mark('brand')
        ui.label(tenant_name).classes('text-base opacity-90').mark('tenant-name')
        ui.button('Fleet', icon='sensors', on_click=lambda: ui.navigate.to('/')) \
            .props('flat color=white no-caps').classes(TOUCH).mark('nav-fleet')
        ui.button('Alarms', icon='warning', on_click=lambda: ui.navigate.to('/alarms')) \
            .props('flat color=white no-caps').classes(TOUCH).mark('nav-alarms')
        ui.button('Rules', icon='rule', on_click=lambda: ui.navigate.to('/rules')) \
            .props('flat color=white no-caps').classes(TOUCH).mark('nav-rules')
        if role in ('admin', 'operator'):
            ui.button('Notifications', icon='notifications', on_click=lambda: ui.navigate.to('/notifications')) \
                .props('flat color=white no-caps').classes(TOUCH).mark('nav-notifications')
        if role == 'admin':
            ui.button('Users', icon='group', on_click=lambda: ui.navigate.to('/users')) \
                .props('flat color=white no-caps').classes(TOUCH).mark('nav-users')
            ui.button('Audit', icon='history', on_click=lambda: ui.navigate.to('/audit')) \
                .props('flat color=white no-caps').classes(TOUCH).mark('nav-audit')
            ui.button('Storage', icon='storage', on_click=lambda: ui.navigate.to('/storage')) \
                .props('flat color=white no-caps').classes(TOUCH).mark('nav-storage')
        ui.space()
        alarm_counts()
        broker_indicator(link)
        with ui.link(target='/account').classes('no-underline text-white').mark('nav-account'):
            ui.label(email).classes('text-sm opacity-90 max-sm:hidden').mark('user-email')
        ui.button('Logout', icon='logout', on_click=lambda: ui.navigate.to('/logout')) \
            .props('flat color=white no-caps').classes(TOUCH).mark('logout')
    with ui.column().classes('w-full max-w-screen-xl mx-auto p-4 gap-4') as content:
        yield content


@contextmanager
def bare_frame(title: str) -> Iterator[ui.card]:
    """For signed-out pages: brand only, a narrow centred card."""
    ui.page_title(f'{title} · Gito')
    ui.colors(primary='#1f5f8b')
    with ui.header().classes('items-center px-4 py-2 bg-primary'):
        ui.label('Gito').classes('text-2xl font-bold tracking-wide').mark('brand')
    with ui.column().classes('w-full items-center p-4'), ui.card().classes('w-full max-w-md p-6 gap-3') as card:
        ui.label(title).classes('text-xl font-semibold')
        yield card
