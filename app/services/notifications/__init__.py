"""Alarm notifications: channels, the transactional outbox, the dispatcher and its senders."""

from __future__ import annotations

import asyncio
import contextlib

from app.config import Settings
from app.db import Database
from app.services.notifications.channels import ChannelService
from app.services.notifications.deliveries import DeliveryService
from app.services.notifications.dispatcher import Dispatcher
from app.services.notifications.outbox import Outbox
from app.services.notifications.safe_http import SafeHttpClient
from app.services.notifications.senders import Senders
from app.services.notifications.signing import SecretBox


class Notifications:
    """Everything notifications need, built once by the platform."""

    def __init__(self, db: Database, settings: Settings, *, base_url: str) -> None:
        box = SecretBox(settings.derived_secret('webhook-secrets'))
        self.outbox = Outbox()
        self.http = SafeHttpClient()
        self.senders = Senders(settings, self.http)
        self.dispatcher = Dispatcher(db, self.senders, box, base_url=base_url, wake=self.outbox.pending)
        self.channels = ChannelService(db, box)
        self.deliveries = DeliveryService(db, self.dispatcher)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self.dispatcher.run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
