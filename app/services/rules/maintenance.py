"""Maintenance windows of a tenant: while one covers a device, rules raise no alarm for it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.db import Database
from app.models.maintenance import MaintenanceCreate, MaintenancePublic, MaintenanceWindow
from app.models.schemas import Principal
from app.models.tables import Device
from app.services.errors import Conflict, InvalidInput, NotFound
from app.services.permissions import Permission, require
from app.services.rules.service import notify_rules_changed


class MaintenanceService:
    def __init__(self, db: Database, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._db = db
        self._clock = clock
        self._listeners: list[Callable[[UUID], None]] = []

    def on_changed(self, listener: Callable[[UUID], None]) -> None:
        self._listeners.append(listener)

    async def create(self, principal: Principal, data: MaintenanceCreate) -> MaintenancePublic:
        require(principal, Permission.MANAGE_RULES)
        if not data.name.strip():
            raise InvalidInput('Say why the devices are in maintenance.', field='name')
        if data.device_ids is not None and not data.device_ids:
            raise InvalidInput('Choose at least one device, or all devices.', field='device_ids')
        async with self._db.tenant(principal.tenant_id) as session:
            if data.device_ids:
                known = set(await session.scalars(select(col(Device.id)).where(
                    col(Device.tenant_id) == principal.tenant_id, col(Device.id).in_(data.device_ids))))
                if known != set(data.device_ids):
                    raise InvalidInput('Unknown device.', field='device_ids')
            window = MaintenanceWindow(tenant_id=principal.tenant_id, name=data.name.strip(),
                                       starts_at=data.starts_at, ends_at=data.ends_at, device_ids=data.device_ids)
            session.add(window)
            await session.flush()
            await notify_rules_changed(session, principal.tenant_id)
            public = MaintenancePublic.model_validate(window)
        self._changed(principal.tenant_id)
        return public

    async def current(self, principal: Principal) -> list[MaintenancePublic]:
        """Windows not over for more than a day (the engine's view)."""
        require(principal, Permission.VIEW)
        return await self.for_engine(principal.tenant_id)

    async def recent(self, principal: Principal, *, days: int = 7) -> list[MaintenancePublic]:
        """Windows to come, running, and those over for at most `days` days; the latest start first."""
        require(principal, Permission.VIEW)
        windows = await self.for_engine(principal.tenant_id, since=self._clock() - timedelta(days=days))
        return sorted(windows, key=lambda window: window.starts_at, reverse=True)

    async def end_now(self, principal: Principal, window_id: UUID) -> MaintenancePublic:
        """End a running window early: rules raise again for its devices from now on."""
        require(principal, Permission.MANAGE_RULES)
        now = self._clock()
        async with self._db.tenant(principal.tenant_id) as session:
            window = await self._load(session, principal, window_id)
            if window.ends_at <= now:
                raise Conflict('This maintenance window is already over.')
            if window.starts_at > now:
                raise Conflict('This maintenance window has not started yet: delete it instead.')
            window.ends_at = now
            await session.flush()
            await notify_rules_changed(session, principal.tenant_id)
            public = MaintenancePublic.model_validate(window)
        self._changed(principal.tenant_id)
        return public

    async def for_engine(self, tenant_id: UUID, *, since: datetime | None = None) -> list[MaintenancePublic]:
        since = since or datetime.now(UTC) - timedelta(days=1)
        statement = select(MaintenanceWindow).where(col(MaintenanceWindow.tenant_id) == tenant_id,
                                                    col(MaintenanceWindow.ends_at) > since) \
            .order_by(col(MaintenanceWindow.starts_at))
        async with self._db.tenant(tenant_id) as session:
            return [MaintenancePublic.model_validate(window) for window in await session.scalars(statement)]

    async def delete(self, principal: Principal, window_id: UUID) -> None:
        require(principal, Permission.MANAGE_RULES)
        async with self._db.tenant(principal.tenant_id) as session:
            await session.delete(await self._load(session, principal, window_id))
            await notify_rules_changed(session, principal.tenant_id)
        self._changed(principal.tenant_id)

    @staticmethod
    async def _load(session: AsyncSession, principal: Principal, window_id: UUID) -> MaintenanceWindow:
        window = await session.get(MaintenanceWindow, window_id)
        if window is None or window.tenant_id != principal.tenant_id:
            raise NotFound(f'Unknown maintenance window {window_id}.')
        return window

    def _changed(self, tenant_id: UUID) -> None:
        for listener in self._listeners:
            listener(tenant_id)
