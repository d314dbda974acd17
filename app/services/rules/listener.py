"""LISTEN for rule changes made by any process (another instance, the CLI) and reload that tenant's index."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from uuid import UUID

import asyncpg

from app.services.rules.service import RULE_CHANNEL

log = logging.getLogger(__name__)


async def listen_for_rule_changes(dsn: str, invalidate: Callable[[UUID], None]) -> None:
    def changed(_connection: object, _pid: int, _channel: str, payload: str) -> None:
        with contextlib.suppress(ValueError):
            invalidate(UUID(payload))

    while True:
        try:
            connection = await asyncpg.connect(dsn, timeout=5)
            lost = asyncio.Event()
            connection.add_termination_listener(lambda _connection, lost=lost: lost.set())
            try:
                await connection.add_listener(RULE_CHANNEL, changed)
                await lost.wait()
            finally:
                with contextlib.suppress(Exception):
                    await connection.close()
        except asyncio.CancelledError:
            raise
        except Exception as error:
            log.warning('rule change listener reconnecting', extra={'error': type(error).__name__})
            await asyncio.sleep(2)
