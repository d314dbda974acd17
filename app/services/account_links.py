"""One-time links by e-mail: invitations to join a tenant, and password resets.

A link carries a random 256-bit token; only its SHA-256 is stored. It works once, before it expires
(invitations after 7 days, resets after 1 hour). Looking a token up is an explicit system path, like the
sign-in look-up by e-mail: the person opening the link is not signed in, so no tenant is known yet.
A reset request never tells whether the address has an account: same answer, same time (the e-mail goes out
from a background task), and at most a few e-mails per address and per client address in a while.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.config import Settings
from app.db import Database
from app.models.schemas import ROLES, Principal, Role
from app.models.security import AccountLink
from app.models.tables import Tenant, User
from app.services import audit
from app.services.account_mail import invite_message, reset_message
from app.services.credentials import hash_password, token_sha256
from app.services.errors import Conflict, InvalidInput, NotFound
from app.services.mailer import SMTP_MISSING, MailError, send_email, smtp_configured
from app.services.permissions import Permission, require
from app.services.rate_limits import LimitStore
from app.services.sessions import SessionService, revoke_user_sessions
from app.services.users import EXISTS, check_email, check_password, new_user

log = logging.getLogger(__name__)
INVITE_TTL = timedelta(days=7)
RESET_TTL = timedelta(hours=1)
RESET_EMAILS_PER_HOUR = 3
LINK_INVALID = 'This link has expired or was already used. Ask for a new one.'
RESET_REQUESTED = 'If an account exists for this address, we have sent it a link to set a new password.'
RESET_NO_MAIL = 'E-mail is not set up on this installation, so no reset link can be sent. Ask an admin for help.'


class InvitePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    email: str
    role: Role
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None
    revoked_at: datetime | None


@dataclass(frozen=True)
class InviteSent:
    invite: InvitePublic
    emailed: bool
    link: str | None  # only when it was not e-mailed: the admin hands it over
    problem: str | None  # why it was not e-mailed


@dataclass(frozen=True)
class LinkDetails:
    kind: str
    email: str
    tenant_name: str


class LinkInvalid(NotFound):
    def __init__(self) -> None:
        super().__init__(LINK_INVALID, field='token')


class AccountLinkService:
    def __init__(self, db: Database, sessions: SessionService, settings: Settings, *, base_url: str,
                 limits: LimitStore) -> None:
        self._db = db
        self._sessions = sessions
        self._settings = settings
        self._base_url = base_url.rstrip('/')
        self._limits = limits
        self._sending: set[asyncio.Task[None]] = set()
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    # invitations --------------------------------------------------------------------------------------------

    async def invite(self, principal: Principal, *, email: str, role: Role) -> InviteSent:
        """A one-time link to join the admin's tenant with `role`, e-mailed (or handed back when SMTP is unset)."""
        require(principal, Permission.MANAGE_USERS)
        email = check_email(email)
        if role not in ROLES:
            raise InvalidInput(f'Role must be one of {", ".join(ROLES)}.', field='role')
        async with self._db.system() as session:  # e-mail addresses are unique across the installation
            if await session.scalar(select(col(User.id)).where(func.lower(col(User.email)) == email)) is not None:
                raise Conflict(EXISTS, field='email')
        token = secrets.token_urlsafe(32)
        async with self._db.tenant(principal.tenant_id) as session:
            tenant = await session.get(Tenant, principal.tenant_id)
            assert tenant is not None
            await session.execute(update(AccountLink).where(  # one pending invitation per address
                col(AccountLink.tenant_id) == principal.tenant_id, col(AccountLink.kind) == 'invite',
                col(AccountLink.email) == email, col(AccountLink.used_at).is_(None),
                col(AccountLink.revoked_at).is_(None)).values(revoked_at=self.clock()))
            link = AccountLink(tenant_id=principal.tenant_id, kind='invite', email=email, role=role,
                               token_sha256=token_sha256(token), created_by=principal.user_id,
                               created_at=self.clock(), expires_at=self.clock() + INVITE_TTL)
            session.add(link)
            await session.flush()
            invite = InvitePublic.model_validate(link)
            await audit.record(session, principal, 'user.invite', 'invite', link.id,
                               after={'email': email, 'role': role})
        url = f'{self._base_url}/invite/{token}'
        subject, plain, html = invite_message(tenant_name=tenant.name, inviter=principal.email, role=role, url=url,
                                              expires_at=invite.expires_at)
        try:
            await send_email(self._settings, to=[email], subject=subject, plain=plain, html=html)
        except MailError as error:
            log.warning('invitation not e-mailed', extra={'tenant_id': str(principal.tenant_id),
                                                          'reason': str(error)})
            problem = ('E-mail is not set up (SMTP_HOST unset)' if str(error) == SMTP_MISSING else str(error))
            return InviteSent(invite=invite, emailed=False, link=url, problem=problem)
        return InviteSent(invite=invite, emailed=True, link=None, problem=None)

    async def pending_invites(self, principal: Principal) -> list[InvitePublic]:
        require(principal, Permission.MANAGE_USERS)
        async with self._db.tenant(principal.tenant_id) as session:
            rows = await session.scalars(select(AccountLink).where(
                col(AccountLink.tenant_id) == principal.tenant_id, col(AccountLink.kind) == 'invite',
                col(AccountLink.used_at).is_(None), col(AccountLink.revoked_at).is_(None),
                col(AccountLink.expires_at) > self.clock()).order_by(col(AccountLink.created_at).desc()))
            return [InvitePublic.model_validate(row) for row in rows]

    async def revoke_invite(self, principal: Principal, invite_id: UUID) -> None:
        require(principal, Permission.MANAGE_USERS)
        async with self._db.tenant(principal.tenant_id) as session:
            link = await session.get(AccountLink, invite_id)
            if link is None or link.tenant_id != principal.tenant_id or link.kind != 'invite':
                raise NotFound(f'Unknown invitation {invite_id}.', field='invite_id')
            if link.revoked_at is None and link.used_at is None:
                link.revoked_at = self.clock()
                await audit.record(session, principal, 'user.invite_revoke', 'invite', link.id,
                                   before={'email': link.email, 'role': link.role})

    async def accept_invite(self, token: str, *, display_name: str, password: str) -> Principal:
        """Create the invited user (name and password of their choosing); the link is spent."""
        check_password(password)
        async with self._db.system() as session:
            link = await self._usable(session, token, 'invite')
            assert link.role is not None
            user = new_user(tenant_id=link.tenant_id, email=link.email, password=password, role=link.role,
                            display_name=display_name)
            session.add(user)
            try:
                await session.flush()
            except IntegrityError as error:
                raise Conflict(EXISTS, field='email') from error
            link.used_at = self.clock()
            role: Role = link.role  # type: ignore[assignment]
            principal = Principal(tenant_id=user.tenant_id, user_id=user.id, role=role, email=user.email)
            await audit.record(session, principal, 'user.invite_accept', 'user', user.id,
                               after={'email': user.email, 'role': role})
        return principal

    # password resets ----------------------------------------------------------------------------------------

    async def request_reset(self, email: str, *, ip: str = '') -> str:
        """Always the same answer, at once; the e-mail (if there is an account) goes out in the background."""
        if not smtp_configured(self._settings):
            return RESET_NO_MAIL  # the same for every address: tells nothing about accounts
        address = email.strip().lower()
        waits = [await self._limits.take(f'reset:{key}', rate=RESET_EMAILS_PER_HOUR / 3600,
                                         burst=RESET_EMAILS_PER_HOUR) for key in (address, f'ip:{ip}')]
        if not any(waits):
            task = asyncio.create_task(self._send_reset(address))
            self._sending.add(task)
            task.add_done_callback(self._sending.discard)
        return RESET_REQUESTED

    async def settle(self) -> None:
        """Wait for reset e-mails still being sent (tests, shutdown)."""
        while self._sending:
            await asyncio.gather(*self._sending, return_exceptions=True)

    async def _send_reset(self, email: str) -> None:
        async with self._db.system() as session:
            row = (await session.execute(
                select(User, col(Tenant.status)).join(Tenant, col(Tenant.id) == col(User.tenant_id))
                .where(func.lower(col(User.email)) == email))).first()
            if row is None or row[0].disabled or row[1] != 'active':
                return
            user: User = row[0]
            token = secrets.token_urlsafe(32)
            session.add(AccountLink(tenant_id=user.tenant_id, kind='reset', email=user.email, user_id=user.id,
                                    token_sha256=token_sha256(token), created_at=self.clock(),
                                    expires_at=self.clock() + RESET_TTL))
        subject, plain, html = reset_message(url=f'{self._base_url}/reset/{token}', expires_at=self.clock() + RESET_TTL)
        try:
            await send_email(self._settings, to=[user.email], subject=subject, plain=plain, html=html)
        except MailError as error:
            log.warning('password reset not e-mailed', extra={'tenant_id': str(user.tenant_id), 'reason': str(error)})

    async def reset_password(self, token: str, *, password: str) -> None:
        """Set the new password; every session of the user ends and every other reset link dies."""
        password_hash = hash_password(check_password(password))
        async with self._db.system() as session:
            link = await self._usable(session, token, 'reset')
            user = await session.get(User, link.user_id)
            if user is None or user.disabled:
                raise LinkInvalid()
            user.password_hash = password_hash
            now = self.clock()
            await session.execute(update(AccountLink).where(
                col(AccountLink.user_id) == user.id, col(AccountLink.kind) == 'reset',
                col(AccountLink.used_at).is_(None)).values(used_at=now))
            await revoke_user_sessions(session, user.id)
            role: Role = user.role  # type: ignore[assignment]
            principal = Principal(tenant_id=user.tenant_id, user_id=user.id, role=role, email=user.email)
            await audit.record(session, principal, 'user.password_reset', 'user', user.id)
        self._sessions.announce(user.tenant_id, user.id)

    # both ---------------------------------------------------------------------------------------------------

    async def describe(self, token: str, kind: str) -> LinkDetails:
        """What the link is for (the page shows the address), or LinkInvalid."""
        async with self._db.system() as session:
            link = await self._usable(session, token, kind, lock=False)
            tenant = await session.get(Tenant, link.tenant_id)
            return LinkDetails(kind=link.kind, email=link.email, tenant_name=tenant.name if tenant else '')

    async def _usable(self, session: AsyncSession, token: str, kind: str, *, lock: bool = True) -> AccountLink:
        query = (select(AccountLink).join(Tenant, col(Tenant.id) == col(AccountLink.tenant_id))
                 .where(col(AccountLink.token_sha256) == token_sha256(token), col(AccountLink.kind) == kind,
                        col(Tenant.status) == 'active'))
        link = await session.scalar(query.with_for_update(of=AccountLink) if lock else query)
        if link is None or link.used_at is not None or link.revoked_at is not None or self.clock() >= link.expires_at:
            raise LinkInvalid()
        return link
