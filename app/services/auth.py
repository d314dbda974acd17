"""Sign-in: e-mail and password to a principal; bearer tokens for the API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID

import jwt
from sqlalchemy import func, update
from sqlmodel import col, select

from app.db import Database
from app.models.schemas import Principal
from app.models.tables import Tenant, User
from app.services.credentials import dummy_verify, verify_password
from app.services.errors import AuthenticationFailed
from app.services.rate_limits import SignInLimiter

TOKEN_TTL = timedelta(hours=12)
WRONG_CREDENTIALS = 'Wrong e-mail address or password.'


class AuthService:
    def __init__(self, db: Database, *, secret_key: str, limiter: SignInLimiter | None = None) -> None:
        self._db = db
        self._secret = secret_key
        self._limiter = limiter

    async def authenticate(self, email: str, password: str, *, ip: str = '') -> Principal:
        """Rate limited per address and per client (growing delay, 429); no hint whether the account exists."""
        if self._limiter is None:
            return await self._authenticate(email, password)
        await self._limiter.check(email, ip)
        try:
            principal = await self._authenticate(email, password)
        except AuthenticationFailed:
            await self._limiter.failed(email, ip)
            raise
        await self._limiter.succeeded(email)
        return principal

    async def _authenticate(self, email: str, password: str) -> Principal:
        """Same message and about the same time whether the address is unknown or the password wrong."""
        async with self._db.system() as session:
            row = (await session.execute(
                select(User, col(Tenant.status)).join(Tenant, col(Tenant.id) == col(User.tenant_id))
                .where(func.lower(col(User.email)) == email.strip().lower()),
            )).first()
            if row is None:
                dummy_verify()
                raise AuthenticationFailed(WRONG_CREDENTIALS)
            user, tenant_status = row
            if not verify_password(user.password_hash, password):
                raise AuthenticationFailed(WRONG_CREDENTIALS)
            if user.disabled:
                raise AuthenticationFailed('This account is disabled.')
            if tenant_status != 'active':
                raise AuthenticationFailed('This organisation is suspended.')
            await session.execute(update(User).where(col(User.id) == user.id).values(last_login_at=func.now()))
            return Principal(tenant_id=user.tenant_id, user_id=user.id, role=user.role, email=user.email)  # type: ignore[arg-type]

    async def issue_token(self, principal: Principal) -> str:
        """A JWT; it dies at expiry, or earlier when the user's sessions are all ended (a newer generation)."""
        async with self._db.system() as session:
            generation = await session.scalar(
                select(col(User.token_generation)).where(col(User.id) == principal.user_id))
        now = datetime.now(UTC)
        claims = {
            'sub': str(principal.user_id), 'tid': str(principal.tenant_id), 'role': principal.role,
            'email': principal.email, 'gen': int(generation or 0), 'iat': now, 'exp': now + TOKEN_TTL,
        }
        return jwt.encode(claims, self._secret, algorithm='HS256')

    async def principal_from_token(self, token: str) -> Principal:
        try:
            claims = jwt.decode(token, self._secret, algorithms=['HS256'], options={'require': ['exp', 'sub', 'tid']})
        except jwt.PyJWTError as error:
            raise AuthenticationFailed('Invalid or expired token.') from error
        user_id = UUID(claims['sub'])
        async with self._db.system() as session:
            user = await session.get(User, user_id)
            tenant = await session.get(Tenant, UUID(claims['tid']))
        if (user is None or user.disabled or tenant is None or tenant.status != 'active'
                or claims.get('gen', 0) != user.token_generation):
            raise AuthenticationFailed('Invalid or expired token.')
        return Principal(tenant_id=user.tenant_id, user_id=user.id, role=user.role, email=user.email)  # type: ignore[arg-type]
