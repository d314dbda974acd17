"""Admins see and end other users' sessions; "log out everywhere" also ends API sign-in tokens (JWTs)."""

from __future__ import annotations

import asyncio
from uuid import uuid4

import pytest
from nicegui.testing import User

from app.models.schemas import Principal
from app.platform import Platform
from app.services.errors import AuthenticationFailed, NotFound, PermissionDenied
from tests.api.conftest import Api, SignIn
from tests.conftest import NewTenant
from tests.pages.conftest import MakeAccount, sign_in
from tests.security.test_session_pages import stored_token


async def member_of(platform: Platform, admin: Principal, role: str = 'viewer') -> Principal:
    created = await platform.users.create(admin, email=f'm-{uuid4().hex[:8]}@example.com',
                                          password='long enough pw', role=role)  # type: ignore[arg-type]
    return Principal(tenant_id=admin.tenant_id, user_id=created.id, role=created.role, email=created.email)


async def test_an_admin_ends_one_session_of_another_user(platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    member = await member_of(platform, admin)
    assert member.user_id is not None
    phone = await platform.sessions.create(member, ip='198.51.100.4', user_agent='Phone')
    laptop = await platform.sessions.create(member, ip='198.51.100.5', user_agent='Laptop')
    listed = (await platform.sessions.list_by_user(admin))[member.user_id]
    assert [(info.ip, info.user_agent) for info in listed] == [('198.51.100.5', 'Laptop'),
                                                                ('198.51.100.4', 'Phone')]
    await platform.sessions.revoke_session(admin, member.user_id, listed[1].id)
    assert await platform.sessions.resolve(phone) is None
    assert await platform.sessions.resolve(laptop) == member
    assert [info.ip for info in (await platform.sessions.list_by_user(admin))[member.user_id]] == ['198.51.100.5']

    with pytest.raises(PermissionDenied):
        await platform.sessions.revoke_session(member, member.user_id, listed[0].id)
    other_admin = (await new_tenant()).principal
    with pytest.raises(NotFound):  # another tenant's admin cannot even tell the session exists
        await platform.sessions.revoke_session(other_admin, member.user_id, listed[0].id)
    assert await platform.sessions.resolve(laptop) == member


async def test_log_out_everywhere_also_ends_api_sign_in_tokens(platform: Platform, new_tenant: NewTenant) -> None:
    context = await new_tenant()
    principal = context.principal
    jwt = await platform.auth.issue_token(principal)
    assert await platform.auth.principal_from_token(jwt) == principal
    await platform.sessions.revoke_all(principal)
    with pytest.raises(AuthenticationFailed):
        await platform.auth.principal_from_token(jwt)
    fresh = await platform.auth.issue_token(principal)  # signing in again works at once
    assert await platform.auth.principal_from_token(fresh) == principal

    admin = principal
    member = await member_of(platform, admin, 'operator')
    assert member.user_id is not None
    member_jwt = await platform.auth.issue_token(member)
    await platform.sessions.revoke_user(admin, member.user_id)
    with pytest.raises(AuthenticationFailed):
        await platform.auth.principal_from_token(member_jwt)


async def test_api_lists_and_revokes_sessions(api: Api, sign_in: SignIn) -> None:
    admin = await sign_in('admin')
    member = await member_of(api.platform, admin.principal)
    assert member.user_id is not None
    await api.platform.sessions.create(member, ip='203.0.113.9', user_agent='Tablet')
    url = f'/api/v1/users/{member.user_id}/sessions'
    [listed] = (await api.client.get(url, headers=admin.headers)).json()
    assert (listed['ip'], listed['user_agent']) == ('203.0.113.9', 'Tablet')
    assert (await api.client.delete(f'{url}/{listed["id"]}', headers=admin.headers)).status_code == 204
    assert (await api.client.get(url, headers=admin.headers)).json() == []
    assert (await api.client.delete(f'{url}/{listed["id"]}x', headers=admin.headers)).status_code == 404

    assert (await api.client.delete(f'/api/v1/users/{admin.principal.user_id}/sessions',
                                    headers=admin.headers)).status_code == 204
    after = await api.client.get('/api/v1/users', headers=admin.headers)  # the admin's own JWT is dead now
    assert after.status_code == 401


async def test_users_page_shows_sessions_and_revokes_one(user: User, app_platform: Platform,
                                                         make_account: MakeAccount) -> None:
    admin = await make_account()
    member = await make_account('technician', tenant_of=admin)
    tablet = await app_platform.sessions.create(member.principal, ip='192.0.2.44', user_agent='Tablet browser')
    await sign_in(user, admin)
    await user.open('/users')
    await user.should_see('192.0.2.44')
    await user.should_see('Tablet browser')
    user.find(marker=f'revoke-session-{member.email}').click()
    await user.should_not_see('192.0.2.44', retries=30)
    assert await app_platform.sessions.resolve(tablet) is None
    await asyncio.sleep(0)
    assert await app_platform.sessions.resolve(stored_token(user)) == admin.principal  # the admin's own stays
