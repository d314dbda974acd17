"""Online/offline: a device that stays silent past its timeout turns offline.

Silence is judged against the device state as far as it is written: a device goes offline as many seconds late as
`last_seen` stands behind (`app/ingest/state_mark.py`), never while its news is still held in memory."""

from __future__ import annotations

import logging
from collections.abc import Callable
from uuid import UUID

from sqlalchemy import text

from app.bus import DeviceChanged, EventBus
from app.db import Database
from app.ingest.state_mark import STATE_LAG_S
from app.services.periodic import PeriodicTask

log = logging.getLogger(__name__)
SWEEP_LOCK_ID = 0x6710_0003

SWEEP = f"""
UPDATE devices SET status = 'offline'
WHERE status = 'online'
  AND last_seen < now() - make_interval(secs => coalesce(offline_after_s, :default_s) + {STATE_LAG_S})
RETURNING tenant_id, id"""


class PresenceService:
    def __init__(self, db: Database, bus: EventBus, *, default_offline_after_s: int, every_s: float = 2.0,
                 state_current: Callable[[], bool] = lambda: True) -> None:
        """`state_current`: this instance's device state report stands (`StateMark.current`); rounds wait for it."""
        self._db = db
        self._bus = bus
        self._default_s = default_offline_after_s
        self._state_current = state_current
        self._job = PeriodicTask(self.sweep, every_s=every_s, name='presence sweep')

    async def sweep(self) -> list[tuple[UUID, UUID]]:
        """Mark silent devices offline; one instance at a time (advisory lock), the others skip this round, and so
        does an instance whose own state report is not current (after an outage, until it has reported again)."""
        if not self._state_current():
            return []
        async with self._db.system() as session:
            if not await session.scalar(text('SELECT pg_try_advisory_xact_lock(:id)'), {'id': SWEEP_LOCK_ID}):
                return []
            rows = (await session.execute(text(SWEEP), {'default_s': self._default_s})).all()
        for tenant_id, device_id in rows:
            self._bus.device_changed.publish(DeviceChanged(tenant_id=tenant_id, device_id=device_id, change='offline'))
        return [(tenant_id, device_id) for tenant_id, device_id in rows]

    async def start(self) -> None:
        self._job.start()

    async def stop(self) -> None:
        await self._job.stop()
