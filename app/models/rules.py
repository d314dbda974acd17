"""Alarm rules: the typed conditions (a discriminated union stored as JSONB), scope, options, and the table."""

from __future__ import annotations

from datetime import datetime, time
from typing import Annotated, Any, Literal
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import Column, DateTime
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field as SQLField
from sqlmodel import SQLModel

from app.models.alarm_notice import Severity

Op = Literal['>', '>=', '<', '<=', '==', '!=']
Scalar = float | bool | str


class _Condition(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True)


class Threshold(_Condition):
    type: Literal['threshold'] = 'threshold'
    key: str = Field(min_length=1, max_length=200)
    op: Op
    value: Scalar


class Range(_Condition):
    """Hysteresis: 'high' raises above `raise_at` and clears below `clear_at`; 'low' is the mirror."""

    type: Literal['range'] = 'range'
    key: str = Field(min_length=1, max_length=200)
    direction: Literal['high', 'low'] = 'high'
    raise_at: float
    clear_at: float

    @model_validator(mode='after')
    def _ordered(self) -> Range:
        if self.direction == 'high' and self.clear_at > self.raise_at:
            raise ValueError('For a high limit the clear level must not be above the raise level.')
        if self.direction == 'low' and self.clear_at < self.raise_at:
            raise ValueError('For a low limit the clear level must not be below the raise level.')
        return self


class Comparison(_Condition):
    """Two keys of the same device: `left op right + offset`."""

    type: Literal['comparison'] = 'comparison'
    left: str = Field(min_length=1, max_length=200)
    op: Op
    right: str = Field(min_length=1, max_length=200)
    offset: float = 0.0


class RateOfChange(_Condition):
    """Change per minute of `key` over the last `window_s` seconds (newest minus oldest reading in the window)."""

    type: Literal['rate'] = 'rate'
    key: str = Field(min_length=1, max_length=200)
    op: Op = '>'
    per_minute: float
    window_s: int = Field(default=300, ge=10, le=3600)


Simple = Annotated[Threshold | Range | Comparison | RateOfChange, Field(discriminator='type')]


class Composite(_Condition):
    """AND / OR of sub-conditions, or weighted: the weights of the true ones must reach `min_score`."""

    type: Literal['composite'] = 'composite'
    mode: Literal['and', 'or', 'weighted'] = 'and'
    conditions: list[Simple] = Field(min_length=1, max_length=20)
    weights: list[float] | None = None
    min_score: float = 1.0

    @model_validator(mode='after')
    def _weights(self) -> Composite:
        if self.mode == 'weighted' and (self.weights is None or len(self.weights) != len(self.conditions)):
            raise ValueError('A weighted condition needs one weight per sub-condition.')
        return self


class Window(_Condition):
    """A statistic of `key` over the last `minutes`, checked on the scheduler with SQL over stored telemetry."""

    type: Literal['window'] = 'window'
    key: str = Field(min_length=1, max_length=200)
    stat: Literal['avg', 'min', 'max', 'stddev', 'count'] = 'avg'
    minutes: int = Field(default=10, ge=1, le=1440)
    op: Op = '>'
    value: float


class NoData(_Condition):
    """The device (or one key of it, when `key` is set) sent nothing for `minutes`."""

    type: Literal['no_data'] = 'no_data'
    key: str | None = Field(default=None, max_length=200)
    minutes: int = Field(default=15, ge=1, le=10_080)


Stream = Threshold | Range | Comparison | RateOfChange | Composite
Scheduled = Window | NoData
Condition = Annotated[Threshold | Range | Comparison | RateOfChange | Composite | Window | NoData,
                      Field(discriminator='type')]


class Scope(BaseModel):
    """Which devices a rule watches. A 'group' kind slots in beside these with a group id."""

    model_config = ConfigDict(extra='forbid', frozen=True)

    kind: Literal['device', 'device_type', 'all'] = 'all'
    device_id: UUID | None = None
    device_type: str | None = None

    @model_validator(mode='after')
    def _target(self) -> Scope:
        if self.kind == 'device' and self.device_id is None:
            raise ValueError('Choose the device this rule watches.')
        if self.kind == 'device_type' and not (self.device_type or '').strip():
            raise ValueError('Name the device type this rule watches.')
        return self


