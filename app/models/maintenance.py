"""Maintenance windows: time ranges in which rules raise no alarm for the chosen devices (or all of them)."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Column, DateTime
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel


class MaintenanceCreate(BaseModel):
    model_config = ConfigDict(extra='forbid')

    name: str = Field(min_length=1, max_length=200)
    starts_at: AwareDatetime  # with a UTC offset: a window is a moment, not a wall-clock time
    ends_at: AwareDatetime
    device_ids: list[UUID] | None = None  # None: every device of the tenant

    @model_validator(mode='after')
    def _ordered(self) -> MaintenanceCreate:
        if self.ends_at <= self.starts_at:
            raise ValueError('A maintenance window must end after it starts.')
        return self


class MaintenancePublic(MaintenanceCreate):
    model_config = ConfigDict(from_attributes=True, extra='ignore')

    id: UUID
    tenant_id: UUID

    def covers(self, device_id: UUID, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at and (self.device_ids is None or device_id in self.device_ids)


class MaintenanceWindow(SQLModel, table=True):
    __tablename__ = 'maintenance_windows'

    id: UUID = SQLField(default_factory=uuid4, primary_key=True)
    tenant_id: UUID = SQLField(foreign_key='tenants.id', index=True)
    name: str
    starts_at: datetime = SQLField(sa_column=Column(DateTime(timezone=True), nullable=False))
    ends_at: datetime = SQLField(sa_column=Column(DateTime(timezone=True), nullable=False))
    device_ids: list[UUID] | None = SQLField(default=None, sa_column=Column(ARRAY(PgUUID(as_uuid=True)),
                                                                             nullable=True))
