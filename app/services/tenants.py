"""Tenants and the first-run onboarding that creates the first tenant and its admin."""

from __future__ import annotations

from sqlalchemy import func, select

from app.db import Database
from app.models.schemas import Principal, TenantPublic
from app.models.tables import Tenant, User
from app.services.errors import Conflict, InvalidInput, NotFound
from app.services.users import new_user


class TenantService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create(self, name: str) -> TenantPublic:
        """Platform-level operation (CLI, onboarding): runs on the system connection."""
        if not name.strip():
            raise InvalidInput('A tenant needs a name.', field='name')
        async with self._db.system() as session:
            tenant = Tenant(name=name.strip())
            session.add(tenant)
            await session.flush()
            return TenantPublic.model_validate(tenant)

    async def get(self, principal: Principal) -> TenantPublic:
        async with self._db.tenant(principal.tenant_id) as session:
            tenant = await session.get(Tenant, principal.tenant_id)
            if tenant is None:
                raise NotFound('This organisation no longer exists.', field='tenant')
            return TenantPublic.model_validate(tenant)

    async def needs_onboarding(self) -> bool:
        async with self._db.system() as session:
            return (await session.scalar(select(func.count()).select_from(User))) == 0

    async def onboard(self, *, tenant_name: str, email: str, password: str) -> Principal:
        """Create the first tenant and its admin, once: a second attempt after anyone exists is refused."""
        if not tenant_name.strip():
            raise InvalidInput('The organisation needs a name.', field='tenant_name')
        async with self._db.system() as session:
            # Serialise concurrent first-run attempts: only the first one may create the installation's admin.
            await session.execute(select(func.pg_advisory_xact_lock(0x6710_0002)))
            if await session.scalar(select(func.count()).select_from(User)):
                raise Conflict('Gito is already set up; sign in instead.')
            tenant = Tenant(name=tenant_name.strip())
            session.add(tenant)
            await session.flush()
            user = new_user(tenant_id=tenant.id, email=email, password=password, role='admin')
            session.add(user)
            await session.flush()
            return Principal(tenant_id=tenant.id, user_id=user.id, role='admin', email=user.email)
