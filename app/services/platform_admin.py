"""Platform administration (the `gito tenant` commands): suspend, resume and delete a tenant with all its data.

These are the explicit cross-tenant paths: they run on the owner connection, are logged, and suspend/resume
are also written to the tenant's audit log. Every Gito process learns of the change through the device NOTIFY
channel (its device directory refuses a suspended tenant's telemetry) and sessions re-check the tenant.
"""

from __future__ import annotations

import logging
from typing import Literal
from uuid import UUID

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.db import Database
from app.models.schemas import Principal, TenantOverview, TenantPublic
from app.models.tables import Device, Tenant
from app.services import audit
from app.services.devices import DEVICE_CHANNEL
from app.services.errors import NotFound
from app.services.sessions import SessionService
from app.services.storage import timescale
from app.services.storage.maintenance import materialized_aggregates

log = logging.getLogger(__name__)
PLATFORM_ADMIN = 'platform administrator'

# Tenant-owned tables that reference no tenant row (so no cascade reaches them): emptied explicitly on delete.
UNLINKED_TABLES = text("""
    SELECT c.table_name FROM information_schema.columns c
    JOIN information_schema.tables t ON t.table_schema = c.table_schema AND t.table_name = c.table_name
    WHERE c.table_schema = 'public' AND c.column_name = 'tenant_id' AND t.table_type = 'BASE TABLE'
      AND NOT EXISTS (
        SELECT 1 FROM pg_constraint k
        WHERE k.contype = 'f' AND k.conrelid = format('public.%I', c.table_name)::regclass
          AND k.confrelid = 'public.tenants'::regclass)
""")


TENANT_OVERVIEW = text("""
    SELECT t.id, t.name, t.status, t.created_at,
           (SELECT count(*) FROM devices d WHERE d.tenant_id = t.id) AS devices,
           (SELECT count(*) FROM users u WHERE u.tenant_id = t.id) AS users
    FROM tenants t ORDER BY lower(t.name), t.id
""")


class PlatformAdminService:
    def __init__(self, db: Database, sessions: SessionService) -> None:
        self._db = db
        self._sessions = sessions

    async def tenants(self) -> list[TenantOverview]:
        """Every tenant, with how many devices and users it has."""
        async with self._db.system() as session:
            rows = await session.execute(TENANT_OVERVIEW)
            return [TenantOverview.model_validate(dict(row._mapping)) for row in rows]

    async def set_status(self, tenant_id: UUID, status: Literal['active', 'suspended']) -> TenantPublic:
        async with self._db.system() as session:
            tenant = await session.get(Tenant, tenant_id)
            if tenant is None:
                raise NotFound(f'Unknown tenant {tenant_id}.', field='tenant')
            before = tenant.status
            tenant.status = status
            if status == 'suspended':
                await session.execute(text(
                    'UPDATE sessions SET revoked_at = now() WHERE tenant_id = :tenant AND revoked_at IS NULL'),
                    {'tenant': tenant_id})
            await session.flush()
            actor = Principal(tenant_id=tenant_id, user_id=None, role='admin', email=PLATFORM_ADMIN)
            await audit.record(session, actor, f'tenant.{"suspend" if status == "suspended" else "resume"}',
                               'tenant', tenant_id, before={'status': before}, after={'status': status})
            await _notify_devices(session, tenant_id)
            public = TenantPublic.model_validate(tenant)
        self._sessions.forget_tenant(tenant_id)
        log.info('tenant status changed', extra={'tenant_id': str(tenant_id), 'status': status})
        return public

    async def delete(self, tenant_id: UUID) -> None:
        """The tenant and everything it owns, telemetry included."""
        async with self._db.system() as session:
            if await session.get(Tenant, tenant_id) is None:
                raise NotFound(f'Unknown tenant {tenant_id}.', field='tenant')
            await _notify_devices(session, tenant_id)  # delivered at commit: the directory forgets them
            for table in (await session.scalars(UNLINKED_TABLES)).all():
                await session.execute(text(f'DELETE FROM "{table}" WHERE tenant_id = :tenant'), {'tenant': tenant_id})
            if await session.scalar(text(timescale.IN_USE)):
                for statement in timescale.tenant_delete_statements(await materialized_aggregates(session)):
                    await session.execute(text(statement), {'tenant': tenant_id})
            await session.execute(text('DELETE FROM tenants WHERE id = :tenant'), {'tenant': tenant_id})
        self._sessions.forget_tenant(tenant_id)
        log.info('tenant deleted', extra={'tenant_id': str(tenant_id)})


async def _notify_devices(session: AsyncSession, tenant_id: UUID) -> None:
    for device_id in await session.scalars(select(Device.id).where(col(Device.tenant_id) == tenant_id)):
        await session.execute(text(f"SELECT pg_notify('{DEVICE_CHANNEL}', :device)"), {'device': str(device_id)})
