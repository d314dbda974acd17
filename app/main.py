"""Composition root: settings → embedded services → platform → API and pages → NiceGUI server."""

from __future__ import annotations

import logging

from nicegui import app, ui

from app.bootstrap import prepare
from app.config import Settings
from app.db import redact
from app.ingest.broker import ensure_port_free
from app.logs import configure_logging
from app.platform import Platform, tune_garbage_collector

log = logging.getLogger(__name__)


def build(platform: Platform) -> None:
    """Register lifecycle hooks, the REST API and every page on NiceGUI's app."""
    from app.api import register as register_api
    from app.pages import register as register_pages

    app.on_startup(platform.start)
    app.on_shutdown(platform.stop)
    register_api(platform)
    register_pages(platform)


def run(settings: Settings, *, demo: bool = False) -> None:
    configure_logging(settings.log_level)
    resolved = prepare(settings)
    platform = Platform(settings, resolved)
    if resolved.mqtt_url is None:
        ensure_port_free(platform.mqtt_target.host, platform.mqtt_target.port)  # fail before serving anything
    build(platform)
    app.on_startup(tune_garbage_collector)  # after the platform has started: its objects are frozen too
    if resolved.embedded_database is not None:
        app.on_shutdown(resolved.embedded_database.cleanup)  # after the platform has closed its connections
    if demo:
        from app.demo import start_demo

        app.on_startup(lambda: start_demo(platform))
    log.info('gito serving', extra={
        'url': f'http://{settings.host}:{settings.port}', 'database': redact(resolved.database_url)})
    ui.run(
        host=settings.host, port=settings.port, title='Gito', reload=False, show=False,
        storage_secret=settings.resolved_secret_key(), uvicorn_logging_level='warning',
        show_welcome_message=True, favicon='📡',
    )
