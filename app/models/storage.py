"""Schemas of the storage settings and usage (migration 0007); the tables are reached with SQL."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Days = Field(ge=2, le=3650)


class RetentionSettings(BaseModel):
    """Days kept per resolution: raw ≤ 1-minute ≤ 1-hour."""

    raw_days: int = Days
    minute_days: int = Days
    hour_days: int = Days


class TableUsage(BaseModel):
    rows: int
    bytes: int


class StorageUsage(BaseModel):
    """One tenant's share of the disk; estimates (see StorageService.usage)."""

    backend: Literal['timescaledb', 'native']
    raw: TableUsage
    minute: TableUsage
    hour: TableUsage
    archive: TableUsage = Field(description='raw archive: payloads as received')

    @property
    def total_bytes(self) -> int:
        return self.raw.bytes + self.minute.bytes + self.hour.bytes + self.archive.bytes
