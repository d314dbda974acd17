"""Per-tenant retention: admins change it (audited, validated, role-checked) by service, API and page; usage."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from nicegui import ui
from nicegui.testing import User

from app.models.storage import RetentionSettings
from app.platform import Platform
from app.services.audit import AuditQuery
from app.services.errors import InvalidInput, PermissionDenied
from tests.api.conftest import Api, SignIn
from tests.api.helpers import problem
from tests.conftest import NewTenant
from tests.pages.conftest import MakeAccount, sign_in
from tests.storage.conftest import new_device, store
from tests.storage.test_raw_archive_retention import archive
from tests.support import roll_up


async def test_admins_change_retention_audited(platform: Platform, new_tenant: NewTenant) -> None:
    admin, operator = (await new_tenant()).principal, (await new_tenant('operator')).principal
    assert await platform.storage.retention(admin) == RetentionSettings(raw_days=30, minute_days=180, hour_days=730)
    changed = RetentionSettings(raw_days=7, minute_days=60, hour_days=365)
    assert await platform.storage.update_retention(admin, changed) == changed
    assert await platform.storage.retention(admin) == changed
    [entry] = await platform.audit.search(admin, AuditQuery(action='storage.retention'))
    assert entry.before == {'raw_days': 30, 'minute_days': 180, 'hour_days': 730}
    assert entry.after == changed.model_dump()
    with pytest.raises(PermissionDenied):
        await platform.storage.update_retention(operator, changed)
    with pytest.raises(InvalidInput) as caught:
        await platform.storage.update_retention(admin, RetentionSettings(raw_days=90, minute_days=60, hour_days=365))
    assert caught.value.field == 'minute_days'
    with pytest.raises(InvalidInput) as caught:
        await platform.storage.update_retention(
            admin, RetentionSettings.model_construct(raw_days=1, minute_days=60, hour_days=365))
    assert caught.value.field == 'raw_days'
    assert await platform.storage.retention(operator) == RetentionSettings(raw_days=30, minute_days=180,
                                                                            hour_days=730)  # not another tenant's


async def test_usage_counts_only_the_tenants_own_data(storage: Platform, new_tenant: NewTenant) -> None:
    admin, other = (await new_tenant()).principal, (await new_tenant()).principal
    device = await new_device(storage, admin)
    now = datetime.now(UTC)
    await store(storage, admin, device.id, [(now - timedelta(minutes=i), 'power', float(i)) for i in range(150)])
    await roll_up(storage)
    for index in range(3):
        await archive(storage, admin.tenant_id, device.id, now - timedelta(seconds=index), b'{"power": 1.0}')
    usage = await storage.storage.usage(admin)
    assert usage.raw.rows == 150 and usage.minute.rows == 150 and 3 <= usage.hour.rows <= 4
    assert usage.archive.rows == 3 and usage.archive.bytes > 0
    assert usage.raw.bytes > 0 and usage.total_bytes > usage.raw.bytes + usage.archive.bytes
    elsewhere = await storage.storage.usage(other)
    assert (elsewhere.raw.rows, elsewhere.archive.rows, elsewhere.archive.bytes) == (0, 0, 0)
    viewer = (await new_tenant('viewer')).principal
    with pytest.raises(PermissionDenied):
        await storage.storage.usage(viewer)


async def test_retention_api(api: Api, sign_in: SignIn) -> None:
    admin, viewer = await sign_in(), await sign_in('viewer')
    url = '/api/v1/storage/retention'
    body = {'raw_days': 10, 'minute_days': 100, 'hour_days': 1000}
    response = await api.client.put(url, json=body, headers=admin.headers)
    assert response.status_code == 200 and response.json() == body
    assert (await api.client.get(url, headers=admin.headers)).json() == body
    assert problem(await api.client.put(url, json={**body, 'hour_days': 50}, headers=admin.headers),
                   422)['field'] == 'hour_days'
    assert problem(await api.client.put(url, json={**body, 'raw_days': 0}, headers=admin.headers),
                   422)['errors'][0]['field'] == 'raw_days'
    problem(await api.client.put(url, json=body, headers=viewer.headers), 403)
    usage = await api.client.get('/api/v1/storage/usage', headers=admin.headers)
    assert usage.status_code == 200 and usage.json()['raw'] == {'rows': 0, 'bytes': 0}
    problem(await api.client.get('/api/v1/storage/usage', headers=viewer.headers), 403)


async def test_storage_page(user: User, make_account: MakeAccount) -> None:
    admin = await make_account('admin')
    await sign_in(user, admin)
    await user.open('/storage')
    await user.should_see('Retention (days)')
    await user.should_see(marker='usage-total')
    await user.should_see('Raw archive: 0 rows')
    raw = next(iter(user.find(marker='raw-days').elements))
    assert isinstance(raw, ui.number)
    raw.value = 500  # longer than the 1-minute rollups
    user.find(marker='save-retention').click()
    await user.should_see('Keep 1-minute rollups at least as long as raw data.')
    raw.value = 14
    user.find(marker='save-retention').click()
    await user.should_see('Retention saved')


async def test_storage_page_is_for_admins(user: User, make_account: MakeAccount) -> None:
    operator = await make_account('operator')
    await sign_in(user, operator)
    await user.open('/storage')
    await user.should_see(marker='not-allowed')
    await user.should_not_see(marker='save-retention')
