"""Users of the caller's tenant (admins only): list, add with a role, change role, disable and enable."""

# No `from __future__ import annotations`: FastAPI must resolve `Caller`, an alias local to the router function.
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

    return router
