"""The audit log of the caller's tenant (admins only), newest first, as JSON or CSV."""

# No `from __future__ import annotations`: FastAPI must resolve `Caller`, an alias local to the router function.
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from app.api.problems import problem_responses
from app.api.security import principal_dependency
from app.models.schemas import Principal
from app.platform import Platform
from app.services.audit import MAX_ROWS, AuditPublic, AuditQuery, to_csv


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

    return router
