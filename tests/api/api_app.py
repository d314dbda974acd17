"""The app the API tests run: the platform, its lifecycle and the API on NiceGUI's app, without the pages."""

from __future__ import annotations

import os

from app.platform import Platform, Resolved

PLATFORM: Platform | None = None


def build_api_app() -> None:
    """Run as the main file of NiceGUI's user simulation (see `api` in conftest.py)."""
    global PLATFORM
    from nicegui import app, ui

    from app.api import register
    from app.config import Settings
    from tests.support import SECRET

    PLATFORM = Platform(Settings(), Resolved(database_url=os.environ['DATABASE_URL'],
                                             mqtt_url=os.environ['MQTT_URL']))
    app.on_startup(PLATFORM.start)
    app.on_shutdown(PLATFORM.stop)
    register(PLATFORM)
    ui.run(storage_secret=SECRET, title='Gito API')
