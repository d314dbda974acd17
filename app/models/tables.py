"""Database tables. The schema itself is owned by the Alembic migrations; these mirror it for queries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

from sqlalchemy import BigInteger, Column, DateTime, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(UTC)


def _ts(*, nullable: bool = False, default: bool = True) -> Any:
    column = Column(DateTime(timezone=True), nullable=nullable)
    return Field(default_factory=utcnow, sa_column=column) if default else Field(default=None, sa_column=column)


class Tenant(SQLModel, table=True):
    __tablename__ = 'tenants'

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    name: str
    status: str = 'active'
    audit_retention_days: int | None = None  # None: GITO_AUDIT_RETENTION_DAYS
    created_at: datetime = _ts()


class User(SQLModel, table=True):
    __tablename__ = 'users'

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    tenant_id: UUID = Field(foreign_key='tenants.id', index=True)
    email: str
    display_name: str = ''
    password_hash: str
    role: str
    disabled: bool = False
    token_generation: int = 0  # in every API sign-in token; bumped when all the user's sessions end
    oidc_subject: str | None = None  # '<issuer> <sub>' once the user signed in through single sign-on
    created_at: datetime = _ts()
    last_login_at: datetime | None = _ts(nullable=True, default=False)


class Device(SQLModel, table=True):
    __tablename__ = 'devices'

    id: UUID = Field(default_factory=uuid4, primary_key=True)
    tenant_id: UUID = Field(foreign_key='tenants.id', index=True)
    name: str
    type: str = 'generic'
    token_sha256: str
    mqtt_password_hash: str
    status: str = 'new'
    disabled: bool = False  # refused over HTTP and MQTT, left out of the broker's password file
    last_seen: datetime | None = _ts(nullable=True, default=False)
    offline_after_s: int | None = None
    metadata_: dict[str, Any] = Field(default_factory=dict, sa_column=Column('metadata', JSONB, nullable=False))
    messages_received: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    messages_malformed: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    last_malformed_reason: str | None = None
    last_malformed_excerpt: str | None = None
    last_malformed_at: datetime | None = _ts(nullable=True, default=False)
    readings_stored: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    readings_duplicate: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    messages_out_of_order: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    seq_missing: int = Field(default=0, sa_column=Column(BigInteger, nullable=False, default=0))
    seq_gaps: list[list[int]] = Field(default_factory=list, sa_column=Column(JSONB, nullable=False, default=list))
    last_seq: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    clock_skew_ms: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    max_clock_skew_ms: int | None = Field(default=None, sa_column=Column(BigInteger, nullable=True))
    created_at: datetime = _ts()


class TelemetryKey(SQLModel, table=True):
    __tablename__ = 'telemetry_keys'

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True, autoincrement=True))
    tenant_id: UUID = Field(foreign_key='tenants.id')
    name: str


class Telemetry(SQLModel, table=True):
    __tablename__ = 'telemetry'

    tenant_id: UUID = Field(primary_key=True)
    device_id: UUID = Field(primary_key=True)
    key_id: int = Field(primary_key=True)
    ts: datetime = Field(sa_column=Column(DateTime(timezone=True), primary_key=True))
    value: float | None = None
    text_value: str | None = None
    bool_value: bool | None = None
    json_value: Any | None = Field(default=None, sa_column=Column(JSONB, nullable=True))


class LatestValue(SQLModel, table=True):
    __tablename__ = 'latest_values'

    tenant_id: UUID
    device_id: UUID = Field(primary_key=True)
    key_id: int = Field(primary_key=True)
    ts: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    value: float | None = None
    text_value: str | None = None
    bool_value: bool | None = None
    json_value: Any | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
