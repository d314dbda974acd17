"""Personal API tokens: shown once, hashed at rest, scope at most the role, expiry, revoke, last use."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta
from uuid import uuid4

import pytest
from nicegui import ui
from nicegui.testing import User
from sqlalchemy import text

from app.platform import Platform
from app.services.errors import InvalidInput, PermissionDenied
from tests.api.conftest import Api, SignIn
from tests.conftest import NewTenant
from tests.pages.conftest import MakeAccount, sign_in


async def test_tokens_are_hashed_scoped_expiring_and_revocable(platform: Platform, new_tenant: NewTenant) -> None:
    admin = (await new_tenant()).principal
    tech_user = await platform.users.create(admin, email=f'tech-{uuid4().hex[:8]}@example.com',
                                            password='long enough pw', role='technician')
    tech = type(admin)(tenant_id=admin.tenant_id, user_id=tech_user.id, role='technician', email=tech_user.email)
    with pytest.raises(PermissionDenied, match='more rights than your role'):
        await platform.api_tokens.create(tech, name='too much', role='admin')
    with pytest.raises(InvalidInput):
        await platform.api_tokens.create(tech, name='past', expires_at=datetime.now(UTC) - timedelta(days=1))

    info, token = await platform.api_tokens.create(tech, name='tablet', role='viewer')
    assert token.startswith('gito_') and len(token) > 40
    assert 'token' not in info.model_dump()
    async with platform.db.system() as session:
        stored = (await session.execute(text('SELECT token_sha256 FROM api_tokens WHERE id = :id'),
                                        {'id': info.id})).scalar_one()
        assert stored == hashlib.sha256(token.encode()).hexdigest()
        assert (await session.execute(text("SELECT count(*) FROM api_tokens WHERE token_sha256 LIKE 'gito_%'")))\
            .scalar_one() == 0
    acting = await platform.api_tokens.authenticate(token)
    assert acting is not None and acting.role == 'viewer' and acting.user_id == tech_user.id
    assert (await platform.api_tokens.list(tech))[0].last_used_at is not None

    full, full_token = await platform.api_tokens.create(tech, name='full')
    assert full.role == 'technician'
    await platform.users.set_role(admin, tech_user.id, 'viewer')  # the user's role now caps the token
    assert (await platform.api_tokens.authenticate(full_token)).role == 'viewer'  # type: ignore[union-attr]
    await platform.api_tokens.revoke(tech, full.id)
    assert await platform.api_tokens.authenticate(full_token) is None
    assert await platform.api_tokens.authenticate('gito_made-up') is None

    _, expiring = await platform.api_tokens.create(tech, name='day', expires_at=datetime.now(UTC) + timedelta(days=1))
    assert await platform.api_tokens.authenticate(expiring) is not None
    platform.api_tokens.clock = lambda: datetime.now(UTC) + timedelta(days=1, seconds=1)
    assert await platform.api_tokens.authenticate(expiring) is None
    assert await platform.api_tokens.authenticate(token) is not None  # no expiry

    await platform.users.set_disabled(admin, tech_user.id, True)
    assert await platform.api_tokens.authenticate(token) is None


async def test_api_tokens_over_the_api(api: Api, sign_in: SignIn) -> None:
    operator = await sign_in('operator')
    created = await api.client.post('/api/v1/tokens', json={'name': 'script', 'role': 'viewer'},
                                    headers=operator.headers)
    assert created.status_code == 201, created.text
    token, token_id = created.json()['token'], created.json()['info']['id']
    as_token = {'Authorization': f'Bearer {token}'}
    assert (await api.client.get('/api/v1/devices', headers=as_token)).status_code == 200
    assert (await api.client.post('/api/v1/devices', json={'name': 'x'}, headers=as_token)).status_code == 403
    listed = await api.client.get('/api/v1/tokens', headers=operator.headers)
    assert [item['name'] for item in listed.json()] == ['script'] and 'token' not in listed.json()[0]
    too_much = await api.client.post('/api/v1/tokens', json={'name': 'x', 'role': 'admin'}, headers=operator.headers)
    assert too_much.status_code == 403
    assert (await api.client.delete(f'/api/v1/tokens/{token_id}', headers=operator.headers)).status_code == 200
    refused = await api.client.get('/api/v1/devices', headers=as_token)
    assert refused.status_code == 401 and token not in refused.text


async def test_account_page_creates_shows_once_and_revokes(user: User, app_platform: Platform,
                                                           make_account: MakeAccount) -> None:
    account = await make_account('technician')
    await sign_in(user, account)
    await user.open('/account')
    await user.should_see(marker='token-name', retries=50)
    user.find(marker='token-name').type('Tablet app')
    user.find(marker='create-token').click()
    await user.should_see(marker='new-token', retries=30)
    code = next(iter(user.find(marker='new-token').elements))
    assert isinstance(code, ui.code) and code.content.startswith('gito_')
    assert await app_platform.api_tokens.authenticate(code.content) is not None
    await user.should_see(marker='token-Tablet-app')
    await user.open('/account')
    await user.should_see(marker='token-Tablet-app', retries=50)
    await user.should_not_see(marker='new-token')  # shown once
    with user.scope(marker='token-Tablet-app'):
        user.find(marker='revoke-token').click()
    await user.should_see('revoked', retries=30)
    assert await app_platform.api_tokens.authenticate(code.content) is None
