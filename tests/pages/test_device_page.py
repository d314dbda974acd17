"""The device page: details, latest values, not found, edit, delete, rotate, viewer."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from uuid import uuid4

from nicegui import ui
from nicegui.testing import User

from app.bus import TelemetryStored
from app.models.telemetry import Message
from app.platform import Platform
from tests.pages.conftest import MakeAccount, MakeDevice, broker_connected, publish, sign_in


async def test_device_page_shows_details_and_latest_values(user: User, app_platform: Platform,
                                                           make_account: MakeAccount, make_device: MakeDevice) -> None:
    account = await make_account()
    device = await make_device(account, 'Greenhouse', 'climate')
    await broker_connected(app_platform)
    await publish(app_platform, device, b'{"temperature": 21.5, "humidity": 40, "door": "open"}')
    for _ in range(100):
        if len(await app_platform.telemetry.latest(account.principal, device.id)) == 3:
            break
        await asyncio.sleep(0.05)
    await sign_in(user, account)
    await user.open(f'/devices/{device.id}')
    await user.should_see('Greenhouse')
    await user.should_see(str(device.id))
    await user.should_see('climate')
    await user.should_see(marker='latest-temperature', retries=30)
    with user.scope(marker='latest-temperature'):
        await user.should_see('21.5')
    with user.scope(marker='latest-humidity'):
        await user.should_see('40')
    with user.scope(marker='latest-door'):
        await user.should_see('open')
    plot = next(iter(user.find(marker='live-chart').elements))
    assert isinstance(plot, ui.plotly) and isinstance(plot.figure, dict)
    assert {trace['name'] for trace in plot.figure['data']} == {'humidity', 'temperature'}


async def test_unknown_or_foreign_device_is_not_found(user: User, make_account: MakeAccount,
                                                      make_device: MakeDevice) -> None:
    mine, theirs = await make_account(), await make_account()
    foreign = await make_device(theirs, 'Not yours')
    await sign_in(user, mine)
    for device_id in (str(uuid4()), str(foreign.id), 'not-a-uuid'):
        await user.open(f'/devices/{device_id}')
        await user.should_see('Device not found')
        await user.should_not_see('Not yours')


async def test_edit_device(user: User, make_account: MakeAccount, make_device: MakeDevice) -> None:
    account = await make_account()
    device = await make_device(account, 'Old name')
    await sign_in(user, account)
    await user.open(f'/devices/{device.id}')
    user.find(marker='edit-device').click()
    user.find(marker='device-name').clear().type('New name')
    user.find(marker='offline-after').type('300')
    user.find(marker='dialog-save').click()
    await user.should_see('Device saved')
    with user.scope(marker='device-details'):
        await user.should_see('New name')
        await user.should_see('300 s')


async def test_delete_device_after_confirmation(user: User, app_platform: Platform, make_account: MakeAccount,
                                                make_device: MakeDevice) -> None:
    account = await make_account()
    device = await make_device(account, 'Doomed')
    await sign_in(user, account)
    await user.open(f'/devices/{device.id}')
    user.find(marker='delete-device').click()
    await user.should_see('Delete “Doomed”?')
    user.find(marker='confirm-delete').click()
    await user.should_see(marker='device-grid', retries=50)
    await user.should_not_see('Doomed')
    assert await app_platform.devices.count(account.principal) == 0


async def test_rotate_token_shows_new_credentials(user: User, make_account: MakeAccount,
                                                  make_device: MakeDevice) -> None:
    account = await make_account('operator')
    device = await make_device(account, 'Rotator')
    await sign_in(user, account)
    await user.open(f'/devices/{device.id}')
    user.find(marker='rotate-token').click()
    await user.should_see('Rotate the token?')
    user.find(marker='confirm-rotate').click()
    await user.should_see(marker='device-token', retries=30)
    await user.should_see(marker='mosquitto-pub')
    user.find(marker='credentials-done').click()
    await user.should_not_see(marker='device-token')


async def test_viewer_sees_no_write_actions(user: User, make_account: MakeAccount, make_device: MakeDevice) -> None:
    admin = await make_account()
    viewer = await make_account('viewer', tenant_of=admin)
    device = await make_device(admin, 'Read only')
    await sign_in(user, viewer)
    await user.open(f'/devices/{device.id}')
    await user.should_see('Read only')
    for marker in ('edit-device', 'delete-device', 'rotate-token', 'add-device'):
        await user.should_not_see(marker=marker)
    for label in ('Edit', 'Delete', 'Rotate token'):
        await user.should_not_see(kind=ui.button, content=label)


async def test_live_chart_never_holds_more_than_the_cap(user: User, app_platform: Platform,
                                                        make_account: MakeAccount, make_device: MakeDevice) -> None:
    account = await make_account()
    device = await make_device(account, 'Chatty')
    await sign_in(user, account)
    await user.open(f'/devices/{device.id}')
    await user.should_see(marker='live-chart')
    plot = next(iter(user.find(marker='live-chart').elements))
    assert isinstance(plot, ui.plotly) and isinstance(plot.figure, dict)
    now = datetime.now(UTC)
    for batch in range(3):
        messages = tuple(Message(now - timedelta(seconds=3000 - batch * 1000 - i), None, {'load': float(i)})
                         for i in range(1000))
        app_platform.bus.telemetry_stored.publish(TelemetryStored(
            tenant_id=account.principal.tenant_id, device_id=device.id, messages=messages, last_seen=now))
        await asyncio.sleep(0.6)
    for _ in range(30):
        if plot.figure['data'] and len(plot.figure['data'][0]['x']) > 0:
            break
        await asyncio.sleep(0.1)
    points = len(plot.figure['data'][0]['x'])
    assert 1000 <= points <= 2000
