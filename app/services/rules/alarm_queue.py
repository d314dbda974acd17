"""The rule engine's raises and clears, written by one task of their own, in order, off the ingest path.

The engine decides on a committed batch and hands its firings over; the batch writer goes on with the next
batch while the alarm rows (and their outbox rows) are written. One consumer keeps the order per (rule, device);
what piled up meanwhile is written together, one transaction per tenant. The queue is bounded: when alarm
writing falls behind, `put` waits and so slows ingest (backpressure), as the inline write did. Firings still
queued at a crash are lost, like firings of a batch committed just before one; `stop` writes what is queued.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from uuid import UUID

from app.services.alarms import AlarmService, Firing
from app.services.rules.backlog import Backlog

log = logging.getLogger(__name__)


class AlarmQueue:
    def __init__(self, alarms: AlarmService, *, limit: int = 10_000) -> None:
        self._alarms = alarms
        self._backlog: Backlog[tuple[UUID, list[Firing]]] = Backlog(self._write, limit=limit, name='alarm changes')

    async def put(self, tenant_id: UUID, firings: list[Firing]) -> None:
        await self._backlog.put((tenant_id, firings))

    async def settled(self) -> None:
        """Wait until everything handed over so far is written."""
        await self._backlog.settled()

    async def stop(self) -> None:
        await self._backlog.stop()

    async def _write(self, items: list[tuple[UUID, list[Firing]]]) -> None:
        by_tenant: dict[UUID, list[Firing]] = defaultdict(list)
        for tenant_id, firings in items:
            by_tenant[tenant_id] += firings
        for tenant_id, firings in by_tenant.items():
            try:
                await self._alarms.apply(tenant_id, firings)
            except Exception:
                log.exception('alarm changes failed', extra={'tenant_id': str(tenant_id), 'firings': len(firings)})
