"""Single sign-on with OpenID Connect (authorization code flow with PKCE, through Authlib's client).

Configured per installation (GITO_OIDC_*). `begin` returns the provider's authorization URL and a signed,
short-lived value the browser keeps in a cookie (state, nonce, PKCE verifier), so any instance can finish the
login. `complete` exchanges the code, verifies the id_token (signature from the provider's JWKS, issuer,
audience, expiry, nonce) and maps it to a user: the tenant from a claim (a tenant id or an organisation name) or
GITO_OIDC_TENANT, the role from a claim (else GITO_OIDC_DEFAULT_ROLE for a new user). A new user is created; a
known one is bound to its OpenID subject on first use and its role follows the provider's claim.
"""

from __future__ import annotations

import logging
import secrets
import time
import warnings
from datetime import UTC, datetime
from typing import Any, cast
from uuid import UUID

import httpx
import jwt as pyjwt
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet
from sqlalchemy import func
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, select

from app.config import Settings
from app.db import Database
from app.models.schemas import ROLES, Principal, Role
from app.models.tables import Tenant, User
from app.services import audit
from app.services.credentials import hash_password
from app.services.errors import AuthenticationFailed, Unavailable
from app.services.permissions import ROLE_RANK

with warnings.catch_warnings():
    # Authlib 1.9.10 warns on import when the `httpx2` package is absent and falls back to httpx, which the rest
    # of Gito uses: the warning would be printed by every `gito` command. Its module turns its warnings on when
    # imported, so the filter goes in after that.
    from authlib.deprecate import AuthlibDeprecationWarning

    warnings.filterwarnings('ignore', message='The httpx module is deprecated', category=AuthlibDeprecationWarning)
    from authlib.integrations.httpx_client import AsyncOAuth2Client

log = logging.getLogger(__name__)
STATE_TTL_S = 600
METADATA_TTL_S = 3600
FAILED = 'Single sign-on failed; try again.'


