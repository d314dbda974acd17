"""Alarms of the caller's tenant: list and filter, detail with history, acknowledge, clear, comment, assign."""

# No `from __future__ import annotations`: FastAPI must resolve `Caller`, an alias local to the router function.
from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query

from app.api.problems import problem_responses
from app.api.security import principal_dependency
from app.models.alarm_notice import Severity
from app.models.alarms import (
    AcknowledgeRequest,
    AlarmDetail,
    AlarmFilter,
    AlarmPublic,
    AlarmStatus,
    AssignRequest,
    ClearRequest,
    CommentRequest,
)
from app.models.schemas import Principal
from app.platform import Platform
from app.services.errors import InvalidInput

ASSIGNEE = r'^(me|none|[0-9a-fA-F-]{36})$'


def _assignee(caller: Principal, assignee: str | None) -> UUID | None:
    if assignee in (None, 'none'):
        return None
    if assignee == 'me':
        if caller.user_id is None:
            raise InvalidInput('This caller is no user, so no alarm is assigned to it.', field='assignee')
        return caller.user_id
    try:
        return UUID(assignee)
    except ValueError:
        raise InvalidInput('Give `me`, `none` or a user id.', field='assignee') from None


def alarms_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix='/alarms', tags=['alarms'], responses=problem_responses(401, 422))
    Caller = Annotated[Principal, Depends(principal_dependency(platform))]
    found = problem_responses(404)
    acted = problem_responses(403, 404, 409)

    @router.get('')
    async def list_alarms(
        caller: Caller, status: AlarmStatus | Literal['open'] | None = None, severity: Severity | None = None,
        device_id: UUID | None = None, since: datetime | None = None, until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 200,
        assignee: Annotated[str | None, Query(pattern=ASSIGNEE)] = None,
    ) -> list[AlarmPublic]:
        """Newest first. `status=open`: active or acknowledged. `since`/`until` bound the time it was seen.
        `assignee`: `me`, `none` (given to nobody) or a user id."""
        assignee_id = _assignee(caller, assignee)
        return await platform.alarms.find(caller, AlarmFilter(
            status=status, severity=severity, device_id=device_id, since=since, until=until, limit=limit,
            assignee_id=assignee_id, unassigned=assignee == 'none'))

    @router.get('/{alarm_id}', responses=found)
    async def get_alarm(caller: Caller, alarm_id: UUID) -> AlarmDetail:
        """The alarm and its full history (raised, acknowledged, comments, assignments, severity changes, cleared)."""
        return await platform.alarms.get(caller, alarm_id)

    @router.post('/{alarm_id}/acknowledge', responses=acted)
    async def acknowledge(caller: Caller, alarm_id: UUID, data: AcknowledgeRequest) -> AlarmPublic:
        return await platform.alarms.acknowledge(caller, alarm_id, note=data.note)

    @router.post('/{alarm_id}/clear', responses=acted)
    async def clear(caller: Caller, alarm_id: UUID, data: ClearRequest) -> AlarmPublic:
        return await platform.alarms.clear(caller, alarm_id, reason=data.reason)

    @router.post('/{alarm_id}/comments', responses=acted)
    async def comment(caller: Caller, alarm_id: UUID, data: CommentRequest) -> AlarmPublic:
        return await platform.alarms.comment(caller, alarm_id, text_=data.text)

    @router.post('/{alarm_id}/assign', responses=acted)
    async def assign(caller: Caller, alarm_id: UUID, data: AssignRequest) -> AlarmPublic:
        """Assign to a user of the tenant (`user_id` null: unassign)."""
        return await platform.alarms.assign(caller, alarm_id, user_id=data.user_id)

    return router
