"""Reading a device's telemetry: raw pages, latest values, time buckets."""

# No `from __future__ import annotations`: FastAPI must resolve `Caller`, an alias local to the router function.
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Depends, Query
from fastapi.responses import StreamingResponse
from pydantic import AwareDatetime

from app.api.problems import problem_responses
from app.api.security import principal_dependency
from app.models.schemas import AggregateFunction, AggregatePoint, LatestValuePublic, Principal, TelemetryPage
from app.platform import Platform
from app.services.errors import InvalidInput
from app.services.telemetry import MAX_PAGE

DEFAULT_RANGE = timedelta(hours=1)
BUCKET = re.compile(r'^\s*(\d+)\s*([smhd]?)\s*$')
UNIT_S = {'': 1, 's': 1, 'm': 60, 'h': 3600, 'd': 86400}

Start = Annotated[AwareDatetime | None, Query(description='ISO 8601 with a zone; default: an hour before end.')]
End = Annotated[AwareDatetime | None, Query(description='ISO 8601 with a zone, exclusive; default: now.')]
Keys = Annotated[list[str] | None, Query(description='Keys to include: `keys=a,b` or `keys=a&keys=b`; default all.')]


def time_range(start: datetime | None, end: datetime | None) -> tuple[datetime, datetime]:
    """Default: the last hour; with only `start`, up to now."""
    end = end or _now()
    return start or end - DEFAULT_RANGE, end


def key_list(keys: list[str] | None) -> list[str]:
    return [key.strip() for value in keys or [] for key in value.split(',') if key.strip()]


def bucket_seconds(bucket: str) -> int:
    """`60`, `60s`, `5m`, `1h`, `1d` → seconds."""
    match = BUCKET.match(bucket.lower())
    if match is None:
        raise InvalidInput('bucket must be seconds (60) or a number with s, m, h or d (5m, 1h, 1d).', field='bucket')
    return int(match.group(1)) * UNIT_S[match.group(2)]


def csv_response(body: AsyncIterator[bytes], device_id: UUID) -> StreamingResponse:
    return StreamingResponse(body, media_type='text/csv', headers={
        'Content-Disposition': f'attachment; filename="telemetry-{device_id}.csv"'})


def _now() -> datetime:
    return datetime.now(UTC)


def telemetry_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix='/devices/{device_id}/telemetry', tags=['telemetry'],
                       responses=problem_responses(401, 404, 422))
    Caller = Annotated[Principal, Depends(principal_dependency(platform))]

    @router.get('')
    async def read_telemetry(
        caller: Caller, device_id: UUID, start: Start = None, end: End = None, keys: Keys = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 1000, cursor: str | None = None,
    ) -> TelemetryPage:
        """Raw points by time; pass `next_cursor` back as `cursor` for the next page."""
        first, last = time_range(start, end)
        return await platform.telemetry.raw(caller, device_id, start=first, end=last, keys=key_list(keys),
                                            limit=limit, cursor=cursor)

    @router.get('/export.csv', response_class=StreamingResponse, responses={200: {'content': {'text/csv': {}}}})
    async def export_telemetry(
        caller: Caller, device_id: UUID, start: Start = None, end: End = None, keys: Keys = None,
    ) -> StreamingResponse:
        """Every stored reading in [start, end) as CSV (`ts,key,value`), streamed in pages: any size."""
        first, last = time_range(start, end)
        body = await platform.export.csv(caller, device_id, start=first, end=last, keys=key_list(keys))
        return csv_response(body, device_id)

    @router.get('/latest')
    async def latest_telemetry(caller: Caller, device_id: UUID) -> list[LatestValuePublic]:
        """The newest value of every key, by timestamp."""
        return await platform.telemetry.latest(caller, device_id)

    @router.get('/aggregate')
    async def aggregate_telemetry(
        caller: Caller, device_id: UUID, start: Start = None, end: End = None, keys: Keys = None,
        bucket: Annotated[str, Query(description='Seconds, or 30s, 5m, 1h, 1d.')] = '60',
        function: AggregateFunction = 'avg',
    ) -> list[AggregatePoint]:
        """Numeric values per key in time buckets aligned to `start`."""
        first, last = time_range(start, end)
        return await platform.telemetry.aggregate(caller, device_id, start=first, end=last,
                                                  bucket_s=bucket_seconds(bucket), function=function,
                                                  keys=key_list(keys))

    return router
