"""Security tables (migration 0005): server-side sessions, API tokens and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import Column, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from app.models.tables import utcnow


def _ts(*, nullable: bool = False) -> Any:
    return Field(default_factory=utcnow if not nullable else lambda: None,
                 sa_column=Column(DateTime(timezone=True), nullable=nullable))


class UserSession(SQLModel, table=True):
    """One sign-in; `id` is the SHA-256 of the random token the browser holds, never the token itself."""

    __tablename__ = 'sessions'

    id: str = Field(primary_key=True)
    tenant_id: UUID = Field(foreign_key='tenants.id')
    user_id: UUID = Field(foreign_key='users.id')
    created_at: datetime = _ts()
    last_seen: datetime = _ts()
    expires_at: datetime = _ts()
    revoked_at: datetime | None = _ts(nullable=True)
    ip: str = ''
    user_agent: str = ''


class ApiToken(SQLModel, table=True):
    """A user's named API token; `token_sha256` is all that is kept of the token."""

    __tablename__ = 'api_tokens'

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    tenant_id: UUID = Field(foreign_key='tenants.id')
    user_id: UUID = Field(foreign_key='users.id')
    name: str
    token_sha256: str
    role: str
    created_at: datetime = _ts()
    expires_at: datetime | None = _ts(nullable=True)
    last_used_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)


class AuditEntry(SQLModel, table=True):
    __tablename__ = 'audit_log'

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    tenant_id: UUID = Field(foreign_key='tenants.id')
    actor_user_id: UUID | None = None
    actor_email: str = ''
    action: str
    target_type: str
    target_id: str = ''
    before: dict[str, Any] | None = Field(default=None, sa_column=Column('before', JSONB, nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column('after', JSONB, nullable=True))
    ip: str = ''
    at: datetime = _ts()


class AccountLink(SQLModel, table=True):
    """A one-time link (migration 0006): an invitation to join a tenant, or a password reset of a user.

    Only the SHA-256 of the link's random token is kept; a link is used once, before it expires.
    """

    __tablename__ = 'account_links'

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    tenant_id: UUID = Field(foreign_key='tenants.id')
    kind: str  # 'invite' | 'reset'
    email: str
    role: str | None = None  # of the invited user
    user_id: UUID | None = None  # whose password a reset link sets
    token_sha256: str
    created_by: UUID | None = None
    created_at: datetime = _ts()
    expires_at: datetime = _ts()
    used_at: datetime | None = _ts(nullable=True)
    revoked_at: datetime | None = _ts(nullable=True)
