"""Devices of the caller's tenant: list, create, read, edit, delete, rotate the token."""

# No `from __future__ import annotations`: FastAPI must resolve `Caller`, an alias local to the router function.
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel

from app.api.problems import problem_responses
from app.api.security import principal_dependency
from app.models.schemas import DeviceCreate, DeviceCredentials, DevicePublic, DeviceStatus, DeviceUpdate, Principal
from app.platform import Platform

MAX_LIST = 500


class DeviceCreated(BaseModel):
    device: DevicePublic
    credentials: DeviceCredentials


def devices_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix='/devices', tags=['devices'], responses=problem_responses(401, 422))
    Caller = Annotated[Principal, Depends(principal_dependency(platform))]
    found = problem_responses(404)
    written = problem_responses(403, 404)

    @router.get('')
    async def list_devices(
        caller: Caller, search: str = '', status: DeviceStatus | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = 100, offset: Annotated[int, Query(ge=0)] = 0,
    ) -> list[DevicePublic]:
        """Devices whose name or type contains `search`, by name."""
        return await platform.devices.list(caller, search=search, status=status, limit=limit, offset=offset)

    @router.post('', status_code=201, responses=problem_responses(403))
    async def create_device(caller: Caller, data: DeviceCreate) -> DeviceCreated:
        """A new device and its credentials; the token is shown only in this answer."""
        device, credentials = await platform.devices.create(caller, data)
        return DeviceCreated(device=device, credentials=credentials)

    @router.get('/{device_id}', responses=found)
    async def get_device(caller: Caller, device_id: UUID) -> DevicePublic:
        return await platform.devices.get(caller, device_id)

    @router.patch('/{device_id}', responses=written)
    async def update_device(caller: Caller, device_id: UUID, data: DeviceUpdate) -> DevicePublic:
        """Change only the fields sent."""
        return await platform.devices.update(caller, device_id, data)

    @router.delete('/{device_id}', status_code=204, response_class=Response, responses=written)
    async def delete_device(caller: Caller, device_id: UUID) -> Response:
        """The device; its token stops working at once."""
        await platform.devices.delete(caller, device_id)
        return Response(status_code=204)

    @router.post('/{device_id}/token', responses=written)
    async def rotate_token(caller: Caller, device_id: UUID) -> DeviceCredentials:
        """A new token; the old one stops working at once."""
        return await platform.devices.rotate_token(caller, device_id)

    @router.post('/{device_id}/disable', responses=written)
    async def disable_device(caller: Caller, device_id: UUID) -> DevicePublic:
        """Refuse the device's data (HTTP ingest answers 403) and disconnect it from the managed broker."""
        return await platform.devices.set_disabled(caller, device_id, True)

    @router.post('/{device_id}/enable', responses=written)
    async def enable_device(caller: Caller, device_id: UUID) -> DevicePublic:
        return await platform.devices.set_disabled(caller, device_id, False)

    return router
