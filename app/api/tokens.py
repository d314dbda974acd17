"""The caller's own API tokens: list, create (the token is shown once), revoke."""

# No `from __future__ import annotations`: FastAPI must resolve `Caller`, an alias local to the router function.
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from app.api.problems import problem_responses
from app.api.security import principal_dependency
from app.models.schemas import Principal, Role
from app.platform import Platform
from app.services.api_tokens import ApiTokenPublic


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra='forbid')

    name: str = Field(min_length=1, max_length=100)
    role: Role | None = Field(default=None, description="At most the caller's role; the caller's role if left out.")
    expires_at: datetime | None = None


class TokenCreated(BaseModel):
    token: str = Field(description='Send as "Authorization: Bearer <token>"; shown only in this answer.')
    info: ApiTokenPublic


def tokens_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix='/tokens', tags=['api tokens'], responses=problem_responses(401, 422))
    Caller = Annotated[Principal, Depends(principal_dependency(platform))]

    @router.get('')
    async def list_tokens(caller: Caller) -> list[ApiTokenPublic]:
        """Your own tokens (never the tokens themselves), newest first."""
        return await platform.api_tokens.list(caller)

    @router.post('', status_code=201, responses=problem_responses(403))
    async def create_token(caller: Caller, data: TokenCreate) -> TokenCreated:
        public, token = await platform.api_tokens.create(caller, name=data.name, role=data.role,
                                                         expires_at=data.expires_at)
        return TokenCreated(token=token, info=public)

    @router.delete('/{token_id}', responses=problem_responses(404))
    async def revoke_token(caller: Caller, token_id: UUID) -> ApiTokenPublic:
        """The token stops working at once."""
        return await platform.api_tokens.revoke(caller, token_id)

    return router
