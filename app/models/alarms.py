"""Alarms and their history: one open alarm per (rule, device); every transition is an alarm event."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal
from uuid import UUID, uuid4

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import BigInteger, Column, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from app.models.alarm_notice import Severity

AlarmStatus = Literal['active', 'acknowledged', 'cleared']
ALARM_STATUSES: tuple[AlarmStatus, ...] = ('active', 'acknowledged', 'cleared')
EventKind = Literal['raised', 'repeated', 'acknowledged', 'cleared', 'severity_changed', 'commented', 'assigned']


def _ts(nullable: bool = True) -> Any:
    return SQLField(default=None, sa_column=Column(DateTime(timezone=True), nullable=nullable))


class Alarm(SQLModel, table=True):
    __tablename__ = 'alarms'

    id: UUID = SQLField(default_factory=uuid4, primary_key=True)
    tenant_id: UUID = SQLField(foreign_key='tenants.id', index=True)
    rule_id: UUID
    device_id: UUID
    rule_name: str
    device_name: str
    severity: str
    status: str = 'active'
    count: int = 1
    first_seen: datetime = _ts(False)
    last_seen: datetime = _ts(False)
    key: str | None = None
    value: str | None = None
    threshold: str | None = None
    acknowledged_by: str | None = None
    acknowledged_at: datetime | None = _ts()
    ack_note: str | None = None
    cleared_by: str | None = None
    cleared_at: datetime | None = _ts()
    clear_reason: str | None = None
    assignee_id: UUID | None = None


class AlarmEventRow(SQLModel, table=True):
    __tablename__ = 'alarm_events'

    id: int | None = SQLField(default=None, sa_column=Column(BigInteger, primary_key=True, autoincrement=True))
    tenant_id: UUID
    alarm_id: UUID
    at: datetime = _ts(False)
    kind: str
    actor: str | None = None
    note: str | None = None
    data: dict[str, Any] = SQLField(default_factory=dict, sa_column=Column(JSONB, nullable=False))


class AlarmPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    tenant_id: UUID
    rule_id: UUID
    device_id: UUID
    rule_name: str
    device_name: str
    severity: Severity
    status: AlarmStatus
    count: int
    first_seen: datetime
    last_seen: datetime
    key: str | None
    value: str | None
    threshold: str | None
    acknowledged_by: str | None
    acknowledged_at: datetime | None
    ack_note: str | None
    cleared_by: str | None
    cleared_at: datetime | None
    clear_reason: str | None
    assignee_id: UUID | None


class AlarmEventPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    kind: EventKind
    actor: str | None
    note: str | None
    data: dict[str, Any]


class AlarmDetail(AlarmPublic):
    history: list[AlarmEventPublic]


class AlarmFilter(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: AlarmStatus | Literal['open'] | None = None
    severity: Severity | None = None
    device_id: UUID | None = None
    assignee_id: UUID | None = None
    unassigned: bool = False  # only alarms given to nobody
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=200, ge=1, le=1000)


class AcknowledgeRequest(BaseModel):
    model_config = ConfigDict(extra='forbid')
    note: str = Field(default='', max_length=2000)


class ClearRequest(BaseModel):
    model_config = ConfigDict(extra='forbid')
    reason: str = Field(default='', max_length=2000)


class CommentRequest(BaseModel):
    model_config = ConfigDict(extra='forbid')
    text: str = Field(min_length=1, max_length=4000)


class AssignRequest(BaseModel):
    model_config = ConfigDict(extra='forbid')
    user_id: UUID | None
