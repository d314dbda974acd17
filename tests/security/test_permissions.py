"""Role by key action, through the services, the API and the pages: each role may do exactly its part."""

from __future__ import annotations

from uuid import uuid4

import pytest
from nicegui.testing import User

from app.models.schemas import DeviceCreate, DeviceUpdate, Principal, Role
from app.platform import Platform
from app.services.audit import AuditQuery
from app.services.errors import PermissionDenied
from tests.api.conftest import Api, SignIn
from tests.conftest import NewTenant
from tests.pages.conftest import MakeAccount, MakeDevice, sign_in

ROLES: tuple[Role, ...] = ('admin', 'operator', 'technician', 'viewer')
MAY_EDIT_DEVICES = {'admin', 'operator', 'technician'}


async def allowed(action: object) -> bool:
    try:
        await action  # type: ignore[misc]
    except PermissionDenied:
        return False
    return True


async def test_service_permission_matrix(platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    device, _ = await platform.devices.create(admin, DeviceCreate(name='Pump'))
    for role in ROLES:
        member = await platform.users.create(admin, email=f'{role}-{uuid4().hex[:6]}@example.com',
                                             password='long enough pw', role=role)
        me = Principal(tenant_id=admin.tenant_id, user_id=member.id, role=role, email=member.email)
        may_edit = role in MAY_EDIT_DEVICES
        assert await allowed(platform.devices.list(me))
        assert await allowed(platform.devices.create(me, DeviceCreate(name=f'by {role}'))) == may_edit, role
        assert await allowed(platform.devices.update(me, device.id, DeviceUpdate(type=role))) == may_edit, role
        assert await allowed(platform.devices.rotate_token(me, device.id)) == may_edit, role
        assert await allowed(platform.users.list(me)) == (role == 'admin'), role
        assert await allowed(platform.users.create(me, email=f'x{uuid4().hex[:6]}@example.com',
                                                   password='long enough pw', role='viewer')) == (role == 'admin')
        assert await allowed(platform.users.set_role(me, admin.user_id, 'viewer')) == (role == 'admin')  # type: ignore[arg-type]
        assert await allowed(platform.audit.search(me, AuditQuery())) == (role == 'admin'), role
    with pytest.raises(PermissionDenied, match='cannot change your own role'):
        await platform.users.set_role(admin, admin.user_id, 'viewer')  # type: ignore[arg-type]


async def test_api_permission_matrix(api: Api, sign_in: SignIn) -> None:
    for role in ROLES:
        caller = await sign_in(role)
        may_edit = role in MAY_EDIT_DEVICES
        created = await api.client.post('/api/v1/devices', json={'name': 'Pump'}, headers=caller.headers)
        assert created.status_code == (201 if may_edit else 403), (role, created.text)
        users = await api.client.get('/api/v1/users', headers=caller.headers)
        assert users.status_code == (200 if role == 'admin' else 403), role
        added = await api.client.post('/api/v1/users', headers=caller.headers, json={
            'email': f'new-{uuid4().hex[:6]}@example.com', 'password': 'long enough pw', 'role': 'technician'})
        assert added.status_code == (201 if role == 'admin' else 403), role
        if role == 'admin':
            user_id = added.json()['id']
            changed = await api.client.patch(f'/api/v1/users/{user_id}', headers=caller.headers,
                                             json={'role': 'operator', 'disabled': True})
            assert changed.status_code == 200 and changed.json()['role'] == 'operator'
            assert changed.json()['disabled'] is True
            assert [user['role'] for user in users.json()] == ['admin']
        audit = await api.client.get('/api/v1/audit', headers=caller.headers)
        assert audit.status_code == (200 if role == 'admin' else 403), role


async def test_each_role_sees_only_what_it_may_do(user: User, make_account: MakeAccount,
                                                   make_device: MakeDevice) -> None:
    admin = await make_account()
    device = await make_device(admin, 'Boiler')
    for role in ROLES:
        account = admin if role == 'admin' else await make_account(role, tenant_of=admin)
        await sign_in(user, account)
        may_edit = role in MAY_EDIT_DEVICES
        if may_edit:
            await user.should_see(marker='add-device', retries=50)
        else:
            await user.should_not_see(marker='add-device')
        if role == 'admin':
            await user.should_see(marker='nav-users', retries=50)
            await user.should_see(marker='nav-audit', retries=50)
        else:
            await user.should_not_see(marker='nav-users')
            await user.should_not_see(marker='nav-audit')
        await user.open(f'/devices/{device.id}')
        await user.should_see('Boiler', retries=50)
        if may_edit:
            await user.should_see(marker='edit-device', retries=50)
        else:
            await user.should_not_see(marker='edit-device')
        await user.open('/users')
        if role == 'admin':
            await user.should_see(marker='add-user', retries=50)
        else:
            await user.should_see('Only an admin can manage users.', retries=50)
            await user.should_not_see(marker='add-user')
        await user.open('/audit')
        if role == 'admin':
            await user.should_see(marker='audit-search', retries=50)
        else:
            await user.should_see('Only an admin can read the audit log.', retries=50)
        await user.open('/logout')


async def test_admin_adds_a_user_changes_role_and_disables(user: User, app_platform: Platform,
                                                           make_account: MakeAccount) -> None:
    admin = await make_account()
    await sign_in(user, admin)
    await user.open('/users')
    await user.should_see(marker='user-list', retries=50)
    user.find(marker='new-email').type('tablet@example.com')
    user.find(marker='new-password').type('long enough pw')
    user.find(marker='new-role').click()
    user.find('technician').click()
    user.find(marker='add-user').click()
    await user.should_see(marker='user-tablet@example.com', retries=30)
    added = next(u for u in await app_platform.users.list(admin.principal) if u.email == 'tablet@example.com')
    assert added.role == 'technician'
    with user.scope(marker='user-tablet@example.com'):
        user.find(marker='toggle-user').click()
    await user.should_see('disabled', retries=30)
    assert (await app_platform.users.get(admin.principal, added.id)).disabled
