"""A background job run every few seconds for the life of the platform (sweeps, retention)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


class PeriodicTask:
    """Run `work` now and then every `every_s` seconds until stopped; a failing round is logged, not fatal."""

    def __init__(self, work: Callable[[], Awaitable[object]], *, every_s: float, name: str) -> None:
        self._work = work
        self._every_s = every_s
        self._name = name
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop())

    @property
    def running(self) -> bool:
        return self._task is not None

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _loop(self) -> None:
        while True:
            try:
                await self._work()
            except Exception:
                log.exception('periodic job failed', extra={'job': self._name})
            await asyncio.sleep(self._every_s)
