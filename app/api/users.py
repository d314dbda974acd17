"""Users of the caller's tenant (admins only): list, add with a role, change role, disable and enable; their
sessions (list, end one, end all)."""

# No `from __future__ import annotations`: FastAPI must resolve `Caller`, an alias local to the router function.
from datetime import datetime
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from app.api.problems import problem_responses
from app.api.security import principal_dependency
from app.models.schemas import Principal, Role, UserPublic
from app.platform import Platform


class UserCreate(BaseModel):
    model_config = ConfigDict(extra='forbid')

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1000)
    role: Role = 'viewer'


class SessionPublic(BaseModel):
    id: str = Field(description='Identifies the session (a hash: it cannot be used to sign in).')
    created_at: datetime
    last_seen: datetime
    ip: str
    user_agent: str


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra='forbid')

    role: Role | None = None
    disabled: bool | None = None


def users_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix='/users', tags=['users'], responses=problem_responses(401, 403, 422))
    Caller = Annotated[Principal, Depends(principal_dependency(platform))]
    found = problem_responses(404)

    @router.get('')
    async def list_users(caller: Caller) -> list[UserPublic]:
        """Everyone in the organisation, by e-mail address."""
        return await platform.users.list(caller)

    @router.post('', status_code=201, responses=problem_responses(409))
    async def create_user(caller: Caller, data: UserCreate) -> UserPublic:
        return await platform.users.create(caller, email=data.email, password=data.password, role=data.role)

    @router.get('/{user_id}', responses=found)
    async def get_user(caller: Caller, user_id: UUID) -> UserPublic:
        return await platform.users.get(caller, user_id)

    @router.patch('/{user_id}', responses=found)
    async def update_user(caller: Caller, user_id: UUID, data: UserUpdate) -> UserPublic:
        """Change the role and/or disable (which ends the user's sessions at once) or enable."""
        user = await platform.users.get(caller, user_id)
        if data.role is not None:
            user = await platform.users.set_role(caller, user_id, data.role)
        if data.disabled is not None:
            user = await platform.users.set_disabled(caller, user_id, data.disabled)
        return user

    @router.get('/{user_id}/sessions', responses=found)
    async def list_sessions(caller: Caller, user_id: UUID) -> list[SessionPublic]:
        """The user's live browser sessions, newest first."""
        await platform.users.get(caller, user_id)
        sessions = (await platform.sessions.list_by_user(caller)).get(user_id, [])
        return [SessionPublic(id=info.id, created_at=info.created_at, last_seen=info.last_seen, ip=info.ip,
                              user_agent=info.user_agent) for info in sessions]

    @router.delete('/{user_id}/sessions/{session_id}', status_code=204, responses=found)
    async def revoke_session(caller: Caller, user_id: UUID, session_id: str) -> None:
        """End one browser session of the user."""
        await platform.sessions.revoke_session(caller, user_id, session_id)

    @router.delete('/{user_id}/sessions', status_code=204, responses=found)
    async def revoke_sessions(caller: Caller, user_id: UUID) -> None:
        """Log the user out everywhere: every browser session and every API sign-in token (not API tokens)."""
        await platform.sessions.revoke_user(caller, user_id)

    return router