class OidcService:
    def __init__(self, db: Database, settings: Settings, *, redirect_uri: str, secret: str) -> None:
        self._db = db
        self._settings = settings
        self.redirect_uri = redirect_uri
        self._secret = secret
        self._metadata: tuple[float, dict[str, Any]] | None = None
        self._keys: KeySet | None = None

    @property
    def enabled(self) -> bool:
        return bool(self._settings.oidc_issuer and self._settings.oidc_client_id)

    @property
    def button(self) -> str:
        return self._settings.oidc_button

    def _client(self) -> AsyncOAuth2Client:
        secret = self._settings.oidc_client_secret
        return AsyncOAuth2Client(
            client_id=self._settings.oidc_client_id, client_secret=secret.get_secret_value() if secret else None,
            scope=self._settings.oidc_scopes, redirect_uri=self.redirect_uri, code_challenge_method='S256',
            timeout=10,
        )

    async def begin(self) -> tuple[str, str]:
        """The provider's authorization URL, and the value for the browser's short-lived login cookie."""
        metadata = await self._provider()
        state, nonce, verifier = secrets.token_urlsafe(24), secrets.token_urlsafe(24), secrets.token_urlsafe(48)
        async with self._client() as client:
            url, _ = client.create_authorization_url(metadata['authorization_endpoint'], state=state,
                                                     code_verifier=verifier, nonce=nonce)
        cookie = pyjwt.encode({'state': state, 'nonce': nonce, 'verifier': verifier,
                               'exp': int(time.time()) + STATE_TTL_S}, self._secret, algorithm='HS256')
        return str(url), cookie

    async def complete(self, *, code: str, state: str, cookie: str | None, ip: str = '') -> Principal:
        """Finish the login the provider redirected back with; the principal to sign in."""
        try:
            pending = pyjwt.decode(cookie or '', self._secret, algorithms=['HS256'], options={'require': ['exp']})
        except pyjwt.PyJWTError as error:
            raise AuthenticationFailed('The sign-in took too long or came from another browser; try again.') \
                from error
        if not secrets.compare_digest(str(pending.get('state', '')), state):
            raise AuthenticationFailed(FAILED)
        claims = await self._id_token_claims(code, verifier=str(pending['verifier']), nonce=str(pending['nonce']))
        return await self._sign_in(claims, ip=ip)

    async def _provider(self) -> dict[str, Any]:
        if self._metadata is not None and self._metadata[0] > time.monotonic():
            return self._metadata[1]
        issuer = (self._settings.oidc_issuer or '').rstrip('/')
        try:
            async with httpx.AsyncClient(timeout=10) as http:
                metadata = (await http.get(f'{issuer}/.well-known/openid-configuration')).raise_for_status().json()
                keys = KeySet.import_key_set((await http.get(metadata['jwks_uri'])).raise_for_status().json())
        except (httpx.HTTPError, ValueError, KeyError, JoseError) as error:
            log.warning('oidc provider unreachable', extra={'issuer': issuer, 'error': type(error).__name__})
            raise Unavailable('The single sign-on provider cannot be reached; try again later.') from error
        if str(metadata.get('issuer', '')).rstrip('/') != issuer:
            raise Unavailable('The single sign-on provider is misconfigured (issuer mismatch).')
        self._metadata, self._keys = (time.monotonic() + METADATA_TTL_S, metadata), keys
        return cast(dict[str, Any], metadata)

    async def _id_token_claims(self, code: str, *, verifier: str, nonce: str) -> dict[str, Any]:
        metadata = await self._provider()
        try:
            async with self._client() as client:
                token = await client.fetch_token(metadata['token_endpoint'], code=code, code_verifier=verifier)
            assert self._keys is not None
            decoded = jwt.decode(token['id_token'], self._keys, algorithms=['RS256', 'ES256', 'PS256'])
            jwt.JWTClaimsRegistry(
                iss={'essential': True, 'value': metadata['issuer']},
                aud={'essential': True, 'value': self._settings.oidc_client_id or ''},
                nonce={'essential': True, 'value': nonce}, sub={'essential': True}, exp={'essential': True},
            ).validate(decoded.claims)
        except Exception as error:  # the provider's or the token's fault: never a 500, never the details
            log.warning('oidc sign-in refused', extra={'error': type(error).__name__})
            raise AuthenticationFailed(FAILED) from error
        return decoded.claims

    async def _sign_in(self, claims: dict[str, Any], *, ip: str) -> Principal:
        email = str(claims.get('email') or '').strip().lower()
        if not email or claims.get('email_verified') is False:
            raise AuthenticationFailed('Your identity provider did not confirm an e-mail address.')
        subject = f'{claims["iss"]} {claims["sub"]}'
        role = _role(claims.get(self._settings.oidc_role_claim))
        tenant_ref = claims.get(self._settings.oidc_tenant_claim) or self._settings.oidc_tenant
        async with self._db.system() as session:  # who signs in is not known yet: an explicit system path
            tenant = await _tenant(session, str(tenant_ref or ''))
            user = await session.scalar(select(User).where(func.lower(col(User.email)) == email))
            if user is None:
                user = User(tenant_id=tenant.id, email=email, display_name=str(claims.get('name') or '')[:200],
                            password_hash=hash_password(secrets.token_urlsafe(32)),  # no password: SSO only
                            role=role or self._settings.oidc_default_role, oidc_subject=subject)
                session.add(user)
                await session.flush()
                action, before = 'user.sso_create', None
            else:
                if user.tenant_id != tenant.id or (user.oidc_subject not in (None, subject)):
                    raise AuthenticationFailed('This e-mail address belongs to another account; ask your admin.')
                if user.disabled:
                    raise AuthenticationFailed('This account is disabled.')
                action, before = 'user.sso_sign_in', {'role': user.role}
                user.oidc_subject = subject
                user.role = role or user.role
            user.last_login_at = datetime.now(UTC)
            principal = Principal(tenant_id=tenant.id, user_id=user.id, role=user.role, email=user.email)  # type: ignore[arg-type]
            if before is None or before['role'] != user.role:
                await audit.record(session, principal, action, 'user', user.id, before=before,
                                   after={'email': email, 'role': user.role}, ip=ip)
        return principal


def _role(value: object) -> Role | None:
    """The highest known role among the claim's value(s)."""
    values = value if isinstance(value, list) else [value]
    known: list[Role] = [role for role in ROLES if role in values]
    if not known:
        return None
    return max(known, key=ROLE_RANK.__getitem__)


async def _tenant(session: AsyncSession, reference: str) -> Tenant:
    tenant: Tenant | None = None
    try:
        tenant = await session.get(Tenant, UUID(reference))
    except ValueError:
        if reference:
            tenant = await session.scalar(select(Tenant).where(func.lower(col(Tenant.name)) == reference.lower()))
    if tenant is None:
        raise AuthenticationFailed('Your identity provider did not name an organisation known here.')
    if tenant.status != 'active':
        raise AuthenticationFailed('This organisation is suspended.')
    return tenant
