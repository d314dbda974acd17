"""The audit log of the caller's tenant (admins only), newest first, as JSON or CSV."""

# No `from __future__ import annotations`: FastAPI must resolve `Caller`, an alias local to the router function.
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from app.api.problems import problem_responses
from app.api.security import principal_dependency
from app.models.schemas import Principal
from app.platform import Platform
from app.services.audit import MAX_ROWS, AuditPublic, AuditQuery, to_csv
from app.services.audit_retention import MAX_DAYS, MIN_DAYS


class RetentionPublic(BaseModel):
    days: int
    default: bool


class RetentionUpdate(BaseModel):
    model_config = ConfigDict(extra='forbid')

    days: int | None = Field(ge=MIN_DAYS, le=MAX_DAYS)


def audit_router(platform: Platform) -> APIRouter:
    router = APIRouter(prefix='/audit', tags=['audit'], responses=problem_responses(401, 403, 422))
    Caller = Annotated[Principal, Depends(principal_dependency(platform))]

    @router.get('')
    async def search_audit(
        caller: Caller, actor: str = '', action: str = '', target: str = '',
        since: datetime | None = None, until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = 200,
    ) -> list[AuditPublic]:
        """Entries whose actor e-mail, action and target (type or id) contain the given texts, in [since, until)."""
        return await platform.audit.search(caller, AuditQuery(actor, action, target, since, until, limit))

    @router.get('.csv', response_class=Response, responses={200: {'content': {'text/csv': {}}}})
    async def export_audit(
        caller: Caller, actor: str = '', action: str = '', target: str = '',
        since: datetime | None = None, until: datetime | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_ROWS)] = MAX_ROWS,
    ) -> Response:
        """The same entries as CSV."""
        entries = await platform.audit.search(caller, AuditQuery(actor, action, target, since, until, limit))
        return Response(to_csv(entries), media_type='text/csv',
                        headers={'Content-Disposition': 'attachment; filename="audit.csv"'})

    @router.get('/retention')
    async def get_retention(caller: Caller) -> RetentionPublic:
        """How many days audit entries are kept (`default`: the installation's GITO_AUDIT_RETENTION_DAYS)."""
        kept = await platform.audit_retention.get(caller)
        return RetentionPublic(days=kept.days, default=kept.default)

    @router.put('/retention')
    async def set_retention(caller: Caller, data: RetentionUpdate) -> RetentionPublic:
        """Keep entries this many days (null: back to the default); older ones are deleted within the hour."""
        kept = await platform.audit_retention.set(caller, data.days)
        return RetentionPublic(days=kept.days, default=kept.default)

    return router
