"""Notification channels and deliveries as the API and pages see them."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, Field

from app.models.alarm_notice import SEVERITIES, Severity

ChannelKind = Literal['email', 'slack', 'webhook']
DeliveryStatus = Literal['pending', 'failed', 'sent', 'dead']


class ChannelRouting(BaseModel):
    severities: list[Severity] = Field(default_factory=lambda: list(SEVERITIES))
    rule_ids: list[UUID] | None = None  # None: every rule
    on_raise: bool = True
    on_acknowledge: bool = False
    on_clear: bool = False


class ChannelCreate(ChannelRouting):
    name: str = Field(min_length=1, max_length=120)
    kind: ChannelKind
    enabled: bool = True
    recipients: list[str] = Field(default_factory=list, description='Email addresses (email channels)')
    url: str | None = Field(default=None, description='Slack incoming webhook or webhook endpoint URL')


class ChannelUpdate(BaseModel):
    name: str | None = Field(default=None, min_length=1, max_length=120)
    enabled: bool | None = None
    recipients: list[str] | None = None
    url: str | None = None
    severities: list[Severity] | None = None
    rule_ids: list[UUID] | None = None
    all_rules: bool | None = Field(default=None, description='true: clear the rule list (every rule)')
    on_raise: bool | None = None
    on_acknowledge: bool | None = None
    on_clear: bool | None = None


class ChannelPublic(ChannelRouting):
    id: UUID
    name: str
    kind: ChannelKind
    enabled: bool
    recipients: list[str]
    url: str | None = Field(description='Slack URLs are masked')
    created_at: datetime


class ChannelCreated(BaseModel):
    channel: ChannelPublic
    signing_secret: str | None = Field(description='Webhook channels: the whsec_ secret, shown only here')


class AttemptPublic(BaseModel):
    attempted_at: datetime
    ok: bool
    response_code: int | None
    error: str | None
    duration_ms: int


class DeliveryPublic(BaseModel):
    id: UUID
    channel_id: UUID
    channel_name: str
    alarm_id: UUID | None
    rule_id: UUID | None
    transition: str
    summary: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    last_status_code: int | None
    created_at: datetime
    sent_at: datetime | None
    attempt_log: list[AttemptPublic] = Field(default_factory=list)


class OutboundSettings(BaseModel):
    allowed_cidrs: list[str] = Field(default_factory=list, description='Private ranges outbound HTTP may reach')
