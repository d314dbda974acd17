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
from app.services import audit
from app.services.credentials import hash_password, verify_password
from app.services.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound, PermissionDenied
from app.services.permissions import Permission, require
from app.services.sessions import SessionService, revoke_user_sessions, session_hash

EMAIL = re.compile(r'^[^@\s]+@[^@\s]+\.[^@\s]+$')
MIN_PASSWORD = 10
EXISTS = 'A user with this e-mail address already exists.'


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
    def __init__(self, db: Database, sessions: SessionService) -> None:
        self._db = db
        self._sessions = sessions

    async def create_in_tenant(self, tenant_id: UUID, *, email: str, password: str, role: Role) -> UserPublic:
        """Platform-level (CLI): add a user to any tenant."""
        user = new_user(tenant_id=tenant_id, email=email, password=password, role=role)
        async with self._db.system() as session:
            if await session.get(Tenant, tenant_id) is None:
                raise NotFound(f'Unknown tenant {tenant_id}.', field='tenant')
            return await self._insert(session, user)

    async def create(self, principal: Principal, *, email: str, password: str, role: Role) -> UserPublic:
        require(principal, Permission.MANAGE_USERS)
        user = new_user(tenant_id=principal.tenant_id, email=email, password=password, role=role)
        async with self._db.tenant(principal.tenant_id) as session:
            created = await self._insert(session, user)
            await audit.record(session, principal, 'user.create', 'user', created.id, after=_snapshot(created))
            return created

    async def set_role(self, principal: Principal, user_id: UUID, role: Role) -> UserPublic:
        require(principal, Permission.MANAGE_USERS)
        if role not in ROLES:
            raise InvalidInput(f'Role must be one of {", ".join(ROLES)}.', field='role')
        return await self._change(principal, user_id, 'user.role', role=role)

    async def set_disabled(self, principal: Principal, user_id: UUID, disabled: bool) -> UserPublic:
        """Disabling ends all the user's sessions at once (their open pages leave within a second)."""
        require(principal, Permission.MANAGE_USERS)
        return await self._change(principal, user_id, 'user.disable' if disabled else 'user.enable',
                                  disabled=disabled)

    async def change_password(self, principal: Principal, *, current: str, new: str,
                              keep_token: str | None = None) -> None:
        """The signed-in user's own password; every other session of theirs is ended."""
        if principal.user_id is None:
            raise PermissionDenied('Only a signed-in user has a password.')
        password_hash = hash_password(check_password(new))
        async with self._db.tenant(principal.tenant_id) as session:
            user = await _load(session, principal, principal.user_id)
            if not verify_password(user.password_hash, current):
                raise AuthenticationFailed('The current password is wrong.', field='current_password')
            user.password_hash = password_hash
            await revoke_user_sessions(session, user.id, keep=session_hash(keep_token) if keep_token else None)
            await audit.record(session, principal, 'user.password', 'user', user.id)
        self._sessions.announce(principal.tenant_id, principal.user_id)

    async def _change(self, principal: Principal, user_id: UUID, action: str, **values: object) -> UserPublic:
        if user_id == principal.user_id:
            raise PermissionDenied('You cannot change your own role or disable yourself.')
        async with self._db.tenant(principal.tenant_id) as session:
            user = await _load(session, principal, user_id)
            before = _snapshot(UserPublic.model_validate(user))
            for name, value in values.items():
                setattr(user, name, value)
            if user.disabled:
                await revoke_user_sessions(session, user.id)
            await session.flush()
            changed = UserPublic.model_validate(user)
            await audit.record(session, principal, action, 'user', user.id, before=before, after=_snapshot(changed))
        self._sessions.announce(principal.tenant_id, user_id)  # re-read role/state everywhere
        return changed

    async def get(self, principal: Principal, user_id: UUID) -> UserPublic:
        require(principal, Permission.MANAGE_USERS)
        async with self._db.tenant(principal.tenant_id) as session:
            return UserPublic.model_validate(await _load(session, principal, user_id))

    async def list(self, principal: Principal) -> list[UserPublic]:
        require(principal, Permission.MANAGE_USERS)
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
            raise Conflict(EXISTS, field='email') from error
        return UserPublic.model_validate(user)


async def _load(session: AsyncSession, principal: Principal, user_id: UUID) -> User:
    user = await session.get(User, user_id)
    if user is None or user.tenant_id != principal.tenant_id:
        raise NotFound(f'Unknown user {user_id}.', field='user_id')
    return user


def _snapshot(user: UserPublic) -> dict[str, object]:
    return {'email': user.email, 'role': user.role, 'disabled': user.disabled}
