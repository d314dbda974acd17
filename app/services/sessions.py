"""Server-side sign-in sessions: a fresh random token per login, idle and absolute timeouts, revocation.

The browser keeps only the token (in NiceGUI's per-browser storage); the table keeps its SHA-256. Pages
resolve the token on load and every second; a short in-process cache, emptied by the `session_revoked` bus
event (from any instance, through Redis when configured), keeps that check cheap and revocation immediate.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.bus import EventBus, SessionRevoked
from app.db import Database
from app.models.schemas import Principal, Role
from app.models.security import UserSession
from app.models.tables import Tenant, User
from app.services import audit
from app.services.errors import NotFound
from app.services.permissions import Permission, require

log = logging.getLogger(__name__)
CACHE_S = 10.0
TOUCH_EVERY = timedelta(seconds=60)


def session_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SessionInfo:
    id: str  # the stored hash: safe to show and to revoke by
    created_at: datetime
    last_seen: datetime
    ip: str
    user_agent: str
    current: bool


SessionsByUser = dict[UUID, list[SessionInfo]]


async def revoke_user_sessions(session: AsyncSession, user_id: UUID, *, keep: str | None = None) -> None:
    """Inside the caller's transaction; call `SessionService.announce` after it commits. Also ends the user's API
    sign-in tokens (JWTs carry the user's token generation, which this bumps); `keep` spares one browser session."""
    query = update(UserSession).where(col(UserSession.user_id) == user_id, col(UserSession.revoked_at).is_(None))
    if keep is not None:
        query = query.where(col(UserSession.id) != keep)
    await session.execute(query.values(revoked_at=datetime.now(UTC)))
    await session.execute(update(User).where(col(User.id) == user_id)
                          .values(token_generation=col(User.token_generation) + 1))


class SessionService:
    def __init__(self, db: Database, bus: EventBus, *, idle_s: int, max_s: int) -> None:
        self._db = db
        self._bus = bus
        self.idle = timedelta(seconds=idle_s)
        self.max = timedelta(seconds=max_s)
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self._cache: dict[str, tuple[Principal, float, datetime, datetime]] = {}  # …, last_seen, expires_at

    async def create(self, principal: Principal, *, ip: str = '', user_agent: str = '') -> str:
        """A new session for a freshly authenticated principal; returns the token (shown to nobody but the browser)."""
        assert principal.user_id is not None
        token = secrets.token_urlsafe(32)
        now = self.clock()
        async with self._db.tenant(principal.tenant_id) as session:
            session.add(UserSession(
                id=session_hash(token), tenant_id=principal.tenant_id, user_id=principal.user_id,
                created_at=now, last_seen=now, expires_at=now + self.max, ip=ip[:100], user_agent=user_agent[:300],
            ))
        log.info('session created', extra={'tenant_id': str(principal.tenant_id), 'user_id': str(principal.user_id)})
        return token

    async def resolve(self, token: str | None) -> Principal | None:
        """The principal of a live session, or None (unknown, revoked, expired, user disabled, tenant suspended)."""
        if not token:
            return None
        key = session_hash(token)
        now = self.clock()
        cached = self._cache.get(key)
        if (cached is not None and cached[1] > time.monotonic() and now < cached[3]
                and now - cached[2] < TOUCH_EVERY):  # past that, the visit must be recorded
            return cached[0]
        self._cache.pop(key, None)
        async with self._db.system() as session:
            row = (await session.execute(
                select(UserSession, User, col(Tenant.status))
                .join(User, col(User.id) == col(UserSession.user_id))
                .join(Tenant, col(Tenant.id) == col(UserSession.tenant_id))
                .where(col(UserSession.id) == key),
            )).first()
            if row is None:
                return None
            record, user, tenant_status = row
            if (record.revoked_at is not None or user.disabled or tenant_status != 'active'
                    or now >= record.expires_at or now - record.last_seen >= self.idle):
                return None
            if now - record.last_seen >= TOUCH_EVERY:
                await session.execute(update(UserSession).where(col(UserSession.id) == key).values(last_seen=now))
                record.last_seen = now
        role: Role = user.role  # type: ignore[assignment]
        principal = Principal(tenant_id=user.tenant_id, user_id=user.id, role=role, email=user.email)
        self._cache[key] = (principal, time.monotonic() + CACHE_S, record.last_seen, record.expires_at)
        return principal

    async def revoke(self, token: str) -> None:
        """Sign-out of one browser."""
        key = session_hash(token)
        principal = await self.resolve(token)
        if principal is None or principal.user_id is None:
            return
        async with self._db.tenant(principal.tenant_id) as session:
            await session.execute(update(UserSession).where(col(UserSession.id) == key)
                                  .values(revoked_at=datetime.now(UTC)))
        self.announce(principal.tenant_id, principal.user_id, session_id=key)

    async def revoke_all(self, principal: Principal, *, keep_token: str | None = None) -> None:
        """Log out everywhere (or everywhere else, keeping `keep_token`)."""
        assert principal.user_id is not None
        async with self._db.tenant(principal.tenant_id) as session:
            await revoke_user_sessions(session, principal.user_id,
                                       keep=session_hash(keep_token) if keep_token else None)
        self.announce(principal.tenant_id, principal.user_id)

    async def list(self, principal: Principal, *, current_token: str | None = None) -> list[SessionInfo]:
        """The caller's own live sessions, newest first."""
        current = session_hash(current_token) if current_token else None
        now = self.clock()
        async with self._db.tenant(principal.tenant_id) as session:
            rows = await session.scalars(
                select(UserSession).where(col(UserSession.user_id) == principal.user_id,
                                          col(UserSession.revoked_at).is_(None), col(UserSession.expires_at) > now)
                .order_by(col(UserSession.created_at).desc()))
            return [SessionInfo(id=row.id, created_at=row.created_at, last_seen=row.last_seen, ip=row.ip,
                                user_agent=row.user_agent, current=row.id == current)
                    for row in rows if now - row.last_seen < self.idle]

    async def list_by_user(self, principal: Principal) -> SessionsByUser:
        """Admins: every live session in the organisation, by user, newest first."""
        require(principal, Permission.MANAGE_USERS)
        now = self.clock()
        found: SessionsByUser = {}
        async with self._db.tenant(principal.tenant_id) as session:
            rows = await session.scalars(
                select(UserSession).where(col(UserSession.tenant_id) == principal.tenant_id,
                                          col(UserSession.revoked_at).is_(None), col(UserSession.expires_at) > now,
                                          col(UserSession.last_seen) > now - self.idle)
                .order_by(col(UserSession.created_at).desc()))
            for row in rows:
                found.setdefault(row.user_id, []).append(SessionInfo(
                    id=row.id, created_at=row.created_at, last_seen=row.last_seen, ip=row.ip,
                    user_agent=row.user_agent, current=False))
        return found

    async def revoke_session(self, principal: Principal, user_id: UUID, session_id: str) -> None:
        """Admins: end one session of a user of the organisation (their page leaves within a second)."""
        require(principal, Permission.MANAGE_USERS)
        async with self._db.tenant(principal.tenant_id) as session:
            record = await session.get(UserSession, session_id)
            if record is None or record.tenant_id != principal.tenant_id or record.user_id != user_id:
                raise NotFound('Unknown session.', field='session_id')
            if record.revoked_at is None:
                record.revoked_at = datetime.now(UTC)
                await audit.record(session, principal, 'session.revoke', 'user', user_id,
                                   before={'ip': record.ip, 'created_at': record.created_at.isoformat()})
        self.announce(principal.tenant_id, user_id, session_id=session_id)

    async def revoke_user(self, principal: Principal, user_id: UUID) -> None:
        """Admins: log a user of the organisation out everywhere (browser sessions and API sign-in tokens)."""
        require(principal, Permission.MANAGE_USERS)
        async with self._db.tenant(principal.tenant_id) as session:
            user = await session.get(User, user_id)
            if user is None or user.tenant_id != principal.tenant_id:
                raise NotFound(f'Unknown user {user_id}.', field='user_id')
            await revoke_user_sessions(session, user_id)
            await audit.record(session, principal, 'session.revoke_all', 'user', user_id)
        self.announce(principal.tenant_id, user_id)

    def announce(self, tenant_id: UUID, user_id: UUID, *, session_id: str | None = None) -> None:
        """After a commit that ended sessions: forget them here and tell every instance."""
        event = SessionRevoked(tenant_id=tenant_id, user_id=user_id, session_id=session_id)
        self.forget(event)
        self._bus.session_revoked.publish(event)
        log.info('sessions revoked', extra={'tenant_id': str(tenant_id), 'user_id': str(user_id)})

    def forget(self, event: SessionRevoked) -> None:
        for key, (principal, *_) in list(self._cache.items()):
            if key == event.session_id or (event.session_id is None and principal.user_id == event.user_id):
                self._cache.pop(key, None)

    def forget_tenant(self, tenant_id: UUID) -> None:
        """A tenant was suspended or deleted: re-check all its sessions against the database."""
        for key, (principal, *_) in list(self._cache.items()):
            if principal.tenant_id == tenant_id:
                self._cache.pop(key, None)

    async def watch(self) -> None:
        """Background task: revocations published by other instances empty this instance's cache."""
        subscription = self._bus.session_revoked.subscribe(maxsize=10_000)
        try:
            async for event in subscription:
                self.forget(event)
        finally:
            subscription.close()
