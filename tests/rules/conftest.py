"""Rule and alarm test plumbing: readings as the writer reports them, an engine with a recording notifier."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from app.bus import TelemetryStored
from app.models.alarm_notice import AlarmNotice
from app.models.rules import RuleCreate
from app.models.schemas import DeviceCreate, DevicePublic, Principal
from app.models.telemetry import Message
from app.platform import Platform
from app.services.alarms import AlarmService
from app.services.rules.engine import RuleEngine
from app.services.rules.maintenance import MaintenanceService
from app.services.rules.service import RuleService

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def readings(tenant_id: UUID, device_id: UUID, ts: datetime, **values: Any) -> TelemetryStored:
    return TelemetryStored(tenant_id=tenant_id, device_id=device_id, last_seen=ts,
                           messages=(Message(ts, None, dict(values)),))


@dataclass
class RecordingNotifier:
    """Keeps a notice only once the transaction it was enqueued in commits (like the outbox's rows)."""

    enqueued: list[AlarmNotice] = field(default_factory=list)
    committed: list[AlarmNotice] = field(default_factory=list)
    outside_transaction: int = 0

    async def enqueue(self, session: AsyncSession, notice: AlarmNotice) -> None:
        if not session.in_transaction():
            self.outside_transaction += 1
        self.enqueued.append(notice)
        event.listen(session.sync_session, 'after_commit', lambda _s: self.committed.append(notice), once=True)

    def transitions(self) -> list[str]:
        return [notice.transition for notice in self.committed]


@dataclass
class Rig:
    platform: Platform
    principal: Principal
    device: DevicePublic
    notifier: RecordingNotifier
    alarms: AlarmService
    rules: RuleService
    engine: RuleEngine
    maintenance: MaintenanceService

    async def rule(self, **fields: Any) -> UUID:
        fields.setdefault('name', 'Rule')
        fields.setdefault('scope', {'kind': 'device', 'device_id': str(self.device.id)})
        return (await self.rules.create(self.principal, RuleCreate.model_validate(fields))).id

    async def send(self, when: float | datetime, device: DevicePublic | None = None, **values: Any) -> None:
        """Readings at T0 + `when` seconds (or at `when`), as one committed batch; returns once its alarm
        changes are written (the engine writes them from a task of its own)."""
        target = device or self.device
        ts = when if isinstance(when, datetime) else at(when)
        await self.engine.on_committed([readings(self.principal.tenant_id, target.id, ts, **values)])
        await self.engine.settled()

    async def open_alarms(self) -> list[tuple[str, int]]:
        found = await self.alarms.find(self.principal)
        return [(alarm.status, alarm.count) for alarm in found if alarm.status != 'cleared']

    async def statuses(self) -> list[str]:
        return sorted(alarm.status for alarm in await self.alarms.find(self.principal))


def make_rig(platform: Platform, principal: Principal, device: DevicePublic) -> Rig:
    notifier = RecordingNotifier()
    alarms = AlarmService(platform.db, platform.bus, notifier=notifier)
    rules = RuleService(platform.db, platform.bus, alarms)
    maintenance = MaintenanceService(platform.db)
    engine = RuleEngine(platform.db, platform.bus, rules, alarms, maintenance)
    return Rig(platform, principal, device, notifier, alarms, rules, engine, maintenance)


@pytest.fixture
async def rig(platform: Platform, new_tenant: Any) -> AsyncIterator[Rig]:
    principal = (await new_tenant()).principal
    device, _ = await platform.devices.create(principal, DeviceCreate(name='Boiler', type='boiler'))
    made = make_rig(platform, principal, device)
    yield made
    await made.engine.stop()
    made.engine.close()


from tests.api.conftest import api, make_device, sign_in  # noqa: E402, F401  - the API tests' fixtures
from tests.pages.conftest import make_account  # noqa: E402, F401  - the page tests' fixture
