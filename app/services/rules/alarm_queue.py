"""The rule engine's raises and clears, written by one task of their own, in order, off the ingest path.

The engine decides on a committed batch and hands its firings over; the batch writer goes on with the next
batch while the alarm rows (and their outbox rows) are written. One consumer keeps the order per (rule, device);
what piled up meanwhile is written together, one transaction per tenant. The queue is bounded: when alarm
writing falls behind, `put` waits and so slows ingest (backpressure), as the inline write did. Firings still
queued at a crash are lost, like firings of a batch committed just before one; `stop` writes what is queued.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
from uuid import UUID

from app.services.alarms import AlarmService, Firing

log = logging.getLogger(__name__)


class AlarmQueue:
    def __init__(self, alarms: AlarmService, *, limit: int = 10_000) -> None:
        self._alarms = alarms
        self._limit = limit
        self._queue: asyncio.Queue[tuple[UUID, list[Firing]]] | None = None
        self._task: asyncio.Task[None] | None = None

    async def put(self, tenant_id: UUID, firings: list[Firing]) -> None:
        if self._queue is None or self._task is None or self._task.done():
            self._queue = self._queue or asyncio.Queue(maxsize=self._limit)
            self._task = asyncio.create_task(self._run(self._queue))  # started by the first firing, in its loop
        await self._queue.put((tenant_id, firings))

    async def settled(self) -> None:
        """Wait until everything handed over so far is written."""
        if self._queue is not None:
            await self._queue.join()

    async def stop(self) -> None:
        await self.settled()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._queue, self._task = None, None

    async def _run(self, queue: asyncio.Queue[tuple[UUID, list[Firing]]]) -> None:
        while True:
            items = [await queue.get()]
            while not queue.empty():
                items.append(queue.get_nowait())
            by_tenant: dict[UUID, list[Firing]] = defaultdict(list)
            for tenant_id, firings in items:
                by_tenant[tenant_id] += firings
            for tenant_id, firings in by_tenant.items():
                try:
                    await self._alarms.apply(tenant_id, firings)
                except Exception:
                    log.exception('alarm changes failed', extra={'tenant_id': str(tenant_id),
                                                                 'firings': len(firings)})
            for _ in items:
                queue.task_done()
