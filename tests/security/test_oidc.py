"""Single sign-on against a real OpenID Connect provider on loopback (Authlib's authorization server)."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import uuid4

import httpx
import pytest
from nicegui.testing import User

from app.platform import Platform
from app.services.audit import AuditQuery
from app.services.errors import AuthenticationFailed
from tests.conftest import NewTenant
from tests.pages.conftest import MakeAccount
from tests.security.oidc_provider import Provider, oidc_provider

__all__ = ['oidc_provider']


def claims(**extra: Any) -> dict[str, Any]:
    return {'sub': uuid4().hex, 'email': f'sso-{uuid4().hex[:8]}@example.com', 'email_verified': True,
            'name': 'Sam Single'} | extra


async def provider_redirect(authorization_url: str) -> tuple[str, str]:
    """What the browser does at the provider: the code and state it comes back with."""
    async with httpx.AsyncClient() as http:
        response = await http.get(authorization_url)
    assert response.status_code == 302, response.text
    query = parse_qs(urlsplit(response.headers['location']).query)
    assert 'code' in query, response.headers['location']
    return query['code'][0], query['state'][0]


async def sso(platform: Platform, provider: Provider, user: dict[str, Any]) -> Any:
    provider.next_user = user
    url, cookie = await platform.oidc.begin()
    code, state = await provider_redirect(url)
    return await platform.oidc.complete(code=code, state=state, cookie=cookie)


async def test_first_sign_in_creates_the_user_in_the_tenant_and_role_of_the_claims(
        oidc_provider: Provider, platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant(name=f'Acme {uuid4().hex[:6]}')).principal
    tenant = await platform.tenants.get(admin)
    person = claims(gito_tenant=tenant.name, gito_role=['viewer', 'operator'])
    principal = await sso(platform, oidc_provider, person)
    assert (principal.tenant_id, principal.role, principal.email) == (admin.tenant_id, 'operator', person['email'])
    [created] = [user for user in await platform.users.list(admin) if user.email == person['email']]
    assert created.display_name == 'Sam Single'
    assert (await platform.audit.search(admin, AuditQuery(action='user.sso')))[0].action == 'user.sso_create'

    again = await sso(platform, oidc_provider, person | {'gito_role': 'technician'})  # the provider decides roles
    assert (again.user_id, again.role) == (principal.user_id, 'technician')


async def test_an_existing_user_is_mapped_by_e_mail_and_bound_to_the_subject(
        oidc_provider: Provider, platform: Platform, new_tenant: NewTenant) -> None:
    context = await new_tenant('technician')
    person = claims(email=context.email.upper(), gito_tenant=str(context.principal.tenant_id))
    principal = await sso(platform, oidc_provider, person)
    assert (principal.user_id, principal.role) == (context.principal.user_id, 'technician')  # no role claim: kept
    with pytest.raises(AuthenticationFailed, match='another account'):  # another subject, same address
        await sso(platform, oidc_provider, person | {'sub': 'someone-else'})


@pytest.mark.parametrize(('case', 'message'), [
    ('unknown tenant', 'organisation known here'),
    ('other tenant', 'another account'),
    ('unverified', 'confirm an e-mail'),
    ('bad signature', 'Single sign-on failed'),
])
async def test_refused_sign_ins(case: str, message: str, oidc_provider: Provider, platform: Platform,
                                new_tenant: NewTenant) -> None:
    context = await new_tenant()
    mine = str(context.principal.tenant_id)
    other = str((await new_tenant()).principal.tenant_id)
    person = {
        'unknown tenant': claims(gito_tenant='No Such Org'),
        'other tenant': claims(email=context.email, gito_tenant=other),
        'unverified': claims(gito_tenant=mine, email_verified=False),
        'bad signature': claims(gito_tenant=mine),
    }[case]
    oidc_provider.tamper = case == 'bad signature'
    with pytest.raises(AuthenticationFailed, match=message):
        await sso(platform, oidc_provider, person)
    assert [user.email for user in await platform.users.list(context.principal)] == [context.email]


async def test_state_from_another_browser_is_refused(oidc_provider: Provider, platform: Platform,
                                                     new_tenant: NewTenant) -> None:
    tenant_id = str((await new_tenant()).principal.tenant_id)
    oidc_provider.next_user = claims(gito_tenant=tenant_id)
    url, _mine = await platform.oidc.begin()
    _, someone_elses = await platform.oidc.begin()
    code, state = await provider_redirect(url)
    with pytest.raises(AuthenticationFailed):
        await platform.oidc.complete(code=code, state=state, cookie=someone_elses)
    with pytest.raises(AuthenticationFailed):
        await platform.oidc.complete(code=code, state=state, cookie=None)


async def test_the_login_page_signs_in_through_the_provider(oidc_provider: Provider, user: User,
                                                            app_platform: Platform,
                                                            make_account: MakeAccount) -> None:
    admin = await make_account()
    oidc_provider.next_user = claims(gito_tenant=str(admin.principal.tenant_id), gito_role='technician')
    await user.open('/login')
    await user.should_see('Sign in with single sign-on')
    http = user.http_client
    away = await http.get('/auth/oidc/login')
    assert away.status_code == 303 and away.headers['location'].startswith(oidc_provider.issuer)
    code, state = await provider_redirect(away.headers['location'])
    back = await http.get(f'/auth/oidc/callback?code={code}&state={state}')
    assert (back.status_code, back.headers['location']) == (303, '/'), back.text
    await user.open('/')
    await user.should_see(marker='device-grid', retries=50)
    await user.should_see(oidc_provider.next_user['email'])
