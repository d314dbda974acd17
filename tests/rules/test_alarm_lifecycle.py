"""Alarm lifecycle in the service: one open alarm under concurrency, history, and notices inside the transaction."""

from __future__ import annotations

import asyncio

import pytest

from app.models.rules import RuleCreate
from app.services.alarms import Firing
from app.services.errors import Conflict, NotFound, PermissionDenied
from tests.rules.conftest import Rig, at, make_rig, readings

HOT = {'type': 'threshold', 'key': 'temperature', 'op': '>', 'value': 80}


async def test_concurrent_batches_on_two_instances_leave_one_open_alarm(rig: Rig) -> None:
    await rig.rule(condition=HOT)
    second = make_rig(rig.platform, rig.principal, rig.device)  # another process's engine, same database
    batches = [[readings(rig.principal.tenant_id, rig.device.id, at(i), temperature=90)] for i in range(6)]
    await asyncio.gather(*(engine.on_committed(batch) for batch in batches for engine in (rig.engine, second.engine)))
    await asyncio.gather(rig.engine.settled(), second.engine.settled())
    await second.engine.stop()
    assert await rig.open_alarms() == [('active', 12)]
    assert (rig.notifier.transitions() + second.notifier.transitions()) == ['raised']


async def test_a_rolled_back_alarm_change_leaves_no_notice(rig: Rig) -> None:
    rule_id = await rig.rule(condition=HOT)
    firing = Firing(rule_id=rule_id, rule_name='Rule', severity='major', threshold='temperature > 80',
                    device_id=rig.device.id, device_name='Boiler', action='raise', at=at(0), key='temperature',
                    value=90)
    with pytest.raises(RuntimeError):
        async with rig.platform.db.tenant(rig.principal.tenant_id) as session:
            await rig.alarms.apply_in(session, rig.principal.tenant_id, firing)
            raise RuntimeError('the transaction fails after the alarm change')
    assert len(rig.notifier.enqueued) == 1
    assert rig.notifier.committed == []
    assert await rig.statuses() == []
    await rig.alarms.apply(rig.principal.tenant_id, [firing])
    assert rig.notifier.transitions() == ['raised']


async def test_acknowledge_comment_assign_clear_with_history_and_notices(rig: Rig) -> None:
    await rig.rule(condition=HOT)
    await rig.send(0, temperature=90)
    (alarm,) = await rig.alarms.find(rig.principal)
    acked = await rig.alarms.acknowledge(rig.principal, alarm.id, note='On my way')
    assert (acked.status, acked.acknowledged_by, acked.ack_note) == ('acknowledged', rig.principal.email, 'On my way')
    with pytest.raises(Conflict):
        await rig.alarms.acknowledge(rig.principal, alarm.id)
    await rig.alarms.comment(rig.principal, alarm.id, text_='Valve replaced')
    assert rig.principal.user_id is not None
    assigned = await rig.alarms.assign(rig.principal, alarm.id, user_id=rig.principal.user_id)
    assert assigned.assignee_id == rig.principal.user_id
    cleared = await rig.alarms.clear(rig.principal, alarm.id, reason='Fixed')
    assert (cleared.status, cleared.clear_reason) == ('cleared', 'Fixed')
    detail = await rig.alarms.get(rig.principal, alarm.id)
    assert [event.kind for event in detail.history] == ['raised', 'acknowledged', 'commented', 'assigned', 'cleared']
    assert rig.notifier.transitions() == ['raised', 'acknowledged', 'cleared']
    assert rig.notifier.committed[1].actor == rig.principal.email
    await rig.send(10, temperature=91)  # still hot after a person cleared it: a new alarm
    assert await rig.statuses() == ['active', 'cleared']


async def test_rule_severity_change_is_recorded_on_open_alarms(rig: Rig) -> None:
    rule_id = await rig.rule(condition=HOT, severity='minor')
    await rig.send(0, temperature=90)
    await rig.rules.update(rig.principal, rule_id, RuleCreate.model_validate(
        {'name': 'Rule', 'severity': 'critical', 'condition': HOT,
         'scope': {'kind': 'device', 'device_id': str(rig.device.id)}}))
    (alarm,) = await rig.alarms.find(rig.principal)
    detail = await rig.alarms.get(rig.principal, alarm.id)
    assert detail.severity == 'critical'
    assert detail.history[-1].data == {'from': 'minor', 'to': 'critical'}
    assert rig.notifier.transitions() == ['raised', 'severity_changed']


async def test_roles_and_tenant_isolation(rig: Rig, new_tenant: object) -> None:
    await rig.rule(condition=HOT)
    await rig.send(0, temperature=90)
    (alarm,) = await rig.alarms.find(rig.principal)
    stranger = (await new_tenant()).principal  # type: ignore[operator]
    with pytest.raises(NotFound):
        await rig.alarms.get(stranger, alarm.id)
    assert await rig.alarms.find(stranger) == []
    assert await rig.rules.all(stranger) == []
    viewer = type(rig.principal)(tenant_id=rig.principal.tenant_id, user_id=None, role='viewer')
    technician = type(rig.principal)(tenant_id=rig.principal.tenant_id, user_id=None, role='technician')
    with pytest.raises(PermissionDenied):
        await rig.alarms.acknowledge(viewer, alarm.id)
    await rig.alarms.acknowledge(technician, alarm.id)
    with pytest.raises(PermissionDenied):
        await rig.alarms.clear(technician, alarm.id)


async def test_a_firing_for_a_deleted_rule_is_dropped_quietly(rig: Rig) -> None:
    rule_id = await rig.rule(condition=HOT)
    await rig.rules.delete(rig.principal, rule_id)
    firing = Firing(rule_id=rule_id, rule_name='Rule', severity='major', threshold='temperature > 80',
                    device_id=rig.device.id, device_name='Boiler', action='raise', at=at(0))
    assert await rig.alarms.apply(rig.principal.tenant_id, [firing]) == []
    assert await rig.statuses() == []
    assert rig.notifier.committed == []
