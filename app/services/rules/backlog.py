"""Work handed over by one task and done, in order, by another: what piled up meanwhile is handed on together.

The queue is bounded: when the work falls behind, `put` waits, which slows whoever hands it over (backpressure).
The task starts with the first item, in the running loop; `settled` waits until everything handed over so far
is done, `stop` also ends the task (the next item starts it again).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

log = logging.getLogger(__name__)
T = TypeVar('T')


class Backlog(Generic[T]):
    def __init__(self, handle: Callable[[list[T]], Awaitable[None]], *, limit: int, name: str) -> None:
        self._handle = handle
        self._limit = limit
        self._name = name
        self._queue: asyncio.Queue[T] | None = None
        self._task: asyncio.Task[None] | None = None

    async def put(self, item: T) -> None:
        if self._queue is None or self._task is None or self._task.done():
            self._queue = self._queue or asyncio.Queue(maxsize=self._limit)
            self._task = asyncio.create_task(self._run(self._queue))
        await self._queue.put(item)

    async def settled(self) -> None:
        if self._queue is not None:
            await self._queue.join()

    async def stop(self) -> None:
        await self.settled()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._queue, self._task = None, None

    async def _run(self, queue: asyncio.Queue[T]) -> None:
        while True:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            try:
                await self._handle(items)
            except Exception:
                log.exception('backlog work failed', extra={'backlog': self._name, 'items': len(items)})
            finally:
                for _ in items:
                    queue.task_done()
