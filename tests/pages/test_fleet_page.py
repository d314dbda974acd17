"""The fleet page: tenant isolation, search and status filter, adding a device, roles."""

from __future__ import annotations

from nicegui import ui
from nicegui.testing import User

from tests.pages.conftest import MakeAccount, MakeDevice, sign_in


async def test_fleet_shows_only_the_tenants_devices(user: User, make_account: MakeAccount,
                                                    make_device: MakeDevice) -> None:
    mine, theirs = await make_account(), await make_account()
    await make_device(mine, 'Alpha pump', 'pump')
    await make_device(theirs, 'Beta secret', 'valve')
    await sign_in(user, mine)
    await user.should_see('Alpha pump')
    await user.should_see('1 device')
    await user.should_not_see('Beta secret')
    await user.should_not_see(theirs.tenant_name)


async def test_search_and_status_filter(user: User, make_account: MakeAccount, make_device: MakeDevice) -> None:
    account = await make_account()
    await make_device(account, 'Boiler room', 'thermostat')
    await make_device(account, 'Cold store', 'freezer')
    await sign_in(user, account)
    user.find(marker='search').type('boil')
    await user.should_see('Boiler room')
    await user.should_not_see('Cold store')
    await user.should_see('1 of 2 devices')
    user.find(marker='search').clear().type('FREEZER')
    await user.should_see('Cold store')
    await user.should_not_see('Boiler room')
    user.find(marker='search').clear()
    toggle = next(iter(user.find(kind=ui.toggle, marker='status-filter').elements))
    with user:
        toggle.value = 'online'
    await user.should_see('No device matches the filter.')
    with user:
        toggle.value = 'new'
    await user.should_see('Boiler room')
    await user.should_see('Cold store')


async def test_add_device_shows_token_and_commands_once(user: User, make_account: MakeAccount) -> None:
    account = await make_account(role='technician')
    await sign_in(user, account)
    user.find(marker='add-device').click()
    user.find(marker='device-name').type('Roof station')
    user.find(marker='device-type-input').clear().type('weather')
    user.find(marker='dialog-save').click()
    await user.should_see(marker='device-token', retries=30)
    await user.should_see('it will not be shown again')
    token_label = next(iter(user.find(marker='device-token').elements))
    assert isinstance(token_label, ui.label) and len(token_label.text) >= 40
    mosquitto = next(iter(user.find(marker='mosquitto-pub').elements))
    assert isinstance(mosquitto, ui.label)
    assert mosquitto.text.startswith('mosquitto_pub ') and token_label.text in mosquitto.text
    await user.should_see(marker='curl-command')
    user.find(marker='credentials-done').click()
    await user.should_not_see(marker='device-token')
    await user.should_see('Roof station')
    await user.should_see('weather')


async def test_blank_device_name_is_refused(user: User, make_account: MakeAccount) -> None:
    await sign_in(user, await make_account())
    user.find(marker='add-device').click()
    user.find(marker='dialog-save').click()
    await user.should_see('A device needs a name.')
    await user.should_not_see(marker='device-token')


async def test_viewer_cannot_add_devices(user: User, make_account: MakeAccount, make_device: MakeDevice) -> None:
    admin = await make_account()
    viewer = await make_account('viewer', tenant_of=admin)
    await make_device(admin, 'Shared meter')
    await sign_in(user, viewer)
    await user.should_see('Shared meter')
    await user.should_not_see(marker='add-device')
    await user.should_not_see('Add device')
