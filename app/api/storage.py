"""Data retention of the caller's tenant (read: everyone; change: admins, audited) and its disk use (admins)."""

# No `from __future__ import annotations`: FastAPI must resolve `Caller`, an alias local to the router function.
from typing import Annotated

from fastapi import APIRouter, Depends

from app.api.problems import problem_responses
from app.api.security import principal_dependency
from app.models.schemas import Principal
from app.models.storage import RetentionSettings, StorageUsage
from app.platform import Platform


def storage_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix='/storage', tags=['storage'], responses=problem_responses(401, 403, 422))
    Caller = Annotated[Principal, Depends(principal_dependency(platform))]

    @router.get('/retention')
    async def read_retention(caller: Caller) -> RetentionSettings:
        """Days kept of raw readings, 1-minute and 1-hour rollups (defaults until an admin changes them)."""
        return await platform.storage.retention(caller)

    @router.put('/retention')
    async def change_retention(caller: Caller, settings: RetentionSettings) -> RetentionSettings:
        """raw ≤ 1-minute ≤ 1-hour, each 2 to 3650 days; applied by the storage job within about ten minutes."""
        return await platform.storage.update_retention(caller, settings)

    @router.get('/usage')
    async def read_usage(caller: Caller) -> StorageUsage:
        """Rows and estimated bytes of this organisation's raw readings and rollups."""
        return await platform.storage.usage(caller)

    return router
