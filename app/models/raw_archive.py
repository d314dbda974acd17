"""Schemas of the raw archive (migration 0011): per-tenant settings, archived messages, replay results."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

DEFAULT_ARCHIVE_DAYS = 7


class RawArchiveSettings(BaseModel):
    """Off by default: every payload kept as received costs disk and ingest time."""

    enabled: bool = False
    days: int = Field(default=DEFAULT_ARCHIVE_DAYS, ge=1, le=365, description='days each payload is kept')


class RawMessage(BaseModel):
    received_at: datetime
    transport: Literal['mqtt', 'http']
    kind: Literal['telemetry', 'status']
    accepted: bool
    reason: str | None = Field(description='why it was rejected (accepted: null)')
    payload: str = Field(description='the payload as received, as text (invalid UTF-8 replaced)')
    size: int = Field(description='bytes received')


class ReplayRequest(BaseModel):
    start: AwareDatetime
    end: AwareDatetime


class ReplayResult(BaseModel):
    """Replayed messages go through the pipeline again (rules included); readings already stored are dropped
    as duplicates of the same device, key and timestamp, so a replay can be repeated safely."""

    messages: int = Field(description='archived telemetry messages in the range')
    replayed: int = Field(description='messages decoded and handed to the writer again')
    readings: int = Field(description='readings they hold (those already stored are dropped as duplicates)')
    rejected: int = Field(description='messages that are still refused (the reason is in the archive)')
    truncated: bool = Field(description='the range held more than one replay takes; replay the rest after it')
