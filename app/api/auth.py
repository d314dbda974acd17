"""Sign-in for API clients: the OAuth2 password flow, e-mail address as the user name."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.security import OAuth2PasswordRequestForm
from pydantic import BaseModel

from app.api.problems import problem_responses
from app.platform import Platform
from app.services.auth import TOKEN_TTL


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal['bearer'] = 'bearer'  # noqa: S105
    expires_in: int


def auth_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix='/auth', tags=['auth'])

    @router.post('/token', responses=problem_responses(401, 422, 429))
    async def issue_token(form: Annotated[OAuth2PasswordRequestForm, Depends()], request: Request) -> TokenResponse:
        """Exchange an e-mail address (`username`) and password for a bearer token. Repeated failures are
        refused for a growing time (429 with `Retry-After`)."""
        ip = request.client.host if request.client else ''
        principal = await platform.auth.authenticate(form.username, form.password, ip=ip)
        return TokenResponse(access_token=await platform.auth.issue_token(principal),
                             expires_in=int(TOKEN_TTL.total_seconds()))

    return router
