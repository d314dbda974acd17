"""Maintenance windows of a tenant: while one covers a device, rules raise no alarm for it."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlmodel import col, select

from app.db import Database
from app.models.maintenance import MaintenanceCreate, MaintenancePublic, MaintenanceWindow
from app.models.schemas import Principal
from app.services.errors import NotFound
from app.services.permissions import Permission, require
from app.services.rules.service import notify_rules_changed


class MaintenanceService:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._listeners: list[Callable[[UUID], None]] = []

    def on_changed(self, listener: Callable[[UUID], None]) -> None:
        self._listeners.append(listener)

    async def create(self, principal: Principal, data: MaintenanceCreate) -> MaintenancePublic:
        require(principal, Permission.MANAGE_RULES)
        async with self._db.tenant(principal.tenant_id) as session:
            window = MaintenanceWindow(tenant_id=principal.tenant_id, name=data.name.strip(),
                                       starts_at=data.starts_at, ends_at=data.ends_at, device_ids=data.device_ids)
            session.add(window)
            await session.flush()
            await notify_rules_changed(session, principal.tenant_id)
            public = MaintenancePublic.model_validate(window)
        self._changed(principal.tenant_id)
        return public

    async def current(self, principal: Principal) -> list[MaintenancePublic]:
        """Windows not yet over."""
        require(principal, Permission.VIEW)
        return await self.for_engine(principal.tenant_id)

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
            window = await session.get(MaintenanceWindow, window_id)
            if window is None or window.tenant_id != principal.tenant_id:
                raise NotFound(f'Unknown maintenance window {window_id}.')
            await session.delete(window)
            await notify_rules_changed(session, principal.tenant_id)
        self._changed(principal.tenant_id)

    def _changed(self, tenant_id: UUID) -> None:
        for listener in self._listeners:
            listener(tenant_id)
