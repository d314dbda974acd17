"""The engine's alarm changes are written by a task of their own: in order, together when they piled up, and a
failure of one tenant's write neither stops the task nor loses the other tenants' changes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import cast
from uuid import UUID, uuid4

import pytest

from app.bus import TelemetryStored
from app.services.alarms import AlarmService, Firing
from app.services.rules.alarm_queue import AlarmQueue
from tests.rules.conftest import Rig, at


def firing(number: int) -> Firing:
    return Firing(rule_id=UUID(int=1), rule_name='Rule', severity='major', threshold='t > 1', device_id=UUID(int=2),
                  device_name='Boiler', action='raise' if number % 2 == 0 else 'clear', at=datetime.now(UTC),
                  value=float(number))


class Recorder:
    def __init__(self, failing: UUID | None = None) -> None:
        self.calls: list[tuple[UUID, list[float]]] = []
        self.failing = failing
        self.gate = asyncio.Event()

    async def apply(self, tenant_id: UUID, firings: list[Firing]) -> list[object]:
        await self.gate.wait()
        self.calls.append((tenant_id, [float(f.value or 0) for f in firings]))
        if tenant_id == self.failing:
            raise RuntimeError('database gone for this one')
        return []


async def test_order_is_kept_and_what_piled_up_is_written_together(caplog: pytest.LogCaptureFixture) -> None:
    good, bad = uuid4(), uuid4()
    recorder = Recorder(failing=bad)
    queue = AlarmQueue(cast(AlarmService, recorder), limit=100)
    await queue.put(good, [firing(0)])
    await asyncio.sleep(0.01)  # the task took the first and waits on the gate; the rest pile up
    await queue.put(bad, [firing(1)])
    await queue.put(good, [firing(2), firing(3)])
    await queue.put(good, [firing(4)])
    recorder.gate.set()
    await queue.settled()
    assert recorder.calls == [(good, [0.0]), (bad, [1.0]), (good, [2.0, 3.0, 4.0])]
    assert [r.getMessage() for r in caplog.records if r.levelname == 'ERROR'] == ['alarm changes failed']
    await queue.put(good, [firing(6)])  # the task lives on
    await queue.settled()
    assert recorder.calls[-1] == (good, [6.0])
    await queue.stop()


async def test_a_full_queue_makes_the_engine_wait() -> None:
    recorder = Recorder()
    queue = AlarmQueue(cast(AlarmService, recorder), limit=1)
    await queue.put(uuid4(), [firing(0)])
    await asyncio.sleep(0.01)
    await queue.put(uuid4(), [firing(1)])  # fills the queue while the first is being written
    third = asyncio.create_task(queue.put(uuid4(), [firing(2)]))
    await asyncio.sleep(0.05)
    assert not third.done()
    recorder.gate.set()
    await asyncio.wait_for(third, 5)
    await queue.stop()
    assert [values for _, values in recorder.calls] == [[0.0], [1.0], [2.0]]


async def test_the_batch_writer_does_not_wait_for_rule_evaluation(rig: Rig) -> None:
    from tests.rules.conftest import readings

    await rig.rule(condition={'type': 'threshold', 'key': 'temperature', 'op': '>', 'value': 80})
    gate = asyncio.Event()
    evaluate = rig.engine.evaluate

    async def slow(tenant_id: UUID, events: list[TelemetryStored]) -> list[Firing]:
        await gate.wait()
        return await evaluate(tenant_id, events)

    rig.engine.evaluate = slow  # type: ignore[method-assign]
    await asyncio.wait_for(rig.engine.on_committed([readings(rig.principal.tenant_id, rig.device.id, at(0),
                                                             temperature=90)]), 1)
    assert await rig.open_alarms() == []  # handed over, not yet evaluated
    gate.set()
    await rig.engine.settled()
    assert await rig.open_alarms() == [('active', 1)]
