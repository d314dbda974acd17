"""The raw archive as people use it: an admin switches it on; an operator on the device page sees what the
device really sent (and why a message was refused), and replays it."""

from __future__ import annotations

from datetime import UTC, datetime

from nicegui import ui
from nicegui.testing import User
from sqlalchemy import text

from app.models.raw_archive import RawArchiveSettings
from app.platform import Platform
from tests.pages.conftest import MakeAccount, MakeDevice, broker_connected, publish, sign_in


async def test_admin_switches_the_archive_on_from_the_storage_page(user: User, make_account: MakeAccount,
                                                                   app_platform: Platform) -> None:
    admin = await make_account('admin')
    await sign_in(user, admin)
    await user.open('/storage')
    await user.should_see('Raw archive')
    days = next(iter(user.find(marker='raw-archive-days').elements))
    assert isinstance(days, ui.number)
    days.value = 0
    user.find(marker='raw-archive-enabled').click()
    user.find(marker='save-raw-archive').click()
    await user.should_see('Raw archive: keep between 1 and 365 days.')
    days.value = 14
    user.find(marker='save-raw-archive').click()
    await user.should_see('Raw archive on')
    assert await app_platform.raw_archive.settings(admin.principal) == RawArchiveSettings(enabled=True, days=14)
    assert admin.principal.tenant_id in app_platform.writer.archiving


async def test_device_page_shows_the_last_messages_and_replays_them(
    user: User, app_platform: Platform, make_account: MakeAccount, make_device: MakeDevice,
) -> None:
    operator = await make_account('operator')
    admin = await make_account('admin', tenant_of=operator)
    device = await make_device(operator, 'Pump')
    await broker_connected(app_platform)
    await sign_in(user, operator)
    await user.open(f'/devices/{device.id}')
    await user.should_see('The raw archive is off for this organisation', retries=50)  # after the page's first load
    await app_platform.raw_archive.update_settings(admin.principal, RawArchiveSettings(enabled=True, days=7))
    await publish(app_platform, device, b'{"pressure": 2.5}')
    await publish(app_platform, device, b'{"pressure": "high"')
    with user.scope(marker='raw-messages'):
        await user.should_see('rejected: not valid JSON', retries=100)  # the page refreshes while data flows
        await user.should_see('{"pressure": 2.5}')
        await user.should_see('Every payload is kept as received for 7 days.')
    async with app_platform.db.system() as session:
        await session.execute(text('DELETE FROM telemetry WHERE device_id = :d'), {'d': device.id})
    user.find(marker='raw-replay').click()
    await user.should_see(marker='replay-dialog')
    user.find(marker='replay-confirm').click()
    await user.should_see('Replayed 1 of 2 messages (1 readings; those already stored were skipped); 1 still refused')
    page = await app_platform.telemetry.raw(operator.principal, device.id,
                                            start=datetime(2026, 1, 1, tzinfo=UTC), end=datetime.now(UTC))
    assert [point.value for point in page.points] == [2.5]


async def test_viewers_see_messages_but_cannot_replay(
    user: User, app_platform: Platform, make_account: MakeAccount, make_device: MakeDevice,
) -> None:
    viewer = await make_account('viewer')
    device = await make_device(viewer, 'Meter')
    await sign_in(user, viewer)
    await user.open(f'/devices/{device.id}')
    await user.should_see(marker='raw-messages')
    await user.should_see(marker='raw-download')
    await user.should_not_see(marker='raw-replay')
