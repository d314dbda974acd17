"""The person's chosen time zone: kept in their browser storage, used to read and enter times on a page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from nicegui import app, ui

KEY = 'timezone'
ZONES = sorted(available_timezones() | {'UTC'})


def chosen_zone() -> str:
    zone = str(app.storage.user.get(KEY) or 'UTC')
    return zone if zone in ZONES else 'UTC'


def zone_select(*, on_change: Callable[[], Any] | None = None) -> ui.select:
    """A searchable list of time zones, remembered for the browser."""

    async def keep() -> None:
        app.storage.user[KEY] = select.value or 'UTC'
        if on_change is not None:
            result = on_change()
            if hasattr(result, '__await__'):
                await result

    select = ui.select(ZONES, value=chosen_zone(), label='Time zone', with_input=True,
                       on_change=keep).props('outlined dense').classes('w-56').mark('time-zone')
    return select


def local_time(moment: datetime, zone: str) -> str:
    """'2026-12-01 22:00 Europe/Berlin'."""
    return f'{moment.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")} {zone}'


def parse_local(text: str, zone: str) -> datetime:
    """A wall-clock time ('2026-12-01 22:00' or the browser's '2026-12-01T22:00') in `zone`, as an aware time."""
    try:
        moment = datetime.fromisoformat(text.strip().replace(' ', 'T'))
        return moment.replace(tzinfo=ZoneInfo(zone)) if moment.tzinfo is None else moment
    except (ValueError, ZoneInfoNotFoundError):
        raise ValueError(f'Enter a date and time like 2026-12-01 22:00 (got {text.strip() or "nothing"!r}).') \
            from None


def input_value(moment: datetime, zone: str) -> str:
    """What a `datetime-local` input shows for `moment` in `zone`."""
    return moment.astimezone(ZoneInfo(zone)).strftime('%Y-%m-%dT%H:%M')
