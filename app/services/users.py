"""Users of a tenant."""

from __future__ import annotations

import re
from uuid import UUID

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.db import Database
from app.models.schemas import ROLES, Principal, Role, UserPublic
from app.models.tables import Tenant, User
from app.services.credentials import hash_password
from app.services.errors import Conflict, InvalidInput, NotFound, PermissionDenied

EMAIL = re.compile(r'^[^@\s]+@[^@\s]+\.[^@\s]+$')
MIN_PASSWORD = 10


def check_email(email: str) -> str:
    email = email.strip().lower()
    if not EMAIL.match(email):
        raise InvalidInput('Enter a valid e-mail address.', field='email')
    return email


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f'The password needs at least {MIN_PASSWORD} characters.', field='password')
    return password


def new_user(*, tenant_id: UUID, email: str, password: str, role: str, display_name: str = '') -> User:
    if role not in ROLES:
        raise InvalidInput(f'Role must be one of {", ".join(ROLES)}.', field='role')
    return User(
        tenant_id=tenant_id, email=check_email(email), password_hash=hash_password(check_password(password)),
        role=role, display_name=display_name.strip(),
    )


class UserService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def create_in_tenant(self, tenant_id: UUID, *, email: str, password: str, role: Role) -> UserPublic:
        """Platform-level (CLI): add a user to any tenant."""
        user = new_user(tenant_id=tenant_id, email=email, password=password, role=role)
        async with self._db.system() as session:
            if await session.get(Tenant, tenant_id) is None:
                raise NotFound(f'Unknown tenant {tenant_id}.', field='tenant')
            return await self._insert(session, user)

    async def create(self, principal: Principal, *, email: str, password: str, role: Role) -> UserPublic:
        if principal.role != 'admin':
            raise PermissionDenied('Only an admin can add users.')
        user = new_user(tenant_id=principal.tenant_id, email=email, password=password, role=role)
        async with self._db.tenant(principal.tenant_id) as session:
            return await self._insert(session, user)

    async def list(self, principal: Principal) -> list[UserPublic]:
        async with self._db.tenant(principal.tenant_id) as session:
            rows = await session.scalars(
                select(User).where(col(User.tenant_id) == principal.tenant_id).order_by(func.lower(col(User.email))),
            )
            return [UserPublic.model_validate(user) for user in rows]

    @staticmethod
    async def _insert(session: AsyncSession, user: User) -> UserPublic:
        session.add(user)
        try:
            await session.flush()
        except IntegrityError as error:
            raise Conflict('A user with this e-mail address already exists.', field='email') from error
        return UserPublic.model_validate(user)
