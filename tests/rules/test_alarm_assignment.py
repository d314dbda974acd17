"""Giving an alarm to someone from the alarms table and the detail page, and the "mine" / unassigned filters."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest
from nicegui.testing import User

from app.models.alarms import AlarmFilter
from app.models.rules import RuleCreate
from app.models.schemas import DeviceCreate, Principal
from app.platform import Platform
from app.services.alarms import Firing
from app.services.errors import InvalidInput
from tests.pages.conftest import Account, MakeAccount, sign_in
from tests.rules.conftest import Rig
from tests.rules.test_rules_page import set_value


async def raise_alarm(platform: Platform, principal: Principal, device_name: str) -> UUID:
    """An open alarm as the rule engine would raise it."""
    device, _ = await platform.devices.create(principal, DeviceCreate(name=device_name))
    rule = await platform.rules.create(principal, RuleCreate.model_validate({
        'name': 'Too hot', 'scope': {'kind': 'all'},
        'condition': {'type': 'threshold', 'key': 'temperature', 'op': '>', 'value': 80}}))
    (changed,) = await platform.alarms.apply(principal.tenant_id, [Firing(
        rule_id=rule.id, rule_name=rule.name, severity='major', threshold='temperature > 80', device_id=device.id,
        device_name=device.name, action='raise', at=datetime.now(UTC), key='temperature', value=95.0)])
    return changed.alarm_id


async def open_alarms(user: User, platform: Platform, operator: Account) -> tuple[UUID, UUID]:
    """Boiler's and Pump's alarms, raised, and the operator on the alarms table showing them."""
    boiler = await raise_alarm(platform, operator.principal, 'Boiler')
    pump = await raise_alarm(platform, operator.principal, 'Pump')
    await sign_in(user, operator)
    await user.open('/alarms')
    await user.should_see('Too hot · Boiler', retries=50)
    return boiler, pump


async def test_assign_from_the_table_filter_mine_and_unassign_on_the_detail_page(
        user: User, app_platform: Platform, make_account: MakeAccount) -> None:
    operator = await make_account('operator')
    technician = await make_account('technician', tenant_of=operator)
    await make_account('viewer', tenant_of=operator)  # cannot act on alarms: not offered
    boiler, pump = await open_alarms(user, app_platform, operator)

    user.find(marker=f'assign-{boiler}').click()
    await user.should_see(marker='assignee-choice')
    (choice,) = user.find(marker='assignee-choice').elements
    assert sorted(choice.options.values()) == sorted(['Nobody', operator.email, technician.email])  # type: ignore[attr-defined]
    set_value(user, 'assignee-choice', str(technician.principal.user_id))
    user.find(marker='confirm-assign').click()
    await user.should_see(f'Assigned to {technician.email}', retries=50)
    user.find(marker=f'assign-{pump}').click()
    await user.should_see(marker='assignee-choice')
    set_value(user, 'assignee-choice', str(operator.principal.user_id))
    user.find(marker='confirm-assign').click()
    await user.should_see(marker=f'assignee-{pump}', retries=50)

    set_value(user, 'assignee-filter', 'mine')
    await user.should_not_see('Too hot · Boiler', retries=50)
    await user.should_see('Too hot · Pump')
    set_value(user, 'assignee-filter', 'none')
    await user.should_see('No alarms match the filter.', retries=50)

    await user.open(f'/alarms/{boiler}')
    await user.should_see(f'Assigned to {technician.email}', retries=50)
    with user.scope(marker='alarm-history'):
        await user.should_see(f'assigned to {technician.email} by {operator.email}')
    user.find(marker='detail-assign').click()
    await user.should_see(marker='assignee-choice')
    set_value(user, 'assignee-choice', '')
    user.find(marker='confirm-assign').click()
    await user.should_see('Assigned to nobody', retries=50)
    with user.scope(marker='alarm-history'):
        await user.should_see(f'unassigned by {operator.email}', retries=50)
    unassigned = await app_platform.alarms.find(operator.principal, AlarmFilter(unassigned=True))
    assert [alarm.device_name for alarm in unassigned] == ['Boiler']


async def test_an_open_dialog_survives_a_live_reload_of_its_row(
        user: User, app_platform: Platform, make_account: MakeAccount) -> None:
    """Someone else's change reloads the table while a note is being typed: the dialog and its text stay."""
    operator = await make_account('operator')
    boiler, pump = await open_alarms(user, app_platform, operator)
    user.find(marker=f'ack-{boiler}').click()
    await user.should_see(marker='alarm-note', retries=50)
    user.find(marker='alarm-note').type('On my way')

    await app_platform.alarms.acknowledge(operator.principal, pump, note='elsewhere')
    await user.should_not_see(marker=f'ack-{pump}', retries=50)
    (note,) = user.find(marker='alarm-note').elements
    assert note.value == 'On my way'  # type: ignore[attr-defined]
    user.find(marker='confirm-note').click()
    await user.should_not_see(marker=f'ack-{boiler}', retries=50)
    detail = await app_platform.alarms.get(operator.principal, boiler)
    assert [(event.kind, event.note) for event in detail.history][-1] == ('acknowledged', 'On my way')


async def test_technician_cannot_assign(user: User, app_platform: Platform, make_account: MakeAccount) -> None:
    operator = await make_account('operator')
    technician = await make_account('technician', tenant_of=operator)
    alarm = await raise_alarm(app_platform, operator.principal, 'Boiler')
    await sign_in(user, technician)
    await user.open('/alarms')
    await user.should_see('Too hot · Boiler', retries=50)
    await user.should_see(marker=f'ack-{alarm}')
    await user.should_not_see(marker=f'assign-{alarm}')
    await user.open(f'/alarms/{alarm}')
    await user.should_see('Assigned to nobody', retries=50)
    await user.should_not_see(marker='detail-assign')


async def test_only_people_who_can_act_are_assignable(rig: Rig, new_tenant: object) -> None:
    alarm = await raise_alarm(rig.platform, rig.principal, 'Fan')
    viewer = await rig.platform.users.create_in_tenant(rig.principal.tenant_id, email='v@example.com',
                                                       password='correct horse battery', role='viewer')
    assert viewer.id not in {person.id for person in await rig.platform.alarms.assignees(rig.principal)}
    with pytest.raises(InvalidInput, match='cannot act on alarms') as refused:
        await rig.platform.alarms.assign(rig.principal, alarm, user_id=viewer.id)
    assert refused.value.field == 'user_id'
