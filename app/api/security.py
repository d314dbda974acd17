"""Who is calling: a user's bearer token (JWT) for the API, a device's own token for HTTP ingest."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPBearer, OAuth2PasswordBearer

from app.models.schemas import Principal
from app.platform import Platform
from app.services.api_tokens import is_api_token
from app.services.errors import AuthenticationFailed
from app.services.rate_limits import take_tenant

TOKEN_URL = '/api/v1/auth/token'  # noqa: S105
MISSING_TOKEN = 'Sign in: send "Authorization: Bearer <token>" with a token from POST /api/v1/auth/token.'  # noqa: S105

PrincipalDependency = Callable[..., Awaitable[Principal]]


def user_scheme() -> OAuth2PasswordBearer:
    """`auto_error=False`: a missing token becomes our own 401 problem, not FastAPI's plain error."""
    return OAuth2PasswordBearer(tokenUrl=TOKEN_URL, auto_error=False, scheme_name='UserToken',
                                description='Sign in with your e-mail address and password.')


def device_scheme() -> HTTPBearer:
    return HTTPBearer(auto_error=False, scheme_name='DeviceToken',
                      description="The device's own token, shown when it was created or its token rotated.")


def principal_dependency(platform: Platform) -> PrincipalDependency:
    async def current_principal(token: Annotated[str | None, Depends(user_scheme())]) -> Principal:
        if not token:
            raise AuthenticationFailed(MISSING_TOKEN)
        if is_api_token(token):
            found = await platform.api_tokens.authenticate(token)
            if found is None:
                raise AuthenticationFailed('Invalid, expired or revoked API token.')
            principal = found
        else:
            principal = await platform.auth.principal_from_token(token)
        await take_tenant(platform.limits, 'api', principal.tenant_id, platform.api_limit)  # 429 + Retry-After
        return principal

    return current_principal