class ScheduleWindow(BaseModel):
    """Active on these weekdays (0 = Monday) from `start` to `end` local time; an end before the start wraps."""

    model_config = ConfigDict(extra='forbid', frozen=True)

    days: list[int] = Field(default=[0, 1, 2, 3, 4, 5, 6], min_length=1)
    start: time = time(0, 0)
    end: time = time(23, 59, 59)

    @model_validator(mode='after')
    def _days(self) -> ScheduleWindow:
        if any(day < 0 or day > 6 for day in self.days):
            raise ValueError('Weekdays run from 0 (Monday) to 6 (Sunday).')
        return self

    def covers(self, local: datetime) -> bool:
        now = local.time().replace(tzinfo=None)
        if self.start <= self.end:
            return local.weekday() in self.days and self.start <= now < self.end
        if now >= self.start:
            return local.weekday() in self.days
        return (local.weekday() - 1) % 7 in self.days and now < self.end


SCHEDULED_TYPES = ('window', 'no_data')  # evaluated by the scheduler over stored data, not reading by reading


class RuleOptions(BaseModel):
    model_config = ConfigDict(extra='forbid', frozen=True)

    debounce_s: int = Field(default=0, ge=0, le=86_400)  # condition true this long before raising
    clear_after_s: int = Field(default=0, ge=0, le=86_400)  # condition false this long before auto-clear
    clear_after_readings: int = Field(default=0, ge=0, le=1000)  # or this many false readings
    cooldown_s: int = Field(default=0, ge=0, le=86_400)  # no re-raise this soon after a clear
    auto_clear: bool = True
    schedule: list[ScheduleWindow] = Field(default=[], max_length=50)  # empty: always active
    timezone: str = 'UTC'

    @model_validator(mode='after')
    def _zone(self) -> RuleOptions:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f'Unknown time zone {self.timezone!r}.') from None
        return self

    def active_at(self, at: datetime) -> bool:
        if not self.schedule:
            return True
        local = at.astimezone(ZoneInfo(self.timezone))
        return any(window.covers(local) for window in self.schedule)


class RuleCreate(BaseModel):
    model_config = ConfigDict(extra='forbid')

    name: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    severity: Severity = 'major'
    scope: Scope = Scope()
    condition: Condition
    options: RuleOptions = RuleOptions()


class RulePublic(RuleCreate):
    model_config = ConfigDict(extra='ignore')

    id: UUID
    tenant_id: UUID
    created_at: datetime
    updated_at: datetime


class Rule(SQLModel, table=True):
    __tablename__ = 'rules'

    id: UUID = SQLField(default_factory=uuid4, primary_key=True)
    tenant_id: UUID = SQLField(foreign_key='tenants.id', index=True)
    name: str
    enabled: bool = True
    severity: str = 'major'
    scope: dict[str, Any] = SQLField(sa_column=Column(JSONB, nullable=False))
    condition: dict[str, Any] = SQLField(sa_column=Column(JSONB, nullable=False))
    options: dict[str, Any] = SQLField(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = SQLField(sa_column=Column(DateTime(timezone=True), nullable=False))
    updated_at: datetime = SQLField(sa_column=Column(DateTime(timezone=True), nullable=False))


def format_scalar(value: Scalar) -> str:
    return f'{value:g}' if isinstance(value, float) else str(value)


def describe(condition: Stream | Scheduled) -> str:
    """Human-readable, for notices and tables: 'temperature > 80'."""
    if isinstance(condition, RateOfChange):
        return f'{condition.key} change {condition.op} {format_scalar(condition.per_minute)}/min' \
               f' over {condition.window_s} s'
    if isinstance(condition, Window):
        return f'{condition.stat}({condition.key}, {condition.minutes} min) {condition.op} ' \
               f'{format_scalar(condition.value)}'
    if isinstance(condition, NoData):
        return f'no {condition.key or "data"} for {condition.minutes} min'
    if isinstance(condition, Threshold):
        return f'{condition.key} {condition.op} {format_scalar(condition.value)}'
    if isinstance(condition, Range):
        sign = '>' if condition.direction == 'high' else '<'
        clears = format_scalar(condition.clear_at)
        return f'{condition.key} {sign} {format_scalar(condition.raise_at)} (clears at {clears})'
    if isinstance(condition, Comparison):
        offset = f' + {format_scalar(condition.offset)}' if condition.offset else ''
        return f'{condition.left} {condition.op} {condition.right}{offset}'
    joiner = f' {condition.mode.upper()} ' if condition.mode != 'weighted' else ', '
    inner = joiner.join(describe(part) for part in condition.conditions)
    if condition.mode == 'weighted':
        return f'score ≥ {format_scalar(condition.min_score)} of ({inner})'
    return f'({inner})'
