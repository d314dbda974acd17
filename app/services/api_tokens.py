"""Personal API tokens: named, scoped to the user's role or less, shown once, stored as SHA-256, may expire.

A token acts as its user with the lesser of the token's role and the user's current role; it stops working
when revoked, expired, the user is disabled or the organisation suspended.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from sqlalchemy import update
from sqlmodel import col, select

from app.db import Database
from app.models.schemas import ROLES, Principal, Role
from app.models.security import ApiToken
from app.models.tables import Tenant, User
from app.services import audit
from app.services.credentials import token_sha256
from app.services.errors import InvalidInput, NotFound, PermissionDenied
from app.services.permissions import ROLE_RANK

PREFIX = 'gito_'
TOUCH_EVERY = timedelta(seconds=60)


class ApiTokenPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str
    role: Role
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


def is_api_token(token: str) -> bool:
    return token.startswith(PREFIX)


def lesser(first: Role, second: Role) -> Role:
    return first if ROLE_RANK[first] <= ROLE_RANK[second] else second


class ApiTokenService:
    def __init__(self, db: Database) -> None:
        self._db = db
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    async def create(self, principal: Principal, *, name: str, role: Role | None = None,
                     expires_at: datetime | None = None) -> tuple[ApiTokenPublic, str]:
        """The token itself is returned only here."""
        if principal.user_id is None:
            raise PermissionDenied('Only a signed-in user can create API tokens.')
        if not name.strip():
            raise InvalidInput('A token needs a name.', field='name')
        role = role or principal.role
        if role not in ROLES:
            raise InvalidInput(f'Role must be one of {", ".join(ROLES)}.', field='role')
        if ROLE_RANK[role] > ROLE_RANK[principal.role]:
            raise PermissionDenied(f'A token cannot have more rights than your role ({principal.role}).')
        if expires_at is not None and expires_at <= self.clock():
            raise InvalidInput('The expiry must be in the future.', field='expires_at')
        token = PREFIX + secrets.token_urlsafe(32)
        record = ApiToken(tenant_id=principal.tenant_id, user_id=principal.user_id, name=name.strip()[:100],
                          token_sha256=token_sha256(token), role=role, expires_at=expires_at,
                          created_at=self.clock())
        async with self._db.tenant(principal.tenant_id) as session:
            session.add(record)
            await session.flush()
            public = ApiTokenPublic.model_validate(record)
            await audit.record(session, principal, 'token.create', 'api_token', record.id,
                               after={'name': public.name, 'role': role, 'expires_at': str(expires_at or '')})
        return public, token

    async def list(self, principal: Principal) -> list[ApiTokenPublic]:
        """The caller's own tokens, newest first."""
        async with self._db.tenant(principal.tenant_id) as session:
            rows = await session.scalars(select(ApiToken).where(col(ApiToken.user_id) == principal.user_id)
                                         .order_by(col(ApiToken.created_at).desc()))
            return [ApiTokenPublic.model_validate(row) for row in rows]

    async def revoke(self, principal: Principal, token_id: UUID) -> ApiTokenPublic:
        async with self._db.tenant(principal.tenant_id) as session:
            record = await session.get(ApiToken, token_id)
            if record is None or record.user_id != principal.user_id or record.tenant_id != principal.tenant_id:
                raise NotFound(f'Unknown API token {token_id}.', field='token_id')
            if record.revoked_at is None:
                record.revoked_at = self.clock()
                await session.flush()
                await audit.record(session, principal, 'token.revoke', 'api_token', record.id,
                                   before={'name': record.name, 'role': record.role})
            return ApiTokenPublic.model_validate(record)

    async def authenticate(self, token: str) -> Principal | None:
        now = self.clock()
        async with self._db.system() as session:
            row = (await session.execute(
                select(ApiToken, User, col(Tenant.status))
                .join(User, col(User.id) == col(ApiToken.user_id))
                .join(Tenant, col(Tenant.id) == col(ApiToken.tenant_id))
                .where(col(ApiToken.token_sha256) == token_sha256(token)),
            )).first()
            if row is None:
                return None
            record, user, tenant_status = row
            if (record.revoked_at is not None or user.disabled or tenant_status != 'active'
                    or (record.expires_at is not None and now >= record.expires_at)):
                return None
            if record.last_used_at is None or now - record.last_used_at >= TOUCH_EVERY:
                await session.execute(update(ApiToken).where(col(ApiToken.id) == record.id)
                                      .values(last_used_at=now))
        role = lesser(record.role, user.role)  # type: ignore[arg-type]
        return Principal(tenant_id=user.tenant_id, user_id=user.id, role=role, email=user.email)
