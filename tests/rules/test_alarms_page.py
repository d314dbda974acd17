"""The alarms page end to end: a device publishes over MQTT, the alarm appears live, is acknowledged and cleared."""

from __future__ import annotations

from nicegui.testing import User

from app.models.rules import RuleCreate
from app.models.schemas import DeviceCreate
from app.platform import Platform
from tests.ingest.test_mqtt_ingest import eventually
from tests.pages.conftest import MakeAccount, broker_connected, publish, sign_in


async def test_new_alarm_appears_live_and_is_acknowledged_and_cleared(user: User, app_platform: Platform,
                                                                      make_account: MakeAccount) -> None:
    account = await make_account()
    device, _ = await app_platform.devices.create(account.principal, DeviceCreate(name='Boiler'))
    await app_platform.rules.create(account.principal, RuleCreate.model_validate({
        'name': 'Too hot', 'severity': 'critical', 'scope': {'kind': 'device', 'device_id': str(device.id)},
        'condition': {'type': 'threshold', 'key': 'temperature', 'op': '>', 'value': 80}}))
    await broker_connected(app_platform)
    await sign_in(user, account)
    await user.open('/alarms')
    await user.should_see('No alarms match the filter.')
    await user.should_see('No open alarms')

    await publish(app_platform, device, b'{"temperature": 95}')
    await user.should_see('Too hot · Boiler', retries=100)
    await user.should_see('1 critical', retries=50)  # the header's live count
    (alarm,) = await app_platform.alarms.find(account.principal)

    user.find(marker=f'ack-{alarm.id}').click()
    await user.should_see(marker='alarm-note')
    user.find(marker='alarm-note').type('On my way')
    user.find(marker='confirm-note').click()
    await user.should_see(marker=f'alarm-status-{alarm.id}', content='acknowledged', retries=50)

    user.find(marker=f'clear-{alarm.id}').click()
    await user.should_see(marker='alarm-note')
    user.find(marker='alarm-note').type('Valve replaced')
    user.find(marker='confirm-note').click()
    await user.should_not_see(marker=f'alarm-{alarm.id}', retries=50)  # the filter shows open alarms
    await user.should_see('No open alarms', retries=50)

    await user.open(f'/alarms/{alarm.id}')
    with user.scope(marker='alarm-history'):
        await user.should_see(f'acknowledged by {account.email}: On my way')
        await user.should_see(f'cleared by {account.email}: Valve replaced')
    user.find(marker='comment-text').type('Checked again at noon')
    user.find(marker='add-comment').click()
    await user.should_see(f'commented by {account.email}: Checked again at noon', retries=50)

    await user.open(f'/devices/{device.id}')
    with user.scope(marker='device-alarm-history'):
        await user.should_see('Too hot · Boiler', retries=50)
    with user.scope(marker='device-open-alarms'):
        await user.should_see('No open alarms.', retries=50)


async def test_viewer_sees_alarms_without_action_buttons(user: User, app_platform: Platform,
                                                         make_account: MakeAccount) -> None:
    admin = await make_account()
    viewer = await make_account('viewer', tenant_of=admin)
    device, _ = await app_platform.devices.create(admin.principal, DeviceCreate(name='Pump'))
    await app_platform.rules.create(admin.principal, RuleCreate.model_validate({
        'name': 'Low pressure', 'scope': {'kind': 'all'},
        'condition': {'type': 'threshold', 'key': 'p', 'op': '<', 'value': 1}}))
    await broker_connected(app_platform)
    await publish(app_platform, device, b'{"p": 0.5}')
    (alarm,) = await eventually(lambda: app_platform.alarms.find(admin.principal), lambda found: len(found) == 1)
    await sign_in(user, viewer)
    await user.open('/alarms')
    await user.should_see('Low pressure · Pump', retries=50)
    await user.should_not_see(marker=f'ack-{alarm.id}')
    await user.should_not_see(marker=f'clear-{alarm.id}')
