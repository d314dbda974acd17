"""What the alarm service hands to the notification outbox, inside the alarm change's own transaction."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

Severity = Literal['critical', 'major', 'minor', 'warning', 'info']
SEVERITIES: tuple[Severity, ...] = ('critical', 'major', 'minor', 'warning', 'info')
AlarmTransition = Literal['raised', 'acknowledged', 'cleared', 'severity_changed']


@dataclass(frozen=True)
class AlarmNotice:
    tenant_id: UUID
    alarm_id: UUID
    rule_id: UUID
    rule_name: str
    device_id: UUID
    device_name: str
    severity: Severity
    transition: AlarmTransition
    at: datetime
    key: str | None = None  # the reading that triggered it, when there is one
    value: float | str | bool | None = None
    threshold: str | None = None  # human-readable condition, e.g. 'temperature > 80'
    actor: str | None = None  # who acknowledged or cleared, when a person did
    note: str | None = None


class AlarmNotifier(Protocol):
    """Implemented by the notification outbox: rows written in `session` commit with the alarm change."""

    async def enqueue(self, session: AsyncSession, notice: AlarmNotice) -> None: ...
