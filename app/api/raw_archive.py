"""The raw archive over the API: its settings (read: everyone; change: admins) and, per device, the archived
messages, a streamed NDJSON export and a replay of a time range into the pipeline (operators)."""

# No `from __future__ import annotations`: FastAPI must resolve `Caller`, an alias local to the router function.
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from app.api.problems import problem_responses
from app.api.security import principal_dependency
from app.api.telemetry import End, Start, time_range
from app.models.raw_archive import RawArchiveSettings, RawMessage, ReplayRequest, ReplayResult
from app.models.schemas import Principal
from app.platform import Platform
from app.services.raw_archive import MAX_RECENT


def raw_archive_router(platform: Platform) -> APIRouter:
    router = APIRouter(tags=['raw archive'], responses=problem_responses(401, 403, 404, 422))
    Caller = Annotated[Principal, Depends(principal_dependency(platform))]

    @router.get('/storage/raw-archive')
    async def read_archive_settings(caller: Caller) -> RawArchiveSettings:
        """Whether every inbound payload is kept as received, and for how many days (off until an admin turns
        it on)."""
        return await platform.raw_archive.settings(caller)

    @router.put('/storage/raw-archive')
    async def change_archive_settings(caller: Caller, settings: RawArchiveSettings) -> RawArchiveSettings:
        """Takes effect within seconds; older messages are deleted by the storage job within about ten minutes."""
        return await platform.raw_archive.update_settings(caller, settings)

    @router.get('/devices/{device_id}/raw')
    async def read_raw_messages(
        caller: Caller, device_id: UUID, limit: Annotated[int, Query(ge=1, le=MAX_RECENT)] = 50,
        before: Annotated[AwareDatetime | None, Query(description='Only older ones: the last `received_at` of '
                                                                   'the previous page.')] = None,
    ) -> list[RawMessage]:
        """The device's archived messages, newest first, as received (accepted and rejected)."""
        return await platform.raw_archive.recent(caller, device_id, limit=limit, before=before)

    @router.get('/devices/{device_id}/raw/export.ndjson', response_class=StreamingResponse,
                responses={200: {'content': {'application/x-ndjson': {}}}})
    async def export_raw_messages(caller: Caller, device_id: UUID, start: Start = None,
                                  end: End = None) -> StreamingResponse:
        """Every archived message received in [start, end) (default: the last hour), oldest first, one JSON
        object a line; a payload that is not UTF-8 comes as `payload_base64`."""
        first, last = time_range(start, end)
        body = await platform.raw_archive.export(caller, device_id, start=first, end=last)
        return StreamingResponse(body, media_type='application/x-ndjson', headers={
            'Content-Disposition': f'attachment; filename="raw-{device_id}.ndjson"'})

    @router.post('/devices/{device_id}/raw/replay', responses=problem_responses(503))
    async def replay_raw_messages(caller: Caller, device_id: UUID, window: ReplayRequest) -> ReplayResult:
        """Decode the telemetry archived in [start, end) again and write it (rules evaluate it too); readings
        already stored are dropped as duplicates, so repeating a replay is safe. Answers after the commits."""
        return await platform.raw_archive.replay(caller, device_id, start=window.start, end=window.end)

    return router
