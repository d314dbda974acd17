"""What runs before anything is served: the embedded database when none is configured, then migrations.

Kept apart from `app.main` so that the administrative `gito` commands start without importing the web stack.
"""

from __future__ import annotations

import asyncio

from app.config import Settings
from app.db import migrate
from app.platform import Resolved, app_role_password


def resolve(settings: Settings) -> Resolved:
    """Fill in the embedded defaults: a PostgreSQL in the data directory when DATABASE_URL is unset."""
    if settings.database_url:
        return Resolved(database_url=settings.database_url, mqtt_url=settings.mqtt_url)
    from app.embedded.postgres import start_embedded_postgres

    database_url, server = start_embedded_postgres(settings.data_dir)
    return Resolved(database_url=database_url, mqtt_url=settings.mqtt_url, embedded_database=server)


def prepare(settings: Settings) -> Resolved:
    """Everything that must happen before the server starts: embedded database and migrations."""
    resolved = resolve(settings)
    asyncio.run(migrate(resolved.database_url, role=settings.app_db_role, password=app_role_password(settings)))
    return resolved
