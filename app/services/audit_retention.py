"""How long the audit log keeps entries: per tenant (`tenants.audit_retention_days`), else the installation's
default (GITO_AUDIT_RETENTION_DAYS). A sweep deletes older entries of every tenant; one instance at a time
(advisory lock, like the presence sweep), in bounded batches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import text

from app.db import Database
from app.models.schemas import Principal
from app.models.tables import Tenant
from app.services import audit
from app.services.errors import InvalidInput, NotFound
from app.services.periodic import PeriodicTask
from app.services.permissions import Permission, require

log = logging.getLogger(__name__)
RETENTION_LOCK_ID = 0x6710_0006
MIN_DAYS, MAX_DAYS = 7, 3650
BATCH = 10_000

SWEEP = """
DELETE FROM audit_log WHERE id IN (
    SELECT a.id FROM audit_log a JOIN tenants t ON t.id = a.tenant_id
    WHERE a.at < now() - make_interval(days => coalesce(t.audit_retention_days, :default_days))
    LIMIT :batch)"""


@dataclass(frozen=True)
class Retention:
    days: int
    default: bool  # the installation's default, not chosen for this tenant


class AuditRetention:
    def __init__(self, db: Database, *, default_days: int, every_s: float = 3600.0) -> None:
        self._db = db
        self.default_days = default_days
        self.job = PeriodicTask(self.sweep, every_s=every_s, name='audit retention')

    async def get(self, principal: Principal) -> Retention:
        require(principal, Permission.VIEW_AUDIT)
        async with self._db.tenant(principal.tenant_id) as session:
            tenant = await session.get(Tenant, principal.tenant_id)
            if tenant is None:
                raise NotFound('Unknown organisation.')
            chosen = tenant.audit_retention_days
        return Retention(days=chosen or self.default_days, default=chosen is None)

    async def set(self, principal: Principal, days: int | None) -> Retention:
        """Days to keep (None: back to the default)."""
        require(principal, Permission.VIEW_AUDIT)
        if days is not None and not MIN_DAYS <= days <= MAX_DAYS:
            raise InvalidInput(f'Keep the audit log between {MIN_DAYS} and {MAX_DAYS} days.', field='days')
        async with self._db.tenant(principal.tenant_id) as session:
            tenant = await session.get(Tenant, principal.tenant_id)
            if tenant is None:
                raise NotFound('Unknown organisation.')
            before, tenant.audit_retention_days = tenant.audit_retention_days, days
            await audit.record(session, principal, 'audit.retention', 'tenant', tenant.id,
                               before={'days': before}, after={'days': days})
        return Retention(days=days or self.default_days, default=days is None)

    async def sweep(self) -> int:
        """Delete what is past every tenant's retention; 0 when another instance holds the lock this round."""
        deleted = 0
        while True:
            async with self._db.system() as session:
                if not await session.scalar(text('SELECT pg_try_advisory_xact_lock(:id)'), {'id': RETENTION_LOCK_ID}):
                    return deleted
                result = await session.execute(text(SWEEP), {'default_days': self.default_days, 'batch': BATCH})
            count = int(getattr(result, 'rowcount', 0) or 0)
            deleted += count
            if count < BATCH:
                break
        if deleted:
            log.info('audit entries past retention deleted', extra={'deleted': deleted})
        return deleted
