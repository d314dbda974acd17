"""Which devices exist, for whom, and with what token: a cache in front of the device table for ingest.

Lookups go through the owner connection (a device is not yet known to belong to any tenant when it
knocks); entries are dropped when the bus says a device changed, so a rotated token stops working at once.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Any
from uuid import UUID

from sqlalchemy import select as sa_select
from sqlmodel import col

from app.bus import DeviceChanged, EventBus, Subscription
from app.db import Database
from app.models.tables import Device, Tenant
from app.services.credentials import token_matches

CACHE_LIMIT = 200_000
READ_TRIES = 5  # reads of one device while others keep changing, before its entry is used uncached
_MISSING: Any = object()


@dataclass(frozen=True)
class DeviceEntry:
    device_id: UUID
    tenant_id: UUID
    token_sha256: str
    status: str
    tenant_active: bool
    disabled: bool = False

    @property
    def accepts_data(self) -> bool:
        return self.tenant_active and not self.disabled


class DeviceDirectory:
    def __init__(self, db: Database, bus: EventBus) -> None:
        self._db = db
        self._bus = bus
        self._entries: dict[UUID, DeviceEntry | None] = {}
        # how many invalidations so far: an entry read across one (a token rotated, the device disabled while its
        # row was being read) is read again, or the old token would be accepted until the device's next change
        self._changes = 0
        self._subscription: Subscription[DeviceChanged] | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._subscription = self._bus.device_changed.subscribe(maxsize=10_000)
        self._task = asyncio.create_task(self._invalidate_loop())
        await self.warm()

    async def warm(self) -> None:
        """Load every device up front: one query instead of one per device on its first message."""
        before = self._changes
        async with self._db.system() as session:
            rows = (await session.execute(
                sa_select(col(Device.id), col(Device.tenant_id), col(Device.token_sha256), col(Device.status),
                          col(Tenant.status), col(Device.disabled))
                .join(Tenant, col(Tenant.id) == col(Device.tenant_id)).limit(CACHE_LIMIT),
            )).all()
        if self._changes != before:
            return  # something changed while this was read: devices are read on their first message instead
        for device_id, tenant_id, token_sha256, status, tenant_status, disabled in rows:
            self._entries.setdefault(device_id, DeviceEntry(device_id, tenant_id, token_sha256, status,
                                                            tenant_status == 'active', disabled))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._subscription is not None:
            self._subscription.close()

    async def _invalidate_loop(self) -> None:
        assert self._subscription is not None
        async for event in self._subscription:
            if event.change in ('created', 'updated', 'deleted'):
                self.invalidate(event.device_id)
            elif event.change in ('online', 'offline'):
                entry = self._entries.get(event.device_id)
                if entry is not None:
                    self._entries[event.device_id] = replace(entry, status=event.change)

    def cached(self, device_id: UUID) -> tuple[bool, DeviceEntry | None]:
        """Without waiting: (True, entry or None for no such device) when known, else (False, None)."""
        entry = self._entries.get(device_id, _MISSING)
        if entry is _MISSING:
            return False, None
        return True, entry

    async def get(self, device_id: UUID) -> DeviceEntry | None:
        if device_id in self._entries:
            return self._entries[device_id]
        for _ in range(READ_TRIES):
            seen = self._changes
            entry = await self._read(device_id)
            if self._changes == seen:
                break  # else a device changed while this was read: read again
        else:
            return entry  # devices changing all the time (a bulk import): used for this message, not cached
        if len(self._entries) >= CACHE_LIMIT:
            self._entries.clear()
        self._entries[device_id] = entry
        return entry

    async def _read(self, device_id: UUID) -> DeviceEntry | None:
        async with self._db.system() as session:
            row = (await session.execute(
                sa_select(col(Device.tenant_id), col(Device.token_sha256), col(Device.status), col(Tenant.status),
                          col(Device.disabled))
                .join(Tenant, col(Tenant.id) == col(Device.tenant_id)).where(col(Device.id) == device_id),
            )).first()
        return None if row is None else DeviceEntry(device_id, row[0], row[1], row[2], row[3] == 'active', row[4])

    async def authenticate(self, device_id: UUID, token: str) -> DeviceEntry | None:
        entry = await self.get(device_id)
        if entry is None or not token_matches(entry.token_sha256, token):
            return None
        return entry

    def invalidate(self, device_id: UUID) -> None:
        self._entries.pop(device_id, None)
        self._changes += 1

    def mark_status(self, device_id: UUID, status: str) -> None:
        entry = self._entries.get(device_id)
        if entry is not None and entry.status != status:
            self._entries[device_id] = replace(entry, status=status)
