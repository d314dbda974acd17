"""Audit log retention: per tenant (or the default), enforced by a sweep that one instance runs at a time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import asyncpg
import pytest
from nicegui.testing import User
from sqlalchemy import text

from app.models.schemas import Principal
from app.platform import Platform
from app.services.audit_retention import RETENTION_LOCK_ID
from app.services.errors import InvalidInput, PermissionDenied
from tests.api.conftest import Api, SignIn
from tests.conftest import NewTenant
from tests.pages.conftest import MakeAccount, sign_in


async def entry_aged(platform: Platform, tenant_id: UUID, days: int) -> str:
    action = f'test.aged_{days}_{uuid4().hex[:6]}'
    async with platform.db.system() as session:
        await session.execute(text(
            "INSERT INTO audit_log (id, tenant_id, action, target_type, at) VALUES (:id, :tenant, :action, 'x', :at)"),
            {'id': uuid4(), 'tenant': tenant_id, 'action': action, 'at': datetime.now(UTC) - timedelta(days=days)})
    return action


async def actions(platform: Platform, tenant_id: UUID) -> set[str]:
    async with platform.db.system() as session:
        rows = await session.scalars(text("SELECT action FROM audit_log WHERE tenant_id = :tenant "
                                          "AND action LIKE 'test.aged%'"), {'tenant': tenant_id})
        return set(rows)


async def test_each_tenant_keeps_its_entries_as_long_as_its_policy_says(platform: Platform,
                                                                        new_tenant: NewTenant) -> None:
    short, default = (await new_tenant()).principal, (await new_tenant()).principal
    assert (await platform.audit_retention.get(short)).days == 365  # GITO_AUDIT_RETENTION_DAYS
    kept = await platform.audit_retention.set(short, 30)
    assert (kept.days, kept.default) == (30, False)
    short_old = await entry_aged(platform, short.tenant_id, 40)
    short_new = await entry_aged(platform, short.tenant_id, 10)
    default_kept = await entry_aged(platform, default.tenant_id, 40)
    default_old = await entry_aged(platform, default.tenant_id, 400)

    assert await platform.audit_retention.sweep() >= 2
    assert await actions(platform, short.tenant_id) == {short_new}
    assert await actions(platform, default.tenant_id) == {default_kept}
    assert short_old and default_old


async def test_the_sweep_skips_while_another_instance_holds_the_lock(platform: Platform, database_url: str,
                                                                     new_tenant: NewTenant) -> None:
    tenant = (await new_tenant()).principal
    await entry_aged(platform, tenant.tenant_id, 400)
    other = await asyncpg.connect(database_url)
    try:
        async with other.transaction():
            await other.execute('SELECT pg_advisory_xact_lock($1)', RETENTION_LOCK_ID)
            assert await platform.audit_retention.sweep() == 0
            assert len(await actions(platform, tenant.tenant_id)) == 1
    finally:
        await other.close()
    assert await platform.audit_retention.sweep() >= 1
    assert await actions(platform, tenant.tenant_id) == set()


async def test_retention_bounds_roles_and_audit(platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    with pytest.raises(InvalidInput) as error:
        await platform.audit_retention.set(admin, 3)
    assert error.value.field == 'days'
    with pytest.raises(PermissionDenied):
        await platform.audit_retention.set(Principal(tenant_id=admin.tenant_id, user_id=None, role='operator'), 30)
    await platform.audit_retention.set(admin, 90)
    back = await platform.audit_retention.set(admin, None)
    assert (back.days, back.default) == (365, True)
    async with platform.db.system() as session:
        changes = (await session.execute(text(
            "SELECT before, after FROM audit_log WHERE tenant_id = :tenant AND action = 'audit.retention' ORDER BY at"),
            {'tenant': admin.tenant_id})).all()
    assert [tuple(change) for change in changes] == [({'days': None}, {'days': 90}), ({'days': 90}, {'days': None})]


async def test_api_sets_retention_with_field_errors(api: Api, sign_in: SignIn) -> None:
    admin = await sign_in('admin')
    bad = await api.client.put('/api/v1/audit/retention', json={'days': 2}, headers=admin.headers)
    assert bad.status_code == 422 and bad.json()['errors'][0]['field'] == 'days'
    good = await api.client.put('/api/v1/audit/retention', json={'days': 30}, headers=admin.headers)
    assert good.json() == {'days': 30, 'default': False}
    assert (await api.client.get('/api/v1/audit/retention', headers=admin.headers)).json()['days'] == 30


async def test_audit_page_sets_retention(user: User, app_platform: Platform, make_account: MakeAccount) -> None:
    admin = await make_account()
    await sign_in(user, admin)
    await user.open('/audit')
    user.find(marker='retention-days').type('45')
    user.find(marker='save-retention').click()
    await user.should_see('kept for 45 days')
    assert (await app_platform.audit_retention.get(admin.principal)).days == 45
