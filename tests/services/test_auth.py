import pytest

from app.platform import Platform
from app.services.errors import AuthenticationFailed, Conflict, InvalidInput
from tests.conftest import NewTenant


async def test_login_with_right_password_gives_principal_and_token(platform: Platform, new_tenant: NewTenant) -> None:
    ctx = await new_tenant(role='operator')
    principal = await platform.auth.authenticate(ctx.email.upper(), ctx.password)
    assert principal == ctx.principal
    token = await platform.auth.issue_token(principal)
    assert await platform.auth.principal_from_token(token) == principal


async def test_wrong_password_and_unknown_user_get_the_same_message(platform: Platform, new_tenant: NewTenant) -> None:
    ctx = await new_tenant()
    with pytest.raises(AuthenticationFailed) as wrong:
        await platform.auth.authenticate(ctx.email, 'not the password')
    with pytest.raises(AuthenticationFailed) as unknown:
        await platform.auth.authenticate('nobody@example.com', ctx.password)
    assert str(wrong.value) == str(unknown.value) == 'Wrong e-mail address or password.'


async def test_tampered_token_is_refused(platform: Platform, new_tenant: NewTenant) -> None:
    ctx = await new_tenant()
    token = await platform.auth.issue_token(ctx.principal)
    with pytest.raises(AuthenticationFailed):
        await platform.auth.principal_from_token(token[:-2] + ('AA' if not token.endswith('AA') else 'BB'))


async def test_passwords_are_stored_hashed(platform: Platform, new_tenant: NewTenant) -> None:
    from sqlalchemy import text

    ctx = await new_tenant()
    async with platform.db.system() as session:
        stored = await session.scalar(text('SELECT password_hash FROM users WHERE id = :id'),
                                      {'id': ctx.principal.user_id})
    assert stored is not None and stored.startswith('$argon2id$') and ctx.password not in stored


async def test_duplicate_email_and_weak_password(platform: Platform, new_tenant: NewTenant) -> None:
    ctx = await new_tenant()
    with pytest.raises(Conflict, match='already exists'):
        await platform.users.create_in_tenant(ctx.principal.tenant_id, email=ctx.email, password='x' * 12,
                                              role='viewer')
    with pytest.raises(InvalidInput, match='at least 10') as weak:
        await platform.users.create_in_tenant(ctx.principal.tenant_id, email='new@example.com', password='short',
                                              role='viewer')
    assert weak.value.field == 'password'


async def test_onboarding_is_refused_once_someone_exists(platform: Platform, new_tenant: NewTenant) -> None:
    await new_tenant()
    assert await platform.tenants.needs_onboarding() is False
    with pytest.raises(Conflict, match='already set up'):
        await platform.tenants.onboard(tenant_name='Second', email='x@example.com', password='y' * 12)
