"""Maintenance windows from the page: plan one in the person's time zone, see it run, end it early, delete it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from nicegui.testing import User

from app.models.maintenance import MaintenanceCreate
from app.models.schemas import DeviceCreate
from app.platform import Platform
from tests.pages.conftest import MakeAccount, sign_in
from tests.rules.test_rules_page import error_of, set_value

BERLIN = ZoneInfo('Europe/Berlin')
UTC_ZONE = ZoneInfo('UTC')


def wall(moment: datetime, zone: ZoneInfo = BERLIN) -> str:
    """What a person types into the page's date-time field for `moment`, in their zone."""
    return moment.astimezone(zone).strftime('%Y-%m-%dT%H:%M')


async def test_plan_in_my_time_zone_end_early_and_delete(user: User, app_platform: Platform,
                                                         make_account: MakeAccount) -> None:
    account = await make_account('operator')
    await sign_in(user, account)
    await user.open('/rules')
    user.find(marker='maintenance-link').click()
    await user.should_see('No maintenance windows in the last 7 days or planned.', retries=50)
    set_value(user, 'time-zone', 'Europe/Berlin')
    starts = datetime.now(UTC).replace(second=0, microsecond=0) - timedelta(minutes=5)
    user.find(marker='maintenance-reason').type('Boiler service visit')
    set_value(user, 'maintenance-starts', wall(starts))
    set_value(user, 'maintenance-ends', wall(starts + timedelta(hours=2)))
    user.find(marker='add-maintenance').click()
    await user.should_see('Boiler service visit', retries=50)
    await user.should_see('running')
    berlin = starts.astimezone(BERLIN).strftime('%Y-%m-%d %H:%M')
    await user.should_see(f'{berlin} Europe/Berlin')
    await user.should_see('all devices')
    (window,) = await app_platform.maintenance.recent(account.principal)
    assert (window.starts_at, window.ends_at, window.device_ids) == (starts, starts + timedelta(hours=2), None)

    user.find(marker=f'end-{window.id}').click()
    await user.should_see('ended', retries=50)
    (ended,) = await app_platform.maintenance.recent(account.principal)
    assert ended.ends_at <= datetime.now(UTC)
    await user.should_not_see(marker=f'end-{window.id}')

    user.find(marker=f'delete-{window.id}').click()
    await user.should_see(marker='confirm-delete-window')
    user.find(marker='confirm-delete-window').click()
    await user.should_see('No maintenance windows in the last 7 days or planned.', retries=50)
    assert await app_platform.maintenance.recent(account.principal) == []


async def test_chosen_devices_and_mistakes_named_on_the_field(user: User, app_platform: Platform,
                                                             make_account: MakeAccount) -> None:
    account = await make_account('admin')
    pump, _ = await app_platform.devices.create(account.principal, DeviceCreate(name='Pump'))
    await app_platform.devices.create(account.principal, DeviceCreate(name='Fan'))
    await sign_in(user, account)
    await user.open('/maintenance')
    await user.should_see(marker='maintenance-form')
    starts = datetime.now(UTC).replace(second=0, microsecond=0) + timedelta(days=1)
    set_value(user, 'maintenance-starts', wall(starts, UTC_ZONE))  # the page's zone until one is chosen
    set_value(user, 'maintenance-ends', wall(starts - timedelta(hours=1), UTC_ZONE))
    user.find(marker='add-maintenance').click()
    assert 'Say why' in await error_of(user, 'maintenance-reason')
    user.find(marker='maintenance-reason').type('Pump swap')
    user.find(marker='add-maintenance').click()
    assert 'must end after it starts' in await error_of(user, 'maintenance-ends')
    set_value(user, 'maintenance-ends', wall(starts + timedelta(hours=1), UTC_ZONE))
    set_value(user, 'maintenance-all', False)
    user.find(marker='add-maintenance').click()
    assert 'at least one device' in await error_of(user, 'maintenance-devices')
    assert await app_platform.maintenance.recent(account.principal) == []

    set_value(user, 'maintenance-devices', [str(pump.id)])
    user.find(marker='add-maintenance').click()
    await user.should_see('Maintenance window added', retries=50)
    (window,) = await app_platform.maintenance.recent(account.principal)
    await user.should_see(marker=f'maintenance-{window.id}')
    await user.should_see('planned')
    assert window.device_ids == [pump.id]
    await user.should_see(f'{starts.astimezone(UTC).strftime("%Y-%m-%d %H:%M")} UTC')
    await user.should_see('· Pump')
    await user.should_not_see(marker=f'end-{window.id}')  # not started: it can only be deleted


async def test_technician_sees_windows_but_cannot_change_them(user: User, app_platform: Platform,
                                                              make_account: MakeAccount) -> None:
    admin = await make_account('admin')
    technician = await make_account('technician', tenant_of=admin)
    now = datetime.now(UTC)
    window = await app_platform.maintenance.create(admin.principal, MaintenanceCreate(
        name='Roof work', starts_at=now - timedelta(minutes=1), ends_at=now + timedelta(hours=1)))
    await sign_in(user, technician)
    await user.open('/maintenance')
    await user.should_see('Roof work')
    await user.should_see('running')
    await user.should_not_see(marker='maintenance-form')
    await user.should_not_see(marker=f'end-{window.id}')
    await user.should_not_see(marker=f'delete-{window.id}')
