"""Pydantic schemas that cross the service boundary (API bodies, page data)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

Role = Literal['admin', 'operator', 'technician', 'viewer']
ROLES: tuple[Role, ...] = ('admin', 'operator', 'technician', 'viewer')
DeviceStatus = Literal['new', 'online', 'offline']
Value = float | str | bool | dict[str, Any] | list[Any] | None


@dataclass(frozen=True)
class Principal:
    """Who is acting, and for which tenant."""

    tenant_id: UUID
    user_id: UUID | None
    role: Role
    email: str = ''

    @property
    def can_write(self) -> bool:
        return self.role != 'viewer'


class TenantPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str
    status: str
    created_at: datetime


class TenantOverview(TenantPublic):
    """A tenant as the platform administrator lists it."""

    devices: int
    users: int


class UserPublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    tenant_id: UUID
    email: str
    display_name: str
    role: Role
    disabled: bool
    created_at: datetime


class DeviceCreate(BaseModel):
    model_config = ConfigDict(extra='forbid')

    name: str = Field(min_length=1, max_length=200)
    type: str = Field(default='generic', min_length=1, max_length=100)
    metadata: dict[str, Any] = Field(default_factory=dict)
    offline_after_s: int | None = Field(default=None, ge=5, le=7 * 24 * 3600)


class DeviceUpdate(BaseModel):
    model_config = ConfigDict(extra='forbid')

    name: str | None = Field(default=None, min_length=1, max_length=200)
    type: str | None = Field(default=None, min_length=1, max_length=100)
    metadata: dict[str, Any] | None = None
    offline_after_s: int | None = Field(default=None, ge=5, le=7 * 24 * 3600)


class DevicePublic(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    tenant_id: UUID
    name: str
    type: str
    status: DeviceStatus
    disabled: bool
    last_seen: datetime | None
    offline_after_s: int | None
    metadata: dict[str, Any]
    messages_received: int
    messages_malformed: int
    last_malformed_reason: str | None
    last_malformed_excerpt: str | None
    last_malformed_at: datetime | None
    readings_stored: int = 0
    readings_duplicate: int = 0
    messages_out_of_order: int = 0
    seq_missing: int = 0
    seq_gaps: list[list[int]] = Field(default_factory=list, description='recent missing `seq` ranges [first, last]')
    last_seq: int | None = None
    clock_skew_ms: int | None = Field(default=None, description="device ts minus server time, last message with ts")
    max_clock_skew_ms: int | None = None
    created_at: datetime


class DeviceCredentials(BaseModel):
    """Shown once, when a device is created or its token rotated."""

    device_id: UUID
    tenant_id: UUID
    token: str
    mqtt_host: str
    mqtt_port: int
    mqtt_username: str
    telemetry_topic: str
    http_url: str
    mosquitto_pub: str
    curl: str


class LatestValuePublic(BaseModel):
    key: str
    ts: datetime
    value: Value


class TelemetryPoint(BaseModel):
    key: str
    ts: datetime
    value: Value


class TelemetryPage(BaseModel):
    points: list[TelemetryPoint]
    next_cursor: str | None = None


AggregateFunction = Literal['avg', 'min', 'max', 'last', 'count']


class AggregatePoint(BaseModel):
    key: str
    bucket: datetime
    value: float | None


@dataclass(frozen=True)
class Series:
    """One key's points for a chart; `bucket_s` is 0 for raw points; `source` is what was read."""

    key: str
    ts: tuple[datetime, ...]
    values: tuple[float | None, ...]
    bucket_s: int
    source: Literal['raw', '1m', '1h'] = 'raw'
