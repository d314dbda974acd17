"""End to end: a device publishes over MQTT, open pages change without being reopened."""

from __future__ import annotations

from nicegui.testing import User

from app.platform import Platform
from tests.pages.conftest import MakeAccount, MakeDevice, broker_connected, publish, sign_in


async def test_open_device_page_shows_new_values(user: User, app_platform: Platform, make_account: MakeAccount,
                                                 make_device: MakeDevice) -> None:
    account = await make_account()
    device = await make_device(account, 'Live one')
    await broker_connected(app_platform)
    await sign_in(user, account)
    await user.open(f'/devices/{device.id}')
    await user.should_see('No telemetry yet.')
    await publish(app_platform, device, b'{"temperature": 23.5}')
    await user.should_see(marker='latest-temperature', retries=100)
    with user.scope(marker='latest-temperature'):
        await user.should_see('23.5')
    with user.scope(marker='device-details'):
        await user.should_see('online', retries=50)
    await user.should_see(marker='messages-received', content='1', retries=50)


async def test_open_fleet_page_shows_device_online(user: User, app_platform: Platform, make_account: MakeAccount,
                                                   make_device: MakeDevice) -> None:
    account = await make_account()
    device = await make_device(account, 'Fleet member')
    await broker_connected(app_platform)
    await sign_in(user, account)
    with user.scope(marker=f'device-{device.id}'):
        await user.should_see('new')
        await user.should_see('never')
    await publish(app_platform, device, b'{"temperature": 19.25, "humidity": 55}')
    with user.scope(marker=f'device-{device.id}'):
        await user.should_see('online', retries=100)
        await user.should_see('humidity 55 · temperature 19.25', retries=50)
        await user.should_not_see('never')


async def test_malformed_payload_shows_in_data_quality(user: User, app_platform: Platform,
                                                       make_account: MakeAccount, make_device: MakeDevice) -> None:
    account = await make_account()
    device = await make_device(account, 'Garbler')
    await broker_connected(app_platform)
    await sign_in(user, account)
    await user.open(f'/devices/{device.id}')
    await user.should_see('nothing rejected')
    await publish(app_platform, device, b'{"temperature": 21.5,')
    with user.scope(marker='data-quality'):
        await user.should_see('not valid JSON', retries=100)
        await user.should_see('{"temperature": 21.5,')
    malformed = next(iter(user.find(marker='messages-malformed').elements))
    assert getattr(malformed, 'text', '') == '1'


async def test_device_created_elsewhere_appears_on_open_fleet_page(user: User, make_account: MakeAccount,
                                                                   make_device: MakeDevice) -> None:
    account = await make_account()
    await sign_in(user, account)
    await user.should_see('No devices yet.')
    await make_device(account, 'Newcomer')
    await user.should_see('Newcomer', retries=30)


async def test_subscriptions_end_with_the_page(user: User, app_platform: Platform, make_account: MakeAccount,
                                               make_device: MakeDevice) -> None:
    account = await make_account()
    device = await make_device(account, 'Watched')
    topics = (app_platform.bus.telemetry_stored, app_platform.bus.device_changed)
    await sign_in(user, account)
    fleet_client = user.client
    before = [topic.subscriber_count for topic in topics]
    device_client = await user.open(f'/devices/{device.id}')
    assert [topic.subscriber_count for topic in topics] == [count + 1 for count in before]
    for client in (device_client, fleet_client):
        assert client is not None
        client.delete()
    assert [topic.subscriber_count for topic in topics] == [count - 1 for count in before]
