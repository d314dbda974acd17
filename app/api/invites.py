"""Invitations by e-mail (admins): invite with a role, list the pending ones, revoke; and the public
password-reset request, which answers the same whether or not the address has an account."""

# No `from __future__ import annotations`: FastAPI must resolve `Caller`, an alias local to the router function.
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from app.api.problems import problem_responses
from app.api.security import principal_dependency
from app.models.schemas import Principal, Role
from app.platform import Platform
from app.services.account_links import InvitePublic


class InviteCreate(BaseModel):
    model_config = ConfigDict(extra='forbid')

    email: str = Field(min_length=3, max_length=320)
    role: Role = 'viewer'


class InviteCreated(BaseModel):
    invite: InvitePublic
    emailed: bool = Field(description='Whether the link went out by e-mail.')
    link: str | None = Field(description='The one-time link, only when it was not e-mailed: hand it over yourself.')
    problem: str | None = Field(description='Why it was not e-mailed.')


class ResetRequest(BaseModel):
    model_config = ConfigDict(extra='forbid')

    email: str = Field(min_length=1, max_length=320)


class ResetRequested(BaseModel):
    detail: str


def invites_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix='/invites', tags=['users'], responses=problem_responses(401, 403, 422))
    Caller = Annotated[Principal, Depends(principal_dependency(platform))]

    @router.get('')
    async def list_invites(caller: Caller) -> list[InvitePublic]:
        """Invitations not yet accepted, revoked or expired, newest first."""
        return await platform.account_links.pending_invites(caller)

    @router.post('', status_code=201, responses=problem_responses(409))
    async def create_invite(caller: Caller, data: InviteCreate) -> InviteCreated:
        """E-mail a one-time link (valid 7 days) with which the invitee chooses a name and password."""
        sent = await platform.account_links.invite(caller, email=data.email, role=data.role)
        return InviteCreated(invite=sent.invite, emailed=sent.emailed, link=sent.link, problem=sent.problem)

    @router.delete('/{invite_id}', status_code=204, responses=problem_responses(404))
    async def revoke_invite(caller: Caller, invite_id: UUID) -> None:
        """The link stops working at once."""
        await platform.account_links.revoke_invite(caller, invite_id)

    return router


def password_reset_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix='/auth', tags=['auth'])

    @router.post('/password-reset', status_code=202, responses=problem_responses(422))
    async def request_password_reset(data: ResetRequest, request: Request) -> ResetRequested:
        """E-mail a one-time link (valid 1 hour) to set a new password, if the address has an account. The
        answer never tells whether it has; a few requests per address and client per hour are sent."""
        ip = request.client.host if request.client else ''
        return ResetRequested(detail=await platform.account_links.request_reset(data.email, ip=ip))

    return router
