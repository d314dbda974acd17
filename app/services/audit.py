"""The audit log: who changed what, when, before and after, from where.

Other services record inside their own transaction, so the entry commits (or rolls back) with the change:

    async with db.tenant(principal.tenant_id) as session:
        ...change...
        await audit.record(session, principal, 'device.update', 'device', device.id, before=..., after=...)
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col, or_, select

from app.db import Database
from app.models.schemas import Principal
from app.models.security import AuditEntry
from app.services.permissions import Permission, require

SECRET_FIELDS = frozenset({'password', 'password_hash', 'token', 'token_sha256', 'mqtt_password_hash'})
MAX_ROWS = 5000


class AuditPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    actor_user_id: UUID | None
    actor_email: str
    action: str
    target_type: str
    target_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    ip: str
    at: datetime


@dataclass(frozen=True)
class AuditQuery:
    actor: str = ''
    action: str = ''
    target: str = ''
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 200


def _clean(data: dict[str, Any] | None) -> dict[str, Any] | None:
    if data is None:
        return None
    return {key: value for key, value in data.items() if key not in SECRET_FIELDS}


async def record(session: AsyncSession, principal: Principal, action: str, target_type: str,
                 target_id: object = '', *, before: dict[str, Any] | None = None,
                 after: dict[str, Any] | None = None, ip: str = '') -> None:
    """Add one entry in the caller's transaction; `before`/`after` as JSON-able dicts (secrets are dropped)."""
    session.add(AuditEntry(
        tenant_id=principal.tenant_id, actor_user_id=principal.user_id, actor_email=principal.email,
        action=action, target_type=target_type, target_id=str(target_id), before=_clean(before),
        after=_clean(after), ip=ip,
    ))


class AuditService:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def search(self, principal: Principal, query: AuditQuery) -> list[AuditPublic]:
        require(principal, Permission.VIEW_AUDIT)
        statement = select(AuditEntry).where(col(AuditEntry.tenant_id) == principal.tenant_id)
        if query.actor.strip():
            statement = statement.where(col(AuditEntry.actor_email).ilike(f'%{query.actor.strip()}%'))
        if query.action.strip():
            statement = statement.where(col(AuditEntry.action).ilike(f'%{query.action.strip()}%'))
        if query.target.strip():
            pattern = f'%{query.target.strip()}%'
            statement = statement.where(or_(col(AuditEntry.target_type).ilike(pattern),
                                            col(AuditEntry.target_id).ilike(pattern)))
        if query.since is not None:
            statement = statement.where(col(AuditEntry.at) >= query.since)
        if query.until is not None:
            statement = statement.where(col(AuditEntry.at) < query.until)
        statement = statement.order_by(col(AuditEntry.at).desc()).limit(min(max(query.limit, 1), MAX_ROWS))
        async with self._db.tenant(principal.tenant_id) as session:
            return [AuditPublic.model_validate(entry) for entry in await session.scalars(statement)]


def to_csv(entries: list[AuditPublic]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(['at', 'actor', 'action', 'target_type', 'target_id', 'ip', 'before', 'after'])
    for entry in entries:
        writer.writerow([entry.at.isoformat(), entry.actor_email, entry.action, entry.target_type, entry.target_id,
                         entry.ip, _json(entry.before), _json(entry.after)])
    return out.getvalue()


def _json(data: dict[str, Any] | None) -> str:
    return json.dumps(data, sort_keys=True, default=str) if data is not None else ''
